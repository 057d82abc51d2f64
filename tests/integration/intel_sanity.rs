//! Intel as real feeds write it (issue 9): values that would flag the world refused at
//! load and reported, MISP registry attributes matched as Windows compares them, file
//! names from plain lists kept as file names, and grep manners on the intel side
//! (skipped records mentioned, `--strict` only for malformed records, unique source
//! names, CSV and warninglist errors with their location). Each test is named after
//! the defect it pins.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::root;
use serde_json::{json, Value};

fn tripline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .expect("run tripline")
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write");
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// The indicator names of every alert on stdout.
fn alerted(out: &Output) -> Vec<String> {
    let mut names = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let a: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        // The canonical value (tripline's record parallel to `threat.enrichments`;
        // `indicator.name` is the value as the intel wrote it).
        for e in a["tripline"]["enrichments"]
            .as_array()
            .into_iter()
            .flatten()
        {
            names.push(e["indicator"].as_str().unwrap_or("").to_string());
        }
    }
    names
}

/// A MISP event holding `attributes` as (type, value).
fn misp_event(attributes: &[(&str, &str)]) -> String {
    let attrs: Vec<Value> = attributes
        .iter()
        .map(|(t, v)| json!({"type": t, "value": v, "to_ids": true, "category": "Persistence mechanism"}))
        .collect();
    json!({"Event": {"uuid": "5a0ac036-6fbc-4855-83af-422b950d210f", "info": "t", "Attribute": attrs}})
        .to_string()
}

// ---------------------------------------------------------------------------------
// Intel that would flag the world.

/// `org.ru` is line 256 of the real trail in fixtures/intel/trails (stamparm/maltrail,
/// MIT): loaded as a domain it raised alerts on every `*.org.ru` host, the README's
/// `www.linux.org.ru` included.
#[test]
fn public_suffix_in_a_real_trail_flagged_every_host_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), "dns.log", "query=www.linux.org.ru type=A\n");
    let out = tripline(&["hunt", "-q", "--intel", "fixtures/intel/trails", s(&log)]);
    let (stdout, err) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{err}");
    assert!(alerted(&out).is_empty(), "{stdout}");
    // One warning line for the source, even with -q, with the first location.
    let warning: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("intel source \"trails-domains\""))
        .collect();
    assert_eq!(warning.len(), 1, "{err}");
    assert!(
        warning[0].contains("1 indicator refused as too broad")
            && warning[0].contains("trails-domains.txt:256: domain org.ru")
            && warning[0].contains("run `tripline intel` for details"),
        "{err}"
    );

    let report = tripline(&["intel", "--intel", "fixtures/intel/trails"]);
    let (text, _) = texts(&report);
    assert!(text.contains("Refused as too broad: 1"), "{text}");
    assert!(text.contains("public_suffix: 1"), "{text}");
    assert!(
        text.contains("fixtures/intel/trails/trails-domains.txt:256: domain org.ru (source trails-domains): public suffix"),
        "{text}"
    );
    let json_out = tripline(&["intel", "--json", "--intel", "fixtures/intel/trails"]);
    let j: Value = serde_json::from_slice(&json_out.stdout).expect("JSON report");
    assert_eq!(j["refused"][0]["value"], "org.ru");
    assert_eq!(j["refused"][0]["source"], "trails-domains");
    assert_eq!(j["refused_by_reason"]["public_suffix"], 1);

    // --allow-broad keeps it, and then it matches.
    let kept = tripline(&[
        "hunt",
        "-q",
        "--allow-broad",
        "--intel",
        "fixtures/intel/trails",
        s(&log),
    ]);
    assert_eq!(alerted(&kept), ["org.ru"], "{}", texts(&kept).1);
}

