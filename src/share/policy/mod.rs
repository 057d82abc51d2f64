//! Sharing policy: which destination gets a sighting of which confirmation, if any.
//!
//! Configuration (`[share]` in TOML, every key optional but `destinations[].name` and
//! `destinations[].transport`):
//!
//! ```toml
//! [share]
//! source_name = "ACME SOC"            # default "tripline"
//! victim_types = ["target-*", "email-dst"]  # never sighted (the default)
//! victim_categories = ["Targeting data"]    # never sighted (the default)
//! own_domains = ["acme.example"]      # our own: never sighted (default none)
//! own_networks = ["192.0.2.0/24"]     # our own: never sighted (default none)
//! tlp_map = { "tlp:ex:chr" = "red" }  # other tlp:* tags are not shareable
//!
//! [[share.destinations]]
//! name = "circl"                      # also the default intel source it serves
//! intel_sources = ["circl-osint"]     # default [name]; a list loaded as NAME=PATH is source NAME
//! list_event_uuids = []               # MISP: events list-intel sightings are restricted to
//! window_secs = 3600                  # one sighting per indicator per window
//! max_tlp = "amber+strict"            # default: nothing from tlp:red leaves
//! default_tlp = "amber"               # TLP of intel without a tlp:* tag
//! share_organisation_only = false     # MISP distribution 0 stays local
//! share_sharing_group = false         # MISP distribution 4 stays local
//! anonymise = false                   # true: no source name, no STIX identity
//! anonymise_granularity_secs = 3600   # when anonymised: times rounded down
//! count_buckets = []                  # when anonymised: e.g. [1, 10, 100]
//! approval = "manual"                 # or "auto"
//! retry_initial_secs = 30             # exponential backoff ...
//! retry_max_secs = 3600               # ... capped here
//! timeout_secs = 30                   # per HTTP request
//! [share.destinations.transport]
//! type = "misp"                       # or "taxii", "stix_dir"
//! url = "https://misp.example.org"
//! api_key_env = "CIRCL_MISP_KEY"      # or api_key_file = "/etc/tripline/circl.key"
//! # ca_file = "/etc/tripline/circl-ca.pem"  # trust this CA instead of the public roots
//! ```
//!
//! TAXII: `type = "taxii"`, `api_root`, `collection_id`, optional `username` with
//! `password_env` or `password_file`, optional `ca_file`. STIX bundles in a directory:
//! `type = "stix_dir"`, `path`.
//!
//! Routing invariants:
//! - a sighting goes back only to a destination that serves the intel source
//!   ([`crate::correlate::Provenance::source`]) that supplied the indicator, never to
//!   another community;
//! - victim data ([`super::victim`]) never leaves;
//! - the provenance's TLP, the most restrictive of its attribute's and its event's
//!   tags (or the destination's `default_tlp` when untagged), must not exceed
//!   `max_tlp`; TLP 2.0 names, `white` reads as `clear`; another `tlp:*` tag is not
//!   shareable unless `tlp_map` names its level;
//! - MISP distribution, resolved through inheritance (an attribute's 5 is its event's,
//!   see `correlate::observe::resolve_distribution`): 0 is kept local unless
//!   `share_organisation_only`, 4 unless `share_sharing_group`, an unresolved 5 always;
//! - all of this is asked again just before delivery, with the configuration and
//!   intel of that moment ([`Router::recheck`], [`Router::outgoing`]);
//! - no positive sighting of an indicator whose intel has expired or decayed below
//!   its MISP decay threshold by now, or that is warninglisted (flag mode), when it
//!   is queued ([`Router::route_checked`]) nor when it is sent (`outbox::recheck`);
//! - a MISP destination gets a sighting by attribute UUID, or by value restricted to
//!   the supplying events' UUIDs; intel with neither (a plain or CSV list) by value
//!   restricted to the destination's `list_event_uuids`; with none of these known,
//!   none (it could touch another community's attribute): withheld as `no_target`;
//! - a STIX destination (TAXII, directory) gets a sighting of the attribute's or
//!   indicator's id when the intel has one, else by value: the sighting carries an
//!   `indicator` whose pattern holds the value (`render::stix`); a kind with no STIX
//!   pattern (a free literal) is withheld as `no_target`.
//!
//! List intel reaches a community this way: `--intel circl-list=lists/circl.txt` (or
//! `intel.paths = ["circl-list=lists/circl.txt"]`) loads the list as source
//! `circl-list`, and the destination that names it in `intel_sources` gets its
//! sightings.
//!
//! Cost: routing one confirmation is O(observations × provenances × destinations),
//! all small; no allocation beyond the sightings produced.

