//! Exactly once and delivery per destination (issue 10 defects 8, 9 and 14, "What to
//! build" point 6): slow servers that apply a sighting after we gave up, rows frozen
//! from their first attempt, a slow destination beside a fast one, revoked keys,
//! older MISP releases, counts, pacing, TAXII batches and the audit log. Against the
//! fake MISP (`util/fake_misp.py`), medallion and STIX bundle directories.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::*;
use chrono::Utc;
use serde_json::{json, Value};
use tripline::intel::Kind;
use tripline::share::{Outbox, Selection, State};

const A1: &str = "6f1a0c3e-2d4b-4c5a-9e8f-0a1b2c3d4e5f";
const E1: &str = "11111111-2222-4333-8444-555555555555";

/// `n` attributes `evil-<i>.example` of event E1, with generated UUIDs.
fn many_attributes(n: usize) -> (Value, Vec<String>) {
    let uuids: Vec<String> = (0..n)
        .map(|i| format!("6f1a0c3e-2d4b-4c5a-9e8f-{:012x}", i + 1))
        .collect();
    let attrs = uuids
        .iter()
        .enumerate()
        .map(|(i, u)| {
            json!({"uuid": u, "value": format!("evil-{i}.example"), "event_uuid": E1,
                   "type": "domain"})
        })
        .collect();
    (Value::Array(attrs), uuids)
}

fn misp_destination(url: &str, key_file: &Path, extra: &str) -> String {
    format!(
        r#"
source_name = "ACME SOC"
[[destinations]]
name = "circl"
approval = "auto"
retry_initial_secs = 30
retry_max_secs = 600
{extra}
[destinations.transport]
type = "misp"
url = "{url}"
api_key_file = "{}"
"#,
        key_file.display()
    )
}

fn hit(time: i64, value: &str, attr: &str) -> tripline::correlate::Observation {
    obs(
        time,
        value,
        Kind::Domain,
        vec![prov("circl", Some(E1), Some(attr))],
    )
}

fn in_hours(h: i64) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::hours(h)
}

fn arrived(misp: &FakeMisp) -> u64 {
    misp.state()["arrived"].as_u64().unwrap_or(0)
}

/// Waits for `what` (a condition, not a fixed time), 30 s at most.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn defect_8_slow_server_applies_after_the_timeout_and_is_not_sent_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let misp = FakeMisp::start(
        &dir.path().join("misp"),
        &misp_attributes(&[(A1, "evil.example", E1)]),
        0,
    );
    let cfg = config(&misp_destination(
        &misp.url(),
        &misp.key_file(),
        "timeout_secs = 1\nsettle_secs = 5",
    ));
    let outbox = Outbox::open(&dir.path().join("state"), &cfg).expect("outbox");
    outbox
        .record(&confirmation("r", vec![hit(T0, "evil.example", A1)]))
        .expect("record");
    // The server takes 2.5 s and applies the sighting after our 1 s timeout.
    misp.control("slow", Some(1), 2.5);
    let r = outbox.send_now().expect("send");
    assert_eq!(r.retrying, 1, "{r:?}");
    assert!(misp.sightings().is_empty(), "not applied yet");
    // Sent again at once (an analyst runs `sightings send` twice): the row waits for
    // the server to settle instead of checking now and sending a second time.
    let r = outbox.send_now().expect("send again");
    assert_eq!((r.delivered, r.already_delivered), (0, 0), "{r:?}");
    assert_eq!(
        arrived(&misp),
        1,
        "nothing sent while the server may still apply"
    );
    misp.wait_for("the slow sighting", |s| {
        s["sightings"].as_array().is_some_and(|a| a.len() == 1)
    });
    let r = outbox.deliver_due(in_hours(1)).expect("deliver");
    assert_eq!(r.already_delivered, 1, "{r:?}");
    assert_eq!(
        misp.sightings().len(),
        1,
        "one sighting for one confirmation"
    );
    assert_eq!(arrived(&misp), 1);
}

