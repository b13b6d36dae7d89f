//! Seed 001 (Jabber 1.4, Programming Jabber chapter 7): in-band
//! registration and jabber:iq:auth, replayed against each role, and our
//! client against our server for each method and error path.

mod support;

use support::elements_of;
use xmpp_sansio::client::PeerRefusal;

use std::time::Instant;

use minidom::Element;
use support::fixtures_dir;
use xmpp_sansio::client::{
    Client, ClientError, ClientEvent, ClientSettings, Credentials, LegacyAuthPolicy, Registration,
    TlsMode,
};
use xmpp_sansio::ns;
use xmpp_sansio::sasl::CredentialAnswer;
use xmpp_sansio::server::{
    BindAnswer, LegacyAuthAnswer, LegacyAuthMethods, LegacyAuthRequest, RegistrationRequest,
    Server, ServerEvent, ServerSettings, ServerTls,
};
use xmpp_sansio::steps::iq_auth::{self, ZeroKState};
use xmpp_sansio::steps::register::RegisterForm;
use xmpp_sansio::steps::LegacyError;
use xmpp_sansio::{AnswerKind, DeterministicRandom, UsageError};

/// One scenario of the fixture: its name and its lines.
struct Scenario {
    name: String,
    lines: Vec<(char, String)>,
}

fn scenarios() -> Vec<Scenario> {
    let text = std::fs::read_to_string(fixtures_dir().join("seeds/seed001_jabber14.txt")).unwrap();
    let mut out: Vec<Scenario> = Vec::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("-- scenario: ") {
            out.push(Scenario {
                name: n.to_owned(),
                lines: Vec::new(),
            });
        } else if let Some(d) = line.strip_prefix("C: ") {
            out.last_mut().unwrap().lines.push(('C', d.to_owned()));
        } else if let Some(d) = line.strip_prefix("S: ") {
            out.last_mut().unwrap().lines.push(('S', d.to_owned()));
        }
    }
    out
}

fn scenario(prefix: &str) -> Scenario {
    scenarios()
        .into_iter()
        .find(|s| s.name.starts_with(prefix))
        .unwrap_or_else(|| panic!("no scenario {prefix}"))
}

fn error_code(el: &Element) -> Option<String> {
    el.children()
        .find(|c| c.name() == "error")
        .and_then(|e| e.attr("code"))
        .map(str::to_owned)
}

fn query_children(el: &Element) -> Vec<String> {
    el.children()
        .find(|c| c.name() == "query")
        .map(|q| q.children().map(|c| c.name().to_owned()).collect())
        .unwrap_or_default()
}

/// Our answer matches the seed's ("ids aside"): same error code when the
/// seed shows one (jabberd 1.4 even sent some errors with type='result'),
/// otherwise same type and same query fields in the same order.
fn assert_answers_alike(name: &str, ours: &Element, seed: &Element) {
    match error_code(seed) {
        Some(code) => {
            assert_eq!(ours.attr("type"), Some("error"), "{name}: {ours:?}");
            assert_eq!(error_code(ours), Some(code), "{name}: {ours:?}");
            assert_eq!(
                query_children(ours),
                query_children(seed),
                "{name}: echoed query"
            );
        }
        None => {
            assert_eq!(ours.attr("type"), seed.attr("type"), "{name}: {ours:?}");
            assert_eq!(query_children(ours), query_children(seed), "{name}");
        }
    }
}

/// The book's server, as configured in chapter 7.
fn yak_server(register: bool) -> Server {
    let mut c = ServerSettings::new("yak");
    c.tls = ServerTls::None;
    c.mechanisms = vec![];
    c.legacy_auth = Some(LegacyAuthMethods::default());
    c.register = register.then(|| RegisterForm {
        instructions: Some("Choose a username and password to register with this server.".into()),
        fields: vec!["name".into(), "email".into()],
        ..RegisterForm::default()
    });
    Server::with_random(
        c.build().unwrap(),
        Box::new(DeterministicRandom::new(1)),
        Instant::now(),
    )
}

/// The host of the book's server: dj exists with password `secret` and a
/// zero-knowledge state at sequence 497 (so 496 is advertised).
struct YakHost {
    zero_k: ZeroKState,
}

