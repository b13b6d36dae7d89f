//! A misbehaving server: each tampering gives its typed error, and the
//! client sends nothing it should not.

mod support;

use std::time::Instant;
use xmpp_sansio::client::{ClientSettings, PeerRefusal, PolicyError};
use xmpp_sansio::error::Misbehavior;

use support::{text_of, Dir, Entry, Transcript};
use xmpp_sansio::client::{
    Client, ClientError, ClientEvent, Credentials, TlsInfo, TlsMode, UsageError,
};
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::stream_error::StreamErrorCondition;
use xmpp_sansio::DeterministicRandom;

const SERVER_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>";
const FEATURES_TLS: &str = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
const FEATURES_PLAIN: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";

struct Run {
    client: Client,
    now: Instant,
    sent: String,
    events: Vec<ClientEvent>,
}

impl Run {
    fn new(tls: TlsMode) -> Run {
        Run::with(tls, |_| {})
    }

    /// A run whose configuration `adjust` changes first.
    fn with(tls: TlsMode, adjust: impl FnOnce(&mut ClientSettings)) -> Run {
        let mut c = ClientSettings::new("alice@localhost", Credentials::password("secret"));
        // The captures are RFC 6120 logins (Prosody offered SASL2 too).
        c.sasl2 = xmpp_sansio::sasl2::Sasl2Policy::Never;
        c.tls = tls;
        c.policy.allow_plain_without_tls = true;
        adjust(&mut c);
        let now = Instant::now();
        let mut run = Run {
            client: Client::with_random(
                c.build().unwrap(),
                Box::new(DeterministicRandom::new(3)),
                now,
            ),
            now,
            sent: String::new(),
            events: Vec::new(),
        };
        run.drain();
        run
    }

    fn drain(&mut self) {
        let mut buf = Vec::new();
        self.client.poll_transmit(&mut buf);
        self.sent.push_str(&String::from_utf8(buf).unwrap());
        while let Some(ev) = self.client.poll_event() {
            self.events.push(ev);
        }
    }

    fn feed(&mut self, s: &str) {
        self.client.feed(self.now, s.as_bytes()).unwrap();
        self.drain();
    }

    /// What the client sent since the last call.
    fn take_sent(&mut self) -> String {
        std::mem::take(&mut self.sent)
    }

    fn error(&self) -> Option<&ClientError> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Error(err) => Some(err),
            _ => None,
        })
    }
}

fn protocol(cond: StreamErrorCondition) -> impl Fn(&ClientError) -> bool {
    move |e| matches!(e, ClientError::PeerMisbehaved(Misbehavior::Protocol { condition, .. }) if *condition == cond)
}

#[test]
fn bytes_after_proceed_are_handed_back_untouched() {
    let mut r = Run::new(TlsMode::StartTlsRequired);
    r.feed(&format!("{SERVER_HEADER}{FEATURES_TLS}"));
    assert!(r.take_sent().contains("<starttls"));
    // A proceed followed, in the same read, by what looks like XMPP: an
    // injected success. It belongs to TLS and must not be parsed.
    let injected = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\x16\x03\x01";
    r.feed(&format!(
        "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>{injected}"
    ));
    assert_eq!(
        r.events,
        [ClientEvent::StartTls {
            pending: injected.as_bytes().to_vec()
        }]
    );
    assert_eq!(r.take_sent(), "");
    // More bytes before TLS is up are refused, not parsed.
    assert_eq!(
        r.client.feed(r.now, b"<success/>"),
        Err(UsageError::AwaitingTls)
    );
    // TLS up: a fresh stream, with `from` now that it is encrypted.
    r.client
        .tls_established(r.now, TlsInfo::without_binding(TlsVersion::Tls13))
        .unwrap();
    r.drain();
    let sent = r.take_sent();
    assert!(
        sent.starts_with(
            "<?xml version='1.0'?><stream:stream from='alice@localhost' to='localhost'"
        ),
        "{sent}"
    );
    assert!(r.client.is_encrypted());
}

#[test]
fn starttls_failure_ends_the_stream() {
    let mut r = Run::new(TlsMode::StartTlsRequired);
    r.feed(&format!("{SERVER_HEADER}{FEATURES_TLS}"));
    r.take_sent();
    r.feed("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>");
    assert_eq!(
        r.error(),
        Some(&ClientError::Refused(PeerRefusal::StartTls))
    );
    assert_eq!(r.take_sent(), "</stream:stream>");
    assert_eq!(r.events.last(), Some(&ClientEvent::Closed));
}

#[test]
fn features_without_starttls_while_tls_is_required() {
    let mut r = Run::new(TlsMode::StartTlsRequired);
    r.feed(&format!("{SERVER_HEADER}{FEATURES_PLAIN}"));
    assert_eq!(
        r.error(),
        Some(&ClientError::Policy(PolicyError::TlsRequired))
    );
    let sent = r.take_sent();
    assert!(!sent.contains("<auth"), "{sent}");
    assert!(sent.contains("<policy-violation"), "{sent}");
}

