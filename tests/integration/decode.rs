//! Decoding real and hand-written log lines: format, time, host, app, addresses, and
//! that a value found by byte search maps to the right field and direction. Lines come
//! from `fixtures/logs/` (Apache, Zeek TSV with headers, Zeek syslog with RFC 5424 and
//! `@cee` JSON, the core engine's traps) or are written here after the vendors'
//! documented layouts (Suricata EVE, Zeek JSON, ECS, CEF, UFW, RFC 3164, Cisco ASA,
//! FortiGate, Snare). The event's time comes from the format's own time field only:
//! one table row per rule, with the evasions that once set an alert's time from text
//! inside a message. Garbage, invalid UTF-8, huge values, truncated and randomly
//! mutated lines must never panic.

use std::net::IpAddr;
use std::sync::OnceLock;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use tripline::decode::time::parse_value;
use tripline::decode::{DecodeOptions, Decoder, Event, Format, Role, Zone};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/logs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn rfc3339(ev: &Event) -> Option<String> {
    ev.time
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// The span of the first occurrence of `needle` in `line`, from byte `from` on.
fn span_of(line: &[u8], needle: &str, from: usize) -> (usize, usize) {
    let i = memchr::memmem::find(&line[from..], needle.as_bytes())
        .unwrap_or_else(|| panic!("{needle:?} not in {}", String::from_utf8_lossy(line)));
    (from + i, from + i + needle.len())
}

/// The field and role holding the first occurrence of `needle`.
fn at(ev: &Event, line: &[u8], needle: &str) -> Option<(String, Role)> {
    at_from(ev, line, needle, 0)
}

fn at_from(ev: &Event, line: &[u8], needle: &str, from: usize) -> Option<(String, Role)> {
    let f = ev.field_at(span_of(line, needle, from))?;
    Some((f.name.clone(), f.role))
}

fn named(name: &str, role: Role) -> Option<(String, Role)> {
    Some((name.to_string(), role))
}

/// Every field lies inside the line and maps back to itself.
fn check_spans(ev: &Event, line: &[u8]) {
    for f in &ev.fields {
        assert!(
            f.span.0 <= f.span.1 && f.span.1 <= line.len(),
            "{f:?} out of {} bytes",
            line.len()
        );
        let inner = ev.field_at(f.span).expect("a field holds its own span");
        assert!(inner.contains(f.span));
    }
}

#[test]
fn apache_access_log() {
    let data = fixture("apache_access.log");
    let mut d = Decoder::default();
    let mut n = 0;
    for line in lines(&data) {
        let ev = d.decode(line, now());
        assert_eq!(
            ev.format,
            Format::Apache,
            "{}",
            String::from_utf8_lossy(line)
        );
        // The time is the bracketed one.
        let open = memchr::memchr(b'[', line).unwrap() + 1;
        let close = open + memchr::memchr(b']', &line[open..]).unwrap();
        let bracket = parse_value(&line[open..close], &Zone::utc(), now());
        assert!(bracket.is_some());
        assert_eq!(ev.time, bracket, "{}", String::from_utf8_lossy(line));
        check_spans(&ev, line);
        n += 1;
    }
    assert_eq!(n, 10_000);

    let line = lines(&data).next().unwrap();
    let ev = d.decode(line, now());
    assert_eq!(rfc3339(&ev).as_deref(), Some("2015-05-17T10:05:03Z"));
    assert_eq!(ev.source_ip, ip("83.149.9.216"));
    assert_eq!(ev.destination_ip, None);
    assert_eq!((ev.host.as_deref(), ev.app.as_deref()), (None, None));
    assert_eq!(
        at(&ev, line, "83.149.9.216"),
        named("source.address", Role::Source)
    );
    assert_eq!(
        at(&ev, line, "kibana-search.png"),
        named("url.original", Role::Other)
    );
    assert_eq!(
        at(&ev, line, "semicomplete.com"),
        named("http.request.referrer", Role::Other)
    );
    assert_eq!(
        at(&ev, line, "Chrome/32.0.1700.77"),
        named("user_agent.original", Role::Other)
    );
    assert_eq!(at(&ev, line, "203023"), None);
}

#[test]
fn zeek_dns_tsv_with_header() {
    let data = fixture("zeek_dns.log");
    let mut d = Decoder::default();
    let mut rows = 0;
    for line in lines(&data) {
        let ev = d.decode(line, now());
        assert_eq!(ev.format, Format::ZeekTsv);
        check_spans(&ev, line);
        if line.starts_with(b"#") {
            assert!(ev.fields.is_empty() && ev.time.is_none());
            continue;
        }
        rows += 1;
        let ts = ev.field("ts").unwrap().value(line);
        assert!(ev.time.is_some());
        assert_eq!(ev.time, parse_value(ts, &Zone::utc(), now()), "zeek ts");
        assert!(ev.source_ip.is_some() && ev.destination_ip.is_some());
    }
    assert_eq!(rows, 3000 - 8);

    let line = lines(&data).nth(12).unwrap();
    assert!(line.starts_with(b"1521911720.865939\t"));
    let ev = d.decode(line, now());
    assert_eq!(rfc3339(&ev).as_deref(), Some("2018-03-24T17:15:20.865939Z"));
    assert_eq!(ev.source_ip, ip("10.47.1.100"));
    assert_eq!(ev.destination_ip, ip("10.0.0.100"));
    assert_eq!(ev.host, None);
    assert_eq!(
        at(&ev, line, "10.47.1.100"),
        named("id.orig_h", Role::Source)
    );
    assert_eq!(
        at(&ev, line, "10.0.0.100"),
        named("id.resp_h", Role::Destination)
    );
    assert_eq!(at(&ev, line, "ise.wrccdc.org"), named("query", Role::Other));
    assert_eq!(
        at(&ev, line, "2620:df:8000:1601:0:1:3:16"),
        named("answers", Role::Other)
    );
    assert_eq!(
        ev.field("qtype_name").unwrap().value(line),
        b"AAAA",
        "columns line up with #fields"
    );
    // `rejected` is the last column: the line ends at its value.
    assert_eq!(ev.field("rejected").unwrap().span.1, line.len());
}

#[test]
fn zeek_row_without_its_header_is_not_zeek() {
    let data = fixture("zeek_dns.log");
    let row = lines(&data).nth(8).unwrap();
    let ev = Decoder::default().decode(row, now());
    assert_eq!(ev.format, Format::Plain);
    // The epoch starting the line is its time.
    assert_eq!(rfc3339(&ev).as_deref(), Some("2018-03-24T17:15:20.865716Z"));

    // `observe` on lines that were not decoded is enough to learn the header.
    let mut d = Decoder::default();
    for l in lines(&data).take(8) {
        assert!(d.observe(l));
    }
    assert!(!d.observe(row));
    assert_eq!(d.decode(row, now()).format, Format::ZeekTsv);
}

#[test]
fn zeek_ssl_server_name_is_destination() {
    let data = fixture("zeek_ssl.log");
    let mut d = Decoder::default();
    let mut sni = 0;
    for line in lines(&data) {
        let ev = d.decode(line, now());
        assert_eq!(ev.format, Format::ZeekTsv);
        check_spans(&ev, line);
        if let Some(f) = ev.field("server_name") {
            assert_eq!(f.role, Role::Destination);
            sni += 1;
        }
    }
    assert!(sni > 0);
    let line = lines(&data)
        .find(|l| l.starts_with(b"1521911720.873410"))
        .unwrap();
    let ev = d.decode(line, now());
    assert_eq!(
        at(&ev, line, "ise.wrccdc.org"),
        named("server_name", Role::Destination)
    );
    assert_eq!(
        at(&ev, line, "134.71.3.16"),
        named("id.resp_h", Role::Destination)
    );
    assert_eq!(ev.field("curve"), None, "unset `-` gives no field");
}

#[test]
fn zeek_syslog_with_rfc5424_and_cee_json() {
    let data = fixture("zeek_syslog.log");
    let mut d = Decoder::default();
    for line in lines(&data) {
        let ev = d.decode(line, now());
        assert_eq!(ev.format, Format::ZeekTsv);
        check_spans(&ev, line);
        if !line.starts_with(b"#") {
            assert!(ev.host.is_some(), "{}", String::from_utf8_lossy(line));
            assert_eq!(ev.app.as_deref(), Some("EvntSLog"));
        }
    }
    let line = lines(&data).nth(8).unwrap();
    let ev = d.decode(line, now());
    // Zeek's own `ts` wins over the syslog header's 2018-03-24T08:59:37-07:00.
    assert_eq!(rfc3339(&ev).as_deref(), Some("2018-03-24T17:15:47.733658Z"));
    assert_eq!(ev.host.as_deref(), Some("PC-helen.jerry.land"));
    assert_eq!(ev.source_ip, ip("10.47.22.82"));
    assert_eq!(ev.destination_ip, ip("10.47.2.153"));
    let msg_col = ev.field("message").unwrap().span;
    assert!(line[msg_col.0..].starts_with(b"1 2018-03-24T08:59:37-07:00"));
    // Inside the message: the JSON fields, innermost first.
    assert_eq!(
        at(&ev, line, "Multimedia Class Scheduler service"),
        named("msg", Role::Other)
    );
    assert_eq!(
        at(&ev, line, "Service Control Manager"),
        named("sourceproc", Role::Other)
    );
    let user = ev.field("user").unwrap();
    assert_eq!(user.value(line), br"N\\\\A", "escaped text, as written");
    // The header's host is in the message column, not in a JSON field.
    assert_eq!(
        at(&ev, line, "PC-helen.jerry.land"),
        named("message", Role::Other)
    );
    let json_source = span_of(line, "\"source\": \"", 0).1;
    assert_eq!(
        at_from(&ev, line, "PC-helen.jerry.land", json_source),
        named("source", Role::Other)
    );
    assert_eq!(at(&ev, line, "LOCAL0"), named("facility", Role::Other));
}

#[test]
fn suricata_eve_alert() {
    let line = br#"{"timestamp":"2017-04-07T22:24:37.251547+0100","flow_id":586497171462735,"pcap_cnt":53381,"event_type":"alert","src_ip":"192.168.2.14","src_port":50096,"dest_ip":"209.53.113.5","dest_port":80,"proto":"TCP","tx_id":0,"alert":{"action":"allowed","gid":1,"signature_id":2024897,"rev":1,"signature":"ET USER_AGENTS Go HTTP Client User-Agent","category":"","severity":3},"http":{"hostname":"api.icndb.com","url":"\/jokes\/random?firstName=Chuck&lastName=Norris","http_user_agent":"Go-http-client\/1.1","http_method":"GET","protocol":"HTTP\/1.1","length":0},"app_proto":"http","flow":{"pkts_toserver":4,"pkts_toclient":3,"bytes_toserver":347,"bytes_toclient":1024,"start":"2017-04-07T22:24:37.077425+0100"},"host":"suricata-sensor-1"}"#;
    let ev = Decoder::default().decode(line, now());
    assert_eq!(ev.format, Format::Json);
    assert_eq!(rfc3339(&ev).as_deref(), Some("2017-04-07T21:24:37.251547Z"));
    assert_eq!(ev.host.as_deref(), Some("suricata-sensor-1"));
    assert_eq!(ev.source_ip, ip("192.168.2.14"));
    assert_eq!(ev.destination_ip, ip("209.53.113.5"));
    assert_eq!(at(&ev, line, "192.168.2.14"), named("src_ip", Role::Source));
    assert_eq!(
        at(&ev, line, "209.53.113.5"),
        named("dest_ip", Role::Destination)
    );
    assert_eq!(
        at(&ev, line, "api.icndb.com"),
        named("http.hostname", Role::Destination)
    );
    // Escaped text: the span covers the raw `\/`.
    assert_eq!(
        at(&ev, line, r"\/jokes\/random"),
        named("http.url", Role::Other)
    );
    assert_eq!(
        at(&ev, line, "2024897"),
        named("alert.signature_id", Role::Other)
    );
    check_spans(&ev, line);
}

#[test]
fn suricata_eve_dns_and_tls() {
    let dns = br#"{"timestamp":"2024-03-01T10:00:00.000000+0000","event_type":"dns","src_ip":"10.1.1.5","src_port":53211,"dest_ip":"10.1.1.1","dest_port":53,"proto":"UDP","dns":{"type":"query","id":1,"rrname":"evil.example.com","rrtype":"A","tx_id":0}}"#;
    let ev = Decoder::default().decode(dns, now());
    assert_eq!(
        at(&ev, dns, "evil.example.com"),
        named("dns.rrname", Role::Other)
    );
    assert_eq!(rfc3339(&ev).as_deref(), Some("2024-03-01T10:00:00Z"));

    let tls = br#"{"timestamp":"2024-03-01T10:00:01.5+0000","event_type":"tls","src_ip":"2001:db8::5","src_port":40000,"dest_ip":"2001:db8::443","dest_port":443,"proto":"TCP","tls":{"subject":"CN=c2.example.net","sni":"c2.example.net","version":"TLS 1.3"}}"#;
    let ev = Decoder::default().decode(tls, now());
    assert_eq!(ev.source_ip, ip("2001:db8::5"));
    assert_eq!(ev.destination_ip, ip("2001:db8::443"));
    let sni = span_of(tls, "\"sni\":\"", 0).1;
    assert_eq!(
        at_from(&ev, tls, "c2.example.net", sni),
        named("tls.sni", Role::Destination)
    );
    assert_eq!(
        at(&ev, tls, "c2.example.net"),
        named("tls.subject", Role::Other)
    );
}

#[test]
fn zeek_json_conn() {
    let line = br#"{"_path":"conn","ts":1521911721.107495,"uid":"CBkMNX3IGlSaTzK2f4","id.orig_h":"10.47.7.154","id.orig_p":56132,"id.resp_h":"104.16.25.88","id.resp_p":443,"proto":"tcp","service":"ssl","duration":0.2,"conn_state":"SF"}"#;
    let ev = Decoder::default().decode(line, now());
    assert_eq!(ev.format, Format::Json);
    assert_eq!(rfc3339(&ev).as_deref(), Some("2018-03-24T17:15:21.107495Z"));
    assert_eq!(ev.source_ip, ip("10.47.7.154"));
    assert_eq!(ev.destination_ip, ip("104.16.25.88"));
    assert_eq!(
        at(&ev, line, "104.16.25.88"),
        named("id.resp_h", Role::Destination)
    );
    // Nested Zeek JSON (`"id":{"orig_h":...}`) gives the same names.
    let nested = br#"{"ts":"2018-03-24T17:15:21.107495Z","uid":"C1","id":{"orig_h":"10.0.0.1","orig_p":1,"resp_h":"10.0.0.2","resp_p":2}}"#;
    let ev = Decoder::default().decode(nested, now());
    assert_eq!(rfc3339(&ev).as_deref(), Some("2018-03-24T17:15:21.107495Z"));
    assert_eq!(
        at(&ev, nested, "10.0.0.2"),
        named("id.resp_h", Role::Destination)
    );
    assert_eq!(ev.source_ip, ip("10.0.0.1"));
}

#[test]
fn ecs_document() {
    let line = br#"{"@timestamp":"2024-05-01T08:30:00.000Z","event":{"kind":"event","category":["network"]},"host":{"name":"web-01","ip":["10.0.0.9"]},"source":{"ip":"198.51.100.20","port":51515},"destination":{"ip":"10.0.0.9","port":443,"domain":"shop.example.org"},"url":{"original":"https://shop.example.org/login?next=%2F"},"user_agent":{"original":"curl/8.0"}}"#;
    let ev = Decoder::default().decode(line, now());
    assert_eq!(ev.format, Format::Json);
    assert_eq!(rfc3339(&ev).as_deref(), Some("2024-05-01T08:30:00Z"));
    assert_eq!(ev.host.as_deref(), Some("web-01"));
    assert_eq!(ev.source_ip, ip("198.51.100.20"));
    assert_eq!(ev.destination_ip, ip("10.0.0.9"));
    assert_eq!(
        at(&ev, line, "198.51.100.20"),
        named("source.ip", Role::Source)
    );
    let dest = span_of(line, "\"destination\"", 0).1;
    assert_eq!(
        at_from(&ev, line, "10.0.0.9", dest),
        named("destination.ip", Role::Destination)
    );
    assert_eq!(at(&ev, line, "10.0.0.9"), named("host.ip", Role::Other));
    assert_eq!(
        at(&ev, line, "https://shop.example.org/login"),
        named("url.original", Role::Other)
    );
    assert_eq!(
        at(&ev, line, "shop.example.org"),
        named("destination.domain", Role::Destination)
    );
}

#[test]
fn cef_over_rfc3164_syslog() {
    let line = br"<134>Nov 24 14:02:11 fw-edge-2 CEF:0|Check Point|VPN-1 & FireWall-1|R81|Drop|Drop|5|act=Drop src=203.0.113.66 spt=61000 dst=10.20.0.8 dpt=3389 proto=TCP shost=scanner.bad.example suser=EXT\\mallory msg=Connection dropped by rule 7";
    let ev = Decoder::default().decode(line, now());
    assert_eq!(ev.format, Format::Syslog3164);
    assert_eq!(rfc3339(&ev).as_deref(), Some("2026-11-24T14:02:11Z"));
    assert_eq!(ev.host.as_deref(), Some("fw-edge-2"));
    assert_eq!(ev.app, None);
    assert_eq!(ev.source_ip, ip("203.0.113.66"));
    assert_eq!(ev.destination_ip, ip("10.20.0.8"));
    assert_eq!(
        at(&ev, line, "Check Point"),
        named("deviceVendor", Role::Other)
    );
    assert_eq!(at(&ev, line, "203.0.113.66"), named("src", Role::Source));
    assert_eq!(at(&ev, line, "10.20.0.8"), named("dst", Role::Destination));
    assert_eq!(
        at(&ev, line, "scanner.bad.example"),
        named("shost", Role::Source)
    );
    assert_eq!(at(&ev, line, "mallory"), named("suser", Role::Source));
    assert_eq!(at(&ev, line, "dropped by rule"), named("msg", Role::Other));

    // CEF alone is key=value.
    let bare = br"CEF:0|Vendor|Product|1.0|100|Outbound to C2|9|src=10.0.0.5 dst=198.51.100.99 dhost=c2.bad.example";
    let ev = Decoder::default().decode(bare, now());
    assert_eq!(ev.format, Format::KeyValue);
    assert_eq!(
        at(&ev, bare, "c2.bad.example"),
        named("dhost", Role::Destination)
    );
    assert_eq!(ev.destination_ip, ip("198.51.100.99"));
}

/// BIND 9's query log (`print-time yes`, its default layout, as ARM's logging
/// chapter documents it): the line's own time, not the time of reading. Before, no
/// layout read `07-Dec-2026 01:02:03.456` and BIND lines were dated when read, in
/// `hunt` and the sidecar alike (and the retro store recorded that time).
#[test]
fn bind_query_log_alerts_carry_the_line_time() {
    let line = b"07-Dec-2026 01:02:03.456 queries: info: client @0x7f55f98a587 10.185.159.184#43052 (mint67.de): query: mint67.de IN A +E(0)K (10.0.0.53)";
    let ev = Decoder::default().decode(line, now());
    assert_eq!(rfc3339(&ev).as_deref(), Some("2026-12-07T01:02:03.456Z"));
    assert_eq!(ev.host, None);
    let mut fast = Decoder::default();
    let th = fast.time_and_host(line, now());
    assert_eq!(th.time, ev.time.map(|t| t.timestamp()));
    assert_eq!(th.host, None);
    // In a zone: the stamp is local time.
    let opts = DecodeOptions {
        zone: Zone::parse("Europe/Berlin").unwrap(),
        ..DecodeOptions::default()
    };
    let ev = Decoder::new(opts).decode(line, now());
    assert_eq!(rfc3339(&ev).as_deref(), Some("2026-12-07T00:02:03.456Z"));
}

#[test]
fn ufw_kernel_line_rfc3164() {
    let line = b"Mar  4 08:59:37 gw kernel: [1234567.890123] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=185.220.101.4 DST=192.0.2.10 LEN=44 TOS=0x00 PREC=0x00 TTL=242 ID=54321 PROTO=TCP SPT=40000 DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0";
    let ev = Decoder::default().decode(line, now());
    assert_eq!(ev.format, Format::Syslog3164);
    assert_eq!(rfc3339(&ev).as_deref(), Some("2026-03-04T08:59:37Z"));
    assert_eq!(ev.host.as_deref(), Some("gw"));
    assert_eq!(ev.app.as_deref(), Some("kernel"));
    assert_eq!(ev.source_ip, ip("185.220.101.4"));
    assert_eq!(ev.destination_ip, ip("192.0.2.10"));
    assert_eq!(at(&ev, line, "185.220.101.4"), named("SRC", Role::Source));
    assert_eq!(at(&ev, line, "192.0.2.10"), named("DST", Role::Destination));
    assert_eq!(at(&ev, line, "40000"), named("SPT", Role::Source));
    assert_eq!(ev.field("OUT"), None);
}

#[test]
fn rfc3164_sshd_and_json_after_app() {
    let line = b"<38>Nov 24 08:59:37 bastion sshd[4242]: Failed password for root from 203.0.113.5 port 2222 ssh2";
    let ev = Decoder::default().decode(line, now());
    assert_eq!(ev.format, Format::Syslog3164);
    assert_eq!(ev.host.as_deref(), Some("bastion"));
    assert_eq!(ev.app.as_deref(), Some("sshd"));
    assert_eq!(rfc3339(&ev).as_deref(), Some("2026-11-24T08:59:37Z"));
    assert!(ev.fields.is_empty());
    assert_eq!(ev.direction_of(span_of(line, "203.0.113.5", 0)), None);

    let line = br#"Nov 24 08:59:37 ids1 suricata[77]: {"timestamp":"2026-11-24T08:59:36.5+0000","src_ip":"10.0.0.1","dest_ip":"192.0.2.1","host":"other"}"#;
    let ev = Decoder::default().decode(line, now());
    assert_eq!(ev.format, Format::Syslog3164);
    assert_eq!(ev.host.as_deref(), Some("ids1"), "the syslog host wins");
    assert_eq!(ev.app.as_deref(), Some("suricata"));
    assert_eq!(rfc3339(&ev).as_deref(), Some("2026-11-24T08:59:37Z"));
    assert_eq!(
        at(&ev, line, "192.0.2.1"),
        named("dest_ip", Role::Destination)
    );
}

#[test]
fn rfc5424_with_structured_data() {
    let line = br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" src="192.0.2.77"] An application event log entry"#;
    let ev = Decoder::default().decode(line, now());
    assert_eq!(ev.format, Format::Syslog5424);
    assert_eq!(rfc3339(&ev).as_deref(), Some("2003-10-11T22:14:15.003Z"));
    assert_eq!(ev.host.as_deref(), Some("mymachine.example.com"));
    assert_eq!(ev.app.as_deref(), Some("evntslog"));
    assert_eq!(at(&ev, line, "192.0.2.77"), named("src", Role::Source));
    assert_eq!(ev.source_ip, ip("192.0.2.77"));
}

#[test]
fn traps_log() {
    let data = fixture("traps.log");
    let mut d = Decoder::default();
    let all: Vec<&[u8]> = lines(&data).collect();
    for line in &all {
        let ev = d.decode(line, now());
        check_spans(&ev, line);
        assert!(ev.time.is_some(), "{}", String::from_utf8_lossy(line));
    }
    let first = all[0];
    let ev = d.decode(first, now());
    assert_eq!(ev.format, Format::Syslog3164);
    assert_eq!(ev.host.as_deref(), Some("fw01"));
    assert_eq!(rfc3339(&ev).as_deref(), Some("2024-05-01T10:00:00Z"));
    assert_eq!(at(&ev, first, "91.198.51.77"), named("src", Role::Source));
    assert_eq!(
        at(&ev, first, "192.168.1.5"),
        named("dst", Role::Destination)
    );
    assert_eq!(
        (ev.source_ip, ev.destination_ip),
        (ip("91.198.51.77"), ip("192.168.1.5"))
    );

    let proxy = all[6];
    let ev = d.decode(proxy, now());
    assert_eq!(ev.host.as_deref(), Some("proxy01"));
    assert_eq!(at(&ev, proxy, "10.1.1.1"), named("client", Role::Source));
    assert_eq!(at(&ev, proxy, "185.100.87.12"), named("ua", Role::Other));

    let json = all.iter().find(|l| l.starts_with(b"{")).unwrap();
    let ev = d.decode(json, now());
    assert_eq!(ev.format, Format::Json);
    assert_eq!(
        at(&ev, json, "gate.trap-c2.net"),
        named("http.url", Role::Other)
    );

    let garbage = all
        .iter()
        .find(|l| std::str::from_utf8(l).is_err())
        .unwrap();
    let ev = d.decode(garbage, now());
    assert_eq!(ev.host.as_deref(), Some("fw01"));
    assert_eq!(at(&ev, garbage, "91.198.51.77"), named("src", Role::Source));
}

#[test]
fn firewall_kv_without_header() {
    let line = br#"date=2024-05-01 time=10:00:00 devname="FGT 60F" type="traffic" srcip=10.0.0.7 srcport=51000 dstip=93.184.216.34 dstport=443 action="accept""#;
    let ev = Decoder::default().decode(line, now());
    assert_eq!(ev.format, Format::KeyValue);
    assert_eq!(rfc3339(&ev).as_deref(), Some("2024-05-01T10:00:00Z"));
    assert_eq!(ev.source_ip, ip("10.0.0.7"));
    assert_eq!(ev.destination_ip, ip("93.184.216.34"));
    assert_eq!(at(&ev, line, "FGT 60F"), named("devname", Role::Other));
    assert_eq!(
        at(&ev, line, "93.184.216.34"),
        named("dstip", Role::Destination)
    );
}

// ---------------------------------------------------------------------------------------
// The event's own time

/// The Apache line whose request once dated its alert 2019.
const APACHE_EVASION: &str = r#"127.0.0.1 - - [01/May/2024:10:00:01 +0000] "GET http://fresh-c2.example/beacon?d=2019-01-01T00:00:00 HTTP/1.1" 200 5"#;
/// The JSON line whose message once dated its alert 2023.
const JSON_EVASION: &str = r#"{"msg":"upload 2023-01-01 00:00:00","@timestamp":"2024-05-01T10:00:00Z","source":{"ip":"10.0.0.5"},"url":{"original":"http://fresh-c2.example/"}}"#;
/// The ECS document whose nested `file.ts` once dated its alert 2017.
const JSON_NESTED_TS: &str = r#"{"event":{"kind":"alert"},"file":{"ts":1500000000,"name":"dropper.exe"},"destination":{"domain":"fresh-c2.example"}}"#;
const SNARE: &str = "WINSRV01\tMSWinEventLog\t1\tSecurity\t1234\tMon Mar 04 10:00:01 2024\t4624\tMicrosoft-Windows-Security-Auditing\tCORP\\alice\tN/A\tSuccess Audit\tWINSRV01\tLogon\t\tAn account logged on at 2019-01-01T00:00:00Z from 203.0.113.9\t0";

fn decode_in(line: &str, zone: &str, reference: DateTime<Utc>) -> Event {
    let zone = Zone::parse(zone).unwrap();
    let mut d = Decoder::new(DecodeOptions {
        zone,
        ..DecodeOptions::default()
    });
    d.decode(line.as_bytes(), reference)
}

/// One row per rule of the module doc of `decode`: (what, line, zone, format, time).
/// Every line but those of the rules that read none holds a decoy time in its text.
#[test]
fn own_time_table() {
    use Format::*;
    let rows: &[(&str, &str, &str, Format, Option<&str>)] = &[
        (
            "RFC 3164 header",
            "<34>Nov 24 08:59:37 web01 sshd[411]: login at 2019-01-01T00:00:00Z from 203.0.113.5",
            "UTC",
            Syslog3164,
            Some("2026-11-24T08:59:37Z"),
        ),
        (
            "RFC 3164 header in the source's zone",
            "<34>Nov 24 08:59:37 web01 sshd[411]: login at 2019-01-01T00:00:00Z",
            "Europe/Berlin",
            Syslog3164,
            Some("2026-11-24T07:59:37Z"),
        ),
        (
            "RFC 5424 header, with its own zone",
            "<165>1 2024-05-01T10:00:00.5+02:00 h app - - - seen 2019-01-01T00:00:00Z",
            "America/New_York",
            Syslog5424,
            Some("2024-05-01T08:00:00.500Z"),
        ),
        (
            "RFC 5424 NILVALUE time: none, whatever the message says",
            "<13>1 - h app - - - seen 2019-01-01T00:00:00Z",
            "UTC",
            Syslog5424,
            None,
        ),
        (
            "rsyslog file layout",
            "2024-05-01T10:00:00Z fw01 action=block src=91.198.51.77 note=2019-01-01T00:00:00Z",
            "UTC",
            Syslog3164,
            Some("2024-05-01T10:00:00Z"),
        ),
        (
            "Apache bracket",
            APACHE_EVASION,
            "UTC",
            Apache,
            Some("2024-05-01T10:00:01Z"),
        ),
        (
            "Apache bracket, a date in the user agent",
            r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326 "http://x/?t=1500000000" "Mozilla/5.0 (2019-01-01 00:00:00)""#,
            "UTC",
            Apache,
            Some("2000-10-10T20:55:36Z"),
        ),
        (
            "JSON @timestamp after message text",
            JSON_EVASION,
            "UTC",
            Json,
            Some("2024-05-01T10:00:00Z"),
        ),
        (
            "JSON nested ts only: none",
            JSON_NESTED_TS,
            "UTC",
            Json,
            None,
        ),
        (
            "JSON top-level ts beside a nested one",
            r#"{"file":{"ts":1500000000},"ts":1521911720.5,"uid":"C1"}"#,
            "UTC",
            Json,
            Some("2018-03-24T17:15:20.500Z"),
        ),
        (
            "JSON time in an array: none",
            r#"{"timestamp":["2019-01-01T00:00:00Z"],"msg":"2019-01-01T00:00:00Z"}"#,
            "UTC",
            Json,
            None,
        ),
        (
            "JSON zoneless time in the source's zone",
            r#"{"time":"2024-07-01 12:00:00","msg":"x"}"#,
            "Europe/Berlin",
            Json,
            Some("2024-07-01T10:00:00Z"),
        ),
        (
            "JSON epoch milliseconds",
            r#"{"msg":"2019-01-01T00:00:00Z","timestamp":1709546400123}"#,
            "UTC",
            Json,
            Some("2024-03-04T10:00:00.123Z"),
        ),
        (
            "CEF rt in epoch milliseconds",
            "CEF:0|V|P|1|2|N|3|rt=1709546400123 src=10.0.0.5 msg=seen 2019-01-01T00:00:00Z",
            "UTC",
            KeyValue,
            Some("2024-03-04T10:00:00.123Z"),
        ),
        (
            "CEF rt as a date, zoneless",
            "CEF:0|V|P|1|2|N|3|rt=Mar 04 2024 10:00:00 src=10.0.0.5",
            "+02:00",
            KeyValue,
            Some("2024-03-04T08:00:00Z"),
        ),
        (
            "CEF rt as a date with its zone",
            "CEF:0|V|P|1|2|N|3|rt=Mar 04 2024 10:00:00.250 UTC src=10.0.0.5",
            "+02:00",
            KeyValue,
            Some("2024-03-04T10:00:00.250Z"),
        ),
        (
            "CEF: the first rt, not one in later text",
            "CEF:0|V|P|1|2|N|3|rt=1709546400000 msg=x rt=1500000000000",
            "UTC",
            KeyValue,
            Some("2024-03-04T10:00:00Z"),
        ),
        (
            "CEF without rt: none",
            "CEF:0|V|P|1|2|N|3|src=10.0.0.5 msg=at 2019-01-01T00:00:00Z",
            "UTC",
            KeyValue,
            None,
        ),
        (
            "FortiGate date + time + tz",
            r#"date=2024-05-01 time=10:00:01 devname="FGT 60F" tz="+0200" srcip=10.0.0.7 msg="at 2019-01-01 00:00:00""#,
            "UTC",
            KeyValue,
            Some("2024-05-01T08:00:01Z"),
        ),
        (
            "FortiGate without tz: the source's zone",
            "date=2024-01-15 time=10:00:01 srcip=10.0.0.7 dstip=93.184.216.34",
            "Europe/Berlin",
            KeyValue,
            Some("2024-01-15T09:00:01Z"),
        ),
        (
            "FortiGate over syslog: a PRI and no header",
            r#"<189>date=2024-05-01 time=10:00:01 devname="FGT" tz="-0500" srcip=10.0.0.7"#,
            "UTC",
            KeyValue,
            Some("2024-05-01T15:00:01Z"),
        ),
        (
            "key=value with an unreadable tz: none",
            r#"date=2024-05-01 time=10:00:01 tz="Mars/Olympus" srcip=10.0.0.7"#,
            "UTC",
            KeyValue,
            None,
        ),
        (
            "key=value without date and time: none",
            "action=block src=10.0.0.7 seen=2019-01-01T00:00:00Z",
            "UTC",
            KeyValue,
            None,
        ),
        (
            "Cisco ASA with its own stamp",
            "<166>Mar 04 2024 10:00:01: %ASA-6-302013: Built outbound TCP connection 7 for outside:198.51.100.7/443 (198.51.100.7/443) to inside:10.0.0.5/51000 (10.0.0.5/51000)",
            "UTC",
            Syslog3164,
            Some("2024-03-04T10:00:01Z"),
        ),
        (
            "Cisco ASA with a device id, in the source's zone",
            "Mar 04 2024 10:00:01 fw01 : %ASA-4-106023: Deny tcp src outside:203.0.113.9/4444 dst inside:10.0.0.5/22",
            "-05:00",
            Syslog3164,
            Some("2024-03-04T15:00:01Z"),
        ),
        (
            "Cisco ASA after a syslog header",
            "Mar  4 10:00:02 fw01 %ASA-6-302013: Built outbound TCP connection at Jan 01 2019 00:00:00",
            "UTC",
            Syslog3164,
            Some("2026-03-04T10:00:02Z"),
        ),
        (
            "Snare date column",
            SNARE,
            "Europe/Berlin",
            Snare,
            Some("2024-03-04T09:00:01Z"),
        ),
        (
            "Snare after a syslog header: the header's",
            "<14>Mar  4 10:00:05 WINSRV01 MSWinEventLog\t1\tSecurity\t1234\tMon Mar 04 10:00:01 2024\t4624\tx",
            "UTC",
            Syslog3164,
            Some("2026-03-04T10:00:05Z"),
        ),
        (
            "Snare after a syslog header without time: the record's",
            "<14>1 - WINSRV01 - - - - MSWinEventLog\t1\tSecurity\t1234\tMon Mar 04 10:00:01 2024\t4624\tx",
            "UTC",
            Syslog5424,
            Some("2024-03-04T10:00:01Z"),
        ),
        (
            "a line starting with an ISO stamp",
            "2024-05-01 10:00:03 fw01 blocked 1.2.3.4 at 2019-01-01T00:00:00Z",
            "UTC",
            Plain,
            Some("2024-05-01T10:00:03Z"),
        ),
        (
            "a line starting with a zoneless ISO stamp, in the source's zone",
            "2024-05-01 10:00:03 fw01 blocked 1.2.3.4",
            "Europe/Berlin",
            Plain,
            Some("2024-05-01T08:00:03Z"),
        ),
        (
            "a line starting with an ISO stamp, then pairs",
            "2024-05-01 10:00:03 fw01 action=block src=1.2.3.4",
            "UTC",
            KeyValue,
            Some("2024-05-01T10:00:03Z"),
        ),
        (
            "a line starting with an epoch (Zeek TSV without its header)",
            "1521911720.865716\tCq\t10.0.0.1\t2019-01-01T00:00:00Z",
            "UTC",
            Plain,
            Some("2018-03-24T17:15:20.865716Z"),
        ),
        (
            "a time in the middle of a plain line: none",
            "blocked 1.2.3.4 at 2019-01-01T00:00:00Z",
            "UTC",
            Plain,
            None,
        ),
        (
            "an epoch in the middle of a plain line: none",
            "user agent curl ts 1500000000 from 1.2.3.4",
            "UTC",
            Plain,
            None,
        ),
    ];
    for &(what, line, zone, format, want) in rows {
        let ev = decode_in(line, zone, now());
        assert_eq!(
            (ev.format, rfc3339(&ev).as_deref()),
            (format, want),
            "{what}: {line}"
        );
        check_spans(&ev, line.as_bytes());
    }
}

#[test]
fn time_from_message_text_is_ignored() {
    let ev = Decoder::default().decode(APACHE_EVASION.as_bytes(), now());
    assert_eq!(rfc3339(&ev).as_deref(), Some("2024-05-01T10:00:01Z"));
    // The same request after a header without a time, and a plain line that holds a
    // time only inside its text: no time rather than the text's.
    for line in [
        "<13>1 - proxy01 squid - - - GET http://fresh-c2.example/beacon?d=2019-01-01T00:00:00",
        "GET http://fresh-c2.example/beacon?d=2019-01-01T00:00:00 from 10.0.0.5",
        "GET http://fresh-c2.example/beacon?ts=1546300800 from 10.0.0.5",
        "proxy01 [01/Jan/2019:00:00:00 +0000] GET http://fresh-c2.example/",
    ] {
        let ev = Decoder::default().decode(line.as_bytes(), now());
        assert_eq!(ev.time, None, "{line}");
    }
}

#[test]
fn json_nested_ts_is_ignored() {
    let ev = Decoder::default().decode(JSON_NESTED_TS.as_bytes(), now());
    assert_eq!(ev.format, Format::Json);
    assert_eq!(ev.time, None);
    // The same object carried by syslog: the header's time.
    let line = format!("<13>Nov 24 08:59:37 edr01 agent: {JSON_NESTED_TS}");
    let ev = Decoder::default().decode(line.as_bytes(), now());
    assert_eq!(rfc3339(&ev).as_deref(), Some("2026-11-24T08:59:37Z"));
}

#[test]
fn json_time_after_message_text_uses_top_level() {
    let ev = Decoder::default().decode(JSON_EVASION.as_bytes(), now());
    assert_eq!(rfc3339(&ev).as_deref(), Some("2024-05-01T10:00:00Z"));
    // A time-named key inside the message, or nested, never wins over the top level.
    let line = r#"{"event":{"@timestamp":"2019-01-01T00:00:00Z"},"msg":"\"timestamp\":\"2019-01-01T00:00:00Z\"","timestamp":"2024-05-01T10:00:00Z"}"#;
    let ev = Decoder::default().decode(line.as_bytes(), now());
    assert_eq!(rfc3339(&ev).as_deref(), Some("2024-05-01T10:00:00Z"));
}

#[test]
fn syslog_timezone_applies_to_zoneless_times() {
    // (line, time in UTC, time at +02:00)
    let rows = [
        (
            "<34>Nov 24 08:59:37 h app: x",
            "2026-11-24T08:59:37Z",
            "2026-11-24T06:59:37Z",
        ),
        (
            "<166>Mar 04 2024 10:00:01: %ASA-6-302013: x",
            "2024-03-04T10:00:01Z",
            "2024-03-04T08:00:01Z",
        ),
        (
            "date=2024-05-01 time=10:00:01 srcip=10.0.0.7",
            "2024-05-01T10:00:01Z",
            "2024-05-01T08:00:01Z",
        ),
        (SNARE, "2024-03-04T10:00:01Z", "2024-03-04T08:00:01Z"),
        (
            "2024-05-01 10:00:03 fw01 blocked",
            "2024-05-01T10:00:03Z",
            "2024-05-01T08:00:03Z",
        ),
        // Stamps with their own zone, and epochs, are not moved.
        (
            "<34>1 2024-05-01T10:00:00Z h app - - - x",
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00Z",
        ),
        (
            APACHE_EVASION,
            "2024-05-01T10:00:01Z",
            "2024-05-01T10:00:01Z",
        ),
        (
            r#"{"ts":1521911720.5}"#,
            "2018-03-24T17:15:20.500Z",
            "2018-03-24T17:15:20.500Z",
        ),
    ];
    for (line, utc, plus2) in rows {
        let got = |zone| rfc3339(&decode_in(line, zone, now()));
        assert_eq!(got("UTC").as_deref(), Some(utc), "{line}");
        assert_eq!(got("+02:00").as_deref(), Some(plus2), "{line}");
        assert_eq!(got("UTC+2").as_deref(), Some(plus2), "{line}");
    }
    assert_eq!(DecodeOptions::default().zone, Zone::utc());
}

#[test]
fn iana_zone_across_a_dst_change() {
    // Berlin: +01:00 until 2024-03-31 02:00 local, +02:00 until 2024-10-27 03:00.
    let reference = Utc.with_ymd_and_hms(2024, 12, 1, 0, 0, 0).unwrap();
    let rows = [
        ("<34>Mar 30 12:00:00 h app: x", "2024-03-30T11:00:00Z"),
        ("<34>Mar 31 01:59:59 h app: x", "2024-03-31T00:59:59Z"),
        ("<34>Mar 31 03:00:00 h app: x", "2024-03-31T01:00:00Z"),
        // Never happens: read at the offset before the change.
        ("<34>Mar 31 02:30:00 h app: x", "2024-03-31T01:30:00Z"),
        // Happens twice: the earlier.
        ("<34>Oct 27 02:30:00 h app: x", "2024-10-27T00:30:00Z"),
        ("<34>Oct 27 03:30:00 h app: x", "2024-10-27T02:30:00Z"),
        (
            "date=2024-07-01 time=12:00:00 srcip=10.0.0.7",
            "2024-07-01T10:00:00Z",
        ),
        (
            "date=2024-12-01 time=12:00:00 srcip=10.0.0.7",
            "2024-12-01T11:00:00Z",
        ),
    ];
    for (line, want) in rows {
        let ev = decode_in(line, "Europe/Berlin", reference);
        assert_eq!(rfc3339(&ev).as_deref(), Some(want), "{line}");
    }
}

#[test]
fn feb_29_without_year() {
    let at = |y, mo, d| Utc.with_ymd_and_hms(y, mo, d, 0, 0, 0).unwrap();
    for (reference, want) in [
        (at(2025, 1, 10), "2024-02-29T10:00:00Z"),
        (at(2024, 3, 1), "2024-02-29T10:00:00Z"),
        (at(2027, 6, 1), "2024-02-29T10:00:00Z"),
        (at(2024, 1, 1), "2020-02-29T10:00:00Z"),
    ] {
        let ev = Decoder::default().decode(b"<34>Feb 29 10:00:00 h app: x", reference);
        assert_eq!(ev.format, Format::Syslog3164);
        assert_eq!(rfc3339(&ev).as_deref(), Some(want), "{reference}");
    }
}

#[test]
fn year_less_time_is_in_the_past_of_reference() {
    let at = |y, mo, d, h| Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap();
    // (line, reference, want): never more than a day after the reference.
    let rows = [
        (
            "<34>Dec 31 23:59:00 h app: x",
            at(2025, 1, 1, 0),
            "2024-12-31T23:59:00Z",
        ),
        (
            "<34>Jan  1 00:30:00 h app: x",
            at(2025, 1, 1, 0),
            "2025-01-01T00:30:00Z",
        ),
        (
            "<34>Jan  1 23:00:00 h app: x",
            at(2025, 1, 1, 0),
            "2025-01-01T23:00:00Z",
        ),
        (
            "<34>Jan  2 01:00:00 h app: x",
            at(2025, 1, 1, 0),
            "2024-01-02T01:00:00Z",
        ),
        (
            "<34>Nov 24 08:59:37 h app: x",
            at(2026, 11, 25, 12),
            "2026-11-24T08:59:37Z",
        ),
        (
            "<34>Nov 27 08:59:37 h app: x",
            at(2026, 11, 25, 12),
            "2025-11-27T08:59:37Z",
        ),
        // A file written in 2019 and read years later keeps its year.
        (
            "<34>Mar  4 10:00:00 h app: x",
            at(2019, 6, 1, 0),
            "2019-03-04T10:00:00Z",
        ),
        (
            "CEF:0|V|P|1|2|N|3|rt=Dec 31 23:00:00 src=1.2.3.4",
            at(2025, 1, 1, 0),
            "2024-12-31T23:00:00Z",
        ),
    ];
    for (line, reference, want) in rows {
        let ev = Decoder::default().decode(line.as_bytes(), reference);
        assert_eq!(rfc3339(&ev).as_deref(), Some(want), "{line} at {reference}");
    }
}

#[test]
fn huge_values_never_panic() {
    let digits = "9".repeat(10_000);
    let long = "x".repeat(100_000);
    let lines = [
        format!(r#"{{"@timestamp":"{digits}","ts":{digits},"time":"{long}"}}"#),
        format!(r#"{{"ts":1{digits}}}"#),
        format!("CEF:0|V|P|1|2|N|3|rt={digits} src=1.2.3.4"),
        format!("date={digits} time={digits} tz={digits} src=1.2.3.4"),
        format!("<34>Nov 24 08:59:37 {long} app: x"),
        format!("<34>1 {digits} h app - - - x"),
        format!("{digits}\t{digits}"),
        format!("9999-12-31T23:59:59-14:00 {long}"),
        format!("1 [99/Dec/9999:23:59:59 -1400] \"GET / HTTP/1.1\" 200 1 {long}"),
        format!("H\tMSWinEventLog\t1\tS\t1\tSun Dec 31 23:59:59 9999\t{long}"),
        format!("<34>{long}"),
    ];
    for line in &lines {
        for zone in ["UTC", "+14:00", "-14:00", "Pacific/Kiritimati"] {
            for reference in [now(), DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
                let ev = decode_in(line, zone, reference);
                check_spans(&ev, line.as_bytes());
            }
        }
    }
}

/// Lines that exercise every decoder, for the no-panic checks.
fn samples() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (name, n) in [
        ("apache_access.log", 2),
        ("zeek_dns.log", 10),
        ("zeek_syslog.log", 10),
        ("traps.log", 24),
    ] {
        let data = fixture(name);
        out.extend(lines(&data).take(n).map(<[u8]>::to_vec));
    }
    for s in [
        &br#"{"timestamp":"2017-04-07T22:24:37.251547+0100","src_ip":"1.2.3.4","http":{"url":"\/a\"b"},"x":[1,{"y":"z"}]}"#[..],
        br"<134>Nov 24 14:02:11 fw CEF:0|V|P|1|2|N\|x|5|src=1.2.3.4 msg=a b c",
        b"Mar  4 08:59:37 gw kernel: [UFW BLOCK] IN=eth0 SRC=1.2.3.4 DST=5.6.7.8",
        br#"<165>1 2003-10-11T22:14:15.003Z h app - ID47 [x@1 a="1\"]" b="2"] @cee: {"k":"v"}"#,
        br#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET /\"x HTTP/1.1" 200 1 "-" "ua""#,
        br#"<189>date=2024-05-01 time=10:00:01 tz="+0200" srcip=10.0.0.7"#,
        b"CEF:0|V|P|1|2|N|3|rt=Mar 04 2024 10:00:00.250 UTC src=10.0.0.5",
        b"<166>Mar 04 2024 10:00:01: %ASA-6-302013: Built outbound TCP connection",
        b"<14>1 - WINSRV01 - - - - MSWinEventLog\t1\tSecurity\t1\tMon Mar 04 10:00:01 2024\t4624",
    ] {
        out.push(s.to_vec());
    }
    out
}

fn decode_everywhere(line: &[u8]) {
    // A fresh decoder, one in an IANA zone, and one that has seen a Zeek header.
    let mut fresh = Decoder::default();
    let ev = fresh.decode(line, now());
    check_spans(&ev, line);
    let mut zoned = Decoder::new(DecodeOptions {
        zone: Zone::parse("America/New_York").unwrap(),
        ..DecodeOptions::default()
    });
    let ev = zoned.decode(line, now());
    check_spans(&ev, line);
    let _ = tripline::decode::is_syslog(line);
    static ZEEK: OnceLock<Decoder> = OnceLock::new();
    let mut zeek = ZEEK
        .get_or_init(|| {
            let mut d = Decoder::default();
            for h in lines(&fixture("zeek_syslog.log")).take(8) {
                assert!(d.observe(h));
            }
            d
        })
        .clone();
    let ev = zeek.decode(line, now());
    check_spans(&ev, line);
    for f in &ev.fields {
        let _ = ev.direction_of(f.span);
    }
}

#[test]
fn every_truncation_of_every_sample() {
    for s in samples() {
        for cut in 0..=s.len() {
            decode_everywhere(&s[..cut]);
            decode_everywhere(&s[cut..]);
        }
    }
}

#[test]
fn binary_and_invalid_utf8() {
    for line in [
        &b"\xff\xfe\xfd"[..],
        b"\x00\x00\x00{",
        b"{\xff\":\"\xfe\"}",
        b"<13>\xffNov 24 08:59:37 h a: x",
        b"Nov 24 08:59:37 \xc3\x28 app: src=1.2.3.4",
        b"#separator \\xZZ",
        b"#fields",
        b"CEF:0|\\",
        b"a=\"\\",
        b"1 2024-01-01T00:00:00Z",
        b"{\"a\":\"\\u12\"}",
    ] {
        decode_everywhere(line);
    }
}

/// Replaces bytes of real samples with a seeded xorshift, so failures reproduce.
#[test]
fn seeded_mutations_never_panic() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    const SPECIAL: &[u8] = b"{}[]\":,\\| =<>#\t\n\r-.@[]'\x00\xff";
    for s in samples() {
        for _ in 0..200 {
            let mut m = s.clone();
            for _ in 0..(rand() % 6 + 1) {
                if m.is_empty() {
                    break;
                }
                let i = (rand() as usize) % m.len();
                let r = rand();
                m[i] = if r % 2 == 0 {
                    SPECIAL[(r as usize / 2) % SPECIAL.len()]
                } else {
                    (r >> 8) as u8
                };
            }
            decode_everywhere(&m);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        decode_everywhere(&line);
    }

    #[test]
    fn structured_looking_text_never_panics(
        line in r#"(<[0-9]{1,3}>)?(1 )?(Nov 24 08:59:37 |2024-05-01T10:00:00Z )?[a-z]{0,4}(\[[0-9]\])?:? ?(@cee: )?[{}\[\]":,a-z0-9=|\\ \t.]{0,80}"#
    ) {
        decode_everywhere(line.as_bytes());
    }
}
