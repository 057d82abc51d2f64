//! `tripline hunt`: batch correlation of archived logs against the index.
//!
//! A reader thread splits the inputs into chunks of whole lines ([`source::batch`]);
//! rayon workers match chunks in parallel, each with its own [`Matcher`]; the caller's
//! thread puts the results back in input order and writes alerts, so the output is
//! the same whatever the thread count. Every queue is bounded: at most `2 × threads`
//! chunks wait to be matched and `4 × threads` results wait to be written. With one
//! thread everything runs on the caller's thread, for honest single-core figures.
//!
//! Every line is accounted for: matched, not matched, or counted as rejected
//! (oversized). A file that cannot be read is reported and the rest still searched.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::decode::time::event_time;
use crate::index::Index;
use crate::intel::IndicatorId;
use crate::matcher::{Hit, Matcher};
use crate::sink::alert::{self, LinePlace};
use crate::source::batch::{self, ChunkReader, Input, Piece};

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
        }
    }
}

/// What a hunt saw.
#[derive(Clone, Debug, Default)]
pub struct HuntStats {
    pub inputs: u64,
    pub lines: u64,
    pub bytes: u64,
    pub oversized_lines: u64,
    pub matched_lines: u64,
    pub enrichments: u64,
    pub by_type: BTreeMap<String, u64>,
    pub by_source: BTreeMap<String, u64>,
    pub by_indicator: HashMap<IndicatorId, u64>,
    /// Inputs that could not be read (whole or in part), with the reason.
    pub errors: Vec<String>,
    /// With [`HuntOptions::observe`]: what the rules see, in input order.
    pub observations: Vec<crate::correlate::Observation>,
    pub secs: f64,
}

/// One matched line, relative to its chunk.
struct LineMatch {
    /// 0-based line index within the chunk.
    line_idx: u64,
    offset: u64,
    line: Vec<u8>,
    hits: Vec<(Hit, Vec<u32>)>,
    time: DateTime<Utc>,
}

enum Outcome {
    Lines {
        lines: u64,
        bytes: u64,
        oversized: u64,
        matches: Vec<LineMatch>,
        /// Zeek header lines (`#…`), with their index, for the input's decoder.
        headers: Vec<(u64, Vec<u8>)>,
    },
    Oversized {
        len: u64,
    },
    Error(String),
    /// The input starts (resets its line counter).
    Start,
}

struct Job {
    seq: u64,
    input: usize,
    piece: Option<Piece>,
}

struct Done {
    seq: u64,
    input: usize,
    outcome: Outcome,
}

/// Matches every line of one chunk.
fn match_chunk(
    matcher: &mut Matcher<'_>,
    data: &[u8],
    offset: u64,
    max_line: usize,
    now: DateTime<Utc>,
) -> Outcome {
    let index = matcher.index();
    let mut matches = Vec::new();
    let mut hits = Vec::new();
    let mut lines = 0u64;
    let mut oversized = 0u64;
    let mut headers = Vec::new();
    let mut start = 0usize;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |p| start + p);
        let mut line = &data[start..end];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.first() == Some(&b'#') && line.len() <= 64 * 1024 {
            headers.push((lines, line.to_vec()));
        }
        if line.len() > max_line {
            oversized += 1;
        } else {
            hits.clear();
            matcher.find_with_json(line, &mut hits);
            if !hits.is_empty() {
                let own_time = event_time(line, now);
                let time = own_time.unwrap_or(now);
                let mut kept = Vec::with_capacity(hits.len());
                for hit in hits.drain(..) {
                    let metas = index.metas_valid_at(hit.id, time.timestamp());
                    if !metas.is_empty() {
                        kept.push((hit, metas));
                    }
                }
                if !kept.is_empty() {
                    matches.push(LineMatch {
                        line_idx: lines,
                        offset: offset + start as u64,
                        line: line[..line.len().min(alert::MESSAGE_MAX_BYTES + 4)].to_vec(),
                        hits: kept,
                        time,
                    });
                }
            }
        }
        lines += 1;
        start = end + 1;
    }
    Outcome::Lines {
        lines,
        bytes: data.len() as u64,
        oversized,
        matches,
        headers,
    }
}

