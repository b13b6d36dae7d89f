//! Fuzz body for XMPP over BOSH under the server role
//! ([`BoshXmppServer`]: a `BoshManager` with a `Server` per session),
//! shared by the cargo-fuzz target (`fuzz/fuzz_targets/bosh_xmpp_server.rs`)
//! and the seed-corpus test (`tests/fuzz_bosh_xmpp.rs`).
//!
//! Input layout: byte 0 picks the host (bit 0: it closes every live
//! session once the input is consumed; bit 1: it ends the first session
//! with a stream error midway; bit 2: the clock runs past every deadline
//! at the end); the rest is HTTP request bodies, separated by byte `0xFF`
//! (never in UTF-8). In each body `@SID@` stands for the first session's
//! id (a fuzzer cannot guess a random one). Each body is received one
//! second after the previous. The seeds are the Strophe.js requests of
//! the Prosody BOSH captures (`tests/fixtures/prosody/prosody13_bosh_*.txt`)
//! and hand-made breaks.
//!
//! The server serves `localhost` (PLAIN and SCRAM-SHA-1; TLS said by the
//! host), its host knows alice/secret and accepts every bind.
//!
//! A broken invariant is a panic:
//! - nothing panics; every answer (immediate, refused, or later through
//!   `poll_response`) is a `<body/>` that parses; a held request is
//!   answered or dropped at most once, and never both;
//! - a `Server` per live BOSH session, no more: the adapter's count is
//!   the manager's, at most `max_sessions`;
//! - per session: `Created` first, then its `Server`'s events (at most one
//!   `Error`, then `Closed`, then nothing), `Ended` last, nothing after;
//! - once the clock ran past every deadline, no session is left and no
//!   held request is unanswered.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xmpp_sansio::bosh::{
    Body, BoshManagerConfig, BoshXmppServer, BoshXmppServerEvent, Reply, RequestHandle,
};
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest, SaslCondition};
use xmpp_sansio::server::{BindAnswer, ServerEvent, ServerSettings, ServerTls};
use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition};
use xmpp_sansio::xml::Limits;
use xmpp_sansio::{DeterministicRandom, Framing, TlsInfo};

/// Separates the bodies of an input.
pub const SEPARATOR: u8 = 0xFF;

/// Stands for the first session's id in a body.
pub const SID: &[u8] = b"@SID@";

const MAX_SESSIONS: usize = 3;

/// Small limits, so that the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_element_bytes: 8192,
    max_depth: 16,
    max_attributes: 32,
    max_token_bytes: 1024,
    max_element_heap: 4 * 8192,
};

#[derive(Default)]
struct Life {
    created: bool,
    error: bool,
    closed: bool,
    ended: bool,
    ready: bool,
}

