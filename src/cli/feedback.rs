//! `tripline feedback`: report false positives to the communities that shared the
//! indicator, and keep them on the local suppression list
//! ([`crate::share::suppress`]).
//!
//! - `false-positive VALUE` takes the value as an alert shows it (`matched.atomic`:
//!   a subdomain of a listed domain, a URL on a listed host, an address inside a
//!   listed range) in any written form (defanged, upper case, a trailing dot, UTF-8
//!   or punycode): it is looked up exactly as the matcher looks up a log line
//!   ([`resolve`]), so the indicators reported are the ones that matched it. With
//!   `--alert ID` the indicators are those of the alert whose `tripline.alert_id` is
//!   ID (searched in the configured alert files and their rotated copies, or in
//!   `--alerts FILE`). Each indicator gets a false-positive sighting (MISP type 1) to
//!   every community that supplied it and policy allows, and a suppression.
//! - `list [--json]` shows the suppressions; `remove VALUE|ID` ends one (positive
//!   sightings resume; a false-positive sighting already queued or sent stays).
//!
//! Cost: `false-positive` and `remove VALUE` load the intel the configuration names
//! (as `sightings send` does); `list` and `remove ID` read the list only.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::sightings::{load_config, open_outbox};
use super::IntelArgs;
use crate::config::Config;
use crate::index::Index;
use crate::intel::{canon, IndicatorId, Kind};
use crate::matcher::Matcher;
use crate::share::{DropReason, SuppressionList};

#[derive(Args, Debug)]
pub struct FeedbackArgs {
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub action: FeedbackAction,
}

#[derive(Subcommand, Debug)]
pub enum FeedbackAction {
    /// Report VALUE (as an alert shows it: any subdomain, URL or address that matched
    /// an indicator, in any written form) or the indicators of alert --alert ID as a
    /// false positive: a false-positive sighting (MISP type 1) to every community
    /// holding them, and a local suppression (their alerts are marked or dropped,
    /// their positive sightings stop).
    FalsePositive {
        #[arg(required_unless_present = "alert")]
        value: Option<String>,
        /// The alert's `tripline.alert_id`.
        #[arg(long, value_name = "ID", conflicts_with = "value")]
        alert: Option<String>,
        /// Alert files to search for --alert (default: the configured alert files and
        /// their rotated copies).
        #[arg(long, value_name = "FILE", requires = "alert")]
        alerts: Vec<PathBuf>,
        /// Why (kept locally with the sighting and the suppression; never sent).
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the suppressions (reported false positives).
    List {
        #[arg(long)]
        json: bool,
    },
    /// End a suppression, by its id (from `feedback list`) or by a value it covers:
    /// positive sightings resume. The false-positive sighting already queued or sent
    /// stays (a sighting cannot be taken back).
    Remove {
        #[arg(value_name = "VALUE|ID")]
        target: String,
    },
}

pub(super) fn feedback(args: FeedbackArgs) -> Result<ExitCode> {
    let config = load_config(args.config.as_deref())?;
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("(embedded default)"));
    match args.action {
        FeedbackAction::FalsePositive {
            value,
            alert,
            alerts,
            reason,
        } => false_positive(&config, &path, value, alert, &alerts, reason.as_deref()),
        FeedbackAction::List { json } => list(&config, json),
        FeedbackAction::Remove { target } => remove(&config, &path, &target),
    }
}

/// The index the configuration's intel builds (non-`to_ids` attributes included: a
/// false positive may be reported for any indicator an alert showed).
fn index_of(config: &Config, path: &Path) -> Result<Index> {
    let plan = config.plan(path)?;
    let mut specs = plan.intel.clone();
    specs.extend(crate::intel::sync::spec::cache_specs(
        &config.state.dir,
        &plan.intel_sources,
    ));
    let intel = IntelArgs {
        intel: specs,
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
        expiry: Some(config.intel.expiry_policy()),
    };
    // Without the indicators a warninglist excludes: they match nothing, as in the
    // sidecar.
    let (index, _, _) = crate::cli::build_index(&intel, false)?;
    Ok(index)
}

