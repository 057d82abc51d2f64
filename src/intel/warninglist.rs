//! MISP warninglists: lists of known-benign values, applied to *indicators* when the
//! index is built (an indicator on a list is dropped, or kept with a mark), never to
//! log lines.
//!
//! A list is a JSON file in the format of <https://github.com/MISP/misp-warninglists>:
//! `name`, `description`, `version`, `type`, `matching_attributes` and `list` (an array
//! of values, or an object whose keys are the values and whose values are comments).
//! A local allowlist (the organisation's own domains and address ranges) is just
//! another file in this format, loaded with the others; nothing else is needed.
//!
//! This module owns loading lists ([`Warninglists::load_file`],
//! [`Warninglists::load_dir`]), canonicalising their entries the way indicators are
//! canonicalised (see `canon.rs`), and answering "which list holds this indicator"
//! ([`Warninglists::check`]). Semantics follow MISP, by list `type`:
//!
//! | type | an indicator is on the list when | entries stored as |
//! |---|---|---|
//! | `string` | its canonical value equals an entry (ASCII case folded) | folded text, plus the canonical form (IP, URL without scheme, IDN) |
//! | `substring` | its value contains an entry (ASCII case folded) | one Aho-Corasick automaton |
//! | `hostname` | its host, or a parent domain of it, is an entry (URLs: their host; e-mail: the domain part) | lower case, dots and `*.` trimmed, IDN to punycode |
//! | `cidr` | a listed range contains it (an address, or a CIDR indicator wholly inside) | masked network per prefix length; a plain IP is a /32 or /128 |
//! | `regex` | its canonical value matches (PCRE `/…/flags` written; `i`, `m`, `s`, `x`, `U`, `A` honoured) | one `RegexSet` |
//!
//! `matching_attributes` is respected: a list applies to an indicator only when the
//! indicator's MISP type (the attribute type; for lists and STIX the kind's
//! [`Kind::default_misp_type`]) is listed, or is a part of a listed composite type
//! (`ip-src|port` applies to `ip-src`; never to `port`, and for a `cidr` list only to
//! address parts, so `domain|ip` does not make an address list apply to `domain`).
//! An absent or empty list, or `ALL`, applies to every type. The value given to
//! [`Warninglists::check`] is one part of a composite attribute, as the store keeps
//! it.
//!
//! Deviations from MISP, on purpose: `string` and `substring` compare with ASCII case
//! folded on both sides (MISP lower-cases most values when it stores them);
//! `hostname` uses the domain of an e-mail address, and looks an IP address up whole;
//! regexes see the canonical value, so a URL has no scheme. A bad entry (an invalid
//! CIDR, a regex the `regex` crate cannot compile, such as one with look-around) is
//! skipped and reported with its list name ([`Warninglists::skipped`]); only an
//! unreadable file, invalid JSON, an unknown `type` or a missing `name` fails a file.
//! When two files carry the same list `name`, the first loaded wins.
//!
//! Costs: loading is linear in the entries (the shipped lists, 62,745 CIDR entries of
//! `public-dns-v4` most of them, load and compile in 15-30 ms and hold 1.9 MB).
//! Lookup structures are shared by all lists: one [`StrSet`] each for exact strings,
//! host names and substrings (about 10 bytes plus the text per entry), one
//! [`PrefixTable`] per address family (the index's own structure: a hash map per
//! prefix length, and for IPv4 a 512 KiB per-/16 summary, rebuilt after each `cidr`
//! list loads), one automaton, one regex set; every entry carries the ids of the lists
//! that hold it. The automaton, the regex set and the per-type applicability bitsets
//! are built once, by [`Warninglists::compile`] or the first check after a load. A
//! check is one hash lookup for the type, then, per list type that applies: one string
//! lookup; one lookup per label of the host; one lookup per distinct prefix length
//! present (for IPv4 only the lengths present in the address's /16); one automaton
//! scan and one regex-set scan of the value. It does not grow with the number of
//! entries, and allocates only to fold an upper-case value. Against the shipped lists
//! a release build takes about 50 ns per IPv4 address and 30 ns per domain (measured by
//! the ignored test `check_cost_on_real_indicators`).

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use hashbrown::HashMap;
use ipnet::IpNet;
use regex::{RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;

use super::canon;
use super::model::{Kind, Skipped};
use super::IntelError;
use crate::lookup::{v4_bits, v6_bits, PrefixTable, StrSet};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// Directories below the one given to [`Warninglists::load_dir`] are followed this deep.
const MAX_DIR_DEPTH: usize = 8;

/// How a list's entries match (the MISP `type` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListType {
    String,
    Substring,
    Hostname,
    Cidr,
    Regex,
}

