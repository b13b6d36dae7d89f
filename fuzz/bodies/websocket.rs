//! Fuzz body for the RFC 7395 WebSocket framing under both role machines
//! ([`Framing::WebSocket`]), shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/websocket.rs`) and the seed-corpus test
//! (`tests/fuzz_websocket.rs`).
//!
//! Input layout: byte 0 picks the role (bit 0: 0 a server fed a client's
//! messages, 1 a client fed a server's) and the host (bit 1: the host
//! closes once the input is consumed; bit 2: the clock runs to every
//! deadline at the end); the rest is the peer's messages, separated by
//! byte `0xFF` (never in UTF-8, so never in a message that could be
//! read). The seeds are the Prosody captures
//! (`tests/fixtures/prosody/prosody13_ws_*.txt`), each direction as a
//! seed, and hand-made breaks of the one-element rule.
//!
//! The server serves `localhost` without TLS (PLAIN allowed) and its host
//! knows alice/secret; the client is alice@localhost/secret, SCRAM-SHA-1
//! or PLAIN, with the SCRAM nonce of `prosody13_ws_scram.txt` (so that
//! seed logs in all the way).
//!
//! A broken invariant is a panic:
//! - nothing panics; `feed_message` is `Ok` until the machine is closed,
//!   then `Err(UsageError::Closed)`; `feed` is always
//!   `Err(UsageError::MessagesExpected)` and reads nothing;
//! - every message out is exactly one element: UTF-8, no XML declaration,
//!   no whitespace around it, read back by a fresh message reader as
//!   one event; `queued_output` is the sum of the messages' lengths;
//! - the first message out is `<open/>`, the last one of a closed machine
//!   that was not failed silently is `<close/>`; nothing follows it;
//! - STARTTLS never appears; at most one `Error`, then `Closed`, then
//!   nothing.

use std::time::{Duration, Instant};

use xmpp_sansio::client::{Client, ClientEvent, ClientSettings, Credentials, TlsMode};
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest, SaslCondition};
use xmpp_sansio::server::{BindAnswer, Server, ServerEvent, ServerSettings, ServerTls};
use xmpp_sansio::xml::{Limits, StreamEvent, StreamReader};
use xmpp_sansio::{DeterministicRandom, Framing, UsageError};

/// Separates the messages of an input.
pub const SEPARATOR: u8 = 0xFF;

/// The SCRAM client nonce of `prosody13_ws_scram.txt`.
pub const CAPTURE_NONCE: &str = "ef69fdc8657aa9fb1f0d3c62bb84ded7";

/// Small limits, so that the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_element_bytes: 4096,
    max_depth: 16,
    max_attributes: 32,
    max_token_bytes: 1024,
    max_element_heap: 4 * 4096,
};

/// One role under test, driven through the same calls.
enum Machine {
    Client(Box<Client>),
    Server(Box<Server>),
}

/// What a drained event was, as far as the checks go.
#[derive(PartialEq)]
enum Seen {
    Error,
    Closed,
    Other,
}

impl Machine {
    fn new(client: bool, now: Instant) -> Machine {
        if client {
            let mut c = ClientSettings::new("alice@localhost", Credentials::password("secret"));
            c.framing = Framing::WebSocket;
            c.tls = TlsMode::None;
            c.policy.allow_plain_without_tls = true;
            c.policy.only = Some(vec!["SCRAM-SHA-1".into(), "PLAIN".into()]);
            c.resource = Some("web".into());
            c.lang = None;
            c.limits = LIMITS;
            c.replay_nonce = Some(CAPTURE_NONCE.into());
            let config = c.build().expect("a valid configuration");
            Machine::Client(Box::new(Client::with_random(
                config,
                Box::new(DeterministicRandom::new(1)),
                now,
            )))
        } else {
            let mut s = ServerSettings::new("localhost");
            s.framing = Framing::WebSocket;
            s.tls = ServerTls::None;
            s.allow_plain_without_tls = true;
            s.mechanisms = ["SCRAM-SHA-1", "PLAIN"].map(String::from).to_vec();
            s.limits = LIMITS;
            s.max_held_bytes = 8192;
            s.scram_unknown_user_secret =
                Some(xmpp_sansio::sasl::SecretBytes::new(b"fuzz".to_vec()));
            let config = s.build().expect("a valid configuration");
            Machine::Server(Box::new(Server::with_random(
                config,
                Box::new(DeterministicRandom::new(2)),
                now,
            )))
        }
    }

