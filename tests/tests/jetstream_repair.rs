//! Replicas of a clustered stream that fell out of step with their group and are rebuilt
//! from their peers: an old stream leader that stored writes no quorum took (it comes back
//! diverged), a follower whose message block was damaged on disk, and a follower that missed
//! so much that the group snapshotted past its log. Each ends healthy (`/healthz`) and
//! holding exactly the acknowledged messages, checked on every replica by moving the stream's
//! leadership to it. `/jsz` shows replicas that cannot be repaired as in trouble.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use natsd_tests::cluster::{monitor_get, TestCluster};
use natsd_tests::jscluster::{
    self, api_within, app, b64, client_as, index_of, kill, leader_of, meta_leader, publish_within,
    signal, start, stream_cfg,
};
use natsd_tests::ServerKind;
use serde_json::{json, Value};

/// How long the cluster may take to elect what a step needs (nats-server 2.9.10, on a
/// loaded machine, once took longer than 20 s to answer again after a server was killed).
const ELECTION: Duration = Duration::from_secs(40);
/// How long a restarted replica may take to repair itself.
const REPAIR: Duration = Duration::from_secs(60);

async fn api(client: &async_nats::Client, subject: &str, body: Value) -> Value {
    api_within(client, subject, body, ELECTION).await
}

/// Publishes each of `payloads`, retried until acknowledged; the acked (sequence, payload).
async fn publish_all(
    js: &async_nats::jetstream::Context,
    subject: &str,
    payloads: impl IntoIterator<Item = String>,
) -> Vec<(u64, String)> {
    jscluster::publish_all(js, subject, payloads, ELECTION).await
}

async fn create(client: &async_nats::Client, name: &str) {
    jscluster::create(client, stream_cfg(name, 3), ELECTION).await;
}

/// Stream info, asked until it shows a leader and `ok` holds.
async fn info_until(client: &async_nats::Client, name: &str, ok: impl Fn(&Value) -> bool) -> Value {
    jscluster::info_until(client, name, ELECTION, ok).await
}