#[test]
fn zero_and_short_prefixes_matched_every_address() {
    let dir = tempfile::tempdir().unwrap();
    let intel = write(
        dir.path(),
        "nets.txt",
        "0.0.0.0/0\n::/0\n10.0.0.0/7\n2000::/3\n203.0.113.0/24\n",
    );
    let log = write(
        dir.path(),
        "fw.log",
        "src=10.1.2.3 dst=8.8.4.4\nsrc=2001:db8::5\nsrc=203.0.113.7\n",
    );
    let out = tripline(&[
        "hunt",
        "-q",
        "--no-default-warninglists",
        "--intel",
        s(&intel),
        s(&log),
    ]);
    assert_eq!(alerted(&out), ["203.0.113.0/24"], "{}", texts(&out).1);
    let report = tripline(&["intel", "--no-default-warninglists", "--intel", s(&intel)]);
    let (text, _) = texts(&report);
    assert!(text.contains("zero_prefix: 2"), "{text}");
    assert!(text.contains("short_prefix: 2"), "{text}");
    assert!(text.contains("nets.txt:3: ipv4 10.0.0.0/7"), "{text}");

    // --allow-broad keeps the short ones, never a /0.
    let allowed = tripline(&[
        "hunt",
        "-q",
        "--allow-broad",
        "--no-default-warninglists",
        "--intel",
        s(&intel),
        s(&log),
    ]);
    let mut got = alerted(&allowed);
    got.sort();
    assert_eq!(got, ["10.0.0.0/7", "2000::/3", "203.0.113.0/24"]);

    // The limits are settable: /24 refuses nothing here, /25 refuses the /24.
    let v4 = |min: &str| {
        let out = tripline(&[
            "hunt",
            "-q",
            "--min-prefix-v4",
            min,
            "--no-default-warninglists",
            "--intel",
            s(&intel),
            s(&log),
        ]);
        alerted(&out)
    };
    assert_eq!(v4("24"), ["203.0.113.0/24"]);
    assert!(v4("25").is_empty());
    let bad = tripline(&["intel", "--min-prefix-v4", "0", "--intel", s(&intel)]);
    assert_eq!(bad.status.code(), Some(2));
}

/// `duckdns.org` is also on the Cloudflare top-1k list, which came first, so the
/// shared-parents count said 0.
#[test]
fn dynamic_dns_parents_credited_to_the_top1k_list() {
    let dir = tempfile::tempdir().unwrap();
    let intel = write(
        dir.path(),
        "l.txt",
        "duckdns.org\nddns.net\nevil.duckdns.org\n",
    );
    for extra in [&[][..], &["--allow-broad"][..]] {
        let mut args = vec!["intel", "--intel", s(&intel)];
        args.extend_from_slice(extra);
        let (text, _) = texts(&tripline(&args));
        assert!(
            text.contains("2 on the shared-parents warninglist (dynamic DNS, hosting)\n    ddns.net\n    duckdns.org\n"),
            "{extra:?}: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------
// MISP composites and literal types.

/// The real Xorist event (PyMISP tests, BSD-2-Clause) holds
/// `Software\Wow6432Node\Microsoft\Windows\CurrentVersion\Run|%TEMP%\3Z4wnG9603it23y.exe`;
/// it was reduced to the Run key, so every benign autorun alerted as ransomware.
#[test]
fn regkey_value_reduced_to_its_generic_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(
        dir.path(),
        "sysmon.log",
        "EventID=13 TargetObject=HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Run\\OneDrive Details=C:\\Program Files\\OneDrive\\OneDrive.exe\n\
         EventID=13 TargetObject=HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Run\\upd Details=C:\\Users\\a\\AppData\\Local\\Temp\\3Z4wnG9603it23y.exe\n",
    );
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/misp/pymisp-tests/57c4445b-c548-4654-af0b-4be3950d210f.json",
        s(&log),
    ]);
    let (stdout, err) = texts(&out);
    let lines: Vec<u64> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|a| {
            a["tripline"]["enrichments"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["kind"] == "regkey_value")
        })
        .filter_map(|a| a["tripline"]["line_number"].as_u64())
        .collect();
    // Only the autorun that starts the ransomware (line 2, which also names the
    // dropped file); never the OneDrive autorun on the same key.
    assert_eq!(lines, [2], "{stdout}{err}");
}

#[test]
fn registry_keys_compared_case_sensitively() {
    let dir = tempfile::tempdir().unwrap();
    let intel = write(
        dir.path(),
        "event.json",
        &misp_event(&[
            ("regkey", "HKCU\\Software\\Harbor\\Persist"),
            ("mutex", "Global\\HarborMtx"),
        ]),
    );
    let log = write(
        dir.path(),
        "reg.log",
        "set HKCU\\SOFTWARE\\harbor\\PERSIST=1\nmutex global\\harbormtx\nmutex Global\\HarborMtx\n",
    );
    let out = tripline(&["hunt", "-q", "--intel", s(&intel), s(&log)]);
    let mut got = alerted(&out);
    got.sort();
    // The key in any case; a mutex (a literal) only as written.
    assert_eq!(
        got,
        ["Global\\HarborMtx", "hkcu\\software\\harbor\\persist"],
        "{}",
        texts(&out).1
    );
}

