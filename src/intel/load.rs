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
use super::snapshot;
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
    /// A malformed record or an unreadable file is fatal. Valid records of a type
    /// tripline does not match (MISP `link`, `comment`; STIX patterns it cannot
    /// evaluate) and indicators refused as too broad are only counted.
    pub strict: bool,
    pub csv_column: CsvColumn,
}

/// Loads every spec into one store. Files that fail are returned as errors and the
/// others still load; with `strict`, the first failure or malformed record is the
/// error. Two sources may not share a name ([`check_source_names`]).
pub fn load_intel(
    specs: &[IntelSpec],
    opts: &LoadOptions,
) -> Result<(IntelStore, Vec<IntelError>), IntelError> {
    load_intel_into(IntelStore::new(opts.store), specs, opts)
}

/// The number of distinct indicators [`load_intel`] would hold, through the same
/// loaders and snapshots (so a synced source's snapshot is brought up to date), but
/// replaying snapshot entries into a counting store ([`IntelStore::count_only`]):
/// no metas, events or links are built for unchanged files.
pub fn count_intel(specs: &[IntelSpec], opts: &LoadOptions) -> Result<u64, IntelError> {
    let mut store = IntelStore::new(opts.store);
    store.count_only = true;
    load_intel_into(store, specs, opts).map(|(store, _)| store.len() as u64)
}

fn load_intel_into(
    mut store: IntelStore,
    specs: &[IntelSpec],
    opts: &LoadOptions,
) -> Result<(IntelStore, Vec<IntelError>), IntelError> {
    let mut errors = Vec::new();
    // Per source: the spec it came from.
    let mut spec_of: Vec<usize> = Vec::new();
    for (n, spec) in specs.iter().enumerate() {
        let before = store.malformed_total();
        let kept_before = store.skipped.len();
        let snapshot = (!opts.store.keep_excluded)
            .then(|| snapshot::path_for(spec.name.as_deref(), &spec.path))
            .flatten()
            .map(|p| snapshot::Loader::open(p, &spec.path, opts.store));
        let mut snapshot = snapshot;
        if let Some(s) = &snapshot {
            let (kinds, metas) = s.sizes();
            store.reserve(&kinds, metas);
        }
        load_one(
            &mut store,
            &spec.path,
            spec.name.as_deref(),
            opts,
            &mut errors,
            0,
            snapshot.as_mut(),
        );
        if let Some(s) = snapshot {
            tracing::debug!(path = %spec.path.display(), replayed = s.replayed, parsed = s.parsed,
                "Loaded an intel cache through its snapshot.");
            s.finish();
        }
        spec_of.resize(store.sources.len(), n);
        if opts.strict {
            if let Some(e) = errors.drain(..).next() {
                return Err(e);
            }
            if store.malformed_total() > before {
                let first = store.skipped[kept_before..]
                    .iter()
                    .zip(&store.skipped_unsupported[kept_before..])
                    .find(|(_, &unsupported)| !unsupported)
                    .map(|(s, _)| format!("{}: {}", s.location, s.reason))
                    .unwrap_or_default();
                return Err(IntelError::Format {
                    path: spec.path.clone(),
                    message: format!(
                        "{} malformed record(s) (--strict); first: {first}",
                        store.malformed_total() - before
                    ),
                });
            }
        }
    }
    check_source_names(&mut store, specs, &spec_of)?;
    Ok((store, errors))
}

