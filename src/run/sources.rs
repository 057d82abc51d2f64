//! Starts the configured sources as tokio tasks and feeds their counters to the
//! metrics.

use std::sync::Arc;

use anyhow::Result;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{parse_utc_offset, Config, SourceConfig, StartAtConfig, SyslogModeConfig};
use crate::sink::metrics::{set_counter, Metrics};
use crate::source::file::{self, FileSourceConfig, FileSourceStats, StartAt};
use crate::source::syslog::{self, SyslogConfig, SyslogMode, SyslogStats};
use crate::source::BatchSender;

/// Starts source `index`; the task ends at shutdown (stdin: at end of input).
pub fn start(
    index: usize,
    source: &SourceConfig,
    config: &Config,
    tx: BatchSender,
    metrics: Arc<Metrics>,
    names: Arc<Vec<String>>,
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<Result<()>>> {
    match source {
        SourceConfig::Stdin(_) => Ok(tokio::spawn(super::run_stdin_source(index, tx, shutdown))),
        SourceConfig::File(f) => {
            let cfg = FileSourceConfig {
                include: f.include.clone(),
                exclude: f.exclude.clone(),
                start_at: match f.start_at {
                    StartAtConfig::Beginning => StartAt::Beginning,
                    StartAtConfig::End => StartAt::End,
                },
                max_line_bytes: f.max_line_bytes,
                rescan_interval: std::time::Duration::from_millis(f.rescan_interval_ms),
                fingerprint_bytes: f.fingerprint_bytes,
                ..FileSourceConfig::default()
            };
            let name = names.get(index).cloned().unwrap_or_default();
            // Each file source keeps (and locks) its own checkpoint directory.
            let state = config.state.dir.join("file").join(&name);
            let stats = Arc::new(FileSourceStats::default());
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
        SourceConfig::Syslog(sy) => {
            let cfg = SyslogConfig {
                mode: match sy.mode {
                    SyslogModeConfig::Udp => SyslogMode::Udp,
                    SyslogModeConfig::Tcp => SyslogMode::Tcp,
                    SyslogModeConfig::Tls => SyslogMode::Tls,
                },
                address: sy.address.parse()?,
                max_message_bytes: sy.max_message_bytes,
                max_connections: sy.max_connections,
                idle_timeout: std::time::Duration::from_secs(sy.idle_timeout_secs),
                tls_cert: sy.tls_cert.clone(),
                tls_key: sy.tls_key.clone(),
                timezone_offset_secs: parse_utc_offset(&sy.timezone).unwrap_or(0),
                ..SyslogConfig::default()
            };
            let stats = Arc::new(SyslogStats::default());
            let name = names.get(index).cloned().unwrap_or_default();
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
            });
            Ok(tokio::spawn(async move {
                syslog::run_syslog_source(index, cfg, tx, stats, shutdown)
                    .await
                    .map_err(anyhow::Error::from)
            }))
        }
    }
}
