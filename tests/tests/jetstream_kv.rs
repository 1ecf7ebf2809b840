//! JetStream key-value buckets through async-nats, against natsd and nats-server.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use async_nats::jetstream::{self, kv, stream};
use futures::StreamExt;
use natsd_tests::js::js_server;
use natsd_tests::{both, drain_ready, next_msg, within, ServerKind};

both!(
    kv_basics,
    kv_history_keys,
    kv_watch,
    kv_error_kinds,
    kv_markers_in_history_and_keys,
    kv_watch_key_and_revision,
    direct_get_only_where_allowed
);

/// A KV bucket's stream, made as async-nats' `create_key_value` makes it (that call first
/// queries account info, which async-nats cannot parse from nats-server 2.9).
async fn make_kv(js: &jetstream::Context, bucket: &str, history: i64) -> kv::Store {
    js.create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .unwrap();
    js.get_key_value(bucket).await.unwrap()
}

async fn kv_basics(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let kv = make_kv(&js, "cfg", 5).await;
    let r1 = kv.put("a", "1".into()).await.unwrap();
    assert_eq!(kv.get("a").await.unwrap().unwrap(), "1");
    let r2 = kv.update("a", "2".into(), r1).await.unwrap();
    assert!(r2 > r1);
    assert!(kv.update("a", "3".into(), r1).await.is_err());
    assert!(kv.create("a", "x".into()).await.is_err());
    kv.create("b", "new".into()).await.unwrap();
    kv.delete("a").await.unwrap();
    assert!(kv.get("a").await.unwrap().is_none());
    kv.create("a", "again".into()).await.unwrap();
    assert_eq!(kv.get("a").await.unwrap().unwrap(), "again");
    kv.purge("b").await.unwrap();
    assert!(kv.get("b").await.unwrap().is_none());
    assert!(kv.get("missing").await.unwrap().is_none());
    let e = kv.entry("a").await.unwrap().unwrap();
    assert_eq!(e.key, "a");
}

async fn kv_history_keys(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let kv = make_kv(&js, "h", 3).await;
    for v in ["1", "2", "3", "4"] {
        kv.put("k", v.into()).await.unwrap();
    }
    kv.put("j", "x".into()).await.unwrap();
    let hist: Vec<String> = within(
        "history",
        kv.history("k")
            .await
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().value.to_vec()).unwrap())
            .collect(),
    )
    .await;
    assert_eq!(hist, ["2", "3", "4"]);
    let mut keys: Vec<String> = within(
        "keys",
        kv.keys().await.unwrap().map(|k| k.unwrap()).collect(),
    )
    .await;
    keys.sort();
    assert_eq!(keys, ["j", "k"]);
}

async fn kv_watch(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let kv = make_kv(&js, "w", 1).await;
    kv.put("old", "0".into()).await.unwrap();
    let mut w = kv.watch_with_history("*").await.unwrap();
    let e = within("initial", w.next()).await.unwrap().unwrap();
    assert_eq!(e.key, "old");
    kv.put("k1", "1".into()).await.unwrap();
    // Seen before the delete: with history 1 the delete marker replaces the put, and a
    // watcher that had not been sent the put yet would only ever see the delete.
    let e = within("put", w.next()).await.unwrap().unwrap();
    assert_eq!((e.key.as_str(), &e.value[..]), ("k1", &b"1"[..]));
    kv.delete("k1").await.unwrap();
    let e = within("del", w.next()).await.unwrap().unwrap();
    assert_eq!(e.operation, kv::Operation::Delete);
}

