//! Expiry and decay: when an indicator stops matching, and its score at a given time.
//!
//! What it owns: the [`ExpiryPolicy`] (MISP decay models per MISP type, per-kind
//! default lifetimes) and the judgement of one meta at one time ([`ExpiryPolicy::judge`]).
//! Loaders record only what the intel says (STIX `valid_until`/`revoked`, MISP
//! `deleted`, times, the last positive sighting and an exported `decay_score`); the
//! policy is applied by the index, at build and at match time, so a configuration
//! change needs no reload of the intel's meaning.
//!
//! Rules, in order, for one source's view (a meta) of an indicator at time `t`:
//! 1. revoked (STIX) and deleted (MISP attribute, object or event) metas are never
//!    loaded as matchable (`IntelStore::meta_id`);
//! 2. STIX `valid_from <= t < valid_until` ([`super::Meta::valid_at`]); a MISP
//!    expiration sighting (type 2) sets `valid_until` to its date;
//! 3. MISP intel (formats `misp`, `misp-feed`) whose type has a decay model: the
//!    polynomial model of MISP (`app/Model/DecayingModelsFormulas/Polynomial.php`),
//!    `score = base · (1 − (Δ/lifetime)^(1/decay_speed))`, clamped to 0..=100, with
//!    `Δ = t − t0`; `t0` is the last positive sighting, else `last_seen`, else the
//!    attribute `timestamp`, and, as MISP does, `last_seen`/`timestamp` again when the
//!    attribute was changed after that sighting; `base` is the exported
//!    `decay_score[].base_score` when the intel carries one, else the model's
//!    `default_base_score`. Below `threshold` the meta is decayed. A line older than
//!    `t0` is judged at the base score (MISP scores it 0; a retro-hunt over old logs
//!    would then match nothing);
//! 4. any other meta without `valid_until`: a per-kind lifetime counted from the most
//!    recent time the intel gives (`last_seen`, `timestamp`/`modified`, `valid_from`,
//!    `first_seen`); intel with no time at all (a plain list) never expires.
//!
//! The time `t` is the event time of the line being matched (its own time, else the
//! time it was read): a hunt over old logs matches what was valid then, the sidecar
//! matches what is valid now, and tests drive the clock through the lines' times. The
//! sidecar also drops what has lapsed at each index build (`BuildOptions::now`).
//!
//! Costs: per meta, 8 bytes (`Meta::decay_input`, 4 and alignment: a meta is 144
//! bytes; list entries share one meta, a MISP attribute has its own); per MISP
//! attribute that carries a positive sighting or a decay score, one 16-byte
//! [`DecayInput`]. Nothing per indicator otherwise: lifetimes and decay are computed
//! from the times a meta already holds. The decay model of
//! a meta is found through a table by interned type id (a few bytes per distinct
//! MISP type). Judging is a few float operations per matched meta, only on lines that
//! matched. Measured here (release, one core, `index::tests::decay_cost`): 1M MISP
//! attributes of one decaying type build in 0.335 s, 0.323 s when the build also
//! drops the 53% that decayed (the drop pass costs less than the address table it
//! saves); `metas_valid_at` with decay judged is 64 ns per indicator.

use std::collections::BTreeMap;

use super::model::{Kind, Meta};

/// What decay needs beyond a meta's own times, for the few metas that carry it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DecayInput {
    /// The last positive sighting (MISP `Sighting` of type 0), seconds.
    pub last_sighting: Option<i64>,
    /// MISP's exported `decay_score[].base_score` (`includeDecayScore`).
    pub base_score: Option<f32>,
}

/// One MISP decay model's parameters (MISP `DecayingModel.parameters`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecayModel {
    /// MISP `lifetime` (tau), in seconds.
    pub lifetime_secs: f64,
    /// MISP `decay_speed` (delta).
    pub decay_speed: f64,
    /// Below this score (0..=100) the indicator stops matching.
    pub threshold: f64,
}