#[test]
fn defect_9_a_row_is_frozen_from_its_first_attempt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let misp = FakeMisp::start(
        &dir.path().join("misp"),
        &misp_attributes(&[(A1, "evil.example", E1)]),
        0,
    );
    let cfg = config(&misp_destination(&misp.url(), &misp.key_file(), ""));
    let outbox = Outbox::open(&dir.path().join("state"), &cfg).expect("outbox");
    outbox
        .record(&confirmation("r", vec![hit(T0 + 5, "evil.example", A1)]))
        .expect("record");
    // Delivered, the answer lost.
    misp.control("fail_after_record", Some(1), 0.0);
    assert_eq!(outbox.send_now().expect("send").retrying, 1);
    // A new observation in the same (open) window.
    let rec = outbox
        .record(&confirmation("r", vec![hit(T0 + 20, "evil.example", A1)]))
        .expect("record");
    assert_eq!((rec.created, rec.merged), (1, 0), "{rec:?}");
    let rows = outbox.list(None).expect("list");
    assert_eq!(
        rows.len(),
        2,
        "a new row; the frozen one unchanged: {rows:?}"
    );
    assert_eq!(
        (rows[0].sighting.count, rows[0].sighting.last_seen),
        (1, t(T0 + 5))
    );
    assert_ne!(rows[0].key, rows[1].key, "a new idempotency key");
    let r = outbox.deliver_due(in_hours(1)).expect("deliver");
    assert_eq!((r.already_delivered, r.delivered), (1, 1), "{r:?}");
    let mut times: Vec<String> = misp
        .sightings()
        .iter()
        .map(|s| s["date_sighting"].as_str().unwrap_or("").to_string())
        .collect();
    times.sort();
    assert_eq!(
        times,
        vec![(T0 + 5).to_string(), (T0 + 20).to_string()],
        "each observation counted once"
    );
}

#[test]
fn defect_14_a_slow_destination_does_not_delay_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (attrs, uuids) = many_attributes(12);
    let misp = FakeMisp::start(&dir.path().join("misp"), &attrs, 0);
    let bundles = dir.path().join("bundles");
    let cfg = config(&format!(
        "{}\n[[destinations]]\nname = \"cert\"\nintel_sources = [\"cert-feed\"]\n\
         approval = \"auto\"\n[destinations.transport]\ntype = \"stix_dir\"\npath = \"{}\"\n",
        misp_destination(&misp.url(), &misp.key_file(), "timeout_secs = 10"),
        bundles.display()
    ));
    let outbox = Arc::new(Outbox::open(&dir.path().join("state"), &cfg).expect("outbox"));
    // The slow destination's rows come first in the outbox.
    let misp_hits = uuids
        .iter()
        .enumerate()
        .map(|(i, u)| hit(T0, &format!("evil-{i}.example"), u))
        .collect();
    outbox
        .record(&confirmation("r", misp_hits))
        .expect("record");
    let cert_hits = (0..5)
        .map(|i| {
            obs(
                T0,
                &format!("cert-{i}.example"),
                Kind::Domain,
                vec![prov(
                    "cert-feed",
                    None,
                    Some(&format!(
                        "indicator--5d0092c5-5f74-4287-9642-{:012x}",
                        i + 1
                    )),
                )],
            )
        })
        .collect();
    outbox
        .record(&confirmation("r", cert_hits))
        .expect("record");
    // Every MISP request takes half a second.
    misp.control("slow", None, 0.5);
    let worker = {
        let outbox = Arc::clone(&outbox);
        std::thread::spawn(move || outbox.send_now())
    };
    let files = || {
        std::fs::read_dir(&bundles)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_until("the fast destination's bundles", || files() == 5);
    let misp_done = misp.sightings().len();
    assert!(
        misp_done < 12,
        "the fast destination waited for the slow one ({misp_done} of 12 MISP rows done first)"
    );
    let r = worker.join().expect("worker").expect("send");
    assert_eq!(r.delivered, 17, "{r:?}");
    misp.control("ok", None, 0.0);
}

