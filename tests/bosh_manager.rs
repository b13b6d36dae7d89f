//! `BoshManager` fed the requests of XEP-0124 and XEP-0206 (section named
//! at each), then rule breakers: each refused with its typed error and
//! terminal condition.

use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_sansio::bosh::{
    Body, BodyType, BoshManager, BoshManagerConfig, BoshUsageError, Condition, ManagerError,
    ManagerEvent, Reply, RequestHandle, TerminateReason,
};
use xmpp_sansio::xml::Limits;
use xmpp_sansio::DeterministicRandom;

const CLIENT: &str = "jabber:client";
const STREAM: &str = "http://etherx.jabber.org/streams";
const RID: u64 = 1573741820;

/// XEP-0206 section 3, "Requesting a session with a version attribute".
const CREATE: &str = "<body content='text/xml; charset=utf-8'
      hold='1'
      rid='1573741820'
      to='jabber.org'
      route='xmpp:jabber.org:9999'
      secure='true'
      wait='60'
      xml:lang='en'
      xmpp:version='1.0'
      xmlns='http://jabber.org/protocol/httpbind'
      xmlns:xmpp='urn:xmpp:xbosh'
      xmlns:stream='http://etherx.jabber.org/streams'/>";

fn manager(config: BoshManagerConfig) -> BoshManager {
    BoshManager::new(config, Box::new(DeterministicRandom::new(9)))
}

fn parse(bytes: &[u8]) -> Body {
    Body::parse(bytes, &Limits::default()).expect("the manager writes valid bodies")
}

fn events(m: &mut BoshManager) -> Vec<ManagerEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn responses(m: &mut BoshManager) -> Vec<(RequestHandle, Vec<u8>)> {
    std::iter::from_fn(|| m.poll_response()).collect()
}

fn features() -> Element {
    Element::builder("features", STREAM)
        .append(Element::bare("bind", "urn:ietf:params:xml:ns:xmpp-bind"))
        .build()
}

fn message(text: &str) -> Element {
    Element::builder("message", CLIENT)
        .append(Element::builder("body", CLIENT).append(text).build())
        .build()
}

fn request(sid: &str, rid: u64, payload: &str) -> Vec<u8> {
    format!("<body rid='{rid}' sid='{sid}' xmlns='http://jabber.org/protocol/httpbind'>{payload}</body>")
        .into_bytes()
}

fn msg(text: &str) -> String {
    format!("<message xmlns='jabber:client'><body>{text}</body></message>")
}

/// A session created and answered with features: its sid.
fn session(m: &mut BoshManager, now: Instant) -> String {
    let Reply::Held(_) = m.handle_request(now, CREATE.as_bytes()) else {
        panic!()
    };
    let sid = events(m)
        .into_iter()
        .find_map(|e| match e {
            ManagerEvent::SessionCreated { sid, .. } => Some(sid),
            _ => None,
        })
        .expect("a session");
    m.send(now, &sid, &features()).unwrap();
    responses(m);
    sid
}

fn payload_texts(ev: &[ManagerEvent]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            ManagerEvent::Payload { element, .. } => {
                Some(element.get_child("body", CLIENT).unwrap().text())
            }
            _ => None,
        })
        .collect()
}

fn refused(reply: Reply) -> (ManagerError, Condition) {
    let Reply::Refused { error, body } = reply else {
        panic!("{reply:?}")
    };
    let b = parse(&body);
    assert_eq!(b.kind, Some(BodyType::Terminate));
    (error, b.condition.unwrap())
}

