//! Runs the `websocket` fuzz body over its checked-in seeds
//! (`fuzz/seeds/websocket/`: each direction of the Prosody WebSocket
//! captures against the other role, and hand-made breaks of RFC 7395's
//! one-element rule), so that `cargo test` checks the same invariants as
//! `cargo +nightly fuzz run websocket`.

#[path = "../fuzz/bodies/websocket.rs"]
mod websocket;

mod support;

#[test]
fn websocket_seed_corpus() {
    let seeds = support::fuzz_seeds("websocket");
    assert!(seeds.len() >= 20, "only {} seeds", seeds.len());
    for (name, data) in seeds {
        eprintln!("seed {name}");
        websocket::run(&data);
    }
}
