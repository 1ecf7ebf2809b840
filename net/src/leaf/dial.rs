//! The leaf-node listener (hub side) and one dialer per `leafnodes.remotes` entry (leaf side).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use natsd_core::auth::Authenticator;
use natsd_core::leaf::{LeafAuth, LeafCredentials, LeafRole, LeafSettings, GLOBAL_ACCOUNT};
use natsd_core::options::{LeafConfig, LeafRemote, Options};
use natsd_core::proto::leaf::RouteInfo;
use tokio::sync::watch;

use super::conn::{LinkSetup, LinkTls};
use super::tls::{LeafTlsClient, LeafTlsServer};
use crate::route::RouteUrl;
use crate::server::{ServerError, Shared, NATS_COMPAT_VERSION};
use crate::transport::Transport;

/// Jitter added to every pause, so that leaves restarted together do not dial in lock step.
const RECONNECT_JITTER_MS: u64 = 100;
/// Bytes queued for one link before it is a slow consumer.
const LEAF_MAX_PENDING: usize = 64 * 1024 * 1024;
/// Bound on a leaf control line.
const LEAF_MAX_CONTROL_LINE: u32 = 64 * 1024;

fn settings(srv: &Shared, opts: &Options, c: &LeafConfig, port: u16) -> LeafSettings {
    // An unspecified listen host is no address to dial: without `advertise` such a hub
    // names no URL rather than `0.0.0.0` (nats-server lists the host's interface addresses).
    let unspecified = c.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    let advertise = match &c.advertise {
        Some(a) => Some(a.clone()),
        None if unspecified || port == 0 => None,
        None => Some(format!("{}:{port}", c.host)),
    };
    let info = RouteInfo {
        server_id: srv.server_id.clone(),
        server_name: srv.server_name.clone(),
        version: NATS_COMPAT_VERSION.to_owned(),
        proto: 1,
        go: "go1.19.8".to_owned(),
        host: c.host.clone(),
        port,
        headers: true,
        max_payload: i32::try_from(opts.max_payload).unwrap_or(i32::MAX),
        tls_required: c.tls.is_some(),
        tls_verify: c.tls.as_ref().is_some_and(|t| t.verify),
        // Go: leafnode.go — the hub's INFO and the leaf's CONNECT say whether JetStream runs
        // and in which domain; each side decides from them what JetStream API may cross.
        jetstream: opts.jetstream.is_some(),
        domain: opts
            .jetstream
            .as_ref()
            .and_then(|j| j.domain.clone())
            .unwrap_or_default(),
        // Go: startLeafNodeAcceptLoop addLeafNodeURL — our own URL is always offered to our
        // leaves; `no_advertise` only keeps it from the routes (see `advertised_url`).
        leafnode_urls: advertise.iter().cloned().collect(),
        ..RouteInfo::default()
    };
    LeafSettings {
        info,
        cluster: opts
            .cluster
            .as_ref()
            .and_then(|c| c.name.clone())
            .unwrap_or_else(|| srv.server_name.clone()),
        max_control_line: LEAF_MAX_CONTROL_LINE,
        max_payload: opts.max_payload,
        max_pending: LEAF_MAX_PENDING,
        ping_interval: opts.ping_interval,
        ping_max: opts.ping_max,
        auth_timeout: c.auth_timeout,
        auth: LeafAuth {
            user: c.user.clone().unwrap_or_default(),
            password: c.password.clone().unwrap_or_default(),
            account: c.account.clone(),
            users: c.users.clone(),
        },
        main_auth: Some(Arc::new(Authenticator::new(opts))),
    }
}

