//! The captured Prosody 13 WebSocket exchanges (`tests/fixtures/prosody/
//! prosody13_ws_*.txt`, xmpp.js and Strophe.js, one RFC 7395 message per
//! line) replayed against each role over `Framing::WebSocket`.
//!
//! - Client: fed Prosody's messages (`S:` lines), it must send the
//!   capturing client's messages (`C:` lines), equal as XML, with the SCRAM
//!   nonce of the capture (`replay_nonce`), IQ ids aside (the bind reply's
//!   id is rewritten to ours), and reach the same outcome.
//! - Server: fed the capturing client's messages, it must log alice in
//!   (the host knows alice/secret; for SCRAM it answers with Prosody's
//!   salt and iteration count, and a registered SCRAM-SHA-1 uses Prosody's
//!   server nonce, so the captured proofs verify) and answer the SASL
//!   steps as Prosody did.
//!
//! Where the captures go beyond what the crate supports, the replay skips
//! it and says so:
//! - XEP-0198 stream management: the web clients sent `<enable
//!   xmlns='urn:xmpp:sm:3'/>` (and xmpp.js an `<a/>`); Prosody answered
//!   `<enabled/>` and `<a/>`. Our client never enables it, so it is given
//!   none of those; our server is not fed them in the login replay, and a
//!   separate check shows what it does with `<enable/>`: the unsupported
//!   top-level element it is (`unsupported-stanza-type`).
//! - RFC 3921 sessions: Strophe.js asked for one though Prosody marked it
//!   `<optional/>`; our client does not (RFC 6121), so that `C:` line is
//!   not expected of it (our server is fed it, and answers it).
//! - xmpp.js puts a `mechanism` attribute on `<response/>` (RFC 6120 has
//!   none); it is dropped before comparing.

mod support;

use std::time::Instant;

use minidom::Element;
use support::prosody_web::{answer, assert_alice_logged_in, ScramCapture};
use xmpp_sansio::client::{
    Client, ClientError, ClientEvent, ClientSettings, Credentials, PeerRefusal, TlsMode,
};
use xmpp_sansio::ns;
use xmpp_sansio::sasl::scram::ScramServer;
use xmpp_sansio::sasl::{SaslCondition, ScramHash};
use xmpp_sansio::server::{
    BindAnswer, OfferRule, Server, ServerError, ServerEvent, ServerMechanismFactory,
    ServerSettings, ServerTls,
};
use xmpp_sansio::stream_error::StreamErrorCondition;
use xmpp_sansio::{DeterministicRandom, Framing};

const SM: &str = "urn:xmpp:sm:3";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dir {
    C,
    S,
}

/// The `C:`/`S:` lines of a capture, one message each.
fn load(file: &str) -> Vec<(Dir, String)> {
    let path = format!(
        "{}/tests/fixtures/prosody/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        !text.contains('\\'),
        "{file}: escaped lines are not expected"
    );
    text.lines()
        .filter_map(|l| {
            if let Some(m) = l.strip_prefix("C: ") {
                Some((Dir::C, m.to_owned()))
            } else {
                l.strip_prefix("S: ").map(|m| (Dir::S, m.to_owned()))
            }
        })
        .collect()
}

/// A XEP-0198 element (not a stanza or features that mention it).
fn is_sm(msg: &str) -> bool {
    element(msg).has_ns(SM)
}

/// An RFC 3921 session request.
fn is_session(msg: &str) -> bool {
    let el = element(msg);
    el.name() == "iq" && el.get_child("session", ns::SESSION).is_some()
}

/// A message as an element; a top-level `stream:` prefix is declared as
/// Prosody's `<stream:error>` needs.
fn element(msg: &str) -> Element {
    Element::from_reader_with_prefixes(
        msg.as_bytes(),
        (Some("stream".to_owned()), ns::STREAM.to_owned()),
    )
    .unwrap_or_else(|e| panic!("{e}: {msg}"))
}

/// Equal as XML, an IQ's id and xmpp.js's `mechanism` on `<response/>` aside.
fn same(ours: &Element, theirs: &Element) -> bool {
    let strip = |e: &Element| {
        let mut e = e.clone();
        if e.name() == "iq" {
            e.attrs_mut().remove(rxml::Namespace::none(), "id");
        }
        if e.is("response", ns::SASL) {
            e.attrs_mut().remove(rxml::Namespace::none(), "mechanism");
        }
        e
    };
    strip(ours) == strip(theirs)
}

