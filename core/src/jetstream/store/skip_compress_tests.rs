//! Unit tests of compressed message records and of skipped sequence ranges.

use super::*;

const DIR: &str = "streams/SC";
const HDR: &[u8] = b"NATS/1.0\r\nTrace: abcdefabcdef\r\n\r\n";

fn fcfg(block_size: u64) -> FileStoreConfig {
    FileStoreConfig {
        block_size,
        ..FileStoreConfig::default()
    }
}

fn compressed() -> StoreConfig {
    StoreConfig {
        compress: true,
        ..StoreConfig::default()
    }
}

fn open(disk: &MemDisk, cfg: StoreConfig, block: u64) -> FileStore<MemDisk> {
    FileStore::open(disk.clone(), DIR, cfg, fcfg(block)).unwrap()
}

/// A compressible body of `n` bytes, different for each `i`.
fn body(i: usize, n: usize) -> Vec<u8> {
    format!("order {i} status shipped; ")
        .bytes()
        .cycle()
        .take(n)
        .collect()
}

fn fill(s: &mut dyn StreamStore, n: usize) {
    for i in 0..n {
        let hdr = if i % 2 == 0 { HDR } else { b"" };
        s.store_msg(&format!("o.{}", i % 3), hdr, &body(i, 600), i as u64)
            .unwrap();
    }
}

#[test]
fn compressed_records_save_disk_and_keep_uncompressed_accounting() {
    let plain_disk = MemDisk::new(1);
    let mut plain = open(&plain_disk, StoreConfig::default(), DEFAULT_BLOCK_SIZE);
    let disk = MemDisk::new(1);
    let mut fs = open(&disk, compressed(), DEFAULT_BLOCK_SIZE);
    let mut mem = MemStore::new(compressed());
    for s in [&mut plain as &mut dyn StreamStore, &mut fs, &mut mem] {
        fill(s, 100);
        s.sync().unwrap();
    }
    // Go accounts the uncompressed message size whatever the disk holds.
    assert_eq!(fs.state(), plain.state());
    // The memory store counts by its own formula (Go: memStoreMsgSize); all else agrees.
    assert_eq!(
        fs.state(),
        StreamState {
            bytes: fs.state().bytes,
            ..mem.state()
        }
    );
    let (small, big) = (fs.backend().disk_bytes(), plain.backend().disk_bytes());
    assert!(small * 4 < big, "compressed {small} vs plain {big}");
    for seq in 1..=100 {
        assert_eq!(fs.load_msg(seq).unwrap(), plain.load_msg(seq).unwrap());
    }
    // Power off and reopen: the index is rebuilt without inflating anything, and agrees.
    let want = fs.state();
    drop(fs);
    disk.crash(CrashMode::Torn);
    let fs = open(&disk, compressed(), DEFAULT_BLOCK_SIZE);
    assert_eq!(fs.state(), want);
    assert!(fs.corruption().is_empty());
    for seq in 1..=100 {
        assert_eq!(fs.load_msg(seq).unwrap(), mem.load_msg(seq).unwrap());
    }
}

#[test]
fn every_bit_flip_in_a_compressed_block_is_reported_never_returned() {
    let disk = MemDisk::new(3);
    let mut fs = open(&disk, compressed(), DEFAULT_BLOCK_SIZE);
    fill(&mut fs, 3);
    fs.sync().unwrap();
    let want: Vec<StoredMsg> = (1..=3).map(|s| fs.load_msg(s).unwrap()).collect();
    let path = fs.backend().block_path(1);
    let bits = disk.len(&path).unwrap() * 8;
    drop(fs);
    let mut checked = 0;
    for bit in 0..bits {
        checked += 1;
        disk.flip_bit(&path, bit).unwrap();
        let fs = open(&disk, compressed(), DEFAULT_BLOCK_SIZE);
        let st = fs.state();
        assert!(
            st.corrupt_records + st.lost_msgs > 0 || fs.recovery().torn_bytes > 0,
            "bit {bit}: not detected"
        );
        for m in &want {
            match fs.load_msg(m.seq) {
                Ok(got) => assert_eq!(&got, m, "bit {bit}: seq {} changed", m.seq),
                Err(e) => assert!(
                    matches!(e, StoreError::Corrupt { .. } | StoreError::NotFound),
                    "bit {bit}: seq {}: {e:?}",
                    m.seq
                ),
            }
        }
        drop(fs);
        // Recovery may have rewritten the block (a restarted header): start over then.
        if disk.len(&path).unwrap() * 8 != bits {
            break;
        }
        disk.flip_bit(&path, bit).unwrap();
    }
    // Only the final sync mark may end the sweep early (a torn tail is rewritten).
    assert!(checked + 8 * 36 >= bits, "{checked} of {bits} bits");
}

