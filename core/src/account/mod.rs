//! Accounts: isolated subject spaces, wired together by stream and service imports.
//!
//! Each account owns a [`Sublist`]. Imports are entries in those sublists that forward instead
//! of delivering (Go: server/accounts.go keeps them as internal subscriptions too):
//!
//! * a **stream import** of `a.>` from A into B is a subscription in A's sublist on `a.>` that
//!   republishes into B, optionally renamed (`prefix`/`to`);
//! * a **service import** of `svc` from A as `local` in B is a subscription in B's sublist on
//!   `local` that republishes into A as `svc`. When the request carries a reply subject, a
//!   short-lived **response** subscription on a fresh `_R_.…` subject is added to A's sublist; it
//!   carries responses back to B on the original reply subject (once for singleton services,
//!   until expiry for stream/chunked ones).

pub mod validate;

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::options::ResponseType;
use crate::router::{SubRef, SubTarget, Subscription};
use crate::subject;
use crate::sublist::Sublist;

/// How long a response mapping for a stream/chunked service lives without traffic (Go's
/// default response threshold is 2 minutes).
pub const DEFAULT_RESPONSE_THRESHOLD: Duration = Duration::from_secs(120);
/// Bound on outstanding response mappings per account; the oldest are dropped past it.
const MAX_RESPONSE_MAPPINGS: usize = 100_000;

/// One account at runtime.
#[derive(Debug)]
pub struct Account {
    /// The account name (`$G` for the global account).
    pub name: String,
    /// Its subscription index.
    pub sublist: Sublist<SubRef>,
    /// Response mappings in creation order, for expiry.
    responses: Mutex<VecDeque<(Instant, Bytes, SubRef)>>,
    /// Connections bound to this account.
    pub num_connections: AtomicU64,
    /// Messages published into this account.
    pub in_msgs: AtomicU64,
    /// Bytes published into this account.
    pub in_bytes: AtomicU64,
}

impl Account {
    /// A new, empty account.
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            sublist: Sublist::new(),
            responses: Mutex::new(VecDeque::new()),
            num_connections: AtomicU64::new(0),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
        })
    }

    /// Adds a stream import: messages on `subject` in `from` appear in `into`, renamed by
    /// `to` (a subject pattern with the same wildcards) or prefixed by `prefix`.
    pub fn add_stream_import(
        from: &Arc<Self>,
        into: &Arc<Self>,
        subject: &str,
        to: Option<&str>,
        prefix: Option<&str>,
    ) -> Result<(), crate::sublist::SublistError> {
        let rename = Rename::new(subject, to, prefix);
        let sub = Subscription::new(
            Bytes::copy_from_slice(subject.as_bytes()),
            None,
            SubTarget::StreamImport {
                into: Arc::downgrade(into),
                rename: Box::new(rename),
            },
        );
        from.sublist
            .insert(subject.as_bytes(), None, SubRef(Arc::new(sub)))
    }

    /// Adds a service import: requests on `local` (default: `subject`) in `into` go to
    /// `subject` in `from`.
    pub fn add_service_import(
        from: &Arc<Self>,
        into: &Arc<Self>,
        subject: &str,
        local: Option<&str>,
        response_type: ResponseType,
        threshold: Duration,
    ) -> Result<(), crate::sublist::SublistError> {
        let local = local.unwrap_or(subject);
        let rename = Rename::new(local, Some(subject), None);
        let sub = Subscription::new(
            Bytes::copy_from_slice(local.as_bytes()),
            None,
            SubTarget::ServiceImport {
                exporter: Arc::downgrade(from),
                rename: Box::new(rename),
                response_type,
                threshold,
            },
        );
        into.sublist
            .insert(local.as_bytes(), None, SubRef(Arc::new(sub)))
    }

    /// Creates a response mapping in this (exporting) account that carries replies back to
    /// `reply` in `importer`, and returns the fresh reply subject to use here.
    pub(crate) fn add_response(
        &self,
        now: Instant,
        importer: Weak<Self>,
        reply: Bytes,
        response_type: ResponseType,
        threshold: Duration,
        token: u64,
    ) -> Bytes {
        let mut s = BytesMut::with_capacity(24);
        s.extend_from_slice(b"_R_.");
        s.extend_from_slice(encode_token(token).as_bytes());
        let subj = s.freeze();
        let sub = SubRef(Arc::new(Subscription::new(
            subj.clone(),
            None,
            SubTarget::Response {
                importer,
                reply,
                singleton: response_type == ResponseType::Singleton,
            },
        )));
        if self.sublist.insert(&subj, None, sub.clone()).is_ok() {
            let mut q = self.responses.lock().unwrap_or_else(|e| e.into_inner());
            q.push_back((now + threshold, subj.clone(), sub));
            while q.len() > MAX_RESPONSE_MAPPINGS {
                if let Some((_, s, r)) = q.pop_front() {
                    let _ = self.sublist.remove(&s, None, &r);
                }
            }
        }
        subj
    }

    /// Drops expired response mappings. Returns how many were removed.
    pub fn sweep_responses(&self, now: Instant) -> usize {
        let mut q = self.responses.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        while q.front().is_some_and(|(exp, _, _)| *exp <= now) {
            if let Some((_, s, r)) = q.pop_front() {
                if !r.0.is_removed() {
                    r.0.mark_removed();
                    let _ = self.sublist.remove(&s, None, &r);
                }
                n += 1;
            }
        }
        // Singleton responses already used are removed from the sublist at delivery; drop their
        // bookkeeping too so the queue does not hold them until expiry.
        q.retain(|(_, _, r)| !r.0.is_removed());
        n
    }

    /// Outstanding response mappings.
    pub fn num_responses(&self) -> usize {
        self.responses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

fn encode_token(mut n: u64) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = String::with_capacity(11);
    for _ in 0..11 {
        out.push(ALPHABET[(n % 62) as usize] as char);
        n /= 62;
    }
    out
}

