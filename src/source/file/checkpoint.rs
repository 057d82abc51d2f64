//! File identities and checkpoints of the file source ([`super`]).
//!
//! A followed file is known by what it holds, not by its name. Its [`Fingerprint`] is a
//! 64-bit FNV-1a hash of its first bytes, up to `fingerprint_bytes` (256 by default),
//! with its device and inode kept as a hint. Each distinct content is one [`Entry`]
//! that follows the file through renames and holds the offset of the first byte whose
//! line was not yet acknowledged downstream. A file truncated in place (copytruncate)
//! starts a new entry at offset 0; the old entry stays, so that the rotated copy, if a
//! pattern matches it, resumes where reading stopped instead of being read again.
//!
//! How a file not being followed is identified ([`Checkpoints::identify`]), in order:
//! 1. an entry not being followed with the same device and inode whose fingerprint
//!    matches the file's first bytes: the same file (it may have grown: a fingerprint
//!    taken while the file was short is compared on that many bytes);
//! 2. with a full fingerprint (the file holds at least `fingerprint_bytes`): an entry
//!    not being followed with the same full fingerprint is the same content (a renamed
//!    file seen again, a rotated copy, the `.gz` of a file already read); a file being
//!    followed with it makes this one a copy, which is skipped;
//! 3. a shorter file whose bytes and a known file's first bytes are one a prefix of
//!    the other is undecided while it changes (a copy being written), and once its
//!    size holds still it is taken as that file (a copy: skipped if that file is being
//!    followed, resumed otherwise). An empty file is always undecided: nothing to read.
//! 4. anything else is a new file.
//!
//! Rule 3 needs the first bytes themselves, which are kept in memory only; after a
//! restart a short file is recognised by rule 1 only (same inode). A file whose full
//! fingerprint equals that of a file being followed is a copy only if their bytes agree
//! over their common length (the reader compares up to 1 MiB): two files with one
//! long fixed header are two files; after a restart each finds its own entry by rule
//! 1 (same device and inode).
//!
//! Persistence: `checkpoints.json` in the source's state directory, replaced atomically
//! (write a temporary file, fsync it, rename it over, fsync the directory), so a crash
//! at any point leaves the old or the new checkpoint, never a torn one. The directory is
//! locked (`flock` on `checkpoints.lock`) against a second process. Entries of files not
//! seen for [`FORGET_AFTER_SECS`] are dropped. Failures of the store are
//! [`CheckpointError`]s naming the path; the file source wraps them in its own error.
//!
//! Costs: [`Checkpoints::identify`] is linear in the number of entries (one per content
//! seen in the last day) and runs only for paths not being followed; a write serialises
//! every entry (about 150 bytes each) and costs two fsyncs.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Name of the checkpoint file in the state directory.
pub const CHECKPOINT_FILE: &str = "checkpoints.json";
/// Name of the lock file in the state directory.
pub const LOCK_FILE: &str = "checkpoints.lock";
/// Entries of files not followed for this long are dropped.
pub const FORGET_AFTER_SECS: u64 = 24 * 3600;
const FORMAT_VERSION: u32 = 1;

/// A checkpoint store failure, with the path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: cannot use the state directory: {error}")]
    StateDir {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    #[error("{path}: locked by another tripline process")]
    Locked { path: PathBuf },
    #[error("{path}: cannot read checkpoints: {error}")]
    Read {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    #[error("{path}: invalid checkpoints ({reason}); remove the file to start over")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: cannot write checkpoints: {error}")]
    Write {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
}

/// Identifies an [`Entry`] within one run.
pub type EntryId = u64;

/// FNV-1a, 64 bits: stable across builds and platforms (it is persisted), and fast
/// enough for a few hundred bytes per file and rescan.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A fresh, random, non-zero file content id.
fn new_uid() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0.max(1)
}

/// The hash of a file's first `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    pub hash: u64,
    pub len: usize,
}

impl Fingerprint {
    pub fn of(head: &[u8]) -> Fingerprint {
        Fingerprint {
            hash: fnv1a(head),
            len: head.len(),
        }
    }

    /// Whether `head` (a file's first bytes) begins with the fingerprinted bytes.
    pub fn matches(&self, head: &[u8]) -> bool {
        head.len() >= self.len && fnv1a(&head[..self.len]) == self.hash
    }
}

