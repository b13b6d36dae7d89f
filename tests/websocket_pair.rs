//! `Client` against `Server` over RFC 7395 WebSocket framing, in memory
//! (`tests/support/pair.rs` moving whole messages): each element is one
//! message, namespaced on its own; the stream opens with `<open/>`,
//! restarts after SASL with a new `<open/>`, ends with `<close/>`; no
//! STARTTLS is offered or sent; the same role machines as over TCP.

mod support;

use minidom::Element;
use support::pair::{alice_config, server_config, Pair, TlsSim};
use xmpp_sansio::client::{ClientError, ClientEvent, PeerRefusal, TlsMode};
use xmpp_sansio::ns;
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::sasl::SaslCondition;
use xmpp_sansio::server::{ServerEvent, ServerTls};
use xmpp_sansio::{Framing, TlsInfo};

fn ws_pair(mechanism: &str, password: &str, tls: bool) -> Pair {
    let mut c = alice_config(mechanism, if tls { TlsMode::Direct } else { TlsMode::None });
    c.credentials = xmpp_sansio::client::Credentials::password(password);
    c.framing = Framing::WebSocket;
    let mut s = server_config(
        "example.com",
        &["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"],
        if tls {
            ServerTls::Direct
        } else {
            ServerTls::None
        },
    );
    s.framing = Framing::WebSocket;
    let sim = tls.then(|| {
        TlsSim::same(TlsInfo {
            version: TlsVersion::Tls13,
            channel_bindings: Vec::new(),
        })
    });
    Pair::with_alice(c, s, sim)
}

/// Each message parsed on its own, as a browser's XML parser would: one
/// element, nothing around it, every namespace declared in it.
fn parse(msg: &[u8]) -> Element {
    let text = std::str::from_utf8(msg).expect("UTF-8");
    assert!(!text.starts_with("<?xml"), "an XML declaration: {text}");
    assert_eq!(text.trim(), text, "whitespace around: {text:?}");
    text.parse::<Element>()
        .unwrap_or_else(|e| panic!("not one self-contained element: {e}: {text}"))
}

fn names(msgs: &[Vec<u8>]) -> Vec<String> {
    msgs.iter()
        .map(|m| {
            let el = parse(m);
            let short = match el.ns().as_str() {
                ns::FRAMING => "framing",
                ns::STREAM => "stream",
                ns::SASL => "sasl",
                ns::JABBER_CLIENT => "client",
                _ => "other",
            };
            format!("{short}:{}", el.name())
        })
        .collect()
}

fn message(to: &str, body: &str) -> Element {
    format!("<message xmlns='jabber:client' to='{to}' type='chat'><body>{body}</body></message>")
        .parse()
        .unwrap()
}

/// Logs in, sends a message each way, closes; returns the pair.
fn login_message_close(mechanism: &str, tls: bool) -> Pair {
    let mut p = ws_pair(mechanism, "pencil", tls);
    p.negotiate();
    assert!(p.client.is_ready(), "{mechanism}: {:?}", p.client_error());
    assert!(p.server.is_ready());
    let jid = p.client.jid().unwrap().to_string();
    p.client.send(&message("bob@example.com", "up")).unwrap();
    p.server.send(&message(&jid, "down")).unwrap();
    while p.step() {}
    let up = p.server_events.iter().find_map(|e| match e {
        ServerEvent::Stanza(el) => Some(el.clone()),
        _ => None,
    });
    let up = up.expect("the server got the client's message");
    assert_eq!(
        up.get_child("body", ns::JABBER_CLIENT).unwrap().text(),
        "up"
    );
    assert_eq!(up.attr("from"), Some(jid.as_str()));
    let down = p.client_events.iter().find_map(|e| match e {
        ClientEvent::Stanza(el) => Some(el.clone()),
        _ => None,
    });
    assert_eq!(
        down.expect("the client got the server's message")
            .get_child("body", ns::JABBER_CLIENT)
            .unwrap()
            .text(),
        "down"
    );
    p.client.close(p.now);
    p.drive();
    assert!(p.client.is_closed() && p.server.is_closed());
    assert!(p.client_error().is_none(), "{:?}", p.client_error());
    assert!(p.server_error().is_none(), "{:?}", p.server_error());
    p
}

#[test]
fn scram_over_websocket_one_element_per_message() {
    let p = login_message_close("SCRAM-SHA-256", false);
    assert_eq!(
        names(&p.up_messages),
        [
            "framing:open",
            "sasl:auth",
            "sasl:response",
            "framing:open", // the restart after <success/>
            "client:iq",    // bind
            "client:message",
            "framing:close",
        ]
    );
    assert_eq!(
        names(&p.down_messages),
        [
            "framing:open",
            "stream:features",
            "sasl:challenge",
            "sasl:success",
            "framing:open",
            "stream:features",
            "client:iq",
            "client:message",
            "framing:close",
        ]
    );
    // No STARTTLS offered, no whitespace, every element on its own.
    let down = String::from_utf8(p.down_bytes.clone()).unwrap();
    assert!(!down.contains("starttls"), "{down}");
    for m in p.down_messages.iter().chain(&p.up_messages) {
        let el = parse(m);
        if el.name() == "open" {
            assert_eq!(el.attr("version"), Some("1.0"));
            assert_eq!(el.children().count(), 0);
        }
    }
    let first = parse(&p.up_messages[0]);
    assert_eq!(first.attr("to"), Some("example.com"));
    let answer = parse(&p.down_messages[0]);
    assert_eq!(answer.attr("from"), Some("example.com"));
    assert!(answer.attr("id").is_some());
}

