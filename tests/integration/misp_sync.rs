//! The MISP REST intel fetcher ([`MispRestFetcher`]) against a stand-in MISP
//! (`util/misp_rest_server.py`) serving real MISP events from `fixtures/misp-sync/`,
//! called through the library as the sync runner calls it; the cache it writes is then
//! loaded with the ordinary intel loader (`NAME=PATH`) and its provenance checked.
//! Every test also asserts that no request broke MISP's documented parameters (the
//! stand-in's violations).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tripline::intel::load::{load_intel, IntelSpec, LoadOptions};
use tripline::intel::sync::misp_rest::MispRestFetcher;
use tripline::intel::sync::{
    Credentials, Fetcher, PassContext, PassReport, SourceConfig, SourceKind, SyncError,
};
use tripline::intel::IntelStore;
use tripline::net::{HttpClient, Secret};

use crate::util::{root, support_dir, t};

const KEY: &str = "misp-rest-stand-in-key-0123456789abcdef";
/// The events served from the start (234 attributes, objects' included).
const EVENTS: &[&str] = &[
    "57c4445b-c548-4654-af0b-4be3950d210f.json",
    "existing_event.json",
    "to_delete3.json",
    "misp_event.json",
    "sighting_1.json",
];
/// Added later with its own old timestamps (sync from another instance).
const BACKDATED: &str = "27dceb7d-92bd-4848-bfbd-8570e86de7de.json";
const NOW: i64 = 1_760_000_000;

/// The stand-in MISP, killed on drop.
struct MispRest {
    child: Child,
    port: u16,
}

impl MispRest {
    fn start(events: &[&str]) -> MispRest {
        let dir = root().join("fixtures/misp-sync");
        let files: Vec<PathBuf> = events.iter().map(|e| dir.join(e)).collect();
        MispRest::spawn(&[], &files)
    }

    fn spawn(extra: &[&str], files: &[PathBuf]) -> MispRest {
        let mut child = Command::new("python3")
            .arg(support_dir().join("misp_rest_server.py"))
            .args(["--key", KEY])
            .args(extra)
            .args(files)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start misp_rest_server.py (python3)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("stand-in port line");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("stand-in said {line:?}"));
        MispRest { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn control(&self, body: Value) {
        ureq::post(&format!("{}/_control", self.url()))
            .send_string(&body.to_string())
            .expect("control the stand-in");
    }

    fn state(&self) -> Value {
        let body = ureq::get(&format!("{}/_state", self.url()))
            .call()
            .expect("stand-in state")
            .into_string()
            .expect("state body");
        serde_json::from_str(&body).expect("state json")
    }

    fn requests(&self) -> Vec<Value> {
        self.state()["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn assert_no_violations(&self) {
        let state = self.state();
        assert_eq!(state["violations"], json!([]), "requests broke MISP's API");
    }

    /// Attribute UUID → event UUID of every attribute not deleted.
    fn live_attributes(&self) -> BTreeMap<String, String> {
        self.state()["attributes"]
            .as_array()
            .expect("attributes")
            .iter()
            .filter(|a| a["deleted"] == json!(false))
            .map(|a| {
                (
                    a["uuid"].as_str().expect("uuid").to_string(),
                    a["event_uuid"].as_str().expect("event uuid").to_string(),
                )
            })
            .collect()
    }

    fn source(&self, options: &str) -> SourceConfig {
        SourceConfig {
            name: "isac".into(),
            kind: SourceKind::Misp,
            url: self.url(),
            collection: None,
            credentials: Credentials::ApiKey(Secret::new(KEY)),
            interval_secs: 300,
            timeout_secs: 30,
            ca_file: None,
            proxy: None,
            options: toml::from_str(options).expect("options toml"),
        }
    }
}

impl Drop for MispRest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A source's state directory, and the cursor as the runner keeps it (saved only
/// after a pass that succeeded).
struct Cache {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    cursor: Value,
}

impl Cache {
    fn new() -> Cache {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("intel/isac/data");
        std::fs::create_dir_all(&data).expect("data dir");
        Cache {
            _tmp: tmp,
            data,
            cursor: Value::Null,
        }
    }

    fn pass(&mut self, source: &SourceConfig, now: i64) -> Result<PassReport, SyncError> {
        let client = HttpClient::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let mut fetcher = MispRestFetcher::new();
        fetcher.check_options(source)?;
        let mut cursor = self.cursor.clone();
        let mut ctx = PassContext {
            source,
            client: &client,
            data_dir: &self.data,
            cursor: &mut cursor,
            now: t(now),
        };
        let report = fetcher.pass(&mut ctx)?;
        self.cursor = cursor;
        Ok(report)
    }

    /// Every file of the data directory and its bytes.
    fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(&self.data)
            .expect("read data dir")
            .map(|e| {
                let p = e.expect("entry").path();
                let name = p.file_name().expect("name").to_string_lossy().into_owned();
                (name, std::fs::read(&p).expect("read"))
            })
            .collect()
    }

    /// Attribute UUID → event UUID of every attribute in the cached event files.
    fn cached_attributes(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, bytes) in self.snapshot() {
            if name == "manifest.json" {
                continue;
            }
            let v: Value = serde_json::from_slice(&bytes).expect("event json");
            let ev = v["Event"]["uuid"].as_str().expect("event uuid").to_string();
            assert_eq!(format!("{ev}.json"), name);
            for a in v["Event"]["Attribute"].as_array().expect("attributes") {
                let prev = out.insert(a["uuid"].as_str().expect("uuid").into(), ev.clone());
                assert!(prev.is_none(), "attribute {} cached twice", a["uuid"]);
                assert!(a.get("Event").is_none() && a.get("event_uuid").is_none());
            }
        }
        out
    }
}

