//! Numbers for metrics: the outbox's rows by destination and state (read from SQLite
//! when asked), and this process's delivery counters (in memory, since start).
//!
//! Every figure here is exported (`run::confirm` copies a snapshot into the registry
//! at each scrape; the names are defined once in `sink::metrics`):
//!
//! | figure | metric |
//! |---|---|
//! | `by_destination_state` | `tripline_sightings{destination,state}` (gauge) |
//! | `outbox_depth` | `tripline_outbox_depth` (gauge) |
//! | `oldest_open` | `tripline_outbox_oldest_age_seconds` (gauge) |
//! | `dropped` | `tripline_sightings_dropped_total{reason}` |
//! | `late_observations` | `tripline_sighting_late_observations_total` |
//! | `attempts` | `tripline_sighting_delivery_attempts_total{destination}` |
//! | `delivered` + `already_delivered` | `tripline_sightings_delivered_total{destination}` |
//! | `already_delivered` | `tripline_sightings_already_delivered_total{destination}` |
//! | `failures_by_kind` (sum: `failures`) | `tripline_sighting_delivery_failures_total{destination,kind}` |
//! | `request_seconds_sum` | `tripline_sighting_request_seconds_total{destination}` |
//! | `request_seconds_max` | `tripline_sighting_request_max_seconds{destination}` (gauge) |
//! | `delivery_age_seconds_sum` | `tripline_sighting_delivery_delay_seconds_total{destination}` |
//! | `blocked` | `tripline_sighting_destination_blocked{destination}` (gauge, 0/1) |
//! | `batches` | `tripline_sighting_batches_total{destination}` |
//! | `batched_rows` | `tripline_sighting_batched_rows_total{destination}` |
//!
//! Labels are bounded: destination names come from the configuration, states,
//! reasons and error kinds from fixed sets.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::outbox::State;
use super::policy::DropReason;

/// Delivery counters of one destination, since the process started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeliveryStats {
    pub destination: String,
    /// Requests made (deliveries and checks count once per row attempt).
    pub attempts: u64,
    pub delivered: u64,
    /// Found already at the destination after an unknown outcome (not sent again).
    pub already_delivered: u64,
    pub failures: u64,
    /// Failures by [`super::DeliveryError::kind`].
    pub failures_by_kind: BTreeMap<&'static str, u64>,
    /// Request latency (one row attempt, check included).
    pub request_seconds_sum: f64,
    pub request_seconds_max: f64,
    /// From the row's creation to its delivery, summed over delivered rows.
    pub delivery_age_seconds_sum: f64,
    /// Refused our credentials: no requests until its configuration or key changes.
    pub blocked: bool,
    /// Requests that carried rows, and the rows they carried (mean batch size).
    pub batches: u64,
    pub batched_rows: u64,
}

/// A snapshot for metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShareStats {
    /// `(destination, state, rows)`.
    pub by_destination_state: Vec<(String, State, u64)>,
    /// Rows not yet delivered nor decided: `pending_approval`, `queued`, `sending`.
    pub outbox_depth: u64,
    /// Creation time of the oldest such row.
    pub oldest_open: Option<DateTime<Utc>>,
    pub deliveries: Vec<DeliveryStats>,
    /// Provenances left out by policy, by reason (since start).
    pub dropped: Vec<(DropReason, u64)>,
    /// Observations that came after their window's sighting left (since start).
    pub late_observations: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub dropped: BTreeMap<DropReason, u64>,
    pub late: u64,
    per_destination: BTreeMap<String, DeliveryStats>,
}

impl Counters {
    fn dest(&mut self, name: &str) -> &mut DeliveryStats {
        self.per_destination
            .entry(name.to_string())
            .or_insert_with(|| DeliveryStats {
                destination: name.to_string(),
                ..DeliveryStats::default()
            })
    }

    pub fn delivered(&mut self, name: &str, request_secs: f64, age_secs: f64, already: bool) {
        let d = self.dest(name);
        d.attempts += 1;
        if already {
            d.already_delivered += 1;
        } else {
            d.delivered += 1;
        }
        d.request_seconds_sum += request_secs;
        d.request_seconds_max = d.request_seconds_max.max(request_secs);
        d.delivery_age_seconds_sum += age_secs;
    }

    pub fn failed(&mut self, name: &str, request_secs: f64, kind: &'static str) {
        let d = self.dest(name);
        d.attempts += 1;
        d.failures += 1;
        *d.failures_by_kind.entry(kind).or_default() += 1;
        d.request_seconds_sum += request_secs;
        d.request_seconds_max = d.request_seconds_max.max(request_secs);
    }

    pub fn set_blocked(&mut self, name: &str, blocked: bool) {
        self.dest(name).blocked = blocked;
    }

    pub fn batch(&mut self, name: &str, rows: usize) {
        let d = self.dest(name);
        d.batches += 1;
        d.batched_rows += rows as u64;
    }

    pub fn snapshot(
        &self,
        by_destination_state: Vec<(String, State, u64)>,
        oldest_open: Option<DateTime<Utc>>,
    ) -> ShareStats {
        let outbox_depth = by_destination_state
            .iter()
            .filter(|(_, s, _)| {
                matches!(s, State::PendingApproval | State::Queued | State::Sending)
            })
            .map(|(_, _, n)| n)
            .sum();
        ShareStats {
            by_destination_state,
            outbox_depth,
            oldest_open,
            deliveries: self.per_destination.values().cloned().collect(),
            dropped: DropReason::ALL
                .iter()
                .map(|r| (*r, self.dropped.get(r).copied().unwrap_or(0)))
                .collect(),
            late_observations: self.late,
        }
    }
}
