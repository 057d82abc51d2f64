//! `tripline run` end to end: the real binary, fed through stdin, scraped over HTTP.
//! Sources of their own (file tail, syslog) have their own test files.

use std::collections::BTreeSet;

use crate::util::root;
use crate::util::sidecar::free_addr;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn write_config(dir: &Path, intel: &str, extra: &str) -> PathBuf {
    let path = dir.join("tripline.toml");
    let text = format!(
        "[intel]\npaths = [{intel:?}]\nreload_debounce_ms = 50\n{extra}\n[metrics]\naddress = \"127.0.0.1:0\"\n[state]\ndir = {:?}\n",
        dir.join("state").display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tripline run")
}

/// A minimal HTTP GET: (status, body).
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    crate::util::sidecar::get(addr, path)
}

fn wait_ready(addr: SocketAddr) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if let Some((200, _)) = http_get(addr, "/healthz") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("tripline run never became ready on {addr}");
}

/// Line alerts only (`event.kind: "event"`), not confirmations of rules.
fn line_alerts(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"]["kind"] == "event")
        .collect()
}

fn line_numbers(alerts: &str) -> BTreeSet<u64> {
    line_alerts(alerts)
        .iter()
        .map(|v| v["tripline"]["line_number"].as_u64().unwrap())
        .collect()
}

#[test]
fn sidecar_and_hunt_match_the_same_lines() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "fixtures/intel", "");
    let mut child = spawn(&["run", "--stdin", "--config", config.to_str().unwrap()]);
    let logs = std::fs::read(root().join("fixtures/logs/traps.log")).unwrap();
    child.stdin.take().unwrap().write_all(&logs).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hunt = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["hunt", "-q", "--intel", "fixtures/intel", "-"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut hunt = hunt;
    hunt.stdin.take().unwrap().write_all(&logs).unwrap();
    let hout = hunt.wait_with_output().unwrap();
    let run_alerts = String::from_utf8_lossy(&out.stdout).to_string();
    let hunt_alerts = String::from_utf8_lossy(&hout.stdout).to_string();
    assert_eq!(line_numbers(&run_alerts), line_numbers(&hunt_alerts));
    // Same enrichments too (the run adds where the line came from).
    let strip = |s: &str| -> Vec<serde_json::Value> {
        line_alerts(s).iter().map(|v| v["threat"].clone()).collect()
    };
    assert_eq!(strip(&run_alerts), strip(&hunt_alerts));
}

#[test]
fn check_validates_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[intel]\npaths = [\"x\"]\n[metrics]\nadress = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["run", "--check", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `adress`"), "{err}");
    // The example names production paths (/etc/tripline, /var/log/nginx) and a key in
    // the environment: on a test machine the check finds exactly those missing, and
    // nothing wrong with the keys themselves.
    let example = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args([
            "run",
            "--check",
            "--config",
            "contrib/tripline.example.toml",
        ])
        .current_dir(root())
        .env_remove("CIRCL_MISP_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&example.stderr);
    assert_eq!(example.status.code(), Some(2), "{err}");
    for line in err.lines().skip(1) {
        assert!(
            line.ends_with("does not exist") || line.ends_with("is not set"),
            "{err}"
        );
    }
    let embedded = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["run", "--check"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&embedded.stdout).starts_with("config: embedded default OK\n"),
        "{}",
        String::from_utf8_lossy(&embedded.stderr)
    );
}

