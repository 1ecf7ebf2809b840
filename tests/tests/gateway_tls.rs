//! Gateways over TLS, run for every pairing of natsd and nats-server 2.9.10: `gateway { tls }`
//! on both clusters (each side handshakes first, then the INFO; each verifies the other's
//! certificate against `ca_file`), with one- and two-server clusters (the second dial back
//! the clusters they learned of, with their gateway's TLS), and a `tls` block in a `gateways`
//! entry, which the dialer uses instead of the gateway's own.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::cluster::{await_interest, monitor_get};
use natsd_tests::gateway::{GatewayBlocks, SuperCluster};
use natsd_tests::{next_msg, text, ServerKind};
use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};

#[path = "support/pki.rs"]
#[allow(dead_code)] // `issue` (one usage) serves other files.
mod pki;
use pki::{issue_for, new_ca};

natsd_tests::gateway_pairs!(
    pub_sub_and_requests_over_verified_tls,
    two_node_clusters_dial_back_over_tls,
    remote_tls_block_is_used_to_dial
);

/// PEM files: a CA, a certificate for each cluster's servers (127.0.0.1, for accepting and
/// for dialing), and a second CA that signed neither.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    a_cert: PathBuf,
    a_key: PathBuf,
    b_cert: PathBuf,
    b_key: PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::Builder::new()
        .prefix("natsd-gateway-tls-")
        .tempdir()
        .unwrap();
    let write = |name: &str, pem: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let (ca_cert, ca) = new_ca("natsd gateway test CA");
    let (other_cert, _) = new_ca("some other CA");
    let names = ["localhost", "127.0.0.1"];
    let (a_cert, a_key) = issue_for(&ca, &names, &[ServerAuth, ClientAuth]);
    let (b_cert, b_key) = issue_for(&ca, &names, &[ServerAuth, ClientAuth]);
    Pki {
        ca: write("ca.pem", &ca_cert.pem()),
        other_ca: write("other-ca.pem", &other_cert.pem()),
        a_cert: write("a.pem", &a_cert),
        a_key: write("a-key.pem", &a_key),
        b_cert: write("b.pem", &b_cert),
        b_key: write("b-key.pem", &b_key),
        _dir: dir,
    }
}

fn tls_block(cert: &Path, key: &Path, ca: &Path) -> String {
    format!(
        "tls {{\n    cert_file: \"{}\"\n    key_file: \"{}\"\n    ca_file: \"{}\"\n    verify: true\n    timeout: 2\n  }}",
        cert.display(),
        key.display(),
        ca.display()
    )
}

async fn pub_sub_and_requests_over_verified_tls(a: ServerKind, b: ServerKind) {
    let p = pki();
    let a_tls = tls_block(&p.a_cert, &p.a_key, &p.ca);
    let b_tls = tls_block(&p.b_cert, &p.b_key, &p.ca);
    let blocks = GatewayBlocks {
        a: &a_tls,
        b: &b_tls,
        remote: "",
    };
    let sc = SuperCluster::start_blocks(a, 1, b, 1, "", None, blocks).await;
    let (ac, bc) = (sc.a_client(0).await, sc.b_client(0).await);

    // A → B over A's outbound connection.
    let mut on_b = bc.subscribe("sealed.>").await.unwrap();
    bc.flush().await.unwrap();
    await_interest(&ac, "sealed.probe", &mut on_b).await;
    ac.publish("sealed.ab", Bytes::from_static(b"to b"))
        .await
        .unwrap();
    ac.flush().await.unwrap();
    let m = next_msg(&mut on_b).await;
    assert_eq!(
        (m.subject.as_str(), text(&m).as_str()),
        ("sealed.ab", "to b")
    );

    // B → A over the connection B dialed back, with its own gateway TLS.
    let mut on_a = ac.subscribe("back").await.unwrap();
    ac.flush().await.unwrap();
    await_interest(&bc, "back", &mut on_a).await;
    bc.publish("back", Bytes::from_static(b"to a"))
        .await
        .unwrap();
    bc.flush().await.unwrap();
    assert_eq!(text(&next_msg(&mut on_a).await), "to a");

    // A request from A answered in B: the reply crosses back.
    let mut svc = bc.subscribe("svc").await.unwrap();
    bc.flush().await.unwrap();
    let responder = bc.clone();
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, Bytes::from_static(b"pong")).await;
                let _ = responder.flush().await;
            }
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            ac.request("svc", Bytes::from_static(b"ping")),
        )
        .await;
        match r {
            Ok(Ok(m)) => break m,
            _ if tokio::time::Instant::now() >= deadline => panic!("no answer across the gateway"),
            _ => {}
        }
    };
    assert_eq!(text(&answer), "pong");

    // Both sides show the connection to the other cluster.
    let z = monitor_get(sc.a[0].http_port, "/gatewayz").await.unwrap();
    assert!(z["outbound_gateways"]["B"].is_object(), "{z}");
    let z = monitor_get(sc.b[0].http_port, "/gatewayz").await.unwrap();
    assert!(z["outbound_gateways"]["A"].is_object(), "{z}");
}

