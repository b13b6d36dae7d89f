//! Fuzz body: the server side of SCRAM fed arbitrary client messages.
//!
//! Input layout: one configuration byte, then the client's messages
//! separated by 0xFF (a byte that never occurs in UTF-8, so real SCRAM
//! messages never contain it).
//!
//! Configuration bits:
//! - 0-1: hash (0 SHA-1, 1 SHA-256, 2 and 3 SHA-512);
//! - 2: the mechanism is `-PLUS` (the host provides tls-exporter
//!   `[1; 32]`, tls-server-end-point `[2; 32]` and tls-unique `[3; 12]`);
//! - 3: the server offered a `-PLUS` mechanism (implied by bit 2) and
//!   advertised those three XEP-0440 types;
//! - 4: send XEP-0474 `h=`;
//! - 5: empty `<auth/>` (the first message arrives as a response);
//! - 6-7: the host's answer: 0 or 1 the credentials of `user`/`pencil`,
//!   2 unknown user, 3 account disabled.
//!
//! The server nonce and the stored credentials are those of the RFC 5802
//! (SHA-1, SHA-512) and RFC 7677 (SHA-256) examples, so seeds built from
//! those exchanges reach the success path. Must never panic.

// Each body includes the shared file itself, so that it stays a standalone
// module for its fuzz target; `cargo test` loads both bodies, hence twice.
#[allow(clippy::duplicate_mod)]
#[path = "sasl_scram_shared.rs"]
mod shared;

use std::sync::OnceLock;

use shared::{offer, per_hash, rfc_example, StickyErrors};
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType};
use xmpp_sansio::sasl::scram::{
    derive_server_credentials, mechanism_name, ScramServer, ALL_HASHES,
};
use xmpp_sansio::sasl::{
    CredentialAnswer, SaslCondition, ScramCredentials, ServerMechanism, ServerStep,
};
use xmpp_sansio::DeterministicRandom;

const SEPARATOR: u8 = 0xFF;
const MAX_STEPS: usize = 8;

fn credentials(index: usize) -> ScramCredentials {
    static CREDS: OnceLock<Vec<ScramCredentials>> = OnceLock::new();
    per_hash(&CREDS, index, |hash, salt| {
        derive_server_credentials(hash, "pencil", salt, 4096).expect("valid credentials")
    })
}

pub fn run(data: &[u8]) {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let index = usize::from(config & 3).min(2);
    let hash = ALL_HASHES[index];
    let plus = config & 4 != 0;
    let offers_plus = plus || config & 8 != 0;
    let mut server = ScramServer::builder(hash, plus, &offer(hash, offers_plus))
        .downgrade_protection(config & 16 != 0)
        .nonce(rfc_example(index).1)
        .channel_binding(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            vec![1; 32],
        ))
        .channel_binding(ChannelBinding::new(
            ChannelBindingType::TlsServerEndPoint,
            vec![2; 32],
        ))
        .channel_binding(ChannelBinding::new(
            ChannelBindingType::TlsUnique,
            vec![3; 12],
        ))
        .build(&mut DeterministicRandom::new(0))
        .expect("a valid configuration");
    assert_eq!(server.name(), mechanism_name(hash, plus));

    let mut messages = rest.split(|b| *b == SEPARATOR);
    let mut step = if config & 32 != 0 {
        server.start(None)
    } else {
        server.start(Some(messages.next().unwrap_or_default()))
    };
    let mut succeeded = false;
    let mut errors = StickyErrors::default();
    for _ in 0..MAX_STEPS {
        errors.check(&step);
        step = match step {
            Ok(ServerStep::Request(_)) => server.answer(match config >> 6 {
                0 | 1 => CredentialAnswer::Scram(Some(credentials(index))),
                2 => CredentialAnswer::Scram(None),
                _ => CredentialAnswer::Verdict(Err(SaslCondition::AccountDisabled)),
            }),
            Ok(ServerStep::Success {
                identity,
                additional_data,
            }) => {
                assert!(!succeeded, "a second success");
                succeeded = true;
                assert!(!identity.username.is_empty());
                let data = additional_data.expect("SCRAM success carries v=");
                assert!(data.starts_with(b"v="));
                match messages.next() {
                    Some(m) => server.respond(m),
                    None => return,
                }
            }
            Ok(_) | Err(_) => match messages.next() {
                Some(m) => server.respond(m),
                None => return,
            },
        };
    }
}
