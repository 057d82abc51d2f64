//! MISP rendering: the `/sightings/add` body for a sighting, the
//! `/sightings/restSearch/{context}` request that finds it if an attempt with an
//! unknown outcome already landed, and reading that search's answer. Pure functions of
//! a [`Sighting`]; the HTTP side is `share::transport::misp`.
//!
//! The `/sightings/add` body (MISP's `SightingsController::add`):
//! - by attribute: `{"uuid": "<attribute uuid>", "type": "0", "source": "…",
//!   "timestamp": "<epoch>", "date_sighting": "<epoch>"}`;
//! - by value, only when no attribute UUID is known: `{"value": "<indicator>",
//!   "filters": {"uuid": ["<event uuid>", …]}, …}`; MISP then searches attributes with
//!   `attributes/restSearch` semantics, so only attributes of those events (the
//!   supplying community's) get the sighting.
//!
//! `type` is a string as MISP writes it. The controller reads the sighting time from
//! `timestamp`; `date_sighting` (the stored field, as in the MISP core format and
//! PyMISP's `MISPSighting`) carries the same value. `source` is left out when the
//! destination anonymises (MISP still knows which API key posted it).
//!
//! The check searches sightings of the attribute (or of the events, for a by-value
//! sighting) at exactly our `timestamp`, of our type and source: a row is frozen from
//! its first attempt (its `last_seen` never moves after that), so a match is that
//! row. A row of count n is n sightings (capped, see `share::transport::misp`); the
//! check counts them ([`search_count`]). Older releases search by numeric id only:
//! [`attribute_ids`] reads them from `attributes/restSearch`, and
//! [`search_request_by_ids`] searches with them.

use serde_json::{json, Map, Value};

use crate::share::sighting::{Sighting, Target};

/// The `/sightings/add` body for one sighting.
pub fn add_payload(s: &Sighting) -> Value {
    let mut m = Map::new();
    match &s.target {
        Target::Attribute(uuid) => {
            m.insert("uuid".into(), Value::String(uuid.clone()));
        }
        Target::Value { event_uuids } => {
            m.insert("value".into(), Value::String(s.indicator.clone()));
            if !event_uuids.is_empty() {
                m.insert("filters".into(), json!({ "uuid": event_uuids }));
            }
        }
    }
    m.insert(
        "type".into(),
        Value::String(s.sighting_type.code().to_string()),
    );
    if let Some(source) = &s.source {
        m.insert("source".into(), Value::String(source.clone()));
    }
    let ts = s.last_seen.timestamp().to_string();
    m.insert("timestamp".into(), Value::String(ts.clone()));
    m.insert("date_sighting".into(), Value::String(ts));
    Value::Object(m)
}

/// The restSearch path and body that find this sighting if it landed.
pub fn search_request(s: &Sighting) -> (&'static str, Value) {
    let ts = s.last_seen.timestamp();
    let mut body = json!({
        "returnFormat": "json",
        "type": s.sighting_type.code().to_string(),
        "from": ts,
        "to": ts,
        "includeAttribute": true,
    });
    if let (Some(source), Some(m)) = (&s.source, body.as_object_mut()) {
        m.insert("source".into(), Value::String(source.clone()));
    }
    let path = match &s.target {
        Target::Attribute(uuid) => {
            if let Some(m) = body.as_object_mut() {
                m.insert("uuid".into(), Value::String(uuid.clone()));
            }
            "sightings/restSearch/attribute"
        }
        Target::Value { event_uuids } => {
            if let Some(m) = body.as_object_mut() {
                m.insert("uuid".into(), json!(event_uuids));
            }
            "sightings/restSearch/event"
        }
    };
    (path, body)
}

/// The restSearch for older MISP releases, which find sightings by numeric attribute
/// id only: `restSearch/attribute` with `id` (one, or a list), same filters.
pub fn search_request_by_ids(s: &Sighting, ids: &[String]) -> (&'static str, Value) {
    let (_, mut body) = search_request(s);
    if let Some(m) = body.as_object_mut() {
        m.remove("uuid");
        let id = match ids {
            [one] => Value::String(one.clone()),
            many => json!(many),
        };
        m.insert("id".into(), id);
    }
    ("sightings/restSearch/attribute", body)
}

