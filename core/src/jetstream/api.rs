//! The JetStream API's JSON documents and error codes, shaped as nats-server sends them
//! (Go: server/jetstream_api.go, stream.go, consumer.go, errors.json).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::store::UnixNanos;

/// An API error: HTTP-like `code`, JetStream `err_code`, text (Go: `ApiError`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// HTTP-like status.
    pub code: u16,
    /// JetStream error code (Go: errors.json `error_code`).
    pub err_code: u16,
    /// Text.
    pub description: String,
}

impl ApiError {
    /// An error with its own text.
    pub fn new(code: u16, err_code: u16, description: impl Into<String>) -> Self {
        Self {
            code,
            err_code,
            description: description.into(),
        }
    }
}

/// Constructors for the errors natsd answers with; numbers and texts from nats-server's
/// errors.json.
pub mod err {
    use super::ApiError;

    /// 10003.
    pub fn bad_request() -> ApiError {
        ApiError::new(400, 10003, "bad request")
    }
    /// 10025.
    pub fn invalid_json(e: &str) -> ApiError {
        ApiError::new(400, 10025, format!("invalid JSON: {e}"))
    }
    /// 10047 (ENOSPC from the store).
    pub fn storage_exceeded() -> ApiError {
        ApiError::new(500, 10047, "insufficient storage resources available")
    }
    /// 10052.
    pub fn stream_invalid_config(e: &str) -> ApiError {
        ApiError::new(500, 10052, e)
    }
    /// 10054.
    pub fn msg_too_large() -> ApiError {
        ApiError::new(400, 10054, "message size exceeds maximum allowed")
    }
    /// 10056.
    pub fn stream_mismatch() -> ApiError {
        ApiError::new(400, 10056, "stream name in subject does not match request")
    }
    /// 10057.
    pub fn msg_delete_failed(e: &str) -> ApiError {
        ApiError::new(500, 10057, e)
    }
    /// 10058.
    pub fn stream_name_exist() -> ApiError {
        ApiError::new(
            400,
            10058,
            "stream name already in use with a different configuration",
        )
    }
    /// 10059.
    pub fn stream_not_found() -> ApiError {
        ApiError::new(404, 10059, "stream not found")
    }
    /// 10060.
    pub fn stream_not_match() -> ApiError {
        ApiError::new(400, 10060, "expected stream does not match")
    }
    /// 10065.
    pub fn subject_overlap() -> ApiError {
        ApiError::new(400, 10065, "subjects overlap with an existing stream")
    }
    /// 10070.
    pub fn wrong_last_msg_id(id: &str) -> ApiError {
        ApiError::new(400, 10070, format!("wrong last msg ID: {id}"))
    }
    /// 10071.
    pub fn wrong_last_sequence(seq: u64) -> ApiError {
        ApiError::new(400, 10071, format!("wrong last sequence: {seq}"))
    }
    /// 10074.
    pub fn replicas_not_supported() -> ApiError {
        ApiError::new(
            500,
            10074,
            "replicas > 1 not supported in non-clustered mode",
        )
    }
    /// 10077.
    pub fn store_failed(e: &str) -> ApiError {
        ApiError::new(503, 10077, e)
    }
    /// 10037.
    pub fn no_message_found() -> ApiError {
        ApiError::new(404, 10037, "no message found")
    }
    /// 10014.
    pub fn consumer_not_found() -> ApiError {
        ApiError::new(404, 10014, "consumer not found")
    }
    /// 10012.
    pub fn consumer_create(e: &str) -> ApiError {
        ApiError::new(500, 10012, e)
    }
    /// 10013.
    pub fn consumer_name_exist() -> ApiError {
        ApiError::new(400, 10013, "consumer name already in use")
    }
    /// 10017.
    pub fn durable_name_mismatch() -> ApiError {
        ApiError::new(
            400,
            10017,
            "consumer name in subject does not match durable name in request",
        )
    }
    /// 10078.
    pub fn consumer_config_required() -> ApiError {
        ApiError::new(400, 10078, "consumer config required")
    }
    /// 10093.
    pub fn filter_not_subset() -> ApiError {
        ApiError::new(
            400,
            10093,
            "consumer filter subject is not a valid subset of the interest subjects",
        )
    }
    /// 10127.
    pub fn consumer_name_path_separators() -> ApiError {
        ApiError::new(400, 10127, "Consumer name can not contain path separators")
    }
    /// 10128.
    pub fn stream_name_path_separators() -> ApiError {
        ApiError::new(400, 10128, "Stream name can not contain path separators")
    }
    /// 10131.
    pub fn filter_mismatch() -> ApiError {
        ApiError::new(
            400,
            10131,
            "Consumer create request did not match filtered subject from create subject",
        )
    }
    /// 10148.
    pub fn consumer_already_exists() -> ApiError {
        ApiError::new(400, 10148, "consumer already exists")
    }
    /// 10149.
    pub fn consumer_does_not_exist() -> ApiError {
        ApiError::new(400, 10149, "consumer does not exist")
    }
    /// 10111.
    pub fn rollup_failed(e: &str) -> ApiError {
        ApiError::new(500, 10111, e)
    }
    /// 10110.
    pub fn purge_failed(e: &str) -> ApiError {
        ApiError::new(500, 10110, e)
    }
    /// 10109.
    pub fn sealed() -> ApiError {
        ApiError::new(400, 10109, "invalid operation on sealed stream")
    }
    /// 10030.
    pub fn mirror_max_msg_size() -> ApiError {
        ApiError::new(
            400,
            10030,
            "stream mirror must have max message size >= source",
        )
    }
    /// 10031.
    pub fn mirror_with_sources() -> ApiError {
        ApiError::new(
            400,
            10031,
            "stream mirrors can not also contain other sources",
        )
    }
    /// 10032.
    pub fn mirror_with_start_seq_and_time() -> ApiError {
        ApiError::new(
            400,
            10032,
            "stream mirrors can not have both start seq and start time configured",
        )
    }
    /// 10034.
    pub fn mirror_with_subjects() -> ApiError {
        ApiError::new(400, 10034, "stream mirrors can not contain subjects")
    }
    /// 10046.
    pub fn source_max_msg_size() -> ApiError {
        ApiError::new(
            400,
            10046,
            "stream source must have max message size >= target",
        )
    }
    /// 10055.
    pub fn mirror_not_updatable() -> ApiError {
        ApiError::new(400, 10055, "stream mirror configuration can not be updated")
    }
    /// 10140.
    pub fn source_duplicate() -> ApiError {
        ApiError::new(400, 10140, "duplicate source configuration detected")
    }
    /// 10141.
    pub fn source_invalid_stream_name() -> ApiError {
        ApiError::new(400, 10141, "sourced stream name is invalid")
    }
    /// 10142.
    pub fn mirror_invalid_stream_name() -> ApiError {
        ApiError::new(400, 10142, "mirrored stream name is invalid")
    }
    /// 10143.
    pub fn mirror_with_first_seq() -> ApiError {
        ApiError::new(
            400,
            10143,
            "stream mirrors can not have first sequence configured",
        )
    }
    /// 10144.
    pub fn source_multiple_filters() -> ApiError {
        ApiError::new(
            400,
            10144,
            "source with multiple subject transforms cannot also have a single subject filter",
        )
    }
    /// 10147.
    pub fn source_overlapping_filters() -> ApiError {
        ApiError::new(400, 10147, "source filters can not overlap")
    }
    /// 10150.
    pub fn mirror_multiple_filters() -> ApiError {
        ApiError::new(
            400,
            10150,
            "mirror with multiple subject transforms cannot also have a single subject filter",
        )
    }
    /// 10152.
    pub fn mirror_overlapping_filters() -> ApiError {
        ApiError::new(400, 10152, "mirror subject filters can not overlap")
    }
    /// 10165.
    pub fn msg_ttl_invalid() -> ApiError {
        ApiError::new(400, 10165, "invalid per-message TTL")
    }
    /// 10166.
    pub fn msg_ttl_disabled() -> ApiError {
        ApiError::new(400, 10166, "per-message TTL is disabled")
    }
    /// 10145.
    pub fn source_invalid_subject_filter(e: &str) -> ApiError {
        ApiError::new(400, 10145, format!("source transform source: {e}"))
    }
    /// 10146.
    pub fn source_invalid_transform_dest(e: &str) -> ApiError {
        ApiError::new(400, 10146, format!("source transform: {e}"))
    }
    /// 10151.
    pub fn mirror_invalid_subject_filter(e: &str) -> ApiError {
        ApiError::new(400, 10151, format!("mirror transform source: {e}"))
    }
    /// 10154.
    pub fn mirror_invalid_transform_dest(e: &str) -> ApiError {
        ApiError::new(400, 10154, format!("mirror transform: {e}"))
    }
    /// 10155.
    pub fn stream_transform_invalid_source(e: &str) -> ApiError {
        ApiError::new(400, 10155, format!("stream transform source: {e}"))
    }
    /// 10156.
    pub fn stream_transform_invalid_dest(e: &str) -> ApiError {
        ApiError::new(400, 10156, format!("stream transform: {e}"))
    }

