//! The intel cache snapshot: what loading each file of a synced source's data
//! directory gave, kept beside it (`<state>/intel/<name>/snapshot.bin`) so that
//! loading the source again parses only the files that changed.
//!
//! A snapshot holds one entry per data file: the file's name, size, modification time
//! and inode (its *signature*), and the [`Part`] loading it added to the store (values,
//! metas, events, tags, decay inputs, skips and counts). Loading a cache spec
//! ([`super::load`]) replays the entry of every file whose signature is unchanged and
//! parses the others (a MISP feed directory per event file, any other directory or
//! file per file), then rewrites the snapshot when anything differed. The sync runner's
//! count of a pass's new data goes through the same path, so after a pass that changed
//! a few events the snapshot already holds the new data, and the sidecar's reload
//! replays it.
//!
//! Invariants:
//! - Replaying an entry leaves the store as parsing the file would have (pinned by the
//!   `intel_cache` tests: same indicators, same provenances, same counts).
//! - An entry is trusted only for a file with the same signature. Fetchers replace
//!   files by rename, never in place ([`super::sync`]), so a changed file has a new
//!   inode; a file edited in place within one clock tick and to the same size would be
//!   missed (not something the cache's writers do).
//! - The snapshot records the [`StoreOptions`] it was made with (`include_non_ids`,
//!   the broad policy); under other options it is ignored and rewritten. Stores that
//!   keep excluded metas (`intel lookup`) do not use snapshots, and files whose load
//!   refused a too broad indicator have no entry (parsed each time, twice), because a
//!   [`Part`] carries neither.
//! - Written whole to a unique temporary name, fsynced, renamed; read with a checksum.
//!   A missing, stale or corrupt snapshot costs a full parse and is rewritten; a
//!   corrupt one is logged and counted ([`corrupt_total`], exported as the metric
//!   `tripline_intel_snapshot_corrupt_total`), never an error.
//!
//! Costs: about 60 bytes per MISP indicator on disk (the attribute UUID is 16 bytes,
//! integers are varints); reading and replaying a million is about a third of the
//! time of parsing the MISP JSON they came from (see `benches/intel_cache.sh`);
//! writing is one pass over the store's parts.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::expiry::DecayInput;
use super::model::{EventInfo, Kind, Meta, Skipped, Source, Tlp};
use super::store::{Part, SourceLosses};
use super::{IntelError, IntelStore, StoreOptions};

const MAGIC: &[u8; 8] = b"TRLSNAP\0";
/// Bumped whenever the encoding or what a [`Part`] means changes.
const VERSION: u32 = 1;
/// The snapshot's file name in a source's directory.
pub const FILE_NAME: &str = "snapshot.bin";

/// A snapshot's entries: data file (relative to the spec directory) → its signature
/// and what loading it gave.
pub type Entries = HashMap<String, (Signature, Part)>;

static CORRUPT: AtomicU64 = AtomicU64::new(0);

/// Snapshots found corrupt (unreadable, bad checksum or encoding) by this process.
pub fn corrupt_total() -> u64 {
    CORRUPT.load(Ordering::Relaxed)
}

/// A data file's identity: size, modification time (ns) and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    pub size: u64,
    pub mtime_ns: i64,
    pub ino: u64,
}

impl Signature {
    pub fn of(path: &Path) -> Option<Signature> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Signature {
            size: m.size(),
            mtime_ns: m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec(),
            ino: m.ino(),
        })
    }
}

/// The snapshot of a cache spec: where it lives, when the spec is a synced source's
/// data (`…/intel/<name>/{data,old,staging}` loaded as `<name>`), else `None` (user
/// paths never get one).
pub fn path_for(name: Option<&str>, dir: &Path) -> Option<PathBuf> {
    let leaf = dir.file_name()?.to_str()?;
    if !matches!(leaf, "data" | "old" | "staging") {
        return None;
    }
    let source_dir = dir.parent()?;
    let intel = source_dir.parent()?;
    if source_dir.file_name()?.to_str()? != name? || intel.file_name()?.to_str()? != "intel" {
        return None;
    }
    Some(source_dir.join(FILE_NAME))
}

