//! The system account: `$SYS.REQ.…` services and `$SYS.…` events, over real connections.

mod common;

use std::time::Duration;

use common::{raw_client, read_until, start, test_options, wait_until};
use futures_util::StreamExt;
use natsd::{Options, Server};
use natsd_core::options::{AccountConfig, User};
use serde_json::Value;

fn user(name: &str, pass: &str) -> User {
    User {
        username: Some(name.to_owned()),
        password: Some(pass.to_owned()),
        ..User::default()
    }
}

async fn server() -> Server {
    start(Options {
        accounts: vec![
            AccountConfig {
                name: "SYS".to_owned(),
                users: vec![user("sys", "sysp")],
                ..AccountConfig::default()
            },
            AccountConfig {
                name: "A".to_owned(),
                users: vec![user("a", "ap")],
                ..AccountConfig::default()
            },
        ],
        system_account: Some("SYS".to_owned()),
        ..test_options()
    })
    .await
}

async fn connect(srv: &Server, u: &str, p: &str, name: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(u.into(), p.into())
        .name(name)
        .connect(srv.client_url().expect("started"))
        .await
        .expect("connects")
}

async fn request(c: &async_nats::Client, subject: String, body: &str) -> Value {
    let msg = tokio::time::timeout(
        Duration::from_secs(10),
        c.request(subject.clone(), body.to_owned().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("{subject}: timeout"))
    .unwrap_or_else(|e| panic!("{subject}: {e}"));
    serde_json::from_slice(&msg.payload).expect("JSON reply")
}

async fn next_json(s: &mut async_nats::Subscriber) -> Value {
    let m = tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("event in time")
        .expect("subscription open");
    serde_json::from_slice(&m.payload).expect("JSON event")
}

#[tokio::test]
async fn server_requests_answer_with_monitoring_documents() {
    let srv = server().await;
    let id = srv.id().to_owned();
    let sys = connect(&srv, "sys", "sysp", "sys").await;
    let a = connect(&srv, "a", "ap", "a-client").await;
    let _asub = a.subscribe("work.>").await.unwrap();
    a.publish("work.1", "x".into()).await.unwrap();
    a.flush().await.unwrap();
    let acc = srv.lookup_account("A").unwrap();
    wait_until("publish processed", || {
        acc.in_msgs.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;

    let ping = request(&sys, "$SYS.REQ.SERVER.PING".into(), "").await;
    assert_eq!(ping["server"]["id"], id);
    assert_eq!(ping["statsz"]["connections"], 2);
    assert_eq!(ping["statsz"]["active_accounts"], 2);

    let v = request(&sys, "$SYS.REQ.SERVER.PING.VARZ".into(), "").await;
    assert_eq!(v["data"]["server_id"], id);
    assert_eq!(v["data"]["system_account"], "SYS");
    let st = request(&sys, format!("$SYS.REQ.SERVER.{id}.STATSZ"), "").await;
    // The system client's own requests count too.
    assert!(st["statsz"]["received"]["msgs"].as_u64().unwrap() >= 1);

    let c = request(
        &sys,
        format!("$SYS.REQ.SERVER.{id}.CONNZ"),
        r#"{"subscriptions":true,"auth":true}"#,
    )
    .await;
    assert_eq!(c["data"]["num_connections"], 2);
    let conns = c["data"]["connections"].as_array().unwrap();
    let ac = conns.iter().find(|c| c["name"] == "a-client").unwrap();
    assert_eq!(ac["account"], "A");
    assert_eq!(ac["subscriptions_list"][0], "work.>");
    let bad = request(
        &sys,
        format!("$SYS.REQ.SERVER.{id}.CONNZ"),
        r#"{"sort":"nope"}"#,
    )
    .await;
    assert_eq!(bad["error"]["code"], 400);

    let s = request(
        &sys,
        "$SYS.REQ.SERVER.PING.SUBSZ".into(),
        r#"{"subscriptions":true,"account":"A"}"#,
    )
    .await;
    assert_eq!(s["data"]["subscriptions_list"][0]["subject"], "work.>");
    for x in [
        "ROUTEZ", "GATEWAYZ", "LEAFZ", "JSZ", "HEALTHZ", "IDZ", "ACCOUNTZ",
    ] {
        let r = request(&sys, format!("$SYS.REQ.SERVER.{id}.{x}"), "").await;
        assert_eq!(r["server"]["id"], id, "{x}");
        assert!(r["data"].is_object(), "{x}: {r}");
    }
    let h = request(&sys, "$SYS.REQ.SERVER.PING.HEALTHZ".into(), "").await;
    assert_eq!(h["data"]["status"], "ok");
    let acz = request(
        &sys,
        format!("$SYS.REQ.SERVER.{id}.ACCOUNTZ"),
        r#"{"account":"A"}"#,
    )
    .await;
    assert_eq!(acz["data"]["account_detail"]["client_connections"], 1);

    let ac = request(&sys, "$SYS.REQ.ACCOUNT.A.CONNZ".into(), "").await;
    assert_eq!(ac["data"]["num_connections"], 1);
    assert_eq!(ac["data"]["connections"][0]["name"], "a-client");
    let az = request(&sys, "$SYS.REQ.ACCOUNT.A.STATZ".into(), "").await;
    assert_eq!(az["data"]["account_statz"][0]["acc"], "A");
    assert_eq!(az["data"]["account_statz"][0]["received"]["msgs"], 1);
    let an = request(&sys, "$SYS.REQ.ACCOUNT.A.CONNS".into(), "").await;
    assert_eq!(an["type"], "io.nats.server.advisory.v1.account_connections");
    assert_eq!(an["conns"], 1);
    let ai = request(&sys, "$SYS.REQ.ACCOUNT.A.INFO".into(), "").await;
    assert_eq!(ai["data"]["account_name"], "A");
    let asz = request(
        &sys,
        "$SYS.REQ.ACCOUNT.A.SUBSZ".into(),
        r#"{"subscriptions":true}"#,
    )
    .await;
    assert_eq!(asz["data"]["total"], 1);

    // The services live in the system account only.
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        a.request("$SYS.REQ.SERVER.PING", "".into()),
    )
    .await
    .unwrap();
    assert!(err.is_err(), "a non-system account reached the services");
    srv.shutdown();
}

#[tokio::test]
async fn kick_and_ldm_by_client_id() {
    let srv = server().await;
    let id = srv.id().to_owned();
    let sys = connect(&srv, "sys", "sysp", "sys").await;
    let url = srv.client_url().unwrap();
    let mut victim = raw_client(
        &url,
        r#"{"verbose":false,"user":"a","pass":"ap","name":"v"}"#,
        "",
    )
    .await;
    let mut warned = raw_client(
        &url,
        r#"{"verbose":false,"user":"a","pass":"ap","name":"w"}"#,
        "",
    )
    .await;
    let cid = |name: &str| {
        srv.connz(&Default::default())
            .unwrap()
            .connections
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.cid)
            .unwrap()
    };
    let (v, w) = (cid("v"), cid("w"));
    let ldm = request(
        &sys,
        format!("$SYS.REQ.SERVER.{id}.LDM"),
        &format!(r#"{{"cid":{w}}}"#),
    )
    .await;
    assert!(ldm.get("error").is_none(), "{ldm}");
    read_until(&mut warned, r#""ldm":true"#).await;
    let kick = request(
        &sys,
        format!("$SYS.REQ.SERVER.{id}.KICK"),
        &format!(r#"{{"cid":{v}}}"#),
    )
    .await;
    assert!(kick.get("error").is_none(), "{kick}");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut victim, &mut rest),
    )
    .await
    .expect("kicked client closed");
    let missing = request(
        &sys,
        format!("$SYS.REQ.SERVER.{id}.KICK"),
        r#"{"cid":999999}"#,
    )
    .await;
    assert_eq!(missing["error"]["code"], 404);
    srv.shutdown();
}

#[tokio::test]
async fn events_for_connect_disconnect_auth_error_statsz_and_shutdown() {
    let srv = server().await;
    let id = srv.id().to_owned();
    let sys = connect(&srv, "sys", "sysp", "sys").await;
    let mut connects = sys.subscribe("$SYS.ACCOUNT.A.CONNECT").await.unwrap();
    let mut disconnects = sys.subscribe("$SYS.ACCOUNT.A.DISCONNECT").await.unwrap();
    let mut auth_errs = sys
        .subscribe(format!("$SYS.SERVER.{id}.CLIENT.AUTH.ERR"))
        .await
        .unwrap();
    let mut statsz = sys
        .subscribe(format!("$SYS.SERVER.{id}.STATSZ"))
        .await
        .unwrap();
    let mut shutdown = sys
        .subscribe(format!("$SYS.SERVER.{id}.SHUTDOWN"))
        .await
        .unwrap();
    // A round trip: the server has processed the subscriptions before anything else happens.
    request(&sys, "$SYS.REQ.SERVER.PING".into(), "").await;

    let a = connect(&srv, "a", "ap", "evented").await;
    a.publish("x", "hello".into()).await.unwrap();
    a.flush().await.unwrap();
    // async-nats' flush does not wait for the server; the account's counter does.
    let acc = srv.lookup_account("A").unwrap();
    wait_until("publish processed", || {
        acc.in_msgs.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;
    let ev = next_json(&mut connects).await;
    assert_eq!(ev["type"], "io.nats.server.advisory.v1.client_connect");
    assert_eq!(ev["server"]["id"], id);
    assert_eq!(ev["client"]["acc"], "A");
    assert_eq!(ev["client"]["user"], "a");
    assert_eq!(ev["client"]["name"], "evented");
    assert_eq!(ev["client"]["kind"], "Client");
    assert_eq!(ev["id"].as_str().unwrap().len(), 22);

    let cid = ev["client"]["id"].as_u64().unwrap();
    assert!(srv.disconnect_client(cid));
    let ev = next_json(&mut disconnects).await;
    assert_eq!(ev["type"], "io.nats.server.advisory.v1.client_disconnect");
    assert_eq!(ev["client"]["id"], cid);
    assert_eq!(ev["reason"], "Kicked");
    // Go: the client's view, "sent" is what it published.
    assert_eq!(ev["sent"]["msgs"], 1);
    assert_eq!(ev["sent"]["bytes"], 5);
    assert_eq!(ev["received"]["msgs"], 0);
    assert!(ev["client"]["stop"].is_string());
    drop(a);

    let url = srv.client_url().unwrap();
    let mut bad = tokio::net::TcpStream::connect(url.trim_start_matches("nats://"))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut bad,
        b"CONNECT {\"user\":\"a\",\"pass\":\"wrong\"}\r\nPING\r\n",
    )
    .await
    .unwrap();
    let ev = next_json(&mut auth_errs).await;
    assert_eq!(ev["reason"], "Authentication Failure");

    let ev = next_json(&mut statsz).await;
    assert_eq!(ev["server"]["id"], id);
    assert!(ev["statsz"]["connections"].as_u64().unwrap() >= 1);

    let seq_before = ev["server"]["seq"].as_u64().unwrap();
    srv.shutdown();
    let ev = next_json(&mut shutdown).await;
    assert_eq!(ev["id"], id);
    assert!(ev["seq"].as_u64().unwrap() > seq_before);
    wait_until("all gone", || srv.num_clients() == 0).await;
}
