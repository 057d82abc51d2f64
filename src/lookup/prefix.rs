//! `PrefixTable`: IPv4/IPv6 addresses and CIDRs, looked up by address. Used by the
//! index (indicators) and the warninglists (`cidr` lists).
//!
//! A lookup returns every prefix that covers the address, most specific first. The
//! table is a prefix trie flattened by level: one hash map per prefix length that
//! occurs (at most 33 for IPv4, 129 for IPv6; real intel has about a dozen), each
//! mapping a masked network to a `u32` payload: an indicator id in the index, an
//! entry id in the warninglists. A lookup costs one probe per distinct prefix length
//! (for IPv4 after [`PrefixTable::finish`], only the lengths present in the address's
//! /16), whatever the number of entries. Memory per entry is a map slot and a control
//! byte before the load factor: 9 bytes for IPv4, 33 for IPv6 (a 16-byte-aligned
//! `u128` key), plus 512 KiB for the IPv4 summary: smaller and faster than a pointer
//! trie, which would cost a node per bit on the path. Lookups never allocate.
//!
//! Callers parse and canonicalise addresses (with `ipnet` types) at build time, never
//! per lookup; [`v4_bits`] and [`v6_bits`] turn them into the table's integers.

use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

use hashbrown::HashMap;

type State = foldhash::fast::FixedState;

/// An address family as an unsigned integer.
pub trait Bits: Copy + Eq + Hash + Ord {
    const WIDTH: u8;
    fn mask(self, len: u8) -> Self;
    /// The top 16 bits, for the per-block summary (IPv4 only).
    fn top16(self) -> usize;
}

impl Bits for u32 {
    const WIDTH: u8 = 32;
    #[inline]
    fn mask(self, len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - len as u32))
        }
    }
    #[inline]
    fn top16(self) -> usize {
        (self >> 16) as usize
    }
}

impl Bits for u128 {
    const WIDTH: u8 = 128;
    #[inline]
    fn mask(self, len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - len as u32))
        }
    }
    #[inline]
    fn top16(self) -> usize {
        (self >> 112) as usize
    }
}

/// Prefixes of one family mapped to a `u32` payload (an indicator id).
#[derive(Clone, Debug)]
pub struct PrefixTable<A: Bits> {
    /// (prefix length, table), longest prefix first.
    levels: Vec<(u8, HashMap<A, u32, State>)>,
    /// IPv4 only, after [`PrefixTable::finish`]: per /16 block, a bit per prefix length
    /// that has an entry inside or covering the block. A lookup probes only those
    /// levels: with a million scattered addresses and a dozen CIDR lengths, about one
    /// probe per address instead of a dozen. 512 KiB.
    summary: Vec<u64>,
}

impl<A: Bits> Default for PrefixTable<A> {
    fn default() -> Self {
        PrefixTable {
            levels: Vec::new(),
            summary: Vec::new(),
        }
    }
}

impl<A: Bits> PrefixTable<A> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `net/len` (the address is masked here). A prefix added twice keeps the
    /// first payload.
    pub fn insert(&mut self, net: A, len: u8, payload: u32) {
        self.entry(net, len, payload);
    }

    /// Adds `net/len` with `payload` unless the prefix is there already; returns the
    /// payload the prefix holds (the first one given). Lets a caller keep its own
    /// per-prefix data (e.g. which lists hold a range) indexed by the payload.
    pub fn entry(&mut self, net: A, len: u8, payload: u32) -> u32 {
        let len = len.min(A::WIDTH);
        let pos = match self.levels.binary_search_by(|(l, _)| len.cmp(l)) {
            Ok(p) => p,
            Err(p) => {
                self.levels
                    .insert(p, (len, HashMap::with_hasher(State::with_seed(0x1b))));
                p
            }
        };
        self.summary.clear();
        *self.levels[pos].1.entry(net.mask(len)).or_insert(payload)
    }

    /// Builds the per-block summary (IPv4). Call after the last insert; an insert
    /// after it drops the summary (lookups stay correct, only slower).
    pub fn finish(&mut self) {
        self.summary.clear();
        if A::WIDTH != 32 || self.levels.is_empty() {
            return;
        }
        let mut summary = vec![0u64; 1 << 16];
        for (len, map) in &self.levels {
            let bit = 1u64 << len;
            for key in map.keys() {
                let first = key.top16();
                let blocks = if *len >= 16 { 1 } else { 1usize << (16 - len) };
                for b in &mut summary[first..(first + blocks).min(1 << 16)] {
                    *b |= bit;
                }
            }
        }
        self.summary = summary;
    }

    /// Calls `f(prefix_len, payload)` for every prefix covering `addr`, most specific
    /// first.
    #[inline]
    pub fn covering(&self, addr: A, mut f: impl FnMut(u8, u32)) {
        if let Some(&mask) = self.summary.get(addr.top16()) {
            for (len, map) in &self.levels {
                if mask & (1u64 << len) != 0 {
                    if let Some(&p) = map.get(&addr.mask(*len)) {
                        f(*len, p);
                    }
                }
            }
            return;
        }
        for (len, map) in &self.levels {
            if let Some(&p) = map.get(&addr.mask(*len)) {
                f(*len, p);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    pub fn len(&self) -> usize {
        self.levels.iter().map(|(_, m)| m.len()).sum()
    }

    /// The prefix lengths present, longest first.
    pub fn lengths(&self) -> impl Iterator<Item = u8> + '_ {
        self.levels.iter().map(|(l, _)| *l)
    }

    pub fn memory_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(A, u32)>() + 1;
        self.levels
            .iter()
            .map(|(_, m)| m.capacity() * entry)
            .sum::<usize>()
            + self.summary.capacity() * 8
    }

    pub fn shrink(&mut self) {
        for (_, m) in &mut self.levels {
            m.shrink_to_fit();
        }
    }
}

