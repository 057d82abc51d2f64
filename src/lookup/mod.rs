//! Lookup structures shared by the index, the intel store and the warninglists: one
//! implementation of each, so that a cost measured for one holds for all.
//!
//! | structure | holds | lookup cost | memory |
//! |---|---|---|---|
//! | [`StrSet`] | byte strings, each with a dense `u32` id | one hash probe | the bytes + ~10 bytes each |
//! | [`PrefixTable`] | IPv4/IPv6 prefixes, each with a `u32` payload | one probe per distinct prefix length | 9 bytes per IPv4 entry, 33 per IPv6 entry (before the load factor), 512 KiB IPv4 summary |
//!
//! This module depends on nothing else in the crate (a leaf: `index` and `intel` both
//! use it, neither is used by it). Both structures are built once, then only read;
//! lookups never allocate.

pub mod prefix;
pub mod strset;

pub use prefix::{v4_bits, v6_bits, Bits, PrefixTable};
pub use strset::{Hasher, StrSet};
