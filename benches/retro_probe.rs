//! Retro probe speed at the issue's scale (issue 12: "retro of 100k new indicators
//! against 7 days × 5M distinct observables in ≤ 5 s on one core; of 1M in ≤ 30 s").
//!
//! `cargo bench --bench retro_probe -- [--out DIR] [--days 7] [--per-day 5000000]
//! [--n 100000 --n 1000000] [--hits-per-mille 10]` (or `benches/retro_probe.sh`, which
//! also times `tripline retro` over the same store and lists).
//!
//! Generates, deterministically (a fixed mix function of a counter, no randomness):
//! - a store of `--days` daily slices, each of `--per-day` entries (distinct keys of the
//!   slice, as `hunt --record` counts them: a host name adds one entry per label suffix
//!   above its registrable domain), written through [`Writer`] as the recorder does,
//!   one segment per day. The mix of observables (by unit): 35% IPv4, 5% IPv6, 30% host
//!   names (two or three labels above one of 400,000 registrable domains under `com`,
//!   `net`, `org`, `de`, `io`, `co.uk`), 15% URLs, 10% hashes (MD5, SHA-1, SHA-256),
//!   5% e-mail addresses. Consecutive days share half their observables (unit ids
//!   `day × per_day/2 …`), as real traffic repeats;
//! - indicator lists (`iocs-N.txt`, one indicator per line, the form a feed gives:
//!   dotted IPs, domains, `http://` URLs, hex hashes, e-mails) of which
//!   `--hits-per-mille` ‰ are values the store holds (a domain indicator is a
//!   registrable domain of recorded host names: it finds each name below it) and the
//!   rest values never recorded.
//!
//! Then times, in this process on one thread: [`Store::open`] (reading every segment)
//! and the probes of each list through the probe API ([`Store::probe`],
//! [`Store::probe_domain`]), the way `tripline retro` probes them.
//!
//! The store and the lists are kept in `--out` (default `benches/work/retro-probe`)
//! and reused when their parameters and the segment format are unchanged.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tripline::intel::Kind;
use tripline::retro::store::WriterOptions;
use tripline::retro::{mix, segment, Batch, BatchAgg, KeyMap, LineTokens, Store, Writer};

const TLDS: [&str; 6] = ["com", "net", "org", "de", "io", "co.uk"];
const DOMAINS: u64 = 400_000;
/// Units per kind out of 20.
fn unit_kind(g: u64) -> u8 {
    match mix(g ^ 0x55) % 20 {
        0..=6 => 0,   // IPv4
        7 => 1,       // IPv6
        8..=13 => 2,  // host name
        14..=16 => 3, // URL
        17..=18 => 4, // hash
        _ => 5,       // e-mail
    }
}

fn domain(d: u64) -> String {
    format!("dom{d}.{}", TLDS[(d % 6) as usize])
}

fn hostname(g: u64) -> String {
    let h = mix(g);
    let dom = domain(h % DOMAINS);
    if h >> 60 < 4 {
        format!("a{}.h{g}.{dom}", h >> 61)
    } else {
        format!("h{g}.{dom}")
    }
}

/// The canonical form of unit `g`'s observable and, for the intel list, the form a feed
/// writes it in.
fn unit(g: u64) -> (Kind, String, String) {
    let h = mix(g.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x1234);
    match unit_kind(g) {
        0 => {
            // Keep clear of 0/8, 127/8, multicast: any routable-looking address.
            let a = std::net::Ipv4Addr::from(((h as u32) & 0x7fff_ffff) | 0x0100_0000);
            (Kind::Ipv4, a.to_string(), a.to_string())
        }
        1 => {
            let a = std::net::Ipv6Addr::from((0x2001_0db8u128 << 96) | u128::from(h));
            (Kind::Ipv6, a.to_string(), a.to_string())
        }
        2 => {
            let n = hostname(g);
            (Kind::Hostname, n.clone(), n)
        }
        3 => {
            let host = hostname(g ^ (1 << 50));
            let path = format!("/p{}/x{}.php", h % 1000, h >> 40);
            (
                Kind::Url,
                format!("{host}{path}"),
                format!("http://{host}{path}"),
            )
        }
        4 => {
            let len = [32usize, 40, 64][(h % 3) as usize];
            let mut s = String::new();
            let mut x = h;
            while s.len() < len {
                x = mix(x);
                s.push_str(&format!("{x:016x}"));
            }
            s.truncate(len);
            let kind = match len {
                32 => Kind::Md5,
                40 => Kind::Sha1,
                _ => Kind::Sha256,
            };
            (kind, s.clone(), s)
        }
        _ => {
            let e = format!("u{g}@{}", domain(h % DOMAINS));
            (Kind::Email, e.clone(), e)
        }
    }
}

