//! Live retro matching (issue 12, point 2): `tripline run` with `[retro] enabled`
//! reads lines holding observables no intel names yet (generated test data, times
//! two days before now); then intel naming them appears — a watched intel file
//! (a MISP event written into the intel directory), and separately a synced CSV
//! feed (`util/feed_server.py`) — and the sidecar writes retro alerts dated at the
//! lines' own times, with `tripline.retro: true` and the intel lag, correlates them
//! with their original times (a rule needing 3 hits within an hour confirms from
//! three lines 10 minutes apart, not from three lines 90 minutes apart), queues the
//! sighting with the original first and last times, and counts runs, probes, hits
//! and the lag in its metrics.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::intel_sync::FeedServer;
use crate::util::sidecar::{free_addr, get, metric, wait_for};
use crate::util::{root, tripline};

/// Dense: three lines 10 minutes apart on one host (a 1 h rule confirms).
const DENSE: &str = "45.77.12.34";
/// Sparse: three lines 90 minutes apart (the same rule does not).
const SPARSE: &str = "91.210.104.17";
/// A value only the synced feed names.
const FED: &str = "203.0.113.77";

const RULE: &str = "title: Same indicator from one host, 3 times within an hour\n\
id: 0b6f5a55-8d9e-4b53-9c59-4a2f3d1e7c11\nlevel: medium\n\
correlation:\n  type: event_count\n  group-by: [indicator, host]\n  timespan: 1h\n  condition:\n    gte: 3\n";

