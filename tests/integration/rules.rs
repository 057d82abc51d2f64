//! Correlation rules and the engine: table-driven tests per correlation type, window
//! edges, group-by keys, re-firing, the state cap, disorder, restore after a restart,
//! and rule validation errors with their exact messages.

use std::net::IpAddr;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use tripline::correlate::engine::{Engine, EngineOptions};
use tripline::correlate::load::{check_rules, default_rules, load_rules, parse_rule, RuleError};
use tripline::correlate::rule::Rule;
use tripline::correlate::{Confirmation, Observation, Provenance};
use tripline::intel::{Kind, Tlp};

// ---------------------------------------------------------------------------------
// Helpers.

/// `"01:30:00"` (or `"1d 01:30:00"`, a day later) on a fixed date, UTC.
fn t(s: &str) -> DateTime<Utc> {
    let (days, hms) = match s.split_once("d ") {
        Some((d, rest)) => (d.parse::<i64>().unwrap_or(0), rest),
        None => (0, s),
    };
    let base =
        DateTime::parse_from_rfc3339(&format!("2024-05-01T{hms}Z")).map(|d| d.with_timezone(&Utc));
    assert!(base.is_ok(), "bad test time {s:?}");
    base.unwrap_or_default() + TimeDelta::days(days)
}

fn prov(source: &str, event: Option<&str>) -> Provenance {
    Provenance {
        source: source.into(),
        event_uuid: event.map(String::from),
        attribute_uuid: Some(format!("attr-{source}")),
        source_type: "domain".into(),
        category: Some("Network activity".into()),
        tags: vec!["tlp:green".into()],
        tlp: Some(Tlp::Green),
        distribution: Some(1),
    }
}

/// An observation of `indicator` (a domain) at `time` on host `web01`, in `dns.log`,
/// from source `circl`, event `ev-1`. Adjust with the builder methods.
struct Obs(Observation);

fn obs(time: &str, indicator: &str) -> Obs {
    Obs(Observation {
        time: t(time),
        indicator: indicator.into(),
        kind: Kind::Domain,
        atomic: indicator.into(),
        provenance: vec![prov("circl", Some("ev-1"))],
        host: Some("web01".into()),
        source_ip: None,
        destination_ip: None,
        log_source: "dns.log".into(),
        origin: None,
    })
}

impl Obs {
    fn kind(mut self, k: Kind) -> Obs {
        self.0.kind = k;
        self
    }
    fn host(mut self, h: Option<&str>) -> Obs {
        self.0.host = h.map(String::from);
        self
    }
    fn log(mut self, l: &str) -> Obs {
        self.0.log_source = l.into();
        self
    }
    fn events(mut self, evs: &[&str]) -> Obs {
        self.0.provenance = evs.iter().map(|e| prov("circl", Some(e))).collect();
        self
    }
    fn provs(mut self, p: Vec<Provenance>) -> Obs {
        self.0.provenance = p;
        self
    }
    fn src(mut self, ip: &str) -> Obs {
        self.0.source_ip = ip.parse::<IpAddr>().ok();
        self
    }
    fn dst(mut self, ip: &str) -> Obs {
        self.0.destination_ip = ip.parse::<IpAddr>().ok();
        self
    }
}

const ID: &str = "00000000-0000-4000-8000-000000000001";

fn rule(body: &str) -> Rule {
    let text = format!("title: test rule\nid: {ID}\nlevel: medium\n{body}");
    match parse_rule("test.yml", &text) {
        Ok(r) => r,
        Err(e) => panic!("rule does not parse: {e}\n{text}"),
    }
}

fn correlation(kind: &str, group_by: &str, timespan: &str, condition: &str) -> Rule {
    rule(&format!(
        "correlation:\n  type: {kind}\n  group-by: {group_by}\n  timespan: {timespan}\n  condition: {condition}\n"
    ))
}

/// Feeds `input` in order; returns the indices of the observations that produced a
/// confirmation (one index per confirmation) and the confirmations.
fn run(engine: &mut Engine, input: Vec<Obs>) -> (Vec<usize>, Vec<Confirmation>) {
    let mut at = Vec::new();
    let mut all = Vec::new();
    for (i, o) in input.into_iter().enumerate() {
        for c in engine.observe(o.0) {
            at.push(i);
            all.push(c);
        }
    }
    (at, all)
}

fn times(c: &Confirmation) -> Vec<DateTime<Utc>> {
    c.observations.iter().map(|o| o.time).collect()
}

// ---------------------------------------------------------------------------------
// One table per correlation type: (name, rule, input, indices that confirm).

