//! Where the sidecar's alerts go: stdout, files rotated by size, or both; and the
//! optional throttle of repeated alerts.
//!
//! A file output is `path`, rotated when it would pass `max_bytes` to `path.1`
//! (`path.1` → `path.2`, …, keeping `keep` files). Writes are buffered and flushed at
//! the end of every batch, before the batch is acknowledged, so an acknowledged line's
//! alert is in the file (or the pipe) when its checkpoint moves.
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
    size: u64,
    max_bytes: u64,
    keep: usize,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<RotatingFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file: BufWriter::with_capacity(1 << 16, file),
            size,
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
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.file = BufWriter::with_capacity(1 << 16, file);
        self.size = 0;
        Ok(())
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 + 1 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.file.write_all(b"\n")?;
        self.size += line.len() as u64 + 1;
        Ok(())
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

    /// Writes one alert line (no newline) to every output.
    pub fn write(&mut self, line: &[u8]) -> io::Result<()> {
        for t in &mut self.targets {
            match t {
                Target::Stdout(w) => {
                    w.write_all(line)?;
                    w.write_all(b"\n")?;
                }
                Target::File(f) => f.write_line(line)?,
                Target::Memory(m) => {
                    if let Ok(mut m) = m.lock() {
                        m.extend_from_slice(line);
                        m.push(b'\n');
                    }
                }
            }
        }
        Ok(())
    }

    /// Flushes every output (end of a batch, shutdown).
    pub fn flush(&mut self) -> io::Result<()> {
        for t in &mut self.targets {
            match t {
                Target::Stdout(w) => w.flush()?,
                Target::File(f) => f.file.flush()?,
                Target::Memory(_) => {}
            }
        }
        Ok(())
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
        for i in 0..30 {
            out.write(format!("{{\"n\":{i:>10}}}").as_bytes()).unwrap();
        }
        out.flush().unwrap();
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
