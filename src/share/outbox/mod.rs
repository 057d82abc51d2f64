//! The sightings outbox: SQLite (WAL mode) under the state directory
//! (`<state>/sightings.sqlite`), durable, retried, idempotent and inspectable.
//!
//! One row per aggregate: (destination, sighting type, target, indicator, window
//! start) is its unique idempotency key. Recording a confirmation adds each routed
//! observation to its row: `count + 1`, `first_seen`/`last_seen` widened. The same
//! observation confirmed by several rules counts once (the `observed` table keeps a
//! salted 64-bit fingerprint of each observation per row; it holds no log text and is
//! dropped once the row is sent or rejected). Observations for a row already being
//! sent or sent are counted in `late_count` and stay local: a window is one sighting.
//!
//! States: `pending_approval` (manual approval) → `queued` → `sending` → `sent`;
//! `rejected` by an analyst; `withheld` when the policy, asked again just before
//! delivery with the current configuration and intel, no longer allows it
//! (`recheck.rs`); `failed` when the destination refused the content
//! (retrying cannot help; `approve` re-queues it). A transient failure puts the row
//! back in `queued` with `attempts`, `last_error` and `next_attempt` (exponential
//! backoff, capped): a destination down for hours loses nothing.
//!
//! Frozen rows: a row is frozen from its first delivery attempt (`attempts > 0`); an
//! observation for its aggregate after that opens the next generation (a new row and
//! idempotency key, `row.rs`), never alters what was sent, so the crash check always
//! looks for what the attempt carried (issue 10 defect 9). Rows `sending` or `sent`
//! still count later observations in `late_count` only.
//!
//! Exactly once: a row is claimed (`sending`, with this process's owner token and a
//! lease) in a committed transaction before its request goes out. Whenever the outcome
//! of an attempt is unknown (the process was killed, the request timed out, the
//! answer was a 5xx), the row keeps `verify = 1`, and its next attempt first asks the
//! destination whether the sighting already landed ([`Transport::is_delivered`]);
//! only if not is it sent again. Rows left in `sending` by a dead process are taken
//! back (with `verify = 1`) by the first delivery pass after their lease ends (three
//! request timeouts plus a minute, and a timeout per further request of the row).
//! After an unknown outcome the check waits `settle_secs` (defect 8); see
//! `deliver.rs` for the per-destination workers, blocked destinations and the audit
//! log (`audit` table, every request, kept `audit_retention_days`).
//!
//! A queued row is due when its window has closed (so its count is complete) and its
//! backoff has passed; [`Outbox::send_now`] ignores both.
//!
//! Costs: one SQLite transaction per confirmation (a few indexed statements per
//! routed observation); one row per aggregate plus 16 bytes per distinct observation
//! while it is open. Delivery holds the database lock only between requests.

mod deliver;
mod recheck;
mod row;

pub use deliver::PASS_ROWS;
pub use recheck::IntelView;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::correlate::{Confirmation, Observation, Provenance};
use crate::intel::Kind;

use super::export::{self, ExportFormat};
use super::policy::{Approval, DropReason, Routed, Router, Routing, ShareConfig, ShareConfigError};
use super::sighting::{from_millis, window_start, Sighting, SightingType};
use super::stats::{Counters, ShareStats};
use super::transport::Transport;
use row::{event_uuids, provenance_json, raw_row, target_attr, COLUMNS, SCHEMA};

/// The outbox file name under the state directory.
pub const FILE_NAME: &str = "sightings.sqlite";

/// Where a row stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    PendingApproval,
    Queued,
    Sending,
    Sent,
    Failed,
    Rejected,
    /// The policy, asked again just before delivery, no longer allows it (the
    /// configuration or the intel changed since it was queued); `last_error` says why.
    Withheld,
}

