//! Intel sync, issue 11 points 1, 3 and 5, end to end with the real binary and the
//! feed server of `intel_sync` (`util/feed_server.py`): the shrink guard holds a pass
//! that would empty a source (old indicators keep matching, status and exit code say
//! so, `--accept-shrink` applies it), a small shrink applies, a per-source
//! `max_shrink_ratio` overrides `[intel]`'s, a half-done swap still loads; a MISP
//! source's sightings go to the MISP destination at the same server (or the one it
//! names); one value from two feeds is one indicator with both provenances, and a
//! feed dropping it removes only its provenance.
//!
//! Feed contents are built at test time from values of `fixtures/intel/trails`; the
//! sighting test uses `fixtures/intel/traps` and `fixtures/logs/traps.log`.

use std::path::Path;

use serde_json::Value;

use crate::intel_sync::{
    hunt, matched, source, status, sync, trail, tripline, write_config, FeedServer,
};
use crate::util::root;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sync_one(config: &Path, name: &str, accept: bool) -> std::process::Output {
    let mut args = vec![
        "intel",
        "sync",
        "--config",
        config.to_str().unwrap(),
        "--source",
        name,
    ];
    if accept {
        args.push("--accept-shrink");
    }
    tripline(&args)
}

/// A freetext feed that suddenly answers an empty list is held: exit 2, the old
/// indicators still match, status shows `held` and a `last_error` naming the command;
/// `--accept-shrink` applies it. A second source with its own, stricter
/// `max_shrink_ratio` is held for a shrink the default lets through.
#[test]
fn an_emptied_feed_is_held_until_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let domains = trail("trails-domains.txt", 8);
    let list = |d: &[String]| d.iter().map(|v| format!("{v}\n")).collect::<String>();
    std::fs::write(served.join("a.txt"), list(&domains[..4])).unwrap();
    std::fs::write(served.join("b.txt"), list(&domains[4..8])).unwrap();
    let server = FeedServer::start(&served, None);
    let config = write_config(
        dir.path(),
        &format!(
            "max_shrink_ratio = 0.5\n\
             [[intel.sources]]\nname = \"a\"\nkind = \"freetext\"\nurl = \"{}\"\n\
             [[intel.sources]]\nname = \"b\"\nkind = \"freetext\"\nurl = \"{}\"\nmax_shrink_ratio = 0.1\n",
            server.url("a.txt"),
            server.url("b.txt"),
        ),
    );
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let st = status(&config);
    assert_eq!(source(&st, "a")["indicators"], 4, "{st}");
    assert_eq!(source(&st, "b")["indicators"], 4, "{st}");
    assert_eq!(source(&st, "b")["max_shrink_ratio"], 0.1, "{st}");

    // `a` answers an empty list; `b` drops one value of four (25%).
    std::fs::write(served.join("a.txt"), "# nothing today\n").unwrap();
    std::fs::write(served.join("b.txt"), list(&domains[4..7])).unwrap();
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("held for review: would shrink from 4 to 0 indicators")
            && err.contains("tripline intel sync --source a --accept-shrink"),
        "{err}"
    );
    assert!(
        err.contains("would shrink from 4 to 3 indicators"),
        "b's own ratio 0.1 holds a 25% shrink: {err}"
    );
    let st = status(&config);
    let a = source(&st, "a");
    assert_eq!(
        a["indicators"], 4,
        "the cache still holds the last good: {a}"
    );
    assert_eq!(a["held"]["indicators_before"], 4, "{a}");
    assert_eq!(a["held"]["indicators_after"], 0, "{a}");
    assert!(a["held"]["at"].is_string(), "{a}");
    assert!(
        a["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("held for review")),
        "{a}"
    );
    let state = dir.path().join("state/intel/a");
    assert!(
        state.join("held").is_dir(),
        "the held pass is kept for review"
    );
    assert!(!state.join("staging").exists());
    let lines: Vec<String> = domains[..4]
        .iter()
        .map(|d| format!("dns query {d}"))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let hits = hunt(dir.path(), &config, &refs);
    for d in &domains[..4] {
        assert_eq!(
            matched(&hits, d).map(|m| m.0),
            Some("a".to_string()),
            "{hits:?}"
        );
    }
    // Held again at the next pass (the server still answers nothing).
    let out = sync_one(&config, "a", false);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Accepted: applied, the hold cleared, the values gone.
    let out = sync_one(&config, "a", true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let st = status(&config);
    let a = source(&st, "a");
    assert_eq!(a["indicators"], 0, "{a}");
    assert!(a["held"].is_null() && a["last_error"].is_null(), "{a}");
    assert!(!state.join("held").exists());
    assert!(
        source(&st, "b")["held"].is_object(),
        "b is still held: {st}"
    );
    let hits = hunt(dir.path(), &config, &refs);
    assert!(matched(&hits, &domains[0]).is_none(), "{hits:?}");

    // --accept-shrink needs --source.
    let out = tripline(&[
        "intel",
        "sync",
        "--config",
        config.to_str().unwrap(),
        "--accept-shrink",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--source"), "{}", stderr(&out));
}

/// A shrink within the ratio applies as any pass does; a source recovering from a
/// hold on its own clears it.
#[test]
fn a_small_shrink_applies_and_a_recovered_feed_clears_the_hold() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let domains = trail("trails-domains.txt", 6);
    let list = |d: &[String]| d.iter().map(|v| format!("{v}\n")).collect::<String>();
    std::fs::write(served.join("a.txt"), list(&domains[..6])).unwrap();
    let server = FeedServer::start(&served, None);
    let config = write_config(
        dir.path(),
        &format!(
            "[[intel.sources]]\nname = \"a\"\nkind = \"freetext\"\nurl = \"{}\"\n",
            server.url("a.txt")
        ),
    );
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // 6 → 3: exactly half, the default limit: applied.
    std::fs::write(served.join("a.txt"), list(&domains[..3])).unwrap();
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let st = status(&config);
    assert_eq!(source(&st, "a")["indicators"], 3, "{st}");
    assert!(source(&st, "a")["held"].is_null(), "{st}");
    // 3 → 1: held; then the feed comes back: applied, hold cleared.
    std::fs::write(served.join("a.txt"), list(&domains[..1])).unwrap();
    assert_eq!(sync(&config).status.code(), Some(2));
    assert!(source(&status(&config), "a")["held"].is_object());
    std::fs::write(served.join("a.txt"), list(&domains[..4])).unwrap();
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let st = status(&config);
    assert_eq!(source(&st, "a")["indicators"], 4, "{st}");
    assert!(source(&st, "a")["held"].is_null(), "{st}");
    assert!(!dir.path().join("state/intel/a/held").exists());
}

/// What a kill -9 in the middle of a swap leaves: after the directory exchange but
/// before the old copy was moved aside (`staging/` holds the old data), and half-way
/// through the two-rename fallback (no `data/`, the good copy in `old/`). Either way
/// the cache loads with its last good data, and the next pass puts it in order.
#[test]
fn a_kill_around_the_swap_leaves_a_loadable_cache() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let domains = trail("trails-domains.txt", 4);
    std::fs::write(served.join("a.txt"), format!("{}\n", domains[0])).unwrap();
    let server = FeedServer::start(&served, None);
    let config = write_config(
        dir.path(),
        &format!(
            "[[intel.sources]]\nname = \"a\"\nkind = \"freetext\"\nurl = \"{}\"\n",
            server.url("a.txt")
        ),
    );
    assert_eq!(sync(&config).status.code(), Some(0));
    let src = dir.path().join("state/intel/a");
    let q = format!("dns query {}", domains[0]);

    // Killed between `data` → `old` and `staging` → `data`.
    std::fs::rename(src.join("data"), src.join("old")).unwrap();
    let hits = hunt(dir.path(), &config, &[q.as_str()]);
    assert!(matched(&hits, &domains[0]).is_some(), "{hits:?}");
    std::fs::write(
        served.join("a.txt"),
        format!("{}\n{}\n", domains[0], domains[1]),
    )
    .unwrap();
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(src.join("data").is_dir() && !src.join("old").exists());
    assert_eq!(source(&status(&config), "a")["indicators"], 2);

    // Killed after the exchange, before the old copy was moved aside: `staging/`
    // holds a complete older copy, with the older cursor (resumed from, harmlessly).
    let staging = src.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("feed.txt"), format!("{}\n", domains[0])).unwrap();
    let hits = hunt(dir.path(), &config, &[q.as_str()]);
    assert!(matched(&hits, &domains[0]).is_some(), "{hits:?}");
    std::fs::write(
        served.join("a.txt"),
        format!("{}\n{}\n{}\n", domains[0], domains[1], domains[2]),
    )
    .unwrap();
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!staging.exists());
    assert_eq!(source(&status(&config), "a")["indicators"], 3);
    let q2 = format!("dns query {}", domains[2]);
    let hits = hunt(dir.path(), &config, &[q2.as_str()]);
    assert!(matched(&hits, &domains[2]).is_some(), "{hits:?}");
}