/// Loads the cache as `isac=<data dir>`, as the runner does; no file may fail.
fn load(data: &Path) -> IntelStore {
    let spec: IntelSpec = format!("isac={}", data.display()).parse().expect("spec");
    let (store, errors) = load_intel(&[spec], &LoadOptions::default()).expect("load cache");
    assert!(errors.is_empty(), "load errors: {errors:?}");
    store
}

/// One provenance of a loaded indicator, as alerts and sightings will use it.
#[derive(Debug, PartialEq)]
struct Prov {
    value: String,
    source: String,
    event_uuid: Option<String>,
    tags: Vec<String>,
    event_tags: Vec<String>,
    tlp: Option<String>,
    distribution: Option<u8>,
    event_distribution: Option<u8>,
}

/// Attribute UUID → its provenances in the loaded store.
fn provenances(store: &IntelStore) -> BTreeMap<String, Vec<Prov>> {
    let mut out: BTreeMap<String, Vec<Prov>> = BTreeMap::new();
    for &(id, meta) in &store.links {
        let m = &store.metas[meta as usize];
        let ev = m.event.map(|e| &store.events[e as usize]);
        let Some(uuid) = &m.attr_uuid else { continue };
        out.entry(uuid.to_string()).or_default().push(Prov {
            value: store.value(id).to_string(),
            source: store.sources[m.source as usize].name.clone(),
            event_uuid: ev.and_then(|e| e.uuid.clone()),
            tags: store.tags(m.tags).map(str::to_string).collect(),
            event_tags: ev.map(|e| e.tags.clone()).unwrap_or_default(),
            tlp: m
                .tlp
                .or(ev.and_then(|e| e.tlp))
                .map(|t| format!("{t:?}").to_lowercase()),
            distribution: m.distribution,
            event_distribution: ev.and_then(|e| e.distribution),
        });
    }
    out
}

fn restsearch_bodies(server: &MispRest) -> Vec<Value> {
    server
        .requests()
        .into_iter()
        .filter(|r| r["path"] == "/attributes/restSearch")
        .map(|r| r["body"].clone())
        .collect()
}

