//! The framings side by side (issue 13): the same `Client` and `Server`
//! over [`Framing::Tcp`], [`Framing::WebSocket`] and [`Framing::Bosh`]
//! (the role machines under `BoshXmppClient`/`BoshXmppServer`, through
//! `BoshClient` and `BoshManager`), in one run.
//!
//! - `negotiation/PLAIN`, `negotiation/SCRAM-SHA-256`: a full negotiation
//!   in memory, no TLS, from the client's first header (`<open/>`) to both
//!   sides ready (features, SASL, the restart, features, bind); the host
//!   answers at once (SCRAM: StoredKey/ServerKey on the server, cached
//!   keys on the client: no PBKDF2). TCP moves bytes with `poll_transmit`
//!   and `feed`; WebSocket moves each message with `poll_message` and
//!   `feed_message`.
//!   BOSH moves each request body and response body between the two
//!   adapters (the host answers held requests as they come).
//! - `stanzas/1MB`: a ready client sends about 1 MB of messages (one
//!   `<message/>` with a 300-byte body each) and the ready server reads
//!   them all: TCP in 4 KiB reads, WebSocket one message at a time, BOSH
//!   one request body at a time (up to 64 KiB of payloads each, recorded
//!   from a `BoshXmppClient`), through the manager's `rid` window.
//!
//! Each figure is the fastest of 20 interleaved batches (the shared
//! machine swings single runs by up to 30%); the ratio is WebSocket's
//! throughput over TCP's. Goals: WebSocket at least 90% of TCP, BOSH at
//! least 80%.
//!
//! The server keeps the default `BufferPolicy::ReleaseWhenIdle`, which
//! gives back the reader's scratch space after every read: a WebSocket
//! server reads one message per call where TCP reads 4 KiB, so it pays
//! that more often. `KEEP=1` runs both with `BufferPolicy::Keep`.
//!
//! Run: `cargo bench --bench framing` (or `KEEP=1 cargo bench --bench framing`).
//! For a profiler, `FRAMING_PROFILE=tcp|websocket|bosh` runs only that
//! framing's PLAIN negotiation (`FRAMING_MECH=SCRAM-SHA-256`: that one)
//! 20,000 times (`FRAMING_N` times if set: a
//! small count under `valgrind --tool=callgrind` gives instruction counts,
//! which the machine's load does not sway); with `BOSH_DUMP=1` too, once,
//! printing every BOSH request and response body.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use xmpp_sansio::bosh::{
    BoshClientConfig, BoshManagerConfig, BoshXmppClient, BoshXmppServer, BoshXmppServerEvent,
    Reply, RequestHandle,
};
use xmpp_sansio::client::{
    Client, ClientConfig, ClientEvent, ClientSettings, Credentials, TlsMode,
};
use xmpp_sansio::sasl::scram::{derive_server_credentials, ScramClientKeys};
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest, SaslCondition, ScramHash};
use xmpp_sansio::server::{
    BindAnswer, Server, ServerConfig, ServerEvent, ServerSettings, ServerTls,
};
use xmpp_sansio::{DeterministicRandom, Framing};

#[path = "support/timing.rs"]
mod timing;
use timing::fastest;

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

/// Both BOSH adapters in memory, and the held requests (handle → rid).
struct BoshRig {
    client: BoshXmppClient,
    cm: BoshXmppServer,
    held: HashMap<RequestHandle, u64>,
    /// `BOSH_DUMP` is set (read once: not a cost of the framing).
    dump: bool,
}

