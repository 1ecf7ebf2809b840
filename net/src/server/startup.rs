//! Building and starting a server: identity and seed, the client and monitoring listeners,
//! and the accept loop.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, VecDeque};
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use natsd_core::conn::CloseReason;
use natsd_core::options::{Options, GLOBAL_ACCOUNT};
use natsd_core::rng::SplitMix64;
use tokio::sync::watch;

use super::setup::{build_accounts, client_config};
use super::{lock, Server, ServerError, Shared};
use crate::client;
use crate::tls::TlsSetup;
use crate::transport::{Tokio, Transport};

/// Binds a listener and reads back the address it got (the port, when 0 asked for any).
pub(crate) async fn bind_listener<T: Transport>(
    addr: SocketAddr,
) -> Result<(T::Listener, SocketAddr), ServerError> {
    let listen_err = |source| ServerError::Listen {
        addr: addr.to_string(),
        source,
    };
    let listener = T::bind(addr).await.map_err(listen_err)?;
    let mut bound = T::local_addr(&listener).map_err(listen_err)?;
    if addr.ip().is_unspecified() {
        // A dual-stack listener asked for as 0.0.0.0 reports `[::]`; keep the asked-for form
        // in logs and monitoring, as nats-server does.
        bound = SocketAddr::new(addr.ip(), bound.port());
    }
    Ok((listener, bound))
}

fn server_identity(seed: u64) -> String {
    let mut raw = [0u8; 32];
    SplitMix64::new(seed).fill(&mut raw);
    nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::Server, raw)
        .map(|kp| kp.public_key())
        .unwrap_or_else(|_| format!("N{seed:016X}"))
}

/// A seed from the OS: production runs log it so a run can be related to its choices.
pub fn os_seed() -> u64 {
    RandomState::new().hash_one((SystemTime::now(), std::process::id()))
}

impl Server<Tokio> {
    /// Builds a server from options, with a seed drawn from the OS.
    pub fn new(opts: Options) -> Result<Self, ServerError> {
        Self::with_seed(opts, os_seed())
    }
}

impl<T: Transport> Server<T> {
    /// Builds a server whose every random choice derives from `seed`.
    pub fn with_seed(opts: Options, seed: u64) -> Result<Self, ServerError> {
        let mut rng = SplitMix64::new(seed);
        let server_id = server_identity(rng.next_u64());
        let server_name = opts
            .server_name
            .clone()
            .unwrap_or_else(|| server_id.clone());
        let accounts = build_accounts(&opts, &BTreeMap::new())?;
        let server_id_for_gateways = server_id.clone();
        let default_account = Arc::clone(&accounts[GLOBAL_ACCOUNT]);
        let tls = opts
            .tls
            .as_ref()
            .map(|t| TlsSetup::new(t).map(Arc::new))
            .transpose()
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        let cfg = client_config(&opts, &server_id, &server_name, opts.port.unwrap_or(0))?;
        let cluster_enabled = opts.cluster.is_some();
        let leaf_enabled = opts.leafnodes.is_some();
        let name_seed = rng.next_u64();
        let gateway = opts.gateway.clone().filter(|g| g.enabled());
        let gateway_name = gateway.as_ref().map(|g| g.name.clone()).unwrap_or_default();
        // Go: server.go validateCluster — a cluster without a name takes its gateway's.
        let named = opts.cluster.as_ref().and_then(|c| c.name.clone());
        let (cluster_name, cluster_dynamic) =
            match named.or_else(|| gateway.as_ref().map(|g| g.name.clone())) {
                Some(n) => (n, false),
                // Go: an unnamed cluster starts with a generated name that may give way.
                None => (crate::route::generated_name(name_seed), true),
            };
        let (shutdown_tx, _) = watch::channel(false);
        let (stop_accept_tx, _) = watch::channel(false);
        let (ready_tx, _) = watch::channel(false);
        Ok(Self {
            _transport: std::marker::PhantomData,
            shared: Arc::new(Shared {
                opts: RwLock::new(Arc::new(opts)),
                client_cfg: RwLock::new(Arc::new(cfg)),
                accounts: RwLock::new(accounts),
                default_account: RwLock::new(default_account),
                clients: Mutex::new(BTreeMap::new()),
                next_cid: AtomicU64::new(1),
                rng: Mutex::new(rng),
                server_id,
                server_name,
                in_msgs: AtomicU64::new(0),
                in_bytes: AtomicU64::new(0),
                total_connections: AtomicU64::new(0),
                slow_consumers: AtomicU64::new(0),
                closed_out_msgs: AtomicU64::new(0),
                closed_out_bytes: AtomicU64::new(0),
                closed: Mutex::new(VecDeque::new()),
                account_totals: Mutex::new(BTreeMap::new()),
                http_req_stats: Mutex::new(BTreeMap::new()),
                config_load_time: Mutex::new(T::wall_clock()),
                cpu_sample: Mutex::new(None),
                http_addr: Mutex::new(None),
                https_addr: Mutex::new(None),
                lame_duck: AtomicBool::new(false),
                info_gen: AtomicU64::new(0),
                info_gen_at_accept: Mutex::new(BTreeMap::new()),
                tls: RwLock::new(tls),
                auth_records: Mutex::new(BTreeMap::new()),
                sys: crate::sys::SysState::default(),
                js: crate::jetstream::JsState::default(),
                start_time: T::wall_clock(),
                wall_clock: T::wall_clock,
                cluster: Arc::new(crate::route::Cluster::new(
                    cluster_enabled,
                    cluster_name,
                    cluster_dynamic,
                )),
                leafs: Arc::new(crate::leaf::Leafs::new(leaf_enabled)),
                gateways: Arc::new(crate::gateway::Gateways::new(
                    gateway.is_some(),
                    gateway_name,
                    &server_id_for_gateways,
                )),
            }),
            client_addr: Mutex::new(None),
            shutdown_tx,
            stop_accept_tx,
            running: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            ready_tx,
        })
    }

