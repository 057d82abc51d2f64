//! Expiry and decay (issue 11, point 4) through the real binary and the real outbox:
//! STIX `revoked` and `valid_until`, MISP `deleted` (attribute, object, event), MISP
//! polynomial decay crossing its threshold at the time the formula gives, per-kind
//! lifetimes, the score alerts carry, and no positive sighting of decayed or
//! warninglisted intel.
//!
//! The clock is each log line's own time: `hunt` judges the intel at the time of the
//! line it matches, so lines one second either side of a computed crossing time show
//! the indicator matching, then not.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};
use tripline::index::build::{build_index, IntelPlan};
use tripline::index::WarninglistMode;
use tripline::intel::load::LoadOptions;
use tripline::intel::Kind;
use tripline::share::{DropReason, Outbox, State};

use crate::util::*;

/// MISP's NIDS Simple Decaying Model (the default `[intel.decay]`).
const LIFETIME_SECS: f64 = 120.0 * 86_400.0;
const DECAY_SPEED: f64 = 2.0;
const THRESHOLD: f64 = 30.0;
const DEFAULT_BASE: f64 = 80.0;

/// The real PyMISP test event with embedded sightings (fixtures/intel/SOURCES.txt).
const SIGHTED_EVENT: &str = "fixtures/intel/misp/pymisp-tests/sighting_1.json";

fn iso(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .expect("valid time")
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// When a score starting at `base` falls below the threshold: the model's
/// `score = base · (1 − (t/lifetime)^(1/decay_speed))` solved for `score = threshold`.
fn crossing(t0: i64, base: f64) -> i64 {
    t0 + (LIFETIME_SECS * (1.0 - THRESHOLD / base).powf(DECAY_SPEED)) as i64
}

/// `tripline hunt -q` over `lines` (each `ISO-time host message`): the alerts, by
/// their message.
fn hunt(dir: &Path, intel: &[&str], lines: &[String]) -> BTreeMap<String, Value> {
    let log = dir.join("events.log");
    std::fs::write(&log, lines.join("\n") + "\n").expect("log written");
    let mut args = vec!["hunt", "-q"];
    for i in intel {
        args.extend(["--intel", i]);
    }
    let log = log.to_string_lossy().into_owned();
    args.push(&log);
    let out = tripline(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "hunt failed: {stderr}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("an alert"))
        .map(|a| (a["message"].as_str().unwrap_or("").to_string(), a))
        .collect()
}

fn line(t: i64, what: &str) -> String {
    format!("{} fw01 {what}", iso(t))
}

#[test]
fn stix_revoked_never_matches_and_valid_until_and_lifetime_end_matching() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Generated test data: three STIX 2.1 indicators.
    let indicator = |id: &str, pattern: &str, extra: Value| {
        let mut o = json!({
            "type": "indicator", "spec_version": "2.1",
            "id": format!("indicator--{id}"),
            "created": "2024-04-01T00:00:00Z", "modified": "2024-04-01T00:00:00Z",
            "pattern": pattern, "pattern_type": "stix",
            "valid_from": "2024-04-01T00:00:00Z",
        });
        for (k, v) in extra.as_object().expect("object") {
            o[k] = v.clone();
        }
        o
    };
    let bundle = json!({
        "type": "bundle", "id": "bundle--6b1f7a52-7d0c-4a43-9a43-1f1f7c8e0a01",
        "objects": [
            indicator("0b6a3c5e-3a8e-4c55-9d52-1d1f3a0e6b01",
                "[ipv4-addr:value = '203.0.113.7']", json!({"revoked": true})),
            indicator("0b6a3c5e-3a8e-4c55-9d52-1d1f3a0e6b02",
                "[domain-name:value = 'expired.example']",
                json!({"valid_until": "2024-05-01T12:00:00Z"})),
            // No valid_until: the default 30-day lifetime of addresses.
            indicator("0b6a3c5e-3a8e-4c55-9d52-1d1f3a0e6b03",
                "[ipv4-addr:value = '198.51.100.23']", json!({})),
        ]
    });
    let path = dir.path().join("bundle.json");
    std::fs::write(&path, bundle.to_string()).expect("bundle written");
    let until = 1_714_564_800; // 2024-05-01T12:00:00Z
    let life_end = 1_711_929_600 + 30 * 86_400; // valid_from + 30 days
    let lines = [
        line(T0, "query=203.0.113.7 revoked"),
        line(until - 1, "query=expired.example before"),
        line(until, "query=expired.example at"),
        line(life_end - 1, "src=198.51.100.23 before"),
        line(life_end, "src=198.51.100.23 at"),
    ];
    let alerts = hunt(dir.path(), &[path.to_str().expect("utf-8")], &lines);
    let matched: Vec<&str> = alerts.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        matched,
        [lines[3].as_str(), lines[1].as_str()],
        "{alerts:#?}"
    );
}

