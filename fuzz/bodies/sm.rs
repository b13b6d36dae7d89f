//! Fuzz body for stream management (XEP-0198) against a hostile peer,
//! either role, shared by the cargo-fuzz target (`fuzz/fuzz_targets/sm.rs`)
//! and the seed-corpus test (`tests/fuzz_sm.rs`).
//!
//! A `Client` and a `Server` negotiate in memory (PLAIN, no TLS, stream
//! management with resumption on both, `<r/>` every 3 stanzas); then the
//! input takes the place of one side's peer. Byte 0 picks the side under
//! test (bit 0: the server; else the client) and whether the host ends by
//! closing (bit 1) or by losing the connection. The rest is a script of
//! operations, one byte each (the low 3 bits), some followed by data:
//!
//! - 0: feed the next `n` bytes as the peer's (`n` = the next byte);
//! - 1: the host sends a stanza (numbered), as far as the queue allows;
//! - 2: the host asks for an acknowledgement (client) / sends another
//!   stanza (server);
//! - 3: the clock moves 7 s and the machine's deadline passes;
//! - 4: feed a canned `<a h='N'/>` with `N` from the next 4 bytes
//!   (big-endian), so that the fuzzer reaches the counters' edges;
//! - 5: feed a canned `<r/>`;
//! - 6: feed `</stream:stream>`;
//! - 7: the host saves and restores the machine's state
//!   (`SmState::to_bytes`/`from_bytes`), which must round-trip.
//!
//! A broken invariant is a panic:
//! - nothing panics, and every `feed` after an error keeps failing;
//! - every stanza the host sent is accounted for exactly once at the
//!   end: acknowledged (`Acked`), handed back (`Undelivered`), or still
//!   in the session's state (the client's `sm_state`, the server's
//!   `Detached`), oldest first, never twice, never dropped;
//! - an acknowledgement never exceeds what was sent: the machine fails
//!   with `handled-count-too-high` instead;
//! - the unacknowledged queue never holds more than its bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_sansio::client::{
    Client, ClientConfig, ClientEvent, ClientSettings, Credentials, TlsMode,
};
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest};
use xmpp_sansio::server::{
    BindAnswer, Server, ServerConfig, ServerEvent, ServerSettings, ServerTls,
};
use xmpp_sansio::sm::{SentStanza, SmSettings, SmState};
use xmpp_sansio::DeterministicRandom;

/// The unacknowledged queue's bound here: small, so the fuzzer reaches it.
const MAX_UNACKED: usize = 8;

fn settings() -> SmSettings {
    let mut s = SmSettings::new();
    s.request_every = Some(3);
    s.max_unacked = MAX_UNACKED;
    s
}

/// Built once per process: building a configuration is most of a
/// short input's cost.
fn configs() -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    static CONFIGS: std::sync::OnceLock<(Arc<ClientConfig>, Arc<ServerConfig>)> =
        std::sync::OnceLock::new();
    CONFIGS.get_or_init(build_configs).clone()
}

fn build_configs() -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let mut c = ClientSettings::new("alice@example.com", Credentials::password("secret"));
    c.tls = TlsMode::None;
    c.policy.only = Some(vec!["PLAIN".into()]);
    c.policy.allow_plain_without_tls = true;
    c.resource = Some("fuzz".into());
    c.stream_management = Some(settings());
    let mut s = ServerSettings::new("example.com");
    s.tls = ServerTls::None;
    s.mechanisms = vec!["PLAIN".into()];
    s.allow_plain_without_tls = true;
    s.stream_management = Some(settings());
    // Without the OS random source (the fuzz build has no default
    // features), the unknown-user secret is the host's to give.
    s.scram_unknown_user_secret = Some(xmpp_sansio::sasl::SecretBytes::new([7; 32]));
    (Arc::new(c.build().unwrap()), Arc::new(s.build().unwrap()))
}

fn message(n: u32, to: &str) -> Element {
    format!("<message xmlns='jabber:client' to='{to}' id='m{n}'><body>{n}</body></message>")
        .parse()
        .unwrap()
}

fn number(s: &SentStanza) -> u32 {
    let el = s.to_element().expect("kept stanzas parse");
    el.get_child("body", "jabber:client")
        .and_then(|b| b.text().parse().ok())
        .expect("a numbered message")
}

/// A ready client and server with stream management enabled.
fn ready() -> (Client, Server, Instant) {
    let now = Instant::now();
    let (cc, sc) = configs();
    let mut client = Client::with_random(cc, Box::new(DeterministicRandom::new(1)), now);
    let mut server = Server::with_random(sc, Box::new(DeterministicRandom::new(2)), now);
    let mut buf = Vec::new();
    for _ in 0..50 {
        buf.clear();
        client.poll_transmit(&mut buf);
        server.feed(now, &buf).unwrap();
        while let Some(ev) = server.poll_event() {
            match ev {
                ServerEvent::Credentials(CredentialRequest::Password { .. }) => server
                    .answer_credentials(now, CredentialAnswer::Verdict(Ok("alice".into())))
                    .unwrap(),
                ServerEvent::Bind { resource, .. } => server
                    .answer_bind(now, BindAnswer::Accept(resource))
                    .unwrap(),
                _ => {}
            }
        }
        buf.clear();
        server.poll_transmit(&mut buf);
        client.feed(now, &buf).unwrap();
        while client.poll_event().is_some() {}
        if client.is_ready() && server.is_ready() && client.sm_state().is_some() {
            buf.clear();
            client.poll_transmit(&mut buf);
            server.feed(now, &buf).unwrap();
            while server.poll_event().is_some() {}
            return (client, server, now);
        }
    }
    panic!("the pair did not get ready");
}

