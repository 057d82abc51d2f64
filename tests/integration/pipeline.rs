//! One pipeline: `tripline hunt` and `tripline run` are two drivers of the same scan
//! and emit steps, so on the same files they give the same `threat` blocks,
//! `@timestamp`, line numbers and confirmations. Run on every fixture log and on one
//! log holding every format (all fixture logs end to end).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::root;
use serde_json::Value;

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// The value of a counter summed over its labels, from `/metrics`.
fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let sum = buf
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum();
    Some(sum)
}

fn parse(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Line alerts by (file, line number): the parts both drivers must agree on.
fn line_alerts(alerts: &[Value]) -> BTreeMap<(String, u64), Value> {
    alerts
        .iter()
        .filter(|a| a["event"]["kind"] == "event")
        .map(|a| {
            let key = (
                a["log"]["file"]["path"].as_str().unwrap().to_string(),
                a["tripline"]["line_number"]
                    .as_u64()
                    .expect("line number in every file alert"),
            );
            let same = serde_json::json!({
                "@timestamp": a["@timestamp"],
                "threat": a["threat"],
                "time_source": a["tripline"]["time_source"],
                "offset": a["tripline"]["offset"],
                "enrichments": a["tripline"]["enrichments"],
                "format": a["tripline"]["format"],
                "host": a["host"],
            });
            (key, same)
        })
        .collect()
}

/// Confirmations, without the name of the log source (the hunt names its inputs by
/// path, the sidecar by the configured source name).
fn confirmations(alerts: &[Value]) -> BTreeSet<String> {
    alerts
        .iter()
        .filter(|a| a["event"]["kind"] == "alert")
        .map(|a| {
            let mut a = a.clone();
            if let Some(ms) = a["tripline"]["matches"].as_array_mut() {
                for m in ms {
                    m.as_object_mut().unwrap().remove("log_source");
                }
            }
            a.to_string()
        })
        .collect()
}

fn copy_logs(dir: &Path) -> (Vec<String>, u64) {
    let mut names: Vec<String> = std::fs::read_dir(root().join("fixtures/logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    // A first line of its own: the file source tells files apart by their first
    // bytes, and this one would otherwise start as the first fixture does.
    let mut every = b"# every fixture log, end to end\n".to_vec();
    let mut paths = Vec::new();
    let mut lines = 0;
    for n in &names {
        let data = std::fs::read(root().join("fixtures/logs").join(n)).unwrap();
        let p = dir.join(n);
        std::fs::write(&p, &data).unwrap();
        every.extend_from_slice(&data);
        if !every.ends_with(b"\n") {
            every.push(b'\n');
        }
        paths.push(p.display().to_string());
    }
    let p = dir.join("every_format.log");
    std::fs::write(&p, &every).unwrap();
    paths.push(p.display().to_string());
    for p in &paths {
        let data = std::fs::read(p).unwrap();
        lines += data.split(|&b| b == b'\n').count() as u64 - u64::from(data.ends_with(b"\n"));
    }
    (paths, lines)
}

#[test]
fn hunt_and_run_emit_the_same_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (paths, total_lines) = copy_logs(&logs);

    let mut args = vec!["hunt", "-q", "--intel", "fixtures/intel"];
    args.extend(paths.iter().map(String::as_str));
    let hunt = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(&args)
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(
        hunt.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&hunt.stderr)
    );
    let hunt = parse(&String::from_utf8_lossy(&hunt.stdout));

    let alerts = dir.path().join("alerts.jsonl");
    let config = dir.path().join("tripline.toml");
    let metrics = free_addr();
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [\"fixtures/intel\"]\nwatch = false\n\
             [[sources]]\ntype = \"file\"\nname = \"logs\"\ninclude = [{:?}]\nstart_at = \"beginning\"\n\
             [alerts]\npath = {:?}\n[state]\ndir = {:?}\n",
            logs.join("*.log").display().to_string(),
            alerts.display().to_string(),
            dir.path().join("state").display().to_string(),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["run", "--config", config.to_str().unwrap()])
        .args(["--metrics-addr", &metrics.to_string()])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Every line read and every line alert written.
    let want_lines = total_lines as f64;
    let want_alerts = line_alerts(&hunt).len() as f64;
    let t0 = Instant::now();
    loop {
        let read = metric(metrics, "tripline_lines_received_total").unwrap_or(0.0);
        let written = metric(metrics, "tripline_alerts_written_total").unwrap_or(0.0);
        if read >= want_lines && written >= want_alerts {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "sidecar read {read} of {want_lines} lines, wrote {written} of {want_alerts} alerts"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    let run = parse(&std::fs::read_to_string(&alerts).unwrap());

    let (h, r) = (line_alerts(&hunt), line_alerts(&run));
    assert!(!h.is_empty());
    assert_eq!(
        h.keys().collect::<Vec<_>>(),
        r.keys().collect::<Vec<_>>(),
        "different lines alerted"
    );
    for (k, v) in &h {
        assert_eq!(Some(v), r.get(k), "{k:?}");
    }
}

/// Runs the binary with `input` on stdin; (exit code, stdout).
fn with_stdin(args: &[&str], input: &[u8]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(args)
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Through stdin, each log alone: the same line alerts and the same confirmations
/// from the shipped rules (the sidecar's rules run on event time, and the end of
/// stdin closes open windows as the end of a hunt does).
#[test]
fn hunt_and_run_confirm_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, _) = copy_logs(dir.path());
    let config = dir.path().join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [\"fixtures/intel\"]\nwatch = false\n[metrics]\nenabled = false\n\
             [state]\ndir = {:?}\n",
            dir.path().join("state").display().to_string(),
        ),
    )
    .unwrap();
    let mut confirmed = 0;
    for path in &paths {
        let _ = std::fs::remove_dir_all(dir.path().join("state"));
        let input = std::fs::read(path).unwrap();
        let (_, hunt) = with_stdin(
            &[
                "hunt",
                "-q",
                "--intel",
                "fixtures/intel",
                "--default-rules",
                "-",
            ],
            &input,
        );
        let (code, run) = with_stdin(
            &["run", "--stdin", "--config", config.to_str().unwrap()],
            &input,
        );
        assert_eq!(code, Some(0), "{path}");
        let (hunt, run) = (parse(&hunt), parse(&run));
        assert_eq!(
            line_alerts(&hunt),
            line_alerts(&run),
            "{path}: line alerts differ"
        );
        let (hc, rc) = (confirmations(&hunt), confirmations(&run));
        assert_eq!(hc, rc, "{path}: confirmations differ");
        confirmed += hc.len();
    }
    assert!(
        confirmed > 0,
        "the fixtures confirm nothing: the test proves little"
    );
}

/// Text inside a message, a URL or a nested object never sets the alert's time (nor,
/// therefore, the time STIX validity is judged at): each line below names an
/// indicator valid from 2024-03-01 and carries an older decoy time where an attacker
/// can write. Before the fix, each was dated at the decoy and its hit silently
/// dropped. Both drivers, same result.
/// `harbor-campaign.json` with a far `valid_until` on each indicator that has none:
/// these tests match lines timed when they are read (now), which the default lifetime
/// of the 2024 intel (README "Expiry and decay") would otherwise have ended.
fn harbor_valid_now(dir: &Path) -> String {
    let text = std::fs::read_to_string(root().join("fixtures/intel/stix/harbor-campaign.json"))
        .expect("fixture");
    let mut bundle: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    for o in bundle["objects"].as_array_mut().expect("objects") {
        if o["type"] == "indicator" && o.get("valid_until").is_none() {
            o["valid_until"] = serde_json::json!("2100-01-01T00:00:00Z");
        }
    }
    let path = dir.join("harbor-campaign.json");
    std::fs::write(&path, bundle.to_string()).expect("bundle written");
    path.display().to_string()
}

/// The harbor intel (valid now) and a `run` config reading it, state in `dir`, no
/// metrics, no rules.
fn harbor_stdin_config(dir: &Path) -> (String, std::path::PathBuf) {
    let intel = harbor_valid_now(dir);
    let config = dir.join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [{intel:?}]\nwatch = false\n\
             [metrics]\nenabled = false\n[rules]\nenabled = false\n[state]\ndir = {:?}\n",
            dir.join("state").display().to_string(),
        ),
    )
    .unwrap();
    (intel, config)
}

