//! `StrSet`: a set of byte strings stored in one arena, each with a dense `u32` id.
//!
//! This is the exact-lookup structure behind domains, host names, URLs, hashes,
//! e-mail addresses and the textual form of IP indicators. It exists to keep memory
//! per indicator low: one `Box<str>` per value costs a pointer, a length and an
//! allocation (about 40 bytes before the text); here a value costs its bytes, one
//! `u32` end offset and one `u32` slot in a SwissTable (about 10 bytes before the
//! text at the table's load factor).
//!
//! Invariants: ids are dense (`0..len()`) in insertion order; a string is stored once;
//! lookups never allocate.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// The hasher used for every string table: fast on short keys, fixed seed so that
/// builds are deterministic.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hasher;

impl Hasher {
    #[inline]
    pub fn hash(self, bytes: &[u8]) -> u64 {
        foldhash::fast::FixedState::with_seed(0x0072_6970_6c69_6e65).hash_one(bytes)
    }
}

#[derive(Clone, Default)]
pub struct StrSet {
    arena: Vec<u8>,
    ends: Vec<u32>,
    table: HashTable<u32>,
}

impl std::fmt::Debug for StrSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrSet")
            .field("len", &self.len())
            .field("bytes", &self.arena.len())
            .finish()
    }
}

impl StrSet {
    pub fn new() -> StrSet {
        StrSet::default()
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The string with id `id`. Panics if `id` was not returned by this set (an
    /// internal invariant, never outside data).
    #[inline]
    pub fn get(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    /// The string with id `id` as text (values are inserted from `&str`).
    pub fn get_str(&self, id: u32) -> &str {
        std::str::from_utf8(self.get(id)).unwrap_or("")
    }

    #[inline]
    pub fn find(&self, key: &[u8]) -> Option<u32> {
        if self.ends.is_empty() {
            return None;
        }
        let h = Hasher.hash(key);
        self.find_hashed(h, key)
    }

    #[inline]
    pub fn find_hashed(&self, hash: u64, key: &[u8]) -> Option<u32> {
        self.table.find(hash, |&id| self.get(id) == key).copied()
    }

    /// Inserts `key`; returns its id and whether it was new.
    pub fn insert(&mut self, key: &[u8]) -> (u32, bool) {
        let h = Hasher.hash(key);
        if let Some(id) = self.find_hashed(h, key) {
            return (id, false);
        }
        let id = self.ends.len() as u32;
        self.arena.extend_from_slice(key);
        self.ends.push(self.arena.len() as u32);
        let Self {
            arena, ends, table, ..
        } = self;
        table.insert_unique(h, id, |&other| {
            let i = other as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            Hasher.hash(&arena[start..ends[i] as usize])
        });
        (id, true)
    }

    /// Makes room for `additional` more strings of `bytes` bytes in all, so that a
    /// bulk load (a snapshot replay) does not grow and rehash the table as it goes.
    pub fn reserve(&mut self, additional: usize, bytes: usize) {
        self.arena.reserve(bytes);
        self.ends.reserve(additional);
        let Self {
            arena, ends, table, ..
        } = self;
        table.reserve(additional, |&other| {
            let i = other as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            Hasher.hash(&arena[start..ends[i] as usize])
        });
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 4 + self.table.capacity() * (4 + 1)
    }

    /// Releases spare capacity after a build.
    pub fn shrink(&mut self) {
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
        let Self {
            arena, ends, table, ..
        } = self;
        table.shrink_to_fit(|&other| {
            let i = other as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            Hasher.hash(&arena[start..ends[i] as usize])
        });
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u8])> + '_ {
        (0..self.ends.len() as u32).map(move |i| (i, self.get(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_dedup() {
        let mut s = StrSet::new();
        assert_eq!(s.insert(b"evil.com"), (0, true));
        assert_eq!(s.insert(b"a.evil.com"), (1, true));
        assert_eq!(s.insert(b"evil.com"), (0, false));
        assert_eq!(s.find(b"a.evil.com"), Some(1));
        assert_eq!(s.find(b"evil.co"), None);
        assert_eq!(s.get(1), b"a.evil.com");
        assert_eq!(s.len(), 2);
        s.shrink();
        assert_eq!(s.find(b"evil.com"), Some(0));
    }

    #[test]
    fn many_values() {
        let mut s = StrSet::new();
        for i in 0..10_000u32 {
            s.insert(format!("host{i}.example").as_bytes());
        }
        for i in 0..10_000u32 {
            assert_eq!(s.find(format!("host{i}.example").as_bytes()), Some(i));
        }
        assert_eq!(s.find(b"host10000.example"), None);
    }

    #[test]
    fn reserve_keeps_what_is_there() {
        let mut s = StrSet::new();
        s.insert(b"a");
        s.reserve(1000, 10_000);
        assert!(s.memory_bytes() >= 10_000);
        assert_eq!(s.insert(b"a"), (0, false));
        assert_eq!(s.insert(b"b"), (1, true));
        assert_eq!(s.find(b"a"), Some(0));
    }
}
