//! The `tripline` binary: parse arguments, set up logging, run, map errors to exit
//! codes (0 matched, 1 nothing matched, 2 error).
//!
//! Logging goes to stderr. The default level is `info` for `tripline run` (a sidecar
//! says when it is ready and when it stopped, and nothing per event) and `warn` for
//! the other commands (quiet, like grep); `-v` raises it, `RUST_LOG` overrides it.
//! Colours only when stderr is a terminal and `NO_COLOR` is unset, so journald and
//! log files get plain text.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = tripline::cli::Cli::parse();
    let base = match cli.command {
        tripline::cli::Command::Run(_) => 1,
        _ => 0,
    };
    let level = match base + cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    match tripline::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tripline: {e:#}");
            ExitCode::from(2)
        }
    }
}
