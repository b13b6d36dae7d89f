//! SASL GSSAPI (RFC 4752), both sides, over the deterministic test
//! context of `support/test_gss.rs`: each step and each failure of the
//! mechanisms driven alone, then a `Client` and a `Server` logging in with
//! it end to end. (The replay of Prosody's exchange is in
//! `tests/client_transcripts.rs`.)

mod sasl_driver;
mod support;

use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use sasl_driver::{run, Outcome, Tamper};
use support::pair::{server_config, Pair, Store, TlsSim};
use support::test_gss::{TestGss, ALICE};
use xmpp_sansio::client::TlsInfo;
use xmpp_sansio::client::{
    ClientError, ClientEvent, ClientMechanismFactory, ClientSettings, Credentials, PolicyError,
};
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::sasl::gssapi::{
    GssError, GssStep, GssTarget, GssapiClient, GssapiServer, CLIENT_PROFILE, NAME,
};
use xmpp_sansio::sasl::policy::CredentialKind;
use xmpp_sansio::sasl::{
    ClientMechanism, CredentialAnswer, CredentialRequest, SaslCondition, ServerMechanism,
    ServerStep,
};
use xmpp_sansio::server::{ServerEvent, ServerMechanismFactory, ServerTls};

/// The host: alice@EXAMPLE.TEST is `alice`, who may act only as herself.
fn host(r: CredentialRequest) -> CredentialAnswer {
    Store::new(&[("alice", "unused")]).answer(&r)
}

fn client() -> GssapiClient {
    GssapiClient::new(TestGss::initiator().boxed())
}

fn server() -> GssapiServer {
    GssapiServer::new(TestGss::acceptor().boxed())
}

/// What the host was asked, and the outcome.
fn run_logged(
    c: &mut GssapiClient,
    s: &mut GssapiServer,
) -> (sasl_driver::Run, Vec<CredentialRequest>) {
    let mut asked = Vec::new();
    let r = run(
        c,
        s,
        &mut |req: CredentialRequest| {
            let a = host(req.clone());
            asked.push(req);
            a
        },
        None,
    );
    (r, asked)
}

/// The acceptor's wrap of `message`, as a server would send it.
fn wrapped(message: &[u8]) -> Vec<u8> {
    [b"WRAP:xmpp-key|".as_slice(), message].concat()
}

/// A client that got through the context: AP-REQ out, AP-REP in, the
/// empty response out.
fn established_client(authzid: &str) -> GssapiClient {
    let mut c = client().with_authzid(authzid);
    let ap_req = c.initial_response().unwrap().unwrap();
    assert!(ap_req.starts_with(b"AP-REQ:alice@EXAMPLE.TEST:"));
    assert_eq!(c.respond(b"AP-REP:xmpp-key").unwrap(), b"");
    c
}

/// A server that sent its wrapped offer.
fn offering_server() -> GssapiServer {
    let mut s = server();
    let Ok(ServerStep::Challenge(ap_rep)) = s.start(Some(b"AP-REQ:alice@EXAMPLE.TEST:xmpp-key"))
    else {
        panic!("no AP-REP")
    };
    assert_eq!(ap_rep, b"AP-REP:xmpp-key");
    let Ok(ServerStep::Challenge(offer)) = s.respond(b"") else {
        panic!("no offer")
    };
    assert_eq!(offer, wrapped(&[0x01, 0, 0, 0]));
    s
}

// ---------------------------------------------------------------------
// The exchange.

#[test]
fn mutual_authentication_runs_the_five_messages_of_rfc_4752() {
    let (r, asked) = run_logged(&mut client(), &mut server());
    let Outcome::Success(id) = r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(id.username, "alice");
    assert_eq!(id.authzid, None);
    // AP-REQ, AP-REP, empty response, wrapped offer, wrapped choice.
    let m = &r.messages;
    assert_eq!(m.len(), 5, "{m:?}");
    assert_eq!(m[0], b"AP-REQ:alice@EXAMPLE.TEST:xmpp-key");
    assert_eq!(m[1], b"AP-REP:xmpp-key");
    assert!(m[2].is_empty());
    // The offer: "no security layer" only, maximum buffer 0 (as Cyrus).
    assert_eq!(m[3], wrapped(&[0x01, 0, 0, 0]));
    // The choice: no layer, maximum buffer 0, no authzid.
    assert_eq!(m[4], wrapped(&[0x01, 0, 0, 0]));
    assert_eq!(
        asked,
        [CredentialRequest::Gssapi {
            principal: ALICE.into(),
            authzid: None
        }]
    );
}

