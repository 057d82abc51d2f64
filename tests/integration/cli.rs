//! The real binary on the fixtures: golden output, trap cases, exit statuses, inputs of
//! every kind (directories, .gz, stdin), bad input, and the intel commands.
//!
//! Set `UPDATE_GOLDEN=1` to rewrite the golden files after a reviewed change.

use crate::util::{root, tripline};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn tripline_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tripline");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn alerts(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// line number → sorted indicators (canonical values, `tripline.enrichments[].indicator`).
fn by_line(alerts: &[serde_json::Value]) -> BTreeMap<u64, Vec<String>> {
    alerts
        .iter()
        .map(|a| {
            let mut names: Vec<String> = a["tripline"]["enrichments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["indicator"].as_str().unwrap().to_string())
                .collect();
            names.sort();
            (a["tripline"]["line_number"].as_u64().unwrap(), names)
        })
        .collect()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Compares with a golden file, showing the first differing lines.
fn assert_golden(name: &str, got: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if want != got {
        let w: Vec<&str> = want.lines().collect();
        let g: Vec<&str> = got.lines().collect();
        let mut report = format!(
            "{name}: output differs from the golden file ({} vs {} lines)\n",
            w.len(),
            g.len()
        );
        for i in 0..w.len().max(g.len()) {
            if w.get(i) != g.get(i) {
                report += &format!(
                    "first difference at line {}:\n  want: {}\n  got:  {}\n",
                    i + 1,
                    w.get(i).unwrap_or(&"<none>"),
                    g.get(i).unwrap_or(&"<none>")
                );
                break;
            }
        }
        panic!("{report}");
    }
}

#[test]
fn traps_match_exactly_the_right_lines() {
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let got = by_line(&alerts(&out));
    let want: BTreeMap<u64, Vec<String>> = [
        (1, vec!["91.198.51.77"]),
        (4, vec!["91.198.51.77"]),
        (5, vec!["2a03:b0c0:3:d0::1a"]),
        (6, vec!["2a03:b0c0:3:d0::1a"]),
        (8, vec!["185.100.87.0/24"]),
        (9, vec!["evil-traps.com"]),
        (13, vec!["evil-traps.com"]),
        (14, vec!["gate.trap-c2.net/gate.php"]),
        (18, vec!["evil-sub.duckdns.org"]),
        (19, vec!["bad.sender@phish-trap.org"]),
        (20, vec!["44d88612fea8a8f36de82e1278abb02f"]),
        (21, vec!["gate.trap-c2.net/gate.php"]),
        (22, vec!["91.198.51.77"]),
    ]
    .into_iter()
    .map(|(l, v)| (l, v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn trap_alerts_carry_ecs_fields() {
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ]);
    let a = alerts(&out);
    let first = &a[0];
    assert_eq!(first["@timestamp"], "2024-05-01T10:00:00Z");
    assert_eq!(first["event"]["kind"], "event");
    assert_eq!(first["event"]["category"][0], "threat");
    assert_eq!(first["log"]["file"]["path"], "fixtures/logs/traps.log");
    assert_eq!(first["tripline"]["offset"], 0);
    let e = &first["threat"]["enrichments"][0];
    assert_eq!(e["matched"]["atomic"], "91.198.51.77");
    assert_eq!(e["matched"]["type"], "indicator_match_rule");
    assert_eq!(e["indicator"]["type"], "ipv4-addr");
    assert_eq!(e["indicator"]["provider"], "traps");
    assert_eq!(
        first["tripline"]["enrichments"][0]["sources"][0]["name"],
        "traps"
    );
    // The domain match shows the whole host as seen; the CIDR match the address.
    let dns = a
        .iter()
        .find(|x| x["tripline"]["line_number"] == 9)
        .unwrap();
    // `indicator.name` as the intel wrote it (defanged in traps.txt), the canonical
    // value in tripline's record.
    assert_eq!(
        dns["threat"]["enrichments"][0]["indicator"]["name"],
        "evil-traps[.]com"
    );
    assert_eq!(
        dns["tripline"]["enrichments"][0]["indicator"],
        "evil-traps.com"
    );
    assert_eq!(
        dns["threat"]["enrichments"][0]["matched"]["atomic"],
        "a.b.evil-traps.com"
    );
    assert_eq!(
        dns["threat"]["enrichments"][0]["indicator"]["type"],
        "domain-name"
    );
    let cidr = a
        .iter()
        .find(|x| x["tripline"]["line_number"] == 8)
        .unwrap();
    assert_eq!(
        cidr["threat"]["enrichments"][0]["matched"]["atomic"],
        "185.100.87.12"
    );
    // Offsets point at the line.
    let text = std::fs::read(root().join("fixtures/logs/traps.log")).unwrap();
    for x in &a {
        let off = x["tripline"]["offset"].as_u64().unwrap() as usize;
        let line_no = x["tripline"]["line_number"].as_u64().unwrap() as usize;
        let nth = text.split(|&b| b == b'\n').nth(line_no - 1).unwrap();
        assert_eq!(&text[off..off + nth.len()], nth, "offset of line {line_no}");
    }
    // Invalid UTF-8 is matched and shown replaced.
    let garbage = a
        .iter()
        .find(|x| x["tripline"]["line_number"] == 22)
        .unwrap();
    assert!(garbage["message"].as_str().unwrap().contains('\u{FFFD}'));
}

#[test]
fn warninglist_mode_flag_keeps_listed_indicators_with_a_mark() {
    let out = tripline(&[
        "hunt",
        "-q",
        "--warninglist-mode",
        "flag",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ]);
    let got = by_line(&alerts(&out));
    assert_eq!(got.get(&16), Some(&vec!["8.8.8.8".to_string()]));
    assert!(got.get(&23).unwrap().contains(&"10.0.0.0/8".to_string()));
    let a = alerts(&out);
    let l16 = a
        .iter()
        .find(|x| x["tripline"]["line_number"] == 16)
        .unwrap();
    assert_eq!(
        l16["tripline"]["enrichments"][0]["warninglisted"],
        "List of known IPv4 public DNS resolvers"
    );
    // Without the shipped lists nothing is warninglisted at all (and with
    // --allow-broad the public suffix duckdns.org is kept too).
    let out = tripline(&[
        "hunt",
        "-q",
        "--allow-broad",
        "--no-default-warninglists",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ]);
    let got = by_line(&alerts(&out));
    assert!(got.contains_key(&16) && got.contains_key(&17) && got.contains_key(&23));
}

#[test]
fn golden_hunt_over_all_fixtures() {
    let mut logs: Vec<String> = std::fs::read_dir(root().join("fixtures/logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .map(|n| format!("fixtures/logs/{n}"))
        .collect();
    logs.sort();
    let run = |threads: &str| {
        let mut args = vec![
            "hunt",
            "-q",
            "--threads",
            threads,
            "--intel",
            "fixtures/intel",
        ];
        args.extend(logs.iter().map(|s| s.as_str()));
        tripline(&args)
    };
    let out = run("2");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_golden("hunt_fixtures.jsonl", &String::from_utf8_lossy(&out.stdout));
    // One thread gives the same bytes.
    let one = run("1");
    assert!(one.stdout == out.stdout, "1 thread and 2 threads differ");
}

#[test]
fn exit_status_like_grep() {
    let none = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/zeek_ssl.log",
    ]);
    assert_eq!(code(&none), 1);
    assert!(none.stdout.is_empty());
    // A missing file is reported; the others are still searched; status 2.
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        "no/such/file.log",
        "fixtures/logs/traps.log",
    ]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/file.log"));
    assert_eq!(by_line(&alerts(&out)).len(), 13);
    // No intel at all is an error.
    assert_eq!(code(&tripline(&["hunt", "fixtures/logs/traps.log"])), 2);
}

#[test]
fn count_prints_matching_lines() {
    let out = tripline(&[
        "hunt",
        "-q",
        "--count",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "13");
}

#[test]
fn gzip_stdin_and_directories_give_the_same_matches() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(root().join("fixtures/logs/traps.log")).unwrap();
    // Named .log, not .gz: detection is by magic bytes.
    let gz_path = dir.path().join("traps-archive.log");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&plain).unwrap();
    std::fs::write(&gz_path, enc.finish().unwrap()).unwrap();
    let want = by_line(&alerts(&tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ])));
    let gz = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        gz_path.to_str().unwrap(),
    ]);
    assert_eq!(by_line(&alerts(&gz)), want);
    let stdin = tripline_stdin(
        &["hunt", "-q", "--intel", "fixtures/intel/traps", "-"],
        &plain,
    );
    assert_eq!(by_line(&alerts(&stdin)), want);
    assert_eq!(alerts(&stdin)[0]["log"]["file"]["path"], "-");
    let sub = dir.path().join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("x.log"), &plain).unwrap();
    let d = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        dir.path().to_str().unwrap(),
    ]);
    let a = alerts(&d);
    // Directory order: a/b/x.log before traps-archive.log.
    assert_eq!(a.len(), 26);
    assert!(a[0]["log"]["file"]["path"]
        .as_str()
        .unwrap()
        .ends_with("a/b/x.log"));
}