#[test]
fn event_count_table() {
    let gte3 = || correlation("event_count", "[indicator]", "1h", "{gte: 3}");
    let cases: Vec<(&str, Rule, Vec<Obs>, Vec<usize>)> = vec![
        (
            "three within the hour",
            gte3(),
            vec![
                obs("00:00:00", "a.com"),
                obs("00:10:00", "a.com"),
                obs("00:20:00", "a.com"),
            ],
            vec![2],
        ),
        (
            "two are not enough",
            gte3(),
            vec![obs("00:00:00", "a.com"), obs("00:10:00", "a.com")],
            vec![],
        ),
        (
            "exactly one timespan apart: inclusive",
            gte3(),
            vec![
                obs("00:00:00", "a.com"),
                obs("00:30:00", "a.com"),
                obs("01:00:00", "a.com"),
            ],
            vec![2],
        ),
        (
            "one second past the timespan: the first has left the window",
            gte3(),
            vec![
                obs("00:00:00", "a.com"),
                obs("00:30:00", "a.com"),
                obs("01:00:01", "a.com"),
            ],
            vec![],
        ),
        (
            "the window slides: a later triple still confirms",
            gte3(),
            vec![
                obs("00:00:00", "a.com"),
                obs("00:30:00", "a.com"),
                obs("01:00:01", "a.com"),
                obs("01:20:00", "a.com"),
            ],
            vec![3],
        ),
        (
            "different indicators are different groups",
            gte3(),
            vec![
                obs("00:00:00", "a.com"),
                obs("00:01:00", "b.com"),
                obs("00:02:00", "a.com"),
            ],
            vec![],
        ),
        (
            "gt 2 is gte 3",
            correlation("event_count", "[indicator]", "1h", "{gt: 2}"),
            vec![
                obs("00:00:00", "a.com"),
                obs("00:10:00", "a.com"),
                obs("00:20:00", "a.com"),
            ],
            vec![2],
        ),
        (
            "string form",
            correlation("event_count", "[indicator]", "1h", "\">= 2\""),
            vec![obs("00:00:00", "a.com"), obs("00:10:00", "a.com")],
            vec![1],
        ),
        (
            "no group-by: one group for the rule",
            correlation("event_count", "[]", "30s", "{gte: 2}"),
            vec![obs("00:00:00", "a.com"), obs("00:00:30", "b.com")],
            vec![1],
        ),
    ];
    for (name, rule, input, want) in cases {
        let mut e = Engine::new(vec![rule]);
        let (got, _) = run(&mut e, input);
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn value_count_table() {
    let by_event = || {
        rule("correlation:\n  type: value_count\n  field: indicator\n  group-by: [intel.event]\n  timespan: 24h\n  condition: {gte: 2}\n")
    };
    let by_log = || {
        rule("correlation:\n  type: value_count\n  group-by: indicator\n  timespan: 1h\n  condition: {gte: 2, field: log.source}\n")
    };
    let cases: Vec<(&str, Rule, Vec<Obs>, Vec<usize>)> = vec![
        (
            "repeats of one value do not count",
            by_event(),
            vec![
                obs("00:00:00", "a.com"),
                obs("01:00:00", "a.com"),
                obs("02:00:00", "a.com"),
            ],
            vec![],
        ),
        (
            "a second distinct indicator of the event",
            by_event(),
            vec![
                obs("00:00:00", "a.com"),
                obs("01:00:00", "a.com"),
                obs("02:00:00", "b.com"),
            ],
            vec![2],
        ),
        (
            "exactly 24h apart: inclusive",
            by_event(),
            vec![obs("00:00:00", "a.com"), obs("1d 00:00:00", "b.com")],
            vec![1],
        ),
        (
            "24h and a second apart",
            by_event(),
            vec![obs("00:00:00", "a.com"), obs("1d 00:00:01", "b.com")],
            vec![],
        ),
        (
            "the newest repeat keeps a value in the window",
            by_event(),
            vec![
                obs("00:00:00", "a.com"),
                obs("20:00:00", "a.com"),
                obs("1d 10:00:00", "b.com"),
            ],
            vec![2],
        ),
        (
            "different events do not add up",
            by_event(),
            vec![
                obs("00:00:00", "a.com").events(&["ev-1"]),
                obs("00:01:00", "b.com").events(&["ev-2"]),
            ],
            vec![],
        ),
        (
            "no event UUID: not counted",
            by_event(),
            vec![
                obs("00:00:00", "a.com").provs(vec![prov("list", None)]),
                obs("00:01:00", "b.com").provs(vec![prov("list", None)]),
            ],
            vec![],
        ),
        (
            "same indicator in two log sources (field in the condition, Sigma style)",
            by_log(),
            vec![
                obs("00:00:00", "a.com").log("dns.log"),
                obs("00:40:00", "a.com").log("proxy.log"),
            ],
            vec![1],
        ),
        (
            "one log source twice",
            by_log(),
            vec![obs("00:00:00", "a.com"), obs("00:40:00", "a.com")],
            vec![],
        ),
    ];
    for (name, rule, input, want) in cases {
        let mut e = Engine::new(vec![rule]);
        let (got, _) = run(&mut e, input);
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn temporal_table() {
    let two = || {
        rule(
            "selectors:\n  name:\n    types: [domain, hostname]\n  address:\n    types: ip\n\
              correlation:\n  type: temporal\n  group-by: [intel.event]\n  timespan: 10m\n",
        )
    };
    let two_of_three = || {
        rule("selectors:\n  name: {types: domain}\n  address: {types: ip}\n  file: {types: hash}\n\
              correlation:\n  type: temporal\n  group-by: [intel.event]\n  timespan: 10m\n  condition: {gte: 2}\n")
    };
    let ip = |time: &str| obs(time, "198.51.100.7").kind(Kind::Ipv4);
    let cases: Vec<(&str, Rule, Vec<Obs>, Vec<usize>)> = vec![
        (
            "name then address",
            two(),
            vec![obs("00:00:00", "c2.com"), ip("00:05:00")],
            vec![1],
        ),
        (
            "address then name",
            two(),
            vec![ip("00:00:00"), obs("00:05:00", "c2.com")],
            vec![1],
        ),
        (
            "one selector twice is not enough",
            two(),
            vec![obs("00:00:00", "c2.com"), obs("00:01:00", "c3.com")],
            vec![],
        ),
        (
            "exactly 10m apart: inclusive",
            two(),
            vec![obs("00:00:00", "c2.com"), ip("00:10:00")],
            vec![1],
        ),
        (
            "10m and a second apart",
            two(),
            vec![obs("00:00:00", "c2.com"), ip("00:10:01")],
            vec![],
        ),
        (
            "different events",
            two(),
            vec![
                obs("00:00:00", "c2.com").events(&["ev-1"]),
                ip("00:01:00").events(&["ev-2"]),
            ],
            vec![],
        ),
        (
            "neither selector: not counted",
            two(),
            vec![
                obs("00:00:00", "c2.com"),
                obs("00:01:00", "http://x").kind(Kind::Url),
                obs("00:02:00", "c3.com"),
            ],
            vec![],
        ),
        (
            "two of three selectors",
            two_of_three(),
            vec![
                ip("00:00:00"),
                obs("00:03:00", "aa".repeat(32).as_str()).kind(Kind::Sha256),
            ],
            vec![1],
        ),
    ];
    for (name, rule, input, want) in cases {
        let mut e = Engine::new(vec![rule]);
        let (got, _) = run(&mut e, input);
        assert_eq!(got, want, "{name}");
    }
}

/// Conditions with an upper bound are judged when the window closes.
#[test]
fn deferred_conditions_table() {
    // (name, condition, observation times, times that close: flush or finish, confirms)
    type Case<'a> = (&'a str, &'a str, Vec<&'a str>, Option<&'a str>, usize);
    let cases: Vec<Case> = vec![
        (
            "lte 2 with two, closed by finish",
            "{lte: 2}",
            vec!["00:00:00", "00:30:00"],
            None,
            1,
        ),
        (
            "lte 2 with three",
            "{lte: 2}",
            vec!["00:00:00", "00:10:00", "00:20:00"],
            None,
            0,
        ),
        (
            "eq 2 with two",
            "{eq: 2}",
            vec!["00:00:00", "01:00:00"],
            None,
            1,
        ),
        ("eq 2 with one", "{eq: 2}", vec!["00:00:00"], None, 0),
        (
            "range 2..=3 with three",
            "{gte: 2, lt: 4}",
            vec!["00:00:00", "00:10:00", "00:20:00"],
            None,
            1,
        ),
        (
            "flush before the window ends",
            "{lte: 2}",
            vec!["00:00:00"],
            Some("01:00:00"),
            0,
        ),
        (
            "flush after the window ends",
            "{lte: 2}",
            vec!["00:00:00"],
            Some("01:00:01"),
            1,
        ),
    ];
    for (name, cond, input, flush_at, want) in cases {
        let mut e = Engine::new(vec![correlation("event_count", "[indicator]", "1h", cond)]);
        let (early, _) = run(&mut e, input.iter().map(|s| obs(s, "a.com")).collect());
        assert!(
            early.is_empty(),
            "{name}: deferred rules do not confirm early"
        );
        let got = match flush_at {
            Some(now) => e.flush(t(now)).len(),
            None => e.finish().len(),
        };
        assert_eq!(got, want, "{name}");
    }
    // An observation past the window's end closes it.
    let mut e = Engine::new(vec![correlation(
        "event_count",
        "[indicator]",
        "1h",
        "{lte: 2}",
    )]);
    let (at, c) = run(
        &mut e,
        vec![
            obs("00:00:00", "a.com"),
            obs("00:59:00", "a.com"),
            obs("02:00:00", "a.com"),
        ],
    );
    assert_eq!(at, vec![2]);
    assert_eq!(times(&c[0]), vec![t("00:00:00"), t("00:59:00")]);
}

// ---------------------------------------------------------------------------------
// Group-by keys.

#[test]
fn each_group_by_key() {
    // (key, the same observation twice, a second one that differs only in the key,
    //  the expected group value)
    type Make = fn(&str) -> Obs;
    let cases: Vec<(&str, Make, Make, &str)> = vec![
        (
            "indicator",
            |s| obs(s, "a.com"),
            |s| obs(s, "b.com"),
            "a.com",
        ),
        (
            "intel.event",
            |s| obs(s, "a.com"),
            |s| obs(s, "a.com").events(&["ev-2"]),
            "ev-1",
        ),
        (
            "host",
            |s| obs(s, "a.com"),
            |s| obs(s, "a.com").host(Some("db01")),
            "web01",
        ),
        (
            "source.ip",
            |s| obs(s, "a.com").src("10.0.0.1"),
            |s| obs(s, "a.com").src("10.0.0.2"),
            "10.0.0.1",
        ),
        (
            "destination.ip",
            |s| obs(s, "a.com").dst("192.0.2.1"),
            |s| obs(s, "a.com").dst("192.0.2.2"),
            "192.0.2.1",
        ),
        (
            "log.source",
            |s| obs(s, "a.com"),
            |s| obs(s, "a.com").log("proxy.log"),
            "dns.log",
        ),
    ];
    for (key, same, other, value) in cases {
        let r = || correlation("event_count", &format!("[{key}]"), "1h", "{gte: 2}");
        let mut e = Engine::new(vec![r()]);
        let (at, c) = run(&mut e, vec![same("00:00:00"), same("00:01:00")]);
        assert_eq!(at, vec![1], "{key}: same value confirms");
        assert_eq!(
            c[0].group,
            vec![(key.to_string(), value.to_string())],
            "{key}"
        );
        let mut e = Engine::new(vec![r()]);
        let (at, _) = run(&mut e, vec![same("00:00:00"), other("00:01:00")]);
        assert_eq!(at, Vec::<usize>::new(), "{key}: different values do not");
    }
}

#[test]
fn missing_group_values_are_not_counted() {
    let cases: Vec<(&str, Obs)> = vec![
        ("host", obs("00:00:00", "a.com").host(None)),
        ("source.ip", obs("00:00:00", "a.com")),
        ("destination.ip", obs("00:00:00", "a.com")),
        (
            "intel.event",
            obs("00:00:00", "a.com").provs(vec![prov("list", None)]),
        ),
    ];
    for (key, o) in cases {
        let mut e = Engine::new(vec![correlation(
            "event_count",
            &format!("[{key}]"),
            "1h",
            "{gte: 1}",
        )]);
        assert!(e.observe(o.0).is_empty(), "{key}");
        assert_eq!((e.stats().unkeyed, e.stats().live_groups), (1, 0), "{key}");
    }
}

#[test]
fn several_event_uuids_put_an_observation_in_several_groups() {
    let mut e = Engine::new(vec![correlation(
        "event_count",
        "[intel.event]",
        "1h",
        "{gte: 2}",
    )]);
    let (at, c) = run(
        &mut e,
        vec![
            obs("00:00:00", "a.com").events(&["ev-1", "ev-2"]),
            obs("00:01:00", "b.com").events(&["ev-2"]),
        ],
    );
    assert_eq!(at, vec![1]);
    assert_eq!(
        c[0].group,
        vec![("intel.event".to_string(), "ev-2".to_string())]
    );
    assert_eq!(e.stats().live_groups, 2);
}

#[test]
fn several_group_by_keys_combine() {
    let mut e = Engine::new(vec![correlation(
        "event_count",
        "[indicator, host]",
        "1h",
        "{gte: 2}",
    )]);
    let (at, c) = run(
        &mut e,
        vec![
            obs("00:00:00", "a.com"),
            obs("00:01:00", "a.com").host(Some("db01")),
            obs("00:02:00", "b.com"),
            obs("00:03:00", "a.com").host(Some("db01")),
        ],
    );
    assert_eq!(at, vec![3]);
    assert_eq!(
        c[0].group,
        vec![
            ("indicator".into(), "a.com".into()),
            ("host".into(), "db01".into())
        ]
    );
}

// ---------------------------------------------------------------------------------
// Selectors.

#[test]
fn selector_table() {
    let sha = "ab".repeat(32);
    let tagged = |tags: &[&str]| {
        let mut p = prov("circl", Some("ev-1"));
        p.tags = tags.iter().map(|s| s.to_string()).collect();
        p
    };
    // (match body, observation, selected?)
    let cases: Vec<(&str, Obs, bool)> = vec![
        (
            "types: hash",
            obs("00:00:00", &sha).kind(Kind::Sha256),
            true,
        ),
        ("types: hash", obs("00:00:00", "a.com"), false),
        (
            "types: [ip]",
            obs("00:00:00", "2001:db8::1").kind(Kind::Ipv6),
            true,
        ),
        ("types: [domain, url]", obs("00:00:00", "a.com"), true),
        ("sources: [\"CIRCL*\"]", obs("00:00:00", "a.com"), true),
        ("sources: other", obs("00:00:00", "a.com"), false),
        ("tags: \"tlp:*\"", obs("00:00:00", "a.com"), true),
        ("tags: \"kill-chain:*\"", obs("00:00:00", "a.com"), false),
        (
            "tags: \"misp-galaxy:*\"",
            obs("00:00:00", "a.com").provs(vec![tagged(&["misp-galaxy:threat-actor=\"APT 28\""])]),
            true,
        ),
        (
            "categories: \"network activity\"",
            obs("00:00:00", "a.com"),
            true,
        ),
        (
            "categories: \"Payload delivery\"",
            obs("00:00:00", "a.com"),
            false,
        ),
        ("log-sources: \"*dns*\"", obs("00:00:00", "a.com"), true),
        ("log-sources: \"*proxy*\"", obs("00:00:00", "a.com"), false),
        // Provenance criteria must hold on one provenance.
        (
            "{sources: circl, tags: \"tlp:red\"}",
            obs("00:00:00", "a.com").provs(vec![prov("circl", Some("e")), {
                let mut p = prov("other", Some("e"));
                p.tags = vec!["tlp:red".into()];
                p
            }]),
            false,
        ),
    ];
    for (body, o, want) in cases {
        let body = if body.starts_with('{') {
            format!("match: {body}\n")
        } else {
            format!("match:\n  {body}\n")
        };
        let mut e = Engine::new(vec![rule(&body)]);
        assert_eq!(e.observe(o.0).len(), usize::from(want), "{body}");
    }
}

#[test]
fn intel_event_groups_use_only_the_selected_provenances() {
    let mut p2 = prov("other", Some("ev-2"));
    p2.tags = vec!["tlp:red".into()];
    let mut e = Engine::new(vec![rule(
        "match:\n  tags: \"tlp:green\"\ncorrelation:\n  type: event_count\n  group-by: intel.event\n  timespan: 1h\n  condition: {gte: 1}\n",
    )]);
    let c = e.observe(
        obs("00:00:00", "a.com")
            .provs(vec![prov("circl", Some("ev-1")), p2])
            .0,
    );
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].group,
        vec![("intel.event".to_string(), "ev-1".to_string())]
    );
}

// ---------------------------------------------------------------------------------
// Rules without a correlation, re-firing, the cap, disorder.

#[test]
fn a_rule_without_correlation_confirms_every_match() {
    let mut e = Engine::new(vec![rule("match:\n  types: hash\n")]);
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let (at, c) = run(
        &mut e,
        vec![
            obs("00:00:00", md5).kind(Kind::Md5),
            obs("00:00:00", "a.com"),
            obs("00:00:01", md5).kind(Kind::Md5),
        ],
    );
    assert_eq!(at, vec![0, 2]);
    assert!(c
        .iter()
        .all(|c| c.group.is_empty() && c.observations.len() == 1));
    assert_eq!(e.stats().live_groups, 0, "stateless");
}

#[test]
fn a_group_refires_only_after_its_window_has_passed() {
    let mut e = Engine::new(vec![correlation(
        "event_count",
        "[indicator]",
        "1h",
        "{gte: 2}",
    )]);
    let (at, c) = run(
        &mut e,
        vec![
            obs("00:00:00", "a.com"),
            obs("00:10:00", "a.com"), // 1: confirms; T = 00:10
            obs("00:20:00", "a.com"), // suppressed
            obs("01:10:00", "a.com"), // T + 1h: still suppressed (inclusive)
            obs("01:10:01", "a.com"), // a new window starts
            obs("01:15:00", "a.com"), // 5: confirms again
        ],
    );
    assert_eq!(at, vec![1, 5]);
    assert_eq!(
        (c[0].first_seen, c[0].last_seen),
        (t("00:00:00"), t("00:10:00"))
    );
    assert_eq!(times(&c[1]), vec![t("01:10:01"), t("01:15:00")]);
    let s = e.stats();
    assert_eq!(s.suppressed, 2);
    assert_eq!(s.confirmations.get(ID), Some(&2));
}

#[test]
fn the_group_cap_evicts_the_least_recently_used_and_counts_it() {
    let mut e = Engine::with_options(
        vec![correlation("event_count", "[indicator]", "1h", "{gte: 2}")],
        EngineOptions { max_groups: 2 },
    );
    let (at, _) = run(
        &mut e,
        vec![
            obs("00:00:00", "a.com"),
            obs("00:00:01", "b.com"),
            obs("00:00:02", "a.com").host(Some("x")), // a confirms; a is now newest
            obs("00:00:03", "c.com"),                 // evicts b
            obs("00:00:04", "b.com"),                 // b starts over: no confirmation; evicts a
        ],
    );
    assert_eq!(at, vec![2]);
    let s = e.stats();
    assert_eq!((s.live_groups, s.evictions), (2, 2));
}

#[test]
fn out_of_order_observations_within_a_timespan_are_placed_in_order() {
    let mut e = Engine::new(vec![correlation(
        "event_count",
        "[indicator]",
        "1h",
        "{gte: 3}",
    )]);
    let (at, c) = run(
        &mut e,
        vec![
            obs("00:50:00", "a.com"),
            obs("00:10:00", "a.com"),
            obs("00:30:00", "a.com"),
        ],
    );
    assert_eq!(at, vec![2]);
    assert_eq!(
        times(&c[0]),
        vec![t("00:10:00"), t("00:30:00"), t("00:50:00")]
    );
    assert_eq!(
        (c[0].first_seen, c[0].last_seen),
        (t("00:10:00"), t("00:50:00"))
    );

    // One timespan older than the group's newest is still in (inclusive); more is late.
    let mut e = Engine::new(vec![correlation(
        "event_count",
        "[indicator]",
        "1h",
        "{gte: 2}",
    )]);
    let (at, _) = run(
        &mut e,
        vec![obs("02:00:00", "a.com"), obs("00:59:59", "a.com")],
    );
    assert_eq!((at, e.stats().late), (vec![], 1));
    let (at, _) = run(&mut e, vec![obs("01:00:00", "a.com")]);
    assert_eq!(at, vec![0]);
}

#[test]
fn batch_files_read_in_any_order_give_the_same_confirmations() {
    // Two files, each in time order, a day apart; read either way round. Streamed,
    // the older file's observations are more than a timespan late for their group and
    // counted as late; `observe_batch` sorts first and gives the ordered result.
    let file = |day: &str| -> Vec<Observation> {
        ["00:00:00", "00:10:00", "00:20:00"]
            .iter()
            .map(|s| obs(&format!("{day}{s}"), "a.com").0)
            .collect()
    };
    let confirmed = |c: Vec<Confirmation>| {
        let mut v: Vec<(String, DateTime<Utc>)> =
            c.into_iter().map(|c| (c.rule_id, c.last_seen)).collect();
        v.sort();
        v
    };
    let batch = |first: Vec<Observation>, second: Vec<Observation>| {
        let mut input = first;
        input.extend(second);
        confirmed(Engine::new(default_rules()).observe_batch(input))
    };
    let forward = batch(file(""), file("1d "));
    assert_eq!(forward, batch(file("1d "), file("")));
    let repeated = "d7a1c34b-8fee-4108-8389-8137af4da63c".to_string();
    assert_eq!(
        forward,
        vec![
            (repeated.clone(), t("00:20:00")),
            (repeated, t("1d 00:20:00"))
        ]
    );

    let mut streamed = Engine::new(default_rules());
    let mut got = Vec::new();
    for o in file("1d ").into_iter().chain(file("")) {
        got.extend(streamed.observe(o));
    }
    assert_eq!(confirmed(got).len(), 1);
    assert!(streamed.stats().late > 0);
}

#[test]
fn flush_expires_idle_groups() {
    let mut e = Engine::new(vec![correlation(
        "event_count",
        "[indicator]",
        "1h",
        "{gte: 2}",
    )]);
    run(
        &mut e,
        vec![obs("00:00:00", "a.com"), obs("00:30:00", "b.com")],
    );
    assert!(e.flush(t("01:00:00")).is_empty());
    assert_eq!(
        e.stats().live_groups,
        2,
        "a's window reaches 01:00 inclusive"
    );
    e.flush(t("01:00:01"));
    assert_eq!((e.stats().live_groups, e.stats().expired), (1, 1));
    e.flush(t("01:30:00"));
    assert_eq!((e.stats().live_groups, e.stats().expired), (1, 1));
    e.flush(t("01:30:01"));
    assert_eq!((e.stats().live_groups, e.stats().expired), (0, 2));
}

// ---------------------------------------------------------------------------------
// Persistence.

#[test]
fn a_window_started_before_a_restart_confirms_after_it() {
    let mut before = Engine::new(default_rules());
    let (at, _) = run(
        &mut before,
        vec![obs("00:00:00", "a.com"), obs("00:20:00", "a.com")],
    );
    assert!(at.is_empty());
    let saved = before.snapshot();
    drop(before);

    let mut after = Engine::new(default_rules());
    let restored = after.restore(&saved);
    assert!(restored.is_ok(), "{restored:?}");
    let (at, c) = run(&mut after, vec![obs("00:40:00", "a.com")]);
    assert_eq!(at, vec![0]);
    assert_eq!(c[0].rule_id, "d7a1c34b-8fee-4108-8389-8137af4da63c");
    assert_eq!(
        times(&c[0]),
        vec![t("00:00:00"), t("00:20:00"), t("00:40:00")]
    );
    assert_eq!(
        c[0].observations[0].provenance,
        vec![prov("circl", Some("ev-1"))]
    );
    assert!(
        after.snapshot().len() < saved.len(),
        "the confirmed window was emptied"
    );
}

#[test]
fn restore_keeps_quiet_periods_and_counters() {
    let r = || correlation("event_count", "[indicator]", "1h", "{gte: 2}");
    let mut before = Engine::new(vec![r()]);
    run(
        &mut before,
        vec![obs("00:00:00", "a.com"), obs("00:10:00", "a.com")],
    );
    let mut after = Engine::new(vec![r()]);
    assert!(after.restore(&before.snapshot()).is_ok());
    let (at, _) = run(
        &mut after,
        vec![obs("00:20:00", "a.com"), obs("00:30:00", "a.com")],
    );
    assert!(at.is_empty(), "still quiet after the restart");
    let s = after.stats();
    assert_eq!((s.suppressed, s.confirmations.get(ID)), (2, Some(&1)));
}

#[test]
fn restore_drops_groups_of_changed_or_removed_rules() {
    let mut before = Engine::new(vec![correlation(
        "event_count",
        "[indicator]",
        "1h",
        "{gte: 3}",
    )]);
    run(
        &mut before,
        vec![obs("00:00:00", "a.com"), obs("00:00:00", "b.com")],
    );
    let saved = before.snapshot();

    let mut changed = Engine::new(vec![correlation(
        "event_count",
        "[indicator]",
        "2h",
        "{gte: 3}",
    )]);
    let r = changed.restore(&saved).map(|r| (r.groups, r.dropped));
    assert_eq!(r.ok(), Some((0, 2)));

    let mut removed = Engine::new(default_rules());
    let r = removed.restore(&saved).map(|r| (r.groups, r.dropped));
    assert_eq!(r.ok(), Some((0, 2)));

    let mut capped = Engine::with_options(
        vec![correlation("event_count", "[indicator]", "1h", "{gte: 3}")],
        EngineOptions { max_groups: 1 },
    );
    assert!(capped.restore(&saved).is_ok());
    assert_eq!(
        (capped.stats().live_groups, capped.stats().evictions),
        (1, 1)
    );
    // What `tripline_rule_groups_evicted_total` exports.
    assert_eq!(capped.evictions(), 1);
}

#[test]
fn restore_rejects_bad_snapshots_and_leaves_the_engine_alone() {
    let mut e = Engine::new(vec![correlation(
        "event_count",
        "[indicator]",
        "1h",
        "{gte: 2}",
    )]);
    e.observe(obs("00:00:00", "a.com").0);
    let before = e.snapshot();
    let cases: Vec<(&[u8], &str)> = vec![
        (b"not json", "correlation snapshot is not valid JSON: expected ident at line 1 column 2"),
        (
            br#"{"version":99,"groups":[],"counters":{"evictions":0,"expired":0,"late":0,"suppressed":0,"unkeyed":0,"confirmations":{}}}"#,
            "correlation snapshot version 99 is not supported (expected 1)",
        ),
    ];
    for (bytes, want) in cases {
        let got = e.restore(bytes).map_err(|e| e.to_string());
        assert_eq!(got.err().as_deref(), Some(want));
    }
    assert_eq!(e.snapshot(), before);
}

// ---------------------------------------------------------------------------------
// Shipped rules.

#[test]
fn shipped_rules_fire_on_their_scenarios() {
    let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    let cases: Vec<(&str, Vec<Obs>)> = vec![
        (
            "d7a1c34b-8fee-4108-8389-8137af4da63c",
            vec![
                obs("00:00:00", "a.com"),
                obs("00:30:00", "a.com"),
                obs("00:59:00", "a.com"),
            ],
        ),
        (
            "4ca31bf6-b6b4-464a-9861-2873642c418a",
            vec![
                obs("00:00:00", "a.com").host(Some("h1")),
                obs("20:00:00", "b.com").host(Some("h2")),
            ],
        ),
        (
            "f97e59f8-d7b9-47e8-818a-90eaa38c5617",
            vec![
                obs("00:00:00", "a.com").host(Some("h1")),
                obs("00:30:00", "a.com").log("proxy.log").host(Some("h2")),
            ],
        ),
        (
            "b3be4efe-e2e7-4b17-93e4-bd85040f3de6",
            vec![obs("00:00:00", sha1).kind(Kind::Sha1)],
        ),
        (
            "cd8d658a-9d19-4df5-a25f-ad33756564d4",
            vec![
                obs("00:00:00", "c2.com").src("10.1.1.1").host(Some("dns1")),
                obs("00:05:00", "198.51.100.7")
                    .kind(Kind::Ipv4)
                    .src("10.1.1.1")
                    .host(Some("fw1"))
                    .log("fw.log"),
            ],
        ),
    ];
    for (id, input) in cases {
        let mut e = Engine::new(default_rules());
        let (_, c) = run(&mut e, input);
        let fired: Vec<&str> = c.iter().map(|c| c.rule_id.as_str()).collect();
        assert!(fired.contains(&id), "{id} did not fire; fired: {fired:?}");
    }
}

#[test]
fn check_rules_on_the_shipped_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let summaries =
        check_rules(&dir).map_err(|e| e.iter().map(|e| e.to_string()).collect::<Vec<_>>());
    let lines: Vec<String> = summaries
        .unwrap_or_default()
        .iter()
        .map(|s| format!("{} [{}] {}", s.id, s.level, s.summary))
        .collect();
    assert_eq!(
        lines,
        vec![
            "b3be4efe-e2e7-4b17-93e4-bd85040f3de6 [high] confirms every match",
            "cd8d658a-9d19-4df5-a25f-ad33756564d4 [high] temporal [name, address] gte 2 by intel.event, source.ip within 10m",
            "f97e59f8-d7b9-47e8-818a-90eaa38c5617 [medium] value_count of log.source gte 2 by indicator within 1h",
            "d7a1c34b-8fee-4108-8389-8137af4da63c [medium] event_count gte 3 by indicator, host within 1h",
            "4ca31bf6-b6b4-464a-9861-2873642c418a [high] value_count of indicator gte 2 by intel.event within 1d",
        ]
    );
}

// ---------------------------------------------------------------------------------
// Validation errors: exact messages.

#[test]
fn rule_validation_errors() {
    let head = format!("title: t\nid: {ID}\nlevel: low\n");
    let corr = |body: &str| format!("{head}correlation:\n{body}");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown top-level field",
            format!("{head}colour: red\n"),
            "r.yml:4: colour: unknown field `colour`, expected one of `title`, `id`, `description`, `level`, `match`, `selectors`, `correlation`, `author`, `date`, `modified`, `status`, `references`, `falsepositives`",
        ),
        (
            "unknown correlation field",
            corr("  type: event_count\n  timespan: 1h\n  condition: {gte: 3}\n  window: 1h\n"),
            "r.yml:8: correlation.window: unknown field `window`, expected one of `type`, `group-by`, `timespan`, `condition`, `field`",
        ),
        (
            "unknown match field",
            format!("{head}match:\n  type: domain\n"),
            "r.yml:5: match.type: unknown field `type`, expected one of `types`, `sources`, `tags`, `categories`, `log-sources`",
        ),
        (
            "bad timespan unit",
            corr("  type: event_count\n  timespan: 10x\n  condition: {gte: 3}\n"),
            "r.yml:6: correlation.timespan: invalid timespan \"10x\": unknown unit \"x\" (use s, m, h, d or w)",
        ),
        (
            "timespan without unit",
            corr("  type: event_count\n  timespan: 10\n  condition: {gte: 3}\n"),
            "r.yml:6: correlation.timespan: invalid timespan 10: missing unit (s, m, h, d, w)",
        ),
        (
            "zero timespan",
            corr("  type: event_count\n  timespan: 0m\n  condition: {gte: 3}\n"),
            "r.yml:6: correlation.timespan: invalid timespan \"0m\": must be greater than zero",
        ),
        (
            "unknown group-by",
            corr("  type: event_count\n  group-by: [host, user.name]\n  timespan: 1h\n  condition: {gte: 3}\n"),
            "r.yml:6: correlation.group-by: cannot group by \"user.name\": expected any of indicator, intel.event, host, source.ip, destination.ip, log.source",
        ),
        (
            "temporal without selectors",
            corr("  type: temporal\n  timespan: 1h\n"),
            "r.yml:5: correlation.type: temporal needs at least two named selectors under `selectors`",
        ),
        (
            "temporal with one selector",
            format!("{head}selectors:\n  dns: {{types: domain}}\ncorrelation:\n  type: temporal\n  timespan: 1h\n"),
            "r.yml:4: selectors: temporal needs at least two named selectors under `selectors`",
        ),
        (
            "selectors without temporal",
            format!("{head}selectors:\n  a: {{types: domain}}\n  b: {{types: ip}}\n"),
            "r.yml:4: selectors: named selectors are only used by a temporal correlation",
        ),
        (
            "unknown condition operator",
            corr("  type: event_count\n  timespan: 1h\n  condition:\n    ge: 3\n"),
            "r.yml:8: correlation.condition: unknown operator `ge`, expected one of gte, gt, eq, lte, lt, field",
        ),
        (
            "condition that can never hold",
            corr("  type: event_count\n  timespan: 1h\n  condition:\n    gte: 5\n    lte: 3\n"),
            "r.yml:8: correlation.condition: can never hold: needs a count of at least 5 and at most 3",
        ),
        (
            "negative condition",
            corr("  type: event_count\n  timespan: 1h\n  condition:\n    gte: -3\n"),
            "r.yml:8: correlation.condition.gte: invalid type: integer `-3`, expected u64",
        ),
        (
            "condition that always holds",
            corr("  type: event_count\n  timespan: 1h\n  condition: {gte: 0}\n"),
            "r.yml:7: correlation.condition: gte 0 always holds: use gte 1",
        ),
        (
            "bare number as condition",
            corr("  type: event_count\n  timespan: 1h\n  condition: 3\n"),
            "r.yml:7: correlation.condition: invalid condition 3: give an operator, e.g. `gte: 3`",
        ),
        (
            "missing condition",
            corr("  type: event_count\n  timespan: 1h\n"),
            "r.yml:4: correlation.condition: missing: event_count needs e.g. `condition: {gte: 3}`",
        ),
        (
            "value_count without field",
            corr("  type: value_count\n  timespan: 1h\n  condition: {gte: 2}\n"),
            "r.yml:4: correlation.field: missing: value_count needs the `field` whose distinct values it counts",
        ),
        (
            "field on an event_count",
            corr("  type: event_count\n  timespan: 1h\n  field: host\n  condition: {gte: 2}\n"),
            "r.yml:7: correlation.field: only a value_count counts a field",
        ),
        (
            "counting a group-by field",
            corr("  type: value_count\n  group-by: host\n  field: host\n  timespan: 1h\n  condition: {gte: 2}\n"),
            "r.yml:7: correlation.field: host is also a group-by field: every group would count 1",
        ),
        (
            "unknown correlation type",
            corr("  type: temporal_ordered\n  timespan: 1h\n"),
            "r.yml:5: correlation.type: unknown variant `temporal_ordered`, expected one of `event_count`, `value_count`, `temporal`",
        ),
        (
            "unknown indicator type",
            format!("{head}match:\n  types: [domain, ipv5]\n"),
            "r.yml:5: match.types: unknown indicator type \"ipv5\": expected one of ipv4, ipv6, domain, hostname, url, md5, sha1, sha224, sha256, sha384, sha512, email, filename, literal, regkey, regkey_value, hash, ip",
        ),
        (
            "bad level",
            format!("title: t\nid: {ID}\nlevel: severe\n"),
            "r.yml:3: level: unknown variant `severe`, expected one of `informational`, `low`, `medium`, `high`, `critical`",
        ),
        (
            "id not a UUID",
            "title: t\nid: rule-1\nlevel: low\n".to_string(),
            "r.yml:2: id: \"rule-1\" is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
        ),
        (
            "missing id",
            "title: t\nlevel: low\n".to_string(),
            "r.yml:1: id: missing field `id`",
        ),
        (
            "empty title",
            format!("title: \"\"\nid: {ID}\nlevel: low\n"),
            "r.yml:1: title: must not be empty",
        ),
        (
            "YAML syntax",
            format!("title: t: u\nid: {ID}\nlevel: low\n"),
            "r.yml:1: invalid YAML: mapping values are not allowed in this context",
        ),
    ];
    for (name, text, want) in cases {
        let got = parse_rule("r.yml", &text)
            .map(|r| r.id)
            .map_err(|e| e.to_string());
        assert_eq!(got.err().as_deref(), Some(want), "{name}");
    }
}

