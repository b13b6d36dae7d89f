//! Fuzz body: a [`Server`] whose host answers wrongly, interleaved with
//! fuzzed client bytes. Shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/misbehaving_host.rs`) and `tests/fuzz_host.rs`,
//! which runs it over the seeds and builds them (real sessions, as
//! `tests/fuzz_roles.rs` makes them, turned into host operations).
//!
//! Input layout: byte 0 configures the server as for the `server` body
//! (`server_body::server_config`), with registration and every
//! jabber:iq:auth method on (the `legacy` body's server); then
//! operations, each an opcode byte and its arguments:
//!
//! - `0..=3`: feed the next `n` bytes (one length byte) of client data;
//! - `4`: the honest host's answer to the request pending (credentials,
//!   bind, registration, legacy), or nothing when none is;
//! - `5`: `answer_credentials` with an answer chosen by the next byte
//!   ([`credential_answer`]): of any kind, fitting or not;
//! - `6`: `answer_bind(Accept(..))` with a resource chosen by the next
//!   byte ([`resource`]): control characters, huge, empty, valid...;
//! - `7`: `answer_bind(Refuse(..))` with a refusal chosen by the next
//!   byte ([`condition`]);
//! - `8`: `answer_register` (`Ok`, or a legacy error code);
//! - `9`: `answer_legacy_auth` (a zero-knowledge state or a verdict);
//!   without the `legacy` feature, `8` and `9` only skip their argument;
//! - `10`: `tls_established`;
//! - `11`: the clock advances by the next byte, in seconds;
//! - `12`: `close`, or `close_with_error` (next byte odd);
//! - `13`: `send` a stanza;
//! - `14..=255`: feed the next `op - 13` bytes.
//!
//! A broken invariant is a panic:
//! - nothing panics;
//! - an answer is accepted only while a request that takes its kind is
//!   pending and the stream is open (`Server::pending_request` names that
//!   kind); refused with `UsageError::Closed` once it is closed, with
//!   `NoPendingRequest` when nothing is pending, with `WrongAnswer` (naming
//!   both kinds) when another kind is (a verdict for a SCRAM request...);
//!   a refused answer leaves the request pending (the honest answer, at
//!   any later time or at the end, is accepted);
//! - an accepted bind answer sends the client its result (`<jid>`) or its
//!   error, never nothing;
//! - `feed` is refused only once closed (`Closed`) or while TLS is
//!   pending (`AwaitingTls`), `tls_established` only when no TLS is
//!   pending;
//! - one `Error` at most, then `Closed`, nothing after it;
//! - every byte the server sends reads back with our own `StreamReader`
//!   as a well-framed stream (`server_body::check_framing`), tolerating
//!   [`HOST_FAULTS`] only.

#[allow(dead_code, clippy::duplicate_mod)]
#[macro_use]
#[path = "server.rs"]
pub mod server_body;

use std::time::{Duration, Instant};

use server_body::{
    check_framing, new_server, server_framing, tls_info, Flavor, Host, Tolerate, KNOWN_FAULTS, USER,
};
use xmpp_sansio::sasl::scram::derive_server_credentials;
#[cfg(feature = "digest-md5")]
use xmpp_sansio::sasl::DigestMd5Secret;
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest, SaslCondition, ScramHash};
use xmpp_sansio::server::{BindAnswer, BindRefusal, Server, ServerEvent};
#[cfg(feature = "legacy")]
use xmpp_sansio::server::{LegacyAuthAnswer, LegacyAuthRequest, RegistrationRequest};
#[cfg(feature = "legacy")]
use xmpp_sansio::steps::{iq_auth::ZeroKState, LegacyError};
use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition};
use xmpp_sansio::xml::{StreamEvent, StreamReader};
use xmpp_sansio::{AnswerKind, UsageError};

