//! Matching throughput (bytes/s) over real log lines, one thread, at 10k, 100k and 1M
//! indicators: the cost per line must not grow with N. And the bounded work per token
//! (issue 9, point 6): hostile 1 MiB lines — one dotted host of 512k labels, the same
//! in UTF-8 letters, a URL with 100k parameters, many e-mail-like tokens — against an
//! ordinary 1 MiB line of real log text, at 100k indicators: each must cost about the
//! same per byte.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use tripline::matcher::Matcher;

fn matching(c: &mut Criterion) {
    let log = common::log_buffer(16);
    let mut g = c.benchmark_group("matching");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(log.len() as u64));
    for n in common::SIZES {
        let Some(list) = common::indicators(n) else {
            eprintln!("../shared/data/iocs not found: matching skipped");
            return;
        };
        let index = common::index_from(&list);
        g.bench_with_input(BenchmarkId::new("find_per_line", n), &log, |b, log| {
            let mut m = Matcher::new(&index);
            let mut hits = Vec::new();
            b.iter(|| {
                let mut found = 0usize;
                for line in log.split(|&b| b == b'\n') {
                    hits.clear();
                    m.find_with_json(line, &mut hits);
                    found += hits.len();
                }
                found
            })
        });
    }
    g.finish();
}

fn hostile_lines(c: &mut Criterion) {
    let Some(list) = common::indicators(100_000) else {
        eprintln!("../shared/data/iocs not found: hostile_lines skipped");
        return;
    };
    let index = common::index_from(&list);
    const MIB: usize = 1 << 20;
    let log = common::log_buffer(2);
    let ordinary: Vec<u8> = log
        .iter()
        .map(|&b| if b == b'\n' { b' ' } else { b })
        .take(MIB)
        .collect();
    let cut = |mut v: Vec<u8>| {
        v.truncate(MIB);
        v
    };
    let lines: Vec<(&str, Vec<u8>)> = vec![
        ("ordinary", ordinary),
        (
            "dotted_host",
            cut(format!("{}com", "a.".repeat(MIB / 2)).into_bytes()),
        ),
        (
            "dotted_utf8_host",
            cut(format!("{}com", "ü.".repeat(MIB / 3)).into_bytes()),
        ),
        (
            "url_parameters",
            cut(format!("http://a.com/x?{}", "a=1&".repeat(MIB / 4)).into_bytes()),
        ),
        ("email_tokens", cut("a@a.com ".repeat(MIB / 8).into_bytes())),
        (
            "ipv6_runs",
            cut("1:2:3:4:5:6:7:8:".repeat(MIB / 16).into_bytes()),
        ),
    ];
    let mut g = c.benchmark_group("hostile_lines");
    g.sample_size(10);
    for (name, line) in &lines {
        g.throughput(Throughput::Bytes(line.len() as u64));
        g.bench_with_input(BenchmarkId::new("find_1mib_line", name), line, |b, line| {
            let mut m = Matcher::new(&index);
            let mut hits = Vec::new();
            b.iter(|| {
                hits.clear();
                m.find_with_json(line, &mut hits);
                hits.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, matching, hostile_lines);
criterion_main!(benches);