#[test]
fn without_mutual_authentication_the_offer_follows_the_first_token() {
    let mut c = GssapiClient::new(TestGss::initiator().without_mutual().boxed());
    let mut s = GssapiServer::new(TestGss::acceptor().without_mutual().boxed());
    let (r, _) = run_logged(&mut c, &mut s);
    assert!(matches!(r.outcome, Outcome::Success(ref id) if id.username == "alice"));
    assert_eq!(r.messages.len(), 3, "{:?}", r.messages);
    assert_eq!(r.messages[1], wrapped(&[0x01, 0, 0, 0]));
}

#[test]
fn the_authzid_goes_wrapped_to_the_host() {
    let mut c = client().with_authzid("alice@example.com");
    let (r, asked) = run_logged(&mut c, &mut server());
    assert!(matches!(r.outcome, Outcome::Success(_)), "{:?}", r.outcome);
    assert_eq!(r.messages[4], wrapped(b"\x01\0\0\0alice@example.com"));
    assert_eq!(
        asked,
        [CredentialRequest::Gssapi {
            principal: ALICE.into(),
            authzid: Some("alice@example.com".into())
        }]
    );
}

#[test]
fn an_empty_auth_gets_an_empty_challenge_for_the_token() {
    let mut s = server();
    assert!(matches!(s.start(None), Ok(ServerStep::Challenge(ref c)) if c.is_empty()));
    let Ok(ServerStep::Challenge(ap_rep)) = s.respond(b"AP-REQ:alice@EXAMPLE.TEST:xmpp-key") else {
        panic!()
    };
    assert_eq!(ap_rep, b"AP-REP:xmpp-key");
}

// ---------------------------------------------------------------------
// Client failures.

#[test]
fn client_refuses_a_server_without_the_no_layer_option() {
    // Integrity and confidentiality offered, "no layer" not.
    let mut c = established_client("");
    let e = c.respond(&wrapped(&[0x06, 0x01, 0, 0])).unwrap_err();
    assert_eq!(e.condition, SaslCondition::MechanismTooWeak, "{e}");
    // Any offer with the bit is fine, whatever else it offers.
    let mut c = established_client("");
    assert_eq!(
        c.respond(&wrapped(&[0x07, 0, 0x10, 0])).unwrap(),
        wrapped(&[0x01, 0, 0, 0])
    );
}

#[test]
fn client_refuses_an_offer_that_fails_unwrap_or_is_not_four_bytes() {
    let mut c = established_client("");
    let forged = [b"WRAP:other-key|".as_slice(), &[0x01, 0, 0, 0]].concat();
    let e = c.respond(&forged).unwrap_err();
    assert_eq!(e.condition, SaslCondition::NotAuthorized, "{e}");
    for offer in [&[0x01, 0, 0][..], &[0x01, 0, 0, 0, 0], &[]] {
        let mut c = established_client("");
        let e = c.respond(&wrapped(offer)).unwrap_err();
        assert_eq!(e.condition, SaslCondition::MalformedRequest, "{e}");
    }
}

#[test]
fn client_refuses_a_bad_ap_rep_and_a_failing_context() {
    let mut c = client();
    c.initial_response().unwrap();
    let e = c.respond(b"AP-REP:forged").unwrap_err();
    assert_eq!(e.condition, SaslCondition::NotAuthorized, "{e}");
    let mut ctx = TestGss::initiator();
    ctx.fail = Some("No Kerberos credentials available");
    let e = GssapiClient::new(ctx.boxed())
        .initial_response()
        .unwrap_err();
    assert_eq!(e.condition, SaslCondition::NotAuthorized, "{e}");
    // The host's text (its own diagnostic) stays the host's.
    assert!(!e.to_string().contains("Kerberos credentials"));
}

