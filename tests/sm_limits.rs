//! Stream management holds nothing without bound: the unacknowledged
//! queue stops at its limits (a typed refusal, measured with a counting
//! allocator), and a saved state read back from hostile bytes neither
//! panics nor allocates beyond what the bytes hold.

mod support;

#[path = "support/counting.rs"]
mod counting;
use counting::*;

use proptest::prelude::*;
use support::pair::{alice_config, server_config, Pair};
use support::sm_world::message;
use xmpp_sansio::client::TlsMode;
use xmpp_sansio::jid::FullJid;
use xmpp_sansio::server::ServerTls;
use xmpp_sansio::sm::{SentStanza, SmParts, SmSettings, SmState};
use xmpp_sansio::UsageError;

fn pair(max_unacked: usize) -> Pair {
    let mut sm = SmSettings::new();
    sm.max_unacked = max_unacked;
    sm.request_every = None;
    sm.request_after = None;
    let mut c = alice_config("PLAIN", TlsMode::None);
    c.stream_management = Some(sm.clone());
    let mut s = server_config("example.com", &["PLAIN"], ServerTls::None);
    s.stream_management = Some(sm);
    let mut p = Pair::with_alice(c, s, None);
    p.negotiate();
    assert!(p.client.is_ready() && p.server.is_ready());
    p
}

/// A host that keeps sending to a peer that never acknowledges: the
/// client holds at most `max_unacked` stanzas, whatever it is asked to
/// send; every stanza beyond is refused, by type.
#[test]
fn an_unacknowledging_peer_costs_a_bounded_queue() {
    let el = message(1, "bob@example.com");
    let mut held_by = Vec::new();
    for (max, sends) in [(50usize, 50usize), (50, 5_000)] {
        let mut p = pair(max);
        let mut out = Vec::new();
        let (held, refused) = held_after(|| {
            let mut refused = 0;
            for _ in 0..sends {
                match p.client.send(&el) {
                    Ok(()) => {}
                    Err(UsageError::UnackedQueueFull { stanzas }) => {
                        assert_eq!(stanzas, max);
                        refused += 1;
                    }
                    Err(e) => panic!("{e:?}"),
                }
                // The wire takes the bytes; the queue keeps the stanzas.
                out.clear();
                p.client.poll_transmit(&mut out);
            }
            refused
        });
        assert_eq!(refused, sends - max);
        assert_eq!(p.client.sm_state().unwrap().unacked().len(), max);
        held_by.push(held);
    }
    // 50 kept messages (a parsed element with attributes costs about
    // 2 KiB), and not a byte more for a hundred times as many sends.
    assert!(held_by[0] < 50 * 4096, "{held_by:?}");
    assert!(held_by[1] <= held_by[0] + 8 * 1024, "{held_by:?}");
    // The same bound on the server's side.
    let mut p = pair(10);
    let to_alice = message(2, "alice@example.com/pair");
    for _ in 0..10 {
        p.server.send(&to_alice).unwrap();
    }
    assert_eq!(
        p.server.send(&to_alice),
        Err(UsageError::UnackedQueueFull { stanzas: 10 })
    );
}

/// A byte budget stops the queue too: one large stanza may cross it (its
/// size is known once written), the next is refused.
#[test]
fn the_byte_bound_refuses_the_next_stanza() {
    let mut sm = SmSettings::new();
    sm.max_unacked_bytes = 1000;
    sm.request_every = None;
    sm.request_after = None;
    let mut c = alice_config("PLAIN", TlsMode::None);
    c.stream_management = Some(sm.clone());
    let mut s = server_config("example.com", &["PLAIN"], ServerTls::None);
    s.stream_management = Some(sm);
    let mut p = Pair::with_alice(c, s, None);
    p.negotiate();
    let big: minidom::Element = format!(
        "<message xmlns='jabber:client' to='bob@example.com'><body>{}</body></message>",
        "x".repeat(1500)
    )
    .parse()
    .unwrap();
    p.client.send(&big).unwrap();
    assert_eq!(
        p.client.send(&message(1, "bob@example.com")),
        Err(UsageError::UnackedQueueFull { stanzas: 1 })
    );
}