/// Binds the leaf-node listener (if a port is configured), starts accepting, and starts a
/// dialer per remote.
pub(crate) async fn start<T: Transport>(
    srv: &Arc<Shared>,
    opts: &Options,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, ServerError> {
    let Some(c) = &opts.leafnodes else {
        return Ok(None);
    };
    let remotes = c
        .remotes
        .iter()
        .map(|r| {
            r.urls
                .iter()
                .map(|u| RouteUrl::parse(u))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(ServerError::Config)?;
    let hub_tls = match &c.tls {
        Some(t) if c.port.is_some() => {
            Some(Arc::new(LeafTlsServer::new(t).map_err(|e| {
                ServerError::Config(format!("leafnode tls: {e}"))
            })?))
        }
        _ => None,
    };
    let remote_tls = c
        .remotes
        .iter()
        .map(|r| {
            let wanted = r.tls.is_some() || r.urls.iter().any(|u| u.starts_with("tls://"));
            wanted
                .then(|| LeafTlsClient::new(r.tls.as_ref()).map(Arc::new))
                .transpose()
                .map_err(|e| ServerError::Config(format!("leafnode remote tls: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let remote_creds = c
        .remotes
        .iter()
        .map(|r| {
            r.credentials
                .as_ref()
                .map(|path| {
                    std::fs::read_to_string(path)
                        .map_err(|e| e.to_string())
                        .and_then(|t| LeafCredentials::parse(&t))
                        .map(Arc::new)
                        .map_err(|e| {
                            ServerError::Config(format!("leafnode credentials {path:?}: {e}"))
                        })
                })
                .transpose()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut task = None;
    let mut port = 0;
    let mut listener = None;
    if let Some(p) = c.port {
        let host: IpAddr = c
            .host
            .parse()
            .map_err(|_| ServerError::Config(format!("invalid leafnode host {:?}", c.host)))?;
        let (l, bound) = crate::server::bind_listener::<T>(SocketAddr::new(host, p)).await?;
        port = bound.port();
        *crate::server::lock(&srv.leafs.addr) = Some(bound);
        tracing::info!("Listening for leafnode connections on {bound}");
        listener = Some(l);
    }
    let settings = settings(srv, opts, c, port);
    *crate::server::lock(&srv.leafs.own_url) = settings.info.leafnode_urls.first().cloned();
    srv.leafs
        .no_advertise
        .store(c.no_advertise, Ordering::Release);
    *srv.leafs
        .settings
        .write()
        .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(settings));
    if let Some(listener) = listener {
        let accept_srv = Arc::clone(srv);
        task = Some(crate::link::spawn_accept_loop::<T, _>(
            listener,
            shutdown.clone(),
            "leafnode",
            move |stream, peer| {
                let srv = Arc::clone(&accept_srv);
                let tls = hub_tls.clone().map_or(LinkTls::Plain, LinkTls::Hub);
                tokio::spawn(super::conn::run(
                    srv,
                    stream,
                    peer,
                    LeafRole::Accepted,
                    tls,
                    LinkSetup::default(),
                ));
            },
        ));
    }
    for (((remote, urls), tls), creds) in c
        .remotes
        .iter()
        .zip(remotes)
        .zip(remote_tls)
        .zip(remote_creds)
    {
        if !urls.is_empty() {
            let auth = RemoteAuth { tls, creds };
            spawn_remote::<T>(Arc::clone(srv), remote.clone(), urls, auth, c.reconnect);
        }
    }
    Ok(task)
}

/// What a remote's links authenticate and protect themselves with.
struct RemoteAuth {
    tls: Option<Arc<LeafTlsClient>>,
    creds: Option<Arc<LeafCredentials>>,
}

/// Dials a remote's URLs in turn, forever: runs the link, then waits `reconnect` (plus
/// jitter) and dials again (Go: leafnode.go reConnectToRemoteLeafNode).
fn spawn_remote<T: Transport>(
    srv: Arc<Shared>,
    remote: LeafRemote,
    urls: Vec<RouteUrl>,
    auth: RemoteAuth,
    reconnect: Duration,
) {
    let RemoteAuth { tls, creds } = auth;
    // Go: leafnode.go — a remote's deny lists become the link's permissions.
    let setup = LinkSetup {
        deny: (!remote.deny_exports.is_empty() || !remote.deny_imports.is_empty())
            .then(|| (remote.deny_exports.clone(), remote.deny_imports.clone())),
        creds,
    };
    tokio::spawn(async move {
        let account = remote
            .account
            .clone()
            .unwrap_or_else(|| GLOBAL_ACCOUNT.to_owned());
        // The configured URLs, then those the hub's cluster told us of (Go: leafNodeCfg
        // urls, rebuilt by doUpdateLNURLs from each INFO).
        let mut all = urls.clone();
        let mut i = 0usize;
        let mut wait = false;
        // Go: leafnode.go setConnectDelay — after a loop, the next attempt waits longer.
        let mut delay: Option<Duration> = None;
        loop {
            if wait {
                let jitter = srv.next_seed() % RECONNECT_JITTER_MS;
                let pause = delay.take().unwrap_or(reconnect);
                tokio::time::sleep(pause + Duration::from_millis(jitter)).await;
            }
            wait = true;
            if srv.leafs.shutting_down.load(Ordering::Acquire) {
                return;
            }
            let url = &all[i % all.len()];
            i = i.wrapping_add(1);
            let addr = match url.resolve().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(url = %url, "error resolving leafnode remote: {e}");
                    continue;
                }
            };
            match T::connect(addr).await {
                Ok(stream) => {
                    let role = LeafRole::Solicited {
                        user: url.user.clone(),
                        pass: url.pass.clone(),
                        account: account.clone(),
                    };
                    let tls = LinkTls::Leaf {
                        client: tls.clone(),
                        host: tls_name(&urls, url),
                        wanted: tls.is_some(),
                    };
                    let end =
                        super::conn::run(Arc::clone(&srv), stream, addr, role, tls, setup.clone())
                            .await;
                    if end.looped {
                        delay = Some(natsd_core::leaf::LOOP_RECONNECT_DELAY);
                    }
                    if let Some(learned) = end.leaf_urls {
                        all = with_learned(&urls, &learned);
                    }
                }
                Err(e) => {
                    // Go: "Error trying to connect as leafnode to remote server %q (attempt %v): %v".
                    tracing::debug!(url = %url, "Error trying to connect as leafnode to remote server: {e}");
                }
            }
        }
    });
}

/// A remote's URLs: the configured ones, then each learned `host:port` that none of them
/// names (Go: leafnode.go doUpdateLNURLs). A learned URL carries the credentials of the first
/// configured URL that has some (Go: saveUserPassword), as the hub's INFO names none.
fn with_learned(configured: &[RouteUrl], learned: &[String]) -> Vec<RouteUrl> {
    let cred = configured.iter().find(|u| u.user.is_some());
    let mut all = configured.to_vec();
    for hp in learned {
        let Ok(mut u) = RouteUrl::parse(hp) else {
            tracing::debug!(url = %hp, "ignoring a bad leafnode URL from the hub");
            continue;
        };
        if all.iter().any(|c| c.host_port() == u.host_port()) {
            continue;
        }
        if let Some(c) = cred {
            u.user.clone_from(&c.user);
            u.pass.clone_from(&c.pass);
        }
        all.push(u);
    }
    all
}

/// The name a TLS link to `url` checks the hub's certificate against: its host, or for an
/// IP address the first configured host name (Go: leafNodeCfg saveTLSHostname — a learned URL
/// is usually an IP address while the certificate names the host).
fn tls_name(configured: &[RouteUrl], url: &RouteUrl) -> String {
    if url.host.parse::<IpAddr>().is_ok() {
        if let Some(name) = configured
            .iter()
            .find(|c| c.host.parse::<IpAddr>().is_err())
        {
            return name.host.clone();
        }
    }
    url.host.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> RouteUrl {
        RouteUrl::parse(s).unwrap()
    }

    #[test]
    fn learned_urls_follow_the_configured_ones_with_their_credentials() {
        let configured = [url("nats-leaf://u:p@127.0.0.1:7422")];
        let all = with_learned(
            &configured,
            &[
                "127.0.0.1:7422".into(),
                "127.0.0.1:7423".into(),
                "bad".into(),
            ],
        );
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].host_port(), "127.0.0.1:7423");
        assert_eq!(all[1].user.as_deref(), Some("u"));
        assert_eq!(all[1].pass.as_deref(), Some("p"));
        // A newer list replaces the older one.
        let all = with_learned(&configured, &["127.0.0.1:7424".into()]);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].port, 7424);
    }

    #[test]
    fn a_learned_ip_url_checks_the_configured_host_name() {
        let configured = [url("tls://hub.example:7422")];
        assert_eq!(tls_name(&configured, &url("10.0.0.2:7422")), "hub.example");
        assert_eq!(
            tls_name(&configured, &url("hub2.example:7422")),
            "hub2.example"
        );
        let ips = [url("tls://10.0.0.1:7422")];
        assert_eq!(tls_name(&ips, &url("10.0.0.2:7422")), "10.0.0.2");
    }
}
