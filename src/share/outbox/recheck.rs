//! The policy asked again just before delivery: a row is sent only if the current
//! configuration, applied to the provenances it was queued for (as the current intel
//! now has them), still allows it; what is sent is built from the current
//! configuration (source name, anonymisation), never from what the row was queued
//! with. A row the policy no longer allows becomes `withheld`, with the reason in
//! `last_error`, a count in `tripline_sightings_dropped_total{reason}` and a log line.
//!
//! The sidecar reads its live index (swapped whole at each reload); `tripline
//! sightings send` loads the intel its configuration names before sending, and sends
//! nothing when that intel does not load cleanly.
//!
//! A positive sighting whose indicator is warninglisted, or whose intel has expired or
//! decayed below its threshold by now ([`IntelView::lapsed`]), is withheld as
//! `warninglisted` or `decayed` (also when a rebuild already dropped the lapsed intel
//! from matching: the index keeps those links for this check). False positives and
//! expirations of lapsed intel may still go back.
//!
//! Rows written before provenances were kept (`provenance` NULL) cannot be asked
//! again about TLP, distribution or victim data; they get the current source name and
//! anonymisation only.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Outbox, OutboxEntry, OutboxError};
use crate::correlate::Provenance;
use crate::intel::Kind;
use crate::share::policy::{DestinationConfig, DropReason};
use crate::share::sighting::{Sighting, SightingType};

/// The current intel, as the send-time check reads it (the sidecar's live index).
pub trait IntelView: Send + Sync {
    /// Every provenance the current intel holds for `indicator` (canonical value and
    /// kind), empty when it holds none; `None` when this view cannot tell (then the
    /// provenances stored with the row are used as they are).
    fn provenances(&self, indicator: &str, kind: Kind) -> Option<Vec<Provenance>>;

    /// Why no positive sighting of `indicator` may leave now for `provenances`, if
    /// none may: it is warninglisted, or every one of those provenances the intel
    /// holds has expired or decayed below its threshold by now
    /// ([`DropReason::Decayed`]). `None` when this view cannot tell.
    fn lapsed(
        &self,
        indicator: &str,
        kind: Kind,
        provenances: &[Provenance],
    ) -> Option<DropReason> {
        let _ = (indicator, kind, provenances);
        None
    }
}

/// An index as it stands: the provenances of its (not excluded) metas for the value.
impl IntelView for crate::index::Index {
    fn provenances(&self, indicator: &str, kind: Kind) -> Option<Vec<Provenance>> {
        let Some(id) = self.find_exact(kind, indicator) else {
            return Some(Vec::new());
        };
        // Lapsed intel the build dropped is still the source's: a false positive or
        // an expiration may go back (positive sightings are stopped by `lapsed`).
        Some(
            self.metas_of(id)
                .iter()
                .copied()
                .chain(self.lapsed_metas_of(id))
                .filter(|&m| self.meta_exclusion(m).is_none())
                .map(|m| crate::correlate::observe::provenance(self, m))
                .collect(),
        )
    }

    /// Judged now (the sidecar's index drops what has lapsed at each build, and
    /// judges what lapsed since here).
    fn lapsed(
        &self,
        indicator: &str,
        kind: Kind,
        provenances: &[Provenance],
    ) -> Option<DropReason> {
        let id = self.find_exact(kind, indicator)?;
        if self.warninglist_of(id).is_some() {
            return Some(DropReason::Warninglisted);
        }
        let now = Utc::now().timestamp();
        let (mut alive, mut lapsed) = (false, false);
        for m in self
            .metas_of(id)
            .iter()
            .copied()
            .chain(self.lapsed_metas_of(id))
        {
            if self.meta_exclusion(m).is_some() {
                continue;
            }
            let p = crate::correlate::observe::provenance(self, m);
            let wanted = provenances.iter().any(|q| {
                q.source == p.source
                    && q.attribute_uuid == p.attribute_uuid
                    && q.event_uuid == p.event_uuid
            });
            if !wanted {
                continue;
            }
            if self.meta(m).valid_at(now) && self.judge(kind, m, now).lapse.is_none() {
                alive = true;
            } else {
                lapsed = true;
            }
        }
        (lapsed && !alive).then_some(DropReason::Decayed)
    }
}

