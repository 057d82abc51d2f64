//! Prometheus metrics: every name in one place, and the `/metrics` + `/healthz`
//! listener.
//!
//! Each metric is one [`MetricDef`] const (name, help, kind, label names), written
//! once: [`Metrics::new`] registers from it, [`METRICS`] / [`METRIC_NAMES`] list it
//! for the dashboard and documentation tests, and [`markdown_table`] renders the
//! README's table from it. A test checks that what is registered and exported is
//! exactly what is listed.
//!
//! Names follow `tripline_<name>_<unit>` with `_total` for counters. Labels are
//! bounded: source names from the configuration, intel source names, destination
//! names, indicator types, reasons, kinds and results from fixed sets; never an
//! indicator value, a path or a peer address. Sources and the outbox keep their own
//! counters (atomics, or the outbox's in-memory figures: cheap where they are
//! counted); the registry reads them when scraped ([`Metrics::on_scrape`] hooks), so
//! nothing in the hot path touches the registry.
//!
//! Sums of seconds (delivery delay, request time) are `_seconds_total` counters, not
//! histograms: the outbox sums them as it delivers and the registry copies the sums
//! at scrape time; with the matching count (`tripline_sightings_delivered_total`,
//! `tripline_sighting_delivery_attempts_total`) they give a mean over any range
//! (`rate(sum) / rate(count)`). A histogram would need each delivery observed into
//! the registry from inside the outbox, and bucket bounds spanning seconds (window
//! close) to days (an approval queue); a counter needs neither and survives `rate()`
//! across restarts, which a gauge holding a running sum (as before) did not.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// A hook run before each scrape.
type Refresher = Box<dyn Fn(&Metrics) + Send + Sync>;

/// What kind of series a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    /// As the exposition format's `# TYPE` line writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One metric: its name, help, kind and label names, written once. Registration
/// ([`Metrics::new`]), the documented list ([`METRICS`], [`METRIC_NAMES`]) and the
/// README's table ([`markdown_table`]) all read these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    pub labels: &'static [&'static str],
}

const fn def(
    name: &'static str,
    kind: MetricKind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        help,
        kind,
        labels,
    }
}

use MetricKind::{Counter, Gauge as GaugeKind, Histogram as HistogramKind};

