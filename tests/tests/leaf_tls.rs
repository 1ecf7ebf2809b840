//! Leaf nodes over TLS: the hub's `leafnodes { tls }` (its certificate, and with `verify` the
//! leaf's checked against the CA) and the leaf's `remotes [ { url: "tls://…", tls {…} } ]`,
//! run for every pairing of natsd and nats-server 2.9.10. nats-server sends its INFO in the
//! clear, then both sides upgrade; a leaf without the hub's CA never links.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use bytes::Bytes;
use natsd_tests::cluster::{await_interest, monitor_get};
use natsd_tests::{free_port, next_msg, text, ServerKind, TestServer};
use rcgen::ExtendedKeyUsagePurpose;

#[path = "support/pki.rs"]
mod pki;
use pki::{issue, new_ca};

natsd_tests::leaf_pairs!(pub_sub_over_verified_tls, untrusted_hub_never_links);

/// PEM files: a CA, the hub's certificate for 127.0.0.1, the leaf's client certificate, and
/// a second CA that signed neither.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    hub_cert: PathBuf,
    hub_key: PathBuf,
    leaf_cert: PathBuf,
    leaf_key: PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::Builder::new()
        .prefix("natsd-leaf-tls-")
        .tempdir()
        .unwrap();
    let write = |name: &str, pem: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let (ca_cert, ca) = new_ca("natsd leaf test CA");
    let (other_cert, _) = new_ca("some other CA");
    let (hub_cert, hub_key) = issue(
        &ca,
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (leaf_cert, leaf_key) = issue(&ca, &["leaf"], ExtendedKeyUsagePurpose::ClientAuth);
    Pki {
        ca: write("ca.pem", &ca_cert.pem()),
        other_ca: write("other-ca.pem", &other_cert.pem()),
        hub_cert: write("hub.pem", &hub_cert),
        hub_key: write("hub-key.pem", &hub_key),
        leaf_cert: write("leaf.pem", &leaf_cert),
        leaf_key: write("leaf-key.pem", &leaf_key),
        _dir: dir,
    }
}

fn hub_conf(p: &Pki, port: u16, http: u16) -> String {
    format!(
        "server_name: hub\nhttp: \"127.0.0.1:{http}\"\nleafnodes {{\n  listen: \"127.0.0.1:{port}\"\n  tls {{\n    cert_file: \"{}\"\n    key_file: \"{}\"\n    ca_file: \"{}\"\n    verify: true\n    timeout: 2\n  }}\n}}\n",
        p.hub_cert.display(),
        p.hub_key.display(),
        p.ca.display()
    )
}

fn leaf_conf(p: &Pki, port: u16, ca: &std::path::Path) -> String {
    format!(
        "server_name: leaf\nleafnodes {{\n  reconnect: 1\n  remotes: [ {{\n    url: \"tls://127.0.0.1:{port}\"\n    tls {{\n      cert_file: \"{}\"\n      key_file: \"{}\"\n      ca_file: \"{}\"\n      timeout: 2\n    }}\n  }} ]\n}}\n",
        p.leaf_cert.display(),
        p.leaf_key.display(),
        ca.display()
    )
}

async fn pub_sub_over_verified_tls(hub: ServerKind, leaf: ServerKind) {
    let p = pki();
    let (port, http) = (free_port(), free_port());
    let h = TestServer::start(hub, &hub_conf(&p, port, http)).await;
    let l = TestServer::start(leaf, &leaf_conf(&p, port, &p.ca)).await;
    let (hc, lc) = (h.client().await, l.client().await);

    let mut down = lc.subscribe("down.>").await.unwrap();
    await_interest(&hc, "down.probe", &mut down).await;
    hc.publish("down.x", Bytes::from_static(b"sealed"))
        .await
        .unwrap();
    hc.flush().await.unwrap();
    let m = next_msg(&mut down).await;
    assert_eq!(
        (m.subject.as_str(), text(&m).as_str()),
        ("down.x", "sealed")
    );

    let mut up = hc.subscribe("up").await.unwrap();
    await_interest(&lc, "up", &mut up).await;
    lc.publish("up", Bytes::from_static(b"back")).await.unwrap();
    lc.flush().await.unwrap();
    assert_eq!(text(&next_msg(&mut up).await), "back");

    // The hub's INFO said so, and the link is the one TLS one.
    let z = monitor_get(http, "/leafz").await.unwrap();
    assert_eq!(z["leafnodes"].as_u64(), Some(1), "{z}");
}

async fn untrusted_hub_never_links(hub: ServerKind, leaf: ServerKind) {
    let p = pki();
    let (port, http) = (free_port(), free_port());
    let h = TestServer::start(hub, &hub_conf(&p, port, http)).await;
    // The leaf trusts another CA: its handshake fails, every time it tries.
    let _l = TestServer::start(leaf, &leaf_conf(&p, port, &p.other_ca)).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut attempts_seen = false;
    while tokio::time::Instant::now() < deadline {
        let z = monitor_get(http, "/leafz").await.unwrap();
        assert_eq!(z["leafnodes"].as_u64(), Some(0), "{z}");
        // The hub saw the leaf's failed handshakes (its log says so); the leaf keeps trying.
        attempts_seen |= h.log().contains("handshake error");
        if attempts_seen {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        attempts_seen,
        "the hub logged no failed handshake:\n{}",
        h.log()
    );
}
