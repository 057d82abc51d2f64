//! Persisting correlation state: [`Engine::snapshot`] and [`Engine::restore`], so the
//! sidecar can store its open windows with its outbox and pick them up after a
//! restart (a window opened before the restart confirms after it).
//!
//! Format: versioned JSON ([`SNAPSHOT_VERSION`]): every group in least-recently-used
//! order with its rule id, the rule's fingerprint ([`Rule::fingerprint`]), its
//! group-by values, times (RFC 3339, nanoseconds) and stored observations, plus the
//! engine's counters. The observations hold what `Observation` holds (indicator,
//! provenance, host, addresses, log source, origin), never log text.
//!
//! Invariants: restoring replaces the engine's state; a group is restored only into
//! a rule with the same id and fingerprint (same type, group-by, timespan, condition,
//! field and selector names), else it is dropped and counted in [`Restored`]. The cap
//! applies after a restore (evictions counted). Costs: O(state) time and memory.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::engine::{Counters, Engine, Entry, Group};
use super::{LineOrigin, Observation, Provenance};
use crate::intel::{Kind, Tlp};

/// The snapshot format version this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Why a snapshot could not be restored. The engine is left unchanged.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("correlation snapshot is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("correlation snapshot version {found} is not supported (expected {SNAPSHOT_VERSION})")]
    Version { found: u32 },
    #[error("correlation snapshot: {0}")]
    Invalid(String),
}