/// The loading side: the entries read from the last snapshot, and those of this load.
pub struct Loader {
    path: PathBuf,
    root: PathBuf,
    options: StoreOptions,
    old: HashMap<String, (Signature, Part)>,
    new: BTreeMap<String, (Signature, Part)>,
    changed: bool,
    /// Files replayed and parsed by this load.
    pub replayed: u64,
    pub parsed: u64,
}

impl Loader {
    /// Opens the snapshot at `path` for loading `root` with `options`. Missing, stale
    /// (other options, other version) or corrupt: an empty one (corrupt is logged and
    /// counted).
    pub fn open(path: PathBuf, root: &Path, options: StoreOptions) -> Loader {
        let (old, changed) = match read(&path, &options, &root.to_string_lossy()) {
            Ok(Some(entries)) => (entries, false),
            Ok(None) => (HashMap::new(), true),
            Err(why) => {
                CORRUPT.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(path = %path.display(), error = %why,
                    "Intel cache snapshot unreadable; parsing the data and writing it again.");
                (HashMap::new(), true)
            }
        };
        Loader {
            path,
            root: root.to_path_buf(),
            options,
            old,
            new: BTreeMap::new(),
            changed,
            replayed: 0,
            parsed: 0,
        }
    }

    /// What replaying every entry would add at most: links and value bytes per
    /// [`Kind`] (indexed by `Kind as usize`), and metas.
    pub fn sizes(&self) -> (Vec<(usize, usize)>, usize) {
        let mut kinds = vec![(0usize, 0usize); Kind::ALL.len()];
        let mut metas = 0;
        for (_, part) in self.old.values() {
            metas += part.metas.len();
            for (kind, value, _, _) in &part.links {
                if let Some(k) = kinds.get_mut(*kind as usize) {
                    k.0 += 1;
                    k.1 += value.len();
                }
            }
        }
        (kinds, metas)
    }

    fn key(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    /// Loads one file into `store`: replays its entry when the file is unchanged,
    /// else runs `load` on a store of its own (holding `into_source`'s source when
    /// given) and replays what that gave. `load`'s error is returned (the file then
    /// has no entry).
    pub fn file(
        &mut self,
        store: &mut IntelStore,
        path: &Path,
        into_source: Option<u32>,
        mut load: impl FnMut(&mut IntelStore, Option<u32>) -> Result<(), IntelError>,
    ) -> Result<(), IntelError> {
        let key = self.key(path);
        let sig = Signature::of(path);
        if let (Some(sig), Some((old_sig, _))) = (sig, self.old.get(&key)) {
            if *old_sig == sig {
                if let Some((sig, part)) = self.old.remove(&key) {
                    store.absorb(&part, into_source);
                    self.new.insert(key, (sig, part));
                    self.replayed += 1;
                    return Ok(());
                }
            }
        }
        self.parsed += 1;
        let source = into_source.and_then(|s| store.sources.get(s as usize).cloned());
        let mut own = IntelStore::for_part(store.options, source);
        let result = load(&mut own, into_source.map(|_| 0));
        let Some(part) = Part::from_store(&own) else {
            // Not replayable (see the module doc): loaded again, directly.
            return load(store, into_source);
        };
        store.absorb(&part, into_source);
        if let (Ok(()), Some(sig)) = (&result, sig) {
            self.changed = true;
            self.new.insert(key, (sig, part));
        }
        result
    }

    /// Writes the snapshot when this load differed from it (a file parsed, added or
    /// gone). A failure to write is logged: the next load parses again.
    pub fn finish(self) {
        let gone = !self.old.is_empty();
        if !(self.changed || gone) {
            return;
        }
        let bytes = encode(&self.new, &self.options, &self.root.to_string_lossy());
        if let Err(e) = write_unique(&self.path, &bytes) {
            tracing::warn!(path = %self.path.display(), error = %e,
                "Cannot write the intel cache snapshot; the next load parses the data again.");
        } else {
            tracing::debug!(path = %self.path.display(), files = self.new.len(),
                replayed = self.replayed, parsed = self.parsed, bytes = bytes.len(),
                "Wrote the intel cache snapshot.");
        }
    }
}

/// Writes `bytes` to `path` through a temporary name unique to this process and call
/// (two threads of one process may write one snapshot), fsync, rename.
fn write_unique(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{FILE_NAME}.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn options_code(o: &StoreOptions) -> [u8; 4] {
    [
        u8::from(o.include_non_ids),
        u8::from(o.broad.allow),
        o.broad.min_prefix_v4,
        o.broad.min_prefix_v6,
    ]
}

fn checksum(bytes: &[u8]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x7472_6970_6c69_6e65).hash_one(bytes)
}

/// Reads a snapshot: `Ok(None)` when missing or made for other options or another
/// version, `Err` when corrupt.
fn read(path: &Path, options: &StoreOptions, root: &str) -> Result<Option<Entries>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    decode(&bytes, options, root)
}

