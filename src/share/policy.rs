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
//! intel_sources = ["circl-osint"]     # default [name]
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
//! - a MISP destination gets a sighting by attribute UUID, or by value restricted to
//!   the supplying events' UUIDs; with neither known, none (it could touch another
//!   community's attribute).
//!
//! Cost: routing one confirmation is O(observations × provenances × destinations),
//! all small; no allocation beyond the sightings produced.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::correlate::{Confirmation, Provenance};
use crate::intel::{Kind, Tlp};

use super::sighting::{Sighting, Target};

/// `[share]`: our name and where sightings go.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ShareConfig {
    /// Our name in sightings: MISP `source`, STIX identity name. Default `tripline`.
    pub source_name: String,
    /// MISP attribute types that are victim data and never shared: exact names, or a
    /// prefix ending in `*`. Default `["target-*", "email-dst"]`.
    pub victim_types: Vec<String>,
    /// MISP categories that are victim data. Default `["Targeting data"]`.
    pub victim_categories: Vec<String>,
    /// Our own domains: an indicator in one of them (the domain, a subdomain, an
    /// e-mail address or URL there) is victim data. Default none.
    pub own_domains: Vec<String>,
    /// Our own networks (CIDR or address): an address inside is victim data.
    #[serde(deserialize_with = "de_networks")]
    pub own_networks: Vec<IpNet>,
    /// Levels for `tlp:*` tags that are not TLP 2.0 (`"tlp:ex:chr" = "red"`). Any other
    /// unknown `tlp:*` tag makes the indicator not shareable.
    #[serde(deserialize_with = "de_tlp_map")]
    pub tlp_map: BTreeMap<String, Tlp>,
    pub destinations: Vec<DestinationConfig>,
}

impl Default for ShareConfig {
    fn default() -> Self {
        ShareConfig {
            source_name: "tripline".to_string(),
            victim_types: vec!["target-*".to_string(), "email-dst".to_string()],
            victim_categories: vec!["Targeting data".to_string()],
            own_domains: Vec::new(),
            own_networks: Vec::new(),
            tlp_map: BTreeMap::new(),
            destinations: Vec::new(),
        }
    }
}

/// Approval before a sighting leaves.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Queued for delivery at once.
    Auto,
    /// Held as `pending_approval` until `tripline sightings approve` (the default: a
    /// sighting cannot be taken back once sent).
    #[default]
    Manual,
}

/// One community to give back to.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    pub name: String,
    /// Intel source names (as loaded) this destination gives back to. Default: `[name]`.
    #[serde(default)]
    pub intel_sources: Vec<String>,
    /// Aggregation window: one sighting per indicator per window, in seconds.
    /// Default 3600; range 1 ..= 2592000 (30 days, [`WINDOW_SECS`]).
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
    /// Highest TLP that may go back. Default `amber+strict`: nothing `red` leaves.
    #[serde(default = "default_max_tlp", deserialize_with = "de_tlp")]
    pub max_tlp: Tlp,
    /// The TLP of intel without a `tlp:*` tag. Default `amber`.
    #[serde(default = "default_default_tlp", deserialize_with = "de_tlp")]
    pub default_tlp: Tlp,
    /// Share indicators whose MISP distribution is 0 (organisation only). Default false.
    #[serde(default)]
    pub share_organisation_only: bool,
    /// Share indicators whose MISP distribution is 4 (a sharing group). Default false:
    /// tripline cannot tell who is in the group, so it is treated as organisation only.
    #[serde(default)]
    pub share_sharing_group: bool,
    /// Leave our name out (no MISP `source`, no STIX identity) and round times down to
    /// `anonymise_granularity_secs`. Default false.
    #[serde(default)]
    pub anonymise: bool,
    /// When anonymised: every time sent is rounded down to a multiple of this many
    /// seconds. Default 3600; range 1 ..= 86400 ([`ANONYMISE_GRANULARITY_SECS`]).
    #[serde(default = "default_anonymise_granularity_secs")]
    pub anonymise_granularity_secs: u64,
    /// When anonymised and not empty: counts are reported as the largest of these
    /// bounds not above the count (`[1, 10, 100]`: 57 is sent as 10). Default empty
    /// (exact counts). Each bound in 1 ..= 1000000000 ([`COUNT_BUCKET`]).
    #[serde(default)]
    pub count_buckets: Vec<u64>,
    /// Our name for this destination. Default: `[share].source_name`.
    #[serde(default)]
    pub source_name: Option<String>,
    #[serde(default)]
    pub approval: Approval,
    /// First retry delay in seconds; doubles per failed attempt. Default 30; range
    /// 1 ..= 86400 (a day, [`RETRY_INITIAL_SECS`]).
    #[serde(default = "default_retry_initial_secs")]
    pub retry_initial_secs: u64,
    /// Backoff cap in seconds. Default 3600; range 1 ..= 604800 (a week,
    /// [`RETRY_MAX_SECS`]), and at least `retry_initial_secs`.
    #[serde(default = "default_retry_max_secs")]
    pub retry_max_secs: u64,
    /// Per-request timeout (connect and whole request) in seconds. Default 30; range
    /// 1 ..= 3600 ([`TIMEOUT_SECS`]).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    pub transport: TransportConfig,
}

