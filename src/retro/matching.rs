//! Retro matching (issue 12, point 2): indicators probed against the observation
//! store ([`Store`]), each observed value that an indicator matches turned into an
//! alert shaped like a live one — every current indicator on demand (`tripline
//! retro`, [`retro_alerts`]), or the indicators a reload made new in `tripline run`
//! ([`new_indicators`], [`probe`]); and the hits turned into observations for the
//! rules at their original times ([`observations`], [`expand`]).
//!
//! # What is probed, how
//! - IPv4/IPv6 addresses: [`Store::probe`]; prefixes (`10.0.0.0/8`):
//!   [`Store::probe_cidr`] (every address seen in the network);
//! - domains: [`Store::probe_domain`] (the domain and every host name seen below it);
//! - host names, URLs, hashes, e-mail addresses: [`Store::probe`] on the canonical
//!   value (the form the index keys it).
//!
//! File names, registry keys and free-form literals are not probed: the store does
//! not record them (they have no token boundary to extract them by).
//!
//! # Invariants
//! - One alert per observed value (kind and canonical text), carrying one enrichment
//!   per indicator that matches it (as a live line alert carries one per indicator
//!   the line matched), in index order. Its `@timestamp` is the first time the
//!   value was seen within the days probed; `tripline.retro_seen` has first, last,
//!   count, hosts and sources over those days (merged once per day, however many
//!   indicators found the value).
//! - Every matchable provenance (meta) of an indicator counts, whatever its validity
//!   window or decay at the observation time: retro asks "was it already here", and
//!   intel published after the fact typically starts its validity at publication.
//! - `ip|port` indicators match any port (the store keeps no ports), as with the
//!   default `--ip-port any`.
//!
//! # Costs
//! One probe per indicator ([`Store`]: one filter look per segment for a value never
//! seen, a binary search where the filter says maybe; a CIDR is a range scan); the
//! alerts are built only for hits. Memory: the hits, grouped by value.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::store::SET_CAP;
use super::{Observed, Store};
use crate::index::Index;
use crate::intel::{IndicatorId, Kind};
use crate::matcher::Hit;
use crate::sink::alert;

/// The kinds retro matching probes (the typed kinds the store records).
pub const PROBED_KINDS: [Kind; 12] = [
    Kind::Ipv4,
    Kind::Ipv6,
    Kind::Domain,
    Kind::Hostname,
    Kind::Url,
    Kind::Md5,
    Kind::Sha1,
    Kind::Sha224,
    Kind::Sha256,
    Kind::Sha384,
    Kind::Sha512,
    Kind::Email,
];

/// What a retro run did (for the summary on stderr).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetroStats {
    /// Indicators probed (matchable, of a probed kind).
    pub probed: u64,
    /// Matchable indicators of kinds the store does not record (file names, registry
    /// keys, literals): not probed.
    pub not_probed: u64,
    /// (indicator, observed value) pairs found.
    pub hits: u64,
    /// Alerts (observed values that at least one indicator matched).
    pub alerts: u64,
}

/// One observed value and the indicators that match it.
#[derive(Debug)]
struct Group {
    kind: Kind,
    value: String,
    /// Per day: the store's record of the value (merged once per day).
    days: BTreeMap<i64, Observed>,
    /// The indicators that match it, each with the provenances (metas) that count.
    indicators: Vec<(IndicatorId, Vec<u32>)>,
}

/// The probes of one indicator: what the store saw that it matches.
pub fn probe_indicator(
    store: &Store,
    kind: Kind,
    canonical: &str,
    since: Option<DateTime<Utc>>,
) -> Vec<Observed> {
    match kind {
        Kind::Ipv4 | Kind::Ipv6 if canonical.contains('/') => {
            match canonical.parse::<ipnet::IpNet>() {
                Ok(net) => store.probe_cidr(net, since),
                Err(_) => Vec::new(),
            }
        }
        Kind::Domain => store.probe_domain(canonical, since),
        _ => store.probe(kind, canonical, since),
    }
}

/// The publication time of an indicator's intel: over its matchable provenances, the
/// earliest of STIX `valid_from` and the last change the source recorded (MISP
/// attribute `timestamp`, STIX `modified`); `None` when the intel carries neither
/// (plain lists).
pub fn published(index: &Index, id: IndicatorId) -> Option<i64> {
    published_of(index, index.metas_of(id))
}

