//! Unit tests of the stream semantics, run against both stores, and of the file store's
//! own behaviour (reopen, rolling, block deletion, group commit).

use std::time::Duration;

use super::*;

const DIR: &str = "streams/ORDERS";

fn mem(cfg: StoreConfig) -> MemStore {
    MemStore::new(cfg)
}

fn file_cfg(block_size: u64) -> FileStoreConfig {
    FileStoreConfig {
        block_size,
        ..FileStoreConfig::default()
    }
}

fn file(cfg: StoreConfig) -> FileStore<MemDisk> {
    FileStore::open(MemDisk::new(7), DIR, cfg, file_cfg(512)).unwrap()
}

/// Runs `f` against a fresh store of each kind.
fn both(cfg: StoreConfig, f: impl Fn(&mut dyn StreamStore)) {
    f(&mut mem(cfg.clone()));
    let mut fs = file(cfg.clone());
    f(&mut fs);
    // Whatever the test left must also be what a reopen finds.
    let before = fs.state();
    let last = fs.sync().unwrap();
    assert_eq!(last, before.last_seq);
    let again = FileStore::open(fs.into_disk(), DIR, cfg, file_cfg(512)).unwrap();
    assert_eq!(again.state(), before);
}

fn put(s: &mut dyn StreamStore, subject: &str, payload: &str) -> u64 {
    s.store_msg(subject, b"", payload.as_bytes(), 1_000)
        .unwrap()
        .0
}

#[test]
fn store_and_load() {
    both(StoreConfig::default(), |s| {
        assert_eq!(
            s.store_msg("a.b", b"NATS/1.0\r\n\r\n", b"hi", 42).unwrap(),
            (1, 42)
        );
        assert_eq!(put(s, "a.c", "yo"), 2);
        let m = s.load_msg(1).unwrap();
        assert_eq!((m.seq, m.ts, m.subject.as_str()), (1, 42, "a.b"));
        assert_eq!(
            (&m.headers[..], &m.payload[..]),
            (&b"NATS/1.0\r\n\r\n"[..], &b"hi"[..])
        );
        assert_eq!(s.load_msg(3), Err(StoreError::Eof));
        assert_eq!(s.load_msg(0), Err(StoreError::NotFound));
        let st = s.state();
        assert_eq!(
            (
                st.msgs,
                st.first_seq,
                st.last_seq,
                st.first_ts,
                st.last_ts,
                st.num_subjects
            ),
            (2, 1, 2, 42, 1_000, 2)
        );
        assert_eq!(
            st.bytes,
            s.accounted_size("a.b", b"NATS/1.0\r\n\r\n", b"hi")
                + s.accounted_size("a.c", b"", b"yo")
        );
        assert_eq!(
            s.store_msg("", b"", b"x", 0),
            Err(StoreError::InvalidSubject)
        );
    });
}

#[test]
fn next_and_last_with_filters() {
    both(StoreConfig::default(), |s| {
        for (subj, p) in [
            ("o.new", "1"),
            ("o.paid", "2"),
            ("x", "3"),
            ("o.new", "4"),
            ("o.a.b", "5"),
        ] {
            put(s, subj, p);
        }
        assert_eq!(s.load_next_msg("o.new", 2).unwrap().seq, 4);
        assert_eq!(s.load_next_msg("o.*", 3).unwrap().seq, 4);
        assert_eq!(s.load_next_msg("o.>", 5).unwrap().seq, 5);
        assert_eq!(s.load_next_msg(">", 0).unwrap().seq, 1);
        assert_eq!(s.load_next_msg("", 3).unwrap().seq, 3);
        assert_eq!(s.load_next_msg("o.new", 5), Err(StoreError::Eof));
        assert_eq!(s.load_last_msg("o.*").unwrap().seq, 4);
        assert_eq!(s.load_last_msg(">").unwrap().seq, 5);
        assert_eq!(s.load_last_msg("nope"), Err(StoreError::NotFound));
        assert_eq!(
            s.filtered_state("o.*"),
            SimpleState {
                msgs: 3,
                first: 1,
                last: 4
            }
        );
        assert_eq!(
            s.filtered_state("o.>"),
            SimpleState {
                msgs: 4,
                first: 1,
                last: 5
            }
        );
        let totals = s.subjects_totals("o.>");
        assert_eq!(
            totals.into_iter().collect::<Vec<_>>(),
            vec![
                ("o.a.b".to_owned(), 1),
                ("o.new".to_owned(), 2),
                ("o.paid".to_owned(), 1)
            ]
        );
    });
}

