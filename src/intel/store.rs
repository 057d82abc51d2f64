//! `IntelStore`: everything the loaders understood, deduplicated, before compilation.
//!
//! Loaders push sources, events and metas, then values; the store canonicalises each
//! value, deduplicates it per [`Kind`] and records a link (indicator, meta). Records a
//! loader cannot use are kept as [`Skipped`] with their location (the first
//! [`MAX_SKIPPED_KEPT`] in full, all of them counted by reason). Metas excluded by
//! policy (`to_ids` false, deleted, revoked) are counted and dropped unless the store
//! was opened to explain (`intel lookup`), where they are kept for the explanation.
//!
//! Cost per indicator: its canonical bytes plus about 10 bytes in its kind's
//! [`StrSet`] and 8 bytes for its link; metas are interned, so the entries of one list
//! file share one. Decay inputs (a MISP attribute's last positive sighting and
//! exported base score) live in a side table, 16 bytes for each attribute that
//! carries one (see [`super::expiry`]).

use std::collections::{BTreeMap, HashMap};

use crate::lookup::StrSet;

use super::broad::BroadPolicy;
use super::canon::{self, Canonical};
use super::expiry::DecayInput;
use super::model::{EventInfo, Exclusion, Kind, Meta, Skipped, Source, Tlp};

/// How many skipped records are kept with their location; the rest are only counted.
pub const MAX_SKIPPED_KEPT: usize = 10_000;

/// What a store keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Keep MISP attributes whose `to_ids` is false as matchable.
    pub include_non_ids: bool,
    /// Keep excluded metas (with their reason) instead of dropping them: for
    /// `intel lookup`, which explains misses.
    pub keep_excluded: bool,
    /// Which values are too broad to be indicators (public suffixes, short prefixes).
    pub broad: BroadPolicy,
}

/// An indicator refused as too broad (see [`super::broad`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub kind: Kind,
    /// The canonical value.
    pub value: String,
    pub source: u32,
    pub location: String,
    /// [`super::broad::PUBLIC_SUFFIX`], [`super::broad::SHORT_PREFIX`] or
    /// [`super::broad::ZERO_PREFIX`].
    pub reason: &'static str,
    pub text: &'static str,
}

/// What one source lost at load: records skipped (malformed or unsupported) and
/// indicators refused as too broad, with the first of each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceLosses {
    pub skipped: u64,
    /// Of `skipped`: valid records of a type or pattern tripline does not match.
    pub unsupported: u64,
    pub refused: u64,
    pub first_skipped: Option<Skipped>,
    pub first_refused: Option<Skipped>,
}

/// An indicator id: its kind in the top 4 bits, its index in the kind's set below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndicatorId(pub u32);

impl IndicatorId {
    const SHIFT: u32 = 27;
    pub fn new(kind: Kind, local: u32) -> IndicatorId {
        IndicatorId(((kind as u32) << Self::SHIFT) | local)
    }
    pub fn kind(self) -> Kind {
        Kind::from_u8((self.0 >> Self::SHIFT) as u8)
    }
    pub fn local(self) -> u32 {
        self.0 & ((1 << Self::SHIFT) - 1)
    }
}

/// Small strings (MISP types, categories, tags) stored once.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    strings: Vec<Box<str>>,
    ids: foldhash::HashMap<Box<str>, u32>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }
    pub fn get(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("", |s| s)
    }
    pub fn memory_bytes(&self) -> usize {
        self.strings.iter().map(|s| s.len() * 2 + 48).sum()
    }
}

