//! Prometheus metrics: every name in one place, and the `/metrics` + `/healthz`
//! listener.
//!
//! Names follow `tripline_<name>_<unit>` with `_total` for counters. Labels are
//! bounded: source names from the configuration, intel source names, indicator
//! types, reasons and results from fixed sets; never an indicator value, a path or a
//! peer address. Sources keep their own atomic counters (cheap on the hot path); the
//! registry reads them when scraped ([`Metrics::refresh`] hooks).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// A hook run before each scrape.
type Refresher = Box<dyn Fn(&Metrics) + Send + Sync>;

/// Every metric tripline exports. [`METRIC_NAMES`] lists the same names, for the
/// dashboard test.
pub struct Metrics {
    pub registry: Registry,
    pub lines_received: IntCounterVec,
    pub bytes_received: IntCounterVec,
    pub lines_rejected: IntCounterVec,
    pub matches: IntCounterVec,
    pub matched_lines: IntCounterVec,
    pub indicators_loaded: IntGaugeVec,
    pub index_build_seconds: Gauge,
    pub index_memory_bytes: IntGauge,
    pub reloads: IntCounterVec,
    pub last_reload_timestamp: Gauge,
    pub match_duration: Histogram,
    pub open_files: IntGaugeVec,
    pub file_lag_bytes: IntGaugeVec,
    pub checkpoint_writes: IntCounterVec,
    pub syslog_connections: IntGaugeVec,
    pub syslog_connections_accepted: IntCounterVec,
    pub udp_drops: IntCounterVec,
    pub queue_depth: IntGauge,
    pub alerts_written: IntCounter,
    pub alerts_throttled: IntCounter,
    /// Failed tries at writing a batch of alerts (each retried until it is written).
    pub alert_write_failures: IntCounter,
    /// 1 while alerts can be written; 0 while a write failure holds the input.
    pub alerts_writable: IntGauge,
    pub ready: IntGauge,
    pub confirmations: IntCounterVec,
    pub sightings: IntGaugeVec,
    pub outbox_depth: IntGauge,
    pub sightings_delivered: IntCounterVec,
    pub sighting_delivery_failures: IntCounterVec,
    pub sighting_delivery_seconds: prometheus::GaugeVec,
    refreshers: std::sync::Mutex<Vec<Refresher>>,
}

