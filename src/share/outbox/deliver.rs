//! Delivery passes: one worker per destination claims its due rows, checks those
//! whose last outcome is unknown, sends (in batches where the format allows), and
//! records the result (sent, queued again with backoff, or failed) and every request
//! in the audit log.
//!
//! Destinations are independent: [`Outbox::deliver_due`] and [`Outbox::send_now`]
//! run one thread per destination, and `tripline run` runs one worker per destination
//! ([`Outbox::deliver_destination`]), so a slow, failing or blocked destination never
//! delays the others. Each destination has its own lock: one pass at a time per
//! destination and [`Outbox`]; several processes may share the file (the claim is
//! atomic; rows another live process claimed are left alone until its lease ends).
//!
//! A row is claimed (`sending`, owner token, lease) in a committed statement before
//! its request goes out, and the database lock is released during the request.
//!
//! Slow servers (issue 10 defect 8): a server may apply a request after we gave up
//! on it. An attempt with an unknown outcome records when it ended (`unknown_at`);
//! the row is not checked, nor sent again, before `settle_secs` after that (default
//! two request timeouts), even by `send_now`.
//!
//! Credentials refused (HTTP 401/403): the destination is blocked (no request at
//! all) until its configuration or its key (file contents, or the environment
//! variable's value) changes; the block is kept in the outbox (`meta`), so a new
//! process does not try again either. Rows stay queued; nothing is lost. Shown by
//! `tripline_sighting_destination_blocked{destination}` and an error naming the
//! destination, the status and what to do.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, OptionalExtension};

use super::row::raw_row;
use super::{DeliveryReport, Outbox, OutboxEntry, OutboxError, COLUMNS};
use crate::share::policy::{DestinationConfig, TransportConfig};
use crate::share::sighting::Sighting;
use crate::share::transport::{self, DeliveryError, Exchange, Outgoing, Transport};

/// Rows looked at per destination and delivery pass (the preview batches by it too).
pub const PASS_ROWS: usize = 500;
const BATCH: i64 = PASS_ROWS as i64;

/// Seconds to wait after `attempts` failed attempts: `initial × 2^(attempts-1)`,
/// capped at `max`.
pub fn backoff_secs(attempts: u32, initial: u64, max: u64) -> u64 {
    let shift = attempts.saturating_sub(1).min(40);
    initial.saturating_mul(1u64 << shift).min(max).max(1)
}

/// One claimed row, ready to leave.
struct Ready {
    entry: OutboxEntry,
    sighting: Sighting,
    created: DateTime<Utc>,
    key: String,
}

impl Ready {
    fn out(&self) -> Outgoing<'_> {
        Outgoing {
            sighting: &self.sighting,
            key: &self.key,
            created: self.created,
        }
    }
}

impl Outbox {
    /// Delivers every queued row now, whatever its window and backoff (not before a
    /// row's settle time after an unknown outcome, nor to a blocked destination).
    pub fn send_now(&self) -> Result<DeliveryReport, OutboxError> {
        self.deliver(Utc::now(), true)
    }

    /// Delivers the rows due at `now`: window closed, backoff passed.
    pub fn deliver_due(&self, now: DateTime<Utc>) -> Result<DeliveryReport, OutboxError> {
        self.deliver(now, false)
    }

