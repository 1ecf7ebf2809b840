//! Model-based property test of both stores.
//!
//! [`Model`] is a reference stream written from the [`StreamStore`] contract alone (a sorted
//! map and two counters, no index, no backend): it shares no code with the engine. Random
//! operation sequences run against the model and, separately, against a [`MemStore`] and a
//! [`FileStore`] over a [`MemDisk`] with tiny blocks (so blocks roll, get deleted and replayed);
//! every observation must agree. The file run also crashes the disk and reopens the store:
//! every synced message that was not removed must come back, nothing that was never stored may
//! appear, and a crash alone is never reported as corruption. Half the cases compress the
//! file store's records (and updates toggle it), and skips of sequence ranges are mixed in.
//!
//! `PROPTEST_CASES` overrides the default of 256 cases (each case runs both stores).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

const DIR: &str = "streams/MODEL";
const BLOCK: u64 = 256;
const SUBJECTS: &[&str] = &["a", "b.x", "b.y", "c.d.e", "c.x"];
const FILTERS: &[&str] = &[
    "", ">", "a", "b.*", "b.>", "*.x", "c.>", "c.*.e", "nope", "b.x", "*",
];
const HDR: &[u8] = b"NATS/1.0\r\nK: v\r\n\r\n";
const SEC: u64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
struct MMsg {
    subject: String,
    headers: Bytes,
    payload: Bytes,
    ts: UnixNanos,
}

impl MMsg {
    /// The accounted size, from the contract's formulas (Go's memory-store size for a memory
    /// store, else the file-store record size).
    fn size(&self, mem: bool) -> u64 {
        if mem {
            return (self.subject.len() + self.headers.len() + self.payload.len() + 16) as u64;
        }
        let hdr = if self.headers.is_empty() {
            0
        } else {
            4 + self.headers.len()
        };
        (22 + self.subject.len() + self.payload.len() + 8 + hdr) as u64
    }

    fn stored(&self, seq: u64) -> StoredMsg {
        StoredMsg {
            seq,
            ts: self.ts,
            subject: self.subject.clone(),
            headers: self.headers.clone(),
            payload: self.payload.clone(),
        }
    }
}

/// A token-by-token subject filter match, independent of `crate::subject`.
fn model_match(filter: &str, subject: &str) -> bool {
    if filter.is_empty() {
        return true;
    }
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some(ft), Some(st)) if ft == "*" || ft == st => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The reference stream.
#[derive(Debug, Clone, Default)]
struct Model {
    msgs: BTreeMap<u64, MMsg>,
    last_seq: u64,
    last_ts: UnixNanos,
    cfg: StoreConfig,
    /// Sizes follow the memory store's formula.
    mem: bool,
}

impl Model {
    fn new(cfg: StoreConfig, mem: bool) -> Self {
        Self {
            msgs: BTreeMap::new(),
            last_seq: cfg.first_seq.max(1) - 1,
            last_ts: 0,
            cfg,
            mem,
        }
    }

    fn bytes(&self) -> u64 {
        self.msgs.values().map(|m| m.size(self.mem)).sum()
    }

    fn first_seq(&self) -> u64 {
        self.msgs.keys().next().map_or(self.last_seq + 1, |s| *s)
    }

    fn count(&self, subject: &str) -> u64 {
        self.msgs.values().filter(|m| m.subject == subject).count() as u64
    }

    fn matching(&self, filter: &str) -> Vec<u64> {
        self.msgs
            .iter()
            .filter(|(_, m)| model_match(filter, &m.subject))
            .map(|(s, _)| *s)
            .collect()
    }

    fn remove_all(&mut self, seqs: &[u64]) -> u64 {
        seqs.iter()
            .filter(|s| self.msgs.remove(s).is_some())
            .count() as u64
    }

    fn oldest_of(&self, subject: &str) -> Option<u64> {
        self.msgs
            .iter()
            .find(|(_, m)| m.subject == subject)
            .map(|(s, _)| *s)
    }

