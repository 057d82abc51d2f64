//! Hunts over archives and directories as grep users expect them: lz4 next to the
//! other formats, several archives read at once giving the same bytes as one thread,
//! progress counted in bytes read from disk, symlinks and dot files in directory
//! walks, and a closed pipe (`| head`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::{root, tripline};
use tripline::hunt::{hunt, HuntOptions};
use tripline::index::{BuildOptions, Index};
use tripline::intel::list::load_plain;
use tripline::intel::warninglist::Warninglists;
use tripline::intel::{IntelStore, Source, StoreOptions};
use tripline::source::batch::Input;

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn alerts(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// (path, line number) of every alert, in output order.
fn places(out: &Output) -> Vec<(String, u64)> {
    alerts(out)
        .iter()
        .map(|a| {
            (
                a["log"]["file"]["path"].as_str().unwrap_or("").to_string(),
                a["tripline"]["line_number"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("fixtures/logs").join(name)).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn lz4(data: &[u8]) -> Vec<u8> {
    let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Each fixture log in one archive format (and one plain), named without a telling
/// extension: detection is by magic bytes.
fn archive_dir(dir: &Path) -> Vec<PathBuf> {
    let logs = [
        ("apache_access.log", "a"),
        ("zeek_dns.log", "b"),
        ("traps.log", "c"),
        ("zeek_ssl.log", "d"),
        ("zeek_syslog.log", "e"),
        ("zeek_dns_selected.log", "f"),
    ];
    let mut paths = Vec::new();
    for (i, (name, tag)) in logs.iter().enumerate() {
        let plain = fixture(name);
        let bytes = match i {
            0 => gzip(&plain),
            1 => zstd::encode_all(&plain[..], 1).unwrap(),
            2 => lz4(&plain),
            3 => xz(&plain),
            4 => bzip2(&plain),
            _ => plain,
        };
        let path = dir.join(format!("{tag}-{name}"));
        std::fs::write(&path, bytes).unwrap();
        paths.push(path);
    }
    paths
}

/// lz4 (frame format) is detected by its magic bytes like the other formats;
/// concatenated frames are read whole; a cut one is reported with its path and the
/// lines before the damage are kept.
#[test]
fn lz4_archives_are_detected_and_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let plain = fixture("traps.log");
    let want = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        "fixtures/logs/traps.log",
    ]);
    assert_eq!(code(&want), 0, "{}", stderr(&want));
    let want: Vec<u64> = places(&want).into_iter().map(|(_, l)| l).collect();
    // Two frames: the first half of the lines, then the rest.
    let cut = plain.len() / 2;
    let cut = cut + plain[cut..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut two = lz4(&plain[..cut]);
    two.extend(lz4(&plain[cut..]));
    let path = dir.path().join("traps.log");
    std::fs::write(&path, &two).unwrap();
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got: Vec<u64> = places(&out).into_iter().map(|(_, l)| l).collect();
    assert_eq!(got, want);

    let whole = lz4(&plain);
    let damaged = dir.path().join("cut.lz4");
    std::fs::write(&damaged, &whole[..whole.len() * 2 / 3]).unwrap();
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        "fixtures/intel/traps",
        damaged.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("cut.lz4"), "{}", stderr(&out));
}

/// Several archives of every format, read at once by several readers, give the same
/// bytes as one thread: inputs in operand order, lines numbered per input.
#[test]
fn several_archives_in_parallel_give_the_same_output_as_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let paths = archive_dir(dir.path());
    let run = |threads: &str| {
        let mut args = vec!["hunt", "-q", "-j", threads, "--intel", "fixtures/intel"];
        args.extend(paths.iter().map(|p| p.to_str().unwrap()));
        tripline(&args)
    };
    let one = run("1");
    assert_eq!(code(&one), 0, "{}", stderr(&one));
    // The alerts come from several inputs, in operand order.
    let got = places(&one);
    let mut order: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    order.dedup();
    assert!(order.len() >= 3, "matches from too few inputs: {order:?}");
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "inputs out of operand order");
    // The same as the plain files give, path aside.
    let mut plain_args = vec!["hunt", "-q", "-j", "1", "--intel", "fixtures/intel"];
    let plain: Vec<String> = paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            format!("fixtures/logs/{}", &name[2..])
        })
        .collect();
    plain_args.extend(plain.iter().map(|s| s.as_str()));
    let plain_out = tripline(&plain_args);
    let lines = |o: &Output| -> Vec<u64> { places(o).into_iter().map(|(_, l)| l).collect() };
    assert_eq!(lines(&one), lines(&plain_out));
    for threads in ["2", "3", "8"] {
        let many = run(threads);
        assert_eq!(code(&many), 0, "{}", stderr(&many));
        assert!(
            many.stdout == one.stdout,
            "-j{threads} differs from -j1:\n{:?}\nvs\n{:?}",
            places(&many),
            got
        );
    }
}

