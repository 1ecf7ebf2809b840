//! `leafnode_urls` gossip. A hub tells its leaves the leaf URLs of its whole cluster (its own
//! and those its routes carry), again whenever they change, so a leaf can move to another
//! node of the cluster when its node goes away (Go: leafnode.go generateLeafNodeInfoJSON,
//! sendAsyncLeafNodeInfo; route.go addRoute/removeRoute).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use natsd_core::leaf::LeafSettings;

use super::Leafs;
use crate::server::{lock, Shared};

impl Leafs {
    /// The leaf URL our route INFO carries: our own, unless `leafnodes.no_advertise` (Go:
    /// route.go startRouteAcceptLoop sets `LeafNodeURLs` from `leafNodeInfo.IP`).
    pub(crate) fn advertised_url(&self) -> Option<String> {
        if self.no_advertise.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.own_url).clone()
    }
}

impl Shared {
    /// Recomputes the leaf URLs our leaf INFO offers (ours first, then the routed peers',
    /// sorted) and, when they changed, sends the new list to every leaf that dialed us.
    pub(crate) fn update_leaf_urls(&self) {
        if self.leafs.settings().is_none() || lock(&self.leafs.addr).is_none() {
            // Not a hub: no leaf dials us.
            return;
        }
        let mut urls: Vec<String> = lock(&self.leafs.own_url).iter().cloned().collect();
        for u in self.cluster.peer_leaf_urls() {
            if !urls.contains(&u) {
                urls.push(u);
            }
        }
        {
            let mut cur = self
                .leafs
                .settings
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let Some(c) = cur.as_mut() else {
                return;
            };
            if c.info.leafnode_urls == urls {
                return;
            }
            let mut new: LeafSettings = (**c).clone();
            new.info.leafnode_urls.clone_from(&urls);
            *c = Arc::new(new);
        }
        tracing::debug!(urls = ?urls, "leafnode URLs updated");
        // Links accepted from now on carry the new list in their INFO; these are told.
        let hubbed: Vec<_> = lock(&self.leafs.state)
            .links
            .values()
            .filter(|e| !e.handle.spoke)
            .map(|e| Arc::clone(&e.handle))
            .collect();
        for h in hubbed {
            h.with(|c| c.send_leaf_urls(&urls));
        }
    }
}
