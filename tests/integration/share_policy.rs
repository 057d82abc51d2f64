//! The sharing policy against real components (issue 10, leaks and bypasses): the
//! real binary over the real PyMISP test events and events built with PyMISP, the
//! outbox delivering to the fake MISP and to a STIX directory, `run --check` and
//! `sightings list`. One regression test per defect, named after it.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::util::*;
use crate::util::{root, tripline};
use chrono::{TimeZone, Utc};
use serde_json::Value;
use tripline::correlate::Provenance;
use tripline::intel::Kind;
use tripline::share::{IntelView, Outbox, Selection, State};

/// The real PyMISP test event (`tests/misp_event.json`, see fixtures/intel/SOURCES.txt):
/// distribution 0 (organisation only), its attributes distribution 5 (inherit the
/// event's), as MISP exports them.
const ORG_ONLY_EVENT: &str = "fixtures/intel/misp/pymisp-tests/misp_event.json";
/// Its URL attribute (`to_ids` false, hence `--include-non-ids`).
const ORG_ONLY_URL: &str = "http://fake.website.com/malware/is/here";
const ORG_ONLY_ATTR: &str = "575c8598-f1f0-4c16-a94a-0612c0a83866";

const A1: &str = "6f1a0c3e-2d4b-4c5a-9e8f-0a1b2c3d4e5f";
const E1: &str = "11111111-2222-4333-8444-555555555555";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A rule that confirms every match of these kinds (as `any-file-hash` does for
/// hashes), so one log line is one sighting candidate.
pub(crate) fn rules_dir(dir: &Path, kinds: &str) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::write(
        rules.join("every-match.yml"),
        format!(
            "title: Every match\nid: 5d0c7a7e-1f2b-4c3d-8e9f-a0b1c2d3e4f5\nlevel: high\n\
             match:\n  types: [{kinds}]\n"
        ),
    )
    .expect("rule written");
    rules
}

/// `tripline hunt` with the rule above, writing the MISP preview; returns it.
fn hunt_preview(dir: &Path, intel: &[String], log: &str, kinds: &str, extra: &[&str]) -> String {
    hunt_preview_and_summary(dir, intel, log, kinds, extra).0
}

