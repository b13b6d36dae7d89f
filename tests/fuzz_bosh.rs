//! Runs the BOSH fuzz bodies over their checked-in seeds, so that `cargo
//! test` checks the same invariants as `cargo +nightly fuzz run bosh_body`
//! and `... bosh_manager`: `fuzz/seeds/bosh_body/` holds the example
//! bodies of XEP-0124 and XEP-0206 and malformed ones,
//! `fuzz/seeds/bosh_manager/` scripts of sessions (created, polled,
//! reordered, sent again, paused, restarted, terminated by either side,
//! over the window, overactive, polling too often, past the session cap,
//! inactive); regression inputs join them as `regress-*`.

#[path = "../fuzz/bodies/bosh_body.rs"]
mod bosh_body;

#[path = "../fuzz/bodies/bosh_manager.rs"]
mod bosh_manager;

mod support;

#[test]
fn bosh_body_seed_corpus() {
    let seeds = support::fuzz_seeds("bosh_body");
    assert!(seeds.len() >= 15, "only {} seeds", seeds.len());
    for (name, data) in seeds {
        eprintln!("seed {name}");
        bosh_body::run(&data);
    }
}

#[test]
fn bosh_manager_seed_corpus() {
    let seeds = support::fuzz_seeds("bosh_manager");
    assert!(seeds.len() >= 10, "only {} seeds", seeds.len());
    for (name, data) in seeds {
        eprintln!("seed {name}");
        bosh_manager::run(&data);
    }
}
