//! Fault schedules drawn from the seed, and their application to a turmoil `Sim`.
//!
//! A run has a fault phase `[0, phase)` where faults come and go one at a time, then a heal
//! point where every fault is undone, then a fault-free phase in which the system must
//! converge. Faults never overlap, so each heal undoes exactly what its start did.

use std::fmt;
use std::time::Duration;

use natsd_core::rng::SplitMix64;
use turmoil::Sim;

/// Which faults a schedule may draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultKinds {
    /// Cut every link of one host.
    pub host_partition: bool,
    /// Cut one link both ways.
    pub link_partition: bool,
    /// Cut one direction of one link.
    pub oneway_partition: bool,
    /// Hold a link's messages (a pause), then deliver them.
    pub hold: bool,
    /// Crash a server host, then restart it.
    pub crash: bool,
    /// Random link breakage (turmoil `fail_rate`).
    pub loss: bool,
    /// Raise the maximum message latency.
    pub latency: bool,
}

impl FaultKinds {
    /// Every kind.
    pub const ALL: Self = Self {
        host_partition: true,
        link_partition: true,
        oneway_partition: true,
        hold: true,
        crash: true,
        loss: true,
        latency: true,
    };
    /// No faults.
    pub const NONE: Self = Self {
        host_partition: false,
        link_partition: false,
        oneway_partition: false,
        hold: false,
        crash: false,
        loss: false,
        latency: false,
    };
    /// Network faults only: nothing crashes.
    pub const NETWORK: Self = Self {
        crash: false,
        ..Self::ALL
    };
}

/// How a schedule is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultConfig {
    /// Length of the fault phase; zero means no faults at all.
    pub phase: Duration,
    /// Most faults in the phase (the count is drawn in `0..=max_faults`).
    pub max_faults: usize,
    /// Longest a single fault lasts.
    pub max_len: Duration,
    /// Kinds to draw from.
    pub kinds: FaultKinds,
    /// `fail_rate` used while a loss fault is on.
    pub loss_rate: f64,
    /// Max latency used while a latency fault is on.
    pub high_latency: Duration,
}

impl FaultConfig {
    /// No faults.
    pub const NONE: Self = Self {
        phase: Duration::ZERO,
        max_faults: 0,
        max_len: Duration::ZERO,
        kinds: FaultKinds::NONE,
        loss_rate: 0.0,
        high_latency: Duration::ZERO,
    };

    /// A fault phase of `phase` with up to `max_faults` faults of the given kinds.
    pub fn new(phase: Duration, max_faults: usize, kinds: FaultKinds) -> Self {
        Self {
            phase,
            max_faults,
            max_len: Duration::from_secs(3),
            kinds,
            loss_rate: 0.02,
            high_latency: Duration::from_millis(400),
        }
    }
}

/// One change to the simulated world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Cut `host` from every other host.
    PartitionHost(String),
    /// Undo [`FaultAction::PartitionHost`].
    RepairHost(String),
    /// Cut the link `a`–`b` both ways.
    PartitionLink(String, String),
    /// Undo [`FaultAction::PartitionLink`].
    RepairLink(String, String),
    /// Drop everything `from` sends to `to`.
    PartitionOneway(String, String),
    /// Undo [`FaultAction::PartitionOneway`].
    RepairOneway(String, String),
    /// Hold the link `a`–`b`: nothing is lost, everything waits.
    Hold(String, String),
    /// Deliver what was held on `a`–`b`.
    Release(String, String),
    /// Crash a host (power cut): its software stops, its sockets die without a word.
    Crash(String),
    /// Restart a crashed host's software.
    Bounce(String),
    /// Set the random link failure rate.
    FailRate(u32),
    /// Set the maximum message latency.
    MaxLatency(Duration),
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FailRate(ppm) => write!(f, "FailRate({}%)", f64::from(*ppm) / 10_000.0),
            other => write!(f, "{other:?}"),
        }
    }
}

/// A timed list of actions, sorted by time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// `(sim time, action)`, in time order.
    pub actions: Vec<(Duration, FaultAction)>,
    /// When everything is healed; `None` without a fault phase.
    pub heal_at: Option<Duration>,
}

fn pick<'a>(rng: &mut SplitMix64, xs: &'a [String]) -> &'a String {
    &xs[rng.below(xs.len() as u64) as usize]
}

fn ms_between(rng: &mut SplitMix64, lo: Duration, hi: Duration) -> Duration {
    let (lo, hi) = (
        lo.as_millis() as u64,
        hi.as_millis().max(lo.as_millis()) as u64,
    );
    Duration::from_millis(lo + rng.below(hi - lo + 1))
}

