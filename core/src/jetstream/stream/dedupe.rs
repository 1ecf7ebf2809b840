//! The duplicate window: `Nats-Msg-Id` → the sequence that stored it, for
//! `duplicate_window` (Go: server/stream.go checkMsgId, storeMsgIdLocked, rebuildDedupe).
//!
//! The window lives in memory, and it is rebuilt from the store whenever a stream is opened
//! (recovery after a crash or a clean stop, a restore from a snapshot): a client that never
//! saw its PubAck publishes again with the same id after the restart, and that retry must be
//! answered as a duplicate, not stored twice. Every path that stores a message records its id
//! here, so the live window and a rebuilt one hold the same entries; a replicated stream
//! rebuilds it from its applied store the same way.

use std::collections::{BTreeMap, VecDeque};

use super::super::store::{StreamStore, UnixNanos};
use crate::proto::headers::Headers;

/// The header carrying a publisher's message id.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// Message ids seen within the duplicate window.
#[derive(Debug, Default)]
pub(crate) struct Dedupe {
    /// id → (sequence, store time).
    ids: BTreeMap<String, (u64, UnixNanos)>,
    /// (store time, id), oldest first: what [`Dedupe::prune`] drops.
    order: VecDeque<(UnixNanos, String)>,
    /// The id of the last message stored, for `Nats-Expected-Last-Msg-Id`.
    pub(crate) last_msg_id: String,
}

/// The `Nats-Msg-Id` of a raw header block; a cheap scan first, since most headers have none.
pub(crate) fn msg_id_of(hdr: &[u8]) -> Option<String> {
    if hdr.is_empty()
        || !hdr
            .windows(MSG_ID.len())
            .any(|w| w.eq_ignore_ascii_case(MSG_ID.as_bytes()))
    {
        return None;
    }
    let h = Headers::parse(hdr).ok()?;
    let v = String::from_utf8_lossy(h.get(MSG_ID)?).trim().to_owned();
    (!v.is_empty()).then_some(v)
}

impl Dedupe {
    /// Rebuilds the window from what `store` holds (Go: rebuildDedupe): the ids of the
    /// messages stored within `window` of the newest one, found by walking back from the
    /// tail only. Wall time is not known here: the window is anchored at the newest message,
    /// which keeps a superset of what is still live; the first publish prunes it with its
    /// own `now` before it looks anything up.
    pub(crate) fn rebuild(store: &dyn StreamStore, window: u64) -> Self {
        let mut d = Self::default();
        if window == 0 {
            return d;
        }
        let state = store.state();
        if state.msgs == 0 {
            return d;
        }
        let newest = store.load_last_msg("").map_or(state.last_ts, |m| m.ts);
        for seq in store.seqs_since(newest.saturating_sub(window)) {
            let Ok(m) = store.load_msg(seq) else {
                continue;
            };
            let id = msg_id_of(&m.headers);
            if let Some(id) = &id {
                d.record(id, m.seq, m.ts);
            }
            if m.seq == state.last_seq {
                d.last_msg_id = id.unwrap_or_default();
            }
        }
        d
    }

    /// Forgets the ids older than `window` at `now`.
    pub(crate) fn prune(&mut self, now: UnixNanos, window: u64) {
        while let Some((ts, _)) = self.order.front() {
            if now.saturating_sub(*ts) <= window {
                break;
            }
            let Some((ts, id)) = self.order.pop_front() else {
                break;
            };
            // Only the entry this slot recorded: a later record of the same id (a mirror
            // copies its origin's ids without judging them) has its own slot.
            if self.ids.get(&id).is_some_and(|(_, t)| *t == ts) {
                self.ids.remove(&id);
            }
        }
    }

    /// The sequence that stored `id`, if it is in the window.
    pub(crate) fn check(&self, id: &str) -> Option<u64> {
        self.ids.get(id).map(|(seq, _)| *seq)
    }

    /// Records that `seq`, stored at `ts`, carried `id`.
    pub(crate) fn record(&mut self, id: &str, seq: u64, ts: UnixNanos) {
        self.ids.insert(id.to_owned(), (seq, ts));
        self.order.push_back((ts, id.to_owned()));
        id.clone_into(&mut self.last_msg_id);
    }

    /// Forgets `id` (a batch that was taken back).
    pub(crate) fn forget(&mut self, id: &str) {
        self.ids.remove(id);
    }

    /// Ids held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::store::{MemStore, StoreConfig};
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn hdr(id: &str) -> Vec<u8> {
        format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n").into_bytes()
    }

    #[test]
    fn finds_the_id_header() {
        assert_eq!(msg_id_of(&hdr("a1")), Some("a1".to_owned()));
        assert_eq!(
            msg_id_of(b"NATS/1.0\r\nnats-msg-id:  b \r\n\r\n"),
            Some("b".to_owned())
        );
        assert_eq!(msg_id_of(b"NATS/1.0\r\nNats-Msg-Id: \r\n\r\n"), None);
        assert_eq!(msg_id_of(b"NATS/1.0\r\nX: y\r\n\r\n"), None);
        assert_eq!(msg_id_of(b""), None);
    }

    #[test]
    fn rebuild_keeps_only_the_window_at_the_tail() {
        let mut s = MemStore::new(StoreConfig::default());
        for i in 0..10u64 {
            // One message a second; ids on the even ones only.
            let h = if i % 2 == 0 {
                hdr(&format!("id{i}"))
            } else {
                Vec::new()
            };
            s.store_msg("a", &h, b"x", 100 * SEC + i * SEC).unwrap();
        }
        // The window reaches back 4 s from the newest message (t = 109 s): seqs 6..=10.
        let d = Dedupe::rebuild(&s, 4 * SEC);
        assert_eq!(d.len(), 2);
        assert_eq!(d.check("id6"), Some(7));
        assert_eq!(d.check("id8"), Some(9));
        assert_eq!(d.check("id4"), None);
        // The last message had no id.
        assert_eq!(d.last_msg_id, "");
        assert_eq!(s.seqs_since(105 * SEC), vec![6, 7, 8, 9, 10]);
    }

    #[test]
    fn prune_forgets_old_ids_but_not_a_newer_record() {
        let mut d = Dedupe::default();
        d.record("a", 1, 10 * SEC);
        d.record("b", 2, 11 * SEC);
        d.record("a", 3, 12 * SEC);
        d.prune(20 * SEC + 1, 10 * SEC);
        assert_eq!(d.check("a"), Some(3), "a's newer record stays");
        assert_eq!(d.check("b"), Some(2));
        d.prune(22 * SEC + 1, 10 * SEC);
        assert_eq!(d.check("a"), None);
        assert_eq!(d.check("b"), None);
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn no_window_no_rebuild() {
        let mut s = MemStore::new(StoreConfig::default());
        s.store_msg("a", &hdr("x"), b"", SEC).unwrap();
        assert_eq!(Dedupe::rebuild(&s, 0).len(), 0);
        let d = Dedupe::rebuild(&s, SEC);
        assert_eq!((d.check("x"), d.last_msg_id.as_str()), (Some(1), "x"));
    }
}
