//! TLS: server certificates from a test CA, and client-certificate verification.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use async_nats::ConnectOptions;
use natsd_tests::{both, flush, next_msg, text, ServerKind, TestServer};
use rcgen::ExtendedKeyUsagePurpose;

#[path = "support/pki.rs"]
mod pki;
use pki::{issue, new_ca};

both!(
    tls_pub_sub,
    tls_untrusted_ca_rejected,
    tls_plaintext_client_rejected,
    tls_verify_client_cert
);

/// PEM files for one test: a CA, a server cert for 127.0.0.1/localhost, a client cert.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A CA the server does not know, with a client cert it issued.
    rogue_client_cert: PathBuf,
    rogue_client_key: PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::Builder::new()
        .prefix("natsd-tls-")
        .tempdir()
        .unwrap();
    let write = |name: &str, pem: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let (ca_cert, ca) = new_ca("natsd test CA");
    let (server_cert, server_key) = issue(
        &ca,
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = issue(&ca, &["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let (_, rogue) = new_ca("rogue CA");
    let (rogue_cert, rogue_key) = issue(&rogue, &["client"], ExtendedKeyUsagePurpose::ClientAuth);
    Pki {
        ca: write("ca.pem", &ca_cert.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server-key.pem", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client-key.pem", &client_key),
        rogue_client_cert: write("rogue.pem", &rogue_cert),
        rogue_client_key: write("rogue-key.pem", &rogue_key),
        _dir: dir,
    }
}

fn tls_conf(p: &Pki, verify: bool) -> String {
    let mut conf = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n",
        p.server_cert.display(),
        p.server_key.display()
    );
    if verify {
        conf.push_str(&format!(
            "  ca_file: \"{}\"\n  verify: true\n",
            p.ca.display()
        ));
    }
    conf.push_str("  timeout: 2\n}\n");
    conf
}

fn trusting(p: &Pki) -> ConnectOptions {
    ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(p.ca.clone())
}

async fn tls_pub_sub(kind: ServerKind) {
    let p = pki();
    let s = TestServer::start(kind, &tls_conf(&p, false)).await;
    let info = s.raw().await.info;
    assert_eq!(info["tls_required"], serde_json::json!(true), "{info}");
    // Exactly nats-server's fields: nothing says TLS is merely available.
    let keys: std::collections::BTreeSet<&str> = info
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        std::collections::BTreeSet::from([
            "server_id",
            "server_name",
            "version",
            "proto",
            "go",
            "host",
            "port",
            "headers",
            "tls_required",
            "max_payload",
            "client_id",
            "client_ip"
        ]),
        "{info}"
    );

    let c = s.client_with(trusting(&p)).await;
    let mut sub = c.subscribe("secure").await.unwrap();
    flush(&c).await;
    let other = s.client_with(trusting(&p)).await;
    other.publish("secure", "over tls".into()).await.unwrap();
    flush(&other).await;
    assert_eq!(text(&next_msg(&mut sub).await), "over tls");

    let resp_sub = c.subscribe("tls.svc").await.unwrap();
    flush(&c).await;
    let c2 = c.clone();
    let responder = tokio::spawn(async move {
        use futures::StreamExt;
        let mut resp_sub = resp_sub;
        let m = resp_sub.next().await.expect("request");
        c2.publish(m.reply.clone().expect("reply"), "ack".into())
            .await
            .unwrap();
        c2.flush().await.unwrap();
    });
    let r = natsd_tests::within("tls request", other.request("tls.svc", "q".into()))
        .await
        .unwrap();
    assert_eq!(text(&r), "ack");
    natsd_tests::within("responder", responder).await.unwrap();
}

async fn tls_untrusted_ca_rejected(kind: ServerKind) {
    let p = pki();
    let s = TestServer::start(kind, &tls_conf(&p, false)).await;
    // Without our CA the client must refuse the server's certificate.
    let err = s.connect(ConnectOptions::new().require_tls(true)).await;
    assert!(
        err.is_err(),
        "a client without the CA must not trust the server"
    );
    // The server keeps serving trusted clients afterwards.
    let c = s.client_with(trusting(&p)).await;
    flush(&c).await;
}

