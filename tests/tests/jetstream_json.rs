//! JetStream request JSON as Go's encoding/json reads it: `null` for "not set", field names
//! in any case, unknown fields ignored or (natsd's strict default, as nats-server 2.12)
//! refused. Raw requests, so that the bytes on the wire are exactly the ones under test.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use natsd_tests::js::{api, err_code, js_server};
use natsd_tests::{both, next_msg, within, ServerKind, TestServer};
use serde_json::{json, Value};

both!(
    nulls_and_mixed_case_are_accepted,
    enum_fields_refuse_null,
    type_mismatches_are_invalid_json,
    invalid_utf8_in_strings_becomes_replacement_characters,
    negative_duplicate_window_is_refused,
);

/// A raw request with `body` sent byte for byte.
async fn raw(c: &async_nats::Client, subject: &str, body: &str) -> async_nats::Message {
    within(
        "raw request",
        c.request(subject.to_owned(), body.to_owned().into()),
    )
    .await
    .unwrap()
}

/// A pull request: delivered messages keep their own subject, so they cannot be taken as
/// request replies; a subscription to the inbox receives them.
async fn pull(c: &async_nats::Client, subject: &str, body: &str) -> async_nats::Message {
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    c.publish_with_reply(subject.to_owned(), inbox, body.to_owned().into())
        .await
        .unwrap();
    next_msg(&mut sub).await
}

async fn raw_api(c: &async_nats::Client, subject: &str, body: &str) -> Value {
    serde_json::from_slice(&raw(c, subject, body).await.payload).unwrap()
}

async fn nulls_and_mixed_case_are_accepted(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = raw_api(
        &c,
        "$JS.API.STREAM.CREATE.ORDERS",
        r#"{"Name":"ORDERS","SUBJECTS":["o.>"],"Storage":"memory","max_msgs":null,
            "Max_Bytes":null,"description":null,"sources":null,"mirror":null,
            "placement":null,"duplicate_window":null,"max_age":null,"deny_delete":null}"#,
    )
    .await;
    assert_eq!(err_code(&v), 0, "{v}");
    assert_eq!(v["config"]["name"], "ORDERS");
    assert_eq!(v["config"]["subjects"], json!(["o.>"]));
    assert_eq!(v["config"]["storage"], "memory");
    assert_eq!(v["config"]["max_msgs"], -1);
    assert_eq!(v["config"]["max_bytes"], -1);
    assert_eq!(v["config"]["duplicate_window"], 120_000_000_000u64);

    let v = raw_api(
        &c,
        "$JS.API.CONSUMER.DURABLE.CREATE.ORDERS.C",
        r#"{"Stream_Name":"ORDERS","config":{"DURABLE_NAME":"C","Ack_Policy":"explicit",
            "ack_wait":null,"max_deliver":null,"filter_subject":null,"backoff":null,
            "description":null,"deliver_subject":null,"opt_start_time":null}}"#,
    )
    .await;
    assert_eq!(err_code(&v), 0, "{v}");
    assert_eq!(v["config"]["durable_name"], "C");
    assert_eq!(v["config"]["ack_policy"], "explicit");
    assert_eq!(v["config"]["ack_wait"], 30_000_000_000u64);

    let ack = raw(&c, "o.a", "hello").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&ack.payload).unwrap()["seq"],
        1
    );
    // A pull request with nulls and a re-cased key: one message.
    let m = pull(
        &c,
        "$JS.API.CONSUMER.MSG.NEXT.ORDERS.C",
        r#"{"Batch":1,"expires":null,"no_wait":null,"max_bytes":null,"idle_heartbeat":null}"#,
    )
    .await;
    assert_eq!(&m.payload[..], b"hello");

    let v = raw_api(
        &c,
        "$JS.API.STREAM.MSG.GET.ORDERS",
        r#"{"seq":null,"Last_By_Subj":"o.a"}"#,
    )
    .await;
    assert_eq!(err_code(&v), 0, "{v}");
    assert_eq!(v["message"]["seq"], 1);

    let v = raw_api(
        &c,
        "$JS.API.STREAM.NAMES",
        r#"{"offset":null,"Subject":null}"#,
    )
    .await;
    assert_eq!(v["streams"], json!(["ORDERS"]), "{v}");
    let v = raw_api(&c, "$JS.API.CONSUMER.NAMES.ORDERS", r#"{"OFFSET":null}"#).await;
    assert_eq!(v["consumers"], json!(["C"]), "{v}");
}