impl State {
    pub const ALL: [State; 7] = [
        State::PendingApproval,
        State::Queued,
        State::Sending,
        State::Sent,
        State::Failed,
        State::Rejected,
        State::Withheld,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::PendingApproval => "pending_approval",
            State::Queued => "queued",
            State::Sending => "sending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Rejected => "rejected",
            State::Withheld => "withheld",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Still to be shared (what an export shows).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            State::PendingApproval | State::Queued | State::Sending | State::Failed
        )
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outbox failure, naming the database.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Db {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("outbox: cannot create the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ShareConfigError),
    #[error(transparent)]
    Suppressions(#[from] super::suppress::SuppressError),
    #[error("outbox {path}: no sighting with id {id}")]
    NotFound { path: String, id: i64 },
    #[error("outbox {path}: sighting {id} is {state}; cannot {action} it")]
    BadState {
        path: String,
        id: i64,
        state: State,
        action: &'static str,
    },
    #[error("outbox {path}: row {id}: {reason}")]
    Corrupt {
        path: String,
        id: i64,
        reason: String,
    },
}

/// One row, as `tripline sightings list` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    pub id: i64,
    pub key: String,
    pub sighting: Sighting,
    pub state: State,
    pub attempts: u32,
    /// When a queued row may next be tried (after backoff).
    pub next_attempt: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The next attempt first checks whether an earlier one landed.
    pub verify: bool,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// Observations that arrived after the row left: counted here, never sent.
    pub late_count: u64,
    /// The analyst's reason for a false-positive report: local only, never sent.
    pub note: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The provenances that allowed the row (asked again before delivery); `None` for
    /// a row written before they were kept.
    pub provenance: Option<Vec<Provenance>>,
}

/// Which rows `approve` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// One row (`pending_approval` or `failed`).
    Id(i64),
    /// Every `pending_approval` row.
    All,
}

/// What recording did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordOutcome {
    /// New rows.
    pub created: usize,
    /// Observations added to an open row.
    pub merged: usize,
    /// Observations a row already counted (another rule confirmed them too).
    pub duplicates: usize,
    /// Observations for rows already sending, sent or rejected.
    pub late: usize,
    /// Ids of the rows touched.
    pub ids: Vec<i64>,
    pub dropped: Vec<(Option<String>, DropReason)>,
}

/// What one delivery pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    /// Found already at the destination by the check after an unknown outcome.
    pub already_delivered: usize,
    /// Transient failures, queued again with backoff.
    pub retrying: usize,
    /// Refused by the destination: now `failed`.
    pub failed: usize,
    /// Due rows left for a later pass (destination unreachable, unknown destination).
    pub deferred: usize,
    /// No longer allowed by the policy, asked again before sending: now `withheld`.
    pub withheld: usize,
    /// Destinations that refused our credentials and get no requests until their
    /// configuration or key changes: one sentence each (name, status, what to do).
    pub blocked: Vec<String>,
}

/// One request of the delivery audit log (`tripline sightings audit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub destination: String,
    /// The outbox rows the request carried (or checked).
    pub sighting_ids: Vec<i64>,
    pub url: String,
    /// Exactly what was sent.
    pub body: String,
    /// The answer's HTTP status; `None` when there was none (timeout, a file written).
    pub status: Option<u16>,
    /// The answer's first bytes, or what went wrong.
    pub answer: String,
    /// Who approved the rows (`auto` for destinations without approval).
    pub approved_by: Option<String>,
}

impl AuditEntry {
    /// As `tripline sightings audit --json` writes it (one object per line).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "at": self.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "destination": self.destination,
            "sighting_ids": self.sighting_ids,
            "url": self.url,
            "body": self.body,
            "status": self.status,
            "answer": self.answer,
            "approved_by": self.approved_by,
        })
    }
}

