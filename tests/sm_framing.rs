//! Stream management over every framing: a session enabled over
//! WebSocket (RFC 7395) is cut, then resumed over WebSocket again and
//! over TCP, and a TCP session is resumed over WebSocket. The kept
//! stanzas are standalone (`xmlns` on each), so what is retransmitted is
//! a well-formed message in either framing, and each stanza arrives once.

mod support;

use minidom::Element;
use support::pair::{alice_config, server_config, Pair};
use support::sm_world::{client_acked, message, number, sm_settings};
use xmpp_sansio::client::{Client, ClientEvent, TlsMode};
use xmpp_sansio::server::{ResumeAnswer, ServerEvent, ServerTls};
use xmpp_sansio::sm::SmState;
use xmpp_sansio::{DeterministicRandom, Framing};

fn pair(framing: Framing) -> Pair {
    let mut c = alice_config("PLAIN", TlsMode::None);
    c.stream_management = Some(sm_settings());
    c.framing = framing;
    let mut s = server_config("example.com", &["PLAIN"], ServerTls::None);
    s.stream_management = Some(sm_settings());
    s.framing = framing;
    Pair::with_alice(c, s, None)
}

/// Logs in over `framing`, sends two stanzas the server never
/// acknowledges (the wire is cut before they arrive), and returns the
/// client's saved state and the server's detached one.
fn cut_session(framing: Framing) -> (Vec<u8>, SmState) {
    let mut p = pair(framing);
    p.negotiate();
    assert!(p.client.is_ready(), "{:?}", p.client_error());
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::StreamManagementEnabled { id: Some(_), .. })));
    for n in [1, 2] {
        p.client.send(&message(n, "bob@example.com")).unwrap();
    }
    // The connection breaks before a byte of them moves.
    let now = p.now;
    p.client.connection_lost(now);
    p.server.connection_lost(now);
    let detached = std::iter::from_fn(|| p.server.poll_event())
        .find_map(|e| match e {
            ServerEvent::Detached(s) => Some(s),
            _ => None,
        })
        .expect("the server detaches the session");
    let saved = p.client.sm_state().expect("resumable").to_bytes().unwrap();
    (saved, detached)
}

/// Resumes over `framing`: returns the numbers of the stanzas the new
/// server received, the numbers the client saw acknowledged, and every
/// message of the new connection (WebSocket) for inspection.
fn resume(framing: Framing, saved: &[u8], detached: SmState) -> (Vec<u32>, Vec<u32>, Vec<Vec<u8>>) {
    let mut p = pair(framing);
    let config = {
        let mut c = alice_config("PLAIN", TlsMode::None);
        c.stream_management = Some(sm_settings());
        c.framing = framing;
        std::sync::Arc::new(c.build().unwrap())
    };
    p.client = Client::with_random(config, Box::new(DeterministicRandom::new(9)), p.now)
        .resume_session(SmState::from_bytes(saved).unwrap());
    let mut detached = Some(detached);
    for _ in 0..200 {
        let busy = p.step();
        if let Some(ServerEvent::Resume(_)) = p.server_events.last() {
            if let Some(state) = detached.take() {
                let now = p.now;
                p.server
                    .answer_resume(now, ResumeAnswer::Found(state))
                    .unwrap();
                continue;
            }
        }
        if !busy {
            break;
        }
    }
    assert!(
        p.client_events
            .iter()
            .any(|e| matches!(e, ClientEvent::Resumed { .. })),
        "{:?} / {:?}",
        p.client_events,
        p.server_events
    );
    p.client.request_ack();
    while p.step() {}
    let received = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Stanza(el) => Some(number(el)),
            _ => None,
        })
        .collect();
    let acked = client_acked(&p.client_events);
    (received, acked, p.up_messages.clone())
}

#[test]
fn websocket_session_resumes_over_websocket() {
    let (saved, detached) = cut_session(Framing::WebSocket);
    let (received, acked, up) = resume(Framing::WebSocket, &saved, detached);
    assert_eq!(received, [1, 2]);
    assert_eq!(acked, [1, 2]);
    // Each retransmitted stanza is one message, namespaced on its own.
    let stanzas: Vec<Element> = up
        .iter()
        .map(|m| std::str::from_utf8(m).unwrap().parse::<Element>().unwrap())
        .filter(|el| el.name() == "message")
        .collect();
    assert_eq!(stanzas.len(), 2);
    assert!(stanzas.iter().all(|el| el.ns() == "jabber:client"));
}

#[test]
fn tcp_session_resumes_over_websocket() {
    let (saved, detached) = cut_session(Framing::Tcp);
    let (received, acked, _) = resume(Framing::WebSocket, &saved, detached);
    assert_eq!(received, [1, 2]);
    assert_eq!(acked, [1, 2]);
}

#[test]
fn websocket_session_resumes_over_tcp() {
    let (saved, detached) = cut_session(Framing::WebSocket);
    let (received, acked, _) = resume(Framing::Tcp, &saved, detached);
    assert_eq!(received, [1, 2]);
    assert_eq!(acked, [1, 2]);
}