#[test]
fn truncated_gzip_keeps_lines_before_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    for i in 0..20000 {
        writeln!(text, "2024-05-01T10:00:00Z line {i} src=91.198.51.77").unwrap();
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&text).unwrap();
    let gz = enc.finish().unwrap();
    let path = dir.path().join("cut.log.gz");
    std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    let out = tripline(&[
        "hunt",
        "--count",
        "--intel",
        "fixtures/intel/traps",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    let n: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(n > 1000 && n < 20000, "kept {n} lines");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.log.gz"), "{err}");
}

#[test]
fn oversized_lines_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.log");
    let mut text = Vec::new();
    text.extend_from_slice(b"first 91.198.51.77\n");
    text.extend(std::iter::repeat_n(b'x', 5000));
    text.extend_from_slice(b" 91.198.51.77\n");
    text.extend_from_slice(b"third 91.198.51.77\n");
    std::fs::write(&path, &text).unwrap();
    let out = tripline(&[
        "hunt",
        "--max-line-bytes",
        "1000",
        "--intel",
        "fixtures/intel/traps",
        path.to_str().unwrap(),
    ]);
    let lines: Vec<u64> = by_line(&alerts(&out)).keys().copied().collect();
    assert_eq!(lines, vec![1, 3]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lines skipped as oversized: 1"), "{err}");
    assert!(err.contains("3 lines"), "{err}");
    // Longer than a read chunk too.
    let mut big = Vec::new();
    big.extend(std::iter::repeat_n(b'y', 3 << 20));
    big.extend_from_slice(b"\nafter 91.198.51.77\n");
    std::fs::write(&path, &big).unwrap();
    let out = tripline(&[
        "hunt",
        "--max-line-bytes",
        "1000",
        "--intel",
        "fixtures/intel/traps",
        path.to_str().unwrap(),
    ]);
    assert_eq!(
        by_line(&alerts(&out)).keys().copied().collect::<Vec<_>>(),
        vec![2]
    );
}

#[test]
fn intel_report_text_and_json() {
    let out = tripline(&["intel", "--intel", "fixtures/intel/traps"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("path-only entry"), "{text}");
    assert!(text.contains("traps.txt:14"), "{text}");
    assert!(
        text.contains("8.8.8.8 (ipv4) on List of known IPv4 public DNS resolvers"),
        "{text}"
    );
    // A public suffix: refused at load (before any warninglist), and still named
    // as a shared parent.
    assert!(
        text.contains("traps.txt:10: domain duckdns.org (source traps): public suffix"),
        "{text}"
    );
    assert!(
        text.contains(
            "1 on the shared-parents warninglist (dynamic DNS, hosting)\n    duckdns.org"
        ),
        "{text}"
    );
    let out = tripline(&["intel", "--json", "--intel", "fixtures/intel/traps"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["by_type"]["domain"], 2);
    assert_eq!(v["warninglisted"].as_array().unwrap().len(), 2);
    assert_eq!(v["refused"].as_array().unwrap().len(), 1);
}

#[test]
fn intel_lookup_explains() {
    let out = tripline(&[
        "intel",
        "lookup",
        "8.8.8.8",
        "--intel",
        "fixtures/intel/traps",
    ]);
    assert_eq!(code(&out), 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("warninglisted by \"List of known IPv4 public DNS resolvers\""),
        "{text}"
    );
    let out = tripline(&[
        "intel",
        "lookup",
        "www.a.evil-traps.com",
        "--intel",
        "fixtures/intel/traps",
    ]);
    assert_eq!(code(&out), 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("matches indicator evil-traps.com (domain)")
    );
    let out = tripline(&[
        "intel",
        "lookup",
        "notevil-traps.com",
        "--intel",
        "fixtures/intel/traps",
    ]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("not in the intel"));
    let out = tripline(&[
        "intel",
        "lookup",
        "192.168.7.7",
        "--intel",
        "fixtures/intel/traps",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("on warninglist \"List of RFC 1918 CIDR blocks\""),
        "{text}"
    );
}

#[test]
fn broad_parents_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.txt");
    std::fs::write(&p, "hosting.example\na.hosting.example\nb.hosting.example\nc.hosting.example\nddns.net\nx.ddns.net\n").unwrap();
    let out = tripline(&["intel", "--intel", p.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hosting.example (3 subdomains)"), "{text}");
    assert!(text.contains("ddns.net"), "{text}");
}

#[test]
fn strict_makes_bad_intel_fatal() {
    let ok = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ]);
    assert_eq!(code(&ok), 0);
    let strict = tripline(&[
        "hunt",
        "-q",
        "--strict",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ]);
    // traps.txt:14 is a path-only entry: valid, not matched, counted (not fatal).
    assert_eq!(
        code(&strict),
        0,
        "{}",
        String::from_utf8_lossy(&strict.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(
        &bad,
        "evil.example
999.1.1.1
",
    )
    .unwrap();
    let strict = tripline(&[
        "hunt",
        "-q",
        "--strict",
        "--intel",
        bad.to_str().unwrap(),
        "fixtures/logs/traps.log",
    ]);
    assert_eq!(code(&strict), 2);
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(err.contains("bad.txt:2: invalid IP address"), "{err}");
}

#[test]
fn bad_intel_files_are_reported_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, "{\"Event\": {\"info\": \"x\",\n  \"Attribute\": [ }").unwrap();
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        bad.to_str().unwrap(),
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ]);
    // The good intel still loads and matches; the status says something failed.
    assert_eq!(code(&out), 2);
    assert_eq!(by_line(&alerts(&out)).len(), 13);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.json:2:"), "{err}");
    let cidr = dir.path().join("cidrs.txt");
    std::fs::write(&cidr, "10.0.0.0/33\n1.2.3.4/8x\n300.1.1.1\n5.6.7.0/24\n").unwrap();
    let out = tripline(&[
        "intel",
        "--no-default-warninglists",
        "--intel",
        cidr.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cidrs.txt:1: invalid CIDR"), "{text}");
    assert!(text.contains("cidrs.txt:3: invalid IP address"), "{text}");
    assert!(text.contains("ipv4       1"), "{text}");
    // `1.2.3.4/8x` is a URL with a short path, as real trails write them.
    assert!(text.contains("url        1"), "{text}");
}

#[allow(dead_code)]
fn exists(p: &Path) -> bool {
    p.exists()
}

#[test]
fn stix_validity_is_judged_at_the_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("v6.log");
    std::fs::write(
        &log,
        "2024-04-01T00:00:00Z fw allow 2001:db8:dead:beef::7\n\
         2024-07-01T00:00:00Z fw allow 2001:db8:dead:beef::7\n\
         2024-01-01T00:00:00Z fw allow 2001:db8:dead:beef::7\n\
         no time here, 2001:db8:dead:beef::7\n\
         2024-04-01T00:00:00Z dns old-harbor.example.org\n",
    )
    .unwrap();
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/stix/harbor-campaign.json",
        log.to_str().unwrap(),
    ]);
    // Valid from 2024-03-01T09:00 until 2024-06-01: only the first line; the revoked
    // indicator never matches.
    assert_eq!(
        by_line(&alerts(&out)).keys().copied().collect::<Vec<_>>(),
        vec![1]
    );
}

