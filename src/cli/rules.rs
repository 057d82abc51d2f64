//! `tripline rules check`: validate rule files with precise errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::correlate::load;

#[derive(Subcommand, Debug)]
pub enum RulesAction {
    /// Validate the rules in DIR (default: rules/), with precise errors.
    Check {
        #[arg(value_name = "DIR", default_value = "rules")]
        dir: PathBuf,
    },
}

pub(super) fn rules_check(dir: &Path) -> Result<ExitCode> {
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
