//! Sightings of list intel and the sharing preview (issue 10, points 8-10; defects 16
//! and 17): the real binary (`hunt --preview-sharing`, `sightings preview`,
//! `sightings send`, `sightings list`), the outbox delivering to a STIX directory and
//! to the fake MISP, every STIX body checked by stix2-validator and every MISP body
//! by PyMISP's `MISPSighting`.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tripline::intel::Kind;
use tripline::share::{Outbox, State};

use crate::share_policy::{attribute_uuids, pymisp_event, rules_dir};
use crate::util::*;

const E1: &str = "11111111-2222-4333-8444-555555555555";
const A1: &str = "6f1a0c3e-2d4b-4c5a-9e8f-0a1b2c3d4e5f";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_ok(args: &[&str]) -> Output {
    let out = tripline(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    out
}

/// `tripline hunt --preview-sharing DIR` over `log` with a rule that confirms every
/// match of `kinds`; returns the hunt's output.
fn hunt_preview(
    dir: &Path,
    intel: &[String],
    log: &str,
    kinds: &str,
    preview: &Path,
    extra: &[&str],
) -> Output {
    let logs = dir.join("hunt.log");
    std::fs::write(&logs, log).expect("log written");
    let rules = rules_dir(dir, kinds);
    let mut args: Vec<String> = vec![
        "hunt".into(),
        "-o".into(),
        dir.join("alerts.jsonl").display().to_string(),
        "--include-non-ids".into(),
        "--no-default-warninglists".into(),
        "--rules".into(),
        rules.display().to_string(),
        "--preview-sharing".into(),
        preview.display().to_string(),
    ];
    for i in intel {
        args.push("--intel".into());
        args.push(i.clone());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(logs.display().to_string());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&argv)
}

fn read_json(path: &Path) -> Value {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}\n{t}", path.display()))
}

/// The files of a directory, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// The destination section of a summary.json.
fn section<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no destination {name} in {summary:#}"))
}

/// Checks a MISP `/sightings/add` body with PyMISP's `MISPSighting`.
fn pymisp_check(dir: &Path, body: &[u8]) {
    require_python_module("pymisp", "pymisp");
    let f = dir.join("misp-body.json");
    std::fs::write(&f, body).expect("written");
    let out = python(
        r#"
import json, sys
from pymisp import MISPSighting
s = MISPSighting()
s.from_dict(**json.load(open(sys.argv[1])))
d = s.to_dict()
assert d.get("type") in ("0", "1", "2"), d
assert "uuid" in d or "value" in d, d
print("pymisp ok")
"#,
        &[f.to_str().expect("path")],
    );
    assert!(out.contains("pymisp ok"), "{out}");
}

/// Validates STIX objects (a TAXII envelope's) by wrapping them in a bundle.
fn stix_validate_objects(dir: &Path, objects: &Value) {
    let f = dir.join("envelope-as-bundle.json");
    let bundle = serde_json::json!({
        "type": "bundle",
        "id": "bundle--5d0c7a7e-1f2b-4c3d-8e9f-a0b1c2d3e4f5",
        "objects": objects,
    });
    std::fs::write(&f, bundle.to_string()).expect("written");
    stix_validate(&f);
}

/// The indicator a STIX sighting refers to, from the same object list.
fn referred_indicator<'a>(objects: &'a [Value], sighting: &Value) -> &'a Value {
    let r = sighting["sighting_of_ref"]
        .as_str()
        .expect("sighting_of_ref");
    objects
        .iter()
        .find(|o| o["id"] == r)
        .unwrap_or_else(|| panic!("{r} is not sent with the sighting: {objects:?}"))
}

// ---------------------------------------------------------------------------------
// Defect 16: sightings of list intel.

