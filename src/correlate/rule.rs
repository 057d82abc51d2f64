//! The compiled correlation rule: what a rule selects, how it groups, and when it
//! confirms. Parsing and validation live in `correlate/load.rs`; the windows that
//! apply rules over time live in `correlate/engine.rs`.
//!
//! Vocabulary (Sigma correlation rules): a rule has a `match` selector, optional named
//! selectors (temporal rules), and an optional `correlation` with a `type`
//! ([`CorrelationType`]), `group-by` fields ([`Field`]), a `timespan` ([`Timespan`])
//! and a `condition` ([`Condition`]). A rule without a correlation confirms every
//! observation it selects.
//!
//! Invariants: a compiled [`Rule`] is valid (every check in `load.rs` passed), so the
//! engine never re-validates. Selectors are pure functions of one observation.
//!
//! Costs: [`Selector::select`] is O(provenances × patterns) glob tests when the
//! selector filters on sources, tags or categories, else O(1); field values are
//! computed per observation and rule (a few small allocations).

use std::fmt;

use chrono::TimeDelta;

use super::{Observation, Provenance};
use crate::intel::Kind;

/// Sigma's rule levels, least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field of an observation that rules group by (`group-by`) or count (`field` of a
/// `value_count`). Names follow ECS where ECS has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The indicator in its canonical form.
    Indicator,
    /// The observable as it appeared in the log (`a.b.evil.com` for `evil.com`).
    Atomic,
    /// The indicator's kind name (`domain`, `sha256`).
    IndicatorType,
    /// Every intel event UUID the (selected) provenances carry: multi-valued.
    IntelEvent,
    /// Every intel source the (selected) provenances come from: multi-valued.
    IntelSource,
    Host,
    SourceIp,
    DestinationIp,
    LogSource,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Indicator,
        Field::Atomic,
        Field::IndicatorType,
        Field::IntelEvent,
        Field::IntelSource,
        Field::Host,
        Field::SourceIp,
        Field::DestinationIp,
        Field::LogSource,
    ];

    /// The fields a rule may group by.
    pub const GROUP_BY: [Field; 6] = [
        Field::Indicator,
        Field::IntelEvent,
        Field::Host,
        Field::SourceIp,
        Field::DestinationIp,
        Field::LogSource,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Indicator => "indicator",
            Field::Atomic => "indicator.atomic",
            Field::IndicatorType => "indicator.type",
            Field::IntelEvent => "intel.event",
            Field::IntelSource => "intel.source",
            Field::Host => "host",
            Field::SourceIp => "source.ip",
            Field::DestinationIp => "destination.ip",
            Field::LogSource => "log.source",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The values of this field in `obs`, restricted to the provenances in `provs`
    /// for the intel fields. Empty when the observation has none (no host, no event
    /// UUID): such an observation is not counted by a rule that needs the field.
    /// Multi-valued fields come back sorted and without duplicates.
    pub fn values(self, obs: &Observation, provs: &ProvSet) -> Vec<String> {
        let one = |v: Option<String>| v.into_iter().collect();
        match self {
            Field::Indicator => vec![obs.indicator.clone()],
            Field::Atomic => vec![obs.atomic.clone()],
            Field::IndicatorType => vec![obs.kind.name().to_string()],
            Field::Host => one(obs.host.clone()),
            Field::SourceIp => one(obs.source_ip.map(|ip| ip.to_string())),
            Field::DestinationIp => one(obs.destination_ip.map(|ip| ip.to_string())),
            Field::LogSource => vec![obs.log_source.clone()],
            Field::IntelEvent | Field::IntelSource => {
                let mut v: Vec<String> = provs
                    .iter(&obs.provenance)
                    .filter_map(|p| match self {
                        Field::IntelEvent => p.event_uuid.clone(),
                        _ => Some(p.source.clone()),
                    })
                    .collect();
                v.sort();
                v.dedup();
                v
            }
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A window length, written as Sigma writes it: a positive integer and one unit of
/// `s`, `m`, `h`, `d` or `w` (`30s`, `10m`, `1h`, `24h`, `7d`). At most 366 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timespan {
    secs: i64,
}

impl Timespan {
    /// The longest timespan accepted: a year and a day.
    pub const MAX_SECS: i64 = 366 * 86_400;

    pub fn parse(s: &str) -> Result<Timespan, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(format!(
                "invalid timespan {s:?}: expected a number and a unit (s, m, h, d, w), e.g. `10m`"
            ));
        }
        let mult: i64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "" => {
                return Err(format!(
                    "invalid timespan {s:?}: missing unit (s, m, h, d, w)"
                ))
            }
            _ => {
                return Err(format!(
                    "invalid timespan {s:?}: unknown unit {unit:?} (use s, m, h, d or w)"
                ))
            }
        };
        let n: i64 = num
            .parse()
            .map_err(|_| format!("invalid timespan {s:?}: number too large"))?;
        let secs = n.checked_mul(mult).filter(|&x| x <= Timespan::MAX_SECS);
        match secs {
            Some(0) => Err(format!("invalid timespan {s:?}: must be greater than zero")),
            Some(secs) => Ok(Timespan { secs }),
            None => Err(format!("invalid timespan {s:?}: longer than 366d")),
        }
    }

    pub fn from_secs(secs: i64) -> Option<Timespan> {
        (secs > 0 && secs <= Timespan::MAX_SECS).then_some(Timespan { secs })
    }

    pub fn secs(self) -> i64 {
        self.secs
    }

    pub fn delta(self) -> TimeDelta {
        TimeDelta::seconds(self.secs)
    }
}

