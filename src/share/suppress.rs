//! The local suppression list: indicators reported as false positives
//! (`tripline feedback false-positive`), kept in the state directory
//! (`<state>/feedback.sqlite`, SQLite in WAL mode) so that they survive restarts and
//! can be changed by another process while the sidecar runs.
//!
//! What a suppression does (see the README, "False positives"):
//! - alerts for the indicator carry a mark (`tripline.enrichments[i].suppressed`
//!   with the report's id, reason and time; `tripline.suppressed: true` when every
//!   indicator of the alert is suppressed), or, with `[feedback] suppressed_alerts =
//!   "drop"`, are not written (an alert that also names an indicator that is not
//!   suppressed is written without the suppressed ones);
//! - positive sightings stop: the policy ([`super::Router::route`]) drops the
//!   observation with [`super::DropReason::Suppressed`], and a row queued before the
//!   report is withheld at send; false-positive sightings are not affected;
//! - every match of a suppressed indicator is counted
//!   (`tripline_observations_suppressed_total`).
//!
//! Invariants: one suppression per indicator (canonical value and kind, as the index
//! holds it); the list only ever names indicators, never log text.
//!
//! Costs: readers look up a snapshot (one hash lookup by value, no lock, no
//! allocation). Changes made by another process are seen through SQLite's
//! `PRAGMA data_version`, asked at most once per [`REFRESH_EVERY`] and only when a
//! lookup happens, i.e. only for lines that matched; a change reloads the whole list
//! (it is small: one row per report).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::correlate::Observation;
use crate::index::Index;
use crate::intel::Kind;
use crate::matcher::Hit;
use crate::sink::alert::Alert;

/// The file under the state directory.
pub const FILE_NAME: &str = "feedback.sqlite";

/// How often a reader asks whether another process changed the list.
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS suppressions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    indicator TEXT NOT NULL,
    kind TEXT NOT NULL,
    reported TEXT NOT NULL,
    reason TEXT,
    created INTEGER NOT NULL,
    communities TEXT NOT NULL DEFAULT '[]',
    UNIQUE (indicator, kind)
);";

/// What happens to alerts of suppressed indicators (`[feedback] suppressed_alerts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressedAlerts {
    /// Written, with the suppression's mark (the default).
    #[default]
    Mark,
    /// Not written.
    Drop,
}

/// `[feedback]` in the configuration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackConfig {
    /// `"mark"` (default) or `"drop"`.
    pub suppressed_alerts: SuppressedAlerts,
}

/// One false-positive report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Suppression {
    pub id: i64,
    /// The indicator's canonical value, as the index holds it.
    pub indicator: String,
    #[serde(serialize_with = "kind_name")]
    pub kind: Kind,
    /// The value the analyst reported (e.g. the subdomain shown in the alert).
    pub reported: String,
    /// The analyst's reason: local only, never sent.
    pub reason: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub created: DateTime<Utc>,
    /// The destinations a false-positive sighting was queued for.
    pub communities: Vec<String>,
}

fn kind_name<S: serde::Serializer>(k: &Kind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.name())
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

impl Suppression {
    /// The mark an alert's enrichment carries (`tripline.enrichments[i].suppressed`).
    pub fn mark(&self) -> serde_json::Value {
        let mut m = serde_json::json!({
            "id": self.id,
            "at": self.created.to_rfc3339_opts(SecondsFormat::Secs, true),
        });
        if let Some(r) = &self.reason {
            m["reason"] = serde_json::json!(r);
        }
        m
    }
}

