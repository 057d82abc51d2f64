//! False-positive feedback closes the loop (issue 10, point 7 and defect 15): the real
//! binary — `feedback false-positive` by the value an alert shows or by alert id,
//! `feedback list` and `remove`, `run --stdin` and a running sidecar over a file that
//! picks up a report made by another process — against list intel and a STIX
//! directory destination.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::util::sidecar::{free_addr, get, metric, wait_for};
use crate::util::{root, tripline};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A state dir, list intel (`atlas` holds the domain and an address range, `other`
/// a second domain), a rule that confirms every match, and a STIX directory
/// destination per source with automatic approval. `extra` is appended to the config.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(extra: &str) -> Setup {
        Setup::with(|_| extra.to_string())
    }

    /// `extra(dir)`: config text naming paths in the test's directory.
    fn with(extra: impl FnOnce(&Path) -> String) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        let extra = extra(p);
        std::fs::write(
            p.join("atlas.txt"),
            "atlas-upd.com\n45.77.10.0/24\nxn--bcher-kva.example\n",
        )
        .expect("intel");
        std::fs::write(p.join("other.txt"), "other-bad.example\n").expect("intel");
        std::fs::create_dir_all(p.join("rules")).expect("rules");
        std::fs::write(
            p.join("rules/every.yml"),
            "title: Every match\nid: 5d0c7a7e-1f2b-4c3d-8e9f-a0b1c2d3e4f5\nlevel: high\n\
             match:\n  types: [domain, ipv4]\n",
        )
        .expect("rule");
        let s = |x: &str| p.join(x).display().to_string();
        let config = p.join("tripline.toml");
        std::fs::write(
            &config,
            format!(
                "[metrics]\nenabled = false\n[intel]\npaths = [{:?}, {:?}]\n[state]\ndir = {:?}\n[rules]\ndir = {:?}\n{extra}\n\
                 [[share.destinations]]\nname = \"atlas\"\napproval = \"auto\"\n\
                 [share.destinations.transport]\ntype = \"stix_dir\"\npath = {:?}\n\
                 [[share.destinations]]\nname = \"other\"\napproval = \"auto\"\n\
                 [share.destinations.transport]\ntype = \"stix_dir\"\npath = {:?}\n",
                s("atlas.txt"),
                s("other.txt"),
                s("state"),
                s("rules"),
                s("bundles-atlas"),
                s("bundles-other"),
            ),
        )
        .expect("config");
        Setup { dir, config }
    }

    fn c(&self) -> &str {
        self.config.to_str().expect("utf-8 path")
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--config", self.c()]);
        tripline(&all)
    }

    /// `run --stdin` over `lines`: the alerts written (line alerts and confirmations).
    fn run_stdin(&self, lines: &str) -> Vec<Value> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
            .args(["run", "--stdin", "--config", self.c()])
            .current_dir(root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tripline run --stdin");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(lines.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("run --stdin");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("alert json"))
            .collect()
    }

    /// `sightings list --json`.
    fn rows(&self) -> Vec<Value> {
        let out = self.run(&["sightings", "list", "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("row json"))
            .collect()
    }

    fn positive_rows(&self, indicator: &str) -> Vec<Value> {
        self.rows()
            .into_iter()
            .filter(|r| r["sighting_type"] == "sighting" && r["indicator"] == indicator)
            .collect()
    }

    fn false_positive(&self, value: &str, reason: &str) -> Output {
        let out = self.run(&["feedback", "false-positive", value, "--reason", reason]);
        assert!(out.status.success(), "{value}: {}", text(&out));
        out
    }

    fn path(&self, x: &str) -> PathBuf {
        self.dir.path().join(x)
    }
}

fn line_alerts(alerts: &[Value]) -> Vec<&Value> {
    alerts
        .iter()
        .filter(|a| a["event"]["kind"] == "event")
        .collect()
}

#[test]
fn defect_15_false_positive_by_shown_subdomain_is_reported() {
    let s = Setup::new("");
    let alerts = s.run_stdin("2024-05-01T10:00:00Z fw01 dns query a.b.atlas-upd.com\n");
    let shown = line_alerts(&alerts)[0]["threat"]["enrichments"][0]["matched"]["atomic"]
        .as_str()
        .expect("atomic")
        .to_string();
    assert_eq!(shown, "a.b.atlas-upd.com");
    // What the alert showed, not the indicator: was "nothing to report".
    let out = s.false_positive(&shown, "our updater");
    let said = text(&out);
    assert!(
        said.contains("false positive atlas-upd.com (domain"),
        "{said}"
    );
    let fps: Vec<Value> = s
        .rows()
        .into_iter()
        .filter(|r| r["sighting_type"] == "false-positive")
        .collect();
    assert_eq!(fps.len(), 1, "{fps:?}");
    assert_eq!(fps[0]["indicator"], "atlas-upd.com");
    assert_eq!(fps[0]["destination"], "atlas");
    // Listed, with what was reported and who was told.
    let list = s.run(&["feedback", "list", "--json"]);
    let entries: Vec<Value> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(entries.len(), 1, "{}", text(&list));
    assert_eq!(entries[0]["indicator"], "atlas-upd.com");
    assert_eq!(entries[0]["kind"], "domain");
    assert_eq!(entries[0]["reported"], "a.b.atlas-upd.com");
    assert_eq!(entries[0]["reason"], "our updater");
    assert_eq!(entries[0]["communities"], serde_json::json!(["atlas"]));
    let human = text(&s.run(&["feedback", "list"]));
    assert!(human.contains("1 suppression(s)"), "{human}");
    assert!(human.contains("notified: atlas"), "{human}");
}

/// Every written form of a value resolves as the matcher resolves a log line.
#[test]
fn false_positive_values_in_any_written_form() {
    // (value reported, indicator it stands for)
    let cases = [
        ("A.B.ATLAS-UPD.COM.", "atlas-upd.com"),
        ("atlas-upd[.]com", "atlas-upd.com"),
        ("hxxps://x.atlas-upd[.]com/path?q=1", "atlas-upd.com"),
        ("45.77.10.99", "45.77.10.0/24"),
        ("45.77.10[.]7", "45.77.10.0/24"),
        ("www.bücher.example", "xn--bcher-kva.example"),
    ];
    let s = Setup::new("");
    for (value, want) in cases {
        let out = s.false_positive(value, "x");
        let said = text(&out);
        assert!(
            said.contains(&format!("false positive {want} (")),
            "{value}: {said}"
        );
    }
    let missing = s.run(&["feedback", "false-positive", "not-listed.example"]);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(text(&missing).contains("nothing to report"));
}

#[test]
fn defect_15_false_positive_stops_positive_sightings() {
    let s = Setup::new("");
    s.run_stdin("2024-05-01T10:00:00Z fw01 dns query a.b.atlas-upd.com\n");
    assert_eq!(s.positive_rows("atlas-upd.com").len(), 1);
    s.false_positive("a.b.atlas-upd.com", "our updater");
    // The next occurrence, a day later (a new window): alerted with the mark, and no
    // positive sighting queued.
    let alerts = s.run_stdin("2024-05-02T10:00:00Z fw01 dns query c.atlas-upd.com\n");
    let lines = line_alerts(&alerts);
    assert_eq!(lines.len(), 1, "{alerts:?}");
    assert_eq!(lines[0]["tripline"]["suppressed"], true, "{}", lines[0]);
    let mark = &lines[0]["tripline"]["enrichments"][0]["suppressed"];
    assert_eq!(mark["reason"], "our updater", "{}", lines[0]);
    assert!(mark["at"].is_string(), "{mark}");
    let rows = s.positive_rows("atlas-upd.com");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["count"], 1, "{rows:?}");
    // Another community's indicator on the same line is not affected.
    let alerts =
        s.run_stdin("2024-05-03T10:00:00Z fw01 dns query c.atlas-upd.com then other-bad.example\n");
    let lines = line_alerts(&alerts);
    assert!(
        lines[0]["tripline"].get("suppressed").is_none(),
        "{}",
        lines[0]
    );
    assert_eq!(s.positive_rows("other-bad.example").len(), 1);
    assert_eq!(s.positive_rows("atlas-upd.com").len(), 1);
}

