//! Delivery passes: claim due rows, check those whose last outcome is unknown, send,
//! and record the result (sent, queued again with backoff, or failed).
//!
//! A row is claimed (`sending`, owner token, lease) in a committed statement before
//! its request goes out, and the database lock is released during the request. One
//! pass at a time per [`Outbox`]; several processes may share the file (the claim is
//! atomic; rows another live process claimed are left alone until its lease ends).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rusqlite::params;

use super::row::raw_row;
use super::{DeliveryReport, Outbox, OutboxEntry, OutboxError, COLUMNS};
use crate::share::policy::DestinationConfig;
use crate::share::transport::{self, DeliveryError, Outgoing, Transport};

/// Rows looked at per delivery pass.
const BATCH: i64 = 500;

/// Seconds to wait after `attempts` failed attempts: `initial × 2^(attempts-1)`,
/// capped at `max`.
pub fn backoff_secs(attempts: u32, initial: u64, max: u64) -> u64 {
    let shift = attempts.saturating_sub(1).min(40);
    initial.saturating_mul(1u64 << shift).min(max).max(1)
}

impl Outbox {
    /// Delivers every queued row now, whatever its window and backoff.
    pub fn send_now(&self) -> Result<DeliveryReport, OutboxError> {
        self.deliver(Utc::now(), true)
    }

    /// Delivers the rows due at `now`: window closed, backoff passed.
    pub fn deliver_due(&self, now: DateTime<Utc>) -> Result<DeliveryReport, OutboxError> {
        self.deliver(now, false)
    }

