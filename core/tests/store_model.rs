//! Both stores against a plain `BTreeMap` model, over random operation sequences.
//!
//! For the file store (on a `MemDisk` with tiny blocks, so rolls and block deletion happen
//! constantly) the sequence also holds crashes: the disk loses every unsynced byte and the
//! store is reopened. The model then goes back to exactly its state at the last sync.

// Helpers outside #[test] fns panic on purpose too: a failed expectation is the test's answer.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use natsd_core::jetstream::store::{
    CrashMode, FileStore, FileStoreConfig, MemDisk, MemStore, StoreConfig, StoreError, StreamStore,
};
use proptest::prelude::*;

const SUBJECTS: [&str; 4] = ["a.one", "a.two", "b.one", "c"];
const FILTERS: [&str; 6] = ["", ">", "a.*", "*.one", "c", "zzz"];
const DIR: &str = "js/S";

#[derive(Debug, Clone)]
enum Op {
    Store {
        subject: usize,
        len: usize,
        headers: bool,
    },
    Remove(u64),
    Purge,
    PurgeEx {
        filter: usize,
        keep: u64,
        up_to: u64,
    },
    Compact(u64),
    Load(u64),
    LoadNext {
        filter: usize,
        start: u64,
    },
    LoadLast(usize),
    Sync,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..SUBJECTS.len(), 0..80usize, any::<bool>())
            .prop_map(|(subject, len, headers)| Op::Store { subject, len, headers }),
        3 => (0..40u64).prop_map(Op::Remove),
        1 => Just(Op::Purge),
        2 => (0..FILTERS.len(), 0..3u64, 0..40u64).prop_map(|(filter, keep, up_to)| Op::PurgeEx { filter, keep, up_to }),
        1 => (0..45u64).prop_map(Op::Compact),
        3 => (0..45u64).prop_map(Op::Load),
        2 => (0..FILTERS.len(), 0..45u64).prop_map(|(filter, start)| Op::LoadNext { filter, start }),
        1 => (0..FILTERS.len()).prop_map(Op::LoadLast),
        3 => Just(Op::Sync),
        2 => Just(Op::Crash),
    ]
}

type Msg = (String, Vec<u8>, Vec<u8>);

#[derive(Debug, Clone, Default)]
struct Model {
    msgs: BTreeMap<u64, Msg>,
    last_seq: u64,
}

fn passes(filter: &str, subject: &str) -> bool {
    filter.is_empty()
        || filter == ">"
        || natsd_core::subject::matches(filter.as_bytes(), subject.as_bytes())
}

impl Model {
    fn first_seq(&self) -> u64 {
        self.msgs
            .keys()
            .next()
            .copied()
            .unwrap_or(self.last_seq + 1)
    }

    fn load(&self, seq: u64) -> Result<&Msg, StoreError> {
        match self.msgs.get(&seq) {
            Some(m) => Ok(m),
            None if seq > self.last_seq => Err(StoreError::Eof),
            None => Err(StoreError::NotFound),
        }
    }

    fn remove_where(&mut self, f: impl Fn(u64, &Msg) -> bool) -> u64 {
        let before = self.msgs.len();
        self.msgs.retain(|s, m| !f(*s, m));
        (before - self.msgs.len()) as u64
    }

    fn purge_ex(&mut self, filter: &str, keep: u64, up_to: u64) -> u64 {
        let matching: Vec<u64> = self
            .msgs
            .iter()
            .filter(|(_, m)| passes(filter, &m.0))
            .map(|(s, _)| *s)
            .collect();
        let drop = matching.len().saturating_sub(keep as usize);
        let doomed: Vec<u64> = matching[..drop]
            .iter()
            .copied()
            .filter(|s| up_to == 0 || *s < up_to)
            .collect();
        self.remove_where(|s, _| doomed.contains(&s))
    }

    fn compact(&mut self, seq: u64) -> u64 {
        if seq == 0 {
            return self.remove_where(|_, _| true);
        }
        if seq <= self.first_seq() {
            return 0;
        }
        self.last_seq = self.last_seq.max(seq - 1);
        self.remove_where(|s, _| s < seq)
    }
}

/// A store under test: the file store can crash, the memory store cannot.
trait Subject: StreamStore + Sized {
    fn syncs(&self) -> u64;
    /// Crashes and reopens; `false` (and the store untouched) if the store cannot crash.
    fn crash_and_reopen(self) -> (Self, bool);
}

impl Subject for MemStore {
    fn syncs(&self) -> u64 {
        0
    }
    fn crash_and_reopen(self) -> (Self, bool) {
        (self, false)
    }
}

fn file_cfg() -> FileStoreConfig {
    FileStoreConfig {
        block_size: 256,
        ..FileStoreConfig::default()
    }
}

impl Subject for FileStore<MemDisk> {
    fn syncs(&self) -> u64 {
        self.backend().syncs()
    }
    fn crash_and_reopen(self) -> (Self, bool) {
        let disk = self.into_disk();
        disk.crash(CrashMode::LoseUnsynced);
        let fs = Self::open(disk, DIR, StoreConfig::default(), file_cfg()).expect("reopen");
        assert!(fs.corruption().is_empty(), "{:?}", fs.corruption());
        (fs, true)
    }
}