/// The outbox. `Send + Sync`; one connection behind a mutex, held only between
/// requests.
pub struct Outbox {
    conn: Mutex<Connection>,
    path: String,
    router: Router,
    owner: String,
    salt: u64,
    transports: Mutex<HashMap<String, Arc<dyn Transport>>>,
    counters: Mutex<Counters>,
    /// One delivery pass at a time per destination.
    dest_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    intel: Mutex<Option<Arc<dyn IntelView>>>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("path", &self.path)
            .field(
                "destinations",
                &self
                    .router
                    .config()
                    .destinations
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens (creating) `<state_dir>/sightings.sqlite`.
    pub fn open(state_dir: &Path, config: &ShareConfig) -> Result<Outbox, OutboxError> {
        std::fs::create_dir_all(state_dir).map_err(|source| OutboxError::StateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(FILE_NAME);
        let shown = path.display().to_string();
        let conn = Connection::open(&path).map_err(|source| OutboxError::Db {
            path: shown.clone(),
            source,
        })?;
        let mut outbox = Outbox::init(conn, shown, config)?;
        // False positives reported with `tripline feedback`: no positive sightings.
        let suppressions = super::SuppressionList::open(state_dir)?;
        outbox.router = outbox.router.with_suppressions(Arc::new(suppressions));
        Ok(outbox)
    }

    /// An outbox in memory: `tripline hunt --sightings-out`, tests.
    pub fn in_memory(config: &ShareConfig) -> Result<Outbox, OutboxError> {
        let conn = Connection::open_in_memory().map_err(|source| OutboxError::Db {
            path: ":memory:".into(),
            source,
        })?;
        Outbox::init(conn, ":memory:".into(), config)
    }

    /// Sightings of indicators on `list` (reported false positives) are not queued.
    pub fn with_suppressions(mut self, list: Arc<super::SuppressionList>) -> Outbox {
        self.router = self.router.with_suppressions(list);
        self
    }

    fn init(conn: Connection, path: String, config: &ShareConfig) -> Result<Outbox, OutboxError> {
        let router = Router::new(config)?;
        let db = |source| OutboxError::Db {
            path: path.clone(),
            source,
        };
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        // WAL: readers (the CLI) never block the sidecar's writes; NORMAL sync is
        // durable across process crashes (a power cut may lose the last commits).
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(db)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        row::migrate(&conn).map_err(db)?;
        let salt: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'salt'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)?;
        let salt = match salt.and_then(|s| s.parse::<u64>().ok()) {
            Some(s) => s,
            None => {
                let s = uuid::Uuid::new_v4().as_u64_pair().0;
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('salt', ?1)",
                    params![s.to_string()],
                )
                .map_err(db)?;
                s
            }
        };
        Ok(Outbox {
            conn: Mutex::new(conn),
            path,
            router,
            owner: uuid::Uuid::new_v4().to_string(),
            salt,
            transports: Mutex::new(HashMap::new()),
            counters: Mutex::new(Counters::default()),
            dest_locks: Mutex::new(HashMap::new()),
            intel: Mutex::new(None),
        })
    }

