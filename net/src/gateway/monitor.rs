//! What `/gatewayz` and `/varz` show of the gateways, in nats-server 2.9.10's shape.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use natsd_core::options::GatewayConfig;

use super::{GatewayEntry, Gateways};
use crate::monitor::timefmt::{go_duration, rfc3339, uptime};
use crate::monitor::types::{
    AccountGatewayz, ConnInfo, GatewayOptsVarz, RemoteGatewayOptsVarz, RemoteGatewayz,
};
use crate::server::lock;

/// Go: gateway.go defaultGatewayMaxRUnsubBeforeSwitch, shown as each account's
/// `interest_only_threshold`.
const INTEREST_ONLY_THRESHOLD: usize = 1000;
/// Go: GatewayInterestMode.String for InterestOnly.
const INTEREST_ONLY: &str = "Interest-Only";

/// `/gatewayz` filters (Go: GatewayzOptions): `gw_name`, `accs`, `acc_name`.
#[derive(Debug, Clone, Default)]
pub(crate) struct GatewayzFilter {
    pub(crate) name: String,
    pub(crate) accounts: bool,
    pub(crate) account: String,
}

impl Gateways {
    /// `outbound_gateways` and `inbound_gateways` of `/gatewayz` (Go: monitor.go
    /// createOutboundsRemoteGatewayz, createInboundsRemoteGatewayz).
    pub(crate) fn gatewayz_entries(
        &self,
        now: SystemTime,
        f: &GatewayzFilter,
    ) -> (
        std::collections::BTreeMap<String, RemoteGatewayz>,
        std::collections::BTreeMap<String, Vec<RemoteGatewayz>>,
    ) {
        let accs = f.accounts || !f.account.is_empty();
        let wanted = |n: &str| f.name.is_empty() || f.name == n;
        let (outbound, inbound) = self.snapshot();
        let st = lock(&self.state);
        let mut out = std::collections::BTreeMap::new();
        for e in outbound.iter().filter(|e| wanted(&e.name)) {
            let configured = st.remotes.get(&e.name).is_some_and(|r| !r.implicit);
            let accounts = if accs {
                // Each account the peer switched, with the interest it told us.
                let mut list: Vec<AccountGatewayz> = Vec::new();
                for ((id, acc), complete) in &st.out_modes {
                    if *id != e.handle.id || (!f.account.is_empty() && *acc != f.account) {
                        continue;
                    }
                    let (mut subs, mut qsubs) = (0, 0);
                    for (cid, (a, subject, queue)) in st.remote.keys() {
                        if *cid == e.handle.id && a == acc && !subject.starts_with(b"_GR_.") {
                            subs += 1;
                            qsubs += usize::from(queue.is_some());
                        }
                    }
                    list.push(AccountGatewayz {
                        name: acc.clone(),
                        interest_mode: if *complete {
                            INTEREST_ONLY
                        } else {
                            "Transitioning"
                        }
                        .to_owned(),
                        interest_only_threshold: INTEREST_ONLY_THRESHOLD,
                        num_subs: subs,
                        num_queue_subs: qsubs,
                        ..AccountGatewayz::default()
                    });
                }
                list
            } else {
                Vec::new()
            };
            out.insert(
                e.name.clone(),
                RemoteGatewayz {
                    configured,
                    connection: Some(conn_info(e, now)),
                    accounts,
                },
            );
        }
        let mut inb: std::collections::BTreeMap<String, Vec<RemoteGatewayz>> =
            std::collections::BTreeMap::new();
        for e in inbound.iter().filter(|e| wanted(&e.name)) {
            let accounts = if accs {
                e.switched
                    .iter()
                    .filter(|a| f.account.is_empty() || **a == f.account)
                    .map(|a| AccountGatewayz {
                        name: a.clone(),
                        interest_mode: INTEREST_ONLY.to_owned(),
                        interest_only_threshold: INTEREST_ONLY_THRESHOLD,
                        ..AccountGatewayz::default()
                    })
                    .collect()
            } else {
                Vec::new()
            };
            inb.entry(e.name.clone()).or_default().push(RemoteGatewayz {
                configured: false,
                connection: Some(conn_info(e, now)),
                accounts,
            });
        }
        (out, inb)
    }

    /// `gateway` of `/varz`: our listener and the configured remote clusters.
    pub(crate) fn varz(&self, cfg: Option<&GatewayConfig>) -> GatewayOptsVarz {
        let Some(c) = cfg.filter(|c| c.enabled()) else {
            return GatewayOptsVarz::default();
        };
        let addr = *lock(&self.addr);
        GatewayOptsVarz {
            name: c.name.clone(),
            host: c.host.clone(),
            port: addr.map_or(c.port.unwrap_or(0), |a| a.port()),
            auth_timeout: c.auth_timeout.as_secs_f64(),
            advertise: c.advertise.clone().unwrap_or_default(),
            connect_retries: c.connect_retries,
            // Go: names only (the URLs may hold credentials).
            gateways: c
                .gateways
                .iter()
                .map(|g| RemoteGatewayOptsVarz {
                    name: g.name.clone(),
                    urls: Vec::new(),
                })
                .collect(),
            reject_unknown: c.reject_unknown,
        }
    }
}

/// Go: monitor.go ConnInfo.fill for a gateway connection.
fn conn_info(e: &GatewayEntry, now: SystemTime) -> ConnInfo {
    let h = &e.handle;
    let (pending, rtt) = {
        let c = lock(&h.conn);
        (c.pending_bytes(), c.rtt())
    };
    let up = now.duration_since(e.start).unwrap_or_default();
    ConnInfo {
        cid: h.id,
        kind: "Gateway".to_owned(),
        ip: e.peer.ip().to_string(),
        port: e.peer.port(),
        start: rfc3339(e.start),
        last_activity: rfc3339(now),
        rtt: rtt.map(go_duration).unwrap_or_default(),
        uptime: uptime(up),
        idle: uptime(std::time::Duration::ZERO),
        pending_bytes: pending as u64,
        in_msgs: h.in_msgs.load(Ordering::Relaxed),
        out_msgs: h.out_msgs.load(Ordering::Relaxed),
        in_bytes: h.in_bytes.load(Ordering::Relaxed),
        out_bytes: h.out_bytes.load(Ordering::Relaxed),
        name: e.remote_id.clone(),
        ..ConnInfo::default()
    }
}
