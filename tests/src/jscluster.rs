//! Shared helpers of the clustered-JetStream black-box tests: a mesh of servers with
//! JetStream on, a system account `SYS` (user `sys`/`sys`) and a JetStream account `APP`
//! (user `a`/`a`); clients of it; waits for the meta group and a stream's group; API
//! requests asked again while no server answers; publishes retried until acknowledged;
//! killing and signalling a node.
//!
//! Every wait is bounded by a deadline the caller passes (each test file has its own sense
//! of how long an election may take), and polls rather than sleeps for timing.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::cluster::{monitor_get, TestCluster};
use crate::ServerKind;

/// How long one request waits for its answer before it is asked again.
pub const PER_TRY: Duration = Duration::from_secs(2);

/// How long a killed server may take to be gone.
const GONE: Duration = Duration::from_secs(5);

/// The top-level config of a node storing under `store_dir`: `js_extra` goes inside the
/// `jetstream` block, `extra` after the accounts.
pub fn top(store_dir: &Path, js_extra: &str, extra: &str) -> String {
    format!(
        "jetstream {{\n  store_dir: \"{}\"\n  {js_extra}\n}}\nsystem_account: SYS\naccounts {{\n  SYS {{ users: [{{ user: sys, password: sys }}] }}\n  APP {{ jetstream: enabled, users: [{{ user: a, password: a }}] }}\n}}\n{extra}",
        store_dir.display()
    )
}

/// Starts `n` servers of `kind` routed together, each with [`top`] (nothing extra) in its
/// own temp store directory. Does not wait for the meta group: see [`meta_leader`]. The
/// directories live as long as the returned `Vec`.
pub async fn start(kind: ServerKind, n: usize) -> (TestCluster, Vec<tempfile::TempDir>) {
    start_with(kind, n, "", |_| String::new()).await
}

/// [`start`] with `js_extra` inside each node's `jetstream` block and `extra(i)` appended
/// to node `i`'s config.
pub async fn start_with(
    kind: ServerKind,
    n: usize,
    js_extra: &str,
    extra: impl Fn(usize) -> String,
) -> (TestCluster, Vec<tempfile::TempDir>) {
    let dirs: Vec<tempfile::TempDir> = (0..n)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let kinds = vec![kind; n];
    let cluster =
        TestCluster::start_mesh(&kinds, |i| top(dirs[i].path(), js_extra, &extra(i))).await;
    (cluster, dirs)
}

/// [`start`] with node `i` tagged `tags[i]` (`server_tags`; comma-separated for several):
/// as many servers as tags.
pub async fn start_tagged(
    kind: ServerKind,
    tags: &[&str],
) -> (TestCluster, Vec<tempfile::TempDir>) {
    let lists: Vec<String> = tags
        .iter()
        .map(|t| {
            let quoted: Vec<String> = t.split(',').map(|x| format!("\"{x}\"")).collect();
            format!("server_tags: [{}]\n", quoted.join(", "))
        })
        .collect();
    start_with(kind, tags.len(), "", |i| lists[i].clone()).await
}

/// The servers a stream's group is on by a stream info answer (leader and replicas),
/// sorted.
pub fn placed_on(info: &Value) -> Vec<String> {
    let mut on: Vec<String> = info["cluster"]["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    on.extend(info["cluster"]["leader"].as_str().map(str::to_owned));
    on.sort();
    on
}

/// A client of node `i` as `user` (whose password is its name).
pub async fn client_as(c: &TestCluster, i: usize, user: &str) -> async_nats::Client {
    c.nodes[i]
        .server
        .client_with(async_nats::ConnectOptions::with_user_and_password(
            user.into(),
            user.into(),
        ))
        .await
}

/// A client of node `i` in the JetStream account.
pub async fn app(c: &TestCluster, i: usize) -> async_nats::Client {
    client_as(c, i, "a").await
}

/// Waits until node 0's `/jsz` names a meta leader of `size` servers, within `limit`: its
/// name.
pub async fn meta_leader(c: &TestCluster, size: u64, limit: Duration) -> String {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let jsz = monitor_get(c.nodes[0].http_port, "/jsz").await;
        let m = jsz.as_ref().and_then(|j| j.get("meta_cluster"));
        let leader = m.and_then(|m| m["leader"].as_str()).unwrap_or("");
        if !leader.is_empty() && m.and_then(|m| m["cluster_size"].as_u64()) == Some(size) {
            return leader.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no meta leader: {jsz:?}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One request (`Null` sends an empty body): the JSON answer, or `None` when none came
/// within `limit`.
pub async fn ask(
    client: &async_nats::Client,
    subject: &str,
    body: &Value,
    limit: Duration,
) -> Option<Value> {
    let payload = Bytes::from(if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    });
    let r = tokio::time::timeout(limit, client.request(subject.to_owned(), payload)).await;
    match r {
        Ok(Ok(m)) => Some(serde_json::from_slice(&m.payload).expect("JSON reply")),
        _ => None,
    }
}

/// An API request, asked again (each try waiting `per_try`) until some server answers
/// (none does while the meta group or the stream's group has no leader), within `limit`.
pub async fn api_tries(
    client: &async_nats::Client,
    subject: &str,
    body: &Value,
    limit: Duration,
    per_try: Duration,
) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = ask(client, subject, body, per_try).await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer to {subject} within {limit:?}"
        );
    }
}

