//! Starting and stopping a server process on a free loopback port.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

use crate::RawClient;

/// How long a starting server may take to accept a connection and send INFO.
const READY: Duration = Duration::from_secs(10);

/// How many fresh ports to try when a start loses a race for its port.
const START_ATTEMPTS: usize = 3;

/// Which server binary a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// This workspace's server, `$NATSD_BIN` or built with cargo on first use.
    Natsd,
    /// The Go reference server, `$NATS_SERVER_BIN` or `nats-server` from `PATH`.
    NatsServer,
}

impl ServerKind {
    /// Short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Natsd => "natsd",
            Self::NatsServer => "nats-server",
        }
    }

    /// Whether scenarios can run against this kind. natsd always counts as
    /// available, so a broken build fails its tests instead of skipping them.
    pub fn available(self) -> bool {
        match self {
            Self::Natsd => true,
            Self::NatsServer => nats_server_path().is_some(),
        }
    }

    /// Path of the binary; panics when natsd cannot be built or nats-server is missing.
    pub fn binary(self) -> PathBuf {
        match self {
            Self::Natsd => match natsd_path() {
                Ok(p) => p.clone(),
                Err(e) => panic!("natsd is not available: {e}"),
            },
            Self::NatsServer => match nats_server_path() {
                Some(p) => p.clone(),
                None => panic!("nats-server is not installed"),
            },
        }
    }
}

fn nats_server_path() -> Option<&'static PathBuf> {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
            return Some(PathBuf::from(p));
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file())
    })
    .as_ref()
}

/// Builds natsd once per test process (or takes `$NATSD_BIN`).
fn natsd_path() -> Result<&'static PathBuf, &'static String> {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PATH.get_or_init(build_natsd).as_ref()
}

fn build_natsd() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("NATSD_BIN") {
        return Ok(PathBuf::from(p));
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .ok_or_else(|| "tests crate has no parent directory".to_owned())?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "-p", "natsd", "--bin", "natsd"])
        .current_dir(root)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
    if !status.success() {
        return Err(format!(
            "`cargo build -p natsd --bin natsd` failed: {status}"
        ));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_relative() { root.join(t) } else { t })
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join("natsd");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("build succeeded but {} is missing", bin.display()))
    }
}

/// A running server process, killed on drop.
///
/// Its config file and log live in a private temp dir; when a test panics
/// while the server is alive, the log is copied to stderr.
#[derive(Debug)]
pub struct TestServer {
    kind: ServerKind,
    child: Child,
    port: u16,
    log_path: PathBuf,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts `kind` with `config` as its config file (no file when empty).
    pub async fn start(kind: ServerKind, config: &str) -> Self {
        Self::start_with_args(kind, config, &[]).await
    }

    /// Starts `kind` with `config` and extra command-line arguments.
    ///
    /// The listen address always comes from the command line (`-a 127.0.0.1 -p N`),
    /// which overrides anything in the config.
    pub async fn start_with_args(kind: ServerKind, config: &str, args: &[&str]) -> Self {
        Self::start_full(kind, config, &[], args).await
    }

    /// Starts `kind` with `config`, after writing `files` (name, contents) next to
    /// the config file, for `include` directives and the like.
    pub async fn start_with_files(kind: ServerKind, config: &str, files: &[(&str, &str)]) -> Self {
        Self::start_full(kind, config, files, &[]).await
    }

