//! Clustered JetStream on three servers routed together: the meta group elects one leader
//! that every server's `/jsz` agrees on, `$JS.API.META.LEADER.STEPDOWN` moves it, a leader
//! killed with SIGKILL is replaced within seconds, and the killed server, restarted from its
//! files, rejoins; a server started later joins the group.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use natsd_tests::cluster::{monitor_get, TestCluster};
use natsd_tests::jscluster::{self, client_as, index_of, kill, start};
use natsd_tests::{both, within, within_for, ServerKind};

/// How long a new meta leader may take to be agreed on.
/// Generous: only a failing step waits this long, and a stepdown under load may take
/// its three tries (see the server's stepdown).
const ELECTION: Duration = Duration::from_secs(40);

/// `meta_cluster` of node `i`'s `/jsz`.
async fn meta(c: &TestCluster, i: usize) -> Option<serde_json::Value> {
    let jsz = monitor_get(c.nodes[i].http_port, "/jsz").await?;
    jsz.get("meta_cluster").cloned()
}

/// Waits until every node of `alive` names the same leader (not `not`) in a meta group of
/// `size` servers; returns it.
async fn agreed_leader(c: &TestCluster, alive: &[usize], size: u64, not: &str) -> String {
    let deadline = tokio::time::Instant::now() + ELECTION;
    loop {
        let mut seen = Vec::new();
        for &i in alive {
            seen.push(meta(c, i).await);
        }
        let leaders: Vec<&str> = seen
            .iter()
            .map(|m| {
                m.as_ref()
                    .and_then(|m| m.get("leader"))
                    .and_then(|l| l.as_str())
                    .unwrap_or("")
            })
            .collect();
        let sizes_ok = seen.iter().all(|m| {
            m.as_ref()
                .and_then(|m| m.get("cluster_size"))
                .and_then(serde_json::Value::as_u64)
                == Some(size)
        });
        let first = leaders[0];
        if !first.is_empty() && first != not && sizes_ok && leaders.iter().all(|l| *l == first) {
            return first.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no agreed meta leader within {ELECTION:?}: {seen:?}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn meta_leader_elected_moved_and_replaced(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind, 3).await;
    let first = agreed_leader(&cluster, &[0, 1, 2], 3, "").await;
    for node in &cluster.nodes {
        let health = monitor_get(node.http_port, "/healthz").await;
        assert_eq!(health, Some(serde_json::json!({"status": "ok"})));
    }

    // Stepdown, asked from a node that is not the leader: the leader answers.
    let asker = (index_of(&first) + 1) % 3;
    let sys = client_as(&cluster, asker, "sys").await;
    // Tags cannot pick the next leader (10011); the leader stays.
    let refused = within(
        "stepdown reply",
        sys.request(
            "$JS.API.META.LEADER.STEPDOWN",
            Bytes::from_static(br#"{"placement":{"tags":["x"]}}"#),
        ),
    )
    .await
    .expect("stepdown request");
    let body: serde_json::Value = serde_json::from_slice(&refused.payload).expect("JSON reply");
    assert_eq!(body["error"]["err_code"], 10011, "{body}");
    assert!(body.get("success").is_none(), "{body}");
    // A placement naming the cluster picks another server of it.
    let reply = within(
        "stepdown reply",
        sys.request(
            "$JS.API.META.LEADER.STEPDOWN",
            Bytes::from(format!(
                r#"{{"placement":{{"cluster":"{}"}}}}"#,
                natsd_tests::cluster::CLUSTER_NAME
            )),
        ),
    )
    .await
    .expect("stepdown request");
    let body: serde_json::Value = serde_json::from_slice(&reply.payload).expect("JSON reply");
    assert_eq!(
        body["type"], "io.nats.jetstream.api.v1.meta_leader_stepdown_response",
        "{body}"
    );
    assert_eq!(body["success"], true, "{body}");
    let second = agreed_leader(&cluster, &[0, 1, 2], 3, &first).await;
    drop(sys);

    // SIGKILL the leader: the other two agree on a new one.
    let dead = index_of(&second);
    kill(&mut cluster, dead).await;
    let alive: Vec<usize> = (0..3).filter(|i| *i != dead).collect();
    let third = agreed_leader(&cluster, &alive, 3, &second).await;
    assert_ne!(third, second);

    // The killed server comes back from its files and rejoins: all three agree again.
    cluster.restart(dead).await;
    cluster.wait_mesh().await;
    agreed_leader(&cluster, &[0, 1, 2], 3, "").await;
    let deadline = tokio::time::Instant::now() + ELECTION;
    loop {
        let health = monitor_get(cluster.nodes[dead].http_port, "/healthz").await;
        if health == Some(serde_json::json!({"status": "ok"})) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "restarted server not healthy: {health:?}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A server that comes after the meta group formed is added to it: all four agree on the
/// leader of a four-server group.
async fn late_server_joins_the_meta_group(kind: ServerKind) {
    let (mut cluster, mut dirs) = start(kind, 3).await;
    agreed_leader(&cluster, &[0, 1, 2], 3, "").await;
    dirs.push(tempfile::tempdir().expect("temp dir"));
    cluster
        .add_node(kind, &jscluster::top(dirs[3].path(), "", ""))
        .await;
    agreed_leader(&cluster, &[0, 1, 2, 3], 4, "").await;
    // `/raftz` (nats-server 2.10+, so natsd only here): the newcomer lists the meta group
    // under the system account, with its four members and a leader.
    if kind == ServerKind::Natsd {
        let raftz = monitor_get(cluster.nodes[3].http_port, "/raftz")
            .await
            .expect("/raftz");
        let meta = &raftz["SYS"]["_meta_"];
        assert_eq!(
            meta["peers"].as_object().map(|p| p.len()),
            Some(4),
            "{raftz}"
        );
        assert!(
            meta["leader"].as_str().is_some_and(|l| !l.is_empty()),
            "{raftz}"
        );
    }
}

/// Runs `kind` on `config` (`STORE` becomes a fresh store directory) and waits for it to
/// exit on its own: (exit code, everything it logged).
async fn fails_to_start(kind: ServerKind, config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = config.replace("STORE", &dir.path().join("js").display().to_string());
    let conf = dir.path().join("server.conf");
    std::fs::write(&conf, config).unwrap();
    let child = tokio::process::Command::new(kind.binary())
        .arg("-c")
        .arg(&conf)
        .args(["-a", "127.0.0.1", "-p", "-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = within_for(Duration::from_secs(10), "the server to give up", async {
        child.wait_with_output().await.unwrap()
    })
    .await;
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), log)
}

/// Clustered JetStream names its servers and its cluster (Go: validateOptions).
async fn clustered_jetstream_needs_server_and_cluster_names(kind: ServerKind) {
    let port = natsd_tests::free_port();
    let (code, log) = fails_to_start(
        kind,
        &format!(
            "jetstream {{ store_dir: \"STORE\" }}\ncluster {{ name: c, listen: \"127.0.0.1:{port}\", routes: [\"nats://127.0.0.1:1\"] }}\n"
        ),
    )
    .await;
    assert_ne!(code, Some(0), "{log}");
    assert!(
        log.contains("jetstream cluster requires `server_name` to be set"),
        "{log}"
    );
    let (code, log) = fails_to_start(
        kind,
        &format!(
            "server_name: s\njetstream {{ store_dir: \"STORE\" }}\ncluster {{ listen: \"127.0.0.1:{port}\", routes: [\"nats://127.0.0.1:1\"] }}\n"
        ),
    )
    .await;
    assert_ne!(code, Some(0), "{log}");
    assert!(
        log.contains("jetstream cluster requires `cluster.name` to be set"),
        "{log}"
    );
}

both!(
    meta_leader_elected_moved_and_replaced,
    late_server_joins_the_meta_group,
    clustered_jetstream_needs_server_and_cluster_names
);
