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
                port: c.port,
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
            ..BuildOptions::default()
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
    // Same bytes whatever the thread count, but for @timestamp (and the match time
    // `matched.occurred`, the same) of lines without their own time (time of reading)
    // — none of the table lines has one that differs.
    let strip = |o: &[u8]| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(o)
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("@timestamp");
                for e in v["threat"]["enrichments"].as_array_mut().unwrap() {
                    e["matched"].as_object_mut().unwrap().remove("occurred");
                }
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

// Tokenizer rules for real formats (issue 9). Each table is named after the defect it
// pins; the lines are shaped like the format's real lines (see fixtures/corpus).

#[test]
fn squid_and_asa_addresses_after_a_slash_match_and_versions_do_not() {
    run_table(
        "ipv4 after word/",
        &[
            (None, "1.2.3.4"),
            (None, "4.0.222.12"),
            (None, "10.0.19.41"),
        ],
        &[
            (
                "1286536309.450    250 192.168.0.68 TCP_MISS/200 3495 GET http://www.example.com/ - HIER_DIRECT/1.2.3.4 text/html",
                &["1.2.3.4"],
            ),
            (
                "1286536309.450      0 192.168.0.68 TCP_TUNNEL/200 0 CONNECT x.example:443 - ORIGINAL_DST/1.2.3.4 -",
                &["1.2.3.4"],
            ),
            ("1186536309.450 1 10.0.0.2 TCP_MISS/200 10 GET http://a.example/ - DIRECT/1.2.3.4 text/html", &["1.2.3.4"]),
            (
                "%ASA-4-106100: access-list outside_in denied tcp outside/1.2.3.4(54321) -> inside/10.9.9.9(443) hit-cnt 1 first hit [0x0, 0x0]",
                &["1.2.3.4"],
            ),
            ("Mozilla/5.0 (X11) AppleWebKit/532.2 Chrome/4.0.222.12 Safari/532.2", &[]),
            ("Opera/9.80 OPR/4.0.222.12", &[]),
            (r#"{"FileVersion":"10.0.19.41","ProductVersion": "4.0.222.12"}"#, &[]),
            ("FileVersion: 10.0.19.41 Description: x", &[]),
            ("agent version=10.0.19.41 started", &[]),
            ("peer 10.0.19.41 connected", &["10.0.19.41"]),
            ("GET http://mirror.example/pub/1.2.3.4/file", &["1.2.3.4"]),
        ],
    );
}

#[test]
fn ipv6_after_a_key_and_colon_matches() {
    run_table(
        "ipv6 after letters:",
        &[(None, "2a02:db8::1"), (None, "2a02:db8::2")],
        &[
            (
                "Mar  1 10:00:00 mx postfix/smtpd[123]: connect from unknown[IPv6:2a02:db8::1]",
                &["2a02:db8::1"],
            ),
            (
                "eth0 inet6 addr:2a02:db8::1/64 Scope:Global",
                &["2a02:db8::1"],
            ),
            (
                "example.com. TXT \"v=spf1 ip6:2a02:db8::1 -all\"",
                &["2a02:db8::1"],
            ),
            (
                "src_ip:2a02:db8::1 dst_ip:2a02:db8::2",
                &["2a02:db8::1", "2a02:db8::2"],
            ),
            ("key:2a02:db8::1x", &[]),
            ("at 10:05:03.120 ok", &[]),
        ],
    );
}

#[test]
fn email_after_equals_or_in_quotes_matches() {
    run_table(
        "e-mail after = or in quotes",
        &[(None, "bad@evil.example"), (None, "o'brien@x.example")],
        &[
            (
                "postfix/qmgr[1]: 4A3: from=bad@evil.example, size=1",
                &["bad@evil.example"],
            ),
            (
                "auth failed user=BAD@EVIL.EXAMPLE, rip=1",
                &["bad@evil.example"],
            ),
            ("login failed for 'bad@evil.example'", &["bad@evil.example"]),
            ("from=<bad@evil.example>", &["bad@evil.example"]),
            ("from=o'brien@x.example", &["o'brien@x.example"]),
            ("to=notbad@evil.example", &[]),
        ],
    );
}

#[test]
fn utf8_bytes_are_not_label_boundaries_and_idns_match_their_punycode() {
    run_table(
        "unicode hosts",
        &[
            (Some(Kind::Domain), "cher.example"),
            (Some(Kind::Domain), "münchen.example"),
        ],
        &[
            ("GET http://bücher.example/ HTTP/1.1", &[]),
            ("query bücher.example A", &[]),
            ("query münchen.example A", &["xn--mnchen-3ya.example"]),
            ("query www.MÜNCHEN.example A", &["xn--mnchen-3ya.example"]),
            (
                "query xn--mnchen-3ya.example A",
                &["xn--mnchen-3ya.example"],
            ),
            ("visit «cher.example» now", &["cher.example"]),
            ("visit é.cher.example", &["cher.example"]),
        ],
    );
}

#[test]
fn escaped_json_inside_a_syslog_message_is_unescaped() {
    run_table(
        "escaped JSON in messages",
        &[(None, "http://host.example/gate.php")],
        &[
            (
                r#"<13>Mar  1 10:00:00 h app: {"url":"http:\/\/host.example\/gate.php"}"#,
                &["host.example/gate.php"],
            ),
            (
                r#"[{"u":"http:\/\/host.example\/gate.php"}]"#,
                &["host.example/gate.php"],
            ),
            (r#"app: {"url":"http:\/\/host.example\/gate.php2"}"#, &[]),
            (
                r#"{"MESSAGE":"{\"url\":\"http:\\/\\/host.example\\/gate.php\"}"}"#,
                &["host.example/gate.php"],
            ),
            (
                // journalctl -o json: "GET http://host.example/gate.php" as byte values.
                r#"{"MESSAGE":[71,69,84,32,104,116,116,112,58,47,47,104,111,115,116,46,101,120,97,109,112,108,101,47,103,97,116,101,46,112,104,112],"_PID":"1"}"#,
                &["host.example/gate.php"],
            ),
        ],
    );
}

#[test]
fn url_edge_cases_query_parameters_ports_session_ids_trailing_dots() {
    run_table(
        "url edge cases",
        &[
            (None, "http://evil.example/p?a=1&b=2&c=3&d=4&e=5&f=6&g=7"),
            (None, "http://evil.example/gate.php"),
            (None, "http://evil.example/x.jsp"),
            (None, "http://other.example:80/a"),
            (None, "https://tls.example:443/b"),
        ],
        &[
            (
                "GET http://evil.example/p?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8 HTTP/1.1",
                &["evil.example/p?a=1&b=2&c=3&d=4&e=5&f=6&g=7"],
            ),
            (
                "GET http://evil.example:80/gate.php",
                &["evil.example/gate.php"],
            ),
            // The scheme is not part of a URL indicator: https with its default port is
            // the same resource path.
            (
                "GET https://evil.example:443/gate.php",
                &["evil.example/gate.php"],
            ),
            ("GET http://evil.example:8080/gate.php", &[]),
            (
                "GET http://evil.example./gate.php",
                &["evil.example/gate.php"],
            ),
            (
                "GET http://evil.example/x.jsp;jsessionid=0A1B2C?y=1",
                &["evil.example/x.jsp"],
            ),
            ("GET http://other.example/a", &["other.example/a"]),
            ("GET https://tls.example/b", &["tls.example/b"]),
            ("GET https://tls.example:443/b", &["tls.example/b"]),
        ],
    );
}

/// The atomics the matcher reports for `line`.
fn atomics(index: &Index, line: &str) -> BTreeSet<String> {
    let mut m = Matcher::new(index);
    let mut hits = Vec::new();
    m.find_with_json(line.as_bytes(), &mut hits);
    hits.into_iter().map(|h| h.atomic).collect()
}

#[test]
fn url_atomic_has_no_trailing_comma() {
    let index = index_of(
        &[
            (None, "http://evil.example/gate.php"),
            (None, "http://evil.example/a)"),
        ],
        &Warninglists::new(),
    );
    let cases: &[(&str, &str)] = &[
        (
            "see http://evil.example/gate.php, then",
            "http://evil.example/gate.php",
        ),
        (
            "(see http://evil.example/gate.php?x=1).",
            "http://evil.example/gate.php?x=1",
        ),
        ("at evil.example/gate.php;", "evil.example/gate.php"),
        ("link http://evil.example/a), ok", "http://evil.example/a)"),
    ];
    for (line, want) in cases {
        let got = atomics(&index, line);
        assert!(got.contains(*want), "{line:?}: want {want:?}, got {got:?}");
    }
}

#[test]
fn tcpdump_addresses_with_ports_match() {
    run_table(
        "tcpdump",
        &[(None, "1.2.3.4"), (None, "2001:db8::5")],
        &[
            (
                "10:00:00.000000 IP 1.2.3.4.443 > 10.0.0.8.51234: Flags [S], seq 1, length 0",
                &["1.2.3.4"],
            ),
            (
                "10:00:00.000001 IP 10.0.0.8.51234 > 1.2.3.4.443: Flags [.], ack 1",
                &["1.2.3.4"],
            ),
            (
                "10:00:00.000002 IP6 2001:db8::5.443 > 2001:db8::9.5555: Flags [S]",
                &["2001:db8::5"],
            ),
            ("build 1.2.3.4.5 released", &[]),
            (
                "10:00:00.000003 IP 11.2.3.4.443 > 10.0.0.8.1: Flags [S]",
                &[],
            ),
        ],
    );
}

#[test]
fn windows_dns_debug_wire_names_match() {
    run_table(
        "windows dns debug",
        &[(Some(Kind::Domain), "evil.example")],
        &[
            (
                "6/10/2019 1:02:03 PM 0E40 PACKET  0000020D7B7D1F70 UDP Rcv 10.0.0.5        d2a4   Q [0001   D   NOERROR] A      (3)www(4)evil(7)example(0)",
                &["evil.example"],
            ),
            ("UDP Rcv 10.0.0.5 d2a4 Q [0001 D NOERROR] A (4)EVIL(7)example(0)", &["evil.example"]),
            ("UDP Rcv 10.0.0.5 d2a4 Q [0001 D NOERROR] A (3)www(7)notevil(7)example(0)", &[]),
            ("UDP Rcv 10.0.0.5 d2a4 Q [0001 D NOERROR] A (3)www(4)evil(9)example(0)", &[]),
        ],
    );
    let index = index_of(
        &[(Some(Kind::Domain), "evil.example")],
        &Warninglists::new(),
    );
    let got = atomics(&index, "A (3)www(4)evil(7)example(0)");
    assert_eq!(got, BTreeSet::from(["www.evil.example".to_string()]));
}

#[test]
fn url_split_over_fields_matches() {
    run_table(
        "url split over fields",
        &[(None, "http://evil.example/gate.php")],
        &[
            (
                "1331901000.000000\tCUmrqr\t192.168.1.1\t5555\t10.1.1.1\t80\t1\tGET\tevil.example\t/gate.php\t-\t1.1\tMozilla/5.0",
                &["evil.example/gate.php"],
            ),
            (
                r#"{"timestamp":"2024-05-01T10:00:00.000000+0000","event_type":"http","http":{"hostname":"evil.example","url":"/gate.php","http_user_agent":"x"}}"#,
                &["evil.example/gate.php"],
            ),
            (r#"{"ts":1.0,"host":"evil.example","uri":"/gate.php?id=1"}"#, &["evil.example/gate.php"]),
            (r#"{"hostname":"evil.example","url":"/other.php"}"#, &[]),
            (
                r#"date=2019-05-13 time=16:29:45 type="utm" subtype="webfilter" hostname="evil.example" profile="p" url="/gate.php?id=1" sentbyte=84"#,
                &["evil.example/gate.php"],
            ),
            (r#"hostname="evil.example" requrl="/gate.php""#, &[]),
            ("1331901000.0\tC1\tGET\tevil.example\t/gate.php2\t-", &[]),
        ],
    );
}

#[test]
fn a_huge_dotted_token_is_matched_on_its_last_253_bytes() {
    let index = index_of(
        &[
            (Some(Kind::Domain), "evil.example"),
            (Some(Kind::Hostname), "a.evil.example"),
        ],
        &Warninglists::new(),
    );
    let line = format!("{}evil.example", "a.".repeat(512 * 1024));
    let got = found(&index, &line);
    assert_eq!(got, BTreeSet::from(["evil.example".to_string()]));
    // The same in UTF-8 labels: converted to punycode on its last labels only.
    let index = index_of(
        &[(Some(Kind::Domain), "münchen.example")],
        &Warninglists::new(),
    );
    let line = format!("{}münchen.example", "ü.".repeat(300 * 1024));
    let got = found(&index, &line);
    assert_eq!(got, BTreeSet::from(["xn--mnchen-3ya.example".to_string()]));
}

#[test]
fn query_hosts_and_ip_port_switches() {
    use tripline::index::{IpPortMatch, MatchOptions};
    let mut index = index_of(
        &[(Some(Kind::Domain), "evil.example"), (None, "1.2.3.4:443")],
        &Warninglists::new(),
    );
    let line_q = "GET http://good.example/redirect?u=evil.example HTTP/1.1";
    let line_host = "Host: evil.example";
    let ports = [
        ("dst 1.2.3.4:443", true),
        ("dst 1.2.3.4:80", false),
        ("dst 1.2.3.4 ok", false),
        ("outside/1.2.3.4(443)", true),
        ("IP 10.0.0.1.5 > 1.2.3.4.443: Flags", true),
    ];
    // Defaults: hosts in query strings match; the port is context only.
    assert_eq!(found(&index, line_q).len(), 1);
    for (line, _) in ports {
        assert_eq!(found(&index, line).len(), 1, "{line}");
    }
    index.set_match_options(MatchOptions {
        query_hosts: false,
        ip_port: IpPortMatch::Exact,
    });
    assert!(found(&index, line_q).is_empty());
    assert_eq!(found(&index, line_host).len(), 1);
    for (line, want) in ports {
        assert_eq!(found(&index, line).len() == 1, want, "{line}");
    }
}

/// The switches reach the matcher from the command line (`hunt`) and from the
/// configuration (`[match]`, read by `run`, `feedback`).
#[test]
fn match_switches_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let intel = dir.path().join("iocs.txt");
    std::fs::write(&intel, "evil.example\n1.2.3.4:443\n").unwrap();
    let log = dir.path().join("a.log");
    std::fs::write(
        &log,
        "GET http://good.example/r?u=evil.example HTTP/1.1\nconn 1.2.3.4:80\nconn 1.2.3.4:443\n",
    )
    .unwrap();
    let count = |extra: &[&str]| -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tripline"))
            .args(["hunt", "-q", "-c", "--no-default-warninglists", "--intel"])
            .arg(&intel)
            .args(extra)
            .arg(&log)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(count(&[]), "3");
    assert_eq!(count(&["--no-query-hosts"]), "2");
    assert_eq!(count(&["--ip-port", "exact"]), "2");
    assert_eq!(count(&["--no-query-hosts", "--ip-port", "exact"]), "1");
}

/// File names of word bytes are found by the word scan, others by the automaton:
/// both with the same whole-path-component semantics.
#[test]
fn file_names_found_by_the_word_scan_and_the_automaton_alike() {
    run_table(
        "file names",
        &[
            (Some(Kind::Filename), "dropper.dll"),
            (Some(Kind::Filename), "invoic~1.exe"),
        ],
        &[
            ("load C:\\x\\Dropper.DLL", &["dropper.dll"]),
            ("open \"/tmp/dropper.dll\": ok", &["dropper.dll"]),
            ("load x.dropper.dll", &[]),
            ("load dropper.dll~ and $dropper.dll", &[]),
            ("load dropper.dll.bak", &[]),
            ("load my_dropper.dll", &[]),
            ("run C:\\Users\\a\\INVOIC~1.EXE", &["invoic~1.exe"]),
            ("run C:\\Users\\a\\XINVOIC~1.EXE", &[]),
        ],
    );
}
