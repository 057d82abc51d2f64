//! The observation store on disk: `<dir>/<YYYY-MM-DD>/<n>.seg`, one directory per UTC
//! day (the slice), several sealed [`Segment`]s per day (merged when probed).
//!
//! - [`Writer`] keeps the open slices in memory (a hash map per slice) and seals them
//!   — every slice at once, each into a new segment — when [`Writer::seal`] is called
//!   (the driver's flush interval and shutdown), and by itself past
//!   [`WriterOptions::max_open_entries`]. A restart loses at most what came after the
//!   last seal.
//! - [`Store::compact`] merges the segments of a day into one once it holds too many
//!   (the sidecar seals every minute); the merged segment names the ones it replaces
//!   ([`Segment::covers`]), so a crash before they are deleted counts nothing twice.
//! - [`Store::enforce_retention`] drops whole days: those older than `retention_days`
//!   before the newest day (the caller's "today"), then the oldest while the store is
//!   over `max_bytes`.
//! - [`Store::open`] reads every segment; the probes ([`Store::probe`],
//!   [`Store::probe_cidr`], [`Store::probe_domain`]) answer per slice, merged over the
//!   slice's segments: first/last time, count, capped hosts and sources, and the
//!   observed value (the canonical value for an exact probe, the address for a CIDR,
//!   each host name seen below a domain).
//!
//! Memory of the writer: about 90 bytes per open entry (hash-map slot and aggregate).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use ipnet::IpNet;

use super::segment::{self, IdSet, Segment};
use super::{key, slice_of, v4_key, v4_of_key, v6_key, Batch, FastSet, KeyMap, SLICE_SECS};
use crate::intel::Kind;

/// Hosts and sources kept per observable and slice.
pub const SET_CAP: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("observation store {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("observation store segment {path}: {reason}")]
    Corrupt { path: String, reason: &'static str },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The store's figures (for metrics and reports).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub bytes: u64,
    pub slices: u64,
    pub segments: u64,
    /// Entries over all segments (an observable seen on two days counts twice).
    pub entries: u64,
    /// Host names in the segments' names dictionaries, and the bytes they take
    /// (names and offsets): the cost of reporting which subdomain was seen.
    pub names: u64,
    pub names_bytes: u64,
}

#[derive(Clone, Debug)]
struct Agg {
    first: i64,
    last: i64,
    count: u64,
    hosts: SmallSet,
    sources: SmallSet,
}

impl Agg {
    /// Adds `a`'s sightings (of the same slice and interners).
    fn absorb(&mut self, a: &Agg) {
        self.first = self.first.min(a.first);
        self.last = self.last.max(a.last);
        self.count += a.count;
        for (set, from) in [(&mut self.hosts, &a.hosts), (&mut self.sources, &a.sources)] {
            for &id in &from.ids[..usize::from(from.n)] {
                add_id(set, id);
            }
            set.more |= from.more;
        }
    }
}

/// A capped id set held inline (no allocation per open entry).
#[derive(Clone, Copy, Debug, Default)]
struct SmallSet {
    ids: [u16; SET_CAP],
    n: u8,
    more: bool,
}

impl SmallSet {
    fn to_set(self) -> IdSet {
        IdSet {
            ids: self.ids[..usize::from(self.n)].to_vec(),
            more: self.more,
        }
    }
}

fn add_id(set: &mut SmallSet, id: u16) {
    let n = usize::from(set.n);
    if set.ids[..n].contains(&id) {
        return;
    }
    if n < SET_CAP {
        set.ids[n] = id;
        set.n += 1;
    } else {
        set.more = true;
    }
}

#[derive(Debug, Default)]
struct Interner {
    names: Vec<String>,
    ids: HashMap<String, u16>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u16 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        if self.names.len() >= usize::from(u16::MAX) {
            return u16::MAX;
        }
        let id = self.names.len() as u16;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }
}

#[derive(Debug, Default)]
struct OpenSlice {
    entries: KeyMap<Agg>,
    v6: FastSet<u128>,
    names: FastSet<String>,
    hosts: Interner,
    sources: Interner,
}

impl OpenSlice {
    /// Adds each recorded host name's label suffixes (down to its registrable
    /// domain) as [`Kind::Domain`] entries, merged over the names below them: first
    /// and last the earliest and latest of those names, hosts and sources their
    /// union, the count their sum (a line naming two hosts below one domain counts
    /// twice there). Once per name and seal: lines record only the name.
    fn derive_suffixes(&mut self) {
        let mut derived: Vec<(u64, Agg)> = Vec::new();
        for name in &self.names {
            let Some(a) = self.entries.get(&key(Kind::Hostname, name.as_bytes())) else {
                continue;
            };
            super::suffix_keys(name.as_bytes(), |k| derived.push((k, a.clone())));
        }
        for (k, a) in derived {
            match self.entries.get_mut(&k) {
                Some(e) => e.absorb(&a),
                None => {
                    self.entries.insert(k, a);
                }
            }
        }
    }