#[test]
fn first_pull_pages_through_everything_and_keeps_provenance() {
    let server = MispRest::start(EVENTS);
    let source = server.source("page_size = 50");
    let mut cache = Cache::new();
    let report = cache.pass(&source, NOW).expect("first pass");
    server.assert_no_violations();

    // 234 attributes in pages of 50: five pages, the last one short. X-Result-Count
    // (half the truth) was not believed.
    let bodies = restsearch_bodies(&server);
    let pages: Vec<i64> = bodies.iter().map(|b| b["page"].as_i64().unwrap()).collect();
    assert_eq!(pages, [1, 2, 3, 4, 5]);
    for b in &bodies {
        assert_eq!(b["limit"], 50);
        assert_eq!(b["deleted"], json!([0, 1]));
        assert_eq!(b["includeEventUuid"], true);
        assert_eq!(b["includeEventTags"], true);
        assert!(
            b.get("attribute_timestamp").is_none(),
            "a first pull is full"
        );
        assert!(b.get("timestamp").is_none());
    }
    assert!(server
        .requests()
        .iter()
        .any(|r| r["path"] == "/events/index" && r["body"] == json!({"minimal": true})));
    assert_eq!(report.upserted, 234);
    assert_eq!(report.requests, 6);
    assert!(report.changed);

    // The cache holds exactly the server's attributes, each under its event.
    assert_eq!(cache.cached_attributes(), server.live_attributes());
    assert_eq!(cache.cursor["watermark"], 1_533_306_089);
    assert_eq!(cache.cursor["last_reconcile"], NOW);
    assert_eq!(cache.cursor["events"].as_object().unwrap().len(), 5);

    // Loaded, the indicators carry their provenance: event and attribute UUIDs, tags
    // (the event's inherited ones on the event), TLP and distribution.
    let store = load(&cache.data);
    let provs = provenances(&store);
    let md5 = &provs["57c4448b-454c-4d17-90d1-4d2f950d210f"];
    assert_eq!(
        md5,
        &[Prov {
            value: "0749bae92ca336a02c83d126e04ec628".into(),
            source: "isac".into(),
            event_uuid: Some("57c4445b-c548-4654-af0b-4be3950d210f".into()),
            tags: vec![],
            event_tags: vec![
                "tlp:white".into(),
                "circl:incident-classification=\"malware\"".into(),
                "ms-caro-malware:malware-type=\"Ransom\"".into(),
                "malware_classification:malware-category=\"Ransomware\"".into(),
            ],
            tlp: Some("clear".into()),
            distribution: Some(5),
            event_distribution: Some(3),
        }]
    );
    let domain = &provs["5a3ce6ae-3b00-420a-82fd-45fb950d210f"][0];
    assert_eq!(domain.value, "webviewres.net");
    assert_eq!(
        domain.event_uuid.as_deref(),
        Some("5a3c2fcd-8328-42bb-a95e-4f4402de0b81")
    );
    assert_eq!(domain.event_distribution, Some(3));
    // Every loaded attribute sits under the event the server has it in.
    let live = server.live_attributes();
    assert!(provs.len() > 100, "{} attributes loaded", provs.len());
    for (uuid, ps) in &provs {
        for p in ps {
            assert_eq!(p.event_uuid.as_ref(), live.get(uuid), "{uuid}");
        }
    }
}

#[test]
fn incremental_pull_sees_a_changed_and_a_deleted_attribute() {
    let server = MispRest::start(EVENTS);
    let source = server.source("page_size = 50\noverlap_secs = 600");
    let mut cache = Cache::new();
    cache.pass(&source, NOW).expect("first pass");
    let watermark = cache.cursor["watermark"].as_i64().unwrap();
    let before = server.requests().len();

    let changed = "5a3ce6ae-3b00-420a-82fd-45fb950d210f"; // webviewres.net
    let deleted = "57c4448b-454c-4d17-90d1-4d2f950d210f"; // an md5
    server.control(json!({"op": "edit", "uuid": changed,
        "set": {"value": "webviewres-changed.net"}, "timestamp": NOW - 100}));
    server.control(json!({"op": "delete", "uuid": deleted, "timestamp": NOW - 50}));

    let report = cache.pass(&source, NOW + 300).expect("incremental pass");
    server.assert_no_violations();
    let new: Vec<Value> = server.requests()[before..].to_vec();
    assert_eq!(new.len(), 1, "one page, no reconcile yet: {new:?}");
    assert_eq!(new[0]["path"], "/attributes/restSearch");
    assert_eq!(new[0]["body"]["attribute_timestamp"], watermark - 600);
    assert_eq!((report.upserted, report.deleted), (1, 1));
    assert_eq!(cache.cursor["watermark"], NOW - 50);

    let provs = provenances(&load(&cache.data));
    assert!(
        !provs.contains_key(deleted),
        "deleted attribute still loaded"
    );
    let values: Vec<&str> = provs[changed].iter().map(|p| p.value.as_str()).collect();
    assert_eq!(values, ["webviewres-changed.net"]);
    assert_eq!(cache.cached_attributes(), server.live_attributes());

    // The deletion arrives again inside the overlap window: nothing more happens.
    let again = cache.pass(&source, NOW + 600).expect("again");
    assert_eq!(
        (again.upserted, again.deleted, again.changed),
        (0, 0, false)
    );
}

