//! The sidecar's intel sync: starts the [`Scheduler`] (one thread per remote
//! `[[intel.sources]]` entry), publishes each pass to the metrics, and asks for an
//! index reload after a pass that changed data. The sidecar starts from the cache
//! (what the last pass left in `<state>/intel/<name>/data`) without waiting for any
//! server: a first pass runs in the background, when the cache is older than the
//! source's interval.

use std::sync::Arc;

use chrono::DateTime;
use tokio::sync::mpsc;

use crate::config::Plan;
use crate::intel::sync::runner::{self, PassOutcome, Scheduler, Status};
use crate::intel::sync::spec::SourceSpec;
use crate::intel::sync::SourceKind;
use crate::sink::metrics::Metrics;

/// Publishes a source's last known state (from `status.json`) before any pass.
fn publish_status(metrics: &Metrics, name: &str, status: &Status) {
    if let Some(n) = status.indicators {
        metrics
            .intel_source_indicators
            .with_label_values(&[name])
            .set(n as i64);
    }
    if let Some(t) = status
        .last_success
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        metrics
            .intel_sync_last_success
            .with_label_values(&[name])
            .set(t.timestamp() as f64);
    }
}

/// Publishes one pass.
fn publish_pass(metrics: &Metrics, outcome: &PassOutcome) {
    let name = outcome.name.as_str();
    metrics
        .intel_sync_duration
        .with_label_values(&[name])
        .set(outcome.duration.as_secs_f64());
    match &outcome.result {
        Ok(r) => {
            metrics.intel_syncs.with_label_values(&[name, "ok"]).inc();
            metrics
                .intel_sync_bytes
                .with_label_values(&[name])
                .inc_by(r.bytes_fetched);
            metrics
                .intel_sync_deleted
                .with_label_values(&[name])
                .inc_by(r.deleted);
        }
        Err(_) => metrics
            .intel_syncs
            .with_label_values(&[name, "error"])
            .inc(),
    }
    publish_status(metrics, name, &outcome.status);
}

/// Starts syncing the plan's remote intel sources (none: no thread). `reload` is the
/// sidecar's reload trigger.
pub fn start(
    plan: &Plan,
    metrics: Arc<Metrics>,
    reload: mpsc::Sender<&'static str>,
) -> Option<Scheduler> {
    let sources: Vec<SourceSpec> = plan
        .intel_sources
        .iter()
        .filter(|s| s.kind() != SourceKind::File)
        .cloned()
        .collect();
    if sources.is_empty() {
        return None;
    }
    let state = &plan.config.state.dir;
    for s in &sources {
        publish_status(&metrics, s.name(), &Status::load(state, s.name()));
    }
    let on_pass: runner::OnPass = Arc::new(move |_spec, outcome| {
        publish_pass(&metrics, outcome);
        match &outcome.result {
            Ok(r) => {
                tracing::info!(
                    source = %outcome.name,
                    changed = r.changed,
                    upserted = r.upserted,
                    deleted = r.deleted,
                    bytes = r.bytes_fetched,
                    secs = format!("{:.2}", outcome.duration.as_secs_f64()),
                    "Intel source synced."
                );
                if r.changed {
                    // Full: a reload is already due, which will read this change too.
                    let _ = reload.try_send("intel synced");
                }
            }
            Err(e) => tracing::warn!(
                source = %outcome.name,
                error = %e,
                next_run = outcome.status.next_run.as_deref().unwrap_or("-"),
                "Intel sync failed; the last good data stays."
            ),
        }
    });
    Some(Scheduler::start(&sources, state, on_pass))
}
