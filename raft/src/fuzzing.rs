//! The fuzz entry point for everything this crate decodes from bytes it did not write in this
//! process: RPC frames from peers, and the records, entries, `state` and `snapshot` files it
//! reads back from disk. A peer, or a flipped bit on disk, must never crash a server: every
//! decoder returns an error, never panics, allocates from a length field or loops.
//!
//! Used by the `raft_bytes` cargo-fuzz target and by this module's tests (a property test over
//! arbitrary and damaged inputs, and a replay of the committed corpus), so that the stable test
//! run covers the same checks. Not part of the crate's API.

use natsd_core::jetstream::store::{Disk, MemDisk};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{decode, encode};
use crate::health::Health;
use crate::log_store::{LogStore, PersistedState, SharedDisk, StoreConfig};
use crate::machine::StoredSnapshot;
use crate::network::{ReplyFrame, RequestFrame};
use crate::record::{self, Parsed};
use crate::types::Entry;

const DIR: &str = "raft/g";

/// Decodes `data` as a `T`; what decodes must encode, and decode again to the same bytes
/// (these openraft types have no `PartialEq`, so the encodings are compared).
fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) {
    let Ok(v) = decode::<T>(data) else { return };
    let bytes = encode(&v).expect("a decoded value encodes");
    let again = decode::<T>(&bytes).expect("an encoded value decodes");
    assert_eq!(
        encode(&again).expect("a decoded value encodes"),
        bytes,
        "re-encoding differs"
    );
}

/// Walks the records of a file the way recovery does; each step must make progress and stay
/// inside the buffer.
fn walk_records(buf: &[u8]) {
    let mut off = 0;
    while off < buf.len() {
        match record::parse(buf, off) {
            Parsed::Record { next, .. } | Parsed::BadPayload { next } => {
                assert!(
                    next > off && next <= buf.len(),
                    "record parse went from {off} to {next}"
                );
                off = next;
            }
            Parsed::Zeros | Parsed::Short | Parsed::BadHeader => break,
        }
    }
}

fn write(disk: &mut MemDisk, path: &str, data: &[u8]) {
    disk.create(path).expect("MemDisk creates");
    disk.append(path, data).expect("MemDisk appends");
    disk.sync(path).expect("MemDisk syncs");
}

fn open(disk: &MemDisk) -> Option<LogStore<MemDisk>> {
    LogStore::open(
        SharedDisk::new(disk.clone()),
        DIR,
        StoreConfig { segment_bytes: 256 },
        Health::new(None),
        false,
    )
    .ok()
    .map(|(s, _)| s)
}

/// Fuzz entry point. The whole input is given to every frame and file decoder. Then byte 0
/// lays out a group directory: bit 0 puts a `state` file there, bit 1 names the segment after
/// index 1 rather than 0, and byte 1 says where the rest is cut between the segment and the
/// `state` file. The log store recovers that directory (no panic); recovering it a second time
/// finds the same log.
pub fn raft_bytes(data: &[u8]) {
    round_trip::<RequestFrame>(data);
    round_trip::<ReplyFrame>(data);
    round_trip::<Entry>(data);
    round_trip::<PersistedState>(data);
    round_trip::<StoredSnapshot>(data);
    walk_records(data);

    let (flags, cut, rest) = match data {
        [f, c, rest @ ..] => (*f, usize::from(*c), rest),
        _ => return,
    };
    let cut = cut * rest.len() / 256;
    let (seg, state) = rest.split_at(cut.min(rest.len()));
    let (seg, state) = if flags & 1 == 1 {
        (seg, Some(state))
    } else {
        (rest, None)
    };
    let mut disk = MemDisk::new(1);
    let first = u64::from(flags >> 1 & 1);
    write(&mut disk, &format!("{DIR}/seg-{first:020}"), seg);
    if let Some(state) = state {
        write(&mut disk, &format!("{DIR}/state"), state);
    }
    let Some(store) = open(&disk) else { return };
    let ids = store.log_ids();
    drop(store);
    let again = open(&disk).expect("a recovered log opens again");
    assert_eq!(again.log_ids(), ids, "a second recovery changed the log");
}

#[cfg(test)]
mod tests {
    use openraft::raft::VoteRequest;
    use openraft::{CommittedLeaderId, EntryPayload};
    use proptest::prelude::*;

    use super::*;
    use crate::network::Request;
    use crate::types::{Command, LogId, Vote};

    fn valid_inputs() -> Vec<Vec<u8>> {
        let log_id = LogId::new(CommittedLeaderId::new(2, 1), 7);
        let entry = Entry {
            log_id,
            payload: EntryPayload::Normal(Command(b"cmd".to_vec())),
        };
        let frame = RequestFrame {
            group: "S-S".into(),
            rpc: Request::Vote(VoteRequest::new(Vote::new(3, 1), Some(log_id))),
        };
        // The `state` file's fields in order (bincode encodes a struct as its fields).
        let state = (Some(Vote::new(3, 1)), Some(log_id), None::<crate::Damage>);
        let entry = encode(&entry).unwrap();
        // A segment of entries 0 and 1, as the log store writes it.
        let mut seg = vec![0u8, 0];
        for index in 0..2 {
            let e = Entry {
                log_id: LogId::new(CommittedLeaderId::new(2, 1), index),
                payload: EntryPayload::Normal(Command(b"cmd".to_vec())),
            };
            seg.extend(record::encode(&encode(&e).unwrap()));
        }
        vec![
            encode(&frame).unwrap(),
            encode(&ReplyFrame::Refused("no group".into())).unwrap(),
            entry,
            encode(&state).unwrap(),
            seg,
        ]
    }

    #[test]
    fn valid_frames_and_records_pass() {
        for input in valid_inputs() {
            raft_bytes(&input);
        }
        // The segment layout reaches recovery, which finds both entries.
        let seg = valid_inputs().swap_remove(4);
        let mut disk = MemDisk::new(1);
        write(&mut disk, &format!("{DIR}/seg-{:020}", 0), &seg[2..]);
        let ids: Vec<u64> = open(&disk)
            .unwrap()
            .log_ids()
            .iter()
            .map(|l| l.index)
            .collect();
        assert_eq!(ids, [0, 1]);
    }

    /// The committed seeds and fixed crashers of the `raft_bytes` target (`fuzz/corpus/`),
    /// replayed on the stable toolchain.
    #[test]
    fn committed_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/raft_bytes");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("corpus directory")
            .map(|e| e.expect("directory entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "empty corpus");
        for f in files {
            eprintln!("raft_bytes: {}", f.display());
            raft_bytes(&std::fs::read(&f).expect("readable corpus file"));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Arbitrary bytes: every decoder refuses or round-trips, recovery never panics.
        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
            raft_bytes(&data);
        }

        /// Valid encodings with bytes overwritten: closer to what a bit flip on disk or a
        /// damaged frame looks like than random bytes.
        #[test]
        fn damaged_valid_inputs_never_panic(
            which in 0usize..5,
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut input = valid_inputs().swap_remove(which);
            for (at, b) in flips {
                let i = at.index(input.len());
                input[i] = b;
            }
            raft_bytes(&input);
        }
    }
}