/// A suppression list failure, naming the database.
#[derive(Debug, thiserror::Error)]
pub enum SuppressError {
    #[error("suppression list {path}: {source}")]
    Db {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("suppression list: cannot create the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Default)]
struct Snapshot {
    /// By canonical value: each kind's suppression (a value is rarely of two kinds).
    by_value: HashMap<String, Vec<Arc<Suppression>>>,
}

struct Db {
    conn: Connection,
    /// `PRAGMA data_version` when the snapshot was read.
    version: i64,
}

/// The list, shared by the emitter (alert marks), the policy (sightings) and the CLI.
/// `Send + Sync`.
pub struct SuppressionList {
    db: Mutex<Db>,
    path: String,
    snapshot: ArcSwap<Snapshot>,
    started: Instant,
    /// Milliseconds since `started` of the last `data_version` check.
    checked_ms: AtomicU64,
    /// Matches of suppressed indicators seen (`tripline_observations_suppressed_total`).
    observed: AtomicU64,
}

impl std::fmt::Debug for SuppressionList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuppressionList")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SuppressionList {
    /// Opens (creating) `<state_dir>/feedback.sqlite`.
    pub fn open(state_dir: &Path) -> Result<SuppressionList, SuppressError> {
        std::fs::create_dir_all(state_dir).map_err(|source| SuppressError::StateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(FILE_NAME);
        let shown = path.display().to_string();
        let db = |source| SuppressError::Db {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(db)?;
        SuppressionList::init(conn, shown.clone()).map_err(db)
    }

    /// A list in memory (tests).
    pub fn in_memory() -> Result<SuppressionList, SuppressError> {
        let db = |source| SuppressError::Db {
            path: ":memory:".into(),
            source,
        };
        let conn = Connection::open_in_memory().map_err(db)?;
        SuppressionList::init(conn, ":memory:".into()).map_err(db)
    }

    fn init(conn: Connection, path: String) -> Result<SuppressionList, rusqlite::Error> {
        conn.busy_timeout(Duration::from_secs(10))?;
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch(SCHEMA)?;
        let list = SuppressionList {
            db: Mutex::new(Db { conn, version: -1 }),
            path,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            started: Instant::now(),
            checked_ms: AtomicU64::new(0),
            observed: AtomicU64::new(0),
        };
        list.reload()?;
        Ok(list)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> SuppressError {
        SuppressError::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the whole list into a new snapshot when `data_version` moved.
    fn reload(&self) -> Result<(), rusqlite::Error> {
        let mut db = self.lock();
        let version: i64 = db.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if version == db.version {
            return Ok(());
        }
        let all = read_all(&db.conn)?;
        db.version = version;
        let mut snap = Snapshot::default();
        for s in all {
            snap.by_value
                .entry(s.indicator.clone())
                .or_default()
                .push(Arc::new(s));
        }
        self.snapshot.store(Arc::new(snap));
        Ok(())
    }

    /// Picks up changes made by another process, at most once per [`REFRESH_EVERY`].
    /// Never blocks a reader: when another thread is checking, this one goes on with
    /// the snapshot it has.
    fn maybe_refresh(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.checked_ms.load(Ordering::Relaxed);
        let every = u64::try_from(REFRESH_EVERY.as_millis()).unwrap_or(500);
        if now.saturating_sub(last) < every {
            return;
        }
        if self
            .checked_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        if let Err(e) = self.reload() {
            tracing::warn!(path = %self.path, error = %e, "Cannot re-read the suppression list; the last one read stays in use.");
        }
    }

    /// The suppression of the indicator (canonical value and kind), if any.
    pub fn get(&self, indicator: &str, kind: Kind) -> Option<Arc<Suppression>> {
        self.maybe_refresh();
        let snap = self.snapshot.load();
        snap.by_value
            .get(indicator)?
            .iter()
            .find(|s| s.kind == kind)
            .cloned()
    }

    /// Whether the list is empty (as last read).
    pub fn is_empty(&self) -> bool {
        self.maybe_refresh();
        self.snapshot.load().by_value.is_empty()
    }

    /// Counts `n` matches of suppressed indicators.
    pub fn count_observed(&self, n: u64) {
        self.observed.fetch_add(n, Ordering::Relaxed);
    }

    /// Matches of suppressed indicators seen by this process.
    pub fn observed(&self) -> u64 {
        self.observed.load(Ordering::Relaxed)
    }

    /// Adds (or renews: same indicator, new report) a suppression; returns it.
    pub fn add(
        &self,
        indicator: &str,
        kind: Kind,
        reported: &str,
        reason: Option<&str>,
        communities: &[String],
    ) -> Result<Suppression, SuppressError> {
        let now = Utc::now();
        let communities_json =
            serde_json::to_string(communities).unwrap_or_else(|_| "[]".to_string());
        {
            // Update, else insert (an upsert would use up an AUTOINCREMENT id each
            // time, and ids are what people type).
            let mut db = self.lock();
            let tx = db.conn.transaction().map_err(|e| self.err(e))?;
            let updated = tx
                .execute(
                    "UPDATE suppressions SET reported = ?3, reason = coalesce(?4, reason), \
                     created = ?5, communities = ?6 WHERE indicator = ?1 AND kind = ?2",
                    params![
                        indicator,
                        kind.name(),
                        reported,
                        reason,
                        now.timestamp_millis(),
                        communities_json
                    ],
                )
                .map_err(|e| self.err(e))?;
            if updated == 0 {
                tx.execute(
                    "INSERT INTO suppressions (indicator, kind, reported, reason, created, \
                     communities) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        indicator,
                        kind.name(),
                        reported,
                        reason,
                        now.timestamp_millis(),
                        communities_json
                    ],
                )
                .map_err(|e| self.err(e))?;
            }
            tx.commit().map_err(|e| self.err(e))?;
        }
        // Our own write does not move our connection's data_version: read it again.
        self.force_reload()?;
        self.find(indicator, kind)?
            .ok_or_else(|| self.err(rusqlite::Error::QueryReturnedNoRows))
    }

    fn force_reload(&self) -> Result<(), SuppressError> {
        self.lock().version = -1;
        self.reload().map_err(|e| self.err(e))
    }

    fn find(&self, indicator: &str, kind: Kind) -> Result<Option<Suppression>, SuppressError> {
        let db = self.lock();
        db.conn
            .query_row(
                "SELECT id, indicator, kind, reported, reason, created, communities \
                 FROM suppressions WHERE indicator = ?1 AND kind = ?2",
                params![indicator, kind.name()],
                row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every suppression, oldest first, read from the database now.
    pub fn list(&self) -> Result<Vec<Suppression>, SuppressError> {
        let db = self.lock();
        read_all(&db.conn).map_err(|e| self.err(e))
    }

    /// Removes a suppression by id; returns it when there was one.
    pub fn remove(&self, id: i64) -> Result<Option<Suppression>, SuppressError> {
        let found = self.list()?.into_iter().find(|s| s.id == id);
        if found.is_some() {
            let db = self.lock();
            db.conn
                .execute("DELETE FROM suppressions WHERE id = ?1", params![id])
                .map_err(|e| self.err(e))?;
        }
        self.force_reload()?;
        Ok(found)
    }
}

/// Keeps the items `i` of `v` with `keep[i]` (those past `keep`'s end too).
pub fn retain_kept<T>(v: &mut Vec<T>, keep: &[bool]) {
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        keep.get(i - 1).copied().unwrap_or(true)
    });
}

impl SuppressionList {
    /// The suppression of each of an alert's indicators (`(canonical value, kind)`,
    /// in enrichment order), and whether all are suppressed; `None` when none is.
    /// Counts the suppressed ones as observed. What [`SuppressionList::apply`] and
    /// retro matching decide by.
    pub fn find_all<'a>(
        &self,
        indicators: impl Iterator<Item = (&'a str, Kind)>,
    ) -> Option<(Vec<Option<Arc<Suppression>>>, bool)> {
        if self.is_empty() {
            return None;
        }
        let found: Vec<Option<Arc<Suppression>>> =
            indicators.map(|(v, k)| self.get(v, k)).collect();
        let n = found.iter().flatten().count();
        if n == 0 {
            return None;
        }
        self.count_observed(n as u64);
        let all = n == found.len();
        Some((found, all))
    }

    /// Applies the list to one emitted line: marks the enrichments of suppressed
    /// indicators (`Mark`), or removes them with their matches and observations
    /// (`Drop`). Returns `false` when the alert is not to be written (`Drop`, and
    /// every indicator of the line is suppressed). Counts the suppressed matches.
    /// Cost: one hash lookup per match (no allocation when none is suppressed).
    pub fn apply(
        &self,
        mode: SuppressedAlerts,
        index: &Index,
        alert: &mut Alert,
        matches: &mut Vec<(Hit, Vec<u32>)>,
        observations: &mut Vec<Observation>,
    ) -> bool {
        let Some((found, all)) = self.find_all(
            matches
                .iter()
                .map(|(hit, _)| (index.value(hit.id), hit.id.kind())),
        ) else {
            return true;
        };
        match mode {
            SuppressedAlerts::Mark => {
                for (i, s) in found.iter().enumerate() {
                    if let Some(s) = s {
                        alert.mark_suppressed(i, s.mark());
                    }
                }
                if all {
                    alert.tripline.suppressed = Some(true);
                }
                true
            }
            SuppressedAlerts::Drop => {
                observations.retain(|o| self.get(&o.indicator, o.kind).is_none());
                if all {
                    return false;
                }
                let keep: Vec<bool> = found.iter().map(Option::is_none).collect();
                alert.retain_enrichments(&keep);
                retain_kept(matches, &keep);
                true
            }
        }
    }
}

fn read_all(conn: &Connection) -> Result<Vec<Suppression>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT id, indicator, kind, reported, reason, created, communities \
         FROM suppressions ORDER BY id",
    )?;
    let rows = stmt.query_map([], row)?;
    rows.collect()
}

fn row(r: &rusqlite::Row<'_>) -> Result<Suppression, rusqlite::Error> {
    let kind: String = r.get(2)?;
    let created: i64 = r.get(5)?;
    let communities: String = r.get(6)?;
    Ok(Suppression {
        id: r.get(0)?,
        indicator: r.get(1)?,
        kind: Kind::ALL
            .into_iter()
            .find(|k| k.name() == kind)
            .unwrap_or(Kind::Literal),
        reported: r.get(3)?,
        reason: r.get(4)?,
        created: Utc
            .timestamp_millis_opt(created)
            .single()
            .unwrap_or_default(),
        communities: serde_json::from_str(&communities).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_get_remove() {
        let l = SuppressionList::in_memory().expect("list");
        assert!(l.get("atlas-upd.com", Kind::Domain).is_none());
        let s = l
            .add(
                "atlas-upd.com",
                Kind::Domain,
                "a.b.atlas-upd.com",
                Some("our updater"),
                &["circl".into()],
            )
            .expect("added");
        let got = l.get("atlas-upd.com", Kind::Domain).expect("suppressed");
        assert_eq!(got.id, s.id);
        assert_eq!(got.reported, "a.b.atlas-upd.com");
        assert_eq!(got.communities, ["circl"]);
        assert_eq!(got.mark()["reason"], "our updater");
        assert!(l.get("atlas-upd.com", Kind::Hostname).is_none());
        // A second report renews, it does not add.
        let again = l
            .add("atlas-upd.com", Kind::Domain, "atlas-upd.com", None, &[])
            .expect("renewed");
        assert_eq!(again.id, s.id);
        assert_eq!(again.reason.as_deref(), Some("our updater"));
        assert_eq!(l.list().expect("list").len(), 1);
        assert_eq!(l.remove(s.id).expect("removed").map(|r| r.id), Some(s.id));
        assert!(l.get("atlas-upd.com", Kind::Domain).is_none());
        assert!(l.remove(s.id).expect("nothing").is_none());
    }

    #[test]
    fn another_connection_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reader = SuppressionList::open(dir.path()).expect("reader");
        let writer = SuppressionList::open(dir.path()).expect("writer");
        assert!(reader.get("198.51.100.0/24", Kind::Ipv4).is_none());
        writer
            .add("198.51.100.0/24", Kind::Ipv4, "198.51.100.7", None, &[])
            .expect("added");
        let deadline = Instant::now() + Duration::from_secs(10);
        while reader.get("198.51.100.0/24", Kind::Ipv4).is_none() {
            assert!(Instant::now() < deadline, "change never seen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn list_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SuppressionList>();
    }
}
