//! Reading rules: one YAML file per rule, parsed with serde (`deny_unknown_fields`),
//! then validated into a compiled [`Rule`] (the serde documents are in
//! `correlate/doc.rs`). Owns the YAML format, [`RuleError`] and the shipped rules
//! (`rules/*.yml`, compiled into the binary: [`default_rules`]).
//!
//! The format (Sigma correlation vocabulary; see `rules/` for the shipped ones):
//!
//! ```yaml
//! title: Same indicator from one host, 3 times within an hour
//! id: d7a1c34b-8fee-4108-8389-8137af4da63c    # a UUID, unique among the rules
//! description: ...                           # optional
//! level: medium                              # informational, low, medium, high, critical
//! match:                                     # optional: absent selects everything
//!   types: [domain, ip, hash]                # Kind names, or the groups `hash`, `ip`
//!   sources: ["circl-*"]                     # intel source names (globs)
//!   tags: ["tlp:*", "kill-chain:*"]          # provenance tags (globs)
//!   categories: ["Network activity"]         # MISP categories (globs)
//!   log-sources: ["/var/log/dns*"]           # where the line was read (globs)
//! selectors:                                 # temporal rules only: named selectors,
//!   dns: { types: [domain, hostname] }       # same keys as `match`
//!   net: { types: ip }
//! correlation:                               # optional: absent confirms every match
//!   type: event_count                        # event_count, value_count, temporal
//!   group-by: [indicator, host]              # indicator, intel.event, host, source.ip,
//!                                            # destination.ip, log.source
//!   timespan: 1h                             # 30s, 10m, 1h, 24h, 7d
//!   condition: {gte: 3}                      # gte, gt, eq, lte, lt; or ">= 3"
//!   field: log.source                        # value_count only (or inside condition)
//! ```
//!
//! Sigma metadata (`author`, `date`, `modified`, `status`, `references`,
//! `falsepositives`) is accepted and ignored. Every criterion of a selector must hold;
//! any value of one criterion may match; globs are case-insensitive.
//!
//! Errors name the file, the line and the field (`rules/x.yml:7:
//! correlation.timespan: invalid timespan "10x": ...`). Lines come from the YAML parser
//! where it reports one, else from locating the key in the text (block-style YAML).
//!
//! Invariants: a directory loads whole or not at all (a bad rule file is an error,
//! never silently skipped); files are read in name order; ids are unique.
//!
//! Cost: a rule file larger than [`MAX_RULE_FILE_BYTES`] or nested deeper than
//! [`MAX_RULE_DEPTH`] is refused before the YAML parser sees it (a 100 KB file of
//! nested brackets used to take the parser half a minute). The depth is counted on the
//! raw text in one pass: indentation levels, `- ` sequence entries and `[`/`{` flow
//! brackets outside quotes, comments and block scalars.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::doc::{CorrelationTypeDoc, RuleDoc, SelectorDoc};
use super::rule::{Condition, Correlation, CorrelationType, Level, Rule, Selector};

/// The most named selectors a temporal rule may have.
pub const MAX_SELECTORS: usize = 32;

/// The largest rule file read (1 MiB); the shipped rules are under 2 KiB each.
pub const MAX_RULE_FILE_BYTES: u64 = 1 << 20;

/// The deepest YAML nesting a rule file may have; the shipped rules nest 4 levels.
pub const MAX_RULE_DEPTH: usize = 64;

/// Why a rule, or a rules directory, could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A rule that does not parse or validate. Shown as `origin:line: field: message`;
    /// the line is left out when unknown, the field when the whole file is at fault.
    #[error("{}", located(.origin, *.line, .field, .message))]
    Invalid {
        /// The file path, or `builtin:<file>` for a shipped rule.
        origin: String,
        /// 1-based.
        line: Option<usize>,
        /// Dotted path of the field at fault (`correlation.timespan`), or empty.
        field: String,
        message: String,
    },
    #[error("{}: no rule files (*.yml, *.yaml)", dir.display())]
    NoRules { dir: PathBuf },
}

fn located(origin: &str, line: Option<usize>, field: &str, message: &str) -> String {
    let mut s = origin.to_string();
    if let Some(l) = line {
        s.push_str(&format!(":{l}"));
    }
    if !field.is_empty() {
        s.push_str(&format!(": {field}"));
    }
    s.push_str(&format!(": {message}"));
    s
}