impl YakHost {
    fn new() -> Self {
        Self {
            zero_k: ZeroKState::new("secret", "3B2DEEC0", 497),
        }
    }

    fn serve(&mut self, server: &mut Server, now: Instant) -> Vec<ServerEvent> {
        let mut seen = Vec::new();
        while let Some(ev) = server.poll_event() {
            refuse_answers_that_do_not_fit(server, now, &ev);
            match &ev {
                ServerEvent::Register(RegistrationRequest::Create { username, .. }) => {
                    let a = if username == "dj" {
                        Err(LegacyError::CONFLICT)
                    } else {
                        Ok(())
                    };
                    server.answer_register(now, a).unwrap();
                }
                ServerEvent::Register(_) => server.answer_register(now, Ok(())).unwrap(),
                ServerEvent::LegacyAuth(LegacyAuthRequest::ZeroKState { username }) => {
                    let s = (username == "dj").then(|| self.zero_k.clone());
                    server
                        .answer_legacy_auth(now, LegacyAuthAnswer::ZeroK(s))
                        .unwrap();
                }
                ServerEvent::LegacyAuth(LegacyAuthRequest::Verify {
                    username,
                    credential,
                    stream_id,
                    ..
                }) => {
                    let ok = username == "dj"
                        && credential.verify(stream_id, Some("secret"), Some(&mut self.zero_k));
                    let v = if ok {
                        Ok(())
                    } else {
                        Err(LegacyError::NOT_AUTHORIZED)
                    };
                    server
                        .answer_legacy_auth(now, LegacyAuthAnswer::Verdict(v))
                        .unwrap();
                }
                _ => {}
            }
            seen.push(ev);
        }
        seen
    }
}

/// Before each real answer, the answers that do not fit the pending request
/// are refused as usage errors naming what it takes, and leave the request
/// pending: the real answer that follows must still work.
fn refuse_answers_that_do_not_fit(server: &mut Server, now: Instant, ev: &ServerEvent) {
    let expected = match ev {
        ServerEvent::Register(_) => AnswerKind::Registration,
        ServerEvent::LegacyAuth(LegacyAuthRequest::ZeroKState { .. }) => AnswerKind::LegacyZeroK,
        ServerEvent::LegacyAuth(LegacyAuthRequest::Verify { .. }) => AnswerKind::LegacyVerdict,
        _ => return,
    };
    assert_eq!(server.pending_request(), Some(expected), "{ev:?}");
    let wrong = |given| Err(UsageError::WrongAnswer { expected, given });
    if expected != AnswerKind::Registration {
        let given = AnswerKind::Registration;
        assert_eq!(server.answer_register(now, Ok(())), wrong(given), "{ev:?}");
    }
    if expected != AnswerKind::LegacyZeroK {
        let answer = LegacyAuthAnswer::ZeroK(None);
        let given = AnswerKind::LegacyZeroK;
        assert_eq!(
            server.answer_legacy_auth(now, answer),
            wrong(given),
            "{ev:?}"
        );
    }
    if expected != AnswerKind::LegacyVerdict {
        let answer = LegacyAuthAnswer::Verdict(Ok(()));
        let given = AnswerKind::LegacyVerdict;
        assert_eq!(
            server.answer_legacy_auth(now, answer),
            wrong(given),
            "{ev:?}"
        );
    }
    let bind = BindAnswer::Accept(None);
    assert_eq!(
        server.answer_bind(now, bind),
        wrong(AnswerKind::Bind),
        "{ev:?}"
    );
    let verdict = CredentialAnswer::Verdict(Ok("alice".into()));
    assert_eq!(
        server.answer(now, verdict),
        wrong(AnswerKind::CredentialVerdict),
        "{ev:?}"
    );
    assert_eq!(server.pending_request(), Some(expected), "{ev:?}");
    assert!(!server.is_ready(), "a refused answer logged in: {ev:?}");
}

