//! Mirrors and sources that read through a durable consumer of the origin (nats-server 2.14,
//! ADR-60: `"consumer": {"name", "deliver_subject"}` in a `StreamSource`).
//!
//! The user creates the consumer on the origin, push based with ack policy `flow_control`
//! (Go: `AckFlowControl`; see `consumer::config`). nats-server's sourcing stream resets it
//! when it starts, listens on its deliver subject and answers its flow-control requests with
//! `Nats-Last-Stream`, which acks everything up to that sequence; on a WorkQueue or Interest
//! origin that is what removes the messages. Here both streams live in one process, so a
//! round of sourcing (after each group commit, see `JetStream::pull_sources`):
//!
//! 1. acks the consumer up to the last origin message whose copy the sourcing stream has
//!    *made durable* (synced, or acknowledged in `sync_interval` mode) — so an origin only
//!    drops a message once its copy would survive a crash;
//! 2. takes the next committed messages from the consumer (none while it is paused or has
//!    `max_ack_pending` unacknowledged) and stores them.
//!
//! When a round starts anew (stream created or loaded, or the consumer found again after an
//! error) the consumer restarts from its ack floor, skipping what the sourcing stream holds
//! already: nothing is lost or copied twice across a restart. A message the sourcing stream
//! cannot store yet (a full stream with discard new) waits in the cursor and is tried again,
//! still unacknowledged at the origin.
//!
//! An `external` durable source whose origin is in another account is run by the shell with
//! both accounts' JetStreams at hand (`JetStream::pull_durable_external`), along the same
//! imports as an external source (see `external`).

use super::super::api::{err, ApiError, StreamSource};
use super::super::consumer::config::FLOW_CONTROL;
use super::super::consumer::Delivery;
use super::super::retention;
use super::super::service::{Entry, JetStream};
use super::super::store::{StoredMsg, UnixNanos};
use super::{resume_point, store_batch, SourceState, BATCH};
use crate::subject;

/// 10213.
pub(crate) fn mirror_consumer_cfg_invalid() -> ApiError {
    ApiError::new(400, 10213, "stream mirror consumer config is invalid")
}

/// 10214.
fn mirror_requires_ack_fc() -> ApiError {
    ApiError::new(
        400,
        10214,
        "stream mirror consumer requires flow control ack policy",
    )
}

/// 10215.
pub(crate) fn source_consumer_cfg_invalid() -> ApiError {
    ApiError::new(400, 10215, "stream source consumer config is invalid")
}

/// 10216.
pub(crate) fn source_consumer_duplicate() -> ApiError {
    ApiError::new(400, 10216, "duplicate stream source consumer detected")
}

/// 10217.
fn source_requires_ack_fc() -> ApiError {
    ApiError::new(
        400,
        10217,
        "stream source consumer requires flow control ack policy",
    )
}

/// Go: checkStreamCfg on `consumer` — a valid name, a literal deliver subject, and neither a
/// start nor a filter on the source (those belong to the consumer's config).
pub(crate) fn check_consumer_source(
    s: &StreamSource,
    valid_name: fn(&str) -> bool,
    invalid: fn() -> ApiError,
) -> Result<(), ApiError> {
    let Some(c) = &s.consumer else {
        return Ok(());
    };
    if !valid_name(&c.name) || !subject::is_valid_literal_subject(c.deliver_subject.as_bytes()) {
        return Err(invalid());
    }
    if s.opt_start_seq != 0 || s.opt_start_time.is_some() || !s.filter_subject.is_empty() {
        return Err(invalid());
    }
    Ok(())
}

/// The origin stream and consumer a durable cursor reads, if it reads one here.
fn target_of(st: &SourceState) -> Option<(&str, &str)> {
    let c = st.cfg.consumer.as_ref()?;
    st.cfg
        .external
        .is_none()
        .then_some((st.cfg.name.as_str(), c.name.as_str()))
}

impl JetStream {
    /// Marks the `flow_control` consumers that a durable mirror or source reads (they send
    /// nothing to their deliver subject then) and unmarks the others.
    pub(crate) fn bind_source_consumers(&mut self) {
        let bound: Vec<(String, String)> = self
            .streams
            .values()
            .flat_map(|e| e.stream.mirror.iter().chain(&e.stream.sources))
            .filter_map(|st| target_of(st).map(|(s, c)| (s.to_owned(), c.to_owned())))
            .collect();
        for (sn, e) in &mut self.streams {
            for c in e.consumers.values_mut() {
                if c.config.ack_policy == FLOW_CONTROL {
                    c.sourced =
                        c.sourced_elsewhere || bound.iter().any(|(s, n)| s == sn && *n == c.name);
                }
            }
        }
    }