#[test]
fn defect_14_a_revoked_key_stops_the_destination_until_the_key_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (attrs, uuids) = many_attributes(20);
    let misp = FakeMisp::start(&dir.path().join("misp"), &attrs, 0);
    let key_file = dir.path().join("revoked.key");
    std::fs::write(&key_file, "revoked-key-never-printed\n").expect("key");
    let text = misp_destination(&misp.url(), &key_file, "");
    let state = dir.path().join("state");
    let outbox = Outbox::open(&state, &config(&text)).expect("outbox");
    let hits = uuids
        .iter()
        .enumerate()
        .map(|(i, u)| hit(T0, &format!("evil-{i}.example"), u))
        .collect();
    outbox.record(&confirmation("r", hits)).expect("record");
    let r = outbox.send_now().expect("send");
    assert_eq!(
        misp.requests().len(),
        1,
        "one request, then the destination stops"
    );
    assert_eq!(r.blocked.len(), 1, "{r:?}");
    let why = &r.blocked[0];
    assert!(
        why.contains("\"circl\"") && why.contains("HTTP 403") && why.contains("key"),
        "{why}"
    );
    assert!(!why.contains("revoked-key-never-printed"));
    let stats = outbox.stats().expect("stats");
    assert!(stats
        .deliveries
        .iter()
        .any(|d| d.destination == "circl" && d.blocked));
    // Later passes, and another process, send nothing while the key is unchanged.
    outbox.send_now().expect("send");
    outbox.deliver_due(in_hours(3)).expect("deliver");
    drop(outbox);
    let outbox = Outbox::open(&state, &config(&text)).expect("reopen");
    let r = outbox.deliver_due(in_hours(4)).expect("deliver");
    assert_eq!(r.deferred, 20, "{r:?}");
    assert_eq!(misp.requests().len(), 1, "still one request");
    let rows = outbox.list(None).expect("list");
    assert!(
        rows.iter().all(|e| e.state == State::Queued),
        "nothing lost"
    );
    // The key is replaced: everything goes.
    std::fs::write(&key_file, format!("{}\n", misp.key)).expect("key");
    let r = outbox.deliver_due(in_hours(5)).expect("deliver");
    assert_eq!(r.delivered, 20, "{r:?}");
    assert!(r.blocked.is_empty());
    assert_eq!(misp.sightings().len(), 20);
    let stats = outbox.stats().expect("stats");
    assert!(stats.deliveries.iter().all(|d| !d.blocked));
}

#[test]
fn defect_14_older_misp_releases_are_checked_by_numeric_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (attrs, uuids) = many_attributes(3);
    let misp = FakeMisp::start(&dir.path().join("misp"), &attrs, 0);
    misp.set_old_release(true);
    let cfg = config(&misp_destination(&misp.url(), &misp.key_file(), ""));
    let outbox = Outbox::open(&dir.path().join("state"), &cfg).expect("outbox");
    // Landed, answer lost: found by numeric id, not sent again.
    outbox
        .record(&confirmation(
            "r",
            vec![hit(T0, "evil-2.example", &uuids[2])],
        ))
        .expect("record");
    misp.control("fail_after_record", Some(1), 0.0);
    assert_eq!(outbox.send_now().expect("send").retrying, 1);
    let r = outbox.deliver_due(in_hours(1)).expect("deliver");
    assert_eq!((r.already_delivered, r.failed), (1, 0), "{r:?}");
    // Not landed: searched by id, found missing, sent.
    outbox
        .record(&confirmation(
            "r",
            vec![hit(T0, "evil-1.example", &uuids[1])],
        ))
        .expect("record");
    misp.control("fail", Some(1), 0.0);
    assert_eq!(outbox.send_now().expect("send").retrying, 1);
    let r = outbox.deliver_due(in_hours(2)).expect("deliver");
    assert_eq!((r.delivered, r.failed), (1, 0), "{r:?}");
    assert!(outbox.list(Some(State::Failed)).expect("list").is_empty());
    assert_eq!(misp.sightings().len(), 2);
    let searches: Vec<Value> = misp
        .requests()
        .into_iter()
        .filter(|r| r["path"] == "/sightings/restSearch" && r["status"] == 200)
        .collect();
    assert!(
        searches
            .iter()
            .all(|r| r["body"].as_str().is_some_and(|b| b.contains("\"id\""))),
        "{searches:?}"
    );
}