/// Opcodes (see the module documentation).
pub const HONEST: u8 = 4;
pub const CREDENTIALS: u8 = 5;
pub const BIND_ACCEPT: u8 = 6;
pub const BIND_REFUSE: u8 = 7;
pub const REGISTER: u8 = 8;
pub const LEGACY: u8 = 9;
pub const TLS: u8 = 10;
pub const TICK: u8 = 11;
pub const CLOSE: u8 = 12;
pub const SEND: u8 = 13;

/// A request the server made, not answered yet.
#[derive(Debug)]
enum Request {
    Credentials(CredentialRequest),
    Bind(Option<xmpp_sansio::jid::ResourcePart>),
    #[cfg(feature = "legacy")]
    Register(RegistrationRequest),
    #[cfg(feature = "legacy")]
    Legacy(LegacyAuthRequest),
}

/// The credential answer for selector `k`.
pub fn credential_answer(k: u8) -> CredentialAnswer {
    match k % 8 {
        0 => CredentialAnswer::Verdict(Ok(USER.into())),
        1 => CredentialAnswer::Verdict(Ok("mallory".into())),
        2 => CredentialAnswer::Verdict(Err(SaslCondition::NotAuthorized)),
        3 => CredentialAnswer::Scram(None),
        // Credentials derived with one iteration: cheap, and not what
        // any client expects.
        4 => CredentialAnswer::Scram(
            derive_server_credentials(ScramHash::Sha1, "x", b"salt", 1).ok(),
        ),
        #[cfg(feature = "digest-md5")]
        5 => CredentialAnswer::DigestMd5(None),
        #[cfg(feature = "digest-md5")]
        6 => CredentialAnswer::DigestMd5(Some(DigestMd5Secret::Password("x".into()))),
        _ => CredentialAnswer::Verdict(Ok(String::new())),
    }
}

/// The resource for selector `k`.
/// A resource the host may answer with: the ones the type allows (a
/// prepared resource), from strings a careless host might try.
pub fn resource(k: u8) -> Option<xmpp_sansio::jid::ResourcePart> {
    let s: String = match k % 10 {
        0 => return None,
        1 => String::new(),
        2 => "\u{1}ctrl".into(),
        3 => "nul\u{0}".into(),
        4 => "x".repeat(5000),
        5 => "a/b@c".into(),
        6 => "<&'\">".into(),
        7 => "\u{FFFE}".into(),
        8 => " ".into(),
        _ => "laptop".into(),
    };
    xmpp_sansio::jid::ResourcePart::new(&s)
        .ok()
        .map(|r| r.into_owned())
}

/// The bind refusal for selector `k`.
pub fn condition(k: u8) -> BindRefusal {
    match k % 4 {
        0 => BindRefusal::Conflict,
        1 => BindRefusal::ResourceConstraint,
        2 => BindRefusal::BadRequest,
        _ => BindRefusal::NotAllowed,
    }
}

struct Driver {
    server: Server,
    host: Host,
    now: Instant,
    config: u8,
    pending: Option<Request>,
    /// A `StartTls` came and `tls_established` was not called yet.
    awaiting_tls: bool,
    /// The bytes that followed `<starttls/>`: the simulated TLS hands
    /// them back as plaintext once it is up.
    tls_pending: Vec<u8>,
    output: Vec<u8>,
    error_seen: bool,
    closed_seen: bool,
    authenticated: bool,
    ready_jid: Option<xmpp_sansio::jid::FullJid>,
    /// The host called `close` (the stream is closing: answers are
    /// refused as for a closed one).
    host_closed: bool,
}