/// Streams lines through stdin while the intel is changed and SIGHUP is sent: every
/// line with the old indicator is matched (none lost during the swap), lines with the
/// new indicator match once the reload is in, a reload that would shrink the intel too
/// much is refused, and a broken intel file keeps the old index.
#[test]
fn hot_reload_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let intel = dir.path().join("intel.txt");
    let many: String = (0..100)
        .map(|i| format!("filler{i}.example.net\n"))
        .collect();
    std::fs::write(&intel, format!("old-indicator.example.com\n{many}")).unwrap();
    let config = write_config(dir.path(), intel.to_str().unwrap(), "watch = false\n");
    let metrics = free_addr();
    let mut child = spawn(&[
        "run",
        "--stdin",
        "--config",
        config.to_str().unwrap(),
        "--metrics-addr",
        &metrics.to_string(),
    ]);
    wait_ready(metrics);
    let pid = child.id().to_string();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for l in BufReader::new(stdout).lines() {
            lines.push(l.unwrap());
        }
        lines
    });
    let reloads = |result: &str| -> u64 {
        let body = http_get(metrics, "/metrics")
            .map(|x| x.1)
            .unwrap_or_default();
        body.lines()
            .find(|l| l.starts_with(&format!("tripline_reloads_total{{result=\"{result}\"}}")))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut written_old = 0u64;
    let mut send = |stdin: &mut std::process::ChildStdin, n: usize, tag: &str| {
        for i in 0..n {
            writeln!(stdin, "2024-05-01T10:00:00Z q=a.old-indicator.example.com q=new-indicator.example.org {tag} {i}").unwrap();
            written_old += 1;
        }
        stdin.flush().unwrap();
    };
    send(&mut stdin, 2000, "before");
    // The lines sent so far are matched before the intel changes (they would race
    // the reload otherwise).
    let received = || -> u64 {
        http_get(metrics, "/metrics")
            .map(|x| x.1)
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("tripline_lines_received_total{"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let t0 = Instant::now();
    while received() < 2000 {
        assert!(t0.elapsed() < Duration::from_secs(60), "lines not read");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ok_before = reloads("ok");
    // Add an indicator, reload, keep streaming while it happens.
    std::fs::write(
        &intel,
        format!("old-indicator.example.com\nnew-indicator.example.org\n{many}"),
    )
    .unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    send(&mut stdin, 2000, "during");
    let t0 = Instant::now();
    while reloads("ok") <= ok_before && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(reloads("ok") > ok_before, "reload did not happen");
    send(&mut stdin, 1000, "after");
    // A shrink beyond the limit is refused.
    std::fs::write(&intel, "only-one.example.com\n").unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let t0 = Instant::now();
    while reloads("refused") == 0 && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(reloads("refused"), 1);
    // A broken intel path keeps the old index too.
    std::fs::remove_file(&intel).unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let t0 = Instant::now();
    while reloads("failed") == 0 && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(reloads("failed"), 1);
    send(&mut stdin, 500, "kept");
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    let lines = reader.join().unwrap();
    let docs = line_alerts(&lines.join("\n"));
    // Every line written matched the old indicator: none lost during any swap.
    assert_eq!(docs.len() as u64, written_old);
    let names = |d: &serde_json::Value| -> Vec<String> {
        d["threat"]["enrichments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["indicator"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(docs
        .iter()
        .all(|d| names(d).contains(&"old-indicator.example.com".to_string())));
    let msg = |d: &serde_json::Value| d["message"].as_str().unwrap().to_string();
    // Before the reload, never the new one; after it, always.
    assert!(docs
        .iter()
        .filter(|d| msg(d).contains(" before "))
        .all(|d| names(d).len() == 1));
    assert!(docs
        .iter()
        .filter(|d| msg(d).contains(" after ") || msg(d).contains(" kept "))
        .all(|d| names(d).len() == 2));
}

#[test]
fn metrics_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "fixtures/intel/traps", "");
    let metrics = free_addr();
    let mut child = spawn(&[
        "run",
        "--stdin",
        "--config",
        config.to_str().unwrap(),
        "--metrics-addr",
        &metrics.to_string(),
    ]);
    wait_ready(metrics);
    let mut stdin = child.stdin.take().unwrap();
    let logs = std::fs::read(root().join("fixtures/logs/traps.log")).unwrap();
    stdin.write_all(&logs).unwrap();
    stdin.flush().unwrap();
    // Wait until the lines are counted.
    let t0 = Instant::now();
    let mut body = String::new();
    while t0.elapsed() < Duration::from_secs(30) {
        body = http_get(metrics, "/metrics").unwrap().1;
        // Lines are counted when their batch is scanned, matches as it is emitted.
        if body.contains("tripline_lines_received_total{source=\"stdin-0\"} 24")
            && body.contains("tripline_matched_lines_total{source=\"stdin-0\"} 13")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        body.contains("tripline_lines_received_total{source=\"stdin-0\"} 24"),
        "{body}"
    );
    assert!(
        body.contains("tripline_matched_lines_total{source=\"stdin-0\"} 13"),
        "{body}"
    );
    assert!(
        body.contains(
            "tripline_indicators_loaded{indicator_type=\"domain\",intel_source=\"traps\"} 2"
        ),
        "{body}"
    );
    assert!(body.contains("tripline_ready 1"));
    // No indicator value, path or peer address in any label.
    for l in body.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !l.contains("91.198.51.77") && !l.contains("evil-traps") && !l.contains('/'),
            "{l}"
        );
    }
    drop(stdin);
    let _ = child.wait();
    match Command::new("promtool")
        .arg("check")
        .arg("metrics")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut p) => {
            p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
            let out = p.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) => panic!("promtool is needed for this test (scripts/test.sh installs it): {e}"),
    }
}

