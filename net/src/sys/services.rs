//! Answers `$SYS.REQ.SERVER.…` and `$SYS.REQ.ACCOUNT.…` requests (Go: server/events.go).
//!
//! Replies carry the same documents as the HTTP endpoints, wrapped as nats-server wraps them:
//! `{"server": {...}, "data": {...}}` (or `"error"`), and `{"server", "statsz"}` for STATSZ.

use std::sync::Arc;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::events::{event_server, statsz_msg, EventServer};
use super::{publish, Request};
use crate::monitor::types::{AccountStatz, DataStats};
use crate::monitor::{
    AccountStatzOptions, AccountzOptions, ConnState, ConnzOptions, SortOpt, SubszOptions,
};
use crate::server::Shared;
use natsd_core::conn::CloseReason;

/// Go: server/events.go ServerAPIResponse.
#[derive(Debug, Serialize)]
struct ApiResponse<T: Serialize> {
    server: EventServer,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ApiError>,
}

#[derive(Debug, Serialize)]
struct ApiError {
    code: u16,
    description: String,
}

/// Go's ConnzOptions as JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConnzReq {
    sort: String,
    auth: bool,
    subscriptions: bool,
    subscriptions_detail: bool,
    offset: i64,
    limit: i64,
    cid: u64,
    state: i64,
    user: String,
    acc: String,
}

/// Go's SubszOptions as JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SubszReq {
    subscriptions: bool,
    offset: i64,
    limit: i64,
    test: String,
    account: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AccountReq {
    account: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CidReq {
    cid: u64,
}

/// Go: server/events.go AccountNumConns.
#[derive(Debug, Serialize)]
struct AccountConns {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: EventServer,
    acc: String,
    conns: u64,
    leafnodes: u64,
    total_conns: u64,
    sent: DataStats,
    received: DataStats,
    slow_consumers: u64,
}

fn opts<T: Default + for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, String> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    // Go: the system services decode with json.Unmarshal.
    natsd_core::gojson::from_slice(payload, natsd_core::gojson::Unknown::Ignore)
        .map_err(|e| format!("Error decoding request: {e}"))
}

fn count(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX)
}

fn reply<T: Serialize>(srv: &Shared, r: Result<T, (u16, String)>) -> Option<Vec<u8>> {
    let (data, error) = match r {
        Ok(d) => (Some(d), None),
        Err((code, description)) => (None, Some(ApiError { code, description })),
    };
    serde_json::to_vec(&ApiResponse {
        server: event_server(srv),
        data,
        error,
    })
    .ok()
}

fn bad(e: String) -> (u16, String) {
    (400, e)
}

fn connz_opts(payload: &[u8], account: Option<&str>) -> Result<ConnzOptions, (u16, String)> {
    let r: ConnzReq = opts(payload).map_err(bad)?;
    Ok(ConnzOptions {
        sort: SortOpt::parse(&r.sort).map_err(bad)?,
        username: r.auth,
        subscriptions: r.subscriptions,
        subscriptions_detail: r.subscriptions_detail,
        offset: count(r.offset),
        limit: count(r.limit),
        cid: r.cid,
        state: match r.state {
            1 => ConnState::Closed,
            2 => ConnState::Any,
            _ => ConnState::Open,
        },
        user: r.user,
        account: account.map_or(r.acc, str::to_owned),
    })
}

fn subsz_opts(payload: &[u8], account: Option<&str>) -> Result<SubszOptions, (u16, String)> {
    let r: SubszReq = opts(payload).map_err(bad)?;
    Ok(SubszOptions {
        subscriptions: r.subscriptions,
        offset: count(r.offset),
        limit: count(r.limit),
        test: r.test,
        account: account.map_or(r.account, str::to_owned),
    })
}

