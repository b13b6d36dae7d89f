#![no_main]

#[path = "../bodies/bosh_body.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
