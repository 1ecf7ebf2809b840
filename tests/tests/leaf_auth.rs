//! Leaf nodes authenticated by the hub's own `authorization` (and accounts' users) when
//! `leafnodes { authorization }` is left out, as nats-server 2.9.10 does it: a leaf naming a
//! user must be that user (and the user allowed `LEAFNODE` connections), lands in the user's
//! account and carries the user's permissions onto the link, swapped (what the leaf may
//! publish is what the hub asks it for, what it may subscribe to is what the hub sends it).
//! The hub tells the leaf those permissions (INFO `import`/`export`) and the leaf keeps to
//! them. A leaf that names no user, or a hub with only a token or a single user, is let in.
//! Each scenario runs for every pairing of natsd and nats-server 2.9.10.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use natsd_tests::cluster::{await_interest, monitor_get};
use natsd_tests::{drain_ready, free_port, next_msg, text, within, ServerKind, TestServer};

natsd_tests::leaf_pairs!(
    a_main_user_binds_the_leaf_to_its_account,
    wrong_password_and_barred_connection_type_are_refused,
    a_users_permissions_apply_to_its_leaf_link_swapped,
    a_token_hub_lets_a_leaf_in_unchecked,
    a_leaf_without_credentials_becomes_the_no_auth_user
);

fn leaf_conf(url: &str) -> String {
    format!("server_name: leaf\nleafnodes {{ reconnect: 1, remotes: [ {{ url: \"{url}\" }} ] }}\n")
}

fn as_user(user: &str, pass: &str) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::with_user_and_password(user.into(), pass.into())
}

/// Messages cross both ways between `hc` on the hub and `lc` on the leaf.
async fn messages_cross(hc: &async_nats::Client, lc: &async_nats::Client) {
    let mut down = lc.subscribe("down.x").await.unwrap();
    await_interest(hc, "down.x", &mut down).await;
    hc.publish("down.x", Bytes::from_static(b"to leaf"))
        .await
        .unwrap();
    hc.flush().await.unwrap();
    assert_eq!(text(&next_msg(&mut down).await), "to leaf");
    let mut up = hc.subscribe("up.x").await.unwrap();
    await_interest(lc, "up.x", &mut up).await;
    lc.publish("up.x", Bytes::from_static(b"to hub"))
        .await
        .unwrap();
    lc.flush().await.unwrap();
    assert_eq!(text(&next_msg(&mut up).await), "to hub");
}

async fn a_main_user_binds_the_leaf_to_its_account(hub: ServerKind, leaf: ServerKind) {
    let port = free_port();
    let h = TestServer::start(
        hub,
        &format!(
            "server_name: hub\naccounts {{ A: {{ users: [ {{ user: lf, password: lpw }}, {{ user: app, password: apw }} ] }} }}\nleafnodes {{ listen: \"127.0.0.1:{port}\" }}\n"
        ),
    )
    .await;
    let l = TestServer::start(leaf, &leaf_conf(&format!("nats://lf:lpw@127.0.0.1:{port}"))).await;
    let hc = h.client_with(as_user("app", "apw")).await;
    let lc = l.client().await;
    messages_cross(&hc, &lc).await;
}