#[test]
fn grafana_dashboard_uses_exported_names() {
    let dash = std::fs::read_to_string(root().join("contrib/grafana-dashboard.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&dash).unwrap();
    let mut exprs = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::String(e)) = o.get("expr") {
                    out.push(e.clone());
                }
                o.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&v, &mut exprs);
    assert!(exprs.len() >= 8, "{exprs:?}");
    let known = tripline::sink::metrics::METRIC_NAMES;
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("tripline_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                known.contains(&base),
                "dashboard uses {name}, which tripline does not export"
            );
            rest = &rest[i + name.len()..];
        }
    }
    // And every exported metric is on the dashboard.
    for name in known {
        assert!(
            exprs.iter().any(|e| e.contains(name)),
            "{name} is not on the dashboard"
        );
    }
}

/// A burst far larger than the queues: memory stays bounded because sources wait
/// when the queue is full (stdin is simply not read while matching catches up).
#[test]
fn memory_stays_bounded_under_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "fixtures/intel/traps",
        "[pipeline]\nqueue_batches = 8\nworkers = 1\n",
    );
    let mut child = spawn(&["run", "--stdin", "--config", config.to_str().unwrap()]);
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .filter(|l| l.as_ref().is_ok_and(|l| l.contains("\"kind\":\"event\"")))
            .count()
    });
    // 128 MiB of lines, one in 10,000 with an indicator.
    let filler = "2024-05-01T10:00:00Z host app[1]: GET /index.html?q=lorem+ipsum+dolor HTTP/1.1 200 from 10.1.2.3 ua=Mozilla/5.0\n";
    let mut chunk = String::new();
    for i in 0..10_000 {
        if i == 0 {
            chunk.push_str("2024-05-01T10:00:00Z fw src=91.198.51.77\n");
        } else {
            chunk.push_str(filler);
        }
    }
    let total = 128usize << 20;
    let mut written = 0;
    let mut chunks = 0;
    while written < total {
        stdin.write_all(chunk.as_bytes()).unwrap();
        written += chunk.len();
        chunks += 1;
    }
    // The child's own high-water mark, read while it is still running (the input has
    // been taken; at most the bounded queues are still in flight).
    let status_text = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let peak_kib: u64 = status_text
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(reader.join().unwrap(), chunks);
    assert!(
        peak_kib < 96 * 1024,
        "peak RSS {peak_kib} KiB for a {} MiB burst",
        total >> 20
    );
}

/// The sidecar receives syslog from the real `logger` client and alerts with the
/// sender's host and app; SIGTERM stops it cleanly.
#[test]
fn syslog_from_logger_reaches_alerts() {
    if Command::new("logger").arg("--help").output().is_err() {
        panic!("logger (util-linux) is needed for this test (scripts/test.sh installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    drop(udp);
    let config = write_config(
        dir.path(),
        "fixtures/intel/traps",
        &format!("[[sources]]\ntype = \"syslog\"\nname = \"udp\"\nmode = \"udp\"\naddress = \"127.0.0.1:{port}\"\n"),
    );
    let metrics = free_addr();
    let mut child = spawn(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--metrics-addr",
        &metrics.to_string(),
    ]);
    wait_ready(metrics);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let _ = tx.send(l.unwrap());
        }
    });
    let mut got = None;
    let t0 = Instant::now();
    while got.is_none() && t0.elapsed() < Duration::from_secs(30) {
        let st = Command::new("logger")
            .args([
                "--server",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--udp",
                "--rfc5424",
                "-t",
                "sshd",
            ])
            .args(["--", "Failed password for root from 91.198.51.77 port 22"])
            .status()
            .unwrap();
        assert!(st.success());
        got = rx.recv_timeout(Duration::from_millis(500)).ok();
    }
    let line = got.expect("no alert for the logger message");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        v["threat"]["enrichments"][0]["indicator"]["name"],
        "91.198.51.77"
    );
    assert_eq!(v["process"]["name"], "sshd");
    assert!(v["host"]["name"].is_string(), "{v}");
    assert_eq!(v["tripline"]["source"], "udp");
    assert!(v["tripline"]["syslog_peer"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

fn alert_offsets(path: &Path) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"]["kind"] == "event")
        .map(|v| {
            let msg = v["message"].as_str().unwrap_or("");
            let n: u64 = msg
                .split("n=")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX);
            (n, v["tripline"]["offset"].as_u64().unwrap_or(0))
        })
        .collect()
}