    // Clustered JetStream (Go: jetstream_cluster.go, jetstream_api.go). The resource errors
    // (10023 insufficient resources, 10026–10028) live in `limits`.

    /// 10005: placement found no peers; `detail` says why (see `cluster::placement`).
    pub fn cluster_no_peers(detail: &str) -> ApiError {
        ApiError::new(400, 10005, detail)
    }
    /// 10006.
    pub fn cluster_not_active() -> ApiError {
        ApiError::new(500, 10006, "JetStream not in clustered mode")
    }
    /// 10008: no meta leader (or no stream/consumer leader) to take the request.
    pub fn cluster_not_avail() -> ApiError {
        ApiError::new(503, 10008, "JetStream system temporarily unavailable")
    }
    /// 10009.
    pub fn cluster_not_leader() -> ApiError {
        ApiError::new(500, 10009, "JetStream cluster can not handle request")
    }
    /// 10010: a request that only means something in a cluster (stepdown, peer removal).
    pub fn cluster_required() -> ApiError {
        ApiError::new(503, 10010, "JetStream clustering support required")
    }
    /// 10011.
    pub fn cluster_tags() -> ApiError {
        ApiError::new(400, 10011, "tags placement not supported for operation")
    }
    /// 10036.
    pub fn cluster_unsupported() -> ApiError {
        ApiError::new(503, 10036, "not currently supported in clustered mode")
    }
    /// 10040.
    pub fn cluster_peer_not_member() -> ApiError {
        ApiError::new(400, 10040, "peer not a member")
    }
    /// 10041.
    pub fn raft_general(e: &str) -> ApiError {
        ApiError::new(500, 10041, e)
    }
    /// 10123: an update that both moves a stream (new placement) and changes its replicas.
    pub fn stream_move_and_scale() -> ApiError {
        ApiError::new(
            400,
            10123,
            "can not move and scale a stream in a single update",
        )
    }
    /// 10124: an update asking for a move (or a scale) while the stream is moving.
    pub fn stream_move_in_progress(msg: &str) -> ApiError {
        ApiError::new(
            400,
            10124,
            format!("stream move already in progress: {msg}"),
        )
    }
    /// 10044.
    pub fn cluster_server_not_member() -> ApiError {
        ApiError::new(400, 10044, "server is not a member of the cluster")
    }
    /// 10052 with Go's text for `num_replicas` over 5.
    pub fn max_replicas() -> ApiError {
        stream_invalid_config("maximum replicas is 5")
    }
    /// 10061.
    pub fn replicas_not_updatable() -> ApiError {
        ApiError::new(400, 10061, "Replicas configuration can not be updated")
    }
    /// 10075.
    pub fn peer_remap() -> ApiError {
        ApiError::new(503, 10075, "peer remap failed")
    }
    /// 10126.
    pub fn consumer_replicas_exceeds_stream() -> ApiError {
        ApiError::new(
            400,
            10126,
            "consumer config replica count exceeds parent stream",
        )
    }
    /// 10133.
    pub fn replicas_negative() -> ApiError {
        ApiError::new(400, 10133, "replicas count cannot be negative")
    }
}

