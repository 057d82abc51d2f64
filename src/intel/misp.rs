//! MISP JSON loader: events, event lists, `events/restSearch` and
//! `attributes/restSearch` responses, and MISP-format feed directories
//! (`manifest.json` + `<uuid>.json`).
//!
//! Owns the mapping from MISP attribute types to [`Kind`]s, the splitting of composite
//! attributes (`domain|ip`, `filename|sha256`, `ip-dst|port`, `regkey|value`), and the
//! provenance kept per attribute ([`Meta`]) and per event ([`EventInfo`]).
//!
//! Withdrawn intel: a `deleted` attribute, an attribute of a `deleted` object and
//! every attribute of a soft-deleted event (`deleted` on the event) are excluded
//! (counted as `deleted`). What decay needs is kept: the latest positive sighting
//! (`Sighting[]` type 0) and an exported `decay_score[].base_score`
//! ([`super::expiry::DecayInput`]); an expiration sighting (type 2) is a
//! `valid_until`.
//!
//! Invariants: only a file that cannot be read or parsed as JSON at all, or JSON that
//! is not MISP, is an [`IntelError`]; every attribute read is counted in
//! `records_by_source` and is either added, excluded by policy (counted by
//! [`IntelStore::meta_id`]) or skipped with its location and reason. Scalars are
//! accepted as strings or numbers, as MISP versions and exports disagree. A missing
//! `to_ids` reads as true; an attribute `distribution` of 5 ("inherit event") is kept
//! as 5, the event's own distribution being on its [`EventInfo`].
//!
//! Cost: one pass over the parsed JSON; the file is held in memory once as bytes and
//! once as a `serde_json::Value` (for `{"Event": ...}` files, with the attributes
//! pruned to the members the loader reads: [`ATTRIBUTE_KEYS`]).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::expiry::DecayInput;
use super::model::{EventInfo, Kind, Meta, Source, Tlp};
use super::store::IntelStore;
use super::IntelError;

/// Skip reason for manifest entries whose event file is not in the feed directory.
pub const MISSING_EVENT_FILE: &str = "feed manifest lists an event whose file is missing";

/// Loads one MISP JSON file (any shape [`load_misp_value`] accepts) under `source`.
/// A `{"Event": {...}}` file (a feed's event file, the intel cache's) is parsed with
/// its event's attributes pruned to the members the loader reads
/// ([`ATTRIBUTE_KEYS`]); anything else, or anything that does not parse so, is parsed
/// whole (same result, same errors).
pub fn load_misp_file(store: &mut IntelStore, path: &Path, source: u32) -> Result<(), IntelError> {
    let bytes = std::fs::read(path).map_err(|e| IntelError::io(path, e))?;
    let value = match serde_json::from_slice::<pruned::EventFile>(&bytes) {
        Ok(v) => v.0,
        Err(_) => serde_json::from_slice(&bytes).map_err(|e| IntelError::json(path, &e))?,
    };
    load_misp_value(store, &value, source, &path.display().to_string())
}

/// The members of an event's attribute that [`Loader::attribute`] reads (keep in
/// step with it): an event file's attributes are parsed with only these.
pub const ATTRIBUTE_KEYS: &[&str] = &[
    "uuid",
    "type",
    "value",
    "Tag",
    "Sighting",
    "decay_score",
    "category",
    "to_ids",
    "deleted",
    "distribution",
    "first_seen",
    "last_seen",
    "timestamp",
];

/// Parsing `{"Event": {..., "Attribute": [...]}}` with each attribute pruned to
/// [`ATTRIBUTE_KEYS`] (the other members are skipped, not built as values).
mod pruned {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde_json::{Map, Value};

    use super::ATTRIBUTE_KEYS;

    /// An object key, borrowed when it has no escapes.
    struct Key<'a>(Cow<'a, str>);

    impl<'de> Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Key<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                    Ok(Key(Cow::Owned(v.to_string())))
                }
            }
            d.deserialize_str(V)
        }
    }

    /// An attribute object with only [`ATTRIBUTE_KEYS`].
    struct Attribute(Value);

    impl<'de> Deserialize<'de> for Attribute {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Attribute;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an attribute object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attribute, A::Error> {
                    let mut out = Map::new();
                    while let Some(k) = map.next_key::<Key<'de>>()? {
                        if ATTRIBUTE_KEYS.contains(&k.0.as_ref()) {
                            out.insert(k.0.into_owned(), map.next_value::<Value>()?);
                        } else {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    Ok(Attribute(Value::Object(out)))
                }
            }
            d.deserialize_map(V)
        }
    }

    /// An event object whose `Attribute` list is pruned.
    struct Event(Value);

    impl<'de> Deserialize<'de> for Event {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Event;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an event object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
                    let mut out = Map::new();
                    while let Some(k) = map.next_key::<Key<'de>>()? {
                        let v = if k.0 == "Attribute" {
                            let list = map.next_value::<Vec<Attribute>>()?;
                            Value::Array(list.into_iter().map(|a| a.0).collect())
                        } else {
                            map.next_value::<Value>()?
                        };
                        out.insert(k.0.into_owned(), v);
                    }
                    Ok(Event(Value::Object(out)))
                }
            }
            d.deserialize_map(V)
        }
    }

    /// A file `{"Event": {...}}` (other members kept whole).
    pub struct EventFile(pub Value);

    impl<'de> Deserialize<'de> for EventFile {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = EventFile;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an object with an Event object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventFile, A::Error> {
                    let mut out = Map::new();
                    while let Some(k) = map.next_key::<Key<'de>>()? {
                        let v = if k.0 == "Event" {
                            map.next_value::<Event>()?.0
                        } else {
                            map.next_value::<Value>()?
                        };
                        out.insert(k.0.into_owned(), v);
                    }
                    if !matches!(out.get("Event"), Some(Value::Object(_))) {
                        return Err(serde::de::Error::custom("no Event object"));
                    }
                    Ok(EventFile(Value::Object(out)))
                }
            }
            d.deserialize_map(V)
        }
    }
}

/// Loads parsed MISP JSON: `{"Event":{..}}` or a bare event, a list of events (wrapped
/// or bare), `{"response":[..events..]}`, or `{"response":{"Attribute":[..]}}`.
/// `path_for_locations` prefixes every skip location and names the file in errors.
pub fn load_misp_value(
    store: &mut IntelStore,
    value: &Value,
    source: u32,
    path_for_locations: &str,
) -> Result<(), IntelError> {
    let shape = shape_of(value).map_err(|message| IntelError::Format {
        path: PathBuf::from(path_for_locations),
        message,
    })?;
    let mut loader = Loader {
        store,
        source,
        path: path_for_locations,
    };
    match shape {
        Shape::Event(ev) => loader.event(ev, 0),
        Shape::Events(list) => {
            for (i, item) in list.iter().enumerate() {
                match event_object(item) {
                    Some(ev) => loader.event(ev, i),
                    None => loader.store.skip(
                        format!("{path_for_locations}: [{i}]"),
                        "list element is not a MISP event",
                    ),
                }
            }
        }
        Shape::Attributes(list) => loader.attribute_response(list),
    }
    Ok(())
}

/// Loads a MISP-format feed directory as one source named `source_name` (default: the
/// directory name). Every event listed in `manifest.json` whose `<uuid>.json` exists is
/// loaded; missing ones are skipped under one reason ([`MISSING_EVENT_FILE`]) and
/// logged once; `<uuid>.json` files not in the manifest are loaded too. An event file
/// that cannot be read or is not a MISP event is skipped (the rest of the feed loads);
/// an unreadable or malformed manifest is an error.
pub fn load_misp_feed_dir(
    store: &mut IntelStore,
    dir: &Path,
    source_name: Option<&str>,
) -> Result<(), IntelError> {
    load_misp_feed_dir_with(store, dir, source_name, &mut |store, path, source| {
        load_feed_event(store, path, source)
    })
}

