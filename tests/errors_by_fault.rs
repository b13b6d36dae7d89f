//! Errors sorted by fault on both roles (issue 12, point 6): each way a
//! stream fails lands in its category, and `condition()` names exactly
//! the stream error that went on the wire (or none when none did).

mod support;

use std::time::{Duration, Instant};

use support::pair::{alice_config, server_config};
use xmpp_sansio::client::{Client, ClientError, ClientEvent, PeerRefusal, PolicyError, TlsMode};
use xmpp_sansio::error::{Deadline, Misbehavior};
use xmpp_sansio::server::{
    PolicyError as ServerPolicy, Server, ServerError, ServerEvent, ServerTls,
};
use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition as C};
use xmpp_sansio::DeterministicRandom;

const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='s1' version='1.0'>";
const CLIENT_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
const PLAIN_FEATURES: &str = "<stream:features><mechanisms \
    xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";

/// The condition of the `<stream:error/>` in `out`, if there is one.
fn condition_on_wire(out: &str) -> Option<C> {
    let start = out.find("<stream:error>")? + "<stream:error>".len();
    let name: String = out[start + 1..]
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '-')
        .collect();
    C::from_name(&name, "")
}

/// A client fed `input` (after its header went out): its error and all
/// it wrote.
fn client_after(tls: TlsMode, input: &[&str], now: Instant) -> (Client, String) {
    let mut c = Client::with_random(
        alice_config("PLAIN", tls).build().unwrap(),
        Box::new(DeterministicRandom::new(0)),
        now,
    );
    for chunk in input {
        let _ = c.feed(now, chunk.as_bytes());
    }
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    (c, String::from_utf8(out).unwrap())
}

fn client_error(c: &mut Client) -> ClientError {
    let mut seen = None;
    while let Some(ev) = c.poll_event() {
        if let ClientEvent::Error(e) = ev {
            seen = Some(e);
        }
    }
    let e = seen.expect("the client reported an error");
    assert_eq!(c.error(), Some(&e), "error() and the event agree");
    e
}

/// The client's error lands in `category`, and its `condition()` is on
/// the wire.
fn check_client(mut c: Client, out: String, category: impl Fn(&ClientError) -> bool) {
    let e = client_error(&mut c);
    assert!(category(&e), "{e:?}");
    assert_eq!(e.condition(), condition_on_wire(&out), "{e:?}: {out}");
    assert!(!e.to_string().is_empty());
}