struct Args {
    out: PathBuf,
    days: u64,
    per_day: usize,
    ns: Vec<usize>,
    hits_per_mille: u64,
}

fn args() -> Args {
    let mut a = Args {
        out: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/work/retro-probe"
        )),
        days: 7,
        per_day: 5_000_000,
        ns: Vec::new(),
        hits_per_mille: 10,
    };
    // `cargo bench` passes `--bench`; `cargo test --benches` (CI) does not: then a
    // small store in a directory of its own, so the test run stays short and never
    // replaces a generated benchmark store.
    let test_mode = !std::env::args().any(|a| a == "--bench");
    if test_mode {
        a.out = a.out.with_file_name("retro-probe-test");
        a.days = 2;
        a.per_day = 20_000;
        a.ns = vec![1_000];
    }
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_default();
        match k.as_str() {
            "--out" => a.out = PathBuf::from(v()),
            "--days" => a.days = v().parse().unwrap_or(7),
            "--per-day" => a.per_day = v().parse().unwrap_or(5_000_000),
            "--n" => a.ns.push(v().parse().unwrap_or(100_000)),
            "--hits-per-mille" => a.hits_per_mille = v().parse().unwrap_or(10),
            "--bench" => {}
            other => eprintln!("retro_probe: unknown argument {other} (ignored)"),
        }
    }
    if a.ns.is_empty() {
        a.ns = vec![100_000, 1_000_000];
    }
    a
}

/// Fills the store: per day, units until the day holds `per_day` entries.
fn generate(dir: &Path, days: u64, per_day: usize) -> (u64, u64) {
    let _ = std::fs::remove_dir_all(dir);
    let mut w = Writer::new(
        dir,
        WriterOptions {
            max_open_entries: usize::MAX,
        },
    )
    .expect("store directory");
    let base = 1_767_225_600i64; // 2026-01-01T00:00:00Z
    let mut toks = LineTokens::default();
    let mut units_max = 0;
    for day in 0..days {
        let slice = base + day as i64 * 86_400;
        let mut g = day * per_day as u64 / 2;
        while w.open_entries() < per_day {
            let mut map: KeyMap<BatchAgg> = KeyMap::default();
            let mut batch = Batch {
                source: format!("/var/log/src{}.log", day % 3),
                hosts: vec!["fw01".into(), "proxy02".into(), "dns03".into()],
                ..Batch::default()
            };
            // Small batches near the target, so a day lands close to it.
            let room = per_day - w.open_entries();
            let units = (room / 3).clamp(1, 50_000);
            for _ in 0..units {
                toks.clear();
                let (kind, canonical, _) = unit(g);
                match kind {
                    Kind::Ipv4 => toks.push_v4(u32::from(
                        canonical.parse::<std::net::Ipv4Addr>().expect("generated"),
                    )),
                    Kind::Ipv6 => toks.push_v6(u128::from(
                        canonical.parse::<std::net::Ipv6Addr>().expect("generated"),
                    )),
                    Kind::Hostname => toks.push_host(canonical.as_bytes()),
                    k => toks.push(k, canonical.as_bytes()),
                }
                let h = mix(g ^ 0x77);
                let t = slice + (h % 86_400) as i64;
                let host = (h >> 20) as u16 % 3;
                for tok in &toks.tokens {
                    let e = map.entry(tok.key).or_insert_with(|| {
                        // A host name: its bytes once, for the writer's names.
                        let mut name = (0, 0);
                        if let Some((s, e)) = tok.name {
                            let at = batch.text.len() as u32;
                            batch
                                .text
                                .extend_from_slice(&toks.text[s as usize..e as usize]);
                            name = (at, batch.text.len() as u32);
                        }
                        BatchAgg {
                            first: t,
                            last: t,
                            count: 0,
                            hosts: [0; tripline::retro::store::SET_CAP],
                            n_hosts: 0,
                            more_hosts: false,
                            name,
                        }
                    });
                    e.first = e.first.min(t);
                    e.last = e.last.max(t);
                    e.count += 1 + (h >> 50) as u32 % 8;
                    if !e.hosts[..usize::from(e.n_hosts)].contains(&host) {
                        e.hosts[usize::from(e.n_hosts)] = host;
                        e.n_hosts += 1;
                    }
                    if tok.kind == Kind::Ipv6 {
                        batch.v6.push((slice, tok.v6));
                    }
                }
                g += 1;
            }
            batch.slices.push((slice, map));
            w.merge(batch).expect("merge");
        }
        units_max = units_max.max(g);
        w.seal().expect("seal");
        eprintln!("retro_probe: day {day} sealed ({} units so far)", g);
    }
    (w.sealed_bytes, units_max)
}