/// `kill -9` in the middle of a stream, then a restart: no line is lost, and only
/// lines after the last checkpoint are matched twice.
#[test]
fn kill_9_then_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let total = 60_000u64;
    let mut text = String::new();
    for i in 0..total {
        text.push_str(&format!(
            "2024-05-01T10:00:00Z app n={i} src=91.198.51.77 padding-padding-padding\n"
        ));
    }
    std::fs::write(&log, text).unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let config = write_config(
        dir.path(),
        "fixtures/intel/traps",
        &format!(
            "[[sources]]\ntype = \"file\"\ninclude = [{:?}]\nstart_at = \"beginning\"\nrescan_interval_ms = 100\n[alerts]\npath = {:?}\n",
            log.display().to_string(),
            alerts.display().to_string()
        ),
    );
    let mut first = spawn(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--metrics-addr",
        &free_addr().to_string(),
    ]);
    let t0 = Instant::now();
    while alert_offsets(&alerts).len() < 15_000 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-KILL", &first.id().to_string()])
        .status()
        .unwrap();
    first.wait().unwrap();
    let before = alert_offsets(&alerts).len();
    assert!(
        before < total as usize,
        "killed too late to test anything ({before} alerts)"
    );
    let ckpt: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("state/file/file-0/checkpoints.json")).unwrap(),
    )
    .unwrap();
    let checkpoint = ckpt["files"][0]["offset"].as_u64().unwrap();
    let mut second = spawn(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--metrics-addr",
        &free_addr().to_string(),
    ]);
    let t0 = Instant::now();
    loop {
        let got: BTreeSet<u64> = alert_offsets(&alerts).into_iter().map(|(n, _)| n).collect();
        if got.len() as u64 == total || t0.elapsed() > Duration::from_secs(90) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(second.wait().unwrap().success());
    let all = alert_offsets(&alerts);
    let distinct: BTreeSet<u64> = all.iter().map(|(n, _)| *n).collect();
    assert_eq!(distinct.len() as u64, total, "lines lost after kill -9");
    let mut seen = BTreeSet::new();
    let mut repeated = 0;
    for (n, offset) in &all {
        if !seen.insert(*n) {
            repeated += 1;
            assert!(
                *offset >= checkpoint,
                "line {n} at {offset} repeated though before the checkpoint {checkpoint}"
            );
        }
    }
    eprintln!("kill -9 after {before} alerts; checkpoint at byte {checkpoint}; {repeated} lines matched twice");
}

/// Rules run in the sidecar: a confirmation becomes an alert and a sighting in the
/// outbox; `tripline sightings send` delivers it; correlation state is saved.
#[test]
fn sidecar_confirms_and_queues_sightings() {
    let dir = tempfile::tempdir().unwrap();
    let bundles = dir.path().join("bundles");
    let config = write_config(
        dir.path(),
        "fixtures/intel/traps",
        &format!(
            "[[share.destinations]]\nname = \"traps\"\napproval = \"auto\"\nwindow_secs = 1\n[share.destinations.transport]\ntype = \"stix_dir\"\npath = {:?}\n",
            bundles.display().to_string()
        ),
    );
    let mut child = spawn(&["run", "--stdin", "--config", config.to_str().unwrap()]);
    let logs = std::fs::read(root().join("fixtures/logs/traps.log")).unwrap();
    child.stdin.take().unwrap().write_all(&logs).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let alerts: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| d["event"]["kind"] == "alert")
        .collect();
    assert!(
        alerts.iter().any(
            |a| a["rule"]["id"] == "d7a1c34b-8fee-4108-8389-8137af4da63c"
                && a["tripline"]["group"]["host"] == "fw01"
        ),
        "{alerts:?}"
    );
    assert!(dir.path().join("state/correlation.json").exists());
    let c = config.to_str().unwrap();
    let list = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["sightings", "list", "--json", "--config", c])
        .current_dir(root())
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let indicators: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["indicator"].as_str().unwrap())
        .collect();
    assert!(indicators.contains("91.198.51.77"), "{rows:?}");
    std::thread::sleep(Duration::from_millis(1100));
    let sent = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["sightings", "send", "--config", c])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stdout)
    );
    let files: Vec<_> = std::fs::read_dir(&bundles)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!files.is_empty());
    let text: String = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        text.contains("\"sighting\"") && !text.contains("fw01") && !text.contains("192.168.1.5")
    );
}