impl ListType {
    /// Parses a MISP list type (`string`, `substring`, `hostname`, `cidr`, `regex`).
    pub fn parse(s: &str) -> Option<ListType> {
        Some(match s {
            "string" => ListType::String,
            "substring" => ListType::Substring,
            "hostname" => ListType::Hostname,
            "cidr" => ListType::Cidr,
            "regex" => ListType::Regex,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ListType::String => "string",
            ListType::Substring => "substring",
            ListType::Hostname => "hostname",
            ListType::Cidr => "cidr",
            ListType::Regex => "regex",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for ListType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One loaded list: what `tripline intel` shows about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warninglist {
    pub name: String,
    pub description: String,
    pub version: Option<u64>,
    pub kind: ListType,
    /// MISP attribute types the list applies to; empty means all.
    pub matching_attributes: Vec<String>,
    /// Entries accepted (bad ones are in [`Warninglists::skipped`]).
    pub entries: usize,
    pub path: PathBuf,
}

impl Warninglist {
    /// Does this list apply to indicators of MISP type `misp_type`?
    pub fn applies_to(&self, misp_type: &str) -> bool {
        applies_to_all(&self.matching_attributes)
            || attribute_types(&self.matching_attributes, self.kind).any(|t| t == misp_type)
    }
}

fn applies_to_all(attrs: &[String]) -> bool {
    attrs.is_empty() || attrs.iter().any(|a| a == "ALL")
}

/// The listed types, and the parts of listed composite types that fit the list:
/// never `port`, and for a `cidr` list only the address parts (`ip-src` of
/// `ip-src|port`, `ip` of `domain|ip`, not `domain`).
fn attribute_types(attrs: &[String], kind: ListType) -> impl Iterator<Item = &str> {
    let fits =
        move |part: &&str| *part != "port" && (kind != ListType::Cidr || part.starts_with("ip"));
    attrs.iter().flat_map(move |a| {
        let parts = a.contains('|').then(|| a.split('|')).into_iter().flatten();
        std::iter::once(a.as_str()).chain(parts.filter(fits))
    })
}

/// Ids of the lists that hold one entry, ascending: the first in line, and the rest
/// only for the rare entry held by several lists.
#[derive(Clone, Default)]
struct Postings {
    first: Vec<u32>,
    more: FastMap<u32, Vec<u32>>,
}

impl Postings {
    /// Records that entry `id` is on list `list`. Ids are dense and lists are added in
    /// ascending order, so `first` holds the lowest list id.
    fn add(&mut self, id: u32, list: u32) {
        match self.first.get(id as usize) {
            None => self.first.push(list),
            Some(&l) if l == list => {}
            Some(_) => {
                let more = self.more.entry(id).or_default();
                if !more.contains(&list) {
                    more.push(list);
                }
            }
        }
    }

    #[inline]
    fn for_each<F: FnMut(u32)>(&self, id: u32, f: &mut F) {
        if let Some(&l) = self.first.get(id as usize) {
            f(l);
        }
        if !self.more.is_empty() {
            if let Some(more) = self.more.get(&id) {
                more.iter().for_each(|&l| f(l));
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        self.first.capacity() * 4
            + self.more.capacity() * (4 + 24 + 1)
            + self.more.values().map(|v| v.capacity() * 4).sum::<usize>()
    }
}

/// Exact strings with the lists that hold each.
#[derive(Clone, Default)]
struct Entries {
    set: StrSet,
    postings: Postings,
}

impl Entries {
    fn insert(&mut self, key: &str, list: u32) {
        let (id, _) = self.set.insert(key.as_bytes());
        self.postings.add(id, list);
    }

    #[inline]
    fn lookup<F: FnMut(u32)>(&self, key: &str, f: &mut F) {
        if let Some(id) = self.set.find(key.as_bytes()) {
            self.postings.for_each(id, f);
        }
    }

    fn memory_bytes(&self) -> usize {
        self.set.memory_bytes() + self.postings.memory_bytes()
    }
}

/// Address ranges: one [`PrefixTable`] per family, whose payload is the range's id in
/// `postings`.
#[derive(Clone, Default)]
struct Ranges {
    v4: PrefixTable<u32>,
    v6: PrefixTable<u128>,
    postings: Postings,
}

impl Ranges {
    fn insert(&mut self, net: IpNet, list: u32) {
        let next = self.postings.first.len() as u32;
        let len = net.prefix_len();
        let id = match net.trunc() {
            IpNet::V4(n) => self.v4.entry(v4_bits(n.network()), len, next),
            IpNet::V6(n) => self.v6.entry(v6_bits(n.network()), len, next),
        };
        self.postings.add(id, list);
    }

    /// Builds the IPv4 table's per-block summary; call after the last insert.
    fn finish(&mut self) {
        self.v4.finish();
    }

    /// Visits the lists holding a range that contains `addr/len`: a prefix of length
    /// at most `len` that covers the (masked) address. A longer prefix covering the
    /// address holds only part of the indicator's range, so it does not count.
    #[inline]
    fn lookup<F: FnMut(u32)>(&self, addr: IpAddr, len: u8, f: &mut F) {
        let postings = &self.postings;
        let mut visit = |range_len: u8, id: u32| {
            if range_len <= len {
                postings.for_each(id, f);
            }
        };
        match addr {
            IpAddr::V4(a) => self.v4.covering(v4_bits(a), &mut visit),
            IpAddr::V6(a) => self.v6.covering(v6_bits(a), &mut visit),
        }
    }

    fn memory_bytes(&self) -> usize {
        self.v4.memory_bytes() + self.v6.memory_bytes() + self.postings.memory_bytes()
    }
}

/// Which lists apply to one MISP type, and which list types are among them.
#[derive(Clone, Default)]
struct Applicable {
    lists: Vec<u64>,
    types: u8,
}

impl Applicable {
    fn set(&mut self, list: usize, kind: ListType) {
        let word = list / 64;
        if self.lists.len() <= word {
            self.lists.resize(word + 1, 0);
        }
        self.lists[word] |= 1 << (list % 64);
        self.types |= kind.bit();
    }

    #[inline]
    fn contains(&self, list: u32) -> bool {
        self.lists
            .get(list as usize / 64)
            .is_some_and(|w| (w >> (list % 64)) & 1 == 1)
    }

    #[inline]
    fn has(&self, kind: ListType) -> bool {
        self.types & kind.bit() != 0
    }
}

/// What is built once after loading: applicability per type, the automaton and the
/// regex set.
#[derive(Clone, Default)]
struct Compiled {
    /// Applicability for types no list names (lists that apply to all types).
    all: Applicable,
    by_type: FastMap<Box<str>, Applicable>,
    substrings: Option<AhoCorasick>,
    regexes: Option<RegexSet>,
}

/// All loaded warninglists and their lookup structures. Load with
/// [`load_file`](Self::load_file) / [`load_dir`](Self::load_dir), then
/// [`check`](Self::check); the structures are built by [`compile`](Self::compile) or
/// by the first check after a load.
#[derive(Clone, Default)]
pub struct Warninglists {
    lists: Vec<Warninglist>,
    strings: Entries,
    hostnames: Entries,
    substrings: Entries,
    ranges: Ranges,
    /// Translated patterns and their list, in `RegexSet` order.
    regexes: Vec<(String, u32)>,
    skipped: Vec<Skipped>,
    compiled: OnceLock<Compiled>,
}

impl fmt::Debug for Warninglists {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Warninglists")
            .field("lists", &self.lists.len())
            .field(
                "entries",
                &self.lists.iter().map(|l| l.entries).sum::<usize>(),
            )
            .field("skipped", &self.skipped.len())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

/// A list file as MISP writes it. Missing `type` means `string`, as in MISP.
#[derive(Deserialize)]
struct RawList {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    version: Option<serde_json::Value>,
    #[serde(default, rename = "type")]
    kind: Option<serde_json::Value>,
    #[serde(default)]
    matching_attributes: Option<Vec<String>>,
    #[serde(default)]
    list: serde_json::Value,
}

impl Warninglists {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads one list file. Bad entries are skipped and recorded; an unreadable file,
    /// invalid JSON or an unknown list type is an error.
    pub fn load_file(&mut self, path: &Path) -> Result<(), IntelError> {
        let bytes = fs::read(path).map_err(|e| IntelError::io(path, e))?;
        self.load_json(path, &bytes)
    }

    /// Loads every `*.json` list under `dir`, recursively (the MISP repository's
    /// `lists/<name>/list.json` layout works), in path order, skipping hidden entries.
    /// A file that fails is returned among the errors and the others still load; only
    /// an unreadable `dir` is an error.
    pub fn load_dir(&mut self, dir: &Path) -> Result<Vec<IntelError>, IntelError> {
        let top = fs::read_dir(dir).map_err(|e| IntelError::io(dir, e))?;
        let mut files = Vec::new();
        let mut errors = Vec::new();
        collect_json(dir, top, 0, &mut files, &mut errors);
        files.sort();
        for file in files {
            if let Err(e) = self.load_file(&file) {
                tracing::warn!(error = %e, "Skipped warninglist file.");
                errors.push(e);
            }
        }
        Ok(errors)
    }

    /// Builds the automaton, the regex set and the applicability tables now, rather
    /// than on the first check.
    pub fn compile(&mut self) {
        self.compiled();
    }

    pub fn lists(&self) -> &[Warninglist] {
        &self.lists
    }

    /// Entries (and duplicate lists) that could not be used, with where and why.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The first (lowest-index) list that holds an indicator of `kind` and MISP type
    /// `misp_type` (empty: the kind's default type) whose canonical value is `value`.
    pub fn check(&self, kind: Kind, misp_type: &str, value: &str) -> Option<usize> {
        let mut first: Option<u32> = None;
        self.visit(kind, misp_type, value, &mut |l| {
            first = Some(first.map_or(l, |f| f.min(l)));
        });
        first.map(|l| l as usize)
    }

    /// Every list that holds the indicator, ascending (for `tripline intel lookup`).
    pub fn check_all(&self, kind: Kind, misp_type: &str, value: &str) -> Vec<usize> {
        let mut all = Vec::new();
        self.visit(kind, misp_type, value, &mut |l| all.push(l as usize));
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Heap bytes held by the lookup structures (the regex set aside).
    pub fn memory_bytes(&self) -> usize {
        let compiled = self.compiled.get();
        let automaton = compiled.and_then(|c| c.substrings.as_ref());
        automaton.map_or(0, AhoCorasick::memory_usage)
            + self.strings.memory_bytes()
            + self.hostnames.memory_bytes()
            + self.substrings.memory_bytes()
            + self.ranges.memory_bytes()
            + self
                .regexes
                .iter()
                .map(|(p, _)| p.capacity() + 28)
                .sum::<usize>()
    }

    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| self.build())
    }

    fn build(&self) -> Compiled {
        let mut all = Applicable::default();
        let mut named: FastMap<&str, Vec<usize>> = FastMap::default();
        for (i, list) in self.lists.iter().enumerate() {
            if applies_to_all(&list.matching_attributes) {
                all.set(i, list.kind);
            } else {
                for t in attribute_types(&list.matching_attributes, list.kind) {
                    named.entry(t).or_default().push(i);
                }
            }
        }
        let by_type = named
            .into_iter()
            .map(|(t, ids)| {
                let mut a = all.clone();
                ids.into_iter().for_each(|i| a.set(i, self.lists[i].kind));
                (Box::from(t), a)
            })
            .collect();
        // Standard match semantics: overlapping search must see every entry that
        // occurs, since each may belong to a different list. The builder picks a DFA
        // for the small pattern counts of real lists.
        let substrings = (!self.substrings.set.is_empty())
            .then(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(true)
                    .build(self.substrings.set.iter().map(|(_, p)| p))
                    .map_err(|e| tracing::warn!(error = %e, "Substring warninglists disabled."))
                    .ok()
            })
            .flatten();
        let regexes = (!self.regexes.is_empty())
            .then(|| {
                RegexSetBuilder::new(self.regexes.iter().map(|(p, _)| p))
                    .size_limit(64 << 20)
                    .build()
                    .map_err(|e| tracing::warn!(error = %e, "Regex warninglists disabled."))
                    .ok()
            })
            .flatten();
        Compiled {
            all,
            by_type,
            substrings,
            regexes,
        }
    }

    fn visit<F: FnMut(u32)>(&self, kind: Kind, misp_type: &str, value: &str, f: &mut F) {
        if self.lists.is_empty() {
            return;
        }
        let c = self.compiled();
        let misp_type = if misp_type.is_empty() {
            kind.default_misp_type()
        } else {
            misp_type
        };
        let app = c.by_type.get(misp_type).unwrap_or(&c.all);
        if app.types == 0 {
            return;
        }
        let mut hit = |l: u32| {
            if app.contains(l) {
                f(l)
            }
        };
        let is_ip = matches!(kind, Kind::Ipv4 | Kind::Ipv6);
        if app.has(ListType::String) || app.has(ListType::Hostname) {
            let folded = fold(value);
            if app.has(ListType::String) {
                self.strings.lookup(&folded, &mut hit);
            }
            if app.has(ListType::Hostname) {
                let host = match kind {
                    Kind::Url => canon::url_host(&folded),
                    Kind::Email => folded.rsplit_once('@').map_or(&*folded, |(_, d)| d),
                    _ => &folded,
                };
                let host = host.trim_end_matches('.');
                self.hostnames.lookup(host, &mut hit);
                if !is_ip && !looks_like_ip(host) {
                    for (i, _) in host.match_indices('.') {
                        self.hostnames.lookup(&host[i + 1..], &mut hit);
                    }
                }
            }
        }
        if app.has(ListType::Cidr) {
            let text = if kind == Kind::Url {
                canon::url_host(value)
            } else {
                value
            };
            if let Some((addr, len)) = parse_ip(text) {
                self.ranges.lookup(addr, len, &mut hit);
            }
        }
        if app.has(ListType::Substring) {
            if let Some(ac) = &c.substrings {
                for m in ac.find_overlapping_iter(value) {
                    self.substrings
                        .postings
                        .for_each(m.pattern().as_u32(), &mut hit);
                }
            }
        }
        if app.has(ListType::Regex) {
            if let Some(set) = &c.regexes {
                if set.is_match(value) {
                    for i in set.matches(value).iter() {
                        if let Some(&(_, l)) = self.regexes.get(i) {
                            hit(l);
                        }
                    }
                }
            }
        }
    }

    /// Loads one list from its JSON text (a list compiled into the binary, say);
    /// `path` says where it came from in reports.
    pub fn load_json(&mut self, path: &Path, json: &[u8]) -> Result<(), IntelError> {
        let raw: RawList = serde_json::from_slice(json).map_err(|e| IntelError::json(path, &e))?;
        let format_error = |message: String| IntelError::Format {
            path: path.to_path_buf(),
            message,
        };
        let kind = match &raw.kind {
            None | Some(serde_json::Value::Null) => ListType::String,
            Some(serde_json::Value::String(s)) => ListType::parse(s)
                .ok_or_else(|| format_error(format!("unknown warninglist type {s:?}")))?,
            // MISP takes the first of an array of types.
            Some(serde_json::Value::Array(a)) => a
                .first()
                .and_then(|v| v.as_str())
                .and_then(ListType::parse)
                .ok_or_else(|| format_error(format!("unknown warninglist type {a:?}")))?,
            Some(other) => return Err(format_error(format!("unknown warninglist type {other}"))),
        };
        let name = raw.name.trim().to_string();
        if name.is_empty() {
            return Err(format_error("warninglist without a name".into()));
        }
        if let Some(prev) = self.lists.iter().find(|l| l.name == name) {
            let reason = format!(
                "a list of this name was loaded from {}",
                prev.path.display()
            );
            tracing::warn!(path = %path.display(), list = %name, %reason,
                "Skipped duplicate warninglist.");
            self.skipped.push(Skipped {
                location: format!("{}: list {name:?}", path.display()),
                reason,
            });
            return Ok(());
        }
        let values: Vec<Cow<'_, str>> = match &raw.list {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|v| match v {
                    serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                    serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
                    _ => None,
                })
                .collect(),
            serde_json::Value::Object(o) => o.keys().map(|k| Cow::Borrowed(k.as_str())).collect(),
            serde_json::Value::Null => Vec::new(),
            _ => {
                return Err(format_error(
                    "`list` is neither an array nor an object".into(),
                ))
            }
        };
        let list = self.lists.len() as u32;
        let mut entries = 0;
        let mut bad = 0;
        for value in &values {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match self.add_entry(kind, list, value) {
                Ok(()) => entries += 1,
                Err(reason) => {
                    bad += 1;
                    self.skipped.push(Skipped {
                        location: format!("{}: list {name:?}: entry {value:?}", path.display()),
                        reason,
                    });
                }
            }
        }
        // One line per list, naming the first bad entry; all are in `skipped`.
        let first_bad = self.skipped.len() - bad;
        if let Some(first) = self.skipped.get(first_bad).filter(|_| bad > 0) {
            tracing::warn!(list = %name, skipped = bad, first = %first.location,
                reason = %first.reason, "Skipped unusable warninglist entries.");
        }
        let version = raw.version.and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        self.lists.push(Warninglist {
            name,
            description: raw.description.unwrap_or_default(),
            version,
            kind,
            matching_attributes: raw.matching_attributes.unwrap_or_default(),
            entries,
            path: path.to_path_buf(),
        });
        if kind == ListType::Cidr {
            self.ranges.finish();
        }
        self.compiled = OnceLock::new();
        Ok(())
    }

    /// Canonicalises one entry and adds it to the structure for `kind`.
    fn add_entry(&mut self, kind: ListType, list: u32, value: &str) -> Result<(), String> {
        match kind {
            ListType::String => {
                let folded = value.to_ascii_lowercase();
                let folded = folded.trim_end_matches('.');
                if folded.is_empty() {
                    return Err("empty entry".into());
                }
                self.strings.insert(folded, list);
                // The canonical form when it may differ: IPv6, URLs, IDN, defanged
                // text. A wildcard or `ip:port` is kept only as written.
                let may_differ = !value.is_ascii()
                    || value
                        .bytes()
                        .any(|b| matches!(b, b':' | b'/' | b'[' | b'(' | b'{'));
                if may_differ && !value.starts_with(['*', '.']) {
                    if let Ok(c) = canon::detect(value) {
                        if c.port.is_none() {
                            self.strings.insert(&c.value.to_ascii_lowercase(), list);
                        }
                    }
                }
                Ok(())
            }
            ListType::Substring => {
                self.substrings.insert(&value.to_ascii_lowercase(), list);
                Ok(())
            }
            ListType::Hostname => {
                self.hostnames.insert(&canonical_host(value)?, list);
                Ok(())
            }
            ListType::Cidr => {
                // The common forms directly; anything else through `canon`.
                let net = parse_ip(value)
                    .and_then(|(addr, len)| IpNet::new(addr, len).ok())
                    .or_else(|| canon::canonical_ip(value).and_then(|(_, t)| parse_net(&t)))
                    .ok_or("not an IP address or CIDR")?;
                self.ranges.insert(net, list);
                Ok(())
            }
            ListType::Regex => {
                let pattern = pcre_to_rust(value)?;
                RegexBuilder::new(&pattern)
                    .build()
                    .map_err(|e| format!("invalid regex: {e}"))?;
                self.regexes.push((pattern, list));
                Ok(())
            }
        }
    }
}

/// Collects `*.json` files below `dir`; unreadable entries become errors.
fn collect_json(
    dir: &Path,
    read: fs::ReadDir,
    depth: usize,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<IntelError>,
) {
    for entry in read {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                errors.push(IntelError::io(dir, e));
                continue;
            }
        };
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links; the depth limit stops loops.
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                errors.push(IntelError::io(&path, e));
                continue;
            }
        };
        if meta.is_dir() {
            if depth >= MAX_DIR_DEPTH {
                errors.push(IntelError::Format {
                    path,
                    message: format!("directory deeper than {MAX_DIR_DEPTH} levels; not read"),
                });
                continue;
            }
            match fs::read_dir(&path) {
                Ok(read) => collect_json(&path, read, depth + 1, files, errors),
                Err(e) => errors.push(IntelError::io(&path, e)),
            }
        } else if meta.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            files.push(path);
        }
    }
}

