//! Each answer of a server's host matches its request: an answer of
//! another kind is refused with `UsageError::WrongAnswer`, sends nothing
//! and changes nothing (the request still pending, the right answer later
//! works), for credentials and bind here, for registration and legacy
//! authentication in `tests/legacy.rs`. A bind refusal is a typed stanza
//! error.

mod support;

use std::time::Instant;
use xmpp_sansio::client::PeerRefusal;
use xmpp_sansio::DeterministicRandom;

use support::pair::{alice_config, server_config, Store};
use xmpp_sansio::client::{Client, ClientError, ClientEvent, TlsMode};
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest, DigestMd5Secret, ScramHash};
use xmpp_sansio::server::{
    BindAnswer, BindRefusal, LegacyAuthAnswer, Server, ServerAnswer, ServerEvent, ServerTls,
};
use xmpp_sansio::steps::LegacyError;
use xmpp_sansio::{AnswerKind, UsageError};

/// A client for alice with `mechanism` and a server offering it, no TLS.
fn pair(mechanism: &str, _seed: u64) -> (Client, Server, Instant) {
    let now = Instant::now();
    let c = alice_config(mechanism, TlsMode::None);
    let s = server_config("example.com", &[mechanism], ServerTls::None);
    (
        Client::with_random(
            c.build().unwrap(),
            Box::new(DeterministicRandom::new(0)),
            now,
        ),
        Server::with_random(
            s.build().unwrap(),
            Box::new(DeterministicRandom::new(0)),
            now,
        ),
        now,
    )
}

/// Moves bytes both ways until neither side has any; the server's
/// events, and the client's.
fn pump(c: &mut Client, s: &mut Server, now: Instant) -> (Vec<ServerEvent>, Vec<ClientEvent>) {
    let (mut sev, mut cev) = (Vec::new(), Vec::new());
    loop {
        let mut wire = Vec::new();
        let up = c.poll_transmit(&mut wire);
        if up > 0 {
            let _ = s.feed(now, &wire);
        }
        wire.clear();
        let down = s.poll_transmit(&mut wire);
        if down > 0 {
            let _ = c.feed(now, &wire);
        }
        sev.extend(std::iter::from_fn(|| s.poll_event()));
        cev.extend(std::iter::from_fn(|| c.poll_event()));
        if up == 0 && down == 0 {
            return (sev, cev);
        }
    }
}

fn credential_request(events: Vec<ServerEvent>) -> CredentialRequest {
    events
        .into_iter()
        .find_map(|e| match e {
            ServerEvent::Credentials(r) => Some(r),
            _ => None,
        })
        .expect("a credential request")
}

/// Every answer of another kind than `expected` is refused, naming both
/// kinds, and sends nothing.
fn refuse_every_other_kind(s: &mut Server, now: Instant, expected: AnswerKind) {
    let others: Vec<ServerAnswer> = vec![
        CredentialAnswer::Verdict(Ok("alice".into())).into(),
        CredentialAnswer::Scram(None).into(),
        CredentialAnswer::DigestMd5(Some(DigestMd5Secret::Password("pencil".into()))).into(),
        BindAnswer::Accept(Some("r".parse().unwrap())).into(),
        ServerAnswer::Register(Ok(())),
        LegacyAuthAnswer::Verdict(Ok(())).into(),
        LegacyAuthAnswer::ZeroK(None).into(),
        ServerAnswer::FastToken(None),
    ];
    for answer in others {
        let given = answer.kind();
        if given == expected {
            continue;
        }
        assert_eq!(
            s.answer(now, answer),
            Err(UsageError::WrongAnswer { expected, given }),
            "{given:?} to {expected:?}"
        );
        assert_eq!(s.pending_request(), Some(expected));
        assert_eq!(
            s.queued_output(),
            0,
            "{given:?} to {expected:?} sent something"
        );
        assert!(s.poll_event().is_none());
    }
    // The same through the per-kind methods.
    if expected != AnswerKind::Bind {
        assert_eq!(
            s.answer_bind(now, BindAnswer::Accept(None)),
            Err(UsageError::WrongAnswer {
                expected,
                given: AnswerKind::Bind
            })
        );
    }
    if expected != AnswerKind::Registration {
        assert_eq!(
            s.answer_register(now, Err(LegacyError::CONFLICT)),
            Err(UsageError::WrongAnswer {
                expected,
                given: AnswerKind::Registration
            })
        );
    }
}

