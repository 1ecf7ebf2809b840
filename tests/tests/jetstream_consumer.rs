//! JetStream consumer features (deliver policies, backoff, NAK delay, replay, pull limits and
//! statuses, retention, inactivity), run against natsd and nats-server 2.9.10 where it has the
//! feature; 2.10/2.11 features (multiple filters, pause) run on natsd only.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use natsd_tests::js::{api, err_code, js_server};
use natsd_tests::{both, next_msg, within, within_for, ServerKind, TestServer};
use serde_json::{json, Value};

both!(
    start_time_and_policy_errors,
    backoff_spaces_redeliveries,
    nak_with_delay,
    replay_original,
    headers_only,
    pull_limits_and_statuses,
    interest_retention,
    workqueue_retention,
    ephemeral_inactive_threshold,
    durable_state_survives_restart,
);

/// nats-server 2.9 has neither `filter_subjects` (2.10) nor consumer pause (2.11); see
/// `durable_state_survives_kill` for why that one is natsd only.
mod natsd_only {
    #[tokio::test]
    async fn multiple_filters() {
        natsd_tests::run_scenario(natsd_tests::ServerKind::Natsd, super::multiple_filters).await;
    }

    #[tokio::test]
    async fn pause() {
        natsd_tests::run_scenario(natsd_tests::ServerKind::Natsd, super::pause).await;
    }

    #[tokio::test]
    async fn durable_state_survives_kill() {
        natsd_tests::run_scenario(
            natsd_tests::ServerKind::Natsd,
            super::durable_state_survives_kill,
        )
        .await;
    }

    #[tokio::test]
    async fn pinned_priority_group() {
        natsd_tests::run_scenario(natsd_tests::ServerKind::Natsd, super::pinned_priority_group)
            .await;
    }
}

/// A memory stream `S` on `s.>`.
async fn stream(c: &async_nats::Client, extra: Value) {
    let mut cfg = json!({"name": "S", "subjects": ["s.>"], "storage": "memory"});
    if let (Value::Object(a), Value::Object(b)) = (&mut cfg, extra) {
        a.extend(b);
    }
    let v = api(c, "$JS.API.STREAM.CREATE.S", cfg).await;
    assert!(v.get("error").is_none(), "{v}");
}

