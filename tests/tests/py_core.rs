//! Runs tests/py/core_smoke.py (the nats-core client, `nats.client`: connect, publish/subscribe,
//! request/reply) against each server kind, when a Python with that module is installed.
//!
//! nats-core needs Python 3.13. The interpreter is `$NATS_CORE_PYTHON` when set, else the first
//! of `python3.13` and `python3` that imports `nats.client`; `PYENV_VERSION=3.13` is passed so
//! that a pyenv shim finds its 3.13 install.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use natsd_tests::{both, within_for, ServerKind, TestServer};
use tokio::process::Command;

both!(nats_core_smoke);

fn python(exe: &OsString) -> Command {
    let mut cmd = Command::new(exe);
    if std::env::var_os("PYENV_VERSION").is_none() {
        cmd.env("PYENV_VERSION", "3.13");
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

/// The first interpreter that imports `nats.client`.
async fn nats_core_python() -> Option<OsString> {
    let candidates: Vec<OsString> = match std::env::var_os("NATS_CORE_PYTHON") {
        Some(p) => vec![p],
        None => vec!["python3.13".into(), "python3".into()],
    };
    for exe in candidates {
        let probe = python(&exe)
            .args(["-c", "import nats.client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if matches!(within_for(Duration::from_secs(20), "python probe", probe).await, Ok(s) if s.success())
        {
            return Some(exe);
        }
    }
    None
}

async fn nats_core_smoke(kind: ServerKind) {
    let Some(exe) = nats_core_python().await else {
        eprintln!(
            "note: no Python with nats-core (nats.client) found; set NATS_CORE_PYTHON; skipped"
        );
        return;
    };
    let s = TestServer::start(kind, "").await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join("core_smoke.py");
    let run = python(&exe).arg(&script).arg(s.url()).output();
    let out = within_for(Duration::from_secs(45), "nats-core smoke script", run)
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("core smoke ok"),
        "core_smoke.py failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
}