fn valid_state() -> Vec<u8> {
    let mut parts = SmParts::new(
        "resume-id",
        FullJid::new("alice@example.com/pair").unwrap(),
        7,
        u32::MAX,
    );
    parts.unacked = (0..3)
        .map(|n| SentStanza::from_element(&message(n, "bob@example.com")).unwrap())
        .collect();
    SmState::from_parts(parts).to_bytes().unwrap()
}

proptest! {
    /// Arbitrary bytes, and a valid state with bytes flipped, cut or
    /// grown: `from_bytes` answers (a state or a typed error) without
    /// panicking, and never holds much more than the input's size.
    #[test]
    fn hostile_state_bytes_are_refused_or_read(
        noise in proptest::collection::vec(any::<u8>(), 0..300),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
    ) {
        for bytes in [noise.clone(), {
            let mut b = valid_state();
            for (at, v) in &flips {
                let i = at % b.len();
                b[i] = *v;
            }
            b.truncate(cut % (b.len() + 1));
            b.extend_from_slice(&noise);
            b
        }] {
            let (peak, _) = peak_during(|| SmState::from_bytes(&bytes).map(|s| s.unacked().len()));
            // The reader's own buffers for one stanza (a few KiB) and the
            // elements themselves, never a count's worth of reservations.
            prop_assert!(peak < 64 * 1024 + 64 * bytes.len(), "{} bytes: peak {peak}", bytes.len());
        }
    }
}

#[test]
fn a_state_survives_its_bytes() {
    let b = valid_state();
    let s = SmState::from_bytes(&b).unwrap();
    assert_eq!(s.to_bytes().unwrap(), b);
    assert_eq!((s.handled(), s.acked(), s.sent()), (7, u32::MAX, 2));
}

/// Stream management elements in any order, with any `h`, to both ready
/// roles (and to a client resuming): each input either works or fails
/// the stream with a typed error; nothing panics.
#[test]
fn hostile_stream_management_elements_never_panic() {
    let pieces = |h: u32| {
        vec![
            format!("<a xmlns='urn:xmpp:sm:3' h='{h}'/>"),
            "<r xmlns='urn:xmpp:sm:3'/>".to_owned(),
            "<enable xmlns='urn:xmpp:sm:3' resume='true' max='0'/>".to_owned(),
            format!("<enabled xmlns='urn:xmpp:sm:3' id='x' resume='1' max='{h}' location='evil:1'/>"),
            format!("<resume xmlns='urn:xmpp:sm:3' previd='x' h='{h}'/>"),
            format!("<resumed xmlns='urn:xmpp:sm:3' previd='x' h='{h}'/>"),
            format!("<failed xmlns='urn:xmpp:sm:3' h='{h}'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"),
            "<a xmlns='urn:xmpp:sm:3' h='-1'/>".to_owned(),
            "<a xmlns='urn:xmpp:sm:3'/>".to_owned(),
            "<x xmlns='urn:xmpp:sm:3'/>".to_owned(),
            "<message xmlns='jabber:client' to='alice@example.com/pair'><body>1</body></message>".to_owned(),
        ]
    };
    let mut rng = xmpp_sansio::DeterministicRandom::new(42);
    let mut byte = || {
        let mut b = [0u8; 4];
        xmpp_sansio::random::RandomSource::fill(&mut rng, &mut b);
        u32::from_le_bytes(b)
    };
    for _ in 0..300 {
        let mut p = pair(5);
        let now = p.now;
        for _ in 0..12 {
            let h = match byte() % 4 {
                0 => 0,
                1 => 1,
                2 => u32::MAX,
                _ => byte(),
            };
            let all = pieces(h);
            let piece = &all[(byte() as usize) % all.len()];
            if byte() % 2 == 0 {
                let _ = p.client.feed(now, piece.as_bytes());
            } else {
                let _ = p.server.feed(now, piece.as_bytes());
            }
            if byte() % 3 == 0 {
                let _ = p.client.send(&message(1, "bob@example.com"));
                let _ = p.server.send(&message(2, "alice@example.com/pair"));
            }
            while p.step() {}
            let _ = (
                p.client.sm_state(),
                p.client.poll_timeout(),
                p.server.poll_timeout(),
            );
        }
    }
}
