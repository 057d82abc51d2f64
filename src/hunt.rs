//! `tripline hunt`: batch correlation of archived logs against the index — a driver
//! of the one scan and emit path ([`crate::scan`], [`crate::emit`]).
//!
//! Reader threads split the inputs into chunks of whole lines ([`source::batch`]),
//! inflating archives as they go: with `threads` = N there are N matching workers
//! and up to N readers, each taking the next input not yet taken, so that several
//! archives are inflated at once and inflating overlaps matching. With one thread the
//! caller's thread matches and one reader runs beside it (so `-j1` may use two
//! cores; pin the process for a one-core figure). Workers scan chunks in parallel,
//! each with its own [`Scanner`]; the caller's thread puts the results back in order
//! — by input, then by chunk within the input — and emits them (decode, time,
//! validity, alert, observations), so the output is the same whatever the thread
//! count. Lines are numbered per input; zoneless times are read in
//! [`HuntOptions::decode`]'s zone; year-less stamps take the year that puts them
//! before the input file's modification time.
//!
//! Every queue is bounded: at most `max(2 × threads, 4)` chunks wait to be matched
//! and `4 × threads` results wait to be collected. Results of inputs after the one
//! being written wait in the collector; past [`AHEAD_BYTES`] of them (their matched
//! lines: chunk buffers go back to the pool once scanned) the readers of later inputs
//! pause until the writer reaches them. The reader of the input being written never
//! waits there, so the hunt always progresses.
//!
//! Progress is counted in bytes read from the files ([`batch::ByteCounter`]):
//! compressed bytes for archives, against the files' total size.
//!
//! Every line is accounted for: matched, not matched, or counted as rejected
//! (oversized). A file that cannot be read is reported and the rest still searched.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::decode::DecodeOptions;
use crate::emit::{AlertSink, Clock, Emitted, Emitter, SourceInfo};
use crate::index::Index;
use crate::scan::{Scanned, Scanner};
use crate::share::suppress::{SuppressedAlerts, SuppressionList};
use crate::source::batch::{self, ByteCounter, ChunkReader, Input, Piece};
use crate::source::Origin;

pub use crate::sink::summary::HuntStats;

#[derive(Clone, Debug)]
pub struct HuntOptions {
    pub threads: usize,
    /// Lines longer than this are counted and skipped.
    pub max_line_bytes: usize,
    /// Count matching lines instead of writing alerts.
    pub count_only: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Keep an observation per enrichment for the rules (in [`HuntStats::observations`]).
    pub observe: bool,
    /// Target chunk size: the unit of parallel work.
    pub chunk_bytes: usize,
    /// Results of later inputs held while an earlier one is written, in bytes, before
    /// their readers pause (default [`AHEAD_BYTES`]).
    pub ahead_bytes: usize,
    /// How lines are decoded (the zone of zoneless times).
    pub decode: DecodeOptions,
    /// Reported false positives (`tripline feedback`): their alerts are marked or
    /// dropped as the sidecar does.
    pub suppressions: Option<(Arc<SuppressionList>, SuppressedAlerts)>,
    /// Record every line's observables into this retro store (`hunt --record`).
    pub record: Option<RecordOptions>,
}

/// `hunt --record`: where the observation store is and how long it keeps.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub dir: std::path::PathBuf,
    pub retention_days: u32,
    pub max_bytes: u64,
}

impl Default for HuntOptions {
    fn default() -> Self {
        HuntOptions {
            threads: 1,
            max_line_bytes: 1 << 20,
            count_only: false,
            progress: false,
            observe: false,
            chunk_bytes: batch::CHUNK_BYTES,
            ahead_bytes: AHEAD_BYTES,
            decode: DecodeOptions::default(),
            suppressions: None,
            record: None,
        }
    }
}

enum Outcome {
    Scanned(Scanned),
    Oversized {
        len: u64,
    },
    Error(String),
    /// The input starts (resets its line counter).
    Start,
    /// The input has no more pieces.
    End,
}

impl Outcome {
    /// About how many bytes this outcome holds while it waits to be written.
    fn held_bytes(&self) -> usize {
        const BASE: usize = 64;
        match self {
            Outcome::Scanned(s) => {
                BASE + s.matched.iter().map(|m| m.line.len() + 32).sum::<usize>()
                    + s.headers.iter().map(|(_, h)| h.len()).sum::<usize>()
                    + s.recorded.as_ref().map_or(0, |b| {
                        b.slices.iter().map(|s| s.1.len() * 64).sum::<usize>()
                            + b.text.len()
                            + b.v6.len() * 24
                    })
            }
            Outcome::Error(e) => BASE + e.len(),
            _ => BASE,
        }
    }
}