fn index(values: &str) -> Index {
    let mut store = IntelStore::new(StoreOptions::default());
    let src = store.add_source(Source {
        name: "p".into(),
        format: "list",
        location: "p".into(),
        provider: None,
    });
    load_plain(&mut store, values.as_bytes(), Path::new("p.txt"), src);
    Index::build(store, &Warninglists::new(), BuildOptions::default())
}

/// Small chunks, so that every archive is many pieces and readers of later inputs
/// run ahead of the writer, or are held back: the bytes are those of one thread.
#[test]
fn archives_in_many_chunks_give_the_same_output_whatever_the_threads() {
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<Input> = archive_dir(dir.path())
        .into_iter()
        .map(Input::Path)
        .collect();
    let index = index(
        "216.152.249.242\n91.198.51.77\nevil-traps.com\n204.79.197.200\nwhatismyipaddress.com\n198.199.92.0/22\n",
    );
    let run = |threads: usize, chunk: usize, ahead: usize| {
        let mut out = Vec::new();
        let opts = HuntOptions {
            threads,
            chunk_bytes: chunk,
            ahead_bytes: ahead,
            ..HuntOptions::default()
        };
        let stats = hunt(&index, &inputs, &opts, &mut out).unwrap();
        (out, stats.matched_lines)
    };
    let (one, matched) = run(1, 1 << 20, 64 << 20);
    assert!(matched > 10, "too few matches to compare: {matched}");
    // Nothing held ahead (ahead 0): readers of later inputs pause at every piece
    // until the writer reaches them; the hunt still ends, with the same bytes.
    for (threads, chunk, ahead) in [
        (1, 300, 64 << 20),
        (2, 300, 64 << 20),
        (4, 1000, 64 << 20),
        (3, 4096, 64 << 20),
        (1, 300, 0),
        (3, 300, 0),
        (8, 2000, 1000),
    ] {
        let (many, _) = run(threads, chunk, ahead);
        assert!(
            many == one,
            "{threads} threads, {chunk}-byte chunks, {ahead} bytes ahead differ from one thread"
        );
    }
}

/// Progress (the bar's position and the summary's "read from disk") counts bytes
/// read from the files: compressed bytes for archives, so that it ends at the
/// files' total size (the bar showed `9.19 MiB/120.71 KiB` for a .gz).
#[test]
fn progress_counts_compressed_bytes_read() {
    let dir = tempfile::tempdir().unwrap();
    let paths = archive_dir(dir.path());
    let on_disk: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let plain: u64 = paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            fixture(&name[2..]).len() as u64
        })
        .sum();
    assert!(on_disk < plain);
    let inputs: Vec<Input> = paths.into_iter().map(Input::Path).collect();
    let index = index("216.152.249.242\n");
    for threads in [1, 3] {
        let opts = HuntOptions {
            threads,
            ..HuntOptions::default()
        };
        let stats = hunt(&index, &inputs, &opts, std::io::sink()).unwrap();
        assert_eq!(stats.read_bytes, on_disk, "{threads} threads");
        assert_eq!(stats.bytes, plain, "{threads} threads");
    }
}

