//! Fetchers of feeds over HTTP(S): CSV and freetext lists ([`CsvFetcher`],
//! [`FreetextFetcher`]), MISP-format feeds ([`MispFeedFetcher`]), and the `file` kind
//! ([`FileFetcher`], nothing to fetch: the index reads the path itself).
//!
//! What each keeps in its data directory (a format [`crate::intel::load`] reads):
//! - `csv`: `feed.txt`, one value a line, taken from the configured column
//!   (`column`, `delimiter`, `skip_header`); types are detected from each value and
//!   defanged values refanged, as for any plain list.
//! - `freetext`: `feed.txt`, the body as served.
//! - `misp-feed`: `manifest.json` and one `<event uuid>.json` per event.
//!
//! Conditional requests: the `ETag` and `Last-Modified` of the last good answer are
//! kept in the cursor and sent back (`If-None-Match`, `If-Modified-Since`); a 304
//! changes nothing. They are sent only while the data they describe is on disk and the
//! URL is the one they came from.
//!
//! A MISP-format feed is applied event by event: only events whose manifest timestamp
//! differs from the one in the cursor (or whose file is missing) are fetched, each
//! written whole (temporary name, rename); events gone from the manifest are removed;
//! the manifest is written last, so the directory is always a loadable feed and a
//! crash costs at most fetching again what the next pass finds changed. An event that
//! answers 404 or is not a MISP event is left out of this pass (logged, tried again
//! next pass; an older copy stays); any other failure fails the pass.
//!
//! `hashes.csv`, when the feed has one (PyMISP's and MISP's feed generators write
//! `md5(value),event uuid` per attribute value, each part of a composite value apart),
//! is fetched conditionally on every pass, a 304 or 404 costing one request. When it
//! changed, it is checked against the cached events: an event the manifest did not
//! re-stamp but whose values differ from the feed's hashes (an event edited without
//! a new timestamp, a torn or stale copy) is fetched again, once per change of
//! `hashes.csv`; one that still differs after that (the feed's files disagree with
//! each other) is kept, logged and counted in the pass report, never dropped.
//! `hashes.csv` is advisory: its absence or failure never fails the pass.
//!
//! Costs: one request per list; a feed pass costs one request for the manifest, one
//! for `hashes.csv`, plus one per changed event, sequentially. Bodies are held whole
//! in memory (up to the client's body limit). Checking `hashes.csv` reads every
//! cached event of the feed (only when `hashes.csv` changed).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{write_atomic, Credentials, Fetcher, PassContext, PassReport, SourceConfig, SyncError};
use crate::net::Answer;

/// The file a list feed keeps (read by the plain-list loader).
pub const LIST_FILE: &str = "feed.txt";

/// `Authorization` for a feed: `Bearer <key>` or HTTP basic.
fn auth_header(source: &SourceConfig) -> Option<String> {
    use base64::Engine;
    match &source.credentials {
        Credentials::None => None,
        Credentials::ApiKey(k) => Some(format!("Bearer {}", k.expose())),
        Credentials::Basic { username, password } => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", password.expose()))
        )),
    }
}

/// One GET with the source's credentials and `extra` headers.
fn get(ctx: &PassContext<'_>, url: &str, extra: &[(String, String)]) -> Result<Answer, SyncError> {
    let auth = auth_header(ctx.source);
    let mut headers: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    ctx.client
        .get(url, &[], &headers)
        .map_err(|source| SyncError::Http {
            source_name: ctx.source.name.clone(),
            source,
        })
}

/// `If-None-Match` / `If-Modified-Since` from a cursor kept for `url`.
fn conditional(cursor: &Value, url: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if cursor.get("url").and_then(Value::as_str) != Some(url) {
        return out;
    }
    if let Some(e) = cursor.get("etag").and_then(Value::as_str) {
        out.push(("If-None-Match".to_string(), e.to_string()));
    }
    if let Some(m) = cursor.get("last_modified").and_then(Value::as_str) {
        out.push(("If-Modified-Since".to_string(), m.to_string()));
    }
    out
}