#[test]
fn file_names_in_plain_lists_typed_as_domains() {
    let dir = tempfile::tempdir().unwrap();
    let intel = write(dir.path(), "names.txt", "invoice.exe\n");
    let log = write(
        dir.path(),
        "proxy.log",
        "GET http://x.invoice.exe/ 200\nexec C:\\Users\\a\\Downloads\\Invoice.EXE\n",
    );
    let out = tripline(&["hunt", "-q", "--intel", s(&intel), s(&log)]);
    let (stdout, _) = texts(&out);
    let lines: Vec<u64> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|a| a["tripline"]["line_number"].as_u64())
        .collect();
    assert_eq!(lines, [2], "{stdout}");
    let report = tripline(&["intel", "--json", "--intel", s(&intel)]);
    let j: Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert_eq!(j["by_type"]["filename"], 1, "{j}");
    assert!(j["by_type"].get("domain").is_none(), "{j}");
}

// ---------------------------------------------------------------------------------
// Unicode.

#[test]
fn intel_lookup_missed_a_listed_idn() {
    let dir = tempfile::tempdir().unwrap();
    let intel = write(dir.path(), "idn.txt", "bücher.example\nпример.рф\n");
    for (value, want) in [
        ("bücher.example", "xn--bcher-kva.example"),
        ("www.пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ] {
        let out = tripline(&["intel", "lookup", value, "--intel", s(&intel)]);
        let (text, err) = texts(&out);
        assert_eq!(out.status.code(), Some(0), "{value}: {text}{err}");
        assert!(
            text.contains(&format!("matches indicator {want} (domain)")),
            "{text}"
        );
    }
}

// ---------------------------------------------------------------------------------
// grep manners, intel side.

#[test]
fn skipped_intel_records_not_mentioned_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let indicators: Vec<Value> = (0..10)
        .map(|i| {
            json!({"type": "indicator", "spec_version": "2.1",
                "id": format!("indicator--0000000{i}-0000-4000-8000-000000000000"),
                "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z",
                "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z",
                "pattern": format!("[ipv4-addr:value = '198.51.100.{i}' AND network-traffic:dst_port = 443]")})
        })
        .collect();
    let bundle = json!({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": indicators});
    let intel = write(dir.path(), "and-patterns.json", &bundle.to_string());
    let log = write(dir.path(), "a.log", "nothing here\n");
    let out = tripline(&["hunt", "-q", "--intel", s(&intel), s(&log)]);
    let (_, err) = texts(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("and-patterns")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0]
            .contains("10 records skipped (10 of them valid, of a type or pattern not matched)")
            && lines[0].contains("and-patterns.json: objects[0] (indicator--")
            && lines[0].contains("unsupported STIX pattern")
            && lines[0].contains("run `tripline intel` for details"),
        "{err}"
    );
    let report = tripline(&["intel", "--json", "--intel", s(&intel)]);
    let j: Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert_eq!(
        (&j["sources"][0]["skipped"], &j["sources"][0]["unsupported"]),
        (&json!(10), &json!(10)),
        "{j}"
    );
    // Unsupported is not malformed: --strict accepts the file.
    let strict = tripline(&["hunt", "-q", "--strict", "--intel", s(&intel), s(&log)]);
    assert_eq!(strict.status.code(), Some(1), "{}", texts(&strict).1);
}

/// Every real MISP event has `link`, `text` or `comment` attributes; `--strict`
/// refused them all as "not matched".
#[test]
fn strict_rejected_every_real_misp_event() {
    let out = tripline(&[
        "intel",
        "--strict",
        "--intel",
        "fixtures/intel/misp/pymisp-tests/57c4445b-c548-4654-af0b-4be3950d210f.json",
        "--intel",
        "fixtures/intel/misp/pymisp-tests/to_delete3.json",
    ]);
    let (text, err) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{err}");
    assert!(text.contains("type not matched: link"), "{text}");
    // A malformed record is still fatal.
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.json",
        &misp_event(&[
            ("domain", "evil.example"),
            ("domain|ip", "no-separator.example"),
        ]),
    );
    let out = tripline(&["intel", "--strict", "--intel", s(&bad)]);
    let (_, err) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("1 malformed record(s) (--strict)"), "{err}");
    assert!(
        err.contains("composite domain|ip value without '|'"),
        "{err}"
    );
}