/// Feeds the scenario's client lines to the server and checks each answer.
fn replay_server(s: &Scenario, server: &mut Server, host: &mut YakHost) -> Vec<ServerEvent> {
    let now = Instant::now();
    let mut events = Vec::new();
    let mut lines = s.lines.iter().peekable();
    while let Some((dir, line)) = lines.next() {
        assert_eq!(*dir, 'C', "{}: scenario shape", s.name);
        server.feed(now, line.as_bytes()).unwrap();
        events.extend(host.serve(server, now));
        let mut out = Vec::new();
        server.poll_transmit(&mut out);
        let out = String::from_utf8(out).unwrap();
        let Some(('S', expected)) = lines.next() else {
            continue;
        };
        if expected.contains("<stream:stream") {
            // Header: ours carries no version either (a pre-1.0 answer).
            assert!(
                out.contains("<stream:stream") && !out.contains("version='1.0' xml"),
                "{}: {out}",
                s.name
            );
            assert!(
                !out.contains("<stream:features"),
                "{}: no features on a pre-1.0 stream",
                s.name
            );
            continue;
        }
        let ours = elements_of(&out);
        let theirs = elements_of(expected);
        assert_eq!(ours.len(), 1, "{}: {out}", s.name);
        assert_answers_alike(&s.name, &ours[0], &theirs[0]);
    }
    events
}

#[test]
fn seed001_server_role_registration() {
    let mut host = YakHost::new();
    replay_server(&scenario("register"), &mut yak_server(true), &mut host);
    replay_server(
        &scenario("registration disabled"),
        &mut yak_server(false),
        &mut host,
    );
    replay_server(
        &scenario("missing password"),
        &mut yak_server(true),
        &mut host,
    );
    // 406 wins over 501: the fields are checked before registration.
    replay_server(
        &scenario("missing password"),
        &mut yak_server(false),
        &mut host,
    );
    replay_server(
        &scenario("username taken"),
        &mut yak_server(true),
        &mut host,
    );
}

#[test]
fn seed001_server_role_authentication_and_session() {
    let mut host = YakHost::new();
    let mut server = yak_server(true);
    let events = replay_server(&scenario("authenticate"), &mut server, &mut host);
    assert!(events
        .iter()
        .any(|e| matches!(e, ServerEvent::Ready { jid } if jid.as_str() == "dj@yak/laptop")));
    // Then the password change of Example 7-2, in that session.
    let mut host2 = YakHost::new();
    let events = replay_server(&scenario("change password"), &mut server, &mut host2);
    assert!(events.iter().any(|e| matches!(e,
        ServerEvent::Register(RegistrationRequest::ChangePassword { username, password })
            if username == "dj" && password.ct_eq("newsecret"))));
    replay_server(
        &scenario("missing resource"),
        &mut yak_server(true),
        &mut YakHost::new(),
    );
}

#[test]
fn registration_then_authentication_on_one_stream_and_no_registration_in_a_session() {
    let now = Instant::now();
    let mut server = yak_server(true);
    let mut host = YakHost::new();
    let header = "<?xml version='1.0'?><stream:stream to='yak' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
    server.feed(now, header.as_bytes()).unwrap();
    let mut all = Vec::new();
    server.poll_transmit(&mut all);
    let id = String::from_utf8_lossy(&all)
        .split("id='")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_owned();
    for user in ["joseph", "leslie"] {
        let reg = format!("<iq type='set' id='r-{user}'><query xmlns='jabber:iq:register'><username>{user}</username><password>spinach</password></query></iq>");
        server.feed(now, reg.as_bytes()).unwrap();
        host.serve(&mut server, now);
    }
    let auth =
        "<iq type='set' id='a1'><query xmlns='jabber:iq:auth'><username>dj</username><digest>";
    let digest = iq_auth::digest(&id, "secret");
    server
        .feed(
            now,
            format!("{auth}{digest}</digest><resource>Work</resource></query></iq>").as_bytes(),
        )
        .unwrap();
    let events = host.serve(&mut server, now);
    assert!(events
        .iter()
        .any(|e| matches!(e, ServerEvent::Ready { jid } if jid.as_str() == "dj@yak/Work")));
    // Seed 001: no new registration inside a session.
    server.feed(now, b"<iq type='set' id='r3'><query xmlns='jabber:iq:register'><username>eve</username><password>x</password></query></iq>").unwrap();
    server.poll_transmit(&mut all);
    let out = String::from_utf8(all).unwrap();
    assert_eq!(out.matches("type='result'").count(), 3, "{out}");
    assert!(out.ends_with("<error code='405' type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Not Allowed</text></error></iq>"), "{out}");
}

// ---------------------------------------------------------------------
// Client role

