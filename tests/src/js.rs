//! Shared helpers of the JetStream black-box tests.

use serde_json::Value;

use crate::{within, ServerKind, TestServer};

/// A server with JetStream on, storing under its own temp dir (dropped with the server).
pub async fn js_server(kind: ServerKind) -> (TestServer, tempfile::TempDir) {
    let sd = tempfile::tempdir().expect("temp dir");
    let path = sd.path().to_str().expect("utf-8 temp path").to_owned();
    let s = TestServer::start_with_args(kind, "", &["-js", "-sd", &path]).await;
    (s, sd)
}

/// A raw JetStream API request (`Null` sends an empty body); the answer as JSON.
pub async fn api(c: &async_nats::Client, subject: &str, body: Value) -> Value {
    let payload = if body.is_null() {
        bytes::Bytes::new()
    } else {
        serde_json::to_vec(&body).expect("JSON body").into()
    };
    let m = within("api request", c.request(subject.to_owned(), payload))
        .await
        .expect("API answer");
    serde_json::from_slice(&m.payload).expect("API answers are JSON")
}

/// The `err_code` of an API error answer, 0 when it is not one.
pub fn err_code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or(0)
}
