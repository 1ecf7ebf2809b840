//! Config-file syntax as nats-server reads it: separators, comments, variables,
//! includes, size suffixes. Each setting is checked through its visible effect.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use natsd_tests::{both, ServerKind, TestServer};

both!(
    separators_and_comments,
    size_suffixes,
    variables,
    include_file,
    quoted_and_unquoted_strings,
);

async fn max_payload_of(kind: ServerKind, conf: &str) -> serde_json::Value {
    let s = TestServer::start(kind, conf).await;
    s.raw().await.info["max_payload"].clone()
}

async fn separators_and_comments(kind: ServerKind) {
    let conf = "# a hash comment\n// a slash comment\nmax_payload = 1000 # trailing\n";
    assert_eq!(max_payload_of(kind, conf).await, serde_json::json!(1000));
    let conf = "max_payload 1001\n";
    assert_eq!(max_payload_of(kind, conf).await, serde_json::json!(1001));
    let conf = "max_payload: 1002;\nmax_connections: 10\n";
    assert_eq!(max_payload_of(kind, conf).await, serde_json::json!(1002));
}

async fn size_suffixes(kind: ServerKind) {
    // Go: a bare K/M multiplies by 1000, KB/MB (any case) by 1024.
    for (text, bytes) in [
        ("2KB", 2048),
        ("2kb", 2048),
        ("2K", 2000),
        ("1MB", 1_048_576),
    ] {
        let got = max_payload_of(kind, &format!("max_payload: {text}\n")).await;
        assert_eq!(got, serde_json::json!(bytes), "max_payload: {text}");
    }
}

async fn variables(kind: ServerKind) {
    let conf = r#"
        PAYLOAD: 4321
        SECRET: "pa$$word"
        max_payload: $PAYLOAD
        authorization { user: alice, password: $SECRET }
    "#;
    let s = TestServer::start(kind, conf).await;
    let mut raw = s.raw().await;
    assert_eq!(raw.info["max_payload"], serde_json::json!(4321));
    raw.handshake(r#"{"verbose":false,"user":"alice","pass":"pa$$word"}"#)
        .await;
}

async fn include_file(kind: ServerKind) {
    let auth = "authorization { user: inc, password: luded }\n";
    let conf = "max_payload: 777\ninclude ./auth.conf\n";
    let s = TestServer::start_with_files(kind, conf, &[("auth.conf", auth)]).await;
    let mut raw = s.raw().await;
    assert_eq!(raw.info["max_payload"], serde_json::json!(777));
    assert_eq!(raw.info["auth_required"], serde_json::json!(true));
    raw.handshake(r#"{"verbose":false,"user":"inc","pass":"luded"}"#)
        .await;
}

async fn quoted_and_unquoted_strings(kind: ServerKind) {
    let conf = r#"
        authorization {
          users = [
            {user: "quoted user", password: 'single quoted'}
            {user: bare, password: bare-pass.1}
          ]
        }
    "#;
    let s = TestServer::start(kind, conf).await;
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false,"user":"quoted user","pass":"single quoted"}"#)
        .await;
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false,"user":"bare","pass":"bare-pass.1"}"#)
        .await;
}