/// [`published`] over the given metas only.
pub fn published_of(index: &Index, metas: &[u32]) -> Option<i64> {
    metas
        .iter()
        .filter_map(|&m| {
            let meta = index.meta(m);
            match (meta.valid_from, meta.modified) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        })
        .min()
}

fn time_secs(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Probes every matchable indicator of `index` against `store` (days from `since`;
/// all when `None`) and returns the retro alerts, ordered by first observation then
/// value, with the run's figures.
pub fn retro_alerts(
    index: &Index,
    store: &Store,
    since: Option<DateTime<Utc>>,
) -> (Vec<Value>, RetroStats) {
    let mut not_probed = 0;
    let mut targets = Vec::new();
    for kind in Kind::ALL {
        let probed = PROBED_KINDS.contains(&kind);
        for id in index.all_ids(kind) {
            if index.metas_of(id).is_empty() {
                continue;
            }
            if !probed {
                not_probed += 1;
                continue;
            }
            targets.push((id, index.metas_of(id).to_vec()));
        }
    }
    let run = probe(index, store, since, targets, &RunOptions::default());
    let mut stats = run.stats;
    stats.not_probed = not_probed;
    (run.alerts.into_iter().map(|a| a.doc).collect(), stats)
}

/// How a retro run dates and shapes its alerts.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The publication time to use where the intel carries none (`tripline run`: when
    /// the intel was loaded); `None`: no `intel_published` / lag then.
    pub loaded_at: Option<i64>,
    /// What started the run (`sync`, `reload`, `on_demand`): `tripline.retro_trigger`.
    pub trigger: Option<&'static str>,
}

/// One retro alert and what the rules and metrics need of it.
#[derive(Clone, Debug)]
pub struct RetroAlert {
    /// The alert document (JSON line).
    pub doc: Value,
    /// The observed value, its kind and the store's record of it per day.
    pub kind: Kind,
    pub value: String,
    pub days: Vec<Observed>,
    /// The indicators that match it, with the provenances that count, and each one's
    /// intel lag (publication minus first observation, seconds) where known.
    pub indicators: Vec<(IndicatorId, Vec<u32>, Option<i64>)>,
}

/// Applies the local false-positive list (`tripline feedback false-positive`) to retro
/// alerts as [`SuppressionList::apply`](crate::share::SuppressionList::apply) does to
/// live ones: `Mark` marks the enrichments of suppressed indicators
/// (`tripline.enrichments[i].suppressed`, and `tripline.suppressed: true` when all
/// are); `Drop` removes them (the alert too when every indicator is suppressed), so
/// neither their alerts nor their observations reach the rules. Counts the
/// suppressed matches. Cost: one hash lookup per indicator of each alert.
pub fn apply_suppressions(
    alerts: &mut Vec<RetroAlert>,
    index: &Index,
    list: &crate::share::SuppressionList,
    mode: crate::share::SuppressedAlerts,
) {
    use crate::share::suppress::retain_kept;
    use crate::share::SuppressedAlerts;
    alerts.retain_mut(|a| {
        let Some((found, all)) = list.find_all(
            a.indicators
                .iter()
                .map(|(id, _, _)| (index.value(*id), id.kind())),
        ) else {
            return true;
        };
        match mode {
            SuppressedAlerts::Mark => {
                if let Some(mine) = a
                    .doc
                    .pointer_mut("/tripline/enrichments")
                    .and_then(Value::as_array_mut)
                {
                    for (e, s) in mine.iter_mut().zip(&found) {
                        if let (Some(o), Some(s)) = (e.as_object_mut(), s) {
                            o.insert("suppressed".into(), s.mark());
                        }
                    }
                }
                if all {
                    if let Some(t) = a.doc.get_mut("tripline").and_then(Value::as_object_mut) {
                        t.insert("suppressed".into(), json!(true));
                    }
                }
                true
            }
            SuppressedAlerts::Drop if all => false,
            SuppressedAlerts::Drop => {
                let keep: Vec<bool> = found.iter().map(Option::is_none).collect();
                for path in ["/tripline/enrichments", "/threat/enrichments"] {
                    if let Some(v) = a.doc.pointer_mut(path).and_then(Value::as_array_mut) {
                        retain_kept(v, &keep);
                    }
                }
                retain_kept(&mut a.indicators, &keep);
                true
            }
        }
    });
}

/// What a retro run found.
#[derive(Debug, Default)]
pub struct RetroRun {
    pub alerts: Vec<RetroAlert>,
    pub stats: RetroStats,
}

/// Probes `targets` (indicators, each with the provenances that count for it: all of
/// them on demand, the new ones after a reload) against `store` and builds one alert
/// per observed value, ordered by first observation then value.
pub fn probe(
    index: &Index,
    store: &Store,
    since: Option<DateTime<Utc>>,
    targets: Vec<(IndicatorId, Vec<u32>)>,
    opts: &RunOptions,
) -> RetroRun {
    let mut stats = RetroStats::default();
    let mut groups: BTreeMap<(u8, String), Group> = BTreeMap::new();
    for (id, metas) in targets {
        let kind = id.kind();
        if metas.is_empty() || !PROBED_KINDS.contains(&kind) {
            stats.not_probed += 1;
            continue;
        }
        stats.probed += 1;
        let canonical = index.value(id);
        let mut seen_values: Vec<(u8, String)> = Vec::new();
        for o in probe_indicator(store, kind, canonical, since) {
            let (okind, value) = match &o.value {
                Some(v) => (o.kind, v.clone()),
                // Only the suffix entry is known: the domain itself stands for it.
                None => (o.kind, canonical.to_string()),
            };
            let k = (okind as u8, value.clone());
            let g = groups.entry(k.clone()).or_insert_with(|| Group {
                kind: okind,
                value,
                days: BTreeMap::new(),
                indicators: Vec::new(),
            });
            g.days.entry(o.slice).or_insert(o);
            if !seen_values.contains(&k) {
                seen_values.push(k);
                g.indicators.push((id, metas.clone()));
                stats.hits += 1;
            }
        }
    }
    let mut alerts: Vec<(i64, RetroAlert)> = groups
        .into_values()
        .filter_map(|g| {
            let first = g.days.values().map(|o| o.first.timestamp()).min()?;
            let (doc, lags) = group_alert(index, &g, opts)?;
            Some((
                first,
                RetroAlert {
                    doc,
                    kind: g.kind,
                    value: g.value,
                    days: g.days.into_values().collect(),
                    indicators: g
                        .indicators
                        .into_iter()
                        .zip(lags)
                        .map(|((id, metas), lag)| (id, metas, lag))
                        .collect(),
                },
            ))
        })
        .collect();
    alerts.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.value.cmp(&b.1.value)));
    stats.alerts = alerts.len() as u64;
    RetroRun {
        alerts: alerts.into_iter().map(|a| a.1).collect(),
        stats,
    }
}

