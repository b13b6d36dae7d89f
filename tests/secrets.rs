//! Issue 11, finding 8: secrets stay secret. Our client logs in and
//! registers against our server with a marker password (and a marker
//! token) through every path: each SASL mechanism that carries one, each
//! jabber:iq:auth method, in-band registration (created, refused with 406,
//! 409 and 501, password changed, fields updated, refused inside a
//! session) and a wrong password. The marker, its base64 (at each of the
//! three alignments), its hex and the byte list a derived `Debug` prints
//! must appear in no `Debug` of an event, an error, a request, a
//! configuration, a decoded element or a machine, and in no byte the server
//! sends. So must the password equivalents of jabber:iq:auth (the digest
//! and the zero-knowledge hash the client sent).

mod support;

use std::collections::HashMap;

use base64::Engine as _;
use minidom::Element;
use support::pair::{client_config, server_config, Pair, Store, TlsSim, Way};
use xmpp_sansio::client::{
    ClientEvent, ClientSettings, Credentials, LegacyAuthPolicy, Registration, TlsMode,
};
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::sasl::Secret;
use xmpp_sansio::server::{
    LegacyAuthAnswer, LegacyAuthMethods, LegacyAuthRequest, RegistrationRequest, ServerEvent,
    ServerSettings, ServerTls,
};
use xmpp_sansio::steps::iq_auth::{AuthQuery, ZeroKState};
use xmpp_sansio::steps::register::{self, RegisterForm, RegisterQuery};
use xmpp_sansio::steps::sasl::SaslElement;
use xmpp_sansio::steps::LegacyError;
use xmpp_sansio::xml::{StreamEvent, StreamReader};
use xmpp_sansio::TlsInfo;

/// The password every login and registration uses.
const PASSWORD: &str = "Pw-M4rk3r-9QzX7";
/// The password a change or an update sets.
const NEW_PASSWORD: &str = "NewPw-M4rk3r-J2vK";
/// The bearer token (the test store's convention: `token-<user>`).
const TOKEN: &str = "token-tq8bearer";
/// The user the token belongs to.
const TOKEN_USER: &str = "tq8bearer";

/// The forms a secret takes when something prints or sends it: as is,
/// base64 at the three alignments (the characters that depend on the secret
/// alone), hex both cases, and the byte list of a derived `Debug` of a
/// `Vec<u8>`.
fn forms(secret: &str) -> Vec<String> {
    let b = secret.as_bytes();
    let mut out = vec![secret.to_owned()];
    for k in 0..3 {
        let mut buf = vec![0u8; k];
        buf.extend_from_slice(b);
        let enc = base64::engine::general_purpose::STANDARD.encode(&buf);
        let start = if k == 0 { 0 } else { 4 };
        let end = (buf.len() / 3) * 4;
        out.push(enc[start..end].to_owned());
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    out.push(hex.to_uppercase());
    out.push(hex);
    let list = format!("{b:?}");
    out.push(list[1..list.len() - 1].to_owned());
    out
}

/// Every element in `bytes`, a stream that may restart (STARTTLS, SASL):
/// each header starts a fresh reader.
fn elements(bytes: &[u8]) -> Vec<Element> {
    let text = String::from_utf8_lossy(bytes);
    let starts: Vec<usize> = text
        .match_indices("<stream:stream")
        .map(|(i, _)| i)
        .collect();
    let mut out = Vec::new();
    for (n, &s) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(bytes.len());
        let mut reader = StreamReader::default();
        let mut input = &bytes[s..end];
        while let Ok(Some(ev)) = reader.read(&mut input) {
            if let StreamEvent::Element(el) = ev {
                out.push(el);
            }
        }
    }
    out
}

/// What the test saw: every `Debug` text, labelled.
#[derive(Default)]
struct Seen {
    texts: Vec<(String, String)>,
}

impl Seen {
    fn debug(&mut self, label: &str, value: &dyn std::fmt::Debug) {
        self.texts.push((label.to_owned(), format!("{value:?}")));
        self.texts.push((label.to_owned(), format!("{value:#?}")));
    }

