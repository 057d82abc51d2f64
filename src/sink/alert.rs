//! Alerts as JSON lines with Elastic Common Schema fields.
//!
//! One alert per log line that matched: `event.kind: "event"` with
//! `event.category: ["threat"]` (the log event, enriched; `alert` is kept for
//! confirmed correlations), the line's place (`log.file.path`, `log.offset`,
//! `tripline.line_number`), the line itself in `message` (cut at
//! [`MESSAGE_MAX_BYTES`]), and `threat.enrichments`: one entry per indicator with
//! `matched.*`, `indicator.*` and a `tripline` block listing every source that holds
//! the indicator.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::index::{Index, WarninglistMode};
use crate::intel::model::ecs_type_for;
use crate::intel::Tlp;
use crate::matcher::Hit;

/// `message` is cut at this many bytes (on a character boundary).
pub const MESSAGE_MAX_BYTES: usize = 8 * 1024;

/// Cuts `line` to [`MESSAGE_MAX_BYTES`] and makes it text (invalid UTF-8 replaced).
pub fn message(line: &[u8]) -> String {
    let cut = &line[..line.len().min(MESSAGE_MAX_BYTES)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if line.len() > MESSAGE_MAX_BYTES {
        // A multi-byte character cut in two shows as U+FFFD at the end; drop it.
        while s.ends_with('\u{FFFD}') && !line.ends_with("\u{FFFD}".as_bytes()) {
            s.pop();
        }
    }
    s
}

/// One enrichment per hit, in hit order; `metas` are the ones valid at the event time.
pub fn enrichment(index: &Index, hit: &Hit, metas: &[u32]) -> Value {
    let id = hit.id;
    let kind = id.kind();
    let first = metas.first().map(|&m| index.meta(m));
    let misp_type = first.map_or("", |m| index.string(m.misp_type));
    let tlp: Option<Tlp> = metas
        .iter()
        .filter_map(|&m| index.tlp_of(index.meta(m)))
        .max();
    let provider = first
        .and_then(|m| index.sources.get(m.source as usize))
        .map(|s| s.provider.clone().unwrap_or_else(|| s.name.clone()));
    let sources: Vec<Value> = metas.iter().map(|&m| source_entry(index, m)).collect();

    let mut indicator = Map::new();
    indicator.insert("type".into(), json!(ecs_type_for(kind, misp_type)));
    indicator.insert("name".into(), json!(index.value(id)));
    if let Some(p) = provider {
        indicator.insert("provider".into(), json!(p));
    }
    if let Some(t) = tlp {
        indicator.insert("marking".into(), json!({ "tlp": t.as_str() }));
    }
    let mut tripline = Map::new();
    tripline.insert("kind".into(), json!(kind.name()));
    if index.warninglist_mode() == WarninglistMode::Flag {
        if let Some(list) = index.warninglist_of(id) {
            tripline.insert("warninglisted".into(), json!(list));
        }
    }
    tripline.insert("sources".into(), Value::Array(sources));
    json!({
        "matched": {
            "atomic": hit.atomic,
            "type": "indicator_match_rule",
        },
        "indicator": Value::Object(indicator),
        "tripline": Value::Object(tripline),
    })
}

fn source_entry(index: &Index, meta_id: u32) -> Value {
    let meta = index.meta(meta_id);
    let mut o = Map::new();
    if let Some(src) = index.sources.get(meta.source as usize) {
        o.insert("name".into(), json!(src.name));
        o.insert("format".into(), json!(src.format));
        if let Some(p) = &src.provider {
            o.insert("provider".into(), json!(p));
        }
    }
    let event = meta.event.and_then(|e| index.events.get(e as usize));
    let mut tags: Vec<&str> = Vec::new();
    if let Some(ev) = event {
        let mut e = Map::new();
        if let Some(u) = &ev.uuid {
            e.insert("uuid".into(), json!(u));
        }
        if let Some(i) = &ev.info {
            e.insert("info".into(), json!(i));
        }
        if let Some(t) = ev.threat_level {
            e.insert("threat_level".into(), json!(t));
        }
        if let Some(o) = &ev.org {
            e.insert("org".into(), json!(o));
        }
        if let Some(r) = &ev.reference {
            o.insert("reference".into(), json!(r));
        }
        o.insert("event".into(), Value::Object(e));
        tags.extend(ev.tags.iter().map(|t| t.as_str()));
    }
    let mut a = Map::new();
    if let Some(u) = &meta.attr_uuid {
        a.insert("uuid".into(), json!(u));
    }
    a.insert("type".into(), json!(index.string(meta.misp_type)));
    if let Some(c) = meta.category {
        a.insert("category".into(), json!(index.string(c)));
    }
    a.insert("to_ids".into(), json!(meta.to_ids));
    if let Some(p) = meta.port {
        a.insert("port".into(), json!(p));
    }
    if let Some(d) = meta.distribution {
        a.insert("distribution".into(), json!(d));
    }
    o.insert("attribute".into(), Value::Object(a));
    tags.extend(index.tags(meta.tags));
    tags.sort_unstable();
    tags.dedup();
    if !tags.is_empty() {
        o.insert("tags".into(), json!(tags));
    }
    if let Some(t) = index.tlp_of(meta) {
        o.insert("tlp".into(), json!(t.as_str()));
    }
    o.insert("first_seen".into(), time_json(meta.first_seen));
    o.insert("last_seen".into(), time_json(meta.last_seen));
    o.retain(|_, v| !v.is_null());
    Value::Object(o)
}

fn time_json(t: Option<i64>) -> Value {
    t.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map_or(Value::Null, |d| {
            json!(d.to_rfc3339_opts(SecondsFormat::Secs, true))
        })
}

/// Where the alert's `@timestamp` came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// The line's own time field, as its format defines it (see `decode`).
    Event,
    /// The line gives no readable time of its own: the time it was read.
    Read,
}

