//! What nats-server's request structs hold beyond natsd's, and which of their fields refuse
//! `null`, keyed by the name of natsd's Rust struct for the same request.
//!
//! Strict decoding refuses a key only when nats-server 2.12 (the release that made strict the
//! default) has no such field in that request either. A field nats-server knows but natsd
//! does not act on (`no_ack`, `sample_freq`, `allow_atomic`, ...) passes, as it does through
//! a nats-server release older than the field: natsd reports no JetStream API level, so a
//! client that checks the level does not count on those features here.
//!
//! Why strict stays the default although natsd claims nats-server 2.9.10's protocol and no API
//! level, where a client may expect nothing to be refused: with every 2.12 field name known, a
//! client written for any release up to 2.12 is never refused for a field name it may send,
//! while a misspelt field, or one of a later API level that a client should not send to a
//! server of level 0, fails loudly instead of being dropped without a word.

/// Every JSON field of the nats-server 2.12 struct that natsd's struct `name` decodes (Go:
/// the `json` tags in server/stream.go, consumer.go, jetstream_api.go,
/// jetstream_cluster.go); empty for structs that are not JetStream requests.
pub fn go_fields(name: &str) -> &'static [&'static str] {
    match name {
        "StreamConfig" => &[
            "name",
            "description",
            "subjects",
            "retention",
            "max_consumers",
            "max_msgs",
            "max_bytes",
            "max_age",
            "max_msgs_per_subject",
            "max_msg_size",
            "discard",
            "storage",
            "num_replicas",
            "no_ack",
            "template_owner",
            "duplicate_window",
            "placement",
            "mirror",
            "sources",
            "compression",
            "first_seq",
            "subject_transform",
            "republish",
            "allow_direct",
            "mirror_direct",
            "discard_new_per_subject",
            "sealed",
            "deny_delete",
            "deny_purge",
            "allow_rollup_hdrs",
            "consumer_limits",
            "allow_msg_ttl",
            "subject_delete_marker_ttl",
            "allow_msg_counter",
            "allow_atomic",
            "allow_msg_schedules",
            "persist_mode",
            "metadata",
            // StreamConfigRequest embeds StreamConfig and adds this.
            "pedantic",
        ],
        "StreamSource" => &[
            "name",
            "opt_start_seq",
            "opt_start_time",
            "filter_subject",
            "subject_transforms",
            "external",
            // 2.14 (ADR-60).
            "consumer",
        ],
        "StreamConsumerSource" => &["name", "deliver_subject"],
        "ExternalStream" => &["api", "deliver"],
        "SubjectTransformConfig" => &["src", "dest"],
        "RePublish" => &["src", "dest", "headers_only"],
        "Placement" => &["cluster", "tags", "preferred"],
        "ConsumerConfig" => &[
            "durable_name",
            "name",
            "description",
            "deliver_policy",
            "opt_start_seq",
            "opt_start_time",
            "ack_policy",
            "ack_wait",
            "max_deliver",
            "backoff",
            "filter_subject",
            "filter_subjects",
            "replay_policy",
            "rate_limit_bps",
            "sample_freq",
            "max_waiting",
            "max_ack_pending",
            "flow_control",
            "headers_only",
            "max_batch",
            "max_expires",
            "max_bytes",
            "deliver_subject",
            "deliver_group",
            "idle_heartbeat",
            "inactive_threshold",
            "num_replicas",
            "mem_storage",
            "direct",
            "metadata",
            "pause_until",
            "priority_groups",
            "priority_policy",
            "priority_timeout",
        ],
        "CreateConsumerRequest" => &["stream_name", "config", "action", "pedantic"],
        // JSApiConsumerGetNextRequest with its embedded PriorityGroup.
        "NextRequest" => &[
            "expires",
            "batch",
            "max_bytes",
            "no_wait",
            "idle_heartbeat",
            "group",
            "min_pending",
            "min_ack_pending",
            "id",
            "priority",
        ],
        "MsgGetRequest" => &[
            "seq",
            "last_by_subj",
            "next_by_subj",
            "batch",
            "max_bytes",
            "start_time",
            "multi_last",
            "up_to_seq",
            "up_to_time",
            "no_hdr",
        ],
        "MsgDeleteRequest" => &["seq", "no_erase"],
        "PurgeRequest" => &["seq", "filter", "keep"],
        // Stream names and list (JSApiStreamNamesRequest, JSApiStreamListRequest) and
        // consumer names and list (JSApiConsumersRequest, `offset` only) share natsd's struct.
        "ListRequest" => &["offset", "subject"],
        "InfoRequest" => &["offset", "deleted_details", "subjects_filter"],
        "UnpinRequest" => &["group"],
        "PauseRequest" => &["pause_until"],
        "SnapshotRequest" => &[
            "deliver_subject",
            "no_consumers",
            "chunk_size",
            "window_size",
            "jsck",
        ],
        "RestoreRequest" => &["config", "state"],
        _ => &[],
    }
}

/// Why `null` is refused for `field` of `name`, when nats-server decodes that field with its
/// own `UnmarshalJSON`, which takes no `null` (Go: store.go RetentionPolicy and its siblings,
/// filestore.go StoreCompression, consumer.go ConsumerAction and PriorityPolicy, stream.go
/// PersistModeType). The text is the method's error.
pub fn null_refused(name: &str, field: &str) -> Option<&'static str> {
    const CAN_NOT: &str = "can not unmarshal \"null\"";
    match (name, field) {
        ("StreamConfig", "retention" | "discard" | "storage" | "persist_mode")
        | ("ConsumerConfig", "deliver_policy" | "ack_policy" | "replay_policy") => Some(CAN_NOT),
        ("StreamConfig", "compression") => Some("unknown compression algorithm"),
        ("ConsumerConfig", "priority_policy") => Some("unknown priority policy: null"),
        ("CreateConsumerRequest", "action") => Some("unknown consumer action: null"),
        _ => None,
    }
}
