//! The answer of an account without JetStream while the server has it on.
//!
//! Go: configJetStream gives every account that has no `jetstream` config (except the system
//! account) the `$JS.API.>` service import anyway (enableJetStreamInfoServiceImportOnly), and
//! each API handler then answers 503/10039 in its own response type. natsd subscribes an
//! internal sink on `$JS.API.>` in such accounts that answers right away: there is no state,
//! so the worker is not involved.
//!
//! The system account is different: Go's API dispatcher itself listens there and answers only
//! `$JS.API.INFO` from its own clients (10039); everything else goes unanswered.

use std::sync::{Arc, Weak};

use natsd_core::account::Account;
use natsd_core::options::{AccountConfig, ExportKind};
use natsd_core::router::{InternalSink, Message};
use serde_json::{json, Value};

/// Answers every known `$JS.API` request of one account with "not enabled for account".
#[derive(Debug)]
pub(super) struct NotEnabled {
    /// Weak: the account's sublist holds this sink.
    pub(super) acc: Weak<Account>,
}

/// The response kind (`io.nats.jetstream.api.v1.<kind>_response`) of an API subject that
/// Go answers with 10039 when the account has no JetStream; `None` for subjects it leaves
/// unanswered there (pull requests, direct gets, cluster-only calls, unknown ones).
pub(super) fn response_kind(subject: &str) -> Option<&'static str> {
    let rest = subject.strip_prefix("$JS.API.")?;
    let t: Vec<&str> = rest.split('.').collect();
    let kind = match t.as_slice() {
        ["INFO"] => "account_info",
        ["STREAM", "TEMPLATE", "CREATE", _] => "stream_template_create",
        ["STREAM", "TEMPLATE", "NAMES"] => "stream_template_names",
        ["STREAM", "TEMPLATE", "INFO", _] => "stream_template_info",
        ["STREAM", "TEMPLATE", "DELETE", _] => "stream_template_delete",
        ["STREAM", "CREATE", _] => "stream_create",
        ["STREAM", "UPDATE", _] => "stream_update",
        ["STREAM", "NAMES"] => "stream_names",
        ["STREAM", "LIST"] => "stream_list",
        ["STREAM", "INFO", _] => "stream_info",
        ["STREAM", "DELETE", _] => "stream_delete",
        ["STREAM", "PURGE", _] => "stream_purge",
        ["STREAM", "SNAPSHOT", _] => "stream_snapshot",
        ["STREAM", "RESTORE", _] => "stream_restore",
        ["STREAM", "MSG", "DELETE", _] => "stream_msg_delete",
        ["STREAM", "MSG", "GET", _] => "stream_msg_get",
        ["CONSUMER", "CREATE", _] | ["CONSUMER", "CREATE", _, _, ..] => "consumer_create",
        ["CONSUMER", "DURABLE", "CREATE", _, _] => "consumer_create",
        ["CONSUMER", "NAMES", _] => "consumer_names",
        ["CONSUMER", "LIST", _] => "consumer_list",
        ["CONSUMER", "INFO", _, _] => "consumer_info",
        ["CONSUMER", "DELETE", _, _] => "consumer_delete",
        // Cluster-only calls: answered with 10010 before the account is looked at.
        ["STREAM", "LEADER", "STEPDOWN", _] => "stream_leader_stepdown",
        ["STREAM", "PEER", "REMOVE", _] => "stream_remove_peer",
        ["CONSUMER", "LEADER", "STEPDOWN", _, _] => "consumer_leader_stepdown",
        _ => return None,
    };
    Some(kind)
}

