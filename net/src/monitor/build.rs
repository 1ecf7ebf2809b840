//! Builds the monitoring documents from the server's live state.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use natsd_core::account::Account;
use natsd_core::router::SubTarget;
use natsd_core::sublist::SublistStats;

use super::timefmt::{go_duration, rfc3339, uptime};
use super::types::*;
use crate::server::{lock, ClientEntry, ClosedClient, Shared, NATS_COMPAT_VERSION};

/// Default page size of `/connz` and `/subsz` (Go: DefaultConnListSize, DefaultSubListSize).
pub const DEFAULT_LIST_SIZE: usize = 1024;

/// How `/connz` sorts. Go: server/monitor.go SortOpt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SortOpt {
    /// Connection id, ascending.
    #[default]
    Cid,
    /// Connect time, ascending.
    Start,
    /// Subscription count, descending.
    Subs,
    /// Pending bytes, descending.
    Pending,
    /// Messages sent to the client, descending.
    MsgsTo,
    /// Messages received from the client, descending.
    MsgsFrom,
    /// Bytes sent to the client, descending.
    BytesTo,
    /// Bytes received from the client, descending.
    BytesFrom,
    /// Last activity, most recent first.
    Last,
    /// Idle time, longest first.
    Idle,
    /// Uptime, longest first.
    Uptime,
    /// Close time, most recent first (closed connections only).
    Stop,
    /// Close reason (closed connections only).
    Reason,
    /// Round-trip time, longest first.
    Rtt,
}

impl SortOpt {
    /// Parses a `sort=` value; the error text is nats-server's.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "" | "cid" => Self::Cid,
            "start" => Self::Start,
            "subs" => Self::Subs,
            "pending" => Self::Pending,
            "msgs_to" => Self::MsgsTo,
            "msgs_from" => Self::MsgsFrom,
            "bytes_to" => Self::BytesTo,
            "bytes_from" => Self::BytesFrom,
            "last" => Self::Last,
            "idle" => Self::Idle,
            "uptime" => Self::Uptime,
            "stop" => Self::Stop,
            "reason" => Self::Reason,
            "rtt" => Self::Rtt,
            other => return Err(format!("invalid sorting option: {other}")),
        })
    }
}

/// Which connections `/connz` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConnState {
    /// Open connections.
    #[default]
    Open,
    /// Recently closed connections (the `max_closed_clients` ring).
    Closed,
    /// Both.
    Any,
}

/// `/connz` query options. Go: server/monitor.go ConnzOptions.
#[derive(Debug, Clone, Default)]
pub struct ConnzOptions {
    /// Sort order.
    pub sort: SortOpt,
    /// Show `authorized_user` and `account` (`auth=true`).
    pub username: bool,
    /// List subscription subjects (`subs=true`).
    pub subscriptions: bool,
    /// List subscriptions in detail (`subs=detail`).
    pub subscriptions_detail: bool,
    /// Skip this many.
    pub offset: usize,
    /// Show at most this many; 0 is the default (1024).
    pub limit: usize,
    /// Only this connection id (open or closed).
    pub cid: u64,
    /// Open, closed or any.
    pub state: ConnState,
    /// Only connections of this user.
    pub user: String,
    /// Only connections of this account.
    pub account: String,
}

/// `/subsz` query options. Go: server/monitor.go SubszOptions.
#[derive(Debug, Clone, Default)]
pub struct SubszOptions {
    /// List the subscriptions.
    pub subscriptions: bool,
    /// Skip this many.
    pub offset: usize,
    /// Show at most this many; 0 is the default (1024).
    pub limit: usize,
    /// Only subscriptions a message on this literal subject would match.
    pub test: String,
    /// Only this account.
    pub account: String,
}

/// `/accountz` query options.
#[derive(Debug, Clone, Default)]
pub struct AccountzOptions {
    /// Detail of this account instead of the list of names.
    pub account: String,
}

