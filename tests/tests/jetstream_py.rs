//! nats-py's own JetStream key-value and object-store APIs (tests/py/js_kv.py and
//! tests/py/js_object.py) against each server kind, when python3 with the `nats` module is
//! installed. Each script checks its own results and prints how many checks passed.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use natsd_tests::{both, within_for, ServerKind, TestServer};
use tokio::process::Command;

both!(py_key_value, py_object_store);

/// Whether `python3 -c "import nats.js.kv"` succeeds.
async fn nats_py_available() -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import nats.js.kv, nats.js.object_store"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    matches!(within_for(Duration::from_secs(20), "python3 probe", probe).await, Ok(s) if s.success())
}

/// Runs `tests/py/<script>` against a fresh JetStream server; returns its check count.
async fn run_script(kind: ServerKind, script: &str, done: &str) -> Option<u32> {
    if !nats_py_available().await {
        eprintln!("note: python3 with nats-py is not available; {script} skipped");
        return None;
    }
    let sd = tempfile::tempdir().unwrap();
    let path = sd.path().to_str().unwrap().to_owned();
    let s = TestServer::start_with_args(kind, "", &["-js", "-sd", &path]).await;
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join(script);
    let run = Command::new("python3")
        .arg(&file)
        .arg(s.url())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match within_for(Duration::from_secs(90), script, run).await {
        Ok(o) => o,
        Err(e) => panic!("cannot run python3: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(done),
        "{script} failed against {} ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        kind.name(),
        out.status
    );
    let checks = stdout
        .lines()
        .find_map(|l| l.strip_prefix("checks: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    eprintln!("{script} against {}: {checks} checks passed", kind.name());
    Some(checks)
}

async fn py_key_value(kind: ServerKind) {
    if let Some(n) = run_script(kind, "js_kv.py", "js_kv ok").await {
        assert!(n >= 20, "js_kv.py ran only {n} checks");
    }
}

async fn py_object_store(kind: ServerKind) {
    if let Some(n) = run_script(kind, "js_object.py", "js_object ok").await {
        assert!(n >= 15, "js_object.py ran only {n} checks");
    }
}
