//! `tripline run`: the sidecar.
//!
//! ```text
//! sources (tokio tasks) ──Batch──► bounded queue ──► dispatcher ──► match workers (threads)
//!                                                                        │ (seq, alerts)
//!                      acks ◄── output thread (in order: throttle, write, flush) ◄┘
//! ```
//!
//! - Every queue is bounded (`pipeline.queue_batches` batches, then `2 × workers` jobs
//!   and results): when matching falls behind, sources wait on `send`, so file reading
//!   slows and TCP syslog stops reading.
//! - The index lives in an `ArcSwap`: a reload builds a new one on a blocking thread
//!   and swaps it whole; workers load it per batch and never lock.
//! - Output is in arrival order; a batch is acknowledged (file checkpoints move) only
//!   after its alerts were written and flushed.
//! - One shutdown signal (SIGINT/SIGTERM, or every source finished): sources stop
//!   reading, queues drain, outputs flush, checkpoints are written.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use chrono::Utc;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, watch};

mod confirm;
mod sources;

use crate::config::{Config, SourceConfig};
use crate::emit::{AlertSink, Clock, Emitted, Emitter, SourceInfo};
use crate::index::{BuildOptions, Index};
use crate::intel::load::{self, IntelSpec, LoadOptions};
use crate::intel::StoreOptions;
use crate::scan::{Scanned, Scanner};
use crate::sink::metrics::{self, Metrics};
use crate::sink::output::{AlertOutput, Verdict};
use crate::source::{Ack, Batch, BatchSender, Line, Origin};

/// How `tripline run` was asked to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub config: Config,
    /// Read stdin as the only source (pipelines); the run ends at end of input.
    pub stdin: bool,
    pub metrics_addr: Option<SocketAddr>,
}

/// The live index and how it was built.
pub struct Live {
    pub index: ArcSwap<Index>,
    pub ready: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
}

/// Builds the index and counts it for the metrics, on the calling (blocking) thread.
fn build_counted(config: &Config) -> Result<(Index, Vec<String>, IndicatorCounts)> {
    let (index, problems) = build_index(config)?;
    let counts = indicator_counts(&index);
    Ok((index, problems, counts))
}

/// Loads intel and warninglists as the config says and builds an index.
pub fn build_index(config: &Config) -> Result<(Index, Vec<String>)> {
    let specs: Vec<IntelSpec> = config
        .intel
        .paths
        .iter()
        .map(|p| p.parse::<IntelSpec>().map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    let opts = LoadOptions {
        store: StoreOptions {
            include_non_ids: config.intel.include_non_ids,
            keep_excluded: false,
        },
        strict: false,
        csv_column: Default::default(),
    };
    let (store, errors) = load::load_intel(&specs, &opts)?;
    let problems: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let w = load::load_warninglists(
        &config.intel.warninglists,
        config.intel.no_default_warninglists,
    )?;
    let index = Index::build(
        store,
        &w,
        BuildOptions {
            warninglist_mode: config.intel.warninglist_mode.into(),
        },
    );
    Ok((index, problems))
}

/// Matchable indicators per (kind name, source name): the `indicators_loaded` gauge.
type IndicatorCounts = Vec<((&'static str, String), i64)>;

/// Counts an index's indicators for the metrics: one pass over every indicator, so it
/// runs on a blocking thread with the build.
fn indicator_counts(index: &Index) -> IndicatorCounts {
    index
        .counts_by_kind_and_source()
        .into_iter()
        .map(|((k, s), n)| {
            let name = index
                .sources
                .get(s as usize)
                .map_or("?", |x| x.name.as_str());
            ((k.name(), name.to_string()), n as i64)
        })
        .collect()
}

/// Publishes an index's figures to the metrics.
fn publish_index(metrics: &Metrics, index: &Index, counts: &IndicatorCounts) {
    metrics.indicators_loaded.reset();
    for ((k, s), n) in counts {
        metrics
            .indicators_loaded
            .with_label_values(&[k, s.as_str()])
            .set(*n);
    }
    metrics.index_build_seconds.set(index.stats.build_secs);
    metrics
        .index_memory_bytes
        .set(index.stats.memory_bytes as i64);
    metrics
        .last_reload_timestamp
        .set(Utc::now().timestamp_millis() as f64 / 1000.0);
}

/// Why a reload was refused.
fn check_shrink(old: usize, new: usize, max_ratio: f64) -> Result<(), String> {
    if old == 0 {
        return Ok(());
    }
    let shrink = 1.0 - new as f64 / old as f64;
    if shrink > max_ratio {
        return Err(format!(
            "the new intel has {new} indicators, {:.0}% fewer than the {old} loaded (limit {:.0}%)",
            shrink * 100.0,
            max_ratio * 100.0
        ));
    }
    Ok(())
}

/// Rebuilds the index off the hot path and swaps it in, unless the build failed or
/// would shrink the intel too much. Returns what happened, for logs and tests.
pub async fn reload(live: &Live, config: &Config) -> Result<usize, String> {
    let cfg = config.clone();
    let built = tokio::task::spawn_blocking(move || build_counted(&cfg))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| format!("{e:#}")));
    let (index, problems, counts) = match built {
        Ok(x) => x,
        Err(e) => {
            live.metrics.reloads.with_label_values(&["failed"]).inc();
            tracing::error!(error = %e, "Reload failed; the old index stays.");
            return Err(e);
        }
    };
    if !problems.is_empty() {
        live.metrics.reloads.with_label_values(&["failed"]).inc();
        let e = problems.join("; ");
        tracing::error!(error = %e, "Reload found bad intel; the old index stays.");
        return Err(e);
    }
    let old = live.index.load().len();
    if let Err(e) = check_shrink(old, index.len(), config.intel.max_shrink_ratio) {
        live.metrics.reloads.with_label_values(&["refused"]).inc();
        tracing::error!(error = %e, "Reload refused; the old index stays.");
        return Err(e);
    }
    let n = index.len();
    publish_index(&live.metrics, &index, &counts);
    live.index.store(Arc::new(index));
    live.metrics.reloads.with_label_values(&["ok"]).inc();
    tracing::info!(indicators = n, "Reloaded intel.");
    Ok(n)
}

/// Entry point: builds the runtime and runs until shutdown.
pub fn run(opts: RunOptions) -> Result<ExitCode> {
    let workers = match opts.config.pipeline.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tripline-io")
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run_async(opts, workers))
}

