//! [`TaxiiFetcher`]: mirrors one TAXII 2.1 collection into STIX bundle files.
//!
//! Owns the TAXII side of intel sync (issue 11): `url` is the API root
//! (`https://host/trustgroup1/`), `collection` the collection id. A pass
//!
//! 1. reads the collection resource (`GET {root}collections/{id}/`) and refuses a
//!    collection that says `can_read: false`;
//! 2. polls `GET {root}collections/{id}/objects/` with `match[type]` (the `types`
//!    option, `indicator` by default), `match[version]=last`, `limit` (the `limit`
//!    option, 1000 by default; the server may cap it) and, on an incremental pass,
//!    `added_after=<cursor>`;
//! 3. pages while the envelope says `more: true`. A chain that started without
//!    `added_after` follows `next`; a chain that pages by date continues with
//!    `added_after` set to the page's `X-TAXII-Date-Added-Last` header, as does any
//!    chain whose server gives no `next`. A request never carries both `next` and
//!    `added_after` (servers disagree on what that means: the "feed bleed" of issue
//!    11), and the header is kept **verbatim** (a string, never parsed and
//!    re-formatted: `…:00.123456Z` cut to `…:00.123Z` fetches the same objects again,
//!    forever). A request that would repeat the previous one without progress (the same
//!    `added_after`, or the same `next` after an empty page) is a protocol error, not
//!    an endless loop.
//!
//! The cursor (`{"api_root", "collection", "added_after"}`) is the last
//! `X-TAXII-Date-Added-Last` seen. A pass without a cursor for this API root and
//! collection is a full pass: what it fetched **replaces** the data directory
//! (objects no longer served are dropped), so changing the collection or resetting
//! the cursor never leaves stale intel behind.
//!
//! Storage: objects are kept by STIX `id`, latest `modified` (else `created`) wins;
//! an older or equal version is ignored, so fetching a page again is harmless. A
//! revoked object (`revoked: true`) is removed, whatever version is stored (STIX
//! revocation is final). Objects are spread over [`SHARDS`] bundle files
//! `taxii-XX.json` by a stable hash (FNV-1a) of their id, so a small change rewrites
//! a few files; each file is written whole to a temporary name and renamed
//! ([`super::write_atomic`]), an emptied one is removed. The files are plain STIX 2.1
//! bundles that [`crate::intel::stix`] loads.
//!
//! Invariants: a pass writes nothing until every page has been fetched and parsed,
//! so a failed pass (HTTP error, bad JSON, a missing field) leaves the data directory
//! as the last good pass left it; credentials go only into the `Authorization`
//! header (basic for `username`/`password`, `Bearer` for an API key) and never into an
//! error or a log line.
//!
//! Costs: a pass holds what it fetched in memory (each object as compact JSON, about
//! its size on the wire) and rewrites only the shards it touches (a full pass reads
//! and rewrites all of them). Requests: one for the collection plus one per page.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Map, Value};

use super::{write_atomic, Credentials, Fetcher, PassContext, PassReport, SourceConfig, SyncError};
use crate::net::{shorten, Answer, HttpClient, Secret};

/// The TAXII 2.1 media type (`Accept`).
pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// Number of bundle files the objects are spread over.
pub const SHARDS: u64 = 64;

/// The paging header whose value is the next `added_after`, verbatim.
const DATE_ADDED_LAST: &str = "X-TAXII-Date-Added-Last";

/// The page size asked for when the `limit` option is not set (servers cap it to their
/// own maximum; medallion fails a `next` request without any `limit`).
const DEFAULT_LIMIT: u64 = 1000;

/// Largest `limit` accepted (TAXII servers cap their pages anyway).
const MAX_LIMIT: i64 = 100_000;

/// Most pages one pass follows (a guard against a server that pages forever).
const MAX_PAGES: u64 = 1_000_000;

/// The option keys this fetcher reads.
const OPTION_KEYS: &[&str] = &["limit", "types"];

/// Fetches a TAXII 2.1 collection (see the module doc).
#[derive(Debug, Default)]
pub struct TaxiiFetcher {}

impl TaxiiFetcher {
    pub fn new() -> TaxiiFetcher {
        TaxiiFetcher {}
    }
}

/// The validated options of a source.
struct Options {
    limit: u64,
    types: Vec<String>,
}