impl fmt::Display for Timespan {
    /// The largest unit that divides it: `3600` seconds shows as `1h`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, mult) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3_600), ("m", 60)] {
            if self.secs % mult == 0 {
                return write!(f, "{}{unit}", self.secs / mult);
            }
        }
        write!(f, "{}s", self.secs)
    }
}

/// A comparison operator of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Gte,
    Gt,
    Eq,
    Lte,
    Lt,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Gte => "gte",
            Op::Gt => "gt",
            Op::Eq => "eq",
            Op::Lte => "lte",
            Op::Lt => "lt",
        }
    }

    pub fn from_name(s: &str) -> Option<Op> {
        Some(match s {
            "gte" | ">=" => Op::Gte,
            "gt" | ">" => Op::Gt,
            "eq" | "==" | "=" => Op::Eq,
            "lte" | "<=" => Op::Lte,
            "lt" | "<" => Op::Lt,
            _ => return None,
        })
    }
}

/// The largest count a condition may name: it bounds what one group holds.
pub const MAX_CONDITION_COUNT: u64 = 10_000;

/// A count condition, normalised to an inclusive range `min..=max`.
///
/// Lower bounds alone (`gte`, `gt`) are *immediate*: the rule confirms as soon as the
/// count in the window reaches `min`. Any upper bound (`eq`, `lte`, `lt`) makes the
/// condition *deferred*: a count can only be known to stay under a bound once the
/// window is over, so the engine judges it when the window closes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Condition {
    /// The operators as written, for display.
    ops: Vec<(Op, u64)>,
    min: u64,
    max: Option<u64>,
}

impl Condition {
    /// Builds a condition from its operators. At most one lower bound (`gte`/`gt`) and
    /// one upper bound (`lte`/`lt`), or `eq` alone; the range must be satisfiable by a
    /// count of at least 1 and name no count over [`MAX_CONDITION_COUNT`].
    pub fn new(ops: &[(Op, u64)]) -> Result<Condition, String> {
        if ops.is_empty() {
            return Err("empty condition: give one of gte, gt, eq, lte, lt".into());
        }
        let mut min: Option<u64> = None;
        let mut max: Option<u64> = None;
        for &(op, n) in ops {
            if n > MAX_CONDITION_COUNT {
                return Err(format!(
                    "{}: {n} is larger than the maximum of {MAX_CONDITION_COUNT}",
                    op.name()
                ));
            }
            let (lo, hi) = match op {
                Op::Gte => (Some(n), None),
                Op::Gt => (Some(n + 1), None),
                Op::Eq => (Some(n), Some(n)),
                Op::Lte => (None, Some(n)),
                Op::Lt => (None, Some(n.checked_sub(1).ok_or("lt 0 can never hold")?)),
            };
            if op == Op::Eq && ops.len() > 1 {
                return Err("eq cannot be combined with another operator".into());
            }
            if let Some(lo) = lo {
                if lo == 0 && op == Op::Eq {
                    return Err("eq 0 can never hold: a window holds at least one match".into());
                }
                if lo == 0 {
                    return Err("gte 0 always holds: use gte 1".into());
                }
                if min.replace(lo).is_some() {
                    return Err("two lower bounds (gte, gt): give one".into());
                }
            }
            if let Some(hi) = hi {
                if max.replace(hi).is_some() {
                    return Err("two upper bounds (lte, lt): give one".into());
                }
            }
        }
        let min = min.unwrap_or(1);
        if let Some(max) = max {
            if max < min {
                return Err(format!(
                    "can never hold: needs a count of at least {min} and at most {max}"
                ));
            }
        }
        Ok(Condition {
            ops: ops.to_vec(),
            min,
            max,
        })
    }