/// Adds `add` to a capped set.
fn add_capped(list: &mut Vec<String>, more: &mut bool, add: &[String], add_more: bool) {
    *more |= add_more;
    for h in add {
        if !list.contains(h) {
            if list.len() < SET_CAP {
                list.push(h.clone());
            } else {
                *more = true;
            }
        }
    }
}

/// The alert of one observed value, and each indicator's intel lag.
fn group_alert(index: &Index, g: &Group, opts: &RunOptions) -> Option<(Value, Vec<Option<i64>>)> {
    let first = g.days.values().map(|o| o.first).min()?;
    let last = g.days.values().map(|o| o.last).max()?;
    let count: u64 = g.days.values().map(|o| o.count).sum();
    let (mut hosts, mut more_hosts) = (Vec::new(), false);
    let (mut sources, mut more_sources) = (Vec::new(), false);
    for o in g.days.values() {
        add_capped(&mut hosts, &mut more_hosts, &o.hosts, o.more_hosts);
        add_capped(&mut sources, &mut more_sources, &o.sources, o.more_sources);
    }
    let timestamp = alert::time_text(first);
    let mut ecs = Vec::new();
    let mut mine = Vec::new();
    let mut earliest_pub: Option<i64> = None;
    let mut lags = Vec::with_capacity(g.indicators.len());
    for (id, metas) in &g.indicators {
        let hit = Hit {
            id: *id,
            atomic: g.value.clone(),
            span: None,
        };
        let mut e = alert::enrichment(index, &hit, metas, &timestamp);
        let mut lag = None;
        if let Some(p) = published_of(index, metas).or(opts.loaded_at) {
            e.tripline["intel_published"] = json!(time_secs(p));
            e.tripline["intel_lag_secs"] = json!(p - first.timestamp());
            earliest_pub = Some(earliest_pub.map_or(p, |q: i64| q.min(p)));
            lag = Some(p - first.timestamp());
        }
        lags.push(lag);
        ecs.push(e.ecs);
        mine.push(e.tripline);
    }
    let mut seen = Map::new();
    seen.insert("value".into(), json!(g.value));
    seen.insert("kind".into(), json!(g.kind.name()));
    seen.insert("first".into(), json!(alert::time_text(first)));
    seen.insert("last".into(), json!(alert::time_text(last)));
    seen.insert("count".into(), json!(count));
    seen.insert("days".into(), json!(g.days.len()));
    seen.insert("hosts".into(), json!(hosts));
    if more_hosts {
        seen.insert("more_hosts".into(), json!(true));
    }
    seen.insert("sources".into(), json!(sources));
    if more_sources {
        seen.insert("more_sources".into(), json!(true));
    }
    let names: Vec<&str> = g
        .indicators
        .iter()
        .map(|(id, _)| index.value(*id))
        .collect();
    let message = format!(
        "retro: {} seen {count} time(s) from {} to {}, matches intel {}",
        g.value,
        alert::time_text(first),
        alert::time_text(last),
        names.join(", ")
    );
    // Stable: the same value first seen at the same time gets the same id.
    let alert_id = alert::alert_id("retro", None, None, &timestamp, g.value.as_bytes());
    let mut tripline = Map::new();
    tripline.insert("alert_id".into(), json!(alert_id));
    tripline.insert("enrichments".into(), Value::Array(mine));
    tripline.insert("format".into(), json!("retro"));
    tripline.insert("retro".into(), json!(true));
    tripline.insert("retro_seen".into(), Value::Object(seen));
    if let Some(t) = opts.trigger {
        tripline.insert("retro_trigger".into(), json!(t));
    }
    if let Some(p) = earliest_pub {
        tripline.insert("intel_published".into(), json!(time_secs(p)));
        tripline.insert("intel_lag_secs".into(), json!(p - first.timestamp()));
    }
    tripline.insert("time_source".into(), json!("event"));
    let mut doc = Map::new();
    doc.insert("@timestamp".into(), json!(timestamp));
    doc.insert(
        "event".into(),
        json!({"category": ["threat"], "kind": "event", "type": ["indicator"]}),
    );
    // One host seen: `host.name`, as a live alert of a line that names it (not when
    // the file's path stood in for a line that names none).
    if hosts.len() == 1 && !more_hosts && !hosts[0].contains('/') {
        doc.insert("host".into(), json!({"name": hosts[0]}));
    }
    doc.insert("message".into(), json!(message));
    doc.insert("threat".into(), json!({ "enrichments": ecs }));
    doc.insert("tripline".into(), Value::Object(tripline));
    Some((Value::Object(doc), lags))
}