impl DecayModel {
    /// The score at `elapsed` seconds after the reference time, from `base`.
    pub fn score(&self, base: f64, elapsed: i64) -> f64 {
        if elapsed <= 0 || self.lifetime_secs <= 0.0 {
            return base.clamp(0.0, 100.0);
        }
        let ratio = elapsed as f64 / self.lifetime_secs;
        let s = base * (1.0 - ratio.powf(1.0 / self.decay_speed.max(f64::MIN_POSITIVE)));
        s.clamp(0.0, 100.0)
    }

    /// Seconds after the reference time from which the score is below the threshold
    /// (`lifetime · (1 − threshold/base)^decay_speed`); 0 when `base` is already
    /// below it.
    pub fn crossing_secs(&self, base: f64) -> f64 {
        if base < self.threshold || base <= 0.0 {
            return 0.0;
        }
        self.lifetime_secs * (1.0 - self.threshold / base).powf(self.decay_speed)
    }
}

/// MISP decay as configured: the default model (MISP's "NIDS Simple Decaying Model")
/// and the MISP types it applies to, each possibly with its own parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct DecaySettings {
    pub default_base_score: f64,
    /// MISP type → its model.
    pub models: BTreeMap<String, DecayModel>,
}

/// Why a meta stopped matching (also the `reason` label of
/// `tripline_intel_expired`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lapse {
    /// STIX `valid_until` passed (or a MISP expiration sighting).
    ValidUntil,
    /// The per-kind default lifetime passed.
    Lifetime,
    /// The MISP decay score fell below the threshold.
    Decayed,
}

impl Lapse {
    pub fn name(self) -> &'static str {
        match self {
            Lapse::ValidUntil => "valid_until",
            Lapse::Lifetime => "lifetime",
            Lapse::Decayed => "decayed",
        }
    }
}

/// The NIDS Simple Decaying Model's parameters (MISP/misp-decaying-models
/// `models/nids-simple-model.json`, version 2): lifetime 120 days, decay speed 2,
/// threshold 30, default base score 80.
pub const NIDS_LIFETIME_DAYS: f64 = 120.0;
pub const NIDS_DECAY_SPEED: f64 = 2.0;
pub const NIDS_THRESHOLD: f64 = 30.0;
pub const NIDS_DEFAULT_BASE_SCORE: f64 = 80.0;
/// The MISP types that model applies to.
pub const NIDS_TYPES: [&str; 13] = [
    "domain",
    "domain|ip",
    "hostname",
    "hostname|port",
    "ip-dst",
    "ip-dst|port",
    "ip-src",
    "ip-src|port",
    "url",
    "snort",
    "suricata",
    "zeek",
    "bro",
];

pub const DAY_SECS: i64 = 86_400;

/// Per-kind default lifetimes in days (0 = never): addresses and URLs 30, domains,
/// host names and e-mail addresses 180, hashes 3650; file names and other literals
/// never.
pub fn default_lifetime_days(kind: Kind) -> u64 {
    match kind {
        Kind::Ipv4 | Kind::Ipv6 | Kind::Url => 30,
        Kind::Domain | Kind::Hostname | Kind::Email => 180,
        k if k.is_hash() => 3650,
        _ => 0,
    }
}

/// How intel ages. [`Default`] is the configuration's default (decay on with the
/// NIDS model, default lifetimes); [`ExpiryPolicy::none`] ages nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpiryPolicy {
    /// `None`: MISP decay off.
    pub decay: Option<DecaySettings>,
    /// Seconds, by `Kind as usize`; `None` never expires.
    pub lifetimes: [Option<i64>; Kind::ALL.len()],
}

