//! `tripline retro`: probes every current indicator against the observation store
//! (`<state>/retro/`, or `--store DIR`) and writes retro alerts as JSON lines (see
//! [`crate::retro::matching`]); a summary on stderr. Exit status as `hunt`: 0 some
//! indicator was seen, 1 none was, 2 an error.
//!
//! With `--rules DIR` or `--default-rules`, the hits also go through the rules at
//! their original times, as the sidecar's live retro runs do
//! ([`matching::observations`], one engine in time order, windows closed at the
//! end); confirmations follow the retro alerts in the output, and
//! `--preview-sharing DIR` writes what would be shared (the `[share]` of --config;
//! nothing is queued nor sent).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;

use super::{build_index, IntelArgs};
use crate::config::{Config, RetroConfig};
use crate::retro::matching;
use crate::retro::Store;

#[derive(Args, Debug)]
pub struct RetroArgs {
    #[command(flatten)]
    pub intel: IntelArgs,
    /// A `tripline run` configuration: its state directory holds the store
    /// (`<state>/retro/`), and, without --intel, its intel is probed (`[intel] paths`
    /// and every `[[intel.sources]]`: files and what was synced).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The observation store to probe (default: `<state>/retro/` of --config), e.g.
    /// one filled by `tripline hunt --record DIR`.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Only days from this long ago on (`7d`, `36h`, `90m`, `2w`; a day is probed when
    /// it holds observations at or after then). Default: every day the store holds.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<chrono::Duration>,
    /// Write the alerts here (`-`: stdout, the default).
    #[arg(long, short = 'o', value_name = "FILE|-")]
    pub output: Option<PathBuf>,
    /// Confirm the hits with the correlation rules in DIR (YAML), at their original
    /// times; confirmation alerts follow the retro alerts.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Confirm with the shipped rules (`rules/`, compiled in).
    #[arg(long, conflicts_with = "rules")]
    pub default_rules: bool,
    /// Write what the confirmations would share with each destination of --config's
    /// `[share]` into DIR (as `hunt --preview-sharing`); nothing is queued nor sent.
    /// Needs --rules or --default-rules.
    #[arg(long, value_name = "DIR")]
    pub preview_sharing: Option<PathBuf>,
    /// Do not print the summary on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// The rules the hits are confirmed with, if any.
fn retro_rules(args: &RetroArgs) -> Result<Option<Vec<crate::correlate::rule::Rule>>> {
    use crate::correlate::load;
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
    if args.preview_sharing.is_some() {
        bail!("--preview-sharing needs --rules DIR or --default-rules: only confirmed hits are shared");
    }
    Ok(None)
}

/// `<n>` followed by `s`, `m`, `h`, `d` or `w`.
pub(crate) fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, such as 7d or 36h"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "{text:?}: the unit must be s, m, h, d or w (such as 7d or 36h)"
            ))
        }
    };
    n.checked_mul(secs)
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(|| format!("{text:?}: too long"))
}