/// How sightings reach a destination.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransportConfig {
    /// MISP REST API: `POST {url}/sightings/add`.
    Misp {
        /// Base URL; `https://` (plain `http://` only on loopback).
        url: String,
        /// Environment variable holding the API key.
        #[serde(default)]
        api_key_env: Option<String>,
        /// File holding the API key (trimmed).
        #[serde(default)]
        api_key_file: Option<PathBuf>,
        /// PEM CA certificates to trust instead of the public roots (an internal CA).
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
    /// TAXII 2.1: `POST {api_root}/collections/{collection_id}/objects/`.
    Taxii {
        api_root: String,
        collection_id: String,
        /// Basic auth user (optional).
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password_env: Option<String>,
        #[serde(default)]
        password_file: Option<PathBuf>,
        /// PEM CA certificates to trust instead of the public roots.
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
    /// One STIX 2.1 bundle file per sighting in this directory.
    StixDir { path: PathBuf },
}

impl TransportConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            TransportConfig::Misp { .. } => "misp",
            TransportConfig::Taxii { .. } => "taxii",
            TransportConfig::StixDir { .. } => "stix_dir",
        }
    }
}

/// `window_secs`: 1 second to 30 days.
pub const WINDOW_SECS: RangeInclusive<u64> = 1..=2_592_000;
/// `anonymise_granularity_secs`: 1 second to a day.
pub const ANONYMISE_GRANULARITY_SECS: RangeInclusive<u64> = 1..=86_400;
/// `count_buckets[]`: 1 to a billion (STIX's `count` limit is 999999999).
pub const COUNT_BUCKET: RangeInclusive<u64> = 1..=999_999_999;
/// `retry_initial_secs`: 1 second to a day.
pub const RETRY_INITIAL_SECS: RangeInclusive<u64> = 1..=86_400;
/// `retry_max_secs`: 1 second to a week (and at least `retry_initial_secs`).
pub const RETRY_MAX_SECS: RangeInclusive<u64> = 1..=604_800;
/// `timeout_secs`: 1 second to an hour. The outbox leases a row for three timeouts
/// plus a minute, so this keeps every time computed from it far from overflowing.
pub const TIMEOUT_SECS: RangeInclusive<u64> = 1..=3_600;

fn default_window_secs() -> u64 {
    3600
}
fn default_max_tlp() -> Tlp {
    Tlp::AmberStrict
}
fn default_default_tlp() -> Tlp {
    Tlp::Amber
}
fn default_anonymise_granularity_secs() -> u64 {
    3600
}
fn default_retry_initial_secs() -> u64 {
    30
}
fn default_retry_max_secs() -> u64 {
    3600
}
fn default_timeout_secs() -> u64 {
    30
}

