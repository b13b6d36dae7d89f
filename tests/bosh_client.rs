//! `BoshClient` against scripted connection-manager responses, most of
//! them the examples of XEP-0124 and XEP-0206 (section named at each).

use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_sansio::bosh::{
    Body, BodyType, BoshClient, BoshClientConfig, BoshClientError, BoshClientEvent, BoshRequest,
    BoshUsageError, Condition,
};
use xmpp_sansio::xml::Limits;
use xmpp_sansio::DeterministicRandom;

const CLIENT: &str = "jabber:client";
const STREAM: &str = "http://etherx.jabber.org/streams";

/// XEP-0206 section 4, "Session creation response with stream features".
const CREATION_RESPONSE: &str = "<body wait='60'
      inactivity='30'
      polling='5'
      requests='2'
      hold='1'
      accept='deflate,gzip'
      sid='SomeSID'
      secure='true'
      charsets='ISO_8859-1 ISO-2022-JP'
      xmpp:version='1.0'
      authid='ServerStreamID'
      xmlns='http://jabber.org/protocol/httpbind'
      xmlns:xmpp='urn:xmpp:xbosh'
      xmlns:stream='http://etherx.jabber.org/streams'>
  <stream:features>
    <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>
      <mechanism>DIGEST-MD5</mechanism>
      <mechanism>PLAIN</mechanism>
    </mechanisms>
  </stream:features>
</body>";

const EMPTY: &str = "<body xmlns='http://jabber.org/protocol/httpbind'/>";

fn config() -> BoshClientConfig {
    let mut c = BoshClientConfig::new("jabber.org");
    c.lang = Some("en".into());
    c
}

fn body(req: &BoshRequest) -> Body {
    Body::parse(&req.body, &Limits::default()).expect("the client writes valid bodies")
}

fn events(c: &mut BoshClient) -> Vec<BoshClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn message(text: &str) -> Element {
    Element::builder("message", CLIENT)
        .attr("to".try_into().unwrap(), "contact@example.com")
        .append(Element::builder("body", CLIENT).append(text).build())
        .build()
}

/// A created session (hold 1, requests 2) and the creation request's rid.
fn created(now: Instant) -> (BoshClient, u64) {
    let mut c = BoshClient::new(config(), &mut DeterministicRandom::new(7), now);
    let req = c.poll_request(now).unwrap();
    c.handle_response(now, req.rid, CREATION_RESPONSE.as_bytes())
        .unwrap();
    events(&mut c);
    (c, req.rid)
}

/// XEP-0124 section 7.1 and XEP-0206 section 3: the creation request's
/// attributes; a random first rid with room below 2^53.
#[test]
fn the_creation_request_has_the_xep_attributes() {
    let now = Instant::now();
    let mut c = BoshClient::new(config(), &mut DeterministicRandom::new(1), now);
    let req = c.poll_request(now).unwrap();
    assert!(!req.retransmission);
    let b = body(&req);
    assert_eq!(b.rid, Some(req.rid));
    assert!(req.rid >= 1 << 32 && req.rid < 1 << 52, "{}", req.rid);
    assert_eq!(b.ver.as_deref(), Some("1.6"));
    assert_eq!((b.wait, b.hold), (Some(60), Some(1)));
    assert_eq!(b.to.as_deref(), Some("jabber.org"));
    assert_eq!(b.lang.as_deref(), Some("en"));
    assert_eq!(b.xmpp_version.as_deref(), Some("1.0"));
    assert!(b.sid.is_none());
    let text = String::from_utf8(req.body.clone()).unwrap();
    assert!(text.contains("xmlns:xmpp='urn:xmpp:xbosh'"), "{text}");
    // Nothing else may go before the session exists.
    c.send(&message("early")).unwrap();
    assert_eq!(c.poll_request(now), None);
    // Another seed, another first rid.
    let mut other = BoshClient::new(config(), &mut DeterministicRandom::new(2), now);
    assert_ne!(other.poll_request(now).unwrap().rid, req.rid);
}

/// XEP-0206 section 4: the creation response gives the session's
/// parameters, then its features.
#[test]
fn the_creation_response_creates_the_session() {
    let now = Instant::now();
    let mut c = BoshClient::new(config(), &mut DeterministicRandom::new(7), now);
    let req = c.poll_request(now).unwrap();
    c.handle_response(now, req.rid, CREATION_RESPONSE.as_bytes())
        .unwrap();
    let ev = events(&mut c);
    let BoshClientEvent::SessionCreated(p) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(p.sid, "SomeSID");
    assert_eq!((p.wait, p.requests, p.hold), (60, 2, 1));
    assert_eq!((p.polling, p.inactivity), (Some(5), Some(30)));
    assert_eq!(p.authid.as_deref(), Some("ServerStreamID"));
    let BoshClientEvent::Features(f) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert!(f.is("features", STREAM));
    assert_eq!(ev.len(), 2);
    assert_eq!(c.sid(), Some("SomeSID"));
}

