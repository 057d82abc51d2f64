//! Scan: the step every driver runs on its workers (the hot path).
//!
//! A [`Scanner`] runs the [`Matcher`] over a batch of lines — a chunk of whole lines
//! from an archive (`hunt`) or a batch from a live source (`run`) — and keeps only
//! what the in-order [`emit`](crate::emit) step needs: the lines that hit something,
//! with their hits, and the Zeek header lines (`#fields`…), which the emitter's
//! decoder of that input must see in order. Nothing here decodes, reads times or
//! judges validity: that needs the line's decoder, which lives in the emitter.
//!
//! With recording on ([`Scanner::set_recording`]), every line's candidate tokens are
//! also recorded for the retro store ([`crate::retro`]): the matcher's one pass pushes
//! them, and a [`BatchRecorder`] reads the time of each line holding one (a decoder
//! pass on this worker) and aggregates the batch into [`Scanned::recorded`].
//!
//! Cost: one matcher pass per line; per matched line one copy of the line (at most
//! the driver's `max_line_bytes`) and its hits; per header line (`#` first, at most
//! [`HEADER_MAX_BYTES`]) one copy. Lines that match nothing allocate nothing.

use crate::decode::DecodeOptions;
use crate::index::Index;
use crate::matcher::{Hit, Matcher};
use crate::retro::{Batch, BatchContext, BatchRecorder, Recording};
use crate::source::Line;

/// Header lines longer than this are not kept (a Zeek header is a few hundred bytes).
pub const HEADER_MAX_BYTES: usize = 64 * 1024;

/// One line that hit at least one indicator.
#[derive(Debug)]
pub struct MatchedLine {
    /// 0-based index of the line in its batch.
    pub idx: u64,
    /// Byte offset of the line in its input, when the batch is a chunk of one input.
    pub offset: u64,
    pub line: Vec<u8>,
    pub hits: Vec<Hit>,
}

/// What scanning a batch found.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Lines scanned (oversized ones included).
    pub lines: u64,
    pub bytes: u64,
    /// Lines over the size limit: counted, not matched.
    pub oversized: u64,
    pub matched: Vec<MatchedLine>,
    /// Lines starting with `#`, with their index, for the decoders.
    pub headers: Vec<(u64, Vec<u8>)>,
    /// What the batch recorded for the retro store (recording only).
    pub recorded: Option<Batch>,
}

/// Scans lines against one index; keep one per worker thread.
pub struct Scanner<'i> {
    matcher: Matcher<'i>,
    hits: Vec<Hit>,
    recorder: Option<BatchRecorder>,
}

impl<'i> Scanner<'i> {
    pub fn new(index: &'i Index) -> Scanner<'i> {
        Scanner {
            matcher: Matcher::new(index),
            hits: Vec::new(),
            recorder: None,
        }
    }

    /// Records every line's tokens for the retro store, reading times as `decode`
    /// says; `None` stops recording.
    pub fn set_recording(&mut self, decode: Option<DecodeOptions>) {
        self.matcher.set_recording(decode.is_some());
        self.recorder = decode.map(BatchRecorder::new);
    }

    /// Records with `state`, a worker's recording state kept across batches (and
    /// scanners: one is made per batch, with the index current then).
    pub fn resume_recording(&mut self, state: Recording) {
        self.matcher.set_tokens(Some(state.tokens));
        self.recorder = Some(state.recorder);
    }

    /// Stops recording and hands the state back for the next batch's scanner.
    pub fn pause_recording(&mut self) -> Option<Recording> {
        let tokens = self.matcher.take_tokens()?;
        let recorder = self.recorder.take()?;
        Some(Recording { tokens, recorder })
    }

    /// [`Scanner::begin_batch`] adding to `held` (see [`BatchRecorder::begin_held`]).
    pub fn begin_held_batch(&mut self, ctx: BatchContext, held: Option<Batch>) {
        if let Some(r) = &mut self.recorder {
            r.begin_held(ctx, held);
        }
    }

    /// Where the next batch's lines come from (recording only; a batch scanned
    /// without one records nothing).
    pub fn begin_batch(&mut self, ctx: BatchContext) {
        if let Some(r) = &mut self.recorder {
            r.begin(ctx);
        }
    }

    fn finish_batch(&mut self, out: &mut Scanned) {
        if let Some(r) = &mut self.recorder {
            out.recorded = Some(r.finish());
        }
    }

    pub fn index(&self) -> &'i Index {
        self.matcher.index()
    }

    /// Scans one line (without its terminator).
    fn line(&mut self, idx: u64, offset: u64, line: &[u8], max_line: usize, out: &mut Scanned) {
        out.lines += 1;
        if line.first() == Some(&b'#') && line.len() <= HEADER_MAX_BYTES {
            out.headers.push((idx, line.to_vec()));
        }
        if line.len() > max_line {
            out.oversized += 1;
            return;
        }
        self.hits.clear();
        if let Some(t) = self.matcher.tokens() {
            t.clear();
        }
        self.matcher.find_with_json(line, &mut self.hits);
        if let Some(r) = &mut self.recorder {
            if let Some(t) = self.matcher.tokens() {
                r.line(line, t);
            }
        }
        if !self.hits.is_empty() {
            out.matched.push(MatchedLine {
                idx,
                offset,
                line: line.to_vec(),
                hits: std::mem::take(&mut self.hits),
            });
        }
    }

    /// Scans a chunk of whole lines that starts at byte `offset` of its input. A
    /// trailing `\r` is not part of a line.
    pub fn chunk(&mut self, data: &[u8], offset: u64, max_line: usize) -> Scanned {
        let mut out = Scanned {
            bytes: data.len() as u64,
            ..Scanned::default()
        };
        let mut start = 0usize;
        let mut idx = 0u64;
        while start < data.len() {
            let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |p| start + p);
            let line = &data[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.line(idx, offset + start as u64, line, max_line, &mut out);
            idx += 1;
            start = end + 1;
        }
        self.finish_batch(&mut out);
        out
    }

    /// Scans a live batch (framed by its source; sources drop oversized lines).
    pub fn lines(&mut self, lines: &[Line]) -> Scanned {
        let mut out = Scanned::default();
        for (idx, l) in lines.iter().enumerate() {
            out.bytes += l.bytes.len() as u64;
            self.line(idx as u64, 0, &l.bytes, usize::MAX, &mut out);
        }
        self.finish_batch(&mut out);
        out
    }
}
