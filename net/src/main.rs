//! The `natsd` binary: nats-server's command line, signals and logging around the library.

use std::process::ExitCode;
use std::sync::Arc;

use natsd::cli::{self, Cli};
use natsd::logging::{LogTarget, NatsFormat};
use natsd::{Options, Server};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// The binary's allocator (an embedding application chooses its own). glibc's malloc gave
/// memory back and faulted it in again on the JetStream publish path, each time with a TLB
/// shootdown across cores; mimalloc keeps it, for a few MiB more at rest.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fatal(msg: &str) -> ExitCode {
    eprintln!(
        "[{}] {} [FTL] {msg}",
        std::process::id(),
        natsd::logging::timestamp(std::time::SystemTime::now())
    );
    ExitCode::from(1)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("bench") {
        return natsd::bench::main(args[1..].to_vec());
    }
    let cli = match cli::parse_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("natsd: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(1);
        }
    };
    if cli.help {
        #[allow(clippy::print_stdout)]
        {
            println!("{}", cli::USAGE);
        }
        return ExitCode::SUCCESS;
    }
    if cli.version {
        #[allow(clippy::print_stdout)]
        {
            println!(
                "natsd: v{} (nats-server v{} compatible)",
                natsd::NATSD_VERSION,
                natsd::NATS_COMPAT_VERSION
            );
        }
        return ExitCode::SUCCESS;
    }
    if let Some(req) = &cli.signal {
        return send_signal(req);
    }
    let cli_warnings: Vec<String> = cli.warnings.iter().map(ToString::to_string).collect();
    let (opts, ignored) = match load_options(&cli) {
        Ok(o) => o,
        Err(e) => return fatal(&e),
    };
    if cli.check_config {
        eprintln!(
            "natsd: configuration file {} is valid",
            opts.config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let target = match LogTarget::new(opts.log_file.clone()) {
        Ok(t) => t,
        Err(e) => return fatal(&format!("error opening log file: {e}")),
    };
    let level = level_of(&opts);
    // The level sits behind a reload handle so that a config reload can switch debug/trace.
    let (filter, log_level) = tracing_subscriber::reload::Layer::new(level);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(target.clone())
                .event_format(NatsFormat::new(opts.logtime)),
        )
        .init();
    for key in &ignored {
        tracing::warn!("{key}: not supported by this natsd build yet; ignored");
    }
    for w in &cli_warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fatal(&format!("cannot start runtime: {e}")),
    };
    let ctx = RunCtx {
        cli,
        target,
        log_level,
    };
    rt.block_on(run(opts, ctx))
}

fn load_options(cli: &Cli) -> Result<(Options, Vec<String>), String> {
    let (mut opts, ignored) = match &cli.config {
        Some(path) => {
            let loaded = natsd::config::load(path)?;
            (loaded.options, loaded.ignored)
        }
        None => (Options::default(), Vec::new()),
    };
    cli.apply(&mut opts);
    Ok((opts, ignored))
}

type LevelHandle = tracing_subscriber::reload::Handle<LevelFilter, tracing_subscriber::Registry>;

/// What the signal handlers need besides the server.
struct RunCtx {
    cli: Cli,
    target: LogTarget,
    log_level: LevelHandle,
}

fn level_of(opts: &Options) -> LevelFilter {
    if opts.trace {
        LevelFilter::TRACE
    } else if opts.debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    }
}

/// SIGHUP / `--signal reload`: re-read the config file, apply the command line on top again
/// (as nats-server does), and swap it in. A bad file is logged and the old config stays.
fn reload(server: &Server, ctx: &RunCtx) {
    tracing::info!("Trapped \"hangup\" signal");
    let opts = match load_options(&ctx.cli) {
        Ok((o, _)) => o,
        Err(e) => {
            tracing::error!("Failed to reload server configuration: {e}");
            return;
        }
    };
    let level = level_of(&opts);
    match server.reload_options(opts) {
        Ok(()) => {
            if let Err(e) = ctx.log_level.modify(|f| *f = level) {
                tracing::error!("could not change the log level: {e}");
            }
        }
        Err(e) => tracing::error!("Failed to reload server configuration: {e}"),
    }
}

