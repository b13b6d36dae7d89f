//! The server is chunking invariant: generated client sessions (our
//! `Client` against our `Server` in memory, `tests/support/pair.rs`) are
//! recorded, and the client's bytes replayed into a fresh `Server` with
//! the same configuration and randomness, split at arbitrary points (one
//! byte at a time included), with a host that answers at once or only
//! after the next chunk. The server's output bytes and events must be
//! those of the replay in one piece, which must be those of the live
//! session.

mod support;

use support::parse_stanza as parse;

use std::time::Instant;

use proptest::prelude::*;
use support::pair::{client_config, server_config, Pair, Store, TlsSim};
use xmpp_sansio::client::{Credentials, TlsMode};
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};
use xmpp_sansio::sasl::CredentialRequest;
use xmpp_sansio::server::{BindAnswer, Server, ServerEvent, ServerSettings, ServerTls};
use xmpp_sansio::DeterministicRandom;
use xmpp_sansio::{TlsInfo, UsageError};

const MECHANISMS: &[&str] = &[
    "PLAIN",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    #[cfg(feature = "digest-md5")]
    "DIGEST-MD5",
    "ANONYMOUS",
];

/// Stanzas the client may send once ready.
const STANZAS: [&str; 4] = [
    "<message to='bob@example.com' type='chat'><body>hi &amp; bye</body></message>",
    "<presence><show>away</show></presence>",
    "<iq type='get' id='v1' to='example.com'><query xmlns='jabber:iq:version'/></iq>",
    "<message to='alice@example.com'><body>\u{e9}t\u{e9}</body></message>",
];

/// One generated client session.
#[derive(Debug, Clone)]
struct Case {
    mechanism: &'static str,
    starttls: bool,
    good_password: bool,
    stanzas: Vec<usize>,
    close: bool,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..MECHANISMS.len(),
        any::<bool>(),
        prop::bool::weighted(0.8),
        prop::collection::vec(0..STANZAS.len(), 0..4),
        any::<bool>(),
        0u64..1_000,
    )
        .prop_map(|(m, starttls, good_password, stanzas, close, seed)| Case {
            mechanism: MECHANISMS[m],
            starttls,
            good_password,
            stanzas,
            close,
            seed,
        })
}

/// How the replay splits the client's bytes.
#[derive(Debug, Clone)]
enum Split {
    /// One byte at a time.
    Bytewise,
    /// At these offsets (taken modulo the length).
    At(Vec<usize>),
}

fn split() -> impl Strategy<Value = Split> {
    prop_oneof![
        1 => Just(Split::Bytewise),
        4 => prop::collection::vec(0usize..10_000, 1..24).prop_map(Split::At),
    ]
}

fn chunks<'a>(bytes: &'a [u8], split: &Split) -> Vec<&'a [u8]> {
    match split {
        Split::Bytewise => bytes.chunks(1).collect(),
        Split::At(cuts) => {
            let mut at: Vec<usize> = cuts
                .iter()
                .map(|c| c % (bytes.len() + 1))
                .chain([0, bytes.len()])
                .collect();
            at.sort_unstable();
            at.dedup();
            at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
        }
    }
}

fn tls_info() -> TlsInfo {
    TlsInfo {
        version: TlsVersion::Tls13,
        channel_bindings: vec![ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            vec![7; 32],
        )],
    }
}

fn server_config_for(case: &Case) -> ServerSettings {
    let tls = if case.starttls {
        ServerTls::StartTlsRequired
    } else {
        ServerTls::None
    };
    server_config("example.com", &[case.mechanism], tls)
}

/// An event, comparable: `StartTls` without its bytes (they depend on
/// where the input was split).
fn render(ev: &ServerEvent) -> String {
    match ev {
        ServerEvent::StartTls { .. } => "StartTls".into(),
        ev => format!("{ev:?}"),
    }
}

/// The live session: the client's bytes, and the server's output and
/// events as the pair saw them.
struct Recorded {
    up: Vec<u8>,
    down: Vec<u8>,
    events: Vec<String>,
    store: Store,
}

fn record(case: &Case) -> Recorded {
    let (jid, creds) = match case.mechanism {
        "ANONYMOUS" => ("example.com", Credentials::Anonymous),
        _ => (
            "alice@example.com",
            Credentials::password(if case.good_password {
                "pencil"
            } else {
                "wrong"
            }),
        ),
    };
    let tls = if case.starttls {
        TlsMode::StartTlsRequired
    } else {
        TlsMode::None
    };
    let client = client_config(jid, creds, case.mechanism, tls);
    let sim = TlsSim::same(tls_info());
    let mut pair = Pair::alice_seeded(client, server_config_for(case), Some(sim), (1, case.seed));
    pair.negotiate();
    if pair.client.is_ready() {
        for &k in &case.stanzas {
            pair.client.send(&parse(STANZAS[k])).unwrap();
            while pair.step() {}
        }
        if case.close {
            pair.client.close(pair.now);
        }
    }
    while pair.step() {}
    Recorded {
        events: pair.server_events.iter().map(render).collect(),
        up: std::mem::take(&mut pair.up_bytes),
        down: std::mem::take(&mut pair.down_bytes),
        store: pair.store,
    }
}