    /// Every configured destination at once, each on its own thread.
    fn deliver(&self, now: DateTime<Utc>, force: bool) -> Result<DeliveryReport, OutboxError> {
        self.prune_audit()?;
        let mut report = DeliveryReport {
            deferred: self.orphans()?,
            ..DeliveryReport::default()
        };
        let names: Vec<String> = self
            .router
            .config()
            .destinations
            .iter()
            .map(|d| d.name.clone())
            .collect();
        let results: Vec<Result<DeliveryReport, OutboxError>> = if names.len() <= 1 {
            names
                .iter()
                .map(|n| self.deliver_destination(n, now, force))
                .collect()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = names
                    .iter()
                    .map(|n| scope.spawn(move || self.deliver_destination(n, now, force)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| match h.join() {
                        Ok(r) => r,
                        Err(panic) => std::panic::resume_unwind(panic),
                    })
                    .collect()
            })
        };
        let mut first_error = None;
        for r in results {
            match r {
                Ok(r) => report.add(r),
                Err(e) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if report != DeliveryReport::default() {
            tracing::info!(
                delivered = report.delivered,
                already_delivered = report.already_delivered,
                retrying = report.retrying,
                failed = report.failed,
                deferred = report.deferred,
                withheld = report.withheld,
                blocked = report.blocked.len(),
                "Sightings delivery pass."
            );
        }
        Ok(report)
    }

    /// Queued rows for destinations no longer configured: left queued, counted.
    fn orphans(&self) -> Result<usize, OutboxError> {
        let names: Vec<String> = self
            .router
            .config()
            .destinations
            .iter()
            .map(|d| d.name.clone())
            .collect();
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT destination, count(*) FROM sightings WHERE state = 'queued' GROUP BY destination")
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.db(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.db(e))?;
        let mut n = 0;
        for (dest, count) in rows {
            if !names.contains(&dest) {
                tracing::warn!(destination = %dest, rows = count, "Sightings for a destination no longer configured; left queued.");
                n += usize::try_from(count).unwrap_or(0);
            }
        }
        Ok(n)
    }

    fn dest_lock(&self, name: &str) -> Arc<Mutex<()>> {
        let mut locks = self.dest_locks.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(locks.entry(name.to_string()).or_default())
    }

    /// One destination's pass: what its worker runs (`tripline run` runs one worker
    /// per destination; [`Outbox::deliver_due`] runs them all at once). `force`: as
    /// [`Outbox::send_now`].
    pub fn deliver_destination(
        &self,
        name: &str,
        now: DateTime<Utc>,
        force: bool,
    ) -> Result<DeliveryReport, OutboxError> {
        let lock = self.dest_lock(name);
        let _one_pass = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = DeliveryReport::default();
        let Some(dest) = self
            .router
            .config()
            .destinations
            .iter()
            .find(|d| d.name == name)
        else {
            return Ok(report);
        };
        let now_ms = now.timestamp_millis();
        let settle_ms = i64::try_from(dest.settle_secs())
            .unwrap_or(i64::MAX / 2000)
            .saturating_mul(1000);
        let (ids, settling) = {
            let conn = self.lock();
            // Rows a dead process (or an earlier pass of ours, for this destination)
            // left in flight: their outcome is unknown, so they are checked before
            // being sent again. Their lease already outlasted the server's processing.
            conn.execute(
                "UPDATE sightings SET state = 'queued', verify = 1, owner = NULL, \
                 unknown_at = NULL, next_attempt = coalesce(next_attempt, 0) \
                 WHERE destination = ?3 AND state = 'sending' \
                 AND (owner IS NULL OR owner = ?1 OR lease_until < ?2)",
                params![self.owner, now_ms, name],
            )
            .map_err(|e| self.db(e))?;
            let due = if force {
                ""
            } else {
                "AND coalesce(next_attempt, 0) <= ?1 AND window_end * 1000 <= ?1"
            };
            let settled = "(verify = 0 OR unknown_at IS NULL OR unknown_at + ?4 <= max(?1, ?5))";
            let sql = format!(
                "SELECT id FROM sightings WHERE destination = ?3 AND state = 'queued' \
                 {due} AND {settled} ORDER BY id LIMIT ?2"
            );
            let real_now = Utc::now().timestamp_millis();
            let mut stmt = conn.prepare(&sql).map_err(|e| self.db(e))?;
            let ids = stmt
                .query_map(params![now_ms, BATCH, name, settle_ms, real_now], |r| {
                    r.get(0)
                })
                .map_err(|e| self.db(e))?
                .collect::<rusqlite::Result<Vec<i64>>>()
                .map_err(|e| self.db(e))?;
            drop(stmt);
            let settling: i64 = conn
                .query_row(
                    &format!(
                        "SELECT count(*) FROM sightings WHERE destination = ?3 AND state = 'queued' \
                         {due} AND NOT {settled} AND ?2 = ?2"
                    ),
                    params![now_ms, BATCH, name, settle_ms, real_now],
                    |r| r.get(0),
                )
                .map_err(|e| self.db(e))?;
            (ids, usize::try_from(settling).unwrap_or(0))
        };
        if settling > 0 {
            tracing::debug!(destination = %name, rows = settling, "Sightings with an unknown outcome wait for the server to settle before the check.");
        }
        report.deferred += settling;
        if ids.is_empty() {
            return Ok(report);
        }
        if let Some(why) = self.blocked(dest)? {
            tracing::warn!(destination = %name, rows = ids.len(), "{why}");
            report.deferred += ids.len();
            report.blocked.push(why);
            return Ok(report);
        }
        let transport = match self.transport(dest) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(destination = %name, error = %e, "Cannot build the destination's transport.");
                // Counted against the first row (as an attempt), the rest wait.
                if let Some(entry) = self.claim(ids[0], now, dest)? {
                    self.counters().failed(name, 0.0, e.kind());
                    self.fail(&entry, dest, &e, now)?;
                    report.retrying += 1;
                }
                report.deferred += ids.len() - 1;
                return Ok(report);
            }
        };
        let batch_size = if transport.batches() {
            usize::try_from(dest.batch_size).unwrap_or(1).max(1)
        } else {
            1
        };
        let mut left = ids.into_iter().peekable();
        let mut stop = false;
        while left.peek().is_some() {
            if stop {
                report.deferred += left.by_ref().count();
                break;
            }
            // Claim the next batch: rows that need a check go alone.
            let mut batch: Vec<Ready> = Vec::new();
            while batch.len() < batch_size {
                let Some(&id) = left.peek() else { break };
                let Some(entry) = self.claim(id, now, dest)? else {
                    left.next();
                    continue;
                };
                if entry.verify && !batch.is_empty() {
                    self.release(id)?;
                    break;
                }
                left.next();
                let (sighting, created) = match self.prepare(&entry, dest) {
                    Ok(prepared) => prepared,
                    Err(reason) => {
                        self.withhold(&entry, reason)?;
                        report.withheld += 1;
                        continue;
                    }
                };
                let key = self.wire_key(&entry.key, dest);
                let verify = entry.verify;
                batch.push(Ready {
                    entry,
                    sighting,
                    created,
                    key,
                });
                if verify {
                    break;
                }
            }
            if batch.is_empty() {
                continue;
            }
            let started = Instant::now();
            let results: Vec<Result<bool, DeliveryError>> = if batch[0].entry.verify {
                let r = &batch[0];
                let out = r.out();
                vec![transport.landed(&out).and_then(|found| {
                    if found >= transport.wanted(&out) {
                        Ok(true)
                    } else {
                        transport.deliver_rest(&out, found).map(|()| false)
                    }
                })]
            } else {
                let outs: Vec<Outgoing<'_>> = batch.iter().map(Ready::out).collect();
                transport
                    .deliver_many(&outs)
                    .into_iter()
                    .map(|r| r.map(|()| false))
                    .collect()
            };
            let elapsed = started.elapsed().as_secs_f64();
            let exchanges = transport.take_exchanges();
            self.audit_exchanges(name, &batch, &exchanges)?;
            self.counters().batch(name, batch.len());
            for (ready, result) in batch.iter().zip(results) {
                let entry = &ready.entry;
                let id = entry.id;
                match result {
                    Ok(already) => {
                        self.mark_sent(id)?;
                        let age = (Utc::now() - entry.created).num_milliseconds() as f64 / 1000.0;
                        self.counters()
                            .delivered(name, elapsed, age.max(0.0), already);
                        if already {
                            report.already_delivered += 1;
                            tracing::info!(destination = %name, id, "Sighting found at the destination after an unknown outcome; not sent again.");
                        } else {
                            report.delivered += 1;
                            tracing::debug!(destination = %name, id, seconds = elapsed, "Sighting delivered.");
                        }
                    }
                    Err(e) => {
                        self.counters().failed(name, elapsed, e.kind());
                        self.fail(entry, dest, &e, now)?;
                        if e.is_auth() {
                            stop = true;
                            let why = self.block(dest, &e)?;
                            if !report.blocked.contains(&why) {
                                tracing::error!(destination = %name, status = e.status().unwrap_or(0), "{why}");
                                report.blocked.push(why);
                            }
                            report.retrying += 1;
                        } else if e.is_permanent() {
                            report.failed += 1;
                            tracing::warn!(destination = %name, id, error = %e, "Sighting refused by the destination; marked failed.");
                        } else {
                            report.retrying += 1;
                            if e.destination_unreachable() {
                                if !stop {
                                    tracing::warn!(destination = %name, error = %e, "Destination unreachable; its sightings wait for the next pass.");
                                }
                                stop = true;
                            } else {
                                tracing::warn!(destination = %name, id, error = %e, "Sighting delivery failed; will retry.");
                            }
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    fn transport(&self, dest: &DestinationConfig) -> Result<Arc<dyn Transport>, DeliveryError> {
        let mut cache = self.transports.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = cache.get(&dest.name) {
            return Ok(Arc::clone(t));
        }
        let t: Arc<dyn Transport> = Arc::from(transport::build(dest)?);
        cache.insert(dest.name.clone(), Arc::clone(&t));
        Ok(t)
    }

    /// What identifies the destination's configuration and credentials now: its
    /// settings, and a salted hash of its key or password (file contents or
    /// environment value). A blocked destination is tried again when this changes.
    fn credentials_fingerprint(&self, dest: &DestinationConfig) -> String {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ self.salt;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(PRIME);
            }
            h ^= 0xff;
            h = h.wrapping_mul(PRIME);
        };
        eat(format!("{dest:?}").as_bytes());
        let (env, file) = match &dest.transport {
            TransportConfig::Misp {
                api_key_env,
                api_key_file,
                ..
            } => (api_key_env.as_deref(), api_key_file.as_deref()),
            TransportConfig::Taxii {
                password_env,
                password_file,
                ..
            } => (password_env.as_deref(), password_file.as_deref()),
            TransportConfig::StixDir { .. } => (None, None),
        };
        if let Some(var) = env {
            eat(std::env::var(var).unwrap_or_default().as_bytes());
        }
        if let Some(path) = file {
            eat(&std::fs::read(path).unwrap_or_default());
        }
        format!("{h:016x}")
    }

    /// Why the destination is blocked (credentials refused, unchanged since), or
    /// `None`; a block whose configuration or key changed is lifted here.
    fn blocked(&self, dest: &DestinationConfig) -> Result<Option<String>, OutboxError> {
        let meta_key = format!("blocked:{}", dest.name);
        let stored: Option<String> = {
            let conn = self.lock();
            conn.query_row(
                "SELECT value FROM meta WHERE key = ?1",
                params![meta_key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))?
        };
        let Some(stored) = stored else {
            self.counters().set_blocked(&dest.name, false);
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_str(&stored).unwrap_or_default();
        if v["fingerprint"].as_str() == Some(self.credentials_fingerprint(dest).as_str()) {
            self.counters().set_blocked(&dest.name, true);
            return Ok(Some(v["why"].as_str().unwrap_or("blocked").to_string()));
        }
        let conn = self.lock();
        conn.execute("DELETE FROM meta WHERE key = ?1", params![meta_key])
            .map_err(|e| self.db(e))?;
        drop(conn);
        self.counters().set_blocked(&dest.name, false);
        tracing::info!(destination = %dest.name, "Destination configuration or key changed; trying it again.");
        Ok(None)
    }

    /// Blocks the destination after its credentials were refused; returns the
    /// message shown.
    fn block(&self, dest: &DestinationConfig, e: &DeliveryError) -> Result<String, OutboxError> {
        // The cached transport holds the refused key: read it again when unblocked.
        self.transports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&dest.name);
        let what = match &dest.transport {
            TransportConfig::Misp { .. } => "its API key (api_key_file or api_key_env)",
            TransportConfig::Taxii { .. } => "its username and password",
            TransportConfig::StixDir { .. } => "its configuration",
        };
        let why = format!(
            "destination \"{}\" refused our credentials (HTTP {}): no request goes to it \
             until its configuration or {what} changes; its sightings stay queued",
            dest.name,
            e.status().unwrap_or(0)
        );
        let value = serde_json::json!({
            "fingerprint": self.credentials_fingerprint(dest),
            "status": e.status(),
            "since": Utc::now().timestamp_millis(),
            "why": why,
        });
        let conn = self.lock();
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![format!("blocked:{}", dest.name), value.to_string()],
        )
        .map_err(|e| self.db(e))?;
        drop(conn);
        self.counters().set_blocked(&dest.name, true);
        Ok(why)
    }

    /// Marks the row `sending` (committed) and reads it back, or `None` if another
    /// process took it first. The lease covers every request the row may need.
    fn claim(
        &self,
        id: i64,
        now: DateTime<Utc>,
        dest: &DestinationConfig,
    ) -> Result<Option<OutboxEntry>, OutboxError> {
        let conn = self.lock();
        // Three timeouts and a minute, plus a timeout and a pacing slot per request
        // beyond the first (a MISP row of count n is n requests).
        let per_request = dest
            .timeout_secs
            .saturating_add(60 / dest.max_requests_per_minute.max(1))
            .saturating_add(1);
        let base = dest.timeout_secs.saturating_mul(3).saturating_add(60);
        let start = now.max(Utc::now());
        let lease_from =
            (start + Duration::seconds(i64::try_from(base).unwrap_or(3600))).timestamp_millis();
        let per_request_ms = i64::try_from(per_request)
            .unwrap_or(3600)
            .saturating_mul(1000);
        let cap = i64::try_from(dest.misp_max_sightings_per_row).unwrap_or(1);
        let n = conn
            .execute(
                "UPDATE sightings SET state = 'sending', owner = ?1, \
                 lease_until = ?2 + (min(max(count, 1), ?5) - 1) * ?6, \
                 attempts = attempts + 1, updated = ?3 WHERE id = ?4 AND state = 'queued'",
                params![
                    self.owner,
                    lease_from,
                    Utc::now().timestamp_millis(),
                    id,
                    cap,
                    per_request_ms
                ],
            )
            .map_err(|e| self.db(e))?;
        if n == 0 {
            return Ok(None);
        }
        let raw = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM sightings WHERE id = ?1"),
                params![id],
                raw_row,
            )
            .map_err(|e| self.db(e))?;
        drop(conn);
        self.entry(raw).map(Some)
    }

    /// Puts a claimed row back untouched (attempt not made).
    fn release(&self, id: i64) -> Result<(), OutboxError> {
        let conn = self.lock();
        conn.execute(
            "UPDATE sightings SET state = 'queued', owner = NULL, attempts = max(attempts - 1, 0) \
             WHERE id = ?1 AND state = 'sending'",
            params![id],
        )
        .map_err(|e| self.db(e))?;
        Ok(())
    }

    fn mark_sent(&self, id: i64) -> Result<(), OutboxError> {
        let now = Utc::now().timestamp_millis();
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.db(e))?;
        tx.execute(
            "UPDATE sightings SET state = 'sent', sent_at = ?1, updated = ?1, last_error = NULL, \
             verify = 0, unknown_at = NULL, owner = NULL, next_attempt = NULL WHERE id = ?2",
            params![now, id],
        )
        .map_err(|e| self.db(e))?;
        tx.execute("DELETE FROM observed WHERE sighting_id = ?1", params![id])
            .map_err(|e| self.db(e))?;
        tx.commit().map_err(|e| self.db(e))
    }