/// `/accstatz` query options.
#[derive(Debug, Clone, Default)]
pub struct AccountStatzOptions {
    /// Only these accounts (all when empty).
    pub accounts: Vec<String>,
    /// Include accounts without connections.
    pub include_unused: bool,
}

/// A page of `items` at `offset` with at most `limit` entries; never overflows
/// (GHSA-q59r-vq66-pxc2 was an offset+limit overflow in nats-server).
pub(crate) fn page<T>(mut items: Vec<T>, offset: usize, limit: usize) -> Vec<T> {
    let start = offset.min(items.len());
    let end = start.saturating_add(limit).min(items.len());
    items.truncate(end);
    items.drain(..start);
    items
}

impl Shared {
    pub(super) fn now_string(&self) -> (SystemTime, String) {
        let now = self.wall_clock();
        (now, rfc3339(now))
    }

    fn out_totals(&self) -> (u64, u64) {
        let mut msgs = self.closed_out_msgs.load(Ordering::Relaxed);
        let mut bytes = self.closed_out_bytes.load(Ordering::Relaxed);
        for c in self.clients_snapshot() {
            msgs += c.shared.stats.out_msgs.load(Ordering::Relaxed);
            bytes += c.shared.stats.out_bytes.load(Ordering::Relaxed);
        }
        (msgs, bytes)
    }

    pub(crate) fn total_subscriptions(&self) -> u64 {
        self.accounts_snapshot()
            .iter()
            .map(|a| u64::from(a.sublist.count()))
            .sum()
    }

    pub(crate) fn varz(&self) -> Varz {
        let opts = self.opts();
        let cfg = self.client_config();
        let (now, now_s) = self.now_string();
        let (out_msgs, out_bytes) = self.out_totals();
        let (mem, cpu) = super::proc::sample(&self.cpu_sample);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let http = *lock(&self.http_addr);
        let https = *lock(&self.https_addr);
        Varz {
            server_id: self.server_id.clone(),
            server_name: self.server_name.clone(),
            version: NATS_COMPAT_VERSION.to_owned(),
            proto: 1,
            git_commit: String::new(),
            go: crate::server::BUILD_TOOLCHAIN.to_owned(),
            host: opts.host.clone(),
            port: cfg.info.port,
            auth_required: opts.auth_required(),
            tls_required: opts.tls.is_some(),
            tls_verify: opts
                .tls
                .as_ref()
                .is_some_and(|t| t.verify || t.verify_and_map),
            connect_urls: cfg.info.connect_urls.clone(),
            max_connections: opts.max_connections,
            max_subscriptions: opts.max_subscriptions,
            ping_interval: nanos(opts.ping_interval),
            ping_max: opts.ping_max,
            http_host: opts.http_host.clone(),
            http_port: http.map_or(0, |a| a.port()),
            http_base_path: opts.http_base_path.clone(),
            https_port: https.map_or(0, |a| a.port()),
            auth_timeout: opts.auth_timeout().as_secs_f64(),
            max_control_line: opts.max_control_line,
            max_payload: opts.max_payload,
            max_pending: opts.max_pending,
            cluster: self.cluster_varz(),
            gateway: self.gateways.varz(self.opts().gateway.as_ref()),
            leaf: self.leafs.varz(),
            mqtt: MqttOptsVarz::default(),
            websocket: WebsocketOptsVarz::default(),
            jetstream: self.jetstream_varz(),
            tls_timeout: opts
                .tls
                .as_ref()
                .map_or(natsd_core::options::DEFAULT_TLS_TIMEOUT, |t| t.timeout)
                .as_secs_f64(),
            write_deadline: nanos(opts.write_deadline),
            start: rfc3339(self.start_time),
            now: now_s,
            uptime: uptime(now.duration_since(self.start_time).unwrap_or_default()),
            mem,
            cores,
            gomaxprocs: cores,
            cpu,
            connections: self.num_clients() as u64,
            total_connections: self.total_connections.load(Ordering::Relaxed),
            routes: self.cluster.num_routes() as u64,
            remotes: self.cluster.num_routes() as u64,
            leafnodes: self.leafs.num_links() as u64,
            in_msgs: self.in_msgs.load(Ordering::Relaxed),
            out_msgs,
            in_bytes: self.in_bytes.load(Ordering::Relaxed),
            out_bytes,
            slow_consumers: self.slow_consumers.load(Ordering::Relaxed),
            slow_consumer_stats: {
                let total = self.slow_consumers.load(Ordering::Relaxed);
                let routes = self.cluster.slow_consumers.load(Ordering::Relaxed);
                SlowConsumerStats {
                    clients: total.saturating_sub(routes),
                    routes,
                    ..SlowConsumerStats::default()
                }
            },
            subscriptions: self.total_subscriptions(),
            http_req_stats: lock(&self.http_req_stats).clone(),
            config_load_time: rfc3339(*lock(&self.config_load_time)),
            system_account: self.system_account_name(),
        }
    }

