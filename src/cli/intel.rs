//! `tripline intel`: load intel and show what was understood; `intel lookup VALUE`
//! explains one value (which indicators match it and from which sources, or why none
//! does); `intel sync` runs one pass over the configured `[[intel.sources]]` and
//! `intel status` shows each source's state (see [`crate::intel::sync`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{build_index, IntelArgs};
use crate::config::{Config, Plan};
use crate::intel::sync::spec::SourceSpec;
use crate::intel::sync::{runner, SourceKind};
use crate::intel::{canon, Kind};
use crate::matcher::Matcher;

#[derive(Args, Debug)]
pub struct IntelCmd {
    #[command(flatten)]
    pub intel: IntelArgs,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    /// A `tripline run` configuration: its intel (`[intel] paths` and the synced
    /// `[[intel.sources]]`) when no --intel is given; the sources `sync` and `status`
    /// work on.
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub action: Option<IntelAction>,
}

#[derive(Subcommand, Debug)]
pub enum IntelAction {
    /// Explain a value: which indicators match it and from which sources, or why none does.
    Lookup {
        /// The value as it would appear in a log (host, address, URL, hash, e-mail...).
        value: String,
        /// Judge expiry and decay as for a log line of this time (RFC 3339, e.g.
        /// `2024-05-01T10:00:00Z`; default: now). With --config, the configuration's
        /// `[intel.decay]` and `[intel.lifetimes]` apply, as in `hunt` and `run`.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// One sync pass over the configuration's `[[intel.sources]]` (each into its cache
    /// in the state directory), then exit: 0 when every source succeeded, 2 when any
    /// failed (the others are still applied).
    Sync {
        /// Only this source.
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        /// Apply the pass even if it shrinks the source by more than its
        /// `max_shrink_ratio` (what a held pass's status asks for). Needs --source.
        #[arg(long, requires = "source")]
        accept_shrink: bool,
    },
    /// Each intel source's state: indicators, last success, last error, cursor, next
    /// run.
    Status,
}

/// The intel arguments a command runs with: `--intel` as given, or, with `--config`
/// and no `--intel`, the configuration's intel.
pub(super) fn with_config(cmd: &IntelCmd) -> Result<IntelArgs> {
    match (&cmd.config, cmd.intel.intel.is_empty()) {
        (Some(p), true) => {
            let c = Config::load(p)?;
            let plan = c.plan(p)?;
            Ok(super::intel_args_from_config(&c, &plan, &cmd.intel))
        }
        _ => Ok(cmd.intel.clone()),
    }
}

fn load_plan(config: Option<&Path>) -> Result<(Config, Plan)> {
    let Some(p) = config else {
        bail!("give the configuration that names the intel sources: --config FILE");
    };
    let c = Config::load(p)?;
    let plan = c.plan(p)?;
    Ok((c, plan))
}

/// `tripline intel sync`: one pass per source (each on its own thread, so a slow one
/// does not hold the others up); a line per source on stdout, errors on stderr.
pub(super) fn run_sync(
    config: Option<&Path>,
    only: Option<&str>,
    accept_shrink: bool,
) -> Result<ExitCode> {
    let (c, plan) = load_plan(config)?;
    let sources: Vec<&SourceSpec> = plan
        .intel_sources
        .iter()
        .filter(|s| only.is_none_or(|n| n == s.name()))
        .collect();
    if let Some(n) = only.filter(|_| sources.is_empty()) {
        let known: Vec<&str> = plan.intel_sources.iter().map(|s| s.name()).collect();
        bail!(
            "no intel source named \"{n}\" (configured: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    let state = c.state.dir.clone();
    let outcomes: Vec<(String, Option<runner::PassOutcome>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|s| {
                let state = &state;
                let file = s.kind() == SourceKind::File;
                let options = runner::PassOptions { accept_shrink };
                let h = scope.spawn(move || {
                    (!file).then(|| runner::run_pass_with(s, state, chrono::Utc::now(), options))
                });
                (s.name().to_string(), h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(n, h)| (n, h.join().ok().flatten()))
            .collect()
    });
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    for (name, outcome) in outcomes {
        match outcome {
            None => writeln!(out, "{name}: file source, read directly (nothing to sync)")?,
            Some(o) => match &o.result {
                Ok(r) => writeln!(
                    out,
                    "{name}: ok in {:.2} s: {}, {} request(s), {} byte(s), {} upserted, {} deleted, {} indicator(s)",
                    o.duration.as_secs_f64(),
                    if r.changed { "changed" } else { "unchanged" },
                    r.requests,
                    r.bytes_fetched,
                    r.upserted,
                    r.deleted,
                    o.status.indicators.map_or("?".to_string(), |n| n.to_string()),
                )?,
                Err(e) if o.held => {
                    failed += 1;
                    eprintln!("tripline: intel source {name}: {e} (last good data kept; the held data is in {})",
                        crate::intel::sync::spec::source_dir(&state, &name).join("held").display());
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("tripline: intel source {name}: sync failed (last good data kept): {e}");
                }
            },
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// One source's state, as `intel status --json` prints it.
fn status_json(c: &Config, s: &SourceSpec) -> Value {
    let st = runner::Status::load(&c.state.dir, s.name());
    let cursor = runner::load_cursor(&c.state.dir, s.name());
    let indicators = match s.kind() {
        SourceKind::File => runner::count_indicators(s.name(), Path::new(&s.config.url)),
        _ => st.indicators,
    };
    json!({
        "name": s.name(),
        "kind": s.kind().as_str(),
        "url": crate::net::http::redact_url(&s.config.url),
        "destination": s.destination,
        // Every destination its sightings go back to (explicit, paired by URL, or
        // listing it in its own `intel_sources`).
        "destinations": c
            .share
            .destinations
            .iter()
            .filter(|d| d.serves(s.name()))
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        "interval_secs": s.config.interval_secs,
        "indicators": indicators,
        "last_success": st.last_success,
        "last_attempt": st.last_attempt,
        "last_error": st.last_error,
        "consecutive_failures": st.consecutive_failures,
        "cursor": runner::cursor_summary(&cursor),
        "next_run": st.next_run,
        "held": st.held,
        "max_shrink_ratio": s.max_shrink_ratio,
        "last_pass": {
            "duration_secs": st.duration_secs,
            "requests": st.requests,
            "bytes_fetched": st.bytes_fetched,
            "upserted": st.upserted,
            "deleted": st.deleted,
            "changed": st.changed,
        },
    })
}

/// `tripline intel status`: a table, or `{"sources": [...]}` with --json.
pub(super) fn run_status(config: Option<&Path>, json_out: bool) -> Result<ExitCode> {
    let (c, plan) = load_plan(config)?;
    let rows: Vec<Value> = plan
        .intel_sources
        .iter()
        .map(|s| status_json(&c, s))
        .collect();
    let mut out = std::io::stdout().lock();
    if json_out {
        serde_json::to_writer_pretty(&mut out, &json!({ "sources": rows }))?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                text(&r["name"]),
                text(&r["kind"]),
                text(&r["indicators"]),
                text(&r["last_success"]),
                text(&r["next_run"]),
                text(&r["last_error"]),
            ]
        })
        .collect();
    let head = [
        "NAME",
        "KIND",
        "INDICATORS",
        "LAST SUCCESS",
        "NEXT RUN",
        "LAST ERROR",
    ];
    let mut widths = head.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row.iter()).take(5) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i < 5 {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            } else {
                l.push_str(c);
            }
        }
        l.trim_end().to_string()
    };
    writeln!(out, "{}", line(head))?;
    for row in &table {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    if table.is_empty() {
        writeln!(out, "(no [[intel.sources]] in the configuration)")?;
    }
    Ok(ExitCode::SUCCESS)
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

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}): e.g. 2024-05-01T10:00:00Z"))
}

pub(super) fn run_lookup(
    args: &IntelArgs,
    value: &str,
    at: Option<chrono::DateTime<chrono::Utc>>,
    json: bool,
) -> Result<ExitCode> {
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
    let report = crate::sink::report::lookup_report(
        &index,
        &warninglists,
        value,
        detected.as_ref(),
        &hits,
        at.unwrap_or_else(chrono::Utc::now).timestamp(),
    );
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