#[test]
fn client_refuses_an_authzid_too_long_or_with_nul() {
    for authzid in ["a".repeat(3072), "alice\0admin".into()] {
        let mut c = established_client(&authzid);
        let e = c.respond(&wrapped(&[0x01, 0, 0, 0])).unwrap_err();
        assert_eq!(e.condition, SaslCondition::MalformedRequest, "{e}");
    }
    // The longest JID is fine.
    let mut c = established_client(&"a".repeat(3071));
    assert!(c.respond(&wrapped(&[0x01, 0, 0, 0])).is_ok());
}

#[test]
fn client_refuses_success_too_early_or_with_data_and_extra_challenges() {
    // Success right after the AP-REQ: the server proved nothing.
    let mut c = client();
    c.initial_response().unwrap();
    let e = c.success(None).unwrap_err();
    assert_eq!(e.condition, SaslCondition::NotAuthorized, "{e}");
    // Success before the layer exchange.
    let mut c = established_client("");
    assert_eq!(
        c.success(None).unwrap_err().condition,
        SaslCondition::NotAuthorized
    );
    // Success with data.
    let mut c = established_client("");
    c.respond(&wrapped(&[0x01, 0, 0, 0])).unwrap();
    assert_eq!(
        c.success(Some(b"x")).unwrap_err().condition,
        SaslCondition::MalformedRequest
    );
    // A challenge after the layer answer.
    let mut c = established_client("");
    c.respond(&wrapped(&[0x01, 0, 0, 0])).unwrap();
    assert_eq!(
        c.respond(b"more").unwrap_err().condition,
        SaslCondition::MalformedRequest
    );
    // Empty success data is no data.
    let mut c = established_client("");
    c.respond(&wrapped(&[0x01, 0, 0, 0])).unwrap();
    assert!(c.success(Some(b"")).is_ok());
}

#[test]
fn a_context_that_never_completes_is_cut_off() {
    struct Endless;
    impl xmpp_sansio::sasl::gssapi::GssContext for Endless {
        fn step(&mut self, _: Option<&[u8]>) -> Result<GssStep, GssError> {
            Ok(GssStep::Continue(b"more".to_vec()))
        }
        fn wrap(&mut self, _: &[u8]) -> Result<Vec<u8>, GssError> {
            Err(GssError::new("no"))
        }
        fn unwrap(&mut self, _: &[u8]) -> Result<Vec<u8>, GssError> {
            Err(GssError::new("no"))
        }
        fn peer_name(&self) -> Option<String> {
            None
        }
    }
    let r = run(
        &mut GssapiClient::new(Box::new(Endless)),
        &mut GssapiServer::new(Box::new(Endless)),
        &mut host,
        None,
    );
    assert!(
        matches!(
            r.outcome,
            Outcome::ClientFailed(_) | Outcome::ServerFailed(_)
        ),
        "{:?}",
        r.outcome
    );
    assert!(r.messages.len() <= 20, "{}", r.messages.len());
}

// ---------------------------------------------------------------------
// Server failures.

#[test]
fn server_refuses_a_forged_ticket() {
    let mut c = GssapiClient::new(TestGss::initiator().with_key("guessed").boxed());
    let (r, asked) = run_logged(&mut c, &mut server());
    assert_eq!(
        r.outcome.server_condition(),
        Some(SaslCondition::NotAuthorized)
    );
    assert!(asked.is_empty());
}

#[test]
fn server_refuses_a_bad_layer_byte() {
    for choice in [
        &[0x02, 0, 0x10, 0][..],
        &[0x04, 0, 0, 0],
        &[0x03, 0, 0, 0],
        &[0, 0, 0, 0],
    ] {
        let mut s = offering_server();
        let e = s.respond(&wrapped(choice)).unwrap_err();
        assert_eq!(
            e.condition,
            SaslCondition::MalformedRequest,
            "{choice:?}: {e}"
        );
    }
    // The maximum buffer size of a "no layer" choice is not looked at.
    let mut s = offering_server();
    assert!(matches!(
        s.respond(&wrapped(&[0x01, 0xff, 0xff, 0xff])),
        Ok(ServerStep::Request(_))
    ));
}

