//! The format corpus (`fixtures/corpus/<format>/`): real public log samples of each
//! format plus lines written for tripline in the same shape, hunted by the real binary
//! against the directory's `intel.txt`; the alerts must be exactly `expected.tsv`.
//!
//! Every directory is picked up without code: a new format is a new directory holding
//! `SOURCES.txt` (where each file comes from, under which licence), `intel.txt` (the
//! indicators, canonical form), `expected.tsv` (one row per alert and indicator:
//! `file <TAB> line <TAB> indicator <TAB> matched atomic`), `planted.log` and the real
//! samples. Every file but those three is a data file and is hunted on its own.
//! All directories are checked before failing, and every missing or extra alert is
//! printed with its line, so one run shows everything that differs.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files of a corpus directory that are not hunted.
const META_FILES: &[&str] = &["SOURCES.txt", "intel.txt", "expected.tsv"];

/// A directory must stay small: real samples are cut at line boundaries.
const MAX_DIR_BYTES: u64 = 200 * 1024;

/// One alert for one indicator: (file name, line number, indicator, matched atomic).
type Row = (String, u64, String, String);

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus")
}

/// The format directories, in name order.
fn format_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus_root())
        .expect("read fixtures/corpus")
        .map(|e| e.expect("read fixtures/corpus entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "fixtures/corpus holds no format directory"
    );
    dirs
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

/// The files hunted in `dir`, in name order.
fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("read corpus entry").path())
        .filter(|p| p.is_file() && !META_FILES.contains(&file_name(p).as_str()))
        .collect();
    files.sort();
    files
}

/// Lines of a file as the hunt numbers them (1-based; bytes that are not UTF-8 shown
/// replaced).
fn lines_of(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect()
}

/// Parses `expected.tsv`; format errors are pushed to `problems`.
fn expected_rows(dir: &Path, problems: &mut Vec<String>) -> BTreeSet<Row> {
    let path = dir.join("expected.tsv");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("{}: {e}", path.display()));
            return BTreeSet::new();
        }
    };
    let mut rows = BTreeSet::new();
    let mut previous: Option<(String, u64)> = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        let fields: Vec<&str> = line.split('\t').collect();
        let [file, number, indicator, atomic] = fields[..] else {
            problems.push(format!(
                "{at}: {} tab-separated fields, want 4 (file, line, indicator, atomic): {line:?}",
                fields.len()
            ));
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            problems.push(format!("{at}: line number {number:?} is not a number"));
            continue;
        };
        let key = (file.to_string(), number);
        if previous.as_ref().is_some_and(|p| *p > key) {
            problems.push(format!("{at}: rows not sorted by file, then line"));
        }
        previous = Some(key);
        let row = (
            file.to_string(),
            number,
            indicator.to_string(),
            atomic.to_string(),
        );
        if !rows.insert(row) {
            problems.push(format!("{at}: duplicate row {line:?}"));
        }
    }
    rows
}

/// Hunts one file with the directory's intel; returns its alerts as rows.
fn hunt_rows(dir: &Path, file: &Path, problems: &mut Vec<String>) -> BTreeSet<Row> {
    let intel = format!("corpus={}", dir.join("intel.txt").display());
    let out = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args([
            "hunt",
            "--no-default-warninglists",
            "--intel",
            &intel,
            "-q",
            "-j1",
        ])
        .arg(file)
        .output()
        .expect("run tripline");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // grep's convention: 0 matched, 1 nothing matched, anything else is an error.
    if !matches!(out.status.code(), Some(0 | 1)) || stderr.contains("WARN") {
        problems.push(format!(
            "{}: tripline hunt exited {:?}:\n{stderr}",
            file.display(),
            out.status.code()
        ));
    }
    let mut rows = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let alert: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}: alert is not JSON ({e}): {line}", file.display()));
        let path = alert["log"]["file"]["path"].as_str().unwrap_or_default();
        let name = file_name(Path::new(path));
        let number = alert["tripline"]["line_number"]
            .as_u64()
            .unwrap_or_else(|| panic!("alert without tripline.line_number: {line}"));
        let enrichments = alert["threat"]["enrichments"]
            .as_array()
            .unwrap_or_else(|| panic!("alert without threat.enrichments: {line}"));
        for e in enrichments {
            let indicator = e["indicator"]["name"].as_str().unwrap_or_default();
            let atomic = e["matched"]["atomic"].as_str().unwrap_or_default();
            rows.insert((
                name.clone(),
                number,
                indicator.to_string(),
                atomic.to_string(),
            ));
        }
    }
    rows
}

