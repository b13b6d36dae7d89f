//! The framings side by side (issue 13): the same `Client` and `Server`
//! over [`Framing::Tcp`] and [`Framing::WebSocket`], in one run.
//!
//! - `negotiation/PLAIN`, `negotiation/SCRAM-SHA-256`: a full negotiation
//!   in memory, no TLS, from the client's first header (`<open/>`) to both
//!   sides ready (features, SASL, the restart, features, bind); the host
//!   answers at once (SCRAM: StoredKey/ServerKey on the server, cached
//!   keys on the client: no PBKDF2). TCP moves bytes with `poll_transmit`
//!   and `feed`; WebSocket moves each message with `poll_message` and
//!   `feed_message`.
//! - `stanzas/1MB`: a ready client sends about 1 MB of messages (one
//!   `<message/>` with a 300-byte body each) and the ready server reads
//!   them all: TCP in 4 KiB reads, WebSocket one message at a time.
//!
//! Each figure is the fastest of 20 interleaved batches (the shared
//! machine swings single runs by up to 30%); the ratio is WebSocket's
//! throughput over TCP's. Goal: WebSocket at least 90% of TCP.
//!
//! The server keeps the default `BufferPolicy::ReleaseWhenIdle`, which
//! gives back the reader's scratch space after every read: a WebSocket
//! server reads one message per call where TCP reads 4 KiB, so it pays
//! that more often. `KEEP=1` runs both with `BufferPolicy::Keep`.
//!
//! Run: `cargo bench --bench framing` (or `KEEP=1 cargo bench --bench framing`)

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xmpp_sansio::client::{
    Client, ClientConfig, ClientEvent, ClientSettings, Credentials, TlsMode,
};
use xmpp_sansio::sasl::scram::{derive_server_credentials, ScramClientKeys};
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest, SaslCondition, ScramHash};
use xmpp_sansio::server::{
    BindAnswer, Server, ServerConfig, ServerEvent, ServerSettings, ServerTls,
};
use xmpp_sansio::{DeterministicRandom, Framing};

const PASSWORD: &str = "r0m30, my r0m30";

struct Setup {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    framing: Framing,
    scram: xmpp_sansio::sasl::ScramCredentials,
}

impl Setup {
    fn new(framing: Framing, mechanism: &str, keys: Option<ScramClientKeys>) -> Setup {
        let mut c = ClientSettings::new(
            "juliet@example.org",
            Credentials::Password {
                password: PASSWORD.into(),
                cached: keys,
            },
        );
        c.framing = framing;
        c.tls = TlsMode::None;
        c.policy.only = Some(vec![mechanism.into()]);
        c.policy.allow_plain_without_tls = true;
        c.resource = Some("balcony".into());
        let mut s = ServerSettings::new("example.org");
        s.framing = framing;
        s.tls = ServerTls::None;
        s.mechanisms = vec![mechanism.into()];
        s.allow_plain_without_tls = true;
        if std::env::var_os("KEEP").is_some() {
            s.buffers = xmpp_sansio::BufferPolicy::Keep;
        }
        Setup {
            client: Arc::new(c.build().unwrap()),
            server: Arc::new(s.build().unwrap()),
            framing,
            scram: derive_server_credentials(ScramHash::Sha256, PASSWORD, b"NaCl", 4096).unwrap(),
        }
    }

    fn answer(&self, req: CredentialRequest) -> CredentialAnswer {
        match req {
            CredentialRequest::Password { password, .. } => {
                CredentialAnswer::Verdict(if password.ct_eq(PASSWORD) {
                    Ok("juliet".into())
                } else {
                    Err(SaslCondition::NotAuthorized)
                })
            }
            CredentialRequest::Scram { .. } => CredentialAnswer::Scram(Some(self.scram.clone())),
            other => panic!("{other:?}"),
        }
    }

    /// Client to server, in the framing's own way.
    fn up(
        &self,
        client: &mut Client,
        server: &mut Server,
        buf: &mut Vec<u8>,
        now: Instant,
    ) -> bool {
        match self.framing {
            Framing::WebSocket => {
                let mut any = false;
                while let Some(m) = client.poll_message() {
                    server.feed_message(now, &m).unwrap();
                    any = true;
                }
                any
            }
            _ => {
                buf.clear();
                client.poll_transmit(buf);
                !buf.is_empty() && server.feed(now, buf).is_ok()
            }
        }
    }

    fn down(
        &self,
        server: &mut Server,
        client: &mut Client,
        buf: &mut Vec<u8>,
        now: Instant,
    ) -> bool {
        match self.framing {
            Framing::WebSocket => {
                let mut any = false;
                while let Some(m) = server.poll_message() {
                    client.feed_message(now, &m).unwrap();
                    any = true;
                }
                any
            }
            _ => {
                buf.clear();
                server.poll_transmit(buf);
                !buf.is_empty() && client.feed(now, buf).is_ok()
            }
        }
    }