    /// One round of the durable cursor `st` (`slot`: `None` for the mirror) of stream
    /// `name`, whose origin is in this account: acks what is durable downstream, then copies
    /// the next batch. Returns whether anything was stored.
    pub(super) fn pull_durable(
        &mut self,
        name: &str,
        slot: Option<usize>,
        mut st: SourceState,
        now: UnixNanos,
        sync: bool,
        out: &mut Vec<Delivery>,
    ) -> bool {
        let Some(cname) = st.cfg.consumer.as_ref().map(|c| c.name.clone()) else {
            return false;
        };
        let origin = st.cfg.name.clone();
        // Out of the map while it reads a stream of the same map.
        let Some(mut target) = self.streams.remove(name) else {
            return false;
        };
        let r = durable_round(
            &mut target,
            self.streams.get_mut(&origin),
            slot,
            &cname,
            &mut st,
            now,
            sync,
            out,
        );
        put_back(&mut target, slot, st);
        self.streams.insert(name.to_owned(), target);
        if r.moved {
            self.note_moved(&origin, &cname);
        }
        r.stored
    }

    /// The durable cursors whose origin is in another account (through `external`), as
    /// (stream, slot, config).
    pub fn durable_external_cursors(&self) -> Vec<super::external::ExternalCursor> {
        let mut out = Vec::new();
        for (name, e) in &self.streams {
            let slots = e.stream.mirror.iter().map(|m| (None, m));
            let slots = slots.chain(
                e.stream
                    .sources
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (Some(i), s)),
            );
            for (slot, st) in slots {
                if st.cfg.external.is_some() && st.cfg.consumer.is_some() {
                    out.push(super::external::ExternalCursor {
                        stream: name.clone(),
                        slot,
                        source: st.cfg.clone(),
                    });
                }
            }
        }
        out
    }

    /// One round of the durable cursor `c`, whose origin is in `origin` (another account's
    /// JetStream; `None`: not reachable, the cursor stays inactive; `Some(None)`: that account
    /// has no JetStream). Returns the republished copies and whether anything was stored.
    pub fn pull_durable_external(
        &mut self,
        c: &super::external::ExternalCursor,
        origin: Option<Option<&mut Self>>,
        now: UnixNanos,
        sync: bool,
    ) -> (Vec<Delivery>, bool) {
        let mut out = Vec::new();
        let Some(cname) = c.source.consumer.as_ref().map(|x| x.name.clone()) else {
            return (out, false);
        };
        let Some(mut target) = self.streams.remove(&c.stream) else {
            return (out, false);
        };
        let mut stored = false;
        let slot_state = match c.slot {
            None => target.stream.mirror.as_ref(),
            Some(i) => target.stream.sources.get(i),
        };
        if let Some(mut st) = slot_state.filter(|s| s.cfg == c.source).cloned() {
            match origin {
                None => {
                    st.error = None;
                    st.last_seen = None;
                }
                Some(None) => {
                    restart_on(
                        &mut st,
                        ApiError::new(503, 10039, "JetStream not enabled for account"),
                    );
                }
                Some(Some(js)) => {
                    let r = durable_round(
                        &mut target,
                        js.streams.get_mut(&c.source.name),
                        c.slot,
                        &cname,
                        &mut st,
                        now,
                        sync,
                        &mut out,
                    );
                    if r.moved {
                        js.note_moved(&c.source.name, &cname);
                    }
                    // That account's own rounds do not see this source.
                    if let Some(oc) = js
                        .streams
                        .get_mut(&c.source.name)
                        .and_then(|e| e.consumers.get_mut(&cname))
                    {
                        oc.sourced_elsewhere = true;
                    }
                    stored = r.stored;
                }
            }
            put_back(&mut target, c.slot, st);
        }
        self.streams.insert(c.stream.clone(), target);
        if stored {
            self.mark_dirty(&c.stream);
        }
        (out, stored)
    }

    /// One round of the durable cursor `c` whose `external` prefix leads back to this
    /// account (its own domain): read as a durable source within the account.
    pub fn pull_durable_local(
        &mut self,
        c: &super::external::ExternalCursor,
        now: UnixNanos,
        sync: bool,
    ) -> (Vec<Delivery>, bool) {
        let mut out = Vec::new();
        let st = self.streams.get(&c.stream).and_then(|e| match c.slot {
            None => e.stream.mirror.clone(),
            Some(i) => e.stream.sources.get(i).cloned(),
        });
        let Some(st) = st.filter(|s| s.cfg == c.source && c.source.name != c.stream) else {
            return (out, false);
        };
        let stored = self.pull_durable(&c.stream, c.slot, st, now, sync, &mut out);
        if stored {
            self.mark_dirty(&c.stream);
        }
        (out, stored)
    }

    fn note_moved(&mut self, stream: &str, consumer: &str) {
        let Some(e) = self.streams.get(stream) else {
            return;
        };
        let key = (stream.to_owned(), consumer.to_owned());
        if e.stream.config.storage != "memory" && !self.moved.contains(&key) {
            self.moved.push(key);
        }
    }
}

/// Writes the cursor back into its slot, unless the stream's config changed meanwhile.
fn put_back(target: &mut Entry, slot: Option<usize>, st: SourceState) {
    let s = match slot {
        None => target.stream.mirror.as_mut(),
        Some(i) => target.stream.sources.get_mut(i),
    };
    if let Some(s) = s.filter(|s| s.cfg == st.cfg) {
        *s = st;
    }
}

