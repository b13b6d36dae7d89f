//! The public SASL traits suffice for a mechanism the crate does not ship:
//! a toy GSSAPI (RFC 4752 shaped: context tokens, then a wrapped
//! security-layer negotiation carrying the authzid), client and server
//! side, whose "Kerberos library" is a small struct of the host
//! (`support/toy_gssapi.rs`), driven here without the state machines;
//! `tests/pair.rs` registers it in a `Client` and a `Server`.

mod sasl_driver;
mod support;

use sasl_driver::{run, Outcome, Tamper};
use support::toy_gssapi::{client, server, service, ToyKerberos};
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest, SaslCondition};

/// The host: maps alice@EXAMPLE.COM to `alice`, lets her act only as
/// herself.
fn host(r: CredentialRequest) -> CredentialAnswer {
    match r {
        CredentialRequest::External { authzid } => match authzid.as_deref() {
            None | Some("alice@example.com") => CredentialAnswer::Verdict(Ok("alice".into())),
            Some(_) => CredentialAnswer::Verdict(Err(SaslCondition::InvalidAuthzid)),
        },
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn host_mechanism_runs_to_success() {
    let r = run(
        &mut *client(service(), "alice@example.com"),
        &mut *server(),
        &mut host,
        None,
    );
    let Outcome::Success(id) = r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(id.username, "alice");
    // AP-REQ, AP-REP, empty, wrapped offer, wrapped choice.
    assert_eq!(r.messages.len(), 5);
    assert!(r.messages[2].is_empty());
}

#[test]
fn forged_ticket_fails_on_the_server() {
    let forged = ToyKerberos {
        key: b"guessed key".to_vec(),
    };
    let r = run(&mut *client(forged, ""), &mut *server(), &mut host, None);
    assert_eq!(
        r.outcome.server_condition(),
        Some(SaslCondition::NotAuthorized)
    );
}

#[test]
fn host_refusal_reaches_the_peer() {
    let r = run(
        &mut *client(service(), "admin@example.com"),
        &mut *server(),
        &mut host,
        None,
    );
    assert_eq!(
        r.outcome.server_condition(),
        Some(SaslCondition::InvalidAuthzid)
    );
}

#[test]
fn tampering_with_any_message_fails() {
    for message in 0..5 {
        for pos in [0, 7, 1000] {
            let t = Tamper {
                message,
                pos,
                xor: 0x40,
            };
            let r = run(
                &mut *client(service(), ""),
                &mut *server(),
                &mut host,
                Some(t),
            );
            match (&r.outcome, message) {
                // Tokens from the client: the server refuses them.
                (Outcome::ServerFailed(e), 0 | 2 | 4) => assert!(
                    matches!(
                        e.condition,
                        SaslCondition::NotAuthorized | SaslCondition::MalformedRequest
                    ),
                    "{e:?}"
                ),
                // Tokens from the server: the client refuses them.
                (Outcome::ClientFailed(e), 1 | 3) => {
                    assert_eq!(e.condition, SaslCondition::NotAuthorized)
                }
                (other, _) => panic!("message {message}: {other:?}"),
            }
        }
    }
}
