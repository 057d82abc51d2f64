//! [`MispRestFetcher`]: a MISP server's REST API mirrored into a MISP-format feed
//! directory (`manifest.json` + one `<event uuid>.json` per event), which
//! [`crate::intel::load`] reads like any feed.
//!
//! One pass:
//! 1. when a reconcile is due (`reconcile_secs` since the last one, and at the first
//!    pass), `POST /events/index` with `{"minimal": true}`: every event's UUID and
//!    timestamp. Taken *before* the poll, so that at a first pass everything it lists is
//!    covered by the full pull that follows;
//! 2. the poll: `POST /attributes/restSearch` with `returnFormat: json`,
//!    `includeEventUuid`, `includeEventTags`, `deleted: [0, 1]` (deletions arrive as
//!    attributes with `deleted: true`), the source's filters (`to_ids`, `published`,
//!    `tags`, `types` as `type`, `includeDecayScore`), and, after the first pass,
//!    `attribute_timestamp: watermark − overlap_secs`. Never `timestamp`: MISP tests
//!    that one against the event timestamp too. Paged by `limit`/`page` until a page
//!    shorter than `limit` (`X-Result-Count` is never read: it is wrong with decay
//!    filters);
//! 3. the reconcile proper: every event whose index timestamp differs from the one the
//!    cursor remembers (new, changed, or synced from another instance with an *older*
//!    timestamp, which a watermark poll never sees) is fetched whole by
//!    `restSearch` with `eventid: <uuid>` (paged the same way), and that answer is
//!    authoritative for the event: attributes it no longer returns (hard-deleted, or no
//!    longer matching a filter such as `to_ids`) leave the cache. Events the index no
//!    longer lists (deleted, no longer visible) are removed, unless this pass's poll
//!    just returned them (created after the index was taken).
//!
//! Upserts are idempotent on (attribute UUID, timestamp): a newer timestamp replaces
//! the stored attribute, an older or equal one is a no-op; an attribute with
//! `deleted: true` (and a timestamp not older than the stored one) is removed, and an
//! event left without attributes loses its file. restSearch gives per attribute only
//! part of its event (`Event`: `uuid`, `info`, `distribution`, `id`, `org_id`,
//! `orgc_id`, and event tags mixed into `Tag` with `inherited` set): the event file
//! keeps that, plus the event timestamp from the index; the event `date`,
//! `threat_level_id` and `Orgc` name are not in restSearch answers and stay absent.
//! Attributes are stored as MISP sent them, less `Event`, `event_uuid` and the
//! inherited tags (which become the event's `Tag`).
//!
//! Cursor (`cursor.json`): `{"watermark": <max attribute timestamp seen>, "events":
//! {<uuid>: <event timestamp from the last index>}, "last_reconcile": <unix secs>}`.
//!
//! Invariants: nothing is written before every request of the pass has succeeded, so a
//! failed pass leaves the directory as the last good pass left it; then changed event
//! files are written (each atomically, [`super::write_atomic`]), then `manifest.json`,
//! then emptied event files are removed. A kill -9 in between leaves whole files, and
//! the next pass (from the old cursor) applies the same changes again, to the same
//! result. The API key goes only into the `Authorization` header.
//!
//! Costs: pages are parsed typed, borrowing from the page text ([`parse_page`]): each
//! attribute's members are copied once, compacted, into its stored text, and only
//! `Event` and the inherited tags are built as JSON values, once per distinct text in
//! a page. The pass holds every attribute it received, as compact JSON text (about the
//! size MISP sent), plus every event it touched, loaded from its file (typed too: the
//! attributes stay text); a first pull of N attributes holds all N until it writes. One request per page, one more per page
//! of each event changed since the last reconcile. Events untouched by a pass are not
//! read.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::{Credentials, Fetcher, PassContext, PassReport, SourceConfig, SyncError};

/// Option defaults and bounds (`[[intel.sources]]` keys of `kind = "misp"`).
pub const DEFAULT_PAGE_SIZE: u64 = 10_000;
pub const MAX_PAGE_SIZE: u64 = 50_000;
/// Subtracted from the watermark: attributes saved while the last poll ran, and small
/// clock steps on the server, are still seen (refetched, idempotently).
pub const DEFAULT_OVERLAP_SECS: i64 = 3_600;
pub const MAX_OVERLAP_SECS: i64 = 7 * 86_400;
pub const DEFAULT_RECONCILE_SECS: i64 = 86_400;
pub const MAX_RECONCILE_SECS: i64 = 30 * 86_400;

const KNOWN_OPTIONS: &[&str] = &[
    "page_size",
    "overlap_secs",
    "reconcile_secs",
    "to_ids",
    "published",
    "tags",
    "types",
    "include_decay_score",
];

/// The validated kind-specific options of a MISP source.
#[derive(Clone, Debug, PartialEq)]
pub struct MispOptions {
    pub page_size: u64,
    pub overlap_secs: i64,
    /// 0: reconcile at every pass.
    pub reconcile_secs: i64,
    pub to_ids: Option<bool>,
    pub published: Option<bool>,
    pub tags: Vec<String>,
    pub types: Vec<String>,
    pub include_decay_score: bool,
}

