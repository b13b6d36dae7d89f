//! Stream management against Prosody 13's smacks, replayed: the three
//! captures of `tests/fixtures/prosody_sm/` (made by the client tool with
//! `--sm --sm-state-file`, see their headers) are one session's life:
//! enable and a message to self then a dropped connection, a resumption
//! in a new process (Prosody sends the message again), and a resumption
//! of that session once it was closed (item-not-found, a new session).
//!
//! The client replays them byte for byte, each from the state the one
//! before left (through `SmState`'s bytes, as the tool's file). Our
//! server is fed the client's side of the same exchanges and must answer
//! as Prosody did, element for element (ids and Prosody's `<delay/>`
//! aside).

mod support;

use std::time::Instant;

use minidom::Element;
use support::pair::Store;
use support::{elements_of, Dir, Entry, Transcript};
use xmpp_sansio::client::{Client, ClientEvent, ClientSettings, Credentials};
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::server::{BindAnswer, ResumeAnswer, Server, ServerEvent, ServerSettings};
use xmpp_sansio::sm::{SmSettings, SmState};
use xmpp_sansio::{ns, DeterministicRandom, TlsInfo};

const PROSODY_ID: &str = "9xSJqP-9w2it";

fn load(name: &str) -> Transcript {
    Transcript::load(&format!("prosody_sm/{name}.txt"))
}

fn client(state: Option<&[u8]>) -> Client {
    let mut c = ClientSettings::new("alice@localhost", Credentials::password("secret"));
    // The captures are RFC 6120 logins (Prosody offered SASL2 too).
    c.sasl2 = xmpp_sansio::sasl2::Sasl2Policy::Never;
    c.resource = Some("sm-capture".into());
    c.policy.only = Some(vec!["PLAIN".into()]);
    c.stream_management = Some(SmSettings::new());
    let client = Client::with_random(
        c.build().unwrap(),
        Box::new(DeterministicRandom::new(0)),
        Instant::now(),
    );
    match state {
        Some(b) => client.resume_session(SmState::from_bytes(b).unwrap()),
        None => client,
    }
}

/// What a client replay gave: its bytes, the capture's, its events, and
/// the state it would have saved last (after each event, as the tool).
struct ClientRun {
    sent: Vec<u8>,
    expected: Vec<u8>,
    events: Vec<ClientEvent>,
    saved: Option<Vec<u8>>,
}

