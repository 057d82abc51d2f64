//! The retro observation store (issue 12, point 1): `tripline hunt --record DIR` over
//! real log samples (fixtures/logs), then the store probed through the library. The
//! expected first/last times and counts are computed here from the logs' own columns
//! (Apache's client address and bracketed time, Zeek's `ts`, `server_name` and
//! `cert_chain_fps`), independently of the matcher. And a property over generated
//! lines: every observable put in is found, with its times and count; others are not.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use tripline::hunt::{hunt, HuntOptions, RecordOptions};
use tripline::index::{BuildOptions, Index};
use tripline::intel::warninglist::Warninglists;
use tripline::intel::{IntelStore, Kind, StoreOptions};
use tripline::retro::{Observed, Store};
use tripline::source::batch::Input;

use crate::util::{root, tripline};

/// (first, last, count) per UTC day start.
type PerDay = BTreeMap<i64, (i64, i64, u64)>;

fn add(per: &mut PerDay, t: i64) {
    let day = t.div_euclid(86_400) * 86_400;
    let e = per.entry(day).or_insert((t, t, 0));
    e.0 = e.0.min(t);
    e.1 = e.1.max(t);
    e.2 += 1;
}

fn got(obs: &[Observed]) -> PerDay {
    obs.iter()
        .map(|o| (o.slice, (o.first.timestamp(), o.last.timestamp(), o.count)))
        .collect()
}

/// Is `ip` in `line` as a whole address (not inside a longer number or dotted word)?
fn has_ip(line: &str, ip: &str) -> bool {
    line.match_indices(ip).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + ip.len()..].chars().next();
        let after2 = line[i + ip.len()..].chars().nth(1);
        let glued_before = before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.');
        let glued_after = after.is_some_and(|c| c.is_ascii_alphanumeric())
            || (after == Some('.') && after2.is_some_and(|c| c.is_ascii_digit()));
        !glued_before && !glued_after
    })
}