#[test]
fn remove_and_deleted_accounting() {
    both(StoreConfig::default(), |s| {
        for i in 0..5 {
            put(s, "a", &i.to_string());
        }
        assert!(s.remove_msg(3).unwrap());
        assert!(!s.remove_msg(3).unwrap());
        assert!(!s.remove_msg(99).unwrap());
        assert_eq!(s.load_msg(3), Err(StoreError::NotFound));
        assert_eq!(s.state().num_deleted, 1);
        assert!(s.remove_msg(1).unwrap());
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq, st.num_deleted), (3, 2, 1));
        assert!(s.remove_msg(5).unwrap());
        assert_eq!(
            s.state().last_seq,
            5,
            "removing the last message keeps last_seq"
        );
        assert_eq!(put(s, "a", "next"), 6);
    });
}

#[test]
fn purge_and_compact() {
    both(StoreConfig::default(), |s| {
        for i in 0..6 {
            put(s, if i % 2 == 0 { "even" } else { "odd" }, "x");
        }
        assert_eq!(s.purge_ex("even", 1, 0).unwrap(), 2); // keeps seq 5
        assert_eq!(
            s.filtered_state("even"),
            SimpleState {
                msgs: 1,
                first: 5,
                last: 5
            }
        );
        assert_eq!(s.purge_ex("odd", 0, 4).unwrap(), 1); // only seq 2 is below 4
        assert_eq!(s.state().msgs, 3);
        assert_eq!(s.compact(6).unwrap(), 2);
        assert_eq!((s.state().first_seq, s.state().msgs), (6, 1));
        assert_eq!(s.compact(3).unwrap(), 0);
        assert_eq!(s.purge().unwrap(), 1);
        let st = s.state();
        assert_eq!(
            (st.msgs, st.bytes, st.first_seq, st.last_seq, st.first_ts),
            (0, 0, 7, 6, 0)
        );
        assert_eq!(s.compact(20).unwrap(), 0);
        let st = s.state();
        assert_eq!((st.first_seq, st.last_seq), (20, 19));
        assert_eq!(put(s, "a", "x"), 20);
        assert_eq!(s.purge_ex("", 0, 0).unwrap(), 1);
        assert_eq!(put(s, "a", "x"), 21);
    });
}

#[test]
fn first_seq_config() {
    both(
        StoreConfig {
            first_seq: 100,
            ..StoreConfig::default()
        },
        |s| {
            let st = s.state();
            assert_eq!((st.first_seq, st.last_seq), (100, 99));
            assert_eq!(put(s, "a", "x"), 100);
        },
    );
}

#[test]
fn discard_old_limits() {
    let cfg = StoreConfig {
        max_msgs: Some(3),
        ..StoreConfig::default()
    };
    both(cfg, |s| {
        for i in 0..5 {
            put(s, "a", &i.to_string());
        }
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq, st.last_seq), (3, 3, 5));
    });
    // Each kind counts sizes its own way (Go's memory and file formulas), so each gets a
    // limit of two of its own messages.
    let holds_two = |s: &mut dyn StreamStore, one: u64| {
        for _ in 0..4 {
            put(s, "a", "xx");
        }
        assert_eq!(
            (s.state().msgs, s.state().bytes, s.state().first_seq),
            (2, 2 * one, 3)
        );
    };
    let limit = |one: u64| StoreConfig {
        max_bytes: Some(2 * one),
        ..StoreConfig::default()
    };
    let one = msg_size("a", b"", b"xx");
    holds_two(&mut file(limit(one)), one);
    let one = mem(StoreConfig::default()).accounted_size("a", b"", b"xx");
    assert_eq!(one, 1 + 2 + 16, "Go: memStoreMsgSize");
    holds_two(&mut mem(limit(one)), one);
    let cfg = StoreConfig {
        max_msgs_per_subject: Some(1),
        ..StoreConfig::default()
    };
    both(cfg, |s| {
        for subj in ["k.a", "k.b", "k.a", "k.c", "k.b"] {
            put(s, subj, "v");
        }
        let totals = s.subjects_totals(">");
        assert!(totals.values().all(|&n| n == 1) && totals.len() == 3);
        assert_eq!(s.load_last_msg("k.a").unwrap().seq, 3);
        assert_eq!(s.state().first_seq, 3);
    });
}

