//! Counters (Go 2.12, ADR-49): on a stream with `allow_msg_counter`, every subject is a
//! counter. A publish carries `Nats-Incr: +N` (or `-N`) and no body; the stream loads the
//! subject's last value, adds the increment and stores `{"val":"<total>"}` with the headers
//! kept, and the PubAck carries the total as `val` (Go: stream.go processJetStreamMsg).
//!
//! A counter message arriving through a source (`Nats-Stream-Source`) is not added as is:
//! its increment becomes the difference between the value it carries and the last value seen
//! from that origin stream and subject, which the `Nats-Counter-Sources` header keeps, so an
//! aggregate counter stays right however many source messages it missed.
//!
//! Values are 128-bit here (nats-server uses arbitrary precision); an increment or a total
//! outside that range is refused as invalid.

use std::collections::BTreeMap;

use super::super::api::ApiError;
use super::{Hdr, Stream, SOURCE_HEADER};
use crate::proto::headers::Headers;

/// The increment header.
pub const INCR: &str = "Nats-Incr";
/// The per-source totals an aggregate counter keeps.
pub const SOURCES: &str = "Nats-Counter-Sources";

/// 10168.
pub(super) fn incr_disabled() -> ApiError {
    ApiError::new(400, 10168, "message counters is disabled")
}
/// 10169.
pub(super) fn incr_missing() -> ApiError {
    ApiError::new(400, 10169, "message counter increment is missing")
}
/// 10170.
pub(super) fn incr_payload() -> ApiError {
    ApiError::new(400, 10170, "message counter has payload")
}
/// 10171.
pub(super) fn incr_invalid() -> ApiError {
    ApiError::new(400, 10171, "message counter increment is invalid")
}
/// 10172.
pub(super) fn counter_broken() -> ApiError {
    ApiError::new(400, 10172, "message counter is broken")
}
/// 10173.
pub(super) fn mirror_with_counters() -> ApiError {
    ApiError::new(400, 10173, "stream mirrors can not also calculate counters")
}

/// A `Nats-Incr` value: an optionally signed decimal integer.
fn parse_incr(v: &str) -> Option<i128> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.strip_prefix('+').unwrap_or(v).parse().ok()
}

/// The `val` of a counter body `{"val":"N"}`.
fn body_value(body: &[u8]) -> Option<i128> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("val")?.as_str()?.parse().ok()
}

/// Checks a publish's `Nats-Incr` before anything else (Go order): its form, that the stream
/// counts, that there is no body and no header a counter cannot honour, and that a counting
/// stream gets nothing else. `Ok(Some(n))`: an increment to apply.
pub(super) fn check(
    counts: bool,
    h: &Hdr,
    payload: &[u8],
    sourced: bool,
) -> Result<Option<i128>, ApiError> {
    let incr = match h.get(INCR).filter(|v| !v.is_empty()) {
        Some(v) => Some(parse_incr(&v).ok_or_else(incr_invalid)?),
        None => None,
    };
    if incr.is_some() && !sourced {
        if !counts {
            return Err(incr_disabled());
        }
        if !payload.is_empty() {
            return Err(incr_payload());
        }
        let conflicting = [
            "Nats-Rollup",
            "Nats-Expected-Stream",
            "Nats-Expected-Last-Msg-Id",
            "Nats-Expected-Last-Sequence",
            "Nats-Expected-Last-Subject-Sequence",
            "Nats-Expected-Last-Subject-Sequence-Subject",
        ];
        if conflicting.iter().any(|n| h.get(n).is_some()) {
            return Err(incr_invalid());
        }
    }
    if counts && incr.is_none() {
        return Err(incr_missing());
    }
    Ok(incr.filter(|_| counts))
}

/// What a counter publish stores instead of what was sent.
pub(super) struct Counted {
    /// Headers (with `Nats-Incr` rewritten for a sourced message, and the source totals).
    pub(super) hdr: Vec<u8>,
    /// `{"val":"N"}`.
    pub(super) payload: Vec<u8>,
    /// The new total.
    pub(super) val: String,
}

type SourceTotals = BTreeMap<String, BTreeMap<String, String>>;

impl Stream {
    /// Adds `incr` to the last value of `subj` (Go: the counter part of processJetStreamMsg).
    pub(super) fn count(
        &self,
        subj: &str,
        hdr: &[u8],
        payload: &[u8],
        mut incr: i128,
    ) -> Result<Counted, ApiError> {
        let (mut total, mut sources) = (0i128, SourceTotals::new());
        if let Ok(last) = self.store.load_last_msg(subj) {
            total = body_value(&last.payload).ok_or_else(counter_broken)?;
            if let Some(s) = Hdr::parse(&last.headers).get(SOURCES) {
                sources = serde_json::from_str(&s).map_err(|_| counter_broken())?;
            }
        }
        let mut h = Headers::parse(hdr).map_err(|_| incr_invalid())?;
        if let Some(src) = h.get(SOURCE_HEADER) {
            // A sourced total: count what changed at its origin since we last heard from it.
            let src = String::from_utf8_lossy(src).into_owned();
            let fields: Vec<&str> = src.split(' ').collect();
            let origin = fields.first().copied().unwrap_or_default().to_owned();
            let origin_subj = fields.get(4).copied().unwrap_or(subj).to_owned();
            let now = body_value(payload).ok_or_else(counter_broken)?;
            let per = sources.entry(origin).or_default();
            let before = per
                .insert(origin_subj, now.to_string())
                .and_then(|v| v.parse::<i128>().ok())
                .unwrap_or(0);
            incr = now.checked_sub(before).ok_or_else(incr_invalid)?;
            h.insert(INCR, incr.to_string())
                .map_err(|_| incr_invalid())?;
        }
        total = total.checked_add(incr).ok_or_else(incr_invalid)?;
        if !sources.is_empty() {
            let json = serde_json::to_string(&sources).map_err(|_| counter_broken())?;
            h.insert(SOURCES, json).map_err(|_| counter_broken())?;
        }
        let val = total.to_string();
        Ok(Counted {
            hdr: h.to_bytes().to_vec(),
            payload: format!("{{\"val\":\"{val}\"}}").into_bytes(),
            val,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_parse_as_signed_integers() {
        assert_eq!(parse_incr("+1"), Some(1));
        assert_eq!(parse_incr("-10"), Some(-10));
        assert_eq!(parse_incr("0"), Some(0));
        assert_eq!(parse_incr("42"), Some(42));
        for bad in ["", "+", "1.5", "x", "+-1", " 1", "1e3"] {
            assert_eq!(parse_incr(bad), None, "{bad}");
        }
        assert_eq!(parse_incr(&"9".repeat(60)), None);
    }

    #[test]
    fn bodies() {
        assert_eq!(body_value(br#"{"val":"-3"}"#), Some(-3));
        assert_eq!(body_value(br#"{"val":3}"#), None);
        assert_eq!(body_value(b"x"), None);
    }
}
