//! The JSON bodies of a route's INFO and CONNECT, with nats-server 2.9.10's field names and order.
//!
//! Field order matters: serde writes fields in declaration order, and keeping Go's order makes our
//! INFO byte-identical to nats-server's for the same values (handy when diffing captures).

use serde::{Deserialize, Serialize};

/// Allow and deny lists as they travel in a route INFO (`import` / `export`).
///
/// Go: server/auth.go SubjectPermission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoutePermission {
    /// Allowed subjects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Denied subjects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// The body of `INFO {…}` between servers of a cluster.
///
/// Go: server/server.go Info — the same struct serves clients, routes, gateways and leaf nodes;
/// this is every field a 2.9.10 route peer sends or may forward (gossiped INFOs about third
/// servers and gateway INFOs travel over routes too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteInfo {
    /// Unique server id.
    pub server_id: String,
    /// Server name (`server_name`, else the id).
    pub server_name: String,
    /// Server version.
    pub version: String,
    /// Route protocol level: nats-server 2.x sends 2 (accounts on every interest and message op).
    pub proto: i32,
    /// Git commit of the build.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub git_commit: String,
    /// Implementation language/runtime version; nats-server always sends it (`go1.19.8`).
    pub go: String,
    /// Route listen host.
    pub host: String,
    /// Route listen port.
    pub port: u16,
    /// The server supports message headers.
    pub headers: bool,
    /// Route connections must authenticate (`cluster.authorization`).
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    /// TLS is required on routes.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    /// Peer certificates are verified.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    /// TLS is available.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_available: bool,
    /// The server's client `max_payload`.
    pub max_payload: i32,
    /// JetStream is enabled.
    #[serde(skip_serializing_if = "is_false")]
    pub jetstream: bool,
    /// Route URL to dial (`nats-route://host:port/`): set with `cluster.advertise`, and in
    /// gossiped INFOs, where it tells the receiver how to reach the third server.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// Connection id (client INFO only; routes leave it out).
    #[serde(skip_serializing_if = "is_zero")]
    pub client_id: u64,
    /// Peer address as seen by the server (client INFO only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    /// Nonce: sent in the first INFO of every route connection, never signed by routes.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    /// Cluster name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// The cluster name was generated, not configured: it may give way to the peer's.
    #[serde(rename = "cluster_dynamic", skip_serializing_if = "is_false")]
    pub dynamic: bool,
    /// JetStream domain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Client URLs of this server (unless `cluster.no_advertise`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// Websocket client URLs of this server.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ws_connect_urls: Vec<String>,
    /// The server entered lame duck mode.
    #[serde(skip_serializing_if = "is_false")]
    pub ldm: bool,
    /// Route import permissions (what the peer may send us).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<RoutePermission>,
    /// Route export permissions (what interest the peer may send us).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<RoutePermission>,
    /// Leaf-node origin cluster support: the peer understands `LS+`/`LS-`/`LMSG`.
    #[serde(skip_serializing_if = "is_false")]
    pub lnoc: bool,
    /// Ask for an INFO in answer to CONNECT (not used by routes in 2.9.10).
    #[serde(skip_serializing_if = "is_false")]
    pub info_on_connect: bool,
    /// This INFO answers a CONNECT.
    #[serde(skip_serializing_if = "is_false")]
    pub connect_info: bool,
    /// Gateway name: an INFO carrying it is about gateways, not about this route.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// Gateway URLs of the originating cluster.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateway_urls: Vec<String>,
    /// Gateway URL of the sending server.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway_url: String,
    /// Gateway command code.
    #[serde(skip_serializing_if = "is_zero_u8")]
    pub gateway_cmd: u8,
    /// Gateway command payload (Go `[]byte`, so base64 in JSON; kept encoded).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway_cmd_payload: String,
    /// Gateway uses the `$GNR.` reply prefix.
    #[serde(skip_serializing_if = "is_false")]
    pub gateway_nrp: bool,
    /// Gateway interest-only mode for all accounts.
    #[serde(skip_serializing_if = "is_false")]
    pub gateway_iom: bool,
    /// Leaf node URL of the sending server (at most one in a route INFO).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leafnode_urls: Vec<String>,
    /// Leaf nodes only.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
    /// nats-server 2.10: route connections per peer (`cluster.pool_size`); absent from 2.9.10.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub route_pool_size: i32,
    /// nats-server 2.10: the pool slot a dialer chose for this connection.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub route_pool_idx: i32,
    /// nats-server 2.10: the account this connection is dedicated to (a pinned account).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub route_account: String,
}

/// The body of a route's `CONNECT {…}`, sent by the soliciting side only.
///
/// Go: server/route.go connectInfo, plus `lang`, which a route never sends: nats-server uses it
/// to spot a client that dialed the cluster port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteConnect {
    /// Always true from nats-server.
    pub echo: bool,
    /// Always false from nats-server.
    pub verbose: bool,
    /// Always false from nats-server.
    pub pedantic: bool,
    /// User from the route URL (`nats://user:pass@host:port`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Password from the route URL.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pass: String,
    /// TLS is in use.
    pub tls_required: bool,
    /// The soliciting server supports headers.
    pub headers: bool,
    /// The soliciting server's id (not its name).
    pub name: String,
    /// The soliciting server's cluster name.
    pub cluster: String,
    /// That cluster name was generated.
    #[serde(rename = "cluster_dynamic", skip_serializing_if = "is_false")]
    pub dynamic: bool,
    /// Leaf-node origin cluster support.
    #[serde(skip_serializing_if = "is_false")]
    pub lnoc: bool,
    /// Set by gateways: a gateway dialed the route port by mistake.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// Set by client libraries: a client dialed the route port by mistake.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang: String,
    /// Leaf nodes only: the soliciting server's version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Leaf nodes only: the soliciting server's id (`name` is then its server name).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub server_id: String,
    /// Leaf nodes only: the user JWT of a `.creds` remote.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jwt: String,
    /// Leaf nodes only: the INFO nonce signed with the `.creds` seed (raw URL-safe base64).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sig: String,
    /// Leaf nodes only: the soliciting server's JetStream domain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Leaf nodes only: the soliciting server runs JetStream.
    #[serde(skip_serializing_if = "is_false")]
    pub jetstream: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_u8(n: &u8) -> bool {
    *n == 0
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

/// Decodes a JSON body the way Go's `json.Unmarshal` fills a zeroed struct: `null` (top-level or
/// per field) leaves defaults, keys match case-insensitively, unknown keys are ignored.
pub(super) fn decode_go_json<T: serde::de::DeserializeOwned + Default>(
    arg: &[u8],
) -> Result<T, String> {
    crate::gojson::from_slice(arg, crate::gojson::Unknown::Ignore).map_err(|e| e.to_string())
}