async fn run(opts: Options, ctx: RunCtx) -> ExitCode {
    let seed = natsd::os_seed();
    tracing::info!("Starting natsd (nats-server compatible)");
    tracing::info!(
        "  Version:  {} (protocol level of nats-server {})",
        natsd::NATSD_VERSION,
        natsd::NATS_COMPAT_VERSION
    );
    tracing::info!("  Seed:     {seed}");
    let pid_file = opts.pid_file.clone();
    let ports_dir = opts.ports_file_dir.clone();
    if let Some(cf) = &opts.config_file {
        tracing::info!("Using configuration file: {}", cf.display());
    }
    let server = match Server::with_seed(opts, seed) {
        Ok(s) => Arc::new(s),
        Err(e) => return fatal(&e.to_string()),
    };
    tracing::info!("  Name:     {}", server.name());
    tracing::info!("  ID:       {}", server.id());
    if let Some(p) = &pid_file {
        if let Err(e) = std::fs::write(p, std::process::id().to_string()) {
            return fatal(&format!("could not write pid file: {e}"));
        }
    }
    if let Err(e) = server.start().await {
        return fatal(&e.to_string());
    }
    if let Some(dir) = &ports_dir {
        if let Err(e) = write_ports_file(dir, &server) {
            tracing::error!("could not write ports file: {e}");
        }
    }
    wait_for_signals(&server, &ctx).await;
    server.shutdown();
    server.wait_for_shutdown().await;
    if let Some(p) = &pid_file {
        let _ = std::fs::remove_file(p);
    }
    ExitCode::SUCCESS
}

fn write_ports_file(dir: &std::path::Path, server: &Server) -> std::io::Result<()> {
    let exe = std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "natsd".to_owned());
    let path = dir.join(format!("{exe}_{}.ports", std::process::id()));
    let body = serde_json::json!({ "nats": [server.client_url().unwrap_or_default()] });
    std::fs::write(path, body.to_string())
}

#[cfg(unix)]
async fn wait_for_signals(server: &Server, ctx: &RunCtx) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut usr1), Ok(mut usr2), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = int.recv() => { tracing::info!("Trapped \"interrupt\" signal"); return; }
            _ = term.recv() => { tracing::info!("Trapped \"terminated\" signal"); return; }
            _ = hup.recv() => reload(server, ctx),
            _ = usr2.recv() => {
                tracing::info!("Trapped \"user defined signal 2\" signal");
                server.lame_duck().await;
                return;
            }
            _ = usr1.recv() => {
                if let Err(e) = ctx.target.reopen() {
                    tracing::error!("could not reopen log file: {e}");
                } else {
                    tracing::info!("Reopened log file");
                }
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_server: &Server, _ctx: &RunCtx) {
    let _ = tokio::signal::ctrl_c().await;
}

/// `--signal CMD[=PID]`: sends the matching signal to a running server, as nats-server does.
fn send_signal(req: &cli::SignalRequest) -> ExitCode {
    let sig = match req.command.as_str() {
        "stop" => "KILL",
        "quit" => "INT",
        "term" => "TERM",
        "reopen" => "USR1",
        "reload" => "HUP",
        "ldm" => "USR2",
        other => return fatal(&format!("unknown signal {other:?}")),
    };
    let pid = match &req.pid {
        Some(p) if p.chars().all(|c| c.is_ascii_digit()) => p.clone(),
        Some(file) => match std::fs::read_to_string(file) {
            Ok(s) => s.trim().to_owned(),
            Err(e) => return fatal(&format!("could not read pid file {file}: {e}")),
        },
        None => return fatal("--signal needs a pid: --signal CMD=PID (or =PIDFILE)"),
    };
    match std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(&pid)
        .status()
    {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(_) => fatal(&format!("could not signal process {pid}")),
        Err(e) => fatal(&format!("could not run kill: {e}")),
    }
}