/// A TLP 2.0 name (`clear`, `white`, `green`, `amber`, `amber+strict`, `red`), with or
/// without the `tlp:` prefix, any case.
pub fn parse_tlp(name: &str) -> Option<Tlp> {
    let n = name.trim();
    if n.to_ascii_lowercase().starts_with("tlp:") {
        Tlp::from_tag(n)
    } else {
        Tlp::from_tag(&format!("tlp:{n}"))
    }
}

fn de_networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    list.iter()
        .map(|s| {
            let t = s.trim();
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{s:?} is not a network (expected an address or CIDR, 192.0.2.0/24)"
                    ))
                })
        })
        .collect()
}

fn de_tlp_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Tlp>, D::Error> {
    let raw = BTreeMap::<String, String>::deserialize(d)?;
    raw.into_iter()
        .map(|(tag, level)| {
            let key = tag.trim().to_ascii_lowercase();
            if !key.starts_with("tlp:") {
                return Err(serde::de::Error::custom(format!(
                    "tlp_map key {tag:?} is not a tlp:* tag"
                )));
            }
            let tlp = parse_tlp(&level).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "tlp_map[{tag:?}]: unknown TLP {level:?} (expected clear, green, amber, \
                     amber+strict or red)"
                ))
            })?;
            Ok((key, tlp))
        })
        .collect()
}

fn de_tlp<'de, D: Deserializer<'de>>(d: D) -> Result<Tlp, D::Error> {
    let s = String::deserialize(d)?;
    parse_tlp(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown TLP {s:?} (expected clear, white, green, amber, amber+strict or red)"
        ))
    })
}

/// A configuration that parsed but cannot be used, naming the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShareConfigError {
    #[error("share.destinations[{index}] (\"{name}\"): {key}: {reason}")]
    Destination {
        index: usize,
        name: String,
        key: &'static str,
        reason: String,
    },
    #[error("share.source_name: must not be empty")]
    EmptySourceName,
    #[error("share.{key}: {reason}")]
    Key { key: &'static str, reason: String },
}

impl ShareConfigError {
    /// The full key at fault, as written in a `tripline run` configuration:
    /// `share.destinations[0].timeout_secs`.
    pub fn key(&self) -> String {
        match self {
            ShareConfigError::Destination { index, key, .. } => {
                format!("share.destinations[{index}].{key}")
            }
            ShareConfigError::EmptySourceName => "share.source_name".to_string(),
            ShareConfigError::Key { key, .. } => format!("share.{key}"),
        }
    }

    /// What is wrong, without the key: `must be between 1 and 3600, got 0`.
    pub fn reason(&self) -> String {
        match self {
            ShareConfigError::Destination { name, reason, .. } => {
                format!("{reason} (destination \"{name}\")")
            }
            ShareConfigError::EmptySourceName => "must not be empty".to_string(),
            ShareConfigError::Key { reason, .. } => reason.clone(),
        }
    }
}

/// Checks `value` against `range`: `must be between 1 and 3600, got 0`.
fn in_range(range: &RangeInclusive<u64>, value: u64) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "must be between {} and {}, got {value}",
            range.start(),
            range.end()
        ))
    }
}

