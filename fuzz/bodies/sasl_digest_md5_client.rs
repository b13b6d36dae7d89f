//! Fuzz body: the client side of DIGEST-MD5 fed arbitrary server
//! messages. Must never panic.
//!
//! The input is split at [`SEPARATOR`] bytes into steps; each step's first
//! byte says what it is: `c` a challenge (the rest), `s` the additional
//! data of `<success/>` (the rest), `n` a `<success/>` without data; any
//! other first byte makes the whole step a challenge. Every step is fed
//! even after an error. The client uses RFC 2831's parameters (user
//! `chris`, password `secret`, service `imap`, domain
//! `elwood.innosoft.com`, cnonce `OA6MHXh6VqTrRk`) so that a seed can reach
//! success.

use xmpp_sansio::sasl::digest_md5::DigestMd5Client;
use xmpp_sansio::sasl::{ClientMechanism, SaslError};
use xmpp_sansio::DeterministicRandom;

/// Splits the input into steps.
pub const SEPARATOR: u8 = 0xff;

/// Runs the steps; returns the result of each.
pub fn drive(data: &[u8]) -> Vec<Result<(), SaslError>> {
    let mut client = DigestMd5Client::new(
        "chris",
        "secret",
        "elwood.innosoft.com",
        &mut DeterministicRandom::new(7),
    )
    .with_service("imap")
    .with_cnonce("OA6MHXh6VqTrRk");
    let mut results = vec![client.initial_response().map(drop)];
    if data.is_empty() {
        return results;
    }
    for step in data.split(|b| *b == SEPARATOR) {
        let r = match step.split_first() {
            Some((b'c', challenge)) => client.respond(challenge).map(drop),
            Some((b's', additional)) => client.success(Some(additional)),
            Some((b'n', _)) => client.success(None),
            _ => client.respond(step).map(drop),
        };
        results.push(r);
    }
    results
}

/// The fuzz entry point.
pub fn run(data: &[u8]) {
    let _ = drive(data);
}