fn text(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The log: `<time> <host> ...` lines; returns the first line's time: two days ago,
/// five minutes past the hour, so that lines up to 55 minutes apart share one hour and
/// one UTC day (the outbox aggregates a sighting per window: a run just before
/// midnight split the dense value's sighting in two).
fn log_lines(values: &[(&str, i64)]) -> (i64, String) {
    let t0 = (Utc::now().timestamp() - 2 * 86_400) / 3600 * 3600 + 300;
    let body = values
        .iter()
        .enumerate()
        .map(|(i, (v, off))| {
            format!(
                "{} web01 fw: conn {i} from 10.0.0.5 to {v} port 443\n",
                text(t0 + off)
            )
        })
        .collect();
    (t0, body)
}

struct Sidecar {
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    metrics: SocketAddr,
}

impl Sidecar {
    /// `tripline run --stdin` with `[retro] enabled`, the rule above, a destination
    /// paired with the intel source `destination_for` (manual approval: sightings
    /// stay queued), alerts to `alerts.jsonl`. `extra` is more configuration.
    fn start(
        dir: tempfile::TempDir,
        intel_paths: &[&Path],
        destination_for: &str,
        extra: &str,
    ) -> Sidecar {
        let p = dir.path();
        std::fs::create_dir_all(p.join("rules")).unwrap();
        std::fs::write(p.join("rules/repeat.yml"), RULE).unwrap();
        let paths: Vec<String> = intel_paths
            .iter()
            .map(|x| format!("{:?}", x.display().to_string()))
            .collect();
        let s = |x: &str| p.join(x).display().to_string();
        let config = p.join("tripline.toml");
        std::fs::write(
            &config,
            format!(
                "[intel]\npaths = [{}]\nno_default_warninglists = true\nreload_debounce_ms = 200\n\
                 [alerts]\npath = {:?}\n[state]\ndir = {:?}\n[rules]\ndir = {:?}\n\
                 [retro]\nenabled = true\n{extra}\n\
                 [[share.destinations]]\nname = \"back\"\nintel_sources = [{destination_for:?}]\n\
                 [share.destinations.transport]\ntype = \"stix_dir\"\npath = {:?}\n",
                paths.join(", "),
                s("alerts.jsonl"),
                s("state"),
                s("rules"),
                s("bundles"),
            ),
        )
        .unwrap();
        let metrics = free_addr();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
            .args(["run", "--stdin", "--config"])
            .arg(&config)
            .args(["--metrics-addr", &metrics.to_string()])
            .current_dir(root())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tripline run");
        // Keep its log for failures.
        let err = child.stderr.take().unwrap();
        let log = p.join("run.log");
        std::thread::spawn(move || {
            let mut f = std::fs::File::create(log).unwrap();
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = writeln!(f, "{l}");
            }
        });
        let stdin = child.stdin.take();
        let sc = Sidecar {
            dir,
            config,
            child,
            stdin,
            metrics,
        };
        wait_for("the sidecar to be ready", 60, || {
            sc.metric("tripline_ready") >= 1.0
        });
        sc
    }

    fn path(&self, x: &str) -> PathBuf {
        self.dir.path().join(x)
    }

    fn metric(&self, name: &str) -> f64 {
        metric(self.metrics, name).unwrap_or(0.0)
    }

    fn metrics_text(&self) -> String {
        get(self.metrics, "/metrics")
            .map(|x| x.1)
            .unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("run.log")).unwrap_or_default()
    }

    /// Writes lines and waits until they are recorded (observations counted, which
    /// happens when the output thread merged them into the store's writer).
    fn feed(&mut self, body: &str, lines: usize) {
        let before = self.metric("tripline_lines_received_total");
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(body.as_bytes()).unwrap();
        stdin.flush().unwrap();
        wait_for("the lines to be read", 60, || {
            self.metric("tripline_lines_received_total") >= before + lines as f64
        });
        // Each line holds two addresses.
        wait_for("the lines to be recorded", 60, || {
            self.metric("tripline_retro_observations_total") >= 2.0 * (before + lines as f64)
        });
    }

    fn alerts(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn retro_alert(&self, value: &str) -> Option<Value> {
        self.alerts().into_iter().find(|a| {
            a["tripline"]["retro"] == true
                && a["threat"]["enrichments"][0]["matched"]["atomic"] == value
        })
    }

    fn wait_retro_alert(&self, value: &str) -> Value {
        let mut found = None;
        wait_for(&format!("a retro alert for {value}"), 90, || {
            found = self.retro_alert(value);
            found.is_some()
        });
        found.unwrap()
    }

    /// Closes stdin; the run ends (everything waiting is written) and exits 0.
    fn stop(mut self) -> tempfile::TempDir {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "tripline run failed:\n{}", self.log());
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    fn sightings(config: &Path) -> Vec<Value> {
        let out = tripline(&[
            "sightings",
            "list",
            "--json",
            "--config",
            config.to_str().unwrap(),
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A MISP event naming `values` (ip-dst, to_ids), its attributes stamped `published`.
fn misp_event(values: &[&str], published: i64) -> String {
    let attrs: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({"uuid": format!("7a1e0c55-1b2c-4d3e-8f40-00000000000{i}"), "type": "ip-dst",
                   "category": "Network activity", "value": v, "to_ids": true,
                   "timestamp": published.to_string()})
        })
        .collect();
    json!({"Event": {"uuid": "5f0d9a10-3c4b-4e2d-9a8f-1b2c3d4e5f60", "info": "late intel",
                     "timestamp": published.to_string(), "Attribute": attrs}})
    .to_string()
}

/// A watched intel file changes: the values it adds were seen two days ago; the
/// retro alerts carry the lines' times, `retro: true`, the MISP attribute timestamp
/// as publication and the lag; the dense value confirms the 3-in-an-hour rule with
/// its original times, the sparse one does not; the sighting is queued with the
/// original first and last times; the metrics count the run, probes, hits and lags.
#[test]
fn a_watched_intel_change_alerts_retro_and_confirms_at_the_original_times() {
    let dir = tempfile::tempdir().unwrap();
    let intel = dir.path().join("intel");
    std::fs::create_dir_all(&intel).unwrap();
    std::fs::write(intel.join("base.txt"), "unrelated-base.example\n").unwrap();
    let mut sc = Sidecar::start(dir, &[&intel], "late", "");
    let (t0, body) = log_lines(&[
        (DENSE, 0),
        (SPARSE, 60),
        (DENSE, 600),
        (SPARSE, 60 + 5400),
        (DENSE, 1200),
        (SPARSE, 60 + 10_800),
    ]);
    sc.feed(&body, 6);
    assert!(
        sc.alerts().is_empty(),
        "no intel names them yet: {:?}",
        sc.alerts()
    );

    // The intel arrives, published an hour ago (atomically: written aside, renamed in).
    let published = Utc::now().timestamp() - 3600;
    let aside = sc.path("late.json");
    std::fs::write(
        &aside,
        misp_event(&[DENSE, SPARSE, "198.51.100.9"], published),
    )
    .unwrap();
    std::fs::rename(&aside, intel.join("late.json")).unwrap();

    let dense = sc.wait_retro_alert(DENSE);
    let sparse = sc.wait_retro_alert(SPARSE);
    assert_eq!(dense["@timestamp"], text(t0), "{dense:#}");
    assert_eq!(sparse["@timestamp"], text(t0 + 60), "{sparse:#}");
    let e = &dense["threat"]["enrichments"][0];
    assert_eq!(e["indicator"]["name"], DENSE);
    assert_eq!(e["indicator"]["provider"], "late");
    assert_eq!(dense["tripline"]["retro_trigger"], "reload");
    assert_eq!(dense["tripline"]["retro_seen"]["count"], 3);
    assert_eq!(dense["tripline"]["retro_seen"]["last"], text(t0 + 1200));
    assert_eq!(dense["tripline"]["retro_seen"]["hosts"], json!(["web01"]));
    assert_eq!(dense["tripline"]["intel_lag_secs"], published - t0);
    assert_eq!(sparse["tripline"]["intel_lag_secs"], published - (t0 + 60));

    // The rule: confirmed from the dense value's three lines, at their times.
    let mut confirmations = Vec::new();
    wait_for("the confirmation", 60, || {
        confirmations = sc
            .alerts()
            .into_iter()
            .filter(|a| a["event"]["kind"] == "alert")
            .collect();
        !confirmations.is_empty()
    });
    // A reload that brings nothing new (SIGHUP) probes nothing.
    let reloads = sc.metric("tripline_reloads_total");
    let hup = Command::new("kill")
        .args(["-HUP", &sc.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for("the SIGHUP reload", 60, || {
        sc.metric("tripline_reloads_total") > reloads
    });
    let metrics = sc.metrics_text();
    let config = sc.config.clone();
    let log = sc.log();
    let dir = sc.stop();
    // Everything written by the end: only the dense value confirmed.
    let alerts: Vec<Value> = std::fs::read_to_string(dir.path().join("alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let confirmations: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["event"]["kind"] == "alert")
        .collect();
    assert_eq!(confirmations.len(), 1, "{confirmations:#?}\n{log}");
    let c = confirmations[0];
    assert_eq!(c["tripline"]["indicators"], json!([DENSE]), "{c:#}");
    assert_eq!(c["event"]["start"], text(t0), "{c:#}");
    assert_eq!(c["event"]["end"], text(t0 + 1200), "{c:#}");
    assert_eq!(c["tripline"]["count"], 3, "{c:#}");
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a["tripline"]["retro"] == true)
            .count(),
        2,
        "one retro alert per observed value: {alerts:#?}"
    );
    crate::ecs::assert_alerts_are_ecs(&alerts);

    // The sighting: queued for the intel's community, at the original times.
    let rows = Sidecar::sightings(&config);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["indicator"], DENSE);
    assert_eq!(rows[0]["count"], 3, "{rows:#?}");
    let at = |v: &Value| {
        DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    assert_eq!(at(&rows[0]["first_seen"]), t0, "{rows:#?}");
    assert_eq!(at(&rows[0]["last_seen"]), t0 + 1200, "{rows:#?}");

    // Metrics: one run (reload), three new indicators probed, two hits, two lags
    // (an hour short of two days: the 1-day..3-day bucket).
    let line = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in\n{metrics}"))
    };
    assert_eq!(line("tripline_retro_runs_total{trigger=\"reload\"}"), 1.0);
    // The first start probed its one base value; the reload the three new ones.
    assert_eq!(line("tripline_retro_runs_total{trigger=\"start\"}"), 1.0);
    assert_eq!(line("tripline_retro_probes_total"), 1.0 + 3.0);
    assert_eq!(line("tripline_retro_hits_total"), 2.0);
    assert_eq!(line("tripline_retro_intel_lag_seconds_count"), 2.0);
    assert_eq!(
        line("tripline_retro_intel_lag_seconds_bucket{le=\"86400\"}"),
        0.0
    );
    assert_eq!(
        line("tripline_retro_intel_lag_seconds_bucket{le=\"259200\"}"),
        2.0
    );
}

/// A synced CSV feed gains a value seen two days ago: the retro alert comes after
/// the sync pass (`retro_trigger: sync`), dated at the line's time; the feed carries
/// no publication time, so the lag runs to when the intel was loaded.
#[test]
fn a_synced_feed_alerts_retro() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("ips.csv"), "198.51.100.250\n").unwrap();
    let server = FeedServer::start(&served, None);
    let base = dir.path().join("base.txt");
    std::fs::write(&base, "unrelated-base.example\n").unwrap();
    let extra = format!(
        "[[intel.sources]]\nname = \"feed\"\nkind = \"csv\"\nurl = {:?}\ninterval_secs = 10\n",
        server.url("ips.csv")
    );
    let mut sc = Sidecar::start(dir, &[&base], "feed", &extra);
    // The first pass (at start: no cache yet) and its reload.
    wait_for("the first sync pass", 60, || {
        sc.metrics_text()
            .contains("tripline_intel_source_indicators{source=\"feed\"} 1")
    });
    let (t0, body) = log_lines(&[(FED, 0)]);
    sc.feed(&body, 1);
    let before = Utc::now().timestamp();
    std::fs::write(served.join("ips.csv"), format!("198.51.100.250\n{FED}\n")).unwrap();
    let alert = sc.wait_retro_alert(FED);
    let after = Utc::now().timestamp();
    assert_eq!(alert["@timestamp"], text(t0), "{alert:#}");
    assert_eq!(alert["tripline"]["retro_trigger"], "sync", "{alert:#}");
    assert_eq!(alert["threat"]["enrichments"][0]["indicator"]["name"], FED);
    assert_eq!(
        alert["threat"]["enrichments"][0]["indicator"]["provider"],
        "feed"
    );
    let lag = alert["tripline"]["intel_lag_secs"].as_i64().unwrap();
    assert!(
        (before - t0..=after - t0).contains(&lag),
        "lag {lag} not within [{}, {}]",
        before - t0,
        after - t0
    );
    assert!(sc.metric("tripline_retro_runs_total") >= 1.0);
    assert!(
        sc.metrics_text()
            .contains("tripline_retro_runs_total{trigger=\"sync\"}"),
        "{}",
        sc.metrics_text()
    );
    assert!(sc.metric("tripline_retro_hits_total") >= 1.0);
    drop(server);
    sc.stop();
}

/// History for on-demand retro: `body` as `fw.log`, recorded by `hunt --record` into
/// `<p>/state/retro` against intel that names none of it; `late.json` a MISP event
/// naming DENSE and SPARSE, published now.
fn record_history(p: &Path, body: &str) {
    std::fs::write(p.join("fw.log"), body).unwrap();
    std::fs::write(p.join("empty.txt"), "unrelated-base.example\n").unwrap();
    std::fs::write(
        p.join("late.json"),
        misp_event(&[DENSE, SPARSE], Utc::now().timestamp()),
    )
    .unwrap();
    let out = tripline(&[
        "hunt",
        "--intel",
        p.join("empty.txt").to_str().unwrap(),
        "--no-default-warninglists",
        "--record",
        p.join("state/retro").to_str().unwrap(),
        "-q",
        p.join("fw.log").to_str().unwrap(),
    ]);
    assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
}

/// `tripline retro --rules` (on demand): the hits go through the rules at their
/// original times, as in the sidecar; `--preview-sharing` writes what would be
/// shared with the configured destination.
#[test]
fn on_demand_retro_confirms_with_rules_and_previews_sharing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (t0, body) = log_lines(&[
        (DENSE, 0),
        (SPARSE, 60),
        (DENSE, 600),
        (SPARSE, 60 + 5400),
        (DENSE, 1200),
        (SPARSE, 60 + 10_800),
    ]);
    record_history(p, &body);
    std::fs::create_dir_all(p.join("rules")).unwrap();
    std::fs::write(p.join("rules/repeat.yml"), RULE).unwrap();
    let config = p.join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [{:?}]\nno_default_warninglists = true\n[state]\ndir = {:?}\n\
             [[share.destinations]]\nname = \"back\"\nintel_sources = [\"late\"]\napproval = \"auto\"\n\
             [share.destinations.transport]\ntype = \"stix_dir\"\npath = {:?}\n",
            p.join("late.json").display().to_string(),
            p.join("state").display().to_string(),
            p.join("bundles").display().to_string(),
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let rules = p.join("rules");
    let preview = p.join("preview");
    let out = tripline(&[
        "retro",
        "--config",
        c,
        "--rules",
        rules.to_str().unwrap(),
        "--preview-sharing",
        preview.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let docs: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let retro: Vec<&Value> = docs
        .iter()
        .filter(|d| d["tripline"]["retro"] == true)
        .collect();
    let confirmations: Vec<&Value> = docs
        .iter()
        .filter(|d| d["event"]["kind"] == "alert")
        .collect();
    assert_eq!(retro.len(), 2, "{docs:#?}");
    assert_eq!(confirmations.len(), 1, "{docs:#?}");
    assert_eq!(confirmations[0]["tripline"]["indicators"], json!([DENSE]));
    assert_eq!(confirmations[0]["event"]["start"], text(t0));
    assert_eq!(confirmations[0]["event"]["end"], text(t0 + 1200));
    assert!(stderr.contains("confirmations: 1"), "{stderr}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(preview.join("summary.json")).unwrap())
            .unwrap();
    assert!(
        summary.to_string().contains("back"),
        "the destination in the preview: {summary:#}"
    );
    let bodies = std::fs::read_dir(preview.join("back"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(bodies >= 1, "a body for the destination: {summary:#}");
    // Nothing queued: the state holds no outbox rows.
    assert!(Sidecar::sightings(&config).is_empty());
}

/// A value reported as a false positive (`tripline feedback false-positive`) is
/// handled in retro alerts as in live ones: marked (`tripline.suppressed`, the
/// enrichment's `suppressed` mark) by default, left out with `[feedback]
/// suppressed_alerts = "drop"`; the other value's alert is untouched.
#[test]
fn retro_alerts_honour_reported_false_positives() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (_, body) = log_lines(&[(DENSE, 0), (SPARSE, 60)]);
    record_history(p, &body);
    let config = p.join("tripline.toml");
    let write_config = |feedback: &str| {
        std::fs::write(
            &config,
            format!(
                "[intel]\npaths = [{:?}]\nno_default_warninglists = true\n[state]\ndir = {:?}\n{feedback}",
                p.join("late.json").display().to_string(),
                p.join("state").display().to_string(),
            ),
        )
        .unwrap();
    };
    write_config("");
    let c = config.to_str().unwrap();
    let out = tripline(&[
        "feedback",
        "false-positive",
        DENSE,
        "--reason",
        "our scanner",
        "--config",
        c,
    ]);
    assert!(out.status.success(), "{out:?}");
    let retro = || -> Vec<Value> {
        let out = tripline(&["retro", "--config", c]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let by_value = |docs: &[Value], v: &str| -> Option<Value> {
        docs.iter()
            .find(|d| d["threat"]["enrichments"][0]["matched"]["atomic"] == v)
            .cloned()
    };
    let marked = retro();
    assert_eq!(marked.len(), 2, "{marked:#?}");
    let dense = by_value(&marked, DENSE).expect("the reported value's alert, marked");
    assert_eq!(dense["tripline"]["suppressed"], true, "{dense:#}");
    assert_eq!(
        dense["tripline"]["enrichments"][0]["suppressed"]["reason"], "our scanner",
        "{dense:#}"
    );
    let sparse = by_value(&marked, SPARSE).expect("the other alert");
    assert!(sparse["tripline"].get("suppressed").is_none(), "{sparse:#}");
    write_config("[feedback]\nsuppressed_alerts = \"drop\"\n");
    let dropped = retro();
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    assert!(by_value(&dropped, SPARSE).is_some(), "{dropped:#?}");
}

/// Intel that arrives while the sidecar is down is probed at its next start
/// (`trigger: start`): the retro alert carries the lines' time; a further restart
/// with nothing new probes nothing again (one retro alert in all, no new hit).
#[test]
fn intel_changed_while_stopped_is_probed_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let intel = dir.path().join("intel");
    std::fs::create_dir_all(&intel).unwrap();
    std::fs::write(intel.join("base.txt"), "unrelated-base.example\n").unwrap();
    let mut sc = Sidecar::start(dir, &[&intel], "late", "");
    let (t0, body) = log_lines(&[(DENSE, 0), (SPARSE, 60)]);
    sc.feed(&body, 2);
    wait_for("the first start's run", 60, || {
        sc.metrics_text()
            .contains("tripline_retro_runs_total{trigger=\"start\"} 1")
    });
    let dir = sc.stop();

    // While it is down, intel naming DENSE arrives.
    std::fs::write(
        intel.join("late.json"),
        misp_event(&[DENSE], Utc::now().timestamp() - 600),
    )
    .unwrap();
    let sc = Sidecar::start(dir, &[&intel], "late", "");
    let alert = sc.wait_retro_alert(DENSE);
    assert_eq!(alert["tripline"]["retro_trigger"], "start", "{alert:#}");
    assert_eq!(alert["@timestamp"], text(t0), "{alert:#}");
    assert!(sc.retro_alert(SPARSE).is_none());
    wait_for("the start run counted", 60, || {
        sc.metric("tripline_retro_hits_total") >= 1.0
    });
    let dir = sc.stop();

    // Nothing new: the next start looks, finds nothing to probe, alerts nothing.
    let sc = Sidecar::start(dir, &[&intel], "late", "");
    wait_for("the start run", 60, || {
        sc.metrics_text()
            .contains("tripline_retro_runs_total{trigger=\"start\"} 1")
    });
    assert_eq!(sc.metric("tripline_retro_probes_total"), 0.0);
    assert_eq!(sc.metric("tripline_retro_hits_total"), 0.0);
    let retro: Vec<Value> = sc
        .alerts()
        .into_iter()
        .filter(|a| a["tripline"]["retro"] == true)
        .collect();
    assert_eq!(retro.len(), 1, "{retro:#?}");
}