    fn feed(&mut self, now: Instant, data: &[u8]) -> Result<(), UsageError> {
        match self {
            Machine::Client(c) => c.feed(now, data),
            Machine::Server(s) => s.feed(now, data),
        }
    }

    fn feed_message(&mut self, now: Instant, data: &[u8]) -> Result<(), UsageError> {
        match self {
            Machine::Client(c) => c.feed_message(now, data),
            Machine::Server(s) => s.feed_message(now, data),
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Machine::Client(c) => c.is_closed(),
            Machine::Server(s) => s.is_closed(),
        }
    }

    fn queued_output(&self) -> usize {
        match self {
            Machine::Client(c) => c.queued_output(),
            Machine::Server(s) => s.queued_output(),
        }
    }

    fn poll_message(&mut self) -> Option<Vec<u8>> {
        match self {
            Machine::Client(c) => c.poll_message(),
            Machine::Server(s) => s.poll_message(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Machine::Client(c) => c.poll_timeout(),
            Machine::Server(s) => s.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Machine::Client(c) => c.handle_timeout(now),
            Machine::Server(s) => s.handle_timeout(now),
        }
    }

    fn close(&mut self, now: Instant) {
        match self {
            Machine::Client(c) => c.close(now),
            Machine::Server(s) => s.close(now),
        }
    }

    /// The next event, the server's requests answered by its host.
    fn poll_event(&mut self, now: Instant) -> Option<Seen> {
        match self {
            Machine::Client(c) => c.poll_event().map(|e| match e {
                ClientEvent::Error(_) => Seen::Error,
                ClientEvent::Closed => Seen::Closed,
                _ => Seen::Other,
            }),
            Machine::Server(s) => {
                let e = s.poll_event()?;
                let answered = match &e {
                    ServerEvent::Credentials(req) => s.answer_credentials(now, answer(req)),
                    ServerEvent::Bind { resource, .. } => {
                        s.answer_bind(now, BindAnswer::Accept(resource.clone()))
                    }
                    _ => Ok(()),
                };
                // An answer to a request the server made is accepted while
                // it is open.
                assert!(answered.is_ok() || s.is_closed(), "{answered:?}");
                Some(match e {
                    ServerEvent::Error(_) => Seen::Error,
                    ServerEvent::Closed => Seen::Closed,
                    _ => Seen::Other,
                })
            }
        }
    }
}

/// The server's host: alice/secret.
fn answer(req: &CredentialRequest) -> CredentialAnswer {
    match req {
        CredentialRequest::Password {
            username, password, ..
        } => CredentialAnswer::Verdict(if username == "alice" && password.ct_eq("secret") {
            Ok(username.clone())
        } else {
            Err(SaslCondition::NotAuthorized)
        }),
        CredentialRequest::Scram { username, hash, .. } => {
            CredentialAnswer::Scram((username == "alice").then(|| {
                xmpp_sansio::sasl::scram::derive_server_credentials(*hash, "secret", b"salt", 4096)
                    .expect("credentials")
            }))
        }
        _ => CredentialAnswer::Verdict(Err(SaslCondition::TemporaryAuthFailure)),
    }
}

/// What has been seen of one run.
#[derive(Default)]
struct Log {
    messages: Vec<String>,
    errors: usize,
    closed: bool,
}

/// Drains messages and events, checking each.
fn drain(m: &mut Machine, now: Instant, log: &mut Log) {
    loop {
        let queued = m.queued_output();
        let mut taken = 0;
        while let Some(msg) = m.poll_message() {
            taken += msg.len();
            assert!(!log.closed, "a message after Closed");
            log.messages.push(check_message(&msg));
        }
        assert_eq!(queued, taken, "queued_output is what poll_message gives");
        let Some(seen) = m.poll_event(now) else {
            if m.queued_output() == 0 {
                return;
            }
            continue;
        };
        assert!(!log.closed, "an event after Closed");
        match seen {
            Seen::Error => log.errors += 1,
            Seen::Closed => log.closed = true,
            Seen::Other => assert_eq!(log.errors, 0, "an event between Error and Closed"),
        }
    }
}

/// One message out: exactly one element that a fresh message reader
/// reads as one event.
fn check_message(msg: &[u8]) -> String {
    let text = std::str::from_utf8(msg).expect("UTF-8");
    assert!(!text.starts_with("<?xml"), "{text}");
    assert_eq!(text.trim(), text, "whitespace around {text:?}");
    assert!(
        !text.contains("xmpp-tls"),
        "STARTTLS over WebSocket: {text}"
    );
    let mut reader = StreamReader::for_messages(Limits {
        max_element_bytes: 1 << 20,
        max_depth: 64,
        max_attributes: 256,
        max_token_bytes: 64 * 1024,
        max_element_heap: 64 << 20,
    });
    reader.push_message(msg.len());
    let mut input = msg;
    let ev = reader.read(&mut input);
    assert!(
        matches!(
            ev,
            Ok(Some(
                StreamEvent::Header(_)
                    | StreamEvent::Element(_)
                    | StreamEvent::StreamError(_)
                    | StreamEvent::Closed
            ))
        ),
        "{ev:?}: {text}"
    );
    assert!(matches!(reader.read(&mut input), Ok(None)), "{text}");
    text.to_owned()
}

pub fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut now = Instant::now();
    let mut m = Machine::new(flags & 1 == 1, now);
    let mut log = Log::default();
    drain(&mut m, now, &mut log);
    // Bytes without boundaries are refused, and nothing is read.
    let before = log.messages.len();
    assert!(matches!(
        m.feed(now, b"<open/>"),
        Err(UsageError::MessagesExpected)
    ));
    drain(&mut m, now, &mut log);
    assert_eq!(log.messages.len(), before);
    for msg in rest.split(|b| *b == SEPARATOR) {
        let fed = m.feed_message(now, msg);
        if m.is_closed() && log.closed {
            assert!(matches!(fed, Ok(()) | Err(UsageError::Closed)), "{fed:?}");
        } else {
            assert!(fed.is_ok(), "{fed:?}");
        }
        drain(&mut m, now, &mut log);
    }
    if flags & 2 != 0 {
        m.close(now);
        drain(&mut m, now, &mut log);
    }
    if flags & 4 != 0 {
        for _ in 0..16 {
            let Some(t) = m.poll_timeout() else { break };
            now = now.max(t) + Duration::from_millis(1);
            m.handle_timeout(now);
            drain(&mut m, now, &mut log);
        }
    }
    assert!(log.errors <= 1, "{} errors", log.errors);
    if log.errors == 1 {
        assert!(log.closed, "Error without Closed");
    }
    assert!(
        log.messages
            .first()
            .is_some_and(|m| m.starts_with("<open ")),
        "the first message is <open/>: {:?}",
        log.messages.first()
    );
    let closes = log
        .messages
        .iter()
        .filter(|m| m.starts_with("<close "))
        .count();
    assert!(closes <= 1, "{closes} closes");
    if closes == 1 {
        assert!(log.messages.last().unwrap().starts_with("<close "));
    }
    if m.is_closed() {
        assert!(matches!(
            m.feed_message(now, b"<x/>"),
            Err(UsageError::Closed)
        ));
    }
}