/// The indicators `value` stands for, as the matcher finds them in a log line holding
/// it: the indicator written exactly so first (a CIDR, a URL), then every indicator
/// the value matches (the domain of a subdomain, the range of an address, the host of
/// a URL). Defanged text is refanged; a UTF-8 host name is also tried in its punycode
/// form (the form the intel holds).
pub(crate) fn resolve(index: &Index, value: &str) -> Vec<IndicatorId> {
    let refanged = canon::refang(value);
    let trimmed = refanged.trim().trim_end_matches('.');
    let detected = canon::detect(trimmed).ok();
    let mut ids: Vec<IndicatorId> = Vec::new();
    if let Some(c) = &detected {
        if let Some(id) = index.find_exact(c.kind, &c.value) {
            ids.push(id);
        }
    }
    let mut matcher = Matcher::new(index);
    let mut hits = Vec::new();
    matcher.find_with_json(trimmed.as_bytes(), &mut hits);
    if hits.is_empty() {
        if let Some(c) = detected.as_ref().filter(|c| {
            c.value != trimmed
                && matches!(
                    c.kind,
                    Kind::Domain | Kind::Hostname | Kind::Url | Kind::Email
                )
        }) {
            matcher.find_with_json(c.value.as_bytes(), &mut hits);
        }
    }
    for h in hits {
        if !ids.contains(&h.id) {
            ids.push(h.id);
        }
    }
    ids
}

