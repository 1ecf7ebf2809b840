//! A configuration reload changes which accounts have JetStream, while it runs.
//!
//! Go: reloadAuthorization ends with enableJetStreamAccounts → configJetStream per account:
//! an account whose config gained `jetstream` gets it (EnableJetStream, after
//! sufficientResources), one whose limits changed gets them (UpdateJetStreamLimits, checked
//! on their growth), and one that lost it is disabled (DisableJetStream: its streams stop,
//! their files stay) and answers 10039 like any account without JetStream.

use std::sync::atomic::Ordering;

use natsd_core::jetstream::api::ApiError;
use natsd_core::jetstream::limits::{
    jetstream_accounts, limits_growth, sufficient_resources, AccountLimits, ServerCapacity,
};

use super::{
    answer_not_enabled_in, subscribe, unsubscribe_account, worker, AccountChange, Input, Opener,
};
use crate::server::{lock, Shared};

/// Applies the options a reload just installed to the running JetStream (nothing when it is
/// off: turning JetStream itself on or off needs a restart here).
pub(crate) fn reconfigure(srv: &Shared) {
    if !srv.js.enabled.load(Ordering::Acquire) {
        return;
    }
    let opts = srv.opts();
    let (Some(cfg), Some(tx)) = (opts.jetstream.clone(), lock(&srv.js.tx).clone()) else {
        return;
    };
    let want = jetstream_accounts(&opts);
    let mut have = lock(&srv.js.limits).clone();
    let send = |c: AccountChange| {
        // The worker is gone only when JetStream is stopping, and then nothing matters.
        let _ = tx.try_send(Input::Account(c));
    };
    // Losses first: what they held no longer counts against the ones that gain.
    let lost: Vec<String> = have
        .keys()
        .filter(|n| !want.iter().any(|(w, _)| w == *n))
        .cloned()
        .collect();
    for name in lost {
        tracing::info!("Disabling JetStream for account {name:?}");
        have.remove(&name);
        send(AccountChange::Remove(name));
    }
    let opener = Opener::new(srv, cfg.clone(), tx.clone());
    let mut capacity = {
        let stats = lock(&srv.js.stats);
        ServerCapacity {
            max_memory: cfg.max_memory_store,
            max_file: cfg.max_file_store,
            reserved_memory: stats.reserved_memory,
            reserved_storage: stats.reserved_storage,
        }
    };
    for (name, limits) in want {
        let enabled: Vec<AccountLimits> = have.values().copied().collect();
        if let Some(old) = have.get(&name).copied() {
            if old == limits {
                continue;
            }
            match sufficient_resources(&capacity, &enabled, &limits_growth(&old, &limits)) {
                Ok(()) => {
                    have.insert(name.clone(), limits);
                    send(AccountChange::Limits(name, limits));
                }
                Err(e) => refused(&name, &e),
            }
            continue;
        }
        if let Err(e) = sufficient_resources(&capacity, &enabled, &limits) {
            refused(&name, &e);
            continue;
        }
        let Some(acc) = srv.lookup_account(&name) else {
            continue;
        };
        tracing::info!("Enabling JetStream for account {name:?}");
        let (sink, js) = opener.open(srv, &name, &acc, limits);
        // Its recovered streams reserve before the next account is checked.
        let (mem, file) = js.reserved();
        capacity.reserved_memory += mem;
        capacity.reserved_storage += file;
        have.insert(name.clone(), limits);
        // Queued before the API subscription exists, so no request can reach the worker
        // ahead of the account it is for.
        send(AccountChange::Add(Box::new(worker::AccountJs::new(
            name,
            acc.clone(),
            sink.clone(),
            js,
        ))));
        unsubscribe_account(srv, &acc);
        for s in opener.api_subjects() {
            subscribe(srv, &acc, &sink, &s);
        }
    }
    // An account the reload created without JetStream answers 10039 like the others (one
    // that just lost it is given that answer by the worker, once it has let go).
    let subscribed: Vec<_> = lock(&srv.js.subs).iter().map(|(a, _)| a.clone()).collect();
    for acc in srv.accounts_snapshot() {
        let known = subscribed.iter().any(|a| std::sync::Arc::ptr_eq(a, &acc));
        if !known && !have.contains_key(&acc.name) {
            answer_not_enabled_in(srv, &opts, &acc);
        }
    }
    *lock(&srv.js.limits) = have;
}

/// Go logs the failure and carries on with the reload; the account stays as it was.
fn refused(name: &str, e: &ApiError) {
    tracing::error!(
        "Error enabling jetstream on configured accounts: {} ({}) (account {name:?})",
        e.description,
        e.err_code
    );
}
