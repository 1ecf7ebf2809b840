//! Log store tests over `MemDisk`: reopen, crash, torn tails and bit flips.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use natsd_core::jetstream::store::{CrashMode, Disk, DiskError, DiskOp, MemDisk};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, EntryPayload, RaftLogReader};

use crate::health::Health;
use crate::log_store::{LogStore, RecoveryReport, SharedDisk, StoreConfig};
use crate::record;
use crate::types::{Command, Entry, LogId, Vote};

const DIR: &str = "raft/g1";

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Command(format!("cmd-{index}").into_bytes())),
    }
}

fn small_segments() -> StoreConfig {
    // A few entries per segment, so segment rotation and removal are exercised.
    StoreConfig { segment_bytes: 50 }
}

fn open(disk: &MemDisk) -> (LogStore<MemDisk>, RecoveryReport) {
    LogStore::open(
        SharedDisk::new(disk.clone()),
        DIR,
        small_segments(),
        Health::new(None),
        false,
    )
    .unwrap()
}

async fn indexes<D: Disk + Send + 'static>(store: &mut LogStore<D>) -> Vec<u64> {
    let entries = store.try_get_log_entries(0..u64::MAX).await.unwrap();
    for e in &entries {
        // Every entry reads back whole.
        let EntryPayload::Normal(cmd) = &e.payload else {
            panic!("unexpected payload")
        };
        assert_eq!(cmd.0, format!("cmd-{}", e.log_id.index).into_bytes());
    }
    entries.iter().map(|e| e.log_id.index).collect()
}

fn segments(disk: &MemDisk) -> Vec<String> {
    disk.paths()
        .into_iter()
        .filter(|p| p.starts_with(&format!("{DIR}/seg-")))
        .collect()
}

#[tokio::test]
async fn append_read_truncate_purge_vote_survive_reopen() {
    let disk = MemDisk::new(1);
    let (mut s, report) = open(&disk);
    assert_eq!(report, RecoveryReport::default());
    s.blocking_append((0..=10).map(|i| entry(1, i)))
        .await
        .unwrap();
    assert!(segments(&disk).len() > 2, "small segments rotate");
    let vote = Vote::new(3, 2);
    s.save_vote(&vote).await.unwrap();
    s.truncate(log_id(1, 8)).await.unwrap();
    s.blocking_append((8..=9).map(|i| entry(2, i)))
        .await
        .unwrap();
    s.purge(log_id(1, 4)).await.unwrap();
    assert_eq!(indexes(&mut s).await, (5..=9).collect::<Vec<_>>());
    drop(s);

    // Everything above was synced: a crash loses nothing.
    disk.crash(CrashMode::LoseUnsynced);
    let (mut s, report) = open(&disk);
    assert_eq!(report, RecoveryReport::default());
    assert_eq!(s.read_vote().await.unwrap(), Some(vote));
    let st = s.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id, Some(log_id(1, 4)));
    assert_eq!(st.last_log_id, Some(log_id(2, 9)));
    assert_eq!(indexes(&mut s).await, (5..=9).collect::<Vec<_>>());
    assert_eq!(s.log_ids()[3], log_id(2, 8));
    assert!(!s.health().is_damaged());
    // Purging everything removes every segment; appends then start a new one.
    s.purge(log_id(2, 9)).await.unwrap();
    assert!(segments(&disk).is_empty());
    s.blocking_append([entry(2, 10)]).await.unwrap();
    drop(s);
    let (mut s, _) = open(&disk);
    assert_eq!(indexes(&mut s).await, vec![10]);
}

