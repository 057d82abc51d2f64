//! Sharing back, without servers: policy tables, window aggregation, outbox states,
//! exports (checked with PyMISP and stix2-validator), STIX bundles in a directory,
//! configuration errors.

use std::collections::BTreeMap;

use crate::util::*;
use chrono::Utc;
use serde_json::Value;
use tripline::intel::{Kind, Tlp};
use tripline::share::{
    preview, DropReason, ExportFormat, Outbox, OutboxError, Router, Selection, ShareConfig,
    SightingType, State, Target,
};

const A1: &str = "6f1a0c3e-2d4b-4c5a-9e8f-0a1b2c3d4e5f";
const A2: &str = "7a2b1d4f-3e5c-4d6b-8f9a-1b2c3d4e5f60";
const E1: &str = "11111111-2222-4333-8444-555555555555";
const E2: &str = "22222222-3333-4444-8555-666666666666";

/// Two communities: `circl` (MISP) and `cert` (STIX bundles), with `extra` keys for
/// `circl`.
fn two_communities(extra: &str, dir: &str) -> ShareConfig {
    config(&format!(
        r#"
source_name = "ACME SOC"
[[destinations]]
name = "circl"
{extra}
[destinations.transport]
type = "misp"
url = "http://127.0.0.1:9"
api_key_file = "/nonexistent/key"
[[destinations]]
name = "cert"
intel_sources = ["cert-feed", "cert-misp"]
approval = "auto"
[destinations.transport]
type = "stix_dir"
path = "{dir}"
"#
    ))
}

type Routed = (Vec<(String, Target)>, Vec<(Option<String>, DropReason)>);

/// `(destination, target)` pairs routed, and the drops, for one observation.
fn route(cfg: &ShareConfig, provs: Vec<tripline::correlate::Provenance>) -> Routed {
    let c = confirmation("r1", vec![obs(T0, "evil.example", Kind::Domain, provs)]);
    let routing = Router::new(cfg).expect("valid config").route(&c);
    let routed = routing
        .routed
        .iter()
        .map(|r| (r.sighting.destination.clone(), r.sighting.target.clone()))
        .collect();
    (routed, routing.dropped)
}

fn attr(a: &str) -> Target {
    Target::Attribute(a.to_string())
}

