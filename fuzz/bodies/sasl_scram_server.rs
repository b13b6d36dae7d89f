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

use std::sync::OnceLock;

use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType};
use xmpp_sansio::sasl::scram::{
    derive_server_credentials, mechanism_name, ScramServer, ServerOffer, ALL_HASHES,
};
use xmpp_sansio::sasl::{
    CredentialAnswer, SaslCondition, ScramCredentials, ServerMechanism, ServerStep,
};
use xmpp_sansio::DeterministicRandom;

const SEPARATOR: u8 = 0xFF;
const MAX_STEPS: usize = 8;

/// (server nonce suffix, base64 salt) per hash, from the RFC examples.
fn fixed(index: usize) -> (&'static str, &'static str) {
    match index {
        1 => ("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "W22ZaJ0SNY7soEsUEjb6gQ=="),
        _ => ("3rfcNHYJY1ZVvWVs7j", "QSXCR+Q6sek8bf92"),
    }
}

fn credentials(index: usize) -> ScramCredentials {
    static CREDS: OnceLock<Vec<ScramCredentials>> = OnceLock::new();
    let all = CREDS.get_or_init(|| {
        use base64::Engine as _;
        (0..3)
            .map(|i| {
                let salt = base64::engine::general_purpose::STANDARD
                    .decode(fixed(i).1)
                    .expect("valid salt");
                derive_server_credentials(ALL_HASHES[i], "pencil", &salt, 4096)
                    .expect("valid credentials")
            })
            .collect()
    });
    all[index].clone()
}

pub fn run(data: &[u8]) {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let index = usize::from(config & 3).min(2);
    let hash = ALL_HASHES[index];
    let plus = config & 4 != 0;
    let offers_plus = plus || config & 8 != 0;
    let mut mechanisms = vec![mechanism_name(hash, false), "PLAIN"];
    let mut offer = ServerOffer::new(mechanisms.clone());
    if offers_plus {
        mechanisms.push(mechanism_name(hash, true));
        offer = ServerOffer::new(mechanisms).with_channel_binding_types([
            "tls-exporter",
            "tls-server-end-point",
            "tls-unique",
        ]);
    }
    let mut server = ScramServer::builder(hash, plus, offer)
        .downgrade_protection(config & 16 != 0)
        .nonce(fixed(index).0)
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
    let mut first_error = None;
    for _ in 0..MAX_STEPS {
        // Errors are sticky: once failed, every later call fails alike.
        match (&first_error, &step) {
            (None, Err(e)) => first_error = Some(e.clone()),
            (Some(first), later) => assert_eq!(later.as_ref().err(), Some(first)),
            _ => {}
        }
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
