//! A publisher's own cache of subject match results (see [`MatchCache`]).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use bytes::Bytes;

use super::SubRef;
use crate::account::Account;
use crate::sublist::SublistResult;

/// A publisher's own cache of match results for its account, checked against the sublist's
/// generation, so repeated subjects skip the shared cache's lock entirely.
#[derive(Debug, Default)]
pub struct MatchCache {
    account: usize,
    entries: HashMap<Bytes, (u64, Arc<SublistResult<SubRef>>), BuildHasherDefault<SubjectHasher>>,
}

/// A multiply-rotate hash over eight bytes at a time. SipHash cost a hundred instructions
/// per publish here; flooding the cache with colliding subjects only slows the publisher's
/// own connection (the cache is its own and bounded by [`MATCH_CACHE_MAX`]), so a keyed hash
/// buys nothing.
#[derive(Default)]
struct SubjectHasher(u64);

impl SubjectHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for SubjectHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let mut w = [0u8; 8];
        let rest = chunks.remainder();
        w[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(w));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Entries a [`MatchCache`] keeps before it starts over.
const MATCH_CACHE_MAX: usize = 256;

impl MatchCache {
    pub(super) fn lookup(
        &mut self,
        account: &Account,
        subject: &[u8],
    ) -> Arc<SublistResult<SubRef>> {
        let key = std::ptr::from_ref(account) as usize;
        if self.account != key {
            self.entries.clear();
            self.account = key;
        }
        // Read the generation before matching: a result is never newer than its stamp.
        let generation = account.sublist.generation();
        if let Some((g, r)) = self.entries.get(subject) {
            if *g == generation {
                return Arc::clone(r);
            }
        }
        let r = account.sublist.matches(subject);
        if self.entries.len() >= MATCH_CACHE_MAX {
            self.entries.clear();
        }
        self.entries.insert(
            Bytes::copy_from_slice(subject),
            (generation, Arc::clone(&r)),
        );
        r
    }
}
