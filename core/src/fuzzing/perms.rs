//! Publish/subscribe permissions against a reference model of the allow/deny rules.

use std::sync::OnceLock;

use super::{reference, subject_from, Input};
use crate::auth::{DeliverPermCache, PermissionChecker, PubPermCache};
use crate::options::{Permissions, ResponsePermission, SubjectPermission};

/// Tokens of configured entries; `>` not last and the empty token make invalid entries.
const ENTRY_TOKENS: &[&str] = &["a", "b", "*", ">", "a", "b", "*", ""];
/// Tokens of checked subjects and queue names; `z` is a token no entry names.
const QUERY_TOKENS: &[&str] = &["a", "b", "z", "*", ">", "a", "b"];
/// Literal tokens spanning every behaviour of [`QUERY_TOKENS`] and [`ENTRY_TOKENS`].
const LITERAL_TOKENS: &[&str] = &["a", "b", "z"];
/// Longest query subject, in tokens.
const MAX_QUERY_TOKENS: usize = 4;

/// Every literal subject of up to one token more than any pattern here. Two valid patterns of
/// at most [`MAX_QUERY_TOKENS`] tokens over these tokens relate (subset, overlap) the same way
/// over this finite set as over all subjects: longer subjects and other tokens add no case.
fn universe() -> &'static [String] {
    static U: OnceLock<Vec<String>> = OnceLock::new();
    U.get_or_init(|| {
        let mut all: Vec<String> = LITERAL_TOKENS.iter().map(|t| (*t).to_owned()).collect();
        let mut last = all.clone();
        for _ in 1..=MAX_QUERY_TOKENS {
            last = last
                .iter()
                .flat_map(|s| LITERAL_TOKENS.iter().map(move |t| format!("{s}.{t}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    })
}

/// Every subject matched by `a` is matched by `b` (both valid patterns).
fn subset(a: &str, b: &str) -> bool {
    universe()
        .iter()
        .all(|u| !reference::matches(a, u) || reference::matches(b, u))
}

/// One entry of a subscribe list, or the subject of a publish deny entry.
#[derive(Debug)]
struct Entry {
    subject: String,
    queue: Option<String>,
}

impl Entry {
    /// `"subject"` or `"subject queue"`, whitespace-separated, both valid subjects.
    fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let (subject, queue) = match parts[..] {
            [s] => (s, None),
            [s, q] if reference::valid(q) => (s, Some(q.to_owned())),
            _ => return None,
        };
        reference::valid(subject).then(|| Self {
            subject: subject.to_owned(),
            queue,
        })
    }

    /// Does the entry speak about subscriptions in `queue` (`None`: not a queue subscription)?
    /// A queue entry covers a group of the same name, or one its wildcard pattern covers.
    fn applies(&self, queue: Option<&str>) -> bool {
        match (&self.queue, queue) {
            (None, _) => true,
            (Some(p), Some(q)) => p == q || (reference::has_wildcard(p) && subset(q, p)),
            (Some(_), None) => false,
        }
    }
}

/// The rules of `crate::auth::permissions`, restated naively.
#[derive(Debug, Default)]
struct Model {
    pub_restricted: bool,
    pub_allow: Vec<String>,
    pub_deny: Vec<String>,
    sub_restricted: bool,
    sub_allow: Vec<Entry>,
    sub_deny: Vec<Entry>,
}

impl Model {
    fn new(p: &Permissions) -> Self {
        let mut m = Self::default();
        if let Some(publish) = &p.publish {
            // A configured allow list restricts even when none of its entries is usable.
            m.pub_restricted = !publish.allow.is_empty();
            m.pub_allow = publish
                .allow
                .iter()
                .filter(|s| reference::valid(s))
                .cloned()
                .collect();
            m.pub_deny = publish
                .deny
                .iter()
                .filter_map(|s| Entry::parse(s))
                .map(|e| e.subject)
                .collect();
        }
        // allow_responses without an allow list allows only responses.
        m.pub_restricted |= p.allow_responses.is_some();
        if let Some(subscribe) = &p.subscribe {
            m.sub_restricted = !subscribe.allow.is_empty();
            m.sub_allow = subscribe
                .allow
                .iter()
                .filter_map(|s| Entry::parse(s))
                .collect();
            m.sub_deny = subscribe
                .deny
                .iter()
                .filter_map(|s| Entry::parse(s))
                .collect();
        }
        m
    }

    fn can_publish(&self, subject: &str) -> bool {
        (!self.pub_restricted
            || self
                .pub_allow
                .iter()
                .any(|a| reference::matches(a, subject)))
            && !self.pub_deny.iter().any(|d| reference::matches(d, subject))
    }

    /// Allowed when one applicable allow entry covers the whole pattern and no applicable deny
    /// entry matches the pattern's tokens taken literally.
    fn can_subscribe(&self, subject: &str, queue: Option<&str>) -> bool {
        reference::valid(subject)
            && (!self.sub_restricted
                || self
                    .sub_allow
                    .iter()
                    .any(|e| e.applies(queue) && subset(subject, &e.subject)))
            && !self
                .sub_deny
                .iter()
                .any(|e| e.applies(queue) && reference::matches(&e.subject, subject))
    }

    fn needs_delivery_check(&self, subject: &str, queue: Option<&str>) -> bool {
        self.sub_deny
            .iter()
            .any(|e| e.applies(queue) && reference::overlaps(subject, &e.subject))
    }

    fn deliver_allowed(&self, literal: &str, queue: Option<&str>) -> bool {
        (!self.sub_restricted
            || self
                .sub_allow
                .iter()
                .any(|e| e.applies(queue) && reference::matches(&e.subject, literal)))
            && !self
                .sub_deny
                .iter()
                .any(|e| e.applies(queue) && reference::matches(&e.subject, literal))
    }
}

/// A configured entry: a subject, optionally a queue and a stray third word, with various
/// whitespace. In raw mode, any text.
fn entry(b: &mut Input<'_>, raw: bool) -> String {
    if raw {
        let n = usize::from(b.below(12));
        return String::from_utf8_lossy(b.take(n)).into_owned();
    }
    let f = b.byte();
    let sep = [" ", "\t", "  \t"][usize::from(f >> 5) % 3];
    let mut s = String::new();
    if f & 0x10 != 0 {
        s.push(' ');
    }
    s.push_str(&subject_from(b, 1 + usize::from(f % 3), ENTRY_TOKENS));
    if f & 0x04 != 0 {
        s.push_str(sep);
        s.push_str(&subject_from(b, 1 + usize::from(f & 1), ENTRY_TOKENS));
    }
    if f & 0x08 != 0 {
        s.push_str(sep);
        s.push('x');
    }
    s
}

fn list(b: &mut Input<'_>, raw: bool) -> Vec<String> {
    (0..b.below(4)).map(|_| entry(b, raw)).collect()
}

/// `permissions`: allow/deny lists and checks into [`PermissionChecker`] and its caches.
///
/// Format: byte 0 holds flags — bit 0 a publish block, bit 1 a subscribe block, bit 2
/// `allow_responses`, bit 3 raw mode (entries and subjects are arbitrary text, checked for
/// panics and cache agreement only). Then the four lists (publish allow/deny, subscribe
/// allow/deny: a count byte, then entries), then checks until the input ends.
///
/// Checks: no panic; the checker and both caches agree with the reference model on publish,
/// subscribe, delivery-check and delivery verdicts; a subscription allowed without the delivery
/// check is delivered every message it matches.
pub fn permissions(data: &[u8]) {
    let mut b = Input::new(data);
    let flags = b.byte();
    let raw = flags & 8 != 0;
    let mut lists = || SubjectPermission {
        allow: list(&mut b, raw),
        deny: list(&mut b, raw),
    };
    let publish = lists();
    let subscribe = lists();
    let p = Permissions {
        publish: (flags & 1 != 0).then_some(publish),
        subscribe: (flags & 2 != 0).then_some(subscribe),
        allow_responses: (flags & 4 != 0).then(ResponsePermission::default),
    };
    let checker = PermissionChecker::new(&p);
    let model = Model::new(&p);
    let mut pub_cache = PubPermCache::new();
    let mut deliver_cache = DeliverPermCache::new();
    for _ in 0..64 {
        if b.is_empty() {
            break;
        }
        let (subject, queue) = if raw {
            let n = usize::from(b.below(12));
            let s = String::from_utf8_lossy(b.take(n)).into_owned();
            let q = (b.byte() & 1 != 0).then(|| entry(&mut b, true));
            (s, q)
        } else {
            let n = 1 + usize::from(b.below(MAX_QUERY_TOKENS as u8));
            let s = subject_from(&mut b, n, QUERY_TOKENS);
            let q = (b.byte() & 1 != 0).then(|| {
                let n = 1 + usize::from(b.below(2));
                subject_from(&mut b, n, QUERY_TOKENS)
            });
            (s, q)
        };
        let (sb, qb) = (subject.as_bytes(), queue.as_deref().map(str::as_bytes));
        let can_pub = checker.can_publish(sb);
        assert_eq!(
            pub_cache.can_publish(&checker, sb),
            can_pub,
            "cached publish"
        );
        let can_sub = checker.can_subscribe(sb, qb);
        let needs_check = checker.needs_delivery_check(sb, qb);
        let deliver = checker.deliver_allowed(sb, qb);
        assert_eq!(
            deliver_cache.deliver_allowed(&checker, sb, qb),
            deliver,
            "cached delivery"
        );
        if raw {
            continue;
        }
        let ctx = || format!("{p:?} subject {subject:?} queue {queue:?}");
        // Queue names that are not valid subjects have no subset semantics to compare with.
        if queue.as_deref().is_some_and(|q| !reference::valid(q)) {
            continue;
        }
        let q = queue.as_deref();
        assert_eq!(
            can_sub,
            model.can_subscribe(&subject, q),
            "subscribe: {}",
            ctx()
        );
        if !reference::valid(&subject) {
            continue;
        }
        assert_eq!(
            needs_check,
            model.needs_delivery_check(&subject, q),
            "delivery check: {}",
            ctx()
        );
        if !reference::has_wildcard(&subject) {
            assert_eq!(can_pub, model.can_publish(&subject), "publish: {}", ctx());
            assert_eq!(
                deliver,
                model.deliver_allowed(&subject, q),
                "deliver: {}",
                ctx()
            );
        }
        if can_sub && !needs_check {
            for u in universe()
                .iter()
                .filter(|u| reference::matches(&subject, u))
            {
                assert!(
                    checker.deliver_allowed(u.as_bytes(), qb),
                    "unchecked delivery of {u:?} denied: {}",
                    ctx()
                );
            }
        }
    }
    assert_eq!(
        checker.publish_unrestricted(),
        !model.pub_restricted && model.pub_deny.is_empty()
    );
    assert_eq!(
        checker.subscribe_unrestricted(),
        !model.sub_restricted && model.sub_deny.is_empty()
    );
}
