//! cargo-fuzz target; the checks live in `natsd_core::fuzzing::cluster_snapshots`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| natsd_core::fuzzing::cluster_snapshots(data));
