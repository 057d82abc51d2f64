//! Retro matching (issue 12, point 2, on demand): every current indicator probed
//! against the observation store ([`Store`]), each observed value that an indicator
//! matches turned into an alert shaped like a live one.
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
    indicators: Vec<IndicatorId>,
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
    index
        .metas_of(id)
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
    let mut stats = RetroStats::default();
    let mut groups: BTreeMap<(u8, String), Group> = BTreeMap::new();
    for kind in Kind::ALL {
        let probed = PROBED_KINDS.contains(&kind);
        for id in index.all_ids(kind) {
            if index.metas_of(id).is_empty() {
                continue;
            }
            if !probed {
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
                    g.indicators.push(id);
                    stats.hits += 1;
                }
            }
        }
    }
    let mut alerts: Vec<(i64, Value)> = groups
        .into_values()
        .filter_map(|g| {
            let doc = group_alert(index, &g)?;
            let first = g.days.values().map(|o| o.first.timestamp()).min()?;
            Some((first, doc))
        })
        .collect();
    alerts.sort_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| {
            a.1["tripline"]["retro_seen"]["value"]
                .as_str()
                .cmp(&b.1["tripline"]["retro_seen"]["value"].as_str())
        })
    });
    stats.alerts = alerts.len() as u64;
    (alerts.into_iter().map(|a| a.1).collect(), stats)
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

/// The alert of one observed value.
fn group_alert(index: &Index, g: &Group) -> Option<Value> {
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
    for &id in &g.indicators {
        let hit = Hit {
            id,
            atomic: g.value.clone(),
            span: None,
        };
        let metas = index.metas_of(id).to_vec();
        let mut e = alert::enrichment(index, &hit, &metas, &timestamp);
        if let Some(p) = published(index, id) {
            e.tripline["intel_published"] = json!(time_secs(p));
            e.tripline["intel_lag_secs"] = json!(p - first.timestamp());
            earliest_pub = Some(earliest_pub.map_or(p, |q: i64| q.min(p)));
        }
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
    let names: Vec<&str> = g.indicators.iter().map(|&id| index.value(id)).collect();
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
    Some(Value::Object(doc))
}
