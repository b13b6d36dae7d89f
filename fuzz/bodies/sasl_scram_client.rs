//! Fuzz body: the client side of SCRAM fed arbitrary server messages.
//!
//! Input layout: one configuration byte, then the server's messages
//! separated by 0xFF (a byte that never occurs in UTF-8, so real SCRAM
//! messages never contain it). The first message answers the client-first
//! message; the others go to `respond` or `success`.
//!
//! Configuration bits:
//! - 0-1: hash (0 SHA-1, 1 SHA-256, 2 and 3 SHA-512);
//! - 2-3: channel binding the client can supply: 0 none, 1 tls-exporter
//!   `[1; 32]`, 2 tls-server-end-point `[2; 32]`, 3 tls-unique `[3; 12]`;
//! - 4: the server offered the `-PLUS` mechanism of this hash and the three
//!   XEP-0440 types;
//! - 5: the client also has the password (`pencil`), not only cached keys;
//! - 6: messages after the first go to `success` (else to `respond`, then
//!   `success(None)`);
//! - 7: ask for the authzid `admin`.
//!
//! The client nonce, the cached keys and the password are those of the RFC
//! 5802 (SHA-1, SHA-512) and RFC 7677 (SHA-256) examples, so seeds built
//! from those exchanges reach the success path. The iteration count is
//! capped at 4096 to keep runs fast. Must never panic.

// Each body includes the shared file itself, so that it stays a standalone
// module for its fuzz target; `cargo test` loads both bodies, hence twice.
#[allow(clippy::duplicate_mod)]
#[path = "sasl_scram_shared.rs"]
mod shared;

use std::sync::OnceLock;

use shared::{offer, per_hash, rfc_example, StickyErrors};
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType};
use xmpp_sansio::sasl::scram::{ScramClient, ScramClientKeys, ALL_HASHES};
use xmpp_sansio::sasl::ClientMechanism;
use xmpp_sansio::DeterministicRandom;

const SEPARATOR: u8 = 0xFF;
const MAX_STEPS: usize = 6;

fn cached_keys(index: usize) -> ScramClientKeys {
    static KEYS: OnceLock<Vec<ScramClientKeys>> = OnceLock::new();
    per_hash(&KEYS, index, |hash, salt| {
        ScramClientKeys::derive(hash, "pencil", salt, 4096).expect("valid keys")
    })
}

pub fn run(data: &[u8]) {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let index = usize::from(config & 3).min(2);
    let hash = ALL_HASHES[index];
    let binding = match (config >> 2) & 3 {
        1 => Some(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            vec![1; 32],
        )),
        2 => Some(ChannelBinding::new(
            ChannelBindingType::TlsServerEndPoint,
            vec![2; 32],
        )),
        3 => Some(ChannelBinding::new(
            ChannelBindingType::TlsUnique,
            vec![3; 12],
        )),
        _ => None,
    };
    let mut builder = ScramClient::builder(hash, "user", &offer(hash, config & 16 != 0))
        .cached_keys(cached_keys(index))
        .nonce(rfc_example(index).0)
        .min_iterations(1)
        .max_iterations(4096);
    if config & 32 != 0 {
        builder = builder.password("pencil");
    }
    if let Some(cb) = binding {
        builder = builder.channel_binding(cb);
    }
    if config & 128 != 0 {
        builder = builder.authzid("admin");
    }
    let mut client = builder
        .build(&mut DeterministicRandom::new(0))
        .expect("a valid configuration");
    let first = client
        .initial_response()
        .expect("the first message")
        .expect("SCRAM is client-first");
    assert!(first.starts_with(client.gs2_header().as_bytes()));

    let as_success = config & 64 != 0;
    let mut errors = StickyErrors::default();
    let mut done = false;
    for (i, message) in rest.split(|b| *b == SEPARATOR).take(MAX_STEPS).enumerate() {
        let result = if i == 0 || !as_success {
            client.respond(message).map(|_| ())
        } else {
            client.success(if message.is_empty() {
                None
            } else {
                Some(message)
            })
        };
        errors.check(&result);
        if result.is_ok() && i > 0 {
            // Past server-first, an accepted message means the server proved
            // itself: the keys are available.
            assert!(client.keys_for_cache().is_some());
            done = true;
        }
    }
    if !as_success && !errors.failed() && done {
        client
            .success(None)
            .expect("the signature came as a challenge");
    }
}
