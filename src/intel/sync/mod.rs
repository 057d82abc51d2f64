//! Intel sync: pulling each community's intel into a local cache, one source at a time.
//!
//! Design (issue 11). Every remote source (`[[intel.sources]]` in the config) is
//! mirrored into its own directory of the state directory,
//! `<state>/intel/<name>/data/`, **in a format the file loaders already read**
//! ([`crate::intel::load`]): a MISP REST source keeps a MISP-format feed (a
//! `manifest.json` and one `<event uuid>.json` per event), a MISP-format feed mirrors
//! the feed, a CSV or freetext feed keeps the downloaded file, a TAXII collection
//! keeps STIX bundles. The index is then built from `NAME=<state>/intel/NAME/data`
//! specs beside `[intel] paths`, so every source is one named provenance and all
//! validation (bad values, defanged values, broad indicators, warninglists) is the
//! loaders', in one place.
//!
//! Invariants:
//! - A [`Fetcher`] pass changes its data directory only by writing a whole file to a
//!   temporary name and renaming it (or removing a file): a kill -9 at any point
//!   leaves files that each hold the old or the new content, never a torn one.
//! - The cursor (`<state>/intel/<name>/cursor.json`, the fetcher's own JSON value) is
//!   saved only after the pass's data is in place, so after a crash the next pass
//!   starts from the older cursor and fetches again what it may have applied:
//!   fetchers upsert idempotently (by attribute UUID and timestamp, by STIX id and
//!   `modified`, by whole file), so that costs time, never a duplicate or a loss.
//! - A failed pass (server down, 4xx/5xx, bad JSON, timeout, TLS) leaves the data
//!   directory as the last good pass left it; the error is recorded in the source's
//!   status and the source is retried with backoff. One source never blocks another.
//! - Credentials come from an environment variable or a file ([`crate::net::Secret`]),
//!   never from the config text, and never appear in errors, status or metrics.

pub mod misp_rest;
pub mod taxii;

use std::path::{Path, PathBuf};

pub mod feed;
pub mod registry;
pub mod runner;
pub mod spec;

use chrono::{DateTime, Utc};

use crate::net::{HttpClient, HttpError, Secret};

/// What kind of server or file a source is (`kind = "..."` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// MISP REST API: `POST /attributes/restSearch`, `events/index` for reconcile.
    Misp,
    /// A MISP-format feed over HTTP(S): `manifest.json`, `<uuid>.json`, `hashes.csv`.
    MispFeed,
    /// A CSV feed over HTTP(S) (MISP's default feed list formats).
    Csv,
    /// A freetext feed over HTTP(S): one value per line, defanged values accepted.
    Freetext,
    /// A TAXII 2.1 collection.
    Taxii,
    /// A local file or directory, watched (as `[intel] paths`).
    File,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Misp => "misp",
            SourceKind::MispFeed => "misp-feed",
            SourceKind::Csv => "csv",
            SourceKind::Freetext => "freetext",
            SourceKind::Taxii => "taxii",
            SourceKind::File => "file",
        }
    }
}

/// How a source authenticates (resolved from env or file at each pass, so a rotated
/// key file is picked up without a restart).
#[derive(Clone, Debug)]
pub enum Credentials {
    None,
    /// MISP `Authorization: <key>`; TAXII/feeds `Authorization: Bearer <key>` unless
    /// the fetcher documents otherwise.
    ApiKey(Secret),
    /// HTTP basic authentication (TAXII servers such as medallion).
    Basic {
        username: String,
        password: Secret,
    },
}

/// One validated `[[intel.sources]]` entry (built by the config plan).
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// Unique among all intel sources (including `[intel] paths` names).
    pub name: String,
    pub kind: SourceKind,
    /// MISP base URL, feed URL, TAXII API root URL, or (kind `file`) a path.
    pub url: String,
    /// TAXII collection id.
    pub collection: Option<String>,
    pub credentials: Credentials,
    /// Seconds between passes in `tripline run`.
    pub interval_secs: u64,
    /// Request timeout.
    pub timeout_secs: u64,
    /// PEM file of the CAs to trust instead of the public roots (TLS is always verified).
    pub ca_file: Option<PathBuf>,
    /// `http://host:port` proxy for this source.
    pub proxy: Option<String>,
    /// Kind-specific settings, as written in the config table (e.g. `column`,
    /// `to_ids`, `tags`, `types`, `published`, `page_size`, `overlap_secs`,
    /// `reconcile_secs`, `include_decay_score`): each fetcher reads and validates its
    /// own keys ([`Fetcher::check_options`]) so that a misspelt key is an error.
    pub options: toml::Table,
}

/// What a fetcher gets for one pass.
pub struct PassContext<'a> {
    pub source: &'a SourceConfig,
    /// Built for this source (timeout, CA file, proxy).
    pub client: &'a HttpClient,
    /// `<state>/intel/<name>/data`: exists; the fetcher's files only.
    pub data_dir: &'a Path,
    /// The cursor saved by the last successful pass (`Value::Null` at first); the
    /// fetcher replaces it, and it is saved only if the pass succeeds.
    pub cursor: &'a mut serde_json::Value,
    /// The pass's clock (tests set it).
    pub now: DateTime<Utc>,
}

/// What one successful pass did, for status, metrics and the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    /// Body bytes received.
    pub bytes_fetched: u64,
    /// HTTP requests made.
    pub requests: u64,
    /// Records added or changed in the data directory.
    pub upserted: u64,
    /// Records removed (deleted at the source, revoked, dropped from a feed).
    pub deleted: u64,
    /// Whether anything in the data directory changed (false: nothing to reload).
    pub changed: bool,
}

/// A pass that failed; the data directory holds the last good data.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{source_name}: {source}")]
    Http {
        source_name: String,
        #[source]
        source: HttpError,
    },
    /// The server answered, but not with what the protocol says (bad JSON, a missing
    /// field): `what` says where.
    #[error("{source_name}: {what}")]
    Protocol { source_name: String, what: String },
    #[error("{source_name}: {}: {source}", path.display())]
    Io {
        source_name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A setting of the source that the fetcher cannot use.
    #[error("{source_name}: {key}: {message}")]
    Config {
        source_name: String,
        key: String,
        message: String,
    },
}

/// One kind of source: brings a data directory up to date with the server.
pub trait Fetcher: Send {
    /// Checks the kind-specific `options` (unknown keys and bad values are errors
    /// naming the key).
    fn check_options(&self, source: &SourceConfig) -> Result<(), SyncError>;

    /// One pass (see the module invariants): fetch what changed since `ctx.cursor`,
    /// apply it to `ctx.data_dir` file by file (write to a temporary name, then rename),
    /// and set the new cursor.
    fn pass(&mut self, ctx: &mut PassContext<'_>) -> Result<PassReport, SyncError>;
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
