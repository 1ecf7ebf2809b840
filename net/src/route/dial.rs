//! The route listener and the dialers: configured routes (redialed forever), routes learned by
//! gossip (`connect_retries` extra attempts) and redials after a route closes.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use natsd_core::options::{ClusterConfig, Options};
use natsd_core::proto::route::{RouteInfo, RoutePermission, DEFAULT_ROUTE_MAX_CONTROL_LINE};
use natsd_core::route::{RouteConfig, RouteCredentials};
use tokio::sync::watch;

use super::conn::{self, Dialed};
use super::RouteUrl;
use crate::server::{lock, ServerError, Shared, NATS_COMPAT_VERSION};
use crate::transport::Transport;

/// Go: server/const.go DEFAULT_ROUTE_RECONNECT — the pause between attempts.
const RECONNECT: Duration = Duration::from_secs(1);
/// Jitter added to every pause, so that servers restarted together do not dial in lock step.
const RECONNECT_JITTER_MS: u64 = 100;
/// Routes carry messages up to the largest `max_payload` of the cluster: accept at least this.
const ROUTE_MAX_PAYLOAD: u32 = 64 * 1024 * 1024;
/// Bytes queued for one peer before the route is a slow consumer (Go: max_pending default).
const ROUTE_MAX_PENDING: usize = 64 * 1024 * 1024;

/// The `ip` field of our INFO when `cluster.advertise` is set.
fn advertise_url(c: &ClusterConfig) -> String {
    c.advertise
        .as_ref()
        .map(|a| {
            let hp = a.split_once("://").map_or(a.as_str(), |(_, r)| r);
            format!("nats-route://{}/", hp.trim_end_matches('/'))
        })
        .unwrap_or_default()
}

fn permission(p: Option<&natsd_core::options::SubjectPermission>) -> Option<RoutePermission> {
    p.map(|p| RoutePermission {
        allow: p.allow.clone(),
        deny: p.deny.clone(),
    })
}

/// Builds the settings every route connection reads, once the listener is bound.
pub(crate) fn route_config(
    srv: &Shared,
    opts: &Options,
    c: &ClusterConfig,
    port: u16,
    client_urls: Vec<String>,
) -> RouteConfig {
    let (name, dynamic) = {
        let st = lock(&srv.cluster.state);
        (st.name.clone(), st.dynamic)
    };
    let info = RouteInfo {
        server_id: srv.server_id.clone(),
        server_name: srv.server_name.clone(),
        version: NATS_COMPAT_VERSION.to_owned(),
        proto: 2,
        // nats-server always sends it; an empty one reads as "not Go" and changes nothing.
        go: "go1.19.8".to_owned(),
        host: c.host.clone(),
        port,
        headers: true,
        max_payload: i32::try_from(opts.max_payload).unwrap_or(i32::MAX),
        ip: advertise_url(c),
        cluster: name,
        dynamic,
        connect_urls: if opts.no_advertise {
            Vec::new()
        } else {
            client_urls
        },
        // Go: route.go — each server tells its routes its own leaf URL, which they pass on
        // to their leaves.
        leafnode_urls: srv.leafs.advertised_url().into_iter().collect(),
        import: permission(c.import.as_ref()),
        export: permission(c.export.as_ref()),
        lnoc: true,
        tls_required: c.tls.is_some(),
        tls_verify: c.tls.is_some(),
        route_pool_size: c
            .pool_size
            .filter(|n| *n > 0)
            .map_or(0, |n| i32::try_from(n).unwrap_or(i32::MAX)),
        ..RouteInfo::default()
    };
    let authorizer = c.user.as_ref().map(|u| {
        Arc::new(RouteCredentials {
            user: u.clone(),
            password: c.password.clone().unwrap_or_default(),
        }) as Arc<dyn natsd_core::route::RouteAuthorizer>
    });
    RouteConfig {
        info,
        max_control_line: DEFAULT_ROUTE_MAX_CONTROL_LINE,
        max_payload: opts.max_payload.max(ROUTE_MAX_PAYLOAD),
        max_pending: ROUTE_MAX_PENDING,
        ping_interval: opts.ping_interval,
        ping_max: opts.ping_max,
        auth_timeout: c.auth_timeout,
        authorizer,
    }
}

