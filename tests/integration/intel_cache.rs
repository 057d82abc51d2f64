//! The intel cache snapshot (`src/intel/snapshot.rs`): loading a synced source's data
//! through its snapshot gives the same intel as parsing the data, when the snapshot
//! is fresh, after a file changed, when it is corrupt, and under other options.
//!
//! Data: real intel fixtures (`fixtures/intel/misp/infoblox-feed`, a MISP-format feed
//! whose manifest lists events without files; `fixtures/intel/stix`;
//! `fixtures/intel/trails`) copied into a state directory's cache layout
//! (`<state>/intel/<name>/data/`) and, for the comparison, to a plain directory the
//! snapshot is never used for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tripline::index::build::{build_index, IntelPlan};
use tripline::intel::load::{load_intel, IntelSpec, LoadOptions};
use tripline::intel::{IntelStore, StoreOptions};
use tripline::share::outbox::IntelView;

use crate::util::root;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

/// A state directory with two synced sources (a MISP feed, STIX + lists) and plain
/// copies of the same data.
struct Setup {
    _dir: tempfile::TempDir,
    cache: Vec<IntelSpec>,
    plain: Vec<IntelSpec>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = root().join("fixtures/intel");
    let mut cache = Vec::new();
    let mut plain = Vec::new();
    for (name, parts) in [
        ("isac", vec![fx.join("misp/infoblox-feed")]),
        ("cert", vec![fx.join("stix"), fx.join("trails")]),
    ] {
        for (base, list) in [
            (
                dir.path().join("state/intel").join(name).join("data"),
                &mut cache,
            ),
            (dir.path().join("plain").join(name), &mut plain),
        ] {
            for p in &parts {
                if name == "isac" {
                    copy_dir(p, &base);
                } else {
                    copy_dir(p, &base.join(p.file_name().expect("name")));
                }
            }
            list.push(IntelSpec {
                name: Some(name.to_string()),
                path: base,
            });
        }
    }
    Setup {
        _dir: dir,
        cache,
        plain,
    }
}

fn snapshot_of(spec: &IntelSpec) -> PathBuf {
    spec.path
        .parent()
        .expect("source dir")
        .join(tripline::intel::snapshot::FILE_NAME)
}

/// Everything a store holds, by value (ids resolved, locations made relative to the
/// spec directories), sorted where loading order is not meaning.
fn dump(store: &IntelStore, specs: &[IntelSpec]) -> Vec<String> {
    let rel = |s: &str| {
        let mut s = s.to_string();
        for sp in specs {
            s = s.replace(&sp.path.display().to_string(), "<DIR>");
        }
        s
    };
    let mut out = Vec::new();
    for &(id, meta) in &store.links {
        let m = &store.metas[meta as usize];
        let src = &store.sources[m.source as usize];
        let ev = m.event.map(|e| store.events[e as usize].clone());
        let tags: Vec<&str> = store.tags(m.tags).collect();
        out.push(format!(
            "link {:?} {} written={} source={} {} {} event={:?} uuid={:?} type={} cat={:?} tags={tags:?} ids={} del={} rev={} tlp={:?} dist={:?} seen={:?}/{:?} mod={:?} valid={:?}/{:?} port={:?} part={:?} decay={:?}",
            id.kind(),
            store.value(id),
            store.written(id),
            src.name,
            src.format,
            rel(&src.location),
            ev,
            m.attr_uuid,
            store.strings.get(m.misp_type),
            m.category.map(|c| store.strings.get(c)),
            m.to_ids,
            m.deleted,
            m.revoked,
            m.tlp,
            m.distribution,
            m.first_seen,
            m.last_seen,
            m.modified,
            m.valid_from,
            m.valid_until,
            m.port,
            m.composite_part,
            store.decay_input_of(m),
        ));
    }
    out.sort();
    out.push(format!("len {}", store.len()));
    for (i, s) in store.sources.iter().enumerate() {
        out.push(format!(
            "source {} {} {} {:?} records={} losses={:?}",
            s.name,
            s.format,
            rel(&s.location),
            s.provider,
            store.records_by_source[i],
            store.losses_by_source[i],
        ));
    }
    out.push(format!("skipped {:?}", store.skipped_by_reason));
    out.push(format!("excluded {:?}", store.excluded_by_reason));
    out.push(format!("unsupported {}", store.unsupported_total));
    let withdrawn: BTreeMap<(String, &str), u64> = store
        .withdrawn_by_source
        .iter()
        .map(|((s, r), n)| ((store.sources[*s as usize].name.clone(), *r), *n))
        .collect();
    out.push(format!("withdrawn {withdrawn:?}"));
    let mut skipped: Vec<String> = store
        .skipped
        .iter()
        .map(|s| rel(&format!("{}: {}", s.location, s.reason)))
        .collect();
    skipped.sort();
    out.extend(skipped);
    out.iter().map(|l| rel(l)).collect()
}

