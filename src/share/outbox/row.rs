//! The outbox's tables and how a stored row reads back.
//!
//! `sightings`: one row per aggregate, unique on `idem_key`; times in Unix
//! milliseconds (windows in seconds); a `target` of NULL means by value (restricted to
//! `event_uuids`, a JSON list). `observed`: `(row, fingerprint)` pairs of the
//! observations an open row counts. `meta`: the fingerprint salt.
//!
//! `provenance` (added with the send-time policy check; NULL in rows written before)
//! is a JSON list of the provenances that allowed the row: intel source, event and
//! attribute ids, type, category, tags, TLP and distribution, what
//! [`Router::recheck`](crate::share::policy::Router::recheck) needs to ask the policy
//! again before delivery. It holds nothing from a log line.

use rusqlite::{Connection, Row};
use serde::{Deserialize, Serialize};

use super::{Outbox, OutboxEntry, OutboxError, State};
use crate::correlate::Provenance;
use crate::intel::{Kind, Tlp};
use crate::share::policy::parse_tlp;
use crate::share::sighting::{from_millis, Sighting, SightingType, Target};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sightings (
    id INTEGER PRIMARY KEY,
    idem_key TEXT NOT NULL UNIQUE,
    destination TEXT NOT NULL,
    indicator TEXT NOT NULL,
    kind INTEGER NOT NULL,
    target TEXT,
    event_uuids TEXT NOT NULL,
    sighting_type INTEGER NOT NULL,
    count INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    source TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER,
    last_error TEXT,
    verify INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until INTEGER,
    late_count INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    sent_at INTEGER,
    provenance TEXT,
    base_key TEXT,
    generation INTEGER NOT NULL DEFAULT 0,
    unknown_at INTEGER,
    approved_by TEXT
);
CREATE INDEX IF NOT EXISTS sightings_state ON sightings (state, next_attempt);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    destination TEXT NOT NULL,
    sighting_ids TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    status INTEGER,
    answer TEXT NOT NULL,
    approved_by TEXT
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE TABLE IF NOT EXISTS observed (
    sighting_id INTEGER NOT NULL,
    fp INTEGER NOT NULL,
    PRIMARY KEY (sighting_id, fp)
) WITHOUT ROWID;
";

pub(super) const COLUMNS: &str =
    "id, idem_key, destination, indicator, kind, target, event_uuids, \
    sighting_type, count, first_seen, last_seen, window_start, window_end, source, state, \
    attempts, next_attempt, last_error, verify, late_count, note, created, updated, sent_at, provenance";

/// A row as stored.
pub(super) struct RawRow {
    id: i64,
    key: String,
    destination: String,
    indicator: String,
    kind: i64,
    target: Option<String>,
    event_uuids: String,
    sighting_type: i64,
    count: i64,
    first_seen: i64,
    last_seen: i64,
    window_start: i64,
    window_end: i64,
    source: Option<String>,
    state: String,
    attempts: i64,
    next_attempt: Option<i64>,
    last_error: Option<String>,
    verify: bool,
    late_count: i64,
    note: Option<String>,
    created: i64,
    updated: i64,
    sent_at: Option<i64>,
    provenance: Option<String>,
}

pub(super) fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: r.get(0)?,
        key: r.get(1)?,
        destination: r.get(2)?,
        indicator: r.get(3)?,
        kind: r.get(4)?,
        target: r.get(5)?,
        event_uuids: r.get(6)?,
        sighting_type: r.get(7)?,
        count: r.get(8)?,
        first_seen: r.get(9)?,
        last_seen: r.get(10)?,
        window_start: r.get(11)?,
        window_end: r.get(12)?,
        source: r.get(13)?,
        state: r.get(14)?,
        attempts: r.get(15)?,
        next_attempt: r.get(16)?,
        last_error: r.get(17)?,
        verify: r.get(18)?,
        late_count: r.get(19)?,
        note: r.get(20)?,
        created: r.get(21)?,
        updated: r.get(22)?,
        sent_at: r.get(23)?,
        provenance: r.get(24)?,
    })
}

pub(super) fn target_attr(t: &Target) -> Option<&str> {
    match t {
        Target::Attribute(a) => Some(a),
        Target::Value { .. } => None,
    }
}

/// Adds the columns an outbox written before them lacks (`provenance`, the frozen
/// rows' `base_key` and `generation`, `unknown_at`, `approved_by`), and the index on
/// `base_key`.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for (column, ddl) in [
        ("provenance", "provenance TEXT"),
        ("base_key", "base_key TEXT"),
        ("generation", "generation INTEGER NOT NULL DEFAULT 0"),
        ("unknown_at", "unknown_at INTEGER"),
        ("approved_by", "approved_by TEXT"),
    ] {
        let has: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('sightings') WHERE name = ?1")?
            .exists([column])?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE sightings ADD COLUMN {ddl}"))?;
        }
    }
    conn.execute_batch(
        "UPDATE sightings SET base_key = idem_key WHERE base_key IS NULL;
         CREATE INDEX IF NOT EXISTS sightings_base ON sightings (base_key, generation);",
    )
}