    fn machines(&mut self, pair: &Pair) {
        self.debug("client", &pair.client);
        self.debug("server", &pair.server);
        self.debug("client error", &pair.client.error());
        self.debug("server error", &pair.server.error());
        self.debug("scram keys", &pair.client.scram_keys());
    }

    /// Everything of a finished run: events, errors (`Debug` and
    /// `Display`), the machines, the elements each side sent decoded as
    /// SASL elements and legacy queries.
    fn run(&mut self, pair: &Pair) {
        self.machines(pair);
        for e in &pair.client_events {
            self.debug("client event", e);
            if let ClientEvent::Error(err) = e {
                self.texts.push(("client error".into(), err.to_string()));
            }
        }
        for e in &pair.server_events {
            self.debug("server event", e);
            if let ServerEvent::Error(err) = e {
                self.texts.push(("server error".into(), err.to_string()));
            }
        }
        for bytes in [&pair.up_bytes, &pair.down_bytes] {
            for el in elements(bytes) {
                if let Some(s) = SaslElement::parse(&el) {
                    self.debug("SASL element", &s);
                }
                if let Some(q) = RegisterQuery::parse(&el) {
                    self.debug("register query", &q);
                }
                if let Some(q) = AuthQuery::parse(&el) {
                    self.debug("auth query", &q);
                }
            }
        }
    }

    /// The first place a form of one of `secrets` shows, in what was
    /// seen or in the bytes the server sent.
    fn leak(&self, server_bytes: &[u8], secrets: &[String]) -> Option<String> {
        let sent = String::from_utf8_lossy(server_bytes);
        for secret in secrets {
            for form in forms(secret) {
                if sent.contains(&form) {
                    return Some(format!("the server sent {form:?} ({secret:?}): {sent}"));
                }
                for (label, text) in &self.texts {
                    if text.contains(&form) {
                        return Some(format!("{label} shows {form:?} ({secret:?}): {text}"));
                    }
                }
            }
        }
        None
    }

    fn assert_clean(&self, what: &str, server_bytes: &[u8], secrets: &[String]) {
        if let Some(leak) = self.leak(server_bytes, secrets) {
            panic!("{what}: {leak}");
        }
    }
}

/// The host's side of registration and jabber:iq:auth (the pair answers
/// SASL requests from its store itself).
#[derive(Default)]
struct LegacyHost {
    /// Events already handled.
    handled: usize,
    zero_k: HashMap<String, ZeroKState>,
    /// Refuse every registration request with this.
    refuse_registration: Option<LegacyError>,
}

impl LegacyHost {
    /// Answers the server's registration and legacy requests not handled
    /// yet; returns whether there were any.
    fn serve(&mut self, pair: &mut Pair) -> bool {
        let mut any = false;
        while self.handled < pair.server_events.len() {
            let now = pair.now;
            match &pair.server_events[self.handled] {
                ServerEvent::Register(req) => {
                    any = true;
                    let users = &mut pair.store.users;
                    let answer = match (self.refuse_registration, req) {
                        (Some(e), _) => Err(e),
                        (None, RegistrationRequest::Create { username, .. })
                            if users.contains_key(username) =>
                        {
                            Err(LegacyError::CONFLICT)
                        }
                        (
                            None,
                            RegistrationRequest::Create {
                                username, password, ..
                            }
                            | RegistrationRequest::ChangePassword { username, password },
                        ) => {
                            users.insert(username.clone(), password.expose().to_owned());
                            Ok(())
                        }
                        (None, _) => Ok(()),
                    };
                    pair.server.answer_register(now, answer).unwrap();
                }
                ServerEvent::LegacyAuth(LegacyAuthRequest::ZeroKState { username }) => {
                    any = true;
                    let state = pair.store.users.get(username).map(|p| {
                        self.zero_k
                            .entry(username.clone())
                            .or_insert_with(|| ZeroKState::new(p, "T0k3n", 100))
                            .clone()
                    });
                    let answer = LegacyAuthAnswer::ZeroK(state);
                    pair.server.answer_legacy_auth(now, answer).unwrap();
                }
                ServerEvent::LegacyAuth(LegacyAuthRequest::Verify {
                    username,
                    credential,
                    stream_id,
                    ..
                }) => {
                    any = true;
                    let ok = pair.store.users.get(username).is_some_and(|p| {
                        credential.verify(stream_id, Some(p), self.zero_k.get_mut(username))
                    });
                    let answer = LegacyAuthAnswer::Verdict(if ok {
                        Ok(())
                    } else {
                        Err(LegacyError::NOT_AUTHORIZED)
                    });
                    pair.server.answer_legacy_auth(now, answer).unwrap();
                }
                _ => {}
            }
            self.handled += 1;
        }
        any
    }
}

