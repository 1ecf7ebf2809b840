//! Multi-tenancy: account isolation, stream and service exports/imports.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use async_nats::{Client, ConnectOptions};
use futures::StreamExt;
use natsd_tests::{both, drain_ready, flush, next_msg, text, within, ServerKind, TestServer};

both!(
    accounts_isolated,
    stream_import_with_prefix,
    stream_import_plain,
    service_import_with_to,
    unimported_subjects_stay_private,
);

const ACCOUNTS_CONF: &str = r#"
    accounts {
      A {
        users: [ { user: a, password: pa }, { user: a2, password: pa } ]
        exports: [
          { stream: "events.>" }
          { service: "svc.echo" }
          { stream: "ticks" }
        ]
      }
      B {
        users: [ { user: b, password: pb } ]
        imports: [
          { stream: { account: A, subject: "events.>" }, prefix: "from_a" }
          { service: { account: A, subject: "svc.echo" }, to: "echo" }
          { stream: { account: A, subject: "ticks" } }
        ]
      }
      C {
        users: [ { user: c, password: pc } ]
      }
    }
"#;

async fn login(s: &TestServer, user: &str, pass: &str) -> Client {
    s.client_with(ConnectOptions::with_user_and_password(
        user.into(),
        pass.into(),
    ))
    .await
}

async fn accounts_isolated(kind: ServerKind) {
    let s = TestServer::start(kind, ACCOUNTS_CONF).await;
    let a = login(&s, "a", "pa").await;
    let a2 = login(&s, "a2", "pa").await;
    let c = login(&s, "c", "pc").await;
    let mut in_a = a2.subscribe("room").await.unwrap();
    let mut in_c = c.subscribe("room").await.unwrap();
    flush(&a2).await;
    flush(&c).await;

    a.publish("room", "for A".into()).await.unwrap();
    flush(&a).await;
    c.publish("room", "for C".into()).await.unwrap();
    flush(&c).await;

    // Users of the same account share subjects.
    assert_eq!(text(&next_msg(&mut in_a).await), "for A");
    // Each account only sees its own message: C's first message is its own.
    assert_eq!(text(&next_msg(&mut in_c).await), "for C");
    // A's subscriber got nothing from C: a marker from A arrives next.
    a.publish("room", "marker".into()).await.unwrap();
    assert_eq!(text(&next_msg(&mut in_a).await), "marker");
}

async fn stream_import_with_prefix(kind: ServerKind) {
    let s = TestServer::start(kind, ACCOUNTS_CONF).await;
    let a = login(&s, "a", "pa").await;
    let b = login(&s, "b", "pb").await;
    let mut prefixed = b.subscribe("from_a.events.>").await.unwrap();
    let mut bare = b.subscribe("events.>").await.unwrap();
    flush(&b).await;

    a.publish("events.login", "alice".into()).await.unwrap();
    a.publish("other.thing", "x".into()).await.unwrap();
    a.publish("events.logout", "bob".into()).await.unwrap();
    flush(&a).await;

    let m = next_msg(&mut prefixed).await;
    assert_eq!(m.subject.as_str(), "from_a.events.login");
    assert_eq!(text(&m), "alice");
    let m = next_msg(&mut prefixed).await;
    assert_eq!(m.subject.as_str(), "from_a.events.logout");
    // The unprefixed subject in B is B's own and got nothing.
    assert!(drain_ready(&mut bare).is_empty());

    // Publishing in B does not flow back into A.
    let mut a_events = a.subscribe("events.>").await.unwrap();
    flush(&a).await;
    b.publish("events.fake", "x".into()).await.unwrap();
    b.publish("from_a.events.fake", "x".into()).await.unwrap();
    flush(&b).await;
    a.publish("events.real", "y".into()).await.unwrap();
    assert_eq!(
        next_msg(&mut a_events).await.subject.as_str(),
        "events.real"
    );
}

async fn stream_import_plain(kind: ServerKind) {
    let s = TestServer::start(kind, ACCOUNTS_CONF).await;
    let a = login(&s, "a", "pa").await;
    let b = login(&s, "b", "pb").await;
    let c = login(&s, "c", "pc").await;
    let mut in_b = b.subscribe("ticks").await.unwrap();
    let mut in_c = c.subscribe("ticks").await.unwrap();
    flush(&b).await;
    flush(&c).await;
    a.publish("ticks", "1".into()).await.unwrap();
    flush(&a).await;
    let m = next_msg(&mut in_b).await;
    assert_eq!((m.subject.as_str(), text(&m).as_str()), ("ticks", "1"));
    // C did not import: its first message is its own marker.
    c.publish("ticks", "own".into()).await.unwrap();
    assert_eq!(text(&next_msg(&mut in_c).await), "own");
}

async fn service_import_with_to(kind: ServerKind) {
    let s = TestServer::start(kind, ACCOUNTS_CONF).await;
    let a = login(&s, "a", "pa").await;
    let b = login(&s, "b", "pb").await;
    let mut svc = a.subscribe("svc.echo").await.unwrap();
    flush(&a).await;
    let a2 = a.clone();
    let responder = tokio::spawn(async move {
        for _ in 0..2 {
            let Some(m) = svc.next().await else { return };
            let reply = m
                .reply
                .clone()
                .expect("imported request keeps a reply subject");
            // The request arrives on the exporter's subject, not the importer's `to`.
            let body = format!("{}:{}", m.subject, text(&m));
            a2.publish(reply, body.into()).await.unwrap();
            a2.flush().await.unwrap();
        }
    });

    let resp = within("service request", b.request("echo", "hi".into()))
        .await
        .unwrap();
    assert_eq!(text(&resp), "svc.echo:hi");

    // Raw requester in B: the reply comes back on B's own inbox subject.
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false,"user":"b","pass":"pb"}"#)
        .await;
    raw.send("SUB my.inbox 9\r\nPUB echo my.inbox 3\r\nraw\r\n")
        .await
        .unwrap();
    raw.expect_exact("MSG my.inbox 9 12").await;
    raw.expect_exact("svc.echo:raw").await;
    within("responder", responder).await.unwrap();
}

async fn unimported_subjects_stay_private(kind: ServerKind) {
    let s = TestServer::start(kind, ACCOUNTS_CONF).await;
    let a = login(&s, "a", "pa").await;
    let mut b = s.raw().await;
    b.handshake(r#"{"verbose":false,"user":"b","pass":"pb"}"#)
        .await;
    b.send("SUB > 1\r\n").await.unwrap();
    assert!(b.lines_until_pong().await.is_empty());
    a.publish("private.stuff", "secret".into()).await.unwrap();
    a.publish("events.ok", "public".into()).await.unwrap();
    a.publish("svc.echo", "not a stream".into()).await.unwrap();
    flush(&a).await;
    // Only the exported stream arrives, under its import prefix.
    assert_eq!(
        b.lines_until_pong().await,
        ["MSG from_a.events.ok 1 6", "public"]
    );
}