/// A provenance's identity across two indexes (metas are interned per index): the
/// source's name and the event and attribute UUIDs.
fn provenance_key(index: &Index, meta: u32) -> (&str, Option<&str>, Option<&str>) {
    let m = index.meta(meta);
    let source = index
        .sources
        .get(m.source as usize)
        .map_or("", |s| s.name.as_str());
    let event = m
        .event
        .and_then(|e| index.events.get(e as usize))
        .and_then(|e| e.uuid.as_deref());
    (source, event, m.attr_uuid.as_deref())
}

/// The indicators of `new` that `old` did not match, each with the provenances that
/// are new: a value (kind and canonical form) `old` has no matchable provenance of
/// comes with all of its provenances; a value `old` matched already comes with the
/// provenances `old` lacked ([`provenance_key`]: another source, event or attribute),
/// or not at all when there are none. Only the kinds the store records.
///
/// So a value one community published long ago and another publishes now is probed
/// again for the new community alone: its retro alert names that community and the
/// sighting goes back to it, while the first community, whose intel matched live,
/// gets nothing twice. An update of a provenance already there (a MISP attribute
/// edited, a list rewritten) is not new.
///
/// Cost: one exact lookup in `old` per matchable indicator of `new` and a comparison
/// of their few provenances; no allocation but the result.
pub fn new_indicators(old: &Index, new: &Index) -> Vec<(IndicatorId, Vec<u32>)> {
    let mut out = Vec::new();
    for kind in PROBED_KINDS {
        for id in new.all_ids(kind) {
            let metas = new.metas_of(id);
            if metas.is_empty() {
                continue;
            }
            let before = old
                .find_exact(kind, new.value(id))
                .map_or(&[][..], |o| old.metas_of(o));
            if before.is_empty() {
                out.push((id, metas.to_vec()));
                continue;
            }
            let fresh: Vec<u32> = metas
                .iter()
                .copied()
                .filter(|&m| {
                    let k = provenance_key(new, m);
                    !before.iter().any(|&b| provenance_key(old, b) == k)
                })
                .collect();
            if !fresh.is_empty() {
                out.push((id, fresh));
            }
        }
    }
    out
}

