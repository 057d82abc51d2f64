//! Correlation: rules in `rules/` decide when matches are a confirmed correlation.
//!
//! Input: one [`Observation`] per enrichment of a matched line (an indicator seen in
//! one event). Output: [`Confirmation`]s, which become alerts (`event.kind: "alert"`)
//! and sighting candidates (`share/`).
//!
//! Invariant: an observation carries what rules group by and what sightings need
//! about the indicator and its provenance; it never carries the log line itself.
//! Its [`LineOrigin`] (which input, where in it) stays on this machine: it tells a
//! line read twice (a replay after a restart) from two lines that look alike, and is
//! never part of a sighting.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::intel::{Kind, Tlp};

/// One source's view of the indicator: where a sighting would go back to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Provenance {
    /// Intel source (community/feed) name.
    pub source: String,
    /// MISP event UUID or STIX bundle/report id, when known.
    pub event_uuid: Option<String>,
    /// MISP attribute UUID or STIX indicator id, when known.
    pub attribute_uuid: Option<String>,
    /// The type as the source wrote it (MISP type, STIX object path).
    pub source_type: String,
    pub category: Option<String>,
    pub tags: Vec<String>,
    /// TLP of the attribute or its event, if tagged.
    pub tlp: Option<Tlp>,
    /// MISP distribution of the attribute or event (0 = organisation only).
    pub distribution: Option<u8>,
}

/// Where the line of an observation was read: the input stream and the position in
/// it. Two observations with the same origin are the same event (a line read again
/// after a restart); two lines with the same time, host and indicator but different
/// origins are two events. Positions of one stream only grow while it is read (a file
/// truncated in place is a new stream), which is how the sidecar recognises a replay.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineOrigin {
    /// `file:<id>` (the file source's persistent id of the file content),
    /// `path:<path>` (a hunt's input), `syslog:<peer>/<transport>#<run>` or
    /// `stdin#<run>` (inputs that cannot be read twice: `<run>` is unique per
    /// process).
    pub stream: String,
    /// Byte offset (files followed by the sidecar), line number (hunt inputs,
    /// stdin) or message number (syslog) of the line in the stream.
    pub position: u64,
    /// Which hit of the line (its index among the line's observations).
    pub hit: u32,
}

/// An indicator seen in one event.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Event time: the line's own time, else when it was read.
    pub time: DateTime<Utc>,
    /// The indicator as it stands in the intel (canonical form).
    pub indicator: String,
    pub kind: Kind,
    /// The observable as it appeared in the log (`a.b.evil.com` for `evil.com`).
    /// Used for grouping and alerts, never sent in a sighting.
    pub atomic: String,
    /// Every source that holds the indicator.
    pub provenance: Vec<Provenance>,
    /// Syslog host when the line has one, else the file (batch) or source name.
    pub host: Option<String>,
    pub source_ip: Option<IpAddr>,
    pub destination_ip: Option<IpAddr>,
    /// The configured source name (live) or the file path (batch).
    pub log_source: String,
    /// Where the line was read; `None` when unknown (an observation built by hand).
    /// Local only: never in a sighting.
    pub origin: Option<LineOrigin>,
}

/// A rule's verdict: these observations together are a real correlation.
#[derive(Clone, Debug, PartialEq)]
pub struct Confirmation {
    pub rule_id: String,
    pub rule_title: String,
    pub level: String,
    /// The group-by values that define this correlation (`("host", "web01")`).
    pub group: Vec<(String, String)>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The observations that confirmed it (bounded by the rule's window).
    pub observations: Vec<Observation>,
}

mod doc;
pub mod engine;
pub mod load;
pub mod observe;
pub mod rule;
pub mod state;