impl MispOptions {
    pub fn from_source(source: &SourceConfig) -> Result<MispOptions, SyncError> {
        let err = |key: &str, message: String| SyncError::Config {
            source_name: source.name.clone(),
            key: key.to_string(),
            message,
        };
        for key in source.options.keys() {
            if !KNOWN_OPTIONS.contains(&key.as_str()) {
                return Err(err(
                    key,
                    format!(
                        "unknown option for a misp source (known: {})",
                        KNOWN_OPTIONS.join(", ")
                    ),
                ));
            }
        }
        let int = |key: &str, default: i64, min: i64, max: i64| -> Result<i64, SyncError> {
            match source.options.get(key) {
                None => Ok(default),
                Some(toml::Value::Integer(n)) if (min..=max).contains(n) => Ok(*n),
                Some(v) => Err(err(
                    key,
                    format!("must be an integer from {min} to {max}, not {v}"),
                )),
            }
        };
        let boolean = |key: &str| -> Result<Option<bool>, SyncError> {
            match source.options.get(key) {
                None => Ok(None),
                Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
                Some(v) => Err(err(key, format!("must be true or false, not {v}"))),
            }
        };
        let strings = |key: &str| -> Result<Vec<String>, SyncError> {
            match source.options.get(key) {
                None => Ok(Vec::new()),
                Some(toml::Value::Array(items)) => items
                    .iter()
                    .map(|v| match v {
                        toml::Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                        other => Err(err(
                            key,
                            format!("must be a list of non-empty strings; found {other}"),
                        )),
                    })
                    .collect(),
                Some(v) => Err(err(key, format!("must be a list of strings, not {v}"))),
            }
        };
        Ok(MispOptions {
            page_size: int(
                "page_size",
                DEFAULT_PAGE_SIZE as i64,
                1,
                MAX_PAGE_SIZE as i64,
            )? as u64,
            overlap_secs: int("overlap_secs", DEFAULT_OVERLAP_SECS, 0, MAX_OVERLAP_SECS)?,
            reconcile_secs: int(
                "reconcile_secs",
                DEFAULT_RECONCILE_SECS,
                0,
                MAX_RECONCILE_SECS,
            )?,
            to_ids: boolean("to_ids")?,
            published: boolean("published")?,
            tags: strings("tags")?,
            types: strings("types")?,
            include_decay_score: boolean("include_decay_score")?.unwrap_or(false),
        })
    }

    /// The `attributes/restSearch` body for one page: everything but the page is the
    /// same for every page of one search.
    pub fn search_body(&self, page: u64, since: Option<i64>, event: Option<&str>) -> Value {
        let mut body = json!({
            "returnFormat": "json",
            "limit": self.page_size,
            "page": page,
            "includeEventUuid": true,
            "includeEventTags": true,
            "deleted": [0, 1],
        });
        let Some(o) = body.as_object_mut() else {
            return body;
        };
        if let Some(t) = since {
            o.insert("attribute_timestamp".into(), json!(t.max(0)));
        }
        if let Some(uuid) = event {
            o.insert("eventid".into(), json!(uuid));
        }
        if let Some(b) = self.to_ids {
            o.insert("to_ids".into(), json!(u8::from(b)));
        }
        if let Some(b) = self.published {
            o.insert("published".into(), json!(b));
        }
        if !self.tags.is_empty() {
            o.insert("tags".into(), json!(self.tags));
        }
        if !self.types.is_empty() {
            o.insert("type".into(), json!(self.types));
        }
        if self.include_decay_score {
            o.insert("includeDecayScore".into(), json!(true));
        }
        body
    }
}

/// What a MISP source remembers between passes (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MispCursor {
    pub watermark: Option<i64>,
    #[serde(default)]
    pub events: BTreeMap<String, i64>,
    pub last_reconcile: Option<i64>,
}

/// Fetches from a MISP server's REST API (see the module doc).
#[derive(Debug, Default)]
pub struct MispRestFetcher {}

impl MispRestFetcher {
    pub fn new() -> MispRestFetcher {
        MispRestFetcher {}
    }
}

impl Fetcher for MispRestFetcher {
    fn check_options(&self, source: &SourceConfig) -> Result<(), SyncError> {
        MispOptions::from_source(source)?;
        api_key(source)?;
        Ok(())
    }