/// What is known about one file content.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Persistent id of this content, never reused: where observations of its lines
    /// say they came from (`file:<id>`), so a line read again after a restart is
    /// recognised by its id and offset.
    pub uid: u64,
    pub fingerprint: Fingerprint,
    pub dev: u64,
    pub inode: u64,
    /// The path it was last followed under (informational).
    pub path: String,
    /// The first byte whose line was not acknowledged: where a restart resumes.
    pub offset: u64,
    /// Unix seconds when it was last followed.
    pub seen: u64,
    /// Whether a file is being followed for it now.
    pub live: bool,
    /// In memory only: where reading stopped when it was last let go in this run (a
    /// copy resumes there, not at `offset`, which lags by the batches in flight).
    pub read_offset: Option<u64>,
    /// In memory only: the first bytes (up to `fingerprint_bytes`), empty if unknown.
    pub head: Vec<u8>,
}

impl Entry {
    fn resume_offset(&self) -> u64 {
        self.read_offset.unwrap_or(self.offset)
    }
}

/// The answer of [`Checkpoints::identify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A known content not being followed: follow it from `offset`. `same_inode`
    /// tells a file seen again from a copy of it.
    Known {
        id: EntryId,
        offset: u64,
        same_inode: bool,
    },
    /// The content of a file being followed: a copy, not read.
    Copy,
    /// Cannot be told apart yet; look again at the next rescan.
    Undecided,
    /// Never seen.
    New,
}

/// All known file contents of one file source.
#[derive(Debug)]
pub struct Checkpoints {
    entries: BTreeMap<EntryId, Entry>,
    next_id: EntryId,
    fingerprint_bytes: usize,
    dirty: bool,
    urgent: bool,
    releases: u64,
}

impl Checkpoints {
    pub fn new(fingerprint_bytes: usize) -> Checkpoints {
        Checkpoints {
            entries: BTreeMap::new(),
            next_id: 0,
            fingerprint_bytes: fingerprint_bytes.max(1),
            dirty: false,
            urgent: false,
            releases: 0,
        }
    }

