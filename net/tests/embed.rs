//! The embedding API: several servers in one process, typed monitoring calls, kicking a
//! client, reload and lame duck mode.

mod common;

use std::time::Duration;

use common::{raw_client, read_until, start, test_options, wait_until};
use natsd::monitor::{ConnState, ConnzOptions};
use natsd::Options;
use natsd_core::options::{AccountConfig, Authorization, ImportConfig, User};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn user(name: &str, pass: &str) -> User {
    User {
        username: Some(name.to_owned()),
        password: Some(pass.to_owned()),
        ..User::default()
    }
}

fn with_users(users: Vec<User>) -> Options {
    Options {
        authorization: Authorization {
            users,
            ..Authorization::default()
        },
        ..test_options()
    }
}

/// Reads until the peer closes; returns what was read.
async fn read_to_close(s: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("closed in time")
        .ok();
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn servers_side_by_side_are_isolated() {
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(start(test_options()).await);
    }
    let ids: std::collections::BTreeSet<String> =
        servers.iter().map(|s| s.varz().server_id).collect();
    assert_eq!(ids.len(), 3);
    let mut subs = Vec::new();
    for s in &servers {
        let c = async_nats::connect(s.client_url().unwrap()).await.unwrap();
        subs.push((c.subscribe("x").await.unwrap(), c));
    }
    for (_, c) in &subs {
        c.flush().await.unwrap();
    }
    subs[0].1.publish("x", "only-0".into()).await.unwrap();
    subs[0].1.flush().await.unwrap();
    use futures_util::StreamExt;
    let got = tokio::time::timeout(Duration::from_secs(5), subs[0].0.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got.payload[..], b"only-0");
    assert_eq!(servers[0].varz().in_msgs, 1);
    assert_eq!(servers[1].varz().in_msgs, 0);
    assert_eq!(servers[2].varz().out_msgs, 0);
    for s in &servers {
        assert_eq!(s.varz().connections, 1);
        assert_eq!(s.healthz().status, "ok");
        assert!(s.jsz().disabled);
        assert!(s.raftz().is_empty());
        assert_eq!(s.routez().num_routes, 0);
        assert!(s.leafz().leafs.is_none());
        assert!(s.gatewayz().outbound_gateways.is_empty());
        s.shutdown();
        s.shutdown(); // idempotent
        s.wait_for_shutdown().await;
        assert!(!s.running());
    }
}