#[test]
fn one_indicator_from_several_sources_is_one_enrichment() {
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        "--intel",
        "fixtures/intel/stix",
        "fixtures/logs/traps.log",
    ]);
    let a = alerts(&out);
    let av = a
        .iter()
        .find(|x| x["tripline"]["line_number"] == 20)
        .unwrap();
    let enrich = av["threat"]["enrichments"].as_array().unwrap();
    assert_eq!(enrich.len(), 1, "{av}");
    let names: Vec<&str> = av["tripline"]["enrichments"][0]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    // Sources in load order.
    assert_eq!(names, vec!["traps", "harbor-campaign"]);
    let stix = &av["tripline"]["enrichments"][0]["sources"][1];
    assert!(stix["attribute"]["uuid"]
        .as_str()
        .unwrap()
        .starts_with("indicator--"));
    assert!(stix["event"]["info"].is_string());
}

#[test]
fn misp_provenance_reaches_the_alert() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("x.log");
    // A sha256 of the CIRCL Xorist event (tlp:white, to_ids true).
    std::fs::write(&log, "2024-04-01T00:00:00Z av sha256=b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68\n").unwrap();
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/misp/pymisp-tests/57c4445b-c548-4654-af0b-4be3950d210f.json",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let a = alerts(&out);
    let e = &a[0]["threat"]["enrichments"][0];
    assert_eq!(e["indicator"]["type"], "file");
    assert_eq!(e["indicator"]["marking"]["tlp"], "CLEAR");
    let s = &a[0]["tripline"]["enrichments"][0]["sources"][0];
    assert_eq!(s["event"]["info"], "Ransomware - Xorist");
    assert_eq!(s["event"]["uuid"], "57c4445b-c548-4654-af0b-4be3950d210f");
    assert_eq!(s["attribute"]["type"], "sha256");
    assert!(s["attribute"]["uuid"].is_string());
    assert!(s["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "tlp:white"));
}

#[test]
fn lookup_explains_policy_exclusions() {
    let deleted = tripline(&[
        "intel",
        "lookup",
        "C:\\tmp\\bar.exe",
        "--intel",
        "fixtures/intel/misp/pymisp-tests/attribute_del.json",
    ]);
    let text = String::from_utf8_lossy(&deleted.stdout);
    assert_eq!(code(&deleted), 1, "{text}");
    assert!(text.contains("not matched: deleted"), "{text}");
    let not_ids = tripline(&[
        "intel",
        "lookup",
        "http://fake.website.com/malware/is/here",
        "--intel",
        "fixtures/intel/misp/pymisp-tests/misp_event.json",
    ]);
    let text = String::from_utf8_lossy(&not_ids.stdout);
    assert!(text.contains("not matched: to_ids is false"), "{text}");
    // --include-non-ids makes it matchable; hunt agrees with lookup.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("p.log");
    std::fs::write(
        &log,
        // A day after the (2016) event: its URL decays within weeks.
        "2016-06-12T00:00:00Z GET http://fake.website.com/malware/is/here 200\n",
    )
    .unwrap();
    let intel = "fixtures/intel/misp/pymisp-tests/misp_event.json";
    assert_eq!(
        code(&tripline(&[
            "hunt",
            "-q",
            "--intel",
            intel,
            log.to_str().unwrap()
        ])),
        1
    );
    assert_eq!(
        code(&tripline(&[
            "hunt",
            "-q",
            "--include-non-ids",
            "--intel",
            intel,
            log.to_str().unwrap()
        ])),
        0
    );
    let expired = tripline(&[
        "intel",
        "lookup",
        "2001:db8:dead:beef::7",
        "--intel",
        "fixtures/intel/stix/harbor-campaign.json",
    ]);
    assert!(String::from_utf8_lossy(&expired.stdout).contains("expired"));
    let revoked = tripline(&[
        "intel",
        "lookup",
        "old-harbor.example.org",
        "--intel",
        "fixtures/intel/stix/harbor-campaign.json",
    ]);
    assert!(String::from_utf8_lossy(&revoked.stdout).contains("not matched: revoked"));
}

#[test]
fn a_local_allowlist_is_a_warninglist_file() {
    let dir = tempfile::tempdir().unwrap();
    let allow = dir.path().join("our-domains.json");
    std::fs::write(
        &allow,
        r#"{"name": "Our own domains", "version": 1, "description": "allowlist", "type": "hostname",
            "matching_attributes": ["domain", "hostname", "url"], "list": ["evil-traps.com", "trap-c2.net"]}"#,
    )
    .unwrap();
    let out_file = dir.path().join("alerts.jsonl");
    let out = tripline(&[
        "hunt",
        "-q",
        "--warninglists",
        allow.to_str().unwrap(),
        "--intel",
        "fixtures/intel/traps",
        "--output",
        out_file.to_str().unwrap(),
        "fixtures/logs/traps.log",
    ]);
    assert_eq!(code(&out), 0);
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(&out_file).unwrap();
    let lines: Vec<u64> = written
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["tripline"]["line_number"]
                .as_u64()
                .unwrap()
        })
        .collect();
    // The domain and the URL lines (9, 13, 14, 21) are gone.
    assert_eq!(lines, vec![1, 4, 5, 6, 8, 18, 19, 20, 22]);
    let report = tripline(&[
        "intel",
        "--warninglists",
        allow.to_str().unwrap(),
        "--intel",
        "fixtures/intel/traps",
    ]);
    assert!(String::from_utf8_lossy(&report.stdout).contains("Our own domains: 2"));
}

