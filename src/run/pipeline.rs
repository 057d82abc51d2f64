//! The sidecar's pipeline: the threads behind the bounded source queue.
//!
//! ```text
//! sources (tokio tasks) ──Batch──► bounded queue ──► dispatcher ──► scan workers (threads)
//!                                                                     │ (seq, scanned)
//!           acks ◄── output thread (in order: emit, throttle, write, flush) ◄┘
//! ```
//!
//! Workers run [`Scanner`] on each batch with the index current at that moment; the
//! output thread puts batches back in arrival order and runs the one [`Emitter`]
//! (decode, event time, validity, alert, observations) into a [`LiveSink`], which
//! feeds the rules, throttles and counts, and gathers the batch's alert lines.
//!
//! A batch is acknowledged (file checkpoints move) only after all its alerts were
//! written and flushed to every output ([`AlertOutput::commit`]) and the rules'
//! observations of it are in their journal ([`confirm::Correlation::sync`]). When they cannot be
//! (a full disk), the output thread holds the batch and retries with backoff: it stops
//! taking batches, the bounded queues fill and the sources stop reading — nothing is
//! read that cannot be alerted — and it resumes where it stopped when the output
//! recovers. One log line per change of state, a counter per failure. A closed stdout
//! (`| head`) or a shutdown while stalled ends the pipeline without acknowledging the
//! batch, so a restart reads it again; [`PipelineStats::fatal`] says why. Every queue
//! is bounded (`2 × workers` jobs, `4 × workers` results).
//!
//! With `[retro] enabled` (the default), workers also record every line's observables
//! ([`crate::retro`]) and hold them, one batch per source that each of their batches
//! adds to (no map and no merge per batch); the output thread takes what every worker
//! holds and merges it into the store's writer when it seals the open slices, every
//! [`RETRO_SEAL_EVERY`], on a live retro run's request and at the end, then applies
//! retention. A worker hands its batches over early past [`RETRO_HELD_ENTRIES`]. A
//! crash loses what was recorded since the last seal (the lines themselves are
//! acknowledged as before: recording never holds the input).
//!
//! Live retro matching ([`super::intel::retro_after_reload`]) talks to the output
//! thread through [`RetroControl`]: it asks for a seal once every batch scanned with
//! the old index is recorded (`Seal { upto }`: the number of batches dispatched when
//! the new index was swapped in; later ones were scanned with the new index, so live
//! matching covers them), and hands over the alerts and observations it found
//! (`Deliver`), which are written with the next commit and correlated as retro
//! observations ([`confirm::Correlation::observe_retro`]).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::mpsc;

use super::confirm;
use super::intel::Live;
use crate::emit::{AlertSink, Clock, Emitted, Emitter, SourceInfo};
use crate::index::Index;
use crate::scan::{Scanned, Scanner};
use crate::sink::health::Health;
use crate::sink::metrics::Metrics;
use crate::sink::output::{AlertOutput, CommitError, Pending, Verdict};
use crate::source::{Ack, Batch, Origin};

/// Totals of a run.
#[derive(Debug, Default, Clone)]
pub struct PipelineStats {
    pub lines: u64,
    pub matched_lines: u64,
    pub alerts_written: u64,
    /// Why the pipeline stopped before its input ended (alerts could not be
    /// written); the unwritten batch was not acknowledged.
    pub fatal: Option<String>,
}

/// How often the observation store's open slices are sealed.
pub const RETRO_SEAL_EVERY: Duration = Duration::from_secs(60);

/// A day is compacted into one segment once it holds more than this many.
pub const RETRO_COMPACT_AT: usize = 8;

/// `[retro]` as the pipeline uses it.
#[derive(Clone, Debug)]
pub struct RetroParts {
    pub dir: std::path::PathBuf,
    pub retention_days: u32,
    pub max_bytes: u64,
    /// Requests of live retro runs to the output thread.
    pub control: Option<crossbeam_channel::Receiver<RetroControl>>,
    /// Set when the output thread stops (see [`super::intel::RetroLive::output_gone`]).
    pub output_gone: Arc<AtomicBool>,
}

