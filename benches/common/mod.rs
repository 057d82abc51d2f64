//! Shared workload for the criterion benches: N indicators seeded from
//! `../shared/data/iocs` (a fixed mix of domains, IPs, CIDRs, URLs and hashes, every
//! k-th line of each file, so the same N gives the same set), and a log buffer made
//! of the fixture logs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tripline::index::{BuildOptions, Index};
use tripline::intel::list::load_plain;
use tripline::intel::warninglist::Warninglists;
use tripline::intel::{IntelStore, Source, StoreOptions};

pub const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];

/// (file, share of N); domains fill whatever the smaller files cannot.
const MIX: [(&str, f64); 7] = [
    ("domains.txt", 1.0),
    ("ipv4.txt", 0.25),
    ("cidr.txt", 0.01),
    ("ipv6.txt", 0.01),
    ("urls.txt", 0.07),
    ("md5.txt", 0.06),
    ("sha256.txt", 0.05),
];

pub fn iocs_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/iocs");
    d.is_dir().then_some(d)
}

/// The indicator list for `n` as one text blob (one value a line).
pub fn indicators(n: usize) -> Option<Vec<u8>> {
    let dir = iocs_dir()?;
    let mut out = Vec::new();
    let mut others = 0usize;
    // Smaller files first, so that domains can take up the rest.
    for (file, share) in MIX.iter().rev().copied() {
        let text = std::fs::read(dir.join(file)).ok()?;
        let lines: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let want = if file == "domains.txt" {
            n.saturating_sub(others).max(1)
        } else {
            ((n as f64 * share) as usize).max(1)
        };
        if want >= lines.len() {
            others += lines.len();
            for l in &lines {
                out.extend_from_slice(l);
                out.push(b'\n');
            }
            continue;
        }
        others += want;
        let step = lines.len() as f64 / want as f64;
        for i in 0..want {
            out.extend_from_slice(lines[(i as f64 * step) as usize]);
            out.push(b'\n');
        }
    }
    Some(out)
}

pub fn store_from(list: &[u8]) -> IntelStore {
    let mut store = IntelStore::new(StoreOptions::default());
    let src = store.add_source(Source {
        name: "bench".into(),
        format: "list",
        location: "bench".into(),
        provider: None,
    });
    load_plain(&mut store, list, Path::new("bench.txt"), src);
    store
}

pub fn index_from(list: &[u8]) -> Index {
    Index::build(
        store_from(list),
        &Warninglists::new(),
        BuildOptions::default(),
    )
}

/// About `mb` MB of real log lines (the fixture logs repeated).
pub fn log_buffer(mb: usize) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/logs");
    let mut one = Vec::new();
    for f in [
        "apache_access.log",
        "zeek_dns.log",
        "zeek_ssl.log",
        "zeek_syslog.log",
    ] {
        if let Ok(b) = std::fs::read(dir.join(f)) {
            one.extend_from_slice(&b);
        }
    }
    let mut out = Vec::with_capacity(mb << 20);
    while out.len() < mb << 20 && !one.is_empty() {
        out.extend_from_slice(&one);
    }
    out
}
