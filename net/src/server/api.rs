//! The embedding API's monitoring views and JetStream switches.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::setup::client_config;
use super::{lock, ClosedClient, Server, ServerError};
use crate::monitor::types::{
    AccountStatz, Accountz, Connz, Gatewayz, HealthStatus, Jsz, Leafz, Raftz, Routez, Subsz, Varz,
};
use crate::monitor::{AccountStatzOptions, AccountzOptions, ConnzOptions, SubszOptions};
use crate::transport::Transport;
use natsd_core::jetstream::api::{err, ApiError};

impl<T: Transport> Server<T> {
    /// The bound monitoring (HTTP) address, once started with `http_port`.
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        *lock(&self.shared.http_addr)
    }

    /// The bound monitoring (HTTPS) address, once started with `https_port`.
    pub fn monitor_tls_addr(&self) -> Option<SocketAddr> {
        *lock(&self.shared.https_addr)
    }

    /// `/varz`: configuration and counters.
    pub fn varz(&self) -> Varz {
        self.shared.varz()
    }

    /// `/connz`: connections. Errors are nats-server's texts for bad options.
    pub fn connz(&self, opts: &ConnzOptions) -> Result<Connz, String> {
        self.shared.connz(opts)
    }

    /// `/subsz`: subscription counters and, on request, the subscriptions.
    pub fn subsz(&self, opts: &SubszOptions) -> Subsz {
        self.shared.subsz(opts)
    }

    /// `/routez`: the registered routes and their counters.
    pub fn routez(&self) -> Routez {
        self.shared.routez(false)
    }

    /// `/routez?subs=1`: the routes with the interest each brought.
    pub fn routez_with_subs(&self) -> Routez {
        self.shared.routez(true)
    }

    /// The bound route listener, once started with a `cluster` block.
    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        *lock(&self.shared.cluster.addr)
    }

    /// `/gatewayz`: this server's gateway connections to the other clusters.
    pub fn gatewayz(&self) -> Gatewayz {
        self.shared.gatewayz()
    }

    /// `/leafz`.
    pub fn leafz(&self) -> Leafz {
        self.shared.leafz()
    }

    /// `/accountz`: account names, or one account in detail.
    pub fn accountz(&self, opts: &AccountzOptions) -> Result<Accountz, String> {
        self.shared.accountz(opts)
    }

    /// `/accstatz`: per-account counters.
    pub fn account_statz(&self, opts: &AccountStatzOptions) -> AccountStatz {
        self.shared.account_statz(opts)
    }

    /// `/jsz`: JetStream usage (`disabled` when JetStream is off).
    pub fn jsz(&self) -> Jsz {
        self.shared.jsz()
    }

    /// Turns JetStream on with `cfg` (Go: `EnableJetStream`): every JetStream account gets its
    /// API, and streams kept in the store are recovered. Fails when it is already on.
    pub fn enable_jetstream(
        &self,
        cfg: natsd_core::options::JetStreamConfig,
    ) -> Result<(), ServerError> {
        if self.jetstream_enabled() {
            return Err(ServerError::Config("jetstream already enabled".to_owned()));
        }
        self.set_jetstream_option(Some(cfg))?;
        let r = crate::jetstream::start(&self.shared, T::INLINE_WORKERS);
        if r.is_err() {
            self.set_jetstream_option(None)?;
        }
        r.map_err(ServerError::Config)
    }

    /// Turns JetStream off (Go: `DisableJetStream`): what was queued is committed, then the
    /// API stops answering (requests get no responders). The stores stay on disk.
    pub fn disable_jetstream(&self) -> Result<(), ServerError> {
        crate::jetstream::stop(&self.shared);
        self.set_jetstream_option(None)
    }

    /// Is JetStream on?
    pub fn jetstream_enabled(&self) -> bool {
        self.shared.js.enabled.load(Ordering::Acquire)
    }

    /// Puts JetStream's stores on the factories `f` makes (one per account, by name) from the
    /// next time JetStream starts: the simulation's fault-injecting disks, for instance.
    pub fn set_store_factory(&self, f: crate::jetstream::StoreFactoryFn) {
        self.shared.js.set_factory(f);
    }

    /// Damage found in the stores when JetStream last started them (never silent: a damaged
    /// record is skipped, not served).
    pub fn jetstream_damage(&self) -> Vec<crate::jetstream::StreamDamage> {
        self.shared.js.damage()
    }

    /// Records the JetStream config in the options (for INFO and monitoring).
    fn set_jetstream_option(
        &self,
        cfg: Option<natsd_core::options::JetStreamConfig>,
    ) -> Result<(), ServerError> {
        let mut opts = (*self.shared.opts()).clone();
        opts.jetstream = cfg;
        let port = self
            .client_addr()
            .map_or(opts.port.unwrap_or(0), |a| a.port());
        let mut cc = client_config(
            &opts,
            &self.shared.server_id,
            &self.shared.server_name,
            port,
        )?;
        // Keep what the cluster added to INFO.
        let old = self.shared.client_config();
        cc.info.connect_urls.clone_from(&old.info.connect_urls);
        cc.info.cluster.clone_from(&old.info.cluster);
        *self.shared.opts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(opts);
        *self
            .shared
            .client_cfg
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(cc);
        Ok(())
    }

    /// `/healthz`.
    pub fn healthz(&self) -> HealthStatus {
        self.shared.healthz()
    }

    /// `/raftz`: the Raft groups of clustered JetStream this server is in.
    pub fn raftz(&self) -> Raftz {
        self.shared.raftz()
    }

    /// Asks the leader of `account`'s clustered `stream` to step down (as
    /// `$JS.API.STREAM.LEADER.STEPDOWN` does); call it on the server that leads the stream
    /// (10009 otherwise, 10059 for an unknown stream, 10010 without clustered JetStream).
    /// Returns once the stepdown started: another member campaigns a moment later.
    pub fn stepdown_stream(&self, account: &str, stream: &str) -> Result<(), ApiError> {
        let c = lock(&self.shared.js.cluster).clone();
        c.ok_or_else(err::cluster_required)?
            .stepdown_stream_now(account, stream)
    }

    /// Asks the JetStream meta leader to step down (as `$JS.API.META.LEADER.STEPDOWN`
    /// does); call it on the meta leader (10009 otherwise, 10010 without clustered
    /// JetStream).
    pub fn stepdown_meta(&self) -> Result<(), ApiError> {
        let c = lock(&self.shared.js.cluster).clone();
        c.ok_or_else(err::cluster_required)?.stepdown_meta_now()
    }

    /// Recently closed connections, oldest first.
    pub fn closed_clients(&self) -> Vec<ClosedClient> {
        lock(&self.shared.closed).iter().cloned().collect()
    }
}
