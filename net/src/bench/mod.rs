//! `natsd bench`: a load generator in the spirit of `nats bench`, speaking the NATS client
//! protocol over plain TCP against any server (natsd or nats-server), plus `natsd bench report`,
//! which turns the JSON lines of several runs into a side-by-side Markdown table.
//!
//! Every scenario is bounded by a message count, a duration and a hard timeout, and prints one
//! JSON line on stdout and one human line on stderr.

mod hist;
mod jetstream;
mod latency;
mod memory;
mod proto;
mod report;
mod throughput;

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Map, Value};

/// Usage text of `natsd bench`.
pub const USAGE: &str = "\
Usage: natsd bench [options] [scenario ...]
       natsd bench report <results.jsonl>...

Scenarios (default: all):
  pub          publishers only, no subscribers (one run per --size; default sizes 16,128)
  pubsub       1 publisher -> 1 subscriber, rate counted at the subscriber
  fanout       1 publisher -> --fanout subscribers (default 8)
  queue        1 publisher -> a queue group of --group members (default 4)
  reqrep       request/reply latency, one run per --requesters (default 1,16)
  idle-conns   open --conns idle connections (default 5000), report server RSS growth
  subs         --subjects subscriptions on distinct subjects (default 100000), then RSS
               growth and the publish rate over them
  all          all of the above
JetStream scenarios (not in `all`; the server needs JetStream on; one run per --size, default 128):
  js-pub-sync  publish one message at a time, waiting for its PubAck (file and memory stream)
  js-pub-async publish with 256 PubAcks outstanding (file and memory stream)
  js-consume   pre-fill a file stream for --duration, then drain it with a pull consumer
               (ack none, batches of 256)
  kv-put       KV puts, one at a time, over 1000 keys (file bucket)
  kv-get       KV direct gets, one at a time, over 1000 keys
  js           all five JetStream scenarios

Options:
  --url URL           server to load (default nats://127.0.0.1:4222)
  --sub-url URL       subscribers and the reqrep responder connect here instead (another
                      server: a cluster node, a leaf, a server of another cluster)
  --msgs N            message budget per scenario (default 20000000)
  --duration SECS     time budget per scenario (default 3)
  --timeout SECS      hard limit per scenario (default duration + 30)
  --size N[,N...]     payload sizes in bytes
  --pubs N            publishers (default 1)
  --fanout N          fan-out subscribers (default 8)
  --group N           queue group members (default 4)
  --requesters N[,N]  concurrent requesters (default 1,16)
  --conns N           idle connections (default 5000)
  --subjects N        subscriptions for `subs` (default 100000)
  --server-pid PID    read the server's VmRSS from /proc/PID/status
  --label NAME        copied into every JSON line (e.g. natsd, nats-server)
  --round N           copied into every JSON line
  --threads N         bench runtime worker threads (default 2)
  --open-loop         pub, pubsub, fanout, queue: publishers write as fast as the socket
                      takes frames (no PINGs, no delivery window); scenario names get
                      `_open`, and `lost` counts messages that never reached a subscriber
  --replicas N        JetStream scenarios: `num_replicas` of their streams (default 1; above 1
                      scenario names get `_r<N>`; point --url at one node of the cluster). A
                      stream the server will not create is reported as n/a with its error
  --storage KIND      js-pub-sync, js-pub-async: only `file` or `memory` streams (default both)";

/// Parsed command line.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) addr: String,
    /// Where subscribers connect (another node of a cluster); `None`: `addr`.
    pub(crate) sub_addr: Option<String>,
    pub(crate) msgs: u64,
    pub(crate) duration: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) sizes: Option<Vec<usize>>,
    pub(crate) pubs: usize,
    pub(crate) fanout: usize,
    pub(crate) group: usize,
    pub(crate) requesters: Vec<usize>,
    pub(crate) conns: usize,
    pub(crate) subjects: usize,
    pub(crate) server_pid: Option<u32>,
    pub(crate) label: String,
    pub(crate) round: u32,
    pub(crate) threads: usize,
    /// Unthrottled publishers (see [`throughput`]).
    pub(crate) open_loop: bool,
    /// `num_replicas` of the JetStream scenarios' streams.
    pub(crate) replicas: usize,
    /// Only this storage in `js-pub-sync` and `js-pub-async` (`None`: both).
    pub(crate) storage: Option<jetstream::Storage>,
    pub(crate) scenarios: Vec<String>,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:4222".into(),
            sub_addr: None,
            msgs: 20_000_000,
            duration: Duration::from_secs(3),
            timeout: None,
            sizes: None,
            pubs: 1,
            fanout: 8,
            group: 4,
            requesters: vec![1, 16],
            conns: 5000,
            subjects: 100_000,
            server_pid: None,
            label: String::new(),
            round: 0,
            threads: 2,
            open_loop: false,
            replicas: 1,
            storage: None,
            scenarios: Vec::new(),
        }
    }
}

