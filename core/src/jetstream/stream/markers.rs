//! Subject delete markers (Go 2.11, ADR-43 "limit tombstones"; KV "limit markers", ADR-48):
//! with `subject_delete_marker_ttl`, when `max_age` or a `Nats-TTL` removes the last message
//! of a subject, the stream stores a marker in its place so that watchers hear of it
//! (Go: filestore.go handleRemovalOrSdm, sdm.go).
//!
//! The marker is an empty message on that subject with `Nats-Marker-Reason: MaxAge`, a
//! `Nats-TTL` of the configured marker TTL (so it goes away in turn) and `Nats-Rollup: sub`.
//! It takes the ordinary publish path: it is de-duplicated, republished, delivered and made
//! durable like any other message. A removed marker (or KV purge tombstone) is never
//! replaced by another one.

use std::collections::BTreeMap;

use super::{Delivery, Stream, UnixNanos};
use crate::proto::headers::Headers;

/// The header naming why the server wrote a marker.
pub const MARKER_REASON: &str = "Nats-Marker-Reason";

/// A message the stream stored by itself: (subject, sequence, republished copy).
pub type Fired = (String, u64, Option<Delivery>);

/// What one expiry pass did.
#[derive(Debug, Default)]
pub struct Expired {
    /// Messages removed (by `max_age` or `Nats-TTL`).
    pub removed: u64,
    /// Messages the stream stored by itself: markers and what schedules published.
    pub markers: Vec<Fired>,
}

/// Is this message itself a marker, or a KV purge tombstone (Go: isSubjectDeleteMarker)?
pub(crate) fn is_marker(hdr: &[u8]) -> bool {
    if hdr.is_empty() {
        return false;
    }
    let Ok(h) = Headers::parse(hdr) else {
        return false;
    };
    h.get(MARKER_REASON).is_some_and(|v| !v.is_empty())
        || h.get("KV-Operation").is_some_and(|v| v == b"PURGE")
}

/// Whole seconds as a Go `time.Duration` string: `45s`, `1m0s`, `2h30m0s`.
pub(crate) fn go_secs(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// The header block of a marker whose own TTL is `ttl_ns`.
pub(crate) fn marker_headers(ttl_ns: u64) -> String {
    format!(
        "NATS/1.0\r\n{MARKER_REASON}: MaxAge\r\nNats-TTL: {}\r\nNats-Rollup: sub\r\n\r\n",
        go_secs(ttl_ns / 1_000_000_000)
    )
}

impl Stream {
    /// Fires the schedules due at `now`, removes what `max_age` and `Nats-TTL` expire, and
    /// stores a marker for each subject that lost its last message when the stream asks.
    pub fn expire(&mut self, now: UnixNanos) -> Expired {
        let fired = self.fire_schedules(now);
        let marker_ttl = self.config.subject_delete_marker_ttl;
        if marker_ttl == 0 {
            let removed = self.store.expire(now).unwrap_or(0) + self.expire_ttl(now);
            return Expired {
                removed,
                markers: fired,
            };
        }
        // Subject → was the newest removed message a marker? Ordered: markers are stored in
        // subject order, the same on every run.
        let mut touched: BTreeMap<String, bool> = BTreeMap::new();
        if self.config.max_age > 0 {
            let cutoff = now.saturating_sub(self.config.max_age as u64);
            let mut seq = self.store.state().first_seq;
            // Only the messages old enough to go are read (and `never` ones are stepped
            // over by the store; their subject keeps a message, so it gets no marker).
            while let Ok(m) = self.store.load_next_msg("", seq) {
                if m.ts > cutoff {
                    break;
                }
                touched.insert(m.subject.clone(), is_marker(&m.headers));
                seq = m.seq + 1;
            }
        }
        let mut removed = self.store.expire(now).unwrap_or(0);
        for seq in self.ttl.take_due(now) {
            let Ok(m) = self.store.load_msg(seq) else {
                continue;
            };
            if let Ok(true) = self.store.remove_msg(seq) {
                removed += 1;
                touched.insert(m.subject.clone(), is_marker(&m.headers));
            }
        }
        let mut markers = fired;
        let hdr = marker_headers(marker_ttl);
        for (subj, was_marker) in touched {
            if was_marker || self.store.filtered_state(&subj).msgs > 0 {
                continue;
            }
            if let Ok(st) = self.process(&subj, hdr.as_bytes(), b"", now, false) {
                if !st.duplicate {
                    markers.push((subj, st.seq, st.republish));
                }
            }
        }
        Expired { removed, markers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_strings() {
        assert_eq!(go_secs(1), "1s");
        assert_eq!(go_secs(60), "1m0s");
        assert_eq!(go_secs(90), "1m30s");
        assert_eq!(go_secs(7200), "2h0m0s");
        assert_eq!(go_secs(3661), "1h1m1s");
    }

    #[test]
    fn markers_and_purges_are_not_replaced() {
        assert!(is_marker(marker_headers(5_000_000_000).as_bytes()));
        assert!(is_marker(b"NATS/1.0\r\nKV-Operation: PURGE\r\n\r\n"));
        assert!(!is_marker(b"NATS/1.0\r\nKV-Operation: DEL\r\n\r\n"));
        assert!(!is_marker(b""));
    }
}