fn symlink(target: &str, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// Defect: a directory symlink loop was followed (122 alerts from 3 one-line files,
/// paths `sub/loop/sub/loop/…`). Now a walk skips symlinks; with `-L` it follows
/// them but reports a loop once and does not enter it.
#[test]
fn hunt_does_not_follow_symlink_loops() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("logs");
    std::fs::create_dir_all(top.join("sub")).unwrap();
    let line = b"2024-05-01T10:00:00Z GET http://evil.example/gate.php from 203.0.113.9\n";
    std::fs::write(top.join("a.log"), line).unwrap();
    std::fs::write(top.join("sub/b.log"), line).unwrap();
    std::fs::write(dir.path().join("outside.log"), line).unwrap();
    symlink("..", &top.join("sub/loop"));
    symlink("../../outside.log", &top.join("sub/linked.log"));
    let intel = dir.path().join("intel.txt");
    std::fs::write(&intel, "evil.example\n").unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["hunt", "-q", "--intel", intel.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(top.to_str().unwrap());
        tripline(&args)
    };
    let rel = |out: &Output| -> Vec<String> {
        places(out)
            .into_iter()
            .map(|(p, _)| {
                Path::new(&p)
                    .strip_prefix(&top)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect()
    };

    let out = run(&[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(rel(&out), ["a.log", "sub/b.log"]);
    assert_eq!(stderr(&out), "");

    let out = run(&["-L"]);
    assert_eq!(rel(&out), ["a.log", "sub/b.log", "sub/linked.log"]);
    let err = stderr(&out);
    assert_eq!(err.matches("symlink loop").count(), 1, "{err}");
    assert!(err.contains("sub/loop"), "{err}");
    // A loop is an error, reported; the rest is searched (grep's status 2).
    assert_eq!(code(&out), 2, "{err}");

    // Named on the command line, a symlink is read without -L.
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        intel.to_str().unwrap(),
        top.join("sub/linked.log").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(places(&out).len(), 1);
}

/// Directory walks skip dot files and dot directories as ripgrep does, and say so in
/// the summary; `--hidden` searches them; a dot file named as an operand is read.
#[test]
fn directory_walks_skip_dot_files_unless_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("logs");
    std::fs::create_dir_all(top.join(".old")).unwrap();
    let line = b"2024-05-01T10:00:00Z GET http://evil.example/gate.php\n";
    std::fs::write(top.join("a.log"), line).unwrap();
    std::fs::write(top.join(".b.log"), line).unwrap();
    std::fs::write(top.join(".old/c.log"), line).unwrap();
    let intel = dir.path().join("intel.txt");
    std::fs::write(&intel, "evil.example\n").unwrap();
    let names = |out: &Output| -> Vec<String> {
        places(out)
            .into_iter()
            .map(|(p, _)| {
                Path::new(&p)
                    .strip_prefix(&top)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect()
    };
    let out = tripline(&[
        "hunt",
        "--intel",
        intel.to_str().unwrap(),
        top.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(names(&out), ["a.log"]);
    assert!(
        stderr(&out).contains("2 dot file(s) or dir(s) (--hidden)"),
        "{}",
        stderr(&out)
    );
    let out = tripline(&[
        "hunt",
        "-q",
        "--hidden",
        "--intel",
        intel.to_str().unwrap(),
        top.to_str().unwrap(),
    ]);
    assert_eq!(names(&out), [".b.log", ".old/c.log", "a.log"]);
    let out = tripline(&[
        "hunt",
        "-q",
        "--intel",
        intel.to_str().unwrap(),
        top.join(".b.log").to_str().unwrap(),
    ]);
    assert_eq!(names(&out), [".b.log"]);
}

/// Defect: `tripline hunt … | head -1` ended with "Broken pipe" on stderr and exit
/// status 2. Now a reader that goes away ends the run quietly with status 0, as
/// ripgrep does (no error, no summary).
#[test]
fn broken_pipe_ends_the_hunt_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // Enough alerts to overflow the pipe and the output buffer many times.
    let traps = fixture("traps.log");
    let log = dir.path().join("big.log");
    let mut big = Vec::new();
    for _ in 0..400 {
        big.extend_from_slice(&traps);
    }
    std::fs::write(&log, &big).unwrap();
    // Intel that loads whole (a source that loses records is warned about on stderr).
    let intel = dir.path().join("iocs.txt");
    std::fs::write(
        &intel,
        "evil-traps[.]com\nhxxp://gate.trap-c2[.]net/gate.php\n91.198.51.77\n",
    )
    .unwrap();
    for threads in ["1", "2"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tripline"))
            .args([
                "hunt",
                "-j",
                threads,
                "--intel",
                intel.to_str().unwrap(),
                log.to_str().unwrap(),
            ])
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tripline");
        let mut first = String::new();
        {
            // As `head -1`: read one line, then close the pipe.
            let mut reader = BufReader::new(child.stdout.take().unwrap());
            reader.read_line(&mut first).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(first.starts_with('{'), "{first:?}");
        assert_eq!(stderr(&out), "", "-j{threads}");
        assert_eq!(code(&out), 0, "-j{threads}");
    }
}

/// Same bytes for the same archive read as a file and as a `.gz` copy of it, line
/// numbers included: several readers do not change the numbering.
#[test]
fn line_numbers_of_an_archive_are_those_of_the_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let plain = fixture("apache_access.log");
    let gz = dir.path().join("access.gz");
    std::fs::write(&gz, gzip(&plain)).unwrap();
    let by_line = |out: &Output| -> BTreeMap<u64, usize> {
        let mut m = BTreeMap::new();
        for (_, l) in places(out) {
            *m.entry(l).or_default() += 1;
        }
        m
    };
    let a = tripline(&[
        "hunt",
        "-q",
        "-j",
        "2",
        "--intel",
        "fixtures/intel",
        "fixtures/logs/apache_access.log",
    ]);
    let b = tripline(&[
        "hunt",
        "-q",
        "-j",
        "2",
        "--intel",
        "fixtures/intel",
        gz.to_str().unwrap(),
    ]);
    assert!(!by_line(&a).is_empty());
    assert_eq!(by_line(&a), by_line(&b));
}