/// Publishes and waits for the stream's ack; returns the sequence.
async fn publish(c: &async_nats::Client, subject: &str, payload: &str) -> u64 {
    let m = within(
        "publish ack",
        c.request(subject.to_owned(), payload.to_owned().into()),
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    v["seq"].as_u64().unwrap_or_else(|| panic!("{v}"))
}

async fn durable(c: &async_nats::Client, name: &str, cfg: Value) -> Value {
    let mut cfg = cfg;
    cfg["durable_name"] = json!(name);
    // Go's zero value is ack none; clients always send a policy, so do these tests.
    if cfg.get("ack_policy").is_none() {
        cfg["ack_policy"] = json!("explicit");
    }
    api(
        c,
        &format!("$JS.API.CONSUMER.DURABLE.CREATE.S.{name}"),
        json!({"stream_name": "S", "config": cfg}),
    )
    .await
}

/// Sends a pull request; the returned subscription gets its messages and statuses.
async fn pull(c: &async_nats::Client, name: &str, req: Value) -> async_nats::Subscriber {
    let inbox = c.new_inbox();
    let sub = c.subscribe(inbox.clone()).await.unwrap();
    c.publish_with_reply(
        format!("$JS.API.CONSUMER.MSG.NEXT.S.{name}"),
        inbox,
        serde_json::to_vec(&req).unwrap().into(),
    )
    .await
    .unwrap();
    sub
}

fn status(m: &async_nats::Message) -> Option<u16> {
    m.status.map(|s| s.as_u16())
}

fn description(m: &async_nats::Message) -> String {
    m.description.clone().unwrap_or_default()
}

/// The delivery count in an ack subject (`$JS.ACK.<s>.<c>.<count>.…`).
fn delivery_count(m: &async_nats::Message) -> u64 {
    let r = m
        .reply
        .as_ref()
        .unwrap_or_else(|| panic!("not a message: {m:?}"))
        .to_string();
    r.split('.').nth(4).unwrap().parse().unwrap()
}

async fn start_time_and_policy_errors(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, json!({})).await;
    publish(&c, "s.a", "1").await;
    publish(&c, "s.a", "2").await;
    publish(&c, "s.a", "3").await;
    let m2 = api(&c, "$JS.API.STREAM.MSG.GET.S", json!({"seq": 2})).await;
    let t = m2["message"]["time"].as_str().unwrap().to_owned();
    let v = durable(
        &c,
        "t",
        json!({"deliver_policy": "by_start_time", "opt_start_time": t, "ack_policy": "none"}),
    )
    .await;
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["num_pending"], 2, "{v}");
    let mut sub = pull(&c, "t", json!({"batch": 1})).await;
    assert_eq!(next_msg(&mut sub).await.payload.as_ref(), b"2");

    let v = durable(&c, "x", json!({"deliver_policy": "by_start_time"})).await;
    assert_eq!(err_code(&v), 10094, "{v}");
    assert_eq!(
        v["error"]["description"],
        "consumer delivery policy is deliver by start time, but optional start time is not set"
    );
    let v = durable(
        &c,
        "x",
        json!({"deliver_policy": "new", "opt_start_seq": 2}),
    )
    .await;
    assert_eq!(
        v["error"]["description"],
        "consumer delivery policy is deliver new, but optional start sequence is also set"
    );
    let v = durable(
        &c,
        "x",
        json!({"deliver_policy": "by_start_sequence", "opt_start_seq": 2, "opt_start_time": t}),
    )
    .await;
    assert_eq!(
        v["error"]["description"],
        "consumer delivery policy is deliver by start sequence, but optional start time is also set"
    );
}

async fn backoff_spaces_redeliveries(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, json!({})).await;
    let ms = 1_000_000u64;
    let v = durable(&c, "b", json!({"backoff": [300 * ms, 600 * ms]})).await;
    assert_eq!(err_code(&v), 10116, "{v}");
    assert_eq!(
        v["error"]["description"],
        "max deliver is required to be > length of backoff values"
    );
    let v = durable(
        &c,
        "b",
        json!({"backoff": [300 * ms, 600 * ms], "max_deliver": 3}),
    )
    .await;
    assert_eq!(v["config"]["ack_wait"], 300 * ms, "{v}");
    assert_eq!(v["config"]["backoff"], json!([300 * ms, 600 * ms]), "{v}");
    publish(&c, "s.a", "x").await;
    let mut sub = pull(&c, "b", json!({"batch": 10, "expires": 4_000 * ms})).await;
    let first = next_msg(&mut sub).await;
    let t1 = Instant::now();
    assert_eq!(delivery_count(&first), 1);
    let second = next_msg(&mut sub).await;
    let t2 = Instant::now();
    assert_eq!(delivery_count(&second), 2);
    let third = next_msg(&mut sub).await;
    let t3 = Instant::now();
    assert_eq!(delivery_count(&third), 3);
    assert!(t2 - t1 >= Duration::from_millis(250), "{:?}", t2 - t1);
    assert!(t3 - t2 >= Duration::from_millis(500), "{:?}", t3 - t2);
    // max_deliver 3: what ends the request is its expiry, not a fourth delivery.
    let end = within_for(Duration::from_secs(8), "request end", sub.next())
        .await
        .unwrap();
    assert_eq!(status(&end), Some(408), "{end:?}");
}

