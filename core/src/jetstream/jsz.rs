//! One account's entry of `/jsz?accounts=true` (Go: server/monitor.go accountDetail): usage,
//! API counters and, when asked, every stream with its config and consumers.

use serde_json::{json, Value};

use super::api::rfc3339;
use super::service::JetStream;
use super::store::UnixNanos;

/// What `/jsz` asks to include (Go: `JSzOptions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JszDetail {
    /// `streams=true`: `stream_detail`.
    pub streams: bool,
    /// `consumers=true`: each stream's `consumer_detail`.
    pub consumers: bool,
    /// `config=true`: each stream's config.
    pub config: bool,
}

impl JetStream {
    /// This account's `account_details` entry named `account`.
    pub fn jsz_account(&self, account: &str, opt: JszDetail, now: UnixNanos) -> Value {
        let (memory, storage) = self.usage();
        let (total, errors) = self.api_stats();
        let l = self.account_limits();
        let mut v = json!({
            "name": account,
            "id": account,
            "memory": memory,
            "storage": storage,
            // Go reports the account's limits here, cast to unsigned: -1 shows as 2^64-1.
            "reserved_memory": l.max_memory as u64,
            "reserved_storage": l.max_storage as u64,
            "accounts": 0,
            "ha_assets": 0,
            "api": {"total": total, "errors": errors},
        });
        if !opt.streams || self.streams.is_empty() {
            return v;
        }
        let server = &self.settings.server_name;
        let details: Vec<Value> = self
            .streams
            .values()
            .map(|e| {
                let mut d = json!({
                    "name": e.stream.config.name,
                    "created": rfc3339(e.stream.created),
                    "cluster": {"leader": server},
                    "state": e.stream.state_json(e.consumers.len()),
                });
                if opt.config {
                    d["config"] = json!(e.stream.config);
                }
                if opt.consumers && !e.consumers.is_empty() {
                    let cs: Vec<Value> = e
                        .consumers
                        .values()
                        .map(|c| {
                            let mut i = c.info(now);
                            if let Value::Object(m) = &mut i {
                                // Go's consumer_detail entries carry no `ts`.
                                m.remove("ts");
                            }
                            i
                        })
                        .collect();
                    d["consumer_detail"] = json!(cs);
                }
                d
            })
            .collect();
        v["stream_detail"] = json!(details);
        v
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::factory::DiskFactory;
    use super::super::service::{JetStream, JsSettings};
    use super::super::store::{MemDisk, SyncPolicy};
    use super::JszDetail;

    #[test]
    fn account_detail_shape() {
        let d = MemDisk::new(1);
        let f = DiskFactory::new(move || d.clone(), SyncPolicy::Always);
        let settings = JsSettings {
            server_name: "S1".into(),
            ..JsSettings::default()
        };
        let mut js = JetStream::new(settings, Box::new(f), 3);
        let t = 1_700_000_000_000_000_000;
        let cfg = json!({"name": "S", "subjects": ["s.>"], "max_bytes": 5000});
        js.api(
            "$JS.API.STREAM.CREATE.S",
            Some("r"),
            cfg.to_string().as_bytes(),
            t,
        );
        let c = json!({"stream_name": "S", "config": {"durable_name": "D"}});
        js.api(
            "$JS.API.CONSUMER.CREATE.S",
            Some("r"),
            c.to_string().as_bytes(),
            t,
        );
        let v = js.jsz_account("$G", JszDetail::default(), t);
        assert_eq!(v["name"], "$G");
        assert_eq!(v["reserved_memory"], u64::MAX);
        assert_eq!(v["api"], json!({"total": 2, "errors": 0}));
        assert!(v.get("stream_detail").is_none());
        let all = JszDetail {
            streams: true,
            consumers: true,
            config: true,
        };
        let v = js.jsz_account("$G", all, t);
        let s = &v["stream_detail"][0];
        assert_eq!(s["name"], "S");
        assert_eq!(s["config"]["max_bytes"], 5000);
        assert_eq!(s["cluster"]["leader"], "S1");
        assert_eq!(s["state"]["consumer_count"], 1);
        assert_eq!(s["consumer_detail"][0]["name"], "D");
        assert!(s["consumer_detail"][0].get("ts").is_none());
        let v = js.jsz_account(
            "$G",
            JszDetail {
                config: false,
                ..all
            },
            t,
        );
        assert!(v["stream_detail"][0].get("config").is_none());
    }
}