pub const LINES_RECEIVED: MetricDef = def(
    "tripline_lines_received_total",
    Counter,
    &["source"],
    "Lines (syslog messages) received.",
);
pub const BYTES_RECEIVED: MetricDef = def(
    "tripline_bytes_received_total",
    Counter,
    &["source"],
    "Bytes received.",
);
pub const LINES_REJECTED: MetricDef = def(
    "tripline_lines_rejected_total",
    Counter,
    &["source", "reason"],
    "Lines not matched, by reason.",
);
pub const MATCHES: MetricDef = def(
    "tripline_matches_total",
    Counter,
    &["indicator_type", "intel_source"],
    "Indicator matches (enrichments).",
);
pub const MATCHED_LINES: MetricDef = def(
    "tripline_matched_lines_total",
    Counter,
    &["source"],
    "Lines with at least one match.",
);
pub const INDICATORS_LOADED: MetricDef = def(
    "tripline_indicators_loaded",
    GaugeKind,
    &["indicator_type", "intel_source"],
    "Matchable indicators in the live index.",
);
pub const INDICATORS_REFUSED: MetricDef = def(
    "tripline_indicators_refused",
    GaugeKind,
    &["reason", "intel_source"],
    "Indicators refused at the last load as too broad (public_suffix, short_prefix, zero_prefix); allow_broad keeps them.",
);
pub const INTEL_EXPIRED: MetricDef = def(
    "tripline_intel_expired",
    GaugeKind,
    &["intel_source", "reason"],
    "Indicator provenances left out of the index at the last build, by intel source and reason: deleted (MISP), revoked (STIX), valid_until, lifetime, decayed (MISP decay below its threshold).",
);
pub const INDEX_BUILD_SECONDS: MetricDef = def(
    "tripline_index_build_seconds",
    GaugeKind,
    &[],
    "Seconds the last index build took.",
);
pub const INDEX_MEMORY_BYTES: MetricDef = def(
    "tripline_index_memory_bytes",
    GaugeKind,
    &[],
    "Heap bytes held by the live index.",
);
pub const RELOADS: MetricDef = def(
    "tripline_reloads_total",
    Counter,
    &["result"],
    "Index (re)loads by result (ok, partial, failed, refused).",
);
pub const LAST_RELOAD_TIMESTAMP: MetricDef = def(
    "tripline_last_reload_timestamp_seconds",
    GaugeKind,
    &[],
    "Unix time of the last successful index load.",
);
pub const MATCH_DURATION: MetricDef = def(
    "tripline_match_duration_seconds",
    HistogramKind,
    &[],
    "Time to match one batch of lines.",
);
pub const OPEN_FILES: MetricDef = def(
    "tripline_open_files",
    GaugeKind,
    &["source"],
    "Files being followed.",
);
pub const FILE_LAG_BYTES: MetricDef = def(
    "tripline_file_lag_bytes",
    GaugeKind,
    &["source"],
    "Bytes written to followed files and not read yet.",
);
pub const CHECKPOINT_WRITES: MetricDef = def(
    "tripline_checkpoint_writes_total",
    Counter,
    &["source"],
    "Checkpoint files written.",
);
pub const FILE_ROTATIONS: MetricDef = def(
    "tripline_file_rotations_total",
    Counter,
    &["source"],
    "Renames, disappearances, truncations and rotations while stopped seen by a file source.",
);
pub const CHECKPOINT_WRITE_FAILURES: MetricDef = def(
    "tripline_checkpoint_write_failures_total",
    Counter,
    &["source"],
    "Checkpoint writes that failed (each retried; /healthz is 503 while they fail).",
);
pub const SYSLOG_CONNECTIONS: MetricDef = def(
    "tripline_syslog_connections",
    GaugeKind,
    &["source"],
    "Open syslog connections.",
);
pub const SYSLOG_CONNECTIONS_ACCEPTED: MetricDef = def(
    "tripline_syslog_connections_accepted_total",
    Counter,
    &["source"],
    "Syslog connections accepted.",
);
pub const SYSLOG_CONNECTIONS_CLOSED: MetricDef = def(
    "tripline_syslog_connections_closed_total",
    Counter,
    &["source", "reason"],
    "Syslog connections closed by tripline, by reason (idle, evicted, refused, \
     tls_handshake_failed, tls_handshake_timeout, read_error, framing_error).",
);
pub const SYSLOG_MESSAGES_TRUNCATED: MetricDef = def(
    "tripline_syslog_messages_truncated_total",
    Counter,
    &["source"],
    "Syslog messages longer than max_message_bytes, handed on truncated.",
);
pub const SYSLOG_PARSE_FAILURES: MetricDef = def(
    "tripline_syslog_parse_failures_total",
    Counter,
    &["source"],
    "Syslog messages without a readable syslog header (handed on and matched as text).",
);
pub const RELP_ANSWERED: MetricDef = def(
    "tripline_relp_messages_answered_total",
    Counter,
    &["source"],
    "RELP messages answered 200 OK (after their alerts were written).",
);
pub const RELP_UNANSWERED: MetricDef = def(
    "tripline_relp_unanswered",
    GaugeKind,
    &["source"],
    "RELP messages read and not answered yet (waiting for their alerts to be written).",
);
pub const RELP_UNANSWERED_AT_CLOSE: MetricDef = def(
    "tripline_relp_unanswered_at_close_total",
    Counter,
    &["source"],
    "RELP messages left unanswered when their connection closed: the client sends them \
     again (possible duplicates, never losses).",
);
pub const UDP_DROPS: MetricDef = def(
    "tripline_udp_drops_total",
    Counter,
    &["source"],
    "Syslog datagrams dropped.",
);
pub const QUEUE_DEPTH: MetricDef = def(
    "tripline_queue_depth_batches",
    GaugeKind,
    &[],
    "Batches waiting to be matched.",
);
pub const ALERTS_WRITTEN: MetricDef = def(
    "tripline_alerts_written_total",
    Counter,
    &[],
    "Alerts written.",
);
pub const ALERTS_THROTTLED: MetricDef = def(
    "tripline_alerts_throttled_total",
    Counter,
    &[],
    "Alerts not written because a repeat of the same indicator and host was throttled.",
);
pub const ALERT_WRITE_FAILURES: MetricDef = def(
    "tripline_alert_write_failures_total",
    Counter,
    &[],
    "Failed tries at writing a batch of alerts; the batch is held and retried.",
);
pub const ALERTS_WRITABLE: MetricDef = def(
    "tripline_alerts_writable",
    GaugeKind,
    &[],
    "1 while alerts can be written; 0 while a write failure holds the input.",
);
pub const READY: MetricDef = def(
    "tripline_ready",
    GaugeKind,
    &[],
    "1 once the first index is loaded.",
);
pub const CONFIRMATIONS: MetricDef = def(
    "tripline_confirmations_total",
    Counter,
    &["rule"],
    "Correlations confirmed, by rule id.",
);
pub const RULE_OBSERVATIONS_UNKEYED: MetricDef = def(
    "tripline_rule_observations_unkeyed_total",
    Counter,
    &[],
    "Observations a rule selected but could not group or count because a field it needs is missing (a line that names no host, for a rule by host; no source address...).",
);
pub const RULE_GROUPS_EVICTED: MetricDef = def(
    "tripline_rule_groups_evicted_total",
    Counter,
    &[],
    "Correlation groups dropped because `rules.max_groups` was reached (the least recently touched first): their partial counts are lost.",
);
pub const RULE_OBSERVATIONS_LATE: MetricDef = def(
    "tripline_rule_observations_late_total",
    Counter,
    &[],
    "Observations that reached the sidecar's rules more than `rules.lateness_secs` behind the newest event time; correlated with their own time where their window is still held.",
);
pub const RULE_OBSERVATIONS_REPLAYED: MetricDef = def(
    "tripline_rule_observations_replayed_total",
    Counter,
    &[],
    "Observations of lines read again after a restart (same input and position as one already correlated), not counted again.",
);
pub const OBSERVATIONS_SUPPRESSED: MetricDef = def(
    "tripline_observations_suppressed_total",
    Counter,
    &[],
    "Matches of indicators reported as false positives (tripline feedback): their alerts are marked or dropped and no positive sighting of them is queued.",
);
pub const SIGHTINGS: MetricDef = def(
    "tripline_sightings",
    GaugeKind,
    &["destination", "state"],
    "Sightings in the outbox, by destination and state.",
);
pub const OUTBOX_DEPTH: MetricDef = def(
    "tripline_outbox_depth",
    GaugeKind,
    &[],
    "Sightings not yet delivered nor decided (pending approval, queued, sending).",
);
pub const OUTBOX_OLDEST_AGE: MetricDef = def(
    "tripline_outbox_oldest_age_seconds",
    GaugeKind,
    &[],
    "Age of the oldest sighting not yet delivered nor decided; 0 when there is none.",
);
pub const SIGHTINGS_DROPPED: MetricDef = def(
    "tripline_sightings_dropped_total",
    Counter,
    &["reason"],
    "Indicator provenances the sharing policy left out of sightings (when queued) and \
     sightings it withheld (asked again before delivery), by reason (no_destination, \
     tlp, unknown_tlp, distribution, sharing_group, victim_data, no_target, withdrawn, \
     suppressed, decayed, warninglisted).",
);
pub const SIGHTING_LATE_OBSERVATIONS: MetricDef = def(
    "tripline_sighting_late_observations_total",
    Counter,
    &[],
    "Observations that came after their window's sighting had left, so were not shared.",
);
pub const SIGHTING_DELIVERY_ATTEMPTS: MetricDef = def(
    "tripline_sighting_delivery_attempts_total",
    Counter,
    &["destination"],
    "Delivery attempts (one per outbox row tried, a check before a re-send included).",
);
pub const SIGHTINGS_DELIVERED: MetricDef = def(
    "tripline_sightings_delivered_total",
    Counter,
    &["destination"],
    "Sightings delivered, by destination (those found already there included).",
);
pub const SIGHTINGS_ALREADY_DELIVERED: MetricDef = def(
    "tripline_sightings_already_delivered_total",
    Counter,
    &["destination"],
    "Sightings found at the destination after an attempt with an unknown outcome, and \
     not sent again.",
);
pub const SIGHTING_DELIVERY_FAILURES: MetricDef = def(
    "tripline_sighting_delivery_failures_total",
    Counter,
    &["destination", "kind"],
    "Failed delivery attempts, by destination and kind (connect, transport, status, \
     refused, response, io, secret, tls, unsupported).",
);
pub const SIGHTING_REQUEST_SECONDS: MetricDef = def(
    "tripline_sighting_request_seconds_total",
    Counter,
    &["destination"],
    "Seconds spent in delivery attempts; divided by the attempts, the mean request time.",
);
pub const SIGHTING_REQUEST_MAX_SECONDS: MetricDef = def(
    "tripline_sighting_request_max_seconds",
    GaugeKind,
    &["destination"],
    "Longest delivery attempt since the process started.",
);
pub const SIGHTING_DELIVERY_DELAY: MetricDef = def(
    "tripline_sighting_delivery_delay_seconds_total",
    Counter,
    &["destination"],
    "Seconds from sightings' creation to their delivery, summed over delivered \
     sightings; divided by the delivered count, the mean delay.",
);
pub const SIGHTING_DESTINATION_BLOCKED: MetricDef = def(
    "tripline_sighting_destination_blocked",
    GaugeKind,
    &["destination"],
    "1 while a destination is blocked because it refused our credentials (HTTP 401/403): \
     no request goes to it until its configuration or key changes; its sightings stay queued.",
);
pub const SIGHTING_BATCHES: MetricDef = def(
    "tripline_sighting_batches_total",
    Counter,
    &["destination"],
    "Delivery attempts that carried outbox rows (one request, or one envelope of several rows).",
);
pub const SIGHTING_BATCHED_ROWS: MetricDef = def(
    "tripline_sighting_batched_rows_total",
    Counter,
    &["destination"],
    "Outbox rows carried by those attempts; divided by the batches, the mean batch size.",
);

