//! `tripline hunt`: batch correlation of files, directories, archives or stdin, with
//! optional confirmation by the rules (`--rules`, `--default-rules`) and a preview of
//! what would be shared (`--preview-sharing DIR`: each destination's exact bodies and
//! a summary, see [`crate::share::preview`]; `--sightings-out FILE`, deprecated, the
//! same bodies in one JSON file keyed by destination).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::{build_index, IntelArgs};
use crate::config::Config;
use crate::correlate::engine::{Engine, EngineOptions};
use crate::correlate::load;
use crate::correlate::rule::Rule;
use crate::hunt::{self, HuntOptions, HuntStats};
use crate::index::Index;
use crate::share::preview::{Preview, Seen};
use crate::share::{ExportFormat, ShareConfig, SuppressedAlerts, SuppressionList};
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
    /// Write what would be shared with each destination community into DIR, without
    /// sending anything: one subdirectory per destination with exactly the bodies its
    /// transport would send (MISP JSON, STIX bundles or TAXII envelopes), and
    /// summary.txt / summary.json (what would be sent, what is withheld and why, how
    /// the local data relates to each community's intel). Needs --rules or
    /// --default-rules.
    #[arg(long, value_name = "DIR")]
    pub preview_sharing: Option<PathBuf>,
    /// Deprecated (use --preview-sharing DIR): write the bodies that would be sent to
    /// FILE, as one JSON object keyed by destination name:
    /// `{"<destination>": {"transport": "misp", "bodies": [...]}}`.
    #[arg(long, value_name = "FILE")]
    pub sightings_out: Option<PathBuf>,
    /// Deprecated: with --sightings-out, only destinations of this format (misp: MISP
    /// destinations; stix: TAXII and STIX directories). Default: all.
    #[arg(long, value_name = "misp|stix", requires = "sightings_out")]
    pub sightings_format: Option<String>,
    /// A `tripline run` configuration whose `[share]` section gives the sharing policy
    /// (default: one destination per intel source with the default policy), and,
    /// without --intel, the intel: `[intel] paths` and the `[[intel.sources]]` (files,
    /// and what `tripline intel sync` or `run` cached).
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
    /// Also record every line's observables (IPs, host names, URLs, hashes, e-mails,
    /// with first/last time, count, hosts, sources) into the retro observation store
    /// at DIR (the format of `<state>/retro/`). With --config, its `[retro]`
    /// retention applies, counted back from the newest day recorded; without, only
    /// the default size bound (1 GiB): history is what an archive store is for.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Log files, directories (recursive), archives (gzip, zstd, bzip2, xz, lz4); `-`
    /// for stdin.
    #[arg(value_name = "LOG", required = true)]
    pub logs: Vec<PathBuf>,
}