fn replay_client(t: &Transcript, mut client: Client) -> ClientRun {
    let now = Instant::now();
    let mut run = ClientRun {
        sent: Vec::new(),
        expected: Vec::new(),
        events: Vec::new(),
        saved: None,
    };
    let drain = |client: &mut Client, run: &mut ClientRun| loop {
        client.poll_transmit(&mut run.sent);
        let Some(ev) = client.poll_event() else { break };
        if let ClientEvent::StartTls { .. } = ev {
            client
                .tls_established(now, TlsInfo::without_binding(TlsVersion::Tls13))
                .unwrap();
        }
        if let Some(st) = client.sm_state() {
            run.saved = Some(st.to_bytes().unwrap());
        }
        run.events.push(ev);
    };
    drain(&mut client, &mut run);
    for entry in &t.entries {
        match entry {
            Entry::Data(Dir::C, bytes) => {
                run.expected.extend_from_slice(bytes);
                let line = String::from_utf8(bytes.clone()).unwrap();
                if client.is_ready() && line.ends_with("</stream:stream>") {
                    client.close(now);
                } else if client.is_ready() && line.starts_with("<message") {
                    // The host's message to self.
                    for el in elements_of(&line) {
                        client.send(&el).unwrap();
                    }
                }
            }
            Entry::Data(Dir::S, bytes) => {
                client.feed(now, bytes).unwrap();
            }
            Entry::Note(_) => {}
        }
        drain(&mut client, &mut run);
    }
    if !client.is_closed() {
        // The capture ends with the dropped connection.
        client.connection_lost(now);
        drain(&mut client, &mut run);
    }
    run
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_client_replays_a_session_life_with_prosody_byte_for_byte() {
    // 1. Enable, a message to self, the connection dropped.
    let a = replay_client(&load("prosody13_sm_enable_message_hangup"), client(None));
    assert_eq!(text(&a.sent), text(&a.expected));
    assert!(a.events.iter().any(|e| matches!(
        e,
        ClientEvent::StreamManagementEnabled { id: Some(id), max: Some(600), .. } if id == PROSODY_ID
    )));
    let state = SmState::from_bytes(a.saved.as_deref().unwrap()).unwrap();
    assert_eq!(
        (state.id(), state.handled(), state.acked()),
        (PROSODY_ID, 0, 0)
    );
    assert_eq!(state.unacked().len(), 1, "the message, never acknowledged");

    // 2. A new process resumes: Prosody handled the message (h=1) and
    // sends it back, queued while the session was detached.
    let b = replay_client(
        &load("prosody13_sm_resume_retransmit"),
        client(a.saved.as_deref()),
    );
    assert_eq!(text(&b.sent), text(&b.expected));
    let acked: Vec<&ClientEvent> = b
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Acked(_)))
        .collect();
    assert!(matches!(acked[..], [ClientEvent::Acked(v)] if v.len() == 1));
    assert!(b
        .events
        .iter()
        .any(|e| matches!(e, ClientEvent::Resumed { h: 1, jid } if jid.as_str() == "alice@localhost/sm-capture")));
    let echoes = b
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Stanza(el) if el.is("message", ns::JABBER_CLIENT)))
        .count();
    assert_eq!(echoes, 1, "the message arrived once");
    assert!(!b
        .events
        .iter()
        .any(|e| matches!(e, ClientEvent::Ready { .. } | ClientEvent::Undelivered(_))));
    let state = SmState::from_bytes(b.saved.as_deref().unwrap()).unwrap();
    assert_eq!(
        (state.handled(), state.acked(), state.unacked().len()),
        (1, 1, 0)
    );

    // 3. That session ended with a close: item-not-found, a new session.
    let c = replay_client(
        &load("prosody13_sm_resume_after_close_failed"),
        client(b.saved.as_deref()),
    );
    assert_eq!(text(&c.sent), text(&c.expected));
    assert!(c.events.iter().any(|e| matches!(
        e,
        ClientEvent::ResumeFailed { condition: Some(c) } if c == "item-not-found"
    )));
    assert!(c
        .events
        .iter()
        .any(|e| matches!(e, ClientEvent::Ready { .. })));
    assert!(!c
        .events
        .iter()
        .any(|e| matches!(e, ClientEvent::Undelivered(_))));
}

/// Our server, fed the client's side of a capture; `previd` of a
/// `<resume/>` is rewritten to `id` (ours, not Prosody's). Returns what
/// it sent after the last restart (the session's elements) and its
/// events.
fn replay_server(
    t: &Transcript,
    resume: Option<SmState>,
    id: Option<&str>,
) -> (Server, Vec<Element>, Vec<ServerEvent>) {
    let now = Instant::now();
    let mut s = ServerSettings::new("localhost");
    s.mechanisms = vec!["PLAIN".into()];
    s.stream_management = Some(SmSettings::server());
    let mut server = Server::with_random(
        s.build().unwrap(),
        Box::new(DeterministicRandom::new(7)),
        now,
    );
    let store = Store::new(&[("alice", "secret")]);
    let mut resume = resume;
    let mut out = Vec::new();
    let mut events = Vec::new();
    for entry in &t.entries {
        let Entry::Data(Dir::C, bytes) = entry else {
            continue;
        };
        let mut line = text(bytes);
        if let Some(id) = id {
            line = line.replace(PROSODY_ID, id);
        }
        server.feed(now, line.as_bytes()).unwrap();
        loop {
            while let Some(ev) = server.poll_event() {
                match &ev {
                    ServerEvent::StartTls { .. } => server
                        .tls_established(now, TlsInfo::without_binding(TlsVersion::Tls13))
                        .unwrap(),
                    ServerEvent::Credentials(req) => {
                        server.answer_credentials(now, store.answer(req)).unwrap()
                    }
                    ServerEvent::Bind { resource, .. } => server
                        .answer_bind(now, BindAnswer::Accept(resource.clone()))
                        .unwrap(),
                    ServerEvent::Resume(_) => {
                        let answer = resume
                            .take()
                            .map_or(ResumeAnswer::NotFound, ResumeAnswer::Found);
                        server.answer_resume(now, answer).unwrap();
                    }
                    // The host routes the message to self back to its
                    // sender, this session.
                    ServerEvent::Stanza(el) if el.is("message", ns::JABBER_CLIENT) => {
                        server.send(el).unwrap()
                    }
                    _ => {}
                }
                events.push(ev);
            }
            let mut bytes = Vec::new();
            server.poll_transmit(&mut bytes);
            if bytes.is_empty() {
                break;
            }
            out.extend_from_slice(&bytes);
        }
    }
    if !server.is_closed() {
        server.connection_lost(now);
        events.extend(std::iter::from_fn(|| server.poll_event()));
    }
    let all = text(&out);
    let last = all.rfind("<stream:features").unwrap_or(0);
    let session = support::elements_of(&all[last..])
        .into_iter()
        .filter(|e| !e.is("features", ns::STREAM))
        .collect();
    (server, session, events)
}

