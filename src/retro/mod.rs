//! Retro-hunting's observation store: what typed observables the logs held, when,
//! where — so that intel arriving later can be checked against the past without
//! reading the logs again (issue 12, point 1).
//!
//! # What is recorded
//! The typed tokens the [`matcher`](crate::matcher) already extracts from every line
//! (whether they matched or not), in their canonical form: IPv4 and IPv6 addresses
//! (an IPv4-mapped IPv6 address as IPv4), host names (lower case, punycode) and each
//! of their label suffixes down to the registrable domain (`a.b.evil.com` also records
//! `b.evil.com` and `evil.com`, never `com` nor a public suffix), URLs (`host[:port]/path`
//! as the matcher keys them, the whole URL and the URL cut at its query or fragment),
//! hashes (MD5 … SHA-512, lower case) and e-mail addresses. Per observable and time
//! slice: the first and last event time (the line's own time, else the time of
//! reading), a count of lines and a capped set of hosts and log sources. Nothing else
//! of a line is kept. Free-form literals (user agents, mutexes, registry keys, file
//! names) are **not** recorded: they have no token boundary to extract them by.
//!
//! # Where it hooks in
//! [`Matcher::set_recording`](crate::matcher::Matcher::set_recording) makes the one
//! tokenizing pass also push every candidate token into a [`LineTokens`] (no second
//! pass over the line); the [`Scanner`](crate::scan::Scanner) hands each line's tokens
//! with the line to a [`BatchRecorder`] on the same worker thread, which reads the
//! line's time and host ([`Decoder::time_and_host`], only for lines holding a token:
//! no fields, no message decoding for syslog and Apache lines, no field list for JSON)
//! and aggregates the batch in maps keyed by the token's key, not hashed again
//! ([`KeyMap`]): one map look per token and line; a key's IPv6 address or host name is
//! copied once per batch, on its first line, and reaches the slice's names only when
//! the key is new to the slice. Whether a host name is recorded (its public suffix
//! lookup) is cached per worker ([`LineTokens::push_host`], kept across batches in a
//! [`Recording`]); its label suffixes are derived when the slice is sealed, once per
//! name, not per line.
//!
//! Cost (benchmark log, 1M indicators, `tripline run`): about 0.44 µs of CPU per line
//! on top of the sidecar's 0.97 µs, -22% of its throughput (was 1.06 µs, -41%): the
//! time and host read, the per-token map update and the host names' hashing are most
//! of it (`benches/results/2026-12-07-retro-sidecar-after-2cpu.md`). The sidecar's
//! workers hold what they record across batches and the output thread merges it into
//! a [`store::Writer`] when it seals (`hunt --record`: each piece as it is written);
//! the writer keeps the open slices in memory and seals them into immutable segments
//! ([`segment`]), deriving the host names' label suffixes then.
//!
//! # Probing (for retro matching)
//! [`Store::open`] reads the segments; then, per indicator in its canonical form:
//! - [`Store::probe`]`(kind, canonical, since)` for IPv4/IPv6 addresses, host names,
//!   URLs (`host[:port]/path[?query]`), hashes and e-mails: one [`Observed`] per
//!   slice (UTC day), merged over the slice's segments, `value` = the canonical value
//!   probed (which, for an exact match, is what the line held, canonicalised);
//! - [`Store::probe_cidr`]`(net, since)`: one per address seen in the network and
//!   per slice, `value` = the address (IPv4 keys are addresses: a range scan; IPv6 by
//!   the slice's sorted address array);
//! - [`Store::probe_domain`]`(domain, since)` (also `probe(Kind::Domain, …)`): one per
//!   host name seen at or below the domain and per slice, `value` = that name.
//!
//! `value` is what a retro alert's `matched.atomic` should carry. Only hashes are
//! stored, so the observed host name below a domain comes from a per-slice names
//! dictionary (host names only, sorted by reversed name: the subdomains of a domain
//! are one range), costing the name's length + 4 bytes per distinct host name and
//! slice; addresses are recovered from the keys and the IPv6 array. Each probe costs
//! one bloom-filter look per segment for a value never seen (one cache line), plus a
//! binary search in the segments whose filter says maybe.
//!
//! # Keys
//! An observable is keyed by a 64-bit [`key`] of its kind and canonical bytes. An
//! IPv4 address is its own key (`4 << 32 | addr`, top bit clear), so the segment's
//! sorted keys answer a CIDR by a range scan; every other key has its top bit set.
//! Host names are keyed as [`Kind::Hostname`], their proper suffixes as
//! [`Kind::Domain`]: a domain indicator probes both.