#[test]
fn list_txt_and_list_csv_became_one_source() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "feeds/list.txt", "evil.example\n");
    write(dir.path(), "feeds/list.csv", "indicator\nbad.example\n");
    let out = tripline(&["intel", "--json", "--intel", s(&dir.path().join("feeds"))]);
    let j: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut names: Vec<&str> = j["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["list.csv", "list.txt"]);
}

#[test]
fn clashing_source_names_were_merged_silently() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a/iocs.txt", "evil.example\n");
    let b = write(dir.path(), "b/iocs.txt", "bad.example\n");
    let one = format!("circl={}", s(&a));
    let two = format!("circl={}", s(&b));
    for args in [
        vec!["intel", "--intel", one.as_str(), "--intel", two.as_str()],
        vec!["intel", "--intel", s(&a), "--intel", s(&b)],
    ] {
        let out = tripline(&args);
        let (text, err) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}{err}");
        assert!(err.contains(s(&a)) && err.contains(s(&b)), "{err}");
        assert!(err.contains("give each source its own name"), "{err}");
    }
    // One named directory: its files share the name, as documented.
    let named = format!("circl={}", s(dir.path()));
    let out = tripline(&["intel", "--intel", named.as_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", texts(&out).1);
}

#[test]
fn csv_errors_printed_debug_records() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "l.csv",
        "first_seen,indicator\n2024-01-01,evil.example\n",
    );
    let out = tripline(&["intel", "--csv-column", "nope", "--intel", s(&csv)]);
    let (text, err) = texts(&out);
    let all = format!("{text}{err}");
    assert!(
        all.contains(&format!(
            "{}:1: no CSV column named \"nope\" (columns: \"first_seen\", \"indicator\")",
            s(&csv)
        )),
        "{all}"
    );
    assert!(!all.contains("StringRecord"), "{all}");
}

/// A broken list in a `--warninglists` directory aborted the hunt although its log
/// line said it was skipped. Now it is skipped, reported, and the status says so.
#[test]
fn broken_warninglist_in_a_directory_aborted_the_hunt() {
    let dir = tempfile::tempdir().unwrap();
    let lists = dir.path().join("lists");
    write(
        &lists,
        "allow.json",
        &json!({"name": "org allowlist", "type": "string", "list": ["benign.example"],
            "matching_attributes": ["domain"]})
        .to_string(),
    );
    write(&lists, "broken.json", "{\"name\": \"x\", \"list\": [");
    let intel = write(dir.path(), "l.txt", "benign.example\nevil.example\n");
    let log = write(dir.path(), "a.log", "q=benign.example\nq=evil.example\n");
    let out = tripline(&[
        "hunt",
        "-q",
        "--warninglists",
        s(&lists),
        "--intel",
        s(&intel),
        s(&log),
    ]);
    let (stdout, err) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{err}");
    assert_eq!(alerted(&out), ["evil.example"], "{err}");
    assert!(err.contains("broken.json:1:"), "{err}");
    assert!(err.contains("warninglist not loaded"), "{err}");
}

// ---------------------------------------------------------------------------------
// `tripline run` configuration.

#[test]
fn broad_limits_set_in_the_run_config_and_shown_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "t.toml",
        &format!(
            "[intel]\npaths = [\"fixtures/intel/traps\"]\nmin_prefix_v4 = 12\nmin_prefix_v6 = 32\n[state]\ndir = \"{}\"\n",
            dir.path().join("state").display()
        ),
    );
    let out = tripline(&["run", "--check", "--config", s(&config)]);
    let (stdout, err) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{err}");
    assert!(
        stdout.contains("prefixes shorter than IPv4 /12 or IPv6 /32 refused"),
        "{stdout}"
    );
    let allow = write(
        dir.path(),
        "a.toml",
        &format!(
            "[intel]\npaths = [\"fixtures/intel/traps\"]\nallow_broad = true\n[state]\ndir = \"{}\"\n",
            dir.path().join("state").display()
        ),
    );
    let out = tripline(&["run", "--check", "--config", s(&allow)]);
    let (stdout, _) = texts(&out);
    assert!(
        stdout.contains("broad intel: public suffixes and short prefixes kept"),
        "{stdout}"
    );
}
