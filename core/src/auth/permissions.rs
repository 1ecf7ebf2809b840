//! Publish and subscribe permissions, compiled once per user and checked per operation.
//!
//! The algebra, in the order it is applied:
//!
//! * **Publish** (a literal subject): allowed when the allow list is not in force or one of its
//!   patterns matches, and no deny pattern matches. Deny wins.
//! * **Subscribe** (a pattern, optionally with a queue group): an entry of either list is
//!   `"subject"` or `"subject queue"`; the queue part may itself hold wildcards (`"foo v1.*"`)
//!   and is matched against the group name as a subject. A plain entry applies to every
//!   subscription on the subject, queue or not; a queue entry only to subscriptions in a matching
//!   group. A subscription is allowed when some applicable allow entry covers the *whole*
//!   subscription pattern, and no applicable deny entry matches it.
//! * **Delivery**: a wildcard subscription may be allowed while a narrower subject under it is
//!   denied (`foo.*` with `foo.bar` denied). Such subscriptions are flagged at subscribe time
//!   ([`PermissionChecker::needs_delivery_check`]) and every message to them is re-checked
//!   ([`PermissionChecker::deliver_allowed`]). Subscriptions that overlap no deny entry skip it.
//!
//! Differences from nats-server, all on the side of refusing:
//!
//! * nats-server checks a subscription pattern against the allow list with its sublist matcher,
//!   which treats the subscription's wildcard tokens as literals a `*` can match. So an allow of
//!   `foo.*` admits a subscription on `foo.>` (which then receives `foo.a.b`). We require one
//!   allow entry to cover the whole pattern.
//! * With both `"foo"` and `"foo q1"` allowed, nats-server refuses a queue subscription on `foo`
//!   in group `q2` (the queue entries override the plain one). A plain allow entry covers every
//!   group here, as it does for deny.
//! * Invalid entries are skipped with a warning, as nats-server does; but a configured allow list
//!   whose entries are all invalid allows nothing rather than everything.

use std::collections::BTreeMap;

use crate::options::{Permissions, ResponsePermission};
use crate::subject::{is_literal, is_subset, is_valid_subject, matches, overlaps};

/// One entry of a subscribe allow or deny list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SubEntry {
    subject: Vec<u8>,
    /// `Some` for the `"subject queue"` form.
    queue: Option<Vec<u8>>,
}

impl SubEntry {
    /// Does this entry speak about subscriptions in `queue` (`None`: a plain subscription)?
    fn applies_to(&self, queue: Option<&[u8]>) -> bool {
        match (&self.queue, queue) {
            (None, _) => true,
            (Some(pat), Some(q)) => queue_matches(q, pat),
            (Some(_), None) => false,
        }
    }
}

/// Go: server/client.go queueMatches — literal name first (`*` and `>` are legal queue names),
/// then the entry's queue as a subject pattern.
fn queue_matches(queue: &[u8], pattern: &[u8]) -> bool {
    queue == pattern || (!is_literal(pattern) && is_subset(queue, pattern))
}

/// Splits `"subject"` / `"subject queue"` (any whitespace between). `None` when malformed.
fn split_subject_queue(entry: &str) -> Option<SubEntry> {
    let mut parts = entry.split_whitespace();
    let subject = parts.next()?;
    let queue = parts.next();
    if parts.next().is_some() || !is_valid_subject(subject.as_bytes()) {
        return None;
    }
    // Go: splitSubjectQueue validates the queue with IsValidSubject too.
    if let Some(q) = queue {
        if !is_valid_subject(q.as_bytes()) {
            return None;
        }
    }
    Some(SubEntry {
        subject: subject.as_bytes().to_vec(),
        queue: queue.map(|q| q.as_bytes().to_vec()),
    })
}

