//! Core protocol: pub/sub, wildcards, queues, headers, request/reply, unsubscribe,
//! echo, verbose mode, PING/PONG, INFO and unknown operations.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_nats::{HeaderMap, RequestErrorKind};
use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::{
    both, drain_ready, flush, flush_with, next_msg, text, within, ServerKind, TestServer,
};

both!(
    pubsub_basic,
    wildcards,
    queue_groups,
    headers_round_trip,
    headers_raw_wire,
    request_reply,
    no_responders,
    unsubscribe,
    auto_unsubscribe,
    auto_unsubscribe_raw,
    echo_off,
    verbose_ok,
    ping_pong_and_info,
    raw_pub_sub_wire,
    unknown_operation,
    split_writes,
    large_payload,
    garbage_does_not_hurt_others,
);

async fn pubsub_basic(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let sub_client = s.client().await;
    let pub_client = s.client().await;
    let mut sub = within("subscribe", sub_client.subscribe("greet.joe"))
        .await
        .unwrap();
    flush(&sub_client).await;

    pub_client
        .publish("greet.joe", "hello".into())
        .await
        .unwrap();
    pub_client.publish("greet.joe", Bytes::new()).await.unwrap();
    flush(&pub_client).await;

    let m = next_msg(&mut sub).await;
    assert_eq!(m.subject.as_str(), "greet.joe");
    assert_eq!(text(&m), "hello");
    assert!(m.reply.is_none());
    let m = next_msg(&mut sub).await;
    assert!(m.payload.is_empty(), "empty payload must stay empty");
}

async fn wildcards(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let c = s.client().await;
    let publisher = s.client().await;
    let mut star = c.subscribe("foo.*").await.unwrap();
    let mut gt = c.subscribe("foo.>").await.unwrap();
    let mut mid = c.subscribe("*.mid.*").await.unwrap();
    flush(&c).await;

    for subj in [
        "foo",
        "foo.bar",
        "foo.bar.baz",
        "a.mid.b",
        "a.mid",
        "done.mid.x",
    ] {
        publisher.publish(subj, subj.into()).await.unwrap();
    }
    flush(&publisher).await;
    // The last publish matches `*.mid.*`: once it has arrived, everything published
    // earlier on the same connection has been routed, so the buffers are complete.
    let last = next_msg(&mut mid).await;
    let mut mid_got = vec![last.subject.to_string()];
    mid_got.extend(drain_ready(&mut mid).iter().map(|m| m.subject.to_string()));
    mid_got.sort();
    assert_eq!(mid_got, ["a.mid.b", "done.mid.x"]);

    let star_got: Vec<String> = drain_ready(&mut star)
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
    assert_eq!(star_got, ["foo.bar"]);
    let gt_got: Vec<String> = drain_ready(&mut gt)
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
    assert_eq!(gt_got, ["foo.bar", "foo.bar.baz"]);
}

async fn queue_groups(kind: ServerKind) {
    const N: usize = 300;
    let s = TestServer::start(kind, "").await;
    let mut members = Vec::new();
    for _ in 0..3 {
        let c = s.client().await;
        let q = c.queue_subscribe("work", "workers".into()).await.unwrap();
        let end = c.subscribe("work.end").await.unwrap();
        flush(&c).await;
        members.push((c, q, end));
    }
    let plain_client = s.client().await;
    let mut plain = plain_client.subscribe("work").await.unwrap();
    flush(&plain_client).await;

    let publisher = s.client().await;
    for i in 0..N {
        publisher
            .publish("work", i.to_string().into())
            .await
            .unwrap();
    }
    publisher.publish("work.end", "end".into()).await.unwrap();
    flush(&publisher).await;

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_member = Vec::new();
    for (_c, q, end) in &mut members {
        // The end marker comes after every `work` message on this connection.
        next_msg(end).await;
        let got = drain_ready(q);
        per_member.push(got.len());
        for m in got {
            *seen.entry(text(&m)).or_default() += 1;
        }
    }
    assert_eq!(
        seen.len(),
        N,
        "every message reaches the group: {per_member:?}"
    );
    assert!(
        seen.values().all(|&n| n == 1),
        "no message reaches two members"
    );
    assert!(
        per_member.iter().all(|&n| n > 0),
        "all members get some: {per_member:?}"
    );

    // A plain subscriber on the same subject still gets everything.
    for _ in 0..N {
        next_msg(&mut plain).await;
    }
}