#[test]
fn discard_new_limits_and_size() {
    let cfg = StoreConfig {
        max_msgs: Some(2),
        max_msg_size: Some(4),
        discard: Discard::New,
        ..StoreConfig::default()
    };
    both(cfg, |s| {
        assert_eq!(
            s.store_msg("a", b"", b"12345", 0),
            Err(StoreError::MsgTooLarge)
        );
        put(s, "a", "1");
        put(s, "a", "2");
        assert_eq!(s.store_msg("a", b"", b"3", 0), Err(StoreError::MaxMsgs));
        assert_eq!(s.state().last_seq, 2, "a refused message takes no sequence");
    });
    // One 40-byte message fits in 100 bytes and two do not, by either store's formula.
    let cfg = StoreConfig {
        max_bytes: Some(100),
        discard: Discard::New,
        ..StoreConfig::default()
    };
    both(cfg, |s| {
        put(s, "a", &"1".repeat(40));
        assert_eq!(
            s.store_msg("a", b"", &[b'2'; 40], 0),
            Err(StoreError::MaxBytes)
        );
    });
    let cfg = StoreConfig {
        max_msgs_per_subject: Some(1),
        discard: Discard::New,
        discard_new_per_subject: true,
        ..StoreConfig::default()
    };
    both(cfg, |s| {
        put(s, "a", "1");
        assert_eq!(
            s.store_msg("a", b"", b"2", 0),
            Err(StoreError::MaxMsgsPerSubject)
        );
        put(s, "b", "1");
    });
}

#[test]
fn max_age_expiry() {
    let cfg = StoreConfig {
        max_age: Some(Duration::from_secs(10)),
        ..StoreConfig::default()
    };
    both(cfg, |s| {
        let sec = 1_000_000_000;
        for t in [1, 2, 3, 20] {
            s.store_msg("a", b"", b"x", t * sec).unwrap();
        }
        assert_eq!(s.next_expiry(), Some(11 * sec));
        assert_eq!(s.expire(12 * sec).unwrap(), 2);
        assert_eq!(s.state().first_seq, 3);
        assert_eq!(s.next_expiry(), Some(13 * sec));
        assert_eq!(s.expire(12 * sec).unwrap(), 0);
    });
}

#[test]
fn update_config_enforces_at_once() {
    both(StoreConfig::default(), |s| {
        for i in 0..10 {
            put(s, &format!("s.{}", i % 2), "x");
        }
        s.update_config(StoreConfig {
            max_msgs_per_subject: Some(2),
            ..StoreConfig::default()
        })
        .unwrap();
        assert_eq!(s.state().msgs, 4);
        s.update_config(StoreConfig {
            max_msgs: Some(1),
            ..StoreConfig::default()
        })
        .unwrap();
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq), (1, 10));
    });
}

#[test]
fn file_store_reopens_what_was_synced() {
    let disk = MemDisk::new(1);
    let mut fs = FileStore::open(disk.clone(), DIR, StoreConfig::default(), file_cfg(300)).unwrap();
    for i in 0..40 {
        fs.store_msg(
            &format!("t.{}", i % 3),
            b"h",
            format!("payload {i}").as_bytes(),
            i,
        )
        .unwrap();
    }
    fs.remove_msg(7).unwrap();
    assert_eq!(fs.sync().unwrap(), 40);
    assert_eq!(fs.synced_through(), 40);
    assert!(fs.backend().block_ids().len() > 3, "small blocks roll");
    let want = fs.state();
    disk.crash(CrashMode::LoseUnsynced);
    let fs = FileStore::open(disk, DIR, StoreConfig::default(), file_cfg(300)).unwrap();
    assert_eq!(fs.state(), want);
    assert!(fs.corruption().is_empty());
    assert_eq!(
        fs.load_msg(8).unwrap().payload,
        Bytes::from_static(b"payload 7")
    );
    assert_eq!(fs.load_msg(7), Err(StoreError::NotFound));
}

