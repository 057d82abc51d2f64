//! TAXII 2.1 intel sync (issue 11), driven through the library: a real medallion
//! server (pages by `next`) and a stand-in that pages only by
//! `X-TAXII-Date-Added-Last` (`util/taxii_nonext.py`). Each pass's data directory is
//! loaded with the ordinary intel loader and compared, indicator by indicator, with
//! what the server holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use tripline::intel::load::{load_intel, IntelSpec, LoadOptions};
use tripline::intel::sync::taxii::TaxiiFetcher;
use tripline::intel::sync::{
    Credentials, Fetcher, PassContext, PassReport, SourceConfig, SourceKind, SyncError,
};
use tripline::net::{HttpClient, HttpError, Secret};

use crate::util::*;

const HARBOR: &str = "fixtures/taxii-sync/harbor-campaign.json";
const MEDIA: &str = "application/taxii+json;version=2.1";
const TOKEN: &str = "nonext-api-key-6f1d";

/// A server process, killed on drop.
struct Server {
    child: Child,
    api_root: String,
    collection: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until_up(url: &str, auth: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = ureq::get(url)
            .set("Accept", MEDIA)
            .set("Authorization", auth)
            .call()
            .is_ok();
        if up {
            return;
        }
        assert!(Instant::now() < deadline, "{url} did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn basic_auth() -> String {
    use base64::Engine;
    let raw = format!("{TAXII_USER}:{TAXII_PASSWORD}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// medallion (memory backend) serving `entries` (`(date_added, object)`) in collection
/// `trustgroup1`'s collection, pages of at most `max_page_size`.
fn medallion(dir: &Path, entries: &[(String, Value)], max_page_size: u32) -> Server {
    require_python_module("medallion", "medallion");
    std::fs::create_dir_all(dir).expect("medallion dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let collection = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
    let manifest: Vec<Value> = entries
        .iter()
        .map(|(date_added, o)| {
            json!({
                "id": o["id"],
                "date_added": date_added,
                "version": o.get("modified").or_else(|| o.get("created")),
                "media_type": "application/stix+json;version=2.1",
            })
        })
        .collect();
    let objects: Vec<&Value> = entries.iter().map(|(_, o)| o).collect();
    let data = json!({
        "/discovery": {
            "title": "tripline taxii-sync test server",
            "default": format!("{base}/trustgroup1/"),
            "api_roots": [format!("{base}/trustgroup1/")]
        },
        "trustgroup1": {
            "information": {
                "title": "Trust group 1",
                "versions": [MEDIA],
                "max_content_length": 10485760
            },
            "status": [],
            "collections": [{
                "id": collection,
                "title": "Indicators",
                "can_read": true,
                "can_write": true,
                "media_types": ["application/stix+json;version=2.1"],
                "objects": objects,
                "manifest": manifest,
            }]
        }
    });
    let data_file = dir.join("medallion-data.json");
    std::fs::write(&data_file, data.to_string()).expect("medallion data");
    let config = json!({
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": data_file,
        },
        "users": { TAXII_USER: TAXII_PASSWORD },
        "taxii": { "max_page_size": max_page_size }
    });
    let config_file = dir.join("medallion.json");
    std::fs::write(&config_file, config.to_string()).expect("medallion config");
    let child = Command::new("python3")
        .args([
            "-c",
            "import sys; from medallion.scripts.run import main; sys.exit(main())",
        ])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg(&config_file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("medallion.log")).expect("log file"))
        .spawn()
        .expect("start medallion");
    let server = Server {
        child,
        api_root: format!("{base}/trustgroup1/"),
        collection: collection.to_string(),
    };
    wait_until_up(&format!("{base}/taxii2/"), &basic_auth());
    server
}

/// Adds one object through medallion's API (one POST each: each gets its own
/// `date_added`).
fn medallion_add(server: &Server, object: &Value) {
    let url = format!(
        "{}collections/{}/objects/",
        server.api_root, server.collection
    );
    let status = ureq::post(&url)
        .set("Accept", MEDIA)
        .set("Content-Type", MEDIA)
        .set("Authorization", &basic_auth())
        .send_string(&json!({ "objects": [object] }).to_string())
        .expect("medallion accepts the object")
        .into_string()
        .expect("a status resource");
    let status: Value = serde_json::from_str(&status).expect("status JSON");
    assert_eq!(status["success_count"], 1, "{status}");
}

/// The stand-in without `next` (see `util/taxii_nonext.py`), data and control in `dir`.
fn nonext(dir: &Path) -> Server {
    std::fs::create_dir_all(dir).expect("stand-in dir");
    let port = free_port();
    let child = Command::new("python3")
        .arg(support_dir().join("taxii_nonext.py"))
        .arg(port.to_string())
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the TAXII stand-in");
    let api_root = format!("http://127.0.0.1:{port}/api1/");
    wait_until_up(
        &format!("{api_root}collections/nonext-collection/"),
        &format!("Bearer {TOKEN}"),
    );
    Server {
        child,
        api_root,
        collection: "nonext-collection".into(),
    }
}

fn write_json(path: &Path, value: &Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, value.to_string()).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn source(server: &Server, credentials: Credentials, options: &str) -> SourceConfig {
    SourceConfig {
        name: "cert".into(),
        kind: SourceKind::Taxii,
        url: server.api_root.clone(),
        collection: Some(server.collection.clone()),
        credentials,
        interval_secs: 300,
        timeout_secs: 20,
        ca_file: None,
        proxy: None,
        options: toml::from_str(options).expect("options"),
    }
}

fn basic() -> Credentials {
    Credentials::Basic {
        username: TAXII_USER.into(),
        password: Secret::new(TAXII_PASSWORD),
    }
}

/// One pass as the runner does it: the cursor is kept only when the pass succeeds.
fn sync(src: &SourceConfig, data: &Path, cursor: &mut Value) -> Result<PassReport, SyncError> {
    let client = HttpClient::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut fetcher = TaxiiFetcher::new();
    fetcher.check_options(src)?;
    let mut next = cursor.clone();
    let mut ctx = PassContext {
        source: src,
        client: &client,
        data_dir: data,
        cursor: &mut next,
        now: Utc::now(),
    };
    let report = fetcher.pass(&mut ctx)?;
    *cursor = next;
    Ok(report)
}

/// What the loader makes of `path` (named `cert`): `"<STIX id> <value>"` per indicator.
fn loaded(path: &Path) -> BTreeSet<String> {
    let spec: IntelSpec = format!("cert={}", path.display()).parse().expect("spec");
    let (store, errors) = load_intel(&[spec], &LoadOptions::default()).expect("intel loads");
    assert!(errors.is_empty(), "{errors:?}");
    store
        .links
        .iter()
        .map(|&(id, m)| {
            let meta = &store.metas[m as usize];
            format!(
                "{} {}",
                meta.attr_uuid.as_deref().unwrap_or("-"),
                store.value(id)
            )
        })
        .collect()
}

/// Every file of a directory and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let path = e.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        out.insert(path, bytes);
    }
    out
}

fn harbor_objects() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(HARBOR)).expect("fixture");
    let bundle: Value = serde_json::from_str(&text).expect("fixture json");
    bundle["objects"].as_array().cloned().expect("objects")
}

