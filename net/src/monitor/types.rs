//! The monitoring documents, with nats-server's JSON field names (Go: server/monitor.go).
//!
//! The HTTP handlers, the `$SYS.REQ.…` services and the embedding API all hand out these same
//! structs. Times are kept as strings in Go's formats so a document can be compared field by
//! field with one from nats-server.

use std::collections::BTreeMap;

use natsd_core::sublist::SublistStats;
use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `/varz`: the server's configuration and counters. Go: server/monitor.go Varz.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Varz {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_commit: String,
    /// nats-server reports its Go version here; natsd the Rust compiler that built it.
    pub go: String,
    pub host: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    /// The client URLs of the cluster, as in INFO.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    pub max_connections: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub max_subscriptions: u32,
    /// Nanoseconds (Go marshals a `time.Duration` as an integer).
    pub ping_interval: u64,
    pub ping_max: u32,
    pub http_host: String,
    pub http_port: u16,
    pub http_base_path: String,
    pub https_port: u16,
    /// Seconds, as a float.
    pub auth_timeout: f64,
    pub max_control_line: u32,
    pub max_payload: u32,
    pub max_pending: u64,
    pub cluster: ClusterOptsVarz,
    pub gateway: GatewayOptsVarz,
    pub leaf: LeafNodeOptsVarz,
    pub mqtt: MqttOptsVarz,
    pub websocket: WebsocketOptsVarz,
    pub jetstream: JetStreamVarz,
    /// Seconds, as a float.
    pub tls_timeout: f64,
    /// Nanoseconds.
    pub write_deadline: u64,
    pub start: String,
    pub now: String,
    pub uptime: String,
    /// Resident memory in bytes.
    pub mem: u64,
    pub cores: u32,
    pub gomaxprocs: u32,
    /// Percent of one core used since the previous sample.
    pub cpu: f64,
    pub connections: u64,
    pub total_connections: u64,
    pub routes: u64,
    pub remotes: u64,
    pub leafnodes: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub slow_consumers: u64,
    /// Slow consumers by connection kind (2.10).
    pub slow_consumer_stats: SlowConsumerStats,
    pub subscriptions: u64,
    pub http_req_stats: BTreeMap<String, u64>,
    pub config_load_time: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system_account: String,
}

/// `/varz` `slow_consumer_stats`: connections closed as slow consumers, by kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlowConsumerStats {
    pub clients: u64,
    pub routes: u64,
    pub gateways: u64,
    pub leafs: u64,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// `cluster` in `/varz`; empty without a `cluster` block. Go: server/monitor.go
/// ClusterOptsVarz.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterOptsVarz {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub addr: String,
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub cluster_port: u16,
    /// Seconds, as a float.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub auth_timeout: f64,
    /// The configured routes, `host:port`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Seconds, as a float.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub tls_timeout: f64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_verify: bool,
}
/// `gateway` in `/varz` (Go: server/monitor.go GatewayOptsVarz); empty without gateways.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GatewayOptsVarz {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub port: u16,
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub auth_timeout: f64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub advertise: String,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub connect_retries: u32,
    /// The configured remote clusters (nats-server lists their names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<RemoteGatewayOptsVarz>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub reject_unknown: bool,
}

/// One configured remote cluster in `/varz` `gateway.gateways`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RemoteGatewayOptsVarz {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}
/// `leaf` in `/varz`: the leaf-node listener, empty without one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LeafNodeOptsVarz {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub port: u16,
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub auth_timeout: f64,
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

fn is_zero_f64(n: &f64) -> bool {
    *n == 0.0
}
/// `mqtt` in `/varz`; empty while natsd has no MQTT listener.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MqttOptsVarz {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}
/// `websocket` in `/varz`; empty while natsd has no websocket listener.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WebsocketOptsVarz {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}
/// `jetstream` in `/varz`; empty while JetStream is off. Go: server/monitor.go JetStreamVarz
/// (`meta` describes the JetStream meta group of a clustered server).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JetStreamVarz {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<JsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<JetStreamStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<natsd_core::jetstream::cluster::MetaClusterInfo>,
}