    /// The database path (`:memory:` for an in-memory outbox).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn config(&self) -> &ShareConfig {
        self.router.config()
    }

    fn db(&self, source: rusqlite::Error) -> OutboxError {
        OutboxError::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll
        // back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Routes a confirmation and adds its observations to their rows.
    pub fn record(&self, confirmation: &Confirmation) -> Result<RecordOutcome, OutboxError> {
        let view = self.intel.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let routing = self
            .router
            .route_checked(confirmation, |indicator, kind, provs| {
                view.as_ref().and_then(|v| v.lapsed(indicator, kind, provs))
            });
        let fps: Vec<i64> = confirmation
            .observations
            .iter()
            .map(|o| fingerprint(self.salt, o))
            .collect();
        self.store(routing, |r| fps.get(r.observation).copied(), None)
    }

    /// Queues a false positive (type 1) for `indicator` to every community among
    /// `provenances` that policy allows. `reason` stays local (the row's note).
    pub fn queue_false_positive(
        &self,
        indicator: &str,
        kind: Kind,
        reason: Option<&str>,
        provenances: &[Provenance],
    ) -> Result<RecordOutcome, OutboxError> {
        let now = Utc::now();
        let mut routing = Routing::default();
        self.router.route_provenances(
            0,
            (indicator, kind),
            provenances,
            &mut routing,
            |target, source, dest| {
                Sighting::new(
                    indicator,
                    kind,
                    target,
                    SightingType::FalsePositive,
                    1,
                    now,
                    now,
                    source,
                    dest,
                )
            },
        );
        // Every report counts: a fresh fingerprint each time.
        let fp = (uuid::Uuid::new_v4().as_u64_pair().0 >> 1) as i64;
        self.store(routing, |_| Some(fp), reason)
    }

    fn store(
        &self,
        routing: Routing,
        fp_of: impl Fn(&Routed) -> Option<i64>,
        note: Option<&str>,
    ) -> Result<RecordOutcome, OutboxError> {
        let mut out = RecordOutcome {
            dropped: routing.dropped.clone(),
            ..RecordOutcome::default()
        };
        let now = Utc::now().timestamp_millis();
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.db(e))?;
        for r in &routing.routed {
            let Some(dest) = self.router.config().destinations.get(r.destination) else {
                continue;
            };
            let s = &r.sighting;
            let ws = window_start(s.first_seen, dest.window_secs);
            let we = ws.saturating_add(i64::try_from(dest.window_secs).unwrap_or(i64::MAX));
            let key = s.idempotency_key(ws);
            let events = event_uuids(&s.target);
            // The newest generation of this aggregate (see `row.rs`: frozen rows).
            let existing: Option<(i64, String, String, Option<String>, i64, i64)> = tx
                .query_row(
                    "SELECT id, state, event_uuids, provenance, attempts, generation \
                     FROM sightings WHERE base_key = ?1 ORDER BY generation DESC LIMIT 1",
                    params![key],
                    |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                            row.get(5)?,
                        ))
                    },
                )
                .optional()
                .map_err(|e| self.db(e))?;
            // Counted already by any generation of this aggregate (another rule
            // confirmed the same observation)?
            let seen = match fp_of(r) {
                Some(fp) => tx
                    .query_row(
                        "SELECT 1 FROM observed o JOIN sightings s ON s.id = o.sighting_id \
                         WHERE s.base_key = ?1 AND o.fp = ?2",
                        params![key, fp],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(|e| self.db(e))?
                    .is_some(),
                None => false,
            };
            let insert = |generation: i64| -> Result<i64, OutboxError> {
                let state = match dest.approval {
                    Approval::Auto => State::Queued,
                    Approval::Manual => State::PendingApproval,
                };
                let idem = if generation == 0 {
                    key.clone()
                } else {
                    format!("{key}#g{generation}")
                };
                tx.execute(
                    "INSERT INTO sightings (idem_key, destination, indicator, kind, target, \
                     event_uuids, sighting_type, count, first_seen, last_seen, window_start, \
                     window_end, source, state, next_attempt, note, created, updated, \
                     provenance, base_key, generation, approved_by) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0, \
                     ?15, ?16, ?16, ?17, ?18, ?19, ?20)",
                    params![
                        idem,
                        s.destination,
                        s.indicator,
                        s.kind as u8,
                        target_attr(&s.target),
                        serde_json::to_string(&events).unwrap_or_else(|_| "[]".into()),
                        s.sighting_type.code(),
                        s.count as i64,
                        s.first_seen.timestamp_millis(),
                        s.last_seen.timestamp_millis(),
                        ws,
                        we,
                        s.source,
                        state.as_str(),
                        note,
                        now,
                        provenance_json(None, &r.provenances),
                        key,
                        generation,
                        (state == State::Queued).then_some("auto"),
                    ],
                )
                .map_err(|e| self.db(e))?;
                let id = tx.last_insert_rowid();
                if let Some(fp) = fp_of(r) {
                    tx.execute(
                        "INSERT OR IGNORE INTO observed (sighting_id, fp) VALUES (?1, ?2)",
                        params![id, fp],
                    )
                    .map_err(|e| self.db(e))?;
                }
                Ok(id)
            };
            let id = match existing {
                None => {
                    out.created += 1;
                    insert(0)?
                }
                Some((id, _, _, _, _, _)) if seen => {
                    out.duplicates += 1;
                    id
                }
                Some((id, state, stored_events, stored_provenance, attempts, generation)) => {
                    let open = matches!(
                        State::parse(&state),
                        Some(State::PendingApproval | State::Queued | State::Failed)
                    );
                    if open && attempts > 0 {
                        // Frozen since its first attempt (issue 10 defect 9): what was
                        // sent, and what the crash check looks for, stays as it was; the
                        // observation opens the next generation.
                        out.created += 1;
                        insert(generation + 1)?
                    } else if open {
                        if let Some(fp) = fp_of(r) {
                            tx.execute(
                                "INSERT OR IGNORE INTO observed (sighting_id, fp) VALUES (?1, ?2)",
                                params![id, fp],
                            )
                            .map_err(|e| self.db(e))?;
                        }
                        let mut merged: Vec<String> =
                            serde_json::from_str(&stored_events).unwrap_or_default();
                        for e in &events {
                            if !merged.contains(e) {
                                merged.push(e.clone());
                            }
                        }
                        tx.execute(
                            "UPDATE sightings SET count = count + ?1, \
                             first_seen = min(first_seen, ?2), last_seen = max(last_seen, ?3), \
                             event_uuids = ?4, note = coalesce(note, ?5), updated = ?6, \
                             provenance = ?8 WHERE id = ?7",
                            params![
                                s.count as i64,
                                s.first_seen.timestamp_millis(),
                                s.last_seen.timestamp_millis(),
                                serde_json::to_string(&merged).unwrap_or_else(|_| "[]".into()),
                                note,
                                now,
                                id,
                                provenance_json(stored_provenance.as_deref(), &r.provenances),
                            ],
                        )
                        .map_err(|e| self.db(e))?;
                        out.merged += 1;
                        id
                    } else {
                        if let Some(fp) = fp_of(r) {
                            tx.execute(
                                "INSERT OR IGNORE INTO observed (sighting_id, fp) VALUES (?1, ?2)",
                                params![id, fp],
                            )
                            .map_err(|e| self.db(e))?;
                        }
                        tx.execute(
                            "UPDATE sightings SET late_count = late_count + ?1, updated = ?2 \
                             WHERE id = ?3",
                            params![s.count as i64, now, id],
                        )
                        .map_err(|e| self.db(e))?;
                        out.late += 1;
                        id
                    }
                }
            };
            if !out.ids.contains(&id) {
                out.ids.push(id);
            }
        }
        tx.commit().map_err(|e| self.db(e))?;
        drop(conn);
        let mut c = self.counters();
        let mut by_reason: std::collections::BTreeMap<(Option<&str>, DropReason), usize> =
            std::collections::BTreeMap::new();
        for (dest, reason) in &out.dropped {
            *c.dropped.entry(*reason).or_default() += 1;
            *by_reason.entry((dest.as_deref(), *reason)).or_default() += 1;
        }
        drop(c);
        // One line per destination and reason (never the indicator: it may be victim
        // data); the counts are in tripline_sightings_dropped_total{reason}.
        for ((dest, reason), n) in by_reason {
            if reason != DropReason::NoDestination {
                tracing::info!(
                    destination = dest.unwrap_or("-"),
                    reason = reason.name(),
                    provenances = n,
                    "Sharing policy left provenances out of sightings: {reason}."
                );
            }
        }
        let mut c = self.counters();
        c.late += out.late as u64;
        Ok(out)
    }

    /// Rows, oldest first; only those in `state` when given.
    pub fn list(&self, state: Option<State>) -> Result<Vec<OutboxEntry>, OutboxError> {
        let conn = self.lock();
        let (sql, arg) = match state {
            Some(s) => (
                format!("SELECT {COLUMNS} FROM sightings WHERE state = ?1 ORDER BY id"),
                Some(s.as_str()),
            ),
            None => (format!("SELECT {COLUMNS} FROM sightings ORDER BY id"), None),
        };
        let mut stmt = conn.prepare(&sql).map_err(|e| self.db(e))?;
        let rows = match arg {
            Some(a) => stmt.query_map(params![a], raw_row),
            None => stmt.query_map([], raw_row),
        }
        .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        for raw in rows {
            out.push(self.entry(raw.map_err(|e| self.db(e))?)?);
        }
        Ok(out)
    }

    /// The delivery audit log, oldest first (`tripline sightings audit`).
    pub fn audit(&self) -> Result<Vec<AuditEntry>, OutboxError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT id, at, destination, sighting_ids, url, body, status, answer, \
                 approved_by FROM audit ORDER BY id",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([], |r| {
                let ids: String = r.get(3)?;
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: from_millis(r.get(1)?),
                    destination: r.get(2)?,
                    sighting_ids: serde_json::from_str(&ids).unwrap_or_default(),
                    url: r.get(4)?,
                    body: r.get(5)?,
                    status: r.get(6)?,
                    answer: r.get(7)?,
                    approved_by: r.get(8)?,
                })
            })
            .map_err(|e| self.db(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.db(e))?;
        Ok(rows)
    }

    /// One row.
    pub fn get(&self, id: i64) -> Result<OutboxEntry, OutboxError> {
        let conn = self.lock();
        let raw = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM sightings WHERE id = ?1"),
                params![id],
                raw_row,
            )
            .optional()
            .map_err(|e| self.db(e))?;
        drop(conn);
        match raw {
            Some(raw) => self.entry(raw),
            None => Err(OutboxError::NotFound {
                path: self.path.clone(),
                id,
            }),
        }
    }

    /// Queues rows held for approval (or a `failed` row, to try again), approved by
    /// `$USER` (as the audit log shows it). Returns how many rows were queued.
    pub fn approve(&self, which: Selection) -> Result<usize, OutboxError> {
        let by = std::env::var("USER").unwrap_or_else(|_| "unknown".to_string());
        self.approve_by(which, &by)
    }

    /// [`Outbox::approve`], naming who approved (`tripline sightings approve --by`).
    pub fn approve_by(&self, which: Selection, by: &str) -> Result<usize, OutboxError> {
        let now = Utc::now().timestamp_millis();
        match which {
            Selection::All => {
                let conn = self.lock();
                conn.execute(
                    "UPDATE sightings SET state = 'queued', next_attempt = 0, updated = ?1, \
                     approved_by = ?2 WHERE state = 'pending_approval'",
                    params![now, by],
                )
                .map_err(|e| self.db(e))
            }
            Selection::Id(id) => self.transition(
                id,
                &[State::PendingApproval, State::Failed],
                "approve",
                |c| {
                    c.execute(
                        "UPDATE sightings SET state = 'queued', next_attempt = 0, updated = ?1, \
                         approved_by = ?3 WHERE id = ?2",
                        params![now, id, by],
                    )
                },
            ),
        }
    }

    /// Rejects a row that has not left (`pending_approval`, `queued` or `failed`).
    pub fn reject(&self, id: i64) -> Result<(), OutboxError> {
        let now = Utc::now().timestamp_millis();
        self.transition(
            id,
            &[State::PendingApproval, State::Queued, State::Failed],
            "reject",
            |c| {
                c.execute(
                    "UPDATE sightings SET state = 'rejected', updated = ?1 WHERE id = ?2",
                    params![now, id],
                )?;
                c.execute("DELETE FROM observed WHERE sighting_id = ?1", params![id])
            },
        )
        .map(|_| ())
    }

    fn transition(
        &self,
        id: i64,
        from: &[State],
        action: &'static str,
        apply: impl FnOnce(&Connection) -> rusqlite::Result<usize>,
    ) -> Result<usize, OutboxError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.db(e))?;
        let state: Option<String> = tx
            .query_row(
                "SELECT state FROM sightings WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        let Some(state) = state else {
            return Err(OutboxError::NotFound {
                path: self.path.clone(),
                id,
            });
        };
        let state = self.state_of(id, &state)?;
        if !from.contains(&state) {
            return Err(OutboxError::BadState {
                path: self.path.clone(),
                id,
                state,
                action,
            });
        }
        apply(&tx).map_err(|e| self.db(e))?;
        tx.commit().map_err(|e| self.db(e))?;
        Ok(1)
    }

    /// What would be shared (rows not yet sent or rejected, as the policy and the
    /// anonymisation would let them leave now), in `format`; only `destination`'s rows
    /// when given.
    pub fn export(
        &self,
        format: ExportFormat,
        destination: Option<&str>,
    ) -> Result<String, OutboxError> {
        let rows: Vec<OutboxEntry> = self
            .list(None)?
            .into_iter()
            .filter(|e| e.state.is_open())
            .filter(|e| destination.is_none_or(|d| e.sighting.destination == d))
            .filter_map(|mut e| {
                // As it would leave now: the policy asked again, current anonymisation.
                let dest = self
                    .router
                    .config()
                    .destinations
                    .iter()
                    .find(|d| d.name == e.sighting.destination)?;
                let (sighting, created) = self.prepare(&e, dest).ok()?;
                e.sighting = sighting;
                e.created = created;
                e.key = self.wire_key(&e.key, dest);
                Some(e)
            })
            .collect();
        Ok(export::render(format, &rows))
    }

    /// Plain numbers for metrics: rows by destination and state, outbox depth, and
    /// this process's delivery counters.
    pub fn stats(&self) -> Result<ShareStats, OutboxError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT destination, state, count(*) FROM sightings GROUP BY destination, state \
                 ORDER BY destination, state",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.db(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.db(e))?;
        let oldest: Option<i64> = conn
            .query_row(
                "SELECT min(created) FROM sightings \
                 WHERE state IN ('pending_approval', 'queued', 'sending')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.db(e))?;
        drop(stmt);
        drop(conn);
        let by_state: Vec<(String, State, u64)> = rows
            .into_iter()
            .filter_map(|(d, s, n)| State::parse(&s).map(|s| (d, s, n.max(0) as u64)))
            .collect();
        Ok(self.counters().snapshot(by_state, oldest.map(from_millis)))
    }
}

