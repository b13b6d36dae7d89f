//! Our client against our server, in memory: every mechanism in every TLS
//! mode either completes on both sides or fails with the same condition on
//! both sides.

mod support;

use std::time::Instant;
use xmpp_sansio::client::{ClientSettings, PeerRefusal, PolicyError};

use support::pair::{
    alice_config, client_config, creds, server_config, tls_info, Pair, Store, TlsSim, MECHANISMS,
};
use support::toy_gssapi;
use xmpp_sansio::client::{
    ClientError, ClientEvent, ClientMechanismFactory, ClientMechanisms, Credentials, TlsMode,
};
use xmpp_sansio::sasl::channel_binding::{ChannelBindingType, TlsVersion};
use xmpp_sansio::sasl::policy::{CredentialKind, MechanismProfile, Refusal, RefusedMechanism};
use xmpp_sansio::sasl::{ChannelBindingUse, SaslCondition};
use xmpp_sansio::server::{
    OfferRule, Server, ServerEvent, ServerMechanismFactory, ServerMechanisms, ServerSettings,
    ServerTls,
};
use xmpp_sansio::{DeterministicRandom, TlsInfo};

#[derive(Debug, Clone, Copy)]
enum Mode {
    None,
    StartTls,
    Direct,
}

struct Case {
    mech: &'static str,
    mode: Mode,
    version: TlsVersion,
    cb: Option<ChannelBindingType>,
    good: bool,
}

fn run(case: &Case) -> Pair {
    let (jid, creds) = creds(case.mech, case.good);
    let info = tls_info(
        case.version,
        case.cb.map(|k| (k, &b"channel-binding-data"[..])),
    );
    let (ctls, stls) = match case.mode {
        Mode::None => (TlsMode::None, ServerTls::None),
        Mode::StartTls => (TlsMode::StartTlsRequired, ServerTls::StartTlsRequired),
        Mode::Direct => (TlsMode::Direct, ServerTls::Direct),
    };
    let mut c = client_config(&jid, creds, case.mech, ctls);
    c.min_scram_iterations = 4096;
    let s = server_config("example.com", &[case.mech], stls);
    let mut pair = Pair::with_alice(c, s, Some(TlsSim::same(info)));
    pair.negotiate();
    pair
}

/// Whether `mech` can run in this situation at all.
fn applicable(mech: &str, mode: Mode, cb: Option<ChannelBindingType>) -> bool {
    let tls = !matches!(mode, Mode::None);
    match mech {
        m if m.ends_with("-PLUS") => tls && cb.is_some(),
        "EXTERNAL" => tls,
        _ => true,
    }
}