#[test]
fn policy_table() {
    type Case = (
        &'static str,
        &'static str,
        Vec<tripline::correlate::Provenance>,
        Vec<(&'static str, Target)>,
        Vec<DropReason>,
    );
    let p = |src: &str| prov(src, Some(E1), Some(A1));
    let cases: Vec<Case> = vec![
        (
            "untagged intel counts as amber: shared",
            "",
            vec![p("circl")],
            vec![("circl", attr(A1))],
            vec![],
        ),
        (
            "tlp:red never leaves by default",
            "",
            vec![with_tlp(p("circl"), Some(Tlp::Red))],
            vec![],
            vec![DropReason::Tlp],
        ),
        (
            "tlp:red leaves when configured",
            r#"max_tlp = "red""#,
            vec![with_tlp(p("circl"), Some(Tlp::Red))],
            vec![("circl", attr(A1))],
            vec![],
        ),
        (
            "amber+strict is under the default ceiling",
            "",
            vec![with_tlp(p("circl"), Some(Tlp::AmberStrict))],
            vec![("circl", attr(A1))],
            vec![],
        ),
        (
            "white reads as clear",
            r#"max_tlp = "white""#,
            vec![with_tlp(p("circl"), Some(Tlp::Clear))],
            vec![("circl", attr(A1))],
            vec![],
        ),
        (
            "green above a clear ceiling",
            r#"max_tlp = "clear""#,
            vec![with_tlp(p("circl"), Some(Tlp::Green))],
            vec![],
            vec![DropReason::Tlp],
        ),
        (
            "untagged above a green ceiling (default amber)",
            r#"max_tlp = "green""#,
            vec![p("circl")],
            vec![],
            vec![DropReason::Tlp],
        ),
        (
            "untagged with default_tlp green under a green ceiling",
            "max_tlp = \"green\"\ndefault_tlp = \"tlp:green\"",
            vec![p("circl")],
            vec![("circl", attr(A1))],
            vec![],
        ),
        (
            "distribution 0 stays local",
            "",
            vec![with_distribution(p("circl"), Some(0))],
            vec![],
            vec![DropReason::Distribution],
        ),
        (
            "distribution 0 shared when configured",
            "share_organisation_only = true",
            vec![with_distribution(p("circl"), Some(0))],
            vec![("circl", attr(A1))],
            vec![],
        ),
        (
            "distribution 1 is shared",
            "",
            vec![with_distribution(p("circl"), Some(1))],
            vec![("circl", attr(A1))],
            vec![],
        ),
        (
            "unknown community: nowhere",
            "",
            vec![p("someone-else")],
            vec![],
            vec![DropReason::NoDestination],
        ),
        (
            "MISP by value, restricted to the event",
            "",
            vec![prov("circl", Some(E1), None)],
            vec![(
                "circl",
                Target::Value {
                    event_uuids: vec![E1.into()],
                },
            )],
            vec![],
        ),
        (
            "MISP with neither uuid: nothing (could touch another community)",
            "",
            vec![prov("circl", None, None)],
            vec![],
            vec![DropReason::NoTarget],
        ),
        (
            "STIX without ids: by value",
            "",
            vec![prov("cert-feed", None, None)],
            vec![(
                "cert",
                Target::Value {
                    event_uuids: vec![],
                },
            )],
            vec![],
        ),
        (
            "intel_sources map feeds to a destination",
            "",
            vec![prov("cert-misp", Some(E2), Some(A2))],
            vec![("cert", attr(A2))],
            vec![],
        ),
        (
            "a STIX indicator id goes bare to MISP",
            "",
            vec![prov("circl", Some(E1), Some(&format!("indicator--{A1}")))],
            vec![("circl", attr(A1))],
            vec![],
        ),
        (
            "overlap: one sighting per community that allows it",
            "",
            vec![
                p("circl"),
                prov("cert-feed", Some(E2), Some(A2)),
                p("other"),
            ],
            vec![("circl", attr(A1)), ("cert", attr(A2))],
            vec![DropReason::NoDestination],
        ),
        (
            "overlap: red at one community, clear at the other",
            "",
            vec![
                with_tlp(p("circl"), Some(Tlp::Red)),
                with_tlp(prov("cert-feed", Some(E2), Some(A2)), Some(Tlp::Clear)),
            ],
            vec![("cert", attr(A2))],
            vec![DropReason::Tlp],
        ),
        (
            "two attributes of one community: one sighting each",
            "",
            vec![p("circl"), prov("circl", Some(E2), Some(A2))],
            vec![("circl", attr(A1)), ("circl", attr(A2))],
            vec![],
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, extra, provs, want, want_dropped) in cases {
        let cfg = two_communities(extra, &dir.path().display().to_string());
        let (got, dropped) = route(&cfg, provs);
        let want: Vec<(String, Target)> =
            want.into_iter().map(|(d, t)| (d.to_string(), t)).collect();
        assert_eq!(got, want, "case {name:?}: routed");
        let dropped: Vec<DropReason> = dropped.into_iter().map(|(_, r)| r).collect();
        assert_eq!(dropped, want_dropped, "case {name:?}: dropped");
    }
}

#[test]
fn anonymise_and_source_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    for (extra, want) in [
        ("", Some("ACME SOC")),
        (r#"source_name = "ACME for CIRCL""#, Some("ACME for CIRCL")),
        ("anonymise = true", None),
    ] {
        let cfg = two_communities(extra, &d);
        let c = confirmation(
            "r1",
            vec![obs(
                T0,
                "evil.example",
                Kind::Domain,
                vec![prov("circl", Some(E1), Some(A1))],
            )],
        );
        let routing = Router::new(&cfg).expect("config").route(&c);
        assert_eq!(
            routing.routed[0].sighting.source.as_deref(),
            want,
            "{extra}"
        );
    }
}

#[test]
fn approval_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = two_communities("", &dir.path().display().to_string());
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    let c = confirmation(
        "r1",
        vec![obs(
            T0,
            "evil.example",
            Kind::Domain,
            vec![
                prov("circl", Some(E1), Some(A1)),
                prov("cert-feed", None, None),
            ],
        )],
    );
    outbox.record(&c).expect("record");
    let states: BTreeMap<String, State> = outbox
        .list(None)
        .expect("list")
        .into_iter()
        .map(|e| (e.sighting.destination, e.state))
        .collect();
    assert_eq!(
        states["circl"],
        State::PendingApproval,
        "manual is the default"
    );
    assert_eq!(states["cert"], State::Queued, "auto");
    for (extra, want) in [
        ("approval = \"manual\"", State::PendingApproval),
        ("approval = \"auto\"", State::Queued),
    ] {
        let cfg = two_communities(extra, &dir.path().display().to_string());
        let outbox = Outbox::in_memory(&cfg).expect("outbox");
        outbox.record(&c).expect("record");
        assert_eq!(outbox.list(None).expect("list")[0].state, want, "{extra}");
    }
}

#[test]
fn one_sighting_per_indicator_destination_and_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = two_communities("", &dir.path().display().to_string());
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    let p = || vec![prov("circl", Some(E1), Some(A1))];
    // Three hits in the first hour, one in the second.
    let hits = vec![
        obs(T0 + 10, "evil.example", Kind::Domain, p()),
        obs(T0 + 20, "evil.example", Kind::Domain, p()),
        obs(T0 + 3000, "evil.example", Kind::Domain, p()),
        obs(T0 + 3700, "evil.example", Kind::Domain, p()),
    ];
    let first = outbox
        .record(&confirmation("three-in-an-hour", hits.clone()))
        .expect("record");
    assert_eq!((first.created, first.merged), (2, 2));
    // Another rule confirming the same hits adds nothing.
    let again = outbox
        .record(&confirmation("any-match", hits[..2].to_vec()))
        .expect("record");
    assert_eq!((again.created, again.merged, again.duplicates), (0, 0, 2));
    // A new hit in the first window widens it.
    outbox
        .record(&confirmation(
            "any-match",
            vec![obs(T0 + 5, "evil.example", Kind::Domain, p())],
        ))
        .expect("record");
    let rows = outbox.list(None).expect("list");
    let got: Vec<(u64, i64, i64)> = rows
        .iter()
        .map(|e| {
            (
                e.sighting.count,
                e.sighting.first_seen.timestamp(),
                e.sighting.last_seen.timestamp(),
            )
        })
        .collect();
    assert_eq!(got, vec![(4, T0 + 5, T0 + 3000), (1, T0 + 3700, T0 + 3700)]);
    assert_eq!(rows[0].window_start.timestamp(), T0);
    assert_eq!(rows[0].window_end.timestamp(), T0 + 3600);

    // A one-minute window splits the same hits.
    let cfg = two_communities("window_secs = 60", &dir.path().display().to_string());
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox.record(&confirmation("r", hits)).expect("record");
    let counts: Vec<u64> = outbox
        .list(None)
        .expect("list")
        .iter()
        .map(|e| e.sighting.count)
        .collect();
    assert_eq!(counts, vec![2, 1, 1]);
}