#[test]
fn defect_16_list_intel_stix_sighting_carries_the_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bundles");
    let cfg = config(&format!(
        "[[destinations]]\nname = \"cert\"\nintel_sources = [\"cert-list\"]\napproval = \"auto\"\n\
         [destinations.transport]\ntype = \"stix_dir\"\npath = \"{}\"\n",
        out.display()
    ));
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    let sha = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
    let values = [
        ("list-evil.example", Kind::Domain),
        ("list-evil.example/dl/a'b.bin", Kind::Url),
        (sha, Kind::Sha256),
        ("198.51.100.77", Kind::Ipv4),
    ];
    let observations = values
        .iter()
        .map(|(v, k)| obs(T0, v, *k, vec![prov("cert-list", None, None)]))
        .collect();
    outbox
        .record(&confirmation("r", observations))
        .expect("record");
    let report = outbox.send_now().expect("send");
    assert_eq!(report.delivered, 4, "{report:?}");
    let mut patterns = Vec::new();
    for f in files(&out) {
        stix_validate(&f);
        let bundle = read_json(&f);
        let objects = bundle["objects"].as_array().expect("objects").clone();
        let sighting = objects
            .iter()
            .find(|o| o["type"] == "sighting")
            .expect("a sighting");
        let indicator = referred_indicator(&objects, sighting);
        assert_eq!(indicator["type"], "indicator");
        assert_eq!(indicator["pattern_type"], "stix");
        patterns.push(indicator["pattern"].as_str().expect("pattern").to_string());
    }
    patterns.sort();
    let mut want = vec![
        "[domain-name:value = 'list-evil.example']".to_string(),
        r"[url:value = 'list-evil.example/dl/a\'b.bin']".to_string(),
        format!("[file:hashes.'SHA-256' = '{sha}']"),
        "[ipv4-addr:value = '198.51.100.77']".to_string(),
    ];
    want.sort();
    assert_eq!(patterns, want);
    // Nothing from the log lines.
    for f in files(&out) {
        let t = std::fs::read_to_string(&f).expect("bundle");
        for secret in SECRETS {
            assert!(!t.contains(secret), "{secret} in {t}");
        }
    }
}

#[test]
fn defect_16_list_intel_to_misp_is_routed_or_withheld_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 1. No event known for the list: the preview lists it withheld, with the reason.
    let list = dir.path().join("circl.txt");
    std::fs::write(&list, "list-evil.example\n").expect("list");
    let cfg_path = dir.path().join("tripline.toml");
    std::fs::write(
        &cfg_path,
        "[intel]\npaths = [\"x\"]\n[[share.destinations]]\nname = \"circl\"\n\
         intel_sources = [\"circl-list\"]\napproval = \"auto\"\n[share.destinations.transport]\n\
         type = \"misp\"\nurl = \"https://misp.invalid\"\napi_key_env = \"TRIPLINE_NO_KEY\"\n",
    )
    .expect("config");
    let preview = dir.path().join("preview");
    let out = hunt_preview(
        dir.path(),
        &[format!("circl-list={}", list.display())],
        "2024-05-01T10:00:00Z dns01 query list-evil.example A\n",
        "domain",
        &preview,
        &["--config", cfg_path.to_str().expect("path")],
    );
    let summary = read_json(&preview.join("summary.json"));
    let circl = section(&summary, "circl");
    assert_eq!(circl["would_send"]["bodies"], 0, "{summary:#}");
    let withheld = circl["withheld"].as_array().expect("withheld");
    assert_eq!(withheld.len(), 1, "{summary:#}");
    assert_eq!(withheld[0]["indicator"], "list-evil.example");
    assert_eq!(withheld[0]["reason"], "no_target");
    assert!(
        withheld[0]["why"]
            .as_str()
            .unwrap_or("")
            .contains("list_event_uuids"),
        "{summary:#}"
    );
    let txt = std::fs::read_to_string(preview.join("summary.txt")).expect("summary.txt");
    assert!(
        txt.contains("withheld (no_target) list-evil.example"),
        "{txt}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("withheld from circl (no_target)"),
        "{}",
        text(&out)
    );

    // 2. The community's event named in config: a by-value sighting restricted to it,
    // which MISP applies to that event's attribute only.
    let misp = FakeMisp::start(
        &dir.path().join("misp"),
        &misp_attributes(&[(A1, "list-evil.example", E1)]),
        0,
    );
    let cfg = config(&format!(
        "[[destinations]]\nname = \"circl\"\nintel_sources = [\"circl-list\"]\n\
         list_event_uuids = [\"{E1}\"]\napproval = \"auto\"\n[destinations.transport]\n\
         type = \"misp\"\nurl = \"{}\"\napi_key_file = \"{}\"\n",
        misp.url(),
        misp.key_file().display()
    ));
    let outbox = Outbox::open(&dir.path().join("state"), &cfg).expect("outbox");
    outbox
        .record(&confirmation(
            "r",
            vec![obs(
                T0,
                "list-evil.example",
                Kind::Domain,
                vec![prov("circl-list", None, None)],
            )],
        ))
        .expect("record");
    let report = outbox.send_now().expect("send");
    assert_eq!(report.delivered, 1, "{report:?}");
    let saved = misp.sightings();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0]["attribute_uuid"], A1, "{saved:?}");
    assert_eq!(saved[0]["unrestricted"], false, "{saved:?}");
    let bodies: Vec<String> = misp.state()["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| r["path"] == "/sightings/add")
        .map(|r| r["body"].as_str().unwrap_or("").to_string())
        .collect();
    let body: Value = serde_json::from_str(&bodies[0]).expect("json");
    assert_eq!(body["value"], "list-evil.example");
    assert_eq!(body["filters"]["uuid"], serde_json::json!([E1]));
    pymisp_check(dir.path(), bodies[0].as_bytes());
}