/// The validators of an answer, as kept in a cursor.
fn validators(answer: &Answer, url: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("url".into(), json!(url));
    if let Some(e) = answer.header("etag") {
        m.insert("etag".into(), json!(e));
    }
    if let Some(l) = answer.header("last-modified") {
        m.insert("last_modified".into(), json!(l));
    }
    m
}

fn config_error(source: &SourceConfig, key: &str, message: impl Into<String>) -> SyncError {
    SyncError::Config {
        source_name: source.name.clone(),
        key: key.to_string(),
        message: message.into(),
    }
}

fn io_error(source: &SourceConfig, path: &Path, e: std::io::Error) -> SyncError {
    SyncError::Io {
        source_name: source.name.clone(),
        path: path.to_path_buf(),
        source: e,
    }
}

/// Refuses any option not in `known`, naming it.
fn only_keys(source: &SourceConfig, known: &[&str]) -> Result<(), SyncError> {
    for k in source.options.keys() {
        if !known.contains(&k.as_str()) {
            let hint = if known.is_empty() {
                format!("unknown key for kind \"{}\"", source.kind.as_str())
            } else {
                format!(
                    "unknown key for kind \"{}\" (its keys: {})",
                    source.kind.as_str(),
                    known.join(", ")
                )
            };
            return Err(config_error(source, k, hint));
        }
    }
    Ok(())
}

/// Writes a list file when its content changed; counts values added and removed.
fn apply_list(
    ctx: &mut PassContext<'_>,
    content: &[u8],
    answer: &Answer,
    url: &str,
) -> Result<PassReport, SyncError> {
    let path = ctx.data_dir.join(LIST_FILE);
    let old = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error(ctx.source, &path, e)),
    };
    let lines = |b: &[u8]| -> HashSet<Vec<u8>> {
        b.split(|&c| c == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .collect()
    };
    let mut report = PassReport {
        bytes_fetched: answer.body.len() as u64,
        requests: 1,
        ..PassReport::default()
    };
    let exists = path.is_file();
    if !exists || old != content {
        let (before, after) = (lines(&old), lines(content));
        report.upserted = after.difference(&before).count() as u64;
        report.deleted = before.difference(&after).count() as u64;
        write_atomic(&path, content).map_err(|e| io_error(ctx.source, &path, e))?;
        report.changed = true;
    }
    *ctx.cursor = Value::Object(validators(answer, url));
    Ok(report)
}

/// Fetches a list URL; `None` when the server answered 304 (nothing changed).
fn fetch_list(ctx: &mut PassContext<'_>) -> Result<Option<Answer>, SyncError> {
    let url = ctx.source.url.clone();
    let have = ctx.data_dir.join(LIST_FILE).is_file();
    let cond = if have {
        conditional(ctx.cursor, &url)
    } else {
        Vec::new()
    };
    let answer = get(ctx, &url, &cond)?;
    if answer.status == 304 {
        return Ok(None);
    }
    Ok(Some(answer))
}

fn not_modified() -> PassReport {
    PassReport {
        requests: 1,
        ..PassReport::default()
    }
}

/// A freetext feed: one value a line (comments and defanged values as the plain-list
/// loader reads them). No options.
pub struct FreetextFetcher;

impl Fetcher for FreetextFetcher {
    fn check_options(&self, source: &SourceConfig) -> Result<(), SyncError> {
        only_keys(source, &[])
    }

    fn pass(&mut self, ctx: &mut PassContext<'_>) -> Result<PassReport, SyncError> {
        let Some(answer) = fetch_list(ctx)? else {
            return Ok(not_modified());
        };
        let url = ctx.source.url.clone();
        apply_list(ctx, answer.body.as_bytes(), &answer, &url)
    }
}

