//! The indicator model: what an indicator is, where it came from, and why it may be
//! excluded from matching.
//!
//! An *indicator* is one canonical value of one [`Kind`] (`evil.com` as a domain,
//! `10.0.0.0/8` as an IPv4 prefix). Every source that holds it contributes one
//! [`Meta`] (Zeek calls this `Meta` too): source, event, attribute UUID, MISP type and
//! category, tags, TLP, distribution, first/last seen, validity. One value held by
//! several communities is one indicator with several metas: that is how
//! cross-community overlap shows in alerts.
//!
//! Costs: metas are interned (list entries of one file share one), sources and events
//! are stored once and referenced by `u32` ids, tag sets are interned. See
//! `intel/store.rs` for the per-indicator cost.

use std::fmt;

/// How an indicator matches. The kind decides the match semantics (see `index/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// IPv4 address or CIDR; an address matches every prefix that covers it.
    Ipv4 = 0,
    /// IPv6 address or CIDR, whatever the written form.
    Ipv6 = 1,
    /// A domain: matches itself and every subdomain, on label boundaries.
    Domain = 2,
    /// A host name: matches that exact host only.
    Hostname = 3,
    /// A URL, stored without scheme as `host[:port]/path[?query]`.
    Url = 4,
    Md5 = 5,
    Sha1 = 6,
    Sha224 = 7,
    Sha256 = 8,
    Sha384 = 9,
    Sha512 = 10,
    /// An e-mail address, whole and case-insensitive.
    Email = 11,
    /// A file name: a whole path component, case-insensitive.
    Filename = 12,
    /// Any other string (user agent, mutex, named pipe): a case-sensitive literal
    /// substring of at least [`MIN_LITERAL_LEN`] bytes.
    Literal = 13,
    /// A Windows registry key (MISP `regkey`): a literal substring compared without
    /// regard to ASCII case, as Windows compares keys.
    Regkey = 14,
    /// A registry key and its value (MISP `regkey|value`), stored as `key|value`: the
    /// key as a [`Kind::Regkey`] and the value, case-insensitive, elsewhere on the same
    /// line. Never reduced to its key alone.
    RegkeyValue = 15,
}

/// Literals shorter than this are skipped at load: they would match everywhere.
pub const MIN_LITERAL_LEN: usize = 6;

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::Ipv4,
        Kind::Ipv6,
        Kind::Domain,
        Kind::Hostname,
        Kind::Url,
        Kind::Md5,
        Kind::Sha1,
        Kind::Sha224,
        Kind::Sha256,
        Kind::Sha384,
        Kind::Sha512,
        Kind::Email,
        Kind::Filename,
        Kind::Literal,
        Kind::Regkey,
        Kind::RegkeyValue,
    ];

    pub fn from_u8(v: u8) -> Kind {
        Kind::ALL.get(v as usize).copied().unwrap_or(Kind::Literal)
    }

    /// Short name used in summaries, metrics labels and `tripline intel`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::Domain => "domain",
            Kind::Hostname => "hostname",
            Kind::Url => "url",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha224 => "sha224",
            Kind::Sha256 => "sha256",
            Kind::Sha384 => "sha384",
            Kind::Sha512 => "sha512",
            Kind::Email => "email",
            Kind::Filename => "filename",
            Kind::Literal => "literal",
            Kind::Regkey => "regkey",
            Kind::RegkeyValue => "regkey_value",
        }
    }

    /// The hash kind of a hex digest of `len` characters.
    pub fn hash_for_len(len: usize) -> Option<Kind> {
        Some(match len {
            32 => Kind::Md5,
            40 => Kind::Sha1,
            56 => Kind::Sha224,
            64 => Kind::Sha256,
            96 => Kind::Sha384,
            128 => Kind::Sha512,
            _ => return None,
        })
    }

    pub fn is_hash(self) -> bool {
        matches!(
            self,
            Kind::Md5 | Kind::Sha1 | Kind::Sha224 | Kind::Sha256 | Kind::Sha384 | Kind::Sha512
        )
    }

    /// The Elastic Common Schema `threat.indicator.type` for this kind. Literals
    /// refine it from their MISP type (see [`ecs_type_for`]).
    pub fn ecs_type(self) -> &'static str {
        match self {
            Kind::Ipv4 => "ipv4-addr",
            Kind::Ipv6 => "ipv6-addr",
            Kind::Domain | Kind::Hostname => "domain-name",
            Kind::Url => "url",
            Kind::Email => "email-addr",
            Kind::Md5
            | Kind::Sha1
            | Kind::Sha224
            | Kind::Sha256
            | Kind::Sha384
            | Kind::Sha512
            | Kind::Filename => "file",
            Kind::Literal => "artifact",
            Kind::Regkey | Kind::RegkeyValue => "windows-registry-key",
        }
    }

    /// The MISP attribute type this kind stands for when the source had none (lists,
    /// STIX). Warninglists' `matching_attributes` are checked against it.
    pub fn default_misp_type(self) -> &'static str {
        match self {
            Kind::Ipv4 | Kind::Ipv6 => "ip-dst",
            Kind::Domain => "domain",
            Kind::Hostname => "hostname",
            Kind::Url => "url",
            Kind::Md5 => "md5",
            Kind::Sha1 => "sha1",
            Kind::Sha224 => "sha224",
            Kind::Sha256 => "sha256",
            Kind::Sha384 => "sha384",
            Kind::Sha512 => "sha512",
            Kind::Email => "email",
            Kind::Filename => "filename",
            Kind::Literal => "text",
            Kind::Regkey => "regkey",
            Kind::RegkeyValue => "regkey|value",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// ECS `threat.indicator.type` for an indicator of `kind` whose MISP type is `misp_type`.
pub fn ecs_type_for(kind: Kind, misp_type: &str) -> &'static str {
    if kind != Kind::Literal {
        return kind.ecs_type();
    }
    match misp_type {
        "mutex" => "mutex",
        "regkey" | "regkey|value" => "windows-registry-key",
        "user-agent" => "software",
        "AS" => "autonomous-system",
        "x509-fingerprint-sha1" | "x509-fingerprint-md5" | "x509-fingerprint-sha256" => {
            "x509-certificate"
        }
        _ => "artifact",
    }
}