fn load(specs: &[IntelSpec], store: StoreOptions) -> IntelStore {
    let opts = LoadOptions {
        store,
        ..LoadOptions::default()
    };
    let (store, errors) = load_intel(specs, &opts).expect("loads");
    assert!(errors.is_empty(), "{errors:?}");
    store
}

fn assert_same(cache: &IntelStore, s: &Setup, plain: &IntelStore) {
    let a = dump(cache, &s.cache);
    let b = dump(plain, &s.plain);
    assert!(a.len() > 100, "too little intel to compare: {}", a.len());
    if a != b {
        let first = a.iter().zip(&b).find(|(x, y)| x != y);
        panic!(
            "snapshot load differs from parsing ({} vs {} lines); first difference: {first:?}",
            a.len(),
            b.len()
        );
    }
}

/// The index built from the snapshot has the same indicators, provenances and counts
/// as the index built from parsing the same data.
#[test]
fn snapshot_replays_what_parsing_gives() {
    let s = setup();
    let opts = StoreOptions::default();
    let plain = load(&s.plain, opts);
    for spec in &s.cache {
        assert!(!snapshot_of(spec).exists());
    }
    // First load: parses, writes the snapshots.
    let first = load(&s.cache, opts);
    assert_same(&first, &s, &plain);
    for spec in &s.cache {
        assert!(snapshot_of(spec).is_file(), "{}", spec.path.display());
    }
    // Second load: replays.
    let stamp = |spec: &IntelSpec| {
        std::fs::metadata(snapshot_of(spec))
            .expect("meta")
            .modified()
            .expect("mtime")
    };
    let before: Vec<_> = s.cache.iter().map(stamp).collect();
    let second = load(&s.cache, opts);
    assert_same(&second, &s, &plain);
    let after: Vec<_> = s.cache.iter().map(stamp).collect();
    assert_eq!(
        before, after,
        "a replay that changed nothing rewrites no snapshot"
    );

    // The indexes agree indicator by indicator.
    let plan = |specs: &[IntelSpec]| IntelPlan {
        specs: specs.to_vec(),
        load: LoadOptions::default(),
        warninglists: Vec::new(),
        no_default_warninglists: false,
        warninglist_mode: Default::default(),
        match_options: Default::default(),
        expiry: Default::default(),
        drop_lapsed: false,
    };
    let a = build_index(&plan(&s.cache)).expect("builds").index;
    let b = build_index(&plan(&s.plain)).expect("builds").index;
    assert_eq!(a.len(), b.len());
    assert_eq!(a.counts_by_kind_and_source(), b.counts_by_kind_and_source());
    assert_eq!(a.lapsed_counts(), b.lapsed_counts());
    let mut checked = 0;
    for &(id, _) in &plain.links {
        let v = plain.value(id);
        assert_eq!(
            a.provenances(v, id.kind()),
            b.provenances(v, id.kind()),
            "{v}"
        );
        checked += 1;
    }
    assert!(checked > 100);
}

/// A changed file (replaced by rename, as fetchers do), a new one and a removed one
/// are seen: the snapshot load equals parsing the changed data.
#[test]
fn changed_files_are_parsed_again() {
    let s = setup();
    let opts = StoreOptions::default();
    load(&s.cache, opts);
    for specs in [&s.cache, &s.plain] {
        let isac = &specs[0].path;
        let mut events: Vec<PathBuf> = std::fs::read_dir(isac)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.file_name().is_some_and(|n| n != "manifest.json"))
            .collect();
        events.sort();
        // Rewrite the first event without its last attribute.
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&events[0]).expect("read")).expect("json");
        let list = v["Event"]["Attribute"].as_array_mut().expect("attributes");
        assert!(list.len() > 1);
        list.pop();
        let tmp = isac.join(".tmp");
        std::fs::write(&tmp, serde_json::to_vec(&v).expect("json")).expect("write");
        std::fs::rename(&tmp, &events[0]).expect("rename");
        // Remove a list file of the other source.
        let cert = &specs[1].path;
        std::fs::remove_file(cert.join("trails/trails-md5.txt")).expect("rm");
        std::fs::write(cert.join("trails/new.txt"), "new-evil.example\n").expect("write");
    }
    let cache = load(&s.cache, opts);
    let plain = load(&s.plain, opts);
    assert_same(&cache, &s, &plain);
    assert!(dump(&cache, &s.cache)
        .iter()
        .any(|l| l.contains("new-evil.example")));
}