#[test]
fn misp_counts_are_sightings_capped_and_never_doubled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let misp = FakeMisp::start(
        &dir.path().join("misp"),
        &misp_attributes(&[(A1, "evil.example", E1)]),
        0,
    );
    let five = || {
        confirmation(
            "r",
            (0..5).map(|i| hit(T0 + i, "evil.example", A1)).collect(),
        )
    };
    let cfg = config(&misp_destination(&misp.url(), &misp.key_file(), ""));
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox.record(&five()).expect("record");
    assert_eq!(outbox.send_now().expect("send").delivered, 1);
    assert_eq!(misp.sightings().len(), 5, "count 5: five sightings");

    // A cap of 3.
    let capped = config(&misp_destination(
        &misp.url(),
        &misp.key_file(),
        "misp_max_sightings_per_row = 3",
    ));
    let outbox = Outbox::in_memory(&capped).expect("outbox");
    let mut later = five();
    for o in &mut later.observations {
        o.time += chrono::Duration::days(1);
    }
    outbox.record(&later).expect("record");
    assert_eq!(outbox.send_now().expect("send").delivered, 1);
    assert_eq!(misp.sightings().len(), 8, "capped at 3");

    // The first request lands but its answer is lost: the check counts one, the
    // retry sends the four missing.
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    let mut third = five();
    for o in &mut third.observations {
        o.time += chrono::Duration::days(2);
    }
    outbox.record(&third).expect("record");
    misp.control("fail_after_record", Some(1), 0.0);
    assert_eq!(outbox.send_now().expect("send").retrying, 1);
    let r = outbox.deliver_due(in_hours(1)).expect("deliver");
    assert_eq!(r.delivered, 1, "{r:?}");
    let day3 = (T0 + 4 + 2 * 86_400).to_string();
    let n = misp
        .sightings()
        .iter()
        .filter(|s| s["date_sighting"] == day3.as_str())
        .count();
    assert_eq!(n, 5, "five, not six");
}

#[test]
fn requests_are_paced_per_destination() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (attrs, uuids) = many_attributes(6);
    let misp = FakeMisp::start(&dir.path().join("misp"), &attrs, 0);
    let cfg = config(&misp_destination(
        &misp.url(),
        &misp.key_file(),
        "max_requests_per_minute = 120",
    ));
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    let hits = uuids
        .iter()
        .enumerate()
        .map(|(i, u)| hit(T0, &format!("evil-{i}.example"), u))
        .collect();
    outbox.record(&confirmation("r", hits)).expect("record");
    let started = Instant::now();
    assert_eq!(outbox.send_now().expect("send").delivered, 6);
    let elapsed = started.elapsed().as_secs_f64();
    let requests = misp.requests();
    assert_eq!(requests.len(), 6);
    // 120 a minute: at most one every half second.
    let allowed = (elapsed * 120.0 / 60.0).floor() as usize + 1;
    assert!(
        requests.len() <= allowed,
        "{} requests in {elapsed:.2} s (at most {allowed})",
        requests.len()
    );
    // The pacer gives each request a slot at least half a second after the last
    // one's: six requests take at least 2.5 s (unpaced, they take a few ms here).
    assert!(elapsed >= 2.5, "six requests in {elapsed:.2} s: not paced");
    // At the server, the stamps are when the (loaded) fake server got round to each
    // request, so one can lag its slot and the next seem close behind it: checked
    // over the whole run, not pairwise (pairwise failed once under load).
    let at: Vec<f64> = requests
        .iter()
        .map(|r| r["at"].as_f64().unwrap_or(0.0))
        .collect();
    let span = at.last().copied().unwrap_or(0.0) - at.first().copied().unwrap_or(0.0);
    assert!(span >= 2.0, "spread over {span:.2} s at the server: {at:?}");
}

