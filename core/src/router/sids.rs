//! A connection's subscriptions by sid.
//!
//! The sid already lives in each subscription's [`SubTarget::Client`], so the map stores only
//! the `SubRef` and borrows its key from there: one pointer per entry, and no second copy (or
//! shared-buffer header) of the sid.

use std::borrow::Borrow;
#[allow(clippy::disallowed_types)]
// iteration order never escapes: `sorted` sorts, drains only unsubscribe
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use bytes::Bytes;

use super::{SubRef, SubTarget};

/// The key of anything that is not a client subscription (never stored in a [`SidMap`]).
static NO_SID: Bytes = Bytes::new();

/// A client subscription, hashed and compared by its sid.
#[derive(Debug, Clone)]
struct BySid(SubRef);

impl BySid {
    fn sid(&self) -> &Bytes {
        match &self.0 .0.target {
            SubTarget::Client { sid, .. } => sid,
            _ => &NO_SID,
        }
    }
}

impl Borrow<[u8]> for BySid {
    fn borrow(&self) -> &[u8] {
        self.sid()
    }
}

impl Hash for BySid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Hashes as `[u8]` does, so lookups by a borrowed sid find it.
        <[u8]>::hash(self.sid(), state);
    }
}

impl PartialEq for BySid {
    fn eq(&self, other: &Self) -> bool {
        self.sid() == other.sid()
    }
}

impl Eq for BySid {}

/// Client subscriptions keyed by sid.
#[derive(Debug, Default)]
pub(super) struct SidMap {
    #[allow(clippy::disallowed_types)] // see the import
    set: HashSet<BySid>,
}

impl SidMap {
    pub(super) fn len(&self) -> usize {
        self.set.len()
    }

    pub(super) fn contains_key(&self, sid: &[u8]) -> bool {
        self.set.contains(sid)
    }

    pub(super) fn get(&self, sid: &[u8]) -> Option<&SubRef> {
        self.set.get(sid).map(|b| &b.0)
    }

    /// Adds a client subscription under the sid of its target; false if that sid is taken.
    pub(super) fn insert(&mut self, sub: SubRef) -> bool {
        debug_assert!(matches!(sub.0.target, SubTarget::Client { .. }));
        self.set.insert(BySid(sub))
    }

    pub(super) fn remove(&mut self, sid: &[u8]) -> Option<SubRef> {
        self.set.take(sid).map(|b| b.0)
    }

    pub(super) fn drain(&mut self) -> impl Iterator<Item = SubRef> + '_ {
        self.set.drain().map(|b| b.0)
    }

    /// `(sid, subscription)` pairs sorted by sid.
    pub(super) fn sorted(&self) -> Vec<(&Bytes, &SubRef)> {
        let mut v: Vec<_> = self.set.iter().map(|b| (b.sid(), &b.0)).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::router::{ClientShared, Notifier, Subscription};

    #[derive(Debug)]
    struct Quiet;

    impl Notifier for Quiet {
        fn notify_write(&self) {}
        fn notify_close(&self) {}
    }

    /// Bytes per subscription are the budget of the 100k-subscription benchmark: a field added
    /// to `Subscription` or a large `SubTarget` variant should be a conscious choice.
    #[test]
    fn subscription_stays_small() {
        assert!(size_of::<SubTarget>() <= 48);
        assert!(size_of::<Subscription>() <= 136);
        assert_eq!(size_of::<BySid>(), 8);
    }

    #[test]
    fn keyed_by_the_sid_of_the_target() {
        let client = ClientShared::new(1, 1 << 20, Arc::new(Quiet));
        let sub = |sid: &'static [u8]| {
            SubRef(Arc::new(Subscription::new(
                Bytes::from_static(b"a.b"),
                None,
                SubTarget::Client {
                    client: Arc::clone(&client),
                    sid: Bytes::from_static(sid),
                    check_deny: false,
                },
            )))
        };
        let mut m = SidMap::default();
        let one = sub(b"1");
        assert!(m.insert(one.clone()));
        assert!(!m.insert(sub(b"1")), "a taken sid is refused");
        assert!(m.insert(sub(b"22")));
        assert!(m.insert(sub(b"10")));
        assert_eq!(m.len(), 3);
        assert!(m.contains_key(b"22"));
        assert!(m.get(b"1").is_some_and(|s| *s == one));
        let order: Vec<&[u8]> = m.sorted().iter().map(|(sid, _)| &sid[..]).collect();
        assert_eq!(order, [&b"1"[..], b"10", b"22"]);
        assert!(m.remove(b"1").is_some_and(|s| s == one));
        assert!(m.remove(b"1").is_none());
        assert_eq!(m.drain().count(), 2);
        assert_eq!(m.len(), 0);
    }
}