impl Default for ExpiryPolicy {
    fn default() -> ExpiryPolicy {
        let model = DecayModel {
            lifetime_secs: NIDS_LIFETIME_DAYS * DAY_SECS as f64,
            decay_speed: NIDS_DECAY_SPEED,
            threshold: NIDS_THRESHOLD,
        };
        ExpiryPolicy {
            decay: Some(DecaySettings {
                default_base_score: NIDS_DEFAULT_BASE_SCORE,
                models: NIDS_TYPES.iter().map(|t| (t.to_string(), model)).collect(),
            }),
            lifetimes: Kind::ALL.map(|k| lifetime_secs(default_lifetime_days(k))),
        }
    }
}

/// Days to seconds, 0 meaning never.
pub fn lifetime_secs(days: u64) -> Option<i64> {
    (days > 0).then(|| i64::try_from(days).unwrap_or(i64::MAX / DAY_SECS) * DAY_SECS)
}

/// A meta judged at one time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judged {
    /// Why it does not match then, if it does not.
    pub lapse: Option<Lapse>,
    /// Its decay score then (MISP decay only).
    pub score: Option<f64>,
}

/// Whether a source's format is MISP's (decay applies).
pub fn is_misp_format(format: &str) -> bool {
    matches!(format, "misp" | "misp-feed")
}

impl ExpiryPolicy {
    /// Ages nothing: validity windows only.
    pub fn none() -> ExpiryPolicy {
        ExpiryPolicy {
            decay: None,
            lifetimes: [None; Kind::ALL.len()],
        }
    }

    /// The decay model for a MISP type, if decay is on and the type has one.
    pub fn model(&self, misp_type: &str) -> Option<&DecayModel> {
        self.decay.as_ref()?.models.get(misp_type)
    }

    /// Judges `meta` (of an indicator of `kind`) at `t`. `model` is its decay model
    /// when it is MISP intel of a decaying type; `input` its [`DecayInput`].
    pub fn judge(
        &self,
        kind: Kind,
        meta: &Meta,
        model: Option<&DecayModel>,
        input: DecayInput,
        t: i64,
    ) -> Judged {
        if meta.valid_until.is_some_and(|u| t >= u) {
            return Judged {
                lapse: Some(Lapse::ValidUntil),
                score: None,
            };
        }
        if let (Some(model), Some(decay)) = (model, &self.decay) {
            let base = input
                .base_score
                .map_or(decay.default_base_score, f64::from)
                .clamp(0.0, 100.0);
            let t0 = decay_reference(meta, input);
            let score = t0.map_or(base, |t0| model.score(base, t.saturating_sub(t0)));
            return Judged {
                lapse: (score < model.threshold).then_some(Lapse::Decayed),
                score: Some(score),
            };
        }
        if meta.valid_until.is_none() {
            if let (Some(life), Some(own)) = (self.lifetimes[kind as usize], own_time(meta)) {
                if t >= own.saturating_add(life) {
                    return Judged {
                        lapse: Some(Lapse::Lifetime),
                        score: None,
                    };
                }
            }
        }
        Judged {
            lapse: None,
            score: None,
        }
    }
}

/// MISP's reference time for decay (`DecayingModelBase::computeCurrentScore`): the
/// last positive sighting, else `last_seen`, else `timestamp`; when the attribute was
/// changed after the sighting, `last_seen`, else `timestamp`.
pub fn decay_reference(meta: &Meta, input: DecayInput) -> Option<i64> {
    let changed = meta.last_seen.or(meta.modified);
    match (input.last_sighting, meta.modified) {
        (Some(s), Some(ts)) if ts > s => changed,
        (Some(s), _) => Some(s),
        (None, _) => changed,
    }
}

