//! The README's drive loop, run: the very code of its "The drive loop"
//! block (kept in `support/drive_loop.rs`, which the first test compares
//! with the README) drives a `Client` with the default configuration
//! (STARTTLS required) against our `Server` in memory, over a simulated
//! TLS, through STARTTLS, timeouts, errors and congestion.

mod support;

#[path = "support/drive_loop.rs"]
mod drive_loop;

use std::io;
use std::time::{Duration, Instant};
use xmpp_sansio::client::PeerRefusal;
use xmpp_sansio::error::Deadline;

use minidom::Element;
use xmpp_sansio::client::{Client, ClientError, ClientEvent, ClientSettings, Credentials};
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};
use xmpp_sansio::sasl::SaslCondition;
use xmpp_sansio::server::{BindAnswer, Server, ServerEvent, ServerSettings};
use xmpp_sansio::{DeterministicRandom, TlsInfo};

use drive_loop::{drive, Connection};
use support::pair::Store;

/// The README block is this file, byte for byte: what the README shows is
/// what these tests run (and the README doctest compiles).
#[test]
fn the_readme_shows_this_loop() {
    let readme = include_str!("../README.md");
    let section = &readme[readme.find("## The drive loop").expect("the section")..];
    let start = section.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let len = section[start..].find("```\n").expect("the block's end");
    assert_eq!(
        &section[start..start + len],
        include_str!("support/drive_loop.rs")
    );
}

/// The server end of the connection, in memory: our `Server`, a host that
/// answers it from a user store, and a simulated TLS (both sides are told
/// the same channel-binding data).
struct InMemory {
    server: Server,
    store: Store,
    /// Server bytes not read by the client yet.
    to_client: Vec<u8>,
    /// The server has queued `<proceed/>` and waits for the handshake.
    server_wants_tls: bool,
    tls: TlsInfo,
    /// The size of each write the loop made.
    writes: Vec<usize>,
    /// The stanzas the server received.
    stanzas: Vec<Element>,
    /// Drop everything the client sends (a server that stalls).
    deaf: bool,
    /// Times `read` waited out a deadline.
    timeouts: usize,
    /// Stanzas the server sends as soon as the session is ready.
    burst: usize,
}

impl InMemory {
    fn new(mut config: ServerSettings) -> Self {
        config.mechanisms = vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()];
        Self {
            server: Server::with_random(
                config.build().unwrap(),
                Box::new(DeterministicRandom::new(1)),
                Instant::now(),
            ),
            store: Store::new(&[("juliet", "r0m30")]),
            to_client: Vec::new(),
            server_wants_tls: false,
            tls: TlsInfo {
                version: TlsVersion::Tls13,
                channel_bindings: vec![ChannelBinding::new(
                    ChannelBindingType::TlsExporter,
                    vec![7; 32],
                )],
            },
            writes: Vec::new(),
            stanzas: Vec::new(),
            deaf: false,
            timeouts: 0,
            burst: 0,
        }
    }

    /// The server's host: moves its bytes and answers its requests.
    fn serve(&mut self) {
        let now = Instant::now();
        loop {
            self.server.poll_transmit(&mut self.to_client);
            let Some(ev) = self.server.poll_event() else {
                return;
            };
            match ev {
                ServerEvent::StartTls { pending } => {
                    assert!(pending.is_empty());
                    self.server_wants_tls = true;
                }
                ServerEvent::Credentials(req) => {
                    let answer = self.store.answer(&req);
                    self.server.answer_credentials(now, answer).unwrap();
                }
                ServerEvent::Bind { resource, .. } => {
                    let answer = BindAnswer::Accept(resource);
                    self.server.answer_bind(now, answer).unwrap();
                }
                ServerEvent::Stanza(el) => self.stanzas.push(el),
                ServerEvent::Ready { .. } => {
                    for n in 0..self.burst {
                        self.server.send(&message(n)).unwrap();
                    }
                }
                _ => {}
            }
        }
    }
}

