//! The synchronous part of the file source ([`Reader`]), run on the blocking pool:
//! expands the include patterns (each rescan is the source of truth), follows renames
//! and notices disappearances, identifies files not followed yet by their fingerprint
//! against the checkpoints (known, new, a copy, or undecided), and fills batches from
//! the followed files in turn.
//!
//! Costs: per rescan, one glob expansion, a `stat` per matching path, and for each
//! path not followed an open and a read of its first bytes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use flate2::read::MultiGzDecoder;
use tracing::{debug, info, warn};

use super::checkpoint::{unix_now, Checkpoints, Fingerprint, Identity};
use super::tail::{end_position, poll, read_head, read_head_gz, Budget, Input, Tail};
use super::{Ends, FileSourceStats, Settings, StartAt, BATCH_BYTES};
use crate::source::Line;

fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// What `stat` says of a file: enough to tell whether it changed since the last look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Stat {
    pub(super) dev: u64,
    pub(super) inode: u64,
    pub(super) size: u64,
    mtime: (i64, i64),
}

impl Stat {
    pub(super) fn of(m: &Metadata) -> Stat {
        Stat {
            dev: m.dev(),
            inode: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }

    pub(super) fn key(&self) -> (u64, u64) {
        (self.dev, self.inode)
    }
}

/// Lines of one batch and where they leave each file's checkpoint.
#[derive(Default)]
pub(super) struct Produced {
    pub(super) lines: Vec<Line>,
    pub(super) ends: Ends,
}

/// The synchronous part: finds, identifies and reads files. Runs on the blocking pool.
pub(super) struct Reader {
    s: Settings,
    pub(super) known: Checkpoints,
    tails: Vec<Tail>,
    cursor: usize,
    /// Copies of followed files, skipped until they change or a file is let go.
    skipped: HashSet<Stat>,
    /// Files undecided (or `.gz` files not yet still) at the last look, and whether
    /// the first scan saw them.
    deferred: HashMap<(u64, u64), (Stat, bool)>,
    /// `.gz` files read to their end or skipped for good.
    finished: HashSet<Stat>,
    /// Paths that failed to open or read, warned about once until they read again.
    failing: HashSet<PathBuf>,
    releases_seen: u64,
    scanned: bool,
    stats: Arc<FileSourceStats>,
}

/// Counts a file that cannot be opened or read; warns the first time in a row.
/// How far two files with the same fingerprint are compared to tell a copy from a
/// file of its own.
const COMPARE_MAX_BYTES: u64 = 1 << 20;

fn failed(failing: &mut HashSet<PathBuf>, stats: &FileSourceStats, path: &Path, e: &io::Error) {
    stats.read_errors.fetch_add(1, Ordering::Relaxed);
    if failing.insert(path.to_path_buf()) {
        warn!(path = %path.display(), error = %e, "Cannot read file; trying again at the next rescan.");
    } else {
        debug!(path = %path.display(), error = %e, "Cannot read file.");
    }
}

impl Reader {
    pub(super) fn new(s: Settings, known: Checkpoints, stats: Arc<FileSourceStats>) -> Reader {
        Reader {
            s,
            releases_seen: known.releases(),
            known,
            tails: Vec::new(),
            cursor: 0,
            skipped: HashSet::new(),
            deferred: HashMap::new(),
            finished: HashSet::new(),
            failing: HashSet::new(),
            scanned: false,
            stats,
        }
    }