/// The options a snapshot was made with (the sync runner counts a pass's data with
/// them, so that its snapshot serves the sidecar's next load).
pub fn options_of(path: &Path) -> Option<StoreOptions> {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if &head[..8] != MAGIC || head[8..12] != VERSION.to_le_bytes() {
        return None;
    }
    Some(StoreOptions {
        include_non_ids: head[12] != 0,
        keep_excluded: false,
        broad: super::broad::BroadPolicy {
            allow: head[13] != 0,
            min_prefix_v4: head[14],
            min_prefix_v6: head[15],
        },
    })
}

/// Parts recorded while loading the data under `from` (a pass's `staging/`), replayed
/// under `to` (`data/` after the swap): locations name the files where they are now.
fn relocate(part: &mut Part, from: &str, to: &str) {
    let fix = |s: &mut String| {
        if let Some(rest) = s.strip_prefix(from) {
            *s = format!("{to}{rest}");
        }
    };
    for src in &mut part.sources {
        fix(&mut src.location);
    }
    for (s, _) in &mut part.skipped {
        fix(&mut s.location);
    }
    for l in &mut part.losses_by_source {
        if let Some(s) = &mut l.first_skipped {
            fix(&mut s.location);
        }
    }
}

/// Decodes a snapshot (see [`read`]).
pub fn decode(
    bytes: &[u8],
    options: &StoreOptions,
    current_root: &str,
) -> Result<Option<Entries>, String> {
    if bytes.len() < MAGIC.len() + 4 + 4 + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a tripline intel snapshot".into());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let mut sum_bytes = [0u8; 8];
    sum_bytes.copy_from_slice(sum);
    if checksum(body) != u64::from_le_bytes(sum_bytes) {
        return Err("checksum mismatch (truncated or damaged)".into());
    }
    let mut r = Reader {
        b: body,
        at: MAGIC.len(),
    };
    let version = r.fixed_u32()?;
    if version != VERSION {
        return Ok(None);
    }
    let code = r.bytes(4)?;
    if code != options_code(options) {
        return Ok(None);
    }
    let root = r.string()?;
    let n = r.len()?;
    let mut out = HashMap::with_capacity(n);
    for _ in 0..n {
        let key = r.string()?;
        let sig = Signature {
            size: r.u64()?,
            mtime_ns: r.i64()?,
            ino: r.u64()?,
        };
        let mut part = r.part()?;
        if root != current_root {
            relocate(&mut part, &root, current_root);
        }
        out.insert(key, (sig, part));
    }
    if r.at != r.b.len() {
        return Err("trailing bytes".into());
    }
    Ok(Some(out))
}

/// Encodes entries for `options` (see the module doc).
pub fn encode(
    entries: &BTreeMap<String, (Signature, Part)>,
    options: &StoreOptions,
    root: &str,
) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(
        64 + entries.values().map(|(_, p)| p.len() * 48).sum::<usize>(),
    ));
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&VERSION.to_le_bytes());
    w.0.extend_from_slice(&options_code(options));
    w.str(root);
    w.u64(entries.len() as u64);
    for (key, (sig, part)) in entries {
        w.str(key);
        w.u64(sig.size);
        w.i64(sig.mtime_ns);
        w.u64(sig.ino);
        w.part(part);
    }
    let sum = checksum(&w.0);
    w.0.extend_from_slice(&sum.to_le_bytes());
    w.0
}

const FORMATS: &[&str] = &["misp", "misp-feed", "stix", "list", "csv"];
const WITHDRAWN: &[&str] = &["deleted", "revoked"];
const TLPS: [Tlp; 5] = [
    Tlp::Clear,
    Tlp::Green,
    Tlp::Amber,
    Tlp::AmberStrict,
    Tlp::Red,
];