impl Driver {
    /// Output and events since the last call: the output is kept, the
    /// events checked and the requests noted.
    fn drain(&mut self) -> (Vec<u8>, Vec<String>) {
        let mut out = Vec::new();
        self.server.poll_transmit(&mut out);
        assert!(
            !self.closed_seen || out.is_empty(),
            "bytes after Closed: {:?}",
            String::from_utf8_lossy(&out)
        );
        let mut events = Vec::new();
        while let Some(ev) = self.server.poll_event() {
            assert!(!self.closed_seen, "an event after Closed: {ev:?}");
            if self.error_seen {
                assert!(matches!(ev, ServerEvent::Closed), "Error, then {ev:?}");
            }
            events.push(format!("{ev:?}"));
            let request = match ev {
                ServerEvent::Credentials(r) => Some(Request::Credentials(r)),
                ServerEvent::Bind { resource, .. } => Some(Request::Bind(resource)),
                #[cfg(feature = "legacy")]
                ServerEvent::Register(r) => Some(Request::Register(r)),
                #[cfg(feature = "legacy")]
                ServerEvent::LegacyAuth(r) => Some(Request::Legacy(r)),
                ServerEvent::StartTls { pending } => {
                    self.awaiting_tls = true;
                    self.tls_pending = pending;
                    None
                }
                ServerEvent::Authenticated { .. } => {
                    self.authenticated = true;
                    None
                }
                ServerEvent::Ready { jid } => {
                    self.ready_jid = Some(jid);
                    None
                }
                ServerEvent::Error(_) => {
                    assert!(!self.error_seen, "a second Error");
                    self.error_seen = true;
                    None
                }
                ServerEvent::Closed => {
                    self.closed_seen = true;
                    assert!(self.server.is_closed(), "Closed but not is_closed()");
                    None
                }
                _ => None,
            };
            if let Some(r) = request {
                assert!(
                    self.pending.is_none(),
                    "{r:?} while {:?} is pending",
                    self.pending
                );
                self.pending = Some(r);
            }
        }
        self.output.extend_from_slice(&out);
        (out, events)
    }

    /// The kind of answer the pending request takes, as the events told.
    fn expected(&self) -> Option<AnswerKind> {
        Some(match self.pending.as_ref()? {
            Request::Credentials(r) => r.expected_answer(),
            Request::Bind(_) => AnswerKind::Bind,
            #[cfg(feature = "legacy")]
            Request::Register(_) => AnswerKind::Registration,
            #[cfg(feature = "legacy")]
            Request::Legacy(LegacyAuthRequest::ZeroKState { .. }) => AnswerKind::LegacyZeroK,
            #[cfg(feature = "legacy")]
            Request::Legacy(_) => AnswerKind::LegacyVerdict,
        })
    }

    /// Checks the result of an answer of kind `given` (`closed`: whether
    /// the server was closed before it): accepted only when the pending
    /// request takes that kind, and then the request is done.
    fn answered(
        &mut self,
        res: Result<(), UsageError>,
        given: AnswerKind,
        closed: bool,
        what: &str,
    ) -> bool {
        if closed || self.host_closed {
            assert_eq!(res, Err(UsageError::Closed), "{what} once closed");
            return false;
        }
        let expected = self.expected();
        if res.is_err() {
            // Refused: what the events told is still pending.
            assert_eq!(
                self.server.pending_request(),
                expected,
                "{what}: refused, but the pending request changed"
            );
        }
        let of_kind = expected == Some(given);
        match res {
            Ok(()) => {
                assert!(
                    of_kind,
                    "{what} accepted while {:?} is pending",
                    self.pending
                );
                self.pending = None;
                true
            }
            Err(UsageError::NoPendingRequest) => {
                assert!(
                    expected.is_none(),
                    "{what}: NoPendingRequest while {expected:?}"
                );
                false
            }
            Err(UsageError::WrongAnswer {
                expected: e,
                given: g,
            }) => {
                assert!(
                    Some(e) == expected && g == given && !of_kind,
                    "{what}: WrongAnswer({e:?}, {g:?}) while {expected:?} is pending"
                );
                false
            }
            Err(UsageError::Write(_)) => {
                // An answer that cannot be sent: refused, still pending.
                assert!(of_kind, "{what}: a write error with nothing pending");
                false
            }
            Err(e) => panic!("{what}: unexpected {e:?}"),
        }
    }