pub const INTEL_SOURCE_INDICATORS: MetricDef = def(
    "tripline_intel_source_indicators",
    GaugeKind,
    &["source"],
    "Indicators in each synced intel source's cache after its last pass that changed it.",
);
pub const INTEL_SYNC_DURATION: MetricDef = def(
    "tripline_intel_sync_duration_seconds",
    GaugeKind,
    &["source"],
    "How long the last sync pass of each intel source took.",
);
pub const INTEL_SYNCS: MetricDef = def(
    "tripline_intel_syncs_total",
    Counter,
    &["source", "result"],
    "Sync passes of each intel source, by result (ok, error, held).",
);
pub const INTEL_SYNC_LAST_SUCCESS: MetricDef = def(
    "tripline_intel_sync_last_success_timestamp_seconds",
    GaugeKind,
    &["source"],
    "Unix time of each intel source's last successful sync pass.",
);
pub const INTEL_SYNC_BYTES: MetricDef = def(
    "tripline_intel_sync_bytes_total",
    Counter,
    &["source"],
    "Body bytes fetched by sync passes, per intel source.",
);
pub const INTEL_SYNC_DELETED: MetricDef = def(
    "tripline_intel_sync_deleted_total",
    Counter,
    &["source"],
    "Records removed from an intel source's cache (deleted at the source, dropped from a feed).",
);
pub const INTEL_SYNC_HELD: MetricDef = def(
    "tripline_intel_sync_held",
    GaugeKind,
    &["source"],
    "1 while an intel source's last pass is held for review by the shrink guard (intel sync --accept-shrink applies it), else 0.",
);
pub const INTEL_SNAPSHOT_CORRUPT: MetricDef = def(
    "tripline_intel_snapshot_corrupt_total",
    Counter,
    &[],
    "Intel cache snapshots found corrupt (unreadable, bad checksum or encoding) and rebuilt by parsing the data.",
);