/// What a live retro run asks of the output thread.
#[derive(Debug)]
pub enum RetroControl {
    /// Seal the open slices once every batch numbered below `upto` has been
    /// recorded, then answer on `done`.
    Seal {
        upto: u64,
        done: std::sync::mpsc::Sender<()>,
    },
    /// Retro alerts (JSON lines) to write, and their observations for the rules.
    Deliver {
        lines: Vec<Vec<u8>>,
        observations: Vec<crate::correlate::Observation>,
        /// Answered once the alerts are committed to the outputs.
        done: Option<std::sync::mpsc::Sender<()>>,
    },
}

/// What one worker recorded since the last seal, one batch per source, kept across
/// its batches (locked while it scans one); the output thread takes it when it
/// seals. Past [`RETRO_HELD_ENTRIES`] entries together, they go to the writer at once,
/// with the scanned batch.
type Held = Arc<std::sync::Mutex<Vec<crate::retro::Batch>>>;

/// A worker hands its held batches to the writer past this many entries (about 48
/// bytes each in memory).
pub const RETRO_HELD_ENTRIES: usize = 1 << 18;

fn lock_held(h: &Held) -> std::sync::MutexGuard<'_, Vec<crate::retro::Batch>> {
    // A worker that panicked left whole batches (each is moved in or out whole).
    h.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The output thread's observation store writer.
struct RetroState {
    writer: crate::retro::Writer,
    parts: RetroParts,
    last_seal: Instant,
    /// The workers' held batches.
    held: Vec<Held>,
}

impl RetroState {
    fn open(parts: RetroParts) -> Option<RetroState> {
        match crate::retro::Writer::new(&parts.dir, Default::default()) {
            Ok(writer) => Some(RetroState {
                writer,
                parts,
                last_seal: Instant::now(),
                held: Vec::new(),
            }),
            Err(e) => {
                tracing::error!(error = %e, "Cannot open the observation store; not recording.");
                None
            }
        }
    }

    /// Seals the open slices, applies retention (counted back from today) and
    /// updates the store's gauges.
    fn seal(&mut self, metrics: &Metrics) {
        self.last_seal = Instant::now();
        // What the workers hold: every batch they finished scanning (a worker in the
        // middle of one is waited for).
        for h in &self.held {
            let batches = std::mem::take(&mut *lock_held(h));
            for b in batches {
                if let Err(e) = self.writer.merge(b) {
                    tracing::error!(error = %e, "Cannot record into the observation store.");
                }
            }
        }
        if let Err(e) = self.writer.seal() {
            tracing::error!(error = %e, "Cannot seal the observation store.");
            return;
        }
        // Age counts back from today (a line stamped in the future does not push
        // today's days out).
        let today = Utc::now().timestamp();
        let p = &self.parts;
        // A day's segments (one per seal) are merged past a few, so a probe looks at
        // a handful per day.
        if let Err(e) = crate::retro::Store::compact(&p.dir, RETRO_COMPACT_AT) {
            tracing::error!(error = %e, "Cannot compact the observation store.");
        }
        match crate::retro::Store::enforce_retention(&p.dir, today, p.retention_days, p.max_bytes) {
            Ok(d) => {
                metrics
                    .retro_slices_dropped
                    .with_label_values(&["age"])
                    .inc_by(d.age);
                metrics
                    .retro_slices_dropped
                    .with_label_values(&["size"])
                    .inc_by(d.size);
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot apply the observation store's retention.")
            }
        }
        match crate::retro::store::disk_usage(&p.dir) {
            Ok((slices, bytes)) => {
                metrics.retro_slices.set(slices as i64);
                metrics.retro_store_bytes.set(bytes as i64);
            }
            Err(e) => tracing::warn!(error = %e, "Cannot size the observation store."),
        }
    }
}

/// Longest wait between two tries at writing alerts.
const RETRY_MAX: Duration = Duration::from_secs(5);

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
    /// Observables the batch recorded (per line, distinct tokens).
    observations: u64,
    /// The worker's held batches, handed to the writer when they grew past
    /// [`RETRO_HELD_ENTRIES`] together.
    handed: Vec<crate::retro::Batch>,
}