#[test]
fn server_refuses_a_bad_wrap_and_a_short_answer() {
    let mut s = offering_server();
    let forged = [b"WRAP:other-key|".as_slice(), &[0x01, 0, 0, 0]].concat();
    assert_eq!(
        s.respond(&forged).unwrap_err().condition,
        SaslCondition::NotAuthorized
    );
    for short in [&[][..], &[0x01], &[0x01, 0, 0]] {
        let mut s = offering_server();
        assert_eq!(
            s.respond(&wrapped(short)).unwrap_err().condition,
            SaslCondition::MalformedRequest
        );
    }
}

#[test]
fn server_refuses_a_bad_authzid() {
    let long = [&[0x01, 0, 0, 0][..], "a".repeat(3072).as_bytes()].concat();
    for choice in [long, b"\x01\0\0\0\xff".to_vec(), b"\x01\0\0\0a\0b".to_vec()] {
        let mut s = offering_server();
        assert_eq!(
            s.respond(&wrapped(&choice)).unwrap_err().condition,
            SaslCondition::MalformedRequest
        );
    }
}

#[test]
fn server_wants_an_empty_response_after_its_last_token() {
    let mut s = server();
    s.start(Some(b"AP-REQ:alice@EXAMPLE.TEST:xmpp-key"))
        .unwrap();
    assert_eq!(
        s.respond(b"x").unwrap_err().condition,
        SaslCondition::MalformedRequest
    );
    // An empty initial token is not a token.
    assert_eq!(
        server().start(Some(b"")).unwrap_err().condition,
        SaslCondition::MalformedRequest
    );
}

#[test]
fn host_refusal_reaches_the_client() {
    // Alice asking to be bob: invalid-authzid.
    let mut c = client().with_authzid("bob@example.com");
    let (r, _) = run_logged(&mut c, &mut server());
    assert_eq!(
        r.outcome.server_condition(),
        Some(SaslCondition::InvalidAuthzid)
    );
    // A principal the host does not know: not-authorized.
    let mut c = GssapiClient::new(
        TestGss::initiator()
            .with_principal("mallory@EXAMPLE.TEST")
            .boxed(),
    );
    let (r, _) = run_logged(&mut c, &mut server());
    assert_eq!(
        r.outcome.server_condition(),
        Some(SaslCondition::NotAuthorized)
    );
}

#[test]
fn server_protocol_errors_of_the_host_and_order() {
    // The wrong kind of answer.
    let mut s = offering_server();
    s.respond(&wrapped(&[0x01, 0, 0, 0])).unwrap();
    let e = s.answer(CredentialAnswer::Scram(None)).unwrap_err();
    assert_eq!(e.condition, SaslCondition::TemporaryAuthFailure);
    // An answer with nothing pending.
    let e = server()
        .answer(CredentialAnswer::Verdict(Ok("alice".into())))
        .unwrap_err();
    assert_eq!(e.condition, SaslCondition::TemporaryAuthFailure);
    // A context that names no peer: the host's bug.
    let mut ctx = TestGss::acceptor();
    ctx.no_peer_name = true;
    let mut s = GssapiServer::new(ctx.boxed());
    s.start(Some(b"AP-REQ:alice@EXAMPLE.TEST:xmpp-key"))
        .unwrap();
    s.respond(b"").unwrap();
    let e = s.respond(&wrapped(&[0x01, 0, 0, 0])).unwrap_err();
    assert_eq!(e.condition, SaslCondition::TemporaryAuthFailure);
    // A response after the request.
    let mut s = offering_server();
    s.respond(&wrapped(&[0x01, 0, 0, 0])).unwrap();
    assert_eq!(
        s.respond(b"again").unwrap_err().condition,
        SaslCondition::MalformedRequest
    );
}