#[test]
fn backdated_event_is_found_by_reconcile_and_not_by_the_poll() {
    let server = MispRest::start(EVENTS);
    let source = server.source("page_size = 50\nreconcile_secs = 3600");
    let mut cache = Cache::new();
    cache.pass(&source, NOW).expect("first pass");
    // A recent edit, polled, moves the watermark far past the event that arrives next.
    server.control(
        json!({"op": "edit", "uuid": "5a3ce6ae-3b00-420a-82fd-45fb950d210f",
        "set": {}, "timestamp": NOW - 10}),
    );
    cache.pass(&source, NOW + 30).expect("poll the edit");
    assert_eq!(cache.cursor["watermark"], NOW - 10);
    let event: Value = serde_json::from_slice(
        &std::fs::read(root().join("fixtures/misp-sync").join(BACKDATED)).unwrap(),
    )
    .unwrap();
    server.control(json!({"op": "add_event", "event": event}));
    let backdated_attr = "848b3fc8-b8fc-46e6-8fbe-8aeb403bf4b0"; // 62.171.178.147

    // The poll alone (reconcile not due) does not see it: its timestamps are old.
    cache.pass(&source, NOW + 60).expect("poll");
    assert!(!provenances(&load(&cache.data)).contains_key(backdated_attr));

    // The reconcile does: its event is new in the index.
    let before = server.requests().len();
    let report = cache.pass(&source, NOW + 3600).expect("reconcile");
    server.assert_no_violations();
    let new = server.requests()[before..].to_vec();
    assert_eq!(new[0]["path"], "/events/index");
    let by_event = |uuid: &str| -> Vec<Value> {
        new.iter()
            .filter(|r| r["body"]["eventid"] == uuid)
            .map(|r| r["body"].clone())
            .collect()
    };
    let backdated = by_event("27dceb7d-92bd-4848-bfbd-8570e86de7de");
    assert_eq!(backdated.len(), 3, "121 attributes in pages of 50");
    for b in &backdated {
        assert!(b.get("attribute_timestamp").is_none());
    }
    // The event edited above has a new timestamp too, and is fetched whole again (122
    // attributes, nothing new in them).
    assert_eq!(by_event("5a3c2fcd-8328-42bb-a95e-4f4402de0b81").len(), 3);
    assert_eq!(report.upserted, 121);
    let provs = provenances(&load(&cache.data));
    let p = &provs[backdated_attr][0];
    assert_eq!(p.value, "62.171.178.147");
    assert_eq!(
        p.event_uuid.as_deref(),
        Some("27dceb7d-92bd-4848-bfbd-8570e86de7de")
    );
    assert_eq!(p.tlp.as_deref(), Some("clear"));
    assert_eq!(cache.cached_attributes(), server.live_attributes());

    // An event deleted at the server leaves at the next reconcile.
    server.control(json!({"op": "remove_event", "uuid": "27dceb7d-92bd-4848-bfbd-8570e86de7de"}));
    let report = cache
        .pass(&source, NOW + 7200)
        .expect("reconcile after removal");
    assert_eq!(report.deleted, 121);
    assert!(!cache
        .data
        .join("27dceb7d-92bd-4848-bfbd-8570e86de7de.json")
        .exists());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(cache.data.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest
        .get("27dceb7d-92bd-4848-bfbd-8570e86de7de")
        .is_none());
    assert_eq!(cache.cached_attributes(), server.live_attributes());
    server.assert_no_violations();
}

