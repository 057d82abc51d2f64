//! The `tripline` binary: parse arguments, set up logging, run, map errors to exit
//! codes (0 matched, 1 nothing matched, 2 error).

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = tripline::cli::Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match tripline::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tripline: {e:#}");
            ExitCode::from(2)
        }
    }
}