/// What a round did.
struct Round {
    stored: bool,
    /// The consumer's delivery state or ack floor moved (a durable to save).
    moved: bool,
}

/// One round of a durable cursor `st` of `target` reading consumer `cname` of `origin`.
#[allow(clippy::too_many_arguments)]
fn durable_round(
    target: &mut Entry,
    origin: Option<&mut Entry>,
    slot: Option<usize>,
    cname: &str,
    st: &mut SourceState,
    now: UnixNanos,
    sync: bool,
    out: &mut Vec<Delivery>,
) -> Round {
    let mirror = slot.is_none();
    let idle = Round {
        stored: false,
        moved: false,
    };
    // What the sourcing stream holds, and how much of it is durable.
    let tstore = target.stream.store.as_ref();
    let durable = if sync {
        tstore.synced_through()
    } else {
        tstore.state().last_seq
    };
    let Some(e) = origin else {
        restart_on(st, err::stream_not_found());
        return idle;
    };
    let Some(c) = e.consumers.get(cname) else {
        restart_on(st, err::consumer_not_found());
        return idle;
    };
    if c.config.ack_policy != FLOW_CONTROL {
        let why = if mirror {
            mirror_requires_ack_fc()
        } else {
            source_requires_ack_fc()
        };
        restart_on(st, why);
        return idle;
    }
    st.error = None;
    let mut moved = false;
    if st.next.is_none() {
        // A fresh start: the last origin sequence the sourcing stream holds.
        let held = if mirror {
            Some(tstore.state().last_seq).filter(|s| *s > 0)
        } else {
            resume_point(tstore, &st.iname)
        };
        let Some(c) = e.consumers.get_mut(cname) else {
            return idle;
        };
        let (old, floor) = c.resume_for_source(held, e.stream.store.as_ref());
        retention::settle(e);
        retention::floor_moved(e, old, floor);
        st.next = Some(floor + 1);
        st.high = held.unwrap_or(0).max(floor);
        st.held.clear();
        st.unacked.clear();
        moved = true;
    }
    // 1. Ack what the sourcing stream has made durable.
    let upto = st
        .unacked
        .iter()
        .take_while(|(_, t)| *t <= durable)
        .map(|(o, _)| *o)
        .last();
    st.unacked.retain(|(_, t)| *t > durable);
    let Entry { stream, consumers } = &mut *e;
    let Some(c) = consumers.get_mut(cname) else {
        return idle;
    };
    c.sourced = true;
    let acked = upto.is_some_and(|o| c.ack_through(o, now));
    // 2. Take the next batch, unless one waits to be stored.
    if st.held.is_empty() {
        let ostore = stream.store.as_ref();
        let committed = if sync {
            ostore.synced_through()
        } else {
            ostore.state().last_seq
        };
        let batch = c.take_for_source(ostore, committed, BATCH, now);
        st.more = batch.len() >= BATCH;
        st.held = batch
            .into_iter()
            .map(|m| {
                // Go: a subject no transform matches is stored unchanged.
                let subj = st
                    .map_subject(&m.subject)
                    .unwrap_or_else(|| m.subject.clone());
                (m, subj)
            })
            .collect();
    }
    st.lag = c.num_pending();
    st.last_seen = Some(now);
    if acked {
        retention::settle(e);
        moved = true;
    }
    Round {
        stored: store_held(target, mirror, st, now, out),
        moved,
    }
}

/// Stores what the cursor took; what could not be stored stays for the next round.
fn store_held(
    target: &mut Entry,
    mirror: bool,
    st: &mut SourceState,
    now: UnixNanos,
    out: &mut Vec<Delivery>,
) -> bool {
    let held: Vec<(StoredMsg, String)> = std::mem::take(&mut st.held);
    let mut stored = false;
    let mut handled = None;
    let mut rest = held.len();
    for (i, item) in held.iter().enumerate() {
        // Go: an origin sequence at or below the last one copied is not copied again
        // (the consumer was reset backwards).
        if item.0.seq > st.high {
            let (done, s) = store_batch(
                &mut target.stream,
                &mut target.consumers,
                st,
                std::slice::from_ref(item),
                mirror,
                u64::MAX,
                now,
                out,
            );
            if done != u64::MAX {
                rest = i;
                break;
            }
            stored |= s;
            st.high = item.0.seq;
        }
        handled = Some(item.0.seq);
    }
    st.held = held.into_iter().skip(rest).collect();
    if let Some(o) = handled {
        st.unacked.push((o, target.stream.store.state().last_seq));
    }
    stored
}

/// The cursor cannot read: report why, and start over (from the consumer's ack floor and
/// what the sourcing stream holds) once it can. What it took and did not store is still
/// unacknowledged at the origin.
fn restart_on(st: &mut SourceState, why: ApiError) {
    st.error = Some(why);
    st.next = None;
    st.held.clear();
    st.unacked.clear();
    st.more = false;
}

#[cfg(test)]
mod tests;