    fn segment(self, slice: i64) -> Segment {
        let mut entries: Vec<(u64, Agg)> = self.entries.into_iter().collect();
        entries.sort_unstable_by_key(|e| e.0);
        let mut host_sets: Vec<IdSet> = Vec::new();
        let mut source_sets: Vec<IdSet> = Vec::new();
        let mut hs_ids: HashMap<IdSet, u16> = HashMap::new();
        let mut ss_ids: HashMap<IdSet, u16> = HashMap::new();
        let set_id = |set: IdSet, sets: &mut Vec<IdSet>, ids: &mut HashMap<IdSet, u16>| {
            if let Some(&i) = ids.get(&set) {
                return i;
            }
            if sets.len() >= usize::from(u16::MAX) {
                // Past 65535 distinct sets: the "many" set.
                return u16::MAX;
            }
            let i = sets.len() as u16;
            sets.push(set.clone());
            ids.insert(set, i);
            i
        };
        let mut keys = Vec::with_capacity(entries.len());
        let mut packed = Vec::with_capacity(entries.len());
        let mut sets = Vec::with_capacity(entries.len());
        for (k, a) in entries {
            keys.push(k);
            let first = (a.first - slice).clamp(0, i64::from(segment::MAX_OFFSET)) as u32;
            let last = (a.last - slice).clamp(0, i64::from(segment::MAX_OFFSET)) as u32;
            packed.push(segment::pack(first, last, a.count));
            let h = set_id(a.hosts.to_set(), &mut host_sets, &mut hs_ids);
            let s = set_id(a.sources.to_set(), &mut source_sets, &mut ss_ids);
            sets.push(u32::from(h) | (u32::from(s) << 16));
        }
        let mut v6: Vec<u128> = self.v6.into_iter().collect();
        v6.sort_unstable();
        let mut names: Vec<String> = self.names.into_iter().collect();
        segment::sort_names(&mut names);
        let names = segment::Names::from_sorted(&names);
        Segment {
            slice,
            filter: segment::build_filter(&keys),
            keys,
            packed,
            sets,
            v6,
            names,
            hosts: self.hosts.names,
            sources: self.sources.names,
            host_sets,
            source_sets,
            covers: 0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Seal every open slice once they hold this many entries together.
    pub max_open_entries: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_open_entries: 2_000_000,
        }
    }
}

/// Records batches into open slices and seals them into segments.
#[derive(Debug)]
pub struct Writer {
    dir: PathBuf,
    opts: WriterOptions,
    open: BTreeMap<i64, OpenSlice>,
    open_entries: usize,
    newest: Option<i64>,
    /// Observations recorded (per line, distinct tokens).
    pub observations: u64,
    /// Segments sealed and their bytes.
    pub sealed: u64,
    pub sealed_bytes: u64,
}

/// The directory of the slice starting at `slice`.
pub fn day_dir(dir: &Path, slice: i64) -> PathBuf {
    let day = DateTime::<Utc>::from_timestamp(slice, 0)
        .map_or_else(|| format!("{slice}"), |t| t.format("%Y-%m-%d").to_string());
    dir.join(day)
}