/// Every exported metric name (histograms export `_bucket`, `_sum`, `_count`).
pub const METRIC_NAMES: &[&str] = &[
    "tripline_lines_received_total",
    "tripline_bytes_received_total",
    "tripline_lines_rejected_total",
    "tripline_matches_total",
    "tripline_matched_lines_total",
    "tripline_indicators_loaded",
    "tripline_index_build_seconds",
    "tripline_index_memory_bytes",
    "tripline_reloads_total",
    "tripline_last_reload_timestamp_seconds",
    "tripline_match_duration_seconds",
    "tripline_open_files",
    "tripline_file_lag_bytes",
    "tripline_checkpoint_writes_total",
    "tripline_syslog_connections",
    "tripline_syslog_connections_accepted_total",
    "tripline_udp_drops_total",
    "tripline_queue_depth_batches",
    "tripline_alerts_written_total",
    "tripline_alerts_throttled_total",
    "tripline_alert_write_failures_total",
    "tripline_alerts_writable",
    "tripline_ready",
    "tripline_confirmations_total",
    "tripline_sightings",
    "tripline_outbox_depth",
    "tripline_sightings_delivered_total",
    "tripline_sighting_delivery_failures_total",
    "tripline_sighting_delivery_delay_seconds",
];

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let m = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition");
    r.register(Box::new(m.clone()))
        .expect("metric registered once");
    m
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let m = IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
    r.register(Box::new(m.clone()))
        .expect("metric registered once");
    m
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let index_build_seconds = Gauge::new(
            "tripline_index_build_seconds",
            "Seconds the last index build took.",
        )
        .expect("static metric definition");
        r.register(Box::new(index_build_seconds.clone()))
            .expect("metric registered once");
        let index_memory_bytes = IntGauge::new(
            "tripline_index_memory_bytes",
            "Heap bytes held by the live index.",
        )
        .expect("static metric definition");
        r.register(Box::new(index_memory_bytes.clone()))
            .expect("metric registered once");
        let last_reload_timestamp = Gauge::new(
            "tripline_last_reload_timestamp_seconds",
            "Unix time of the last successful index load.",
        )
        .expect("static metric definition");
        r.register(Box::new(last_reload_timestamp.clone()))
            .expect("metric registered once");
        let match_duration = Histogram::with_opts(
            HistogramOpts::new(
                "tripline_match_duration_seconds",
                "Time to match one batch of lines.",
            )
            .buckets(vec![
                0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
            ]),
        )
        .expect("static metric definition");
        r.register(Box::new(match_duration.clone()))
            .expect("metric registered once");
        let queue_depth = IntGauge::new(
            "tripline_queue_depth_batches",
            "Batches waiting to be matched.",
        )
        .expect("static metric definition");
        r.register(Box::new(queue_depth.clone()))
            .expect("metric registered once");
        let alerts_written = IntCounter::new("tripline_alerts_written_total", "Alerts written.")
            .expect("static metric definition");
        r.register(Box::new(alerts_written.clone()))
            .expect("metric registered once");
        let alerts_throttled = IntCounter::new(
            "tripline_alerts_throttled_total",
            "Alerts not written because a repeat of the same indicator and host was throttled.",
        )
        .expect("static metric definition");
        r.register(Box::new(alerts_throttled.clone()))
            .expect("metric registered once");
        let alert_write_failures = IntCounter::new(
            "tripline_alert_write_failures_total",
            "Failed tries at writing a batch of alerts; the batch is held and retried.",
        )
        .expect("static metric definition");
        r.register(Box::new(alert_write_failures.clone()))
            .expect("metric registered once");
        let alerts_writable = IntGauge::new(
            "tripline_alerts_writable",
            "1 while alerts can be written; 0 while a write failure holds the input.",
        )
        .expect("static metric definition");
        r.register(Box::new(alerts_writable.clone()))
            .expect("metric registered once");
        let ready = IntGauge::new("tripline_ready", "1 once the first index is loaded.")
            .expect("static metric definition");
        r.register(Box::new(ready.clone()))
            .expect("metric registered once");
        let outbox_depth = IntGauge::new(
            "tripline_outbox_depth",
            "Sightings not yet delivered nor decided (pending approval, queued, sending).",
        )
        .expect("static metric definition");
        r.register(Box::new(outbox_depth.clone()))
            .expect("metric registered once");
        let sighting_delivery_seconds = prometheus::GaugeVec::new(
            Opts::new(
                "tripline_sighting_delivery_delay_seconds",
                "Seconds from sightings' creation to their delivery, summed over delivered sightings.",
            ),
            &["destination"],
        )
        .expect("static metric definition");
        r.register(Box::new(sighting_delivery_seconds.clone()))
            .expect("metric registered once");
        Metrics {
            confirmations: counter_vec(
                &r,
                "tripline_confirmations_total",
                "Correlations confirmed, by rule id.",
                &["rule"],
            ),
            sightings: gauge_vec(
                &r,
                "tripline_sightings",
                "Sightings in the outbox, by destination and state.",
                &["destination", "state"],
            ),
            outbox_depth,
            sightings_delivered: counter_vec(
                &r,
                "tripline_sightings_delivered_total",
                "Sightings delivered, by destination.",
                &["destination"],
            ),
            sighting_delivery_failures: counter_vec(
                &r,
                "tripline_sighting_delivery_failures_total",
                "Failed delivery attempts, by destination.",
                &["destination"],
            ),
            sighting_delivery_seconds,
            lines_received: counter_vec(
                &r,
                "tripline_lines_received_total",
                "Lines (syslog messages) received.",
                &["source"],
            ),
            bytes_received: counter_vec(
                &r,
                "tripline_bytes_received_total",
                "Bytes received.",
                &["source"],
            ),
            lines_rejected: counter_vec(
                &r,
                "tripline_lines_rejected_total",
                "Lines not matched, by reason.",
                &["source", "reason"],
            ),
            matches: counter_vec(
                &r,
                "tripline_matches_total",
                "Indicator matches (enrichments).",
                &["indicator_type", "intel_source"],
            ),
            matched_lines: counter_vec(
                &r,
                "tripline_matched_lines_total",
                "Lines with at least one match.",
                &["source"],
            ),
            indicators_loaded: gauge_vec(
                &r,
                "tripline_indicators_loaded",
                "Matchable indicators in the live index.",
                &["indicator_type", "intel_source"],
            ),
            index_build_seconds,
            index_memory_bytes,
            reloads: counter_vec(
                &r,
                "tripline_reloads_total",
                "Index (re)loads by result.",
                &["result"],
            ),
            last_reload_timestamp,
            match_duration,
            open_files: gauge_vec(
                &r,
                "tripline_open_files",
                "Files being followed.",
                &["source"],
            ),
            file_lag_bytes: gauge_vec(
                &r,
                "tripline_file_lag_bytes",
                "Bytes written to followed files and not read yet.",
                &["source"],
            ),
            checkpoint_writes: counter_vec(
                &r,
                "tripline_checkpoint_writes_total",
                "Checkpoint files written.",
                &["source"],
            ),
            syslog_connections: gauge_vec(
                &r,
                "tripline_syslog_connections",
                "Open syslog connections.",
                &["source"],
            ),
            syslog_connections_accepted: counter_vec(
                &r,
                "tripline_syslog_connections_accepted_total",
                "Syslog connections accepted.",
                &["source"],
            ),
            udp_drops: counter_vec(
                &r,
                "tripline_udp_drops_total",
                "Syslog datagrams dropped.",
                &["source"],
            ),
            queue_depth,
            alerts_written,
            alerts_throttled,
            alert_write_failures,
            alerts_writable,
            ready,
            registry: r,
            refreshers: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Adds a hook run before each scrape: sources copy their atomic counters in.
    pub fn on_scrape(&self, f: impl Fn(&Metrics) + Send + Sync + 'static) {
        if let Ok(mut v) = self.refreshers.lock() {
            v.push(Box::new(f));
        }
    }

    /// Runs the scrape hooks.
    pub fn refresh(&self) {
        if let Ok(v) = self.refreshers.lock() {
            for f in v.iter() {
                f(self);
            }
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        self.refresh();
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Sets a counter to at least `value` (sources count in atomics; counters only go up).
pub fn set_counter(c: &prometheus::IntCounter, value: u64) {
    let cur = c.get();
    if value > cur {
        c.inc_by(value - cur);
    }
}

/// Serves `/metrics` and `/healthz` (200 once `ready`, 503 before) on `addr` until
/// `shutdown` turns true. Returns the bound address (port 0 picks one).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let m = metrics.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        m.render(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.load(Ordering::Acquire) {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "loading\n")
                    }
                }
            }),
        );
    let handle = tokio::spawn(async move {
        let stop = async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "Metrics listener failed.");
        }
    });
    Ok((local, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_exported() {
        let m = Metrics::new();
        m.lines_received.with_label_values(&["s"]).inc();
        m.bytes_received.with_label_values(&["s"]).inc();
        m.lines_rejected
            .with_label_values(&["s", "oversized"])
            .inc();
        m.matches.with_label_values(&["domain", "x"]).inc();
        m.matched_lines.with_label_values(&["s"]).inc();
        m.indicators_loaded
            .with_label_values(&["domain", "x"])
            .set(1);
        m.reloads.with_label_values(&["ok"]).inc();
        m.open_files.with_label_values(&["s"]).set(1);
        m.file_lag_bytes.with_label_values(&["s"]).set(1);
        m.checkpoint_writes.with_label_values(&["s"]).inc();
        m.syslog_connections.with_label_values(&["s"]).set(1);
        m.syslog_connections_accepted
            .with_label_values(&["s"])
            .inc();
        m.udp_drops.with_label_values(&["s"]).inc();
        m.match_duration.observe(0.001);
        m.confirmations.with_label_values(&["r"]).inc();
        m.sightings.with_label_values(&["d", "queued"]).set(1);
        m.sightings_delivered.with_label_values(&["d"]).inc();
        m.sighting_delivery_failures.with_label_values(&["d"]).inc();
        m.sighting_delivery_seconds
            .with_label_values(&["d"])
            .set(1.0);
        let text = m.render();
        for name in METRIC_NAMES {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
        }
    }
}
