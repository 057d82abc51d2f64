//! The correlation engine: applies compiled [`Rule`]s to a stream of
//! [`Observation`]s and emits [`Confirmation`]s. Owns the windows (one per rule and
//! group key), their expiry, the cap on their number, and the counters behind
//! [`Engine::stats`]. Persistence of this state is in `correlate/state.rs`.
//!
//! # Time
//! Windows run in the observation's own time (`Observation::time`, the event time in
//! hunts and in the sidecar alike). Nothing here reads a clock.
//!
//! # Windows (rules whose condition is a lower bound: `gte`, `gt`)
//! A group's window is the last timespan of its observations: every stored
//! observation `o` with `newest - timespan <= o.time <= newest`, where `newest` is the
//! newest observation time of the group. **Both ends are inclusive**: two observations
//! exactly one timespan apart are in one window; one nanosecond more and they are not.
//! The condition is checked each time an observation lands; the rule confirms as soon
//! as it holds.
//!
//! **Re-firing.** When a group confirms, its observations go into the confirmation and
//! are dropped from the window. Let `T` be the confirmation's `last_seen` (the newest
//! observation in the confirming window). Until `T + timespan` **inclusive**, further
//! observations of that group are counted as `suppressed` and not stored; the first
//! observation after `T + timespan` starts a new, empty window. So a group confirms at
//! most once per timespan, however hot the indicator.
//!
//! **Disorder.** An observation older than its group's newest is placed in time order
//! and counted, as long as it is no more than one timespan older than the newest
//! (inclusive); older ones are `late`: counted, not used by that rule. So disorder of
//! up to one timespan per group (parallel chunks, a few files interleaved) gives the
//! same confirmations as ordered input. Batch hunts whose files may lie further apart
//! in time (read in any order) pass all their observations to
//! [`Engine::observe_batch`], which sorts them first and is exact.
//!
//! # Deferred windows (conditions with an upper bound: `eq`, `lte`, `lt`)
//! "At most N" is only known when the window is over, so these windows are tumbling:
//! a window opens at the group's first observation `S` and covers `S..=S + timespan`.
//! An observation earlier than `S` moves `S` back if the window still holds every
//! stored observation, else it is late. The window closes, and the condition is
//! judged, when an observation of the group arrives after `S + timespan`, at
//! [`Engine::flush`] with a time after it, or at [`Engine::finish`]. Observations at
//! or before a closed window's end are late. A batch hunt calls `finish` at the end of
//! its input; the sidecar calls `flush` on a timer.
//!
//! # Rules without a correlation
//! Stateless: every observation they select is a confirmation of its own (Sigma's
//! plain detection). Give the rule an `event_count` with `gte: 1` and a group-by to
//! confirm once per group and timespan instead.
//!
//! # Grouping
//! The group key is the rule and the values of its `group-by` fields. A multi-valued
//! field (`intel.event`: every event UUID among the provenances the rule selected)
//! puts the observation in one group per value. An observation with no value for a
//! group-by field (no host, no event UUID) or for the counted field is not counted by
//! that rule (`unkeyed`).
//!
//! # Bounds and costs
//! Groups are capped ([`EngineOptions::max_groups`], default 100 000); past the cap the
//! least recently touched group is evicted and counted (`evictions`). A group holds
//! fewer than the condition's count of observations (a lower-bound window confirms and
//! empties when it reaches it; a deferred one stops storing past its upper bound, and
//! `value_count`/`temporal` windows keep only the newest observation per distinct
//! value), and conditions are capped at [`super::rule::MAX_CONDITION_COUNT`].
//! [`Engine::flush`] drops groups whose windows and quiet periods have passed.
//!
//! `observe` costs O(rules × group keys) hash-map lookups and B-tree updates (the LRU
//! order), plus O(k) work on the k observations held by each touched group.
//! `flush` is O(groups).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::rule::{Correlation, CorrelationType, Rule};
use super::{Confirmation, Observation};

/// Engine settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// The most (rule, group key) windows held at once; at least 1.
    pub max_groups: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_groups: 100_000,
        }
    }
}