#[test]
fn plain_over_websocket() {
    let p = login_message_close("PLAIN", false);
    assert_eq!(
        names(&p.up_messages)[..3],
        ["framing:open", "sasl:auth", "framing:open"]
    );
}

#[test]
fn scram_over_wss_direct_tls() {
    let p = login_message_close("SCRAM-SHA-1", true);
    // Protected: the client says who it is in its <open/>.
    let first = parse(&p.up_messages[0]);
    assert_eq!(first.attr("from"), Some("alice@example.com"));
}

#[test]
fn a_wrong_password_over_websocket() {
    for mechanism in ["SCRAM-SHA-256", "PLAIN"] {
        let mut p = ws_pair(mechanism, "wrong", false);
        p.negotiate();
        p.drive();
        assert_eq!(p.server_auth_failure(), Some(SaslCondition::NotAuthorized));
        match p.client_error() {
            Some(ClientError::Refused(PeerRefusal::Authentication { condition, .. })) => {
                assert_eq!(*condition, Some(SaslCondition::NotAuthorized))
            }
            other => panic!("{mechanism}: {other:?}"),
        }
        let last = names(&p.up_messages).pop();
        assert_eq!(last.as_deref(), Some("framing:close"), "{mechanism}");
        for m in p.up_messages.iter().chain(&p.down_messages) {
            parse(m);
        }
    }
}

#[test]
fn starttls_is_neither_offered_nor_sent_over_websocket() {
    // Configured for STARTTLS on both sides: over WebSocket that means
    // "TLS (wss) required", and without it nobody authenticates.
    let mut c = alice_config("SCRAM-SHA-256", TlsMode::StartTlsRequired);
    c.framing = Framing::WebSocket;
    let mut s = server_config(
        "example.com",
        &["SCRAM-SHA-256"],
        ServerTls::StartTlsRequired,
    );
    s.framing = Framing::WebSocket;
    let mut p = Pair::with_alice(c, s, None);
    p.negotiate();
    p.drive();
    let all = String::from_utf8([p.up_bytes.clone(), p.down_bytes.clone()].concat()).unwrap();
    assert!(!all.contains("starttls"), "{all}");
    assert!(matches!(
        p.client_error(),
        Some(ClientError::Policy(
            xmpp_sansio::client::PolicyError::TlsRequired
        ))
    ));
}

/// RFC 7395 section 3.6.1: the server sends the client elsewhere with
/// `<close see-other-uri/>`; the client reports the URI (the stream was
/// protected) and both ends close.
#[test]
fn the_servers_redirect_is_a_close_with_see_other_uri() {
    let mut p = ws_pair("PLAIN", "pencil", true);
    p.negotiate();
    assert!(p.client.is_ready());
    let sent = p.down_messages.len();
    p.server
        .redirect(p.now, "wss://other.example.com/xmpp-websocket?a=1&b=2")
        .unwrap();
    p.drive();
    let redirect = parse(&p.down_messages[sent]);
    assert_eq!(
        (redirect.name(), redirect.ns().as_str()),
        ("close", ns::FRAMING)
    );
    assert_eq!(
        redirect.attr("see-other-uri"),
        Some("wss://other.example.com/xmpp-websocket?a=1&b=2")
    );
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::SeeOtherUri { uri, protected: true }
            if uri == "wss://other.example.com/xmpp-websocket?a=1&b=2"
    )));
    assert!(p.client.is_closed() && p.server.is_closed());
    assert!(p.server_error().is_none(), "{:?}", p.server_error());
}

/// Before authentication too: the client fails (closed by the peer) and
/// still reports where to go.
#[test]
fn a_redirect_before_authentication_reaches_the_client() {
    let mut p = ws_pair("PLAIN", "pencil", true);
    p.server.redirect(p.now, "wss://b.example.com/ws").unwrap();
    p.drive();
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::SeeOtherUri { uri, .. } if uri == "wss://b.example.com/ws"
    )));
    assert!(matches!(p.client_error(), Some(ClientError::ClosedByPeer)));
    assert!(p.server.is_closed());
}

/// Over TCP that redirect does not exist (the `see-other-host` stream
/// error is TCP's), and a URI XML cannot carry is refused: both times
/// nothing is sent and the stream goes on.
#[test]
fn a_redirect_the_framing_or_xml_cannot_carry_is_refused_and_sends_nothing() {
    let mut p = ws_pair("PLAIN", "pencil", true);
    p.negotiate();
    let queued = p.server.queued_output();
    assert!(matches!(
        p.server.redirect(p.now, "wss://a.example/\u{7}"),
        Err(xmpp_sansio::UsageError::Write(_))
    ));
    assert_eq!(p.server.queued_output(), queued);
    assert!(p.server.is_ready());

    let mut tcp = support::pair::Pair::with_alice(
        alice_config("PLAIN", TlsMode::None),
        server_config("example.com", &["PLAIN"], ServerTls::None),
        None,
    );
    tcp.negotiate();
    assert!(tcp.server.is_ready());
    assert_eq!(
        tcp.server.redirect(tcp.now, "wss://a.example/"),
        Err(xmpp_sansio::UsageError::RedirectNeedsWebFraming)
    );
    assert_eq!(tcp.server.queued_output(), 0);
    assert!(tcp.server.is_ready());
}