/// Writes outcomes in sequence order and keeps the figures.
struct Collector<'a, W: Write> {
    index: &'a Index,
    inputs: &'a [Input],
    out: W,
    count_only: bool,
    observe: bool,
    next: u64,
    pending: BTreeMap<u64, (usize, Outcome)>,
    /// Lines seen so far in each input.
    line_base: Vec<u64>,
    /// One decoder per input (it learns Zeek headers).
    decoders: Vec<crate::decode::Decoder>,
    stats: HuntStats,
    progress: Option<indicatif::ProgressBar>,
    write_error: Option<io::Error>,
}

impl<'a, W: Write> Collector<'a, W> {
    fn accept(&mut self, seq: u64, input: usize, outcome: Outcome) {
        self.pending.insert(seq, (input, outcome));
        while let Some((input, outcome)) = self.pending.remove(&self.next) {
            self.next += 1;
            self.emit(input, outcome);
        }
    }

    fn emit(&mut self, input: usize, outcome: Outcome) {
        match outcome {
            Outcome::Start => self.stats.inputs += 1,
            Outcome::Error(e) => {
                let path = self
                    .inputs
                    .get(input)
                    .map(|i| i.display())
                    .unwrap_or_default();
                tracing::error!(path = %path, error = %e, "Cannot read input.");
                self.stats.errors.push(format!("{path}: {e}"));
            }
            Outcome::Oversized { len } => {
                self.stats.oversized_lines += 1;
                self.stats.lines += 1;
                self.stats.bytes += len;
                self.line_base[input] += 1;
            }
            Outcome::Lines {
                lines,
                bytes,
                oversized,
                matches,
                headers,
            } => {
                let path = self
                    .inputs
                    .get(input)
                    .map(|i| i.display())
                    .unwrap_or_default();
                let mut headers = headers.into_iter().peekable();
                for m in matches {
                    while let Some((_, h)) = headers.next_if(|(i, _)| *i < m.line_idx) {
                        self.decoders[input].observe(&h);
                    }
                    self.write_match(input, &path, self.line_base[input], m);
                }
                for (_, h) in headers {
                    self.decoders[input].observe(&h);
                }
                self.line_base[input] += lines;
                self.stats.lines += lines;
                self.stats.bytes += bytes;
                self.stats.oversized_lines += oversized;
                if let Some(pb) = &self.progress {
                    pb.inc(bytes);
                    pb.set_message(format!("{} matching lines", self.stats.matched_lines));
                }
            }
        }
    }