/// XEP-0124 section 7.2 and XEP-0206 section 4: the creation request
/// is held until the host's features come, and answered with the
/// session's attributes and the features.
#[test]
fn session_creation() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let Reply::Held(handle) = m.handle_request(now, CREATE.as_bytes()) else {
        panic!()
    };
    let ev = events(&mut m);
    let ManagerEvent::SessionCreated {
        sid,
        to,
        lang,
        version,
        route,
        content,
        ..
    } = &ev[0]
    else {
        panic!("{ev:?}")
    };
    assert_eq!(sid.len(), 32);
    assert!(sid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(to.as_deref(), Some("jabber.org"));
    assert_eq!(lang.as_deref(), Some("en"));
    assert_eq!(version.as_deref(), Some("1.0"));
    assert_eq!(route.as_deref(), Some("xmpp:jabber.org:9999"));
    assert_eq!(content.as_deref(), Some("text/xml; charset=utf-8"));
    assert_eq!(m.poll_response(), None);
    m.send(now, sid, &features()).unwrap();
    let (h, bytes) = m.poll_response().unwrap();
    assert_eq!(h, handle);
    let b = parse(&bytes);
    assert_eq!(b.sid.as_deref(), Some(sid.as_str()));
    assert_eq!(
        (
            b.wait,
            b.hold,
            b.requests,
            b.polling,
            b.inactivity,
            b.maxpause
        ),
        (Some(60), Some(1), Some(2), Some(5), Some(60), Some(120))
    );
    assert_eq!(b.ver.as_deref(), Some("1.6"));
    assert_eq!(b.xmpp_version.as_deref(), Some("1.0"));
    assert_eq!(b.from.as_deref(), Some("jabber.org"));
    assert_eq!(b.payloads, vec![features()]);
    // Another manager (another random source), another sid.
    let mut other = BoshManager::new(
        BoshManagerConfig::default(),
        Box::new(DeterministicRandom::new(10)),
    );
    other.handle_request(now, CREATE.as_bytes());
    let ManagerEvent::SessionCreated { sid: sid2, .. } = other.poll_event().unwrap() else {
        panic!()
    };
    assert_ne!(&sid2, sid);
}

/// XEP-0124 section 14.2: requests that arrive out of order are
/// delivered in rid order, and answered in rid order.
#[test]
fn out_of_order_requests_are_delivered_in_order() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    let Reply::Held(h2) = m.handle_request(now, &request(&sid, RID + 2, &msg("two"))) else {
        panic!()
    };
    assert!(payload_texts(&events(&mut m)).is_empty());
    let Reply::Immediate(r1) = m.handle_request(now, &request(&sid, RID + 1, &msg("one"))) else {
        panic!("the first is answered when the second comes (hold 1)")
    };
    assert!(parse(&r1).payloads.is_empty());
    assert_eq!(payload_texts(&events(&mut m)), ["one", "two"]);
    // The second is held: data for the client answers it.
    m.send(now, &sid, &message("hi")).unwrap();
    let (h, bytes) = m.poll_response().unwrap();
    assert_eq!(h, h2);
    assert_eq!(parse(&bytes).payloads, vec![message("hi")]);
}

/// XEP-0124 section 14.3: a retransmitted rid gets the same bytes from
/// the cache; a held rid sent again moves to the new HTTP request.
#[test]
fn retransmissions_are_answered_from_the_cache() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    let Reply::Held(h1) = m.handle_request(now, &request(&sid, RID + 1, "")) else {
        panic!()
    };
    m.send(now, &sid, &message("once")).unwrap();
    let (h, first) = m.poll_response().unwrap();
    assert_eq!(h, h1);
    let Reply::Immediate(again) = m.handle_request(now, &request(&sid, RID + 1, "")) else {
        panic!()
    };
    assert_eq!(again, first);
    let Reply::Held(h2) = m.handle_request(now, &request(&sid, RID + 2, &msg("a"))) else {
        panic!()
    };
    let Reply::Held(h2b) = m.handle_request(now, &request(&sid, RID + 2, &msg("a"))) else {
        panic!()
    };
    assert_eq!(
        events(&mut m).last(),
        Some(&ManagerEvent::RequestDropped { handle: h2 })
    );
    assert_eq!(payload_texts(&[]).len(), 0);
    m.send(now, &sid, &message("x")).unwrap();
    assert_eq!(m.poll_response().unwrap().0, h2b);
}