#[derive(Default)]
pub struct IntelStore {
    pub options: StoreOptions,
    pub sources: Vec<Source>,
    pub events: Vec<EventInfo>,
    pub strings: Interner,
    pub tagsets: Vec<Box<[u32]>>,
    tagset_ids: foldhash::HashMap<Box<[u32]>, u32>,
    pub metas: Vec<Meta>,
    meta_ids: foldhash::HashMap<Meta, u32>,
    /// Per meta: the policy exclusion that applies to it (kept only in explain mode).
    pub meta_exclusion: Vec<Option<Exclusion>>,
    /// One set per kind, indexed by `Kind as usize`.
    pub sets: Vec<StrSet>,
    /// (indicator, meta) pairs in insertion order.
    pub links: Vec<(IndicatorId, u32)>,
    pub skipped: Vec<Skipped>,
    pub skipped_by_reason: BTreeMap<String, u64>,
    pub excluded_by_reason: BTreeMap<String, u64>,
    /// Metas never loaded because their intel withdrew them, by (source, reason):
    /// `deleted` (MISP) and `revoked` (STIX).
    pub withdrawn_by_source: BTreeMap<(u32, &'static str), u64>,
    /// Decay inputs, by [`Meta::decay_input`]; entry 0 is "none".
    pub decay_inputs: Vec<DecayInput>,
    /// Records read per source (accepted or not).
    pub records_by_source: Vec<u64>,
    /// The indicator as the first source that holds it wrote it (`http://evil.com/x`
    /// for the URL `evil.com/x`), kept only where that differs from the canonical text:
    /// alerts name indicators as the intel does. Cost: the written bytes plus ~40 for
    /// each indicator written otherwise than canonically.
    pub written: HashMap<IndicatorId, Box<str>>,
    /// Per entry of `skipped`: was it an unsupported (valid) record?
    pub skipped_unsupported: Vec<bool>,
    /// Skipped records that are valid but not matched (a subset of all skipped).
    pub unsupported_total: u64,
    /// Indicators refused as too broad (the first [`MAX_SKIPPED_KEPT`] kept in full).
    pub refused: Vec<Refused>,
    pub refused_by_reason: BTreeMap<&'static str, u64>,
    /// Per source: what it lost at load.
    pub losses_by_source: Vec<SourceLosses>,
    /// Only counting (the sync runner's count of a pass's data): [`IntelStore::absorb`]
    /// adds a part's values and counts, not its metas, events or links, so the store
    /// answers [`IntelStore::len`] and the per-source counts, not lookups.
    pub count_only: bool,
}

impl IntelStore {
    pub fn new(options: StoreOptions) -> IntelStore {
        let mut s = IntelStore {
            options,
            sets: (0..Kind::ALL.len()).map(|_| StrSet::new()).collect(),
            ..IntelStore::default()
        };
        // Tag set 0 is the empty set; decay input 0 is none.
        s.intern_tags::<&str>(&[]);
        s.decay_inputs.push(DecayInput::default());
        s
    }

    /// Adds a source. Records skipped from now on are charged to it (loaders add a
    /// source, then read its records).
    pub fn add_source(&mut self, source: Source) -> u32 {
        self.sources.push(source);
        self.records_by_source.push(0);
        self.losses_by_source.push(SourceLosses::default());
        (self.sources.len() - 1) as u32
    }

    /// The losses of the source being loaded (the last one added).
    fn current_losses(&mut self) -> Option<&mut SourceLosses> {
        self.losses_by_source.last_mut()
    }

    pub fn add_event(&mut self, event: EventInfo) -> u32 {
        self.events.push(event);
        (self.events.len() - 1) as u32
    }

    pub fn intern(&mut self, s: &str) -> u32 {
        self.strings.intern(s)
    }