    pub(crate) fn connz(&self, o: &ConnzOptions) -> Result<Connz, String> {
        if o.state == ConnState::Open && matches!(o.sort, SortOpt::Stop | SortOpt::Reason) {
            let which = if o.sort == SortOpt::Stop {
                "stop"
            } else {
                "reason"
            };
            return Err(format!("sort by {which} only valid on closed connections"));
        }
        let (now, now_s) = self.now_string();
        let limit = if o.limit == 0 {
            DEFAULT_LIST_SIZE
        } else {
            o.limit
        };
        let details = if o.subscriptions_detail {
            self.client_sub_details()
        } else {
            BTreeMap::new()
        };
        let mut infos: Vec<ConnInfo> = Vec::new();
        let wanted = |account: Option<&String>, user: Option<&String>, cid: u64| {
            (o.cid == 0 || o.cid == cid)
                && (o.account.is_empty() || account.is_some_and(|a| *a == o.account))
                && (o.user.is_empty() || user.is_some_and(|u| *u == o.user))
        };
        // A cid query looks everywhere: the connection may have closed meanwhile.
        let state = if o.cid != 0 { ConnState::Any } else { o.state };
        if matches!(state, ConnState::Open | ConnState::Any) {
            for e in self.clients_snapshot() {
                if wanted(e.account.as_ref(), e.user.as_ref(), e.shared.id) {
                    infos.push(open_info(&e, now, o, &details));
                }
            }
        }
        if matches!(state, ConnState::Closed | ConnState::Any) {
            for c in lock(&self.closed).iter() {
                let e = &c.entry;
                if wanted(e.account.as_ref(), e.user.as_ref(), e.shared.id) {
                    infos.push(closed_info(c, o));
                }
            }
        }
        sort_infos(&mut infos, o.sort);
        let total = infos.len();
        let connections = page(infos, o.offset, limit);
        Ok(Connz {
            server_id: self.server_id.clone(),
            now: now_s,
            num_connections: connections.len(),
            total,
            offset: o.offset,
            limit,
            connections,
        })
    }

    /// Every client subscription in detail, by connection id.
    fn client_sub_details(&self) -> BTreeMap<u64, Vec<SubDetail>> {
        let mut by_cid: BTreeMap<u64, Vec<SubDetail>> = BTreeMap::new();
        for acc in self.accounts_snapshot() {
            for mut d in sub_details(&acc, None) {
                // Go: a connection's own list does not repeat the account.
                d.account.clear();
                by_cid.entry(d.cid).or_default().push(d);
            }
        }
        for v in by_cid.values_mut() {
            v.sort_by(|a, b| natural_sid(&a.sid).cmp(&natural_sid(&b.sid)));
        }
        by_cid
    }

