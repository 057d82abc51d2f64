//! The sidecar's correlation step: observations from written alerts go through the
//! rules, timed as the emitter timed their lines (the event's own time, as in a
//! hunt); confirmations become alerts and sightings in the outbox.
//!
//! The rules' clock is event time. Observations wait in a reorder buffer until the
//! watermark — the newest event time seen less the lateness (`rules.lateness_secs`,
//! default 5 minutes), advanced by wall time while no newer event arrives, so an
//! idle input still moves on — passes them, and reach the rules in time order, as a
//! hunt feeds them; windows close when the watermark passes their end. A backlog of
//! old lines thus correlates as a hunt over them would, not as if it all happened
//! now. An observation older than the watermark is late: counted
//! (`tripline_rule_observations_late_total`, one log line per minute at most) and
//! given to the rules at once, with its own time (it joins its window if the rules
//! still hold it). At the end of a finite input (`run --stdin`), everything waiting
//! is fed and open windows close, as at the end of a hunt; at shutdown everything
//! waiting is fed, then the state is saved.
//!
//! # Durability (kill -9)
//! The state (`<state>/correlation.json`: the rules' windows, the reorder buffer,
//! the newest position seen per input stream) is saved every [`SNAPSHOT_EVERY`], at
//! shutdown, and after a restart; between saves every observation taken in is
//! appended to the journal ([`super::journal`]), which is synced before the batch it
//! came from is acknowledged ([`Correlation::sync`]). So a file checkpoint never runs
//! ahead of what the state and the journal hold: at start the state is restored and
//! the journal replayed on top of it, and no window is lost.
//!
//! Lines after the checkpoint are read again after a restart (the checkpoint trails
//! acknowledgements by up to a second). Each observation carries its origin (input
//! stream and position); one at or before the newest position already taken in from
//! its stream is a replay: counted (`tripline_rule_observations_replayed_total`) and
//! dropped, so it is never counted twice by the rules (and the outbox recognises it
//! by the same origin).
//!
//! Cost: confirmations come up to the lateness after their last event (line alerts
//! are not delayed); the buffer holds at most [`MAX_WAITING`] observations (beyond,
//! the oldest go to the rules early); one `fdatasync` per acknowledged batch that had
//! observations; one position per input stream ([`MAX_STREAMS`] at most).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::journal::Journal;
use crate::config::Config;
use crate::correlate::engine::{Engine, EngineOptions};
use crate::correlate::state::ObservationDoc;
use crate::correlate::{load, Confirmation, Observation};
use crate::share::{Outbox, ShareStats};
use crate::sink::metrics::{set_counter, set_seconds_counter, Metrics};

/// How often the correlation state is saved (the journal holds what came since).
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);

/// The state is also saved when the journal grows past this many bytes.
pub const JOURNAL_MAX_BYTES: u64 = 64 << 20;

/// Observations held in the reorder buffer at most.
pub const MAX_WAITING: usize = 100_000;

/// Input streams whose newest position is remembered (the least recently used is
/// forgotten beyond).
pub const MAX_STREAMS: usize = 10_000;

/// Late observations are logged at most this often.
const LATE_LOG_EVERY: Duration = Duration::from_secs(60);

/// The format of `correlation.json` this build writes (1: the engine's snapshot
/// alone, still read).
const STATE_VERSION: u32 = 2;

/// The rules' clock: the newest event time seen, advanced by wall time since.
#[derive(Clone, Copy, Debug)]
struct EventClock {
    newest: DateTime<Utc>,
    seen_at: Instant,
}

impl EventClock {
    fn watermark(&self, lateness: TimeDelta) -> DateTime<Utc> {
        let idle = TimeDelta::from_std(self.seen_at.elapsed()).unwrap_or_default();
        self.newest + idle - lateness
    }
}

/// `correlation.json`, version 2.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedState {
    version: u32,
    /// The journal generation that continues this state.
    generation: u64,
    /// [`Engine::snapshot`].
    engine: serde_json::Value,
    /// The reorder buffer, in time order.
    waiting: Vec<ObservationDoc>,
    /// The newest (position, hit) taken in per input stream.
    streams: Vec<(String, u64, u32)>,
}

/// Where a stream was last seen.
#[derive(Clone, Copy, Debug)]
struct Seen {
    position: (u64, u32),
    touched: u64,
}

