//! [`LocalNet`]: an in-process [`RaftTransport`] between hubs, with partitions, for tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::hub::RaftHub;
use crate::network::{BoxFuture, RaftTransport, TransportError};
use crate::types::NodeId;

#[derive(Default)]
struct Inner {
    hubs: BTreeMap<NodeId, Weak<RaftHub>>,
    /// Nodes cut off from everyone.
    isolated: BTreeSet<NodeId>,
    /// Directed links that drop everything (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
}

/// An in-process network of [`RaftHub`]s: each hub sends through its [`LocalNet::endpoint`].
#[derive(Clone, Default)]
pub struct LocalNet {
    inner: Arc<Mutex<Inner>>,
}

impl LocalNet {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The transport node `from` sends through.
    pub fn endpoint(&self, from: NodeId) -> Arc<dyn RaftTransport> {
        Arc::new(Endpoint {
            from,
            net: self.clone(),
        })
    }

    /// Makes `hub` reachable as its node id (replacing an earlier hub of that id).
    pub fn register(&self, hub: &Arc<RaftHub>) {
        self.lock().hubs.insert(hub.id(), Arc::downgrade(hub));
    }

    /// Cuts `node` off from every other node, or heals it.
    pub fn set_isolated(&self, node: NodeId, isolated: bool) {
        let mut g = self.lock();
        if isolated {
            g.isolated.insert(node);
        } else {
            g.isolated.remove(&node);
        }
    }

    /// Drops everything between `a` and `b`, both ways.
    pub fn cut(&self, a: NodeId, b: NodeId) {
        let mut g = self.lock();
        g.cut.insert((a, b));
        g.cut.insert((b, a));
    }

    /// Heals every partition.
    pub fn heal(&self) {
        let mut g = self.lock();
        g.isolated.clear();
        g.cut.clear();
    }

    fn route(&self, from: NodeId, to: NodeId) -> Result<Arc<RaftHub>, TransportError> {
        let g = self.lock();
        if g.isolated.contains(&from) || g.isolated.contains(&to) || g.cut.contains(&(from, to)) {
            return Err(TransportError::Unreachable(format!(
                "{from} -> {to}: partitioned"
            )));
        }
        g.hubs
            .get(&to)
            .and_then(Weak::upgrade)
            .ok_or_else(|| TransportError::Unreachable(format!("{to}: no such node")))
    }
}

struct Endpoint {
    from: NodeId,
    net: LocalNet,
}

impl RaftTransport for Endpoint {
    fn send(
        &self,
        target: NodeId,
        frame: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let route = self.net.route(self.from, target);
        let net = self.net.clone();
        let from = self.from;
        Box::pin(async move {
            let hub = route?;
            let reply = hub.handle_frame(&frame).await;
            // A partition that came up meanwhile loses the reply.
            net.route(target, from)
                .map_err(|e| TransportError::Network(format!("reply lost: {e}")))?;
            Ok(reply)
        })
    }
}