impl FaultPlan {
    /// Draws a schedule. `servers` may crash; links are drawn among `servers` and `clients`,
    /// always with a server on one end (client-to-client links carry nothing).
    pub fn generate(
        cfg: &FaultConfig,
        rng: &mut SplitMix64,
        servers: &[String],
        clients: &[String],
        base_latency: Duration,
    ) -> Self {
        if cfg.phase.is_zero() || servers.is_empty() {
            return Self::default();
        }
        let mut kinds = Vec::new();
        let k = cfg.kinds;
        for (on, n) in [
            (k.host_partition, 0),
            (k.link_partition, 1),
            (k.oneway_partition, 2),
            (k.hold, 3),
            (k.crash, 4),
            (k.loss, 5),
            (k.latency, 6),
        ] {
            if on {
                kinds.push(n);
            }
        }
        let mut plan = Self {
            actions: Vec::new(),
            heal_at: Some(cfg.phase),
        };
        if kinds.is_empty() {
            return plan;
        }
        let peers: Vec<String> = servers.iter().chain(clients).cloned().collect();
        let count = rng.below(cfg.max_faults as u64 + 1) as usize;
        // Faults in sequence: start after a gap, last a while, never past the phase.
        let mut t = Duration::from_millis(200);
        let slot = cfg.phase / (count.max(1) as u32);
        for _ in 0..count {
            let start = t + ms_between(rng, Duration::ZERO, slot / 2);
            let len = ms_between(rng, Duration::from_millis(100), cfg.max_len.min(slot / 2));
            let end = (start + len).min(cfg.phase);
            if start >= end {
                break;
            }
            t = end;
            let server = pick(rng, servers).clone();
            let mut other = pick(rng, &peers).clone();
            if other == server {
                other = peers
                    .iter()
                    .find(|p| **p != server)
                    .cloned()
                    .unwrap_or_else(|| server.clone());
            }
            let (on, off) = match kinds[rng.below(kinds.len() as u64) as usize] {
                0 => (
                    FaultAction::PartitionHost(server.clone()),
                    FaultAction::RepairHost(server),
                ),
                1 => (
                    FaultAction::PartitionLink(server.clone(), other.clone()),
                    FaultAction::RepairLink(server, other),
                ),
                2 => {
                    let (from, to) = if rng.below(2) == 0 {
                        (server, other)
                    } else {
                        (other, server)
                    };
                    (
                        FaultAction::PartitionOneway(from.clone(), to.clone()),
                        FaultAction::RepairOneway(from, to),
                    )
                }
                3 => (
                    FaultAction::Hold(server.clone(), other.clone()),
                    FaultAction::Release(server, other),
                ),
                4 => (
                    FaultAction::Crash(server.clone()),
                    FaultAction::Bounce(server),
                ),
                5 => (
                    FaultAction::FailRate((cfg.loss_rate * 1_000_000.0) as u32),
                    FaultAction::FailRate(0),
                ),
                _ => (
                    FaultAction::MaxLatency(cfg.high_latency),
                    FaultAction::MaxLatency(base_latency),
                ),
            };
            if on == off {
                continue;
            }
            plan.actions.push((start, on));
            plan.actions.push((end, off));
        }
        plan
    }

    /// One line per action, for the run log.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (t, a) in &self.actions {
            s.push_str(&format!("  {:>8.3}s {a}\n", t.as_secs_f64()));
        }
        if let Some(h) = self.heal_at {
            s.push_str(&format!("  {:>8.3}s heal everything\n", h.as_secs_f64()));
        }
        s
    }
}

/// Applies one action to the sim.
pub fn apply(sim: &mut Sim<'_>, all_hosts: &[String], action: &FaultAction) {
    match action {
        FaultAction::PartitionHost(h) => {
            for o in all_hosts.iter().filter(|o| *o != h) {
                sim.partition(h.as_str(), o.as_str());
            }
        }
        FaultAction::RepairHost(h) => {
            for o in all_hosts.iter().filter(|o| *o != h) {
                sim.repair(h.as_str(), o.as_str());
            }
        }
        FaultAction::PartitionLink(a, b) => sim.partition(a.as_str(), b.as_str()),
        FaultAction::RepairLink(a, b) => sim.repair(a.as_str(), b.as_str()),
        FaultAction::PartitionOneway(a, b) => sim.partition_oneway(a.as_str(), b.as_str()),
        FaultAction::RepairOneway(a, b) => sim.repair_oneway(a.as_str(), b.as_str()),
        FaultAction::Hold(a, b) => sim.hold(a.as_str(), b.as_str()),
        FaultAction::Release(a, b) => sim.release(a.as_str(), b.as_str()),
        FaultAction::Crash(h) => {
            // A power cut, not a process kill: the host's last words (the FINs and RSTs its
            // sockets send as tokio drops its tasks) never leave it. This is also what keeps a
            // crash deterministic: tokio drops tasks in an order that depends on process-global
            // task ids, so the order of those FINs differs between runs in one process.
            for o in all_hosts.iter().filter(|o| *o != h) {
                sim.partition_oneway(h.as_str(), o.as_str());
            }
            sim.crash(h.as_str());
            for o in all_hosts.iter().filter(|o| *o != h) {
                sim.repair_oneway(h.as_str(), o.as_str());
            }
        }
        FaultAction::Bounce(h) => {
            if !sim.is_host_running(h.as_str()) {
                sim.bounce(h.as_str());
            }
        }
        FaultAction::FailRate(ppm) => sim.set_fail_rate(f64::from(*ppm) / 1_000_000.0),
        FaultAction::MaxLatency(d) => sim.set_max_message_latency(*d),
    }
}

/// Undoes every fault: links healthy (held messages delivered), no loss, base latency, every
/// host running.
pub fn heal_all(sim: &mut Sim<'_>, all_hosts: &[String], servers: &[String], base: Duration) {
    sim.set_fail_rate(0.0);
    sim.set_max_message_latency(base);
    for (i, a) in all_hosts.iter().enumerate() {
        for b in &all_hosts[i + 1..] {
            sim.repair(a.as_str(), b.as_str());
            // `repair` keeps held messages; `release` delivers them.
            sim.release(a.as_str(), b.as_str());
        }
    }
    for s in servers {
        if !sim.is_host_running(s.as_str()) {
            sim.bounce(s.as_str());
        }
    }
}
