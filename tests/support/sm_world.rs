//! Stream management over connections that break: a client host and a
//! server host (which keeps detached sessions, as a real one does) run a
//! scripted exchange over as many connections as it takes; a connection
//! can be cut after any number of bytes, both ways counted, without a
//! close. Each side's host records what it sent, what was acknowledged,
//! handed back, and received, by the number in each message's body.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_sansio::client::{Client, ClientConfig, ClientEvent, TlsMode};
use xmpp_sansio::server::{BindAnswer, ResumeAnswer, Server, ServerConfig, ServerEvent, ServerTls};
use xmpp_sansio::sm::{SentStanza, SmSettings, SmState};
use xmpp_sansio::DeterministicRandom;

use super::pair::{alice_config, server_config, Store};

/// One side's record.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Numbers sent (each once).
    pub sent: Vec<u32>,
    /// Numbers the peer acknowledged.
    pub acked: Vec<u32>,
    /// Numbers handed back undelivered.
    pub undelivered: Vec<u32>,
    /// Numbers received from the peer.
    pub received: Vec<u32>,
}

/// The number in a message's body.
pub fn number(el: &Element) -> u32 {
    el.get_child("body", "jabber:client")
        .map(|b| b.text())
        .and_then(|t| t.parse().ok())
        .expect("a numbered message")
}

/// The number in a kept stanza's body.
pub fn kept(s: &SentStanza) -> u32 {
    number(&s.to_element().expect("kept stanzas parse"))
}

