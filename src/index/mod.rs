//! The compiled, immutable `Index` that the matcher looks indicators up in.
//!
//! [`Index::build`] consumes an [`IntelStore`], applies warninglists to indicators
//! (never to log lines), and adds the lookup structures each kind needs:
//!
//! | kind | structure | cost per lookup |
//! |---|---|---|
//! | IPv4/IPv6 address or CIDR | [`PrefixTable`] (one hash map per prefix length) | one probe per distinct prefix length |
//! | domain | [`StrSet`] probed with each label suffix of a host | one probe per label |
//! | host name, URL, hash, e-mail | [`StrSet`] | one probe |
//! | file name, registry key, other literals | one Aho-Corasick automaton over the line (ASCII case-insensitive when any file name or registry key is present; literals are confirmed byte for byte) | linear in the line |
//!
//! None of these costs grows with the number of indicators. A TLD set rejects host
//! tokens whose last label no indicator has (file names such as `logo.png`), and a set
//! of URL hosts rejects URL candidates before their path is copied.
//!
//! Memory: the store's string sets (value bytes + ~10 bytes each), 8 bytes of links per
//! (indicator, source) pair, ~10 bytes per IP entry, interned metas, sources and events,
//! and 16 bytes per MISP attribute that carries decay inputs.
//!
//! Expiry and decay ([`crate::intel::expiry`]) are judged per matched meta at the
//! line's time ([`Index::metas_valid_at`]); a build given a time
//! ([`BuildOptions::now`], the sidecar) also drops what has lapsed by then and counts
//! it by source and reason ([`Index::lapsed_by_source`]).
//! [`Index::memory_bytes`] adds these up and `tripline intel` prints them.

pub mod build;
pub mod ip;
/// Moved to [`crate::lookup::strset`]; kept here so old paths still work.
pub use crate::lookup::strset;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use crate::intel::canon;
use crate::intel::expiry::{self, DecayInput, DecayModel, ExpiryPolicy, Judged};
use crate::intel::store::Interner;
use crate::intel::warninglist::Warninglists;
use crate::intel::{EventInfo, Exclusion, IndicatorId, IntelStore, Kind, Meta, Source, Tlp};

use crate::lookup::{PrefixTable, StrSet};

/// What happens to an indicator that is on a warninglist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WarninglistMode {
    /// Not matched; reported at load.
    #[default]
    Drop,
    /// Matched, with a `warninglisted` mark on the enrichment.
    Flag,
}

#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub warninglist_mode: WarninglistMode,
    /// How intel ages (decay models, default lifetimes): judged at match time against
    /// each line's time.
    pub expiry: ExpiryPolicy,
    /// Drop what has lapsed at this time (seconds) from the index and count it by
    /// source and reason: the sidecar passes now at every build; a hunt passes `None`
    /// and judges each line at its own time only.
    pub now: Option<i64>,
}

/// Is a (canonical, lower-case) file name one the matcher's word scan finds: word
/// bytes only (`[a-z0-9._-]`), a dot with an extension of at most 16 bytes after it?
pub(crate) fn is_word_file_name(name: &[u8]) -> bool {
    let Some(dot) = memchr::memrchr(b'.', name) else {
        return false;
    };
    let ext = name.len() - dot - 1;
    (1..=16).contains(&ext)
        && name.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
}

/// The match semantics that are a judgement call, switchable per run (README, "Match
/// semantics"). The defaults favour detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchOptions {
    /// Look up host names that stand inside a URL's query string
    /// (`/redirect?u=evil.com`). On by default; off, a domain indicator matches only
    /// where a host stands, not in a parameter value.
    pub query_hosts: bool,
    /// What the port of an `ip|port` indicator (MISP `ip-dst|port`, `1.2.3.4:443` in a
    /// list) means: context only (`Any`, default: the address matches with any port or
    /// none), or required next to the address (`Exact`).
    pub ip_port: IpPortMatch,
}

impl Default for MatchOptions {
    fn default() -> MatchOptions {
        MatchOptions {
            query_hosts: true,
            ip_port: IpPortMatch::Any,
        }
    }
}

/// See [`MatchOptions::ip_port`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IpPortMatch {
    #[default]
    Any,
    Exact,
}

/// Links from an indicator of one kind to its metas, in compressed-row form.
#[derive(Clone, Debug, Default)]
struct Links {
    /// `starts[i]..starts[i + 1]` indexes `metas` for indicator `i`.
    starts: Vec<u32>,
    metas: Vec<u32>,
}

