//! The sharing preview: what each destination community would receive, in its own
//! format, before anything is sent (`tripline hunt --preview-sharing DIR`,
//! `tripline sightings preview DIR`), and how the local data relates to each
//! community's intel.
//!
//! A preview directory holds one subdirectory per destination with exactly the bodies
//! its transport would send, built by the same render code the transports use:
//! - `misp`: one `NNNN.json` per row, the `/sightings/add` request body byte for byte
//!   (compact JSON, [`misp::add_payload`]);
//! - `stix_dir`: the files the directory transport writes, same names, same bytes
//!   ([`stix::dir_file`]);
//! - `taxii`: one `NNNN.json` per request, the envelope posted to the collection:
//!   up to `batch_size` rows in one envelope, batched as delivery batches them (rows
//!   in outbox order; a row whose earlier outcome is unknown goes alone, its check
//!   first; at most [`PASS_ROWS`] rows a delivery pass) by the one function delivery
//!   uses ([`stix::batch_envelope`]);
//!
//! and `summary.txt` (for people) and `summary.json` (the same, for programs): per
//! destination what would be sent, what was withheld and why (TLP, distribution,
//! victim data, no target, suppressed… every [`DropReason`], and rows already
//! `withheld` at send), what anonymisation takes out, and how the local data relates
//! to that community's intel (its indicators seen here, confirmed, its events touched,
//! and how many of those indicators other communities hold too). Counts only: a
//! destination's section never names another community; indicators no destination
//! serves are listed apart, with their source.
//!
//! Rows are taken as [`Outbox::prepare`] would let them leave now: the policy asked
//! again, the current source name and anonymisation. A hunt preview uses an outbox in
//! memory: its rows' `created` times (STIX `created`) are the preview's, and an
//! anonymised destination's STIX ids are salted with a fresh secret, so only the
//! sidecar's preview (`sightings preview`, the real outbox) predicts those bytes too.
//!
//! Costs: one in-memory outbox and one render per row; the relation counts hold one
//! entry per distinct indicator seen, never per observation.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::outbox::{IntelView, Outbox, OutboxEntry, OutboxError, State, PASS_ROWS};
use super::policy::{
    resolve_tlp, DestinationConfig, DropReason, Router, Routing, ShareConfig, TransportConfig,
};
use super::render::{misp, stix};
use super::sighting::{Outgoing, Sighting, SightingType, Target};
use super::SuppressionList;
use crate::correlate::{Confirmation, Observation, Provenance};
use crate::intel::{Kind, Tlp};

/// Distinct indicators seen here, each with every provenance the intel gave it.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    indicators: BTreeMap<(Kind, String), Vec<Provenance>>,
    confirmed: BTreeSet<(Kind, String)>,
}

impl Seen {
    /// The indicators of `observations` (every match a hunt kept for the rules).
    pub fn from_observations(observations: &[Observation]) -> Seen {
        let mut seen = Seen::default();
        for o in observations {
            seen.add(o, false);
        }
        seen
    }

    /// Marks the indicators of `confirmations` as confirmed (adding any not seen yet).
    pub fn confirm(&mut self, confirmations: &[Confirmation]) {
        for c in confirmations {
            for o in &c.observations {
                self.add(o, true);
            }
        }
    }

    fn add(&mut self, o: &Observation, confirmed: bool) {
        let key = (o.kind, o.indicator.clone());
        let provs = self.indicators.entry(key.clone()).or_default();
        for p in &o.provenance {
            if !provs.contains(p) {
                provs.push(p.clone());
            }
        }
        if confirmed {
            self.confirmed.insert(key);
        }
    }
}

/// One body file of a destination.
#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    /// The name of the file holding it inside the destination's directory (several
    /// rows share one file when the transport sends them in one request).
    pub file: String,
    pub sighting: Sighting,
    /// The TLP of the intel it is about (most restrictive of its provenances).
    pub tlp: Option<Tlp>,
}

/// A sighting that will not leave, and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Withheld {
    pub indicator: String,
    pub kind: Kind,
    /// A [`DropReason::name`], or `no_stix_form` (an expiration to a STIX destination).
    pub reason: String,
    /// The reason, for people.
    pub why: String,
    /// How many observations or rows it stands for.
    pub count: u64,
}