    /// One negotiation to both sides ready.
    fn negotiate(&self) -> (Client, Server) {
        let now = Instant::now();
        let mut client = Client::with_random(
            self.client.clone(),
            Box::new(DeterministicRandom::new(0)),
            now,
        );
        let mut server = Server::with_random(
            self.server.clone(),
            Box::new(DeterministicRandom::new(1)),
            now,
        );
        let mut buf = Vec::with_capacity(1024);
        loop {
            let mut busy = self.up(&mut client, &mut server, &mut buf, now);
            while let Some(ev) = server.poll_event() {
                busy = true;
                match ev {
                    ServerEvent::Credentials(req) => {
                        server.answer_credentials(now, self.answer(req)).unwrap()
                    }
                    ServerEvent::Bind { resource, .. } => server
                        .answer_bind(now, BindAnswer::Accept(resource))
                        .unwrap(),
                    ServerEvent::Error(e) => panic!("server: {e}"),
                    _ => {}
                }
            }
            busy |= self.down(&mut server, &mut client, &mut buf, now);
            while let Some(ev) = client.poll_event() {
                busy = true;
                if let ClientEvent::Error(e) = ev {
                    panic!("client: {e}");
                }
            }
            if client.is_ready() && server.is_ready() {
                return (client, server);
            }
            assert!(busy, "stuck");
        }
    }
}

/// The stanzas of the 1 MB stream, and how many bytes the TCP stream of
/// them is.
fn stanzas() -> Vec<minidom::Element> {
    let body = "x".repeat(300);
    (0..2800)
        .map(|i| {
            format!("<message xmlns='jabber:client' to='romeo@example.net' id='m{i}' type='chat'><body>{body}</body></message>")
                .parse()
                .unwrap()
        })
        .collect()
}

/// The client's output for the stanzas: one buffer (TCP) or the messages
/// (WebSocket), recorded once.
enum Wire {
    Bytes(Vec<u8>),
    Messages(Vec<Vec<u8>>),
}

fn record_stream(setup: &Setup, els: &[minidom::Element]) -> (Wire, usize) {
    let (mut client, _) = setup.negotiate();
    for el in els {
        client.send(el).unwrap();
    }
    match setup.framing {
        Framing::WebSocket => {
            let msgs: Vec<Vec<u8>> = std::iter::from_fn(|| client.poll_message()).collect();
            let n = msgs.iter().map(Vec::len).sum();
            (Wire::Messages(msgs), n)
        }
        _ => {
            let mut buf = Vec::new();
            client.poll_transmit(&mut buf);
            let n = buf.len();
            (Wire::Bytes(buf), n)
        }
    }
}

/// A ready server reads the stream; returns the stanzas it delivered.
fn read_stream(setup: &Setup, wire: &Wire, server: &mut Server) -> usize {
    let now = Instant::now();
    let mut n = 0;
    match wire {
        Wire::Bytes(b) => {
            for chunk in b.chunks(4096) {
                server.feed(now, chunk).unwrap();
                while let Some(ev) = server.poll_event() {
                    n += matches!(ev, ServerEvent::Stanza(_)) as usize;
                }
            }
        }
        Wire::Messages(ms) => {
            for m in ms {
                server.feed_message(now, m).unwrap();
                while let Some(ev) = server.poll_event() {
                    n += matches!(ev, ServerEvent::Stanza(_)) as usize;
                }
            }
        }
    }
    let _ = setup;
    n
}

/// Fastest of `batches` interleaved batches of `iters` runs of each of
/// `fs`, per run.
fn fastest(batches: usize, iters: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<Duration> {
    let mut best = vec![Duration::MAX; fs.len()];
    for _ in 0..batches {
        for (i, f) in fs.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            best[i] = best[i].min(t.elapsed() / iters as u32);
        }
    }
    best
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("| case | TCP | WebSocket | WebSocket / TCP throughput | goal (>= 90%) |");
    println!("|---|---|---|---|---|");
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let keys = (mechanism != "PLAIN").then(|| {
            let s = Setup::new(Framing::Tcp, mechanism, None);
            s.negotiate().0.scram_keys().expect("keys")
        });
        let tcp = Setup::new(Framing::Tcp, mechanism, keys.clone());
        let ws = Setup::new(Framing::WebSocket, mechanism, keys);
        let t = fastest(
            20,
            200,
            &mut [
                &mut || {
                    black_box(tcp.negotiate());
                },
                &mut || {
                    black_box(ws.negotiate());
                },
            ],
        );
        report(&format!("negotiation/{mechanism}"), t[0], t[1], "");
    }
    let els = stanzas();
    let tcp = Setup::new(Framing::Tcp, "PLAIN", None);
    let ws = Setup::new(Framing::WebSocket, "PLAIN", None);
    let (tcp_wire, tcp_bytes) = record_stream(&tcp, &els);
    let (ws_wire, ws_bytes) = record_stream(&ws, &els);
    let mut tcp_server = tcp.negotiate().1;
    let mut ws_server = ws.negotiate().1;
    assert_eq!(read_stream(&tcp, &tcp_wire, &mut tcp_server), els.len());
    let t = fastest(
        20,
        3,
        &mut [
            &mut || {
                let mut s = tcp.negotiate().1;
                black_box(read_stream(&tcp, &tcp_wire, &mut s));
            },
            &mut || {
                let mut s = ws.negotiate().1;
                black_box(read_stream(&ws, &ws_wire, &mut s));
            },
        ],
    );
    assert_eq!(read_stream(&ws, &ws_wire, &mut ws_server), els.len());
    report(
        &format!(
            "stanzas/1MB ({} stanzas; TCP {tcp_bytes} B, WebSocket {ws_bytes} B)",
            els.len()
        ),
        t[0],
        t[1],
        "",
    );
}

fn report(case: &str, tcp: Duration, ws: Duration, _note: &str) {
    let ratio = tcp.as_secs_f64() / ws.as_secs_f64();
    println!(
        "| {case} | {tcp:.1?} | {ws:.1?} | {:.1}% | {} |",
        ratio * 100.0,
        if ratio >= 0.9 { "met" } else { "not met" }
    );
}