    fn trim_subject(&mut self, subject: &str) {
        if let Some(max) = self.cfg.max_msgs_per_subject {
            while self.count(subject) > max {
                let Some(s) = self.oldest_of(subject) else {
                    break;
                };
                self.msgs.remove(&s);
            }
        }
    }

    fn trim_old(&mut self) {
        if self.cfg.discard != Discard::Old {
            return;
        }
        loop {
            let over_msgs = self
                .cfg
                .max_msgs
                .is_some_and(|m| self.msgs.len() as u64 > m);
            let over_bytes = self.cfg.max_bytes.is_some_and(|m| self.bytes() > m);
            if !(over_msgs || over_bytes) {
                return;
            }
            self.msgs.pop_first();
        }
    }

    fn store(&mut self, m: MMsg) -> Result<(u64, UnixNanos), StoreError> {
        if self
            .cfg
            .max_msg_size
            .is_some_and(|max| (m.headers.len() + m.payload.len()) as u64 > max)
        {
            return Err(StoreError::MsgTooLarge);
        }
        if self.cfg.discard == Discard::New {
            if self
                .cfg
                .max_msgs
                .is_some_and(|max| self.msgs.len() as u64 >= max)
            {
                return Err(StoreError::MaxMsgs);
            }
            if self
                .cfg
                .max_bytes
                .is_some_and(|max| self.bytes() + m.size(self.mem) > max)
            {
                return Err(StoreError::MaxBytes);
            }
            if self.cfg.discard_new_per_subject
                && self
                    .cfg
                    .max_msgs_per_subject
                    .is_some_and(|max| self.count(&m.subject) >= max)
            {
                return Err(StoreError::MaxMsgsPerSubject);
            }
        }
        self.last_seq += 1;
        self.last_ts = m.ts;
        let (seq, ts, subject) = (self.last_seq, m.ts, m.subject.clone());
        self.msgs.insert(seq, m);
        self.trim_subject(&subject);
        self.trim_old();
        Ok((seq, ts))
    }

    fn load(&self, seq: u64) -> Result<StoredMsg, StoreError> {
        match self.msgs.get(&seq) {
            Some(m) => Ok(m.stored(seq)),
            None if seq > self.last_seq => Err(StoreError::Eof),
            None => Err(StoreError::NotFound),
        }
    }

    fn load_next(&self, filter: &str, start: u64) -> Result<StoredMsg, StoreError> {
        self.msgs
            .range(start..)
            .find(|(_, m)| model_match(filter, &m.subject))
            .map(|(s, m)| m.stored(*s))
            .ok_or(StoreError::Eof)
    }

    fn load_last(&self, filter: &str) -> Result<StoredMsg, StoreError> {
        self.msgs
            .iter()
            .rev()
            .find(|(_, m)| model_match(filter, &m.subject))
            .map(|(s, m)| m.stored(*s))
            .ok_or(StoreError::NotFound)
    }

    fn purge(&mut self) -> u64 {
        let n = self.msgs.len() as u64;
        self.msgs.clear();
        n
    }

    fn purge_ex(&mut self, filter: &str, keep: u64, up_to: u64) -> u64 {
        let mut seqs = self.matching(filter);
        let drop = seqs.len().saturating_sub(keep as usize);
        seqs.truncate(drop);
        seqs.retain(|s| up_to == 0 || *s < up_to);
        self.remove_all(&seqs)
    }

    fn compact(&mut self, seq: u64) -> u64 {
        if seq == 0 {
            return self.purge();
        }
        let below: Vec<u64> = self.msgs.range(..seq).map(|(s, _)| *s).collect();
        self.last_seq = self.last_seq.max(seq - 1);
        self.remove_all(&below)
    }

    fn skip(&mut self, seq: u64, num: u64, ts: UnixNanos) -> Result<(), StoreError> {
        if seq != self.last_seq + 1 {
            return Err(StoreError::SequenceMismatch);
        }
        if num > 0 {
            self.last_seq += num;
            self.last_ts = ts;
        }
        Ok(())
    }

