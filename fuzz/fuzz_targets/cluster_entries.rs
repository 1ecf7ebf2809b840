//! cargo-fuzz target; the checks live in `natsd_core::fuzzing::cluster_entries`.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any starting instant will do: the catch-up only sees times derived from it.
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    natsd_core::fuzzing::cluster_entries(start, data);
});
