//! The gateway listener and one dialer per remote cluster (configured, or learned by gossip).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use natsd_core::gateway::{GatewayRole, GatewaySettings};
use natsd_core::options::{GatewayConfig, Options};
use natsd_core::proto::route::RouteInfo;
use tokio::sync::watch;

use super::RemoteCluster;
use crate::route::RouteUrl;
use crate::server::{lock, ServerError, Shared, NATS_COMPAT_VERSION};
use crate::tls::peer::PeerTls;
use crate::transport::Transport;

/// Go: gateway.go defaultSolicitGatewaysDelay — the cluster gets a moment to form first, so
/// that its servers learn of each other before dialing out.
const SOLICIT_DELAY: Duration = Duration::from_secs(1);
/// Go: defaultGatewayReconnectDelay.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Jitter added to every pause, so that servers restarted together do not dial in lock step.
const RECONNECT_JITTER_MS: u64 = 100;
/// Bytes queued for one connection before it is a slow consumer.
const GATEWAY_MAX_PENDING: usize = 64 * 1024 * 1024;
/// Bound on a gateway control line.
const GATEWAY_MAX_CONTROL_LINE: u32 = 64 * 1024;

/// The URL other clusters are told to dial: `advertise`, else the listen address (an
/// unspecified host is shown as loopback: no interface address is looked up).
fn own_url(c: &GatewayConfig, port: u16) -> (String, u16) {
    if let Some(a) = &c.advertise {
        if let Some((h, p)) = a.rsplit_once(':') {
            if let Ok(p) = p.parse() {
                return (h.trim_matches(['[', ']']).to_owned(), p);
            }
        }
        return (a.clone(), port);
    }
    let unspecified = c.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    let host = if unspecified {
        "127.0.0.1".to_owned()
    } else {
        c.host.clone()
    };
    (host, port)
}

fn settings(srv: &Shared, opts: &Options, c: &GatewayConfig, port: u16) -> GatewaySettings {
    let (host, port) = own_url(c, port);
    let url = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    // Go: gateway.go startGatewayAcceptLoop and setGatewayInfoHostPort.
    let info = RouteInfo {
        server_id: srv.server_id.clone(),
        server_name: srv.server_name.clone(),
        version: NATS_COMPAT_VERSION.to_owned(),
        go: "go1.19.8".to_owned(),
        host,
        port,
        headers: true,
        auth_required: c.user.as_deref().is_some_and(|u| !u.is_empty()),
        // Go: startGatewayAcceptLoop — TLS on gateways always verifies the peer.
        tls_required: c.tls.is_some(),
        tls_verify: c.tls.is_some(),
        max_payload: i32::try_from(opts.max_payload).unwrap_or(i32::MAX),
        gateway: c.name.clone(),
        gateway_url: url.clone(),
        gateway_urls: vec![url],
        gateway_nrp: true,
        gateway_iom: true,
        ..RouteInfo::default()
    };
    GatewaySettings {
        info,
        max_control_line: GATEWAY_MAX_CONTROL_LINE,
        max_payload: opts
            .max_payload
            .max(natsd_core::options::DEFAULT_MAX_PAYLOAD),
        max_pending: GATEWAY_MAX_PENDING,
        ping_interval: opts.ping_interval,
        ping_max: opts.ping_max,
        auth_timeout: c.auth_timeout,
        user: c.user.clone().unwrap_or_default(),
        password: c.password.clone().unwrap_or_default(),
        known: c
            .reject_unknown
            .then(|| c.gateways.iter().map(|g| g.name.clone()).collect()),
    }
}

/// Binds the gateway listener, starts accepting, and (after [`SOLICIT_DELAY`]) dials every
/// configured remote cluster.
pub(crate) async fn start<T: Transport>(
    srv: &Arc<Shared>,
    opts: &Options,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, ServerError> {
    let Some(c) = opts.gateway.as_ref().filter(|c| c.enabled()) else {
        return Ok(None);
    };
    if let Some(t) = &c.tls {
        let t = PeerTls::new(t).map_err(|e| ServerError::Config(format!("gateway tls: {e}")))?;
        let _ = srv.gateways.tls.set(Arc::new(t));
    }
    let mut remote_tls = BTreeMap::new();
    for g in &c.gateways {
        if let Some(t) = &g.tls {
            let t = PeerTls::dialer(t)
                .map_err(|e| ServerError::Config(format!("gateway {:?} tls: {e}", g.name)))?;
            remote_tls.insert(g.name.clone(), Arc::new(t));
        }
    }
    for g in &c.gateways {
        for u in &g.urls {
            RouteUrl::parse(u).map_err(ServerError::Config)?;
        }
    }
    let host: IpAddr = c
        .host
        .parse()
        .map_err(|_| ServerError::Config(format!("invalid gateway host {:?}", c.host)))?;
    let port = c.port.unwrap_or(0);
    let (listener, bound) = crate::server::bind_listener::<T>(SocketAddr::new(host, port)).await?;
    *lock(&srv.gateways.addr) = Some(bound);
    tracing::info!("Gateway name is {}", c.name);
    tracing::info!("Listening for gateways connections on {bound}");
    *srv.gateways
        .settings
        .write()
        .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(settings(srv, opts, c, bound.port())));
    let _ = srv.gateways.dialer.set(spawn_dialer::<T>);
    // An import's interest in the exporting account, as for routes: the other clusters send
    // the exported messages here, where the import takes them in.
    for (account, subject) in crate::route::interest::import_interest(opts) {
        srv.gateways
            .local_interest(&account, subject.as_bytes(), None, true);
    }
    {
        let mut st = lock(&srv.gateways.state);
        for g in &c.gateways {
            // Go: newGateway — an entry with our own name is skipped.
            if g.name == c.name {
                continue;
            }
            st.remotes.insert(
                g.name.clone(),
                RemoteCluster {
                    urls: g.urls.clone(),
                    implicit: false,
                    dialing: true,
                    tls: remote_tls.get(&g.name).cloned(),
                },
            );
        }
    }
    let accept_srv = Arc::clone(srv);
    let task = crate::link::spawn_accept_loop::<T, _>(
        listener,
        shutdown,
        "gateway",
        move |stream, peer| {
            let srv = Arc::clone(&accept_srv);
            tokio::spawn(async move {
                // Go: createGateway — with `tls`, the handshake comes before our INFO.
                match srv.gateways.tls.get().cloned() {
                    None => {
                        super::conn::run(srv, stream, peer, GatewayRole::Inbound).await;
                    }
                    Some(tls) => match tls.accept(stream).await {
                        Ok(s) => {
                            super::conn::run(srv, s, peer, GatewayRole::Inbound).await;
                        }
                        Err(e) => tracing::error!(%peer, "gateway TLS handshake error: {e}"),
                    },
                }
            });
        },
    );
    let names: Vec<String> = c
        .gateways
        .iter()
        .filter(|g| g.name != c.name)
        .map(|g| g.name.clone())
        .collect();
    let dial_srv = Arc::clone(srv);
    tokio::spawn(async move {
        tokio::time::sleep(SOLICIT_DELAY).await;
        for name in names {
            spawn_dialer::<T>(Arc::clone(&dial_srv), name);
        }
    });
    Ok(Some(task))
}