    fn deliver(&self, now: DateTime<Utc>, force: bool) -> Result<DeliveryReport, OutboxError> {
        let _one_pass = self.deliver_lock.lock().unwrap_or_else(|p| p.into_inner());
        let now_ms = now.timestamp_millis();
        let ids: Vec<i64> = {
            let conn = self.lock();
            // Rows a dead process (or an earlier pass of ours) left in flight: their
            // outcome is unknown, so they are checked before being sent again.
            conn.execute(
                "UPDATE sightings SET state = 'queued', verify = 1, owner = NULL, \
                 next_attempt = coalesce(next_attempt, 0) \
                 WHERE state = 'sending' AND (owner IS NULL OR owner = ?1 OR lease_until < ?2)",
                params![self.owner, now_ms],
            )
            .map_err(|e| self.db(e))?;
            let sql = if force {
                "SELECT id FROM sightings WHERE state = 'queued' ORDER BY id LIMIT ?2"
            } else {
                "SELECT id FROM sightings WHERE state = 'queued' \
                 AND coalesce(next_attempt, 0) <= ?1 AND window_end * 1000 <= ?1 \
                 ORDER BY id LIMIT ?2"
            };
            let mut stmt = conn.prepare(sql).map_err(|e| self.db(e))?;
            let ids = stmt
                .query_map(params![now_ms, BATCH], |r| r.get(0))
                .map_err(|e| self.db(e))?
                .collect::<rusqlite::Result<Vec<i64>>>()
                .map_err(|e| self.db(e))?;
            ids
        };
        let mut report = DeliveryReport::default();
        let mut unreachable: BTreeMap<String, String> = BTreeMap::new();
        for id in ids {
            let Some(entry) = self.claim(id, now)? else {
                continue;
            };
            let dest_name = entry.sighting.destination.clone();
            if unreachable.contains_key(&dest_name) {
                self.release(id)?;
                report.deferred += 1;
                continue;
            }
            let Some(dest) = self
                .router
                .config()
                .destinations
                .iter()
                .find(|d| d.name == dest_name)
            else {
                tracing::warn!(destination = %dest_name, id, "Sighting for a destination no longer configured; left queued.");
                self.release(id)?;
                report.deferred += 1;
                continue;
            };
            let (sighting, created) = match self.prepare(&entry, dest) {
                Ok(prepared) => prepared,
                Err(reason) => {
                    self.withhold(&entry, reason)?;
                    report.withheld += 1;
                    continue;
                }
            };
            let transport = match self.transport(dest) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(destination = %dest_name, error = %e, "Cannot build the destination's transport.");
                    self.fail(&entry, dest, &e, now)?;
                    unreachable.insert(dest_name, e.to_string());
                    report.retrying += 1;
                    continue;
                }
            };
            let key = self.wire_key(&entry.key, dest);
            let out = Outgoing {
                sighting: &sighting,
                key: &key,
                created,
            };
            let started = Instant::now();
            let result = if entry.verify {
                match transport.is_delivered(&out) {
                    Ok(true) => Ok(true),
                    Ok(false) => transport.deliver(&out).map(|()| false),
                    Err(e) => Err(e),
                }
            } else {
                transport.deliver(&out).map(|()| false)
            };
            let elapsed = started.elapsed().as_secs_f64();
            match result {
                Ok(already) => {
                    self.mark_sent(id)?;
                    let age = (Utc::now() - entry.created).num_milliseconds() as f64 / 1000.0;
                    self.counters()
                        .delivered(&dest_name, elapsed, age.max(0.0), already);
                    if already {
                        report.already_delivered += 1;
                        tracing::info!(destination = %dest_name, id, "Sighting found at the destination after an unknown outcome; not sent again.");
                    } else {
                        report.delivered += 1;
                        tracing::debug!(destination = %dest_name, id, seconds = elapsed, "Sighting delivered.");
                    }
                }
                Err(e) => {
                    if matches!(
                        e,
                        DeliveryError::Status {
                            status: 401 | 403,
                            ..
                        }
                    ) {
                        // Re-read the credential next pass: it may have been rotated.
                        self.transports
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&dest_name);
                    }
                    self.counters().failed(&dest_name, elapsed, e.kind());
                    self.fail(&entry, dest, &e, now)?;
                    if e.is_permanent() {
                        report.failed += 1;
                        tracing::warn!(destination = %dest_name, id, error = %e, "Sighting refused by the destination; marked failed.");
                    } else {
                        report.retrying += 1;
                        if e.destination_unreachable() {
                            tracing::warn!(destination = %dest_name, error = %e, "Destination unreachable; its sightings wait for the next pass.");
                            unreachable.insert(dest_name, e.to_string());
                        } else {
                            tracing::warn!(destination = %dest_name, id, error = %e, "Sighting delivery failed; will retry.");
                        }
                    }
                }
            }
        }
        if report != DeliveryReport::default() {
            tracing::info!(
                delivered = report.delivered,
                already_delivered = report.already_delivered,
                retrying = report.retrying,
                failed = report.failed,
                deferred = report.deferred,
                withheld = report.withheld,
                "Sightings delivery pass."
            );
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

    /// Marks the row `sending` (committed) and reads it back, or `None` if another
    /// process took it first.
    fn claim(&self, id: i64, now: DateTime<Utc>) -> Result<Option<OutboxEntry>, OutboxError> {
        let conn = self.lock();
        let lease = self
            .router
            .config()
            .destinations
            .iter()
            .map(|d| d.timeout_secs)
            .max()
            .unwrap_or(30)
            .saturating_mul(3)
            .saturating_add(60);
        let start = now.max(Utc::now());
        let lease_until =
            (start + Duration::seconds(i64::try_from(lease).unwrap_or(3600))).timestamp_millis();
        let n = conn
            .execute(
                "UPDATE sightings SET state = 'sending', owner = ?1, lease_until = ?2, \
                 attempts = attempts + 1, updated = ?3 WHERE id = ?4 AND state = 'queued'",
                params![self.owner, lease_until, Utc::now().timestamp_millis(), id],
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
             verify = 0, owner = NULL, next_attempt = NULL WHERE id = ?2",
            params![now, id],
        )
        .map_err(|e| self.db(e))?;
        tx.execute("DELETE FROM observed WHERE sighting_id = ?1", params![id])
            .map_err(|e| self.db(e))?;
        tx.commit().map_err(|e| self.db(e))
    }

    fn fail(
        &self,
        entry: &OutboxEntry,
        dest: &DestinationConfig,
        e: &DeliveryError,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        // Unknown outcome now, or still unknown from before: check before re-sending.
        let verify = entry.verify || !e.surely_not_applied();
        let conn = self.lock();
        if e.is_permanent() {
            conn.execute(
                "UPDATE sightings SET state = 'failed', last_error = ?1, verify = ?2, \
                 owner = NULL, next_attempt = NULL, updated = ?3 WHERE id = ?4",
                params![
                    e.to_string(),
                    verify,
                    Utc::now().timestamp_millis(),
                    entry.id
                ],
            )
        } else {
            let wait = backoff_secs(entry.attempts, dest.retry_initial_secs, dest.retry_max_secs);
            let next =
                now.timestamp_millis() + 1000 * i64::try_from(wait).unwrap_or(i64::MAX / 2000);
            conn.execute(
                "UPDATE sightings SET state = 'queued', last_error = ?1, verify = ?2, \
                 owner = NULL, next_attempt = ?3, updated = ?4 WHERE id = ?5",
                params![
                    e.to_string(),
                    verify,
                    next,
                    Utc::now().timestamp_millis(),
                    entry.id
                ],
            )
        }
        .map_err(|err| self.db(err))?;
        Ok(())
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
