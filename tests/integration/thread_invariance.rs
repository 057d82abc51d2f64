//! Property: whatever the thread count and chunk size, a hunt writes the same alerts
//! as one thread does, in input order.

use std::path::Path;

use proptest::prelude::*;

use tripline::hunt::{hunt, HuntOptions};
use tripline::index::{BuildOptions, Index};
use tripline::intel::list::load_plain;
use tripline::intel::warninglist::Warninglists;
use tripline::intel::{IntelStore, Source, StoreOptions};
use tripline::source::batch::Input;

const INTEL: &str = "evil.com\n91.198.51.77\n185.100.87.0/24\n2a03:b0c0:3:d0::1a\nbad.org/gate.php\n44d88612fea8a8f36de82e1278abb02f\nx@phish.org\n";

/// Pieces that log lines are made of: matches, near misses and filler.
const PIECES: &[&str] = &[
    "2024-05-01T10:00:00Z ",
    "a.b.evil.com ",
    "notevil.com ",
    "src=91.198.51.77 ",
    "191.198.51.77 ",
    "185.100.87.200:443 ",
    "Chrome/185.100.87.1 ",
    "[2a03:b0c0:3:d0::1a]:80 ",
    "http://bad.org/gate.php?x ",
    "bad.org/gate.php2 ",
    "md5=44D88612FEA8A8F36DE82E1278ABB02F ",
    "to=X@Phish.org ",
    "GET /index.html HTTP/1.1 ",
    "lorem ipsum dolor ",
    "\u{e9}t\u{e9} ",
];

fn index() -> Index {
    let mut store = IntelStore::new(StoreOptions::default());
    let src = store.add_source(Source {
        name: "p".into(),
        format: "list",
        location: "p".into(),
        provider: None,
    });
    load_plain(&mut store, INTEL.as_bytes(), Path::new("p.txt"), src);
    Index::build(store, &Warninglists::new(), BuildOptions::default())
}

fn run(index: &Index, inputs: &[Input], threads: usize, chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let opts = HuntOptions {
        threads,
        chunk_bytes: chunk,
        ..HuntOptions::default()
    };
    hunt(index, inputs, &opts, &mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_thread_count_gives_the_same_output(
        files in prop::collection::vec(
            prop::collection::vec(prop::collection::vec(0..PIECES.len(), 1..8), 0..60),
            1..4,
        ),
        threads in 2usize..5,
        chunk in 16usize..600,
    ) {
        let index = index();
        let dir = tempfile::tempdir().unwrap();
        let mut inputs = Vec::new();
        for (i, lines) in files.iter().enumerate() {
            let mut text = String::new();
            for line in lines {
                // Every line carries its own time, so @timestamp is deterministic.
                text.push_str(PIECES[0]);
                for &p in line {
                    text.push_str(PIECES[p]);
                }
                text.push('\n');
            }
            let path = dir.path().join(format!("f{i}.log"));
            std::fs::write(&path, text).unwrap();
            inputs.push(Input::Path(path));
        }
        let one = run(&index, &inputs, 1, 1 << 20);
        let many = run(&index, &inputs, threads, chunk);
        prop_assert_eq!(String::from_utf8_lossy(&one), String::from_utf8_lossy(&many));
        let one_small = run(&index, &inputs, 1, chunk);
        prop_assert_eq!(one, one_small);
    }
}
