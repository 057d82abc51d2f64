//! Reading the lines of one followed file ([`Tail`]): its read position and held
//! partial line, lines longer than `max_line_bytes` skipped to their newline without
//! being buffered whole, `.gz` files read once through a decompressor, the identity
//! check that notices truncation (copytruncate), and where `start_at = end` starts.
//!
//! Invariants: only whole lines are handed on, except the unterminated last line of a
//! file let go; memory per file is bounded by `max_line_bytes` plus one 64 KiB read.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use flate2::read::MultiGzDecoder;
use tracing::{debug, info};

use super::checkpoint::{unix_now, Checkpoints, EntryId};
use super::reader::Stat;
use super::{FileSourceStats, Settings};
use crate::source::{Line, Origin};

/// Bytes read from a file at a time.
const CHUNK: usize = 64 * 1024;

/// A file followed from an offset up to this far in has the lines before it counted
/// (one sequential read), so its lines carry line numbers; further in, they carry
/// none rather than delay the start.
const LINE_COUNT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Newlines in the first `len` bytes read from `r`; `None` when fewer could be read.
fn count_lines(r: &mut impl Read, len: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; CHUNK];
    let (mut left, mut n) = (len, 0u64);
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = match r.read(&mut buf[..want]) {
            Ok(0) => return Ok(None),
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        n += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
        left -= got as u64;
    }
    Ok(Some(n))
}

pub(super) enum Input {
    Plain(File),
    /// Read sequentially; positions count decompressed bytes.
    Gzip(Box<MultiGzDecoder<File>>),
}

/// Lines left to take in the batch being filled.
pub(super) struct Budget {
    pub(super) lines: usize,
    pub(super) bytes: usize,
}

impl Budget {
    pub(super) fn exhausted(&self) -> bool {
        self.lines == 0 || self.bytes == 0
    }
}

/// One followed file.
pub(super) struct Tail {
    pub(super) id: EntryId,
    /// The entry's persistent id ([`super::checkpoint::Entry::uid`]), named in each
    /// line's origin; 0 until the reader sets it.
    pub(super) uid: u64,
    pub(super) path: PathBuf,
    pub(super) name: Arc<str>,
    pub(super) stat: Stat,
    input: Input,
    /// Next byte to read.
    pos: u64,
    /// Bytes read and not yet handed on: `buf[next..]` starts at `buf_start + next`;
    /// `buf_start + buf.len() == pos`.
    buf: Vec<u8>,
    buf_start: u64,
    next: usize,
    /// `buf[next..scan]` holds no newline.
    scan: usize,
    /// Inside an oversized line that started here.
    skip_from: Option<u64>,
    /// Lines before `buf_start + next` (handed on or skipped), when known.
    line: Option<u64>,
    /// When the file last gave new bytes (for handing on an idle partial line).
    last_growth: Instant,
    /// Size at the last `fstat`.
    pub(super) size: u64,
    /// Size at which identity was last verified.
    pub(super) checked_size: Option<u64>,
    /// A copy followed from an offset beyond its size (still being written).
    waiting: bool,
    pub(super) missing_since: Option<Instant>,
    /// Let go at the end of file.
    pub(super) draining: bool,
    pub(super) done: bool,
}

impl Tail {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn open(
        path: &Path,
        name: Arc<str>,
        mut input: Input,
        stat: Stat,
        id: EntryId,
        start: u64,
        skip_from: Option<u64>,
        waiting: bool,
    ) -> io::Result<Tail> {
        let mut pos = start;
        let mut line = Some(0);
        match &mut input {
            Input::Gzip(d) => {
                let mut counted = 0u64;
                let mut buf = vec![0u8; CHUNK];
                let mut rest = (&mut **d).take(start);
                loop {
                    let n = match rest.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    counted += n as u64;
                    line = line.map(|l| l + memchr::memchr_iter(b'\n', &buf[..n]).count() as u64);
                }
                pos = counted;
            }
            Input::Plain(f) if start > 0 => {
                line = if start <= LINE_COUNT_MAX_BYTES {
                    let mut r: &File = f;
                    count_lines(&mut r, start).unwrap_or(None)
                } else {
                    None
                };
            }
            Input::Plain(_) => {}
        }
        if skip_from.is_some() {
            // Inside an oversized line: the count holds up to its start only.
            line = None;
        }
        Ok(Tail {
            line,
            last_growth: Instant::now(),
            id,
            uid: 0,
            path: path.to_path_buf(),
            name,
            stat,
            input,
            pos,
            buf: Vec::new(),
            buf_start: pos,
            next: 0,
            scan: 0,
            skip_from,
            size: stat.size,
            checked_size: None,
            waiting,
            missing_since: None,
            draining: false,
            done: false,
        })
    }

