//! Alerts against the Elastic Common Schema: every field of every alert that `hunt`
//! and `run` write (line matches in every decoded format, and rule confirmations) is
//! checked against ECS's own definitions, vendored from elastic/ecs in
//! `fixtures/ecs/ecs_flat_subset.yml`: the field must exist in ECS (everything outside
//! the top-level `tripline` object), its value must have the field's type (keyword,
//! date, ip, long, nested...), be an array only where ECS normalises to one, and take
//! only the allowed or expected values (`event.kind`, `event.category`, `event.type`
//! for its category, `threat.enrichments.indicator.type`, `marking.tlp`...).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::util::root;
use serde_json::{json, Value};

/// ECS field definitions by flat name.
struct Ecs(BTreeMap<String, Value>);

impl Ecs {
    fn load() -> Ecs {
        let path = root().join("fixtures/ecs/ecs_flat_subset.yml");
        let text = std::fs::read_to_string(&path).unwrap();
        Ecs(serde_norway::from_str(&text).unwrap())
    }

    /// Whether some ECS field lies under `path` (an object on the way to fields).
    fn is_parent(&self, path: &str) -> bool {
        let prefix = format!("{path}.");
        self.0
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// Every way `doc` breaks ECS, one line each (`path: why`).
    fn check(&self, doc: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        let Some(top) = doc.as_object() else {
            return vec!["the alert is not a JSON object".into()];
        };
        for (k, v) in top {
            if k != "tripline" {
                self.walk(k, v, &mut errors);
            }
        }
        self.check_event_types(doc, &mut errors);
        errors
    }

    fn walk(&self, path: &str, v: &Value, errors: &mut Vec<String>) {
        let def = self.0.get(path);
        let ty = def.and_then(|d| d["type"].as_str());
        let array_ok = def.is_some_and(|d| {
            d["normalize"]
                .as_array()
                .is_some_and(|n| n.iter().any(|x| x == "array"))
        });
        match (v, ty) {
            (Value::Object(o), None | Some("object") | Some("nested")) => {
                if def.is_none() && !self.is_parent(path) {
                    errors.push(format!("{path}: not an ECS field or object"));
                    return;
                }
                for (k, v) in o {
                    self.walk(&format!("{path}.{k}"), v, errors);
                }
            }
            (Value::Array(items), Some("nested") | Some("object")) => {
                for item in items {
                    if !item.is_object() {
                        errors.push(format!("{path}: {item} in a nested field is no object"));
                        continue;
                    }
                    self.walk(path, item, errors);
                }
            }
            (_, None) => errors.push(format!("{path}: not an ECS field")),
            (Value::Array(items), Some(ty)) => {
                if !array_ok {
                    errors.push(format!("{path}: an array where ECS has one value"));
                }
                for item in items {
                    self.leaf(path, ty, item, errors);
                }
            }
            (_, Some(ty)) => {
                if array_ok {
                    errors.push(format!("{path}: ECS normalises it to an array"));
                }
                self.leaf(path, ty, v, errors);
            }
        }
    }

    fn leaf(&self, path: &str, ty: &str, v: &Value, errors: &mut Vec<String>) {
        let ok = match ty {
            "keyword" | "constant_keyword" | "wildcard" | "text" | "match_only_text" => {
                v.as_str().is_some_and(|s| !s.is_empty())
            }
            "date" => v
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            "ip" => v
                .as_str()
                .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok()),
            "long" | "integer" | "short" | "byte" => v.is_i64() || v.is_u64(),
            "float" | "double" | "scaled_float" | "half_float" => v.is_number(),
            "boolean" => v.is_boolean(),
            other => {
                errors.push(format!("{path}: type {other} is not checked by this test"));
                return;
            }
        };
        if !ok {
            errors.push(format!("{path}: {v} is not a valid {ty}"));
            return;
        }
        let def = &self.0[path];
        let allowed: Vec<&str> = def["allowed_values"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
            .or_else(|| {
                def["expected_values"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
            })
            .unwrap_or_default();
        if !allowed.is_empty() && !v.as_str().is_some_and(|s| allowed.contains(&s)) {
            errors.push(format!("{path}: {v} is not one of {allowed:?}"));
        }
    }

    /// Each `event.type` must be one ECS expects for one of the event's categories.
    fn check_event_types(&self, doc: &Value, errors: &mut Vec<String>) {
        let categories = &self.0["event.category"]["allowed_values"];
        let mut expected = BTreeSet::new();
        for c in doc["event"]["category"].as_array().into_iter().flatten() {
            let def = categories
                .as_array()
                .into_iter()
                .flatten()
                .find(|d| d["name"] == *c);
            for t in def
                .and_then(|d| d["expected_event_types"].as_array())
                .into_iter()
                .flatten()
            {
                expected.insert(t.as_str().unwrap_or_default().to_string());
            }
        }
        for t in doc["event"]["type"].as_array().into_iter().flatten() {
            let t = t.as_str().unwrap_or_default();
            if !expected.contains(t) {
                errors.push(format!(
                    "event.type: {t:?} is not expected for categories {}",
                    doc["event"]["category"]
                ));
            }
        }
    }
}

/// One line per decoded format that the fixture logs lack, each matching the trap
/// intel (`fixtures/intel/traps`).
const FORMAT_LINES: &str = concat!(
    "<165>1 2024-05-01T10:00:30Z host1 app 1 ID1 [ex@32473 src=\"91.198.51.77\"] msg\n",
    "CEF:0|Vendor|Product|1.0|100|Blocked|5|rt=May 01 2024 10:00:31 src=10.0.0.9 dst=91.198.51.77 dhost=www.evil-traps.com request=http://gate.trap-c2.net/gate.php\n",
    "date=2024-05-01 time=10:00:32 devname=fw02 srcip=91.198.51.77 dstip=192.0.2.1\n",
    "WS01\tMSWinEventLog\t1\tSecurity\t42\tWed May 01 10:00:35 2024\t4624\tMicrosoft-Windows-Security-Auditing\tN/A\tN/A\tSuccess Audit\tWS01\tLogon\t\tSource Network Address: 91.198.51.77\n",
    "{\"timestamp\":\"2024-05-01T10:00:33Z\",\"event_type\":\"dns\",\"src_ip\":\"192.0.2.5\",\"dest_ip\":\"91.198.51.77\",\"dns\":{\"rrname\":\"x.evil-traps.com\"}}\n",
    "2024-05-01T10:00:34Z evil-traps.com no-host\n",
    "no time here, only 91.198.51.77\n",
    // A sha256 of CIRCL's Xorist event (fixtures/intel/misp/pymisp-tests).
    "2024-05-01T10:00:36Z av01 sha256=b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68\n",
);

/// Every format tripline decodes.
const FORMATS: [&str; 8] = [
    "syslog3164",
    "syslog5424",
    "json",
    "zeek_tsv",
    "kv",
    "apache",
    "snare",
    "plain",
];

fn docs(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Checks every alert; panics with every error of the first few bad ones.
fn assert_ecs(ecs: &Ecs, docs: &[Value]) {
    let bad: Vec<String> = docs
        .iter()
        .filter_map(|d| {
            let e = ecs.check(d);
            (!e.is_empty()).then(|| format!("{}\n  {}", d, e.join("\n  ")))
        })
        .take(5)
        .collect();
    assert!(bad.is_empty(), "alerts that break ECS:\n{}", bad.join("\n"));
}

/// Checks alerts written elsewhere (retro alerts: `retro_match`) against ECS.
pub(crate) fn assert_alerts_are_ecs(docs: &[Value]) {
    assert_ecs(&Ecs::load(), docs);
}

fn formats(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .filter_map(|d| d["tripline"]["format"].as_str().map(str::to_string))
        .collect()
}

fn fixture_logs() -> Vec<String> {
    let mut logs: Vec<String> = std::fs::read_dir(root().join("fixtures/logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .map(|n| format!("fixtures/logs/{n}"))
        .collect();
    logs.sort();
    logs
}

#[test]
fn every_hunt_alert_is_ecs() {
    let ecs = Ecs::load();
    let dir = tempfile::tempdir().unwrap();
    let formats_log = dir.path().join("formats.log");
    std::fs::write(&formats_log, FORMAT_LINES).unwrap();
    let mut args = vec![
        "hunt".to_string(),
        "-q".into(),
        "--default-rules".into(),
        "--intel".into(),
        "fixtures/intel".into(),
    ];
    args.extend(fixture_logs());
    args.push(formats_log.display().to_string());
    let out = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(&args)
        .current_dir(root())
        .output()
        .unwrap();
    let docs = docs(&out);
    assert_ecs(&ecs, &docs);
    let seen = formats(&docs);
    for f in FORMATS {
        assert!(seen.contains(f), "no alert in format {f}: {seen:?}");
    }
    // A plain line's leading stamp is followed by a domain it talks about: no host.
    let plain = docs
        .iter()
        .find(|d| d["message"] == "2024-05-01T10:00:34Z evil-traps.com no-host")
        .expect("the no-host line matched");
    assert!(plain.get("host").is_none(), "{plain}");
    assert_eq!(plain["tripline"]["format"], "plain");
    // Confirmations were checked too, and typed fields of several kinds.
    assert!(docs.iter().any(|d| d["event"]["kind"] == "alert"));
    let text = serde_json::to_string(&docs).unwrap();
    for typed in [
        "\"ip\":",
        "\"full\":",
        "\"md5\":",
        "\"sha256\":",
        "\"domain\":",
        "\"address\":",
        "\"description\":",
    ] {
        assert!(text.contains(typed), "no alert has {typed}");
    }
}

#[test]
fn every_run_alert_is_ecs() {
    let ecs = Ecs::load();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [\"fixtures/intel\"]\n[metrics]\naddress = \"127.0.0.1:0\"\n[state]\ndir = {:?}\n",
            dir.path().join("state").display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["run", "--stdin", "--config", config.to_str().unwrap()])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = std::fs::read(root().join("fixtures/logs/traps.log")).unwrap();
    input.extend_from_slice(FORMAT_LINES.as_bytes());
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let docs = docs(&child.wait_with_output().unwrap());
    assert_ecs(&ecs, &docs);
    let seen = formats(&docs);
    for f in ["syslog3164", "syslog5424", "json", "kv", "snare", "plain"] {
        assert!(seen.contains(f), "no alert in format {f}: {seen:?}");
    }
}

/// The checker itself: each way of breaking ECS is caught.
#[test]
fn ecs_check_rejects_what_ecs_does_not_allow() {
    let ecs = Ecs::load();
    let good = json!({
        "@timestamp": "2024-05-01T10:00:00Z",
        "event": {"kind": "event", "category": ["threat"], "type": ["indicator"]},
        "source": {"ip": "192.0.2.1"},
        "threat": {"enrichments": [{
            "indicator": {"type": "ipv4-addr", "name": "192.0.2.1", "ip": "192.0.2.1",
                          "marking": {"tlp": "CLEAR"}},
            "matched": {"atomic": "192.0.2.1", "field": "source.ip",
                        "occurred": "2024-05-01T10:00:00Z", "type": "indicator_match_rule"}
        }]},
        "tripline": {"anything": {"goes": ["here"]}},
    });
    assert_eq!(ecs.check(&good), Vec::<String>::new());
    let breaks: &[(&str, Value)] = &[
        ("/threat/enrichments/0/tripline", json!({"kind": "ipv4"})),
        ("/event/kind", json!("match")),
        ("/event/type", json!(["start"])),
        ("/event/category", json!("threat")),
        ("/source/ip", json!("not-an-ip")),
        ("/threat/enrichments/0/indicator/type", json!("ipv4")),
        (
            "/threat/enrichments/0/indicator/marking/tlp",
            json!("tlp:clear"),
        ),
        ("/threat/enrichments/0/matched/occurred", json!("yesterday")),
        ("/threat/enrichments/0/indicator/port", json!("443")),
        ("/log", json!({"offset": 0})),
        ("/log", json!({"syslog": {"peer": "127.0.0.1:514"}})),
    ];
    for (pointer, value) in breaks {
        let mut doc = good.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut doc
        } else {
            doc.pointer_mut(parent).unwrap()
        };
        target[key] = value.clone();
        assert!(
            !ecs.check(&doc).is_empty(),
            "{pointer} = {value} passed the check"
        );
    }
}
