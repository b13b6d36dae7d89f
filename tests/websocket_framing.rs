//! RFC 7395 framing rules, each role fed hand-made messages: a message is
//! exactly one element (else `not-well-formed`, a typed
//! `ReadError::Message`), the element limits apply per message, bytes
//! without message boundaries are a usage error, Prosody's undeclared
//! `stream:` prefix is accepted on a top-level element only, the
//! `<close see-other-uri/>` redirect, no whitespace keepalive, no
//! STARTTLS, and boundaries kept across a held request and a restart.

use std::time::{Duration, Instant};

use xmpp_sansio::client::{Client, ClientError, ClientEvent, ClientSettings, Credentials, TlsMode};
use xmpp_sansio::error::Misbehavior;
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::sasl::CredentialAnswer;
use xmpp_sansio::server::{Server, ServerError, ServerEvent, ServerSettings, ServerTls};
use xmpp_sansio::stream_error::StreamErrorCondition;
use xmpp_sansio::xml::{Limit, MessageFault, ReadError};
use xmpp_sansio::{DeterministicRandom, Framing, TlsInfo, UsageError};

const OPEN: &str =
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>";
const SERVER_OPEN: &str =
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.com' id='s1' version='1.0'/>";
const CLOSE: &str = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
const NOT_WELL_FORMED: &str = "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>\
    <not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";

fn server_settings() -> ServerSettings {
    let mut s = ServerSettings::new("example.com");
    s.framing = Framing::WebSocket;
    s.tls = ServerTls::None;
    s.allow_plain_without_tls = true;
    s.mechanisms = vec!["PLAIN".into()];
    s
}

fn server() -> Server {
    Server::with_random(
        server_settings().build().unwrap(),
        Box::new(DeterministicRandom::new(1)),
        Instant::now(),
    )
}

fn client_settings() -> ClientSettings {
    let mut c = ClientSettings::new("alice@example.com", Credentials::password("pencil"));
    c.framing = Framing::WebSocket;
    c.tls = TlsMode::None;
    c.policy.allow_plain_without_tls = true;
    c.policy.only = Some(vec!["PLAIN".into()]);
    c
}

fn client_with(c: ClientSettings) -> Client {
    Client::with_random(
        c.build().unwrap(),
        Box::new(DeterministicRandom::new(1)),
        Instant::now(),
    )
}

fn messages_of_server(s: &mut Server) -> Vec<String> {
    std::iter::from_fn(|| s.poll_message())
        .map(|m| String::from_utf8(m).unwrap())
        .collect()
}

fn messages_of_client(c: &mut Client) -> Vec<String> {
    std::iter::from_fn(|| c.poll_message())
        .map(|m| String::from_utf8(m).unwrap())
        .collect()
}

fn server_error(s: &mut Server) -> Option<ServerError> {
    std::iter::from_fn(|| s.poll_event()).find_map(|e| match e {
        ServerEvent::Error(e) => Some(e),
        _ => None,
    })
}

fn client_events(c: &mut Client) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// A server that has read `<open/>` and sent its `<open/>` and features.
fn opened_server() -> Server {
    let mut s = server();
    s.feed_message(Instant::now(), OPEN.as_bytes()).unwrap();
    let sent = messages_of_server(&mut s);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].starts_with("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'"));
    assert!(sent[1].starts_with(
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms"
    ));
    assert!(!sent[1].contains("starttls"));
    s
}

fn assert_message_fault(message: &str, fault: MessageFault) {
    let mut s = opened_server();
    s.feed_message(Instant::now(), message.as_bytes()).unwrap();
    let sent = messages_of_server(&mut s);
    assert_eq!(
        sent[sent.len() - 2..],
        [NOT_WELL_FORMED, CLOSE],
        "{message:?}"
    );
    assert_eq!(
        server_error(&mut s),
        Some(ServerError::PeerMisbehaved(Misbehavior::Read(
            ReadError::Message(fault)
        ))),
        "{message:?}"
    );
    assert!(s.is_closed());
}