/// XEP-0124 section 14.2, "Unexpected rid error", and section 14.3,
/// "Response not in buffer error": item-not-found, and the session ends.
#[test]
fn rids_outside_the_window_end_the_session() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    let (e, c) = refused(m.handle_request(now, &request(&sid, RID + 4, "")));
    assert_eq!(e, ManagerError::RidOutOfWindow { rid: RID + 4 });
    assert_eq!(c, Condition::ItemNotFound);
    assert!(!m.has_session(&sid));
    assert!(matches!(
        events(&mut m).last(),
        Some(ManagerEvent::Terminated {
            reason: TerminateReason::Error(ManagerError::RidOutOfWindow { .. }),
            ..
        })
    ));
    let (e, c) = refused(m.handle_request(now, &request(&sid, RID + 1, "")));
    assert_eq!((e, c), (ManagerError::UnknownSid, Condition::ItemNotFound));

    let sid = session(&mut m, now);
    for rid in RID + 1..RID + 6 {
        m.handle_request(now, &request(&sid, rid, ""));
        m.send(now, &sid, &message("m")).unwrap();
        responses(&mut m);
    }
    let (e, c) = refused(m.handle_request(now, &request(&sid, RID + 1, "")));
    assert_eq!(e, ManagerError::ResponseGone { rid: RID + 1 });
    assert_eq!(c, Condition::ItemNotFound);
    assert!(m.has_session(&sid), "a late copy does not end the session");
}

/// XEP-0124 section 8: a held request is answered empty at `wait`; with
/// `hold` 1, a second request releases the first.
#[test]
fn held_requests_are_answered_at_wait_or_beyond_hold() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    let Reply::Held(h) = m.handle_request(now, &request(&sid, RID + 1, "")) else {
        panic!()
    };
    let wait = now + Duration::from_secs(60);
    assert_eq!(m.poll_timeout(), Some(wait));
    m.handle_timeout(wait - Duration::from_millis(1));
    assert_eq!(m.poll_response(), None);
    m.handle_timeout(wait);
    let (got, bytes) = m.poll_response().unwrap();
    assert_eq!(got, h);
    assert_eq!(
        bytes,
        b"<body xmlns='http://jabber.org/protocol/httpbind'/>"
    );
}

/// XEP-0124 section 10: no request for `inactivity` ends the session
/// silently; a later request finds no session.
#[test]
fn inactivity_ends_the_session() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    assert_eq!(m.poll_timeout(), Some(now + Duration::from_secs(60)));
    m.handle_timeout(now + Duration::from_secs(60));
    assert!(!m.has_session(&sid));
    assert_eq!(
        events(&mut m),
        vec![ManagerEvent::Terminated {
            sid: sid.clone(),
            reason: TerminateReason::Inactivity
        }]
    );
    assert_eq!(responses(&mut m), vec![]);
    let (e, _) = refused(m.handle_request(now, &request(&sid, RID + 1, "")));
    assert_eq!(e, ManagerError::UnknownSid);
    assert_eq!(m.poll_timeout(), None);
}

/// XEP-0124 section 11, "Too many simultaneous requests response".
#[test]
fn overactivity_is_a_policy_violation() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    // rid+2 and rid+3 buffered (rid+1 not there yet), both unanswered:
    // rid+1 makes three at once, one more than `requests`.
    m.handle_request(now, &request(&sid, RID + 2, &msg("a")));
    m.handle_request(now, &request(&sid, RID + 3, &msg("b")));
    let (e, c) = refused(m.handle_request(now, &request(&sid, RID + 1, &msg("c"))));
    assert_eq!(
        (e, c),
        (ManagerError::Overactivity, Condition::PolicyViolation)
    );
    assert!(
        payload_texts(&events(&mut m)).is_empty(),
        "nothing delivered"
    );
    // The buffered ones got the terminate too.
    let r = responses(&mut m);
    assert_eq!(r.len(), 2);
    assert!(r
        .iter()
        .all(|(_, b)| parse(b).condition == Some(Condition::PolicyViolation)));
    assert!(!m.has_session(&sid));
}

