//! Command-line interface: `main` parses [`Cli`] and calls [`run`], which hands each
//! subcommand to its own file — `hunt`, `run` (the sidecar), `intel` (what the
//! intel holds, and `intel lookup VALUE`), `rules check`, `sightings`, `feedback`,
//! `retro` (intel probed against the observation store).
//! Exit status as grep: 0 something matched (lookup: the value matches), 1 nothing
//! did, 2 an error. Everything printed is a sentence for people (or JSON for
//! `--json`), never a `Debug` rendering.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::index::build::{build_index as build, IntelPlan};
use crate::index::{Index, IpPortMatch, MatchOptions, WarninglistMode};
use crate::intel::broad::BroadPolicy;
use crate::intel::list::CsvColumn;
use crate::intel::load::{IntelSpec, LoadOptions};
use crate::intel::warninglist::Warninglists;
use crate::intel::StoreOptions;

mod feedback;
mod hunt;
mod intel;
mod retro;
mod rules;
mod run;
mod sightings;

pub use feedback::FeedbackArgs;
pub use hunt::HuntArgs;
pub use intel::IntelCmd;
pub use retro::RetroArgs;
pub use rules::RulesAction;
pub use run::RunArgs;
pub use sightings::SightingsArgs;

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
    Sightings(SightingsArgs),
    /// Give feedback to the communities that shared an indicator.
    Feedback(FeedbackArgs),
    /// Retro-hunting: probe all current intel against the observation store (what the
    /// logs held before the intel arrived) and write retro alerts.
    Retro(RetroArgs),
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
    /// Treat any malformed intel record or unreadable intel file as fatal (records of
    /// types tripline does not match, such as MISP `link` or `comment`, are counted).
    #[arg(long, global = true)]
    pub strict: bool,
    /// Keep indicators that would match too much: public suffixes (`org.ru`,
    /// `duckdns.org`) and prefixes shorter than --min-prefix-v4/-v6 (never a /0).
    #[arg(long, global = true)]
    pub allow_broad: bool,
    /// Shortest IPv4 prefix accepted as an indicator (shorter ones are refused).
    #[arg(long, value_name = "LEN", default_value_t = crate::intel::broad::DEFAULT_MIN_PREFIX_V4,
          value_parser = clap::value_parser!(u8).range(1..=32), global = true)]
    pub min_prefix_v4: u8,
    /// Shortest IPv6 prefix accepted as an indicator (shorter ones are refused).
    #[arg(long, value_name = "LEN", default_value_t = crate::intel::broad::DEFAULT_MIN_PREFIX_V6,
          value_parser = clap::value_parser!(u8).range(1..=128), global = true)]
    pub min_prefix_v6: u8,
    /// Column holding the value in CSV lists (0-based index or header name).
    #[arg(long, value_name = "COLUMN", global = true)]
    pub csv_column: Option<CsvColumn>,
    /// Do not look up host names that stand in a URL's query string
    /// (`/redirect?u=evil.com`): fewer hits on tracking and search parameters.
    #[arg(long, global = true)]
    pub no_query_hosts: bool,
    /// The port of an `ip|port` indicator: context only (`any`), or required next to
    /// the address in the line (`exact`: `1.2.3.4:443`, `1.2.3.4.443`, `(443)`).
    #[arg(long, value_enum, default_value = "any", global = true)]
    pub ip_port: IpPortMatch,
    /// How intel ages: a configuration's `[intel.decay]`/`[intel.lifetimes]` (with
    /// `--config`), else their defaults.
    #[arg(skip)]
    pub expiry: Option<crate::intel::expiry::ExpiryPolicy>,
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Hunt(args) => hunt::run_hunt(args),
        Command::Run(args) => run::run_sidecar(args),
        Command::Rules {
            action: RulesAction::Check { dir },
        } => rules::rules_check(&dir),
        Command::Sightings(args) => sightings::sightings(args),
        Command::Feedback(args) => feedback::feedback(args),
        Command::Retro(args) => retro::run_retro(args),
        Command::Intel(cmd) => {
            let args = intel::with_config(&cmd)?;
            match cmd.action {
                None => intel::run_intel(&args, cmd.json),
                Some(intel::IntelAction::Lookup { value, at }) => {
                    intel::run_lookup(&args, &value, at, cmd.json)
                }
                Some(intel::IntelAction::Sync {
                    source,
                    accept_shrink,
                }) => intel::run_sync(cmd.config.as_deref(), source.as_deref(), accept_shrink),
                Some(intel::IntelAction::Status) => {
                    intel::run_status(cmd.config.as_deref(), cmd.json)
                }
            }
        }
    }
}

/// The intel a configuration names, for a command given `--config` and no `--intel`:
/// `[intel] paths` and every `[[intel.sources]]` (a `file` source's path, the synced
/// cache of the others where it holds data, each named by its source), with the
/// configuration's intel and match settings; `base` gives the rest (`--strict`,
/// `--csv-column`).
pub(crate) fn intel_args_from_config(
    config: &crate::config::Config,
    plan: &crate::config::Plan,
    base: &IntelArgs,
) -> IntelArgs {
    let i = &config.intel;
    let mut specs = plan.intel.clone();
    specs.extend(crate::intel::sync::spec::cache_specs(
        &config.state.dir,
        &plan.intel_sources,
    ));
    IntelArgs {
        intel: specs,
        warninglists: i.warninglists.clone(),
        no_default_warninglists: i.no_default_warninglists,
        warninglist_mode: i.warninglist_mode.into(),
        include_non_ids: i.include_non_ids,
        strict: base.strict,
        allow_broad: i.allow_broad,
        min_prefix_v4: u8::try_from(i.min_prefix_v4).unwrap_or(32),
        min_prefix_v6: u8::try_from(i.min_prefix_v6).unwrap_or(128),
        csv_column: base.csv_column.clone(),
        no_query_hosts: !config.matching.query_hosts,
        ip_port: config.matching.ip_port,
        expiry: Some(i.expiry_policy()),
    }
}

/// Loads intel and warninglists and builds the index.
pub fn build_index(
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
                broad: BroadPolicy {
                    allow: args.allow_broad,
                    min_prefix_v4: args.min_prefix_v4,
                    min_prefix_v6: args.min_prefix_v6,
                },
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
        match_options: MatchOptions {
            query_hosts: !args.no_query_hosts,
            ip_port: args.ip_port,
        },
        // The configuration's `[intel.decay]`/`[intel.lifetimes]`, else their
        // defaults, judged at each line's time.
        expiry: args.expiry.clone().unwrap_or_default(),
        drop_lapsed: false,
    };
    let built = build(&plan).context("loading intel")?;
    for e in &built.problems {
        tracing::error!(error = %e, "Intel not loaded.");
    }
    let (index, warninglists, problems) = (built.index, built.warninglists, built.problems);
    Ok((index, warninglists, problems))
}