#[test]
fn tampering_with_any_message_fails() {
    for message in 0..5 {
        for pos in [0, 9, 1000] {
            let t = Tamper {
                message,
                pos,
                xor: 0x40,
            };
            let r = run(&mut client(), &mut server(), &mut host, Some(t));
            assert!(
                !matches!(r.outcome, Outcome::Success(_)),
                "message {message} at {pos}: {:?}",
                r.outcome
            );
        }
    }
}

#[test]
fn debug_shows_no_token() {
    let mut c = client();
    c.initial_response().unwrap();
    let mut s = server();
    s.start(Some(b"AP-REQ:alice@EXAMPLE.TEST:xmpp-key"))
        .unwrap();
    for shown in [
        format!("{c:?}"),
        format!("{s:?}"),
        format!("{:?}", GssStep::Continue(b"AP-REQ:xmpp-key".to_vec())),
    ] {
        assert!(!shown.contains("xmpp-key"), "{shown}");
    }
}

// ---------------------------------------------------------------------
// A Client and a Server.

fn tls13() -> TlsInfo {
    TlsInfo {
        version: TlsVersion::Tls13,
        channel_bindings: Vec::new(),
    }
}

/// Our client (Kerberos credentials: `Credentials::Host`) and our
/// server, both registering GSSAPI with test contexts, over STARTTLS; the
/// server offers `offered` (GSSAPI among them or not). The targets the
/// factories were called with are recorded.
fn gssapi_pair(
    offered: &[&str],
    authzid_tweak: impl FnOnce(&mut ClientSettings),
) -> (Pair, Arc<Mutex<Vec<String>>>) {
    let targets: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut c = ClientSettings::new("alice@example.com", Credentials::Host);
    c.resource = Some("pair".into());
    let t = targets.clone();
    c.mechanisms.register(ClientMechanismFactory::gssapi(
        move |target: GssTarget<'_>| {
            t.lock()
                .unwrap()
                .push(format!("client {}", target.hostbased_name()));
            Ok(TestGss::initiator().boxed())
        },
    ));
    let mut s = server_config("example.com", offered, ServerTls::StartTlsRequired);
    let t = targets.clone();
    s.registry
        .register(ServerMechanismFactory::gssapi(move |target| {
            t.lock()
                .unwrap()
                .push(format!("server {}", target.hostbased_name()));
            Ok(TestGss::acceptor().boxed())
        }));
    authzid_tweak(&mut c);
    let tls = TlsSim::same(tls13());
    let mut pair = Pair::with_alice(c, s, Some(tls));
    pair.negotiate();
    (pair, targets)
}

#[test]
fn client_and_server_log_in_with_gssapi_end_to_end() {
    let (pair, targets) = gssapi_pair(&["SCRAM-SHA-256", "GSSAPI", "PLAIN"], |_| {});
    assert!(
        pair.client.is_ready() && pair.server.is_ready(),
        "{:?} {:?}",
        pair.client_error(),
        pair.server_error()
    );
    let up = String::from_utf8_lossy(&pair.up_bytes);
    let down = String::from_utf8_lossy(&pair.down_bytes);
    assert!(up.contains("mechanism='GSSAPI'"), "{up}");
    // AP-REP and the offer; the empty response and the choice.
    assert_eq!(down.matches("<challenge").count(), 2, "{down}");
    assert_eq!(up.matches("<response").count(), 2, "{up}");
    assert!(
        up.contains("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
        "{up}"
    );
    assert!(pair
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Authenticated { mechanism, .. } if mechanism == NAME)));
    assert!(pair.server_events.iter().any(|e| matches!(
        e,
        ServerEvent::Authenticated { mechanism, identity, .. }
            if mechanism == NAME && identity.username == "alice"
    )));
    assert!(pair.server_events.iter().any(
        |e| matches!(e, ServerEvent::Ready { jid } if jid.as_str() == "alice@example.com/pair")
    ));
    // One context per side, for xmpp@ the domain.
    assert_eq!(
        *targets.lock().unwrap(),
        ["client xmpp@example.com", "server xmpp@example.com"]
    );
}