/// Drives `mechanism` to its credential request, checks that every other
/// answer is refused, then answers right and binds: both sides ready.
fn mismatches_then_the_right_answer(mechanism: &str, expected: AnswerKind, seed: u64) {
    let (mut c, mut s, now) = pair(mechanism, seed);
    assert_eq!(s.pending_request(), None);
    let (events, _) = pump(&mut c, &mut s, now);
    let req = credential_request(events);
    assert_eq!(req.expected_answer(), expected, "{mechanism}");
    assert_eq!(s.pending_request(), Some(expected), "{mechanism}");
    refuse_every_other_kind(&mut s, now, expected);
    // The wrong answers changed nothing: the exchange is still on.
    let (events, cev) = pump(&mut c, &mut s, now);
    assert!(events.is_empty(), "{mechanism}: {events:?}");
    assert!(cev.is_empty(), "{mechanism}: {cev:?}");
    let store = Store::new(&[("alice", "pencil")]);
    s.answer(now, store.answer(&req)).unwrap();
    let (events, _) = pump(&mut c, &mut s, now);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ServerEvent::Authenticated { .. })),
        "{mechanism}: {events:?}"
    );
    assert!(events.iter().any(|e| matches!(e, ServerEvent::Bind { .. })));
    assert_eq!(s.pending_request(), Some(AnswerKind::Bind));
    refuse_every_other_kind(&mut s, now, AnswerKind::Bind);
    s.answer(now, BindAnswer::Accept(None)).unwrap();
    pump(&mut c, &mut s, now);
    assert!(c.is_ready() && s.is_ready(), "{mechanism}");
    assert_eq!(s.pending_request(), None);
    assert_eq!(
        s.answer(now, BindAnswer::Accept(None)),
        Err(UsageError::NoPendingRequest)
    );
}

#[test]
fn a_scram_request_refuses_a_verdict_and_takes_its_credentials_after() {
    // Before: the verdict was taken (`Ok`) and the client was sent
    // `temporary-auth-failure`.
    mismatches_then_the_right_answer("SCRAM-SHA-256", AnswerKind::ScramCredentials, 10);
}

#[test]
fn a_password_request_refuses_scram_credentials_and_takes_a_verdict_after() {
    mismatches_then_the_right_answer("PLAIN", AnswerKind::CredentialVerdict, 20);
}

#[test]
fn a_digest_md5_request_refuses_a_verdict_and_takes_its_secret_after() {
    mismatches_then_the_right_answer("DIGEST-MD5", AnswerKind::DigestMd5Secret, 30);
}

#[test]
fn a_scram_verdict_sends_no_temporary_auth_failure() {
    let (mut c, mut s, now) = pair("SCRAM-SHA-1", 40);
    let (events, _) = pump(&mut c, &mut s, now);
    assert!(matches!(
        credential_request(events),
        CredentialRequest::Scram {
            hash: ScramHash::Sha1,
            ..
        }
    ));
    let verdict = CredentialAnswer::Verdict(Ok("alice".into()));
    assert!(matches!(
        s.answer_credentials(now, verdict),
        Err(UsageError::WrongAnswer { .. })
    ));
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn bind_refusals_are_typed_stanza_errors() {
    for (i, (refusal, condition, kind)) in [
        (BindRefusal::Conflict, "conflict", "cancel"),
        (BindRefusal::NotAllowed, "not-allowed", "cancel"),
        (
            BindRefusal::ResourceConstraint,
            "resource-constraint",
            "wait",
        ),
        (BindRefusal::BadRequest, "bad-request", "modify"),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            (refusal.condition(), refusal.error_type()),
            (condition, kind)
        );
        let (mut c, mut s, now) = pair("PLAIN", 50 + 2 * i as u64);
        let (events, _) = pump(&mut c, &mut s, now);
        let req = credential_request(events);
        s.answer(now, Store::new(&[("alice", "pencil")]).answer(&req))
            .unwrap();
        pump(&mut c, &mut s, now);
        assert_eq!(s.pending_request(), Some(AnswerKind::Bind));
        s.answer(now, BindAnswer::Refuse(refusal)).unwrap();
        let (_, cev) = pump(&mut c, &mut s, now);
        let err = cev
            .iter()
            .find_map(|e| match e {
                ClientEvent::Error(ClientError::Refused(PeerRefusal::Bind(e))) => Some(e),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{refusal:?}: {cev:?}"));
        assert_eq!(
            (err.condition.as_str(), err.error_type.as_str()),
            (condition, kind)
        );
        assert!(!s.is_ready());
    }
}
