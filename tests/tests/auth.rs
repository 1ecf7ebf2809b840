//! Authentication (user/password, bcrypt, token, users list, nkeys, no_auth_user,
//! auth timeout) and per-user permissions.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions, Event, ServerError};
use futures::StreamExt;
use natsd_tests::{both, drain_ready, flush, next_msg, text, within, ServerKind, TestServer};
use tokio::sync::mpsc;

both!(
    user_password,
    user_password_bcrypt,
    token,
    users_list,
    nkey_user,
    no_auth_user,
    wrong_credentials_rejected,
    auth_timeout,
    publish_deny,
    subscribe_deny,
    publish_deny_async_nats_event,
    allow_responses,
);

/// Pub/sub round trip on one connection, proving it is usable.
async fn round_trip(c: &async_nats::Client, subject: &str) {
    // SUB and PUB on one connection are applied in order: no flush needed, which
    // matters for users whose permissions exclude the flush inbox.
    let mut sub = c.subscribe(subject.to_owned()).await.unwrap();
    c.publish(subject.to_owned(), "ping".into()).await.unwrap();
    assert_eq!(text(&next_msg(&mut sub).await), "ping");
}

/// Options that report the server's -ERR texts on a channel.
fn with_error_events(opts: ConnectOptions) -> (ConnectOptions, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let opts = opts.event_callback(move |ev| {
        let tx = tx.clone();
        async move {
            if let Event::ServerError(e) = ev {
                let text = match e {
                    ServerError::AuthorizationViolation => "Authorization Violation".to_owned(),
                    ServerError::SlowConsumer(sid) => format!("slow consumer {sid}"),
                    ServerError::Other(t) => t,
                };
                let _ = tx.send(text);
            }
        }
    });
    (opts, rx)
}

/// Asserts that a raw client without or with wrong credentials gets the
/// Authorization Violation error and is disconnected.
async fn assert_raw_rejected(s: &TestServer, connect_json: &str) {
    let mut raw = s.raw().await;
    raw.send(&format!("CONNECT {connect_json}\r\nPING\r\n"))
        .await
        .unwrap();
    raw.expect_exact("-ERR 'Authorization Violation'").await;
    raw.expect_closed().await;
}

async fn assert_async_rejected(s: &TestServer, opts: ConnectOptions) {
    match s.connect(opts).await {
        Ok(_) => panic!("connection with bad credentials was accepted"),
        Err(e) => assert_eq!(e.kind(), ConnectErrorKind::AuthorizationViolation, "{e}"),
    }
}