/// One piece of one input (`None`: the input has no more), numbered within its input.
struct Job {
    input: usize,
    idx: u64,
    piece: Option<Piece>,
}

struct Done {
    input: usize,
    idx: u64,
    outcome: Outcome,
}

/// Results of inputs after the one being written wait (in [`Collector::pending`])
/// up to about this many bytes; past it, their readers pause until the inputs
/// before them are written. Only the lines that matched are held (chunk buffers go
/// back to the pool once scanned), so an input with few matches can be read whole
/// ahead of its turn.
pub const AHEAD_BYTES: usize = 64 << 20;

/// Where the writer is, shared with the readers: a reader of an input after the
/// head waits while too much is held ([`HuntOptions::ahead_bytes`]); `stopped` releases all.
struct Gate {
    limit: usize,
    state: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct GateState {
    head: usize,
    held: usize,
    stopped: bool,
}

impl Gate {
    fn new(limit: usize) -> Gate {
        Gate {
            limit,
            state: Mutex::new(GateState {
                head: 0,
                held: 0,
                stopped: false,
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a piece of `input` may be sent; false when the hunt stopped.
    fn wait(&self, input: usize) -> bool {
        let mut g = self.lock();
        while !g.stopped && input > g.head && g.held > self.limit {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        !g.stopped
    }

    fn update(&self, head: usize, held: usize) {
        let mut g = self.lock();
        let new = GateState { head, held, ..*g };
        if new != *g {
            *g = new;
            self.cv.notify_all();
        }
    }

    fn stop(&self) {
        self.lock().stopped = true;
        self.cv.notify_all();
    }
}

/// The hunt's [`AlertSink`]: figures, observations, and alerts written to `out`.
struct HuntSink<W: Write> {
    out: W,
    count_only: bool,
    stats: HuntStats,
    progress: Option<indicatif::ProgressBar>,
    /// Bytes read from the inputs' files (compressed, for archives): the bar's
    /// position, against the files' total size.
    read: ByteCounter,
}

impl<W: Write> AlertSink for HuntSink<W> {
    fn scanned(&mut self, _source: usize, s: &Scanned) {
        self.stats.lines += s.lines;
        self.stats.bytes += s.bytes;
        self.stats.oversized_lines += s.oversized;
        if let Some(pb) = &self.progress {
            pb.set_position(self.read.load(Ordering::Relaxed));
            pb.set_message(format!("{} matching lines", self.stats.matched_lines));
        }
    }

    fn alert(&mut self, index: &Index, _source: usize, e: Emitted) -> io::Result<()> {
        let s = &mut self.stats;
        s.matched_lines += 1;
        for (hit, metas) in &e.matches {
            s.enrichments += 1;
            *s.by_indicator.entry(hit.id).or_default() += 1;
            *s.by_type
                .entry(hit.id.kind().name().to_string())
                .or_default() += 1;
            for n in index.source_names(metas) {
                *s.by_source.entry(n.to_string()).or_default() += 1;
            }
        }
        s.observations.extend(e.observations);
        if self.count_only {
            return Ok(());
        }
        serde_json::to_writer(&mut self.out, &e.alert)?;
        self.out.write_all(b"\n")
    }
}

/// Puts outcomes back in sequence order and emits them.
struct Collector<'a, W: Write> {
    index: &'a Index,
    inputs: &'a [Input],
    /// Display names of the inputs, shared by their lines' origins.
    names: Vec<Arc<str>>,
    /// Modification time of each input (now for stdin): the reference for years.
    mtimes: Vec<DateTime<Utc>>,
    now: DateTime<Utc>,
    emitter: Emitter,
    sink: HuntSink<W>,
    /// The next outcome to write: (input, piece number).
    next: (usize, u64),
    /// Outcomes that came before their turn, and about how many bytes they hold.
    pending: BTreeMap<(usize, u64), Outcome>,
    held: usize,
    /// Lines seen so far in each input.
    line_base: Vec<u64>,
    write_error: Option<io::Error>,
    /// The retro store being filled (`record`).
    writer: Option<crate::retro::Writer>,
}

impl<W: Write> Collector<'_, W> {
    fn accept(&mut self, input: usize, idx: u64, outcome: Outcome) {
        if (input, idx) != self.next {
            self.held += outcome.held_bytes();
            self.pending.insert((input, idx), outcome);
            return;
        }
        self.take(input, outcome);
        while let Some(outcome) = self.pending.remove(&self.next) {
            self.held -= outcome.held_bytes();
            self.take(self.next.0, outcome);
        }
    }

    /// Writes the outcome whose turn it is and moves to the next.
    fn take(&mut self, input: usize, outcome: Outcome) {
        if let Outcome::End = outcome {
            self.next = (input + 1, 0);
        } else {
            self.next.1 += 1;
            self.emit(input, outcome);
        }
    }

    fn emit(&mut self, input: usize, outcome: Outcome) {
        match outcome {
            Outcome::End => {}
            Outcome::Start => self.sink.stats.inputs += 1,
            Outcome::Error(e) => {
                let path = self
                    .inputs
                    .get(input)
                    .map(|i| i.display())
                    .unwrap_or_default();
                tracing::error!(path = %path, error = %e, "Cannot read input.");
                self.sink.stats.errors.push(format!("{path}: {e}"));
            }
            Outcome::Oversized { len } => {
                self.sink.stats.oversized_lines += 1;
                self.sink.stats.lines += 1;
                self.sink.stats.bytes += len;
                self.line_base[input] += 1;
            }
            Outcome::Scanned(mut scanned) => {
                if self.write_error.is_some() {
                    return;
                }
                if let (Some(w), Some(b)) = (&mut self.writer, scanned.recorded.take()) {
                    if let Err(e) = w.merge(b) {
                        self.write_error = Some(io::Error::other(e));
                        return;
                    }
                }
                let base = self.line_base[input];
                let lines = scanned.lines;
                let path = self.names[input].clone();
                let stdin = matches!(self.inputs.get(input), Some(Input::Stdin));
                let origin_of = |idx: u64, offset: u64| {
                    let line = base + idx + 1;
                    if stdin {
                        Origin::Stdin { line }
                    } else {
                        Origin::File {
                            path: path.clone(),
                            offset,
                            line: Some(line),
                            file_id: None,
                        }
                    }
                };
                let clock = Clock {
                    read: self.now,
                    reference: self.mtimes[input],
                };
                if let Err(e) =
                    self.emitter
                        .emit(self.index, input, scanned, origin_of, clock, &mut self.sink)
                {
                    self.write_error = Some(e);
                }
                self.line_base[input] += lines;
            }
        }
    }
}

/// Runs a hunt over `inputs`, writing alerts to `out`. Errors on the output stop the
/// run; errors on inputs are counted in the returned figures.
pub fn hunt<W: Write>(
    index: &Index,
    inputs: &[Input],
    opts: &HuntOptions,
    out: W,
) -> io::Result<HuntStats> {
    let t0 = Instant::now();
    let now = Utc::now();
    let progress = opts.progress.then(|| progress_bar(inputs));
    let read = ByteCounter::default();
    let sources = inputs
        .iter()
        .map(|i| SourceInfo {
            name: match i {
                Input::Stdin => "stdin".to_string(),
                Input::Path(_) => i.display(),
            },
            named: false,
            decode: opts.decode,
        })
        .collect();
    let mtimes = inputs
        .iter()
        .map(|i| match i {
            Input::Path(p) => std::fs::metadata(p)
                .and_then(|m| m.modified())
                .map_or(now, DateTime::<Utc>::from),
            Input::Stdin => now,
        })
        .collect();
    let mut c = Collector {
        index,
        inputs,
        names: inputs.iter().map(|i| Arc::from(i.display())).collect(),
        mtimes,
        now,
        emitter: match &opts.suppressions {
            Some((list, mode)) => {
                Emitter::new(sources, opts.observe).with_suppressions(Some(list.clone()), *mode)
            }
            None => Emitter::new(sources, opts.observe),
        },
        sink: HuntSink {
            out,
            count_only: opts.count_only,
            stats: HuntStats::default(),
            progress,
            read: read.clone(),
        },
        next: (0, 0),
        pending: BTreeMap::new(),
        held: 0,
        line_base: vec![0; inputs.len()],
        write_error: None,
        writer: match &opts.record {
            Some(r) => Some(
                crate::retro::Writer::new(&r.dir, Default::default()).map_err(io::Error::other)?,
            ),
            None => None,
        },
    };
    // The context of each input's batches, for the workers' recorders.
    let contexts: Option<Arc<[crate::retro::BatchContext]>> = opts.record.as_ref().map(|_| {
        inputs
            .iter()
            .enumerate()
            .map(|(i, input)| crate::retro::BatchContext {
                decode: opts.decode,
                // A thread's pieces of one file come in order; its decoder keeps what
                // it learnt of the file (a Zeek header) from one to the next.
                new_input: false,
                source: c.names[i].to_string(),
                default_host: match input {
                    Input::Stdin => "stdin".to_string(),
                    Input::Path(_) => c.names[i].to_string(),
                },
                reference: c.mtimes[i],
                // A line with no own time is recorded at its file's modification time
                // (when its last line was written), not at the time of this hunt.
                read: c.mtimes[i],
            })
            .collect()
    });
    let record_decode = opts.record.as_ref().map(|_| opts.decode);
    let threads = opts.threads.max(1);
    let (recycle_tx, recycle_rx) = batch::buffer_pool(threads * 4);
    let gate = Arc::new(Gate::new(opts.ahead_bytes));
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>((threads * 2).max(4));
    let shared: Arc<[Input]> = inputs.into();
    let next_input = Arc::new(AtomicUsize::new(0));
    // Readers run detached: one blocked on an idle stdin must not hold up the end of
    // a hunt that stopped (a closed output); each ends at its next send otherwise.
    for r in 0..threads.min(inputs.len()).max(1) {
        let reader = Reader {
            inputs: shared.clone(),
            next: next_input.clone(),
            chunk: opts.chunk_bytes,
            max_line: opts.max_line_bytes,
            recycled: recycle_rx.clone(),
            counter: read.clone(),
            gate: gate.clone(),
            tx: job_tx.clone(),
        };
        std::thread::Builder::new()
            .name(format!("tripline-read-{r}"))
            .spawn(move || reader.run())?;
    }
    drop(job_tx);
    if threads == 1 {
        // One matching thread, the caller's; the reader (inflating archives) runs
        // beside it.
        let mut scanner = Scanner::new(index);
        scanner.set_recording(record_decode);
        for job in job_rx.iter() {
            let outcome = match job.piece {
                Some(p) => {
                    begin(&mut scanner, contexts.as_deref(), job.input);
                    run_piece(&mut scanner, p, opts.max_line_bytes, &recycle_tx)
                }
                None => Outcome::End,
            };
            c.accept(job.input, job.idx, outcome);
            gate.update(c.next.0, c.held);
            if c.write_error.is_some() {
                break;
            }
        }
    } else {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tripline-match-{i}"))
            .build()
            .map_err(io::Error::other)?;
        let (done_tx, done_rx) = crossbeam_channel::bounded::<Done>(threads * 4);
        let max_line = opts.max_line_bytes;
        std::thread::scope(|s| {
            let workers_rx = job_rx.clone();
            let workers_tx = done_tx.clone();
            s.spawn(move || {
                pool.scope(|ps| {
                    for _ in 0..threads {
                        let rx = workers_rx.clone();
                        let tx = workers_tx.clone();
                        let recycle = recycle_tx.clone();
                        let contexts = contexts.clone();
                        ps.spawn(move |_| {
                            let mut scanner = Scanner::new(index);
                            scanner.set_recording(record_decode);
                            for job in rx.iter() {
                                let outcome = match job.piece {
                                    Some(p) => {
                                        begin(&mut scanner, contexts.as_deref(), job.input);
                                        run_piece(&mut scanner, p, max_line, &recycle)
                                    }
                                    None => Outcome::End,
                                };
                                let done = Done {
                                    input: job.input,
                                    idx: job.idx,
                                    outcome,
                                };
                                if tx.send(done).is_err() {
                                    return;
                                }
                            }
                        });
                    }
                });
            });
            drop(done_tx);
            for d in done_rx.iter() {
                c.accept(d.input, d.idx, d.outcome);
                gate.update(c.next.0, c.held);
                if c.write_error.is_some() {
                    break;
                }
            }
            // Stopping the gate and dropping the receivers stops the workers and
            // the readers.
            gate.stop();
            drop(job_rx);
            drop(done_rx);
        });
    }
    gate.stop();
    c.sink.stats.read_bytes = read.load(Ordering::Relaxed);
    if let Some(pb) = &c.sink.progress {
        pb.finish_and_clear();
    }
    if let Some(e) = c.write_error.take() {
        return Err(e);
    }
    if let (Some(mut w), Some(r)) = (c.writer.take(), &opts.record) {
        let newest = w.newest_slice();
        w.seal().map_err(io::Error::other)?;
        // One segment per day (several when the writer sealed on its size bound, or
        // when the store already held the day).
        crate::retro::Store::compact(&r.dir, 1).map_err(io::Error::other)?;
        let dropped = match newest {
            Some(n) => {
                crate::retro::Store::enforce_retention(&r.dir, n, r.retention_days, r.max_bytes)
                    .map_err(io::Error::other)?
            }
            None => Default::default(),
        };
        tracing::info!(
            observations = w.observations,
            segments = w.sealed,
            bytes = w.sealed_bytes,
            days_dropped_for_age = dropped.age,
            days_dropped_for_size = dropped.size,
            "Observation store filled."
        );
    }
    c.sink.out.flush()?;
    c.sink.stats.secs = t0.elapsed().as_secs_f64();
    Ok(c.sink.stats)
}

/// A reader thread: takes the next input not yet taken (in input order), reads it
/// (inflating archives) and sends its pieces, numbered, then its end. Several
/// readers read several inputs at once; the writer puts them back in order.
struct Reader {
    inputs: Arc<[Input]>,
    next: Arc<AtomicUsize>,
    chunk: usize,
    max_line: usize,
    recycled: crossbeam_channel::Receiver<Vec<u8>>,
    counter: ByteCounter,
    gate: Arc<Gate>,
    tx: crossbeam_channel::Sender<Job>,
}

impl Reader {
    fn run(self) {
        loop {
            let input = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(source) = self.inputs.get(input) else {
                return;
            };
            let mut idx = 0;
            let all = pieces(
                source,
                self.chunk,
                self.max_line,
                self.recycled.clone(),
                self.counter.clone(),
            );
            for piece in all {
                if !self.gate.wait(input) {
                    return;
                }
                let job = Job {
                    input,
                    idx,
                    piece: Some(piece),
                };
                if self.tx.send(job).is_err() {
                    return;
                }
                idx += 1;
            }
            let end = Job {
                input,
                idx,
                piece: None,
            };
            if self.tx.send(end).is_err() {
                return;
            }
        }
    }
}

/// The pieces of one input, led by a start marker; an input that cannot be opened
/// yields its error.
fn pieces(
    input: &Input,
    chunk: usize,
    max_line: usize,
    recycled: crossbeam_channel::Receiver<Vec<u8>>,
    counter: ByteCounter,
) -> Box<dyn Iterator<Item = Piece> + Send> {
    match ChunkReader::open(input, chunk, max_line, Some(recycled), Some(counter)) {
        Ok(r) => Box::new(
            std::iter::once(Piece::Lines {
                offset: 0,
                data: Vec::new(),
            })
            .chain(r),
        ),
        Err(e) => Box::new(std::iter::once(Piece::Error(format!("cannot open: {e}")))),
    }
}

/// Tells a recording scanner where the next piece comes from.
fn begin(scanner: &mut Scanner<'_>, contexts: Option<&[crate::retro::BatchContext]>, input: usize) {
    if let Some(ctx) = contexts.and_then(|c| c.get(input)) {
        scanner.begin_batch(ctx.clone());
    }
}

fn run_piece(
    scanner: &mut Scanner<'_>,
    piece: Piece,
    max_line: usize,
    recycle: &crossbeam_channel::Sender<Vec<u8>>,
) -> Outcome {
    match piece {
        Piece::Lines { data, .. } if data.is_empty() => Outcome::Start,
        Piece::Lines { offset, data } => {
            let outcome = Outcome::Scanned(scanner.chunk(&data, offset, max_line));
            let _ = recycle.try_send(data);
            outcome
        }
        Piece::Oversized { len, .. } => Outcome::Oversized { len },
        Piece::Error(e) => Outcome::Error(e),
    }
}

fn progress_bar(inputs: &[Input]) -> indicatif::ProgressBar {
    let total: u64 = inputs
        .iter()
        .filter_map(|i| match i {
            Input::Path(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Input::Stdin => None,
        })
        .sum();
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bytes}/{total_bytes} ({binary_bytes_per_sec}) {msg}",
    );
    if let Ok(style) = style {
        pb.set_style(style);
    }
    pb
}