/// How the local data relates to one community's intel (counts only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relation {
    /// Its indicators matched here.
    pub indicators_seen: usize,
    /// Of those, confirmed by the rules.
    pub indicators_confirmed: usize,
    /// Its events (MISP event / STIX bundle or report ids) those indicators belong to.
    pub events_touched: usize,
    /// Of its indicators seen here, how many other communities hold too.
    pub also_held_by_other_communities: usize,
}

/// What one destination would receive.
#[derive(Clone, Debug)]
pub struct DestinationPreview {
    pub name: String,
    /// `misp`, `taxii` or `stix_dir`.
    pub transport: &'static str,
    /// Its subdirectory in the preview.
    pub directory: String,
    /// Each row that would leave, in delivery order.
    pub bodies: Vec<Body>,
    /// The files of the preview directory: name, and exactly what the transport
    /// sends in one request (or writes).
    pub files: Vec<(String, Vec<u8>)>,
    pub withheld: Vec<Withheld>,
    /// What anonymisation takes out, when it anonymises.
    pub anonymised: Option<String>,
    pub relation: Relation,
}

/// An indicator no destination serves.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unrouted {
    pub indicator: String,
    pub kind: Kind,
    /// The intel source it came from (local knowledge: no destination is told).
    pub source: String,
    pub count: u64,
}

/// A whole preview.
#[derive(Clone, Debug)]
pub struct Preview {
    pub destinations: Vec<DestinationPreview>,
    pub no_destination: Vec<Unrouted>,
    /// Where the policy came from (shown in the summary).
    pub policy: String,
}

/// The preview of a hunt's confirmations under `config`: an outbox in memory records
/// them, and every row is rendered as it would leave. `seen` (every match of the
/// hunt) gives the relation counts.
pub fn from_confirmations(
    config: &ShareConfig,
    confirmations: &[Confirmation],
    mut seen: Seen,
    policy: &str,
    suppressions: Option<Arc<SuppressionList>>,
) -> Result<Preview, OutboxError> {
    let mut outbox = Outbox::in_memory(config)?;
    let mut router = Router::new(config)?;
    if let Some(list) = suppressions {
        outbox = outbox.with_suppressions(list.clone());
        router = router.with_suppressions(list);
    }
    let mut route_drops: BTreeMap<(Option<String>, Kind, String, DropReason), u64> =
        BTreeMap::new();
    let mut unrouted: BTreeMap<(Kind, String, String), u64> = BTreeMap::new();
    for c in confirmations {
        outbox.record(c)?;
        for (i, o) in c.observations.iter().enumerate() {
            if router.suppressed(&o.indicator, o.kind) {
                // A reported false positive: withheld from every community that
                // supplied it (no positive sighting leaves, as in delivery).
                for d in config
                    .destinations
                    .iter()
                    .filter(|d| o.provenance.iter().any(|p| d.serves(&p.source)))
                {
                    *route_drops
                        .entry((
                            Some(d.name.clone()),
                            o.kind,
                            o.indicator.clone(),
                            DropReason::Suppressed,
                        ))
                        .or_default() += 1;
                }
                continue;
            }
            let mut routing = Routing::default();
            router.route_provenances(
                i,
                (&o.indicator, o.kind),
                &o.provenance,
                &mut routing,
                |target, src, dest| Sighting::from_observation(o, target, src, dest),
            );
            for (dest, reason) in routing.dropped {
                if reason == DropReason::NoDestination {
                    continue;
                }
                *route_drops
                    .entry((dest, o.kind, o.indicator.clone(), reason))
                    .or_default() += 1;
            }
            for p in &o.provenance {
                if !config.destinations.iter().any(|d| d.serves(&p.source)) {
                    *unrouted
                        .entry((o.kind, o.indicator.clone(), p.source.clone()))
                        .or_default() += 1;
                }
            }
        }
    }
    seen.confirm(confirmations);
    let mut preview = build(&outbox, &seen, policy)?;
    for ((dest, kind, indicator, reason), count) in route_drops {
        let Some(d) = preview
            .destinations
            .iter_mut()
            .find(|d| Some(&d.name) == dest.as_ref())
        else {
            continue;
        };
        d.withheld.push(Withheld {
            indicator,
            kind,
            reason: reason.name().to_string(),
            why: reason.to_string(),
            count,
        });
    }
    for d in &mut preview.destinations {
        d.withheld.sort();
    }
    preview.no_destination = unrouted
        .into_iter()
        .map(|((kind, indicator, source), count)| Unrouted {
            indicator,
            kind,
            source,
            count,
        })
        .collect();
    Ok(preview)
}

