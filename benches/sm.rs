//! Stream management's cost (issue 15): the same stanza stream between a
//! ready `Client` and a ready `Server` over TCP in memory, without stream
//! management and with it (both sides on, `<r/>` every 5 stanzas, every
//! stanza kept until acknowledged and handed back in `Acked` events), in
//! one run.
//!
//! The host sends 2,800 `<message/>`s (300-byte bodies, about 1 MB) in
//! rounds of 50, two ways: stanzas parsed beforehand, and each stanza
//! built just before it goes; both with `send(&el)` (with stream
//! management the machine keeps the bytes it wrote, not the element).
//! Each round: send them, moves the client's bytes to the server in
//! 4 KiB reads, drains the server's events (the stanzas), moves the
//! server's bytes back (with stream management, its `<a/>`s), drains the
//! client's events (the acknowledgements). Each figure is the fastest of
//! 20 interleaved batches; the ratio is the throughput with stream
//! management over the throughput without. Goal: at least 90%.
//!
//! Run: `cargo bench --bench sm`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use xmpp_sansio::client::{
    Client, ClientConfig, ClientEvent, ClientSettings, Credentials, TlsMode,
};
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest};
use xmpp_sansio::server::{
    BindAnswer, Server, ServerConfig, ServerEvent, ServerSettings, ServerTls,
};
use xmpp_sansio::sm::SmSettings;
use xmpp_sansio::DeterministicRandom;

#[path = "support/timing.rs"]
mod timing;
use timing::fastest;

const ROUND: usize = 50;

struct Setup {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl Setup {
    fn new(sm: bool) -> Setup {
        let mut c = ClientSettings::new("juliet@example.org", Credentials::password("r0m30"));
        c.tls = TlsMode::None;
        c.policy.only = Some(vec!["PLAIN".into()]);
        c.policy.allow_plain_without_tls = true;
        c.resource = Some("balcony".into());
        let mut s = ServerSettings::new("example.org");
        s.tls = ServerTls::None;
        s.mechanisms = vec!["PLAIN".into()];
        s.allow_plain_without_tls = true;
        if sm {
            let mut settings = SmSettings::new();
            settings.request_every = Some(5);
            settings.request_after = None;
            c.stream_management = Some(settings.clone());
            s.stream_management = Some(settings);
        }
        Setup {
            client: Arc::new(c.build().unwrap()),
            server: Arc::new(s.build().unwrap()),
        }
    }

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
        let mut buf = Vec::new();
        while !(client.is_ready() && server.is_ready()) {
            buf.clear();
            client.poll_transmit(&mut buf);
            server.feed(now, &buf).unwrap();
            while let Some(ev) = server.poll_event() {
                match ev {
                    ServerEvent::Credentials(CredentialRequest::Password { .. }) => server
                        .answer_credentials(now, CredentialAnswer::Verdict(Ok("juliet".into())))
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
        }
        (client, server)
    }
}

/// How the host hands its stanzas over.
#[derive(Clone, Copy, PartialEq)]
enum Host {
    /// `send(&el)` of stanzas parsed beforehand.
    Borrowed,
    /// Each stanza built just before it is sent with `send(&el)`, then
    /// dropped.
    Built,
}

/// The stream: every stanza delivered (and, with stream management,
/// acknowledged). Returns (delivered, acknowledged).
fn run(
    client: &mut Client,
    server: &mut Server,
    els: &[minidom::Element],
    host: Host,
) -> (usize, usize) {
    let now = Instant::now();
    let (mut delivered, mut acked) = (0, 0);
    let mut buf = Vec::new();
    let body = "x".repeat(300);
    for (r, round) in els.chunks(ROUND).enumerate() {
        for (i, el) in round.iter().enumerate() {
            match host {
                Host::Borrowed => client.send(el).unwrap(),
                Host::Built => client.send(&message(r * ROUND + i, &body)).unwrap(),
            }
        }
        buf.clear();
        client.poll_transmit(&mut buf);
        for chunk in buf.chunks(4096) {
            server.feed(now, chunk).unwrap();
            while let Some(ev) = server.poll_event() {
                delivered += matches!(ev, ServerEvent::Stanza(_)) as usize;
            }
        }
        buf.clear();
        server.poll_transmit(&mut buf);
        if !buf.is_empty() {
            client.feed(now, &buf).unwrap();
        }
        while let Some(ev) = client.poll_event() {
            if let ClientEvent::Acked(v) = ev {
                acked += v.len();
            }
        }
    }
    (delivered, acked)
}

/// Message `i`, built as a host builds one (no parsing).
fn message(i: usize, body: &str) -> minidom::Element {
    let name = |n: &str| rxml::NcName::try_from(n).unwrap();
    minidom::Element::builder("message", "jabber:client")
        .attr(name("to"), "romeo@example.net")
        .attr(name("id"), format!("m{i}"))
        .attr(name("type"), "chat")
        .append(
            minidom::Element::builder("body", "jabber:client")
                .append(body)
                .build(),
        )
        .build()
}

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

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let els = stanzas();
    let plain = Setup::new(false);
    let sm = Setup::new(true);
    // For profilers (callgrind, perf): `SM_PROFILE=sm|plain` runs one
    // stream of `SM_HOST=borrowed|built` (default built) SM_N times.
    if let Ok(which) = std::env::var("SM_PROFILE") {
        let on = which == "sm";
        let host = match std::env::var("SM_HOST").as_deref() {
            Ok("borrowed") => Host::Borrowed,
            _ => Host::Built,
        };
        let n: usize = std::env::var("SM_N")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let setup = if on { &sm } else { &plain };
        for _ in 0..n {
            let (mut c, mut s) = setup.negotiate();
            black_box(run(&mut c, &mut s, &els, host));
        }
        return;
    }
    println!("| case | without SM | with SM (`<r/>` every 5) | with / without throughput (goal >= 90%) |");
    println!("|---|---|---|---|");
    for (host, what) in [
        (Host::Borrowed, "send(&el), stanzas parsed beforehand"),
        (Host::Built, "each stanza built, then send(&el)"),
    ] {
        let (mut c, mut s) = plain.negotiate();
        assert_eq!(run(&mut c, &mut s, &els, host), (els.len(), 0));
        let (mut c, mut s) = sm.negotiate();
        assert_eq!(run(&mut c, &mut s, &els, host), (els.len(), els.len()));
        let t = fastest(
            20,
            3,
            &mut [
                &mut || {
                    let (mut c, mut s) = plain.negotiate();
                    black_box(run(&mut c, &mut s, &els, host));
                },
                &mut || {
                    let (mut c, mut s) = sm.negotiate();
                    black_box(run(&mut c, &mut s, &els, host));
                },
            ],
        );
        let ratio = t[0].as_secs_f64() / t[1].as_secs_f64();
        println!(
            "| stanzas/1MB ({} stanzas in rounds of {ROUND}; {what}) | {:.1?} | {:.1?} | {:.1}% ({}) |",
            els.len(),
            t[0],
            t[1],
            ratio * 100.0,
            if ratio >= 0.9 { "met" } else { "not met" }
        );
    }
}