// ---------------------------------------------------------------------------------
// Defect 17: the preview.

/// Three communities, three formats: circl (MISP event → MISP), cert (a plain list →
/// a STIX directory), harbor (a STIX bundle → TAXII).
fn three_communities(dir: &Path) -> (Vec<String>, PathBuf, String, impl Fn(&str) -> String) {
    require_python_module("pymisp", "pymisp");
    let event = dir.join("circl-event.json");
    pymisp_event(
        &event,
        "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        &["tlp:green"],
        &[("domain", "c2.circl-evil.example", "Network activity", &[])],
    );
    let list = dir.join("cert.txt");
    std::fs::write(&list, "list-evil.example\n").expect("list");
    let intel = vec![
        format!("circl={}", event.display()),
        format!("cert-list={}", list.display()),
        format!(
            "harbor={}",
            root()
                .join("fixtures/intel/stix/harbor-campaign.json")
                .display()
        ),
    ];
    let cfg = dir.join("tripline.toml");
    std::fs::write(
        &cfg,
        "[intel]\npaths = [\"x\"]\n\
         [[share.destinations]]\nname = \"circl\"\napproval = \"auto\"\n\
         [share.destinations.transport]\ntype = \"misp\"\nurl = \"https://misp.invalid\"\n\
         api_key_env = \"TRIPLINE_NO_KEY\"\n\
         [[share.destinations]]\nname = \"cert\"\nintel_sources = [\"cert-list\"]\n\
         [share.destinations.transport]\ntype = \"stix_dir\"\npath = \"/nonexistent/cert\"\n\
         [[share.destinations]]\nname = \"harbor\"\n\
         [share.destinations.transport]\ntype = \"taxii\"\napi_root = \"https://taxii.invalid/api/\"\n\
         collection_id = \"c1\"\n",
    )
    .expect("config");
    let log = "2024-05-01T10:00:00Z dns01 query c2.circl-evil.example A\n\
               2024-05-01T10:01:00Z dns01 query list-evil.example A\n\
               2024-05-01T10:02:00Z dns01 query update-check.example.net A\n"
        .to_string();
    (intel, cfg, log, attribute_uuids(&event))
}

