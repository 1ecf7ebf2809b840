//! Several servers routed into one cluster: natsd, nats-server, or a mix.
//!
//! Every node gets a route listener and a monitoring port on fresh loopback ports; node 0 is
//! the seed and every other node lists it as its only route, so the full mesh forms by gossip
//! (as nats-server clusters are usually deployed).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{within, ServerKind, TestServer, STEP};

/// Name every test cluster uses.
pub const CLUSTER_NAME: &str = "natsd-test";

/// One server of a [`TestCluster`].
#[derive(Debug)]
pub struct ClusterNode {
    /// The process.
    pub server: TestServer,
    /// Its route port.
    pub cluster_port: u16,
    /// Its monitoring port.
    pub http_port: u16,
    /// Its config file (empty when started from flags).
    pub config: String,
}

/// A running cluster; the processes are killed on drop.
#[derive(Debug)]
pub struct TestCluster {
    /// The nodes, seed first.
    pub nodes: Vec<ClusterNode>,
}

impl TestCluster {
    /// Starts one node per entry of `kinds` and waits until every node has a route to every
    /// other one.
    pub async fn start(kinds: &[ServerKind]) -> Self {
        let seed_port = crate::free_port();
        let mut nodes = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let cluster_port = if i == 0 {
                seed_port
            } else {
                crate::free_port()
            };
            let http_port = crate::free_port();
            let listen = format!("nats://127.0.0.1:{cluster_port}");
            let seed = format!("nats://127.0.0.1:{seed_port}");
            let http = http_port.to_string();
            let name = format!("n{i}");
            let mut args = vec![
                "--cluster",
                &listen,
                "--cluster_name",
                CLUSTER_NAME,
                "-m",
                &http,
                "-n",
                &name,
            ];
            if i > 0 {
                args.extend(["--routes", &seed]);
            }
            let server = TestServer::start_with_args(*kind, "", &args).await;
            nodes.push(ClusterNode {
                server,
                cluster_port,
                http_port,
                config: String::new(),
            });
        }
        let cluster = Self { nodes };
        cluster.wait_mesh().await;
        cluster
    }

    /// Like [`TestCluster::start`], with the cluster set up in a config file: `cluster_extra`
    /// goes inside every node's `cluster { }` block and `top_extra` at the top level, both
    /// made per node by the closures (node index in).
    pub async fn start_conf(
        kinds: &[ServerKind],
        cluster_extra: impl Fn(usize) -> String,
        top_extra: impl Fn(usize) -> String,
    ) -> Self {
        let n = kinds.len();
        Self::start_conf_routes(kinds, cluster_extra, top_extra, |_| n - 1).await
    }

    /// Like [`TestCluster::start_conf`], waiting until node `i` reports `routes(i)` route
    /// connections (several per peer with route pooling).
    pub async fn start_conf_routes(
        kinds: &[ServerKind],
        cluster_extra: impl Fn(usize) -> String,
        top_extra: impl Fn(usize) -> String,
        routes: impl Fn(usize) -> usize,
    ) -> Self {
        let seed_port = crate::free_port();
        let mut nodes = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let cluster_port = if i == 0 {
                seed_port
            } else {
                crate::free_port()
            };
            let http_port = crate::free_port();
            let routes = if i == 0 {
                String::new()
            } else {
                format!("routes: [\"nats://127.0.0.1:{seed_port}\"]")
            };
            let conf = format!(
                "server_name: n{i}\nhttp: \"127.0.0.1:{http_port}\"\n{}\ncluster {{\n  name: {CLUSTER_NAME}\n  listen: \"127.0.0.1:{cluster_port}\"\n  {routes}\n  {}\n}}\n",
                top_extra(i),
                cluster_extra(i),
            );
            let server = TestServer::start(*kind, &conf).await;
            nodes.push(ClusterNode {
                server,
                cluster_port,
                http_port,
                config: conf,
            });
        }
        let cluster = Self { nodes };
        cluster.wait_routes(routes).await;
        cluster
    }

    /// Like [`TestCluster::start_conf`] with no cluster extras, but every node lists every
    /// other node as a configured route (a full mesh from the start), as nats-server's
    /// clustered JetStream requires of each server.
    pub async fn start_mesh(kinds: &[ServerKind], top_extra: impl Fn(usize) -> String) -> Self {
        let ports: Vec<u16> = kinds.iter().map(|_| crate::free_port()).collect();
        let mut nodes = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let cluster_port = ports[i];
            let http_port = crate::free_port();
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("\"nats://127.0.0.1:{p}\""))
                .collect();
            let conf = format!(
                "server_name: n{i}\nhttp: \"127.0.0.1:{http_port}\"\n{}\ncluster {{\n  name: {CLUSTER_NAME}\n  listen: \"127.0.0.1:{cluster_port}\"\n  routes: [{}]\n}}\n",
                top_extra(i),
                routes.join(", "),
            );
            let server = TestServer::start(*kind, &conf).await;
            nodes.push(ClusterNode {
                server,
                cluster_port,
                http_port,
                config: conf,
            });
        }
        let cluster = Self { nodes };
        cluster.wait_mesh().await;
        cluster
    }

    /// Starts one more node, named `n<index>`, whose configured routes are every existing
    /// node, with `top_extra` at the top level of its config; waits for its full mesh.
    pub async fn add_node(&mut self, kind: ServerKind, top_extra: &str) {
        let i = self.nodes.len();
        let cluster_port = crate::free_port();
        let http_port = crate::free_port();
        let routes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("\"nats://127.0.0.1:{}\"", n.cluster_port))
            .collect();
        let conf = format!(
            "server_name: n{i}\nhttp: \"127.0.0.1:{http_port}\"\n{top_extra}\ncluster {{\n  name: {CLUSTER_NAME}\n  listen: \"127.0.0.1:{cluster_port}\"\n  routes: [{}]\n}}\n",
            routes.join(", "),
        );
        let server = TestServer::start(kind, &conf).await;
        self.nodes.push(ClusterNode {
            server,
            cluster_port,
            http_port,
            config: conf,
        });
        self.wait_mesh().await;
    }

    /// Starts node `i` again from its config file (after it exited or was killed); its client
    /// port is a new one.
    pub async fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(
            !node.config.is_empty(),
            "node {i} was started from flags; only config-file nodes restart"
        );
        node.server = TestServer::start(node.server.kind(), &node.config).await;
    }

    /// Waits until every node reports a route to every other node.
    pub async fn wait_mesh(&self) {
        let n = self.nodes.len();
        self.wait_routes(|_| n - 1).await;
    }

    /// Waits until node `i` reports `want(i)` route connections.
    pub async fn wait_routes(&self, want: impl Fn(usize) -> usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        for (i, n) in self.nodes.iter().enumerate() {
            let want = want(i);
            loop {
                let got = num_routes(n.http_port).await;
                if got == Some(want) {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    panic!(
                        "node {i} ({}) has {got:?} routes, want {want}",
                        n.server.kind().name()
                    );
                }
                // Poll interval; the wait is bounded by `deadline`.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// A client of node `i`.
    pub async fn client(&self, i: usize) -> async_nats::Client {
        self.nodes[i].server.client().await
    }
}

/// `GET path` on a monitoring port; the body as JSON.
pub async fn monitor_get(http_port: u16, path: &str) -> Option<serde_json::Value> {
    let fetch = async {
        let mut s = TcpStream::connect(("127.0.0.1", http_port)).await.ok()?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        let (_, body) = text.split_once("\r\n\r\n")?;
        serde_json::from_str(body).ok()
    };
    tokio::time::timeout(Duration::from_secs(2), fetch)
        .await
        .ok()
        .flatten()
}

async fn num_routes(http_port: u16) -> Option<usize> {
    let v = monitor_get(http_port, "/routez").await?;
    v.get("num_routes")?.as_u64().map(|n| n as usize)
}

/// Payload of the probes [`await_interest`] sends.
pub const PROBE: &[u8] = b"__probe__";
const PROBE_END: &[u8] = b"__probe_end__";

/// Waits until messages `publisher` sends on `subject` reach `sub` (the subscription's
/// interest has crossed the routes), then swallows every probe it sent. `sub` must be a
/// plain subscription matching `subject`.
pub async fn await_interest(
    publisher: &async_nats::Client,
    subject: &str,
    sub: &mut async_nats::Subscriber,
) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if let Err(e) = publisher
            .publish(subject.to_owned(), Bytes::from_static(PROBE))
            .await
        {
            panic!("probe publish failed: {e}");
        }
        let _ = publisher.flush().await;
        match tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            Ok(Some(_)) => break,
            Ok(None) => panic!("subscription ended while probing"),
            Err(_) if tokio::time::Instant::now() >= deadline => {
                panic!("interest in {subject:?} did not cross the cluster")
            }
            Err(_) => {}
        }
    }
    if let Err(e) = publisher
        .publish(subject.to_owned(), Bytes::from_static(PROBE_END))
        .await
    {
        panic!("probe publish failed: {e}");
    }
    let _ = publisher.flush().await;
    loop {
        let Some(m) = within("probe end", sub.next()).await else {
            panic!("subscription ended while probing")
        };
        if m.payload.as_ref() == PROBE_END {
            break;
        }
    }
}
