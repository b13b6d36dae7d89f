//! The captured Prosody 13 BOSH exchanges (`tests/fixtures/prosody/
//! prosody13_bosh_*.txt`, Strophe.js in Chromium, one HTTP body per line)
//! replayed against each role over BOSH (`BoshXmppClient`,
//! `BoshXmppServer`).
//!
//! - Client: fed Prosody's response bodies, our client must POST the
//!   payloads Strophe.js POSTed, equal as XML (IQ ids aside: the bind
//!   reply's id is rewritten to ours), with the capture's SCRAM nonce
//!   (`replay_nonce`), the same session creation attributes (`to`,
//!   `xml:lang`, `ver`, `wait`, `hold`, `xmpp:version`) and the restart
//!   (`xmpp:restart='true'` with `to` and `xml:lang`), and reach the same
//!   outcome. Strophe.js asked for an RFC 3921 session Prosody marked
//!   optional; our client does not (RFC 6121), so that payload is not
//!   expected of it. Prosody's answers to empty polls carry nothing and
//!   are not needed: our client's empty polls are answered empty when a
//!   later request is answered (a manager answers held requests in order).
//! - Server: fed Strophe.js's request bodies (Prosody's `sid` rewritten
//!   to ours), it must log alice in (the host knows alice/secret; SCRAM
//!   answered with Prosody's salt and iteration count, and Prosody's
//!   server nonce, so the captured proofs verify), answer the SASL steps
//!   as Prosody did, and refuse the wrong password with `not-authorized`.

mod support;

use std::sync::Arc;
use std::time::Instant;

use minidom::Element;
use support::bosh_net::tls;
use support::prosody_web::{answer, assert_alice_logged_in, ScramCapture};
use xmpp_sansio::bosh::{
    Body, BodyType, BoshClientConfig, BoshManagerConfig, BoshXmppClient, BoshXmppServer,
    BoshXmppServerEvent, Reply, NS_HTTPBIND,
};
use xmpp_sansio::client::{
    Client, ClientError, ClientEvent, ClientSettings, Credentials, PeerRefusal, TlsMode,
};
use xmpp_sansio::ns;
use xmpp_sansio::sasl::scram::ScramServer;
use xmpp_sansio::sasl::{SaslCondition, ScramHash};
use xmpp_sansio::server::{
    BindAnswer, OfferRule, ServerEvent, ServerMechanismFactory, ServerSettings, ServerTls,
};
use xmpp_sansio::xml::Limits;
use xmpp_sansio::{DeterministicRandom, Framing};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dir {
    C,
    S,
}

/// The `C:`/`S:` bodies of a capture, in capture order (a held
/// request's answer comes after later requests).
fn load(file: &str) -> Vec<(Dir, String)> {
    let path = format!(
        "{}/tests/fixtures/prosody/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|l| {
            if let Some(m) = l.strip_prefix("C: ") {
                Some((Dir::C, m.to_owned()))
            } else {
                l.strip_prefix("S: ").map(|m| (Dir::S, m.to_owned()))
            }
        })
        .collect()
}