#[test]
fn defect_17_preview_names_each_destination_in_its_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (intel, cfg, log, uuid_of) = three_communities(dir.path());
    let preview = dir.path().join("preview");
    let legacy = dir.path().join("legacy.json");
    let out = hunt_preview(
        dir.path(),
        &intel,
        &log,
        "domain",
        &preview,
        &[
            "--config",
            cfg.to_str().expect("path"),
            "--sightings-out",
            legacy.to_str().expect("path"),
        ],
    );
    let summary = read_json(&preview.join("summary.json"));
    assert_eq!(summary["nothing_sent"], true);
    let names: Vec<(&str, &str)> = summary["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or(""),
                d["transport"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("circl", "misp"), ("cert", "stix_dir"), ("harbor", "taxii")]
    );

    // circl: one MISP body, by attribute UUID.
    let circl = files(&preview.join("circl"));
    assert_eq!(circl.len(), 1, "{circl:?}");
    let body = std::fs::read(&circl[0]).expect("body");
    let misp: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(misp["uuid"], uuid_of("c2.circl-evil.example"), "{misp}");
    assert!(misp.get("objects").is_none());
    pymisp_check(dir.path(), &body);

    // cert: the STIX bundle file the directory would get, carrying the value.
    let cert = files(&preview.join("cert"));
    assert_eq!(cert.len(), 1, "{cert:?}");
    stix_validate(&cert[0]);
    let bundle = read_json(&cert[0]);
    assert_eq!(bundle["type"], "bundle");
    let objects = bundle["objects"].as_array().expect("objects").clone();
    let sighting = objects
        .iter()
        .find(|o| o["type"] == "sighting")
        .expect("sighting");
    assert_eq!(
        referred_indicator(&objects, sighting)["pattern"],
        "[domain-name:value = 'list-evil.example']"
    );

    // harbor: a TAXII envelope of STIX objects, pointing at harbor's own indicator
    // (never a MISP body with an `indicator--` uuid).
    let harbor = files(&preview.join("harbor"));
    assert_eq!(harbor.len(), 1, "{harbor:?}");
    let envelope = read_json(&harbor[0]);
    assert!(envelope.get("uuid").is_none(), "{envelope}");
    let objects = envelope["objects"].as_array().expect("objects");
    let sighting = objects
        .iter()
        .find(|o| o["type"] == "sighting")
        .expect("sighting");
    assert_eq!(
        sighting["sighting_of_ref"],
        "indicator--b2e5c3f1-4ad9-4f0e-9a55-7f5b2c1d9e01"
    );
    stix_validate_objects(dir.path(), &envelope["objects"]);

    // The summary says where each body goes.
    let txt = std::fs::read_to_string(preview.join("summary.txt")).expect("summary.txt");
    for line in [
        "== circl (misp): 1 body(ies) in circl/",
        "== cert (stix_dir): 1 body(ies) in cert/",
        "== harbor (taxii): 1 body(ies) in harbor/",
    ] {
        assert!(txt.contains(line), "{line} not in {txt}");
    }

    // --sightings-out is deprecated and no longer mixes destinations: keyed by name,
    // each in its own format.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--sightings-out is deprecated"), "{stderr}");
    let legacy = read_json(&legacy);
    let keys: Vec<&String> = legacy.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["cert", "circl", "harbor"], "{legacy:#}");
    assert_eq!(legacy["circl"]["transport"], "misp");
    assert_eq!(legacy["circl"]["bodies"][0], misp);
    assert_eq!(legacy["harbor"]["bodies"][0], envelope);
}