#[tokio::test]
async fn unsynced_bytes_lost_in_a_crash_are_cut() {
    let mut cuts = 0;
    for seed in 0..20 {
        let disk = MemDisk::new(seed);
        let (mut s, _) = open(&disk);
        s.blocking_append((0..=3).map(|i| entry(1, i)))
            .await
            .unwrap();
        drop(s);
        // An append that never reached its sync: a crash keeps any prefix of it, maybe zeroed.
        let last = segments(&disk).pop().unwrap();
        let mut d = disk.clone();
        let mut unsynced = record::encode(&crate::codec::encode(&entry(1, 4)).unwrap());
        unsynced.extend(record::encode(&crate::codec::encode(&entry(1, 5)).unwrap()));
        d.append(&last, &unsynced).unwrap();
        disk.crash(CrashMode::Torn);
        let (mut s, report) = open(&disk);
        assert!(report.damage.is_none(), "seed {seed}: {report:?}");
        cuts += usize::from(report.torn_bytes > 0);
        let got = indexes(&mut s).await;
        assert!(
            got.starts_with(&[0, 1, 2, 3]) && got.len() <= 6,
            "seed {seed}: {got:?}"
        );
        // The cut is durable and the log goes on cleanly.
        let next = got.len() as u64;
        s.blocking_append([entry(1, next)]).await.unwrap();
        drop(s);
        let (mut s, report) = open(&disk);
        assert_eq!(report, RecoveryReport::default(), "seed {seed}");
        assert_eq!(indexes(&mut s).await.len() as u64, next + 1);
    }
    assert!(cuts > 0, "some crash left a torn tail to cut");
}

#[tokio::test]
async fn zeroed_tail_is_cut_quietly() {
    let disk = MemDisk::new(2);
    let (mut s, _) = open(&disk);
    s.blocking_append((0..=2).map(|i| entry(1, i)))
        .await
        .unwrap();
    drop(s);
    let last = segments(&disk).pop().unwrap();
    let mut d = disk.clone();
    d.append(&last, &[0u8; 64]).unwrap();
    d.sync(&last).unwrap();
    let (mut s, report) = open(&disk);
    assert_eq!(report.torn_bytes, 64);
    assert!(report.damage.is_none());
    assert_eq!(indexes(&mut s).await, vec![0, 1, 2]);
}

#[tokio::test]
async fn mid_log_bit_flip_marks_damaged_and_deletes_nothing() {
    let disk = MemDisk::new(3);
    let (mut s, _) = open(&disk);
    s.blocking_append((0..=10).map(|i| entry(1, i)))
        .await
        .unwrap();
    drop(s);
    let segs = segments(&disk);
    let victim = segs[1].clone();
    let before = disk.contents(&victim).unwrap();
    // A bit in the payload of the victim segment's first record.
    disk.flip_bit(&victim, (record::HEADER_LEN as u64 + 2) * 8 + 3)
        .unwrap();
    let (mut s, report) = open(&disk);
    let damage = report.damage.clone().expect("damaged");
    assert!(damage.reason.contains("checksum"), "{damage:?}");
    assert_eq!(damage.repair_through, 10);
    assert!(s.health().is_damaged());
    // The log goes on from the last good entry; the rest is set aside, not deleted.
    let good = indexes(&mut s).await;
    assert!(!good.is_empty() && *good.last().unwrap() < 10, "{good:?}");
    assert!(!report.set_aside.is_empty());
    let kept: Vec<Vec<u8>> = disk
        .paths()
        .into_iter()
        .filter(|p| p.contains("/damaged-"))
        .map(|p| disk.contents(&p).unwrap())
        .collect();
    let mut flipped = before.clone();
    flipped[record::HEADER_LEN + 2] ^= 1 << 3;
    assert!(
        kept.contains(&flipped),
        "the damaged segment is kept as it was"
    );
    drop(s);

    // The damage outlives a restart until repaired.
    let (mut s, report) = open(&disk);
    assert_eq!(report.damage.as_ref().map(|d| d.repair_through), Some(10));
    assert!(report.set_aside.is_empty());
    // Replication refills the log; commit through the old end repairs it.
    assert_eq!(good, vec![0, 1, 2]);
    let next = good.len() as u64;
    s.blocking_append((next..=10).map(|i| entry(1, i)))
        .await
        .unwrap();
    s.save_committed(Some(log_id(1, 9))).await.unwrap();
    assert!(s.health().is_damaged());
    s.save_committed(Some(log_id(1, 10))).await.unwrap();
    assert!(!s.health().is_damaged());
    drop(s);
    let (_, report) = open(&disk);
    assert_eq!(report.damage, None);
}