#[test]
fn success_before_any_auth_is_a_protocol_error() {
    let mut r = Run::new(TlsMode::StartTlsRequired);
    r.take_sent();
    r.feed(&format!(
        "{SERVER_HEADER}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    ));
    assert!(protocol(StreamErrorCondition::UnsupportedStanzaType)(
        r.error().unwrap()
    ));
    let sent = r.take_sent();
    // No restart: no new header, only the stream error and the close.
    assert!(!sent.contains("<stream:stream"), "{sent}");
    assert!(sent.contains("unsupported-stanza-type") && sent.ends_with("</stream:stream>"));
    // Sticky: later input is refused.
    assert_eq!(r.client.feed(r.now, b" "), Err(UsageError::Closed));
}

#[test]
fn a_second_features_during_sasl_is_a_protocol_error() {
    let mut r = Run::new(TlsMode::None);
    r.feed(&format!("{SERVER_HEADER}{FEATURES_PLAIN}"));
    assert!(r.take_sent().contains("<auth"));
    r.feed(FEATURES_PLAIN);
    assert!(protocol(StreamErrorCondition::UnsupportedStanzaType)(
        r.error().unwrap()
    ));
    assert!(!r.take_sent().contains("<auth"));
}

#[test]
fn an_unknown_element_mid_sasl_is_a_protocol_error() {
    let mut r = Run::new(TlsMode::None);
    r.feed(&format!("{SERVER_HEADER}{FEATURES_PLAIN}"));
    r.take_sent();
    r.feed("<presence/>");
    assert!(protocol(StreamErrorCondition::UnsupportedStanzaType)(
        r.error().unwrap()
    ));
    r.take_sent();
    // Nothing more happens.
    assert_eq!(
        r.client.feed(
            r.now,
            b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
        ),
        Err(UsageError::Closed)
    );
    assert_eq!(r.take_sent(), "");
}

#[test]
fn stanzas_before_ready_are_refused_not_queued() {
    let mut r = Run::new(TlsMode::None);
    let msg: minidom::Element =
        "<message xmlns='jabber:client' to='bob@localhost'><body>early</body></message>"
            .parse()
            .unwrap();
    assert_eq!(r.client.send(&msg), Err(UsageError::NotReady));
    r.feed(&format!("{SERVER_HEADER}{FEATURES_PLAIN}"));
    assert_eq!(r.client.send(&msg), Err(UsageError::NotReady));
    assert!(!r.take_sent().contains("early"));
}

/// The real SCRAM-SHA-1 capture, with the server's `<success/>` changed.
fn scram_capture_with_success(data: &str) -> (Vec<ClientEvent>, String) {
    let t = Transcript::load("prosody/prosody13_scram_sha1_bind.txt");
    let c_text = String::from_utf8(t.bytes_of(Dir::C)).unwrap();
    let first = text_of("auth", &c_text).unwrap();
    let first = xmpp_sansio::sasl::decode_payload(first).unwrap().unwrap();
    let nonce = String::from_utf8(first)
        .unwrap()
        .split("r=")
        .nth(1)
        .unwrap()
        .to_owned();
    let mut c = ClientSettings::new("alice@localhost", Credentials::password("secret"));
    // The captures are RFC 6120 logins (Prosody offered SASL2 too).
    c.sasl2 = xmpp_sansio::sasl2::Sasl2Policy::Never;
    c.replay_nonce = Some(nonce);
    c.policy.only = Some(vec!["SCRAM-SHA-1".into()]);
    let now = Instant::now();
    let mut client = Client::with_random(
        c.build().unwrap(),
        Box::new(DeterministicRandom::new(3)),
        now,
    );
    let mut events = Vec::new();
    let mut sent = Vec::new();
    for e in &t.entries {
        let Entry::Data(Dir::S, bytes) = e else {
            continue;
        };
        if client.is_closed() {
            break;
        }
        let mut s = String::from_utf8(bytes.clone()).unwrap();
        if s.starts_with("<success") {
            s = format!("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{data}</success>");
        }
        sent.clear();
        client.feed(now, s.as_bytes()).unwrap();
        client.poll_transmit(&mut sent);
        while let Some(ev) = client.poll_event() {
            if let ClientEvent::StartTls { .. } = ev {
                client
                    .tls_established(now, TlsInfo::without_binding(TlsVersion::Tls13))
                    .unwrap();
                client.poll_transmit(&mut sent);
            }
            events.push(ev);
        }
    }
    (events, String::from_utf8(sent).unwrap())
}

#[test]
fn scram_server_final_with_a_wrong_signature() {
    // v= of the capture is dj1jOS9... ; a signature of the right length
    // but wrong value, and a garbled one.
    for bad in ["v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "v=", "e=invalid-proof"] {
        let data = xmpp_sansio::sasl::encode_payload(bad.as_bytes());
        let (events, last_sent) = scram_capture_with_success(&data);
        let err = events.iter().find_map(|e| match e {
            ClientEvent::Error(ClientError::PeerMisbehaved(Misbehavior::Sasl(s))) => {
                Some(s.clone())
            }
            _ => None,
        });
        assert!(err.is_some(), "{bad}: {events:?}");
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, ClientEvent::Authenticated { .. })),
            "{bad}"
        );
        // No restart after an unproven success: no new header, no bind.
        assert!(
            !last_sent.contains("<stream:stream") && !last_sent.contains("bind"),
            "{bad}: {last_sent}"
        );
    }
    // The untouched capture authenticates (the tampering is what failed).
    let t = Transcript::load("prosody/prosody13_scram_sha1_bind.txt");
    let real = String::from_utf8(t.bytes_of(Dir::S)).unwrap();
    let real = text_of("success", &real).unwrap().to_owned();
    let (events, _) = scram_capture_with_success(&real);
    assert!(events
        .iter()
        .any(|e| matches!(e, ClientEvent::Authenticated { .. })));
}

