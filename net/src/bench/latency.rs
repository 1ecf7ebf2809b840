//! Request/reply latency: one responder, N requesters each with one request in flight.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::hist::Histogram;
use super::proto::{put_pub, server_err, Conn, Event};
use super::{grouped, Args, Record};

const SUBJECT: &str = "bench.reqrep";
const PAYLOAD: &[u8] = b"0123456789abcdef";

/// Answers every request with its own payload, batching the replies of one read into one write.
async fn responder(mut c: Conn) -> io::Result<()> {
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        c.inbound.fill(&mut c.rd).await?;
        let mut err = None;
        c.inbound.parse(|ev| match ev {
            Event::Msg {
                reply: Some(reply),
                payload,
                ..
            } => put_pub(&mut out, reply, None, payload),
            Event::Ping => out.extend_from_slice(b"PONG\r\n"),
            Event::Err(t) => err = Some(server_err(t)),
            Event::Msg { .. } | Event::Pong | Event::Other => {}
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        if !out.is_empty() {
            c.wr.write_all(&out).await?;
            out.clear();
        }
    }
}

/// Sends one request at a time until the budget or deadline; records each round trip.
async fn requester(
    mut c: Conn,
    inbox: String,
    budget: Arc<AtomicU64>,
    deadline: Instant,
) -> io::Result<Histogram> {
    let mut h = Histogram::default();
    let mut req = BytesMut::new();
    put_pub(
        &mut req,
        SUBJECT.as_bytes(),
        Some(inbox.as_bytes()),
        PAYLOAD,
    );
    while Instant::now() < deadline
        && budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_ok()
    {
        let t0 = Instant::now();
        c.wr.write_all(&req).await?;
        let mut got = false;
        while !got {
            c.inbound.fill(&mut c.rd).await?;
            let (mut err, mut pings) = (None, 0);
            c.inbound.parse(|ev| match ev {
                Event::Msg { .. } => got = true,
                Event::Ping => pings += 1,
                Event::Err(t) => err = Some(server_err(t)),
                Event::Pong | Event::Other => {}
            })?;
            if let Some(e) = err {
                return Err(e);
            }
            for _ in 0..pings {
                c.wr.write_all(b"PONG\r\n").await?;
            }
        }
        h.record(t0.elapsed());
    }
    Ok(h)
}

/// The responder on another server (`--sub-url`): its interest crosses a route or a gateway
/// first. Sends requests until one is answered, so that the measured ones all have a way.
async fn warm_up(args: &Args) -> anyhow::Result<()> {
    const INBOX: &str = "_INBOX.bench.warmup";
    let mut c = Conn::connect(&args.addr, "bench-warmup").await?;
    c.wr.write_all(format!("SUB {INBOX} 1\r\n").as_bytes())
        .await?;
    let mut req = BytesMut::new();
    put_pub(
        &mut req,
        SUBJECT.as_bytes(),
        Some(INBOX.as_bytes()),
        PAYLOAD,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if Instant::now() > deadline {
            anyhow::bail!("no responder on {:?} answered", args.sub_addr);
        }
        c.wr.write_all(&req).await?;
        // Not Conn::flush: an answer may come before the PONG, and this waits for it alone.
        let Ok(filled) =
            tokio::time::timeout(Duration::from_millis(50), c.inbound.fill(&mut c.rd)).await
        else {
            continue;
        };
        filled?;
        let (mut got, mut err, mut pings) = (false, None, 0);
        c.inbound.parse(|ev| match ev {
            Event::Msg { .. } => got = true,
            Event::Ping => pings += 1,
            Event::Err(t) => err = Some(server_err(t)),
            Event::Pong | Event::Other => {}
        })?;
        if let Some(e) = err {
            return Err(e.into());
        }
        for _ in 0..pings {
            c.wr.write_all(b"PONG\r\n").await?;
        }
        if got {
            return Ok(());
        }
    }
}

/// Runs the request/reply scenario with `n` requesters; the responder connects to
/// `--sub-url` when given (across a route, a leaf link or a gateway).
pub(crate) async fn run(args: &Args, n: usize) -> anyhow::Result<Record> {
    let raddr = args.sub_addr.as_ref().unwrap_or(&args.addr);
    let mut rc = Conn::connect(raddr, "bench-responder").await?;
    rc.wr
        .write_all(format!("SUB {SUBJECT} 1\r\n").as_bytes())
        .await?;
    rc.flush().await?;
    let responder = tokio::spawn(responder(rc));
    if args.sub_addr.is_some() {
        if let Err(e) = warm_up(args).await {
            responder.abort();
            return Err(e);
        }
    }
    let mut conns = Vec::new();
    for i in 0..n {
        let mut c = Conn::connect(&args.addr, "bench-requester").await?;
        let inbox = format!("_INBOX.bench.{i}");
        c.wr.write_all(format!("SUB {inbox} 1\r\n").as_bytes())
            .await?;
        c.flush().await?;
        conns.push((c, inbox));
    }
    let budget = Arc::new(AtomicU64::new(args.msgs));
    let start = Instant::now();
    let deadline = start + args.duration;
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|(c, inbox)| tokio::spawn(requester(c, inbox, Arc::clone(&budget), deadline)))
        .collect();
    let mut h = Histogram::default();
    let mut failure = None;
    for t in tasks {
        match t.await? {
            Ok(one) => h.merge(&one),
            Err(e) => failure = Some(e),
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    responder.abort();
    if let Some(e) = failure {
        return Err(e.into());
    }
    let us = |q: f64| h.quantile(q) as f64 / 1000.0;
    let mut r = Record::new(format!("reqrep_{n}"));
    r.set("reqs_per_sec", h.count() as f64 / secs);
    r.set("p50_us", us(0.5));
    r.set("p90_us", us(0.9));
    r.set("p99_us", us(0.99));
    r.set("p999_us", us(0.999));
    r.set("max_us", h.max() as f64 / 1000.0);
    r.set("mean_us", h.mean() / 1000.0);
    r.set("reqs", h.count() as f64);
    r.set("secs", secs);
    r.human = format!(
        "{} req/s, p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs ({} requests)",
        grouped(h.count() as f64 / secs),
        us(0.5),
        us(0.99),
        us(0.999),
        h.max() as f64 / 1000.0,
        grouped(h.count() as f64)
    );
    Ok(r)
}
