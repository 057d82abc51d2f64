//! Command-line interface: argument definitions and the glue that runs each command.
//!
//! `tripline hunt` (batch correlation), `tripline intel` (what the intel holds) and
//! `tripline intel lookup VALUE` (why a value matches or not). Exit status as grep:
//! 0 something matched (lookup: the value matches), 1 nothing did, 2 an error.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::hunt::{self, HuntOptions};
use crate::index::build::{build_index as build, IntelPlan};
use crate::index::{Index, WarninglistMode};
use crate::intel::list::CsvColumn;
use crate::intel::load::{IntelSpec, LoadOptions};
use crate::intel::warninglist::Warninglists;
use crate::intel::{canon, StoreOptions};
use crate::matcher::Matcher;
use crate::sink::summary;
use crate::source::batch;

#[derive(Parser, Debug)]
#[command(
    name = "tripline",
    version,
    about = "Correlate logs with shared threat intel and give sightings back."
)]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Batch correlation: match log files, directories, .gz archives or stdin against intel.
    Hunt(HuntArgs),
    /// Load intel and show what was understood; `intel lookup VALUE` explains one value.
    Intel(IntelCmd),
    /// The sidecar: follow files, receive syslog or read stdin, match, alert, until Ctrl-C.
    Run(RunArgs),
    /// Correlation rules.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Review and send sightings waiting in the outbox.
    Sightings(crate::cli_share::SightingsArgs),
    /// Give feedback to the communities that shared an indicator.
    Feedback(crate::cli_share::FeedbackArgs),
}

#[derive(Subcommand, Debug)]
pub enum RulesAction {
    /// Validate the rules in DIR (default: rules/), with precise errors.
    Check {
        #[arg(value_name = "DIR", default_value = "rules")]
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// TOML configuration (default: the embedded one, which runs on the fixtures).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print what would run, and exit.
    #[arg(long)]
    pub check: bool,
    /// Override `metrics.address`.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Read lines from stdin as the only source; stop at end of input.
    #[arg(long)]
    pub stdin: bool,
}

/// Where intel comes from and how it is filtered.
#[derive(Args, Debug, Clone)]
pub struct IntelArgs {
    /// Intel file or directory (MISP JSON or feed, STIX 2.1, plain or CSV list),
    /// optionally named: NAME=PATH. Repeatable.
    #[arg(long = "intel", value_name = "[NAME=]PATH", global = true)]
    pub intel: Vec<IntelSpec>,
    /// Extra warninglist file or directory, on top of the shipped ones. Repeatable.
    #[arg(long = "warninglists", value_name = "PATH", global = true)]
    pub warninglists: Vec<PathBuf>,
    /// Do not load the shipped warninglists (rules/warninglists).
    #[arg(long, global = true)]
    pub no_default_warninglists: bool,
    /// What to do with warninglisted indicators: drop them, or keep them with a mark.
    #[arg(long, value_enum, default_value = "drop", global = true)]
    pub warninglist_mode: WarninglistMode,
    /// Also match MISP attributes whose to_ids is false.
    #[arg(long, global = true)]
    pub include_non_ids: bool,
    /// Treat any malformed intel record or unreadable intel file as fatal.
    #[arg(long, global = true)]
    pub strict: bool,
    /// Column holding the value in CSV lists (0-based index or header name).
    #[arg(long, value_name = "COLUMN", global = true)]
    pub csv_column: Option<CsvColumn>,
}

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
    /// Log files, directories (recursive), .gz archives; `-` for stdin.
    #[arg(value_name = "LOG", required = true)]
    pub logs: Vec<PathBuf>,
}

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

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Hunt(args) => run_hunt(args),
        Command::Run(args) => run_sidecar(args),
        Command::Rules {
            action: RulesAction::Check { dir },
        } => crate::cli_share::rules_check(&dir),
        Command::Sightings(args) => crate::cli_share::sightings(args),
        Command::Feedback(args) => crate::cli_share::feedback(args),
        Command::Intel(cmd) => match cmd.action {
            None => run_intel(&cmd.intel, cmd.json),
            Some(IntelAction::Lookup { value }) => run_lookup(&cmd.intel, &value, cmd.json),
        },
    }
}

/// Loads intel and warninglists and builds the index.
pub(crate) fn build_index(
    args: &IntelArgs,
    keep_excluded: bool,
) -> Result<(Index, Warninglists, Vec<String>)> {
    if args.intel.is_empty() {
        bail!(
            "no intel given: pass --intel PATH (a file or directory; e.g. --intel fixtures/intel)"
        );
    }
    let plan = IntelPlan {
        specs: args.intel.clone(),
        load: LoadOptions {
            store: StoreOptions {
                include_non_ids: args.include_non_ids,
                keep_excluded,
            },
            strict: args.strict,
            csv_column: args.csv_column.clone().unwrap_or_default(),
        },
        warninglists: args.warninglists.clone(),
        no_default_warninglists: args.no_default_warninglists,
        warninglist_mode: if keep_excluded {
            WarninglistMode::Flag
        } else {
            args.warninglist_mode
        },
    };
    let built = build(&plan).context("loading intel")?;
    for e in &built.problems {
        tracing::error!(error = %e, "Intel not loaded.");
    }
    let (index, warninglists, problems) = (built.index, built.warninglists, built.problems);
    Ok((index, warninglists, problems))
}

fn run_hunt(args: HuntArgs) -> Result<ExitCode> {
    let (index, _, intel_problems) = build_index(&args.intel, false)?;
    let (inputs, missing) = batch::expand(&args.logs);
    let mut errors: Vec<String> = missing
        .iter()
        .map(|(p, e)| format!("{}: {e}", p.display()))
        .collect();
    for e in &errors {
        eprintln!("tripline: {e}");
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rules = crate::cli_share::hunt_rules(&args)?;
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
    let mut stats = hunt::hunt(&index, &inputs, &opts, &mut out).context("writing alerts")?;
    let mut rules_summary = String::new();
    if let Some(rules) = rules {
        rules_summary = crate::cli_share::confirm_hunt(&args, &index, rules, &mut stats, &mut out)?;
    }
    out.flush().context("writing alerts")?;
    if args.count {
        println!("{}", stats.matched_lines);
    }
    for e in &stats.errors {
        eprintln!("tripline: {e}");
    }
    errors.extend(stats.errors.iter().cloned());
    if !args.quiet {
        eprint!("{}{rules_summary}", summary::hunt_summary(&index, &stats));
        for p in &intel_problems {
            eprintln!("  intel error: {p}");
        }
    }
    Ok(if !errors.is_empty() || !intel_problems.is_empty() {
        ExitCode::from(2)
    } else if stats.matched_lines > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_sidecar(args: RunArgs) -> Result<ExitCode> {
    if args.check {
        return Ok(crate::config::check::check_file(args.config.as_deref()).print());
    }
    let (config, path) = match &args.config {
        Some(p) => (crate::config::Config::read(p)?, p.clone()),
        None => (
            crate::config::Config::embedded_default(),
            std::path::PathBuf::from("(embedded default)"),
        ),
    };
    let plan = config.plan(&path)?;
    crate::run::run(crate::run::RunOptions {
        plan,
        stdin: args.stdin,
        metrics_addr: args.metrics_addr,
    })
}

fn run_intel(args: &IntelArgs, json: bool) -> Result<ExitCode> {
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

fn run_lookup(args: &IntelArgs, value: &str, json: bool) -> Result<ExitCode> {
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