#[test]
fn late_observations_stay_local() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("bundles");
    let cfg = two_communities("", &out_dir.display().to_string());
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    let p = || vec![prov("cert-feed", Some(E2), Some(A2))];
    outbox
        .record(&confirmation(
            "r",
            vec![obs(T0 + 1, "evil.example", Kind::Domain, p())],
        ))
        .expect("record");
    let report = outbox.deliver_due(Utc::now()).expect("deliver");
    assert_eq!(report.delivered, 1);
    let late = outbox
        .record(&confirmation(
            "r",
            vec![obs(T0 + 2, "evil.example", Kind::Domain, p())],
        ))
        .expect("record");
    assert_eq!(late.late, 1);
    let e = &outbox.list(None).expect("list")[0];
    assert_eq!(
        (e.state, e.sighting.count, e.late_count),
        (State::Sent, 1, 1)
    );
    assert_eq!(outbox.stats().expect("stats").late_observations, 1);
}

#[test]
fn approve_reject_and_their_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = two_communities("", &dir.path().join("b").display().to_string());
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    for (i, v) in ["a.example", "b.example", "c.example"].iter().enumerate() {
        outbox
            .record(&confirmation(
                "r",
                vec![obs(
                    T0 + i as i64,
                    v,
                    Kind::Domain,
                    vec![prov("circl", Some(E1), Some(A1))],
                )],
            ))
            .expect("record");
    }
    // Same attribute uuid, different values: three rows.
    let ids: Vec<i64> = outbox
        .list(Some(State::PendingApproval))
        .expect("list")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(outbox.approve(Selection::Id(ids[0])).expect("approve"), 1);
    outbox.reject(ids[1]).expect("reject");
    assert!(matches!(
        outbox.approve(Selection::Id(ids[1])),
        Err(OutboxError::BadState {
            state: State::Rejected,
            ..
        })
    ));
    assert!(matches!(
        outbox.reject(999),
        Err(OutboxError::NotFound { id: 999, .. })
    ));
    assert_eq!(outbox.approve(Selection::All).expect("approve all"), 1);
    let states: Vec<State> = outbox
        .list(None)
        .expect("list")
        .iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(states, vec![State::Queued, State::Rejected, State::Queued]);
    assert_eq!(outbox.list(Some(State::Rejected)).expect("list").len(), 1);
    // Exports show what would be shared: not the rejected row.
    let misp: Value =
        serde_json::from_str(&outbox.export(ExportFormat::Misp, None).expect("export"))
            .expect("json");
    assert_eq!(misp.as_array().map(Vec::len), Some(2));
}