async fn nak_with_delay(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, json!({})).await;
    durable(&c, "n", json!({"ack_wait": 30_000_000_000u64})).await;
    publish(&c, "s.a", "x").await;
    let mut sub = pull(&c, "n", json!({"batch": 1})).await;
    let m = next_msg(&mut sub).await;
    let t = Instant::now();
    c.publish(
        m.reply.clone().unwrap(),
        r#"-NAK {"delay": 500000000}"#.into(),
    )
    .await
    .unwrap();
    let mut sub = pull(&c, "n", json!({"batch": 1, "expires": 4_000_000_000u64})).await;
    let again = next_msg(&mut sub).await;
    assert_eq!(delivery_count(&again), 2);
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "{:?}",
        t.elapsed()
    );
    // +TERM: never again.
    c.publish(again.reply.clone().unwrap(), "+TERM".into())
        .await
        .unwrap();
    let mut sub = pull(&c, "n", json!({"batch": 1, "expires": 800_000_000u64})).await;
    assert_eq!(status(&next_msg(&mut sub).await), Some(408));
}

async fn replay_original(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, json!({})).await;
    publish(&c, "s.a", "1").await;
    // The data itself needs a gap between the two store times.
    tokio::time::sleep(Duration::from_millis(400)).await;
    publish(&c, "s.a", "2").await;
    durable(
        &c,
        "r",
        json!({"replay_policy": "original", "ack_policy": "none"}),
    )
    .await;
    let mut sub = pull(&c, "r", json!({"batch": 2, "expires": 4_000_000_000u64})).await;
    next_msg(&mut sub).await;
    let t = Instant::now();
    let m = next_msg(&mut sub).await;
    assert_eq!(m.payload.as_ref(), b"2");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
}

async fn headers_only(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    stream(&c, json!({})).await;
    publish(&c, "s.a", "hello").await;
    let st = js.get_stream("S").await.unwrap();
    let cons: consumer::PullConsumer = st
        .create_consumer(consumer::pull::Config {
            durable_name: Some("h".into()),
            headers_only: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut msgs = cons.fetch().max_messages(1).messages().await.unwrap();
    let m = within("fetch", msgs.next()).await.unwrap().unwrap();
    assert!(m.payload.is_empty());
    let h = m.headers.as_ref().unwrap();
    assert_eq!(h.get("Nats-Msg-Size").unwrap().as_str(), "5");
}

async fn pull_limits_and_statuses(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, json!({})).await;
    durable(&c, "p", json!({"max_waiting": 1})).await;
    let mut sub = pull(&c, "p", json!({"batch": 1, "no_wait": true})).await;
    let m = next_msg(&mut sub).await;
    assert_eq!(
        (status(&m), description(&m).as_str()),
        (Some(404), "No Messages")
    );
    let mut parked = pull(&c, "p", json!({"batch": 3, "expires": 1_000_000_000u64})).await;
    natsd_tests::flush(&c).await;
    let mut sub = pull(&c, "p", json!({"batch": 1, "expires": 1_000_000_000u64})).await;
    let m = next_msg(&mut sub).await;
    assert_eq!(
        (status(&m), description(&m).as_str()),
        (Some(409), "Exceeded MaxWaiting")
    );
    let m = within_for(Duration::from_secs(4), "expiry", parked.next())
        .await
        .unwrap();
    assert_eq!(
        (status(&m), description(&m).as_str()),
        (Some(408), "Request Timeout")
    );
    let h = m.headers.as_ref().unwrap();
    assert_eq!(h.get("Nats-Pending-Messages").unwrap().as_str(), "3");

    publish(&c, "s.a", &"y".repeat(200)).await;
    let mut sub = pull(&c, "p", json!({"batch": 5, "max_bytes": 100})).await;
    let m = next_msg(&mut sub).await;
    assert_eq!(
        (status(&m), description(&m).as_str()),
        (Some(409), "Message Size Exceeds MaxBytes")
    );
    let mut sub = pull(&c, "p", json!({"batch": 5, "no_wait": true})).await;
    let m = next_msg(&mut sub).await;
    assert_eq!(m.payload.len(), 200);
    let m = next_msg(&mut sub).await;
    assert_eq!(
        (status(&m), description(&m).as_str()),
        (Some(408), "Request Timeout")
    );
}

async fn stream_msgs(c: &async_nats::Client) -> u64 {
    let v = api(c, "$JS.API.STREAM.INFO.S", Value::Null).await;
    v["state"]["messages"].as_u64().unwrap()
}

async fn ack_sync(c: &async_nats::Client, m: &async_nats::Message) {
    within(
        "ack",
        c.request(m.reply.clone().unwrap().to_string(), "+ACK".into()),
    )
    .await
    .unwrap();
}

async fn interest_retention(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, json!({"retention": "interest"})).await;
    let seq = publish(&c, "s.a", "nobody").await;
    assert_eq!(seq, 1);
    assert_eq!(stream_msgs(&c).await, 0, "no consumer: not kept");
    durable(&c, "a", json!({})).await;
    durable(&c, "b", json!({})).await;
    assert_eq!(publish(&c, "s.a", "1").await, 2);
    assert_eq!(stream_msgs(&c).await, 1);
    let mut sa = pull(&c, "a", json!({"batch": 1})).await;
    ack_sync(&c, &next_msg(&mut sa).await).await;
    assert_eq!(stream_msgs(&c).await, 1, "b has not acked");
    let mut sb = pull(&c, "b", json!({"batch": 1})).await;
    ack_sync(&c, &next_msg(&mut sb).await).await;
    assert_eq!(stream_msgs(&c).await, 0, "both acked");
    publish(&c, "s.a", "2").await;
    let mut sa = pull(&c, "a", json!({"batch": 1})).await;
    ack_sync(&c, &next_msg(&mut sa).await).await;
    assert_eq!(stream_msgs(&c).await, 1);
    api(&c, "$JS.API.CONSUMER.DELETE.S.b", Value::Null).await;
    assert_eq!(stream_msgs(&c).await, 0, "only b held it");
}