fn check_state<S: StreamStore>(s: &S, m: &Model) {
    let st = s.state();
    let bytes: u64 = m
        .msgs
        .values()
        .map(|(sub, h, p)| s.accounted_size(sub, h, p))
        .sum();
    assert_eq!(st.msgs, m.msgs.len() as u64);
    assert_eq!(st.bytes, bytes);
    assert_eq!(st.first_seq, m.first_seq());
    assert_eq!(st.last_seq, m.last_seq);
    let subjects: std::collections::BTreeSet<&str> =
        m.msgs.values().map(|x| x.0.as_str()).collect();
    assert_eq!(st.num_subjects, subjects.len() as u64);
    let deleted = if m.msgs.is_empty() {
        0
    } else {
        m.last_seq + 1 - m.first_seq() - m.msgs.len() as u64
    };
    assert_eq!(st.num_deleted, deleted);
}

fn check_all<S: StreamStore>(s: &S, m: &Model) {
    check_state(s, m);
    for (seq, (sub, h, p)) in &m.msgs {
        let got = s.load_msg(*seq).expect("model message present");
        assert_eq!(
            (&got.subject, &got.headers[..], &got.payload[..]),
            (sub, &h[..], &p[..])
        );
    }
}

fn run<S: Subject>(mut s: S, ops: &[Op]) {
    let mut m = Model::default();
    let mut durable = Model::default();
    for (i, op) in ops.iter().enumerate() {
        let before = m.clone();
        let syncs = s.syncs();
        match op {
            Op::Store {
                subject,
                len,
                headers,
            } => {
                let h: Vec<u8> = if *headers {
                    b"NATS/1.0\r\nK: v\r\n\r\n".to_vec()
                } else {
                    Vec::new()
                };
                let p: Vec<u8> = (0..*len)
                    .map(|b| (b as u8).wrapping_mul(i as u8 | 1))
                    .collect();
                let (seq, _) = s.store_msg(SUBJECTS[*subject], &h, &p, i as u64).unwrap();
                m.last_seq += 1;
                assert_eq!(seq, m.last_seq);
                m.msgs.insert(seq, (SUBJECTS[*subject].to_owned(), h, p));
            }
            Op::Remove(seq) => {
                assert_eq!(s.remove_msg(*seq).unwrap(), m.msgs.remove(seq).is_some())
            }
            Op::Purge => assert_eq!(s.purge().unwrap(), m.remove_where(|_, _| true)),
            Op::PurgeEx {
                filter,
                keep,
                up_to,
            } => {
                assert_eq!(
                    s.purge_ex(FILTERS[*filter], *keep, *up_to).unwrap(),
                    m.purge_ex(FILTERS[*filter], *keep, *up_to)
                );
            }
            Op::Compact(seq) => assert_eq!(s.compact(*seq).unwrap(), m.compact(*seq)),
            Op::Load(seq) => match (s.load_msg(*seq), m.load(*seq)) {
                (Ok(got), Ok(want)) => {
                    assert_eq!((&got.subject, &got.payload[..]), (&want.0, &want.2[..]))
                }
                (got, want) => assert_eq!(got.err(), want.err()),
            },
            Op::LoadNext { filter, start } => {
                let f = FILTERS[*filter];
                let want = m
                    .msgs
                    .range(*start..)
                    .find(|(_, x)| passes(f, &x.0))
                    .map(|(s, _)| *s);
                assert_eq!(s.load_next_msg(f, *start).map(|x| x.seq).ok(), want);
            }
            Op::LoadLast(filter) => {
                let f = FILTERS[*filter];
                let want = m
                    .msgs
                    .iter()
                    .rev()
                    .find(|(_, x)| passes(f, &x.0))
                    .map(|(s, _)| *s);
                assert_eq!(s.load_last_msg(f).map(|x| x.seq).ok(), want);
                let fs = s.filtered_state(f);
                let count = m.msgs.values().filter(|x| passes(f, &x.0)).count() as u64;
                assert_eq!(fs.msgs, count);
            }
            Op::Sync => {
                assert_eq!(s.sync().unwrap(), m.last_seq);
                durable = m.clone();
            }
            Op::Crash => {
                let (reopened, crashed) = s.crash_and_reopen();
                s = reopened;
                if crashed {
                    m = durable.clone();
                    check_all(&s, &m);
                    assert_eq!(s.synced_through(), m.last_seq);
                }
            }
        }
        // Sealing a full block syncs everything written before the operation that rolled.
        if s.syncs() != syncs && !matches!(op, Op::Sync | Op::Crash) {
            durable = before;
        }
        check_state(&s, &m);
    }
    check_all(&s, &m);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mem_store_matches_model(ops in prop::collection::vec(op(), 1..120)) {
        run(MemStore::new(StoreConfig::default()), &ops);
    }

    #[test]
    fn file_store_matches_model(ops in prop::collection::vec(op(), 1..120), seed in any::<u64>()) {
        let fs = FileStore::open(MemDisk::new(seed), DIR, StoreConfig::default(), file_cfg()).unwrap();
        run(fs, &ops);
    }
}
