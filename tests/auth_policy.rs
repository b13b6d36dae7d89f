//! Authentication policy against a hostile peer (issue 11): no legacy
//! credential before a required TLS, one failure count for SASL failures,
//! aborts and jabber:iq:auth failures, and a cap on the zero-knowledge
//! hashing a server can ask of the client.

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};
use xmpp_sansio::client::PolicyError;
use xmpp_sansio::server::PolicyError as ServerPolicyError;

use support::fixtures_dir;
use support::pair::Store;
use xmpp_sansio::client::{
    Client, ClientError, ClientEvent, ClientSettings, Credentials, LegacyAuthPolicy, TlsMode,
};
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::sasl::encode_payload;
use xmpp_sansio::server::{
    BindAnswer, LegacyAuthAnswer, LegacyAuthMethods, LegacyAuthRequest, Server, ServerError,
    ServerEvent, ServerSettings, ServerTls,
};
use xmpp_sansio::steps::iq_auth::{self, ZeroKState};
use xmpp_sansio::steps::LegacyError;
use xmpp_sansio::{DeterministicRandom, TlsInfo};

const HEADER: &str = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='yak' version='1.0'>";
const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const POLICY_VIOLATION: &str = "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>";
/// The zero-knowledge token of the seed's dj (Programming Jabber 7-3).
const TOKEN: &str = "3B2DEEC0";

/// The book's server `yak` with dj/secret, SASL PLAIN and SCRAM-SHA-1
/// and jabber:iq:auth with `methods`.
fn yak(tls: ServerTls, methods: LegacyAuthMethods, max_auth_failures: u32) -> ServerSettings {
    let mut c = ServerSettings::new("yak");
    c.tls = tls;
    c.mechanisms = vec!["PLAIN".into(), "SCRAM-SHA-1".into()];
    c.allow_plain_without_tls = true;
    c.legacy_auth = Some(methods);
    c.max_auth_failures = max_auth_failures;
    c
}

/// A server alone, a raw client on the other side, and its host: SASL
/// from a user store, jabber:iq:auth for dj/secret (zero-knowledge state
/// at 497, so 496 is advertised), binds accepted.
struct Raw {
    server: Server,
    now: Instant,
    store: Store,
    zero_k: ZeroKState,
    /// Every host request the server made.
    requests: Vec<String>,
    events: Vec<ServerEvent>,
}

