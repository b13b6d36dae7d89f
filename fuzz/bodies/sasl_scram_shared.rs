//! What the SCRAM fuzz bodies share (`sasl_scram_client.rs` and
//! `sasl_scram_server.rs` each include this file as their own module): the
//! RFC example values, the server's offer, and the sticky-error check.

// Each body uses only part of this file.
#![allow(dead_code)]

use std::sync::OnceLock;

use base64::Engine as _;
use xmpp_sansio::sasl::scram::{mechanism_name, ServerOffer, ALL_HASHES};
use xmpp_sansio::sasl::{SaslError, ScramHash};

/// (client nonce, server nonce suffix, base64 salt) of the RFC example for
/// the hash at `index` of `ALL_HASHES`: RFC 7677 for SHA-256, RFC 5802 for
/// SHA-1 and (having no example of its own) SHA-512.
pub fn rfc_example(index: usize) -> (&'static str, &'static str, &'static str) {
    match index {
        1 => (
            "rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "W22ZaJ0SNY7soEsUEjb6gQ==",
        ),
        _ => (
            "fyko+d2lbbFgONRv9qkxdawL",
            "3rfcNHYJY1ZVvWVs7j",
            "QSXCR+Q6sek8bf92",
        ),
    }
}

/// `derive(hash, salt)` for the hash at `index` and its example salt. The
/// three values are computed once per process in `cache` (PBKDF2 at 4096
/// iterations is too slow to repeat for every input).
pub fn per_hash<T: Clone>(
    cache: &'static OnceLock<Vec<T>>,
    index: usize,
    derive: fn(ScramHash, &[u8]) -> T,
) -> T {
    let all = cache.get_or_init(|| {
        (0..3)
            .map(|i| {
                let salt = base64::engine::general_purpose::STANDARD
                    .decode(rfc_example(i).2)
                    .expect("valid salt");
                derive(ALL_HASHES[i], &salt)
            })
            .collect()
    });
    all[index].clone()
}

/// What the server offered: the non-PLUS mechanism of `hash` and PLAIN;
/// with `plus`, also the `-PLUS` mechanism of `hash` and the three XEP-0440
/// channel-binding types.
pub fn offer(hash: ScramHash, plus: bool) -> ServerOffer {
    let mut mechanisms = vec![mechanism_name(hash, false), "PLAIN"];
    if !plus {
        return ServerOffer::new(mechanisms);
    }
    mechanisms.push(mechanism_name(hash, true));
    ServerOffer::new(mechanisms).with_channel_binding_types([
        "tls-exporter",
        "tls-server-end-point",
        "tls-unique",
    ])
}

/// Checks that errors are sticky: once a call failed, every later call
/// fails with the same error.
#[derive(Debug, Default)]
pub struct StickyErrors {
    first: Option<SaslError>,
}

impl StickyErrors {
    /// Records the result of the latest call, asserting it repeats the
    /// first error if there was one.
    pub fn check<T>(&mut self, result: &Result<T, SaslError>) {
        match (&self.first, result) {
            (None, Err(e)) => self.first = Some(e.clone()),
            (Some(first), later) => assert_eq!(later.as_ref().err(), Some(first)),
            _ => {}
        }
    }

    /// Whether a call has failed.
    pub fn failed(&self) -> bool {
        self.first.is_some()
    }
}