#[tokio::test]
async fn vote_file_that_fails_its_checksum_marks_damaged() {
    let disk = MemDisk::new(4);
    let (mut s, _) = open(&disk);
    s.blocking_append((0..=3).map(|i| entry(1, i)))
        .await
        .unwrap();
    s.save_vote(&Vote::new(1, 1)).await.unwrap();
    drop(s);
    disk.flip_bit(&format!("{DIR}/state"), 100).unwrap();
    let (mut s, report) = open(&disk);
    let damage = report.damage.expect("damaged");
    assert!(damage.reason.contains("vote"), "{damage:?}");
    assert_eq!(damage.repair_through, 3);
    // Without a trustworthy state the log cannot be placed: all of it is set aside, kept.
    assert_eq!(s.read_vote().await.unwrap(), None);
    assert!(indexes(&mut s).await.is_empty());
    assert!(disk.paths().iter().any(|p| p.ends_with("-state")));
    assert!(disk
        .paths()
        .iter()
        .any(|p| p.contains("damaged-") && p.contains("seg-")));
}

#[tokio::test]
async fn truncate_of_whole_segments_survives_reopen() {
    let disk = MemDisk::new(5);
    let (mut s, _) = open(&disk);
    s.blocking_append((0..=10).map(|i| entry(1, i)))
        .await
        .unwrap();
    let before = segments(&disk).len();
    // Index 6 opens a segment (three entries per segment): the truncate removes whole files.
    s.truncate(log_id(1, 6)).await.unwrap();
    assert_eq!(segments(&disk).len(), before - 2);
    assert_eq!(indexes(&mut s).await, (0..=5).collect::<Vec<_>>());
    s.blocking_append((6..=7).map(|i| entry(2, i)))
        .await
        .unwrap();
    drop(s);
    let (mut s, report) = open(&disk);
    assert_eq!(report, RecoveryReport::default());
    assert_eq!(indexes(&mut s).await, (0..=7).collect::<Vec<_>>());
    assert_eq!(s.log_ids()[7], log_id(2, 7));
}

#[tokio::test]
async fn failed_sync_is_reported_and_freezes_the_log() {
    let disk = MemDisk::new(6);
    let (mut s, _) = open(&disk);
    s.blocking_append((0..=2).map(|i| entry(1, i)))
        .await
        .unwrap();
    disk.fail_next(DiskOp::Sync, DiskError::Io("EIO".into()));
    // The flush callback reports the failure, never success.
    assert!(s.blocking_append([entry(1, 3)]).await.is_err());
    // fsyncgate: no retry as if it were transient.
    assert!(s.blocking_append([entry(1, 4)]).await.is_err());
    assert!(s.save_vote(&Vote::new(2, 1)).await.is_err());
    drop(s);
    disk.crash(CrashMode::LoseUnsynced);
    let (mut s, report) = open(&disk);
    assert!(report.damage.is_none());
    assert_eq!(indexes(&mut s).await, vec![0, 1, 2]);
}