fn scram_of(lines: &[(Dir, String)]) -> Option<ScramCapture> {
    let auth = lines
        .iter()
        .find(|(d, m)| *d == Dir::C && m.starts_with("<auth"))?;
    let challenge = lines
        .iter()
        .find(|(d, m)| *d == Dir::S && m.starts_with("<challenge"))?;
    ScramCapture::of(&element(&auth.1), &element(&challenge.1))
}

// ---------------------------------------------------------------------
// The client role

struct ClientRun {
    events: Vec<ClientEvent>,
    sent: Vec<Element>,
    expected: Vec<Element>,
}

fn replay_client(file: &str, mechanism: &str, password: &str) -> ClientRun {
    let lines = load(file);
    let mut c = ClientSettings::new("alice@localhost", Credentials::password(password));
    c.framing = Framing::WebSocket;
    // Plain `ws://` on loopback, which Prosody treated as secure
    // (consider_websocket_secure): no TLS under the machine.
    c.tls = TlsMode::None;
    c.policy.allow_plain_without_tls = true;
    c.policy.only = Some(vec![mechanism.into()]);
    c.resource = Some("web".into());
    c.lang = None;
    c.replay_nonce = scram_of(&lines).map(|s| s.client_nonce);
    let now = Instant::now();
    let mut client = Client::with_random(
        c.build().unwrap(),
        Box::new(DeterministicRandom::new(0)),
        now,
    );
    let their_bind_id = lines
        .iter()
        .find(|(d, m)| *d == Dir::C && m.contains(ns::BIND))
        .and_then(|(_, m)| element(m).attr("id").map(str::to_owned));
    let mut run = ClientRun {
        events: Vec::new(),
        sent: Vec::new(),
        expected: Vec::new(),
    };
    let drain = |client: &mut Client, run: &mut ClientRun| {
        while let Some(m) = client.poll_message() {
            let text = String::from_utf8(m).unwrap();
            assert!(!text.starts_with("<?xml"), "{file}: {text}");
            run.sent.push(element(&text));
        }
        while let Some(ev) = client.poll_event() {
            run.events.push(ev);
        }
    };
    drain(&mut client, &mut run);
    for (dir, msg) in &lines {
        if is_sm(msg) {
            continue; // XEP-0198: not supported (see the module docs)
        }
        match dir {
            Dir::C => {
                if is_session(msg) {
                    continue; // optional, and not asked for by our client
                }
                run.expected.push(element(msg));
                if client.is_ready() {
                    let el = element(msg);
                    if el.is("close", ns::FRAMING) {
                        client.close(now);
                    } else if !msg.contains(ns::BIND) {
                        client.send(&el).unwrap();
                    }
                }
            }
            Dir::S if client.is_closed() => {}
            Dir::S => {
                let mut m = msg.clone();
                if let Some(id) = &their_bind_id {
                    m = m.replace(&format!("id='{id}'"), "id='bind_1'");
                }
                client.feed_message(now, m.as_bytes()).unwrap();
            }
        }
        drain(&mut client, &mut run);
    }
    run
}

fn assert_same_messages(file: &str, run: &ClientRun) {
    assert_eq!(
        run.sent.len(),
        run.expected.len(),
        "{file}: ours {:#?}\ntheirs {:#?}",
        run.sent,
        run.expected
    );
    for (a, b) in run.sent.iter().zip(&run.expected) {
        assert!(same(a, b), "{file}:\nours   {a:?}\ntheirs {b:?}");
    }
}

fn error(events: &[ClientEvent]) -> Option<&ClientError> {
    events.iter().find_map(|e| match e {
        ClientEvent::Error(e) => Some(e),
        _ => None,
    })
}

#[test]
fn the_client_replays_prosodys_websocket_logins() {
    for (file, mechanism) in [
        ("prosody13_ws_scram.txt", "SCRAM-SHA-1"),
        ("prosody13_ws_plain.txt", "PLAIN"),
        ("prosody13_ws_strophe_scram.txt", "SCRAM-SHA-1"),
    ] {
        let run = replay_client(file, mechanism, "secret");
        assert_eq!(error(&run.events), None, "{file}: {:?}", run.events);
        assert!(
            run.events.iter().any(|e| matches!(
                e, ClientEvent::Ready { jid } if jid.as_str() == "alice@localhost/web"
            )),
            "{file}: {:?}",
            run.events
        );
        // The message to itself came back.
        assert!(
            run.events
                .iter()
                .any(|e| matches!(e, ClientEvent::Stanza(s) if s.name() == "message")),
            "{file}"
        );
        assert_same_messages(file, &run);
        // xmpp.js's captures end with Prosody's <close/>: a clean close.
        // Strophe.js's WebSocket closed before Prosody's <close/>.
        if !file.contains("strophe") {
            assert_eq!(run.events.last(), Some(&ClientEvent::Closed), "{file}");
        }
    }
}

