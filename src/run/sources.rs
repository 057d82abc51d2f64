//! Starts the planned sources ([`crate::config::SourcePlan`]: settings already built
//! and checked by [`crate::config::Config::plan`]) as tokio tasks and feeds their
//! counters to the metrics. Nothing here parses a configuration string.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{SourceKind, SourcePlan};
use crate::sink::health::Health;
use crate::sink::metrics::{set_counter, Metrics};
use crate::source::file::{self, FileSourceStats};
use crate::source::relp::{self, RelpStats};
use crate::source::syslog::{self, SyslogStats};
use crate::source::BatchSender;

/// Starts planned source `index`; the task ends at shutdown (stdin: at end of input).
/// What can be checked before the task starts is, so that a source that cannot start
/// fails the start: a syslog listener is bound, a file source's state directory is
/// created and written to. A file source keeps its checkpoints under
/// `state_dir/file/<name>`.
pub async fn start_planned(
    index: usize,
    source: &SourcePlan,
    state_dir: &Path,
    tx: BatchSender,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<Result<()>>> {
    match &source.kind {
        SourceKind::Stdin => Ok(tokio::spawn(async move {
            crate::source::stdin::run(index, tx, shutdown)
                .await
                .map_err(anyhow::Error::from)
        })),
        SourceKind::File(cfg) => {
            let cfg = cfg.clone();
            let name = source.name.clone();
            // Each file source keeps (and locks) its own checkpoint directory.
            let state = state_dir.join("file").join(&name);
            check_writable(&state)
                .with_context(|| format!("state directory {}", state.display()))?;
            let stats = Arc::new(FileSourceStats::default());
            let s3 = stats.clone();
            let dir = state.display().to_string();
            health.add_check(&format!("source:{name}"), move || {
                s3.checkpoint_failing
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .then(|| format!("cannot write checkpoints in {dir}"))
            });
            let s2 = stats.clone();
            metrics.on_scrape(move |m| {
                use std::sync::atomic::Ordering::Relaxed;
                let l = [name.as_str()];
                m.open_files
                    .with_label_values(&l)
                    .set(s2.open_files.load(Relaxed) as i64);
                m.file_lag_bytes
                    .with_label_values(&l)
                    .set(s2.lag_bytes.load(Relaxed) as i64);
                set_counter(
                    &m.checkpoint_writes.with_label_values(&l),
                    s2.checkpoint_writes.load(Relaxed),
                );
                set_counter(
                    &m.checkpoint_write_failures.with_label_values(&l),
                    s2.checkpoint_failures.load(Relaxed),
                );
                set_counter(
                    &m.file_rotations.with_label_values(&l),
                    s2.rotations.load(Relaxed),
                );
                set_counter(
                    &m.lines_rejected
                        .with_label_values(&[name.as_str(), "oversized"]),
                    s2.oversized.load(Relaxed),
                );
                set_counter(
                    &m.lines_rejected
                        .with_label_values(&[name.as_str(), "read_error"]),
                    s2.read_errors.load(Relaxed),
                );
            });
            Ok(tokio::spawn(async move {
                file::run_file_source(index, cfg, state, tx, stats, shutdown)
                    .await
                    .map_err(anyhow::Error::from)
            }))
        }
        SourceKind::Syslog(cfg) => {
            let cfg = cfg.clone();
            let stats = Arc::new(SyslogStats::default());
            let name = source.name.clone();
            let s2 = stats.clone();
            metrics.on_scrape(move |m| {
                let snap = s2.snapshot();
                let l = [name.as_str()];
                m.syslog_connections
                    .with_label_values(&l)
                    .set(snap.connections_open as i64);
                set_counter(
                    &m.syslog_connections_accepted.with_label_values(&l),
                    snap.connections_accepted,
                );
                set_counter(
                    &m.udp_drops.with_label_values(&l),
                    snap.udp_drops + snap.udp_kernel_drops,
                );
                set_counter(
                    &m.lines_rejected
                        .with_label_values(&[name.as_str(), "framing_error"]),
                    snap.framing_errors,
                );
                set_counter(
                    &m.lines_rejected
                        .with_label_values(&[name.as_str(), "connection_rejected"]),
                    snap.connections_rejected,
                );
                for (reason, n) in [
                    ("idle", snap.idle_timeouts),
                    ("evicted", snap.connections_evicted),
                    ("refused", snap.connections_rejected),
                    ("tls_handshake_failed", snap.tls_handshake_failures),
                    ("tls_handshake_timeout", snap.tls_handshake_timeouts),
                    ("read_error", snap.read_errors),
                    ("framing_error", snap.framing_errors),
                ] {
                    set_counter(
                        &m.syslog_connections_closed
                            .with_label_values(&[name.as_str(), reason]),
                        n,
                    );
                }
                set_counter(
                    &m.syslog_messages_truncated.with_label_values(&l),
                    snap.oversized,
                );
                set_counter(
                    &m.syslog_parse_failures.with_label_values(&l),
                    snap.parse_failures,
                );
            });
            let bound = syslog::bind(cfg).await?;
            Ok(tokio::spawn(async move {
                bound
                    .run(index, tx, stats, shutdown)
                    .await
                    .map_err(anyhow::Error::from)
            }))
        }
        SourceKind::Relp(cfg) => {
            let cfg = cfg.clone();
            let stats = Arc::new(RelpStats::default());
            let name = source.name.clone();
            let s2 = stats.clone();
            // The syslog connection metrics (closes by reason, truncations, messages
            // without a header) and RELP's own (answered, unanswered).
            metrics.on_scrape(move |m| {
                let snap = s2.snapshot();
                let l = [name.as_str()];
                m.syslog_connections
                    .with_label_values(&l)
                    .set(snap.connections_open as i64);
                set_counter(
                    &m.syslog_connections_accepted.with_label_values(&l),
                    snap.connections_accepted,
                );
                for (reason, value) in [
                    ("framing_error", snap.framing_errors),
                    ("protocol_error", snap.protocol_errors),
                    ("connection_rejected", snap.connections_rejected),
                ] {
                    set_counter(
                        &m.lines_rejected.with_label_values(&[name.as_str(), reason]),
                        value,
                    );
                }
                for (reason, n) in [
                    ("idle", snap.idle_timeouts),
                    ("refused", snap.connections_rejected),
                    ("read_error", snap.io_errors),
                    ("framing_error", snap.framing_errors),
                    ("protocol_error", snap.protocol_errors),
                ] {
                    set_counter(
                        &m.syslog_connections_closed
                            .with_label_values(&[name.as_str(), reason]),
                        n,
                    );
                }
                set_counter(
                    &m.syslog_messages_truncated.with_label_values(&l),
                    snap.oversized,
                );
                set_counter(
                    &m.syslog_parse_failures.with_label_values(&l),
                    snap.parse_failures,
                );
                set_counter(&m.relp_answered.with_label_values(&l), snap.answered);
                m.relp_unanswered
                    .with_label_values(&l)
                    .set(snap.unanswered as i64);
                set_counter(
                    &m.relp_unanswered_at_close.with_label_values(&l),
                    snap.unanswered_at_close,
                );
            });
            Ok(tokio::spawn(async move {
                relp::run_relp_source(index, cfg, tx, stats, shutdown)
                    .await
                    .map_err(anyhow::Error::from)
            }))
        }
    }
}

/// Creates `dir` if needed and checks that a file can be written in it.
fn check_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(".tripline-write-check");
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}