/// [`load_misp_feed_dir`], each event file loaded by `load_event` (the intel cache
/// snapshot replays the files it holds: [`super::snapshot`]).
pub fn load_misp_feed_dir_with(
    store: &mut IntelStore,
    dir: &Path,
    source_name: Option<&str>,
    load_event: &mut dyn FnMut(&mut IntelStore, &Path, u32),
) -> Result<(), IntelError> {
    let manifest_path = dir.join("manifest.json");
    let manifest = IntelError::read_json(&manifest_path)?;
    let Some(entries) = manifest.as_object() else {
        return Err(IntelError::Format {
            path: manifest_path,
            message: "manifest.json is not a JSON object keyed by event UUID".into(),
        });
    };
    let provider = entries
        .values()
        .find_map(|e| e.pointer("/Orgc/name").and_then(Value::as_str))
        .map(str::to_string);
    let name = match source_name {
        Some(n) => n.to_string(),
        None => dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    };
    let source = store.add_source(Source {
        name,
        format: "misp-feed",
        location: dir.display().to_string(),
        provider,
    });

    let mut listed = HashSet::new();
    let mut missing = 0u64;
    for uuid in entries.keys() {
        let location = || format!("{}: entry {uuid:?}", manifest_path.display());
        if !looks_like_uuid(uuid) {
            store.skip(location(), "feed manifest key is not a UUID");
            continue;
        }
        listed.insert(uuid.to_ascii_lowercase());
        let path = dir.join(format!("{uuid}.json"));
        if path.is_file() {
            load_event(store, &path, source);
        } else {
            missing += 1;
            store.skip(location(), MISSING_EVENT_FILE);
        }
    }
    if missing > 0 {
        tracing::warn!(
            dir = %dir.display(),
            missing,
            listed = entries.len(),
            "Feed manifest lists events whose files are missing; skipped them."
        );
    }

    let mut extra: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| IntelError::io(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_stem().and_then(|s| s.to_str()).is_some_and(|s| {
                    looks_like_uuid(s) && !listed.contains(&s.to_ascii_lowercase())
                })
        })
        .collect();
    extra.sort();
    for path in extra {
        load_event(store, &path, source);
    }
    Ok(())
}

/// Loads one event file of a feed; a file that fails is skipped, not fatal.
pub fn load_feed_event(store: &mut IntelStore, path: &Path, source: u32) {
    if let Err(e) = load_misp_file(store, path, source) {
        let reason = match e {
            IntelError::Io { .. } => "feed event file cannot be read",
            IntelError::Json { .. } => "feed event file is not valid JSON",
            IntelError::Format { .. } | IntelError::At { .. } => {
                "feed event file is not a MISP event"
            }
        };
        tracing::warn!(error = %e, "Skipped feed event file.");
        store.skip(e.to_string(), reason);
    }
}

/// `8-4-4-4-12` hex digits: guards the manifest keys that become file names.
fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The top-level shapes MISP produces.
enum Shape<'a> {
    Event(&'a Map<String, Value>),
    Events(&'a [Value]),
    Attributes(&'a [Value]),
}

fn shape_of(value: &Value) -> Result<Shape<'_>, String> {
    match value {
        Value::Object(o) => {
            if let Some(inner) = o.get("response") {
                return match inner {
                    Value::Array(list) => Ok(Shape::Events(list)),
                    Value::Object(r) => match attribute_list(r) {
                        Some(list) => Ok(Shape::Attributes(list)),
                        None => shape_of(inner),
                    },
                    _ => {
                        Err("\"response\" is neither a list of events nor an attribute list".into())
                    }
                };
            }
            match o.get("Event") {
                Some(Value::Object(ev)) => return Ok(Shape::Event(ev)),
                Some(Value::Array(list)) => return Ok(Shape::Events(list)),
                _ => {}
            }
            if let Some(list) = attribute_list(o) {
                return Ok(Shape::Attributes(list));
            }
            if is_bare_event(o) {
                return Ok(Shape::Event(o));
            }
            let keys: Vec<&str> = o.keys().take(8).map(String::as_str).collect();
            Err(format!(
                "not MISP: expected an event, an event list or a restSearch response; \
                 found an object with keys {keys:?}"
            ))
        }
        Value::Array(list) => {
            if !list.is_empty() && list.iter().all(|v| event_object(v).is_none()) {
                let keys: Vec<&str> = list[0]
                    .as_object()
                    .map(|o| o.keys().take(8).map(String::as_str).collect())
                    .unwrap_or_default();
                return Err(format!(
                    "not MISP: a list of {} elements none of which is a MISP event \
                     (first element keys {keys:?})",
                    list.len()
                ));
            }
            Ok(Shape::Events(list))
        }
        _ => Err("not MISP: expected a JSON object or list".into()),
    }
}

/// `{"Attribute":[..]}` with nothing event-like beside it: an attribute search result.
fn attribute_list(o: &Map<String, Value>) -> Option<&[Value]> {
    let list = o.get("Attribute")?.as_array()?;
    let event_like = |k: &String| {
        matches!(
            k.as_str(),
            "info" | "uuid" | "Object" | "date" | "Orgc" | "Org" | "threat_level_id"
        )
    };
    if o.keys().any(event_like) {
        return None;
    }
    Some(list)
}

fn is_bare_event(o: &Map<String, Value>) -> bool {
    o.contains_key("Attribute")
        || o.contains_key("Object")
        || o.contains_key("info")
        || (o.contains_key("uuid") && !(o.contains_key("type") && o.contains_key("value")))
}

/// The event object of a list element: `{"Event":{..}}` or a bare event.
fn event_object(v: &Value) -> Option<&Map<String, Value>> {
    let o = v.as_object()?;
    match o.get("Event") {
        Some(Value::Object(ev)) => Some(ev),
        _ if is_bare_event(o) => Some(o),
        _ => None,
    }
}

/// Where an attribute sits, formatted only when a record is skipped.
#[derive(Clone, Copy)]
struct Loc<'a> {
    path: &'a str,
    /// The event's UUID, or `#<index>` in its file when it has none.
    event: Option<&'a str>,
    object: Option<usize>,
    attribute: usize,
    attr_uuid: Option<&'a str>,
}

impl Loc<'_> {
    fn format(&self, part: Option<u8>) -> String {
        use std::fmt::Write;
        let mut s = format!("{}: ", self.path);
        if let Some(event) = self.event {
            let _ = write!(s, "Event[{event}] ");
        }
        if let Some(o) = self.object {
            let _ = write!(s, "Object[{o}] ");
        }
        let _ = write!(s, "Attribute[{}]", self.attribute);
        if let Some(u) = self.attr_uuid {
            let _ = write!(s, " (uuid {u})");
        }
        if let Some(p) = part {
            let _ = write!(s, " part {p}");
        }
        s
    }
}

struct Loader<'s, 'p> {
    store: &'s mut IntelStore,
    source: u32,
    path: &'p str,
}

