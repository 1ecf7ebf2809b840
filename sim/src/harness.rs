//! The [`Scenario`] builder: server hosts running the real natsd, client hosts running
//! scenario code, a fault schedule, all from one seed.
//!
//! ```no_run
//! use std::time::Duration;
//! use natsd_sim::harness::{Scenario, ClientCtx};
//! use natsd_sim::faults::{FaultConfig, FaultKinds};
//!
//! let outcome = Scenario::new("example", 42)
//!     .server("n1", Scenario::default_server_options())
//!     .client("c1", |ctx: ClientCtx| async move {
//!         let mut c = ctx.connect(&ctx.opts("n1"), 0).await.map_err(|e| e.to_string())?;
//!         c.publish("a", b"x", Duration::from_secs(1)).await.map_err(|e| e.to_string())?;
//!         Ok(())
//!     })
//!     .faults(FaultConfig::new(Duration::from_secs(5), 3, FaultKinds::NETWORK))
//!     .run()
//!     .expect("scenario");
//! println!("trace hash {:016x}", outcome.hash);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use natsd::Options;
use natsd_core::rng::SplitMix64;

use crate::client::{Client, ClientError, ClientOpts};
use crate::faults::{self, FaultAction, FaultConfig, FaultPlan};
use crate::seeds::Seeds;
use crate::trace::{hash_events, Event, Trace};
use crate::transport::{fixed_epoch, Turmoil};

/// Env var: print each run's fault plan and trace summary.
pub const VERBOSE_VAR: &str = "NATS_SIM_VERBOSE";

/// The port every simulated server listens on.
pub const SERVER_PORT: u16 = 4222;

type ClientFuture = Pin<Box<dyn Future<Output = Result<(), String>>>>;
type ClientFn = Box<dyn FnOnce(ClientCtx) -> ClientFuture>;
/// Prepares a server host's `Server` before it starts, at every boot.
type ServerSetup = Rc<dyn Fn(&Arc<natsd::Server<Turmoil>>)>;

/// What a client host's code gets: its name, its own seeded rng, the trace, and the phases.
#[derive(Debug, Clone)]
pub struct ClientCtx {
    /// Host name of this client.
    pub name: String,
    /// The shared trace.
    pub trace: Trace,
    /// This client's generator (drawn from the run seed).
    pub rng: SplitMix64,
    /// When the fault phase ends (everything is healed then). Zero without faults.
    pub heal_at: Duration,
    /// Server host names.
    pub servers: Vec<String>,
}

impl ClientCtx {
    /// Sim time since the start of the run.
    pub fn now(&self) -> Duration {
        turmoil::sim_elapsed().unwrap_or_default()
    }

    /// Is the fault phase still on?
    pub fn faulty(&self) -> bool {
        self.now() < self.heal_at
    }

    /// Client options for server host `server`, named after this client.
    pub fn opts(&self, server: &str) -> ClientOpts {
        ClientOpts::new(&self.name, &format!("{server}:{SERVER_PORT}"))
    }

    /// Connects once with a 2 s deadline.
    pub async fn connect(&self, opts: &ClientOpts, epoch: u32) -> Result<Client, ClientError> {
        Client::connect(&self.trace, opts, epoch, Duration::from_secs(2)).await
    }

