//! `tripline sightings …`: review, approve, reject, send, export and preview the
//! sightings waiting in the outbox; helpers shared with `feedback`.
//!
//! `list` shows, per row: id, state, sighting type (sighting / false-positive /
//! expiration), destination, indicator, count, first..last time, the intel events it
//! is about, and the TLP of that intel; `--json` prints one object per line with the
//! same fields (`type` is the sighting type, `kind` the indicator's kind).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::share::{
    DeliveryReport, ExportFormat, Outbox, Secret, Selection, ShareConfig, State, TransportConfig,
};

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
    /// List sightings in the outbox: state, type, destination, indicator, count,
    /// times, event and TLP.
    List {
        /// Only this state: pending_approval, queued, sending, sent, failed, rejected,
        /// withheld.
        #[arg(long)]
        state: Option<String>,
        /// One JSON object per line, with the same fields.
        #[arg(long)]
        json: bool,
    },
    /// Write what the outbox would send to each destination into DIR (one
    /// subdirectory per destination with its exact bodies, and summary.txt /
    /// summary.json: what is withheld and why, how the local data relates to each
    /// community's intel). Nothing is sent.
    Preview {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
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
    /// The delivery audit log: every request that carried sightings (time,
    /// destination, rows, exact body, answer, who approved), oldest first.
    Audit {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn load_config(path: Option<&Path>) -> Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::embedded_default(),
    })
}

pub(super) fn open_outbox(config: &Config) -> Result<Outbox> {
    std::fs::create_dir_all(&config.state.dir)
        .with_context(|| format!("creating {}", config.state.dir.display()))?;
    Ok(Outbox::open(&config.state.dir, &config.share)?)
}