/// Go's `-1` for "no limit" in JSON.
fn unlimited() -> i64 {
    -1
}

fn one() -> i64 {
    1
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Go: `StreamConfig` (the fields natsd implements; others are rejected or ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamConfig {
    /// Stream name.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Captured subjects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// `limits`, `interest` or `workqueue`.
    #[serde(default = "retention_default")]
    pub retention: String,
    /// Most consumers.
    #[serde(default = "unlimited")]
    pub max_consumers: i64,
    /// Most messages.
    #[serde(default = "unlimited")]
    pub max_msgs: i64,
    /// Most bytes.
    #[serde(default = "unlimited")]
    pub max_bytes: i64,
    /// Oldest message age, nanoseconds (0: unlimited).
    #[serde(default)]
    pub max_age: i64,
    /// Most messages per subject.
    #[serde(default = "unlimited")]
    pub max_msgs_per_subject: i64,
    /// Largest message.
    #[serde(default = "unlimited")]
    pub max_msg_size: i64,
    /// `old` or `new`.
    #[serde(default = "discard_default")]
    pub discard: String,
    /// `file` or `memory`.
    #[serde(default = "storage_default")]
    pub storage: String,
    /// Replicas (1 on one server).
    #[serde(default = "one")]
    pub num_replicas: i64,
    /// Nats-Msg-Id de-duplication window, nanoseconds (0 in a request: the default, set by
    /// the config check; mirrors and sourcing streams keep 0).
    #[serde(
        default,
        deserialize_with = "super::signed::negative_refused",
        skip_serializing_if = "is_zero"
    )]
    pub duplicate_window: u64,
    /// Sealed: no writes, no deletes.
    #[serde(default)]
    pub sealed: bool,
    /// Refuse MSG.DELETE.
    #[serde(default)]
    pub deny_delete: bool,
    /// Refuse PURGE.
    #[serde(default)]
    pub deny_purge: bool,
    /// Honour `Nats-Rollup`.
    #[serde(default)]
    pub allow_rollup_hdrs: bool,
    /// Answer `$JS.API.DIRECT.GET`.
    #[serde(default)]
    pub allow_direct: bool,
    /// Mirror direct get (not used on one server).
    #[serde(default)]
    pub mirror_direct: bool,
    /// With discard new, also refuse at `max_msgs_per_subject`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    /// First sequence of a new stream.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_seq: u64,
    /// Where to place it (accepted; one server has nowhere else to put it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Another stream this one copies, sequences and all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    /// Streams whose messages this one also stores.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sources: Vec<StreamSource>,
    /// `none` or `s2` (natsd stores `s2` streams uncompressed).
    #[serde(default = "compression_default")]
    pub compression: String,
    /// Rewrites the subject of every captured message before it is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<SubjectTransformConfig>,
    /// Publishes every stored message again, to a transformed subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub republish: Option<RePublish>,
    /// Honour the `Nats-TTL` header (Go 2.11).
    #[serde(default)]
    pub allow_msg_ttl: bool,
    /// TTL of subject delete markers, nanoseconds (accepted and checked; no markers are
    /// written).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub subject_delete_marker_ttl: u64,
    /// Every subject is a counter: publishes carry `Nats-Incr` (Go 2.12, ADR-49).
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_msg_counter: bool,
    /// Accept atomic batch publishes, `Nats-Batch-*` (Go 2.12, ADR-50).
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_atomic: bool,
    /// Accept message schedules, `Nats-Schedule` (Go 2.12, ADR-51).
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_msg_schedules: bool,
    /// `default` (acknowledge once synced) or `async` (acknowledge before the sync; Go 2.12).
    #[serde(
        default,
        skip_serializing_if = "crate::jetstream::stream::persist_mode_is_default"
    )]
    pub persist_mode: String,
    /// Free-form key/value pairs.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub metadata: BTreeMap<String, String>,
}