#[test]
fn a_client_with_a_password_does_not_pick_gssapi_nor_does_one_without_a_factory() {
    // Registered, but the credentials are a password: SCRAM.
    let (pair, targets) = gssapi_pair(&["GSSAPI", "SCRAM-SHA-256"], |c| {
        c.credentials = Credentials::password("pencil")
    });
    assert!(pair.client.is_ready(), "{:?}", pair.client_error());
    assert!(String::from_utf8_lossy(&pair.up_bytes).contains("mechanism='SCRAM-SHA-256'"));
    assert_eq!(*targets.lock().unwrap(), Vec::<String>::new());
    // Host credentials without the factory: nothing to pick.
    let (pair, _) = gssapi_pair(&["GSSAPI", "PLAIN"], |c| {
        c.mechanisms.remove(NAME);
    });
    assert!(matches!(
        pair.client_error(),
        Some(ClientError::Policy(PolicyError::NoMechanism(_)))
    ));
}

#[test]
fn gssapi_ranks_above_plain_and_external_among_host_mechanisms() {
    assert_eq!(CLIENT_PROFILE.credentials, CredentialKind::Host);
    const { assert!(CLIENT_PROFILE.rank > 100) };
    const { assert!(!CLIENT_PROFILE.cleartext && !CLIENT_PROFILE.channel_binding) };
}

#[test]
fn a_failing_factory_fails_the_login_cleanly() {
    let mut c = ClientSettings::new("alice@example.com", Credentials::Host);
    c.mechanisms.register(ClientMechanismFactory::gssapi(|_| {
        Err(GssError::new("No Kerberos credentials available"))
    }));
    let mut s = server_config("example.com", &["GSSAPI"], ServerTls::StartTlsRequired);
    s.registry.register(ServerMechanismFactory::gssapi(|_| {
        Ok(TestGss::acceptor().boxed())
    }));
    let tls = TlsSim::same(tls13());
    let mut pair = Pair::with_alice(c, s, Some(tls));
    pair.negotiate();
    assert!(!pair.client.is_ready());
    assert!(pair.client_error().is_some());
    // Nothing was sent: no <auth/>.
    assert!(!String::from_utf8_lossy(&pair.up_bytes).contains("<auth"));
    // And a server whose acceptor cannot be made says so to the client.
    let (mut c, mut s) = (
        ClientSettings::new("alice@example.com", Credentials::Host),
        server_config("example.com", &["GSSAPI"], ServerTls::StartTlsRequired),
    );
    c.mechanisms.register(ClientMechanismFactory::gssapi(|_| {
        Ok(TestGss::initiator().boxed())
    }));
    s.registry.register(ServerMechanismFactory::gssapi(|_| {
        Err(GssError::new("no keytab"))
    }));
    let tls = TlsSim::same(tls13());
    let mut pair = Pair::with_alice(c, s, Some(tls));
    pair.negotiate();
    assert_eq!(
        pair.server_auth_failure(),
        Some(SaslCondition::TemporaryAuthFailure)
    );
}

// ---------------------------------------------------------------------
// Arbitrary messages.

/// A message: one of the exchange's genuine ones (so that a run gets
/// deep), or arbitrary bytes.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"AP-REQ:alice@EXAMPLE.TEST:xmpp-key".to_vec()),
        Just(b"AP-REP:xmpp-key".to_vec()),
        Just(Vec::new()),
        Just(wrapped(&[0x01, 0, 0, 0])),
        prop::collection::vec(any::<u8>(), 0..8)
            .prop_map(|tail| wrapped(&[[0x01, 0, 0, 0].as_slice(), &tail].concat())),
        prop::collection::vec(any::<u8>(), 0..48),
    ]
}

