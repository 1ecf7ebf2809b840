//! Which accounts get JetStream, against the server's own limits: an account whose limits
//! do not fit the server's `max_memory_store`/`max_file_store` stops the server at startup.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use natsd_tests::{both, within_for, ServerKind};

both!(
    account_memory_over_server_is_fatal,
    account_limits_sum_over_server_is_fatal
);

/// Runs `kind` on `config` (its `jetstream` block gets a fresh store directory) and waits
/// for it to exit on its own: (exit code, everything it logged).
async fn fails_to_start(kind: ServerKind, config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("js");
    let config = config.replace("STORE", &store.display().to_string());
    let conf = dir.path().join("server.conf");
    std::fs::write(&conf, config).unwrap();
    let child = tokio::process::Command::new(kind.binary())
        .arg("-c")
        .arg(&conf)
        .args(["-a", "127.0.0.1", "-p", "-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = within_for(Duration::from_secs(10), "the server to give up", async {
        child.wait_with_output().await.unwrap()
    })
    .await;
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), log)
}

async fn account_memory_over_server_is_fatal(kind: ServerKind) {
    let (code, log) = fails_to_start(
        kind,
        r#"jetstream { store_dir: "STORE", max_memory_store: 1MB, max_file_store: 10MB }
           accounts { A { jetstream { max_memory: 2MB, max_file: -1 } } }"#,
    )
    .await;
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains(
            "Can't start JetStream: Error enabling jetstream on configured accounts: \
             insufficient memory resources available (10028)"
        ),
        "{log}"
    );
}

async fn account_limits_sum_over_server_is_fatal(kind: ServerKind) {
    // Each account fits alone; together their file limits do not.
    let (code, log) = fails_to_start(
        kind,
        r#"jetstream { store_dir: "STORE", max_memory_store: 1MB, max_file_store: 10MB }
           accounts {
             A { jetstream { max_memory: 100KB, max_file: 6MB } }
             B { jetstream { max_memory: 100KB, max_file: 6MB } }
           }"#,
    )
    .await;
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("insufficient storage resources available (10047)"),
        "{log}"
    );
}