    async fn start_full(
        kind: ServerKind,
        config: &str,
        files: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let bin = kind.binary();
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = match tempfile::Builder::new().prefix("natsd-test-").tempdir() {
                Ok(d) => d,
                Err(e) => panic!("cannot create temp dir: {e}"),
            };
            let port = free_port();
            let log_path = dir.path().join("server.log");
            for (name, contents) in files {
                if let Err(e) = std::fs::write(dir.path().join(name), contents) {
                    panic!("cannot write {name}: {e}");
                }
            }
            let mut cmd = Command::new(&bin);
            if !config.is_empty() {
                let conf = dir.path().join("server.conf");
                if let Err(e) = std::fs::write(&conf, config) {
                    panic!("cannot write config: {e}");
                }
                cmd.arg("-c").arg(&conf);
            }
            cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
            cmd.args(args);
            let log = match File::create(&log_path) {
                Ok(f) => f,
                Err(e) => panic!("cannot create log file: {e}"),
            };
            let log2 = match log.try_clone() {
                Ok(f) => f,
                Err(e) => panic!("cannot clone log file: {e}"),
            };
            cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
            let child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => panic!("cannot start {}: {e}", bin.display()),
            };
            let mut server = Self {
                kind,
                child,
                port,
                log_path,
                dir,
            };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(why) => {
                    last_log = server.log();
                    let lost_port = last_log.contains("address already in use")
                        || last_log.contains("Address already in use");
                    if !lost_port {
                        panic!(
                            "{} did not become ready: {why}\n--- server log ---\n{last_log}",
                            kind.name()
                        );
                    }
                }
            }
        }
        panic!(
            "{} could not bind a free port in {START_ATTEMPTS} attempts\n--- server log ---\n{last_log}",
            kind.name()
        );
    }

    /// Polls until the server accepts a connection and sends an INFO line.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + READY;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("process exited early: {status}"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("no INFO within {READY:?}"));
            }
            let probe = async {
                let stream = TcpStream::connect(self.addr()).await.ok()?;
                let mut line = String::new();
                BufReader::new(stream).read_line(&mut line).await.ok()?;
                line.starts_with("INFO ").then_some(())
            };
            match tokio::time::timeout(Duration::from_secs(1), probe).await {
                Ok(Some(())) => return Ok(()),
                // Not listening yet: poll again shortly. This is a poll interval,
                // the wait itself is bounded by `deadline`.
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Process id (to send it signals, e.g. lame duck mode).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Which binary this is.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// Client port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's private temp dir (holds its config and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Connects async-nats with default options, panicking on failure.
    pub async fn client(&self) -> async_nats::Client {
        self.client_with(async_nats::ConnectOptions::new()).await
    }

    /// Connects async-nats with `opts`, panicking on failure.
    pub async fn client_with(&self, opts: async_nats::ConnectOptions) -> async_nats::Client {
        match self.connect(opts).await {
            Ok(c) => c,
            Err(e) => panic!("async-nats connect to {} failed: {e}", self.kind.name()),
        }
    }

    /// Connects async-nats with `opts` (no reconnects, bounded), returning the error.
    pub async fn connect(
        &self,
        opts: async_nats::ConnectOptions,
    ) -> Result<async_nats::Client, async_nats::ConnectError> {
        let opts = opts
            .max_reconnects(1)
            .connection_timeout(Duration::from_secs(3));
        crate::within("async-nats connect", opts.connect(self.url())).await
    }

    /// Opens a raw protocol connection and reads the server's INFO.
    pub async fn raw(&self) -> RawClient {
        RawClient::connect(self.addr()).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Only the child this handle started is killed.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- {} log (port {}) ---\n{}--- end of log ---",
                self.kind.name(),
                self.port,
                self.log()
            );
        }
    }
}

/// Ports handed to servers come from below the kernel's ephemeral range (32768 and up on
/// Linux): a port the kernel picked for `bind(0)` and we let go of can be taken again at once
/// by any outgoing connection on the machine, which made a busy test run lose config ports
/// (cluster, leaf, monitoring) it had already written into a server's config.
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// A port that was free a moment ago and that no other test of this process was given.
/// Each process starts at its own place in [`PORT_RANGE`] (from its pid), so test binaries
/// running side by side rarely meet; a port found taken is skipped.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    let start = std::process::id().wrapping_mul(2_654_435_761) % span;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = PORT_RANGE.start + n as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {PORT_RANGE:?}");
}
