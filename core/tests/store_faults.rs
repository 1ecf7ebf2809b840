//! The file store under storage faults: power loss with torn writes, flipped bits, truncated
//! and deleted blocks, a full disk, a failing disk.
//!
//! The promises checked: no synced message is ever lost, no message appears that was not
//! stored, damage is reported and never returned as data, ENOSPC loses nothing, EIO freezes.

// Helpers outside #[test] fns panic on purpose too: a failed expectation is the test's answer.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use natsd_core::jetstream::store::{
    disk::Disk, CorruptionKind, CrashMode, DiskError, DiskOp, FaultPlan, FileStore,
    FileStoreConfig, MemDisk, StoreConfig, StoreError, StreamStore,
};
use natsd_core::rng::SplitMix64;

const DIR: &str = "js/ORDERS";

fn cfg(block_size: u64) -> FileStoreConfig {
    FileStoreConfig {
        block_size,
        ..FileStoreConfig::default()
    }
}

fn open(disk: &MemDisk, block_size: u64) -> FileStore<MemDisk> {
    FileStore::open(disk.clone(), DIR, StoreConfig::default(), cfg(block_size)).expect("open")
}

fn payload(seq_hint: u64, rng: &mut SplitMix64) -> Vec<u8> {
    let mut p = format!("msg-{seq_hint:06}-").into_bytes();
    let extra = rng.below(60) as usize;
    p.extend((0..extra).map(|i| (i as u8) ^ (seq_hint as u8)));
    p
}

/// Random workloads cut by power losses that keep a random prefix of the unsynced bytes.
#[test]
fn crash_sweep_loses_no_synced_message_and_invents_none() {
    for seed in 0..200u64 {
        let mut rng = SplitMix64::new(seed);
        let disk = MemDisk::new(rng.next_u64());
        let block_size = 200 + rng.below(2000);
        let mut fs = open(&disk, block_size);
        // What the store holds (by our account), what is durable, removals since the last sync.
        let mut live: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut durable: BTreeSet<u64> = BTreeSet::new();
        let mut pending_removals: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut stored_total = 0;
        for _round in 0..4 {
            let ops = 20 + rng.below(150);
            for _ in 0..ops {
                match rng.below(20) {
                    0..=13 => {
                        let p = payload(stored_total, &mut rng);
                        let (seq, _) = fs.store_msg("orders.new", b"", &p, stored_total).unwrap();
                        live.insert(seq, p);
                        stored_total += 1;
                    }
                    14 | 15 => {
                        if let Some(&seq) =
                            live.keys().nth(rng.below(live.len() as u64 + 1) as usize)
                        {
                            assert!(fs.remove_msg(seq).unwrap());
                            let p = live.remove(&seq).unwrap();
                            pending_removals.insert(seq, p);
                        }
                    }
                    16 => {
                        let to = fs.state().first_seq + rng.below(5);
                        fs.compact(to).unwrap();
                        let gone: Vec<u64> = live.range(..to).map(|(s, _)| *s).collect();
                        for s in gone {
                            let p = live.remove(&s).unwrap();
                            pending_removals.insert(s, p);
                        }
                    }
                    _ => {
                        let through = fs.sync().unwrap();
                        assert_eq!(through, fs.state().last_seq);
                        durable = live.keys().copied().collect();
                        pending_removals.clear();
                    }
                }
            }
            // Power loss, then reboot.
            let mode = if rng.below(4) == 0 {
                CrashMode::LoseUnsynced
            } else {
                CrashMode::Torn
            };
            drop(fs);
            disk.crash(mode);
            fs = open(&disk, block_size);
            assert!(
                fs.corruption().is_empty(),
                "seed {seed}: torn writes are not corruption: {:?}",
                fs.corruption()
            );
            let stored_at = |seq: &u64| {
                live.get(seq)
                    .or_else(|| pending_removals.get(seq))
                    .map(|p| &p[..])
            };
            for seq in &durable {
                match fs.load_msg(*seq) {
                    Ok(m) => assert_eq!(
                        Some(&m.payload[..]),
                        stored_at(seq),
                        "seed {seed} seq {seq}"
                    ),
                    Err(e) => assert!(
                        pending_removals.contains_key(seq),
                        "seed {seed}: synced seq {seq} lost: {e}"
                    ),
                }
            }
            // Everything present was stored with exactly this content (no phantoms, no stale data).
            let mut seq = 0;
            let mut present = BTreeMap::new();
            while let Ok(m) = fs.load_next_msg("", seq + 1) {
                seq = m.seq;
                // A removal that was not synced may be undone by the crash; any other message
                // must be exactly what was stored at that sequence.
                assert_eq!(
                    Some(&m.payload[..]),
                    stored_at(&seq),
                    "seed {seed}: phantom or altered message at seq {seq}"
                );
                present.insert(seq, m.payload.to_vec());
            }
            assert_eq!(fs.state().msgs, present.len() as u64);
            // Start the next round from what survived; it is all durable now (open syncs).
            live = present;
            durable = live.keys().copied().collect();
            pending_removals.clear();
        }
    }
}