/// XEP-0124 section 11, "Too frequent requests response", and section
/// 12, "Too frequent polling response".
#[test]
fn polling_too_often_is_a_policy_violation() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    m.handle_request(now, &request(&sid, RID + 2, ""));
    let (e, c) =
        refused(m.handle_request(now + Duration::from_secs(1), &request(&sid, RID + 3, "")));
    assert_eq!(
        (e, c),
        (ManagerError::PollingTooOften, Condition::PolicyViolation)
    );

    // A polling session (hold 0): two empty polls 1 s apart.
    let mut m = manager(BoshManagerConfig::default());
    let create = CREATE.replace("hold='1'", "hold='0'");
    let Reply::Immediate(_) = m.handle_request(now, create.as_bytes()) else {
        panic!("hold 0: answered at once")
    };
    let sid = match &events(&mut m)[0] {
        ManagerEvent::SessionCreated { sid, .. } => sid.clone(),
        e => panic!("{e:?}"),
    };
    let t = now + Duration::from_secs(10);
    let Reply::Immediate(_) = m.handle_request(t, &request(&sid, RID + 1, "")) else {
        panic!()
    };
    let (e, _) = refused(m.handle_request(t + Duration::from_secs(1), &request(&sid, RID + 2, "")));
    assert_eq!(e, ManagerError::PollingTooOften);
}

/// XEP-0124 section 10, "Requesting a Session Pause": held requests are
/// answered, the inactivity period becomes the pause until the next
/// request; above `maxpause` is refused.
#[test]
fn pause_stretches_inactivity_once() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    let Reply::Held(h) = m.handle_request(now, &request(&sid, RID + 1, "")) else {
        panic!()
    };
    m.send(now, &sid, &message("before")).unwrap();
    assert_eq!(m.poll_response().unwrap().0, h);
    let Reply::Held(h2) = m.handle_request(now, &request(&sid, RID + 2, "")) else {
        panic!()
    };
    let pause = format!(
        "<body rid='{}' sid='{sid}' pause='100' xmlns='http://jabber.org/protocol/httpbind'/>",
        RID + 3
    );
    let Reply::Immediate(r) = m.handle_request(now, pause.as_bytes()) else {
        panic!()
    };
    assert!(parse(&r).payloads.is_empty());
    assert_eq!(m.poll_response().unwrap().0, h2);
    m.handle_timeout(now + Duration::from_secs(90));
    assert!(m.has_session(&sid), "paused for 100 s, not 60");
    m.handle_timeout(now + Duration::from_secs(100));
    assert!(!m.has_session(&sid));

    let sid = session(&mut m, now);
    let pause = format!(
        "<body rid='{}' sid='{sid}' pause='121' xmlns='http://jabber.org/protocol/httpbind'/>",
        RID + 1
    );
    let (e, c) = refused(m.handle_request(now, pause.as_bytes()));
    assert_eq!(
        (e, c),
        (
            ManagerError::PauseRefused { pause: 121 },
            Condition::PolicyViolation
        )
    );
}