/// A salted FNV-1a 64 of what identifies one observation: the line it came from
/// (its origin: input stream and position, [`crate::correlate::LineOrigin`]) and the
/// indicator seen there. A line read again after a restart has the same origin, so it
/// counts once; two lines alike in time, host and indicator have different origins,
/// so each counts: counts are events. An observation without an origin (built by
/// hand) is identified by what it holds (time, indicator, where it was seen). Only
/// the hash is stored; it never leaves the outbox.
fn fingerprint(salt: u64, o: &Observation) -> i64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
        h ^= 0xff;
        h = h.wrapping_mul(PRIME);
    };
    if let Some(origin) = &o.origin {
        eat(b"origin");
        eat(origin.stream.as_bytes());
        eat(&origin.position.to_le_bytes());
        eat(o.indicator.as_bytes());
        eat(o.atomic.as_bytes());
        return (h >> 1) as i64;
    }
    eat(&o.time.timestamp_nanos_opt().unwrap_or(0).to_le_bytes());
    eat(o.indicator.as_bytes());
    eat(o.atomic.as_bytes());
    eat(o.host.as_deref().unwrap_or("").as_bytes());
    eat(o.log_source.as_bytes());
    eat(o
        .source_ip
        .map(|i| i.to_string())
        .unwrap_or_default()
        .as_bytes());
    eat(o
        .destination_ip
        .map(|i| i.to_string())
        .unwrap_or_default()
        .as_bytes());
    (h >> 1) as i64
}

/// What sharing would send for these confirmations, without sending or storing
/// anything (`tripline hunt --sightings-out`).
pub fn preview(
    config: &ShareConfig,
    confirmations: &[Confirmation],
    format: ExportFormat,
) -> Result<String, OutboxError> {
    preview_with_drops(config, confirmations, format).map(|(text, _)| text)
}

/// [`preview`], and how many provenances the policy left out, by reason (for the
/// summary that says what was withheld and why).
pub fn preview_with_drops(
    config: &ShareConfig,
    confirmations: &[Confirmation],
    format: ExportFormat,
) -> Result<(String, Vec<(DropReason, u64)>), OutboxError> {
    let outbox = Outbox::in_memory(config)?;
    let mut dropped: std::collections::BTreeMap<DropReason, u64> = Default::default();
    for c in confirmations {
        for (_, reason) in outbox.record(c)?.dropped {
            *dropped.entry(reason).or_default() += 1;
        }
    }
    Ok((outbox.export(format, None)?, dropped.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("lost"), None);
    }

    #[test]
    fn outbox_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Outbox>();
        check::<ShareStats>();
    }
}
