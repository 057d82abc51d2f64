//! `tripline hunt`: batch correlation of files, directories, archives or stdin, with
//! optional confirmation by the rules (`--rules`, `--default-rules`) and a preview of
//! what would be shared (`--sightings-out`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{build_index, IntelArgs};
use crate::config::Config;
use crate::correlate::engine::{Engine, EngineOptions};
use crate::correlate::load;
use crate::correlate::rule::Rule;
use crate::hunt::{self, HuntOptions, HuntStats};
use crate::index::Index;
use crate::share::{ExportFormat, ShareConfig};
use crate::sink::summary;
use crate::source::batch;

#[derive(Args, Debug)]
pub struct HuntArgs {
    #[command(flatten)]
    pub intel: IntelArgs,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Write alerts here instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print only the number of matching lines (like grep -c over all inputs).
    #[arg(long, short = 'c')]
    pub count: bool,
    /// Lines longer than this are counted and skipped.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_line_bytes: usize,
    /// The zone of times the logs write without one (syslog `Mar  4 10:00:01`, zoneless
    /// ISO stamps): `UTC`, an offset such as `+02:00`, or an IANA name such as
    /// `Europe/Berlin`.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub timezone: crate::decode::Zone,
    /// Do not print the summary on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Confirm matches with the correlation rules in DIR (YAML); confirmations are
    /// written as alerts (`event.kind: "alert"`) after the line alerts.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Confirm with the shipped rules (`rules/`, compiled in).
    #[arg(long, conflicts_with = "rules")]
    pub default_rules: bool,
    /// Write what would be shared (sightings of confirmed matches) to FILE, without
    /// sending anything. Needs --rules or --default-rules.
    #[arg(long, value_name = "FILE")]
    pub sightings_out: Option<PathBuf>,
    /// Format of --sightings-out.
    #[arg(long, value_name = "misp|stix", default_value = "misp")]
    pub sightings_format: String,
    /// A `tripline run` configuration whose `[share]` section gives the sharing policy
    /// (default: one destination per intel source with the default policy).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Follow symlinks met in directories (a symlink loop is reported once and not
    /// followed). Without it a walk skips symlinks; named operands are always read.
    #[arg(long = "follow", short = 'L')]
    pub follow: bool,
    /// Search dot files and dot directories met in directories (skipped otherwise,
    /// as ripgrep does; named operands are always read).
    #[arg(long)]
    pub hidden: bool,
    /// Log files, directories (recursive), archives (gzip, zstd, bzip2, xz, lz4); `-`
    /// for stdin.
    #[arg(value_name = "LOG", required = true)]
    pub logs: Vec<PathBuf>,
}

pub(super) fn run_hunt(args: HuntArgs) -> Result<ExitCode> {
    let (index, _, intel_problems) = build_index(&args.intel, false)?;
    // What each intel source lost at load: warnings, shown even with --quiet.
    for line in crate::sink::report::intel_loss_lines(&index) {
        eprintln!("tripline: warning: {line}");
    }
    let walked = batch::expand(
        &args.logs,
        batch::WalkOptions {
            follow_links: args.follow,
            hidden: args.hidden,
        },
    );
    let inputs = walked.inputs;
    let mut errors: Vec<String> = walked
        .errors
        .iter()
        .map(|(p, e)| format!("{}: {e}", p.display()))
        .collect();
    for e in &errors {
        eprintln!("tripline: {e}");
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rules = hunt_rules(&args)?;
    let opts = HuntOptions {
        threads,
        max_line_bytes: args.max_line_bytes,
        count_only: args.count,
        progress: !args.quiet && std::io::stderr().is_terminal(),
        observe: rules.is_some(),
        decode: crate::decode::DecodeOptions {
            zone: args.timezone,
            ..Default::default()
        },
        ..HuntOptions::default()
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => {
            let f = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            Box::new(std::io::BufWriter::with_capacity(1 << 16, f))
        }
        None => Box::new(std::io::BufWriter::with_capacity(
            1 << 16,
            std::io::stdout().lock(),
        )),
    };
    // A reader that went away (`| head`) ends the run quietly with status 0, as
    // ripgrep does: nothing more is written, not even the summary.
    let mut stats = match hunt::hunt(&index, &inputs, &opts, &mut out) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        r => r.context("writing alerts")?,
    };
    stats.skipped_hidden = walked.skipped_hidden;
    stats.skipped_links = walked.skipped_links;
    let mut rules_summary = String::new();
    if let Some(rules) = rules {
        match confirm_hunt(&args, &index, rules, &mut stats, &mut out) {
            Err(e) if broken_pipe(&e) => return Ok(ExitCode::SUCCESS),
            r => rules_summary = r?,
        }
    }
    let flushed = out.flush().and_then(|()| {
        if args.count {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", stats.matched_lines)?;
            stdout.flush()?;
        }
        Ok(())
    });
    match flushed {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        r => r.context("writing alerts")?,
    }
    for e in &stats.errors {
        eprintln!("tripline: {e}");
    }
    errors.extend(stats.errors.iter().cloned());
    if !args.quiet {
        eprint!("{}{rules_summary}", summary::hunt_summary(&index, &stats));
    }
    // Errors, shown even with --quiet (as grep -q still reports unreadable files).
    for p in &intel_problems {
        eprintln!("  intel error: {p}");
    }
    Ok(if !errors.is_empty() || !intel_problems.is_empty() {
        ExitCode::from(2)
    } else if stats.matched_lines > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Whether an error is (caused by) a write to a reader that went away.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|e| e.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

/// The rules a hunt confirms with, if any.
pub(super) fn hunt_rules(args: &HuntArgs) -> Result<Option<Vec<Rule>>> {
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
pub(super) fn confirm_hunt(
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
        let (text, dropped) = crate::share::preview_with_drops(&policy, &confirmations, format)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        summary.push_str(&format!(
            "  sightings that would be shared: written to {} (nothing sent)\n",
            path.display()
        ));
        for (reason, n) in dropped {
            summary.push_str(&format!(
                "    {n:>6}  withheld ({}): {reason}\n",
                reason.name()
            ));
        }
    }
    Ok(summary)
}
