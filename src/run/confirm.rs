//! The sidecar's correlation step: observations from written alerts go through the
//! rules (in arrival time); confirmations become alerts and sightings in the outbox.
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
use crate::share::Outbox;
use crate::sink::metrics::Metrics;
use crate::sink::output::AlertOutput;

/// How often the correlation state is saved.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(30);

pub struct Correlation {
    engine: Engine,
    outbox: Option<Arc<Outbox>>,
    state_path: PathBuf,
    last_snapshot: Instant,
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
        }))
    }

    /// Feeds observations; writes what they confirm.
    pub fn observe(&mut self, obs: Vec<Observation>, output: &mut AlertOutput, metrics: &Metrics) {
        for o in obs {
            let confirmed = self.engine.observe(o);
            self.confirmed(confirmed, output, metrics);
        }
    }

    /// Closes windows that ended by `now`; saves state when due.
    pub fn tick(&mut self, now: DateTime<Utc>, output: &mut AlertOutput, metrics: &Metrics) {
        let confirmed = self.engine.flush(now);
        self.confirmed(confirmed, output, metrics);
        if self.last_snapshot.elapsed() >= SNAPSHOT_EVERY {
            self.save();
        }
    }

    /// At shutdown: save the state (open windows survive the restart).
    pub fn close(&mut self) {
        self.save();
    }

    fn confirmed(
        &mut self,
        confirmed: Vec<Confirmation>,
        output: &mut AlertOutput,
        metrics: &Metrics,
    ) {
        for c in confirmed {
            metrics
                .confirmations
                .with_label_values(&[c.rule_id.as_str()])
                .inc();
            let doc = crate::sink::alert::confirmation_alert(&c);
            if let Err(e) = output.write(&serde_json::to_vec(&doc).unwrap_or_default()) {
                tracing::error!(error = %e, "Cannot write confirmation.");
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
    metrics.on_scrape(move |m| {
        let Ok(stats) = o.stats() else { return };
        m.sightings.reset();
        for (dest, state, n) in &stats.by_destination_state {
            m.sightings
                .with_label_values(&[dest.as_str(), state.as_str()])
                .set(*n as i64);
        }
        m.outbox_depth.set(stats.outbox_depth as i64);
        for d in &stats.deliveries {
            let l = [d.destination.as_str()];
            crate::sink::metrics::set_counter(
                &m.sightings_delivered.with_label_values(&l),
                d.delivered + d.already_delivered,
            );
            crate::sink::metrics::set_counter(
                &m.sighting_delivery_failures.with_label_values(&l),
                d.failures,
            );
            m.sighting_delivery_seconds
                .with_label_values(&l)
                .set(d.delivery_age_seconds_sum);
        }
    });
    Ok(Some(outbox))
}