/// The preview of the sidecar's outbox: its open rows as they would leave now (asked
/// again against `intel` when given), and its `withheld` rows. Policy drops made when
/// rows were recorded left no row: they are in `tripline_sightings_dropped_total` and
/// the log, not here.
pub fn from_outbox(
    outbox: &Outbox,
    intel: Option<Arc<dyn IntelView>>,
    policy: &str,
) -> Result<Preview, OutboxError> {
    let mut seen = Seen::default();
    for e in outbox.list(None)? {
        let key = (e.sighting.kind, e.sighting.indicator.clone());
        let mut provs: Vec<Provenance> = e.provenance.clone().unwrap_or_default();
        if let Some(now) = intel
            .as_ref()
            .and_then(|v| v.provenances(&e.sighting.indicator, e.sighting.kind))
        {
            for p in now {
                if !provs.contains(&p) {
                    provs.push(p);
                }
            }
        }
        let entry = seen.indicators.entry(key.clone()).or_default();
        for p in provs {
            if !entry.contains(&p) {
                entry.push(p);
            }
        }
        seen.confirmed.insert(key);
    }
    if let Some(v) = intel {
        outbox.set_intel(v);
    }
    build(outbox, &seen, policy)
}

fn build(outbox: &Outbox, seen: &Seen, policy: &str) -> Result<Preview, OutboxError> {
    let config = outbox.config();
    let mut destinations: Vec<DestinationPreview> = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for d in &config.destinations {
        destinations.push(DestinationPreview {
            name: d.name.clone(),
            transport: d.transport.kind(),
            directory: directory_name(&d.name, &mut used),
            bodies: Vec::new(),
            files: Vec::new(),
            withheld: Vec::new(),
            anonymised: anonymisation(d),
            relation: relation(d, seen),
        });
    }
    let mut taxii_rows: Vec<Vec<TaxiiRow>> =
        config.destinations.iter().map(|_| Vec::new()).collect();
    let mut open_rows: Vec<usize> = vec![0; config.destinations.len()];
    for e in outbox.list(None)? {
        let Some(di) = config
            .destinations
            .iter()
            .position(|d| d.name == e.sighting.destination)
        else {
            continue;
        };
        let dest = &config.destinations[di];
        let out = &mut destinations[di];
        if e.state == State::Withheld {
            out.withheld.push(Withheld {
                indicator: e.sighting.indicator.clone(),
                kind: e.sighting.kind,
                reason: "withheld_at_send".into(),
                why: e.last_error.clone().unwrap_or_default(),
                count: e.sighting.count,
            });
            continue;
        }
        if !e.state.is_open() {
            continue;
        }
        let pass = open_rows[di] / PASS_ROWS;
        open_rows[di] += 1;
        match outbox.prepare(&e, dest) {
            Err(reason) => out.withheld.push(Withheld {
                indicator: e.sighting.indicator.clone(),
                kind: e.sighting.kind,
                reason: reason.name().into(),
                why: reason.to_string(),
                count: e.sighting.count,
            }),
            Ok((sighting, created)) => {
                let key = outbox.wire_key(&e.key, dest);
                let tlp = entry_tlp(&e, dest, config);
                let n = out.files.len() + 1;
                let rendered = match &dest.transport {
                    TransportConfig::Misp { .. } => Some((
                        format!("{n:04}.json"),
                        misp::add_payload(&sighting).to_string().into_bytes(),
                    )),
                    TransportConfig::StixDir { .. } => stix::dir_file(&Outgoing {
                        sighting: &sighting,
                        key: &key,
                        created,
                    }),
                    TransportConfig::Taxii { .. } => {
                        // Batched below, as delivery batches them.
                        taxii_rows[di].push(TaxiiRow {
                            sighting,
                            key,
                            created,
                            tlp,
                            verify: e.verify,
                            pass,
                        });
                        continue;
                    }
                };
                match rendered {
                    Some((file, bytes)) => {
                        out.files.push((file.clone(), bytes));
                        out.bodies.push(Body {
                            file,
                            tlp,
                            sighting,
                        });
                    }
                    None => out.withheld.push(no_stix_form(&sighting)),
                }
            }
        }
    }
    for (di, rows) in taxii_rows.into_iter().enumerate() {
        let batch_size = usize::try_from(config.destinations[di].batch_size)
            .unwrap_or(1)
            .max(1);
        let out = &mut destinations[di];
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            // Claim a batch as delivery does: up to batch_size rows of one pass; a row
            // to check goes alone.
            let mut batch: Vec<TaxiiRow> = Vec::new();
            while let Some(next) = rows.peek() {
                if batch.len() >= batch_size
                    || (next.verify && !batch.is_empty())
                    || batch.first().is_some_and(|b| b.pass != next.pass)
                {
                    break;
                }
                let Some(row) = rows.next() else { break };
                let alone = row.verify;
                batch.push(row);
                if alone {
                    break;
                }
            }
            let outs: Vec<Outgoing<'_>> = batch
                .iter()
                .map(|r| Outgoing {
                    sighting: &r.sighting,
                    key: &r.key,
                    created: r.created,
                })
                .collect();
            let (body, has_form) = stix::batch_envelope(&outs);
            drop(outs);
            let file = format!("{:04}.json", out.files.len() + 1);
            if let Some(body) = body {
                out.files.push((file.clone(), body.into_bytes()));
            }
            for (row, form) in batch.into_iter().zip(has_form) {
                if form {
                    out.bodies.push(Body {
                        file: file.clone(),
                        tlp: row.tlp,
                        sighting: row.sighting,
                    });
                } else {
                    out.withheld.push(no_stix_form(&row.sighting));
                }
            }
        }
    }
    Ok(Preview {
        destinations,
        no_destination: Vec::new(),
        policy: policy.to_string(),
    })
}

