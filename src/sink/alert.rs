//! Alerts as JSON lines with Elastic Common Schema fields.
//!
//! One alert per log line that matched: `event.kind: "event"` with
//! `event.category: ["threat"]` (the log event, enriched; `alert` is kept for
//! confirmed correlations), the line's place (`log.file.path`, `tripline.offset`,
//! `tripline.line_number`), the line itself in `message` (cut at
//! [`MESSAGE_MAX_BYTES`]), and `threat.enrichments`: one entry per indicator with
//! ECS `matched.*` and `indicator.*` only. tripline's own record of each enrichment
//! (canonical value, kind, where it was seen, every source that holds it) is
//! `tripline.enrichments[i]`, at the same index: every field outside the top-level
//! `tripline` object is an ECS field (`tests/integration/ecs.rs` checks each against
//! the ECS definitions).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::index::{Index, WarninglistMode};
use crate::intel::canon::{refang, url_host};
use crate::intel::model::ecs_type_for;
use crate::intel::{Kind, Tlp};
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

/// One indicator a line matched: its ECS enrichment (`threat.enrichments[i]`) and
/// tripline's own record of it (`tripline.enrichments[i]`, at the same place).
#[derive(Clone, Debug, PartialEq)]
pub struct Enrichment {
    /// `indicator.*` and `matched.*`, ECS fields only.
    pub ecs: Value,
    /// The canonical value, kind, where it was seen, warninglist and every source.
    pub tripline: Value,
}

/// Sets `path` (dotted) in `o`, creating the objects on the way.
fn put(o: &mut Map<String, Value>, path: &str, v: Value) {
    match path.split_once('.') {
        None => {
            o.insert(path.to_string(), v);
        }
        Some((head, rest)) => {
            let child = o
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            if let Value::Object(c) = child {
                put(c, rest, v);
            }
        }
    }
}

/// The typed ECS `indicator.*` fields of an indicator of `kind` (MISP type
/// `misp_type`), from its canonical text and the text the intel wrote (see the
/// README's field list): `ip` for an address (not for a prefix: ECS `ip` holds one
/// address), `url.*` for a URL (`url.full` only when the intel wrote a scheme),
/// `url.domain` for a domain or host name, `email.address`, `file.hash.*` (ECS has no
/// SHA-224), `file.name`, and `registry.*` for a MISP `regkey`.
pub fn typed_fields(
    kind: Kind,
    misp_type: &str,
    canonical: &str,
    written: &str,
    o: &mut Map<String, Value>,
) {
    let plain = refang(written.trim()).into_owned();
    match kind {
        Kind::Ipv4 | Kind::Ipv6 => {
            if let Ok(ip) = canonical.parse::<std::net::IpAddr>() {
                put(o, "ip", json!(ip.to_string()));
            }
        }
        Kind::Domain | Kind::Hostname => put(o, "url.domain", json!(canonical)),
        Kind::Url => url_fields(canonical, written, &plain, o),
        Kind::Email => put(o, "email.address", json!(plain)),
        Kind::Md5 => put(o, "file.hash.md5", json!(canonical)),
        Kind::Sha1 => put(o, "file.hash.sha1", json!(canonical)),
        Kind::Sha256 => put(o, "file.hash.sha256", json!(canonical)),
        Kind::Sha384 => put(o, "file.hash.sha384", json!(canonical)),
        Kind::Sha512 => put(o, "file.hash.sha512", json!(canonical)),
        Kind::Sha224 => {}
        Kind::Filename => {
            let name = plain.rsplit(['/', '\\']).next().unwrap_or(&plain).trim();
            put(o, "file.name", json!(name));
        }
        Kind::Regkey | Kind::RegkeyValue => registry_fields(&plain, o),
        Kind::Literal => {
            if matches!(misp_type, "regkey" | "regkey|value") {
                registry_fields(&plain, o);
            }
        }
    }
}

