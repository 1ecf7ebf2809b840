//! Process figures for `/varz` (`mem`, `cpu`), read from Linux's /proc. Elsewhere they are 0.

use std::sync::Mutex;
use std::time::Instant;

use crate::server::lock;

/// Kernel clock ticks per second for /proc/self/stat times. USER_HZ is 100 on every Linux
/// architecture natsd targets.
const TICKS_PER_SEC: f64 = 100.0;
/// Page size for /proc/self/statm. 4 KiB on x86-64 and the usual aarch64 kernels.
const PAGE_SIZE: u64 = 4096;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * PAGE_SIZE)
}

fn cpu_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields after the closing paren are plain.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the paren.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Resident memory in bytes, and CPU use in percent of one core since the previous call (the
/// first call averages over nothing and reports 0, as nats-server's first sample does).
pub(crate) fn sample(prev: &Mutex<Option<(Instant, u64)>>) -> (u64, f64) {
    let mem = rss_bytes();
    let Some(ticks) = cpu_ticks() else {
        return (mem, 0.0);
    };
    let now = crate::transport::now();
    let mut p = lock(prev);
    let cpu = match *p {
        Some((t, before)) => {
            let wall = now.duration_since(t).as_secs_f64();
            if wall > 0.0 {
                let used = ticks.saturating_sub(before) as f64 / TICKS_PER_SEC;
                // Go rounds to one decimal.
                (used / wall * 1000.0).round() / 10.0
            } else {
                0.0
            }
        }
        None => 0.0,
    };
    *p = Some((now, ticks));
    (mem, cpu)
}