#[test]
fn a_creation_response_without_sid_fails() {
    let now = Instant::now();
    let mut c = BoshClient::new(config(), &mut DeterministicRandom::new(7), now);
    let req = c.poll_request(now).unwrap();
    let e = c
        .handle_response(now, req.rid, EMPTY.as_bytes())
        .unwrap_err();
    assert_eq!(e, BoshClientError::MissingSid);
    assert!(c.is_closed());
    assert_eq!(
        events(&mut c),
        vec![BoshClientEvent::Terminated(Some(
            BoshClientError::MissingSid
        ))]
    );
}

/// `hold` requests stay at the manager (empty polls, XEP-0124 section 8);
/// payloads go in the next request, up to `requests` at once; rids go up
/// by one.
#[test]
fn polls_and_payloads_within_requests() {
    let now = Instant::now();
    let (mut c, rid) = created(now);
    let poll = c.poll_request(now).unwrap();
    assert_eq!(poll.rid, rid + 1);
    let b = body(&poll);
    assert_eq!(b.sid.as_deref(), Some("SomeSID"));
    assert!(b.payloads.is_empty());
    assert_eq!(c.poll_request(now), None, "hold is 1: one poll at a time");
    c.send(&message("Good morning!")).unwrap();
    c.send(&message("Hey, what's up?")).unwrap();
    let data = c.poll_request(now).unwrap();
    assert_eq!(data.rid, rid + 2);
    let b = body(&data);
    assert_eq!(
        b.payloads,
        vec![message("Good morning!"), message("Hey, what's up?")]
    );
    let text = String::from_utf8(data.body.clone()).unwrap();
    assert_eq!(text.matches("xmlns='jabber:client'").count(), 2, "{text}");
    c.send(&message("third")).unwrap();
    assert_eq!(c.poll_request(now), None, "requests is 2");
    // The held poll comes back empty: the third message goes.
    c.handle_response(now, poll.rid, EMPTY.as_bytes()).unwrap();
    let next = c.poll_request(now).unwrap();
    assert_eq!(next.rid, rid + 3);
    assert_eq!(body(&next).payloads, vec![message("third")]);
}

