//! The real binary: `rules check`, `hunt --rules --sightings-out`, `sightings`, and
//! `feedback false-positive`.

use crate::util::{root, tripline};
use std::process::{Command, Output};

#[test]
fn rules_check_reports_precise_errors() {
    let ok = tripline(&["rules", "check", "rules"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("5 rule(s) OK"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "title: x\nid: 0b7c1e52-3c4d-4e5f-8a9b-0c1d2e3f4a5b\nlevel: high\ncorrelation:\n  type: event_count\n  timespan: 10x\n  condition: {gte: 2}\n",
    )
    .unwrap();
    let bad = tripline(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("bad.yml:6: correlation.timespan"), "{err}");
}

#[test]
fn hunt_confirms_and_previews_sightings_without_log_text() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("share.json");
    let out = tripline(&[
        "hunt",
        "-q",
        "--default-rules",
        "--sightings-out",
        out_path.to_str().unwrap(),
        "--sightings-format",
        "stix",
        "--intel",
        "fixtures/intel/traps",
        "--intel",
        "fixtures/intel/stix",
        "fixtures/logs/traps.log",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let confirmations: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|a| a["event"]["kind"] == "alert")
        .collect();
    // 91.198.51.77 three times from fw01 within the hour, and the file hash.
    let rules: Vec<&str> = confirmations
        .iter()
        .map(|a| a["rule"]["id"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"d7a1c34b-8fee-4108-8389-8137af4da63c"),
        "{rules:?}"
    );
    assert!(
        rules.contains(&"b3be4efe-e2e7-4b17-93e4-bd85040f3de6"),
        "{rules:?}"
    );
    let repeated = confirmations
        .iter()
        .find(|a| a["rule"]["id"] == "d7a1c34b-8fee-4108-8389-8137af4da63c")
        .unwrap();
    assert_eq!(repeated["tripline"]["group"]["host"], "fw01");
    assert_eq!(repeated["tripline"]["count"], 3);
    let shared = std::fs::read_to_string(&out_path).unwrap();
    // Keyed by destination (one per intel source by default), STIX bundles each.
    let by_dest: serde_json::Value = serde_json::from_str(&shared).unwrap();
    let sightings: Vec<&serde_json::Value> = by_dest
        .as_object()
        .unwrap()
        .values()
        .flat_map(|d| d["bodies"].as_array().unwrap())
        .flat_map(|b| b["objects"].as_array().unwrap())
        .filter(|o| o["type"] == "sighting")
        .collect();
    assert_eq!(sightings.len(), 2, "{shared}");
    // Nothing from the log lines but the indicator values.
    for needle in [
        "fw01",
        "av01",
        "192.168.1.5",
        "C:\\\\Users",
        "dport",
        "2024-05-01T10:00:00Z fw01",
    ] {
        assert!(!shared.contains(needle), "{needle} leaked into {shared}");
    }
    // Without rules nothing is shared.
    let refused = tripline(&[
        "hunt",
        "-q",
        "--sightings-out",
        "x.json",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ]);
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn feedback_false_positive_is_queued_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [\"fixtures/intel/stix\"]\n[state]\ndir = {:?}\n[[share.destinations]]\nname = \"harbor\"\nintel_sources = [\"harbor-campaign\"]\nmax_tlp = \"amber+strict\"\n[share.destinations.transport]\ntype = \"stix_dir\"\npath = {:?}\n",
            dir.path().join("state").display().to_string(),
            dir.path().join("bundles").display().to_string()
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let fp = tripline(&[
        "feedback",
        "false-positive",
        "update-check.example.net",
        "--reason",
        "our updater",
        "--config",
        c,
    ]);
    assert!(
        fp.status.success(),
        "{}{}",
        String::from_utf8_lossy(&fp.stdout),
        String::from_utf8_lossy(&fp.stderr)
    );
    let list = tripline(&["sightings", "list", "--json", "--config", c]);
    let text = String::from_utf8_lossy(&list.stdout);
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(rows[0]["indicator"], "update-check.example.net");
    assert_eq!(rows[0]["destination"], "harbor");
    assert_eq!(rows[0]["sighting_type"], "false-positive", "{text}");
    // Manual approval by default: approve, send, then it is sent, as a STIX bundle.
    let id = rows[0]["id"].as_i64().unwrap().to_string();
    assert!(tripline(&["sightings", "approve", &id, "--config", c])
        .status
        .success());
    let sent = tripline(&["sightings", "send", "--config", c]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stdout)
    );
    let after = tripline(&["sightings", "list", "--state", "sent", "--config", c]);
    assert!(String::from_utf8_lossy(&after.stdout).contains("1 sighting(s)"));
    let bundles: Vec<_> = std::fs::read_dir(dir.path().join("bundles"))
        .unwrap()
        .collect();
    assert_eq!(bundles.len(), 1);
    let unknown = tripline(&[
        "feedback",
        "false-positive",
        "never-seen.example.org",
        "--config",
        c,
    ]);
    assert_eq!(unknown.status.code(), Some(1));
}

/// Stdout and stderr together, checked for `Debug` renderings and variant names.
fn assert_sentences(what: &str, out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "{",
        "Some(",
        "None",
        "NoDestination",
        "NoTarget",
        "DeliveryReport",
        "FalsePositive",
        "Tlp",
    ] {
        assert!(!text.contains(needle), "{what} shows {needle:?}:\n{text}");
    }
    text
}

#[test]
fn sightings_and_feedback_print_sentences_not_debug() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").display().to_string();
    // No destination serves the intel's source: the indicator cannot be reported.
    let unserved = dir.path().join("unserved.toml");
    std::fs::write(
        &unserved,
        format!(
            "[intel]\npaths = [\"fixtures/intel/stix\"]\n[state]\ndir = {state:?}\n[[share.destinations]]\nname = \"elsewhere\"\n[share.destinations.transport]\ntype = \"stix_dir\"\npath = {:?}\n",
            dir.path().join("bundles").display().to_string()
        ),
    )
    .unwrap();
    let fp = tripline(&[
        "feedback",
        "false-positive",
        "update-check.example.net",
        "--config",
        unserved.to_str().unwrap(),
    ]);
    let text = assert_sentences("feedback", &fp);
    assert!(fp.status.success(), "{text}");
    assert!(
        text.contains("no destination is configured for source \"harbor-campaign\""),
        "{text}"
    );
    // A MISP destination whose key is missing: `send` says which variable, and what
    // happened to the sighting, in words.
    let misp = dir.path().join("misp.toml");
    std::fs::write(
        &misp,
        format!(
            "[intel]\npaths = [\"fixtures/intel/stix\"]\n[state]\ndir = {state:?}\n[[share.destinations]]\nname = \"harbor\"\nintel_sources = [\"harbor-campaign\"]\n[share.destinations.transport]\ntype = \"misp\"\nurl = \"https://misp.example\"\napi_key_env = \"TRIPLINE_TEST_UNSET_KEY\"\n"
        ),
    )
    .unwrap();
    let m = misp.to_str().unwrap();
    let unset = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tripline"))
            .args(args)
            .current_dir(root())
            .env_remove("TRIPLINE_TEST_UNSET_KEY")
            .output()
            .expect("run tripline")
    };
    let fp = unset(&[
        "feedback",
        "false-positive",
        "update-check.example.net",
        "--config",
        m,
    ]);
    let text = assert_sentences("feedback", &fp);
    assert!(text.contains("1 sighting(s) created"), "{text}");
    let approve = unset(&["sightings", "approve", "--all", "--config", m]);
    assert_sentences("approve", &approve);
    let sent = unset(&["sightings", "send", "--config", m]);
    let text = assert_sentences("send", &sent);
    assert!(
        text.contains("destination \"harbor\" cannot be reached: environment variable TRIPLINE_TEST_UNSET_KEY is not set"),
        "{text}"
    );
    assert!(text.contains("0 sighting(s) delivered"), "{text}");
    let bad_state = unset(&["sightings", "list", "--state", "lost", "--config", m]);
    let text = assert_sentences("list", &bad_state);
    assert!(
        text.contains("unknown state \"lost\": expected one of pending_approval"),
        "{text}"
    );
}