/// Confirmed sightings of a MISP source's indicators go to the MISP destination at
/// the same server (URL written differently), never to an unrelated destination; a
/// source naming a destination goes there instead (explicit wins).
#[test]
fn a_misp_source_pairs_with_the_destination_at_its_server() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // The MISP source's cache, pre-filled (no MISP fetch needed): the traps list.
    let data = state.join("intel/isac/data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(
        root().join("fixtures/intel/traps/traps.txt"),
        data.join("traps.txt"),
    )
    .unwrap();
    let write = |destination: &str| {
        let path = dir.path().join("tripline.toml");
        std::fs::write(
            &path,
            format!(
                "[intel]\npaths = []\n\
                 [[intel.sources]]\nname = \"isac\"\nkind = \"misp\"\nurl = \"http://127.0.0.1:9/misp/\"\napi_key_env = \"ISAC_KEY\"\n{destination}\
                 [[share.destinations]]\nname = \"isac-misp\"\nlist_event_uuids = [\"5e6a7b8c-0000-4000-8000-000000000001\"]\n\
                 [share.destinations.transport]\ntype = \"misp\"\nurl = \"http://LOCALHOST:9/misp\"\napi_key_env = \"ISAC_KEY\"\n\
                 [[share.destinations]]\nname = \"unrelated\"\n\
                 [share.destinations.transport]\ntype = \"stix_dir\"\npath = {:?}\n\
                 [state]\ndir = {:?}\n",
                dir.path().join("bundles").display().to_string(),
                state.display().to_string()
            )
            .replace("LOCALHOST", "127.0.0.1"),
        )
        .unwrap();
        path
    };
    let shared = |config: &Path| -> Value {
        let out_path = dir.path().join("share.json");
        let _ = std::fs::remove_file(&out_path);
        let out = tripline(&[
            "hunt",
            "-q",
            "--config",
            config.to_str().unwrap(),
            "--default-rules",
            "--sightings-out",
            out_path.to_str().unwrap(),
            root().join("fixtures/logs/traps.log").to_str().unwrap(),
        ]);
        assert!(
            matches!(out.status.code(), Some(0) | Some(1)),
            "{}",
            stderr(&out)
        );
        serde_json::from_str(&std::fs::read_to_string(&out_path).expect("sightings out"))
            .expect("sightings json")
    };
    let bodies = |v: &Value, dest: &str| -> String {
        v.get(dest)
            .map(|d| d["bodies"].to_string())
            .unwrap_or_default()
    };

    let config = write("");
    let st = status(&config);
    assert_eq!(
        source(&st, "isac")["destinations"],
        serde_json::json!(["isac-misp"]),
        "{st}"
    );
    let v = shared(&config);
    assert!(
        bodies(&v, "isac-misp").contains("91.198.51.77"),
        "paired by URL: {v}"
    );
    assert!(!bodies(&v, "unrelated").contains("91.198.51.77"), "{v}");

    let config = write("destination = \"unrelated\"\n");
    let st = status(&config);
    assert_eq!(
        source(&st, "isac")["destinations"],
        serde_json::json!(["unrelated"]),
        "{st}"
    );
    let v = shared(&config);
    assert!(bodies(&v, "unrelated").contains("91.198.51.77"), "{v}");
    assert!(
        !bodies(&v, "isac-misp").contains("91.198.51.77"),
        "explicit wins: {v}"
    );

    // A destination no [[share.destinations]] has is refused at load.
    let config = write("destination = \"nowhere\"\n");
    let out = tripline(&["intel", "status", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("intel.sources[0].destination") && stderr(&out).contains("nowhere"),
        "{}",
        stderr(&out)
    );
}