    /// Records a failed attempt.
    fn fail(
        &self,
        entry: &OutboxEntry,
        dest: &DestinationConfig,
        e: &DeliveryError,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        // Unknown outcome now, or still unknown from before: check before re-sending,
        // and not before the server has had time to finish (settle_secs).
        let unknown_now = !e.surely_not_applied();
        let verify = entry.verify || unknown_now;
        let ended = now.max(Utc::now()).timestamp_millis();
        let unknown_at: Option<i64> = unknown_now.then_some(ended);
        let conn = self.lock();
        if e.is_permanent() {
            conn.execute(
                "UPDATE sightings SET state = 'failed', last_error = ?1, verify = ?2, \
                 owner = NULL, next_attempt = NULL, updated = ?3, \
                 unknown_at = coalesce(?5, unknown_at) WHERE id = ?4",
                params![
                    e.to_string(),
                    verify,
                    Utc::now().timestamp_millis(),
                    entry.id,
                    unknown_at
                ],
            )
        } else {
            let wait = backoff_secs(entry.attempts, dest.retry_initial_secs, dest.retry_max_secs);
            let next =
                now.timestamp_millis() + 1000 * i64::try_from(wait).unwrap_or(i64::MAX / 2000);
            conn.execute(
                "UPDATE sightings SET state = 'queued', last_error = ?1, verify = ?2, \
                 owner = NULL, next_attempt = ?3, updated = ?4, \
                 unknown_at = coalesce(?6, unknown_at) WHERE id = ?5",
                params![
                    e.to_string(),
                    verify,
                    next,
                    Utc::now().timestamp_millis(),
                    entry.id,
                    unknown_at
                ],
            )
        }
        .map_err(|err| self.db(err))?;
        Ok(())
    }

