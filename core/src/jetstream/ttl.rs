//! Per-message TTL: the `Nats-TTL` header of a stream with `allow_msg_ttl`
//! (Go 2.11: server/stream.go parseMessageTTL, the store's TTL wheel).
//!
//! The stream keeps an index of (expiry, sequence) in memory and rebuilds it from the stored
//! headers when it is opened; [`super::service::JetStream::tick`] removes what is due.

use std::collections::BTreeSet;

use super::api::{err, ApiError};
use super::store::{StreamStore, UnixNanos};
use crate::proto::headers::Headers;

/// The header.
pub const HEADER: &str = "Nats-TTL";

const SEC: u64 = 1_000_000_000;

/// A parsed `Nats-TTL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// `never`: the message does not expire by TTL.
    Never,
    /// Expires this many whole seconds after it was stored.
    Secs(u64),
}

/// A Go duration (`1h30m`, `1.5s`, `250ms`) in nanoseconds; `None` if it is not one.
fn go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += num * unit;
    }
    let ns = total as i128;
    Some(if neg { -ns } else { ns })
}

/// Parses a `Nats-TTL` value: `never`, a Go duration of at least one second, or a number
/// of seconds (Go: parseMessageTTL). `Ok(None)`: no TTL (an empty value, or `0`).
pub fn parse(v: &str) -> Result<Option<Ttl>, ApiError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.eq_ignore_ascii_case("never") {
        return Ok(Some(Ttl::Never));
    }
    if let Some(ns) = go_duration(v) {
        if ns < i128::from(SEC) {
            return Err(err::msg_ttl_invalid());
        }
        let secs = u64::try_from(ns / i128::from(SEC)).unwrap_or(u64::MAX);
        return Ok(Some(Ttl::Secs(secs)));
    }
    match v.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(Ttl::Secs(n))),
        Err(_) => Err(err::msg_ttl_invalid()),
    }
}

/// The `Nats-TTL` of a raw header block, if it has a valid one.
pub fn from_headers(hdr: &[u8]) -> Result<Option<Ttl>, ApiError> {
    if hdr.is_empty() {
        return Ok(None);
    }
    let Ok(h) = Headers::parse(hdr) else {
        return Ok(None);
    };
    match h.get(HEADER) {
        Some(v) => parse(&String::from_utf8_lossy(v)),
        None => Ok(None),
    }
}

/// Is this raw header block's `Nats-TTL` `never`? (Such a message is exempt from the
/// stream's `max_age`.) A cheap scan first: most headers never say "never".
pub fn is_never(hdr: &[u8]) -> bool {
    hdr.windows(5).any(|w| w.eq_ignore_ascii_case(b"never"))
        && matches!(from_headers(hdr), Ok(Some(Ttl::Never)))
}

/// Messages waiting to expire, soonest first.
#[derive(Debug, Default)]
pub struct TtlIndex {
    due: BTreeSet<(UnixNanos, u64)>,
}

impl TtlIndex {
    /// Rebuilds the index from the messages a store holds.
    pub fn rebuild(store: &dyn StreamStore) -> Self {
        let mut idx = Self::default();
        let mut seq = store.state().first_seq;
        while let Ok(m) = store.load_next_msg("", seq) {
            if let Ok(Some(Ttl::Secs(s))) = from_headers(&m.headers) {
                idx.track(m.seq, m.ts, s);
            }
            seq = m.seq + 1;
        }
        idx
    }

    /// Message `seq`, stored at `ts`, expires `secs` later.
    pub fn track(&mut self, seq: u64, ts: UnixNanos, secs: u64) {
        self.due
            .insert((ts.saturating_add(secs.saturating_mul(SEC)), seq));
    }

    /// When the next message expires.
    pub fn next(&self) -> Option<UnixNanos> {
        self.due.first().map(|(t, _)| *t)
    }

    /// Takes the sequences due at `now`.
    pub fn take_due(&mut self, now: UnixNanos) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(&(t, seq)) = self.due.first() {
            if t > now {
                break;
            }
            self.due.pop_first();
            out.push(seq);
        }
        out
    }

    /// Nothing waiting?
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse("30s").unwrap(), Some(Ttl::Secs(30)));
        assert_eq!(parse("1h").unwrap(), Some(Ttl::Secs(3600)));
        assert_eq!(parse("1m30s").unwrap(), Some(Ttl::Secs(90)));
        assert_eq!(parse("1.5s").unwrap(), Some(Ttl::Secs(1)));
        assert_eq!(parse("45").unwrap(), Some(Ttl::Secs(45)));
        assert_eq!(parse("never").unwrap(), Some(Ttl::Never));
        assert_eq!(parse("NEVER").unwrap(), Some(Ttl::Never));
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(
            parse("99999999999999999999999999h").unwrap(),
            Some(Ttl::Secs(u64::MAX))
        );
    }

    #[test]
    fn refuses_short_and_garbage() {
        for bad in ["500ms", "0s", "0", "-5", "-1s", "soon", "5x", "1.2.3s"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(
                (e.err_code, e.description.as_str()),
                (10165, "invalid per-message TTL"),
                "{bad}"
            );
        }
    }

    #[test]
    fn never_only_from_the_header() {
        assert!(is_never(b"NATS/1.0\r\nNats-TTL: never\r\n\r\n"));
        assert!(is_never(b"NATS/1.0\r\nNats-TTL: Never\r\n\r\n"));
        assert!(!is_never(b""));
        assert!(!is_never(b"NATS/1.0\r\nNats-TTL: 5s\r\nX: never\r\n\r\n"));
        assert!(!is_never(b"NATS/1.0\r\nX-TTL: never\r\n\r\n"));
    }

    #[test]
    fn index_hands_out_due_in_order() {
        let mut i = TtlIndex::default();
        i.track(2, 10 * SEC, 5);
        i.track(1, 10 * SEC, 1);
        assert_eq!(i.next(), Some(11 * SEC));
        assert!(i.take_due(10 * SEC).is_empty());
        assert_eq!(i.take_due(15 * SEC), vec![1, 2]);
        assert!(i.is_empty());
    }
}