    /// Whether files wait to be decided about (empty, or too short to tell from a
    /// known file, or `.gz` files not yet still): data written may decide them.
    pub(super) fn has_undecided(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// The regular files the patterns name now.
    fn expand(&self) -> BTreeMap<PathBuf, Stat> {
        let mut found = BTreeMap::new();
        for (pattern, gz_ok) in &self.s.includes {
            let paths = match glob::glob(pattern) {
                Ok(p) => p,
                Err(e) => {
                    debug!(pattern, error = %e, "Bad pattern.");
                    continue;
                }
            };
            for entry in paths {
                let path = match entry {
                    Ok(p) => p,
                    Err(e) => {
                        debug!(path = %e.path().display(), error = %e.error(), "Cannot list a directory.");
                        continue;
                    }
                };
                if (!gz_ok && is_gz(&path)) || self.s.excluded(&path) {
                    continue;
                }
                match fs::metadata(&path) {
                    Ok(m) if m.is_file() => {
                        found.insert(path, Stat::of(&m));
                    }
                    Ok(_) => {}
                    Err(e) => debug!(path = %path.display(), error = %e, "Cannot stat file."),
                }
            }
        }
        found
    }

    /// Expands the patterns: follows renames, notices disappearances, takes up files
    /// not followed yet.
    pub(super) fn rescan(&mut self) {
        let now = Instant::now();
        let unix = unix_now();
        if self.known.releases() != self.releases_seen {
            // A content was let go: its copies may now be what to read.
            self.releases_seen = self.known.releases();
            self.skipped.clear();
        }
        let found = self.expand();
        let mut by_inode: HashMap<(u64, u64), Vec<&PathBuf>> = HashMap::new();
        for (p, st) in &found {
            by_inode.entry(st.key()).or_default().push(p);
        }
        for t in &mut self.tails {
            t.checked_size = None;
            match by_inode.remove(&t.stat.key()) {
                Some(paths) => {
                    if t.missing_since.take().is_some() {
                        t.draining = false;
                    }
                    if !paths.contains(&&t.path) {
                        info!(from = %t.path.display(), to = %paths[0].display(), "File renamed; following it.");
                        self.stats.rotations.fetch_add(1, Ordering::Relaxed);
                        t.rename(paths[0]);
                        self.known.set_path(t.id, &t.name);
                    }
                }
                None => match t.missing_since {
                    None => {
                        info!(path = %t.path.display(), "File renamed away or deleted; reading it to its end.");
                        self.stats.rotations.fetch_add(1, Ordering::Relaxed);
                        t.missing_since = Some(now);
                    }
                    Some(since) if now.duration_since(since) >= self.s.rotate_wait => {
                        t.draining = true;
                    }
                    Some(_) => {}
                },
            }
        }
        let untracked: HashSet<(u64, u64)> = by_inode.into_keys().collect();
        let mut candidates: Vec<(&PathBuf, Stat)> = found
            .iter()
            .filter(|(_, st)| untracked.contains(&st.key()))
            .map(|(p, st)| (p, *st))
            .collect();
        // Files a checkpoint knows by inode first, so that a copy listed before its
        // original cannot take the original's checkpoint.
        let hinted = self.known.free_inodes();
        candidates.sort_by_key(|(_, st)| !hinted.contains(&st.key()));
        for (path, st) in candidates {
            self.consider(path, st, unix);
        }
        if !self.scanned {
            self.recover_rotated_while_down(unix);
        }
        let present: HashSet<(u64, u64)> = found.values().map(Stat::key).collect();
        self.deferred.retain(|k, _| present.contains(k));
        self.skipped.retain(|st| present.contains(&st.key()));
        self.finished.retain(|st| present.contains(&st.key()));
        self.failing.retain(|p| found.contains_key(p));
        self.known.prune(unix);
        self.scanned = true;
        self.update_gauges();
    }

    /// Decides about a path whose file is not followed.
    fn consider(&mut self, path: &Path, listed: Stat, unix: u64) {
        if self.finished.contains(&listed) || self.skipped.contains(&listed) {
            return;
        }
        if self.tails.iter().any(|t| t.stat.key() == listed.key()) {
            return; // a second name of a followed file
        }
        let gz = is_gz(path);
        let (stable, first_seen) = match self.deferred.get(&listed.key()) {
            Some((st, first)) => (*st == listed, *first),
            None => (false, !self.scanned),
        };
        if gz && !stable {
            self.deferred.insert(listed.key(), (listed, first_seen));
            return;
        }
        let opened = File::open(path).and_then(|f| {
            let m = f.metadata()?;
            Ok((f, Stat::of(&m)))
        });
        let (file, st) = match opened {
            Ok(o) => o,
            Err(e) => {
                failed(&mut self.failing, &self.stats, path, &e);
                return;
            }
        };
        if st.key() != listed.key() {
            return; // replaced since the listing: next rescan
        }
        let stable = stable && st == listed;
        let n = self.s.fingerprint_bytes;
        let head = if gz {
            read_head_gz(&file, n)
        } else {
            read_head(&file, st.size.min(n as u64) as usize)
        };
        let head = match head {
            Ok(h) => h,
            Err(e) => {
                failed(&mut self.failing, &self.stats, path, &e);
                if gz {
                    self.finished.insert(st);
                }
                return;
            }
        };
        let name: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
        let mut identity = self.known.identify(&head, st.dev, st.inode, stable);
        if matches!(identity, Identity::Copy)
            && !gz
            && self.differs_from_followed(&file, st.size, &head)
        {
            // Same first bytes (a long fixed header), different content: its own file.
            debug!(path = %path.display(), "Same first bytes as a followed file, other content: a file of its own.");
            identity = Identity::New;
        }
        let (id, start, skip_from, waiting) = match identity {
            Identity::Undecided => {
                self.deferred.insert(st.key(), (st, first_seen));
                return;
            }
            Identity::Copy => {
                debug!(path = %path.display(), "Same content as a followed file; not read.");
                self.skipped.insert(st);
                return;
            }
            Identity::Known {
                offset,
                same_inode: true,
                ..
            } if !gz && offset > st.size => {
                info!(path = %path.display(), offset, size = st.size, "File shrank since it was last read; reading it from the start.");
                self.stats.rotations.fetch_add(1, Ordering::Relaxed);
                let id = self.known.create(&head, st.dev, st.inode, &name, 0, unix);
                (id, 0, None, false)
            }
            Identity::Known { id, offset, .. } => {
                debug!(path = %path.display(), offset, "Following a known file.");
                self.known.claim(id, &head, st.dev, st.inode, &name, unix);
                (id, offset, None, !gz && offset > st.size)
            }
            Identity::New => {
                // A `.gz` waits one rescan to be still: the first scan's if seen there.
                let first = if gz { first_seen } else { !self.scanned };
                // A file where another was followed before the stop replaced it while
                // tripline was down: it is read from its beginning, whatever start_at.
                let replaced = first && self.known.was_followed_at(&name);
                if replaced {
                    info!(path = %path.display(), "File replaced while tripline was stopped; reading it from its beginning.");
                }
                let (start, skip_from) =
                    if !first || replaced || self.s.start_at == StartAt::Beginning {
                        (0, None)
                    } else if gz {
                        self.finished.insert(st);
                        return;
                    } else {
                        match end_position(&file, st.size, self.s.max_line) {
                            Ok(p) => p,
                            Err(e) => {
                                failed(&mut self.failing, &self.stats, path, &e);
                                return;
                            }
                        }
                    };
                info!(path = %path.display(), offset = start, "Following a new file.");
                let id = self
                    .known
                    .create(&head, st.dev, st.inode, &name, start, unix);
                (id, start, skip_from, false)
            }
        };
        self.deferred.remove(&st.key());
        let input = if gz {
            Input::Gzip(Box::new(MultiGzDecoder::new(file)))
        } else {
            Input::Plain(file)
        };
        match Tail::open(path, name, input, st, id, start, skip_from, waiting) {
            Ok(mut t) => {
                t.uid = self.known.get(id).map_or(0, |e| e.uid);
                self.tails.push(t);
            }
            Err(e) => {
                failed(&mut self.failing, &self.stats, path, &e);
                self.known.release(id, start, unix);
            }
        }
    }

    /// At the first scan after a start: a content followed before the stop and not
    /// found under the patterns was rotated while tripline was down. It is looked for
    /// among the siblings of the path it was followed under (`app.log.1`,
    /// `app.log-20241201`, `app.log.1.gz`…) by its fingerprint, and read from its
    /// checkpoint to its end, so its unread tail is not lost.
    fn recover_rotated_while_down(&mut self, unix: u64) {
        let followed: HashSet<(u64, u64)> = self.tails.iter().map(|t| t.stat.key()).collect();
        for (id, old_path, fp, offset) in self.known.unclaimed() {
            let old = Path::new(&old_path);
            let (Some(dir), Some(base)) = (old.parent(), old.file_name()) else {
                continue;
            };
            let base = base.to_string_lossy().into_owned();
            let Ok(rd) = fs::read_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }) else {
                continue;
            };
            let mut siblings: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.len() > base.len()
                            && n.starts_with(&base)
                            && matches!(n.as_bytes()[base.len()], b'.' | b'-' | b'_')
                    })
                })
                .collect();
            siblings.sort();
            for sib in siblings {
                let Ok(file) = File::open(&sib) else { continue };
                let Ok(m) = file.metadata() else { continue };
                let st = Stat::of(&m);
                if !m.is_file() || followed.contains(&st.key()) {
                    continue;
                }
                let gz = is_gz(&sib);
                let head = if gz {
                    read_head_gz(&file, fp.len)
                } else {
                    read_head(&file, (st.size.min(fp.len as u64)) as usize)
                };
                if !head.is_ok_and(|h| fp.matches(&h)) {
                    continue;
                }
                info!(path = %sib.display(), from = %old_path, offset, "Found a file rotated while tripline was stopped; reading its rest.");
                self.stats.rotations.fetch_add(1, Ordering::Relaxed);
                let name: Arc<str> = Arc::from(sib.to_string_lossy().as_ref());
                let head = read_head(&file, 0).unwrap_or_default();
                self.known.claim(id, &head, st.dev, st.inode, &name, unix);
                let input = if gz {
                    Input::Gzip(Box::new(MultiGzDecoder::new(file)))
                } else {
                    Input::Plain(file)
                };
                match Tail::open(&sib, name, input, st, id, offset, None, false) {
                    Ok(mut t) => {
                        t.draining = true;
                        t.uid = self.known.get(id).map_or(0, |e| e.uid);
                        self.tails.push(t);
                    }
                    Err(e) => {
                        failed(&mut self.failing, &self.stats, &sib, &e);
                        self.known.release(id, offset, unix);
                    }
                }
                break;
            }
        }
    }

    /// Whether `file` (whose first bytes are `head`) holds other bytes than the
    /// followed file with the same fingerprint, over their common length (up to
    /// [`COMPARE_MAX_BYTES`]): two files with one long header are two files; a copy
    /// (copytruncate's, a backup) is byte for byte the same and is not read twice.
    fn differs_from_followed(&self, file: &File, size: u64, head: &[u8]) -> bool {
        use std::os::unix::fs::FileExt;
        let n = self.s.fingerprint_bytes.min(head.len());
        let fp = Fingerprint::of(&head[..n]);
        let mut a = vec![0u8; 64 * 1024];
        let mut b = vec![0u8; 64 * 1024];
        for t in &self.tails {
            let Some(other) = t.plain_file() else {
                continue;
            };
            if self.known.get(t.id).map(|e| e.fingerprint) != Some(fp) {
                continue;
            }
            let common = size.min(t.size).min(COMPARE_MAX_BYTES);
            let mut at = 0u64;
            while at < common {
                let want = (common - at).min(a.len() as u64) as usize;
                let (ra, rb) = (
                    file.read_at(&mut a[..want], at),
                    other.read_at(&mut b[..want], at),
                );
                let (Ok(ga), Ok(gb)) = (ra, rb) else { break };
                let got = ga.min(gb);
                if got == 0 {
                    break;
                }
                if a[..got] != b[..got] {
                    return true;
                }
                at += got as u64;
            }
        }
        false
    }

    /// Reads the next batch, taking files in turn; `None` when nothing moved.
    pub(super) fn next_batch(&mut self) -> Option<Produced> {
        let n = self.tails.len();
        if n == 0 {
            return None;
        }
        let mut out = Produced::default();
        let mut budget = Budget {
            lines: self.s.batch_lines,
            bytes: BATCH_BYTES,
        };
        for k in 0..n {
            if budget.exhausted() {
                break;
            }
            let t = &mut self.tails[(self.cursor + k) % n];
            let (id0, c0) = (t.id, t.committed());
            if let Err(e) = poll(
                t,
                &mut self.known,
                &self.s,
                &self.stats,
                &mut out.lines,
                &mut budget,
            ) {
                failed(&mut self.failing, &self.stats, &t.path, &e);
                t.done = true;
            } else if !self.failing.is_empty() {
                self.failing.remove(&t.path);
            }
            if t.id != id0 || t.committed() != c0 {
                out.ends.push((t.id, t.committed()));
            }
        }
        self.cursor = (self.cursor + 1) % n;
        if self.tails.iter().any(|t| t.done) {
            let unix = unix_now();
            let (known, finished) = (&mut self.known, &mut self.finished);
            self.tails.retain(|t| {
                if !t.done {
                    return true;
                }
                debug!(path = %t.path.display(), offset = t.committed(), "Let go of file.");
                known.release(t.id, t.committed(), unix);
                if t.is_gz() {
                    finished.insert(t.stat);
                }
                false
            });
        }
        self.update_gauges();
        if out.lines.is_empty() && out.ends.is_empty() {
            None
        } else {
            Some(out)
        }
    }

    fn update_gauges(&self) {
        let lag: u64 = self
            .tails
            .iter()
            .filter(|t| !t.is_gz())
            .map(|t| t.size.saturating_sub(t.committed()))
            .sum();
        self.stats.lag_bytes.store(lag, Ordering::Relaxed);
        self.stats
            .open_files
            .store(self.tails.len() as u64, Ordering::Relaxed);
    }
}
