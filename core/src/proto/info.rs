//! The JSON bodies of INFO (server → client) and CONNECT (client → server).

use serde::{Deserialize, Serialize};

/// The body of the server's `INFO {…}` line, with nats-server's field names, order and
/// omit-empty rules (Go: server/server.go Info, the fields a client connection sees).
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
    /// Git commit of the build.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_commit: String,
    /// The toolchain the server was built with. nats-server always sends its Go version here
    /// and some clients index the field unconditionally, so it is never omitted.
    #[serde(default)]
    pub go: String,
    /// Client listen host.
    pub host: String,
    /// Client listen port.
    pub port: u16,
    /// Headers are supported.
    pub headers: bool,
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
    /// Maximum payload accepted.
    pub max_payload: u32,
    /// JetStream is enabled.
    #[serde(default, skip_serializing_if = "is_false")]
    pub jetstream: bool,
    /// Advertised address (routes and leaf nodes; never set for clients by nats-server).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// This connection's id.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub client_id: u64,
    /// The client's address as the server sees it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    /// Nonce to sign for nkey/JWT authentication.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    /// Cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The cluster name was generated and may still change.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cluster_dynamic: bool,
    /// JetStream domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Client URLs of the cluster's servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// WebSocket URLs of the cluster's servers (nats-server clears it in what clients get).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ws_connect_urls: Vec<String>,
    /// The server is in lame duck mode.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ldm: bool,
    /// This INFO answers CONNECT (nats-server 2.12+, after the first PING).
    #[serde(default, skip_serializing_if = "is_false")]
    pub connect_info: bool,
    /// The account the connection is bound to (with `connect_info`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_account: String,
    /// The bound account is the system account (with `connect_info`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub acc_is_sys: bool,
    /// JetStream API level (nats-server 2.12+ sends it in every INFO).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub api_lvl: u32,
    /// The server's public x25519 key (nats-server 2.10+, for encrypted auth callouts).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub xkey: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_keeps_nats_server_field_order_and_omissions() {
        let info = ServerInfo {
            server_id: "NID".into(),
            server_name: "n1".into(),
            version: "2.9.10".into(),
            proto: 1,
            host: "0.0.0.0".into(),
            port: 4222,
            headers: true,
            max_payload: 1024,
            jetstream: true,
            client_id: 7,
            client_ip: "127.0.0.1".into(),
            domain: Some("hub".into()),
            ..ServerInfo::default()
        };
        // Go: server/server.go Info — `go` has no omitempty, so it is there even when empty.
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"server_id":"NID","server_name":"n1","version":"2.9.10","proto":1,"go":"","host":"0.0.0.0","port":4222,"headers":true,"max_payload":1024,"jetstream":true,"client_id":7,"client_ip":"127.0.0.1","domain":"hub"}"#
        );
    }

    #[test]
    fn info_without_go_still_parses() {
        let info: ServerInfo = serde_json::from_str(
            r#"{"server_id":"x","server_name":"x","version":"1","proto":1,"host":"h","port":1,"headers":false,"max_payload":1}"#,
        )
        .unwrap();
        assert!(info.go.is_empty());
    }
}
