//! Replays every committed fuzz corpus (`fuzz/corpus/<target>/`) through the same entry points
//! the cargo-fuzz targets call, so that `cargo test` on the stable toolchain guards against
//! regressions of anything the fuzzers once found.

use std::path::{Path, PathBuf};
use std::time::Instant;

use natsd_core::fuzzing::TARGETS;

/// `fuzz/<kind>/<target>/`: `corpus` holds inputs that must pass, `known_crashes` inputs that
/// still expose open bugs outside the fuzzing code.
fn corpus_dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target)
}

/// The files of `kind` for `target`, sorted by name so that failures are reproducible.
fn corpus(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(kind, target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

// The virtual clock of `conn_machine` needs some starting instant; every later time is derived.
#[allow(clippy::disallowed_methods)]
fn replay_from(kind: &str, target: &str) {
    let (_, run) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("known target");
    let files = corpus(kind, target);
    assert!(!files.is_empty(), "empty corpus for {target}");
    for file in &files {
        let data = std::fs::read(file).expect("readable corpus file");
        eprintln!("{target}: {}", file.display());
        run(Instant::now(), &data);
    }
}

fn replay(target: &str) {
    replay_from("corpus", target);
}

#[test]
fn every_target_has_a_replay_test() {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "client_parser",
            "connect_json",
            "conn_machine",
            "config_parser",
            "sublist_ops",
            "permissions",
            "route_parser",
            "parse_leaf",
            "js_api",
            "js_request_json",
            "cluster_entries",
            "cluster_snapshots"
        ]
    );
}

#[test]
fn client_parser() {
    replay("client_parser");
}

#[test]
fn connect_json() {
    replay("connect_json");
}

#[test]
fn conn_machine() {
    replay("conn_machine");
}

#[test]
fn config_parser() {
    replay("config_parser");
}

#[test]
fn sublist_ops() {
    replay("sublist_ops");
}

#[test]
fn permissions() {
    replay("permissions");
}

#[test]
fn route_parser() {
    replay("route_parser");
}

#[test]
fn parse_leaf() {
    replay("parse_leaf");
}

#[test]
fn js_api() {
    replay("js_api");
}

#[test]
fn js_request_json() {
    replay("js_request_json");
}

#[test]
fn cluster_entries() {
    replay("cluster_entries");
}

#[test]
fn cluster_snapshots() {
    replay("cluster_snapshots");
}