    /// `gte n`.
    pub fn at_least(n: u64) -> Condition {
        Condition {
            ops: vec![(Op::Gte, n)],
            min: n.max(1),
            max: None,
        }
    }

    /// The smallest count that satisfies it (at least 1).
    pub fn min(&self) -> u64 {
        self.min
    }

    /// The largest count that satisfies it, when bounded.
    pub fn max(&self) -> Option<u64> {
        self.max
    }

    /// Judged when the window closes (it has an upper bound).
    pub fn is_deferred(&self) -> bool {
        self.max.is_some()
    }

    pub fn holds(&self, count: u64) -> bool {
        count >= self.min && self.max.is_none_or(|m| count <= m)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (op, n)) in self.ops.iter().enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            write!(f, "{} {n}", op.name())?;
        }
        Ok(())
    }
}

/// What a correlation counts in a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CorrelationType {
    /// Observations.
    EventCount,
    /// Distinct values of a field.
    ValueCount,
    /// Distinct named selectors with at least one observation.
    Temporal,
}

impl CorrelationType {
    pub fn name(self) -> &'static str {
        match self {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::Temporal => "temporal",
        }
    }
}

/// A rule's correlation: count what, grouped how, over which window, until when.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Correlation {
    pub kind: CorrelationType,
    /// Empty: one group for the whole rule.
    pub group_by: Vec<Field>,
    pub timespan: Timespan,
    pub condition: Condition,
    /// The counted field (`value_count` only).
    pub field: Option<Field>,
}

/// A set of glob patterns, any of which may match (case-insensitive).
#[derive(Clone, Debug, Default)]
pub struct Globs(Vec<glob::Pattern>);

impl Globs {
    const OPTIONS: glob::MatchOptions = glob::MatchOptions {
        case_sensitive: false,
        require_literal_separator: false,
        require_literal_leading_dot: false,
    };

    pub fn new(patterns: &[String]) -> Result<Globs, String> {
        patterns
            .iter()
            .map(|p| glob::Pattern::new(p).map_err(|e| format!("invalid pattern {p:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Globs)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, s: &str) -> bool {
        self.0.iter().any(|p| p.matches_with(s, Self::OPTIONS))
    }

    pub fn as_strs(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|p| p.as_str())
    }
}

/// Which of an observation's provenances a selector accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProvSet {
    /// The selector does not look at provenance: all of them.
    All,
    /// Indices into `Observation::provenance`, ascending.
    Some(Vec<usize>),
}

impl ProvSet {
    pub fn iter<'a>(&'a self, provs: &'a [Provenance]) -> impl Iterator<Item = &'a Provenance> {
        provs
            .iter()
            .enumerate()
            .filter_map(move |(i, p)| match self {
                ProvSet::All => Some(p),
                ProvSet::Some(ix) => ix.binary_search(&i).is_ok().then_some(p),
            })
    }

    fn intersect(self, other: &ProvSet) -> ProvSet {
        match (self, other) {
            (ProvSet::All, o) => o.clone(),
            (s, ProvSet::All) => s,
            (ProvSet::Some(a), ProvSet::Some(b)) => ProvSet::Some(
                a.into_iter()
                    .filter(|i| b.binary_search(i).is_ok())
                    .collect(),
            ),
        }
    }