/// nats-server's enum types decode with their own UnmarshalJSON, which takes no `null`.
async fn enum_fields_refuse_null(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    for body in [
        r#"{"name":"A","retention":null}"#,
        r#"{"name":"A","Storage":null}"#,
        r#"{"name":"A","discard":null}"#,
    ] {
        let v = raw_api(&c, "$JS.API.STREAM.CREATE.A", body).await;
        assert_eq!(err_code(&v), 10025, "{body}: {v}");
    }
    let v = api(&c, "$JS.API.STREAM.CREATE.B", json!({"name": "B"})).await;
    assert_eq!(err_code(&v), 0, "{v}");
    for f in ["ack_policy", "deliver_policy", "replay_policy"] {
        let body = format!(r#"{{"stream_name":"B","config":{{"{f}":null}}}}"#);
        let v = raw_api(&c, "$JS.API.CONSUMER.CREATE.B", &body).await;
        assert_eq!(err_code(&v), 10025, "{body}: {v}");
    }
}

/// A value that does not fit its field's Go type: 400/10025. nats-server 2.9.10 answers a
/// bare "invalid JSON"; from 2.10 the text carries encoding/json's error, which natsd words as
/// Go does (checked on natsd only).
async fn type_mismatches_are_invalid_json(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.S",
        json!({"name": "S", "subjects": ["s.>"]}),
    )
    .await;
    assert_eq!(err_code(&v), 0, "{v}");
    let go = |t: &str| format!("invalid JSON: json: cannot unmarshal {t}");
    let cases = [
        (
            "$JS.API.STREAM.CREATE.X",
            r#"{"name":"X","max_msgs":"x"}"#,
            go("string into Go struct field StreamConfig.max_msgs of type int64"),
        ),
        (
            "$JS.API.STREAM.CREATE.X",
            r#"{"name":"X","max_msgs":1.5}"#,
            go("number 1.5 into Go struct field StreamConfig.max_msgs of type int64"),
        ),
        (
            "$JS.API.STREAM.CREATE.X",
            r#"{"name":"X","subjects":"x"}"#,
            go("string into Go struct field StreamConfig.subjects of type []string"),
        ),
        (
            "$JS.API.STREAM.CREATE.X",
            r#"{"name":"X","subjects":[1]}"#,
            go("number into Go struct field StreamConfig.subjects of type string"),
        ),
        (
            "$JS.API.STREAM.CREATE.X",
            r#"{"name":"X","sealed":"true"}"#,
            go("string into Go struct field StreamConfig.sealed of type bool"),
        ),
        // Go's range: max_msg_size is an int32.
        (
            "$JS.API.STREAM.CREATE.X",
            r#"{"name":"X","max_msg_size":3000000000}"#,
            go("number 3000000000 into Go struct field StreamConfig.max_msg_size of type int32"),
        ),
        (
            "$JS.API.STREAM.CREATE.X",
            r#"{"name":"X","placement":"x"}"#,
            go("string into Go struct field StreamConfig.placement of type server.Placement"),
        ),
        (
            "$JS.API.STREAM.CREATE.X",
            r#"{"name":"X","sources":[{"name":"S","opt_start_seq":"1"}]}"#,
            go("string into Go struct field StreamSource.sources.opt_start_seq of type uint64"),
        ),
        // A negative number where Go holds an unsigned one.
        (
            "$JS.API.STREAM.CREATE.X",
            r#"{"name":"X","mirror":{"name":"S","opt_start_seq":-3}}"#,
            go("number -3 into Go struct field StreamSource.mirror.opt_start_seq of type uint64"),
        ),
        (
            "$JS.API.CONSUMER.DURABLE.CREATE.S.D",
            r#"{"stream_name":"S","config":{"durable_name":"D","ack_wait":"5s"}}"#,
            go("string into Go struct field ConsumerConfig.config.ack_wait of type time.Duration"),
        ),
        (
            "$JS.API.CONSUMER.DURABLE.CREATE.S.D",
            r#"{"stream_name":"S","config":{"durable_name":"D","max_deliver":"5"}}"#,
            go("string into Go struct field ConsumerConfig.config.max_deliver of type int"),
        ),
        (
            "$JS.API.CONSUMER.DURABLE.CREATE.S.D",
            r#"{"stream_name":"S","config":{"durable_name":"D","rate_limit_bps":-1}}"#,
            go("number -1 into Go struct field ConsumerConfig.config.rate_limit_bps of type uint64"),
        ),
        (
            "$JS.API.STREAM.MSG.GET.S",
            r#"{"seq":-1}"#,
            go("number -1 into Go struct field MsgGetRequest.seq of type uint64"),
        ),
        (
            "$JS.API.STREAM.PURGE.S",
            r#"{"keep":"1"}"#,
            go("string into Go struct field PurgeRequest.keep of type uint64"),
        ),
    ];
    for (subject, body, want) in cases {
        let v = raw_api(&c, subject, body).await;
        assert_eq!(v["error"]["code"], 400, "{body}: {v}");
        assert_eq!(err_code(&v), 10025, "{body}: {v}");
        let got = v["error"]["description"].as_str().unwrap();
        match kind {
            ServerKind::Natsd => assert_eq!(got, want, "{body}"),
            ServerKind::NatsServer => assert_eq!(got, "invalid JSON", "{body}"),
        }
    }
}