#[test]
fn a_failed_page_fails_the_pass_and_keeps_the_last_good_data() {
    let server = MispRest::start(EVENTS);
    let source = server.source("page_size = 50");

    // A first pull that fails on page 2 writes nothing at all.
    let mut fresh = Cache::new();
    server.control(
        json!({"op": "fail", "path": "/attributes/restSearch", "page": 2,
        "status": 500, "times": 1}),
    );
    let err = fresh.pass(&source, NOW).expect_err("page 2 failed");
    assert!(matches!(err, SyncError::Http { .. }), "{err}");
    assert!(
        fresh.snapshot().is_empty(),
        "a failed first pull wrote files"
    );
    assert_eq!(fresh.cursor, Value::Null);

    let mut cache = Cache::new();
    cache.pass(&source, NOW).expect("first pass");
    let good = cache.snapshot();
    let cursor = cache.cursor.clone();
    // Enough changes for two pages, so that page 2 is asked for.
    let changed: Vec<String> = server.live_attributes().into_keys().take(60).collect();
    for (i, uuid) in changed.iter().enumerate() {
        server.control(
            json!({"op": "edit", "uuid": uuid, "set": {"comment": "edited"},
            "timestamp": NOW - 1000 + i as i64}),
        );
    }
    server.control(
        json!({"op": "fail", "path": "/attributes/restSearch", "page": 2,
        "status": 500, "times": 1}),
    );
    let err = cache.pass(&source, NOW + 60).expect_err("page 2 failed");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("500"), "{shown}");
    assert!(
        !shown.contains(KEY),
        "the API key leaked into an error: {shown}"
    );
    assert_eq!(
        cache.snapshot(),
        good,
        "a failed pass changed the data directory"
    );
    assert_eq!(cache.cursor, cursor, "a failed pass moved the cursor");
    assert!(provenances(&load(&cache.data)).len() > 100);

    // The retry applies it all.
    let report = cache.pass(&source, NOW + 120).expect("retry");
    assert_eq!(report.upserted, 60);
    server.assert_no_violations();

    // A bad answer is a protocol error naming the URL and page.
    let wrong_key = SourceConfig {
        credentials: Credentials::ApiKey(Secret::new("not-the-key")),
        ..source.clone()
    };
    let err = Cache::new().pass(&wrong_key, NOW).expect_err("403");
    assert!(err.to_string().contains("403"), "{err}");
    assert!(!err.to_string().contains("not-the-key"));
}

#[test]
fn a_rerun_adds_nothing_and_rewrites_nothing() {
    let server = MispRest::start(EVENTS);
    let source = server.source("page_size = 100\nreconcile_secs = 0");
    let mut cache = Cache::new();
    cache.pass(&source, NOW).expect("first pass");
    let first = cache.snapshot();
    let mtimes = |c: &Cache| -> Vec<std::time::SystemTime> {
        std::fs::read_dir(&c.data)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
            .collect()
    };
    let before = mtimes(&cache);

    // Again with the cursor (a reconcile every pass), and again as after a lost
    // cursor (a full pull over the existing cache): nothing changes.
    let again = cache.pass(&source, NOW + 60).expect("rerun");
    assert_eq!(
        (again.upserted, again.deleted, again.changed),
        (0, 0, false)
    );
    cache.cursor = Value::Null;
    let full = cache.pass(&source, NOW + 120).expect("full rerun");
    assert_eq!((full.upserted, full.deleted, full.changed), (0, 0, false));
    assert_eq!(cache.snapshot(), first);
    assert_eq!(mtimes(&cache), before);
    server.assert_no_violations();
}