async fn run_async(opts: RunOptions, workers: usize) -> Result<ExitCode> {
    let config = opts.config.clone();
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    if config.metrics.enabled {
        let addr = match opts.metrics_addr {
            Some(a) => a,
            None => config.metrics.address.parse().context("metrics.address")?,
        };
        let (bound, _) = metrics::serve(addr, metrics.clone(), ready.clone(), shutdown_rx.clone())
            .await
            .with_context(|| format!("binding the metrics listener on {addr}"))?;
        tracing::info!(address = %bound, "Metrics listening.");
    }

    let t0 = Instant::now();
    let cfg = config.clone();
    let (index, problems, counts) = tokio::task::spawn_blocking(move || build_counted(&cfg))
        .await
        .context("index build")??;
    for p in &problems {
        tracing::error!(error = %p, "Intel not loaded.");
    }
    publish_index(&metrics, &index, &counts);
    metrics
        .reloads
        .with_label_values(&[if problems.is_empty() { "ok" } else { "partial" }])
        .inc();
    tracing::info!(
        indicators = index.len(),
        secs = t0.elapsed().as_secs_f64(),
        "Index ready."
    );
    let live = Arc::new(Live {
        index: ArcSwap::from_pointee(index),
        ready: ready.clone(),
        metrics: metrics.clone(),
    });
    ready.store(true, Ordering::Release);
    metrics.ready.set(1);

    let sources: Vec<SourceConfig> = if opts.stdin {
        vec![SourceConfig::Stdin(Default::default())]
    } else {
        config.sources.clone()
    };
    let names: Arc<Vec<String>> =
        Arc::new(sources.iter().enumerate().map(|(i, s)| s.name(i)).collect());
    let (tx, rx) = mpsc::channel::<Batch>(config.pipeline.queue_batches);

    let mut source_tasks = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let task = sources::start(
            i,
            s,
            &config,
            tx.clone(),
            metrics.clone(),
            names.clone(),
            shutdown_rx.clone(),
        )
        .with_context(|| format!("starting source {:?}", names[i]))?;
        source_tasks.push(task);
    }
    drop(tx);

    let output = AlertOutput::open(
        &config.alerts.paths(),
        config.alerts.max_file_bytes,
        config.alerts.keep_files,
        Duration::from_secs(config.alerts.throttle_secs),
    )
    .context("opening alert outputs")?;
    let outbox = confirm::open_outbox(&config, &metrics).context("opening the sightings outbox")?;
    let correlation =
        confirm::Correlation::open(&config, outbox.clone()).context("loading rules")?;
    let mut infos = Vec::with_capacity(sources.len());
    for (name, s) in names.iter().zip(&sources) {
        let zone = match s {
            SourceConfig::Syslog(sy) => sy
                .timezone
                .parse::<crate::decode::Zone>()
                .with_context(|| format!("source {name:?}: timezone"))?,
            _ => crate::decode::Zone::utc(),
        };
        infos.push(SourceInfo {
            name: name.clone(),
            named: true,
            decode: crate::decode::DecodeOptions {
                zone,
                ..Default::default()
            },
        });
    }
    let pipeline = start_pipeline(
        rx,
        live.clone(),
        output,
        workers,
        infos,
        correlation,
        opts.stdin,
    );
    // Deliver due sightings every few seconds, off the async threads.
    let delivery = outbox.map(|outbox| {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                let o = outbox.clone();
                match tokio::task::spawn_blocking(move || o.deliver_due(Utc::now())).await {
                    Ok(Ok(r)) if r.delivered + r.failed + r.retrying > 0 => {
                        tracing::info!(
                            delivered = r.delivered,
                            failed = r.failed,
                            retrying = r.retrying,
                            "Sightings delivery pass."
                        );
                    }
                    Ok(Err(e)) => tracing::error!(error = %e, "Sightings delivery failed."),
                    _ => {}
                }
            }
        })
    });

    // Reload on SIGHUP and on changes to watched intel.
    let (reload_tx, mut reload_rx) = mpsc::channel::<&'static str>(4);
    let _watcher = if config.intel.watch {
        watch_intel(&config, reload_tx.clone())
    } else {
        None
    };
    let reload_task = {
        let live = live.clone();
        let config = config.clone();
        let debounce = Duration::from_millis(config.intel.reload_debounce_ms);
        tokio::spawn(async move {
            while let Some(why) = reload_rx.recv().await {
                tokio::time::sleep(debounce).await;
                while reload_rx.try_recv().is_ok() {}
                tracing::info!(trigger = why, "Reloading intel.");
                let _ = reload(&live, &config).await;
            }
        })
    };
    let signals = tokio::spawn(signal_loop(shutdown_tx.clone(), reload_tx.clone()));

    // Runs until every source has finished (stdin at end of input; the others at
    // shutdown) and the pipeline has drained.
    for t in source_tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "Source stopped."),
            Err(e) => tracing::error!(error = %e, "Source task failed."),
        }
    }
    let stats = tokio::task::spawn_blocking(move || pipeline.join())
        .await
        .context("pipeline")?;
    let _ = shutdown_tx.send(true);
    signals.abort();
    reload_task.abort();
    if let Some(d) = delivery {
        d.abort();
    }
    tracing::info!(
        lines = stats.lines,
        matched = stats.matched_lines,
        "Stopped."
    );
    Ok(ExitCode::SUCCESS)
}