#[test]
fn outbox_survives_reopening_in_wal_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = two_communities("", &dir.path().join("b").display().to_string());
    let state = dir.path().join("state");
    {
        let outbox = Outbox::open(&state, &cfg).expect("open");
        outbox
            .record(&confirmation(
                "r",
                vec![obs(
                    T0,
                    "evil.example",
                    Kind::Domain,
                    vec![prov("circl", Some(E1), Some(A1))],
                )],
            ))
            .expect("record");
    }
    let outbox = Outbox::open(&state, &cfg).expect("reopen");
    assert_eq!(outbox.list(None).expect("list").len(), 1);
    let conn = rusqlite::Connection::open(state.join("sightings.sqlite")).expect("sqlite");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
    // The same observation recorded after a restart still counts once.
    let again = outbox
        .record(&confirmation(
            "r",
            vec![obs(
                T0,
                "evil.example",
                Kind::Domain,
                vec![prov("circl", Some(E1), Some(A1))],
            )],
        ))
        .expect("record");
    assert_eq!(again.duplicates, 1);
}

#[test]
fn stix_dir_destination_writes_valid_bundles_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("bundles");
    let cfg = two_communities("", &out_dir.display().to_string());
    let outbox = Outbox::open(&dir.path().join("state"), &cfg).expect("open");
    let c = confirmation(
        "r",
        vec![
            obs(
                T0,
                "evil.example",
                Kind::Domain,
                vec![prov(
                    "cert-feed",
                    Some(E2),
                    Some(&format!("indicator--{A2}")),
                )],
            ),
            obs(
                T0 + 60,
                "evil.example",
                Kind::Domain,
                vec![prov(
                    "cert-feed",
                    Some(E2),
                    Some(&format!("indicator--{A2}")),
                )],
            ),
            obs(
                T0,
                "198.51.100.7",
                Kind::Ipv4,
                vec![prov("cert-feed", None, None)],
            ),
        ],
    );
    outbox.record(&c).expect("record");
    let first = outbox.deliver_due(Utc::now()).expect("deliver");
    assert_eq!(first.delivered, 2);
    assert_eq!(
        outbox.send_now().expect("again"),
        Default::default(),
        "nothing left to send"
    );
    let files: Vec<_> = std::fs::read_dir(&out_dir)
        .expect("bundles")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let mut sightings = Vec::new();
    for f in &files {
        stix_validate(f);
        let b: Value = serde_json::from_slice(&std::fs::read(f).expect("read")).expect("json");
        assert_no_secrets(&f.display().to_string(), &b.to_string());
        for o in b["objects"].as_array().expect("objects") {
            if o["type"] == "sighting" {
                sightings.push(o.clone());
            }
        }
    }
    sightings.sort_by_key(|s| s["count"].as_u64());
    let domain = &sightings[1];
    assert_eq!(domain["count"], 2);
    assert_eq!(domain["sighting_of_ref"], format!("indicator--{A2}"));
    assert_eq!(domain["first_seen"], "2024-05-01T00:00:00.000Z");
    assert_eq!(domain["last_seen"], "2024-05-01T00:01:00.000Z");
    assert!(sightings[0]["sighting_of_ref"]
        .as_str()
        .is_some_and(|r| r.starts_with("indicator--")));
}

