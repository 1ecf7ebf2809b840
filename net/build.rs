//! Records the compiler version for the `go` field of INFO and `/varz`.
//!
//! nats-server fills that field with the Go toolchain it was built with (`go1.19.8`), and
//! clients read it unconditionally. natsd is not Go, so it says which Rust compiler built it
//! (`rustc 1.95.0`), which is equally true and equally useful in a bug report.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        // "rustc 1.95.0 (59807616e 2026-04-14)": the name and the version are enough.
        .map(|s| s.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "rustc".to_owned());
    println!("cargo:rustc-env=NATSD_RUSTC_VERSION={version}");
}
