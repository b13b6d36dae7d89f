#![no_main]

#[path = "../bodies/bosh_xmpp_server.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    body::run(data);
});