    fn pass(&mut self, ctx: &mut PassContext<'_>) -> Result<PassReport, SyncError> {
        let source = ctx.source;
        let opts = MispOptions::from_source(source)?;
        let key = api_key(source)?;
        let mut cursor = match &*ctx.cursor {
            Value::Null => MispCursor::default(),
            v => serde_json::from_value(v.clone()).unwrap_or_else(|e| {
                tracing::warn!(source = %source.name, error = %e,
                    "Cursor unreadable; pulling everything again.");
                MispCursor::default()
            }),
        };
        let now = ctx.now.timestamp();
        let mut client = Client {
            source,
            http: ctx.client,
            base: source.url.trim_end_matches('/').to_string(),
            key: key.expose(),
            report: PassReport::default(),
        };
        let mut cache = Cache::open(ctx.data_dir, &source.name)?;

        let full = cursor.watermark.is_none();
        let reconcile_due = cursor
            .last_reconcile
            .is_none_or(|t| now.saturating_sub(t) >= opts.reconcile_secs);
        let index = if reconcile_due {
            Some(client.events_index(opts.published)?)
        } else {
            None
        };

        // The poll.
        let since = cursor
            .watermark
            .map(|w| w.saturating_sub(opts.overlap_secs));
        let mut watermark = cursor.watermark;
        let mut polled: HashSet<String> = HashSet::new();
        client.search(&opts, since, None, |page| {
            for a in page {
                watermark = Some(watermark.map_or(a.timestamp, |w| w.max(a.timestamp)));
                polled.insert(a.event_uuid.clone());
                cache.upsert(a)?;
            }
            Ok(())
        })?;

        // The reconcile.
        let mut reconciled = 0u64;
        if let Some(index) = index {
            for (uuid, ts) in &index {
                if full || cursor.events.get(uuid) == Some(ts) {
                    continue;
                }
                let mut got = Vec::new();
                client.search(&opts, None, Some(uuid), |page| {
                    got.extend(page);
                    Ok(())
                })?;
                cache.replace_event(uuid, got)?;
                reconciled += 1;
            }
            let listed: HashSet<&str> = index.keys().map(String::as_str).collect();
            for uuid in cache.known_events() {
                if !listed.contains(uuid.as_str()) && !polled.contains(&uuid) {
                    cache.remove_event(&uuid)?;
                }
            }
            for (uuid, ts) in &index {
                cache.set_event_timestamp(uuid, *ts)?;
            }
            cursor.events = index;
            cursor.last_reconcile = Some(now);
        }

        let mut report = client.report;
        cache.commit(&mut report)?;
        cursor.watermark = watermark;
        *ctx.cursor = serde_json::to_value(&cursor).unwrap_or(Value::Null);
        tracing::info!(
            source = %source.name,
            requests = report.requests,
            bytes = report.bytes_fetched,
            upserted = report.upserted,
            deleted = report.deleted,
            reconcile = reconcile_due,
            events_refetched = reconciled,
            "MISP pass done."
        );
        Ok(report)
    }
}

fn api_key(source: &SourceConfig) -> Result<&crate::net::Secret, SyncError> {
    match &source.credentials {
        Credentials::ApiKey(s) => Ok(s),
        _ => Err(SyncError::Config {
            source_name: source.name.clone(),
            key: "api_key_env".into(),
            message: "a misp source needs an API key (api_key_env or api_key_file)".into(),
        }),
    }
}

/// One attribute of a restSearch answer, checked.
#[derive(Debug)]
pub struct RestAttribute {
    pub uuid: String,
    pub timestamp: i64,
    pub deleted: bool,
    pub event_uuid: String,
    /// The part of its event the answer carried (`Event` less `uuid`, plus `Tag`
    /// from the inherited tags); shared by the attributes of a page that carry the
    /// same (the same `Event` text and inherited tags).
    pub event: Arc<Map<String, Value>>,
    /// The attribute as stored: compact JSON, without `Event`, `event_uuid` and
    /// inherited tags.
    pub json: String,
}

/// A JSON object key, borrowed from the page text unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON object as its members in order, each value left as its text.
struct RawObject<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawObject<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(24));
                while let Some(k) = map.next_key::<Key<'de>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    out.push((k.0, v));
                }
                Ok(RawObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> RawObject<'a> {
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// What a restSearch page's `response` holds.
enum Response<'a> {
    /// `{"Attribute": [...]}`.
    Attributes(Vec<RawObject<'a>>),
    /// An object without an `Attribute` list.
    NoList,
    /// `[]` (MISP answers an empty search so in some versions).
    EmptyList,
    /// Anything else.
    Other,
}

/// Visits any JSON value; what is not handled is `Self::Value::default()`-like.
macro_rules! other_scalars {
    ($other:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($other)
        }
    };
}

/// The `Attribute` member: a list of objects, or `None` for anything but a list.
struct AttributeList<'a>(Option<Vec<RawObject<'a>>>);

impl<'de> serde::Deserialize<'de> for AttributeList<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AttributeList<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of attributes")
            }
            other_scalars!(AttributeList(None));
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AttributeList<'de>, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(AttributeList(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AttributeList<'de>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(100_000));
                while let Some(a) = seq.next_element::<RawObject<'de>>()? {
                    out.push(a);
                }
                Ok(AttributeList(Some(out)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> serde::Deserialize<'de> for Response<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Response<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a restSearch response")
            }
            other_scalars!(Response::Other);
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Response<'de>, A::Error> {
                let mut out = Response::NoList;
                while let Some(k) = map.next_key::<Key<'de>>()? {
                    if k.0 == "Attribute" {
                        out = match map.next_value::<AttributeList<'de>>()?.0 {
                            Some(list) => Response::Attributes(list),
                            None => Response::NoList,
                        };
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(out)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Response<'de>, A::Error> {
                let mut n = 0usize;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(if n == 0 {
                    Response::EmptyList
                } else {
                    Response::Other
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A restSearch page: its `response` member, parsed in the same scan.
struct Page<'a>(Option<Response<'a>>);

impl<'de> serde::Deserialize<'de> for Page<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Page<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Page<'de>, A::Error> {
                let mut out = None;
                while let Some(k) = map.next_key::<Key<'de>>()? {
                    if k.0 == "response" {
                        out = Some(map.next_value::<Response<'de>>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(Page(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A scalar's value (strings, numbers, booleans and null are cheap to parse).
fn scalar(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// A string member's text.
fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let t = raw.get();
    if !t.starts_with('"') {
        return None;
    }
    serde_json::from_str::<&str>(t)
        .map(Cow::Borrowed)
        .or_else(|_| serde_json::from_str::<String>(t).map(Cow::Owned))
        .ok()
}

/// Appends `raw` (valid JSON text) without the whitespace outside strings.
fn push_compact(out: &mut String, raw: &str) {
    let bytes = raw.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
    {
        out.push_str(raw);
        return;
    }
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            out.push_str(&raw[start..i]);
            start = i + 1;
        }
    }
    out.push_str(&raw[start..]);
}

/// Appends `s` as a JSON string.
fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    }
}

