//! Where the sidecar's alerts go: stdout, files rotated by size, or both; and the
//! optional throttle of repeated alerts.
//!
//! A file output is `path`, rotated when it would pass `max_bytes` to `path.1`
//! (`path.1` → `path.2`, …, keeping `keep` files).
//!
//! Alerts are written a batch at a time ([`AlertOutput::commit`]): every line of the
//! batch, then a flush, to every output; only then may the batch be acknowledged (its
//! file checkpoints move). Invariants:
//! - a file never keeps a torn line: when a write or flush fails (a full disk), the
//!   file is cut back to the end of the last line known written, and the commit can
//!   be retried with the same [`Pending`] batch, which resumes where each output
//!   stopped (an output that took the batch is not written twice);
//! - a file found at start with an unterminated last line (a crash mid-write) is cut
//!   back to its last newline;
//! - stdout cannot be cut back: an error there (a closed pipe) is [`CommitError::Closed`],
//!   the end of the run.
//!
//! Throttle: within `window` of an alert for an (indicator, host) pair, further alerts
//! for the same pair are counted, not written; the next alert written for the pair
//! carries `tripline.throttled` (how many were held back). State is bounded: at most
//! [`THROTTLE_MAX_KEYS`] pairs, the oldest forgotten first.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Pairs remembered by the throttle at most.
pub const THROTTLE_MAX_KEYS: usize = 100_000;

enum Target {
    Stdout(BufWriter<io::Stdout>),
    File(RotatingFile),
    /// For tests and embedding: an in-memory sink.
    Memory(std::sync::Arc<std::sync::Mutex<Vec<u8>>>),
}

/// A file rotated by size.
pub struct RotatingFile {
    path: PathBuf,
    file: BufWriter<File>,
    /// Bytes in the file, buffered ones included.
    size: u64,
    /// Bytes known to be in the file: the end of its last whole line written.
    committed: u64,
    max_bytes: u64,
    keep: usize,
}

/// Cuts an unterminated last line off the end of `file` (a write torn by a crash).
/// Returns the size kept.
fn cut_torn_tail(file: &mut File) -> io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut keep = 0u64;
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if keep < len {
        tracing::warn!(
            bytes = len - keep,
            "Cut an unterminated last line off the alerts file."
        );
        file.set_len(keep)?;
    }
    Ok(keep)
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<RotatingFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let size = cut_torn_tail(&mut file)?;
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(1 << 16, file),
            size,
            committed: size,
            max_bytes: max_bytes.max(1),
            keep,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            std::fs::remove_file(&self.path).or_else(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
        } else {
            // Rotated copies are contiguous (`.1` … `.k`): shift only those there are,
            // dropping the one past `keep`. O(copies), whatever `keep` is.
            let mut top = 0;
            while top < self.keep && self.rotated(top + 1).exists() {
                top += 1;
            }
            if top == self.keep {
                std::fs::remove_file(self.rotated(top))?;
                top -= 1;
            }
            for n in (1..=top).rev() {
                std::fs::rename(self.rotated(n), self.rotated(n + 1))?;
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)?;
        self.file = BufWriter::with_capacity(1 << 16, file);
        self.size = 0;
        self.committed = 0;
        Ok(())
    }

    /// Writes `lines[*next..]` and flushes, advancing `*next` past each line known
    /// written (at a flush). On an error, the file is cut back to its last whole line
    /// known written and the buffered rest dropped, so a retry resumes cleanly.
    fn write_lines(&mut self, lines: &[Vec<u8>], next: &mut usize) -> io::Result<()> {
        let mut i = *next;
        let res = (|| {
            while i < lines.len() {
                let line = &lines[i];
                if self.size > 0 && self.size + line.len() as u64 + 1 > self.max_bytes {
                    self.file.flush()?;
                    self.committed = self.size;
                    *next = i;
                    self.rotate()?;
                }
                self.file.write_all(line)?;
                self.file.write_all(b"\n")?;
                self.size += line.len() as u64 + 1;
                i += 1;
            }
            self.file.flush()
        })();
        match res {
            Ok(()) => {
                self.committed = self.size;
                *next = lines.len();
                Ok(())
            }
            Err(e) => {
                self.roll_back();
                Err(e)
            }
        }
    }

    /// Drops what is buffered and cuts the file back to `committed`.
    fn roll_back(&mut self) {
        let fresh = || {
            OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&self.path)
        };
        let placeholder = match fresh() {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "Cannot reopen the alerts file.");
                return;
            }
        };
        let old = std::mem::replace(&mut self.file, BufWriter::new(placeholder));
        let (file, _unwritten) = old.into_parts();
        if let Err(e) = file.set_len(self.committed) {
            tracing::debug!(error = %e, "Cannot cut the alerts file back.");
        }
        self.file = BufWriter::with_capacity(1 << 16, file);
        self.size = self.committed;
    }
}

