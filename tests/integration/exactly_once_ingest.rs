//! Counting and durability of correlation (issue 10, defects 10 and 11, point 4 on
//! the ingest side): counts are events, a line read again after a restart is not
//! counted again, and `kill -9` loses no open window. The sidecar is the real binary
//! over a real file; the outbox is read with SQLite.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::util::{config, confirmation, obs, prov, root, T0};
use tripline::correlate::LineOrigin;
use tripline::intel::Kind;
use tripline::share::Outbox;

/// Three times one indicator on one host within an hour.
const RULE_3_IN_1H: &str = "title: Three times within an hour\nid: 6a0c2a4e-1b3d-4e5f-9a7b-8c9d0e1f2a3b\n\
    level: high\ncorrelation:\n  type: event_count\n  group-by: [indicator, host]\n  timespan: 1h\n  condition:\n    gte: 3\n";

/// A sandbox: intel (a list of `evil0.example` .. `evil4.example`), a rules
/// directory with one rule, a log file, a state directory and a config that follows
/// the log from its beginning and queues sightings (held for approval, so counts
/// keep merging) to a STIX directory.
struct Sandbox {
    dir: tempfile::TempDir,
    log: PathBuf,
    config: PathBuf,
}

impl Sandbox {
    fn new(rule: &str) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let intel = p.join("community.txt");
        let iocs: String = (0..5).map(|i| format!("evil{i}.example\n")).collect();
        std::fs::write(&intel, iocs).unwrap();
        let rules = p.join("rules");
        std::fs::create_dir(&rules).unwrap();
        std::fs::write(rules.join("rule.yml"), rule).unwrap();
        let log = p.join("dns.log");
        std::fs::write(&log, "").unwrap();
        let config = p.join("tripline.toml");
        let s = |p: &Path| p.display().to_string();
        std::fs::write(
            &config,
            format!(
                "[intel]\npaths = [{intel:?}]\nno_default_warninglists = true\n\
                 [[sources]]\ntype = \"file\"\ninclude = [{log:?}]\nstart_at = \"beginning\"\nrescan_interval_ms = 100\n\
                 [alerts]\npath = {alerts:?}\n\
                 [rules]\ndir = {rules:?}\n\
                 [state]\ndir = {state:?}\n[metrics]\naddress = \"127.0.0.1:0\"\n\
                 [[share.destinations]]\nname = \"community\"\nwindow_secs = 3600\n\
                 [share.destinations.transport]\ntype = \"stix_dir\"\npath = {out:?}\n",
                intel = s(&intel),
                log = s(&log),
                alerts = s(&p.join("alerts.jsonl")),
                rules = s(&rules),
                state = s(&p.join("state")),
                out = s(&p.join("out")),
            ),
        )
        .unwrap();
        Sandbox { dir, log, config }
    }

    fn start(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_tripline"))
            .args(["run", "--config"])
            .arg(&self.config)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.path().join("stderr.log"))
                    .map_or(Stdio::null(), Stdio::from),
            )
            .spawn()
            .expect("start tripline run")
    }

    fn append(&self, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.sync_all().unwrap();
    }

    /// The file checkpoint's offset: how far lines were acknowledged.
    fn checkpoint(&self) -> u64 {
        let path = self.dir.path().join("state/file/file-0/checkpoints.json");
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["files"][0]["offset"].as_u64())
            .unwrap_or(0)
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// Waits until every line written so far was acknowledged.
    fn wait_acknowledged(&self) {
        let len = self.log_len();
        let t0 = std::time::Instant::now();
        while self.checkpoint() < len {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(60),
                "checkpoint {} < {len}: {}",
                self.checkpoint(),
                std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Outbox rows: (indicator, window start) → (count, first seen, last seen).
    fn rows(&self) -> BTreeMap<(String, i64), (i64, i64, i64)> {
        let path = self.dir.path().join("state/sightings.sqlite");
        let Ok(conn) = rusqlite::Connection::open(path) else {
            return BTreeMap::new();
        };
        let Ok(mut stmt) = conn
            .prepare("SELECT indicator, window_start, count, first_seen, last_seen FROM sightings")
        else {
            return BTreeMap::new();
        };
        stmt.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, i64>(1)?),
                (r.get(2)?, r.get(3)?, r.get(4)?),
            ))
        })
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
    }

    /// Confirmation alerts in the alerts file.
    fn confirmations(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|a| a["event"]["kind"] == "alert")
            .collect()
    }
}

fn kill_9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn stop(mut child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "tripline run exited with {status}");
}

/// A DNS log line at `2024-05-01T10:00:00Z + secs`.
fn line(secs: u64, host: &str, query: &str) -> String {
    let (m, s) = (secs / 60, secs % 60);
    let (h, m) = (10 + m / 60, m % 60);
    format!("2024-05-01T{h:02}:{m:02}:{s:02}Z {host} named[7]: client 10.0.0.5#5353 query: {query} IN A +\n")
}