fn parse_day(name: &str) -> Option<i64> {
    let d = NaiveDate::parse_from_str(name, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

impl Writer {
    pub fn new(dir: &Path, opts: WriterOptions) -> Result<Writer, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        Ok(Writer {
            dir: dir.to_path_buf(),
            opts,
            open: BTreeMap::new(),
            open_entries: 0,
            newest: None,
            observations: 0,
            sealed: 0,
            sealed_bytes: 0,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Entries held in memory.
    pub fn open_entries(&self) -> usize {
        self.open_entries
    }

    /// The newest slice recorded by this writer.
    pub fn newest_slice(&self) -> Option<i64> {
        self.newest
    }

    /// Merges a batch recorded on a worker; seals when over the size threshold.
    pub fn merge(&mut self, batch: Batch) -> Result<(), StoreError> {
        self.observations += batch.observations;
        for (slice, entries) in batch.slices {
            self.newest = self.newest.max(Some(slice));
            let open = self.open.entry(slice).or_default();
            let src = open.sources.id(&batch.source);
            // Batch host id → slice host id, looked up once per host.
            let mut host_map: Vec<Option<u16>> = vec![None; batch.hosts.len()];
            open.entries.reserve(entries.len());
            for (k, a) in entries {
                let e = match open.entries.entry(k) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        self.open_entries += 1;
                        // A host name new to the slice: its name, once.
                        if a.name.1 > a.name.0 {
                            let bytes = batch
                                .text
                                .get(a.name.0 as usize..a.name.1 as usize)
                                .unwrap_or_default();
                            open.names
                                .insert(String::from_utf8_lossy(bytes).into_owned());
                        }
                        v.insert(Agg {
                            first: a.first,
                            last: a.last,
                            count: 0,
                            hosts: SmallSet::default(),
                            sources: SmallSet::default(),
                        })
                    }
                };
                e.first = e.first.min(a.first);
                e.last = e.last.max(a.last);
                e.count += u64::from(a.count);
                for &h in &a.hosts[..usize::from(a.n_hosts)] {
                    let id = match host_map.get(usize::from(h)).copied().flatten() {
                        Some(id) => id,
                        None => {
                            let name = batch.hosts.get(usize::from(h)).map_or("", String::as_str);
                            let id = open.hosts.id(name);
                            if let Some(slot) = host_map.get_mut(usize::from(h)) {
                                *slot = Some(id);
                            }
                            id
                        }
                    };
                    add_id(&mut e.hosts, id);
                }
                e.hosts.more |= a.more_hosts;
                add_id(&mut e.sources, src);
            }
        }
        for (slice, a) in batch.v6 {
            self.open.entry(slice).or_default().v6.insert(a);
        }
        if self.open_entries >= self.opts.max_open_entries {
            self.seal()?;
        }
        Ok(())
    }

    /// Seals every open slice into a new segment of its day. Returns the bytes written.
    pub fn seal(&mut self) -> Result<u64, StoreError> {
        let mut written = 0;
        for (slice, mut open) in std::mem::take(&mut self.open) {
            if open.entries.is_empty() {
                continue;
            }
            open.derive_suffixes();
            let seg = open.segment(slice);
            let dir = day_dir(&self.dir, slice);
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let n = next_segment_number(&dir).map_err(io_err(&dir))?;
            let path = dir.join(format!("{n:06}.seg"));
            let bytes = seg.write_to(&path).map_err(io_err(&path))?;
            tracing::debug!(path = %path.display(), entries = seg.keys.len(), bytes, "Sealed observation segment.");
            written += bytes;
            self.sealed += 1;
        }
        self.sealed_bytes += written;
        self.open_entries = 0;
        Ok(written)
    }
}

fn next_segment_number(dir: &Path) -> std::io::Result<u64> {
    let mut max = 0;
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_suffix(".seg")
            .and_then(|n| n.parse::<u64>().ok())
        {
            max = max.max(n + 1);
        }
    }
    Ok(max)
}

/// One observable as the store saw it in one slice (merged over its segments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The kind of the entry: `Hostname` for a name found by a domain probe.
    pub kind: Kind,
    /// The observed value: the probed value, the address in a CIDR, the host name
    /// below a domain; `None` when only a suffix entry is known.
    pub value: Option<String>,
    /// Start of the slice (unix seconds).
    pub slice: i64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub count: u64,
    pub hosts: Vec<String>,
    pub more_hosts: bool,
    pub sources: Vec<String>,
    pub more_sources: bool,
}

/// Every segment of a store, read into memory, newest slice last.
#[derive(Debug, Default)]
pub struct Store {
    dir: PathBuf,
    segments: Vec<Segment>,
    bytes: u64,
}

/// Days [`Store::enforce_retention`] dropped: past `retention_days`, and oldest first
/// while the store was over `max_bytes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub age: u64,
    pub size: u64,
}