pub const RETRO_STORE_BYTES: MetricDef = def(
    "tripline_retro_store_bytes",
    GaugeKind,
    &[],
    "Bytes of the retro observation store's sealed segments on disk.",
);
pub const RETRO_SLICES: MetricDef = def(
    "tripline_retro_slices",
    GaugeKind,
    &[],
    "Time slices (UTC days) held by the retro observation store.",
);
pub const RETRO_OBSERVATIONS: MetricDef = def(
    "tripline_retro_observations_total",
    Counter,
    &[],
    "Observables recorded into the retro store (distinct per line: one line with two addresses counts two).",
);
pub const RETRO_SLICES_DROPPED: MetricDef = def(
    "tripline_retro_slices_dropped_total",
    Counter,
    &["reason"],
    "Days (slices) dropped from the observation store by its retention: age (past [retro] retention_days) or size (oldest first while over [retro] max_bytes).",
);
pub const RETRO_RUNS: MetricDef = def(
    "tripline_retro_runs_total",
    Counter,
    &["trigger"],
    "Retro runs of tripline run: indicators new in a reloaded index probed against the observation store, by what reloaded it (sync, reload: SIGHUP or a changed intel file; start: intel new since the last run probed before this process started).",
);
pub const RETRO_PROBES: MetricDef = def(
    "tripline_retro_probes_total",
    Counter,
    &[],
    "Indicators probed against the observation store by retro runs.",
);
pub const RETRO_HITS: MetricDef = def(
    "tripline_retro_hits_total",
    Counter,
    &[],
    "(indicator, observed value) pairs retro runs found in the observation store; each observed value becomes one retro alert.",
);
pub const RETRO_INTEL_LAG: MetricDef = def(
    "tripline_retro_intel_lag_seconds",
    HistogramKind,
    &[],
    "Intel lag of retro hits: the intel's publication time (else when it was loaded) minus the first time the value was seen; 0 when the intel was older.",
);

/// Buckets of [`RETRO_INTEL_LAG`], seconds: 1 and 10 minutes, 1 and 6 hours, 1, 3 and 7
/// days, 2 weeks, 30, 90 and 180 days.
pub const RETRO_LAG_BUCKETS: [f64; 11] = [
    60.0,
    600.0,
    3_600.0,
    21_600.0,
    86_400.0,
    259_200.0,
    604_800.0,
    1_209_600.0,
    2_592_000.0,
    7_776_000.0,
    15_552_000.0,
];

/// Every metric tripline exports, in the order of the documentation.
pub const METRICS: &[MetricDef] = &[
    LINES_RECEIVED,
    BYTES_RECEIVED,
    LINES_REJECTED,
    MATCHES,
    MATCHED_LINES,
    INDICATORS_LOADED,
    INDICATORS_REFUSED,
    INTEL_EXPIRED,
    INDEX_BUILD_SECONDS,
    INDEX_MEMORY_BYTES,
    RELOADS,
    LAST_RELOAD_TIMESTAMP,
    INTEL_SOURCE_INDICATORS,
    INTEL_SYNC_DURATION,
    INTEL_SYNCS,
    INTEL_SYNC_LAST_SUCCESS,
    INTEL_SYNC_BYTES,
    INTEL_SYNC_DELETED,
    INTEL_SYNC_HELD,
    INTEL_SNAPSHOT_CORRUPT,
    RETRO_STORE_BYTES,
    RETRO_SLICES,
    RETRO_OBSERVATIONS,
    RETRO_SLICES_DROPPED,
    RETRO_RUNS,
    RETRO_PROBES,
    RETRO_HITS,
    RETRO_INTEL_LAG,
    MATCH_DURATION,
    OPEN_FILES,
    FILE_LAG_BYTES,
    CHECKPOINT_WRITES,
    FILE_ROTATIONS,
    CHECKPOINT_WRITE_FAILURES,
    SYSLOG_CONNECTIONS,
    SYSLOG_CONNECTIONS_ACCEPTED,
    SYSLOG_CONNECTIONS_CLOSED,
    SYSLOG_MESSAGES_TRUNCATED,
    SYSLOG_PARSE_FAILURES,
    RELP_ANSWERED,
    RELP_UNANSWERED,
    RELP_UNANSWERED_AT_CLOSE,
    UDP_DROPS,
    QUEUE_DEPTH,
    ALERTS_WRITTEN,
    ALERTS_THROTTLED,
    ALERT_WRITE_FAILURES,
    ALERTS_WRITABLE,
    READY,
    CONFIRMATIONS,
    RULE_OBSERVATIONS_UNKEYED,
    RULE_GROUPS_EVICTED,
    RULE_OBSERVATIONS_LATE,
    RULE_OBSERVATIONS_REPLAYED,
    OBSERVATIONS_SUPPRESSED,
    SIGHTINGS,
    OUTBOX_DEPTH,
    OUTBOX_OLDEST_AGE,
    SIGHTINGS_DROPPED,
    SIGHTING_LATE_OBSERVATIONS,
    SIGHTING_DELIVERY_ATTEMPTS,
    SIGHTINGS_DELIVERED,
    SIGHTINGS_ALREADY_DELIVERED,
    SIGHTING_DELIVERY_FAILURES,
    SIGHTING_REQUEST_SECONDS,
    SIGHTING_REQUEST_MAX_SECONDS,
    SIGHTING_DELIVERY_DELAY,
    SIGHTING_DESTINATION_BLOCKED,
    SIGHTING_BATCHES,
    SIGHTING_BATCHED_ROWS,
];