#[test]
fn every_mechanism_in_every_tls_mode_completes_or_fails_alike() {
    let modes = [Mode::None, Mode::StartTls, Mode::Direct];
    let bindings: [(TlsVersion, Option<ChannelBindingType>); 4] = [
        (TlsVersion::Tls13, None),
        (TlsVersion::Tls13, Some(ChannelBindingType::TlsExporter)),
        (
            TlsVersion::Tls13,
            Some(ChannelBindingType::TlsServerEndPoint),
        ),
        (TlsVersion::Tls12, Some(ChannelBindingType::TlsUnique)),
    ];
    let mut ran = 0;
    for mech in MECHANISMS.iter() {
        for mode in modes {
            for (version, cb) in bindings {
                if matches!(mode, Mode::None) && cb.is_some() {
                    continue;
                }
                if !applicable(mech, mode, cb) {
                    continue;
                }
                for good in [true, false] {
                    if !good && matches!(*mech, "EXTERNAL" | "ANONYMOUS") {
                        continue; // the host admits these by its own rules
                    }
                    let case = Case {
                        mech,
                        mode,
                        version,
                        cb,
                        good,
                    };
                    let pair = run(&case);
                    let label = format!("{mech} {mode:?} {version:?} {cb:?} good={good}");
                    ran += 1;
                    if good {
                        assert_eq!(pair.client_error(), None, "{label}");
                        assert_eq!(pair.server_error(), None, "{label}");
                        let cj = pair.client.jid();
                        assert!(cj.is_some(), "{label}: client not ready");
                        assert_eq!(cj, pair.server.jid(), "{label}");
                        let client_security = pair.client_events.iter().find_map(|e| match e {
                            ClientEvent::Authenticated {
                                mechanism,
                                security,
                                ..
                            } if mechanism == mech => Some(*security),
                            _ => None,
                        });
                        let server_security = pair.server_events.iter().find_map(|e| match e {
                            ServerEvent::Authenticated {
                                mechanism,
                                security,
                                ..
                            } if mechanism == mech => Some(*security),
                            _ => None,
                        });
                        let (Some(client_security), Some(server_security)) =
                            (client_security, server_security)
                        else {
                            panic!("{label}: no Authenticated with {mech} on both sides");
                        };
                        // Both sides report the same binding; SCRAM is
                        // covered by XEP-0474 (on by default in the server).
                        let expected = if mech.ends_with("-PLUS") {
                            Some(ChannelBindingUse::Bound(cb.expect("applicable")))
                        } else if mech.starts_with("SCRAM-") {
                            // The server offers only this mechanism: a
                            // client with binding data says `y`, one
                            // without says `n`.
                            Some(if cb.is_some() {
                                ChannelBindingUse::SupportedNotUsed
                            } else {
                                ChannelBindingUse::NotSupported
                            })
                        } else {
                            None
                        };
                        assert_eq!(client_security.channel_binding, expected, "{label}");
                        assert_eq!(server_security.channel_binding, expected, "{label}");
                        let scram = mech.starts_with("SCRAM-");
                        assert_eq!(client_security.downgrade_protection, scram, "{label}");
                        assert_eq!(server_security.downgrade_protection, scram, "{label}");
                        if !matches!(mode, Mode::None) {
                            assert!(pair.client.is_encrypted(), "{label}");
                        }
                    } else {
                        // Both sides fail with the same SASL condition.
                        let server = pair.server_auth_failure();
                        assert_eq!(server, Some(SaslCondition::NotAuthorized), "{label}");
                        match pair.client_error() {
                            Some(ClientError::Refused(PeerRefusal::Authentication {
                                condition,
                                ..
                            })) => {
                                assert_eq!(*condition, server, "{label}")
                            }
                            other => panic!("{label}: client saw {other:?}"),
                        }
                        assert!(!pair.client.is_ready() && !pair.server.is_ready());
                    }
                }
            }
        }
    }
    assert!(ran > 100, "only {ran} cases");
}

#[test]
fn a_man_in_the_middle_breaks_plus_channel_binding() {
    // Each side sees a different TLS channel: the -PLUS exchange must fail
    // on the server, and the client learns it.
    for cb in [
        ChannelBindingType::TlsExporter,
        ChannelBindingType::TlsServerEndPoint,
    ] {
        let c_info = tls_info(TlsVersion::Tls13, Some((cb, b"client-side-channel")));
        let s_info = tls_info(TlsVersion::Tls13, Some((cb, b"server-side-channel")));
        let c = alice_config("SCRAM-SHA-256-PLUS", TlsMode::StartTlsRequired);
        let s = server_config(
            "example.com",
            &["SCRAM-SHA-256-PLUS"],
            ServerTls::StartTlsRequired,
        );
        let tls = TlsSim {
            client: c_info,
            server: s_info,
        };
        let mut pair = Pair::with_alice(c, s, Some(tls));
        pair.negotiate();
        let server = pair.server_auth_failure();
        assert!(server.is_some(), "{cb:?}");
        assert!(
            matches!(pair.client_error(), Some(ClientError::Refused(PeerRefusal::Authentication { condition, .. })) if *condition == server)
        );
    }
}

#[test]
fn slow_host_answers_and_any_split_of_bytes_give_the_same_result() {
    let info = tls_info(
        TlsVersion::Tls13,
        Some((ChannelBindingType::TlsExporter, b"cb")),
    );
    for split in [1usize, 2, 7, 64] {
        let c = alice_config("SCRAM-SHA-1-PLUS", TlsMode::StartTlsRequired);
        let s = server_config(
            "example.com",
            &["SCRAM-SHA-1-PLUS"],
            ServerTls::StartTlsRequired,
        );
        let mut pair = Pair::with_alice(c, s, Some(TlsSim::same(info.clone())));
        pair.slow_host = true;
        pair.filter = Some(Box::new(move |_, bytes: Vec<u8>| {
            bytes.chunks(split).map(|c| c.to_vec()).collect()
        }));
        pair.negotiate();
        assert_eq!(
            pair.client.jid().map(|j| j.as_str()),
            Some("alice@example.com/pair"),
            "split {split}"
        );
        assert_eq!(
            pair.server.jid().map(|j| j.as_str()),
            Some("alice@example.com/pair")
        );
    }
}

