//! The metrics exposition as Prometheus reads it: every documented metric, with
//! values, passes `promtool check metrics`; and the README's metrics table, when it
//! is between its markers, is the one `sink::metrics::markdown_table` renders.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use tripline::sink::metrics::{
    markdown_table, Metrics, METRIC_NAMES, README_TABLE_BEGIN, README_TABLE_END,
};

/// Gives every metric a value, so that every family shows.
fn every_metric_with_a_value() -> Metrics {
    let m = Metrics::new();
    m.lines_received.with_label_values(&["syslog"]).inc();
    m.bytes_received.with_label_values(&["syslog"]).inc_by(80);
    m.lines_rejected
        .with_label_values(&["syslog", "oversized"])
        .inc();
    m.matches.with_label_values(&["domain", "circl"]).inc();
    m.matched_lines.with_label_values(&["syslog"]).inc();
    m.indicators_loaded
        .with_label_values(&["domain", "circl"])
        .set(2);
    m.intel_expired
        .with_label_values(&["circl", "decayed"])
        .set(1);
    m.indicators_refused
        .with_label_values(&["public_suffix", "circl"])
        .set(1);
    m.index_build_seconds.set(0.25);
    m.index_memory_bytes.set(4096);
    m.reloads.with_label_values(&["ok"]).inc();
    m.last_reload_timestamp.set(1.7e9);
    m.match_duration.observe(0.001);
    m.open_files.with_label_values(&["files"]).set(1);
    m.file_lag_bytes.with_label_values(&["files"]).set(10);
    m.checkpoint_writes.with_label_values(&["files"]).inc();
    m.checkpoint_write_failures
        .with_label_values(&["files"])
        .inc();
    m.file_rotations.with_label_values(&["files"]).inc();
    m.relp_answered.with_label_values(&["relp"]).inc();
    m.relp_unanswered.with_label_values(&["relp"]).set(1);
    m.relp_unanswered_at_close
        .with_label_values(&["relp"])
        .inc();
    m.syslog_connections_closed
        .with_label_values(&["syslog", "idle"])
        .inc();
    m.syslog_messages_truncated
        .with_label_values(&["syslog"])
        .inc();
    m.syslog_parse_failures.with_label_values(&["syslog"]).inc();
    m.syslog_connections.with_label_values(&["syslog"]).set(1);
    m.syslog_connections_accepted
        .with_label_values(&["syslog"])
        .inc();
    m.udp_drops.with_label_values(&["syslog"]).inc();
    m.queue_depth.set(1);
    m.alerts_written.inc();
    m.alerts_throttled.inc();
    m.alert_write_failures.inc();
    m.alerts_writable.set(1);
    m.ready.set(1);
    m.confirmations.with_label_values(&["rule-1"]).inc();
    m.sightings.with_label_values(&["circl", "queued"]).set(1);
    m.outbox_depth.set(1);
    m.outbox_oldest_age.set(30.0);
    m.sightings_dropped.with_label_values(&["tlp"]).inc();
    m.sighting_late_observations.inc();
    m.sighting_delivery_attempts
        .with_label_values(&["circl"])
        .inc();
    m.sightings_delivered.with_label_values(&["circl"]).inc();
    m.sightings_already_delivered
        .with_label_values(&["circl"])
        .inc();
    m.sighting_delivery_failures
        .with_label_values(&["circl", "connect"])
        .inc();
    m.sighting_request_seconds
        .with_label_values(&["circl"])
        .inc_by(0.2);
    m.sighting_request_max_seconds
        .with_label_values(&["circl"])
        .set(0.2);
    m.sighting_delivery_seconds
        .with_label_values(&["circl"])
        .inc_by(60.0);
    m.sighting_destination_blocked
        .with_label_values(&["circl"])
        .set(0);
    m.sighting_batches.with_label_values(&["circl"]).inc();
    m.sighting_batched_rows.with_label_values(&["circl"]).inc();
    m.intel_source_indicators
        .with_label_values(&["circl"])
        .set(10);
    m.intel_sync_duration.with_label_values(&["circl"]).set(0.5);
    m.intel_syncs.with_label_values(&["circl", "ok"]).inc();
    m.intel_sync_last_success
        .with_label_values(&["circl"])
        .set(1.7e9);
    m.intel_sync_bytes.with_label_values(&["circl"]).inc_by(100);
    m.intel_sync_deleted.with_label_values(&["circl"]).inc();
    m.intel_sync_held.with_label_values(&["circl"]).set(1);
    m
}

#[test]
fn every_metric_passes_promtool() {
    let body = every_metric_with_a_value().render();
    for name in METRIC_NAMES {
        assert!(
            body.contains(&format!("# TYPE {name} ")),
            "{name} missing from\n{body}"
        );
    }
    let mut p = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(p) => p,
        Err(e) => panic!("promtool is needed for this test (scripts/test.sh installs it): {e}"),
    };
    p.stdin
        .take()
        .expect("piped stdin")
        .write_all(body.as_bytes())
        .expect("promtool reads the exposition");
    let out = p.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The table between the markers in `text`, as rows of trimmed cells (so padding an
/// editor adds to align columns does not count); `None` without the begin marker.
fn table_between_markers(text: &str) -> Option<Vec<Vec<String>>> {
    let start = text.find(README_TABLE_BEGIN)?;
    let after = &text[start + README_TABLE_BEGIN.len()..];
    let end = after
        .find(README_TABLE_END)
        .expect("the metrics table has its end marker");
    Some(rows(&after[..end]))
}

fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// The README's table between the markers is the generated one. Without markers
/// (the table not yet generated) there is nothing to compare.
#[test]
fn readme_metrics_table_is_generated() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let Some(got) = table_between_markers(&readme) else {
        eprintln!("README.md has no metrics table markers; nothing compared");
        return;
    };
    let want = markdown_table();
    assert!(
        got == rows(&want),
        "README.md's metrics table differs from sink::metrics::markdown_table(); \
         paste this between the markers:\n{want}"
    );
}

/// The comparison itself: the generated table between markers passes, also with
/// aligned columns; a missing row does not.
#[test]
fn readme_table_comparison() {
    let table = markdown_table();
    let readme = format!("# x\n\n{README_TABLE_BEGIN}\n{table}{README_TABLE_END}\n\nmore\n");
    assert_eq!(table_between_markers(&readme), Some(rows(&table)));
    let aligned = readme.replace("| counter |", "|   counter   |");
    assert_eq!(table_between_markers(&aligned), Some(rows(&table)));
    let last_row = table.lines().last().expect("rows");
    let short = readme.replace(&format!("{last_row}\n"), "");
    assert_ne!(table_between_markers(&short), Some(rows(&table)));
    assert_eq!(table_between_markers("no markers"), None);
}
