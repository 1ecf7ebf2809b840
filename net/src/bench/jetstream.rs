//! JetStream scenarios over the raw client protocol, so the bench client is the same code for
//! natsd and nats-server: synchronous and windowed publishing into a file or memory stream, a
//! pull consumer draining a pre-filled stream, and key-value puts and direct gets.
//!
//! Every scenario creates its own stream through the JetStream API (deleting a leftover of the
//! same name first) and deletes it at the end, so runs do not accumulate disk.

use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::hist::Histogram;
use super::proto::{put_pub, server_err, Conn, Event};
use super::{grouped, Args, Record};

/// The JetStream scenarios, by command-line name (not part of `all`: they need `-js`).
pub(crate) const JS_SCENARIOS: [&str; 5] = [
    "js-pub-sync",
    "js-pub-async",
    "js-consume",
    "kv-put",
    "kv-get",
];

/// Publishes in flight at most in `js-pub-async` (and while pre-filling `js-consume`).
pub(crate) const WINDOW: usize = 256;
/// Messages per pull request in `js-consume`.
pub(crate) const PULL_BATCH: usize = 256;
/// Messages pre-filled for `js-consume` (at most `--msgs`): the same stream for every server.
pub(crate) const CONSUME_PREFILL: u64 = 100_000;
/// Time allowed for the pre-fill, which is not measured.
const PREFILL_LIMIT: Duration = Duration::from_secs(20);
/// Distinct keys in the KV scenarios.
const KEYS: usize = 1000;
/// How long one reply may take before the scenario fails.
const REPLY_LIMIT: Duration = Duration::from_secs(10);
/// The bench's reply subjects: `<INBOX>.<token>`, all delivered to subscription 1.
const INBOX: &str = "_INBOX.natsd_bench";

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    /// On disk.
    File,
    /// In memory.
    Memory,
}

impl Storage {
    fn json(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Memory => "memory",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Memory => "mem",
        }
    }

    /// `--storage file|memory`.
    pub(crate) fn parse(v: &str) -> Result<Self, String> {
        match v {
            "file" => Ok(Self::File),
            "memory" | "mem" => Ok(Self::Memory),
            _ => Err(format!("--storage: not file or memory: {v}")),
        }
    }
}

/// What a publish acknowledgement said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PubAck {
    /// Stored as sequence `seq` of `stream`.
    Stored {
        /// Stream name.
        stream: String,
        /// Sequence of the message.
        seq: u64,
    },
    /// The server refused: JetStream error code and description.
    Error(u64, String),
}

/// Parses a PubAck (or any JetStream API reply's `error` object).
pub(crate) fn parse_pub_ack(payload: &[u8]) -> Result<PubAck, String> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(payload)))?;
    if let Some(err) = v.get("error") {
        let code = err.get("err_code").and_then(Value::as_u64).unwrap_or(0);
        let text = err
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Ok(PubAck::Error(code, text));
    }
    match (
        v.get("stream").and_then(Value::as_str),
        v.get("seq").and_then(Value::as_u64),
    ) {
        (Some(stream), Some(seq)) => Ok(PubAck::Stored {
            stream: stream.to_string(),
            seq,
        }),
        _ => Err(format!("not a PubAck: {v}")),
    }
}

/// Whether a header block (`NATS/1.0[ status]\r\n...`) carries no status, i.e. a found message.
pub(crate) fn header_ok(block: &[u8]) -> bool {
    let first = block.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    first.trim_ascii_end() == b"NATS/1.0"
}

/// The stream-create request of the bench streams.
pub(crate) fn stream_config(
    name: &str,
    subject: &str,
    storage: Storage,
    kv: bool,
    replicas: usize,
) -> String {
    let mut v = serde_json::json!({
        "name": name,
        "subjects": [subject],
        "retention": "limits",
        "storage": storage.json(),
        "discard": "old",
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msg_size": -1,
        "max_consumers": -1,
        "num_replicas": replicas,
    });
    if kv {
        // As the clients make a KV bucket: one value per key, rollups, direct gets.
        v["max_msgs_per_subject"] = 1.into();
        v["allow_rollup_hdrs"] = true.into();
        v["deny_delete"] = true.into();
        v["allow_direct"] = true.into();
        v["discard"] = "new".into();
    }
    v.to_string()
}

