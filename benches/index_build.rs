//! Index build cost (load + compile) for 10k, 100k and 1M indicators, measured apart
//! from matching. Prints memory per indicator once per size.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use tripline::index::{BuildOptions, Index};
use tripline::intel::warninglist::Warninglists;

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("index_build");
    g.sample_size(10);
    for n in common::SIZES {
        let Some(list) = common::indicators(n) else {
            eprintln!("../shared/data/iocs not found: index_build skipped");
            return;
        };
        let index = common::index_from(&list);
        eprintln!(
            "index_build/{n}: {} indicators, {} bytes ({:.1} bytes/indicator)",
            index.len(),
            index.stats.memory_bytes,
            index.stats.memory_bytes as f64 / index.len().max(1) as f64
        );
        drop(index);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("load", n), &list, |b, list| {
            b.iter(|| common::store_from(list))
        });
        g.bench_with_input(BenchmarkId::new("load_and_compile", n), &list, |b, list| {
            b.iter(|| {
                Index::build(
                    common::store_from(list),
                    &Warninglists::new(),
                    BuildOptions::default(),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, build);
criterion_main!(benches);