/// Makes source names unique. A file's default name is its stem (`circl` for
/// `circl.json`); when two unnamed files share a stem (`list.txt`, `list.csv`) each is
/// named by its whole file name instead. A name still shared by two sources that are
/// not the files of one named directory (`--intel circl=a --intel circl=b`, or
/// `a/iocs.txt` and `b/iocs.txt`) is an error naming both paths.
fn check_source_names(
    store: &mut IntelStore,
    specs: &[IntelSpec],
    spec_of: &[usize],
) -> Result<(), IntelError> {
    let named = |i: usize| {
        spec_of
            .get(i)
            .and_then(|&n| specs.get(n))
            .and_then(|s| s.name.as_ref())
            .is_some()
    };
    let mut by_name: std::collections::HashMap<String, Vec<usize>> = Default::default();
    for (i, s) in store.sources.iter().enumerate() {
        by_name.entry(s.name.clone()).or_default().push(i);
    }
    for ids in by_name.values() {
        let locations: std::collections::BTreeSet<&str> = ids
            .iter()
            .map(|&i| store.sources[i].location.as_str())
            .collect();
        if locations.len() < 2 || ids.iter().any(|&i| named(i)) {
            continue;
        }
        for &i in ids {
            let path = Path::new(&store.sources[i].location);
            if let Some(f) = path.file_name() {
                let f = f.to_string_lossy().into_owned();
                store.sources[i].name = f;
            }
        }
    }
    let mut seen: std::collections::HashMap<&str, usize> = Default::default();
    for (i, s) in store.sources.iter().enumerate() {
        if let Some(&j) = seen.get(s.name.as_str()) {
            let one_named_spec = named(i) && spec_of.get(i) == spec_of.get(j);
            if !one_named_spec {
                return Err(IntelError::Format {
                    path: PathBuf::from(&s.location),
                    message: format!(
                        "source name {:?} is also the name of {}: give each source its own name (--intel NAME=PATH)",
                        s.name, store.sources[j].location
                    ),
                });
            }
        } else {
            seen.insert(&s.name, i);
        }
    }
    Ok(())
}

fn load_one(
    store: &mut IntelStore,
    path: &Path,
    name: Option<&str>,
    opts: &LoadOptions,
    errors: &mut Vec<IntelError>,
    depth: usize,
    mut snapshot: Option<&mut snapshot::Loader>,
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
            let result = match snapshot {
                Some(snap) => {
                    misp::load_misp_feed_dir_with(store, path, name, &mut |store, file, source| {
                        // Never an error: a bad event file is skipped and counted.
                        let _ = snap.file(store, file, Some(source), |store, source| {
                            misp::load_feed_event(store, file, source.unwrap_or(0));
                            Ok(())
                        });
                    })
                }
                None => misp::load_misp_feed_dir(store, path, name),
            };
            if let Err(e) = result {
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
                load_one(
                    store,
                    &p,
                    name,
                    opts,
                    errors,
                    depth + 1,
                    snapshot.as_deref_mut(),
                );
            }
        }
        return;
    }
    let result = match snapshot {
        Some(snap) => snap.file(store, path, None, |store, _| {
            load_file(store, path, name, opts)
        }),
        None => load_file(store, path, name, opts),
    };
    if let Err(e) = result {
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
/// (files or directories). A list file that cannot be read or parsed (given directly
/// or found in a directory) is skipped with a warning and returned among the errors,
/// the way a bad intel file is: `hunt` reports it and exits 2, `tripline intel` lists
/// it, the sidecar keeps its old index. Only a shipped list that fails to load is a
/// fatal error (a broken binary).
pub fn load_warninglists(
    dirs: &[PathBuf],
    no_default: bool,
) -> Result<(Warninglists, Vec<IntelError>), IntelError> {
    let mut w = Warninglists::new();
    let mut errors = Vec::new();
    if !no_default {
        for (name, bytes) in DEFAULT_WARNINGLISTS {
            w.load_json(&Path::new("rules/warninglists").join(name), bytes)?;
        }
    }
    for d in dirs {
        if d.is_dir() {
            errors.extend(w.load_dir(d)?);
        } else if let Err(e) = w.load_file(d) {
            tracing::warn!(error = %e, "Skipped warninglist file.");
            errors.push(e);
        }
    }
    w.compile();
    Ok((w, errors))
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
        let (w, errors) = load_warninglists(&[], false).unwrap();
        assert_eq!(w.lists().len(), DEFAULT_WARNINGLISTS.len());
        assert!(errors.is_empty());
        let (none, _) = load_warninglists(&[], true).unwrap();
        assert!(none.lists().is_empty());
    }
}
