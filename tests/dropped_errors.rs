//! No error is dropped: a value from the configuration or the host that
//! XML cannot carry is a typed error the host sees at once, never bytes
//! silently left unwritten (issue 12, point 5).

mod support;

use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_sansio::client::{Client, ClientConfig, ClientError, ClientEvent, Credentials, TlsMode};
use xmpp_sansio::client::{LegacyAuthPolicy, Registration};
use xmpp_sansio::sasl::{AuthAttribute, SaslCondition};
use xmpp_sansio::server::{
    LegacyAuthAnswer, LegacyAuthMethods, LegacyAuthRequest, Server, ServerConfig, ServerError,
    ServerEvent, ServerTls,
};
use xmpp_sansio::steps::iq_auth::ZeroKState;
use xmpp_sansio::steps::register::RegisterForm;
use xmpp_sansio::steps::sasl::{write_auth, SaslElement};
use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition};
use xmpp_sansio::xml::{StreamHeader, StreamWriter, WriteError};
use xmpp_sansio::{ConfigError, DeterministicRandom, UsageError};

use support::pair::{alice_config, server_config, Pair};

const BELL: WriteError = WriteError::InvalidChar(7);

/// A change to a configuration.
type Edit<C> = Box<dyn Fn(&mut C)>;

fn client_config() -> ClientConfig {
    ClientConfig::new(
        "juliet@example.com",
        Credentials::password("r0m30"),
        Box::new(DeterministicRandom::new(1)),
    )
}

/// What a client built from `config` does at once: the bytes it queued,
/// its events, and its next deadline.
fn start_client(config: ClientConfig) -> (Client, Vec<u8>, Vec<ClientEvent>) {
    let mut client = Client::new(config, Instant::now());
    let mut out = Vec::new();
    client.poll_transmit(&mut out);
    let events = std::iter::from_fn(|| client.poll_event()).collect();
    (client, out, events)
}

/// The case: a resource with U+0007 used to let the client send
/// its header and then wait, silently, for its 30 s negotiation timeout
/// (the bind request was dropped by the writer). Now nothing is sent and
/// the host has the typed error before it reads a byte.
#[test]
fn a_resource_with_a_bell_fails_the_client_at_once() {
    let mut config = client_config();
    config.resource = Some("bal\u{7}cony".into());
    let expected = ConfigError::Unwritable {
        field: "resource",
        error: BELL,
    };
    assert_eq!(config.validate(), Err(expected.clone()));
    let (mut client, out, events) = start_client(config);
    assert!(out.is_empty(), "sent {:?}", String::from_utf8_lossy(&out));
    assert_eq!(
        events,
        [
            ClientEvent::Error(ClientError::Config(expected.clone())),
            ClientEvent::Closed
        ]
    );
    assert_eq!(client.error(), Some(&ClientError::Config(expected)));
    assert!(client.is_closed());
    assert_eq!(client.poll_timeout(), None, "no deadline left to wait for");
    assert_eq!(
        client.feed(Instant::now(), b"<?xml version='1.0'?>"),
        Err(UsageError::Closed)
    );
}

/// The same against our server over the pair: the server hears nothing,
/// the client is failed before the first step and no timeout is needed.
#[test]
fn a_resource_with_a_bell_never_reaches_the_server() {
    let mut c = alice_config("SCRAM-SHA-256", TlsMode::None, 1);
    c.resource = Some("\u{7}".into());
    let s = server_config("example.com", &["SCRAM-SHA-256"], ServerTls::None, 2);
    let mut pair = Pair::with_alice(c, s, None);
    pair.step();
    assert!(matches!(
        pair.client_error(),
        Some(ClientError::Config(ConfigError::Unwritable {
            field: "resource",
            ..
        }))
    ));
    assert!(pair.up_bytes.is_empty(), "the server got nothing");
    assert!(pair.down_bytes.is_empty(), "so it answered nothing");
}