fn config_error(source: &SourceConfig, key: &str, message: impl Into<String>) -> SyncError {
    SyncError::Config {
        source_name: source.name.clone(),
        key: key.to_string(),
        message: message.into(),
    }
}

fn options(source: &SourceConfig) -> Result<Options, SyncError> {
    if let Some(key) = source
        .options
        .keys()
        .find(|k| !OPTION_KEYS.contains(&k.as_str()))
    {
        return Err(config_error(
            source,
            key,
            format!(
                "unknown option for a taxii source (known: {})",
                OPTION_KEYS.join(", ")
            ),
        ));
    }
    let limit = match source.options.get("limit") {
        None => DEFAULT_LIMIT,
        Some(toml::Value::Integer(n)) if (1..=MAX_LIMIT).contains(n) => *n as u64,
        Some(_) => {
            return Err(config_error(
                source,
                "limit",
                format!("the page size must be an integer from 1 to {MAX_LIMIT}"),
            ))
        }
    };
    let types = match source.options.get("types") {
        None => vec!["indicator".to_string()],
        Some(toml::Value::Array(list)) => {
            let mut types = Vec::new();
            for v in list {
                match v.as_str() {
                    Some(t) if is_stix_type(t) => types.push(t.to_string()),
                    _ => {
                        return Err(config_error(
                            source,
                            "types",
                            format!("{v} is not a STIX object type (such as \"indicator\")"),
                        ))
                    }
                }
            }
            if !types.iter().any(|t| t == "indicator") {
                return Err(config_error(
                    source,
                    "types",
                    "must include \"indicator\" (the only type that matches)",
                ));
            }
            types.sort();
            types.dedup();
            types
        }
        Some(_) => {
            return Err(config_error(
                source,
                "types",
                "must be a list of STIX object types, e.g. [\"indicator\"]",
            ))
        }
    };
    Ok(Options { limit, types })
}

/// A STIX type name: lower-case ASCII letters, digits and hyphens (STIX 2.1 §3.1).
fn is_stix_type(t: &str) -> bool {
    (3..=250).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !t.starts_with('-')
        && !t.ends_with('-')
}

/// A collection id that can go into a URL path as it is.
fn is_collection_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl Fetcher for TaxiiFetcher {
    fn check_options(&self, source: &SourceConfig) -> Result<(), SyncError> {
        options(source)?;
        match source.collection.as_deref() {
            None => Err(config_error(
                source,
                "collection",
                "a taxii source needs the collection id",
            )),
            Some(id) if !is_collection_id(id) => Err(config_error(
                source,
                "collection",
                "a collection id holds only letters, digits and - . _ ~",
            )),
            Some(_) => Ok(()),
        }
    }

    fn pass(&mut self, ctx: &mut PassContext<'_>) -> Result<PassReport, SyncError> {
        self.check_options(ctx.source)?;
        let opts = options(ctx.source)?;
        let collection = ctx.source.collection.clone().unwrap_or_default();
        let root = if ctx.source.url.ends_with('/') {
            ctx.source.url.clone()
        } else {
            format!("{}/", ctx.source.url)
        };
        crate::net::http::parse_destination_url(&root)
            .map_err(|message| config_error(ctx.source, "url", message))?;
        let mut session = Session {
            name: &ctx.source.name,
            client: ctx.client,
            authorization: authorization(&ctx.source.credentials),
            report: PassReport::default(),
        };
        let cursor = cursor_added_after(ctx.cursor, &root, &collection);
        let collection_url = format!("{root}collections/{collection}/");
        session.check_collection(&collection_url)?;
        let objects_url = format!("{collection_url}objects/");
        let (fetched, last) = session.fetch_objects(&objects_url, &opts, cursor.as_deref())?;
        let full = cursor.is_none();
        let mut report = session.report;
        apply(
            ctx.data_dir,
            &ctx.source.name,
            &root,
            &collection,
            fetched,
            full,
            &mut report,
        )?;
        // Keep the old cursor when the server sent no date (an empty page).
        let added_after = last.or(cursor);
        *ctx.cursor = json!({
            "api_root": root,
            "collection": collection,
            "added_after": added_after,
        });
        tracing::info!(
            source = %ctx.source.name,
            requests = report.requests,
            bytes = report.bytes_fetched,
            upserted = report.upserted,
            deleted = report.deleted,
            full,
            "TAXII pass done."
        );
        Ok(report)
    }
}