fn compression_default() -> String {
    "none".to_owned()
}

/// A field a client may send as `null` for its default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go: `Placement`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Cluster name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Server tags.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    /// Preferred server (refused, as by nats-server).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preferred: String,
}

/// Go: `SubjectTransformConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectTransformConfig {
    /// Source filter (empty: `>`).
    #[serde(default)]
    pub src: String,
    /// Destination template.
    #[serde(default)]
    pub dest: String,
}

/// Go: `RePublish`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RePublish {
    /// Which stored subjects (empty: `>`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub src: String,
    /// Destination template.
    #[serde(default)]
    pub dest: String,
    /// Send only the headers, with `Nats-Msg-Size`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub headers_only: bool,
}

/// Go: `ExternalStream`: an origin in another account or domain, reached through the
/// imports of `api` and `deliver` (see `sourcing::external`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalStream {
    /// API prefix.
    #[serde(default)]
    pub api: String,
    /// Delivery prefix.
    #[serde(default)]
    pub deliver: String,
}

/// Go: `StreamSource`, for `mirror` and `sources`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSource {
    /// Origin stream.
    #[serde(default)]
    pub name: String,
    /// First origin sequence to copy.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub opt_start_seq: u64,
    /// First origin time to copy (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    /// Only these origin subjects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    /// Filters with subject rewrites.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subject_transforms: Vec<SubjectTransformConfig>,
    /// Another account or domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    /// nats-server 2.14 (ADR-60): read through this durable consumer of the origin, which
    /// must have ack policy `flow_control` (see `sourcing::durable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<StreamConsumerSource>,
}