fn yak_client(creds: &str, register: Option<Registration>) -> ClientSettings {
    let mut c = ClientSettings::new("dj@yak", Credentials::password(creds));
    c.tls = TlsMode::None;
    c.lang = None;
    c.resource = Some("laptop".into());
    c.legacy_auth = LegacyAuthPolicy {
        enabled: true,
        allow_plaintext_without_tls: true,
    };
    c.register = register;
    c
}

/// Feeds the scenario's server lines to the client; returns what it sent
/// after the header and its events.
fn replay_client(s: &Scenario, config: ClientSettings) -> (Vec<Element>, Vec<ClientEvent>) {
    let now = Instant::now();
    let mut client = Client::with_random(
        config.build().unwrap(),
        Box::new(DeterministicRandom::new(0)),
        now,
    );
    let mut sent = Vec::new();
    let mut events = Vec::new();
    for (dir, line) in &s.lines {
        if *dir == 'S' && !client.is_closed() {
            // "ids aside": the book printed its IQs without ids (or with
            // jabberd's own); the reply gets the id our client used.
            let mut line = line.clone();
            let text = String::from_utf8_lossy(&sent).into_owned();
            if let Some(ours) = text
                .rsplit("<iq ")
                .next()
                .and_then(|t| t.split("id='").nth(1))
                .and_then(|t| t.split('\'').next())
            {
                if line.starts_with("<iq ") && text.contains("<iq ") {
                    line = match line.find(" id='") {
                        Some(p) => {
                            let end = p + 5 + line[p + 5..].find('\'').unwrap();
                            format!("{} id='{ours}{}", &line[..p], &line[end..])
                        }
                        None => line.replacen("<iq ", &format!("<iq id='{ours}' "), 1),
                    };
                }
            }
            client.feed(now, line.as_bytes()).unwrap();
        }
        client.poll_transmit(&mut sent);
        while let Some(e) = client.poll_event() {
            events.push(e);
        }
    }
    let text = String::from_utf8(sent).unwrap();
    let body = text
        .split_once('>')
        .map(|(_, b)| b.split_once('>').map_or("", |(_, r)| r))
        .unwrap_or("");
    (elements_of(body), events)
}

