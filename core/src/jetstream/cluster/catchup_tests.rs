//! Catch-up: a store filled from a peer's through the request/chunk protocol, then the peer's
//! snapshot restored over it, ends identical to the peer (store accounting, every message,
//! interior deletes, consumers) whatever the chunk sizes and windows, with chunks lost,
//! duplicated or late, and with the peer moving on meanwhile; a kept store is checked, a
//! diverged one reported; bytes that do not decode are failures, not panics.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::catchup::*;
use super::replica_tests::{contents, follow, leader_run, open, replica, stream_cfg, SEC, T0};
use super::*;
use crate::jetstream::store::{MemDisk, StreamStore};

/// A starting instant; the machines only ever see times derived from it.
#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

/// What the network does with the `n`th chunk (counted from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Deliver,
    Drop,
    Twice,
    /// Delivered after the rest of its window.
    Late,
}

fn limits(chunk_msgs: usize, window: u32) -> CatchupLimits {
    CatchupLimits {
        chunk_bytes: DEFAULT_CHUNK_BYTES,
        chunk_msgs,
        window,
        timeout: Duration::from_secs(1),
    }
}

/// Runs a catch-up of `dst` from `src` to `target` over a lossy in-memory "network"; `fate`
/// may also change the source between chunks. Returns how it ended and the requests made.
fn drive(
    src: &mut ReplicatedStream,
    dst: &mut dyn StreamStore,
    target: u64,
    verify: bool,
    lim: CatchupLimits,
    mut fate: impl FnMut(usize, &mut ReplicatedStream) -> Fate,
) -> (CatchupEvent, u64) {
    let mut now = start();
    let mut c = Catchup::new(now, dst, target, verify, lim);
    let mut n = 0;
    for _ in 0..100_000 {
        if let Some(ev) = c.poll_event() {
            assert!(c.poll_transmit().is_none(), "nothing sent once finished");
            return (ev, c.requests());
        }
        if let Some(req) = c.poll_transmit() {
            let mut srv = CatchupServer::from_request(&req, lim).expect("request decodes");
            let mut late = Vec::new();
            while let Some(chunk) = srv.poll_chunk(src.stream.store.as_ref()) {
                n += 1;
                let bytes = chunk.encode();
                match fate(n, src) {
                    Fate::Deliver => c.handle_chunk(now, dst, &bytes),
                    Fate::Drop => {}
                    Fate::Twice => {
                        c.handle_chunk(now, dst, &bytes);
                        c.handle_chunk(now, dst, &bytes);
                    }
                    Fate::Late => late.push(bytes),
                }
            }
            for b in late {
                c.handle_chunk(now, dst, &b);
            }
            continue;
        }
        let t = c
            .poll_timeout()
            .expect("an unfinished catch-up has a timer");
        assert!(t >= now, "the timer moves forward");
        now = t;
        c.handle_timeout(now);
    }
    panic!("catch-up did not finish");
}

/// A peer that applied the whole of `leader_run`'s log and an interior delete, as a follower.
fn peer() -> (ReplicatedStream, Vec<StreamEntry>) {
    let (mut l, mut log) = leader_run();
    let first = l.stream.store.state().first_seq;
    let mid = l.stream.store.load_next_msg("", first + 1).unwrap().seq;
    log.push(l.leader_delete(mid).1);
    let mut p = replica(&MemDisk::new(11));
    follow(&mut p, &log, 0);
    (p, log)
}

/// Catches a fresh store up from `src` and restores `src`'s snapshot over it.
fn rebuild(
    src: &mut ReplicatedStream,
    lim: CatchupLimits,
    fate: impl FnMut(usize, &mut ReplicatedStream) -> Fate,
) -> (ReplicatedStream, Vec<u8>, u64) {
    let snap = src.snapshot();
    let info = ReplicatedStream::snapshot_info(&snap).unwrap();
    assert_eq!(info.applied, src.applied());
    let mut store = open(&MemDisk::new(99), &stream_cfg());
    let (ev, requests) = drive(src, store.as_mut(), info.last_seq, false, lim, fate);
    assert_eq!(ev, CatchupEvent::Done);
    let (r, behind) = ReplicatedStream::restore(&snap, store).unwrap();
    assert_eq!(behind, None);
    (r, snap, requests)
}

/// Records the whole catch-up would send with `lim` and no faults.
fn chunks_of(src: &mut ReplicatedStream, lim: CatchupLimits) -> usize {
    let mut n = 0;
    rebuild(src, lim, |k, _| {
        n = k;
        Fate::Deliver
    });
    n
}