    /// Loads `path`; a missing file is an empty set.
    pub fn load(path: &Path, fingerprint_bytes: usize) -> Result<Checkpoints, CheckpointError> {
        let mut cp = Checkpoints::new(fingerprint_bytes);
        let text = match fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(cp),
            Err(error) => {
                return Err(CheckpointError::Read {
                    path: path.to_path_buf(),
                    error,
                })
            }
        };
        let state: WireState =
            serde_json::from_slice(&text).map_err(|e| CheckpointError::Format {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if state.version != FORMAT_VERSION {
            return Err(CheckpointError::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "version {} (this build reads {FORMAT_VERSION})",
                    state.version
                ),
            });
        }
        for f in state.files {
            cp.insert(Entry {
                // Checkpoints written before ids existed get one now.
                uid: if f.id == 0 { new_uid() } else { f.id },
                fingerprint: Fingerprint {
                    hash: f.fingerprint,
                    len: f.fingerprint_bytes,
                },
                dev: f.dev,
                inode: f.inode,
                path: f.path,
                offset: f.offset,
                seen: f.seen,
                live: false,
                read_offset: None,
                head: Vec::new(),
            });
        }
        Ok(cp)
    }

    fn insert(&mut self, e: Entry) -> EntryId {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(id, e);
        self.dirty = true;
        id
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, id: EntryId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Identifies a file not being followed from its first bytes (`head`, at most
    /// `fingerprint_bytes`); `stable` says its size and mtime are those of the previous
    /// look. See the module documentation for the rules.
    pub fn identify(&self, head: &[u8], dev: u64, inode: u64, stable: bool) -> Identity {
        // 1. The same inode with the same beginning; the most recent entry first.
        for (&id, e) in self.entries.iter().rev() {
            if !e.live && e.dev == dev && e.inode == inode && e.fingerprint.matches(head) {
                return Identity::Known {
                    id,
                    offset: e.resume_offset(),
                    same_inode: true,
                };
            }
        }
        if head.len() >= self.fingerprint_bytes {
            // 2. A full fingerprint names the content wherever it is.
            let fp = Fingerprint::of(&head[..self.fingerprint_bytes]);
            let mut copy = false;
            for (&id, e) in self.entries.iter().rev() {
                if e.fingerprint != fp {
                    continue;
                }
                if !e.live {
                    return Identity::Known {
                        id,
                        offset: e.resume_offset(),
                        same_inode: false,
                    };
                }
                copy = true;
            }
            return if copy { Identity::Copy } else { Identity::New };
        }
        // 3. Short: related to a known beginning?
        if head.is_empty() {
            return Identity::Undecided;
        }
        let mut live_related = false;
        let mut free_related = None;
        for (&id, e) in self.entries.iter().rev() {
            if e.head.is_empty() || !(head.starts_with(&e.head) || e.head.starts_with(head)) {
                continue;
            }
            if e.live {
                live_related = true;
            } else if free_related.is_none() {
                free_related = Some((id, e.resume_offset()));
            }
        }
        match (live_related, free_related) {
            (false, None) => Identity::New,
            _ if !stable => Identity::Undecided,
            (_, Some((id, offset))) => Identity::Known {
                id,
                offset,
                same_inode: false,
            },
            (true, None) => Identity::Copy,
        }
    }

    /// Whether a content not followed now was last followed under `path`: a file
    /// there that is new to us replaced it (rotated while tripline was stopped).
    pub fn was_followed_at(&self, path: &str) -> bool {
        self.entries.values().any(|e| !e.live && e.path == path)
    }

    /// The contents not followed now: (id, path last followed under, fingerprint,
    /// where to resume).
    pub fn unclaimed(&self) -> Vec<(EntryId, String, Fingerprint, u64)> {
        self.entries
            .iter()
            .filter(|(_, e)| !e.live)
            .map(|(&id, e)| (id, e.path.clone(), e.fingerprint, e.resume_offset()))
            .collect()
    }

    /// Device and inode of the entries not being followed.
    pub fn free_inodes(&self) -> HashSet<(u64, u64)> {
        self.entries
            .values()
            .filter(|e| !e.live)
            .map(|e| (e.dev, e.inode))
            .collect()
    }

    /// Records a new content, followed from `offset`. Asks for an early write
    /// ([`Checkpoints::take_urgent`]), so that a crash soon after does not make it
    /// look new again.
    pub fn create(
        &mut self,
        head: &[u8],
        dev: u64,
        inode: u64,
        path: &str,
        offset: u64,
        now: u64,
    ) -> EntryId {
        let head = &head[..head.len().min(self.fingerprint_bytes)];
        self.urgent = true;
        self.insert(Entry {
            uid: new_uid(),
            fingerprint: Fingerprint::of(head),
            dev,
            inode,
            path: path.to_string(),
            offset,
            seen: now,
            live: true,
            read_offset: None,
            head: head.to_vec(),
        })
    }

    /// Marks a known entry as followed again, by the file at `dev`/`inode`.
    pub fn claim(&mut self, id: EntryId, head: &[u8], dev: u64, inode: u64, path: &str, now: u64) {
        let n = self.fingerprint_bytes;
        if let Some(e) = self.entries.get_mut(&id) {
            e.live = true;
            e.read_offset = None;
            e.dev = dev;
            e.inode = inode;
            e.path = path.to_string();
            e.seen = now;
            if head.len() > e.head.len() {
                e.head = head[..head.len().min(n)].to_vec();
            }
            self.dirty = true;
        }
    }

    /// The file of `id` is no longer followed; reading stopped at `read_offset`.
    pub fn release(&mut self, id: EntryId, read_offset: u64, now: u64) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.live = false;
            e.read_offset = Some(read_offset);
            e.seen = now;
            self.dirty = true;
            self.releases += 1;
        }
    }

    /// Counts [`Checkpoints::release`] calls: a change means some content is no
    /// longer followed, so files skipped as its copies deserve another look.
    pub fn releases(&self) -> u64 {
        self.releases
    }

    /// The file grew past its fingerprint: fingerprint `head` (which begins with the
    /// old fingerprinted bytes) instead.
    pub fn refine(&mut self, id: EntryId, head: &[u8]) {
        let head = &head[..head.len().min(self.fingerprint_bytes)];
        if let Some(e) = self.entries.get_mut(&id) {
            if head.len() > e.fingerprint.len || head.len() > e.head.len() {
                e.fingerprint = Fingerprint::of(head);
                e.head = head.to_vec();
                self.dirty = true;
            }
        }
    }

    pub fn set_path(&mut self, id: EntryId, path: &str) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.path = path.to_string();
            self.dirty = true;
        }
    }

    /// Lines up to `end` were acknowledged.
    pub fn advance(&mut self, id: EntryId, end: u64) {
        if let Some(e) = self.entries.get_mut(&id) {
            if end > e.offset {
                e.offset = end;
                self.dirty = true;
            }
        }
    }

    /// Drops entries not followed for [`FORGET_AFTER_SECS`].
    pub fn prune(&mut self, now: u64) {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| e.live || now.saturating_sub(e.seen) <= FORGET_AFTER_SECS);
        if self.entries.len() != before {
            self.dirty = true;
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Whether a new content was recorded since the last snapshot; clears it.
    pub fn take_urgent(&mut self) -> bool {
        std::mem::take(&mut self.urgent)
    }

    /// What to persist now; clears the dirty mark (set it again if the write fails).
    pub fn snapshot(&mut self, now: u64) -> Vec<WireFile> {
        self.dirty = false;
        self.urgent = false;
        self.entries
            .values_mut()
            .map(|e| {
                if e.live {
                    e.seen = now;
                }
                WireFile {
                    id: e.uid,
                    fingerprint: e.fingerprint.hash,
                    fingerprint_bytes: e.fingerprint.len,
                    dev: e.dev,
                    inode: e.inode,
                    offset: e.offset,
                    path: e.path.clone(),
                    seen: e.seen,
                }
            })
            .collect()
    }
}