/// XEP-0124 section 14.2: responses are processed in rid order, whatever
/// order they come in; a second response to one rid is ignored.
#[test]
fn responses_are_processed_in_rid_order_once() {
    let now = Instant::now();
    let (mut c, _) = created(now);
    let first = c.poll_request(now).unwrap();
    c.send(&message("x")).unwrap();
    let second = c.poll_request(now).unwrap();
    let resp = |t: &str| {
        format!("<body xmlns='http://jabber.org/protocol/httpbind'><message xmlns='jabber:client'><body>{t}</body></message></body>")
    };
    c.handle_response(now, second.rid, resp("two").as_bytes())
        .unwrap();
    assert!(events(&mut c).is_empty(), "held until the first comes");
    c.handle_response(now, first.rid, resp("one").as_bytes())
        .unwrap();
    let texts: Vec<String> = events(&mut c)
        .into_iter()
        .map(|e| match e {
            BoshClientEvent::Payload(p) => p.get_child("body", CLIENT).unwrap().text(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, ["one", "two"]);
    c.handle_response(now, first.rid, resp("one").as_bytes())
        .unwrap();
    assert!(events(&mut c).is_empty());
}

/// XEP-0124 section 14.3: after a failed HTTP request, the same rid
/// with the same bytes; after `max_attempts`, the session fails.
#[test]
fn a_failed_request_is_sent_again_unchanged_then_given_up() {
    let now = Instant::now();
    let (mut c, _) = created(now);
    let poll = c.poll_request(now).unwrap();
    c.send(&message("important")).unwrap();
    let data = c.poll_request(now).unwrap();
    c.request_failed(now, data.rid);
    let again = c.poll_request(now).unwrap();
    assert_eq!((again.rid, &again.body), (data.rid, &data.body));
    assert!(again.retransmission);
    assert_eq!(c.poll_request(now), None);
    for _ in 0..2 {
        c.request_failed(now, data.rid);
        assert_eq!(c.poll_request(now).unwrap().body, data.body);
    }
    c.request_failed(now, data.rid); // the fifth attempt is not made
    assert_eq!(
        c.error(),
        Some(&BoshClientError::RequestLost { rid: data.rid })
    );
    assert_eq!(c.poll_request(now), None);
    let _ = poll;
}

/// XEP-0124 section 17.3, "Recoverable error": the request and every
/// earlier unanswered one go again, identical.
#[test]
fn a_recoverable_error_resends_the_unanswered_requests() {
    let now = Instant::now();
    let (mut c, _) = created(now);
    let poll = c.poll_request(now).unwrap();
    c.send(&message("m")).unwrap();
    let data = c.poll_request(now).unwrap();
    c.handle_response(
        now,
        data.rid,
        b"<body type='error' xmlns='http://jabber.org/protocol/httpbind'/>",
    )
    .unwrap();
    assert!(!c.is_closed());
    let a = c.poll_request(now).unwrap();
    let b = c.poll_request(now).unwrap();
    assert_eq!((a.rid, &a.body), (poll.rid, &poll.body));
    assert_eq!((b.rid, &b.body), (data.rid, &data.body));
    assert_eq!(c.poll_request(now), None);
}

/// XEP-0206 section 5, "Restart a stream request".
#[test]
fn a_restart_is_a_request_of_its_own() {
    let now = Instant::now();
    let (mut c, _) = created(now);
    let poll = c.poll_request(now).unwrap();
    c.restart().unwrap();
    c.send(&message("after")).unwrap();
    let r = c.poll_request(now).unwrap();
    let b = body(&r);
    assert!(b.restart);
    assert_eq!(b.to.as_deref(), Some("jabber.org"));
    assert_eq!(b.lang.as_deref(), Some("en"));
    assert!(b.payloads.is_empty());
    c.handle_response(now, poll.rid, EMPTY.as_bytes()).unwrap();
    let next = c.poll_request(now).unwrap();
    assert!(!body(&next).restart);
    assert_eq!(body(&next).payloads, vec![message("after")]);
}

/// XEP-0124 section 12: termination with a final payload, acknowledged.
#[test]
fn terminate_carries_the_last_payload_and_ends_cleanly() {
    let now = Instant::now();
    let (mut c, _) = created(now);
    let poll = c.poll_request(now).unwrap();
    let unavailable = Element::builder("presence", CLIENT)
        .attr("type".try_into().unwrap(), "unavailable")
        .build();
    c.terminate(std::slice::from_ref(&unavailable)).unwrap();
    assert_eq!(c.send(&message("late")), Err(BoshUsageError::Closed));
    let t = c.poll_request(now).unwrap();
    let b = body(&t);
    assert_eq!(b.kind, Some(BodyType::Terminate));
    assert_eq!(b.payloads, vec![unavailable]);
    c.handle_response(now, poll.rid, EMPTY.as_bytes()).unwrap();
    c.handle_response(
        now,
        t.rid,
        b"<body type='terminate' xmlns='http://jabber.org/protocol/httpbind'/>",
    )
    .unwrap();
    assert!(c.is_closed());
    assert_eq!(events(&mut c), vec![BoshClientEvent::Terminated(None)]);
}

/// XEP-0124 section 17.2, "See other URI error".
#[test]
fn see_other_uri_ends_the_session_with_the_uri() {
    let now = Instant::now();
    let (mut c, _) = created(now);
    let poll = c.poll_request(now).unwrap();
    let e = c
        .handle_response(
            now,
            poll.rid,
            b"<body condition='see-other-uri'
      type='terminate'
      xmlns='http://jabber.org/protocol/httpbind'>
  <uri>https://secure.jabber.org/xmppcm</uri>
</body>",
        )
        .unwrap_err();
    assert_eq!(
        e,
        BoshClientError::SeeOtherUri("https://secure.jabber.org/xmppcm".into())
    );
    assert_eq!(events(&mut c), vec![BoshClientEvent::Terminated(Some(e))]);
}

/// XEP-0206 section 6, "Remote error" (the stream error's children bare
/// in the body), and XEP-0124 section 17.2's form with a message first.
#[test]
fn remote_stream_errors_end_the_session_with_the_stream_error() {
    let now = Instant::now();
    let (mut c, _) = created(now);
    let poll = c.poll_request(now).unwrap();
    let e = c
        .handle_response(
            now,
            poll.rid,
            b"<body condition='remote-stream-error'
      type='terminate'
      xmlns='http://jabber.org/protocol/httpbind'>
  <xml-not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>
  <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'
        xml:lang='en'>
    Some special application diagnostic information!
  </text>
  <escape-your-data xmlns='application-ns'/>
</body>",
        )
        .unwrap_err();
    let BoshClientError::Terminal {
        condition: Some(Condition::RemoteStreamError),
        stream_error: Some(se),
    } = e
    else {
        panic!("{e:?}")
    };
    assert!(se.is("error", STREAM));
    assert!(se.has_child("xml-not-well-formed", "urn:ietf:params:xml:ns:xmpp-streams"));
    assert!(se.has_child("escape-your-data", "application-ns"));

    let (mut c, _) = created(now);
    let poll = c.poll_request(now).unwrap();
    c.handle_response(
        now,
        poll.rid,
        b"<body condition='remote-stream-error' type='terminate'
      xmlns='http://jabber.org/protocol/httpbind'
      xmlns:stream='http://etherx.jabber.org/streams'>
  <message from='contact@example.com' to='user@example.com' xmlns='jabber:client'>
    <body>I said &quot;Hi!&quot;</body>
  </message>
  <stream:error>
    <xml-not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>
  </stream:error>
</body>",
    )
    .unwrap_err();
    let ev = events(&mut c);
    assert!(matches!(&ev[0], BoshClientEvent::Payload(m) if m.is("message", CLIENT)));
    assert!(matches!(
        &ev[1],
        BoshClientEvent::Terminated(Some(BoshClientError::Terminal {
            condition: Some(Condition::RemoteStreamError),
            stream_error: Some(_)
        }))
    ));
}

/// A held request unanswered past `wait` plus the margin is taken as lost
/// and sent again.
#[test]
fn a_request_held_too_long_is_sent_again() {
    let now = Instant::now();
    let (mut c, _) = created(now);
    let poll = c.poll_request(now).unwrap();
    let due = now + Duration::from_secs(70);
    assert_eq!(c.poll_timeout(), Some(due));
    c.handle_timeout(due - Duration::from_millis(1));
    assert_eq!(c.poll_request(due), None);
    c.handle_timeout(due);
    let again = c.poll_request(due).unwrap();
    assert_eq!((again.rid, again.body), (poll.rid, poll.body));
    assert_eq!(c.poll_timeout(), Some(due + Duration::from_secs(70)));
}

/// XEP-0124 section 12 (polling sessions): with hold 0, an empty poll at
/// most every `polling` seconds.
#[test]
fn a_polling_session_polls_at_the_interval() {
    let now = Instant::now();
    let mut c = BoshClient::new(config(), &mut DeterministicRandom::new(3), now);
    let req = c.poll_request(now).unwrap();
    c.handle_response(
        now,
        req.rid,
        b"<body sid='s' wait='60' hold='0' requests='1' polling='5' inactivity='60'
          xmlns='http://jabber.org/protocol/httpbind'/>",
    )
    .unwrap();
    let first = c.poll_request(now).unwrap();
    c.handle_response(now, first.rid, EMPTY.as_bytes()).unwrap();
    assert_eq!(c.poll_request(now + Duration::from_secs(4)), None);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(5)));
    let second = c.poll_request(now + Duration::from_secs(5)).unwrap();
    assert_eq!(second.rid, first.rid + 1);
    // Data does not wait for the interval.
    c.handle_response(now, second.rid, EMPTY.as_bytes())
        .unwrap();
    c.send(&message("now")).unwrap();
    assert!(c.poll_request(now + Duration::from_secs(6)).is_some());
}

#[test]
fn bad_responses_and_congestion_are_typed() {
    let now = Instant::now();
    let (mut c, _) = created(now);
    let poll = c.poll_request(now).unwrap();
    let e = c.handle_response(now, poll.rid, b"<html/>").unwrap_err();
    assert!(matches!(e, BoshClientError::BadResponse(_)));
    assert!(c.is_closed());

    let mut cfg = config();
    cfg.max_queued_bytes = 200;
    let mut c = BoshClient::new(cfg, &mut DeterministicRandom::new(1), now);
    c.send(&message("a")).unwrap();
    let e = c.send(&message(&"b".repeat(300))).unwrap_err();
    assert!(matches!(e, BoshUsageError::Congested { max: 200, .. }));
    assert!(c.queued_bytes() < 200);
    let mut bad = BoshClientConfig::new("bad\u{1}domain");
    bad.lang = None;
    let c = BoshClient::new(bad, &mut DeterministicRandom::new(1), now);
    assert!(matches!(c.error(), Some(BoshClientError::Config(_))));
}