    pub fn intern_tags<S: AsRef<str>>(&mut self, tags: &[S]) -> u32 {
        let mut ids: Vec<u32> = tags
            .iter()
            .map(|t| self.strings.intern(t.as_ref()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let ids: Box<[u32]> = ids.into();
        if let Some(&id) = self.tagset_ids.get(&ids) {
            return id;
        }
        let id = self.tagsets.len() as u32;
        self.tagsets.push(ids.clone());
        self.tagset_ids.insert(ids, id);
        id
    }

    pub fn tags(&self, tagset: u32) -> impl Iterator<Item = &str> + '_ {
        self.tagsets
            .get(tagset as usize)
            .into_iter()
            .flat_map(|t| t.iter())
            .map(|&id| self.strings.get(id))
    }

    /// Interns `meta`. Returns `None` when policy excludes it (counted by reason), unless
    /// the store keeps excluded metas.
    pub fn meta_id(&mut self, meta: Meta) -> Option<u32> {
        let exclusion = meta.exclusion(self.options.include_non_ids);
        if let Some(ex) = &exclusion {
            *self.excluded_by_reason.entry(ex.to_string()).or_default() += 1;
            let withdrawn = match ex {
                Exclusion::Deleted => Some("deleted"),
                Exclusion::Revoked => Some("revoked"),
                _ => None,
            };
            if let Some(reason) = withdrawn {
                *self
                    .withdrawn_by_source
                    .entry((meta.source, reason))
                    .or_default() += 1;
            }
            if !self.options.keep_excluded {
                return None;
            }
        }
        if let Some(&id) = self.meta_ids.get(&meta) {
            return Some(id);
        }
        let id = self.metas.len() as u32;
        self.metas.push(meta.clone());
        self.meta_exclusion.push(exclusion);
        self.meta_ids.insert(meta, id);
        Some(id)
    }

    /// Records decay inputs for a meta about to be interned: the value for
    /// [`Meta::decay_input`] (0 when there is nothing to record).
    pub fn decay_input(&mut self, input: DecayInput) -> u32 {
        if input == DecayInput::default() {
            return 0;
        }
        self.decay_inputs.push(input);
        (self.decay_inputs.len() - 1) as u32
    }

    /// The decay inputs of a meta.
    pub fn decay_input_of(&self, meta: &Meta) -> DecayInput {
        self.decay_inputs
            .get(meta.decay_input as usize)
            .copied()
            .unwrap_or_default()
    }

    /// Adds one canonical value under a meta id.
    pub fn add_canonical(&mut self, c: &Canonical, meta: u32) -> IndicatorId {
        let (local, _) = self.sets[c.kind as usize].insert(c.value.as_bytes());
        let id = IndicatorId::new(c.kind, local);
        self.links.push((id, meta));
        id
    }

    /// Adds one canonical value from `location` under a meta id (unless the broad
    /// policy refuses it, see [`IntelStore::add_checked`]), remembering how the intel
    /// wrote it (`written`, trimmed) when that differs from the canonical text and no
    /// source wrote it before.
    pub fn add_written(
        &mut self,
        c: &Canonical,
        written: &str,
        meta: u32,
        location: impl FnOnce() -> String,
    ) -> Option<IndicatorId> {
        let id = self.add_checked(c, meta, location)?;
        let written = written.trim();
        if written != c.value && !written.is_empty() {
            self.written.entry(id).or_insert_with(|| written.into());
        }
        Some(id)
    }

    /// The indicator as the intel wrote it (see [`IntelStore::written`]).
    pub fn written(&self, id: IndicatorId) -> &str {
        match self.written.get(&id) {
            Some(w) => w,
            None => self.value(id),
        }
    }

    /// Adds one canonical value from `location` under a meta id, unless the broad
    /// policy refuses it (then it is recorded with its location and reason).
    pub fn add_checked(
        &mut self,
        c: &Canonical,
        meta: u32,
        location: impl FnOnce() -> String,
    ) -> Option<IndicatorId> {
        if let Some(r) = self.options.broad.refusal(c.kind, &c.value) {
            let location = location();
            let source = self.metas.get(meta as usize).map_or(0, |m| m.source);
            *self.refused_by_reason.entry(r.reason).or_default() += 1;
            tracing::debug!(%location, value = %c.value, reason = r.reason, "Refused a too broad indicator.");
            let first = Skipped {
                location: location.clone(),
                reason: format!("{} {}: {}", c.kind, c.value, r.text),
            };
            if let Some(l) = self.losses_by_source.get_mut(source as usize) {
                l.refused += 1;
                l.first_refused.get_or_insert(first);
            }
            if self.refused.len() < MAX_SKIPPED_KEPT {
                self.refused.push(Refused {
                    kind: c.kind,
                    value: c.value.clone(),
                    source,
                    location,
                    reason: r.reason,
                    text: r.text,
                });
            }
            return None;
        }
        Some(self.add_canonical(c, meta))
    }

    /// Canonicalises `value` as `kind` and adds it, or records why not.
    pub fn add_typed(
        &mut self,
        kind: Kind,
        value: &str,
        meta: u32,
        location: impl FnOnce() -> String,
    ) -> Option<IndicatorId> {
        match canon::canonical(kind, value) {
            Ok(c) => self.add_written(&c, value, meta, location),
            Err(reason) => {
                self.skip(location(), reason);
                None
            }
        }
    }

    /// Records a record that could not be used because it is malformed.
    pub fn skip(&mut self, location: String, reason: impl Into<String>) {
        self.record_skip(location, reason.into(), false);
    }

    /// Records a valid record that tripline does not match (a MISP type such as
    /// `link` or `comment`, a STIX pattern it cannot evaluate): counted and reported,
    /// never fatal under `--strict`.
    pub fn unsupported(&mut self, location: String, reason: impl Into<String>) {
        self.record_skip(location, reason.into(), true);
    }

    fn record_skip(&mut self, location: String, reason: String, unsupported: bool) {
        *self.skipped_by_reason.entry(reason.clone()).or_default() += 1;
        self.unsupported_total += u64::from(unsupported);
        if let Some(l) = self.current_losses() {
            l.skipped += 1;
            l.unsupported += u64::from(unsupported);
            if l.first_skipped.is_none() {
                l.first_skipped = Some(Skipped {
                    location: location.clone(),
                    reason: reason.clone(),
                });
            }
        }
        if self.skipped.len() < MAX_SKIPPED_KEPT {
            tracing::debug!(%location, %reason, "Skipped intel record.");
            self.skipped.push(Skipped { location, reason });
            self.skipped_unsupported.push(unsupported);
        }
    }

    /// Skipped records that are malformed (not merely unsupported).
    pub fn malformed_total(&self) -> u64 {
        self.skipped_total() - self.unsupported_total
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped_by_reason.values().sum()
    }

    /// The canonical text of an indicator.
    pub fn value(&self, id: IndicatorId) -> &str {
        self.sets[id.kind() as usize].get_str(id.local())
    }

    /// Number of distinct indicators.
    pub fn len(&self) -> usize {
        self.sets.iter().map(|s| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The TLP that applies to a meta: its own, else its event's.
    pub fn tlp_of(&self, meta: &Meta) -> Option<Tlp> {
        meta.effective_tlp(&self.events)
    }
}

/// One link of a [`Part`]: (kind, canonical value, meta, written form when it differs).
pub type PartLink = (Kind, Box<str>, u32, Option<Box<str>>);

/// What loading one file added to a store, detached from the store's ids: a
/// [`super::snapshot`] entry. Built from a store that loaded only that file
/// ([`Part::from_store`]) and replayed into another ([`IntelStore::absorb`]), which
/// then holds what loading the file into it directly would have left (same
/// indicators, metas, events, provenances, skips and counts; pinned by the
/// `intel_cache` tests).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Part {
    pub sources: Vec<Source>,
    pub records_by_source: Vec<u64>,
    pub losses_by_source: Vec<SourceLosses>,
    pub events: Vec<EventInfo>,
    pub strings: Vec<Box<str>>,
    /// Tag sets as string ids of `strings`; entry 0 is the empty set.
    pub tagsets: Vec<Box<[u32]>>,
    pub metas: Vec<Meta>,
    /// Decay inputs; entry 0 is "none".
    pub decay_inputs: Vec<DecayInput>,
    /// (kind, canonical value, meta, written form when it differs).
    pub links: Vec<PartLink>,
    pub skipped: Vec<(Skipped, bool)>,
    pub skipped_by_reason: BTreeMap<String, u64>,
    pub excluded_by_reason: BTreeMap<String, u64>,
    pub withdrawn_by_source: BTreeMap<(u32, &'static str), u64>,
    pub unsupported_total: u64,
}

impl Part {
    /// The part a store holds, or `None` when it cannot be replayed exactly: it kept
    /// excluded metas (explain mode) or refused indicators as too broad (their
    /// reasons are static texts a snapshot does not carry); such files are parsed at
    /// every load.
    pub fn from_store(s: &IntelStore) -> Option<Part> {
        if s.options.keep_excluded || !s.refused_by_reason.is_empty() {
            return None;
        }
        let links = s
            .links
            .iter()
            .map(|&(id, meta)| {
                let written = s.written.get(&id).cloned();
                (id.kind(), Box::from(s.value(id)), meta, written)
            })
            .collect();
        Some(Part {
            sources: s.sources.clone(),
            records_by_source: s.records_by_source.clone(),
            losses_by_source: s.losses_by_source.clone(),
            events: s.events.clone(),
            strings: s.strings.strings.clone(),
            tagsets: s.tagsets.clone(),
            metas: s.metas.clone(),
            decay_inputs: s.decay_inputs.clone(),
            links,
            skipped: s
                .skipped
                .iter()
                .cloned()
                .zip(s.skipped_unsupported.iter().copied())
                .collect(),
            skipped_by_reason: s.skipped_by_reason.clone(),
            excluded_by_reason: s.excluded_by_reason.clone(),
            withdrawn_by_source: s.withdrawn_by_source.clone(),
            unsupported_total: s.unsupported_total,
        })
    }

    /// Indicators (links) it adds.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }
}

impl IntelStore {
    /// A store for loading one file on its own, to become a [`Part`]: same options;
    /// with `source`, that source already added (a feed's event file is loaded under
    /// its directory's source).
    pub fn for_part(options: StoreOptions, source: Option<Source>) -> IntelStore {
        let mut s = IntelStore::new(options);
        if let Some(src) = source {
            s.add_source(src);
        }
        s
    }

    /// Makes room for what a snapshot replay adds ([`super::snapshot::Loader::sizes`]):
    /// per kind, links and value bytes (an upper bound on new values), and metas.
    pub fn reserve(&mut self, kinds: &[(usize, usize)], metas: usize) {
        let mut links = 0;
        for (set, &(n, bytes)) in self.sets.iter_mut().zip(kinds) {
            set.reserve(n, bytes);
            links += n;
        }
        if !self.count_only {
            self.links.reserve(links);
            self.metas.reserve(metas);
            self.meta_exclusion.reserve(metas);
        }
    }

    /// Replays a part. With `into_source`, the part's sources are that source of this
    /// store (an event file of a feed directory: its counts add to the directory's
    /// source); without, they are appended.
    pub fn absorb(&mut self, part: &Part, into_source: Option<u32>) {
        let source_map: Vec<u32> = match into_source {
            Some(s) => {
                for (i, _) in part.sources.iter().enumerate() {
                    let n = part.records_by_source.get(i).copied().unwrap_or(0);
                    if let Some(r) = self.records_by_source.get_mut(s as usize) {
                        *r += n;
                    }
                    if let (Some(l), Some(p)) = (
                        self.losses_by_source.get_mut(s as usize),
                        part.losses_by_source.get(i),
                    ) {
                        l.skipped += p.skipped;
                        l.unsupported += p.unsupported;
                        l.refused += p.refused;
                        if l.first_skipped.is_none() {
                            l.first_skipped.clone_from(&p.first_skipped);
                        }
                        if l.first_refused.is_none() {
                            l.first_refused.clone_from(&p.first_refused);
                        }
                    }
                }
                vec![s; part.sources.len()]
            }
            None => part
                .sources
                .iter()
                .enumerate()
                .map(|(i, src)| {
                    let id = self.add_source(src.clone());
                    if let Some(r) = self.records_by_source.last_mut() {
                        *r = part.records_by_source.get(i).copied().unwrap_or(0);
                    }
                    if let (Some(l), Some(p)) = (
                        self.losses_by_source.last_mut(),
                        part.losses_by_source.get(i),
                    ) {
                        l.clone_from(p);
                    }
                    id
                })
                .collect(),
        };
        let map_source = |s: u32| source_map.get(s as usize).copied().unwrap_or(0);
        if self.count_only {
            for (kind, value, _, _) in &part.links {
                self.sets[*kind as usize].insert(value.as_bytes());
            }
            self.absorb_counts(part, &map_source);
            return;
        }
        let event_base = self.events.len() as u32;
        self.events.extend(part.events.iter().cloned());
        let string_map: Vec<u32> = part.strings.iter().map(|s| self.intern(s)).collect();
        let map_string = |id: u32| string_map.get(id as usize).copied().unwrap_or(0);
        let tagset_map: Vec<u32> = part
            .tagsets
            .iter()
            .map(|t| {
                let names: Vec<&str> = t
                    .iter()
                    .map(|&id| part.strings.get(id as usize).map_or("", |s| s))
                    .collect();
                self.intern_tags(&names)
            })
            .collect();
        let decay_base = self.decay_inputs.len() as u32;
        self.decay_inputs
            .extend(part.decay_inputs.iter().skip(1).copied());
        let meta_map: Vec<u32> = part
            .metas
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m.source = map_source(m.source);
                m.event = m.event.map(|e| e + event_base);
                m.misp_type = map_string(m.misp_type);
                m.category = m.category.map(map_string);
                m.tags = tagset_map.get(m.tags as usize).copied().unwrap_or(0);
                if m.decay_input != 0 {
                    m.decay_input = m.decay_input - 1 + decay_base;
                }
                // Metas of another source never equal this store's: appended
                // without the interning map, which only loading needs.
                let id = self.metas.len() as u32;
                self.metas.push(m);
                self.meta_exclusion.push(None);
                id
            })
            .collect();
        self.links.reserve(part.links.len());
        for (kind, value, meta, written) in &part.links {
            let (local, _) = self.sets[*kind as usize].insert(value.as_bytes());
            let id = IndicatorId::new(*kind, local);
            self.links
                .push((id, meta_map.get(*meta as usize).copied().unwrap_or(0)));
            if let Some(w) = written {
                self.written.entry(id).or_insert_with(|| w.clone());
            }
        }
        self.absorb_counts(part, &map_source);
    }

    /// [`IntelStore::absorb`]'s skips and counts.
    fn absorb_counts(&mut self, part: &Part, map_source: &dyn Fn(u32) -> u32) {
        for (s, unsupported) in &part.skipped {
            if self.skipped.len() >= MAX_SKIPPED_KEPT {
                break;
            }
            self.skipped.push(s.clone());
            self.skipped_unsupported.push(*unsupported);
        }
        for (k, n) in &part.skipped_by_reason {
            *self.skipped_by_reason.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &part.excluded_by_reason {
            *self.excluded_by_reason.entry(k.clone()).or_default() += n;
        }
        for ((s, r), n) in &part.withdrawn_by_source {
            *self
                .withdrawn_by_source
                .entry((map_source(*s), *r))
                .or_default() += n;
        }
        self.unsupported_total += part.unsupported_total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_form_is_kept_when_it_differs_and_the_first_wins() {
        let mut store = IntelStore::new(StoreOptions::default());
        let meta = store
            .meta_id(Meta {
                to_ids: true,
                ..Meta::default()
            })
            .expect("an included meta");
        let url = store
            .add_typed(Kind::Url, " hxxp://Evil[.]example/x ", meta, String::new)
            .expect("a URL");
        store.add_typed(Kind::Url, "https://evil.example/x", meta, String::new);
        assert_eq!(store.value(url), "evil.example/x");
        assert_eq!(store.written(url), "hxxp://Evil[.]example/x");
        let ip = store
            .add_typed(Kind::Ipv4, "192.0.2.1", meta, String::new)
            .expect("an address");
        assert_eq!(store.written(ip), "192.0.2.1");
        assert!(
            !store.written.contains_key(&ip),
            "canonical text is not kept twice"
        );
    }
}
