//! `[share]` as configured: the keys, their defaults and ranges, and the checks serde
//! cannot make (unique names, numbers in range, URLs, key sources). See the parent
//! module for the whole table and the routing rules built on it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::intel::Tlp;

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
    /// Days the delivery audit log keeps a request. Default 90; range 1 ..= 3650.
    pub audit_retention_days: u64,
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
            audit_retention_days: 90,
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
    /// A plain or CSV list loaded as `--intel NAME=PATH` (or `intel.paths = ["NAME=PATH"]`)
    /// is the source `NAME`: list it here to send its sightings to this community.
    #[serde(default)]
    pub intel_sources: Vec<String>,
    /// Intel sources paired with this destination by `[[intel.sources]]` (its
    /// `destination` key, or a MISP source at this MISP server's URL): served on top
    /// of `intel_sources` (or its default). Filled by the config plan, never read from
    /// the file.
    #[serde(skip)]
    pub paired_intel_sources: Vec<String>,
    /// MISP only: the event UUIDs of this community that by-value sightings of its
    /// intel without events of its own (plain and CSV lists) are restricted to
    /// (`/sightings/add` with `filters.uuid`). Default empty: such sightings are
    /// withheld (`no_target`), since an unrestricted value would touch every
    /// community's attribute on that server.
    #[serde(default)]
    pub list_event_uuids: Vec<String>,
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
    /// After an attempt whose outcome is unknown (timeout, 5xx), seconds to wait
    /// before asking the destination whether it landed (a slow server may still apply
    /// it). Default `2 × timeout_secs`; range 0 ..= 86400.
    #[serde(default)]
    pub settle_secs: Option<u64>,
    /// Rows sent in one request where the body can hold several (TAXII envelopes).
    /// Default 50; range 1 ..= 1000 ([`BATCH_SIZE`]).
    #[serde(default = "default_batch_size")]
    pub batch_size: u64,
    /// Requests to this destination per minute, at most (evenly spaced). Default 600;
    /// range 1 ..= 60000 ([`MAX_REQUESTS_PER_MINUTE`]).
    #[serde(default = "default_max_requests_per_minute")]
    pub max_requests_per_minute: u64,
    /// MISP records no count: a row of count n is sent as min(n, this) sightings.
    /// Default 100; range 1 ..= 10000 ([`MISP_MAX_SIGHTINGS_PER_ROW`]).
    #[serde(default = "default_misp_max_sightings_per_row")]
    pub misp_max_sightings_per_row: u64,
    pub transport: TransportConfig,
}

impl DestinationConfig {
    /// `settle_secs`, or its default (two request timeouts).
    pub fn settle_secs(&self) -> u64 {
        self.settle_secs
            .unwrap_or_else(|| self.timeout_secs.saturating_mul(2))
    }
}

/// `batch_size`: 1 to 1000 rows per request.
pub const BATCH_SIZE: RangeInclusive<u64> = 1..=1_000;
/// `max_requests_per_minute`: 1 to 60000.
pub const MAX_REQUESTS_PER_MINUTE: RangeInclusive<u64> = 1..=60_000;
/// `misp_max_sightings_per_row`: 1 to 10000.
pub const MISP_MAX_SIGHTINGS_PER_ROW: RangeInclusive<u64> = 1..=10_000;
/// `settle_secs`: 0 to a day.
pub const SETTLE_SECS: RangeInclusive<u64> = 0..=86_400;
/// `[share] audit_retention_days`: 1 day to 10 years.
pub const AUDIT_RETENTION_DAYS: RangeInclusive<u64> = 1..=3_650;

fn default_batch_size() -> u64 {
    50
}
fn default_max_requests_per_minute() -> u64 {
    600
}
fn default_misp_max_sightings_per_row() -> u64 {
    100
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
        if let Err(reason) = in_range(&AUDIT_RETENTION_DAYS, self.audit_retention_days) {
            out.push(ShareConfigError::Key {
                key: "audit_retention_days",
                reason,
            });
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
                ("settle_secs", &SETTLE_SECS, d.settle_secs()),
                ("batch_size", &BATCH_SIZE, d.batch_size),
                (
                    "max_requests_per_minute",
                    &MAX_REQUESTS_PER_MINUTE,
                    d.max_requests_per_minute,
                ),
                (
                    "misp_max_sightings_per_row",
                    &MISP_MAX_SIGHTINGS_PER_ROW,
                    d.misp_max_sightings_per_row,
                ),
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
                    if d.list_event_uuids.iter().any(|e| e.trim().is_empty()) {
                        err("list_event_uuids", "holds an empty entry".into());
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
                    if !d.list_event_uuids.is_empty() {
                        err(
                            "list_event_uuids",
                            "only a MISP destination takes it".into(),
                        );
                    }
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
                    if !d.list_event_uuids.is_empty() {
                        err(
                            "list_event_uuids",
                            "only a MISP destination takes it".into(),
                        );
                    }
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
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    crate::net::http::parse_destination_url(url).map(|_| ())
}

/// Does `dest` give back to intel source `source`?
pub(crate) fn serves(dest: &DestinationConfig, source: &str) -> bool {
    let listed = if dest.intel_sources.is_empty() {
        dest.name == source
    } else {
        dest.intel_sources.iter().any(|s| s == source)
    };
    listed || dest.paired_intel_sources.iter().any(|s| s == source)
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

    const ONE: &str = "[[destinations]]\nname = \"circl\"\nmax_tlp = \"amber\"\n\
                       [destinations.transport]\ntype = \"stix_dir\"\npath = \"x\"\n";

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
}