/// [`hunt_preview`], and the summary the hunt printed.
fn hunt_preview_and_summary(
    dir: &Path,
    intel: &[String],
    log: &str,
    kinds: &str,
    extra: &[&str],
) -> (String, String) {
    let logs = dir.join("mail.log");
    std::fs::write(&logs, log).expect("log written");
    let out_path = dir.join("preview.json");
    let rules = rules_dir(dir, kinds);
    let mut args: Vec<String> = vec![
        "hunt".into(),
        "-o".into(),
        dir.join("alerts.jsonl").display().to_string(),
        "--include-non-ids".into(),
        "--no-default-warninglists".into(),
        "--rules".into(),
        rules.display().to_string(),
        "--sightings-out".into(),
        out_path.display().to_string(),
    ];
    for i in intel {
        args.push("--intel".into());
        args.push(i.clone());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(logs.display().to_string());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tripline(&argv);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    (
        std::fs::read_to_string(&out_path).expect("preview written"),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Builds a MISP event with PyMISP: `attrs` are (type, value, category, tags),
/// `event_tags` on the event; distribution 3 on the event, 5 on the attributes.
pub(crate) fn pymisp_event(
    path: &Path,
    event_uuid: &str,
    event_tags: &[&str],
    attrs: &[(&str, &str, &str, &[&str])],
) {
    let spec = serde_json::json!({
        "uuid": event_uuid,
        "tags": event_tags,
        "attributes": attrs.iter().map(|(t, v, c, tags)| serde_json::json!([t, v, c, tags])).collect::<Vec<_>>(),
    });
    let spec_path = path.with_extension("spec.json");
    std::fs::write(&spec_path, spec.to_string()).expect("spec written");
    python(
        r#"
import json, sys
from pymisp import MISPEvent
spec = json.load(open(sys.argv[1]))
ev = MISPEvent()
ev.info = "tripline policy test"
ev.uuid = spec["uuid"]
ev.distribution = 3
for t in spec["tags"]:
    ev.add_tag(t)
for ty, value, category, tags in spec["attributes"]:
    a = ev.add_attribute(ty, value, category=category, to_ids=True, distribution=5)
    for t in tags:
        a.add_tag(t)
open(sys.argv[2], "w").write(ev.to_json())
print("ok")
"#,
        &[
            spec_path.to_str().expect("path"),
            path.to_str().expect("path"),
        ],
    );
}

/// value → attribute UUID of an event file PyMISP wrote.
pub(crate) fn attribute_uuids(path: &Path) -> impl Fn(&str) -> String {
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("event")).expect("json");
    let ev = event.get("Event").cloned().unwrap_or(event);
    let attrs = ev["Attribute"].as_array().cloned().unwrap_or_default();
    move |value: &str| {
        attrs
            .iter()
            .find(|a| a["value"] == value)
            .and_then(|a| a["uuid"].as_str())
            .unwrap_or_else(|| panic!("no attribute {value}"))
            .to_string()
    }
}

/// Every sighting in a `--sightings-out` file (keyed by destination): MISP bodies as
/// they are, the `sighting` objects of STIX bundles.
fn sightings_in(preview: &str) -> Vec<Value> {
    let by_dest = serde_json::from_str::<Value>(preview).expect("preview is JSON");
    let mut out = Vec::new();
    for d in by_dest.as_object().expect("keyed by destination").values() {
        for body in d["bodies"].as_array().expect("bodies") {
            match body["objects"].as_array() {
                Some(objects) => {
                    out.extend(objects.iter().filter(|o| o["type"] == "sighting").cloned())
                }
                None => out.push(body.clone()),
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// Defect 1: distribution 5 in an event of distribution 0.

#[test]
fn inherited_distribution_zero_is_not_shared() {
    require_python_module("pymisp", "pymisp");
    let dir = tempfile::tempdir().expect("tempdir");
    // A day after the (2016) event: its URL decays (MISP NIDS model) within weeks.
    let log = format!("2016-06-12T10:00:00Z proxy01 GET {ORG_ONLY_URL} 200\n");
    let org_only = hunt_preview(
        dir.path(),
        &[format!("acme={ORG_ONLY_EVENT}")],
        &log,
        "url",
        &[],
    );
    assert_eq!(sightings_in(&org_only), Vec::<Value>::new(), "{org_only}");
    assert!(!org_only.contains(ORG_ONLY_ATTR), "{org_only}");

    // The same event shared with all communities (3): the sighting is there, so the
    // hunt did match and confirm; only the distribution kept it local.
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(ORG_ONLY_EVENT)).expect("event"))
            .expect("json");
    match event.get_mut("Event") {
        Some(ev) => ev["distribution"] = Value::from("3"),
        None => event["distribution"] = Value::from("3"),
    }
    let shared_path = dir.path().join("shared_event.json");
    std::fs::write(&shared_path, event.to_string()).expect("written");
    let shared = hunt_preview(
        dir.path(),
        &[format!("acme={}", shared_path.display())],
        &log,
        "url",
        &[],
    );
    let got = sightings_in(&shared);
    assert_eq!(got.len(), 1, "{shared}");
    assert_eq!(got[0]["uuid"], ORG_ONLY_ATTR, "{shared}");
}

// ---------------------------------------------------------------------------------
// Defect 2: victim data.

#[test]
fn victim_emails_are_never_sighted() {
    require_python_module("pymisp", "pymisp");
    let dir = tempfile::tempdir().expect("tempdir");
    let event = dir.path().join("phish.json");
    pymisp_event(
        &event,
        "3f0e1a2b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
        &["tlp:green"],
        &[
            (
                "target-email",
                "jane.doe@acme.example",
                "Targeting data",
                &[],
            ),
            ("email-dst", "cfo@acme.example", "Payload delivery", &[]),
            (
                "email-src",
                "billing@evil-invoices.example",
                "Payload delivery",
                &[],
            ),
            ("domain", "evil-invoices.example", "Network activity", &[]),
        ],
    );
    // Two ordinary internal mails naming the victims, and the phishing mail.
    let log = "2024-05-01T10:00:00Z mx01 postfix/smtp: to=<jane.doe@acme.example>, status=sent\n\
               2024-05-01T10:01:00Z mx01 postfix/smtp: to=<cfo@acme.example>, status=sent\n\
               2024-05-01T10:02:00Z mx01 postfix/smtpd: from=<billing@evil-invoices.example>\n";
    let (preview, summary) = hunt_preview_and_summary(
        dir.path(),
        &[format!("circl={}", event.display())],
        log,
        "email, domain",
        &[],
    );
    // The summary says what was withheld and why.
    assert!(
        summary.contains("2  withheld from circl (victim_data): it is victim data"),
        "{summary}"
    );
    let uuid_of = attribute_uuids(&event);
    let mut got: Vec<String> = sightings_in(&preview)
        .iter()
        .map(|s| s["uuid"].as_str().unwrap_or("").to_string())
        .collect();
    got.sort();
    let mut want = vec![
        uuid_of("billing@evil-invoices.example"),
        uuid_of("evil-invoices.example"),
    ];
    want.sort();
    assert_eq!(got, want, "only the sender and its domain: {preview}");
    for victim in [
        uuid_of("jane.doe@acme.example"),
        uuid_of("cfo@acme.example"),
        "jane.doe".to_string(),
        "acme.example".to_string(),
    ] {
        assert!(!preview.contains(&victim), "{victim} in {preview}");
    }
    // Our own domain is victim data too, whatever its type.
    let config = dir.path().join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [\"x\"]\n[share]\nown_domains = [\"evil-invoices.example\"]\n\
             [[share.destinations]]\nname = \"circl\"\napproval = \"auto\"\n\
             [share.destinations.transport]\ntype = \"stix_dir\"\npath = \"{}\"\n",
            dir.path().join("out").display()
        ),
    )
    .expect("config written");
    let own = hunt_preview(
        dir.path(),
        &[format!("circl={}", event.display())],
        log,
        "email, domain",
        &["--config", config.to_str().expect("path")],
    );
    assert_eq!(sightings_in(&own), Vec::<Value>::new(), "{own}");
}

// ---------------------------------------------------------------------------------
// Defect 7: TLP of event and attribute; unknown tlp tags.

#[test]
fn event_tlp_red_wins_over_attribute_clear() {
    require_python_module("pymisp", "pymisp");
    let dir = tempfile::tempdir().expect("tempdir");
    let event = dir.path().join("red.json");
    pymisp_event(
        &event,
        "4a1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        &["tlp:red"],
        &[(
            "domain",
            "c2.evil.example",
            "Network activity",
            &["tlp:clear"],
        )],
    );
    let log = "2024-05-01T10:00:00Z dns01 query c2.evil.example A\n";
    let red = hunt_preview(
        dir.path(),
        &[format!("circl={}", event.display())],
        log,
        "domain",
        &[],
    );
    assert_eq!(sightings_in(&red), Vec::<Value>::new(), "{red}");

    // Control: the same event tagged green is shared.
    pymisp_event(
        &event,
        "4a1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        &["tlp:green"],
        &[(
            "domain",
            "c2.evil.example",
            "Network activity",
            &["tlp:clear"],
        )],
    );
    let green = hunt_preview(
        dir.path(),
        &[format!("circl={}", event.display())],
        log,
        "domain",
        &[],
    );
    assert_eq!(sightings_in(&green).len(), 1, "{green}");
}

#[test]
fn unknown_tlp_tag_is_not_shareable() {
    require_python_module("pymisp", "pymisp");
    let dir = tempfile::tempdir().expect("tempdir");
    let event = dir.path().join("chr.json");
    pymisp_event(
        &event,
        "5b2c3d4e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
        &["tlp:ex:chr"],
        &[("domain", "c2.evil.example", "Network activity", &[])],
    );
    let log = "2024-05-01T10:00:00Z dns01 query c2.evil.example A\n";
    let intel = [format!("circl={}", event.display())];
    let unknown = hunt_preview(dir.path(), &intel, log, "domain", &[]);
    assert_eq!(sightings_in(&unknown), Vec::<Value>::new(), "{unknown}");

    // Mapped in config, it takes that level: green is shared, red is not.
    for (level, want) in [("green", 1), ("red", 0)] {
        let config = dir.path().join(format!("tripline-{level}.toml"));
        std::fs::write(
            &config,
            format!(
                "[intel]\npaths = [\"x\"]\n[share]\ntlp_map = {{ \"tlp:ex:chr\" = \"{level}\" }}\n\
                 [[share.destinations]]\nname = \"circl\"\napproval = \"auto\"\n\
                 [share.destinations.transport]\ntype = \"stix_dir\"\npath = \"{}\"\n",
                dir.path().join("out").display()
            ),
        )
        .expect("config written");
        let mapped = hunt_preview(
            dir.path(),
            &intel,
            log,
            "domain",
            &["--config", config.to_str().expect("path")],
        );
        assert_eq!(sightings_in(&mapped).len(), want, "{level}: {mapped}");
    }
}

// ---------------------------------------------------------------------------------
// Defects 4 and 5: the policy at send time; anonymised times.

fn misp_destination(url: &str, key_file: &Path, extra: &str) -> String {
    format!(
        r#"
source_name = "ACME SOC"
[[destinations]]
name = "circl"
{extra}
[destinations.transport]
type = "misp"
url = "{url}"
api_key_file = "{}"
"#,
        key_file.display()
    )
}

fn three_hits() -> tripline::correlate::Confirmation {
    confirmation(
        "r",
        (0..3)
            .map(|i| {
                obs(
                    T0 + 60 * i,
                    "evil.example",
                    Kind::Domain,
                    vec![prov("circl", Some(E1), Some(A1))],
                )
            })
            .collect(),
    )
}

#[test]
fn policy_is_evaluated_again_at_send() {
    let dir = tempfile::tempdir().expect("tempdir");
    let misp = FakeMisp::start(
        &dir.path().join("misp"),
        &misp_attributes(&[(A1, "evil.example", E1)]),
        0,
    );
    let state = dir.path().join("state");
    let queued_with = config(&misp_destination(&misp.url(), &misp.key_file(), ""));
    let outbox = Outbox::open(&state, &queued_with).expect("outbox");
    // Three windows' worth: one row per window.
    for i in 0..3 {
        let mut c = three_hits();
        for o in &mut c.observations {
            o.time += chrono::Duration::hours(2 * i);
        }
        outbox.record(&c).expect("record");
    }
    assert_eq!(
        outbox
            .list(Some(State::PendingApproval))
            .expect("list")
            .len(),
        3
    );
    drop(outbox);

    // The analyst turns on anonymise and removes the destination's source, then
    // approves everything and sends.
    let now_config = config(&misp_destination(
        &misp.url(),
        &misp.key_file(),
        "anonymise = true\nintel_sources = [\"someone-else\"]",
    ));
    let outbox = Outbox::open(&state, &now_config).expect("outbox");
    assert_eq!(outbox.approve(Selection::All).expect("approve"), 3);
    let report = outbox.send_now().expect("send");
    assert_eq!((report.delivered, report.withheld), (0, 3), "{report:?}");
    assert_eq!(misp.sightings(), Vec::<Value>::new());
    let withheld = outbox.list(Some(State::Withheld)).expect("list");
    assert_eq!(withheld.len(), 3);
    assert!(withheld[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("no destination"));
    let stats = outbox.stats().expect("stats");
    assert!(stats
        .dropped
        .iter()
        .any(|(r, n)| r.name() == "no_destination" && *n == 3));
    drop(outbox);

    // Anonymise alone: the rows queued under our name leave without it.
    let state2 = dir.path().join("state2");
    let outbox = Outbox::open(&state2, &queued_with).expect("outbox");
    outbox.record(&three_hits()).expect("record");
    drop(outbox);
    let anon = config(&misp_destination(
        &misp.url(),
        &misp.key_file(),
        "anonymise = true",
    ));
    let outbox = Outbox::open(&state2, &anon).expect("outbox");
    outbox.approve(Selection::All).expect("approve");
    let report = outbox.send_now().expect("send");
    assert_eq!(report.delivered, 1, "{report:?}");
    let bodies = request_bodies(&misp);
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(!bodies[0].contains("ACME SOC"), "{bodies:?}");
    assert!(!bodies[0].contains("source"), "{bodies:?}");
}

/// The policy also asks the current intel: an indicator withdrawn since it was queued
/// is withheld.
#[test]
fn withdrawn_intel_is_withheld_at_send() {
    struct Now(Vec<Provenance>);
    impl IntelView for Now {
        fn provenances(&self, _: &str, _: Kind) -> Option<Vec<Provenance>> {
            Some(self.0.clone())
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&format!(
        "[[destinations]]\nname = \"circl\"\napproval = \"auto\"\n\
         [destinations.transport]\ntype = \"stix_dir\"\npath = \"{}\"\n",
        dir.path().join("out").display()
    ));
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox.record(&three_hits()).expect("record");
    // The attribute is now tagged red in the intel.
    let mut red = prov("circl", Some(E1), Some(A1));
    red.tags = vec!["tlp:red".into()];
    outbox.set_intel(std::sync::Arc::new(Now(vec![red])));
    let report = outbox.send_now().expect("send");
    assert_eq!((report.delivered, report.withheld), (0, 1), "{report:?}");
    // And gone altogether.
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox.record(&three_hits()).expect("record");
    outbox.set_intel(std::sync::Arc::new(Now(Vec::new())));
    let report = outbox.send_now().expect("send");
    assert_eq!(report.withheld, 1, "{report:?}");
    let row = &outbox.list(Some(State::Withheld)).expect("list")[0];
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or("")
            .contains("no longer holds"),
        "{:?}",
        row.last_error
    );
    // Still held as it was: delivered.
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox.record(&three_hits()).expect("record");
    outbox.set_intel(std::sync::Arc::new(Now(vec![prov(
        "circl",
        Some(E1),
        Some(A1),
    )])));
    assert_eq!(outbox.send_now().expect("send").delivered, 1);
}

fn request_bodies(misp: &FakeMisp) -> Vec<String> {
    misp.state()["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| r["path"] == "/sightings/add")
        .map(|r| r["body"].as_str().unwrap_or("").to_string())
        .fold(Vec::new(), |mut all: Vec<String>, b| {
            // A row of count n is n identical sightings (MISP records no count).
            if all.last() != Some(&b) {
                all.push(b);
            }
            all
        })
}

#[test]
fn anonymised_timestamps_are_rounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let misp = FakeMisp::start(
        &dir.path().join("misp"),
        &misp_attributes(&[(A1, "evil.example", E1)]),
        0,
    );
    let stix_dir = dir.path().join("stix");
    let cfg = config(&format!(
        r#"
source_name = "ACME SOC"
[[destinations]]
name = "circl"
approval = "auto"
anonymise = true
count_buckets = [1, 10, 100]
[destinations.transport]
type = "misp"
url = "{}"
api_key_file = "{}"
[[destinations]]
name = "cert"
intel_sources = ["circl"]
approval = "auto"
anonymise = true
[destinations.transport]
type = "stix_dir"
path = "{}"
"#,
        misp.url(),
        misp.key_file().display(),
        stix_dir.display()
    ));
    let outbox = Outbox::open(&dir.path().join("state"), &cfg).expect("outbox");
    // 12 hits between 10:00:00.123 and 10:11:00.123 on 2024-05-01.
    let first = Utc
        .timestamp_millis_opt((T0 + 36_000) * 1000 + 123)
        .single()
        .expect("time");
    let mut c = confirmation(
        "r",
        (0..12)
            .map(|_| {
                obs(
                    T0,
                    "evil.example",
                    Kind::Domain,
                    vec![prov("circl", Some(E1), Some(A1))],
                )
            })
            .collect(),
    );
    for (i, o) in c.observations.iter_mut().enumerate() {
        o.time = first + chrono::Duration::minutes(i as i64);
    }
    outbox.record(&c).expect("record");
    let report = outbox.send_now().expect("send");
    assert_eq!(report.delivered, 2, "{report:?}");

    let hour = (T0 + 36_000).to_string();
    let bodies = request_bodies(&misp);
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let body: Value = serde_json::from_str(&bodies[0]).expect("json");
    // Every byte: only these keys and values.
    assert_eq!(
        body,
        serde_json::json!({"uuid": A1, "type": "0", "timestamp": hour, "date_sighting": hour}),
        "{}",
        bodies[0]
    );

    // And PyMISP reads it as a sighting with no source.
    require_python_module("pymisp", "pymisp");
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, &bodies[0]).expect("written");
    let checked = python(
        r#"
import json, sys
from pymisp import MISPSighting
s = MISPSighting()
s.from_dict(**json.load(open(sys.argv[1])))
d = s.to_dict()
assert "source" not in d, d
assert int(d["timestamp"]) % 3600 == 0, d
print("pymisp ok")
"#,
        &[body_file.to_str().expect("path")],
    );
    assert!(checked.contains("pymisp ok"), "{checked}");

    let files: Vec<PathBuf> = std::fs::read_dir(&stix_dir)
        .expect("stix dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    stix_validate(&files[0]);
    let bundle_text = std::fs::read_to_string(&files[0]).expect("bundle");
    let bundle: Value = serde_json::from_str(&bundle_text).expect("json");
    let objects = bundle["objects"].as_array().expect("objects");
    assert_eq!(objects.len(), 1, "no identity: {bundle_text}");
    let s = objects[0].as_object().expect("sighting");
    let mut keys: Vec<&str> = s.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "count",
            "created",
            "first_seen",
            "id",
            "last_seen",
            "modified",
            "sighting_of_ref",
            "spec_version",
            "type"
        ],
        "{bundle_text}"
    );
    let rounded = "2024-05-01T10:00:00.000Z";
    for k in ["first_seen", "last_seen"] {
        assert_eq!(s[k], rounded, "{k}: {bundle_text}");
    }
    for k in ["created", "modified"] {
        let t = s[k].as_str().expect("time");
        assert!(t.ends_with(":00:00.000Z"), "{k} = {t}");
    }
    assert_eq!(s["count"], 12);
    // The object id is not the one the (guessable) idempotency key gives.
    let cert_row = outbox
        .list(Some(State::Sent))
        .expect("list")
        .into_iter()
        .find(|r| r.sighting.destination == "cert")
        .expect("cert row");
    assert_ne!(
        s["id"],
        tripline::share::stix::object_id(&cert_row.sighting, &cert_row.key),
        "{bundle_text}"
    );
    for leak in ["ACME SOC", "identity", ".123", "10:11", "where_sighted"] {
        assert!(!bundle_text.contains(leak), "{leak} in {bundle_text}");
    }
}

#[test]
fn anonymised_counts_are_bucketed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&format!(
        "[[destinations]]\nname = \"circl\"\napproval = \"auto\"\nanonymise = true\n\
         count_buckets = [1, 10, 100]\n[destinations.transport]\ntype = \"stix_dir\"\npath = \"{}\"\n",
        dir.path().join("out").display()
    ));
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    let mut c = three_hits();
    let extra: Vec<_> = (3..57)
        .map(|i| {
            obs(
                T0 + i,
                "evil.example",
                Kind::Domain,
                vec![prov("circl", Some(E1), Some(A1))],
            )
        })
        .collect();
    c.observations.extend(extra);
    outbox.record(&c).expect("record");
    let stix: Value = serde_json::from_str(
        &outbox
            .export(tripline::share::ExportFormat::Stix, None)
            .expect("export"),
    )
    .expect("json");
    let sighting = stix["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| o["type"] == "sighting")
        .cloned()
        .expect("a sighting");
    assert_eq!(sighting["count"], 10, "57 observations go out as 10");
}

// ---------------------------------------------------------------------------------
// Defect 6: URLs with credentials.

#[test]
fn userinfo_in_destination_url_is_refused() {
    let cfg: tripline::share::ShareConfig = toml::from_str(
        "[[destinations]]\nname = \"circl\"\n[destinations.transport]\ntype = \"misp\"\n\
         url = \"http://localhost:s3cr3t@192.0.2.10:8080/misp\"\napi_key_env = \"K\"\n",
    )
    .expect("parses");
    let e = cfg.validate().expect_err("refused");
    assert_eq!(e.key(), "share.destinations[0].transport.url");
    let shown = e.to_string();
    assert!(shown.contains("user name or password"), "{shown}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    // TAXII too.
    let cfg: tripline::share::ShareConfig = toml::from_str(
        "[[destinations]]\nname = \"x\"\n[destinations.transport]\ntype = \"taxii\"\n\
         api_root = \"https://u:s3cr3t@taxii.example/api/\"\ncollection_id = \"c\"\n",
    )
    .expect("parses");
    let e = cfg.validate().expect_err("refused");
    assert_eq!(e.key(), "share.destinations[0].transport.api_root");
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
}

#[test]
fn secrets_in_urls_are_never_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let conf = dir.path().join("tripline.toml");
    std::fs::write(
        &conf,
        format!(
            "[intel]\npaths = [\"fixtures/intel/traps\"]\n[state]\ndir = \"{}\"\n\
             [[share.destinations]]\nname = \"circl\"\n[share.destinations.transport]\n\
             type = \"misp\"\nurl = \"http://localhost:s3cr3t@192.0.2.10:8080/misp\"\n\
             api_key_env = \"TRIPLINE_TEST_UNSET_KEY\"\n",
            state.display()
        ),
    )
    .expect("config written");
    let check = tripline(&["run", "--check", "--config", conf.to_str().expect("path")]);
    assert_eq!(check.status.code(), Some(2), "{}", text(&check));
    let shown = text(&check);
    assert!(shown.contains("transport.url"), "{shown}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    let list = tripline(&[
        "sightings",
        "--config",
        conf.to_str().expect("path"),
        "list",
    ]);
    assert!(!text(&list).contains("s3cr3t"), "{}", text(&list));

    // A row written before such URLs were refused keeps the URL in its last_error:
    // `sightings list` does not print the credential.
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "[intel]\npaths = [\"fixtures/intel/traps\"]\n[state]\ndir = \"{}\"\n\
             [[share.destinations]]\nname = \"circl\"\n[share.destinations.transport]\n\
             type = \"misp\"\nurl = \"https://misp.example\"\n\
             api_key_env = \"TRIPLINE_TEST_UNSET_KEY\"\n",
            state.display()
        ),
    )
    .expect("config written");
    let cfg = config(
        "[[destinations]]\nname = \"circl\"\n[destinations.transport]\ntype = \"misp\"\n\
         url = \"https://misp.example\"\napi_key_env = \"TRIPLINE_TEST_UNSET_KEY\"\n",
    );
    let outbox = Outbox::open(&state, &cfg).expect("outbox");
    outbox.record(&three_hits()).expect("record");
    drop(outbox);
    let db = rusqlite::Connection::open(state.join("sightings.sqlite")).expect("db");
    db.execute(
        "UPDATE sightings SET last_error = 'circl: cannot connect to \
         http://localhost:s3cr3t@192.0.2.10:8080/misp/sightings/add: refused'",
        [],
    )
    .expect("update");
    drop(db);
    for json in [false, true] {
        let mut args = vec![
            "sightings",
            "--config",
            good.to_str().expect("path"),
            "list",
        ];
        if json {
            args.push("--json");
        }
        let list = tripline(&args);
        let shown = text(&list);
        assert!(list.status.success(), "{shown}");
        assert!(shown.contains("***@192.0.2.10"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}

/// `tripline sightings send` asks the intel its configuration names, as it is at send
/// time: an attribute re-tagged `tlp:red` since its sighting was queued stays local.
#[test]
fn intel_changed_since_queued_is_checked_at_send() {
    require_python_module("pymisp", "pymisp");
    let dir = tempfile::tempdir().expect("tempdir");
    let event = dir.path().join("event.json");
    let event_uuid = "6c3d4e5f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
    let attrs: &[(&str, &str, &str, &[&str])] =
        &[("domain", "c2.evil.example", "Network activity", &[])];
    pymisp_event(&event, event_uuid, &["tlp:green"], attrs);
    let attr_uuid = attribute_uuids(&event)("c2.evil.example");
    let state = dir.path().join("state");
    let bundles = dir.path().join("bundles");
    let conf = dir.path().join("tripline.toml");
    std::fs::write(
        &conf,
        format!(
            "[intel]\npaths = [\"circl={}\"]\n[state]\ndir = \"{}\"\n\
             [[share.destinations]]\nname = \"circl\"\n[share.destinations.transport]\n\
             type = \"stix_dir\"\npath = \"{}\"\n",
            event.display(),
            state.display(),
            bundles.display()
        ),
    )
    .expect("config written");
    let cfg = config(&format!(
        "[[destinations]]\nname = \"circl\"\n[destinations.transport]\ntype = \"stix_dir\"\n\
         path = \"{}\"\n",
        bundles.display()
    ));
    let mut p = prov("circl", Some(event_uuid), Some(&attr_uuid));
    p.tags = vec!["tlp:green".into()];
    let queue = |c: &str| {
        let outbox = Outbox::open(&state, &cfg).expect("outbox");
        outbox
            .record(&confirmation(
                "r",
                vec![obs(T0, c, Kind::Domain, vec![p.clone()])],
            ))
            .expect("record");
    };
    let c = conf.to_str().expect("path");
    let send = || {
        assert!(tripline(&["sightings", "--config", c, "approve", "--all"])
            .status
            .success());
        let out = tripline(&["sightings", "--config", c, "send"]);
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };

    // Unchanged intel: delivered.
    queue("c2.evil.example");
    let said = send();
    assert!(said.contains("1 sighting(s) delivered"), "{said}");
    assert_eq!(std::fs::read_dir(&bundles).expect("bundles").count(), 1);

    // Re-tagged red since (same event and attribute): withheld, nothing written.
    let mut ev: Value =
        serde_json::from_str(&std::fs::read_to_string(&event).expect("event")).expect("json");
    let body = match ev.get_mut("Event") {
        Some(e) => e,
        None => &mut ev,
    };
    let tags = body["Tag"].as_array_mut().expect("event tags");
    assert_eq!(tags[0]["name"], "tlp:green");
    tags[0]["name"] = Value::from("tlp:red");
    std::fs::write(&event, ev.to_string()).expect("event rewritten");
    let later = p.clone();
    let outbox = Outbox::open(&state, &cfg).expect("outbox");
    outbox
        .record(&confirmation(
            "r",
            vec![obs(T0 + 7200, "c2.evil.example", Kind::Domain, vec![later])],
        ))
        .expect("record");
    drop(outbox);
    let said = send();
    assert!(said.contains("1 withheld by the sharing policy"), "{said}");
    assert_eq!(std::fs::read_dir(&bundles).expect("bundles").count(), 1);
    let list = tripline(&["sightings", "--config", c, "list", "--state", "withheld"]);
    let shown = text(&list);
    assert!(shown.contains("TLP is above"), "{shown}");

    // Intel that does not load: nothing is sent.
    queue("c2.evil.example");
    std::fs::write(&event, "{ not json").expect("broken intel");
    assert!(tripline(&["sightings", "--config", c, "approve", "--all"])
        .status
        .success());
    let out = tripline(&["sightings", "--config", c, "send"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing sent"), "{}", text(&out));
}