/// A TAXII row that would leave, waiting to be batched.
struct TaxiiRow {
    sighting: Sighting,
    key: String,
    created: DateTime<Utc>,
    tlp: Option<Tlp>,
    verify: bool,
    /// Which delivery pass takes it (a pass claims at most [`PASS_ROWS`] rows).
    pass: usize,
}

/// A row of a STIX destination with no STIX form (an expiration).
fn no_stix_form(sighting: &Sighting) -> Withheld {
    Withheld {
        indicator: sighting.indicator.clone(),
        kind: sighting.kind,
        reason: "no_stix_form".into(),
        why: format!("a {} has no STIX 2.1 form", sighting.sighting_type),
        count: sighting.count,
    }
}

/// A directory name for a destination: its name with anything but ASCII letters,
/// digits, `.`, `_` and `-` replaced by `_`, made unique.
fn directory_name(name: &str, used: &mut BTreeSet<String>) -> String {
    let mut base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if base.starts_with('.') || base.starts_with("summary") {
        base = format!("destination-{base}");
    }
    let mut candidate = base.clone();
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    candidate
}

fn anonymisation(d: &DestinationConfig) -> Option<String> {
    if !d.anonymise {
        return None;
    }
    let mut s = format!(
        "our name left out; times rounded down to {} s",
        d.anonymise_granularity_secs
    );
    if !d.count_buckets.is_empty() {
        let b: Vec<String> = d.count_buckets.iter().map(u64::to_string).collect();
        s.push_str(&format!("; counts reported as buckets [{}]", b.join(", ")));
    }
    Some(s)
}

fn relation(d: &DestinationConfig, seen: &Seen) -> Relation {
    let mut r = Relation::default();
    let mut events: BTreeSet<&str> = BTreeSet::new();
    for (key, provs) in &seen.indicators {
        let theirs: Vec<&Provenance> = provs.iter().filter(|p| d.serves(&p.source)).collect();
        if theirs.is_empty() {
            continue;
        }
        r.indicators_seen += 1;
        if seen.confirmed.contains(key) {
            r.indicators_confirmed += 1;
        }
        events.extend(
            theirs
                .iter()
                .filter_map(|p| p.event_uuid.as_deref())
                .filter(|e| !e.trim().is_empty()),
        );
        // Another community: a source this destination does not serve (whether or
        // not any destination serves it).
        if provs.iter().any(|p| !d.serves(&p.source)) {
            r.also_held_by_other_communities += 1;
        }
    }
    r.events_touched = events.len();
    r
}