impl RuleError {
    fn invalid(origin: &str, text: &str, field: &str, message: impl Into<String>) -> RuleError {
        let segs: Vec<&str> = field.split('.').filter(|s| !s.is_empty()).collect();
        RuleError::Invalid {
            origin: origin.to_string(),
            line: locate(text, &segs),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// From the YAML library's error: its line, and the field path it prefixes to the
    /// message (`correlation.timespan: ...`), split apart.
    fn from_yaml(origin: &str, text: &str, e: &serde_norway::Error) -> RuleError {
        let mut msg = e.to_string();
        let mut line = e.location().map(|l| l.line());
        if let Some(l) = e.location() {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(m) = msg.strip_suffix(&suffix) {
                msg = m.to_string();
            }
        }
        let mut field = String::new();
        if let Some((p, rest)) = msg.split_once(": ") {
            let is_path = !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-[]".contains(c));
            if is_path {
                field = p.to_string();
                msg = rest.to_string();
            }
        }
        // `unknown field `x`` / `missing field `x``: the field is x, under the path.
        for prefix in ["unknown field `", "missing field `", "duplicate field `"] {
            if let Some(name) = msg.strip_prefix(prefix).and_then(|r| r.split('`').next()) {
                field = if field.is_empty() {
                    name.to_string()
                } else {
                    format!("{field}.{name}")
                };
                if !prefix.starts_with("missing") {
                    let segs: Vec<&str> = field.split('.').collect();
                    line = locate_exact(text, &segs).or(line);
                }
            }
        }
        if field.is_empty() && line.is_some() && !msg.starts_with("invalid type") {
            msg = format!("invalid YAML: {msg}");
        }
        RuleError::Invalid {
            origin: origin.to_string(),
            line,
            field,
            message: msg,
        }
    }
}

/// The 1-based line of the key at `path` in block-style YAML, or of the deepest parent
/// found. Best effort: flow-style mappings (`{a: 1}`) are not searched into.
fn locate(text: &str, path: &[&str]) -> Option<usize> {
    locate_inner(text, path, true)
}

/// Like [`locate`], but `None` unless the whole path is found.
fn locate_exact(text: &str, path: &[&str]) -> Option<usize> {
    locate_inner(text, path, false)
}

fn locate_inner(text: &str, path: &[&str], partial: bool) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for seg in path {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            let key = trimmed.trim_start_matches(['"', '\'']);
            if key
                .strip_prefix(seg)
                .is_some_and(|r| r.trim_start_matches(['"', '\'']).starts_with(':'))
            {
                hit = Some((i, indent));
                break;
            }
        }
        match hit {
            Some((i, indent)) => {
                found = Some(i + 1);
                start = i + 1;
                parent_indent = Some(indent);
            }
            None if partial => return found,
            None => return None,
        }
    }
    found
}

// ---------------------------------------------------------------------------------
// Size and depth, before parsing.

fn too_large(origin: &str, bytes: u64) -> RuleError {
    RuleError::Invalid {
        origin: origin.to_string(),
        line: None,
        field: String::new(),
        message: format!(
            "{bytes} bytes: larger than the {MAX_RULE_FILE_BYTES} bytes (1 MiB) a rule file may have; refused before parsing"
        ),
    }
}

/// Refuses, before any parsing, text over [`MAX_RULE_FILE_BYTES`] or nested deeper
/// than [`MAX_RULE_DEPTH`].
fn check_shape(origin: &str, text: &str) -> Result<(), RuleError> {
    if text.len() as u64 > MAX_RULE_FILE_BYTES {
        return Err(too_large(origin, text.len() as u64));
    }
    if let Some(line) = first_line_too_deep(text, MAX_RULE_DEPTH) {
        return Err(RuleError::Invalid {
            origin: origin.to_string(),
            line: Some(line),
            field: String::new(),
            message: format!("nested deeper than {MAX_RULE_DEPTH} levels; refused before parsing"),
        });
    }
    Ok(())
}