/// Traffic Light Protocol 2.0 levels, least to most restricted. `white` reads as
/// `clear`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    AmberStrict,
    Red,
}

impl Tlp {
    /// Parses a `tlp:*` tag (case-insensitive). Returns `None` for other tags.
    pub fn from_tag(tag: &str) -> Option<Tlp> {
        let t = tag.trim().to_ascii_lowercase();
        let rest = t.strip_prefix("tlp:")?;
        Some(match rest.trim_matches('"') {
            "clear" | "white" => Tlp::Clear,
            "green" => Tlp::Green,
            "amber" => Tlp::Amber,
            "amber+strict" => Tlp::AmberStrict,
            "red" => Tlp::Red,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "CLEAR",
            Tlp::Green => "GREEN",
            Tlp::Amber => "AMBER",
            Tlp::AmberStrict => "AMBER+STRICT",
            Tlp::Red => "RED",
        }
    }
}

/// Where intel came from: a feed, a MISP instance, a STIX bundle, a list file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Name shown in alerts and summaries (defaults to the file or directory name).
    pub name: String,
    /// Format it was read with: `misp`, `misp-feed`, `stix`, `list`, `csv`.
    pub format: &'static str,
    /// The path or URL it was read from.
    pub location: String,
    /// The organisation that provides it, when known (MISP `Orgc.name`).
    pub provider: Option<String>,
}

/// A MISP event (or STIX bundle / report) that groups indicators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventInfo {
    pub uuid: Option<String>,
    pub info: Option<String>,
    /// MISP threat level: 1 high, 2 medium, 3 low, 4 undefined.
    pub threat_level: Option<u8>,
    /// Event-level tags (galaxy and ATT&CK tags included).
    pub tags: Vec<String>,
    pub tlp: Option<Tlp>,
    pub distribution: Option<u8>,
    pub org: Option<String>,
    pub date: Option<String>,
    /// A link to the event at its source, when the source has one.
    pub reference: Option<String>,
}

