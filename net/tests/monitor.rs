//! HTTP monitoring endpoints against real client traffic.

mod common;

use std::time::Duration;

use common::{get_json, http_get, raw_client, start, test_options, wait_until};
use natsd::Options;
use natsd_core::options::{Authorization, User};

#[tokio::test]
async fn endpoints_report_real_traffic() {
    let srv = start(test_options()).await;
    let mon = srv.monitor_addr().expect("monitoring listener");
    let url = srv.client_url().unwrap();
    let client = async_nats::ConnectOptions::new()
        .name("watched")
        .connect(&url)
        .await
        .unwrap();
    let _s1 = client.subscribe("foo").await.unwrap();
    let _s2 = client.queue_subscribe("bar", "q".into()).await.unwrap();
    client.publish("foo", "hello".into()).await.unwrap();
    client.flush().await.unwrap();
    wait_until("delivery counted", || srv.varz().out_msgs >= 1).await;

    let v = get_json(mon, "/varz").await;
    assert_eq!(v["server_id"], srv.id());
    assert_eq!(v["connections"], 1);
    assert_eq!(v["in_msgs"], 1);
    assert_eq!(v["in_bytes"], 5);
    assert_eq!(v["out_msgs"], 1);
    // Two of the client's, and the system account's four service subscriptions (nats-server
    // counts its internal subscriptions too).
    assert_eq!(v["subscriptions"], 6);
    assert_eq!(v["system_account"], "$SYS");
    assert_eq!(v["http_port"], mon.port());
    assert!(v["mem"].as_u64().unwrap() > 0);

    let c = get_json(mon, "/connz?subs=detail").await;
    assert_eq!(c["num_connections"], 1);
    let conn = &c["connections"][0];
    assert_eq!(conn["name"], "watched");
    assert_eq!(conn["lang"], "rust");
    assert_eq!(conn["subscriptions"], 2);
    let detail = conn["subscriptions_list_detail"].as_array().unwrap();
    assert_eq!(detail.len(), 2);
    assert!(detail
        .iter()
        .any(|d| d["subject"] == "foo" && d["msgs"] == 1));
    assert!(detail
        .iter()
        .any(|d| d["subject"] == "bar" && d["qgroup"] == "q"));
    let c = get_json(mon, "/connz?subs=1").await;
    let list = c["connections"][0]["subscriptions_list"]
        .as_array()
        .unwrap();
    assert_eq!(list.len(), 2);

    let s = get_json(mon, "/subsz?acc=%24G").await;
    assert_eq!(s["num_subscriptions"], 2);
    assert!(s.get("subscriptions_list").is_none());
    let s = get_json(mon, "/subscriptionsz?subs=1&test=foo").await;
    assert_eq!(s["total"], 1);
    assert_eq!(s["subscriptions_list"][0]["subject"], "foo");
    assert_eq!(s["subscriptions_list"][0]["account"], "$G");

    let a = get_json(mon, "/accountz").await;
    let names: Vec<&str> = a["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names, ["$G", "$SYS"]);
    let a = get_json(mon, "/accountz?acc=%24G").await;
    assert_eq!(a["account_detail"]["client_connections"], 1);
    assert_eq!(a["account_detail"]["subscriptions"], 2);

    let st = get_json(mon, "/accstatz").await;
    assert_eq!(st["account_statz"][0]["acc"], "$G");
    assert_eq!(st["account_statz"][0]["received"]["msgs"], 1);
    assert_eq!(st["account_statz"][0]["sent"]["bytes"], 5);
    let st = get_json(mon, "/accstatz?unused=1").await;
    assert_eq!(st["account_statz"].as_array().unwrap().len(), 2);

    assert_eq!(
        get_json(mon, "/healthz").await,
        serde_json::json!({"status": "ok"})
    );
    assert_eq!(get_json(mon, "/jsz").await["disabled"], true);
    assert_eq!(get_json(mon, "/routez").await["num_routes"], 0);
    assert!(get_json(mon, "/gatewayz").await["outbound_gateways"].is_object());
    assert!(get_json(mon, "/leafz").await["leafs"].is_null());
    assert_eq!(get_json(mon, "/raftz").await, serde_json::json!({}));
    assert_eq!(get_json(mon, "/ipqueuesz").await, serde_json::json!({}));

    let (status, body) = http_get(mon, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("natsd_in_msgs_total 1"), "{body}");
    assert!(body.contains("natsd_connections 1"), "{body}");
    assert!(
        body.contains(r#"natsd_account_out_msgs_total{account="$G"} 1"#),
        "{body}"
    );

    let (status, body) = http_get(mon, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("./varz"));
    assert_eq!(http_get(mon, "/nope").await.0, 404);
    let v = get_json(mon, "/varz").await;
    assert_eq!(v["http_req_stats"]["/connz"], 2);
    srv.shutdown();
}

#[tokio::test]
async fn connz_query_options() {
    let srv = start(test_options()).await;
    let mon = srv.monitor_addr().unwrap();
    let url = srv.client_url().unwrap();
    let mut clients = Vec::new();
    let mut subs = Vec::new();
    for i in 0..3 {
        let c = async_nats::connect(&url).await.unwrap();
        for j in 0..=i {
            subs.push(c.subscribe(format!("s.{j}")).await.unwrap());
        }
        c.flush().await.unwrap();
        clients.push(c);
    }
    // Six of the clients' plus the four system services.
    wait_until("six subscriptions", || srv.varz().subscriptions == 10).await;

    let c = get_json(mon, "/connz?sort=subs&limit=2").await;
    assert_eq!(c["total"], 3);
    assert_eq!(c["num_connections"], 2);
    assert_eq!(c["limit"], 2);
    assert_eq!(c["connections"][0]["subscriptions"], 3);
    let c = get_json(mon, "/connz?offset=2").await;
    assert_eq!(c["num_connections"], 1);
    // Overflow-safe paging: offsets and limits near the integer limits give empty pages.
    let c = get_json(
        mon,
        "/connz?offset=9223372036854775807&limit=9223372036854775807",
    )
    .await;
    assert_eq!(c["num_connections"], 0);
    assert_eq!(c["total"], 3);
    let c = get_json(mon, "/connz?offset=-5&limit=-1").await;
    assert_eq!(c["num_connections"], 3);
    let (status, body) = http_get(mon, "/connz?limit=99999999999999999999").await;
    assert_eq!(status, 400);
    assert!(body.contains("Error decoding int for 'limit'"), "{body}");
    let (status, body) = http_get(mon, "/connz?sort=foo").await;
    assert_eq!(
        (status, body.as_str()),
        (400, "invalid sorting option: foo")
    );
    let (status, _) = http_get(mon, "/connz?sort=stop").await;
    assert_eq!(status, 400);
    let first = c["connections"][0]["cid"].as_u64().unwrap();
    let c = get_json(mon, &format!("/connz?cid={first}")).await;
    assert_eq!(c["num_connections"], 1);
    assert_eq!(c["connections"][0]["cid"], first);
    srv.shutdown();
}

#[tokio::test]
async fn closed_connections_ring_is_bounded() {
    let srv = start(Options {
        max_closed_clients: 2,
        ..test_options()
    })
    .await;
    let mon = srv.monitor_addr().unwrap();
    let url = srv.client_url().unwrap();
    for i in 0..4 {
        let c = raw_client(
            &url,
            &format!(r#"{{"verbose":false,"name":"gone-{i}"}}"#),
            &format!("SUB sub.{i} 1\r\n"),
        )
        .await;
        drop(c);
        let name = format!("gone-{i}");
        wait_until("closed recorded", || {
            srv.closed_clients()
                .iter()
                .any(|c| c.entry.name.as_deref() == Some(name.as_str()))
        })
        .await;
    }
    wait_until("4 gone", || srv.varz().total_connections == 4).await;
    let c = get_json(mon, "/connz?state=closed&subs=1").await;
    assert_eq!(c["total"], 2);
    let names: Vec<&str> = c["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gone-2", "gone-3"]);
    let first = &c["connections"][0];
    assert!(first["stop"].is_string());
    assert!(!first["reason"].as_str().unwrap().is_empty());
    assert_eq!(first["subscriptions_list"][0], "sub.2");
    let c = get_json(mon, "/connz?state=closed&sort=stop").await;
    assert_eq!(c["connections"][0]["name"], "gone-3");
    assert_eq!(get_json(mon, "/connz?state=any").await["total"], 2);
    srv.shutdown();
}

#[tokio::test]
async fn secrets_never_appear() {
    let srv = start(Options {
        authorization: Authorization {
            users: vec![User {
                username: Some("alice".to_owned()),
                password: Some("s3cr3t-pw".to_owned()),
                ..User::default()
            }],
            ..Authorization::default()
        },
        ..test_options()
    })
    .await;
    let mon = srv.monitor_addr().unwrap();
    let url = srv.client_url().unwrap();
    let c = async_nats::ConnectOptions::with_user_and_password("alice".into(), "s3cr3t-pw".into())
        .connect(&url)
        .await
        .unwrap();
    c.flush().await.unwrap();
    let auth = get_json(mon, "/connz?auth=1").await;
    assert_eq!(auth["connections"][0]["authorized_user"], "alice");
    assert_eq!(auth["connections"][0]["account"], "$G");
    for path in [
        "/varz",
        "/connz?auth=1&subs=detail",
        "/accountz?acc=%24G",
        "/subsz?subs=1",
        "/metrics",
    ] {
        let (_, body) = http_get(mon, path).await;
        assert!(
            !body.contains("s3cr3t"),
            "{path} leaks the password: {body}"
        );
    }
    drop(c);
    wait_until("closed", || srv.num_clients() == 0).await;
    let (_, body) = http_get(mon, "/connz?state=closed&auth=1").await;
    assert!(body.contains("alice") && !body.contains("s3cr3t"));
    srv.shutdown();
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn connz_rtt_is_measured_by_server_pings() {
    let srv = start(Options {
        ping_interval: Duration::from_millis(200),
        ..test_options()
    })
    .await;
    let mon = srv.monitor_addr().unwrap();
    // async-nats answers server PINGs, which is what times the round trip.
    let nc = async_nats::connect(srv.client_url().unwrap())
        .await
        .unwrap();
    wait_until("rtt measured", || {
        srv.connz(&Default::default())
            .is_ok_and(|z| z.connections.iter().any(|c| c.rtt != "0s"))
    })
    .await;
    let c = get_json(mon, "/connz").await;
    let rtt = c["connections"][0]["rtt"].as_str().unwrap().to_owned();
    assert!(rtt.ends_with('s') && rtt != "0s", "{rtt}");
    drop(nc);
    srv.shutdown();
}
