//! Runs the `stream_reader` fuzz body over its checked-in seed corpus
//! (`fuzz/seeds/stream_reader/`, regression inputs included), so that
//! `cargo test` exercises the same invariants as `cargo +nightly fuzz run
//! stream_reader`.

#[path = "../fuzz/bodies/stream_reader.rs"]
mod stream_reader_body;

mod support;

#[test]
fn stream_reader_seed_corpus() {
    let seeds = support::fuzz_seeds("stream_reader");
    assert!(seeds.len() >= 15, "only {} seeds", seeds.len());
    for (name, data) in seeds {
        eprintln!("seed {name}");
        stream_reader_body::run(&data);
    }
}