impl Connection for InMemory {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writes.push(bytes.len());
        if !self.deaf {
            self.server
                .feed(Instant::now(), bytes)
                .map_err(io::Error::other)?;
            self.serve();
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> io::Result<usize> {
        self.serve();
        if self.to_client.is_empty() {
            let Some(deadline) = deadline else {
                // A socket would block for ever: the loop is stuck.
                return Err(io::Error::other("nothing to read and no deadline"));
            };
            self.timeouts += 1;
            assert!(
                self.timeouts < 100,
                "the loop does not act on its deadlines"
            );
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            return Err(io::ErrorKind::TimedOut.into());
        }
        let n = buf.len().min(self.to_client.len());
        buf[..n].copy_from_slice(&self.to_client[..n]);
        self.to_client.drain(..n);
        Ok(n)
    }

    fn start_tls(&mut self, pending: &[u8]) -> io::Result<TlsInfo> {
        assert!(pending.is_empty(), "bytes after <proceed/>");
        assert!(self.server_wants_tls, "TLS before the server's <proceed/>");
        self.server_wants_tls = false;
        self.server
            .tls_established(Instant::now(), self.tls.clone())
            .map_err(io::Error::other)?;
        Ok(self.tls.clone())
    }
}

fn client(password: &str) -> Client {
    // The default configuration: STARTTLS required.
    let config = ClientSettings::new("juliet@example.com", Credentials::password(password));
    Client::with_random(
        config.build().unwrap(),
        Box::new(DeterministicRandom::new(1)),
        Instant::now(),
    )
}

fn server_config() -> ServerSettings {
    ServerSettings::new("example.com")
}

fn message(n: usize) -> Element {
    format!(
        "<message xmlns='jabber:client' to='romeo@example.net'><body>message {n}</body></message>"
    )
    .parse()
    .unwrap()
}

/// The default configuration requires TLS: the loop goes through
/// STARTTLS (a loop that discarded `StartTls` stalled at `<proceed/>`),
/// authenticates with SCRAM-SHA-256-PLUS over the simulated channel,
/// binds, sends a message, closes, and returns `Ok`.
#[test]
fn the_loop_negotiates_starttls_sends_and_closes() {
    let mut client = client("r0m30");
    let mut conn = InMemory::new(server_config());
    let mut events = Vec::new();
    let result = drive(&mut client, &mut conn, |client, event| {
        if let ClientEvent::Ready { .. } = event {
            client.send(&message(1)).unwrap();
            client.close(Instant::now());
        }
        events.push(event);
    });
    assert!(result.is_ok(), "{result:?}");
    assert!(client.is_encrypted() && client.is_closed());
    assert!(
        matches!(&events[0], ClientEvent::Authenticated { mechanism, .. } if mechanism == "SCRAM-SHA-256-PLUS"),
        "{events:?}"
    );
    assert!(
        matches!(&events[1], ClientEvent::Ready { jid } if jid.as_str().starts_with("juliet@example.com/"))
    );
    assert_eq!(conn.stanzas.len(), 1);
    assert_eq!(
        conn.stanzas[0]
            .get_child("body", "jabber:client")
            .unwrap()
            .text(),
        "message 1"
    );
    assert!(conn.server.is_closed(), "the close handshake was completed");
}

/// A refusal comes back as the stream's typed error, after `Closed`.
#[test]
fn the_loop_returns_the_stream_error() {
    let mut client = client("wrong");
    let mut conn = InMemory::new(server_config());
    let err = drive(&mut client, &mut conn, |_, _| {}).unwrap_err();
    assert_eq!(
        err.downcast_ref::<ClientError>(),
        Some(&ClientError::Refused(PeerRefusal::Authentication {
            condition: Some(SaslCondition::NotAuthorized),
            text: None,
        }))
    );
    assert!(client.is_closed());
}

/// A server that never answers: the loop waits for the client's deadline,
/// calls `handle_timeout`, and returns the timeout.
#[test]
fn the_loop_acts_on_deadlines() {
    let mut config = ClientSettings::new("juliet@example.com", Credentials::password("r0m30"));
    config.negotiation_timeout = Duration::from_millis(200);
    let start = Instant::now();
    let mut client = Client::with_random(
        config.build().unwrap(),
        Box::new(DeterministicRandom::new(1)),
        start,
    );
    let mut conn = InMemory::new(server_config());
    conn.deaf = true;
    let err = drive(&mut client, &mut conn, |_, _| {}).unwrap_err();
    assert_eq!(
        err.downcast_ref::<ClientError>(),
        Some(&ClientError::Timeout(Deadline::Negotiation))
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(conn.timeouts >= 1);
}

/// A server that pushes a burst of stanzas, each answered from
/// `on_event`: one read brings dozens of events, and above the high-water
/// mark the loop writes the replies before it handles more, so no write
/// (and no queue) grows past the mark and a stanza.
#[test]
fn the_loop_writes_when_output_is_congested() {
    const HIGH_WATER: usize = 1024;
    let mut config = ClientSettings::new("juliet@example.com", Credentials::password("r0m30"));
    config.output_high_water = HIGH_WATER;
    let mut client = Client::with_random(
        config.build().unwrap(),
        Box::new(DeterministicRandom::new(1)),
        Instant::now(),
    );
    let mut conn = InMemory::new(server_config());
    conn.burst = 200;
    let mut received = 0;
    let result = drive(&mut client, &mut conn, |client, event| {
        if let ClientEvent::Stanza(_) = event {
            received += 1;
            client.send(&message(received)).unwrap();
            if received == 200 {
                client.close(Instant::now());
            }
        }
    });
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(conn.stanzas.len(), 200, "every reply reached the server");
    let mut one = Vec::new();
    xmpp_sansio::xml::StreamWriter::new("jabber:client")
        .write_element(&mut one, &message(200))
        .unwrap();
    let largest = conn.writes.iter().max().copied().unwrap_or(0);
    assert!(
        largest <= HIGH_WATER + one.len(),
        "a write of {largest} bytes: the replies piled up"
    );
}