/// The body of that answer (Go: JSNotEnabledForAccountErr in server/errors.json; for the
/// cluster-only calls of a server without a cluster, JSClusterRequiredErr).
pub(super) fn not_enabled_body(kind: &str) -> Vec<u8> {
    let (err_code, description) = if kind.ends_with("stepdown") || kind.ends_with("peer") {
        (10010, "JetStream clustering support required")
    } else {
        (10039, "JetStream not enabled for account")
    };
    let mut v = json!({
        "type": format!("io.nats.jetstream.api.v1.{kind}_response"),
        "error": {"code": 503, "err_code": err_code, "description": description},
    });
    // Fields Go's response types always encode, even empty (no `omitempty`).
    let paged = json!({"total": 0, "offset": 0, "limit": 0});
    let extra = match kind {
        "stream_info" => paged,
        "stream_names" | "stream_list" | "stream_template_names" => {
            merge(paged, json!({"streams": null}))
        }
        "consumer_names" | "consumer_list" => merge(paged, json!({"consumers": null})),
        "stream_purge" => json!({"purged": 0}),
        "stream_restore" => json!({"deliver_subject": ""}),
        _ => json!({}),
    };
    v = merge(v, extra);
    v.to_string().into_bytes()
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

/// Does the account import a service that covers `$JS.API.INFO` (JetStream from another
/// account)? Then Go adds no responder of its own (serviceImportShadowed).
pub(super) fn imports_jetstream(cfg: Option<&AccountConfig>) -> bool {
    cfg.is_some_and(|a| {
        a.imports.iter().any(|i| {
            let local = i.to.as_deref().unwrap_or(&i.subject);
            i.kind == ExportKind::Service
                && natsd_core::subject::matches(local.as_bytes(), b"$JS.API.INFO")
        })
    })
}

impl InternalSink for NotEnabled {
    fn deliver(&self, m: &Message<'_>) {
        let (Some(reply), Some(acc)) = (m.reply, self.acc.upgrade()) else {
            return;
        };
        let subject = String::from_utf8_lossy(m.subject);
        let Some(kind) = response_kind(&subject) else {
            return;
        };
        super::answer_from_sink(&acc, reply, &not_enabled_body(kind));
    }
}

/// Makes the responder of `acc`.
pub(super) fn sink(acc: &Arc<Account>) -> Arc<dyn InternalSink> {
    Arc::new(NotEnabled {
        acc: Arc::downgrade(acc),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_go_handlers() {
        let k = |s: &str| response_kind(s);
        assert_eq!(k("$JS.API.INFO"), Some("account_info"));
        assert_eq!(k("$JS.API.STREAM.CREATE.S"), Some("stream_create"));
        assert_eq!(k("$JS.API.STREAM.MSG.GET.S"), Some("stream_msg_get"));
        assert_eq!(k("$JS.API.CONSUMER.CREATE.S"), Some("consumer_create"));
        assert_eq!(
            k("$JS.API.CONSUMER.CREATE.S.C.f.>"),
            Some("consumer_create")
        );
        assert_eq!(
            k("$JS.API.CONSUMER.DURABLE.CREATE.S.D"),
            Some("consumer_create")
        );
        assert_eq!(k("$JS.API.CONSUMER.INFO.S.D"), Some("consumer_info"));
        assert_eq!(
            k("$JS.API.STREAM.LEADER.STEPDOWN.S"),
            Some("stream_leader_stepdown")
        );
        // Go answers these elsewhere, or not at all, in an account without JetStream.
        assert_eq!(k("$JS.API.CONSUMER.MSG.NEXT.S.D"), None);
        assert_eq!(k("$JS.API.DIRECT.GET.S"), None);
        assert_eq!(k("$JS.API.NOPE"), None);
        assert_eq!(k("orders.new"), None);
    }

    #[test]
    fn body_is_go_error_10039() {
        let v: Value = serde_json::from_slice(&not_enabled_body("account_info")).expect("JSON");
        assert_eq!(v["type"], "io.nats.jetstream.api.v1.account_info_response");
        assert_eq!(
            v["error"],
            json!({"code": 503, "err_code": 10039, "description": "JetStream not enabled for account"})
        );
        let v: Value =
            serde_json::from_slice(&not_enabled_body("stream_remove_peer")).expect("JSON");
        assert_eq!(v["error"]["err_code"], 10010);
        let v: Value = serde_json::from_slice(&not_enabled_body("consumer_names")).expect("JSON");
        assert_eq!(
            (&v["total"], &v["limit"], &v["consumers"]),
            (&json!(0), &json!(0), &Value::Null)
        );
        assert!(v.as_object().is_some_and(|m| m.contains_key("consumers")));
    }
}
