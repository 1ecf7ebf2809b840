//! Message schedules (Go 2.12, ADR-51; Go: scheduler.go, stream.go): on a stream with
//! `allow_msg_schedules`, a message with `Nats-Schedule: @at <RFC 3339>` or
//! `@every <duration>` and `Nats-Schedule-Target: <subject>` is a schedule. When it is due,
//! the stream publishes its body (or the last message of `Nats-Schedule-Source`) to the
//! target, with `Nats-Scheduler: <schedule subject>` and `Nats-Schedule-Next` (`purge` for a
//! one-off, else the next time), and `Nats-Schedule-TTL`/`-Rollup` as `Nats-TTL`/`Nats-Rollup`.
//! A one-off schedule is then removed; a repeating one is armed again.
//!
//! The scheduler is a sans-IO timer: an index of (due time, schedule sequence) rebuilt from
//! the store when the stream opens, fired by [`Stream::expire`] with the wall time the
//! caller passes in, and reported through [`Stream::next_ttl`].

use std::collections::BTreeSet;

use super::super::api::{err, ApiError};
use super::super::sourcing::parse_time;
use super::super::store::{StreamStore, UnixNanos};
use super::super::ttl::{self, Ttl};
use super::{Hdr, Stream};
use crate::proto::headers::Headers;
use crate::subject;

/// The schedule pattern.
pub(super) const SCHEDULE: &str = "Nats-Schedule";
/// Where a due schedule publishes.
pub(super) const TARGET: &str = "Nats-Schedule-Target";
/// A subject whose last message is published instead of the schedule's own body.
pub(super) const SOURCE: &str = "Nats-Schedule-Source";
/// `Nats-TTL` of what a schedule publishes.
pub(super) const SCHED_TTL: &str = "Nats-Schedule-TTL";
/// `Nats-Rollup` of what a schedule publishes (`sub` only).
pub(super) const ROLLUP: &str = "Nats-Schedule-Rollup";
/// On a published message: the schedule's subject.
pub(super) const SCHEDULER: &str = "Nats-Scheduler";
/// On a published message: `purge`, or the next time the schedule fires.
pub(super) const NEXT: &str = "Nats-Schedule-Next";

const SEC: u64 = 1_000_000_000;

fn disabled() -> ApiError {
    ApiError::new(400, 10188, "message schedules is disabled")
}
fn pattern_invalid() -> ApiError {
    ApiError::new(400, 10189, "message schedules pattern is invalid")
}
fn target_invalid() -> ApiError {
    ApiError::new(400, 10190, "message schedules target is invalid")
}
fn ttl_invalid() -> ApiError {
    ApiError::new(400, 10191, "message schedules invalid per-message TTL")
}
fn rollup_invalid() -> ApiError {
    ApiError::new(400, 10192, "message schedules invalid rollup")
}
fn source_invalid() -> ApiError {
    ApiError::new(400, 10203, "message schedules source is invalid")
}
fn scheduler_invalid() -> ApiError {
    ApiError::new(400, 10212, "message schedules invalid scheduler")
}

/// A parsed schedule pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// Once, at this time.
    At(UnixNanos),
    /// Every this many seconds.
    Every(u64),
}

/// Parses `@at <RFC 3339>` or `@every <Go duration of at least 1 s>` (Go: parseMsgSchedule;
/// cron patterns are not supported).
pub(crate) fn parse_pattern(p: &str) -> Option<Pattern> {
    if let Some(t) = p.strip_prefix("@at ") {
        return parse_time(t).map(Pattern::At);
    }
    if let Some(d) = p.strip_prefix("@every ") {
        return match ttl::parse(d) {
            Ok(Some(Ttl::Secs(s))) => Some(Pattern::Every(s)),
            _ => None,
        };
    }
    None
}

impl Pattern {
    /// When a schedule stored (or last fired) at `from` fires next, not before `now` (Go:
    /// a repeating schedule late after a restart fires once, then keeps its rhythm).
    fn next(self, from: UnixNanos, now: UnixNanos) -> UnixNanos {
        match self {
            Self::At(t) => t,
            Self::Every(s) => {
                let round = |t: UnixNanos| (t + SEC / 2) / SEC * SEC;
                let next = round(from) + s * SEC;
                if next < now {
                    round(now) + s * SEC
                } else {
                    next
                }
            }
        }
    }
}

