//! JetStream across a leaf link: which JetStream API subjects may cross it.
//!
//! Each side of a link may run its own JetStream, each in its own *domain* (`jetstream {
//! domain }`). A server answers its account's `$JS.API.>` and, with a domain `D`, also
//! `$JS.D.API.>` (the same API under a name the other side can address). Its JetStream's
//! subscriptions (the API, `$JS.ACK.>`, each stream's subjects) are interest like any other,
//! so the link carries them: a client on the leaf reaches the hub's JetStream with
//! `$JS.hub.API.>` (async-nats `jetstream::with_domain`, nats-py `jetstream(domain=…)`),
//! publishes into the hub's streams and acks the hub's consumers.
//!
//! What must not cross is the undomained API when *both* sides run JetStream: a request on
//! `$JS.API.>` would be answered twice (by each side's JetStream). So, as nats-server 2.9.10
//! does on every link of a non-system account (Go: leafnode.go addLeafNodeConnection,
//! `denyAllClientJs`), `$JS.API.>`, `$KV.>` and `$OBJ.>` are denied both ways: no interest in
//! them is sent or taken, and no message on them crosses. And a server with a domain never
//! sends a request for its own domain out (Go: the same function's `blockMappingOutgoing`,
//! a guard against a hub and a leaf configured with the same domain… and against answering
//! twice): its own JetStream answers it.
//!
//! nats-server also denies `$JSC.>` and `$NRG.>` (its clustered JetStream's internal
//! subjects), but only on a link of the system account, where a leaf with the same domain
//! *extends* the hub's JetStream; natsd's links carry no system account and do not extend a
//! domain, so those subjects never reach a link here.
//!
//! Where natsd differs on purpose: when only one side runs JetStream, nats-server 2.9.10 still
//! denies `$JS.API.>` (a leaf without JetStream reaches its hub's only through a shared system
//! account, which natsd's links do not carry, or through the hub's domain). natsd lets it
//! cross, so a leaf without JetStream uses its hub's with plain `$JS.API.>` (and the KV and
//! object-store subjects): with one JetStream on the link no request can be answered twice.
//! The peer's `jetstream` and `domain` come from its INFO (we are the leaf) or CONNECT (we are
//! the hub), as nats-server sends them.

use crate::subject;

/// The prefix of a JetStream consumer's ack reply subjects.
pub const JS_ACK_PREFIX: &[u8] = b"$JS.ACK.";

/// A JetStream delivery crossing a link goes under its deliver subject (what the receiving
/// side routes on) but its subscriber must see the subject the message was stored under: Go
/// appends `@<stored subject>` to the `$JS.ACK.` reply (client.go, the JetStream delivery to
/// a route or leaf), and the receiving server takes it off again.
pub fn encode_js_reply(reply: &[u8], subject: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(reply.len() + 1 + subject.len());
    v.extend_from_slice(reply);
    v.push(b'@');
    v.extend_from_slice(subject);
    v
}

/// The plain ack reply and the stored subject of a reply [`encode_js_reply`] made (Go:
/// client.go processMsgResults — a `$JS.ACK.` reply with a non-empty part after its last `@`).
pub fn split_js_reply(reply: &[u8]) -> Option<(&[u8], &[u8])> {
    if !reply.starts_with(JS_ACK_PREFIX) {
        return None;
    }
    let at = reply.iter().rposition(|&b| b == b'@')?;
    (at + 1 < reply.len()).then(|| (&reply[..at], &reply[at + 1..]))
}

/// Denied both ways when both sides run JetStream (Go: jetstream_api.go denyAllClientJs).
const DENY_BOTH: [&[u8]; 3] = [b"$JS.API.>", b"$KV.>", b"$OBJ.>"];

/// One side's JetStream, as a link sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsSide {
    /// JetStream is enabled.
    pub enabled: bool,
    /// Its domain (empty: none).
    pub domain: String,
}

/// What a bound link keeps from crossing for JetStream's sake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsDeny {
    /// [`DENY_BOTH`] applies.
    both: bool,
    /// `$JS.<our domain>.API.>`: never sent out.
    own_domain: Option<Vec<u8>>,
}

impl JsDeny {
    /// The rules for a link between `local` and `peer`.
    pub fn new(local: &JsSide, peer: &JsSide) -> Self {
        let own_domain = (local.enabled && !local.domain.is_empty() && local.domain != peer.domain)
            .then(|| format!("$JS.{}.API.>", local.domain).into_bytes());
        Self {
            both: local.enabled && peer.enabled,
            own_domain,
        }
    }

    /// Is nothing denied?
    pub fn is_empty(&self) -> bool {
        !self.both && self.own_domain.is_none()
    }