#[test]
fn rule_errors_carry_file_line_and_field() {
    let e = parse_rule("rules/x.yml", &format!("title: t\nid: {ID}\nlevel: low\ncorrelation:\n  type: event_count\n  timespan: 5y\n  condition: {{gte: 2}}\n"));
    match e {
        Err(RuleError::Invalid {
            origin,
            line,
            field,
            ..
        }) => {
            assert_eq!(
                (origin.as_str(), line, field.as_str()),
                ("rules/x.yml", Some(6), "correlation.timespan")
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// Directories.

#[test]
fn load_rules_from_a_directory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("write: {e}"))
    };
    let r = |id: &str, title: &str| format!("title: {title}\nid: {id}\nlevel: low\n");
    write(
        "b.yaml",
        &r("00000000-0000-4000-8000-00000000000b", "second"),
    );
    write("a.yml", &r("00000000-0000-4000-8000-00000000000a", "first"));
    write("notes.txt", "not a rule");
    std::fs::create_dir(dir.path().join("warninglists")).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let titles =
        load_rules(dir.path()).map(|rs| rs.into_iter().map(|r| r.title).collect::<Vec<_>>());
    assert_eq!(
        titles.ok(),
        Some(vec!["first".to_string(), "second".to_string()])
    );

    // Every error is reported, each with its file; a duplicate id names both files.
    write("c.yml", &r("00000000-0000-4000-8000-00000000000a", "dup"));
    write(
        "d.yml",
        "title: t\nid: 00000000-0000-4000-8000-00000000000d\nlevel: loud\n",
    );
    let errors: Vec<String> = match check_rules(dir.path()) {
        Ok(s) => panic!("expected errors, got {s:?}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    };
    let p = |f: &str| dir.path().join(f).display().to_string();
    assert_eq!(
        errors,
        vec![
            format!(
                "{}:2: id: duplicate id 00000000-0000-4000-8000-00000000000a: also used by {}",
                p("c.yml"),
                p("a.yml")
            ),
            format!(
                "{}:3: level: unknown variant `loud`, expected one of `informational`, `low`, `medium`, `high`, `critical`",
                p("d.yml")
            ),
        ]
    );

    let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let err = load_rules(empty.path())
        .err()
        .map(|e| e.iter().map(|e| e.to_string()).collect::<Vec<_>>());
    assert_eq!(
        err,
        Some(vec![format!(
            "{}: no rule files (*.yml, *.yaml)",
            empty.path().display()
        )])
    );

    let missing = dir.path().join("nope");
    assert!(matches!(
        load_rules(&missing).as_ref().map_err(|e| e.as_slice()),
        Err([RuleError::Read { .. }])
    ));
}

/// A line that names no host gets none: not its file path (one client spread over
/// three files was "3 distinct hosts"), so rules that count or group by host skip it.
#[test]
fn line_without_host_falls_back_to_its_file_path() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("hosts.yml"),
        "title: One indicator from three distinct hosts\nid: 0b6c9f0e-5f1c-4c36-9d55-7a5f6c1e2d3a\n\
         level: high\ncorrelation:\n  type: value_count\n  field: host\n  group-by: [indicator]\n  \
         timespan: 1h\n  condition:\n    gte: 3\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("repeated.yml"),
        "title: One indicator three times on one host\nid: 5d0f4b1e-8c2a-4f7e-a1b9-3e6d2c4f5a7b\n\
         level: medium\ncorrelation:\n  type: event_count\n  group-by: [indicator, host]\n  \
         timespan: 1h\n  condition:\n    gte: 3\n",
    )
    .unwrap();
    let intel = dir.path().join("iocs.txt");
    std::fs::write(&intel, "evil.example\n").unwrap();
    let mut logs = Vec::new();
    for (i, name) in ["a.log", "b.log", "c.log"].iter().enumerate() {
        let p = dir.path().join(name);
        // JSON lines without a host field: one client, three files.
        let mut text = String::new();
        for k in 0..3 {
            text.push_str(&format!(
                "{{\"@timestamp\":\"2024-05-01T10:0{i}:0{k}Z\",\"query\":\"evil.example\"}}\n"
            ));
        }
        std::fs::write(&p, text).unwrap();
        logs.push(p);
    }
    let hunt = |logs: &[std::path::PathBuf]| -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tripline"))
            .args(["hunt", "-q", "--no-default-warninglists", "--intel"])
            .arg(&intel)
            .arg("--rules")
            .arg(&rules)
            .args(logs)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stdout = hunt(&logs);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 9, "{stdout}");
    let confirmations: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|a| a["event"]["kind"] == "alert")
        .collect();
    assert!(confirmations.is_empty(), "{confirmations:?}");
    // The same lines with a host do confirm both rules (the rules work).
    for (i, p) in logs.iter().enumerate() {
        let mut text = String::new();
        for k in 0..3 {
            text.push_str(&format!(
                "{{\"@timestamp\":\"2024-05-01T10:0{i}:0{k}Z\",\"host\":\"ws{i}\",\"query\":\"evil.example\"}}\n"
            ));
        }
        std::fs::write(p, text).unwrap();
    }
    let stdout = hunt(&logs);
    let kinds: Vec<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|a| a["event"]["kind"] == "alert")
        .map(|a| a["rule"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        kinds.iter().any(|k| k.contains("three distinct hosts")),
        "{stdout}"
    );
    assert!(kinds.iter().any(|k| k.contains("three times")), "{stdout}");
}

