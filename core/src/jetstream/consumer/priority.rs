//! Priority groups for pull consumers (nats-server 2.11): `overflow` serves a request only
//! while the consumer is that backed up, `pinned_client` serves one client (its pin id)
//! until it goes quiet for `priority_timeout`, and (2.12) `prioritized` serves the waiting
//! requests of the lowest `priority` first (Go: consumer.go nextWaiting,
//! processNextMsgRequest, setPinnedTimer, waitQueue.addPrioritized).

use super::super::api::{ApiError, ConsumerConfig, NextRequest};
use super::super::store::UnixNanos;
use super::pull::Waiting;
use super::Consumer;

/// Go: JsDefaultPinnedTTL.
const DEFAULT_PIN_TTL: u64 = 120_000_000_000;

fn valid_group(g: &str) -> bool {
    (1..=16).contains(&g.len())
        && g.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'_' | b'=' | b'-'))
}

/// Go 2.11 checkConsumerCfg, the priority part.
pub(super) fn check(c: &mut ConsumerConfig) -> Result<(), ApiError> {
    let e = |code, text: &str| Err(ApiError::new(400, code, text));
    match c.priority_policy.as_str() {
        "" | "none" => {
            if !c.priority_groups.is_empty() {
                return e(
                    10196,
                    "consumer can not have priority groups when policy is none",
                );
            }
            if c.priority_timeout > 0 {
                return e(10197, "PinnedTTL cannot be set when PriorityPolicy is none");
            }
            return Ok(());
        }
        "overflow" | "pinned_client" | "prioritized" => {}
        _ => {
            return Err(super::super::api::err::invalid_json(
                "unknown priority policy",
            ))
        }
    }
    if c.deliver_subject.is_some() {
        return e(10178, "priority groups can not be used with push consumers");
    }
    if c.priority_groups.is_empty() {
        return e(
            10159,
            "Setting PriorityPolicy requires at least one PriorityGroup to be set",
        );
    }
    for g in &c.priority_groups {
        if g.is_empty() {
            return e(10161, "Group name cannot be an empty string");
        }
        if !valid_group(g) {
            return e(10162, "Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters");
        }
    }
    if c.priority_policy == "pinned_client" && c.priority_timeout == 0 {
        c.priority_timeout = DEFAULT_PIN_TTL;
    }
    Ok(())
}

/// The current pin of a `pinned_client` consumer.
#[derive(Debug, Clone)]
pub(super) struct Pin {
    pub(super) id: String,
    pub(super) since: UnixNanos,
    pub(super) expires: UnixNanos,
}

/// What to do with a waiting request for the message about to go out.
pub(super) enum Pick {
    Serve,
    Skip,
    WrongPin,
}

impl Consumer {
    fn policy(&self) -> &str {
        &self.config.priority_policy
    }

    /// Checks a pull request's priority fields; `Err` is the status to answer.
    pub(super) fn check_priority_request(
        &mut self,
        req: &NextRequest,
        now: UnixNanos,
    ) -> Result<(), &'static str> {
        let overflow = req.min_pending > 0 || req.min_ack_pending > 0;
        if overflow && self.policy() != "overflow" {
            return Err("400 Bad Request - Not a Overflow Priority consumer");
        }
        if !req.id.is_empty() && self.policy() != "pinned_client" {
            return Err("400 Bad Request - Not a Pinned Client Priority consumer");
        }
        if !(0..=9).contains(&req.priority) {
            return Err("400 Bad Request - Priority must be between 0 and 9");
        }
        if matches!(self.policy(), "" | "none") {
            return Ok(());
        }
        if req.group.is_empty() {
            return Err("400 Bad Request - Priority Group missing");
        }
        if !self.config.priority_groups.contains(&req.group) {
            return Err("400 Bad Request - Invalid Priority Group");
        }
        let ttl = self.config.priority_timeout;
        if let Some(pin) = &mut self.pin {
            if req.id == pin.id {
                pin.expires = now.saturating_add(ttl);
            } else if !req.id.is_empty() {
                return Err("423 Nats-Pin-Id mismatch");
            }
        }
        Ok(())
    }

    /// May `w` take the next message (Go: nextWaiting)? A pinned consumer without a pin
    /// pins the first request that has no id.
    pub(super) fn pick(&mut self, w: &mut Waiting, now: UnixNanos) -> Pick {
        match self.policy() {
            "pinned_client" => match &self.pin {
                None if w.pin_id.is_empty() => {
                    let id = self.new_pin_id();
                    w.pin_id = id.clone();
                    self.pin = Some(Pin {
                        id,
                        since: now,
                        expires: now.saturating_add(self.config.priority_timeout),
                    });
                    Pick::Serve
                }
                None => Pick::WrongPin,
                Some(p) if p.id == w.pin_id => Pick::Serve,
                Some(_) if w.pin_id.is_empty() => Pick::Skip,
                Some(_) => Pick::WrongPin,
            },
            "overflow" => {
                // Go compares with the pending count including the message in hand.
                let short = (w.min_pending > 0 && w.min_pending > self.num_pending + 1)
                    || (w.min_ack_pending > 0 && w.min_ack_pending > self.pending.len() as u64);
                if short {
                    Pick::Skip
                } else {
                    Pick::Serve
                }
            }
            _ => Pick::Serve,
        }
    }

    /// Puts a request (back) in the waiting queue: at the end, or with `prioritized` after
    /// every request of the same or a more urgent priority (Go: insertAtPosition), so equal
    /// priorities take turns.
    pub(super) fn enqueue(&mut self, w: Waiting) {
        if self.policy() != "prioritized" {
            self.waiting.push_back(w);
            return;
        }
        let at = self
            .waiting
            .iter()
            .position(|x| x.priority > w.priority)
            .unwrap_or(self.waiting.len());
        self.waiting.insert(at, w);
    }

    fn new_pin_id(&mut self) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..22)
            .map(|_| A[self.pin_rng.below(A.len() as u64) as usize] as char)
            .collect()
    }

    /// Unpins (Go 2.11: `$JS.API.CONSUMER.UNPIN`); false if `group` is not one of its groups.
    pub fn unpin(&mut self, group: &str) -> bool {
        if !self.config.priority_groups.iter().any(|g| g == group) {
            return false;
        }
        self.pin = None;
        true
    }

    /// A pin whose client went quiet past `priority_timeout` goes.
    pub(super) fn expire_pin(&mut self, now: UnixNanos) {
        if self.pin.as_ref().is_some_and(|p| p.expires <= now) {
            self.pin = None;
        }
    }

    /// The `Nats-Pin-Id` header deliveries of a pinned consumer carry.
    pub(super) fn pin_header(&self) -> Option<&str> {
        self.pin.as_ref().map(|p| p.id.as_str())
    }

    /// Go: `priority_groups` in consumer info (the first group).
    pub(super) fn priority_info(&self) -> Option<serde_json::Value> {
        let g = self.config.priority_groups.first()?;
        let mut v = serde_json::json!({ "group": g });
        if let Some(p) = &self.pin {
            v["pinned_client_id"] = serde_json::json!(p.id);
            v["pinned_ts"] = serde_json::json!(super::super::api::rfc3339(p.since));
        }
        Some(serde_json::json!([v]))
    }
}