/// `url.*` from a canonical URL (`host[:port]/path[?query]`) and the intel's text.
fn url_fields(canonical: &str, written: &str, plain: &str, o: &mut Map<String, Value>) {
    put(o, "url.original", json!(written.trim()));
    if let Some((scheme, _)) = plain.split_once("://") {
        if !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+')
        {
            put(o, "url.full", json!(plain));
            put(o, "url.scheme", json!(scheme.to_ascii_lowercase()));
        }
    }
    let end = canonical.find(['/', '?']).unwrap_or(canonical.len());
    let authority = &canonical[..end];
    // ECS: an IPv6 literal keeps its brackets in `url.domain`.
    let host = url_host(canonical);
    if authority.starts_with('[') {
        put(o, "url.domain", json!(format!("[{host}]")));
    } else {
        put(o, "url.domain", json!(host));
    }
    let after_host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => authority.split_once(':').map_or("", |(_, p)| p),
    };
    let port = after_host.trim_start_matches(':').parse::<u16>().ok();
    if let Some(p) = port {
        put(o, "url.port", json!(p));
    }
    let rest = &canonical[end..];
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if !path.is_empty() {
        put(o, "url.path", json!(path));
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        put(o, "url.query", json!(q));
    }
}

/// `registry.*` from a key path (`HKLM\Software\Run`): the path, the hive by its ECS
/// short name and the hive-relative key.
fn registry_fields(path: &str, o: &mut Map<String, Value>) {
    let path = path.split('|').next().unwrap_or(path).trim();
    put(o, "registry.path", json!(path));
    if let Some((hive, key)) = path.split_once('\\') {
        let hive = match hive.to_ascii_uppercase().as_str() {
            "HKEY_LOCAL_MACHINE" | "HKLM" => "HKLM",
            "HKEY_CURRENT_USER" | "HKCU" => "HKCU",
            "HKEY_USERS" | "HKU" => "HKU",
            "HKEY_CLASSES_ROOT" | "HKCR" => "HKCR",
            "HKEY_CURRENT_CONFIG" | "HKCC" => "HKCC",
            _ => return,
        };
        put(o, "registry.hive", json!(hive));
        put(o, "registry.key", json!(key));
    }
}