/// Schedules waiting to fire, soonest first.
#[derive(Debug, Default)]
pub(crate) struct Schedules {
    due: BTreeSet<(UnixNanos, u64)>,
}

impl Schedules {
    /// Rebuilds the timer from the schedules a store holds.
    pub(crate) fn rebuild(store: &dyn StreamStore) -> Self {
        let mut s = Self::default();
        let mut seq = store.state().first_seq;
        while let Ok(m) = store.load_next_msg("", seq) {
            seq = m.seq + 1;
            if let Some(p) = Hdr::parse(&m.headers)
                .get(SCHEDULE)
                .and_then(|v| parse_pattern(&v))
            {
                s.due.insert((p.next(m.ts, m.ts), m.seq));
            }
        }
        s
    }

    /// When the next schedule fires.
    pub(crate) fn next(&self) -> Option<UnixNanos> {
        self.due.first().map(|(t, _)| *t)
    }
}

/// Checks a published schedule (or a client's purge of one) and returns the headers to
/// store when they change: a schedule rolls up its subject (Go: stream.go, the
/// message-scheduling part of processJetStreamMsg).
pub(super) fn check(
    allowed: bool,
    ttl_allowed: bool,
    captures: impl Fn(&str) -> bool,
    subj: &str,
    h: &Hdr,
    hdr: &[u8],
) -> Result<Option<Vec<u8>>, ApiError> {
    if let Some(p) = h.get(SCHEDULE).filter(|p| !p.is_empty()) {
        let Some(_) = parse_pattern(&p) else {
            return Err(if allowed {
                pattern_invalid()
            } else {
                disabled()
            });
        };
        if !allowed {
            return Err(disabled());
        }
        let sched_ttl = h.get(SCHED_TTL).filter(|v| !v.is_empty());
        if let Some(t) = &sched_ttl {
            ttl::parse(t).map_err(|_| ttl_invalid())?;
        }
        if h.get(ROLLUP).is_some_and(|r| !r.is_empty() && r != "sub") {
            return Err(rollup_invalid());
        }
        if sched_ttl.is_some() && !ttl_allowed {
            return Err(err::msg_ttl_disabled());
        }
        let target = h.get(TARGET).unwrap_or_default();
        if target.is_empty()
            || !subject::is_valid_literal_subject(target.as_bytes())
            || target == subj
            || !captures(&target)
        {
            return Err(target_invalid());
        }
        if let Some(src) = h.get(SOURCE).filter(|s| !s.is_empty()) {
            if src == target
                || src == subj
                || !subject::is_valid_literal_subject(src.as_bytes())
                || !captures(&src)
            {
                return Err(source_invalid());
            }
        }
        return match h.get("Nats-Rollup") {
            None => {
                let mut hs = Headers::parse(hdr).map_err(|_| pattern_invalid())?;
                hs.append("Nats-Rollup", "sub")
                    .map_err(|_| rollup_invalid())?;
                Ok(Some(hs.to_bytes().to_vec()))
            }
            Some(r) if r == "sub" => Ok(None),
            Some(_) => Err(rollup_invalid()),
        };
    }
    if let Some(next) = h.get(NEXT).filter(|v| !v.is_empty()) {
        // Clients may only use Nats-Schedule-Next to purge a schedule.
        let scheduler = h.get(SCHEDULER).unwrap_or_default();
        if next != "purge"
            || scheduler.is_empty()
            || scheduler == subj
            || !subject::is_valid_literal_subject(scheduler.as_bytes())
        {
            return Err(scheduler_invalid());
        }
        if !allowed {
            return Err(disabled());
        }
    } else if h.get(SCHEDULER).is_some() {
        return Err(scheduler_invalid());
    }
    Ok(None)
}

impl Stream {
    /// Arms the timer for a schedule just stored.
    pub(super) fn track_schedule(&mut self, seq: u64, ts: UnixNanos, hdr: &[u8]) {
        if !self.config.allow_msg_schedules {
            return;
        }
        if let Some(p) = Hdr::parse(hdr)
            .get(SCHEDULE)
            .and_then(|v| parse_pattern(&v))
        {
            self.schedules.due.insert((p.next(ts, ts), seq));
        }
    }