/// [`api_tries`] with [`PER_TRY`] per request.
pub async fn api_within(
    client: &async_nats::Client,
    subject: &str,
    body: Value,
    limit: Duration,
) -> Value {
    api_tries(client, subject, &body, limit, PER_TRY).await
}

/// The config of a file stream `name` of `replicas` replicas on subjects `<name>.>` (the
/// name in lower case).
pub fn stream_cfg(name: &str, replicas: u64) -> Value {
    json!({
        "name": name,
        "subjects": [format!("{}.>", name.to_lowercase())],
        "num_replicas": replicas,
        "storage": "file",
    })
}

/// Creates the stream `cfg` describes (asked within `limit`) and asserts that worked: the
/// create answer.
pub async fn create(client: &async_nats::Client, cfg: Value, limit: Duration) -> Value {
    let name = cfg["name"].as_str().expect("stream name").to_owned();
    let v = api_within(client, &format!("$JS.API.STREAM.CREATE.{name}"), cfg, limit).await;
    assert!(v.get("error").is_none(), "{v}");
    v
}

/// Stream info, asked until it shows a leader and `ok` holds, within `limit` (each request
/// also within `limit`).
pub async fn info_until(
    client: &async_nats::Client,
    name: &str,
    limit: Duration,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    let subject = format!("$JS.API.STREAM.INFO.{name}");
    loop {
        let v = api_within(client, &subject, Value::Null, limit).await;
        let led = v["cluster"]["leader"]
            .as_str()
            .is_some_and(|l| !l.is_empty());
        if led && ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream info never fit: {v}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes and waits up to `wait` for the PubAck: the sequence, or `None`.
pub async fn publish_within(
    js: &async_nats::jetstream::Context,
    subject: &str,
    payload: String,
    wait: Duration,
) -> Option<u64> {
    let ack = tokio::time::timeout(wait, async {
        js.publish(subject.to_owned(), Bytes::from(payload))
            .await
            .ok()?
            .await
            .ok()
    })
    .await;
    ack.ok().flatten().map(|a| a.sequence)
}

/// Publishes each of `payloads` on `subject`, each retried until acknowledged, all within
/// `limit`: the acknowledged (sequence, payload) pairs.
pub async fn publish_all(
    js: &async_nats::jetstream::Context,
    subject: &str,
    payloads: impl IntoIterator<Item = String>,
    limit: Duration,
) -> Vec<(u64, String)> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut acked = Vec::new();
    for p in payloads {
        loop {
            if let Some(s) = publish_within(js, subject, p.clone(), PER_TRY).await {
                acked.push((s, p));
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "publishes not acknowledged"
            );
        }
    }
    acked
}

/// Publishes `p0`..`p<n-1>` on `subject` as [`publish_all`] does: the last sequence (0 for
/// none).
pub async fn publish_n(
    js: &async_nats::jetstream::Context,
    subject: &str,
    n: usize,
    limit: Duration,
) -> u64 {
    let acked = publish_all(js, subject, (0..n).map(|i| format!("p{i}")), limit).await;
    acked.last().map_or(0, |a| a.0)
}

/// Node index of server `name` (`n<i>`).
pub fn index_of(name: &str) -> usize {
    name.trim_start_matches('n')
        .parse()
        .expect("node name n<i>")
}

/// Node index of the stream leader a stream info answer names.
pub fn leader_of(info: &Value) -> usize {
    index_of(info["cluster"]["leader"].as_str().expect("a stream leader"))
}

/// Sends node `i` the signal `sig` (as `kill` takes it: `-9`, `-STOP`, `-CONT`).
pub fn signal(c: &TestCluster, i: usize, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &c.nodes[i].server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Kills node `i` with SIGKILL and waits for it to be gone.
pub async fn kill(c: &mut TestCluster, i: usize) {
    signal(c, i, "-9");
    let deadline = tokio::time::Instant::now() + GONE;
    while c.nodes[i].server.is_running() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "killed server still runs"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (padded), as the API carries message data.
pub fn b64(data: &[u8]) -> String {
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        s.push(B64[(n >> 18) as usize & 63] as char);
        s.push(B64[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

/// Decodes standard base64 (padding ignored); panics on a character outside the alphabet.
pub fn b64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = B64.iter().position(|x| *x == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