#[test]
fn group_commit_one_fsync_per_batch() {
    let disk = MemDisk::new(1);
    let mut fs = FileStore::open(
        disk.clone(),
        DIR,
        StoreConfig::default(),
        FileStoreConfig::default(),
    )
    .unwrap();
    let base = disk.syncs();
    for _ in 0..100 {
        fs.store_msg("a", b"", b"x", 0).unwrap();
    }
    assert_eq!(fs.synced_through(), 0);
    assert_eq!(fs.sync().unwrap(), 100);
    assert_eq!(disk.syncs() - base, 1);
    assert_eq!(fs.sync().unwrap(), 100);
    assert_eq!(disk.syncs() - base, 1, "nothing new, no fsync");
}

#[test]
fn purged_blocks_are_deleted_after_sync() {
    let disk = MemDisk::new(1);
    let mut fs = FileStore::open(disk.clone(), DIR, StoreConfig::default(), file_cfg(200)).unwrap();
    for _ in 0..30 {
        fs.store_msg("a", b"", &[1; 40], 0).unwrap();
    }
    fs.sync().unwrap();
    let blocks = fs.backend().block_ids().len();
    assert!(blocks > 5);
    fs.compact(20).unwrap();
    fs.sync().unwrap();
    let after_compact = fs.backend().block_ids().len();
    assert!(after_compact < blocks);
    fs.purge().unwrap();
    fs.sync().unwrap();
    assert_eq!(fs.backend().block_ids().len(), 1);
    assert_eq!(disk.list(DIR).unwrap().len(), 1);
    let st = fs.state();
    let fs = FileStore::open(disk, DIR, StoreConfig::default(), file_cfg(200)).unwrap();
    assert_eq!(fs.state(), st);
    assert_eq!((st.first_seq, st.last_seq), (31, 30));
}

#[test]
fn oversized_message_gets_its_own_block() {
    let mut fs =
        FileStore::open(MemDisk::new(1), DIR, StoreConfig::default(), file_cfg(100)).unwrap();
    fs.store_msg("a", b"", &[9; 1000], 0).unwrap();
    fs.store_msg("a", b"", &[8; 10], 0).unwrap();
    assert_eq!(fs.load_msg(1).unwrap().payload.len(), 1000);
    assert_eq!(fs.backend().block_ids().len(), 2);
}

#[test]
fn torn_tail_is_cut_and_counted_not_reported_as_corruption() {
    let disk = MemDisk::new(1);
    let mut fs =
        FileStore::open(disk.clone(), DIR, StoreConfig::default(), file_cfg(1 << 20)).unwrap();
    for i in 0..5 {
        fs.store_msg("a", b"", format!("synced {i}").as_bytes(), 0)
            .unwrap();
    }
    fs.sync().unwrap();
    fs.store_msg("a", b"", &[5; 100], 0).unwrap();
    let path = fs.backend().block_path(1);
    drop(fs);
    // Keep half of the unsynced record: a torn write.
    let synced = disk.synced_len(&path).unwrap();
    disk.truncate_file(&path, synced + 50).unwrap();
    let fs = FileStore::open(disk.clone(), DIR, StoreConfig::default(), file_cfg(1 << 20)).unwrap();
    assert_eq!(fs.recovery().torn_bytes, 50);
    assert!(fs.corruption().is_empty());
    assert_eq!((fs.state().msgs, fs.state().last_seq), (5, 5));
    assert_eq!(
        disk.len(&path).unwrap(),
        synced,
        "the tail is cut on disk too"
    );
}

