//! CLI glue for correlation and sharing: `tripline rules check`, `hunt --rules
//! --sightings-out`, `tripline sightings …` and `tripline feedback false-positive`.
//!
//! Everything printed here is a sentence for people (or JSON for `--json`), never a
//! `Debug` rendering or an enum variant's name.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::cli::{HuntArgs, IntelArgs};
use crate::config::Config;
use crate::correlate::engine::{Engine, EngineOptions};
use crate::correlate::load;
use crate::correlate::rule::Rule;
use crate::hunt::HuntStats;
use crate::index::Index;
use crate::intel::{canon, IntelError};
use crate::share::{
    DeliveryReport, DropReason, ExportFormat, Outbox, Secret, Selection, ShareConfig, State,
    TransportConfig,
};

pub fn rules_check(dir: &Path) -> Result<ExitCode> {
    match load::check_rules(dir) {
        Ok(summaries) => {
            for s in &summaries {
                println!("{s}");
            }
            println!("{} rule(s) OK in {}", summaries.len(), dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{} error(s) in {}", errors.len(), dir.display());
            Ok(ExitCode::from(2))
        }
    }
}

/// The rules a hunt confirms with, if any.
pub fn hunt_rules(args: &HuntArgs) -> Result<Option<Vec<Rule>>> {
    if let Some(dir) = &args.rules {
        return match load::load_rules(dir) {
            Ok(r) => Ok(Some(r)),
            Err(errors) => {
                let msg: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                bail!("rules in {}: {}", dir.display(), msg.join("; "))
            }
        };
    }
    if args.default_rules {
        return Ok(Some(load::default_rules()));
    }
    if args.sightings_out.is_some() {
        bail!("--sightings-out needs --rules DIR or --default-rules: only confirmed matches are shared");
    }
    Ok(None)
}

/// The sharing policy for previews: the config's `[share]`, or one destination per
/// intel source with the default policy (what each community would receive).
fn preview_policy(config: Option<&Path>, index: &Index) -> Result<ShareConfig> {
    if let Some(p) = config {
        let c = Config::load(p)?;
        if !c.share.destinations.is_empty() {
            return Ok(c.share);
        }
    }
    let mut names: Vec<&str> = index.sources.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut toml = String::new();
    for n in names {
        toml.push_str(&format!(
            "[[destinations]]\nname = {n:?}\napproval = \"auto\"\n[destinations.transport]\ntype = \"stix_dir\"\npath = \"/nonexistent/preview\"\n"
        ));
    }
    let share: ShareConfig = toml::from_str(&toml).context("building the preview policy")?;
    Ok(share)
}

/// Runs the rules over a hunt's observations, writes confirmation alerts, and the
/// sightings preview when asked.
pub fn confirm_hunt(
    args: &HuntArgs,
    index: &Index,
    rules: Vec<Rule>,
    stats: &mut HuntStats,
    out: &mut dyn Write,
) -> Result<String> {
    let mut summary = String::new();
    let mut engine = Engine::with_options(rules, EngineOptions::default());
    let observations = std::mem::take(&mut stats.observations);
    let confirmations = engine.observe_batch(observations);
    for c in &confirmations {
        let doc = crate::sink::alert::confirmation_alert(c);
        serde_json::to_writer(&mut *out, &doc)?;
        out.write_all(b"\n")?;
    }
    summary.push_str(&format!("  confirmations: {}\n", confirmations.len()));
    let titles: std::collections::HashMap<&str, &str> = engine
        .rules()
        .iter()
        .map(|r| (r.id.as_str(), r.title.as_str()))
        .collect();
    for (rule, n) in &engine.stats().confirmations {
        summary.push_str(&format!(
            "    {n:>6}  {}\n",
            titles.get(rule.as_str()).copied().unwrap_or(rule)
        ));
    }
    if let Some(path) = &args.sightings_out {
        let format: ExportFormat = args
            .sightings_format
            .parse()
            .map_err(|e| anyhow::anyhow!("--sightings-format: {e}"))?;
        let policy = preview_policy(args.config.as_deref(), index)?;
        let text = crate::share::preview(&policy, &confirmations, format)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        summary.push_str(&format!(
            "  sightings that would be shared: written to {} (nothing sent)\n",
            path.display()
        ));
    }
    Ok(summary)
}

#[derive(Args, Debug)]
pub struct SightingsArgs {
    /// The `tripline run` configuration (state dir and `[share]`); default: the embedded one.
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub action: SightingsAction,
}

#[derive(Subcommand, Debug)]
pub enum SightingsAction {
    /// List sightings in the outbox.
    List {
        /// Only this state: pending_approval, queued, sending, sent, failed, rejected.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Approve one sighting (or --all pending ones) for delivery.
    Approve {
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Reject a sighting: it never leaves.
    Reject { id: i64 },
    /// Deliver every approved sighting now.
    Send,
    /// Print what is in the outbox in a destination's format (nothing is sent).
    Export {
        #[arg(long, default_value = "misp")]
        format: String,
        /// Only this destination.
        #[arg(long)]
        destination: Option<String>,
    },
}

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

fn load_config(path: Option<&Path>) -> Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::embedded_default(),
    })
}

