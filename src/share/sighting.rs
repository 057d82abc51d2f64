//! The sighting: the one thing that leaves the organisation, and what it may hold.
//!
//! Invariant: a [`Sighting`] has no field that could hold text from a log line. It
//! carries the canonical indicator value as the intel wrote it
//! ([`Observation::indicator`], never [`Observation::atomic`], the host, the IPs or the
//! log source), where it points at the destination (an attribute/indicator id from the
//! intel, or the value restricted to the intel's own event ids), the MISP sighting
//! type, a count, first and last time, our source name (or `None` when anonymised) and
//! the destination's name (from our configuration). The struct is `#[non_exhaustive]`:
//! code outside this crate can read it but never build one; inside, it is built only
//! by [`Sighting::from_observation`] (routing) and [`Sighting::new`] (the outbox
//! reloading a row it wrote, and analyst false-positive reports).
//!
//! Windows are fixed and aligned on the Unix epoch (`floor(t / window) * window`), so
//! the idempotency key of an aggregate (destination, type, target, indicator, window
//! start) is the same whatever process computes it, before or after a restart.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};

use crate::correlate::Observation;
use crate::intel::Kind;

/// MISP sighting types (MISP core format: 0 sighting, 1 false positive, 2 expiration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SightingType {
    /// We saw it (a rule confirmed it).
    Sighting = 0,
    /// An analyst says it is benign.
    FalsePositive = 1,
    /// The indicator should expire at the sighting's time.
    Expiration = 2,
}

impl SightingType {
    /// The MISP code (`"type"` in `/sightings/add`).
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: i64) -> Option<SightingType> {
        Some(match code {
            0 => SightingType::Sighting,
            1 => SightingType::FalsePositive,
            2 => SightingType::Expiration,
            _ => return None,
        })
    }

    /// MISP's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            SightingType::Sighting => "sighting",
            SightingType::FalsePositive => "false-positive",
            SightingType::Expiration => "expiration",
        }
    }
}

impl fmt::Display for SightingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the sighting points at in the destination.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The attribute (MISP attribute UUID) or indicator (STIX `indicator--…` id) that
    /// supplied the value.
    Attribute(String),
    /// The value itself, restricted to these events (MISP event UUIDs / STIX report or
    /// bundle ids) of the community that supplied it. Empty only for STIX
    /// destinations, which then refer to a deterministic indicator id.
    Value { event_uuids: Vec<String> },
}

impl Target {
    /// The target as it stands in an idempotency key (`attr:<id>` or `value`).
    pub fn key_part(&self) -> String {
        match self {
            Target::Attribute(id) => format!("attr:{id}"),
            Target::Value { .. } => "value".to_string(),
        }
    }
}

/// One aggregated sighting for one destination and one window.
///
/// Readable everywhere, constructible only inside the crate (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sighting {
    /// The canonical indicator value (from the intel, not from the log).
    pub indicator: String,
    pub kind: Kind,
    pub target: Target,
    pub sighting_type: SightingType,
    /// How many confirmed observations this aggregate stands for (at least 1).
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Our source name (MISP `source`, STIX identity), `None` when anonymised.
    pub source: Option<String>,
    /// The destination's configured name.
    pub destination: String,
}

impl Sighting {
    /// A sighting of one confirmed observation: its canonical indicator, kind and time,
    /// count 1. Nothing else of the observation is read.
    pub(crate) fn from_observation(
        observation: &Observation,
        target: Target,
        source: Option<&str>,
        destination: &str,
    ) -> Sighting {
        Sighting::new(
            &observation.indicator,
            observation.kind,
            target,
            SightingType::Sighting,
            1,
            observation.time,
            observation.time,
            source,
            destination,
        )
    }