/// Go's decoder replaces each byte of invalid UTF-8 in a string with U+FFFD rather than
/// refusing the request.
async fn invalid_utf8_in_strings_becomes_replacement_characters(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let body = b"{\"name\":\"U\",\"subjects\":[\"u.\xc3\"],\"description\":\"\xff\xe2\x82ok\"}";
    let m = within(
        "raw request",
        c.request("$JS.API.STREAM.CREATE.U", body.to_vec().into()),
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(err_code(&v), 0, "{v}");
    assert_eq!(v["config"]["subjects"], json!(["u.\u{fffd}"]), "{v}");
    assert_eq!(
        v["config"]["description"], "\u{fffd}\u{fffd}\u{fffd}ok",
        "{v}"
    );
}

/// Go holds durations as signed integers: a negative one decodes, and the config check
/// refuses it.
async fn negative_duplicate_window_is_refused(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = raw_api(
        &c,
        "$JS.API.STREAM.CREATE.N",
        r#"{"name":"N","duplicate_window":-5}"#,
    )
    .await;
    assert_eq!(
        v["error"],
        json!({"code": 500, "err_code": 10052, "description": "duplicates window can not be negative"}),
        "{v}"
    );
}

/// natsd only: negative consumer durations as nats-server 2.14 takes them (2.9.10 keeps them
/// as sent): a negative ack wait or backoff is refused, other negatives count as 0.
#[tokio::test]
async fn negative_consumer_durations_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, |kind| async move {
        let (s, _sd) = js_server(kind).await;
        let c = s.client().await;
        let v = api(&c, "$JS.API.STREAM.CREATE.S", json!({"name": "S"})).await;
        assert_eq!(err_code(&v), 0, "{v}");
        let create = |cfg: &str| {
            let body = format!(r#"{{"stream_name":"S","config":{cfg}}}"#);
            let c = c.clone();
            async move { raw_api(&c, "$JS.API.CONSUMER.CREATE.S", &body).await }
        };
        let v = create(r#"{"ack_policy":"explicit","ack_wait":-5}"#).await;
        assert_eq!(
            v["error"],
            json!({"code": 400, "err_code": 10183, "description": "consumer ack wait needs to be positive"})
        );
        let v = create(r#"{"ack_policy":"explicit","backoff":[-1],"max_deliver":3}"#).await;
        assert_eq!(
            v["error"],
            json!({"code": 400, "err_code": 10184, "description": "consumer backoff needs to be positive"})
        );
        let v = create(
            r#"{"name":"P","deliver_subject":"p","idle_heartbeat":-1,"inactive_threshold":-1}"#,
        )
        .await;
        assert_eq!(err_code(&v), 0, "{v}");
        assert!(v["config"].get("idle_heartbeat").is_none(), "{v}");
        let v = create(r#"{"name":"Q","max_expires":-1,"max_batch":-1,"max_waiting":-1}"#).await;
        assert_eq!(err_code(&v), 0, "{v}");
        assert_eq!(v["config"]["max_waiting"], 512, "{v}");
        assert!(v["config"].get("max_expires").is_none(), "{v}");
    })
    .await;
}

/// natsd only: nats-server 2.9.10 has no strict mode (it came with 2.11 and is the default
/// from 2.12, as in natsd).
#[tokio::test]
async fn strict_refuses_unknown_fields_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, |kind| async move {
        let (s, _sd) = js_server(kind).await;
        let c = s.client().await;
        let v = raw_api(
            &c,
            "$JS.API.STREAM.CREATE.S",
            r#"{"name":"S","subjects":["s"],"colour":"blue"}"#,
        )
        .await;
        assert_eq!(err_code(&v), 10025, "{v}");
        assert_eq!(
            v["error"]["description"],
            r#"invalid JSON: json: unknown field "colour""#
        );
        // Fields nats-server 2.12 has pass, used by natsd or not; map keys are data.
        let v = raw_api(
            &c,
            "$JS.API.STREAM.CREATE.S",
            r#"{"name":"S","subjects":["s"],"no_ack":false,"pedantic":false,
                "metadata":{"Any-Key":"v"}}"#,
        )
        .await;
        assert_eq!(err_code(&v), 0, "{v}");
        assert_eq!(v["config"]["metadata"]["Any-Key"], "v");
        let v = raw_api(
            &c,
            "$JS.API.CONSUMER.CREATE.S",
            r#"{"stream_name":"S","config":{"ack_policy":"explicit","nickname":"x"}}"#,
        )
        .await;
        assert_eq!(
            v["error"]["description"],
            r#"invalid JSON: json: unknown field "nickname""#
        );
        // Pull requests are never strict (Go: nextReqFromMsg uses json.Unmarshal).
        let v = api(
            &c,
            "$JS.API.CONSUMER.CREATE.S",
            json!({"stream_name": "S", "config": {"durable_name": "P", "ack_policy": "none"}}),
        )
        .await;
        assert_eq!(err_code(&v), 0, "{v}");
        raw(&c, "s", "m").await;
        let m = pull(
            &c,
            "$JS.API.CONSUMER.MSG.NEXT.S.P",
            r#"{"batch":1,"no_wait":true,"future_option":1}"#,
        )
        .await;
        assert_eq!(&m.payload[..], b"m");
    })
    .await;
}

/// natsd only: `jetstream { strict: false }` ignores unknown fields, as nats-server does.
#[tokio::test]
async fn lenient_ignores_unknown_fields_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, |kind| async move {
        let sd = tempfile::tempdir().unwrap();
        let conf = format!(
            "jetstream {{ store_dir: {:?}, strict: false }}\n",
            sd.path().to_str().unwrap()
        );
        let s = TestServer::start(kind, &conf).await;
        let c = s.client().await;
        let v = raw_api(
            &c,
            "$JS.API.STREAM.CREATE.S",
            r#"{"name":"S","subjects":["s"],"colour":"blue"}"#,
        )
        .await;
        assert_eq!(err_code(&v), 0, "{v}");
        assert_eq!(v["config"]["name"], "S");
    })
    .await;
}