mod config;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, TimeZone, Utc};

use config::serves;
pub use config::*;

use crate::correlate::{Confirmation, Provenance};
use crate::intel::{Kind, Tlp};

use super::sighting::{Sighting, Target};

/// Why a provenance produced no sighting for a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// No destination serves the intel source.
    NoDestination,
    /// TLP above the destination's ceiling.
    Tlp,
    /// A `tlp:*` tag that is not TLP 2.0 and not in `tlp_map`.
    UnknownTlp,
    /// MISP distribution 0 (organisation only), after inheritance (an attribute's 5
    /// is its event's distribution); also an inherited distribution with no event.
    Distribution,
    /// MISP distribution 4 (a sharing group) and `share_sharing_group` is off.
    SharingGroup,
    /// Victim data: a victim type or category, or one of our own domains or networks.
    VictimData,
    /// Nothing to attach the sighting to: a MISP destination and neither an attribute
    /// nor an event UUID to restrict it to (list intel without `list_event_uuids`), or
    /// a STIX destination and a value with no STIX pattern.
    NoTarget,
    /// Asked again before delivery: the current intel no longer holds the indicator
    /// from the source, event and attribute it was queued for.
    Withdrawn,
    /// The indicator was reported as a false positive (the local suppression list,
    /// [`super::suppress`]): no positive sighting of it leaves.
    Suppressed,
    /// The intel it was queued for has expired or decayed below its MISP decay
    /// threshold by now ([`crate::intel::expiry`]): a positive sighting would revive
    /// stale intel at its community.
    Decayed,
    /// The indicator is on a warninglist (kept and marked under
    /// `warninglist_mode = "flag"`): no positive sighting of it leaves.
    Warninglisted,
}

impl DropReason {
    pub const ALL: [DropReason; 11] = [
        DropReason::NoDestination,
        DropReason::Tlp,
        DropReason::UnknownTlp,
        DropReason::Distribution,
        DropReason::SharingGroup,
        DropReason::VictimData,
        DropReason::NoTarget,
        DropReason::Withdrawn,
        DropReason::Suppressed,
        DropReason::Decayed,
        DropReason::Warninglisted,
    ];

    /// Metrics label.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::NoDestination => "no_destination",
            DropReason::Tlp => "tlp",
            DropReason::UnknownTlp => "unknown_tlp",
            DropReason::Distribution => "distribution",
            DropReason::SharingGroup => "sharing_group",
            DropReason::VictimData => "victim_data",
            DropReason::NoTarget => "no_target",
            DropReason::Withdrawn => "withdrawn",
            DropReason::Suppressed => "suppressed",
            DropReason::Decayed => "decayed",
            DropReason::Warninglisted => "warninglisted",
        }
    }
}

/// For people: why a sighting was not created, as a sentence fragment.
impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::NoDestination => "no destination is configured for its intel source",
            DropReason::Tlp => "its TLP is above the destination's max_tlp",
            DropReason::UnknownTlp => {
                "it has a tlp:* tag that is not TLP 2.0 and not mapped in [share].tlp_map"
            }
            DropReason::Distribution => {
                "its MISP distribution (inherited from the event when the attribute says 5) \
                 is organisation only (share_organisation_only is off)"
            }
            DropReason::SharingGroup => {
                "its MISP distribution is a sharing group (share_sharing_group is off)"
            }
            DropReason::VictimData => {
                "it is victim data (a victim type or category, or our own domain or network)"
            }
            DropReason::NoTarget => {
                "nothing to attach it to: the intel names no attribute or event (a list; \
                 set list_event_uuids for a MISP destination), or STIX has no pattern for \
                 the value"
            }
            DropReason::Withdrawn => {
                "the current intel no longer holds it from the source it was queued for"
            }
            DropReason::Suppressed => {
                "it was reported as a false positive (tripline feedback list)"
            }
            DropReason::Decayed => "its intel has expired or decayed below its threshold by now",
            DropReason::Warninglisted => "it is on a warninglist",
        })
    }
}

