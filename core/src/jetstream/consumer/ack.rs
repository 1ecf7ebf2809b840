//! Acknowledgements and redelivery (Go: processAck, processNak, processTerm, progressUpdate,
//! checkPending).

use super::super::store::UnixNanos;
use super::{Consumer, ConsumerEvent};

/// An acknowledgement kind parsed from an ack body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    /// `+ACK`, `+OK` or empty.
    Ack,
    /// `-NAK`, optionally with a redelivery delay in nanoseconds
    /// (`-NAK {"delay": 2000000000}` or `-NAK 2s`).
    Nak(Option<u64>),
    /// `+WPI`: still working, restart the ack timer.
    Progress,
    /// `+TERM`: never redeliver.
    Term,
    /// `+NXT`: ack and ask for more.
    Next,
    /// Anything else: Go ignores it.
    Unknown,
}

impl AckKind {
    /// Parses an ack body.
    pub fn parse(body: &[u8]) -> Self {
        let b = body.trim_ascii();
        if b.is_empty() || b == b"+ACK" || b == b"+OK" {
            Self::Ack
        } else if b.starts_with(b"+NXT") {
            Self::Next
        } else if let Some(rest) = b.strip_prefix(b"-NAK") {
            Self::Nak(nak_delay(rest.trim_ascii()))
        } else if b == b"+WPI" {
            Self::Progress
        } else if b.starts_with(b"+TERM") {
            Self::Term
        } else {
            Self::Unknown
        }
    }
}

/// Go: a NAK delay is `{"delay": <ns>}` or a Go duration; a bad one is a plain NAK.
fn nak_delay(arg: &[u8]) -> Option<u64> {
    if arg.is_empty() {
        return None;
    }
    if arg[0] == b'{' {
        #[derive(serde::Deserialize)]
        struct Opts {
            #[serde(default)]
            delay: i64,
        }
        let o: Opts = crate::gojson::from_slice(arg, crate::gojson::Unknown::Ignore).ok()?;
        return u64::try_from(o.delay).ok();
    }
    parse_go_duration(std::str::from_utf8(arg).ok()?)
}

/// A Go `time.ParseDuration` string (`1.5s`, `1m30s`, `250ms`) in nanoseconds.
pub(crate) fn parse_go_duration(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if n == 0 {
            return None;
        }
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest.bytes().take_while(|c| !c.is_ascii_digit()).count();
        let scale = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += v * scale;
    }
    Some(total as u64)
}

impl Consumer {
    /// How long the ack timer of `seq` runs: `ack_wait`, or the backoff step for the number
    /// of deliveries made (the last step repeats).
    pub(super) fn wait_for(&self, seq: u64) -> u64 {
        let b = &self.config.backoff;
        if b.is_empty() {
            return self.config.ack_wait;
        }
        let redelivered = self
            .deliveries
            .get(&seq)
            .copied()
            .unwrap_or(1)
            .saturating_sub(1) as usize;
        b[redelivered.min(b.len() - 1)]
    }

    /// An ack for the message at `sseq` (Go: processAck).
    pub fn on_ack(&mut self, sseq: u64, kind: AckKind, now: UnixNanos) {
        // Go: a `flow_control` consumer has no ack subscription; only the sourcing stream's
        // flow-control replies ack it (see `Consumer::ack_through`).
        if self.config.ack_policy == super::config::FLOW_CONTROL {
            return;
        }
        self.last_activity = now;
        match kind {
            AckKind::Ack | AckKind::Next => {
                if self.ack(sseq) {
                    self.last_ack_ts = now;
                }
            }
            AckKind::Term => {
                let deliveries = self.deliveries.get(&sseq).copied().unwrap_or(0);
                if self.ack(sseq) {
                    self.last_ack_ts = now;
                    self.event(ConsumerEvent::Terminated {
                        stream: self.stream.clone(),
                        consumer: self.name.clone(),
                        stream_seq: sseq,
                        deliveries,
                    });
                }
            }
            AckKind::Nak(delay) => {
                let wait = self.wait_for(sseq);
                let Some(p) = self.pending.get_mut(&sseq) else {
                    return;
                };
                self.state_dirty = true;
                match delay {
                    // Go: the timer is set as if the message went out `ack_wait - delay` ago.
                    Some(d) => {
                        p.sent = (now + d).saturating_sub(wait);
                        self.redeliver.remove(&sseq);
                    }
                    None => {
                        self.redeliver.insert(sseq);
                    }
                }
            }
            AckKind::Progress => {
                if let Some(p) = self.pending.get_mut(&sseq) {
                    p.sent = now;
                    self.state_dirty = true;
                }
            }
            AckKind::Unknown => {}
        }
    }

    /// Acknowledges `sseq` (and, with ack policy `all`, everything below it); true if it was
    /// pending.
    pub(super) fn ack(&mut self, sseq: u64) -> bool {
        let done: Vec<u64> = match self.config.ack_policy.as_str() {
            "all" | super::config::FLOW_CONTROL => {
                self.pending.range(..=sseq).map(|(s, _)| *s).collect()
            }
            "explicit" if self.pending.contains_key(&sseq) => vec![sseq],
            _ => Vec::new(),
        };
        for s in &done {
            self.pending.remove(s);
            self.deliveries.remove(s);
            self.redeliver.remove(s);
        }
        let any = !done.is_empty();
        self.state_dirty |= any;
        self.acked.extend(done);
        self.advance_floor();
        any
    }

    pub(super) fn advance_floor(&mut self) {
        match self.pending.first_key_value() {
            Some((s, p)) => {
                self.ack_floor_sseq = s.saturating_sub(1).max(self.ack_floor_sseq);
                self.ack_floor_cseq = p.cseq.saturating_sub(1).max(self.ack_floor_cseq);
            }
            None => {
                self.ack_floor_sseq = self.last_sseq.max(self.ack_floor_sseq);
                self.ack_floor_cseq = self.cseq;
            }
        }
    }

    /// Max deliveries reached: Go drops it from pending and announces it.
    pub(super) fn give_up(&mut self, seq: u64, deliveries: u64) {
        // Go leaves the ack floor where it is until the next ack moves it.
        self.pending.remove(&seq);
        self.deliveries.remove(&seq);
        self.state_dirty = true;
        self.event(ConsumerEvent::MaxDeliveries {
            stream: self.stream.clone(),
            consumer: self.name.clone(),
            stream_seq: seq,
            deliveries,
        });
    }

    /// Queues for redelivery what waited past its ack timer (Go: checkPending).
    pub(super) fn check_pending(&mut self, now: UnixNanos) {
        // Go: no ack wait (ack policy `flow_control`), no redelivery timer.
        if self.config.ack_wait == 0 && self.config.backoff.is_empty() {
            return;
        }
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(s, p)| {
                !self.redeliver.contains(s) && now.saturating_sub(p.sent) >= self.wait_for(**s)
            })
            .map(|(s, _)| *s)
            .collect();
        self.redeliver.extend(expired);
    }
}
