//! The client INFO's cluster fields (`connect_urls`, `cluster`) and the asynchronous INFO
//! sent to clients when they change.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use natsd_core::conn::ClientConfig;
use natsd_core::proto::info::ServerInfo;

use super::{urls, Shared};

impl Shared {
    /// This server's own client URLs (`host:port`), as gossiped to routes and listed in
    /// `connect_urls`: `client_advertise`, else the listen address, or the machine's addresses
    /// when that is unspecified.
    pub(crate) fn own_client_urls(&self) -> Vec<String> {
        let opts = self.opts();
        let info = &self.client_config().info;
        urls::client_connect_urls(opts.client_advertise.as_deref(), &info.host, info.port)
    }

    /// Recomputes the cluster fields of the client INFO (`connect_urls`, `cluster`) and, when
    /// they changed, sends the new INFO to every connected client (Go:
    /// sendAsyncInfoToClients).
    pub(crate) fn update_client_urls(&self) {
        if !self.cluster.enabled {
            return;
        }
        let opts = self.opts();
        // Go: server.go sendLDMToClients — once in lame duck mode this server no longer
        // offers itself, only its peers.
        let mut urls = if self.lame_duck.load(Ordering::Acquire) {
            Vec::new()
        } else {
            self.own_client_urls()
        };
        if !opts.no_advertise {
            for u in self.cluster.peer_client_urls() {
                if !urls.contains(&u) {
                    urls.push(u);
                }
            }
        }
        let name = Some(self.cluster.name());
        let info = {
            let mut cfg = self.client_cfg.write().unwrap_or_else(|e| e.into_inner());
            if cfg.info.connect_urls == urls && cfg.info.cluster == name {
                return;
            }
            let mut info = cfg.info.clone();
            info.connect_urls = urls;
            info.cluster = name;
            *cfg = Arc::new(ClientConfig {
                info: info.clone(),
                max_control_line: cfg.max_control_line,
                max_payload: cfg.max_payload,
                ping_interval: cfg.ping_interval,
                ping_max: cfg.ping_max,
                auth_timeout: cfg.auth_timeout,
                authenticator: Arc::clone(&cfg.authenticator),
            });
            // After the swap: a connection accepted before this bump may hold the old INFO.
            self.info_gen.fetch_add(1, Ordering::AcqRel);
            info
        };
        self.send_async_info(&info);
    }

    /// Sends `info` to every client that is past CONNECT and takes asynchronous INFO
    /// (protocol 1), each copy with that client's own `client_id` and `client_ip`.
    /// Go: server/route.go sendAsyncInfoToClients, client.go generateClientInfoJSON.
    pub(crate) fn send_async_info(&self, info: &ServerInfo) {
        let mut info = info.clone();
        let mut buf = bytes::BytesMut::new();
        for c in self.clients_snapshot() {
            if c.account.is_none() || c.protocol < 1 {
                continue;
            }
            buf.clear();
            info.client_id = c.shared.id;
            info.client_ip = c.peer.ip().to_canonical().to_string();
            natsd_core::proto::client::encode_info(&mut buf, &info);
            c.shared.send_control(&buf);
        }
    }
}
