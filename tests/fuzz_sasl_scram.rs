//! Runs the SCRAM fuzz bodies (`fuzz/bodies/sasl_scram_*.rs`) over their
//! checked-in seed corpora (`fuzz/seeds/sasl_scram_*/`), and over a few
//! derived inputs, so that `cargo test` catches a panic without a fuzzer.

#[path = "../fuzz/bodies/sasl_scram_server.rs"]
mod sasl_scram_server;

#[path = "../fuzz/bodies/sasl_scram_client.rs"]
mod sasl_scram_client;

use std::path::Path;

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

/// Each seed, every truncation of it, each configuration byte, and the seed
/// with each of a few byte flips.
fn run_corpus(name: &str, run: fn(&[u8])) {
    for (path, seed) in corpus(name) {
        run(&seed);
        for len in 0..seed.len() {
            run(&seed[..len]);
        }
        let mut input = seed.clone();
        for config in 0..=u8::MAX {
            if let Some(first) = input.first_mut() {
                *first = config;
            }
            run(&input);
        }
        for at in (1..seed.len()).step_by(7) {
            let mut input = seed.clone();
            input[at] ^= 0x21;
            run(&input);
        }
        eprintln!("{path}: ok");
    }
}

#[test]
fn sasl_scram_server_corpus() {
    run_corpus("sasl_scram_server", sasl_scram_server::run);
}

#[test]
fn sasl_scram_client_corpus() {
    run_corpus("sasl_scram_client", sasl_scram_client::run);
}
