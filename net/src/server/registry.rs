//! The registry of live and closed client connections, and the account lookup.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::auth::AuthOutcome;
use natsd_core::conn::CloseReason;
use natsd_core::options::DEFAULT_SYSTEM_ACCOUNT;
use natsd_core::proto::info::ConnectInfo;
use natsd_core::router::ClientShared;

use super::counters::unix_nanos;
use super::{lock, Shared};

/// What the server keeps about a connection (for monitoring and the embedding API).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientEntry {
    /// The router's view of the connection.
    pub shared: Arc<ClientShared>,
    /// Peer address.
    pub peer: SocketAddr,
    /// When it connected.
    pub start: SystemTime,
    /// Account name, once CONNECT was accepted.
    pub account: Option<String>,
    /// Authenticated user.
    pub user: Option<String>,
    /// Client name from CONNECT.
    pub name: Option<String>,
    /// Client library language.
    pub lang: Option<String>,
    /// Client library version.
    pub version: Option<String>,
    /// Protocol level from CONNECT (1 and up take asynchronous INFO updates).
    pub protocol: i32,
    /// Wall-clock time of the last input, in nanoseconds since the Unix epoch.
    pub last_activity: Arc<AtomicU64>,
}

impl ClientEntry {
    /// The last time the client sent anything.
    pub fn last_activity(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.last_activity.load(Ordering::Relaxed))
    }
}

/// A connection that has gone, kept in a bounded ring for `/connz?state=closed`.
#[derive(Debug, Clone)]
pub struct ClosedClient {
    /// What was known about it while it was open.
    pub entry: ClientEntry,
    /// When it closed.
    pub stop: SystemTime,
    /// Why it closed.
    pub reason: CloseReason,
    /// Its subscriptions at the time (subject, queue, sid).
    pub subs: Vec<(Bytes, Option<Bytes>, Bytes)>,
}

/// A client's CONNECT and nonce, kept to authenticate it again after a reload. Holds secrets:
/// never shown, and its Debug output is redacted.
#[derive(Clone)]
pub(crate) struct AuthRecord {
    pub(crate) connect: ConnectInfo,
    pub(crate) nonce: String,
    pub(crate) outcome: AuthOutcome,
}

impl std::fmt::Debug for AuthRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthRecord([REDACTED])")
    }
}

