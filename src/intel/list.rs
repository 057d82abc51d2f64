//! Plain-text and CSV indicator lists.
//!
//! Plain text: one value a line; blank lines and `#` comments (a line starting with
//! `#`, or text after a `#` that follows white space) are ignored; the value's type is
//! detected ([`canon::detect`]) after refanging. CSV: the value is read from a chosen
//! column (by header name or 0-based index); without a choice, the first column whose
//! header is `value`, `indicator`, `ioc`, `domain`, `ip`, `url` or `hash`, else column 0.
//!
//! All entries of one file share one [`Meta`] (one per distinct port for `ip:port`
//! entries), so a list costs only its values. List entries count as IDS-worthy.

use std::path::Path;

use super::canon;
use super::model::{Kind, Meta};
use super::store::IntelStore;
use super::IntelError;

/// How to read a CSV list.
#[derive(Clone, Debug, Default)]
pub enum CsvColumn {
    /// Pick the value column from the header (see the module docs).
    #[default]
    Auto,
    Index(usize),
    Name(String),
}

impl std::str::FromStr for CsvColumn {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<usize>() {
            Ok(i) => CsvColumn::Index(i),
            Err(_) => CsvColumn::Name(s.to_string()),
        })
    }
}

/// Meta ids of one list file, one per (kind, port) seen: the kind gives the MISP type
/// that warninglists' `matching_attributes` are checked against.
struct ListMetas {
    source: u32,
    ids: std::collections::HashMap<(Kind, Option<u16>), Option<u32>>,
}

impl ListMetas {
    fn new(source: u32) -> ListMetas {
        ListMetas {
            source,
            ids: Default::default(),
        }
    }

    fn get(&mut self, store: &mut IntelStore, kind: Kind, port: Option<u16>) -> Option<u32> {
        let source = self.source;
        *self.ids.entry((kind, port)).or_insert_with(|| {
            let misp_type = store.intern(kind.default_misp_type());
            store.meta_id(Meta {
                source,
                misp_type,
                to_ids: true,
                port,
                ..Meta::default()
            })
        })
    }
}

/// Adds one list value (detected type) with its location for error reports.
fn add_value(
    store: &mut IntelStore,
    metas: &mut ListMetas,
    value: &str,
    location: impl Fn() -> String,
) {
    match canon::detect(value) {
        Ok(c) => {
            if let Some(meta) = metas.get(store, c.kind, c.port) {
                store.add_written(&c, value, meta, location);
            }
        }
        Err(canon::PATH_ONLY) => store.unsupported(location(), canon::PATH_ONLY),
        Err(reason) => store.skip(location(), reason),
    }
}

/// The value part of a plain-list line: comments and trailing fields removed.
fn line_value(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut end = line.len();
    for (i, _) in line.match_indices('#') {
        if line[..i].ends_with(char::is_whitespace) {
            end = i;
            break;
        }
    }
    let v = line[..end].split_whitespace().next()?;
    Some(v)
}

/// Loads a plain-text list from `bytes` (the contents of `path`).
pub fn load_plain(store: &mut IntelStore, bytes: &[u8], path: &Path, source: u32) {
    let mut metas = ListMetas::new(source);
    let shown = path.display().to_string();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = match std::str::from_utf8(raw) {
            Ok(l) => l,
            Err(_) => {
                store.skip(format!("{shown}:{}", i + 1), "line is not valid UTF-8");
                continue;
            }
        };
        let Some(value) = line_value(line) else {
            continue;
        };
        store.records_by_source[source as usize] += 1;
        add_value(store, &mut metas, value, || format!("{shown}:{}", i + 1));
    }
}