/// Ten lines alike (same second, host, indicator) are ten events: the hunt's
/// sighting says `count: 10` (was 1: the ten collapsed into one).
#[test]
fn defect_10_alike_lines_in_a_hunt_each_count() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("iocs.txt"), "evil.example\n").unwrap();
    std::fs::create_dir(p.join("rules")).unwrap();
    std::fs::write(
        p.join("rules/ten.yml"),
        RULE_3_IN_1H.replace("gte: 3", "gte: 10"),
    )
    .unwrap();
    let log: String = (0..10).map(|_| line(0, "web01", "evil.example")).collect();
    std::fs::write(p.join("dns.log"), log).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["hunt", "-q", "--no-default-warninglists", "--intel"])
        .arg(p.join("iocs.txt"))
        .arg("--rules")
        .arg(p.join("rules"))
        .arg("--preview-sharing")
        .arg(p.join("preview"))
        .arg(p.join("dns.log"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The preview holds exactly the bodies delivery would send: one STIX bundle per
    // sighting in the list source's destination directory.
    let mut counts: Vec<u64> = Vec::new();
    let mut bodies = Vec::new();
    for dest in std::fs::read_dir(p.join("preview")).unwrap() {
        let dest = dest.unwrap().path();
        if !dest.is_dir() {
            continue;
        }
        for body in std::fs::read_dir(&dest).unwrap() {
            let bundle: serde_json::Value =
                serde_json::from_slice(&std::fs::read(body.unwrap().path()).unwrap()).unwrap();
            counts.extend(
                bundle["objects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|o| o["type"] == "sighting")
                    .filter_map(|o| o["count"].as_u64()),
            );
            bodies.push(bundle);
        }
    }
    let bundle = serde_json::Value::Array(bodies);
    assert_eq!(counts, [10], "{bundle:#}");
}

/// The outbox counts an observation by its origin: recorded again with the same
/// origin (a replay) it counts once; a line alike in everything but its position
/// counts again.
#[test]
fn defect_10_a_replayed_line_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&format!(
        "[[destinations]]\nname = \"circl\"\nwindow_secs = 3600\n[destinations.transport]\ntype = \"stix_dir\"\npath = {:?}\n",
        dir.path().join("out").display().to_string()
    ));
    let outbox = Outbox::open(&dir.path().join("state"), &cfg).unwrap();
    let at = |position: u64| {
        let mut o = obs(
            T0,
            "evil.example",
            Kind::Domain,
            vec![prov("circl", Some("ev"), None)],
        );
        o.origin = Some(LineOrigin {
            stream: "file:00000000000000aa".into(),
            position,
            hit: 0,
        });
        o
    };
    let count = |outbox: &Outbox| -> Vec<u64> {
        outbox
            .list(None)
            .unwrap()
            .iter()
            .map(|r| r.sighting.count)
            .collect()
    };
    outbox
        .record(&confirmation("r", vec![at(0), at(100)]))
        .unwrap();
    assert_eq!(count(&outbox), [2]);
    // The same two lines read again after a restart, with a third.
    outbox
        .record(&confirmation("r", vec![at(0), at(100), at(200)]))
        .unwrap();
    assert_eq!(count(&outbox), [3]);
}

/// Two hits, acknowledged (the file checkpoint passed them), `kill -9`, restart, a
/// third hit: one confirmation with count 3 (was none: the open window was lost).
#[test]
fn defect_11_kill_9_keeps_open_windows() {
    let sb = Sandbox::new(RULE_3_IN_1H);
    let first = sb.start();
    sb.append(&(line(0, "web01", "evil0.example") + &line(60, "web01", "evil0.example")));
    sb.wait_acknowledged();
    kill_9(first);
    assert!(sb.confirmations().is_empty());
    let second = sb.start();
    sb.append(&line(120, "web01", "evil0.example"));
    sb.wait_acknowledged();
    // A graceful stop feeds what waits for the lateness to the rules.
    stop(second);
    let confirmations = sb.confirmations();
    assert_eq!(confirmations.len(), 1, "{confirmations:#?}");
    assert_eq!(confirmations[0]["tripline"]["count"], 3);
    let rows: Vec<(String, i64)> = sb
        .rows()
        .into_iter()
        .map(|((indicator, _), (count, ..))| (indicator, count))
        .collect();
    assert_eq!(rows, [("evil0.example".to_string(), 3)]);
}

/// A log of hits (some lines alike to the second), written in chunks.
fn chunks() -> Vec<String> {
    let mut chunks = Vec::new();
    let mut secs = 0;
    for c in 0..8 {
        let mut text = String::new();
        for i in 0..150u64 {
            secs += (i * 7 + c) % 3 * 20;
            let k = (i * 13 + c) % 11;
            let host = format!("ws{}", k % 3);
            let query = if k < 5 {
                format!("evil{k}.example")
            } else {
                format!("fine{k}.example")
            };
            text.push_str(&line(secs, &host, &query));
        }
        chunks.push(text);
    }
    chunks
}

/// Point 4 on the ingest side: whatever the `kill -9` point, the outbox ends with
/// the same sightings (indicator, window, count, first and last seen) as an
/// uninterrupted run. Kill points: after a chunk was acknowledged, and right after
/// a chunk was written (anywhere in its processing), at chunks picked by a seeded
/// generator.
#[test]
fn kill_9_at_any_point_gives_the_same_sightings() {
    let chunks = chunks();
    let run = |kills: &[(usize, bool)]| -> BTreeMap<(String, i64), (i64, i64, i64)> {
        let sb = Sandbox::new(RULE_3_IN_1H);
        let mut child = sb.start();
        for (i, chunk) in chunks.iter().enumerate() {
            sb.append(chunk);
            if let Some((_, settle)) = kills.iter().find(|(at, _)| *at == i) {
                if *settle {
                    sb.wait_acknowledged();
                }
                kill_9(child);
                child = sb.start();
            }
        }
        sb.wait_acknowledged();
        stop(child);
        sb.rows()
    };
    let want = run(&[]);
    assert!(want.len() >= 5, "too few sightings to compare: {want:?}");
    // A small seeded generator (xorshift): the kill points are the same every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let kills: Vec<(usize, bool)> = (0..3)
        .map(|i| (next(chunks.len() as u64 - 1) as usize, i % 2 == 0))
        .collect();
    let got = run(&kills);
    assert_eq!(got, want, "kill -9 at {kills:?} changed the sightings");
}