#[test]
fn defect_17_preview_lists_withheld_with_reasons() {
    require_python_module("pymisp", "pymisp");
    let dir = tempfile::tempdir().expect("tempdir");
    let event = dir.path().join("circl.json");
    pymisp_event(
        &event,
        "8d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a",
        &["tlp:green"],
        &[
            (
                "target-email",
                "jane.doe@acme.example",
                "Targeting data",
                &[],
            ),
            ("domain", "ok.evil.example", "Network activity", &[]),
            (
                "domain",
                "red.evil.example",
                "Network activity",
                &["tlp:red"],
            ),
            (
                "domain",
                "chr.evil.example",
                "Network activity",
                &["tlp:ex:chr"],
            ),
        ],
    );
    let orphan = dir.path().join("orphan.txt");
    std::fs::write(&orphan, "orphan.evil.example\n").expect("list");
    let cfg = dir.path().join("tripline.toml");
    std::fs::write(
        &cfg,
        "[intel]\npaths = [\"x\"]\n\
         [[share.destinations]]\nname = \"circl\"\nanonymise = true\n\
         [share.destinations.transport]\ntype = \"misp\"\nurl = \"https://misp.invalid\"\n\
         api_key_env = \"TRIPLINE_NO_KEY\"\n\
         [[share.destinations]]\nname = \"acme\"\n\
         [share.destinations.transport]\ntype = \"misp\"\nurl = \"https://misp.invalid\"\n\
         api_key_env = \"TRIPLINE_NO_KEY\"\n",
    )
    .expect("config");
    let log = "2024-05-01T10:00:00Z mx01 postfix/smtp: to=<jane.doe@acme.example>, status=sent\n\
               2024-05-01T10:01:00Z dns01 query ok.evil.example A\n\
               2024-05-01T10:02:00Z dns01 query red.evil.example A\n\
               2024-05-01T10:03:00Z dns01 query chr.evil.example A\n\
               2024-05-01T10:04:00Z dns01 query orphan.evil.example A\n\
               2016-06-12T10:05:00Z proxy01 GET http://fake.website.com/malware/is/here 200\n";
    let preview = dir.path().join("preview");
    hunt_preview(
        dir.path(),
        &[
            format!("circl={}", event.display()),
            format!("orphan={}", orphan.display()),
            // The real PyMISP test event: distribution 0, attributes 5 (inherited).
            format!(
                "acme={}",
                root()
                    .join("fixtures/intel/misp/pymisp-tests/misp_event.json")
                    .display()
            ),
        ],
        log,
        "email, domain, url",
        &preview,
        &["--config", cfg.to_str().expect("path")],
    );
    let summary = read_json(&preview.join("summary.json"));
    let circl = section(&summary, "circl");
    let reasons = |d: &Value| -> Vec<(String, String)> {
        d["withheld"]
            .as_array()
            .expect("withheld")
            .iter()
            .map(|w| {
                (
                    w["indicator"].as_str().unwrap_or("").to_string(),
                    w["reason"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let mut got = reasons(circl);
    got.sort();
    assert_eq!(
        got,
        [
            ("chr.evil.example".to_string(), "unknown_tlp".to_string()),
            (
                "jane.doe@acme.example".to_string(),
                "victim_data".to_string()
            ),
            ("red.evil.example".to_string(), "tlp".to_string()),
        ],
        "{summary:#}"
    );
    for w in circl["withheld"].as_array().expect("withheld") {
        assert!(!w["why"].as_str().unwrap_or("").is_empty(), "{w}");
    }
    let sent: Vec<&str> = circl["bodies"]
        .as_array()
        .expect("bodies")
        .iter()
        .map(|b| b["indicator"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(sent, ["ok.evil.example"]);
    assert!(
        circl["anonymised"]
            .as_str()
            .unwrap_or("")
            .contains("our name left out"),
        "{summary:#}"
    );
    assert_eq!(
        reasons(section(&summary, "acme")),
        [(
            "fake.website.com/malware/is/here".to_string(),
            "distribution".to_string()
        )],
        "{summary:#}"
    );
    let none = summary["no_destination"]
        .as_array()
        .expect("no_destination");
    assert_eq!(none.len(), 1, "{summary:#}");
    assert_eq!(none[0]["indicator"], "orphan.evil.example");
    assert_eq!(none[0]["source"], "orphan");
    // What is in circl's directory is the one body, and no victim.
    for f in files(&preview.join("circl")) {
        let t = std::fs::read_to_string(&f).expect("body");
        assert!(t.contains("\"uuid\""), "{t}");
        for leak in ["jane", "red.evil", "source"] {
            assert!(!t.contains(leak), "{leak} in {t}");
        }
    }
    let txt = std::fs::read_to_string(preview.join("summary.txt")).expect("summary.txt");
    for needle in [
        "withheld (victim_data) jane.doe@acme.example",
        "withheld (tlp) red.evil.example",
        "withheld (distribution) fake.website.com/malware/is/here",
        "anonymised: our name left out; times rounded down to 3600 s",
        "orphan.evil.example (domain) x1 from intel source orphan",
    ] {
        assert!(txt.contains(needle), "{needle} not in {txt}");
    }
    // A second preview into the same directory replaces the first.
    hunt_preview(
        dir.path(),
        &[format!("circl={}", event.display())],
        "2024-05-01T10:01:00Z dns01 query ok.evil.example A\n",
        "domain",
        &preview,
        &["--config", cfg.to_str().expect("path")],
    );
    // But an unrelated non-empty directory is refused.
    let busy = dir.path().join("busy");
    std::fs::create_dir_all(&busy).expect("dir");
    std::fs::write(busy.join("notes.txt"), "mine").expect("file");
    let refused = tripline(&[
        "hunt",
        "--default-rules",
        "--preview-sharing",
        busy.to_str().expect("path"),
        "--intel",
        &format!("circl={}", event.display()),
        dir.path().join("hunt.log").to_str().expect("path"),
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("not empty"), "{}", text(&refused));
    assert_eq!(
        std::fs::read_to_string(busy.join("notes.txt")).expect("kept"),
        "mine"
    );
}

/// `sightings preview` writes exactly what `sightings send` then delivers: the STIX
/// directory's files (names and bytes) and the MISP request body.
#[test]
fn preview_bodies_are_byte_identical_to_delivery() {
    require_python_module("pymisp", "pymisp");
    let dir = tempfile::tempdir().expect("tempdir");
    let event = dir.path().join("circl.json");
    let event_uuid = "9e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b";
    pymisp_event(
        &event,
        event_uuid,
        &["tlp:green"],
        &[("domain", "c2.circl-evil.example", "Network activity", &[])],
    );
    let attr = attribute_uuids(&event)("c2.circl-evil.example");
    let list = dir.path().join("cert.txt");
    std::fs::write(
        &list,
        "list-evil.example\nlist-two.example\nlist-three.example\n",
    )
    .expect("list");
    // A real TAXII server taking the list's sightings two rows a request.
    let taxii = Medallion::start(&dir.path().join("medallion"));
    let taxii_password = dir.path().join("taxii-password");
    std::fs::write(&taxii_password, TAXII_PASSWORD).expect("password");
    let misp = FakeMisp::start(
        &dir.path().join("misp"),
        &misp_attributes(&[(&attr, "c2.circl-evil.example", event_uuid)]),
        0,
    );
    let bundles = dir.path().join("bundles");
    let state = dir.path().join("state");
    let share = format!(
        "source_name = \"ACME SOC\"\n\
         [[destinations]]\nname = \"circl\"\napproval = \"auto\"\n\
         [destinations.transport]\ntype = \"misp\"\nurl = \"{}\"\napi_key_file = \"{}\"\n\
         [[destinations]]\nname = \"cert\"\nintel_sources = [\"cert-list\"]\napproval = \"auto\"\n\
         [destinations.transport]\ntype = \"stix_dir\"\npath = \"{}\"\n\
         [[destinations]]\nname = \"isac\"\nintel_sources = [\"cert-list\"]\napproval = \"auto\"\n\
         batch_size = 2\n\
         [destinations.transport]\ntype = \"taxii\"\napi_root = \"{}\"\ncollection_id = \"{}\"\n\
         username = \"{TAXII_USER}\"\npassword_file = \"{}\"\n",
        misp.url(),
        misp.key_file().display(),
        bundles.display(),
        taxii.api_root,
        taxii.collection,
        taxii_password.display()
    );
    let cfg_path = dir.path().join("tripline.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[intel]\npaths = [\"circl={}\", \"cert-list={}\"]\n[state]\ndir = \"{}\"\n[share]\n{}",
            event.display(),
            list.display(),
            state.display(),
            share
                .replace("[[destinations]]", "[[share.destinations]]")
                .replace("[destinations.transport]", "[share.destinations.transport]")
        ),
    )
    .expect("config");
    let outbox = Outbox::open(&state, &config(&share)).expect("outbox");
    outbox
        .record(&confirmation(
            "r",
            vec![
                obs(
                    T0,
                    "c2.circl-evil.example",
                    Kind::Domain,
                    vec![prov("circl", Some(event_uuid), Some(&attr))],
                ),
                obs(
                    T0 + 60,
                    "list-evil.example",
                    Kind::Domain,
                    vec![prov("cert-list", None, None)],
                ),
                obs(
                    T0 + 120,
                    "list-two.example",
                    Kind::Domain,
                    vec![prov("cert-list", None, None)],
                ),
                obs(
                    T0 + 180,
                    "list-three.example",
                    Kind::Domain,
                    vec![prov("cert-list", None, None)],
                ),
            ],
        ))
        .expect("record");
    drop(outbox);
    let c = cfg_path.to_str().expect("path");
    let preview = dir.path().join("preview");
    let out = run_ok(&[
        "sightings",
        "preview",
        "--config",
        c,
        preview.to_str().expect("path"),
    ]);
    assert!(
        // MISP 1 + STIX directory 3 + TAXII 2 requests (2 rows, then 1).
        String::from_utf8_lossy(&out.stdout).contains("6 body(ies) for 3 destination(s)"),
        "{}",
        text(&out)
    );
    let sent = run_ok(&["sightings", "send", "--config", c]);
    assert!(
        String::from_utf8_lossy(&sent.stdout).contains("7 sighting(s) delivered"),
        "{}",
        text(&sent)
    );
    // STIX directory: same file names, same bytes.
    let previewed = files(&preview.join("cert"));
    let delivered = files(&bundles);
    let names = |v: &[PathBuf]| -> Vec<String> {
        v.iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().to_string())
            .collect()
    };
    assert_eq!(names(&previewed), names(&delivered));
    for (p, d) in previewed.iter().zip(&delivered) {
        assert_eq!(
            std::fs::read(p).expect("preview"),
            std::fs::read(d).expect("delivered"),
            "{} differs from {}",
            p.display(),
            d.display()
        );
        stix_validate(d);
    }
    // MISP: the body the server received.
    let received: Vec<String> = misp.state()["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| r["path"] == "/sightings/add")
        .map(|r| r["body"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(received.len(), 1, "{received:?}");
    let previewed = files(&preview.join("circl"));
    assert_eq!(previewed.len(), 1);
    assert_eq!(
        String::from_utf8(std::fs::read(&previewed[0]).expect("preview")).expect("utf-8"),
        received[0]
    );
    pymisp_check(dir.path(), received[0].as_bytes());
    // TAXII: the envelopes posted, in order (the audit log keeps each request's body
    // as sent), are the preview's files, two rows in the first.
    let audit = run_ok(&["sightings", "audit", "--json", "--config", c]);
    let posted: Vec<String> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|a| a["destination"] == "isac")
        .map(|a| a["body"].as_str().unwrap_or("").to_string())
        .collect();
    let previewed: Vec<String> = files(&preview.join("isac"))
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("preview"))
        .collect();
    assert_eq!(previewed.len(), 2, "{previewed:?}");
    assert_eq!(posted, previewed);
    let first: Value = serde_json::from_str(&previewed[0]).expect("envelope");
    let sightings = |v: &Value| {
        v["objects"]
            .as_array()
            .map(|o| o.iter().filter(|o| o["type"] == "sighting").count())
    };
    assert_eq!(sightings(&first), Some(2), "{first:#}");
    let held = taxii.objects();
    assert_eq!(
        held.iter().filter(|o| o["type"] == "sighting").count(),
        3,
        "{held:#?}"
    );
    for body in &previewed {
        let v: Value = serde_json::from_str(body).expect("envelope");
        stix_validate_objects(dir.path(), &v["objects"]);
    }
}

/// How the local data relates to each community's intel is counted, and a
/// destination's section (and directory) never names another community.
#[test]
fn preview_summary_never_names_another_community_to_the_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lists = [
        ("alphacom", "shared.evil.example\nonly-alpha.evil.example\n"),
        ("bravocom", "shared.evil.example\n"),
        ("secretclub", "shared.evil.example\n"),
    ];
    let mut intel = Vec::new();
    for (name, body) in lists {
        let p = dir.path().join(format!("{name}.txt"));
        std::fs::write(&p, body).expect("list");
        intel.push(format!("{name}={}", p.display()));
    }
    let cfg = dir.path().join("tripline.toml");
    std::fs::write(
        &cfg,
        format!(
            "[intel]\npaths = [\"x\"]\n\
             [[share.destinations]]\nname = \"alphacom\"\n\
             [share.destinations.transport]\ntype = \"stix_dir\"\npath = \"/nonexistent/a\"\n\
             [[share.destinations]]\nname = \"bravocom\"\nlist_event_uuids = [\"{E1}\"]\n\
             [share.destinations.transport]\ntype = \"misp\"\nurl = \"https://misp.invalid\"\n\
             api_key_env = \"TRIPLINE_NO_KEY\"\n"
        ),
    )
    .expect("config");
    let preview = dir.path().join("preview");
    hunt_preview(
        dir.path(),
        &intel,
        "2024-05-01T10:00:00Z dns01 query shared.evil.example A\n\
         2024-05-01T10:01:00Z dns01 query only-alpha.evil.example A\n",
        "domain",
        &preview,
        &["--config", cfg.to_str().expect("path")],
    );
    let summary = read_json(&preview.join("summary.json"));
    let names = ["alphacom", "bravocom", "secretclub"];
    for (me, seen, also) in [("alphacom", 2, 1), ("bravocom", 1, 1)] {
        let s = section(&summary, me);
        assert_eq!(s["relation"]["indicators_seen"], seen, "{me}: {s:#}");
        assert_eq!(s["relation"]["indicators_confirmed"], seen, "{me}: {s:#}");
        assert_eq!(
            s["relation"]["also_held_by_other_communities"], also,
            "{me}: {s:#}"
        );
        let mut texts = vec![s.to_string()];
        for f in files(&preview.join(me)) {
            texts.push(std::fs::read_to_string(&f).expect("body"));
        }
        for t in texts {
            for other in names.iter().filter(|n| **n != me) {
                assert!(!t.contains(other), "{other} named to {me}: {t}");
            }
        }
    }
    assert_eq!(
        section(&summary, "bravocom")["relation"]["events_touched"],
        0
    );
    // summary.txt: the same, section by section.
    let txt = std::fs::read_to_string(preview.join("summary.txt")).expect("summary.txt");
    for part in txt.split("\n== ").skip(1) {
        let Some(me) = names.iter().find(|n| part.starts_with(**n)) else {
            continue; // the "not shared with anyone" section
        };
        for other in names.iter().filter(|n| *n != me) {
            assert!(!part.contains(other), "{other} named to {me}: {part}");
        }
    }
    assert!(
        txt.contains("2 indicator(s) seen, 2 confirmed, 0 event(s) touched; 1 of those indicators also held by other communities"),
        "{txt}"
    );
}

// ---------------------------------------------------------------------------------
// Point 10: `sightings list` columns.

#[test]
fn sightings_list_shows_type_destination_event_tlp_and_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let share = "[[destinations]]\nname = \"circl\"\n[destinations.transport]\ntype = \"misp\"\n\
                 url = \"https://misp.invalid\"\napi_key_env = \"TRIPLINE_NO_KEY\"\n";
    let cfg_path = dir.path().join("tripline.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[intel]\npaths = [\"x\"]\n[state]\ndir = \"{}\"\n[share]\n{}",
            state.display(),
            share
                .replace("[[destinations]]", "[[share.destinations]]")
                .replace("[destinations.transport]", "[share.destinations.transport]")
        ),
    )
    .expect("config");
    let mut p = prov("circl", Some(E1), Some(A1));
    p.tags = vec!["tlp:green".into()];
    let outbox = Outbox::open(&state, &config(share)).expect("outbox");
    outbox
        .record(&confirmation(
            "r",
            vec![obs(T0, "evil.example", Kind::Domain, vec![p.clone()])],
        ))
        .expect("record");
    outbox
        .queue_false_positive("benign.example", Kind::Domain, Some("our updater"), &[p])
        .expect("fp");
    assert_eq!(
        outbox
            .list(Some(State::PendingApproval))
            .expect("list")
            .len(),
        2
    );
    drop(outbox);
    let c = cfg_path.to_str().expect("path");
    let out = run_ok(&["sightings", "list", "--config", c]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    for column in ["STATE", "TYPE", "DESTINATION", "EVENT", "TLP"] {
        assert!(lines[0].contains(column), "{column}: {stdout}");
    }
    let row = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no row {needle}: {stdout}"))
            .to_string()
    };
    let positive = row("evil.example ");
    let fp = row("benign.example");
    for (line, ty) in [(&positive, "sighting"), (&fp, "false-positive")] {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[1], "pending_approval", "{line}");
        assert_eq!(words[2], ty, "{line}");
        assert_eq!(words[3], "circl", "{line}");
        assert!(words.contains(&E1), "{line}");
        assert_eq!(words.last().copied(), Some("green"), "{line}");
    }
    let json = run_ok(&["sightings", "list", "--json", "--config", c]);
    let rows: Vec<Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(rows.len(), 2);
    let types: Vec<&str> = rows
        .iter()
        .map(|r| r["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["sighting", "false-positive"]);
    for r in &rows {
        assert_eq!(r["state"], "pending_approval");
        assert_eq!(r["destination"], "circl");
        assert_eq!(r["events"], serde_json::json!([E1]));
        assert_eq!(r["tlp"], "green");
        assert_eq!(r["kind"], "domain");
        assert_eq!(r["attribute"], A1);
    }
}
