//! The publish path's batch bookkeeping: wake-ups and the producer's read-ahead signal.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::*;
use crate::outbound::READ_AHEAD_BYTES;

#[derive(Debug, Default)]
struct CountWakes(AtomicUsize);

impl Notifier for CountWakes {
    fn notify_write(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn notify_close(&self) {}
}

/// Publishes `count` messages of `size` bytes on `subject` as one batch of `from`.
fn publish_batch(
    acc: &Arc<Account>,
    from: &Arc<ClientShared>,
    pending: &mut PendingFlush,
    subject: &[u8],
    size: usize,
    count: usize,
) {
    let mut rng = SplitMix64::new(1);
    let payload = Bytes::from(vec![b'x'; size]);
    for _ in 0..count {
        let mut p = Publisher {
            client: Some(from),
            rng: &mut rng,
            now: Instant::now(),
            pending,
            cache: None,
            transient: false,
        };
        let m = Message {
            subject,
            reply: None,
            headers: None,
            payload: &payload,
            shared: Some(&payload),
        };
        publish(acc, &mut p, &m);
    }
}

#[test]
fn writers_behind_once_a_receiver_holds_more_than_the_read_ahead() {
    let acc = Account::new("A");
    let wakes = Arc::new(CountWakes::default());
    let sub = ClientShared::new(2, 64 << 20, wakes.clone());
    subscribe(
        &acc,
        &sub,
        Bytes::from_static(b"1"),
        Bytes::from_static(b"s"),
        None,
        0,
    )
    .unwrap();
    let from = ClientShared::new(1, 64 << 20, Arc::new(CountWakes::default()));
    let mut pending = PendingFlush::default();

    // One read's worth: below the bound, so the producer reads on.
    publish_batch(&acc, &from, &mut pending, b"s", 16, 1000);
    assert!(sub.queued_bytes() < READ_AHEAD_BYTES);
    let stall = pending.flush_and_take_stall();
    assert!(stall.is_empty() && !stall.writers_behind());
    assert_eq!(wakes.0.load(Ordering::Relaxed), 1, "one wake-up per batch");

    // The writer has not run: the next batch leaves it past the bound.
    publish_batch(&acc, &from, &mut pending, b"s", 16, 4000);
    assert!(sub.queued_bytes() > READ_AHEAD_BYTES);
    let stall = pending.flush_and_take_stall();
    assert!(
        stall.writers_behind(),
        "the producer lets the writer run first"
    );
    assert!(
        stall.is_empty(),
        "far below half of max_pending: no gate, no wait"
    );

    // The writer took everything: the flag is not carried into later batches.
    sub.drain_outbound(&mut Vec::new());
    publish_batch(&acc, &from, &mut pending, b"s", 16, 10);
    let stall = pending.flush_and_take_stall();
    assert!(!stall.writers_behind());
}

#[test]
fn writers_behind_survives_absorb() {
    let mut a = Stall::default();
    let mut b = Stall::default();
    b.note_writer_behind();
    a.absorb(b);
    assert!(a.writers_behind());
    assert!(a.is_empty());
}
