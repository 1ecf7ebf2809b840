//! What `/leafz` and `/varz` show of the leaf links, in nats-server 2.9.10's shape.

use std::sync::atomic::Ordering;

use super::Leafs;
use crate::monitor::timefmt::go_duration;
use crate::monitor::types::{LeafInfo, LeafNodeOptsVarz};
use crate::server::lock;

impl Leafs {
    /// The `leafs` of `/leafz` (Go: monitor.go Leafz), in link id order; with `subs`, each
    /// link's interest as `subject[ queue]`.
    pub(crate) fn leafz_entries(&self, subs: bool) -> Vec<LeafInfo> {
        let links = self.snapshot();
        let st = lock(&self.state);
        links
            .iter()
            .map(|e| {
                let h = &e.handle;
                let rtt = lock(&h.conn).rtt();
                let mut list: Vec<String> = st
                    .remote
                    .keys()
                    .filter(|(id, _)| *id == h.id)
                    .map(|(_, (_, subject, queue))| {
                        let mut s = String::from_utf8_lossy(subject).into_owned();
                        if let Some(q) = queue {
                            s.push(' ');
                            s.push_str(&String::from_utf8_lossy(q));
                        }
                        s
                    })
                    .collect();
                list.sort();
                LeafInfo {
                    account: e.account.clone(),
                    ip: e.peer.ip().to_string(),
                    port: e.peer.port(),
                    rtt: rtt.map(go_duration).unwrap_or_default(),
                    in_msgs: h.in_msgs.load(Ordering::Relaxed),
                    out_msgs: h.out_msgs.load(Ordering::Relaxed),
                    in_bytes: h.in_bytes.load(Ordering::Relaxed),
                    out_bytes: h.out_bytes.load(Ordering::Relaxed),
                    subscriptions: list.len(),
                    subscriptions_list: if subs { list } else { Vec::new() },
                }
            })
            .collect()
    }

    /// `leaf` of `/varz`: the listener, when there is one.
    pub(crate) fn varz(&self) -> LeafNodeOptsVarz {
        let Some(addr) = *lock(&self.addr) else {
            return LeafNodeOptsVarz::default();
        };
        let auth_timeout = self
            .settings()
            .map_or(0.0, |s| s.auth_timeout.as_secs_f64());
        LeafNodeOptsVarz {
            host: addr.ip().to_string(),
            port: addr.port(),
            auth_timeout,
        }
    }
}