#[test]
fn misp_deleted_attributes_objects_and_events_are_never_loaded() {
    require_python_module("pymisp", "pymisp");
    let dir = tempfile::tempdir().expect("tempdir");
    let intel = dir.path().join("intel");
    std::fs::create_dir_all(&intel).expect("intel dir");
    // Built with PyMISP: a deleted attribute, a soft-deleted object, a soft-deleted
    // event, and one live attribute.
    let script = r#"
import sys
from pymisp import MISPEvent, MISPObject
e = MISPEvent(); e.info = 'expiry test'
e.add_attribute('domain', 'kept.example', to_ids=True)
a = e.add_attribute('domain', 'deleted.example', to_ids=True); a.deleted = True
o = MISPObject('domain-ip', standalone=False)
o.add_attribute('domain', value='objgone.example'); o.deleted = True
e.add_object(o)
open(sys.argv[1] + '/live.json', 'w').write(e.to_json())
g = MISPEvent(); g.info = 'soft-deleted event'
g.add_attribute('domain', 'evgone.example', to_ids=True); g.deleted = True
open(sys.argv[1] + '/gone.json', 'w').write(g.to_json())
"#;
    python(script, &[intel.to_str().expect("utf-8")]);
    let lines: Vec<String> = ["kept", "deleted", "objgone", "evgone"]
        .iter()
        .map(|d| line(T0, &format!("query={d}.example")))
        .collect();
    let alerts = hunt(dir.path(), &[intel.to_str().expect("utf-8")], &lines);
    assert_eq!(
        alerts.keys().collect::<Vec<_>>(),
        [&lines[0]],
        "{alerts:#?}"
    );
    // Counted by source and reason for the metrics.
    let built = build(&[&format!("community={}", intel.display())], false, None);
    let counts = built.lapsed_counts();
    assert_eq!(
        counts,
        [(("community".to_string(), "deleted"), 3)],
        "{counts:?}"
    );
}

#[test]
fn misp_decay_crosses_the_threshold_at_the_computed_time_and_alerts_carry_the_score() {
    let dir = tempfile::tempdir().expect("tempdir");
    // ooiasjdnqjwbeasdasd.com: timestamp 1533306058, a positive sighting at
    // 1551253950 (the decay counts from it). eqowiesajenqweasd.com: only a false
    // positive sighting, so the decay counts from its timestamp.
    let sighted = crossing(1_551_253_950, DEFAULT_BASE);
    let unsighted = crossing(1_533_306_058, DEFAULT_BASE);
    assert_eq!(sighted, 1_551_253_950 + 4_050_000, "46.875 days");
    let lines = [
        line(sighted - 1, "query=ooiasjdnqjwbeasdasd.com before"),
        line(sighted + 1, "query=ooiasjdnqjwbeasdasd.com after"),
        line(unsighted - 1, "query=eqowiesajenqweasd.com before"),
        line(unsighted + 1, "query=eqowiesajenqweasd.com after"),
        // Right at the sighting: the full base score.
        line(1_551_253_950, "query=ooiasjdnqjwbeasdasd.com fresh"),
    ];
    let alerts = hunt(dir.path(), &[SIGHTED_EVENT], &lines);
    let matched: Vec<&String> = alerts.keys().collect();
    let mut want = vec![&lines[0], &lines[2], &lines[4]];
    want.sort();
    assert_eq!(matched, want, "{alerts:#?}");
    let score = |l: &str| alerts[l]["tripline"]["enrichments"][0]["score"].as_f64();
    assert_eq!(score(&lines[4]), Some(DEFAULT_BASE));
    for l in [&lines[0], &lines[2]] {
        let s = score(l).expect("a score");
        assert!((THRESHOLD..THRESHOLD + 0.01).contains(&s), "{l}: {s}");
        let per_source = &alerts[l.as_str()]["tripline"]["enrichments"][0]["sources"][0]["score"];
        assert_eq!(per_source.as_f64(), Some(s));
    }
    // Intel that does not decay (a plain list) carries no score.
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "eqowiesajenqweasd.com\n").expect("list");
    let alerts = hunt(dir.path(), &[list.to_str().expect("utf-8")], &lines[3..4]);
    let e = &alerts[&lines[3]]["tripline"]["enrichments"][0];
    assert!(e.get("score").is_none(), "{e}");
}

