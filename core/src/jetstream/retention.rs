//! Interest and work-queue retention, and removing consumers that went idle
//! (Go: server/stream.go ackMsg, checkInterest, partitionUnique; consumer.go stopWithFlags,
//! deleteNotActive).
//!
//! * `workqueue`: a message goes as soon as its one consumer acknowledges it; consumers may
//!   not overlap.
//! * `interest`: a message stays while some consumer matching it has not acknowledged it;
//!   one published while no consumer matches is not kept at all (Go skips its sequence).

use std::collections::BTreeMap;

use super::api::{ApiError, ConsumerConfig, StreamConfig};
use super::consumer::{config::filters_of, Consumer, ConsumerEvent};
use super::service::Entry;
use super::store::UnixNanos;
use crate::subject;

/// Stream-dependent consumer checks (Go: checkConsumerCfg, the retention part).
pub(crate) fn check_config(stream: &StreamConfig, c: &ConsumerConfig) -> Result<(), ApiError> {
    if stream.retention == "workqueue" && c.deliver_subject.is_none() && c.ack_policy == "none" {
        return Err(ApiError::new(
            400,
            10084,
            "consumer in pull mode requires explicit ack policy on workqueue stream",
        ));
    }
    Ok(())
}

/// Work-queue rules for a consumer being added (Go: addConsumerWithAssignment).
pub(crate) fn check_new_consumer(
    stream: &StreamConfig,
    consumers: &BTreeMap<String, Consumer>,
    c: &ConsumerConfig,
) -> Result<(), ApiError> {
    if stream.retention != "workqueue" {
        return Ok(());
    }
    // Go 2.14: a durable mirror or source's `flow_control` consumer acks too.
    if c.ack_policy != "explicit" && c.ack_policy != super::consumer::config::FLOW_CONTROL {
        return Err(ApiError::new(
            400,
            10098,
            "workqueue stream requires explicit ack",
        ));
    }
    let mine = filters_of(c);
    if !consumers.is_empty() {
        if mine.is_empty() {
            return Err(ApiError::new(
                400,
                10099,
                "multiple non-filtered consumers not allowed on workqueue stream",
            ));
        }
        let clash = consumers.values().any(|o| {
            o.filters().is_empty()
                || mine.iter().any(|a| {
                    o.filters().iter().any(|b| {
                        subject::is_subset(a.as_bytes(), b.as_bytes())
                            || subject::is_subset(b.as_bytes(), a.as_bytes())
                    })
                })
        });
        if clash {
            return Err(ApiError::new(
                400,
                10100,
                "filtered consumer not unique on workqueue stream",
            ));
        }
    }
    if c.deliver_policy != "all" {
        return Err(ApiError::new(
            400,
            10101,
            "consumer must be deliver all on workqueue stream",
        ));
    }
    Ok(())
}

/// A message just stored at `seq`: on an interest stream no consumer matches, Go does not
/// keep it (the sequence is used, the message is gone). True when it was dropped.
pub(crate) fn drop_unwanted(e: &mut Entry, subj: &str, seq: u64) -> bool {
    if e.stream.config.retention != "interest" || e.consumers.values().any(|c| c.matches(subj)) {
        return false;
    }
    let _ = e.stream.store.remove_msg(seq);
    true
}

/// Removes what acknowledgements made unneeded (Go: ackMsg).
pub(crate) fn settle(e: &mut Entry) {
    let retention = e.stream.config.retention.clone();
    let acked: Vec<u64> = e
        .consumers
        .values_mut()
        .flat_map(Consumer::take_acked)
        .collect();
    if retention == "limits" || acked.is_empty() {
        return;
    }
    for seq in acked {
        remove_if_unwanted(e, seq, retention == "workqueue");
    }
}

fn remove_if_unwanted(e: &mut Entry, seq: u64, workqueue: bool) {
    let Ok(m) = e.stream.store.load_msg(seq) else {
        return;
    };
    if workqueue || !e.consumers.values().any(|c| c.needs_ack(seq, &m.subject)) {
        let _ = e.stream.store.remove_msg(seq);
    }
}

/// A consumer left an interest stream: what only it was holding goes (Go: stopWithFlags).
pub(crate) fn consumer_removed(e: &mut Entry, gone: &Consumer) {
    if e.stream.config.retention != "interest" {
        return;
    }
    let st = e.stream.store.state();
    let mut seq = (gone.ack_floor() + 1).max(st.first_seq);
    while let Ok(m) = e.stream.store.load_next_msg("", seq) {
        seq = m.seq + 1;
        if !e.consumers.values().any(|c| c.needs_ack(m.seq, &m.subject)) {
            let _ = e.stream.store.remove_msg(m.seq);
        }
    }
}

/// A consumer's ack floor jumped from `from` (a reset): on interest and work-queue streams,
/// what up to the new floor no consumer still wants goes (Go: checkStateForInterestStream).
pub(crate) fn floor_moved(e: &mut Entry, from: u64, to: u64) {
    if e.stream.config.retention == "limits" {
        return;
    }
    let mut seq = (from + 1).max(e.stream.store.state().first_seq);
    while seq <= to {
        let Ok(m) = e.stream.store.load_next_msg("", seq) else {
            break;
        };
        if m.seq > to {
            break;
        }
        seq = m.seq + 1;
        if !e.consumers.values().any(|c| c.needs_ack(m.seq, &m.subject)) {
            let _ = e.stream.store.remove_msg(m.seq);
        }
    }
}

/// Deletes the consumers idle past their `inactive_threshold`; returns their names and
/// whether each was durable (its saved state must go too).
pub(crate) fn reap_inactive(
    e: &mut Entry,
    now: UnixNanos,
    events: &mut Vec<ConsumerEvent>,
) -> Vec<(String, bool)> {
    let idle: Vec<String> = e
        .consumers
        .iter()
        .filter(|(_, c)| c.is_inactive(now))
        .map(|(n, _)| n.clone())
        .collect();
    let mut out = Vec::new();
    for name in idle {
        if let Some(c) = e.consumers.remove(&name) {
            consumer_removed(e, &c);
            if events.len() >= super::consumer::MAX_EVENTS {
                events.remove(0);
            }
            events.push(ConsumerEvent::Deleted {
                stream: c.stream.clone(),
                consumer: name.clone(),
            });
            out.push((name, c.is_durable()));
        }
    }
    out
}