/// Counters and gauges of an engine, for metrics and the hunt summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Windows held now.
    pub live_groups: usize,
    /// Groups dropped because the cap was reached.
    pub evictions: u64,
    /// Groups dropped by [`Engine::flush`] because their time had passed.
    pub expired: u64,
    /// Observations too old for their group's window (see the module docs).
    pub late: u64,
    /// Observations in a group's quiet period after it confirmed.
    pub suppressed: u64,
    /// Observations a rule selected but could not group or count (missing field).
    pub unkeyed: u64,
    /// Confirmations by rule id (every rule listed, zeros included).
    pub confirmations: BTreeMap<String, u64>,
}

/// One observation held in a window.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) obs: Arc<Observation>,
    /// What it adds to the count: the counted field's values (`value_count`), the
    /// names of the selectors it matched (`temporal`), nothing (`event_count`).
    pub(super) keys: Vec<String>,
}

impl Entry {
    fn time(&self) -> DateTime<Utc> {
        self.obs.time
    }
}

/// The window of one rule and group key.
#[derive(Clone, Debug)]
pub(super) struct Group {
    pub(super) rule: usize,
    /// The group-by values, in the rule's `group-by` order.
    pub(super) values: Vec<String>,
    /// Position in the LRU order.
    pub(super) tick: u64,
    /// Newest observation time seen (stored or confirmed).
    pub(super) newest: Option<DateTime<Utc>>,
    /// Start of the open deferred window.
    pub(super) start: Option<DateTime<Utc>>,
    /// Observations at or before this time are suppressed (after a confirmation) or
    /// late (after a deferred window closed).
    pub(super) quiet_until: Option<DateTime<Utc>>,
    /// A deferred window passed its upper bound: it cannot confirm.
    pub(super) overflow: bool,
    /// Sorted by time; equal times in arrival order.
    pub(super) entries: Vec<Entry>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Counters {
    pub(super) evictions: u64,
    pub(super) expired: u64,
    pub(super) late: u64,
    pub(super) suppressed: u64,
    pub(super) unkeyed: u64,
    /// By rule index.
    pub(super) confirmations: Vec<u64>,
}

/// Applies rules to observations. See the module docs for the window semantics.
pub struct Engine {
    pub(super) rules: Vec<Rule>,
    pub(super) max_groups: usize,
    pub(super) groups: HashMap<Arc<str>, Group>,
    /// Least recently touched first.
    pub(super) lru: BTreeMap<u64, Arc<str>>,
    pub(super) tick: u64,
    pub(super) counters: Counters,
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Engine {
        Engine::with_options(rules, EngineOptions::default())
    }

