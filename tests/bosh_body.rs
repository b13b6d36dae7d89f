//! The `<body/>` codec against the examples of XEP-0124 (BOSH, version
//! 1.11.2) and XEP-0206 (XMPP over BOSH, version 1.4), each named by its
//! section and caption; then hostile bodies, each refused with a typed
//! error and its condition.

use minidom::Element;
use xmpp_sansio::bosh::{Body, BodyError, BodyType, Condition, MAX_RID, NS_HTTPBIND};
use xmpp_sansio::xml::{Limit, Limits, ReadError};

const CLIENT: &str = "jabber:client";
const STREAM: &str = "http://etherx.jabber.org/streams";

fn parse(s: &str) -> Body {
    Body::parse(s.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn refused(s: &[u8]) -> BodyError {
    Body::parse(s, &Limits::default()).expect_err("refused")
}

/// XEP-0124 section 7.1, "Requesting a BOSH session".
#[test]
fn xep0124_7_1_session_request() {
    let b = parse(
        "<body content='text/xml; charset=utf-8'
      hold='1'
      rid='1573741820'
      to='jabber.org'
      route='xmpp:jabber.org:9999'
      secure='true'
      ver='1.6'
      wait='60'
      ack='1'
      xml:lang='en'
      xmlns='http://jabber.org/protocol/httpbind'/>",
    );
    assert_eq!(b.rid, Some(1573741820));
    assert_eq!(b.hold, Some(1));
    assert_eq!(b.wait, Some(60));
    assert_eq!(b.to.as_deref(), Some("jabber.org"));
    assert_eq!(b.route.as_deref(), Some("xmpp:jabber.org:9999"));
    assert_eq!(b.secure, Some(true));
    assert_eq!(b.ver.as_deref(), Some("1.6"));
    assert_eq!(b.ack, Some(1));
    assert_eq!(b.lang.as_deref(), Some("en"));
    assert_eq!(b.content.as_deref(), Some("text/xml; charset=utf-8"));
    assert!(b.sid.is_none() && b.payloads.is_empty() && b.kind.is_none());
}

/// XEP-0124 section 7.2, "Session creation response".
#[test]
fn xep0124_7_2_session_creation_response() {
    let b = parse(
        "<body wait='60'
      inactivity='30'
      polling='5'
      requests='2'
      hold='1'
      ack='1573741820'
      accept='deflate,gzip'
      maxpause='120'
      sid='SomeSID'
      charsets='ISO_8859-1 ISO-2022-JP'
      ver='1.6'
      from='jabber.org'
      secure='true'
      xmlns='http://jabber.org/protocol/httpbind'/>",
    );
    assert_eq!(b.sid.as_deref(), Some("SomeSID"));
    assert_eq!(
        (
            b.wait,
            b.inactivity,
            b.polling,
            b.requests,
            b.hold,
            b.maxpause
        ),
        (Some(60), Some(30), Some(5), Some(2), Some(1), Some(120))
    );
    assert_eq!(b.ack, Some(1573741820));
    assert_eq!(b.from.as_deref(), Some("jabber.org"));
}

/// XEP-0124 section 8, "Transmitting payloads": two messages, in order,
/// in `jabber:client`, with their `&apos;`.
#[test]
fn xep0124_8_transmitting_payloads() {
    let b = parse(
        "<body rid='1249243562'
      sid='SomeSID'
      xmlns='http://jabber.org/protocol/httpbind'>
  <message to='contact@example.com'
           xmlns='jabber:client'>
    <body>Good morning!</body>
  </message>
  <message to='friend@example.com'
           xmlns='jabber:client'>
    <body>Hey, what&apos;s up?</body>
  </message>
</body>",
    );
    assert_eq!(b.rid, Some(1249243562));
    assert_eq!(b.payloads.len(), 2);
    assert!(b.payloads.iter().all(|p| p.is("message", CLIENT)));
    assert_eq!(b.payloads[0].attr("to"), Some("contact@example.com"));
    let text = b.payloads[1].get_child("body", CLIENT).unwrap().text();
    assert_eq!(text, "Hey, what's up?");
}

/// XEP-0124 section 8, "Response with queued stanza": payloads in
/// several namespaces (a prefixed `json:json`).
#[test]
fn xep0124_8_response_with_queued_stanzas_of_two_namespaces() {
    let b = parse(
        "<body xmlns='http://jabber.org/protocol/httpbind'
      xmlns:json='http://json.org/'>
  <message from='contact@example.com'
           to='user@example.com'
           xmlns='jabber:client'>
    <body>Good morning to you!</body>
  </message>
  <message from='friend@example.com'
           to='user@example.com'
           xmlns='jabber:client'>
    <body>Not much, how about with you?</body>
  </message>
  <json:json>
  [ { \"precision\": \"zip\", \"City\": \"SAN FRANCISCO\" } ]
  </json:json>
</body>",
    );
    assert_eq!(b.payloads.len(), 3);
    assert!(b.payloads[2].is("json", "http://json.org/"));
    assert!(b.payloads[2].text().contains("SAN FRANCISCO"));
}

/// XEP-0124 section 8, "Empty response" and "Requesting XML Payloads".
#[test]
fn xep0124_8_empty_bodies() {
    let b = parse("<body xmlns='http://jabber.org/protocol/httpbind'/>");
    assert_eq!(b, Body::default());
    let b = parse(
        "<body rid='1249243563'
      sid='SomeSID'
      xmlns='http://jabber.org/protocol/httpbind'/>",
    );
    assert_eq!(
        (b.rid, b.sid.as_deref()),
        (Some(1249243563), Some("SomeSID"))
    );
}

/// XEP-0124 section 10, "Requesting a Session Pause".
#[test]
fn xep0124_10_pause() {
    let b = parse(
        "<body rid='1249243564'
      sid='SomeSID'
      pause='60'
      xmlns='http://jabber.org/protocol/httpbind'/>",
    );
    assert_eq!(b.pause, Some(60));
}

/// XEP-0124 section 12, "Session termination by client" and "Connection
/// manager acknowledges termination".
#[test]
fn xep0124_12_termination() {
    let b = parse(
        "<body rid='1249243565'
      sid='SomeSID'
      type='terminate'
      xmlns='http://jabber.org/protocol/httpbind'>
  <presence type='unavailable'
            xmlns='jabber:client'/>
</body>",
    );
    assert!(b.is_terminate());
    assert!(b.payloads[0].is("presence", CLIENT));
    assert_eq!(b.payloads[0].attr("type"), Some("unavailable"));
    let b = parse("<body type='terminate' xmlns='http://jabber.org/protocol/httpbind'/>");
    assert_eq!((b.kind, b.condition), (Some(BodyType::Terminate), None));
}

/// XEP-0124 sections 11, 14.2, 14.3 and 17.2: the terminal conditions of
/// the examples, and every defined one round-trips by name.
#[test]
fn xep0124_17_2_terminal_conditions() {
    for (cond, c) in [
        ("policy-violation", Condition::PolicyViolation),
        ("item-not-found", Condition::ItemNotFound),
        (
            "remote-connection-failed",
            Condition::RemoteConnectionFailed,
        ),
    ] {
        let b = parse(&format!(
            "<body type='terminate'
      condition='{cond}'
      xmlns='http://jabber.org/protocol/httpbind'/>"
        ));
        assert_eq!(b.condition, Some(c));
        assert_eq!(c.as_str(), cond);
    }
    let b = parse(
        "<body type='terminate' condition='no-such' xmlns='http://jabber.org/protocol/httpbind'/>",
    );
    assert_eq!(b.condition, Some(Condition::UndefinedCondition));
}

/// XEP-0124 section 17.2, "See other URI error": the `<uri/>` is not a
/// payload.
#[test]
fn xep0124_17_2_see_other_uri() {
    let b = parse(
        "<body condition='see-other-uri'
      type='terminate'
      xmlns='http://jabber.org/protocol/httpbind'>
  <uri>https://secure.jabber.org/xmppcm</uri>
</body>",
    );
    assert_eq!(b.condition, Some(Condition::SeeOtherUri));
    assert_eq!(b.uri.as_deref(), Some("https://secure.jabber.org/xmppcm"));
    assert!(b.payloads.is_empty());
    // Written back, it reads the same.
    assert_eq!(
        parse(std::str::from_utf8(&b.to_bytes().unwrap()).unwrap()),
        b
    );
}

/// XEP-0124 section 17.2, "Remote error": a message, then the
/// `stream:error` (with an RFC 3920 condition and an application one).
#[test]
fn xep0124_17_2_remote_stream_error() {
    let b = parse(
        "<body condition='remote-stream-error'
      type='terminate'
      xmlns='http://jabber.org/protocol/httpbind'
      xmlns:stream='http://etherx.jabber.org/streams'>
  <message from='contact@example.com'
           to='user@example.com'
           xmlns='jabber:client'>
    <body>I said \"Hi!\"</body>
  </message>
  <stream:error>
    <xml-not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>
    <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'
          xml:lang='en'>
      Some special application diagnostic information!
    </text>
    <escape-your-data xmlns='application-ns'/>
  </stream:error>
</body>",
    );
    assert_eq!(b.condition, Some(Condition::RemoteStreamError));
    assert!(b.payloads[0].is("message", CLIENT));
    assert!(b.payloads[1].is("error", STREAM));
    assert!(b.payloads[1].has_child("escape-your-data", "application-ns"));
}

/// XEP-0124 section 17.3, "Recoverable error".
#[test]
fn xep0124_17_3_recoverable_error() {
    let b = parse("<body type='error' xmlns='http://jabber.org/protocol/httpbind'/>");
    assert_eq!(b.kind, Some(BodyType::Error));
}

/// XEP-0206 section 3, "Requesting a session with a version attribute".
#[test]
fn xep0206_3_session_request_with_version() {
    let b = parse(
        "<body content='text/xml; charset=utf-8'
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
      xmlns:stream='http://etherx.jabber.org/streams'/>",
    );
    assert_eq!(b.xmpp_version.as_deref(), Some("1.0"));
    assert!(!b.restart);
}

/// XEP-0206 section 4, "Session creation response with stream features".
#[test]
fn xep0206_4_creation_response_with_features() {
    let b = parse(
        "<body wait='60'
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
    <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>
    <session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>
  </stream:features>
</body>",
    );
    assert_eq!(b.authid.as_deref(), Some("ServerStreamID"));
    assert_eq!(b.xmpp_version.as_deref(), Some("1.0"));
    assert_eq!(b.payloads.len(), 1);
    let f = &b.payloads[0];
    assert!(f.is("features", STREAM));
    assert!(f.has_child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"));
}

/// XEP-0206 section 5: SASL step 1 and 6, "Restart a stream request",
/// and "Restart a stream result" (whose `stream:` prefix the example
/// leaves undeclared: accepted, the prefix is bound in advance).
#[test]
fn xep0206_5_sasl_and_restart() {
    let b = parse(
        "<body rid='1573741821'
      sid='SomeSID'
      xmlns='http://jabber.org/protocol/httpbind'>
  <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>
</body>",
    );
    assert!(b.payloads[0].is("auth", "urn:ietf:params:xml:ns:xmpp-sasl"));
    let b = parse(
        "<body xmlns='http://jabber.org/protocol/httpbind'>
  <success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>
</body>",
    );
    assert!(b.payloads[0].is("success", "urn:ietf:params:xml:ns:xmpp-sasl"));
    let b = parse(
        "<body rid='1573741824'
      sid='SomeSID'
      to='jabber.org'
      xml:lang='en'
      xmpp:restart='true'
      xmlns='http://jabber.org/protocol/httpbind'
      xmlns:xmpp='urn:xmpp:xbosh'/>",
    );
    assert!(b.restart);
    assert_eq!(b.to.as_deref(), Some("jabber.org"));
    let b = parse(
        "<body xmlns='http://jabber.org/protocol/httpbind'>
  <stream:features>
    <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>
  </stream:features>
</body>",
    );
    assert!(b.payloads[0].is("features", STREAM));
}

/// XEP-0206 section 5, "Resource binding request".
#[test]
fn xep0206_5_bind() {
    let b = parse(
        "<body rid='1573741825'
      sid='SomeSID'
      xmlns='http://jabber.org/protocol/httpbind'>
  <iq id='bind_1'
      type='set'
      xmlns='jabber:client'>
    <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>
      <resource>httpclient</resource>
    </bind>
  </iq>
</body>",
    );
    let bind = b.payloads[0]
        .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
        .unwrap();
    assert_eq!(
        bind.get_child("resource", "urn:ietf:params:xml:ns:xmpp-bind")
            .unwrap()
            .text(),
        "httpclient"
    );
}

/// XEP-0206 section 2: stanzas written without their own namespace are
/// in `jabber:client`, descendants included.
#[test]
fn xep0206_2_unqualified_stanzas_are_jabber_client() {
    let b = parse(
        "<body rid='5' sid='s' xmlns='http://jabber.org/protocol/httpbind'>\
         <message to='a@b'><body>hi</body><x xmlns='urn:x'><y/></x></message></body>",
    );
    let m = &b.payloads[0];
    assert!(m.is("message", CLIENT));
    assert_eq!(m.get_child("body", CLIENT).unwrap().text(), "hi");
    assert!(m.get_child("x", "urn:x").unwrap().has_child("y", "urn:x"));
}

/// What the writer makes reads back equal, with `xmlns='jabber:client'`
/// once per stanza, `stream:` bound on the body, no other declaration.
#[test]
fn written_bodies_read_back() {
    let mut message = Element::builder("message", CLIENT)
        .attr("to".try_into().unwrap(), "juliet@example.com")
        .build();
    message.append_child(Element::builder("body", CLIENT).append("O Romeo").build());
    let features = Element::builder("features", STREAM)
        .append(Element::bare("bind", "urn:ietf:params:xml:ns:xmpp-bind"))
        .build();
    let body = Body {
        rid: Some(MAX_RID),
        sid: Some("s<'&".into()),
        restart: true,
        to: Some("example.com".into()),
        xmpp_version: Some("1.0".into()),
        payloads: vec![features, message],
        ..Body::default()
    };
    let bytes = body.to_bytes().unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert_eq!(text.matches("xmlns='jabber:client'").count(), 1, "{text}");
    assert!(text.contains("xmlns:stream='http://etherx.jabber.org/streams'"));
    assert!(text.contains("<stream:features>"));
    assert!(text.contains("xmpp:restart='true'") && text.contains("xmlns:xmpp='urn:xmpp:xbosh'"));
    assert_eq!(Body::parse(&bytes, &Limits::default()).unwrap(), body);
}

#[test]
fn declaration_and_whitespace_around_the_body_are_accepted() {
    let b = parse("\n<?xml version='1.0' encoding='utf-8'?>\n<body rid='7' xmlns='http://jabber.org/protocol/httpbind'/>\r\n");
    assert_eq!(b.rid, Some(7));
}

#[test]
fn bad_bodies_are_refused_with_their_condition() {
    type Check = fn(&BodyError) -> bool;
    let cases: Vec<(&[u8], Check)> = vec![
        (b"", |e| *e == BodyError::Incomplete),
        (b"<body xmlns='http://jabber.org/protocol/httpbind'>", |e| {
            *e == BodyError::Incomplete
        }),
        (b"<body/>", |e| *e == BodyError::NotABody),
        (b"<body xmlns='jabber:client'/>", |e| *e == BodyError::NotABody),
        (b"<message xmlns='http://jabber.org/protocol/httpbind'/>", |e| {
            *e == BodyError::NotABody
        }),
        (b"hello", |e| *e == BodyError::NotABody),
        (
            b"<body xmlns='http://jabber.org/protocol/httpbind'/><body xmlns='http://jabber.org/protocol/httpbind'/>",
            |e| *e == BodyError::TrailingData,
        ),
        (b"<body xmlns='http://jabber.org/protocol/httpbind'>text</body>", |e| {
            *e == BodyError::TextInBody
        }),
        (b"<body rid='9007199254740992' xmlns='http://jabber.org/protocol/httpbind'/>", |e| {
            matches!(e, BodyError::BadAttribute { name: "rid", .. })
        }),
        (b"<body rid='-1' xmlns='http://jabber.org/protocol/httpbind'/>", |e| {
            matches!(e, BodyError::BadAttribute { name: "rid", .. })
        }),
        (b"<body wait='99999999999' xmlns='http://jabber.org/protocol/httpbind'/>", |e| {
            matches!(e, BodyError::BadAttribute { name: "wait", .. })
        }),
        (b"<body type='bogus' xmlns='http://jabber.org/protocol/httpbind'/>", |e| {
            matches!(e, BodyError::BadAttribute { name: "type", .. })
        }),
        (
            b"<body xmpp:restart='yes' xmlns:xmpp='urn:xmpp:xbosh' xmlns='http://jabber.org/protocol/httpbind'/>",
            |e| matches!(e, BodyError::BadAttribute { name: "xmpp:restart", .. }),
        ),
        (b"<!DOCTYPE body><body xmlns='http://jabber.org/protocol/httpbind'/>", |e| {
            matches!(e, BodyError::Xml(ReadError::Restricted(_)))
        }),
        (b"<body xmlns='http://jabber.org/protocol/httpbind'><a>&xxe;</a></body>", |e| {
            matches!(e, BodyError::Xml(ReadError::Restricted(_)))
        }),
        (b"<body xmlns='http://jabber.org/protocol/httpbind'><a:b/></body>", |e| {
            matches!(e, BodyError::Xml(ReadError::UnboundPrefix(_)))
        }),
        (b"<?xml version='1.0' encoding='latin1'?><body xmlns='http://jabber.org/protocol/httpbind'/>", |e| {
            matches!(e, BodyError::Xml(ReadError::NotUtf8))
        }),
    ];
    for (bytes, check) in cases {
        let e = refused(bytes);
        assert!(check(&e), "{}: {e:?}", String::from_utf8_lossy(bytes));
        assert_eq!(e.condition(), Condition::BadRequest, "{e:?}");
    }
}

/// The crate's limits bound a body: bytes, depth, heap; over a limit is
/// `policy-violation`.
#[test]
fn limits_bound_a_body() {
    let limits = Limits {
        max_element_bytes: 4096,
        max_depth: 8,
        ..Limits::default()
    };
    let mut big = b"<body xmlns='http://jabber.org/protocol/httpbind'>".to_vec();
    big.extend(std::iter::repeat_n(b"<a/>".as_slice(), 2000).flatten());
    big.extend_from_slice(b"</body>");
    let e = Body::parse(&big, &limits).unwrap_err();
    assert_eq!(
        e,
        BodyError::Xml(ReadError::LimitExceeded {
            limit: Limit::ElementBytes,
            max: 4096
        })
    );
    assert_eq!(e.condition(), Condition::PolicyViolation);
    let deep = format!(
        "<body xmlns='{NS_HTTPBIND}'>{}{}</body>",
        "<a>".repeat(10),
        "</a>".repeat(10)
    );
    let e = Body::parse(deep.as_bytes(), &limits).unwrap_err();
    assert!(matches!(
        e,
        BodyError::Xml(ReadError::LimitExceeded {
            limit: Limit::Depth,
            ..
        })
    ));
    let heap = Limits {
        max_element_heap: 8 * 1024,
        ..Limits::default()
    };
    let e = Body::parse(&big, &heap).unwrap_err();
    assert!(matches!(
        e,
        BodyError::Xml(ReadError::LimitExceeded {
            limit: Limit::ElementHeap,
            ..
        })
    ));
}