impl ShareConfig {
    /// Checks what serde cannot: unique names, every number in its range, key
    /// sources, URL schemes (https, or http on loopback only). The first problem; see
    /// [`ShareConfig::problems`] for all of them.
    pub fn validate(&self) -> Result<(), ShareConfigError> {
        match self.problems().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every problem [`ShareConfig::validate`] looks for, in key order.
    pub fn problems(&self) -> Vec<ShareConfigError> {
        let mut out = Vec::new();
        if self.source_name.trim().is_empty() {
            out.push(ShareConfigError::EmptySourceName);
        }
        for (key, list) in [
            ("victim_types", &self.victim_types),
            ("victim_categories", &self.victim_categories),
            ("own_domains", &self.own_domains),
        ] {
            if list
                .iter()
                .any(|v| v.trim().trim_matches(['.', '*']).is_empty())
            {
                out.push(ShareConfigError::Key {
                    key,
                    reason: "holds an empty entry".into(),
                });
            }
        }
        let mut names = BTreeSet::new();
        for (index, d) in self.destinations.iter().enumerate() {
            let mut err = |key: &'static str, reason: String| {
                out.push(ShareConfigError::Destination {
                    index,
                    name: d.name.clone(),
                    key,
                    reason,
                })
            };
            if d.name.trim().is_empty() || d.name.chars().any(char::is_control) {
                err("name", "must be a non-empty name".into());
            } else if !names.insert(d.name.as_str()) {
                err("name", "used by another destination".into());
            }
            for (key, range, value) in [
                ("window_secs", &WINDOW_SECS, d.window_secs),
                (
                    "retry_initial_secs",
                    &RETRY_INITIAL_SECS,
                    d.retry_initial_secs,
                ),
                ("retry_max_secs", &RETRY_MAX_SECS, d.retry_max_secs),
                ("timeout_secs", &TIMEOUT_SECS, d.timeout_secs),
                (
                    "anonymise_granularity_secs",
                    &ANONYMISE_GRANULARITY_SECS,
                    d.anonymise_granularity_secs,
                ),
            ] {
                if let Err(reason) = in_range(range, value) {
                    err(key, reason);
                }
            }
            for &bucket in &d.count_buckets {
                if let Err(reason) = in_range(&COUNT_BUCKET, bucket) {
                    err("count_buckets", reason);
                }
            }
            if d.retry_max_secs < d.retry_initial_secs {
                err(
                    "retry_max_secs",
                    format!(
                        "must be at least retry_initial_secs ({}), got {}",
                        d.retry_initial_secs, d.retry_max_secs
                    ),
                );
            }
            if d.default_tlp > d.max_tlp {
                tracing::warn!(
                    destination = %d.name,
                    "Untagged intel is above this destination's max_tlp: it will never be shared."
                );
            }
            match &d.transport {
                TransportConfig::Misp {
                    url,
                    api_key_env,
                    api_key_file,
                    ..
                } => {
                    if let Err(r) = check_url(url) {
                        err("transport.url", r);
                    }
                    if api_key_env.is_some() == api_key_file.is_some() {
                        err(
                            "transport.api_key_env",
                            "set exactly one of api_key_env and api_key_file".into(),
                        );
                    }
                }
                TransportConfig::Taxii {
                    api_root,
                    collection_id,
                    username,
                    password_env,
                    password_file,
                    ..
                } => {
                    if let Err(r) = check_url(api_root) {
                        err("transport.api_root", r);
                    }
                    if collection_id.trim().is_empty() || collection_id.contains('/') {
                        err("transport.collection_id", "must be a collection id".into());
                    }
                    if password_env.is_some() && password_file.is_some() {
                        err(
                            "transport.password_env",
                            "set at most one of password_env and password_file".into(),
                        );
                    }
                    if username.is_none() && (password_env.is_some() || password_file.is_some()) {
                        err("transport.username", "a password needs a username".into());
                    }
                }
                TransportConfig::StixDir { path } => {
                    if path.as_os_str().is_empty() {
                        err("transport.path", "must not be empty".into());
                    }
                }
            }
        }
        out
    }
}

impl DestinationConfig {
    /// Does this destination give back to intel source `source`?
    pub fn serves(&self, source: &str) -> bool {
        serves(self, source)
    }
}

