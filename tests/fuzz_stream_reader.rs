//! Runs the `stream_reader` fuzz body over its checked-in seed corpus
//! (`fuzz/seeds/stream_reader/`, regression inputs included), so that
//! `cargo test` exercises the same invariants as `cargo +nightly fuzz run
//! stream_reader`.

#[path = "../fuzz/bodies/stream_reader.rs"]
mod stream_reader_body;

use std::fs;
use std::path::Path;

#[test]
fn stream_reader_seed_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/stream_reader");
    let mut paths: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(paths.len() >= 15, "only {} seeds", paths.len());
    for path in paths {
        let data = fs::read(&path).expect("seed");
        eprintln!("seed {}", path.display());
        stream_reader_body::run(&data);
    }
}
