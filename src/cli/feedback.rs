//! `tripline feedback false-positive VALUE`: report a false positive to the
//! communities that shared the indicator.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::sightings::{load_config, open_outbox};
use super::IntelArgs;
use crate::intel::{canon, IntelError};
use crate::share::DropReason;

#[derive(Args, Debug)]
pub struct FeedbackArgs {
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub action: FeedbackAction,
}

#[derive(Subcommand, Debug)]
pub enum FeedbackAction {
    /// Queue a false-positive sighting (MISP type 1) to every community holding VALUE.
    FalsePositive {
        value: String,
        /// Why (kept locally with the sighting; never sent).
        #[arg(long)]
        reason: Option<String>,
    },
}

pub(super) fn feedback(args: FeedbackArgs) -> Result<ExitCode> {
    let config = load_config(args.config.as_deref())?;
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("(embedded default)"));
    let plan = config.plan(&path)?;
    let FeedbackAction::FalsePositive { value, reason } = args.action;
    let intel = IntelArgs {
        intel: plan.intel,
        warninglists: config.intel.warninglists.clone(),
        no_default_warninglists: config.intel.no_default_warninglists,
        warninglist_mode: config.intel.warninglist_mode.into(),
        include_non_ids: true,
        strict: false,
        csv_column: None,
        no_query_hosts: !config.matching.query_hosts,
        ip_port: config.matching.ip_port,
        allow_broad: config.intel.allow_broad,
        min_prefix_v4: u8::try_from(config.intel.min_prefix_v4).unwrap_or(32),
        min_prefix_v6: u8::try_from(config.intel.min_prefix_v6).unwrap_or(128),
    };
    let (index, _, _) = crate::cli::build_index(&intel, true)?;
    let refanged = canon::refang(&value);
    let c = canon::detect(&refanged).map_err(|reason| IntelError::Format {
        path: PathBuf::from("-"),
        message: format!("\"{value}\": {reason}"),
    })?;
    let Some(id) = index.find_exact(c.kind, &c.value) else {
        println!("{}: not in the intel; nothing to report", c.value);
        return Ok(ExitCode::from(1));
    };
    let provenances: Vec<_> = index
        .metas_of(id)
        .iter()
        .map(|&m| crate::correlate::observe::provenance(&index, m))
        .collect();
    let outbox = open_outbox(&config)?;
    let outcome = outbox.queue_false_positive(&c.value, c.kind, reason.as_deref(), &provenances)?;
    println!(
        "false positive {} queued: {} sighting(s) created, {} not allowed by policy",
        c.value,
        outcome.created,
        outcome.dropped.len()
    );
    let mut lines: Vec<String> = Vec::new();
    for (dest, why) in &outcome.dropped {
        let line = match (dest, why) {
            (_, DropReason::NoDestination) => continue,
            (Some(d), why) => format!("  not sent to \"{d}\": {why}"),
            (None, why) => format!("  not sent: {why}"),
        };
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    let mut unserved: Vec<&str> = provenances
        .iter()
        .map(|p| p.source.as_str())
        .filter(|s| !config.share.destinations.iter().any(|d| d.serves(s)))
        .collect();
    unserved.sort_unstable();
    unserved.dedup();
    for s in unserved {
        lines.push(format!(
            "  not sent: no destination is configured for source \"{s}\""
        ));
    }
    for l in lines {
        println!("{l}");
    }
    Ok(ExitCode::SUCCESS)
}
