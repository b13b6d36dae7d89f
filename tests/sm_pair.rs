//! Stream management (XEP-0198) between our client and our server, over
//! connections cut at every point: nothing lost, nothing twice.

mod support;

use proptest::prelude::*;
use support::sm_world::World;

const SCRIPT: u32 = 7;

/// The exchange without cuts: everything acknowledged, received once.
#[test]
fn a_whole_exchange_is_acknowledged() {
    let mut w = World::new(SCRIPT);
    assert!(w.connect(None));
    w.check();
    assert_eq!(w.client.acked.len(), SCRIPT as usize);
    assert_eq!(w.server.acked.len(), SCRIPT as usize);
    assert!(w.detached.is_empty() && w.saved.is_none());
}

/// How many bytes the exchange takes without cuts.
fn total_bytes() -> usize {
    // Cut after more bytes than it takes: no cut happens.
    let mut lo = 0;
    let mut hi = 1 << 16;
    while lo < hi {
        let mid = (lo + hi) / 2;
        let mut w = World::new(SCRIPT);
        if w.connect(Some(mid)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// One cut at every byte of the exchange, then a connection that
/// resumes (or, when the cut came before stream management was on,
/// starts over): every stanza acknowledged or handed back exactly once,
/// acknowledged ones received exactly once.
#[test]
fn a_cut_at_every_byte_loses_nothing() {
    let total = total_bytes();
    assert!(total > 1000, "{total}");
    let mut resumed = 0;
    for cut in 0..total {
        let mut w = World::new(SCRIPT);
        assert!(!w.connect(Some(cut)), "cut {cut}");
        assert!(w.connect(None), "after cut {cut}");
        w.expire();
        w.check();
        // The server keeps detached sessions: a client with a state
        // resumes, and then nothing is handed back; unless the cut came
        // after the server read the client's close (the session ended
        // there, everything acknowledged), which the client cannot know.
        if w.resumed > 0 || w.resume_failed > 0 {
            resumed += 1;
            assert!(w.client.undelivered.is_empty(), "cut {cut}");
            assert!(w.server.undelivered.is_empty(), "cut {cut}");
        }
    }
    assert!(resumed > total / 3, "{resumed} of {total}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Up to three cuts, and the server host expiring its detached
    /// sessions (or the client giving up its state) between some of
    /// them: still every stanza acknowledged or handed back, once.
    #[test]
    fn cuts_and_expiries_lose_nothing(
        cuts in proptest::collection::vec((0usize..4000, 0u8..4), 1..4),
    ) {
        let mut w = World::new(SCRIPT);
        for (cut, what) in cuts {
            if w.connect(Some(cut)) {
                break;
            }
            match what {
                1 => w.expire(),
                2 => w.forget_client(),
                _ => {}
            }
        }
        if !w.done_closed() {
            prop_assert!(w.connect(None));
        }
        w.expire();
        w.check();
    }
}

use support::pair::{alice_config, server_config, Pair};
use support::sm_world::{client_acked, kept, message, sm_settings};
use xmpp_sansio::client::{ClientError, ClientEvent, TlsMode};
use xmpp_sansio::error::Misbehavior;
use xmpp_sansio::jid::FullJid;
use xmpp_sansio::server::{ServerError, ServerEvent, ServerTls};
use xmpp_sansio::sm::{SmParts, SmState};
use xmpp_sansio::UsageError;

/// A world whose first connection broke after stream management was on
/// and stanzas flowed, with the client's state saved.
fn broken_world() -> World {
    let mut w = World::new(SCRIPT);
    assert!(!w.connect(Some(2000)));
    assert!(w.saved.is_some() && !w.detached.is_empty());
    w
}

fn resume_failed(w: &World) -> Vec<Option<String>> {
    w.client_log
        .iter()
        .filter_map(|e| match e {
            ClientEvent::ResumeFailed { condition } => Some(condition.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn resuming_an_unknown_id_fails_with_item_not_found_and_hands_back() {
    let mut w = broken_world();
    w.expire(); // the server host forgot it
    let unacked_before = w.client.sent.len() - w.client.acked.len();
    assert!(unacked_before > 0);
    assert!(w.connect(None));
    assert_eq!(resume_failed(&w), [Some("item-not-found".to_owned())]);
    // The client's unacknowledged stanzas came back; a new session was
    // bound and the rest of the script went through it.
    assert_eq!(w.client.undelivered.len(), unacked_before);
    assert!(w
        .client_log
        .iter()
        .any(|e| matches!(e, ClientEvent::Ready { .. })));
    w.check();
}

#[test]
fn another_user_cannot_resume_a_session() {
    let mut w = broken_world();
    let id = w.detached.keys().next().unwrap().clone();
    // Bob logs in with Alice's saved state; the host looks sessions up by
    // id alone, and hands Alice's over: the machine refuses it.
    let mut bob = alice_config("PLAIN", TlsMode::None);
    bob.jid = "bob@example.com".into();
    bob.stream_management = Some(sm_settings());
    w.client_config = std::sync::Arc::new(bob.build().unwrap());
    w.script = w.client.sent.len() as u32; // Bob sends nothing new
    let _ = w.connect(None);
    assert_eq!(resume_failed(&w), [Some("item-not-found".to_owned())]);
    assert!(!w
        .server_log
        .iter()
        .any(|e| matches!(e, ServerEvent::Resumed { .. })));
    // Alice's session came back to the host, untouched.
    assert!(w.detached.contains_key(&id), "given back");
    assert!(w
        .server_log
        .iter()
        .any(|e| matches!(e, ServerEvent::Detached(s) if s.id() == id)));
}

#[test]
fn a_session_resumes_once() {
    let mut w = broken_world();
    let saved = w.saved.clone();
    assert!(w.connect(None));
    assert_eq!(w.resumed, 1);
    w.check();
    // The same state again: that session is over.
    w.saved = saved;
    w.strict = false; // the replayed state's stanzas are accounted twice
    let _ = w.connect(None);
    assert_eq!(resume_failed(&w), [Some("item-not-found".to_owned())]);
    assert_eq!(w.resumed, 1);
}

/// Counters start just below 2^32 on both sides: `h` wraps to 0 and on,
/// and every stanza is still acknowledged exactly once.
#[test]
fn counters_wrap_at_2_to_the_32() {
    let mut w = World::new(SCRIPT);
    let jid = FullJid::new("alice@example.com/pair").unwrap();
    // The client handled u32::MAX - 1 of the server's, the server
    // u32::MAX - 2 of the client's; each knows what the other acked.
    let client = SmParts::new("wrap", jid.clone(), u32::MAX - 1, u32::MAX - 2);
    let server = SmParts::new("wrap", jid, u32::MAX - 2, u32::MAX - 1);
    w.saved = Some(SmState::from_parts(client).to_bytes().unwrap());
    w.detached
        .insert("wrap".into(), SmState::from_parts(server));
    assert!(w.connect(None));
    assert_eq!(w.resumed, 1);
    w.check();
    assert_eq!(w.client.acked.len(), SCRIPT as usize);
    assert_eq!(w.server.acked.len(), SCRIPT as usize);
    // The acknowledgements on the wire went through 4294967295 and 0.
    assert!(w
        .client_log
        .iter()
        .any(|e| matches!(e, ClientEvent::Resumed { h, .. } if *h == u32::MAX - 2)));
}

fn sm_pair() -> Pair {
    let mut c = alice_config("PLAIN", TlsMode::None);
    let mut settings = sm_settings();
    settings.max_unacked = 3;
    settings.request_every = None;
    settings.request_after = None;
    c.stream_management = Some(settings);
    let mut s = server_config("example.com", &["PLAIN"], ServerTls::None);
    s.stream_management = Some(sm_settings());
    let mut p = Pair::with_alice(c, s, None);
    p.negotiate();
    assert!(p.client.is_ready() && p.server.is_ready());
    p
}

#[test]
fn an_ack_beyond_what_was_sent_is_handled_count_too_high() {
    // The server says it handled one stanza; the client sent none.
    let mut p = sm_pair();
    let now = p.now;
    p.client
        .feed(now, b"<a xmlns='urn:xmpp:sm:3' h='1'/>")
        .unwrap();
    assert_eq!(
        p.client.error(),
        Some(&ClientError::PeerMisbehaved(
            Misbehavior::HandledCountTooHigh { h: 1, sent: 0 }
        ))
    );
    let mut out = Vec::new();
    p.client.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("<undefined-condition"), "{out}");
    assert!(
        out.contains("<handled-count-too-high xmlns='urn:xmpp:sm:3' h='1' send='0'/>"),
        "{out}"
    );

    // The same the other way, across the wrap: 2^32 - 1 is not 0.
    let mut p = sm_pair();
    let now = p.now;
    p.server
        .feed(now, b"<a xmlns='urn:xmpp:sm:3' h='4294967295'/>")
        .unwrap();
    assert_eq!(
        p.server.error(),
        Some(&ServerError::PeerMisbehaved(
            Misbehavior::HandledCountTooHigh {
                h: u32::MAX,
                sent: 0
            }
        ))
    );
}

#[test]
fn the_unacked_queue_is_bounded_and_says_so() {
    let mut p = sm_pair();
    for n in 0..3 {
        p.client.send(&message(n, "bob@example.com")).unwrap();
    }
    assert_eq!(
        p.client.send(&message(3, "bob@example.com")),
        Err(UsageError::UnackedQueueFull { stanzas: 3 })
    );
    p.client.request_ack();
    while p.step() {}
    let acked = client_acked(&p.client_events);
    assert_eq!(acked, [0, 1, 2]);
    // Room again; the stanza comes back as it was sent, its id with it.
    let m: minidom::Element =
        "<message xmlns='jabber:client' to='bob@example.com' id='m-3'><body>3</body></message>"
            .parse()
            .unwrap();
    p.client.send(&m).unwrap();
    p.client.request_ack();
    while p.step() {}
    match p.client_events.last() {
        Some(ClientEvent::Acked(v)) if v.len() == 1 => {
            assert_eq!(v[0].id().as_deref(), Some("m-3"));
            assert_eq!(v[0].to_element().unwrap(), m);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_close_hands_back_what_was_never_acknowledged() {
    let mut p = sm_pair();
    // The server host sends three stanzas; the client never reads them
    // before the server closes.
    for n in 0..3 {
        p.server
            .send(&message(1000 + n, "alice@example.com/pair"))
            .unwrap();
    }
    let now = p.now;
    p.server.close(now);
    let mut out = Vec::new();
    p.server.poll_transmit(&mut out);
    // The client's close comes without having seen them.
    p.server.feed(now, b"</stream:stream>").unwrap();
    let events: Vec<ServerEvent> = std::iter::from_fn(|| p.server.poll_event()).collect();
    let back: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Undelivered(v) => Some(v.iter().map(kept).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(back, [1000, 1001, 1002]);
    assert_eq!(events.last(), Some(&ServerEvent::Closed));
}

/// A host that ends the stream with a stream error of its own
/// (`system-shutdown`) hands a resumable session over, whole: on the
/// server `Detached` with the unacknowledged stanzas, on the client
/// `sm_state()`; nothing goes silently.
#[test]
fn a_host_error_close_hands_the_session_over() {
    use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition};
    let mut c = alice_config("PLAIN", TlsMode::None);
    c.stream_management = Some(sm_settings());
    let mut s = server_config("example.com", &["PLAIN"], ServerTls::None);
    s.stream_management = Some(sm_settings());
    let mut p = Pair::with_alice(c, s, None);
    p.negotiate();
    p.server
        .send(&message(1000, "alice@example.com/pair"))
        .unwrap();
    p.client.send(&message(1, "bob@example.com")).unwrap();
    p.server
        .close_with_error(StreamError::new(StreamErrorCondition::SystemShutdown))
        .unwrap();
    let events: Vec<ServerEvent> = std::iter::from_fn(|| p.server.poll_event()).collect();
    let detached = events.iter().find_map(|e| match e {
        ServerEvent::Detached(s) => Some(s.clone()),
        _ => None,
    });
    assert_eq!(detached.map(|s| s.unacked().len()), Some(1), "{events:?}");
    p.client
        .close_with_error(StreamError::new(StreamErrorCondition::SystemShutdown))
        .unwrap();
    assert_eq!(p.client.sm_state().map(|s| s.unacked().len()), Some(1));
}