#[test]
fn crash_during_purge_keeps_the_old_state() {
    let disk = MemDisk::new(1);
    let mut fs =
        FileStore::open(disk.clone(), DIR, StoreConfig::default(), file_cfg(1 << 20)).unwrap();
    for _ in 0..5 {
        fs.store_msg("a", b"", b"x", 0).unwrap();
    }
    fs.sync().unwrap();
    let want = fs.state();
    fs.purge().unwrap();
    assert_eq!(
        fs.backend().block_ids(),
        vec![1, 2],
        "purge starts a fresh block"
    );
    drop(fs);
    disk.crash(CrashMode::LoseUnsynced);
    let mut fs =
        FileStore::open(disk.clone(), DIR, StoreConfig::default(), file_cfg(1 << 20)).unwrap();
    assert_eq!(
        fs.state(),
        want,
        "an unsynced purge is undone, never half done"
    );
    assert!(fs.corruption().is_empty());
    assert_eq!(fs.store_msg("a", b"", b"y", 0).unwrap().0, 6);
}

#[test]
fn mem_store_sync_is_immediate() {
    let mut s = mem(StoreConfig::default());
    put(&mut s, "a", "x");
    assert_eq!(s.synced_through(), 0);
    assert_eq!(s.sync().unwrap(), 1);
    assert_eq!(s.synced_through(), 1);
}

/// Zeros after the last record are space the disk layer laid out ahead of the appends
/// (production pre-zeroes blocks so that an fsync writes data only): neither torn nor damage,
/// in the newest block or an older one, and cut so that appends go on from the last record.
#[test]
fn zero_tail_is_preallocated_space_not_damage() {
    let disk = MemDisk::new(1);
    let mut fs = FileStore::open(disk.clone(), DIR, StoreConfig::default(), file_cfg(300)).unwrap();
    for i in 0..30 {
        fs.store_msg("a", b"", format!("m{i}").as_bytes(), 0)
            .unwrap();
    }
    fs.sync().unwrap();
    let ids = fs.backend().block_ids();
    assert!(ids.len() > 2);
    let paths: Vec<String> = ids.iter().map(|id| fs.backend().block_path(*id)).collect();
    let want = fs.state();
    drop(fs);
    let mut d = disk.clone();
    let mut lens = Vec::new();
    for p in &paths {
        lens.push(d.len(p).unwrap());
        d.append(p, &[0; 4096]).unwrap();
        d.sync(p).unwrap();
    }
    let mut fs = FileStore::open(disk.clone(), DIR, StoreConfig::default(), file_cfg(300)).unwrap();
    assert_eq!(fs.state(), want);
    assert!(fs.corruption().is_empty(), "{:?}", fs.corruption());
    assert_eq!(fs.recovery().torn_bytes, 0);
    for (p, len) in paths.iter().zip(&lens) {
        assert_eq!(disk.len(p).unwrap(), *len, "{p}: the zeros are cut");
    }
    assert_eq!(fs.store_msg("a", b"", b"next", 0).unwrap().0, 31);
    fs.sync().unwrap();
    drop(fs);
    let fs = FileStore::open(disk, DIR, StoreConfig::default(), file_cfg(300)).unwrap();
    assert_eq!(fs.load_msg(31).unwrap().payload, &b"next"[..]);
    assert!(fs.corruption().is_empty());
}

/// A torn write over preallocated zeros (part of a record, then zeros) is still a torn tail.
#[test]
fn torn_write_over_zeros_is_a_torn_tail() {
    let disk = MemDisk::new(1);
    let mut fs =
        FileStore::open(disk.clone(), DIR, StoreConfig::default(), file_cfg(1 << 20)).unwrap();
    for i in 0..5 {
        fs.store_msg("a", b"", format!("synced {i}").as_bytes(), 0)
            .unwrap();
    }
    fs.sync().unwrap();
    fs.store_msg("a", b"", &[5; 100], 0).unwrap();
    let path = fs.backend().block_path(1);
    drop(fs);
    let synced = disk.synced_len(&path).unwrap();
    disk.truncate_file(&path, synced + 50).unwrap();
    let mut d = disk.clone();
    d.append(&path, &[0; 1000]).unwrap();
    let fs = FileStore::open(disk.clone(), DIR, StoreConfig::default(), file_cfg(1 << 20)).unwrap();
    assert_eq!(fs.recovery().torn_bytes, 1050);
    assert!(fs.corruption().is_empty());
    assert_eq!(fs.state().msgs, 5);
    assert_eq!(disk.len(&path).unwrap(), synced);
}