#[test]
fn alerts_say_where_an_indicator_was_seen() {
    let dir = tempfile::tempdir().unwrap();
    let intel = dir.path().join("event.json");
    std::fs::write(
        &intel,
        r#"{"Event": {"uuid": "5f0c0e8e-0000-4000-8000-000000000001", "info": "Scanner", "Attribute": [
            {"uuid": "5f0c0e8e-0000-4000-8000-000000000002", "type": "ip-src", "category": "Network activity",
             "to_ids": true, "value": "91.198.51.77"}]}}"#,
    )
    .unwrap();
    let log = dir.path().join("fw.log");
    std::fs::write(
        &log,
        "2024-05-01T10:00:00Z fw01 action=allow src=10.1.1.1 dst=91.198.51.77 dport=443\n\
         {\"timestamp\":\"2024-05-01T10:00:01Z\",\"event_type\":\"flow\",\"src_ip\":\"91.198.51.77\",\"dest_ip\":\"10.1.1.1\"}\n",
    )
    .unwrap();
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        intel.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    let a = alerts(&out);
    assert_eq!(a.len(), 2);
    // An ip-src attribute seen as a destination still matches, and says so.
    let e0 = &a[0]["threat"]["enrichments"][0];
    let t0 = &a[0]["tripline"]["enrichments"][0];
    assert_eq!(t0["sources"][0]["attribute"]["type"], "ip-src");
    assert_eq!(e0["matched"]["field"], "destination.ip");
    assert_eq!(t0["seen_as"], "destination");
    assert_eq!(a[0]["host"]["name"], "fw01");
    assert_eq!(a[0]["destination"]["ip"], "91.198.51.77");
    let e1 = &a[1]["threat"]["enrichments"][0];
    assert_eq!(e1["matched"]["field"], "source.ip");
    assert_eq!(a[1]["tripline"]["enrichments"][0]["seen_as"], "source");
    assert_eq!(a[1]["tripline"]["format"], "json");
}

