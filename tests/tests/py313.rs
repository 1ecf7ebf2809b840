//! The current Python client family (`nats-core`, `nats-jetstream`, `nats-key-value`, Python
//! 3.13) against each server kind: one test per scenario of `tests/py/py313_*.py`, run by
//! `natsd_tests::py313::run`. Without a usable interpreter each test prints why and passes;
//! scenarios natsd does not pass yet are listed in `natsd_tests::py313::NATSD_KNOWN_GAPS`. The
//! `newer_*` scenarios need nats-server 2.10 or 2.11 features and run against natsd only.

use natsd_tests::{both, py313, ServerKind};

both!(
    core_connect,
    core_pubsub_headers,
    core_request_reply,
    core_queue_groups,
    core_drain_close,
    stream_admin,
    stream_messages,
    stream_direct_get,
    consumer_pull_fetch,
    consumer_next_acks,
    consumer_consume_loop,
    consumer_ordered,
    consumer_admin,
    kv_basic,
    kv_ttl,
    kv_keys_history,
    kv_watch,
    newer_multi_filter,
    newer_metadata_compression,
    newer_consumer_pause,
    newer_kv_marker_ttl,
);

async fn core_connect(kind: ServerKind) {
    py313::run(kind, "py313_core", "connect").await;
}

async fn core_pubsub_headers(kind: ServerKind) {
    py313::run(kind, "py313_core", "pubsub_headers").await;
}

async fn core_request_reply(kind: ServerKind) {
    py313::run(kind, "py313_core", "request_reply").await;
}

async fn core_queue_groups(kind: ServerKind) {
    py313::run(kind, "py313_core", "queue_groups").await;
}

async fn core_drain_close(kind: ServerKind) {
    py313::run(kind, "py313_core", "drain_close").await;
}

async fn stream_admin(kind: ServerKind) {
    py313::run(kind, "py313_stream", "stream_admin").await;
}

async fn stream_messages(kind: ServerKind) {
    py313::run(kind, "py313_stream", "stream_messages").await;
}

async fn stream_direct_get(kind: ServerKind) {
    py313::run(kind, "py313_stream", "direct_get").await;
}

async fn consumer_pull_fetch(kind: ServerKind) {
    py313::run(kind, "py313_consumer", "pull_fetch").await;
}

async fn consumer_next_acks(kind: ServerKind) {
    py313::run(kind, "py313_consumer", "next_acks").await;
}

async fn consumer_consume_loop(kind: ServerKind) {
    py313::run(kind, "py313_consumer", "consume_loop").await;
}

async fn consumer_ordered(kind: ServerKind) {
    py313::run(kind, "py313_consumer", "ordered").await;
}

async fn consumer_admin(kind: ServerKind) {
    py313::run(kind, "py313_consumer", "consumer_admin").await;
}

async fn kv_basic(kind: ServerKind) {
    py313::run(kind, "py313_kv", "kv_basic").await;
}

async fn kv_ttl(kind: ServerKind) {
    py313::run(kind, "py313_kv", "kv_ttl").await;
}

async fn kv_keys_history(kind: ServerKind) {
    py313::run(kind, "py313_kv", "kv_keys_history").await;
}

async fn kv_watch(kind: ServerKind) {
    py313::run(kind, "py313_kv", "kv_watch").await;
}

async fn newer_multi_filter(kind: ServerKind) {
    py313::run_natsd_only(
        kind,
        "py313_newer",
        "multi_filter",
        "2.10 (filter_subjects)",
    )
    .await;
}

async fn newer_metadata_compression(kind: ServerKind) {
    py313::run_natsd_only(kind, "py313_newer", "metadata_compression", "2.10").await;
}

async fn newer_consumer_pause(kind: ServerKind) {
    py313::run_natsd_only(kind, "py313_newer", "consumer_pause", "2.11").await;
}

async fn newer_kv_marker_ttl(kind: ServerKind) {
    py313::run_natsd_only(
        kind,
        "py313_newer",
        "kv_marker_ttl",
        "2.11 (per-message TTL)",
    )
    .await;
}