/// A sighting of one observation for one destination (count 1, not yet aggregated).
#[derive(Clone, Debug, PartialEq)]
pub struct Routed {
    /// Index into [`ShareConfig::destinations`].
    pub destination: usize,
    /// Index into the confirmation's observations (for de-duplication).
    pub observation: usize,
    pub sighting: Sighting,
    /// The provenances that allowed it: kept with the row, so that the policy can be
    /// asked again before delivery ([`Router::recheck`]).
    pub provenances: Vec<Provenance>,
}

/// What routing one confirmation produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Routing {
    pub routed: Vec<Routed>,
    /// `(destination name, or None for NoDestination; reason)`, one per provenance
    /// (and destination) left out.
    pub dropped: Vec<(Option<String>, DropReason)>,
}

/// Applies [`ShareConfig`] to confirmations. Built once; cheap to share.
#[derive(Clone, Debug)]
pub struct Router {
    config: ShareConfig,
    /// False positives reported here: their positive sightings are dropped.
    suppressions: Option<std::sync::Arc<super::SuppressionList>>,
}

impl Router {
    pub fn new(config: &ShareConfig) -> Result<Router, ShareConfigError> {
        config.validate()?;
        Ok(Router {
            config: config.clone(),
            suppressions: None,
        })
    }

    /// Drops positive sightings of the indicators on `list` ([`DropReason::Suppressed`]).
    pub fn with_suppressions(mut self, list: std::sync::Arc<super::SuppressionList>) -> Router {
        self.suppressions = Some(list);
        self
    }

    /// Whether `indicator` was reported as a false positive (no positive sighting).
    pub fn suppressed(&self, indicator: &str, kind: Kind) -> bool {
        self.suppressions
            .as_ref()
            .is_some_and(|l| l.get(indicator, kind).is_some())
    }

    pub fn config(&self) -> &ShareConfig {
        &self.config
    }

    /// Our source name for a destination, `None` when it anonymises.
    pub fn source_for(&self, destination: &DestinationConfig) -> Option<String> {
        if destination.anonymise {
            None
        } else {
            Some(
                destination
                    .source_name
                    .clone()
                    .unwrap_or_else(|| self.config.source_name.clone()),
            )
        }
    }

    /// Sightings of every observation of `confirmation`, one per (observation,
    /// destination, target) that policy allows.
    pub fn route(&self, confirmation: &Confirmation) -> Routing {
        self.route_checked(confirmation, |_, _, _| None)
    }

    /// [`Router::route`], asking `lapsed` first whether an observed indicator's intel
    /// has expired or decayed by now, or is warninglisted (the sidecar's live index:
    /// [`crate::share::outbox::IntelView::lapsed`]); such an observation gives no
    /// positive sighting ([`DropReason::Decayed`], [`DropReason::Warninglisted`]).
    pub fn route_checked(
        &self,
        confirmation: &Confirmation,
        lapsed: impl Fn(&str, Kind, &[Provenance]) -> Option<DropReason>,
    ) -> Routing {
        let mut out = Routing::default();
        for (i, obs) in confirmation.observations.iter().enumerate() {
            if self.suppressed(&obs.indicator, obs.kind) {
                out.dropped.push((None, DropReason::Suppressed));
                continue;
            }
            if let Some(reason) = lapsed(&obs.indicator, obs.kind, &obs.provenance) {
                out.dropped.push((None, reason));
                continue;
            }
            self.route_provenances(
                i,
                (&obs.indicator, obs.kind),
                &obs.provenance,
                &mut out,
                |target, src, dest| Sighting::from_observation(obs, target, src, dest),
            );
        }
        out
    }