const SCENARIOS: [&str; 7] = [
    "pub",
    "pubsub",
    "fanout",
    "queue",
    "reqrep",
    "idle-conns",
    "subs",
];

fn list(v: &str) -> Result<Vec<usize>, String> {
    v.split(',')
        .map(|s| s.trim().parse().map_err(|_| format!("not a number: {s}")))
        .collect()
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
}

fn secs(flag: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = num(flag, v)?;
    Duration::try_from_secs_f64(s).map_err(|_| format!("{flag}: bad duration: {v}"))
}

pub(crate) fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if !flag.starts_with('-') {
            if flag == "js" {
                a.scenarios
                    .extend(jetstream::JS_SCENARIOS.iter().map(ToString::to_string));
            } else if jetstream::JS_SCENARIOS.contains(&flag) {
                a.scenarios.push(flag.to_string());
            } else if flag == "all" {
                a.scenarios
                    .extend(SCENARIOS.iter().map(ToString::to_string));
            } else if SCENARIOS.contains(&flag) {
                a.scenarios.push(flag.to_string());
            } else {
                return Err(format!("unknown scenario: {flag}"));
            }
            continue;
        }
        if flag == "--open-loop" {
            a.open_loop = true;
            continue;
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--url" | "-s" | "--server" => a.addr = proto::socket_addr(&value()?),
            "--sub-url" => a.sub_addr = Some(proto::socket_addr(&value()?)),
            "--msgs" => a.msgs = num(flag, &value()?)?,
            "--duration" => a.duration = secs(flag, &value()?)?,
            "--timeout" => a.timeout = Some(secs(flag, &value()?)?),
            "--size" => a.sizes = Some(list(&value()?)?),
            "--pubs" => a.pubs = num(flag, &value()?)?,
            "--fanout" => a.fanout = num(flag, &value()?)?,
            "--group" => a.group = num(flag, &value()?)?,
            "--requesters" => a.requesters = list(&value()?)?,
            "--conns" => a.conns = num(flag, &value()?)?,
            "--subjects" => a.subjects = num(flag, &value()?)?,
            "--server-pid" => a.server_pid = Some(num(flag, &value()?)?),
            "--label" => a.label = value()?,
            "--round" => a.round = num(flag, &value()?)?,
            "--threads" => a.threads = num(flag, &value()?)?,
            "--replicas" => a.replicas = num(flag, &value()?)?,
            "--storage" => a.storage = Some(jetstream::Storage::parse(&value()?)?),
            _ => return Err(format!("unknown option: {flag}")),
        }
    }
    if a.scenarios.is_empty() {
        a.scenarios
            .extend(SCENARIOS.iter().map(ToString::to_string));
    }
    if a.pubs == 0
        || a.fanout == 0
        || a.group == 0
        || a.threads == 0
        || a.msgs == 0
        || a.replicas == 0
    {
        return Err(
            "--pubs, --fanout, --group, --threads, --msgs and --replicas must be positive".into(),
        );
    }
    Ok(a)
}

impl Args {
    /// The hard limit of one scenario.
    pub(crate) fn hard_timeout(&self) -> Duration {
        self.timeout
            .unwrap_or(self.duration + Duration::from_secs(30))
    }