/// Where the record holding `needle` starts in `path`, and its length.
fn record_span(disk: &MemDisk, path: &str, needle: &[u8], subject: &str) -> (u64, u64) {
    let data = disk.contents(path).unwrap();
    let at = data
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle");
    let start = at - 32 - subject.len();
    let len = u32::from_le_bytes(data[start..start + 4].try_into().unwrap()) as u64;
    (start as u64, len)
}

/// Which block file holds `needle`.
fn block_with(disk: &MemDisk, needle: &[u8]) -> String {
    disk.paths()
        .into_iter()
        .find(|p| {
            disk.contents(p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
        })
        .expect("block")
}

fn fill(disk: &MemDisk, n: u64, block_size: u64) -> FileStore<MemDisk> {
    let mut fs = open(disk, block_size);
    for i in 1..=n {
        fs.store_msg("s", b"", format!("payload-{i:04}").as_bytes(), i)
            .unwrap();
    }
    fs.sync().unwrap();
    fs
}

#[test]
fn flipped_bits_are_detected_reported_and_never_returned() {
    let mut rng = SplitMix64::new(99);
    for round in 0..300 {
        let disk = MemDisk::new(round);
        let n = 30;
        drop(fill(&disk, n, 400));
        // Any message, including the very last one synced (the sync mark protects it).
        let victim = 1 + rng.below(n);
        let needle = format!("payload-{victim:04}");
        let path = block_with(&disk, needle.as_bytes());
        let (start, len) = record_span(&disk, &path, needle.as_bytes(), "s");
        let bit = start * 8 + rng.below(len * 8);
        disk.flip_bit(&path, bit).unwrap();
        let fs = open(&disk, 400);
        let missing = fs.corruption().iter().any(|c| {
            c.kind
                == CorruptionKind::MissingSeqs {
                    first: victim,
                    last: victim,
                }
        });
        assert!(
            missing,
            "round {round}: victim {victim} bit {bit}: {:?}",
            fs.corruption()
        );
        assert!(matches!(
            fs.load_msg(victim),
            Err(StoreError::Corrupt { .. })
        ));
        let st = fs.state();
        assert_eq!((st.msgs, st.lost_msgs, st.last_seq), (n - 1, 1, n));
        assert!(st.corrupt_records >= 1);
        for seq in (1..=n).filter(|s| *s != victim) {
            assert_eq!(
                fs.load_msg(seq).unwrap().payload,
                format!("payload-{seq:04}").as_bytes()[..]
            );
        }
    }
}

#[test]
fn bit_flipped_under_a_running_store_is_an_error_not_data() {
    let disk = MemDisk::new(1);
    let fs = fill(&disk, 10, 1 << 20);
    let path = block_with(&disk, b"payload-0005");
    let (start, _) = record_span(&disk, &path, b"payload-0005", "s");
    disk.flip_bit(&path, (start + 40) * 8 + 3).unwrap();
    assert!(matches!(fs.load_msg(5), Err(StoreError::Corrupt { .. })));
    assert!(fs.load_msg(4).is_ok() && fs.load_msg(6).is_ok());
}

#[test]
fn damaged_header_is_reported_and_its_records_still_read() {
    let disk = MemDisk::new(1);
    drop(fill(&disk, 30, 300));
    let first = disk.paths()[0].clone();
    disk.flip_bit(&first, 70).unwrap();
    let fs = open(&disk, 300);
    assert!(fs
        .corruption()
        .iter()
        .any(|c| c.kind == CorruptionKind::BadHeader));
    assert_eq!(fs.state().msgs, 30);
}

#[test]
fn truncated_or_deleted_block_is_reported_as_missing_sequences() {
    // Jepsen's truncate-file nemesis on an old block: whole records vanish without a trace in
    // that block, but the next block's base sequence shows the gap.
    let disk = MemDisk::new(1);
    drop(fill(&disk, 40, 300));
    let blocks = disk.paths();
    assert!(blocks.len() >= 4);
    let victim = &blocks[1];
    let header_and_two = {
        let data = disk.contents(victim).unwrap();
        let mut off = 32usize;
        for _ in 0..2 {
            off += u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        }
        off as u64
    };
    disk.truncate_file(victim, header_and_two).unwrap();
    let mut mid = disk.clone();
    mid.remove(&blocks[2]).unwrap();
    let fs = open(&disk, 300);
    let lost: u64 = fs.state().lost_msgs;
    let gaps: Vec<_> = fs
        .corruption()
        .iter()
        .filter(|c| matches!(c.kind, CorruptionKind::MissingSeqs { .. }))
        .collect();
    assert!(!gaps.is_empty() && lost > 0, "{:?}", fs.corruption());
    assert_eq!(fs.state().msgs + lost, 40);
    for seq in 1..=40 {
        match fs.load_msg(seq) {
            Ok(m) => assert_eq!(m.payload, format!("payload-{seq:04}").as_bytes()[..]),
            Err(e) => assert!(matches!(e, StoreError::Corrupt { .. }), "seq {seq}: {e}"),
        }
    }
}

#[test]
fn enospc_loses_nothing_and_the_store_recovers() {
    let disk = MemDisk::new(5);
    let mut fs = open(&disk, 1000);
    for i in 0..20 {
        fs.store_msg("s", b"", format!("early-{i}").as_bytes(), 0)
            .unwrap();
    }
    fs.sync().unwrap();
    disk.set_capacity(Some(disk.used() + 500));
    let mut refused = 0;
    let mut stored = Vec::new();
    for i in 0..50 {
        let before = fs.state();
        match fs.store_msg(
            "s",
            b"",
            format!("late-{i:02}-padding-padding").as_bytes(),
            0,
        ) {
            Ok((seq, _)) => stored.push(seq),
            Err(e) => {
                assert_eq!(e, StoreError::InsufficientResources);
                assert_eq!(fs.state(), before, "a refused store changes nothing");
                refused += 1;
            }
        }
    }
    assert!(refused > 0 && !stored.is_empty());
    // Removals need space too; refused ones leave the message in place.
    match fs.remove_msg(1) {
        Ok(removed) => assert!(removed),
        Err(e) => assert_eq!(e, StoreError::InsufficientResources),
    }
    let synced = fs.sync().unwrap();
    assert_eq!(synced, fs.state().last_seq);
    // Space comes back: the same store carries on, and a power loss keeps everything synced.
    disk.set_capacity(None);
    let (seq, _) = fs.store_msg("s", b"", b"after", 0).unwrap();
    assert_eq!(seq, synced + 1);
    fs.sync().unwrap();
    let want = fs.state();
    drop(fs);
    disk.crash(CrashMode::Torn);
    let fs = open(&disk, 1000);
    assert_eq!(fs.state(), want);
    assert!(fs.corruption().is_empty());
    assert_eq!(fs.load_msg(seq).unwrap().payload, &b"after"[..]);
}

#[test]
fn enospc_when_rolling_a_block() {
    let disk = MemDisk::new(5);
    let mut fs = open(&disk, 100);
    fs.store_msg("s", b"", &[1; 50], 0).unwrap();
    disk.fail_next(DiskOp::Create, DiskError::NoSpace);
    assert_eq!(
        fs.store_msg("s", b"", &[2; 50], 0),
        Err(StoreError::InsufficientResources)
    );
    assert_eq!(fs.store_msg("s", b"", &[3; 50], 0).unwrap().0, 2);
    fs.sync().unwrap();
    assert_eq!(open(&disk, 100).load_msg(2).unwrap().payload[0], 3);
}

#[test]
fn random_enospc_keeps_store_and_disk_in_step() {
    for seed in 0..30 {
        let disk = MemDisk::new(seed);
        let mut fs = open(&disk, 300);
        disk.set_fault_plan(FaultPlan {
            append_nospace_ppm: 200_000,
            ..FaultPlan::default()
        });
        let mut live = BTreeMap::new();
        for i in 0..300u64 {
            match fs.store_msg("s", b"", format!("m{i}").as_bytes(), i) {
                Ok((seq, _)) => {
                    live.insert(seq, format!("m{i}"));
                }
                Err(e) => assert_eq!(e, StoreError::InsufficientResources),
            }
            if i % 7 == 0 {
                if let Some(&seq) = live.keys().next() {
                    if fs.remove_msg(seq) == Ok(true) {
                        live.remove(&seq);
                    }
                }
            }
            if i % 10 == 0 {
                fs.sync().unwrap();
            }
        }
        fs.sync().unwrap();
        drop(fs);
        disk.set_fault_plan(FaultPlan::default());
        disk.crash(CrashMode::Torn);
        let fs = open(&disk, 300);
        assert!(
            fs.corruption().is_empty(),
            "seed {seed}: {:?}",
            fs.corruption()
        );
        assert_eq!(fs.state().msgs, live.len() as u64, "seed {seed}");
        for (seq, p) in &live {
            assert_eq!(fs.load_msg(*seq).unwrap().payload, p.as_bytes()[..]);
        }
    }
}

#[test]
fn eio_on_fsync_freezes_writes() {
    let disk = MemDisk::new(3);
    let mut fs = open(&disk, 1 << 20);
    fs.store_msg("s", b"", b"one", 0).unwrap();
    fs.sync().unwrap();
    fs.store_msg("s", b"", b"two", 0).unwrap();
    disk.fail_next(DiskOp::Sync, DiskError::Io("EIO".into()));
    assert!(matches!(fs.sync(), Err(StoreError::Io(_))));
    assert_eq!(fs.synced_through(), 1, "seq 2 must never be acked");
    assert!(matches!(
        fs.store_msg("s", b"", b"three", 0),
        Err(StoreError::Io(_))
    ));
    assert!(
        matches!(fs.sync(), Err(StoreError::Io(_))),
        "a failed fsync is never retried"
    );
    assert!(matches!(fs.remove_msg(1), Err(StoreError::Io(_))));
    assert!(fs.backend().frozen().is_some());
    assert_eq!(
        fs.load_msg(1).unwrap().payload,
        &b"one"[..],
        "reads still work"
    );
    // A restart (re-reading what is really on disk) is the way out.
    drop(fs);
    disk.crash(CrashMode::LoseUnsynced);
    let mut fs = open(&disk, 1 << 20);
    assert_eq!(fs.state().last_seq, 1);
    assert_eq!(fs.store_msg("s", b"", b"two again", 0).unwrap().0, 2);
}

#[test]
fn eio_on_append_freezes_writes() {
    let disk = MemDisk::new(3);
    let mut fs = open(&disk, 1 << 20);
    disk.fail_next(DiskOp::Append, DiskError::Io("EIO".into()));
    assert!(matches!(
        fs.store_msg("s", b"", b"x", 0),
        Err(StoreError::Io(_))
    ));
    assert!(matches!(
        fs.store_msg("s", b"", b"y", 0),
        Err(StoreError::Io(_))
    ));
    assert_eq!(fs.state().msgs, 0);
}