impl Store {
    /// Reads every segment under `dir` (none when it does not exist). A segment that
    /// does not read is an error: it was written whole or not at all.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_filtered(dir, |_| true)
    }

    /// The segment files of the store now (for [`Store::open_only`]).
    pub fn segment_paths(dir: &Path) -> Result<std::collections::HashSet<PathBuf>, StoreError> {
        let mut out = std::collections::HashSet::new();
        for (_, day) in days(dir)? {
            for e in std::fs::read_dir(&day).map_err(io_err(&day))? {
                let path = e.map_err(io_err(&day))?.path();
                if path.extension().is_some_and(|x| x == "seg") {
                    out.insert(path);
                }
            }
        }
        Ok(out)
    }

    /// The store as it was when `paths` were listed ([`Store::segment_paths`]):
    /// segments sealed since are left out (a sidecar's start run probes what earlier
    /// runs recorded, not the lines it has just matched live). A day compacted since
    /// then (its segments replaced by a new one) is left out too.
    pub fn open_only(
        dir: &Path,
        paths: &std::collections::HashSet<PathBuf>,
    ) -> Result<Store, StoreError> {
        Store::open_filtered(dir, |p| paths.contains(p))
    }

    fn open_filtered(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Store, StoreError> {
        let mut store = Store {
            dir: dir.to_path_buf(),
            ..Store::default()
        };
        let mut buf = Vec::new();
        for (_, day) in days(dir)? {
            for (_, path, seg, bytes) in load_day(&day, &mut buf)? {
                if !keep(&path) {
                    continue;
                }
                store.bytes += bytes;
                store.segments.push(seg);
            }
        }
        Ok(store)
    }

    /// Merges the segments of the day at `day_dir` into one (the writer seals a
    /// segment per flush: a probe looks at each). Writes the merged segment, which
    /// covers the old ones ([`Segment::covers`]), then deletes them. Returns whether
    /// anything was merged.
    pub fn compact_day(day_dir: &Path) -> Result<bool, StoreError> {
        let segs = load_day(day_dir, &mut Vec::new())?;
        if segs.len() < 2 {
            return Ok(false);
        }
        let next = segs.iter().map(|s| s.0).max().unwrap_or(0) + 1;
        let slice = segs[0].2.slice;
        let mut open = OpenSlice::default();
        for (_, _, seg, _) in &segs {
            for (i, &k) in seg.keys.iter().enumerate() {
                let (first, last, count) = segment::unpack(seg.packed[i]);
                let set = seg.sets[i];
                let e = open.entries.entry(k).or_insert(Agg {
                    first: seg.slice + i64::from(first),
                    last: seg.slice + i64::from(last),
                    count: 0,
                    hosts: SmallSet::default(),
                    sources: SmallSet::default(),
                });
                e.first = e.first.min(seg.slice + i64::from(first));
                e.last = e.last.max(seg.slice + i64::from(last));
                e.count += count;
                for (id, sets, names, interner, small) in [
                    (
                        set as u16,
                        &seg.host_sets,
                        &seg.hosts,
                        &mut open.hosts,
                        &mut e.hosts,
                    ),
                    (
                        (set >> 16) as u16,
                        &seg.source_sets,
                        &seg.sources,
                        &mut open.sources,
                        &mut e.sources,
                    ),
                ] {
                    match sets.get(usize::from(id)) {
                        Some(s) => {
                            small.more |= s.more;
                            for &h in &s.ids {
                                let name = names.get(usize::from(h)).map_or("", String::as_str);
                                add_id(small, interner.id(name));
                            }
                        }
                        None => small.more = true,
                    }
                }
            }
            open.v6.extend(seg.v6.iter().copied());
            open.names.extend(seg.names.iter().map(str::to_string));
        }
        let mut merged = open.segment(slice);
        merged.covers = next as u32;
        let path = day_dir.join(format!("{next:06}.seg"));
        merged.write_to(&path).map_err(io_err(&path))?;
        for (_, old, _, _) in segs {
            std::fs::remove_file(&old).map_err(io_err(&old))?;
        }
        Ok(true)
    }

    /// Compacts every day of the store holding more than `max_segments` segments.
    pub fn compact(dir: &Path, max_segments: usize) -> Result<u64, StoreError> {
        let mut n = 0;
        for (_, day) in days(dir)? {
            let count = std::fs::read_dir(&day)
                .map_err(io_err(&day))?
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                .count();
            if count > max_segments && Store::compact_day(&day)? {
                n += 1;
            }
        }
        Ok(n)
    }

    pub fn stats(&self) -> StoreStats {
        let slices: HashSet<i64> = self.segments.iter().map(|s| s.slice).collect();
        StoreStats {
            bytes: self.bytes,
            slices: slices.len() as u64,
            segments: self.segments.len() as u64,
            entries: self.segments.iter().map(|s| s.keys.len() as u64).sum(),
            names: self.segments.iter().map(|s| s.names.len() as u64).sum(),
            names_bytes: self
                .segments
                .iter()
                .map(|s| s.names.encoded_len() as u64)
                .sum(),
        }
    }

    /// Drops whole days: those before `newest - (retention_days - 1)` days, then the
    /// oldest while over `max_bytes` (the newest day is never dropped for size).
    /// Returns the days dropped, for age and for size. Works on the directory; reopen
    /// to probe.
    pub fn enforce_retention(
        dir: &Path,
        newest: i64,
        retention_days: u32,
        max_bytes: u64,
    ) -> Result<Dropped, StoreError> {
        let keep_from = slice_of(newest) - i64::from(retention_days.max(1) - 1) * SLICE_SECS;
        let mut dropped = Dropped::default();
        let mut sized = Vec::new();
        for (slice, day) in days(dir)? {
            if slice < keep_from {
                std::fs::remove_dir_all(&day).map_err(io_err(&day))?;
                tracing::info!(day = %day.display(), "Observation store: day past retention dropped.");
                dropped.age += 1;
            } else {
                sized.push((slice, dir_bytes(&day).map_err(io_err(&day))?, day));
            }
        }
        let mut total: u64 = sized.iter().map(|s| s.1).sum();
        for (_, bytes, day) in sized.iter().take(sized.len().saturating_sub(1)) {
            if total <= max_bytes {
                break;
            }
            std::fs::remove_dir_all(day).map_err(io_err(day))?;
            tracing::info!(day = %day.display(), "Observation store over its size: oldest day dropped.");
            total -= bytes;
            dropped.size += 1;
        }
        Ok(dropped)
    }

    fn observed(&self, seg: &Segment, i: usize, kind: Kind, value: Option<String>) -> Observed {
        let (first, last, count) = segment::unpack(seg.packed[i]);
        let set = seg.sets[i];
        let names = |sets: &[IdSet], id: u16, names: &[String]| -> (Vec<String>, bool) {
            match sets.get(usize::from(id)) {
                Some(s) => (
                    s.ids
                        .iter()
                        .filter_map(|&h| names.get(usize::from(h)).cloned())
                        .collect(),
                    s.more,
                ),
                None => (Vec::new(), true),
            }
        };
        let (hosts, more_hosts) = names(&seg.host_sets, set as u16, &seg.hosts);
        let (sources, more_sources) = names(&seg.source_sets, (set >> 16) as u16, &seg.sources);
        let time = |off: u32| {
            DateTime::<Utc>::from_timestamp(seg.slice + i64::from(off), 0).unwrap_or_default()
        };
        Observed {
            kind,
            value,
            slice: seg.slice,
            first: time(first),
            last: time(last),
            count,
            hosts,
            more_hosts,
            sources,
            more_sources,
        }
    }

    fn live(&self, since: Option<DateTime<Utc>>) -> impl Iterator<Item = &Segment> {
        let since = since.map_or(i64::MIN, |t| t.timestamp());
        self.segments
            .iter()
            .filter(move |s| s.slice + SLICE_SECS > since)
    }

    /// Probes one key in every segment, merged per slice.
    fn probe_key(
        &self,
        k: u64,
        kind: Kind,
        value: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Vec<Observed> {
        let mut out = Vec::new();
        for seg in self.live(since) {
            if let Some(i) = seg.find(k) {
                out.push(self.observed(seg, i, kind, value.map(str::to_string)));
            }
        }
        merge_per_slice(out, since)
    }

    /// Where `kind` `canonical` (the form the index keys it) was seen, per slice. A
    /// [`Kind::Domain`] is probed as by [`Store::probe_domain`].
    pub fn probe(
        &self,
        kind: Kind,
        canonical: &str,
        since: Option<DateTime<Utc>>,
    ) -> Vec<Observed> {
        match kind {
            Kind::Ipv4 => match canonical.parse::<std::net::Ipv4Addr>() {
                Ok(a) => self.probe_key(v4_key(u32::from(a)), kind, Some(canonical), since),
                Err(_) => Vec::new(),
            },
            Kind::Ipv6 => match canonical.parse::<std::net::Ipv6Addr>() {
                Ok(a) => self.probe_key(v6_key(u128::from(a)), kind, Some(canonical), since),
                Err(_) => Vec::new(),
            },
            Kind::Domain => self.probe_domain(canonical, since),
            _ => self.probe_key(
                key(kind, canonical.as_bytes()),
                kind,
                Some(canonical),
                since,
            ),
        }
    }

    /// Every address in `net` seen, per address and slice.
    pub fn probe_cidr(&self, net: IpNet, since: Option<DateTime<Utc>>) -> Vec<Observed> {
        let mut out = Vec::new();
        match net {
            IpNet::V4(n) => {
                let lo = v4_key(u32::from(n.network()));
                let hi = v4_key(u32::from(n.broadcast()));
                for seg in self.live(since) {
                    for i in seg.range(lo, hi) {
                        let addr = v4_of_key(seg.keys[i]).map(std::net::Ipv4Addr::from);
                        out.push(self.observed(seg, i, Kind::Ipv4, addr.map(|a| a.to_string())));
                    }
                }
            }
            IpNet::V6(n) => {
                let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
                for seg in self.live(since) {
                    for &a in seg.v6_range(lo, hi) {
                        if let Some(i) = seg.find(v6_key(a)) {
                            let text = std::net::Ipv6Addr::from(a).to_string();
                            out.push(self.observed(seg, i, Kind::Ipv6, Some(text)));
                        }
                    }
                }
            }
        }
        merge_per_slice(out, since)
    }

    /// Every host name seen that is `domain` or below it (on label boundaries), per
    /// name and slice. The suffix entries answer "no" in one filter probe per segment;
    /// the names dictionary gives the names.
    pub fn probe_domain(&self, domain: &str, since: Option<DateTime<Utc>>) -> Vec<Observed> {
        let suffix = key(Kind::Domain, domain.as_bytes());
        let whole = key(Kind::Hostname, domain.as_bytes());
        let mut out = Vec::new();
        for seg in self.live(since) {
            let below = seg.find(suffix).is_some();
            let exact = seg.find(whole);
            if !below && exact.is_none() {
                continue;
            }
            if let Some(i) = exact {
                out.push(self.observed(seg, i, Kind::Hostname, Some(domain.to_string())));
            }
            if below {
                let mut found = false;
                for name in seg.names_under(domain) {
                    if name.len() == domain.len() {
                        continue;
                    }
                    if let Some(i) = seg.find(key(Kind::Hostname, name.as_bytes())) {
                        out.push(self.observed(seg, i, Kind::Hostname, Some(name.to_string())));
                        found = true;
                    }
                }
                if !found {
                    if let Some(i) = seg.find(suffix) {
                        out.push(self.observed(seg, i, Kind::Domain, None));
                    }
                }
            }
        }
        merge_per_slice(out, since)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Merges observations of one value in one slice (several segments per day), drops
/// those last seen before `since`, and orders by slice then value.
fn merge_per_slice(list: Vec<Observed>, since: Option<DateTime<Utc>>) -> Vec<Observed> {
    let mut by: BTreeMap<(i64, Option<String>, u8), Observed> = BTreeMap::new();
    for o in list {
        if since.is_some_and(|s| o.last < s) {
            continue;
        }
        match by.entry((o.slice, o.value.clone(), o.kind as u8)) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(o);
            }
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let m = e.get_mut();
                m.first = m.first.min(o.first);
                m.last = m.last.max(o.last);
                m.count += o.count;
                for (list, more, add, add_more) in [
                    (&mut m.hosts, &mut m.more_hosts, o.hosts, o.more_hosts),
                    (
                        &mut m.sources,
                        &mut m.more_sources,
                        o.sources,
                        o.more_sources,
                    ),
                ] {
                    *more |= add_more;
                    for h in add {
                        if !list.contains(&h) {
                            if list.len() < SET_CAP {
                                list.push(h);
                            } else {
                                *more = true;
                            }
                        }
                    }
                }
            }
        }
    }
    by.into_values().collect()
}

