//! `natsd bench`: a load generator in the spirit of `nats bench`.

/// Runs the bench subcommand with its arguments; returns the process exit code.
pub fn main(args: Vec<String>) -> std::process::ExitCode {
    let _ = args;
    std::process::ExitCode::from(2)
}