    /// The destinations and targets that `provenances` allow for one observation of
    /// `indicator` (canonical value and kind); `make` builds each sighting from its
    /// target, our source name and destination.
    pub(crate) fn route_provenances(
        &self,
        observation: usize,
        indicator: (&str, Kind),
        provenances: &[Provenance],
        out: &mut Routing,
        make: impl Fn(Target, Option<&str>, &str) -> Sighting,
    ) {
        for p in provenances {
            if !self
                .config
                .destinations
                .iter()
                .any(|d| serves(d, &p.source))
            {
                out.dropped.push((None, DropReason::NoDestination));
            }
        }
        for (di, dest) in self.config.destinations.iter().enumerate() {
            let mut attrs: BTreeSet<String> = BTreeSet::new();
            let mut events: BTreeSet<String> = BTreeSet::new();
            let mut bare = false;
            let mut any = false;
            let mut allowed: Vec<Provenance> = Vec::new();
            let is_misp = matches!(dest.transport, TransportConfig::Misp { .. });
            for p in provenances.iter().filter(|p| serves(dest, &p.source)) {
                if let Some(reason) = self.refuse(dest, p, indicator) {
                    out.dropped.push((Some(dest.name.clone()), reason));
                    continue;
                }
                any = true;
                allowed.push(p.clone());
                match (&p.attribute_uuid, &p.event_uuid) {
                    (Some(a), _) if !a.trim().is_empty() => {
                        attrs.insert(target_id(a, is_misp));
                    }
                    (_, Some(e)) if !e.trim().is_empty() => {
                        events.insert(target_id(e, is_misp));
                    }
                    _ => bare = true,
                }
            }
            if !any {
                continue;
            }
            if bare && is_misp {
                // List intel: the community's events named in the configuration.
                events.extend(
                    dest.list_event_uuids
                        .iter()
                        .map(|e| target_id(e, true))
                        .filter(|e| !e.is_empty()),
                );
            }
            let source = self.source_for(dest);
            let mut targets: Vec<Target> = attrs.into_iter().map(Target::Attribute).collect();
            let value_form = is_misp || crate::share::render::stix::has_value_form(indicator.1);
            if value_form && (!events.is_empty() || (bare && !is_misp)) {
                targets.push(Target::Value {
                    event_uuids: events.into_iter().collect(),
                });
            } else if (bare || !events.is_empty()) && targets.is_empty() {
                out.dropped
                    .push((Some(dest.name.clone()), DropReason::NoTarget));
            }
            for target in targets {
                out.routed.push(Routed {
                    destination: di,
                    observation,
                    sighting: make(target, source.as_deref(), &dest.name),
                    provenances: allowed.clone(),
                });
            }
        }
    }
}

impl Router {
    /// The policy reason this provenance of `indicator` may not go back to `dest`, if
    /// any. In order: victim data (never shared, whatever else is configured), TLP
    /// (the most restrictive of the attribute's and the event's), distribution
    /// (resolved through inheritance).
    pub fn refuse(
        &self,
        dest: &DestinationConfig,
        p: &Provenance,
        indicator: (&str, Kind),
    ) -> Option<DropReason> {
        if super::victim::is_victim(&self.config, indicator.0, indicator.1, p) {
            return Some(DropReason::VictimData);
        }
        let tlp = match resolve_tlp(p, &self.config.tlp_map) {
            Ok(t) => t.unwrap_or(dest.default_tlp),
            Err(_) => return Some(DropReason::UnknownTlp),
        };
        if tlp > dest.max_tlp {
            return Some(DropReason::Tlp);
        }
        match p.distribution {
            Some(0) if !dest.share_organisation_only => Some(DropReason::Distribution),
            Some(4) if !dest.share_sharing_group => Some(DropReason::SharingGroup),
            // 5 ("inherit the event's") that could not be resolved, or a value MISP
            // does not define: unknown, so treated as the strictest.
            Some(d) if d >= 5 => Some(DropReason::Distribution),
            _ => None,
        }
    }
}