/// Real IPv4 trail values (fixtures/intel/trails), as many as asked.
fn trail_ips(skip: usize, n: usize) -> Vec<String> {
    let path = root().join("fixtures/intel/trails/trails-ipv4.txt");
    let text = std::fs::read_to_string(path).expect("trails");
    text.lines()
        .skip(skip)
        .take(n)
        .map(str::to_string)
        .collect()
}

/// A STIX 2.1 indicator for an IPv4 value (generated test data).
fn ip_indicator(value: &str, modified: &str) -> Value {
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, value.as_bytes());
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--{id}"),
        "created": "2024-05-01T00:00:00.000Z",
        "modified": modified,
        "name": format!("trail {value}"),
        "indicator_types": ["malicious-activity"],
        "pattern": format!("[ipv4-addr:value = '{value}']"),
        "pattern_type": "stix",
        "valid_from": "2024-05-01T00:00:00Z"
    })
}

fn id_of(o: &Value) -> String {
    o["id"].as_str().expect("id").to_string()
}

/// `"<id> <value>"` for the loaded values of the indicator `id`.
fn of(set: &BTreeSet<String>, id: &str) -> BTreeSet<String> {
    set.iter()
        .filter(|l| l.starts_with(&format!("{id} ")))
        .cloned()
        .collect()
}

fn http_status(e: &SyncError) -> Option<u16> {
    match e {
        SyncError::Http {
            source: HttpError::Status { status, .. },
            ..
        } => Some(*status),
        _ => None,
    }
}