/// Parses one `attributes/restSearch` page (`{"response":{"Attribute":[...]}}`);
/// `what` names the request in errors (URL and page). Typed and borrowing from
/// `body`: each attribute's members are copied (compacted) into its stored text once;
/// only `Event` and the inherited tags are built as values, once per distinct text.
pub fn parse_page(body: &str, what: &dyn Fn() -> String) -> Result<Vec<RestAttribute>, String> {
    if !body.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(body) {
            Ok(_) => format!("{}: the answer is not a JSON object", what()),
            Err(e) => format!("{}: invalid JSON: {e}", what()),
        });
    }
    let page: Page =
        serde_json::from_str(body).map_err(|e| format!("{}: invalid JSON: {e}", what()))?;
    let list = match page.0 {
        Some(Response::Attributes(list)) => list,
        Some(Response::EmptyList) => return Ok(Vec::new()),
        Some(Response::NoList) => {
            return Err(format!("{}: no \"response\".\"Attribute\" list", what()))
        }
        Some(Response::Other) | None => return Err(format!("{}: no \"response\" object", what())),
    };
    let mut events: PageEvents = Vec::new();
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            rest_attribute(a, &mut events).map_err(|m| format!("{}: Attribute[{i}]: {m}", what()))
        })
        .collect()
}

/// The event parts of a page so far: `Event` text, inherited tags' texts, the part.
type PageEvents<'p> = Vec<(&'p str, Vec<&'p str>, Arc<Map<String, Value>>)>;

fn rest_attribute<'p>(
    a: &RawObject<'p>,
    events: &mut PageEvents<'p>,
) -> Result<RestAttribute, String> {
    let uuid = a
        .get("uuid")
        .and_then(raw_str)
        .filter(|s| looks_like_uuid(s))
        .ok_or("no attribute uuid")?
        .to_ascii_lowercase();
    let timestamp = a
        .get("timestamp")
        .and_then(|v| int_of(&scalar(v)))
        .ok_or_else(|| format!("attribute {uuid}: no timestamp"))?;
    let deleted = a
        .get("deleted")
        .and_then(|v| flag(&scalar(v)))
        .unwrap_or(false);
    let event_raw = a
        .get("Event")
        .filter(|v| v.get().trim_start().starts_with('{'));
    let event_uuid = a
        .get("event_uuid")
        .and_then(raw_str)
        .map(Cow::into_owned)
        .or_else(|| {
            let e: RawObject = serde_json::from_str(event_raw?.get()).ok()?;
            e.get("uuid").and_then(raw_str).map(Cow::into_owned)
        })
        .filter(|s| looks_like_uuid(s))
        .ok_or_else(|| format!("attribute {uuid}: no event uuid (event_uuid or Event.uuid)"))?
        .to_ascii_lowercase();
    // Tags: own ones stay with the attribute, inherited ones are the event's.
    let mut own: Vec<&RawValue> = Vec::new();
    let mut inherited: Vec<&RawValue> = Vec::new();
    if let Some(tags) = a.get("Tag") {
        if let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(tags.get()) {
            for t in list {
                let is_inherited = serde_json::from_str::<RawObject>(t.get())
                    .ok()
                    .and_then(|o| o.get("inherited").map(|v| flag(&scalar(v))))
                    .flatten()
                    .unwrap_or(false);
                if is_inherited {
                    inherited.push(t);
                } else {
                    own.push(t);
                }
            }
        }
    }
    let event_text = event_raw.map_or("", |e| e.get());
    let known = events.iter().rev().find(|(e, tags, _)| {
        *e == event_text
            && tags.len() == inherited.len()
            && tags.iter().zip(&inherited).all(|(a, b)| *a == b.get())
    });
    let event = match known {
        Some((_, _, e)) => Arc::clone(e),
        None => {
            let mut event = match event_raw.map(|e| serde_json::from_str::<Value>(e.get())) {
                Some(Ok(Value::Object(e))) => e,
                _ => Map::new(),
            };
            event.remove("uuid");
            let event_tags: Vec<Value> = inherited
                .iter()
                .map(|t| {
                    let mut t = scalar(t);
                    if let Some(o) = t.as_object_mut() {
                        o.remove("inherited");
                    }
                    t
                })
                .collect();
            event.insert("Tag".into(), Value::Array(event_tags));
            let event = Arc::new(event);
            events.push((
                event_text,
                inherited.iter().map(|t| t.get()).collect(),
                Arc::clone(&event),
            ));
            event
        }
    };
    let size: usize = a.0.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum();
    let mut json = String::with_capacity(size);
    json.push('{');
    let mut first = true;
    for (k, v) in &a.0 {
        if matches!(k.as_ref(), "Event" | "event_uuid" | "Tag") {
            continue;
        }
        if !first {
            json.push(',');
        }
        first = false;
        push_json_str(&mut json, k);
        json.push(':');
        push_compact(&mut json, v.get());
    }
    if !own.is_empty() {
        if !first {
            json.push(',');
        }
        json.push_str("\"Tag\":[");
        for (i, t) in own.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            push_compact(&mut json, t.get());
        }
        json.push(']');
    }
    json.push('}');
    Ok(RestAttribute {
        uuid,
        timestamp,
        deleted,
        event_uuid,
        event,
        json,
    })
}