/// The index as the sidecar builds it (`now` given: lapsed intel leaves it) or as a
/// hunt does.
fn build(specs: &[&str], drop_lapsed: bool, warninglist: Option<&Path>) -> tripline::index::Index {
    let plan = IntelPlan {
        specs: specs
            .iter()
            .map(|s| s.parse().expect("an intel spec"))
            .collect(),
        load: LoadOptions::default(),
        warninglists: warninglist.map(Path::to_path_buf).into_iter().collect(),
        no_default_warninglists: true,
        warninglist_mode: WarninglistMode::Flag,
        match_options: Default::default(),
        expiry: Default::default(),
        drop_lapsed,
    };
    build_index(&plan).expect("intel builds").index
}

#[test]
fn lapsed_intel_leaves_the_index_at_build_and_is_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The real event's domains decayed years ago: a build at "now" drops them.
    let spec = format!("pymisp={SIGHTED_EVENT}");
    let hunt_index = build(&[&spec], false, None);
    let live_index = build(&[&spec], true, None);
    let id = hunt_index
        .find_exact(Kind::Domain, "ooiasjdnqjwbeasdasd.com")
        .expect("indexed");
    assert!(!hunt_index.metas_of(id).is_empty());
    assert!(live_index.metas_of(id).is_empty());
    let decayed = live_index
        .lapsed_counts()
        .into_iter()
        .find(|((s, r), _)| s == "pymisp" && *r == "decayed")
        .map(|(_, n)| n);
    assert!(
        decayed.is_some_and(|n| n >= 3),
        "{:?}",
        live_index.lapsed_counts()
    );
    // As the sidecar publishes it.
    let metrics = tripline::sink::metrics::Metrics::new();
    tripline::run::intel::publish_index(&metrics, &live_index, &Vec::new());
    let body = metrics.render();
    let want = format!(
        "tripline_intel_expired{{intel_source=\"pymisp\",reason=\"decayed\"}} {}",
        decayed.unwrap_or(0)
    );
    assert!(body.lines().any(|l| l == want), "{want} not in\n{body}");
    drop(dir);
}

/// A MISP event (generated test data) whose attribute was last changed at `ts`.
fn misp_event(dir: &Path, name: &str, value: &str, ts: i64) -> String {
    let event = json!({"Event": {
        "uuid": E1, "info": "expiry", "distribution": "1",
        "Attribute": [{
            "uuid": A1, "type": "domain", "category": "Network activity",
            "value": value, "to_ids": true, "timestamp": ts.to_string(),
        }]
    }});
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, event.to_string()).expect("event written");
    format!("circl={}", path.display())
}

const A1: &str = "6f1a0c3e-2d4b-4c5a-9e8f-0a1b2c3d4e5f";
const E1: &str = "11111111-2222-4333-8444-555555555555";

fn stix_dir_config(dir: &Path) -> tripline::share::ShareConfig {
    config(&format!(
        "[[destinations]]\nname = \"circl\"\napproval = \"auto\"\n\
         [destinations.transport]\ntype = \"stix_dir\"\npath = \"{}\"\n",
        dir.join("out").display()
    ))
}

fn hit(value: &str) -> tripline::correlate::Confirmation {
    confirmation(
        "every-match",
        vec![obs(
            Utc::now().timestamp(),
            value,
            Kind::Domain,
            vec![prov("circl", Some(E1), Some(A1))],
        )],
    )
}