impl Loader<'_, '_> {
    /// Adds one event and all its attributes, objects' attributes included.
    fn event(&mut self, ev: &Map<String, Value>, index: usize) {
        let info = self.event_info(ev);
        let label = info.uuid.clone().unwrap_or_else(|| format!("#{index}"));
        if let Some(org) = &info.org {
            self.fill_provider(org);
        }
        let event = self.store.add_event(info);
        // A soft-deleted event (`deleted` on the event, as newer MISP exports carry)
        // withdraws every attribute in it.
        let event_deleted = ev.get("deleted").and_then(flag).unwrap_or(false);
        let base = Loc {
            path: self.path,
            event: Some(&label),
            object: None,
            attribute: 0,
            attr_uuid: None,
        };
        for (i, attr) in array(ev, "Attribute").iter().enumerate() {
            self.attribute(
                attr,
                Some(event),
                Loc {
                    attribute: i,
                    ..base
                },
                event_deleted,
            );
        }
        for (oi, obj) in array(ev, "Object").iter().enumerate() {
            let deleted = event_deleted || obj.get("deleted").and_then(flag).unwrap_or(false);
            for (ai, attr) in array_of(obj, "Attribute").iter().enumerate() {
                let loc = Loc {
                    object: Some(oi),
                    attribute: ai,
                    ..base
                };
                self.attribute(attr, Some(event), loc, deleted);
            }
        }
    }

    fn event_info(&self, ev: &Map<String, Value>) -> EventInfo {
        let mut tags: Vec<String> = Vec::new();
        let mut push = |t: &str| {
            if !t.is_empty() && !tags.iter().any(|x| x == t) {
                tags.push(t.to_string());
            }
        };
        for t in tag_names(ev) {
            push(t);
        }
        for galaxy in array(ev, "Galaxy") {
            for cluster in array_of(galaxy, "GalaxyCluster") {
                if let Some(t) = cluster.get("tag_name").and_then(Value::as_str) {
                    push(t);
                }
            }
        }
        let tlp = tags.iter().filter_map(|t| Tlp::from_tag(t)).max();
        EventInfo {
            uuid: text(ev, "uuid").map(str::to_string),
            info: text(ev, "info").map(str::to_string),
            threat_level: ev.get("threat_level_id").and_then(small_u8),
            tags,
            tlp,
            distribution: ev.get("distribution").and_then(small_u8),
            org: org_name(ev),
            date: text(ev, "date").map(str::to_string),
            reference: None,
        }
    }

    /// Records the first event organisation as the source's provider, when unknown.
    fn fill_provider(&mut self, org: &str) {
        if let Some(src) = self.store.sources.get_mut(self.source as usize) {
            if src.provider.is_none() {
                src.provider = Some(org.to_string());
            }
        }
    }

    /// An `attributes/restSearch` result: attributes carrying an `Event` sub-object,
    /// grouped so that each event is added once.
    fn attribute_response(&mut self, list: &[Value]) {
        let mut events: HashMap<String, u32> = HashMap::new();
        for (i, attr) in list.iter().enumerate() {
            let ev = attr.get("Event").and_then(Value::as_object);
            let key = ev
                .and_then(|e| text(e, "uuid").or_else(|| text(e, "id")))
                .map(str::to_string)
                .or_else(|| {
                    attr.get("event_id")
                        .and_then(scalar_text)
                        .map(|id| format!("id:{id}"))
                });
            let event = match (key, ev) {
                (Some(key), ev) => Some(match events.get(&key) {
                    Some(&id) => id,
                    None => {
                        let info = ev.map(|e| self.event_info(e)).unwrap_or_default();
                        if let Some(org) = &info.org {
                            self.fill_provider(org);
                        }
                        let id = self.store.add_event(info);
                        events.insert(key, id);
                        id
                    }
                }),
                (None, _) => None,
            };
            let loc = Loc {
                path: self.path,
                event: None,
                object: None,
                attribute: i,
                attr_uuid: None,
            };
            let event_deleted = ev
                .and_then(|e| e.get("deleted"))
                .and_then(flag)
                .unwrap_or(false);
            self.attribute(attr, event, loc, event_deleted);
        }
    }

    /// One attribute: type mapped, composite split, meta built, values added.
    fn attribute<'a>(
        &mut self,
        attr: &'a Value,
        event: Option<u32>,
        mut loc: Loc<'a>,
        parent_deleted: bool,
    ) {
        if let Some(n) = self.store.records_by_source.get_mut(self.source as usize) {
            *n += 1;
        }
        let Some(a) = attr.as_object() else {
            self.store
                .skip(loc.format(None), "attribute is not a JSON object");
            return;
        };
        loc.attr_uuid = text(a, "uuid");
        let (ty, value) = match type_and_value(a) {
            Ok(tv) => tv,
            Err(reason) => {
                self.store.skip(loc.format(None), reason);
                return;
            }
        };
        let plan = match plan(ty, &value) {
            Ok(p) => p,
            Err(Unplanned::Unsupported(reason)) => {
                // A valid attribute of a type tripline does not match (`link`, `text`,
                // `comment`...): counted, never malformed.
                self.store.unsupported(loc.format(None), reason);
                return;
            }
            Err(Unplanned::Malformed(reason)) => {
                self.store.skip(loc.format(None), reason);
                return;
            }
        };

        let tag_list: Vec<&str> = tag_names(a).collect();
        let sightings = sightings(a);
        let decay_input = self.store.decay_input(DecayInput {
            last_sighting: sightings.last_positive,
            base_score: base_score(a),
        });
        let base = Meta {
            source: self.source,
            event,
            attr_uuid: loc.attr_uuid.map(Into::into),
            misp_type: 0,
            category: text(a, "category").map(|c| self.store.intern(c)),
            tags: self.store.intern_tags(&tag_list),
            to_ids: a.get("to_ids").and_then(flag).unwrap_or(true),
            deleted: parent_deleted || a.get("deleted").and_then(flag).unwrap_or(false),
            revoked: false,
            tlp: tag_list.iter().filter_map(|t| Tlp::from_tag(t)).max(),
            distribution: a.get("distribution").and_then(small_u8),
            first_seen: a.get("first_seen").and_then(timestamp),
            last_seen: a.get("last_seen").and_then(timestamp),
            modified: a.get("timestamp").and_then(timestamp),
            valid_from: None,
            // MISP's expiration sighting (type 2): the indicator expired then.
            valid_until: sightings.expired,
            port: plan.port,
            composite_part: None,
            decay_input,
        };
        for part in &plan.parts {
            let meta = Meta {
                misp_type: self.store.intern(part.misp_type),
                composite_part: part.index,
                ..base.clone()
            };
            let Some(meta) = self.store.meta_id(meta) else {
                // Excluded by policy (to_ids false, deleted): the store counted it. All
                // parts share the exclusion, so the attribute is counted once.
                return;
            };
            self.store
                .add_typed(part.kind, part.value, meta, || loc.format(part.index));
        }
    }
}

/// What an attribute's embedded `Sighting` list says about its age.
#[derive(Debug, Default, PartialEq)]
struct Sightings {
    /// The latest positive sighting (type 0), seconds.
    last_positive: Option<i64>,
    /// The earliest expiration sighting (type 2), seconds.
    expired: Option<i64>,
}

/// `Sighting[]` of an attribute (MISP exports them with `includeSightings`): the
/// latest positive one and the earliest expiration. False positives (type 1) do not
/// age an indicator here; they are the suppression list's business.
fn sightings(a: &Map<String, Value>) -> Sightings {
    let mut out = Sightings::default();
    for s in array(a, "Sighting") {
        let Some(date) = s.get("date_sighting").and_then(timestamp) else {
            continue;
        };
        let ty = s.get("type").and_then(small_u8).unwrap_or(0);
        match ty {
            0 => out.last_positive = out.last_positive.max(Some(date)),
            2 => out.expired = Some(out.expired.map_or(date, |e| e.min(date))),
            _ => {}
        }
    }
    out
}