async fn workqueue_retention(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, json!({"retention": "workqueue"})).await;
    // nats-server 2.9.10's text for 10084 predates errors.json's; only the code is checked.
    let v = durable(&c, "n", json!({"ack_policy": "none"})).await;
    assert_eq!(err_code(&v), 10084, "{v}");
    let v = durable(&c, "a", json!({"filter_subject": "s.a.>"})).await;
    assert!(v.get("error").is_none(), "{v}");
    let v = durable(&c, "all", json!({})).await;
    assert_eq!(err_code(&v), 10099, "{v}");
    assert_eq!(
        v["error"]["description"],
        "multiple non-filtered consumers not allowed on workqueue stream"
    );
    let v = durable(&c, "x", json!({"filter_subject": "s.a.b"})).await;
    assert_eq!(err_code(&v), 10100, "{v}");
    assert_eq!(
        v["error"]["description"],
        "filtered consumer not unique on workqueue stream"
    );
    let v = durable(&c, "b", json!({"filter_subject": "s.b"})).await;
    assert!(v.get("error").is_none(), "{v}");
    publish(&c, "s.a.1", "1").await;
    publish(&c, "s.b", "2").await;
    let mut sa = pull(&c, "a", json!({"batch": 1})).await;
    let m = next_msg(&mut sa).await;
    assert_eq!(stream_msgs(&c).await, 2);
    ack_sync(&c, &m).await;
    assert_eq!(stream_msgs(&c).await, 1);
}