/// The saved `added_after`, when the cursor is for this API root and collection.
fn cursor_added_after(value: &Value, root: &str, collection: &str) -> Option<String> {
    let o = value.as_object()?;
    if o.get("api_root").and_then(Value::as_str) != Some(root)
        || o.get("collection").and_then(Value::as_str) != Some(collection)
    {
        return None;
    }
    o.get("added_after")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The `Authorization` header value, when the source has credentials.
fn authorization(credentials: &Credentials) -> Option<Secret> {
    match credentials {
        Credentials::None => None,
        Credentials::ApiKey(key) => Some(Secret::new(format!("Bearer {}", key.expose()))),
        Credentials::Basic { username, password } => {
            let raw = format!("{username}:{}", password.expose());
            Some(Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )))
        }
    }
}

/// One object as fetched: its version and, unless revoked, its compact JSON.
struct Fetched {
    version: String,
    /// `None`: revoked.
    body: Option<String>,
}

/// One pass's requests.
struct Session<'a> {
    name: &'a str,
    client: &'a HttpClient,
    authorization: Option<Secret>,
    report: PassReport,
}

impl Session<'_> {
    fn protocol(&self, url: &str, what: impl std::fmt::Display) -> SyncError {
        SyncError::Protocol {
            source_name: self.name.to_string(),
            what: format!("{url}: {what}"),
        }
    }

    fn get(&mut self, url: &str, query: &[(&str, &str)]) -> Result<(Answer, Value), SyncError> {
        let mut headers = vec![("Accept", MEDIA_TYPE)];
        if let Some(a) = &self.authorization {
            headers.push(("Authorization", a.expose()));
        }
        self.report.requests += 1;
        let answer = self
            .client
            .get(url, query, &headers)
            .map_err(|source| SyncError::Http {
                source_name: self.name.to_string(),
                source,
            })?;
        self.report.bytes_fetched += answer.body.len() as u64;
        let value: Value = serde_json::from_str(&answer.body).map_err(|e| {
            self.protocol(
                url,
                format_args!(
                    "the answer is not JSON ({e}): {}",
                    shorten(&answer.body, 120)
                ),
            )
        })?;
        if !value.is_object() {
            return Err(self.protocol(url, "the answer is not a JSON object"));
        }
        Ok((answer, value))
    }

    /// Reads the collection resource: it must exist and be readable.
    fn check_collection(&mut self, url: &str) -> Result<(), SyncError> {
        let (_, value) = self.get(url, &[])?;
        match value.get("can_read") {
            Some(Value::Bool(true)) => Ok(()),
            Some(Value::Bool(false)) => Err(self.protocol(
                url,
                "the collection says can_read: false (these credentials may not read it)",
            )),
            _ => Err(self.protocol(
                url,
                "not a TAXII 2.1 collection resource (no boolean \"can_read\")",
            )),
        }
    }

    /// Every page of objects since `added_after`: the latest version of each object
    /// fetched, and the last `X-TAXII-Date-Added-Last` seen (verbatim).
    fn fetch_objects(
        &mut self,
        url: &str,
        opts: &Options,
        added_after: Option<&str>,
    ) -> Result<(HashMap<String, Fetched>, Option<String>), SyncError> {
        let types = opts.types.join(",");
        let limit = opts.limit.to_string();
        let mut fetched: HashMap<String, Fetched> = HashMap::new();
        let mut last: Option<String> = None;
        // What the next request pages by.
        enum Page {
            Start(Option<String>),
            Next(String),
            AddedAfter(String),
        }
        let mut page = Page::Start(added_after.map(str::to_string));
        let mut by_date = added_after.is_some();
        // The previous request's paging, and whether its page was empty: the same
        // `added_after` twice, or the same `next` after an empty page, makes no progress
        // (medallion keeps one `next` token for a whole chain, so a repeated token
        // alone is fine).
        let mut previous: Option<String> = None;
        let mut previous_empty = false;
        for _ in 0..MAX_PAGES {
            let mut query: Vec<(&str, &str)> = vec![
                ("match[type]", &types),
                ("match[version]", "last"),
                ("limit", &limit),
            ];
            let paging = match &page {
                Page::Start(None) => None,
                Page::Start(Some(a)) | Page::AddedAfter(a) => Some(("added_after", a.as_str())),
                Page::Next(n) => Some(("next", n.as_str())),
            };
            query.extend(paging);
            let key = paging.map(|(k, v)| format!("{k}={v}"));
            let stuck = matches!(page, Page::AddedAfter(_)) || previous_empty;
            if stuck && key.is_some() && key == previous {
                return Err(self.protocol(
                    url,
                    format_args!(
                        "more: true, but paging would repeat the previous request ({})",
                        key.unwrap_or_default()
                    ),
                ));
            }
            previous = key;
            let (answer, envelope) = self.get(url, &query)?;
            let date_last = answer.header(DATE_ADDED_LAST).map(str::to_string);
            let objects = match envelope.get("objects") {
                None | Some(Value::Null) => &[][..],
                Some(Value::Array(list)) => list.as_slice(),
                Some(_) => return Err(self.protocol(url, "envelope \"objects\" is not a list")),
            };
            previous_empty = objects.is_empty();
            for (i, object) in objects.iter().enumerate() {
                let (id, version, revoked) = self.object_fields(url, i, object)?;
                let keep = match fetched.get(&id) {
                    Some(f) => newer(&version, &f.version),
                    None => true,
                };
                if keep {
                    let body = (!revoked).then(|| object.to_string());
                    fetched.insert(id, Fetched { version, body });
                }
            }
            if !objects.is_empty() && date_last.is_none() && by_date {
                tracing::warn!(
                    source = %self.name, url,
                    "TAXII page without {DATE_ADDED_LAST}: the cursor does not advance."
                );
            }
            if date_last.is_some() {
                last = date_last.clone();
            }
            let more = match envelope.get("more") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(self.protocol(url, "envelope \"more\" is not a boolean")),
            };
            if !more {
                return Ok((fetched, last));
            }
            let next = envelope
                .get("next")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_string);
            page = match (next, date_last) {
                // A chain started by date goes on by date (a server may tie its `next`
                // to the first request's `added_after`, which is never sent with it).
                (Some(n), None) => Page::Next(n),
                (Some(n), Some(_)) if !by_date => Page::Next(n),
                (_, Some(d)) => {
                    by_date = true;
                    Page::AddedAfter(d)
                }
                (None, None) => {
                    return Err(self.protocol(
                        url,
                        format_args!(
                            "more: true, but neither \"next\" nor {DATE_ADDED_LAST} to page by"
                        ),
                    ))
                }
            };
        }
        Err(self.protocol(url, format_args!("more than {MAX_PAGES} pages")))
    }

    /// An object's id, version (`modified`, else `created`) and whether it is revoked.
    fn object_fields(
        &self,
        url: &str,
        i: usize,
        object: &Value,
    ) -> Result<(String, String, bool), SyncError> {
        let missing = |what: &str| self.protocol(url, format_args!("objects[{i}]: {what}"));
        let o = object
            .as_object()
            .ok_or_else(|| missing("not a JSON object"))?;
        let id = str_field(o, "id").ok_or_else(|| missing("no \"id\""))?;
        str_field(o, "type").ok_or_else(|| missing(&format!("{id}: no \"type\"")))?;
        let version = str_field(o, "modified")
            .or_else(|| str_field(o, "created"))
            .ok_or_else(|| missing(&format!("{id}: neither \"modified\" nor \"created\"")))?;
        let revoked = o.get("revoked").and_then(Value::as_bool).unwrap_or(false);
        Ok((id.to_string(), version.to_string(), revoked))
    }
}