impl Shared {
    pub(crate) fn lookup_account(&self, name: &str) -> Option<Arc<Account>> {
        self.accounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub(crate) fn default_account(&self) -> Arc<Account> {
        Arc::clone(
            &self
                .default_account
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    pub(crate) fn register_client(
        &self,
        id: u64,
        shared: &Arc<ClientShared>,
        peer: SocketAddr,
    ) -> Arc<AtomicU64> {
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        let hook: Option<Arc<dyn natsd_core::router::InterestHook>> = if self.leafs.enabled {
            Some(Arc::new(crate::leaf::ServerInterest {
                cluster: self.cluster.enabled.then(|| Arc::clone(&self.cluster)),
                leafs: Arc::clone(&self.leafs),
            }))
        } else if self.cluster.enabled {
            Some(self.cluster.interest_hook(self.system_account_name()))
        } else {
            None
        };
        let hook = if self.gateways.enabled {
            Some(Arc::new(crate::gateway::GatewayInterest {
                inner: hook,
                gateways: Arc::clone(&self.gateways),
            }) as Arc<dyn natsd_core::router::InterestHook>)
        } else {
            hook
        };
        if let Some(h) = hook {
            shared.set_interest_hook(h);
        }
        let start = self.wall_clock();
        let last_activity = Arc::new(AtomicU64::new(unix_nanos(start)));
        lock(&self.clients).insert(
            id,
            ClientEntry {
                shared: Arc::clone(shared),
                peer,
                start,
                account: None,
                user: None,
                name: None,
                lang: None,
                version: None,
                protocol: 0,
                last_activity: Arc::clone(&last_activity),
            },
        );
        last_activity
    }

    pub(crate) fn set_client_identity(
        &self,
        id: u64,
        outcome: &AuthOutcome,
        connect: &ConnectInfo,
        nonce: &str,
    ) {
        lock(&self.auth_records).insert(
            id,
            AuthRecord {
                connect: connect.clone(),
                nonce: nonce.to_owned(),
                outcome: outcome.clone(),
            },
        );
        if let Some(e) = lock(&self.clients).get_mut(&id) {
            e.account = Some(outcome.account.clone());
            e.user = outcome.user.clone().or_else(|| outcome.nkey.clone());
            e.name = connect.name.clone();
            e.lang = connect.lang.clone();
            e.version = connect.version.clone();
            e.protocol = connect.protocol;
        }
        // Go: client.go processPing — a client whose INFO went out before a cluster change
        // it was not yet registered to hear about gets the current INFO (before its first
        // PONG: the PING after CONNECT is read only once this event is handled).
        let accepted_at = lock(&self.info_gen_at_accept).remove(&id);
        if connect.protocol >= 1
            && accepted_at.is_some_and(|g| g != self.info_gen.load(Ordering::Acquire))
        {
            if let Some(e) = self.get_client(id) {
                let mut info = self.client_config().info.clone();
                info.client_id = id;
                info.client_ip = e.peer.ip().to_canonical().to_string();
                let mut buf = bytes::BytesMut::new();
                natsd_core::proto::client::encode_info(&mut buf, &info);
                e.shared.send_control(&buf);
            }
        }
        if let Some(e) = self.get_client(id) {
            crate::sys::events::client_connected(self, &e);
        }
    }

    pub(crate) fn get_client(&self, id: u64) -> Option<ClientEntry> {
        lock(&self.clients).get(&id).cloned()
    }

    /// Forgets a live connection and keeps its record in the closed ring. `subs` is what it
    /// was subscribed to (taken before the router dropped the subscriptions).
    pub(crate) fn unregister_client(
        &self,
        id: u64,
        reason: CloseReason,
        subs: Vec<(Bytes, Option<Bytes>, Bytes)>,
    ) {
        lock(&self.auth_records).remove(&id);
        lock(&self.info_gen_at_accept).remove(&id);
        let Some(entry) = lock(&self.clients).remove(&id) else {
            return;
        };
        let st = &entry.shared.stats;
        let (out_msgs, out_bytes) = (
            st.out_msgs.load(Ordering::Relaxed),
            st.out_bytes.load(Ordering::Relaxed),
        );
        self.closed_out_msgs.fetch_add(out_msgs, Ordering::Relaxed);
        self.closed_out_bytes
            .fetch_add(out_bytes, Ordering::Relaxed);
        let slow = matches!(
            reason,
            CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline
        );
        if slow {
            self.slow_consumers.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(acc) = &entry.account {
            let mut totals = lock(&self.account_totals);
            let t = totals.entry(acc.clone()).or_default();
            t.out_msgs += out_msgs;
            t.out_bytes += out_bytes;
            t.slow_consumers += u64::from(slow);
        }
        let closed = ClosedClient {
            entry,
            stop: self.wall_clock(),
            reason,
            subs,
        };
        crate::sys::events::client_disconnected(self, &closed);
        let max = self.opts().max_closed_clients;
        if max > 0 {
            let mut ring = lock(&self.closed);
            while ring.len() >= max {
                ring.pop_front();
            }
            ring.push_back(closed);
        }
    }

    pub(crate) fn clients_snapshot(&self) -> Vec<ClientEntry> {
        lock(&self.clients).values().cloned().collect()
    }

    pub(crate) fn accounts_snapshot(&self) -> Vec<Arc<Account>> {
        self.accounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The system account's name: `system_account`, else `$SYS`.
    pub(crate) fn system_account_name(&self) -> String {
        self.opts()
            .system_account
            .clone()
            .unwrap_or_else(|| DEFAULT_SYSTEM_ACCOUNT.to_owned())
    }

    pub(crate) fn num_clients(&self) -> usize {
        lock(&self.clients).len()
    }

    /// A fresh connection id (clients and routes share the sequence, as in nats-server).
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }
}