pub fn v4_bits(a: Ipv4Addr) -> u32 {
    u32::from(a)
}

pub fn v6_bits(a: Ipv6Addr) -> u128 {
    u128::from(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_most_specific_first() {
        let mut t = PrefixTable::<u32>::new();
        t.insert(v4_bits("10.0.0.0".parse().unwrap()), 8, 1);
        t.insert(v4_bits("10.1.0.0".parse().unwrap()), 16, 2);
        t.insert(v4_bits("10.1.2.3".parse().unwrap()), 32, 3);
        t.insert(v4_bits("11.0.0.0".parse().unwrap()), 8, 4);
        let mut got = vec![];
        t.covering(v4_bits("10.1.2.3".parse().unwrap()), |l, p| {
            got.push((l, p))
        });
        assert_eq!(got, vec![(32, 3), (16, 2), (8, 1)]);
        got.clear();
        t.covering(v4_bits("10.2.0.1".parse().unwrap()), |l, p| {
            got.push((l, p))
        });
        assert_eq!(got, vec![(8, 1)]);
        got.clear();
        t.covering(v4_bits("12.0.0.1".parse().unwrap()), |l, p| {
            got.push((l, p))
        });
        assert!(got.is_empty());
    }

    #[test]
    fn summary_gives_the_same_answers() {
        let mut t = PrefixTable::<u32>::new();
        let nets = [
            ("0.0.0.0", 0),
            ("10.0.0.0", 8),
            ("10.1.0.0", 16),
            ("10.1.2.0", 24),
            ("10.1.2.3", 32),
            ("10.255.0.0", 15),
            ("192.168.1.1", 32),
        ];
        for (i, (a, l)) in nets.iter().enumerate() {
            t.insert(v4_bits(a.parse().unwrap()), *l, i as u32);
        }
        let probes = [
            "10.1.2.3",
            "10.1.2.4",
            "10.1.3.1",
            "10.2.0.0",
            "10.254.9.9",
            "10.255.1.1",
            "11.0.0.1",
            "192.168.1.1",
            "192.168.1.2",
        ];
        let answers = |t: &PrefixTable<u32>| -> Vec<Vec<(u8, u32)>> {
            probes
                .iter()
                .map(|p| {
                    let mut got = vec![];
                    t.covering(v4_bits(p.parse().unwrap()), |l, x| got.push((l, x)));
                    got
                })
                .collect()
        };
        let before = answers(&t);
        t.finish();
        assert!(!t.summary.is_empty());
        assert_eq!(answers(&t), before);
        assert_eq!(before[0], vec![(32, 4), (24, 3), (16, 2), (8, 1), (0, 0)]);
        assert_eq!(before[6], vec![(0, 0)]);
    }

    #[test]
    fn entry_keeps_the_first_payload() {
        let mut t = PrefixTable::<u32>::new();
        let net = v4_bits("10.1.2.3".parse().unwrap());
        assert_eq!(t.entry(net, 8, 5), 5);
        // Another address in the same /8 is the same prefix.
        assert_eq!(t.entry(v4_bits("10.9.9.9".parse().unwrap()), 8, 6), 5);
        assert_eq!(t.entry(net, 16, 6), 6);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn v6_prefixes() {
        let mut t = PrefixTable::<u128>::new();
        t.insert(v6_bits("2001:db8::".parse().unwrap()), 32, 7);
        let mut got = vec![];
        t.covering(v6_bits("2001:DB8:0:0:0:0:0:1".parse().unwrap()), |l, p| {
            got.push((l, p))
        });
        assert_eq!(got, vec![(32, 7)]);
    }
}
