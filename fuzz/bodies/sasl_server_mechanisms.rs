//! Fuzz body: the server side of PLAIN, X-OAUTH2, X-GOOGLE-TOKEN,
//! OAUTHBEARER, DIGEST-MD5, EXTERNAL and ANONYMOUS fed arbitrary client
//! messages, with a deterministic host answering every request. Must never
//! panic.
//!
//! Input layout: byte 0 selects, the rest is split at [`SEPARATOR`] bytes
//! into the client's messages (the initial response, then the responses).
//!
//! - bits 0-2 (`byte0 & 7`, modulo 7): the mechanism, in [`MECHANISMS`]
//!   order;
//! - bit 3 (`0x08`): start without an initial response (`<auth/>` empty),
//!   so the first message answers the server's first challenge;
//! - bit 4 (`0x10`): the host refuses whatever it is asked.
//!
//! DIGEST-MD5 runs with RFC 2831's parameters (service `imap`, domain
//! `elwood.innosoft.com`, nonce `OA6MG9tEQGm2hh`, password `secret`) so
//! that a seed can reach success. The host accepts password `secret` and
//! token `token`.

use xmpp_sansio::sasl::anonymous::AnonymousServer;
use xmpp_sansio::sasl::digest_md5::DigestMd5Server;
use xmpp_sansio::sasl::external::ExternalServer;
use xmpp_sansio::sasl::oauthbearer::OAuthBearerServer;
use xmpp_sansio::sasl::plain::PlainServer;
use xmpp_sansio::sasl::x_google_token::XGoogleTokenServer;
use xmpp_sansio::sasl::x_oauth2::XOAuth2Server;
use xmpp_sansio::sasl::{
    CredentialAnswer, CredentialRequest, DigestMd5Secret, SaslCondition, Secret, ServerMechanism,
    ServerStep,
};
use xmpp_sansio::DeterministicRandom;

/// Splits the input into messages.
pub const SEPARATOR: u8 = 0xff;

/// The mechanisms, in selector order.
pub const MECHANISMS: [&str; 7] = [
    "PLAIN",
    "X-OAUTH2",
    "X-GOOGLE-TOKEN",
    "OAUTHBEARER",
    "DIGEST-MD5",
    "EXTERNAL",
    "ANONYMOUS",
];

fn server(index: usize) -> Box<dyn ServerMechanism> {
    let mut rng = DeterministicRandom::new(0x5eed);
    match index {
        0 => Box::new(PlainServer::new()),
        1 => Box::new(XOAuth2Server::new()),
        2 => Box::new(XGoogleTokenServer::new()),
        3 => Box::new(OAuthBearerServer::new().with_error_scope("xmpp")),
        4 => Box::new(
            DigestMd5Server::new("elwood.innosoft.com", &mut rng)
                .with_service("imap")
                .with_nonce("OA6MG9tEQGm2hh"),
        ),
        5 => Box::new(ExternalServer::new()),
        _ => Box::new(AnonymousServer::new()),
    }
}

fn host(request: CredentialRequest, refuse: bool) -> CredentialAnswer {
    let verdict = |ok: bool, name: String| {
        if ok && !refuse {
            CredentialAnswer::Verdict(Ok(name))
        } else {
            CredentialAnswer::Verdict(Err(SaslCondition::NotAuthorized))
        }
    };
    match request {
        CredentialRequest::Password {
            username, password, ..
        } => verdict(password.ct_eq("secret"), username),
        CredentialRequest::Token {
            username, token, ..
        } => verdict(token.ct_eq("token"), format!("user-{username}")),
        CredentialRequest::DigestMd5 { .. } if refuse => {
            CredentialAnswer::Verdict(Err(SaslCondition::AccountDisabled))
        }
        CredentialRequest::DigestMd5 { .. } => {
            CredentialAnswer::DigestMd5(Some(DigestMd5Secret::Password(Secret::new("secret"))))
        }
        CredentialRequest::External { .. } => verdict(true, "external".into()),
        CredentialRequest::Anonymous { .. } => verdict(true, "anonymous".into()),
        // Requests this body's mechanisms never make: a wrong answer.
        _ => CredentialAnswer::Verdict(Ok(String::new())),
    }
}

/// Runs one exchange. Returns the mechanism and the outcome (the user name,
/// or the failure condition), or `None` when the input ran out first.
pub fn drive(data: &[u8]) -> Option<(&'static str, Result<String, SaslCondition>)> {
    let (&selector, rest) = data.split_first()?;
    let index = usize::from(selector & 0x07) % MECHANISMS.len();
    let refuse = selector & 0x10 != 0;
    let mut messages = rest.split(|b| *b == SEPARATOR);
    let mut server = server(index);
    assert_eq!(server.name(), MECHANISMS[index]);
    let mut step = if selector & 0x08 != 0 {
        server.start(None)
    } else {
        server.start(messages.next())
    };
    let mut outcome = None;
    for _ in 0..64 {
        step = match step {
            Ok(ServerStep::Request(r)) => server.answer(host(r, refuse)),
            Ok(ServerStep::Challenge(_)) => match messages.next() {
                Some(m) => server.respond(m),
                None => break,
            },
            Ok(ServerStep::Success { identity, .. }) => {
                outcome = Some((MECHANISMS[index], Ok(identity.username)));
                break;
            }
            Err(e) => {
                outcome = Some((MECHANISMS[index], Err(e.condition)));
                break;
            }
            Ok(_) => break,
        };
    }
    // Whatever state it is in now, more input must not panic either.
    let _ = server.respond(b"");
    let _ = server.answer(CredentialAnswer::DigestMd5(None));
    let _ = server.start(None);
    outcome
}

/// The fuzz entry point.
pub fn run(data: &[u8]) {
    let _ = drive(data);
}