#[test]
fn time_from_message_text_is_ignored() {
    let lines = concat!(
        "10.0.0.1 - - [01/May/2024:10:00:01 +0000] \"GET http://cdn.update-check.example.net/beacon?d=2019-01-01T00:00:00 HTTP/1.1\" 200 5\n",
        "{\"msg\":\"upload 2023-01-01 00:00:00\",\"@timestamp\":\"2024-05-01T10:00:00Z\",\"dest\":\"update-check.example.net\"}\n",
        "{\"file\":{\"ts\":1500000000},\"url\":{\"domain\":\"update-check.example.net\"}}\n",
        "May  1 10:00:03 fw01 app: seen 2019-01-01T00:00:00Z update-check.example.net\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let (intel, config) = harbor_stdin_config(dir.path());
    let intel = intel.as_str();
    let (_, hunt) = with_stdin(&["hunt", "-q", "--intel", intel, "-"], lines.as_bytes());
    let (_, run) = with_stdin(
        &["run", "--stdin", "--config", config.to_str().unwrap()],
        lines.as_bytes(),
    );
    for (driver, out) in [("hunt", hunt), ("run", run)] {
        let alerts = parse(&out);
        let got: Vec<(u64, String, String)> = alerts
            .iter()
            .map(|a| {
                (
                    a["tripline"]["line_number"].as_u64().unwrap(),
                    a["@timestamp"].as_str().unwrap().to_string(),
                    a["tripline"]["time_source"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got.len(), 4, "{driver}: {out}");
        assert_eq!(got[0].1, "2024-05-01T10:00:01Z", "{driver}");
        assert_eq!(got[1].1, "2024-05-01T10:00:00Z", "{driver}");
        // No time of its own at the top level: the time of reading, and it says so.
        assert_eq!(got[2].2, "read", "{driver}");
        assert!(got[2].1.as_str() > "2025", "{driver}: {}", got[2].1);
        // Year-less syslog: the year that puts it in the past.
        assert!(
            got[3].1.ends_with("-05-01T10:00:03Z"),
            "{driver}: {}",
            got[3].1
        );
        assert_ne!(&got[3].1[..4], "2019", "{driver}");
        for g in [&got[0], &got[1], &got[3]] {
            assert_eq!(g.2, "event", "{driver}: {g:?}");
        }
    }
}

/// With recording on (the default), a run's start retro probes what earlier runs
/// recorded, never the lines this run has just matched live: once a short `run --stdin`
/// had sealed its own lines before its start run opened the store, that run alerted
/// them a second time as retro alerts (no `line_number`). Several short runs, each
/// with a fresh state, so that the timing that showed it comes up.
#[test]
fn start_retro_does_not_alert_the_runs_own_lines_again() {
    let lines = "May  1 10:00:03 fw01 app: seen update-check.example.net\n\
                 May  1 10:00:04 fw01 app: seen update-check.example.net again\n";
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let (_, config) = harbor_stdin_config(dir.path());
        let (code, out) = with_stdin(
            &["run", "--stdin", "--config", config.to_str().unwrap()],
            lines.as_bytes(),
        );
        assert_eq!(code, Some(0), "round {round}: {out}");
        let alerts = parse(&out);
        assert_eq!(alerts.len(), 2, "round {round}: {out}");
        for a in &alerts {
            assert!(a["tripline"]["line_number"].is_u64(), "round {round}: {a}");
            assert!(a["tripline"].get("retro").is_none(), "round {round}: {a}");
        }
        // What it recorded is there for the next start.
        assert!(dir.path().join("state/retro").is_dir(), "round {round}");
    }
}

/// `hunt --timezone` and a source's `timezone` read zoneless times in that zone.
#[test]
fn zoneless_times_use_the_configured_zone() {
    let line = b"May  1 12:00:03 fw01 app: seen update-check.example.net\n";
    let dir = tempfile::tempdir().unwrap();
    let intel = harbor_valid_now(dir.path());
    let config = dir.path().join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [{intel:?}]\nwatch = false\n\
             [[sources]]\ntype = \"stdin\"\ntimezone = \"Europe/Berlin\"\n\
             [metrics]\nenabled = false\n[rules]\nenabled = false\n[state]\ndir = {:?}\n",
            dir.path().join("state").display().to_string(),
        ),
    )
    .unwrap();
    let intel = intel.as_str();
    let (_, hunt) = with_stdin(
        &[
            "hunt",
            "-q",
            "--timezone",
            "Europe/Berlin",
            "--intel",
            intel,
            "-",
        ],
        line,
    );
    // The configured stdin source (not --stdin, which is an unconfigured one).
    let (_, run) = with_stdin(&["run", "--config", config.to_str().unwrap()], line);
    for (driver, out) in [("hunt", hunt), ("run", run)] {
        let a = parse(&out);
        assert_eq!(a.len(), 1, "{driver}: {out}");
        // 12:00 in Berlin in May (CEST, +02:00) is 10:00 UTC.
        let t = a[0]["@timestamp"].as_str().unwrap();
        assert!(t.ends_with("-05-01T10:00:03Z"), "{driver}: {t}");
    }
}