pub struct Correlation {
    engine: Engine,
    outbox: Option<Arc<Outbox>>,
    state_path: PathBuf,
    journal: Journal,
    /// The journal generation named by the last saved state.
    generation: u64,
    lateness: TimeDelta,
    last_snapshot: Instant,
    clock: Option<EventClock>,
    /// The reorder buffer: by (time, arrival).
    waiting: std::collections::BTreeMap<(DateTime<Utc>, u64), Observation>,
    arrivals: u64,
    streams: HashMap<String, Seen>,
    touches: u64,
    late: u64,
    late_logged: u64,
    late_log_at: Option<Instant>,
    replayed: u64,
    /// `rules.max_groups`, for the engine of a retro run.
    retro_max_groups: usize,
}

impl Correlation {
    /// Loads the rules the config names, restores the saved state and replays the
    /// journal on top of it, then saves. `None` when rules are disabled.
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
        let engine = Engine::with_options(
            rules,
            EngineOptions {
                max_groups: config.rules.max_groups,
            },
        );
        std::fs::create_dir_all(&config.state.dir)
            .with_context(|| format!("creating {}", config.state.dir.display()))?;
        let lateness = TimeDelta::seconds(i64::try_from(config.rules.lateness_secs).unwrap_or(0));
        let mut c = Correlation {
            engine,
            outbox,
            state_path: config.state.dir.join("correlation.json"),
            journal: Journal::new(&config.state.dir),
            generation: 0,
            lateness,
            last_snapshot: Instant::now(),
            clock: None,
            waiting: Default::default(),
            arrivals: 0,
            streams: HashMap::new(),
            touches: 0,
            late: 0,
            late_logged: 0,
            late_log_at: None,
            replayed: 0,
            retro_max_groups: config.rules.max_groups,
        };
        let generation = c.restore();
        let replay = c.journal.read(generation);
        if !replay.is_empty() {
            // Their confirmations were recorded and alerted before the stop: the
            // rules take them in again, nothing is written.
            let n = replay.len();
            let mut ignored = Vec::new();
            for o in replay {
                c.admit(o, &mut ignored, None);
            }
            tracing::info!(observations = n, "Replayed the correlation journal.");
        }
        c.generation = generation;
        c.save().context("saving the correlation state")?;
        Ok(Some(c))
    }

    /// Restores `correlation.json`; returns the journal generation it names.
    fn restore(&mut self) -> u64 {
        let Ok(bytes) = std::fs::read(&self.state_path) else {
            return 0;
        };
        let path = self.state_path.display().to_string();
        let (engine, generation, waiting, streams) = match serde_json::from_slice::<SavedState>(
            &bytes,
        ) {
            Ok(s) if s.version == STATE_VERSION => (
                serde_json::to_vec(&s.engine).unwrap_or_default(),
                s.generation,
                s.waiting,
                s.streams,
            ),
            Ok(s) => {
                tracing::warn!(path = %path, version = s.version, "Ignored saved correlation state of an unknown version.");
                return 0;
            }
            // Version 1: the engine's snapshot alone.
            Err(_) => (bytes, 0, Vec::new(), Vec::new()),
        };
        match self.engine.restore(&engine) {
            Ok(r) => tracing::info!(
                groups = r.groups,
                dropped = r.dropped,
                waiting = waiting.len(),
                "Restored correlation state."
            ),
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "Ignored saved correlation state.");
                return 0;
            }
        }
        for o in waiting.into_iter().filter_map(|d| d.into_obs().ok()) {
            self.wait(o);
        }
        for (stream, position, hit) in streams {
            self.touches += 1;
            self.streams.insert(
                stream,
                Seen {
                    position: (position, hit),
                    touched: self.touches,
                },
            );
        }
        generation
    }

    /// How many rules run.
    pub fn rules(&self) -> usize {
        self.engine.rules().len()
    }

    /// Feeds observations (journaled: see [`Correlation::sync`]); writes what they
    /// confirm.
    pub fn observe(&mut self, obs: Vec<Observation>, out: &mut Vec<Vec<u8>>, metrics: &Metrics) {
        for o in obs {
            self.admit(o, out, Some(metrics));
        }
        set_counter(&metrics.rule_observations_late, self.late);
        set_counter(&metrics.rule_observations_replayed, self.replayed);
    }

    /// Takes one observation in: drops a replay, journals it, and puts it in the
    /// reorder buffer or, when late, gives it to the rules. `metrics: None` while
    /// replaying the journal (nothing is recorded or counted: it was before).
    fn admit(&mut self, o: Observation, out: &mut Vec<Vec<u8>>, metrics: Option<&Metrics>) {
        if let Some(origin) = &o.origin {
            let at = (origin.position, origin.hit);
            self.touches += 1;
            let touched = self.touches;
            match self.streams.get_mut(&origin.stream) {
                Some(seen) if at <= seen.position => {
                    self.replayed += 1;
                    return;
                }
                Some(seen) => {
                    *seen = Seen {
                        position: at,
                        touched,
                    }
                }
                None => {
                    if self.streams.len() >= MAX_STREAMS {
                        let oldest = self
                            .streams
                            .iter()
                            .min_by_key(|(_, s)| s.touched)
                            .map(|(k, _)| k.clone());
                        if let Some(k) = oldest {
                            self.streams.remove(&k);
                        }
                    }
                    self.streams.insert(
                        origin.stream.clone(),
                        Seen {
                            position: at,
                            touched,
                        },
                    );
                }
            }
        }
        if metrics.is_some() {
            self.journal.push(&o);
        }
        if self.clock.is_none_or(|c| o.time > c.newest) {
            self.clock = Some(EventClock {
                newest: o.time,
                seen_at: Instant::now(),
            });
        }
        let late = self
            .clock
            .is_some_and(|c| o.time < c.watermark(self.lateness));
        if late {
            self.late += 1;
            let confirmed = self.engine.observe(o);
            self.confirmed(confirmed, out, metrics);
        } else {
            self.wait(o);
            while self.waiting.len() > MAX_WAITING {
                self.release_first(out, metrics);
            }
        }
    }

    /// What [`crate::retro::matching::observations`] needs of the rules: the shortest
    /// timespan and the largest count any condition names.
    pub fn retro_shape(&self) -> crate::retro::matching::RuleShape {
        retro_shape(self.engine.rules())
    }

    /// Correlates the observations of one retro run (their original times, see
    /// [`crate::retro::matching::observations`]) and writes the confirmations like
    /// live ones (alerts into `out`, sightings into the outbox, dated at the
    /// original times).
    ///
    /// They go through a fresh engine of the same rules, in time order, and its
    /// windows close at the end ([`Engine::observe_batch`]): as a hunt over the
    /// observed past would correlate them. Not through the live engine and its
    /// reorder buffer: retro events are days older than the watermark, so they would
    /// all be "late" there, and a group that live lines keep open would refuse them
    /// as older than its window. Consequences: a retro run correlates its own events
    /// among themselves (not with live ones), is not journaled (a crash before its
    /// alerts are written loses it; `tripline retro` probes again), and does not
    /// move the live event clock.
    pub fn observe_retro(
        &mut self,
        observations: Vec<Observation>,
        out: &mut Vec<Vec<u8>>,
        metrics: &Metrics,
    ) {
        if observations.is_empty() {
            return;
        }
        let mut engine = Engine::with_options(
            self.engine.rules().to_vec(),
            EngineOptions {
                max_groups: self.retro_max_groups,
            },
        );
        let confirmed = engine.observe_batch(observations);
        self.confirmed(confirmed, out, Some(metrics));
    }

    fn wait(&mut self, o: Observation) {
        self.arrivals += 1;
        self.waiting.insert((o.time, self.arrivals), o);
    }

    /// Makes the observations taken in since the last call durable (journal,
    /// `fdatasync`): called before the batch they came from is acknowledged, so a
    /// file checkpoint never passes what the state and journal hold. If the journal
    /// cannot be written, the whole state is saved instead; `Err` when neither can
    /// (the batch must not be acknowledged).
    pub fn sync(&mut self) -> Result<(), String> {
        match self.journal.sync() {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot append to the correlation journal; saving the whole state instead.");
                self.save().map_err(|e| format!("{e:#}"))
            }
        }
    }

    /// Feeds the oldest waiting observation to the rules.
    fn release_first(&mut self, out: &mut Vec<Vec<u8>>, metrics: Option<&Metrics>) -> bool {
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
            self.release_first(out, Some(metrics));
        }
    }

    /// Closes the windows the event clock has passed; logs late observations; saves
    /// the state when due.
    pub fn tick(&mut self, out: &mut Vec<Vec<u8>>, metrics: &Metrics) {
        if let Some(clock) = self.clock {
            let watermark = clock.watermark(self.lateness);
            self.release(Some(watermark), out, metrics);
            let confirmed = self.engine.flush(watermark);
            self.confirmed(confirmed, out, Some(metrics));
        }
        set_counter(&metrics.rule_observations_late, self.late);
        set_counter(&metrics.rule_observations_replayed, self.replayed);
        if self.late > self.late_logged
            && self
                .late_log_at
                .is_none_or(|t| t.elapsed() >= LATE_LOG_EVERY)
        {
            tracing::warn!(
                late = self.late - self.late_logged,
                lateness_secs = self.lateness.num_seconds(),
                "Observations reached the rules later than the lateness allows; correlated with their own time where their window is still held."
            );
            self.late_logged = self.late;
            self.late_log_at = Some(Instant::now());
        }
        if self.last_snapshot.elapsed() >= SNAPSHOT_EVERY
            || self.journal.bytes() > JOURNAL_MAX_BYTES
        {
            if let Err(e) = self.save() {
                tracing::error!(path = %self.state_path.display(), error = format!("{e:#}"), "Cannot save correlation state.");
            }
        }
    }

    /// The input is complete (end of stdin): closes every open window, as at the end
    /// of a hunt.
    pub fn finish(&mut self, out: &mut Vec<Vec<u8>>, metrics: &Metrics) {
        self.release(None, out, metrics);
        let confirmed = self.engine.finish();
        self.confirmed(confirmed, out, Some(metrics));
    }

    /// At shutdown: feeds what waits, then saves the state.
    pub fn close(&mut self, out: &mut Vec<Vec<u8>>, metrics: &Metrics) {
        self.release(None, out, metrics);
        if let Err(e) = self.save() {
            tracing::error!(path = %self.state_path.display(), error = format!("{e:#}"), "Cannot save correlation state.");
        }
    }

    /// Writes confirmations as alerts and records them in the outbox; with `metrics`
    /// `None` (journal replay) they were written before the restart: nothing is.
    fn confirmed(
        &mut self,
        confirmed: Vec<Confirmation>,
        out: &mut Vec<Vec<u8>>,
        metrics: Option<&Metrics>,
    ) {
        let Some(metrics) = metrics else {
            return;
        };
        set_counter(&metrics.rule_observations_unkeyed, self.engine.unkeyed());
        set_counter(&metrics.rule_groups_evicted, self.engine.evictions());
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

    /// Saves the state (next generation), then starts that generation's empty
    /// journal. A crash between the two leaves a stale journal, which is ignored.
    fn save(&mut self) -> Result<()> {
        self.last_snapshot = Instant::now();
        let generation = self.generation.max(self.journal.generation()) + 1;
        let engine: serde_json::Value = serde_json::from_slice(&self.engine.snapshot())
            .context("reading back the rules' snapshot")?;
        let doc = SavedState {
            version: STATE_VERSION,
            generation,
            engine,
            waiting: self
                .waiting
                .values()
                .map(ObservationDoc::from_obs)
                .collect(),
            streams: self
                .streams
                .iter()
                .map(|(k, s)| (k.clone(), s.position.0, s.position.1))
                .collect(),
        };
        let bytes = serde_json::to_vec(&doc).context("serialising the correlation state")?;
        write_atomic(&self.state_path, &bytes)?;
        self.generation = generation;
        self.journal.reset(generation).with_context(|| {
            format!(
                "starting the correlation journal in {}",
                self.state_path.display()
            )
        })?;
        Ok(())
    }
}

/// The shortest timespan and the largest condition count of `rules`.
pub fn retro_shape(rules: &[crate::correlate::rule::Rule]) -> crate::retro::matching::RuleShape {
    let corrs = rules.iter().filter_map(|r| r.correlation.as_ref());
    crate::retro::matching::RuleShape {
        span: corrs.clone().map(|c| c.timespan.delta()).min(),
        max_events: corrs
            .map(|c| c.condition.max().unwrap_or(c.condition.min()) + 1)
            .max()
            .unwrap_or(2)
            .max(2),
    }
}

/// Temp file, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
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
