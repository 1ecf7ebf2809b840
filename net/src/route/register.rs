//! Registering a route once the peer's INFO arrived: one route per peer (nats-server 2.9.10),
//! or a pool of them plus pinned accounts' routes (2.10, see [`natsd_core::route::pool`]).
//! Duplicates are closed, pools are filled by the side that knows the peer's URL.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use natsd_core::proto::route::RouteInfo;
use natsd_core::route::pool::{negotiate, PoolRole};
use natsd_core::route::RouteCloseReason;

use super::conn::Dialed;
use super::{ClusterState, RouteHandle, Slot};
use crate::server::{lock, Shared};

/// Go: server/route.go processRouteInfo → addRoute.
pub(super) fn peer_info(
    srv: &Arc<Shared>,
    handle: &Arc<RouteHandle>,
    peer: SocketAddr,
    info: RouteInfo,
) {
    let cluster = &srv.cluster;
    let (size, pinned) = cluster.pool();
    let solicited = lock(&handle.conn).is_solicited();
    let mut st = lock(&cluster.state);
    let Some(entry) = st.routes.get(&handle.id) else {
        return;
    };
    let account = entry.account.clone();
    let role = match negotiate(size, solicited, account.as_deref(), &info) {
        Ok(PoolRole::Pinned(a)) if !pinned.contains(&a) => {
            Err(format!("No route for account {a:?}"))
        }
        r => r,
    };
    let role = match role {
        Ok(r) => r,
        Err(text) => {
            if account.is_some() {
                // A dedicated route the peer cannot have: never dial it again.
                if let Some(e) = st.routes.get_mut(&handle.id) {
                    e.url = None;
                }
            }
            drop(st);
            tracing::error!(rid = handle.id, remote = %info.server_name, "route rejected: {text}");
            handle.with(|c| c.reject(&text));
            return;
        }
    };
    let id = info.server_id.clone();
    let first = !st.by_peer.contains_key(&id);
    let slot = match role {
        PoolRole::Single if first => Slot::Single,
        PoolRole::Single => return duplicate(st, handle, &id, true),
        PoolRole::Pinned(acc) => {
            let pr = st.peers.entry(id.clone()).or_default();
            if pr.pinned.contains_key(&acc) {
                return duplicate(st, handle, &id, true);
            }
            pr.pinned.insert(acc.clone(), handle.id);
            Slot::Pinned(acc)
        }
        PoolRole::Pooled(want) => {
            let pr = st.peers.entry(id.clone()).or_default();
            if pr.slots.is_empty() {
                pr.slots = vec![None; size];
            }
            let idx = match want {
                Some(i) => pr.slots[i].is_none().then_some(i),
                None => pr.slots.iter().position(Option::is_none),
            };
            let Some(idx) = idx else {
                // Go: "Route pool size reached, closing extra connection".
                return duplicate(st, handle, &id, want.is_some());
            };
            pr.slots[idx] = Some(handle.id);
            Slot::Pool(idx)
        }
    };
    handle.with(|c| {
        match &slot {
            Slot::Pool(i) => c.send_pool_info(*i),
            Slot::Single => c.send_pool_info(0),
            Slot::Pinned(a) if c.pinned_account().is_none() => {
                c.set_account(Bytes::from(a.clone()))
            }
            Slot::Pinned(_) => {}
        };
    });
    let Some(entry) = st.routes.get_mut(&handle.id) else {
        return;
    };
    entry.info = Some(info.clone());
    entry.slot = Some(slot.clone());
    let (url, configured) = (entry.url.clone(), entry.configured);
    st.by_peer.entry(id.clone()).or_insert(handle.id);
    tracing::info!(rid = handle.id, %peer, remote = %info.server_name, ?slot, "route connection registered");
    cluster.send_all_interest(&st, handle);
    // Not only on the first route: routes of an earlier incarnation of a restarted peer (same
    // server id) may still be registered, waiting for PING stale detection, when its new
    // routes come in; the other peers must still hear about it. They ignore a peer they are
    // routed to (or dial it once their own old route to it closes: dial::deferred).
    gossip(&st, handle.id, &id, peer, &info);
    // The side that dialed fills the pool, then dials the pinned accounts' routes.
    let mut dials = Vec::new();
    if let (Some(url), Slot::Pool(_)) = (url, &slot) {
        let pr = st.peers.get(&id);
        if pr.is_some_and(|p| p.slots.iter().any(Option::is_none)) && solicited {
            dials.push(Dialed {
                url: url.clone(),
                configured,
                account: None,
            });
        }
        if first {
            for acc in pinned {
                if !pr.is_some_and(|p| p.pinned.contains_key(acc)) {
                    dials.push(Dialed {
                        url: url.clone(),
                        configured,
                        account: Some(acc.clone()),
                    });
                }
            }
        }
    }
    drop(st);
    if let Some(dial) = cluster.dialer.get() {
        for d in dials {
            dial(Arc::clone(srv), d);
        }
    }
    if first {
        srv.update_client_urls();
        // Go: route.go addRoute — a new peer's leaf URL goes to our leaves.
        srv.update_leaf_urls();
    }
}

