//! Runs the `sm` fuzz body (`fuzz/bodies/sm.rs`: stream management of
//! either role against a hostile peer, every stanza accounted for once)
//! over its checked-in seeds (`fuzz/seeds/sm/`), so that `cargo test`
//! checks the same invariants as `cargo +nightly fuzz run sm`.

#[path = "../fuzz/bodies/sm.rs"]
mod sm_body;

mod support;

#[test]
fn sm_seed_corpus() {
    let seeds = support::fuzz_seeds("sm");
    assert!(seeds.len() >= 8, "only {} seeds", seeds.len());
    let mut sent = 0;
    for (name, data) in seeds {
        eprintln!("seed {name}");
        sent += sm_body::run(&data);
    }
    // The seeds do send: the ledger has something to check.
    assert!(sent >= 20, "{sent}");
}
