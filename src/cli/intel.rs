//! `tripline intel`: load intel and show what was understood; `intel lookup VALUE`
//! explains one value (which indicators match it and from which sources, or why none
//! does).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{build_index, IntelArgs};
use crate::intel::canon;
use crate::matcher::Matcher;

#[derive(Args, Debug)]
pub struct IntelCmd {
    #[command(flatten)]
    pub intel: IntelArgs,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<IntelAction>,
}

#[derive(Subcommand, Debug)]
pub enum IntelAction {
    /// Explain a value: which indicators match it and from which sources, or why none does.
    Lookup {
        /// The value as it would appear in a log (host, address, URL, hash, e-mail...).
        value: String,
    },
}

pub(super) fn run_intel(args: &IntelArgs, json: bool) -> Result<ExitCode> {
    let t0 = std::time::Instant::now();
    let (index, warninglists, problems) = build_index(args, false)?;
    let report = crate::sink::report::intel_report(
        &index,
        &warninglists,
        &problems,
        t0.elapsed().as_secs_f64(),
    );
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report.json)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", report.text)?;
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

pub(super) fn run_lookup(args: &IntelArgs, value: &str, json: bool) -> Result<ExitCode> {
    let (index, warninglists, _) = build_index(args, true)?;
    let refanged = canon::refang(value);
    let mut matcher = Matcher::new(&index);
    let mut hits = Vec::new();
    matcher.find_with_json(refanged.as_bytes(), &mut hits);
    let detected = canon::detect(&refanged).ok();
    let report =
        crate::sink::report::lookup_report(&index, &warninglists, value, detected.as_ref(), &hits);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report.json)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", report.text)?;
    }
    Ok(if report.matches {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