/// JetStream usage. Go: server/jetstream.go JetStreamStats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JetStreamStats {
    pub memory: u64,
    pub storage: u64,
    pub reserved_memory: u64,
    pub reserved_storage: u64,
    pub accounts: u64,
    pub ha_assets: u64,
    pub api: JsApiStats,
}

/// `/connz`. Go: server/monitor.go Connz.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Connz {
    pub server_id: String,
    pub now: String,
    pub num_connections: usize,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub connections: Vec<ConnInfo>,
}

/// One connection in `/connz`. Go: server/monitor.go ConnInfo.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnInfo {
    pub cid: u64,
    pub kind: String,
    #[serde(rename = "type")]
    pub conn_type: String,
    pub ip: String,
    pub port: u16,
    pub start: String,
    pub last_activity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rtt: String,
    pub uptime: String,
    pub idle: String,
    pub pending_bytes: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lang: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tls_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tls_cipher_suite: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub authorized_user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list_detail: Vec<SubDetail>,
}

/// One subscription in detail. Go: server/monitor.go SubDetail.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct SubDetail {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    pub subject: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub qgroup: String,
    pub sid: String,
    pub msgs: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub cid: u64,
}

/// `/subsz`. Go: server/monitor.go Subsz.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Subsz {
    pub server_id: String,
    pub now: String,
    #[serde(flatten)]
    pub stats: SublistStatsDoc,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<SubDetail>,
}

/// Sublist counters as `/subsz` shows them. Go: server/sublist.go SublistStats.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SublistStatsDoc {
    pub num_subscriptions: u32,
    pub num_cache: u32,
    pub num_inserts: u64,
    pub num_removes: u64,
    pub num_matches: u64,
    pub cache_hit_rate: f64,
    pub max_fanout: u32,
    pub avg_fanout: f64,
}

impl From<&SublistStats> for SublistStatsDoc {
    fn from(s: &SublistStats) -> Self {
        Self {
            num_subscriptions: s.num_subs,
            num_cache: s.num_cache,
            num_inserts: s.num_inserts,
            num_removes: s.num_removes,
            num_matches: s.num_matches,
            cache_hit_rate: s.cache_hit_rate,
            max_fanout: s.max_fanout,
            avg_fanout: s.avg_fanout,
        }
    }
}

/// `/routez`. Go: server/monitor.go Routez.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Routez {
    pub server_id: String,
    #[serde(default)]
    pub server_name: String,
    pub now: String,
    pub num_routes: usize,
    pub routes: Vec<RouteInfoz>,
}

/// One route of `/routez`. Go: server/monitor.go RouteInfo.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RouteInfoz {
    pub rid: u64,
    pub remote_id: String,
    #[serde(default)]
    pub remote_name: String,
    pub did_solicit: bool,
    pub is_configured: bool,
    pub ip: String,
    pub port: u16,
    pub start: String,
    /// The last time the route carried anything (Go: RouteInfo.LastActivity).
    #[serde(default)]
    pub last_activity: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rtt: String,
    pub uptime: String,
    /// Time since `last_activity`.
    #[serde(default)]
    pub idle: String,
    pub pending_size: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: usize,
    /// `account subject [queue]` entries, with `?subs=1`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<String>,
}

/// `/gatewayz`. Go: server/monitor.go Gatewayz.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Gatewayz {
    pub server_id: String,
    pub now: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub port: u16,
    /// Our connection to each remote cluster, by its name.
    pub outbound_gateways: BTreeMap<String, RemoteGatewayz>,
    /// The remote servers' connections to us, by their cluster's name.
    pub inbound_gateways: BTreeMap<String, Vec<RemoteGatewayz>>,
}

/// One gateway connection in `/gatewayz`. Go: server/monitor.go RemoteGatewayz.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemoteGatewayz {
    /// The remote cluster is in our `gateways` list (not learned by gossip).
    pub configured: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnInfo>,
    /// Per-account interest mode, with `?accs=1`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountGatewayz>,
}

