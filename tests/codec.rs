//! The XML stream codec against real exchanges, malformed input, limits and
//! arbitrary chunking.

mod support;

use minidom::Element;
use proptest::prelude::*;
use support::{Dir, Transcript};
use xmpp_sansio::ns;
use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition};
use xmpp_sansio::xml::{
    Limit, Limits, ReadError, Restricted, StreamEvent, StreamHeader, StreamReader, StreamWriter,
    WriteError,
};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

/// Reads `input` like a negotiating peer: after `<proceed/>` (TLS) and SASL
/// `<success/>` the stream restarts with a fresh parser on exactly the
/// bytes that follow.
fn read_as_peer(input: &[u8]) -> (Vec<StreamEvent>, Option<ReadError>) {
    let mut reader = StreamReader::default();
    let mut rest = input;
    let mut events = Vec::new();
    loop {
        match reader.read(&mut rest) {
            Ok(Some(ev)) => {
                let restart = matches!(&ev, StreamEvent::Element(el)
                    if el.is("proceed", ns::TLS) || el.is("success", ns::SASL));
                events.push(ev);
                if restart {
                    reader.reset();
                }
            }
            Ok(None) => return (events, None),
            Err(e) => return (events, Some(e)),
        }
    }
}

/// Everything `reader` yields from `input`.
fn read_all(reader: &mut StreamReader, mut input: &[u8]) -> Result<Vec<StreamEvent>, ReadError> {
    let mut out = Vec::new();
    while let Some(ev) = reader.read(&mut input)? {
        out.push(ev);
    }
    assert!(
        input.is_empty(),
        "Ok(None) must mean all input was consumed"
    );
    Ok(out)
}

fn read_one_stream(input: &[u8]) -> Result<Vec<StreamEvent>, ReadError> {
    read_all(&mut StreamReader::default(), input)
}

fn elements(events: &[StreamEvent]) -> Vec<&Element> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Element(el) => Some(el),
            _ => None,
        })
        .collect()
}

fn headers(events: &[StreamEvent]) -> Vec<&StreamHeader> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Header(h) => Some(h),
            _ => None,
        })
        .collect()
}

fn mechanisms(features: &Element) -> Vec<String> {
    features
        .get_child("mechanisms", ns::SASL)
        .map(|m| {
            m.children()
                .filter(|c| c.is("mechanism", ns::SASL))
                .map(|c| c.text())
                .collect()
        })
        .unwrap_or_default()
}

fn parse(xml: &str) -> Element {
    xml.parse().unwrap()
}

// ---------------------------------------------------------------------
// Seeds

#[test]
fn seed000_gtalk_server_side_parses_into_expected_events() {
    let t = Transcript::load("seeds/seed000_gtalk.txt");
    let (events, err) = read_as_peer(&t.bytes_of(Dir::S));
    assert_eq!(err, None);
    let hs = headers(&events);
    assert_eq!(hs.len(), 3);
    let ids: Vec<_> = hs.iter().map(|h| h.id.as_deref().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "X0B367FC8A9597BA4",
            "X1A565C1E8E3FD7CA",
            "X77D6827CD0B365BA"
        ]
    );
    for h in &hs {
        assert_eq!(h.from.as_deref(), Some("gmail.com"));
        assert_eq!(h.version.as_deref(), Some("1.0"));
        assert_eq!(h.content_ns.as_deref(), Some(ns::JABBER_CLIENT));
        assert_eq!(h.stream_prefix.as_deref(), Some("stream"));
        assert!(!h.is_pre_1_0());
    }
    let els = elements(&events);
    let names: Vec<(&str, String)> = els.iter().map(|e| (e.name(), e.ns())).collect();
    assert_eq!(
        names,
        [
            ("features", ns::STREAM.to_owned()),
            ("proceed", ns::TLS.to_owned()),
            ("features", ns::STREAM.to_owned()),
            ("success", ns::SASL.to_owned()),
            ("features", ns::STREAM.to_owned()),
            ("iq", ns::JABBER_CLIENT.to_owned()),
            ("iq", ns::JABBER_CLIENT.to_owned()),
        ]
    );
    assert!(els[0].has_child("starttls", ns::TLS));
    assert_eq!(mechanisms(els[0]), ["X-GOOGLE-TOKEN"]);
    // The blog's stray backslash is text inside <mechanisms/>, not a name.
    assert_eq!(mechanisms(els[2]), ["PLAIN", "X-GOOGLE-TOKEN"]);
    assert!(els[4].has_child("bind", ns::BIND) && els[4].has_child("session", ns::SESSION));
    let jid = els[5]
        .get_child("bind", ns::BIND)
        .and_then(|b| b.get_child("jid", ns::BIND))
        .map(|j| j.text());
    assert_eq!(jid.as_deref(), Some("XXXXXXXX@gmail.com/D922F673"));
    assert_eq!(els[6].attr("id"), Some("sess_1"));
    assert_eq!(els[6].attr("type"), Some("result"));
}

