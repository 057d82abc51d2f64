//! A real TAXII 2.1 server (medallion, started per test on a loopback port): sightings
//! pushed, read back, pushed again without duplicates, and valid STIX 2.1. Then the
//! privacy test: observations full of internal names, confirmed and shared in every
//! format, and none of those names anywhere.

use std::path::Path;

use crate::util::*;
use chrono::Utc;
use serde_json::{json, Value};
use tripline::intel::Kind;
use tripline::share::transport::taxii::TaxiiTransport;
use tripline::share::transport::{Outgoing, Transport};
use tripline::share::{ExportFormat, Outbox, Secret, State};

const A1: &str = "6f1a0c3e-2d4b-4c5a-9e8f-0a1b2c3d4e5f";
const A2: &str = "7a2b1d4f-3e5c-4d6b-8f9a-1b2c3d4e5f60";
const A3: &str = "8b3c2e5a-4f6d-4e7c-9a0b-2c3d4e5f6071";
const E1: &str = "11111111-2222-4333-8444-555555555555";
const E2: &str = "22222222-3333-4444-8555-666666666666";

fn taxii_destination(name: &str, m: &Medallion, password_file: &Path, extra: &str) -> String {
    format!(
        r#"
[[destinations]]
name = "{name}"
approval = "auto"
{extra}
[destinations.transport]
type = "taxii"
api_root = "{}"
collection_id = "{}"
username = "{TAXII_USER}"
password_file = "{}"
"#,
        m.api_root,
        m.collection,
        password_file.display()
    )
}

fn password_file(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("taxii.password");
    std::fs::write(&p, format!("{TAXII_PASSWORD}\n")).expect("password");
    p
}

#[test]
fn sightings_pushed_to_taxii_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = Medallion::start(&dir.path().join("medallion"));
    let text = format!(
        "source_name = \"ACME SOC\"\n{}",
        taxii_destination("cert", &m, &password_file(dir.path()), "")
    );
    let cfg = config(&text);
    let outbox = Outbox::open(&dir.path().join("state"), &cfg).expect("outbox");
    let stix_id = format!("indicator--{A1}");
    outbox
        .record(&confirmation(
            "r",
            vec![
                obs(
                    T0,
                    "evil.example",
                    Kind::Domain,
                    vec![prov("cert", Some("bundle--x"), Some(&stix_id))],
                ),
                obs(
                    T0 + 30,
                    "evil.example",
                    Kind::Domain,
                    vec![prov("cert", Some("bundle--x"), Some(&stix_id))],
                ),
                obs(
                    T0,
                    "198.51.100.7",
                    Kind::Ipv4,
                    vec![prov("cert", None, None)],
                ),
            ],
        ))
        .expect("record");
    let r = outbox.deliver_due(Utc::now()).expect("deliver");
    assert_eq!(r.delivered, 2, "{r:?}");

    let objects = m.objects();
    let sightings: Vec<&Value> = objects.iter().filter(|o| o["type"] == "sighting").collect();
    assert_eq!(sightings.len(), 2, "{objects:#?}");
    let ours = sightings
        .iter()
        .find(|s| s["sighting_of_ref"] == stix_id.as_str())
        .expect("sighting of the STIX indicator");
    assert_eq!(ours["count"], 2);
    assert_eq!(ours["first_seen"], "2024-05-01T00:00:00.000Z");
    assert_eq!(ours["last_seen"], "2024-05-01T00:00:30.000Z");
    let identity = objects
        .iter()
        .find(|o| o["type"] == "identity")
        .expect("our identity");
    assert_eq!(identity["name"], "ACME SOC");
    assert_eq!(ours["where_sighted_refs"][0], identity["id"]);
    assert_eq!(
        objects.iter().filter(|o| o["type"] == "identity").count(),
        1,
        "one identity version"
    );

    // What the server holds is valid STIX 2.1.
    let bundle = json!({"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": objects});
    let file = dir.path().join("read-back.json");
    std::fs::write(&file, bundle.to_string()).expect("write");
    stix_validate(&file);

    // A retried push (same row) is the same object version: stored once.
    let entry = &outbox.list(Some(State::Sent)).expect("list")[0];
    let transport = TaxiiTransport::new(
        "cert",
        &m.api_root,
        &m.collection,
        Some((TAXII_USER.to_string(), Secret::new(TAXII_PASSWORD))),
        10,
        None,
    )
    .expect("transport");
    let out = Outgoing {
        sighting: &entry.sighting,
        key: &entry.key,
        created: entry.created,
    };
    assert!(transport.is_delivered(&out).expect("check"));
    transport.deliver(&out).expect("push again");
    assert_eq!(m.objects().len(), objects.len());
}

