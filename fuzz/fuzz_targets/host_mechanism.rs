#![no_main]

#[path = "../bodies/host_mechanism.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
