//! One immutable segment of the observation store: the observables of one time slice
//! (a UTC day) recorded between two seals, sorted by key, with a blocked bloom filter.
//!
//! # Layout (format 2, little-endian), and cost per distinct observable
//! ```text
//! header   72 B   magic "TRRETRO2", slice start (i64), section counts, `covers`
//! keys      8 B   u64 key per entry, ascending (IPv4 keys sort by address)
//! times     6 B   first (17 bits, seconds into the slice) | last (17 bits) << 17
//!                 | count (14 bits; 16383 = "see the count overflow table") << 34
//! set pair  2 B   u16 id of the entry's (host set, source set) pair in the pair
//!                 table (65535 = "see the pair overflow table")
//! filter ~1.25 B  blocked bloom, 512-bit blocks, 10 bits per key, 7 probes (~1% false
//!                 positives)
//! ---------------
//!        ~17.3 B  per entry (every observable; a host name adds one entry per label
//!                 suffix above its registrable domain)
//! pairs     4 B   per distinct pair: host-set id (u16) | source-set id (u16) << 16
//! overflow  8 B   per entry counted 16383 times or more in the slice (u32 entry, u32
//!                 count, saturating at 2^30 - 1), and per entry whose pair is the
//!                 65536th or later (u32 entry, u32 pair)
//! v6       16 B   per IPv6 address: u128, ascending (CIDR range scans; the key is a hash)
//! names  ~2+R B   per host name, sorted by the reversed name (the subdomains of a
//!                 domain are one contiguous range), front-coded from the end: varint
//!                 bytes shared with the previous name's end, varint length R of the
//!                 rest, the rest (`mail.evil.com` after `www.evil.com`: 9, 4, "mail")
//! hosts, sources  the slice's host and source names (u16 length + bytes), once each
//! host sets, source sets  u8 (count | 0x80 when capped) + count × u16 ids, deduplicated
//! ```
//! Format 1 (`TRRETRO1`: 8-byte times and count, 4-byte set ids, names as u32 end
//! offsets and text, 64-byte header) is still read; segments are written in format 2.
//! In memory a segment is the same in both (the times and count as one u64, the set
//! ids as one u32, names as strings): the compact columns are expanded on reading.
//! The sections are stored one after the other as columns, so a probe reads keys
//! alone; a segment is read whole into memory (no mmap in the tree).
//!
//! Invariant: a segment file is written to a temporary name, fsynced and renamed: a
//! reader sees a whole segment or none.

use std::io::{self, Write};
use std::path::Path;

use super::mix;

/// The current format (2).
pub const MAGIC: &[u8; 8] = b"TRRETRO2";
/// Format 1, still read.
pub const MAGIC_V1: &[u8; 8] = b"TRRETRO1";
const HEADER: usize = 72;
const HEADER_V1: usize = 64;
/// Bytes per entry in the entry columns: key 8, times and count 6, set pair 2.
pub const ENTRY_BYTES: usize = 16;
/// A count at or above this is in the count overflow table (14 bits in the entry).
pub const COUNT_ESCAPE: u16 = (1 << 14) - 1;
/// A set-pair id of this value is in the pair overflow table.
pub const PAIR_ESCAPE: u16 = u16::MAX;
/// Filter bits per key.
const BITS_PER_KEY: usize = 10;
const PROBES: u32 = 7;
/// The most a first/last offset can hold (17 bits: more than a day of seconds).
pub const MAX_OFFSET: u32 = (1 << 17) - 1;
pub const MAX_COUNT: u64 = (1 << 30) - 1;

#[inline]
pub fn pack(first: u32, last: u32, count: u64) -> u64 {
    u64::from(first.min(MAX_OFFSET))
        | (u64::from(last.min(MAX_OFFSET)) << 17)
        | (count.min(MAX_COUNT) << 34)
}