    pub(crate) fn subsz(&self, o: &SubszOptions) -> Subsz {
        let (_, now_s) = self.now_string();
        let limit = if o.limit == 0 {
            DEFAULT_LIST_SIZE
        } else {
            o.limit
        };
        let accounts: Vec<Arc<Account>> = self
            .accounts_snapshot()
            .into_iter()
            .filter(|a| o.account.is_empty() || a.name == o.account)
            .collect();
        let mut stats = SublistStats::default();
        for a in &accounts {
            stats.add(&a.sublist.stats());
        }
        let mut list = Vec::new();
        if o.subscriptions {
            let test = (!o.test.is_empty()).then_some(o.test.as_bytes());
            for a in &accounts {
                list.extend(sub_details(a, test));
            }
        }
        let total = list.len();
        Subsz {
            server_id: self.server_id.clone(),
            now: now_s,
            stats: SublistStatsDoc::from(&stats),
            total,
            offset: o.offset,
            limit,
            subscriptions_list: page(list, o.offset, limit),
        }
    }

    pub(crate) fn routez(&self, subs: bool) -> Routez {
        let now = self.wall_clock();
        let routes: Vec<RouteInfoz> = self
            .cluster
            .routes_snapshot()
            .into_iter()
            .filter_map(|e| {
                let info = e.info.as_ref()?;
                let h = &e.handle;
                let (pending, rtt) = {
                    let c = lock(&h.conn);
                    (c.pending_bytes(), c.rtt())
                };
                let list = self.cluster.route_subs(h.id);
                let last = match h.last_activity.load(Ordering::Relaxed) {
                    0 => e.start,
                    n => SystemTime::UNIX_EPOCH + Duration::from_nanos(n),
                };
                Some(RouteInfoz {
                    rid: h.id,
                    remote_id: info.server_id.clone(),
                    remote_name: info.server_name.clone(),
                    did_solicit: e.solicited,
                    is_configured: e.configured,
                    ip: e.peer.ip().to_string(),
                    port: e.peer.port(),
                    start: rfc3339(e.start),
                    last_activity: rfc3339(last),
                    rtt: rtt.map(go_duration).unwrap_or_default(),
                    uptime: uptime(now.duration_since(e.start).unwrap_or_default()),
                    idle: uptime(now.duration_since(last).unwrap_or_default()),
                    pending_size: pending,
                    in_msgs: h.in_msgs.load(Ordering::Relaxed),
                    out_msgs: h.out_msgs.load(Ordering::Relaxed),
                    in_bytes: h.in_bytes.load(Ordering::Relaxed),
                    out_bytes: h.out_bytes.load(Ordering::Relaxed),
                    subscriptions: list.len(),
                    subscriptions_list: if subs {
                        list.iter()
                            .map(|(a, s, q)| {
                                let s = String::from_utf8_lossy(s);
                                match q {
                                    Some(q) => format!("{a} {s} {}", String::from_utf8_lossy(q)),
                                    None => format!("{a} {s}"),
                                }
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                })
            })
            .collect();
        Routez {
            server_id: self.server_id.clone(),
            server_name: self.server_name.clone(),
            now: self.now_string().1,
            num_routes: routes.len(),
            routes,
        }
    }

    fn cluster_varz(&self) -> ClusterOptsVarz {
        let opts = self.opts();
        let Some(c) = &opts.cluster else {
            return ClusterOptsVarz::default();
        };
        let bound = *lock(&self.cluster.addr);
        ClusterOptsVarz {
            name: self.cluster.name(),
            addr: c.host.clone(),
            cluster_port: bound.map_or(c.port.unwrap_or(0), |a| a.port()),
            auth_timeout: c.auth_timeout.as_secs_f64(),
            // Go: urlsToStrings — the host:port of each configured route.
            urls: c
                .routes
                .iter()
                .map(|u| u.split_once("://").map_or(u.as_str(), |(_, r)| r))
                .map(|r| r.rsplit_once('@').map_or(r, |(_, hp)| hp).to_owned())
                .collect(),
            tls_timeout: c
                .tls
                .as_ref()
                .map_or(natsd_core::options::DEFAULT_TLS_TIMEOUT, |t| t.timeout)
                .as_secs_f64(),
            tls_required: c.tls.is_some(),
            tls_verify: c.tls.is_some(),
        }
    }

    /// `jetstream` of `/varz`: the `/jsz` config and totals while JetStream is on.
    /// Go: server/monitor.go updateJszVarz.
    fn jetstream_varz(&self) -> JetStreamVarz {
        let jsz = self.jsz();
        if jsz.disabled {
            return JetStreamVarz::default();
        }
        JetStreamVarz {
            config: Some(jsz.config),
            stats: Some(JetStreamStats {
                memory: jsz.memory,
                storage: jsz.storage,
                reserved_memory: jsz.reserved_memory,
                reserved_storage: jsz.reserved_storage,
                accounts: jsz.accounts,
                ha_assets: jsz.ha_assets,
                api: jsz.api,
            }),
            meta: jsz.meta_cluster,
        }
    }

    pub(crate) fn gatewayz(&self) -> Gatewayz {
        self.gatewayz_with(&crate::gateway::monitor::GatewayzFilter::default())
    }

    /// `/gatewayz` with its filters (Go: monitor.go Gatewayz).
    pub(crate) fn gatewayz_with(&self, f: &crate::gateway::monitor::GatewayzFilter) -> Gatewayz {
        let (now, now_s) = self.now_string();
        let gws = &self.gateways;
        let Some(cfg) = gws.enabled.then(|| gws.settings()).flatten() else {
            return Gatewayz {
                server_id: self.server_id.clone(),
                now: now_s,
                ..Gatewayz::default()
            };
        };
        let (outbound_gateways, inbound_gateways) = gws.gatewayz_entries(now, f);
        Gatewayz {
            server_id: self.server_id.clone(),
            now: now_s,
            name: gws.name.clone(),
            host: cfg.info.host.clone(),
            port: cfg.info.port,
            outbound_gateways,
            inbound_gateways,
        }
    }

    pub(crate) fn leafz(&self) -> Leafz {
        self.leafz_with(false)
    }

    /// `/leafz`, with each link's interest when `subs`.
    pub(crate) fn leafz_with(&self, subs: bool) -> Leafz {
        let leafs = self.leafs.leafz_entries(subs);
        Leafz {
            server_id: self.server_id.clone(),
            now: self.now_string().1,
            leafnodes: leafs.len(),
            leafs: (!leafs.is_empty()).then_some(leafs),
        }
    }

    pub(crate) fn accountz(&self, o: &AccountzOptions) -> Result<Accountz, String> {
        let mut z = Accountz {
            server_id: self.server_id.clone(),
            now: self.now_string().1,
            system_account: self.system_account_name(),
            ..Accountz::default()
        };
        if o.account.is_empty() {
            z.accounts = self
                .accounts_snapshot()
                .iter()
                .map(|a| a.name.clone())
                .collect();
            return Ok(z);
        }
        let acc = self
            .lookup_account(&o.account)
            .ok_or_else(|| format!("Account {} does not exist", o.account))?;
        z.account_detail = Some(self.account_info(&acc));
        Ok(z)
    }

    pub(crate) fn account_info(&self, acc: &Account) -> AccountInfo {
        let opts = self.opts();
        let cfg = opts.accounts.iter().find(|a| a.name == acc.name);
        let kind = |k: natsd_core::options::ExportKind| match k {
            natsd_core::options::ExportKind::Stream => "stream",
            natsd_core::options::ExportKind::Service => "service",
        };
        let rt = |r: natsd_core::options::ResponseType| match r {
            natsd_core::options::ResponseType::Singleton => "Singleton",
            natsd_core::options::ResponseType::Stream => "Stream",
            natsd_core::options::ResponseType::Chunked => "Chunked",
        };
        let exports = cfg.map_or_else(Vec::new, |c| {
            c.exports
                .iter()
                .map(|e| ExtExport {
                    subject: e.subject.clone(),
                    kind: kind(e.kind).to_owned(),
                    response_type: if e.kind == natsd_core::options::ExportKind::Service {
                        rt(e.response_type).to_owned()
                    } else {
                        String::new()
                    },
                    approved_accounts: e.accounts.clone().unwrap_or_default(),
                })
                .collect()
        });
        let imports = cfg.map_or_else(Vec::new, |c| {
            c.imports
                .iter()
                .map(|i| ExtImport {
                    subject: i.subject.clone(),
                    account: i.account.clone(),
                    to: i
                        .to
                        .clone()
                        .or_else(|| i.prefix.clone())
                        .unwrap_or_default(),
                    kind: kind(i.kind).to_owned(),
                    invalid: false,
                    share: false,
                    tracking: false,
                })
                .collect()
        });
        let stats = acc.sublist.stats();
        AccountInfo {
            account_name: acc.name.clone(),
            update_time: rfc3339(*lock(&self.config_load_time)),
            expired: false,
            complete: true,
            jetstream_enabled: false,
            leafnode_connections: 0,
            client_connections: acc.num_connections.load(Ordering::Relaxed),
            subscriptions: stats.num_subs,
            exports,
            imports,
            sublist_stats: SublistStatsDoc::from(&stats),
        }
    }

    pub(crate) fn account_stat(&self, acc: &Account) -> AccountStat {
        let totals = lock(&self.account_totals)
            .get(&acc.name)
            .copied()
            .unwrap_or_default();
        let mut sent = DataStats {
            msgs: totals.out_msgs,
            bytes: totals.out_bytes,
        };
        for c in self.clients_snapshot() {
            if c.account.as_deref() == Some(acc.name.as_str()) {
                sent.msgs += c.shared.stats.out_msgs.load(Ordering::Relaxed);
                sent.bytes += c.shared.stats.out_bytes.load(Ordering::Relaxed);
            }
        }
        let conns = acc.num_connections.load(Ordering::Relaxed);
        AccountStat {
            acc: acc.name.clone(),
            conns,
            leafnodes: 0,
            total_conns: conns,
            sent,
            received: DataStats {
                msgs: acc.in_msgs.load(Ordering::Relaxed),
                bytes: acc.in_bytes.load(Ordering::Relaxed),
            },
            slow_consumers: totals.slow_consumers,
        }
    }

    pub(crate) fn account_statz(&self, o: &AccountStatzOptions) -> AccountStatz {
        let account_statz = self
            .accounts_snapshot()
            .iter()
            .filter(|a| o.accounts.is_empty() || o.accounts.contains(&a.name))
            .filter(|a| o.include_unused || a.num_connections.load(Ordering::Relaxed) > 0)
            .map(|a| self.account_stat(a))
            .collect();
        AccountStatz {
            server_id: self.server_id.clone(),
            now: self.now_string().1,
            account_statz,
        }
    }

    pub(crate) fn healthz(&self) -> HealthStatus {
        let cluster = lock(&self.js.cluster).clone();
        match cluster.and_then(|c| c.unhealthy()) {
            Some(error) => HealthStatus {
                status: "unavailable".to_owned(),
                error,
            },
            None => HealthStatus {
                status: "ok".to_owned(),
                error: String::new(),
            },
        }
    }

    /// `/raftz`: the Raft groups of clustered JetStream, under the system account.
    pub(crate) fn raftz(&self) -> Raftz {
        let mut out = Raftz::new();
        if let Some(c) = lock(&self.js.cluster).clone() {
            out.insert(self.system_account_name(), c.raftz());
        }
        out
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Sids are compared as numbers when they are numbers (the usual case), so "10" follows "9".
fn natural_sid(s: &str) -> (usize, &str) {
    (s.len(), s)
}

/// Client subscriptions of one account (optionally only those matching a literal subject).
fn sub_details(acc: &Account, test: Option<&[u8]>) -> Vec<SubDetail> {
    let subs = match test {
        Some(t) => {
            let r = acc.sublist.matches(t);
            r.psubs
                .iter()
                .chain(r.qsubs.iter().flatten())
                .cloned()
                .collect()
        }
        None => acc.sublist.all(),
    };
    let mut out: Vec<SubDetail> = subs
        .iter()
        .filter_map(|s| match &s.0.target {
            SubTarget::Client { client, sid, .. } => Some(SubDetail {
                account: acc.name.clone(),
                subject: String::from_utf8_lossy(&s.0.subject).into_owned(),
                qgroup: s
                    .0
                    .queue
                    .as_ref()
                    .map(|q| String::from_utf8_lossy(q).into_owned())
                    .unwrap_or_default(),
                sid: String::from_utf8_lossy(sid).into_owned(),
                msgs: s.0.delivered(),
                max: 0,
                cid: client.id,
            }),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| (a.cid, natural_sid(&a.sid)).cmp(&(b.cid, natural_sid(&b.sid))));
    out
}

fn base_info(e: &ClientEntry, o: &ConnzOptions) -> ConnInfo {
    let st = &e.shared.stats;
    let mut ci = ConnInfo {
        cid: e.shared.id,
        kind: "Client".to_owned(),
        conn_type: "nats".to_owned(),
        ip: e.peer.ip().to_string(),
        port: e.peer.port(),
        start: rfc3339(e.start),
        last_activity: rfc3339(e.last_activity()),
        in_msgs: st.in_msgs.load(Ordering::Relaxed),
        out_msgs: st.out_msgs.load(Ordering::Relaxed),
        in_bytes: st.in_bytes.load(Ordering::Relaxed),
        out_bytes: st.out_bytes.load(Ordering::Relaxed),
        name: e.name.clone().unwrap_or_default(),
        lang: e.lang.clone().unwrap_or_default(),
        version: e.version.clone().unwrap_or_default(),
        ..ConnInfo::default()
    };
    if o.username {
        // Go: only the user name is shown; passwords and tokens never are.
        ci.authorized_user = e.user.clone().unwrap_or_default();
        ci.account = e.account.clone().unwrap_or_default();
    }
    ci
}

fn open_info(
    e: &ClientEntry,
    now: SystemTime,
    o: &ConnzOptions,
    details: &BTreeMap<u64, Vec<SubDetail>>,
) -> ConnInfo {
    let mut ci = base_info(e, o);
    ci.uptime = uptime(now.duration_since(e.start).unwrap_or_default());
    ci.idle = uptime(now.duration_since(e.last_activity()).unwrap_or_default());
    ci.pending_bytes = e.shared.pending_bytes();
    ci.subscriptions = e.shared.num_subs() as u32;
    ci.rtt = go_duration(Duration::from_nanos(
        e.shared.stats.rtt_nanos.load(Ordering::Relaxed),
    ));
    if o.subscriptions_detail {
        ci.subscriptions_list_detail = details.get(&e.shared.id).cloned().unwrap_or_default();
    } else if o.subscriptions {
        ci.subscriptions_list = e
            .shared
            .subscriptions()
            .into_iter()
            .map(|(s, _, _)| String::from_utf8_lossy(&s).into_owned())
            .collect();
    }
    ci
}

fn closed_info(c: &ClosedClient, o: &ConnzOptions) -> ConnInfo {
    let e = &c.entry;
    let mut ci = base_info(e, o);
    ci.stop = Some(rfc3339(c.stop));
    ci.reason = c.reason.as_str().to_owned();
    ci.uptime = uptime(c.stop.duration_since(e.start).unwrap_or_default());
    ci.idle = uptime(c.stop.duration_since(e.last_activity()).unwrap_or_default());
    ci.subscriptions = c.subs.len() as u32;
    ci.rtt = go_duration(Duration::from_nanos(
        e.shared.stats.rtt_nanos.load(Ordering::Relaxed),
    ));
    if o.subscriptions_detail {
        ci.subscriptions_list_detail = c
            .subs
            .iter()
            .map(|(subject, queue, sid)| SubDetail {
                account: String::new(),
                subject: String::from_utf8_lossy(subject).into_owned(),
                qgroup: queue
                    .as_ref()
                    .map(|q| String::from_utf8_lossy(q).into_owned())
                    .unwrap_or_default(),
                sid: String::from_utf8_lossy(sid).into_owned(),
                msgs: 0,
                max: 0,
                cid: e.shared.id,
            })
            .collect();
    } else if o.subscriptions {
        ci.subscriptions_list = c
            .subs
            .iter()
            .map(|(s, _, _)| String::from_utf8_lossy(s).into_owned())
            .collect();
    }
    ci
}

fn sort_infos(v: &mut [ConnInfo], by: SortOpt) {
    use std::cmp::Reverse;
    // Our RFC 3339 strings drop trailing zeros of the fraction, so times are compared by
    // their parsed order key, not as strings.
    match by {
        SortOpt::Cid => v.sort_by_key(|c| c.cid),
        SortOpt::Start | SortOpt::Uptime => v.sort_by_key(|c| time_key(&c.start)),
        SortOpt::Subs => v.sort_by_key(|c| Reverse(c.subscriptions)),
        SortOpt::Pending => v.sort_by_key(|c| Reverse(c.pending_bytes)),
        SortOpt::MsgsTo => v.sort_by_key(|c| Reverse(c.out_msgs)),
        SortOpt::MsgsFrom => v.sort_by_key(|c| Reverse(c.in_msgs)),
        SortOpt::BytesTo => v.sort_by_key(|c| Reverse(c.out_bytes)),
        SortOpt::BytesFrom => v.sort_by_key(|c| Reverse(c.in_bytes)),
        SortOpt::Last => v.sort_by_key(|c| Reverse(time_key(&c.last_activity))),
        SortOpt::Idle => v.sort_by_key(|c| time_key(&c.last_activity)),
        SortOpt::Stop => v.sort_by_key(|c| Reverse(c.stop.as_deref().map(time_key))),
        SortOpt::Reason => v.sort_by(|a, b| a.reason.cmp(&b.reason)),
        SortOpt::Rtt => v.sort_by(|a, b| b.rtt.cmp(&a.rtt)),
    }
}

/// An order key for our own RFC 3339 strings: the seconds part, then the fraction padded.
fn time_key(s: &str) -> (String, u32) {
    let body = s.trim_end_matches('Z');
    match body.split_once('.') {
        Some((secs, frac)) => {
            let padded = format!("{frac:0<9}");
            (secs.to_owned(), padded.parse().unwrap_or(0))
        }
        None => (body.to_owned(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_never_overflow() {
        let v: Vec<u32> = (0..10).collect();
        assert_eq!(page(v.clone(), 8, usize::MAX), vec![8, 9]);
        assert_eq!(page(v.clone(), usize::MAX, usize::MAX), Vec::<u32>::new());
        assert_eq!(page(v.clone(), 2, 3), vec![2, 3, 4]);
        assert_eq!(page(v, 0, 0), Vec::<u32>::new());
    }

    #[test]
    fn time_keys_order_trimmed_fractions() {
        assert!(time_key("2026-01-01T00:00:00.5Z") > time_key("2026-01-01T00:00:00.123Z"));
        assert!(time_key("2026-01-01T00:00:01Z") > time_key("2026-01-01T00:00:00.9Z"));
    }

    #[test]
    fn sort_options_parse_like_go() {
        assert_eq!(SortOpt::parse("msgs_to"), Ok(SortOpt::MsgsTo));
        assert_eq!(
            SortOpt::parse("foo"),
            Err("invalid sorting option: foo".to_owned())
        );
    }
}