    /// Connects, retrying with a seeded backoff until `until` (sim time). Returns the client
    /// and bumps `epoch` for every attempt. Rejections by the server are not retried.
    pub async fn connect_retry(
        &mut self,
        opts: &ClientOpts,
        epoch: &mut u32,
        until: Duration,
    ) -> Result<Client, ClientError> {
        loop {
            *epoch += 1;
            match self.connect(opts, *epoch).await {
                Ok(c) => return Ok(c),
                Err(e @ ClientError::Rejected(_)) => return Err(e),
                Err(e) if self.now() >= until => return Err(e),
                Err(_) => {
                    // Jitter so that a storm of clients does not reconnect in lock step.
                    let wait = 50 + self.rng.below(200);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
            }
        }
    }

    /// Sleeps until sim time `t`.
    pub async fn sleep_until(&self, t: Duration) {
        let now = self.now();
        if t > now {
            tokio::time::sleep(t - now).await;
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Master seed.
    pub seed: u64,
    /// Everything the clients saw.
    pub events: Vec<Event>,
    /// Hash of `events` (see [`crate::trace::hash_events`]).
    pub hash: u64,
    /// Sim time the run took.
    pub sim_elapsed: Duration,
    /// The fault schedule that was applied.
    pub plan: FaultPlan,
}

/// The port every simulated server listens on for routes, when clustered.
pub const CLUSTER_PORT: u16 = 6222;

/// The port a simulated leaf-node hub listens on for leaf connections.
pub const LEAF_PORT: u16 = 7422;

/// Route and leaf-remote URLs name sim hosts (`nats://n2:6222`); natsd resolves names with
/// the system resolver, which knows nothing of turmoil's hosts, so they become turmoil's
/// addresses here.
fn resolve_route_hosts(opts: &mut Options) {
    if let Some(c) = opts.cluster.as_mut() {
        c.routes.iter_mut().for_each(resolve_url);
    }
    if let Some(l) = opts.leafnodes.as_mut() {
        for r in &mut l.remotes {
            r.urls.iter_mut().for_each(resolve_url);
        }
    }
}

fn resolve_url(r: &mut String) {
    let (scheme, rest) = r.split_once("://").unwrap_or(("nats", r.as_str()));
    let (cred, hostport) = match rest.rsplit_once('@') {
        Some((c, hp)) => (format!("{c}@"), hp),
        None => (String::new(), rest),
    };
    let Some((host, port)) = hostport.rsplit_once(':') else {
        return;
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return;
    }
    let ip = turmoil::lookup(host);
    *r = format!("{scheme}://{cred}{ip}:{port}");
}

/// Server options for host `me` of a cluster of `hosts` (full mesh of configured routes on
/// [`CLUSTER_PORT`]), on top of `base`.
pub fn cluster_options(base: Options, me: &str, hosts: &[&str]) -> Options {
    let routes = hosts
        .iter()
        .filter(|h| **h != me)
        .map(|h| format!("nats-route://{h}:{CLUSTER_PORT}"))
        .collect();
    Options {
        server_name: Some(me.to_owned()),
        cluster: Some(natsd_core::options::ClusterConfig {
            name: Some("sim".to_owned()),
            port: Some(CLUSTER_PORT),
            routes,
            ..natsd_core::options::ClusterConfig::default()
        }),
        ..base
    }
}

/// A scenario under construction. Server hosts and client hosts are registered in the order
/// given; seeds are drawn in a fixed order (turmoil, servers, fault plan, clients).
pub struct Scenario {
    name: String,
    seed: u64,
    servers: Vec<(String, Options)>,
    clients: Vec<(String, ClientFn)>,
    setups: Vec<(String, ServerSetup)>,
    faults: FaultConfig,
    /// Faults at fixed times, on top of the drawn plan.
    extra_faults: Vec<(Duration, FaultAction)>,
    duration: Duration,
    tick: Duration,
    tcp_capacity: usize,
    min_latency: Duration,
    max_latency: Duration,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("seed", &self.seed)
            .field("servers", &self.servers.len())
            .field("clients", &self.clients.len())
            .field("faults", &self.faults)
            .finish()
    }
}

impl Scenario {
    /// A scenario named `name` (for logs) run from `seed`.
    pub fn new(name: &str, seed: u64) -> Self {
        Self {
            name: name.to_owned(),
            seed,
            servers: Vec::new(),
            clients: Vec::new(),
            setups: Vec::new(),
            faults: FaultConfig::NONE,
            extra_faults: Vec::new(),
            duration: Duration::from_secs(60),
            tick: Duration::from_millis(1),
            tcp_capacity: 4096,
            min_latency: Duration::from_millis(1),
            max_latency: Duration::from_millis(10),
        }
    }

    /// Server options suited to the sim: the fixed port, fast stale-connection detection.
    pub fn default_server_options() -> Options {
        Options {
            host: "0.0.0.0".to_owned(),
            port: Some(SERVER_PORT),
            ping_interval: Duration::from_secs(1),
            ping_max: 2,
            write_deadline: Duration::from_secs(2),
            ..Options::default()
        }
    }

    /// Adds a server host running natsd with `opts`. Several make a cluster (once natsd
    /// clusters): every host gets its own seed, and a restarted host reuses it.
    pub fn server(mut self, host: &str, opts: Options) -> Self {
        self.servers.push((host.to_owned(), opts));
        self
    }

    /// Adds a client host running `f`. The run ends when every client returns; an `Err` fails
    /// the run.
    pub fn client<F, Fut>(mut self, host: &str, f: F) -> Self
    where
        F: FnOnce(ClientCtx) -> Fut + 'static,
        Fut: Future<Output = Result<(), String>> + 'static,
    {
        self.clients
            .push((host.to_owned(), Box::new(move |ctx| Box::pin(f(ctx)))));
        self
    }

    /// Calls `f` with server host `host`'s server every time the host boots (first start and
    /// every restart after a crash), before the server starts: to inject a store factory, or
    /// to keep a `Weak` handle to it.
    pub fn server_setup<F>(mut self, host: &str, f: F) -> Self
    where
        F: Fn(&Arc<natsd::Server<Turmoil>>) + 'static,
    {
        self.setups.push((host.to_owned(), Rc::new(f)));
        self
    }

    /// Adds one fault at a fixed sim time, on top of the drawn schedule (a test that draws
    /// its own crash points from its seed, say).
    pub fn fault_at(mut self, at: Duration, action: FaultAction) -> Self {
        self.extra_faults.push((at, action));
        self
    }

    /// Sets the fault schedule's shape.
    pub fn faults(mut self, cfg: FaultConfig) -> Self {
        self.faults = cfg;
        self
    }

    /// Longest the run may take in sim time before it fails.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }

    /// Sim tick (default 1 ms).
    pub fn tick(mut self, d: Duration) -> Self {
        self.tick = d;
        self
    }

    /// Network latency range of healthy links.
    pub fn latency(mut self, min: Duration, max: Duration) -> Self {
        self.min_latency = min;
        self.max_latency = max;
        self
    }

    /// Per-direction TCP segment capacity of each connection (default 4096). turmoil applies
    /// flow control: a writer blocks once this many segments are unread, which is what lets a
    /// stalled reader back up the server.
    pub fn tcp_capacity(mut self, segments: usize) -> Self {
        self.tcp_capacity = segments;
        self
    }

    /// The fault plan this scenario would apply, without running it.
    pub fn plan(&self) -> FaultPlan {
        self.seeds().1
    }

    fn seeds(&self) -> (Seeds, FaultPlan, u64, Vec<u64>) {
        let mut seeds = Seeds::new(self.seed);
        let turmoil_seed = seeds.next_seed();
        let host_seeds: Vec<u64> = self.servers.iter().map(|_| seeds.next_seed()).collect();
        let server_names: Vec<String> = self.servers.iter().map(|(n, _)| n.clone()).collect();
        let client_names: Vec<String> = self.clients.iter().map(|(n, _)| n.clone()).collect();
        let mut plan = FaultPlan::generate(
            &self.faults,
            &mut seeds.fork(),
            &server_names,
            &client_names,
            self.max_latency,
        );
        if !self.extra_faults.is_empty() {
            plan.actions.extend(self.extra_faults.iter().cloned());
            plan.actions.sort_by_key(|(t, _)| *t);
        }
        (seeds, plan, turmoil_seed, host_seeds)
    }

    /// Runs the scenario to completion. `Err` carries why it failed (a client error, a server
    /// that did not start, or the sim duration running out) plus the fault plan.
    pub fn run(self) -> Result<Outcome, String> {
        let (mut seeds, plan, turmoil_seed, host_seeds) = self.seeds();
        let mut sim = turmoil::Builder::new()
            .rng_seed(turmoil_seed)
            .epoch(fixed_epoch())
            .simulation_duration(self.duration)
            .tick_duration(self.tick)
            .tcp_capacity(self.tcp_capacity)
            .min_message_latency(self.min_latency)
            .max_message_latency(self.max_latency)
            .fail_rate(0.0)
            .repair_rate(0.5)
            .enable_random_order()
            .build();

        let server_names: Vec<String> = self.servers.iter().map(|(n, _)| n.clone()).collect();
        let mut all_hosts = server_names.clone();
        for ((name, opts), host_seed) in self.servers.into_iter().zip(host_seeds) {
            let setups: Vec<ServerSetup> = self
                .setups
                .iter()
                .filter(|(h, _)| *h == name)
                .map(|(_, f)| Rc::clone(f))
                .collect();
            // Drawn outside the closure: a bounced host restarts with the same seed.
            sim.host(name.as_str(), move || {
                let mut opts = opts.clone();
                resolve_route_hosts(&mut opts);
                let setups = setups.clone();
                async move {
                    let server = Arc::new(natsd::Server::<Turmoil>::with_seed(opts, host_seed)?);
                    for f in &setups {
                        f(&server);
                    }
                    server.start().await?;
                    std::future::pending::<()>().await;
                    Ok(())
                }
            });
        }
        let trace = Trace::new();
        let heal_at = plan.heal_at.unwrap_or_default();
        for (name, f) in self.clients {
            all_hosts.push(name.clone());
            let ctx = ClientCtx {
                name: name.clone(),
                trace: trace.clone(),
                rng: seeds.fork(),
                heal_at,
                servers: server_names.clone(),
            };
            let fut = f(ctx);
            sim.client(name.as_str(), async move { fut.await.map_err(Into::into) });
        }

        let mut next = 0;
        let mut healed = plan.heal_at.is_none();
        let fail = |e: String, sim: &turmoil::Sim<'_>| {
            format!(
                "{}: {e} (at {:?} sim time)\nfault plan:\n{}",
                self.name,
                sim.elapsed(),
                plan.describe()
            )
        };
        loop {
            let now = sim.elapsed();
            while next < plan.actions.len() && plan.actions[next].0 <= now {
                faults::apply(&mut sim, &all_hosts, &plan.actions[next].1);
                next += 1;
            }
            if !healed && now >= heal_at {
                faults::heal_all(&mut sim, &all_hosts, &server_names, self.max_latency);
                healed = true;
            }
            match sim.step() {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return Err(fail(e.to_string(), &sim)),
            }
        }
        let events = trace.events();
        if std::env::var_os(VERBOSE_VAR).is_some() {
            eprintln!(
                "{} seed {}: {} events, hash {:016x}, {:?} sim time\nfault plan:\n{}",
                self.name,
                self.seed,
                events.len(),
                hash_events(&events),
                sim.elapsed(),
                plan.describe()
            );
        }
        Ok(Outcome {
            seed: self.seed,
            hash: hash_events(&events),
            events,
            sim_elapsed: sim.elapsed(),
            plan,
        })
    }
}
