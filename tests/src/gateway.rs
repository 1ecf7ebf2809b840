//! Super-cluster scenarios: two clusters, `A` and `B`, joined by gateways, one test per
//! pairing of natsd and nats-server 2.9.10.
//!
//! Only `A`'s servers name `B` in their `gateways` list: `B` learns of `A` from the inbound
//! connections and from its routes, as a nats-server cluster does.

use std::future::Future;

use crate::{free_port, ServerKind, TestServer, SCENARIO};

/// Expands each named scenario `async fn name(a: ServerKind, b: ServerKind)` into a module of
/// four `#[tokio::test]`s, one per pairing of natsd and nats-server 2.9.10 for the servers of
/// cluster `A` and of cluster `B` (nats-server–nats-server checks the expectations themselves).
#[macro_export]
macro_rules! gateway_pairs {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use $crate::ServerKind::{NatsServer, Natsd};

                #[tokio::test]
                async fn natsd_a_natsd_b() {
                    $crate::gateway::run(Natsd, Natsd, super::$name).await;
                }

                #[tokio::test]
                async fn natsd_a_nats_server_b() {
                    $crate::gateway::run(Natsd, NatsServer, super::$name).await;
                }

                #[tokio::test]
                async fn nats_server_a_natsd_b() {
                    $crate::gateway::run(NatsServer, Natsd, super::$name).await;
                }

                #[tokio::test]
                async fn nats_server_a_nats_server_b() {
                    $crate::gateway::run(NatsServer, NatsServer, super::$name).await;
                }
            }
        )+
    };
}

/// Runs one pairing of a scenario within [`SCENARIO`]; a kind that is not installed skips it
/// with a note.
pub async fn run<F, Fut>(a: ServerKind, b: ServerKind, scenario: F)
where
    F: FnOnce(ServerKind, ServerKind) -> Fut,
    Fut: Future<Output = ()>,
{
    for k in [a, b] {
        if !k.available() {
            eprintln!("note: {} is not installed; scenario skipped", k.name());
            return;
        }
        let _ = k.binary();
    }
    if tokio::time::timeout(SCENARIO, scenario(a, b))
        .await
        .is_err()
    {
        panic!(
            "scenario with cluster A on {} and cluster B on {} did not finish within {SCENARIO:?}",
            a.name(),
            b.name()
        );
    }
}

/// One server of a [`SuperCluster`].
#[derive(Debug)]
pub struct GatewayNode {
    /// The process.
    pub server: TestServer,
    /// Its gateway port.
    pub gateway_port: u16,
    /// Its monitoring port.
    pub http_port: u16,
}

/// Two clusters joined by gateways; the processes are killed on drop.
#[derive(Debug)]
pub struct SuperCluster {
    /// Cluster `A`'s servers (they dial `B`).
    pub a: Vec<GatewayNode>,
    /// Cluster `B`'s servers.
    pub b: Vec<GatewayNode>,
}

impl SuperCluster {
    /// Starts `b` servers of kind `b_kind` as cluster `B`, then `a` servers of kind `a_kind`
    /// as cluster `A` naming `B`'s gateway URLs. Does not wait for the gateways: probe.
    pub async fn start(a_kind: ServerKind, a: usize, b_kind: ServerKind, b: usize) -> Self {
        Self::start_with(a_kind, a, b_kind, b, "").await
    }

    /// Like [`SuperCluster::start`], with `top` added at the top of every server's config.
    pub async fn start_with(
        a_kind: ServerKind,
        a: usize,
        b_kind: ServerKind,
        b: usize,
        top: &str,
    ) -> Self {
        Self::start_auth(a_kind, a, b_kind, b, top, None).await
    }

    /// Like [`SuperCluster::start_with`]; with `auth` (user, password), `B`'s gateways ask
    /// for them and `A` dials `B` with them in its URLs.
    pub async fn start_auth(
        a_kind: ServerKind,
        a: usize,
        b_kind: ServerKind,
        b: usize,
        top: &str,
        auth: Option<(&str, &str)>,
    ) -> Self {
        let b_block = auth.map_or(String::new(), |(u, p)| {
            format!("authorization {{ user: {u}, password: {p} }}")
        });
        let blocks = GatewayBlocks {
            b: &b_block,
            ..GatewayBlocks::default()
        };
        Self::start_blocks(a_kind, a, b_kind, b, top, auth, blocks).await
    }

    /// Like [`SuperCluster::start_auth`], with `blocks` added to the `gateway {}` blocks of
    /// `A` and of `B` and to `A`'s entry for `B` (a `tls {}` block, say).
    pub async fn start_blocks(
        a_kind: ServerKind,
        a: usize,
        b_kind: ServerKind,
        b: usize,
        top: &str,
        auth: Option<(&str, &str)>,
        blocks: GatewayBlocks<'_>,
    ) -> Self {
        let b_ports: Vec<u16> = (0..b).map(|_| free_port()).collect();
        let userinfo = auth.map_or(String::new(), |(u, p)| format!("{u}:{p}@"));
        let b_urls: Vec<String> = b_ports
            .iter()
            .map(|p| format!("\"nats://{userinfo}127.0.0.1:{p}\""))
            .collect();
        let b_nodes = start_cluster(b_kind, "B", &b_ports, blocks.b, top).await;
        let a_ports: Vec<u16> = (0..a).map(|_| free_port()).collect();
        let remotes = format!(
            "{}\n  gateways: [ {{ name: B, urls: [ {} ]\n {} }} ]",
            blocks.a,
            b_urls.join(", "),
            blocks.remote
        );
        let a_nodes = start_cluster(a_kind, "A", &a_ports, &remotes, top).await;
        Self {
            a: a_nodes,
            b: b_nodes,
        }
    }

    /// A client of node `i` of cluster `A`.
    pub async fn a_client(&self, i: usize) -> async_nats::Client {
        self.a[i].server.client().await
    }

    /// A client of node `i` of cluster `B`.
    pub async fn b_client(&self, i: usize) -> async_nats::Client {
        self.b[i].server.client().await
    }
}

/// Config text for [`SuperCluster::start_blocks`].
#[derive(Debug, Default, Clone, Copy)]
pub struct GatewayBlocks<'a> {
    /// Added to `A`'s `gateway {}` block.
    pub a: &'a str,
    /// Added to `B`'s `gateway {}` block.
    pub b: &'a str,
    /// Added to `A`'s `gateways` entry for `B`.
    pub remote: &'a str,
}

async fn start_cluster(
    kind: ServerKind,
    name: &str,
    gateway_ports: &[u16],
    remotes: &str,
    top: &str,
) -> Vec<GatewayNode> {
    let route_ports: Vec<u16> = gateway_ports.iter().map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for (i, gp) in gateway_ports.iter().enumerate() {
        let http_port = free_port();
        let cluster = if gateway_ports.len() > 1 {
            let routes: Vec<String> = route_ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("\"nats://127.0.0.1:{p}\""))
                .collect();
            format!(
                "cluster {{\n  name: {name}\n  listen: \"127.0.0.1:{}\"\n  routes: [ {} ]\n}}\n",
                route_ports[i],
                routes.join(", ")
            )
        } else {
            String::new()
        };
        let conf = format!(
            "server_name: {name}{i}\nhttp: \"127.0.0.1:{http_port}\"\n{top}\n{cluster}gateway {{\n  name: {name}\n  listen: \"127.0.0.1:{gp}\"\n  {remotes}\n}}\n"
        );
        let server = TestServer::start(kind, &conf).await;
        nodes.push(GatewayNode {
            server,
            gateway_port: *gp,
            http_port,
        });
    }
    nodes
}