pub(super) fn run_retro(args: RetroArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let config = match &args.config {
        Some(p) => Some((Config::load(p)?, p.clone())),
        None => None,
    };
    let intel = match (&config, args.intel.intel.is_empty()) {
        (Some((c, p)), true) => {
            let plan = c.plan(p)?;
            super::intel_args_from_config(c, &plan, &args.intel)
        }
        _ => args.intel.clone(),
    };
    let store_dir = match (&args.store, &config) {
        (Some(d), _) => d.clone(),
        (None, Some((c, _))) => RetroConfig::dir(&c.state.dir),
        (None, None) => {
            bail!("no store given: pass --config FILE (its <state>/retro/) or --store DIR")
        }
    };
    let (index, _, intel_problems) = build_index(&intel, false)?;
    for line in crate::sink::report::intel_loss_lines(&index) {
        eprintln!("tripline: warning: {line}");
    }
    let store =
        Store::open(&store_dir).with_context(|| format!("opening {}", store_dir.display()))?;
    let since: Option<DateTime<Utc>> = args.since.map(|d| Utc::now() - d);
    let rules = retro_rules(&args)?;
    let share = match (&args.preview_sharing, &config) {
        (None, _) => None,
        (Some(_), Some((c, _))) if !c.share.destinations.is_empty() => Some(c.share.clone()),
        (Some(_), _) => bail!("--preview-sharing needs --config FILE with [[share.destinations]]"),
    };
    let targets = matching::all_targets(&index);
    // Matchable indicators of kinds the store does not record.
    let not_probed = crate::intel::Kind::ALL
        .into_iter()
        .filter(|k| !matching::PROBED_KINDS.contains(k))
        .flat_map(|k| index.all_ids(k))
        .filter(|&id| !index.metas_of(id).is_empty())
        .count();
    let opts = matching::RunOptions {
        loaded_at: None,
        trigger: None,
    };
    let mut run = matching::probe(&index, &store, since, targets, &opts);
    // False positives reported to the sidecar of --config: marked or dropped as in
    // its live and retro alerts.
    if let Some(p) = &args.config {
        if let Some((list, mode)) = super::hunt::hunt_suppressions(p)? {
            matching::apply_suppressions(&mut run.alerts, &index, &list, mode);
        }
    }
    let mut stats = run.stats.clone();
    stats.not_probed += not_probed as u64;
    let mut alerts: Vec<serde_json::Value> = run.alerts.iter().map(|a| a.doc.clone()).collect();
    let mut rules_summary = String::new();
    if let Some(rules) = rules {
        let shape = crate::run::retro_shape(&rules);
        let observations: Vec<crate::correlate::Observation> = run
            .alerts
            .iter()
            .flat_map(|a| matching::observations(&index, a, &shape))
            .collect();
        let seen = crate::share::preview::Seen::from_observations(&observations);
        let mut engine = crate::correlate::engine::Engine::new(rules);
        let confirmations = engine.observe_batch(observations);
        alerts.extend(
            confirmations
                .iter()
                .map(crate::sink::alert::confirmation_alert),
        );
        rules_summary.push_str(&format!(
            "  confirmations: {} (the hits at their original times)\n",
            confirmations.len()
        ));
        if let (Some(dir), Some(policy)) = (&args.preview_sharing, &share) {
            let note = format!(
                "[share] of {}",
                args.config
                    .as_deref()
                    .unwrap_or(std::path::Path::new("?"))
                    .display()
            );
            let preview = crate::share::preview::from_confirmations(
                policy,
                &confirmations,
                seen,
                &note,
                None,
            )?;
            preview
                .write(dir)
                .with_context(|| format!("writing the sharing preview to {}", dir.display()))?;
            rules_summary.push_str(&format!(
                "  sharing preview: {} body(ies) for {} destination(s), {} withheld, written to {} (nothing sent)\n",
                preview.body_count(),
                preview.destinations.len(),
                preview.withheld_count(),
                dir.display()
            ));
        }
    }
    let mut out: Box<dyn Write> = match args.output.as_deref() {
        Some(p) if p.as_os_str() != "-" => {
            let f = std::fs::File::create(p)
                .with_context(|| format!("cannot create {}", p.display()))?;
            Box::new(std::io::BufWriter::new(f))
        }
        _ => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let written = alerts.iter().try_for_each(|a| {
        serde_json::to_writer(&mut out, a)?;
        out.write_all(b"\n")?;
        Ok::<(), anyhow::Error>(())
    });
    match written.and_then(|()| out.flush().map_err(anyhow::Error::from)) {
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            return Ok(ExitCode::SUCCESS)
        }
        r => r.context("writing retro alerts")?,
    }
    if !args.quiet {
        let s = store.stats();
        eprintln!(
            "retro: {} indicator(s) probed against {} ({} day(s), {} entries{}) in {:.3} s: {} hit(s) (indicator, observed value), {} alert(s)",
            stats.probed,
            store_dir.display(),
            s.slices,
            s.entries,
            since.map_or(String::new(), |t| format!(", days from {}", crate::sink::alert::time_text(t))),
            started.elapsed().as_secs_f64(),
            stats.hits,
            stats.alerts,
        );
        if stats.not_probed > 0 {
            eprintln!(
                "  {} indicator(s) not probed: file names, registry keys and other literals are not recorded in the store",
                stats.not_probed
            );
        }
        eprint!("{rules_summary}");
    }
    for p in &intel_problems {
        eprintln!("  intel error: {p}");
    }
    Ok(if !intel_problems.is_empty() {
        ExitCode::from(2)
    } else if stats.hits > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d").unwrap().num_seconds(), 7 * 86_400);
        assert_eq!(parse_duration("36h").unwrap().num_seconds(), 36 * 3600);
        assert_eq!(parse_duration("90m").unwrap().num_seconds(), 5400);
        assert_eq!(parse_duration("2w").unwrap().num_seconds(), 14 * 86_400);
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("7y").is_err());
    }
}