/// A corrupt snapshot is counted, logged and replaced; a snapshot made under other
/// options is not used for these (and is replaced).
#[test]
fn corrupt_or_stale_snapshots_fall_back_to_parsing() {
    let s = setup();
    let opts = StoreOptions::default();
    load(&s.cache, opts);
    let snap = snapshot_of(&s.cache[0]);
    let mut bytes = std::fs::read(&snap).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&snap, &bytes).expect("write");
    let corrupt = tripline::intel::snapshot::corrupt_total();
    let cache = load(&s.cache, opts);
    assert_same(&cache, &s, &load(&s.plain, opts));
    let now = tripline::intel::snapshot::corrupt_total();
    assert!(now > corrupt);
    // Exported as a metric (the sidecar's /metrics).
    let text = tripline::sink::metrics::Metrics::new().render();
    let exported = text
        .lines()
        .find_map(|l| l.strip_prefix("tripline_intel_snapshot_corrupt_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("tripline_intel_snapshot_corrupt_total exported");
    assert!(exported >= now, "{exported} < {now}");
    assert_ne!(std::fs::read(&snap).expect("read"), bytes, "rewritten");

    let other = StoreOptions {
        include_non_ids: true,
        ..opts
    };
    let cache = load(&s.cache, other);
    assert_same(&cache, &s, &load(&s.plain, other));
    assert_eq!(
        tripline::intel::snapshot::options_of(&snap),
        Some(other),
        "rewritten for the options in use"
    );
    let cache = load(&s.cache, opts);
    assert_same(&cache, &s, &load(&s.plain, opts));
}

/// The sync runner's count of a pass's data (`count_intel`: snapshot entries replayed
/// into a counting store) equals the indicators a full load holds, with no snapshot
/// (and it writes one), with a fresh one, and after a file changed; the snapshot it
/// leaves serves a full load that equals parsing.
#[test]
fn counting_through_the_snapshot_equals_loading() {
    let s = setup();
    let opts = StoreOptions::default();
    let lo = LoadOptions {
        store: opts,
        ..LoadOptions::default()
    };
    let expected = load(&s.plain, opts).len() as u64;
    assert!(expected > 100, "{expected}");
    let snap = snapshot_of(&s.cache[0]);
    assert!(!snap.exists());
    let count = tripline::intel::load::count_intel(&s.cache, &lo).expect("count");
    assert_eq!(count, expected, "no snapshot");
    assert!(snap.exists(), "the count wrote the snapshot");
    let count = tripline::intel::load::count_intel(&s.cache, &lo).expect("count");
    assert_eq!(count, expected, "fresh snapshot");
    assert_same(&load(&s.cache, opts), &s, &load(&s.plain, opts));

    // One event file of the MISP feed loses its attributes, in both copies.
    let event = std::fs::read_dir(&s.plain[0].path)
        .expect("read_dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.len() == 41 && n.ends_with(".json"))
        .expect("an event file");
    for spec in [&s.plain[0], &s.cache[0]] {
        let p = spec.path.join(&event);
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
        v["Event"]["Attribute"] = serde_json::json!([]);
        let tmp = spec.path.join(".tmp-edit");
        std::fs::write(&tmp, v.to_string()).expect("write");
        std::fs::rename(&tmp, &p).expect("rename");
    }
    let expected_after = load(&s.plain, opts).len() as u64;
    assert!(expected_after < expected, "{expected_after} < {expected}");
    let count = tripline::intel::load::count_intel(&s.cache, &lo).expect("count");
    assert_eq!(count, expected_after, "after a file changed");
    assert_same(&load(&s.cache, opts), &s, &load(&s.plain, opts));
}
