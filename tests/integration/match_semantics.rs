//! Match semantics, one table per indicator type: (indicators, line, expected
//! indicator names). Every table is also run through `hunt` with one and with two
//! threads, which must agree with the matcher and with each other.

use std::collections::BTreeSet;

use tripline::hunt::{hunt, HuntOptions};
use tripline::index::{BuildOptions, Index, WarninglistMode};
use tripline::intel::canon;
use tripline::intel::warninglist::Warninglists;
use tripline::intel::{IntelStore, Kind, Meta, Source, StoreOptions};
use tripline::matcher::Matcher;
use tripline::source::batch::Input;

/// An indicator for a table: a kind, or `None` to detect it as a list entry would.
type Ind = (Option<Kind>, &'static str);

fn index_of(indicators: &[Ind], warninglists: &Warninglists) -> Index {
    let mut store = IntelStore::new(StoreOptions::default());
    let src = store.add_source(Source {
        name: "table".into(),
        format: "list",
        location: "test".into(),
        provider: None,
    });
    for (kind, value) in indicators {
        let c = match kind {
            Some(k) => canon::canonical(*k, value),
            None => canon::detect(value),
        }
        .unwrap_or_else(|e| panic!("bad table indicator {value:?}: {e}"));
        let misp_type = store.intern(c.kind.default_misp_type());
        let meta = store
            .meta_id(Meta {
                source: src,
                misp_type,
                to_ids: true,
                ..Meta::default()
            })
            .unwrap();
        store.add_canonical(&c, meta);
    }
    Index::build(
        store,
        warninglists,
        BuildOptions {
            warninglist_mode: WarninglistMode::Drop,
        },
    )
}

fn found(index: &Index, line: &str) -> BTreeSet<String> {
    let mut m = Matcher::new(index);
    let mut hits = Vec::new();
    m.find_with_json(line.as_bytes(), &mut hits);
    for h in &hits {
        // A span, when there is one, points at the atomic in the line.
        if let Some((s, e)) = h.span {
            assert_eq!(
                &line.as_bytes()[s..e],
                h.atomic.as_bytes(),
                "span of {h:?} in {line:?}"
            );
        }
    }
    hits.iter().map(|h| index.value(h.id).to_string()).collect()
}

/// Runs a table: each case is (line, expected names). Then runs all lines through
/// `hunt` with 1 and 2 threads and checks the same lines matched.
fn run_table(name: &str, indicators: &[Ind], cases: &[(&str, &[&str])]) {
    run_table_with(name, indicators, &Warninglists::new(), cases);
}

/// [`run_table`] with warninglists applied (dropping what they hold).
fn run_table_with(
    name: &str,
    indicators: &[Ind],
    warninglists: &Warninglists,
    cases: &[(&str, &[&str])],
) {
    let index = index_of(indicators, warninglists);
    let mut failures = Vec::new();
    for (line, want) in cases {
        let got = found(&index, line);
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        if got != want {
            failures.push(format!(
                "  line {line:?}\n    want {want:?}\n    got  {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "table {name}:\n{}",
        failures.join("\n")
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines.log");
    let text: String = cases.iter().map(|(l, _)| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    let expected: Vec<u64> = cases
        .iter()
        .enumerate()
        .filter(|(_, (_, w))| !w.is_empty())
        .map(|(i, _)| i as u64 + 1)
        .collect();
    let mut outputs = Vec::new();
    for threads in [1, 2] {
        let mut out = Vec::new();
        let opts = HuntOptions {
            threads,
            ..HuntOptions::default()
        };
        let stats = hunt(&index, &[Input::Path(path.clone())], &opts, &mut out).unwrap();
        assert_eq!(
            stats.matched_lines,
            expected.len() as u64,
            "table {name}, {threads} thread(s)"
        );
        let lines: Vec<u64> = String::from_utf8(out.clone())
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["tripline"]["line_number"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(lines, expected, "table {name}, {threads} thread(s)");
        outputs.push(out);
    }
    // Same bytes whatever the thread count, but for @timestamp of lines without
    // their own time (time of reading) — none of the table lines has one that differs.
    let strip = |o: &[u8]| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(o)
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("@timestamp");
                v
            })
            .collect()
    };
    assert_eq!(
        strip(&outputs[0]),
        strip(&outputs[1]),
        "table {name}: 1 vs 2 threads"
    );
}

#[test]
fn ipv4_tokens_are_whole() {
    run_table(
        "ipv4",
        &[(None, "1.2.3.4")],
        &[
            ("connect 1.2.3.4", &["1.2.3.4"]),
            ("connect 11.2.3.4", &[]),
            ("connect 1.2.3.45", &[]),
            ("connect 1.2.3.4.5", &[]),
            ("dst 1.2.3.4:443", &["1.2.3.4"]),
            ("src=1.2.3.4, dst=5.6.7.8", &["1.2.3.4"]),
            ("blocked traffic from 1.2.3.4.", &["1.2.3.4"]),
            ("mapped ::ffff:1.2.3.4 here", &["1.2.3.4"]),
            ("mapped ::FFFF:102:304 here", &["1.2.3.4"]),
            ("version v1.2.3.4", &[]),
            ("agent Foo/1.2.3.4 (X11)", &[]),
            ("GET http://1.2.3.4/x HTTP/1.1", &["1.2.3.4"]),
            ("path /ip/1.2.3.4 lookup", &["1.2.3.4"]),
            ("\"1.2.3.4\"", &["1.2.3.4"]),
            ("[1.2.3.4]", &["1.2.3.4"]),
            ("1.2.3.4", &["1.2.3.4"]),
            ("host-1.2.3.4", &[]),
            ("01.002.3.4", &["1.2.3.4"]),
        ],
    );
}

#[test]
fn cidr_covers_addresses_and_versions_are_not_addresses() {
    run_table(
        "cidr",
        &[
            (None, "4.0.0.0/8"),
            (None, "10.0.0.0/8"),
            (None, "10.1.0.0/16"),
            (None, "10.1.2.3"),
        ],
        &[
            (
                "from 10.1.2.3 to x",
                &["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3"],
            ),
            ("from 10.2.2.3 to x", &["10.0.0.0/8"]),
            ("from 11.1.2.3 to x", &[]),
            ("Mozilla/5.0 Chrome/4.0.222.12 Safari/537.36", &[]),
            ("AppleWebKit/4.1.2.3 (KHTML)", &[]),
            ("client 4.1.2.3 ok", &["4.0.0.0/8"]),
            ("v4.1.2.3", &[]),
        ],
    );
}

/// A CIDR warninglist drops the indicator CIDRs it covers whole (a list range no
/// longer than the indicator's prefix), never a wider indicator CIDR that merely
/// contains a list range.
#[test]
fn cidr_indicators_on_a_cidr_warninglist() {
    let mut lists = Warninglists::new();
    let list = r#"{"name": "ranges", "type": "cidr",
                   "list": ["10.0.0.0/8", "172.16.0.0/24", "2001:db8::/32"]}"#;
    lists
        .load_json(std::path::Path::new("ranges.json"), list.as_bytes())
        .unwrap();
    run_table_with(
        "cidr on a warninglist",
        &[
            (None, "10.1.0.0/16"),
            (None, "10.0.0.0/7"),
            (None, "172.16.0.0/12"),
            (None, "2001:db8:1::/48"),
        ],
        &lists,
        &[
            ("src=10.1.2.3", &["10.0.0.0/7"]),
            ("src=11.0.0.1", &["10.0.0.0/7"]),
            ("src=172.16.0.9", &["172.16.0.0/12"]),
            ("src=172.31.0.1", &["172.16.0.0/12"]),
            ("src=2001:db8:1::5", &[]),
        ],
    );
}

#[test]
fn ipv6_any_written_form() {
    run_table(
        "ipv6",
        &[(None, "2001:db8::1"), (None, "2001:db8:ffff::/48")],
        &[
            ("from 2001:db8::1 port 22", &["2001:db8::1"]),
            ("from 2001:DB8:0:0:0:0:0:1 port 22", &["2001:db8::1"]),
            (
                "from 2001:0db8:0000:0000:0000:0000:0000:0001",
                &["2001:db8::1"],
            ),
            ("to [2001:db8::1]:443", &["2001:db8::1"]),
            ("to 2001:db8::11 x", &[]),
            ("to 2001:db8:ffff:1::5 x", &["2001:db8:ffff::/48"]),
            ("time 10:05:03 x", &[]),
            ("mac 00:1a:2b:3c:4d:5e", &[]),
            ("end 2001:db8::1.", &["2001:db8::1"]),
        ],
    );
}

#[test]
fn domains_match_on_label_boundaries() {
    run_table(
        "domain",
        &[
            (Some(Kind::Domain), "evil.com"),
            (Some(Kind::Hostname), "exact.host.net"),
        ],
        &[
            ("query evil.com A", &["evil.com"]),
            ("query EVIL.com A", &["evil.com"]),
            ("query a.b.evil.com A", &["evil.com"]),
            ("query evil.com. A", &["evil.com"]),
            ("mail to user@evil.com ok", &["evil.com"]),
            ("query notevil.com A", &[]),
            ("query evil.com.au A", &[]),
            ("query evil.company A", &[]),
            ("query evil-com.net A", &[]),
            ("GET http://www.Evil.Com/path", &["evil.com"]),
            ("host exact.host.net", &["exact.host.net"]),
            ("host EXACT.host.NET.", &["exact.host.net"]),
            ("host a.exact.host.net", &[]),
            ("host host.net", &[]),
        ],
    );
}

#[test]
fn urls_match_whole() {
    run_table(
        "url",
        &[
            (None, "http://evil.com/gate.php"),
            (None, "bad.org/dl/payload.bin"),
            (None, "https://c2.example.net:8443/api?id=7"),
            (None, "http://root-only.example.org"),
        ],
        &[
            (
                "GET http://evil.com/gate.php HTTP/1.1",
                &["evil.com/gate.php"],
            ),
            ("GET HTTP://EVIL.COM/gate.php", &["evil.com/gate.php"]),
            ("GET http://evil.com/gate.php?id=1", &["evil.com/gate.php"]),
            ("GET http://evil.com/gate.php#frag", &["evil.com/gate.php"]),
            ("GET http://evil.com/gate.php2", &[]),
            ("GET http://evil.com/gate.php/x", &[]),
            ("GET http://evil.com/Gate.php", &[]),
            (
                "fetch https://bad.org/dl/payload.bin done",
                &["bad.org/dl/payload.bin"],
            ),
            (
                "fetch bad.org/dl/payload.bin done",
                &["bad.org/dl/payload.bin"],
            ),
            (
                "\"http://bad.org/dl/payload.bin\"",
                &["bad.org/dl/payload.bin"],
            ),
            (
                "see (http://bad.org/dl/payload.bin).",
                &["bad.org/dl/payload.bin"],
            ),
            (
                "https://c2.example.net:8443/api?id=7&x=1",
                &["c2.example.net:8443/api?id=7"],
            ),
            ("https://c2.example.net:8443/api?id=8", &[]),
            ("https://c2.example.net/api?id=7", &[]),
            (
                "go http://root-only.example.org now",
                &["root-only.example.org/"],
            ),
            (
                "go http://root-only.example.org/ now",
                &["root-only.example.org/"],
            ),
            (
                r#"{"url":"http:\/\/bad.org\/dl\/payload.bin"}"#,
                &["bad.org/dl/payload.bin"],
            ),
        ],
    );
}

#[test]
fn hashes_match_whole_hex_tokens() {
    let md5 = "d41d8cd98f00b204e9800998ecf8427f";
    let sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    run_table(
        "hash",
        &[(None, md5), (None, sha256)],
        &[
            ("md5=d41d8cd98f00b204e9800998ecf8427f", &[md5]),
            ("md5=D41D8CD98F00B204E9800998ECF8427F", &[md5]),
            ("file d41d8cd98f00b204e9800998ecf8427f.exe", &[md5]),
            ("x d41d8cd98f00b204e9800998ecf8427f0 x", &[]),
            ("x 0d41d8cd98f00b204e9800998ecf8427f x", &[]),
            ("x gd41d8cd98f00b204e9800998ecf8427f x", &[]),
            (
                r#"{"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#,
                &[sha256],
            ),
        ],
    );
}

#[test]
fn emails_filenames_and_literals() {
    run_table(
        "strings",
        &[
            (Some(Kind::Email), "bad.actor@evil.org"),
            (Some(Kind::Filename), "invoice.exe"),
            (Some(Kind::Literal), "Global\\BadMutex"),
            (Some(Kind::Literal), "EvilBot/1.0"),
        ],
        &[
            ("from Bad.Actor@EVIL.org to x", &["bad.actor@evil.org"]),
            ("from xbad.actor@evil.org", &[]),
            ("from bad.actor@evil.org.uk", &[]),
            ("run C:\\Users\\x\\invoice.exe now", &["invoice.exe"]),
            ("run /tmp/INVOICE.EXE", &["invoice.exe"]),
            ("run /tmp/myinvoice.exe", &[]),
            ("run /tmp/invoice.exe.bak", &[]),
            ("mutex Global\\BadMutex created", &["Global\\BadMutex"]),
            ("mutex global\\badmutex created", &[]),
            ("UA EvilBot/1.0 (x)", &["EvilBot/1.0"]),
        ],
    );
}

/// Registry keys compare without regard to ASCII case, as Windows does; a
/// `regkey|value` needs its value on the same line; a file name from a plain list
/// (`None`: detected as a list entry) is a file name, not a domain.
#[test]
fn registry_keys_and_listed_file_names() {
    run_table(
        "registry",
        &[
            (Some(Kind::Regkey), "HKCU\\Software\\Harbor"),
            (
                Some(Kind::RegkeyValue),
                "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run|%TEMP%\\x7evil.exe",
            ),
            (None, "dropper.dll"),
            (Some(Kind::Literal), "Global\\BadMutex"),
        ],
        &[
            ("set HKCU\\SOFTWARE\\harbor\\Cfg", &["hkcu\\software\\harbor"]),
            ("set hkcu\\software\\harbor", &["hkcu\\software\\harbor"]),
            (
                "TargetObject=HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\OneDrive Details=C:\\OneDrive.exe",
                &[],
            ),
            (
                "TargetObject=HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\u Details=C:\\Temp\\X7EVIL.exe",
                &["hklm\\software\\microsoft\\windows\\currentversion\\run|x7evil.exe"],
            ),
            // The value alone is no match.
            ("file C:\\Temp\\x7evil.exe", &[]),
            // Case-insensitive matching of keys leaves other literals exact.
            ("mutex global\\badmutex", &[]),
            ("load C:\\x\\Dropper.DLL", &["dropper.dll"]),
            ("GET http://a.dropper.dll/ 200", &[]),
        ],
    );
}

#[test]
fn binary_garbage_and_invalid_utf8_do_not_break_matching() {
    let index = index_of(
        &[(None, "1.2.3.4"), (Some(Kind::Domain), "evil.com")],
        &Warninglists::new(),
    );
    let mut line = vec![0xff, 0xfe, 0x00, 0x80];
    line.extend_from_slice(b" 1.2.3.4 \xc3\x28 evil.com \x00\x01");
    let mut m = Matcher::new(&index);
    let mut hits = Vec::new();
    m.find_with_json(&line, &mut hits);
    let names: BTreeSet<&str> = hits.iter().map(|h| index.value(h.id)).collect();
    assert_eq!(names, BTreeSet::from(["1.2.3.4", "evil.com"]));
    // Arbitrary bytes never panic.
    let mut state: u64 = 42;
    for _ in 0..2000 {
        let mut buf = Vec::new();
        for _ in 0..200 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let alphabet = b"0123456789abcdef.:-_@/?#[]\\\"' xZ\xff";
            buf.push(alphabet[(state >> 33) as usize % alphabet.len()]);
        }
        hits.clear();
        m.find_with_json(&buf, &mut hits);
    }
}

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Index>();
    assert_send_sync::<IntelStore>();
}