fn str_field<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Whether STIX timestamp `a` is later than `b` (compared as instants, to the
/// nanosecond; strings that do not parse compare as strings).
fn newer(a: &str, b: &str) -> bool {
    use chrono::DateTime;
    match (
        DateTime::parse_from_rfc3339(a),
        DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(x), Ok(y)) => x > y,
        _ => a > b,
    }
}

/// The shard of an object id (FNV-1a, stable across builds and platforms).
pub fn shard_of(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % SHARDS
}

fn shard_path(dir: &Path, shard: u64) -> PathBuf {
    dir.join(format!("taxii-{shard:02x}.json"))
}

/// A stored object: its version and compact JSON.
struct Stored {
    version: String,
    body: String,
}

/// Reads a shard file written by [`write_shard`] (an absent file is empty).
fn read_shard(path: &Path, name: &str) -> Result<BTreeMap<String, Stored>, SyncError> {
    let io = |source| SyncError::Io {
        source_name: name.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io(e)),
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a STIX bundle written by the TAXII fetcher: {e}"),
        ))
    })?;
    let mut out = BTreeMap::new();
    for o in value
        .get("objects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
    {
        let (Some(id), Some(version)) = (
            str_field(o, "id"),
            str_field(o, "modified").or_else(|| str_field(o, "created")),
        ) else {
            continue;
        };
        out.insert(
            id.to_string(),
            Stored {
                version: version.to_string(),
                body: Value::Object(o.clone()).to_string(),
            },
        );
    }
    Ok(out)
}