/// Loads a CSV list from `bytes`, reading the value from `column`.
pub fn load_csv(
    store: &mut IntelStore,
    bytes: &[u8],
    path: &Path,
    source: u32,
    column: &CsvColumn,
) -> Result<(), IntelError> {
    let shown = path.display().to_string();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .comment(Some(b'#'))
        .has_headers(true)
        .from_reader(bytes);
    let headers = rdr
        .headers()
        .map_err(|e| IntelError::At {
            path: path.to_path_buf(),
            line: e.position().map_or(1, |p| p.line()),
            message: format!("cannot read the CSV header: {}", csv_message(&e)),
        })?
        .clone();
    let header_line = headers.position().map_or(1, |p| p.line());
    let col = match column {
        CsvColumn::Index(i) => *i,
        CsvColumn::Name(n) => headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(n))
            .ok_or_else(|| IntelError::At {
                path: path.to_path_buf(),
                line: header_line,
                message: format!(
                    "no CSV column named {n:?} (columns: {})",
                    headers
                        .iter()
                        .map(|h| format!("{:?}", h.trim()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?,
        CsvColumn::Auto => headers
            .iter()
            .position(|h| {
                matches!(
                    h.trim().to_ascii_lowercase().as_str(),
                    "value" | "indicator" | "ioc" | "domain" | "ip" | "url" | "hash"
                )
            })
            .unwrap_or(0),
    };
    // A header that is itself a value (no real header) is loaded too.
    let header_is_value = matches!(column, CsvColumn::Auto | CsvColumn::Index(_))
        && headers.get(col).is_some_and(|h| canon::detect(h).is_ok());
    let mut metas = ListMetas::new(source);
    if header_is_value {
        if let Some(h) = headers.get(col) {
            store.records_by_source[source as usize] += 1;
            add_value(store, &mut metas, h, || format!("{shown}:1 column {col}"));
        }
    }
    for rec in rdr.records() {
        match rec {
            Ok(rec) => {
                let line = rec.position().map_or(0, |p| p.line());
                store.records_by_source[source as usize] += 1;
                match rec.get(col) {
                    Some(v) if !v.trim().is_empty() => add_value(store, &mut metas, v, || {
                        format!("{shown}:{line} column {col}")
                    }),
                    _ => store.skip(
                        format!("{shown}:{line}"),
                        format!("no value in column {col}"),
                    ),
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                store.skip(
                    format!("{shown}:{line}"),
                    format!("malformed CSV record: {}", csv_message(&e)),
                );
            }
        }
    }
    Ok(())
}

/// A CSV error as a sentence, without the position the caller already gives and
/// without `Debug` output.
fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!("field {} is not valid UTF-8", err.field() + 1),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Io(e) => e.to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::{Source, StoreOptions};

    fn store_with_source() -> (IntelStore, u32) {
        let mut s = IntelStore::new(StoreOptions::default());
        let src = s.add_source(Source {
            name: "test".into(),
            format: "list",
            location: "mem".into(),
            provider: None,
        });
        (s, src)
    }

    fn values(s: &IntelStore, kind: Kind) -> Vec<String> {
        s.sets[kind as usize]
            .iter()
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    #[test]
    fn plain_list_detects_and_skips() {
        let (mut s, src) = store_with_source();
        let text = b"# comment\n\nEVIL.com\nhxxp://bad[.]org/gate.php\n1.2.3.4:443\n10.0.0.0/8 # internal\n/gate.php\nd41d8cd98f00b204e9800998ecf8427e\nx\xffy\nnonsense\n";
        load_plain(&mut s, text, Path::new("l.txt"), src);
        assert_eq!(values(&s, Kind::Domain), vec!["evil.com"]);
        assert_eq!(values(&s, Kind::Url), vec!["bad.org/gate.php"]);
        assert_eq!(values(&s, Kind::Ipv4), vec!["1.2.3.4", "10.0.0.0/8"]);
        assert_eq!(values(&s, Kind::Md5).len(), 1);
        let reasons: Vec<_> = s
            .skipped
            .iter()
            .map(|k| (k.location.as_str(), k.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("l.txt:7", "path-only entry (not matched yet)"),
                ("l.txt:9", "line is not valid UTF-8"),
                ("l.txt:10", "unrecognised value (no type could be detected)"),
            ]
        );
        // The ip:port entry keeps its port on its own meta.
        let ports: Vec<_> = s.metas.iter().filter_map(|m| m.port).collect();
        assert_eq!(ports, vec![443]);
    }

    #[test]
    fn csv_by_name_and_auto() {
        let (mut s, src) = store_with_source();
        let text = b"first_seen,indicator,comment\n2024-01-01,evil.com,c2\n2024-01-02,\"1.2.3.4\",scanner\n2024-01-03,,empty\n";
        load_csv(&mut s, text, Path::new("l.csv"), src, &CsvColumn::Auto).unwrap();
        assert_eq!(values(&s, Kind::Domain), vec!["evil.com"]);
        assert_eq!(values(&s, Kind::Ipv4), vec!["1.2.3.4"]);
        assert_eq!(s.skipped[0].location, "l.csv:4");

        let (mut s, src) = store_with_source();
        let err = load_csv(
            &mut s,
            text,
            Path::new("l.csv"),
            src,
            &CsvColumn::Name("nope".into()),
        );
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("no CSV column named \"nope\""));
    }

    #[test]
    fn csv_without_header_keeps_first_row() {
        let (mut s, src) = store_with_source();
        load_csv(
            &mut s,
            b"evil.com,x\nbad.org,y\n",
            Path::new("l.csv"),
            src,
            &CsvColumn::Index(0),
        )
        .unwrap();
        assert_eq!(values(&s, Kind::Domain), vec!["evil.com", "bad.org"]);
    }
}