#[test]
fn exports_validate_with_pymisp_and_stix2_validator() {
    require_python_module("pymisp", "pymisp");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = two_communities("", &dir.path().join("b").display().to_string());
    let c = confirmation(
        "r",
        vec![
            obs(
                T0,
                "evil.example",
                Kind::Domain,
                vec![prov("circl", Some(E1), Some(A1))],
            ),
            obs(
                T0,
                "bad.example",
                Kind::Domain,
                vec![prov("circl", Some(E1), None)],
            ),
            obs(
                T0,
                "mallory@evil.example",
                Kind::Email,
                vec![prov("cert-feed", None, None)],
            ),
        ],
    );
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox.record(&c).expect("record");
    let fp = outbox
        .queue_false_positive(
            "fp.example",
            Kind::Domain,
            Some("jdoe@corp.internal says it is our CDN"),
            &[
                prov("circl", Some(E1), Some(A2)),
                prov("cert-feed", None, None),
            ],
        )
        .expect("false positive");
    assert_eq!(fp.created, 2);
    let rows = outbox.list(None).expect("list");
    assert!(rows
        .iter()
        .any(|e| e.sighting.sighting_type == SightingType::FalsePositive
            && e.note.as_deref() == Some("jdoe@corp.internal says it is our CDN")));

    let misp = outbox
        .export(ExportFormat::Misp, None)
        .expect("misp export");
    let misp_file = dir.path().join("misp.json");
    std::fs::write(&misp_file, &misp).expect("write");
    let checked = python(
        r#"
import json, sys
from pymisp import MISPSighting
payloads = json.load(open(sys.argv[1]))
for p in payloads:
    s = MISPSighting()
    s.from_dict(**p)
    d = s.to_dict()
    assert d.get("type") in ("0", "1", "2"), d
    assert ("uuid" in d) != ("value" in d), d
    assert "uuid" in d or d["filters"]["uuid"], d
    assert str(d["timestamp"]).isdigit() and d["date_sighting"] == d["timestamp"], d
    assert set(d) <= {"uuid", "value", "filters", "type", "source", "timestamp", "date_sighting"}, d
print("pymisp ok", len(payloads))
"#,
        &[misp_file.to_str().expect("path")],
    );
    // The two rows for cert-feed's value without event ids cannot go to a MISP safely.
    assert!(checked.contains("pymisp ok 3"), "{checked}");
    let v: Value = serde_json::from_str(&misp).expect("json");
    let by_value = v
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["value"] == "bad.example")
        .expect("by value");
    assert_eq!(by_value["filters"]["uuid"][0], E1);

    let stix = outbox
        .export(ExportFormat::Stix, None)
        .expect("stix export");
    let stix_file = dir.path().join("bundle.json");
    std::fs::write(&stix_file, &stix).expect("write");
    stix_validate(&stix_file);
    let b: Value = serde_json::from_str(&stix).expect("json");
    let types: Vec<&str> = b["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|o| o["type"].as_str())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "identity").count(),
        1,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| **t == "opinion").count(),
        2,
        "{types:?}"
    );
    for text in [&misp, &stix] {
        assert!(!text.contains("our CDN"), "an analyst's reason stays local");
    }

    // The hunt preview renders the same without an outbox of its own.
    let p = preview(&cfg, &[c], ExportFormat::Misp).expect("preview");
    let p: Value = serde_json::from_str(&p).expect("json");
    assert_eq!(p.as_array().map(Vec::len), Some(2));
}