#[test]
fn taxii_medallion_full_then_incremental_with_modified_and_revoked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let objects = harbor_objects();
    let entries: Vec<(String, Value)> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| (format!("2024-03-04T12:00:00.{:06}Z", i + 1), o.clone()))
        .collect();
    let indicators = objects.iter().filter(|o| o["type"] == "indicator").count();
    assert_eq!(indicators, 8);
    let server = medallion(&dir.path().join("medallion"), &entries, 3);
    let log = || std::fs::read_to_string(dir.path().join("medallion/medallion.log"));
    let src = source(&server, basic(), "");

    // First pass: everything, paged by `next` (pages of 3), indicators only.
    let mut cursor = Value::Null;
    let r = sync(&src, &data, &mut cursor).unwrap_or_else(|e| {
        panic!(
            "first pass: {e}
medallion: {:?}",
            log()
        )
    });
    assert_eq!((r.requests, r.upserted, r.deleted), (1 + 3, 7, 0), "{r:?}");
    assert!(r.changed && r.bytes_fetched > 0);
    let want = loaded(&root().join(HARBOR));
    assert_eq!(want.len(), 11, "{want:#?}");
    let first = loaded(&data);
    assert_eq!(first, want);
    // The revoked indicator was never written; the cursor is the last date verbatim.
    let all = snapshot(&data)
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<String>();
    assert!(!all.contains("old-harbor.example.org") && !all.contains("\"report\""));
    let last_indicator = entries.iter().rev().find(|(_, o)| o["type"] == "indicator");
    let last_date = last_indicator.map(|(d, _)| d.as_str());
    assert_eq!(cursor["added_after"].as_str(), last_date);
    let before = snapshot(&data);

    // Nothing new: one page, nothing written.
    let r = sync(&src, &data, &mut cursor).expect("second pass");
    assert_eq!(
        (r.requests, r.upserted, r.deleted, r.changed),
        (2, 0, 0, false)
    );
    assert_eq!(snapshot(&data), before);

    // Five new indicators, a modified C2 indicator (new value), a revoked one, and an
    // older version of the hash indicator: added one by one (own date_added each).
    let c2 = objects
        .iter()
        .find(|o| o["id"] == "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f")
        .expect("c2 indicator");
    let domain = objects
        .iter()
        .find(|o| o["id"] == "indicator--b2e5c3f1-4ad9-4f0e-9a55-7f5b2c1d9e01")
        .expect("domain indicator");
    let ips = trail_ips(0, 6);
    let fresh: Vec<Value> = ips[..5]
        .iter()
        .map(|ip| ip_indicator(ip, "2024-05-01T00:00:00.000Z"))
        .collect();
    let mut c2_new = c2.clone();
    c2_new["modified"] = json!("2024-05-02T08:00:00.000Z");
    c2_new["pattern"] = json!(format!("[ipv4-addr:value = '{}']", ips[5]));
    let mut revoked = domain.clone();
    revoked["modified"] = json!("2024-05-02T09:00:00.000Z");
    revoked["revoked"] = json!(true);
    for o in fresh.iter().chain([&c2_new, &revoked]) {
        medallion_add(&server, o);
    }
    // Pages of 2 (`limit`): an incremental chain pages on by date, never with `next`.
    let src = source(&server, basic(), "limit = 2");
    let r = sync(&src, &data, &mut cursor).expect("incremental pass");
    assert_eq!((r.requests, r.upserted, r.deleted), (1 + 4, 6, 1), "{r:?}");
    let now = loaded(&data);
    let mut want = first.clone();
    for gone in [id_of(c2), id_of(domain)] {
        for l in of(&first, &gone) {
            want.remove(&l);
        }
    }
    for (o, ip) in fresh.iter().zip(&ips).chain([(&c2_new, &ips[5])]) {
        want.insert(format!("{} {ip}", id_of(o)));
    }
    assert_eq!(now, want);
    assert!(of(&now, &id_of(domain)).is_empty());
    assert_eq!(of(&now, &id_of(c2)).len(), 1);

    // An older version arriving later (a re-sent page) changes nothing.
    let mut older = c2.clone();
    older["modified"] = json!("2024-04-01T00:00:00.000Z");
    medallion_add(&server, &older);
    let r = sync(&src, &data, &mut cursor).expect("older version pass");
    assert_eq!((r.upserted, r.deleted, r.changed), (0, 0, false), "{r:?}");
    assert_eq!(loaded(&data), want);

    // A full pass (cursor reset) rebuilds the same data from the server.
    let mut reset = Value::Null;
    let r = sync(&src, &data, &mut reset).expect("full pass again");
    assert_eq!((r.upserted, r.deleted), (0, 0), "{r:?}");
    assert_eq!(loaded(&data), want);

    // A collection that does not exist, and a wrong password: the pass fails, the data
    // stay, the password is nowhere in the error.
    let kept = snapshot(&data);
    let mut missing = source(&server, basic(), "");
    missing.collection = Some("00000000-0000-4000-8000-000000000000".into());
    let e = sync(&missing, &data, &mut cursor).expect_err("no such collection");
    assert_eq!(http_status(&e), Some(404), "{e}");
    let wrong = Credentials::Basic {
        username: TAXII_USER.into(),
        password: Secret::new("not-the-password-x9"),
    };
    let e = sync(&source(&server, wrong, ""), &data, &mut cursor).expect_err("401");
    assert_eq!(http_status(&e), Some(401), "{e}");
    assert!(
        !format!("{e} {e:?}").contains("not-the-password-x9"),
        "{e:?}"
    );
    assert_eq!(snapshot(&data), kept);
}