/// ASCII lower case, borrowed when already lower case.
#[inline]
fn fold(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// A host that is an IP address: an IPv6 text, or a last label of digits (a
/// canonical domain never has a numeric top-level label).
fn looks_like_ip(host: &str) -> bool {
    host.contains(':')
        || host
            .rsplit('.')
            .next()
            .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
}

/// A hostname-list entry: lower case, dots and a leading `*.` trimmed, IDN to
/// punycode, an IP in canonical form. One label is allowed (`local`, `onion`).
fn canonical_host(value: &str) -> Result<String, String> {
    let h = value.trim().trim_matches('.');
    let h = h.strip_prefix("*.").unwrap_or(h).trim_start_matches('.');
    if h.is_empty() {
        return Err("empty host name".into());
    }
    if let Some((_, ip)) = canon::canonical_ip(h) {
        return Ok(ip);
    }
    let host = if h.is_ascii() {
        h.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(h).map_err(|_| "invalid IDN host name".to_string())?
    };
    let valid = host
        .split('.')
        .all(|l| !l.is_empty() && l.bytes().all(canon::is_host_byte));
    if valid {
        Ok(host)
    } else {
        Err("not a host name".into())
    }
}

/// Parses canonical IP text: an address is its own /32 or /128.
fn parse_net(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

/// An indicator value as (address, prefix length), mapped IPv6 as IPv4.
#[inline]
fn parse_ip(text: &str) -> Option<(IpAddr, u8)> {
    let first = *text.as_bytes().first()?;
    if !(first.is_ascii_hexdigit() || first == b':') {
        return None;
    }
    let (addr, len) = match text.parse::<IpAddr>() {
        Ok(a) => (a, if a.is_ipv4() { 32 } else { 128 }),
        Err(_) => {
            let net = text.parse::<IpNet>().ok()?.trunc();
            (net.network(), net.prefix_len())
        }
    };
    Some(match addr {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), len.saturating_sub(96)),
            None => (addr, len),
        },
        IpAddr::V4(_) => (addr, len),
    })
}