pub(super) fn run_hunt(args: HuntArgs) -> Result<ExitCode> {
    // With --config and no --intel: the configuration's intel (files and synced cache).
    let intel = match (&args.config, args.intel.intel.is_empty()) {
        (Some(p), true) => {
            let c = Config::load(p)?;
            let plan = c.plan(p)?;
            super::intel_args_from_config(&c, &plan, &args.intel)
        }
        _ => args.intel.clone(),
    };
    let (index, _, intel_problems) = build_index(&intel, false)?;
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
    let suppressions = match &args.config {
        Some(path) => hunt_suppressions(path)?,
        None => None,
    };
    let record = match &args.record {
        Some(dir) => {
            let retro = match &args.config {
                Some(p) => Config::load(p)?.retro,
                None => crate::config::RetroConfig {
                    retention_days: *crate::config::bounds::RETRO_RETENTION_DAYS.end(),
                    ..Default::default()
                },
            };
            Some(hunt::RecordOptions {
                dir: dir.clone(),
                retention_days: retro.retention_days.clamp(1, u64::from(u32::MAX)) as u32,
                max_bytes: retro.max_bytes,
            })
        }
        None => None,
    };
    let opts = HuntOptions {
        record,
        threads,
        max_line_bytes: args.max_line_bytes,
        count_only: args.count,
        progress: !args.quiet && std::io::stderr().is_terminal(),
        observe: rules.is_some(),
        decode: crate::decode::DecodeOptions {
            zone: args.timezone,
            ..Default::default()
        },
        suppressions: suppressions.clone(),
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
    if let Some(dir) = &args.record {
        if !args.quiet {
            let s = crate::retro::store::summary(dir)
                .with_context(|| format!("reading {}", dir.display()))?;
            eprintln!(
                "retro store {}: {} entries in {} segment(s) over {} day(s), {} bytes ({:.1} bytes per entry; of which {} host names, {} bytes, {:.1} per entry)",
                dir.display(),
                s.entries,
                s.segments,
                s.slices,
                s.bytes,
                s.bytes as f64 / s.entries.max(1) as f64,
                s.names,
                s.names_bytes,
                s.names_bytes as f64 / s.entries.max(1) as f64,
            );
        }
    }
    stats.skipped_hidden = walked.skipped_hidden;
    stats.skipped_links = walked.skipped_links;
    let mut rules_summary = String::new();
    if let Some(rules) = rules {
        match confirm_hunt(&args, &index, rules, &mut stats, &mut out, suppressions) {
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
    if args.sightings_out.is_some() || args.preview_sharing.is_some() {
        bail!("--preview-sharing and --sightings-out need --rules DIR or --default-rules: only confirmed matches are shared");
    }
    Ok(None)
}

/// The sharing policy for previews and where it came from: the config's `[share]`,
/// or one destination per intel source with the default policy, in the source's own
/// format (MISP for MISP events and feeds, a STIX directory for STIX and lists): what
/// each community would receive.
fn preview_policy(config: Option<&Path>, index: &Index) -> Result<(ShareConfig, String)> {
    if let Some(p) = config {
        let c = Config::load(p)?;
        if !c.share.destinations.is_empty() {
            return Ok((c.share, format!("[share] of {}", p.display())));
        }
    }
    let mut sources: Vec<(&str, &str)> = index
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.format))
        .collect();
    sources.sort_unstable();
    sources.dedup_by(|a, b| a.0 == b.0);
    let mut toml = String::new();
    for (n, format) in sources {
        let transport = if format.starts_with("misp") {
            "type = \"misp\"\nurl = \"https://misp.invalid\"\napi_key_env = \"TRIPLINE_PREVIEW_ONLY\"\n"
        } else {
            "type = \"stix_dir\"\npath = \"/nonexistent/preview\"\n"
        };
        toml.push_str(&format!(
            "[[destinations]]\nname = {n:?}\napproval = \"auto\"\n[destinations.transport]\n{transport}"
        ));
    }
    let share: ShareConfig = toml::from_str(&toml).context("building the preview policy")?;
    Ok((
        share,
        "default: one destination per intel source, in the source's own format (MISP or \
         STIX), default policy; give --config for yours"
            .to_string(),
    ))
}

/// `--sightings-out` (deprecated): the preview's bodies in one JSON object keyed by
/// destination, only destinations of `format` when given.
fn sightings_out_json(preview: &Preview, format: Option<ExportFormat>) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for d in &preview.destinations {
        let family = if d.transport == "misp" {
            ExportFormat::Misp
        } else {
            ExportFormat::Stix
        };
        if format.is_some_and(|f| f != family) || d.files.is_empty() {
            continue;
        }
        let bodies: Vec<serde_json::Value> = d
            .files
            .iter()
            .filter_map(|(_, bytes)| serde_json::from_slice(bytes).ok())
            .collect();
        out.insert(
            d.name.clone(),
            serde_json::json!({"transport": d.transport, "bodies": bodies}),
        );
    }
    serde_json::Value::Object(out)
}