/// `(date_added, object)` rows for the stand-in: dates inside one millisecond, so
/// that a cursor cut to milliseconds would fetch the same objects again.
fn rows(objects: &[Value], first_micros: u32) -> Vec<Value> {
    objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            json!({
                "date_added": format!("2024-05-01T10:00:00.123{:03}Z", first_micros as usize + i),
                "object": o,
            })
        })
        .collect()
}

/// The stand-in's request log: one query map per objects request.
fn objects_requests(dir: &Path) -> Vec<BTreeMap<String, String>> {
    let log = std::fs::read_to_string(dir.join("requests.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("/objects/"))
        .map(|l| {
            let url = url::Url::parse(&format!("http://x{l}")).expect("logged path");
            url.query_pairs().into_owned().collect()
        })
        .collect()
}

fn served(dir: &Path) -> Vec<String> {
    let log = std::fs::read_to_string(dir.join("served.log")).unwrap_or_default();
    log.lines().map(str::to_string).collect()
}

#[test]
fn taxii_without_next_pages_by_the_verbatim_date_header() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let srv_dir = dir.path().join("server");
    let ips = trail_ips(20, 14);
    let first: Vec<Value> = ips[..10]
        .iter()
        .map(|ip| ip_indicator(ip, "2024-05-01T00:00:00.000Z"))
        .collect();
    let mut table = rows(&first, 400);
    std::fs::create_dir_all(&srv_dir).expect("server dir");
    write_json(&srv_dir.join("objects.json"), &json!(table));
    write_json(
        &srv_dir.join("control.json"),
        &json!({"page_size": 3, "token": TOKEN}),
    );
    let server = nonext(&srv_dir);
    let src = source(&server, Credentials::ApiKey(Secret::new(TOKEN)), "");

    let mut cursor = Value::Null;
    let r = sync(&src, &data, &mut cursor).expect("first pass");
    assert_eq!((r.requests, r.upserted), (1 + 4, 10), "{r:?}");
    let want: BTreeSet<String> = first
        .iter()
        .zip(&ips)
        .map(|(o, ip)| format!("{} {ip}", id_of(o)))
        .collect();
    assert_eq!(loaded(&data), want);
    // Paged by the header of the page before, verbatim, never with `next`.
    let reqs = objects_requests(&srv_dir);
    let after: Vec<Option<&str>> = reqs
        .iter()
        .map(|q| q.get("added_after").map(String::as_str))
        .collect();
    let dates: Vec<String> = table
        .iter()
        .map(|r| r["date_added"].as_str().expect("date").to_string())
        .collect();
    let want_after = [None, Some(&*dates[2]), Some(&*dates[5]), Some(&*dates[8])];
    assert_eq!(after, want_after);
    assert!(reqs.iter().all(|q| !q.contains_key("next")));
    assert!(reqs.iter().all(
        |q| q.get("match[type]").map(String::as_str) == Some("indicator")
            && q.get("match[version]").map(String::as_str) == Some("last")
    ));
    assert_eq!(cursor["added_after"], dates[9].as_str());
    let s = served(&srv_dir);
    assert_eq!(s.len(), 10, "each object served once: {s:#?}");

    // Three new objects and a newer version of one, later in the same millisecond.
    let mut changed = ip_indicator(&ips[0], "2024-05-03T00:00:00.000Z");
    changed["name"] = json!("trail, confirmed");
    let mut more: Vec<Value> = ips[10..13]
        .iter()
        .map(|ip| ip_indicator(ip, "2024-05-01T00:00:00.000Z"))
        .collect();
    more.push(changed.clone());
    table.extend(rows(&more, 410));
    write_json(&srv_dir.join("objects.json"), &json!(table));
    let r = sync(&src, &data, &mut cursor).expect("incremental pass");
    assert_eq!((r.requests, r.upserted, r.deleted), (1 + 2, 4, 0), "{r:?}");
    let reqs = objects_requests(&srv_dir);
    assert_eq!(
        reqs[4].get("added_after").map(String::as_str),
        Some(dates[9].as_str())
    );
    let s = served(&srv_dir);
    let distinct: BTreeSet<&String> = s.iter().collect();
    assert_eq!((s.len(), distinct.len()), (14, 14), "nothing twice: {s:#?}");
    let mut want = want;
    for (o, ip) in more[..3].iter().zip(&ips[10..13]) {
        want.insert(format!("{} {ip}", id_of(o)));
    }
    assert_eq!(loaded(&data), want);
    let text: String = snapshot(&data)
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(
        text.contains("trail, confirmed"),
        "the newer version is kept"
    );
    assert_eq!(cursor["added_after"], table[13]["date_added"]);
    // Every request since the start: never `next` and `added_after` together.
    assert!(objects_requests(&srv_dir)
        .iter()
        .all(|q| !q.contains_key("next")));
}

/// A server that gives both `next` and the date header: a full chain follows `next`,
/// an incremental chain (started with `added_after`) goes on by date; no request
/// carries both (the stand-in answers 400 to that).
#[test]
fn taxii_next_and_added_after_are_never_sent_together() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let srv_dir = dir.path().join("server");
    std::fs::create_dir_all(&srv_dir).expect("server dir");
    let ips = trail_ips(60, 8);
    let objects: Vec<Value> = ips
        .iter()
        .map(|ip| ip_indicator(ip, "2024-05-01T00:00:00.000Z"))
        .collect();
    write_json(
        &srv_dir.join("objects.json"),
        &json!(rows(&objects[..5], 0)),
    );
    write_json(
        &srv_dir.join("control.json"),
        &json!({"page_size": 2, "give_next": true}),
    );
    let server = nonext(&srv_dir);
    let src = source(&server, Credentials::None, "");
    let mut cursor = Value::Null;
    let r = sync(&src, &data, &mut cursor).expect("full pass");
    assert_eq!((r.requests, r.upserted), (1 + 3, 5), "{r:?}");
    let keys =
        |q: &BTreeMap<String, String>| (q.contains_key("next"), q.contains_key("added_after"));
    let reqs = objects_requests(&srv_dir);
    let paging: Vec<_> = reqs.iter().map(keys).collect();
    assert_eq!(paging, [(false, false), (true, false), (true, false)]);

    write_json(&srv_dir.join("objects.json"), &json!(rows(&objects, 0)));
    let r = sync(&src, &data, &mut cursor).expect("incremental pass");
    assert_eq!((r.requests, r.upserted), (1 + 2, 3), "{r:?}");
    let reqs = objects_requests(&srv_dir);
    let paging: Vec<_> = reqs[3..].iter().map(keys).collect();
    assert_eq!(paging, [(false, true), (false, true)]);
    let s = served(&srv_dir);
    let distinct: BTreeSet<&String> = s.iter().collect();
    assert_eq!((s.len(), distinct.len()), (8, 8), "{s:#?}");
    assert_eq!(loaded(&data).len(), 8);
}