/// Translates a PCRE pattern as MISP writes it (`/body/flags`, any PCRE delimiter)
/// into `regex` syntax: the flags become an inline group, an escaped delimiter a
/// literal. A pattern without delimiters is taken as it is.
fn pcre_to_rust(pattern: &str) -> Result<String, String> {
    let Some(open) = pattern.chars().next() else {
        return Err("empty regex".into());
    };
    let close = match open {
        '(' => ')',
        '{' => '}',
        '[' => ']',
        '<' => '>',
        c => c,
    };
    let delimited = !(open.is_alphanumeric() || open == '\\' || open.is_whitespace());
    let end = pattern
        .rfind(close)
        .filter(|&e| e >= open.len_utf8() && delimited);
    let Some(end) = end.filter(|&e| {
        pattern[e + close.len_utf8()..]
            .bytes()
            .all(|b| b.is_ascii_alphabetic())
    }) else {
        if open == '/' {
            return Err("regex delimiter `/` not closed".into());
        }
        return Ok(pattern.to_string());
    };
    let body = &pattern[open.len_utf8()..end];
    let mut flags = String::new();
    let mut anchored = false;
    for f in pattern[end + close.len_utf8()..].chars() {
        match f {
            'i' | 'm' | 's' | 'x' | 'U' => flags.push(f),
            'A' => anchored = true,
            // Unicode (always on), dollar-end-only (the default here), study, extra,
            // duplicate names: nothing to translate.
            'u' | 'D' | 'S' | 'X' | 'J' => {}
            other => return Err(format!("unsupported regex flag {other:?}")),
        }
    }
    let mut out = String::with_capacity(body.len() + 12);
    if !flags.is_empty() {
        out.push_str("(?");
        out.push_str(&flags);
        out.push(')');
    }
    if anchored {
        out.push_str(r"\A(?:");
    }
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // PCRE reads `\<` and `\>` as literals; `regex` as word boundaries.
            Some(n) if n == open || n == close || n == '<' || n == '>' => {
                out.push_str(&regex::escape(n.encode_utf8(&mut [0; 4])))
            }
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    if anchored {
        out.push(')');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Kind::*;

    fn load(lists: &[String]) -> Warninglists {
        let mut w = Warninglists::new();
        for (i, json) in lists.iter().enumerate() {
            let path = PathBuf::from(format!("test-{i}.json"));
            if let Err(e) = w.load_json(&path, json.as_bytes()) {
                panic!("test list {i} did not load: {e}");
            }
        }
        w.compile();
        w
    }

    fn list(name: &str, kind: &str, attrs: &[&str], entries: &[&str]) -> String {
        serde_json::json!({
            "name": name, "description": "test", "version": 1, "type": kind,
            "matching_attributes": attrs, "list": entries,
        })
        .to_string()
    }

    /// (kind, MISP type, canonical value, name of the first list expected to hold it).
    type Case = (Kind, &'static str, &'static str, Option<&'static str>);

    fn run(w: &Warninglists, cases: &[Case]) {
        for &(kind, misp_type, value, want) in cases {
            let got = w
                .check(kind, misp_type, value)
                .map(|i| w.lists()[i].name.as_str());
            assert_eq!(got, want, "check({kind}, {misp_type:?}, {value:?})");
        }
    }

    #[test]
    fn string_is_exact_and_case_folded() {
        let entries = [
            "Example.COM",
            "evil.org.",
            "2001:DB8::1",
            "https://Good.example/Path",
        ];
        let w = load(&[list("s", "string", &[], &entries)]);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (Domain, "", "example.com", Some("s")),
            (Domain, "", "www.example.com", None),
            (Domain, "", "example.co", None),
            (Domain, "", "evil.org", Some("s")),
            (Ipv6, "", "2001:db8::1", Some("s")),
            (Url, "", "good.example/Path", Some("s")),
            (Literal, "text", "EXAMPLE.com", Some("s")),
        ];
        run(&w, cases);
    }

    #[test]
    fn substring_contains() {
        let w = load(&[list("sub", "substring", &[], &[".onion", "Tracker"])]);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (Domain, "", "abc.onion", Some("sub")),
            (Url, "", "abc.onion.to/x", Some("sub")),
            (Url, "", "x.example/trackerjs", Some("sub")),
            (Domain, "", "onion.example", None),
        ];
        run(&w, cases);
    }

    #[test]
    fn hostname_matches_host_and_parents() {
        let entries = ["*.Example.com.", ".corp.internal", "local", "10.0.0.1"];
        let w = load(&[list("h", "hostname", &[], &entries)]);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (Domain, "", "example.com", Some("h")),
            (Domain, "", "a.b.example.com", Some("h")),
            (Hostname, "", "mail.example.com", Some("h")),
            (Domain, "", "notexample.com", None),
            (Domain, "", "example.com.evil.net", None),
            (Url, "", "cdn.example.com:8443/x/y", Some("h")),
            (Url, "", "evil.net/example.com", None),
            (Email, "", "bob@hr.corp.internal", Some("h")),
            (Domain, "", "printer.local", Some("h")),
            (Ipv4, "", "10.0.0.1", Some("h")),
            (Url, "", "10.0.0.1/admin", Some("h")),
            (Ipv4, "", "20.0.0.1", None),
        ];
        run(&w, cases);
    }

    #[test]
    fn cidr_contains_addresses_and_narrower_prefixes() {
        let w = load(&[
            list(
                "v4",
                "cidr",
                &[],
                &["10.0.0.0/8", "192.0.2.7", "198.51.100.9/24"],
            ),
            list("v6", "cidr", &[], &["FE80::/10", "2001:DB8::1"]),
        ]);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (Ipv4, "", "10.1.2.3", Some("v4")),
            (Ipv4, "", "10.20.0.0/16", Some("v4")),
            (Ipv4, "", "10.0.0.0/8", Some("v4")),
            (Ipv4, "", "10.0.0.0/7", None),
            (Ipv4, "", "0.0.0.0/0", None),
            (Ipv4, "", "11.0.0.1", None),
            // A plain address entry is a /32.
            (Ipv4, "", "192.0.2.7", Some("v4")),
            (Ipv4, "", "192.0.2.8", None),
            (Ipv4, "", "192.0.2.0/24", None),
            // An entry with host bits set stands for its network.
            (Ipv4, "", "198.51.100.200", Some("v4")),
            // Upper-case IPv6 entries.
            (Ipv6, "", "fe80::1", Some("v6")),
            (Ipv6, "", "febf:ffff::/32", Some("v6")),
            (Ipv6, "", "fe00::/8", None),
            (Ipv6, "", "fec0::1", None),
            (Ipv6, "", "2001:db8::1", Some("v6")),
            (Ipv6, "", "2001:db8::2", None),
            (Url, "", "10.9.9.9:8080/x", Some("v4")),
            (Domain, "", "example.com", None),
        ];
        run(&w, cases);
    }

    #[test]
    fn regex_with_delimiters_and_flags() {
        #[rustfmt::skip]
        let entries = [
            r"/^ad[0-9]+\.example\.com$/i", r"#^.*\.test$#", r"/^x\/y$/", r"/(?<=a)b/", "/unclosed",
        ];
        let w = load(&[list("re", "regex", &[], &entries)]);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (Domain, "", "ad12.example.com", Some("re")),
            (Literal, "text", "AD12.EXAMPLE.COM", Some("re")),
            (Domain, "", "ad.example.com", None),
            (Domain, "", "foo.test", Some("re")),
            (Literal, "text", "x/y", Some("re")),
        ];
        run(&w, cases);
        // The look-behind and the unclosed pattern are skipped, named with their list.
        assert_eq!(w.lists()[0].entries, 3);
        assert_eq!(w.skipped().len(), 2);
        assert!(w.skipped().iter().all(|s| s.location.contains("\"re\"")));
    }

    #[test]
    fn pcre_translation_table() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<&str>)] = &[
            ("/abc/", Some("abc")),
            ("/abc/i", Some("(?i)abc")),
            ("/abc/imsx", Some("(?imsx)abc")),
            (r"/a\/b/", Some("a/b")),
            (r"#a\#b#", Some(r"a\#b")),
            (r"/a\<b/", Some("a<b")),
            ("/abc/A", Some(r"\A(?:abc)")),
            ("/abc/u", Some("abc")),
            ("(abc)i", Some("(?i)abc")),
            ("^abc$", Some("^abc$")),
            ("abc", Some("abc")),
            ("/abc", None),
            ("/abc/e", None),
        ];
        for &(input, want) in cases {
            let got = pcre_to_rust(input).ok();
            assert_eq!(got.as_deref(), want, "pcre_to_rust({input:?})");
        }
    }

    #[test]
    fn matching_attributes_are_respected() {
        let w = load(&[
            list(
                "private",
                "cidr",
                &["ip-src", "ip-dst", "ip-dst|port"],
                &["10.0.0.0/8"],
            ),
            list(
                "top",
                "string",
                &["hostname", "domain", "url", "domain|ip"],
                &["google.com"],
            ),
            list(
                "hashes",
                "string",
                &["md5", "filename|sha1"],
                &["d41d8cd98f00b204e9800998ecf8427e"],
            ),
            list("any", "string", &[], &["anything.example"]),
            list(
                "parts",
                "cidr",
                &["ip-src|port", "domain|ip"],
                &["192.0.2.0/24"],
            ),
            list("all", "string", &["ALL"], &["everything.example"]),
        ]);
        let empty_md5 = "d41d8cd98f00b204e9800998ecf8427e";
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (Ipv4, "ip-dst", "10.1.1.1", Some("private")),
            (Ipv4, "", "10.1.1.1", Some("private")),
            (Ipv4, "ip-dst|port", "10.1.1.1", Some("private")),
            (Ipv4, "domain|ip", "10.1.1.1", None),
            (Domain, "domain", "10.1.1.1", None),
            // Composite parts: `ip-src` of `ip-src|port`, `ip` of `domain|ip`; for a
            // cidr list neither `port` nor `domain`.
            (Ipv4, "ip-src", "192.0.2.1", Some("parts")),
            (Ipv4, "ip", "192.0.2.1", Some("parts")),
            (Ipv4, "port", "192.0.2.1", None),
            (Domain, "domain", "192.0.2.1", None),
            (Domain, "domain", "google.com", Some("top")),
            (Domain, "domain|ip", "google.com", Some("top")),
            (Md5, "md5", empty_md5, Some("hashes")),
            (Md5, "sha1", empty_md5, Some("hashes")),
            (Md5, "sha256", empty_md5, None),
            (Md5, "md5", "google.com", None),
            (Literal, "mutex", "anything.example", Some("any")),
            (Literal, "mutex", "everything.example", Some("all")),
        ];
        run(&w, cases);
        assert!(w.lists()[0].applies_to("ip-dst") && !w.lists()[0].applies_to("domain"));
        assert!(w.lists()[2].applies_to("filename"));
        assert!(w.lists()[3].applies_to("domain"));
        assert!(w.lists()[4].applies_to("ip-src") && w.lists()[4].applies_to("domain|ip"));
        assert!(!w.lists()[4].applies_to("domain") && !w.lists()[4].applies_to("port"));
    }

    #[test]
    fn first_list_and_all_lists() {
        let w = load(&[
            list("a", "cidr", &[], &["10.0.0.0/8"]),
            list("b", "cidr", &[], &["10.1.0.0/16", "10.0.0.0/8"]),
            list("c", "hostname", &[], &["example.com"]),
        ]);
        assert_eq!(w.check(Ipv4, "", "10.1.2.3"), Some(0));
        assert_eq!(w.check_all(Ipv4, "", "10.1.2.3"), vec![0, 1]);
        assert_eq!(w.check_all(Ipv4, "", "10.2.2.3"), vec![0, 1]);
        assert_eq!(w.check_all(Ipv4, "", "11.2.2.3"), Vec::<usize>::new());
        assert_eq!(w.check_all(Domain, "", "x.example.com"), vec![2]);
    }

    #[test]
    fn list_as_object_missing_type_and_duplicate_names() {
        let mut w = Warninglists::new();
        let with_comments = r#"{"name": "c", "list": {"example.com": "ours", "": "x"}}"#;
        assert!(w
            .load_json(Path::new("c.json"), with_comments.as_bytes())
            .is_ok());
        assert!(w
            .load_json(Path::new("d.json"), with_comments.as_bytes())
            .is_ok());
        assert_eq!(w.lists().len(), 1);
        assert_eq!(
            (w.lists()[0].kind, w.lists()[0].entries),
            (ListType::String, 1)
        );
        assert_eq!(w.skipped().len(), 1);
        assert_eq!(w.check(Domain, "", "example.com"), Some(0));
        let bad_type = r#"{"name": "t", "type": "fuzzy", "list": []}"#;
        let e = w.load_json(Path::new("t.json"), bad_type.as_bytes());
        assert!(matches!(e, Err(IntelError::Format { .. })), "{e:?}");
    }

    #[test]
    fn bad_json_reports_line_and_column() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("no temp dir")
        };
        let bad = dir.path().join("bad.json");
        let ours = dir.path().join("lists").join("ours");
        std::fs::create_dir_all(&ours).ok();
        std::fs::write(&bad, "{\n  \"name\": \"x\",\n  \"list\": [\"a\",]\n}\n").ok();
        std::fs::write(
            ours.join("list.json"),
            list("ours", "hostname", &[], &["corp.example"]),
        )
        .ok();
        std::fs::write(dir.path().join("README.txt"), "not a list").ok();
        match Warninglists::new().load_file(&bad) {
            Err(IntelError::Json { line, column, .. }) => assert_eq!((line, column), (3, 16)),
            other => panic!("expected a JSON error, got {other:?}"),
        }
        let mut w = Warninglists::new();
        let errors = w.load_dir(dir.path());
        let Ok(errors) = errors else {
            panic!("load_dir failed: {errors:?}")
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].to_string().contains("bad.json:3:16"),
            "{}",
            errors[0]
        );
        assert_eq!(w.lists().len(), 1);
        assert_eq!(w.check(Domain, "", "vpn.corp.example"), Some(0));
        assert!(w.load_dir(&dir.path().join("missing")).is_err());
    }

    fn shipped() -> Warninglists {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/warninglists");
        let mut w = Warninglists::new();
        match w.load_dir(&dir) {
            Ok(errors) => assert!(errors.is_empty(), "{errors:?}"),
            Err(e) => panic!("{e}"),
        }
        assert!(w.skipped().is_empty(), "{:?}", &w.skipped()[..1]);
        w.compile();
        w
    }

    #[test]
    fn shipped_lists() {
        let w = shipped();
        assert_eq!(w.lists().len(), 9);
        let files = |kind, t: &str, v: &str| -> Vec<String> {
            let stem = |i: usize| {
                w.lists()[i]
                    .path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
            };
            w.check_all(kind, t, v)
                .into_iter()
                .filter_map(stem)
                .collect()
        };
        let empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        #[rustfmt::skip]
        let cases: &[(Kind, &str, &str, &[&str])] = &[
            (Ipv4, "ip-dst", "10.1.2.3", &["rfc1918", "rfc5735"]),
            (Ipv4, "ip-src", "8.8.8.8", &["public-dns-v4"]),
            (Ipv4, "", "192.0.2.1", &["rfc5735"]),
            (Ipv4, "", "239.1.1.1", &["multicast", "rfc5735"]),
            (Ipv4, "", "104.16.1.1", &["cloudflare"]),
            (Ipv6, "", "fe80::1", &["ipv6-linklocal"]),
            (Ipv6, "", "2606:4700::1111", &["cloudflare"]),
            (Ipv4, "", "5.63.151.7", &[]),
            (Domain, "domain", "10.1.2.3", &[]),
            (Domain, "", "google.com", &["cloudflare-top1k"]),
            (Domain, "", "evil.google.com", &[]),
            (Md5, "", "google.com", &[]),
            (Md5, "", "d41d8cd98f00b204e9800998ecf8427e", &["empty-hashes"]),
            (Sha256, "", empty_sha256, &["empty-hashes"]),
            (Domain, "", "duckdns.org", &["cloudflare-top1k", "tripline-shared-parents"]),
            (Domain, "", "x.duckdns.org", &[]),
            (Domain, "", "mooo.com", &["tripline-shared-parents"]),
            (Domain, "domain|ip", "ngrok-free.app", &["tripline-shared-parents"]),
            (Url, "", "mooo.com/", &[]),
        ];
        for &(kind, t, v, want) in cases {
            assert_eq!(files(kind, t, v), want, "check_all({kind}, {t:?}, {v:?})");
        }
    }

    #[test]
    fn public_types_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Warninglists>();
        assert_send_sync::<Warninglist>();
    }

    /// Check cost over real indicator lists. Run with
    /// `cargo test --release --lib intel::warninglist -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn check_cost_on_real_indicators() {
        let t = std::time::Instant::now();
        let w = shipped();
        eprintln!(
            "shipped lists: load + compile {:?}, {} bytes",
            t.elapsed(),
            w.memory_bytes()
        );
        for (file, kind) in [("ipv4.txt", Ipv4), ("domains.txt", Domain)] {
            let path = Path::new("/work/shared/data/iocs").join(file);
            let Ok(text) = std::fs::read_to_string(&path) else {
                eprintln!("{} not found; skipped", path.display());
                continue;
            };
            let values: Vec<String> = text
                .lines()
                .filter_map(|l| canon::canonical(kind, l).ok().map(|c| c.value))
                .collect();
            let t = std::time::Instant::now();
            let hits: Vec<usize> = values.iter().filter_map(|v| w.check(kind, "", v)).collect();
            let ns = t.elapsed().as_nanos() as f64 / values.len().max(1) as f64;
            let mut by_list = std::collections::BTreeMap::new();
            for &l in &hits {
                *by_list.entry(w.lists()[l].name.as_str()).or_insert(0) += 1;
            }
            eprintln!(
                "{file}: {} values, {ns:.0} ns per check, on lists: {by_list:?}",
                values.len()
            );
        }
    }
}