    /// The honest host's answer to what is pending.
    fn honest(&mut self) {
        let Some(req) = self.pending.take() else {
            return;
        };
        let now = self.now;
        let closed = self.server.is_closed();
        let res = match &req {
            Request::Credentials(r) => self.server.answer_credentials(now, self.host.answer(r)),
            Request::Bind(r) => self
                .server
                .answer_bind(now, self.host.bind(r.as_ref().map(|r| r.as_str()))),
            #[cfg(feature = "legacy")]
            Request::Register(r) => self.server.answer_register(now, self.host.register(r)),
            #[cfg(feature = "legacy")]
            Request::Legacy(r) => {
                let a = self.host.legacy(r);
                self.server.answer_legacy_auth(now, a)
            }
        };
        self.pending = Some(req);
        let given = self.expected().expect("pending");
        self.answered(res, given, closed, "the honest answer");
        self.drain();
    }

    fn credentials(&mut self, k: u8) {
        let answer = credential_answer(k);
        let given = answer.kind();
        let closed = self.server.is_closed();
        let res = self.server.answer_credentials(self.now, answer);
        self.answered(res, given, closed, "answer_credentials");
        self.drain();
    }

    fn bind(&mut self, answer: BindAnswer) {
        let what = format!("answer_bind({answer:?})");
        let closed = self.server.is_closed();
        let res = self.server.answer_bind(self.now, answer.clone());
        if self.answered(res, AnswerKind::Bind, closed, &what) {
            let (out, _) = self.drain();
            let text = String::from_utf8_lossy(&out);
            let sent = match answer {
                BindAnswer::Accept(_) => text.contains("<jid>"),
                BindAnswer::Refuse(_) => text.contains("type='error'"),
            };
            assert!(sent, "{what} accepted, but the client was sent {text:?}");
        }
        self.drain();
    }

    #[cfg(feature = "legacy")]
    fn register(&mut self, k: u8) {
        let answer = match k % 4 {
            0 => Ok(()),
            1 => Err(LegacyError::CONFLICT),
            2 => Err(LegacyError { code: 0 }),
            _ => Err(LegacyError {
                code: u16::from(k) * 7,
            }),
        };
        let closed = self.server.is_closed();
        let res = self.server.answer_register(self.now, answer);
        self.answered(res, AnswerKind::Registration, closed, "answer_register");
        self.drain();
    }

    #[cfg(feature = "legacy")]
    fn legacy(&mut self, k: u8) {
        let answer = match k % 4 {
            0 => LegacyAuthAnswer::ZeroK(None),
            1 => LegacyAuthAnswer::ZeroK(Some(ZeroKState::new("x", "tok", 3))),
            2 => LegacyAuthAnswer::Verdict(Ok(())),
            _ => LegacyAuthAnswer::Verdict(Err(LegacyError::NOT_AUTHORIZED)),
        };
        let (given, closed) = (answer.kind(), self.server.is_closed());
        let res = self.server.answer_legacy_auth(self.now, answer);
        self.answered(res, given, closed, "answer_legacy_auth");
        self.drain();
    }

    fn feed(&mut self, data: &[u8]) {
        let res = self.server.feed(self.now, data);
        match res {
            Ok(()) => {}
            Err(UsageError::Closed) => assert!(self.server.is_closed(), "feed refused: open"),
            Err(UsageError::AwaitingTls) => assert!(self.awaiting_tls, "AwaitingTls unasked"),
            Err(e) => panic!("feed: {e:?}"),
        }
        self.drain();
    }

    fn tls(&mut self) {
        let res = self
            .server
            .tls_established(self.now, tls_info(self.config >> 2));
        match res {
            Ok(()) => {
                assert!(self.awaiting_tls, "tls_established accepted unasked");
                self.awaiting_tls = false;
                let pending = std::mem::take(&mut self.tls_pending);
                if !pending.is_empty() {
                    return self.feed(&pending);
                }
            }
            Err(e) => assert!(
                !self.awaiting_tls || self.closed_seen,
                "{e:?} while TLS is pending"
            ),
        }
        self.drain();
    }