#[test]
fn taxii_failing_collection_keeps_the_last_good_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let srv_dir = dir.path().join("server");
    std::fs::create_dir_all(&srv_dir).expect("server dir");
    let ips = trail_ips(40, 12);
    let objects: Vec<Value> = ips
        .iter()
        .map(|ip| ip_indicator(ip, "2024-05-01T00:00:00.000Z"))
        .collect();
    write_json(
        &srv_dir.join("objects.json"),
        &json!(rows(&objects[..6], 0)),
    );
    write_json(&srv_dir.join("control.json"), &json!({"page_size": 2}));
    let server = nonext(&srv_dir);
    let src = source(&server, Credentials::None, "");
    let mut cursor = Value::Null;
    sync(&src, &data, &mut cursor).expect("good pass");
    let good = loaded(&data);
    assert_eq!(good.len(), 6);
    let (kept, kept_cursor) = (snapshot(&data), cursor.clone());

    // New objects arrive, but the second page fails with 500: nothing is applied.
    write_json(&srv_dir.join("objects.json"), &json!(rows(&objects, 0)));
    write_json(
        &srv_dir.join("control.json"),
        &json!({"page_size": 2, "fail_from": 2, "fail_status": 500}),
    );
    let e = sync(&src, &data, &mut cursor).expect_err("500 on page 2");
    assert_eq!(http_status(&e), Some(500), "{e}");
    assert_eq!((snapshot(&data), &cursor), (kept.clone(), &kept_cursor));

    // An answer that is not JSON: a protocol error naming the URL.
    write_json(
        &srv_dir.join("control.json"),
        &json!({"page_size": 2, "bad_json": true}),
    );
    let e = sync(&src, &data, &mut cursor).expect_err("bad JSON");
    assert!(matches!(e, SyncError::Protocol { .. }), "{e:?}");
    assert!(
        e.to_string().contains("/objects/") && e.to_string().contains("not JSON"),
        "{e}"
    );
    assert_eq!((snapshot(&data), &cursor), (kept.clone(), &kept_cursor));

    // The server recovers: the next pass fetches what the failed ones missed.
    write_json(&srv_dir.join("control.json"), &json!({"page_size": 2}));
    let r = sync(&src, &data, &mut cursor).expect("recovered pass");
    assert_eq!(r.upserted, 6, "{r:?}");
    let want: BTreeSet<String> = objects
        .iter()
        .zip(&ips)
        .map(|(o, ip)| format!("{} {ip}", id_of(o)))
        .collect();
    assert_eq!(loaded(&data), want);
}