/// Waits until node `i`'s `/healthz` is ok.
async fn healthy(c: &TestCluster, i: usize) {
    let deadline = tokio::time::Instant::now() + REPAIR;
    loop {
        let h = monitor_get(c.nodes[i].http_port, "/healthz").await;
        if h.as_ref().is_some_and(|h| h["status"] == "ok") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {i} never healthy: {h:?}\n{}",
            c.nodes[i].server.log()
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until node `i`'s log says its replica of `stream` was repaired (natsd).
async fn repaired(c: &TestCluster, i: usize, stream: &str) -> String {
    let want = format!("JetStream stream {stream} in account APP repaired");
    let deadline = tokio::time::Instant::now() + REPAIR;
    loop {
        let log = c.nodes[i].server.log();
        if log.contains(&want) {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {i} never repaired {stream}:\n{log}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Moves the stream's leadership around until every server led it once, and checks on
/// each that the stream holds exactly `acked` (and nothing else). Stepdowns choose their
/// successor themselves, so a server that led already is stopped (SIGSTOP) while the
/// leadership moves on, once the leader sees it offline
/// (or not current).
async fn every_replica_holds(c: &TestCluster, stream: &str, acked: &[(u64, String)]) {
    let mut clients = Vec::new();
    for i in 0..c.nodes.len() {
        clients.push(app(c, i).await);
    }
    let last = acked.iter().map(|a| a.0).max().unwrap_or(0);
    let mut checked = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + REPAIR;
    loop {
        let v = info_until(&clients[0], stream, |_| true).await;
        let leader = leader_of(&v);
        let client = &clients[leader];
        if checked.insert(leader) {
            assert_eq!(v["state"]["messages"], acked.len(), "n{leader}: {v}");
            assert_eq!(v["state"]["last_seq"], last, "n{leader}: {v}");
            for (seq, payload) in acked {
                let got = api(
                    client,
                    &format!("$JS.API.STREAM.MSG.GET.{stream}"),
                    json!({"seq": seq}),
                )
                .await;
                let data = got["message"]["data"].as_str().unwrap_or_default();
                assert_eq!(data, b64(payload.as_bytes()), "n{leader} seq {seq}: {got}");
            }
        }
        if checked.len() == c.nodes.len() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leadership never reached every server: {checked:?}"
        );
        // A server other than the leader that led already sits this stepdown out.
        let parked = (0..c.nodes.len()).find(|i| *i != leader && checked.contains(i));
        if let Some(p) = parked {
            signal(c, p, "-STOP");
            let pname = format!("n{p}");
            info_until(client, stream, |v| {
                v["cluster"]["replicas"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| {
                        // natsd says offline; nats-server 2.9 only stops calling it current.
                        r["name"] == pname.as_str()
                            && (r["offline"] == true || r["current"] == false)
                    })
            })
            .await;
        }
        let sd = api(
            client,
            &format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}"),
            Value::Null,
        )
        .await;
        assert_eq!(sd["success"], true, "{sd}");
        let lname = format!("n{leader}");
        let next = (0..c.nodes.len())
            .find(|i| !checked.contains(i))
            .expect("an unvisited server");
        info_until(&clients[next], stream, |v| {
            v["cluster"]["leader"] != lname.as_str()
        })
        .await;
        if let Some(p) = parked {
            signal(c, p, "-CONT");
        }
    }
}

fn payloads(tag: &str, n: usize) -> impl Iterator<Item = String> + '_ {
    (0..n).map(move |i| format!("{tag}-{i}-{}", "x".repeat(40)))
}

/// The stream leader stores writes while both followers are down (no quorum: never
/// acknowledged), is killed, and the followers come back and elect a leader that takes other
/// writes at those sequences. The old leader restarts diverged, repairs itself from its peers, turns
/// healthy, and then holds exactly the acknowledged messages, as every replica does.
/// natsd only: nats-server 2.9.10 keeps the old leader's unacknowledged write (led by it
/// again, the stream answers a MSG.GET of that sequence with the write no quorum took, not
/// the acknowledged one).
async fn a_diverged_old_leader_repairs_itself(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "D").await;
    let v = info_until(&c0, "D", |_| true).await;
    let l = leader_of(&v);
    let (f, g) = ((l + 1) % 3, (l + 2) % 3);
    let js = async_nats::jetstream::new(app(&cluster, l).await);
    let mut acked = publish_all(&js, "d.x", payloads("before", 5)).await;

    // The followers go away for good while the leader stores (a SIGSTOP would not do: a
    // stopped server's socket buffers still take the leader's appends, and the next leader
    // may commit them).
    kill(&mut cluster, f).await;
    kill(&mut cluster, g).await;
    for p in payloads("lost", 3) {
        assert_eq!(
            publish_within(&js, "d.x", p, Duration::from_millis(500)).await,
            None,
            "acknowledged without a quorum"
        );
    }
    kill(&mut cluster, l).await;
    eprintln!("step: old leader n{l} killed with 3 unacknowledged writes");
    cluster.restart(f).await;
    cluster.restart(g).await;

    let js = async_nats::jetstream::new(app(&cluster, f).await);
    acked.extend(publish_all(&js, "d.x", payloads("after", 5)).await);
    assert_eq!(acked.last().map(|a| a.0), Some(10), "{acked:?}");

    eprintln!("step: new leader acknowledged {} in all", acked.len());
    cluster.restart(l).await;
    cluster.wait_mesh().await;
    eprintln!("step: old leader n{l} back");
    if kind == ServerKind::Natsd {
        let log = repaired(&cluster, l, "D").await;
        assert!(
            log.contains("JetStream stream D in account APP is out of step"),
            "{log}"
        );
    }
    healthy(&cluster, l).await;
    every_replica_holds(&cluster, "D", &acked).await;
}

/// The stream's group directory on node `i` (natsd's layout).
fn group_dir(dirs: &[tempfile::TempDir], i: usize) -> PathBuf {
    let raft = dirs[i].path().join("jetstream").join("_raft");
    std::fs::read_dir(&raft)
        .expect("raft dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n != "_meta_"))
        .expect("a stream group")
}

/// Flips one byte in the middle of the biggest block file in `dir`.
fn corrupt_a_block(dir: &Path) {
    let blk = std::fs::read_dir(dir)
        .expect("store dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "blk"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a block file");
    let mut bytes = std::fs::read(&blk).expect("read block");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&blk, bytes).expect("write block");
}

/// A follower stopped, a byte of its message block flipped, restarted: it reports the
/// damage, repairs itself from its peers, and ends holding what they hold (natsd's files).
async fn a_follower_with_a_damaged_block_repairs_itself(kind: ServerKind) {
    let (mut cluster, dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "B").await;
    let v = info_until(&c0, "B", |_| true).await;
    let l = leader_of(&v);
    let f = (l + 1) % 3;
    let js = async_nats::jetstream::new(app(&cluster, l).await);
    let mut acked = publish_all(&js, "b.x", payloads("m", 40)).await;
    // The follower applied them all before it stops.
    let fname = format!("n{f}");
    info_until(&c0, "B", |v| {
        v["cluster"]["replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["name"] == fname.as_str() && r["current"] == true)
    })
    .await;
    kill(&mut cluster, f).await;
    corrupt_a_block(&group_dir(&dirs, f).join("msgs"));
    acked.extend(publish_all(&js, "b.x", payloads("n", 5)).await);

    cluster.restart(f).await;
    cluster.wait_mesh().await;
    let log = repaired(&cluster, f, "B").await;
    assert!(log.contains("stream store corrupt"), "{log}");
    healthy(&cluster, f).await;
    let aside = std::fs::read_dir(group_dir(&dirs, f))
        .expect("group dir")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("damaged-"));
    assert!(aside, "the damaged store was set aside, not deleted");
    every_replica_holds(&cluster, "B", &acked).await;
}

/// The replica entries of `stream` in node `i`'s `/jsz?accounts=1&streams=1`.
async fn jsz_replicas(c: &TestCluster, i: usize, stream: &str) -> Vec<Value> {
    let jsz = monitor_get(c.nodes[i].http_port, "/jsz?accounts=1&streams=1").await;
    jsz.as_ref()
        .and_then(|j| j["account_details"].as_array())
        .into_iter()
        .flatten()
        .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
        .filter(|d| d["name"] == stream)
        .flat_map(|d| {
            d["cluster"]["replicas"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// Every replica of a stream restarts over a damaged block, so none can be repaired from a
/// peer: a server's `/jsz?accounts=1&streams=1` shows its own replica entry with `trouble`
/// saying why, and its peers' as being repaired. natsd only (nats-server has no such field).
async fn jsz_shows_replicas_in_trouble(kind: ServerKind) {
    let (mut cluster, dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "T").await;
    let v = info_until(&c0, "T", |_| true).await;
    let l = leader_of(&v);
    let js = async_nats::jetstream::new(app(&cluster, l).await);
    publish_all(&js, "t.x", payloads("m", 40)).await;
    info_until(&c0, "T", |v| {
        v["cluster"]["replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|r| r["current"] == true)
    })
    .await;
    let healthy_view = jsz_replicas(&cluster, l, "T").await;
    assert!(
        healthy_view.len() == 2 && healthy_view.iter().all(|r| r.get("trouble").is_none()),
        "{healthy_view:?}"
    );
    for i in 0..3 {
        kill(&mut cluster, i).await;
        corrupt_a_block(&group_dir(&dirs, i).join("msgs"));
    }
    for i in 0..3 {
        cluster.restart(i).await;
    }
    let me = format!("n{l}");
    let deadline = tokio::time::Instant::now() + REPAIR;
    loop {
        let rs = jsz_replicas(&cluster, l, "T").await;
        let own = rs
            .iter()
            .find(|r| r["name"] == me.as_str())
            .and_then(|r| r["trouble"].as_str());
        let peers = rs
            .iter()
            .filter(|r| r["name"] != me.as_str() && r["trouble"] == "being repaired")
            .count();
        if let (Some(own), 2) = (own, peers) {
            assert!(own.contains("stream store corrupt"), "{rs:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no trouble shown: {rs:?}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every server of a memory stream restarts after its group snapshotted: each replica's
/// memory is empty beneath its Raft snapshot and no peer holds the messages, so once they all
/// say so they go on without the messages before the snapshot; the sequences go on, and the
/// stream takes publishes again. natsd only (nats-server 2.9.10 brings a memory stream back
/// empty, see `jetstream_cluster_memory.rs`).
async fn memory_replicas_past_their_snapshot_go_on_without(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    let mut cfg = stream_cfg("MS", 3);
    cfg["storage"] = json!("memory");
    jscluster::create(&c0, cfg, ELECTION).await;
    let v = info_until(&c0, "MS", |_| true).await;
    let js = async_nats::jetstream::new(app(&cluster, leader_of(&v)).await);
    // Past the group's snapshot threshold (8192 entries), one entry per message.
    const BULK: u64 = 8_400;
    publish_many(&js, "ms.x", 0, BULK, 1).await;
    drop(js);
    for i in 0..3 {
        kill(&mut cluster, i).await;
    }
    for i in 0..3 {
        cluster.restart(i).await;
    }
    meta_leader(&cluster, 3, ELECTION).await;
    let c = app(&cluster, 1).await;
    let deadline = tokio::time::Instant::now() + REPAIR;
    let v = loop {
        let v = api(&c, "$JS.API.STREAM.INFO.MS", Value::Null).await;
        let led = v["cluster"]["leader"]
            .as_str()
            .is_some_and(|l| !l.is_empty());
        if led && v["state"]["last_seq"] == BULK {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream never came back: {v}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let kept = v["state"]["messages"].as_u64().unwrap();
    assert!(kept < BULK, "messages before the snapshot are gone: {v}");
    let lost = (0..3).any(|i| {
        cluster.nodes[i]
            .server
            .log()
            .contains("lost its messages (memory storage)")
    });
    assert!(lost, "no replica said it went on without its messages");
    let js = async_nats::jetstream::new(c);
    let seq = jscluster::publish_n(&js, "ms.y", 1, ELECTION).await;
    assert_eq!(seq, BULK + 1);
}

/// Publishes `bulk-<seq>` for the `n` sequences after `after`, with at most `window` acks
/// awaited at once; every one must be acknowledged, at its sequence.
async fn publish_many(
    js: &async_nats::jetstream::Context,
    subject: &str,
    after: u64,
    n: u64,
    window: u64,
) {
    let mut next = after + 1;
    while next <= after + n {
        let upto = (next + window).min(after + n + 1);
        let mut acks = Vec::new();
        for i in next..upto {
            let ack = js
                .publish(subject.to_owned(), Bytes::from(format!("bulk-{i}")))
                .await
                .expect("publish");
            acks.push(ack);
        }
        for (i, ack) in (next..upto).zip(acks) {
            let ack = tokio::time::timeout(ELECTION, ack)
                .await
                .expect("ack in time")
                .expect("ack");
            assert_eq!(ack.sequence, i);
        }
        next = upto;
    }
}

/// A follower down while so many messages are published that the group snapshots and
/// drops the log it missed: back, it is sent the leader's snapshot (which holds no
/// messages), finds its store short of it, and catches up from its peers (natsd).
async fn a_follower_past_the_log_catches_up_from_a_snapshot(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "C").await;
    let v = info_until(&c0, "C", |_| true).await;
    let l = leader_of(&v);
    let f = (l + 1) % 3;
    let js = async_nats::jetstream::new(app(&cluster, l).await);
    let acked = publish_all(&js, "c.x", payloads("m", 10)).await;
    kill(&mut cluster, f).await;
    // Past the group's snapshot threshold (8192 entries) and the log it keeps after one.
    // One message in flight at a time: the stream's proposer puts every message that
    // arrives during a commit into one entry, and each must be an entry of its own here.
    const BULK: u64 = 9_500;
    publish_many(&js, "c.x", 10, BULK, 1).await;
    let last = 10 + BULK;

    cluster.restart(f).await;
    cluster.wait_mesh().await;
    let log = repaired(&cluster, f, "C").await;
    assert!(log.contains("snapshot saw"), "{log}");
    healthy(&cluster, f).await;
    // The follower holds what the others hold: checked with it leading.
    let fc = app(&cluster, f).await;
    let v = info_until(&fc, "C", |_| true).await;
    if leader_of(&v) != f {
        let other = (0..3)
            .find(|i| *i != f && *i != leader_of(&v))
            .expect("a third");
        signal(&cluster, other, "-STOP");
        let oname = format!("n{other}");
        info_until(&fc, "C", |v| {
            v["cluster"]["replicas"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["name"] == oname.as_str() && r["offline"] == true)
        })
        .await;
        let sd = api(&fc, "$JS.API.STREAM.LEADER.STEPDOWN.C", Value::Null).await;
        assert_eq!(sd["success"], true, "{sd}");
        let fname = format!("n{f}");
        info_until(&fc, "C", |v| v["cluster"]["leader"] == fname.as_str()).await;
        signal(&cluster, other, "-CONT");
    }
    let v = info_until(&fc, "C", |_| true).await;
    assert_eq!(leader_of(&v), f, "{v}");
    assert_eq!(v["state"]["messages"], last, "{v}");
    assert_eq!(v["state"]["last_seq"], last, "{v}");
    for (seq, payload) in &acked {
        let got = api(&fc, "$JS.API.STREAM.MSG.GET.C", json!({"seq": seq})).await;
        assert_eq!(got["message"]["data"], b64(payload.as_bytes()), "{got}");
    }
    for seq in [11, 4_000, 8_500, last] {
        let got = api(&fc, "$JS.API.STREAM.MSG.GET.C", json!({"seq": seq})).await;
        let want = format!("bulk-{seq}");
        assert_eq!(got["message"]["data"], b64(want.as_bytes()), "{got}");
    }
}

/// Every server killed (SIGKILL) right after a run of acknowledged publishes, then
/// restarted: a replica's store is not synced per entry (the Raft log a quorum synced holds
/// the entry), so what its store had not written out is gone, and the restart replays it
/// from the log. Every replica then holds every acknowledged message, needing no repair.
/// natsd only: nats-server 2.9.10 acknowledges before its writes reach the OS, so killing
/// every server at once may lose acknowledged messages.
async fn acknowledged_messages_survive_killing_every_replica(kind: ServerKind) {
    let (mut cluster, dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "D").await;
    let v = info_until(&c0, "D", |_| true).await;
    let js = async_nats::jetstream::new(app(&cluster, leader_of(&v)).await);
    // Well past the size from which the file store keeps appends in memory until a sync,
    // with many publishes in flight, so entries carry several messages each.
    const N: u64 = 400;
    let payload = |i: u64| format!("{i}-{}", "y".repeat(1_000));
    let mut acks = Vec::new();
    for i in 1..=N {
        let ack = js
            .publish("d.x", Bytes::from(payload(i)))
            .await
            .expect("publish");
        acks.push(ack);
    }
    let mut acked = Vec::new();
    for (i, ack) in (1..=N).zip(acks) {
        let ack = tokio::time::timeout(ELECTION, ack)
            .await
            .expect("ack in time")
            .expect("ack");
        assert_eq!(ack.sequence, i);
        acked.push((i, payload(i)));
    }
    drop((c0, js));
    for i in 0..3 {
        kill(&mut cluster, i).await;
    }
    // The premise: some store lost its tail (else this tests no replay).
    let last = payload(N).into_bytes();
    let short = (0..3)
        .filter(|i| !store_holds(&group_dir(&dirs, *i).join("msgs"), &last))
        .count();
    assert!(short > 0, "every store kept the last message");
    for i in 0..3 {
        cluster.restart(i).await;
    }
    cluster.wait_mesh().await;
    meta_leader(&cluster, 3, ELECTION).await;
    for i in 0..3 {
        healthy(&cluster, i).await;
    }
    every_replica_holds(&cluster, "D", &acked).await;
    for i in 0..3 {
        let log = cluster.nodes[i].server.log();
        assert!(
            !log.contains("JetStream stream D in account APP repaired"),
            "n{i} needed a repair:\n{log}"
        );
    }
}

/// Whether a block file in the store directory `dir` holds the bytes `want`.
fn store_holds(dir: &Path, want: &[u8]) -> bool {
    std::fs::read_dir(dir)
        .expect("store dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "blk"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .any(|b| b.windows(want.len()).any(|w| w == want))
}

/// Whether stream info lists `n` other replicas, all current.
fn replicas_current(v: &Value, n: usize) -> bool {
    let rs = v["cluster"]["replicas"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    rs.len() == n && rs.iter().all(|r| r["current"] == true)
}

/// A stream scaled by STREAM.UPDATE from one replica to three (the new peers catch up and
/// count: the stream survives its first server's death) and back to one.
async fn a_stream_scales_up_and_down_by_update(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    let v = api(&c0, "$JS.API.STREAM.CREATE.G", stream_cfg("G", 1)).await;
    assert!(v.get("error").is_none(), "{v}");
    let v = info_until(&c0, "G", |_| true).await;
    let first = leader_of(&v);
    let js = async_nats::jetstream::new(app(&cluster, first).await);
    let mut acked = publish_all(&js, "g.x", payloads("r1", 10)).await;

    let up = api(&c0, "$JS.API.STREAM.UPDATE.G", stream_cfg("G", 3)).await;
    assert!(up.get("error").is_none(), "{up}");
    assert_eq!(up["config"]["num_replicas"], 3, "{up}");
    info_until(&c0, "G", |v| replicas_current(v, 2)).await;
    acked.extend(publish_all(&js, "g.x", payloads("r3", 5)).await);
    info_until(&c0, "G", |v| {
        replicas_current(v, 2) && v["state"]["messages"] == 15
    })
    .await;

    // The first server goes: the two new replicas hold everything and take over.
    kill(&mut cluster, first).await;
    let other = (first + 1) % 3;
    let co = app(&cluster, other).await;
    let v = info_until(&co, "G", |v| leader_of(v) != first).await;
    assert_eq!(v["state"]["messages"], 15, "{v}");
    for (seq, payload) in &acked {
        let got = api(&co, "$JS.API.STREAM.MSG.GET.G", json!({"seq": seq})).await;
        assert_eq!(got["message"]["data"], b64(payload.as_bytes()), "{got}");
    }
    let js = async_nats::jetstream::new(app(&cluster, other).await);
    acked.extend(publish_all(&js, "g.x", payloads("two", 1)).await);
    cluster.restart(first).await;
    cluster.wait_mesh().await;
    info_until(&co, "G", |v| replicas_current(v, 2)).await;

    let down = api(&co, "$JS.API.STREAM.UPDATE.G", stream_cfg("G", 1)).await;
    assert!(down.get("error").is_none(), "{down}");
    assert_eq!(down["config"]["num_replicas"], 1, "{down}");
    let v = info_until(&co, "G", |v| {
        v["cluster"]["replicas"]
            .as_array()
            .is_none_or(Vec::is_empty)
    })
    .await;
    assert_eq!(v["state"]["messages"], 16, "{v}");
    let js = async_nats::jetstream::new(app(&cluster, leader_of(&v)).await);
    acked.extend(publish_all(&js, "g.x", payloads("back", 1)).await);
    assert_eq!(acked.last().map(|a| a.0), Some(17), "{acked:?}");
}

/// STREAM.PEER.REMOVE on four servers: a follower of an R3 stream is replaced by the free
/// server, which catches up and counts for the quorum; an unknown peer is refused.
async fn a_removed_peer_is_replaced(kind: ServerKind) {
    let (mut cluster, _dirs) = start4(kind).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "P").await;
    let v = info_until(&c0, "P", |v| replicas_current(v, 2)).await;
    let l = leader_of(&v);
    let members: Vec<usize> = v["cluster"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| index_of(r["name"].as_str().unwrap()))
        .chain([l])
        .collect();
    let free = (0..4)
        .find(|i| !members.contains(i))
        .expect("a free server");
    let gone = members.iter().copied().find(|m| *m != l).unwrap();
    let js = async_nats::jetstream::new(app(&cluster, l).await);
    let acked = publish_all(&js, "p.x", payloads("m", 10)).await;

    let bad = api(&c0, "$JS.API.STREAM.PEER.REMOVE.P", json!({"peer": "nope"})).await;
    assert_eq!(
        bad["type"], "io.nats.jetstream.api.v1.stream_remove_peer_response",
        "{bad}"
    );
    assert_eq!(bad["error"]["err_code"], 10040, "{bad}");

    let r = api(
        &c0,
        "$JS.API.STREAM.PEER.REMOVE.P",
        json!({"peer": format!("n{gone}")}),
    )
    .await;
    assert_eq!(r["success"], true, "{r}");
    let gname = format!("n{gone}");
    let fname = format!("n{free}");
    info_until(&c0, "P", |v| {
        let rs = v["cluster"]["replicas"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        replicas_current(v, 2)
            && rs.iter().all(|r| r["name"] != gname.as_str())
            && (leader_of(v) == free || rs.iter().any(|r| r["name"] == fname.as_str()))
    })
    .await;
    // The leader goes: the replacement and the other member hold everything and take over.
    kill(&mut cluster, l).await;
    let other = (0..4).find(|i| *i != l && *i != gone).unwrap();
    let co = app(&cluster, other).await;
    let v = info_until(&co, "P", |v| leader_of(v) != l).await;
    assert_eq!(v["state"]["messages"], 10, "{v}");
    for (seq, payload) in &acked {
        let got = api(&co, "$JS.API.STREAM.MSG.GET.P", json!({"seq": seq})).await;
        assert_eq!(got["message"]["data"], b64(payload.as_bytes()), "{got}");
    }
    let js = async_nats::jetstream::new(app(&cluster, other).await);
    let more = publish_all(&js, "p.x", payloads("after", 1)).await;
    if kind == ServerKind::Natsd {
        assert_eq!(more[0].0, 11);
    } else {
        // nats-server 2.9.10 once numbered it 21 on a loaded machine (a new leader's view of
        // the sequence after the kill); what it kept is checked above.
        assert!(more[0].0 > 10, "{more:?}");
    }
}

/// Starts four servers and waits for their meta group.
async fn start4(kind: ServerKind) -> (TestCluster, Vec<tempfile::TempDir>) {
    let (cluster, dirs) = start(kind, 4).await;
    meta_leader(&cluster, 4, ELECTION).await;
    (cluster, dirs)
}

/// SERVER.REMOVE from the system account on four servers: a member of an R3 stream leaves
/// the meta group and the stream moves its replica to the free server; an unknown server is
/// refused. natsd only: nats-server 2.9.10 passed this once and once left the removed server
/// in the stream's peers for good (no re-placement), so it is not a reliable reference here.
async fn a_removed_server_is_replaced(kind: ServerKind) {
    let (mut cluster, _dirs) = start4(kind).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "Q").await;
    let v = info_until(&c0, "Q", |v| replicas_current(v, 2)).await;
    let l = leader_of(&v);
    let gone = index_of(v["cluster"]["replicas"][0]["name"].as_str().unwrap());
    let js = async_nats::jetstream::new(app(&cluster, l).await);
    let acked = publish_all(&js, "q.x", payloads("m", 10)).await;

    let asker = (0..4).find(|i| *i != gone).unwrap();
    let sys = client_as(&cluster, asker, "sys").await;
    let bad = api(&sys, "$JS.API.SERVER.REMOVE", json!({"peer": "nope"})).await;
    assert_eq!(
        bad["type"], "io.nats.jetstream.api.v1.meta_server_remove_response",
        "{bad}"
    );
    assert_eq!(bad["error"]["err_code"], 10044, "{bad}");
    let r = api(
        &sys,
        "$JS.API.SERVER.REMOVE",
        json!({"peer": format!("n{gone}")}),
    )
    .await;
    assert_eq!(r["success"], true, "{r}");
    kill(&mut cluster, gone).await;

    let gname = format!("n{gone}");
    let ca = app(&cluster, asker).await;
    let v = info_until(&ca, "Q", |v| {
        let rs = v["cluster"]["replicas"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        replicas_current(v, 2)
            && leader_of(v) != gone
            && rs.iter().all(|r| r["name"] != gname.as_str())
    })
    .await;
    assert_eq!(v["state"]["messages"], 10, "{v}");
    for (seq, payload) in &acked {
        let got = api(&ca, "$JS.API.STREAM.MSG.GET.Q", json!({"seq": seq})).await;
        assert_eq!(got["message"]["data"], b64(payload.as_bytes()), "{got}");
    }
}

/// Like `run_scenario`, with room for a restart, a repair and a tour of the leadership.
async fn run_long<F, Fut>(kind: ServerKind, scenario: F)
where
    F: FnOnce(ServerKind) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if !kind.available() {
        eprintln!("note: {} is not installed; scenario skipped", kind.name());
        return;
    }
    assert!(kind.binary().is_file(), "no {} binary", kind.name());
    let limit = Duration::from_secs(180);
    if tokio::time::timeout(limit, scenario(kind)).await.is_err() {
        panic!(
            "scenario against {} did not finish within {limit:?}",
            kind.name()
        );
    }
}

#[tokio::test]
async fn a_diverged_old_leader_repairs_itself_natsd() {
    run_long(ServerKind::Natsd, a_diverged_old_leader_repairs_itself).await;
}

#[tokio::test]
async fn a_follower_with_a_damaged_block_repairs_itself_natsd() {
    run_long(
        ServerKind::Natsd,
        a_follower_with_a_damaged_block_repairs_itself,
    )
    .await;
}

#[tokio::test]
async fn jsz_shows_replicas_in_trouble_natsd() {
    run_long(ServerKind::Natsd, jsz_shows_replicas_in_trouble).await;
}

#[tokio::test]
async fn memory_replicas_past_their_snapshot_go_on_without_natsd() {
    run_long(
        ServerKind::Natsd,
        memory_replicas_past_their_snapshot_go_on_without,
    )
    .await;
}

#[tokio::test]
async fn a_follower_past_the_log_catches_up_from_a_snapshot_natsd() {
    run_long(
        ServerKind::Natsd,
        a_follower_past_the_log_catches_up_from_a_snapshot,
    )
    .await;
}

#[tokio::test]
async fn acknowledged_messages_survive_killing_every_replica_natsd() {
    run_long(
        ServerKind::Natsd,
        acknowledged_messages_survive_killing_every_replica,
    )
    .await;
}

#[tokio::test]
async fn a_stream_scales_up_and_down_by_update_natsd() {
    run_long(ServerKind::Natsd, a_stream_scales_up_and_down_by_update).await;
}

#[tokio::test]
async fn a_stream_scales_up_and_down_by_update_nats_server() {
    run_long(
        ServerKind::NatsServer,
        a_stream_scales_up_and_down_by_update,
    )
    .await;
}

#[tokio::test]
async fn a_removed_peer_is_replaced_natsd() {
    run_long(ServerKind::Natsd, a_removed_peer_is_replaced).await;
}

// nats-server 2.9.10 passes this when the machine is quiet, but on a loaded one it twice
// misbehaved after the leader's kill: once its new leader numbered the next message 21, once
// no leader was elected within 40 s. Run it with `--ignored`.
#[tokio::test]
#[ignore = "nats-server 2.9.10 is unreliable here on a loaded machine; run with --ignored"]
async fn a_removed_peer_is_replaced_nats_server() {
    run_long(ServerKind::NatsServer, a_removed_peer_is_replaced).await;
}

#[tokio::test]
async fn a_removed_server_is_replaced_natsd() {
    run_long(ServerKind::Natsd, a_removed_server_is_replaced).await;
}
