//! The sidecar's correlation step: observations from written alerts go through the
//! rules, timed as the emitter timed their lines (the event's own time, as in a
//! hunt); confirmations become alerts and sightings in the outbox.
//!
//! The rules' clock is event time. Observations wait in a reorder buffer until the
//! watermark — the newest event time seen less [`LATENESS`], advanced by wall time
//! while no newer event arrives, so an idle input still moves on — passes them, and
//! reach the rules in time order, as a hunt feeds them; windows close when the
//! watermark passes their end. A backlog of old lines thus correlates as a hunt over
//! them would, not as if it all happened now. An observation older than the
//! watermark goes to the rules at once, with its own time. At the end of a finite
//! input (`run --stdin`), everything waiting is fed and open windows close, as at the
//! end of a hunt; at shutdown everything waiting is fed, then the state is saved.
//!
//! Cost: confirmations come up to [`LATENESS`] after their last event (line alerts
//! are not delayed); the buffer holds at most [`MAX_WAITING`] observations (beyond,
//! the oldest go to the rules early).
//! The rules' state is saved in the state directory (atomically) every
//! [`SNAPSHOT_EVERY`] and at shutdown, and restored at start, so a window opened
//! before a restart still confirms after it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::correlate::engine::{Engine, EngineOptions};
use crate::correlate::{load, Confirmation, Observation};
use crate::share::{Outbox, ShareStats};
use crate::sink::metrics::{set_counter, set_seconds_counter, Metrics};

/// How often the correlation state is saved.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);

/// How far behind the newest event time an event may arrive and still join windows
/// that would otherwise have closed.
pub const LATENESS: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Observations held in the reorder buffer at most.
pub const MAX_WAITING: usize = 100_000;

/// The rules' clock: the newest event time seen, advanced by wall time since.
#[derive(Clone, Copy, Debug)]
struct EventClock {
    newest: DateTime<Utc>,
    seen_at: Instant,
}

impl EventClock {
    fn watermark(&self) -> DateTime<Utc> {
        let idle = chrono::TimeDelta::from_std(self.seen_at.elapsed()).unwrap_or_default();
        self.newest + idle - LATENESS
    }
}

pub struct Correlation {
    engine: Engine,
    outbox: Option<Arc<Outbox>>,
    state_path: PathBuf,
    last_snapshot: Instant,
    clock: Option<EventClock>,
    /// The reorder buffer: by (time, arrival).
    waiting: std::collections::BTreeMap<(DateTime<Utc>, u64), Observation>,
    arrivals: u64,
}

impl Correlation {
    /// Loads the rules the config names and restores saved state. `None` when rules
    /// are disabled.
    pub fn open(config: &Config, outbox: Option<Arc<Outbox>>) -> Result<Option<Correlation>> {
        if !config.rules.enabled {
            return Ok(None);
        }
        let rules = match &config.rules.dir {
            Some(dir) => load::load_rules(dir).map_err(|errors| {
                let msg: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                anyhow::anyhow!("rules in {}: {}", dir.display(), msg.join("; "))
            })?,
            None => load::default_rules(),
        };
        let mut engine = Engine::with_options(
            rules,
            EngineOptions {
                max_groups: config.rules.max_groups,
            },
        );
        let state_path = config.state.dir.join("correlation.json");
        if let Ok(bytes) = std::fs::read(&state_path) {
            match engine.restore(&bytes) {
                Ok(r) => tracing::info!(
                    groups = r.groups,
                    dropped = r.dropped,
                    "Restored correlation state."
                ),
                Err(e) => {
                    tracing::warn!(path = %state_path.display(), error = %e, "Ignored saved correlation state.")
                }
            }
        }
        Ok(Some(Correlation {
            engine,
            outbox,
            state_path,
            last_snapshot: Instant::now(),
            clock: None,
            waiting: Default::default(),
            arrivals: 0,
        }))
    }

    /// How many rules run.
    pub fn rules(&self) -> usize {
        self.engine.rules().len()
    }

    /// Feeds observations; writes what they confirm.
    pub fn observe(&mut self, obs: Vec<Observation>, out: &mut Vec<Vec<u8>>, metrics: &Metrics) {
        for o in obs {
            if self.clock.is_none_or(|c| o.time > c.newest) {
                self.clock = Some(EventClock {
                    newest: o.time,
                    seen_at: Instant::now(),
                });
            }
            let late = self.clock.is_some_and(|c| o.time < c.watermark());
            if late {
                let confirmed = self.engine.observe(o);
                self.confirmed(confirmed, out, metrics);
            } else {
                self.arrivals += 1;
                self.waiting.insert((o.time, self.arrivals), o);
            }
        }
        while self.waiting.len() > MAX_WAITING {
            self.release_first(out, metrics);
        }
    }