impl Outbox {
    /// Reads the current intel through `view` at every send-time check.
    pub fn set_intel(&self, view: Arc<dyn IntelView>) {
        *self.intel.lock().unwrap_or_else(|p| p.into_inner()) = Some(view);
    }

    /// What leaves for this row now (the sighting and its STIX `created` time), or why
    /// the policy withholds it.
    pub fn prepare(
        &self,
        entry: &OutboxEntry,
        dest: &DestinationConfig,
    ) -> Result<(Sighting, DateTime<Utc>), DropReason> {
        let s = &entry.sighting;
        if s.sighting_type == SightingType::Sighting && self.router.suppressed(&s.indicator, s.kind)
        {
            return Err(DropReason::Suppressed);
        }
        let view = self.intel.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if s.sighting_type == SightingType::Sighting {
            let stored = entry.provenance.as_deref().unwrap_or_default();
            if let Some(reason) = view
                .as_ref()
                .and_then(|v| v.lapsed(&s.indicator, s.kind, stored))
            {
                return Err(reason);
            }
        }
        let Some(stored) = &entry.provenance else {
            return Ok(self
                .router
                .outgoing(dest, s, s.target.clone(), entry.created));
        };
        let current: Vec<Provenance> = match view.and_then(|v| v.provenances(&s.indicator, s.kind))
        {
            Some(fresh) => stored
                .iter()
                .filter_map(|p| {
                    fresh
                        .iter()
                        .find(|q| {
                            q.source == p.source
                                && q.attribute_uuid == p.attribute_uuid
                                && q.event_uuid == p.event_uuid
                        })
                        .cloned()
                })
                .collect(),
            None => stored.clone(),
        };
        if current.is_empty() && !stored.is_empty() {
            return Err(DropReason::Withdrawn);
        }
        let target = self
            .router
            .recheck(dest, (&s.indicator, s.kind), &s.target, &current)?;
        Ok(self.router.outgoing(dest, s, target, entry.created))
    }

    /// The key the transports derive object ids from (STIX `sighting--…`, bundle ids).
    /// The row's idempotency key holds the window start, and an id hashed from it could
    /// be matched against guessed windows to recover the time at window precision; for
    /// an anonymised destination the key is salted with this outbox's secret salt
    /// first (still the same on every attempt, so a retried push is one object).
    pub fn wire_key(&self, key: &str, dest: &DestinationConfig) -> String {
        if dest.anonymise {
            format!("{:016x}\u{1f}{key}", self.salt)
        } else {
            key.to_string()
        }
    }

    /// Marks a claimed row `withheld` by the policy, counts and logs why.
    pub(super) fn withhold(
        &self,
        entry: &OutboxEntry,
        reason: DropReason,
    ) -> Result<(), OutboxError> {
        let now = Utc::now().timestamp_millis();
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.db(e))?;
        tx.execute(
            "UPDATE sightings SET state = 'withheld', last_error = ?1, owner = NULL, \
             next_attempt = NULL, updated = ?2 WHERE id = ?3",
            params![
                format!("withheld by the sharing policy at send: {reason}"),
                now,
                entry.id
            ],
        )
        .map_err(|e| self.db(e))?;
        tx.execute(
            "DELETE FROM observed WHERE sighting_id = ?1",
            params![entry.id],
        )
        .map_err(|e| self.db(e))?;
        tx.commit().map_err(|e| self.db(e))?;
        drop(conn);
        *self.counters().dropped.entry(reason).or_default() += 1;
        tracing::info!(
            destination = %entry.sighting.destination,
            id = entry.id,
            reason = reason.name(),
            "Sighting withheld at send: {reason}."
        );
        Ok(())
    }
}