/// Parses and applies restSearch page bodies into a cache directory (created) and
/// writes it, as a first pull does without the HTTP: for the benchmark that compares
/// parse+apply with reading the same bytes. Returns the attributes upserted.
#[doc(hidden)]
pub fn bench_apply(bodies: &[String], dir: &Path) -> Result<u64, SyncError> {
    let io = |source| SyncError::Io {
        source_name: "bench".into(),
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut cache = Cache::open(dir, "bench")?;
    for (i, body) in bodies.iter().enumerate() {
        let what = || format!("page {}", i + 1);
        let attrs = parse_page(body, &what).map_err(|what| SyncError::Protocol {
            source_name: "bench".into(),
            what,
        })?;
        for a in attrs {
            cache.upsert(a)?;
        }
    }
    let mut report = PassReport::default();
    cache.commit(&mut report)?;
    Ok(report.upserted)
}

/// The HTTP side of a pass.
struct Client<'a> {
    source: &'a SourceConfig,
    http: &'a crate::net::HttpClient,
    base: String,
    key: &'a str,
    report: PassReport,
}

impl Client<'_> {
    fn post(&mut self, path: &str, body: &Value) -> Result<(String, String), SyncError> {
        let url = format!("{}{path}", self.base);
        let headers = [
            ("Authorization", self.key),
            ("Accept", "application/json"),
            ("Content-Type", "application/json"),
        ];
        self.report.requests += 1;
        let answer = self
            .http
            .post(&url, &headers, &body.to_string())
            .map_err(|source| SyncError::Http {
                source_name: self.source.name.clone(),
                source,
            })?;
        self.report.bytes_fetched += answer.body.len() as u64;
        Ok((crate::net::http::redact_url(&url), answer.body))
    }

    fn protocol(&self, what: String) -> SyncError {
        SyncError::Protocol {
            source_name: self.source.name.clone(),
            what,
        }
    }

    /// `events/index` (minimal): event UUID → timestamp.
    fn events_index(
        &mut self,
        published: Option<bool>,
    ) -> Result<BTreeMap<String, i64>, SyncError> {
        let mut body = json!({"minimal": true});
        if let (Some(b), Some(o)) = (published, body.as_object_mut()) {
            o.insert("published".into(), json!(b));
        }
        let (url, text) = self.post("/events/index", &body)?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| self.protocol(format!("{url}: invalid JSON: {e}")))?;
        let Value::Array(list) = value else {
            return Err(self.protocol(format!("{url}: the answer is not a list of events")));
        };
        let mut out = BTreeMap::new();
        for (i, ev) in list.iter().enumerate() {
            let uuid = ev
                .get("uuid")
                .and_then(Value::as_str)
                .filter(|s| looks_like_uuid(s));
            let ts = ev.get("timestamp").and_then(int_of);
            match (uuid, ts) {
                (Some(u), Some(t)) => {
                    out.insert(u.to_ascii_lowercase(), t);
                }
                _ => {
                    return Err(
                        self.protocol(format!("{url}: event [{i}] lacks a uuid or a timestamp"))
                    )
                }
            }
        }
        Ok(out)
    }

    /// Every page of one restSearch, handed to `each` page by page.
    fn search(
        &mut self,
        opts: &MispOptions,
        since: Option<i64>,
        event: Option<&str>,
        mut each: impl FnMut(Vec<RestAttribute>) -> Result<(), SyncError>,
    ) -> Result<(), SyncError> {
        let mut previous: Option<(String, String)> = None;
        for page in 1u64.. {
            let body = opts.search_body(page, since, event);
            let (url, text) = self.post("/attributes/restSearch", &body)?;
            let what = || format!("{url} page {page}");
            let attrs = parse_page(&text, &what).map_err(|m| self.protocol(m))?;
            let n = attrs.len() as u64;
            if n == opts.page_size {
                // A server that ignores `page` would send page 1 forever.
                let ends = (attrs[0].uuid.clone(), attrs[attrs.len() - 1].uuid.clone());
                if previous.as_ref() == Some(&ends) {
                    return Err(self.protocol(format!(
                        "{} answered the same page again: it ignores \"page\"",
                        what()
                    )));
                }
                previous = Some(ends);
            }
            each(attrs)?;
            if n < opts.page_size {
                break;
            }
        }
        Ok(())
    }
}

/// One stored attribute.
#[derive(Debug)]
struct Stored {
    timestamp: i64,
    json: String,
}