proptest! {
    /// Either side fed any sequence of messages ends in a step or a typed
    /// error, never a panic; the server asks the host at most once and
    /// succeeds only for alice.
    #[test]
    fn arbitrary_messages_never_panic(
        messages in prop::collection::vec(message(), 0..7),
        empty_auth in any::<bool>(),
    ) {
        let mut s = server();
        let mut asked = 0;
        let mut step = s.start(if empty_auth { None } else { messages.first().map(Vec::as_slice) });
        for m in messages.iter().skip(1) {
            step = match step {
                Ok(ServerStep::Request(r)) => {
                    asked += 1;
                    s.answer(host(r))
                }
                Ok(ServerStep::Challenge(_)) => s.respond(m),
                Ok(ServerStep::Success { identity, .. }) => {
                    prop_assert_eq!(identity.username, "alice");
                    break;
                }
                Ok(_) | Err(_) => break,
            };
        }
        prop_assert!(asked <= 1);

        let mut c = client();
        let _ = c.initial_response();
        for m in &messages {
            let _ = c.respond(m);
        }
        let _ = c.success(None);
    }
}

// ---------------------------------------------------------------------
// The server against the Prosody capture's client.

/// The base64-decoded text of every `<tag ...>` element in `side`.
fn payloads_of(tag: &str, side: &str) -> Vec<Vec<u8>> {
    side.split(&format!("<{tag} "))
        .skip(1)
        .map(|rest| {
            let (open, after) = rest.split_once('>').unwrap();
            match open.ends_with('/') {
                true => Vec::new(),
                false => xmpp_sansio::sasl::decode_payload(after.split('<').next().unwrap())
                    .unwrap()
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// An acceptor that replays Cyrus's side of the capture: it accepts the
/// captured AP-REQ with the captured AP-REP, wraps the offer as the
/// captured token (whose RFC 4121 payload must be the offer) and unwraps
/// RFC 4121 tokens for real.
struct CyrusReplay {
    ap_req: Vec<u8>,
    ap_rep: Vec<u8>,
    offer: Vec<u8>,
    established: bool,
}

impl xmpp_sansio::sasl::gssapi::GssContext for CyrusReplay {
    fn step(&mut self, token: Option<&[u8]>) -> Result<GssStep, GssError> {
        if token != Some(self.ap_req.as_slice()) {
            return Err(GssError::new("not the captured AP-REQ"));
        }
        self.established = true;
        Ok(GssStep::Complete(Some(self.ap_rep.clone())))
    }
    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        match support::test_gss::cfx_payload(&self.offer) {
            Some(p) if p == message => Ok(self.offer.clone()),
            _ => Err(GssError::new("not the captured offer")),
        }
    }
    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        support::test_gss::cfx_payload(token)
            .map(<[u8]>::to_vec)
            .ok_or(GssError::new("not a wrap token"))
    }
    fn peer_name(&self) -> Option<String> {
        self.established.then(|| ALICE.to_owned())
    }
}

/// Our server, fed the capture's client messages, sends Prosody's
/// challenges (the same offer: "no layer", maximum buffer 0) and asks the
/// host for alice with no authzid.
#[test]
fn server_answers_the_prosody_capture_client_as_prosody_did() {
    let t = support::Transcript::load("kerberos/prosody13_gssapi_login.txt");
    let c_side = String::from_utf8(t.bytes_of(support::Dir::C)).unwrap();
    let s_side = String::from_utf8(t.bytes_of(support::Dir::S)).unwrap();
    let (auth, challenges, responses) = (
        payloads_of("auth", &c_side),
        payloads_of("challenge", &s_side),
        payloads_of("response", &c_side),
    );
    let mut s = GssapiServer::new(Box::new(CyrusReplay {
        ap_req: auth[0].clone(),
        ap_rep: challenges[0].clone(),
        offer: challenges[1].clone(),
        established: false,
    }));
    let Ok(ServerStep::Challenge(first)) = s.start(Some(&auth[0])) else {
        panic!("no AP-REP")
    };
    assert_eq!(first, challenges[0]);
    let Ok(ServerStep::Challenge(offer)) = s.respond(&responses[0]) else {
        panic!("no offer")
    };
    assert_eq!(offer, challenges[1]);
    let Ok(ServerStep::Request(r)) = s.respond(&responses[1]) else {
        panic!("no request")
    };
    assert_eq!(
        r,
        CredentialRequest::Gssapi {
            principal: ALICE.into(),
            authzid: None
        }
    );
    assert!(matches!(
        s.answer(host(r)),
        Ok(ServerStep::Success { identity, additional_data: None }) if identity.username == "alice"
    ));
}