/// Every matchable indicator of the kinds the store records, with all its
/// provenances: what `tripline retro` probes.
pub fn all_targets(index: &Index) -> Vec<(IndicatorId, Vec<u32>)> {
    let mut out = Vec::new();
    for kind in PROBED_KINDS {
        for id in index.all_ids(kind) {
            let metas = index.metas_of(id);
            if !metas.is_empty() {
                out.push((id, metas.to_vec()));
            }
        }
    }
    out
}

/// A 64-bit FNV-1a hash of an indicator's kind, canonical value and one provenance
/// ([`provenance_key`]), stable across processes and builds: what [`probed_keys`]
/// keeps so that a restart knows what an earlier run already probed.
fn probed_key(kind: Kind, value: &str, prov: (&str, Option<&str>, Option<&str>)) -> u64 {
    let parts = [
        kind.name(),
        value,
        prov.0,
        prov.1.unwrap_or(""),
        prov.2.unwrap_or(""),
    ];
    // Each part followed by 0xff, a byte no UTF-8 text holds.
    parts.iter().fold(FNV_OFFSET, |h, p| {
        fnv_from(fnv_from(h, p.as_bytes()), &[0xff])
    })
}

/// The sorted keys of every (indicator, provenance) of `index` that retro probes:
/// after a live retro run has written its alerts, the sidecar keeps these
/// ([`write_probed`]), and at its next start probes only what is not among them
/// ([`new_since`]). Cost: one hash per provenance (8 bytes each).
pub fn probed_keys(index: &Index) -> Vec<u64> {
    let mut keys = Vec::new();
    for kind in PROBED_KINDS {
        for id in index.all_ids(kind) {
            let value = index.value(id);
            for &m in index.metas_of(id) {
                keys.push(probed_key(kind, value, provenance_key(index, m)));
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The indicators of `index` with the provenances whose keys are not in `probed`
/// (sorted, from [`probed_keys`] of an earlier index): as [`new_indicators`], against
/// what an earlier process probed. A hash collision (1 in 2^64 per pair) would leave
/// a provenance unprobed at start; `tripline retro` probes everything.
pub fn new_since(probed: &[u64], index: &Index) -> Vec<(IndicatorId, Vec<u32>)> {
    let mut out = Vec::new();
    for kind in PROBED_KINDS {
        for id in index.all_ids(kind) {
            let value = index.value(id);
            let fresh: Vec<u32> = index
                .metas_of(id)
                .iter()
                .copied()
                .filter(|&m| {
                    probed
                        .binary_search(&probed_key(kind, value, provenance_key(index, m)))
                        .is_err()
                })
                .collect();
            if !fresh.is_empty() {
                out.push((id, fresh));
            }
        }
    }
    out
}

const PROBED_MAGIC: &[u8; 8] = b"TRPROBE1";

/// Writes `keys` to `path` atomically (temporary file, fsync, rename): magic, count,
/// the keys (little-endian), then an FNV-1a checksum of everything before it.
pub fn write_probed(path: &std::path::Path, keys: &[u64]) -> std::io::Result<()> {
    use std::io::Write;
    let mut bytes = Vec::with_capacity(24 + keys.len() * 8);
    bytes.extend_from_slice(PROBED_MAGIC);
    bytes.extend_from_slice(&(keys.len() as u64).to_le_bytes());
    for k in keys {
        bytes.extend_from_slice(&k.to_le_bytes());
    }
    let sum = fnv(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Reads what [`write_probed`] wrote: `Ok(None)` when there is no file, an error
/// naming the file when it is torn or not ours.
pub fn read_probed(path: &std::path::Path) -> Result<Option<Vec<u64>>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let bad = |why: &str| format!("{}: {why}", path.display());
    if bytes.len() < 24 || &bytes[..8] != PROBED_MAGIC {
        return Err(bad("not a probed-intel file"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let sum = u64::from_le_bytes(sum.try_into().map_err(|_| bad("torn"))?);
    if fnv(body) != sum {
        return Err(bad("checksum mismatch"));
    }
    let n = u64::from_le_bytes(body[8..16].try_into().map_err(|_| bad("torn"))?);
    let keys = &body[16..];
    if keys.len() as u64 != n.saturating_mul(8) {
        return Err(bad("length does not match its count"));
    }
    Ok(Some(
        keys.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
    ))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a of `bytes`, continued from `h`.
fn fnv_from(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn fnv(bytes: &[u8]) -> u64 {
    fnv_from(FNV_OFFSET, bytes)
}

/// What the rules need to know to turn the store's per-day records into
/// observations (see [`observations`]).
#[derive(Clone, Copy, Debug)]
pub struct RuleShape {
    /// The shortest timespan of any rule with a correlation (`None`: no such rule).
    pub span: Option<chrono::TimeDelta>,
    /// The most observations one record is spread into (the largest count any
    /// condition names, plus one; at least 2).
    pub max_events: u64,
}

/// Whether `host` (as the store recorded it) names a host: the recorder stands in the
/// file's path or `stdin` for lines that name none, which a live observation leaves
/// without a host.
fn real_host(host: &str) -> bool {
    !host.contains('/') && host != "stdin"
}

/// The events one per-day record stands for, as (time, host, log source): the store
/// keeps first and last time, a count and up to 4 hosts and sources, not each line.
///
/// - `count` 1: one event at `first`.
/// - `last - first` within `shape.span` (every line of the day was seen within the
///   shortest rule window): `count` events (at most `shape.max_events`), spread evenly
///   from `first` to `last`, so any rule sees them all in one window, as it would
///   have seen the lines.
/// - Further apart: only the first and the last event (the times in between are not
///   known; a rule that needs more within its window does not confirm from them).
///
/// Hosts: with one host recorded, every event has it; with several (which host at
/// which time is not known), the first events take one host each and the rest none
/// (a rule grouped by host then counts each host at least once, never more than it
/// saw: it leaves them out as unkeyed); spread thin (first and last only), none.
/// Log sources likewise, the rest taking the first source.
///
/// So a rule confirms from retro events only where the lines themselves would have
/// confirmed it (a lower-bound rule may miss a confirmation the lines would have
/// given, never the reverse).
pub fn expand(o: &Observed, shape: &RuleShape) -> Vec<(DateTime<Utc>, Option<String>, String)> {
    let hosts: Vec<&String> = o.hosts.iter().filter(|h| real_host(h)).collect();
    let one_host = (hosts.len() == 1 && !o.more_hosts).then(|| hosts[0].clone());
    let one_source = o.sources.len() == 1 && !o.more_sources;
    let source0 = o.sources.first().cloned().unwrap_or_default();
    let dense = o.count >= 2 && shape.span.is_some_and(|s| o.last - o.first <= s);
    let n = if o.count <= 1 {
        1
    } else if dense {
        o.count.min(shape.max_events.max(2))
    } else {
        2
    };
    (0..n)
        .map(|i| {
            let time = if n == 1 {
                o.first
            } else {
                let span = (o.last - o.first).num_milliseconds();
                o.first + chrono::TimeDelta::milliseconds(span * i as i64 / (n as i64 - 1))
            };
            let host = match &one_host {
                Some(h) => Some(h.clone()),
                None if dense => hosts.get(i as usize).map(|h| (*h).clone()),
                None => None,
            };
            let source = if one_source || !dense {
                source0.clone()
            } else {
                o.sources
                    .get(i as usize)
                    .cloned()
                    .unwrap_or_else(|| source0.clone())
            };
            (time, host, source)
        })
        .collect()
}

/// The observations a retro alert gives the rules: per indicator that matched it and
/// per event [`expand`] finds in each day's record, with the event's original time,
/// the observed value as `atomic`, the indicator's provenances that count, and an
/// origin (`retro:<kind>:<value>:<day>`, the event's number) that names the same
/// event again in a later run, so the outbox does not count it twice.
pub fn observations(
    index: &Index,
    alert: &RetroAlert,
    shape: &RuleShape,
) -> Vec<crate::correlate::Observation> {
    use crate::correlate::{observe::provenance, LineOrigin, Observation};
    let mut out = Vec::new();
    for o in &alert.days {
        let events = expand(o, shape);
        let stream = format!("retro:{}:{}:{}", alert.kind.name(), alert.value, o.slice);
        for (hit, (id, metas, _)) in alert.indicators.iter().enumerate() {
            let provs: Vec<_> = metas.iter().map(|&m| provenance(index, m)).collect();
            for (i, (time, host, source)) in events.iter().enumerate() {
                out.push(Observation {
                    time: *time,
                    indicator: index.value(*id).to_string(),
                    kind: id.kind(),
                    atomic: alert.value.clone(),
                    provenance: provs.clone(),
                    host: host.clone(),
                    source_ip: None,
                    destination_ip: None,
                    log_source: source.clone(),
                    origin: Some(LineOrigin {
                        stream: stream.clone(),
                        position: i as u64,
                        hit: u32::try_from(hit).unwrap_or(u32::MAX),
                    }),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::BuildOptions;
    use crate::intel::warninglist::Warninglists;
    use crate::intel::{IntelStore, Meta, Source, StoreOptions};

    /// An index of `(source, attribute uuid, ipv4)` entries.
    fn index_of(entries: &[(&str, Option<&str>, &str)]) -> Index {
        let mut store = IntelStore::new(StoreOptions::default());
        let mut sources: Vec<(String, u32)> = Vec::new();
        for (source, uuid, value) in entries {
            let s = match sources.iter().find(|s| s.0 == *source) {
                Some(s) => s.1,
                None => {
                    let id = store.add_source(Source {
                        name: source.to_string(),
                        format: "list",
                        location: format!("{source}.txt"),
                        provider: None,
                    });
                    sources.push((source.to_string(), id));
                    id
                }
            };
            let misp_type = store.intern("ip-dst");
            let meta = store
                .meta_id(Meta {
                    source: s,
                    misp_type,
                    to_ids: true,
                    attr_uuid: uuid.map(Into::into),
                    ..Default::default()
                })
                .expect("an included meta");
            store.add_typed(Kind::Ipv4, value, meta, String::new);
        }
        Index::build(store, &Warninglists::new(), BuildOptions::default())
    }

    fn names(index: &Index, new: &[(IndicatorId, Vec<u32>)]) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = new
            .iter()
            .map(|(id, metas)| {
                let mut provs: Vec<String> = metas
                    .iter()
                    .map(|&m| {
                        let (s, _, a) = provenance_key(index, m);
                        format!("{s}/{}", a.unwrap_or("-"))
                    })
                    .collect();
                provs.sort();
                (index.value(*id).to_string(), provs)
            })
            .collect();
        out.sort();
        out
    }

    /// New values come with every provenance; a known value with the provenances it
    /// gained only; an unchanged one (or one whose provenances were reordered) not
    /// at all.
    #[test]
    fn new_indicators_are_new_values_and_new_provenances() {
        let old = index_of(&[
            ("a", Some("u1"), "192.0.2.1"),
            ("a", Some("u2"), "192.0.2.2"),
            ("b", None, "192.0.2.2"),
        ]);
        let new = index_of(&[
            ("b", None, "192.0.2.2"),
            ("a", Some("u2"), "192.0.2.2"),
            ("a", Some("u1"), "192.0.2.1"),
            ("c", None, "192.0.2.1"),
            ("a", Some("u3"), "192.0.2.3"),
            ("b", None, "192.0.2.3"),
        ]);
        assert_eq!(
            names(&new, &new_indicators(&old, &new)),
            vec![
                ("192.0.2.1".to_string(), vec!["c/-".to_string()]),
                (
                    "192.0.2.3".to_string(),
                    vec!["a/u3".to_string(), "b/-".to_string()]
                ),
            ]
        );
        assert!(new_indicators(&new, &new).is_empty());
    }

    /// What a restart probes: the keys kept of the old index give the same answer as
    /// the old index itself; they survive a write and read, and a torn or flipped
    /// file is an error naming it, never a panic or a wrong answer.
    #[test]
    fn probed_keys_kept_on_disk_give_what_the_old_index_gives() {
        let old = index_of(&[
            ("a", Some("u1"), "192.0.2.1"),
            ("a", Some("u2"), "192.0.2.2"),
            ("b", None, "192.0.2.2"),
        ]);
        let new = index_of(&[
            ("b", None, "192.0.2.2"),
            ("a", Some("u1"), "192.0.2.1"),
            ("c", None, "192.0.2.1"),
            ("a", Some("u3"), "192.0.2.3"),
        ]);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("probed.bin");
        assert_eq!(read_probed(&path), Ok(None));
        write_probed(&path, &probed_keys(&old)).expect("written");
        let keys = read_probed(&path).expect("read").expect("present");
        assert_eq!(keys, probed_keys(&old));
        assert_eq!(
            names(&new, &new_since(&keys, &new)),
            names(&new, &new_indicators(&old, &new))
        );
        assert!(new_since(&probed_keys(&new), &new).is_empty());
        let bytes = std::fs::read(&path).expect("bytes");
        for cut in [0, 7, 23, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).expect("torn");
            let e = read_probed(&path).expect_err("torn file");
            assert!(e.contains("probed.bin"), "{e}");
        }
        let mut flipped = bytes.clone();
        flipped[17] ^= 1;
        std::fs::write(&path, &flipped).expect("flipped");
        assert!(read_probed(&path).is_err());
    }

    fn seen(first: i64, last: i64, count: u64, hosts: &[&str]) -> Observed {
        let t = |s| DateTime::<Utc>::from_timestamp(s, 0).expect("time");
        Observed {
            kind: Kind::Ipv4,
            value: Some("192.0.2.1".into()),
            slice: 0,
            first: t(first),
            last: t(last),
            count,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            more_hosts: false,
            sources: vec!["fw".into()],
            more_sources: false,
        }
    }

    /// A record within the shortest window spreads into its count (capped), one host
    /// each where several were seen; further apart, only first and last; a file path
    /// is no host.
    #[test]
    fn a_record_expands_into_what_its_times_prove() {
        let shape = RuleShape {
            span: Some(chrono::TimeDelta::hours(1)),
            max_events: 4,
        };
        let secs = |e: &[(DateTime<Utc>, Option<String>, String)]| -> Vec<i64> {
            e.iter().map(|x| x.0.timestamp()).collect()
        };
        let hosts = |e: &[(DateTime<Utc>, Option<String>, String)]| -> Vec<Option<String>> {
            e.iter().map(|x| x.1.clone()).collect()
        };
        let e = expand(&seen(100, 100, 1, &["web01"]), &shape);
        assert_eq!(
            (secs(&e), hosts(&e)),
            (vec![100], vec![Some("web01".into())])
        );
        let e = expand(&seen(0, 1200, 3, &["web01"]), &shape);
        assert_eq!(secs(&e), vec![0, 600, 1200]);
        assert!(hosts(&e).iter().all(|h| h.as_deref() == Some("web01")));
        // Capped at the largest count a rule needs (plus one).
        let e = expand(&seen(0, 3000, 1000, &["a", "b"]), &shape);
        assert_eq!(secs(&e), vec![0, 1000, 2000, 3000]);
        assert_eq!(
            hosts(&e),
            vec![Some("a".into()), Some("b".into()), None, None]
        );
        // Further apart than the shortest window: the two known times only.
        let e = expand(&seen(0, 10_800, 3, &["web01"]), &shape);
        assert_eq!(secs(&e), vec![0, 10_800]);
        let e = expand(&seen(0, 10_800, 3, &["a", "b"]), &shape);
        assert_eq!(hosts(&e), vec![None, None]);
        // The recorder's stand-ins for lines that name no host.
        let e = expand(&seen(0, 60, 2, &["/var/log/fw.log"]), &shape);
        assert_eq!(hosts(&e), vec![None, None]);
        // No rule with a window: first and last.
        let none = RuleShape {
            span: None,
            max_events: 2,
        };
        assert_eq!(secs(&expand(&seen(0, 60, 5, &[]), &none)), vec![0, 60]);
    }

    /// The cost of finding the new indicators of a reload: 1M indicators against
    /// 900k (`cargo test --release --lib new_indicators_cost -- --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement"]
    fn new_indicators_cost() {
        let build = |n: u32| {
            let mut store = IntelStore::new(StoreOptions::default());
            let source = store.add_source(Source {
                name: "feed".into(),
                format: "list",
                location: "feed.txt".into(),
                provider: None,
            });
            let misp_type = store.intern("ip-dst");
            let meta = store
                .meta_id(Meta {
                    source,
                    misp_type,
                    to_ids: true,
                    ..Default::default()
                })
                .expect("meta");
            for i in 0..n {
                let v = std::net::Ipv4Addr::from(0x0b00_0000 + i * 3).to_string();
                store.add_typed(Kind::Ipv4, &v, meta, String::new);
            }
            Index::build(store, &Warninglists::new(), BuildOptions::default())
        };
        let old = build(900_000);
        let new = build(1_000_000);
        let t0 = std::time::Instant::now();
        let found = new_indicators(&old, &new);
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(found.len(), 100_000);
        println!("new_indicators: 1M against 900k: {secs:.3} s");
    }
}
