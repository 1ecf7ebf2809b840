//! A client given one URL of a three-node cluster learns the others from `connect_urls` (in
//! the first INFO and in the asynchronous updates as routes come and go) and follows the
//! cluster as its nodes shut down one after another, until one node is left.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::cluster::TestCluster;
use natsd_tests::{both, ServerKind};

both!(
    client_follows_cluster_as_nodes_stop,
    client_leaves_lame_duck_node
);

/// How long a reconnect to a surviving node may take.
const MOVE: Duration = Duration::from_secs(15);

/// A client of `url` only, answering its own requests on `reconnect.svc`: a round trip then
/// proves publish, subscribe and reply routing on whichever node it is connected to (and
/// that its subscription was replayed there after a reconnect).
async fn self_answering_client(url: String) -> (async_nats::Client, tokio::task::JoinHandle<()>) {
    let client = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connection_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .unwrap();
    let mut svc = client.subscribe("reconnect.svc").await.unwrap();
    let responder = client.clone();
    let answering = tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, m.payload).await;
            }
        }
    });
    round_trip(&client, "first").await;
    (client, answering)
}

async fn client_follows_cluster_as_nodes_stop(kind: ServerKind) {
    let mut cluster = TestCluster::start(&[kind, kind, kind]).await;
    // Only node 0's URL: the other nodes must come from the servers.
    let (client, answering) = self_answering_client(cluster.nodes[0].server.url()).await;
    for round in 0..2 {
        let port = client.server_info().port;
        let at = cluster
            .nodes
            .iter()
            .position(|n| n.server.port() == port)
            .unwrap_or_else(|| panic!("client is on port {port}, not a node of the cluster"));
        let stopped = cluster.nodes.remove(at);
        drop(stopped);
        let left: Vec<u16> = cluster.nodes.iter().map(|n| n.server.port()).collect();
        round_trip(&client, &format!("after stop {round}")).await;
        let now_on = client.server_info().port;
        assert!(
            left.contains(&now_on),
            "round {round}: client on {now_on}, surviving nodes {left:?}"
        );
    }
    answering.abort();
}

/// Requests until one comes back, within [`MOVE`]; while the client reconnects, requests
/// fail fast and are retried.
async fn round_trip(client: &async_nats::Client, what: &str) {
    let deadline = tokio::time::Instant::now() + MOVE;
    let body = Bytes::from(what.to_owned());
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(1),
            client.request("reconnect.svc", body.clone()),
        )
        .await;
        match attempt {
            Ok(Ok(m)) if m.payload == body => return,
            Ok(Ok(m)) => panic!("{what}: wrong answer {:?}", m.payload),
            _ if tokio::time::Instant::now() >= deadline => panic!(
                "{what}: no answer within {MOVE:?}; client state {:?}",
                client.connection_state()
            ),
            // A request timed out or found no responder while the client was reconnecting
            // (the wait is bounded by the request timeout above): publish is retried on the
            // new connection. Poll interval; the wait is bounded by `deadline`.
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Lame duck mode on the client's node: its INFO (`ldm`, the peers' URLs) and then its closing
/// of the connection send the client to the other node.
async fn client_leaves_lame_duck_node(kind: ServerKind) {
    let cluster = TestCluster::start_conf(
        &[kind, kind],
        |_| String::new(),
        |_| "lame_duck_grace_period: \"1s\"\nlame_duck_duration: \"30s\"\n".to_owned(),
    )
    .await;
    let (client, answering) = self_answering_client(cluster.nodes[0].server.url()).await;
    let status = std::process::Command::new("kill")
        .args(["-USR2", &cluster.nodes[0].server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let other = cluster.nodes[1].server.port();
    let deadline = tokio::time::Instant::now() + MOVE;
    while client.server_info().port != other {
        assert!(
            tokio::time::Instant::now() < deadline,
            "client did not leave the lame duck node within {MOVE:?}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    round_trip(&client, "after lame duck").await;
    answering.abort();
}