impl Raw {
    fn new(config: ServerSettings) -> Raw {
        let now = Instant::now();
        Raw {
            server: Server::with_random(
                config.build().unwrap(),
                Box::new(DeterministicRandom::new(0)),
                now,
            ),
            now,
            store: Store::new(&[("dj", "secret")]),
            zero_k: ZeroKState::new("secret", TOKEN, 497),
            requests: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Feeds `xml`, answers the host requests, returns what the server
    /// sent.
    fn send(&mut self, xml: &str) -> String {
        self.server.feed(self.now, xml.as_bytes()).unwrap();
        let now = self.now;
        while let Some(ev) = self.server.poll_event() {
            match &ev {
                ServerEvent::Credentials(req) => {
                    self.requests.push(format!("{req:?}"));
                    let a = self.store.answer(req);
                    self.server.answer_credentials(now, a).unwrap();
                }
                ServerEvent::LegacyAuth(req) => {
                    self.requests.push(format!("{req:?}"));
                    let answer = match req {
                        LegacyAuthRequest::ZeroKState { username } => {
                            LegacyAuthAnswer::ZeroK((username == "dj").then(|| self.zero_k.clone()))
                        }
                        LegacyAuthRequest::Verify {
                            username,
                            credential,
                            stream_id,
                            ..
                        } => {
                            let ok = username == "dj"
                                && credential.verify(
                                    stream_id,
                                    Some("secret"),
                                    Some(&mut self.zero_k),
                                );
                            LegacyAuthAnswer::Verdict(if ok {
                                Ok(())
                            } else {
                                Err(LegacyError::NOT_AUTHORIZED)
                            })
                        }
                        _ => panic!("{req:?}"),
                    };
                    self.server.answer_legacy_auth(now, answer).unwrap();
                }
                ServerEvent::Bind { .. } => {
                    let a = BindAnswer::Accept(None);
                    self.server.answer_bind(now, a).unwrap();
                }
                _ => {}
            }
            self.events.push(ev);
        }
        let mut out = Vec::new();
        self.server.poll_transmit(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// Opens a stream; returns the server's stream id.
    fn open(&mut self, header: &str) -> String {
        let out = self.send(header);
        out.split(" id='")
            .nth(1)
            .and_then(|t| t.split('\'').next())
            .unwrap_or_else(|| panic!("no stream id: {out}"))
            .to_owned()
    }

    fn authenticated(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, ServerEvent::Authenticated { .. }))
    }

    fn ended_for_too_many_failures(&self) -> bool {
        matches!(
            self.server.error(),
            Some(ServerError::Policy(
                ServerPolicyError::TooManyAuthFailures { .. }
            ))
        )
    }
}

/// A jabber:iq:auth set for dj with `credential` (the element name and
/// its text).
fn legacy_set(id: &str, credential: (&str, &str)) -> String {
    let (name, value) = credential;
    format!("<iq type='set' id='{id}'><query xmlns='jabber:iq:auth'><username>dj</username><{name}>{value}</{name}><resource>laptop</resource></query></iq>")
}

/// dj logs in with the right digest for `stream_id`: the empty result,
/// and the session is ready.
fn digest_login(raw: &mut Raw, stream_id: &str) {
    let digest = iq_auth::digest(stream_id, "secret");
    let out = raw.send(&legacy_set("ok", ("digest", &digest)));
    assert_eq!(out, "<iq id='ok' type='result'/>");
    assert_eq!(raw.server.jid().map(|j| j.as_str()), Some("dj@yak/laptop"));
}

fn legacy_get(id: &str) -> String {
    format!("<iq type='get' id='{id}'><query xmlns='jabber:iq:auth'><username>dj</username></query></iq>")
}

fn plain_auth(password: &str) -> String {
    let payload = encode_payload(format!("\0dj\0{password}").as_bytes());
    format!("<auth xmlns='{SASL}' mechanism='PLAIN'>{payload}</auth>")
}

/// RFC 5802's client-first, for dj: the server asks its host for dj's
/// SCRAM credentials before it can answer.
fn scram_first() -> String {
    let payload = encode_payload(b"n,,n=dj,r=fyko+d2lbbFgONRv9qkxdawL");
    format!("<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>{payload}</auth>")
}

// ---------------------------------------------------------------------
// Finding 3: no legacy credential of any kind before a required TLS

#[test]
fn no_legacy_credential_of_any_kind_before_required_tls() {
    let mut raw = Raw::new(yak(
        ServerTls::StartTlsRequired,
        LegacyAuthMethods::default(),
        10,
    ));
    let id = raw.open(HEADER);
    // The IQ-get that would ask the host for dj's zero-knowledge state.
    let out = raw.send(&legacy_get("g1"));
    assert!(
        out.contains("id='g1'") && out.contains("code='406'"),
        "{out}"
    );
    assert!(!out.contains("<sequence"), "{out}");
    let credentials = [
        ("password", "secret".to_owned()),
        ("digest", iq_auth::digest(&id, "secret")),
        ("hash", iq_auth::zero_k_hash("secret", TOKEN, 496)),
    ];
    for (n, (name, value)) in credentials.iter().enumerate() {
        let out = raw.send(&legacy_set(&format!("s{n}"), (name, value)));
        assert_eq!(
            out,
            format!("<iq id='s{n}' type='error'><error code='406' type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Not Acceptable</text></error></iq>"),
            "{name}"
        );
    }
    assert_eq!(raw.requests, Vec::<String>::new(), "the host was asked");
    assert!(!raw.authenticated() && !raw.server.is_ready());
    assert!(!raw.server.is_closed());

    // The same credential once TLS is up: the host is asked, dj is in.
    let out = raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(out.contains("<proceed"), "{out}");
    let info = TlsInfo::without_binding(TlsVersion::Tls13);
    raw.server.tls_established(raw.now, info).unwrap();
    let id = raw.open(HEADER);
    let out = raw.send(&legacy_get("g2"));
    assert!(out.contains("<sequence>496</sequence>"), "{out}");
    digest_login(&mut raw, &id);
}

#[test]
fn legacy_sets_before_required_tls_count_as_failures() {
    let mut raw = Raw::new(yak(
        ServerTls::StartTlsRequired,
        LegacyAuthMethods::default(),
        3,
    ));
    let id = raw.open(HEADER);
    // Gets are refused but not counted; each set is.
    for n in 0..3 {
        raw.send(&legacy_get(&format!("g{n}")));
    }
    assert!(!raw.server.is_closed());
    let digest = iq_auth::digest(&id, "secret");
    raw.send(&legacy_set("s1", ("digest", &digest)));
    raw.send(&legacy_set("s2", ("password", "secret")));
    assert!(!raw.server.is_closed());
    let out = raw.send(&legacy_set("s3", ("digest", &digest)));
    assert!(out.contains("code='406'"), "{out}");
    assert!(out.ends_with(POLICY_VIOLATION), "{out}");
    assert!(raw.ended_for_too_many_failures());
    assert!(raw.requests.is_empty(), "{:?}", raw.requests);
}

/// The C: lines of one scenario of seed 001.
fn seed001_client_lines(scenario: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures_dir().join("seeds/seed001_jabber14.txt")).unwrap();
    let start = text
        .find(&format!("-- scenario: {scenario}"))
        .unwrap_or_else(|| panic!("no scenario {scenario}"));
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("-- scenario"))
        .filter_map(|l| l.strip_prefix("C: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_pre_1_0_client_cannot_log_in_when_tls_is_required() {
    // Seed 001's Jabber 1.4 login (Example 7-3) against a server requiring
    // STARTTLS: a pre-1.0 stream gets no features, so no STARTTLS offer;
    // the stream is admitted (legacy authentication is on) but every
    // jabber:iq:auth query is refused, and the host never hears of it.
    let lines = seed001_client_lines("authenticate, plaintext");
    assert_eq!(lines.len(), 3);
    let mut raw = Raw::new(yak(
        ServerTls::StartTlsRequired,
        LegacyAuthMethods::default(),
        3,
    ));
    let header = raw.send(&lines[0]);
    let ours = header.split("<stream:stream").nth(1).unwrap();
    assert!(!ours.contains("version="), "{header}");
    assert!(!header.contains("<stream:features"), "{header}");
    let fields = raw.send(&lines[1]);
    assert!(fields.contains("code='406'"), "{fields}");
    assert!(!fields.contains("<password/>"), "{fields}");
    let login = raw.send(&lines[2]);
    assert!(login.contains("code='406'"), "{login}");
    assert!(raw.requests.is_empty(), "{:?}", raw.requests);
    assert!(!raw.server.is_ready() && !raw.authenticated());
    // Nor can it start TLS it was never offered (and log in after it).
    let mut raw = Raw::new(yak(
        ServerTls::StartTlsRequired,
        LegacyAuthMethods::default(),
        3,
    ));
    raw.send(&lines[0]);
    let answer = raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(!answer.contains("<proceed"), "{answer}");
    assert!(answer.contains("unsupported-stanza-type"), "{answer}");
    // The same lines log in where TLS is not required (the seed's server).
    let mut raw = Raw::new(yak(ServerTls::None, LegacyAuthMethods::default(), 3));
    for line in &lines {
        raw.send(line);
    }
    assert_eq!(raw.server.jid().map(|j| j.as_str()), Some("dj@yak/laptop"));
}

// ---------------------------------------------------------------------
// Finding 4: one count for every kind of failure

#[derive(Debug, Clone, Copy)]
enum Failure {
    /// SASL PLAIN with a wrong password.
    Sasl,
    /// SCRAM-SHA-1 started (a credential lookup), then `<abort/>`.
    Abort,
    /// jabber:iq:auth digest with a wrong password: the host says 401.
    Legacy401,
    /// jabber:iq:auth with a method the server does not accept (plaintext).
    LegacyRefused,
}

/// Sends one failed attempt; returns what the server answered.
fn fail_once(raw: &mut Raw, stream_id: &str, kind: Failure, n: usize) -> String {
    match kind {
        Failure::Sasl => raw.send(&plain_auth("wrong")),
        Failure::Abort => {
            let challenge = raw.send(&scram_first());
            assert!(challenge.contains("<challenge"), "{challenge}");
            raw.send(&format!("<abort xmlns='{SASL}'/>"))
        }
        Failure::Legacy401 => {
            let digest = iq_auth::digest(stream_id, "wrong");
            raw.send(&legacy_set(&format!("a{n}"), ("digest", &digest)))
        }
        Failure::LegacyRefused => raw.send(&legacy_set(&format!("a{n}"), ("password", "secret"))),
    }
}

fn the_answer_to(kind: Failure) -> &'static str {
    match kind {
        Failure::Sasl => "<not-authorized/></failure>",
        Failure::Abort => "<aborted/></failure>",
        Failure::Legacy401 => "code='401'",
        Failure::LegacyRefused => "code='406'",
    }
}

/// Plaintext is refused as a method: the LegacyRefused kind.
fn no_plaintext() -> LegacyAuthMethods {
    LegacyAuthMethods {
        password: false,
        ..LegacyAuthMethods::default()
    }
}

/// Runs `kinds` in order against a fresh server with `limit`; checks that
/// each attempt is answered and that only the `limit`-th ends the stream.
fn run_failures(kinds: &[Failure], limit: u32) {
    let mut raw = Raw::new(yak(ServerTls::None, no_plaintext(), limit));
    let id = raw.open(HEADER);
    for (n, kind) in kinds.iter().enumerate() {
        let out = fail_once(&mut raw, &id, *kind, n);
        assert!(out.contains(the_answer_to(*kind)), "{kinds:?} {n}: {out}");
        let last = n + 1 == limit as usize;
        assert_eq!(raw.server.is_closed(), last, "{kinds:?} attempt {}", n + 1);
        assert_eq!(out.ends_with(POLICY_VIOLATION), last, "{kinds:?}: {out}");
    }
    assert!(raw.ended_for_too_many_failures(), "{kinds:?}");
}

#[test]
fn aborts_end_the_stream_at_the_limit() {
    // Each abort came after a credential lookup: 10,000 of them on one
    // stream were possible.
    for limit in [1, 3, 5] {
        run_failures(&vec![Failure::Abort; limit as usize], limit);
    }
}

#[test]
fn three_legacy_401s_end_the_stream() {
    run_failures(&[Failure::Legacy401; 3], 3);
    run_failures(&[Failure::LegacyRefused; 3], 3);
}

#[test]
fn a_mix_of_kinds_ends_the_stream_at_the_third() {
    use Failure::*;
    for legacy in [Legacy401, LegacyRefused] {
        for kinds in [
            [Sasl, Abort, legacy],
            [Sasl, legacy, Abort],
            [Abort, Sasl, legacy],
            [Abort, legacy, Sasl],
            [legacy, Sasl, Abort],
            [legacy, Abort, Sasl],
        ] {
            run_failures(&kinds, 3);
        }
    }
}

#[test]
fn a_success_before_the_limit_still_works() {
    use Failure::*;
    // Two failures, then SASL succeeds.
    let mut raw = Raw::new(yak(ServerTls::None, no_plaintext(), 3));
    let id = raw.open(HEADER);
    fail_once(&mut raw, &id, Abort, 0);
    fail_once(&mut raw, &id, Legacy401, 1);
    let out = raw.send(&plain_auth("secret"));
    assert!(out.contains("<success"), "{out}");
    assert!(raw.authenticated() && !raw.server.is_closed());
    raw.open(HEADER);
    raw.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    assert!(raw.server.is_ready());
    // Two failures, then jabber:iq:auth succeeds.
    let mut raw = Raw::new(yak(ServerTls::None, no_plaintext(), 3));
    let id = raw.open(HEADER);
    fail_once(&mut raw, &id, Sasl, 0);
    fail_once(&mut raw, &id, LegacyRefused, 1);
    digest_login(&mut raw, &id);
}

#[test]
fn a_resource_conflict_is_not_a_failed_attempt() {
    // Only bad credentials (401) count among the host's legacy verdicts.
    let mut config = yak(ServerTls::None, LegacyAuthMethods::default(), 1);
    config.mechanisms.clear();
    let now = Instant::now();
    let mut server = Server::with_random(
        config.build().unwrap(),
        Box::new(DeterministicRandom::new(0)),
        now,
    );
    server.feed(now, HEADER.as_bytes()).unwrap();
    for n in 0..3 {
        let set = legacy_set(&format!("c{n}"), ("password", "secret"));
        server.feed(now, set.as_bytes()).unwrap();
        while let Some(ev) = server.poll_event() {
            if let ServerEvent::LegacyAuth(LegacyAuthRequest::Verify { .. }) = ev {
                let v = LegacyAuthAnswer::Verdict(Err(LegacyError::CONFLICT));
                server.answer_legacy_auth(now, v).unwrap();
            }
        }
    }
    assert!(!server.is_closed());
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    assert_eq!(
        String::from_utf8(out)
            .unwrap()
            .matches("code='409'")
            .count(),
        3
    );
}

// ---------------------------------------------------------------------
// Finding 7: the client's zero-knowledge hashing is capped

/// Seed 001's pre-1.0 server header (Example 7-3).
const YAK_HEADER: &str = "<?xml version='1.0'?> <stream:stream xmlns:stream='http://etherx.jabber.org/streams' id='1ED34A55' xmlns='jabber:client' from='yak'>";

/// dj's client against a pre-1.0 server that answers the IQ-get with the
/// seed's methods, but `sequence`; returns what the client sent after its
/// IQ-get and its events.
fn zero_k_login(
    sequence: u32,
    adjust: impl FnOnce(&mut ClientSettings),
) -> (String, Vec<ClientEvent>) {
    let mut c = ClientSettings::new("dj@yak", Credentials::password("secret"));
    c.tls = TlsMode::None;
    c.resource = Some("laptop".into());
    c.legacy_auth = LegacyAuthPolicy {
        enabled: true,
        allow_plaintext_without_tls: true,
    };
    adjust(&mut c);
    let now = Instant::now();
    let mut client = Client::with_random(
        c.build().unwrap(),
        Box::new(DeterministicRandom::new(7)),
        now,
    );
    client.feed(now, YAK_HEADER.as_bytes()).unwrap();
    let mut sent = Vec::new();
    client.poll_transmit(&mut sent);
    let sent = String::from_utf8(sent).unwrap();
    let get_id = sent
        .rsplit("<iq ")
        .next()
        .and_then(|t| t.split("id='").nth(1))
        .and_then(|t| t.split('\'').next())
        .unwrap_or_else(|| panic!("no IQ-get: {sent}"))
        .to_owned();
    let fields = format!("<iq type='result' id='{get_id}'><query xmlns='jabber:iq:auth'><username>dj</username><password/><digest/><sequence>{sequence}</sequence><token>{TOKEN}</token><resource/></query></iq>");
    client.feed(now, fields.as_bytes()).unwrap();
    let mut after = Vec::new();
    client.poll_transmit(&mut after);
    let events = std::iter::from_fn(|| client.poll_event()).collect();
    (String::from_utf8(after).unwrap(), events)
}

#[test]
fn a_zero_k_sequence_of_2_pow_32_minus_1_fails_at_once() {
    // Uncapped, this is 2^32 SHA-1 rounds inside feed (77 minutes): run it
    // aside and give it a few seconds.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(zero_k_login(u32::MAX, |_| {}));
    });
    let (sent, events) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the client is still hashing the server's sequence");
    let error = ClientError::Policy(PolicyError::ZeroKSequenceTooHigh {
        sequence: u32::MAX,
        max: 10_000,
    });
    assert!(
        events.contains(&ClientEvent::Error(error.clone())),
        "{events:?}"
    );
    assert_eq!(
        error.to_string(),
        "the server's zero-knowledge sequence 4294967295 is above the maximum 10000"
    );
    // No credential of any kind went out (not the offered digest or
    // plaintext instead): only the close.
    assert_eq!(sent, "</stream:stream>");
}

#[test]
fn the_zero_k_cap_is_configurable_and_inclusive() {
    let (sent, events) = zero_k_login(3, |c| c.max_zero_k_sequence = 3);
    let hash = iq_auth::zero_k_hash("secret", TOKEN, 3);
    assert!(sent.contains(&format!("<hash>{hash}</hash>")), "{sent}");
    assert!(!events.iter().any(|e| matches!(e, ClientEvent::Error(_))));
    let (sent, events) = zero_k_login(4, |c| c.max_zero_k_sequence = 3);
    assert!(events.contains(&ClientEvent::Error(ClientError::Policy(
        PolicyError::ZeroKSequenceTooHigh {
            sequence: 4,
            max: 3
        }
    ))));
    assert!(!sent.contains("<hash>"), "{sent}");
}
