//! Replicated streams: a leader's entries applied to fresh replicas (file stores on `MemDisk`)
//! give identical stores and consumer state; restarts from a snapshot, with and without a
//! crash, end identical too; divergence and gaps are reported; the entry encoding is
//! versioned and total.

use serde_json::json;

use super::codec::VERSION;
use super::*;
use crate::jetstream::api::StreamConfig;
use crate::jetstream::consumer::{self, AckKind};
use crate::jetstream::store::{
    CrashMode, FileStore, FileStoreConfig, MemDisk, StreamStore, SyncPolicy,
};
use crate::jetstream::stream::{check_config, store_config};

pub(super) const T0: u64 = 1_700_000_000_000_000_000;
pub(super) const SEC: u64 = 1_000_000_000;

pub(super) fn stream_cfg() -> StreamConfig {
    check_config(
        serde_json::from_value(json!({
            "name": "S",
            "subjects": ["s.>"],
            "allow_rollup_hdrs": true,
            "allow_msg_ttl": true,
            "max_msgs_per_subject": 4,
        }))
        .unwrap(),
    )
    .unwrap()
}

pub(super) fn open(disk: &MemDisk, cfg: &StreamConfig) -> Box<dyn StreamStore + Send> {
    let f = FileStoreConfig {
        block_size: 2048,
        sync: SyncPolicy::Always,
    };
    Box::new(FileStore::open(disk.clone(), "streams/S", store_config(cfg), f).unwrap())
}

pub(super) fn replica(disk: &MemDisk) -> ReplicatedStream {
    let c = stream_cfg();
    ReplicatedStream::new(c.clone(), open(disk, &c), T0)
}

