//! `tripline run`: the sidecar, from a TOML configuration (or the embedded default);
//! `--check` checks the configuration and the machine and prints what would run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// TOML configuration (default: the embedded one, which runs on the fixtures).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print what would run, and exit.
    #[arg(long)]
    pub check: bool,
    /// Override `metrics.address`.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Read lines from stdin as the only source; stop at end of input.
    #[arg(long)]
    pub stdin: bool,
}

pub(super) fn run_sidecar(args: RunArgs) -> Result<ExitCode> {
    if args.check {
        return Ok(crate::config::check::check_file(args.config.as_deref()).print());
    }
    let (config, path) = match &args.config {
        Some(p) => (crate::config::Config::read(p)?, p.clone()),
        None => (
            crate::config::Config::embedded_default(),
            std::path::PathBuf::from("(embedded default)"),
        ),
    };
    let plan = config.plan(&path)?;
    crate::run::run(crate::run::RunOptions {
        plan,
        stdin: args.stdin,
        metrics_addr: args.metrics_addr,
    })
}