async fn signal_loop(shutdown: watch::Sender<bool>, reload: mpsc::Sender<&'static str>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("Cannot install signal handlers.");
        return;
    };
    loop {
        tokio::select! {
            _ = int.recv() => { tracing::info!("SIGINT: shutting down."); let _ = shutdown.send(true); }
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down."); let _ = shutdown.send(true); }
            _ = hup.recv() => { let _ = reload.try_send("SIGHUP"); }
        }
    }
}

/// Watches intel paths and warninglists (notify); each change asks for a reload.
fn watch_intel(
    config: &Config,
    reload: mpsc::Sender<&'static str>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let mut watcher =
        match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                if !ev.kind.is_access() {
                    let _ = reload.try_send("intel changed");
                }
            }
        }) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot watch intel; reload with SIGHUP.");
                return None;
            }
        };
    let paths = config
        .intel
        .paths
        .iter()
        .filter_map(|p| p.parse::<IntelSpec>().ok().map(|s| s.path))
        .chain(config.intel.warninglists.iter().cloned());
    for p in paths {
        if let Err(e) = watcher.watch(&p, RecursiveMode::Recursive) {
            tracing::warn!(path = %p.display(), error = %e, "Cannot watch intel path.");
        }
    }
    Some(watcher)
}

/// Totals of a run.
#[derive(Debug, Default, Clone)]
pub struct PipelineStats {
    pub lines: u64,
    pub matched_lines: u64,
}

/// The matching and output threads.
pub struct Pipeline {
    dispatcher: std::thread::JoinHandle<()>,
    workers: Vec<std::thread::JoinHandle<()>>,
    output: std::thread::JoinHandle<PipelineStats>,
}

impl Pipeline {
    /// Waits until the queue is drained and everything is written.
    pub fn join(self) -> PipelineStats {
        let _ = self.dispatcher.join();
        for w in self.workers {
            let _ = w.join();
        }
        self.output.join().unwrap_or_default()
    }
}