pub mod matching;
pub mod segment;
pub mod store;

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::decode::{DecodeOptions, Decoder};
use crate::intel::Kind;

pub use store::{Observed, Store, StoreError, StoreStats, Writer};

/// Hash maps keyed by keys that are already hashes (or addresses): a fast hasher.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Hash maps keyed by a [`key`] (already a hash, or an IPv4 address under a tag): the
/// key is not hashed again, only spread by one multiply (the high bits of the product
/// folded into the low ones, so that an address's low bits pick the bucket).
pub type KeyMap<V> = HashMap<u64, V, BuildKeyHasher>;

/// The [`KeyMap`] hasher: `u64` keys only.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildKeyHasher;

/// See [`KeyMap`].
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl std::hash::BuildHasher for BuildKeyHasher {
    type Hasher = KeyHasher;
    #[inline]
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

impl std::hash::Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write_u64(&mut self, k: u64) {
        let h = (self.0 ^ k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u64` keys; correct (if slower) for anything else.
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
}

/// One slice of time: a UTC day, in seconds.
pub const SLICE_SECS: i64 = 86_400;
/// At most this many tokens are recorded per line (the rest are dropped, counted).
pub const MAX_TOKENS_PER_LINE: usize = 256;
/// URLs longer than this (host and path, as keyed) are not recorded.
pub const MAX_URL_BYTES: usize = 2048;

/// A 64-bit avalanche mix (murmur3's finalizer).
#[inline]
pub fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A stable 64-bit hash of `bytes` tagged with `tag` (it is written to disk: never
/// change it without changing the segment format version).
#[inline]
pub fn hash_bytes(tag: u8, bytes: &[u8]) -> u64 {
    // The tag and length are mixed before any byte is: XORed into the same word as
    // the first bytes, (tag 2, "eu.evil-…") and (tag 3, "du.evil-…") had one key.
    let mut h = mix(0x9e37_79b9_7f4a_7c15 ^ u64::from(tag) ^ ((bytes.len() as u64) << 8));
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h ^ u64::from_le_bytes(w)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = mix(h ^ u64::from_le_bytes(w));
    }
    mix(h)
}

/// The key of an IPv4 address: the address itself under a tag, top bit clear.
#[inline]
pub fn v4_key(addr: u32) -> u64 {
    (4u64 << 32) | u64::from(addr)
}

/// The address of an IPv4 key, if it is one.
#[inline]
pub fn v4_of_key(key: u64) -> Option<u32> {
    (key >> 32 == 4).then_some(key as u32)
}

/// The key of an IPv6 address.
#[inline]
pub fn v6_key(addr: u128) -> u64 {
    hash_bytes(Kind::Ipv6 as u8, &addr.to_be_bytes()) | (1 << 63)
}

/// The key of any other observable: `canonical` in the form the index keys it
/// (lower-case host, `host[:port]/path` URL, lower-case hash and e-mail).
#[inline]
pub fn key(kind: Kind, canonical: &[u8]) -> u64 {
    hash_bytes(kind as u8, canonical) | (1 << 63)
}

/// The registrable part of a host name: where suffix recording stops. `None` when the
/// name is itself a public suffix or has no known one.
pub fn registrable_len(name: &[u8]) -> Option<usize> {
    let d = psl::domain(name)?;
    d.suffix().typ()?;
    Some(d.as_bytes().len())
}

/// One token of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub key: u64,
    /// The address of an IPv6 token.
    pub v6: u128,
    /// The byte range of a host name in [`LineTokens::text`] (full names only).
    pub name: Option<(u32, u32)>,
}

/// The tokens of one line, filled by the matcher. Reused across lines.
#[derive(Debug, Default)]
pub struct LineTokens {
    pub tokens: Vec<Token>,
    /// Host names of the line (lower case, punycode), back to back.
    pub text: Vec<u8>,
    /// Tokens dropped past [`MAX_TOKENS_PER_LINE`].
    pub dropped: u64,
    /// Host names seen lately (by key): whether each is recorded (it has a
    /// registrable domain), so that a name's public suffix lookup is done once, not
    /// on every line naming it.
    hosts: KeyMap<bool>,
}

/// Names cached before the cache is emptied (about 16 bytes each).
const HOST_CACHE: usize = 1 << 16;

impl LineTokens {
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.text.clear();
    }

    #[inline]
    fn add(&mut self, t: Token) -> bool {
        if self.tokens.iter().any(|o| o.key == t.key) {
            return false;
        }
        if self.tokens.len() >= MAX_TOKENS_PER_LINE {
            self.dropped += 1;
            return false;
        }
        self.tokens.push(t);
        true
    }

    pub fn push_v4(&mut self, addr: u32) {
        self.add(Token {
            kind: Kind::Ipv4,
            key: v4_key(addr),
            v6: 0,
            name: None,
        });
    }

    pub fn push_v6(&mut self, addr: u128) {
        self.add(Token {
            kind: Kind::Ipv6,
            key: v6_key(addr),
            v6: addr,
            name: None,
        });
    }

    /// A typed token already canonical (URL key, lower-case hash or e-mail).
    pub fn push(&mut self, kind: Kind, canonical: &[u8]) {
        self.add(Token {
            kind,
            key: key(kind, canonical),
            v6: 0,
            name: None,
        });
    }

    /// A host name (lower case, punycode, no trailing dot), as a host. A name with
    /// no registrable domain (no known public suffix: `foo.internal`, `file.txt`; or
    /// itself a public suffix: `co.uk`) is not recorded. Its label suffixes (each
    /// proper suffix down to the registrable domain, as [`Kind::Domain`] entries) are
    /// not tokens of the line: the writer derives them from the slice's host names
    /// when it seals ([`store::Writer::seal`]), once per name and slice instead of
    /// once per line. Cost: one hash of the name and a cache look; the public suffix
    /// lookup only the first time a name is seen (of the last 65536).
    pub fn push_host(&mut self, name: &[u8]) {
        if name.len() > 253 || memchr::memchr(b'.', name).is_none() {
            return;
        }
        let k = key(Kind::Hostname, name);
        let recorded = match self.hosts.get(&k) {
            Some(&r) => r,
            None => {
                if self.hosts.len() >= HOST_CACHE {
                    self.hosts.clear();
                }
                let r = registrable_len(name).is_some();
                self.hosts.insert(k, r);
                r
            }
        };
        if !recorded {
            return;
        }
        let s = self.text.len() as u32;
        let t = Token {
            kind: Kind::Hostname,
            key: k,
            v6: 0,
            name: Some((s, s + name.len() as u32)),
        };
        if self.add(t) {
            self.text.extend_from_slice(name);
        }
    }
}

/// The [`Kind::Domain`] keys of `name`'s proper label suffixes down to its
/// registrable domain (`a.b.evil.co.uk`: `b.evil.co.uk`, `evil.co.uk`); none for a
/// name without one.
pub fn suffix_keys(name: &[u8], mut each: impl FnMut(u64)) {
    let Some(reg) = registrable_len(name) else {
        return;
    };
    let stop = name.len() - reg;
    let mut p = 0;
    while let Some(d) = memchr::memchr(b'.', &name[p..stop]) {
        p += d + 1;
        each(key(Kind::Domain, &name[p..]));
    }
}

/// A batch's aggregate of one observable in one slice.
#[derive(Clone, Copy, Debug)]
pub struct BatchAgg {
    pub first: i64,
    pub last: i64,
    pub count: u32,
    /// Batch-local host ids ([`Batch::hosts`]), capped at [`store::SET_CAP`].
    pub hosts: [u16; store::SET_CAP],
    pub n_hosts: u8,
    pub more_hosts: bool,
    /// A host name's bytes in [`Batch::text`] (empty for other kinds): the writer
    /// adds it to the slice's names once, when the key is new to the slice.
    pub name: (u32, u32),
}

/// What one batch recorded: built on a worker, merged by the driver
/// ([`store::Writer::merge`]).
#[derive(Debug, Default)]
pub struct Batch {
    /// The log source's name (one per batch).
    pub source: String,
    pub hosts: Vec<String>,
    /// Per slice start (a batch spans one or a few): key → aggregate.
    pub slices: Vec<(i64, KeyMap<BatchAgg>)>,
    /// IPv6 addresses per slice, once each.
    pub v6: Vec<(i64, u128)>,
    /// The host names of [`BatchAgg::name`], back to back.
    pub text: Vec<u8>,
    /// Lines that held at least one token.
    pub lines: u64,
    /// Token occurrences recorded (per line, distinct).
    pub observations: u64,
    pub dropped: u64,
}

/// The start of the slice holding `t` (unix seconds).
#[inline]
pub fn slice_of(t: i64) -> i64 {
    t.div_euclid(SLICE_SECS) * SLICE_SECS
}

/// A worker's recording state, kept from one batch to the next (the sidecar makes a
/// [`Scanner`](crate::scan::Scanner) per batch): the line-token buffers with their
/// host-name cache, and the recorder with its decoder's stamp caches and its map size.
/// Made afresh per batch, every batch paid the public suffix lookup of each host
/// name it held again.
pub struct Recording {
    pub tokens: Box<LineTokens>,
    pub recorder: BatchRecorder,
}

impl Recording {
    pub fn new(decode: DecodeOptions) -> Recording {
        Recording {
            tokens: Box::default(),
            recorder: BatchRecorder::new(decode),
        }
    }
}

/// Where a batch's lines come from, for [`BatchRecorder::begin`].
#[derive(Clone, Debug)]
pub struct BatchContext {
    /// The source's decoding options, and whether the batch is an input of its own
    /// (the sidecar's batches: what the decoder learnt of the last batch's input, a
    /// Zeek header, is forgotten) or continues the last one (a hunt's pieces of one
    /// file).
    pub decode: DecodeOptions,
    pub new_input: bool,
    pub source: String,
    /// The host of lines that name none (the file, the syslog peer).
    pub default_host: String,
    /// Year-less stamps take the year that puts them before this.
    pub reference: DateTime<Utc>,
    /// The time of lines without an own time.
    pub read: DateTime<Utc>,
}

/// Turns each line's tokens into a batch aggregate, on the scanning thread.
pub struct BatchRecorder {
    decoder: Decoder,
    ctx: Option<BatchContext>,
    batch: Batch,
    host_ids: FastMap<String, u16>,
    /// The source whose batch [`BatchRecorder::host_ids`] numbers.
    ids_of: String,
    /// The last line's host and its id (most lines of a batch name the same host).
    last_host: Option<(String, u16)>,
    /// Keys of the last batch's largest slice: a new slice's map starts that big, so
    /// that it is not grown (rehashed) step by step.
    size_hint: usize,
}

impl BatchRecorder {
    pub fn new(decode: DecodeOptions) -> BatchRecorder {
        BatchRecorder {
            decoder: Decoder::new(decode),
            ctx: None,
            batch: Batch::default(),
            host_ids: FastMap::default(),
            ids_of: String::new(),
            last_host: None,
            size_hint: 0,
        }
    }

    /// Starts a batch of lines from `ctx`.
    pub fn begin(&mut self, ctx: BatchContext) {
        self.begin_held(ctx, None);
    }

    /// Starts a batch that adds to `held`, what earlier batches of the same source
    /// recorded and [`BatchRecorder::finish`] gave back (the sidecar's workers keep
    /// one per source between seals: no map per batch, and no merge per batch into the
    /// writer). `None`: a batch of its own.
    pub fn begin_held(&mut self, ctx: BatchContext, held: Option<Batch>) {
        if ctx.decode != self.decoder.options() {
            self.decoder = Decoder::new(ctx.decode);
        } else if ctx.new_input {
            self.decoder.forget_input();
        }
        self.last_host = None;
        self.batch = match held {
            Some(b) => {
                // The host ids are the held batch's: kept when it is the batch the
                // recorder finished last (a source's batches in a row), else rebuilt.
                if b.source != self.ids_of || self.host_ids.len() != b.hosts.len() {
                    self.host_ids.clear();
                    for (i, h) in b.hosts.iter().enumerate() {
                        self.host_ids.insert(h.clone(), i as u16);
                    }
                }
                b
            }
            None => {
                self.host_ids.clear();
                Batch {
                    source: ctx.source.clone(),
                    ..Batch::default()
                }
            }
        };
        self.ids_of.clone_from(&self.batch.source);
        self.ctx = Some(ctx);
    }

    /// A line that holds no token: shown to the decoder (Zeek headers).
    pub fn observe(&mut self, line: &[u8]) {
        self.decoder.observe(line);
    }

    /// The batch-local id of `host`; the last line's when it names the same one (no
    /// look-up, no copy).
    fn host_id(
        batch: &mut Batch,
        host_ids: &mut FastMap<String, u16>,
        last: &mut Option<(String, u16)>,
        host: &str,
    ) -> u16 {
        // A batch names a few hosts (a file's, a syslog relay's peers): compared in
        // turn (most differ in length), no hash and no copy.
        if batch.hosts.len() <= 8 {
            if let Some(i) = batch.hosts.iter().position(|h| h == host) {
                return i as u16;
            }
        } else if let Some((h, id)) = last {
            if h == host {
                return *id;
            }
        }
        let id = match host_ids.get(host).copied() {
            Some(id) => id,
            None if batch.hosts.len() >= usize::from(u16::MAX) => u16::MAX,
            None => {
                let id = batch.hosts.len() as u16;
                batch.hosts.push(host.to_string());
                host_ids.insert(host.to_string(), id);
                id
            }
        };
        let mut s = last.take().map(|l| l.0).unwrap_or_default();
        s.clear();
        s.push_str(host);
        *last = Some((s, id));
        id
    }

    /// Records one line's tokens.
    pub fn line(&mut self, line: &[u8], tokens: &LineTokens) {
        self.batch.dropped += tokens.dropped;
        if tokens.tokens.is_empty() {
            self.decoder.observe(line);
            return;
        }
        let BatchRecorder {
            decoder,
            ctx,
            batch,
            host_ids,
            last_host,
            size_hint,
            ..
        } = self;
        let Some(ctx) = ctx.as_ref() else {
            return;
        };
        // Only the time and host: no fields, no message decoding (the decoder's fast
        // paths), the stamp resolved once per distinct stamp.
        let th = decoder.time_and_host(line, ctx.reference);
        let t = th.time.unwrap_or_else(|| ctx.read.timestamp());
        let host = th.host.as_deref().unwrap_or(&ctx.default_host);
        let hid = Self::host_id(batch, host_ids, last_host, host);
        let slice = slice_of(t);
        batch.lines += 1;
        let si = match batch.slices.iter().position(|s| s.0 == slice) {
            Some(i) => i,
            None => {
                let map = KeyMap::with_capacity_and_hasher(*size_hint, BuildKeyHasher);
                batch.slices.push((slice, map));
                batch.slices.len() - 1
            }
        };
        batch.observations += tokens.tokens.len() as u64;
        let map = &mut batch.slices[si].1;
        for tok in &tokens.tokens {
            match map.entry(tok.key) {
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let e = o.get_mut();
                    e.first = e.first.min(t);
                    e.last = e.last.max(t);
                    e.count = e.count.saturating_add(1);
                    if e.hosts[0] == hid {
                        continue;
                    }
                    let n = usize::from(e.n_hosts);
                    if !e.hosts[..n].contains(&hid) {
                        if n < store::SET_CAP {
                            e.hosts[n] = hid;
                            e.n_hosts += 1;
                        } else {
                            e.more_hosts = true;
                        }
                    }
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    let mut hosts = [0; store::SET_CAP];
                    hosts[0] = hid;
                    // The key's first line in this batch and slice: its address or
                    // name, once.
                    let mut name = (0, 0);
                    if let Some((s, e)) = tok.name {
                        let at = batch.text.len() as u32;
                        let bytes = tokens.text.get(s as usize..e as usize).unwrap_or_default();
                        batch.text.extend_from_slice(bytes);
                        name = (at, batch.text.len() as u32);
                    }
                    v.insert(BatchAgg {
                        first: t,
                        last: t,
                        count: 1,
                        hosts,
                        n_hosts: 1,
                        more_hosts: false,
                        name,
                    });
                    if tok.kind == Kind::Ipv6 {
                        batch.v6.push((slice, tok.v6));
                    }
                }
            }
        }
    }

    /// The batch recorded since [`BatchRecorder::begin`].
    pub fn finish(&mut self) -> Batch {
        self.ctx = None;
        // Capped: one odd batch does not make every later map huge.
        self.size_hint = self
            .batch
            .slices
            .iter()
            .map(|s| s.1.len())
            .max()
            .unwrap_or(0)
            .min(1 << 16);
        std::mem::take(&mut self.batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host-name cache decides as the uncached check does: on a name's first and
    /// later sightings, after the cache was emptied, and for names that are not
    /// recorded; a recorded name is one token with its bytes.
    #[test]
    fn host_cache_gives_the_same_tokens() {
        fn uncached(name: &[u8]) -> Vec<(Kind, u64)> {
            match registrable_len(name) {
                Some(_) => vec![(Kind::Hostname, key(Kind::Hostname, name))],
                None => Vec::new(),
            }
        }
        let mut l = LineTokens::default();
        let names: Vec<String> = (0..HOST_CACHE + 10)
            .map(|i| format!("a{i}.b.evil{}.co.uk", i % 7))
            .chain(["x.internal".into(), "file.txt".into(), "co.uk".into()])
            .collect();
        for round in 0..2 {
            for n in names.iter().step_by(997).chain(names.iter().rev().take(5)) {
                l.clear();
                l.push_host(n.as_bytes());
                let got: Vec<(Kind, u64)> = l.tokens.iter().map(|t| (t.kind, t.key)).collect();
                assert_eq!(got, uncached(n.as_bytes()), "{n} (round {round})");
                if let Some(t) = l.tokens.first() {
                    let (s, e) = t.name.unwrap();
                    assert_eq!(&l.text[s as usize..e as usize], n.as_bytes());
                }
            }
            // Fill the cache past its size: it is emptied and refilled.
            for n in &names {
                l.clear();
                l.push_host(n.as_bytes());
            }
            assert!(l.hosts.len() <= HOST_CACHE);
        }
    }

    /// Label suffixes stop at the registrable domain; none for a name without one.
    #[test]
    fn label_suffixes_stop_at_the_registrable_domain() {
        let keys = |n: &[u8]| {
            let mut v = Vec::new();
            suffix_keys(n, |k| v.push(k));
            v
        };
        assert_eq!(
            keys(b"a.b.evil.co.uk"),
            vec![
                key(Kind::Domain, b"b.evil.co.uk"),
                key(Kind::Domain, b"evil.co.uk")
            ]
        );
        assert!(keys(b"evil.co.uk").is_empty());
        assert!(keys(b"co.uk").is_empty());
        assert!(keys(b"invoice.exe").is_empty());
        let mut l = LineTokens::default();
        l.push_host(b"co.uk");
        l.push_host(b"invoice.exe");
        l.push_host(b"nodot");
        assert!(l.tokens.is_empty(), "{:?}", l.tokens);
    }

    /// Keys of different kinds never collide by construction: the kind was XORed into
    /// the word holding the first bytes, so `(Domain, "eu.evil-gen.com")` and
    /// `(Hostname, "du.evil-gen.com")` (first bytes one bit apart, kind tags one bit
    /// apart) had one key, and a probe for one counted the other.
    #[test]
    fn keys_of_kinds_one_bit_apart_do_not_collide() {
        let pairs = [
            (Kind::Domain, Kind::Hostname),
            (Kind::Hostname, Kind::Domain),
        ];
        for (a, b) in pairs {
            for first in b'a'..=b'z' {
                let x = [&[first][..], b"u.evil-gen.com"].concat();
                for other in b'a'..=b'z' {
                    let y = [&[other][..], b"u.evil-gen.com"].concat();
                    if (a, &x) != (b, &y) {
                        assert_ne!(key(a, &x), key(b, &y), "{a:?} {x:?} / {b:?} {y:?}");
                    }
                }
            }
        }
    }
}