#[test]
fn config_errors_name_the_key() {
    let bad = [
        ("[[destinations]]\nname = \"x\"\nwindow = 5\n[destinations.transport]\ntype = \"stix_dir\"\npath = \"/tmp/x\"\n", "unknown field `window`"),
        ("[[destinations]]\nname = \"x\"\nmax_tlp = \"purple\"\n[destinations.transport]\ntype = \"stix_dir\"\npath = \"/tmp/x\"\n", "unknown TLP \"purple\""),
        ("[[destinations]]\nname = \"x\"\n[destinations.transport]\ntype = \"smtp\"\n", "unknown variant `smtp`"),
        ("[[destinations]]\nname = \"x\"\n[destinations.transport]\ntype = \"misp\"\nurl = \"https://m\"\napi_key = \"k\"\n", "unknown field `api_key`"),
    ];
    for (text, want) in bad {
        let err = toml::from_str::<ShareConfig>(text)
            .expect_err(text)
            .to_string();
        assert!(err.contains(want), "{text}\ngot: {err}");
    }
    let invalid = [
        ("[[destinations]]\nname = \"x\"\n[destinations.transport]\ntype = \"misp\"\nurl = \"http://misp.example.org\"\napi_key_env = \"K\"\n", "transport.url"),
        ("[[destinations]]\nname = \"x\"\n[destinations.transport]\ntype = \"misp\"\nurl = \"https://m\"\n", "transport.api_key_env"),
        ("[[destinations]]\nname = \"x\"\nwindow_secs = 0\n[destinations.transport]\ntype = \"stix_dir\"\npath = \"/tmp\"\n", "window_secs"),
        ("[[destinations]]\nname = \"x\"\n[destinations.transport]\ntype = \"stix_dir\"\npath = \"/a\"\n[[destinations]]\nname = \"x\"\n[destinations.transport]\ntype = \"stix_dir\"\npath = \"/b\"\n", "name: used by another destination"),
        ("[[destinations]]\nname = \"x\"\n[destinations.transport]\ntype = \"taxii\"\napi_root = \"https://t/api/\"\ncollection_id = \"c\"\npassword_env = \"P\"\n", "transport.username"),
    ];
    for (text, want) in invalid {
        let cfg: ShareConfig = toml::from_str(text).expect(text);
        let err = cfg.validate().expect_err(text).to_string();
        assert!(err.contains(want), "{text}\ngot: {err}");
        assert!(err.contains("share.destinations["), "{err}");
    }
    // Defaults.
    let cfg: ShareConfig = toml::from_str("[[destinations]]\nname = \"x\"\n[destinations.transport]\ntype = \"stix_dir\"\npath = \"/tmp\"\n").expect("minimal");
    let d = &cfg.destinations[0];
    assert_eq!(cfg.source_name, "tripline");
    assert_eq!(
        (
            d.window_secs,
            d.max_tlp,
            d.default_tlp,
            d.share_organisation_only,
            d.anonymise
        ),
        (3600, Tlp::AmberStrict, Tlp::Amber, false, false)
    );
    assert_eq!(d.approval, tripline::share::Approval::Manual);
    assert_eq!(
        (d.retry_initial_secs, d.retry_max_secs, d.timeout_secs),
        (30, 3600, 30)
    );
    assert_eq!(ShareConfig::default().destinations.len(), 0);
}

#[test]
fn stats_count_rows_and_drops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = two_communities("", &dir.path().join("b").display().to_string());
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox
        .record(&confirmation(
            "r",
            vec![obs(
                T0,
                "evil.example",
                Kind::Domain,
                vec![
                    prov("circl", Some(E1), Some(A1)),
                    with_tlp(prov("cert-feed", None, None), Some(Tlp::Red)),
                    prov("nobody", None, None),
                ],
            )],
        ))
        .expect("record");
    let s = outbox.stats().expect("stats");
    assert_eq!(
        s.by_destination_state,
        vec![("circl".to_string(), State::PendingApproval, 1)]
    );
    assert_eq!(s.outbox_depth, 1);
    assert!(s.oldest_open.is_some());
    let dropped: BTreeMap<DropReason, u64> = s.dropped.into_iter().collect();
    assert_eq!(dropped[&DropReason::Tlp], 1);
    assert_eq!(dropped[&DropReason::NoDestination], 1);
    assert_eq!(dropped[&DropReason::Distribution], 0);
}