/// The TLP of a row's intel: the most restrictive of its provenances (each the most
/// restrictive of its tags, or the destination's `default_tlp` when untagged); `None`
/// when the row kept no provenance or a tag is unknown.
pub fn entry_tlp(e: &OutboxEntry, dest: &DestinationConfig, config: &ShareConfig) -> Option<Tlp> {
    let provs = e.provenance.as_ref()?;
    let mut level: Option<Tlp> = None;
    for p in provs {
        let t = resolve_tlp(p, &config.tlp_map)
            .ok()?
            .unwrap_or(dest.default_tlp);
        level = level.max(Some(t));
    }
    level
}

/// The events a row is about: the target's (by value), else those of its provenances.
pub fn entry_events(e: &OutboxEntry) -> Vec<String> {
    if let Target::Value { event_uuids } = &e.sighting.target {
        if !event_uuids.is_empty() {
            return event_uuids.clone();
        }
    }
    let mut out: Vec<String> = Vec::new();
    for p in e.provenance.iter().flatten() {
        if let Some(ev) = p.event_uuid.as_deref().filter(|x| !x.trim().is_empty()) {
            if !out.iter().any(|o| o == ev) {
                out.push(ev.to_string());
            }
        }
    }
    out
}

fn tlp_name(t: Option<Tlp>) -> String {
    t.map(|t| t.as_str().to_ascii_lowercase())
        .unwrap_or_else(|| "-".into())
}

fn target_json(s: &Sighting) -> Value {
    match &s.target {
        Target::Attribute(a) => json!({"attribute": a}),
        Target::Value { event_uuids } => json!({"value": s.indicator, "events": event_uuids}),
    }
}

impl Preview {
    /// Bodies that would be sent, over every destination.
    pub fn body_count(&self) -> usize {
        self.destinations.iter().map(|d| d.files.len()).sum()
    }

    /// Withheld entries, over every destination (and those with no destination).
    pub fn withheld_count(&self) -> usize {
        self.destinations
            .iter()
            .map(|d| d.withheld.len())
            .sum::<usize>()
            + self.no_destination.len()
    }

    /// `summary.json`.
    pub fn summary_json(&self) -> Value {
        let destinations: Vec<Value> = self
            .destinations
            .iter()
            .map(|d| {
                let bodies: Vec<Value> = d
                    .bodies
                    .iter()
                    .map(|b| {
                        json!({
                            "file": format!("{}/{}", d.directory, b.file),
                            "indicator": b.sighting.indicator,
                            "kind": b.sighting.kind.name(),
                            "type": b.sighting.sighting_type.name(),
                            "count": b.sighting.count,
                            "first_seen": stix::timestamp(b.sighting.first_seen),
                            "last_seen": stix::timestamp(b.sighting.last_seen),
                            "target": target_json(&b.sighting),
                            "tlp": tlp_name(b.tlp),
                        })
                    })
                    .collect();
                let withheld: Vec<Value> = d
                    .withheld
                    .iter()
                    .map(|w| {
                        json!({"indicator": w.indicator, "kind": w.kind.name(),
                               "reason": w.reason, "why": w.why, "count": w.count})
                    })
                    .collect();
                let by_type = |t: SightingType| {
                    d.bodies
                        .iter()
                        .filter(|b| b.sighting.sighting_type == t)
                        .count()
                };
                json!({
                    "name": d.name,
                    "transport": d.transport,
                    "directory": d.directory,
                    "would_send": {
                        "bodies": d.files.len(),
                        "sightings": by_type(SightingType::Sighting),
                        "false_positives": by_type(SightingType::FalsePositive),
                        "expirations": by_type(SightingType::Expiration),
                    },
                    "anonymised": d.anonymised,
                    "bodies": bodies,
                    "withheld": withheld,
                    "relation": {
                        "indicators_seen": d.relation.indicators_seen,
                        "indicators_confirmed": d.relation.indicators_confirmed,
                        "events_touched": d.relation.events_touched,
                        "also_held_by_other_communities": d.relation.also_held_by_other_communities,
                    },
                })
            })
            .collect();
        let none: Vec<Value> = self
            .no_destination
            .iter()
            .map(|u| {
                json!({"indicator": u.indicator, "kind": u.kind.name(), "source": u.source,
                       "count": u.count, "why": DropReason::NoDestination.to_string()})
            })
            .collect();
        json!({
            "nothing_sent": true,
            "policy": self.policy,
            "destinations": destinations,
            "no_destination": none,
        })
    }