/// The sidecar's [`AlertSink`]: metrics, the rules, the throttle, alert outputs.
struct LiveSink {
    output: AlertOutput,
    /// The alert lines of the batch being emitted (and confirmations).
    lines: Vec<Vec<u8>>,
    /// Set at shutdown: stop retrying a stalled write.
    stop: Arc<AtomicBool>,
    health: Arc<Health>,
    /// Whether the last commit failed (logs and health change on transitions only).
    failing: bool,
    /// How many of `lines` are line alerts (the rest are confirmations).
    line_alerts: u64,
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
            c.observe(e.observations, &mut self.lines, &self.metrics);
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
        self.lines.push(line);
        self.line_alerts += 1;
        Ok(())
    }
}

impl LiveSink {
    /// Writes the gathered lines to every output, retrying with backoff until they are
    /// written; `Err` when the output is gone or a shutdown came while stalled.
    fn commit(&mut self) -> Result<(), String> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let mut batch = Pending::new(std::mem::take(&mut self.lines));
        let n = std::mem::take(&mut self.line_alerts);
        let mut wait = Duration::from_millis(50);
        loop {
            match self.output.commit(&mut batch) {
                Ok(()) => {
                    self.metrics.alerts_written.inc_by(n);
                    self.stats.alerts_written += n;
                    if self.failing {
                        self.failing = false;
                        self.metrics.alerts_writable.set(1);
                        self.health.set("alerts", None);
                        tracing::info!("Alerts can be written again; reading resumes.");
                    }
                    return Ok(());
                }
                Err(e @ CommitError::Closed { .. }) => {
                    self.metrics.alert_write_failures.inc();
                    self.metrics.alerts_writable.set(0);
                    self.health.set("alerts", Some(e.to_string()));
                    return Err(e.to_string());
                }
                Err(e) => {
                    self.metrics.alert_write_failures.inc();
                    if !self.failing {
                        self.failing = true;
                        self.metrics.alerts_writable.set(0);
                        self.health.set("alerts", Some(e.to_string()));
                        tracing::error!(error = %e, "Cannot write alerts; holding the input until they can be written.");
                    }
                    if self.stop.load(Ordering::Acquire) {
                        return Err(format!("{e} (stopped while retrying)"));
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

/// What the output side of the pipeline is given.
pub struct OutputParts {
    pub output: AlertOutput,
    /// One per configured source, by index.
    pub sources: Vec<SourceInfo>,
    pub correlation: Option<confirm::Correlation>,
    /// The input ends (stdin): open windows close at its end, as in a hunt.
    pub finite: bool,
    /// Set at shutdown: a write stalled on a failing output stops retrying.
    pub stop: Arc<AtomicBool>,
    /// Where a write failure shows (`alerts`).
    pub health: Arc<Health>,
    /// Called once when alerts can no longer be written at all (stdout closed, or a
    /// shutdown while stalled): stops the sources.
    pub on_fatal: Box<dyn FnOnce() + Send>,
    /// Reported false positives: their alerts are marked or dropped.
    pub suppressions: Option<Arc<crate::share::SuppressionList>>,
    pub suppressed_alerts: crate::share::SuppressedAlerts,
    /// Record every line into the observation store (`[retro] enabled`).
    pub retro: Option<RetroParts>,
}

/// Starts the dispatcher, `workers` matching threads and the output thread.
pub fn start(
    mut rx: mpsc::Receiver<Batch>,
    live: Arc<Live>,
    workers: usize,
    parts: OutputParts,
) -> Pipeline {
    let OutputParts {
        output,
        sources,
        correlation,
        finite,
        stop,
        health,
        on_fatal,
        suppressions,
        suppressed_alerts,
        retro,
    } = parts;
    let output_gone = retro.as_ref().map(|r| r.output_gone.clone());
    let control = retro.as_ref().and_then(|r| r.control.clone());
    // The workers' recorders read times as each source's decoder does.
    let record: Option<Arc<Vec<SourceInfo>>> = retro.as_ref().map(|_| Arc::new(sources.clone()));
    let names: Arc<Vec<String>> = Arc::new(sources.iter().map(|s| s.name.clone()).collect());
    let observe = correlation.is_some();
    let workers = workers.max(1);
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(workers * 2);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<Done>(workers * 4);
    let metrics = live.metrics.clone();
    let dispatcher = {
        let metrics = metrics.clone();
        let live = live.clone();
        std::thread::Builder::new()
            .name("tripline-dispatch".into())
            .spawn(move || {
                let mut seq = 0;
                while let Some(batch) = rx.blocking_recv() {
                    metrics
                        .queue_depth
                        .set((rx.max_capacity() - rx.capacity()) as i64);
                    // Counted before it can be scanned: a retro run reads this
                    // after swapping the index in (see [`RetroControl::Seal`]).
                    live.dispatched.store(seq + 1, Ordering::SeqCst);
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
    let held_all: Vec<Held> = (0..workers).map(|_| Held::default()).collect();
    for (i, held) in held_all.iter().cloned().enumerate() {
        let rx = job_rx.clone();
        let tx = done_tx.clone();
        let live = live.clone();
        let record = record.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("tripline-match-{i}"))
                .spawn(move || {
                    let mut recording = None;
                    for job in rx.iter() {
                        let infos = record.as_deref().map(Vec::as_slice);
                        let mut held = lock_held(&held);
                        let done = scan_batch(&live, job, infos, &mut recording, &mut held);
                        drop(held);
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
            let mut emitter =
                Emitter::new(sources, observe).with_suppressions(suppressions, suppressed_alerts);
            let mut sink = LiveSink {
                output,
                lines: Vec::new(),
                stop,
                health,
                failing: false,
                line_alerts: 0,
                correlation,
                metrics,
                names,
                stats: PipelineStats::default(),
                now: Instant::now(),
            };
            sink.metrics.alerts_writable.set(1);
            let mut retro = retro.and_then(RetroState::open);
            if let Some(r) = retro.as_mut() {
                r.held = held_all;
            }
            let mut next = 0u64;
            let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
            let mut seals: Vec<(u64, std::sync::mpsc::Sender<()>)> = Vec::new();
            let mut last_tick = Instant::now();
            let never = crossbeam_channel::never();
            let mut control = control;
            'run: loop {
                let ctl = control.as_ref().unwrap_or(&never);
                crossbeam_channel::select! {
                    recv(done_rx) -> got => match got {
                        Ok(done) => {
                            pending.insert(done.seq, done);
                            while let Some(d) = pending.remove(&next) {
                                next += 1;
                                if let Err(e) = emit_done(&mut emitter, &mut sink, &mut retro, d) {
                                    sink.stats.fatal = Some(e);
                                    break 'run;
                                }
                            }
                        }
                        Err(_) => break,
                    },
                    recv(ctl) -> got => match got {
                        Ok(RetroControl::Seal { upto, done }) => seals.push((upto, done)),
                        Ok(RetroControl::Deliver { lines, observations, done }) => {
                            sink.line_alerts += lines.len() as u64;
                            sink.lines.extend(lines);
                            if let Some(c) = sink.correlation.as_mut() {
                                c.observe_retro(observations, &mut sink.lines, &sink.metrics);
                            }
                            if let Err(e) = sink.commit() {
                                sink.stats.fatal = Some(e);
                                break 'run;
                            }
                            if let Some(done) = done {
                                let _ = done.send(());
                            }
                        }
                        // Every retro run is over (shutdown): stop listening.
                        Err(_) => control = None,
                    },
                    default(Duration::from_secs(1)) => {}
                }
                if seals.iter().any(|(upto, _)| *upto <= next) {
                    if let Some(r) = retro.as_mut() {
                        r.seal(&sink.metrics);
                    }
                    seals.retain(|(upto, done)| {
                        if *upto <= next {
                            let _ = done.send(());
                            false
                        } else {
                            true
                        }
                    });
                }
                if last_tick.elapsed() >= Duration::from_secs(1) {
                    last_tick = Instant::now();
                    if let Some(c) = sink.correlation.as_mut() {
                        c.tick(&mut sink.lines, &sink.metrics);
                    }
                    if let Err(e) = sink.commit() {
                        sink.stats.fatal = Some(e);
                        break;
                    }
                    if let Some(r) = retro.as_mut() {
                        if r.last_seal.elapsed() >= RETRO_SEAL_EVERY {
                            r.seal(&sink.metrics);
                        }
                    }
                }
            }
            if let Some(r) = retro.as_mut() {
                r.seal(&sink.metrics);
            }
            // Requests still queued are not taken: their runs stop waiting.
            if let Some(g) = &output_gone {
                g.store(true, Ordering::Release);
            }
            if let Some(c) = sink.correlation.as_mut() {
                if finite && sink.stats.fatal.is_none() {
                    c.finish(&mut sink.lines, &sink.metrics);
                }
                c.close(&mut sink.lines, &sink.metrics);
            }
            if sink.stats.fatal.is_none() {
                if let Err(e) = sink.commit() {
                    sink.stats.fatal = Some(e);
                }
            }
            if sink.stats.fatal.is_some() {
                // Nothing more can be alerted: stop the sources (they keep what was
                // not acknowledged for the next start).
                on_fatal();
            }
            sink.stats
        })
        .expect("spawn output thread");
    Pipeline {
        dispatcher,
        workers: handles,
        output,
    }
}

/// Emits one scanned batch in order, writes and flushes its alerts, then acknowledges
/// it. An error leaves it unacknowledged.
fn emit_done(
    emitter: &mut Emitter,
    sink: &mut LiveSink,
    retro: &mut Option<RetroState>,
    mut d: Done,
) -> Result<(), String> {
    sink.metrics.retro_observations.inc_by(d.observations);
    if let Some(r) = retro.as_mut() {
        for b in std::mem::take(&mut d.handed) {
            if let Err(e) = r.writer.merge(b) {
                tracing::error!(error = %e, "Cannot record into the observation store.");
            }
        }
    }
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
        tracing::error!(error = %e, "Cannot render an alert.");
    }
    sink.commit()?;
    // The batch's observations are durable before it is acknowledged (its file
    // checkpoint may move only then).
    if let Some(c) = sink.correlation.as_mut() {
        c.sync()?;
    }
    if let Some(ack) = d.ack {
        let _ = ack.send(());
    }
    Ok(())
}

/// Scans one batch against the current index.
fn scan_batch(
    live: &Live,
    job: Job,
    record: Option<&[SourceInfo]>,
    recording: &mut Option<crate::retro::Recording>,
    held: &mut Vec<crate::retro::Batch>,
) -> Done {
    let index = live.index.load_full();
    let t0 = Instant::now();
    let mut scanner = Scanner::new(&index);
    let mut before = 0;
    if let Some(infos) = record {
        let info = infos.get(job.batch.source);
        let decode = info.map_or_else(Default::default, |i| i.decode);
        // The worker's state from its last batch: host-name cache, stamp caches.
        scanner.resume_recording(
            recording
                .take()
                .unwrap_or_else(|| crate::retro::Recording::new(decode)),
        );
        let now = Utc::now();
        // Year-less stamps are placed before the reference; whole seconds, so that
        // the batches of one second share the decoder's stamp caches.
        let reference = chrono::DurationRound::duration_trunc(now, chrono::TimeDelta::seconds(1))
            .unwrap_or(now);
        let name = info.map_or("", |i| i.name.as_str());
        let prev = held
            .iter()
            .position(|b| b.source == name)
            .map(|i| held.swap_remove(i));
        before = prev.as_ref().map_or(0, |b| b.observations);
        scanner.begin_held_batch(
            crate::retro::BatchContext {
                decode,
                new_input: true,
                source: name.to_string(),
                // A batch comes from one source; its first line's origin names the host
                // of lines that name none (a syslog batch mixing peers credits the first).
                default_host: job
                    .batch
                    .lines
                    .first()
                    .map_or_else(String::new, |l| crate::emit::default_host(&l.origin)),
                reference,
                read: now,
            },
            prev,
        );
    }
    let mut scanned = scanner.lines(&job.batch.lines);
    let mut observations = 0;
    let mut handed = Vec::new();
    if record.is_some() {
        *recording = scanner.pause_recording();
        if let Some(b) = scanned.recorded.take() {
            observations = b.observations - before;
            held.push(b);
            // Bounded memory whatever the number of sources: past the cap, all of
            // it goes to the writer (which seals past its own).
            let entries: usize = held
                .iter()
                .flat_map(|b| b.slices.iter())
                .map(|s| s.1.len())
                .sum();
            if entries >= RETRO_HELD_ENTRIES {
                handed = std::mem::take(held);
            }
        }
    }
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
        observations,
        handed,
    }
}