/// What the host saw of its own stanzas.
#[derive(Default)]
struct Ledger {
    sent: Vec<u32>,
    acked: Vec<u32>,
    back: Vec<u32>,
    kept: Vec<u32>,
}

impl Ledger {
    fn check(&self) {
        let mut all: Vec<u32> = self.acked.clone();
        all.extend(&self.back);
        all.extend(&self.kept);
        assert_eq!(
            all, self.sent,
            "each stanza acked, handed back or kept, in order, once: acked {:?} back {:?} kept {:?}",
            self.acked, self.back, self.kept
        );
    }
}

/// The side under test, behind one face.
enum Side {
    Client(Client),
    Server(Server),
}

impl Side {
    fn feed(&mut self, now: Instant, bytes: &[u8]) -> bool {
        match self {
            Side::Client(c) => c.feed(now, bytes).is_ok(),
            Side::Server(s) => s.feed(now, bytes).is_ok(),
        }
    }

    fn send(&mut self, n: u32) -> bool {
        match self {
            Side::Client(c) => c.send(&message(n, "bob@example.com")).is_ok(),
            Side::Server(s) => s.send(&message(n, "alice@example.com/fuzz")).is_ok(),
        }
    }

    fn drain(&mut self, ledger: &mut Ledger) {
        let mut out = Vec::new();
        match self {
            Side::Client(c) => {
                c.poll_transmit(&mut out);
                while let Some(ev) = c.poll_event() {
                    match ev {
                        ClientEvent::Acked(v) => ledger.acked.extend(v.iter().map(number)),
                        ClientEvent::Undelivered(v) => ledger.back.extend(v.iter().map(number)),
                        _ => {}
                    }
                }
                if let Some(st) = c.sm_state() {
                    assert!(st.unacked().len() <= MAX_UNACKED);
                }
            }
            Side::Server(s) => {
                s.poll_transmit(&mut out);
                while let Some(ev) = s.poll_event() {
                    match ev {
                        ServerEvent::Acked(v) => ledger.acked.extend(v.iter().map(number)),
                        ServerEvent::Undelivered(v) => ledger.back.extend(v.iter().map(number)),
                        ServerEvent::Detached(st) => {
                            assert!(st.unacked().len() <= MAX_UNACKED);
                            ledger.kept.extend(st.unacked().iter().map(number));
                        }
                        ServerEvent::Credentials(_) | ServerEvent::Bind { .. } => {}
                        _ => {}
                    }
                }
            }
        }
    }

    fn timeout(&mut self, now: Instant) {
        match self {
            Side::Client(c) => c.handle_timeout(now),
            Side::Server(s) => s.handle_timeout(now),
        }
    }

    fn end(&mut self, now: Instant, close: bool) {
        match self {
            Side::Client(c) if close => c.close(now),
            Side::Server(s) if close => s.close(now),
            _ => {}
        }
        match self {
            Side::Client(c) => c.connection_lost(now),
            Side::Server(s) => s.connection_lost(now),
        }
    }

    /// A client's state round-trips through bytes (the server's state
    /// leaves it only when it detaches).
    fn round_trip(&self) {
        if let Side::Client(c) = self {
            if let Some(st) = c.sm_state() {
                let bytes = st.to_bytes().expect("a state saves");
                assert_eq!(SmState::from_bytes(&bytes).as_ref(), Ok(&st));
            }
        }
    }
}

/// Runs one input. Returns how many stanzas the host sent.
pub fn run(data: &[u8]) -> usize {
    let Some((&mode, mut script)) = data.split_first() else {
        return 0;
    };
    let (client, server, mut now) = ready();
    let mut side = if mode & 1 == 1 {
        Side::Server(server)
    } else {
        Side::Client(client)
    };
    let mut ledger = Ledger::default();
    let mut failed = false;
    let mut next = 0u32;
    let mut send = |side: &mut Side, ledger: &mut Ledger| {
        if side.send(next) {
            ledger.sent.push(next);
        }
        next += 1;
    };
    while let Some((&op, rest)) = script.split_first() {
        script = rest;
        let fed: Option<Vec<u8>> = match op & 7 {
            0 => {
                let (&n, rest) = script.split_first().unwrap_or((&0, &[]));
                let n = usize::from(n).min(rest.len());
                let (chunk, rest) = rest.split_at(n);
                script = rest;
                Some(chunk.to_vec())
            }
            1 => {
                send(&mut side, &mut ledger);
                None
            }
            2 => {
                match &mut side {
                    Side::Client(c) => c.request_ack(),
                    Side::Server(_) => send(&mut side, &mut ledger),
                }
                None
            }
            3 => {
                now += Duration::from_secs(7);
                side.timeout(now);
                None
            }
            4 => {
                let mut h = [0u8; 4];
                let n = script.len().min(4);
                h[..n].copy_from_slice(&script[..n]);
                script = &script[n..];
                Some(
                    format!("<a xmlns='urn:xmpp:sm:3' h='{}'/>", u32::from_be_bytes(h))
                        .into_bytes(),
                )
            }
            5 => Some(b"<r xmlns='urn:xmpp:sm:3'/>".to_vec()),
            6 => Some(b"</stream:stream>".to_vec()),
            _ => {
                side.round_trip();
                None
            }
        };
        if let Some(bytes) = fed {
            let ok = side.feed(now, &bytes);
            if failed {
                assert!(!ok, "a feed after an error succeeded");
            }
            failed |= !ok;
        }
        side.drain(&mut ledger);
    }
    side.end(now, mode & 2 == 2);
    side.drain(&mut ledger);
    if let Side::Client(c) = &side {
        if let Some(st) = c.sm_state() {
            ledger.kept.extend(st.unacked().iter().map(number));
        }
    }
    ledger.check();
    ledger.sent.len()
}