#[inline]
pub fn unpack(p: u64) -> (u32, u32, u64) {
    (
        (p & u64::from(MAX_OFFSET)) as u32,
        ((p >> 17) & u64::from(MAX_OFFSET)) as u32,
        p >> 34,
    )
}

/// A capped set of ids (hosts or sources).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct IdSet {
    pub ids: Vec<u16>,
    /// More ids were seen than the cap.
    pub more: bool,
}

/// A segment, in memory.
#[derive(Clone, Debug, Default)]
pub struct Segment {
    /// Start of the slice (unix seconds).
    pub slice: i64,
    pub keys: Vec<u64>,
    pub packed: Vec<u64>,
    pub sets: Vec<u32>,
    pub filter: Vec<u64>,
    pub v6: Vec<u128>,
    /// Host names sorted by their reversed bytes.
    pub names: Names,
    pub hosts: Vec<String>,
    pub sources: Vec<String>,
    pub host_sets: Vec<IdSet>,
    pub source_sets: Vec<IdSet>,
    /// A merged segment replaces every segment of its day numbered below this
    /// (0: none); readers skip those, so a crash between writing the merged segment
    /// and deleting the old ones counts nothing twice.
    pub covers: u32,
}

/// The filter's block and bit pattern for `key`.
#[inline]
fn filter_pos(key: u64, blocks: usize) -> (usize, u64) {
    let h = mix(key ^ 0x5bd1_e995_5bd1_e995);
    let block = (((h >> 32) * blocks as u64) >> 32) as usize;
    (block, h)
}

fn filter_bits(h: u64) -> impl Iterator<Item = usize> {
    let h2 = mix(h);
    (0..PROBES).map(move |i| ((h2 >> (9 * i)) & 511) as usize)
}

/// Builds a blocked bloom filter over `keys`.
pub fn build_filter(keys: &[u64]) -> Vec<u64> {
    let blocks = (keys.len() * BITS_PER_KEY).div_ceil(512).max(1);
    let mut f = vec![0u64; blocks * 8];
    for &k in keys {
        let (b, h) = filter_pos(k, blocks);
        for bit in filter_bits(h) {
            f[b * 8 + bit / 64] |= 1 << (bit % 64);
        }
    }
    f
}

/// Whether the filter may hold `key` (false: it surely does not).
#[inline]
pub fn filter_may_hold(filter: &[u64], key: u64) -> bool {
    let blocks = filter.len() / 8;
    if blocks == 0 {
        return false;
    }
    let (b, h) = filter_pos(key, blocks);
    filter_bits(h).all(|bit| filter[b * 8 + bit / 64] & (1 << (bit % 64)) != 0)
}

/// A segment's host names, sorted by their reversed bytes, back to back in one string
/// (no allocation per name: a 7-day store holds millions).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    text: String,
    ends: Vec<u32>,
    /// Bytes of the names section on disk ([`names_encoded_len`]).
    encoded: usize,
}