/// The 1-based line where the YAML nesting first passes `max`, counted cheaply on the
/// raw text (one pass, no allocation): open indentation levels, `- ` entries starting
/// the line, and open `[`/`{` (outside quoted scalars and comments; block scalars
/// `|`/`>` are skipped). An estimate that never undercounts brackets a parser would
/// nest on, which is what makes parsing slow.
fn first_line_too_deep(text: &str, max: usize) -> Option<usize> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<u8> = None;
    // The indentation of the line that opened a block scalar.
    let mut block_scalar: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let body = line.trim_start_matches(' ');
        let indent = line.len() - body.len();
        let blank = body.trim().is_empty() || body.starts_with('#');
        if let Some(parent) = block_scalar {
            if blank || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        let mut rest = body;
        let mut dashes = 0;
        if flow == 0 && quote.is_none() {
            if blank {
                continue;
            }
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
            while let Some(r) =
                rest.strip_prefix("- ")
                    .or(if rest == "-" { Some("") } else { None })
            {
                dashes += 1;
                rest = r.trim_start_matches(' ');
            }
        }
        let mut deepest = flow;
        let mut prev: Option<u8> = None;
        let bytes = rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(b'"') if b == b'\\' => i += 1,
                Some(b'\'') if b == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 1,
                Some(q) if b == q => {
                    quote = None;
                    prev = Some(b);
                }
                Some(_) => {}
                None => match b {
                    b'#' if i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t' => break,
                    b'"' | b'\''
                        if matches!(prev, None | Some(b':' | b',' | b'[' | b'{' | b'-' | b'?')) =>
                    {
                        quote = Some(b)
                    }
                    b'[' | b'{' => {
                        flow += 1;
                        deepest = deepest.max(flow);
                        prev = Some(b);
                    }
                    b']' | b'}' => {
                        flow = flow.saturating_sub(1);
                        prev = Some(b);
                    }
                    b' ' | b'\t' => {}
                    _ => prev = Some(b),
                },
            }
            i += 1;
        }
        if indents.len() + dashes + deepest > max {
            return Some(n + 1);
        }
        if flow == 0 && quote.is_none() && opens_block_scalar(rest) {
            block_scalar = Some(indent);
        }
    }
    None
}

/// Does this line end with a block scalar indicator (`|`, `>-`, `|2`…)?
fn opens_block_scalar(rest: &str) -> bool {
    let code = match rest.find(" #") {
        Some(i) => &rest[..i],
        None => rest,
    };
    let last = code.split_whitespace().last().unwrap_or("");
    let mut chars = last.chars();
    matches!(chars.next(), Some('|' | '>'))
        && last.len() <= 3
        && chars.all(|c| c == '-' || c == '+' || c.is_ascii_digit())
}

// ---------------------------------------------------------------------------------
// Validation.

/// Parses and validates one rule. `origin` names it in errors (a path, or
/// `builtin:<file>`).
pub fn parse_rule(origin: &str, text: &str) -> Result<Rule, RuleError> {
    check_shape(origin, text)?;
    let doc: RuleDoc =
        serde_norway::from_str(text).map_err(|e| RuleError::from_yaml(origin, text, &e))?;
    compile(origin, text, doc)
}

fn compile(origin: &str, text: &str, doc: RuleDoc) -> Result<Rule, RuleError> {
    let err = |field: &str, msg: String| RuleError::invalid(origin, text, field, msg);
    if doc.title.trim().is_empty() {
        return Err(err("title", "must not be empty".into()));
    }
    let named: Vec<(String, Selector)> = doc
        .selectors
        .map(|n| n.0.into_iter().map(|(k, s)| (k, s.build())).collect())
        .unwrap_or_default();
    let has_selectors = !named.is_empty();
    if named.len() > MAX_SELECTORS {
        return Err(err(
            "selectors",
            format!("{} named selectors: at most {MAX_SELECTORS}", named.len()),
        ));
    }
    let correlation = match doc.correlation {
        None => {
            if has_selectors {
                return Err(err(
                    "selectors",
                    "named selectors are only used by a temporal correlation".into(),
                ));
            }
            None
        }
        Some(c) => {
            let kind = match c.kind {
                CorrelationTypeDoc::EventCount => CorrelationType::EventCount,
                CorrelationTypeDoc::ValueCount => CorrelationType::ValueCount,
                CorrelationTypeDoc::Temporal => CorrelationType::Temporal,
            };
            let group_by = c.group_by.map(|g| g.0).unwrap_or_default();
            let cond_field = c.condition.as_ref().and_then(|c| c.field);
            let field = match (c.field.map(|f| f.0), cond_field) {
                (Some(_), Some(_)) => {
                    return Err(err(
                        "correlation.field",
                        "given twice: in `correlation` and in `condition`".into(),
                    ))
                }
                (a, b) => a.or(b),
            };
            let condition = match kind {
                CorrelationType::EventCount | CorrelationType::ValueCount => {
                    if has_selectors {
                        return Err(err(
                            "selectors",
                            "named selectors are only used by a temporal correlation".into(),
                        ));
                    }
                    c.condition.map(|c| c.condition).ok_or_else(|| {
                        err(
                            "correlation.condition",
                            format!(
                                "missing: {} needs e.g. `condition: {{gte: 3}}`",
                                kind.name()
                            ),
                        )
                    })?
                }
                CorrelationType::Temporal => {
                    if named.len() < 2 {
                        let at = if has_selectors {
                            "selectors"
                        } else {
                            "correlation.type"
                        };
                        return Err(err(
                            at,
                            "temporal needs at least two named selectors under `selectors`".into(),
                        ));
                    }
                    let n = named.len() as u64;
                    match c.condition {
                        None => Condition::at_least(n),
                        Some(c) if c.condition.min() > n => {
                            return Err(err(
                                "correlation.condition",
                                format!(
                                    "can never hold: {} but only {n} named selectors",
                                    c.condition
                                ),
                            ))
                        }
                        Some(c) => c.condition,
                    }
                }
            };
            match (kind, field) {
                (CorrelationType::ValueCount, None) => {
                    return Err(err(
                        "correlation.field",
                        "missing: value_count needs the `field` whose distinct values it counts"
                            .into(),
                    ))
                }
                (CorrelationType::ValueCount, Some(f)) if group_by.contains(&f) => {
                    return Err(err(
                        "correlation.field",
                        format!("{f} is also a group-by field: every group would count 1"),
                    ))
                }
                (CorrelationType::ValueCount, _) | (_, None) => {}
                (_, Some(_)) => {
                    return Err(err(
                        "correlation.field",
                        "only a value_count counts a field".into(),
                    ))
                }
            }
            Some(Correlation {
                kind,
                group_by,
                timespan: c.timespan.0,
                condition,
                field,
            })
        }
    };
    Ok(Rule {
        id: doc.id.0,
        title: doc.title.trim().to_string(),
        description: doc.description.trim().to_string(),
        level: doc.level,
        origin: origin.to_string(),
        selector: doc.selector.map(SelectorDoc::build).unwrap_or_default(),
        named,
        correlation,
    })
}