mod model {
    //! The log store against a model: every operation is durable on return, so any crash and
    //! reopen gives back exactly the model's log, vote and purge point.

    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Append(u8),
        NewTerm,
        Truncate(u8),
        Purge(u8),
        Vote(u8),
        Reopen(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u8..6).prop_map(Op::Append),
            1 => Just(Op::NewTerm),
            1 => (0u8..4).prop_map(Op::Truncate),
            1 => (0u8..6).prop_map(Op::Purge),
            1 => (0u8..4).prop_map(Op::Vote),
            2 => any::<bool>().prop_map(Op::Reopen),
        ]
    }

    #[derive(Default)]
    struct Model {
        log: Vec<LogId>,
        purged: Option<LogId>,
        vote: Option<Vote>,
        term: u64,
    }

    impl Model {
        fn next_index(&self) -> u64 {
            self.log
                .last()
                .or(self.purged.as_ref())
                .map_or(0, |l| l.index + 1)
        }
    }

    async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let disk = MemDisk::new(9);
        let (mut s, _) = open(&disk);
        let mut m = Model {
            term: 1,
            ..Model::default()
        };
        for op in ops {
            match op {
                Op::Append(n) => {
                    let start = m.next_index();
                    let entries: Vec<Entry> = (start..start + u64::from(n))
                        .map(|i| entry(m.term, i))
                        .collect();
                    m.log.extend(entries.iter().map(|e| e.log_id));
                    s.blocking_append(entries).await.unwrap();
                }
                Op::NewTerm => m.term += 1,
                Op::Truncate(k) => {
                    if let Some(pos) = m.log.len().checked_sub(usize::from(k) + 1) {
                        s.truncate(m.log[pos]).await.unwrap();
                        m.log.truncate(pos);
                    }
                }
                Op::Purge(k) => {
                    if let Some(&id) = m.log.get(usize::from(k)) {
                        s.purge(id).await.unwrap();
                        m.log.drain(..=usize::from(k));
                        m.purged = Some(id);
                    }
                }
                Op::Vote(node) => {
                    let v = Vote::new(m.term, u64::from(node));
                    s.save_vote(&v).await.unwrap();
                    m.vote = Some(v);
                }
                Op::Reopen(torn) => {
                    drop(s);
                    disk.crash(if torn {
                        CrashMode::Torn
                    } else {
                        CrashMode::LoseUnsynced
                    });
                    let (store, report) = open(&disk);
                    s = store;
                    prop_assert_eq!(report, RecoveryReport::default());
                }
            }
            prop_assert_eq!(s.log_ids(), m.log.clone());
            let st = s.get_log_state().await.unwrap();
            prop_assert_eq!(st.last_purged_log_id, m.purged);
            prop_assert_eq!(st.last_log_id, m.log.last().copied().or(m.purged));
            prop_assert_eq!(s.read_vote().await.unwrap(), m.vote);
        }
        let got: Vec<LogId> = s
            .try_get_log_entries(0..u64::MAX)
            .await
            .unwrap()
            .iter()
            .map(|e| e.log_id)
            .collect();
        prop_assert_eq!(got, m.log);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn store_matches_model(ops in prop::collection::vec(op(), 1..60)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(run(ops))?;
        }
    }
}

#[tokio::test]
async fn failed_append_rolls_back_and_the_log_goes_on() {
    let disk = MemDisk::new(7);
    let (mut s, _) = open(&disk);
    s.blocking_append((0..=1).map(|i| entry(1, i)))
        .await
        .unwrap();
    let before: Vec<(String, Vec<u8>)> = segments(&disk)
        .into_iter()
        .map(|p| (p.clone(), disk.contents(&p).unwrap()))
        .collect();
    // Room for a record or two, not for the batch: ENOSPC halfway through.
    disk.set_capacity(Some(disk.used() + 40));
    assert!(s
        .blocking_append((2..=6).map(|i| entry(1, i)))
        .await
        .is_err());
    disk.set_capacity(None);
    let after: Vec<(String, Vec<u8>)> = segments(&disk)
        .into_iter()
        .map(|p| (p.clone(), disk.contents(&p).unwrap()))
        .collect();
    assert_eq!(after, before, "the segments are back as they were");
    assert_eq!(indexes(&mut s).await, vec![0, 1]);
    s.blocking_append((2..=6).map(|i| entry(1, i)))
        .await
        .unwrap();
    drop(s);
    disk.crash(CrashMode::LoseUnsynced);
    let (mut s, report) = open(&disk);
    assert_eq!(report, RecoveryReport::default());
    assert_eq!(indexes(&mut s).await, (0..=6).collect::<Vec<_>>());
}

/// A disk whose fsyncs come back as jobs, like the production one's; the jobs wait while
/// the gate is shut.
#[derive(Clone)]
struct JobDisk(MemDisk, Arc<Gate>);

#[derive(Default)]
struct Gate {
    shut: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn set(&self, shut: bool) {
        *self.shut.lock().unwrap() = shut;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut shut = self.shut.lock().unwrap();
        while *shut {
            shut = self.opened.wait(shut).unwrap();
        }
    }
}