    fn tick(&mut self, secs: u8) {
        self.now += Duration::from_secs(u64::from(secs));
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        self.drain();
    }

    fn close(&mut self, k: u8) {
        self.host_closed = true;
        if k & 1 == 0 {
            self.server.close(self.now);
        } else {
            // A text XML cannot carry: refused, the stream untouched (not
            // sent without its text); the host closes plainly then.
            let e = StreamError::new(StreamErrorCondition::SystemShutdown).with_text("\u{1}bye");
            let was_closed = self.server.is_closed();
            match self.server.close_with_error(e) {
                Err(UsageError::Write(_)) => assert_eq!(self.server.is_closed(), was_closed),
                other => panic!("an unwritable stream error: {other:?}"),
            }
            self.server.close(self.now);
        }
        self.drain();
    }

    fn send(&mut self) {
        let doc = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><message to='alice@example.com'><body>hi &amp; bye</body></message>";
        let mut reader = StreamReader::default();
        let mut input = doc.as_bytes();
        let _header = reader.read(&mut input);
        if let Ok(Some(StreamEvent::Element(el))) = reader.read(&mut input) {
            let res = self.server.send(&el);
            if self.server.is_closed() {
                assert_eq!(res, Err(UsageError::Closed));
            } else if res.is_ok() {
                assert!(self.server.is_ready(), "send accepted before ready");
            }
        }
        self.drain();
    }
}

/// The server faults this body tolerates (see [`Tolerate`]): none now (a
/// close after `<proceed/>` was one, fixed: nothing but TLS follows it).
pub const HOST_FAULTS: Tolerate = KNOWN_FAULTS;

/// Runs the input.
pub fn run(data: &[u8]) {
    run_checked(data, HOST_FAULTS)
}

fn run_checked(data: &[u8], tolerate: Tolerate) {
    let Some((&config, mut ops)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let flavor = Flavor {
        legacy: true,
        heap: false,
    };
    let mut d = Driver {
        server: new_server(config, flavor, now),
        host: Host::new(),
        now,
        config,
        pending: None,
        awaiting_tls: false,
        tls_pending: Vec::new(),
        output: Vec::new(),
        error_seen: false,
        closed_seen: false,
        authenticated: false,
        ready_jid: None,
        host_closed: false,
    };
    d.drain();
    let arg = |ops: &mut &[u8]| -> u8 {
        let (first, rest) = ops.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        *ops = rest;
        first
    };
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        match op {
            0..=3 | 14.. => {
                let n = if op <= 3 {
                    usize::from(arg(&mut ops))
                } else {
                    usize::from(op - 13)
                };
                let (chunk, rest) = ops.split_at(n.min(ops.len()));
                ops = rest;
                d.feed(chunk);
            }
            HONEST => d.honest(),
            CREDENTIALS => d.credentials(arg(&mut ops)),
            BIND_ACCEPT => d.bind(BindAnswer::Accept(resource(arg(&mut ops)))),
            BIND_REFUSE => d.bind(BindAnswer::Refuse(condition(arg(&mut ops)))),
            #[cfg(feature = "legacy")]
            REGISTER => d.register(arg(&mut ops)),
            #[cfg(feature = "legacy")]
            LEGACY => d.legacy(arg(&mut ops)),
            // Without `legacy` the server has no such answers.
            #[cfg(not(feature = "legacy"))]
            REGISTER | LEGACY => {
                arg(&mut ops);
            }
            TLS => d.tls(),
            TICK => d.tick(arg(&mut ops)),
            CLOSE => d.close(arg(&mut ops)),
            _ => d.send(),
        }
    }
    // A request still pending takes the honest answer.
    d.honest();
    check_framing(&d.output, d.closed_seen, &server_framing(tolerate));
}

/// [`run`], the output checked tolerating only `tolerate`.
pub fn run_with(data: &[u8], tolerate: Tolerate) {
    run_checked(data, tolerate)
}
