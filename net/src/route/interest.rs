//! Interest across routes: what we tell the peers (`RS+`/`RS-`) and what they tell us.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::proto::route::{RemoteSub, RemoteUnsub};
use natsd_core::router::{InterestHook, RouteSink, SubRef, SubTarget, Subscription};

use super::{Cluster, ClusterState, InterestKey, RouteHandle};
use crate::server::lock;

/// The hook every client connection reports its subscriptions to. Every account's interest
/// travels, the system account's too: nats-server routes `$SYS` like any account, so that
/// `$SYS.REQ.SERVER.PING` reaches every server and events are seen cluster-wide.
#[derive(Debug)]
pub(crate) struct ClusterInterest {
    pub(crate) cluster: Arc<Cluster>,
}

impl InterestHook for ClusterInterest {
    fn interest_changed(&self, account: &str, subject: &[u8], queue: Option<&[u8]>, added: bool) {
        self.cluster.local_interest(account, subject, queue, added);
    }
}

impl Cluster {
    /// The hook a client connection reports its subscriptions through.
    pub(crate) fn interest_hook(self: &Arc<Self>, _sys_account: String) -> Arc<dyn InterestHook> {
        Arc::new(ClusterInterest {
            cluster: Arc::clone(self),
        })
    }

    /// Counts a local subscription in or out and tells every registered route when that
    /// changes what it must know: a plain subject on 0↔1, a queue group on every change (the
    /// weight is its member count). Go: server/route.go updateRouteSubscriptionMap.
    pub(crate) fn local_interest(
        &self,
        account: &str,
        subject: &[u8],
        queue: Option<&[u8]>,
        added: bool,
    ) {
        let key: InterestKey = (
            account.to_owned(),
            Bytes::copy_from_slice(subject),
            queue.map(Bytes::copy_from_slice),
        );
        let mut st = lock(&self.state);
        let count = st.interest.entry(key.clone()).or_insert(0);
        let before = *count;
        if added {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
        }
        let after = *count;
        if after == 0 {
            st.interest.remove(&key);
        }
        let send = match queue {
            Some(_) => before != after,
            None => (before == 0) != (after == 0),
        };
        if !send || !self.may_import(subject) {
            return;
        }
        for h in self.carriers(&st, account) {
            h.with(|c| {
                if after > 0 {
                    c.send_sub(account.as_bytes(), subject, queue.map(|q| (q, after)));
                } else {
                    c.send_unsub(account.as_bytes(), subject, queue);
                }
            });
        }
    }

    /// Go: route.go canImport — we only ask for subjects we may receive.
    fn may_import(&self, subject: &[u8]) -> bool {
        self.perms.get().is_none_or(|p| p.can_publish(subject))
    }

    /// The registered routes that carry `account` (one per peer: its only route, the pool
    /// connection the account hashes to, or the account's pinned route), in id order.
    fn carriers(&self, st: &ClusterState, account: &str) -> Vec<Arc<RouteHandle>> {
        st.routes
            .values()
            .filter(|e| e.info.is_some() && self.carries(e.slot.as_ref(), account))
            .map(|e| Arc::clone(&e.handle))
            .collect()
    }

    /// Sends a newly registered route our whole interest in the accounts it carries (Go:
    /// sendSubsToRoute).
    pub(crate) fn send_all_interest(&self, st: &ClusterState, h: &RouteHandle) {
        let slot = st.routes.get(&h.id).and_then(|e| e.slot.clone());
        h.with(|c| {
            for ((acc, subject, queue), n) in &st.interest {
                if !self.may_import(subject) || !self.carries(slot.as_ref(), acc) {
                    continue;
                }
                c.send_sub(
                    acc.as_bytes(),
                    subject,
                    queue.as_ref().map(|q| (&q[..], *n)),
                );
            }
        });
    }