/// The most recent time the intel gives for a meta: what a lifetime counts from.
pub fn own_time(meta: &Meta) -> Option<i64> {
    [
        meta.last_seen,
        meta.modified,
        meta.valid_from,
        meta.first_seen,
    ]
    .into_iter()
    .flatten()
    .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nids() -> DecayModel {
        *ExpiryPolicy::default()
            .model("ip-dst")
            .expect("a NIDS type")
    }

    #[test]
    fn polynomial_matches_misp_formula_and_crossing() {
        let m = nids();
        assert_eq!(m.score(80.0, 0), 80.0);
        // Half the lifetime, speed 2: 80 · (1 − 0.5^0.5).
        let half = 60 * DAY_SECS;
        assert!((m.score(80.0, half) - 80.0 * (1.0 - 0.5f64.sqrt())).abs() < 1e-9);
        assert_eq!(m.score(80.0, 121 * DAY_SECS), 0.0);
        // 120 d · (1 − 30/80)² = 46.875 d.
        assert!((m.crossing_secs(80.0) - 46.875 * DAY_SECS as f64).abs() < 1e-6);
        assert!((m.crossing_secs(100.0) - 0.49 * 120.0 * DAY_SECS as f64).abs() < 1e-6);
        assert_eq!(m.crossing_secs(20.0), 0.0);
    }

    #[test]
    fn judge_decays_at_the_crossing_and_lifetimes_count_from_the_latest_time() {
        let policy = ExpiryPolicy::default();
        let meta = Meta {
            modified: Some(1_000_000),
            ..Meta::default()
        };
        let m = nids();
        let cross = 1_000_000 + m.crossing_secs(80.0) as i64;
        let at = |t| policy.judge(Kind::Ipv4, &meta, Some(&m), DecayInput::default(), t);
        assert_eq!(at(cross - 1).lapse, None);
        assert_eq!(at(cross + 1).lapse, Some(Lapse::Decayed));
        assert!(at(cross - 1).score.is_some_and(|s| s >= 30.0));
        // A sighting later than the timestamp moves the reference.
        let sighted = DecayInput {
            last_sighting: Some(2_000_000),
            base_score: Some(100.0),
        };
        let j = policy.judge(Kind::Ipv4, &meta, Some(&m), sighted, 2_000_000);
        assert_eq!(j.score, Some(100.0));
        // No model: the kind's lifetime (30 days for addresses) from the latest time.
        let listed = Meta {
            first_seen: Some(0),
            last_seen: Some(DAY_SECS),
            ..Meta::default()
        };
        let j = |t| policy.judge(Kind::Ipv4, &listed, None, DecayInput::default(), t);
        assert_eq!(j(31 * DAY_SECS - 1).lapse, None);
        assert_eq!(j(31 * DAY_SECS).lapse, Some(Lapse::Lifetime));
        // No time at all: never.
        let bare = Meta::default();
        let j = policy.judge(Kind::Ipv4, &bare, None, DecayInput::default(), i64::MAX);
        assert_eq!(j.lapse, None);
        // valid_until wins over everything.
        let stix = Meta {
            valid_until: Some(10),
            ..Meta::default()
        };
        let j = policy.judge(Kind::Sha256, &stix, None, DecayInput::default(), 10);
        assert_eq!(j.lapse, Some(Lapse::ValidUntil));
    }

    #[test]
    fn reference_time_follows_misp() {
        let meta = |modified, last_seen| Meta {
            modified,
            last_seen,
            ..Meta::default()
        };
        let sighting = |s| DecayInput {
            last_sighting: s,
            base_score: None,
        };
        assert_eq!(
            decay_reference(&meta(Some(5), None), sighting(Some(9))),
            Some(9)
        );
        // Changed after the sighting: last_seen, else the timestamp.
        assert_eq!(
            decay_reference(&meta(Some(9), Some(7)), sighting(Some(5))),
            Some(7)
        );
        assert_eq!(
            decay_reference(&meta(Some(9), None), sighting(Some(5))),
            Some(9)
        );
        assert_eq!(
            decay_reference(&meta(Some(9), Some(3)), sighting(None)),
            Some(3)
        );
        assert_eq!(decay_reference(&meta(None, None), sighting(None)), None);
    }
}