/// A user's permissions, compiled for checking. Cheap to share (`Arc`) between connections.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PermissionChecker {
    /// The publish allow list is in force (possibly with no usable entry: nothing allowed).
    pub_restricted: bool,
    pub_allow: Vec<Vec<u8>>,
    pub_deny: Vec<Vec<u8>>,
    /// The subscribe allow list is in force.
    sub_restricted: bool,
    sub_allow: Vec<SubEntry>,
    sub_deny: Vec<SubEntry>,
    responses: Option<ResponsePermission>,
}

impl PermissionChecker {
    /// Compiles `p`. Malformed entries are skipped (and logged), never widening what is allowed.
    pub fn new(p: &Permissions) -> Self {
        let mut c = Self {
            responses: p.allow_responses.clone(),
            ..Self::default()
        };
        if let Some(publish) = &p.publish {
            c.pub_restricted = !publish.allow.is_empty();
            for s in &publish.allow {
                if is_valid_subject(s.as_bytes()) {
                    c.pub_allow.push(s.as_bytes().to_vec());
                } else {
                    tracing::warn!(subject = %s, "invalid publish allow subject, ignored");
                }
            }
            for s in &publish.deny {
                // Go: a queue qualifier has no meaning for publish; keep the subject's scope
                // rather than drop the deny.
                match split_subject_queue(s) {
                    Some(e) => {
                        if e.queue.is_some() {
                            tracing::warn!(subject = %s, "queue qualifier ignored in publish deny");
                        }
                        c.pub_deny.push(e.subject);
                    }
                    None => tracing::warn!(subject = %s, "invalid publish deny subject, ignored"),
                }
            }
        }
        // Go: validateResponsePermissions — allow_responses turns off the blanket publish allow:
        // without an explicit allow list, only responses may be published.
        if c.responses.is_some() {
            c.pub_restricted = true;
        }
        if let Some(subscribe) = &p.subscribe {
            c.sub_restricted = !subscribe.allow.is_empty();
            for s in &subscribe.allow {
                match split_subject_queue(s) {
                    Some(e) => c.sub_allow.push(e),
                    None => tracing::warn!(subject = %s, "invalid subscribe allow entry, ignored"),
                }
            }
            for s in &subscribe.deny {
                match split_subject_queue(s) {
                    Some(e) => c.sub_deny.push(e),
                    None => tracing::warn!(subject = %s, "invalid subscribe deny entry, ignored"),
                }
            }
        }
        c
    }

    /// No publish restriction at all: the connection may skip publish checks.
    pub fn publish_unrestricted(&self) -> bool {
        !self.pub_restricted && self.pub_deny.is_empty()
    }

    /// No subscribe restriction at all: the connection may skip subscribe and delivery checks.
    pub fn subscribe_unrestricted(&self) -> bool {
        !self.sub_restricted && self.sub_deny.is_empty()
    }

    /// The `allow_responses` setting, if any.
    pub fn response_permission(&self) -> Option<&ResponsePermission> {
        self.responses.as_ref()
    }

    /// May this user publish to the literal `subject`? (Dynamic response permissions are
    /// checked separately, see [`crate::auth::ResponseTracker`].)
    pub fn can_publish(&self, subject: &[u8]) -> bool {
        if self.pub_restricted && !self.pub_allow.iter().any(|p| matches(p, subject)) {
            return false;
        }
        !self.pub_deny.iter().any(|p| matches(p, subject))
    }