    /// Binds the client listener and starts accepting. Must be called within a tokio runtime.
    pub async fn start(&self) -> Result<(), ServerError> {
        let opts = self.shared.opts();
        let host: IpAddr = opts
            .host
            .parse()
            .map_err(|_| ServerError::Config(format!("invalid listen host {:?}", opts.host)))?;
        let addr = SocketAddr::new(host, opts.port.unwrap_or(0));
        let (listener, bound) = bind_listener::<T>(addr).await?;
        if bound.port() != opts.port.unwrap_or(0) {
            // A random port: INFO must carry the real one.
            let cfg = client_config(
                &opts,
                &self.shared.server_id,
                &self.shared.server_name,
                bound.port(),
            )?;
            *self
                .shared
                .client_cfg
                .write()
                .unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
        }
        *lock(&self.client_addr) = Some(bound);
        // Before the first client can connect: `$JS.API` must answer from the start.
        crate::jetstream::start(&self.shared, T::INLINE_WORKERS).map_err(ServerError::Config)?;
        tracing::info!("Listening for client connections on {bound}");
        if self.shared.tls().is_some() {
            tracing::info!("TLS required for client connections");
        }
        let shared = Arc::clone(&self.shared);
        let mut shutdown = self.shutdown_tx.subscribe();
        let mut stop_accept = self.stop_accept_tx.subscribe();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = T::accept(&listener) => match r {
                        Ok((stream, peer)) => accept::<T>(&shared, shared.tls(), stream, peer),
                        Err(e) => {
                            tracing::error!("Error accepting client connection: {e}");
                            // Out of file descriptors and the like: back off instead of spinning.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                    _ = shutdown.changed() => break,
                    _ = stop_accept.changed() => break,
                }
            }
        });
        lock(&self.tasks).push(task);
        // Leaf nodes before routes, as nats-server starts them: our route INFO carries the
        // bound leaf listener's URL (`leafnode_urls`).
        if let Some(t) =
            crate::leaf::dial::start::<T>(&self.shared, &opts, self.shutdown_tx.subscribe()).await?
        {
            lock(&self.tasks).push(t);
        }
        let own_urls = self.shared.own_client_urls();
        if let Some(t) = crate::route::dial::start::<T>(
            &self.shared,
            &opts,
            own_urls,
            self.shutdown_tx.subscribe(),
        )
        .await?
        {
            lock(&self.tasks).push(t);
            self.shared.update_client_urls();
        }
        if let Some(t) =
            crate::gateway::dial::start::<T>(&self.shared, &opts, self.shutdown_tx.subscribe())
                .await?
        {
            lock(&self.tasks).push(t);
        }
        self.start_monitoring(&opts).await?;
        let sys_tasks = crate::sys::start(&self.shared, self.shutdown_tx.subscribe());
        lock(&self.tasks).extend(sys_tasks);
        self.running.store(true, Ordering::Release);
        let _ = self.ready_tx.send(true);
        tracing::info!("Server is ready");
        Ok(())
    }

    /// Waits until the server accepts connections, at most `timeout`.
    pub async fn ready_for_connections(&self, timeout: Duration) -> bool {
        let mut rx = self.ready_tx.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    async fn start_monitoring(&self, opts: &Options) -> Result<(), ServerError> {
        let ports = [(opts.http_port, false), (opts.https_port, true)];
        for (port, secure) in ports {
            let Some(port) = port else { continue };
            let acceptor = if secure {
                let tls = opts.tls.as_ref().ok_or_else(|| {
                    ServerError::Config("https_port requires a tls block".to_owned())
                })?;
                // Go: monitoring over HTTPS uses the client TLS config without client certs.
                let cfg = natsd_core::options::TlsConfig {
                    verify: false,
                    verify_and_map: false,
                    handshake_first: None,
                    ..tls.clone()
                };
                Some(
                    TlsSetup::new(&cfg)
                        .map_err(|e| ServerError::Tls(e.to_string()))?
                        .acceptor(),
                )
            } else {
                None
            };
            let host: IpAddr = opts.http_host.parse().map_err(|_| {
                ServerError::Config(format!("invalid monitoring host {:?}", opts.http_host))
            })?;
            let addr = SocketAddr::new(host, port);
            let (listener, bound) = bind_listener::<T>(addr).await?;
            let scheme = if secure { "https" } else { "http" };
            tracing::info!("Starting {scheme} monitor on {scheme}://{bound}");
            if secure {
                *lock(&self.shared.https_addr) = Some(bound);
            } else {
                *lock(&self.shared.http_addr) = Some(bound);
            }
            let task = tokio::spawn(crate::monitor::serve::<T>(
                Arc::clone(&self.shared),
                listener,
                acceptor,
                self.shutdown_tx.subscribe(),
            ));
            lock(&self.tasks).push(task);
        }
        Ok(())
    }
}

