//! JetStream object store through async-nats' own API, against natsd and nats-server.
//!
//! An object store is a stream `OBJ_<bucket>` whose chunks go to `$O.<bucket>.C.<nuid>` and
//! whose per-object info (a rollup message) goes to `$O.<bucket>.M.<name>`; everything here
//! is exercised through the client, so the server only sees ordinary stream, consumer,
//! direct-get and rollup traffic.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use async_nats::jetstream::{self, object_store};
use futures::StreamExt;
use natsd_tests::js::js_server;
use natsd_tests::{both, within, ServerKind, TestServer};
use tokio::io::AsyncReadExt;

both!(
    obj_put_get_multi_chunk,
    obj_info_list_delete,
    obj_watch,
    obj_links,
    obj_seal,
    obj_metadata_and_rename
);

async fn bucket(s: &TestServer, name: &str) -> object_store::ObjectStore {
    let js = jetstream::new(s.client().await);
    js.create_object_store(object_store::Config {
        bucket: name.into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Deterministic bytes that differ from chunk to chunk, so a reordered or dropped chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 9)) as u8)
        .collect()
}

async fn read_all(store: &object_store::ObjectStore, name: &str) -> Vec<u8> {
    let mut obj = store.get(name).await.unwrap();
    let mut out = Vec::new();
    within("read object", obj.read_to_end(&mut out))
        .await
        .unwrap();
    out
}

async fn obj_put_get_multi_chunk(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let store = bucket(&s, "files").await;
    // 300 KiB with the default 128 KiB chunks: three chunk messages.
    let data = pattern(300 * 1024);
    let info = store.put("big.bin", &mut &data[..]).await.unwrap();
    assert_eq!((info.size, info.chunks), (data.len(), 3));
    assert!(info.digest.as_deref().unwrap().starts_with("SHA-256="));
    assert_eq!(read_all(&store, "big.bin").await, data);

    // A small chunk size gives many chunks; replacing the object drops the old chunks.
    let small = pattern(10_000);
    let meta = object_store::ObjectMetadata {
        name: "big.bin".into(),
        chunk_size: Some(1000),
        ..Default::default()
    };
    let info = store.put(meta, &mut &small[..]).await.unwrap();
    assert_eq!(info.chunks, 10);
    assert_eq!(read_all(&store, "big.bin").await, small);

    // An empty object is valid too.
    let info = store.put("empty", &mut &b""[..]).await.unwrap();
    assert_eq!((info.size, info.chunks), (0, 0));
    assert!(read_all(&store, "empty").await.is_empty());
}

async fn obj_info_list_delete(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let store = bucket(&s, "docs").await;
    let meta = object_store::ObjectMetadata {
        name: "a.txt".into(),
        description: Some("first".into()),
        ..Default::default()
    };
    store.put(meta, &mut &b"alpha"[..]).await.unwrap();
    store.put("b.txt", &mut &b"beta"[..]).await.unwrap();

    let info = store.info("a.txt").await.unwrap();
    assert_eq!(info.name, "a.txt");
    assert_eq!(info.bucket, "docs");
    assert_eq!(info.description.as_deref(), Some("first"));
    assert_eq!(info.size, 5);
    assert!(!info.deleted);
    assert!(store.info("nope").await.is_err());

    let mut names: Vec<String> = within(
        "list",
        store
            .list()
            .await
            .unwrap()
            .map(|i| i.unwrap().name)
            .collect(),
    )
    .await;
    names.sort();
    assert_eq!(names, ["a.txt", "b.txt"]);

    store.delete("a.txt").await.unwrap();
    assert!(store.get("a.txt").await.is_err());
    assert!(store.info("a.txt").await.unwrap().deleted);
    let names: Vec<String> = within(
        "list after delete",
        store
            .list()
            .await
            .unwrap()
            .map(|i| i.unwrap().name)
            .collect(),
    )
    .await;
    assert_eq!(names, ["b.txt"]);
    assert_eq!(read_all(&store, "b.txt").await, b"beta");
}

async fn obj_watch(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let store = bucket(&s, "w").await;
    store.put("before", &mut &b"0"[..]).await.unwrap();
    let mut hist = store.watch_with_history().await.unwrap();
    let e = within("initial", hist.next()).await.unwrap().unwrap();
    assert_eq!(e.name, "before");

    let mut w = store.watch().await.unwrap();
    store.put("x", &mut &b"1"[..]).await.unwrap();
    store.delete("x").await.unwrap();
    let e = within("put", w.next()).await.unwrap().unwrap();
    assert_eq!((e.name.as_str(), e.deleted, e.size), ("x", false, 1));
    let e = within("delete", w.next()).await.unwrap().unwrap();
    assert_eq!((e.name.as_str(), e.deleted), ("x", true));
    let e = within("history watcher sees the put", hist.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.name, "x");
}

async fn obj_links(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let store = bucket(&s, "l").await;
    let info = store.put("target", &mut &b"payload"[..]).await.unwrap();
    let link = store.add_link("alias", &info).await.unwrap();
    let opts = link.options.unwrap().link.unwrap();
    assert_eq!(opts.name.as_deref(), Some("target"));
    // Reading through the link follows it to the target's chunks.
    assert_eq!(read_all(&store, "alias").await, b"payload");
}

async fn obj_seal(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let mut store = bucket(&s, "sealed").await;
    store.put("kept", &mut &b"k"[..]).await.unwrap();
    store.seal().await.unwrap();
    assert!(store.put("more", &mut &b"m"[..]).await.is_err());
    assert!(store.delete("kept").await.is_err());
    assert_eq!(read_all(&store, "kept").await, b"k");
    let js = jetstream::new(s.client().await);
    let info = js
        .get_stream("OBJ_sealed")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert!(info.config.sealed);
}

async fn obj_metadata_and_rename(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let store = bucket(&s, "meta").await;
    let meta = object_store::ObjectMetadata {
        name: "old".into(),
        metadata: [("k".to_string(), "v".to_string())].into(),
        ..Default::default()
    };
    store.put(meta, &mut &b"body"[..]).await.unwrap();
    assert_eq!(store.info("old").await.unwrap().metadata["k"], "v");
    // A rename purges the old name's info message and writes the new one.
    let renamed = store
        .update_metadata(
            "old",
            object_store::UpdateMetadata {
                name: "new".into(),
                description: Some("renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "new");
    assert!(store.info("old").await.is_err());
    let info = store.info("new").await.unwrap();
    assert_eq!(info.description.as_deref(), Some("renamed"));
    assert_eq!(read_all(&store, "new").await, b"body");
    // Replacing an object purges its old chunks: one chunk and one info message remain.
    store.put("new", &mut &b"other"[..]).await.unwrap();
    let js = jetstream::new(s.client().await);
    let mut st = js.get_stream("OBJ_meta").await.unwrap();
    assert_eq!(st.info().await.unwrap().state.messages, 2);
}