/// Writes a shard (objects sorted by id), or removes it when empty.
fn write_shard(
    path: &Path,
    name: &str,
    bundle_id: &str,
    objects: &BTreeMap<String, Stored>,
) -> Result<(), SyncError> {
    let io = |source| SyncError::Io {
        source_name: name.to_string(),
        path: path.to_path_buf(),
        source,
    };
    if objects.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        };
    }
    let mut text =
        String::with_capacity(objects.values().map(|s| s.body.len() + 2).sum::<usize>() + 100);
    text.push_str("{\"type\":\"bundle\",\"id\":");
    text.push_str(&Value::String(bundle_id.to_string()).to_string());
    text.push_str(",\"objects\":[");
    for (i, stored) in objects.values().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push('\n');
        text.push_str(&stored.body);
    }
    text.push_str("\n]}\n");
    write_atomic(path, text.as_bytes()).map_err(io)
}

/// Applies a pass's objects to the data directory (see the module doc): an
/// incremental pass upserts into the shards it touches; a full pass replaces all.
fn apply(
    dir: &Path,
    name: &str,
    root: &str,
    collection: &str,
    fetched: HashMap<String, Fetched>,
    full: bool,
    report: &mut PassReport,
) -> Result<(), SyncError> {
    let mut by_shard: BTreeMap<u64, Vec<(String, Fetched)>> = BTreeMap::new();
    for (id, f) in fetched {
        by_shard.entry(shard_of(&id)).or_default().push((id, f));
    }
    let shards: Vec<u64> = if full {
        (0..SHARDS).collect()
    } else {
        by_shard.keys().copied().collect()
    };
    for shard in shards {
        let path = shard_path(dir, shard);
        let old = read_shard(&path, name)?;
        let incoming = by_shard.remove(&shard).unwrap_or_default();
        let mut changed = false;
        let objects = if full {
            // What the server no longer serves is dropped; an unchanged version keeps
            // its stored text, so an unchanged shard is not rewritten.
            let mut objects = BTreeMap::new();
            for (id, f) in incoming {
                let Some(body) = f.body else { continue };
                match old.get(&id) {
                    Some(s) if s.version == f.version => {}
                    _ => {
                        report.upserted += 1;
                        changed = true;
                    }
                }
                objects.insert(
                    id,
                    Stored {
                        version: f.version,
                        body,
                    },
                );
            }
            let dropped = old.keys().filter(|id| !objects.contains_key(*id)).count();
            report.deleted += dropped as u64;
            changed |= dropped > 0;
            for (id, s) in old {
                if let Some(new) = objects.get_mut(&id) {
                    if new.version == s.version {
                        *new = s;
                    }
                }
            }
            objects
        } else {
            let mut objects = old;
            for (id, f) in incoming {
                match f.body {
                    None => {
                        if objects.remove(&id).is_some() {
                            report.deleted += 1;
                            changed = true;
                        }
                    }
                    Some(body) => {
                        let replace = objects
                            .get(&id)
                            .is_none_or(|s| newer(&f.version, &s.version));
                        if replace {
                            objects.insert(
                                id,
                                Stored {
                                    version: f.version,
                                    body,
                                },
                            );
                            report.upserted += 1;
                            changed = true;
                        }
                    }
                }
            }
            objects
        };
        if changed {
            let bundle_id = format!(
                "bundle--{}",
                uuid::Uuid::new_v5(
                    &uuid::Uuid::NAMESPACE_URL,
                    format!("{root}collections/{collection}/#shard-{shard}").as_bytes()
                )
            );
            write_shard(&path, name, &bundle_id, &objects)?;
            report.changed = true;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(options: &str) -> SourceConfig {
        SourceConfig {
            name: "cert".into(),
            kind: super::super::SourceKind::Taxii,
            url: "http://127.0.0.1:9/root/".into(),
            collection: Some("365fed99-08fa-fdcd-a1b3-fb247eb41d01".into()),
            credentials: Credentials::None,
            interval_secs: 60,
            timeout_secs: 5,
            ca_file: None,
            proxy: None,
            options: toml::from_str(options).expect("options"),
        }
    }

    #[test]
    fn options_are_checked() {
        let f = TaxiiFetcher::new();
        for ok in [
            "",
            "limit = 1",
            "limit = 100000",
            "types = [\"indicator\", \"marking-definition\"]",
        ] {
            f.check_options(&source(ok))
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, key) in [
            ("limit = 0", "limit"),
            ("limit = 100001", "limit"),
            ("limit = \"10\"", "limit"),
            ("types = [\"malware\"]", "types"),
            ("types = [\"Indicator\"]", "types"),
            ("types = \"indicator\"", "types"),
            ("page_size = 10", "page_size"),
        ] {
            match f.check_options(&source(bad)) {
                Err(SyncError::Config { key: k, .. }) => assert_eq!(k, key, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let mut s = source("");
        s.collection = None;
        assert!(f.check_options(&s).is_err());
        s.collection = Some("a/../b".into());
        assert!(f.check_options(&s).is_err());
    }

    #[test]
    fn versions_compare_as_instants() {
        assert!(newer("2024-01-01T00:00:00.0001Z", "2024-01-01T00:00:00Z"));
        assert!(!newer("2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00Z"));
        assert!(newer(
            "2024-01-01T00:00:00.123457Z",
            "2024-01-01T00:00:00.123456Z"
        ));
        assert!(!newer(
            "2023-12-31T23:59:59.999999Z",
            "2024-01-01T00:00:00Z"
        ));
    }

    #[test]
    fn shards_are_stable() {
        // FNV-1a 64 of the id: these values pin the file each id lives in.
        assert_eq!(shard_of(""), 0xcbf2_9ce4_8422_2325 % SHARDS);
        assert_eq!(shard_of("a"), 0xaf63_dc4c_8601_ec8c % SHARDS);
    }

    #[test]
    fn credentials_make_the_header() {
        let basic = Credentials::Basic {
            username: "u".into(),
            password: Secret::new("p"),
        };
        assert_eq!(
            authorization(&basic).map(|s| s.expose().to_string()),
            Some("Basic dTpw".into())
        );
        let key = Credentials::ApiKey(Secret::new("k"));
        assert_eq!(
            authorization(&key).map(|s| s.expose().to_string()),
            Some("Bearer k".into())
        );
        assert!(authorization(&Credentials::None).is_none());
    }

    #[test]
    fn objects_without_id_or_version_are_protocol_errors() {
        let client = HttpClient::builder().build().expect("client");
        let session = Session {
            name: "cert",
            client: &client,
            authorization: None,
            report: PassReport::default(),
        };
        let url = "http://127.0.0.1:9/root/collections/c/objects/";
        for (object, want) in [
            (json!({"type": "indicator"}), "objects[3]: no \"id\""),
            (
                json!({"id": "indicator--1"}),
                "objects[3]: indicator--1: no \"type\"",
            ),
            (
                json!({"id": "indicator--1", "type": "indicator"}),
                "indicator--1: neither \"modified\" nor \"created\"",
            ),
            (json!("x"), "objects[3]: not a JSON object"),
        ] {
            match session.object_fields(url, 3, &object) {
                Err(e @ SyncError::Protocol { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains(url) && text.contains(want), "{text}");
                }
                other => panic!("{object}: {other:?}"),
            }
        }
        let (id, version, revoked) = session
            .object_fields(
                url,
                0,
                &json!({"id": "marking-definition--1", "type": "marking-definition",
                        "created": "2017-01-20T00:00:00.000Z", "revoked": true}),
            )
            .expect("fields");
        assert_eq!(
            (id.as_str(), version.as_str(), revoked),
            ("marking-definition--1", "2017-01-20T00:00:00.000Z", true)
        );
    }
}