impl Router {
    /// Asks the policy again, just before delivery, with the current configuration:
    /// may a sighting of `indicator` pointing at `target` still go to `dest`, given
    /// the provenances that allowed it when it was queued (as the current intel now
    /// has them)? Returns the target to use (a by-value target keeps only the events
    /// still allowed) or the reason it is withheld.
    pub fn recheck(
        &self,
        dest: &DestinationConfig,
        indicator: (&str, Kind),
        target: &Target,
        provenances: &[Provenance],
    ) -> Result<Target, DropReason> {
        let is_misp = matches!(dest.transport, TransportConfig::Misp { .. });
        let mut reason = DropReason::NoDestination;
        let mut allowed: Vec<&Provenance> = Vec::new();
        for p in provenances {
            if !serves(dest, &p.source) {
                continue;
            }
            match self.refuse(dest, p, indicator) {
                Some(r) => reason = r,
                None => allowed.push(p),
            }
        }
        match target {
            Target::Attribute(a) => {
                let still = allowed.iter().any(|p| {
                    p.attribute_uuid
                        .as_deref()
                        .is_some_and(|x| target_id(x, is_misp) == *a)
                });
                if still {
                    Ok(target.clone())
                } else {
                    Err(reason)
                }
            }
            Target::Value { event_uuids } if event_uuids.is_empty() => {
                if is_misp {
                    // Unrestricted, it would touch every community's attribute.
                    Err(DropReason::NoTarget)
                } else if allowed.is_empty() {
                    Err(reason)
                } else {
                    Ok(target.clone())
                }
            }
            Target::Value { event_uuids } => {
                // List intel (no attribute, no event) may use the configured events.
                let bare = allowed.iter().any(|p| {
                    p.attribute_uuid
                        .as_deref()
                        .is_none_or(|a| a.trim().is_empty())
                        && p.event_uuid.as_deref().is_none_or(|e| e.trim().is_empty())
                });
                let kept: Vec<String> = event_uuids
                    .iter()
                    .filter(|e| {
                        (bare
                            && is_misp
                            && dest
                                .list_event_uuids
                                .iter()
                                .any(|x| target_id(x, true) == **e))
                            || allowed.iter().any(|p| {
                                p.event_uuid
                                    .as_deref()
                                    .is_some_and(|x| target_id(x, is_misp) == **e)
                            })
                    })
                    .cloned()
                    .collect();
                if kept.is_empty() {
                    Err(reason)
                } else {
                    Ok(Target::Value { event_uuids: kept })
                }
            }
        }
    }

    /// The sighting as it leaves for `dest` under the current configuration: our
    /// source name now (none when anonymised), and when anonymised every time rounded
    /// down to `anonymise_granularity_secs` and the count bucketed (`count_buckets`).
    /// `created` (STIX `created`/`modified`) is rounded the same way.
    pub fn outgoing(
        &self,
        dest: &DestinationConfig,
        s: &Sighting,
        target: Target,
        created: DateTime<Utc>,
    ) -> (Sighting, DateTime<Utc>) {
        let source = self.source_for(dest);
        let (first, last, count, created) = if dest.anonymise {
            let g = dest.anonymise_granularity_secs;
            (
                round_down(s.first_seen, g),
                round_down(s.last_seen, g),
                bucket(s.count, &dest.count_buckets),
                round_down(created, g),
            )
        } else {
            (s.first_seen, s.last_seen, s.count, created)
        };
        let out = Sighting::new(
            &s.indicator,
            s.kind,
            target,
            s.sighting_type,
            count,
            first,
            last,
            source.as_deref(),
            &s.destination,
        );
        (out, created)
    }
}

/// `t` rounded down to a multiple of `granularity_secs` since the epoch (whole
/// seconds: the milliseconds go too).
pub fn round_down(t: DateTime<Utc>, granularity_secs: u64) -> DateTime<Utc> {
    let g = i64::try_from(granularity_secs.max(1)).unwrap_or(i64::MAX);
    let secs = t.timestamp().div_euclid(g) * g;
    Utc.timestamp_opt(secs, 0).single().unwrap_or(t)
}

/// The largest bucket bound not above `count` (the smallest bound when all are above);
/// `count` itself when there are no buckets.
pub fn bucket(count: u64, buckets: &[u64]) -> u64 {
    let below = buckets.iter().copied().filter(|b| *b <= count).max();
    below
        .or_else(|| buckets.iter().copied().min())
        .unwrap_or(count)
        .max(1)
}

