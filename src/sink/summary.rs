//! The hunt summary a person reads at the end of `tripline hunt` (on stderr).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::index::Index;
use crate::intel::IndicatorId;

/// What a hunt saw.
#[derive(Clone, Debug, Default)]
pub struct HuntStats {
    pub inputs: u64,
    pub lines: u64,
    pub bytes: u64,
    /// Bytes read from the inputs' files: compressed bytes for archives.
    pub read_bytes: u64,
    /// Dot files and directories a directory walk left out (no `--hidden`).
    pub skipped_hidden: u64,
    /// Symlinks a directory walk left out (no `-L`).
    pub skipped_links: u64,
    pub oversized_lines: u64,
    pub matched_lines: u64,
    pub enrichments: u64,
    pub by_type: BTreeMap<String, u64>,
    pub by_source: BTreeMap<String, u64>,
    pub by_indicator: HashMap<IndicatorId, u64>,
    /// Inputs that could not be read (whole or in part), with the reason.
    pub errors: Vec<String>,
    /// With `HuntOptions::observe`: what the rules see, in input order.
    pub observations: Vec<crate::correlate::Observation>,
    pub secs: f64,
}

/// How many indicators the summary lists by hit count.
pub const TOP_INDICATORS: usize = 10;

pub fn hunt_summary(index: &Index, s: &HuntStats) -> String {
    let mut o = String::new();
    let mb = s.bytes as f64 / 1e6;
    let rate = if s.secs > 0.0 { mb / s.secs } else { 0.0 };
    let lps = if s.secs > 0.0 {
        s.lines as f64 / s.secs
    } else {
        0.0
    };
    let _ = writeln!(
        o,
        "tripline hunt: {} input(s), {} lines, {:.1} MB in {:.2} s ({:.1} MB/s, {:.0} lines/s)",
        s.inputs, s.lines, mb, s.secs, rate, lps
    );
    if s.read_bytes != s.bytes {
        let _ = writeln!(
            o,
            "  read from disk: {:.1} MB (archives count compressed)",
            s.read_bytes as f64 / 1e6
        );
    }
    if s.skipped_hidden + s.skipped_links > 0 {
        let _ = writeln!(
            o,
            "  left out of directory walks: {} dot file(s) or dir(s) (--hidden), {} symlink(s) (-L)",
            s.skipped_hidden, s.skipped_links
        );
    }
    let _ = writeln!(o, "  indicators loaded: {}", index.len());
    let _ = writeln!(
        o,
        "  matching lines: {} ({} enrichments)",
        s.matched_lines, s.enrichments
    );
    if s.oversized_lines > 0 {
        let _ = writeln!(o, "  lines skipped as oversized: {}", s.oversized_lines);
    }
    if !s.by_type.is_empty() {
        let parts: Vec<String> = s.by_type.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(o, "  matches by indicator type: {}", parts.join(", "));
    }
    if !s.by_source.is_empty() {
        let parts: Vec<String> = s
            .by_source
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(o, "  matches by intel source: {}", parts.join(", "));
    }
    if !s.by_indicator.is_empty() {
        let mut top: Vec<_> = s.by_indicator.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let _ = writeln!(o, "  top indicators:");
        for (id, n) in top.into_iter().take(TOP_INDICATORS) {
            let _ = writeln!(o, "    {n:>8}  {} ({})", index.value(*id), id.kind());
        }
    }
    for e in &s.errors {
        let _ = writeln!(o, "  error: {e}");
    }
    o
}