    /// `RS+`: enter (or re-weigh) the peer's interest in the account's sublist.
    pub(crate) fn remote_sub(
        &self,
        handle: &Arc<RouteHandle>,
        account: Option<Arc<Account>>,
        sub: RemoteSub,
    ) {
        let Some(account) = account else {
            tracing::debug!(rid = handle.id, account = %String::from_utf8_lossy(&sub.account), "unknown account for remote subscription");
            return;
        };
        // Go: route.go processRemoteSub → canExport.
        if self
            .perms
            .get()
            .is_some_and(|p| !p.can_subscribe(&sub.subject, None))
        {
            tracing::debug!(rid = handle.id, subject = %String::from_utf8_lossy(&sub.subject), "can not export, ignoring remote subscription");
            return;
        }
        let key: InterestKey = (account.name.clone(), sub.subject.clone(), sub.queue.clone());
        let mut st = lock(&self.state);
        if !st.routes.contains_key(&handle.id) {
            return;
        }
        if let Some(existing) = st.remote.get(&(handle.id, key.clone())) {
            if let SubTarget::Route { weight, .. } = &existing.0.target {
                weight.store(sub.weight, Ordering::Relaxed);
            }
            return;
        }
        let route: Arc<dyn RouteSink> = Arc::clone(handle) as Arc<dyn RouteSink>;
        let entry = SubRef(Arc::new(Subscription::new(
            sub.subject.clone(),
            sub.queue.clone(),
            SubTarget::Route {
                route,
                weight: AtomicU32::new(sub.weight),
            },
        )));
        if account
            .sublist
            .insert(&sub.subject, sub.queue.as_deref(), entry.clone())
            .is_err()
        {
            tracing::debug!(rid = handle.id, subject = %String::from_utf8_lossy(&sub.subject), "invalid remote subscription");
            return;
        }
        st.remote.insert((handle.id, key), entry);
    }

    /// `RS-`: drop the peer's interest.
    pub(crate) fn remote_unsub(&self, id: u64, account: Option<Arc<Account>>, unsub: RemoteUnsub) {
        let Some(account) = account else { return };
        let key: InterestKey = (account.name.clone(), unsub.subject, unsub.queue);
        let removed = lock(&self.state).remote.remove(&(id, key));
        if let Some(sub) = removed {
            remove_from(&account, &sub);
        }
    }

    /// Drops every interest a closed route brought (Go: removeRemoteSubs).
    pub(crate) fn drop_route_interest(
        &self,
        id: u64,
        lookup: impl Fn(&str) -> Option<Arc<Account>>,
    ) {
        let subs: Vec<(String, SubRef)> = {
            let mut st = lock(&self.state);
            let keys: Vec<_> = st
                .remote
                .keys()
                .filter(|(rid, _)| *rid == id)
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| st.remote.remove(&k).map(|s| (k.1 .0, s)))
                .collect()
        };
        for (acc, sub) in subs {
            if let Some(account) = lookup(&acc) {
                remove_from(&account, &sub);
            }
        }
    }
}

fn remove_from(account: &Account, sub: &SubRef) {
    // Publishers holding an older match result skip it from now on.
    sub.0.mark_removed();
    let _ = account
        .sublist
        .remove(&sub.0.subject, sub.0.queue.as_deref(), sub);
}

/// Interest the server has on behalf of its account imports, announced to every route for the
/// life of the server (Go announces the same through internal subscriptions):
/// * `_R_.>` in every account that exports a service imported elsewhere: the responses to
///   requests that crossed a service import here are published into the exporter on the
///   responder's server, and must come back to the response mapping made on this one;
/// * a stream import's subject in the exporting account, so that messages published on other
///   servers reach the import here.
pub(crate) fn import_interest(opts: &natsd_core::options::Options) -> Vec<(String, String)> {
    use natsd_core::options::ExportKind;
    let mut v: Vec<(String, String)> = opts
        .accounts
        .iter()
        .flat_map(|a| a.imports.iter())
        .map(|imp| match imp.kind {
            ExportKind::Service => (imp.account.clone(), "_R_.>".to_owned()),
            ExportKind::Stream => (imp.account.clone(), imp.subject.clone()),
        })
        .collect();
    v.sort();
    v.dedup();
    v
}
