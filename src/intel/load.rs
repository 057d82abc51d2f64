//! Finding and loading intel: which loader reads which path, and the shipped
//! warninglists.
//!
//! A path given to `--intel` may be a file or a directory, optionally named
//! (`NAME=PATH`; the name becomes the source name of everything below it). A directory
//! with a `manifest.json` is a MISP-format feed; any other directory is walked
//! recursively in name order. A `.json` file is parsed once and sniffed: a STIX bundle
//! (or object list), else MISP JSON; a warninglist in an intel path is refused with a
//! hint. A `.csv` file is a CSV list; any other file a plain list.
//!
//! The default warninglists (`rules/warninglists/`) are compiled into the binary, so a
//! binary works from any directory; `--no-default-warninglists` drops them.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::list::{self, CsvColumn};
use super::warninglist::Warninglists;
use super::{misp, stix, IntelError, IntelStore, Source, StoreOptions};

/// One `--intel` operand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntelSpec {
    pub name: Option<String>,
    pub path: PathBuf,
}

impl std::str::FromStr for IntelSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty intel path".into());
        }
        // NAME=PATH, unless the whole thing is an existing path.
        if let Some((name, path)) = s.split_once('=') {
            if !Path::new(s).exists() && !name.is_empty() && !name.contains('/') {
                return Ok(IntelSpec {
                    name: Some(name.to_string()),
                    path: PathBuf::from(path),
                });
            }
        }
        Ok(IntelSpec {
            name: None,
            path: PathBuf::from(s),
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub store: StoreOptions,
    /// Any skipped record or unreadable file is fatal.
    pub strict: bool,
    pub csv_column: CsvColumn,
}

/// Loads every spec into one store. Files that fail are returned as errors and the
/// others still load; with `strict`, the first failure or skipped record is the error.
pub fn load_intel(
    specs: &[IntelSpec],
    opts: &LoadOptions,
) -> Result<(IntelStore, Vec<IntelError>), IntelError> {
    let mut store = IntelStore::new(opts.store);
    let mut errors = Vec::new();
    for spec in specs {
        let before = store.skipped_total();
        let kept_before = store.skipped.len();
        load_one(
            &mut store,
            &spec.path,
            spec.name.as_deref(),
            opts,
            &mut errors,
            0,
        );
        if opts.strict {
            if let Some(e) = errors.drain(..).next() {
                return Err(e);
            }
            if store.skipped_total() > before {
                let first = store
                    .skipped
                    .get(kept_before)
                    .map(|s| format!("{}: {}", s.location, s.reason))
                    .unwrap_or_default();
                return Err(IntelError::Format {
                    path: spec.path.clone(),
                    message: format!(
                        "{} record(s) skipped (--strict); first: {first}",
                        store.skipped_total() - before
                    ),
                });
            }
        }
    }
    Ok((store, errors))
}

fn load_one(
    store: &mut IntelStore,
    path: &Path,
    name: Option<&str>,
    opts: &LoadOptions,
    errors: &mut Vec<IntelError>,
    depth: usize,
) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            errors.push(IntelError::io(path, e));
            return;
        }
    };
    if meta.is_dir() {
        if path.join("manifest.json").is_file() {
            if let Err(e) = misp::load_misp_feed_dir(store, path, name) {
                errors.push(e);
            }
            return;
        }
        if depth > 16 {
            return;
        }
        let entries = match std::fs::read_dir(path) {
            Ok(e) => e,
            Err(e) => {
                errors.push(IntelError::io(path, e));
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let notes = p.file_name().is_some_and(|n| {
                matches!(
                    n.to_string_lossy().as_ref(),
                    "SOURCES.txt" | "README.md" | "LICENSE"
                )
            });
            if !hidden && !notes {
                load_one(store, &p, name, opts, errors, depth + 1);
            }
        }
        return;
    }
    if let Err(e) = load_file(store, path, name, opts) {
        errors.push(e);
    }
}

fn source_name(path: &Path, name: Option<&str>) -> String {
    name.map(str::to_string).unwrap_or_else(|| {
        path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        )
    })
}