    fn union(self, other: &ProvSet) -> ProvSet {
        match (self, other) {
            (ProvSet::All, _) | (_, ProvSet::All) => ProvSet::All,
            (ProvSet::Some(mut a), ProvSet::Some(b)) => {
                a.extend_from_slice(b);
                a.sort_unstable();
                a.dedup();
                ProvSet::Some(a)
            }
        }
    }
}

/// Which observations a rule (or one of its named selectors) looks at. Every given
/// criterion must hold (AND); within one criterion any listed value may match (OR).
/// `sources`, `tags` and `categories` must hold on the *same* provenance.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    /// Bit `k` set: kind with discriminant `k` selected. `None`: any kind.
    pub kinds: Option<u16>,
    pub sources: Globs,
    pub tags: Globs,
    pub categories: Globs,
    pub log_sources: Globs,
}

impl Selector {
    /// The kinds a name in `types` stands for: a [`Kind`] name, `hash` (every hash
    /// kind) or `ip` (IPv4 and IPv6).
    pub fn kinds_named(name: &str) -> Option<Vec<Kind>> {
        let n = name.trim().to_ascii_lowercase();
        match n.as_str() {
            "hash" => Some(Kind::ALL.into_iter().filter(|k| k.is_hash()).collect()),
            "ip" => Some(vec![Kind::Ipv4, Kind::Ipv6]),
            _ => Kind::ALL
                .into_iter()
                .find(|k| k.name() == n)
                .map(|k| vec![k]),
        }
    }

    fn looks_at_provenance(&self) -> bool {
        !(self.sources.is_empty() && self.tags.is_empty() && self.categories.is_empty())
    }

    fn accepts_provenance(&self, p: &Provenance) -> bool {
        (self.sources.is_empty() || self.sources.matches(&p.source))
            && (self.tags.is_empty() || p.tags.iter().any(|t| self.tags.matches(t)))
            && (self.categories.is_empty()
                || p.category
                    .as_deref()
                    .is_some_and(|c| self.categories.matches(c)))
    }

    /// `None` when the observation is not selected; else the provenances that were.
    pub fn select(&self, obs: &Observation) -> Option<ProvSet> {
        if self.kinds.is_some_and(|m| m & (1 << obs.kind as u16) == 0) {
            return None;
        }
        if !self.log_sources.is_empty() && !self.log_sources.matches(&obs.log_source) {
            return None;
        }
        if !self.looks_at_provenance() {
            return Some(ProvSet::All);
        }
        let ix: Vec<usize> = (0..obs.provenance.len())
            .filter(|&i| self.accepts_provenance(&obs.provenance[i]))
            .collect();
        (!ix.is_empty()).then_some(ProvSet::Some(ix))
    }
}

/// What a rule selected in one observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    pub provs: ProvSet,
    /// Names of the named selectors that accepted it (temporal rules), in rule order.
    pub selectors: Vec<String>,
}

/// A compiled, valid rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub level: Level,
    /// Where it was read from: a path, or `builtin:<file>` for a shipped rule.
    pub origin: String,
    pub selector: Selector,
    /// Named selectors, in the order written (temporal rules only).
    pub named: Vec<(String, Selector)>,
    pub correlation: Option<Correlation>,
}

impl Rule {
    /// Does the rule look at `obs`, and through which provenances and selectors?
    pub fn select(&self, obs: &Observation) -> Option<Selected> {
        let base = self.selector.select(obs)?;
        if self.named.is_empty() {
            return Some(Selected {
                provs: base,
                selectors: Vec::new(),
            });
        }
        let mut names = Vec::new();
        let mut provs: Option<ProvSet> = None;
        for (name, sel) in &self.named {
            if let Some(p) = sel.select(obs) {
                names.push(name.clone());
                provs = Some(match provs {
                    None => p,
                    Some(acc) => acc.union(&p),
                });
            }
        }
        let provs = base.intersect(&provs?);
        if matches!(&provs, ProvSet::Some(v) if v.is_empty()) {
            return None;
        }
        Some(Selected {
            provs,
            selectors: names,
        })
    }