/// One row as expected.tsv writes it, with the log line it is about.
fn show(dir: &Path, row: &Row) -> String {
    let (file, number, indicator, atomic) = row;
    let text = usize::try_from(*number)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|n| lines_of(&dir.join(file)).into_iter().nth(n))
        .unwrap_or_else(|| "<no such line>".to_string());
    format!("  {file}\t{number}\t{indicator}\t{atomic}\n      | {text}\n")
}

/// What differs in one directory; empty when the hunt gives exactly expected.tsv.
fn check_dir(dir: &Path) -> String {
    let mut problems = Vec::new();
    let expected = expected_rows(dir, &mut problems);
    let files = data_files(dir);
    let names: BTreeSet<String> = files.iter().map(|f| file_name(f)).collect();
    for (file, number, _, _) in &expected {
        let known = names.contains(file);
        let in_range = known && (*number as usize) <= lines_of(&dir.join(file)).len();
        if !known || !in_range || *number == 0 {
            problems.push(format!(
                "expected.tsv names {file}:{number}, which is not a line of a data file"
            ));
        }
    }
    let mut got = BTreeSet::new();
    for f in &files {
        got.extend(hunt_rows(dir, f, &mut problems));
    }
    let mut report = String::new();
    for p in &problems {
        let _ = writeln!(report, "  {p}");
    }
    let missing: Vec<&Row> = expected.difference(&got).collect();
    let extra: Vec<&Row> = got.difference(&expected).collect();
    if !missing.is_empty() {
        let _ = writeln!(report, " missing alerts ({}):", missing.len());
        for r in missing {
            report.push_str(&show(dir, r));
        }
    }
    if !extra.is_empty() {
        let _ = writeln!(report, " extra alerts ({}):", extra.len());
        for r in extra {
            report.push_str(&show(dir, r));
        }
    }
    report
}

#[test]
fn corpus_alerts_are_exactly_the_expected_ones() {
    let mut report = String::new();
    let dirs = format_dirs();
    for dir in &dirs {
        let r = check_dir(dir);
        if !r.is_empty() {
            let _ = writeln!(report, "{}:\n{r}", dir.display());
        }
    }
    assert!(
        report.is_empty(),
        "the corpus hunt differs from expected.tsv (rows: file, line, indicator, atomic):\n{report}"
    );
    eprintln!("format corpus: {} directories as expected", dirs.len());
}

/// Formats for which no real sample under a licence that allows redistribution was
/// found (their planted lines follow the format's documentation; see SOURCES.txt).
const NO_REAL_SAMPLE: &[(&str, &str)] = &[
    (
        "squid-combined",
        "public copies are lines quoted in documentation without a licence",
    ),
    (
        "windows-dns-debug",
        "public copies are quoted in parsers, READMEs or blog posts without a licence, or GPL",
    ),
];

#[test]
fn corpus_directories_are_complete() {
    let mut problems = Vec::new();
    for dir in format_dirs() {
        let d = dir.display();
        let name = file_name(&dir);
        if name
            .chars()
            .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        {
            problems.push(format!("{d}: directory names are lowercase with dashes"));
        }
        for must in META_FILES {
            if !dir.join(must).is_file() {
                problems.push(format!("{d}: no {must}"));
            }
        }
        let files = data_files(&dir);
        // Planted lines: `planted.log`, or `planted*.<ext>` where the format has its
        // own extension or several shapes (`planted.json`, `planted-export.log`).
        if !files.iter().any(|f| file_name(f).starts_with("planted")) {
            problems.push(format!("{d}: no planted lines (planted*)"));
        }
        let real = files.iter().any(|f| !file_name(f).starts_with("planted"));
        if !real && !NO_REAL_SAMPLE.iter().any(|(n, _)| *n == name) {
            problems.push(format!("{d}: no real sample beside the planted lines"));
        }
        let sources = std::fs::read_to_string(dir.join("SOURCES.txt")).unwrap_or_default();
        for f in &files {
            let n = file_name(f);
            if !sources.contains(&n) {
                problems.push(format!("{d}: SOURCES.txt does not name {n}"));
            }
        }
        let bytes: u64 = std::fs::read_dir(&dir)
            .expect("read corpus dir")
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        if bytes > MAX_DIR_BYTES {
            problems.push(format!(
                "{d}: {bytes} bytes, over {MAX_DIR_BYTES}: cut the samples at line boundaries"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