/// One source's view of one indicator. Interned: identical metas share one id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Meta {
    pub source: u32,
    pub event: Option<u32>,
    pub attr_uuid: Option<Box<str>>,
    /// The type as the source wrote it (MISP type, STIX object type, or the kind's
    /// default MISP type for lists), interned.
    pub misp_type: u32,
    /// MISP category, interned.
    pub category: Option<u32>,
    /// Attribute-level tags, interned as a set.
    pub tags: u32,
    pub to_ids: bool,
    pub deleted: bool,
    pub revoked: bool,
    pub tlp: Option<Tlp>,
    pub distribution: Option<u8>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// When the source last changed it (MISP attribute `timestamp`, STIX `modified`),
    /// seconds since the epoch: alerts' `indicator.modified_at`.
    pub modified: Option<i64>,
    /// STIX `valid_from` / `valid_until`, seconds since the epoch.
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    /// A port that came with the value (`ip-dst|port`, `1.2.3.4:443` in a list): context
    /// only, never required for a match.
    pub port: Option<u16>,
    /// The part of a composite attribute this indicator is (`domain` of `domain|ip`).
    pub composite_part: Option<u8>,
    /// What MISP decay needs beyond the times above (the last positive sighting, the
    /// exported base score): an index into the store's side table
    /// ([`super::expiry::DecayInput`]), 0 when the intel carries neither. Kept out of
    /// line so that a meta grows by 8 bytes (4 and alignment), not by 24.
    pub decay_input: u32,
}

/// Why an indicator (or one source's view of it) is not matched.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Exclusion {
    /// MISP `to_ids` is false (include with `--include-non-ids`).
    NotIds,
    /// MISP `deleted` is true.
    Deleted,
    /// STIX `revoked` is true.
    Revoked,
    /// STIX `valid_until` lies in the past (reported by `intel lookup`; a batch hunt
    /// still matches lines from before it).
    Expired,
    /// On a warninglist (named).
    Warninglisted(String),
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exclusion::NotIds => f.write_str("to_ids is false"),
            Exclusion::Deleted => f.write_str("deleted"),
            Exclusion::Revoked => f.write_str("revoked"),
            Exclusion::Expired => f.write_str("expired (valid_until passed)"),
            Exclusion::Warninglisted(l) => write!(f, "warninglisted by {l:?}"),
        }
    }
}

impl Meta {
    /// The policy exclusion that applies to this meta on its own. Validity windows are
    /// judged per event at match time ([`Meta::valid_at`]); warninglists per value at
    /// index build.
    pub fn exclusion(&self, include_non_ids: bool) -> Option<Exclusion> {
        if self.deleted {
            Some(Exclusion::Deleted)
        } else if self.revoked {
            Some(Exclusion::Revoked)
        } else if !self.to_ids && !include_non_ids {
            Some(Exclusion::NotIds)
        } else {
            None
        }
    }

    /// The TLP that applies: the most restrictive of the meta's own and its event's
    /// (an attribute tagged `tlp:clear` in a `tlp:red` event stays red), as the
    /// sharing policy judges it.
    pub fn effective_tlp(&self, events: &[EventInfo]) -> Option<Tlp> {
        let event = self
            .event
            .and_then(|e| events.get(e as usize))
            .and_then(|e| e.tlp);
        self.tlp.max(event)
    }

    /// Is this meta valid at time `t` (STIX validity window)?
    pub fn valid_at(&self, t: i64) -> bool {
        self.valid_from.is_none_or(|f| f <= t) && self.valid_until.is_none_or(|u| t < u)
    }
}

/// A record that a loader could not use, with where it was and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub location: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MISP attribute is one meta: its size is part of the per-indicator cost
    /// (136 bytes before decay inputs, 144 with them).
    #[test]
    fn meta_stays_small() {
        assert!(
            std::mem::size_of::<Meta>() <= 144,
            "{}",
            std::mem::size_of::<Meta>()
        );
    }

    #[test]
    fn event_tlp_red_wins_over_attribute_clear() {
        let events = vec![EventInfo {
            tlp: Some(Tlp::Red),
            ..EventInfo::default()
        }];
        let meta = |tlp: Option<Tlp>| Meta {
            event: Some(0),
            tlp,
            ..Meta::default()
        };
        assert_eq!(
            meta(Some(Tlp::Clear)).effective_tlp(&events),
            Some(Tlp::Red)
        );
        assert_eq!(meta(None).effective_tlp(&events), Some(Tlp::Red));
        let green = vec![EventInfo {
            tlp: Some(Tlp::Green),
            ..EventInfo::default()
        }];
        assert_eq!(
            meta(Some(Tlp::Amber)).effective_tlp(&green),
            Some(Tlp::Amber)
        );
        assert_eq!(meta(None).effective_tlp(&[]), None);
    }
}