/// One entry as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFile {
    /// The entry's persistent id ([`Entry::uid`]); 0 in checkpoints written before
    /// ids existed (one is given at load).
    #[serde(default, with = "hex_u64")]
    pub id: u64,
    /// FNV-1a 64 of the first `fingerprint_bytes` bytes, as 16 hex digits.
    #[serde(with = "hex_u64")]
    pub fingerprint: u64,
    pub fingerprint_bytes: usize,
    pub dev: u64,
    pub inode: u64,
    /// First byte not acknowledged.
    pub offset: u64,
    pub path: String,
    /// Unix seconds when last followed.
    pub seen: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireState {
    version: u32,
    files: Vec<WireFile>,
}

mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        u64::from_str_radix(&s, 16).map_err(serde::de::Error::custom)
    }
}

/// Writes `files` to `path` atomically: temporary file, fsync, rename, fsync of the
/// directory.
pub fn store(path: &Path, files: Vec<WireFile>) -> Result<(), CheckpointError> {
    let err = |error| CheckpointError::Write {
        path: path.to_path_buf(),
        error,
    };
    let state = WireState {
        version: FORMAT_VERSION,
        files,
    };
    let mut text = serde_json::to_vec_pretty(&state).map_err(|e| err(io::Error::other(e)))?;
    text.push(b'\n');
    let tmp = tmp_path(path);
    let mut f = File::create(&tmp).map_err(err)?;
    f.write_all(&text).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    fs::rename(&tmp, path).map_err(err)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An exclusive lock on a state directory, held while the file is open.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Locks `dir` (created if missing). Waits up to `wait` for a process that is
    /// shutting down to let go.
    pub fn acquire(dir: &Path, wait: Duration) -> Result<StateLock, CheckpointError> {
        let path = dir.join(LOCK_FILE);
        let state_err = |error| CheckpointError::StateDir {
            path: dir.to_path_buf(),
            error,
        };
        fs::create_dir_all(dir).map_err(state_err)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(state_err)?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            // SAFETY: flock only reads the descriptor, which `file` owns and keeps open
            // for the duration of the call.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(StateLock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(state_err(e));
            }
            if std::time::Instant::now() >= deadline {
                return Err(CheckpointError::Locked { path });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = 16;

    fn known(cp: &mut Checkpoints, head: &[u8], inode: u64, live: bool) -> EntryId {
        let id = cp.create(head, 1, inode, "p", 0, 100);
        if !live {
            cp.release(id, 40, 100);
        }
        id
    }

    #[test]
    fn fnv1a_is_the_reference_function() {
        // Test vectors of the FNV reference implementation.
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn identify_rules() {
        let full_a = b"aaaaaaaaaaaaaaaa-and-more";
        let full_b = b"bbbbbbbbbbbbbbbb";
        let mut cp = Checkpoints::new(N);
        let live_a = known(&mut cp, full_a, 10, true);
        let free_b = known(&mut cp, full_b, 11, false);
        let free_short = known(&mut cp, b"short\n", 12, false);
        let live_short = known(&mut cp, b"live\n", 13, true);
        let _ = (live_a, live_short);
        // (head, inode, stable, expected)
        let table: Vec<(&[u8], u64, bool, Identity)> = vec![
            // A copy of a file being followed.
            (&full_a[..N], 99, true, Identity::Copy),
            // The same inode as a released entry, same beginning, grown.
            (
                b"short\nmore\n",
                12,
                false,
                Identity::Known {
                    id: free_short,
                    offset: 40,
                    same_inode: true,
                },
            ),
            // Full fingerprint of a released entry, elsewhere.
            (
                full_b,
                77,
                false,
                Identity::Known {
                    id: free_b,
                    offset: 40,
                    same_inode: false,
                },
            ),
            // Short, prefix of a released entry: undecided until stable.
            (b"sho", 50, false, Identity::Undecided),
            (
                b"sho",
                50,
                true,
                Identity::Known {
                    id: free_short,
                    offset: 40,
                    same_inode: false,
                },
            ),
            // Short, prefix of a followed file: a copy once stable.
            (b"liv", 51, false, Identity::Undecided),
            (b"live\n", 51, true, Identity::Copy),
            // Unrelated.
            (b"other\n", 52, false, Identity::New),
            (b"cccccccccccccccc", 53, false, Identity::New),
            // Empty: nothing to read yet.
            (b"", 54, true, Identity::Undecided),
        ];
        for (head, inode, stable, want) in table {
            assert_eq!(
                cp.identify(head, 1, inode, stable),
                want,
                "head {:?} inode {inode} stable {stable}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn copy_of_a_truncated_file_resumes_where_reading_stopped() {
        let mut cp = Checkpoints::new(N);
        let head = b"0123456789abcdef";
        let id = cp.create(head, 1, 5, "app.log", 0, 1);
        assert_eq!(cp.identify(head, 1, 6, false), Identity::Copy);
        cp.advance(id, 100);
        cp.release(id, 250, 2); // truncated: reading had reached 250
        assert_eq!(
            cp.identify(head, 1, 6, false),
            Identity::Known {
                id,
                offset: 250,
                same_inode: false
            }
        );
    }

    #[test]
    fn store_load_round_trip_and_prune() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(CHECKPOINT_FILE);
        let mut cp = Checkpoints::new(N);
        let a = cp.create(b"0123456789abcdefXX", 3, 4, "/x/app.log", 0, 1000);
        cp.advance(a, 4096);
        let b = cp.create(b"short", 3, 5, "/x/b.log", 7, 1000);
        cp.release(b, 7, 1000);
        store(&path, cp.snapshot(2000)).expect("store");
        assert!(!tmp_path(&path).exists());
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.contains("\"version\": 1"), "{text}");
        let mut back = Checkpoints::load(&path, N).expect("load");
        assert_eq!(back.len(), 2);
        assert_eq!(
            back.identify(b"0123456789abcdef", 3, 4, false),
            Identity::Known {
                id: 0,
                offset: 4096,
                same_inode: true
            }
        );
        // Short entries are recognised by inode only after a restart.
        assert!(matches!(
            back.identify(b"short", 3, 5, false),
            Identity::Known { offset: 7, .. }
        ));
        assert_eq!(back.identify(b"short", 3, 6, false), Identity::New);
        back.prune(1001 + FORGET_AFTER_SECS);
        assert_eq!(back.len(), 1, "b was last seen at 1000, a at 2000");
        back.prune(2001 + FORGET_AFTER_SECS);
        assert!(back.is_empty());
    }

    #[test]
    fn bad_checkpoints_are_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(CHECKPOINT_FILE);
        assert!(Checkpoints::load(&path, N)
            .expect("missing is empty")
            .is_empty());
        fs::write(&path, "{\"version\": 9, \"files\": []}").expect("write");
        let e = Checkpoints::load(&path, N).expect_err("version");
        assert!(e.to_string().contains("checkpoints.json"), "{e}");
        fs::write(
            &path,
            "{\"version\": 1, \"files\": [{\"fingerprint\": \"zz\"}]}",
        )
        .expect("write");
        assert!(Checkpoints::load(&path, N).is_err());
    }

    #[test]
    fn state_lock_is_exclusive() {
        let dir = tempfile::tempdir().expect("temp dir");
        let held = StateLock::acquire(dir.path(), Duration::ZERO).expect("lock");
        let e = StateLock::acquire(dir.path(), Duration::from_millis(100)).expect_err("held");
        assert!(matches!(e, CheckpointError::Locked { .. }), "{e}");
        drop(held);
        StateLock::acquire(dir.path(), Duration::ZERO).expect("free again");
    }
}