#[test]
fn the_client_replays_a_wrong_password() {
    let file = "prosody13_ws_wrong_password.txt";
    let run = replay_client(file, "SCRAM-SHA-1", "wrong");
    match error(&run.events) {
        Some(ClientError::Refused(PeerRefusal::Authentication { condition, .. })) => {
            assert_eq!(*condition, Some(SaslCondition::NotAuthorized))
        }
        other => panic!("{other:?}"),
    }
    assert_same_messages(file, &run);
    assert_eq!(run.events.last(), Some(&ClientEvent::Closed));
}

/// Prosody's `<stream:error>` over WebSocket does not declare
/// `xmlns:stream`: the client takes it as the stream error it is.
#[test]
fn the_client_takes_prosodys_undeclared_stream_error() {
    let file = "prosody13_ws_sm_bad_ack_stream_error.txt";
    let lines = load(file);
    assert!(lines
        .iter()
        .any(|(d, m)| *d == Dir::S && m.starts_with("<stream:error>")));
    let run = replay_client(file, "SCRAM-SHA-1", "secret");
    match error(&run.events) {
        Some(ClientError::PeerStreamError(e)) => {
            assert_eq!(e.condition, StreamErrorCondition::UndefinedCondition);
            assert_eq!(
                e.text.as_deref(),
                Some("Client acknowledged more stanzas than sent by server")
            );
        }
        other => panic!("{other:?}: {:?}", run.events),
    }
    assert_eq!(run.events.last(), Some(&ClientEvent::Closed));
}

// ---------------------------------------------------------------------
// The server role

struct ServerRun {
    events: Vec<ServerEvent>,
    sent: Vec<Element>,
}

fn ws_server(lines: &[(Dir, String)]) -> Server {
    let mut s = ServerSettings::new("localhost");
    s.framing = Framing::WebSocket;
    s.tls = ServerTls::None;
    s.allow_plain_without_tls = true;
    s.lang = Some("en".into());
    // What Prosody offered, in its order (XEP-0474's h= covers it).
    s.mechanisms = ["SCRAM-SHA-1", "PLAIN", "OAUTHBEARER"]
        .map(String::from)
        .to_vec();
    if let Some(scram) = scram_of(lines) {
        let nonce = scram.server_nonce;
        s.registry.register(ServerMechanismFactory::new(
            "SCRAM-SHA-1",
            OfferRule::default(),
            move |i| {
                let m = ScramServer::builder(ScramHash::Sha1, false, i.offer)
                    .downgrade_protection(i.downgrade_protection)
                    .nonce(nonce.clone())
                    .build(i.rng)?;
                Ok(Box::new(m))
            },
        ));
    }
    Server::with_random(
        s.build().unwrap(),
        Box::new(DeterministicRandom::new(3)),
        Instant::now(),
    )
}

/// Feeds the capturing client's messages (XEP-0198 ones aside) to a
/// server, answering its requests; `stop` ends the replay before the
/// first message it matches.
fn replay_server(file: &str, stop: impl Fn(&str) -> bool) -> (ServerRun, Server) {
    let lines = load(file);
    let scram = scram_of(&lines);
    let mut server = ws_server(&lines);
    let now = Instant::now();
    let mut run = ServerRun {
        events: Vec::new(),
        sent: Vec::new(),
    };
    for (dir, msg) in &lines {
        if *dir != Dir::C {
            continue;
        }
        if stop(msg) {
            break;
        }
        if is_sm(msg) {
            continue;
        }
        if server.is_closed() {
            break;
        }
        server.feed_message(now, msg.as_bytes()).unwrap();
        loop {
            while let Some(m) = server.poll_message() {
                run.sent.push(element(std::str::from_utf8(&m).unwrap()));
            }
            let Some(ev) = server.poll_event() else { break };
            match &ev {
                ServerEvent::Credentials(req) => {
                    server
                        .answer_credentials(now, answer(req, scram.as_ref()))
                        .unwrap();
                }
                ServerEvent::Bind { resource, .. } => {
                    server
                        .answer_bind(now, BindAnswer::Accept(resource.clone()))
                        .unwrap();
                }
                _ => {}
            }
            run.events.push(ev);
        }
    }
    (run, server)
}