#[test]
fn stream_errors_are_seen_alike() {
    // A client naming a domain the server does not serve: host-unknown on
    // the server, and the client reports the same condition.
    let c = client_config(
        "alice@other.example",
        Credentials::password("pencil"),
        "PLAIN",
        TlsMode::None,
    );
    let s = server_config("example.com", &["PLAIN"], ServerTls::None);
    let mut pair = Pair::with_alice(c, s, None);
    pair.negotiate();
    let sent = pair.server_error().and_then(|e| e.condition());
    assert_eq!(
        sent,
        Some(xmpp_sansio::stream_error::StreamErrorCondition::HostUnknown)
    );
    let seen = pair
        .client_error()
        .and_then(support::pair::stream_condition_seen_by_client);
    assert_eq!(seen, sent);
}

/// The two roles have the same shape: either can end the stream with an
/// error of its host's choosing, and either says whether it is encrypted.
#[test]
fn both_roles_close_with_an_error_and_tell_encryption() {
    use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition as C};
    let tls = Some(TlsSim::same(tls_info(TlsVersion::Tls13, None)));
    let c = alice_config("PLAIN", TlsMode::StartTlsRequired);
    let s = server_config("example.com", &["PLAIN"], ServerTls::StartTlsRequired);
    let mut pair = Pair::with_alice(c, s, tls);
    assert!(!pair.client.is_encrypted() && !pair.server.is_encrypted());
    pair.negotiate();
    assert!(pair.client.is_ready() && pair.server.is_ready());
    assert!(pair.client.is_encrypted() && pair.server.is_encrypted());
    // The client's host ends the stream: the server sees that condition.
    let bad = StreamError::new(C::SystemShutdown).with_text("bad \u{7} text");
    assert!(matches!(
        pair.client.close_with_error(bad),
        Err(xmpp_sansio::UsageError::Write(_))
    ));
    assert!(pair.client.is_ready(), "a refused error changes nothing");
    pair.client
        .close_with_error(StreamError::new(C::SystemShutdown).with_text("going down"))
        .unwrap();
    pair.drive();
    let error = pair.client_error().cloned().expect("failed");
    assert!(
        matches!(&error, ClientError::ClosedByHost(e) if e.condition == C::SystemShutdown),
        "{error:?}"
    );
    assert_eq!(error.condition(), Some(C::SystemShutdown));
    let seen = pair.server_error();
    assert!(
        matches!(seen, Some(xmpp_sansio::server::ServerError::PeerStreamError(e)) if e.condition == C::SystemShutdown),
        "{seen:?}"
    );
    assert!(pair.client.is_closed() && pair.server.is_closed());
}