impl Disk for JobDisk {
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        self.0.create(path)
    }
    fn append(&mut self, path: &str, data: &[u8]) -> Result<u64, DiskError> {
        self.0.append(path, data)
    }
    fn read_at(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        self.0.read_at(path, offset, len)
    }
    fn len(&self, path: &str) -> Result<u64, DiskError> {
        self.0.len(path)
    }
    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        self.0.sync(path)
    }
    fn sync_later(
        &mut self,
        path: &str,
    ) -> Result<Option<natsd_core::jetstream::store::SyncJob>, DiskError> {
        let mut disk = self.0.clone();
        let gate = Arc::clone(&self.1);
        let path = path.to_owned();
        Ok(Some(Box::new(move || {
            gate.pass();
            disk.sync(&path)
        })))
    }
    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.0.truncate(path, len)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.0.rename(from, to)
    }
    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        self.0.remove(path)
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, DiskError> {
        self.0.list(dir)
    }
}

#[tokio::test]
async fn fsync_jobs_run_before_the_flush_is_reported() {
    let disk = MemDisk::new(8);
    let open_jobs = || {
        LogStore::open(
            SharedDisk::new(JobDisk(disk.clone(), Arc::default())),
            DIR,
            small_segments(),
            Health::new(None),
            false,
        )
        .unwrap()
        .0
    };
    let mut s = open_jobs();
    s.blocking_append((0..=7).map(|i| entry(1, i)))
        .await
        .unwrap();
    // Every byte was synced by a job before the append returned.
    for p in segments(&disk) {
        assert_eq!(
            disk.synced_len(&p),
            Some(disk.contents(&p).unwrap().len() as u64)
        );
    }
    disk.fail_next(DiskOp::Sync, DiskError::Io("EIO".into()));
    assert!(s.blocking_append([entry(1, 8)]).await.is_err());
    assert!(
        s.blocking_append([entry(1, 9)]).await.is_err(),
        "frozen after a failed job"
    );
    drop(s);
    disk.crash(CrashMode::LoseUnsynced);
    let mut s = open_jobs();
    let got: Vec<u64> = s.log_ids().iter().map(|l| l.index).collect();
    assert_eq!(got, (0..=7).collect::<Vec<_>>());
    assert_eq!(s.try_get_log_entries(0..8).await.unwrap().len(), 8);
}

/// How long a step that needs no fsync may take on a loaded machine.
const PROMPT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_leaders_own_entries_flush_ahead_of_their_fsync() {
    let disk = MemDisk::new(9);
    let gate = Arc::new(Gate::default());
    let jobs = JobDisk(disk.clone(), Arc::clone(&gate));
    let open = || {
        LogStore::open(
            SharedDisk::new(jobs.clone()),
            DIR,
            small_segments(),
            Health::new(None),
            false,
        )
        .unwrap()
        .0
    };
    let mut s = open();
    let synced = s.bind_synced(1);
    synced.set_ahead(true);
    // Node 1 leads term 1: its own entries are reported flushed while their fsync waits.
    s.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
    gate.set(true);
    tokio::time::timeout(PROMPT, s.blocking_append((0..=3).map(|i| entry(1, i))))
        .await
        .expect("reported before the fsync ran")
        .unwrap();
    assert_eq!(*synced.watch().borrow(), None, "not durable yet");
    gate.set(false);
    assert!(tokio::time::timeout(PROMPT, synced.wait(log_id(1, 3)))
        .await
        .expect("durable once the fsync ran"),);
    // Read back (from the leader's recent entries) as written, and truncated alike.
    assert_eq!(indexes(&mut s).await, (0..=3).collect::<Vec<_>>());
    s.truncate(log_id(1, 3)).await.unwrap();
    assert_eq!(indexes(&mut s).await, (0..=2).collect::<Vec<_>>());
    s.purge(log_id(1, 0)).await.unwrap();
    assert_eq!(indexes(&mut s).await, (1..=2).collect::<Vec<_>>());
    // Whatever was reported is on disk.
    drop(s);
    disk.crash(CrashMode::LoseUnsynced);
    let s = open();
    let got: Vec<u64> = s.log_ids().iter().map(|l| l.index).collect();
    assert_eq!(got, (1..=2).collect::<Vec<_>>());
}