fn open_outbox(config: &Config) -> Result<Outbox> {
    std::fs::create_dir_all(&config.state.dir)
        .with_context(|| format!("creating {}", config.state.dir.display()))?;
    Ok(Outbox::open(&config.state.dir, &config.share)?)
}

pub fn sightings(args: SightingsArgs) -> Result<ExitCode> {
    let config = load_config(args.config.as_deref())?;
    let outbox = open_outbox(&config)?;
    match args.action {
        SightingsAction::List { state, json } => {
            let state = match state {
                Some(s) => Some(State::parse(&s).ok_or_else(|| {
                    let known: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
                    anyhow::anyhow!(
                        "unknown state \"{s}\": expected one of {}",
                        known.join(", ")
                    )
                })?),
                None => None,
            };
            let rows = outbox.list(state)?;
            for r in &rows {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": r.id, "state": r.state.as_str(), "destination": r.sighting.destination,
                            "indicator": r.sighting.indicator, "type": r.sighting.kind.name(),
                            "sighting_type": r.sighting.sighting_type.name(), "count": r.sighting.count,
                            "first_seen": r.sighting.first_seen.to_rfc3339(), "last_seen": r.sighting.last_seen.to_rfc3339(),
                            "attempts": r.attempts, "last_error": r.last_error,
                        })
                    );
                } else {
                    println!(
                        "{:>6}  {:<16} {:<12} {:<40} x{:<5} {}..{}{}",
                        r.id,
                        r.state.as_str(),
                        r.sighting.destination,
                        r.sighting.indicator,
                        r.sighting.count,
                        r.sighting.first_seen.format("%Y-%m-%dT%H:%M:%SZ"),
                        r.sighting.last_seen.format("%Y-%m-%dT%H:%M:%SZ"),
                        r.last_error
                            .as_ref()
                            .map(|e| format!("  ({e})"))
                            .unwrap_or_default()
                    );
                }
            }
            if !json {
                println!("{} sighting(s)", rows.len());
            }
        }
        SightingsAction::Approve { id, all } => {
            let n = match (id, all) {
                (_, true) => outbox.approve(Selection::All)?,
                (Some(id), false) => outbox.approve(Selection::Id(id))?,
                (None, false) => bail!("give an ID or --all"),
            };
            println!("{n} sighting(s) approved");
        }
        SightingsAction::Reject { id } => {
            outbox.reject(id)?;
            println!("sighting {id} rejected");
        }
        SightingsAction::Send => {
            for problem in missing_secrets(&config.share) {
                eprintln!("tripline: {problem}");
            }
            let r = outbox.send_now()?;
            println!("{}", delivery_sentence(&r));
            if r.failed > 0 || r.retrying > 0 {
                return Ok(ExitCode::from(2));
            }
        }
        SightingsAction::Export {
            format,
            destination,
        } => {
            let format: ExportFormat = format
                .parse()
                .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
            println!("{}", outbox.export(format, destination.as_deref())?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn feedback(args: FeedbackArgs) -> Result<ExitCode> {
    let config = load_config(args.config.as_deref())?;
    let FeedbackAction::FalsePositive { value, reason } = args.action;
    let intel = IntelArgs {
        intel: config
            .intel
            .paths
            .iter()
            .map(|p| p.parse().map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?,
        warninglists: config.intel.warninglists.clone(),
        no_default_warninglists: config.intel.no_default_warninglists,
        warninglist_mode: config.intel.warninglist_mode.into(),
        include_non_ids: true,
        strict: false,
        csv_column: None,
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

/// `tripline sightings send`'s one-line account of a delivery pass.
fn delivery_sentence(r: &DeliveryReport) -> String {
    let mut parts = vec![format!("{} sighting(s) delivered", r.delivered)];
    for (n, what) in [
        (r.already_delivered, "already at the destination"),
        (r.retrying, "failed for now and will be retried"),
        (r.failed, "refused by the destination (now failed)"),
        (
            r.deferred,
            "left for later (destination unreachable or not configured)",
        ),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    parts.join(", ")
}

/// One sentence per destination whose key or password cannot be found (which
/// environment variable or file); the secret itself is never shown.
fn missing_secrets(share: &ShareConfig) -> Vec<String> {
    let mut out = Vec::new();
    for d in &share.destinations {
        let found = match &d.transport {
            TransportConfig::Misp {
                api_key_env: Some(var),
                ..
            } => Secret::from_env(var).map(|_| ()),
            TransportConfig::Misp {
                api_key_file: Some(p),
                ..
            } => Secret::from_file(p).map(|_| ()),
            TransportConfig::Taxii {
                username: Some(_),
                password_env: Some(var),
                ..
            } => Secret::from_env(var).map(|_| ()),
            TransportConfig::Taxii {
                username: Some(_),
                password_file: Some(p),
                ..
            } => Secret::from_file(p).map(|_| ()),
            _ => Ok(()),
        };
        if let Err(why) = found {
            out.push(format!(
                "destination \"{}\" cannot be reached: {why}; its sightings stay queued",
                d.name
            ));
        }
    }
    out
}