#[test]
fn seed000_client_side_parses_too() {
    // The client's headers have no XML declaration and line breaks inside
    // the tag; it restarts after TLS and SASL, so each stream is read by a
    // fresh reader, and its last one ends with </stream:stream>.
    let t = Transcript::load("seeds/seed000_gtalk.txt");
    let text = String::from_utf8(t.bytes_of(Dir::C)).unwrap();
    let starts: Vec<usize> = text
        .match_indices("<stream:stream")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 3);
    let seg = |i: usize| &text[starts[i]..*starts.get(i + 1).unwrap_or(&text.len())];
    let first = read_one_stream(seg(0).as_bytes()).unwrap();
    assert_eq!(headers(&first)[0].to.as_deref(), Some("gmail.com"));
    assert!(elements(&first)[0].is("starttls", ns::TLS));
    let second = read_one_stream(seg(1).as_bytes()).unwrap();
    assert_eq!(elements(&second)[0].attr("mechanism"), Some("PLAIN"));
    let third = read_one_stream(seg(2).as_bytes()).unwrap();
    let names: Vec<_> = elements(&third)
        .iter()
        .map(|e| e.attr("id").unwrap().to_owned())
        .collect();
    assert_eq!(names, ["bind_1", "sess_1"]);
    assert_eq!(third.last(), Some(&StreamEvent::Closed));
}

#[test]
fn seed004_digest_md5_server_side_parses_into_expected_events() {
    let t = Transcript::load("seeds/seed004_digest_md5.txt");
    let (events, err) = read_as_peer(&t.bytes_of(Dir::S));
    assert_eq!(err, None);
    let hs = headers(&events);
    assert_eq!(hs.len(), 2);
    assert_eq!(hs[0].id.as_deref(), Some("c2s_234"));
    assert_eq!(hs[1].id.as_deref(), Some("c2s_345"));
    let els = elements(&events);
    let names: Vec<&str> = els.iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        ["features", "challenge", "challenge", "success", "features"]
    );
    assert_eq!(mechanisms(els[0]), ["DIGEST-MD5", "PLAIN"]);
    let challenge = xmpp_sansio::sasl::decode_payload(&els[1].text())
        .unwrap()
        .unwrap();
    assert_eq!(
        challenge,
        b"realm=\"somerealm\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",charset=utf-8,algorithm=md5-sess\n"
    );
    let rspauth = xmpp_sansio::sasl::decode_payload(&els[2].text())
        .unwrap()
        .unwrap();
    assert_eq!(rspauth, b"rspauth=ea40f60335c427b5527b84dbabcdfffd\n");
    assert!(els[4].has_child("bind", ns::BIND));
}

// ---------------------------------------------------------------------
// Real Prosody captures

#[test]
fn every_prosody_capture_parses_server_side() {
    let all = Transcript::all_in("prosody");
    assert!(all.len() >= 50, "fixtures missing");
    for t in all.iter().flat_map(|t| t.connections()) {
        let s = t.bytes_of(Dir::S);
        let (events, err) = read_as_peer(&s);
        assert_eq!(err, None, "{}", t.name);
        let text = String::from_utf8_lossy(&s);
        // One Header event per header sent.
        assert_eq!(
            headers(&events).len(),
            text.matches("<stream:stream").count(),
            "{}",
            t.name
        );
        for h in headers(&events) {
            assert_eq!(h.version.as_deref(), Some("1.0"), "{}", t.name);
            assert!(h.id.is_some(), "{}", t.name);
            assert_eq!(h.content_ns.as_deref(), Some(ns::JABBER_CLIENT));
        }
        // The capturing client's own list of offered mechanisms, from its
        // annotations, matches ours, features by features.
        let ours: Vec<Vec<String>> = elements(&events)
            .iter()
            .filter(|e| e.is("features", ns::STREAM) && e.has_child("mechanisms", ns::SASL))
            .map(|e| mechanisms(e))
            .collect();
        let theirs: Vec<Vec<String>> = t
            .notes()
            .iter()
            .filter_map(|n| n.strip_prefix("offered SASL mechanisms: "))
            .map(|l| {
                l.trim_matches(|c| c == '[' || c == ']')
                    .split(", ")
                    .filter(|s| !s.is_empty())
                    .map(|s| s.trim_matches('\'').to_owned())
                    .collect()
            })
            .collect();
        for (i, theirs) in theirs.iter().enumerate() {
            if !theirs.is_empty() {
                assert_eq!(ours.get(i), Some(theirs), "{} features #{i}", t.name);
            }
        }
        // The close is seen when the server sent it.
        assert_eq!(
            events.iter().any(|e| matches!(e, StreamEvent::Closed)),
            text.contains("</stream:stream>"),
            "{}",
            t.name
        );
    }
}

