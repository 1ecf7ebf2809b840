//! One seed per run, and everything else drawn from it.
//!
//! `NATS_SIM_SEED=<u64>` replays one run. `NATS_SIM_SEEDS=<n>` sweeps `n` seeds per scenario
//! instead of the scenario's default. `NATS_SIM_SEED_BASE=<u64>` moves the sweep onto other
//! seeds (the default sweep is the same on every machine, so CI failures reproduce).
//! Every failing run prints the exact command that replays it.

use std::panic::{self, AssertUnwindSafe};

use natsd_core::rng::SplitMix64;

/// Env var: replay exactly this seed.
pub const SEED_VAR: &str = "NATS_SIM_SEED";
/// Env var: how many seeds a sweep runs.
pub const SEEDS_VAR: &str = "NATS_SIM_SEEDS";
/// Env var: where the sweep starts.
pub const BASE_VAR: &str = "NATS_SIM_SEED_BASE";

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.trim().parse().ok())
}

/// FNV-1a of a name: gives each scenario its own default seeds.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The seeds a sweep of `test` runs: `NATS_SIM_SEED` alone if set, else `NATS_SIM_SEEDS` (or
/// `default_count`) seeds derived from the test name and `NATS_SIM_SEED_BASE`.
pub fn sweep_seeds(test: &str, default_count: usize) -> Vec<u64> {
    if let Some(seed) = env_u64(SEED_VAR) {
        return vec![seed];
    }
    let count = env_u64(SEEDS_VAR).map_or(default_count, |n| n as usize);
    let mut rng = SplitMix64::new(name_hash(test) ^ env_u64(BASE_VAR).unwrap_or(0));
    // Small numbers are easier to type into a replay command.
    (0..count).map(|_| rng.next_u64() % 1_000_000_000).collect()
}

/// The command that replays `seed` of `test` in integration-test file `file`.
pub fn replay_command(file: &str, test: &str, seed: u64) -> String {
    format!("{SEED_VAR}={seed} cargo test -p natsd-sim --test {file} {test} -- --exact --nocapture")
}

/// Runs `run` once per seed of the sweep. On the first failure (an `Err` or a panic) prints
/// the replay command to stderr and panics with it.
///
/// `file` is the integration test's file stem (`module_path!()` in a test crate) and `test`
/// the test function's name.
pub fn sweep<F>(file: &str, test: &str, default_count: usize, mut run: F)
where
    F: FnMut(u64) -> Result<(), String>,
{
    let file = file.split("::").next().unwrap_or(file);
    for seed in sweep_seeds(test, default_count) {
        let r = panic::catch_unwind(AssertUnwindSafe(|| run(seed)));
        let why = match r {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(p) => p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic".to_owned()),
        };
        let cmd = replay_command(file, test, seed);
        eprintln!("sim failure, seed {seed}: {why}\nreplay with:\n  {cmd}");
        panic!("seed {seed} failed: {why}\nreplay with: {cmd}");
    }
}

/// The seeds of one run, drawn from its master seed in a fixed order.
#[derive(Debug, Clone)]
pub struct Seeds {
    master: u64,
    rng: SplitMix64,
}

impl Seeds {
    /// Seeds derived from `master`.
    pub fn new(master: u64) -> Self {
        Self {
            master,
            rng: SplitMix64::new(master),
        }
    }

    /// The master seed.
    pub fn master(&self) -> u64 {
        self.master
    }

    /// The next derived seed.
    pub fn next_seed(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A generator on the next derived seed.
    pub fn fork(&mut self) -> SplitMix64 {
        self.rng.fork()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_are_stable_and_distinct_per_test() {
        if std::env::var_os(SEED_VAR).is_some() || std::env::var_os(SEEDS_VAR).is_some() {
            return;
        }
        let a = sweep_seeds("a", 5);
        assert_eq!(a, sweep_seeds("a", 5));
        assert_ne!(a, sweep_seeds("b", 5));
        assert_eq!(a.len(), 5);
    }

    #[test]
    fn replay_command_names_seed_file_and_test() {
        let c = replay_command("pubsub", "at_most_once", 42);
        assert_eq!(
            c,
            "NATS_SIM_SEED=42 cargo test -p natsd-sim --test pubsub at_most_once -- --exact --nocapture"
        );
    }
}