/// Without any signal: a change to a watched intel file is picked up (notify) and
/// the new index swapped in.
#[test]
fn intel_file_changes_are_watched() {
    let dir = tempfile::tempdir().unwrap();
    let intel_dir = dir.path().join("intel");
    std::fs::create_dir_all(&intel_dir).unwrap();
    let many: String = (0..20)
        .map(|i| format!("filler{i}.example.net\n"))
        .collect();
    std::fs::write(
        intel_dir.join("list.txt"),
        format!("first.example.com\n{many}"),
    )
    .unwrap();
    let config = write_config(dir.path(), intel_dir.to_str().unwrap(), "");
    let metrics = free_addr();
    let mut child = spawn(&[
        "run",
        "--stdin",
        "--config",
        config.to_str().unwrap(),
        "--metrics-addr",
        &metrics.to_string(),
    ]);
    wait_ready(metrics);
    let loaded = || -> String {
        http_get(metrics, "/metrics")
            .map(|x| x.1)
            .unwrap_or_default()
    };
    assert!(loaded().contains(
        "tripline_indicators_loaded{indicator_type=\"domain\",intel_source=\"list\"} 21"
    ));
    std::fs::write(
        intel_dir.join("list.txt"),
        format!("first.example.com\nsecond.example.com\n{many}"),
    )
    .unwrap();
    let t0 = Instant::now();
    while !loaded()
        .contains("tripline_indicators_loaded{indicator_type=\"domain\",intel_source=\"list\"} 22")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the change was not picked up: {}",
            loaded()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "2024-05-01T10:00:00Z q=www.second.example.com").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"name\":\"second.example.com\""), "{text}");
}

/// At the default level the sidecar says when it is ready (indicators, sources,
/// metrics address) and when it stopped (lines, alerts), and nothing per line; with
/// stderr not a terminal, no ANSI colour codes reach the log.
#[test]
fn sidecar_logs_ready_and_stopped_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "fixtures/intel/traps", "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["run", "--stdin", "--config", config.to_str().unwrap()])
        .current_dir(root())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = std::fs::read(root().join("fixtures/logs/traps.log")).unwrap();
    child.stdin.take().unwrap().write_all(&logs).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in a non-terminal log: {err}"
    );
    let ready: Vec<&str> = err.lines().filter(|l| l.contains("Ready.")).collect();
    assert_eq!(ready.len(), 1, "{err}");
    for field in [
        "indicators=",
        "sources=stdin-0",
        "metrics=http://127.0.0.1:",
    ] {
        assert!(ready[0].contains(field), "{field} missing: {}", ready[0]);
    }
    let stopped: Vec<&str> = err.lines().filter(|l| l.contains("Stopped")).collect();
    assert_eq!(stopped.len(), 1, "{err}");
    assert!(stopped[0].contains("lines=24"), "{}", stopped[0]);
    assert!(stopped[0].contains("alerts="), "{}", stopped[0]);
    // Nothing per line: a handful of lines whatever the input size.
    assert!(err.lines().count() < 10, "{err}");
}

/// Grafana keys panels by id and lays them out by `gridPos`: ids are unique and no
/// two panels overlap (merged dashboards held two ids twice and three overlaps).
#[test]
fn grafana_dashboard_panels_have_unique_ids_and_do_not_overlap() {
    let dash = std::fs::read_to_string(root().join("contrib/grafana-dashboard.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&dash).unwrap();
    let panels = v["panels"].as_array().expect("panels");
    let mut ids = std::collections::BTreeSet::new();
    let mut rects = Vec::new();
    for p in panels {
        let id = p["id"].as_i64().expect("a panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        let g = &p["gridPos"];
        let n = |k: &str| g[k].as_i64().expect("gridPos");
        let r = (n("x"), n("y"), n("x") + n("w"), n("y") + n("h"));
        for (other, q) in &rects {
            let q: &(i64, i64, i64, i64) = q;
            let overlap = r.0 < q.2 && q.0 < r.2 && r.1 < q.3 && q.1 < r.3;
            assert!(!overlap, "panel {id} overlaps panel {other}");
        }
        rects.push((id, r));
    }
}