#[test]
fn wrong_taxii_password_is_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = Medallion::start(&dir.path().join("medallion"));
    let pw = dir.path().join("bad.password");
    std::fs::write(&pw, "not-the-password").expect("pw");
    let cfg = config(&taxii_destination("cert", &m, &pw, "anonymise = true"));
    let outbox = Outbox::in_memory(&cfg).expect("outbox");
    outbox
        .record(&confirmation(
            "r",
            vec![obs(
                T0,
                "evil.example",
                Kind::Domain,
                vec![prov("cert", None, Some(&format!("indicator--{A1}")))],
            )],
        ))
        .expect("record");
    assert_eq!(outbox.send_now().expect("send").retrying, 1);
    let row = &outbox.list(None).expect("list")[0];
    assert_eq!(row.state, State::Queued);
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 401")),
        "{row:?}"
    );
    assert!(!format!("{row:?}").contains("not-the-password"));
    std::fs::write(&pw, TAXII_PASSWORD).expect("pw");
    assert_eq!(outbox.send_now().expect("send").delivered, 1);
    let objects = m.objects();
    assert_eq!(objects.len(), 1, "anonymous: no identity: {objects:?}");
    assert!(
        objects[0].get("where_sighted_refs").is_none()
            && objects[0].get("created_by_ref").is_none()
    );
}

#[test]
fn nothing_from_the_log_leaves_in_any_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = Medallion::start(&dir.path().join("medallion"));
    let misp = FakeMisp::start(
        &dir.path().join("misp"),
        &misp_attributes(&[
            (A1, "evil.example", E1),
            (A2, "mallory@evil.example", E1),
            (A3, "bad.example", E1),
        ]),
        0,
    );
    let archive = dir.path().join("archive");
    let text = format!(
        r#"
source_name = "ACME SOC"
[[destinations]]
name = "circl"
approval = "auto"
[destinations.transport]
type = "misp"
url = "{}"
api_key_file = "{}"
{}
[[destinations]]
name = "archive"
intel_sources = ["circl", "cert"]
approval = "auto"
[destinations.transport]
type = "stix_dir"
path = "{}"
"#,
        misp.url(),
        misp.key_file().display(),
        taxii_destination("cert", &m, &password_file(dir.path()), ""),
        archive.display()
    );
    let cfg = config(&text);
    let state = dir.path().join("state");
    let outbox = Outbox::open(&state, &cfg).expect("outbox");
    let both = |attr: Option<&str>| {
        vec![
            prov("circl", Some(E1), attr),
            prov(
                "cert",
                Some(E2),
                attr.map(|a| format!("indicator--{a}")).as_deref(),
            ),
        ]
    };
    let c = confirmation(
        "privacy",
        vec![
            obs(T0, "evil.example", Kind::Domain, both(Some(A1))),
            obs(T0 + 1, "mallory@evil.example", Kind::Email, both(Some(A2))),
            obs(T0 + 2, "bad.example", Kind::Domain, both(None)),
            obs(
                T0 + 3,
                "198.51.100.7",
                Kind::Ipv4,
                vec![prov("cert", None, None)],
            ),
            obs(
                T0 + 4,
                "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
                Kind::Sha256,
                vec![prov("cert", Some(E2), None)],
            ),
        ],
    );
    let recorded = outbox.record(&c).expect("record");
    assert!(recorded.created >= 10, "{recorded:?}");
    outbox
        .queue_false_positive("bad.example", Kind::Domain, Some("benign CDN"), &both(None))
        .expect("false positive");

    // What would be shared, before anything is sent.
    let misp_export = outbox
        .export(ExportFormat::Misp, None)
        .expect("misp export");
    let stix_export = outbox
        .export(ExportFormat::Stix, None)
        .expect("stix export");
    assert_no_secrets("MISP export", &misp_export);
    assert_no_secrets("STIX export", &stix_export);
    let stix_file = dir.path().join("export.json");
    std::fs::write(&stix_file, &stix_export).expect("write");
    stix_validate(&stix_file);

    let r = outbox.send_now().expect("send");
    assert_eq!((r.failed, r.retrying, r.deferred), (0, 0, 0), "{r:?}");
    assert!(outbox
        .list(None)
        .expect("list")
        .iter()
        .all(|e| e.state == State::Sent));

    // What arrived: MISP requests (raw bodies), the TAXII collection, the bundles.
    let misp_state = misp.state();
    assert_no_secrets("what MISP received", &misp_state.to_string());
    assert!(
        misp_state.to_string().contains("bad.example"),
        "a by-value sighting carries its value"
    );
    assert_no_secrets(
        "the TAXII collection",
        &Value::Array(m.objects()).to_string(),
    );
    let mut files = 0;
    for f in std::fs::read_dir(&archive).expect("archive") {
        let f = f.expect("entry").path();
        assert_no_secrets(
            &f.display().to_string(),
            &std::fs::read_to_string(&f).expect("read"),
        );
        files += 1;
    }
    assert!(files >= 5, "{files}");
    // The outbox itself: every byte of the database, every row as listed.
    drop(outbox);
    assert_no_secrets("the outbox database", &outbox_bytes(&state));
    let outbox = Outbox::open(&state, &cfg).expect("reopen");
    assert_no_secrets(
        "outbox rows",
        &format!("{:?}", outbox.list(None).expect("list")),
    );
    assert_no_secrets("stats", &format!("{:?}", outbox.stats().expect("stats")));
}