    /// The open file, when it is read directly (not through a decompressor).
    pub(super) fn plain_file(&self) -> Option<&File> {
        match &self.input {
            Input::Plain(f) => Some(f),
            Input::Gzip(_) => None,
        }
    }

    pub(super) fn is_gz(&self) -> bool {
        matches!(self.input, Input::Gzip(_))
    }

    /// The first byte not yet handed on (or skipped).
    pub(super) fn committed(&self) -> u64 {
        self.skip_from.unwrap_or(self.buf_start + self.next as u64)
    }

    fn reset(&mut self, pos: u64) {
        self.pos = pos;
        self.buf.clear();
        self.buf_start = pos;
        self.next = 0;
        self.scan = 0;
        self.skip_from = None;
        self.waiting = false;
        self.line = (pos == 0).then_some(0);
    }

    pub(super) fn rename(&mut self, path: &Path) {
        self.path = path.to_path_buf();
        self.name = Arc::from(path.to_string_lossy().as_ref());
    }

    /// Reads up to `want` bytes at `pos`; 0 at the end.
    fn fill(&mut self, want: usize) -> io::Result<usize> {
        if self.next > 0 {
            self.buf.drain(..self.next);
            self.buf_start += self.next as u64;
            self.scan -= self.next;
            self.next = 0;
        }
        if self.buf.capacity() > 4 * CHUNK && self.buf.len() < CHUNK {
            self.buf.shrink_to(2 * CHUNK);
        }
        let len = self.buf.len();
        self.buf.resize(len + want, 0);
        let res = loop {
            let r = match &mut self.input {
                Input::Plain(f) => f.read_at(&mut self.buf[len..], self.pos),
                Input::Gzip(d) => d.read(&mut self.buf[len..]),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r,
            }
        };
        match res {
            Ok(n) => {
                self.buf.truncate(len + n);
                self.pos += n as u64;
                if n > 0 {
                    self.last_growth = Instant::now();
                }
                Ok(n)
            }
            Err(e) => {
                self.buf.truncate(len);
                Err(e)
            }
        }
    }

    /// Hands on the whole lines in the buffer within `budget`. False when the budget
    /// ran out first.
    fn emit(
        &mut self,
        max_line: usize,
        out: &mut Vec<Line>,
        budget: &mut Budget,
        stats: &FileSourceStats,
    ) -> bool {
        loop {
            if budget.exhausted() {
                return false;
            }
            let Some(i) = memchr::memchr(b'\n', &self.buf[self.scan..]) else {
                self.scan = self.buf.len();
                // A partial line this long is oversized whatever its terminator.
                if self.skip_from.is_none() && self.buf.len() - self.next > max_line + 1 {
                    self.skip_from = Some(self.buf_start + self.next as u64);
                }
                if self.skip_from.is_some() {
                    self.buf_start += self.buf.len() as u64;
                    self.buf.clear();
                    self.next = 0;
                    self.scan = 0;
                }
                return true;
            };
            let nl = self.scan + i;
            let start = self.buf_start + self.next as u64;
            let end = self.buf_start + nl as u64 + 1;
            if let Some(from) = self.skip_from.take() {
                self.skipped(from, end, stats);
            } else {
                let line = &self.buf[self.next..nl];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.len() > max_line {
                    self.skipped(start, end, stats);
                } else {
                    stats.bytes.fetch_add(end - start, Ordering::Relaxed);
                    budget.lines -= 1;
                    budget.bytes = budget.bytes.saturating_sub(line.len().max(1));
                    stats.lines.fetch_add(1, Ordering::Relaxed);
                    let bytes = line.to_vec();
                    out.push(Line {
                        bytes,
                        origin: Origin::File {
                            path: self.name.clone(),
                            offset: start,
                            line: self.next_line(),
                            file_id: Some(self.uid),
                        },
                    });
                }
            }
            self.next = nl + 1;
            self.scan = self.next;
        }
    }

    /// The next line's number, counting it.
    fn next_line(&mut self) -> Option<u64> {
        self.line = self.line.map(|n| n + 1);
        self.line
    }

    fn skipped(&mut self, from: u64, end: u64, stats: &FileSourceStats) {
        self.next_line();
        stats.oversized.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(end - from, Ordering::Relaxed);
        debug!(path = %self.path.display(), offset = from, len = end - from, "Skipped an oversized line.");
    }