#[test]
fn messages_flow_both_ways_with_from_stamped() {
    let c = alice_config("SCRAM-SHA-256", TlsMode::None);
    let s = server_config("example.com", &["SCRAM-SHA-256"], ServerTls::None);
    let mut pair = Pair::with_alice(c, s, None);
    pair.negotiate();
    let msg: minidom::Element =
        "<message xmlns='jabber:client' to='bob@example.com' type='chat'><body>hi</body></message>"
            .parse()
            .unwrap();
    pair.client.send(&msg).unwrap();
    while pair.step() {}
    let got = pair
        .server_events
        .iter()
        .find_map(|e| match e {
            ServerEvent::Stanza(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(got.attr("from"), Some("alice@example.com/pair"));
    assert_eq!(got.get_child("body", "jabber:client").unwrap().text(), "hi");
    let reply: minidom::Element = "<message xmlns='jabber:client' from='bob@example.com/x' to='alice@example.com/pair'><body>hello</body></message>".parse().unwrap();
    pair.server.send(&reply).unwrap();
    while pair.step() {}
    assert!(pair.client_events.iter().any(|e| matches!(e, ClientEvent::Stanza(s) if s.text().is_empty() && s.get_child("body", "jabber:client").map(|b| b.text()) == Some("hello".into()))));
    // A spoofed from is a stream error.
    let spoof: minidom::Element =
        "<message xmlns='jabber:client' from='mallory@example.com/x' to='bob@example.com'/>"
            .parse()
            .unwrap();
    pair.client.send(&spoof).unwrap();
    pair.drive();
    let cond = pair.server_error().and_then(|e| e.condition());
    assert_eq!(
        cond,
        Some(xmpp_sansio::stream_error::StreamErrorCondition::InvalidFrom)
    );
    assert_eq!(
        pair.client_error()
            .and_then(support::pair::stream_condition_seen_by_client),
        cond
    );
}

#[test]
fn close_handshake_and_timeouts() {
    let c = alice_config("PLAIN", TlsMode::None);
    let s = server_config("example.com", &["PLAIN"], ServerTls::None);
    let mut pair = Pair::with_alice(c, s, None);
    pair.negotiate();
    pair.client.close(pair.now);
    pair.drive();
    assert!(pair.client.is_closed() && pair.server.is_closed());
    assert_eq!(pair.client.error(), None);
    assert_eq!(pair.server.error(), None);

    // A client that never authenticates: the server's auth deadline
    // (shorter than the client's own patience here).
    let mut c = alice_config("PLAIN", TlsMode::None);
    c.negotiation_timeout = std::time::Duration::from_secs(600);
    let s = server_config("example.com", &["PLAIN"], ServerTls::None);
    let mut pair = Pair::with_alice(c, s, None);
    pair.slow_host = true;
    pair.filter = Some(Box::new(|way, bytes: Vec<u8>| {
        // Drop the client's <auth/>.
        if way == support::pair::Way::Up && String::from_utf8_lossy(&bytes).contains("<auth") {
            vec![]
        } else {
            vec![bytes]
        }
    }));
    pair.drive();
    let cond = pair.server_error().and_then(|e| e.condition());
    assert_eq!(
        cond,
        Some(xmpp_sansio::stream_error::StreamErrorCondition::PolicyViolation)
    );
}

/// A server alone (a raw client plays the other side): example.com
/// offering PLAIN, and the time it started.
fn plain_server(tls: ServerTls) -> (Server, Instant) {
    let now = Instant::now();
    let server = Server::with_random(
        server_config("example.com", &["PLAIN"], tls)
            .build()
            .unwrap(),
        Box::new(DeterministicRandom::new(0)),
        now,
    );
    (server, now)
}

#[test]
fn three_failures_end_the_stream() {
    // Our client gives up after one failure; a raw client retrying shows
    // the server's limit.
    let (mut server, now) = plain_server(ServerTls::None);
    let store = Store::new(&[("alice", "pencil")]);
    server.feed(now, b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>").unwrap();
    let bad = xmpp_sansio::sasl::encode_payload(b"\0alice\0nope");
    for attempt in 1..=3 {
        server
            .feed(
                now,
                format!(
                    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{bad}</auth>"
                )
                .as_bytes(),
            )
            .unwrap();
        while let Some(ev) = server.poll_event() {
            if let ServerEvent::Credentials(req) = ev {
                server.answer_credentials(now, store.answer(&req)).unwrap();
            }
        }
        assert_eq!(server.is_closed(), attempt == 3, "attempt {attempt}");
    }
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.matches("<not-authorized/>").count(), 3);
    assert!(out.ends_with("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"), "{out}");
}

#[test]
fn a_stream_error_before_the_clients_header_still_goes_inside_a_stream() {
    let (mut server, now) = plain_server(ServerTls::StartTlsRequired);
    server.feed(now, b"hello world <<<").unwrap();
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.starts_with("<?xml version='1.0'?><stream:stream from='example.com' id='"),
        "{out}"
    );
    assert!(out.ends_with("<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"), "{out}");
    // The client reads it as a stream error, as it would from Prosody.
    let mut reader = xmpp_sansio::xml::StreamReader::default();
    let mut rest = out.as_bytes();
    let mut saw = None;
    while let Some(ev) = reader.read(&mut rest).unwrap() {
        if let xmpp_sansio::xml::StreamEvent::StreamError(e) = ev {
            saw = Some(e.condition);
        }
    }
    assert_eq!(
        saw,
        Some(xmpp_sansio::stream_error::StreamErrorCondition::NotWellFormed)
    );
}

#[test]
fn auth_before_required_tls_names_its_mechanism() {
    let (mut server, now) = plain_server(ServerTls::StartTlsRequired);
    server.feed(now, b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>").unwrap();
    let failed = std::iter::from_fn(|| server.poll_event()).find_map(|e| match e {
        ServerEvent::AuthenticationFailed {
            mechanism,
            condition,
        } => Some((mechanism, condition)),
        _ => None,
    });
    assert_eq!(
        failed,
        Some((Some("PLAIN".into()), SaslCondition::EncryptionRequired))
    );
}

// ----------------------------------------------------------------------
// Host mechanisms through the registries, and the policy's refusals.

/// `c` and `s` both register the toy GSSAPI of `tests/support/toy_gssapi.rs`
/// (the client with `profile`), the server offering it first.
fn register_toy_gssapi(c: &mut ClientSettings, s: &mut ServerSettings, profile: MechanismProfile) {
    c.mechanisms.register(ClientMechanismFactory::new(
        toy_gssapi::NAME,
        profile,
        |_| {
            Ok(toy_gssapi::client(
                toy_gssapi::service(),
                "alice@example.com",
            ))
        },
    ));
    s.registry.register(ServerMechanismFactory::new(
        toy_gssapi::NAME,
        OfferRule::default(),
        |_| Ok(toy_gssapi::server()),
    ));
    s.mechanisms.insert(0, toy_gssapi::NAME.to_owned());
}

fn authenticated_with(pair: &Pair) -> (Option<String>, Option<String>) {
    let client = pair.client_events.iter().find_map(|e| match e {
        ClientEvent::Authenticated { mechanism, .. } => Some(mechanism.clone()),
        _ => None,
    });
    let server = pair.server_events.iter().find_map(|e| match e {
        ServerEvent::Authenticated {
            mechanism,
            identity,
            ..
        } => Some(format!("{mechanism} as {}", identity.username)),
        _ => None,
    });
    (client, server)
}

/// Our client with `creds` and our server offering the toy GSSAPI then
/// `offered`, both registering it (the client with `profile`), over
/// STARTTLS; `tweak` changes the configurations before they start.
fn toy_pair(
    creds: Credentials,
    profile: MechanismProfile,
    offered: &[&str],
    tweak: impl FnOnce(&mut ClientSettings, &mut ServerSettings),
) -> Pair {
    let mut c = ClientSettings::new("alice@example.com", creds);
    let mut s = server_config("example.com", offered, ServerTls::StartTlsRequired);
    register_toy_gssapi(&mut c, &mut s, profile);
    tweak(&mut c, &mut s);
    let tls = TlsSim::same(tls_info(TlsVersion::Tls13, None));
    let mut pair = Pair::with_alice(c, s, Some(tls));
    pair.negotiate();
    pair
}

const HOST_900: MechanismProfile = MechanismProfile::new(900, CredentialKind::Host);

#[test]
fn a_host_mechanism_registered_on_both_sides_is_negotiated_end_to_end() {
    let offered = ["SCRAM-SHA-256", "PLAIN"];
    let pair = toy_pair(Credentials::Host, HOST_900, &offered, |_, _| {});
    assert!(
        pair.client.is_ready() && pair.server.is_ready(),
        "{:?}",
        pair.client_error()
    );
    let up = String::from_utf8_lossy(&pair.up_bytes);
    let down = String::from_utf8_lossy(&pair.down_bytes);
    assert!(
        down.contains("<mechanism>X-TOY-GSSAPI</mechanism>"),
        "{down}"
    );
    assert!(up.contains("mechanism='X-TOY-GSSAPI'"), "{up}");
    // AP-REP and the wrapped layer offer: two challenge rounds, then the
    // host's verdict (an EXTERNAL-like request) and success.
    assert_eq!(down.matches("<challenge").count(), 2, "{down}");
    assert_eq!(up.matches("<response").count(), 2, "{up}");
    assert!(down.contains("<success"), "{down}");
    assert_eq!(
        authenticated_with(&pair),
        (
            Some("X-TOY-GSSAPI".to_owned()),
            Some("X-TOY-GSSAPI as alice".to_owned())
        )
    );
    assert!(pair
        .server_events
        .iter()
        .any(|e| matches!(e, ServerEvent::Ready { jid } if jid.as_str().starts_with("alice@example.com/"))));
}

#[test]
fn without_registration_a_host_mechanism_is_neither_offered_nor_chosen() {
    // The server names it without registering it: not offered.
    let pair = toy_pair(Credentials::Host, HOST_900, &["PLAIN"], |_, s| {
        s.registry = ServerMechanisms::builtin()
    });
    assert!(!String::from_utf8_lossy(&pair.down_bytes).contains("X-TOY-GSSAPI"));
    assert_eq!(
        pair.client_error(),
        Some(&ClientError::Policy(PolicyError::NoMechanism(vec![
            "PLAIN".into()
        ])))
    );
    // The client does not know it: nothing of its kind to choose.
    let pair = toy_pair(Credentials::Host, HOST_900, &["PLAIN"], |c, _| {
        c.mechanisms = ClientMechanisms::builtin()
    });
    assert_eq!(
        pair.client_error(),
        Some(&ClientError::Policy(PolicyError::NoMechanism(vec![
            "X-TOY-GSSAPI".into(),
            "PLAIN".into()
        ])))
    );
    assert!(!String::from_utf8_lossy(&pair.up_bytes).contains("<auth"));
}

#[test]
fn a_host_mechanism_competes_with_the_builtins_by_rank() {
    // Registered for password credentials: above SCRAM-SHA-256 (400) it
    // is chosen, below PLAIN (100) SCRAM-SHA-256 is.
    for (rank, chosen) in [(1000, "X-TOY-GSSAPI"), (50, "SCRAM-SHA-256")] {
        let pair = toy_pair(
            Credentials::password("pencil"),
            MechanismProfile::new(rank, CredentialKind::Password),
            &["SCRAM-SHA-256", "PLAIN"],
            |_, _| {},
        );
        assert!(
            pair.client.is_ready(),
            "rank {rank}: {:?}",
            pair.client_error()
        );
        assert_eq!(
            authenticated_with(&pair).0.as_deref(),
            Some(chosen),
            "rank {rank}"
        );
    }
}

/// A client with the default policy but `only` naming `mechanisms`.
fn named(jid: &str, creds: Credentials, mechanisms: &[&str], tls: TlsMode) -> ClientSettings {
    let mut c = ClientSettings::new(jid, creds);
    c.tls = tls;
    c.policy.only = Some(mechanisms.iter().map(|m| m.to_string()).collect());
    c
}

#[cfg(feature = "digest-md5")]
#[test]
fn a_named_mechanism_that_is_disabled_by_default_is_used_when_offered() {
    // The example client's `--mechanism DIGEST-MD5` against a server
    // offering it: naming it allows it (no enable_digest_md5), over TLS
    // or not (DIGEST-MD5 does not send the password).
    for (ctls, stls) in [
        (TlsMode::StartTlsRequired, ServerTls::StartTlsRequired),
        (TlsMode::None, ServerTls::None),
    ] {
        let c = named(
            "alice@example.com",
            Credentials::password("pencil"),
            &["DIGEST-MD5"],
            ctls,
        );
        assert!(!c.policy.enable_digest_md5);
        let s = server_config("example.com", &["DIGEST-MD5", "PLAIN"], stls);
        let mut pair =
            Pair::with_alice(c, s, Some(TlsSim::same(tls_info(TlsVersion::Tls13, None))));
        pair.negotiate();
        assert!(pair.client.is_ready(), "{:?}", pair.client_error());
        assert_eq!(authenticated_with(&pair).0.as_deref(), Some("DIGEST-MD5"));
    }
    // Unnamed, it stays disabled: the next allowed mechanism is used.
    let mut c = named(
        "alice@example.com",
        Credentials::password("pencil"),
        &[],
        TlsMode::StartTlsRequired,
    );
    c.policy.only = None;
    let s = server_config(
        "example.com",
        &["DIGEST-MD5", "PLAIN"],
        ServerTls::StartTlsRequired,
    );
    let mut pair = Pair::with_alice(c, s, Some(TlsSim::same(tls_info(TlsVersion::Tls13, None))));
    pair.negotiate();
    assert_eq!(authenticated_with(&pair).0.as_deref(), Some("PLAIN"));
    // ANONYMOUS named, without enable_anonymous.
    let c = named(
        "example.com",
        Credentials::Anonymous,
        &["ANONYMOUS"],
        TlsMode::StartTlsRequired,
    );
    let s = server_config("example.com", &["ANONYMOUS"], ServerTls::StartTlsRequired);
    let mut pair = Pair::with_alice(c, s, Some(TlsSim::same(tls_info(TlsVersion::Tls13, None))));
    pair.negotiate();
    assert_eq!(authenticated_with(&pair).0.as_deref(), Some("ANONYMOUS"));
}

/// Our client naming `mechanism` against our server offering `offered`:
/// the client's error, after checking that no `<auth/>` went out.
fn refused(
    creds: Credentials,
    mechanism: &str,
    offered: &[&str],
    mode: Mode,
    info: TlsInfo,
) -> ClientError {
    let (ctls, stls) = match mode {
        Mode::None => (TlsMode::None, ServerTls::None),
        Mode::StartTls => (TlsMode::StartTlsRequired, ServerTls::StartTlsRequired),
        Mode::Direct => (TlsMode::Direct, ServerTls::Direct),
    };
    let c = named("alice@example.com", creds, &[mechanism], ctls);
    let s = server_config("example.com", offered, stls);
    let mut pair = Pair::with_alice(c, s, Some(TlsSim::same(info)));
    pair.negotiate();
    let up = String::from_utf8_lossy(&pair.up_bytes);
    assert!(!up.contains("<auth"), "{mechanism}: {up}");
    assert!(!up.contains("pencil") && !up.contains("cGVuY2ls"), "{up}");
    pair.client_error().cloned().expect("refused")
}

fn refusal_of(mechanism: &str, refusal: Refusal) -> ClientError {
    ClientError::Policy(PolicyError::MechanismRefused(vec![RefusedMechanism {
        mechanism: mechanism.to_owned(),
        refusal,
    }]))
}

#[test]
fn a_named_plain_without_tls_is_refused_for_want_of_tls() {
    let tls = tls_info(TlsVersion::Tls13, None);
    assert_eq!(
        refused(
            Credentials::password("pencil"),
            "PLAIN",
            &["PLAIN", "SCRAM-SHA-1"],
            Mode::None,
            tls
        ),
        refusal_of("PLAIN", Refusal::NeedsTls)
    );
}

#[test]
fn a_named_plus_mechanism_without_binding_data_is_refused_for_want_of_binding() {
    // Over direct TLS where the server's host has binding data and the
    // client's has none: -PLUS is offered, and the client cannot bind.
    let server_side = tls_info(
        TlsVersion::Tls13,
        Some((ChannelBindingType::TlsExporter, b"cb")),
    );
    let client_side = tls_info(TlsVersion::Tls13, None);
    let c = named(
        "alice@example.com",
        Credentials::password("pencil"),
        &["SCRAM-SHA-256-PLUS"],
        TlsMode::Direct,
    );
    let s = server_config(
        "example.com",
        &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"],
        ServerTls::Direct,
    );
    let sim = TlsSim {
        client: client_side,
        server: server_side,
    };
    let mut pair = Pair::with_alice(c, s, Some(sim));
    pair.negotiate();
    assert!(!String::from_utf8_lossy(&pair.up_bytes).contains("<auth"));
    assert_eq!(
        pair.client_error(),
        Some(&refusal_of(
            "SCRAM-SHA-256-PLUS",
            Refusal::NeedsChannelBinding
        ))
    );
}

#[test]
fn a_named_mechanism_for_other_credentials_unknown_or_not_offered_is_refused_as_such() {
    let tls = || tls_info(TlsVersion::Tls13, None);
    let pw = || Credentials::password("pencil");
    assert_eq!(
        refused(
            pw(),
            "EXTERNAL",
            &["EXTERNAL", "PLAIN"],
            Mode::StartTls,
            tls()
        ),
        refusal_of(
            "EXTERNAL",
            Refusal::Credentials {
                needs: CredentialKind::ClientCertificate,
                have: CredentialKind::Password
            }
        )
    );
    assert_eq!(
        refused(
            pw(),
            "SCRAM-SHA-512",
            &["SCRAM-SHA-1", "PLAIN"],
            Mode::StartTls,
            tls()
        ),
        refusal_of("SCRAM-SHA-512", Refusal::NotOffered)
    );
    // Offered by the server (registered there), unknown to the client.
    let pair = toy_pair(pw(), HOST_900, &["PLAIN"], |c, _| {
        c.policy.only = Some(vec![toy_gssapi::NAME.into()]);
        c.mechanisms.remove(toy_gssapi::NAME);
    });
    assert_eq!(
        pair.client_error(),
        Some(&refusal_of(toy_gssapi::NAME, Refusal::Unknown))
    );
    // No fallback: PLAIN was offered and would do, but was not named.
    assert!(!String::from_utf8_lossy(&pair.up_bytes).contains("<auth"));
}
