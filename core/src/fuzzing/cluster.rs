//! Clustered JetStream: everything a server decodes from bytes another server wrote (meta and
//! stream log entries, catch-up requests and chunks, meta and stream snapshots).
//!
//! A peer, or a flipped bit on disk, must never crash a server: every decoder returns an
//! error rather than panicking, allocating from a length field or looping. Both entry points
//! take the raw bytes as they arrive (the kind byte of the envelope picks the decoder, see
//! `jetstream::cluster::codec`), so the committed seeds are real encodings.
//!
//! * [`cluster_entries`]: the bytes go to every entry decoder (`MetaEntry`, `StreamEntry`,
//!   `CatchupRequest`, `CatchupChunk`). What decodes must encode and decode again to the same
//!   value, and is then used as a server would: a meta entry applied to a `MetaState`, a
//!   stream entry applied to a replica over a file store on a `MemDisk`, a request served
//!   from a small store (every chunk it makes must round-trip too), a chunk handed to a
//!   catch-up in progress (which also sees the bytes that do not decode).
//! * [`cluster_snapshots`]: the bytes are restored as a meta snapshot (into an empty state
//!   and into one hosting a stream) and as a stream snapshot (over an empty store). A restored
//!   state's own snapshot must restore to the same snapshot bytes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

use crate::jetstream::api::StreamConfig;
use crate::jetstream::cluster::{
    Catchup, CatchupChunk, CatchupLimits, CatchupRequest, CatchupServer, MetaEntry, MetaState,
    MsgRecord, RaftGroup, ReplicatedStream, StreamAssignment, StreamEntry,
};
use crate::jetstream::store::{FileStore, FileStoreConfig, MemDisk, StreamStore, SyncPolicy};
use crate::jetstream::stream::{check_config, store_config};

/// A store time well inside the range every clock check accepts.
const T0: u64 = 1_700_000_000_000_000_000;

/// The peer id of the server under test.
const ME: &str = "n1";

/// Small limits, so that serving a request makes several chunks from a handful of messages.
fn limits() -> CatchupLimits {
    CatchupLimits {
        chunk_bytes: 64,
        chunk_msgs: 2,
        window: 4,
        timeout: Duration::from_secs(1),
    }
}

fn config() -> StreamConfig {
    // A constant, valid config: neither parse nor check can fail.
    let raw = json!({"name": "S", "subjects": ["s.>"], "allow_rollup_hdrs": true});
    check_config(serde_json::from_value(raw).expect("config shape")).expect("valid config")
}

fn open_store(disk: &MemDisk, cfg: &StreamConfig) -> Box<dyn StreamStore + Send> {
    let f = FileStoreConfig {
        block_size: 512,
        sync: SyncPolicy::Always,
    };
    Box::new(
        FileStore::open(disk.clone(), "streams/S", store_config(cfg), f)
            .expect("a fresh MemDisk opens"),
    )
}

fn msg(seq: u64, subject: &str) -> MsgRecord {
    MsgRecord {
        seq,
        ts: T0 + seq,
        subject: subject.into(),
        headers: Bytes::new(),
        payload: Bytes::from(format!("m{seq}")),
        rollup: None,
        sourced: false,
    }
}

/// A replica holding three messages, applied at log indexes 1 to 3.
fn replica() -> ReplicatedStream {
    let cfg = config();
    let mut r = ReplicatedStream::new(cfg.clone(), open_store(&MemDisk::new(1), &cfg), T0);
    for (i, subject) in ["s.a", "s.b", "s.a"].iter().enumerate() {
        let seq = i as u64 + 1;
        r.apply(seq, &StreamEntry::Msg(msg(seq, subject)));
    }
    r
}

/// A meta state hosting stream `S` of account `A` on this server, at index 1.
fn meta_state() -> MetaState {
    let mut m = MetaState::new(ME);
    m.apply(
        1,
        MetaEntry::AssignStream(StreamAssignment {
            account: "A".into(),
            created: T0,
            config: config(),
            group: RaftGroup {
                name: "S-S".into(),
                peers: vec![ME.into(), "n2".into(), "n3".into()],
                storage: "file".into(),
                cluster: "C".into(),
                preferred: String::new(),
            },
            request: None,
        }),
    );
    m
}

