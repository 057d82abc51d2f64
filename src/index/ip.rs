//! `PrefixTable`: IPv4/IPv6 addresses and CIDRs, looked up by address.
//!
//! A lookup returns every prefix that covers the address, most specific first. The
//! table is a prefix trie flattened by level: one hash map per prefix length that
//! occurs in the intel (at most 33 for IPv4, 129 for IPv6; real intel has about a
//! dozen), each mapping a masked network to its indicator. A lookup costs one probe
//! per distinct prefix length, whatever the number of indicators, and memory is about
//! 10 bytes per IPv4 entry (18 per IPv6 entry) at the maps' load factor: smaller and
//! faster than a pointer trie, which would cost a node per bit on the path.
//!
//! Addresses are parsed and canonicalised with `ipnet` types at build time, never
//! per lookup.

use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

use hashbrown::HashMap;

type State = foldhash::fast::FixedState;

/// An address family as an unsigned integer.
pub trait Bits: Copy + Eq + Hash + Ord {
    const WIDTH: u8;
    fn mask(self, len: u8) -> Self;
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
}

/// Prefixes of one family mapped to a `u32` payload (an indicator id).
#[derive(Clone, Debug)]
pub struct PrefixTable<A: Bits> {
    /// (prefix length, table), longest prefix first.
    levels: Vec<(u8, HashMap<A, u32, State>)>,
}

impl<A: Bits> Default for PrefixTable<A> {
    fn default() -> Self {
        PrefixTable { levels: Vec::new() }
    }
}

impl<A: Bits> PrefixTable<A> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `net/len` (the address is masked here). A prefix added twice keeps the
    /// first payload.
    pub fn insert(&mut self, net: A, len: u8, payload: u32) {
        let len = len.min(A::WIDTH);
        let pos = match self.levels.binary_search_by(|(l, _)| len.cmp(l)) {
            Ok(p) => p,
            Err(p) => {
                self.levels
                    .insert(p, (len, HashMap::with_hasher(State::with_seed(0x1b))));
                p
            }
        };
        self.levels[pos].1.entry(net.mask(len)).or_insert(payload);
    }

    /// Calls `f(prefix_len, payload)` for every prefix covering `addr`, most specific
    /// first.
    #[inline]
    pub fn covering(&self, addr: A, mut f: impl FnMut(u8, u32)) {
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
        self.levels.iter().map(|(_, m)| m.capacity() * entry).sum()
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

/// Parses a dotted quad from bytes, strictly: four decimal parts of one to three
/// digits, each at most 255. Faster than going through `str` and `Ipv4Addr::from_str`
/// on the hot path, and accepts zero-padded parts as many devices log them.
#[inline]
pub fn parse_v4(b: &[u8]) -> Option<u32> {
    let mut out: u32 = 0;
    let mut parts = 0;
    let mut cur: u32 = 0;
    let mut digits = 0;
    for &c in b {
        if c.is_ascii_digit() {
            digits += 1;
            if digits > 3 {
                return None;
            }
            cur = cur * 10 + (c - b'0') as u32;
        } else if c == b'.' {
            if digits == 0 || cur > 255 {
                return None;
            }
            out = (out << 8) | cur;
            parts += 1;
            cur = 0;
            digits = 0;
        } else {
            return None;
        }
    }
    if digits == 0 || cur > 255 || parts != 3 {
        return None;
    }
    Some((out << 8) | cur)
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
    fn v6_prefixes() {
        let mut t = PrefixTable::<u128>::new();
        t.insert(v6_bits("2001:db8::".parse().unwrap()), 32, 7);
        let mut got = vec![];
        t.covering(v6_bits("2001:DB8:0:0:0:0:0:1".parse().unwrap()), |l, p| {
            got.push((l, p))
        });
        assert_eq!(got, vec![(32, 7)]);
    }

    #[test]
    fn parse_v4_table() {
        let cases: &[(&str, Option<[u8; 4]>)] = &[
            ("1.2.3.4", Some([1, 2, 3, 4])),
            ("255.255.255.255", Some([255, 255, 255, 255])),
            ("010.001.002.003", Some([10, 1, 2, 3])),
            ("256.1.1.1", None),
            ("1.2.3", None),
            ("1.2.3.4.5", None),
            ("1..3.4", None),
            ("1.2.3.4.", None),
            ("1234.1.1.1", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_v4(s.as_bytes()), want.map(u32::from_be_bytes), "{s}");
        }
    }
}
