//! Invariants over what clients saw. Each checker reads a trace and returns `Err` with the
//! first violation it finds, described well enough to start debugging from.
//!
//! Scenario payloads carry a [`MsgId`] so that a received message can be traced back to its
//! publish: account, publisher, the publisher's connection epoch and a per-publisher sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use crate::trace::{Event, EventKind};

/// Identity of a published message, carried as its payload: `m|acct|publisher|epoch|seq`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId {
    /// Account the publisher is in.
    pub account: String,
    /// Publishing client.
    pub publisher: String,
    /// The publisher's connection epoch (NATS orders messages per connection only).
    pub epoch: u32,
    /// Per-publisher sequence, increasing across epochs.
    pub seq: u64,
}

impl MsgId {
    /// A new id.
    pub fn new(account: &str, publisher: &str, epoch: u32, seq: u64) -> Self {
        Self {
            account: account.to_owned(),
            publisher: publisher.to_owned(),
            epoch,
            seq,
        }
    }

    /// Parses a payload written by its `Display` impl; anything else is `None`.
    pub fn parse(payload: &str) -> Option<Self> {
        let mut it = payload.split('|');
        if it.next()? != "m" {
            return None;
        }
        let account = it.next()?.to_owned();
        let publisher = it.next()?.to_owned();
        let epoch = it.next()?.parse().ok()?;
        let seq = it.next()?.parse().ok()?;
        Some(Self {
            account,
            publisher,
            epoch,
            seq,
        })
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "m|{}|{}|{}|{}",
            self.account, self.publisher, self.epoch, self.seq
        )
    }
}

/// A received, identified message.
#[derive(Debug, Clone)]
pub struct Receipt<'a> {
    /// When.
    pub at: Duration,
    /// Receiving client.
    pub client: &'a str,
    /// Receiver's connection epoch.
    pub epoch: u32,
    /// Subscription id.
    pub sid: u64,
    /// Subject delivered on.
    pub subject: &'a str,
    /// The id in the payload.
    pub id: MsgId,
}

/// Every received message whose payload is a [`MsgId`], in trace order.
pub fn receipts(events: &[Event]) -> Vec<Receipt<'_>> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Received {
                epoch,
                sid,
                subject,
                payload,
                ..
            } => MsgId::parse(payload).map(|id| Receipt {
                at: e.at,
                client: &e.client,
                epoch: *epoch,
                sid: *sid,
                subject,
                id,
            }),
            _ => None,
        })
        .collect()
}

/// Every published [`MsgId`] with its subject and time.
pub fn publishes(events: &[Event]) -> Vec<(Duration, &str, MsgId)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Published {
                subject, payload, ..
            } => MsgId::parse(payload).map(|id| (e.at, subject.as_str(), id)),
            _ => None,
        })
        .collect()
}

/// Core NATS at-most-once: each subscription receives a message at most once, only messages
/// that were published, and each publisher connection's messages in publish order.
pub fn at_most_once_in_order(events: &[Event]) -> Result<(), String> {
    let published: BTreeSet<MsgId> = publishes(events).into_iter().map(|(_, _, id)| id).collect();
    let mut last: BTreeMap<(&str, u32, u64, String, u32), u64> = BTreeMap::new();
    for r in receipts(events) {
        if !published.contains(&r.id) {
            return Err(format!(
                "{} received {} at {:?}, which was never published",
                r.client, r.id, r.at
            ));
        }
        let key = (r.client, r.epoch, r.sid, r.id.publisher.clone(), r.id.epoch);
        if let Some(prev) = last.insert(key, r.id.seq) {
            if prev == r.id.seq {
                return Err(format!(
                    "{} (epoch {}, sid {}) received {} twice (second at {:?})",
                    r.client, r.epoch, r.sid, r.id, r.at
                ));
            }
            if prev > r.id.seq {
                return Err(format!(
                    "{} (epoch {}, sid {}) received {} after seq {prev} of the same publisher \
                     connection (at {:?}): out of order",
                    r.client, r.epoch, r.sid, r.id, r.at
                ));
            }
        }
    }
    Ok(())
}