impl Names {
    /// The names of `sorted` (already in [`sort_names`] order).
    pub fn from_sorted<S: AsRef<str>>(sorted: &[S]) -> Names {
        let mut n = Names::default();
        let mut prev = "";
        for s in sorted {
            let s = s.as_ref();
            let shared = shared_suffix(prev, s);
            n.encoded += varint_len(shared) + varint_len(s.len() - shared) + s.len() - shared;
            n.text.push_str(s);
            n.ends.push(n.text.len() as u32);
            prev = s;
        }
        n
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`th name ("" past the end).
    pub fn get(&self, i: usize) -> &str {
        let s = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).map_or(0, |&e| e as usize)
        };
        let e = self.ends.get(i).map_or(s, |&e| e as usize);
        self.text.get(s..e).unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Bytes of the names section on disk.
    pub fn encoded_len(&self) -> usize {
        self.encoded
    }
}

/// Sorts names by their reversed bytes.
pub fn sort_names(names: &mut [String]) {
    names.sort_by(|a, b| a.bytes().rev().cmp(b.bytes().rev()));
}

impl Segment {
    /// The entry of `key`, if the segment holds it.
    pub fn find(&self, key: u64) -> Option<usize> {
        if !filter_may_hold(&self.filter, key) {
            return None;
        }
        self.keys.binary_search(&key).ok()
    }

    /// Entries whose keys lie in `lo..=hi`.
    pub fn range(&self, lo: u64, hi: u64) -> std::ops::Range<usize> {
        let s = self.keys.partition_point(|&k| k < lo);
        let e = self.keys.partition_point(|&k| k <= hi);
        s..e.max(s)
    }

    /// IPv6 addresses in `lo..=hi`.
    pub fn v6_range(&self, lo: u128, hi: u128) -> &[u128] {
        let s = self.v6.partition_point(|&a| a < lo);
        let e = self.v6.partition_point(|&a| a <= hi);
        &self.v6[s..e.max(s)]
    }

    /// Host names equal to `domain` or ending in `.domain`.
    pub fn names_under(&self, domain: &str) -> Vec<&str> {
        let d = domain.as_bytes();
        let (mut lo, mut hi) = (0, self.names.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self
                .names
                .get(mid)
                .bytes()
                .rev()
                .lt(d.iter().rev().copied())
            {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..self.names.len())
            .map(|i| self.names.get(i))
            .take_while(|n| n.len() >= d.len() && n.as_bytes().ends_with(d))
            .filter(|n| n.len() == domain.len() || n.as_bytes()[n.len() - domain.len() - 1] == b'.')
            .collect()
    }

    /// Bytes the segment takes on disk.
    pub fn encoded_len(&self) -> usize {
        let strs = |v: &[String]| {
            v.iter()
                .map(|s| 2 + s.len().min(usize::from(u16::MAX)))
                .sum::<usize>()
        };
        let sets = |v: &[IdSet]| v.iter().map(|s| 1 + 2 * s.ids.len()).sum::<usize>();
        let (pairs, pair_over) = self.pairs();
        let count_over = self.count_overflow().count();
        HEADER
            + self.keys.len() * ENTRY_BYTES
            + self.filter.len() * 8
            + pairs.len() * 4
            + pair_over.len() * 8
            + count_over * 8
            + self.v6.len() * 16
            + self.names.encoded_len()
            + strs(&self.hosts)
            + strs(&self.sources)
            + sets(&self.host_sets)
            + sets(&self.source_sets)
    }

    /// The distinct (host set, source set) pairs, in order of first use, and the
    /// entries whose pair is past the first [`PAIR_ESCAPE`] (entry, pair).
    fn pairs(&self) -> (Vec<u32>, Vec<(u32, u32)>) {
        let mut ids: super::FastMap<u32, u32> = Default::default();
        let mut pairs = Vec::new();
        let mut over = Vec::new();
        for (i, &s) in self.sets.iter().enumerate() {
            let id = *ids.entry(s).or_insert_with(|| {
                pairs.push(s);
                pairs.len() as u32 - 1
            });
            if id >= u32::from(PAIR_ESCAPE) {
                over.push((i as u32, id));
            }
        }
        (pairs, over)
    }

    /// Entries whose count does not fit the entry's 14 bits: (entry, count).
    fn count_overflow(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.packed.iter().enumerate().filter_map(|(i, &p)| {
            let c = unpack(p).2;
            (c >= u64::from(COUNT_ESCAPE)).then_some((i as u32, c.min(MAX_COUNT) as u32))
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let (pairs, pair_over) = self.pairs();
        let count_over: Vec<(u32, u32)> = self.count_overflow().collect();
        let mut names = Vec::with_capacity(self.names.encoded_len());
        encode_names(&self.names, &mut names);
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.slice.to_le_bytes());
        for n in [
            self.keys.len(),
            self.filter.len(),
            self.v6.len(),
            self.names.len(),
            self.hosts.len(),
            self.sources.len(),
            self.host_sets.len(),
            self.source_sets.len(),
        ] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        out.extend_from_slice(&self.covers.to_le_bytes());
        for n in [pairs.len(), pair_over.len(), count_over.len(), names.len()] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        out.resize(HEADER, 0);
        for k in &self.keys {
            out.extend_from_slice(&k.to_le_bytes());
        }
        for &p in &self.packed {
            let (first, last, count) = unpack(p);
            let w = u64::from(first)
                | (u64::from(last) << 17)
                | (count.min(u64::from(COUNT_ESCAPE)) << 34);
            out.extend_from_slice(&w.to_le_bytes()[..6]);
        }
        let mut ids: super::FastMap<u32, u16> = Default::default();
        for (i, &p) in pairs.iter().enumerate().take(usize::from(PAIR_ESCAPE)) {
            ids.insert(p, i as u16);
        }
        for s in &self.sets {
            let id = ids.get(s).copied().unwrap_or(PAIR_ESCAPE);
            out.extend_from_slice(&id.to_le_bytes());
        }
        for w in &self.filter {
            out.extend_from_slice(&w.to_le_bytes());
        }
        for p in &pairs {
            out.extend_from_slice(&p.to_le_bytes());
        }
        for (i, v) in pair_over.iter().chain(&count_over) {
            out.extend_from_slice(&i.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        for a in &self.v6 {
            out.extend_from_slice(&a.to_le_bytes());
        }
        out.extend_from_slice(&names);
        for s in self.hosts.iter().chain(&self.sources) {
            let b = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(b);
        }
        for set in self.host_sets.iter().chain(&self.source_sets) {
            out.push(set.ids.len() as u8 | if set.more { 0x80 } else { 0 });
            for id in &set.ids {
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        out
    }

    pub fn decode(data: &[u8]) -> Result<Segment, &'static str> {
        let mut r = Cursor { data, at: 0 };
        let magic = r.take(8)?;
        if magic == MAGIC_V1 {
            return Segment::decode_v1(data);
        }
        if magic != MAGIC {
            return Err("not a segment (bad magic)");
        }
        let slice = i64::from_le_bytes(r.array()?);
        let mut counts = [0usize; 12];
        let mut covers = 0;
        for (i, c) in counts.iter_mut().enumerate() {
            if i == 8 {
                covers = u32::from_le_bytes(r.array()?);
            }
            *c = u32::from_le_bytes(r.array()?) as usize;
        }
        r.at = HEADER;
        let [n, nf, n6, nn, nh, ns, nhs, nss, np, npo, nco, names_len] = counts;
        // Bound every count by what the file can hold before allocating.
        if n * ENTRY_BYTES + nf * 8 + np * 4 + (npo + nco) * 8 + n6 * 16 + names_len > data.len() {
            return Err("truncated segment");
        }
        let keys = r
            .take(n * 8)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect::<Vec<_>>();
        let mut packed: Vec<u64> = r
            .take(n * 6)?
            .chunks_exact(6)
            .map(|c| {
                let mut w = [0u8; 8];
                w[..6].copy_from_slice(c);
                let w = u64::from_le_bytes(w);
                pack(
                    (w & u64::from(MAX_OFFSET)) as u32,
                    ((w >> 17) & u64::from(MAX_OFFSET)) as u32,
                    w >> 34,
                )
            })
            .collect();
        let pair_ids: Vec<u16> = r
            .take(n * 2)?
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let filter = r
            .take(nf * 8)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect::<Vec<_>>();
        let pairs = r
            .take(np * 4)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect::<Vec<_>>();
        let mut sets = Vec::with_capacity(n);
        for id in pair_ids {
            // An escaped id is set from the overflow table below.
            sets.push(pairs.get(usize::from(id)).copied().unwrap_or(u32::MAX));
        }
        for _ in 0..npo {
            let i = u32::from_le_bytes(r.array()?) as usize;
            let p = u32::from_le_bytes(r.array()?) as usize;
            *sets.get_mut(i).ok_or("bad pair overflow")? =
                *pairs.get(p).ok_or("bad pair overflow")?;
        }
        for _ in 0..nco {
            let i = u32::from_le_bytes(r.array()?) as usize;
            let c = u32::from_le_bytes(r.array()?);
            let p = packed.get_mut(i).ok_or("bad count overflow")?;
            let (first, last, _) = unpack(*p);
            *p = pack(first, last, u64::from(c));
        }
        let v6 = r
            .take(n6 * 16)?
            .chunks_exact(16)
            .map(|c| u128::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect::<Vec<_>>();
        let names = decode_names(r.take(names_len)?, nn)?;
        let head = Segment {
            slice,
            keys,
            packed,
            sets,
            filter,
            v6,
            names,
            covers,
            ..Segment::default()
        };
        head.with_tail(&mut r, [nh, ns, nhs, nss])
    }

    /// The sections both formats end with (the host and source names and their
    /// sets), read into `self`, and the check that the keys are sorted.
    fn with_tail(
        mut self,
        r: &mut Cursor<'_>,
        counts: [usize; 4],
    ) -> Result<Segment, &'static str> {
        let [nh, ns, nhs, nss] = counts;
        self.hosts = r.strs(nh)?;
        self.sources = r.strs(ns)?;
        self.host_sets = r.sets(nhs)?;
        self.source_sets = r.sets(nss)?;
        if self.keys.windows(2).any(|w| w[0] >= w[1]) {
            return Err("keys not sorted");
        }
        Ok(self)
    }

    /// Format 1 (`TRRETRO1`: 8-byte times and count, 4-byte set ids, names as offsets
    /// and text), still read.
    fn decode_v1(data: &[u8]) -> Result<Segment, &'static str> {
        let mut r = Cursor { data, at: 8 };
        let slice = i64::from_le_bytes(r.array()?);
        let mut counts = [0usize; 8];
        for c in &mut counts {
            *c = u32::from_le_bytes(r.array()?) as usize;
        }
        let covers = u32::from_le_bytes(r.array()?);
        r.at = HEADER_V1;
        let [n, nf, n6, nn, nh, ns, nhs, nss] = counts;
        // Bound every count by what the file can hold before allocating.
        if n * 20 + nf * 8 + n6 * 16 + nn * 4 > data.len() {
            return Err("truncated segment");
        }
        let keys = (0..n).map(|_| r.u64()).collect::<Result<Vec<_>, _>>()?;
        let packed = (0..n).map(|_| r.u64()).collect::<Result<Vec<_>, _>>()?;
        let sets = (0..n)
            .map(|_| r.array().map(u32::from_le_bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = (0..nf).map(|_| r.u64()).collect::<Result<Vec<_>, _>>()?;
        let v6 = (0..n6)
            .map(|_| r.array().map(u128::from_le_bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let ends = (0..nn)
            .map(|_| r.array().map(u32::from_le_bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let blob = r.take(ends.last().copied().unwrap_or(0) as usize)?;
        let mut list = Vec::with_capacity(nn);
        let mut s = 0usize;
        for e in ends {
            let e = e as usize;
            let b = blob.get(s..e).ok_or("bad name offsets")?;
            list.push(String::from_utf8_lossy(b));
            s = e;
        }
        let names = Names::from_sorted(&list);
        let head = Segment {
            slice,
            keys,
            packed,
            sets,
            filter,
            v6,
            names,
            covers,
            ..Segment::default()
        };
        head.with_tail(&mut r, [nh, ns, nhs, nss])
    }

    /// Writes the segment to `path` atomically (temporary file, fsync, rename, fsync
    /// of the directory).
    pub fn write_to(&self, path: &Path) -> io::Result<u64> {
        let bytes = self.encode();
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(bytes.len() as u64)
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let b = self
            .data
            .get(self.at..self.at.checked_add(n).ok_or("truncated segment")?)
            .ok_or("truncated segment")?;
        self.at += n;
        Ok(b)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        self.array().map(u64::from_le_bytes)
    }
    /// `k` strings, each a u16 length and its bytes.
    fn strs(&mut self, k: usize) -> Result<Vec<String>, &'static str> {
        (0..k)
            .map(|_| {
                let len = u16::from_le_bytes(self.array()?) as usize;
                Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
            })
            .collect()
    }
    /// `k` id sets, each a u8 (count | 0x80 when capped) and its u16 ids.
    fn sets(&mut self, k: usize) -> Result<Vec<IdSet>, &'static str> {
        (0..k)
            .map(|_| {
                let b = self.take(1)?[0];
                let ids = (0..(b & 0x7f))
                    .map(|_| self.array().map(u16::from_le_bytes))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(IdSet {
                    ids,
                    more: b & 0x80 != 0,
                })
            })
            .collect()
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn read_varint(data: &[u8], at: &mut usize) -> Result<usize, &'static str> {
    let mut v = 0usize;
    for shift in (0..35).step_by(7) {
        let b = *data.get(*at).ok_or("truncated names")?;
        *at += 1;
        v |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("bad varint in names")
}

/// The bytes `name` shares at its end with `prev`.
fn shared_suffix(prev: &str, name: &str) -> usize {
    prev.bytes()
        .rev()
        .zip(name.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count()
}

/// Bytes of the names section: per name (sorted by reversed bytes, so neighbours share
/// their ends), the length of the end it shares with the one before, the length of the
/// rest, and the rest: `mail.evil.com` after `www.evil.com` is `9, 4, "mail"`.
pub fn names_encoded_len(names: &Names) -> usize {
    names.encoded_len()
}

fn encode_names(names: &Names, out: &mut Vec<u8>) {
    let mut prev = "";
    for name in names.iter() {
        let shared = shared_suffix(prev, name);
        let rest = name.len() - shared;
        push_varint(out, shared);
        push_varint(out, rest);
        out.extend_from_slice(&name.as_bytes()[..rest]);
        prev = name;
    }
}

fn decode_names(data: &[u8], count: usize) -> Result<Names, &'static str> {
    let mut text: Vec<u8> = Vec::with_capacity(data.len() * 3);
    let mut ends: Vec<u32> = Vec::with_capacity(count.min(data.len() / 2));
    let mut at = 0;
    let mut prev = 0..0;
    for _ in 0..count {
        let shared = read_varint(data, &mut at)?;
        let rest = read_varint(data, &mut at)?;
        if shared > prev.len() {
            return Err("bad shared length in names");
        }
        let head = data
            .get(at..at.saturating_add(rest))
            .ok_or("truncated names")?;
        at += rest;
        let start = text.len();
        text.extend_from_slice(head);
        text.extend_from_within(prev.end - shared..prev.end);
        if text.len() > u32::MAX as usize {
            return Err("names too long");
        }
        ends.push(text.len() as u32);
        prev = start..text.len();
    }
    if at != data.len() {
        return Err("names section length mismatch");
    }
    let text = match String::from_utf8(text) {
        Ok(t) => t,
        Err(e) => {
            // Not written by tripline (names are punycode): each name read lossily.
            let bytes = e.into_bytes();
            let mut list = Vec::with_capacity(ends.len());
            let mut s = 0;
            for &e in &ends {
                list.push(String::from_utf8_lossy(&bytes[s..e as usize]).into_owned());
                s = e as usize;
            }
            return Ok(Names::from_sorted(&list));
        }
    };
    Ok(Names {
        text,
        ends,
        encoded: data.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Segment {
        let mut keys: Vec<u64> = (0..1000u64).map(|i| mix(i) | 1 << 63).collect();
        keys.push(super::super::v4_key(0x0a00_0001));
        keys.sort_unstable();
        let n = keys.len();
        let mut names = vec![
            "a.evil.com".to_string(),
            "evil.com".to_string(),
            "notevil.com".to_string(),
            "b.a.evil.com".to_string(),
            "evil.com.au".to_string(),
        ];
        sort_names(&mut names);
        let names = Names::from_sorted(&names);
        Segment {
            slice: 1_700_000_000 / 86_400 * 86_400,
            filter: build_filter(&keys),
            packed: (0..n as u64)
                .map(|i| pack(i as u32, i as u32 + 5, i))
                .collect(),
            sets: vec![0; n],
            keys,
            v6: vec![1, 5, 1 << 100],
            names,
            hosts: vec!["fw01".into()],
            sources: vec!["/var/log/x".into()],
            host_sets: vec![IdSet {
                ids: vec![0],
                more: true,
            }],
            source_sets: vec![IdSet {
                ids: vec![0],
                more: false,
            }],
            covers: 3,
        }
    }

    #[test]
    fn segment_round_trip() {
        let s = sample();
        let bytes = s.encode();
        assert_eq!(bytes.len(), s.encoded_len());
        let d = Segment::decode(&bytes).unwrap();
        assert_eq!(d.keys, s.keys);
        assert_eq!(d.packed, s.packed);
        assert_eq!(d.filter, s.filter);
        assert_eq!(d.v6, s.v6);
        assert_eq!(d.names, s.names);
        assert_eq!(d.hosts, s.hosts);
        assert_eq!(d.host_sets, s.host_sets);
        assert_eq!(d.source_sets, s.source_sets);
        assert_eq!(d.covers, 3);
        for (i, k) in s.keys.iter().enumerate() {
            assert_eq!(d.find(*k), Some(i));
        }
        // Truncation anywhere is an error, never a panic.
        for cut in [0, 10, 64, 100, bytes.len() - 1] {
            assert!(Segment::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }

    /// Counts past the entry's 14 bits and set pairs past 65535 go to the overflow
    /// tables and come back whole; names come back from their front coding.
    #[test]
    fn overflow_tables_and_front_coded_names_round_trip() {
        let n = 70_000u64;
        let mut keys: Vec<u64> = (0..n).map(|i| mix(i) | 1 << 63).collect();
        keys.sort_unstable();
        let mut names: Vec<String> = (0..500)
            .map(|i| format!("h{i}.d{}.example.com", i % 7))
            .chain(["münchen.de".to_string(), "x.münchen.de".to_string()])
            .collect();
        sort_names(&mut names);
        let names = Names::from_sorted(&names);
        let s = Segment {
            slice: 86_400,
            filter: build_filter(&keys),
            packed: (0..n)
                .map(|i| {
                    pack(
                        i as u32 % 1000,
                        86_399,
                        [1, 16_382, 16_383, 1 << 29, MAX_COUNT][i as usize % 5],
                    )
                })
                .collect(),
            // Distinct pairs for every entry: more than a u16 can number.
            sets: (0..n as u32)
                .map(|i| i.wrapping_mul(2_654_435_761))
                .collect(),
            keys,
            names,
            ..Segment::default()
        };
        let bytes = s.encode();
        assert_eq!(bytes.len(), s.encoded_len());
        let d = Segment::decode(&bytes).unwrap();
        assert_eq!(d.packed, s.packed);
        assert_eq!(d.sets, s.sets);
        assert_eq!(d.names, s.names);
        assert!(
            names_encoded_len(&s.names) < s.names.iter().map(|n| n.len() + 4).sum::<usize>() / 2
        );
        assert_eq!(d.names.get(0), s.names.get(0));
        assert_eq!(d.names.iter().count(), 502);
        for cut in [70, 1000, bytes.len() - 1] {
            assert!(Segment::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }

    /// A segment of format 1 (written by earlier builds) still reads.
    #[test]
    fn format_1_still_reads() {
        let s = sample();
        let mut v1 = Vec::new();
        v1.extend_from_slice(MAGIC_V1);
        v1.extend_from_slice(&s.slice.to_le_bytes());
        for n in [
            s.keys.len(),
            s.filter.len(),
            s.v6.len(),
            s.names.len(),
            1,
            1,
            1,
            1,
        ] {
            v1.extend_from_slice(&(n as u32).to_le_bytes());
        }
        v1.extend_from_slice(&s.covers.to_le_bytes());
        v1.resize(HEADER_V1, 0);
        s.keys
            .iter()
            .for_each(|k| v1.extend_from_slice(&k.to_le_bytes()));
        s.packed
            .iter()
            .for_each(|k| v1.extend_from_slice(&k.to_le_bytes()));
        s.sets
            .iter()
            .for_each(|k| v1.extend_from_slice(&k.to_le_bytes()));
        s.filter
            .iter()
            .for_each(|k| v1.extend_from_slice(&k.to_le_bytes()));
        s.v6.iter()
            .for_each(|k| v1.extend_from_slice(&k.to_le_bytes()));
        let mut end = 0u32;
        for n in s.names.iter() {
            end += n.len() as u32;
            v1.extend_from_slice(&end.to_le_bytes());
        }
        s.names
            .iter()
            .for_each(|n| v1.extend_from_slice(n.as_bytes()));
        for h in [&s.hosts[0], &s.sources[0]] {
            v1.extend_from_slice(&(h.len() as u16).to_le_bytes());
            v1.extend_from_slice(h.as_bytes());
        }
        v1.extend_from_slice(&[0x81, 0, 0, 0x01, 0, 0]);
        let d = Segment::decode(&v1).unwrap();
        assert_eq!(d.keys, s.keys);
        assert_eq!(d.packed, s.packed);
        assert_eq!(d.names, s.names);
        assert_eq!(d.host_sets, s.host_sets);
        assert_eq!(d.source_sets, s.source_sets);
        assert_eq!(d.covers, 3);
    }

    #[test]
    fn pack_saturates() {
        assert_eq!(unpack(pack(5, 86_399, 7)), (5, 86_399, 7));
        assert_eq!(unpack(pack(0, 0, u64::MAX)).2, MAX_COUNT);
    }

    #[test]
    fn filter_has_no_false_negatives_and_few_false_positives() {
        let keys: Vec<u64> = (0..20_000u64).map(|i| mix(i * 7 + 1)).collect();
        let f = build_filter(&keys);
        assert!(keys.iter().all(|&k| filter_may_hold(&f, k)));
        let fp = (0..100_000u64)
            .map(|i| mix(i * 7 + 2) ^ 0xdead)
            .filter(|&k| filter_may_hold(&f, k))
            .count();
        assert!(fp < 3_000, "false positive rate too high: {fp}/100000");
        assert!(!filter_may_hold(&[], 5));
    }

    #[test]
    fn names_under_takes_label_boundaries() {
        let s = sample();
        let mut got = s.names_under("evil.com");
        got.sort();
        assert_eq!(got, vec!["a.evil.com", "b.a.evil.com", "evil.com"]);
        assert_eq!(s.names_under("a.evil.com").len(), 2);
        assert!(s.names_under("vil.com").is_empty());
        assert!(s.names_under("other.org").is_empty());
    }

    #[test]
    fn ranges() {
        let s = sample();
        let v4 = super::super::v4_key(0x0a00_0001);
        let r = s.range(
            super::super::v4_key(0x0a00_0000),
            super::super::v4_key(0x0aff_ffff),
        );
        assert_eq!(r.len(), 1);
        assert_eq!(s.keys[r.start], v4);
        assert_eq!(s.v6_range(2, 10), &[5]);
    }
}