/// Every exported metric name, from [`METRICS`] (histograms also export `_bucket`,
/// `_sum`, `_count`).
pub const METRIC_NAMES: &[&str] = &{
    let mut names = [""; METRICS.len()];
    let mut i = 0;
    while i < METRICS.len() {
        names[i] = METRICS[i].name;
        i += 1;
    }
    names
};

/// The README's metrics table (between [`README_TABLE_BEGIN`] and
/// [`README_TABLE_END`]), from [`METRICS`].
pub fn markdown_table() -> String {
    let mut out = String::from("| metric | type | labels | meaning |\n|---|---|---|---|\n");
    for m in METRICS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            m.name,
            m.kind.as_str(),
            m.labels.join(", "),
            m.help
        ));
    }
    out
}

/// The markers around the metrics table in `README.md`.
pub const README_TABLE_BEGIN: &str =
    "<!-- metrics table: generated by sink::metrics::markdown_table; keep in step -->";
pub const README_TABLE_END: &str = "<!-- end of metrics table -->";

/// Every metric tripline exports, one field per [`MetricDef`] in [`METRICS`].
pub struct Metrics {
    pub registry: Registry,
    pub lines_received: IntCounterVec,
    pub bytes_received: IntCounterVec,
    pub lines_rejected: IntCounterVec,
    pub matches: IntCounterVec,
    pub matched_lines: IntCounterVec,
    pub indicators_loaded: IntGaugeVec,
    pub indicators_refused: IntGaugeVec,
    pub intel_expired: IntGaugeVec,
    pub index_build_seconds: Gauge,
    pub index_memory_bytes: IntGauge,
    pub reloads: IntCounterVec,
    pub last_reload_timestamp: Gauge,
    pub intel_source_indicators: IntGaugeVec,
    pub intel_sync_duration: GaugeVec,
    pub intel_syncs: IntCounterVec,
    pub intel_sync_last_success: GaugeVec,
    pub intel_sync_bytes: IntCounterVec,
    pub intel_sync_deleted: IntCounterVec,
    pub intel_sync_held: IntGaugeVec,
    pub intel_snapshot_corrupt: IntCounter,
    pub retro_store_bytes: IntGauge,
    pub retro_slices: IntGauge,
    pub retro_observations: IntCounter,
    pub retro_slices_dropped: IntCounterVec,
    pub retro_runs: IntCounterVec,
    pub retro_probes: IntCounter,
    pub retro_hits: IntCounter,
    pub retro_intel_lag: Histogram,
    pub match_duration: Histogram,
    pub open_files: IntGaugeVec,
    pub file_lag_bytes: IntGaugeVec,
    pub checkpoint_writes: IntCounterVec,
    pub checkpoint_write_failures: IntCounterVec,
    pub file_rotations: IntCounterVec,
    pub syslog_connections: IntGaugeVec,
    pub syslog_connections_accepted: IntCounterVec,
    pub syslog_connections_closed: IntCounterVec,
    pub syslog_messages_truncated: IntCounterVec,
    pub syslog_parse_failures: IntCounterVec,
    pub relp_answered: IntCounterVec,
    pub relp_unanswered: IntGaugeVec,
    pub relp_unanswered_at_close: IntCounterVec,
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
    pub rule_observations_unkeyed: IntCounter,
    pub rule_groups_evicted: IntCounter,
    pub rule_observations_late: IntCounter,
    pub rule_observations_replayed: IntCounter,
    pub observations_suppressed: IntCounter,
    pub sightings: IntGaugeVec,
    pub outbox_depth: IntGauge,
    pub outbox_oldest_age: Gauge,
    pub sightings_dropped: IntCounterVec,
    pub sighting_late_observations: IntCounter,
    pub sighting_delivery_attempts: IntCounterVec,
    pub sightings_delivered: IntCounterVec,
    pub sightings_already_delivered: IntCounterVec,
    pub sighting_delivery_failures: IntCounterVec,
    pub sighting_request_seconds: CounterVec,
    pub sighting_request_max_seconds: GaugeVec,
    /// [`SIGHTING_DELIVERY_DELAY`]: a counter (seconds summed over delivered
    /// sightings).
    pub sighting_delivery_seconds: CounterVec,
    pub sighting_destination_blocked: IntGaugeVec,
    pub sighting_batches: IntCounterVec,
    pub sighting_batched_rows: IntCounterVec,
    /// What was registered, as the registry describes it (for the documentation test).
    descs: Vec<Desc>,
    refreshers: std::sync::Mutex<Vec<Refresher>>,
}

/// Registers metrics built from their [`MetricDef`]s. A definition is static, so a
/// failure here is a bug in this file, found by the tests: hence `expect`.
struct Registrar {
    registry: Registry,
    descs: Vec<Desc>,
}

