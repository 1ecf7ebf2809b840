//! natsd-sim: seeded, replayable runs of the real natsd server on turmoil's simulated network.
//!
//! Each server host runs `natsd::Server::<Turmoil>` (the production shell, generic over
//! [`natsd::transport::Transport`]); client hosts run scenario code with the small NATS client
//! in [`client`]. One master seed (`NATS_SIM_SEED`) fixes turmoil's rng, the epoch, every
//! host's seed, every client's rng and the fault schedule ([`seeds`], [`faults`]). Scenarios
//! are built with [`harness::Scenario`]; [`checkers`] judge the [`trace`] of what clients saw.
//! `sim/tests/raft.rs` drives `natsd-raft` groups directly (one hub per host, Raft RPCs over
//! turmoil TCP, each replica on its own `MemDisk`) with the same seeds, sweeps and trace hashes.
//! [`jscluster`] does the same for clustered JetStream: the stream group over
//! `ReplicatedStream` and the meta group over `MetaState` ([`jsgroup`]), under the faults of
//! Jepsen's NATS analysis (`sim/tests/jetstream_cluster.rs`, one scenario per finding); a
//! replica in trouble catches up from a peer over the simulated network ([`jscatchup`]).
//!
//! # Running
//!
//! `cargo test -p natsd-sim` sweeps a fixed set of about 290 seeds across the scenarios in
//! `sim/tests/`. `NATS_SIM_SEEDS=<n>` sweeps `n` seeds per test, `NATS_SIM_SEED_BASE=<u64>`
//! moves to other seeds, `NATS_SIM_SEED=<u64>` replays one (a failure prints the command),
//! and `NATS_SIM_VERBOSE=1` prints each run's fault plan and trace hash.
//!
//! # Determinism rules
//!
//! A seed must replay bit for bit, in this process and in a fresh one. Banned in this crate
//! (enforced by `sim/clippy.toml` where clippy can see it):
//! - `HashMap`/`HashSet` iteration reaching a trace or a decision (per-process random order):
//!   use `BTreeMap`/`BTreeSet`.
//! - OS randomness (`RandomState`, `rand::thread_rng`, `getrandom`): draw from the run's
//!   `SplitMix64` tree instead.
//! - `SystemTime::now` and `Instant::now`: sim time is `turmoil::sim_elapsed()` (traces) or
//!   `tokio::time::Instant` (deadlines, paused and driven by turmoil); the wall clock is the
//!   fixed epoch plus sim time.
//! - Spawning threads: they run outside turmoil's single-threaded schedule.
//! - Unbiased `tokio::select!` in harness code: its branch order comes from tokio's RNG, which
//!   turmoil only seeds under `--cfg tokio_unstable` (not needed so far: natsd's one unbiased
//!   select, accept vs shutdown, never has both branches ready in a sim).
//! - Letting a crashed host speak: tokio drops a runtime's tasks in an order keyed by
//!   process-global task ids, so the FINs of a killed process would race. A crash is a power
//!   cut instead (see [`faults::FaultAction::Crash`]).
//!
//! Traces hold only sim-relative time and are hashed with a fixed FNV-1a, never `DefaultHasher`.
#![forbid(unsafe_code)]

pub mod checkers;
pub mod client;
pub mod faults;
pub mod harness;
pub mod jscatchup;
pub mod jscheck;
pub mod jscluster;
pub mod jsgroup;
pub mod raftnet;
pub mod seeds;
pub mod trace;
pub mod transport;
pub mod workloads;

pub use harness::{ClientCtx, Outcome, Scenario};
pub use transport::Turmoil;
