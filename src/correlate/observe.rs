//! Turns matches into [`Observation`]s for the rules: one per enrichment, with the
//! indicator's provenance from the index and what decoding says about the line (host,
//! addresses). Shared by `tripline hunt` and `tripline run`, so both feed the rules the
//! same way.
//!
//! Invariant: nothing from the line is copied except the matched observable (`atomic`,
//! never sent in a sighting), the host and the addresses decoding found.

use chrono::{DateTime, Utc};

use crate::decode::Event;
use crate::index::Index;
use crate::matcher::Hit;

use super::{Observation, Provenance};

/// The provenance of a meta, as sightings need it.
pub fn provenance(index: &Index, meta_id: u32) -> Provenance {
    let meta = index.meta(meta_id);
    let event = meta.event.and_then(|e| index.events.get(e as usize));
    let mut tags: Vec<String> = index.tags(meta.tags).map(str::to_string).collect();
    if let Some(ev) = event {
        tags.extend(ev.tags.iter().cloned());
    }
    tags.sort();
    tags.dedup();
    Provenance {
        source: index
            .sources
            .get(meta.source as usize)
            .map_or_else(String::new, |s| s.name.clone()),
        event_uuid: event.and_then(|e| e.uuid.clone()),
        attribute_uuid: meta.attr_uuid.as_deref().map(str::to_string),
        source_type: index.string(meta.misp_type).to_string(),
        category: meta.category.map(|c| index.string(c).to_string()),
        tags,
        tlp: index.tlp_of(meta),
        distribution: meta
            .distribution
            .or_else(|| event.and_then(|e| e.distribution)),
    }
}

/// One observation per hit. `host` falls back to `default_host` (the file in batch
/// hunts, the source name live) when the line names none.
pub fn observations(
    index: &Index,
    hits: &[(Hit, Vec<u32>)],
    event: &Event,
    time: DateTime<Utc>,
    log_source: &str,
    default_host: &str,
) -> Vec<Observation> {
    hits.iter()
        .map(|(hit, metas)| Observation {
            time,
            indicator: index.value(hit.id).to_string(),
            kind: hit.id.kind(),
            atomic: hit.atomic.clone(),
            provenance: metas.iter().map(|&m| provenance(index, m)).collect(),
            host: Some(
                event
                    .host
                    .clone()
                    .unwrap_or_else(|| default_host.to_string()),
            ),
            source_ip: event.source_ip,
            destination_ip: event.destination_ip,
            log_source: log_source.to_string(),
        })
        .collect()
}