/// `(indicator, what the alert showed)` of alert `id`, from the first alert file that
/// holds it.
fn alert_indicators(
    config: &Config,
    files: &[PathBuf],
    id: &str,
) -> Result<Vec<(String, Kind, String)>> {
    let mut candidates: Vec<PathBuf> = files.to_vec();
    if candidates.is_empty() {
        for p in config.alerts.paths() {
            if p == "-" {
                continue;
            }
            candidates.push(PathBuf::from(&p));
            for n in 1..=config.alerts.keep_files {
                candidates.push(PathBuf::from(format!("{p}.{n}")));
            }
        }
    }
    if candidates.is_empty() {
        bail!("--alert {id}: alerts go to stdout only; name the file that holds them with --alerts FILE");
    }
    let needle = format!("\"alert_id\":\"{id}\"");
    for file in &candidates {
        let f = match std::fs::File::open(file) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        for line in std::io::BufReader::new(f).lines() {
            let line = line.with_context(|| format!("reading {}", file.display()))?;
            if !line.contains(&needle) {
                continue;
            }
            let Ok(doc) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if doc["tripline"]["alert_id"] != id {
                continue;
            }
            let ours = doc["tripline"]["enrichments"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let ecs = doc["threat"]["enrichments"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut out = Vec::new();
            for (i, e) in ours.iter().enumerate() {
                let (Some(ind), Some(kind)) = (e["indicator"].as_str(), e["kind"].as_str()) else {
                    continue;
                };
                let Some(kind) = Kind::ALL.into_iter().find(|k| k.name() == kind) else {
                    continue;
                };
                let shown = ecs
                    .get(i)
                    .and_then(|x| x["matched"]["atomic"].as_str())
                    .unwrap_or(ind);
                out.push((ind.to_string(), kind, shown.to_string()));
            }
            return Ok(out);
        }
    }
    let names: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    bail!("no alert with id {id} in {}", names.join(", "))
}

fn false_positive(
    config: &Config,
    path: &Path,
    value: Option<String>,
    alert: Option<String>,
    alert_files: &[PathBuf],
    reason: Option<&str>,
) -> Result<ExitCode> {
    let index = index_of(config, path)?;
    // (indicator id, the value reported for it)
    let mut targets: Vec<(IndicatorId, String)> = Vec::new();
    let mut shown_as = String::new();
    if let Some(id) = &alert {
        shown_as = format!("alert {id}");
        for (ind, kind, shown) in alert_indicators(config, alert_files, id)? {
            match index.find_exact(kind, &ind) {
                Some(i) if !targets.iter().any(|(t, _)| *t == i) => targets.push((i, shown)),
                Some(_) => {}
                None => println!("{ind}: no longer in the intel; nothing to report for it"),
            }
        }
    }
    if let Some(v) = &value {
        shown_as = v.clone();
        if canon::detect(&canon::refang(v)).is_err() && resolve(&index, v).is_empty() {
            println!("{v}: not a value tripline can match; nothing to report");
            return Ok(ExitCode::from(1));
        }
        // Kept as it matched (refanged, without a trailing dot): `remove` takes it.
        let shown = canon::refang(v).trim().trim_end_matches('.').to_string();
        for i in resolve(&index, v) {
            targets.push((i, shown.clone()));
        }
    }
    if targets.is_empty() {
        println!("{shown_as}: matches nothing in the intel; nothing to report");
        return Ok(ExitCode::from(1));
    }
    let outbox = open_outbox(config)?;
    let list = SuppressionList::open(&config.state.dir)?;
    let mut unserved: BTreeSet<String> = BTreeSet::new();
    let mut out = std::io::stdout().lock();
    for (id, reported) in &targets {
        let (indicator, kind) = (index.value(*id), id.kind());
        let provenances: Vec<_> = index
            .metas_of(*id)
            .iter()
            .map(|&m| crate::correlate::observe::provenance(&index, m))
            .collect();
        let outcome = outbox.queue_false_positive(indicator, kind, reason, &provenances)?;
        let rows = outbox.list(None)?;
        let mut communities: Vec<String> = rows
            .iter()
            .filter(|r| outcome.ids.contains(&r.id))
            .map(|r| r.sighting.destination.clone())
            .collect();
        communities.sort_unstable();
        communities.dedup();
        let s = list.add(indicator, kind, reported, reason, &communities)?;
        let matched = if reported.eq_ignore_ascii_case(indicator) {
            String::new()
        } else {
            format!(", which {reported} matched")
        };
        let merged = if outcome.merged > 0 {
            format!(
                ", {} added to a false positive already queued",
                outcome.merged
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "false positive {indicator} ({kind}{matched}) queued: {} sighting(s) created{merged}, {} not allowed by policy",
            outcome.created,
            outcome.dropped.len(),
            kind = kind.name(),
        )?;
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
        for l in lines {
            writeln!(out, "{l}")?;
        }
        for p in &provenances {
            if !config
                .share
                .destinations
                .iter()
                .any(|d| d.serves(&p.source))
            {
                unserved.insert(p.source.clone());
            }
        }
        let alerts = match config.feedback.suppressed_alerts {
            crate::share::SuppressedAlerts::Mark => "marked suppressed",
            crate::share::SuppressedAlerts::Drop => "dropped",
        };
        writeln!(
            out,
            "  suppressed (id {}): its alerts are {alerts} and no positive sighting of it is queued; undo with: tripline feedback remove {}",
            s.id, s.id
        )?;
    }
    for s in unserved {
        writeln!(
            out,
            "  not sent: no destination is configured for source \"{s}\""
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn list(config: &Config, json: bool) -> Result<ExitCode> {
    let list = SuppressionList::open(&config.state.dir)?;
    let all = list.list()?;
    let mut out = std::io::stdout().lock();
    if json {
        for s in &all {
            serde_json::to_writer(&mut out, s)?;
            writeln!(out)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{} suppression(s)", all.len())?;
    for s in &all {
        let communities = if s.communities.is_empty() {
            "no community notified".to_string()
        } else {
            format!("notified: {}", s.communities.join(", "))
        };
        writeln!(
            out,
            "{:>5}  {}  {} ({}), reported as {}; {}; {}",
            s.id,
            s.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            s.indicator,
            s.kind.name(),
            s.reported,
            s.reason.as_deref().unwrap_or("no reason given"),
            communities
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(config: &Config, path: &Path, target: &str) -> Result<ExitCode> {
    let list = SuppressionList::open(&config.state.dir)?;
    let ids: Vec<i64> = match target.trim().parse::<i64>() {
        Ok(id) => vec![id],
        Err(_) => {
            let all = list.list()?;
            let plain = canon::refang(target)
                .trim()
                .trim_end_matches('.')
                .to_lowercase();
            let mut ids: Vec<i64> = all
                .iter()
                .filter(|s| s.reported.to_lowercase() == plain || s.indicator == plain)
                .map(|s| s.id)
                .collect();
            if ids.is_empty() && !all.is_empty() {
                let index = index_of(config, path)?;
                for id in resolve(&index, target) {
                    if let Some(s) = all
                        .iter()
                        .find(|s| s.indicator == index.value(id) && s.kind == id.kind())
                    {
                        ids.push(s.id);
                    }
                }
            }
            ids
        }
    };
    let mut removed = 0;
    for id in ids {
        if let Some(s) = list.remove(id)? {
            removed += 1;
            println!(
                "suppression {} of {} ({}) removed: its alerts are no longer marked and positive sightings of it resume",
                s.id,
                s.indicator,
                s.kind.name()
            );
            if !s.communities.is_empty() {
                println!(
                    "  the false-positive sighting queued for {} stays queued or sent (a sighting cannot be taken back)",
                    s.communities.join(", ")
                );
            }
        }
    }
    if removed == 0 {
        println!("{target}: no suppression matches; nothing removed");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