    /// Feeds the oldest waiting observation to the rules.
    fn release_first(&mut self, out: &mut Vec<Vec<u8>>, metrics: &Metrics) -> bool {
        let Some((_, o)) = self.waiting.pop_first() else {
            return false;
        };
        let confirmed = self.engine.observe(o);
        self.confirmed(confirmed, out, metrics);
        true
    }

    /// Feeds waiting observations up to `until` (all with `None`), in time order.
    fn release(&mut self, until: Option<DateTime<Utc>>, out: &mut Vec<Vec<u8>>, metrics: &Metrics) {
        while self
            .waiting
            .first_key_value()
            .is_some_and(|((t, _), _)| until.is_none_or(|u| *t <= u))
        {
            self.release_first(out, metrics);
        }
    }

    /// Closes windows that ended by `now`; saves state when due.
    /// Closes the windows the event clock has passed; saves the state when due.
    pub fn tick(&mut self, out: &mut Vec<Vec<u8>>, metrics: &Metrics) {
        if let Some(clock) = self.clock {
            let watermark = clock.watermark();
            self.release(Some(watermark), out, metrics);
            let confirmed = self.engine.flush(watermark);
            self.confirmed(confirmed, out, metrics);
        }
        if self.last_snapshot.elapsed() >= SNAPSHOT_EVERY {
            self.save();
        }
    }

    /// At shutdown: save the state (open windows survive the restart).
    /// The input is complete (end of stdin): closes every open window, as at the end
    /// of a hunt.
    pub fn finish(&mut self, out: &mut Vec<Vec<u8>>, metrics: &Metrics) {
        self.release(None, out, metrics);
        let confirmed = self.engine.finish();
        self.confirmed(confirmed, out, metrics);
    }

    /// At shutdown: feeds what waits, then saves the state.
    pub fn close(&mut self, out: &mut Vec<Vec<u8>>, metrics: &Metrics) {
        self.release(None, out, metrics);
        self.save();
    }

    fn confirmed(
        &mut self,
        confirmed: Vec<Confirmation>,
        out: &mut Vec<Vec<u8>>,
        metrics: &Metrics,
    ) {
        crate::sink::metrics::set_counter(
            &metrics.rule_observations_unkeyed,
            self.engine.unkeyed(),
        );
        for c in confirmed {
            metrics
                .confirmations
                .with_label_values(&[c.rule_id.as_str()])
                .inc();
            let doc = crate::sink::alert::confirmation_alert(&c);
            match serde_json::to_vec(&doc) {
                Ok(line) => out.push(line),
                Err(e) => tracing::error!(error = %e, "Cannot render a confirmation."),
            }
            if let Some(outbox) = &self.outbox {
                if let Err(e) = outbox.record(&c) {
                    tracing::error!(rule = %c.rule_id, error = %e, "Cannot record sightings.");
                }
            }
        }
    }

    fn save(&mut self) {
        self.last_snapshot = Instant::now();
        if let Err(e) = write_atomic(&self.state_path, &self.engine.snapshot()) {
            tracing::error!(path = %self.state_path.display(), error = %e, "Cannot save correlation state.");
        }
    }
}

/// Temp file, fsync, rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Opens the outbox when sharing is configured, and feeds its figures to the metrics.
pub fn open_outbox(config: &Config, metrics: &Arc<Metrics>) -> Result<Option<Arc<Outbox>>> {
    if config.share.destinations.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(&config.state.dir)?;
    let outbox = Arc::new(Outbox::open(&config.state.dir, &config.share)?);
    let o = outbox.clone();
    metrics.on_scrape(move |m| match o.stats() {
        Ok(stats) => share_metrics(m, &stats, Utc::now()),
        Err(e) => tracing::warn!(error = %e, "Cannot read the outbox's figures for metrics."),
    });
    Ok(Some(outbox))
}