/// One account's interest mode on a gateway connection. Go: server/monitor.go
/// AccountGatewayz.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct AccountGatewayz {
    pub name: String,
    /// `Optimistic`, `Transitioning` or `Interest-Only`.
    pub interest_mode: String,
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub no_interest_count: usize,
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub interest_only_threshold: usize,
    #[serde(rename = "num_subs", default, skip_serializing_if = "is_zero_usize")]
    pub num_subs: usize,
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub num_queue_subs: usize,
}

/// `/leafz`. Go: server/monitor.go Leafz. `leafs` is null when no link is up, as nats-server
/// shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Leafz {
    pub server_id: String,
    pub now: String,
    pub leafnodes: usize,
    pub leafs: Option<Vec<LeafInfo>>,
}

/// One leaf link in `/leafz` (Go 2.9.10: server/monitor.go LeafInfo).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LeafInfo {
    pub account: String,
    pub ip: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rtt: String,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<String>,
}

/// `/accountz`. Go: server/monitor.go Accountz.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Accountz {
    pub server_id: String,
    pub now: String,
    pub system_account: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_detail: Option<AccountInfo>,
}

/// One account in detail. Go: server/monitor.go AccountInfo.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountInfo {
    pub account_name: String,
    pub update_time: String,
    pub expired: bool,
    pub complete: bool,
    pub jetstream_enabled: bool,
    pub leafnode_connections: u64,
    pub client_connections: u64,
    pub subscriptions: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<ExtExport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<ExtImport>,
    pub sublist_stats: SublistStatsDoc,
}

/// An export. Go: server/monitor.go ExtExport (jwt.Export fields inline).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExtExport {
    pub subject: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub response_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_accounts: Vec<String>,
}

/// An import. Go: server/monitor.go ExtImport (jwt.Import fields inline).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExtImport {
    pub subject: String,
    pub account: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub invalid: bool,
    pub share: bool,
    pub tracking: bool,
}

/// `/accstatz`. Go: server/monitor.go AccountStatz.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountStatz {
    pub server_id: String,
    pub now: String,
    pub account_statz: Vec<AccountStat>,
}

/// One account's counters. Go: server/events.go AccountNumConns / AccountStat.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[non_exhaustive]
pub struct AccountStat {
    pub acc: String,
    pub conns: u64,
    pub leafnodes: u64,
    pub total_conns: u64,
    pub sent: DataStats,
    pub received: DataStats,
    pub slow_consumers: u64,
}

/// Messages and bytes. Go: server/events.go DataStats.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataStats {
    pub msgs: u64,
    pub bytes: u64,
}

/// `/jsz`. Go: server/monitor.go JSInfo; `disabled` when JetStream is off.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Jsz {
    pub server_id: String,
    pub now: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    pub config: JsConfig,
    pub memory: u64,
    pub storage: u64,
    pub reserved_memory: u64,
    pub reserved_storage: u64,
    pub accounts: u64,
    pub ha_assets: u64,
    pub api: JsApiStats,
    pub streams: u64,
    pub consumers: u64,
    pub messages: u64,
    pub bytes: u64,
    /// Go: `meta_cluster`, the meta group (clustered servers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_cluster: Option<natsd_core::jetstream::cluster::MetaClusterInfo>,
    /// Go: `account_details` (`accounts=true` or `acc=`), AccountDetail documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_details: Vec<serde_json::Value>,
}

/// JetStream limits. Go: server/jetstream.go JetStreamConfig.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JsConfig {
    pub max_memory: i64,
    pub max_storage: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub store_dir: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub compress_ok: bool,
}

/// JetStream API counters. Go: server/jetstream.go JetStreamAPIStats.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JsApiStats {
    pub total: u64,
    pub errors: u64,
    /// Requests being handled now.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inflight: u64,
}

/// `/healthz`. Go: server/monitor.go HealthStatus.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthStatus {
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// `/raftz`: Raft groups by account and group name (natsd's own shape per group).
pub type Raftz = BTreeMap<String, BTreeMap<String, serde_json::Value>>;