/// Go 2.14: `StreamConsumerSource`, the durable consumer a mirror or source reads through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamConsumerSource {
    /// The consumer's name on the origin stream.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its deliver subject.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deliver_subject: String,
}

fn retention_default() -> String {
    "limits".to_owned()
}
fn discard_default() -> String {
    "old".to_owned()
}
fn storage_default() -> String {
    "file".to_owned()
}

/// Go: `StreamState` as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamStateJson {
    /// Messages.
    pub messages: u64,
    /// Bytes.
    pub bytes: u64,
    /// First sequence.
    pub first_seq: u64,
    /// First timestamp (RFC 3339).
    pub first_ts: String,
    /// Last sequence.
    pub last_seq: u64,
    /// Last timestamp.
    pub last_ts: String,
    /// Interior deletes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_deleted: u64,
    /// Distinct subjects.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_subjects: u64,
    /// Consumers.
    pub consumer_count: u64,
}

/// Go: `ConsumerConfig` (the fields natsd implements).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    /// Durable name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durable_name: Option<String>,
    /// Name (durable or not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Push target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_subject: Option<String>,
    /// Push: the queue group whose members share the deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_group: Option<String>,
    /// `all`, `last`, `new`, `by_start_sequence`, `by_start_time`, `last_per_subject`.
    pub deliver_policy: String,
    /// Start sequence for `by_start_sequence`.
    #[serde(skip_serializing_if = "is_zero")]
    pub opt_start_seq: u64,
    /// Start time (RFC 3339) for `by_start_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    /// `none`, `all`, `explicit`.
    pub ack_policy: String,
    /// Redelivery delay, nanoseconds.
    #[serde(deserialize_with = "super::signed::negative_refused")]
    pub ack_wait: u64,
    /// Most deliveries (-1: unlimited).
    pub max_deliver: i64,
    /// Redelivery delays, nanoseconds: the nth redelivery waits `backoff[n-1]` (the last one
    /// repeats); overrides `ack_wait`.
    #[serde(
        deserialize_with = "super::signed::negatives_refused",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub backoff: Vec<u64>,
    /// Filter.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    /// Several filters (nats-server 2.10).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_subjects: Vec<String>,
    /// `instant` or `original`.
    pub replay_policy: String,
    /// Push delivery rate limit, bits per second.
    #[serde(skip_serializing_if = "is_zero")]
    pub rate_limit_bps: u64,
    /// Ack sampling for the `$JS.EVENT.METRIC` advisories (`"50%"`), echoed back as given.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sample_freq: String,
    /// Most outstanding pull requests.
    #[serde(
        deserialize_with = "super::signed::negative_is_zero",
        skip_serializing_if = "is_zero"
    )]
    pub max_waiting: u64,
    /// Most unacknowledged messages.
    pub max_ack_pending: i64,
    /// Push heartbeats, nanoseconds.
    #[serde(
        deserialize_with = "super::signed::negative_is_zero",
        skip_serializing_if = "is_zero"
    )]
    pub idle_heartbeat: u64,
    /// Push flow control.
    #[serde(skip_serializing_if = "is_false")]
    pub flow_control: bool,
    /// Only headers.
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
    /// Ephemeral cleanup delay, nanoseconds.
    #[serde(
        deserialize_with = "super::signed::negative_is_zero",
        skip_serializing_if = "is_zero"
    )]
    pub inactive_threshold: u64,
    /// Replicas (Go always sends it, 0 for "as the stream").
    pub num_replicas: u64,
    /// Memory storage for the consumer state.
    #[serde(skip_serializing_if = "is_false")]
    pub mem_storage: bool,
    /// Largest batch a pull request may ask for.
    #[serde(
        deserialize_with = "super::signed::negative_is_zero",
        skip_serializing_if = "is_zero"
    )]
    pub max_batch: u64,
    /// Longest expiry a pull request may ask for, nanoseconds.
    #[serde(
        deserialize_with = "super::signed::negative_is_zero",
        skip_serializing_if = "is_zero"
    )]
    pub max_expires: u64,
    /// Largest `max_bytes` a pull request may ask for.
    #[serde(
        deserialize_with = "super::signed::negative_is_zero",
        skip_serializing_if = "is_zero"
    )]
    pub max_bytes: u64,
    /// Paused until this time (RFC 3339, nats-server 2.11).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<String>,
    /// Priority groups pull requests name (nats-server 2.11; one is used).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub priority_groups: Vec<String>,
    /// `none`, `overflow`, `pinned_client` or `prioritized` (2.12).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub priority_policy: String,
    /// How long a pin lasts without a request from its client, nanoseconds.
    #[serde(
        deserialize_with = "super::signed::negative_is_zero",
        skip_serializing_if = "is_zero"
    )]
    pub priority_timeout: u64,
    /// Free-form key/value pairs (nats-server 2.10).
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub metadata: BTreeMap<String, String>,
}