/// Dials cluster `name`'s URLs in turn until a connection registers, runs it, and starts over
/// when it closes (Go: solicitGateway, reconnectGateway). A learned cluster is given up after
/// a round of failed attempts; a configured one after `connect_retries` (0: never).
fn spawn_dialer<T: Transport>(srv: Arc<Shared>, name: String) {
    tokio::spawn(async move {
        let gws = Arc::clone(&srv.gateways);
        let retries = srv.opts().gateway.as_ref().map_or(0, |g| g.connect_retries);
        let mut attempts = 0usize;
        let mut wait = false;
        loop {
            if wait {
                let jitter = srv.next_seed() % RECONNECT_JITTER_MS;
                tokio::time::sleep(RECONNECT_DELAY + Duration::from_millis(jitter)).await;
            }
            wait = true;
            if gws.shutting_down.load(Ordering::Acquire) {
                return;
            }
            let (urls, implicit, connected, tls) = {
                let st = lock(&gws.state);
                let Some(r) = st.remotes.get(&name) else {
                    return;
                };
                let tls = r.tls.clone().or_else(|| gws.tls.get().cloned());
                (
                    r.urls.clone(),
                    r.implicit,
                    st.outbound.contains_key(&name),
                    tls,
                )
            };
            if connected || urls.is_empty() {
                // Another connection to that cluster registered meanwhile.
                stop(&gws, &name);
                return;
            }
            let give_up = if implicit {
                attempts >= urls.len().max(2)
            } else {
                retries > 0 && attempts > retries as usize
            };
            if give_up {
                tracing::warn!("Giving up on connecting to gateway {name:?}");
                stop(&gws, &name);
                if implicit {
                    lock(&gws.state).remotes.remove(&name);
                }
                return;
            }
            // Go: a random URL each time; ours is drawn from the server seed.
            let pick = (srv.next_seed() % urls.len() as u64) as usize;
            attempts += 1;
            let url = match RouteUrl::parse(&urls[pick]) {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!("bad gateway URL: {e}");
                    continue;
                }
            };
            let addr = match url.resolve().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(url = %url, "error resolving gateway URL: {e}");
                    continue;
                }
            };
            // Go: "Connecting to explicit/implicit gateway %q (%s) at %s".
            let kind = if implicit { "implicit" } else { "explicit" };
            tracing::debug!(
                "Connecting to {kind} gateway {name:?} ({}) at {addr}",
                url.host_port()
            );
            match T::connect(addr).await {
                Ok(stream) => {
                    let role = GatewayRole::Outbound {
                        name: name.clone(),
                        user: url.user.clone(),
                        pass: url.pass.clone(),
                        tls: tls.is_some(),
                    };
                    let registered = match &tls {
                        None => super::conn::run(Arc::clone(&srv), stream, addr, role).await,
                        // Go: createGateway — the dialer is the TLS client, and the remote's
                        // certificate must name the URL's host.
                        Some(tls) => match tls.connect(&url.host, stream).await {
                            Ok(s) => super::conn::run(Arc::clone(&srv), s, addr, role).await,
                            Err(e) => {
                                tracing::error!(
                                    "Gateway {name:?} TLS handshake error at {addr}: {e}"
                                );
                                false
                            }
                        },
                    };
                    if registered {
                        attempts = 0;
                    }
                }
                Err(e) => {
                    // Go: "Error connecting to %s gateway %q (%s) at %s (attempt %v): %v".
                    tracing::debug!("Error connecting to {kind} gateway {name:?} at {addr} (attempt {attempts}): {e}");
                }
            }
        }
    });
}

fn stop(gws: &super::Gateways, name: &str) {
    if let Some(r) = lock(&gws.state).remotes.get_mut(name) {
        r.dialing = false;
    }
}