    pub fn with_options(rules: Vec<Rule>, options: EngineOptions) -> Engine {
        let n = rules.len();
        Engine {
            rules,
            max_groups: options.max_groups.max(1),
            groups: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            counters: Counters {
                confirmations: vec![0; n],
                ..Counters::default()
            },
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Feeds one observation to every rule; returns the confirmations it completed,
    /// in rule order.
    pub fn observe(&mut self, obs: Observation) -> Vec<Confirmation> {
        let obs = Arc::new(obs);
        let mut out = Vec::new();
        for ri in 0..self.rules.len() {
            let Some(sel) = self.rules[ri].select(&obs) else {
                continue;
            };
            let Some(corr) = &self.rules[ri].correlation else {
                self.counters.confirmations[ri] += 1;
                out.push(confirmation(&self.rules[ri], &[], vec![obs.clone()]));
                continue;
            };
            let keys = match (corr.kind, corr.field) {
                (CorrelationType::ValueCount, Some(f)) => f.values(&obs, &sel.provs),
                (CorrelationType::Temporal, _) => sel.selectors.clone(),
                _ => Vec::new(),
            };
            if corr.kind != CorrelationType::EventCount && keys.is_empty() {
                self.counters.unkeyed += 1;
                continue;
            }
            // One group per combination of group-by values.
            let mut combos: Vec<Vec<String>> = vec![Vec::new()];
            for f in &corr.group_by {
                let vals = f.values(&obs, &sel.provs);
                combos = combos
                    .into_iter()
                    .flat_map(|c| {
                        vals.iter().map(move |v| {
                            let mut c = c.clone();
                            c.push(v.clone());
                            c
                        })
                    })
                    .collect();
            }
            if combos.is_empty() {
                self.counters.unkeyed += 1;
                continue;
            }
            for values in combos {
                self.touch(ri, values, &obs, &keys, &mut out);
            }
        }
        self.enforce_cap();
        out
    }

    /// A batch hunt's observations, correlated in time order whatever order they were
    /// read in (stable sort: equal times keep their input order), then
    /// [`Engine::finish`]. Exact where streaming tolerates disorder only up to one
    /// timespan. Costs the sort and the observations' memory (matches only, not lines).
    pub fn observe_batch(&mut self, mut observations: Vec<Observation>) -> Vec<Confirmation> {
        observations.sort_by_key(|o| o.time);
        let mut out = Vec::new();
        for o in observations {
            out.extend(self.observe(o));
        }
        out.extend(self.finish());
        out
    }

    /// Closes deferred windows that ended before `now` and drops groups whose window
    /// and quiet period have passed (counted as `expired`). The sidecar calls it on a
    /// timer with its event-time watermark. O(groups).
    pub fn flush(&mut self, now: DateTime<Utc>) -> Vec<Confirmation> {
        self.sweep(Some(now))
    }

    /// Closes every open deferred window (end of a batch hunt). Groups stay, so a
    /// snapshot taken after it still holds the lower-bound windows.
    pub fn finish(&mut self) -> Vec<Confirmation> {
        self.sweep(None)
    }

    /// Observations a rule selected but could not group or count (see
    /// [`EngineStats::unkeyed`]), without building the whole [`EngineStats`].
    pub fn unkeyed(&self) -> u64 {
        self.counters.unkeyed
    }

    /// Groups evicted at the `max_groups` cap so far.
    pub fn evictions(&self) -> u64 {
        self.counters.evictions
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.counters;
        EngineStats {
            live_groups: self.groups.len(),
            evictions: c.evictions,
            expired: c.expired,
            late: c.late,
            suppressed: c.suppressed,
            unkeyed: c.unkeyed,
            confirmations: self
                .rules
                .iter()
                .zip(&c.confirmations)
                .map(|(r, n)| (r.id.clone(), *n))
                .collect(),
        }
    }

    fn touch(
        &mut self,
        ri: usize,
        values: Vec<String>,
        obs: &Arc<Observation>,
        keys: &[String],
        out: &mut Vec<Confirmation>,
    ) {
        let key: Arc<str> = Arc::from(group_key(ri, &values));
        self.tick += 1;
        let tick = self.tick;
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            rule: ri,
            values,
            tick: 0,
            newest: None,
            start: None,
            quiet_until: None,
            overflow: false,
            entries: Vec::new(),
        });
        let old = std::mem::replace(&mut group.tick, tick);
        if old != 0 {
            self.lru.remove(&old);
        }
        self.lru.insert(tick, key);
        let rule = &self.rules[ri];
        let Some(corr) = &rule.correlation else {
            return;
        };
        let entry = Entry {
            obs: obs.clone(),
            keys: keys.to_vec(),
        };
        let confirmed = if corr.condition.is_deferred() {
            add_deferred(group, rule, corr, entry, &mut self.counters)
        } else {
            add_immediate(group, rule, corr, entry, &mut self.counters)
        };
        if let Some(c) = confirmed {
            self.counters.confirmations[ri] += 1;
            out.push(c);
        }
    }

    pub(super) fn enforce_cap(&mut self) {
        while self.groups.len() > self.max_groups {
            let Some((_, key)) = self.lru.pop_first() else {
                break;
            };
            self.groups.remove(&key);
            self.counters.evictions += 1;
        }
    }