/// Every client value that goes on the wire is checked, the same way.
#[test]
fn every_client_value_on_the_wire_is_checked() {
    let cases: Vec<(Edit<ClientConfig>, ConfigError)> = vec![
        (
            Box::new(|c| c.jid = "juliet@exa\u{1}mple.com".into()),
            ConfigError::Unwritable {
                field: "jid",
                error: WriteError::InvalidChar(1),
            },
        ),
        (
            Box::new(|c| c.lang = Some("en\u{FFFE}".into())),
            ConfigError::Unwritable {
                field: "lang",
                error: WriteError::InvalidChar(0xFFFE),
            },
        ),
        (
            Box::new(|c| {
                c.register = Some(Registration {
                    fields: vec![("user name".into(), "x".into())],
                    then_login: false,
                })
            }),
            ConfigError::Unwritable {
                field: "register.fields",
                error: WriteError::InvalidName("user name".into()),
            },
        ),
        (
            Box::new(|c| {
                c.register = Some(Registration {
                    fields: vec![("email".into(), "a\u{8}@b".into())],
                    then_login: false,
                })
            }),
            ConfigError::Unwritable {
                field: "register.fields",
                error: WriteError::InvalidChar(8),
            },
        ),
        (
            Box::new(|c| {
                c.register = Some(Registration {
                    fields: vec![("password".into(), "pw\u{7}".into())],
                    then_login: false,
                })
            }),
            ConfigError::UnwritablePassword,
        ),
        (
            Box::new(|c| {
                c.credentials = Credentials::password("pw\u{7}");
                c.legacy_auth = LegacyAuthPolicy {
                    enabled: true,
                    allow_plaintext_without_tls: false,
                };
            }),
            ConfigError::UnwritablePassword,
        ),
    ];
    for (edit, expected) in cases {
        let mut config = client_config();
        edit(&mut config);
        assert_eq!(config.validate(), Err(expected.clone()));
        let (_, out, events) = start_client(config);
        assert!(out.is_empty(), "{expected:?}: sent bytes");
        assert_eq!(
            events.first(),
            Some(&ClientEvent::Error(ClientError::Config(expected.clone())))
        );
        // A password's characters are its own: no error shows them.
        if expected == ConfigError::UnwritablePassword {
            let shown = format!(
                "{expected} {expected:?} {}",
                ClientError::Config(expected.clone())
            );
            assert!(!shown.contains("0007") && !shown.contains("pw"), "{shown}");
        }
    }
    // Without legacy authentication the password never goes out as text
    // (SASL sends it in base64): not an error here.
    let mut config = client_config();
    config.credentials = Credentials::password("pw\u{7}");
    config.tls = TlsMode::None;
    assert_eq!(config.validate(), Ok(()));
    let (_, out, events) = start_client(config);
    assert!(!out.is_empty() && events.is_empty());
}

fn start_server(config: ServerConfig) -> (Server, Vec<u8>, Vec<ServerEvent>) {
    let mut server = Server::new(config, Instant::now());
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    let events = std::iter::from_fn(|| server.poll_event()).collect();
    (server, out, events)
}

/// The server's configured values that go on the wire (its header, its
/// features, its registration form): checked in `validate` and in `new`,
/// where the server then fails at once and sends nothing. Before, a bad
/// domain or language went out with the character silently removed, and
/// a bad mechanism name or form made the features vanish.
#[test]
fn every_server_value_on_the_wire_is_checked() {
    let form = |f: RegisterForm| Some(f);
    let cases: Vec<(Edit<ServerConfig>, ConfigError)> = vec![
        (
            Box::new(|c| c.domains = vec!["exa\u{7}mple.com".into()]),
            ConfigError::Unwritable {
                field: "domains",
                error: BELL,
            },
        ),
        (
            Box::new(|c| c.mechanisms.push("X-\u{7}".into())),
            ConfigError::Unwritable {
                field: "mechanisms",
                error: BELL,
            },
        ),
        (
            Box::new(|c| c.lang = Some("\u{7}".into())),
            ConfigError::Unwritable {
                field: "lang",
                error: BELL,
            },
        ),
        (
            Box::new(move |c| {
                c.register = form(RegisterForm {
                    instructions: Some("ring \u{7}".into()),
                    ..RegisterForm::default()
                })
            }),
            ConfigError::Unwritable {
                field: "register",
                error: BELL,
            },
        ),
        (
            Box::new(move |c| {
                c.register = form(RegisterForm {
                    fields: vec!["e mail".into()],
                    ..RegisterForm::default()
                })
            }),
            ConfigError::Unwritable {
                field: "register",
                error: WriteError::InvalidName("e mail".into()),
            },
        ),
    ];
    for (edit, expected) in cases {
        let mut config = ServerConfig::new("example.com", Box::new(DeterministicRandom::new(2)));
        edit(&mut config);
        assert_eq!(config.validate(), Err(expected.clone()));
        let (server, out, events) = start_server(config);
        assert!(out.is_empty(), "{expected:?}: sent bytes");
        assert!(
            matches!(&events[..], [ServerEvent::Error(ServerError::Config(e)), ServerEvent::Closed] if *e == expected),
            "{events:?}"
        );
        assert!(server.is_closed());
        assert_eq!(server.poll_timeout(), None);
    }
}