/// The client tells a stale revision and an existing key apart from other failures: the server
/// must answer with the JetStream error codes the client maps (10071 wrong last sequence).
async fn kv_error_kinds(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let kv = make_kv(&js, "errs", 3).await;
    let r1 = kv.put("a", "1".into()).await.unwrap();
    kv.put("a", "2".into()).await.unwrap();
    let e = kv.update("a", "3".into(), r1).await.unwrap_err();
    assert_eq!(e.kind(), kv::UpdateErrorKind::WrongLastRevision, "{e}");
    let e = kv.create("a", "x".into()).await.unwrap_err();
    assert_eq!(e.kind(), kv::CreateErrorKind::AlreadyExists, "{e}");
    // Revision 0 means "the key must not exist yet".
    let e = kv.update("fresh", "x".into(), 5).await.unwrap_err();
    assert_eq!(e.kind(), kv::UpdateErrorKind::WrongLastRevision, "{e}");
    kv.update("fresh", "x".into(), 0).await.unwrap();
    // A deleted key may be created again; a purged one too.
    kv.delete("fresh").await.unwrap();
    kv.create("fresh", "y".into()).await.unwrap();
    kv.purge("fresh").await.unwrap();
    kv.create("fresh", "z".into()).await.unwrap();
    assert_eq!(kv.get("fresh").await.unwrap().unwrap(), "z");
}

async fn ops(kv: &kv::Store, key: &str) -> Vec<(kv::Operation, String)> {
    within(
        "history",
        kv.history(key)
            .await
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.operation, String::from_utf8(e.value.to_vec()).unwrap())
            })
            .collect(),
    )
    .await
}

async fn kv_markers_in_history_and_keys(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let kv = make_kv(&js, "m", 10).await;
    kv.put("k", "1".into()).await.unwrap();
    kv.delete("k").await.unwrap();
    kv.put("k", "2".into()).await.unwrap();
    use kv::Operation::{Delete, Purge, Put};
    assert_eq!(
        ops(&kv, "k").await,
        [
            (Put, "1".into()),
            (Delete, String::new()),
            (Put, "2".into())
        ]
    );
    // Purge is a rollup: only the purge marker stays.
    kv.purge("k").await.unwrap();
    assert_eq!(ops(&kv, "k").await, [(Purge, String::new())]);
    kv.put("live", "v".into()).await.unwrap();
    kv.put("gone", "v".into()).await.unwrap();
    kv.delete("gone").await.unwrap();
    let keys: Vec<String> = within(
        "keys",
        kv.keys().await.unwrap().map(|k| k.unwrap()).collect(),
    )
    .await;
    assert_eq!(keys, ["live"], "deleted and purged keys are not listed");
    let st = kv.status().await.unwrap();
    assert_eq!(st.history(), 10);
    assert_eq!(st.bucket(), "m");
}

async fn kv_watch_key_and_revision(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let kv = make_kv(&js, "wr", 5).await;
    let r1 = kv.put("a.one", "1".into()).await.unwrap();
    kv.put("b", "x".into()).await.unwrap();
    // A watch with no history sees only what comes after it, and only its key.
    let mut w = kv.watch("a.*").await.unwrap();
    kv.put("b", "y".into()).await.unwrap();
    kv.put("a.two", "2".into()).await.unwrap();
    kv.purge("a.one").await.unwrap();
    let mut got = Vec::new();
    loop {
        let e = within("a watch event", w.next()).await.unwrap().unwrap();
        let purge = e.operation == kv::Operation::Purge;
        got.push((e.key.clone(), e.value.to_vec(), e.operation));
        if purge {
            break;
        }
    }
    let want = vec![
        ("a.two".to_owned(), b"2".to_vec(), kv::Operation::Put),
        ("a.one".to_owned(), Vec::new(), kv::Operation::Purge),
    ];
    if kind == ServerKind::Natsd {
        assert_eq!(got, want);
    } else {
        // nats-server 2.9.10 fixes a "new" consumer's start a moment after answering its
        // create: on a loaded machine the watch once began after `a.two`. What it gives is
        // still in order and only on the watched keys.
        assert!(want.ends_with(&got), "{got:?}");
    }
    // From a revision: everything still stored from r1 on, in order. The purge rolled up
    // `a.one`, so its first value (r1 itself) is gone.
    let mut w = kv.watch_all_from_revision(r1).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let e = within("from revision", w.next()).await.unwrap().unwrap();
        seen.push((e.key, e.revision));
    }
    let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["b", "b", "a.two", "a.one"]);
    assert!(seen[0].1 > r1);
    assert!(seen.windows(2).all(|p| p[0].1 < p[1].1), "{seen:?}");
}