fn accept<T: Transport>(
    shared: &Arc<Shared>,
    tls: Option<Arc<TlsSetup>>,
    stream: T::Stream,
    peer: SocketAddr,
) {
    let id = shared.next_cid.fetch_add(1, Ordering::Relaxed);
    // Before the connection's INFO is built (see set_client_identity).
    lock(&shared.info_gen_at_accept).insert(id, shared.info_gen.load(Ordering::Acquire));
    let mut rng = SplitMix64::new(shared.next_seed());
    let rejected = (shared.num_clients() >= shared.opts().max_connections as usize)
        .then_some(CloseReason::MaxConnectionsExceeded);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        match tls {
            None => {
                let conn = client::new_conn(&shared, peer, id, &mut rng);
                client::run(Arc::clone(&shared), stream, peer, conn, rng, rejected).await;
            }
            // Boxed: the TLS session makes this branch's future several KiB, and unboxed
            // every plain connection's task would be that size too.
            Some(tls) => match Box::pin(tls.accept(&shared, stream, peer, id, &mut rng)).await {
                Ok((tls_stream, conn)) => {
                    Box::pin(client::run(
                        Arc::clone(&shared),
                        tls_stream,
                        peer,
                        conn,
                        rng,
                        rejected,
                    ))
                    .await;
                }
                Err(e) => tracing::debug!(cid = id, %peer, "TLS handshake error: {e}"),
            },
        }
        // A connection that never registered (failed TLS handshake) leaves no record.
        lock(&shared.info_gen_at_accept).remove(&id);
    });
}