/// The hunt summary's lines about a preview: per destination what would be sent and
/// what is withheld, by reason.
fn preview_lines(preview: &Preview) -> String {
    let mut s = String::new();
    for d in &preview.destinations {
        s.push_str(&format!(
            "    {:>6}  to {} ({})\n",
            d.bodies.len(),
            d.name,
            d.transport
        ));
        let mut by_reason: std::collections::BTreeMap<&str, (u64, &str)> = Default::default();
        for w in &d.withheld {
            let e = by_reason.entry(w.reason.as_str()).or_insert((0, &w.why));
            e.0 += 1;
        }
        for (reason, (n, why)) in by_reason {
            s.push_str(&format!(
                "    {n:>6}  withheld from {} ({reason}): {why}\n",
                d.name
            ));
        }
    }
    if !preview.no_destination.is_empty() {
        s.push_str(&format!(
            "    {:>6}  withheld (no_destination): no destination serves their intel source\n",
            preview.no_destination.len()
        ));
    }
    s
}

/// The false positives reported to the sidecar whose configuration is `path` (its
/// state directory's suppression list, if it has one: a hunt never creates state),
/// with the configured handling of their alerts.
pub(super) fn hunt_suppressions(
    path: &Path,
) -> Result<Option<(Arc<SuppressionList>, SuppressedAlerts)>> {
    let config = Config::load(path)?;
    if !config
        .state
        .dir
        .join(crate::share::suppress::FILE_NAME)
        .exists()
    {
        return Ok(None);
    }
    let list = SuppressionList::open(&config.state.dir)
        .with_context(|| format!("opening the suppression list of {}", path.display()))?;
    Ok(Some((Arc::new(list), config.feedback.suppressed_alerts)))
}

/// Runs the rules over a hunt's observations, writes confirmation alerts, and the
/// sightings preview when asked.
pub(super) fn confirm_hunt(
    args: &HuntArgs,
    index: &Index,
    rules: Vec<Rule>,
    stats: &mut HuntStats,
    out: &mut dyn Write,
    suppressions: Option<(Arc<SuppressionList>, SuppressedAlerts)>,
) -> Result<String> {
    let mut summary = String::new();
    let mut engine = Engine::with_options(rules, EngineOptions::default());
    let observations = std::mem::take(&mut stats.observations);
    let sharing = args.preview_sharing.is_some() || args.sightings_out.is_some();
    let seen = if sharing {
        Seen::from_observations(&observations)
    } else {
        Seen::default()
    };
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
    if sharing {
        let (policy, policy_note) = preview_policy(args.config.as_deref(), index)?;
        let preview = crate::share::preview::from_confirmations(
            &policy,
            &confirmations,
            seen,
            &policy_note,
            suppressions.map(|(list, _)| list),
        )?;
        if let Some(dir) = &args.preview_sharing {
            preview
                .write(dir)
                .with_context(|| format!("writing the sharing preview to {}", dir.display()))?;
            summary.push_str(&format!(
                "  sharing preview: {} body(ies) for {} destination(s), {} withheld, written to {} (nothing sent)\n",
                preview.body_count(),
                preview.destinations.len(),
                preview.withheld_count(),
                dir.display()
            ));
        }
        if let Some(path) = &args.sightings_out {
            eprintln!(
                "tripline: warning: --sightings-out is deprecated: use --preview-sharing DIR \
                 (each destination's exact bodies in its own directory, and what is withheld \
                 and why); --sightings-out now writes {{\"<destination>\": {{\"transport\": …, \
                 \"bodies\": […]}}}}"
            );
            let format: Option<ExportFormat> = args
                .sightings_format
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--sightings-format: {e}"))?;
            let mut text = serde_json::to_string_pretty(&sightings_out_json(&preview, format))?;
            text.push('\n');
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            summary.push_str(&format!(
                "  sightings that would be shared: written to {} (nothing sent)\n",
                path.display()
            ));
        }
        summary.push_str(&preview_lines(&preview));
    }
    Ok(summary)
}