#[test]
fn seed001_client_role_registration_enquiry_and_attempt() {
    let s = scenario("register");
    // The enquiry (reguser host): the seed's IQ-get, then the form.
    let enquiry = Registration {
        fields: vec![],
        then_login: false,
    };
    let (sent, events) = replay_client(&s, yak_client("secret", Some(enquiry)));
    let seed_get = &elements_of(&s.lines[2].1)[0];
    assert_eq!(sent[0].attr("type"), seed_get.attr("type"));
    assert_eq!(query_children(&sent[0]), query_children(seed_get));
    let form = events.iter().find_map(|e| match e {
        ClientEvent::RegistrationForm(f) => Some(f.clone()),
        _ => None,
    });
    assert_eq!(
        form.unwrap().fields,
        ["name", "email", "username", "password"]
    );
    // The attempt (reguser host username=leslie ...): the seed's IQ-set.
    let fields: Vec<(String, String)> = [
        ("username", "leslie"),
        ("password", "secret"),
        ("email", "lel@plevna.com"),
        ("name", "Leslie Hawke"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let mut lines = s.lines.clone();
    lines.drain(2..4); // the attempt goes straight to the IQ-set
    let attempt = Scenario {
        name: s.name.clone(),
        lines,
    };
    let (sent, events) = replay_client(
        &attempt,
        yak_client(
            "secret",
            Some(Registration {
                fields,
                then_login: false,
            }),
        ),
    );
    let seed_set = &elements_of(&s.lines[4].1)[0];
    let strip = |e: &Element| {
        let mut e = e.clone();
        e.attrs_mut().remove(rxml::Namespace::none(), "id");
        e
    };
    assert_eq!(normalize(&strip(&sent[0])), normalize(&strip(seed_set)));
    assert!(events.contains(&ClientEvent::Registered));
}

#[test]
fn seed001_client_role_errors() {
    let fields = vec![
        ("username".to_string(), "dj".to_string()),
        ("password".into(), "secret".into()),
    ];
    let (_, events) = replay_client(
        &scenario("username taken"),
        yak_client(
            "secret",
            Some(Registration {
                fields,
                then_login: true,
            }),
        ),
    );
    assert!(
        events.contains(&ClientEvent::Error(ClientError::Refused(
            PeerRefusal::Registration(LegacyError::CONFLICT)
        ))),
        "{events:?}"
    );
    let (_, events) = replay_client(
        &scenario("registration disabled"),
        yak_client(
            "secret",
            Some(Registration {
                fields: vec![],
                then_login: false,
            }),
        ),
    );
    assert!(
        events.contains(&ClientEvent::Error(ClientError::Refused(
            PeerRefusal::Registration(LegacyError::NOT_IMPLEMENTED)
        ))),
        "{events:?}"
    );
}

#[test]
fn seed001_client_role_authentication() {
    // Offered password, digest and zero-knowledge, our client takes the
    // strongest: the zero-knowledge hash for sequence 496 and token
    // 3B2DEEC0 (the book's telnet user typed the plaintext instead).
    let s = scenario("authenticate");
    let (sent, events) = replay_client(&s, yak_client("secret", None));
    let seed_get = &elements_of(&s.lines[2].1)[0];
    assert_eq!(
        normalize(&sent[0]).get_child("query", ns::IQ_AUTH),
        normalize(seed_get).get_child("query", ns::IQ_AUTH)
    );
    let q = sent[1].get_child("query", ns::IQ_AUTH).unwrap();
    assert_eq!(
        q.get_child("hash", ns::IQ_AUTH).unwrap().text(),
        iq_auth::zero_k_hash("secret", "3B2DEEC0", 496)
    );
    assert_eq!(
        q.get_child("resource", ns::IQ_AUTH).unwrap().text(),
        "laptop"
    );
    assert!(
        q.get_child("password", ns::IQ_AUTH).is_none(),
        "no plaintext when 0k is offered"
    );
    assert!(
        events.contains(&ClientEvent::Ready {
            jid: "dj@yak/laptop".parse().unwrap()
        }),
        "{events:?}"
    );
}

/// Formatting whitespace aside, text trimmed.
fn normalize(el: &Element) -> Element {
    support::without_blank_text(el, true)
}

// ---------------------------------------------------------------------
// Our client against our server

struct Run {
    client_events: Vec<ClientEvent>,
    server_events: Vec<ServerEvent>,
}

fn pair(config: ClientSettings, server: Server, host: &mut YakHost) -> Run {
    let now = Instant::now();
    let mut client = Client::with_random(
        config.build().unwrap(),
        Box::new(DeterministicRandom::new(0)),
        now,
    );
    let mut server = server;
    let mut run = Run {
        client_events: Vec::new(),
        server_events: Vec::new(),
    };
    for _ in 0..50 {
        let mut up = Vec::new();
        client.poll_transmit(&mut up);
        if !up.is_empty() {
            let _ = server.feed(now, &up);
        }
        run.server_events.extend(host.serve(&mut server, now));
        let mut down = Vec::new();
        server.poll_transmit(&mut down);
        if !down.is_empty() {
            let _ = client.feed(now, &down);
        }
        while let Some(e) = client.poll_event() {
            run.client_events.push(e);
        }
        if up.is_empty() && down.is_empty() {
            break;
        }
    }
    run
}

#[test]
fn pair_each_method_and_error_path() {
    // Zero-knowledge, digest, plaintext: restrict the server to each.
    for (methods, label) in [
        (
            LegacyAuthMethods {
                password: false,
                digest: false,
                zero_k: true,
            },
            "0k",
        ),
        (
            LegacyAuthMethods {
                password: false,
                digest: true,
                zero_k: false,
            },
            "digest",
        ),
        (
            LegacyAuthMethods {
                password: true,
                digest: false,
                zero_k: false,
            },
            "plaintext",
        ),
    ] {
        for (pw, ok) in [("secret", true), ("wrong", false)] {
            let mut cfg = ServerSettings::new("yak");
            cfg.tls = ServerTls::None;
            cfg.legacy_auth = Some(methods);
            cfg.mechanisms = vec![];
            let run = pair(
                yak_client(pw, None),
                Server::with_random(
                    cfg.build().unwrap(),
                    Box::new(DeterministicRandom::new(5)),
                    Instant::now(),
                ),
                &mut YakHost::new(),
            );
            let ready = run.client_events.iter().any(
                |e| matches!(e, ClientEvent::Ready { jid } if jid.as_str() == "dj@yak/laptop"),
            );
            assert_eq!(ready, ok, "{label} {pw}: {:?}", run.client_events);
            if !ok {
                assert!(
                    run.client_events
                        .contains(&ClientEvent::Error(ClientError::Refused(
                            PeerRefusal::LegacyAuth(LegacyError::NOT_AUTHORIZED)
                        ))),
                    "{label}"
                );
            }
        }
    }
    // Register then log in on the same stream (SASL offered, legacy off in
    // the client: the SASL path after registration).
    let mut cfg = yak_with_registration();
    cfg.mechanisms = vec![];
    let run = register_then_login(cfg, "newbie");
    assert!(
        run.client_events.contains(&ClientEvent::Registered),
        "{:?}",
        run.client_events
    );
    assert!(run.server_events.iter().any(|e| matches!(e, ServerEvent::Register(RegistrationRequest::Create { username, .. }) if username == "newbie")));
    // ... and then dj logs in (the configured credentials) with legacy auth.
    assert!(run
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Ready { .. })));
    // Registration refused (409) stops the client.
    let run = register_then_login(yak_with_registration(), "dj");
    assert!(run
        .client_events
        .contains(&ClientEvent::Error(ClientError::Refused(
            PeerRefusal::Registration(LegacyError::CONFLICT)
        ))));
}