/// Which CSV column holds the value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Column {
    Index(usize),
    /// By header name (case-insensitive): the first row is the header.
    Name(String),
}

/// A CSV feed's settings (`column`, `delimiter`, `skip_header`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct CsvOptions {
    column: Column,
    delimiter: u8,
    skip_header: bool,
}

impl CsvOptions {
    fn parse(source: &SourceConfig) -> Result<CsvOptions, SyncError> {
        only_keys(source, &["column", "delimiter", "skip_header"])?;
        let o = &source.options;
        let column = match o.get("column") {
            None => Column::Index(0),
            Some(toml::Value::Integer(i)) => match usize::try_from(*i) {
                Ok(i) if i <= 1000 => Column::Index(i),
                _ => {
                    return Err(config_error(
                        source,
                        "column",
                        format!("a column index is between 0 and 1000, got {i}"),
                    ))
                }
            },
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Column::Name(s.trim().into()),
            Some(_) => {
                return Err(config_error(
                    source,
                    "column",
                    "expected a 0-based column index or a header name",
                ))
            }
        };
        let delimiter = match o.get("delimiter") {
            None => b',',
            Some(toml::Value::String(s)) if s.len() == 1 && s.is_ascii() => s.as_bytes()[0],
            Some(_) => {
                return Err(config_error(
                    source,
                    "delimiter",
                    "expected one ASCII character such as \",\", \";\" or \"\\t\"",
                ))
            }
        };
        let skip_header = match o.get("skip_header") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => {
                return Err(config_error(
                    source,
                    "skip_header",
                    "expected true or false",
                ))
            }
        };
        Ok(CsvOptions {
            column,
            delimiter,
            skip_header,
        })
    }

    /// The values of the configured column, one a line. Rows starting with `#` are
    /// comments; rows without the column or with an empty value are left out.
    fn extract(&self, body: &str) -> Result<String, String> {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .from_reader(body.as_bytes());
        let mut records = rdr.records();
        let col = match &self.column {
            Column::Index(i) => {
                if self.skip_header {
                    records.next();
                }
                *i
            }
            Column::Name(n) => {
                let header = match records.next() {
                    Some(Ok(h)) => h,
                    _ => return Err("the feed has no header row".into()),
                };
                header
                    .iter()
                    .position(|h| h.trim().eq_ignore_ascii_case(n))
                    .ok_or_else(|| {
                        format!(
                            "no CSV column named {n:?} (columns: {})",
                            header
                                .iter()
                                .map(|h| format!("{:?}", h.trim()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })?
            }
        };
        let mut out = String::with_capacity(body.len() / 2);
        for rec in records.flatten() {
            if let Some(v) = rec.get(col).map(str::trim).filter(|v| !v.is_empty()) {
                out.push_str(v);
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// A CSV feed: the configured column's values, kept as a plain list.
pub struct CsvFetcher;

impl Fetcher for CsvFetcher {
    fn check_options(&self, source: &SourceConfig) -> Result<(), SyncError> {
        CsvOptions::parse(source).map(|_| ())
    }

    fn pass(&mut self, ctx: &mut PassContext<'_>) -> Result<PassReport, SyncError> {
        let opts = CsvOptions::parse(ctx.source)?;
        let Some(answer) = fetch_list(ctx)? else {
            return Ok(not_modified());
        };
        let values = opts
            .extract(&answer.body)
            .map_err(|what| SyncError::Protocol {
                source_name: ctx.source.name.clone(),
                what,
            })?;
        let url = ctx.source.url.clone();
        apply_list(ctx, values.as_bytes(), &answer, &url)
    }
}

/// A local file or directory: nothing to fetch (the index loads the path itself).
pub struct FileFetcher;

impl Fetcher for FileFetcher {
    fn check_options(&self, source: &SourceConfig) -> Result<(), SyncError> {
        only_keys(source, &[])
    }

    fn pass(&mut self, _ctx: &mut PassContext<'_>) -> Result<PassReport, SyncError> {
        Ok(PassReport::default())
    }
}

/// A MISP-format feed over HTTP(S) (see the module doc for the order of writes).
pub struct MispFeedFetcher;

/// `8-4-4-4-12` hex digits: the manifest keys that become file names.
fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The feed's base URL, ending in `/` (a URL naming `manifest.json` is accepted).
fn feed_base(url: &str) -> String {
    let u = url.trim().trim_end_matches("manifest.json");
    if u.ends_with('/') {
        u.to_string()
    } else {
        format!("{u}/")
    }
}

/// The `hashes.csv` of a MISP-format feed.
pub const HASHES_FILE: &str = "hashes.csv";

/// The md5 (lower-case hex) of each value of a MISP event, as a feed's `hashes.csv`
/// lists them: every attribute, those of objects too; a composite value (`a|b`, the
/// type holding `|`, and `malware-sample`) hashed per part. `None` when `event` is
/// not a MISP event.
pub fn event_value_hashes(event: &Value) -> Option<BTreeSet<String>> {
    use md5::Digest;
    let e = event.get("Event").filter(|e| e.is_object())?;
    let mut out = BTreeSet::new();
    let mut add = |a: &Value| {
        let ty = a.get("type").and_then(Value::as_str).unwrap_or("");
        let value = match a.get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => return,
            Some(v) => v.to_string(),
        };
        let parts: Vec<&str> = if ty.contains('|') || ty == "malware-sample" {
            value.split('|').collect()
        } else {
            vec![value.as_str()]
        };
        for p in parts {
            let digest = md5::Md5::digest(p.as_bytes());
            out.insert(
                digest
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            );
        }
    };
    for a in e
        .get("Attribute")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add(a);
    }
    for o in e
        .get("Object")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for a in o
            .get("Attribute")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add(a);
        }
    }
    Some(out)
}

/// A feed's `hashes.csv`: event uuid (lower case) → md5s of its values. Lines that
/// are not `<32 hex>,<uuid>` are counted, not kept.
pub fn parse_hashes(text: &str) -> (BTreeMap<String, BTreeSet<String>>, u64) {
    let mut by_event: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut bad = 0u64;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((hash, uuid)) = line.split_once(',') else {
            bad += 1;
            continue;
        };
        let (hash, uuid) = (hash.trim(), uuid.trim());
        if hash.len() != 32
            || !hash.bytes().all(|b| b.is_ascii_hexdigit())
            || !looks_like_uuid(uuid)
        {
            bad += 1;
            continue;
        }
        by_event
            .entry(uuid.to_ascii_lowercase())
            .or_default()
            .insert(hash.to_ascii_lowercase());
    }
    (by_event, bad)
}

/// A manifest entry's timestamp as compared between passes.
fn entry_stamp(entry: &Value) -> String {
    match entry.get("timestamp") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

impl Fetcher for MispFeedFetcher {
    fn check_options(&self, source: &SourceConfig) -> Result<(), SyncError> {
        only_keys(source, &[])
    }

    fn pass(&mut self, ctx: &mut PassContext<'_>) -> Result<PassReport, SyncError> {
        let name = ctx.source.name.clone();
        let protocol = |what: String| SyncError::Protocol {
            source_name: name.clone(),
            what,
        };
        let base = feed_base(&ctx.source.url);
        let manifest_url = format!("{base}manifest.json");
        let manifest_path = ctx.data_dir.join("manifest.json");
        let cond = if manifest_path.is_file() {
            conditional(ctx.cursor, &manifest_url)
        } else {
            Vec::new()
        };
        let answer = get(ctx, &manifest_url, &cond)?;
        let mut report = PassReport {
            requests: 1,
            bytes_fetched: answer.body.len() as u64,
            ..PassReport::default()
        };
        if answer.status == 304 {
            // The manifest holds still; hashes.csv may still say an event changed.
            let listed: Vec<String> = ctx
                .cursor
                .get("events")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let hashes = self.check_hashes(ctx, &base, &listed, &HashSet::new(), &mut report)?;
            if let Value::Object(c) = ctx.cursor {
                set_hashes_cursor(c, hashes);
            }
            return Ok(report);
        }
        let manifest: Value = serde_json::from_str(&answer.body)
            .map_err(|e| protocol(format!("manifest.json is not JSON: {e}")))?;
        let Value::Object(entries) = manifest else {
            return Err(protocol(
                "manifest.json is not a JSON object keyed by event UUID".into(),
            ));
        };
        // What the last good pass applied (uuid → manifest timestamp).
        let known: BTreeMap<String, String> = ctx
            .cursor
            .get("events")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let mut applied: BTreeMap<String, String> = BTreeMap::new();
        let mut kept = Map::new();
        let mut left_out = 0u64;
        let mut fetched: HashSet<String> = HashSet::new();
        for (uuid, entry) in &entries {
            if !looks_like_uuid(uuid) {
                tracing::warn!(source = %name, key = %uuid, "Feed manifest key is not a UUID; left out.");
                continue;
            }
            let uuid = uuid.to_ascii_lowercase();
            let stamp = entry_stamp(entry);
            let path = ctx.data_dir.join(format!("{uuid}.json"));
            let have = path.is_file();
            if have && known.get(&uuid) == Some(&stamp) {
                applied.insert(uuid.clone(), stamp);
                kept.insert(uuid, entry.clone());
                continue;
            }
            let event_url = format!("{base}{uuid}.json");
            let event = match get(ctx, &event_url, &[]) {
                Ok(a) => a,
                Err(SyncError::Http {
                    source: crate::net::HttpError::Status { status: 404, .. },
                    ..
                }) => {
                    tracing::warn!(source = %name, event = %uuid, "Feed event listed but not found (404); tried again next pass.");
                    left_out += 1;
                    if have {
                        kept.insert(uuid, entry.clone());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            report.requests += 1;
            report.bytes_fetched += event.body.len() as u64;
            let ok = serde_json::from_str::<Value>(&event.body)
                .ok()
                .is_some_and(|v| v.get("Event").is_some_and(Value::is_object));
            if !ok {
                tracing::warn!(source = %name, event = %uuid, "Feed event is not a MISP event; tried again next pass.");
                left_out += 1;
                if have {
                    kept.insert(uuid, entry.clone());
                }
                continue;
            }
            write_atomic(&path, event.body.as_bytes())
                .map_err(|e| io_error(ctx.source, &path, e))?;
            report.upserted += 1;
            report.changed = true;
            fetched.insert(uuid.clone());
            applied.insert(uuid.clone(), stamp);
            kept.insert(uuid, entry.clone());
        }
        let listed: Vec<String> = kept.keys().cloned().collect();
        let hashes = self.check_hashes(ctx, &base, &listed, &fetched, &mut report)?;
        // Events gone from the manifest: removed before the manifest is written, so
        // that a crash in between leaves them listed but missing (skipped), never
        // loaded as unlisted extras.
        let rd =
            std::fs::read_dir(ctx.data_dir).map_err(|e| io_error(ctx.source, ctx.data_dir, e))?;
        for entry in rd.filter_map(Result::ok) {
            let p = entry.path();
            let Some(stem) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            if looks_like_uuid(stem) && !kept.contains_key(&stem.to_ascii_lowercase()) {
                std::fs::remove_file(&p).map_err(|e| io_error(ctx.source, &p, e))?;
                report.deleted += 1;
                report.changed = true;
            }
        }
        let text = serde_json::to_string(&Value::Object(kept))
            .map_err(|e| protocol(format!("cannot write the manifest: {e}")))?;
        let old = std::fs::read_to_string(&manifest_path).ok();
        if old.as_deref() != Some(text.as_str()) {
            write_atomic(&manifest_path, text.as_bytes())
                .map_err(|e| io_error(ctx.source, &manifest_path, e))?;
            report.changed = true;
        }
        if left_out > 0 {
            tracing::warn!(source = %name, left_out, "Feed events left out of this pass.");
        }
        let mut cursor = validators(&answer, &manifest_url);
        if left_out > 0 {
            // Not validated as a whole: fetch the manifest again next pass.
            cursor.remove("etag");
            cursor.remove("last_modified");
        }
        cursor.insert(
            "events".into(),
            Value::Object(applied.into_iter().map(|(k, v)| (k, json!(v))).collect()),
        );
        set_hashes_cursor(&mut cursor, hashes);
        *ctx.cursor = Value::Object(cursor);
        Ok(report)
    }
}

/// What [`MispFeedFetcher::check_hashes`] leaves for the cursor: the validators of
/// the `hashes.csv` checked (`None`: none to keep; the old ones when unchanged).
type HashesCursor = Option<Map<String, Value>>;

fn set_hashes_cursor(cursor: &mut Map<String, Value>, hashes: HashesCursor) {
    match hashes {
        Some(h) => {
            cursor.insert("hashes".into(), Value::Object(h));
        }
        None => {
            cursor.remove("hashes");
        }
    }
}

impl MispFeedFetcher {
    /// Fetches `hashes.csv` (conditionally) and, when it changed, checks the cached
    /// events of `listed` against it: one not in `fetched` (this pass's downloads)
    /// whose values differ is fetched again; one that differs after that is kept and
    /// logged. Never fails the pass for `hashes.csv` itself (absent, unreachable, bad
    /// lines); fails it only as an event fetch or a write would.
    fn check_hashes(
        &self,
        ctx: &mut PassContext<'_>,
        base: &str,
        listed: &[String],
        fetched: &HashSet<String>,
        report: &mut PassReport,
    ) -> Result<HashesCursor, SyncError> {
        let name = ctx.source.name.clone();
        let url = format!("{base}{HASHES_FILE}");
        let old = ctx.cursor.get("hashes").cloned().unwrap_or(Value::Null);
        let old_map = old.as_object().cloned();
        let answer = match get(ctx, &url, &conditional(&old, &url)) {
            Ok(a) => a,
            Err(SyncError::Http {
                source: crate::net::HttpError::Status { status: 404, .. },
                ..
            }) => {
                report.requests += 1;
                return Ok(None);
            }
            Err(e) => {
                report.requests += 1;
                tracing::warn!(source = %name, error = %e, "Feed hashes.csv not fetched; the events are not checked against it this pass.");
                return Ok(old_map);
            }
        };
        report.requests += 1;
        report.bytes_fetched += answer.body.len() as u64;
        if answer.status == 304 {
            return Ok(old_map);
        }
        let (feed, bad) = parse_hashes(&answer.body);
        if bad > 0 {
            tracing::warn!(source = %name, lines = bad, "Feed hashes.csv lines that are not `md5,event uuid`; ignored.");
        }
        let mut disagree = 0u64;
        for uuid in listed {
            let path = ctx.data_dir.join(format!("{uuid}.json"));
            let ours = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| event_value_hashes(&v));
            let Some(ours) = ours else { continue };
            let empty = BTreeSet::new();
            let theirs = feed.get(uuid).unwrap_or(&empty);
            if &ours == theirs {
                continue;
            }
            if fetched.contains(uuid) {
                disagree += 1;
                tracing::warn!(source = %name, event = %uuid, "Feed event differs from the feed's hashes.csv (just fetched); kept.");
                continue;
            }
            tracing::info!(source = %name, event = %uuid, "Cached feed event differs from the feed's hashes.csv; fetching it again.");
            let event_url = format!("{base}{uuid}.json");
            let body = match get(ctx, &event_url, &[]) {
                Ok(a) => a.body,
                Err(SyncError::Http {
                    source: crate::net::HttpError::Status { status: 404, .. },
                    ..
                }) => {
                    report.requests += 1;
                    disagree += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            report.requests += 1;
            report.bytes_fetched += body.len() as u64;
            let Some(v) = serde_json::from_str::<Value>(&body).ok() else {
                disagree += 1;
                continue;
            };
            let Some(now) = event_value_hashes(&v) else {
                disagree += 1;
                continue;
            };
            if now != ours {
                write_atomic(&path, body.as_bytes()).map_err(|e| io_error(ctx.source, &path, e))?;
                report.upserted += 1;
                report.changed = true;
            }
            if &now != theirs {
                disagree += 1;
                tracing::warn!(source = %name, event = %uuid, "Feed event still differs from the feed's hashes.csv after fetching it again; kept.");
            }
        }
        if disagree > 0 {
            tracing::warn!(source = %name, events = disagree, "Feed events that disagree with its hashes.csv.");
        }
        Ok(Some(validators(&answer, &url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::sync::SourceKind;

    fn source(kind: SourceKind, options: &str) -> SourceConfig {
        SourceConfig {
            name: "feed".into(),
            kind,
            url: "https://feeds.example/x.csv".into(),
            collection: None,
            credentials: Credentials::None,
            interval_secs: 3600,
            timeout_secs: 30,
            ca_file: None,
            proxy: None,
            options: toml::from_str(options).expect("toml"),
        }
    }

    #[test]
    fn csv_options_are_checked_by_name() {
        let ok = source(
            SourceKind::Csv,
            "column = 2\ndelimiter = \";\"\nskip_header = true",
        );
        assert_eq!(
            CsvOptions::parse(&ok).expect("valid"),
            CsvOptions {
                column: Column::Index(2),
                delimiter: b';',
                skip_header: true
            }
        );
        for (text, key) in [
            ("colum = 1", "colum"),
            ("column = -1", "column"),
            ("column = true", "column"),
            ("delimiter = \";;\"", "delimiter"),
            ("skip_header = \"yes\"", "skip_header"),
        ] {
            match CsvFetcher.check_options(&source(SourceKind::Csv, text)) {
                Err(SyncError::Config { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        let e = FreetextFetcher
            .check_options(&source(SourceKind::Freetext, "column = 1"))
            .expect_err("freetext has no column");
        assert!(e.to_string().contains("column: unknown key"), "{e}");
    }

    #[test]
    fn csv_columns_by_index_and_name() {
        let body = "# a comment\nfirst_seen;dst_ip;port\n2024-01-01;192.0.2.7;443\n2024-01-02;;80\n2024-01-03;198.51.100.9\n";
        let by_index = CsvOptions {
            column: Column::Index(1),
            delimiter: b';',
            skip_header: true,
        };
        assert_eq!(
            by_index.extract(body).expect("ok"),
            "192.0.2.7\n198.51.100.9\n"
        );
        let by_name = CsvOptions {
            column: Column::Name("DST_IP".into()),
            ..by_index.clone()
        };
        assert_eq!(
            by_name.extract(body).expect("ok"),
            "192.0.2.7\n198.51.100.9\n"
        );
        let missing = CsvOptions {
            column: Column::Name("src".into()),
            ..by_index
        };
        assert!(missing
            .extract(body)
            .unwrap_err()
            .contains("no CSV column named \"src\""));
    }

    #[test]
    fn feed_urls() {
        assert_eq!(
            feed_base("https://f.example/feed"),
            "https://f.example/feed/"
        );
        assert_eq!(
            feed_base("https://f.example/feed/manifest.json"),
            "https://f.example/feed/"
        );
        assert!(looks_like_uuid("5e6b3a1c-1234-4abc-9def-0123456789ab"));
        assert!(!looks_like_uuid("../../../../etc/passwd-000000000000"));
    }
}