#[tokio::test]
async fn disconnect_client_really_closes_it() {
    let srv = start(test_options()).await;
    let url = srv.client_url().unwrap();
    let mut c = raw_client(&url, r#"{"verbose":false,"name":"victim"}"#, "").await;
    let z = srv.connz(&ConnzOptions::default()).unwrap();
    assert_eq!(z.connections.len(), 1);
    let cid = z.connections[0].cid;
    assert!(srv.disconnect_client(cid));
    read_to_close(&mut c).await;
    wait_until("unregistered", || srv.num_clients() == 0).await;
    let closed = srv
        .connz(&ConnzOptions {
            state: ConnState::Closed,
            ..ConnzOptions::default()
        })
        .unwrap();
    assert_eq!(closed.connections[0].cid, cid);
    assert_eq!(closed.connections[0].reason, "Kicked");
    assert!(!srv.disconnect_client(cid));
    srv.shutdown();
}

#[tokio::test]
async fn reload_applies_users_and_limits_and_rejects_bad_config() {
    let srv = start(with_users(vec![user("alice", "one"), user("bob", "b")])).await;
    let url = srv.client_url().unwrap();
    let mut alice = raw_client(&url, r#"{"verbose":false,"user":"alice","pass":"one"}"#, "").await;
    let mut bob = raw_client(&url, r#"{"verbose":false,"user":"bob","pass":"b"}"#, "").await;

    // A bad config is refused and the old one keeps running.
    let bad = Options {
        accounts: vec![AccountConfig {
            name: "A".to_owned(),
            imports: vec![ImportConfig {
                kind: natsd_core::options::ExportKind::Stream,
                account: "NOPE".to_owned(),
                subject: "x".to_owned(),
                to: None,
                prefix: None,
            }],
            ..AccountConfig::default()
        }],
        ..with_users(vec![user("alice", "two")])
    };
    let err = srv.reload_options(bad).unwrap_err().to_string();
    assert!(err.contains("NOPE"), "{err}");
    let port_change = Options {
        port: Some(1),
        ..test_options()
    };
    let err = srv.reload_options(port_change).unwrap_err().to_string();
    assert!(err.contains("not supported for port"), "{err}");
    assert_eq!(srv.options().authorization.users.len(), 2);

    // Alice's password changes: her connection goes, Bob's stays; limits apply to new INFO.
    let new = Options {
        max_payload: 4096,
        ..with_users(vec![user("alice", "two"), user("bob", "b")])
    };
    srv.reload_options(new).unwrap();
    read_to_close(&mut alice).await;
    bob.write_all(b"PING\r\n").await.unwrap();
    read_until(&mut bob, "PONG").await;
    let mut fresh = tokio::net::TcpStream::connect(url.trim_start_matches("nats://"))
        .await
        .unwrap();
    let info = read_until(&mut fresh, "\r\n").await;
    assert!(info.contains(r#""max_payload":4096"#), "{info}");
    let _alice2 = raw_client(&url, r#"{"verbose":false,"user":"alice","pass":"two"}"#, "").await;
    assert_eq!(srv.varz().max_payload, 4096);
    srv.shutdown();
}

#[tokio::test]
async fn reload_from_file_keeps_old_config_on_error() {
    let dir = std::env::temp_dir().join(format!("natsd-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.conf");
    std::fs::write(&path, "listen: 127.0.0.1:-1\nmax_payload: 2048\n").unwrap();
    let mut opts = natsd::config::load(&path).unwrap().options;
    opts.port = None;
    let srv = start(opts).await;
    assert_eq!(srv.options().max_payload, 2048);
    std::fs::write(&path, "listen: 127.0.0.1:-1\nmax_payload: 8192\n").unwrap();
    srv.reload().unwrap();
    assert_eq!(srv.options().max_payload, 8192);
    std::fs::write(&path, "listen: 127.0.0.1:-1\nmax_payload: {{{\n").unwrap();
    let err = srv.reload().unwrap_err().to_string();
    assert!(err.contains("a.conf"), "error names the file: {err}");
    assert_eq!(srv.options().max_payload, 8192);
    srv.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn lame_duck_announces_then_closes_and_shuts_down() {
    let srv = std::sync::Arc::new(
        start(Options {
            lame_duck_grace_period: Duration::ZERO,
            lame_duck_duration: Duration::from_millis(200),
            ..test_options()
        })
        .await,
    );
    let url = srv.client_url().unwrap();
    // Go: asynchronous INFO (here `ldm`) only goes to clients that speak protocol 1.
    let mut c = raw_client(&url, r#"{"verbose":false,"protocol":1}"#, "").await;
    let ldm = tokio::spawn({
        let srv = std::sync::Arc::clone(&srv);
        async move { srv.lame_duck().await }
    });
    let rest = read_to_close(&mut c).await;
    assert!(rest.contains(r#""ldm":true"#), "{rest}");
    tokio::time::timeout(Duration::from_secs(10), ldm)
        .await
        .unwrap()
        .unwrap();
    assert!(srv.is_lame_duck());
    assert!(!srv.running());
    assert!(
        tokio::net::TcpStream::connect(url.trim_start_matches("nats://"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn accounts_can_be_registered() {
    let srv = start(test_options()).await;
    let acc = srv.register_account("EXTRA").unwrap();
    assert_eq!(acc.name, "EXTRA");
    assert!(srv.register_account("EXTRA").is_err());
    assert!(srv.lookup_account("EXTRA").is_some());
    srv.set_system_account("EXTRA").unwrap();
    assert_eq!(srv.varz().system_account, "EXTRA");
    assert!(srv.set_system_account("MISSING").is_err());
    let z = srv
        .accountz(&natsd::monitor::AccountzOptions::default())
        .unwrap();
    assert!(z.accounts.contains(&"EXTRA".to_owned()));
    srv.shutdown();
}