fn replace(body: &[u8], sid: Option<&str>) -> Vec<u8> {
    let Some(sid) = sid else {
        return body.to_vec();
    };
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(SID) {
            out.extend_from_slice(sid.as_bytes());
            i += SID.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

fn check_body(bytes: &[u8]) {
    if let Err(e) = Body::parse(bytes, &Limits::default()) {
        panic!(
            "an answer that is not a body ({e}): {}",
            String::from_utf8_lossy(bytes)
        );
    }
}

struct Host {
    cm: BoshXmppServer,
    held: HashSet<RequestHandle>,
    done: HashSet<RequestHandle>,
    lives: HashMap<String, Life>,
    first_sid: Option<String>,
}

impl Host {
    fn drain(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some((h, bytes)) = self.cm.poll_response() {
                moved = true;
                check_body(&bytes);
                assert!(self.held.remove(&h), "{h:?} answered but not held");
                assert!(self.done.insert(h), "{h:?} answered twice");
            }
            while let Some(ev) = self.cm.poll_event() {
                moved = true;
                match ev {
                    BoshXmppServerEvent::Created { sid } => {
                        let life = self.lives.entry(sid.clone()).or_default();
                        assert!(!life.created, "created twice");
                        life.created = true;
                        self.first_sid.get_or_insert(sid);
                    }
                    BoshXmppServerEvent::Session { sid, event } => {
                        let life = self.lives.get_mut(&sid).expect("an event before Created");
                        assert!(
                            !life.ended && !life.closed,
                            "an event after the end: {event:?}"
                        );
                        match &event {
                            ServerEvent::Error(_) => {
                                assert!(!life.error, "two errors");
                                life.error = true;
                            }
                            ServerEvent::Closed => life.closed = true,
                            ServerEvent::Ready { .. } => life.ready = true,
                            ServerEvent::Credentials(req) => {
                                let a = match req {
                                    CredentialRequest::Password {
                                        username, password, ..
                                    } => CredentialAnswer::Verdict(
                                        if username == "alice" && password.ct_eq("secret") {
                                            Ok(username.clone())
                                        } else {
                                            Err(SaslCondition::NotAuthorized)
                                        },
                                    ),
                                    CredentialRequest::Scram { .. } => {
                                        CredentialAnswer::Scram(None)
                                    }
                                    _ => CredentialAnswer::Verdict(Err(
                                        SaslCondition::TemporaryAuthFailure,
                                    )),
                                };
                                self.cm.answer(now, &sid, a).expect("a pending request");
                            }
                            ServerEvent::Bind { resource, .. } => self
                                .cm
                                .answer(now, &sid, BindAnswer::Accept(resource.clone()))
                                .expect("a pending bind"),
                            _ => {}
                        }
                    }
                    BoshXmppServerEvent::Ended { sid, .. } => {
                        let life = self.lives.get_mut(&sid).expect("ended before created");
                        assert!(!life.ended, "ended twice");
                        life.ended = true;
                        assert!(
                            self.cm.server(&sid).is_none(),
                            "a server outlives its session"
                        );
                    }
                    BoshXmppServerEvent::RequestDropped(h) => {
                        assert!(self.held.remove(&h), "{h:?} dropped but not held");
                        assert!(self.done.insert(h), "{h:?} dropped after its answer");
                    }
                    _ => {}
                }
            }
            if !moved {
                break;
            }
        }
        assert_eq!(self.cm.session_count(), self.cm.manager().session_count());
        assert!(self.cm.session_count() <= MAX_SESSIONS);
    }
}

/// Runs one input; returns how many sessions became ready.
pub fn run(data: &[u8]) -> usize {
    let Some((&flags, rest)) = data.split_first() else {
        return 0;
    };
    let mut s = ServerSettings::new("localhost");
    s.framing = Framing::Bosh;
    s.tls = ServerTls::Direct;
    s.mechanisms = ["SCRAM-SHA-1", "PLAIN"].map(String::from).to_vec();
    s.limits = LIMITS;
    s.max_held_bytes = 8192;
    s.scram_unknown_user_secret = Some(xmpp_sansio::sasl::SecretBytes::new(b"fuzz".to_vec()));
    let config = Arc::new(s.build().expect("a valid configuration"));
    let bosh = BoshManagerConfig {
        max_sessions: MAX_SESSIONS,
        limits: LIMITS,
        max_queued_bytes: 16 * 1024,
        max_response_bytes: 4096,
        ..BoshManagerConfig::default()
    };
    let mut seed = 10;
    let mut cm = BoshXmppServer::new(
        config,
        bosh,
        Box::new(DeterministicRandom::new(1)),
        Box::new(move || {
            seed += 1;
            Box::new(DeterministicRandom::new(seed))
        }),
    )
    .expect("Framing::Bosh");
    cm.set_tls(Some(TlsInfo::without_binding(TlsVersion::Tls13)));
    let mut host = Host {
        cm,
        held: HashSet::new(),
        done: HashSet::new(),
        lives: HashMap::new(),
        first_sid: None,
    };
    let mut now = Instant::now();
    let bodies: Vec<&[u8]> = rest.split(|b| *b == SEPARATOR).collect();
    let midway = bodies.len() / 2;
    for (i, body) in bodies.into_iter().enumerate() {
        now += Duration::from_secs(1);
        let body = replace(body, host.first_sid.as_deref());
        match host.cm.handle_request(now, &body) {
            Reply::Immediate(b) => check_body(&b),
            Reply::Refused { body, .. } => check_body(&body),
            Reply::Held(h) => {
                assert!(!host.done.contains(&h), "a handle used twice");
                assert!(host.held.insert(h), "a handle held twice");
            }
        }
        host.drain(now);
        if flags & 2 != 0 && i == midway {
            if let Some(sid) = host.first_sid.clone() {
                let e = StreamError::new(StreamErrorCondition::PolicyViolation);
                let _ = host.cm.close_with_error(now, &sid, e);
                host.drain(now);
            }
        }
    }
    if flags & 1 != 0 {
        let live: Vec<String> = host
            .lives
            .iter()
            .filter(|(_, l)| !l.ended)
            .map(|(s, _)| s.clone())
            .collect();
        for sid in live {
            host.cm.close(now, &sid);
            host.drain(now);
        }
    }
    if flags & 4 != 0 {
        for _ in 0..8 {
            let Some(t) = host.cm.poll_timeout() else {
                break;
            };
            now = now.max(t) + Duration::from_secs(1);
            host.cm.handle_timeout(now);
            host.drain(now);
        }
        now += Duration::from_secs(3600);
        host.cm.handle_timeout(now);
        host.drain(now);
        assert_eq!(
            host.cm.session_count(),
            0,
            "sessions outlive every deadline"
        );
        assert!(host.held.is_empty(), "held requests outlive every deadline");
    }
    host.lives.values().filter(|l| l.ready).count()
}