/// Loads one file, choosing the loader by extension and content.
pub fn load_file(
    store: &mut IntelStore,
    path: &Path,
    name: Option<&str>,
    opts: &LoadOptions,
) -> Result<(), IntelError> {
    let bytes = std::fs::read(path).map_err(|e| IntelError::io(path, e))?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let shown = path.display().to_string();
    let source = |store: &mut IntelStore, format: &'static str| {
        store.add_source(Source {
            name: source_name(path, name),
            format,
            location: shown.clone(),
            provider: None,
        })
    };
    match ext.as_str() {
        "json" => {
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| IntelError::json(path, &e))?;
            if is_stix(&value) {
                let src = source(store, "stix");
                stix::load_stix_value(store, &value, src, &shown)
            } else if value.get("matching_attributes").is_some() && value.get("list").is_some() {
                Err(IntelError::Format {
                    path: path.to_path_buf(),
                    message: "this is a MISP warninglist, not intel: pass it with --warninglists"
                        .into(),
                })
            } else {
                let src = source(store, "misp");
                misp::load_misp_value(store, &value, src, &shown)
            }
        }
        "csv" => {
            let src = source(store, "csv");
            list::load_csv(store, &bytes, path, src, &opts.csv_column)
        }
        _ => {
            if bytes.starts_with(&[0x1f, 0x8b]) || bytes.contains(&0) {
                return Err(IntelError::Format {
                    path: path.to_path_buf(),
                    message: "binary file (compressed intel is not supported); not loaded".into(),
                });
            }
            let src = source(store, "list");
            list::load_plain(store, &bytes, path, src);
            Ok(())
        }
    }
}

fn is_stix(v: &Value) -> bool {
    let ty = |o: &Value| o.get("type").and_then(Value::as_str).map(str::to_string);
    match v {
        Value::Object(_) => {
            matches!(ty(v).as_deref(), Some("bundle") | Some("indicator"))
                || v.get("spec_version").is_some()
        }
        Value::Array(a) => a
            .first()
            .and_then(|o| o.get("id"))
            .and_then(Value::as_str)
            .is_some_and(|id| id.contains("--")),
        _ => false,
    }
}

/// The warninglists shipped in `rules/warninglists/`, compiled in.
pub const DEFAULT_WARNINGLISTS: &[(&str, &[u8])] = &[
    (
        "rfc1918.json",
        include_bytes!("../../rules/warninglists/rfc1918.json"),
    ),
    (
        "rfc5735.json",
        include_bytes!("../../rules/warninglists/rfc5735.json"),
    ),
    (
        "multicast.json",
        include_bytes!("../../rules/warninglists/multicast.json"),
    ),
    (
        "ipv6-linklocal.json",
        include_bytes!("../../rules/warninglists/ipv6-linklocal.json"),
    ),
    (
        "public-dns-v4.json",
        include_bytes!("../../rules/warninglists/public-dns-v4.json"),
    ),
    (
        "cloudflare.json",
        include_bytes!("../../rules/warninglists/cloudflare.json"),
    ),
    (
        "cloudflare-top1k.json",
        include_bytes!("../../rules/warninglists/cloudflare-top1k.json"),
    ),
    (
        "empty-hashes.json",
        include_bytes!("../../rules/warninglists/empty-hashes.json"),
    ),
    (
        "tripline-shared-parents.json",
        include_bytes!("../../rules/warninglists/tripline-shared-parents.json"),
    ),
];

/// Loads the default warninglists (unless `no_default`) and every list under `dirs`
/// (files or directories). A list file that fails is an error: a warninglist silently
/// missing would let benign values through as indicators.
pub fn load_warninglists(dirs: &[PathBuf], no_default: bool) -> Result<Warninglists, IntelError> {
    let mut w = Warninglists::new();
    if !no_default {
        for (name, bytes) in DEFAULT_WARNINGLISTS {
            w.load_json(&Path::new("rules/warninglists").join(name), bytes)?;
        }
    }
    for d in dirs {
        if d.is_dir() {
            if let Some(e) = w.load_dir(d)?.into_iter().next() {
                return Err(e);
            }
        } else {
            w.load_file(d)?;
        }
    }
    w.compile();
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        assert_eq!(
            "circl=feeds/circl".parse::<IntelSpec>(),
            Ok(IntelSpec {
                name: Some("circl".into()),
                path: "feeds/circl".into()
            })
        );
        assert_eq!(
            "a/b=c".parse::<IntelSpec>(),
            Ok(IntelSpec {
                name: None,
                path: "a/b=c".into()
            })
        );
    }

    #[test]
    fn default_warninglists_load() {
        let w = load_warninglists(&[], false).unwrap();
        assert_eq!(w.lists().len(), DEFAULT_WARNINGLISTS.len());
        let none = load_warninglists(&[], true).unwrap();
        assert!(none.lists().is_empty());
    }
}