/// One enrichment per hit, in hit order; `metas` are the ones valid at the event
/// time; `occurred` is the alert's `@timestamp` (`matched.occurred`).
pub fn enrichment(index: &Index, hit: &Hit, metas: &[u32], occurred: &str) -> Enrichment {
    let id = hit.id;
    let kind = id.kind();
    let first = metas.first().map(|&m| index.meta(m));
    let misp_type = first.map_or("", |m| index.string(m.misp_type));
    let tlp: Option<Tlp> = metas
        .iter()
        .filter_map(|&m| index.tlp_of(index.meta(m)))
        .max();
    // The source's name (as configured, or its file name): the community the
    // indicator came from and its sightings go back to. The organisation that wrote
    // it (MISP `Orgc`, a STIX identity) is in `tripline.enrichments[].sources[]`.
    let provider = first
        .and_then(|m| index.sources.get(m.source as usize))
        .map(|s| s.name.clone());
    let sources: Vec<Value> = metas.iter().map(|&m| source_entry(index, m)).collect();
    let all: Vec<&crate::intel::Meta> = metas.iter().map(|&m| index.meta(m)).collect();
    let event = all
        .iter()
        .find_map(|m| m.event.and_then(|e| index.events.get(e as usize)));

    let canonical = index.value(id);
    let written = index.written(id);
    let mut indicator = Map::new();
    indicator.insert("type".into(), json!(ecs_type_for(kind, misp_type)));
    indicator.insert("name".into(), json!(written));
    if let Some(p) = provider {
        indicator.insert("provider".into(), json!(p));
    }
    if let Some(t) = tlp {
        put(&mut indicator, "marking.tlp", json!(t.as_str()));
    }
    typed_fields(kind, misp_type, canonical, written, &mut indicator);
    let first_seen = all.iter().filter_map(|m| m.first_seen).min();
    let last_seen = all.iter().filter_map(|m| m.last_seen).max();
    let modified = all.iter().filter_map(|m| m.modified).max();
    for (name, t) in [
        ("first_seen", first_seen),
        ("last_seen", last_seen),
        ("modified_at", modified),
    ] {
        let v = time_json(t);
        if !v.is_null() {
            indicator.insert(name.into(), v);
        }
    }
    if let Some(p) = all.iter().find_map(|m| m.port) {
        indicator.insert("port".into(), json!(p));
    }
    if let Some(r) = event.and_then(|e| e.reference.as_ref()) {
        indicator.insert("reference".into(), json!(r));
    }
    if let Some(i) = event.and_then(|e| e.info.as_ref()) {
        indicator.insert("description".into(), json!(i));
    }

    let mut tripline = Map::new();
    tripline.insert("indicator".into(), json!(canonical));
    tripline.insert("kind".into(), json!(kind.name()));
    if index.warninglist_mode() == WarninglistMode::Flag {
        if let Some(list) = index.warninglist_of(id) {
            tripline.insert("warninglisted".into(), json!(list));
        }
    }
    tripline.insert("sources".into(), Value::Array(sources));
    Enrichment {
        ecs: json!({
            "matched": {
                "atomic": hit.atomic,
                "occurred": occurred,
                "type": "indicator_match_rule",
            },
            "indicator": Value::Object(indicator),
        }),
        tripline: Value::Object(tripline),
    }
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

/// ECS `log.*`: the file of the line. Its byte offset and a syslog peer are
/// `tripline.offset` and `tripline.syslog_peer`: ECS has no field for them (`log.offset`
/// is Filebeat's, not ECS).
#[derive(Clone, Debug, Default, Serialize)]
pub struct LogBlock {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<LogFile>,
}

impl LogBlock {
    pub fn is_empty(&self) -> bool {
        self.file.is_none()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LogFile {
    pub path: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Threat {
    /// One per indicator the line matched, in hit order (see [`enrichment`]): ECS
    /// fields only.
    pub enrichments: Vec<Value>,
}

/// tripline's own fields about the line (outside every ECS object).
#[derive(Clone, Debug, Serialize)]
pub struct AlertTripline {
    /// A stable id of the alert ([`alert_id`]): the same line read again (a replay, a
    /// hunt over the same file) gets the same id. `tripline feedback false-positive
    /// --alert ID` finds the alert's indicators by it.
    pub alert_id: String,
    /// tripline's record of each enrichment, parallel to `threat.enrichments`
    /// (entry `i` is about `threat.enrichments[i]`): canonical value, kind, where it
    /// was seen, warninglist, every source.
    pub enrichments: Vec<Value>,
    /// The decoded layout (`decode::Format::name`).
    pub format: &'static str,
    /// 1-based line number in its file (or stdin), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_number: Option<u64>,
    /// The line's byte offset in its file (files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The configured source that read the line (sidecar only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `true` when every indicator of the line was reported as a false positive (each
    /// enrichment then carries its report: `tripline.enrichments[i].suppressed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<bool>,
    /// The peer (address and port) a syslog line came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syslog_peer: Option<String>,
    /// Alerts for the same indicator and host held back by the throttle since the last
    /// one written (sidecar only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled: Option<u64>,
    pub time_source: TimeSource,
}

/// The alert id of a line: 16 hex digits of a 64-bit FNV-1a hash of where the line
/// is (`place`: its file, `-` for stdin, or its syslog peer; its byte offset and line
/// number when known), its own time as the alert writes it (empty for a line with
/// no time of its own: the time of reading is no part of the line) and its text. Stable across
/// runs and versions (no random seed); it identifies, it does not protect (not a
/// secret, not collision-proof against a forger).
pub fn alert_id(
    place: &str,
    offset: Option<u64>,
    line_number: Option<u64>,
    timestamp: &str,
    line: &[u8],
) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        h ^= 0x1f;
        h = h.wrapping_mul(PRIME);
    };
    eat(place.as_bytes());
    eat(&offset.unwrap_or(u64::MAX).to_le_bytes());
    eat(&line_number.unwrap_or(u64::MAX).to_le_bytes());
    eat(timestamp.as_bytes());
    eat(line);
    format!("{h:016x}")
}

impl Alert {
    /// Marks enrichment `i` as the indicator of a reported false positive (`mark`: the
    /// report's id, reason and time).
    pub fn mark_suppressed(&mut self, i: usize, mark: Value) {
        if let Some(Value::Object(o)) = self.tripline.enrichments.get_mut(i) {
            o.insert("suppressed".into(), mark);
        }
    }

    /// Keeps only the enrichments `i` with `keep[i]` (both `threat.enrichments` and
    /// `tripline.enrichments`, which stay parallel).
    pub fn retain_enrichments(&mut self, keep: &[bool]) {
        let mut i = 0;
        self.threat.enrichments.retain(|_| {
            i += 1;
            keep.get(i - 1).copied().unwrap_or(true)
        });
        let mut i = 0;
        self.tripline.enrichments.retain(|_| {
            i += 1;
            keep.get(i - 1).copied().unwrap_or(true)
        });
    }
}

/// Formats a time as alerts do (RFC 3339, UTC, `Z`, fractions only when present).
pub fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Adds what decoding says to enrichment `e` of a hit of `kind`: the field that held
/// the match (`matched.field`, its ECS name where ECS has one, see
/// [`ecs_name`](crate::decode::ecs_name), else the format's own name) and whether it
/// was a source or a destination (`tripline.enrichments[i].seen_as`): a MISP `ip-src`
/// attribute seen as a destination still matches, and the alert says where it was
/// seen.
pub fn add_field(
    e: &mut Enrichment,
    event: &crate::decode::Event,
    span: Option<(usize, usize)>,
    kind: Kind,
) {
    let Some(f) = span.and_then(|s| event.field_at(s)) else {
        return;
    };
    let ip = matches!(kind, Kind::Ipv4 | Kind::Ipv6);
    let name = crate::decode::ecs_name(f, ip).unwrap_or(&f.name);
    e.ecs["matched"]["field"] = json!(name);
    if f.role != crate::decode::Role::Other {
        e.tripline["seen_as"] = json!(f.role.name());
    }
}

/// The alert for a confirmed correlation: `event.kind: "alert"`, the rule's id, title
/// and level, and the matches that confirmed it. Shaped as line alerts are: one
/// `threat.enrichments` entry per distinct indicator (its first match's `atomic` and
/// time; `indicator.name` is the canonical value, as the rules group by it), with
/// tripline's record at the same place in `tripline.enrichments`. Local only: it names
/// hosts and observables; sightings are built separately and carry none of this.
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
    let mut ecs = Vec::new();
    let mut ours = Vec::new();
    let mut seen: Vec<(&str, Kind)> = Vec::new();
    for o in &c.observations {
        if seen.contains(&(o.indicator.as_str(), o.kind)) {
            continue;
        }
        seen.push((o.indicator.as_str(), o.kind));
        let first = o.provenance.first();
        let source_type = first.map_or("", |p| p.source_type.as_str());
        let mut indicator = Map::new();
        indicator.insert("type".into(), json!(ecs_type_for(o.kind, source_type)));
        indicator.insert("name".into(), json!(o.indicator));
        if let Some(p) = first {
            indicator.insert("provider".into(), json!(p.source));
        }
        if let Some(t) = o.provenance.iter().filter_map(|p| p.tlp).max() {
            put(&mut indicator, "marking.tlp", json!(t.as_str()));
        }
        typed_fields(
            o.kind,
            source_type,
            &o.indicator,
            &o.indicator,
            &mut indicator,
        );
        ecs.push(json!({
            "indicator": Value::Object(indicator),
            "matched": {
                "atomic": o.atomic,
                "occurred": time_text(o.time),
                "type": "indicator_match_rule",
            },
        }));
        ours.push(json!({ "indicator": o.indicator, "kind": o.kind.name() }));
    }
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
        "threat": { "enrichments": ecs },
        "tripline": {
            "enrichments": ours,
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
    use crate::index::{BuildOptions, Index};
    use crate::intel::warninglist::Warninglists;
    use crate::intel::{IntelStore, Source, StoreOptions};

    /// An index of one source holding `values` (kind, text as written).
    fn index_of(values: &[(Kind, &str)]) -> Index {
        let mut store = IntelStore::new(StoreOptions::default());
        let source = store.add_source(Source {
            name: "t".into(),
            format: "list",
            location: "t.txt".into(),
            provider: None,
        });
        for (kind, value) in values {
            let misp_type = store.intern(kind.default_misp_type());
            let meta = store
                .meta_id(crate::intel::Meta {
                    source,
                    misp_type,
                    to_ids: true,
                    ..Default::default()
                })
                .expect("an included meta");
            store.add_typed(*kind, value, meta, String::new);
        }
        Index::build(store, &Warninglists::new(), BuildOptions::default())
    }

    /// The enrichment of the indicator of `kind` whose canonical text is `canonical`.
    fn enrich(index: &Index, kind: Kind, canonical: &str) -> Enrichment {
        let id = index.find_exact(kind, canonical).expect("indicator loaded");
        let hit = Hit {
            id,
            atomic: canonical.to_string(),
            span: None,
        };
        enrichment(index, &hit, index.metas_of(id), "2024-05-01T10:00:00Z")
    }

    #[test]
    fn indicator_name_is_as_in_the_intel() {
        let index = index_of(&[
            (Kind::Url, "https://Evil.example/Login?x=1"),
            (Kind::Filename, "Invoice.PDF.exe"),
        ]);
        let e = enrich(&index, Kind::Url, "evil.example/Login?x=1");
        assert_eq!(e.ecs["indicator"]["name"], "https://Evil.example/Login?x=1");
        assert_eq!(e.tripline["indicator"], "evil.example/Login?x=1");
        let e = enrich(&index, Kind::Filename, "invoice.pdf.exe");
        assert_eq!(e.ecs["indicator"]["name"], "Invoice.PDF.exe");
        assert_eq!(e.ecs["indicator"]["file"]["name"], "Invoice.PDF.exe");
    }

    #[test]
    fn enrichment_has_no_custom_object() {
        let index = index_of(&[(Kind::Domain, "evil.example"), (Kind::Ipv4, "198.51.100.7")]);
        for (kind, v) in [(Kind::Domain, "evil.example"), (Kind::Ipv4, "198.51.100.7")] {
            let e = enrich(&index, kind, v);
            let keys: Vec<&String> = e.ecs.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["indicator", "matched"]);
            assert!(e.ecs["indicator"].get("tripline").is_none());
            assert!(e.ecs["matched"].get("tripline").is_none());
            assert_eq!(e.ecs["matched"]["occurred"], "2024-05-01T10:00:00Z");
            assert_eq!(e.tripline["sources"][0]["name"], "t");
        }
    }

    #[test]
    fn typed_indicator_fields_per_kind() {
        // (kind, misp type, canonical, written, expected typed fields)
        let cases: &[(Kind, &str, &str, &str, Value)] = &[
            (
                Kind::Ipv4,
                "ip-dst",
                "198.51.100.7",
                "198.51.100.7",
                json!({"ip": "198.51.100.7"}),
            ),
            (
                Kind::Ipv6,
                "ip-src",
                "2001:db8::1",
                "2001:DB8::1",
                json!({"ip": "2001:db8::1"}),
            ),
            // A prefix is not one address: ECS `ip` stays empty.
            (
                Kind::Ipv4,
                "ip-dst",
                "198.51.100.0/24",
                "198.51.100.0/24",
                json!({}),
            ),
            (
                Kind::Domain,
                "domain",
                "evil.example",
                "EVIL.example",
                json!({"url": {"domain": "evil.example"}}),
            ),
            (
                Kind::Hostname,
                "hostname",
                "a.evil.example",
                "a.evil.example",
                json!({"url": {"domain": "a.evil.example"}}),
            ),
            (
                Kind::Url,
                "url",
                "evil.example:8080/a/b?q=1",
                "hxxps://evil[.]example:8080/a/b?q=1",
                json!({"url": {"domain": "evil.example", "full": "https://evil.example:8080/a/b?q=1",
                    "original": "hxxps://evil[.]example:8080/a/b?q=1", "path": "/a/b", "port": 8080,
                    "query": "q=1", "scheme": "https"}}),
            ),
            // No scheme in the intel: no `url.full`.
            (
                Kind::Url,
                "url",
                "evil.example/x",
                "evil.example/x",
                json!({"url": {"domain": "evil.example", "original": "evil.example/x", "path": "/x"}}),
            ),
            (
                Kind::Url,
                "url",
                "[2001:db8::1]:81/",
                "http://[2001:db8::1]:81/",
                json!({"url": {"domain": "[2001:db8::1]", "full": "http://[2001:db8::1]:81/",
                    "original": "http://[2001:db8::1]:81/", "path": "/", "port": 81, "scheme": "http"}}),
            ),
            (
                Kind::Email,
                "email-src",
                "bad@evil.example",
                "Bad@evil.example",
                json!({"email": {"address": "Bad@evil.example"}}),
            ),
            (
                Kind::Md5,
                "md5",
                "44d88612fea8a8f36de82e1278abb02f",
                "44D88612FEA8A8F36DE82E1278ABB02F",
                json!({"file": {"hash": {"md5": "44d88612fea8a8f36de82e1278abb02f"}}}),
            ),
            (
                Kind::Sha1,
                "sha1",
                "aa",
                "aa",
                json!({"file": {"hash": {"sha1": "aa"}}}),
            ),
            (
                Kind::Sha256,
                "sha256",
                "bb",
                "bb",
                json!({"file": {"hash": {"sha256": "bb"}}}),
            ),
            (
                Kind::Sha384,
                "sha384",
                "cc",
                "cc",
                json!({"file": {"hash": {"sha384": "cc"}}}),
            ),
            (
                Kind::Sha512,
                "sha512",
                "dd",
                "dd",
                json!({"file": {"hash": {"sha512": "dd"}}}),
            ),
            (Kind::Sha224, "sha224", "ee", "ee", json!({})),
            (
                Kind::Filename,
                "filename",
                "evil.exe",
                "%APPDATA%\\x\\Evil.exe",
                json!({"file": {"name": "Evil.exe"}}),
            ),
            (
                Kind::Literal,
                "regkey",
                "HKEY_LOCAL_MACHINE\\Software\\Run\\x",
                "HKEY_LOCAL_MACHINE\\Software\\Run\\x",
                json!({"registry": {"hive": "HKLM", "key": "Software\\Run\\x",
                    "path": "HKEY_LOCAL_MACHINE\\Software\\Run\\x"}}),
            ),
            (
                Kind::Literal,
                "mutex",
                "Global\\Mutex1",
                "Global\\Mutex1",
                json!({}),
            ),
        ];
        for (kind, misp_type, canonical, written, want) in cases {
            let mut o = Map::new();
            typed_fields(*kind, misp_type, canonical, written, &mut o);
            assert_eq!(Value::Object(o), *want, "{kind} {written}");
        }
    }

    #[test]
    fn alert_ids_are_stable_and_tell_lines_apart() {
        let id = alert_id(
            "/var/log/a",
            Some(10),
            Some(2),
            "2024-05-01T10:00:00Z",
            b"x",
        );
        // Pinned: the id must not change between versions (analysts keep them); the
        // value is FNV-1a 64 as computed independently (Python).
        assert_eq!(id, "4690864169b878a4");
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        for other in [
            alert_id(
                "/var/log/b",
                Some(10),
                Some(2),
                "2024-05-01T10:00:00Z",
                b"x",
            ),
            alert_id(
                "/var/log/a",
                Some(11),
                Some(2),
                "2024-05-01T10:00:00Z",
                b"x",
            ),
            alert_id("/var/log/a", Some(10), None, "2024-05-01T10:00:00Z", b"x"),
            alert_id(
                "/var/log/a",
                Some(10),
                Some(2),
                "2024-05-01T10:00:01Z",
                b"x",
            ),
            alert_id(
                "/var/log/a",
                Some(10),
                Some(2),
                "2024-05-01T10:00:00Z",
                b"y",
            ),
        ] {
            assert_ne!(id, other);
        }
    }

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