/// The SASL elements Prosody sent, in order.
fn prosodys_sasl(file: &str) -> Vec<Element> {
    load(file)
        .iter()
        .filter(|(d, m)| *d == Dir::S && m.contains(ns::SASL) && !m.contains("<stream:"))
        .map(|(_, m)| element(m))
        .collect()
}

#[test]
fn the_server_logs_in_the_captured_web_clients() {
    for file in [
        "prosody13_ws_scram.txt",
        "prosody13_ws_plain.txt",
        "prosody13_ws_strophe_scram.txt",
        "prosody13_ws_sm_bad_ack_stream_error.txt",
    ] {
        let (run, server) = replay_server(file, |_| false);
        let server_error = run.events.iter().find_map(|e| match e {
            ServerEvent::Error(e) => Some(e),
            _ => None,
        });
        assert!(server_error.is_none(), "{file}: {server_error:?}");
        // Logged in; the message to itself reached the host, `from` stamped.
        assert_alice_logged_in(&run.events, file);
        // SASL answered as Prosody did: the same challenge (nonce, salt,
        // iterations, XEP-0474 h=) and the same success (its v=).
        let ours: Vec<&Element> = run.sent.iter().filter(|e| e.has_ns(ns::SASL)).collect();
        let theirs = prosodys_sasl(file);
        assert_eq!(ours.len(), theirs.len(), "{file}");
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(*a, b, "{file}");
        }
        // The framing: <open/> twice, each followed by features; no
        // STARTTLS; one element per message.
        let opens = run
            .sent
            .iter()
            .filter(|e| e.is("open", ns::FRAMING))
            .count();
        assert_eq!(opens, 2, "{file}");
        assert!(run.sent.iter().all(|e| !e.has_ns(ns::TLS)));
        // A client's <close/> gets ours: a clean close. (The bad-ack
        // capture has none: Prosody ended that stream.)
        let client_closed = load(file)
            .iter()
            .any(|(d, m)| *d == Dir::C && element(m).is("close", ns::FRAMING));
        assert_eq!(server.is_closed(), client_closed, "{file}");
        if client_closed {
            assert!(
                run.sent.last().is_some_and(|e| e.is("close", ns::FRAMING)),
                "{file}"
            );
        }
    }
}

#[test]
fn the_server_refuses_the_captured_wrong_password() {
    let file = "prosody13_ws_wrong_password.txt";
    let (run, _) = replay_server(file, |_| false);
    assert!(run.events.iter().any(|e| matches!(
        e,
        ServerEvent::AuthenticationFailed {
            condition: SaslCondition::NotAuthorized,
            ..
        }
    )));
    assert!(!run
        .events
        .iter()
        .any(|e| matches!(e, ServerEvent::Authenticated { .. })));
    // The same challenge as Prosody's, then <failure><not-authorized/>.
    let ours: Vec<&Element> = run.sent.iter().filter(|e| e.has_ns(ns::SASL)).collect();
    let theirs = prosodys_sasl(file);
    assert_eq!(ours[0], &theirs[0]);
    assert!(ours[1].is("failure", ns::SASL));
    assert!(ours[1].get_child("not-authorized", ns::SASL).is_some());
    // The client's <close/> before the session was ready.
    assert!(run
        .events
        .iter()
        .any(|e| matches!(e, ServerEvent::Error(ServerError::ClosedByPeer))));
}

/// A server configured without stream management (XEP-0198) answers
/// the web client's `<enable/>` with `<failed><feature-not-implemented/>`
/// (the stream goes on, as XEP-0198 section 3 lets a client carry on
/// without it); `tests/sm_replay.rs` has a server with it on.
#[test]
fn the_server_without_stream_management_says_so() {
    let file = "prosody13_ws_scram.txt";
    let (_, mut server) = replay_server(file, is_sm);
    assert!(server.is_ready());
    let enable = load(file)
        .into_iter()
        .find(|(d, m)| *d == Dir::C && is_sm(m))
        .unwrap()
        .1;
    server
        .feed_message(Instant::now(), enable.as_bytes())
        .unwrap();
    let mut sent = Vec::new();
    while let Some(m) = server.poll_message() {
        sent.push(String::from_utf8(m).unwrap());
    }
    assert_eq!(
        sent,
        ["<failed xmlns='urn:xmpp:sm:3'><feature-not-implemented \
          xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"]
    );
    assert!(server.is_ready());
}