struct Job {
    seq: u64,
    batch: Batch,
}

/// What a worker hands the output thread: the scanned batch, in arrival order.
struct Done {
    seq: u64,
    source: usize,
    scanned: Scanned,
    /// The origin of each line of the batch (the lines themselves are dropped).
    origins: Vec<Origin>,
    /// The index the batch was scanned with: emitted against the same one.
    index: Arc<Index>,
    ack: Option<Ack>,
}

/// The sidecar's [`AlertSink`]: metrics, the rules, the throttle, alert outputs.
struct LiveSink {
    output: AlertOutput,
    correlation: Option<confirm::Correlation>,
    metrics: Arc<Metrics>,
    names: Arc<Vec<String>>,
    stats: PipelineStats,
    now: Instant,
}

impl LiveSink {
    fn name(&self, source: usize) -> &str {
        self.names.get(source).map_or("?", |s| s.as_str())
    }
}

impl AlertSink for LiveSink {
    fn scanned(&mut self, source: usize, s: &Scanned) {
        let name = self.name(source).to_string();
        let m = &self.metrics;
        m.lines_received.with_label_values(&[&name]).inc_by(s.lines);
        m.bytes_received.with_label_values(&[&name]).inc_by(s.bytes);
        self.stats.lines += s.lines;
    }

    fn alert(&mut self, index: &Index, source: usize, e: Emitted) -> io::Result<()> {
        let name = self.name(source).to_string();
        let mut keys = Vec::with_capacity(e.matches.len());
        for (hit, metas) in &e.matches {
            let kind = hit.id.kind().name();
            for s in index.source_names(metas) {
                self.metrics.matches.with_label_values(&[kind, s]).inc();
            }
            keys.push(index.value(hit.id).to_string());
        }
        if let Some(c) = self.correlation.as_mut() {
            c.observe(e.observations, &mut self.output, &self.metrics);
        }
        self.stats.matched_lines += 1;
        self.metrics.matched_lines.with_label_values(&[&name]).inc();
        // Throttle per indicator and the host the line names (else its origin).
        let mut held_back = 0;
        let mut write = keys.is_empty();
        for ind in &keys {
            match self.output.admit(ind, &e.host, self.now) {
                Verdict::Write { held_back: n } => {
                    write = true;
                    held_back += n;
                }
                Verdict::Throttled => {}
            }
        }
        if !write {
            self.metrics.alerts_throttled.inc();
            return Ok(());
        }
        let mut alert = e.alert;
        if held_back > 0 {
            alert.tripline.throttled = Some(held_back);
        }
        let line = serde_json::to_vec(&alert).map_err(io::Error::from)?;
        if let Err(e) = self.output.write(&line) {
            tracing::error!(error = %e, "Cannot write alert.");
        } else {
            self.metrics.alerts_written.inc();
        }
        Ok(())
    }
}