#[test]
fn compression_change_applies_from_the_next_block() {
    let disk = MemDisk::new(5);
    let mut fs = open(&disk, StoreConfig::default(), 4096);
    fill(&mut fs, 3);
    assert!(!fs.backend().compressing());
    fs.update_config(compressed()).unwrap();
    // The newest block keeps its form, as nats-server keeps an open block's.
    assert!(!fs.backend().compressing());
    let blocks = fs.backend().block_ids().len();
    let mut n = 3;
    while fs.backend().block_ids().len() == blocks {
        fill(&mut fs, 1);
        n += 1;
    }
    assert!(fs.backend().compressing());
    fs.update_config(StoreConfig::default()).unwrap();
    fill(&mut fs, 1);
    let want: Vec<StoredMsg> = (1..=n + 1).map(|s| fs.load_msg(s).unwrap()).collect();
    fs.sync().unwrap();
    drop(fs);
    let fs = open(&disk, StoreConfig::default(), 4096);
    let got: Vec<StoredMsg> = (1..=n + 1).map(|s| fs.load_msg(s).unwrap()).collect();
    assert_eq!(got, want);
    assert!(fs.corruption().is_empty());
}

#[test]
fn skip_msgs_is_one_step_however_many() {
    const N: u64 = 10_000_000;
    let disk = MemDisk::new(9);
    let mut fs = open(&disk, StoreConfig::default(), 4096);
    let mut mem = MemStore::new(StoreConfig::default());
    for s in [&mut fs as &mut dyn StreamStore, &mut mem] {
        for _ in 0..3 {
            s.store_msg("a", b"", b"x", 1).unwrap();
        }
        assert_eq!(s.skip_msgs(5, N, 2), Err(StoreError::SequenceMismatch));
        s.skip_msgs(4, 0, 2).unwrap();
        s.skip_msgs(4, N, 2).unwrap();
        let st = s.state();
        assert_eq!(
            (
                st.msgs,
                st.first_seq,
                st.last_seq,
                st.last_ts,
                st.num_deleted
            ),
            (3, 1, N + 3, 2, N)
        );
        assert_eq!(s.load_msg(4), Err(StoreError::NotFound));
        assert_eq!(s.load_msg(N + 3), Err(StoreError::NotFound));
        assert_eq!(s.load_next_msg("", 4), Err(StoreError::Eof));
        assert_eq!(s.store_msg("a", b"", b"y", 3).unwrap(), (N + 4, 3));
        assert_eq!(s.purge_ex("", 0, 4).unwrap(), 3);
        assert_eq!(s.state().num_deleted, 0);
        assert_eq!(s.state().first_seq, N + 4);
    }
    // One record on disk, not ten million.
    assert!(disk.used() < 4096, "{} bytes", disk.used());
    let want = fs.state();
    fs.sync().unwrap();
    drop(fs);
    disk.crash(CrashMode::Torn);
    let fs = open(&disk, StoreConfig::default(), 4096);
    assert_eq!(fs.state(), want);
    assert!(fs.corruption().is_empty(), "{:?}", fs.corruption());
}