/// One event as the cache holds it while a pass runs.
#[derive(Debug, Default)]
struct CachedEvent {
    /// Event fields except `Attribute` (`uuid`, `info`, `distribution`, `Tag`, ...).
    fields: Map<String, Value>,
    attributes: BTreeMap<String, Stored>,
    /// The page's event part applied last (the next attribute sharing it is a no-op
    /// for the fields).
    applied: Option<Arc<Map<String, Value>>>,
}

/// The data directory, loaded lazily event by event, changed in memory, written by
/// [`Cache::commit`].
struct Cache<'a> {
    dir: &'a Path,
    source_name: &'a str,
    manifest: Map<String, Value>,
    manifest_changed: bool,
    /// Events with a file (listed or not in the manifest) at the start of the pass.
    on_disk: HashSet<String>,
    loaded: HashMap<String, CachedEvent>,
    dirty: HashSet<String>,
    /// Attributes added or replaced, and removed, so far.
    upserted: u64,
    deleted: u64,
}

impl<'a> Cache<'a> {
    fn open(dir: &'a Path, source_name: &'a str) -> Result<Cache<'a>, SyncError> {
        let io = |path: &Path, source: std::io::Error| SyncError::Io {
            source_name: source_name.to_string(),
            path: path.to_path_buf(),
            source,
        };
        let manifest_path = dir.join("manifest.json");
        let (manifest, manifest_changed) = match std::fs::read(&manifest_path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => (m, false),
                _ => {
                    tracing::warn!(source = %source_name, path = %manifest_path.display(),
                        "Cached manifest unreadable; rewriting it.");
                    (Map::new(), true)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Map::new(), true),
            Err(e) => return Err(io(&manifest_path, e)),
        };
        let mut on_disk = HashSet::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".json") {
                if looks_like_uuid(stem) {
                    on_disk.insert(stem.to_ascii_lowercase());
                }
            }
        }
        Ok(Cache {
            dir,
            source_name,
            manifest,
            manifest_changed,
            on_disk,
            loaded: HashMap::new(),
            dirty: HashSet::new(),
            upserted: 0,
            deleted: 0,
        })
    }

    fn io(&self, path: &Path, source: std::io::Error) -> SyncError {
        SyncError::Io {
            source_name: self.source_name.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }

    fn known_events(&self) -> Vec<String> {
        let mut all: HashSet<String> = self.on_disk.clone();
        all.extend(self.manifest.keys().map(|k| k.to_ascii_lowercase()));
        all.extend(self.loaded.keys().cloned());
        let mut v: Vec<String> = all.into_iter().collect();
        v.sort();
        v
    }

    /// The event, read from its file the first time it is touched.
    fn event(&mut self, uuid: &str) -> Result<&mut CachedEvent, SyncError> {
        if !self.loaded.contains_key(uuid) {
            let ev = if self.on_disk.contains(uuid) {
                self.read_event(uuid)?
            } else {
                let mut fields = Map::new();
                fields.insert("uuid".into(), json!(uuid));
                CachedEvent {
                    fields,
                    attributes: BTreeMap::new(),
                    applied: None,
                }
            };
            self.loaded.insert(uuid.to_string(), ev);
        }
        self.loaded
            .get_mut(uuid)
            .ok_or_else(|| SyncError::Protocol {
                source_name: self.source_name.to_string(),
                what: format!("event {uuid} vanished from the cache"),
            })
    }

    /// Reads a cached event file; one that is not a readable event is started afresh
    /// (logged): it is ours, and the server has its content.
    fn read_event(&self, uuid: &str) -> Result<CachedEvent, SyncError> {
        let path = self.dir.join(format!("{uuid}.json"));
        let text = std::fs::read_to_string(&path).map_err(|e| self.io(&path, e))?;
        // Typed: the event's fields as values, each attribute kept as its text.
        let parsed = serde_json::from_str::<RawObject>(&text).ok().and_then(|f| {
            let event: RawObject = serde_json::from_str(f.get("Event")?.get()).ok()?;
            let mut fields = Map::new();
            let mut list: Vec<&RawValue> = Vec::new();
            for (k, v) in event.0 {
                if k == "Attribute" {
                    list = serde_json::from_str(v.get()).ok()?;
                } else {
                    fields.insert(k.into_owned(), serde_json::from_str(v.get()).ok()?);
                }
            }
            Some((fields, list))
        });
        let Some((fields, list)) = parsed else {
            tracing::warn!(source = %self.source_name, path = %path.display(),
                "Cached event file unreadable; starting it afresh.");
            let mut fields = Map::new();
            fields.insert("uuid".into(), json!(uuid));
            return Ok(CachedEvent {
                fields,
                attributes: BTreeMap::new(),
                applied: None,
            });
        };
        let mut attributes = BTreeMap::new();
        for a in list {
            let Ok(o) = serde_json::from_str::<RawObject>(a.get()) else {
                continue;
            };
            let uuid = o.get("uuid").and_then(raw_str);
            let ts = o.get("timestamp").and_then(|v| int_of(&scalar(v)));
            if let (Some(u), Some(t)) = (uuid, ts) {
                let mut json = String::with_capacity(a.get().len());
                push_compact(&mut json, a.get());
                attributes.insert(u.to_ascii_lowercase(), Stored { timestamp: t, json });
            }
        }
        Ok(CachedEvent {
            fields,
            attributes,
            applied: None,
        })
    }

    /// Applies one attribute (see the module doc for the rule).
    fn upsert(&mut self, a: RestAttribute) -> Result<UpsertResult, SyncError> {
        let ev = self.event(&a.event_uuid)?;
        let mut changed = false;
        if !ev
            .applied
            .as_ref()
            .is_some_and(|e| Arc::ptr_eq(e, &a.event))
        {
            for (k, v) in a.event.iter() {
                if ev.fields.get(k) != Some(v) {
                    ev.fields.insert(k.clone(), v.clone());
                    changed = true;
                }
            }
            ev.applied = Some(Arc::clone(&a.event));
        }
        let current = ev.attributes.get(&a.uuid).map(|s| s.timestamp);
        let result = match current {
            Some(t) if t >= a.timestamp => UpsertResult::Unchanged,
            _ if a.deleted => {
                if ev.attributes.remove(&a.uuid).is_some() {
                    UpsertResult::Deleted
                } else {
                    UpsertResult::Unchanged
                }
            }
            _ => {
                ev.attributes.insert(
                    a.uuid,
                    Stored {
                        timestamp: a.timestamp,
                        json: a.json,
                    },
                );
                UpsertResult::Upserted
            }
        };
        match result {
            UpsertResult::Upserted => self.upserted += 1,
            UpsertResult::Deleted => self.deleted += 1,
            UpsertResult::Unchanged => {}
        }
        if changed || result != UpsertResult::Unchanged {
            self.dirty.insert(a.event_uuid);
        }
        Ok(result)
    }

    /// Applies a whole event's attributes: upserts, and drops every stored attribute
    /// the answer did not hold.
    fn replace_event(&mut self, uuid: &str, attrs: Vec<RestAttribute>) -> Result<(), SyncError> {
        let keep: HashSet<String> = attrs
            .iter()
            .filter(|a| a.event_uuid == uuid)
            .map(|a| a.uuid.clone())
            .collect();
        for a in attrs {
            self.upsert(a)?;
        }
        let ev = self.event(uuid)?;
        let before = ev.attributes.len();
        ev.attributes.retain(|k, _| keep.contains(k));
        let dropped = (before - ev.attributes.len()) as u64;
        if dropped > 0 {
            self.deleted += dropped;
            self.dirty.insert(uuid.to_string());
        }
        Ok(())
    }

    fn remove_event(&mut self, uuid: &str) -> Result<(), SyncError> {
        let ev = self.event(uuid)?;
        let dropped = ev.attributes.len() as u64;
        ev.attributes.clear();
        self.deleted += dropped;
        self.dirty.insert(uuid.to_string());
        Ok(())
    }

    fn set_event_timestamp(&mut self, uuid: &str, ts: i64) -> Result<(), SyncError> {
        let value = json!(ts.to_string());
        if !self.loaded.contains_key(uuid) {
            // Untouched by this pass: read the file only if the manifest says the
            // timestamp changed.
            let listed = self.manifest.get(uuid).and_then(|e| e.get("timestamp"));
            if !self.on_disk.contains(uuid) || listed == Some(&value) {
                return Ok(());
            }
        }
        let ev = self.event(uuid)?;
        if ev.fields.get("timestamp") != Some(&value) {
            ev.fields.insert("timestamp".into(), value);
            self.dirty.insert(uuid.to_string());
        }
        Ok(())
    }

    /// Writes what changed: event files, then the manifest, then removals.
    fn commit(mut self, report: &mut PassReport) -> Result<(), SyncError> {
        let mut dirty: Vec<String> = self.dirty.drain().collect();
        dirty.sort();
        let mut removals = Vec::new();
        let mut wrote = false;
        for uuid in &dirty {
            let Some(ev) = self.loaded.get(uuid) else {
                continue;
            };
            let path = self.dir.join(format!("{uuid}.json"));
            if ev.attributes.is_empty() {
                if self.manifest.remove(uuid).is_some() {
                    self.manifest_changed = true;
                }
                if self.on_disk.contains(uuid) {
                    removals.push(path);
                }
                continue;
            }
            let text = event_file_text(&ev.fields, &ev.attributes);
            super::write_atomic(&path, text.as_bytes()).map_err(|e| self.io(&path, e))?;
            wrote = true;
            let entry = manifest_entry(&ev.fields);
            if self.manifest.get(uuid) != Some(&entry) {
                self.manifest.insert(uuid.clone(), entry);
                self.manifest_changed = true;
            }
        }
        report.upserted += self.upserted;
        report.deleted += self.deleted;
        report.changed = wrote || !removals.is_empty() || self.manifest_changed;
        if self.manifest_changed {
            let path = self.dir.join("manifest.json");
            let text = serde_json::to_string(&self.manifest).unwrap_or_else(|_| "{}".into());
            super::write_atomic(&path, text.as_bytes()).map_err(|e| self.io(&path, e))?;
        }
        for path in removals {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io(&path, e)),
            }
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum UpsertResult {
    Upserted,
    Deleted,
    Unchanged,
}

/// `{"Event":{...fields..., "Attribute":[...]}}` from stored JSON texts.
fn event_file_text(fields: &Map<String, Value>, attributes: &BTreeMap<String, Stored>) -> String {
    let head = serde_json::to_string(fields).unwrap_or_else(|_| "{}".into());
    let head = head.strip_suffix('}').unwrap_or("{");
    let size = head.len() + attributes.values().map(|s| s.json.len() + 1).sum::<usize>() + 32;
    let mut out = String::with_capacity(size);
    out.push_str("{\"Event\":");
    out.push_str(head);
    if head.len() > 1 {
        out.push(',');
    }
    out.push_str("\"Attribute\":[");
    for (i, s) in attributes.values().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&s.json);
    }
    out.push_str("]}}\n");
    out
}