    /// May this user subscribe to `subject` (a pattern), in queue group `queue`?
    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        if !is_valid_subject(subject) {
            return false;
        }
        if self.sub_restricted
            && !self
                .sub_allow
                .iter()
                .any(|e| e.applies_to(queue) && is_subset(subject, &e.subject))
        {
            return false;
        }
        // Go: canSubscribeInternal matches the subscription's tokens against the deny list as if
        // they were literal, so a deny of `foo.*` also refuses `foo.>` outright. Refusing more is
        // safe; what it misses (a deny narrower than the subscription) the delivery check covers.
        !self
            .sub_deny
            .iter()
            .any(|e| e.applies_to(queue) && matches(&e.subject, subject))
    }

    /// A leaf link's wider interest: a wildcard `subject` the subscribe allow list refuses
    /// but that covers an allowed subject (Go: canSubscribe's ReverseMatch for leaf nodes).
    /// The messages under it are checked one by one on delivery.
    pub fn may_want(&self, subject: &[u8]) -> bool {
        self.sub_restricted
            && is_valid_subject(subject)
            && !is_literal(subject)
            && self
                .sub_allow
                .iter()
                .any(|e| e.queue.is_none() && is_subset(&e.subject, subject))
            && !self.sub_deny.iter().any(|e| matches(&e.subject, subject))
    }

    /// Must messages to this (allowed) subscription be re-checked on delivery? True when the
    /// subscription pattern overlaps a deny entry that applies to its queue group.
    pub fn needs_delivery_check(&self, sub_subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.sub_deny
            .iter()
            .any(|e| e.applies_to(queue) && overlaps(sub_subject, &e.subject))
    }

    /// May a message on the literal `msg_subject` be delivered to a subscription of this user in
    /// queue group `queue`? The full check: allow and deny.
    pub fn deliver_allowed(&self, msg_subject: &[u8], queue: Option<&[u8]>) -> bool {
        if self.sub_restricted
            && !self
                .sub_allow
                .iter()
                .any(|e| e.applies_to(queue) && matches(&e.subject, msg_subject))
        {
            return false;
        }
        !self
            .sub_deny
            .iter()
            .any(|e| e.applies_to(queue) && matches(&e.subject, msg_subject))
    }
}

/// Entries dropped at once when a cache is full (Go: pruneSize).
const PRUNE: usize = 32;

/// Per-connection memo of publish verdicts, so a hot subject skips the list scan.
/// Bounded: past [`PubPermCache::MAX`] entries the oldest-sorting ones are dropped.
#[derive(Debug, Default, Clone)]
pub struct PubPermCache {
    map: BTreeMap<Vec<u8>, bool>,
}

impl PubPermCache {
    /// Bound on cached subjects (nats-server: maxPermCacheSize).
    pub const MAX: usize = 128;

    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`PermissionChecker::can_publish`], memoized.
    pub fn can_publish(&mut self, checker: &PermissionChecker, subject: &[u8]) -> bool {
        if checker.publish_unrestricted() {
            return true;
        }
        if let Some(v) = self.map.get(subject) {
            return *v;
        }
        let v = checker.can_publish(subject);
        if self.map.len() >= Self::MAX {
            prune(&mut self.map);
        }
        self.map.insert(subject.to_vec(), v);
        v
    }

    /// Forgets everything (call when the connection's permissions change).
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Number of cached subjects.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Nothing cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Per-connection memo of delivery verdicts for subscriptions that need the delivery check.
/// Keyed by queue group then subject, so lookups do not allocate.
#[derive(Debug, Default, Clone)]
pub struct DeliverPermCache {
    /// Queue group (empty: no group) → subject → allowed.
    map: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, bool>>,
    len: usize,
}