#[test]
fn a_message_is_exactly_one_element() {
    let auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBlbmNpbA==</auth>";
    let abort = "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
    assert_message_fault(&format!("{abort}{abort}"), MessageFault::Several);
    assert_message_fault(&format!("{abort} <abort xmlns"), MessageFault::Several);
    assert_message_fault(&auth[..20], MessageFault::Incomplete);
    assert_message_fault("", MessageFault::Empty);
    assert_message_fault("  \n", MessageFault::Empty);
    assert_message_fault("</x>", MessageFault::StrayEndTag);
    assert_eq!(
        ReadError::Message(MessageFault::Several).condition(),
        StreamErrorCondition::NotWellFormed
    );
}

#[test]
fn other_bad_messages_get_their_own_conditions() {
    for (message, condition) in [
        // Nothing declared around a message: an unprefixed element
        // without xmlns has no namespace we know, a prefix is unbound.
        (
            "<x:message xmlns='jabber:client'/>",
            StreamErrorCondition::NotWellFormed,
        ),
        (
            "<?xml version='1.0'?><abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
            StreamErrorCondition::RestrictedXml,
        ),
        // Text ending a message: not a document.
        ("hello", StreamErrorCondition::NotWellFormed),
        // Text before the next element: not an element.
        (
            "hello<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
            StreamErrorCondition::BadFormat,
        ),
        // A stanza before authentication, at its start tag.
        (
            "<message xmlns='jabber:client'><body>x</body></message>",
            StreamErrorCondition::NotAuthorized,
        ),
    ] {
        let mut s = opened_server();
        s.feed_message(Instant::now(), message.as_bytes()).unwrap();
        let sent = messages_of_server(&mut s);
        assert!(
            sent[0].contains(&format!("<{condition} ")),
            "{message}: {sent:?}"
        );
        assert!(server_error(&mut s).is_some());
    }
}

#[test]
fn the_element_limits_apply_per_message() {
    let mut settings = server_settings();
    settings.limits.max_element_bytes = 200;
    let mut s = Server::with_random(
        settings.build().unwrap(),
        Box::new(DeterministicRandom::new(1)),
        Instant::now(),
    );
    s.feed_message(Instant::now(), OPEN.as_bytes()).unwrap();
    messages_of_server(&mut s);
    // Many small messages: fine, each under the limit.
    let abort = "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
    s.feed_message(Instant::now(), abort.as_bytes()).unwrap();
    assert!(!s.is_closed());
    // One message over it.
    let big = format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
        "A".repeat(300)
    );
    s.feed_message(Instant::now(), big.as_bytes()).unwrap();
    let err = std::iter::from_fn(|| s.poll_event()).find_map(|e| match e {
        ServerEvent::Error(e) => Some(e),
        _ => None,
    });
    assert_eq!(
        err,
        Some(ServerError::PeerMisbehaved(Misbehavior::Read(
            ReadError::LimitExceeded {
                limit: Limit::ElementBytes,
                max: 200
            }
        )))
    );
}

/// A client that sends `<close/>` before its `<open/>` (found by the
/// `websocket` fuzz target): the server's close still comes inside its
/// own `<open/>`, as RFC 6120 4.9.1.1 has it for anything ending a
/// stream before it is set up; the host learns the client left early.
#[test]
fn a_close_before_the_open_is_answered_inside_an_open() {
    let mut s = server();
    s.feed_message(Instant::now(), CLOSE.as_bytes()).unwrap();
    let out = messages_of_server(&mut s);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].starts_with("<open "), "{out:?}");
    assert_eq!(out[1], CLOSE);
    assert_eq!(server_error(&mut s), Some(ServerError::ClosedByPeer));
}

#[test]
fn bytes_without_boundaries_are_a_usage_error() {
    let mut s = server();
    assert_eq!(
        s.feed(Instant::now(), OPEN.as_bytes()),
        Err(UsageError::MessagesExpected)
    );
    assert!(messages_of_server(&mut s).is_empty(), "nothing was read");
    let mut c = client_with(client_settings());
    assert_eq!(
        c.feed(Instant::now(), SERVER_OPEN.as_bytes()),
        Err(UsageError::MessagesExpected)
    );
    // Over TCP, feed_message is feed.
    let mut tcp = ServerSettings::new("example.com");
    tcp.tls = ServerTls::None;
    let mut t = Server::with_random(
        tcp.build().unwrap(),
        Box::new(DeterministicRandom::new(1)),
        Instant::now(),
    );
    t.feed_message(
        Instant::now(),
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>",
    )
    .unwrap();
    let out = t.poll_message().unwrap();
    assert!(out.starts_with(b"<?xml version='1.0'?><stream:stream"));
    assert!(t.poll_message().is_none(), "TCP: every byte at once");
}