#[test]
fn every_prosody_capture_parses_client_side_per_stream() {
    // Client bytes: the client restarts on the server's proceed/success,
    // so split its bytes at each of its own headers.
    for t in Transcript::all_in("prosody") {
        let c = t.bytes_of(Dir::C);
        let text = String::from_utf8(c).unwrap();
        let mut starts: Vec<usize> = text.match_indices("<?xml").map(|(i, _)| i).collect();
        starts.push(text.len());
        for w in starts.windows(2) {
            let seg = &text[w[0]..w[1]];
            let events = read_one_stream(seg.as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e} in {seg}", t.name));
            let h = headers(&events);
            assert_eq!(h.len(), 1, "{}", t.name);
            assert!(h[0].to.is_some());
            assert_eq!(h[0].lang.as_deref(), Some("en"));
        }
    }
}

#[test]
fn captured_read_chunks_give_the_same_events_as_one_buffer() {
    for t in Transcript::all_in("prosody")
        .iter()
        .flat_map(|t| t.connections())
    {
        let whole = read_as_peer(&t.bytes_of(Dir::S));
        // Feed the server's reads exactly as they arrived.
        let mut reader = StreamReader::default();
        let mut events = Vec::new();
        for chunk in t.chunks_of(Dir::S) {
            let mut rest = &chunk[..];
            while let Some(ev) = reader.read(&mut rest).unwrap() {
                let restart = matches!(&ev, StreamEvent::Element(el)
                    if el.is("proceed", ns::TLS) || el.is("success", ns::SASL));
                events.push(ev);
                if restart {
                    reader.reset();
                }
            }
        }
        assert_eq!(events, whole.0, "{}", t.name);
    }
}

// ---------------------------------------------------------------------
// Headers

#[test]
fn header_forms() {
    // Pre-1.0 stream (seed 001, Jabber 1.4): no version, still valid.
    let seed001 = b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' id='3B2DB1A7' xmlns='jabber:client' from='yak'>";
    let ev = read_one_stream(seed001).unwrap();
    let h = headers(&ev)[0];
    assert_eq!(h.version, None);
    assert!(h.is_pre_1_0());
    assert_eq!(h.version_numbers(), Some((0, 9)));
    assert_eq!(h.id.as_deref(), Some("3B2DB1A7"));
    // Another prefix for the streams namespace, no XML declaration,
    // jabber:server, xml:lang.
    let other = b"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server' xml:lang='fr' version='1.0' to='a.example' from='b.example'><s:features/>";
    let ev = read_one_stream(other).unwrap();
    let h = headers(&ev)[0];
    assert_eq!(h.stream_prefix.as_deref(), Some("s"));
    assert_eq!(h.content_ns.as_deref(), Some(ns::JABBER_SERVER));
    assert_eq!(h.lang.as_deref(), Some("fr"));
    assert_eq!(
        (h.to.as_deref(), h.from.as_deref()),
        (Some("a.example"), Some("b.example"))
    );
    assert!(elements(&ev)[0].is("features", ns::STREAM));
    // Version 2.0 is reported as such; deciding is the state machine's job.
    let v2 = HEADER.replace(" version='1.0'>", " version='2.0'>");
    assert_eq!(
        headers(&read_one_stream(v2.as_bytes()).unwrap())[0].version_numbers(),
        Some((2, 0))
    );
}

// ---------------------------------------------------------------------
// Exact byte accounting