#[test]
fn no_positive_sighting_of_decayed_or_warninglisted_intel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = Utc::now().timestamp();
    let fresh = build(
        &[&misp_event(dir.path(), "fresh", "fresh.example", now)],
        false,
        None,
    );
    // Changed 60 days ago: below the threshold after 46.875 days.
    let stale = build(
        &[&misp_event(
            dir.path(),
            "stale",
            "fresh.example",
            now - 60 * 86_400,
        )],
        false,
        None,
    );
    let cfg = stix_dir_config(dir.path());

    // Queue time: the outbox reads the current intel before it records.
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox.set_intel(std::sync::Arc::new(stale));
    let outcome = outbox.record(&hit("fresh.example")).expect("record");
    assert_eq!(outcome.dropped, [(None, DropReason::Decayed)]);
    assert!(outbox.list(None).expect("list").is_empty());

    // Send time: queued while fresh, decayed by the time it leaves.
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox.set_intel(std::sync::Arc::new(fresh));
    outbox.record(&hit("fresh.example")).expect("record");
    let stale = build(
        &[&misp_event(
            dir.path(),
            "stale",
            "fresh.example",
            now - 60 * 86_400,
        )],
        false,
        None,
    );
    outbox.set_intel(std::sync::Arc::new(stale));
    let report = outbox.send_now().expect("send");
    assert_eq!((report.delivered, report.withheld), (0, 1), "{report:?}");
    let row = &outbox.list(Some(State::Withheld)).expect("list")[0];
    assert!(
        row.last_error.as_deref().unwrap_or("").contains("decayed"),
        "{:?}",
        row.last_error
    );
    let stats = outbox.stats().expect("stats");
    assert!(
        stats
            .dropped
            .iter()
            .any(|(r, n)| r.name() == "decayed" && *n == 1),
        "{:?}",
        stats.dropped
    );

    // The sidecar's index dropped the stale intel at build: still `decayed`, and a
    // false positive of it still goes back to its community.
    let stale_spec = misp_event(dir.path(), "stale", "fresh.example", now - 60 * 86_400);
    let dropped = build(&[&stale_spec], true, None);
    let id = dropped
        .find_exact(Kind::Domain, "fresh.example")
        .expect("indexed");
    assert!(dropped.metas_of(id).is_empty(), "never matched");
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox.record(&hit("fresh.example")).expect("record");
    outbox
        .queue_false_positive(
            "fresh.example",
            Kind::Domain,
            None,
            &[prov("circl", Some(E1), Some(A1))],
        )
        .expect("false positive queued");
    outbox.set_intel(std::sync::Arc::new(dropped));
    let report = outbox.send_now().expect("send");
    assert_eq!((report.delivered, report.withheld), (1, 1), "{report:?}");
    let row = &outbox.list(Some(State::Withheld)).expect("list")[0];
    assert_eq!(
        row.sighting.sighting_type,
        tripline::share::SightingType::Sighting
    );
    assert!(
        row.last_error.as_deref().unwrap_or("").contains("decayed"),
        "{:?}",
        row.last_error
    );

    // Warninglisted (kept and marked under flag mode): never sighted.
    let list = dir.path().join("warn.json");
    std::fs::write(
        &list,
        json!({"name": "known good", "type": "hostname", "list": ["fresh.example"]}).to_string(),
    )
    .expect("warninglist");
    let listed = build(
        &[&misp_event(dir.path(), "listed", "fresh.example", now)],
        false,
        Some(&list),
    );
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox.set_intel(std::sync::Arc::new(listed));
    let outcome = outbox.record(&hit("fresh.example")).expect("record");
    assert_eq!(outcome.dropped, [(None, DropReason::Warninglisted)]);

    // And fresh, not listed: it leaves.
    let fresh = build(
        &[&misp_event(dir.path(), "fresh", "fresh.example", now)],
        false,
        None,
    );
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox.set_intel(std::sync::Arc::new(fresh));
    outbox.record(&hit("fresh.example")).expect("record");
    assert_eq!(outbox.send_now().expect("send").delivered, 1);
}