fn body(text: &str) -> Body {
    Body::parse(text.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Equal as XML, an IQ's id aside.
fn same(ours: &Element, theirs: &Element) -> bool {
    let strip = |e: &Element| {
        let mut e = e.clone();
        if e.name() == "iq" {
            e.attrs_mut().remove(rxml::Namespace::none(), "id");
        }
        e
    };
    strip(ours) == strip(theirs)
}

fn is_session(el: &Element) -> bool {
    el.name() == "iq" && el.get_child("session", ns::SESSION).is_some()
}

fn payloads(lines: &[(Dir, String)], dir: Dir) -> Vec<Element> {
    lines
        .iter()
        .filter(|(d, _)| *d == dir)
        .flat_map(|(_, b)| body(b).payloads)
        .collect()
}

fn scram_of(lines: &[(Dir, String)]) -> Option<ScramCapture> {
    let auth = payloads(lines, Dir::C)
        .into_iter()
        .find(|e| e.is("auth", ns::SASL))?;
    let challenge = payloads(lines, Dir::S)
        .into_iter()
        .find(|e| e.is("challenge", ns::SASL))?;
    ScramCapture::of(&auth, &challenge)
}

// ---------------------------------------------------------------------
// The client role

struct ClientRun {
    events: Vec<ClientEvent>,
    /// Our request bodies, parsed.
    sent: Vec<Body>,
}

fn replay_client(file: &str, mechanism: &str, password: &str) -> (ClientRun, Vec<(Dir, String)>) {
    let lines = load(file);
    let mut c = ClientSettings::new("alice@localhost", Credentials::password(password));
    c.framing = Framing::Bosh;
    c.tls = TlsMode::Direct; // plain HTTP that Prosody took as secure
    c.policy.only = Some(vec![mechanism.into()]);
    c.resource = Some("web".into());
    c.lang = Some("en".into());
    c.replay_nonce = scram_of(&lines).map(|s| s.client_nonce);
    let now = Instant::now();
    let client = Client::with_random(
        c.build().unwrap(),
        Box::new(DeterministicRandom::new(0)),
        now,
    )
    .direct_tls(tls());
    let creation = body(&lines[0].1);
    let mut bc = BoshClientConfig::new("ignored");
    bc.wait = creation.wait.unwrap();
    bc.hold = creation.hold.unwrap();
    let mut client =
        BoshXmppClient::new(client, bc, &mut DeterministicRandom::new(5), now).unwrap();
    let their_bind_id = payloads(&lines, Dir::C)
        .iter()
        .find(|e| e.get_child("bind", ns::BIND).is_some())
        .and_then(|e| e.attr("id").map(str::to_owned));
    // The answer to the session request our client does not make.
    let session_ids: Vec<String> = payloads(&lines, Dir::C)
        .iter()
        .filter(|e| is_session(e))
        .filter_map(|e| e.attr("id").map(str::to_owned))
        .collect();
    let answers_session = |b: &Body| {
        b.payloads.len() == 1
            && b.payloads[0].name() == "iq"
            && b.payloads[0]
                .attr("id")
                .is_some_and(|id| session_ids.iter().any(|s| s == id))
    };
    // Prosody's answers with something in them, in order.
    let mut answers: std::collections::VecDeque<String> = lines
        .iter()
        .filter(|(d, b)| {
            let parsed = body(b);
            *d == Dir::S
                && !answers_session(&parsed)
                && (!parsed.payloads.is_empty()
                    || parsed.sid.is_some() && parsed.wait.is_some()
                    || parsed.kind == Some(BodyType::Terminate))
        })
        .map(|(_, b)| b.clone())
        .collect();
    // The stanzas Strophe.js sent once online, and whether it terminated.
    let mut run = ClientRun {
        events: Vec::new(),
        sent: Vec::new(),
    };
    let mut polls: Vec<u64> = Vec::new();
    let mut online = std::collections::VecDeque::new();
    let mut after_bind = false;
    for (d, b) in &lines {
        let parsed = body(b);
        if *d != Dir::C {
            continue;
        }
        let mut stanzas = Vec::new();
        for p in parsed.payloads {
            if p.get_child("bind", ns::BIND).is_some() {
                after_bind = true;
            } else if after_bind && !is_session(&p) {
                stanzas.push(p);
            }
        }
        let terminate = parsed.kind == Some(BodyType::Terminate);
        if !stanzas.is_empty() || terminate {
            online.push_back((stanzas, terminate));
        }
    }
    let empty = format!("<body xmlns='{NS_HTTPBIND}'/>");
    loop {
        let mut moved = false;
        while let Some(req) = client.poll_request(now) {
            moved = true;
            let b = body(std::str::from_utf8(&req.body).unwrap());
            let control = b.sid.is_none() || b.restart || b.kind == Some(BodyType::Terminate);
            let real = control || !b.payloads.is_empty();
            run.sent.push(b);
            if !real {
                polls.push(req.rid);
                continue;
            }
            // Held polls before it are answered first (empty).
            for rid in polls.drain(..) {
                client.handle_response(now, rid, empty.as_bytes()).unwrap();
            }
            let Some(mut answer) = answers.pop_front() else {
                break;
            };
            if let Some(id) = &their_bind_id {
                answer = answer.replace(&format!("id='{id}'"), "id='bind_1'");
            }
            let _ = client.handle_response(now, req.rid, answer.as_bytes());
        }
        while let Some(ev) = client.poll_event() {
            moved = true;
            run.events.push(ev);
        }
        if !moved && client.is_ready() {
            // Online: what Strophe.js sent from here, one request body at
            // a time (presence and the message, then its terminate with
            // the unavailable presence).
            if let Some((stanzas, terminate)) = online.pop_front() {
                moved = true;
                for p in &stanzas {
                    client.send(now, p).unwrap();
                }
                if terminate {
                    client.close(now);
                }
            }
        }
        if !moved {
            break;
        }
    }
    (run, lines)
}

/// Our payloads against Strophe.js's, and the control attributes.
fn assert_same_requests(file: &str, run: &ClientRun, lines: &[(Dir, String)]) {
    let theirs: Vec<Element> = payloads(lines, Dir::C)
        .into_iter()
        .filter(|e| !is_session(e))
        .collect();
    let ours: Vec<Element> = run.sent.iter().flat_map(|b| b.payloads.clone()).collect();
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{file}: ours {ours:#?}\ntheirs {theirs:#?}"
    );
    for (a, b) in ours.iter().zip(&theirs) {
        assert!(same(a, b), "{file}:\nours   {a:?}\ntheirs {b:?}");
    }
    let (ours, theirs) = (&run.sent[0], body(&lines[0].1));
    assert_eq!(ours.to, theirs.to, "{file}");
    assert_eq!(ours.lang, theirs.lang, "{file}");
    assert_eq!(ours.ver, theirs.ver, "{file}");
    assert_eq!(ours.wait, theirs.wait, "{file}");
    assert_eq!(ours.hold, theirs.hold, "{file}");
    assert_eq!(ours.xmpp_version, theirs.xmpp_version, "{file}");
    let restart = |bodies: Vec<Body>| {
        bodies
            .into_iter()
            .find(|b| b.restart)
            .map(|b| (b.to, b.lang))
    };
    let theirs: Vec<Body> = lines
        .iter()
        .filter(|(d, _)| *d == Dir::C)
        .map(|(_, b)| body(b))
        .collect();
    let ours_restart = restart(run.sent.clone());
    assert!(
        ours_restart.is_some() == restart(theirs.clone()).is_some(),
        "{file}"
    );
    assert_eq!(ours_restart, restart(theirs.clone()), "{file}");
    let terminates = |b: &[Body]| {
        b.iter()
            .filter(|b| b.kind == Some(BodyType::Terminate))
            .count()
    };
    assert_eq!(terminates(&run.sent), terminates(&theirs), "{file}");
}

fn client_error(events: &[ClientEvent]) -> Option<&ClientError> {
    events.iter().find_map(|e| match e {
        ClientEvent::Error(e) => Some(e),
        _ => None,
    })
}

#[test]
fn the_client_replays_prosodys_bosh_logins() {
    for (file, mechanism) in [
        ("prosody13_bosh_scram.txt", "SCRAM-SHA-1"),
        ("prosody13_bosh_plain.txt", "PLAIN"),
        ("prosody13_bosh_scram_idle_wait.txt", "SCRAM-SHA-1"),
    ] {
        let (run, lines) = replay_client(file, mechanism, "secret");
        assert_eq!(client_error(&run.events), None, "{file}: {:?}", run.events);
        assert!(
            run.events.iter().any(|e| matches!(
                e, ClientEvent::Ready { jid } if jid.as_str() == "alice@localhost/web"
            )),
            "{file}: {:?}",
            run.events
        );
        assert!(
            run.events
                .iter()
                .any(|e| matches!(e, ClientEvent::Stanza(s) if s.name() == "message")),
            "{file}: the message to itself came back"
        );
        assert_same_requests(file, &run, &lines);
        assert_eq!(run.events.last(), Some(&ClientEvent::Closed), "{file}");
    }
}

#[test]
fn the_client_replays_a_wrong_password() {
    let file = "prosody13_bosh_wrong_password.txt";
    let (run, lines) = replay_client(file, "SCRAM-SHA-1", "wrong");
    match client_error(&run.events) {
        Some(ClientError::Refused(PeerRefusal::Authentication { condition, .. })) => {
            assert_eq!(*condition, Some(SaslCondition::NotAuthorized))
        }
        other => panic!("{other:?}"),
    }
    // Strophe.js's payloads (auth, response) are ours too; after the
    // failure our client terminates the session (Strophe.js's page just
    // stopped: no terminate in the capture).
    let theirs = payloads(&lines, Dir::C);
    let ours: Vec<Element> = run.sent.iter().flat_map(|b| b.payloads.clone()).collect();
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert!(same(a, b), "ours {a:?}\ntheirs {b:?}");
    }
    assert_eq!(
        run.sent.last().and_then(|b| b.kind),
        Some(BodyType::Terminate)
    );
}

// ---------------------------------------------------------------------
// The server role

struct ServerRun {
    events: Vec<ServerEvent>,
    /// The payloads of our responses, in order of answer.
    sent: Vec<Element>,
}

fn replay_server(file: &str) -> ServerRun {
    let lines = load(file);
    let scram = scram_of(&lines);
    let mut s = ServerSettings::new("localhost");
    s.framing = Framing::Bosh;
    s.tls = ServerTls::Direct;
    s.lang = Some("en".into());
    s.mechanisms = ["SCRAM-SHA-1", "PLAIN", "OAUTHBEARER"]
        .map(String::from)
        .to_vec();
    if let Some(scram) = &scram {
        let nonce = scram.server_nonce.clone();
        s.registry.register(ServerMechanismFactory::new(
            "SCRAM-SHA-1",
            OfferRule::default(),
            move |i| {
                let m = ScramServer::builder(ScramHash::Sha1, false, i.offer)
                    .downgrade_protection(i.downgrade_protection)
                    .nonce(nonce.clone())
                    .build(i.rng)?;
                Ok(Box::new(m))
            },
        ));
    }
    let mut cm = BoshXmppServer::new(
        Arc::new(s.build().unwrap()),
        BoshManagerConfig::default(),
        Box::new(DeterministicRandom::new(2)),
        Box::new(|| Box::new(DeterministicRandom::new(3))),
    )
    .unwrap();
    cm.set_tls(Some(tls()));
    let now = Instant::now();
    let their_sid = body(&lines[1].1).sid.unwrap();
    let mut our_sid = None::<String>;
    let mut run = ServerRun {
        events: Vec::new(),
        sent: Vec::new(),
    };
    let take = |bytes: &[u8], run: &mut ServerRun| {
        run.sent
            .extend(body(std::str::from_utf8(bytes).unwrap()).payloads);
    };
    for (dir, b) in &lines {
        if *dir != Dir::C {
            continue;
        }
        let b = match &our_sid {
            Some(sid) => b.replace(&their_sid, sid),
            None => b.clone(),
        };
        match cm.handle_request(now, b.as_bytes()) {
            Reply::Immediate(r) | Reply::Refused { body: r, .. } => take(&r, &mut run),
            Reply::Held(_) => {}
        }
        loop {
            let mut moved = false;
            while let Some(ev) = cm.poll_event() {
                moved = true;
                match ev {
                    BoshXmppServerEvent::Created { sid } => our_sid = Some(sid),
                    BoshXmppServerEvent::Session { sid, event } => {
                        match &event {
                            ServerEvent::Credentials(req) => {
                                let a = answer(req, scram.as_ref());
                                cm.answer(now, &sid, a).unwrap();
                            }
                            ServerEvent::Bind { resource, .. } => cm
                                .answer(now, &sid, BindAnswer::Accept(resource.clone()))
                                .unwrap(),
                            _ => {}
                        }
                        run.events.push(event);
                    }
                    _ => {}
                }
            }
            while let Some((_, r)) = cm.poll_response() {
                moved = true;
                take(&r, &mut run);
            }
            if !moved {
                break;
            }
        }
    }
    run
}

#[test]
fn the_server_logs_in_the_captured_bosh_clients() {
    for file in [
        "prosody13_bosh_scram.txt",
        "prosody13_bosh_plain.txt",
        "prosody13_bosh_scram_idle_wait.txt",
    ] {
        let run = replay_server(file);
        let error = run
            .events
            .iter()
            .find(|e| matches!(e, ServerEvent::Error(_)));
        assert!(error.is_none(), "{file}: {error:?}");
        assert_alice_logged_in(&run.events, file);
        // The terminate closed the stream cleanly.
        assert_eq!(run.events.last(), Some(&ServerEvent::Closed), "{file}");
        // SASL answered as Prosody did (challenge: nonce, salt,
        // iterations; success: its v=).
        let lines = load(file);
        let sasl = |els: Vec<Element>| -> Vec<Element> {
            els.into_iter()
                .filter(|e| e.ns() == ns::SASL && e.name() != "mechanisms")
                .collect()
        };
        let prosodys = sasl(payloads(&lines, Dir::S));
        let ours = sasl(run.sent.clone());
        assert_eq!(ours.len(), prosodys.len(), "{file}: {ours:?}");
        for (a, b) in ours.iter().zip(&prosodys) {
            assert_eq!(a.name(), b.name(), "{file}");
            assert_eq!(a.text(), b.text(), "{file}: {}", a.name());
        }
    }
}

#[test]
fn the_server_refuses_the_captured_wrong_password() {
    let run = replay_server("prosody13_bosh_wrong_password.txt");
    assert!(run.events.iter().any(|e| matches!(
        e,
        ServerEvent::AuthenticationFailed {
            condition: SaslCondition::NotAuthorized,
            ..
        }
    )));
    assert!(!run
        .events
        .iter()
        .any(|e| matches!(e, ServerEvent::Authenticated { .. })));
    let failure = run
        .sent
        .iter()
        .find(|e| e.is("failure", ns::SASL))
        .expect("a SASL failure in a response");
    assert!(failure.get_child("not-authorized", ns::SASL).is_some());
}