impl Links {
    fn of(&self, local: u32) -> &[u32] {
        let i = local as usize;
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.metas[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// A warninglist hit found at build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WarninglistHit {
    pub indicator: IndicatorId,
    pub list: usize,
}

/// Figures about a build, for `tripline intel` and logs.
#[derive(Clone, Debug, Default)]
pub struct BuildStats {
    pub build_secs: f64,
    pub memory_bytes: usize,
    /// Indicators matchable, by kind.
    pub active_by_kind: BTreeMap<Kind, u64>,
    /// Indicators dropped or flagged by warninglists, by list name.
    pub warninglisted_by_list: BTreeMap<String, u64>,
    pub literal_automaton: Option<String>,
}

pub struct Index {
    sets: Vec<StrSet>,
    links: Vec<Links>,
    pub sources: Vec<Source>,
    pub events: Vec<EventInfo>,
    strings: Interner,
    tagsets: Vec<Box<[u32]>>,
    metas: Vec<Meta>,
    meta_exclusion: Vec<Option<Exclusion>>,
    /// Warninglist hits (sorted by indicator) and the lists' names.
    warn_hits: Vec<WarninglistHit>,
    warn_names: Vec<String>,
    mode: WarninglistMode,
    pub(crate) v4: PrefixTable<u32>,
    pub(crate) v6: PrefixTable<u128>,
    /// Last labels of every domain, host name, e-mail domain and URL host.
    pub(crate) tlds: StrSet,
    /// Hosts of URL indicators.
    pub(crate) url_hosts: StrSet,
    /// Extensions of the file-name indicators the word scan finds (a name of word
    /// bytes with a dot, `invoice.exe`); other file names go to the automaton.
    pub(crate) file_exts: StrSet,
    /// The first bytes of `file_exts`, for a reject without hashing.
    pub(crate) file_ext_first: [bool; 256],
    /// The longest canonical URL indicator, in bytes: no URL key longer than this is
    /// looked up (bounds the work per URL token).
    pub(crate) max_url_len: usize,
    /// The switchable match semantics (see [`MatchOptions`]).
    pub(crate) match_options: MatchOptions,
    pub(crate) literals: Option<AhoCorasick>,
    /// Pattern id → indicator, for the literal automaton.
    pub(crate) literal_ids: Vec<IndicatorId>,
    /// Does any meta carry a validity window (STIX `valid_from`/`valid_until`)?
    pub has_validity: bool,
    /// Could any meta lapse (a validity window, a decay model or a lifetime that
    /// applies)? When not, matching skips the judgement.
    pub has_aging: bool,
    /// How intel ages (see [`crate::intel::expiry`]).
    expiry: ExpiryPolicy,
    /// Decay inputs by [`Meta::decay_input`].
    decay_inputs: Vec<DecayInput>,
    /// Decay models by interned MISP type id (types that decay only).
    type_models: std::collections::HashMap<u32, DecayModel>,
    /// Per source: is it MISP intel (decay applies)?
    source_decays: Vec<bool>,
    /// Indicators' provenances withdrawn at load (`deleted`, `revoked`) or lapsed at
    /// build (`valid_until`, `lifetime`, `decayed`, when built with a time), by
    /// (source index, reason).
    pub lapsed_by_source: BTreeMap<(u32, &'static str), u64>,
    /// The (indicator, meta) links dropped as lapsed at build, sorted: never matched,
    /// but the sharing policy still finds them (a false positive of lapsed intel may
    /// still go back; a positive sighting is withheld as `decayed`, not `withdrawn`).
    /// 8 bytes each.
    lapsed_links: Vec<(IndicatorId, u32)>,
    pub stats: BuildStats,
    pub skipped_by_reason: BTreeMap<String, u64>,
    pub excluded_by_reason: BTreeMap<String, u64>,
    pub skipped: Vec<crate::intel::Skipped>,
    pub records_by_source: Vec<u64>,
    /// Indicators the intel wrote otherwise than canonically (see
    /// [`IntelStore::written`](crate::intel::IntelStore)).
    written: std::collections::HashMap<IndicatorId, Box<str>>,
    /// Indicators refused at load as too broad (public suffixes, short prefixes).
    pub refused: Vec<crate::intel::store::Refused>,
    pub refused_by_reason: BTreeMap<&'static str, u64>,
    /// Per source: records skipped and indicators refused at load.
    pub losses_by_source: Vec<crate::intel::store::SourceLosses>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("indicators", &self.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// Automaton kinds by size: a DFA searches fastest and is small for a few thousand
/// patterns; beyond that its memory grows too fast (961 MB for 100k patterns), and
/// the contiguous NFA is the better trade.
const LITERAL_DFA_MAX_PATTERNS: usize = 5_000;

impl Index {
    /// Compiles `store`, applying `warninglists`.
    pub fn build(store: IntelStore, warninglists: &Warninglists, opts: BuildOptions) -> Index {
        let t0 = Instant::now();
        let IntelStore {
            sources,
            events,
            strings,
            tagsets,
            metas,
            meta_exclusion,
            mut sets,
            links: raw_links,
            withdrawn_by_source,
            decay_inputs,
            skipped,
            skipped_by_reason,
            excluded_by_reason,
            records_by_source,
            written,
            refused,
            refused_by_reason,
            losses_by_source,
            ..
        } = store;

        // Counting sort of links by indicator, per kind.
        let mut links: Vec<Links> = sets
            .iter()
            .map(|s| Links {
                starts: vec![0; s.len() + 1],
                metas: Vec::new(),
            })
            .collect();
        for (id, _) in &raw_links {
            links[id.kind() as usize].starts[id.local() as usize + 1] += 1;
        }
        for l in &mut links {
            for i in 1..l.starts.len() {
                l.starts[i] += l.starts[i - 1];
            }
            l.metas = vec![0; *l.starts.last().unwrap_or(&0) as usize];
        }
        let mut fill: Vec<Vec<u32>> = links.iter().map(|l| l.starts.clone()).collect();
        for (id, meta) in raw_links {
            let k = id.kind() as usize;
            let slot = &mut fill[k][id.local() as usize];
            links[k].metas[*slot as usize] = meta;
            *slot += 1;
        }
        drop(fill);
        // A value listed twice by one source keeps one link.
        for l in &mut links {
            let mut out = Vec::with_capacity(l.metas.len());
            let mut starts = Vec::with_capacity(l.starts.len());
            starts.push(0u32);
            for w in l.starts.windows(2) {
                let seg = &mut l.metas[w[0] as usize..w[1] as usize];
                seg.sort_unstable();
                let before = out.len();
                for &m in seg.iter() {
                    if out.len() == before || out.last() != Some(&m) {
                        out.push(m);
                    }
                }
                starts.push(out.len() as u32);
            }
            l.metas = out;
            l.starts = starts;
        }

        let mut index = Index {
            sets: Vec::new(),
            links,
            sources,
            events,
            strings,
            tagsets,
            metas,
            meta_exclusion,
            warn_hits: Vec::new(),
            warn_names: warninglists
                .lists()
                .iter()
                .map(|l| l.name.clone())
                .collect(),
            mode: opts.warninglist_mode,
            v4: PrefixTable::new(),
            v6: PrefixTable::new(),
            tlds: StrSet::new(),
            url_hosts: StrSet::new(),
            file_exts: StrSet::new(),
            file_ext_first: [false; 256],
            max_url_len: 0,
            match_options: MatchOptions::default(),
            literals: None,
            literal_ids: Vec::new(),
            has_validity: false,
            has_aging: false,
            expiry: opts.expiry.clone(),
            decay_inputs,
            type_models: std::collections::HashMap::new(),
            source_decays: Vec::new(),
            lapsed_by_source: withdrawn_by_source,
            lapsed_links: Vec::new(),
            stats: BuildStats::default(),
            skipped_by_reason,
            excluded_by_reason,
            skipped,
            records_by_source,
            written,
            refused,
            refused_by_reason,
            losses_by_source,
        };

        index.prepare_aging();
        if let Some(now) = opts.now.filter(|_| index.has_aging) {
            index.drop_lapsed(now);
        }

        // Warninglists, per indicator, with the MISP type of its first meta.
        for kind in Kind::ALL {
            let k = kind as usize;
            for (local, value) in sets[k].iter() {
                let Some(&first) = index.links[k].of(local).first() else {
                    continue;
                };
                let misp_type = index
                    .metas
                    .get(first as usize)
                    .map_or("", |m| index.strings.get(m.misp_type));
                let value = std::str::from_utf8(value).unwrap_or("");
                if let Some(list) = warninglists.check(kind, misp_type, value) {
                    index.warn_hits.push(WarninglistHit {
                        indicator: IndicatorId::new(kind, local),
                        list,
                    });
                }
            }
        }
        for hit in &index.warn_hits {
            let name = index.warn_names.get(hit.list).cloned().unwrap_or_default();
            *index.stats.warninglisted_by_list.entry(name).or_default() += 1;
        }
        if index.mode == WarninglistMode::Drop {
            // Emptied links make an indicator unmatchable without touching the sets.
            for hit in &index.warn_hits {
                let l = &mut index.links[hit.indicator.kind() as usize];
                let i = hit.indicator.local() as usize;
                let (a, b) = (l.starts[i], l.starts[i + 1]);
                if a != b {
                    l.metas.drain(a as usize..b as usize);
                    for s in &mut l.starts[i + 1..] {
                        *s -= b - a;
                    }
                }
            }
        }

        // Lookup structures for the live indicators.
        let mut literal_patterns: Vec<Vec<u8>> = Vec::new();
        let mut case_insensitive = false;
        for kind in Kind::ALL {
            let k = kind as usize;
            let mut active = 0u64;
            for (local, value) in sets[k].iter() {
                if index.links[k].of(local).is_empty() {
                    continue;
                }
                active += 1;
                let id = IndicatorId::new(kind, local).0;
                let text = std::str::from_utf8(value).unwrap_or("");
                match kind {
                    Kind::Ipv4 | Kind::Ipv6 => add_ip(&mut index, text, id),
                    Kind::Domain | Kind::Hostname => add_tld(&mut index.tlds, text),
                    Kind::Email => add_tld(&mut index.tlds, text),
                    Kind::Url => {
                        let host = canon::url_host(text);
                        add_tld(&mut index.tlds, host);
                        index.url_hosts.insert(host.as_bytes());
                        index.max_url_len = index.max_url_len.max(text.len());
                    }
                    Kind::Filename if is_word_file_name(value) => {
                        // Found by the word scan (no automaton pass per line): the
                        // matcher looks up dotted words whose extension is here.
                        let ext = value.rsplit(|&b| b == b'.').next().unwrap_or(value);
                        index.file_exts.insert(ext);
                        if let Some(&b) = ext.first() {
                            index.file_ext_first[b as usize] = true;
                        }
                    }
                    Kind::Filename | Kind::Literal | Kind::Regkey => {
                        case_insensitive |= kind != Kind::Literal;
                        literal_patterns.push(value.to_vec());
                        index.literal_ids.push(IndicatorId(id));
                    }
                    Kind::RegkeyValue => {
                        // The key is the pattern; the matcher confirms the value on
                        // the same line.
                        case_insensitive = true;
                        let key = value.split(|&b| b == b'|').next().unwrap_or(value);
                        literal_patterns.push(key.to_vec());
                        index.literal_ids.push(IndicatorId(id));
                    }
                    _ => {}
                }
            }
            if active > 0 {
                index.stats.active_by_kind.insert(kind, active);
            }
        }
        if !literal_patterns.is_empty() {
            let kind = if literal_patterns.len() <= LITERAL_DFA_MAX_PATTERNS {
                AhoCorasickKind::DFA
            } else {
                AhoCorasickKind::ContiguousNFA
            };
            match AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(case_insensitive)
                .kind(Some(kind))
                .build(&literal_patterns)
            {
                Ok(ac) => {
                    index.stats.literal_automaton = Some(format!(
                        "{:?}, {} patterns, {} bytes",
                        ac.kind(),
                        literal_patterns.len(),
                        ac.memory_usage()
                    ));
                    index.literals = Some(ac);
                }
                Err(e) => {
                    tracing::error!(error = %e, "Could not build the literal automaton; literals are not matched.");
                    index.literal_ids.clear();
                }
            }
        }
        for s in &mut sets {
            s.shrink();
        }
        index.sets = sets;
        index.v4.shrink();
        index.v4.finish();
        index.v6.shrink();
        index.tlds.shrink();
        index.url_hosts.shrink();
        index.file_exts.shrink();
        index.stats.memory_bytes = index.memory_bytes();
        index.stats.build_secs = t0.elapsed().as_secs_f64();
        tracing::info!(
            indicators = index.len(),
            memory_bytes = index.stats.memory_bytes,
            build_secs = index.stats.build_secs,
            "Built index."
        );
        index
    }

    /// Finds each meta's decay model and whether anything can lapse at all.
    fn prepare_aging(&mut self) {
        self.has_validity = self
            .metas
            .iter()
            .any(|m| m.valid_from.is_some() || m.valid_until.is_some());
        self.source_decays = self
            .sources
            .iter()
            .map(|s| expiry::is_misp_format(s.format))
            .collect();
        let mut type_models = std::collections::HashMap::new();
        for m in &self.metas {
            if !self
                .source_decays
                .get(m.source as usize)
                .copied()
                .unwrap_or(false)
            {
                continue;
            }
            if let Some(model) = self.expiry.model(self.strings.get(m.misp_type)) {
                type_models.insert(m.misp_type, *model);
            }
        }
        self.type_models = type_models;
        let lifetimes = self.expiry.lifetimes.iter().any(Option::is_some);
        self.has_aging = self.has_validity
            || !self.type_models.is_empty()
            || (lifetimes && self.metas.iter().any(|m| expiry::own_time(m).is_some()));
    }

    /// Drops the metas that have lapsed at `now` from every indicator's links,
    /// counting each (indicator, meta) dropped by source and reason.
    fn drop_lapsed(&mut self, now: i64) {
        for kind in Kind::ALL {
            let k = kind as usize;
            let old = std::mem::take(&mut self.links[k]);
            let mut out = Links {
                starts: Vec::with_capacity(old.starts.len()),
                metas: Vec::with_capacity(old.metas.len()),
            };
            out.starts.push(0);
            for local in 0..old.starts.len().saturating_sub(1) {
                for &m in old.of(local as u32) {
                    match self.judge(kind, m, now).lapse {
                        Some(lapse) => {
                            self.lapsed_links
                                .push((IndicatorId::new(kind, local as u32), m));
                            let source = self.meta(m).source;
                            *self
                                .lapsed_by_source
                                .entry((source, lapse.name()))
                                .or_default() += 1;
                        }
                        None => out.metas.push(m),
                    }
                }
                out.starts.push(out.metas.len() as u32);
            }
            self.links[k] = out;
        }
    }

    /// Judges one meta of an indicator of `kind` at `t` (see
    /// [`crate::intel::expiry`]): whether it lapsed then, and its decay score.
    pub fn judge(&self, kind: Kind, meta: u32, t: i64) -> Judged {
        let m = self.meta(meta);
        let model = self.type_models.get(&m.misp_type).filter(|_| {
            self.source_decays
                .get(m.source as usize)
                .copied()
                .unwrap_or(false)
        });
        let input = self
            .decay_inputs
            .get(m.decay_input as usize)
            .copied()
            .unwrap_or_default();
        self.expiry.judge(kind, m, model, input, t)
    }

    /// The metas of an indicator dropped as lapsed at build (see
    /// [`BuildOptions::now`]): for the sharing policy, never for matching.
    pub fn lapsed_metas_of(&self, id: IndicatorId) -> impl Iterator<Item = u32> + '_ {
        let start = self.lapsed_links.partition_point(|&(i, _)| i < id);
        self.lapsed_links[start..]
            .iter()
            .take_while(move |&&(i, _)| i == id)
            .map(|&(_, m)| m)
    }

    /// The highest decay score at `t` among some metas of an indicator of `kind`
    /// (`None` when none of them decays).
    pub fn score_at(&self, kind: Kind, metas: &[u32], t: i64) -> Option<f64> {
        if self.type_models.is_empty() {
            return None;
        }
        metas
            .iter()
            .filter_map(|&m| self.judge(kind, m, t).score)
            .reduce(f64::max)
    }

    /// Lapsed or withdrawn provenances by (source name, reason), for the
    /// `tripline_intel_expired` gauge (the files of one named directory are one
    /// source).
    pub fn lapsed_counts(&self) -> Vec<((String, &'static str), u64)> {
        let mut out: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for (&(s, r), &n) in &self.lapsed_by_source {
            let name = self
                .sources
                .get(s as usize)
                .map_or_else(|| "?".to_string(), |x| x.name.clone());
            *out.entry((name, r)).or_default() += n;
        }
        out.into_iter().collect()
    }

    /// Number of matchable indicators.
    pub fn len(&self) -> usize {
        self.stats.active_by_kind.values().sum::<u64>() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held by the index: values, links, lookup tables, metas, automaton.
    pub fn memory_bytes(&self) -> usize {
        let sets: usize = self.sets.iter().map(|s| s.memory_bytes()).sum();
        let links: usize = self
            .links
            .iter()
            .map(|l| (l.starts.capacity() + l.metas.capacity()) * 4)
            .sum();
        let metas = self.metas.capacity() * std::mem::size_of::<Meta>()
            + self
                .metas
                .iter()
                .map(|m| m.attr_uuid.as_ref().map_or(0, |u| u.len()))
                .sum::<usize>();
        let events: usize = self
            .events
            .iter()
            .map(|e| {
                std::mem::size_of::<EventInfo>()
                    + e.info.as_ref().map_or(0, |s| s.len())
                    + e.tags.iter().map(|t| t.len() + 24).sum::<usize>()
            })
            .sum();
        let written: usize = self.written.values().map(|w| w.len() + 40).sum();
        sets + links
            + metas
            + events
            + written
            + self.v4.memory_bytes()
            + self.v6.memory_bytes()
            + self.tlds.memory_bytes()
            + self.url_hosts.memory_bytes()
            + self.file_exts.memory_bytes()
            + self.strings.memory_bytes()
            + self.literals.as_ref().map_or(0, |a| a.memory_usage())
            + self.literal_ids.capacity() * 4
            + self.warn_hits.capacity() * std::mem::size_of::<WarninglistHit>()
            + self.decay_inputs.capacity() * std::mem::size_of::<DecayInput>()
            + self.lapsed_links.capacity() * 8
    }

    /// The string set of a kind.
    #[inline]
    pub(crate) fn set(&self, kind: Kind) -> &StrSet {
        &self.sets[kind as usize]
    }

    /// Sets the switchable match semantics (before matchers are made).
    pub fn set_match_options(&mut self, options: MatchOptions) {
        self.match_options = options;
    }

    pub fn match_options(&self) -> MatchOptions {
        self.match_options
    }

    /// The canonical text of an indicator.
    pub fn value(&self, id: IndicatorId) -> &str {
        self.sets[id.kind() as usize].get_str(id.local())
    }

    /// The indicator as the first source holding it wrote it (a URL with its scheme,
    /// a file name in its case); the canonical text when they are the same.
    pub fn written(&self, id: IndicatorId) -> &str {
        match self.written.get(&id) {
            Some(w) => w,
            None => self.value(id),
        }
    }

    /// The metas of an indicator (empty when it is not matchable).
    #[inline]
    pub fn metas_of(&self, id: IndicatorId) -> &[u32] {
        self.links[id.kind() as usize].of(id.local())
    }

    pub fn meta(&self, meta: u32) -> &Meta {
        &self.metas[meta as usize]
    }

    pub fn meta_exclusion(&self, meta: u32) -> Option<&Exclusion> {
        self.meta_exclusion
            .get(meta as usize)
            .and_then(|e| e.as_ref())
    }

    pub fn string(&self, id: u32) -> &str {
        self.strings.get(id)
    }

    pub fn tags(&self, tagset: u32) -> impl Iterator<Item = &str> + '_ {
        self.tagsets
            .get(tagset as usize)
            .into_iter()
            .flat_map(|t| t.iter())
            .map(|&id| self.strings.get(id))
    }

    /// The TLP that applies to a meta: its own, else its event's.
    pub fn tlp_of(&self, meta: &Meta) -> Option<Tlp> {
        meta.effective_tlp(&self.events)
    }

    /// The metas of an indicator that match at `t`: inside their STIX validity
    /// window, not decayed below their threshold, within their lifetime (every meta
    /// when nothing can lapse).
    pub fn metas_valid_at(&self, id: IndicatorId, t: i64) -> Vec<u32> {
        let kind = id.kind();
        self.metas_of(id)
            .iter()
            .copied()
            .filter(|&m| {
                !self.has_aging
                    || (self.meta(m).valid_at(t) && self.judge(kind, m, t).lapse.is_none())
            })
            .collect()
    }

    /// The distinct source names of some metas, sorted.
    pub fn source_names(&self, metas: &[u32]) -> Vec<&str> {
        let mut names: Vec<&str> = metas
            .iter()
            .filter_map(|&m| self.sources.get(self.meta(m).source as usize))
            .map(|s| s.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Matchable indicators per (kind, source index): an indicator held by two sources
    /// counts once for each. One pass over every indicator: for reports and metrics,
    /// never on the hot path.
    pub fn counts_by_kind_and_source(&self) -> BTreeMap<(Kind, u32), u64> {
        let mut counts = BTreeMap::new();
        let mut seen: Vec<u32> = Vec::new();
        for kind in Kind::ALL {
            for id in self.all_ids(kind) {
                seen.clear();
                for &m in self.metas_of(id) {
                    let s = self.meta(m).source;
                    if !seen.contains(&s) {
                        seen.push(s);
                        *counts.entry((kind, s)).or_default() += 1;
                    }
                }
            }
        }
        counts
    }

    /// The warninglist an indicator is on, if any (the first one that listed it).
    pub fn warninglist_of(&self, id: IndicatorId) -> Option<&str> {
        let i = self
            .warn_hits
            .binary_search_by(|h| h.indicator.cmp(&id))
            .ok()?;
        self.warn_names
            .get(self.warn_hits[i].list)
            .map(|s| s.as_str())
    }

    pub fn warninglist_mode(&self) -> WarninglistMode {
        self.mode
    }

    pub fn warninglist_hits(&self) -> &[WarninglistHit] {
        &self.warn_hits
    }

    pub fn warninglist_name(&self, list: usize) -> &str {
        self.warn_names.get(list).map_or("", |s| s.as_str())
    }

    /// Looks a canonical value of `kind` up exactly (no subdomain or prefix semantics).
    pub fn find_exact(&self, kind: Kind, canonical: &str) -> Option<IndicatorId> {
        self.sets[kind as usize]
            .find(canonical.as_bytes())
            .map(|l| IndicatorId::new(kind, l))
    }

    /// Every indicator, matchable or not (for reports).
    pub fn all_ids(&self, kind: Kind) -> impl Iterator<Item = IndicatorId> + '_ {
        (0..self.sets[kind as usize].len() as u32).map(move |l| IndicatorId::new(kind, l))
    }

    /// Domain indicators that are the parent of at least `min_children` other domain
    /// indicators: shared services (dynamic DNS, hosting) whose subdomain semantics would
    /// flag every customer. Sorted by child count, largest first.
    pub fn broad_parents(&self, min_children: usize) -> Vec<(IndicatorId, usize)> {
        let set = self.set(Kind::Domain);
        let mut children: hashbrown::HashMap<u32, usize> = hashbrown::HashMap::new();
        for (_, value) in set.iter() {
            let mut rest = value;
            while let Some(p) = memchr::memchr(b'.', rest) {
                rest = &rest[p + 1..];
                if memchr::memchr(b'.', rest).is_none() {
                    break;
                }
                if let Some(parent) = set.find(rest) {
                    *children.entry(parent).or_default() += 1;
                }
            }
        }
        let mut out: Vec<(IndicatorId, usize)> = children
            .into_iter()
            .filter(|&(_, n)| n >= min_children)
            .map(|(l, n)| (IndicatorId::new(Kind::Domain, l), n))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

fn add_ip(index: &mut Index, text: &str, id: u32) {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, l.parse::<u8>().ok()),
        None => (text, None),
    };
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => index.v4.insert(ip::v4_bits(a), len.unwrap_or(32), id),
        Ok(IpAddr::V6(a)) => index.v6.insert(ip::v6_bits(a), len.unwrap_or(128), id),
        Err(_) => {}
    }
}

fn add_tld(tlds: &mut StrSet, host: &str) {
    let host = host.rsplit('@').next().unwrap_or(host);
    if let Some(tld) = host.rsplit('.').next() {
        tlds.insert(tld.as_bytes());
    }
}

/// Converts an address to the table key family, unmapping IPv4-mapped IPv6.
pub fn ip_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(a),
        },
        a => a,
    }
}

/// Convenience for tests and `intel lookup`: v4 and v6 bits.
pub fn v4(a: Ipv4Addr) -> u32 {
    ip::v4_bits(a)
}

pub fn v6(a: Ipv6Addr) -> u128 {
    ip::v6_bits(a)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::intel::StoreOptions;

    fn index_with(indicators: &[&str], cidr_list: &[&str]) -> Index {
        let mut store = IntelStore::new(StoreOptions::default());
        let source = store.add_source(Source {
            name: "t".into(),
            format: "list",
            location: "test".into(),
            provider: None,
        });
        for value in indicators {
            let c = canon::detect(value).expect("a valid test indicator");
            let misp_type = store.intern(c.kind.default_misp_type());
            let meta = store
                .meta_id(Meta {
                    source,
                    misp_type,
                    to_ids: true,
                    ..Meta::default()
                })
                .expect("a meta");
            store.add_canonical(&c, meta);
        }
        let mut lists = Warninglists::new();
        let json = serde_json::json!({"name": "ranges", "type": "cidr", "list": cidr_list});
        lists
            .load_json(Path::new("ranges.json"), json.to_string().as_bytes())
            .expect("a valid list");
        Index::build(store, &lists, BuildOptions::default())
    }

    /// Figures for the module docs: 1M MISP-like attributes (one meta each, half of
    /// them decayed at `now`), built without and with dropping what lapsed, and the
    /// cost of judging one meta. `cargo test --release --lib decay_cost -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn decay_cost() {
        let now = 1_800_000_000i64;
        let store = || {
            let mut store = IntelStore::new(StoreOptions::default());
            let source = store.add_source(Source {
                name: "misp".into(),
                format: "misp",
                location: "test".into(),
                provider: None,
            });
            let ip_dst = store.intern("ip-dst");
            for i in 0..1_000_000u32 {
                let meta = store
                    .meta_id(Meta {
                        source,
                        attr_uuid: Some(format!("{i:08x}-0000-4000-8000-000000000000").into()),
                        misp_type: ip_dst,
                        to_ids: true,
                        modified: Some(now - i64::from(i % 100) * 86_400),
                        ..Meta::default()
                    })
                    .expect("a meta");
                let c = canon::detect(&std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string())
                    .expect("an address");
                store.add_canonical(&c, meta);
            }
            store
        };
        for drop in [false, true] {
            let s = store();
            let t = Instant::now();
            let opts = BuildOptions {
                now: drop.then_some(now),
                ..BuildOptions::default()
            };
            let index = Index::build(s, &Warninglists::new(), opts);
            eprintln!(
                "drop_lapsed={drop}: build {:.3} s, {} matchable, lapsed {:?}, {} bytes",
                t.elapsed().as_secs_f64(),
                index.len(),
                index.lapsed_by_source,
                index.stats.memory_bytes
            );
            if !drop {
                let ids: Vec<IndicatorId> = index.all_ids(Kind::Ipv4).collect();
                let t = Instant::now();
                let mut n = 0usize;
                for &id in &ids {
                    n += index.metas_valid_at(id, now).len();
                }
                eprintln!(
                    "metas_valid_at: {:.1} ns per indicator ({n} valid)",
                    t.elapsed().as_nanos() as f64 / ids.len() as f64
                );
            }
        }
        eprintln!("size_of::<Meta>() = {}", std::mem::size_of::<Meta>());
    }

    /// A warninglist lookup of a CIDR indicator finds list ranges covering all of it
    /// (a prefix no longer than the indicator's), not ranges inside it. A dropped
    /// indicator keeps no metas, so nothing can match it (`tests/integration`'s
    /// `match_semantics` shows the same through the matcher).
    #[test]
    fn warninglist_cidr_drops_covered_indicator_cidrs_only() {
        let index = index_with(
            &[
                "10.1.0.0/16",
                "10.0.0.0/7",
                "172.16.0.0/12",
                "2001:db8:1::/48",
            ],
            &["10.0.0.0/8", "172.16.0.0/24", "2001:db8::/32"],
        );
        let listed: Vec<&str> = index
            .warninglist_hits()
            .iter()
            .map(|h| index.value(h.indicator))
            .collect();
        assert_eq!(listed, ["10.1.0.0/16", "2001:db8:1::/48"]);
        let matchable = |kind, value| {
            let id = index.find_exact(kind, value).expect("indexed");
            !index.metas_of(id).is_empty()
        };
        // Covered by the listed /8 (/32): dropped.
        assert!(!matchable(Kind::Ipv4, "10.1.0.0/16"));
        assert!(!matchable(Kind::Ipv6, "2001:db8:1::/48"));
        // Wider than the listed /8, and than the /24 at its start: kept.
        assert!(matchable(Kind::Ipv4, "10.0.0.0/7"));
        assert!(matchable(Kind::Ipv4, "172.16.0.0/12"));
    }
}
