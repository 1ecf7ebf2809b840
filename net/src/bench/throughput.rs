//! Throughput scenarios: publishers only, 1→1, 1→N fan-out and a queue group.
//!
//! Publishers write batches of about 64 KiB, each followed by a PING, and keep at most a few
//! PINGs unanswered, so the server's input never backs up far. When there are subscribers, a
//! publisher also stays within a window of messages not yet counted at the subscribers: the
//! rate reported is what subscribers actually received, not what the socket swallowed.
//!
//! With `--open-loop` publishers are unthrottled instead: they write their batches as fast as
//! the socket takes them, with no PINGs and no delivery window, and send one PING at the end.
//! Whatever the server does with a burst its subscribers cannot take at once (hold the
//! publisher back, or cut the subscribers as slow consumers) shows up as the rate and as
//! `lost`: messages published but never counted at a subscriber.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use super::proto::{put_pub, server_err, Conn, Event};
use super::{grouped, Args, Record};

/// Target size of one publisher write.
const BATCH_BYTES: usize = 64 * 1024;
/// Unanswered PINGs (one per batch) a publisher allows before it waits.
const PING_WINDOW: usize = 8;
/// Messages published but not yet counted at the subscribers, at most.
const DELIVERY_WINDOW: u64 = 64 * 1024;
/// How long subscribers may make no progress before the run is declared stalled.
const STALL: Duration = Duration::from_secs(10);
/// Open loop: once publishing is done, subscribers that make no progress for this long are
/// done too (whatever did not arrive by then is lost).
const QUIET: Duration = Duration::from_secs(2);

/// Who receives what is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Nobody subscribes.
    PubOnly,
    /// N plain subscribers each get every message (N = 1 is pubsub).
    Fanout(usize),
    /// N members of one queue group share the messages.
    Queue(usize),
}

/// Messages counted at the subscribers.
#[derive(Debug)]
pub(crate) struct Delivered {
    counts: Vec<AtomicU64>,
    shared: bool,
    notify: Notify,
    /// When a subscriber last counted a message.
    last: std::sync::Mutex<Option<Instant>>,
}

impl Delivered {
    /// `subs` counters; `shared` when they split one stream (queue group) rather than each
    /// getting all of it.
    pub(crate) fn new(subs: usize, shared: bool) -> Self {
        Self {
            counts: (0..subs).map(|_| AtomicU64::new(0)).collect(),
            shared,
            notify: Notify::new(),
            last: std::sync::Mutex::new(None),
        }
    }

    /// When a subscriber last counted a message, if ever.
    fn last_progress(&self) -> Option<Instant> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How far the stream has been delivered: the slowest subscriber, or the group's sum.
    pub(crate) fn progress(&self) -> u64 {
        let each = self.counts.iter().map(|c| c.load(Ordering::Relaxed));
        if self.shared {
            each.sum()
        } else {
            each.min().unwrap_or(0)
        }
    }

    /// Messages received by all subscribers together.
    pub(crate) fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Waits until `progress() >= target`; fails if nothing moves for [`STALL`].
    pub(crate) async fn wait_for(&self, target: u64) -> io::Result<()> {
        self.wait_for_within(target, STALL).await
    }

    /// Waits until `progress() >= target`; fails if nothing moves for `stall`.
    async fn wait_for_within(&self, target: u64, stall: Duration) -> io::Result<()> {
        let mut last = self.progress();
        let mut deadline = tokio::time::Instant::now() + stall;
        loop {
            let now = self.progress();
            if now >= target {
                return Ok(());
            }
            if now != last {
                last = now;
                deadline = tokio::time::Instant::now() + stall;
            }
            // notify_one keeps a permit when nobody waits, so a wake-up between the check and
            // this await is not lost.
            if tokio::time::timeout_at(deadline, self.notify.notified())
                .await
                .is_err()
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("subscribers stalled at {now} of {target} messages"),
                ));
            }
        }
    }
}