    fn max_age(&self) -> Option<u64> {
        self.cfg.max_age.map(|a| a.as_nanos() as u64)
    }

    fn expire(&mut self, now: UnixNanos) -> u64 {
        let Some(age) = self.max_age() else {
            return 0;
        };
        let old: Vec<u64> = self
            .msgs
            .iter()
            .filter(|(_, m)| m.ts.saturating_add(age) <= now)
            .map(|(s, _)| *s)
            .collect();
        self.remove_all(&old)
    }

    fn next_expiry(&self) -> Option<UnixNanos> {
        let age = self.max_age()?;
        self.msgs.values().next().map(|m| m.ts + age)
    }

    fn update(&mut self, cfg: StoreConfig) {
        self.cfg = StoreConfig {
            first_seq: self.cfg.first_seq,
            ..cfg
        };
        for s in SUBJECTS {
            self.trim_subject(s);
        }
        self.trim_old();
    }

    fn state(&self) -> StreamState {
        let first_seq = self.first_seq();
        let msgs = self.msgs.len() as u64;
        let mut subjects: Vec<&str> = self.msgs.values().map(|m| m.subject.as_str()).collect();
        subjects.sort_unstable();
        subjects.dedup();
        StreamState {
            msgs,
            bytes: self.bytes(),
            first_seq,
            first_ts: self.msgs.values().next().map_or(0, |m| m.ts),
            last_seq: self.last_seq,
            last_ts: self.last_ts,
            num_subjects: subjects.len() as u64,
            num_deleted: if msgs == 0 {
                0
            } else {
                self.last_seq + 1 - first_seq - msgs
            },
            corrupt_records: 0,
            lost_msgs: 0,
        }
    }

    fn filtered(&self, filter: &str) -> SimpleState {
        let seqs = self.matching(filter);
        SimpleState {
            msgs: seqs.len() as u64,
            first: seqs.first().copied().unwrap_or(0),
            last: seqs.last().copied().unwrap_or(0),
        }
    }

    fn totals(&self, filter: &str) -> BTreeMap<String, u64> {
        let mut t = BTreeMap::new();
        for m in self.msgs.values() {
            if model_match(filter, &m.subject) {
                *t.entry(m.subject.clone()).or_insert(0) += 1;
            }
        }
        t
    }

    /// Resolves a random pick to a sequence around the live range (a few below and past it).
    fn pick_seq(&self, pick: u8) -> u64 {
        let lo = self.first_seq().saturating_sub(2);
        let hi = self.last_seq + 2;
        lo + u64::from(pick) % (hi - lo + 1)
    }
}

#[derive(Debug, Clone)]
struct Limits {
    max_msgs: Option<u64>,
    max_bytes: Option<u64>,
    max_age_s: Option<u64>,
    per_subject: Option<u64>,
    max_msg_size: Option<u64>,
    discard_new: bool,
    new_per_subject: bool,
    compress: bool,
}

