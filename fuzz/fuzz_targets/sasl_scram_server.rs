#![no_main]

#[path = "../bodies/sasl_scram_server.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