/// XEP-0124 section 12, "Session termination by client": the final
/// payload is delivered, then the session ends.
#[test]
fn client_termination_delivers_the_last_payload() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    let Reply::Held(h) = m.handle_request(now, &request(&sid, RID + 1, "")) else {
        panic!()
    };
    let term = format!(
        "<body rid='{}' sid='{sid}' type='terminate' xmlns='http://jabber.org/protocol/httpbind'>
  <presence type='unavailable' xmlns='jabber:client'/></body>",
        RID + 2
    );
    let Reply::Immediate(r) = m.handle_request(now, term.as_bytes()) else {
        panic!()
    };
    assert_eq!(parse(&r).kind, Some(BodyType::Terminate));
    assert_eq!(m.poll_response().unwrap().0, h);
    let ev = events(&mut m);
    assert!(
        matches!(&ev[0], ManagerEvent::Payload { element, .. } if element.is("presence", CLIENT))
    );
    assert_eq!(
        ev[1],
        ManagerEvent::Terminated {
            sid: sid.clone(),
            reason: TerminateReason::Client
        }
    );
    assert!(!m.has_session(&sid));
}

/// A poll held, a stanza and the terminate sent at once (one request more
/// than `requests`, as XEP-0124 section 11 allows for a terminate), each
/// on its own HTTP connection: the terminate overtakes the stanza. That
/// is the allowance, not overactivity; the stanza is delivered, then the
/// session ends (found by the tokio BOSH driver over loopback HTTP).
#[test]
fn a_terminate_that_overtakes_a_stanza_is_not_overactivity() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    let Reply::Held(poll) = m.handle_request(now, &request(&sid, RID + 1, "")) else {
        panic!()
    };
    let term = format!(
        "<body rid='{}' sid='{sid}' type='terminate' xmlns='http://jabber.org/protocol/httpbind'/>",
        RID + 3
    );
    let Reply::Held(t) = m.handle_request(now, term.as_bytes()) else {
        panic!("the terminate waits for the gap")
    };
    let reply = m.handle_request(now, &request(&sid, RID + 2, &msg("last")));
    assert!(!matches!(reply, Reply::Refused { .. }), "{reply:?}");
    assert_eq!(payload_texts(&events(&mut m)), ["last"]);
    assert!(!m.has_session(&sid));
    let answered: Vec<RequestHandle> = responses(&mut m).into_iter().map(|(h, _)| h).collect();
    assert!(
        answered.contains(&poll) && answered.contains(&t),
        "{answered:?}"
    );
}

/// XEP-0206 section 5, "Restart a stream request".
#[test]
fn restart_is_an_event() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    let restart = format!(
        "<body rid='{}' sid='{sid}' to='jabber.org' xml:lang='en' xmpp:restart='true'
      xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>",
        RID + 1
    );
    let Reply::Held(h) = m.handle_request(now, restart.as_bytes()) else {
        panic!()
    };
    assert_eq!(
        events(&mut m),
        vec![ManagerEvent::Restart { sid: sid.clone() }]
    );
    m.send(now, &sid, &features()).unwrap();
    let (got, bytes) = m.poll_response().unwrap();
    assert_eq!(got, h);
    assert_eq!(parse(&bytes).payloads, vec![features()]);
}

/// The host caps sessions; creation without `to`; bad bodies; unknown
/// sessions; congestion.
#[test]
fn refusals_are_typed() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig {
        max_sessions: 1,
        max_queued_bytes: 300,
        ..BoshManagerConfig::default()
    });
    let sid = session(&mut m, now);
    let another = CREATE.replace("1573741820", "1573741900");
    let (e, c) = refused(m.handle_request(now, another.as_bytes()));
    assert_eq!(
        (e, c),
        (
            ManagerError::TooManySessions,
            Condition::InternalServerError
        )
    );
    assert_eq!(m.session_count(), 1);
    let mut m2 = manager(BoshManagerConfig::default());
    let (e, c) = refused(m2.handle_request(
        now,
        b"<body rid='1' wait='60' hold='1' xmlns='http://jabber.org/protocol/httpbind'/>",
    ));
    assert_eq!(
        (e, c),
        (ManagerError::MissingTo, Condition::ImproperAddressing)
    );
    let (e, c) = refused(m2.handle_request(
        now,
        b"<body sid='x' xmlns='http://jabber.org/protocol/httpbind'/>",
    ));
    assert_eq!((e, c), (ManagerError::MissingRid, Condition::BadRequest));
    let (e, c) = refused(m2.handle_request(now, b"GET / HTTP/1.1"));
    assert!(matches!(e, ManagerError::BadBody(_)));
    assert_eq!(c, Condition::BadRequest);
    assert_eq!(m2.session_count(), 0);

    m.send(now, &sid, &message("a")).unwrap();
    let e = m.send(now, &sid, &message(&"b".repeat(400))).unwrap_err();
    assert!(matches!(e, BoshUsageError::Congested { max: 300, .. }));
    assert_eq!(
        m.send(now, "nope", &message("a")),
        Err(BoshUsageError::Closed)
    );
}