/// `https://…`, or `http://` to a loopback address (tests, local relays); no
/// userinfo. See [`crate::net::http::parse_destination_url`].
fn check_url(url: &str) -> Result<(), String> {
    crate::net::http::parse_destination_url(url).map(|_| ())
}

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
    /// A MISP destination and neither an attribute nor an event UUID to restrict to.
    NoTarget,
    /// Asked again before delivery: the current intel no longer holds the indicator
    /// from the source, event and attribute it was queued for.
    Withdrawn,
}

impl DropReason {
    pub const ALL: [DropReason; 8] = [
        DropReason::NoDestination,
        DropReason::Tlp,
        DropReason::UnknownTlp,
        DropReason::Distribution,
        DropReason::SharingGroup,
        DropReason::VictimData,
        DropReason::NoTarget,
        DropReason::Withdrawn,
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
                "the intel names neither an attribute nor an event UUID to attach it to"
            }
            DropReason::Withdrawn => {
                "the current intel no longer holds it from the source it was queued for"
            }
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
}

impl Router {
    pub fn new(config: &ShareConfig) -> Result<Router, ShareConfigError> {
        config.validate()?;
        Ok(Router {
            config: config.clone(),
        })
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
        let mut out = Routing::default();
        for (i, obs) in confirmation.observations.iter().enumerate() {
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
            let source = self.source_for(dest);
            let mut targets: Vec<Target> = attrs.into_iter().map(Target::Attribute).collect();
            if !events.is_empty() || (bare && !is_misp) {
                targets.push(Target::Value {
                    event_uuids: events.into_iter().collect(),
                });
            } else if bare && targets.is_empty() {
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
                if allowed.is_empty() {
                    Err(reason)
                } else {
                    Ok(target.clone())
                }
            }
            Target::Value { event_uuids } => {
                let kept: Vec<String> = event_uuids
                    .iter()
                    .filter(|e| {
                        allowed.iter().any(|p| {
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

/// Does `dest` give back to intel source `source`?
fn serves(dest: &DestinationConfig, source: &str) -> bool {
    if dest.intel_sources.is_empty() {
        dest.name == source
    } else {
        dest.intel_sources.iter().any(|s| s == source)
    }
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

    #[test]
    fn tlp_names() {
        for (name, tlp) in [
            ("clear", Some(Tlp::Clear)),
            ("WHITE", Some(Tlp::Clear)),
            ("tlp:white", Some(Tlp::Clear)),
            ("green", Some(Tlp::Green)),
            ("amber", Some(Tlp::Amber)),
            ("amber+strict", Some(Tlp::AmberStrict)),
            ("TLP:RED", Some(Tlp::Red)),
            ("purple", None),
        ] {
            assert_eq!(parse_tlp(name), tlp, "{name}");
        }
    }

    #[test]
    fn urls() {
        for (url, ok) in [
            ("https://misp.example.org", true),
            ("http://127.0.0.1:8080", true),
            ("http://localhost/", true),
            ("http://[::1]:9/x", true),
            ("http://10.20.30.40", false),
            ("http://misp.example.org", false),
            ("http://localhost:x@192.0.2.10:8080/misp", false),
            ("ftp://x", false),
        ] {
            assert_eq!(check_url(url).is_ok(), ok, "{url}");
        }
    }

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
    fn new_keys_are_checked() {
        let bad: Result<ShareConfig, _> = toml::from_str("own_networks = [\"10.0.0.0/33\"]");
        assert!(bad
            .expect_err("a bad network")
            .to_string()
            .contains("not a network"));
        let c: ShareConfig = toml::from_str(&ONE.replace(
            "max_tlp",
            "anonymise_granularity_secs = 0\ncount_buckets = [0]\nmax_tlp",
        ))
        .expect("parses");
        let keys: Vec<String> = c.problems().iter().map(|p| p.key()).collect();
        assert_eq!(
            keys,
            [
                "share.destinations[0].anonymise_granularity_secs",
                "share.destinations[0].count_buckets"
            ]
        );
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
}