/// Polls `/gatewayz` on `http_port` until it shows an outbound connection to `to`.
async fn await_outbound(http_port: u16, to: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let z = monitor_get(http_port, "/gatewayz").await.unwrap();
        if z["outbound_gateways"][to].is_object() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no outbound gateway to {to}: {z}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn two_node_clusters_dial_back_over_tls(a: ServerKind, b: ServerKind) {
    // Only A names B: B's servers learn of A from inbound connections and from their routes,
    // and dial it back with their gateway's TLS; every server ends up with its own link.
    let p = pki();
    let a_tls = tls_block(&p.a_cert, &p.a_key, &p.ca);
    let b_tls = tls_block(&p.b_cert, &p.b_key, &p.ca);
    let blocks = GatewayBlocks {
        a: &a_tls,
        b: &b_tls,
        remote: "",
    };
    let sc = SuperCluster::start_blocks(a, 2, b, 2, "", None, blocks).await;
    for n in &sc.a {
        await_outbound(n.http_port, "B").await;
    }
    for n in &sc.b {
        await_outbound(n.http_port, "A").await;
    }
    let (a0, a1) = (sc.a_client(0).await, sc.a_client(1).await);
    let (b0, b1) = (sc.b_client(0).await, sc.b_client(1).await);
    for (from, to, name) in [
        (&a0, &b1, "a0b1"),
        (&a1, &b0, "a1b0"),
        (&b0, &a1, "b0a1"),
        (&b1, &a0, "b1a0"),
    ] {
        let subject = format!("tls.{name}");
        let mut sub = to.subscribe(subject.clone()).await.unwrap();
        to.flush().await.unwrap();
        await_interest(from, &subject, &mut sub).await;
        from.publish(subject.clone(), Bytes::from(name.to_owned()))
            .await
            .unwrap();
        from.flush().await.unwrap();
        assert_eq!(text(&next_msg(&mut sub).await), name);
    }
}

async fn remote_tls_block_is_used_to_dial(a: ServerKind, b: ServerKind) {
    // A's own gateway TLS is sound, but its entry for B trusts another CA: A's dialer uses
    // the entry's block, rejects B's certificate, and the clusters never link (B learns of
    // A only from an inbound connection, so it never dials either).
    let p = pki();
    let a_tls = tls_block(&p.a_cert, &p.a_key, &p.ca);
    let b_tls = tls_block(&p.b_cert, &p.b_key, &p.ca);
    let remote = tls_block(&p.a_cert, &p.a_key, &p.other_ca);
    let blocks = GatewayBlocks {
        a: &a_tls,
        b: &b_tls,
        remote: &remote,
    };
    let sc = SuperCluster::start_blocks(a, 1, b, 1, "", None, blocks).await;
    let b_server = &sc.b[0];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let z = monitor_get(b_server.http_port, "/gatewayz").await.unwrap();
        let inbound = z["inbound_gateways"]
            .as_object()
            .map_or(0, serde_json::Map::len);
        assert_eq!(inbound, 0, "B accepted A despite the untrusted CA: {z}");
        // B saw A's failed handshakes (its log says so); A keeps trying.
        if b_server.server.log().contains("handshake error") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B logged no failed handshake:\n{}",
            b_server.server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
