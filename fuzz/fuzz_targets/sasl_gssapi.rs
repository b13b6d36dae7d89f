#![no_main]

#[path = "../bodies/sasl_gssapi.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    body::run(data);
});
