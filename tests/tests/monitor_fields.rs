//! The monitoring JSON of natsd carries every field path nats-server's does, for the same
//! setup: a two-node cluster with JetStream on, a monitoring port, and a client with
//! subscriptions. Values differ (ids, times, counts); the set of field paths must not.
//!
//! Runs only when nats-server is installed (it is the reference); natsd-only paths are
//! allowed and listed below, Go-only ones only with a reason.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use natsd_tests::cluster::monitor_get;
use natsd_tests::{flush, free_port, ServerKind, TestServer};
use serde_json::Value;

/// The endpoints compared, with their query options.
const ENDPOINTS: &[&str] = &[
    "/varz",
    "/connz?subs=1",
    "/subsz",
    "/subsz?subs=1",
    "/routez",
    "/routez?subs=1",
    "/jsz",
    "/jsz?accounts=true",
    "/healthz",
    "/accountz",
];

/// Path prefixes (after the endpoint) nats-server shows and natsd cannot yet, with the reason.
const GO_ONLY: &[(&str, &str)] = &[
    // Only the meta leader lists the other members, and either node may lead.
    ("jetstream.meta.replicas", "listed by the meta leader only"),
    ("meta_cluster.replicas", "listed by the meta leader only"),
];

/// Paths natsd shows beyond nats-server 2.9.10's, and why (reported, never a failure).
const NATSD_ONLY: &[(&str, &str)] = &[
    ("server_name", "/routez, as nats-server 2.10+"),
    ("routes[].remote_name", "/routez, as nats-server 2.10+"),
];

/// Objects whose keys are data, not field names.
const MAPS: &[&str] = &["http_req_stats"];

fn field_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                if !MAPS.contains(&k.as_str()) {
                    field_paths(child, &p, out);
                }
            }
        }
        Value::Array(items) => {
            let p = format!("{prefix}[]");
            for item in items {
                if item.is_object() {
                    out.insert(p.clone());
                }
                field_paths(item, &p, out);
            }
        }
        _ => {}
    }
}

/// `"<endpoint> <path>"` for every field path of every endpoint of `kind`'s node 0.
async fn paths_of(kind: ServerKind) -> BTreeSet<String> {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let stores: Vec<String> = dirs
        .iter()
        .map(|d| d.path().to_str().unwrap().to_owned())
        .collect();
    // Every node lists every route: nats-server's clustered JetStream insists on configured
    // routes on each node.
    let route_ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let http_ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let routes = route_ports
        .iter()
        .map(|p| format!("\"nats://127.0.0.1:{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut nodes = Vec::new();
    for i in 0..2 {
        let conf = format!(
            "server_name: n{i}\nhttp: \"127.0.0.1:{}\"\njetstream {{ store_dir: {:?} }}\n\
             cluster {{ name: fields, listen: \"127.0.0.1:{}\", routes: [{routes}] }}\n",
            http_ports[i], stores[i], route_ports[i]
        );
        nodes.push(TestServer::start(kind, &conf).await);
    }
    let http = http_ports[0];
    // Routes, then JetStream (and, for nats-server, its meta leader) must be up before the
    // documents are complete.
    for port in &http_ports {
        wait_for(kind, *port, "/routez", |v| v["num_routes"] == 1).await;
        wait_for(kind, *port, "/healthz", |v| v["status"] == "ok").await;
        // Both servers time a route's round trip with a PING about a second after it forms.
        wait_for(kind, *port, "/routez", |v| {
            v["routes"][0]["rtt"].is_string()
        })
        .await;
    }
    wait_for(kind, http, "/jsz", |v| {
        !v["meta_cluster"]["leader"].is_null()
    })
    .await;
    let client = nodes[0].client().await;
    let _plain = client.subscribe("fields.a").await.unwrap();
    let _queue = client
        .queue_subscribe("fields.b", "q".to_owned())
        .await
        .unwrap();
    client.publish("fields.a", "x".into()).await.unwrap();
    flush(&client).await;
    let mut out = BTreeSet::new();
    for ep in ENDPOINTS {
        let Some(doc) = monitor_get(http, ep).await else {
            panic!("{} {ep}: no JSON", kind.name());
        };
        let mut paths = BTreeSet::new();
        field_paths(&doc, "", &mut paths);
        out.extend(paths.into_iter().map(|p| format!("{ep} {p}")));
    }
    drop(nodes);
    drop(dirs);
    out
}

/// Polls `path` on `http` until `ok` holds, for at most 30 s.
async fn wait_for(kind: ServerKind, http: u16, path: &str, ok: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = monitor_get(http, path).await;
        if v.as_ref().is_some_and(&ok) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} {path} never got there: {v:?}",
            kind.name()
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn natsd_shows_every_monitoring_field_nats_server_shows() {
    if !ServerKind::NatsServer.available() {
        eprintln!("note: nats-server is not installed; monitoring field comparison skipped");
        return;
    }
    natsd_tests::within_for(Duration::from_secs(150), "both field sets", async {
        let go = paths_of(ServerKind::NatsServer).await;
        let ours = paths_of(ServerKind::Natsd).await;
        let field = |p: &str| p.split_once(' ').map_or(p, |(_, f)| f).to_owned();
        let missing: Vec<&String> = go
            .iter()
            .filter(|p| !ours.contains(*p))
            .filter(|p| !GO_ONLY.iter().any(|(g, _)| field(p).starts_with(g)))
            .collect();
        let extra: Vec<&String> = ours
            .iter()
            .filter(|p| !go.contains(*p))
            .filter(|p| !NATSD_ONLY.iter().any(|(n, _)| field(p) == *n))
            .collect();
        if !extra.is_empty() {
            eprintln!("note: natsd-only paths not listed in NATSD_ONLY: {extra:#?}");
        }
        assert!(
            missing.is_empty(),
            "paths nats-server shows and natsd lacks: {missing:#?}"
        );
    })
    .await;
}
