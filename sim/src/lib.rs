//! natsd-sim: seeded, reproducible runs of natsd servers on the turmoil simulated network.
#![forbid(unsafe_code)]
