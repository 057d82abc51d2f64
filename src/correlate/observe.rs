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

use super::{LineOrigin, Observation, Provenance};

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
        // The most restrictive of the attribute's and the event's (an attribute
        // tagged tlp:clear in a tlp:red event is red).
        tlp: meta.tlp.max(event.and_then(|e| e.tlp)),
        distribution: resolve_distribution(meta.distribution, event.and_then(|e| e.distribution)),
    }
}

/// MISP distribution after inheritance: an attribute's 5 ("inherit the event's") or
/// none is its event's; an attribute may narrow its event's (the lower number
/// wins, 4 "sharing group" counting as the narrowest but 0). An inherited 5 with no
/// event distribution stays 5: the sharing policy treats it as unknown.
pub fn resolve_distribution(attribute: Option<u8>, event: Option<u8>) -> Option<u8> {
    let narrowness = |d: u8| match d {
        0 => 0,
        4 => 1,
        3 => 4,
        d => d + 1,
    };
    match (attribute, event) {
        (Some(5) | None, e) => e.or(attribute),
        (Some(a), Some(e)) if e != 5 => Some(if narrowness(e) < narrowness(a) { e } else { a }),
        (a, _) => a,
    }
}

/// One observation per hit. `host` is the line's own host, else `sender` (the peer
/// address of a syslog message: the host that sent it); a line read from a file or
/// stdin that names no host has none — never its file path, which would make one
/// client spread over three files "3 distinct hosts". Rules that group or count by
/// host skip such observations (counted as unkeyed). `origin` is the line's (stream
/// and position); each hit gets its index in `hits`.
pub fn observations(
    index: &Index,
    hits: &[(Hit, Vec<u32>)],
    event: &Event,
    time: DateTime<Utc>,
    log_source: &str,
    sender: Option<&str>,
    origin: Option<(&str, u64)>,
) -> Vec<Observation> {
    hits.iter()
        .enumerate()
        .map(|(i, (hit, metas))| Observation {
            time,
            indicator: index.value(hit.id).to_string(),
            kind: hit.id.kind(),
            atomic: hit.atomic.clone(),
            provenance: metas.iter().map(|&m| provenance(index, m)).collect(),
            host: event.host.clone().or_else(|| sender.map(str::to_string)),
            source_ip: event.source_ip,
            destination_ip: event.destination_ip,
            log_source: log_source.to_string(),
            origin: origin.map(|(stream, position)| LineOrigin {
                stream: stream.to_string(),
                position,
                hit: u32::try_from(i).unwrap_or(u32::MAX),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inherited_distribution_resolves_to_the_event() {
        for (attribute, event, want) in [
            (Some(5), Some(0), Some(0)),
            (Some(5), Some(3), Some(3)),
            (None, Some(1), Some(1)),
            (Some(3), Some(0), Some(0)),
            (Some(0), Some(3), Some(0)),
            (Some(1), Some(3), Some(1)),
            (Some(3), Some(4), Some(4)),
            (Some(5), None, Some(5)),
            (None, None, None),
            (Some(2), None, Some(2)),
        ] {
            assert_eq!(
                resolve_distribution(attribute, event),
                want,
                "{attribute:?} in {event:?}"
            );
        }
    }
}