impl Registrar {
    fn add<C: Collector + Clone + 'static>(&mut self, c: C) -> C {
        self.descs.extend(c.desc().into_iter().cloned());
        self.registry
            .register(Box::new(c.clone()))
            .expect("metric registered once");
        c
    }

    fn opts(d: &MetricDef) -> Opts {
        Opts::new(d.name, d.help)
    }

    fn counter(&mut self, d: &MetricDef) -> IntCounter {
        let c = IntCounter::with_opts(Self::opts(d)).expect("static metric definition");
        self.add(c)
    }

    fn counter_vec(&mut self, d: &MetricDef) -> IntCounterVec {
        let c = IntCounterVec::new(Self::opts(d), d.labels).expect("static metric definition");
        self.add(c)
    }

    fn seconds_vec(&mut self, d: &MetricDef) -> CounterVec {
        let c = CounterVec::new(Self::opts(d), d.labels).expect("static metric definition");
        self.add(c)
    }

    fn gauge(&mut self, d: &MetricDef) -> IntGauge {
        let g = IntGauge::with_opts(Self::opts(d)).expect("static metric definition");
        self.add(g)
    }

    fn float_gauge(&mut self, d: &MetricDef) -> Gauge {
        let g = Gauge::with_opts(Self::opts(d)).expect("static metric definition");
        self.add(g)
    }

    fn gauge_vec(&mut self, d: &MetricDef) -> IntGaugeVec {
        let g = IntGaugeVec::new(Self::opts(d), d.labels).expect("static metric definition");
        self.add(g)
    }

    fn float_gauge_vec(&mut self, d: &MetricDef) -> GaugeVec {
        let g = GaugeVec::new(Self::opts(d), d.labels).expect("static metric definition");
        self.add(g)
    }

    fn histogram(&mut self, d: &MetricDef, buckets: Vec<f64>) -> Histogram {
        let h = Histogram::with_opts(HistogramOpts::new(d.name, d.help).buckets(buckets))
            .expect("static metric definition");
        self.add(h)
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registrar {
            registry: Registry::new(),
            descs: Vec::new(),
        };
        let match_buckets = vec![
            0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
        ];
        Metrics {
            lines_received: r.counter_vec(&LINES_RECEIVED),
            bytes_received: r.counter_vec(&BYTES_RECEIVED),
            lines_rejected: r.counter_vec(&LINES_REJECTED),
            matches: r.counter_vec(&MATCHES),
            matched_lines: r.counter_vec(&MATCHED_LINES),
            indicators_loaded: r.gauge_vec(&INDICATORS_LOADED),
            indicators_refused: r.gauge_vec(&INDICATORS_REFUSED),
            intel_expired: r.gauge_vec(&INTEL_EXPIRED),
            index_build_seconds: r.float_gauge(&INDEX_BUILD_SECONDS),
            index_memory_bytes: r.gauge(&INDEX_MEMORY_BYTES),
            reloads: r.counter_vec(&RELOADS),
            last_reload_timestamp: r.float_gauge(&LAST_RELOAD_TIMESTAMP),
            intel_source_indicators: r.gauge_vec(&INTEL_SOURCE_INDICATORS),
            intel_sync_duration: r.float_gauge_vec(&INTEL_SYNC_DURATION),
            intel_syncs: r.counter_vec(&INTEL_SYNCS),
            intel_sync_last_success: r.float_gauge_vec(&INTEL_SYNC_LAST_SUCCESS),
            intel_sync_bytes: r.counter_vec(&INTEL_SYNC_BYTES),
            intel_sync_deleted: r.counter_vec(&INTEL_SYNC_DELETED),
            intel_sync_held: r.gauge_vec(&INTEL_SYNC_HELD),
            intel_snapshot_corrupt: r.counter(&INTEL_SNAPSHOT_CORRUPT),
            retro_store_bytes: r.gauge(&RETRO_STORE_BYTES),
            retro_slices: r.gauge(&RETRO_SLICES),
            retro_observations: r.counter(&RETRO_OBSERVATIONS),
            retro_slices_dropped: {
                let c = r.counter_vec(&RETRO_SLICES_DROPPED);
                for reason in ["age", "size"] {
                    c.with_label_values(&[reason]);
                }
                c
            },
            retro_runs: {
                // Both triggers from the start, at 0 (a rate over a series that
                // appears at its first run misses that run).
                let c = r.counter_vec(&RETRO_RUNS);
                for t in ["start", "sync", "reload"] {
                    c.with_label_values(&[t]);
                }
                c
            },
            retro_probes: r.counter(&RETRO_PROBES),
            retro_hits: r.counter(&RETRO_HITS),
            retro_intel_lag: r.histogram(&RETRO_INTEL_LAG, RETRO_LAG_BUCKETS.to_vec()),
            match_duration: r.histogram(&MATCH_DURATION, match_buckets),
            open_files: r.gauge_vec(&OPEN_FILES),
            file_lag_bytes: r.gauge_vec(&FILE_LAG_BYTES),
            checkpoint_writes: r.counter_vec(&CHECKPOINT_WRITES),
            checkpoint_write_failures: r.counter_vec(&CHECKPOINT_WRITE_FAILURES),
            file_rotations: r.counter_vec(&FILE_ROTATIONS),
            syslog_connections: r.gauge_vec(&SYSLOG_CONNECTIONS),
            syslog_connections_accepted: r.counter_vec(&SYSLOG_CONNECTIONS_ACCEPTED),
            syslog_connections_closed: r.counter_vec(&SYSLOG_CONNECTIONS_CLOSED),
            syslog_messages_truncated: r.counter_vec(&SYSLOG_MESSAGES_TRUNCATED),
            syslog_parse_failures: r.counter_vec(&SYSLOG_PARSE_FAILURES),
            relp_answered: r.counter_vec(&RELP_ANSWERED),
            relp_unanswered: r.gauge_vec(&RELP_UNANSWERED),
            relp_unanswered_at_close: r.counter_vec(&RELP_UNANSWERED_AT_CLOSE),
            udp_drops: r.counter_vec(&UDP_DROPS),
            queue_depth: r.gauge(&QUEUE_DEPTH),
            alerts_written: r.counter(&ALERTS_WRITTEN),
            alerts_throttled: r.counter(&ALERTS_THROTTLED),
            alert_write_failures: r.counter(&ALERT_WRITE_FAILURES),
            alerts_writable: r.gauge(&ALERTS_WRITABLE),
            ready: r.gauge(&READY),
            confirmations: r.counter_vec(&CONFIRMATIONS),
            rule_observations_unkeyed: r.counter(&RULE_OBSERVATIONS_UNKEYED),
            rule_groups_evicted: r.counter(&RULE_GROUPS_EVICTED),
            rule_observations_late: r.counter(&RULE_OBSERVATIONS_LATE),
            rule_observations_replayed: r.counter(&RULE_OBSERVATIONS_REPLAYED),
            observations_suppressed: r.counter(&OBSERVATIONS_SUPPRESSED),
            sightings: r.gauge_vec(&SIGHTINGS),
            outbox_depth: r.gauge(&OUTBOX_DEPTH),
            outbox_oldest_age: r.float_gauge(&OUTBOX_OLDEST_AGE),
            sightings_dropped: r.counter_vec(&SIGHTINGS_DROPPED),
            sighting_late_observations: r.counter(&SIGHTING_LATE_OBSERVATIONS),
            sighting_delivery_attempts: r.counter_vec(&SIGHTING_DELIVERY_ATTEMPTS),
            sightings_delivered: r.counter_vec(&SIGHTINGS_DELIVERED),
            sightings_already_delivered: r.counter_vec(&SIGHTINGS_ALREADY_DELIVERED),
            sighting_delivery_failures: r.counter_vec(&SIGHTING_DELIVERY_FAILURES),
            sighting_request_seconds: r.seconds_vec(&SIGHTING_REQUEST_SECONDS),
            sighting_request_max_seconds: r.float_gauge_vec(&SIGHTING_REQUEST_MAX_SECONDS),
            sighting_delivery_seconds: r.seconds_vec(&SIGHTING_DELIVERY_DELAY),
            sighting_destination_blocked: r.gauge_vec(&SIGHTING_DESTINATION_BLOCKED),
            sighting_batches: r.counter_vec(&SIGHTING_BATCHES),
            sighting_batched_rows: r.counter_vec(&SIGHTING_BATCHED_ROWS),
            registry: r.registry,
            descs: r.descs,
            refreshers: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The registered metrics as the registry describes them: name, help, labels.
    pub fn descs(&self) -> &[Desc] {
        &self.descs
    }

    /// Adds a hook run before each scrape: sources copy their atomic counters in.
    pub fn on_scrape(&self, f: impl Fn(&Metrics) + Send + Sync + 'static) {
        if let Ok(mut v) = self.refreshers.lock() {
            v.push(Box::new(f));
        }
    }

    /// Runs the scrape hooks.
    pub fn refresh(&self) {
        // Counted where a snapshot is found corrupt ([`crate::intel::snapshot`]), by
        // whichever load of this process found it.
        set_counter(
            &self.intel_snapshot_corrupt,
            crate::intel::snapshot::corrupt_total(),
        );
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

/// Sets a float counter (seconds summed elsewhere) to at least `value`.
pub fn set_seconds_counter(c: &prometheus::Counter, value: f64) {
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
    health: Arc<super::health::Health>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let m = metrics.clone();
    let status = |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let h = health.clone();
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
                let h = h.clone();
                async move {
                    let (code, body) = h.healthz();
                    (status(code), body)
                }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let h = health.clone();
                async move {
                    let (code, body) = h.readyz();
                    (
                        status(code),
                        [(header::CONTENT_TYPE, "application/json")],
                        body,
                    )
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
    use std::collections::BTreeMap;

    use super::*;

    /// Gives every metric a value, so that each family shows in the exposition (a
    /// labelled family without children does not).
    pub(super) fn touch_all(m: &Metrics) {
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
        m.indicators_refused
            .with_label_values(&["public_suffix", "x"])
            .set(1);
        m.intel_expired.with_label_values(&["x", "decayed"]).set(1);
        m.reloads.with_label_values(&["ok"]).inc();
        m.intel_source_indicators.with_label_values(&["s"]).set(1);
        m.intel_sync_duration.with_label_values(&["s"]).set(0.5);
        m.intel_syncs.with_label_values(&["s", "ok"]).inc();
        m.intel_sync_last_success.with_label_values(&["s"]).set(1.0);
        m.intel_sync_bytes.with_label_values(&["s"]).inc();
        m.intel_sync_deleted.with_label_values(&["s"]).inc();
        m.intel_sync_held.with_label_values(&["s"]).set(1);
        m.open_files.with_label_values(&["s"]).set(1);
        m.file_lag_bytes.with_label_values(&["s"]).set(1);
        m.checkpoint_writes.with_label_values(&["s"]).inc();
        m.checkpoint_write_failures.with_label_values(&["s"]).inc();
        m.file_rotations.with_label_values(&["s"]).inc();
        m.relp_answered.with_label_values(&["s"]).inc();
        m.relp_unanswered.with_label_values(&["s"]).set(1);
        m.relp_unanswered_at_close.with_label_values(&["s"]).inc();
        m.syslog_connections_closed
            .with_label_values(&["s", "idle"])
            .inc();
        m.syslog_messages_truncated.with_label_values(&["s"]).inc();
        m.syslog_parse_failures.with_label_values(&["s"]).inc();
        m.syslog_connections.with_label_values(&["s"]).set(1);
        m.syslog_connections_accepted
            .with_label_values(&["s"])
            .inc();
        m.udp_drops.with_label_values(&["s"]).inc();
        m.match_duration.observe(0.001);
        m.retro_runs.with_label_values(&["sync"]).inc();
        m.retro_intel_lag.observe(3600.0);
        m.confirmations.with_label_values(&["r"]).inc();
        m.sightings.with_label_values(&["d", "queued"]).set(1);
        m.sightings_dropped.with_label_values(&["tlp"]).inc();
        m.sighting_delivery_attempts.with_label_values(&["d"]).inc();
        m.sightings_delivered.with_label_values(&["d"]).inc();
        m.sightings_already_delivered
            .with_label_values(&["d"])
            .inc();
        m.sighting_delivery_failures
            .with_label_values(&["d", "connect"])
            .inc();
        m.sighting_request_seconds
            .with_label_values(&["d"])
            .inc_by(0.5);
        m.sighting_request_max_seconds
            .with_label_values(&["d"])
            .set(0.5);
        m.sighting_delivery_seconds
            .with_label_values(&["d"])
            .inc_by(1.0);
        m.sighting_destination_blocked
            .with_label_values(&["d"])
            .set(1);
        m.sighting_batches.with_label_values(&["d"]).inc();
        m.sighting_batched_rows.with_label_values(&["d"]).inc();
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for d in METRICS {
            assert!(seen.insert(d.name), "{} listed twice", d.name);
            assert!(d.name.starts_with("tripline_"), "{}", d.name);
            assert_eq!(
                d.name.ends_with("_total"),
                d.kind == MetricKind::Counter,
                "{}: `_total` is for counters, and every counter has it",
                d.name
            );
            assert!(!d.help.is_empty() && d.help.ends_with('.'), "{}", d.name);
        }
        assert_eq!(METRIC_NAMES.len(), METRICS.len());
        assert!(METRICS.iter().zip(METRIC_NAMES).all(|(d, n)| d.name == *n));
    }

    /// What is registered is what is documented: names, help and label names.
    #[test]
    fn registered_is_documented() {
        let m = Metrics::new();
        let registered: BTreeMap<&str, (&str, Vec<&str>)> = m
            .descs()
            .iter()
            .map(|d| {
                let labels = d.variable_labels.iter().map(String::as_str).collect();
                (d.fq_name.as_str(), (d.help.as_str(), labels))
            })
            .collect();
        let documented: BTreeMap<&str, (&str, Vec<&str>)> = METRICS
            .iter()
            .map(|d| (d.name, (d.help, d.labels.to_vec())))
            .collect();
        assert_eq!(registered, documented);
        assert_eq!(m.descs().len(), METRICS.len(), "one collector per metric");
    }

    /// Every family in the `/metrics` text is documented with its type and labels, and
    /// every documented metric is there.
    #[test]
    fn exported_families_are_the_documented_list() {
        let m = Metrics::new();
        touch_all(&m);
        let text = m.render();
        let mut exported: BTreeMap<String, String> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("`# TYPE name kind`");
                exported.insert(name.to_string(), kind.to_string());
            }
        }
        let documented: BTreeMap<String, String> = METRICS
            .iter()
            .map(|d| (d.name.to_string(), d.kind.as_str().to_string()))
            .collect();
        assert_eq!(exported, documented);
        // Sample lines carry only the documented labels (and `le` on buckets).
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, labels)) = line.split_once('{') else {
                continue;
            };
            let family = series
                .strip_suffix("_bucket")
                .or_else(|| series.strip_suffix("_sum"))
                .or_else(|| series.strip_suffix("_count"))
                .filter(|f| documented.get(*f).is_some_and(|k| k == "histogram"))
                .unwrap_or(series);
            let def = METRICS
                .iter()
                .find(|d| d.name == family)
                .unwrap_or_else(|| panic!("{line}: undocumented series"));
            let labels = labels.split('}').next().unwrap_or("");
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let name = pair.split('=').next().unwrap_or("");
                assert!(
                    def.labels.contains(&name) || name == "le",
                    "{line}: label {name} is not documented for {family}"
                );
            }
        }
    }

    #[test]
    fn markdown_table_has_a_row_per_metric() {
        let table = markdown_table();
        assert_eq!(table.lines().count(), METRICS.len() + 2);
        assert!(table.contains(
            "| `tripline_lines_rejected_total` | counter | source, reason | Lines not matched, by reason. |"
        ));
    }

    #[test]
    fn seconds_counters_only_go_up() {
        let m = Metrics::new();
        let c = m.sighting_delivery_seconds.with_label_values(&["d"]);
        set_seconds_counter(&c, 2.5);
        set_seconds_counter(&c, 1.0);
        assert_eq!(c.get(), 2.5);
        set_seconds_counter(&c, 4.0);
        assert_eq!(c.get(), 4.0);
    }
}