fn io_err(text: impl Into<String>) -> io::Error {
    io::Error::other(text.into())
}

/// A connection with headers on (direct gets answer with headers) and one inbox subscription.
pub(crate) struct JsConn {
    c: Conn,
    out: BytesMut,
    next: u64,
}

impl JsConn {
    pub(crate) async fn connect(addr: &str) -> io::Result<Self> {
        let mut c = Conn::connect_with_headers(addr, "bench-js").await?;
        c.wr.write_all(format!("SUB {INBOX}.> 1\r\n").as_bytes())
            .await?;
        c.flush().await?;
        Ok(Self {
            c,
            out: BytesMut::with_capacity(64 * 1024),
            next: 0,
        })
    }

    /// Queues a publish with a fresh reply subject.
    fn queue(&mut self, subject: &[u8], payload: &[u8]) {
        self.next += 1;
        let reply = format!("{INBOX}.{}", self.next);
        put_pub(&mut self.out, subject, Some(reply.as_bytes()), payload);
    }

    async fn send(&mut self) -> io::Result<()> {
        let batch = self.out.split();
        self.c.wr.write_all(&batch).await
    }

    /// Reads once; calls `f` with every reply to the inbox (payload, headers included).
    async fn replies(&mut self, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        tokio::time::timeout(REPLY_LIMIT, self.c.inbound.fill(&mut self.c.rd))
            .await
            .map_err(|_| io_err("no reply from the server within 10 s"))??;
        let (mut pings, mut err) = (0, None);
        self.c.inbound.parse(|ev| match ev {
            Event::Msg { payload, .. } => f(payload),
            Event::Ping => pings += 1,
            Event::Err(t) => err = Some(server_err(t)),
            Event::Pong | Event::Other => {}
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        for _ in 0..pings {
            self.c.wr.write_all(b"PONG\r\n").await?;
        }
        Ok(())
    }

    /// One request/reply; returns the reply payload.
    async fn request(&mut self, subject: &str, body: &[u8]) -> io::Result<Vec<u8>> {
        self.queue(subject.as_bytes(), body);
        self.send().await?;
        let mut got = None;
        while got.is_none() {
            self.replies(|p| got = Some(p.to_vec())).await?;
        }
        got.ok_or_else(|| io_err("no reply"))
    }

    /// A JetStream API call; its `error` object becomes an error.
    async fn api(&mut self, subject: &str, body: &str) -> io::Result<Value> {
        let reply = self.request(subject, body.as_bytes()).await?;
        let v: Value = serde_json::from_slice(&reply)
            .map_err(|e| io_err(format!("{subject}: reply is not JSON: {e}")))?;
        if let Some(err) = v.get("error") {
            return Err(io_err(format!("{subject}: {err}")));
        }
        Ok(v)
    }

    /// Deletes `name` if present, then creates it afresh.
    async fn fresh_stream(&mut self, name: &str, config: &str) -> io::Result<()> {
        match self.try_fresh_stream(name, config).await? {
            Some(e) => Err(io_err(format!("$JS.API.STREAM.CREATE.{name}: {e}"))),
            None => Ok(()),
        }
    }

    /// [`JsConn::fresh_stream`], where the server's refusal to create the stream is
    /// `Ok(Some(its error))` (description and code).
    async fn try_fresh_stream(&mut self, name: &str, config: &str) -> io::Result<Option<String>> {
        // A missing stream answers with an error: that is the expected case.
        let _ = self
            .request(&format!("$JS.API.STREAM.DELETE.{name}"), b"")
            .await?;
        let subject = format!("$JS.API.STREAM.CREATE.{name}");
        let reply = self.request(&subject, config.as_bytes()).await?;
        let v: Value = serde_json::from_slice(&reply)
            .map_err(|e| io_err(format!("{subject}: reply is not JSON: {e}")))?;
        Ok(v.get("error").map(|e| {
            match (
                e.get("description").and_then(Value::as_str),
                e.get("err_code").and_then(Value::as_u64),
            ) {
                (Some(d), Some(code)) => format!("{d} ({code})"),
                _ => e.to_string(),
            }
        }))
    }

    async fn delete_stream(&mut self, name: &str) -> io::Result<()> {
        self.api(&format!("$JS.API.STREAM.DELETE.{name}"), "")
            .await
            .map(drop)
    }

    /// Publishes one message and waits for its PubAck.
    async fn publish_sync(&mut self, subject: &[u8], payload: &[u8]) -> io::Result<()> {
        self.queue(subject, payload);
        self.send().await?;
        let mut ack = None;
        while ack.is_none() {
            self.replies(|p| ack = Some(parse_pub_ack(p))).await?;
        }
        check_ack(ack)
    }

    /// Publishes up to `budget` messages before `deadline` with at most `window` unacknowledged;
    /// returns how many were stored (every one acknowledged).
    async fn publish_windowed(
        &mut self,
        subject: &[u8],
        payload: &[u8],
        window: usize,
        budget: u64,
        deadline: Instant,
    ) -> io::Result<u64> {
        let (mut sent, mut acked, mut failure) = (0u64, 0u64, None);
        loop {
            let open = sent < budget && Instant::now() < deadline;
            if open {
                while sent < budget && sent - acked < window as u64 {
                    self.queue(subject, payload);
                    sent += 1;
                }
                self.send().await?;
            }
            if acked == sent {
                break;
            }
            self.replies(|p| {
                acked += 1;
                if let Err(e) = check_ack(Some(parse_pub_ack(p))) {
                    failure.get_or_insert(e);
                }
            })
            .await?;
            if let Some(e) = failure.take() {
                return Err(e);
            }
        }
        Ok(acked)
    }
}

fn check_ack(ack: Option<Result<PubAck, String>>) -> io::Result<()> {
    match ack {
        Some(Ok(PubAck::Stored { .. })) => Ok(()),
        Some(Ok(PubAck::Error(code, text))) => {
            Err(io_err(format!("publish refused: {code} {text}")))
        }
        Some(Err(e)) => Err(io_err(e)),
        None => Err(io_err("no PubAck")),
    }
}

fn latency_fields(r: &mut Record, h: &Histogram, secs: f64) {
    let us = |q: f64| h.quantile(q) as f64 / 1000.0;
    r.set("msgs_per_sec", h.count() as f64 / secs);
    r.set("p50_us", us(0.5));
    r.set("p99_us", us(0.99));
    r.set("p999_us", us(0.999));
    r.set("max_us", h.max() as f64 / 1000.0);
    r.set("msgs", h.count() as f64);
    r.set("secs", secs);
    r.human = format!(
        "{} msgs/s, p50 {:.1} µs, p99 {:.1} µs ({} msgs in {:.2} s)",
        grouped(h.count() as f64 / secs),
        us(0.5),
        us(0.99),
        grouped(h.count() as f64),
        secs
    );
}

fn rate_fields(r: &mut Record, n: u64, secs: f64, size: usize, what: &str) {
    let rate = n as f64 / secs;
    r.set("msgs_per_sec", rate);
    r.set("mb_per_sec", rate * size as f64 / 1e6);
    r.set("msgs", n as f64);
    r.set("secs", secs);
    r.human = format!(
        "{} msgs/s {what} ({:.1} MB/s payload), {} msgs in {:.2} s",
        grouped(rate),
        rate * size as f64 / 1e6,
        grouped(n as f64),
        secs
    );
}

/// `js-pub-sync`: one publisher, one message at a time, each waiting for its PubAck.
pub(crate) async fn pub_sync(args: &Args, storage: Storage, size: usize) -> anyhow::Result<Record> {
    let mut c = JsConn::connect(&args.addr).await?;
    let (name, subject) = ("BENCH_SYNC", "bench.js.sync");
    let mut r = Record::new(format!(
        "js_pub_sync_{}_{size}B{}",
        storage.short(),
        replicas_suffix(args)
    ));
    let config = stream_config(name, subject, storage, false, args.replicas);
    if let Some(e) = c.try_fresh_stream(name, &config).await? {
        return Ok(refused(r, e));
    }
    let payload = vec![b'x'; size];
    let mut h = Histogram::default();
    let start = Instant::now();
    let deadline = start + args.duration;
    while h.count() < args.msgs && Instant::now() < deadline {
        let t0 = Instant::now();
        c.publish_sync(subject.as_bytes(), &payload).await?;
        h.record(t0.elapsed());
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    c.delete_stream(name).await?;
    latency_fields(&mut r, &h, secs);
    r.set("size", size as f64);
    Ok(r)
}

/// `js-pub-async`: one publisher keeping [`WINDOW`] publishes unacknowledged.
pub(crate) async fn pub_async(
    args: &Args,
    storage: Storage,
    size: usize,
) -> anyhow::Result<Record> {
    let mut c = JsConn::connect(&args.addr).await?;
    let (name, subject) = ("BENCH_ASYNC", "bench.js.async");
    let mut r = Record::new(format!(
        "js_pub_async_{}_{size}B_w{WINDOW}{}",
        storage.short(),
        replicas_suffix(args)
    ));
    let config = stream_config(name, subject, storage, false, args.replicas);
    if let Some(e) = c.try_fresh_stream(name, &config).await? {
        return Ok(refused(r, e));
    }
    let payload = vec![b'x'; size];
    let start = Instant::now();
    let n = c
        .publish_windowed(
            subject.as_bytes(),
            &payload,
            WINDOW,
            args.msgs,
            start + args.duration,
        )
        .await?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    c.delete_stream(name).await?;
    rate_fields(&mut r, n, secs, size, "stored");
    r.set("size", size as f64);
    Ok(r)
}

/// `js-consume`: pre-fills a file stream with [`CONSUME_PREFILL`] messages, then drains it
/// through an ephemeral pull consumer (ack none) with [`PULL_BATCH`]-message pulls, two in
/// flight, until it is empty or the duration is up.
pub(crate) async fn consume(args: &Args, size: usize) -> anyhow::Result<Record> {
    let mut c = JsConn::connect(&args.addr).await?;
    let (name, subject) = ("BENCH_CONSUME", "bench.js.consume");
    let config = stream_config(name, subject, Storage::File, false, args.replicas);
    c.fresh_stream(name, &config).await?;
    let payload = vec![b'x'; size];
    let total = c
        .publish_windowed(
            subject.as_bytes(),
            &payload,
            WINDOW,
            args.msgs.min(CONSUME_PREFILL),
            Instant::now() + PREFILL_LIMIT,
        )
        .await?;
    let created = c
        .api(
            &format!("$JS.API.CONSUMER.CREATE.{name}"),
            &serde_json::json!({
                "stream_name": name,
                "config": {"ack_policy": "none", "deliver_policy": "all", "max_waiting": 512},
            })
            .to_string(),
        )
        .await?;
    let consumer = created
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("consumer create reply without a name: {created}"))?
        .to_string();
    let next = format!("$JS.API.CONSUMER.MSG.NEXT.{name}.{consumer}");
    let start = Instant::now();
    let deadline = start + args.duration;
    let (mut requested, mut got) = (0u64, 0u64);
    loop {
        // Two pulls outstanding keep the server busy while the client counts; past the
        // deadline no new pull goes out and the outstanding ones are drained.
        let open = requested == 0 || Instant::now() < deadline;
        while open && requested < total && requested < got + 2 * PULL_BATCH as u64 {
            let batch = (total - requested).min(PULL_BATCH as u64);
            let body = format!("{{\"batch\":{batch},\"expires\":5000000000}}");
            c.queue(next.as_bytes(), body.as_bytes());
            requested += batch;
        }
        if got >= requested {
            break;
        }
        c.send().await?;
        let mut n = 0;
        // Stream messages were published without headers; a status (408/409) would have them.
        c.replies(|p| n += u64::from(!p.starts_with(b"NATS/1.0")))
            .await?;
        got += n;
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    c.delete_stream(name).await?;
    let mut r = Record::new(format!(
        "js_consume_file_{size}B_b{PULL_BATCH}{}",
        replicas_suffix(args)
    ));
    rate_fields(&mut r, got, secs, size, "consumed");
    r.set("size", size as f64);
    Ok(r)
}

/// The KV bucket of the KV scenarios, `keys` keys written once (not timed).
async fn kv_bucket(c: &mut JsConn, payload: &[u8], keys: usize) -> io::Result<()> {
    c.fresh_stream(
        "KV_bench",
        &stream_config("KV_bench", "$KV.bench.>", Storage::File, true, 1),
    )
    .await?;
    for k in 0..keys {
        c.queue(format!("$KV.bench.k{k}").as_bytes(), payload);
    }
    c.send().await?;
    let (mut acked, mut failure) = (0, None);
    while acked < keys {
        c.replies(|p| {
            acked += 1;
            if let Err(e) = check_ack(Some(parse_pub_ack(p))) {
                failure.get_or_insert(e);
            }
        })
        .await?;
    }
    failure.map_or(Ok(()), Err)
}

/// `kv-put`: one client updating [`KEYS`] keys round-robin, each put waiting for its ack.
pub(crate) async fn kv_put(args: &Args, size: usize) -> anyhow::Result<Record> {
    let mut c = JsConn::connect(&args.addr).await?;
    let payload = vec![b'v'; size];
    kv_bucket(&mut c, &payload, 0).await?;
    let subjects: Vec<String> = (0..KEYS).map(|k| format!("$KV.bench.k{k}")).collect();
    let mut h = Histogram::default();
    let start = Instant::now();
    let deadline = start + args.duration;
    while h.count() < args.msgs && Instant::now() < deadline {
        let subject = &subjects[h.count() as usize % KEYS];
        let t0 = Instant::now();
        c.publish_sync(subject.as_bytes(), &payload).await?;
        h.record(t0.elapsed());
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    c.delete_stream("KV_bench").await?;
    let mut r = Record::new(format!("kv_put_{size}B"));
    latency_fields(&mut r, &h, secs);
    Ok(r)
}

/// `kv-get`: one client reading [`KEYS`] keys round-robin with direct gets (as clients read a
/// bucket that allows them), one at a time.
pub(crate) async fn kv_get(args: &Args, size: usize) -> anyhow::Result<Record> {
    let mut c = JsConn::connect(&args.addr).await?;
    let payload = vec![b'v'; size];
    kv_bucket(&mut c, &payload, KEYS).await?;
    let bodies: Vec<String> = (0..KEYS)
        .map(|k| format!("{{\"last_by_subj\":\"$KV.bench.k{k}\"}}"))
        .collect();
    let mut h = Histogram::default();
    let start = Instant::now();
    let deadline = start + args.duration;
    while h.count() < args.msgs && Instant::now() < deadline {
        let body = &bodies[h.count() as usize % KEYS];
        let t0 = Instant::now();
        let reply = c
            .request("$JS.API.DIRECT.GET.KV_bench", body.as_bytes())
            .await?;
        h.record(t0.elapsed());
        if !header_ok(&reply) || reply.len() < size {
            anyhow::bail!(
                "direct get failed: {}",
                String::from_utf8_lossy(&reply[..reply.len().min(200)])
            );
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    c.delete_stream("KV_bench").await?;
    let mut r = Record::new(format!("kv_get_{size}B"));
    latency_fields(&mut r, &h, secs);
    Ok(r)
}

/// `_r<N>` for replicated streams, nothing for R1 (the names of earlier runs).
fn replicas_suffix(args: &Args) -> String {
    if args.replicas > 1 {
        format!("_r{}", args.replicas)
    } else {
        String::new()
    }
}

/// The record of a scenario whose stream the server would not create: its error, no figures.
fn refused(mut r: Record, e: String) -> Record {
    r.human = format!("n/a: the server refused the stream: {e}");
    r.error = Some(e);
    r
}

/// Runs one JetStream scenario: one record per storage kind and payload size.
pub(crate) async fn run(args: &Args, scenario: &str) -> anyhow::Result<Vec<Record>> {
    let sizes = args.sizes.clone().unwrap_or_else(|| vec![128]);
    let storages: Vec<Storage> = match args.storage {
        Some(st) => vec![st],
        None => vec![Storage::File, Storage::Memory],
    };
    let mut out = Vec::new();
    for size in sizes {
        match scenario {
            "js-pub-sync" => {
                for &st in &storages {
                    out.push(pub_sync(args, st, size).await?);
                }
            }
            "js-pub-async" => {
                for &st in &storages {
                    out.push(pub_async(args, st, size).await?);
                }
            }
            "js-consume" => out.push(consume(args, size).await?),
            "kv-put" => out.push(kv_put(args, size).await?),
            _ => out.push(kv_get(args, size).await?),
        }
    }
    Ok(out)
}