    /// `Some(now)`: flush; `None`: finish.
    fn sweep(&mut self, now: Option<DateTime<Utc>>) -> Vec<Confirmation> {
        let mut out = Vec::new();
        let keys: Vec<Arc<str>> = self.lru.values().cloned().collect();
        for key in keys {
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            let rule = &self.rules[group.rule];
            let Some(corr) = &rule.correlation else {
                continue;
            };
            let span = corr.timespan.delta();
            if corr.condition.is_deferred() {
                let ended = group
                    .start
                    .is_some_and(|s| now.is_none_or(|now| s + span < now));
                if ended {
                    if let Some(c) = close(group, rule, corr) {
                        self.counters.confirmations[group.rule] += 1;
                        out.push(c);
                    }
                }
            }
            let Some(now) = now else {
                continue;
            };
            let passed = |t: Option<DateTime<Utc>>| t.is_none_or(|t| t < now);
            let idle = group.start.is_none()
                && passed(group.newest.map(|n| n + span))
                && passed(group.quiet_until);
            if idle {
                let tick = group.tick;
                self.groups.remove(&key);
                self.lru.remove(&tick);
                self.counters.expired += 1;
            }
        }
        out
    }
}

/// `rule|len:value|len:value`: unambiguous whatever the values contain.
pub(super) fn group_key(rule: usize, values: &[String]) -> String {
    let mut k = rule.to_string();
    for v in values {
        k.push_str(&format!("|{}:{v}", v.len()));
    }
    k
}

/// Inserts in time order, after entries of the same time.
fn insert_sorted(entries: &mut Vec<Entry>, entry: Entry) {
    let pos = entries.partition_point(|e| e.time() <= entry.time());
    entries.insert(pos, entry);
}

/// Keeps, per distinct key, only the newest entry that has it; drops entries that add
/// no key of their own. Leaves the distinct count unchanged.
fn keep_newest_per_key(entries: &mut Vec<Entry>) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut keep = vec![false; entries.len()];
    for (i, e) in entries.iter().enumerate().rev() {
        for k in &e.keys {
            if seen.insert(k.clone()) {
                keep[i] = true;
            }
        }
    }
    let mut i = 0;
    entries.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

fn count(kind: CorrelationType, entries: &[Entry]) -> u64 {
    match kind {
        CorrelationType::EventCount => entries.len() as u64,
        CorrelationType::ValueCount | CorrelationType::Temporal => entries
            .iter()
            .flat_map(|e| e.keys.iter())
            .collect::<HashSet<_>>()
            .len() as u64,
    }
}

fn add_immediate(
    g: &mut Group,
    rule: &Rule,
    corr: &Correlation,
    entry: Entry,
    counters: &mut Counters,
) -> Option<Confirmation> {
    let span = corr.timespan.delta();
    let t = entry.time();
    if g.quiet_until.is_some_and(|q| t <= q) {
        counters.suppressed += 1;
        return None;
    }
    let newest = g.newest.map_or(t, |n| n.max(t));
    let cutoff = newest - span;
    if t < cutoff {
        counters.late += 1;
        return None;
    }
    g.newest = Some(newest);
    insert_sorted(&mut g.entries, entry);
    g.entries.retain(|e| e.time() >= cutoff);
    if corr.kind != CorrelationType::EventCount {
        keep_newest_per_key(&mut g.entries);
    }
    if !corr.condition.holds(count(corr.kind, &g.entries)) {
        return None;
    }
    g.quiet_until = Some(newest + span);
    let entries = std::mem::take(&mut g.entries);
    Some(confirmation(
        rule,
        &g.values,
        entries.into_iter().map(|e| e.obs).collect(),
    ))
}

fn add_deferred(
    g: &mut Group,
    rule: &Rule,
    corr: &Correlation,
    entry: Entry,
    counters: &mut Counters,
) -> Option<Confirmation> {
    let span = corr.timespan.delta();
    let t = entry.time();
    if g.quiet_until.is_some_and(|q| t <= q) {
        counters.late += 1;
        return None;
    }
    let mut closed = None;
    if let Some(start) = g.start {
        if t > start + span {
            closed = close(g, rule, corr);
        } else if t < start {
            // Move the window back if it still holds what it has.
            if g.newest.is_some_and(|n| n - t <= span) {
                g.start = Some(t);
            } else {
                counters.late += 1;
                return None;
            }
        }
    }
    if g.start.is_none() {
        g.start = Some(t);
    }
    g.newest = Some(g.newest.map_or(t, |n| n.max(t)));
    if !g.overflow {
        insert_sorted(&mut g.entries, entry);
        if corr.kind != CorrelationType::EventCount {
            keep_newest_per_key(&mut g.entries);
        }
        let max = corr.condition.max().unwrap_or(u64::MAX);
        if count(corr.kind, &g.entries) > max {
            // Past the upper bound: this window cannot confirm; stop storing.
            g.overflow = true;
            g.entries.clear();
        }
    }
    closed
}

/// Judges and empties the open deferred window of `g`.
fn close(g: &mut Group, rule: &Rule, corr: &Correlation) -> Option<Confirmation> {
    let start = g.start.take()?;
    g.quiet_until = Some(start + corr.timespan.delta());
    let entries = std::mem::take(&mut g.entries);
    let overflow = std::mem::replace(&mut g.overflow, false);
    g.newest = None;
    if overflow || !corr.condition.holds(count(corr.kind, &entries)) {
        return None;
    }
    Some(confirmation(
        rule,
        &g.values,
        entries.into_iter().map(|e| e.obs).collect(),
    ))
}

/// Observations must be in time order.
fn confirmation(rule: &Rule, values: &[String], obs: Vec<Arc<Observation>>) -> Confirmation {
    let group = rule
        .correlation
        .iter()
        .flat_map(|c| c.group_by.iter())
        .zip(values)
        .map(|(f, v)| (f.name().to_string(), v.clone()))
        .collect();
    let first_seen = obs.first().map(|o| o.time).unwrap_or_default();
    let last_seen = obs.last().map(|o| o.time).unwrap_or(first_seen);
    Confirmation {
        rule_id: rule.id.clone(),
        rule_title: rule.title.clone(),
        level: rule.level.as_str().to_string(),
        group,
        first_seen,
        last_seen,
        observations: obs
            .into_iter()
            .map(|o| Arc::try_unwrap(o).unwrap_or_else(|a| (*a).clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::load::parse_rule;
    use crate::intel::Kind;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
    }

    fn obs(secs: i64, indicator: &str) -> Observation {
        Observation {
            time: at(secs),
            indicator: indicator.into(),
            kind: Kind::Domain,
            atomic: indicator.into(),
            provenance: Vec::new(),
            host: Some("web01".into()),
            source_ip: None,
            destination_ip: None,
            log_source: "test.log".into(),
            origin: None,
        }
    }

    fn engine(yaml: &str, max_groups: usize) -> Engine {
        let rule = parse_rule("t.yml", yaml).map_err(|e| e.to_string());
        assert!(rule.is_ok(), "{rule:?}");
        Engine::with_options(rule.into_iter().collect(), EngineOptions { max_groups })
    }

    const COUNT3: &str = "title: t\nid: 00000000-0000-0000-0000-000000000001\nlevel: low\n\
        correlation:\n  type: event_count\n  group-by: [indicator]\n  timespan: 1h\n  condition: {gte: 3}\n";

    #[test]
    fn group_keys_are_unambiguous() {
        assert_ne!(
            group_key(0, &["a|1:b".into()]),
            group_key(0, &["a".into(), "b".into()])
        );
    }

    #[test]
    fn keep_newest_per_key_keeps_the_distinct_count() {
        let mut e: Vec<Entry> = [("a", 1), ("b", 2), ("a", 3)]
            .iter()
            .map(|(k, s)| Entry {
                obs: Arc::new(obs(*s, k)),
                keys: vec![k.to_string()],
            })
            .collect();
        keep_newest_per_key(&mut e);
        let times: Vec<i64> = e
            .iter()
            .map(|e| e.time().timestamp() - 1_700_000_000)
            .collect();
        assert_eq!(times, vec![2, 3]);
    }

    #[test]
    fn the_lru_and_the_map_agree() {
        let mut e = engine(COUNT3, 3);
        for i in 0..10 {
            e.observe(obs(i, &format!("d{}.com", i % 5)));
            assert_eq!(e.groups.len(), e.lru.len());
            for (tick, key) in &e.lru {
                assert_eq!(e.groups.get(key).map(|g| g.tick), Some(*tick));
            }
        }
        assert_eq!(e.stats().live_groups, 3);
    }

    #[test]
    fn engine_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Engine>();
    }
}
