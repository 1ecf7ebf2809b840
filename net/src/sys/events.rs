//! Events published in the system account, with nats-server's JSON (Go: server/events.go).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::{event_id, publish, wanted};
use crate::monitor::timefmt::rfc3339;
use crate::monitor::types::DataStats;
use crate::server::{ClientEntry, ClosedClient, Shared, NATS_COMPAT_VERSION};
use natsd_core::conn::CloseReason;

/// First STATSZ event this soon after start, then ever less often up to the steady interval
/// (Go ramps its statsz heartbeat the same way so that new servers are seen quickly).
const STATSZ_FIRST: Duration = Duration::from_millis(250);
const STATSZ_STEADY: Duration = Duration::from_secs(30);

/// The sending server, in every event and service reply. Go: server/events.go ServerInfo.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EventServer {
    name: String,
    host: String,
    id: String,
    ver: String,
    seq: u64,
    jetstream: bool,
    time: String,
}

pub(crate) fn event_server(srv: &Shared) -> EventServer {
    EventServer {
        name: srv.server_name.clone(),
        host: srv.opts().host.clone(),
        id: srv.server_id.clone(),
        ver: NATS_COMPAT_VERSION.to_owned(),
        seq: srv.sys.seq.fetch_add(1, Ordering::Relaxed) + 1,
        jetstream: false,
        time: rfc3339(srv.wall_clock()),
    }
}

/// A client in connect/disconnect events. Go: server/events.go ClientInfo.
#[derive(Debug, Serialize)]
struct EventClient {
    start: String,
    host: String,
    id: u64,
    acc: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
    kind: &'static str,
    client_type: &'static str,
}

fn event_client(e: &ClientEntry, stop: Option<String>) -> EventClient {
    EventClient {
        start: rfc3339(e.start),
        host: e.peer.ip().to_string(),
        id: e.shared.id,
        acc: e
            .account
            .clone()
            .unwrap_or_else(|| natsd_core::options::GLOBAL_ACCOUNT.to_owned()),
        user: e.user.clone().unwrap_or_default(),
        name: e.name.clone().unwrap_or_default(),
        lang: e.lang.clone().unwrap_or_default(),
        version: e.version.clone().unwrap_or_default(),
        stop,
        kind: "Client",
        client_type: "nats",
    }
}

#[derive(Debug, Serialize)]
struct ConnectEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: EventServer,
    client: EventClient,
}

#[derive(Debug, Serialize)]
struct DisconnectEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: EventServer,
    client: EventClient,
    sent: DataStats,
    received: DataStats,
    reason: &'static str,
}

/// Go: server/events.go ServerStatsMsg.
#[derive(Debug, Serialize)]
pub(crate) struct StatszMsg {
    server: EventServer,
    statsz: Statz,
}

/// Go: server/events.go ServerStats.
#[derive(Debug, Serialize)]
struct Statz {
    start: String,
    mem: u64,
    cores: u32,
    cpu: f64,
    connections: u64,
    total_connections: u64,
    active_accounts: u64,
    subscriptions: u64,
    sent: DataStats,
    received: DataStats,
    slow_consumers: u64,
    active_servers: u64,
}

pub(crate) fn statsz_msg(srv: &Shared) -> StatszMsg {
    let v = srv.varz();
    let active_accounts = srv
        .accounts_snapshot()
        .iter()
        .filter(|a| a.num_connections.load(Ordering::Relaxed) > 0)
        .count() as u64;
    StatszMsg {
        server: event_server(srv),
        statsz: Statz {
            start: v.start,
            mem: v.mem,
            cores: v.cores,
            cpu: v.cpu,
            connections: v.connections,
            total_connections: v.total_connections,
            active_accounts,
            subscriptions: v.subscriptions,
            sent: DataStats {
                msgs: v.out_msgs,
                bytes: v.out_bytes,
            },
            received: DataStats {
                msgs: v.in_msgs,
                bytes: v.in_bytes,
            },
            slow_consumers: v.slow_consumers,
            active_servers: 1,
        },
    }
}

fn emit<T: Serialize>(srv: &Shared, subject: &str, body: impl FnOnce() -> T) {
    let Some(acc) = wanted(srv, subject) else {
        return;
    };
    if let Ok(json) = serde_json::to_vec(&body()) {
        publish(srv, &acc, subject.as_bytes(), json);
    }
}

/// `$SYS.ACCOUNT.<acc>.CONNECT`.
pub(crate) fn client_connected(srv: &Shared, e: &ClientEntry) {
    let Some(acc) = &e.account else { return };
    emit(srv, &format!("$SYS.ACCOUNT.{acc}.CONNECT"), || {
        ConnectEvent {
            kind: "io.nats.server.advisory.v1.client_connect",
            id: event_id(srv),
            timestamp: rfc3339(srv.wall_clock()),
            server: event_server(srv),
            client: event_client(e, None),
        }
    });
}

/// `$SYS.ACCOUNT.<acc>.DISCONNECT`, or `$SYS.SERVER.<id>.CLIENT.AUTH.ERR` for a connection
/// that never authenticated.
pub(crate) fn client_disconnected(srv: &Shared, c: &ClosedClient) {
    let subject = match &c.entry.account {
        Some(acc) => format!("$SYS.ACCOUNT.{acc}.DISCONNECT"),
        None if matches!(
            c.reason,
            CloseReason::AuthenticationViolation | CloseReason::AuthenticationTimeout
        ) =>
        {
            format!("$SYS.SERVER.{}.CLIENT.AUTH.ERR", srv.server_id)
        }
        None => return,
    };
    let st = &c.entry.shared.stats;
    emit(srv, &subject, || DisconnectEvent {
        kind: "io.nats.server.advisory.v1.client_disconnect",
        id: event_id(srv),
        timestamp: rfc3339(c.stop),
        server: event_server(srv),
        client: event_client(&c.entry, Some(rfc3339(c.stop))),
        // Go: from the client's side here ("sent" is what the client published), unlike the
        // account statistics, which count from the server's side.
        sent: DataStats {
            msgs: st.in_msgs.load(Ordering::Relaxed),
            bytes: st.in_bytes.load(Ordering::Relaxed),
        },
        received: DataStats {
            msgs: st.out_msgs.load(Ordering::Relaxed),
            bytes: st.out_bytes.load(Ordering::Relaxed),
        },
        reason: c.reason.as_str(),
    });
}

/// `$SYS.SERVER.<id>.LAMEDUCK`: the server's info.
pub(crate) fn lame_duck(srv: &Shared) {
    emit(
        srv,
        &format!("$SYS.SERVER.{}.LAMEDUCK", srv.server_id),
        || event_server(srv),
    );
}

/// `$SYS.SERVER.<id>.SHUTDOWN`: the server's info.
pub(crate) fn shutdown(srv: &Shared) {
    emit(
        srv,
        &format!("$SYS.SERVER.{}.SHUTDOWN", srv.server_id),
        || event_server(srv),
    );
}

/// Publishes `$SYS.SERVER.<id>.STATSZ` periodically until shutdown.
pub(crate) async fn statsz_loop(srv: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut every = STATSZ_FIRST;
    let subject = format!("$SYS.SERVER.{}.STATSZ", srv.server_id);
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        emit(&srv, &subject, || statsz_msg(&srv));
        every = (every * 2).min(STATSZ_STEADY);
    }
}
