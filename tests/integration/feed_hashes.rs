//! A MISP-format feed's `hashes.csv` (issue 11, point 1): fetched conditionally on
//! every pass and, when it changed, checked against the cached events, so that an
//! event edited without a new manifest timestamp is fetched again.
//!
//! The feed is the real Infoblox fixture feed (`intel_sync::write_feeds`); its
//! `hashes.csv` is written by PyMISP's own `MISPEvent.attributes_hashes('md5')`, the
//! function PyMISP's feed generator uses, so our hashing is checked against theirs.

use std::path::Path;
use std::process::Command;

use crate::intel_sync::{
    hunt, matched, source, status, sync, write_config, write_feeds, FeedServer, FEED_VALUE,
    RESTAMPED_EVENT,
};
use crate::util::require_python_module;

/// Writes `hashes.csv` for the feed in `misp` as PyMISP's feed generator does.
fn pymisp_hashes(misp: &Path) {
    let script = r#"
import sys, pathlib
from pymisp import MISPEvent
d = pathlib.Path(sys.argv[1])
lines = []
for f in sorted(d.glob('*.json')):
    if f.name == 'manifest.json':
        continue
    e = MISPEvent()
    e.load_file(str(f))
    lines += [f'{h},{e.uuid}' for h in e.attributes_hashes('md5')]
(d / 'hashes.csv').write_text(''.join(l + '\n' for l in lines))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(misp)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pymisp hashes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sync_ok(config: &Path) {
    let out = sync(config);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One sync: the requests it made, sorted, as `(path, status)`.
fn sync_requests(server: &FeedServer, config: &Path) -> Vec<(String, u64)> {
    let before = server.log().len();
    sync_ok(config);
    let mut got = server.requests_since(before);
    got.sort();
    got
}

#[test]
fn feed_hashes_csv_refetches_an_event_edited_without_a_new_timestamp() {
    require_python_module("pymisp", "pymisp");
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    write_feeds(&served);
    let misp = served.join("misp");
    pymisp_hashes(&misp);
    let server = FeedServer::start(&served, None);
    let config = write_config(
        dir.path(),
        &format!(
            "[[intel.sources]]\nname = \"feed\"\nkind = \"misp-feed\"\nurl = \"{}\"\n",
            server.url("misp/")
        ),
    );
    sync_ok(&config);
    let first = server.requests_since(0);
    assert!(
        first.contains(&("/misp/hashes.csv".to_string(), 200)),
        "{first:?}"
    );
    assert_eq!(
        first
            .iter()
            .filter(|(p, _)| p.ends_with(".json") && !p.ends_with("manifest.json"))
            .count(),
        6,
        "{first:?}"
    );

    // hashes.csv changes (a line that is not `md5,uuid` added) while every event
    // holds still: it is checked against all six cached events, which agree with
    // PyMISP's hashes, so nothing is fetched again; the bad line is ignored.
    let mut text = std::fs::read_to_string(misp.join("hashes.csv")).unwrap();
    text.push_str("not-a-hash,not-a-uuid\n");
    std::fs::write(misp.join("hashes.csv"), text).unwrap();
    assert_eq!(
        sync_requests(&server, &config),
        vec![
            ("/misp/hashes.csv".to_string(), 200),
            ("/misp/manifest.json".to_string(), 304),
        ]
    );
    // Nothing changed: both answered 304.
    assert_eq!(
        sync_requests(&server, &config),
        vec![
            ("/misp/hashes.csv".to_string(), 304),
            ("/misp/manifest.json".to_string(), 304),
        ]
    );

    // An attribute value is edited in one event, its manifest timestamp kept; the
    // feed's hashes.csv is generated again. Only that event is fetched again.
    let event = misp.join(format!("{RESTAMPED_EVENT}.json"));
    let body = std::fs::read_to_string(&event).unwrap();
    let edited = "edited-without-restamp.example";
    assert!(body.contains(FEED_VALUE));
    std::fs::write(&event, body.replace(FEED_VALUE, edited)).unwrap();
    pymisp_hashes(&misp);
    assert_eq!(
        sync_requests(&server, &config),
        vec![
            (format!("/misp/{RESTAMPED_EVENT}.json"), 200),
            ("/misp/hashes.csv".to_string(), 200),
            ("/misp/manifest.json".to_string(), 304),
        ]
    );
    let st = status(&config);
    assert_eq!(source(&st, "feed")["last_pass"]["changed"], true, "{st}");
    let hits = hunt(
        dir.path(),
        &config,
        &[
            &format!("dns query {edited}"),
            &format!("dns query {FEED_VALUE}"),
        ],
    );
    assert_eq!(
        matched(&hits, edited),
        Some(("feed".into(), vec!["feed".into()])),
        "{hits:?}"
    );
    assert!(matched(&hits, FEED_VALUE).is_none(), "{hits:?}");
}