/// A feed manifest entry: what MISP feeds list per event that the cache knows.
fn manifest_entry(fields: &Map<String, Value>) -> Value {
    let mut entry = Map::new();
    for k in ["info", "timestamp", "Tag", "distribution"] {
        if let Some(v) = fields.get(k) {
            entry.insert(k.to_string(), v.clone());
        }
    }
    Value::Object(entry)
}

/// `8-4-4-4-12` hex digits (UUIDs become file names).
fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// An integer given as a number or a string (MISP sends `"1617875568"`).
fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `true`/`false`, `1`/`0`, `"1"`/`"0"`.
fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.trim() {
            "1" | "true" => Some(true),
            "0" | "false" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(attrs: &str) -> String {
        format!("{{\"response\": {{\"Attribute\": [{attrs}]}}}}")
    }

    const A: &str = r#"{"id": "1", "type": "ip-dst", "to_ids": true,
        "uuid": "0000000A-1111-4000-8000-000000000001", "timestamp": "1700000001",
        "deleted": false, "comment": "say \"hi\"\n", "value": "10.0.0.1",
        "Event": {"org_id": "1", "id": "7", "info": "ev", "uuid": "00000001-0000-4000-8000-000000000001"},
        "event_uuid": "00000001-0000-4000-8000-000000000001",
        "Tag": [{"id": "1", "name": "own tag", "local": 0},
                {"id": "2", "name": "tlp:green", "inherited": 1}]}"#;

    #[test]
    fn typed_page_parse_keeps_the_attribute_and_splits_the_event() {
        let b = A.replace(
            "000000000001\", \"timestamp\": \"1700000001\"",
            "000000000002\", \"timestamp\": 1700000002",
        );
        let b = b.replace("\"deleted\": false", "\"deleted\": \"1\"");
        let attrs = parse_page(&page(&format!("{A}, {b}")), &|| "p".into()).expect("parses");
        assert_eq!(attrs.len(), 2);
        let a = &attrs[0];
        assert_eq!(a.uuid, "0000000a-1111-4000-8000-000000000001");
        assert_eq!(a.timestamp, 1_700_000_001);
        assert!(!a.deleted);
        assert!(attrs[1].deleted);
        assert_eq!(attrs[1].timestamp, 1_700_000_002);
        assert_eq!(a.event_uuid, "00000001-0000-4000-8000-000000000001");
        // Stored: compact, every member but Event, event_uuid and inherited tags.
        let stored: Value = serde_json::from_str(&a.json).expect("stored JSON");
        assert!(
            !a.json.contains(": ") && !a.json.contains('\n'),
            "{}",
            a.json
        );
        assert_eq!(stored["comment"], "say \"hi\"\n");
        assert_eq!(stored["value"], "10.0.0.1");
        assert!(stored.get("Event").is_none() && stored.get("event_uuid").is_none());
        assert_eq!(
            stored["Tag"],
            json!([{"id": "1", "name": "own tag", "local": 0}])
        );
        // The event part: Event less uuid, with the inherited tags (less `inherited`).
        assert_eq!(
            Value::Object((*a.event).clone()),
            json!({"org_id": "1", "id": "7", "info": "ev",
                   "Tag": [{"id": "2", "name": "tlp:green"}]})
        );
        assert!(Arc::ptr_eq(&a.event, &attrs[1].event), "shared per page");
    }

    #[test]
    fn typed_page_parse_errors_and_empty_answers() {
        let what = || "p".to_string();
        assert!(parse_page("{\"response\": []}", &what)
            .expect("empty")
            .is_empty());
        assert!(parse_page(&page(""), &what).expect("empty").is_empty());
        let err = |body: &str| parse_page(body, &what).expect_err(body);
        assert!(err("{\"response\": ").contains("invalid JSON"));
        assert!(err("[1]").contains("not a JSON object"));
        assert!(err("{\"other\": 1}").contains("no \"response\" object"));
        assert!(err("{\"response\": [1]}").contains("no \"response\" object"));
        assert!(err("{\"response\": {\"Attribute\": 3}}").contains("\"Attribute\" list"));
        assert!(err(&page("{\"type\": \"ip-dst\"}")).contains("Attribute[0]: no attribute uuid"));
        let no_event = A.replace(
            "\"event_uuid\": \"00000001-0000-4000-8000-000000000001\",",
            "",
        );
        let no_event = no_event.replace(
            "\"uuid\": \"00000001-0000-4000-8000-000000000001\"",
            "\"x\": 1",
        );
        assert!(err(&page(&no_event)).contains("no event uuid"));
    }
}