    fn sizes_or(&self, default: &[usize]) -> Vec<usize> {
        self.sizes.clone().unwrap_or_else(|| default.to_vec())
    }
}

/// One scenario's result: a name plus numeric fields.
#[derive(Debug, Clone, Default)]
pub(crate) struct Record {
    pub(crate) scenario: String,
    pub(crate) fields: Vec<(&'static str, f64)>,
    /// The human-readable summary.
    pub(crate) human: String,
    /// The server refused the scenario's setup (its error): no figures, n/a in the report.
    pub(crate) error: Option<String>,
}

impl Record {
    pub(crate) fn new(scenario: impl Into<String>) -> Self {
        Self {
            scenario: scenario.into(),
            ..Self::default()
        }
    }

    pub(crate) fn set(&mut self, key: &'static str, v: f64) {
        self.fields.push((key, v));
    }

    fn json(&self, args: &Args) -> String {
        let mut m = Map::new();
        m.insert("scenario".into(), Value::from(self.scenario.clone()));
        m.insert("label".into(), Value::from(args.label.clone()));
        m.insert("round".into(), Value::from(args.round));
        if let Some(e) = &self.error {
            m.insert("error".into(), Value::from(e.clone()));
        }
        for (k, v) in &self.fields {
            m.insert((*k).into(), Value::from(*v));
        }
        Value::Object(m).to_string()
    }
}

/// Formats a rate or count with thousands separators.
pub(crate) fn grouped(v: f64) -> String {
    let s = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

async fn run_one(args: &Args, scenario: &str) -> anyhow::Result<Vec<Record>> {
    let mut out = Vec::new();
    match scenario {
        "pub" => {
            for size in args.sizes_or(&[16, 128]) {
                out.push(throughput::run(args, throughput::Shape::PubOnly, size).await?);
            }
        }
        "pubsub" | "fanout" | "queue" => {
            let shape = match scenario {
                "pubsub" => throughput::Shape::Fanout(1),
                "fanout" => throughput::Shape::Fanout(args.fanout),
                _ => throughput::Shape::Queue(args.group),
            };
            for size in args.sizes_or(&[16]) {
                out.push(throughput::run(args, shape, size).await?);
            }
        }
        "reqrep" => {
            for &n in &args.requesters {
                out.push(latency::run(args, n.max(1)).await?);
            }
        }
        "idle-conns" => out.push(memory::idle_conns(args).await?),
        _ if jetstream::JS_SCENARIOS.contains(&scenario) => {
            out.extend(jetstream::run(args, scenario).await?);
        }
        _ => out.push(memory::subs(args).await?),
    }
    Ok(out)
}

#[allow(clippy::print_stdout)]
async fn run_all(args: Args) -> bool {
    let mut ok = true;
    let who = if args.label.is_empty() {
        args.addr.clone()
    } else {
        args.label.clone()
    };
    for scenario in &args.scenarios {
        let limit = args.hard_timeout();
        match tokio::time::timeout(limit, run_one(&args, scenario)).await {
            Ok(Ok(records)) => {
                for r in records {
                    ok &= r.error.is_none();
                    println!("{}", r.json(&args));
                    eprintln!("{:<18} {:<12} {}", r.scenario, who, r.human);
                }
            }
            Ok(Err(e)) => {
                ok = false;
                eprintln!("{scenario:<18} {who:<12} FAILED: {e:#}");
            }
            Err(_) => {
                ok = false;
                eprintln!("{scenario:<18} {who:<12} FAILED: hard timeout after {limit:?}");
            }
        }
        // Let the server reap the scenario's connections before the next one starts.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ok
}

/// Runs the bench subcommand with its arguments; returns the process exit code.
pub fn main(args: Vec<String>) -> ExitCode {
    if args.first().map(String::as_str) == Some("report") {
        return report::main(&args[1..]);
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("natsd bench: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("natsd bench: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if rt.block_on(run_all(args)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests;