async fn headers_round_trip(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let c = s.client().await;
    assert_eq!(s.raw().await.info["headers"], serde_json::json!(true));
    let mut sub = c.subscribe("hdr").await.unwrap();
    flush(&c).await;

    let mut h = HeaderMap::new();
    h.insert("X-One", "1");
    h.append("X-Multi", "a");
    h.append("X-Multi", "b");
    c.publish_with_headers("hdr", h, "body".into())
        .await
        .unwrap();
    c.publish_with_headers("hdr", HeaderMap::new(), Bytes::new())
        .await
        .unwrap();
    flush(&c).await;

    let m = next_msg(&mut sub).await;
    assert_eq!(text(&m), "body");
    let h = m.headers.expect("headers arrive");
    assert_eq!(h.get("X-One").map(|v| v.as_str()), Some("1"));
    let multi: Vec<&str> = h.get_all("X-Multi").map(|v| v.as_str()).collect();
    assert_eq!(multi, ["a", "b"]);

    let m = next_msg(&mut sub).await;
    assert!(m.payload.is_empty());
}

async fn headers_raw_wire(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let mut sub = s.raw().await;
    sub.handshake(r#"{"verbose":false,"headers":true}"#).await;
    sub.send("SUB h.x 7\r\n").await.unwrap();
    let mut publisher = s.raw().await;
    publisher
        .handshake(r#"{"verbose":false,"headers":true}"#)
        .await;
    assert!(sub.lines_until_pong().await.is_empty());

    let hdr = "NATS/1.0\r\nA: 1\r\nA: 2\r\n\r\n";
    let frame = format!(
        "HPUB h.x reply.to {} {}\r\n{hdr}hi\r\n",
        hdr.len(),
        hdr.len() + 2
    );
    publisher.send(&frame).await.unwrap();
    assert!(publisher.lines_until_pong().await.is_empty());

    let head = sub.expect("HMSG").await;
    assert_eq!(
        head,
        format!("HMSG h.x 7 reply.to {} {}", hdr.len(), hdr.len() + 2)
    );
    sub.expect_exact("NATS/1.0").await;
    sub.expect_exact("A: 1").await;
    sub.expect_exact("A: 2").await;
    sub.expect_exact("").await;
    sub.expect_exact("hi").await;

    // HPUB from a client that did not announce headers is a protocol violation:
    // the server closes it (Go sends no -ERR text first) and routes nothing.
    let mut old = s.raw().await;
    old.handshake(r#"{"verbose":false}"#).await;
    old.send("HPUB h.x 12 12\r\nNATS/1.0\r\n\r\n\r\n")
        .await
        .unwrap();
    let after = old.expect_closed().await;
    assert!(after.iter().all(|l| !l.starts_with("PONG")), "{after:?}");
    assert!(sub.lines_until_pong().await.is_empty());
}

async fn request_reply(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let responder = s.client().await;
    let mut svc = responder.subscribe("svc.upper").await.unwrap();
    flush(&responder).await;
    let r2 = responder.clone();
    let task = tokio::spawn(async move {
        for _ in 0..3 {
            let Some(m) = svc.next().await else { return };
            let reply = m.reply.clone().expect("request carries a reply subject");
            r2.publish(reply, text(&m).to_uppercase().into())
                .await
                .unwrap();
        }
    });

    let requester = s.client().await;
    for word in ["a", "bc", "def"] {
        let resp = within("request", requester.request("svc.upper", word.into()))
            .await
            .unwrap();
        assert_eq!(text(&resp), word.to_uppercase());
    }
    within("responder to finish", task).await.unwrap();
}

async fn no_responders(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let c = s.client().await;
    let started = Instant::now();
    let err = within(
        "request without responders",
        c.request("nobody.home", "x".into()),
    )
    .await
    .expect_err("no one is listening");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no-responders must be quick"
    );
}

async fn unsubscribe(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let mut sub = s.raw().await;
    sub.handshake(r#"{"verbose":false}"#).await;
    sub.send("SUB u.x 1\r\nSUB u.x 2\r\nUNSUB 1\r\n")
        .await
        .unwrap();
    assert!(sub.lines_until_pong().await.is_empty());

    let publisher = s.client().await;
    publisher.publish("u.x", "m".into()).await.unwrap();
    flush(&publisher).await;
    let got = sub.lines_until_pong().await;
    assert_eq!(
        got,
        ["MSG u.x 2 1", "m"],
        "only the remaining subscription gets it"
    );

    // Unsubscribing an unknown sid is not an error.
    sub.send("UNSUB 99\r\n").await.unwrap();
    assert!(sub.lines_until_pong().await.is_empty());

    // async-nats: after unsubscribe the stream ends without more messages.
    let c = s.client().await;
    let mut asub = c.subscribe("u.y").await.unwrap();
    asub.unsubscribe().await.unwrap();
    flush(&c).await;
    publisher.publish("u.y", "late".into()).await.unwrap();
    flush(&publisher).await;
    assert!(within("stream end", asub.next()).await.is_none());
}

async fn auto_unsubscribe(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let c = s.client().await;
    let mut sub = c.subscribe("auto").await.unwrap();
    sub.unsubscribe_after(2).await.unwrap();
    flush(&c).await;
    let publisher = s.client().await;
    for i in 0..5 {
        publisher
            .publish("auto", i.to_string().into())
            .await
            .unwrap();
    }
    flush(&publisher).await;
    assert_eq!(text(&next_msg(&mut sub).await), "0");
    assert_eq!(text(&next_msg(&mut sub).await), "1");
    assert!(within("stream end", sub.next()).await.is_none());
}

async fn auto_unsubscribe_raw(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let mut sub = s.raw().await;
    sub.handshake(r#"{"verbose":false}"#).await;
    sub.send("SUB a.x 5\r\nUNSUB 5 2\r\n").await.unwrap();
    assert!(sub.lines_until_pong().await.is_empty());

    let mut publisher = s.raw().await;
    publisher.handshake(r#"{"verbose":false}"#).await;
    publisher
        .send("PUB a.x 1\r\n1\r\nPUB a.x 1\r\n2\r\nPUB a.x 1\r\n3\r\n")
        .await
        .unwrap();
    assert!(publisher.lines_until_pong().await.is_empty());

    let got = sub.lines_until_pong().await;
    assert_eq!(got, ["MSG a.x 5 1", "1", "MSG a.x 5 1", "2"]);
}

async fn echo_off(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let quiet = s
        .client_with(async_nats::ConnectOptions::new().no_echo())
        .await;
    let other = s.client().await;
    let mut sub = quiet.subscribe("echo").await.unwrap();
    quiet.publish("echo", "own".into()).await.unwrap();
    // `quiet` cannot see its own marker, so `other` observes it.
    flush_with(&quiet, &other).await;

    let mut other_sub = other.subscribe("echo").await.unwrap();
    flush(&other).await;
    other.publish("echo", "other".into()).await.unwrap();
    flush(&other).await;

    // The first thing the quiet client sees is the other client's message.
    assert_eq!(text(&next_msg(&mut sub).await), "other");
    // With echo on (the default), a client does see its own message.
    assert_eq!(text(&next_msg(&mut other_sub).await), "other");

    // Wire check: echo:false in CONNECT.
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false,"echo":false}"#).await;
    raw.send("SUB echo 1\r\nPUB echo 2\r\nhi\r\n")
        .await
        .unwrap();
    assert!(raw.lines_until_pong().await.is_empty());
}

async fn verbose_ok(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let mut c = s.raw().await;
    c.send("CONNECT {\"verbose\":true}\r\n").await.unwrap();
    c.expect_exact("+OK").await;
    c.send("SUB v.x 1\r\n").await.unwrap();
    c.expect_exact("+OK").await;
    c.send("PUB v.x 2\r\nhi\r\n").await.unwrap();
    c.expect_exact("+OK").await;
    c.expect_exact("MSG v.x 1 2").await;
    c.expect_exact("hi").await;
    c.send("UNSUB 1\r\n").await.unwrap();
    c.expect_exact("+OK").await;
    // PING is answered with PONG only, no +OK.
    c.send("PING\r\n").await.unwrap();
    c.expect_exact("PONG").await;
}

async fn ping_pong_and_info(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let mut c = s.raw().await;
    let info = c.info.clone();
    assert!(
        info["server_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{info}"
    );
    assert!(info["version"].is_string(), "{info}");
    assert_eq!(info["max_payload"], serde_json::json!(1_048_576), "{info}");
    assert_eq!(info["port"], serde_json::json!(s.port()), "{info}");
    assert_eq!(info["proto"], serde_json::json!(1), "{info}");
    assert_eq!(info["headers"], serde_json::json!(true), "{info}");
    assert!(
        info.get("auth_required").is_none_or(|v| v == false),
        "{info}"
    );
    assert!(
        info.get("tls_required").is_none_or(|v| v == false),
        "{info}"
    );

    // PING before CONNECT is answered too.
    c.send("PING\r\n").await.unwrap();
    c.expect_exact("PONG").await;
    // An empty CONNECT means verbose: Go's client options default to verbose on.
    c.send("CONNECT {}\r\nPING\r\nPING\r\n").await.unwrap();
    c.expect_exact("+OK").await;
    c.expect_exact("PONG").await;
    c.expect_exact("PONG").await;
    // Lower-case operations are accepted.
    c.send("ping\r\n").await.unwrap();
    c.expect_exact("PONG").await;
}

async fn raw_pub_sub_wire(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let mut c = s.raw().await;
    c.handshake(r#"{"verbose":false}"#).await;
    c.send("SUB w.* grp 3\r\nSUB w.a 4\r\n").await.unwrap();
    assert!(c.lines_until_pong().await.is_empty());
    c.send("PUB w.a r.1 5\r\nhello\r\n").await.unwrap();
    let mut got = c.lines_until_pong().await;
    assert_eq!(got.len(), 4, "{got:?}");
    // Delivery order between the two subscriptions is not specified.
    let (first, second) = got.split_at_mut(2);
    let mut pairs = [first.join("|"), second.join("|")];
    pairs.sort();
    assert_eq!(pairs, ["MSG w.a 3 r.1 5|hello", "MSG w.a 4 r.1 5|hello"]);
}

async fn unknown_operation(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let mut c = s.raw().await;
    c.handshake(r#"{"verbose":false}"#).await;
    c.send("FOO bar\r\n").await.unwrap();
    c.expect_exact("-ERR 'Unknown Protocol Operation'").await;
    c.expect_closed().await;
}

async fn split_writes(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let mut c = s.raw().await;
    c.handshake(r#"{"verbose":false,"headers":true}"#).await;
    // Every operation arrives one byte per write: the server must reassemble them.
    let ops =
        "SUB sp.x 1\r\nPUB sp.x 5\r\nhello\r\nHPUB sp.x 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n";
    for b in ops.as_bytes() {
        c.send_bytes(std::slice::from_ref(b)).await.unwrap();
    }
    c.expect_exact("MSG sp.x 1 5").await;
    c.expect_exact("hello").await;
    c.expect_exact("HMSG sp.x 1 12 14").await;
    c.expect_exact("NATS/1.0").await;
    c.expect_exact("").await;
    c.expect_exact("hi").await;
    c.expect_exact("PONG").await;
    // Many operations in one write work as well.
    let batch: String = (0..50)
        .map(|i| format!("PUB sp.x {}\r\n{i}\r\n", i.to_string().len()))
        .collect();
    c.send(&batch).await.unwrap();
    let got = c.lines_until_pong().await;
    assert_eq!(got.len(), 100, "{got:?}");
    assert_eq!(got[98], "MSG sp.x 1 2");
    assert_eq!(got[99], "49");
}

async fn large_payload(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let c = s.client().await;
    let mut sub = c.subscribe("big").await.unwrap();
    flush(&c).await;
    let max = c.server_info().max_payload;
    let payload: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
    c.publish("big", payload.clone().into()).await.unwrap();
    let mut h = HeaderMap::new();
    h.insert("K", "v");
    let body: Vec<u8> = payload[..max - 100].to_vec();
    c.publish_with_headers("big", h, body.clone().into())
        .await
        .unwrap();
    let m = next_msg(&mut sub).await;
    assert!(m.payload == payload, "1 MiB payload must arrive intact");
    let m = next_msg(&mut sub).await;
    assert!(m.payload == body, "payload with headers must arrive intact");
}

async fn garbage_does_not_hurt_others(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let c = s.client().await;
    let mut sub = c.subscribe("still.here").await.unwrap();
    flush(&c).await;
    for junk in [
        &b"\x00\xff\xfe garbage\r\n"[..],
        b"MSG x 1 1\r\nx\r\n",
        b"+OK\r\nPUB\r\n",
    ] {
        let mut raw = s.raw().await;
        let _ = raw.send_bytes(junk).await;
        raw.expect_closed().await;
    }
    c.publish("still.here", "yes".into()).await.unwrap();
    assert_eq!(text(&next_msg(&mut sub).await), "yes");
}