impl Limits {
    fn config(&self, first_seq: u64) -> StoreConfig {
        StoreConfig {
            first_seq,
            max_msgs: self.max_msgs,
            max_bytes: self.max_bytes,
            max_age: self.max_age_s.map(Duration::from_secs),
            max_msgs_per_subject: self.per_subject,
            max_msg_size: self.max_msg_size,
            discard: if self.discard_new {
                Discard::New
            } else {
                Discard::Old
            },
            discard_new_per_subject: self.new_per_subject,
            compress: self.compress,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Store {
        subj: usize,
        hdr: bool,
        len: usize,
    },
    Remove(u8),
    /// Skip this many sequences (`true`: asking at the wrong sequence).
    Skip(u64, bool),
    Purge,
    PurgeEx {
        filter: usize,
        keep: u64,
        seq: Option<u8>,
    },
    Compact(u8),
    /// Advance the clock by this many milliseconds, then expire.
    Expire(u64),
    Update(Limits),
    Load(u8),
    LoadNext(usize, u8),
    LoadLast(usize),
    Filtered(usize),
    Totals(usize),
    Sync,
    /// File store only: power loss (`true`: torn writes), then reopen.
    Crash(bool),
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        proptest::option::weighted(0.4, 1u64..8),
        proptest::option::weighted(0.3, 80u64..600),
        proptest::option::weighted(0.3, 1u64..5),
        proptest::option::weighted(0.4, 1u64..4),
        proptest::option::weighted(0.1, 10u64..60),
        proptest::bool::weighted(0.3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(m, b, a, p, sz, dn, dnp, compress)| Limits {
            max_msgs: m,
            max_bytes: b,
            max_age_s: a,
            per_subject: p,
            max_msg_size: sz,
            discard_new: dn,
            new_per_subject: dnp,
            compress,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let nf = FILTERS.len();
    prop_oneof![
        12 => (0..SUBJECTS.len(), proptest::bool::weighted(0.3), 0usize..48)
            .prop_map(|(subj, hdr, len)| Op::Store { subj, hdr, len }),
        2 => any::<u8>().prop_map(Op::Remove),
        1 => (prop_oneof![0u64..4, Just(300)], proptest::bool::weighted(0.1))
            .prop_map(|(n, wrong)| Op::Skip(n, wrong)),
        1 => Just(Op::Purge),
        2 => (0..nf, 0u64..3, proptest::option::of(any::<u8>()))
            .prop_map(|(filter, keep, seq)| Op::PurgeEx { filter, keep, seq }),
        1 => any::<u8>().prop_map(Op::Compact),
        2 => (0u64..3000).prop_map(Op::Expire),
        2 => limits().prop_map(Op::Update),
        2 => any::<u8>().prop_map(Op::Load),
        2 => (0..nf, any::<u8>()).prop_map(|(f, s)| Op::LoadNext(f, s)),
        1 => (0..nf).prop_map(Op::LoadLast),
        1 => (0..nf).prop_map(Op::Filtered),
        1 => (0..nf).prop_map(Op::Totals),
        3 => Just(Op::Sync),
        2 => any::<bool>().prop_map(Op::Crash),
    ]
}

/// One generated case: the initial limits, the disk's seed (torn crashes draw from it) and
/// the operations.
#[derive(Debug, Clone)]
struct Case {
    first_seq: u64,
    limits: Limits,
    disk_seed: u64,
    ops: Vec<Op>,
    /// After the run, flip this bit (modulo the store's total size) and reopen.
    flip: Option<u64>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(0u64), Just(1), Just(10)],
        limits(),
        any::<u64>(),
        proptest::collection::vec(op(), 1..100),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(first_seq, limits, disk_seed, ops, flip)| Case {
            first_seq,
            limits,
            disk_seed,
            ops,
            flip,
        })
}

/// The store under test.
enum Subject {
    Mem(Box<MemStore>),
    File(Option<Box<FileStore<MemDisk>>>, MemDisk),
}

impl Subject {
    fn store(&mut self) -> &mut dyn StreamStore {
        match self {
            Self::Mem(s) => s.as_mut(),
            Self::File(s, _) => s.as_deref_mut().expect("store open"),
        }
    }
}

fn file_cfg() -> FileStoreConfig {
    FileStoreConfig {
        block_size: BLOCK,
        ..FileStoreConfig::default()
    }
}

/// Everything the store holds, read back one sequence at a time.
fn contents(s: &dyn StreamStore) -> Result<BTreeMap<u64, MMsg>, String> {
    let st = s.state();
    let mut out = BTreeMap::new();
    for seq in st.first_seq..=st.last_seq {
        match s.load_msg(seq) {
            Ok(m) => {
                if m.seq != seq {
                    return Err(format!("load_msg({seq}) returned seq {}", m.seq));
                }
                out.insert(
                    seq,
                    MMsg {
                        subject: m.subject,
                        headers: m.headers,
                        payload: m.payload,
                        ts: m.ts,
                    },
                );
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(format!("load_msg({seq}): {e:?}")),
        }
    }
    Ok(out)
}

fn check_state(model: &Model, s: &dyn StreamStore) -> Result<(), String> {
    let (want, got) = (model.state(), s.state());
    if want != got {
        return Err(format!("state: model {want:?}\n store {got:?}"));
    }
    let (want, got) = (model.next_expiry(), s.next_expiry());
    if want != got {
        return Err(format!("next_expiry: model {want:?}, store {got:?}"));
    }
    Ok(())
}

fn eq<T: PartialEq + std::fmt::Debug>(what: &str, model: T, store: T) -> Result<(), String> {
    if model == store {
        Ok(())
    } else {
        Err(format!("{what}: model {model:?}, store {store:?}"))
    }
}

/// A file store after a crash and reopen: checks it against what was synced (`synced`), what
/// the model holds now (`model`) and everything ever stored (`ever`); returns the model the
/// run continues from (the recovered contents).
fn check_recovery(
    synced: &Model,
    model: &Model,
    ever: &BTreeMap<u64, MMsg>,
    s: &dyn StreamStore,
) -> Result<Model, String> {
    let st = s.state();
    if st.corrupt_records != 0 || st.lost_msgs != 0 {
        return Err(format!("a crash alone reported damage: {st:?}"));
    }
    let got = contents(s)?;
    for (seq, m) in &synced.msgs {
        if model.msgs.get(seq) == Some(m) && got.get(seq) != Some(m) {
            return Err(format!(
                "synced message {seq} lost by the crash: {:?}",
                got.get(seq)
            ));
        }
    }
    for (seq, m) in &got {
        if ever.get(seq) != Some(m) {
            return Err(format!("message {seq} was never stored: {m:?}"));
        }
        if *seq <= synced.last_seq && !synced.msgs.contains_key(seq) {
            return Err(format!("message {seq} removed before the sync came back"));
        }
    }
    if st.last_seq < synced.last_seq || st.last_seq > model.last_seq {
        return Err(format!(
            "last_seq {} outside synced {} ..= current {}",
            st.last_seq, synced.last_seq, model.last_seq
        ));
    }
    if st.last_seq == model.last_seq && st.last_ts != model.last_ts {
        return Err(format!(
            "last_ts {} after recovery, {} before",
            st.last_ts, model.last_ts
        ));
    }
    if let Some(m) = ever.get(&st.last_seq) {
        eq("last_ts of the recovered last message", m.ts, st.last_ts)?;
    }
    eq(
        "synced_through after reopen",
        st.last_seq,
        s.synced_through(),
    )?;
    Ok(Model {
        msgs: got,
        last_seq: st.last_seq,
        last_ts: st.last_ts,
        cfg: model.cfg.clone(),
        mem: model.mem,
    })
}

/// Runs `case` against one store; `Err` describes the first divergence from the model.
fn run(case: &Case, file: bool) -> Result<(), String> {
    let cfg = case.limits.config(case.first_seq);
    let mut model = Model::new(cfg.clone(), !file);
    let mut subject = if file {
        let disk = MemDisk::new(case.disk_seed);
        let fs = FileStore::open(disk.clone(), DIR, cfg, file_cfg()).map_err(|e| e.to_string())?;
        Subject::File(Some(Box::new(fs)), disk)
    } else {
        Subject::Mem(Box::new(MemStore::new(cfg)))
    };
    let mut synced = model.clone();
    let mut ever: BTreeMap<u64, MMsg> = BTreeMap::new();
    let mut now = 1_000 * SEC;
    for (i, op) in case.ops.iter().enumerate() {
        let s = subject.store();
        let step = |e: String| format!("op #{i} {op:?}: {e}");
        match op {
            Op::Store { subj, hdr, len } => {
                now += 1_000;
                let m = MMsg {
                    subject: SUBJECTS[*subj].to_owned(),
                    headers: if *hdr {
                        Bytes::from_static(HDR)
                    } else {
                        Bytes::new()
                    },
                    // Even lengths compress well, odd ones hardly: both record forms occur.
                    payload: (0..*len)
                        .map(|j| match len % 2 {
                            0 => (i % 251) as u8,
                            _ => ((i * 31 + j * j * 7) % 251) as u8,
                        })
                        .collect(),
                    ts: now,
                };
                let got = s.store_msg(&m.subject, &m.headers, &m.payload, now);
                let want = model.store(m.clone());
                if let Ok((seq, _)) = want {
                    ever.insert(seq, m);
                }
                eq("store_msg", want, got).map_err(step)?;
            }
            Op::Remove(pick) => {
                let seq = model.pick_seq(*pick);
                let want = Ok(model.msgs.remove(&seq).is_some());
                eq(&format!("remove_msg({seq})"), want, s.remove_msg(seq)).map_err(step)?;
            }
            Op::Skip(num, wrong) => {
                now += 1_000;
                let seq = model.last_seq + 1 + u64::from(*wrong);
                let want = model.skip(seq, *num, now);
                let got = s.skip_msgs(seq, *num, now);
                eq(&format!("skip_msgs({seq}, {num})"), want, got).map_err(step)?;
            }
            Op::Purge => eq("purge", Ok(model.purge()), s.purge()).map_err(step)?,
            Op::PurgeEx { filter, keep, seq } => {
                let up_to = seq.map_or(0, |p| model.pick_seq(p));
                let f = FILTERS[*filter];
                let want = Ok(model.purge_ex(f, *keep, up_to));
                let got = s.purge_ex(f, *keep, up_to);
                eq(&format!("purge_ex({f:?}, {keep}, {up_to})"), want, got).map_err(step)?;
            }
            Op::Compact(pick) => {
                let seq = model.pick_seq(*pick);
                let want = Ok(model.compact(seq));
                eq(&format!("compact({seq})"), want, s.compact(seq)).map_err(step)?;
            }
            Op::Expire(ms) => {
                now += ms * 1_000_000;
                eq("expire", Ok(model.expire(now)), s.expire(now)).map_err(step)?;
            }
            Op::Update(l) => {
                let c = l.config(case.first_seq);
                model.update(c.clone());
                eq("update_config", Ok(()), s.update_config(c)).map_err(step)?;
            }
            Op::Load(pick) => {
                let seq = model.pick_seq(*pick);
                eq(
                    &format!("load_msg({seq})"),
                    model.load(seq),
                    s.load_msg(seq),
                )
                .map_err(step)?;
            }
            Op::LoadNext(f, pick) => {
                let (f, seq) = (FILTERS[*f], model.pick_seq(*pick));
                let what = format!("load_next_msg({f:?}, {seq})");
                eq(&what, model.load_next(f, seq), s.load_next_msg(f, seq)).map_err(step)?;
            }
            Op::LoadLast(f) => {
                let f = FILTERS[*f];
                let what = format!("load_last_msg({f:?})");
                eq(&what, model.load_last(f), s.load_last_msg(f)).map_err(step)?;
            }
            Op::Filtered(f) => {
                let f = FILTERS[*f];
                let what = format!("filtered_state({f:?})");
                eq(&what, model.filtered(f), s.filtered_state(f)).map_err(step)?;
            }
            Op::Totals(f) => {
                let f = FILTERS[*f];
                let what = format!("subjects_totals({f:?})");
                eq(&what, model.totals(f), s.subjects_totals(f)).map_err(step)?;
            }
            Op::Sync => {
                eq("sync", Ok(model.last_seq), s.sync()).map_err(step)?;
                eq("synced_through", model.last_seq, s.synced_through()).map_err(step)?;
                synced = model.clone();
            }
            Op::Crash(torn) => {
                if let Subject::File(fs, disk) = &mut subject {
                    drop(fs.take());
                    disk.crash(if *torn {
                        CrashMode::Torn
                    } else {
                        CrashMode::LoseUnsynced
                    });
                    let reopened =
                        FileStore::open(disk.clone(), DIR, model.cfg.clone(), file_cfg())
                            .map_err(|e| step(format!("reopen: {e}")))?;
                    model = check_recovery(&synced, &model, &ever, &reopened).map_err(step)?;
                    ever.retain(|seq, _| *seq <= model.last_seq);
                    synced = model.clone();
                    *fs = Some(Box::new(reopened));
                }
            }
        }
        check_state(&model, subject.store()).map_err(|e| format!("after op #{i} {op:?}: {e}"))?;
    }
    let s = subject.store();
    eq("final contents", Ok(model.msgs.clone()), contents(s))?;
    if let Subject::File(fs, disk) = &mut subject {
        // A clean shutdown: sync, power off, and every message comes back exactly.
        let mut fs = fs.take().expect("store open");
        eq("final sync", Ok(model.last_seq), fs.sync())?;
        drop(fs);
        disk.crash(CrashMode::Torn);
        let fs = FileStore::open(disk.clone(), DIR, model.cfg.clone(), file_cfg())
            .map_err(|e| format!("final reopen: {e}"))?;
        check_state(&model, &fs).map_err(|e| format!("after final reopen: {e}"))?;
        eq(
            "contents after reopen",
            Ok(model.msgs.clone()),
            contents(&fs),
        )?;
        if let Some(bit) = case.flip {
            drop(fs);
            check_bit_flip(disk, bit, &model, &ever)?;
        }
    }
    Ok(())
}

/// Flips one bit somewhere in the (fully synced) store and reopens it: the damage must be
/// detected, and no message may silently vanish or change.
fn check_bit_flip(
    disk: &MemDisk,
    bit: u64,
    model: &Model,
    ever: &BTreeMap<u64, MMsg>,
) -> Result<(), String> {
    let files: Vec<(String, u64)> = disk
        .paths()
        .into_iter()
        .filter(|p| p.starts_with(DIR))
        .map(|p| {
            let bits = disk.len(&p).unwrap_or(0) * 8;
            (p, bits)
        })
        .collect();
    let total: u64 = files.iter().map(|(_, bits)| bits).sum();
    let mut at = bit % total.max(1);
    let Some((path, _)) = files.iter().find(|(_, bits)| {
        let here = at < *bits;
        if !here {
            at -= bits;
        }
        here
    }) else {
        return Ok(());
    };
    disk.flip_bit(path, at)
        .map_err(|e| format!("flip {path}:{at}: {e}"))?;
    let what = format!("bit {at} of {path} flipped");
    let fs = FileStore::open(disk.clone(), DIR, model.cfg.clone(), file_cfg())
        .map_err(|e| format!("{what}: reopen: {e}"))?;
    let st = fs.state();
    let detected = st.corrupt_records + st.lost_msgs > 0;
    // A newest block holding only its header is indistinguishable from one whose creation
    // the crash interrupted; it carries nothing, so recovery restarts it.
    let restarted = fs.recovery().torn_bytes > 0;
    if !detected && !restarted {
        return Err(format!("{what}: not detected: {st:?}"));
    }
    for (seq, m) in &model.msgs {
        match fs.load_msg(*seq) {
            Ok(got) if got == m.stored(*seq) => {}
            Err(StoreError::Corrupt { .. }) if st.lost_msgs > 0 => {}
            other => return Err(format!("{what}: message {seq} silently became {other:?}")),
        }
    }
    for seq in st.first_seq..=st.last_seq {
        let was = ever.get(&seq).map(|m| m.stored(seq));
        match fs.load_msg(seq) {
            Ok(_) if model.msgs.contains_key(&seq) => {}
            Ok(got) if detected && was.as_ref() == Some(&got) => {}
            Ok(got) => return Err(format!("{what}: message {seq} appeared: {got:?}")),
            Err(_) => {}
        }
    }
    if !detected && st.last_seq != model.last_seq {
        return Err(format!(
            "{what}: last_seq {} became {}",
            model.last_seq, st.last_seq
        ));
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// The same operations against the model, a memory store and a file store.
    #[test]
    fn stores_match_the_model(case in case()) {
        if let Err(e) = run(&case, false) {
            return Err(TestCaseError::fail(format!("memory store: {e}")));
        }
        if let Err(e) = run(&case, true) {
            return Err(TestCaseError::fail(format!("file store: {e}")));
        }
    }
}

#[test]
fn model_filter_matching() {
    assert!(model_match("", "a.b"));
    assert!(model_match(">", "a.b"));
    assert!(model_match("a.>", "a.b.c"));
    assert!(!model_match("a.>", "a"));
    assert!(model_match("*.x", "b.x"));
    assert!(!model_match("*", "b.x"));
    assert!(!model_match("b.x", "b.x.y"));
}

// Regressions the property test found, each pinned as a plain example.

fn file_at(disk: &MemDisk) -> FileStore<MemDisk> {
    FileStore::open(disk.clone(), DIR, StoreConfig::default(), file_cfg()).unwrap()
}

/// Compact past the end starts a fresh block. If the crash keeps that block's header but not
/// the floor record after it, the header alone must not claim sequences the log never held.
#[test]
fn torn_compact_past_end_is_undone_not_reported_lost() {
    let disk = MemDisk::new(1);
    let mut fs = file_at(&disk);
    fs.store_msg("a", b"", b"", 1).unwrap();
    fs.sync().unwrap();
    let want = fs.state();
    assert_eq!(fs.compact(3).unwrap(), 1);
    let newest = *fs.backend().block_ids().last().unwrap();
    let path = fs.backend().block_path(newest);
    drop(fs);
    disk.truncate_file(&path, record::HEADER_LEN as u64)
        .unwrap();
    let fs = file_at(&disk);
    assert_eq!(fs.state(), want);
    assert!(fs.corruption().is_empty(), "{:?}", fs.corruption());
}

/// A new store's only block holds just its header. Damage there looks like a header the
/// crash never let reach the disk, so recovery restarts the block: at the configured first
/// sequence, not at 1.
#[test]
fn restarted_header_of_a_new_store_keeps_its_first_seq() {
    let disk = MemDisk::new(1);
    let cfg = StoreConfig {
        first_seq: 10,
        ..StoreConfig::default()
    };
    let fs = FileStore::open(disk.clone(), DIR, cfg.clone(), file_cfg()).unwrap();
    let path = fs.backend().block_path(1);
    drop(fs);
    disk.flip_bit(&path, 0).unwrap();
    let mut fs = FileStore::open(disk, DIR, cfg, file_cfg()).unwrap();
    assert_eq!(fs.state().last_seq, 9);
    assert_eq!(fs.store_msg("a", b"", b"", 1).unwrap().0, 10);
}

/// A process crash leaves an unsynced message intact; the next open keeps it and fsyncs it.
/// From then on it is synced like any other, so damage to it must be reported, not taken for
/// a torn tail and cut.
#[test]
fn message_kept_by_recovery_is_protected_like_a_synced_one() {
    let disk = MemDisk::new(1);
    let mut fs = file_at(&disk);
    fs.store_msg("a", b"", b"one", 1).unwrap();
    fs.sync().unwrap();
    let path = fs.backend().block_path(1);
    let at = disk.len(&path).unwrap();
    fs.store_msg("a", b"", b"two", 2).unwrap();
    drop(fs);
    let fs = file_at(&disk);
    assert_eq!(fs.state().msgs, 2);
    assert_eq!(fs.synced_through(), 2);
    drop(fs);
    disk.flip_bit(&path, (at + 20) * 8).unwrap();
    let fs = file_at(&disk);
    assert_eq!(fs.recovery().torn_bytes, 0);
    assert!(fs.state().lost_msgs > 0, "{:?}", fs.state());
    assert!(matches!(fs.load_msg(2), Err(StoreError::Corrupt { .. })));
}