/// Prosody's `<stream:error>` without `xmlns:stream`: accepted on a
/// message's top-level element, and nowhere else.
#[test]
fn the_undeclared_stream_prefix_only_on_a_top_level_element() {
    let now = Instant::now();
    let mut c = client_with(client_settings());
    messages_of_client(&mut c);
    c.feed_message(now, SERVER_OPEN.as_bytes()).unwrap();
    c.feed_message(
        now,
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    )
    .unwrap();
    let events = client_events(&mut c);
    assert!(
        matches!(&events[0], ClientEvent::Error(ClientError::PeerStreamError(e)) if e.condition == StreamErrorCondition::Conflict),
        "{events:?}"
    );
    // Nested: an unbound prefix.
    let mut c = client_with(client_settings());
    c.feed_message(now, SERVER_OPEN.as_bytes()).unwrap();
    c.feed_message(
        now,
        b"<stream:features xmlns:s='http://etherx.jabber.org/streams'><stream:x/></stream:features>",
    )
    .unwrap();
    let events = client_events(&mut c);
    assert!(
        matches!(
            &events[0],
            ClientEvent::Error(ClientError::PeerMisbehaved(Misbehavior::Read(
                ReadError::UnboundPrefix(_)
            )))
        ),
        "{events:?}"
    );
}

fn redirect_events(protected: bool, allowed: bool) -> Vec<ClientEvent> {
    let now = Instant::now();
    let mut settings = client_settings();
    settings.allow_redirect_without_tls = allowed;
    if protected {
        settings.tls = TlsMode::Direct;
    }
    let mut c = client_with(settings);
    if protected {
        c = c.direct_tls(TlsInfo {
            version: TlsVersion::Tls13,
            channel_bindings: Vec::new(),
        });
    }
    c.feed_message(now, SERVER_OPEN.as_bytes()).unwrap();
    c.feed_message(
        now,
        b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://other.example.com/xmpp'/>",
    )
    .unwrap();
    let sent = messages_of_client(&mut c);
    assert_eq!(sent.last().map(String::as_str), Some(CLOSE));
    client_events(&mut c)
}

#[test]
fn close_with_see_other_uri_is_the_redirect() {
    let events = redirect_events(true, false);
    assert_eq!(
        events[0],
        ClientEvent::SeeOtherUri {
            uri: "wss://other.example.com/xmpp".into(),
            protected: true
        }
    );
    assert_eq!(events[1], ClientEvent::Error(ClientError::ClosedByPeer));
    // Unprotected: not reported unless allowed.
    let events = redirect_events(false, false);
    assert!(!events
        .iter()
        .any(|e| matches!(e, ClientEvent::SeeOtherUri { .. })));
    let events = redirect_events(false, true);
    assert!(matches!(
        &events[0],
        ClientEvent::SeeOtherUri {
            protected: false,
            ..
        }
    ));
}

/// A ready WebSocket client: no whitespace keepalive, no keepalive deadline.
#[test]
fn no_whitespace_keepalive_over_websocket() {
    let mut settings = client_settings();
    settings.keepalive = Some(Duration::from_secs(30));
    let now = Instant::now();
    let mut c = client_with(settings);
    for m in [
        SERVER_OPEN,
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        SERVER_OPEN,
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
        "<iq xmlns='jabber:client' id='bind_1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@example.com/r</jid></bind></iq>",
    ] {
        c.feed_message(now, m.as_bytes()).unwrap();
    }
    assert!(c.is_ready(), "{:?}", client_events(&mut c));
    let sent = messages_of_client(&mut c);
    assert_eq!(sent.len(), 4, "{sent:?}"); // open, auth, open, bind
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(now + Duration::from_secs(3600));
    assert!(c.poll_message().is_none());
    assert_eq!(c.queued_output(), 0);
}