/// MISP's exported base score (`decay_score[].base_score`, with
/// `includeDecayScore`): the highest of the models that scored the attribute.
fn base_score(a: &Map<String, Value>) -> Option<f32> {
    array(a, "decay_score")
        .iter()
        .filter_map(|d| d.get("base_score"))
        .filter_map(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .filter(|b| b.is_finite())
        .map(|b| b.clamp(0.0, 100.0) as f32)
        .reduce(f32::max)
}

/// The type and the value (a string, or a number as text) of an attribute.
fn type_and_value(a: &Map<String, Value>) -> Result<(&str, Cow<'_, str>), &'static str> {
    let ty = text(a, "type").ok_or("attribute without type")?;
    let value = match a.get("value") {
        Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
        Some(Value::Number(n)) => Cow::Owned(n.to_string()),
        None | Some(Value::Null) => return Err("attribute without value"),
        Some(_) => return Err("attribute value is not a string"),
    };
    if value.trim().is_empty() {
        return Err("attribute value is empty");
    }
    Ok((ty, value))
}

/// One value to add from an attribute (two for `domain|ip`, `filename|sha256`).
#[derive(Debug, PartialEq)]
struct Part<'a> {
    kind: Kind,
    misp_type: &'a str,
    value: &'a str,
    /// The part index for composite attributes.
    index: Option<u8>,
}

#[derive(Debug, PartialEq)]
struct Plan<'a> {
    parts: Vec<Part<'a>>,
    port: Option<u16>,
}

/// Why an attribute gives no value to match.
#[derive(Debug, PartialEq)]
enum Unplanned {
    /// A valid attribute of a type tripline does not match.
    Unsupported(String),
    /// The value does not fit its type (a composite without `|`).
    Malformed(String),
}

/// Splits an attribute into the values tripline matches. Composite types split both
/// type and value on the first `|`: a `port` part becomes [`Meta::port`], and a part
/// of an unmatched type is left out as long as the other part is matched.
/// `regkey|value` is one [`Kind::RegkeyValue`] indicator (key and value together),
/// never reduced to its key.
fn plan<'a>(ty: &'a str, value: &'a str) -> Result<Plan<'a>, Unplanned> {
    if ty == "regkey|value" {
        if !value.contains('|') {
            return Err(Unplanned::Malformed(format!(
                "composite {ty} value without '|'"
            )));
        }
        return Ok(Plan {
            parts: vec![Part {
                kind: Kind::RegkeyValue,
                misp_type: ty,
                value,
                index: None,
            }],
            port: None,
        });
    }
    let Some((t0, t1)) = ty.split_once('|') else {
        let kind =
            kind_of(ty).ok_or_else(|| Unplanned::Unsupported(format!("type not matched: {ty}")))?;
        return Ok(Plan {
            parts: vec![Part {
                kind,
                misp_type: ty,
                value,
                index: None,
            }],
            port: None,
        });
    };
    let (v0, v1) = value
        .split_once('|')
        .ok_or_else(|| Unplanned::Malformed(format!("composite {ty} value without '|'")))?;
    let mut plan = Plan {
        parts: Vec::with_capacity(2),
        port: None,
    };
    for (i, (t, v)) in [(t0, v0), (t1, v1)].into_iter().enumerate() {
        match t {
            "port" => plan.port = v.trim().parse().ok(),
            "value" => {}
            _ => {
                if let Some(kind) = kind_of(t) {
                    plan.parts.push(Part {
                        kind,
                        misp_type: t,
                        value: v,
                        index: Some(i as u8),
                    });
                }
            }
        }
    }
    if plan.parts.is_empty() {
        return Err(Unplanned::Unsupported(format!("type not matched: {ty}")));
    }
    Ok(plan)
}

/// The kind a (non-composite) MISP attribute type is matched as, if any.
fn kind_of(ty: &str) -> Option<Kind> {
    Some(match ty {
        "ip-src" | "ip-dst" | "ip" => Kind::Ipv4,
        "domain" => Kind::Domain,
        "hostname" => Kind::Hostname,
        "url" => Kind::Url,
        "email"
        | "email-src"
        | "email-dst"
        | "target-email"
        | "whois-registrant-email"
        | "email-reply-to" => Kind::Email,
        "md5" | "x509-fingerprint-md5" | "ja3-fingerprint-md5" => Kind::Md5,
        "sha1" | "x509-fingerprint-sha1" => Kind::Sha1,
        "sha224" => Kind::Sha224,
        "sha256" | "x509-fingerprint-sha256" => Kind::Sha256,
        "sha384" => Kind::Sha384,
        "sha512" => Kind::Sha512,
        "filename" => Kind::Filename,
        "regkey" => Kind::Regkey,
        "user-agent" | "mutex" | "named pipe" | "windows-service-name" | "cookie" => Kind::Literal,
        _ => return None,
    })
}

fn array<'a>(o: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    o.get(key).map_or(&[], array_of_value)
}

/// `array` of a value that may not be an object.
fn array_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).map_or(&[], array_of_value)
}

fn array_of_value(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// A non-empty string field.
fn text<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `Tag[].name` of an event or attribute.
fn tag_names(o: &Map<String, Value>) -> impl Iterator<Item = &str> + '_ {
    array(o, "Tag")
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .filter(|t| !t.is_empty())
}

fn org_name(ev: &Map<String, Value>) -> Option<String> {
    ["Orgc", "Org"]
        .iter()
        .find_map(|k| {
            ev.get(*k)
                .and_then(|o| o.get("name"))
                .and_then(Value::as_str)
        })
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// A string or number as text (ids).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `true`/`false`, `1`/`0`, `"1"`/`"0"`, `"true"`/`"false"`.
fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" => Some(true),
            "0" | "false" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A small integer given as a number or a string (`distribution`, `threat_level_id`).
fn small_u8(v: &Value) -> Option<u8> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `first_seen` / `last_seen`: ISO 8601 text, or epoch seconds (milli- and
/// microseconds, as MISP stores them, are scaled down). `None` when absent or unreadable.
fn timestamp(v: &Value) -> Option<i64> {
    let epoch = |n: i64| match n.unsigned_abs() {
        a if a >= 100_000_000_000_000 => n / 1_000_000,
        a if a >= 100_000_000_000 => n / 1_000,
        _ => n,
    };
    match v {
        Value::Number(n) => n.as_i64().map(epoch),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                return s.parse().ok().map(epoch);
            }
            parse_iso8601(s)
        }
        _ => None,
    }
}