    fn both(&self) -> &'static [&'static [u8]] {
        if self.both {
            &DENY_BOTH
        } else {
            &[]
        }
    }

    /// May a message on `subject` (literal) be sent to the peer?
    pub fn may_send(&self, subject: &[u8]) -> bool {
        !self.both().iter().any(|d| subject::matches(d, subject))
            && self
                .own_domain
                .as_deref()
                .is_none_or(|d| !subject::matches(d, subject))
    }

    /// May a message on `subject` (literal) from the peer be taken in?
    pub fn may_receive(&self, subject: &[u8]) -> bool {
        !self.both().iter().any(|d| subject::matches(d, subject))
    }

    /// May our interest in `subject` (a wildcard too) be told to the peer? Not when every
    /// subject it matches is denied both ways.
    pub fn may_tell(&self, subject: &[u8]) -> bool {
        !self.both().iter().any(|d| subject::is_subset(subject, d))
    }

    /// Is the peer's interest in `subject` pointless, every subject it matches being one we
    /// never send? (Then it is ignored: it would only hide that nobody here answers.)
    pub fn ignores_interest(&self, subject: &[u8]) -> bool {
        self.both().iter().any(|d| subject::is_subset(subject, d))
            || self
                .own_domain
                .as_deref()
                .is_some_and(|d| subject::is_subset(subject, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(enabled: bool, domain: &str) -> JsSide {
        JsSide {
            enabled,
            domain: domain.to_owned(),
        }
    }

    #[test]
    fn both_with_jetstream_keep_the_plain_api_home() {
        let d = JsDeny::new(&side(true, "leaf"), &side(true, "hub"));
        for s in [&b"$JS.API.INFO"[..], b"$KV.b.k", b"$OBJ.x"] {
            assert!(!d.may_send(s) && !d.may_receive(s), "{s:?}");
        }
        assert!(!d.may_tell(b"$JS.API.>"));
        assert!(d.ignores_interest(b"$JS.API.>"));
        assert!(d.ignores_interest(b"$JS.API.STREAM.INFO.S"));
        // Our own domain stays here; the peer's crosses both ways.
        assert!(!d.may_send(b"$JS.leaf.API.INFO"));
        assert!(d.may_receive(b"$JS.leaf.API.INFO"));
        assert!(d.may_tell(b"$JS.leaf.API.>"));
        assert!(d.may_send(b"$JS.hub.API.INFO"));
        assert!(!d.ignores_interest(b"$JS.hub.API.>"));
        // Acks, stream subjects and wildcards that merely include the API cross.
        assert!(d.may_send(b"$JS.ACK.S.C.1.1.1.1.0"));
        assert!(d.may_tell(b"$JS.ACK.>") && d.may_tell(b">"));
        assert!(!d.ignores_interest(b">"));
        assert!(d.may_send(b"orders.1"));
    }

    #[test]
    fn one_jetstream_on_the_link_shares_it() {
        let d = JsDeny::new(&side(false, ""), &side(true, "hub"));
        assert!(d.is_empty());
        assert!(d.may_send(b"$JS.API.INFO") && d.may_tell(b"$JS.API.>"));
        // The hub keeps requests for its own domain, and lets the plain API cross.
        let d = JsDeny::new(&side(true, "hub"), &side(false, ""));
        assert!(d.may_send(b"$JS.API.INFO") && d.may_receive(b"$JS.API.INFO"));
        assert!(!d.may_send(b"$JS.hub.API.INFO"));
        assert!(JsDeny::new(&side(true, ""), &side(false, "")).is_empty());
    }

    #[test]
    fn the_stored_subject_rides_in_the_ack_reply() {
        let r = encode_js_reply(b"$JS.ACK.S.C.1.1.1.5.0", b"orders.1");
        assert_eq!(r, b"$JS.ACK.S.C.1.1.1.5.0@orders.1");
        assert_eq!(
            split_js_reply(&r),
            Some((&b"$JS.ACK.S.C.1.1.1.5.0"[..], &b"orders.1"[..]))
        );
        assert_eq!(split_js_reply(b"$JS.ACK.S.C.1.1.1.5.0"), None);
        assert_eq!(split_js_reply(b"$JS.ACK.S.C.1.1.1.5.0@"), None);
        assert_eq!(split_js_reply(b"_INBOX.a@b"), None);
    }

    #[test]
    fn a_shared_domain_is_not_blocked_outgoing() {
        // Go: the same domain on both sides is an extension; only the plain API is denied.
        let d = JsDeny::new(&side(true, "d"), &side(true, "d"));
        assert!(d.may_send(b"$JS.d.API.INFO"));
        assert!(!d.may_send(b"$JS.API.INFO"));
    }
}