/// Steps the pair (and the legacy host) until nothing happens.
fn drive(pair: &mut Pair, host: &mut LegacyHost, seen: &mut Seen) {
    for _ in 0..1000 {
        let busy = pair.step();
        let served = host.serve(pair);
        seen.machines(pair);
        if !busy && !served {
            return;
        }
    }
    panic!("the pair did not settle");
}

fn tls_info() -> TlsInfo {
    TlsInfo::without_binding(TlsVersion::Tls13)
}

/// A client over (simulated) STARTTLS as `jid`, with `creds`, using only
/// `mechanism` (`"none"`: no SASL mechanism, so jabber:iq:auth).
fn client(jid: &str, creds: Credentials, mechanism: &str) -> ClientSettings {
    let mut c = client_config(jid, creds, mechanism, TlsMode::StartTlsRequired);
    c.min_scram_iterations = 4096;
    c.legacy_auth = LegacyAuthPolicy {
        enabled: true,
        allow_plaintext_without_tls: false,
    };
    c
}

/// A server over STARTTLS offering `mechanisms`, jabber:iq:auth with
/// `legacy` and registration when `register`.
fn server(
    mechanisms: &[&str],
    legacy: Option<LegacyAuthMethods>,
    register: bool,
) -> ServerSettings {
    let mut s = server_config("example.com", mechanisms, ServerTls::StartTlsRequired);
    s.legacy_auth = legacy;
    s.register = register.then(RegisterForm::default);
    s
}

/// The store: alice's password is `alice_pw`; the token user exists.
fn store(alice_pw: &str) -> Store {
    Store::new(&[("alice", alice_pw), (TOKEN_USER, "unrelated")])
}

/// Runs one scenario, checks it left no secret anywhere; returns the pair.
fn run(
    what: &str,
    c: ClientSettings,
    s: ServerSettings,
    store: Store,
    host: &mut LegacyHost,
) -> Pair {
    let mut seen = Seen::default();
    seen.debug("client config", &c);
    seen.debug("server config", &s);
    let mut pair = Pair::new(c, s, store, Some(TlsSim::same(tls_info())));
    drive(&mut pair, host, &mut seen);
    seen.run(&pair);
    let secrets = all_secrets(&pair);
    seen.assert_clean(what, &pair.down_bytes, &secrets);
    pair
}

/// The text of the first `<tag>...</tag>` in `bytes`.
fn element_text(bytes: &[u8], tag: &str) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let len = text[start..].find(&format!("</{tag}>"))?;
    Some(text[start..start + len].to_owned())
}

/// The markers, and the legacy password equivalents the client sent.
fn all_secrets(pair: &Pair) -> Vec<String> {
    let mut out = vec![
        PASSWORD.to_owned(),
        NEW_PASSWORD.to_owned(),
        TOKEN.to_owned(),
    ];
    for tag in ["digest", "hash"] {
        out.extend(element_text(&pair.up_bytes, tag));
    }
    out
}

fn ready(pair: &Pair) -> bool {
    pair.client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Ready { .. }))
        && pair.server.is_ready()
}

fn down(pair: &Pair) -> String {
    String::from_utf8_lossy(&pair.down_bytes).into_owned()
}