/// Starts the dispatcher, `workers` matching threads and the output thread.
pub fn start_pipeline(
    mut rx: mpsc::Receiver<Batch>,
    live: Arc<Live>,
    output: AlertOutput,
    workers: usize,
    sources: Vec<SourceInfo>,
    correlation: Option<confirm::Correlation>,
    finite: bool,
) -> Pipeline {
    let names: Arc<Vec<String>> = Arc::new(sources.iter().map(|s| s.name.clone()).collect());
    let observe = correlation.is_some();
    let workers = workers.max(1);
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(workers * 2);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<Done>(workers * 4);
    let metrics = live.metrics.clone();
    let dispatcher = {
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("tripline-dispatch".into())
            .spawn(move || {
                let mut seq = 0;
                while let Some(batch) = rx.blocking_recv() {
                    metrics
                        .queue_depth
                        .set((rx.max_capacity() - rx.capacity()) as i64);
                    if job_tx.send(Job { seq, batch }).is_err() {
                        break;
                    }
                    seq += 1;
                }
                metrics.queue_depth.set(0);
            })
            .expect("spawn dispatcher thread")
    };
    let mut handles = Vec::new();
    for i in 0..workers {
        let rx = job_rx.clone();
        let tx = done_tx.clone();
        let live = live.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("tripline-match-{i}"))
                .spawn(move || {
                    for job in rx.iter() {
                        let done = scan_batch(&live, job);
                        if tx.send(done).is_err() {
                            return;
                        }
                    }
                })
                .expect("spawn match thread"),
        );
    }
    drop(done_tx);
    let output = std::thread::Builder::new()
        .name("tripline-output".into())
        .spawn(move || {
            let mut emitter = Emitter::new(sources, observe);
            let mut sink = LiveSink {
                output,
                correlation,
                metrics,
                names,
                stats: PipelineStats::default(),
                now: Instant::now(),
            };
            let mut next = 0u64;
            let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
            let mut last_tick = Instant::now();
            loop {
                match done_rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(done) => {
                        pending.insert(done.seq, done);
                        while let Some(d) = pending.remove(&next) {
                            next += 1;
                            emit_done(&mut emitter, &mut sink, d);
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
                if last_tick.elapsed() >= Duration::from_secs(1) {
                    last_tick = Instant::now();
                    if let Some(c) = sink.correlation.as_mut() {
                        c.tick(&mut sink.output, &sink.metrics);
                        let _ = sink.output.flush();
                    }
                }
            }
            if let Some(c) = sink.correlation.as_mut() {
                if finite {
                    c.finish(&mut sink.output, &sink.metrics);
                }
                c.close(&mut sink.output, &sink.metrics);
            }
            let _ = sink.output.flush();
            sink.stats
        })
        .expect("spawn output thread");
    Pipeline {
        dispatcher,
        workers: handles,
        output,
    }
}

/// Emits one scanned batch in order, flushes the outputs, then acknowledges it.
fn emit_done(emitter: &mut Emitter, sink: &mut LiveSink, d: Done) {
    let now = Utc::now();
    sink.now = Instant::now();
    let clock = Clock {
        read: now,
        reference: now,
    };
    let origins = d.origins;
    let fallback = Origin::Stdin { line: 0 };
    let origin_of = |idx: u64, _| {
        usize::try_from(idx)
            .ok()
            .and_then(|i| origins.get(i))
            .unwrap_or(&fallback)
            .clone()
    };
    if let Err(e) = emitter.emit(&d.index, d.source, d.scanned, origin_of, clock, sink) {
        tracing::error!(error = %e, "Cannot write alert.");
    }
    if let Err(e) = sink.output.flush() {
        tracing::error!(error = %e, "Cannot flush alerts.");
    }
    if let Some(ack) = d.ack {
        let _ = ack.send(());
    }
}

/// Scans one batch against the current index.
fn scan_batch(live: &Live, job: Job) -> Done {
    let index = live.index.load_full();
    let t0 = Instant::now();
    let scanned = Scanner::new(&index).lines(&job.batch.lines);
    live.metrics
        .match_duration
        .observe(t0.elapsed().as_secs_f64());
    Done {
        seq: job.seq,
        source: job.batch.source,
        scanned,
        origins: job.batch.lines.into_iter().map(|l| l.origin).collect(),
        index,
        ack: job.batch.ack,
    }
}

/// Reads stdin as one source until end of input.
pub async fn run_stdin_source(
    source: usize,
    tx: BatchSender,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let mut reader = tokio::io::BufReader::with_capacity(1 << 16, tokio::io::stdin());
    let mut n = 0u64;
    let mut batch: Vec<Line> = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = tokio::select! {
            r = reader.read_until(b'\n', &mut buf) => r?,
            _ = shutdown.changed() => 0,
        };
        if read > 0 {
            n += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            batch.push(Line {
                bytes: buf.clone(),
                origin: Origin::Stdin { line: n },
            });
        }
        // Hand on when the batch is full, at the end, or when no more input is buffered.
        if !batch.is_empty() && (read == 0 || batch.len() >= 256 || reader.buffer().is_empty()) {
            let lines = std::mem::take(&mut batch);
            if tx
                .send(Batch {
                    source,
                    lines,
                    ack: None,
                })
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        if read == 0 {
            return Ok(());
        }
    }
}

/// For `tripline run --check`: what would run.
pub fn describe(config: &Config) -> String {
    let mut s = String::new();
    s.push_str(&format!("intel: {:?}\n", config.intel.paths));
    for (i, src) in config.sources.iter().enumerate() {
        s.push_str(&format!("source {}: {:?}\n", src.name(i), src));
    }
    s.push_str(&format!("alerts: {:?}\n", config.alerts.paths()));
    if config.metrics.enabled {
        s.push_str(&format!(
            "metrics: http://{}/metrics\n",
            config.metrics.address
        ));
    }
    s.push_str(&format!("state: {}\n", config.state.dir.display()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_limit() {
        assert!(check_shrink(0, 0, 0.5).is_ok());
        assert!(check_shrink(100, 60, 0.5).is_ok());
        assert!(check_shrink(100, 40, 0.5)
            .unwrap_err()
            .contains("60% fewer"));
        assert!(check_shrink(100, 200, 0.0).is_ok());
    }
}