/// A request held by a slow host.
enum Pending {
    Credentials(CredentialRequest),
    Bind(Option<xmpp_sansio::jid::ResourcePart>),
}

/// The client's bytes into a fresh server, in `chunks`.
fn replay(case: &Case, store: &Store, chunks: &[&[u8]], slow: bool) -> (Vec<u8>, Vec<String>) {
    let now = Instant::now();
    let mut server = Server::with_random(
        server_config_for(case).build().unwrap(),
        Box::new(DeterministicRandom::new(case.seed)),
        now,
    );
    let mut output = Vec::new();
    let mut events = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();

    fn feed(server: &mut Server, now: Instant, bytes: &[u8]) {
        match server.feed(now, bytes) {
            Ok(()) => {}
            Err(UsageError::Closed) => assert!(server.is_closed()),
            Err(e) => panic!("feed: {e:?}"),
        }
    }

    let drain = |server: &mut Server,
                 output: &mut Vec<u8>,
                 events: &mut Vec<String>,
                 pending: &mut Vec<Pending>| loop {
        let mut busy = server.poll_transmit(output) > 0;
        while let Some(ev) = server.poll_event() {
            busy = true;
            events.push(render(&ev));
            match ev {
                ServerEvent::StartTls { pending: after } => {
                    // The simulated TLS is up at once; what followed
                    // `<starttls/>` is its plaintext.
                    server.tls_established(now, tls_info()).unwrap();
                    if !after.is_empty() {
                        feed(server, now, &after);
                    }
                }
                ServerEvent::Credentials(req) if slow => pending.push(Pending::Credentials(req)),
                ServerEvent::Credentials(req) => {
                    server.answer_credentials(now, store.answer(&req)).unwrap()
                }
                ServerEvent::Bind { resource, .. } if slow => pending.push(Pending::Bind(resource)),
                ServerEvent::Bind { resource, .. } => server
                    .answer_bind(now, BindAnswer::Accept(resource))
                    .unwrap(),
                _ => {}
            }
        }
        if !busy {
            return;
        }
    };
    let answer = |server: &mut Server, pending: &mut Vec<Pending>| {
        for p in pending.drain(..) {
            match p {
                Pending::Credentials(req) => {
                    server.answer_credentials(now, store.answer(&req)).unwrap()
                }
                Pending::Bind(resource) => server
                    .answer_bind(now, BindAnswer::Accept(resource))
                    .unwrap(),
            }
        }
    };

    drain(&mut server, &mut output, &mut events, &mut pending);
    for chunk in chunks {
        feed(&mut server, now, chunk);
        // The slow host answers what it was asked before this chunk.
        answer(&mut server, &mut pending);
        drain(&mut server, &mut output, &mut events, &mut pending);
    }
    while !pending.is_empty() {
        answer(&mut server, &mut pending);
        drain(&mut server, &mut output, &mut events, &mut pending);
    }
    (output, events)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn check(case: &Case, split: &Split, slow: bool) -> Result<(), TestCaseError> {
    let rec = record(case);
    // The sessions are real: a good login gets ready (and closes when
    // asked), a bad one fails.
    let ready = rec.events.iter().any(|e| e.starts_with("Ready"));
    let good = case.good_password || case.mechanism == "ANONYMOUS";
    prop_assert_eq!(ready, good, "ready: {:?}", &rec.events);
    if good && case.close {
        prop_assert_eq!(rec.events.last().map(String::as_str), Some("Closed"));
    }
    let whole = replay(case, &rec.store, &[&rec.up], false);
    prop_assert_eq!(
        text(&whole.0),
        text(&rec.down),
        "the replay in one piece is not the live session's output"
    );
    prop_assert_eq!(&whole.1, &rec.events, "events: one piece vs live");
    let split_chunks = chunks(&rec.up, split);
    let parts = replay(case, &rec.store, &split_chunks, slow);
    prop_assert_eq!(
        text(&parts.0),
        text(&whole.0),
        "output: {} chunks (slow host: {}) vs one piece",
        split_chunks.len(),
        slow
    );
    prop_assert_eq!(&parts.1, &whole.1, "events: chunks vs one piece");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn server_is_chunking_invariant(case in case(), split in split(), slow in any::<bool>()) {
        check(&case, &split, slow)?;
    }
}

/// Every mechanism, with and without STARTTLS, one byte at a time with a
/// slow host: the hardest split, on each path at least once.
#[test]
fn every_session_kind_bytewise_with_a_slow_host() {
    for mechanism in MECHANISMS {
        for starttls in [false, true] {
            let case = Case {
                mechanism,
                starttls,
                good_password: true,
                stanzas: vec![0, 1, 2, 3],
                close: true,
                seed: 5,
            };
            check(&case, &Split::Bytewise, true).unwrap();
        }
    }
}
