//! Loading intel and building an [`Index`] from it: the one function `hunt`, `intel`
//! and the sidecar (at start and on every reload) all use, so a path, an option or a
//! warninglist means the same everywhere.
//!
//! Cost: reading and parsing every intel file and warninglist, then
//! [`Index::build`] (about 0.5 s per million indicators on one core). Pure apart from
//! reading files: callers run it on a blocking thread and swap the result in whole.

use std::path::PathBuf;

use crate::intel::expiry::ExpiryPolicy;
use crate::intel::load::{self, IntelSpec, LoadOptions};
use crate::intel::warninglist::Warninglists;
use crate::intel::IntelError;

use super::{BuildOptions, Index, MatchOptions, WarninglistMode};

/// What to load and how to build.
#[derive(Clone, Debug)]
pub struct IntelPlan {
    /// Intel files or directories (`NAME=PATH` names a source).
    pub specs: Vec<IntelSpec>,
    pub load: LoadOptions,
    /// Extra warninglist files or directories.
    pub warninglists: Vec<PathBuf>,
    /// Leave out the shipped warninglists.
    pub no_default_warninglists: bool,
    pub warninglist_mode: WarninglistMode,
    /// The switchable match semantics (`[match]`, `--no-query-hosts`, `--ip-port`).
    pub match_options: MatchOptions,
    /// How intel ages (`[intel.decay]`, `[intel.lifetimes]`).
    pub expiry: ExpiryPolicy,
    /// Drop what has lapsed by the time of the build (the sidecar: its lines are
    /// now); a hunt keeps it and judges every line at its own time.
    pub drop_lapsed: bool,
}

/// An index and what went into it.
pub struct Built {
    pub index: Index,
    pub warninglists: Warninglists,
    /// Intel files or records that could not be loaded (the rest was), one sentence
    /// each with its location.
    pub problems: Vec<String>,
}

/// Loads the intel and warninglists `plan` names and builds the index. Fails only on
/// what makes the whole load meaningless (strict mode, clashing source names); a bad
/// intel or warninglist file is reported in [`Built::problems`] and the rest still
/// loads.
pub fn build_index(plan: &IntelPlan) -> Result<Built, IntelError> {
    let (store, errors) = load::load_intel(&plan.specs, &plan.load)?;
    let mut problems: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let (warninglists, list_errors) =
        load::load_warninglists(&plan.warninglists, plan.no_default_warninglists)?;
    problems.extend(
        list_errors
            .iter()
            .map(|e| format!("warninglist not loaded: {e}")),
    );
    let mut index = Index::build(
        store,
        &warninglists,
        BuildOptions {
            warninglist_mode: plan.warninglist_mode,
            expiry: plan.expiry.clone(),
            now: plan.drop_lapsed.then(|| chrono::Utc::now().timestamp()),
        },
    );
    index.set_match_options(plan.match_options);
    Ok(Built {
        index,
        warninglists,
        problems,
    })
}