pub(super) fn sightings(args: SightingsArgs) -> Result<ExitCode> {
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
            let mut rows = outbox.list(state)?;
            for r in &mut rows {
                // Rows written before URLs with credentials were refused may quote one.
                r.last_error = r.last_error.as_deref().map(crate::net::http::redact_text);
            }
            if !json {
                println!(
                    "{:>6}  {:<16} {:<14} {:<12} {:<40} {:<6} {:<41} {:<36} TLP",
                    "ID",
                    "STATE",
                    "TYPE",
                    "DESTINATION",
                    "INDICATOR",
                    "COUNT",
                    "FIRST..LAST",
                    "EVENT",
                );
            }
            for r in &rows {
                let dest = config
                    .share
                    .destinations
                    .iter()
                    .find(|d| d.name == r.sighting.destination);
                let tlp = dest
                    .and_then(|d| crate::share::preview::entry_tlp(r, d, &config.share))
                    .map(|t| t.as_str().to_ascii_lowercase());
                let events = crate::share::preview::entry_events(r);
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": r.id, "state": r.state.as_str(),
                            "type": r.sighting.sighting_type.name(),
                            "sighting_type": r.sighting.sighting_type.name(),
                            "destination": r.sighting.destination,
                            "indicator": r.sighting.indicator, "kind": r.sighting.kind.name(),
                            "count": r.sighting.count,
                            "first_seen": r.sighting.first_seen.to_rfc3339(), "last_seen": r.sighting.last_seen.to_rfc3339(),
                            "events": events,
                            "attribute": match &r.sighting.target {
                                crate::share::Target::Attribute(a) => Some(a.as_str()),
                                crate::share::Target::Value { .. } => None,
                            },
                            "tlp": tlp,
                            "attempts": r.attempts, "last_error": r.last_error,
                        })
                    );
                } else {
                    println!(
                        "{:>6}  {:<16} {:<14} {:<12} {:<40} {:<6} {:<41} {:<36} {}{}",
                        r.id,
                        r.state.as_str(),
                        r.sighting.sighting_type.name(),
                        r.sighting.destination,
                        r.sighting.indicator,
                        r.sighting.count,
                        format!(
                            "{}..{}",
                            r.sighting.first_seen.format("%Y-%m-%dT%H:%M:%SZ"),
                            r.sighting.last_seen.format("%Y-%m-%dT%H:%M:%SZ")
                        ),
                        if events.is_empty() {
                            "-".to_string()
                        } else {
                            events.join(",")
                        },
                        tlp.as_deref().unwrap_or("-"),
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
        SightingsAction::Preview { dir } => {
            let shown = args
                .config
                .as_deref()
                .unwrap_or(Path::new("(embedded configuration)"));
            // The intel as it stands now, so the preview asks the policy as `send`
            // would; without it the rows' stored provenances are used.
            let intel: Option<std::sync::Arc<dyn crate::share::IntelView>> = match config
                .plan(shown)
                .map_err(anyhow::Error::from)
                .and_then(|plan| crate::run::intel::build(&crate::run::intel::intel_plan(&plan)))
            {
                Ok(built) if built.problems.is_empty() => Some(std::sync::Arc::new(built.index)),
                Ok(built) => {
                    for p in &built.problems {
                        eprintln!("tripline: warning: {p}");
                    }
                    eprintln!("tripline: warning: the intel did not load cleanly; previewing against the rows as queued");
                    None
                }
                Err(e) => {
                    eprintln!("tripline: warning: cannot load the intel ({e:#}); previewing against the rows as queued");
                    None
                }
            };
            let preview = crate::share::preview::from_outbox(
                &outbox,
                intel,
                &format!("[share] of {}", shown.display()),
            )?;
            preview
                .write(&dir)
                .with_context(|| format!("writing the sharing preview to {}", dir.display()))?;
            println!(
                "{} body(ies) for {} destination(s), {} withheld: written to {} (nothing sent)",
                preview.body_count(),
                preview.destinations.len(),
                preview.withheld_count(),
                dir.display()
            );
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
            // The policy is asked again before each row leaves, against the intel
            // as it stands now.
            let shown = args
                .config
                .as_deref()
                .unwrap_or(Path::new("(embedded configuration)"));
            let plan = config.plan(shown)?;
            let built = crate::run::intel::build(&crate::run::intel::intel_plan(&plan))
                .context("loading the intel to check the sharing policy; nothing sent")?;
            if !built.problems.is_empty() {
                for p in &built.problems {
                    eprintln!("tripline: {p}");
                }
                bail!(
                    "the intel did not load cleanly, so the sharing policy cannot be checked \
                     against it; nothing sent"
                );
            }
            outbox.set_intel(std::sync::Arc::new(built.index));
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
        SightingsAction::Audit { json } => {
            let entries = outbox.audit()?;
            for a in &entries {
                if json {
                    println!("{}", a.to_json());
                } else {
                    println!(
                        "{:>6}  {}  {:<12} rows {:?}  {}  -> {}  {}  approved by {}\n        {}",
                        a.id,
                        a.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                        a.destination,
                        a.sighting_ids,
                        a.url,
                        a.status.map_or_else(|| "-".to_string(), |s| s.to_string()),
                        a.answer,
                        a.approved_by.as_deref().unwrap_or("-"),
                        a.body
                    );
                }
            }
            if !json {
                println!("{} request(s)", entries.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `tripline sightings send`'s one-line account of a delivery pass.
pub(super) fn delivery_sentence(r: &DeliveryReport) -> String {
    let mut parts = vec![format!("{} sighting(s) delivered", r.delivered)];
    for (n, what) in [
        (r.already_delivered, "already at the destination"),
        (r.retrying, "failed for now and will be retried"),
        (r.failed, "refused by the destination (now failed)"),
        (
            r.deferred,
            "left for later (destination unreachable or not configured)",
        ),
        (
            r.withheld,
            "withheld by the sharing policy (see sightings list)",
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
pub(super) fn missing_secrets(share: &ShareConfig) -> Vec<String> {
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