/// Binds the route listener, starts accepting and dials the configured routes.
pub(crate) async fn start<T: Transport>(
    srv: &Arc<Shared>,
    opts: &Options,
    client_urls: Vec<String>,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, ServerError> {
    let Some(c) = &opts.cluster else {
        return Ok(None);
    };
    if let Some(t) = &c.tls {
        let t = super::tls::RouteTls::new(t)
            .map_err(|e| ServerError::Config(format!("cluster tls: {e}")))?;
        let _ = srv.cluster.tls.set(Arc::new(t));
    }
    let routes = c
        .routes
        .iter()
        .map(|r| RouteUrl::parse(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ServerError::Config)?;
    let host: IpAddr = c
        .host
        .parse()
        .map_err(|_| ServerError::Config(format!("invalid cluster host {:?}", c.host)))?;
    let addr = SocketAddr::new(host, c.port.unwrap_or(0));
    let (listener, bound) = crate::server::bind_listener::<T>(addr).await?;
    if c.import.is_some() || c.export.is_some() {
        let perms = natsd_core::options::Permissions {
            publish: c.import.clone(),
            subscribe: c.export.clone(),
            allow_responses: None,
        };
        let _ = srv
            .cluster
            .perms
            .set(natsd_core::auth::PermissionChecker::new(&perms));
    }
    for (account, subject) in super::interest::import_interest(opts) {
        srv.cluster
            .local_interest(&account, subject.as_bytes(), None, true);
    }
    let pool = usize::try_from(c.pool_size.unwrap_or(0)).unwrap_or(0);
    let _ = srv.cluster.pool.set((pool, c.pinned_accounts.clone()));
    let cfg = route_config(srv, opts, c, bound.port(), client_urls);
    *srv.cluster.cfg.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(cfg));
    *lock(&srv.cluster.addr) = Some(bound);
    let _ = srv.cluster.dialer.set(spawn_first::<T>);
    tracing::info!("Cluster name is {}", srv.cluster.name());
    tracing::info!("Listening for route connections on {bound}");
    let accept_srv = Arc::clone(srv);
    let task = crate::link::spawn_accept_loop::<T, _>(
        listener,
        shutdown.clone(),
        "route",
        move |stream, peer| {
            let srv = Arc::clone(&accept_srv);
            tokio::spawn(async move {
                let again = match srv.cluster.tls.get().cloned() {
                    None => conn::run(Arc::clone(&srv), stream, peer, None).await,
                    Some(tls) => match tls.accept(stream).await {
                        Ok(s) => conn::run(Arc::clone(&srv), s, peer, None).await,
                        Err(e) => {
                            tracing::error!(%peer, "route TLS handshake error: {e}");
                            None
                        }
                    },
                };
                redial::<T>(srv, again);
            });
        },
    );
    for url in routes {
        spawn_dial::<T>(
            Arc::clone(srv),
            Dialed {
                url,
                configured: true,
                account: None,
            },
            false,
        );
    }
    Ok(Some(task))
}

/// Dials again after a solicited route closed.
fn redial<T: Transport>(srv: Arc<Shared>, again: Option<Dialed>) {
    if let Some(d) = again {
        spawn_dial::<T>(srv, d, true);
    }
}

/// One dialer: tries until connected (a configured route forever, a gossiped one
/// `connect_retries` more times), runs the route, then hands over to a fresh dialer if the
/// route should be redialed. `wait_first`: pause before the first attempt (a redial).
fn spawn_dial<T: Transport>(srv: Arc<Shared>, d: Dialed, wait_first: bool) {
    tokio::spawn(async move {
        let retries = srv.opts().cluster.as_ref().map_or(0, |c| c.connect_retries);
        let mut attempt: u32 = 0;
        let mut wait = wait_first;
        let stream = loop {
            if wait {
                let jitter = lock_rng_below(&srv, RECONNECT_JITTER_MS);
                tokio::time::sleep(RECONNECT + Duration::from_millis(jitter)).await;
            }
            wait = true;
            if srv.cluster.shutting_down.load(Ordering::Acquire) {
                return;
            }
            let res = match d.url.resolve().await {
                Ok(addr) => T::connect(addr).await.map(|s| (s, addr)),
                Err(e) => Err(e),
            };
            match res {
                Ok(s) => break s,
                Err(e) => {
                    tracing::debug!(url = %d.url, "error trying to connect to route: {e}");
                    if !d.configured {
                        attempt += 1;
                        if attempt > retries {
                            forget_dialing(&srv, &d.url);
                            return;
                        }
                    }
                }
            }
        };
        let (stream, addr) = stream;
        let again = match srv.cluster.tls.get().cloned() {
            None => conn::run(Arc::clone(&srv), stream, addr, Some(d.clone())).await,
            Some(tls) => match tls.connect(&d.url.host, stream).await {
                Ok(s) => conn::run(Arc::clone(&srv), s, addr, Some(d.clone())).await,
                Err(e) => {
                    // Go: a failed handshake closes the connection; only configured routes
                    // are dialed again.
                    tracing::error!(url = %d.url, "route TLS handshake error: {e}");
                    d.configured.then(|| d.clone())
                }
            },
        };
        if !d.configured {
            forget_dialing(&srv, &d.url);
        }
        redial::<T>(srv, again);
    });
}

fn lock_rng_below(srv: &Shared, n: u64) -> u64 {
    srv.next_seed() % n.max(1)
}

fn forget_dialing(srv: &Shared, url: &RouteUrl) {
    lock(&srv.cluster.state).dialing.remove(&url.host_port());
}

/// Go: server/route.go processImplicitRoute — dial a server we learned about by gossip, unless
/// it is us, already routed, already being dialed, or one of our configured routes.
pub(crate) fn implicit(srv: &Arc<Shared>, info: &RouteInfo) {
    if info.server_id == srv.server_id {
        return;
    }
    let opts = srv.opts();
    let Some(c) = &opts.cluster else { return };
    let target = format!("{}:{}", info.host.to_ascii_lowercase(), info.port);
    let configured = c
        .routes
        .iter()
        .filter_map(|r| RouteUrl::parse(r).ok())
        .any(|u| u.host_port() == target);
    if configured {
        return;
    }
    let Ok(mut url) = RouteUrl::parse(&info.ip) else {
        tracing::debug!(ip = %info.ip, "unusable route URL in gossip");
        return;
    };
    if info.auth_required {
        url.user.clone_from(&c.user);
        url.pass.clone_from(&c.password);
    }
    {
        let mut st = lock(&srv.cluster.state);
        if st.by_peer.contains_key(&info.server_id) {
            st.deferred.insert(info.server_id.clone(), url);
            return;
        }
        if !st.dialing.insert(url.host_port()) {
            return;
        }
    }
    if let Some(dial) = srv.cluster.dialer.get() {
        dial(
            Arc::clone(srv),
            Dialed {
                url,
                configured: false,
                account: None,
            },
        );
    }
}

/// The last route to peer `peer_id` closed: dial it if it was gossiped to us while that route
/// was up (see `ClusterState::deferred`). Call with the state unlocked.
pub(crate) fn deferred(srv: &Arc<Shared>, peer_id: &str) {
    let url = {
        let mut st = lock(&srv.cluster.state);
        if st.by_peer.contains_key(peer_id) || srv.cluster.shutting_down.load(Ordering::Acquire) {
            return;
        }
        let Some(url) = st.deferred.remove(peer_id) else {
            return;
        };
        if !st.dialing.insert(url.host_port()) {
            return;
        }
        url
    };
    tracing::debug!(url = %url, "dialing a route gossiped while an older one was up");
    if let Some(dial) = srv.cluster.dialer.get() {
        dial(
            Arc::clone(srv),
            Dialed {
                url,
                configured: false,
                account: None,
            },
        );
    }
}

/// Starts a dialer from a place that does not know the transport type (the route driver).
fn spawn_first<T: Transport>(srv: Arc<Shared>, d: Dialed) {
    spawn_dial::<T>(srv, d, false);
}