fn tlp_code(t: Tlp) -> u64 {
    TLPS.iter().position(|&x| x == t).unwrap_or(0) as u64
}

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u64(0),
            Some(s) => {
                self.u64(s.len() as u64 + 1);
                self.0.extend_from_slice(s.as_bytes());
            }
        }
    }
    /// `None` as 0, else `v + 1`.
    fn opt_u64(&mut self, v: Option<u64>) {
        self.u64(v.map_or(0, |v| v + 1));
    }
    fn skipped(&mut self, s: &Skipped) {
        self.str(&s.location);
        self.str(&s.reason);
    }
    fn opt_skipped(&mut self, s: Option<&Skipped>) {
        self.u64(u64::from(s.is_some()));
        if let Some(s) = s {
            self.skipped(s);
        }
    }
    fn counts(&mut self, m: &BTreeMap<String, u64>) {
        self.u64(m.len() as u64);
        for (k, n) in m {
            self.str(k);
            self.u64(*n);
        }
    }
    fn part(&mut self, p: &Part) {
        self.u64(p.sources.len() as u64);
        for (i, s) in p.sources.iter().enumerate() {
            self.str(&s.name);
            self.u64(FORMATS.iter().position(|f| *f == s.format).unwrap_or(0) as u64);
            self.str(&s.location);
            self.opt_str(s.provider.as_deref());
            self.u64(p.records_by_source.get(i).copied().unwrap_or(0));
            let l = p.losses_by_source.get(i).cloned().unwrap_or_default();
            self.u64(l.skipped);
            self.u64(l.unsupported);
            self.u64(l.refused);
            self.opt_skipped(l.first_skipped.as_ref());
            self.opt_skipped(l.first_refused.as_ref());
        }
        self.u64(p.events.len() as u64);
        for e in &p.events {
            self.opt_str(e.uuid.as_deref());
            self.opt_str(e.info.as_deref());
            self.opt_u64(e.threat_level.map(u64::from));
            self.u64(e.tags.len() as u64);
            for t in &e.tags {
                self.str(t);
            }
            self.opt_u64(e.tlp.map(tlp_code));
            self.opt_u64(e.distribution.map(u64::from));
            self.opt_str(e.org.as_deref());
            self.opt_str(e.date.as_deref());
            self.opt_str(e.reference.as_deref());
        }
        self.u64(p.strings.len() as u64);
        for s in &p.strings {
            self.str(s);
        }
        self.u64(p.tagsets.len() as u64);
        for t in &p.tagsets {
            self.u64(t.len() as u64);
            for &id in t.iter() {
                self.u64(u64::from(id));
            }
        }
        self.u64(p.metas.len() as u64);
        for m in &p.metas {
            self.meta(m);
        }
        self.u64(p.decay_inputs.len() as u64);
        for d in &p.decay_inputs {
            self.u64(u64::from(d.last_sighting.is_some()));
            if let Some(t) = d.last_sighting {
                self.i64(t);
            }
            self.opt_u64(d.base_score.map(|s| u64::from(s.to_bits())));
        }
        self.u64(p.links.len() as u64);
        for (kind, value, meta, written) in &p.links {
            self.u64(*kind as u64);
            self.str(value);
            self.u64(u64::from(*meta));
            self.opt_str(written.as_deref());
        }
        self.u64(p.skipped.len() as u64);
        for (s, unsupported) in &p.skipped {
            self.skipped(s);
            self.u64(u64::from(*unsupported));
        }
        self.counts(&p.skipped_by_reason);
        self.counts(&p.excluded_by_reason);
        self.u64(p.withdrawn_by_source.len() as u64);
        for ((s, r), n) in &p.withdrawn_by_source {
            self.u64(u64::from(*s));
            self.u64(WITHDRAWN.iter().position(|w| w == r).unwrap_or(0) as u64);
            self.u64(*n);
        }
        self.u64(p.unsupported_total);
    }
    fn meta(&mut self, m: &Meta) {
        let uuid = m.attr_uuid.as_deref().and_then(uuid_bytes);
        let bits = u64::from(m.event.is_some())
            | u64::from(m.attr_uuid.is_some()) << 1
            | u64::from(uuid.is_some()) << 2
            | u64::from(m.category.is_some()) << 3
            | u64::from(m.to_ids) << 4
            | u64::from(m.deleted) << 5
            | u64::from(m.revoked) << 6
            | u64::from(m.tlp.is_some()) << 7
            | u64::from(m.distribution.is_some()) << 8
            | u64::from(m.first_seen.is_some()) << 9
            | u64::from(m.last_seen.is_some()) << 10
            | u64::from(m.modified.is_some()) << 11
            | u64::from(m.valid_from.is_some()) << 12
            | u64::from(m.valid_until.is_some()) << 13
            | u64::from(m.port.is_some()) << 14
            | u64::from(m.composite_part.is_some()) << 15;
        self.u64(bits);
        self.u64(u64::from(m.source));
        if let Some(e) = m.event {
            self.u64(u64::from(e));
        }
        match (uuid, m.attr_uuid.as_deref()) {
            (Some(b), _) => self.0.extend_from_slice(&b),
            (None, Some(s)) => self.str(s),
            (None, None) => {}
        }
        self.u64(u64::from(m.misp_type));
        if let Some(c) = m.category {
            self.u64(u64::from(c));
        }
        self.u64(u64::from(m.tags));
        if let Some(t) = m.tlp {
            self.u64(tlp_code(t));
        }
        if let Some(d) = m.distribution {
            self.u64(u64::from(d));
        }
        for t in [
            m.first_seen,
            m.last_seen,
            m.modified,
            m.valid_from,
            m.valid_until,
        ]
        .into_iter()
        .flatten()
        {
            self.i64(t);
        }
        if let Some(p) = m.port {
            self.u64(u64::from(p));
        }
        if let Some(c) = m.composite_part {
            self.u64(u64::from(c));
        }
        self.u64(u64::from(m.decay_input));
    }
}