/// Renames a subject from one pattern to another, wildcard by wildcard, or adds a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    from: Vec<Vec<u8>>,
    to: Option<Vec<Vec<u8>>>,
    prefix: Option<Vec<u8>>,
}

impl Rename {
    /// A rename from `from` to `to` (patterns with the same wildcards), or by `prefix`.
    pub fn new(from: &str, to: Option<&str>, prefix: Option<&str>) -> Self {
        let toks = |s: &str| {
            subject::tokens(s.as_bytes())
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        let to = to.filter(|t| *t != from).map(toks);
        Self {
            from: toks(from),
            to,
            prefix: prefix
                .filter(|p| !p.is_empty())
                .map(|p| p.trim_end_matches('.').as_bytes().to_vec()),
        }
    }

    /// Is this rename the identity?
    pub fn is_identity(&self) -> bool {
        self.to.is_none() && self.prefix.is_none()
    }

    /// Applies the rename to a literal subject that matches `from`.
    pub fn apply(&self, subj: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(subj.len() + 16);
        if let Some(p) = &self.prefix {
            out.extend_from_slice(p);
            out.extend_from_slice(b".");
        }
        match &self.to {
            None => out.extend_from_slice(subj),
            Some(to) => {
                // Collect what each wildcard of `from` matched, in order.
                let stoks: Vec<&[u8]> = subject::tokens(subj).collect();
                let mut captured: Vec<Vec<u8>> = Vec::new();
                for (i, ft) in self.from.iter().enumerate() {
                    if ft.as_slice() == [subject::PWC] {
                        captured.push(stoks.get(i).map(|t| t.to_vec()).unwrap_or_default());
                    } else if ft.as_slice() == [subject::FWC] {
                        captured.push(stoks.get(i..).map(|r| r.join(&b'.')).unwrap_or_default());
                    }
                }
                let mut next = captured.into_iter();
                for (i, tt) in to.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b".");
                    }
                    if tt.as_slice() == [subject::PWC] || tt.as_slice() == [subject::FWC] {
                        out.extend_from_slice(&next.next().unwrap_or_default());
                    } else {
                        out.extend_from_slice(tt);
                    }
                }
            }
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames() {
        let r = Rename::new("a.>", None, Some("p"));
        assert_eq!(&r.apply(b"a.b.c")[..], b"p.a.b.c");
        let r = Rename::new("svc.*", Some("local.*"), None);
        assert_eq!(&r.apply(b"svc.x")[..], b"local.x");
        let r = Rename::new("local", Some("svc"), None);
        assert_eq!(&r.apply(b"local")[..], b"svc");
        let r = Rename::new("a.*.>", Some("b.*.>"), None);
        assert_eq!(&r.apply(b"a.1.2.3")[..], b"b.1.2.3");
        assert!(Rename::new("a", Some("a"), None).is_identity());
    }

    #[test]
    fn tokens_are_distinct_and_valid() {
        let a = encode_token(1);
        let b = encode_token(2);
        assert_ne!(a, b);
        assert!(subject::is_valid_literal_subject(
            format!("_R_.{a}").as_bytes()
        ));
    }
}