#[test]
fn feedback_remove_resumes_positive_sightings() {
    let s = Setup::new("");
    s.false_positive("a.b.atlas-upd.com", "our updater");
    let removed = s.run(&["feedback", "remove", "A.B.atlas-upd[.]com"]);
    let said = text(&removed);
    assert!(removed.status.success(), "{said}");
    assert!(said.contains("positive sightings of it resume"), "{said}");
    assert!(said.contains("cannot be taken back"), "{said}");
    let list = text(&s.run(&["feedback", "list"]));
    assert!(list.contains("0 suppression(s)"), "{list}");
    let alerts = s.run_stdin("2024-05-02T10:00:00Z fw01 dns query c.atlas-upd.com\n");
    assert!(line_alerts(&alerts)[0]["tripline"]
        .get("suppressed")
        .is_none());
    assert_eq!(s.positive_rows("atlas-upd.com").len(), 1);
    // The false positive already queued stays.
    assert!(s
        .rows()
        .iter()
        .any(|r| r["sighting_type"] == "false-positive"));
    // By id too; an unknown one removes nothing.
    s.false_positive("45.77.10.1", "scanner of ours");
    let entries = text(&s.run(&["feedback", "list", "--json"]));
    let id = serde_json::from_str::<Value>(entries.lines().next().expect("one")).expect("json")
        ["id"]
        .to_string();
    assert!(s.run(&["feedback", "remove", &id]).status.success());
    assert_eq!(s.run(&["feedback", "remove", &id]).status.code(), Some(1));
}