// ---------------------------------------------------------------------------------
// Directories and the shipped rules.

/// Loads every `*.yml` / `*.yaml` file directly in `dir` (not below it), in name
/// order. All errors are returned, not just the first; any error fails the load.
pub fn load_rules(dir: &Path) -> Result<Vec<Rule>, Vec<RuleError>> {
    let entries = std::fs::read_dir(dir).map_err(|source| {
        vec![RuleError::Read {
            path: dir.to_path_buf(),
            source,
        }]
    })?;
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => {
                let p = e.path();
                let is_rule = p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                    x.eq_ignore_ascii_case("yml") || x.eq_ignore_ascii_case("yaml")
                });
                if is_rule && p.is_file() {
                    paths.push(p);
                }
            }
            Err(source) => errors.push(RuleError::Read {
                path: dir.to_path_buf(),
                source,
            }),
        }
    }
    paths.sort();
    if paths.is_empty() && errors.is_empty() {
        return Err(vec![RuleError::NoRules {
            dir: dir.to_path_buf(),
        }]);
    }
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        match read_capped(&path) {
            Ok(text) => files.push((path.display().to_string(), text)),
            Err(e) => errors.push(e),
        }
    }
    let (rules, more) = compile_all(&files);
    errors.extend(more);
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// Reads a rule file, refusing one over [`MAX_RULE_FILE_BYTES`] without reading it
/// all.
fn read_capped(path: &Path) -> Result<String, RuleError> {
    use std::io::Read;
    let read = |source| RuleError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let len = file.metadata().map_err(read)?.len();
    if len > MAX_RULE_FILE_BYTES {
        return Err(too_large(&path.display().to_string(), len));
    }
    let mut text = String::new();
    file.take(MAX_RULE_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_RULE_FILE_BYTES {
        return Err(too_large(&path.display().to_string(), text.len() as u64));
    }
    Ok(text)
}

/// Parses `(origin, text)` pairs; checks that ids are unique.
fn compile_all(files: &[(String, String)]) -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (origin, text) in files {
        match parse_rule(origin, text) {
            Ok(rule) if !seen.insert(rule.id.clone()) => {
                let first = rules
                    .iter()
                    .find(|r| r.id == rule.id)
                    .map(|r| r.origin.as_str())
                    .unwrap_or("another rule");
                errors.push(RuleError::invalid(
                    origin,
                    text,
                    "id",
                    format!("duplicate id {}: also used by {first}", rule.id),
                ));
            }
            Ok(rule) => rules.push(rule),
            Err(e) => errors.push(e),
        }
    }
    (rules, errors)
}

/// The shipped rules (`rules/*.yml`), compiled into the binary.
const SHIPPED: [(&str, &str); 5] = [
    (
        "any-file-hash.yml",
        include_str!("../../rules/any-file-hash.yml"),
    ),
    (
        "dns-and-connection-same-event.yml",
        include_str!("../../rules/dns-and-connection-same-event.yml"),
    ),
    (
        "indicator-in-two-log-sources.yml",
        include_str!("../../rules/indicator-in-two-log-sources.yml"),
    ),
    (
        "indicator-repeated-on-host.yml",
        include_str!("../../rules/indicator-repeated-on-host.yml"),
    ),
    (
        "intel-event-several-indicators.yml",
        include_str!("../../rules/intel-event-several-indicators.yml"),
    ),
];

