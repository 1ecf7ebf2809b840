//! Server lifecycle beyond start/stop: configuration reload, lame duck mode, accounts.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use natsd_core::account::Account;
use natsd_core::conn::CloseReason;
use natsd_core::options::Options;

use super::{build_accounts, client_config, lock, Server, ServerError, Shared};
use crate::tls::TlsSetup;
use crate::transport::Transport;

/// Changing these needs a restart (Go: server/reload.go rejects them the same way).
fn check_not_reloadable(old: &Options, new: &Options) -> Result<(), ServerError> {
    let mut bad = Vec::new();
    if old.host != new.host {
        bad.push("host");
    }
    if old.port != new.port {
        bad.push("port");
    }
    if old.http_host != new.http_host {
        bad.push("http_host");
    }
    if old.http_port != new.http_port {
        bad.push("http_port");
    }
    if old.https_port != new.https_port {
        bad.push("https_port");
    }
    if old.server_name != new.server_name {
        bad.push("server_name");
    }
    if old.system_account != new.system_account {
        bad.push("system_account");
    }
    // Go: the gateway block is not reloadable (its listener and dialers start once).
    if old.gateway != new.gateway {
        bad.push("gateway");
    }
    // Go 2.12 refuses to reload `jetstream { strict }` (NoJetStreamStrict is not reloadable).
    if let (Some(o), Some(n)) = (&old.jetstream, &new.jetstream) {
        if o.strict != n.strict {
            bad.push("jetstream strict");
        }
    }
    // Imports of an account that already exists are wired into live sublists: not reloadable
    // here yet (new accounts, users, permissions and limits are).
    for a in &new.accounts {
        if let Some(o) = old.accounts.iter().find(|o| o.name == a.name) {
            if o.imports != a.imports || o.exports != a.exports {
                bad.push("account imports/exports");
                break;
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(ServerError::Config(format!(
            "config reload not supported for {}",
            bad.join(", ")
        )))
    }
}

impl Shared {
    /// Swaps in new options. Either everything applies or nothing does.
    pub(crate) fn reload_options(&self, mut new: Options) -> Result<(), ServerError> {
        let old = self.opts();
        if new.config_file.is_none() {
            new.config_file.clone_from(&old.config_file);
        }
        check_not_reloadable(&old, &new)?;
        let existing = self
            .accounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let accounts = build_accounts(&new, &existing)?;
        let tls = new
            .tls
            .as_ref()
            .map(|t| TlsSetup::new(t).map(Arc::new))
            .transpose()
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        let port = self.client_config().info.port;
        let cfg = Arc::new(client_config(
            &new,
            &self.server_id,
            &self.server_name,
            port,
        )?);
        // Everything validated: apply.
        *self.accounts.write().unwrap_or_else(|e| e.into_inner()) = accounts;
        *self.tls.write().unwrap_or_else(|e| e.into_inner()) = tls;
        *self.client_cfg.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&cfg);
        *self.opts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        *lock(&self.config_load_time) = self.wall_clock();
        self.recheck_clients(&cfg);
        // Accounts may have gained or lost JetStream.
        crate::jetstream::reconfigure(self);
        tracing::info!("Reloaded server configuration");
        Ok(())
    }

    /// Go: clients whose credentials no longer authenticate are closed after a reload. natsd
    /// also closes those whose account or permissions changed, since a live connection's
    /// permissions are fixed; they reconnect under the new rules.
    fn recheck_clients(&self, cfg: &natsd_core::conn::ClientConfig) {
        let verify_and_map = self.opts().tls.as_ref().is_some_and(|t| t.verify_and_map);
        let records: Vec<_> = lock(&self.auth_records)
            .iter()
            .map(|(id, r)| (*id, r.clone()))
            .collect();
        for (id, rec) in records {
            let again = cfg.authenticator.authenticate(
                &rec.connect,
                rec.nonce.as_bytes(),
                &[],
                natsd_core::auth::ConnType::Standard,
            );
            let keep = match again {
                Ok(o) => {
                    o.account == rec.outcome.account && o.permissions == rec.outcome.permissions
                }
                // A certificate-mapped identity cannot be re-checked without the certificate.
                Err(_) => verify_and_map,
            };
            if !keep {
                if let Some(e) = self.get_client(id) {
                    tracing::info!(cid = id, "closing client: credentials changed by reload");
                    e.shared.close(CloseReason::AuthenticationViolation);
                }
            }
        }
    }

    /// Sends every client an INFO with `ldm: true` so that it reconnects elsewhere.
    /// Go: server.go sendLDMToClients — the INFO lists only the peers (unless `no_advertise`),
    /// so clients move elsewhere; later cluster updates leave this server out as well.
    fn announce_lame_duck(&self) {
        let mut info = self.client_config().info.clone();
        info.ldm = true;
        let own = self.own_client_urls();
        info.connect_urls.retain(|u| !own.contains(u));
        self.send_async_info(&info);
    }
}

impl<T: Transport> Server<T> {
    /// Re-reads the config file the server was started from and applies it. A bad file is
    /// rejected with its error and the running configuration stays.
    pub fn reload(&self) -> Result<(), ServerError> {
        let path = self
            .shared
            .opts()
            .config_file
            .clone()
            .ok_or_else(|| ServerError::Config("no config file to reload".to_owned()))?;
        let loaded = crate::config::load(&path).map_err(ServerError::Config)?;
        self.reload_options(loaded.options)
    }

    /// Applies new options (users, permissions, accounts, TLS, limits, logging flags). New
    /// connections use them at once; existing clients whose credentials no longer pass are
    /// closed. Listen addresses cannot change.
    pub fn reload_options(&self, opts: Options) -> Result<(), ServerError> {
        self.shared.reload_options(opts)
    }

    /// Registers a new, empty account (no imports). Fails if it exists.
    pub fn register_account(&self, name: &str) -> Result<Arc<Account>, ServerError> {
        let mut accounts = self
            .shared
            .accounts
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if accounts.contains_key(name) {
            return Err(ServerError::Config(format!(
                "account {name:?} already exists"
            )));
        }
        let acc = Account::new(name);
        accounts.insert(name.to_owned(), Arc::clone(&acc));
        Ok(acc)
    }

    /// Makes `name` (which must exist) the system account.
    pub fn set_system_account(&self, name: &str) -> Result<(), ServerError> {
        if self.shared.lookup_account(name).is_none() {
            return Err(ServerError::Config(format!(
                "account {name:?} does not exist"
            )));
        }
        let mut opts = (*self.shared.opts()).clone();
        opts.system_account = Some(name.to_owned());
        *self.shared.opts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(opts);
        crate::sys::restart(&self.shared);
        Ok(())
    }

    /// Is the server in lame duck mode?
    pub fn is_lame_duck(&self) -> bool {
        self.shared.lame_duck.load(Ordering::Acquire)
    }

    /// Lame duck mode: stop accepting, tell clients (INFO `ldm: true`), wait
    /// `lame_duck_grace_period`, then close the clients spread over the rest of
    /// `lame_duck_duration`, then shut down. Returns once shut down.
    pub async fn lame_duck(&self) {
        if self.shared.lame_duck.swap(true, Ordering::AcqRel) || !self.running() {
            return;
        }
        let opts = self.shared.opts();
        tracing::info!("Entering lame duck mode, stop accepting new clients");
        let _ = self.stop_accept_tx.send(true);
        crate::sys::events::lame_duck(&self.shared);
        self.shared.announce_lame_duck();
        let grace = opts.lame_duck_grace_period;
        let spread = opts.lame_duck_duration.saturating_sub(grace);
        let mut shutdown = self.shutdown_tx.subscribe();
        tokio::select! {
            () = tokio::time::sleep(grace) => {}
            _ = shutdown.changed() => return,
        }
        let clients: BTreeMap<u64, _> = self
            .shared
            .clients_snapshot()
            .into_iter()
            .map(|c| (c.shared.id, c))
            .collect();
        let n = clients.len().max(1) as u32;
        let pause = (spread / n).min(Duration::from_secs(1));
        tracing::info!(
            "Closing {} existing clients over {:?}",
            clients.len(),
            pause * n
        );
        for c in clients.values() {
            c.shared.close(CloseReason::LameDuckMode);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use natsd_core::options::JetStreamConfig;

    use super::*;

    #[test]
    fn jetstream_strict_is_not_reloadable() {
        let with = |strict| Options {
            jetstream: Some(JetStreamConfig {
                strict,
                ..JetStreamConfig::default()
            }),
            ..Options::default()
        };
        assert!(check_not_reloadable(&with(true), &with(true)).is_ok());
        let e = check_not_reloadable(&with(true), &with(false)).unwrap_err();
        assert!(e.to_string().contains("jetstream strict"), "{e}");
    }
}