#[test]
fn suppressed_alerts_drop_mode_drops_alerts() {
    let s = Setup::new("[feedback]\nsuppressed_alerts = \"drop\"\n");
    s.false_positive("atlas-upd.com", "our updater");
    let alerts = s.run_stdin(
        "2024-05-02T10:00:00Z fw01 dns query c.atlas-upd.com\n\
         2024-05-02T10:01:00Z fw01 dns query c.atlas-upd.com then other-bad.example\n",
    );
    let lines = line_alerts(&alerts);
    // The first line is not written; the second without the suppressed indicator.
    assert_eq!(lines.len(), 1, "{alerts:?}");
    let e = lines[0]["threat"]["enrichments"].as_array().expect("array");
    assert_eq!(e.len(), 1, "{}", lines[0]);
    assert_eq!(e[0]["indicator"]["name"], "other-bad.example");
    assert_eq!(
        lines[0]["tripline"]["enrichments"].as_array().map(Vec::len),
        Some(1)
    );
    assert!(s.positive_rows("atlas-upd.com").is_empty());
}

/// The false-positive sighting carries the indicator, never what the analyst reported,
/// the reason, or anything of the log line (here to the fake MISP, by attribute
/// UUID); reported by alert id.
#[test]
fn false_positive_by_alert_id_sends_only_the_indicator() {
    const ATTR: &str = "5b3c2a1d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    const EVENT: &str = "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9";
    let dir = tempfile::tempdir().expect("tempdir");
    let misp = crate::util::FakeMisp::start(
        &dir.path().join("misp"),
        &crate::util::misp_attributes(&[(ATTR, "atlas-upd.com", EVENT)]),
        0,
    );
    let key = misp.key_file();
    let url = misp.url();
    // Alerts to a file, so that `--alert ID` finds them there.
    let p = dir.path();
    let event = serde_json::json!({"Event": {
        "uuid": EVENT, "info": "updater C2", "distribution": "3",
        "Attribute": [{"uuid": ATTR, "type": "domain", "category": "Network activity",
                       "value": "atlas-upd.com", "to_ids": true, "distribution": "5"}]}});
    std::fs::write(p.join("circl.json"), event.to_string()).expect("event");
    std::fs::create_dir_all(p.join("rules")).expect("rules");
    std::fs::write(
        p.join("rules/every.yml"),
        "title: Every match\nid: 5d0c7a7e-1f2b-4c3d-8e9f-a0b1c2d3e4f5\nlevel: high\n\
         match:\n  types: [domain]\n",
    )
    .expect("rule");
    let config = p.join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[metrics]\nenabled = false\n[alerts]\npath = {:?}\n[intel]\npaths = [{:?}]\n\
             [state]\ndir = {:?}\n[rules]\ndir = {:?}\n\
             [[share.destinations]]\nname = \"circl\"\napproval = \"auto\"\n\
             [share.destinations.transport]\ntype = \"misp\"\nurl = {url:?}\napi_key_file = {:?}\n",
            p.join("alerts.jsonl").display().to_string(),
            p.join("circl.json").display().to_string(),
            p.join("state").display().to_string(),
            p.join("rules").display().to_string(),
            key.display().to_string(),
        ),
    )
    .expect("config");
    let s = Setup { dir, config };
    let alerts_file = s.path("alerts.jsonl");
    s.run_stdin("2024-05-01T10:00:00Z fw01 user jane.doe dns query a.b.atlas-upd.com\n");
    let written = std::fs::read_to_string(&alerts_file).expect("alerts written");
    let alert: Value = written
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .find(|a| a["event"]["kind"] == "event")
        .expect("a line alert");
    let id = alert["tripline"]["alert_id"].as_str().expect("alert id");
    assert_eq!(id.len(), 16);
    let out = s.run(&[
        "feedback",
        "false-positive",
        "--alert",
        id,
        "--reason",
        "secret-reason-xyz",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("false positive atlas-upd.com"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("which a.b.atlas-upd.com matched"),
        "{}",
        text(&out)
    );
    let unknown = s.run(&["feedback", "false-positive", "--alert", "0000000000000000"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(text(&unknown).contains("no alert with id 0000000000000000"));
    let sent = s.run(&["sightings", "send"]);
    assert!(sent.status.success(), "{}", text(&sent));
    let bodies: Vec<String> = misp.state()["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| r["path"] == "/sightings/add")
        .map(|r| r["body"].as_str().unwrap_or("").to_string())
        .collect();
    let fp: Vec<&String> = bodies
        .iter()
        .filter(|b| b.contains("\"type\":\"1\"") || b.contains("\"type\":1"))
        .collect();
    assert_eq!(fp.len(), 1, "{bodies:?}");
    assert!(fp[0].contains(ATTR), "{}", fp[0]);
    for b in &bodies {
        for needle in [
            "a.b.atlas-upd.com",
            "secret-reason-xyz",
            "jane.doe",
            "fw01",
            "dns query",
        ] {
            assert!(!b.contains(needle), "{needle} left in {b}");
        }
    }
    misp.stop();
}

fn spawn_run(config: &Path, metrics: std::net::SocketAddr) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["run", "--config", config.to_str().expect("utf-8")])
        .args(["--metrics-addr", &metrics.to_string()])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tripline run")
}

/// A report made by another process while the sidecar runs is picked up without a
/// restart: later alerts carry the mark, and their sightings are dropped as suppressed.
#[test]
fn running_sidecar_picks_up_a_false_positive_from_another_process() {
    let s = Setup::with(|p| {
        format!(
            "[[sources]]\ntype = \"file\"\ninclude = [{:?}]\nstart_at = \"beginning\"\n\
             rescan_interval_ms = 100\n[alerts]\npath = {:?}\n",
            p.join("dns.log").display().to_string(),
            p.join("alerts.jsonl").display().to_string()
        )
    });
    let (log, alerts) = (s.path("dns.log"), s.path("alerts.jsonl"));
    std::fs::write(&log, "").expect("log");
    let metrics = free_addr();
    let mut child = spawn_run(&s.config, metrics);
    let append = |minute: u32| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .expect("open log");
        // Ten minutes apart: each line moves the rules' event clock past the last.
        let t = chrono::DateTime::<chrono::Utc>::from_timestamp(
            1_714_557_600 + i64::from(minute) * 600,
            0,
        )
        .expect("time");
        writeln!(
            f,
            "{} fw01 dns query n{minute}.atlas-upd.com",
            t.format("%Y-%m-%dT%H:%M:%SZ")
        )
        .expect("append");
    };
    let written = || -> Vec<Value> {
        std::fs::read_to_string(&alerts)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    append(0);
    append(1);
    wait_for("the first confirmation's sighting", 60, || {
        !s.positive_rows("atlas-upd.com").is_empty()
    });
    s.false_positive("n0.atlas-upd.com", "our updater");
    let mut minute = 2;
    wait_for("an alert marked suppressed", 60, || {
        append(minute);
        minute += 1;
        let got = written();
        got.iter().any(|a| a["tripline"]["suppressed"] == true)
    });
    // A line far later closes what waits, so its sightings are routed (and dropped).
    append(1000);
    wait_for("sightings dropped as suppressed", 60, || {
        get(metrics, "/metrics").is_some_and(|(_, body)| {
            body.lines().any(|l| {
                l.starts_with("tripline_sightings_dropped_total{reason=\"suppressed\"}")
                    && !l.ends_with(" 0")
            })
        })
    });
    assert!(metric(metrics, "tripline_observations_suppressed_total").unwrap_or(0.0) >= 1.0);
    // Only lines confirmed before the report were counted in a positive sighting.
    let counted: i64 = s
        .positive_rows("atlas-upd.com")
        .iter()
        .filter_map(|r| r["count"].as_i64())
        .sum();
    assert!(
        counted < i64::from(minute),
        "{counted} of {minute} lines sighted"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// A hunt given the sidecar's configuration knows its reported false positives: their
/// alerts carry the mark, and the sharing preview withholds their positive sightings
/// with the reason (was: the hunt ignored the suppression list and previewed them as
/// sent).
#[test]
fn hunt_with_the_config_honours_reported_false_positives() {
    let s = Setup::new("");
    s.false_positive("a.b.atlas-upd.com", "our updater");
    let log = s.path("dns.log");
    std::fs::write(
        &log,
        "2024-05-02T10:00:00Z fw01 dns query c.atlas-upd.com\n\
         2024-05-02T10:01:00Z fw01 dns query other-bad.example\n",
    )
    .expect("log");
    let preview = s.path("preview");
    let alerts_file = s.path("alerts.jsonl");
    let rules = s.path("rules");
    let out = s.run(&[
        "hunt",
        "-q",
        "--no-default-warninglists",
        "--intel",
        &format!("atlas={}", s.path("atlas.txt").display()),
        "--intel",
        &format!("other={}", s.path("other.txt").display()),
        "--rules",
        rules.to_str().expect("utf-8"),
        "-o",
        alerts_file.to_str().expect("utf-8"),
        "--preview-sharing",
        preview.to_str().expect("utf-8"),
        log.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let alerts: Vec<Value> = std::fs::read_to_string(&alerts_file)
        .expect("alerts")
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert json"))
        .collect();
    let lines = line_alerts(&alerts);
    assert_eq!(lines.len(), 2, "{alerts:?}");
    let atlas = lines
        .iter()
        .find(|a| a["threat"]["enrichments"][0]["indicator"]["name"] == "atlas-upd.com")
        .expect("the atlas alert");
    assert_eq!(atlas["tripline"]["suppressed"], true, "{atlas}");
    let other = lines
        .iter()
        .find(|a| a["threat"]["enrichments"][0]["indicator"]["name"] == "other-bad.example")
        .expect("the other alert");
    assert!(other["tripline"].get("suppressed").is_none(), "{other}");
    // The preview: nothing for atlas-upd.com, withheld as suppressed; other-bad.example
    // would be sent to its community.
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(preview.join("summary.json")).expect("summary.json"),
    )
    .expect("summary json");
    let text_summary = std::fs::read_to_string(preview.join("summary.txt")).expect("summary");
    let dests = summary["destinations"].as_array().expect("destinations");
    let atlas = dests
        .iter()
        .find(|d| d["name"] == "atlas")
        .expect("atlas destination");
    assert_eq!(atlas["bodies"].as_array().map(Vec::len), Some(0), "{atlas}");
    assert!(
        atlas["withheld"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w["reason"] == "suppressed")),
        "{atlas}\n{text_summary}"
    );
    let other = dests
        .iter()
        .find(|d| d["name"] == "other")
        .expect("other destination");
    assert_eq!(other["bodies"].as_array().map(Vec::len), Some(1), "{other}");
}