/// The live segments of one day, by number: (number, path, segment, bytes). Segments
/// covered by a merged one are left out.
fn load_day(
    day: &Path,
    buf: &mut Vec<u8>,
) -> Result<Vec<(u64, PathBuf, Segment, u64)>, StoreError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(day).map_err(io_err(day))? {
        let path = e.map_err(io_err(day))?.path();
        let Some(n) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        // One read buffer for every segment (each is decoded into its own columns).
        buf.clear();
        std::io::Read::read_to_end(&mut std::fs::File::open(&path).map_err(io_err(&path))?, buf)
            .map_err(io_err(&path))?;
        let seg = Segment::decode(buf).map_err(|reason| StoreError::Corrupt {
            path: path.display().to_string(),
            reason,
        })?;
        out.push((n, path, seg, buf.len() as u64));
    }
    let covers = out.iter().map(|s| u64::from(s.2.covers)).max().unwrap_or(0);
    out.retain(|s| s.0 >= covers);
    out.sort_by_key(|s| s.0);
    Ok(out)
}

/// The day directories of a store, oldest first.
fn days(dir: &Path) -> Result<Vec<(i64, PathBuf)>, StoreError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut out: Vec<(i64, PathBuf)> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let slice = parse_day(&e.file_name().to_string_lossy())?;
            e.path().is_dir().then(|| (slice, e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The store's figures from the segments' headers alone (entries per segment), for
/// reports: no segment is read whole.
pub fn summary(dir: &Path) -> Result<StoreStats, StoreError> {
    use std::io::Read;
    let mut s = StoreStats::default();
    for (_, day) in days(dir)? {
        s.slices += 1;
        for e in std::fs::read_dir(&day).map_err(io_err(&day))? {
            let path = e.map_err(io_err(&day))?.path();
            if path.extension().is_none_or(|x| x != "seg") {
                continue;
            }
            use std::io::{Seek, SeekFrom};
            let mut head = [0u8; 72];
            let mut f = std::fs::File::open(&path).map_err(io_err(&path))?;
            s.bytes += f.metadata().map_err(io_err(&path))?.len();
            let corrupt = |reason| StoreError::Corrupt {
                path: path.display().to_string(),
                reason,
            };
            f.read_exact(&mut head[..64])
                .map_err(|_| corrupt("truncated segment"))?;
            let v1 = &head[..8] == segment::MAGIC_V1;
            if !v1 && &head[..8] != segment::MAGIC {
                return Err(corrupt("not a segment (bad magic)"));
            }
            let count = |head: &[u8; 72], at: usize| {
                let mut n = [0u8; 4];
                n.copy_from_slice(&head[at..at + 4]);
                u64::from(u32::from_le_bytes(n))
            };
            let (n, nf, n6, nn) = (
                count(&head, 16),
                count(&head, 20),
                count(&head, 24),
                count(&head, 28),
            );
            s.entries += n;
            s.names += nn;
            s.segments += 1;
            if !v1 {
                // The names section's length is in the header.
                f.read_exact(&mut head[64..])
                    .map_err(|_| corrupt("truncated segment"))?;
                s.names_bytes += count(&head, 64);
            } else if nn > 0 {
                // The last name's end offset: the dictionary's text bytes.
                let at = 64 + n * 20 + nf * 8 + n6 * 16 + (nn - 1) * 4;
                let mut end = [0u8; 4];
                f.seek(SeekFrom::Start(at)).map_err(io_err(&path))?;
                f.read_exact(&mut end).map_err(io_err(&path))?;
                s.names_bytes += nn * 4 + u64::from(u32::from_le_bytes(end));
            }
        }
    }
    Ok(s)
}

/// Days and bytes of the store at `dir`, from the directory alone (no segment read).
pub fn disk_usage(dir: &Path) -> Result<(u64, u64), StoreError> {
    let mut bytes = 0;
    let all = days(dir)?;
    for (_, day) in &all {
        bytes += dir_bytes(day).map_err(io_err(day))?;
    }
    Ok((all.len() as u64, bytes))
}

fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        total += e?.metadata()?.len();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retro::{BatchContext, BatchRecorder, LineTokens};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// A test line: time, host, and what the matcher would push.
    type TestLine<'a> = (&'a str, &'a str, &'a dyn Fn(&mut LineTokens));

    /// Records `lines` as one batch of `source`.
    fn batch(source: &str, lines: &[TestLine]) -> Batch {
        let mut r = BatchRecorder::new(Default::default());
        r.begin(BatchContext {
            decode: Default::default(),
            new_input: true,
            source: source.into(),
            default_host: "dflt".into(),
            reference: t("2030-01-01T00:00:00Z"),
            read: t("2030-01-01T00:00:00Z"),
        });
        let mut toks = LineTokens::default();
        for (time, host, fill) in lines {
            toks.clear();
            fill(&mut toks);
            let line = format!("{{\"@timestamp\":\"{time}\",\"host\":\"{host}\"}}");
            r.line(line.as_bytes(), &toks);
        }
        r.finish()
    }

    /// A store opened as of a listing of its segments leaves out what was sealed
    /// since (a sidecar's start run probes only what earlier runs recorded).
    #[test]
    fn open_only_leaves_out_segments_sealed_since_the_listing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::new(dir.path(), WriterOptions::default()).unwrap();
        let earlier = batch(
            "fw.log",
            &[("2026-12-01T10:00:00Z", "h1", &|l| l.push_v4(0x0a00_0005))],
        );
        w.merge(earlier).unwrap();
        w.seal().unwrap();
        let listed = Store::segment_paths(dir.path()).unwrap();
        assert_eq!(listed.len(), 1);
        let this_run = batch(
            "fw.log",
            &[("2026-12-01T11:00:00Z", "h2", &|l| {
                l.push_v4(0x0a00_0005);
                l.push_v4(0x0a00_0006);
            })],
        );
        w.merge(this_run).unwrap();
        w.seal().unwrap();
        let then = Store::open_only(dir.path(), &listed).unwrap();
        let o = then.probe(Kind::Ipv4, "10.0.0.5", None);
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].count, o[0].last), (1, t("2026-12-01T10:00:00Z")));
        assert!(then.probe(Kind::Ipv4, "10.0.0.6", None).is_empty());
        let now = Store::open(dir.path()).unwrap();
        assert_eq!(now.probe(Kind::Ipv4, "10.0.0.5", None)[0].count, 2);
        assert_eq!(now.probe(Kind::Ipv4, "10.0.0.6", None).len(), 1);
    }

    #[test]
    fn writer_seals_and_probes_merge_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::new(dir.path(), WriterOptions::default()).unwrap();
        let b1 = batch(
            "fw.log",
            &[
                ("2026-12-01T10:00:00Z", "h1", &|l| {
                    l.push_v4(0x0a00_0005);
                    l.push_host(b"www.evil.com");
                }),
                ("2026-12-01T11:00:00Z", "h2", &|l| l.push_v4(0x0a00_0005)),
                ("2026-12-02T09:00:00Z", "h1", &|l| {
                    l.push_v6(0x2001_0db8 << 96 | 7);
                    l.push(Kind::Md5, b"d41d8cd98f00b204e9800998ecf8427e");
                }),
            ],
        );
        w.merge(b1).unwrap();
        w.seal().unwrap();
        // A second segment of the same day, from another source.
        let b2 = batch(
            "proxy.log",
            &[("2026-12-01T23:00:00Z", "h3", &|l| {
                l.push_v4(0x0a00_0005);
                l.push_host(b"mail.evil.com");
            })],
        );
        w.merge(b2).unwrap();
        w.seal().unwrap();
        // Per line, its distinct tokens; label suffixes are derived when sealing.
        assert_eq!(w.observations, 5 + 2);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.stats().slices, 2);
        assert_eq!(s.stats().segments, 3);

        let o = s.probe(Kind::Ipv4, "10.0.0.5", None);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].first, t("2026-12-01T10:00:00Z"));
        assert_eq!(o[0].last, t("2026-12-01T23:00:00Z"));
        assert_eq!(o[0].count, 3);
        assert_eq!(o[0].hosts, vec!["h1", "h2", "h3"]);
        assert_eq!(o[0].sources, vec!["fw.log", "proxy.log"]);
        assert!(s.probe(Kind::Ipv4, "10.0.0.6", None).is_empty());

        let c = s.probe_cidr("10.0.0.0/24".parse().unwrap(), None);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].value.as_deref(), Some("10.0.0.5"));
        assert!(s
            .probe_cidr("10.0.1.0/24".parse().unwrap(), None)
            .is_empty());
        let c6 = s.probe_cidr("2001:db8::/32".parse().unwrap(), None);
        assert_eq!(c6.len(), 1);
        assert_eq!(c6[0].value.as_deref(), Some("2001:db8::7"));

        let d = s.probe_domain("evil.com", None);
        let names: Vec<_> = d.iter().map(|o| o.value.clone().unwrap()).collect();
        assert_eq!(names, vec!["mail.evil.com", "www.evil.com"]);
        assert!(s.probe_domain("notevil.com", None).is_empty());
        assert!(s.probe_domain("vil.com", None).is_empty());
        assert_eq!(s.probe(Kind::Hostname, "www.evil.com", None).len(), 1);
        assert!(s.probe(Kind::Hostname, "evil.com", None).is_empty());

        let h = s.probe(Kind::Md5, "d41d8cd98f00b204e9800998ecf8427e", None);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].slice, t("2026-12-02T00:00:00Z").timestamp());
        // `since` leaves out what was last seen before it.
        assert!(s
            .probe(Kind::Ipv4, "10.0.0.5", Some(t("2026-12-02T00:00:00Z")))
            .is_empty());
    }

    #[test]
    fn compaction_merges_a_day_and_counts_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::new(dir.path(), WriterOptions::default()).unwrap();
        let probe = |d: &Path| {
            let s = Store::open(d).unwrap();
            (
                s.probe(Kind::Ipv4, "0.0.0.9", None),
                s.probe_domain("evil.com", None),
                s.stats().segments,
            )
        };
        for (i, host) in ["h1", "h2", "h3"].iter().enumerate() {
            let time = format!("2026-11-01T1{i}:00:00Z");
            let name = format!("x{i}.evil.com");
            w.merge(batch(
                &format!("src{i}"),
                &[(&time, host, &|l| {
                    l.push_v4(9);
                    l.push_host(name.as_bytes());
                })],
            ))
            .unwrap();
            w.seal().unwrap();
        }
        let (before, names_before, n) = probe(dir.path());
        assert_eq!(n, 3);
        assert_eq!(before[0].count, 3);
        let day = day_dir(dir.path(), t("2026-11-01T00:00:00Z").timestamp());
        // A crash after writing the merged segment, before deleting the old ones:
        // keep copies of them and put them back.
        let saved: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&day)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        assert_eq!(Store::compact(dir.path(), 1).unwrap(), 1);
        let (after, names_after, n) = probe(dir.path());
        assert_eq!(n, 1);
        assert_eq!(after, before);
        assert_eq!(names_after, names_before);
        assert_eq!(after[0].hosts, vec!["h1", "h2", "h3"]);
        assert_eq!(after[0].sources, vec!["src0", "src1", "src2"]);
        for (p, data) in saved {
            std::fs::write(p, data).unwrap();
        }
        let (again, _, n) = probe(dir.path());
        assert_eq!(n, 1, "covered segments are skipped");
        assert_eq!(again, before);
        // A later segment of the day is read beside the merged one.
        w.merge(batch(
            "src9",
            &[("2026-11-01T23:00:00Z", "h9", &|l| l.push_v4(9))],
        ))
        .unwrap();
        w.seal().unwrap();
        let (later, _, n) = probe(dir.path());
        assert_eq!(n, 2);
        assert_eq!(later[0].count, 4);
    }

    /// Probe speed at the scale: 7 days × 5M entries, 100k probes of values
    /// never seen and 100k of values seen. A figure, not a pass/fail:
    /// `cargo test --release --lib probe_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn probe_speed() {
        let n = 5_000_000u64;
        let mut store = Store::default();
        for day in 0..7u64 {
            let mut keys: Vec<u64> = (0..n)
                .map(|i| crate::retro::mix((day << 40) | i) | (1 << 63))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            let len = keys.len();
            store.segments.push(Segment {
                slice: day as i64 * SLICE_SECS,
                filter: segment::build_filter(&keys),
                keys,
                packed: vec![segment::pack(1, 2, 3); len],
                sets: vec![0; len],
                host_sets: vec![IdSet::default()],
                source_sets: vec![IdSet::default()],
                ..Segment::default()
            });
        }
        let t0 = std::time::Instant::now();
        let mut hits = 0;
        for i in 0..100_000u64 {
            hits += store
                .probe_key(
                    crate::retro::mix((99 << 40) | i) | (1 << 63),
                    Kind::Md5,
                    None,
                    None,
                )
                .len();
        }
        let absent = t0.elapsed();
        let t0 = std::time::Instant::now();
        for i in 0..100_000u64 {
            hits += store
                .probe_key(
                    crate::retro::mix((3 << 40) | (i * 37)) | (1 << 63),
                    Kind::Md5,
                    None,
                    None,
                )
                .len();
        }
        let present = t0.elapsed();
        eprintln!("7 days x {n} entries: 100k absent probes {absent:?}, 100k present probes {present:?} ({hits} hits)");
        assert!(hits >= 100_000);
    }

    #[test]
    fn retention_drops_oldest_days_by_age_then_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::new(dir.path(), WriterOptions::default()).unwrap();
        for day in 1..=9 {
            let time = format!("2026-11-{day:02}T12:00:00Z");
            w.merge(batch("s", &[(&time, "h", &|l| l.push_v4(day))]))
                .unwrap();
        }
        w.seal().unwrap();
        let newest = t("2026-11-09T00:00:00Z").timestamp();
        let dropped = Store::enforce_retention(dir.path(), newest, 7, u64::MAX).unwrap();
        assert_eq!(dropped, Dropped { age: 2, size: 0 });
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.stats().slices, 7);
        assert!(s.probe(Kind::Ipv4, "0.0.0.2", None).is_empty());
        assert_eq!(s.probe(Kind::Ipv4, "0.0.0.3", None).len(), 1);
        // By size: keep about three days' worth; the oldest go first.
        let per_day = s.stats().bytes / 7;
        let dropped = Store::enforce_retention(dir.path(), newest, 7, per_day * 3).unwrap();
        assert_eq!(dropped, Dropped { age: 0, size: 4 });
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.stats().slices, 3);
        assert!(s.probe(Kind::Ipv4, "0.0.0.6", None).is_empty());
        assert_eq!(s.probe(Kind::Ipv4, "0.0.0.7", None).len(), 1);
    }
}