async fn wrong_password_and_barred_connection_type_are_refused(hub: ServerKind, leaf: ServerKind) {
    let (port, http) = (free_port(), free_port());
    let h = TestServer::start_with_args(
        hub,
        &format!(
            "server_name: hub\nauthorization {{ users: [ {{ user: lf, password: lpw, allowed_connection_types: [\"LEAFNODE\"] }}, {{ user: app, password: apw, allowed_connection_types: [\"STANDARD\"] }} ] }}\nleafnodes {{ listen: \"127.0.0.1:{port}\" }}\n"
        ),
        &["-m", &http.to_string()],
    )
    .await;
    let bad_pass = TestServer::start(
        leaf,
        &leaf_conf(&format!("nats://lf:nope@127.0.0.1:{port}")),
    )
    .await;
    let barred = TestServer::start(
        leaf,
        &leaf_conf(&format!("nats://app:apw@127.0.0.1:{port}")),
    )
    .await;
    let good =
        TestServer::start(leaf, &leaf_conf(&format!("nats://lf:lpw@127.0.0.1:{port}"))).await;
    let hc = h.client_with(as_user("app", "apw")).await;
    messages_cross(&hc, &good.client().await).await;
    // Both refused leaves were told so, and only the good one is linked.
    for l in [&bad_pass, &barred] {
        within("the refused leaf to log the refusal", async {
            while !l.log().contains("Authorization Violation") {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await;
    }
    let z = monitor_get(http, "/leafz").await.unwrap();
    assert_eq!(z["leafnodes"], 1, "{z}");
}

async fn a_users_permissions_apply_to_its_leaf_link_swapped(hub: ServerKind, leaf: ServerKind) {
    let port = free_port();
    let h = TestServer::start(
        hub,
        &format!(
            "server_name: hub\nauthorization {{ users: [ {{ user: lf, password: lpw, permissions: {{ publish: \"up.>\", subscribe: [\"down.>\"] }} }}, {{ user: app, password: apw }} ] }}\nleafnodes {{ listen: \"127.0.0.1:{port}\" }}\n"
        ),
    )
    .await;
    let l = TestServer::start(leaf, &leaf_conf(&format!("nats://lf:lpw@127.0.0.1:{port}"))).await;
    let hc = h.client_with(as_user("app", "apw")).await;
    let lc = l.client().await;
    // Within the permissions: what the leaf may subscribe to flows down, what it may
    // publish flows up.
    messages_cross(&hc, &lc).await;

    // The hub never asks the leaf for a subject the leaf may not publish to: its
    // subscription on `secret` stays dry while `up.end`, asked for after it, arrives.
    let mut secret = hc.subscribe("secret").await.unwrap();
    let mut end = hc.subscribe("up.end").await.unwrap();
    await_interest(&lc, "up.end", &mut end).await;
    lc.publish("secret", Bytes::from_static(b"leak"))
        .await
        .unwrap();
    lc.publish("up.end", Bytes::from_static(b"end"))
        .await
        .unwrap();
    lc.flush().await.unwrap();
    assert_eq!(text(&next_msg(&mut end).await), "end");
    assert!(
        drain_ready(&mut secret).is_empty(),
        "a denied subject crossed"
    );

    // The hub tells the leaf its user's permissions and the leaf keeps to them: it never
    // asks for a subject it may not subscribe to (a hub would cut it off for that).
    let mut nope = lc.subscribe("nope").await.unwrap();
    let mut end = lc.subscribe("down.end").await.unwrap();
    await_interest(&hc, "down.end", &mut end).await;
    hc.publish("nope", Bytes::from_static(b"leak"))
        .await
        .unwrap();
    hc.publish("down.end", Bytes::from_static(b"end"))
        .await
        .unwrap();
    hc.flush().await.unwrap();
    assert_eq!(text(&next_msg(&mut end).await), "end");
    assert!(
        drain_ready(&mut nope).is_empty(),
        "a denied subject crossed"
    );
    assert!(
        !h.log().contains("Violation"),
        "the leaf broke its permissions:\n{}",
        h.log()
    );
}

async fn a_token_hub_lets_a_leaf_in_unchecked(hub: ServerKind, leaf: ServerKind) {
    let port = free_port();
    let h = TestServer::start(
        hub,
        &format!(
            "server_name: hub\nauthorization {{ token: s3cret }}\nleafnodes {{ listen: \"127.0.0.1:{port}\" }}\n"
        ),
    )
    .await;
    let l = TestServer::start(leaf, &leaf_conf(&format!("nats://127.0.0.1:{port}"))).await;
    let hc = h
        .client_with(async_nats::ConnectOptions::with_token("s3cret".into()))
        .await;
    messages_cross(&hc, &l.client().await).await;
}

async fn a_leaf_without_credentials_becomes_the_no_auth_user(hub: ServerKind, leaf: ServerKind) {
    let port = free_port();
    let h = TestServer::start(
        hub,
        &format!(
            "server_name: hub\naccounts {{ A: {{ users: [ {{ user: lf, password: lpw, permissions: {{ subscribe: [\"down.>\"], publish: \"up.>\" }} }}, {{ user: app, password: apw }} ] }} }}\nno_auth_user: lf\nleafnodes {{ listen: \"127.0.0.1:{port}\" }}\n"
        ),
    )
    .await;
    let l = TestServer::start(leaf, &leaf_conf(&format!("nats://127.0.0.1:{port}"))).await;
    let hc = h.client_with(as_user("app", "apw")).await;
    messages_cross(&hc, &l.client().await).await;
}
