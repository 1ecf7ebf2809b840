//! `/jsz` (Go: server/monitor.go Jsz, accountDetail): server-wide JetStream usage and, with
//! `accounts=true` (implied by `streams`, implied by `consumers`) or `acc=<name>`, one entry
//! per JetStream account.

use std::sync::atomic::Ordering;

use natsd_core::jetstream::limits::AccountLimits;
use natsd_core::options::GLOBAL_ACCOUNT;
use serde_json::{json, Value};

use super::types::{JsApiStats, JsConfig, Jsz};
use crate::server::{lock, Shared};

/// `/jsz` query options (Go: `JSzOptions`).
#[derive(Debug, Clone, Default)]
pub struct JszOptions {
    /// `acc`: only this account's details.
    pub account: String,
    /// `accounts`: every account's details.
    pub accounts: bool,
    /// `streams`: each account's streams (implies `accounts`).
    pub streams: bool,
    /// `consumers`: each stream's consumers (implies `streams`).
    pub consumers: bool,
    /// `config`: each stream's config.
    pub config: bool,
    /// `offset` into the accounts, sorted by name.
    pub offset: usize,
    /// `limit` on the accounts (0: Go's 1024).
    pub limit: usize,
}

impl Shared {
    pub(crate) fn jsz(&self) -> Jsz {
        self.jsz_with(&JszOptions::default())
    }

    pub(crate) fn jsz_with(&self, o: &JszOptions) -> Jsz {
        if !self.js.enabled.load(Ordering::Acquire) {
            return Jsz {
                server_id: self.server_id.clone(),
                now: self.now_string().1,
                disabled: true,
                ..Jsz::default()
            };
        }
        let st = lock(&self.js.stats).clone();
        let cfg = self.opts().jetstream.clone().unwrap_or_default();
        let limit = |v: Option<u64>| v.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        // Go: `<store_dir>/jetstream`, the directory the worker stores under.
        let store_dir = cfg
            .store_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("nats"))
            .join("jetstream");
        let api = json!({"total": st.api_total, "errors": st.api_errors});
        // The worker serves the global account; its limits are Go's dynamic (unlimited) ones.
        // Stream and consumer detail needs a snapshot from the worker
        // (`JetStream::jsz_account`), which it does not publish yet.
        let accounts = vec![(
            GLOBAL_ACCOUNT,
            AccountLimits::default(),
            st.memory,
            st.storage,
        )];
        let details = account_details(o, accounts, &api);
        Jsz {
            server_id: self.server_id.clone(),
            now: self.now_string().1,
            disabled: false,
            config: JsConfig {
                max_memory: limit(cfg.max_memory_store),
                max_storage: limit(cfg.max_file_store),
                store_dir: store_dir.display().to_string(),
                domain: cfg.domain.clone().unwrap_or_default(),
            },
            memory: st.memory,
            storage: st.storage,
            accounts: 1,
            api: JsApiStats {
                total: st.api_total,
                errors: st.api_errors,
            },
            streams: st.streams as u64,
            consumers: st.consumers as u64,
            messages: st.messages,
            bytes: st.memory + st.storage,
            account_details: details,
            ..Jsz::default()
        }
    }
}

/// Go's account filter: `acc` picks one account when it has JetStream; otherwise
/// `accounts` lists them all (sorted, from `offset`, at most `limit`).
fn account_details(
    o: &JszOptions,
    mut accounts: Vec<(&str, AccountLimits, u64, u64)>,
    api: &Value,
) -> Vec<Value> {
    let all = o.accounts || o.streams || o.consumers;
    if let Some(i) = accounts.iter().position(|a| a.0 == o.account) {
        accounts = vec![accounts.swap_remove(i)];
    } else if all {
        accounts.sort_by(|a, b| a.0.cmp(b.0));
        let limit = if o.limit == 0 { 1024 } else { o.limit };
        accounts = accounts.into_iter().skip(o.offset).take(limit).collect();
    } else {
        return Vec::new();
    }
    accounts
        .into_iter()
        .map(|(name, l, memory, storage)| {
            json!({
                "name": name,
                "id": name,
                "memory": memory,
                "storage": storage,
                // Go reports the account limits here, cast to unsigned (-1: 2^64-1).
                "reserved_memory": l.max_memory as u64,
                "reserved_storage": l.max_storage as u64,
                "accounts": 0,
                "ha_assets": 0,
                "api": api,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[Value]) -> Vec<&str> {
        v.iter().map(|d| d["name"].as_str().unwrap_or("")).collect()
    }

    #[test]
    fn account_filter_follows_go() {
        let api = json!({"total": 1, "errors": 0});
        let accs = || {
            vec![
                ("B", AccountLimits::default(), 1, 2),
                ("A", AccountLimits::default(), 3, 4),
            ]
        };
        assert!(account_details(&JszOptions::default(), accs(), &api).is_empty());
        let o = JszOptions {
            accounts: true,
            ..JszOptions::default()
        };
        assert_eq!(names(&account_details(&o, accs(), &api)), ["A", "B"]);
        let o = JszOptions {
            consumers: true,
            offset: 1,
            ..JszOptions::default()
        };
        assert_eq!(names(&account_details(&o, accs(), &api)), ["B"]);
        let o = JszOptions {
            account: "B".into(),
            ..JszOptions::default()
        };
        let d = account_details(&o, accs(), &api);
        assert_eq!(names(&d), ["B"]);
        assert_eq!(d[0]["reserved_memory"], u64::MAX);
        assert_eq!((&d[0]["memory"], &d[0]["storage"]), (&json!(1), &json!(2)));
    }
}