/// The host ends a session with `remote-stream-error`: what is queued
/// goes first, then the terminate with the stream error; with nothing
/// held, the next request gets it.
#[test]
fn host_termination() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let sid = session(&mut m, now);
    let stream_error = Element::builder("error", STREAM)
        .append(Element::bare(
            "conflict",
            "urn:ietf:params:xml:ns:xmpp-streams",
        ))
        .build();
    m.send(now, &sid, &message("last words")).unwrap();
    m.terminate(
        now,
        &sid,
        Some(Condition::RemoteStreamError),
        Some(&stream_error),
    )
    .unwrap();
    let Reply::Refused { error, body } = m.handle_request(now, &request(&sid, RID + 1, "")) else {
        panic!()
    };
    assert_eq!(error, ManagerError::Terminated);
    let b = parse(&body);
    assert_eq!(b.condition, Some(Condition::RemoteStreamError));
    assert_eq!(
        b.payloads,
        vec![message("last words"), stream_error.clone()]
    );
    assert!(!m.has_session(&sid));

    let sid = session(&mut m, now);
    let Reply::Held(h) = m.handle_request(now, &request(&sid, RID + 1, "")) else {
        panic!()
    };
    m.terminate(now, &sid, Some(Condition::SystemShutdown), None)
        .unwrap();
    let (got, bytes) = m.poll_response().unwrap();
    assert_eq!(got, h);
    assert_eq!(parse(&bytes).condition, Some(Condition::SystemShutdown));
    assert!(!m.has_session(&sid));
}

/// XEP-0124 section 14.3 for the creation request: sent again (its
/// answer lost), it has no sid; the manager finds its session by rid and
/// bytes and answers from the cache, instead of creating a second one.
#[test]
fn a_creation_request_sent_again_finds_its_session() {
    let now = Instant::now();
    let mut m = manager(BoshManagerConfig::default());
    let Reply::Held(h) = m.handle_request(now, CREATE.as_bytes()) else {
        panic!()
    };
    // Sent again while held: the new HTTP request takes the answer.
    let Reply::Held(h2) = m.handle_request(now, CREATE.as_bytes()) else {
        panic!()
    };
    assert_eq!(m.session_count(), 1);
    let ev = events(&mut m);
    assert!(ev.contains(&ManagerEvent::RequestDropped { handle: h }));
    let ManagerEvent::SessionCreated { sid, .. } = &ev[0] else {
        panic!("{ev:?}")
    };
    m.send(now, sid, &features()).unwrap();
    let (got, first) = m.poll_response().unwrap();
    assert_eq!(got, h2);
    // Sent again once answered: the same answer from the cache.
    let Reply::Immediate(again) = m.handle_request(now, CREATE.as_bytes()) else {
        panic!()
    };
    assert_eq!(again, first);
    assert_eq!(m.session_count(), 1);
    // Other bytes with that rid are another client's creation.
    let other = CREATE.replace("wait='60'", "wait='30'");
    assert!(matches!(
        m.handle_request(now, other.as_bytes()),
        Reply::Held(_)
    ));
    assert_eq!(m.session_count(), 2);
}