/// A server offering STARTTLS over WebSocket (which ours never does):
/// the client goes on without it.
#[test]
fn the_client_never_sends_starttls_over_websocket() {
    let now = Instant::now();
    let mut settings = client_settings();
    settings.tls = TlsMode::StartTlsIfOffered;
    let mut c = client_with(settings);
    messages_of_client(&mut c);
    c.feed_message(now, SERVER_OPEN.as_bytes()).unwrap();
    c.feed_message(now, b"<stream:features xmlns:stream='http://etherx.jabber.org/streams'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>").unwrap();
    let sent = messages_of_client(&mut c);
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].starts_with("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>")
    );
}

/// Messages fed while the host decides are held with their boundaries,
/// and read after the answer and the restart: a bad one still fails.
#[test]
fn boundaries_survive_a_held_request_and_the_restart() {
    let now = Instant::now();
    let mut s = opened_server();
    s.feed_message(
        now,
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBlbmNpbA==</auth>",
    )
    .unwrap();
    // Pipelined before the answer: the restart, and a message that ends
    // inside its element (the bytes alone would just wait for more).
    s.feed_message(now, OPEN.as_bytes()).unwrap();
    s.feed_message(
        now,
        b"<iq xmlns='jabber:client' type='set' id='a'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>",
    )
    .unwrap();
    let req = std::iter::from_fn(|| s.poll_event())
        .find_map(|e| match e {
            ServerEvent::Credentials(r) => Some(r),
            _ => None,
        })
        .unwrap();
    let _ = req;
    s.answer_credentials(now, CredentialAnswer::Verdict(Ok("alice".into())))
        .unwrap();
    let sent = messages_of_server(&mut s);
    assert_eq!(
        sent[0],
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    );
    assert!(sent[1].starts_with("<open "), "{sent:?}");
    assert!(sent[2].starts_with("<stream:features"), "{sent:?}");
    assert_eq!(sent[3..], [NOT_WELL_FORMED, CLOSE]);
    assert_eq!(
        server_error(&mut s),
        Some(ServerError::PeerMisbehaved(Misbehavior::Read(
            ReadError::Message(MessageFault::Incomplete)
        )))
    );
}

/// A message reader reset between messages (a restart) keeps its parser
/// rather than building one: it reads whatever follows exactly as a new
/// reader does, whether the messages before were whole elements, a
/// `<close/>`, prefixes declared on one message (which must not outlive
/// it), or an unfinished one (after which the reader is rebuilt; the role
/// machines fail the stream on a broken message and never reset after).
#[test]
fn a_reset_message_reader_reads_as_a_new_one() {
    use xmpp_sansio::xml::{Limits, StreamReader};
    let open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.org' version='1.0'/>";
    let scripts: Vec<Vec<&str>> = vec![
        vec![
            open,
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>",
        ],
        vec![open, "<x:iq xmlns:x='jabber:client' type='get' id='1'/>"],
        vec![
            open,
            "<message xmlns='jabber:client'><body>a</body></message>",
            "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        ],
        vec![open, "<iq xmlns='jabber:client'"],
        vec![],
    ];
    let after = [
        open,
        "<x:iq type='get' id='2'/>",
        "<iq xmlns='jabber:client' type='result' id='2'/>",
        "<stream:features/>",
    ];
    let read_all = |r: &mut StreamReader, msgs: &[&str]| -> Vec<String> {
        let mut out = Vec::new();
        for m in msgs {
            r.push_message(m.len());
            let mut rest = m.as_bytes();
            loop {
                match r.read(&mut rest) {
                    Ok(Some(ev)) => out.push(format!("{ev:?}")),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(format!("error {e:?}"));
                        break;
                    }
                }
            }
        }
        out
    };
    for script in &scripts {
        for &next in &after {
            let mut kept = StreamReader::for_messages(Limits::default());
            read_all(&mut kept, script);
            kept.reset();
            let mut fresh = StreamReader::for_messages(Limits::default());
            assert_eq!(
                read_all(&mut kept, &[next, after[2]]),
                read_all(&mut fresh, &[next, after[2]]),
                "after {script:?}, then {next}"
            );
        }
    }
}
