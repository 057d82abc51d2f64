//! Matching throughput (bytes/s) over real log lines, one thread, at 10k, 100k and 1M
//! indicators: the cost per line must not grow with N.

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

criterion_group!(benches, matching);
criterion_main!(benches);
