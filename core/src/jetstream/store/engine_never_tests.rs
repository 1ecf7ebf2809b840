//! `Nats-TTL: never` against the store's limits: `max_age` leaves such a message alone,
//! the count and size limits do not (Go: expireMsgs; ADR-43).

use std::time::Duration;

use super::super::*;

const SEC: u64 = 1_000_000_000;
const NEVER: &[u8] = b"NATS/1.0\r\nNats-TTL: never\r\n\r\n";
const DIR: &str = "streams/KV";

fn aged(secs: u64) -> StoreConfig {
    StoreConfig {
        max_age: Some(Duration::from_secs(secs)),
        ..StoreConfig::default()
    }
}

fn file(cfg: StoreConfig, disk: MemDisk) -> FileStore<MemDisk> {
    let fc = FileStoreConfig {
        block_size: 256,
        ..FileStoreConfig::default()
    };
    FileStore::open(disk, DIR, cfg, fc).unwrap()
}

fn seqs(s: &dyn StreamStore) -> Vec<u64> {
    let mut out = Vec::new();
    let mut next = 0;
    while let Ok(m) = s.load_next_msg("", next) {
        out.push(m.seq);
        next = m.seq + 1;
    }
    out
}

/// Stores: 1 never, 2 plain, 3 never, 4 `Nats-TTL: 1h` (which still ages), 5 plain with
/// "never" only in its body, all at t=1s; then 6 plain at t=20s.
fn fill(s: &mut dyn StreamStore) {
    s.store_msg("kv.a", NEVER, b"", SEC).unwrap();
    s.store_msg("kv.b", b"", b"x", SEC).unwrap();
    s.store_msg("kv.c", NEVER, b"", SEC).unwrap();
    s.store_msg("kv.d", b"NATS/1.0\r\nNats-TTL: 1h\r\n\r\n", b"", SEC)
        .unwrap();
    s.store_msg("kv.e", b"", b"never", SEC).unwrap();
    s.store_msg("kv.f", b"", b"", 20 * SEC).unwrap();
}

fn check_max_age(s: &mut dyn StreamStore) {
    fill(s);
    assert_eq!(s.next_expiry(), Some(11 * SEC));
    assert_eq!(s.expire(11 * SEC).unwrap(), 3);
    assert_eq!(seqs(s), vec![1, 3, 6]);
    // The exempt messages at the front do not keep the timer in the past.
    assert_eq!(s.next_expiry(), Some(30 * SEC));
    assert_eq!(s.expire(29 * SEC).unwrap(), 0);
    assert_eq!(s.expire(30 * SEC).unwrap(), 1);
    assert_eq!(seqs(s), vec![1, 3]);
    assert_eq!(s.next_expiry(), None);
    assert_eq!(s.expire(1_000 * SEC).unwrap(), 0);
    let st = s.state();
    assert_eq!((st.msgs, st.first_seq, st.last_seq), (2, 1, 6));
}

#[test]
fn max_age_skips_never_in_memory() {
    check_max_age(&mut MemStore::new(aged(10)));
}

#[test]
fn max_age_skips_never_on_file() {
    check_max_age(&mut file(aged(10), MemDisk::new(3)));
}

#[test]
fn recovered_never_messages_stay_exempt() {
    let mut fs = file(aged(10), MemDisk::new(5));
    fill(&mut fs);
    fs.sync().unwrap();
    // Reopened, the store only learns which ones are exempt by reading them.
    let mut again = file(aged(10), fs.into_disk());
    assert_eq!(again.expire(11 * SEC).unwrap(), 3);
    assert_eq!(seqs(&again), vec![1, 3, 6]);
    again.store_msg("kv.g", NEVER, b"", 25 * SEC).unwrap();
    assert_eq!(again.expire(100 * SEC).unwrap(), 1);
    assert_eq!(seqs(&again), vec![1, 3, 7]);
    again.sync().unwrap();
    let third = file(aged(10), again.into_disk());
    assert_eq!(seqs(&third), vec![1, 3, 7]);
}

#[test]
fn count_and_size_limits_still_remove_never() {
    let mut s = MemStore::new(StoreConfig {
        max_msgs: Some(2),
        ..aged(10)
    });
    for i in 1..=3 {
        s.store_msg("kv.a", NEVER, b"", i * SEC).unwrap();
    }
    assert_eq!(seqs(&s), vec![2, 3]);
    let mut s = MemStore::new(StoreConfig {
        max_msgs_per_subject: Some(1),
        ..aged(10)
    });
    s.store_msg("kv.a", NEVER, b"", SEC).unwrap();
    s.store_msg("kv.a", NEVER, b"", SEC).unwrap();
    assert_eq!(seqs(&s), vec![2]);
    let one = msg_size("kv.a", NEVER, b"");
    let mut s = MemStore::new(StoreConfig {
        max_bytes: Some(one),
        ..aged(10)
    });
    s.store_msg("kv.a", NEVER, b"", SEC).unwrap();
    s.store_msg("kv.b", b"", b"", SEC).unwrap();
    assert_eq!(seqs(&s), vec![2]);
}

#[test]
fn purged_exempt_messages_do_not_confuse_the_floor() {
    let mut s = MemStore::new(aged(10));
    s.store_msg("kv.a", NEVER, b"", SEC).unwrap();
    assert_eq!(s.expire(50 * SEC).unwrap(), 0);
    s.purge().unwrap();
    s.store_msg("kv.b", b"", b"", 60 * SEC).unwrap();
    assert_eq!(s.next_expiry(), Some(70 * SEC));
    assert_eq!(s.expire(70 * SEC).unwrap(), 1);
    assert_eq!(s.state().msgs, 0);
}