async fn tls_plaintext_client_rejected(kind: ServerKind) {
    let p = pki();
    let s = TestServer::start(kind, &tls_conf(&p, false)).await;
    let mut raw = s.raw().await;
    // The server expects a TLS handshake after INFO; plaintext ends the connection
    // without the CONNECT ever being accepted.
    let _ = raw.send("CONNECT {\"verbose\":false}\r\nPING\r\n").await;
    let lines = raw.expect_closed().await;
    assert!(!lines.iter().any(|l| l == "PONG"), "{lines:?}");
}

async fn tls_verify_client_cert(kind: ServerKind) {
    let p = pki();
    let s = TestServer::start(kind, &tls_conf(&p, true)).await;
    let info = s.raw().await.info;
    assert_eq!(info["tls_required"], serde_json::json!(true), "{info}");
    assert_eq!(info["tls_verify"], serde_json::json!(true), "{info}");

    let with_cert =
        trusting(&p).add_client_certificate(p.client_cert.clone(), p.client_key.clone());
    let c = s.client_with(with_cert).await;
    let mut sub = c.subscribe("mtls").await.unwrap();
    c.publish("mtls", "verified".into()).await.unwrap();
    assert_eq!(text(&next_msg(&mut sub).await), "verified");

    // No client certificate: the handshake (or the first exchange) fails.
    assert!(
        s.connect(trusting(&p)).await.is_err(),
        "client without a certificate accepted"
    );
    // A certificate from a CA the server does not trust fails as well.
    let rogue = trusting(&p)
        .add_client_certificate(p.rogue_client_cert.clone(), p.rogue_client_key.clone());
    assert!(
        s.connect(rogue).await.is_err(),
        "client with an untrusted certificate accepted"
    );
}

both!(tls_verify_and_map);

/// `verify_and_map`: the client certificate's subject names the user, whose permissions apply.
async fn tls_verify_and_map(kind: ServerKind) {
    let p = pki();
    let conf = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify_and_map: true\n  timeout: 2\n}}\n\
         authorization {{\n  users: [ {{ user: \"CN=client\", permissions: {{ publish: \"mapped.>\", subscribe: \"mapped.>\" }} }} ]\n}}\n",
        p.server_cert.display(),
        p.server_key.display(),
        p.ca.display()
    );
    let s = TestServer::start(kind, &conf).await;
    let with_cert =
        trusting(&p).add_client_certificate(p.client_cert.clone(), p.client_key.clone());
    let c = s.client_with(with_cert).await;
    let mut sub = c.subscribe("mapped.in").await.unwrap();
    c.publish("mapped.in", "as CN=client".into()).await.unwrap();
    assert_eq!(text(&next_msg(&mut sub).await), "as CN=client");
    // The mapped user's permissions hold: a subscription outside them is refused.
    let mut errors = c.subscribe("elsewhere").await.unwrap();
    c.publish("elsewhere", "x".into()).await.unwrap();
    c.publish("mapped.in", "after".into()).await.unwrap();
    assert_eq!(text(&next_msg(&mut sub).await), "after");
    assert!(natsd_tests::drain_ready(&mut errors).is_empty());
    // Without a certificate nobody is mapped: the connection fails.
    assert!(s.connect(trusting(&p)).await.is_err());
}

/// `handshake_first` (not in nats-server 2.9.10, so natsd only): with a fallback delay, a client
/// that starts TLS at once gets TLS before INFO, and one that waits gets INFO in the clear. (The
/// harness needs a clear INFO to see the server is ready, so the pure `true` form is covered by
/// the same code path minus the wait.)
#[tokio::test]
async fn tls_handshake_first_natsd() {
    let p = pki();
    let conf = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  handshake_first: \"300ms\"\n  timeout: 2\n}}\n",
        p.server_cert.display(),
        p.server_key.display()
    );
    let s = TestServer::start(ServerKind::Natsd, &conf).await;
    // A client that waits gets INFO in the clear after the fallback delay...
    let raw = s.raw().await;
    assert_eq!(
        raw.info["tls_required"],
        serde_json::json!(true),
        "{}",
        raw.info
    );
    // ...a TLS-first client talks TLS from its first byte...
    let c = s.client_with(trusting(&p).tls_first()).await;
    let mut sub = c.subscribe("first").await.unwrap();
    c.publish("first", "tls first".into()).await.unwrap();
    assert_eq!(text(&next_msg(&mut sub).await), "tls first");
    // ...and an ordinary TLS client still works.
    let late = s.client_with(trusting(&p)).await;
    flush(&late).await;
}