#[test]
fn bytes_after_proceed_are_never_parsed() {
    let mut input = Vec::new();
    input.extend_from_slice(HEADER.as_bytes());
    input.extend_from_slice(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    let tls = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03<not xml";
    input.extend_from_slice(tls);
    let mut reader = StreamReader::default();
    let mut rest = &input[..];
    assert!(matches!(
        reader.read(&mut rest),
        Ok(Some(StreamEvent::Header(_)))
    ));
    let Ok(Some(StreamEvent::Element(el))) = reader.read(&mut rest) else {
        panic!("no proceed");
    };
    assert!(el.is("proceed", ns::TLS));
    assert_eq!(rest, tls);
    // Same with the long form of the element.
    let long =
        format!("{HEADER}<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'></proceed>\x16\x03");
    let mut reader = StreamReader::default();
    let mut rest = long.as_bytes();
    reader.read(&mut rest).unwrap();
    reader.read(&mut rest).unwrap();
    assert_eq!(rest, b"\x16\x03");
}

#[test]
fn restart_starts_exactly_after_success() {
    // A server's success and its client's next header in one read.
    let first = format!("{HEADER}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    let second = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='2' version='1.0'><stream:features/>";
    let input = format!("{first}{second}");
    let (events, err) = read_as_peer(input.as_bytes());
    assert_eq!(err, None);
    let hs = headers(&events);
    assert_eq!(hs.len(), 2);
    assert_eq!(hs[1].id.as_deref(), Some("2"));
    assert!(elements(&events)[1].is("features", ns::STREAM));
}

#[test]
fn keepalive_whitespace_is_not_an_event_and_not_kept() {
    let mut reader = StreamReader::new(Limits {
        max_element_bytes: 1024,
        ..Limits::default()
    });
    let mut rest = HEADER.as_bytes();
    reader.read(&mut rest).unwrap();
    // Far more whitespace than one element may span: nothing accumulates.
    let spaces = vec![b' '; 600];
    for _ in 0..100 {
        let mut rest = &spaces[..];
        assert_eq!(reader.read(&mut rest), Ok(None));
        assert!(rest.is_empty());
    }
    let mut rest: &[u8] = b"\n\t\r\n<presence/> ";
    let Ok(Some(StreamEvent::Element(p))) = reader.read(&mut rest) else {
        panic!()
    };
    assert_eq!(p.name(), "presence");
}

#[test]
fn close_and_whitespace_after_it() {
    let input = format!("{HEADER}<presence/></stream:stream>\n  ");
    let ev = read_one_stream(input.as_bytes()).unwrap();
    assert_eq!(ev.last(), Some(&StreamEvent::Closed));
}

// ---------------------------------------------------------------------
// Stream errors

#[test]
fn every_stream_error_condition_parses() {
    let names = [
        "bad-format",
        "bad-namespace-prefix",
        "conflict",
        "connection-timeout",
        "host-gone",
        "host-unknown",
        "improper-addressing",
        "internal-server-error",
        "invalid-from",
        "invalid-namespace",
        "invalid-xml",
        "not-authorized",
        "not-well-formed",
        "policy-violation",
        "remote-connection-failed",
        "reset",
        "resource-constraint",
        "restricted-xml",
        "see-other-host",
        "system-shutdown",
        "undefined-condition",
        "unsupported-encoding",
        "unsupported-feature",
        "unsupported-stanza-type",
        "unsupported-version",
    ];
    for name in names {
        let input = format!(
            "{HEADER}<stream:error><{name} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
        );
        let ev = read_one_stream(input.as_bytes()).unwrap();
        let StreamEvent::StreamError(e) = &ev[1] else {
            panic!("{name}: {ev:?}")
        };
        assert_eq!(e.condition.as_str(), name);
        assert_eq!(ev[2], StreamEvent::Closed);
    }
}

#[test]
fn stream_error_with_host_text_and_application_condition() {
    // RFC 6120 section 4.9.3.19 example, and 4.9.4's application-specific
    // condition example.
    let input = format!(
        "{HEADER}<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>[2001:41D0:1:A49b::1]:9222</see-other-host></stream:error>"
    );
    let ev = read_one_stream(input.as_bytes()).unwrap();
    let StreamEvent::StreamError(e) = &ev[1] else {
        panic!()
    };
    assert_eq!(
        e.condition.redirect(),
        Some(("2001:41D0:1:A49b::1".to_owned(), Some(9222)))
    );
    let input = format!(
        "{HEADER}<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xml:lang='en' xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Some special application diagnostic information!</text><escape-your-data xmlns='http://example.org/ns'/></stream:error>"
    );
    let ev = read_one_stream(input.as_bytes()).unwrap();
    let StreamEvent::StreamError(e) = &ev[1] else {
        panic!()
    };
    assert_eq!(e.condition, StreamErrorCondition::NotWellFormed);
    assert_eq!(
        e.text.as_deref(),
        Some("Some special application diagnostic information!")
    );
    assert_eq!(e.text_lang.as_deref(), Some("en"));
    assert!(e
        .application
        .as_ref()
        .unwrap()
        .is("escape-your-data", "http://example.org/ns"));
}

#[test]
fn written_stream_errors_read_back() {
    let w = StreamWriter::new(ns::JABBER_CLIENT);
    let errors = [
        StreamError::new(StreamErrorCondition::HostUnknown),
        StreamError::new(StreamErrorCondition::SeeOtherHost(
            "example.net:5223".into(),
        ))
        .with_text("moved <for> 'now' & \"then\""),
        StreamError {
            text_lang: Some("de".into()),
            application: Some(parse("<too-many xmlns='urn:example:app'>5</too-many>")),
            ..StreamError::new(StreamErrorCondition::PolicyViolation).with_text("zu viel")
        },
    ];
    for err in errors {
        let mut out = HEADER.as_bytes().to_vec();
        w.write_stream_error(&mut out, &err).unwrap();
        w.write_close(&mut out);
        let ev = read_one_stream(&out).unwrap();
        assert_eq!(ev[1], StreamEvent::StreamError(err.clone()));
        assert_eq!(ev[2], StreamEvent::Closed);
    }
}

// ---------------------------------------------------------------------
// Writer

fn stanzas() -> Vec<Element> {
    [
        "<message xmlns='jabber:client' to='juliet@example.com/balcony' type='chat' id='ktx72v49'><body>Art thou not Romeo, and a Montague? ✨ 日本語 ☃</body></message>",
        "<message xmlns='jabber:client' to='a@b'><body>5 &lt; 6 &amp;&amp; 7 &gt; 3; ]]&gt; \"quoted\" 'single'</body></message>",
        "<presence xmlns='jabber:client' from='a@b/c'><show>away</show><status xml:lang='en'>it's \"late\"</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://x' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>",
        "<iq xmlns='jabber:client' type='set' id='a&apos;b&quot;c'><query xmlns='jabber:iq:roster'><item jid='x@y' name='O&apos;Brien &amp; &quot;co&quot;'><group>Friends</group></item></query></iq>",
        "<iq xmlns='jabber:client' type='get' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:data'><item id='1'><data xmlns='urn:xmpp:avatar:data'>qANQR1DBwU4DX7jmYZnncm</data></item></items></pubsub></iq>",
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-OAUTH2' xmlns:auth='http://www.google.com/talk/protocol/auth' auth:service='oauth2'>AGp1bGlldAB0b2tlbg==</auth>",
        "<message xmlns='jabber:client'><body>line one\nline\ttwo\r\nthree</body><x xmlns='jabber:x:data' type='form'><field var='a' label='tab&#9;and&#10;newline'/></x></message>",
        "<features xmlns='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></features>",
        "<iq xmlns='jabber:client'><inner xmlns='jabber:client'><deeper/></inner><other xmlns='urn:x'><back xmlns='jabber:client'/></other></iq>",
    ]
    .iter()
    .map(|s| parse(s))
    .collect()
}

#[test]
fn writer_round_trips_varied_stanzas() {
    let w = StreamWriter::new(ns::JABBER_CLIENT);
    let mut out = HEADER.as_bytes().to_vec();
    let input = stanzas();
    for el in &input {
        w.write_element(&mut out, el).unwrap();
    }
    let ev = read_one_stream(&out).unwrap();
    let got: Vec<Element> = elements(&ev).into_iter().cloned().collect();
    assert_eq!(got, input);
    // Attribute values keep their whitespace characters exactly.
    let field = got[6]
        .get_child("x", "jabber:x:data")
        .unwrap()
        .get_child("field", "jabber:x:data")
        .unwrap();
    assert_eq!(field.attr("label"), Some("tab\tand\nnewline"));
    // A carriage return survives (written as a reference, so line-end
    // normalisation keeps it).
    let cr = Element::builder("body", ns::JABBER_CLIENT)
        .append("a\r\nb\rc")
        .build();
    let mut out = HEADER.as_bytes().to_vec();
    w.write_element(&mut out, &cr).unwrap();
    assert_eq!(
        elements(&read_one_stream(&out).unwrap())[0].text(),
        "a\r\nb\rc"
    );
}

#[test]
fn writer_omits_redundant_xmlns_and_prefixes_stream_elements() {
    let w = StreamWriter::new(ns::JABBER_CLIENT);
    let mut out = Vec::new();
    w.write_element(
        &mut out,
        &parse("<presence xmlns='jabber:client'><show>dnd</show></presence>"),
    )
    .unwrap();
    assert_eq!(out, b"<presence><show>dnd</show></presence>");
    out.clear();
    w.write_element(&mut out, &parse("<features xmlns='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></features>")).unwrap();
    assert_eq!(
        out,
        b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
    );
    out.clear();
    w.write_header(
        &mut out,
        &StreamHeader {
            to: Some("ex'ample.com".into()),
            version: Some("1.0".into()),
            lang: Some("en".into()),
            ..StreamHeader::default()
        },
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "<?xml version='1.0'?><stream:stream to='ex&apos;ample.com' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    );
    let h = headers(&read_one_stream(&out).unwrap())[0].clone();
    assert_eq!(h.to.as_deref(), Some("ex'ample.com"));
}

#[test]
fn writer_refuses_what_xml_cannot_carry() {
    let w = StreamWriter::new(ns::JABBER_CLIENT);
    let mut out = b"keep".to_vec();
    let bad_text = Element::builder("message", ns::JABBER_CLIENT)
        .append("bell \u{7}")
        .build();
    assert_eq!(
        w.write_element(&mut out, &bad_text),
        Err(WriteError::InvalidChar(7))
    );
    let bad_name = Element::builder("a b", ns::JABBER_CLIENT).build();
    assert!(matches!(
        w.write_element(&mut out, &bad_name),
        Err(WriteError::InvalidName(_))
    ));
    let nonchar = Element::builder("m", ns::JABBER_CLIENT)
        .append("\u{FFFE}")
        .build();
    assert_eq!(
        w.write_element(&mut out, &nonchar),
        Err(WriteError::InvalidChar(0xFFFE))
    );
    let xmlns_el = Element::builder("x", "http://www.w3.org/2000/xmlns/").build();
    assert!(matches!(
        w.write_element(&mut out, &xmlns_el),
        Err(WriteError::InvalidName(_))
    ));
    // Nothing partial was left behind.
    assert_eq!(out, b"keep");
}

#[test]
fn element_in_the_xml_namespace_round_trips() {
    // Found by fuzzing: `<xml:g/>` is namespace-well-formed; the writer
    // must use the predefined prefix, never bind it as a default.
    let input = format!("{HEADER}<message><xml:g/></message>");
    let ev = read_one_stream(input.as_bytes()).unwrap();
    let el = elements(&ev)[0].clone();
    let w = StreamWriter::new(ns::JABBER_CLIENT);
    let mut out = HEADER.as_bytes().to_vec();
    w.write_element(&mut out, &el).unwrap();
    assert!(String::from_utf8_lossy(&out).ends_with("<message><xml:g/></message>"));
    assert_eq!(elements(&read_one_stream(&out).unwrap())[0], &el);
}

// ---------------------------------------------------------------------
// Malformed input: typed error and the condition the peer gets

fn after_header(body: &str) -> ReadError {
    let input = format!("{HEADER}{body}");
    read_one_stream(input.as_bytes()).expect_err(body)
}

#[test]
fn malformed_input_gives_typed_errors_and_conditions() {
    use StreamErrorCondition as C;
    let cases: Vec<(ReadError, C)> =
        vec![
        (after_header("<message><body>x</message>"), C::NotWellFormed),
        (after_header("<message a='1' a='2'/>"), C::NotWellFormed),
        (after_header("<x:message/>"), C::NotWellFormed),
        (after_header("<message x:y='1'/>"), C::NotWellFormed),
        // Found by fuzzing: the xmlns namespace may not be bound.
        (after_header("<g xmlns='http://www.w3.org/2000/xmlns/'/>"), C::NotWellFormed),
        (after_header("<g xmlns='http://www.w3.org/XML/1998/namespace'/>"), C::NotWellFormed),
        (
            after_header("<message><body>&nbsp;</body></message>"),
            C::RestrictedXml,
        ),
        (
            after_header("<message><?php echo 1 ?></message>"),
            C::RestrictedXml,
        ),
        (
            after_header("<message><!-- c --></message>"),
            C::RestrictedXml,
        ),
        (
            after_header("<message><body>\u{1}</body></message>"),
            C::NotWellFormed,
        ),
        (after_header("hello<presence/>"), C::BadFormat),
        (after_header("</stream:stream><message/>"), C::NotWellFormed),
        (after_header("</stream:stream>junk"), C::NotWellFormed),
        (
            after_header(
                "</stream:stream><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
            ),
            C::NotWellFormed,
        ),
    ];
    for (err, cond) in &cases {
        assert_eq!(&err.condition(), cond, "{err:?}");
    }
    assert!(matches!(cases[1].0, ReadError::DuplicateAttribute(_)));
    assert_eq!(cases[2].0, ReadError::UnboundPrefix("x".into()));
    assert_eq!(cases[3].0, ReadError::UnboundPrefix("x".into()));
    assert_eq!(
        cases[6].0,
        ReadError::Restricted(Restricted::EntityReference)
    );
    assert_eq!(
        cases[7].0,
        ReadError::Restricted(Restricted::ProcessingInstruction)
    );
    assert_eq!(cases[8].0, ReadError::Restricted(Restricted::Comment));
    assert_eq!(cases[10].0, ReadError::TextAtStreamLevel);
    for c in &cases[11..] {
        assert_eq!(c.0, ReadError::DataAfterClose);
    }
}

#[test]
fn malformed_prologs_and_headers() {
    use StreamErrorCondition as C;
    let check = |input: &[u8], want: ReadError, cond: C| {
        let err = read_one_stream(input).expect_err("must fail");
        assert_eq!(err, want, "{}", String::from_utf8_lossy(input));
        assert_eq!(err.condition(), cond);
        assert_eq!(err.to_stream_error().condition, cond);
    };
    check(
        b"<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]><stream:stream/>",
        ReadError::Restricted(Restricted::Dtd),
        C::RestrictedXml,
    );
    check(
        b"<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream/>",
        ReadError::NotUtf8,
        C::UnsupportedEncoding,
    );
    let mut latin1 = HEADER.as_bytes().to_vec();
    latin1.extend_from_slice(b"<message><body>caf\xe9</body></message>");
    check(&latin1, ReadError::NotUtf8, C::UnsupportedEncoding);
    check(
        b"<?xml version='1.1'?><stream:stream/>",
        ReadError::Restricted(Restricted::XmlVersion),
        C::RestrictedXml,
    );
    check(
        b"<stream:stream xmlns:stream='http://wrong.example/streams' xmlns='jabber:client'>",
        ReadError::InvalidStreamNamespace("http://wrong.example/streams".into()),
        C::InvalidNamespace,
    );
    check(
        b"<stream:stream xmlns='jabber:client'>",
        ReadError::StreamPrefixUnbound("stream".into()),
        C::BadNamespacePrefix,
    );
    check(
        b"<html xmlns='http://etherx.jabber.org/streams'>",
        ReadError::NotAStream("html".into()),
        C::BadFormat,
    );
    let http = read_one_stream(b"GET / HTTP/1.1\r\n").expect_err("http");
    assert!(matches!(http, ReadError::NotWellFormed(_)), "{http:?}");
    assert_eq!(http.condition(), C::NotWellFormed);
}

#[test]
fn errors_are_sticky() {
    let mut reader = StreamReader::default();
    let input = format!("{HEADER}<a><b></a>");
    let mut rest = input.as_bytes();
    let first = loop {
        match reader.read(&mut rest) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("must fail"),
            Err(e) => break e,
        }
    };
    let mut more: &[u8] = b"<presence/>";
    assert_eq!(reader.read(&mut more), Err(first.clone()));
    let mut nothing: &[u8] = b"";
    assert_eq!(reader.read(&mut nothing), Err(first));
}

// ---------------------------------------------------------------------
// Limits

fn limited(limits: Limits, body: &str) -> ReadError {
    let input = format!("{HEADER}{body}");
    read_all(&mut StreamReader::new(limits), input.as_bytes()).expect_err(body)
}

#[test]
fn each_limit_has_a_typed_error() {
    let small = Limits {
        max_element_bytes: 1000,
        max_depth: 4,
        max_attributes: 4,
        max_token_bytes: 100,
        max_element_heap: 64 * 1024,
    };
    let big_body = format!("<message><body>{}</body></message>", "a".repeat(2000));
    assert_eq!(
        limited(small, &big_body),
        ReadError::LimitExceeded {
            limit: Limit::ElementBytes,
            max: 1000
        }
    );
    assert_eq!(
        limited(small, "<a><b><c><d><e/></d></c></b></a>"),
        ReadError::LimitExceeded {
            limit: Limit::Depth,
            max: 4
        }
    );
    // Depth 4 exactly is fine.
    let ok = format!("{HEADER}<a><b><c><d/></c></b></a>");
    assert!(read_all(&mut StreamReader::new(small), ok.as_bytes()).is_ok());
    assert_eq!(
        limited(small, "<a v='0' w='1' x='2' y='3' z='4'/>"),
        ReadError::LimitExceeded {
            limit: Limit::Attributes,
            max: 4
        }
    );
    let long_attr = format!("<a x='{}'/>", "v".repeat(200));
    assert_eq!(
        limited(small, &long_attr),
        ReadError::LimitExceeded {
            limit: Limit::TokenBytes,
            max: 100
        }
    );
    // Text longer than a token is split, not refused.
    let long_text = format!("{HEADER}<a>{}</a>", "t".repeat(500));
    let ev = read_all(&mut StreamReader::new(small), long_text.as_bytes()).unwrap();
    assert_eq!(elements(&ev)[0].text().len(), 500);
    // 200 tiny children fit in 1000 bytes, not in 8 KiB of heap.
    let children = format!("<a>{}</a>", "<b/>".repeat(200));
    assert_eq!(
        limited(
            Limits {
                max_element_heap: 8 * 1024,
                ..small
            },
            &children
        ),
        ReadError::LimitExceeded {
            limit: Limit::ElementHeap,
            max: 8 * 1024
        }
    );
    for limit in [
        Limit::ElementBytes,
        Limit::Depth,
        Limit::Attributes,
        Limit::TokenBytes,
        Limit::ElementHeap,
    ] {
        let e = ReadError::LimitExceeded { limit, max: 1 };
        assert_eq!(e.condition(), StreamErrorCondition::PolicyViolation);
    }
    // The header counts as an element too.
    let huge_header = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='b' c='d'>";
    assert!(matches!(
        read_all(
            &mut StreamReader::new(Limits {
                max_attributes: 2,
                ..small
            }),
            huge_header.as_bytes()
        ),
        Err(ReadError::LimitExceeded {
            limit: Limit::Attributes,
            ..
        })
    ));
    // The default is Prosody's 256 KiB.
    assert_eq!(Limits::default().max_element_bytes, 262_144);
}

#[test]
fn a_peer_trickling_one_byte_at_a_time_inside_one_element_is_stopped() {
    let limits = Limits {
        max_element_bytes: 4096,
        ..Limits::default()
    };
    let mut reader = StreamReader::new(limits);
    let mut rest = HEADER.as_bytes();
    reader.read(&mut rest).unwrap();
    let mut rest: &[u8] = b"<message><body>";
    assert_eq!(reader.read(&mut rest), Ok(None));
    let mut fed = 0usize;
    let err = loop {
        let mut one: &[u8] = b"x";
        match reader.read(&mut one) {
            Ok(None) => fed += 1,
            Ok(Some(ev)) => panic!("unexpected {ev:?}"),
            Err(e) => break e,
        }
        assert!(fed < 10_000, "never stopped");
    };
    assert_eq!(
        err,
        ReadError::LimitExceeded {
            limit: Limit::ElementBytes,
            max: 4096
        }
    );
    assert!(fed <= 4096);
    // Same inside an endless attribute value and an endless element name.
    for start in ["<message to='", "<messageeeeeeeee"] {
        let mut reader = StreamReader::new(limits);
        let mut rest = HEADER.as_bytes();
        reader.read(&mut rest).unwrap();
        let mut rest = start.as_bytes();
        reader.read(&mut rest).unwrap();
        let mut n = 0;
        let err = loop {
            let mut one: &[u8] = b"e";
            match reader.read(&mut one) {
                Ok(None) => n += 1,
                Ok(Some(ev)) => panic!("unexpected {ev:?}"),
                Err(e) => break e,
            }
            assert!(n < 10_000, "never stopped");
        };
        assert!(matches!(err, ReadError::LimitExceeded { .. }), "{err:?}");
    }
}

// ---------------------------------------------------------------------
// Chunking invariance

fn events_chunked(input: &[u8], cuts: &[usize]) -> (Vec<StreamEvent>, Option<ReadError>, usize) {
    let mut reader = StreamReader::default();
    let mut events = Vec::new();
    let mut consumed = 0;
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    for end in points {
        let mut rest = &input[start..end];
        let len = rest.len();
        loop {
            match reader.read(&mut rest) {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => return (events, Some(e), consumed + len - rest.len()),
            }
        }
        consumed += len;
        start = end;
    }
    (events, None, consumed)
}

fn sample_stream() -> Vec<u8> {
    let w = StreamWriter::new(ns::JABBER_CLIENT);
    let mut out = HEADER.as_bytes().to_vec();
    for (i, el) in stanzas().iter().enumerate() {
        w.write_element(&mut out, el).unwrap();
        if i % 3 == 0 {
            out.extend_from_slice(b" \n\t");
        }
    }
    w.write_stream_error(
        &mut out,
        &StreamError::new(StreamErrorCondition::Reset).with_text("bye"),
    )
    .unwrap();
    w.write_close(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn same_events_whatever_the_chunking(cuts in proptest::collection::vec(0usize..10_000, 0..40)) {
        let input = sample_stream();
        let whole = events_chunked(&input, &[]);
        prop_assert_eq!(whole.1.clone(), None);
        let split = events_chunked(&input, &cuts);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn same_error_whatever_the_chunking(cuts in proptest::collection::vec(0usize..10_000, 0..20), which in 0usize..4) {
        let bad = ["<message><body>&bogus;</body></message>", "<a b='1' b='2'/>", "<x:y/>", "<m>\u{1}</m>"];
        let mut input = sample_stream();
        input.truncate(input.len() - "</stream:stream>".len());
        input.extend_from_slice(bad[which].as_bytes());
        let whole = events_chunked(&input, &[]);
        prop_assert!(whole.1.is_some());
        let split = events_chunked(&input, &cuts);
        prop_assert_eq!(split.0, whole.0);
        prop_assert_eq!(split.1, whole.1);
    }

    #[test]
    fn stopping_at_a_chosen_element_leaves_exactly_the_rest(k in 0usize..9, cuts in proptest::collection::vec(0usize..10_000, 0..10)) {
        // Stop after the k-th top-level element: the untouched rest is
        // exactly the bytes after that element, whatever the chunking.
        let w = StreamWriter::new(ns::JABBER_CLIENT);
        let all = stanzas();
        let mut input = HEADER.as_bytes().to_vec();
        let mut ends = Vec::new();
        for el in &all {
            w.write_element(&mut input, el).unwrap();
            ends.push(input.len());
        }
        input.extend_from_slice(b"\x16\x03\x01TLS");
        let mut reader = StreamReader::default();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.push(input.len());
        points.sort_unstable();
        let mut seen = 0;
        let mut start = 0;
        let mut consumed = 0;
        'outer: for end in points {
            let mut rest = &input[start..end];
            let len = rest.len();
            loop {
                match reader.read(&mut rest).unwrap() {
                    Some(StreamEvent::Element(_)) => {
                        seen += 1;
                        if seen == k + 1 {
                            consumed += len - rest.len();
                            break 'outer;
                        }
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            consumed += len;
            start = end;
        }
        prop_assert_eq!(consumed, ends[k]);
    }

    #[test]
    fn arbitrary_text_and_attributes_round_trip(
        text in "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]{0,64}",
        attr in "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]{0,64}",
    ) {
        let el = Element::builder("message", ns::JABBER_CLIENT)
            .attr(rxml::NcName::try_from("id").unwrap(), attr.as_str())
            .append({
                let mut body = Element::builder("body", ns::JABBER_CLIENT).build();
                if !text.is_empty() {
                    body.append_text(text.as_str());
                }
                body
            })
            .build();
        let w = StreamWriter::new(ns::JABBER_CLIENT);
        let mut out = HEADER.as_bytes().to_vec();
        w.write_element(&mut out, &el).unwrap();
        let ev = read_one_stream(&out).unwrap();
        prop_assert_eq!(elements(&ev)[0], &el);
    }
}