async fn ephemeral_inactive_threshold(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, json!({})).await;
    let v = api(
        &c,
        "$JS.API.CONSUMER.CREATE.S",
        json!({"stream_name": "S", "config": {"inactive_threshold": 300_000_000u64, "ack_policy": "explicit"}}),
    )
    .await;
    let name = v["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    assert_eq!(v["config"]["inactive_threshold"], 300_000_000u64);
    let info = format!("$JS.API.CONSUMER.INFO.S.{name}");
    within_for(Duration::from_secs(5), "ephemeral deleted", async {
        loop {
            if err_code(&api(&c, &info, Value::Null).await) == 10014 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // A durable without a threshold stays.
    durable(&c, "d", json!({})).await;
    let v = api(&c, "$JS.API.CONSUMER.INFO.S.d", Value::Null).await;
    assert!(v.get("error").is_none(), "{v}");
}

async fn multiple_filters(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, json!({})).await;
    for s in ["s.a", "s.b", "s.c", "s.a"] {
        publish(&c, s, s).await;
    }
    // async-nats 0.51 (without its 2.10 feature) has no `filter_subjects`: raw API.
    let v = durable(&c, "f", json!({"filter_subjects": ["s.a", "s.c"]})).await;
    assert_eq!(v["num_pending"], 3, "{v}");
    let mut sub = pull(&c, "f", json!({"batch": 10, "no_wait": true})).await;
    let mut got = Vec::new();
    loop {
        let m = next_msg(&mut sub).await;
        if status(&m).is_some() {
            break;
        }
        got.push(m.subject.to_string());
    }
    assert_eq!(got, ["s.a", "s.c", "s.a"]);
    let v = durable(&c, "g", json!({"filter_subjects": ["s.>", "s.a"]})).await;
    assert_eq!(err_code(&v), 10138, "{v}");
}

async fn pause(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, json!({})).await;
    durable(&c, "p", json!({})).await;
    publish(&c, "s.a", "x").await;
    // Pause for a while: the time comes from the server's own clock in the response.
    let v = api(
        &c,
        "$JS.API.CONSUMER.PAUSE.S.p",
        json!({"pause_until": "2999-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.consumer_pause_response"
    );
    assert_eq!(v["paused"], true, "{v}");
    let info = api(&c, "$JS.API.CONSUMER.INFO.S.p", Value::Null).await;
    assert_eq!(info["paused"], true, "{info}");
    assert!(info["pause_remaining"].as_u64().unwrap() > 0);
    let mut sub = pull(&c, "p", json!({"batch": 1, "expires": 300_000_000u64})).await;
    assert_eq!(status(&next_msg(&mut sub).await), Some(408), "paused");
    let v = api(&c, "$JS.API.CONSUMER.PAUSE.S.p", json!({})).await;
    assert_eq!(v["paused"], false, "{v}");
    let mut sub = pull(&c, "p", json!({"batch": 1, "expires": 2_000_000_000u64})).await;
    assert_eq!(next_msg(&mut sub).await.payload.as_ref(), b"x");
}

async fn pinned_priority_group(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, json!({})).await;
    let v = durable(
        &c,
        "p",
        json!({"priority_policy": "pinned_client", "priority_groups": ["jobs"]}),
    )
    .await;
    assert!(v.get("error").is_none(), "{v}");
    publish(&c, "s.a", "1").await;
    publish(&c, "s.a", "2").await;
    let mut sub = pull(&c, "p", json!({"batch": 1, "group": "jobs"})).await;
    let m = next_msg(&mut sub).await;
    let pin = m
        .headers
        .as_ref()
        .unwrap()
        .get("Nats-Pin-Id")
        .unwrap()
        .to_string();
    let mut sub = pull(&c, "p", json!({"batch": 1, "group": "jobs", "id": "stale"})).await;
    let m = next_msg(&mut sub).await;
    assert_eq!(
        (status(&m), description(&m).as_str()),
        (Some(423), "Nats-Pin-Id mismatch")
    );
    let mut sub = pull(&c, "p", json!({"batch": 1, "group": "jobs", "id": pin})).await;
    assert_eq!(next_msg(&mut sub).await.payload.as_ref(), b"2");
    let v = api(&c, "$JS.API.CONSUMER.INFO.S.p", Value::Null).await;
    assert_eq!(
        v["priority_groups"][0]["pinned_client_id"],
        json!(pin),
        "{v}"
    );
}

/// A durable pull consumer's delivered sequences, pending acks and delivery counts survive a
/// clean stop (SIGTERM): the unacknowledged messages come back as second deliveries, not as
/// new ones.
async fn durable_state_survives_restart(kind: ServerKind) {
    durable_state_across(kind, false).await;
}

/// The same across SIGKILL. natsd only: nats-server 2.9.10 writes a consumer's state from a
/// background flusher, and a kill right after the acks loses them (seen: ack floor 0 and
/// 10 pending after the restart).
async fn durable_state_survives_kill(kind: ServerKind) {
    durable_state_across(kind, true).await;
}

/// Stops `s` with SIGTERM (its pid from its `-P` file) and waits for it to exit.
async fn stop_cleanly(mut s: TestServer, pid_file: &std::path::Path) {
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

async fn durable_state_across(kind: ServerKind, kill: bool) {
    let sd = tempfile::tempdir().unwrap();
    let pid_file = sd.path().join("server.pid");
    let pid_arg = pid_file.to_str().unwrap().to_owned();
    let store = sd.path().join("store");
    let path = store.to_str().unwrap().to_owned();
    // nats-server also reports `last_active` in both sequence pairs; the sequences matter here.
    let seqs = |v: &Value| json!([v["consumer_seq"], v["stream_seq"]]);
    let keep = |v: &Value| {
        json!([
            seqs(&v["delivered"]),
            seqs(&v["ack_floor"]),
            v["num_ack_pending"],
            v["num_redelivered"]
        ])
    };
    let before;
    {
        let args = ["-js", "-sd", &path, "-P", &pid_arg];
        let s = TestServer::start_with_args(kind, "", &args).await;
        let c = s.client().await;
        stream(&c, json!({"storage": "file"})).await;
        for i in 1..=10 {
            publish(&c, "s.a", &i.to_string()).await;
        }
        let v = durable(&c, "d", json!({"ack_wait": 1_000_000_000u64})).await;
        assert!(v.get("error").is_none(), "{v}");
        let mut sub = pull(&c, "d", json!({"batch": 10, "expires": 5_000_000_000u64})).await;
        let mut got = Vec::new();
        while got.len() < 10 {
            got.push(next_msg(&mut sub).await);
        }
        // Acknowledged out of order: the floor stops at 2, 3 4 6 8 9 10 stay pending.
        for i in [0, 1, 4, 6] {
            ack_sync(&c, &got[i]).await;
        }
        let v = api(&c, "$JS.API.CONSUMER.INFO.S.d", Value::Null).await;
        before = keep(&v);
        assert_eq!(before, json!([[10, 10], [2, 2], 6, 0]));
        if !kill {
            stop_cleanly(s, &pid_file).await;
        }
    }
    let s = TestServer::start_with_args(kind, "", &["-js", "-sd", &path]).await;
    let c = s.client().await;
    let v = api(&c, "$JS.API.CONSUMER.INFO.S.d", Value::Null).await;
    assert_eq!(keep(&v), before, "{v}");
    let mut sub = pull(&c, "d", json!({"batch": 6, "expires": 10_000_000_000u64})).await;
    let mut again = Vec::new();
    while again.len() < 6 {
        let m = within_for(Duration::from_secs(12), "redelivery", sub.next())
            .await
            .unwrap();
        if status(&m).is_none() {
            again.push(m);
        }
    }
    let seqs: Vec<String> = again.iter().map(natsd_tests::text).collect();
    assert_eq!(seqs, ["3", "4", "6", "8", "9", "10"]);
    for m in &again {
        assert_eq!(delivery_count(m), 2, "{:?}", m.reply);
    }
    let v = api(&c, "$JS.API.CONSUMER.INFO.S.d", Value::Null).await;
    assert_eq!(v["num_redelivered"], 6, "{v}");
    assert_eq!(v["delivered"]["consumer_seq"], 16, "{v}");
}