    /// Every field, given one by one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        indicator: &str,
        kind: Kind,
        target: Target,
        sighting_type: SightingType,
        count: u64,
        first_seen: DateTime<Utc>,
        last_seen: DateTime<Utc>,
        source: Option<&str>,
        destination: &str,
    ) -> Sighting {
        let (first_seen, last_seen) = if first_seen <= last_seen {
            (first_seen, last_seen)
        } else {
            (last_seen, first_seen)
        };
        Sighting {
            indicator: indicator.to_string(),
            kind,
            target,
            sighting_type,
            count: count.max(1),
            first_seen,
            last_seen,
            source: source.map(str::to_string),
            destination: destination.to_string(),
        }
    }

    /// The idempotency key of this sighting's aggregate: one row, one delivery.
    pub fn idempotency_key(&self, window_start: i64) -> String {
        idempotency_key(
            &self.destination,
            self.sighting_type,
            &self.target,
            &self.indicator,
            window_start,
        )
    }
}

/// `destination, type, target, indicator, window start`, joined by the ASCII unit
/// separator (which no config name or indicator value holds).
pub fn idempotency_key(
    destination: &str,
    sighting_type: SightingType,
    target: &Target,
    indicator: &str,
    window_start: i64,
) -> String {
    format!(
        "{destination}\u{1f}{}\u{1f}{}\u{1f}{indicator}\u{1f}{window_start}",
        sighting_type.code(),
        target.key_part()
    )
}

/// The start (Unix seconds) of the epoch-aligned window of `window_secs` holding `t`.
pub fn window_start(t: DateTime<Utc>, window_secs: u64) -> i64 {
    let w = i64::try_from(window_secs.max(1)).unwrap_or(i64::MAX);
    t.timestamp().div_euclid(w) * w
}

/// Unix milliseconds to a UTC time (clamped to chrono's range).
pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// One outbox row on its way out: the sighting, and what of its row the formats need
/// (renderers build from it, transports send it).
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    pub sighting: &'a Sighting,
    /// The row's idempotency key (STIX ids derive from it).
    pub key: &'a str,
    /// When the row was created (STIX `created` / `modified`: stable across retries).
    pub created: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(s, 0).single().expect("valid test time")
    }

    #[test]
    fn windows_align_on_the_epoch() {
        for (time, window, start) in [
            (0, 3600, 0),
            (3599, 3600, 0),
            (3600, 3600, 3600),
            (7201, 3600, 7200),
            (-1, 3600, -3600),
            (100, 0, 100), // a zero window reads as one second
        ] {
            assert_eq!(window_start(t(time), window), start, "t={time} w={window}");
        }
    }

    #[test]
    fn keys_separate_every_part() {
        let a = Target::Attribute("u1".into());
        let v = Target::Value {
            event_uuids: vec!["e1".into()],
        };
        let k = |d: &str, ty, tg: &Target, i: &str, w| idempotency_key(d, ty, tg, i, w);
        let base = k("circl", SightingType::Sighting, &a, "evil.com", 0);
        assert_ne!(base, k("other", SightingType::Sighting, &a, "evil.com", 0));
        assert_ne!(
            base,
            k("circl", SightingType::FalsePositive, &a, "evil.com", 0)
        );
        assert_ne!(base, k("circl", SightingType::Sighting, &v, "evil.com", 0));
        assert_ne!(base, k("circl", SightingType::Sighting, &a, "evil.org", 0));
        assert_ne!(
            base,
            k("circl", SightingType::Sighting, &a, "evil.com", 3600)
        );
        // Event ids of a value target do not split its aggregate.
        let v2 = Target::Value {
            event_uuids: vec!["e2".into()],
        };
        assert_eq!(
            k("c", SightingType::Sighting, &v, "x", 0),
            k("c", SightingType::Sighting, &v2, "x", 0)
        );
    }

    #[test]
    fn new_orders_times_and_counts_at_least_one() {
        let s = Sighting::new(
            "evil.com",
            Kind::Domain,
            Target::Value {
                event_uuids: vec![],
            },
            SightingType::Sighting,
            0,
            t(20),
            t(10),
            None,
            "d",
        );
        assert_eq!((s.first_seen, s.last_seen, s.count), (t(10), t(20), 1));
    }

    #[test]
    fn type_codes_round_trip() {
        for ty in [
            SightingType::Sighting,
            SightingType::FalsePositive,
            SightingType::Expiration,
        ] {
            assert_eq!(SightingType::from_code(i64::from(ty.code())), Some(ty));
        }
        assert_eq!(SightingType::from_code(3), None);
    }
}