/// Why a batch of alerts is not (yet) written.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Worth retrying (a full disk, an I/O error on a file): nothing torn was left.
    #[error("cannot write alerts to {target}: {source}")]
    Retry {
        target: String,
        #[source]
        source: io::Error,
    },
    /// The output is gone for good (stdout closed, e.g. `| head`).
    #[error("cannot write alerts to {target}: {source}")]
    Closed {
        target: String,
        #[source]
        source: io::Error,
    },
}

/// A batch of alert lines on its way to every output: how far each output got.
#[derive(Debug, Default)]
pub struct Pending {
    pub lines: Vec<Vec<u8>>,
    next: Vec<usize>,
}

impl Pending {
    pub fn new(lines: Vec<Vec<u8>>) -> Pending {
        Pending {
            lines,
            next: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// All alert outputs, written together.
pub struct AlertOutput {
    targets: Vec<Target>,
    throttle: Option<Throttle>,
}

struct Throttle {
    window: Duration,
    /// (indicator, host) → (first alert written at, alerts held back since).
    seen: HashMap<(String, String), (Instant, u64)>,
}

/// What the throttle says about one alert.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Write it; `held_back` repeats were throttled before it.
    Write { held_back: u64 },
    /// Counted, not written.
    Throttled,
}

impl AlertOutput {
    /// Opens every output: `"-"` is stdout, anything else a rotated file.
    pub fn open(
        paths: &[String],
        max_bytes: u64,
        keep: usize,
        throttle: Duration,
    ) -> io::Result<AlertOutput> {
        let mut targets = Vec::new();
        for p in paths {
            if p == "-" {
                targets.push(Target::Stdout(BufWriter::with_capacity(
                    1 << 16,
                    io::stdout(),
                )));
            } else {
                targets.push(Target::File(RotatingFile::open(
                    Path::new(p),
                    max_bytes,
                    keep,
                )?));
            }
        }
        Ok(AlertOutput {
            targets,
            throttle: (!throttle.is_zero()).then(|| Throttle {
                window: throttle,
                seen: HashMap::new(),
            }),
        })
    }

    /// An in-memory output (tests, embedding).
    pub fn memory(
        buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
        throttle: Duration,
    ) -> AlertOutput {
        AlertOutput {
            targets: vec![Target::Memory(buf)],
            throttle: (!throttle.is_zero()).then(|| Throttle {
                window: throttle,
                seen: HashMap::new(),
            }),
        }
    }

    /// Asks the throttle about an alert for `indicator` seen on `host`.
    pub fn admit(&mut self, indicator: &str, host: &str, now: Instant) -> Verdict {
        let Some(t) = self.throttle.as_mut() else {
            return Verdict::Write { held_back: 0 };
        };
        let key = (indicator.to_string(), host.to_string());
        match t.seen.get_mut(&key) {
            Some((since, held)) if now.duration_since(*since) < t.window => {
                *held += 1;
                Verdict::Throttled
            }
            Some((since, held)) => {
                let out = *held;
                *since = now;
                *held = 0;
                Verdict::Write { held_back: out }
            }
            None => {
                if t.seen.len() >= THROTTLE_MAX_KEYS {
                    let window = t.window;
                    t.seen
                        .retain(|_, (since, _)| now.duration_since(*since) < window);
                    if t.seen.len() >= THROTTLE_MAX_KEYS {
                        t.seen.clear();
                    }
                }
                t.seen.insert(key, (now, 0));
                Verdict::Write { held_back: 0 }
            }
        }
    }

    /// Writes the batch's lines to every output that has not taken them yet, and
    /// flushes. `Ok` means every output holds every line; after an error, calling it
    /// again with the same `batch` resumes.
    pub fn commit(&mut self, batch: &mut Pending) -> Result<(), CommitError> {
        batch.next.resize(self.targets.len(), 0);
        let mut first_err = None;
        for (t, next) in self.targets.iter_mut().zip(batch.next.iter_mut()) {
            if *next >= batch.lines.len() {
                continue;
            }
            let res = match t {
                Target::Stdout(w) => {
                    let r = (|| {
                        for l in &batch.lines[*next..] {
                            w.write_all(l)?;
                            w.write_all(b"\n")?;
                        }
                        w.flush()
                    })();
                    r.map(|()| *next = batch.lines.len())
                        .map_err(|source| CommitError::Closed {
                            target: "stdout".into(),
                            source,
                        })
                }
                Target::File(f) => {
                    f.write_lines(&batch.lines, next)
                        .map_err(|source| CommitError::Retry {
                            target: f.path.display().to_string(),
                            source,
                        })
                }
                Target::Memory(m) => {
                    if let Ok(mut m) = m.lock() {
                        for l in &batch.lines[*next..] {
                            m.extend_from_slice(l);
                            m.push(b'\n');
                        }
                    }
                    *next = batch.lines.len();
                    Ok(())
                }
            };
            if let Err(e) = res {
                // A closed output ends the run: report it first.
                match (&first_err, &e) {
                    (None, _) | (Some(CommitError::Retry { .. }), CommitError::Closed { .. }) => {
                        first_err = Some(e)
                    }
                    _ => {}
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_by_size_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let mut out =
            AlertOutput::open(&[path.display().to_string()], 100, 2, Duration::ZERO).unwrap();
        let lines = (0..30)
            .map(|i| format!("{{\"n\":{i:>10}}}").into_bytes())
            .collect();
        out.commit(&mut Pending::new(lines)).unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let cur = read(&path);
        let one = read(&dir.path().join("alerts.jsonl.1"));
        let two = read(&dir.path().join("alerts.jsonl.2"));
        assert!(!dir.path().join("alerts.jsonl.3").exists());
        for f in [&cur, &one, &two] {
            assert!(f.len() <= 100, "{f}");
        }
        // The newest lines are in the live file, in order.
        assert!(cur.trim_end().ends_with(&format!("{:>10}}}", 29)));
        // 18-byte lines, five to a file: the live file and two rotated ones hold the
        // last fifteen, in order.
        let all: Vec<String> = two
            .lines()
            .chain(one.lines())
            .chain(cur.lines())
            .map(String::from)
            .collect();
        let want: Vec<String> = (15..30).map(|i| format!("{{\"n\":{i:>10}}}")).collect();
        assert_eq!(all, want);
    }

    #[test]
    fn throttle_counts_and_carries() {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut out = AlertOutput::memory(buf, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(
            out.admit("evil.com", "h1", t0),
            Verdict::Write { held_back: 0 }
        );
        assert_eq!(
            out.admit("evil.com", "h1", t0 + Duration::from_secs(1)),
            Verdict::Throttled
        );
        assert_eq!(
            out.admit("evil.com", "h1", t0 + Duration::from_secs(2)),
            Verdict::Throttled
        );
        assert_eq!(
            out.admit("evil.com", "h2", t0 + Duration::from_secs(2)),
            Verdict::Write { held_back: 0 }
        );
        assert_eq!(
            out.admit("evil.com", "h1", t0 + Duration::from_secs(61)),
            Verdict::Write { held_back: 2 }
        );
        assert_eq!(
            out.admit("evil.com", "h1", t0 + Duration::from_secs(62)),
            Verdict::Throttled
        );
    }
}

#[cfg(test)]
mod torn {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        let mut out =
            AlertOutput::open(&[path.display().to_string()], 1 << 20, 1, Duration::ZERO).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        out.commit(&mut Pending::new(vec![b"{\"d\":4}".to_vec()]))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n"
        );
        // A file with no newline at all is cut to nothing.
        let other = dir.path().join("other.jsonl");
        std::fs::write(&other, "{\"x\":").unwrap();
        AlertOutput::open(&[other.display().to_string()], 1 << 20, 1, Duration::ZERO).unwrap();
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "");
    }

    #[test]
    fn rotation_with_a_huge_keep_is_quick() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let mut out = AlertOutput::open(
            &[path.display().to_string()],
            20,
            usize::MAX,
            Duration::ZERO,
        )
        .unwrap();
        let lines = (0..10)
            .map(|i| format!("{{\"n\":{i:>8}}}").into_bytes())
            .collect();
        out.commit(&mut Pending::new(lines)).unwrap();
        assert!(dir.path().join("alerts.jsonl.9").exists());
    }
}