    /// A stable digest of what decides this rule's grouping and counting. State saved
    /// under one fingerprint is not restored into a rule with another.
    pub fn fingerprint(&self) -> String {
        let desc = match &self.correlation {
            None => "none".to_string(),
            Some(c) => {
                let names: Vec<&str> = self.named.iter().map(|(n, _)| n.as_str()).collect();
                format!(
                    "{}|{:?}|{}|{}|{:?}|{:?}",
                    c.kind.name(),
                    c.group_by,
                    c.timespan.secs(),
                    c.condition,
                    c.field,
                    names
                )
            }
        };
        // FNV-1a, 64 bits: stable across Rust versions (unlike `DefaultHasher`).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in desc.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// One line for `tripline rules check`: `event_count gte 3 by indicator, host
    /// within 1h`, or `every match`.
    pub fn summary(&self) -> String {
        match &self.correlation {
            None => "confirms every match".to_string(),
            Some(c) => {
                let mut s = c.kind.name().to_string();
                if let Some(f) = c.field {
                    s.push_str(&format!(" of {f}"));
                }
                if c.kind == CorrelationType::Temporal {
                    let names: Vec<&str> = self.named.iter().map(|(n, _)| n.as_str()).collect();
                    s.push_str(&format!(" [{}]", names.join(", ")));
                }
                s.push_str(&format!(" {}", c.condition));
                if !c.group_by.is_empty() {
                    let g: Vec<&str> = c.group_by.iter().map(|f| f.name()).collect();
                    s.push_str(&format!(" by {}", g.join(", ")));
                }
                s.push_str(&format!(" within {}", c.timespan));
                s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans() {
        let ok = [
            ("30s", 30),
            ("10m", 600),
            ("1h", 3600),
            ("24h", 86_400),
            ("7d", 604_800),
            ("2w", 1_209_600),
        ];
        for (s, secs) in ok {
            assert_eq!(Timespan::parse(s).map(|t| t.secs()), Ok(secs), "{s}");
        }
        for s in [
            "",
            "h",
            "10",
            "0m",
            "1y",
            "1.5h",
            "-1h",
            "400d",
            "99999999999999999999s",
        ] {
            assert!(Timespan::parse(s).is_err(), "{s}");
        }
        assert_eq!(
            Timespan::parse("60m").map(|t| t.to_string()),
            Ok("1h".into())
        );
        assert_eq!(
            Timespan::parse("90s").map(|t| t.to_string()),
            Ok("90s".into())
        );
    }

    #[test]
    fn conditions() {
        let c = |ops: &[(Op, u64)]| Condition::new(ops).map(|c| (c.min(), c.max()));
        assert_eq!(c(&[(Op::Gte, 3)]), Ok((3, None)));
        assert_eq!(c(&[(Op::Gt, 2)]), Ok((3, None)));
        assert_eq!(c(&[(Op::Eq, 2)]), Ok((2, Some(2))));
        assert_eq!(c(&[(Op::Lte, 5)]), Ok((1, Some(5))));
        assert_eq!(c(&[(Op::Lt, 5)]), Ok((1, Some(4))));
        assert_eq!(c(&[(Op::Gte, 2), (Op::Lt, 5)]), Ok((2, Some(4))));
        assert!(c(&[]).is_err());
        assert!(c(&[(Op::Lt, 0)]).is_err());
        assert!(c(&[(Op::Gte, 0)]).is_err());
        assert!(c(&[(Op::Lt, 1)]).is_err());
        assert!(c(&[(Op::Gte, 5), (Op::Lte, 3)]).is_err());
        assert!(c(&[(Op::Gte, 5), (Op::Gt, 3)]).is_err());
        assert!(c(&[(Op::Eq, 5), (Op::Gt, 3)]).is_err());
        assert!(c(&[(Op::Gte, MAX_CONDITION_COUNT + 1)]).is_err());
    }

    #[test]
    fn kind_groups() {
        assert_eq!(Selector::kinds_named("hash").map(|v| v.len()), Some(6));
        assert_eq!(
            Selector::kinds_named("ip"),
            Some(vec![Kind::Ipv4, Kind::Ipv6])
        );
        assert_eq!(Selector::kinds_named("SHA256"), Some(vec![Kind::Sha256]));
        assert_eq!(Selector::kinds_named("ipv5"), None);
    }

    #[test]
    fn field_names_round_trip() {
        for f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(f));
        }
    }
}
