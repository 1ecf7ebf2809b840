//! `/jsz` (Go: server/monitor.go Jsz, accountDetail): server-wide JetStream usage and, with
//! `accounts=true` (implied by `streams`, implied by `consumers`) or `acc=<name>`, one entry
//! per JetStream account.

use std::sync::atomic::Ordering;

use serde_json::Value;

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
        let cluster = lock(&self.js.cluster).clone();
        let mut all = st.details;
        if let Some(c) = &cluster {
            add_replicas(&mut all, c.jsz_streams());
        }
        let details = account_details(o, all);
        // Clustered streams' API requests are served beside the worker's (see the cluster's
        // `counters`).
        let (api_total, api_errors) = cluster.as_ref().map_or((0, 0), |c| c.api_counts());
        Jsz {
            server_id: self.server_id.clone(),
            now: self.now_string().1,
            disabled: false,
            config: JsConfig {
                max_memory: limit(cfg.max_memory_store),
                max_storage: limit(cfg.max_file_store),
                store_dir: store_dir.display().to_string(),
                domain: cfg.domain.clone().unwrap_or_default(),
                compress_ok: false,
            },
            memory: st.memory,
            storage: st.storage,
            reserved_memory: st.reserved_memory,
            reserved_storage: st.reserved_storage,
            accounts: st.accounts as u64,
            api: JsApiStats {
                total: st.api_total + api_total,
                errors: st.api_errors + api_errors,
                inflight: 0,
            },
            streams: st.streams as u64,
            consumers: st.consumers as u64,
            messages: st.messages,
            bytes: st.memory + st.storage,
            account_details: details,
            meta_cluster: cluster.as_ref().map(|c| c.meta_info()),
            ..Jsz::default()
        }
    }
}

/// Go's account filter: `acc` picks one account when it has JetStream; otherwise
/// `accounts` lists them all (sorted, from `offset`, at most `limit`). `accounts` are the
/// worker's entries with every detail; what the query did not ask for is dropped.
fn account_details(o: &JszOptions, mut accounts: Vec<(String, Value)>) -> Vec<Value> {
    let all = o.accounts || o.streams || o.consumers;
    if let Some(i) = accounts.iter().position(|a| a.0 == o.account) {
        accounts = vec![accounts.swap_remove(i)];
    } else if all {
        accounts.sort_by(|a, b| a.0.cmp(&b.0));
        let limit = if o.limit == 0 { 1024 } else { o.limit };
        accounts = accounts.into_iter().skip(o.offset).take(limit).collect();
    } else {
        return Vec::new();
    }
    // Go: `consumers` implies `streams`; an `acc=` query alone shows no streams.
    let streams = o.streams || o.consumers;
    accounts
        .into_iter()
        .map(|(_, mut d)| {
            trim(&mut d, streams, o.consumers, o.config);
            d
        })
        .collect()
}

/// Adds the clustered streams' replicas on this server to their accounts' `stream_detail`.
fn add_replicas(accounts: &mut [(String, Value)], replicas: Vec<(String, Value)>) {
    for (account, d) in replicas {
        let Some((_, entry)) = accounts.iter_mut().find(|a| a.0 == account) else {
            continue;
        };
        let Value::Object(m) = entry else { continue };
        let list = m
            .entry("stream_detail")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            list.push(d);
        }
    }
}

/// Drops the parts of one account entry the query did not ask for.
fn trim(d: &mut Value, streams: bool, consumers: bool, config: bool) {
    let Value::Object(m) = d else {
        return;
    };
    if !streams {
        m.remove("stream_detail");
        return;
    }
    if let Some(Value::Array(ss)) = m.get_mut("stream_detail") {
        for s in ss.iter_mut().filter_map(Value::as_object_mut) {
            if !config {
                s.remove("config");
            }
            if !consumers {
                s.remove("consumer_detail");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn names(v: &[Value]) -> Vec<&str> {
        v.iter().map(|d| d["name"].as_str().unwrap_or("")).collect()
    }

    fn entry(name: &str) -> (String, Value) {
        let d = json!({
            "name": name,
            "memory": 1,
            "stream_detail": [{"name": "S", "config": {}, "consumer_detail": [{}]}],
        });
        (name.to_owned(), d)
    }

    fn accs() -> Vec<(String, Value)> {
        vec![entry("B"), entry("A")]
    }

    #[test]
    fn account_filter_follows_go() {
        assert!(account_details(&JszOptions::default(), accs()).is_empty());
        let o = JszOptions {
            accounts: true,
            ..JszOptions::default()
        };
        let d = account_details(&o, accs());
        assert_eq!(names(&d), ["A", "B"]);
        assert!(d[0].get("stream_detail").is_none());
        let o = JszOptions {
            consumers: true,
            offset: 1,
            ..JszOptions::default()
        };
        let d = account_details(&o, accs());
        assert_eq!(names(&d), ["B"]);
        let s = &d[0]["stream_detail"][0];
        assert!(s.get("consumer_detail").is_some() && s.get("config").is_none());
        let o = JszOptions {
            account: "B".into(),
            ..JszOptions::default()
        };
        let d = account_details(&o, accs());
        assert_eq!(names(&d), ["B"]);
        assert_eq!(d[0]["memory"], 1);
        let o = JszOptions {
            streams: true,
            config: true,
            ..JszOptions::default()
        };
        let s = &account_details(&o, accs())[0]["stream_detail"][0];
        assert!(s.get("consumer_detail").is_none() && s.get("config").is_some());
    }
}