#[test]
fn options_are_checked_and_filters_are_sent() {
    let server = MispRest::start(EVENTS);
    let fetcher = MispRestFetcher::new();
    for (options, key) in [
        ("pagesize = 10", "pagesize"),
        ("page_size = 0", "page_size"),
        ("page_size = 50001", "page_size"),
        ("overlap_secs = -1", "overlap_secs"),
        ("reconcile_secs = \"daily\"", "reconcile_secs"),
        ("to_ids = 1", "to_ids"),
        ("tags = \"tlp:white\"", "tags"),
        ("types = [\"\"]", "types"),
    ] {
        match fetcher.check_options(&server.source(options)) {
            Err(SyncError::Config { key: k, .. }) => assert_eq!(k, key, "{options}"),
            other => panic!("{options}: {other:?}"),
        }
    }
    let no_key = SourceConfig {
        credentials: Credentials::None,
        ..server.source("")
    };
    assert!(fetcher.check_options(&no_key).is_err());

    let source = server.source(
        "to_ids = true\npublished = true\ntags = [\"tlp:white\"]\ntypes = [\"md5\", \"sha256\"]\ninclude_decay_score = true",
    );
    let mut cache = Cache::new();
    cache.pass(&source, NOW).expect("filtered pass");
    server.assert_no_violations();
    let body = &restsearch_bodies(&server)[0];
    assert_eq!(body["to_ids"], 1);
    assert_eq!(body["published"], true);
    assert_eq!(body["tags"], json!(["tlp:white"]));
    assert_eq!(body["type"], json!(["md5", "sha256"]));
    assert_eq!(body["includeDecayScore"], true);
    let index = server
        .requests()
        .into_iter()
        .find(|r| r["path"] == "/events/index")
        .unwrap();
    assert_eq!(index["body"], json!({"minimal": true, "published": true}));
    // Only the to_ids md5 and sha256 of published tlp:white events: two attributes of
    // the Xorist event; the decay score is kept.
    let cached = cache.cached_attributes();
    assert_eq!(
        cached.keys().collect::<Vec<_>>(),
        [
            "57c4448b-3fa4-4d65-9ccc-4afa950d210f",
            "57c4448b-454c-4d17-90d1-4d2f950d210f"
        ]
    );
    for (name, bytes) in cache.snapshot() {
        if name == "manifest.json" {
            continue;
        }
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        for a in v["Event"]["Attribute"].as_array().unwrap() {
            assert!(["md5", "sha256"].contains(&a["type"].as_str().unwrap()));
            assert!(a["decay_score"].is_array());
        }
    }
}