/// What a restore kept and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub groups: usize,
    /// Groups of rules that are gone or changed.
    pub dropped: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotDoc {
    version: u32,
    groups: Vec<GroupDoc>,
    counters: CountersDoc,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountersDoc {
    evictions: u64,
    expired: u64,
    late: u64,
    suppressed: u64,
    unkeyed: u64,
    confirmations: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupDoc {
    rule: String,
    fingerprint: String,
    values: Vec<String>,
    newest: Option<String>,
    start: Option<String>,
    quiet_until: Option<String>,
    overflow: bool,
    entries: Vec<EntryDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDoc {
    keys: Vec<String>,
    obs: ObservationDoc,
}

/// An [`Observation`] as stored in snapshots and the sidecar's journal.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationDoc {
    time: String,
    indicator: String,
    kind: String,
    atomic: String,
    provenance: Vec<ProvenanceDoc>,
    host: Option<String>,
    source_ip: Option<IpAddr>,
    destination_ip: Option<IpAddr>,
    log_source: String,
    /// Absent in snapshots written before origins existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<OriginDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OriginDoc {
    stream: String,
    position: u64,
    hit: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvenanceDoc {
    source: String,
    event_uuid: Option<String>,
    attribute_uuid: Option<String>,
    source_type: String,
    category: Option<String>,
    tags: Vec<String>,
    tlp: Option<String>,
    distribution: Option<u8>,
}

fn time_out(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn time_in(s: &str) -> Result<DateTime<Utc>, StateError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StateError::Invalid(format!("bad time {s:?}: {e}")))
}

fn opt_time_in(s: &Option<String>) -> Result<Option<DateTime<Utc>>, StateError> {
    s.as_deref().map(time_in).transpose()
}

impl ObservationDoc {
    pub fn from_obs(o: &Observation) -> ObservationDoc {
        ObservationDoc {
            time: time_out(o.time),
            indicator: o.indicator.clone(),
            kind: o.kind.name().to_string(),
            atomic: o.atomic.clone(),
            provenance: o
                .provenance
                .iter()
                .map(|p| ProvenanceDoc {
                    source: p.source.clone(),
                    event_uuid: p.event_uuid.clone(),
                    attribute_uuid: p.attribute_uuid.clone(),
                    source_type: p.source_type.clone(),
                    category: p.category.clone(),
                    tags: p.tags.clone(),
                    tlp: p.tlp.map(|t| t.as_str().to_ascii_lowercase()),
                    distribution: p.distribution,
                })
                .collect(),
            host: o.host.clone(),
            source_ip: o.source_ip,
            destination_ip: o.destination_ip,
            log_source: o.log_source.clone(),
            origin: o.origin.as_ref().map(|g| OriginDoc {
                stream: g.stream.clone(),
                position: g.position,
                hit: g.hit,
            }),
        }
    }

    pub fn into_obs(self) -> Result<Observation, StateError> {
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.name() == self.kind)
            .ok_or_else(|| StateError::Invalid(format!("unknown kind {:?}", self.kind)))?;
        let provenance = self
            .provenance
            .into_iter()
            .map(|p| {
                let tlp = match &p.tlp {
                    None => None,
                    Some(t) => Some(
                        Tlp::from_tag(&format!("tlp:{t}"))
                            .ok_or_else(|| StateError::Invalid(format!("unknown TLP {t:?}")))?,
                    ),
                };
                Ok(Provenance {
                    source: p.source,
                    event_uuid: p.event_uuid,
                    attribute_uuid: p.attribute_uuid,
                    source_type: p.source_type,
                    category: p.category,
                    tags: p.tags,
                    tlp,
                    distribution: p.distribution,
                })
            })
            .collect::<Result<Vec<_>, StateError>>()?;
        Ok(Observation {
            time: time_in(&self.time)?,
            indicator: self.indicator,
            kind,
            atomic: self.atomic,
            provenance,
            host: self.host,
            source_ip: self.source_ip,
            destination_ip: self.destination_ip,
            log_source: self.log_source,
            origin: self.origin.map(|g| LineOrigin {
                stream: g.stream,
                position: g.position,
                hit: g.hit,
            }),
        })
    }
}

impl Engine {
    /// The engine's windows and counters as JSON (see the module docs).
    pub fn snapshot(&self) -> Vec<u8> {
        let groups = self
            .lru
            .values()
            .filter_map(|k| self.groups.get(k))
            .map(|g| {
                let rule = &self.rules[g.rule];
                GroupDoc {
                    rule: rule.id.clone(),
                    fingerprint: rule.fingerprint(),
                    values: g.values.clone(),
                    newest: g.newest.map(time_out),
                    start: g.start.map(time_out),
                    quiet_until: g.quiet_until.map(time_out),
                    overflow: g.overflow,
                    entries: g
                        .entries
                        .iter()
                        .map(|e| EntryDoc {
                            keys: e.keys.clone(),
                            obs: ObservationDoc::from_obs(&e.obs),
                        })
                        .collect(),
                }
            })
            .collect();
        let c = &self.counters;
        let doc = SnapshotDoc {
            version: SNAPSHOT_VERSION,
            groups,
            counters: CountersDoc {
                evictions: c.evictions,
                expired: c.expired,
                late: c.late,
                suppressed: c.suppressed,
                unkeyed: c.unkeyed,
                confirmations: self
                    .rules
                    .iter()
                    .zip(&c.confirmations)
                    .map(|(r, n)| (r.id.clone(), *n))
                    .collect(),
            },
        };
        // Serialising plain structs of strings and numbers to memory cannot fail.
        serde_json::to_vec(&doc).unwrap_or_default()
    }

    /// Replaces this engine's state with a snapshot's. Groups of rules that are gone
    /// or changed are dropped (see [`Restored`]); on error nothing changes.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<Restored, StateError> {
        let doc: SnapshotDoc = serde_json::from_slice(bytes)?;
        if doc.version != SNAPSHOT_VERSION {
            return Err(StateError::Version { found: doc.version });
        }
        let by_id: BTreeMap<&str, (usize, String)> = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), (i, r.fingerprint())))
            .collect();
        let mut restored = Restored::default();
        let mut groups = Vec::with_capacity(doc.groups.len());
        for g in doc.groups {
            let Some((ri, fp)) = by_id.get(g.rule.as_str()) else {
                restored.dropped += 1;
                continue;
            };
            let width = self.rules[*ri]
                .correlation
                .as_ref()
                .map_or(0, |c| c.group_by.len());
            if *fp != g.fingerprint || g.values.len() != width {
                restored.dropped += 1;
                continue;
            }
            let mut entries = g
                .entries
                .into_iter()
                .map(|e| {
                    Ok(Entry {
                        obs: Arc::new(e.obs.into_obs()?),
                        keys: e.keys,
                    })
                })
                .collect::<Result<Vec<_>, StateError>>()?;
            entries.sort_by_key(|e| e.obs.time);
            groups.push(Group {
                rule: *ri,
                values: g.values,
                tick: 0,
                newest: opt_time_in(&g.newest)?,
                start: opt_time_in(&g.start)?,
                quiet_until: opt_time_in(&g.quiet_until)?,
                overflow: g.overflow,
                entries,
            });
        }
        // Everything parsed: now replace the state.
        self.groups.clear();
        self.lru.clear();
        self.tick = 0;
        let confirmations = self
            .rules
            .iter()
            .map(|r| doc.counters.confirmations.get(&r.id).copied().unwrap_or(0))
            .collect();
        self.counters = Counters {
            evictions: doc.counters.evictions,
            expired: doc.counters.expired,
            late: doc.counters.late,
            suppressed: doc.counters.suppressed,
            unkeyed: doc.counters.unkeyed,
            confirmations,
        };
        for mut g in groups {
            let key: Arc<str> = Arc::from(super::engine::group_key(g.rule, &g.values));
            if self.groups.contains_key(&key) {
                restored.dropped += 1;
                continue;
            }
            self.tick += 1;
            g.tick = self.tick;
            self.lru.insert(g.tick, key.clone());
            self.groups.insert(key, g);
            restored.groups += 1;
        }
        self.enforce_cap();
        Ok(restored)
    }
}