/// The names of the shipped rule files, as embedded.
pub fn shipped_rule_files() -> impl Iterator<Item = &'static str> {
    SHIPPED.iter().map(|(name, _)| *name)
}

/// The shipped rules, so the binary works from any directory. Their origin reads
/// `builtin:<file>`.
pub fn default_rules() -> Vec<Rule> {
    let files: Vec<(String, String)> = SHIPPED
        .iter()
        .map(|(name, text)| (format!("builtin:{name}"), text.to_string()))
        .collect();
    let (rules, errors) = compile_all(&files);
    // The shipped files are compile-time data, checked by `shipped_rules_are_valid`.
    assert!(errors.is_empty(), "shipped rules are valid: {errors:?}");
    rules
}

/// What `tripline rules check` prints for a valid rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSummary {
    pub origin: String,
    pub id: String,
    pub title: String,
    pub level: Level,
    /// `event_count gte 3 by indicator, host within 1h`, or `confirms every match`.
    pub summary: String,
}

impl fmt::Display for RuleSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} [{}] {}: {}",
            self.origin, self.id, self.level, self.title, self.summary
        )
    }
}

impl From<&Rule> for RuleSummary {
    fn from(r: &Rule) -> RuleSummary {
        RuleSummary {
            origin: r.origin.clone(),
            id: r.id.clone(),
            title: r.title.clone(),
            level: r.level,
            summary: r.summary(),
        }
    }
}

/// Validates every rule in `dir` (`tripline rules check [DIR]`): a summary per rule,
/// or every error found.
pub fn check_rules(dir: &Path) -> Result<Vec<RuleSummary>, Vec<RuleError>> {
    load_rules(dir).map(|rules| rules.iter().map(RuleSummary::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_are_valid() {
        let rules = default_rules();
        assert_eq!(rules.len(), SHIPPED.len());
        assert!(rules.iter().all(|r| r.origin.starts_with("builtin:")));
    }

    #[test]
    fn shipped_rules_match_the_rules_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = shipped_rule_files().collect();
        assert_eq!(on_disk, embedded, "embed every file of rules/ in SHIPPED");
        let from_disk =
            load_rules(&dir).map(|r| r.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
        let builtin: Vec<String> = default_rules().iter().map(|r| r.id.clone()).collect();
        assert_eq!(from_disk.ok(), Some(builtin));
    }

    #[test]
    fn nesting_is_counted_on_the_raw_text() {
        for (_, text) in SHIPPED {
            assert_eq!(first_line_too_deep(text, 8), None, "{text}");
        }
        let deep_flow = format!("title: x\nmatch: {}{}\n", "[".repeat(70), "]".repeat(70));
        assert_eq!(first_line_too_deep(&deep_flow, MAX_RULE_DEPTH), Some(2));
        let mut deep_block = String::from("a:\n");
        for d in 1..70 {
            deep_block.push_str(&format!("{}k{d}:\n", "  ".repeat(d)));
        }
        assert!(first_line_too_deep(&deep_block, MAX_RULE_DEPTH).is_some());
        let dashes = format!("a:\n{}x\n", "- ".repeat(70));
        assert_eq!(first_line_too_deep(&dashes, MAX_RULE_DEPTH), Some(2));
        // Brackets in quotes, comments and block scalars do not nest.
        let quoted = format!(
            "title: \"{}\"\nid: '{}' # {}\ndescription: |\n  {}\n  more\nlevel: low\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100),
            "[".repeat(100)
        );
        assert_eq!(first_line_too_deep(&quoted, MAX_RULE_DEPTH), None);
        // An apostrophe inside a plain scalar opens no quote.
        let plain = format!("title: it's {}\n", "[".repeat(70));
        assert!(first_line_too_deep(&plain, MAX_RULE_DEPTH).is_some());
    }

    #[test]
    fn locate_finds_nested_keys() {
        let text =
            "title: x\ncorrelation:\n  type: temporal\n  # note\n  timespan: 1h\nlevel: low\n";
        assert_eq!(locate(text, &["correlation", "timespan"]), Some(5));
        assert_eq!(locate(text, &["correlation", "condition"]), Some(2));
        assert_eq!(locate_exact(text, &["correlation", "condition"]), None);
        assert_eq!(locate(text, &["level"]), Some(6));
        assert_eq!(locate(text, &["nothing"]), None);
    }
}
