//! The duplicate window across restarts: a client publishes with `Nats-Msg-Id`s, the server
//! goes down (SIGKILL, or a clean SIGTERM) before the client has seen its PubAcks, and the
//! client publishes the same ids again once the server is back. Every retry must be answered
//! as a duplicate of the original sequence and the stream must hold each message once, as
//! nats-server does (it rebuilds its window from the stored messages when it recovers).

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use natsd_tests::js::api;
use natsd_tests::{both, within, ServerKind, TestServer};
use serde_json::{json, Value};

both!(
    retries_after_kill_are_duplicates,
    retries_after_clean_stop_are_duplicates
);

const N: u64 = 50;
const TEN_MIN_NS: u64 = 600_000_000_000;

/// Publishes `id0..id{N-1}` on `d.x`; returns the PubAcks in order.
async fn publish_ids(c: &async_nats::Client) -> Vec<Value> {
    let mut acks = Vec::new();
    for i in 0..N {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", format!("id{i}").as_str());
        let m = within(
            "PubAck",
            c.request_with_headers("d.x", h, format!("m{i}").into()),
        )
        .await
        .unwrap();
        acks.push(serde_json::from_slice(&m.payload).unwrap());
    }
    acks
}

async fn stream_msgs(c: &async_nats::Client) -> u64 {
    let v = api(c, "$JS.API.STREAM.INFO.D", Value::Null).await;
    v["state"]["messages"]
        .as_u64()
        .unwrap_or_else(|| panic!("{v}"))
}

/// Stops `s` with SIGTERM (its pid from its `-P` file) and waits for it to exit.
async fn stop_cleanly(mut s: TestServer, pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    let st = std::process::Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(st.success());
    within("clean stop", async {
        while s.is_running() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

async fn retries_after_kill_are_duplicates(kind: ServerKind) {
    retries_across_restart(kind, true).await;
}

async fn retries_after_clean_stop_are_duplicates(kind: ServerKind) {
    retries_across_restart(kind, false).await;
}

async fn retries_across_restart(kind: ServerKind, kill: bool) {
    let sd = tempfile::tempdir().unwrap();
    let pid_file = sd.path().join("server.pid");
    let pid_arg = pid_file.to_str().unwrap().to_owned();
    let store = sd.path().join("store");
    let path = store.to_str().unwrap().to_owned();
    {
        let args = ["-js", "-sd", &path, "-P", &pid_arg];
        let s = TestServer::start_with_args(kind, "", &args).await;
        let c = s.client().await;
        let cfg = json!({"name": "D", "subjects": ["d.>"], "storage": "file",
                         "duplicate_window": TEN_MIN_NS});
        let v = api(&c, "$JS.API.STREAM.CREATE.D", cfg).await;
        assert!(v.get("error").is_none(), "{v}");
        let acks = publish_ids(&c).await;
        for (i, a) in acks.iter().enumerate() {
            assert_eq!(*a, json!({"stream": "D", "seq": i as u64 + 1}));
        }
        if kill {
            // Dropping the handle kills the process (SIGKILL).
            drop(c);
            drop(s);
        } else {
            stop_cleanly(s, &pid_file).await;
        }
    }
    let s = TestServer::start_with_args(kind, "", &["-js", "-sd", &path]).await;
    let c = s.client().await;
    // The client never saw those acks: it publishes every id again.
    let again = publish_ids(&c).await;
    for (i, a) in again.iter().enumerate() {
        assert_eq!(
            *a,
            json!({"stream": "D", "seq": i as u64 + 1, "duplicate": true}),
            "retry of id{i}"
        );
    }
    assert_eq!(stream_msgs(&c).await, N);
}