/// The numbers of the stanzas the client saw acknowledged, in order.
pub fn client_acked(events: &[ClientEvent]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Acked(v) => Some(v.iter().map(kept)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Message `n`.
pub fn message(n: u32, to: &str) -> Element {
    format!("<message xmlns='jabber:client' to='{to}' type='chat'><body>{n}</body></message>")
        .parse()
        .unwrap()
}

pub struct World {
    pub client_config: Arc<ClientConfig>,
    pub server_config: Arc<ServerConfig>,
    pub store: Store,
    pub now: Instant,
    /// The server host's detached sessions, by id.
    pub detached: HashMap<String, SmState>,
    /// The client host's saved state (always through bytes).
    pub saved: Option<Vec<u8>>,
    pub client: Ledger,
    pub server: Ledger,
    /// How many messages each side sends in all.
    pub script: u32,
    /// Resumptions that succeeded / failed, on the client's side.
    pub resumed: u32,
    pub resume_failed: u32,
    pub connections: u32,
    /// Whether the last connection ended with a close.
    pub closed: bool,
    /// An idle connection with nothing to wait for is a failure (else it
    /// just ends, as a cut).
    pub strict: bool,
    /// Every event of every connection, each side.
    pub client_log: Vec<ClientEvent>,
    pub server_log: Vec<ServerEvent>,
    /// What the client wrote on the last connection, one entry per write.
    pub up_writes: Vec<String>,
    seed: u64,
}

/// Alice and Bob, derived once (PBKDF2 is slow in debug builds).
fn store() -> Store {
    static STORE: std::sync::OnceLock<Store> = std::sync::OnceLock::new();
    STORE
        .get_or_init(|| Store::new(&[("alice", "pencil"), ("bob", "pencil")]))
        .clone()
}

pub fn sm_settings() -> SmSettings {
    let mut s = SmSettings::new();
    s.request_every = Some(3);
    s.request_after = Some(Duration::from_secs(5));
    s
}

impl World {
    pub fn new(script: u32) -> World {
        let mut c = alice_config("PLAIN", TlsMode::None);
        c.stream_management = Some(sm_settings());
        let mut s = server_config("example.com", &["PLAIN"], ServerTls::None);
        let mut ss = sm_settings();
        ss.max_resume = Some(Duration::from_secs(300));
        s.stream_management = Some(ss);
        World {
            client_config: Arc::new(c.build().unwrap()),
            server_config: Arc::new(s.build().unwrap()),
            store: store(),
            now: Instant::now(),
            detached: HashMap::new(),
            saved: None,
            client: Ledger::default(),
            server: Ledger::default(),
            script,
            resumed: 0,
            resume_failed: 0,
            connections: 0,
            closed: false,
            strict: true,
            client_log: Vec::new(),
            server_log: Vec::new(),
            up_writes: Vec::new(),
            seed: 1,
        }
    }

    /// [`new`](Self::new), with the server offering SASL2 (XEP-0388):
    /// the client logs in with Bind 2, enables stream management inline
    /// and resumes inline.
    pub fn sasl2(script: u32) -> World {
        let mut w = World::new(script);
        let mut s = w.server_config.settings().clone();
        s.sasl2 = Some(xmpp_sansio::sasl2::Sasl2Settings::new());
        w.server_config = Arc::new(s.build().unwrap());
        w
    }

    /// The server host forgets its detached sessions (their timeout
    /// passed): their stanzas are undelivered.
    pub fn expire(&mut self) {
        for (_, st) in self.detached.drain() {
            self.server
                .undelivered
                .extend(st.unacked().iter().map(kept));
        }
    }

    /// The client host gives up its saved session without resuming.
    pub fn forget_client(&mut self) {
        if let Some(b) = self.saved.take() {
            let st = SmState::from_bytes(&b).unwrap();
            self.client
                .undelivered
                .extend(st.into_unacked().iter().map(kept));
        }
    }

    /// Whether the script is done: everything sent, every stanza of the
    /// client's accounted for, everything of the server's received.
    fn done(&self) -> bool {
        let c = &self.client;
        self.client.sent.len() as u32 == self.script
            && self.server.sent.len() as u32 == self.script
            && c.acked.len() + c.undelivered.len() == c.sent.len()
            && self.server.acked.len() + self.server.undelivered.len() + self.held_by_host()
                == self.server.sent.len()
    }

    /// The server's stanzas in detached sessions no client will resume.
    fn held_by_host(&self) -> usize {
        self.detached.values().map(|s| s.unacked().len()).sum()
    }

    /// One connection: runs the script until it is done (then closes),
    /// or until `cut` bytes went over the wire (then the connection
    /// breaks). Returns whether it ended with a close.
    pub fn connect(&mut self, cut: Option<usize>) -> bool {
        self.closed = self.connect_inner(cut);
        self.closed
    }

    /// Whether the last connection ended with a close.
    pub fn done_closed(&self) -> bool {
        self.closed
    }

    fn connect_inner(&mut self, cut: Option<usize>) -> bool {
        self.connections += 1;
        self.seed += 2;
        let mut client = Client::with_random(
            self.client_config.clone(),
            Box::new(DeterministicRandom::new(self.seed)),
            self.now,
        );
        if let Some(b) = self.saved.take() {
            client = client.resume_session(SmState::from_bytes(&b).expect("a saved state"));
        }
        let mut server = Server::with_random(
            self.server_config.clone(),
            Box::new(DeterministicRandom::new(self.seed + 1)),
            self.now,
        );
        let mut budget = cut.unwrap_or(usize::MAX);
        self.up_writes.clear();
        let mut server_sm = false;
        let mut closing = false;
        for _ in 0..100_000 {
            let mut busy = false;
            for up in [true, false] {
                let mut bytes = Vec::new();
                if up {
                    client.poll_transmit(&mut bytes);
                } else {
                    server.poll_transmit(&mut bytes);
                }
                if bytes.is_empty() {
                    continue;
                }
                busy = true;
                let n = bytes.len().min(budget);
                if std::env::var_os("SM_DEBUG").is_some() {
                    let dir = if up { "C" } else { "S" };
                    eprintln!("{dir}: {}", String::from_utf8_lossy(&bytes[..n]));
                }
                budget -= n;
                if up {
                    self.up_writes
                        .push(String::from_utf8_lossy(&bytes[..n]).into_owned());
                }
                let _ = if up {
                    server.feed(self.now, &bytes[..n])
                } else {
                    client.feed(self.now, &bytes[..n])
                };
                if n < bytes.len() || budget == 0 && cut.is_some() {
                    // The connection breaks here: no close.
                    client.connection_lost(self.now);
                    server.connection_lost(self.now);
                    self.client_events(&mut client);
                    self.server_events(&mut server, &mut server_sm);
                    self.saved = client.sm_state().map(|s| s.to_bytes().unwrap());
                    return false;
                }
            }
            busy |= self.client_events(&mut client);
            busy |= self.server_events(&mut server, &mut server_sm);
            if client.is_closed() && server.is_closed() {
                self.saved = client.sm_state().map(|s| s.to_bytes().unwrap());
                return true;
            }
            // The scripts: one message each per round, once ready.
            if client.is_ready() && !closing && (self.client.sent.len() as u32) < self.script {
                let n = self.client.sent.len() as u32;
                client.send(&message(n, "bob@example.com")).unwrap();
                self.client.sent.push(n);
                busy = true;
            }
            if server_sm && server.is_ready() && (self.server.sent.len() as u32) < self.script {
                let n = 1000 + self.server.sent.len() as u32;
                server.send(&message(n, "alice@example.com/pair")).unwrap();
                self.server.sent.push(n);
                busy = true;
            }
            if client.is_ready() && !closing && self.done() {
                client.close(self.now);
                closing = true;
                busy = true;
            }
            if !busy {
                let next = [client.poll_timeout(), server.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                let Some(next) = next else {
                    assert!(!self.strict, "an idle pair has a deadline");
                    client.connection_lost(self.now);
                    server.connection_lost(self.now);
                    self.client_events(&mut client);
                    self.server_events(&mut server, &mut server_sm);
                    return false;
                };
                self.now = self.now.max(next);
                client.handle_timeout(self.now);
                server.handle_timeout(self.now);
            }
        }
        panic!("the connection did not settle");
    }

    fn client_events(&mut self, client: &mut Client) -> bool {
        let mut busy = false;
        while let Some(ev) = client.poll_event() {
            busy = true;
            self.client_log.push(ev.clone());
            match ev {
                ClientEvent::Acked(v) => self.client.acked.extend(v.iter().map(kept)),
                ClientEvent::Undelivered(v) => self.client.undelivered.extend(v.iter().map(kept)),
                ClientEvent::Stanza(el) => self.client.received.push(number(&el)),
                ClientEvent::Resumed { .. } => self.resumed += 1,
                ClientEvent::ResumeFailed { .. } => self.resume_failed += 1,
                ClientEvent::Error(e) => {
                    assert!(
                        matches!(e, xmpp_sansio::client::ClientError::ClosedByPeer),
                        "client error {e:?}"
                    )
                }
                _ => {}
            }
        }
        busy
    }

    fn server_events(&mut self, server: &mut Server, sm_on: &mut bool) -> bool {
        let mut busy = false;
        while let Some(ev) = server.poll_event() {
            busy = true;
            self.server_log.push(ev.clone());
            match ev {
                ServerEvent::Credentials(req) => {
                    let a = self.store.answer(&req);
                    let _ = server.answer_credentials(self.now, a);
                }
                ServerEvent::Bind { resource, .. } => {
                    let _ = server.answer_bind(self.now, BindAnswer::Accept(resource));
                }
                ServerEvent::Resume(req) => {
                    let answer = match self.detached.remove(&req.previd) {
                        Some(st) => ResumeAnswer::Found(st),
                        None => ResumeAnswer::NotFound,
                    };
                    if let Err(e) = server.answer_resume(self.now, answer.clone()) {
                        // Lost meanwhile: the host keeps the state.
                        assert_eq!(e, xmpp_sansio::UsageError::Closed);
                        if let ResumeAnswer::Found(st) = answer {
                            self.detached.insert(st.id().to_owned(), st);
                        }
                    }
                }
                ServerEvent::Detached(st) => {
                    self.detached.insert(st.id().to_owned(), st);
                }
                ServerEvent::StreamManagementEnabled { .. } | ServerEvent::Resumed { .. } => {
                    *sm_on = true
                }
                ServerEvent::Acked(v) => self.server.acked.extend(v.iter().map(kept)),
                ServerEvent::Undelivered(v) => self.server.undelivered.extend(v.iter().map(kept)),
                ServerEvent::Stanza(el) => self.server.received.push(number(&el)),
                ServerEvent::Error(e) => {
                    assert!(
                        matches!(e, xmpp_sansio::server::ServerError::ClosedByPeer),
                        "server error {e:?}"
                    )
                }
                _ => {}
            }
        }
        busy
    }

    /// Every stanza sent is acknowledged or handed back, exactly once;
    /// acknowledged ones were received exactly once, the others at most
    /// once.
    pub fn check(&self) {
        for (name, from, to) in [
            ("client", &self.client, &self.server),
            ("server", &self.server, &self.client),
        ] {
            for n in &from.sent {
                let acked = from.acked.iter().filter(|m| *m == n).count();
                let back = from.undelivered.iter().filter(|m| *m == n).count();
                let got = to.received.iter().filter(|m| *m == n).count();
                assert_eq!(
                    acked + back,
                    1,
                    "{name}'s stanza {n}: acked {acked}, handed back {back}"
                );
                if acked == 1 {
                    assert_eq!(got, 1, "{name}'s acked stanza {n} received {got} times");
                } else {
                    assert!(got <= 1, "{name}'s stanza {n} received {got} times");
                }
            }
            assert_eq!(
                from.acked.len() + from.undelivered.len(),
                from.sent.len(),
                "{name}: nothing accounted twice"
            );
        }
    }
}