fn open_server() -> (Server, Instant) {
    let now = Instant::now();
    let mut config = ServerConfig::new("example.com", Box::new(DeterministicRandom::new(3)));
    config.tls = ServerTls::None;
    config.legacy_auth = Some(LegacyAuthMethods::default());
    let mut server = Server::new(config, now);
    server
        .feed(
            now,
            b"<?xml version='1.0'?><stream:stream to='example.com' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        )
        .unwrap();
    server.poll_transmit(&mut Vec::new());
    (server, now)
}

/// `close_with_error` used to answer `Ok` for a stream error whose text
/// could not be written, and send the bare condition without it (or, for
/// a `see-other-host` address, nothing but the close). Now it is refused
/// and the stream goes on; the host can close otherwise.
#[test]
fn close_with_an_unwritable_stream_error_is_refused() {
    let (mut server, _) = open_server();
    for (error, why) in [
        (
            StreamError::new(StreamErrorCondition::SystemShutdown).with_text("\u{1}bye"),
            WriteError::InvalidChar(1),
        ),
        (
            StreamError::new(StreamErrorCondition::SeeOtherHost("a\u{7}.example".into())),
            BELL,
        ),
    ] {
        assert_eq!(server.close_with_error(error), Err(UsageError::Write(why)));
        assert!(!server.is_closed());
        assert_eq!(server.queued_output(), 0, "nothing partial was queued");
        assert!(server.poll_event().is_none());
    }
    let bye = StreamError::new(StreamErrorCondition::SystemShutdown).with_text("bye");
    assert_eq!(server.close_with_error(bye), Ok(()));
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("<system-shutdown") && out.contains(">bye</text>"),
        "{out}"
    );
    assert!(server.is_closed());
}

/// A zero-knowledge state whose token cannot be written used to be acted
/// on with nothing sent (the client waited for its timeout): now it is
/// refused and the request stays pending for a good answer.
#[test]
fn a_zero_k_token_that_cannot_be_written_is_refused() {
    let (mut server, now) = open_server();
    server
        .feed(
            now,
            b"<iq type='get' id='a1'><query xmlns='jabber:iq:auth'><username>dj</username></query></iq>",
        )
        .unwrap();
    assert!(matches!(
        server.poll_event(),
        Some(ServerEvent::LegacyAuth(
            LegacyAuthRequest::ZeroKState { .. }
        ))
    ));
    let bad = ZeroKState::new("secret", "3B2D\u{7}", 497);
    assert_eq!(
        server.answer_legacy_auth(now, LegacyAuthAnswer::ZeroK(Some(bad))),
        Err(UsageError::Write(BELL))
    );
    assert_eq!(server.queued_output(), 0);
    let good = ZeroKState::new("secret", "3B2DEEC0", 497);
    assert_eq!(
        server.answer_legacy_auth(now, LegacyAuthAnswer::ZeroK(Some(good))),
        Ok(())
    );
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("<token>3B2DEEC0</token>"), "{out}");
}

/// The public writers say when they cannot write, and write nothing: the
/// header (which used to drop the characters silently), a stream error
/// (which used to fall back to its bare condition), SASL elements with
/// text, and `<auth/>` with a mechanism's attribute that is not an XML
/// name (which used to panic).
#[test]
fn the_public_writers_report_what_they_cannot_write() {
    let w = StreamWriter::new("jabber:client");
    let mut out = b"keep".to_vec();
    let header = StreamHeader {
        to: Some("exa\u{7}mple.com".into()),
        ..StreamHeader::default()
    };
    assert_eq!(w.write_header(&mut out, &header), Err(BELL));
    let error = StreamError::new(StreamErrorCondition::Conflict).with_text("\u{7}");
    assert_eq!(w.write_stream_error(&mut out, &error), Err(BELL));
    let failure = SaslElement::Failure {
        condition: Some(SaslCondition::NotAuthorized),
        text: Some("\u{7}".into()),
    };
    assert_eq!(failure.write_to(&w, &mut out), Err(BELL));
    let auth = SaslElement::Auth {
        mechanism: "X-\u{7}".into(),
        initial_response: None,
    };
    assert_eq!(auth.write_to(&w, &mut out), Err(BELL));
    const BAD: AuthAttribute = AuthAttribute {
        namespace: "urn:example",
        name: "not a name",
        value: "v",
    };
    assert_eq!(
        write_auth(&w, &mut out, "X-OAUTH2", Some(b"x"), &[BAD]),
        Err(WriteError::InvalidName("not a name".into()))
    );
    assert_eq!(out, b"keep");
}

/// Not every failure is the configuration's: stanzas the host sends keep
/// their `UsageError::Write`, and the session goes on.
#[test]
fn an_unwritable_stanza_is_refused_and_the_session_goes_on() {
    let c = alice_config("SCRAM-SHA-256", TlsMode::None, 4);
    let s = server_config("example.com", &["SCRAM-SHA-256"], ServerTls::None, 5);
    let mut pair = Pair::with_alice(c, s, None);
    pair.negotiate();
    let bad = Element::builder("message", "jabber:client")
        .append("\u{7}")
        .build();
    assert_eq!(pair.client.send(&bad), Err(UsageError::Write(BELL)));
    assert_eq!(pair.server.send(&bad), Err(UsageError::Write(BELL)));
    assert!(pair.client.is_ready() && pair.server.is_ready());
    pair.advance(Duration::from_secs(1));
    assert!(pair.client_error().is_none() && pair.server_error().is_none());
}
