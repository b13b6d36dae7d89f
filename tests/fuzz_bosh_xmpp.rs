//! Runs the `bosh_xmpp_server` fuzz body over its checked-in seeds
//! (`fuzz/seeds/bosh_xmpp_server/`: the Strophe.js requests of the
//! Prosody BOSH captures with each host behaviour, and hand-made breaks),
//! so that `cargo test` checks the same invariants as
//! `cargo +nightly fuzz run bosh_xmpp_server`.

#[path = "../fuzz/bodies/bosh_xmpp_server.rs"]
mod bosh_xmpp_server;

mod support;

#[test]
fn bosh_xmpp_server_seed_corpus() {
    let seeds = support::fuzz_seeds("bosh_xmpp_server");
    assert!(seeds.len() >= 12, "only {} seeds", seeds.len());
    for (name, data) in seeds {
        eprintln!("seed {name}");
        let ready = bosh_xmpp_server::run(&data);
        // The PLAIN capture logs alice in (SCRAM's proofs are the
        // capture's, computed against Prosody's nonce: refused here).
        if name.starts_with("plain") {
            assert_eq!(ready, 1, "{name}");
        }
    }
}