/// The interface end to end: a `kind = "taxii"` source in the configuration,
/// `tripline intel sync` against medallion (basic auth from a password file), `intel
/// status --json`, and `hunt --config` matching the synced indicators with the source
/// named in `indicator.provider` — then again with medallion stopped (from the cache).
#[test]
fn taxii_source_in_the_config_syncs_and_hunts_from_the_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path();
    let objects = harbor_objects();
    let entries: Vec<(String, Value)> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| (format!("2024-03-04T12:00:00.{:06}Z", i + 1), o.clone()))
        .collect();
    let server = medallion(&p.join("medallion"), &entries, 3);
    std::fs::write(p.join("taxii.password"), format!("{TAXII_PASSWORD}\n")).expect("password");
    let config = p.join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = []\nno_default_warninglists = true\n\
             [[intel.sources]]\nname = \"harbor-isac\"\nkind = \"taxii\"\nurl = {:?}\n\
             collection = {:?}\nusername = {TAXII_USER:?}\npassword_file = {:?}\nlimit = 3\n\
             [metrics]\nenabled = false\n[state]\ndir = {:?}\n",
            server.api_root,
            server.collection,
            p.join("taxii.password").display().to_string(),
            p.join("state").display().to_string(),
        ),
    )
    .expect("config");
    let c = config.to_str().expect("utf-8");
    let out = tripline(&["intel", "sync", "--config", c]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(!said.contains(TAXII_PASSWORD), "{said}");
    let status: Value =
        serde_json::from_slice(&tripline(&["intel", "status", "--config", c, "--json"]).stdout)
            .expect("status json");
    let s = &status["sources"][0];
    assert_eq!(
        (s["name"].as_str(), s["kind"].as_str()),
        (Some("harbor-isac"), Some("taxii"))
    );
    assert!(
        s["last_success"].is_string() && s["last_error"].is_null(),
        "{s}"
    );
    assert!(s["indicators"].as_u64().is_some_and(|n| n > 0), "{s}");

    // A value of the collection's indicators (the fixture's pattern
    // `[domain-name:value = 'update-check.example.net']`), as a log line shows it.
    let domain = "update-check.example.net";
    let log = p.join("dns.log");
    std::fs::write(
        &log,
        format!("2024-05-01T10:00:00Z dns01 query: {domain} IN A\n"),
    )
    .expect("log");
    let hunt = || {
        let out = tripline(&["hunt", "-q", "--config", c, log.to_str().expect("utf-8")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        alerts
            .iter()
            .flat_map(|a| {
                a["threat"]["enrichments"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|e| {
                e["indicator"]["provider"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(hunt(), ["harbor-isac"]);
    drop(server);
    assert_eq!(
        hunt(),
        ["harbor-isac"],
        "from the cache, with the server gone"
    );
    let out = tripline(&["intel", "sync", "--config", c]);
    assert_eq!(out.status.code(), Some(2), "the server is gone");
}
