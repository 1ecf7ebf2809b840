//! `leafnode_urls` gossip: a hub tells its leaves the leaf URLs of its whole cluster, so a
//! leaf whose remote names one hub server moves to another when that server dies. Each
//! scenario runs for every pairing of natsd and nats-server 2.9.10 (hub cluster, leaf), and
//! the INFO contract against each hub kind. Waits poll with deadlines.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::cluster::TestCluster;
use natsd_tests::{free_port, ServerKind, TestServer};
use tokio::io::{AsyncBufReadExt, BufReader};

natsd_tests::leaf_pairs!(
    leaf_moves_to_another_hub_node_when_its_node_dies,
    leaf_learns_of_a_hub_node_that_joins_later
);
natsd_tests::both!(hub_info_lists_the_clusters_leaf_urls);

/// A link, or a new one after a kill, on a loaded machine.
const LIMIT: Duration = Duration::from_secs(30);

/// A hub cluster of `n` servers of `kind`, each with a leaf listener (port per node); node
/// `i`'s `leafnodes {}` gets `extra(i)`.
async fn hub_cluster(
    kind: ServerKind,
    n: usize,
    extra: impl Fn(usize) -> String,
) -> (TestCluster, Vec<u16>) {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let kinds = vec![kind; n];
    let c = TestCluster::start_conf(
        &kinds,
        |_| String::new(),
        |i| {
            format!(
                "leafnodes {{ listen: \"127.0.0.1:{}\"\n{} }}",
                ports[i],
                extra(i)
            )
        },
    )
    .await;
    (c, ports)
}

/// Publishes numbered messages tagged `tag` on `subject` until one reaches `sub`, within
/// `limit`: proof that interest and messages cross from `publisher` to `sub`. Late messages
/// of an earlier tag are skipped, so they prove nothing about this one.
async fn crosses(
    tag: &str,
    publisher: &async_nats::Client,
    subject: &str,
    sub: &mut async_nats::Subscriber,
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit;
    for i in 0u64.. {
        // A publish may fail while the publisher's own server is busy; the next try repeats it.
        let _ = publisher
            .publish(subject.to_owned(), Bytes::from(format!("{tag}-{i}")))
            .await;
        let _ = publisher.flush().await;
        let wait = tokio::time::Instant::now() + Duration::from_millis(200);
        while let Ok(Some(m)) = tokio::time::timeout_at(wait, sub.next()).await {
            if m.payload.starts_with(format!("{tag}-").as_bytes()) {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message on {subject:?} crossed within {limit:?}"
        );
    }
}

/// Three hub servers; the leaf's remote names only the first one's leaf URL. The first is
/// killed (SIGKILL): the leaf dials a server it learned of from `leafnode_urls` and
/// messages cross again both ways.
async fn leaf_moves_to_another_hub_node_when_its_node_dies(hub: ServerKind, leaf: ServerKind) {
    let (mut c, ports) = hub_cluster(hub, 3, |_| String::new()).await;
    let l = TestServer::start(
        leaf,
        &format!(
            "server_name: leaf\nleafnodes {{ remotes: [ {{ url: \"nats-leaf://127.0.0.1:{}\" }} ], reconnect: 1 }}\n",
            ports[0]
        ),
    )
    .await;
    let (far, lc) = (c.client(1).await, l.client().await);
    let mut down = lc.subscribe("to.leaf").await.unwrap();
    let mut up = far.subscribe("from.leaf").await.unwrap();
    lc.flush().await.unwrap();
    far.flush().await.unwrap();
    crosses("before", &far, "to.leaf", &mut down, LIMIT).await;
    crosses("before", &lc, "from.leaf", &mut up, LIMIT).await;

    natsd_tests::jscluster::kill(&mut c, 0).await;
    crosses("after", &far, "to.leaf", &mut down, LIMIT).await;
    // Node 0 is gone: these crossed over a link to node 1 or 2.
    crosses("after", &lc, "from.leaf", &mut up, LIMIT).await;
}

/// A hub of one server with the leaf attached; a second server joins the hub's cluster, and
/// the hub tells the leaf its URL in an asynchronous INFO. Then the first is killed and the
/// leaf moves to the newcomer.
async fn leaf_learns_of_a_hub_node_that_joins_later(hub: ServerKind, leaf: ServerKind) {
    let (mut c, ports) = hub_cluster(hub, 1, |_| String::new()).await;
    let l = TestServer::start(
        leaf,
        &format!(
            "server_name: leaf\nleafnodes {{ remotes: [ {{ url: \"nats-leaf://127.0.0.1:{}\" }} ], reconnect: 1 }}\n",
            ports[0]
        ),
    )
    .await;
    let (first, lc) = (c.client(0).await, l.client().await);
    let mut down = lc.subscribe("to.leaf").await.unwrap();
    lc.flush().await.unwrap();
    crosses("before", &first, "to.leaf", &mut down, LIMIT).await;

    let port = free_port();
    c.add_node(
        hub,
        &format!("leafnodes {{ listen: \"127.0.0.1:{port}\" }}"),
    )
    .await;
    // The hub queued its INFO update on the link when the route came up, before this
    // message: once it crossed, the leaf has read the new URL.
    crosses("joined", &first, "to.leaf", &mut down, LIMIT).await;

    natsd_tests::jscluster::kill(&mut c, 0).await;
    let newcomer = c.client(1).await;
    let mut up = newcomer.subscribe("from.leaf").await.unwrap();
    newcomer.flush().await.unwrap();
    crosses("after", &newcomer, "to.leaf", &mut down, LIMIT).await;
    crosses("after", &lc, "from.leaf", &mut up, LIMIT).await;
}

/// The first line a hub's leaf port sends, as JSON.
async fn leaf_info(port: u16) -> serde_json::Value {
    let s = natsd_tests::connect_when_listening(port).await;
    let mut line = String::new();
    natsd_tests::within("the hub's leaf INFO", async {
        BufReader::new(s).read_line(&mut line).await.unwrap()
    })
    .await;
    let json = line
        .strip_prefix("INFO ")
        .unwrap_or_else(|| panic!("{line}"));
    serde_json::from_str(json.trim_end()).unwrap()
}

fn url_set(info: &serde_json::Value) -> BTreeSet<String> {
    info["leafnode_urls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u.as_str().map(str::to_owned))
        .collect()
}

/// Go: leafnode.go — a hub's leaf INFO lists its own leaf URL and those its routes carry; a
/// server with `leafnodes { no_advertise: true }` keeps its URL from its routes (so from the
/// other servers' leaves) but still lists it to its own.
async fn hub_info_lists_the_clusters_leaf_urls(kind: ServerKind) {
    let (c, ports) = hub_cluster(kind, 3, |i| {
        if i == 2 {
            "no_advertise: true".to_owned()
        } else {
            String::new()
        }
    })
    .await;
    let url = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let want01: BTreeSet<String> = [url(0), url(1)].into();
    // The routes are up, but each server learns the others' URLs as their routes register.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let got = [
            url_set(&leaf_info(ports[0]).await),
            url_set(&leaf_info(ports[1]).await),
        ];
        if got.iter().all(|g| *g == want01) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{got:?}, want {want01:?}"
        );
        // Poll interval; the wait is bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all: BTreeSet<String> = [url(0), url(1), url(2)].into();
    assert_eq!(url_set(&leaf_info(ports[2]).await), all);
    drop(c);
}