/// Copies the outbox's figures into the metrics: every number [`ShareStats`] carries
/// has its metric (see `sink::metrics`).
fn share_metrics(m: &Metrics, stats: &ShareStats, now: DateTime<Utc>) {
    m.sightings.reset();
    for (dest, state, n) in &stats.by_destination_state {
        m.sightings
            .with_label_values(&[dest.as_str(), state.as_str()])
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
    m.outbox_depth
        .set(i64::try_from(stats.outbox_depth).unwrap_or(i64::MAX));
    let oldest_age = stats
        .oldest_open
        .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
    m.outbox_oldest_age.set(oldest_age);
    for (reason, n) in &stats.dropped {
        set_counter(&m.sightings_dropped.with_label_values(&[reason.name()]), *n);
    }
    set_counter(&m.sighting_late_observations, stats.late_observations);
    for d in &stats.deliveries {
        let l = [d.destination.as_str()];
        set_counter(
            &m.sighting_delivery_attempts.with_label_values(&l),
            d.attempts,
        );
        set_counter(
            &m.sightings_delivered.with_label_values(&l),
            d.delivered + d.already_delivered,
        );
        set_counter(
            &m.sightings_already_delivered.with_label_values(&l),
            d.already_delivered,
        );
        for (kind, n) in &d.failures_by_kind {
            set_counter(
                &m.sighting_delivery_failures
                    .with_label_values(&[d.destination.as_str(), kind]),
                *n,
            );
        }
        set_seconds_counter(
            &m.sighting_request_seconds.with_label_values(&l),
            d.request_seconds_sum,
        );
        m.sighting_request_max_seconds
            .with_label_values(&l)
            .set(d.request_seconds_max);
        set_seconds_counter(
            &m.sighting_delivery_seconds.with_label_values(&l),
            d.delivery_age_seconds_sum,
        );
        m.sighting_destination_blocked
            .with_label_values(&l)
            .set(i64::from(d.blocked));
        set_counter(&m.sighting_batches.with_label_values(&l), d.batches);
        set_counter(
            &m.sighting_batched_rows.with_label_values(&l),
            d.batched_rows,
        );
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::share::{DeliveryStats, DropReason, State};

    /// Every figure the outbox computes reaches a metric.
    #[test]
    fn every_share_figure_is_exported() {
        let t = |s| Utc.timestamp_opt(s, 0).single().expect("valid");
        let stats = ShareStats {
            by_destination_state: vec![("circl".into(), State::Queued, 3)],
            outbox_depth: 3,
            oldest_open: Some(t(1_000)),
            deliveries: vec![DeliveryStats {
                destination: "circl".into(),
                attempts: 7,
                delivered: 4,
                already_delivered: 1,
                failures: 2,
                failures_by_kind: [("connect", 2)].into_iter().collect(),
                request_seconds_sum: 1.5,
                request_seconds_max: 0.75,
                delivery_age_seconds_sum: 600.0,
                blocked: true,
                batches: 3,
                batched_rows: 5,
            }],
            dropped: vec![(DropReason::Tlp, 5), (DropReason::NoTarget, 0)],
            late_observations: 9,
        };
        let m = Metrics::new();
        share_metrics(&m, &stats, t(1_090));
        let text = m.render();
        for want in [
            r#"tripline_sightings{destination="circl",state="queued"} 3"#,
            "tripline_outbox_depth 3",
            "tripline_outbox_oldest_age_seconds 90",
            r#"tripline_sightings_dropped_total{reason="tlp"} 5"#,
            r#"tripline_sightings_dropped_total{reason="no_target"} 0"#,
            "tripline_sighting_late_observations_total 9",
            r#"tripline_sighting_delivery_attempts_total{destination="circl"} 7"#,
            r#"tripline_sightings_delivered_total{destination="circl"} 5"#,
            r#"tripline_sightings_already_delivered_total{destination="circl"} 1"#,
            r#"tripline_sighting_delivery_failures_total{destination="circl",kind="connect"} 2"#,
            r#"tripline_sighting_request_seconds_total{destination="circl"} 1.5"#,
            r#"tripline_sighting_request_max_seconds{destination="circl"} 0.75"#,
            r#"tripline_sighting_destination_blocked{destination="circl"} 1"#,
            r#"tripline_sighting_batches_total{destination="circl"} 3"#,
            r#"tripline_sighting_batched_rows_total{destination="circl"} 5"#,
            r#"tripline_sighting_delivery_delay_seconds_total{destination="circl"} 600"#,
        ] {
            assert!(text.lines().any(|l| l == want), "{want} not in\n{text}");
        }
        // A later scrape with more deliveries moves the counters up; the gauges follow.
        let mut later = stats.clone();
        later.deliveries[0].delivery_age_seconds_sum = 660.0;
        later.oldest_open = None;
        share_metrics(&m, &later, t(2_000));
        let text = m.render();
        assert!(text.contains(
            "tripline_sighting_delivery_delay_seconds_total{destination=\"circl\"} 660\n"
        ));
        assert!(text.contains("tripline_outbox_oldest_age_seconds 0\n"));
    }
}