    /// A client's `Nats-Schedule-Next: purge` just stored: the schedule goes.
    pub(super) fn purge_schedule(&mut self, h: &Hdr) {
        if h.get(NEXT).as_deref() == Some("purge") {
            if let Some(s) = h.get(SCHEDULER) {
                let _ = self.store.purge_ex(&s, 0, 0);
            }
        }
    }

    /// Publishes what is due at `now`; returns (subject, sequence, republished copy) of each
    /// message stored.
    pub(super) fn fire_schedules(&mut self, now: UnixNanos) -> Vec<super::Fired> {
        let mut out = Vec::new();
        // Bounded: each schedule fires at most once per call.
        while let Some(&(t, seq)) = self.schedules.due.first() {
            if t > now {
                break;
            }
            self.schedules.due.pop_first();
            let Ok(m) = self.store.load_msg(seq) else {
                continue;
            };
            let h = Hdr::parse(&m.headers);
            let (Some(p), Some(target)) = (
                h.get(SCHEDULE).and_then(|v| parse_pattern(&v)),
                h.get(TARGET).filter(|t| !t.is_empty()),
            ) else {
                continue;
            };
            let mut body = m.payload.to_vec();
            let mut base = m.headers.to_vec();
            if let Some(src) = h.get(SOURCE).filter(|s| !s.is_empty()) {
                if let Ok(s) = self.store.load_last_msg(&src) {
                    body = s.payload.to_vec();
                    base = s.headers.to_vec();
                }
            }
            let next = match p {
                Pattern::At(_) => None,
                Pattern::Every(_) => Some(p.next(now, now)),
            };
            let hdr = published_headers(&base, &m.subject, &h, next);
            if let Ok(st) = self.process(&target, &hdr, &body, now, true) {
                if !st.duplicate {
                    out.push((target.clone(), st.seq, st.republish));
                }
            }
            match next {
                // A one-off schedule is done (Go: Nats-Schedule-Next: purge).
                None => {
                    let _ = self.store.remove_msg(seq);
                }
                Some(t) => {
                    self.schedules.due.insert((t, seq));
                }
            }
            if out.len() > 10_000 {
                break;
            }
        }
        out
    }
}

/// The headers of what a schedule publishes: its own (or its source's) minus the schedule,
/// expected-*, id, TTL and roll-up lines, plus the scheduler and the next time.
fn published_headers(
    base: &[u8],
    scheduler: &str,
    sched: &Hdr,
    next: Option<UnixNanos>,
) -> Vec<u8> {
    let mut h = Headers::parse(base).unwrap_or_default();
    let drop: Vec<String> = h
        .iter()
        .map(|(n, _)| n.to_owned())
        .filter(|n| {
            let l = n.to_ascii_lowercase();
            l.starts_with("nats-schedule")
                || l.starts_with("nats-expected-")
                || l == "nats-msg-id"
                || l == "nats-ttl"
                || l == "nats-rollup"
        })
        .collect();
    for n in drop {
        h.remove(&n);
    }
    let _ = h.append(SCHEDULER, scheduler.to_owned());
    let next = next.map_or_else(|| "purge".to_owned(), super::super::api::rfc3339);
    let _ = h.append(NEXT, next);
    if let Some(t) = sched.get(SCHED_TTL).filter(|v| !v.is_empty()) {
        let _ = h.append("Nats-TTL", t);
    }
    if let Some(r) = sched.get(ROLLUP).filter(|v| !v.is_empty()) {
        let _ = h.append("Nats-Rollup", r);
    }
    h.to_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(
            parse_pattern("@at 2023-11-14T22:13:20Z"),
            Some(Pattern::At(1_700_000_000 * SEC))
        );
        assert_eq!(parse_pattern("@every 5m"), Some(Pattern::Every(300)));
        assert_eq!(parse_pattern("@every 10"), Some(Pattern::Every(10)));
        for bad in [
            "",
            "@at soon",
            "@every 500ms",
            "@every never",
            "0 * * * * *",
            "@at",
        ] {
            assert_eq!(parse_pattern(bad), None, "{bad}");
        }
        // Late after a restart: fire once, then keep the rhythm from now.
        let p = Pattern::Every(10);
        assert_eq!(p.next(100 * SEC, 100 * SEC), 110 * SEC);
        assert_eq!(p.next(100 * SEC, 500 * SEC), 510 * SEC);
    }
}