/// A provenance as the `provenance` column stores it.
#[derive(Serialize, Deserialize)]
struct StoredProvenance {
    source: String,
    #[serde(default)]
    event_uuid: Option<String>,
    #[serde(default)]
    attribute_uuid: Option<String>,
    #[serde(default)]
    source_type: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    tlp: Option<String>,
    #[serde(default)]
    distribution: Option<u8>,
}

/// The JSON of `provenances`, merged into `existing` (a stored list) without repeats.
pub(super) fn provenance_json(existing: Option<&str>, provenances: &[Provenance]) -> String {
    let mut all: Vec<Provenance> = existing.map(parse_provenance).unwrap_or_default();
    for p in provenances {
        if !all.contains(p) {
            all.push(p.clone());
        }
    }
    let stored: Vec<StoredProvenance> = all
        .into_iter()
        .map(|p| StoredProvenance {
            source: p.source,
            event_uuid: p.event_uuid,
            attribute_uuid: p.attribute_uuid,
            source_type: p.source_type,
            category: p.category,
            tags: p.tags,
            tlp: p.tlp.map(|t: Tlp| t.as_str().to_ascii_lowercase()),
            distribution: p.distribution,
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

/// The provenances of a `provenance` column. A list that does not read back is empty:
/// the policy then finds nothing that allows the row, and it is withheld.
pub(super) fn parse_provenance(json: &str) -> Vec<Provenance> {
    let stored: Vec<StoredProvenance> = serde_json::from_str(json).unwrap_or_default();
    stored
        .into_iter()
        .map(|p| Provenance {
            source: p.source,
            event_uuid: p.event_uuid,
            attribute_uuid: p.attribute_uuid,
            source_type: p.source_type,
            category: p.category,
            tags: p.tags,
            tlp: p.tlp.as_deref().and_then(parse_tlp),
            distribution: p.distribution,
        })
        .collect()
}

pub(super) fn event_uuids(t: &Target) -> Vec<String> {
    match t {
        Target::Attribute(_) => Vec::new(),
        Target::Value { event_uuids } => event_uuids.clone(),
    }
}

impl Outbox {
    pub(super) fn state_of(&self, id: i64, s: &str) -> Result<State, OutboxError> {
        State::parse(s).ok_or_else(|| OutboxError::Corrupt {
            path: self.path.clone(),
            id,
            reason: format!("unknown state {s:?}"),
        })
    }

    pub(super) fn entry(&self, raw: RawRow) -> Result<OutboxEntry, OutboxError> {
        let corrupt = |reason: String| OutboxError::Corrupt {
            path: self.path.clone(),
            id: raw.id,
            reason,
        };
        let state = self.state_of(raw.id, &raw.state)?;
        let sighting_type = SightingType::from_code(raw.sighting_type)
            .ok_or_else(|| corrupt(format!("unknown sighting type {}", raw.sighting_type)))?;
        let kind = u8::try_from(raw.kind)
            .ok()
            .filter(|k| usize::from(*k) < Kind::ALL.len())
            .map(Kind::from_u8)
            .ok_or_else(|| corrupt(format!("unknown kind {}", raw.kind)))?;
        let target = match raw.target {
            Some(a) => Target::Attribute(a),
            None => Target::Value {
                event_uuids: serde_json::from_str(&raw.event_uuids)
                    .map_err(|e| corrupt(format!("event_uuids: {e}")))?,
            },
        };
        let sighting = Sighting::new(
            &raw.indicator,
            kind,
            target,
            sighting_type,
            raw.count.max(1) as u64,
            from_millis(raw.first_seen),
            from_millis(raw.last_seen),
            raw.source.as_deref(),
            &raw.destination,
        );
        Ok(OutboxEntry {
            id: raw.id,
            key: raw.key,
            sighting,
            state,
            attempts: u32::try_from(raw.attempts).unwrap_or(0),
            next_attempt: match (state, raw.next_attempt) {
                (State::Queued, Some(t)) => Some(from_millis(t)),
                _ => None,
            },
            last_error: raw.last_error,
            verify: raw.verify,
            window_start: from_millis(raw.window_start.saturating_mul(1000)),
            window_end: from_millis(raw.window_end.saturating_mul(1000)),
            late_count: raw.late_count.max(0) as u64,
            note: raw.note,
            created: from_millis(raw.created),
            updated: from_millis(raw.updated),
            sent_at: raw.sent_at.map(from_millis),
            provenance: raw.provenance.as_deref().map(parse_provenance),
        })
    }
}