/// Counts every MSG arriving on `c` into counter `idx` until the connection fails.
pub(crate) async fn subscriber(mut c: Conn, sink: Arc<Delivered>, idx: usize) -> io::Result<()> {
    loop {
        c.inbound.fill(&mut c.rd).await?;
        let (mut n, mut pings, mut err) = (0u64, 0, None);
        c.inbound.parse(|ev| match ev {
            Event::Msg { .. } => n += 1,
            Event::Ping => pings += 1,
            Event::Err(t) => err = Some(server_err(t)),
            Event::Pong | Event::Other => {}
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        if n > 0 {
            sink.counts[idx].fetch_add(n, Ordering::Relaxed);
            *sink.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            sink.notify.notify_one();
        }
        for _ in 0..pings {
            c.wr.write_all(b"PONG\r\n").await?;
        }
    }
}

/// Limits shared by the publishers of one run.
#[derive(Debug)]
pub(crate) struct Plan {
    budget: u64,
    claimed: AtomicU64,
    deadline: Instant,
    /// Publishers write as fast as the socket takes batches (see the module docs).
    open_loop: bool,
}

impl Plan {
    pub(crate) fn new(budget: u64, duration: Duration) -> Self {
        Self {
            budget,
            claimed: AtomicU64::new(0),
            deadline: Instant::now() + duration,
            open_loop: false,
        }
    }
}

/// Publishes batches from `make(n)` (n messages of one batch) until the plan's budget or
/// deadline; returns the messages sent, all acknowledged by a final PONG.
pub(crate) async fn publish(
    mut c: Conn,
    plan: Arc<Plan>,
    per_batch: u64,
    sink: Option<Arc<Delivered>>,
    mut make: impl FnMut(u64) -> Bytes,
) -> io::Result<u64> {
    let window = DELIVERY_WINDOW.max(4 * per_batch);
    let (mut sent, mut outstanding) = (0, 0usize);
    while Instant::now() < plan.deadline {
        let first = plan.claimed.fetch_add(per_batch, Ordering::Relaxed);
        if first >= plan.budget {
            break;
        }
        let n = per_batch.min(plan.budget - first);
        if plan.open_loop {
            c.wr.write_all(&make(n)).await?;
            sent += n;
            continue;
        }
        if let Some(s) = &sink {
            s.wait_for((first + n).saturating_sub(window)).await?;
        }
        c.wr.write_all(&make(n)).await?;
        c.wr.write_all(b"PING\r\n").await?;
        outstanding += 1;
        sent += n;
        while outstanding > PING_WINDOW {
            outstanding = outstanding.saturating_sub(c.read_pongs().await?);
        }
    }
    if plan.open_loop {
        // One PING at the end: its PONG says the server has read everything.
        c.wr.write_all(b"PING\r\n").await?;
        outstanding = 1;
    }
    c.wait_pongs(outstanding).await?;
    Ok(sent)
}

/// One fixed message repeated to fill a batch; returns the batch and the messages in it.
pub(crate) fn fixed_batch(subject: &str, size: usize) -> (Bytes, usize, u64) {
    let mut one = BytesMut::new();
    put_pub(&mut one, subject.as_bytes(), None, &vec![b'x'; size]);
    let per_batch = (BATCH_BYTES / one.len()).max(1);
    let mut batch = BytesMut::with_capacity(per_batch * one.len());
    for _ in 0..per_batch {
        batch.extend_from_slice(&one);
    }
    (batch.freeze(), one.len(), per_batch as u64)
}

fn name(shape: Shape, size: usize, pubs: usize, open_loop: bool) -> String {
    let mut p = if pubs > 1 {
        format!("_{pubs}p")
    } else {
        String::new()
    };
    if open_loop {
        p += "_open";
    }
    match shape {
        Shape::PubOnly => format!("pub_{size}B{p}"),
        Shape::Fanout(1) => format!("pubsub_{size}B{p}"),
        Shape::Fanout(n) => format!("fanout_{size}B_x{n}{p}"),
        Shape::Queue(n) => format!("queue_{size}B_g{n}{p}"),
    }
}

/// Runs one throughput scenario.
pub(crate) async fn run(args: &Args, shape: Shape, size: usize) -> anyhow::Result<Record> {
    let scenario = name(shape, size, args.pubs, args.open_loop);
    let subject = format!("bench.{scenario}");
    let (nsubs, shared) = match shape {
        Shape::PubOnly => (0, false),
        Shape::Fanout(n) => (n, false),
        Shape::Queue(n) => (n, true),
    };
    let sink = Arc::new(Delivered::new(nsubs, shared));
    let mut subs = Vec::new();
    for i in 0..nsubs {
        let addr = args.sub_addr.as_ref().unwrap_or(&args.addr);
        let mut c = Conn::connect(addr, "bench-sub").await?;
        let op = if shared {
            format!("SUB {subject} bench 1\r\n")
        } else {
            format!("SUB {subject} 1\r\n")
        };
        c.wr.write_all(op.as_bytes()).await?;
        c.flush().await?;
        subs.push(tokio::spawn(subscriber(c, Arc::clone(&sink), i)));
    }
    let mut conns = Vec::new();
    for _ in 0..args.pubs {
        conns.push(Conn::connect(&args.addr, "bench-pub").await?);
    }
    if args.sub_addr.is_some() && nsubs > 0 {
        // Subscribers on another node: their interest crosses a route first. Warm up until
        // every subscriber has seen a message (the extra messages only add to the count).
        let mut w = Conn::connect(&args.addr, "bench-warmup").await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.progress() == 0 {
            if Instant::now() > deadline {
                anyhow::bail!("subscribers on {:?} never saw a message", args.sub_addr);
            }
            w.wr.write_all(format!("PUB {subject} 0\r\n\r\n").as_bytes())
                .await?;
            w.flush().await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (batch, msg_len, per_batch) = fixed_batch(&subject, size);
    let plan = Arc::new(Plan {
        open_loop: args.open_loop,
        ..Plan::new(args.msgs, args.duration)
    });
    let start = Instant::now();
    let publishers: Vec<_> = conns
        .into_iter()
        .map(|c| {
            let batch = batch.clone();
            let sink = (nsubs > 0).then(|| Arc::clone(&sink));
            tokio::spawn(publish(c, Arc::clone(&plan), per_batch, sink, move |n| {
                batch.slice(..n as usize * msg_len)
            }))
        })
        .collect();
    let mut sent = 0;
    for p in publishers {
        sent += p.await??;
    }
    let published = start.elapsed();
    let drained = if nsubs == 0 {
        Ok(())
    } else if args.open_loop {
        // Whatever has not arrived once the subscribers go quiet is lost; not an error here.
        let _ = sink.wait_for_within(sent, QUIET).await;
        Ok(())
    } else {
        sink.wait_for(sent).await
    };
    // The rate counts up to the last delivery, not the quiet period after it.
    let elapsed = if args.open_loop {
        sink.last_progress()
            .map_or(published, |t| t.saturating_duration_since(start))
            .max(published)
    } else {
        start.elapsed()
    };
    // Subscribers that ended on their own were closed by the server (slow consumers).
    let cut = subs.iter().filter(|s| s.is_finished()).count();
    for s in &subs {
        s.abort();
    }
    for s in subs {
        if let Ok(Err(e)) = s.await {
            if !args.open_loop {
                return Err(anyhow::anyhow!("subscriber failed: {e}"));
            }
        }
    }
    drained?;
    let expected = match shape {
        Shape::PubOnly => 0,
        Shape::Fanout(n) => sent * n as u64,
        Shape::Queue(_) => sent,
    };
    let lost = expected.saturating_sub(sink.total());

    let mut r = Record::new(scenario);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let (rate, counted) = if nsubs == 0 {
        (sent as f64 / published.as_secs_f64().max(1e-9), sent)
    } else {
        (sink.total() as f64 / secs, sink.total())
    };
    r.set("msgs_per_sec", rate);
    r.set("mb_per_sec", rate * size as f64 / 1e6);
    r.set("pub_msgs_per_sec", sent as f64 / secs);
    r.set("msgs", counted as f64);
    r.set("secs", secs);
    r.set("size", size as f64);
    if args.open_loop {
        r.set("lost", lost as f64);
        r.set("subs_cut", cut as f64);
    }
    r.human = format!(
        "{} msgs/s {} ({:.1} MB/s payload), {} msgs in {:.2} s",
        grouped(rate),
        if nsubs == 0 { "published" } else { "delivered" },
        rate * size as f64 / 1e6,
        grouped(counted as f64),
        secs
    );
    if args.open_loop && nsubs > 0 {
        r.human += &format!(
            ", {} of {} published lost, {cut} subscriber(s) cut",
            grouped(lost as f64),
            grouped(sent as f64)
        );
    }
    Ok(r)
}
