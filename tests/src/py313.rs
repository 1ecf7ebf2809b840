//! Running the scenario scripts of the current Python client family (`nats-core`,
//! `nats-jetstream`, `nats-key-value`; modules `nats.client`, `nats.jetstream`,
//! `nats.key_value`) from `tests/py/py313_*.py`.
//!
//! These clients need Python 3.13 and share the `nats` package namespace with nats-py 2.x, so
//! they live in their own interpreter (usually a virtualenv), found by [`interpreter`]:
//! `$NATSD_PY313` when set (it must work, or the tests fail), else the first `python3.13` on
//! `PATH` that can import the three modules. Without one the scenarios print why and pass.
//!
//! Scenarios that natsd does not pass yet are listed in [`NATSD_KNOWN_GAPS`] with the reason:
//! against natsd they still run, and their outcome is printed, but a failure does not fail the
//! test. Removing a line makes the scenario count again.

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::process::Command;

use crate::{within_for, ServerKind, TestServer};

/// Scenarios natsd is known to fail today, as (`script:scenario`, why). One line each; delete
/// a line once natsd passes that scenario (the test prints a note when it does). Empty: natsd
/// passes every scenario these clients run.
#[rustfmt::skip]
pub const NATSD_KNOWN_GAPS: &[(&str, &str)] = &[
];

/// The modules a usable interpreter must import.
const PROBE: &str = "import nats.client, nats.jetstream, nats.key_value";

/// Bound for one script run; below the harness's per-scenario backstop.
const SCRIPT: Duration = Duration::from_secs(55);

/// The Python 3.13 interpreter with the three client packages, or why there is none.
///
/// Panics when `$NATSD_PY313` is set but unusable: an explicit setting that does not work is a
/// broken setup, not a missing optional tool.
pub fn interpreter() -> Result<&'static Path, &'static str> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(find_interpreter)
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(String::as_str)
}

fn find_interpreter() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("NATSD_PY313") {
        let p = PathBuf::from(p);
        if let Err(why) = probe(&p) {
            panic!("NATSD_PY313={} cannot be used: {why}", p.display());
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut tried = Vec::new();
    for candidate in std::env::split_paths(&path).map(|d| d.join("python3.13")) {
        if !candidate.is_file() {
            continue;
        }
        match probe(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(why) => tried.push(format!("{}: {why}", candidate.display())),
        }
    }
    let tried = if tried.is_empty() {
        "no python3.13 on PATH".to_owned()
    } else {
        tried.join("; ")
    };
    Err(format!(
        "no Python 3.13 with nats-core, nats-jetstream and nats-key-value \
         (set NATSD_PY313 to one, see README \"Test it\"; {tried})"
    ))
}

/// Whether `python` runs and imports the three client modules.
fn probe(python: &Path) -> Result<(), String> {
    // A synchronous run, once per test process: the modules import in well under a second.
    let out = StdCommand::new(python)
        .args(["-c", PROBE])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    // A Python error ends with its message; a launcher that cannot run (a pyenv shim for a
    // version not selected, exit 127) says why first.
    let why = if out.status.code() == Some(127) {
        lines.next()
    } else {
        lines.next_back()
    };
    Err(format!(
        "`{PROBE}` failed ({}): {}",
        out.status,
        why.unwrap_or("")
    ))
}

/// Why `script:scenario` is expected to fail on natsd, if it is listed.
fn known_gap(kind: ServerKind, id: &str) -> Option<&'static str> {
    if kind != ServerKind::Natsd {
        return None;
    }
    NATSD_KNOWN_GAPS
        .iter()
        .find(|(name, _)| *name == id)
        .map(|(_, why)| *why)
}

/// [`run`] for a scenario that needs a feature nats-server 2.9.10 lacks (`newer` says which
/// release brought it): against nats-server it prints a note and passes.
pub async fn run_natsd_only(kind: ServerKind, script: &str, scenario: &str, newer: &str) {
    if kind == ServerKind::NatsServer {
        eprintln!("note: {script}:{scenario} runs on natsd only: it needs {newer}");
        return;
    }
    run(kind, script, scenario).await;
}

/// Runs `tests/py/<script>.py <url> <scenario>` against a fresh server of `kind` with JetStream
/// enabled, and fails the test with the script's report unless it prints `<scenario> ok`.
pub async fn run(kind: ServerKind, script: &str, scenario: &str) {
    let id = format!("{script}:{scenario}");
    let python = match interpreter() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("note: {id} skipped: {why}");
            return;
        }
    };
    let store = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot create a JetStream store dir: {e}"),
    };
    let store_path = store.path().to_string_lossy().into_owned();
    let server = TestServer::start_with_args(kind, "", &["-js", "-sd", &store_path]).await;
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join(format!("{script}.py"));
    let child = Command::new(python)
        .arg(&file)
        .arg(server.url())
        .arg(scenario)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match within_for(SCRIPT, &id, child).await {
        Ok(o) => o,
        Err(e) => panic!("cannot run {}: {e}", python.display()),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let passed = out.status.success() && stdout.contains(&format!("{scenario} ok"));
    let checks = stdout
        .lines()
        .find_map(|l| l.strip_prefix("checks: "))
        .unwrap_or("?")
        .trim()
        .to_owned();
    // The script's one-line verdict, e.g. "FAILED in step 'purge': AssertionError: ...".
    let verdict = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("FAILED in step"))
        .unwrap_or("no verdict line (crashed or killed)")
        .to_owned();
    if let Some(why) = known_gap(kind, &id) {
        if passed {
            eprintln!(
                "note: {id} passes on natsd ({checks} checks) but is listed in NATSD_KNOWN_GAPS \
                 ({why}); remove it from the list"
            );
        } else {
            eprintln!("note: known natsd gap {id} ({why}) still fails: {verdict}");
        }
        return;
    }
    assert!(
        passed,
        "{id} against {}: {verdict}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        kind.name(),
    );
    eprintln!("{id} against {}: {checks} checks passed", kind.name());
}