impl BoshRig {
    /// Moves requests, responses and events once; whether anything moved.
    fn step(&mut self, setup: &Setup, now: Instant) -> bool {
        let mut busy = false;
        while let Some(req) = self.client.poll_request(now) {
            busy = true;
            if self.dump {
                eprintln!("REQ {}", String::from_utf8_lossy(&req.body));
            }
            match self.cm.handle_request(now, &req.body) {
                Reply::Immediate(b) => self.client.handle_response(now, req.rid, &b).unwrap(),
                Reply::Held(h) => {
                    self.held.insert(h, req.rid);
                }
                Reply::Refused { error, .. } => panic!("refused: {error}"),
            }
        }
        while let Some((h, b)) = self.cm.poll_response() {
            busy = true;
            if self.dump {
                eprintln!("RESP {}", String::from_utf8_lossy(&b));
            }
            let rid = self.held.remove(&h).expect("held");
            self.client.handle_response(now, rid, &b).unwrap();
        }
        while let Some(ev) = self.cm.poll_event() {
            busy = true;
            if let BoshXmppServerEvent::Session { sid, event } = ev {
                match event {
                    ServerEvent::Credentials(req) => {
                        self.cm.answer(now, &sid, setup.answer(req)).unwrap()
                    }
                    ServerEvent::Bind { resource, .. } => self
                        .cm
                        .answer(now, &sid, BindAnswer::Accept(resource))
                        .unwrap(),
                    ServerEvent::Error(e) => panic!("server: {e}"),
                    _ => {}
                }
            }
        }
        while let Some(ev) = self.client.poll_event() {
            busy = true;
            if let ClientEvent::Error(e) = ev {
                panic!("client: {e}");
            }
        }
        busy
    }
}

impl Setup {
    /// One negotiation over BOSH to both sides ready (the same `sid` and
    /// `rid`s every time: deterministic randomness).
    fn negotiate_bosh(&self) -> BoshRig {
        let now = Instant::now();
        let client = Client::with_random(
            self.client.clone(),
            Box::new(DeterministicRandom::new(0)),
            now,
        );
        let client = BoshXmppClient::new(
            client,
            BoshClientConfig::new("example.org"),
            &mut DeterministicRandom::new(5),
            now,
        )
        .unwrap();
        let cm = BoshXmppServer::new(
            self.server.clone(),
            BoshManagerConfig::default(),
            Box::new(DeterministicRandom::new(2)),
            Box::new(|| Box::new(DeterministicRandom::new(1))),
        )
        .unwrap();
        let mut rig = BoshRig {
            client,
            cm,
            held: HashMap::new(),
            dump: std::env::var_os("BOSH_DUMP").is_some(),
        };
        loop {
            let busy = rig.step(self, now);
            // The server is ready before the client (it bound first).
            if rig.client.is_ready() && !busy {
                return rig;
            }
            assert!(busy, "stuck");
        }
    }
}

/// The request bodies a ready BOSH client POSTs for `els`, recorded once
/// (the manager answers as it goes).
fn record_bosh(setup: &Setup, els: &[minidom::Element]) -> (Vec<Vec<u8>>, usize) {
    let now = Instant::now();
    let mut rig = setup.negotiate_bosh();
    let mut bodies = Vec::new();
    let mut pending = els.iter();
    loop {
        let mut busy = false;
        while !rig.client.output_congested() {
            let Some(el) = pending.next() else { break };
            rig.client.send(now, el).unwrap();
            busy = true;
        }
        while let Some(req) = rig.client.poll_request(now) {
            busy = true;
            bodies.push(req.body.clone());
            match rig.cm.handle_request(now, &req.body) {
                Reply::Immediate(b) => rig.client.handle_response(now, req.rid, &b).unwrap(),
                Reply::Held(h) => {
                    rig.held.insert(h, req.rid);
                }
                Reply::Refused { error, .. } => panic!("refused: {error}"),
            }
        }
        busy |= rig.step(setup, now);
        if !busy {
            break;
        }
    }
    let n = bodies.iter().map(Vec::len).sum();
    (bodies, n)
}