impl DeliverPermCache {
    /// Bound on cached (queue, subject) pairs (nats-server: maxDenyPermCacheSize).
    pub const MAX: usize = 256;

    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`PermissionChecker::deliver_allowed`], memoized.
    pub fn deliver_allowed(
        &mut self,
        checker: &PermissionChecker,
        msg_subject: &[u8],
        queue: Option<&[u8]>,
    ) -> bool {
        let qkey = queue.unwrap_or_default();
        if let Some(v) = self.map.get(qkey).and_then(|m| m.get(msg_subject)) {
            return *v;
        }
        let v = checker.deliver_allowed(msg_subject, queue);
        if self.len >= Self::MAX {
            // Rare and cheap enough: start over rather than track per-group ages.
            self.map.clear();
            self.len = 0;
        }
        self.map
            .entry(qkey.to_vec())
            .or_default()
            .insert(msg_subject.to_vec(), v);
        self.len += 1;
        v
    }

    /// Forgets everything (call when the connection's permissions change).
    pub fn clear(&mut self) {
        self.map.clear();
        self.len = 0;
    }

    /// Number of cached pairs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn prune(map: &mut BTreeMap<Vec<u8>, bool>) {
    let drop: Vec<Vec<u8>> = map.keys().take(PRUNE).cloned().collect();
    for k in drop {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::SubjectPermission;
    use proptest::prelude::*;

    fn sp(allow: &[&str], deny: &[&str]) -> Option<SubjectPermission> {
        Some(SubjectPermission {
            allow: allow.iter().map(|s| (*s).to_owned()).collect(),
            deny: deny.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    fn pubp(allow: &[&str], deny: &[&str]) -> PermissionChecker {
        PermissionChecker::new(&Permissions {
            publish: sp(allow, deny),
            ..Permissions::default()
        })
    }

    fn subp(allow: &[&str], deny: &[&str]) -> PermissionChecker {
        PermissionChecker::new(&Permissions {
            subscribe: sp(allow, deny),
            ..Permissions::default()
        })
    }

    /// What a subscriber actually gets: subscribe-time check, then the delivery check if flagged.
    fn receives(c: &PermissionChecker, sub: &str, q: Option<&str>, msg: &str) -> bool {
        let q = q.map(str::as_bytes);
        matches(sub.as_bytes(), msg.as_bytes())
            && c.can_subscribe(sub.as_bytes(), q)
            && (!c.needs_delivery_check(sub.as_bytes(), q) || c.deliver_allowed(msg.as_bytes(), q))
    }

    #[test]
    fn no_permissions_allow_everything() {
        let c = PermissionChecker::new(&Permissions::default());
        assert!(c.publish_unrestricted() && c.subscribe_unrestricted());
        assert!(c.can_publish(b"anything.at.all"));
        assert!(c.can_subscribe(b">", Some(b"q")));
        assert!(!c.needs_delivery_check(b">", None));
    }

    #[test]
    fn publish_allow_and_deny() {
        let c = pubp(&["foo.*", "bar.>"], &["foo.secret"]);
        assert!(c.can_publish(b"foo.a"));
        assert!(c.can_publish(b"bar.a.b"));
        assert!(!c.can_publish(b"foo.secret"), "deny wins over allow");
        assert!(!c.can_publish(b"baz"));
        assert!(!c.can_publish(b"foo.a.b"));
    }

    #[test]
    fn publish_empty_allow_with_deny_is_all_but_deny() {
        let c = pubp(&[], &["admin.>"]);
        assert!(c.can_publish(b"foo"));
        assert!(!c.can_publish(b"admin.x"));
        assert!(c.can_publish(b"admin"));
    }

    #[test]
    fn publish_deny_with_queue_form_keeps_subject_scope() {
        let c = pubp(&[], &["foo.* q1"]);
        assert!(!c.can_publish(b"foo.bar"));
        assert!(c.can_publish(b"bar"));
    }

    #[test]
    fn invalid_allow_entries_never_widen() {
        let c = pubp(&["foo..bar"], &[]);
        assert!(
            !c.can_publish(b"foo"),
            "a configured allow list with only junk allows nothing"
        );
        let c = subp(&["a b c"], &[]);
        assert!(!c.can_subscribe(b"a", None));
    }

    #[test]
    fn allow_responses_turns_off_blanket_publish() {
        let c = PermissionChecker::new(&Permissions {
            allow_responses: Some(ResponsePermission::default()),
            ..Permissions::default()
        });
        assert!(!c.can_publish(b"foo"));
        assert!(c.response_permission().is_some());
        let c = PermissionChecker::new(&Permissions {
            publish: sp(&["ok"], &[]),
            allow_responses: Some(ResponsePermission::default()),
            ..Permissions::default()
        });
        assert!(c.can_publish(b"ok"));
        assert!(!c.can_publish(b"other"));
    }

    #[test]
    fn subscribe_allow_must_cover_the_whole_pattern() {
        let c = subp(&["foo.*"], &[]);
        assert!(c.can_subscribe(b"foo.bar", None));
        assert!(c.can_subscribe(b"foo.*", None));
        assert!(
            !c.can_subscribe(b"foo.>", None),
            "nats-server admits this one"
        );
        assert!(!c.can_subscribe(b">", None));
        let c = subp(&["foo.>"], &[]);
        assert!(c.can_subscribe(b"foo.*.baz", None));
        assert!(!c.can_subscribe(b"foo", None));
    }

    #[test]
    fn wildcard_sub_overlapping_deny_is_filtered_on_delivery() {
        // GHSA-wh7g-5m82-pmhr, CVE-2022-29946: the overlap (not a subset) case and queues.
        let c = subp(&["foo.>"], &["foo.bar"]);
        for q in [None, Some("q")] {
            assert!(c.can_subscribe(b"foo.*", q.map(str::as_bytes)));
            assert!(c.needs_delivery_check(b"foo.*", q.map(str::as_bytes)));
            assert!(!receives(&c, "foo.*", q, "foo.bar"));
            assert!(receives(&c, "foo.*", q, "foo.baz"));
        }
        // `*.bar` overlaps `foo.bar` without either containing the other.
        let c = subp(&[], &["foo.bar"]);
        assert!(c.can_subscribe(b"*.bar", None));
        assert!(c.needs_delivery_check(b"*.bar", None));
        assert!(!receives(&c, "*.bar", None, "foo.bar"));
        assert!(receives(&c, "*.bar", None, "baz.bar"));
        assert!(
            !c.needs_delivery_check(b"baz.*", None),
            "no overlap, no per-message check"
        );
    }

    #[test]
    fn deny_matching_subscription_tokens_refuses_it() {
        let c = subp(&[], &["foo.*"]);
        assert!(!c.can_subscribe(b"foo.bar", None));
        assert!(!c.can_subscribe(b"foo.*", None));
        assert!(
            !c.can_subscribe(b"foo.>", None),
            "as nats-server: `*` matches the `>` token"
        );
        assert!(c.can_subscribe(b"foo", None));
    }

    #[test]
    fn plain_deny_also_denies_queue_subscriptions() {
        let c = subp(&[], &["foo"]);
        assert!(!c.can_subscribe(b"foo", Some(b"q1")));
        assert!(!c.can_subscribe(b"foo", None));
    }

    #[test]
    fn queue_deny_only_denies_that_queue() {
        let c = subp(&[], &["foo q1"]);
        assert!(!c.can_subscribe(b"foo", Some(b"q1")));
        assert!(c.can_subscribe(b"foo", Some(b"q2")));
        assert!(c.can_subscribe(b"foo", None));
        // A wildcard subscription in that group must not receive `foo`.
        assert!(c.can_subscribe(b"*", Some(b"q1")));
        assert!(!receives(&c, "*", Some("q1"), "foo"));
        assert!(receives(&c, "*", Some("q2"), "foo"));
        assert!(receives(&c, "*", None, "foo"));
    }

    #[test]
    fn queue_deny_does_not_override_plain_deny() {
        // GHSA-jx8g-9g95-6322: a non-matching queue entry must not cancel the plain deny.
        let c = subp(&[], &["foo.bar", "foo.bar q1"]);
        assert!(!c.can_subscribe(b"foo.bar", Some(b"q2")));
        assert!(!receives(&c, "foo.*", Some("q2"), "foo.bar"));
        assert!(!receives(&c, "foo.*", Some("q1"), "foo.bar"));
        assert!(!receives(&c, "foo.*", None, "foo.bar"));
    }

    #[test]
    fn queue_entries_with_wildcards() {
        let c = subp(&["foo v1.*"], &["foo v1.bad"]);
        assert!(c.can_subscribe(b"foo", Some(b"v1.good")));
        assert!(!c.can_subscribe(b"foo", Some(b"v1.bad")));
        assert!(!c.can_subscribe(b"foo", Some(b"v2.x")));
        assert!(
            !c.can_subscribe(b"foo", None),
            "queue-only allow does not cover plain subs"
        );
        // `*` is also a legal literal queue name.
        let c = subp(&["foo *"], &[]);
        assert!(c.can_subscribe(b"foo", Some(b"*")));
        assert!(c.can_subscribe(b"foo", Some(b"anything")));
    }

    #[test]
    fn plain_allow_covers_every_queue() {
        let c = subp(&["foo", "foo q1"], &[]);
        assert!(
            c.can_subscribe(b"foo", Some(b"q2")),
            "nats-server refuses this one"
        );
    }

    #[test]
    fn pub_cache_is_bounded_and_consistent() {
        let c = pubp(&["a.*"], &["a.x"]);
        let mut cache = PubPermCache::new();
        for i in 0..1000 {
            let s = format!("a.{i}");
            assert_eq!(
                cache.can_publish(&c, s.as_bytes()),
                c.can_publish(s.as_bytes())
            );
            assert!(cache.len() <= PubPermCache::MAX);
        }
        assert!(!cache.can_publish(&c, b"a.x"));
        assert!(!cache.can_publish(&c, b"a.x"), "cached verdict");
        cache.clear();
        assert!(cache.is_empty());
        let open = PermissionChecker::default();
        assert!(cache.can_publish(&open, b"x"));
        assert!(cache.is_empty(), "unrestricted users never fill the cache");
    }

    #[test]
    fn deliver_cache_is_bounded_and_consistent() {
        let c = subp(&[], &["a.x q1", "a.y"]);
        let mut cache = DeliverPermCache::new();
        for i in 0..1000 {
            let s = format!("a.{i}");
            for q in [None, Some(&b"q1"[..])] {
                assert_eq!(
                    cache.deliver_allowed(&c, s.as_bytes(), q),
                    c.deliver_allowed(s.as_bytes(), q)
                );
                assert!(cache.len() <= DeliverPermCache::MAX);
            }
        }
        assert!(!cache.deliver_allowed(&c, b"a.x", Some(b"q1")));
        assert!(cache.deliver_allowed(&c, b"a.x", None));
        assert!(!cache.deliver_allowed(&c, b"a.y", None));
        cache.clear();
        assert!(cache.is_empty());
    }

    // ---- The permission algebra against a reference model. ----

    #[derive(Debug, Clone)]
    struct E {
        subject: String,
        queue: Option<String>,
    }

    impl E {
        fn render(&self) -> String {
            match &self.queue {
                Some(q) => format!("{} {q}", self.subject),
                None => self.subject.clone(),
            }
        }
    }

    fn subject_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "*", ">"]), 1..=3).prop_map(
            |toks| {
                // `>` only as the last token: cut there.
                let mut out = Vec::new();
                for t in toks {
                    out.push(t);
                    if t == ">" {
                        break;
                    }
                }
                out.join(".")
            },
        )
    }

    fn entry_strategy() -> impl Strategy<Value = E> {
        (
            subject_strategy(),
            prop::option::weighted(0.3, prop::sample::select(vec!["q1", "q2", "*"])),
        )
            .prop_map(|(subject, q)| E {
                subject,
                queue: q.map(str::to_owned),
            })
    }

    /// Reference: a literal token-by-token matcher written independently of `subject::matches`.
    fn ref_match(pattern: &str, subject: &str) -> bool {
        let p: Vec<&str> = pattern.split('.').collect();
        let s: Vec<&str> = subject.split('.').collect();
        for (i, pt) in p.iter().enumerate() {
            if *pt == ">" {
                return s.len() > i;
            }
            match s.get(i) {
                Some(st) if *pt == "*" || pt == st => {}
                _ => return false,
            }
        }
        p.len() == s.len()
    }

    fn ref_applies(e: &E, q: Option<&str>) -> bool {
        match (&e.queue, q) {
            (None, _) => true,
            (Some(eq), Some(q)) => eq == "*" || eq == q,
            (Some(_), None) => false,
        }
    }

    /// May a subscriber in queue `q` receive a message on the literal `msg`?
    fn ref_allowed(allow: &[E], deny: &[E], msg: &str, q: Option<&str>) -> bool {
        let allowed = allow.is_empty()
            || allow
                .iter()
                .any(|e| ref_applies(e, q) && ref_match(&e.subject, msg));
        allowed
            && !deny
                .iter()
                .any(|e| ref_applies(e, q) && ref_match(&e.subject, msg))
    }

    /// A literal subject matched by `sub`, choosing wildcard fillers from `fill`.
    fn instantiate(sub: &str, fill: &[&str]) -> String {
        let mut fill = fill.iter().cycle();
        let mut out: Vec<String> = Vec::new();
        for t in sub.split('.') {
            match t {
                "*" => out.push((*fill.next().unwrap_or(&"a")).to_owned()),
                ">" => {
                    out.push((*fill.next().unwrap_or(&"a")).to_owned());
                    if fill.next().is_some_and(|t| *t == "c") {
                        out.push("b".to_owned());
                    }
                }
                lit => out.push(lit.to_owned()),
            }
        }
        out.join(".")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn delivery_matches_reference(
            allow in prop::collection::vec(entry_strategy(), 0..4),
            deny in prop::collection::vec(entry_strategy(), 0..4),
            sub in subject_strategy(),
            q in prop::option::of(prop::sample::select(vec!["q1", "q2"])),
            fill in prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4),
            other in subject_strategy(),
        ) {
            let checker = PermissionChecker::new(&Permissions {
                subscribe: Some(SubjectPermission {
                    allow: allow.iter().map(E::render).collect(),
                    deny: deny.iter().map(E::render).collect(),
                }),
                ..Permissions::default()
            });
            let qb = q.map(str::as_bytes);
            // Messages under the subscription (and one that usually is not).
            let mut msgs = vec![instantiate(&sub, &fill), instantiate(&other, &fill)];
            msgs.push(instantiate(&sub, &["c"]));
            let allowed_sub = checker.can_subscribe(sub.as_bytes(), qb);
            for msg in &msgs {
                let delivered = receives(&checker, &sub, q, msg);
                if !ref_match(&sub, msg) {
                    prop_assert!(!delivered);
                    continue;
                }
                // Soundness: nothing the reference forbids is ever delivered.
                if delivered {
                    prop_assert!(ref_allowed(&allow, &deny, msg, q), "leak: {sub} {q:?} got {msg}");
                }
                // Completeness for admitted subscriptions: every allowed message arrives.
                if allowed_sub {
                    prop_assert_eq!(delivered, ref_allowed(&allow, &deny, msg, q), "{} {:?} {}", sub, q, msg);
                }
                // deliver_allowed alone is the full per-subject check.
                prop_assert_eq!(checker.deliver_allowed(msg.as_bytes(), qb), ref_allowed(&allow, &deny, msg, q));
            }
            // A literal subscription is admitted exactly when the reference allows its subject.
            if !sub.contains('*') && !sub.contains('>') {
                prop_assert_eq!(allowed_sub, ref_allowed(&allow, &deny, &sub, q));
            }
            // Publish algebra on the same lists (queue forms ignored for publish deny).
            let pc = PermissionChecker::new(&Permissions {
                publish: Some(SubjectPermission {
                    allow: allow.iter().filter(|e| e.queue.is_none()).map(E::render).collect(),
                    deny: deny.iter().map(E::render).collect(),
                }),
                ..Permissions::default()
            });
            for msg in &msgs {
                let pa: Vec<&E> = allow.iter().filter(|e| e.queue.is_none()).collect();
                let want = (pa.is_empty() || pa.iter().any(|e| ref_match(&e.subject, msg)))
                    && !deny.iter().any(|e| ref_match(&e.subject, msg));
                prop_assert_eq!(pc.can_publish(msg.as_bytes()), want);
            }
        }
    }
}
