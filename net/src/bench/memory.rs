//! Memory scenarios: many idle connections, and many subscriptions on distinct subjects.
//! The server's resident set is read from `/proc/<pid>/status` (`VmRSS`) when `--server-pid`
//! is given; both servers run on the same host as the bench.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use natsd_core::rng::SplitMix64;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use super::proto::{put_pub, Conn};
use super::throughput::{publish, subscriber, Delivered, Plan};
use super::{grouped, Args, Record};

/// Connections being set up at once in `idle-conns`.
const CONNECT_PARALLEL: usize = 64;
/// Time the server gets to settle (allocator, GC) before its RSS is read.
const SETTLE: Duration = Duration::from_millis(500);

/// The `VmRSS` of `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vmrss(&status)
}

fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The soft limit on open files of this process.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn server_rss(args: &Args) -> anyhow::Result<Option<u64>> {
    match args.server_pid {
        None => Ok(None),
        Some(pid) => rss_kib(pid)
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("cannot read VmRSS of pid {pid}")),
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Opens `--conns` connections that only complete the handshake, then reads the server's RSS.
pub(crate) async fn idle_conns(args: &Args) -> anyhow::Result<Record> {
    let n = args.conns;
    if let Some(limit) = open_files_limit() {
        anyhow::ensure!(
            limit >= n as u64 + 64,
            "open files limit {limit} is too low for {n} connections: raise `ulimit -n`"
        );
    }
    let before = server_rss(args)?;
    let start = Instant::now();
    let mut open = Vec::with_capacity(n);
    let mut pending = JoinSet::new();
    let mut started = 0;
    while open.len() < n {
        while started < n && pending.len() < CONNECT_PARALLEL {
            let addr = args.addr.clone();
            pending.spawn(async move { Conn::connect(&addr, "bench-idle").await });
            started += 1;
        }
        if let Some(done) = pending.join_next().await {
            open.push(done??);
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    tokio::time::sleep(SETTLE).await;
    let after = server_rss(args)?;
    drop(open);

    let mut r = Record::new(format!("idle_conns_{n}"));
    r.set("conns", n as f64);
    r.set("conns_per_sec", n as f64 / secs);
    let mut human = format!("{n} connections in {secs:.2} s");
    if let (Some(b), Some(a)) = (before, after) {
        let delta = a.saturating_sub(b);
        r.set("rss_before_mib", mib(b));
        r.set("rss_mib", mib(a));
        r.set("rss_delta_mib", mib(delta));
        r.set("kib_per_conn", delta as f64 / n as f64);
        human += &format!(
            ", server RSS {:.1} -> {:.1} MiB ({:.1} KiB per connection)",
            mib(b),
            mib(a),
            delta as f64 / n as f64
        );
    }
    r.human = human;
    Ok(r)
}

/// Subscribes to `--subjects` distinct subjects from one connection, reads the server's RSS,
/// then publishes to randomly chosen ones of them and counts deliveries.
pub(crate) async fn subs(args: &Args) -> anyhow::Result<Record> {
    let n = args.subjects.max(1);
    let before = server_rss(args)?;
    let mut sc = Conn::connect(&args.addr, "bench-subs").await?;
    let start = Instant::now();
    let mut ops = BytesMut::with_capacity(64 * 1024);
    for i in 0..n {
        ops.extend_from_slice(format!("SUB bench.subs.{i} {}\r\n", i + 1).as_bytes());
        if ops.len() >= 60 * 1024 {
            sc.wr.write_all(&ops).await?;
            ops.clear();
        }
    }
    sc.wr.write_all(&ops).await?;
    sc.flush().await?;
    let sub_secs = start.elapsed().as_secs_f64().max(1e-9);
    tokio::time::sleep(SETTLE).await;
    let after = server_rss(args)?;

    let sink = Arc::new(Delivered::new(1, false));
    let sub_task = tokio::spawn(subscriber(sc, Arc::clone(&sink), 0));
    let pc = Conn::connect(&args.addr, "bench-subs-pub").await?;
    let payload = [b'x'; 16];
    let per_batch = 1024;
    let mut rng = SplitMix64::new(0x5eed);
    let make = move |k: u64| -> Bytes {
        let mut b = BytesMut::with_capacity(k as usize * 48);
        for _ in 0..k {
            let subject = format!("bench.subs.{}", rng.next_u64() % n as u64);
            put_pub(&mut b, subject.as_bytes(), None, &payload);
        }
        b.freeze()
    };
    let plan = Arc::new(Plan::new(args.msgs, args.duration));
    let pub_start = Instant::now();
    let sent = publish(pc, plan, per_batch, Some(Arc::clone(&sink)), make).await?;
    let drained = sink.wait_for(sent).await;
    let pub_secs = pub_start.elapsed().as_secs_f64().max(1e-9);
    sub_task.abort();
    drained?;

    let rate = sink.total() as f64 / pub_secs;
    let mut r = Record::new(format!("subs_{n}"));
    r.set("subs", n as f64);
    r.set("subs_per_sec", n as f64 / sub_secs);
    r.set("msgs_per_sec", rate);
    r.set("msgs", sink.total() as f64);
    let mut human = format!(
        "{} SUB/s; then {} msgs/s delivered over {n} subjects",
        grouped(n as f64 / sub_secs),
        grouped(rate)
    );
    if let (Some(b), Some(a)) = (before, after) {
        let delta = a.saturating_sub(b);
        r.set("rss_before_mib", mib(b));
        r.set("rss_mib", mib(a));
        r.set("rss_delta_mib", mib(delta));
        r.set("bytes_per_sub", delta as f64 * 1024.0 / n as f64);
        human += &format!(
            "; server RSS {:.1} -> {:.1} MiB ({:.0} B per subscription)",
            mib(b),
            mib(a),
            delta as f64 * 1024.0 / n as f64
        );
    }
    r.human = human;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmrss_is_read_from_status_text() {
        let status = "Name:\tnatsd\nVmPeak:\t  9 kB\nVmRSS:\t   12345 kB\nThreads: 3\n";
        assert_eq!(parse_vmrss(status), Some(12345));
        assert_eq!(parse_vmrss("Name: x\n"), None);
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
        assert!(open_files_limit().is_some());
    }
}