/// The TLP of a provenance: the most restrictive of its own level (attribute and event
/// together) and of every `tlp:*` tag on the attribute or the event. `Err(tag)` for a
/// `tlp:*` tag that is neither TLP 2.0 nor in `tlp_map`: not shareable.
pub fn resolve_tlp(p: &Provenance, tlp_map: &BTreeMap<String, Tlp>) -> Result<Option<Tlp>, String> {
    let mut level = p.tlp;
    for tag in &p.tags {
        let lower = tag.trim().to_ascii_lowercase();
        if !lower.starts_with("tlp:") {
            continue;
        }
        let t = match Tlp::from_tag(&lower) {
            Some(t) => t,
            None => match tlp_map.get(lower.trim_matches('"')) {
                Some(t) => *t,
                None => return Err(tag.clone()),
            },
        };
        level = level.max(Some(t));
    }
    Ok(level)
}

/// MISP wants bare UUIDs; an id the STIX loader kept as `indicator--<uuid>` (MISP's
/// own STIX export names attributes so) is stripped for MISP destinations.
fn target_id(id: &str, misp: bool) -> String {
    let id = id.trim();
    if misp {
        if let Some((_, uuid)) = id.split_once("--") {
            return uuid.to_string();
        }
    }
    id.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prov(tags: &[&str], tlp: Option<Tlp>, distribution: Option<u8>) -> Provenance {
        Provenance {
            source: "circl".into(),
            event_uuid: Some("e1".into()),
            attribute_uuid: Some("a1".into()),
            source_type: "domain".into(),
            category: Some("Network activity".into()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            tlp,
            distribution,
        }
    }

    fn router(toml_text: &str) -> Router {
        let config: ShareConfig = toml::from_str(toml_text).expect("a [share] table");
        Router::new(&config).expect("a valid config")
    }

    const ONE: &str = "[[destinations]]\nname = \"circl\"\nmax_tlp = \"amber\"\n\
                       [destinations.transport]\ntype = \"stix_dir\"\npath = \"x\"\n";

    #[test]
    fn policy_table() {
        let r = router(ONE);
        let d = &r.config().destinations[0];
        let ind = ("evil.example", Kind::Domain);
        for (p, want) in [
            (prov(&[], None, Some(3)), None),
            (prov(&[], None, Some(0)), Some(DropReason::Distribution)),
            (prov(&[], None, Some(5)), Some(DropReason::Distribution)),
            (prov(&[], None, Some(4)), Some(DropReason::SharingGroup)),
            (prov(&[], None, None), None),
            (
                prov(&["tlp:clear", "tlp:red"], None, Some(3)),
                Some(DropReason::Tlp),
            ),
            (
                prov(&["tlp:clear"], Some(Tlp::Red), Some(3)),
                Some(DropReason::Tlp),
            ),
            (prov(&["tlp:green"], None, Some(3)), None),
            (
                prov(&["tlp:ex:chr"], None, Some(3)),
                Some(DropReason::UnknownTlp),
            ),
            (
                prov(&["TLP:Unclear", "tlp:green"], None, Some(3)),
                Some(DropReason::UnknownTlp),
            ),
        ] {
            assert_eq!(r.refuse(d, &p, ind), want, "{p:?}");
        }
        let mut victim = prov(&[], None, Some(3));
        victim.source_type = "target-email".into();
        assert_eq!(
            r.refuse(d, &victim, ("jane.doe@x.example", Kind::Email)),
            Some(DropReason::VictimData)
        );
    }

    #[test]
    fn mapped_tlp_tags_take_their_level() {
        let r = router(&format!(
            "tlp_map = {{ \"tlp:ex:chr\" = \"green\" }}\n{ONE}"
        ));
        let d = &r.config().destinations[0];
        let p = prov(&["TLP:EX:CHR"], None, Some(3));
        assert_eq!(r.refuse(d, &p, ("evil.example", Kind::Domain)), None);
        let r = router(&format!("tlp_map = {{ \"tlp:ex:chr\" = \"red\" }}\n{ONE}"));
        let d = &r.config().destinations[0];
        assert_eq!(
            r.refuse(d, &p, ("evil.example", Kind::Domain)),
            Some(DropReason::Tlp)
        );
        let bad: Result<ShareConfig, _> = toml::from_str("tlp_map = { \"tlp:x\" = \"purple\" }");
        assert!(bad.is_err());
    }

    #[test]
    fn times_round_down_and_counts_bucket() {
        let t = |ms: i64| Utc.timestamp_millis_opt(ms).single().expect("a time");
        // 2024-05-01T10:37:12.123Z
        let at = t(1_714_559_832_123);
        assert_eq!(round_down(at, 3600), t(1_714_557_600_000));
        assert_eq!(round_down(at, 60), t(1_714_559_820_000));
        assert_eq!(round_down(at, 1), t(1_714_559_832_000));
        assert_eq!(round_down(at, 0), t(1_714_559_832_000));
        assert_eq!(round_down(t(-1_500), 1), t(-2_000));
        for (count, buckets, want) in [
            (57, &[1, 10, 100][..], 10),
            (100, &[1, 10, 100][..], 100),
            (1, &[1, 10, 100][..], 1),
            (3, &[10, 100][..], 10),
            (57, &[][..], 57),
            (5_000, &[100, 10][..], 100),
        ] {
            assert_eq!(bucket(count, buckets), want, "{count} in {buckets:?}");
        }
    }

    #[test]
    fn target_ids_for_misp_are_bare_uuids() {
        let u = "8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f";
        assert_eq!(target_id(&format!("indicator--{u}"), true), u);
        assert_eq!(
            target_id(&format!("indicator--{u}"), false),
            format!("indicator--{u}")
        );
        assert_eq!(target_id(u, true), u);
    }

    #[test]
    fn list_intel_routes_by_value_or_is_withheld() {
        let list = Provenance {
            event_uuid: None,
            attribute_uuid: None,
            source: "lists".into(),
            ..prov(&[], None, None)
        };
        let route = |toml_text: &str, kind: Kind| {
            let r = router(toml_text);
            let mut out = Routing::default();
            r.route_provenances(
                0,
                ("evil.example", kind),
                std::slice::from_ref(&list),
                &mut out,
                |t, s, d| {
                    Sighting::new(
                        "evil.example",
                        kind,
                        t,
                        crate::share::SightingType::Sighting,
                        1,
                        Utc::now(),
                        Utc::now(),
                        s,
                        d,
                    )
                },
            );
            (
                out.routed
                    .iter()
                    .map(|r| r.sighting.target.clone())
                    .collect::<Vec<_>>(),
                out.dropped,
            )
        };
        let stix = "[[destinations]]\nname = \"c\"\nintel_sources = [\"lists\"]\n\
                    [destinations.transport]\ntype = \"stix_dir\"\npath = \"x\"\n";
        let (t, d) = route(stix, Kind::Domain);
        assert_eq!(
            t,
            [Target::Value {
                event_uuids: vec![]
            }]
        );
        assert!(d.is_empty());
        let (t, d) = route(stix, Kind::Literal);
        assert!(t.is_empty());
        assert_eq!(d, [(Some("c".to_string()), DropReason::NoTarget)]);
        let misp = "[[destinations]]\nname = \"c\"\nintel_sources = [\"lists\"]\n\
                    [destinations.transport]\ntype = \"misp\"\nurl = \"https://m.example\"\n\
                    api_key_env = \"K\"\n";
        let (t, d) = route(misp, Kind::Domain);
        assert!(t.is_empty());
        assert_eq!(d, [(Some("c".to_string()), DropReason::NoTarget)]);
        let with_events = misp.replace(
            "intel_sources",
            "list_event_uuids = [\"e9\"]\nintel_sources",
        );
        let (t, d) = route(&with_events, Kind::Domain);
        assert_eq!(
            t,
            [Target::Value {
                event_uuids: vec!["e9".into()]
            }]
        );
        assert!(d.is_empty());
        // A MISP row by value with no event (queued by an older release): withheld.
        let r = router(misp);
        assert_eq!(
            r.recheck(
                &r.config().destinations[0],
                ("evil.example", Kind::Domain),
                &Target::Value {
                    event_uuids: vec![]
                },
                std::slice::from_ref(&list)
            ),
            Err(DropReason::NoTarget)
        );
        // Asked again before delivery: still allowed.
        let r = router(&with_events);
        let dest = &r.config().destinations[0];
        assert_eq!(
            r.recheck(
                dest,
                ("evil.example", Kind::Domain),
                &t[0],
                std::slice::from_ref(&list)
            ),
            Ok(t[0].clone())
        );
    }
}