/// The numeric ids of the attributes an `attributes/restSearch` answer lists that
/// this sighting lands on: the attribute by UUID, or the value within the row's
/// events. Accepts `{"response": {"Attribute": […]}}`, `{"Attribute": […]}` or `[…]`.
pub fn attribute_ids(s: &Sighting, answer: &Value) -> Vec<String> {
    let list = answer
        .get("response")
        .unwrap_or(answer)
        .get("Attribute")
        .or(Some(answer))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for a in &list {
        let a = a.get("Attribute").unwrap_or(a);
        let text = |k: &str| match a.get(k) {
            Some(Value::String(v)) => Some(v.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let Some(id) = text("id") else { continue };
        let ours = match &s.target {
            Target::Attribute(uuid) => text("uuid").is_some_and(|u| u.eq_ignore_ascii_case(uuid)),
            Target::Value { event_uuids } => {
                let event = text("event_uuid").or_else(|| {
                    a.get("Event")
                        .and_then(|e| e.get("uuid"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
                text("value").is_some_and(|v| v.eq_ignore_ascii_case(&s.indicator))
                    && (event_uuids.is_empty()
                        || event.is_some_and(|e| {
                            event_uuids.iter().any(|u| u.eq_ignore_ascii_case(&e))
                        }))
            }
        };
        if ours && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Does a restSearch answer hold this sighting? Accepts `[…]` or `{"response": […]}`,
/// items flat or under `"Sighting"`; numbers as strings or numbers.
pub fn search_finds(s: &Sighting, answer: &Value) -> bool {
    search_count(s, answer) > 0
}

/// How many of this row's sightings a restSearch answer holds: the matching items
/// (our time, type and source, our attribute or value), counted per attribute, the
/// largest count (a by-value sighting lands once on each attribute of the value).
pub fn search_count(s: &Sighting, answer: &Value) -> u64 {
    let items = match answer {
        Value::Array(a) => a.as_slice(),
        Value::Object(o) => match o.get("response") {
            Some(Value::Array(a)) => a.as_slice(),
            _ => &[],
        },
        _ => &[],
    };
    let ts = s.last_seen.timestamp();
    let mut per_attribute: std::collections::HashMap<String, u64> = Default::default();
    for item in items {
        let it = item.get("Sighting").unwrap_or(item);
        let num = |k: &str| match it.get(k) {
            Some(Value::String(v)) => v.trim().parse::<i64>().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        let text = |k: &str| it.get(k).and_then(Value::as_str).map(str::to_string);
        let attr = |k: &str| {
            text(k).or_else(|| {
                it.get("Attribute")
                    .and_then(|a| a.get(k.trim_start_matches("attribute_")))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        };
        if num("date_sighting") != Some(ts)
            || num("type") != Some(i64::from(s.sighting_type.code()))
        {
            continue;
        }
        let source = text("source").unwrap_or_default();
        if source != s.source.clone().unwrap_or_default() {
            continue;
        }
        let ours = match &s.target {
            Target::Attribute(uuid) => {
                attr("attribute_uuid").is_none_or(|u| u.eq_ignore_ascii_case(uuid))
            }
            Target::Value { .. } => {
                attr("attribute_value").is_none_or(|v| v.eq_ignore_ascii_case(&s.indicator))
            }
        };
        if ours {
            let which = attr("attribute_uuid")
                .or_else(|| num("attribute_id").map(|n| n.to_string()))
                .unwrap_or_default();
            *per_attribute.entry(which).or_default() += 1;
        }
    }
    per_attribute.values().copied().max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::Kind;
    use crate::share::sighting::SightingType;
    use chrono::{TimeZone, Utc};

    fn sighting(target: Target, source: Option<&str>) -> Sighting {
        let t = |s| Utc.timestamp_opt(s, 0).single().expect("valid");
        Sighting::new(
            "evil.com",
            Kind::Domain,
            target,
            SightingType::Sighting,
            3,
            t(1_700_000_000),
            t(1_700_000_100),
            source,
            "circl",
        )
    }

    #[test]
    fn payload_by_uuid() {
        let s = sighting(Target::Attribute("a-uuid".into()), Some("ACME"));
        assert_eq!(
            add_payload(&s),
            json!({"uuid": "a-uuid", "type": "0", "source": "ACME",
                   "timestamp": "1700000100", "date_sighting": "1700000100"})
        );
    }

    #[test]
    fn payload_by_value_is_restricted_to_events_and_anonymous() {
        let s = sighting(
            Target::Value {
                event_uuids: vec!["e1".into(), "e2".into()],
            },
            None,
        );
        assert_eq!(
            add_payload(&s),
            json!({"value": "evil.com", "filters": {"uuid": ["e1", "e2"]}, "type": "0",
                   "timestamp": "1700000100", "date_sighting": "1700000100"})
        );
    }

    #[test]
    fn search_matches_only_our_aggregate() {
        let s = sighting(Target::Attribute("a-uuid".into()), Some("ACME"));
        let (path, body) = search_request(&s);
        assert_eq!(path, "sightings/restSearch/attribute");
        assert_eq!(body["uuid"], "a-uuid");
        let hit = json!({"Sighting": {"date_sighting": "1700000100", "type": "0",
                          "source": "ACME", "attribute_uuid": "a-uuid"}});
        assert!(search_finds(&s, &json!([hit.clone()])));
        assert!(search_finds(&s, &json!({"response": [hit]})));
        let other_time = json!([{"date_sighting": 1700000099, "type": 0, "source": "ACME"}]);
        assert!(!search_finds(&s, &other_time));
        let other_source = json!([{"date_sighting": "1700000100", "type": "0", "source": "X"}]);
        assert!(!search_finds(&s, &other_source));
        assert!(!search_finds(&s, &json!({"response": []})));
        let anon = sighting(
            Target::Value {
                event_uuids: vec!["e1".into()],
            },
            None,
        );
        let hit = json!([{"date_sighting": "1700000100", "type": "0", "source": "",
                          "attribute_value": "EVIL.com"}]);
        assert!(search_finds(&anon, &hit));
        let miss = json!([{"date_sighting": "1700000100", "type": "0", "source": "",
                           "attribute_value": "other.com"}]);
        assert!(!search_finds(&anon, &miss));
    }
}