/// Observations without the field a rule groups by are skipped and counted
/// (`tripline_rule_observations_unkeyed_total`), never grouped under a made-up value.
#[test]
fn observations_without_a_host_are_counted_as_unkeyed() {
    let r = correlation("event_count", "[indicator, host]", "1h", "{gte: 2}");
    let mut engine = Engine::new(vec![r]);
    let input = vec![
        obs("10:00:00", "evil.example").host(None),
        obs("10:00:01", "evil.example").host(None),
        obs("10:00:02", "evil.example").host(Some("ws1")),
        obs("10:00:03", "evil.example").host(Some("ws1")),
    ];
    let (at, _) = run(&mut engine, input);
    assert_eq!(at, [3], "only the two lines with a host confirm");
    assert_eq!(engine.unkeyed(), 2);
    assert_eq!(engine.stats().unkeyed, 2);
}

/// `tripline run --stdin` correlates in event time as `tripline hunt` does: three
/// hits four weeks apart in a backlog do not confirm "3 within an hour" in either
/// (the sidecar used to, by arrival time); a burst within the hour confirms in both,
/// with the same first and last times.
#[test]
fn defect_12_sidecar_and_hunt_confirm_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let rules = p.join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("three.yml"),
        "title: Three times within an hour\nid: 2c7e9a41-6b0d-4f3e-8a15-9d2b7c4e6f80\nlevel: high\n\
         correlation:\n  type: event_count\n  group-by: [indicator, host]\n  timespan: 1h\n  \
         condition:\n    gte: 3\n",
    )
    .unwrap();
    let intel = p.join("iocs.txt");
    std::fs::write(&intel, "slow.example\nburst.example\n").unwrap();
    let mut log = String::new();
    for day in ["01", "08", "15", "22", "29"] {
        log.push_str(&format!(
            "2024-04-{day}T09:00:00Z web01 named[7]: query: slow.example IN A\n"
        ));
    }
    for m in ["10", "25", "40"] {
        log.push_str(&format!(
            "2024-05-01T10:{m}:00Z web01 named[7]: query: burst.example IN A\n"
        ));
    }
    let logfile = p.join("dns.log");
    std::fs::write(&logfile, &log).unwrap();
    let confirmations = |stdout: &[u8]| -> Vec<(String, String, String)> {
        let mut v: Vec<(String, String, String)> = String::from_utf8_lossy(stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|a| a["event"]["kind"] == "alert")
            .map(|a| {
                let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
                (
                    s(&a["threat"]["enrichments"][0]["indicator"]["name"]),
                    s(&a["event"]["start"]),
                    s(&a["event"]["end"]),
                )
            })
            .collect();
        v.sort();
        v
    };
    let hunt = std::process::Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["hunt", "-q", "--no-default-warninglists", "--intel"])
        .arg(&intel)
        .arg("--rules")
        .arg(&rules)
        .arg(&logfile)
        .output()
        .unwrap();
    assert!(
        hunt.status.success(),
        "{}",
        String::from_utf8_lossy(&hunt.stderr)
    );
    let config = p.join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [{:?}]\nno_default_warninglists = true\n[rules]\ndir = {:?}\n\
             [metrics]\naddress = \"127.0.0.1:0\"\n[state]\ndir = {:?}\n",
            intel.display().to_string(),
            rules.display().to_string(),
            p.join("state").display().to_string()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["run", "--stdin", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(log.as_bytes()).unwrap();
    }
    let run = child.wait_with_output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let want = vec![(
        "burst.example".to_string(),
        "2024-05-01T10:10:00Z".to_string(),
        "2024-05-01T10:40:00Z".to_string(),
    )];
    assert_eq!(confirmations(&hunt.stdout), want, "hunt");
    assert_eq!(confirmations(&run.stdout), want, "run --stdin");
}