#[test]
fn taxii_rows_go_in_one_envelope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = Medallion::start(&dir.path().join("medallion"));
    let pw = dir.path().join("taxii.password");
    std::fs::write(&pw, TAXII_PASSWORD).expect("pw");
    let cfg = config(&format!(
        r#"
source_name = "ACME SOC"
[[destinations]]
name = "cert"
intel_sources = ["cert-feed"]
approval = "auto"
batch_size = 4
[destinations.transport]
type = "taxii"
api_root = "{}"
collection_id = "{}"
username = "{TAXII_USER}"
password_file = "{}"
"#,
        m.api_root,
        m.collection,
        pw.display()
    ));
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    let hits = (0..10)
        .map(|i| {
            obs(
                T0,
                &format!("cert-{i}.example"),
                Kind::Domain,
                vec![prov(
                    "cert-feed",
                    None,
                    Some(&format!(
                        "indicator--5d0092c5-5f74-4287-9642-{:012x}",
                        i + 1
                    )),
                )],
            )
        })
        .collect();
    outbox.record(&confirmation("r", hits)).expect("record");
    let r = outbox.send_now().expect("send");
    assert_eq!(r.delivered, 10, "{r:?}");
    let sightings = m
        .objects()
        .into_iter()
        .filter(|o| o["type"] == "sighting")
        .count();
    assert_eq!(sightings, 10);
    let audit = outbox.audit().expect("audit");
    let pushes: Vec<usize> = audit.iter().map(|a| a.sighting_ids.len()).collect();
    assert_eq!(pushes, vec![4, 4, 2], "batches of batch_size rows");
    let stats = outbox.stats().expect("stats");
    let d = &stats.deliveries[0];
    assert_eq!((d.batches, d.batched_rows), (3, 10));
}

#[test]
fn the_audit_log_holds_every_body_sent_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (attrs, uuids) = many_attributes(3);
    let misp = FakeMisp::start(&dir.path().join("misp"), &attrs, 0);
    let text = misp_destination(&misp.url(), &misp.key_file(), "")
        .replace("approval = \"auto\"", "approval = \"manual\"");
    let state = dir.path().join("state");
    let outbox = Outbox::open(&state, &config(&text)).expect("outbox");
    let hits = uuids
        .iter()
        .enumerate()
        .map(|(i, u)| hit(T0 + i as i64, &format!("evil-{i}.example"), u))
        .collect();
    outbox.record(&confirmation("r", hits)).expect("record");
    outbox.approve_by(Selection::All, "alice").expect("approve");
    // One lands with its answer lost, so a check (a search) is audited too.
    misp.control("fail_after_record", Some(1), 0.0);
    outbox.send_now().expect("send");
    outbox.deliver_due(in_hours(1)).expect("deliver");
    assert_eq!(misp.sightings().len(), 3);
    let audit = outbox.audit().expect("audit");
    let sent: Vec<String> = misp
        .requests()
        .iter()
        .map(|r| r["body"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(!sent.is_empty());
    for body in &sent {
        assert!(
            audit.iter().any(|a| &a.body == body),
            "{body} missing from the audit log"
        );
    }
    assert_eq!(audit.len(), sent.len(), "one record per request");
    assert!(audit.iter().all(|a| a.destination == "circl"
        && a.approved_by.as_deref() == Some("alice")
        && !a.sighting_ids.is_empty()));
    assert!(audit.iter().any(|a| a.status == Some(500)));
    // Through the CLI, with no secret in it.
    let cfg_file = dir.path().join("tripline.toml");
    let share_section = text
        .replace("[[destinations]]", "[[share.destinations]]")
        .replace("[destinations.transport]", "[share.destinations.transport]");
    std::fs::write(
        &cfg_file,
        format!(
            "[intel]\npaths = [\"fixtures/intel/stix\"]\n[state]\ndir = \"{}\"\n[share]\n{share_section}",
            state.display()
        ),
    )
    .expect("config");
    let out = tripline(&[
        "sightings",
        "audit",
        "--json",
        "--config",
        cfg_file.to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), audit.len());
    assert_eq!(lines[0]["body"], audit[0].body.as_str());
    assert!(!stdout.contains(&misp.key), "the API key never appears");

    // Retention: records older than audit_retention_days go at the next pass.
    let db = rusqlite::Connection::open(state.join("sightings.sqlite")).expect("db");
    db.execute("UPDATE audit SET at = at - 2 * 86400000 WHERE id = 1", [])
        .expect("age one record");
    drop(db);
    let short = config(&format!("audit_retention_days = 1\n{text}"));
    let outbox = Outbox::open(&state, &short).expect("reopen");
    outbox.deliver_due(in_hours(2)).expect("pass");
    let kept = outbox.audit().expect("audit");
    assert_eq!(kept.len(), audit.len() - 1);
    assert!(kept.iter().all(|a| a.id != 1));
}