    /// Appends the requests of one attempt to the audit log.
    fn audit_exchanges(
        &self,
        destination: &str,
        batch: &[Ready],
        exchanges: &[Exchange],
    ) -> Result<(), OutboxError> {
        if exchanges.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = batch.iter().map(|r| r.entry.id).collect();
        let ids_json = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        let approvers = {
            let conn = self.lock();
            let mut by: Vec<String> = Vec::new();
            for id in &ids {
                let who: Option<String> = conn
                    .query_row(
                        "SELECT approved_by FROM sightings WHERE id = ?1",
                        params![id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| self.db(e))?
                    .flatten();
                if let Some(w) = who {
                    if !by.contains(&w) {
                        by.push(w);
                    }
                }
            }
            by
        };
        let approved_by = (!approvers.is_empty()).then(|| approvers.join(", "));
        let at = Utc::now().timestamp_millis();
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.db(e))?;
        for x in exchanges {
            tx.execute(
                "INSERT INTO audit (at, destination, sighting_ids, url, body, status, answer, \
                 approved_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    at,
                    destination,
                    ids_json,
                    x.url,
                    x.body,
                    x.status,
                    x.answer,
                    approved_by
                ],
            )
            .map_err(|e| self.db(e))?;
        }
        tx.commit().map_err(|e| self.db(e))
    }

    /// Deletes audit records older than `[share] audit_retention_days`.
    fn prune_audit(&self) -> Result<(), OutboxError> {
        let days = i64::try_from(self.router.config().audit_retention_days).unwrap_or(3650);
        let before = (Utc::now() - Duration::days(days)).timestamp_millis();
        let conn = self.lock();
        conn.execute("DELETE FROM audit WHERE at < ?1", params![before])
            .map_err(|e| self.db(e))?;
        Ok(())
    }
}

impl DeliveryReport {
    fn add(&mut self, o: DeliveryReport) {
        self.delivered += o.delivered;
        self.already_delivered += o.already_delivered;
        self.retrying += o.retrying;
        self.failed += o.failed;
        self.deferred += o.deferred;
        self.withheld += o.withheld;
        self.blocked.extend(o.blocked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let got: Vec<u64> = (1..=8).map(|a| backoff_secs(a, 30, 600)).collect();
        assert_eq!(got, vec![30, 60, 120, 240, 480, 600, 600, 600]);
        assert_eq!(backoff_secs(0, 30, 600), 30);
        assert_eq!(backoff_secs(u32::MAX, 30, 3600), 3600);
    }
}