#[test]
fn a_fresh_store_caught_up_equals_the_peer_for_every_chunk_size_and_window() {
    let (mut src, _) = peer();
    let want = contents(&src);
    assert!(
        src.stream.store.state().num_deleted > 0,
        "the run leaves interior deletes"
    );
    let records = chunks_of(&mut src, limits(1, 1000));
    assert!(records >= 5, "{records} records");
    for msgs in 1..=records + 1 {
        for window in 1..=3 {
            let (r, _, requests) = rebuild(&mut src, limits(msgs, window), |_, _| Fate::Deliver);
            assert_eq!(contents(&r), want, "chunks of {msgs}, window {window}");
            assert_eq!(r.applied(), src.applied());
            let chunks = records.div_ceil(msgs);
            assert_eq!(
                requests as usize,
                chunks.div_ceil(window as usize).max(1),
                "one request per window"
            );
        }
    }
}

#[test]
fn every_lost_chunk_is_asked_for_again() {
    let (mut src, _) = peer();
    let want = contents(&src);
    let lim = limits(2, 4);
    let total = chunks_of(&mut src, lim);
    for lost in 1..=total {
        let (r, _, requests) = rebuild(&mut src, lim, |n, _| {
            if n == lost {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        });
        assert_eq!(contents(&r), want, "chunk {lost} lost");
        assert!(requests > total.div_ceil(4) as u64, "chunk {lost}: a retry");
    }
    // Everything lost for a while: timeouts ask again until chunks arrive.
    let (r, _, _) = rebuild(&mut src, lim, |n, _| {
        if n <= 7 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    assert_eq!(contents(&r), want);
}

#[test]
fn duplicated_and_late_chunks_change_nothing() {
    let (mut src, _) = peer();
    let want = contents(&src);
    let lim = limits(3, 3);
    let total = chunks_of(&mut src, lim);
    for k in 1..=total {
        for fate in [Fate::Twice, Fate::Late] {
            let (r, _, _) = rebuild(
                &mut src,
                lim,
                |n, _| if n == k { fate } else { Fate::Deliver },
            );
            assert_eq!(contents(&r), want, "chunk {k} {fate:?}");
        }
    }
    let (r, _, _) = rebuild(&mut src, lim, |_, _| Fate::Twice);
    assert_eq!(contents(&r), want, "every chunk twice");
}

#[test]
fn a_peer_that_moves_on_during_the_catch_up_still_gives_an_identical_replica() {
    let (mut leader, log) = leader_run();
    // More writes after the snapshot: new messages, a delete, a whole purge, more messages.
    let mut more = Vec::new();
    let mut now = T0 + 1000 * SEC;
    for i in 0..4 {
        now += SEC;
        more.extend(
            leader
                .leader_publish("s.a", b"", format!("n{i}").as_bytes(), now)
                .unwrap()
                .1,
        );
    }
    let first = leader.stream.store.state().first_seq;
    more.push(leader.leader_delete(first + 1).1);
    more.push(leader.leader_purge("", 0, 0).1);
    now += SEC;
    more.extend(leader.leader_publish("s.b", b"", b"last", now).unwrap().1);
    let total = chunks_of(&mut peer().0, limits(2, 2));
    for at in 1..=total {
        let mut src = replica(&MemDisk::new(12));
        follow(&mut src, &log, 0);
        let all: Vec<StreamEntry> = log.iter().chain(&more).cloned().collect();
        let base = log.len();
        let (mut r, _, _) = rebuild(&mut src, limits(2, 2), |n, s| {
            if n == at {
                // The peer applies the later entries between two chunks.
                follow(s, &all, base);
            }
            Fate::Deliver
        });
        // The rebuilt replica applies the entries after the snapshot, as kept.
        follow(&mut r, &all, base);
        assert_eq!(
            contents(&r),
            contents(&src),
            "peer moved on after chunk {at}"
        );
        assert_eq!(r.applied(), all.len() as u64);
    }
}

/// A stream of `n` messages with `deleted` removed, as a follower of its leader's log.
fn with_deletes(n: u64, deleted: &[u64]) -> ReplicatedStream {
    let mut l = replica(&MemDisk::new(20));
    let mut log = Vec::new();
    for i in 1..=n {
        let subj = if i % 2 == 0 { "s.even" } else { "s.odd" };
        log.extend(
            l.leader_publish(subj, b"", format!("m{i}").as_bytes(), T0 + i * SEC)
                .unwrap()
                .1,
        );
    }
    for &d in deleted {
        log.push(l.leader_delete(d).1);
    }
    let mut f = replica(&MemDisk::new(21));
    follow(&mut f, &log, 0);
    f
}

#[test]
fn interior_deletes_a_leading_purge_and_a_deleted_last_message_come_out_identical() {
    for deleted in [
        vec![3, 4, 7],
        vec![1, 2, 3, 9, 10],
        vec![10],
        (1..=10).collect::<Vec<_>>(),
        vec![2, 5, 6, 8],
    ] {
        let mut src = with_deletes(10, &deleted);
        let st = src.stream.store.state();
        for msgs in [1, 2, 100] {
            let (r, _, _) = rebuild(&mut src, limits(msgs, 2), |_, _| Fate::Deliver);
            assert_eq!(r.stream.store.state(), st, "deleted {deleted:?}");
            assert_eq!(
                r.stream.store.deleted_seqs(),
                src.stream.store.deleted_seqs()
            );
            assert_eq!(contents(&r), contents(&src));
        }
    }
}

#[test]
fn a_kept_store_is_checked_then_completed_and_takes_the_peers_removals() {
    let (mut src, log) = peer();
    let want = contents(&src);
    for upto in (1..log.len()).step_by(3) {
        let mut r = replica(&MemDisk::new(30));
        follow(&mut r, &log[..upto], 0);
        let target = src.stream.store.state().last_seq;
        let (ev, _) = drive(
            &mut src,
            r.stream.store.as_mut(),
            target,
            true,
            limits(3, 2),
            |_, _| Fate::Deliver,
        );
        assert_eq!(ev, CatchupEvent::Done, "kept store after {upto} entries");
        let (r, behind) = ReplicatedStream::restore(&src.snapshot(), r.stream.store).unwrap();
        assert_eq!(behind, None);
        assert_eq!(contents(&r), want, "kept store after {upto} entries");
    }
}

#[test]
fn a_store_that_went_its_own_way_is_reported_not_overwritten() {
    let mut src = with_deletes(6, &[2]);
    let target = src.stream.store.state().last_seq;
    // Same sequences, one different message (an old leader's own write at 4).
    let mut mine = replica(&MemDisk::new(40));
    for i in 1..=5u64 {
        let body = if i == 4 {
            "mine".to_owned()
        } else {
            format!("m{i}")
        };
        let subj = if i % 2 == 0 { "s.even" } else { "s.odd" };
        mine.leader_publish(subj, b"", body.as_bytes(), T0 + i * SEC)
            .unwrap();
    }
    let before: Vec<_> = contents(&mine).1;
    let (ev, _) = drive(
        &mut src,
        mine.stream.store.as_mut(),
        target,
        true,
        limits(2, 2),
        |_, _| Fate::Deliver,
    );
    assert_eq!(ev, CatchupEvent::Diverged { seq: 4 });
    // Message 2 (deleted on the peer) may go; 4 stays as it was until set aside.
    let after = contents(&mine).1;
    assert!(after.iter().any(|m| m.0 == 4 && m.4 == b"mine"));
    assert!(after.iter().all(|m| before.contains(m)));
    // A store holding more than the peer's snapshot holds writes of its own.
    let mut ahead = with_deletes(8, &[]);
    let (ev, _) = drive(
        &mut src,
        ahead.stream.store.as_mut(),
        target,
        true,
        limits(2, 2),
        |_, _| Fate::Deliver,
    );
    assert_eq!(ev, CatchupEvent::Diverged { seq: target + 1 });
}

#[test]
fn a_peer_with_less_than_the_target_fails_the_catch_up() {
    let mut src = with_deletes(5, &[]);
    let mut store = open(&MemDisk::new(50), &stream_cfg());
    let (ev, _) = drive(&mut src, store.as_mut(), 9, false, limits(2, 2), |_, _| {
        Fate::Deliver
    });
    assert!(matches!(ev, CatchupEvent::Failed(_)), "{ev:?}");
    // What arrived is kept: a later attempt resumes after it.
    assert_eq!(store.state().last_seq, 5);
}

#[test]
fn a_store_already_at_the_target_is_done_at_once() {
    let src = with_deletes(3, &[]);
    let store = open(&MemDisk::new(51), &stream_cfg());
    let _ = src;
    let mut c = Catchup::new(start(), store.as_ref(), 0, false, limits(2, 2));
    assert_eq!(c.poll_event(), Some(CatchupEvent::Done));
    assert_eq!(c.poll_transmit(), None);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn bytes_that_do_not_decode_fail_the_catch_up_without_panicking() {
    let mut store = open(&MemDisk::new(52), &stream_cfg());
    let now = start();
    let mut c = Catchup::new(now, store.as_ref(), 5, false, limits(2, 2));
    let req = c.poll_transmit().unwrap();
    assert_eq!(
        CatchupRequest::decode(&req).unwrap(),
        CatchupRequest {
            id: 1,
            from_seq: 1,
            up_to_seq: 5,
            verify_through: 0,
            window: 2
        }
    );
    assert!(CatchupServer::from_request(b"junk", limits(2, 2)).is_none());
    c.handle_chunk(now, store.as_mut(), b"c\x01\x01");
    assert!(matches!(c.poll_event(), Some(CatchupEvent::Failed(_))));
    // A chunk of a later format is refused, not misread.
    let chunk = CatchupChunk {
        id: 1,
        records: vec![],
        end: ChunkEnd::More,
    }
    .encode();
    let mut newer = chunk.clone();
    newer[1] = VERSION + 1;
    assert!(CatchupChunk::decode(&newer).is_err());
    assert_eq!(CatchupChunk::decode(&chunk).unwrap().end, ChunkEnd::More);
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u64>(),
            "[a-z.]{1,8}",
            proptest::collection::vec(any::<u8>(), 0..8)
        )
            .prop_map(|(seq, ts, subject, payload)| Record::Msg(
                crate::jetstream::store::StoredMsg {
                    seq,
                    ts,
                    subject,
                    headers: bytes::Bytes::new(),
                    payload: payload.into(),
                }
            )),
        (any::<u64>(), any::<u64>()).prop_map(|(seq, digest)| Record::Check { seq, digest }),
        (0..u64::MAX / 2, 1..1000u64, any::<u64>()).prop_map(|(seq, count, ts)| Record::Gap {
            seq,
            count,
            ts
        }),
    ]
}

/// One operation on the source stream.
#[derive(Debug, Clone)]
enum Op {
    Publish(u8, u8),
    Delete(u64),
    Purge(u8, u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3u8, 0..40u8).prop_map(|(s, len)| Op::Publish(s, len)),
        2 => (0..64u64).prop_map(Op::Delete),
        1 => (0..4u8, 0..64u64, 0..3u64).prop_map(|(f, seq, keep)| Op::Purge(f, seq, keep)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn chunks_and_requests_round_trip_and_any_bytes_decode_or_fail(
        records in proptest::collection::vec(record(), 0..6),
        id in any::<u64>(),
        end in prop_oneof![
            Just(ChunkEnd::More),
            Just(ChunkEnd::Window),
            (any::<u64>(), any::<u64>()).prop_map(|(first_seq, last_seq)| ChunkEnd::Done { first_seq, last_seq }),
            "[a-z ]{0,12}".prop_map(ChunkEnd::Failed),
        ],
        junk in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let c = CatchupChunk { id, records, end };
        prop_assert_eq!(CatchupChunk::decode(&c.encode()).unwrap(), c);
        let _ = CatchupChunk::decode(&junk);
        let _ = CatchupRequest::decode(&junk);
        let mut sealed = vec![b'c', VERSION];
        sealed.extend(&junk);
        let _ = CatchupChunk::decode(&sealed);
    }

    /// Whatever the source went through and whatever the network does, the rebuilt replica
    /// equals the source.
    #[test]
    fn the_rebuilt_store_equals_the_source(
        ops in proptest::collection::vec(op(), 1..60),
        chunk_msgs in 1..6usize,
        window in 1..4u32,
        fates in proptest::collection::vec(0..8u8, 0..40),
    ) {
        let mut l = replica(&MemDisk::new(60));
        let mut log = Vec::new();
        let subjects = ["s.a", "s.b", "s.c"];
        let mut now = T0;
        for op in ops {
            now += SEC;
            match op {
                Op::Publish(s, len) => {
                    let body = vec![b'x'; len as usize];
                    if let Ok((_, e)) = l.leader_publish(subjects[s as usize], b"", &body, now) {
                        log.extend(e);
                    }
                }
                Op::Delete(seq) => {
                    if l.stream.store.load_msg(seq).is_ok() {
                        log.push(l.leader_delete(seq).1);
                    }
                }
                Op::Purge(f, seq, keep) => {
                    let filter = ["", "s.a", "s.b", "s.>"][f as usize];
                    log.push(l.leader_purge(filter, seq, keep).1);
                }
            }
        }
        let mut src = replica(&MemDisk::new(61));
        follow(&mut src, &log, 0);
        let fate = |n: usize, _: &mut ReplicatedStream| match fates.get(n).copied().unwrap_or(0) {
            1 => Fate::Drop,
            2 => Fate::Twice,
            3 => Fate::Late,
            _ => Fate::Deliver,
        };
        let (r, _, _) = rebuild(&mut src, limits(chunk_msgs, window), fate);
        prop_assert_eq!(r.stream.store.state(), src.stream.store.state());
        prop_assert_eq!(r.stream.store.deleted_seqs(), src.stream.store.deleted_seqs());
        prop_assert_eq!(contents(&r), contents(&src));
    }
}