/// The stand-in's checks can fail: a body polling by `timestamp`, one without
/// `returnFormat` and one with an unknown parameter are refused and recorded.
#[test]
fn stand_in_refuses_what_misp_does_not_document() {
    let server = MispRest::start(EVENTS);
    let post = |body: Value| {
        ureq::post(&format!("{}/attributes/restSearch", server.url()))
            .set("Authorization", KEY)
            .set("Accept", "application/json")
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
            .map_err(Box::new)
    };
    let base = json!({"returnFormat": "json", "limit": 10, "page": 1});
    assert!(post(base.clone()).is_ok());
    let mut with_timestamp = base.clone();
    with_timestamp["timestamp"] = json!(1);
    let mut unknown = base.clone();
    unknown["since"] = json!(1);
    for bad in [with_timestamp, unknown, json!({"limit": 10, "page": 1})] {
        match post(bad.clone()) {
            Err(e) if matches!(*e, ureq::Error::Status(400, _)) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
    let violations = server.state()["violations"].as_array().unwrap().len();
    assert_eq!(violations, 3);
}

/// Benchmark (ignored; run with `cargo test --release --test integration
/// misp_sync::bench -- --ignored --nocapture`): 1M generated attributes in pages of
/// 10k. Reports the whole pass, and parse+apply alone against a `cat` of the same
/// bytes.
#[test]
#[ignore]
fn bench_initial_pull_of_1m_attributes() {
    let total: u64 = std::env::var("MISP_BENCH_ATTRIBUTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let server = MispRest::spawn(
        &["--generate", &total.to_string(), "--per-event", "1000"],
        &[],
    );
    let source = server.source("page_size = 10000");

    // The page bodies, saved, for the same-bytes comparison.
    let tmp = tempfile::tempdir().unwrap();
    let pages = total.div_ceil(10_000);
    let mut files = Vec::new();
    for page in 1..=pages {
        let body = ureq::get(&format!("{}/_page?limit=10000&page={page}", server.url()))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let p = tmp.path().join(format!("page{page}.json"));
        std::fs::write(&p, body).unwrap();
        files.push(p);
    }
    let bytes: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let start = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cat {}/page*.json > /dev/null",
            tmp.path().display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let cat = start.elapsed();
    let bodies: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let start = Instant::now();
    let applied = tripline::intel::sync::misp_rest::bench_apply(&bodies, &tmp.path().join("data"))
        .expect("apply");
    let parse_apply = start.elapsed();
    assert_eq!(applied, total);

    drop(bodies);
    let mut cache = Cache::new();
    let start = Instant::now();
    let report = cache.pass(&source, NOW).expect("pass");
    let pass = start.elapsed();
    assert_eq!(report.upserted, total);
    let start = Instant::now();
    let store = load(&cache.data);
    let load_time = start.elapsed();
    let per_100k = |d: Duration| d.as_secs_f64() * 100_000.0 / total as f64;
    println!(
        "misp bench: {total} attributes, {pages} pages, {:.1} MB of JSON\n  cat of the page files: {:.3}s\n  parse+apply+write (no HTTP): {:.3}s ({:.3}s per 100k)\n  whole pass over HTTP from the stand-in: {:.3}s ({:.3}s per 100k)\n  loading the cache ({} indicators): {:.3}s",
        bytes as f64 / 1e6,
        cat.as_secs_f64(),
        parse_apply.as_secs_f64(),
        per_100k(parse_apply),
        pass.as_secs_f64(),
        per_100k(pass),
        store.links.len(),
        load_time.as_secs_f64(),
    );
}

/// The interface end to end: a `kind = "misp"` source in the configuration (key from
/// an environment variable), `tripline intel sync`, `intel status --json`, and `hunt
/// --config` matching a synced attribute with the source named in
/// `indicator.provider` and the attribute's UUID kept for its sightings.
#[test]
fn misp_source_in_the_config_syncs_and_hunts() {
    let server = MispRest::start(EVENTS);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    let config = p.join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = []\nno_default_warninglists = true\n\
             [[intel.sources]]\nname = \"isac\"\nkind = \"misp\"\nurl = {:?}\n\
             api_key_env = \"TRIPLINE_TEST_MISP_KEY\"\npage_size = 50\n\
             [metrics]\nenabled = false\n[state]\ndir = {:?}\n",
            server.url(),
            p.join("state").display().to_string(),
        ),
    )
    .expect("config");
    let c = config.to_str().expect("utf-8");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tripline"))
            .args(args)
            .env("TRIPLINE_TEST_MISP_KEY", KEY)
            .current_dir(root())
            .output()
            .expect("run tripline")
    };
    let out = run(&["intel", "sync", "--config", c]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(!said.contains(KEY), "{said}");
    server.assert_no_violations();
    let status: Value =
        serde_json::from_slice(&run(&["intel", "status", "--config", c, "--json"]).stdout)
            .expect("status json");
    let s = &status["sources"][0];
    assert_eq!(
        (s["name"].as_str(), s["kind"].as_str()),
        (Some("isac"), Some("misp"))
    );
    assert!(
        s["last_success"].is_string() && s["last_error"].is_null(),
        "{s}"
    );
    let n = s["indicators"].as_u64().unwrap_or(0);
    assert!(n > 100, "{s}");

    // One live attribute of the served events that the loader keeps as an
    // indicator, written into a log line.
    let cached = load(&p.join("state/intel/isac/data"));
    let provs = provenances(&cached);
    let (attr, value) = provs
        .iter()
        .find_map(|(uuid, ps)| {
            let v = &ps.first()?.value;
            let plain = v.contains('.') && !v.contains('/') && !v.contains(':') && !v.contains('@');
            plain.then(|| (uuid.clone(), v.clone()))
        })
        .expect("a domain or address attribute");
    let log = p.join("net.log");
    std::fs::write(&log, format!("2024-05-01T10:00:00Z fw01 conn to {value}\n")).expect("log");
    let out = run(&["hunt", "-q", "--config", c, log.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alert: Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_else(|| panic!("no alert for {value}")),
    )
    .expect("alert json");
    let e = &alert["threat"]["enrichments"][0];
    assert_eq!(e["indicator"]["provider"], "isac", "{alert}");
    let sources = alert["tripline"]["enrichments"][0]["sources"].to_string();
    assert!(sources.contains(&attr), "{attr} in {sources}");
}