fn hdr(lines: &[(&str, &str)]) -> Vec<u8> {
    let mut h = "NATS/1.0\r\n".to_owned();
    for (k, v) in lines {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

pub(super) type Msg = (u64, u64, String, Vec<u8>, Vec<u8>);

/// Everything two replicas must agree on: the store's accounting and every message, and each
/// consumer's meta and delivery state.
pub(super) fn contents(r: &ReplicatedStream) -> (String, Vec<Msg>, Vec<String>) {
    let store = r.stream.store.as_ref();
    let mut msgs = Vec::new();
    let mut seq = 0;
    while let Ok(m) = store.load_next_msg("", seq) {
        msgs.push((
            m.seq,
            m.ts,
            m.subject,
            m.headers.to_vec(),
            m.payload.to_vec(),
        ));
        seq = m.seq + 1;
    }
    // Pending entries of messages removed since are dropped by a replica when the next state
    // arrives, while the leader's live consumer keeps them until it looks again: compare
    // what concerns stored messages.
    let stored = |seq: u64| store.load_msg(seq).is_ok();
    let consumers = r
        .consumers
        .values()
        .map(|c| {
            let mut s = c.delivery_state();
            s.pending.retain(|p| stored(p.0));
            s.deliveries.retain(|d| stored(d.0));
            s.redeliver.retain(|q| stored(*q));
            format!("{:?} {s:?}", c.meta())
        })
        .collect();
    (
        format!("{:?} {:?}", store.state(), r.stream.config),
        msgs,
        consumers,
    )
}

/// A leader's run through every kind of entry; returns the leader and the log it proposed.
pub(super) fn leader_run() -> (ReplicatedStream, Vec<StreamEntry>) {
    let mut l = replica(&MemDisk::new(1));
    let mut log = Vec::new();
    let mut now = T0;
    let publish = |l: &mut ReplicatedStream,
                   log: &mut Vec<StreamEntry>,
                   now: u64,
                   subj: &str,
                   h: &[u8],
                   body: &str| {
        let (stored, e) = l.leader_publish(subj, h, body.as_bytes(), now).unwrap();
        assert_eq!(e.is_empty(), stored.duplicate);
        log.extend(e);
        stored.seq
    };
    let ccfg = consumer::check_config(
        serde_json::from_value(json!({
            "durable_name": "D",
            "deliver_subject": "dlv.D",
            "ack_policy": "explicit",
            "filter_subject": "s.a",
        }))
        .unwrap(),
        &["s.>".to_owned()],
    )
    .unwrap();
    log.push(l.leader_create_consumer("D", ccfg, now));
    for i in 0..12 {
        now += SEC;
        let subj = ["s.a", "s.b", "s.c"][i % 3];
        let id = format!("id-{}", i / 2); // every id twice: the second is a duplicate
        publish(
            &mut l,
            &mut log,
            now,
            subj,
            &hdr(&[("Nats-Msg-Id", &id)]),
            &format!("m{i}"),
        );
    }
    // The consumer delivers and some acks come back; its state is replicated.
    let c = l.consumers.get_mut("D").unwrap();
    c.set_active(true, now);
    let delivered = c.pump(l.stream.store.as_ref(), now);
    assert!(!delivered.is_empty());
    let first = delivered[0].0.reply.clone().unwrap();
    let _ = first;
    let seqs: Vec<u64> = l
        .stream
        .store
        .subjects_totals("s.a")
        .keys()
        .filter_map(|s| l.stream.store.load_last_msg(s).ok().map(|m| m.seq))
        .collect();
    let c = l.consumers.get_mut("D").unwrap();
    c.on_ack(seqs[0], AckKind::Ack, now);
    log.push(l.consumer_state_entry("D").unwrap());
    // A rollup, a TTL that runs out, a delete, a purge, a config change.
    now += SEC;
    publish(
        &mut l,
        &mut log,
        now,
        "s.b",
        &hdr(&[("Nats-Rollup", "sub")]),
        "rolled",
    );
    now += SEC;
    publish(
        &mut l,
        &mut log,
        now,
        "s.c",
        &hdr(&[("Nats-TTL", "1s")]),
        "short-lived",
    );
    now += 3 * SEC;
    let (a, e) = l.leader_expire(now);
    assert_eq!(a, Applied::Done);
    log.push(e);
    let first_seq = l.stream.store.state().first_seq;
    let (a, e) = l.leader_delete(first_seq);
    assert_eq!(a, Applied::Done);
    log.push(e);
    let (a, e) = l.leader_purge("s.c", 0, 1);
    assert_eq!(a, Applied::Done);
    log.push(e);
    let mut c2 = l.stream.config.clone();
    c2.max_msgs = 10;
    let (a, e) = l.leader_config(c2);
    assert_eq!(a, Applied::Done);
    log.push(e);
    for i in 0..5 {
        now += SEC;
        let h = hdr(&[("Nats-Msg-Id", &format!("late-{i}"))]);
        publish(&mut l, &mut log, now, "s.a", &h, &format!("late{i}"));
    }
    let c = l.consumers.get_mut("D").unwrap();
    let more = c.pump(l.stream.store.as_ref(), now);
    assert!(!more.is_empty());
    log.push(l.consumer_state_entry("D").unwrap());
    // A purge below a sequence (a compact), then a whole purge of one subject.
    let cut = l.stream.store.state().first_seq + 2;
    let (a, e) = l.leader_purge("", cut, 0);
    assert_eq!(a, Applied::Done);
    log.push(e);
    let (a, e) = l.leader_purge("s.b", 0, 0);
    assert_eq!(a, Applied::Done);
    log.push(e);
    for i in 0..3 {
        now += SEC;
        publish(
            &mut l,
            &mut log,
            now,
            "s.b",
            b"",
            &format!("after purge {i}"),
        );
    }
    (l, log)
}

/// Applies `log` (through its byte form) from index `from`; every entry must apply.
pub(super) fn follow(r: &mut ReplicatedStream, log: &[StreamEntry], from: usize) {
    for (i, e) in log.iter().enumerate().skip(from) {
        let e = StreamEntry::decode(&e.encode()).unwrap();
        let a = r.apply(i as u64 + 1, &e);
        assert!(
            matches!(a, Applied::Done | Applied::AlreadyHad),
            "entry {} {e:?}: {a:?}",
            i + 1
        );
    }
}

#[test]
fn followers_that_apply_the_leaders_entries_are_identical_to_it() {
    let (leader, log) = leader_run();
    let (mut b, mut c) = (replica(&MemDisk::new(2)), replica(&MemDisk::new(3)));
    // Step by step, the two followers agree after every entry.
    for i in 0..log.len() {
        follow(&mut b, &log[..=i], i);
        follow(&mut c, &log[..=i], i);
        assert_eq!(contents(&b), contents(&c), "after entry {}", i + 1);
    }
    let want = contents(&leader);
    assert!(want.1.len() >= 6, "{want:?}");
    assert!(want.1.iter().any(|m| !m.3.is_empty()), "headers kept");
    assert_eq!(want.2.len(), 1);
    assert_eq!(contents(&b), want);
    assert_eq!(contents(&c), want);
    assert_eq!(b.snapshot(), c.snapshot());
    assert_eq!(b.applied(), log.len() as u64);
}

#[test]
fn the_leader_applying_its_own_committed_entries_changes_nothing() {
    let (mut leader, log) = leader_run();
    leader.set_leading(true);
    let before = contents(&leader);
    let live = leader.consumers["D"].delivery_state();
    follow(&mut leader, &log, 0);
    assert_eq!(contents(&leader), before);
    // Its live consumer is not taken back to the states it proposed earlier.
    assert_eq!(leader.consumers["D"].delivery_state(), live);
}

#[test]
fn a_leader_ignores_its_own_older_consumer_state_a_follower_takes_it() {
    let (mut leader, log) = leader_run();
    let state = log
        .iter()
        .rfind(|e| matches!(e, StreamEntry::ConsumerState { .. }))
        .unwrap()
        .clone();
    // The leader delivers more after proposing that state.
    let now = T0 + 100 * SEC;
    let (_, more) = leader.leader_publish("s.a", b"", b"more", now).unwrap();
    let c = leader.consumers.get_mut("D").unwrap();
    assert_eq!(c.pump(leader.stream.store.as_ref(), now).len(), 1);
    let live = c.delivery_state();
    leader.set_leading(true);
    assert_eq!(leader.apply(1000, &state), Applied::AlreadyHad);
    assert_eq!(leader.consumers["D"].delivery_state(), live);
    assert_eq!(more.len(), 1);
    // A follower takes it, and so does the same replica once it no longer leads.
    let mut f = replica(&MemDisk::new(40));
    follow(&mut f, &log, 0);
    assert_eq!(f.apply(1000, &state), Applied::Done);
    leader.set_leading(false);
    assert_eq!(leader.apply(1001, &state), Applied::Done);
    assert_ne!(leader.consumers["D"].delivery_state(), live);
}

#[test]
fn a_replica_restarted_from_a_snapshot_re_applies_and_ends_identical() {
    let (leader, log) = leader_run();
    let half = log.len() / 2;
    let disk = MemDisk::new(4);
    let mut r = replica(&disk);
    follow(&mut r, &log, 0);
    let mut early = replica(&MemDisk::new(5));
    follow(&mut early, &log[..half], 0);
    let snap = early.snapshot();
    // Same store (it kept everything), older snapshot: the log from the start is replayed.
    drop(r);
    let (mut r, behind) = ReplicatedStream::restore(&snap, open(&disk, &stream_cfg())).unwrap();
    assert_eq!(behind, None);
    assert_eq!(r.applied(), half as u64);
    for (i, e) in log.iter().enumerate() {
        let a = r.apply(i as u64 + 1, e);
        if i < half {
            assert_eq!(a, Applied::Replay);
        } else {
            assert!(matches!(a, Applied::Done | Applied::AlreadyHad), "{a:?}");
        }
    }
    assert_eq!(contents(&r), contents(&leader));
}

#[test]
fn a_replica_that_crashed_after_its_snapshot_catches_up_from_the_log() {
    let (leader, log) = leader_run();
    let half = log.len() / 2;
    let disk = MemDisk::new(6);
    let mut r = replica(&disk);
    follow(&mut r, &log[..half], 0);
    // The group commit synced the store before the snapshot was taken.
    r.stream.store.sync().unwrap();
    let snap = r.snapshot();
    follow(&mut r, &log, half);
    drop(r);
    disk.crash(CrashMode::LoseUnsynced);
    let (mut r, behind) = ReplicatedStream::restore(&snap, open(&disk, &stream_cfg())).unwrap();
    assert_eq!(behind, None);
    follow(&mut r, &log, half);
    assert_eq!(contents(&r), contents(&leader));
}

#[test]
fn a_store_that_lost_what_its_snapshot_saw_is_reported_behind() {
    let (_, log) = leader_run();
    let disk = MemDisk::new(7);
    let mut r = replica(&disk);
    follow(&mut r, &log[..6], 0);
    let snap = r.snapshot();
    drop(r);
    disk.crash(CrashMode::LoseUnsynced);
    let (r, behind) = ReplicatedStream::restore(&snap, open(&disk, &stream_cfg())).unwrap();
    let (have, want) = behind.expect("the unsynced messages are gone");
    assert!(have < want);
    assert_eq!(r.stream.store.state().last_seq, have);
}

#[test]
fn an_entry_past_the_store_is_behind_and_not_marked_applied() {
    let (_, log) = leader_run();
    let mut r = replica(&MemDisk::new(8));
    let late = log
        .iter()
        .find(|e| matches!(e, StreamEntry::Msg(m) if m.seq > 3))
        .unwrap();
    assert!(matches!(r.apply(1, late), Applied::Behind { have: 0, .. }));
    assert_eq!(r.applied(), 0);
    // The gap filled, the same index applies.
    follow(&mut r, &log, 0);
}

#[test]
fn a_replica_holding_other_data_at_a_sequence_reports_divergence() {
    let (_, log) = leader_run();
    let mut rogue = replica(&MemDisk::new(9));
    // An old leader's write that never reached the others.
    rogue
        .leader_publish("s.a", b"", b"never committed", T0)
        .unwrap();
    let first_msg = log
        .iter()
        .position(|e| matches!(e, StreamEntry::Msg(_)))
        .unwrap();
    follow(&mut rogue, &log[..first_msg], 0);
    let a = rogue.apply(first_msg as u64 + 1, &log[first_msg]);
    assert_eq!(a, Applied::Diverged { seq: 1 });
}

#[test]
fn consumer_state_for_an_unknown_consumer_fails_without_panicking() {
    let mut r = replica(&MemDisk::new(10));
    let a = r.apply(
        1,
        &StreamEntry::ConsumerState {
            name: "nope".into(),
            state: vec![1, 2, 3],
        },
    );
    assert!(matches!(a, Applied::Failed(e) if e.err_code == 10014));
}

fn every_entry() -> Vec<StreamEntry> {
    let (_, mut log) = leader_run();
    log.push(StreamEntry::Batch(vec![
        MsgRecord {
            seq: 100,
            ts: T0,
            subject: "s.x".into(),
            headers: bytes::Bytes::new(),
            payload: bytes::Bytes::from_static(b"1"),
            rollup: Some("all".into()),
            sourced: true,
        };
        2
    ]));
    log.push(StreamEntry::Skip {
        last_seq: 9,
        seq: 10,
        count: 5,
        ts: T0,
    });
    log.push(StreamEntry::ConsumerDelete { name: "D".into() });
    log
}

#[test]
fn entries_round_trip_and_are_versioned() {
    for e in every_entry() {
        let b = e.encode();
        assert_eq!((b[0], b[1]), (b'S', VERSION));
        assert_eq!(StreamEntry::decode(&b).unwrap(), e);
    }
    let mut b = every_entry()[1].encode();
    b[1] = VERSION + 1;
    assert_eq!(
        StreamEntry::decode(&b),
        Err(DecodeError::UnknownVersion(VERSION + 1))
    );
    assert!(matches!(
        StreamEntry::decode(b"S\x01\xee"),
        Err(DecodeError::Malformed(_))
    ));
    let meta = MetaEntry::RemoveServer {
        peer: "p".into(),
        request: None,
    }
    .encode();
    assert_eq!(
        StreamEntry::decode(&meta),
        Err(DecodeError::WrongKind(b'M'))
    );
}

#[test]
fn damaged_entries_are_errors_never_panics() {
    for e in every_entry() {
        let b = e.encode();
        for cut in 0..b.len() {
            assert!(
                StreamEntry::decode(&b[..cut]).is_err(),
                "{e:?} cut at {cut}"
            );
        }
        let mut long = b.clone();
        long.push(0);
        assert!(StreamEntry::decode(&long).is_err());
        // Every single-byte change decodes or fails; it never panics.
        for i in 0..b.len().min(64) {
            let mut x = b.clone();
            x[i] ^= 0xff;
            let _ = StreamEntry::decode(&x);
        }
    }
    // A huge batch count is refused before anything is allocated for it.
    let mut b = vec![b'S', VERSION, 2];
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(StreamEntry::decode(&b).is_err());
    // A varint that never ends.
    assert!(StreamEntry::decode(&[
        b'S', VERSION, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
    ])
    .is_err());
}

#[test]
fn snapshots_are_versioned_and_refused_when_unknown() {
    let (leader, _) = leader_run();
    let mut s = leader.snapshot();
    assert_eq!((s[0], s[1]), (b's', VERSION));
    s[1] = 9;
    let err = ReplicatedStream::restore(&s, open(&MemDisk::new(11), &stream_cfg())).unwrap_err();
    assert_eq!(err, DecodeError::UnknownVersion(9));
}

#[test]
fn a_refused_or_duplicate_publish_proposes_nothing() {
    let mut l = replica(&MemDisk::new(12));
    let h = hdr(&[("Nats-Expected-Last-Sequence", "7")]);
    let e = l.leader_publish("s.a", &h, b"x", T0).unwrap_err();
    assert_eq!(e.err_code, 10071);
    let h = hdr(&[("Nats-Msg-Id", "once")]);
    let (_, first) = l.leader_publish("s.a", &h, b"x", T0).unwrap();
    assert_eq!(first.len(), 1);
    let (dup, again) = l.leader_publish("s.a", &h, b"x", T0 + SEC).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.seq, 1);
    assert!(again.is_empty());
}

#[test]
fn a_replayed_config_cannot_trim_what_a_later_config_allowed() {
    let disk = MemDisk::new(13);
    let mut l = replica(&MemDisk::new(14));
    let mut log = Vec::new();
    let mut r = replica(&disk);
    for i in 0..3 {
        let (_, e) = l.leader_publish("s.x", b"", b"a", T0 + i).unwrap();
        log.extend(e);
    }
    follow(&mut r, &log, 0);
    r.stream.store.sync().unwrap();
    let snap = r.snapshot();
    let mut low = l.stream.config.clone();
    low.max_msgs = 2;
    log.push(l.leader_config(low).1);
    let mut high = l.stream.config.clone();
    high.max_msgs = 100;
    log.push(l.leader_config(high).1);
    for i in 0..5 {
        let subj = format!("s.y{i}");
        let (_, e) = l.leader_publish(&subj, b"", b"b", T0 + 10 + i).unwrap();
        log.extend(e);
    }
    follow(&mut r, &log, 3);
    r.stream.store.sync().unwrap();
    assert_eq!(contents(&r), contents(&l));
    drop(r);
    // Restart from the older snapshot: the store kept every message.
    let (mut r, _) = ReplicatedStream::restore(&snap, open(&disk, &stream_cfg())).unwrap();
    follow(&mut r, &log, 3);
    assert_eq!(r.stream.store.state().msgs, 7);
    assert_eq!(r.stream.config.max_msgs, 100);
    assert_eq!(contents(&r), contents(&l));
}

#[test]
fn an_atomic_batch_travels_as_one_entry_and_a_mirror_gap_as_a_skip() {
    let mut c = stream_cfg();
    c.allow_atomic = true;
    let c = check_config(c).unwrap();
    let mut l = ReplicatedStream::new(c.clone(), open(&MemDisk::new(20), &c), T0);
    let mut f = ReplicatedStream::new(c.clone(), open(&MemDisk::new(21), &c), T0);
    let mut log = l.leader_publish("s.a", b"", b"before", T0).unwrap().1;
    let before = l.stream.store.state().last_seq;
    for n in 1..=3 {
        let mut lines = vec![("Nats-Batch-Id", "b1"), ("Nats-Batch-Sequence", "")];
        let seq = n.to_string();
        lines[1].1 = &seq;
        if n == 3 {
            lines.push(("Nats-Batch-Commit", "1"));
        }
        let out = l
            .stream
            .publish_batched("s.b", &hdr(&lines), b"x", T0 + n, 0);
        assert!(
            matches!(
                (&out, n),
                (crate::jetstream::stream::Batched::Staged, 1 | 2)
                    | (crate::jetstream::stream::Batched::Committed { .. }, 3)
            ),
            "{out:?}"
        );
    }
    let batch = l.leader_stored(before, false);
    assert!(
        matches!(&batch[..], [StreamEntry::Batch(ms)] if ms.len() == 3),
        "{batch:?}"
    );
    log.extend(batch);
    // A mirrored message past a gap in its origin.
    let before = l.stream.store.state().last_seq;
    let m = crate::jetstream::store::StoredMsg {
        seq: before + 4,
        ts: T0 + 100,
        subject: "s.c".into(),
        headers: bytes::Bytes::new(),
        payload: bytes::Bytes::from_static(b"far"),
    };
    l.stream.store_mirrored(&m, "s.c").unwrap();
    let gap = l.leader_stored(before, true);
    assert!(
        matches!(&gap[..], [StreamEntry::Skip { count: 3, .. }, StreamEntry::Msg(r)] if r.sourced),
        "{gap:?}"
    );
    log.extend(gap);
    follow(&mut f, &log, 0);
    assert_eq!(contents(&f), contents(&l));
    assert_eq!(f.stream.store.state().last_seq, before + 4);

    // A replica whose store kept only part of the batch (a crash mid-write) completes it.
    let mut p = ReplicatedStream::new(c.clone(), open(&MemDisk::new(22), &c), T0);
    let StreamEntry::Batch(ms) = &log[1] else {
        panic!("{:?}", log[1]);
    };
    assert_eq!(p.apply(1, &log[0]), Applied::Done);
    assert_eq!(
        p.apply(2, &StreamEntry::Batch(ms[..2].to_vec())),
        Applied::Done
    );
    assert_eq!(p.apply(3, &log[1]), Applied::Done);
    assert_eq!(p.apply(3, &log[1]), Applied::Replay);
    assert_eq!(p.apply(5, &log[1]), Applied::AlreadyHad);
    for (i, e) in log.iter().enumerate().skip(2) {
        assert_eq!(p.apply(i as u64 + 4, e), Applied::Done);
    }
    assert_eq!(contents(&p), contents(&l));
}

fn retention_stream(retention: &str, seed: u64) -> ReplicatedStream {
    let mut c = stream_cfg();
    c.retention = retention.into();
    let c = check_config(c).unwrap();
    ReplicatedStream::new(c.clone(), open(&MemDisk::new(seed), &c), T0)
}

fn push_consumer(l: &mut ReplicatedStream, name: &str, filter: &str) -> StreamEntry {
    let cfg = consumer::check_config(
        serde_json::from_value(json!({
            "durable_name": name,
            "deliver_subject": format!("dlv.{name}"),
            "ack_policy": "explicit",
            "filter_subject": filter,
        }))
        .unwrap(),
        &["s.>".to_owned()],
    )
    .unwrap();
    l.leader_create_consumer(name, cfg, T0)
}

#[test]
fn work_queue_acks_remove_the_same_messages_on_every_replica() {
    let mut l = retention_stream("workqueue", 30);
    let mut f = retention_stream("workqueue", 31);
    let mut log = vec![push_consumer(&mut l, "W", "s.>")];
    for i in 0..6 {
        let subj = format!("s.q{i}");
        let job = format!("job{i}");
        log.extend(
            l.leader_publish(&subj, b"", job.as_bytes(), T0 + i)
                .unwrap()
                .1,
        );
    }
    let c = l.consumers.get_mut("W").unwrap();
    c.set_active(true, T0 + 10);
    let got = c.pump(l.stream.store.as_ref(), T0 + 10);
    assert_eq!(got.len(), 6);
    for seq in [1, 2, 4] {
        c.on_ack(seq, AckKind::Ack, T0 + 11);
    }
    log.push(l.consumer_state_entry("W").unwrap());
    let removals = l.leader_settle();
    assert_eq!(removals.len(), 3);
    log.extend(removals);
    follow(&mut f, &log, 0);
    assert_eq!(contents(&f), contents(&l));
    let left: Vec<u64> = contents(&f).1.iter().map(|m| m.0).collect();
    assert_eq!(left, [3, 5, 6]);
}

#[test]
fn interest_keeps_what_a_consumer_still_wants_and_drops_what_none_matches() {
    let mut l = retention_stream("interest", 32);
    let mut f = retention_stream("interest", 33);
    // Nobody is interested yet: stored and removed at once, on every replica.
    let (_, e) = l.leader_publish("s.a", b"", b"lost", T0).unwrap();
    assert!(matches!(
        &e[..],
        [StreamEntry::Msg(_), StreamEntry::Delete { seq: 1, .. }]
    ));
    let mut log = e;
    log.push(push_consumer(&mut l, "A", "s.>"));
    log.push(push_consumer(&mut l, "B", "s.b"));
    for (i, subj) in ["s.a", "s.b", "s.b"].iter().enumerate() {
        log.extend(
            l.leader_publish(subj, b"", b"x", T0 + 1 + i as u64)
                .unwrap()
                .1,
        );
    }
    for name in ["A", "B"] {
        let c = l.consumers.get_mut(name).unwrap();
        c.set_active(true, T0 + 10);
        assert!(!c.pump(l.stream.store.as_ref(), T0 + 10).is_empty());
    }
    // A acks everything; B acks only seq 3: seq 2 (only A wants it) and 3 go, 4 stays for B.
    for seq in [2, 3, 4] {
        l.consumers
            .get_mut("A")
            .unwrap()
            .on_ack(seq, AckKind::Ack, T0 + 11);
    }
    l.consumers
        .get_mut("B")
        .unwrap()
        .on_ack(3, AckKind::Ack, T0 + 11);
    log.push(l.consumer_state_entry("A").unwrap());
    log.push(l.consumer_state_entry("B").unwrap());
    log.extend(l.leader_settle());
    follow(&mut f, &log, 0);
    assert_eq!(contents(&f), contents(&l));
    let left: Vec<u64> = contents(&f).1.iter().map(|m| m.0).collect();
    assert_eq!(left, [4]);
    // B goes: what only B was holding goes with it, on every replica.
    let from = log.len();
    let gone = l.leader_delete_consumer("B");
    assert!(
        matches!(
            &gone[..],
            [
                StreamEntry::ConsumerDelete { .. },
                StreamEntry::Delete { seq: 4, .. }
            ]
        ),
        "{gone:?}"
    );
    log.extend(gone);
    assert!(l.leader_delete_consumer("B").is_empty());
    follow(&mut f, &log, from);
    assert_eq!(contents(&f), contents(&l));
    assert!(contents(&f).1.is_empty());
    assert_eq!(f.consumers.keys().collect::<Vec<_>>(), ["A"]);
}

mod props {
    use proptest::prelude::*;

    use super::super::*;

    fn record() -> impl Strategy<Value = MsgRecord> {
        (
            any::<u64>(),
            any::<u64>(),
            "[a-z.]{1,20}",
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 0..40),
            prop_oneof![
                Just(None),
                Just(Some("sub".to_owned())),
                Just(Some("all".to_owned()))
            ],
            any::<bool>(),
        )
            .prop_map(|(seq, ts, subject, h, p, rollup, sourced)| MsgRecord {
                seq,
                ts,
                subject,
                headers: h.into(),
                payload: p.into(),
                rollup,
                sourced,
            })
    }

    fn entry() -> impl Strategy<Value = StreamEntry> {
        prop_oneof![
            record().prop_map(StreamEntry::Msg),
            proptest::collection::vec(record(), 0..4).prop_map(StreamEntry::Batch),
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
                |(last_seq, seq, count, ts)| StreamEntry::Skip {
                    last_seq,
                    seq,
                    count,
                    ts
                }
            ),
            (any::<u64>(), any::<u64>())
                .prop_map(|(last_seq, seq)| StreamEntry::Delete { last_seq, seq }),
            (any::<u64>(), "[a-z.>*]{0,12}", any::<u64>(), any::<u64>()).prop_map(
                |(last_seq, filter, seq, keep)| StreamEntry::Purge {
                    last_seq,
                    filter,
                    seq,
                    keep
                }
            ),
            (any::<u64>(), any::<u64>())
                .prop_map(|(last_seq, now)| StreamEntry::Expire { last_seq, now }),
            "[a-zA-Z0-9_]{1,12}".prop_map(|name| StreamEntry::ConsumerDelete { name }),
            (
                "[a-zA-Z0-9_]{1,12}",
                proptest::collection::vec(any::<u8>(), 0..30)
            )
                .prop_map(|(name, state)| StreamEntry::ConsumerState { name, state }),
        ]
    }

    proptest! {
        #[test]
        fn every_entry_round_trips(e in entry()) {
            prop_assert_eq!(StreamEntry::decode(&e.encode()).unwrap(), e);
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panicking(
            kind in prop_oneof![Just(b'S'), Just(b'M'), any::<u8>()],
            version in prop_oneof![Just(VERSION), any::<u8>()],
            body in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let mut b = vec![kind, version];
            b.extend_from_slice(&body);
            let _ = StreamEntry::decode(&b);
            let _ = MetaEntry::decode(&b);
            if version != VERSION {
                prop_assert!(StreamEntry::decode(&b).is_err());
                prop_assert!(MetaEntry::decode(&b).is_err());
            }
        }
    }
}