/// One value served by a freetext feed and a CSV feed is one indicator with both
/// provenances; when the CSV feed drops it, it still matches, from the freetext feed
/// only.
#[test]
fn one_value_from_two_feeds_has_both_provenances() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let ips = trail("trails-ipv4.txt", 4);
    std::fs::write(served.join("list.txt"), format!("{}\n{}\n", ips[0], ips[1])).unwrap();
    let csv = |rows: &[&String]| {
        let mut t = String::from("first_seen,ip\n");
        for ip in rows {
            t.push_str(&format!("2024-05-01,{ip}\n"));
        }
        t
    };
    std::fs::write(served.join("iocs.csv"), csv(&[&ips[0], &ips[2], &ips[3]])).unwrap();
    let server = FeedServer::start(&served, None);
    let config = write_config(
        dir.path(),
        &format!(
            "[[intel.sources]]\nname = \"ft\"\nkind = \"freetext\"\nurl = \"{}\"\n\
             [[intel.sources]]\nname = \"ips\"\nkind = \"csv\"\nurl = \"{}\"\ncolumn = \"ip\"\n",
            server.url("list.txt"),
            server.url("iocs.csv"),
        ),
    );
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = format!("conn from {} ok", ips[0]);
    let hits = hunt(dir.path(), &config, &[line.as_str()]);
    let ours: Vec<_> = hits.iter().filter(|h| h.0 == ips[0]).collect();
    assert_eq!(ours.len(), 1, "one indicator, one enrichment: {hits:?}");
    let mut names = ours[0].2.clone();
    names.sort();
    assert_eq!(names, ["ft", "ips"], "{hits:?}");

    std::fs::write(served.join("iocs.csv"), csv(&[&ips[2], &ips[3]])).unwrap();
    let out = sync(&config);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(source(&status(&config), "ips")["indicators"], 2);
    let hits = hunt(dir.path(), &config, &[line.as_str()]);
    assert_eq!(
        matched(&hits, &ips[0]),
        Some(("ft".to_string(), vec!["ft".to_string()])),
        "{hits:?}"
    );
}