/// Direct gets are answered only by a stream with `allow_direct` (nats-py makes buckets without
/// it by default and then reads with STREAM.MSG.GET). Without it, or without the stream, nobody
/// answers: nats-server has no direct-get subscription there, so a `404` would claim that a
/// stored message is missing.
async fn direct_get_only_where_allowed(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    for (name, direct) in [("ND", false), ("D", true)] {
        js.create_stream(stream::Config {
            name: name.into(),
            subjects: vec![name.to_lowercase()],
            allow_direct: direct,
            ..Default::default()
        })
        .await
        .unwrap();
        js.publish(name.to_lowercase(), "v".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let inbox = c.new_inbox();
    let mut replies = c.subscribe(format!("{inbox}.*")).await.unwrap();
    let asks = [
        ("$JS.API.DIRECT.GET.ND", r#"{"seq":1}"#),
        ("$JS.API.DIRECT.GET.ND.nd", ""),
        ("$JS.API.DIRECT.GET.NOPE", r#"{"seq":1}"#),
    ];
    for (i, (subj, body)) in asks.iter().enumerate() {
        c.publish_with_reply(*subj, format!("{inbox}.{i}"), body.to_string().into())
            .await
            .unwrap();
    }
    // The stream that allows direct gets answers after the others were handled.
    c.publish_with_reply(
        "$JS.API.DIRECT.GET.D",
        format!("{inbox}.ok"),
        r#"{"seq":1}"#.into(),
    )
    .await
    .unwrap();
    let m = next_msg(&mut replies).await;
    assert_eq!(m.subject.as_str(), format!("{inbox}.ok"));
    assert_eq!(&m.payload[..], b"v");
    natsd_tests::flush(&c).await;
    let extra: Vec<String> = drain_ready(&mut replies)
        .iter()
        .map(|m| m.subject.to_string())
        .collect();
    assert!(extra.is_empty(), "unexpected replies: {extra:?}");
}

/// Per-key message counts of a bucket through stream info's `subjects_filter`.
#[tokio::test]
async fn kv_subject_counts_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, kv_subject_counts).await;
}

#[tokio::test]
async fn kv_subject_counts_nats_server() {
    natsd_tests::run_scenario(ServerKind::NatsServer, kv_subject_counts).await;
}

async fn kv_subject_counts(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let kv = make_kv(&js, "cnt", 5).await;
    for k in ["a", "a", "b"] {
        kv.put(k, "v".into()).await.unwrap();
    }
    let st = js.get_stream("KV_cnt").await.unwrap();
    let mut counts: Vec<(String, usize)> = within(
        "subjects",
        st.info_with_subjects("$KV.cnt.>")
            .await
            .unwrap()
            .map(|r| r.unwrap())
            .collect(),
    )
    .await;
    counts.sort();
    assert_eq!(
        counts,
        [("$KV.cnt.a".to_string(), 2), ("$KV.cnt.b".to_string(), 1)]
    );
}

/// natsd only: async-nats' own `create_key_value` (it needs 2.10 account-info fields).
#[tokio::test]
async fn kv_create_with_client_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, |kind| async move {
        let (s, _sd) = js_server(kind).await;
        let js = jetstream::new(s.client().await);
        let kv = js
            .create_key_value(kv::Config {
                bucket: "made".into(),
                history: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        kv.put("a", "1".into()).await.unwrap();
        assert_eq!(kv.get("a").await.unwrap().unwrap(), "1");
        let st = kv.status().await.unwrap();
        assert_eq!(st.history(), 2);
    })
    .await;
}