/// A consumer create request (Go: `CreateConsumerRequest`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreateConsumerRequest {
    /// Stream.
    #[serde(default)]
    pub stream_name: String,
    /// Config.
    pub config: Option<ConsumerConfig>,
    /// `create`, `update` or empty.
    #[serde(default)]
    pub action: String,
}

/// A pull request (Go: `JSApiConsumerGetNextRequest`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NextRequest {
    /// Expiry, nanoseconds.
    pub expires: u64,
    /// Most messages.
    pub batch: i64,
    /// Most bytes.
    pub max_bytes: i64,
    /// Answer 404 at once when nothing is pending.
    pub no_wait: bool,
    /// Heartbeat, nanoseconds.
    pub idle_heartbeat: u64,
    /// Priority group (nats-server 2.11). Clients send `null` for the priority fields
    /// they do not use.
    #[serde(deserialize_with = "null_default")]
    pub group: String,
    /// Overflow: serve only while this many messages are pending.
    #[serde(deserialize_with = "null_default")]
    pub min_pending: u64,
    /// Overflow: serve only while this many acks are outstanding.
    #[serde(deserialize_with = "null_default")]
    pub min_ack_pending: u64,
    /// Pinned client: the pin id the server handed out.
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    /// Prioritized (nats-server 2.12): 0 (first served) to 9.
    #[serde(deserialize_with = "null_default")]
    pub priority: i64,
}

/// Go: `JSApiMsgGetRequest`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MsgGetRequest {
    /// By sequence.
    pub seq: u64,
    /// Last by subject.
    #[serde(deserialize_with = "null_str")]
    pub last_by_subj: String,
    /// Next by subject from `seq`.
    #[serde(deserialize_with = "null_str")]
    pub next_by_subj: String,
}

/// Go: `JSApiMsgDeleteRequest`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MsgDeleteRequest {
    /// Sequence.
    pub seq: u64,
    /// Overwrite (natsd removes either way).
    pub no_erase: bool,
}

/// Go: `JSApiStreamPurgeRequest`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PurgeRequest {
    /// Subject filter.
    #[serde(deserialize_with = "null_str")]
    pub filter: String,
    /// Purge below this sequence.
    pub seq: u64,
    /// Keep this many.
    pub keep: u64,
}

/// Go: `JSApiStreamNamesRequest` / list paging.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListRequest {
    /// Paging offset.
    pub offset: usize,
    /// Subject filter (stream names); clients send `null` for none.
    pub subject: Option<String>,
}

/// A string field a client may send as `null`.
fn null_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// RFC 3339 UTC with nanoseconds, as Go's `time.Time` JSON; 0 is Go's zero time.
pub fn rfc3339(ns: UnixNanos) -> String {
    if ns == 0 {
        return "0001-01-01T00:00:00Z".to_owned();
    }
    let secs = (ns / 1_000_000_000) as i64;
    let nanos = ns % 1_000_000_000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::civil::civil_from_days(days);
    let frac = if nanos == 0 {
        String::new()
    } else {
        let s = format!(".{nanos:09}");
        s.trim_end_matches('0').to_owned()
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0), "0001-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_700_000_000_123_000_000),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn stream_config_defaults() {
        let c: StreamConfig = serde_json::from_str(r#"{"name":"S"}"#).unwrap();
        assert_eq!(c.max_msgs, -1);
        assert_eq!(c.storage, "file");
        assert_eq!(c.duplicate_window, 0);
        assert_eq!(c.compression, "none");
        let c: StreamConfig =
            serde_json::from_str(r#"{"name":"S","sources":null,"metadata":null}"#).unwrap();
        assert!(c.sources.is_empty() && c.metadata.is_empty());
    }
}