#[test]
fn client_errors_by_fault_with_the_condition_sent() {
    let now = Instant::now();
    // The server sent bytes that are not XML.
    let (c, out) = client_after(
        TlsMode::None,
        &[SERVER_HEADER, "<stream:features><b></stream:features>"],
        now,
    );
    check_client(c, out, |e| {
        matches!(e, ClientError::PeerMisbehaved(Misbehavior::Read(_)))
    });
    // An element illegal in the phase.
    let (c, out) = client_after(TlsMode::None, &[SERVER_HEADER, "<message/>"], now);
    check_client(c, out, |e| {
        matches!(e, ClientError::PeerMisbehaved(Misbehavior::Protocol { .. }))
    });
    // A challenge PLAIN cannot take: <abort/>, no stream error.
    let (c, out) = client_after(
        TlsMode::None,
        &[
            SERVER_HEADER,
            PLAIN_FEATURES,
            "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>!!</challenge>",
        ],
        now,
    );
    assert!(out.contains("<abort"), "{out}");
    check_client(c, out, |e| {
        matches!(e, ClientError::PeerMisbehaved(Misbehavior::Sasl(_)))
    });
    // The server refused the credentials.
    let (c, out) = client_after(
        TlsMode::None,
        &[
            SERVER_HEADER,
            PLAIN_FEATURES,
            "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>",
        ],
        now,
    );
    check_client(c, out, |e| {
        matches!(e, ClientError::Refused(PeerRefusal::Authentication { .. }))
    });
    // Our policy: TLS required, none offered.
    let (c, out) = client_after(
        TlsMode::StartTlsRequired,
        &[SERVER_HEADER, PLAIN_FEATURES],
        now,
    );
    check_client(c, out, |e| {
        matches!(e, ClientError::Policy(PolicyError::TlsRequired))
    });
    // Our policy: nothing acceptable offered.
    let (c, out) = client_after(
        TlsMode::None,
        &[
            SERVER_HEADER,
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <mechanism>X-UNKNOWN</mechanism></mechanisms></stream:features>",
        ],
        now,
    );
    check_client(c, out, |e| {
        matches!(e, ClientError::Policy(PolicyError::MechanismRefused(_)))
    });
    // The server's stream error: nothing sent back.
    let (c, out) = client_after(
        TlsMode::None,
        &[
            SERVER_HEADER,
            "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        ],
        now,
    );
    check_client(c, out, |e| matches!(e, ClientError::PeerStreamError(_)));
    // The server closed early.
    let (c, out) = client_after(TlsMode::None, &[SERVER_HEADER, "</stream:stream>"], now);
    check_client(c, out, |e| matches!(e, ClientError::ClosedByPeer));
}

#[test]
fn client_deadlines_and_the_host_by_fault() {
    let now = Instant::now();
    // Negotiation: no stream error.
    let (mut c, _) = client_after(TlsMode::None, &[SERVER_HEADER], now);
    c.handle_timeout(now + Duration::from_secs(31));
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    check_client(c, String::from_utf8(out).unwrap(), |e| {
        *e == ClientError::Timeout(Deadline::Negotiation)
    });
    // The host ended the stream.
    let (mut c, _) = client_after(TlsMode::None, &[SERVER_HEADER], now);
    c.close_with_error(StreamError::new(C::SystemShutdown))
        .unwrap();
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    check_client(
        c,
        String::from_utf8(out).unwrap(),
        |e| matches!(e, ClientError::ClosedByHost(s) if s.condition == C::SystemShutdown),
    );
}

/// A PLAIN server without TLS fed `input`: its error and all it wrote.
fn server_after(input: &[&str], now: Instant) -> (Server, String) {
    let mut s = Server::with_random(
        server_config("example.com", &["PLAIN"], ServerTls::None)
            .build()
            .unwrap(),
        Box::new(DeterministicRandom::new(0)),
        now,
    );
    for chunk in input {
        let _ = s.feed(now, chunk.as_bytes());
        // Answer credential requests; leave every other event queued.
        if s.pending_request().is_some() {
            s.answer(
                now,
                xmpp_sansio::sasl::CredentialAnswer::Verdict(Err(
                    xmpp_sansio::sasl::SaslCondition::NotAuthorized,
                )),
            )
            .unwrap();
        }
    }
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    (s, String::from_utf8(out).unwrap())
}

fn check_server(mut s: Server, out: String, category: impl Fn(&ServerError) -> bool) {
    let mut seen = None;
    while let Some(ev) = s.poll_event() {
        if let ServerEvent::Error(e) = ev {
            seen = Some(e);
        }
    }
    let e = seen.unwrap_or_else(|| panic!("the server reported no error: {out}"));
    assert_eq!(s.error(), Some(&e));
    assert!(category(&e), "{e:?}");
    assert_eq!(e.condition(), condition_on_wire(&out), "{e:?}: {out}");
    assert!(!e.to_string().is_empty());
}

const BAD_PLAIN: &str =
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHdyb25n</auth>";

#[test]
fn server_errors_by_fault_with_the_condition_sent() {
    let now = Instant::now();
    let (s, out) = server_after(
        &[
            CLIENT_HEADER,
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><b></auth>",
        ],
        now,
    );
    check_server(s, out, |e| {
        matches!(e, ServerError::PeerMisbehaved(Misbehavior::Read(_)))
    });
    let (s, out) = server_after(&[CLIENT_HEADER, "<message/>"], now);
    check_server(s, out, |e| {
        matches!(
            e,
            ServerError::PeerMisbehaved(Misbehavior::Protocol {
                condition: C::NotAuthorized,
                ..
            })
        )
    });
    let (s, out) = server_after(&[CLIENT_HEADER, BAD_PLAIN, BAD_PLAIN, BAD_PLAIN], now);
    check_server(s, out, |e| {
        *e == ServerError::Policy(ServerPolicy::TooManyAuthFailures { failures: 3 })
    });
    let (s, out) = server_after(
        &[
            CLIENT_HEADER,
            "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        ],
        now,
    );
    check_server(s, out, |e| matches!(e, ServerError::PeerStreamError(_)));
    let (s, out) = server_after(&[CLIENT_HEADER, "</stream:stream>"], now);
    check_server(s, out, |e| matches!(e, ServerError::ClosedByPeer));
    let (mut s, _) = server_after(&[CLIENT_HEADER], now);
    s.close_with_error(StreamError::new(C::SystemShutdown))
        .unwrap();
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    check_server(s, String::from_utf8(out).unwrap(), |e| {
        matches!(e, ServerError::ClosedByHost(_))
    });
}

#[test]
fn server_deadlines_say_which_with_the_condition_sent() {
    let now = Instant::now();
    for (input, after, which) in [
        // The authentication deadline (60 s) before the negotiation one.
        (vec![CLIENT_HEADER], 60, Deadline::Authentication),
        // An element begun at once and never finished.
        (
            vec![
                CLIENT_HEADER,
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'",
            ],
            60,
            Deadline::Element,
        ),
    ] {
        let (mut s, _) = server_after(&input, now);
        s.handle_timeout(now + Duration::from_secs(after));
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        let out = String::from_utf8(out).unwrap();
        check_server(s, out, |e| *e == ServerError::Timeout(which));
    }
}