/// The per-server requests (`$SYS.REQ.SERVER.PING.<X>`, `$SYS.REQ.SERVER.<id>.<X>`).
fn server_request(srv: &Shared, what: &str, payload: &[u8]) -> Option<Vec<u8>> {
    match what {
        "STATSZ" => serde_json::to_vec(&statsz_msg(srv)).ok(),
        "VARZ" => reply(srv, Ok(srv.varz())),
        "CONNZ" => reply(
            srv,
            connz_opts(payload, None).and_then(|o| srv.connz(&o).map_err(bad)),
        ),
        "SUBSZ" => reply(srv, subsz_opts(payload, None).map(|o| srv.subsz(&o))),
        "ROUTEZ" => reply(srv, Ok(srv.routez(false))),
        "GATEWAYZ" => reply(srv, Ok(srv.gatewayz())),
        "LEAFZ" => reply(srv, Ok(srv.leafz())),
        "JSZ" => reply(srv, Ok(srv.jsz())),
        "HEALTHZ" => reply(srv, Ok(srv.healthz())),
        "ACCOUNTZ" => reply(
            srv,
            opts::<AccountReq>(payload).map_err(bad).and_then(|r| {
                srv.accountz(&AccountzOptions { account: r.account })
                    .map_err(|e| (404, e))
            }),
        ),
        "IDZ" => reply(
            srv,
            Ok(serde_json::json!({
                "name": srv.server_name,
                "host": srv.opts().host,
                "id": srv.server_id,
            })),
        ),
        "KICK" | "LDM" => {
            let r = opts::<CidReq>(payload).map_err(bad).and_then(|r| {
                let c = srv
                    .get_client(r.cid)
                    .ok_or_else(|| (404, format!("client {} not found", r.cid)))?;
                if what == "KICK" {
                    c.shared.close(CloseReason::Kicked);
                } else {
                    let mut info = srv.client_config().info.clone();
                    info.ldm = true;
                    let mut buf = BytesMut::new();
                    natsd_core::proto::client::encode_info(&mut buf, &info);
                    c.shared.send_control(&buf);
                }
                Ok(serde_json::json!({}))
            });
            reply(srv, r)
        }
        _ => None,
    }
}

/// The per-account requests (`$SYS.REQ.ACCOUNT.<acc>.<X>`).
fn account_request(srv: &Shared, acc: &str, what: &str, payload: &[u8]) -> Option<Vec<u8>> {
    let account = srv.lookup_account(acc);
    match what {
        "CONNZ" => reply(
            srv,
            connz_opts(payload, Some(acc)).and_then(|o| srv.connz(&o).map_err(bad)),
        ),
        "SUBSZ" => reply(srv, subsz_opts(payload, Some(acc)).map(|o| srv.subsz(&o))),
        "LEAFZ" => reply(srv, Ok(srv.leafz())),
        "JSZ" => reply(srv, Ok(srv.jsz())),
        "INFO" => reply(
            srv,
            account
                .map(|a| srv.account_info(&a))
                .ok_or_else(|| (404, format!("account {acc} not found"))),
        ),
        "STATZ" => {
            let z: AccountStatz = srv.account_statz(&AccountStatzOptions {
                accounts: vec![acc.to_owned()],
                include_unused: true,
            });
            reply(srv, Ok(z))
        }
        "CONNS" => {
            let a = account?;
            let st = srv.account_stat(&a);
            serde_json::to_vec(&AccountConns {
                kind: "io.nats.server.advisory.v1.account_connections",
                id: super::event_id(srv),
                timestamp: crate::monitor::timefmt::rfc3339(srv.wall_clock()),
                server: event_server(srv),
                acc: st.acc,
                conns: st.conns,
                leafnodes: st.leafnodes,
                total_conns: st.total_conns,
                sent: st.sent,
                received: st.received,
                slow_consumers: st.slow_consumers,
            })
            .ok()
        }
        _ => None,
    }
}

/// Works out the answer to one request, if it has one.
fn answer(srv: &Shared, subject: &str, payload: &[u8]) -> Option<Vec<u8>> {
    let t: Vec<&str> = subject.split('.').collect();
    match t.as_slice() {
        ["$SYS", "REQ", "SERVER", "PING"] => serde_json::to_vec(&statsz_msg(srv)).ok(),
        ["$SYS", "REQ", "SERVER", "PING", what] => server_request(srv, what, payload),
        ["$SYS", "REQ", "SERVER", id, what] if *id == srv.server_id => {
            server_request(srv, what, payload)
        }
        ["$SYS", "REQ", "ACCOUNT", acc, what] => account_request(srv, acc, what, payload),
        _ => None,
    }
}

/// The service task: answers requests in arrival order until shutdown.
pub(super) async fn run(
    srv: Arc<Shared>,
    mut rx: mpsc::Receiver<Request>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let req = tokio::select! {
            r = rx.recv() => match r { Some(r) => r, None => return },
            _ = shutdown.changed() => return,
        };
        let Some(reply_to) = req.reply else { continue };
        let subject = String::from_utf8_lossy(&req.subject).into_owned();
        if let Some(body) = answer(&srv, &subject, &req.payload) {
            let Some(acc) = srv.lookup_account(&srv.system_account_name()) else {
                continue;
            };
            publish(&srv, &acc, &reply_to, body);
        }
    }
}