/// The element names (and `h`s) of Prosody's side after its last
/// features, in order.
fn prosodys(t: &Transcript) -> Vec<(String, Option<String>)> {
    let s = text(&t.bytes_of(Dir::S));
    let last = s.rfind("<stream:features").unwrap();
    shape(
        &elements_of(&s[last..])
            .into_iter()
            .filter(|e| !e.is("features", ns::STREAM))
            .collect::<Vec<_>>(),
    )
}

fn shape(els: &[Element]) -> Vec<(String, Option<String>)> {
    els.iter()
        .map(|e| (e.name().to_owned(), e.attr("h").map(str::to_owned)))
        .collect()
}

#[test]
fn our_server_answers_the_captured_client_as_prosody_did() {
    // 1. Enable, the message, the connection dropped: the session detaches
    // with the echo unacknowledged.
    let t = load("prosody13_sm_enable_message_hangup");
    let (_, session, events) = replay_server(&t, None, None);
    // Prosody's echo was not on the wire before the drop (it waited in
    // the detached session, as in step 2); ours went out at once, and
    // was lost with the connection all the same.
    assert_eq!(shape(&session[..2]), prosodys(&t));
    assert!(session[2].is("message", ns::JABBER_CLIENT));
    let enabled = session.iter().find(|e| e.name() == "enabled").unwrap();
    assert_eq!(enabled.attr("resume"), Some("true"));
    assert_eq!(enabled.attr("max"), Some("300"));
    let id = enabled.attr("id").unwrap().to_owned();
    assert!(id.len() >= 20, "an unpredictable id: {id}");
    let state = events
        .iter()
        .find_map(|e| match e {
            ServerEvent::Detached(s) => Some(s.clone()),
            _ => None,
        })
        .expect("detached");
    assert_eq!(
        (state.id(), state.handled(), state.unacked().len()),
        (id.as_str(), 1, 1)
    );

    // 2. The resumption: <resumed h='1'/>, the echo again, <r/>; the
    // client's <a h='1'/> acknowledges it.
    let t = load("prosody13_sm_resume_retransmit");
    let (_, session, events) = replay_server(&t, Some(state), Some(&id));
    assert_eq!(shape(&session), prosodys(&t));
    assert!(session[0].is("resumed", ns::SM) && session[0].attr("previd") == Some(id.as_str()));
    assert_eq!(
        session[1]
            .get_child("body", ns::JABBER_CLIENT)
            .unwrap()
            .text(),
        "capture one"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, ServerEvent::Resumed { h: 0, .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, ServerEvent::Acked(v) if v.len() == 1)));
    assert!(!events
        .iter()
        .any(|e| matches!(e, ServerEvent::Undelivered(_) | ServerEvent::Detached(_))));

    // 3. The session is over: item-not-found, exactly Prosody's bytes;
    // then a new session, enabled.
    let t = load("prosody13_sm_resume_after_close_failed");
    let (_, session, _) = replay_server(&t, None, Some(&id));
    assert_eq!(shape(&session), prosodys(&t));
    let ours = text(&{
        let mut v = Vec::new();
        xmpp_sansio::xml::StreamWriter::new(ns::JABBER_CLIENT)
            .write_element(&mut v, &session[0])
            .unwrap();
        v
    });
    assert!(text(&t.bytes_of(Dir::S)).contains(&ours), "{ours}");
}