    /// At the end of a file let go: hands on its unterminated last line.
    fn finish(&mut self, max_line: usize, out: &mut Vec<Line>, stats: &FileSourceStats) {
        if let Some(from) = self.skip_from.take() {
            self.skipped(from, self.pos, stats);
        } else if self.next < self.buf.len() {
            let start = self.buf_start + self.next as u64;
            let line = &self.buf[self.next..];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > max_line {
                self.skipped(start, self.pos, stats);
            } else {
                stats.bytes.fetch_add(self.pos - start, Ordering::Relaxed);
                stats.lines.fetch_add(1, Ordering::Relaxed);
                let bytes = line.to_vec();
                out.push(Line {
                    bytes,
                    origin: Origin::File {
                        path: self.name.clone(),
                        offset: start,
                        line: self.next_line(),
                        file_id: Some(self.uid),
                    },
                });
            }
        }
        self.buf.clear();
        self.buf_start = self.pos;
        self.next = 0;
        self.scan = 0;
    }
}

/// Reads up to `want` bytes from the start of `file`.
pub(super) fn read_head(file: &File, want: usize) -> io::Result<Vec<u8>> {
    let mut head = vec![0; want];
    let mut got = 0;
    while got < want {
        match file.read_at(&mut head[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(got);
    Ok(head)
}

/// The first `want` decompressed bytes of a gzip file; rewinds it.
pub(super) fn read_head_gz(mut file: &File, want: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(want);
    MultiGzDecoder::new(file)
        .take(want as u64)
        .read_to_end(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(head)
}

/// Where `start_at = end` starts: after the last newline, so that a partial last line
/// is read once complete. If the last line is already too long, at the end, skipping
/// to the next newline.
pub(super) fn end_position(
    file: &File,
    size: u64,
    max_line: usize,
) -> io::Result<(u64, Option<u64>)> {
    let floor = size.saturating_sub(max_line as u64 + 2);
    let mut end = size;
    let mut chunk = vec![0u8; CHUNK];
    while end > floor {
        let start = floor.max(end.saturating_sub(CHUNK as u64));
        let buf = &mut chunk[..(end - start) as usize];
        file.read_exact_at(buf, start)?;
        if let Some(i) = memchr::memrchr(b'\n', buf) {
            return Ok((start + i as u64 + 1, None));
        }
        end = start;
    }
    Ok(if floor == 0 {
        (0, None)
    } else {
        (size, Some(size))
    })
}

/// Reads from one file into the batch: checks that it is still the same content,
/// then hands on whole lines until the budget or the data runs out.
pub(super) fn poll(
    t: &mut Tail,
    known: &mut Checkpoints,
    s: &Settings,
    stats: &FileSourceStats,
    out: &mut Vec<Line>,
    budget: &mut Budget,
) -> io::Result<()> {
    let size = match &t.input {
        Input::Plain(f) => Some(f.metadata()?.len()),
        Input::Gzip(_) => None,
    };
    if let Some(size) = size {
        t.size = size;
        if t.checked_size != Some(size) {
            check_identity(t, known, s, stats, size)?;
        }
    }
    loop {
        if !t.emit(s.max_line, out, budget, stats) {
            return Ok(());
        }
        let want = match size {
            Some(size) => size.saturating_sub(t.pos).min(CHUNK as u64) as usize,
            None => CHUNK,
        };
        let got = if want == 0 { 0 } else { t.fill(want)? };
        if got == 0 {
            if t.draining || t.is_gz() {
                t.finish(s.max_line, out, stats);
                t.done = true;
            } else if t.skip_from.is_none()
                && t.next < t.buf.len()
                && s.partial_line_flush
                    .is_some_and(|d| t.last_growth.elapsed() >= d)
                && !budget.exhausted()
            {
                // An unterminated last line, idle long enough: hand it on.
                t.finish(s.max_line, out, stats);
            }
            return Ok(());
        }
    }
}

/// Whether a followed plain file still holds the content we were reading: its first
/// bytes unchanged and it is no shorter than our position. If not (copytruncate, or
/// rewritten in place), it is read again from 0 as a new content.
fn check_identity(
    t: &mut Tail,
    known: &mut Checkpoints,
    s: &Settings,
    stats: &FileSourceStats,
    size: u64,
) -> io::Result<()> {
    let Input::Plain(file) = &t.input else {
        return Ok(());
    };
    let head = read_head(file, size.min(s.fingerprint_bytes as u64) as usize)?;
    let fp = known.get(t.id).map(|e| e.fingerprint);
    let same = fp.is_some_and(|fp| fp.matches(&head));
    if !same || (!t.waiting && size < t.pos) {
        info!(path = %t.path.display(), size, offset = t.pos, "File truncated or rewritten; reading it from the start.");
        stats.rotations.fetch_add(1, Ordering::Relaxed);
        let unix = unix_now();
        known.release(t.id, t.committed(), unix);
        t.id = known.create(&head, t.stat.dev, t.stat.inode, &t.name, 0, unix);
        t.uid = known.get(t.id).map_or(0, |e| e.uid);
        t.reset(0);
    } else if fp.is_some_and(|fp| head.len() > fp.len) {
        known.refine(t.id, &head);
    }
    if t.waiting && size >= t.pos {
        t.waiting = false;
    }
    t.checked_size = Some(size);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn tail_over(bytes: &[u8]) -> (tempfile::TempDir, Tail) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.log");
        fs::write(&path, bytes).expect("write");
        let file = File::open(&path).expect("open");
        let st = Stat::of(&file.metadata().expect("stat"));
        let t = Tail::open(
            &path,
            Arc::from("t.log"),
            Input::Plain(file),
            st,
            0,
            0,
            None,
            false,
        )
        .expect("tail");
        (dir, t)
    }

    /// Reads everything there is, as (offset, line) pairs.
    fn read_all(t: &mut Tail, max_line: usize, finish: bool) -> (Vec<(u64, String)>, u64) {
        let stats = FileSourceStats::default();
        let mut out = Vec::new();
        loop {
            let mut budget = Budget {
                lines: 2,
                bytes: 1 << 20,
            };
            if t.emit(max_line, &mut out, &mut budget, &stats) && t.fill(7).expect("read") == 0 {
                break;
            }
        }
        if finish {
            t.finish(max_line, &mut out, &stats);
        }
        let lines = out
            .into_iter()
            .map(|l| match l.origin {
                Origin::File { offset, .. } => {
                    (offset, String::from_utf8_lossy(&l.bytes).into_owned())
                }
                o => panic!("origin {o:?}"),
            })
            .collect();
        (lines, stats.oversized.load(Ordering::Relaxed))
    }

    #[test]
    fn lines_offsets_and_oversized() {
        // (input, max_line, finish, expected lines, oversized, committed after)
        type Case = (
            &'static str,
            usize,
            bool,
            Vec<(u64, &'static str)>,
            u64,
            u64,
        );
        let cases: Vec<Case> = vec![
            ("a\nbb\n", 10, false, vec![(0, "a"), (2, "bb")], 0, 5),
            ("a\r\nb", 10, false, vec![(0, "a")], 0, 3),
            ("a\r\nb", 10, true, vec![(0, "a"), (3, "b")], 0, 4),
            ("\n\nx\n", 10, false, vec![(0, ""), (1, ""), (2, "x")], 0, 4),
            // Exactly the limit passes; one more is skipped, short or long.
            (
                "12345\n123456\nok\n",
                5,
                false,
                vec![(0, "12345"), (13, "ok")],
                1,
                16,
            ),
            (
                "0123456789012345678901234567890123\nok\n",
                5,
                false,
                vec![(35, "ok")],
                1,
                38,
            ),
            // An oversized partial line: skipped up to where it is, counted at its end.
            (
                "ok\n0123456789012345678901234",
                5,
                false,
                vec![(0, "ok")],
                0,
                3,
            ),
            (
                "ok\n0123456789012345678901234",
                5,
                true,
                vec![(0, "ok")],
                1,
                28,
            ),
            // `\r\n` does not count in the length.
            ("12345\r\n", 5, false, vec![(0, "12345")], 0, 7),
        ];
        for (input, max_line, finish, want, oversized, committed) in cases {
            let (_dir, mut t) = tail_over(input.as_bytes());
            let (got, over) = read_all(&mut t, max_line, finish);
            let want: Vec<(u64, String)> =
                want.into_iter().map(|(o, s)| (o, s.to_string())).collect();
            assert_eq!(got, want, "input {input:?}");
            assert_eq!(over, oversized, "oversized, input {input:?}");
            assert_eq!(t.committed(), committed, "committed, input {input:?}");
        }
    }

    #[test]
    fn end_position_starts_after_the_last_complete_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("e.log");
        // (content, max_line, expected)
        let long = "x".repeat(100);
        let cases: Vec<(String, usize, (u64, Option<u64>))> = vec![
            ("".into(), 10, (0, None)),
            ("a\nb\n".into(), 10, (4, None)),
            ("a\nbc".into(), 10, (2, None)),
            ("abc".into(), 10, (0, None)),
            (format!("a\n{long}"), 10, (102, Some(102))),
            (format!("a\n{long}"), 200, (2, None)),
        ];
        for (content, max_line, want) in cases {
            fs::write(&path, &content).expect("write");
            let f = File::open(&path).expect("open");
            let got = end_position(&f, content.len() as u64, max_line).expect("read");
            assert_eq!(got, want, "content {content:?}");
        }
    }
}