/// One alert: a log line that matched, enriched (ECS). Built once, from the line's
/// origin, by the emitter (`crate::emit`); fields are declared in key order, so the
/// JSON is the same as a sorted map's.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    #[serde(rename = "@timestamp")]
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Address>,
    pub event: EventBlock,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Named>,
    #[serde(skip_serializing_if = "LogBlock::is_empty")]
    pub log: LogBlock,
    /// The line, cut at [`MESSAGE_MAX_BYTES`].
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<Named>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Address>,
    pub threat: Threat,
    pub tripline: AlertTripline,
}

#[derive(Clone, Debug, Serialize)]
pub struct Address {
    pub ip: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Named {
    pub name: String,
}

/// ECS `event.*`: the log event, enriched (`kind: event`); `alert` is kept for
/// confirmed correlations.
#[derive(Clone, Debug, Serialize)]
pub struct EventBlock {
    pub category: [&'static str; 1],
    pub kind: &'static str,
    #[serde(rename = "type")]
    pub kind_type: [&'static str; 1],
}

/// ECS `log.*`: the file and byte offset of the line, or the syslog peer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LogBlock {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<LogFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syslog: Option<SyslogPeer>,
}

impl LogBlock {
    pub fn is_empty(&self) -> bool {
        self.file.is_none() && self.offset.is_none() && self.syslog.is_none()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LogFile {
    pub path: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SyslogPeer {
    pub peer: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Threat {
    /// One per indicator the line matched, in hit order (see [`enrichment`]).
    pub enrichments: Vec<Value>,
}

/// tripline's own fields about the line.
#[derive(Clone, Debug, Serialize)]
pub struct AlertTripline {
    /// The decoded layout (`decode::Format::name`).
    pub format: &'static str,
    /// 1-based line number in its file (or stdin), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_number: Option<u64>,
    /// The configured source that read the line (sidecar only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Alerts for the same indicator and host held back by the throttle since the last
    /// one written (sidecar only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled: Option<u64>,
    pub time_source: TimeSource,
}

/// Formats a time as alerts do (RFC 3339, UTC, `Z`, fractions only when present).
pub fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Adds what decoding says to enrichment `e`: the field that held the match
/// (`matched.field`) and whether it was a source or a destination
/// (`tripline.seen_as`): a MISP `ip-src` attribute seen as a destination still
/// matches, and the alert says where it was seen.
pub fn add_field(e: &mut Value, event: &crate::decode::Event, span: Option<(usize, usize)>) {
    let Some(f) = span.and_then(|s| event.field_at(s)) else {
        return;
    };
    e["matched"]["field"] = json!(f.name);
    if f.role != crate::decode::Role::Other {
        e["tripline"]["seen_as"] = json!(f.role.name());
    }
}

/// The alert for a confirmed correlation: `event.kind: "alert"`, the rule's id, title
/// and level, and the matches that confirmed it. Local only: it names hosts and
/// observables; sightings are built separately and carry none of this.
pub fn confirmation_alert(c: &crate::correlate::Confirmation) -> Value {
    let mut indicators: Vec<&str> = c
        .observations
        .iter()
        .map(|o| o.indicator.as_str())
        .collect();
    indicators.sort_unstable();
    indicators.dedup();
    let mut sources: Vec<&str> = c
        .observations
        .iter()
        .flat_map(|o| o.provenance.iter().map(|p| p.source.as_str()))
        .collect();
    sources.sort_unstable();
    sources.dedup();
    let matches: Vec<Value> = c
        .observations
        .iter()
        .map(|o| {
            json!({
                "@timestamp": o.time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                "indicator": o.indicator,
                "type": o.kind.name(),
                "atomic": o.atomic,
                "host": o.host,
                "log_source": o.log_source,
            })
        })
        .collect();
    let group: serde_json::Map<String, Value> =
        c.group.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "@timestamp": c.last_seen.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "event": { "kind": "alert", "category": ["threat"], "type": ["indicator"],
                   "start": c.first_seen.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                   "end": c.last_seen.to_rfc3339_opts(SecondsFormat::AutoSi, true) },
        "rule": { "id": c.rule_id, "name": c.rule_title },
        "tripline": {
            "level": c.level,
            "group": group,
            "indicators": indicators,
            "intel_sources": sources,
            "count": c.observations.len(),
            "matches": matches,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_cut_on_a_char_boundary() {
        let mut line = vec![b'a'; MESSAGE_MAX_BYTES - 1];
        line.extend_from_slice("é and more".as_bytes());
        let m = message(&line);
        assert_eq!(m.len(), MESSAGE_MAX_BYTES - 1);
        assert!(m.bytes().all(|b| b == b'a'));
        assert_eq!(message(b"x\xffy"), "x\u{FFFD}y");
    }
}