const SEE_OTHER_HOST: &str = "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>other.example:5223</see-other-host><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>moved</text></stream:error></stream:stream>";

/// The server sends `see-other-host`: the client reports the redirect when
/// `redirect` is `Some(protected)`, then the stream error and the close;
/// it answers the close and sends no stream error of its own.
fn assert_see_other_host(r: &mut Run, redirect: Option<bool>) {
    r.take_sent();
    r.events.clear();
    r.feed(&format!("{SERVER_HEADER}{SEE_OTHER_HOST}"));
    let mut events = std::mem::take(&mut r.events);
    if let Some(protected) = redirect {
        assert_eq!(
            events.remove(0),
            ClientEvent::Redirect {
                host: "other.example".into(),
                port: Some(5223),
                protected,
            }
        );
    }
    let [ClientEvent::Error(ClientError::PeerStreamError(e)), ClientEvent::Closed] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(e.text.as_deref(), Some("moved"));
    assert_eq!(r.take_sent(), "</stream:stream>");
}

#[test]
fn stream_errors_are_reported_with_redirects() {
    // Over TLS (after STARTTLS): the redirect, protected.
    let mut r = Run::new(TlsMode::StartTlsRequired);
    r.feed(&format!("{SERVER_HEADER}{FEATURES_TLS}"));
    r.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    r.client
        .tls_established(r.now, TlsInfo::without_binding(TlsVersion::Tls13))
        .unwrap();
    r.drain();
    assert_see_other_host(&mut r, Some(true));
}

#[test]
fn a_redirect_over_an_unprotected_stream_is_only_a_stream_error() {
    // Before STARTTLS, anyone on the path can send see-other-host: no
    // Redirect by default, the stream error all the same.
    for tls in [TlsMode::StartTlsRequired, TlsMode::None] {
        assert_see_other_host(&mut Run::new(tls), None);
    }
    // Allowed by the host: reported, and said to be unprotected.
    let mut r = Run::with(TlsMode::None, |c| c.allow_redirect_without_tls = true);
    assert_see_other_host(&mut r, Some(false));
}

#[test]
fn malformed_xml_from_the_server_gets_not_well_formed() {
    let mut r = Run::new(TlsMode::StartTlsRequired);
    r.take_sent();
    r.feed(&format!("{SERVER_HEADER}<stream:features></wrong>"));
    assert!(matches!(
        r.error(),
        Some(ClientError::PeerMisbehaved(Misbehavior::Read(_)))
    ));
    assert!(r
        .take_sent()
        .contains("<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
}

#[test]
fn close_handshake_with_grace_deadline() {
    let mut r = Run::new(TlsMode::None);
    r.feed(&format!("{SERVER_HEADER}{FEATURES_PLAIN}"));
    r.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    r.feed(&format!("{SERVER_HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>"));
    r.feed("<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/x</jid></bind></iq>");
    // Optional session: skipped, ready at once.
    assert!(r.client.is_ready());
    assert!(!r.sent.contains("xmpp-session"));
    r.take_sent();
    r.client.close(r.now);
    r.drain();
    assert_eq!(r.take_sent(), "</stream:stream>");
    let deadline = r.client.poll_timeout().unwrap();
    r.client.handle_timeout(deadline);
    r.drain();
    assert_eq!(r.events.last(), Some(&ClientEvent::Closed));
    assert!(r.client.is_closed());
}

#[test]
fn bind_conflict_is_reported() {
    let mut r = Run::new(TlsMode::None);
    r.feed(&format!("{SERVER_HEADER}{FEATURES_PLAIN}"));
    r.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    r.feed(&format!("{SERVER_HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"));
    r.feed("<iq type='error' id='bind_1'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    let Some(ClientError::Refused(PeerRefusal::Bind(e))) = r.error() else {
        panic!("{:?}", r.events)
    };
    assert_eq!(e.condition, "conflict");
}