    fn write_match(&mut self, input: usize, path: &str, base: u64, m: LineMatch) {
        self.stats.matched_lines += 1;
        let mut enrichments = Vec::with_capacity(m.hits.len());
        for (hit, metas) in &m.hits {
            self.stats.enrichments += 1;
            *self.stats.by_indicator.entry(hit.id).or_default() += 1;
            *self
                .stats
                .by_type
                .entry(hit.id.kind().name().to_string())
                .or_default() += 1;
            for n in self.index.source_names(metas) {
                *self.stats.by_source.entry(n.to_string()).or_default() += 1;
            }
            if !self.count_only {
                enrichments.push(alert::enrichment(self.index, hit, metas));
            }
        }
        let needs_event = self.observe || !self.count_only;
        let event = needs_event.then(|| self.decoders[input].decode(&m.line, m.time));
        if let (true, Some(event)) = (self.observe, &event) {
            let obs = crate::correlate::observe::observations(
                self.index, &m.hits, event, m.time, path, path,
            );
            self.stats.observations.extend(obs);
        }
        if self.count_only || self.write_error.is_some() {
            return;
        }
        let place = LinePlace {
            path,
            offset: m.offset,
            line_number: base + m.line_idx + 1,
        };
        let mut doc = alert::alert(&place, &m.line, m.time, enrichments);
        let event = match event {
            Some(e) => e,
            None => self.decoders[input].decode(&m.line, m.time),
        };
        let spans: Vec<Option<(usize, usize)>> = m.hits.iter().map(|(h, _)| h.span).collect();
        alert::add_context(&mut doc, &event, &spans);
        let res = serde_json::to_writer(&mut self.out, &doc)
            .map_err(io::Error::from)
            .and_then(|_| self.out.write_all(b"\n"));
        if let Err(e) = res {
            self.write_error = Some(e);
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
    let mut c = Collector {
        index,
        inputs,
        out,
        count_only: opts.count_only,
        observe: opts.observe,
        next: 0,
        pending: BTreeMap::new(),
        line_base: vec![0; inputs.len()],
        decoders: inputs
            .iter()
            .map(|_| crate::decode::Decoder::default())
            .collect(),
        stats: HuntStats::default(),
        progress,
        write_error: None,
    };
    let threads = opts.threads.max(1);
    let (recycle_tx, recycle_rx) = batch::buffer_pool(threads * 4);
    if threads == 1 {
        let mut matcher = Matcher::new(index);
        let mut seq = 0;
        for (i, input) in inputs.iter().enumerate() {
            for piece in pieces(
                input,
                opts.chunk_bytes,
                opts.max_line_bytes,
                recycle_rx.clone(),
            ) {
                let outcome = run_piece(&mut matcher, piece, opts.max_line_bytes, now, &recycle_tx);
                c.accept(seq, i, outcome);
                seq += 1;
            }
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
        let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(threads * 2);
        let (done_tx, done_rx) = crossbeam_channel::bounded::<Done>(threads * 4);
        let max_line = opts.max_line_bytes;
        let chunk = opts.chunk_bytes;
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut seq = 0;
                for (i, input) in inputs.iter().enumerate() {
                    for piece in pieces(input, chunk, max_line, recycle_rx.clone()) {
                        if job_tx
                            .send(Job {
                                seq,
                                input: i,
                                piece: Some(piece),
                            })
                            .is_err()
                        {
                            return;
                        }
                        seq += 1;
                    }
                }
            });
            let workers_rx = job_rx.clone();
            let workers_tx = done_tx.clone();
            s.spawn(move || {
                pool.scope(|ps| {
                    for _ in 0..threads {
                        let rx = workers_rx.clone();
                        let tx = workers_tx.clone();
                        let recycle = recycle_tx.clone();
                        ps.spawn(move |_| {
                            let mut matcher = Matcher::new(index);
                            for job in rx.iter() {
                                let outcome = match job.piece {
                                    Some(p) => run_piece(&mut matcher, p, max_line, now, &recycle),
                                    None => Outcome::Start,
                                };
                                let done = Done {
                                    seq: job.seq,
                                    input: job.input,
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
            drop(job_rx);
            drop(done_tx);
            for d in done_rx.iter() {
                c.accept(d.seq, d.input, d.outcome);
                if c.write_error.is_some() {
                    break;
                }
            }
            // Dropping the receiver stops the workers and the reader.
            drop(done_rx);
        });
    }
    if let Some(pb) = &c.progress {
        pb.finish_and_clear();
    }
    if let Some(e) = c.write_error.take() {
        return Err(e);
    }
    c.out.flush()?;
    c.stats.secs = t0.elapsed().as_secs_f64();
    Ok(c.stats)
}

/// The pieces of one input, led by a start marker; an input that cannot be opened
/// yields its error.
fn pieces(
    input: &Input,
    chunk: usize,
    max_line: usize,
    recycled: crossbeam_channel::Receiver<Vec<u8>>,
) -> Box<dyn Iterator<Item = Piece> + Send + '_> {
    match ChunkReader::open(input, chunk, max_line, Some(recycled)) {
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

fn run_piece(
    matcher: &mut Matcher<'_>,
    piece: Piece,
    max_line: usize,
    now: DateTime<Utc>,
    recycle: &crossbeam_channel::Sender<Vec<u8>>,
) -> Outcome {
    match piece {
        Piece::Lines { data, .. } if data.is_empty() => Outcome::Start,
        Piece::Lines { offset, data } => {
            let outcome = match_chunk(matcher, &data, offset, max_line, now);
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