/// No message ever crosses accounts: `account_of(client)` names each receiver's account.
pub fn no_cross_account(
    events: &[Event],
    account_of: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    for r in receipts(events) {
        if let Some(acct) = account_of(r.client) {
            if acct != r.id.account {
                return Err(format!(
                    "{} in account {acct} received {} from account {} on {:?} at {:?}",
                    r.client, r.id, r.id.account, r.subject, r.at
                ));
            }
        }
    }
    Ok(())
}

/// Queue-group semantics over `members` (clients whose receipts on subjects accepted by
/// `in_group` count as group deliveries): never more than one member gets a message, and when
/// `expect_all`, every message published to a subject accepted by `in_group` reached one.
pub fn queue_exactly_once(
    events: &[Event],
    members: &[&str],
    in_group: impl Fn(&str) -> bool,
    expect_all: bool,
) -> Result<(), String> {
    let mut got: BTreeMap<MsgId, &str> = BTreeMap::new();
    for r in receipts(events) {
        if !members.contains(&r.client) || !in_group(r.subject) {
            continue;
        }
        if let Some(first) = got.insert(r.id.clone(), r.client) {
            return Err(format!(
                "queue group delivered {} to both {first} and {} (at {:?})",
                r.id, r.client, r.at
            ));
        }
    }
    if expect_all {
        for (at, subject, id) in publishes(events) {
            if in_group(subject) && !got.contains_key(&id) {
                return Err(format!(
                    "{id} published to {subject:?} at {at:?} reached no queue member"
                ));
            }
        }
    }
    Ok(())
}

/// `client` received every message published to a subject accepted by `wanted`, from any
/// publisher, on any subscription.
pub fn received_all(
    events: &[Event],
    client: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let got: BTreeSet<MsgId> = receipts(events)
        .into_iter()
        .filter(|r| r.client == client)
        .map(|r| r.id)
        .collect();
    let missing: Vec<String> = publishes(events)
        .into_iter()
        .filter(|(_, s, id)| wanted(s) && !got.contains(id))
        .map(|(_, s, id)| format!("{id} on {s:?}"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{client} missed {} messages, first: {}",
            missing.len(),
            missing[0]
        ))
    }
}

/// `client` never received a message on a subject accepted by `forbidden` (any payload).
pub fn never_received(
    events: &[Event],
    client: &str,
    forbidden: impl Fn(&str) -> bool,
) -> Result<(), String> {
    for e in events.iter().filter(|e| e.client == client) {
        if let EventKind::Received { subject, sid, .. } = &e.kind {
            if forbidden(subject) {
                return Err(format!(
                    "{client} received forbidden subject {subject:?} on sid {sid} at {:?}",
                    e.at
                ));
            }
        }
    }
    Ok(())
}

/// Liveness after the faults: each of `receivers` got, after `after`, at least one message
/// from each of `publishers` that was published after `after`.
pub fn converged(
    events: &[Event],
    receivers: &[&str],
    publishers: &[&str],
    after: Duration,
) -> Result<(), String> {
    let rs = receipts(events);
    let published_at: BTreeMap<MsgId, Duration> = publishes(events)
        .into_iter()
        .map(|(at, _, id)| (id, at))
        .collect();
    for rcv in receivers {
        for p in publishers {
            let ok = rs.iter().any(|r| {
                r.client == *rcv
                    && r.id.publisher == *p
                    && published_at.get(&r.id).is_some_and(|t| *t >= after)
            });
            if !ok {
                return Err(format!(
                    "no convergence: {rcv} got nothing from {p} after {after:?} (heal)"
                ));
            }
        }
    }
    Ok(())
}

/// Counts trace events of `client` matching `f`.
pub fn count(events: &[Event], client: &str, f: impl Fn(&EventKind) -> bool) -> usize {
    events
        .iter()
        .filter(|e| e.client == client && f(&e.kind))
        .count()
}
