//! The JetStream API counters of each account in a cluster (`$JS.API.INFO`'s `api { total,
//! errors }`, and `/jsz`'s `api`).
//!
//! nats-server 2.9.10 counts every API request the account made, whichever server it went
//! to, and every error answer: `$JS.API.INFO` shows the same numbers whichever server is asked,
//! without the request being answered. natsd gets there by where its requests travel: every
//! server hears every request of the account (each subscribes `$JS.API.>`), so each counts
//! them all itself; but only the server that answers knows an answer was an error, so each
//! counts the errors it gave and its heartbeat carries them, and the total of errors is this
//! server's own plus what each peer last said. Pull requests and direct gets are not counted
//! (nats-server's consumers and stream leaders take them on their own subscriptions).

use std::collections::BTreeMap;
use std::sync::Mutex;

use natsd_core::jetstream::cluster::api::ApiOp;

use crate::server::lock;

/// One account's counts on this server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// Requests this server heard.
    pub(super) total: u64,
    /// Error answers this server gave.
    pub(super) errors: u64,
}

/// This server's counts, by account.
#[derive(Debug, Default)]
pub(super) struct ApiCounters {
    by_account: Mutex<BTreeMap<String, Counts>>,
}

impl ApiCounters {
    /// A request `op` in `account` was heard: the account's counts before it.
    pub(super) fn heard(&self, account: &str, op: &ApiOp) -> Counts {
        let mut m = lock(&self.by_account);
        let c = m.entry(account.to_owned()).or_default();
        let before = *c;
        if counted(op) {
            c.total += 1;
        }
        before
    }

    /// This server answered a request of `account` with an error.
    pub(super) fn error(&self, account: &str) {
        lock(&self.by_account)
            .entry(account.to_owned())
            .or_default()
            .errors += 1;
    }

    /// The errors this server gave, by account (for its heartbeat).
    pub(super) fn errors(&self) -> BTreeMap<String, u64> {
        lock(&self.by_account)
            .iter()
            .filter(|(_, c)| c.errors > 0)
            .map(|(a, c)| (a.clone(), c.errors))
            .collect()
    }

    /// Every account's counts summed (for `/jsz`).
    pub(super) fn sum(&self) -> Counts {
        lock(&self.by_account)
            .values()
            .fold(Counts::default(), |t, c| Counts {
                total: t.total + c.total,
                errors: t.errors + c.errors,
            })
    }
}

/// Whether nats-server counts `op` as an API request.
fn counted(op: &ApiOp) -> bool {
    !matches!(op, ApiOp::MsgNext(..) | ApiOp::DirectGet { .. })
}

/// Whether an API answer is an error.
pub(super) fn is_error(body: &serde_json::Value) -> bool {
    body.get("error").is_some_and(|e| !e.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_before_each_and_errors_per_account() {
        let c = ApiCounters::default();
        assert_eq!(c.heard("A", &ApiOp::AccountInfo), Counts::default());
        let before = c.heard("A", &ApiOp::AccountInfo);
        assert_eq!(before.total, 1);
        c.heard("B", &ApiOp::AccountInfo);
        c.heard("A", &ApiOp::MsgNext("S".into(), "C".into()));
        c.error("A");
        assert_eq!(c.heard("A", &ApiOp::AccountInfo).total, 2);
        assert_eq!(c.errors(), BTreeMap::from([("A".to_owned(), 1)]));
        assert_eq!(
            c.sum(),
            Counts {
                total: 4,
                errors: 1
            }
        );
    }

    #[test]
    fn an_error_answer_has_a_non_null_error() {
        assert!(is_error(&serde_json::json!({"error": {"code": 404}})));
        assert!(!is_error(&serde_json::json!({"error": null})));
        assert!(!is_error(&serde_json::json!({"streams": 1})));
    }
}