#[test]
fn skips_survive_reopen_as_deleted_not_lost() {
    let disk = MemDisk::new(11);
    let mut fs = open(&disk, StoreConfig::default(), 256);
    fs.store_msg("a", b"", b"1", 1).unwrap();
    fs.skip_msgs(2, 500, 5).unwrap();
    fs.store_msg("a", b"", b"2", 6).unwrap();
    fs.sync().unwrap();
    // Unsynced: a power loss takes the skip back, like any unsynced write.
    fs.skip_msgs(503, 1000, 7).unwrap();
    let want = fs.state();
    drop(fs);
    disk.crash(CrashMode::LoseUnsynced);
    let mut fs = open(&disk, StoreConfig::default(), 256);
    let st = fs.state();
    assert_eq!((st.msgs, st.last_seq, st.last_ts), (2, 502, 6));
    assert_eq!(
        (st.num_deleted, st.lost_msgs, st.corrupt_records),
        (500, 0, 0)
    );
    fs.skip_msgs(503, 1000, 7).unwrap();
    assert_eq!(fs.state(), want);
    fs.sync().unwrap();
    drop(fs);
    let fs = open(&disk, StoreConfig::default(), 256);
    assert_eq!(fs.state(), want);
    assert_eq!(fs.load_msg(502).unwrap().payload, "2");
}

#[test]
fn a_damaged_skip_record_is_reported() {
    let disk = MemDisk::new(13);
    let mut fs = open(&disk, StoreConfig::default(), DEFAULT_BLOCK_SIZE);
    fs.store_msg("a", b"", b"1", 1).unwrap();
    fs.sync().unwrap();
    let path = fs.backend().block_path(1);
    let at = disk.len(&path).unwrap();
    fs.skip_msgs(2, 100, 2).unwrap();
    fs.store_msg("a", b"", b"2", 3).unwrap();
    fs.sync().unwrap();
    drop(fs);
    // Bit 0 of the skip's `seq` field.
    disk.flip_bit(&path, (at + 8) * 8).unwrap();
    let fs = open(&disk, StoreConfig::default(), DEFAULT_BLOCK_SIZE);
    let st = fs.state();
    assert!(st.corrupt_records > 0 && st.lost_msgs >= 100, "{st:?}");
    assert!(matches!(fs.load_msg(50), Err(StoreError::Corrupt { .. })));
    assert_eq!(fs.load_msg(102).unwrap().payload, "2");
}

/// Found by the model test: a new block's header must carry the stream's last time, not the
/// time of the message that rolled it. Here that message is torn off and the older block (only
/// a floor and skips) is deleted as dead, so the header alone remembers `last_ts`.
#[test]
fn rolled_header_carries_the_last_time_before_the_new_message() {
    let disk = MemDisk::new(15);
    let mut fs = open(&disk, StoreConfig::default(), 200);
    fs.store_msg("a", b"", b"", 1).unwrap();
    fs.purge().unwrap();
    fs.sync().unwrap();
    fs.skip_msgs(2, 1, 2).unwrap();
    fs.skip_msgs(3, 1, 3).unwrap();
    let blocks = fs.backend().block_ids();
    fs.store_msg("a", b"", &[7; 28], 4).unwrap();
    let newest = *fs.backend().block_ids().last().unwrap();
    assert!(!blocks.contains(&newest), "the message rolled a block");
    let path = fs.backend().block_path(newest);
    drop(fs);
    disk.truncate_file(&path, record::HEADER_LEN as u64)
        .unwrap();
    let mut fs = open(&disk, StoreConfig::default(), 200);
    assert_eq!((fs.state().last_seq, fs.state().last_ts), (3, 3));
    fs.sync().unwrap();
    drop(fs);
    let fs = open(&disk, StoreConfig::default(), 200);
    assert_eq!((fs.state().last_seq, fs.state().last_ts), (3, 3));
    assert!(fs.corruption().is_empty(), "{:?}", fs.corruption());
}
