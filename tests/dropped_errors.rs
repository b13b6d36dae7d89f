//! No error is dropped: a value from the configuration or the host that
//! XML cannot carry is a typed error the host sees at once, never bytes
//! silently left unwritten (issue 12, point 5).

mod support;

use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_sansio::client::{Client, ClientSettings, Credentials, TlsMode};
use xmpp_sansio::client::{LegacyAuthPolicy, Registration};
use xmpp_sansio::sasl::{AuthAttribute, SaslCondition};
use xmpp_sansio::server::{
    LegacyAuthAnswer, LegacyAuthMethods, LegacyAuthRequest, Server, ServerEvent, ServerSettings,
    ServerTls,
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

fn client_config() -> ClientSettings {
    ClientSettings::new("juliet@example.com", Credentials::password("r0m30"))
}

/// The case: a resource with U+0007 used to let the client send
/// its header and then wait, silently, for its 30 s negotiation timeout
/// (the bind request was dropped by the writer). Now the configuration
/// cannot be built: the host has the typed error before any client
/// exists, and no byte can go out.
#[test]
fn a_resource_with_a_bell_is_refused_when_the_configuration_is_built() {
    let mut config = client_config();
    config.resource = Some("bal\u{7}cony".into());
    let Err(ConfigError::Jid { field, reason }) = config.build() else {
        panic!("a resource with U+0007 was accepted");
    };
    assert_eq!(field, "resource");
    assert!(reason.contains("resourceprep"), "{reason}");
}

/// Every client value that goes on the wire is checked when the
/// configuration is built.
#[test]
fn every_client_value_on_the_wire_is_checked() {
    let jid = |field| move |e: &ConfigError| matches!(e, ConfigError::Jid { field: f, .. } if *f == field);
    let is = |expected: ConfigError| move |e: &ConfigError| *e == expected;
    type Check = Box<dyn Fn(&ConfigError) -> bool>;
    let cases: Vec<(Edit<ClientSettings>, Check)> = vec![
        (
            Box::new(|c| c.jid = "juliet@exa\u{1}mple.com".into()),
            Box::new(jid("jid")),
        ),
        (
            Box::new(|c| c.jid = "juliet@example.com/balcony".into()),
            Box::new(jid("jid")),
        ),
        (
            Box::new(|c| c.lang = Some("en\u{FFFE}".into())),
            Box::new(is(ConfigError::Unwritable {
                field: "lang",
                error: WriteError::InvalidChar(0xFFFE),
            })),
        ),
        (
            Box::new(|c| {
                c.register = Some(Registration {
                    fields: vec![("user name".into(), "x".into())],
                    then_login: false,
                })
            }),
            Box::new(is(ConfigError::Unwritable {
                field: "register.fields",
                error: WriteError::InvalidName("user name".into()),
            })),
        ),
        (
            Box::new(|c| {
                c.register = Some(Registration {
                    fields: vec![("email".into(), "a\u{8}@b".into())],
                    then_login: false,
                })
            }),
            Box::new(is(ConfigError::Unwritable {
                field: "register.fields",
                error: WriteError::InvalidChar(8),
            })),
        ),
        (
            Box::new(|c| {
                c.register = Some(Registration {
                    fields: vec![("password".into(), "pw\u{7}".into())],
                    then_login: false,
                })
            }),
            Box::new(is(ConfigError::UnwritablePassword)),
        ),
        (
            Box::new(|c| {
                c.credentials = Credentials::password("pw\u{7}");
                c.legacy_auth = LegacyAuthPolicy {
                    enabled: true,
                    allow_plaintext_without_tls: false,
                };
            }),
            Box::new(is(ConfigError::UnwritablePassword)),
        ),
    ];
    for (edit, check) in cases {
        let mut config = client_config();
        edit(&mut config);
        let error = config.build().expect_err("a value XML cannot carry");
        assert!(check(&error), "{error:?}");
        // A password's characters are its own: no error shows them.
        if error == ConfigError::UnwritablePassword {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("0007") && !shown.contains("pw"), "{shown}");
        }
    }
    // Without legacy authentication the password never goes out as text
    // (SASL sends it in base64): not an error here.
    let mut config = client_config();
    config.credentials = Credentials::password("pw\u{7}");
    config.tls = TlsMode::None;
    let mut client = Client::with_random(
        config.build().expect("a SASL-only password is not text"),
        Box::new(DeterministicRandom::new(3)),
        Instant::now(),
    );
    let mut out = Vec::new();
    client.poll_transmit(&mut out);
    assert!(!out.is_empty() && client.poll_event().is_none());
}

/// The server's configured values that go on the wire (its header, its
/// features, its registration form) are checked when it is built. Before,
/// a bad domain or language went out with the character silently removed,
/// and a bad mechanism name or form made the features vanish.
#[test]
fn every_server_value_on_the_wire_is_checked() {
    let form = |f: RegisterForm| Some(f);
    let cases: Vec<(Edit<ServerSettings>, ConfigError)> = vec![
        (
            Box::new(|c| c.domains = vec!["exa\u{7}mple.com".into()]),
            ConfigError::Jid {
                field: "domains",
                reason: "domain doesn’t pass idna validation".into(),
            },
        ),
        (
            Box::new(|c| c.domains.clear()),
            ConfigError::Limit { field: "domains" },
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
        let mut config = ServerSettings::new("example.com");
        edit(&mut config);
        assert_eq!(config.build().map(|_| ()), Err(expected));
    }
}

fn open_server() -> (Server, Instant) {
    let now = Instant::now();
    let mut config = ServerSettings::new("example.com");
    config.tls = ServerTls::None;
    config.legacy_auth = Some(LegacyAuthMethods::default());
    let mut server = Server::with_random(
        config.build().unwrap(),
        Box::new(DeterministicRandom::new(3)),
        now,
    );
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
    let c = alice_config("SCRAM-SHA-256", TlsMode::None);
    let s = server_config("example.com", &["SCRAM-SHA-256"], ServerTls::None);
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