/// Defect: a `.zst`, `.bz2` or `.xz` archive was searched as raw compressed bytes: no
/// error, exit 1, nothing found. Now each is detected by its magic bytes (whatever its
/// name) and decompressed; a truncated one is reported with its path and the lines
/// before the damage are kept.
#[test]
fn compressed_archives_are_not_searched_as_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(root().join("fixtures/logs/traps.log")).unwrap();
    let want = by_line(&alerts(&tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ])));
    assert!(!want.is_empty());
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let bz2 = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    let xz = {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(&plain).unwrap();
        e.finish().unwrap()
    };
    for (kind, bytes) in [("zstd", &zst), ("bzip2", &bz2), ("xz", &xz)] {
        // Named .log: detection is by magic bytes.
        let path = dir.path().join(format!("{kind}-archive.log"));
        std::fs::write(&path, bytes).unwrap();
        let out = tripline(&[
            "hunt",
            "-q",
            "--intel",
            "fixtures/intel/traps",
            path.to_str().unwrap(),
        ]);
        assert_eq!(
            code(&out),
            0,
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(by_line(&alerts(&out)), want, "{kind}");
        // Cut in the middle: an error naming the file, exit 2, lines before it kept.
        let cut = dir.path().join(format!("{kind}-cut.log"));
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let out = tripline(&[
            "hunt",
            "-q",
            "--intel",
            "fixtures/intel/traps",
            cut.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{kind}: {err}");
        assert!(err.contains(&format!("{kind}-cut.log")), "{kind}: {err}");
    }
}