/// A ready BOSH server reads the recorded request bodies; returns the
/// stanzas it delivered.
fn read_bosh(rig: &mut BoshRig, bodies: &[Vec<u8>]) -> usize {
    let now = Instant::now();
    let mut n = 0;
    for b in bodies {
        if let Reply::Refused { error, .. } = rig.cm.handle_request(now, b) {
            panic!("refused: {error}");
        }
        while rig.cm.poll_response().is_some() {}
        while let Some(ev) = rig.cm.poll_event() {
            n += matches!(
                ev,
                BoshXmppServerEvent::Session {
                    event: ServerEvent::Stanza(_),
                    ..
                }
            ) as usize;
        }
    }
    n
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

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `FRAMING_PROFILE=tcp|websocket|bosh`: only that framing's PLAIN
    // negotiation, 20,000 times, for a profiler (`perf record`).
    if let Ok(only) = std::env::var("FRAMING_PROFILE") {
        let framing = match only.as_str() {
            "tcp" => Framing::Tcp,
            "websocket" => Framing::WebSocket,
            _ => Framing::Bosh,
        };
        // `FRAMING_MECH=SCRAM-SHA-256`: that negotiation instead (cached keys).
        let mechanism = std::env::var("FRAMING_MECH").unwrap_or_else(|_| "PLAIN".to_owned());
        let keys = (mechanism != "PLAIN").then(|| {
            let s = Setup::new(Framing::Tcp, &mechanism, None);
            s.negotiate().0.scram_keys().expect("keys")
        });
        let setup = Setup::new(framing, &mechanism, keys);
        let n = if std::env::var_os("BOSH_DUMP").is_some() {
            1
        } else {
            std::env::var("FRAMING_N")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(20_000)
        };
        for _ in 0..n {
            if framing == Framing::Bosh {
                black_box(setup.negotiate_bosh());
            } else {
                black_box(setup.negotiate());
            }
        }
        return;
    }
    println!("| case | TCP | WebSocket | BOSH | WebSocket / TCP throughput (goal >= 90%) | BOSH / TCP throughput (goal >= 80%) |");
    println!("|---|---|---|---|---|---|");
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let keys = (mechanism != "PLAIN").then(|| {
            let s = Setup::new(Framing::Tcp, mechanism, None);
            s.negotiate().0.scram_keys().expect("keys")
        });
        let tcp = Setup::new(Framing::Tcp, mechanism, keys.clone());
        let ws = Setup::new(Framing::WebSocket, mechanism, keys.clone());
        let bosh = Setup::new(Framing::Bosh, mechanism, keys);
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
                &mut || {
                    black_box(bosh.negotiate_bosh());
                },
            ],
        );
        report(&format!("negotiation/{mechanism}"), t[0], t[1], t[2]);
    }
    let els = stanzas();
    let tcp = Setup::new(Framing::Tcp, "PLAIN", None);
    let ws = Setup::new(Framing::WebSocket, "PLAIN", None);
    let bosh = Setup::new(Framing::Bosh, "PLAIN", None);
    let (bosh_bodies, bosh_bytes) = record_bosh(&bosh, &els);
    assert_eq!(
        read_bosh(&mut bosh.negotiate_bosh(), &bosh_bodies),
        els.len()
    );
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
            &mut || {
                let mut rig = bosh.negotiate_bosh();
                black_box(read_bosh(&mut rig, &bosh_bodies));
            },
        ],
    );
    assert_eq!(read_stream(&ws, &ws_wire, &mut ws_server), els.len());
    report(
        &format!(
            "stanzas/1MB ({} stanzas; TCP {tcp_bytes} B, WebSocket {ws_bytes} B, BOSH {bosh_bytes} B in {} bodies)",
            els.len(),
            bosh_bodies.len()
        ),
        t[0],
        t[1],
        t[2],
    );
}

fn report(case: &str, tcp: Duration, ws: Duration, bosh: Duration) {
    let ratio = |d: Duration| tcp.as_secs_f64() / d.as_secs_f64();
    let verdict = |r: f64, goal: f64| if r >= goal { "met" } else { "not met" };
    println!(
        "| {case} | {tcp:.1?} | {ws:.1?} | {bosh:.1?} | {:.1}% ({}) | {:.1}% ({}) |",
        ratio(ws) * 100.0,
        verdict(ratio(ws), 0.9),
        ratio(bosh) * 100.0,
        verdict(ratio(bosh), 0.8),
    );
}