fn record_fixtures(store: &Path) {
    let intel = store.with_extension("txt");
    std::fs::write(&intel, "203.0.113.9\n").unwrap();
    let cfg = store.with_extension("toml");
    let text = format!(
        "[intel]\npaths = [{:?}]\n[retro]\nretention_days = 3650\n",
        intel.display().to_string()
    );
    std::fs::write(&cfg, text).unwrap();
    let out = tripline(&[
        "hunt",
        "--intel",
        intel.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--record",
        store.to_str().unwrap(),
        "-q",
        "-c",
        "fixtures/logs/apache_access.log",
        "fixtures/logs/zeek_ssl.log",
        "fixtures/logs/zeek_dns.log",
    ]);
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "hunt --record failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hunt_record_over_real_logs_then_probe() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("retro");
    record_fixtures(&dir);
    let store = Store::open(&dir).unwrap();
    let stats = store.stats();
    // Apache: 17–20 May 2015; Zeek: 24 March 2018.
    assert_eq!(stats.slices, 5, "{stats:?}");

    // Apache: the client address and the bracketed time of every line.
    let apache = std::fs::read_to_string(root().join("fixtures/logs/apache_access.log")).unwrap();
    let lines: Vec<(&str, i64)> = apache
        .lines()
        .map(|l| {
            let open = l.find('[').unwrap();
            let close = l.find(']').unwrap();
            let t = DateTime::parse_from_str(&l[open + 1..close], "%d/%b/%Y:%H:%M:%S %z")
                .unwrap()
                .timestamp();
            (l, t)
        })
        .collect();
    let mut clients: HashMap<&str, usize> = HashMap::new();
    for (l, _) in &lines {
        *clients.entry(l.split(' ').next().unwrap()).or_default() += 1;
    }
    let mut by_count: Vec<(&str, usize)> = clients.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    // The busiest clients and some seen once.
    let picked: Vec<&str> = by_count
        .iter()
        .take(8)
        .chain(by_count.iter().rev().take(8))
        .map(|c| c.0)
        .collect();
    for ip in &picked {
        let mut want = PerDay::new();
        for (l, t) in &lines {
            if has_ip(l, ip) {
                add(&mut want, *t);
            }
        }
        let obs = store.probe(Kind::Ipv4, ip, None);
        assert_eq!(got(&obs), want, "{ip}");
        assert!(obs.iter().all(|o| o.value.as_deref() == Some(*ip)));
        assert!(obs
            .iter()
            .all(|o| o.sources.iter().any(|s| s.ends_with("apache_access.log"))));
    }
    // A CIDR: every client address in 83.149.0.0/16 is found, and nothing outside.
    let cidr = store.probe_cidr("83.149.0.0/16".parse().unwrap(), None);
    let found: HashSet<String> = cidr.iter().filter_map(|o| o.value.clone()).collect();
    let want: HashSet<String> = by_count
        .iter()
        .filter(|c| c.0.starts_with("83.149."))
        .map(|c| c.0.to_string())
        .collect();
    assert!(!want.is_empty());
    assert!(want.is_subset(&found), "{want:?} ⊄ {found:?}");
    assert!(found.iter().all(|a| a.starts_with("83.149.")), "{found:?}");

    // Zeek ssl: certificate fingerprints (SHA-256) and server names, at `ts`.
    let ssl = std::fs::read_to_string(root().join("fixtures/logs/zeek_ssl.log")).unwrap();
    let fields: Vec<&str> = ssl
        .lines()
        .find(|l| l.starts_with("#fields"))
        .unwrap()
        .split('\t')
        .skip(1)
        .collect();
    let col = |n: &str| fields.iter().position(|f| *f == n).unwrap();
    let (ts, sni, fps) = (col("ts"), col("server_name"), col("cert_chain_fps"));
    let mut hashes: HashMap<String, PerDay> = HashMap::new();
    let mut names: HashMap<String, PerDay> = HashMap::new();
    for l in ssl.lines().filter(|l| !l.starts_with('#')) {
        let c: Vec<&str> = l.split('\t').collect();
        let t = c[ts].split('.').next().unwrap().parse::<i64>().unwrap();
        let mut seen = HashSet::new();
        for h in c[fps].split(',').filter(|h| h.len() == 64) {
            if seen.insert(h) {
                add(hashes.entry(h.to_string()).or_default(), t);
            }
        }
        if c[sni] != "-" {
            add(names.entry(c[sni].to_string()).or_default(), t);
        }
    }
    assert!(hashes.len() > 3);
    for (h, want) in &hashes {
        assert_eq!(got(&store.probe(Kind::Sha256, h, None)), *want, "{h}");
        // Any case in, the canonical (lower-case) value probed.
        assert!(store.probe(Kind::Sha1, &h[..40], None).is_empty());
    }
    for name in [
        "ise.wrccdc.org",
        "wiki.dovecot.org",
        "accounts-static.cdn.mozilla.net",
    ] {
        let ssl_only: PerDay = got(&store.probe(Kind::Hostname, name, None));
        // The name is also in zeek_dns.log on the same day: at least the ssl lines.
        let want = &names[name];
        for (day, (f, l, n)) in want {
            let (gf, gl, gn) = ssl_only[day];
            assert!(
                gf <= *f && gl >= *l && gn >= *n,
                "{name}: {:?} vs {want:?}",
                ssl_only
            );
        }
    }
    // A domain finds every subdomain seen, on label boundaries.
    let under: Vec<String> = store
        .probe_domain("wrccdc.org", None)
        .into_iter()
        .filter_map(|o| o.value)
        .collect();
    assert!(under.contains(&"ise.wrccdc.org".to_string()), "{under:?}");
    assert!(under
        .iter()
        .all(|n| n.ends_with(".wrccdc.org") || n == "wrccdc.org"));
    let mozilla: Vec<String> = store
        .probe_domain("mozilla.net", None)
        .into_iter()
        .filter_map(|o| o.value)
        .collect();
    assert!(mozilla.contains(&"accounts-static.cdn.mozilla.net".to_string()));
    assert!(!store.probe_domain("cdn.mozilla.net", None).is_empty());
    assert!(store.probe_domain("dn.mozilla.net", None).is_empty());

    // Values not in the logs.
    let all = format!("{apache}{ssl}");
    for ip in ["203.0.113.77", "10.164.94.121", "83.149.9.1"] {
        assert!(!has_ip(&all, ip), "{ip} is in the logs");
        assert!(store.probe(Kind::Ipv4, ip, None).is_empty(), "{ip}");
    }
    assert!(store.probe(Kind::Sha256, &"ab".repeat(32), None).is_empty());
    assert!(store.probe_domain("not-in-these-logs.com", None).is_empty());
    assert!(store
        .probe_cidr("198.51.100.0/24".parse().unwrap(), None)
        .is_empty());
    // `since` after the Apache days leaves them out.
    let since = DateTime::parse_from_rfc3339("2016-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    assert!(store.probe(Kind::Ipv4, picked[0], Some(since)).is_empty());
}

fn empty_index() -> Index {
    Index::build(
        IntelStore::new(StoreOptions::default()),
        &Warninglists::new(),
        BuildOptions::default(),
    )
}

/// One generated line: (second of the day, address, host labels, md5 bytes, user).
type Gen = (u32, u32, Vec<String>, [u8; 16], String);

fn gen_line() -> impl Strategy<Value = Gen> {
    (
        0u32..86_400 * 2,
        1u32..0xdfff_ffff,
        prop::collection::vec("[a-z]{2,8}", 1..4),
        any::<[u8; 16]>(),
        "[a-z]{3,8}",
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn every_recorded_observable_is_found_and_nothing_else(
        lines in prop::collection::vec(gen_line(), 1..60),
        others in prop::collection::vec(1u32..0xdfff_ffff, 20),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let base = 1_714_521_600i64; // 2024-05-01T00:00:00Z
        let mut text = String::new();
        // Expected per value: per day (first, last, count).
        let mut want: HashMap<(Kind, String), PerDay> = HashMap::new();
        for (sec, ip, labels, md5, user) in &lines {
            let t = base + i64::from(*sec);
            let stamp = DateTime::<Utc>::from_timestamp(t, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ");
            let addr = std::net::Ipv4Addr::from(*ip).to_string();
            let host = format!("{}.evil-gen.com", labels.join("."));
            let md5: String = md5.iter().map(|b| format!("{b:02x}")).collect();
            text.push_str(&format!(
                "{stamp} gen01 src={addr} url=http://{host}/p/x?q=1 md5={md5} from {user}@{host}\n"
            ));
            let mut vals: Vec<(Kind, String)> = vec![
                (Kind::Ipv4, addr),
                (Kind::Hostname, host.clone()),
                (Kind::Md5, md5),
                (Kind::Email, format!("{user}@{host}")),
                (Kind::Url, format!("{host}/p/x?q=1")),
                (Kind::Url, format!("{host}/p/x")),
            ];
            vals.sort();
            vals.dedup();
            for v in vals {
                add(want.entry(v).or_default(), t);
            }
        }
        let log = tmp.path().join("gen.log");
        std::fs::write(&log, &text).unwrap();
        let dir = tmp.path().join("retro");
        let opts = HuntOptions {
            count_only: true,
            record: Some(RecordOptions { dir: dir.clone(), retention_days: 30, max_bytes: 1 << 30 }),
            ..HuntOptions::default()
        };
        hunt(&empty_index(), &[Input::Path(log.clone())], &opts, std::io::sink()).unwrap();
        // The same over three workers and tiny chunks: batches merged in any order.
        let split = tmp.path().join("retro-split");
        let opts_split = HuntOptions {
            threads: 3,
            chunk_bytes: 300,
            record: Some(RecordOptions { dir: split.clone(), retention_days: 30, max_bytes: 1 << 30 }),
            ..opts.clone()
        };
        hunt(&empty_index(), &[Input::Path(log)], &opts_split, std::io::sink()).unwrap();
        let store = Store::open(&dir).unwrap();
        let store_split = Store::open(&split).unwrap();
        prop_assert_eq!(store.stats().entries, store_split.stats().entries);
        for ((kind, value), per) in &want {
            prop_assert_eq!(&got(&store.probe(*kind, value, None)), per, "{:?} {}", kind, value);
            prop_assert_eq!(&got(&store_split.probe(*kind, value, None)), per, "{:?} {}", kind, value);
        }
        // Every host is under its domain.
        let under = store.probe_domain("evil-gen.com", None);
        let hosts: HashSet<&str> = want.keys().filter(|k| k.0 == Kind::Hostname).map(|k| k.1.as_str()).collect();
        let found: HashSet<&str> = under.iter().filter_map(|o| o.value.as_deref()).collect();
        prop_assert_eq!(found, hosts);
        for ip in others {
            let addr = std::net::Ipv4Addr::from(ip).to_string();
            if !want.contains_key(&(Kind::Ipv4, addr.clone())) {
                prop_assert!(store.probe(Kind::Ipv4, &addr, None).is_empty(), "{}", addr);
            }
            let fake = format!("x{ip}.evil-gen.com");
            prop_assert!(store.probe(Kind::Hostname, &fake, None).is_empty());
            let md5 = format!("{:032x}", u128::from(ip) * 7919);
            prop_assert!(store.probe(Kind::Md5, &md5, None).is_empty());
        }
        prop_assert!(store.probe_domain("evil-gen.org", None).is_empty());
    }
}

/// Runs `tripline run --stdin` over `logs` with `[retro]` set as `retro`; returns the
/// state directory.
fn run_stdin(dir: &Path, logs: &[u8], retro: &str) -> std::path::PathBuf {
    use std::io::Write;
    let intel = dir.join("intel.txt");
    std::fs::write(&intel, "203.0.113.9\n").unwrap();
    let state = dir.join("state");
    let config = dir.join("tripline.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\npaths = [{:?}]\n[metrics]\nenabled = false\n[state]\ndir = {:?}\n[retro]\n{retro}\n",
            intel.display().to_string(),
            state.display().to_string()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tripline"))
        .args(["run", "--stdin", "--config", config.to_str().unwrap()])
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(logs).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    state
}

/// `tripline run` records what `hunt --record` records from the same lines (the
/// store is sealed when the input ends), under `<state>/retro/`; `enabled = false`
/// records nothing.
#[test]
fn run_records_what_hunt_records() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = std::fs::read(root().join("fixtures/logs/zeek_ssl.log")).unwrap();
    let state = run_stdin(tmp.path(), &logs, "enabled = true\nretention_days = 3650");
    let live = Store::open(&state.join("retro")).unwrap();
    let hunted_dir = tmp.path().join("hunted");
    let opts = HuntOptions {
        count_only: true,
        record: Some(RecordOptions {
            dir: hunted_dir.clone(),
            retention_days: 3650,
            max_bytes: 1 << 30,
        }),
        ..HuntOptions::default()
    };
    let log = root().join("fixtures/logs/zeek_ssl.log");
    hunt(&empty_index(), &[Input::Path(log)], &opts, std::io::sink()).unwrap();
    let hunted = Store::open(&hunted_dir).unwrap();
    assert_eq!(live.stats().entries, hunted.stats().entries);
    assert!(live.stats().entries > 100, "{:?}", live.stats());
    let text = String::from_utf8_lossy(&logs);
    let mut probed = 0;
    for l in text.lines().filter(|l| !l.starts_with('#')).step_by(50) {
        let c: Vec<&str> = l.split('\t').collect();
        for ip in [c[2], c[4]] {
            let kind = if ip.contains(':') {
                Kind::Ipv6
            } else {
                Kind::Ipv4
            };
            let a = got(&live.probe(kind, ip, None));
            assert!(!a.is_empty(), "{ip}");
            assert_eq!(a, got(&hunted.probe(kind, ip, None)), "{ip}");
            probed += 1;
        }
    }
    assert!(probed > 50);

    let off = tempfile::tempdir().unwrap();
    let state = run_stdin(off.path(), &logs, "enabled = false");
    assert!(!state.join("retro").exists());
}
