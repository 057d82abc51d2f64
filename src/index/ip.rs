//! Address parsing for the matcher's hot path: [`parse_v4`] reads a dotted quad from
//! log bytes without going through `str`.
//!
//! The prefix table that addresses are looked up in lives in [`crate::lookup::prefix`]
//! (shared with the intel store and warninglists); its items are re-exported here so
//! that `crate::index::ip::PrefixTable` and friends keep working.
//!
//! Cost: [`parse_v4`] is one pass over at most 15 bytes, no allocation.

pub use crate::lookup::prefix::{v4_bits, v6_bits, Bits, PrefixTable};

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