/// The 16 bytes of a lowercase hyphenated UUID (the only form kept compact: it must
/// decode to the same text).
fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        let hex = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[n] = hex(b[i])? << 4 | hex(b[i + 1])?;
        n += 1;
        i += 2;
    }
    Some(out)
}

fn uuid_text(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

type R<T> = Result<T, String>;

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn fixed_u32(&mut self) -> R<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> R<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .b
                .get(self.at)
                .ok_or_else(|| format!("truncated at byte {}", self.at))?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(format!("bad number at byte {}", self.at))
    }
    fn i64(&mut self) -> R<i64> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    fn u32(&mut self) -> R<u32> {
        u32::try_from(self.u64()?).map_err(|_| format!("number too large at byte {}", self.at))
    }
    fn u8(&mut self) -> R<u8> {
        u8::try_from(self.u64()?).map_err(|_| format!("number too large at byte {}", self.at))
    }
    /// A count, bounded by the bytes left (each item takes at least one).
    fn len(&mut self) -> R<usize> {
        let n = self.u64()?;
        if n > (self.b.len() - self.at) as u64 {
            return Err(format!("bad count at byte {}", self.at));
        }
        Ok(n as usize)
    }
    fn str_of(&mut self, n: usize) -> R<&'a str> {
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| format!("bad text before byte {}", self.at))
    }
    fn string(&mut self) -> R<String> {
        let n = self.len()?;
        Ok(self.str_of(n)?.to_string())
    }
    fn opt_string(&mut self) -> R<Option<String>> {
        match self.u64()? {
            0 => Ok(None),
            n => {
                let n = usize::try_from(n - 1).map_err(|_| "bad length".to_string())?;
                Ok(Some(self.str_of(n)?.to_string()))
            }
        }
    }
    fn opt_u64(&mut self) -> R<Option<u64>> {
        Ok(match self.u64()? {
            0 => None,
            n => Some(n - 1),
        })
    }
    fn opt_u8(&mut self) -> R<Option<u8>> {
        self.opt_u64()?
            .map(|v| u8::try_from(v).map_err(|_| "number too large".to_string()))
            .transpose()
    }
    fn tlp(&mut self, code: u64) -> R<Tlp> {
        TLPS.get(code as usize)
            .copied()
            .ok_or_else(|| format!("bad TLP at byte {}", self.at))
    }
    fn skipped(&mut self) -> R<Skipped> {
        Ok(Skipped {
            location: self.string()?,
            reason: self.string()?,
        })
    }
    fn opt_skipped(&mut self) -> R<Option<Skipped>> {
        Ok(match self.u64()? {
            0 => None,
            _ => Some(self.skipped()?),
        })
    }
    fn counts(&mut self) -> R<BTreeMap<String, u64>> {
        let n = self.len()?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = self.string()?;
            m.insert(k, self.u64()?);
        }
        Ok(m)
    }
    fn part(&mut self) -> R<Part> {
        let mut p = Part::default();
        let n = self.len()?;
        for _ in 0..n {
            let name = self.string()?;
            let format = FORMATS
                .get(self.u64()? as usize)
                .copied()
                .ok_or("bad source format")?;
            let location = self.string()?;
            let provider = self.opt_string()?;
            p.sources.push(Source {
                name,
                format,
                location,
                provider,
            });
            p.records_by_source.push(self.u64()?);
            p.losses_by_source.push(SourceLosses {
                skipped: self.u64()?,
                unsupported: self.u64()?,
                refused: self.u64()?,
                first_skipped: self.opt_skipped()?,
                first_refused: self.opt_skipped()?,
            });
        }
        let n = self.len()?;
        for _ in 0..n {
            let uuid = self.opt_string()?;
            let info = self.opt_string()?;
            let threat_level = self.opt_u8()?;
            let k = self.len()?;
            let mut tags = Vec::with_capacity(k);
            for _ in 0..k {
                tags.push(self.string()?);
            }
            let tlp = match self.opt_u64()? {
                Some(c) => Some(self.tlp(c)?),
                None => None,
            };
            p.events.push(EventInfo {
                uuid,
                info,
                threat_level,
                tags,
                tlp,
                distribution: self.opt_u8()?,
                org: self.opt_string()?,
                date: self.opt_string()?,
                reference: self.opt_string()?,
            });
        }
        let n = self.len()?;
        for _ in 0..n {
            p.strings.push(self.string()?.into());
        }
        let strings = p.strings.len() as u32;
        let n = self.len()?;
        for _ in 0..n {
            let k = self.len()?;
            let mut t = Vec::with_capacity(k);
            for _ in 0..k {
                let id = self.u32()?;
                if id >= strings {
                    return Err("tag id out of range".into());
                }
                t.push(id);
            }
            p.tagsets.push(t.into());
        }
        let n = self.len()?;
        p.metas.reserve(n);
        for _ in 0..n {
            let m = self.meta()?;
            p.metas.push(m);
        }
        let n = self.len()?;
        for _ in 0..n {
            let last_sighting = match self.u64()? {
                0 => None,
                _ => Some(self.i64()?),
            };
            let base_score = self
                .opt_u64()?
                .map(|b| u32::try_from(b).map(f32::from_bits))
                .transpose()
                .map_err(|_| "bad score".to_string())?;
            p.decay_inputs.push(DecayInput {
                last_sighting,
                base_score,
            });
        }
        let n = self.len()?;
        p.links.reserve(n);
        let metas = p.metas.len() as u32;
        for _ in 0..n {
            let k = self.u64()? as usize;
            let kind = *Kind::ALL.get(k).ok_or("bad kind")?;
            let len = self.len()?;
            let value: Box<str> = self.str_of(len)?.into();
            let meta = self.u32()?;
            if meta >= metas {
                return Err("meta id out of range".into());
            }
            let written = self.opt_string()?.map(Into::into);
            p.links.push((kind, value, meta, written));
        }
        let n = self.len()?;
        for _ in 0..n {
            let s = self.skipped()?;
            p.skipped.push((s, self.u64()? != 0));
        }
        p.skipped_by_reason = self.counts()?;
        p.excluded_by_reason = self.counts()?;
        let n = self.len()?;
        for _ in 0..n {
            let s = self.u32()?;
            let r = WITHDRAWN
                .get(self.u64()? as usize)
                .copied()
                .ok_or("bad withdrawal reason")?;
            p.withdrawn_by_source.insert((s, r), self.u64()?);
        }
        p.unsupported_total = self.u64()?;
        // Ids that index the part's own tables.
        let (sources, events, tagsets, decays) = (
            p.sources.len() as u32,
            p.events.len() as u32,
            p.tagsets.len() as u32,
            p.decay_inputs.len() as u32,
        );
        let ok = p.metas.iter().all(|m| {
            m.source < sources
                && m.event.is_none_or(|e| e < events)
                && m.misp_type < strings
                && m.category.is_none_or(|c| c < strings)
                && m.tags < tagsets
                && (m.decay_input == 0 || m.decay_input < decays)
        });
        if !ok || p.withdrawn_by_source.keys().any(|(s, _)| *s >= sources) {
            return Err("an id out of range".into());
        }
        Ok(p)
    }
    fn meta(&mut self) -> R<Meta> {
        let bits = self.u64()?;
        let has = |i: u32| bits & (1 << i) != 0;
        let mut m = Meta {
            source: self.u32()?,
            ..Meta::default()
        };
        if has(0) {
            m.event = Some(self.u32()?);
        }
        if has(1) {
            m.attr_uuid = Some(if has(2) {
                uuid_text(self.bytes(16)?).into()
            } else {
                self.string()?.into()
            });
        }
        m.misp_type = self.u32()?;
        if has(3) {
            m.category = Some(self.u32()?);
        }
        m.tags = self.u32()?;
        m.to_ids = has(4);
        m.deleted = has(5);
        m.revoked = has(6);
        if has(7) {
            let c = self.u64()?;
            m.tlp = Some(self.tlp(c)?);
        }
        if has(8) {
            m.distribution = Some(self.u8()?);
        }
        for (bit, slot) in [
            (9, &mut m.first_seen),
            (10, &mut m.last_seen),
            (11, &mut m.modified),
            (12, &mut m.valid_from),
            (13, &mut m.valid_until),
        ] {
            if has(bit) {
                *slot = Some(self.i64()?);
            }
        }
        if has(14) {
            m.port = Some(u16::try_from(self.u64()?).map_err(|_| "bad port".to_string())?);
        }
        if has(15) {
            m.composite_part = Some(self.u8()?);
        }
        m.decay_input = self.u32()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options_of_bytes(bytes: &[u8]) -> Option<StoreOptions> {
        let dir = tempfile::tempdir().ok()?;
        let p = dir.path().join(FILE_NAME);
        std::fs::write(&p, bytes).ok()?;
        options_of(&p)
    }

    #[test]
    fn uuid_round_trip_and_cache_paths() {
        let u = "5d0a8fd6-0000-4000-8000-00000000000a";
        assert_eq!(uuid_text(&uuid_bytes(u).expect("uuid")), u);
        assert!(uuid_bytes("5D0A8FD6-0000-4000-8000-00000000000A").is_none());
        let d = Path::new("/s/intel/isac/data");
        assert_eq!(
            path_for(Some("isac"), d),
            Some(PathBuf::from("/s/intel/isac/snapshot.bin"))
        );
        assert_eq!(path_for(Some("other"), d), None);
        assert_eq!(path_for(None, d), None);
        assert_eq!(
            path_for(Some("isac"), Path::new("/s/feeds/isac/data")),
            None
        );
    }

    #[test]
    fn damaged_snapshots_are_errors_not_panics() {
        let opts = StoreOptions::default();
        let mut entries = BTreeMap::new();
        let mut part = Part::default();
        part.metas.push(Meta {
            attr_uuid: Some("5d0a8fd6-0000-4000-8000-00000000000a".into()),
            to_ids: true,
            modified: Some(-5),
            ..Meta::default()
        });
        part.sources.push(Source {
            name: "s".into(),
            format: "misp-feed",
            location: "x".into(),
            provider: None,
        });
        part.records_by_source.push(1);
        part.losses_by_source.push(SourceLosses::default());
        part.tagsets.push(Box::new([]));
        part.strings.push("ip-dst".into());
        part.decay_inputs.push(DecayInput::default());
        part.links.push((Kind::Ipv4, "192.0.2.1".into(), 0, None));
        let sig = Signature {
            size: 1,
            mtime_ns: 2,
            ino: 3,
        };
        entries.insert("a.json".to_string(), (sig, part.clone()));
        let bytes = encode(&entries, &opts, "/s/intel/x/staging");
        let back = decode(&bytes, &opts, "/s/intel/x/staging")
            .expect("decodes")
            .expect("same options");
        assert_eq!(back.get("a.json"), Some(&(sig, part.clone())));
        assert_eq!(options_of_bytes(&bytes), Some(opts));
        let other = StoreOptions {
            include_non_ids: true,
            ..opts
        };
        assert!(decode(&bytes, &other, "/").expect("not corrupt").is_none());
        for cut in [0, 5, 12, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], &opts, "/").is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        assert!(decode(&flipped, &opts, "/").is_err());
    }
}
