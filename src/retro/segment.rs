//! One immutable segment of the observation store: the observables of one time slice
//! (a UTC day) recorded between two seals, sorted by key, with a blocked bloom filter.
//!
//! # Layout (little-endian), and cost per distinct observable
//! ```text
//! header   64 B   magic "TRRETRO1", slice start (i64), section counts, `covers`
//! keys     8 B    u64 key per entry, ascending (IPv4 keys sort by address)
//! packed   8 B    first (17 bits, seconds into the slice) | last (17 bits) << 17
//!                 | count (30 bits, saturating) << 34
//! sets     4 B    host-set id (u16) | source-set id (u16) << 16
//! filter ~1.25 B  blocked bloom, 512-bit blocks, 10 bits per key, 7 probes (~1% false
//!                 positives)
//! ---------------
//!        ~21.3 B  per entry (every observable; a host name adds one entry per label
//!                 suffix above its registrable domain)
//! v6       16 B   per IPv6 address: u128, ascending (CIDR range scans; the key is a hash)
//! names   ~L+4 B  per host name: u32 end offset + the name, sorted by the reversed
//!                 name, so the subdomains of a domain are one contiguous range
//! hosts, sources  the slice's host and source names (u16 length + bytes), once each
//! host sets, source sets  u8 (count | 0x80 when capped) + count × u16 ids, deduplicated
//! ```
//! The sections are stored one after the other as columns, so a probe reads keys
//! alone; a segment is read whole into memory (no mmap in the tree).
//!
//! Invariant: a segment file is written to a temporary name, fsynced and renamed: a
//! reader sees a whole segment or none.

use std::io::{self, Write};
use std::path::Path;

use super::mix;

pub const MAGIC: &[u8; 8] = b"TRRETRO1";
const HEADER: usize = 64;
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
    pub names: Vec<String>,
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
        let d: Vec<u8> = domain.bytes().rev().collect();
        let s = self
            .names
            .partition_point(|n| n.bytes().rev().lt(d.iter().copied()));
        self.names[s..]
            .iter()
            .take_while(|n| n.bytes().rev().take(d.len()).eq(d.iter().copied()))
            .filter(|n| n.len() == domain.len() || n.as_bytes()[n.len() - domain.len() - 1] == b'.')
            .map(String::as_str)
            .collect()
    }

    /// Bytes the segment takes on disk.
    pub fn encoded_len(&self) -> usize {
        let strs = |v: &[String]| v.iter().map(|s| 2 + s.len()).sum::<usize>();
        let sets = |v: &[IdSet]| v.iter().map(|s| 1 + 2 * s.ids.len()).sum::<usize>();
        HEADER
            + self.keys.len() * 20
            + self.filter.len() * 8
            + self.v6.len() * 16
            + self.names.iter().map(|n| 4 + n.len()).sum::<usize>()
            + strs(&self.hosts)
            + strs(&self.sources)
            + sets(&self.host_sets)
            + sets(&self.source_sets)
    }

    pub fn encode(&self) -> Vec<u8> {
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
        out.resize(HEADER, 0);
        for k in &self.keys {
            out.extend_from_slice(&k.to_le_bytes());
        }
        for p in &self.packed {
            out.extend_from_slice(&p.to_le_bytes());
        }
        for s in &self.sets {
            out.extend_from_slice(&s.to_le_bytes());
        }
        for w in &self.filter {
            out.extend_from_slice(&w.to_le_bytes());
        }
        for a in &self.v6 {
            out.extend_from_slice(&a.to_le_bytes());
        }
        let mut end = 0u32;
        for n in &self.names {
            end += n.len() as u32;
            out.extend_from_slice(&end.to_le_bytes());
        }
        for n in &self.names {
            out.extend_from_slice(n.as_bytes());
        }
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
        if r.take(8)? != MAGIC {
            return Err("not a segment (bad magic)");
        }
        let slice = i64::from_le_bytes(r.array()?);
        let mut counts = [0usize; 8];
        for c in &mut counts {
            *c = u32::from_le_bytes(r.array()?) as usize;
        }
        let covers = u32::from_le_bytes(r.array()?);
        r.at = HEADER;
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
        let mut names = Vec::with_capacity(nn);
        let mut s = 0usize;
        for e in ends {
            let e = e as usize;
            let b = blob.get(s..e).ok_or("bad name offsets")?;
            names.push(String::from_utf8_lossy(b).into_owned());
            s = e;
        }
        let mut strs = |k: usize| -> Result<Vec<String>, &'static str> {
            (0..k)
                .map(|_| {
                    let len = u16::from_le_bytes(r.array()?) as usize;
                    Ok(String::from_utf8_lossy(r.take(len)?).into_owned())
                })
                .collect()
        };
        let hosts = strs(nh)?;
        let sources = strs(ns)?;
        let mut sets_of = |k: usize| -> Result<Vec<IdSet>, &'static str> {
            (0..k)
                .map(|_| {
                    let b = r.take(1)?[0];
                    let ids = (0..(b & 0x7f))
                        .map(|_| r.array().map(u16::from_le_bytes))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(IdSet {
                        ids,
                        more: b & 0x80 != 0,
                    })
                })
                .collect()
        };
        let host_sets = sets_of(nhs)?;
        let source_sets = sets_of(nss)?;
        if keys.windows(2).any(|w| w[0] >= w[1]) {
            return Err("keys not sorted");
        }
        Ok(Segment {
            slice,
            keys,
            packed,
            sets,
            filter,
            v6,
            names,
            hosts,
            sources,
            host_sets,
            source_sets,
            covers,
        })
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