/// Closes `handle` as a duplicate of an already registered route of peer `id`. With
/// `keep_url`, a URL we dialed moves to a route of that peer without one, so that it is dialed
/// again when that route closes.
fn duplicate(
    mut st: std::sync::MutexGuard<'_, ClusterState>,
    handle: &RouteHandle,
    id: &str,
    keep_url: bool,
) {
    let mine = st.routes.get_mut(&handle.id).and_then(|e| {
        let url = e.url.take()?;
        Some((url, e.configured, e.account.clone()))
    });
    if let (Some((url, configured, account)), true) = (mine, keep_url) {
        let same_kind = |e: &super::RouteEntry| match (&e.slot, &account) {
            (Some(Slot::Pinned(a)), Some(b)) => a == b,
            (Some(Slot::Pinned(_)), None) | (_, Some(_)) => false,
            _ => true,
        };
        let target = st.routes.values_mut().find(|e| {
            e.url.is_none() && e.info.as_ref().is_some_and(|i| i.server_id == id) && same_kind(e)
        });
        if let Some(e) = target {
            e.url = Some(url);
            e.configured = configured;
            e.account = account;
            e.solicited = true;
        }
    }
    drop(st);
    tracing::debug!(rid = handle.id, remote = %id, "duplicate route");
    handle.close(RouteCloseReason::DuplicateRoute);
}

/// Tells one route of every other peer about the newcomer so that they dial it.
fn gossip(st: &ClusterState, new: u64, id: &str, peer: SocketAddr, info: &RouteInfo) {
    let mut fwd = info.clone();
    if fwd.ip.is_empty() {
        fwd.ip = format!("nats-route://{}/", SocketAddr::new(peer.ip(), info.port));
    }
    fwd.route_pool_idx = 0;
    fwd.route_account.clear();
    for (pid, rid) in &st.by_peer {
        if pid == id || *rid == new {
            continue;
        }
        if let Some(e) = st.routes.get(rid) {
            e.handle.with(|c| c.send_forwarded_info(&fwd));
        }
    }
}

/// Forgets a closed route in the peer tables.
pub(super) fn unregister(st: &mut ClusterState, id: u64, peer_id: &str) {
    if let Some(pr) = st.peers.get_mut(peer_id) {
        for s in &mut pr.slots {
            if *s == Some(id) {
                *s = None;
            }
        }
        pr.pinned.retain(|_, r| *r != id);
        if pr.slots.iter().all(Option::is_none) && pr.pinned.is_empty() {
            st.peers.remove(peer_id);
        }
    }
    if st.by_peer.get(peer_id) == Some(&id) {
        let other = st
            .routes
            .iter()
            .find(|(rid, e)| **rid != id && e.info.as_ref().is_some_and(|i| i.server_id == peer_id))
            .map(|(rid, _)| *rid);
        match other {
            Some(o) => {
                st.by_peer.insert(peer_id.to_owned(), o);
            }
            None => {
                st.by_peer.remove(peer_id);
            }
        }
    }
}