async fn user_password(kind: ServerKind) {
    let s = TestServer::start(kind, "authorization { user: alice, password: s3cret }").await;
    let c = s
        .client_with(ConnectOptions::with_user_and_password(
            "alice".into(),
            "s3cret".into(),
        ))
        .await;
    round_trip(&c, "up").await;

    let mut raw = s.raw().await;
    assert_eq!(
        raw.info["auth_required"],
        serde_json::json!(true),
        "{}",
        raw.info
    );
    raw.handshake(r#"{"verbose":false,"user":"alice","pass":"s3cret"}"#)
        .await;
    assert_raw_rejected(&s, r#"{"verbose":false}"#).await;
    assert_raw_rejected(&s, r#"{"verbose":false,"user":"alice","pass":"nope"}"#).await;
}

async fn user_password_bcrypt(kind: ServerKind) {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let hash_2a = bcrypt::hash_with_result("other", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    let conf = format!(
        "authorization {{ users: [ {{user: alice, password: \"{hash}\"}}, {{user: bob, password: \"{hash_2a}\"}} ] }}"
    );
    let s = TestServer::start(kind, &conf).await;
    let c = s
        .client_with(ConnectOptions::with_user_and_password(
            "alice".into(),
            "s3cret".into(),
        ))
        .await;
    round_trip(&c, "bc").await;
    let c = s
        .client_with(ConnectOptions::with_user_and_password(
            "bob".into(),
            "other".into(),
        ))
        .await;
    round_trip(&c, "bc2").await;
    // The hash itself is not a password.
    let json = serde_json::json!({"verbose": false, "user": "alice", "pass": hash}).to_string();
    assert_raw_rejected(&s, &json).await;
    assert_async_rejected(
        &s,
        ConnectOptions::with_user_and_password("alice".into(), "x".into()),
    )
    .await;
}

async fn token(kind: ServerKind) {
    let s = TestServer::start(kind, "authorization { token: \"t0k-en\" }").await;
    let c = s
        .client_with(ConnectOptions::with_token("t0k-en".into()))
        .await;
    round_trip(&c, "tok").await;
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false,"auth_token":"t0k-en"}"#)
        .await;
    assert_raw_rejected(&s, r#"{"verbose":false,"auth_token":"wrong"}"#).await;
    assert_async_rejected(&s, ConnectOptions::with_token("wrong".into())).await;
}

async fn users_list(kind: ServerKind) {
    let conf = r#"
        authorization {
          users: [
            { user: alice, password: pa }
            { user: bob, password: pb }
          ]
        }
    "#;
    let s = TestServer::start(kind, conf).await;
    let a = s
        .client_with(ConnectOptions::with_user_and_password(
            "alice".into(),
            "pa".into(),
        ))
        .await;
    let b = s
        .client_with(ConnectOptions::with_user_and_password(
            "bob".into(),
            "pb".into(),
        ))
        .await;
    // Users of one (global) account see each other's messages.
    let mut sub = b.subscribe("shared").await.unwrap();
    flush(&b).await;
    a.publish("shared", "from alice".into()).await.unwrap();
    assert_eq!(text(&next_msg(&mut sub).await), "from alice");
    // One user's password does not work for another.
    assert_raw_rejected(&s, r#"{"verbose":false,"user":"alice","pass":"pb"}"#).await;
    assert_async_rejected(
        &s,
        ConnectOptions::with_user_and_password("carol".into(), "pa".into()),
    )
    .await;
}

async fn nkey_user(kind: ServerKind) {
    let user = nkeys::KeyPair::new_user();
    let other = nkeys::KeyPair::new_user();
    let conf = format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}",
        user.public_key()
    );
    let s = TestServer::start(kind, &conf).await;
    let nonce_info = s.raw().await.info;
    assert!(
        nonce_info["nonce"].as_str().is_some_and(|n| !n.is_empty()),
        "{nonce_info}"
    );

    let c = s
        .client_with(ConnectOptions::with_nkey(user.seed().unwrap()))
        .await;
    round_trip(&c, "nk").await;
    // A key pair the server does not know is rejected.
    assert_async_rejected(&s, ConnectOptions::with_nkey(other.seed().unwrap())).await;
    // So is the right public key with a signature over something else.
    let bad_sig = user.sign(b"not the nonce").unwrap();
    let json = serde_json::json!({
        "verbose": false,
        "nkey": user.public_key(),
        "sig": b64url(&bad_sig),
    });
    assert_raw_rejected(&s, &json.to_string()).await;
}

/// URL-safe base64 without padding, as NATS clients encode nonce signatures.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

async fn no_auth_user(kind: ServerKind) {
    let conf = r#"
        authorization {
          users: [
            { user: alice, password: pa }
            { user: guest, password: pg, permissions: { publish: "guest.>", subscribe: "guest.>" } }
          ]
        }
        no_auth_user: guest
    "#;
    let s = TestServer::start(kind, conf).await;
    // No credentials: the connection becomes `guest`, with guest's permissions.
    let c = s.client().await;
    round_trip(&c, "guest.room").await;
    let mut raw = s.raw().await;
    // Go leaves auth_required out of INFO when a no_auth_user is configured.
    assert!(raw.info.get("auth_required").is_none(), "{}", raw.info);
    raw.handshake(r#"{"verbose":false}"#).await;
    raw.send("PUB elsewhere 0\r\n\r\n").await.unwrap();
    raw.expect_exact(r#"-ERR 'Permissions Violation for Publish to "elsewhere"'"#)
        .await;
    // Explicit credentials still pick their own user, and wrong ones still fail.
    let a = s
        .client_with(ConnectOptions::with_user_and_password(
            "alice".into(),
            "pa".into(),
        ))
        .await;
    round_trip(&a, "elsewhere").await;
    assert_raw_rejected(&s, r#"{"verbose":false,"user":"alice","pass":"bad"}"#).await;
}

async fn wrong_credentials_rejected(kind: ServerKind) {
    let s = TestServer::start(kind, "authorization { user: u, password: p }").await;
    assert_async_rejected(&s, ConnectOptions::new()).await;
    assert_async_rejected(
        &s,
        ConnectOptions::with_user_and_password("u".into(), "x".into()),
    )
    .await;
    assert_async_rejected(&s, ConnectOptions::with_token("p".into())).await;
    assert_raw_rejected(&s, r#"{"verbose":false,"user":"x","pass":"p"}"#).await;
    // Nothing but CONNECT is allowed before authenticating.
    let mut raw = s.raw().await;
    raw.send("SUB foo 1\r\n").await.unwrap();
    raw.expect_exact("-ERR 'Authorization Violation'").await;
    raw.expect_closed().await;
}

async fn auth_timeout(kind: ServerKind) {
    let s = TestServer::start(kind, "authorization { user: u, password: p, timeout: 1 }").await;
    let mut raw = s.raw().await;
    let started = std::time::Instant::now();
    raw.expect_for(Duration::from_secs(4), "-ERR 'Authentication Timeout'")
        .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "timed out too early: {waited:?}"
    );
    raw.expect_closed().await;
}

const PERMS_CONF: &str = r#"
    authorization {
      users: [
        { user: limited, password: pw, permissions: {
            publish: { allow: [">"], deny: ["secret.>"] }
            subscribe: { deny: ["hidden.>", "*.private"] }
        } }
        { user: admin, password: pw }
      ]
    }
"#;

async fn publish_deny(kind: ServerKind) {
    let s = TestServer::start(kind, PERMS_CONF).await;
    let admin = s
        .client_with(ConnectOptions::with_user_and_password(
            "admin".into(),
            "pw".into(),
        ))
        .await;
    let mut watch = admin.subscribe("open.>").await.unwrap();
    let mut secret = admin.subscribe("secret.>").await.unwrap();
    flush(&admin).await;

    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false,"user":"limited","pass":"pw"}"#)
        .await;
    raw.send("PUB secret.plans 2\r\nno\r\n").await.unwrap();
    raw.expect_exact(r#"-ERR 'Permissions Violation for Publish to "secret.plans"'"#)
        .await;
    // The connection stays open and allowed subjects still work.
    raw.send("PUB open.news 3\r\nyes\r\n").await.unwrap();
    assert!(raw.lines_until_pong().await.is_empty());
    let m = next_msg(&mut watch).await;
    assert_eq!(m.subject.as_str(), "open.news");
    // The denied message, sent before, would have arrived first.
    assert!(
        drain_ready(&mut secret).is_empty(),
        "the denied message was not routed"
    );
}

async fn subscribe_deny(kind: ServerKind) {
    let s = TestServer::start(kind, PERMS_CONF).await;
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false,"user":"limited","pass":"pw"}"#)
        .await;
    raw.send("SUB hidden.x 1\r\n").await.unwrap();
    raw.expect_exact(r#"-ERR 'Permissions Violation for Subscription to "hidden.x"'"#)
        .await;
    raw.send("SUB my.private q 2\r\n").await.unwrap();
    raw.expect_exact(
        r#"-ERR 'Permissions Violation for Subscription to "my.private" using queue "q"'"#,
    )
    .await;
    raw.send("SUB visible 3\r\n").await.unwrap();
    assert!(raw.lines_until_pong().await.is_empty());

    let admin = s
        .client_with(ConnectOptions::with_user_and_password(
            "admin".into(),
            "pw".into(),
        ))
        .await;
    admin.publish("hidden.x", "h".into()).await.unwrap();
    admin.publish("my.private", "p".into()).await.unwrap();
    admin.publish("visible", "v".into()).await.unwrap();
    flush(&admin).await;
    assert_eq!(raw.lines_until_pong().await, ["MSG visible 3 1", "v"]);
}

async fn publish_deny_async_nats_event(kind: ServerKind) {
    let s = TestServer::start(kind, PERMS_CONF).await;
    let (opts, mut errors) = with_error_events(ConnectOptions::with_user_and_password(
        "limited".into(),
        "pw".into(),
    ));
    let c = s.client_with(opts).await;
    c.publish("secret.x", "no".into()).await.unwrap();
    flush(&c).await;
    let err = within("server error event", errors.recv())
        .await
        .expect("event channel open");
    assert!(
        err.to_lowercase()
            .contains(r#"permissions violation for publish to "secret.x""#),
        "{err}"
    );
}

async fn allow_responses(kind: ServerKind) {
    let conf = r#"
        authorization {
          users: [
            { user: svc, password: pw, permissions: { subscribe: "req.>", allow_responses: true } }
            { user: cli, password: pw }
          ]
        }
    "#;
    let s = TestServer::start(kind, conf).await;
    let mut svc = s.raw().await;
    svc.handshake(r#"{"verbose":false,"user":"svc","pass":"pw"}"#)
        .await;
    svc.send("SUB req.> 1\r\n").await.unwrap();
    assert!(svc.lines_until_pong().await.is_empty());

    // Without a request to answer, the responder may not publish at all.
    svc.send("PUB elsewhere 1\r\nx\r\n").await.unwrap();
    svc.expect_exact(r#"-ERR 'Permissions Violation for Publish to "elsewhere"'"#)
        .await;

    let cli = s
        .client_with(ConnectOptions::with_user_and_password(
            "cli".into(),
            "pw".into(),
        ))
        .await;
    let inbox = cli.new_inbox();
    let mut replies = cli.subscribe(inbox.clone()).await.unwrap();
    flush(&cli).await;
    cli.publish_with_reply("req.time", inbox.clone(), "now?".into())
        .await
        .unwrap();
    flush(&cli).await;

    let head = svc.expect("MSG req.time").await;
    assert_eq!(head, format!("MSG req.time 1 {inbox} 4"));
    svc.expect_exact("now?").await;
    // One reply is allowed...
    svc.send(&format!("PUB {inbox} 4\r\nnoon\r\n"))
        .await
        .unwrap();
    assert!(svc.lines_until_pong().await.is_empty());
    assert_eq!(text(&next_msg(&mut replies).await), "noon");
    // ...a second one to the same reply subject is not (default max 1).
    svc.send(&format!("PUB {inbox} 5\r\nagain\r\n"))
        .await
        .unwrap();
    svc.expect_exact(&format!(
        "-ERR 'Permissions Violation for Publish to \"{inbox}\"'"
    ))
    .await;

    // The async-nats request helper works against such a responder too.
    // The raw responder leaves first, so requests below reach only `svc2`.
    svc.send("UNSUB 1\r\n").await.unwrap();
    assert!(svc.lines_until_pong().await.is_empty());
    let svc2 = s
        .client_with(ConnectOptions::with_user_and_password(
            "svc".into(),
            "pw".into(),
        ))
        .await;
    let mut reqs = svc2.subscribe("req.echo").await.unwrap();
    let responder = tokio::spawn(async move {
        let m = reqs.next().await.expect("a request");
        svc2.publish(m.reply.clone().expect("reply subject"), m.payload.clone())
            .await
            .unwrap();
        svc2.flush().await.unwrap();
    });
    // svc2 cannot publish, so a flush cannot tell when its SUB is in place: retry
    // while the server answers "no responders", which it does at once.
    let resp = within("request to reach the responder", async {
        loop {
            match cli.request("req.echo", "hi".into()).await {
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => continue,
                other => break other.unwrap(),
            }
        }
    })
    .await;
    assert_eq!(text(&resp), "hi");
    within("responder", responder).await.unwrap();
}