/// `hunt --config` judges with the configuration's `[intel.decay]` and
/// `[intel.lifetimes]`: both off, the decayed domain matches again; a shorter decay
/// lifetime ends it sooner.
#[test]
fn hunt_with_config_uses_its_decay_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sighted = crossing(1_551_253_950, DEFAULT_BASE);
    let lines = [
        line(sighted + 1, "query=ooiasjdnqjwbeasdasd.com after"),
        line(
            1_551_253_950 + 86_400,
            "query=ooiasjdnqjwbeasdasd.com next-day",
        ),
    ];
    let log = dir.path().join("events.log");
    std::fs::write(&log, lines.join("\n") + "\n").expect("log written");
    let run = |decay: &str| {
        let config = dir.path().join("tripline.toml");
        std::fs::write(
            &config,
            format!(
                "[intel]\npaths = [\"{SIGHTED_EVENT}\"]\n{decay}\n[state]\ndir = {:?}\n",
                dir.path().join("state").display().to_string()
            ),
        )
        .expect("config written");
        let out = tripline(&[
            "hunt",
            "-q",
            "--config",
            config.to_str().expect("utf-8"),
            log.to_str().expect("utf-8"),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        lines
            .iter()
            .map(|l| text.contains(l.as_str()))
            .collect::<Vec<bool>>()
    };
    assert_eq!(run(""), [false, true]);
    // Decay off: the domain lifetime (180 days from the 2018 timestamp) would still
    // end it; with that off too, it matches.
    assert_eq!(run("[intel.decay]\nenabled = false"), [false, false]);
    assert_eq!(
        run("[intel.decay]\nenabled = false\n[intel.lifetimes]\ndomain_days = 0"),
        [true, true]
    );
    // One day's lifetime: gone the next day.
    assert_eq!(
        run("[intel.decay.overrides.domain]\nlifetime_days = 1"),
        [false, false]
    );
}

/// `intel lookup` judges a value as matching would: at a given time (`--at`, the time
/// of a log line; default now), with the configuration's decay settings, and says
/// why a source does not match then (decayed with its score, lifetime, valid_until).
/// Checked on either side of the computed crossing, against what `hunt --config`
/// does with lines of those times.
#[test]
fn intel_lookup_explains_decay_as_hunt_judges_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [\"{SIGHTED_EVENT}\"]\n[state]\ndir = {:?}\n",
            dir.path().join("state").display().to_string()
        ),
    )
    .expect("config written");
    let c = config.to_str().expect("utf-8");
    let sighted = crossing(1_551_253_950, DEFAULT_BASE);
    let lookup = |at: Option<i64>| {
        let at = at.map(iso);
        let mut args = vec!["intel", "--config", c, "--json", "lookup"];
        if let Some(t) = &at {
            args.extend(["--at", t.as_str()]);
        }
        args.push("ooiasjdnqjwbeasdasd.com");
        let out = tripline(&args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
        });
        (out.status.code(), v)
    };
    let source = |v: &Value| v["hits"][0]["sources"][0].clone();
    let (code, before) = lookup(Some(sighted - 1));
    assert_eq!(code, Some(0), "{before:#}");
    let s = source(&before);
    assert_eq!(s["matched"], true, "{s}");
    let score = s["score"].as_f64().expect("a score");
    assert!((THRESHOLD..THRESHOLD + 0.01).contains(&score), "{s}");
    let (code, after) = lookup(Some(sighted + 1));
    assert_eq!(code, Some(1), "{after:#}");
    let s = source(&after);
    assert_eq!(s["matched"], false, "{s}");
    assert_eq!(s["lapse"], "decayed", "{s}");
    assert!(
        s["reason"].as_str().is_some_and(|r| r.contains("decayed")),
        "{s}"
    );
    // Now (years later): decayed too, as the sidecar would judge a line of today.
    let (code, now) = lookup(None);
    assert_eq!(code, Some(1), "{now:#}");
    assert_eq!(source(&now)["lapse"], "decayed");
    // hunt --config agrees on lines of those two times.
    let lines = [
        line(sighted - 1, "query=ooiasjdnqjwbeasdasd.com before"),
        line(sighted + 1, "query=ooiasjdnqjwbeasdasd.com after"),
    ];
    let log = dir.path().join("events.log");
    std::fs::write(&log, lines.join("\n") + "\n").expect("log written");
    let out = tripline(&["hunt", "-q", "--config", c, log.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(lines[0].as_str()), "{text}");
    assert!(!text.contains(lines[1].as_str()), "{text}");
}