#[test]
fn the_check_finds_each_form() {
    // A derived Debug of PLAIN's payload, its base64 at each alignment,
    // hex: each is found, in a Debug text and in the server's bytes.
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let hex: String = PASSWORD.bytes().map(|b| format!("{b:02X}")).collect();
    for text in [
        format!("{:?}", format!("\0alice\0{PASSWORD}").into_bytes()),
        b64(format!("\0alice\0{PASSWORD}")),
        b64(format!("n,,n=alice,{PASSWORD}")),
        b64(format!("xy{PASSWORD}")),
        hex,
    ] {
        let seen = Seen {
            texts: vec![("sample".into(), text.clone())],
        };
        assert!(seen.leak(b"", &[PASSWORD.to_owned()]).is_some(), "{text}");
        let seen = Seen::default();
        assert!(
            seen.leak(text.as_bytes(), &[PASSWORD.to_owned()]).is_some(),
            "{text}"
        );
    }
    assert_eq!(
        Seen::default().leak(b"<success/>", &[PASSWORD.to_owned()]),
        None
    );
}

#[test]
fn sasl_logins_with_a_marker_password_or_token() {
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "DIGEST-MD5"] {
        let c = client("alice@example.com", Credentials::password(PASSWORD), mech);
        let pair = run(
            mech,
            c,
            server(&[mech], None, false),
            store(PASSWORD),
            &mut LegacyHost::default(),
        );
        assert!(ready(&pair), "{mech}: {:?}", pair.client_events);
        assert!(pair.client.is_encrypted(), "{mech}");
    }
    for mech in ["X-OAUTH2", "OAUTHBEARER", "X-GOOGLE-TOKEN"] {
        let c = client(
            &format!("{TOKEN_USER}@example.com"),
            Credentials::Token(Secret::new(TOKEN)),
            mech,
        );
        let pair = run(
            mech,
            c,
            server(&[mech], None, false),
            store("unused"),
            &mut LegacyHost::default(),
        );
        assert!(ready(&pair), "{mech}: {:?}", pair.client_events);
    }
}

#[test]
fn a_wrong_marker_password() {
    for mech in ["PLAIN", "SCRAM-SHA-256", "DIGEST-MD5"] {
        let c = client("alice@example.com", Credentials::password(PASSWORD), mech);
        let pair = run(
            &format!("wrong password, {mech}"),
            c,
            server(&[mech], None, false),
            store("not-the-marker"),
            &mut LegacyHost::default(),
        );
        assert!(!ready(&pair), "{mech}");
        assert!(
            pair.server_auth_failure().is_some(),
            "{mech}: {:?}",
            pair.server_events
        );
    }
    for (label, methods) in legacy_methods() {
        let c = client("alice@example.com", Credentials::password(PASSWORD), "none");
        let pair = run(
            &format!("wrong password, jabber:iq:auth {label}"),
            c,
            server(&[], Some(methods), false),
            store("not-the-marker"),
            &mut LegacyHost::default(),
        );
        assert!(!ready(&pair), "{label}");
        assert!(
            down(&pair).contains("code='401'"),
            "{label}: {}",
            down(&pair)
        );
    }
}

