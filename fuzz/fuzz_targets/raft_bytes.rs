//! cargo-fuzz target; the checks live in `natsd_raft::fuzzing::raft_bytes`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| natsd_raft::fuzzing::raft_bytes(data));
