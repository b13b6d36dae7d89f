#![no_main]

// `tests/fuzz_roles.rs` uses a few items the target does not.
#[allow(dead_code)]
#[path = "../bodies/server.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
