//! The JSON bodies of INFO (server → client) and CONNECT (client → server).

use serde::{Deserialize, Serialize};

/// The body of the server's `INFO {…}` line, with nats-server's field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Unique server id (an nkey-style public id).
    pub server_id: String,
    /// Server name (`server_name`, else the id).
    pub server_name: String,
    /// Version of the NATS protocol implementation this server speaks.
    pub version: String,
    /// Protocol level (1: async INFO updates).
    pub proto: u32,
    /// Implementation language; nats-server says "go".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub go: String,
    /// Client listen host.
    pub host: String,
    /// Client listen port.
    pub port: u16,
    /// Headers are supported.
    pub headers: bool,
    /// Maximum payload accepted.
    pub max_payload: u32,
    /// This connection's id.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub client_id: u64,
    /// The client's address as the server sees it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    /// Authentication is required.
    #[serde(default, skip_serializing_if = "is_false")]
    pub auth_required: bool,
    /// TLS is required.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_required: bool,
    /// Client certificates are verified.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    /// TLS is available.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_available: bool,
    /// Nonce to sign for nkey/JWT authentication.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    /// Client URLs of the cluster's servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// Cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The server is in lame duck mode.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ldm: bool,
    /// JetStream is enabled.
    #[serde(default, skip_serializing_if = "is_false")]
    pub jetstream: bool,
    /// JetStream domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Git commit of the build.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_commit: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The body of a client's `CONNECT {…}`: every field nats-server accepts. Unknown fields are
/// ignored, as nats-server does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectInfo {
    /// Acknowledge every op with `+OK`.
    pub verbose: bool,
    /// Strict checking of subjects and ops.
    pub pedantic: bool,
    /// The client requires TLS.
    pub tls_required: bool,
    /// Token for token authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    /// Client name (shown in monitoring).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Client library language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Client library version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Protocol level the client speaks.
    pub protocol: i32,
    /// Receive own messages; defaults to true.
    #[serde(default = "yes")]
    pub echo: bool,
    /// Signature of the nonce (base64url, raw) for nkey/JWT authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// User JWT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    /// Public user nkey.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    /// The client understands headers.
    pub headers: bool,
    /// The client wants a 503 status when a request has no responders.
    pub no_responders: bool,
}

fn yes() -> bool {
    true
}