/// Each jabber:iq:auth method alone, with the element that carries its
/// credential.
fn legacy_methods() -> [(&'static str, LegacyAuthMethods); 3] {
    let only = |password, digest, zero_k| LegacyAuthMethods {
        password,
        digest,
        zero_k,
    };
    [
        ("password", only(true, false, false)),
        ("digest", only(false, true, false)),
        ("hash", only(false, false, true)),
    ]
}

#[test]
fn jabber_iq_auth_logins_and_their_echoed_refusals() {
    for (element, methods) in legacy_methods() {
        let label = format!("jabber:iq:auth <{element}/>");
        let label = label.as_str();
        let c = client("alice@example.com", Credentials::password(PASSWORD), "none");
        let pair = run(
            label,
            c,
            server(&[], Some(methods), false),
            store(PASSWORD),
            &mut LegacyHost::default(),
        );
        assert!(ready(&pair), "{label}: {:?}", pair.client_events);
        assert!(
            String::from_utf8_lossy(&pair.up_bytes).contains(&format!("<{element}>")),
            "{label}: the client used {element}"
        );
        // An empty resource (which our client cannot be configured to
        // send: the wire is edited on the way): 406, and the query comes
        // back without the credential.
        let mut c = client("alice@example.com", Credentials::password(PASSWORD), "none");
        c.resource = Some("blank-me".into());
        let mut seen = Seen::default();
        let mut pair = Pair::new(
            c,
            server(&[], Some(methods), false),
            store(PASSWORD),
            Some(TlsSim::same(tls_info())),
        );
        pair.filter = Some(Box::new(|way, bytes: Vec<u8>| {
            let text = String::from_utf8(bytes).unwrap();
            let text = match way {
                Way::Up => text.replace("<resource>blank-me</resource>", "<resource/>"),
                Way::Down => text,
            };
            vec![text.into_bytes()]
        }));
        drive(&mut pair, &mut LegacyHost::default(), &mut seen);
        seen.run(&pair);
        let reply = error_reply(&pair, "406");
        assert!(
            reply.contains(&format!("<{element}/>")),
            "{label}: echoed, emptied: {reply}"
        );
    }
}

/// The registration the client does before logging in.
fn registration(fields: &[(&str, &str)], then_login: bool) -> Option<Registration> {
    Some(Registration {
        fields: fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        then_login,
    })
}

#[test]
fn registration_created_and_refused_with_406_409_501() {
    // Created, then a PLAIN login with the new account.
    let mut c = client(
        "newbie@example.com",
        Credentials::password(PASSWORD),
        "PLAIN",
    );
    c.register = registration(
        &[
            ("username", "newbie"),
            ("password", PASSWORD),
            ("email", "n@example.com"),
        ],
        true,
    );
    let pair = run(
        "registration",
        c,
        server(&["PLAIN"], None, true),
        store("unrelated"),
        &mut LegacyHost::default(),
    );
    assert!(pair.client_events.contains(&ClientEvent::Registered));
    assert!(ready(&pair), "{:?}", pair.client_events);
    // 406: no user name; 409: alice exists; 501: registration off.
    for (code, fields, register) in [
        ("406", &[("password", PASSWORD)][..], true),
        (
            "409",
            &[("username", "alice"), ("password", PASSWORD)][..],
            true,
        ),
        (
            "501",
            &[("username", "newbie"), ("password", PASSWORD)][..],
            false,
        ),
    ] {
        let mut c = client(
            "alice@example.com",
            Credentials::password(PASSWORD),
            "PLAIN",
        );
        c.register = registration(fields, true);
        let pair = run(
            &format!("registration, {code}"),
            c,
            server(&["PLAIN"], None, register),
            store(PASSWORD),
            &mut LegacyHost::default(),
        );
        let reply = error_reply(&pair, code);
        assert!(reply.contains("<password/>"), "echoed, emptied: {reply}");
    }
    // The host refuses (406) a registration.
    let mut c = client(
        "newbie@example.com",
        Credentials::password(PASSWORD),
        "PLAIN",
    );
    c.register = registration(&[("username", "newbie"), ("password", PASSWORD)], false);
    let mut host = LegacyHost {
        refuse_registration: Some(LegacyError::NOT_ACCEPTABLE),
        ..LegacyHost::default()
    };
    let pair = run(
        "registration refused by the host",
        c,
        server(&["PLAIN"], None, true),
        store(PASSWORD),
        &mut host,
    );
    assert!(error_reply(&pair, "406").contains("<password/>"));
}

/// Logs alice in (PLAIN), then sends `iq` inside the session and lets the
/// host answer; checks nothing leaked.
fn in_session(what: &str, iq: Element, host: &mut LegacyHost) -> Pair {
    let c = client(
        "alice@example.com",
        Credentials::password(PASSWORD),
        "PLAIN",
    );
    let s = server(&["PLAIN"], None, true);
    let mut seen = Seen::default();
    seen.debug("client config", &c);
    seen.debug("server config", &s);
    let mut pair = Pair::new(c, s, store(PASSWORD), Some(TlsSim::same(tls_info())));
    drive(&mut pair, host, &mut seen);
    assert!(ready(&pair), "{what}: {:?}", pair.client_events);
    pair.client.send(&iq).unwrap();
    drive(&mut pair, host, &mut seen);
    seen.run(&pair);
    seen.assert_clean(what, &pair.down_bytes, &all_secrets(&pair));
    pair
}

fn register_iq(id: &str, fields: &[(&str, &str)]) -> Element {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    register::set(id, &fields)
}

#[test]
fn registration_inside_a_session() {
    // Password change, accepted.
    let pair = in_session(
        "password change",
        register_iq("c1", &[("username", "alice"), ("password", NEW_PASSWORD)]),
        &mut LegacyHost::default(),
    );
    assert!(pair.server_events.iter().any(|e| matches!(
        e,
        ServerEvent::Register(RegistrationRequest::ChangePassword { password, .. })
            if password.ct_eq(NEW_PASSWORD)
    )));
    assert_eq!(pair.store.users["alice"], NEW_PASSWORD);
    // An update that carries a password, refused by the host (406).
    let mut host = LegacyHost {
        refuse_registration: Some(LegacyError::NOT_ACCEPTABLE),
        ..LegacyHost::default()
    };
    let pair = in_session(
        "update",
        register_iq(
            "u1",
            &[("password", NEW_PASSWORD), ("email", "alice@example.org")],
        ),
        &mut host,
    );
    assert!(pair.server_events.iter().any(|e| matches!(
        e,
        ServerEvent::Register(RegistrationRequest::Update { fields, .. })
            if fields.iter().any(|(n, _)| n == "password")
    )));
    assert!(error_reply(&pair, "406").contains("<password/>"));
    // A password change refused by the host (406).
    let mut host = LegacyHost {
        refuse_registration: Some(LegacyError::NOT_ACCEPTABLE),
        ..LegacyHost::default()
    };
    let pair = in_session(
        "password change refused",
        register_iq("c2", &[("password", NEW_PASSWORD)]),
        &mut host,
    );
    assert!(error_reply(&pair, "406").contains("<password/>"));
    // A new registration inside a session: 405, echoed.
    let pair = in_session(
        "new registration in a session",
        register_iq("r1", &[("username", "eve"), ("password", NEW_PASSWORD)]),
        &mut LegacyHost::default(),
    );
    assert!(error_reply(&pair, "405").contains("<password/>"));
}

/// The server's IQ error with `code` (its echoed query included).
fn error_reply(pair: &Pair, code: &str) -> String {
    let down = down(pair);
    down.split("<iq ")
        .find(|iq| iq.contains(&format!("code='{code}'")))
        .map(|iq| format!("<iq {iq}"))
        .unwrap_or_else(|| panic!("no {code} reply: {down}"))
}

#[test]
fn echoed_data_form_passwords_are_emptied() {
    // XEP-0077 section 6: fields in a data form, inside a session. Refused
    // by the host (406), echoed without the form's secrets.
    let form = format!(
        "<iq type='set' id='f1'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>\
         <field var='username'><value>zed</value></field>\
         <field var='password'><value>{PASSWORD}</value></field>\
         <field var='pin' type='text-private'><value>{NEW_PASSWORD}</value></field></x></query></iq>"
    );
    let mut host = LegacyHost {
        refuse_registration: Some(LegacyError::NOT_ACCEPTABLE),
        ..LegacyHost::default()
    };
    let pair = in_session("data form", support::parse_stanza(&form), &mut host);
    let reply = error_reply(&pair, "406");
    assert!(reply.contains("<field var='password'/>"), "{reply}");
    assert!(
        reply.contains("<field type='text-private' var='pin'/>")
            || reply.contains("<field var='pin' type='text-private'/>"),
        "{reply}"
    );
}