fn parse_iso8601(s: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.timestamp());
        }
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::store::StoreOptions;
    use serde_json::json;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/intel");
    const XORIST_SHA256: &str = "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68";

    fn new_store(options: StoreOptions) -> (IntelStore, u32) {
        let mut store = IntelStore::new(options);
        let source = store.add_source(Source {
            name: "test".into(),
            format: "misp",
            location: "test.json".into(),
            provider: None,
        });
        (store, source)
    }

    fn load(value: Value) -> IntelStore {
        let (mut store, source) = new_store(StoreOptions::default());
        load_misp_value(&mut store, &value, source, "test.json").expect("test JSON is MISP");
        store
    }

    /// The pruned parse of `{"Event": ...}` files gives the store the whole parse
    /// gives, on every MISP fixture (events with objects, sightings, tags, deleted
    /// attributes, feed events) and on one that carries decay scores and sightings.
    #[test]
    fn pruned_event_file_parse_equals_the_whole_parse() {
        let mut files: Vec<PathBuf> = Vec::new();
        for dir in ["misp/pymisp-tests", "misp/infoblox-feed"] {
            for e in std::fs::read_dir(Path::new(FIXTURES).join(dir)).expect("fixtures") {
                let p = e.expect("entry").path();
                if p.extension().is_some_and(|x| x == "json") {
                    files.push(p);
                }
            }
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let extra = tmp.path().join("decay.json");
        std::fs::write(
            &extra,
            json!({"Event": {"uuid": "5e8f0a3e-0000-4000-8000-000000000001", "info": "x",
                "Tag": [{"name": "tlp:amber"}],
                "Attribute": [
                    {"type": "domain", "value": "evil.example", "uuid": "5e8f0a3e-0000-4000-8000-00000000000a",
                     "comment": "skipped member", "to_ids": "1", "timestamp": "1700000000",
                     "first_seen": "2023-01-01T00:00:00Z", "last_seen": 1700000000000u64,
                     "Tag": [{"name": "tlp:red"}], "category": "Network activity", "distribution": "3",
                     "Sighting": [{"type": "0", "date_sighting": "1700000100"},
                                  {"type": "2", "date_sighting": "1800000000"}],
                     "decay_score": [{"base_score": 80.5}], "object_id": "0"},
                    {"type": "ip-dst|port", "value": "198.51.100.7|443", "deleted": true},
                    {"type": "link", "value": "https://x.example/"},
                    {"type": "domain", "value": ""}
                ],
                "Object": [{"Attribute": [{"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e"}]}]}})
            .to_string(),
        )
        .expect("write");
        files.push(extra);
        let mut pruned_used = 0;
        for path in &files {
            let bytes = std::fs::read(path).expect("read");
            let Ok(whole) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            if serde_json::from_slice::<pruned::EventFile>(&bytes).is_ok() {
                pruned_used += 1;
            }
            let (mut a, sa) = new_store(StoreOptions::default());
            let ra = load_misp_file(&mut a, path, sa).map_err(|e| e.to_string());
            let (mut b, sb) = new_store(StoreOptions::default());
            let rb = load_misp_value(&mut b, &whole, sb, &path.display().to_string())
                .map_err(|e| e.to_string());
            assert_eq!(ra, rb, "{}", path.display());
            let dump = |s: &IntelStore| {
                format!(
                    "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
                    s.links,
                    s.metas,
                    s.events,
                    s.skipped,
                    s.decay_inputs,
                    s.records_by_source,
                    (0..s.sets.len())
                        .map(|k| s.sets[k].len())
                        .collect::<Vec<_>>()
                )
            };
            assert_eq!(dump(&a), dump(&b), "{}", path.display());
        }
        assert!(
            serde_json::from_slice::<pruned::EventFile>(
                &std::fs::read(&files[files.len() - 1]).expect("read")
            )
            .is_ok(),
            "the pruned parse reads the decay event"
        );
        assert!(
            pruned_used >= 3,
            "the pruned parse was used for {pruned_used} files"
        );
    }

    fn load_fixture(rel: &str) -> IntelStore {
        let (mut store, source) = new_store(StoreOptions::default());
        let path = Path::new(FIXTURES).join(rel);
        load_misp_file(&mut store, &path, source).expect("fixture loads");
        store
    }

    /// Every value added, as `kind value`, in insertion order.
    fn added(store: &IntelStore) -> Vec<String> {
        let links = store.links.iter();
        links
            .map(|&(id, _)| format!("{} {}", id.kind(), store.value(id)))
            .collect()
    }

    /// The metas linked to one value.
    fn metas<'s>(store: &'s IntelStore, kind: Kind, value: &str) -> Vec<&'s Meta> {
        let links = store.links.iter();
        let links = links.filter(|(id, _)| id.kind() == kind && store.value(*id) == value);
        links.map(|&(_, m)| &store.metas[m as usize]).collect()
    }

    fn skipped(store: &IntelStore, reason: &str) -> u64 {
        store.skipped_by_reason.get(reason).copied().unwrap_or(0)
    }

    fn excluded(store: &IntelStore, reason: &str) -> u64 {
        store.excluded_by_reason.get(reason).copied().unwrap_or(0)
    }

    fn attr(ty: &str, value: &str) -> Value {
        json!({"type": ty, "value": value, "to_ids": true, "category": "Network activity"})
    }

    #[test]
    fn composite_types_split_into_parts() {
        let store = load(json!({"Event": {"uuid": "e1", "Attribute": [
            attr("domain|ip", "evil.example|198.51.100.7"),
            attr("ip-dst|port", "203.0.113.9|8443"),
            attr("hostname|port", "c2.evil.example|443"),
            attr("filename|sha256", &format!("dropper.exe|{XORIST_SHA256}")),
            attr("filename|md5", "a.dll|44d88612fea8a8f36de82e1278abb02f"),
            attr("regkey|value", "HKCU\\Software\\Run|%TEMP%\\x.exe"),
            attr("filename|imphash", "only-name.exe|f34d5f2d4577ed6d9ceec516c1f5a744"),
            attr("domain|ip", "no-separator.example"),
        ]}}));
        let want = [
            "domain evil.example",
            "ipv4 198.51.100.7",
            "ipv4 203.0.113.9",
            "hostname c2.evil.example",
            "filename dropper.exe",
            &format!("sha256 {XORIST_SHA256}"),
            "filename a.dll",
            "md5 44d88612fea8a8f36de82e1278abb02f",
            "regkey_value hkcu\\software\\run|x.exe",
            "filename only-name.exe",
        ];
        assert_eq!(added(&store), want);
        let part = |kind, v| {
            let m = metas(&store, kind, v)[0];
            (store.strings.get(m.misp_type), m.composite_part, m.port)
        };
        assert_eq!(
            part(Kind::Domain, "evil.example"),
            ("domain", Some(0), None)
        );
        assert_eq!(part(Kind::Ipv4, "198.51.100.7"), ("ip", Some(1), None));
        assert_eq!(
            part(Kind::Ipv4, "203.0.113.9"),
            ("ip-dst", Some(0), Some(8443))
        );
        assert_eq!(
            part(Kind::Hostname, "c2.evil.example"),
            ("hostname", Some(0), Some(443))
        );
        assert_eq!(part(Kind::Sha256, XORIST_SHA256), ("sha256", Some(1), None));
        assert_eq!(
            part(Kind::RegkeyValue, "hkcu\\software\\run|x.exe"),
            ("regkey|value", None, None)
        );
        assert_eq!(skipped(&store, "composite domain|ip value without '|'"), 1);
        assert_eq!(store.skipped_total(), 1);
    }

    #[test]
    fn type_mapping_table() {
        let sha256 = XORIST_SHA256;
        #[rustfmt::skip]
        let cases = [
            ("ip-src", "198.51.100.1", Some("ipv4 198.51.100.1")),
            ("ip-dst", "2001:DB8::1", Some("ipv6 2001:db8::1")),
            ("ip-dst", "10.1.2.3/8", Some("ipv4 10.0.0.0/8")),
            ("domain", "Evil.Example.", Some("domain evil.example")),
            ("hostname", "www.evil.example", Some("hostname www.evil.example")),
            ("url", "hxxp://evil.example/gate.php", Some("url evil.example/gate.php")),
            ("email-src", "Bad@Evil.Example", Some("email bad@evil.example")),
            ("whois-registrant-email", "r@evil.example", Some("email r@evil.example")),
            ("sha1", "3395856CE81F2B7382DEE72602F798B642F14140", Some("sha1 3395856ce81f2b7382dee72602f798b642f14140")),
            ("x509-fingerprint-sha256", sha256, Some(&*format!("sha256 {sha256}"))),
            ("ja3-fingerprint-md5", "e7d705a3286e19ea42f587b344ee6865", Some("md5 e7d705a3286e19ea42f587b344ee6865")),
            ("filename", "Invoice.PDF.exe", Some("filename invoice.pdf.exe")),
            ("user-agent", "Mozilla/4.0 (Harbor)", Some("literal Mozilla/4.0 (Harbor)")),
            ("mutex", "Global\\HarborMtx", Some("literal Global\\HarborMtx")),
            ("named pipe", "\\\\.\\pipe\\harbor", Some("literal \\\\.\\pipe\\harbor")),
            ("link", "https://blog.example/post", None),
            ("uri", "/gate.php", None),
            ("comment", "seen in March", None),
            ("AS", "AS64496", None),
            ("vulnerability", "CVE-2024-0001", None),
        ];
        for (ty, value, want) in cases {
            let store = load(json!([{"Event": {"uuid": "e", "Attribute": [attr(ty, value)]}}]));
            assert_eq!(
                added(&store).first().map(String::as_str),
                want,
                "{ty} {value:?}"
            );
            let not_matched = skipped(&store, &format!("type not matched: {ty}"));
            assert_eq!(not_matched, u64::from(want.is_none()), "{ty}");
        }
    }

    #[test]
    fn scalars_as_numbers_or_strings() {
        let store = load(json!({"Event": {
        "uuid": "e1", "threat_level_id": 2, "distribution": "3",
        "Attribute": [
            {"type": "domain", "value": "a.example", "to_ids": 1, "distribution": 5,
             "first_seen": "2023-02-08T00:00:00+00:00", "last_seen": 1700000000},
            {"type": "domain", "value": "b.example", "to_ids": "1", "deleted": "0",
             "first_seen": "2023-02-08T00:00:00.000000+0000", "last_seen": "1700000000000000"},
            {"type": "domain", "value": "c.example", "to_ids": "0"},
            {"type": "domain", "value": "d.example", "to_ids": 0},
            {"type": "AS", "value": 64496, "to_ids": false},
            {"type": "domain", "value": "e.example", "first_seen": i64::MIN, "last_seen": "junk"},
        ]}}));
        assert_eq!(
            (store.events[0].threat_level, store.events[0].distribution),
            (Some(2), Some(3))
        );
        let a = metas(&store, Kind::Domain, "a.example")[0];
        assert_eq!((a.to_ids, a.distribution), (true, Some(5)));
        assert_eq!(
            (a.first_seen, a.last_seen),
            (Some(1_675_814_400), Some(1_700_000_000))
        );
        let b = metas(&store, Kind::Domain, "b.example")[0];
        assert_eq!(
            (b.first_seen, b.last_seen),
            (Some(1_675_814_400), Some(1_700_000_000))
        );
        let e = metas(&store, Kind::Domain, "e.example")[0];
        assert_eq!(
            (e.to_ids, e.first_seen, e.last_seen),
            (true, Some(i64::MIN / 1_000_000), None)
        );
        assert_eq!(
            added(&store),
            ["domain a.example", "domain b.example", "domain e.example"]
        );
        assert_eq!(excluded(&store, "to_ids is false"), 2);
        assert_eq!(skipped(&store, "type not matched: AS"), 1);
        assert_eq!(store.records_by_source[0], 6);
    }

    #[test]
    fn excluded_attributes_are_counted_not_added() {
        let mut deleted = attr("domain|ip", "gone.example|198.51.100.9");
        deleted["deleted"] = json!(true);
        let mut not_ids = attr("domain", "context.example");
        not_ids["to_ids"] = json!(false);
        let kept = attr("domain", "kept.example");
        let event = json!({"uuid": "e1", "Attribute": [deleted, not_ids, kept]});
        let store = load(event.clone());
        assert_eq!(added(&store), ["domain kept.example"]);
        assert_eq!(
            excluded(&store, "deleted"),
            1,
            "a composite is counted once"
        );
        assert_eq!(excluded(&store, "to_ids is false"), 1);

        let options = StoreOptions {
            include_non_ids: false,
            keep_excluded: true,
            ..StoreOptions::default()
        };
        let (mut explain, source) = new_store(options);
        load_misp_value(&mut explain, &event, source, "t").expect("loads");
        assert_eq!(explain.len(), 4);
        assert!(metas(&explain, Kind::Ipv4, "198.51.100.9")[0].deleted);
    }

    #[test]
    fn objects_attributes_are_loaded_and_deleted_objects_excluded() {
        let store = load(json!({"Event": {"uuid": "e1", "Object": [
            {"name": "ip-port", "Attribute": [attr("ip-dst", "198.51.100.20"), attr("port", "995")]},
            {"name": "domain-ip", "deleted": true, "Attribute": [attr("domain", "dead.example")]},
            {"name": "file", "Attribute": [attr("sha1", "not-a-hash")]},
        ]}}));
        assert_eq!(added(&store), ["ipv4 198.51.100.20"]);
        assert_eq!(skipped(&store, "type not matched: port"), 1);
        assert_eq!(excluded(&store, "deleted"), 1);
        let last = store
            .skipped
            .last()
            .map(|s| (s.location.as_str(), s.reason.as_str()));
        let want = (
            "test.json: Event[e1] Object[2] Attribute[0]",
            "hash is not hexadecimal",
        );
        assert_eq!(last, Some(want));
    }

    #[test]
    fn deleted_events_sightings_and_decay_scores() {
        let mut sighted = attr("domain", "sighted.example");
        sighted["timestamp"] = json!("1533306058");
        sighted["Sighting"] = json!([
            {"type": "0", "date_sighting": "1551253950"},
            {"type": "0", "date_sighting": "1541253950"},
            {"type": "1", "date_sighting": "1561253950"},
            {"type": "2", "date_sighting": "1571253950"},
        ]);
        sighted["decay_score"] = json!([
            {"score": 12.5, "base_score": 66.5, "decayed": true,
             "DecayingModel": {"id": "1", "name": "NIDS Simple Decaying Model"}},
        ]);
        let store = load(json!([
            {"Event": {"uuid": "e1", "Attribute": [sighted, attr("domain", "plain.example")]}},
            {"Event": {"uuid": "e2", "deleted": true, "Attribute": [attr("domain", "gone.example")],
                       "Object": [{"name": "domain-ip", "Attribute": [attr("domain", "gone2.example")]}]}},
        ]));
        assert_eq!(
            added(&store),
            ["domain sighted.example", "domain plain.example"]
        );
        assert_eq!(excluded(&store, "deleted"), 2);
        assert_eq!(store.withdrawn_by_source.get(&(0, "deleted")), Some(&2));
        let m = metas(&store, Kind::Domain, "sighted.example")[0];
        // The latest positive sighting; the expiration sighting is a valid_until.
        let input = store.decay_input_of(m);
        assert_eq!(input.last_sighting, Some(1_551_253_950));
        assert_eq!(input.base_score, Some(66.5));
        assert_eq!(m.valid_until, Some(1_571_253_950));
        let plain = metas(&store, Kind::Domain, "plain.example")[0];
        assert_eq!(
            plain.decay_input, 0,
            "nothing to record: no side-table entry"
        );
        assert_eq!(store.decay_inputs.len(), 2);
    }

    #[test]
    fn event_provenance_and_attribute_tags() {
        let store = load(json!({"Event": {
            "uuid": "5b646415-0000-4000-8000-000000000001", "info": "Ursnif wave",
            "date": "2018-08-01", "threat_level_id": "1", "distribution": "1",
            "Org": {"name": "Local"}, "Orgc": {"name": "Creator CERT"},
            "Tag": [{"name": "tlp:amber"}, {"name": "misp-galaxy:banker=\"Gozi\""}],
            "Galaxy": [{"GalaxyCluster": [{"tag_name": "misp-galaxy:banker=\"Gozi\""},
                                          {"tag_name": "misp-galaxy:threat-actor=\"TA505\""}]}],
            "Attribute": [{"type": "url", "value": "http://evil.example/a", "to_ids": true,
                           "uuid": "a-1", "category": "Network activity",
                           "Tag": [{"name": "tlp:red"}, {"name": "kill-chain:Delivery"}]}]
        }}));
        let ev = &store.events[0];
        assert_eq!(
            ev.uuid.as_deref(),
            Some("5b646415-0000-4000-8000-000000000001")
        );
        assert_eq!(
            (ev.info.as_deref(), ev.date.as_deref()),
            (Some("Ursnif wave"), Some("2018-08-01"))
        );
        assert_eq!(
            (ev.org.as_deref(), ev.tlp),
            (Some("Creator CERT"), Some(Tlp::Amber))
        );
        assert_eq!((ev.threat_level, ev.distribution), (Some(1), Some(1)));
        let want = [
            "tlp:amber",
            "misp-galaxy:banker=\"Gozi\"",
            "misp-galaxy:threat-actor=\"TA505\"",
        ];
        assert_eq!(ev.tags, want);
        assert_eq!(store.sources[0].provider.as_deref(), Some("Creator CERT"));
        let m = metas(&store, Kind::Url, "evil.example/a")[0];
        assert_eq!(
            (m.tlp, m.attr_uuid.as_deref(), m.event),
            (Some(Tlp::Red), Some("a-1"), Some(0))
        );
        assert_eq!(
            m.category.map(|c| store.strings.get(c)),
            Some("Network activity")
        );
        let mut tags: Vec<&str> = store.tags(m.tags).collect();
        tags.sort_unstable();
        assert_eq!(tags, ["kill-chain:Delivery", "tlp:red"]);
    }

    #[test]
    fn event_lists_and_event_rest_search() {
        let bare =
            json!({"uuid": "e2", "info": "bare", "Attribute": [attr("domain", "two.example")]});
        let wrapped =
            json!({"Event": {"uuid": "e1", "Attribute": [attr("domain", "one.example")]}});
        for value in [json!([wrapped, bare]), json!({"response": [wrapped, bare]})] {
            let store = load(value);
            assert_eq!(store.events.len(), 2);
            assert_eq!(added(&store), ["domain one.example", "domain two.example"]);
            assert_eq!(metas(&store, Kind::Domain, "two.example")[0].event, Some(1));
        }
        let store = load(json!([wrapped, {"SharingGroup": {}}]));
        assert_eq!(skipped(&store, "list element is not a MISP event"), 1);
    }

    #[test]
    fn attribute_rest_search_groups_by_event() {
        let ev_a = json!({"uuid": "ev-a", "info": "Campaign A", "orgc_id": "2", "Orgc": {"name": "CERT-A"}});
        let ev_b = json!({"uuid": "ev-b", "info": "Campaign B"});
        let mut list = Vec::new();
        for (i, ev) in [&ev_a, &ev_b, &ev_a].into_iter().enumerate() {
            let mut a = attr("ip-dst", &format!("198.51.100.{i}"));
            a["Event"] = ev.clone();
            list.push(a);
        }
        let mut orphan = attr("ip-dst", "999.1.1.1");
        orphan["uuid"] = json!("attr-bad");
        list.push(orphan);
        let store = load(json!({"response": {"Attribute": list}}));
        assert_eq!(store.events.len(), 2, "each event added once");
        let ev = &store.events[0];
        assert_eq!(
            (ev.info.as_deref(), ev.org.as_deref()),
            (Some("Campaign A"), Some("CERT-A"))
        );
        let event_of = |v: &str| metas(&store, Kind::Ipv4, v)[0].event;
        assert_eq!(event_of("198.51.100.0"), Some(0));
        assert_eq!(event_of("198.51.100.1"), Some(1));
        assert_eq!(event_of("198.51.100.2"), Some(0));
        assert_eq!(
            store.skipped[0].location,
            "test.json: Attribute[3] (uuid attr-bad)"
        );
        assert_eq!(store.skipped[0].reason, "invalid IP address or CIDR");
    }

    #[test]
    fn record_problems_are_skipped_with_location() {
        let store = load(json!({"Event": {"uuid": "e9", "Attribute": [
            {"type": "domain", "uuid": "u0"},
            {"value": "x.example", "uuid": "u1"},
            {"type": "domain", "value": ["x"], "uuid": "u2"},
            "not an object",
            {"type": "domain", "value": "  ", "uuid": "u4"},
            {"type": "domain", "value": "localhost", "uuid": "u5"},
        ]}}));
        let got: Vec<String> = store
            .skipped
            .iter()
            .map(|s| format!("{} => {}", s.location, s.reason))
            .collect();
        assert_eq!(
            got,
            [
                "test.json: Event[e9] Attribute[0] (uuid u0) => attribute without value",
                "test.json: Event[e9] Attribute[1] (uuid u1) => attribute without type",
                "test.json: Event[e9] Attribute[2] (uuid u2) => attribute value is not a string",
                "test.json: Event[e9] Attribute[3] => attribute is not a JSON object",
                "test.json: Event[e9] Attribute[4] (uuid u4) => attribute value is empty",
                "test.json: Event[e9] Attribute[5] (uuid u5) => domain has a single label",
            ]
        );
        assert_eq!(store.records_by_source[0], 6);
    }

    #[test]
    fn non_misp_json_is_a_format_error() {
        let (mut store, source) = new_store(StoreOptions::default());
        let path = Path::new(FIXTURES).join("../bad-intel/sharing_groups.json");
        let err = load_misp_file(&mut store, &path, source).expect_err("not MISP");
        let IntelError::Format { message, .. } = &err else {
            panic!("want Format, got {err:?}");
        };
        assert!(
            message.contains("none of which is a MISP event"),
            "{message}"
        );
        assert!(message.contains("SharingGroup"), "{message}");
        for value in [
            json!({"type": "bundle", "objects": []}),
            json!("text"),
            json!({"response": 3}),
        ] {
            let err = load_misp_value(&mut store, &value, source, "x.json").expect_err("not MISP");
            assert!(matches!(err, IntelError::Format { .. }), "{value}: {err:?}");
        }
        assert!(store.events.is_empty());
    }

    #[test]
    fn bad_json_reports_line_and_column() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("broken.json");
        std::fs::write(
            &path,
            "{\"Event\": {\n  \"info\": \"x\",\n  \"Attribute\": [,]\n}}",
        )
        .expect("write");
        let (mut store, source) = new_store(StoreOptions::default());
        match load_misp_file(&mut store, &path, source) {
            Err(IntelError::Json { line, column, .. }) => assert_eq!((line, column), (3, 17)),
            other => panic!("want Json error, got {other:?}"),
        }
        let missing = load_misp_file(&mut store, &dir.path().join("absent.json"), source);
        assert!(matches!(missing, Err(IntelError::Io { .. })));
    }

    #[test]
    fn xorist_event_fixture() {
        let store = load_fixture("misp/pymisp-tests/57c4445b-c548-4654-af0b-4be3950d210f.json");
        assert_eq!(store.records_by_source[0], 9);
        let ev = &store.events[0];
        assert_eq!(ev.info.as_deref(), Some("Ransomware - Xorist"));
        assert_eq!(
            (ev.tlp, ev.org.as_deref(), ev.threat_level),
            (Some(Tlp::Clear), Some("CIRCL"), Some(3))
        );
        assert_eq!(ev.date.as_deref(), Some("2016-08-29"));
        let want = [
            "filename 3z4wng9603it23y.exe",
            "md5 0749bae92ca336a02c83d126e04ec628",
            "sha1 77b0c41b7d340b8a3d903f21347bbf06aa766b5b",
            &format!("sha256 {XORIST_SHA256}"),
            // Key and value together, never the generic Run key alone.
            "regkey_value software\\wow6432node\\microsoft\\windows\\currentversion\\run|3z4wng9603it23y.exe",
        ];
        assert_eq!(added(&store), want);
        assert_eq!(skipped(&store, "type not matched: link"), 2);
        assert_eq!(skipped(&store, "type not matched: comment"), 1);
        assert_eq!(skipped(&store, "type not matched: text"), 1);
        // Valid attributes of unmatched types: unsupported, not malformed (--strict).
        assert_eq!(store.unsupported_total, 4);
        assert_eq!(store.malformed_total(), 0);
        let sha = metas(&store, Kind::Sha256, XORIST_SHA256)[0];
        assert_eq!(
            sha.attr_uuid.as_deref(),
            Some("57c4448b-3fa4-4d65-9ccc-4afa950d210f")
        );
        assert_eq!(
            sha.category.map(|c| store.strings.get(c)),
            Some("Payload delivery")
        );
        let info = sha
            .event
            .and_then(|e| store.events[e as usize].info.as_deref());
        assert_eq!(info, Some("Ransomware - Xorist"));
    }

    #[test]
    fn qakbot_event_fixture_with_objects() {
        let store = load_fixture("misp/pymisp-tests/to_delete3.json");
        // 48 attributes + 24 ip-port objects of 2 attributes each.
        assert_eq!(store.records_by_source[0], 96);
        assert_eq!(skipped(&store, "type not matched: port"), 24);
        let m = metas(&store, Kind::Ipv4, "64.183.173.170");
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].attr_uuid.as_deref(),
            Some("5a0acc3f-9d2c-4cb7-86b7-4f26950d210f")
        );
        // File names written as paths stand for their last component.
        assert!(store.sets[Kind::Filename as usize]
            .find(b"cexpalgxx.exe")
            .is_some());
        assert!(!store
            .skipped
            .iter()
            .any(|s| s.reason.contains("path separator")));
    }

    #[test]
    fn api_shape_fixtures() {
        let store = load_fixture("misp/pymisp-tests/existing_event.json");
        let ev = &store.events[0];
        let info = "OSINT - Sednit update: How Fancy Bear Spent the Year";
        assert_eq!(ev.info.as_deref(), Some(info));
        assert_eq!((ev.distribution, ev.tlp), (Some(3), Some(Tlp::Clear)));
        assert!(ev
            .tags
            .iter()
            .any(|t| t == "misp-galaxy:threat-actor=\"Sofacy\""));
        assert_eq!(store.records_by_source[0], 122);

        let store = load_fixture("misp/pymisp-tests/attribute_del.json");
        assert!(store.is_empty());
        assert_eq!(excluded(&store, "deleted"), 1);

        let store = load_fixture("misp/pymisp-tests/sighting_1.json");
        assert_eq!(store.events[0].org.as_deref(), Some("Synovus Financial"));
        assert_eq!(store.records_by_source[0], 5);
    }

    #[test]
    fn infoblox_feed_dir_with_missing_events() {
        let mut store = IntelStore::new(StoreOptions::default());
        let dir = Path::new(FIXTURES).join("misp/infoblox-feed");
        load_misp_feed_dir(&mut store, &dir, None).expect("feed loads");
        let src = &store.sources[0];
        let want = ("infoblox-feed", "misp-feed", Some("Infoblox"));
        assert_eq!(
            (src.name.as_str(), src.format, src.provider.as_deref()),
            want
        );
        // The manifest lists 46 events; 6 event files are present, with 243 attributes.
        assert_eq!(store.events.len(), 6);
        assert_eq!(skipped(&store, MISSING_EVENT_FILE), 40);
        assert_eq!(store.records_by_source[0], 243);
        // One real record problem: a filename|sha256 attribute whose value has no '|'.
        let others: Vec<_> = store
            .skipped
            .iter()
            .filter(|s| s.reason != MISSING_EVENT_FILE)
            .collect();
        assert_eq!(others.len(), 1, "{others:#?}");
        assert!(others[0].location.ends_with(
            "68f58844-4aa6-4e1c-8ee5-cfb58eb6665e.json: Event[68f58844-4aa6-4e1c-8ee5-cfb58eb6665e] \
             Attribute[28] (uuid e1763fb6-c003-48bf-b51e-a255340b4160)"
        ));
        assert_eq!(
            others[0].reason,
            "composite filename|sha256 value without '|'"
        );
        // One indicator held by three events: the overlap shows as three metas.
        let m = metas(&store, Kind::Domain, "claudfront.net");
        let mut infos: Vec<&str> = m
            .iter()
            .filter_map(|m| store.events[m.event? as usize].info.as_deref())
            .collect();
        infos.sort_unstable();
        let want = [
            "c2_beacon_20230414_iocs",
            "decoy_dog_cta_20230420_iocs",
            "decoy_dog_cta_20230714_iocs",
        ];
        assert_eq!(infos, want);
        assert!(m.iter().all(|m| m.to_ids && m.tlp.is_none()));
        assert_eq!(store.tlp_of(m[0]), Some(Tlp::Clear));
        assert_eq!(m[0].first_seen, Some(1_675_814_400));
    }

    #[test]
    fn feed_dir_loads_unlisted_files_and_skips_bad_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let listed = "11111111-1111-4111-8111-111111111111";
        let unlisted = "22222222-2222-4222-8222-222222222222";
        let broken = "33333333-3333-4333-8333-333333333333";
        let missing = "44444444-4444-4444-8444-444444444444";
        let manifest =
            json!({listed: {"Orgc": {"name": "Feed Org"}}, broken: {}, missing: {}, "../x": {}});
        let write = |name: &str, v: &str| std::fs::write(dir.path().join(name), v).expect("write");
        let event =
            |uuid, value| json!({"Event": {"uuid": uuid, "Attribute": [attr("domain", value)]}});
        write("manifest.json", &manifest.to_string());
        write(
            &format!("{listed}.json"),
            &event(listed, "listed.example").to_string(),
        );
        write(
            &format!("{unlisted}.json"),
            &event(unlisted, "unlisted.example").to_string(),
        );
        write(&format!("{broken}.json"), "{\"Event\": ");
        write("hashes.csv", "not an event");
        let mut store = IntelStore::new(StoreOptions::default());
        load_misp_feed_dir(&mut store, dir.path(), Some("my feed")).expect("feed loads");
        assert_eq!(store.sources[0].name, "my feed");
        assert_eq!(store.sources[0].provider.as_deref(), Some("Feed Org"));
        assert_eq!(
            added(&store),
            ["domain listed.example", "domain unlisted.example"]
        );
        assert_eq!(skipped(&store, MISSING_EVENT_FILE), 1);
        assert_eq!(skipped(&store, "feed event file is not valid JSON"), 1);
        assert_eq!(skipped(&store, "feed manifest key is not a UUID"), 1);

        let empty = tempfile::tempdir().expect("temp dir");
        let err = load_misp_feed_dir(&mut store, empty.path(), None);
        assert!(matches!(err, Err(IntelError::Io { .. })));
    }
}