/// yak without TLS, with legacy authentication and in-band registration.
fn yak_with_registration() -> ServerSettings {
    let mut cfg = ServerSettings::new("yak");
    cfg.tls = ServerTls::None;
    cfg.legacy_auth = Some(LegacyAuthMethods::default());
    cfg.register = Some(RegisterForm::default());
    cfg
}

/// Our client registers `username` (password `pw`) on `cfg`, then logs
/// in as dj (its configured credentials).
fn register_then_login(cfg: ServerSettings, username: &str) -> Run {
    let fields = vec![
        ("username".to_string(), username.to_string()),
        ("password".into(), "pw".into()),
    ];
    pair(
        yak_client(
            "secret",
            Some(Registration {
                fields,
                then_login: true,
            }),
        ),
        Server::with_random(
            cfg.build().unwrap(),
            Box::new(DeterministicRandom::new(5)),
            Instant::now(),
        ),
        &mut YakHost::new(),
    )
}

#[test]
fn zero_k_sequence_counts_down_across_logins() {
    let mut host = YakHost::new();
    for expected_seq in [496u32, 495, 494] {
        let mut cfg = ServerSettings::new("yak");
        cfg.tls = ServerTls::None;
        cfg.legacy_auth = Some(LegacyAuthMethods {
            password: false,
            digest: false,
            zero_k: true,
        });
        cfg.mechanisms = vec![];
        let run = pair(
            yak_client("secret", None),
            Server::with_random(
                cfg.build().unwrap(),
                Box::new(DeterministicRandom::new(5)),
                Instant::now(),
            ),
            &mut host,
        );
        assert!(
            run.client_events
                .iter()
                .any(|e| matches!(e, ClientEvent::Ready { .. })),
            "{expected_seq}"
        );
        assert_eq!(host.zero_k.sequence, expected_seq);
    }
}

#[test]
fn a_result_that_repeats_the_fields_is_not_a_login() {
    // Prosody answers an iq:auth set for a method it does not offer with a
    // result repeating its field list: no session was made.
    let s = Scenario {
        name: "fields echoed".into(),
        lines: vec![
            ('S', "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' id='X1' xmlns='jabber:client' from='yak'>".into()),
            ('S', "<iq type='result'><query xmlns='jabber:iq:auth'><username>dj</username><digest/><resource/></query></iq>".into()),
            ('S', "<iq type='result'><query xmlns='jabber:iq:auth'><username>dj</username><digest/><resource/></query></iq>".into()),
        ],
    };
    let (_, events) = replay_client(&s, yak_client("secret", None));
    assert!(
        events.contains(&ClientEvent::Error(ClientError::Refused(
            PeerRefusal::LegacyAuth(LegacyError::NOT_AUTHORIZED)
        ))),
        "{events:?}"
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, ClientEvent::Ready { .. })));
}
