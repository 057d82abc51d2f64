//! Retro matching on demand (issue 12, point 2): `tripline hunt --record` fills the
//! store of a configuration's state directory from a log written here (generated
//! test data, times relative to now), then `tripline retro --config` probes intel
//! that arrived "later": an exact IP, a CIDR, a parent domain of recorded
//! subdomains, a URL, a hash and an e-mail are found with the log's own times and
//! counts; values not in the log are not; `--since` leaves out older days. And, on a
//! small scale, the property of point 3: live matching with old intel plus retro
//! matching with new intel gives the same (observed value, indicator) pairs as live
//! matching with all of it.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::util::tripline;

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

struct Times {
    old: i64,
    t1: i64,
    t2: i64,
    t3: i64,
}

fn text(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The log: JSON lines with their own `@timestamp`.
fn write_log(path: &Path) -> Times {
    let now = Utc::now().timestamp();
    let t = Times {
        old: now - 10 * 86_400,
        t1: now - 2 * 86_400,
        t2: now - 2 * 86_400 + 3600,
        t3: now - 86_400,
    };
    let lines = [
        json!({"@timestamp": text(t.old), "src_ip": "45.77.12.34",
               "url": "http://dl.retro-evil.com/a/payload.bin?x=1"}),
        json!({"@timestamp": text(t.t1), "src_ip": "45.77.12.34", "dest_ip": "91.210.104.17",
               "sha256": HASH, "from": "mallory@retro-mail.org"}),
        json!({"@timestamp": text(t.t2), "dest_ip": "91.210.104.17",
               "query": "c2.sub.retro-evil.com"}),
        json!({"@timestamp": text(t.t3), "src_ip": "8.8.4.4", "query": "benign-retro.org"}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, body).unwrap();
    t
}

fn write_config(dir: &Path, intel: &[&Path]) -> std::path::PathBuf {
    let paths: Vec<String> = intel
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    let cfg = dir.join("tripline.toml");
    std::fs::write(
        &cfg,
        format!(
            "[intel]\npaths = [{}]\nno_default_warninglists = true\n\
             [state]\ndir = {:?}\n[retro]\nretention_days = 3650\n",
            paths.join(", "),
            dir.join("state").display().to_string()
        ),
    )
    .unwrap();
    cfg
}

fn record(cfg: &Path, store: &Path, intel: &Path, log: &Path) -> Vec<Value> {
    let out = tripline(&[
        "hunt",
        "--config",
        cfg.to_str().unwrap(),
        "--intel",
        intel.to_str().unwrap(),
        "--no-default-warninglists",
        "--record",
        store.to_str().unwrap(),
        "-q",
        log.to_str().unwrap(),
    ]);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "hunt --record failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&out.stdout)
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn retro(args: &[&str]) -> (Vec<Value>, String, Option<i32>) {
    let mut all = vec!["retro"];
    all.extend_from_slice(args);
    let out = tripline(&all);
    (
        lines(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// The alert whose observed value is `atomic`.
fn by_atomic<'a>(alerts: &'a [Value], atomic: &str) -> &'a Value {
    alerts
        .iter()
        .find(|a| a["threat"]["enrichments"][0]["matched"]["atomic"] == atomic)
        .unwrap_or_else(|| panic!("no retro alert for {atomic}: {alerts:#?}"))
}

/// Indicator names an alert carries.
fn names(a: &Value) -> BTreeSet<String> {
    a["threat"]["enrichments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["indicator"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// (observed value, canonical indicator) pairs of alerts, live or retro. A URL's
/// observed value is the canonical URL that matched: the store keeps no line text,
/// so retro reports the URL as the index keys it (`host/path`, cut where the
/// indicator is cut), where a live alert shows the URL as the line wrote it.
fn pairs(alerts: &[Value]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for a in alerts {
        let ecs = a["threat"]["enrichments"].as_array().unwrap();
        let mine = a["tripline"]["enrichments"].as_array().unwrap();
        for (e, m) in ecs.iter().zip(mine) {
            let indicator = m["indicator"].as_str().unwrap().to_string();
            let atomic = if m["kind"] == "url" {
                indicator.clone()
            } else {
                e["matched"]["atomic"].as_str().unwrap().to_string()
            };
            out.insert((atomic, indicator));
        }
    }
    out
}

#[test]
fn retro_finds_what_the_logs_held_with_their_times() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let t = write_log(&log);
    // Nothing matches while recording: the intel arrives later.
    let none = dir.path().join("none.txt");
    std::fs::write(&none, "203.0.113.250\n").unwrap();
    let cfg = write_config(dir.path(), &[&none]);
    let store = dir.path().join("state/retro");
    let live = record(&cfg, &store, &none, &log);
    assert!(live.is_empty(), "{live:?}");

    // The new intel: a plain list, and a MISP event carrying a publication time.
    let list = dir.path().join("new.txt");
    std::fs::write(
        &list,
        "45.77.12.34\n91.210.104.0/24\nretro-evil.com\n\
         http://dl.retro-evil.com/a/payload.bin\nmallory@retro-mail.org\n\
         5.6.7.8\nnever-seen-retro.com\n",
    )
    .unwrap();
    let published = Utc::now().timestamp() - 3600;
    let misp = dir.path().join("event.json");
    std::fs::write(
        &misp,
        json!({"Event": {
            "uuid": "11111111-2222-4333-8444-555555555555", "info": "retro test",
            "Attribute": [{
                "uuid": "6f1a0c3e-2d4b-4c5a-9e8f-0a1b2c3d4e5f", "type": "sha256",
                "category": "Payload delivery", "value": HASH, "to_ids": true,
                "timestamp": published.to_string(),
            }]
        }})
        .to_string(),
    )
    .unwrap();
    let cfg = write_config(dir.path(), &[&list, &misp]);
    let out_file = dir.path().join("retro.jsonl");
    let (stdout, err, code) = retro(&[
        "--config",
        cfg.to_str().unwrap(),
        "--output",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(stdout.is_empty());
    assert!(err.contains("8 indicator(s) probed"), "{err}");
    let alerts = lines(&std::fs::read(&out_file).unwrap());
    // Shaped like live alerts: every field outside `tripline` is ECS.
    crate::ecs::assert_alerts_are_ecs(&alerts);
    for a in &alerts {
        assert_eq!(a["tripline"]["retro"], true);
        assert_eq!(a["event"]["kind"], "event");
    }
    let check = |atomic: &str, first: i64, last: i64, count: u64, indicator: &str| {
        let a = by_atomic(&alerts, atomic);
        assert_eq!(a["@timestamp"], text(first), "{atomic}: {a:#}");
        let seen = &a["tripline"]["retro_seen"];
        assert_eq!(seen["first"], text(first), "{atomic}");
        assert_eq!(seen["last"], text(last), "{atomic}");
        assert_eq!(seen["count"], count, "{atomic}");
        assert_eq!(
            a["threat"]["enrichments"][0]["matched"]["occurred"],
            text(first)
        );
        assert!(names(a).contains(indicator), "{atomic}: {a:#}");
        assert_eq!(
            seen["sources"],
            json!([log.display().to_string()]),
            "{atomic}"
        );
        // The log names no host: the file stands in, and is no `host.name`.
        assert!(a.get("host").is_none(), "{atomic}: {a:#}");
        assert_eq!(
            a["threat"]["enrichments"][0]["indicator"]["provider"],
            if atomic == HASH { "event" } else { "new" },
            "{atomic}"
        );
    };
    check("45.77.12.34", t.old, t.t1, 2, "45.77.12.34");
    check("91.210.104.17", t.t1, t.t2, 2, "91.210.104.0/24");
    check("dl.retro-evil.com", t.old, t.old, 1, "retro-evil.com");
    check("c2.sub.retro-evil.com", t.t2, t.t2, 1, "retro-evil.com");
    check(
        "dl.retro-evil.com/a/payload.bin",
        t.old,
        t.old,
        1,
        "http://dl.retro-evil.com/a/payload.bin",
    );
    check(HASH, t.t1, t.t1, 1, HASH);
    check(
        "mallory@retro-mail.org",
        t.t1,
        t.t1,
        1,
        "mallory@retro-mail.org",
    );
    // The publication time and the intel lag, where the intel has one.
    let h = by_atomic(&alerts, HASH);
    assert_eq!(h["tripline"]["intel_published"], text(published));
    assert_eq!(h["tripline"]["intel_lag_secs"], published - t.t1);
    assert!(by_atomic(&alerts, "45.77.12.34")["tripline"]
        .get("intel_lag_secs")
        .is_none());
    // Not in the logs: not found; in the logs but in no intel: no alert.
    let all: BTreeSet<(String, String)> = pairs(&alerts);
    assert!(!all
        .iter()
        .any(|(v, i)| v.contains("5.6.7.8") || i.contains("never-seen") || v == "8.8.4.4"));
    assert_eq!(alerts.len(), 7, "{alerts:#?}");

    // --since 5d: the day 10 days back is not probed.
    let (recent, err, code) = retro(&["--config", cfg.to_str().unwrap(), "--since", "5d"]);
    assert_eq!(code, Some(0), "{err}");
    let ip = by_atomic(&recent, "45.77.12.34");
    assert_eq!(ip["@timestamp"], text(t.t1));
    assert_eq!(ip["tripline"]["retro_seen"]["count"], 1);
    assert!(!recent
        .iter()
        .any(|a| a["threat"]["enrichments"][0]["matched"]["atomic"] == "dl.retro-evil.com"));
    assert_eq!(recent.len(), 5, "{recent:#?}");
    // --since 12h: nothing left but the benign line: exit status 1, like grep.
    let (none, _, code) = retro(&["--config", cfg.to_str().unwrap(), "--since", "12h"]);
    assert!(none.is_empty());
    assert_eq!(code, Some(1));
}

/// Issue 12, point 3, on a small scale: for each split of the intel into old and
/// new, `hunt` with the old intel plus `retro` with the new gives the same (observed
/// value, indicator) pairs as `hunt` with all of it.
#[test]
fn live_old_plus_retro_new_equals_live_all() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write_log(&log);
    let intel = [
        "45.77.12.34",
        "91.210.104.0/24",
        "retro-evil.com",
        "c2.sub.retro-evil.com",
        "http://dl.retro-evil.com/a/payload.bin",
        HASH,
        "mallory@retro-mail.org",
        "5.6.7.8",
    ];
    let all_file = dir.path().join("all.txt");
    std::fs::write(&all_file, intel.join("\n")).unwrap();
    let cfg = write_config(dir.path(), &[&all_file]);
    let live_all = pairs(&record(
        &cfg,
        &dir.path().join("unused-store"),
        &all_file,
        &log,
    ));
    assert!(live_all.len() >= 7, "{live_all:?}");
    // Splits: by a bit mask over the indicators (a few, to keep it fast).
    for mask in [0u32, 0b1010_1010, 0b0101_0101, 0b1111_0000, 0b1111_1111] {
        let old: Vec<&str> = (0..intel.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| intel[i])
            .collect();
        let new: Vec<&str> = (0..intel.len())
            .filter(|i| mask & (1 << i) == 0)
            .map(|i| intel[i])
            .collect();
        let case = dir.path().join(format!("m{mask}"));
        std::fs::create_dir_all(&case).unwrap();
        let old_file = case.join("old.txt");
        let new_file = case.join("new.txt");
        // An empty list would be no intel at all: an address from no log stands in.
        std::fs::write(&old_file, format!("{}\n203.0.113.251\n", old.join("\n"))).unwrap();
        std::fs::write(&new_file, format!("{}\n203.0.113.252\n", new.join("\n"))).unwrap();
        let store = case.join("store");
        let mut got = pairs(&record(&cfg, &store, &old_file, &log));
        let (alerts, err, code) = retro(&[
            "--store",
            store.to_str().unwrap(),
            "--intel",
            new_file.to_str().unwrap(),
            "--no-default-warninglists",
        ]);
        assert!(code.is_some_and(|c| c <= 1), "{err}");
        if mask == 0 {
            // Found by two indicators (its domain and itself): one alert, two
            // enrichments, the day's record counted once.
            let a = by_atomic(&alerts, "c2.sub.retro-evil.com");
            assert_eq!(a["threat"]["enrichments"].as_array().unwrap().len(), 2);
            assert_eq!(a["tripline"]["retro_seen"]["count"], 1, "{a:#}");
        }
        got.extend(pairs(&alerts));
        assert_eq!(got, live_all, "split {mask:#b}: old {old:?}, new {new:?}");
    }
}