    /// `summary.txt`: one section per destination, then what no destination serves.
    pub fn summary_text(&self) -> String {
        let mut s = String::new();
        s.push_str("Sharing preview: nothing was sent.\n");
        s.push_str(&format!("Policy: {}\n", self.policy));
        for d in &self.destinations {
            s.push_str(&format!(
                "\n== {} ({}): {} body(ies) in {}/\n",
                d.name,
                d.transport,
                d.files.len(),
                d.directory
            ));
            let r = d.relation;
            s.push_str(&format!(
                "  their intel here: {} indicator(s) seen, {} confirmed, {} event(s) touched; \
                 {} of those indicators also held by other communities\n",
                r.indicators_seen,
                r.indicators_confirmed,
                r.events_touched,
                r.also_held_by_other_communities
            ));
            if let Some(a) = &d.anonymised {
                s.push_str(&format!("  anonymised: {a}\n"));
            }
            for b in &d.bodies {
                let target = match &b.sighting.target {
                    Target::Attribute(a) => format!("attribute {a}"),
                    Target::Value { event_uuids } if event_uuids.is_empty() => {
                        "by value".to_string()
                    }
                    Target::Value { event_uuids } => {
                        format!("by value in event(s) {}", event_uuids.join(", "))
                    }
                };
                s.push_str(&format!(
                    "  send  {:<15} {} x{} {}..{} ({target}, tlp {})  {}\n",
                    b.sighting.sighting_type.name(),
                    b.sighting.indicator,
                    b.sighting.count,
                    stix::timestamp(b.sighting.first_seen),
                    stix::timestamp(b.sighting.last_seen),
                    tlp_name(b.tlp),
                    b.file
                ));
            }
            for w in &d.withheld {
                s.push_str(&format!(
                    "  withheld ({}) {} x{}: {}\n",
                    w.reason, w.indicator, w.count, w.why
                ));
            }
        }
        if !self.no_destination.is_empty() {
            s.push_str("\n== not shared with anyone: no destination serves their intel source\n");
            for u in &self.no_destination {
                s.push_str(&format!(
                    "  {} ({}) x{} from intel source {}\n",
                    u.indicator,
                    u.kind.name(),
                    u.count,
                    u.source
                ));
            }
        }
        s
    }

    /// Writes the preview under `dir` (created if missing). A directory that already
    /// holds something must be an earlier preview: its summary files and the
    /// destination directories its `summary.json` names are replaced; anything else
    /// there is an error, so a preview never overwrites unrelated files.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let old_summary = dir.join("summary.json");
        let non_empty = std::fs::read_dir(dir)?.next().is_some();
        if non_empty {
            let old: Value = std::fs::read_to_string(&old_summary)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .ok_or_else(|| {
                    io::Error::other(format!(
                        "{} is not empty and holds no earlier preview (summary.json): \
                         give an empty or new directory",
                        dir.display()
                    ))
                })?;
            for d in old["destinations"].as_array().into_iter().flatten() {
                if let Some(sub) = d["directory"].as_str() {
                    let p = dir.join(sub);
                    // Only plain names we wrote, never a path elsewhere.
                    if !sub.contains(['/', '\\']) && !sub.starts_with('.') && p.is_dir() {
                        std::fs::remove_dir_all(p)?;
                    }
                }
            }
        }
        for d in &self.destinations {
            let sub = dir.join(&d.directory);
            std::fs::create_dir_all(&sub)?;
            for (file, bytes) in &d.files {
                std::fs::write(sub.join(file), bytes)?;
            }
        }
        let mut json_text = serde_json::to_string_pretty(&self.summary_json())
            .map_err(|e| io::Error::other(e.to_string()))?;
        json_text.push('\n');
        std::fs::write(dir.join("summary.json"), json_text)?;
        std::fs::write(dir.join("summary.txt"), self.summary_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_are_plain_and_unique() {
        let mut used = BTreeSet::new();
        assert_eq!(directory_name("circl", &mut used), "circl");
        assert_eq!(directory_name("circl", &mut used), "circl-2");
        assert_eq!(directory_name("a/x y", &mut used), "a_x_y");
        assert_eq!(directory_name("../x", &mut used), "destination-.._x");
        assert_eq!(directory_name("..", &mut used), "destination-..");
        assert_eq!(directory_name("summary", &mut used), "destination-summary");
    }
}
