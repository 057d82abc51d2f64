//! Intel sync (issue 11) end to end, with the real binary and a feed server
//! (`util/feed_server.py`: a directory served with ETag / Last-Modified / 304, made
//! to fail or hang on demand): CSV, freetext and MISP-format feeds synced, changed
//! and answered 304; `intel status`; a failing source beside current ones; hunting
//! from the cache with the server gone; `tripline run` starting offline from the cache
//! and picking up a sync; a kill -9 in the middle of a feed; config refusals; secrets.
//!
//! Feed contents: the MISP-format feed is `fixtures/intel/misp/infoblox-feed` (real
//! Infoblox events), its manifest reduced at test time to the six events present; the
//! list feeds are built at test time from values of `fixtures/intel/trails`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{root, support_dir};

/// A running `feed_server.py`.
pub(crate) struct FeedServer {
    child: Child,
    port: u16,
}

impl FeedServer {
    pub(crate) fn start(dir: &Path, key: Option<&str>) -> FeedServer {
        let mut cmd = Command::new("python3");
        cmd.arg(support_dir().join("feed_server.py"))
            .arg("--dir")
            .arg(dir);
        if let Some(k) = key {
            cmd.args(["--key", k]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start feed_server.py (python3)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port line");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("feed server said {line:?}"));
        FeedServer { child, port }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn client() -> tripline::net::HttpClient {
        tripline::net::HttpClient::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
    }

    pub(crate) fn control(&self, body: Value) {
        Self::client()
            .post(&self.url("_control"), &[], &body.to_string())
            .expect("control");
    }

    /// Every request answered so far.
    pub(crate) fn log(&self) -> Vec<Value> {
        let a = Self::client()
            .get(&self.url("_log"), &[], &[])
            .expect("log");
        serde_json::from_str(&a.body).expect("log json")
    }

    /// The requests after the first `from`, as `(path, status)`.
    pub(crate) fn requests_since(&self, from: usize) -> Vec<(String, u64)> {
        self.log()
            .into_iter()
            .skip(from)
            .map(|r| {
                (
                    r["path"].as_str().unwrap_or_default().to_string(),
                    r["status"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const FEED: &str = "fixtures/intel/misp/infoblox-feed";
/// Events of the fixture feed: one removed, one re-stamped in the change step.
const REMOVED_EVENT: &str = "aacc7574-34ba-40fa-b39c-b682cea1387b";
pub(crate) const RESTAMPED_EVENT: &str = "27dceb7d-92bd-4848-bfbd-8570e86de7de";
/// Only in the removed event; in the re-stamped one; in the list feeds.
const REMOVED_VALUE: &str = "womanflirting.life";
pub(crate) const FEED_VALUE: &str = "wordpress.agrupem.com";

pub(crate) fn trail(file: &str, n: usize) -> Vec<String> {
    std::fs::read_to_string(root().join("fixtures/intel/trails").join(file))
        .expect("trail")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .take(n)
        .map(str::to_string)
        .collect()
}

/// Writes the served directory: `list.txt` (freetext, with a defanged value),
/// `iocs.csv` (values in column `ip`), `misp/` (the fixture feed, manifest reduced to
/// the events present).
pub(crate) fn write_feeds(served: &Path) {
    let domains = trail("trails-domains.txt", 5);
    let mut list = format!("# freetext feed\n{}\n", domains[0].replace('.', "[.]"));
    for d in &domains[1..4] {
        list.push_str(&format!("{d}\n"));
    }
    std::fs::create_dir_all(served).expect("served dir");
    std::fs::write(served.join("list.txt"), list).expect("list");
    let ips = trail("trails-ipv4.txt", 4);
    let mut csv = String::from("first_seen,ip,port\n");
    for ip in &ips[..3] {
        csv.push_str(&format!("2024-05-01,{ip},443\n"));
    }
    std::fs::write(served.join("iocs.csv"), csv).expect("csv");
    let misp = served.join("misp");
    std::fs::create_dir_all(&misp).expect("misp dir");
    let src = root().join(FEED);
    let manifest: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(src.join("manifest.json")).unwrap()).unwrap();
    let mut kept = serde_json::Map::new();
    for (uuid, entry) in manifest {
        let f = src.join(format!("{uuid}.json"));
        if f.is_file() {
            std::fs::copy(&f, misp.join(format!("{uuid}.json"))).expect("copy event");
            kept.insert(uuid, entry);
        }
    }
    assert_eq!(kept.len(), 6);
    std::fs::write(misp.join("manifest.json"), Value::Object(kept).to_string()).unwrap();
}

/// A configuration with the given `[[intel.sources]]` text and state under `dir`.
/// Intel does not age here: the feeds are real 2024 data and most lines are timed
/// when read (expiry and decay: `tests/integration/expiry.rs`).
pub(crate) fn write_config(dir: &Path, sources: &str) -> PathBuf {
    let path = dir.join("tripline.toml");
    let text = format!(
        "[intel]\npaths = []\nreload_debounce_ms = 50\n{sources}\n{NO_AGING}[metrics]\naddress = \"127.0.0.1:0\"\n[state]\ndir = {:?}\n",
        dir.join("state").display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

const NO_AGING: &str = "[intel.decay]\nenabled = false\n[intel.lifetimes]\nip_days = 0\nurl_days = 0\ndomain_days = 0\nemail_days = 0\nhash_days = 0\n";

fn three_sources(server: &FeedServer) -> String {
    format!(
        "[[intel.sources]]\nname = \"ft\"\nkind = \"freetext\"\nurl = \"{}\"\ninterval_secs = 3600\n\
         [[intel.sources]]\nname = \"ips\"\nkind = \"csv\"\nurl = \"{}\"\ncolumn = \"ip\"\n\
         [[intel.sources]]\nname = \"feed\"\nkind = \"misp-feed\"\nurl = \"{}\"\n",
        server.url("list.txt"),
        server.url("iocs.csv"),
        server.url("misp/"),
    )
}

pub(crate) fn tripline(args: &[&str]) -> Output {
    crate::util::tripline(args)
}

pub(crate) fn sync(config: &Path) -> Output {
    tripline(&["intel", "sync", "--config", config.to_str().unwrap()])
}

pub(crate) fn status(config: &Path) -> Value {
    let out = tripline(&[
        "intel",
        "status",
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status json")
}

pub(crate) fn source<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no source {name} in {status}"))
}

/// Hunts `lines` with the configuration's intel: the alerts, as `(value, provider,
/// source names)`.
pub(crate) fn hunt(
    dir: &Path,
    config: &Path,
    lines: &[&str],
) -> Vec<(String, String, Vec<String>)> {
    let log = dir.join("hunt.log");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let out = tripline(&[
        "hunt",
        "-q",
        "--config",
        config.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "hunt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut hits = Vec::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let a: Value = serde_json::from_str(l).expect("alert json");
        let ecs = a["threat"]["enrichments"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ours = a["tripline"]["enrichments"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (e, t) in ecs.iter().zip(ours.iter()) {
            let names = t["sources"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|s| s["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            hits.push((
                t["indicator"].as_str().unwrap_or_default().to_string(),
                e["indicator"]["provider"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                names,
            ));
        }
    }
    hits
}

pub(crate) fn matched(
    hits: &[(String, String, Vec<String>)],
    value: &str,
) -> Option<(String, Vec<String>)> {
    hits.iter()
        .find(|(v, _, _)| v == value)
        .map(|(_, p, n)| (p.clone(), n.clone()))
}

pub(crate) fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// CSV, freetext and MISP-format feeds: a first sync fetches everything; a second one
/// is answered 304 everywhere and changes nothing; after the feeds change, only what
/// changed is fetched, a value added to a list matches, an event gone from the
/// manifest stops matching, and alerts name the source.
#[test]
fn feeds_sync_change_and_answer_304() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    write_feeds(&served);
    let server = FeedServer::start(&served, None);
    let config = write_config(dir.path(), &three_sources(&server));

    let out = sync(&config);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = status(&config);
    for name in ["ft", "ips", "feed"] {
        let s = source(&st, name);
        assert!(s["indicators"].as_u64().unwrap_or(0) > 0, "{name}: {s}");
        assert!(s["last_success"].is_string(), "{s}");
        assert!(s["last_error"].is_null(), "{s}");
        assert!(s["next_run"].is_string(), "{s}");
    }
    assert_eq!(source(&st, "ft")["indicators"], 4);
    assert_eq!(source(&st, "ips")["indicators"], 3);
    assert_eq!(source(&st, "feed")["kind"], "misp-feed");

    let domains = trail("trails-domains.txt", 5);
    let ips = trail("trails-ipv4.txt", 4);
    let lines = [
        format!("GET http://{}/ 200", domains[0]),
        format!("conn from {} ok", ips[1]),
        format!("dns query {FEED_VALUE}"),
        format!("dns query {REMOVED_VALUE}"),
        format!("dns query {}", domains[4]),
        format!("conn from {} ok", ips[3]),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let hits = hunt(dir.path(), &config, &refs);
    assert_eq!(
        matched(&hits, &domains[0]),
        Some(("ft".into(), vec!["ft".into()])),
        "{hits:?}"
    );
    assert_eq!(
        matched(&hits, &ips[1]),
        Some(("ips".into(), vec!["ips".into()])),
        "{hits:?}"
    );
    // Every kind names its source in `indicator.provider` (a MISP-format feed too,
    // whose events' organisation is kept in `tripline.enrichments[].sources[]`).
    assert_eq!(
        matched(&hits, FEED_VALUE),
        Some(("feed".into(), vec!["feed".into()])),
        "{hits:?}"
    );
    assert!(matched(&hits, REMOVED_VALUE).is_some(), "{hits:?}");
    assert!(matched(&hits, &domains[4]).is_none(), "{hits:?}");

    // Nothing changed: 304 for every list and the manifest, no event fetched.
    let before = server.log().len();
    let out = sync(&config);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = server.requests_since(before);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("/iocs.csv".to_string(), 304),
            ("/list.txt".to_string(), 304),
            // The feed has no hashes.csv: asked for, absent, nothing else happens.
            ("/misp/hashes.csv".to_string(), 404),
            ("/misp/manifest.json".to_string(), 304),
        ]
    );
    let st = status(&config);
    for name in ["ft", "ips", "feed"] {
        assert_eq!(source(&st, name)["last_pass"]["changed"], false, "{st}");
    }

    // The feeds change.
    let mut list = std::fs::read_to_string(served.join("list.txt")).unwrap();
    list.push_str(&format!("{}\n", domains[4]));
    std::fs::write(served.join("list.txt"), list).unwrap();
    std::fs::write(
        served.join("iocs.csv"),
        format!(
            "first_seen,ip,port\n2024-05-02,{},80\n2024-05-02,{},80\n",
            ips[1], ips[3]
        ),
    )
    .unwrap();
    let misp = served.join("misp");
    let mut manifest: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(misp.join("manifest.json")).unwrap())
            .unwrap();
    manifest.remove(REMOVED_EVENT);
    std::fs::remove_file(misp.join(format!("{REMOVED_EVENT}.json"))).unwrap();
    manifest[RESTAMPED_EVENT]["timestamp"] = json!("1800000000");
    std::fs::write(
        misp.join("manifest.json"),
        Value::Object(manifest).to_string(),
    )
    .unwrap();

    let before = server.log().len();
    let out = sync(&config);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = server.requests_since(before);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("/iocs.csv".to_string(), 200),
            ("/list.txt".to_string(), 200),
            (format!("/misp/{RESTAMPED_EVENT}.json"), 200),
            ("/misp/hashes.csv".to_string(), 404),
            ("/misp/manifest.json".to_string(), 200),
        ],
        "only the re-stamped event is fetched"
    );
    let st = status(&config);
    assert_eq!(source(&st, "ft")["indicators"], 5);
    assert_eq!(source(&st, "ips")["indicators"], 2);
    assert_eq!(source(&st, "ips")["last_pass"]["deleted"], 2);
    assert_eq!(source(&st, "feed")["last_pass"]["deleted"], 1);
    assert_eq!(source(&st, "feed")["last_pass"]["upserted"], 1);
    let data = dir.path().join("state/intel/feed/data");
    assert!(!data.join(format!("{REMOVED_EVENT}.json")).exists());
    let hits = hunt(dir.path(), &config, &refs);
    assert!(
        matched(&hits, &domains[4]).is_some(),
        "added value: {hits:?}"
    );
    assert!(matched(&hits, &ips[3]).is_some(), "{hits:?}");
    assert!(
        matched(&hits, REMOVED_VALUE).is_none(),
        "removed event: {hits:?}"
    );
    assert!(matched(&hits, FEED_VALUE).is_some(), "{hits:?}");

    // The table names every source.
    let out = tripline(&["intel", "status", "--config", config.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    for name in ["ft", "ips", "feed"] {
        assert!(table.lines().any(|l| l.starts_with(name)), "{table}");
    }
}

/// One source answering 500 and one whose server is down: `intel sync` exits 2, the
/// others are applied, the failing ones keep their last good data and say why.
#[test]
fn a_failing_source_leaves_the_others_current() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    write_feeds(&served);
    let server = FeedServer::start(&served, None);
    let down = crate::util::free_port();
    let sources = format!(
        "{}[[intel.sources]]\nname = \"gone\"\nkind = \"freetext\"\nurl = \"http://127.0.0.1:{down}/x.txt\"\n",
        three_sources(&server)
    );
    let config = write_config(dir.path(), &sources);
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(2), "the server of gone is down");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gone"), "{err}");
    let st = status(&config);
    assert!(source(&st, "gone")["last_error"].is_string(), "{st}");
    assert!(source(&st, "gone")["last_success"].is_null(), "{st}");
    assert!(source(&st, "ft")["last_error"].is_null(), "{st}");

    // The CSV feed fails; the freetext feed changes meanwhile.
    server.control(json!({"fail": {"/iocs.csv": 500}}));
    let domains = trail("trails-domains.txt", 5);
    let ips = trail("trails-ipv4.txt", 4);
    let mut list = std::fs::read_to_string(served.join("list.txt")).unwrap();
    list.push_str(&format!("{}\n", domains[4]));
    std::fs::write(served.join("list.txt"), list).unwrap();
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(2));
    let st = status(&config);
    let ips_status = source(&st, "ips");
    assert!(
        ips_status["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("500"),
        "{ips_status}"
    );
    assert!(
        ips_status["last_success"].is_string(),
        "kept from the first pass"
    );
    assert_eq!(ips_status["indicators"], 3, "last good data kept");
    assert_eq!(ips_status["consecutive_failures"], 1);
    assert_eq!(source(&st, "ft")["indicators"], 5);
    let lines = [format!("x {}", domains[4]), format!("y {}", ips[0])];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let hits = hunt(dir.path(), &config, &refs);
    assert!(matched(&hits, &domains[4]).is_some(), "current: {hits:?}");
    assert!(
        matched(&hits, &ips[0]).is_some(),
        "last good data: {hits:?}"
    );

    // Only one source.
    server.control(json!({}));
    let out = tripline(&[
        "intel",
        "sync",
        "--config",
        config.to_str().unwrap(),
        "--source",
        "ips",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(source(&status(&config), "ips")["last_error"].is_null());
    let out = tripline(&[
        "intel",
        "sync",
        "--config",
        config.to_str().unwrap(),
        "--source",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no intel source named \"nope\""));
}

/// With the server gone, `hunt --config` still matches from the cache, and
/// `tripline run` starts from it at once; with the server back, the sidecar syncs in
/// the background and a value added to the feed starts matching (a reload after the
/// pass), with the sync metrics per source.
/// `tripline run --stdin` with `config` and a free metrics address: the child, its
/// stdin, its stdout lines (alerts) on a channel, the metrics address.
fn run_stdin(
    config: &Path,
) -> (
    Child,
    std::process::ChildStdin,
    std::sync::mpsc::Receiver<String>,
    std::net::SocketAddr,
) {
    let metrics = crate::util::sidecar::free_addr();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args([
            "run",
            "--stdin",
            "--config",
            config.to_str().unwrap(),
            "--metrics-addr",
            &metrics.to_string(),
        ])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    (child, stdin, rx, metrics)
}

/// Successful sync passes of `source` so far (`tripline_intel_syncs_total`).
fn ok_passes(metrics: std::net::SocketAddr, source: &str) -> f64 {
    crate::util::sidecar::get(metrics, "/metrics")
        .and_then(|(_, body)| {
            body.lines()
                .find(|l| {
                    l.starts_with("tripline_intel_syncs_total{")
                        && l.contains("result=\"ok\"")
                        && l.contains(&format!("source=\"{source}\""))
                })
                .and_then(|l| l.split_whitespace().last()?.parse().ok())
        })
        .unwrap_or(0.0)
}

/// Writes `<word> <value>` lines until an alert names `value` (up to 60 s).
fn matches_soon(
    stdin: &mut std::process::ChildStdin,
    rx: &std::sync::mpsc::Receiver<String>,
    word: &str,
    value: &str,
) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        writeln!(stdin, "{word} {value}").unwrap();
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
            if l.contains(value) {
                return true;
            }
        }
    }
    false
}

#[test]
fn restart_offline_from_cache_and_run_picks_up_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    write_feeds(&served);
    let server = FeedServer::start(&served, None);
    let config = write_config(dir.path(), &three_sources(&server));
    assert_eq!(sync(&config).status.code(), Some(0));
    let domains = trail("trails-domains.txt", 5);
    let port = server.port;
    drop(server);

    let lines = [format!("q {}", domains[1]), format!("q {FEED_VALUE}")];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let hits = hunt(dir.path(), &config, &refs);
    assert!(matched(&hits, &domains[1]).is_some(), "offline: {hits:?}");
    assert!(matched(&hits, FEED_VALUE).is_some(), "offline: {hits:?}");
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(2), "offline sync fails");
    assert_eq!(source(&status(&config), "ft")["indicators"], 4, "data kept");

    // The sidecar, offline, from the cache. Its state says every source is due now
    // (the failed pass's backoff is short), so it will pass as soon as it can.
    let (mut child, mut stdin, rx, metrics) = run_stdin(&config);
    writeln!(stdin, "offline {}", domains[1]).unwrap();
    let alert = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("an alert from the cache");
    assert!(alert.contains(&domains[1]), "{alert}");

    // The server comes back on the same port with a new value; make the sources due.
    let mut list = std::fs::read_to_string(served.join("list.txt")).unwrap();
    list.push_str(&format!("{}\n", domains[4]));
    std::fs::write(served.join("list.txt"), list).unwrap();
    let mut cmd = Command::new("python3");
    let mut back = cmd
        .arg(support_dir().join("feed_server.py"))
        .arg("--dir")
        .arg(&served)
        .args(["--port", &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("feed server back");
    let mut line = String::new();
    BufReader::new(back.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("PORT"), "{line}");
    // The sidecar retries after its backoff (30 s ± 10%); wait on the metric.
    let t0 = Instant::now();
    while ok_passes(metrics, "ft") < 1.0 {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no successful pass of ft"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The reload after the pass makes the new value match.
    assert!(
        matches_soon(&mut stdin, &rx, "online", &domains[4]),
        "the synced value never matched"
    );
    let (_, body) = crate::util::sidecar::get(metrics, "/metrics").expect("metrics");
    for m in [
        "tripline_intel_source_indicators{source=\"ft\"} 5",
        "tripline_intel_sync_last_success_timestamp_seconds{source=\"ft\"}",
        "tripline_intel_sync_bytes_total{source=\"ft\"}",
        "tripline_intel_sync_duration_seconds{source=\"ft\"}",
    ] {
        assert!(body.contains(m), "{m} missing:\n{body}");
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let _ = back.kill();
    let _ = back.wait();
}

/// The feed server stalls half-way through an event; the `intel sync` process is
/// killed with SIGKILL. The pass was staged, so the cache holds its last good version
/// (nothing, on a first pass: see `intel_sync_guard` for kills around the swap), and
/// the next sync completes it: every event once, no temporary file left, the
/// indicators those of the feed itself.
#[test]
fn kill_during_a_feed_sync_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    write_feeds(&served);
    let server = FeedServer::start(&served, None);
    let sources = format!(
        "[[intel.sources]]\nname = \"feed\"\nkind = \"misp-feed\"\nurl = \"{}\"\n",
        server.url("misp/")
    );
    let config = write_config(dir.path(), &sources);
    // Events are fetched in UUID order: stall on the fourth.
    let stall = format!("/misp/{}.json", "6c1c6c4f-5cde-474f-bb69-8e5b8b041f81");
    server.control(json!({"hang": [stall]}));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["intel", "sync", "--config", config.to_str().unwrap()])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sync");
    wait_for("the stalled request", || {
        server.log().iter().any(|r| r["path"] == stall.as_str())
    });
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let data = dir.path().join("state/intel/feed/data");
    let events = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        v.sort();
        v
    };
    // The pass ran on `staging/` (whole files, no manifest yet); `data/` still holds
    // the last good version: nothing, on a first pass.
    let partial = events(&dir.path().join("state/intel/feed/staging"));
    assert!(
        !partial.contains(&"manifest.json".to_string()),
        "{partial:?}"
    );
    assert!(partial.len() >= 3, "{partial:?}");
    assert!(events(&data).is_empty(), "{:?}", events(&data));

    server.control(json!({}));
    let out = sync(&config);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let complete = events(&data);
    assert_eq!(
        complete.len(),
        7,
        "six events and the manifest: {complete:?}"
    );
    assert!(complete.iter().all(|n| !n.starts_with('.')), "{complete:?}");
    assert!(!dir.path().join("state/intel/feed/staging").exists());
    // The cache holds what the feed holds: the same indicators, each once.
    let count = |path: &Path| -> u64 {
        let out = tripline(&[
            "intel",
            "--json",
            "--no-default-warninglists",
            "--intel",
            &format!("feed={}", path.display()),
        ]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("intel json");
        v["indicators"].as_u64().expect("indicators")
    };
    let want = count(&root().join(FEED));
    assert!(want > 100, "{want}");
    assert_eq!(count(&data), want);
    let st = status(&config);
    assert_eq!(
        source(&st, "feed")["indicators"].as_u64(),
        Some(want),
        "{st}"
    );
}

fn refused(text: &str, key: &str, needle: &str) -> String {
    let err = tripline::config::Config::parse(text, Path::new("t.toml"))
        .expect_err(text)
        .to_string();
    assert!(err.contains(key), "{key}: {err}");
    assert!(err.contains(needle), "{needle}: {err}");
    err
}

/// Plain http to a non-loopback host, userinfo, a name shared with `[intel] paths`,
/// a misspelt kind key and half-given credentials are refused at config load, naming
/// the key.
#[test]
fn config_refuses_unsafe_urls_and_names_the_key() {
    let head = "[intel]\npaths = [\"dup=fixtures/intel/traps\"]\n[[intel.sources]]\n";
    refused(
        &format!("{head}name = \"a\"\nkind = \"csv\"\nurl = \"http://192.0.2.10/x.csv\"\n"),
        "intel.sources[0].url",
        "loopback",
    );
    let err = refused(
        &format!("{head}name = \"a\"\nkind = \"csv\"\nurl = \"https://user:hunter2@feeds.example/x.csv\"\n"),
        "intel.sources[0].url",
        "user name or password",
    );
    assert!(!err.contains("hunter2"), "{err}");
    refused(
        &format!("{head}name = \"dup\"\nkind = \"freetext\"\nurl = \"https://feeds.example/x\"\n"),
        "intel.sources[0].name",
        "intel.paths[0]",
    );
    refused(
        &format!(
            "{head}name = \"a\"\nkind = \"csv\"\nurl = \"https://feeds.example/x\"\ncolum = 2\n"
        ),
        "intel.sources[0].colum",
        "unknown key",
    );
    refused(
        &format!("{head}name = \"a\"\nkind = \"taxii\"\nurl = \"https://taxii.example/api/\"\nusername = \"u\"\n"),
        "intel.sources[0].password_env",
        "username needs",
    );
    refused(
        &format!("{head}name = \"a\"\nkind = \"csv\"\nurl = \"https://x.example/\"\n[[intel.sources]]\nname = \"a\"\nkind = \"csv\"\nurl = \"https://y.example/\"\n"),
        "intel.sources[1].name",
        "duplicate",
    );
    refused(
        &format!("{head}name = \"a\"\nkind = \"ftp\"\nurl = \"https://x.example/\"\n"),
        "kind",
        "unknown variant",
    );
    refused(
        &format!("{head}name = \"a\"\nkind = \"csv\"\nurl = \"https://x.example/\"\ndestination = \"nowhere\"\n"),
        "intel.sources[0].destination",
        "nowhere",
    );
    // Loopback http, a file source and sources without paths are fine.
    let ok = "[intel]\npaths = []\n[[intel.sources]]\nname = \"a\"\nkind = \"csv\"\nurl = \"http://127.0.0.1:9/x.csv\"\ncolumn = 1\n[[intel.sources]]\nname = \"b\"\nkind = \"file\"\nurl = \"fixtures/intel/traps\"\n";
    tripline::config::Config::parse(ok, Path::new("t.toml")).expect("valid");
}

/// A feed that needs a key: the key goes out as a bearer token, and appears in no
/// status, error or file of the state directory, whether the pass works or fails.
#[test]
fn a_secret_never_appears_in_status_or_errors() {
    const KEY: &str = "s3cr3t-feed-key-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    write_feeds(&served);
    let server = FeedServer::start(&served, Some(KEY));
    let key_file = dir.path().join("feed.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let sources = format!(
        "[[intel.sources]]\nname = \"ft\"\nkind = \"freetext\"\nurl = \"{}\"\napi_key_file = {:?}\n",
        server.url("list.txt"),
        key_file.display().to_string()
    );
    let config = write_config(dir.path(), &sources);
    let out = sync(&config);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.log().iter().all(|r| r["authorization_ok"] == true));
    // A wrong key now: 401.
    std::fs::write(&key_file, "wrong-key-but-also-secret\n").unwrap();
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(2));
    let st = tripline(&[
        "intel",
        "status",
        "--json",
        "--config",
        config.to_str().unwrap(),
    ]);
    let shown = format!(
        "{}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&st.stdout)
    );
    assert!(shown.contains("401"), "{shown}");
    let mut state_text = String::new();
    for e in walk(&dir.path().join("state")) {
        state_text.push_str(&String::from_utf8_lossy(&std::fs::read(e).unwrap()));
    }
    for secret in [KEY, "wrong-key-but-also-secret"] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!state_text.contains(secret), "state leaks the key");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Every `[[intel.sources]]` key is documented in the example configuration, and the
/// example's sources validate.
#[test]
fn every_intel_source_key_is_documented() {
    let example = std::fs::read_to_string(root().join("contrib/tripline.example.toml")).unwrap();
    let start = example
        .find("[[intel.sources]]")
        .expect("an [[intel.sources]] example");
    let section = &example[start..];
    for key in [
        "name",
        "kind",
        "url",
        "collection",
        "api_key_env",
        "api_key_file",
        "username",
        "password_env",
        "password_file",
        "interval_secs",
        "timeout_secs",
        "ca_file",
        "proxy",
        "destination",
        "column",
        "delimiter",
        "skip_header",
    ] {
        assert!(
            section.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{key} =")) || l.starts_with(&format!("{key}="))
            }),
            "{key} is not documented in contrib/tripline.example.toml"
        );
    }
}

/// SIGHUP makes `tripline run` sync every remote source at once (besides reloading
/// the intel), not at the end of its interval: the feed gains a value, the sidecar
/// (cache fresh, interval an hour) has made no pass; after SIGHUP one pass runs and
/// the new value matches.
#[test]
fn sighup_syncs_every_source_now() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    write_feeds(&served);
    let server = FeedServer::start(&served, None);
    let config = write_config(
        dir.path(),
        &format!(
            "[[intel.sources]]\nname = \"ft\"\nkind = \"freetext\"\nurl = \"{}\"\ninterval_secs = 3600\n",
            server.url("list.txt")
        ),
    );
    assert_eq!(sync(&config).status.code(), Some(0));
    let domains = trail("trails-domains.txt", 5);
    let (mut child, mut stdin, rx, metrics) = run_stdin(&config);
    // Ready, and matching from the cache.
    writeln!(stdin, "cached {}", domains[1]).unwrap();
    let alert = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("an alert from the cache");
    assert!(alert.contains(&domains[1]), "{alert}");
    let passes = || ok_passes(metrics, "ft");
    assert_eq!(
        passes(),
        0.0,
        "the cache is fresh: no pass before its interval"
    );
    let mut list = std::fs::read_to_string(served.join("list.txt")).unwrap();
    list.push_str(&format!("{}\n", domains[4]));
    std::fs::write(served.join("list.txt"), list).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for("a pass after SIGHUP", || passes() >= 1.0);
    assert!(
        matches_soon(&mut stdin, &rx, "fresh", &domains[4]),
        "the value synced after SIGHUP never matched"
    );
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
}
