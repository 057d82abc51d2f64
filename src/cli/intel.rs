//! `tripline intel`: load intel and show what was understood; `intel lookup VALUE`
//! explains one value (which indicators match it and from which sources, or why none
//! does).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{build_index, IntelArgs};
use crate::intel::{canon, Kind};
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
    let detected = canon::detect(&refanged).ok();
    // A UTF-8 host name (`bücher.example`, or in a URL or e-mail address) that the
    // log-side tokenizer does not find as it stands is looked up in its punycode form,
    // the form the intel holds it in.
    let probe = match &detected {
        Some(c)
            if !refanged.is_ascii()
                && matches!(
                    c.kind,
                    Kind::Domain | Kind::Hostname | Kind::Url | Kind::Email
                ) =>
        {
            c.value.as_str()
        }
        _ => refanged.as_ref(),
    };
    let mut matcher = Matcher::new(&index);
    let mut hits = Vec::new();
    matcher.find_with_json(refanged.as_bytes(), &mut hits);
    if hits.is_empty() && probe != refanged.as_ref() {
        matcher.find_with_json(probe.as_bytes(), &mut hits);
    }
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