/// The indicator list of `n`: `hits` ‰ of values the store holds, the rest never seen.
/// An indicator: kind, canonical form (as probed), text (as a feed writes it).
type Indicator = (Kind, String, String);

fn indicators(
    n: usize,
    hits_per_mille: u64,
    days: u64,
    per_day: usize,
) -> Vec<(Kind, String, String)> {
    let stored_units = (days + 1) * per_day as u64 / 2;
    let mut out = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let hit = mix(i ^ 0xabc) % 1000 < hits_per_mille;
        // Stored units are 0..stored_units (nearly: the last day may stop early, so
        // hits come from the first days); misses from far above.
        let g = if hit {
            mix(i) % (stored_units / 2)
        } else {
            (1 << 40) + i
        };
        let (kind, canonical, text) = unit(g);
        if kind == Kind::Hostname && mix(i ^ 0xd0) % 2 == 0 {
            // A domain indicator: the registrable domain (for a miss, one never used).
            let d = if hit {
                domain(mix(g) % DOMAINS)
            } else {
                format!("miss{i}.{}", TLDS[(i % 6) as usize])
            };
            out.push((Kind::Domain, d.clone(), d));
        } else {
            out.push((kind, canonical, text));
        }
    }
    out
}

fn main() {
    let a = args();
    std::fs::create_dir_all(&a.out).expect("out directory");
    let store_dir = a.out.join("store");
    let marker = a.out.join("store.params");
    let params = format!(
        "days={} per_day={} format={}\n",
        a.days,
        a.per_day,
        String::from_utf8_lossy(segment::MAGIC)
    );
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(params.as_str()) {
        let t0 = Instant::now();
        let (bytes, units) = generate(&store_dir, a.days, a.per_day);
        std::fs::write(&marker, &params).expect("marker");
        eprintln!(
            "retro_probe: generated {} days x {} entries ({units} units) in {:.1} s, {bytes} bytes",
            a.days,
            a.per_day,
            t0.elapsed().as_secs_f64()
        );
    }
    let lists: Vec<(usize, Vec<Indicator>)> =
        a.ns.iter()
            .map(|&n| {
                let list = indicators(n, a.hits_per_mille, a.days, a.per_day);
                let path = a.out.join(format!("iocs-{n}.txt"));
                let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("list"));
                for (_, _, text) in &list {
                    writeln!(f, "{text}").expect("list");
                }
                (n, list)
            })
            .collect();

    let t0 = Instant::now();
    let store = Store::open(&store_dir).expect("open store");
    let open = t0.elapsed();
    let s = store.stats();
    println!(
        "store: {} day(s), {} segment(s), {} entries, {} bytes ({:.2} bytes per entry; host names {} = {:.2} bytes per entry)",
        s.slices,
        s.segments,
        s.entries,
        s.bytes,
        s.bytes as f64 / s.entries.max(1) as f64,
        s.names,
        s.names_bytes as f64 / s.entries.max(1) as f64
    );
    println!(
        "Store::open (read and decode every segment): {:.3} s",
        open.as_secs_f64()
    );
    for (n, list) in &lists {
        let t0 = Instant::now();
        let mut hit_indicators = 0u64;
        let mut observed = 0u64;
        for (kind, canonical, _) in list {
            let o = store.probe(*kind, canonical, None);
            hit_indicators += u64::from(!o.is_empty());
            observed += o.len() as u64;
        }
        let probe = t0.elapsed();
        println!(
            "probe {n} indicators: {:.3} s ({:.0} ns each), {hit_indicators} indicators hit ({:.2}%), {observed} (value, day) observations; with open: {:.3} s",
            probe.as_secs_f64(),
            probe.as_nanos() as f64 / *n as f64,
            hit_indicators as f64 * 100.0 / *n as f64,
            (open + probe).as_secs_f64()
        );
    }
}