/// Fuzz entry point for log entries and catch-up frames: see the module docs.
pub fn cluster_entries(now: Instant, data: &[u8]) {
    if let Ok(e) = MetaEntry::decode(data) {
        assert_eq!(MetaEntry::decode(&e.encode()).as_ref(), Ok(&e));
        let mut m = meta_state();
        m.apply(2, e.clone());
        // The same entry again, at the next index: now it meets the state it made.
        m.apply(3, e);
        let snap = m.snapshot();
        let mut again = MetaState::new(ME);
        again.restore(&snap).expect("own snapshot restores");
        assert_eq!(again.snapshot(), snap, "snapshot after restore differs");
    }
    if let Ok(e) = StreamEntry::decode(data) {
        assert_eq!(StreamEntry::decode(&e.encode()).as_ref(), Ok(&e));
        let mut r = replica();
        r.apply(4, &e);
        r.apply(5, &e);
    }
    if let Ok(req) = CatchupRequest::decode(data) {
        assert_eq!(CatchupRequest::decode(&req.encode()).as_ref(), Ok(&req));
        let r = replica();
        let mut server = CatchupServer::new(req, limits());
        // The window is at most 4 chunks and ends the answer; the bound only trips on a
        // server that never stops.
        for _ in 0..=64 {
            let Some(chunk) = server.poll_chunk(r.stream.store.as_ref()) else {
                break;
            };
            assert_eq!(CatchupChunk::decode(&chunk.encode()).as_ref(), Ok(&chunk));
        }
        assert!(
            server.poll_chunk(r.stream.store.as_ref()).is_none(),
            "catch-up server goes past its window"
        );
    }
    if let Ok(c) = CatchupChunk::decode(data) {
        assert_eq!(CatchupChunk::decode(&c.encode()).as_ref(), Ok(&c));
    }
    // A replica one message in, catching up to sequence 6 (with and without verifying what it
    // holds): the chunk is the answer to its first request when its id is 1.
    for verify in [false, true] {
        let cfg = config();
        let mut store = open_store(&MemDisk::new(2), &cfg);
        let _ = store.store_msg("s.a", b"", b"m1", T0 + 1);
        let mut c = Catchup::new(now, store.as_ref(), 6, verify, limits());
        let _ = c.poll_transmit();
        c.handle_chunk(now, store.as_mut(), data);
        while c.poll_event().is_some() {}
        let _ = c.poll_transmit();
    }
}

/// Fuzz entry point for snapshots: see the module docs.
pub fn cluster_snapshots(data: &[u8]) {
    for mut m in [MetaState::new(ME), meta_state()] {
        if m.restore(data).is_ok() {
            let snap = m.snapshot();
            let mut again = MetaState::new(ME);
            again.restore(&snap).expect("own snapshot restores");
            assert_eq!(
                again.snapshot(),
                snap,
                "meta snapshot after restore differs"
            );
        }
    }
    let info = ReplicatedStream::snapshot_info(data);
    let cfg = config();
    let restored = ReplicatedStream::restore(data, open_store(&MemDisk::new(3), &cfg));
    assert_eq!(
        info.is_ok(),
        restored.is_ok(),
        "snapshot info and restore disagree"
    );
    if let Ok((r, _)) = restored {
        let snap = r.snapshot();
        let (again, _) = ReplicatedStream::restore(&snap, open_store(&MemDisk::new(4), &cfg))
            .expect("own snapshot restores");
        assert_eq!(
            again.snapshot(),
            snap,
            "stream snapshot after restore differs"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)]
    fn now() -> Instant {
        Instant::now()
    }

    #[test]
    fn valid_entries_round_trip_and_apply() {
        cluster_entries(now(), &StreamEntry::Msg(msg(4, "s.c")).encode());
        cluster_entries(
            now(),
            &StreamEntry::Purge {
                last_seq: 3,
                filter: "s.a".into(),
                seq: 0,
                keep: 1,
            }
            .encode(),
        );
        cluster_entries(
            now(),
            &MetaEntry::RemoveStream {
                account: "A".into(),
                stream: "S".into(),
                request: None,
            }
            .encode(),
        );
        cluster_entries(
            now(),
            &CatchupRequest {
                id: 1,
                from_seq: 1,
                up_to_seq: 3,
                verify_through: 1,
                window: 4,
            }
            .encode(),
        );
    }

    #[test]
    fn valid_snapshots_restore() {
        cluster_snapshots(&meta_state().snapshot());
        cluster_snapshots(&replica().snapshot());
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        for data in [
            &b""[..],
            b"M",
            b"M\x01{",
            b"S\x01\x02\xff\xff\xff\xff\x0f",
            b"c\x01\x01",
        ] {
            cluster_entries(now(), data);
            cluster_snapshots(data);
        }
    }
}
