//! Interop with xmpp-parsers: the stanzas in our events and the ones
//! `send` takes are the `minidom::Element` xmpp-parsers converts from and
//! to (issue 12, point 12). Both crates must use one minidom (see the note
//! in Cargo.toml).

mod support;

use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Lang, Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_sansio::client::{ClientEvent, TlsMode};
use xmpp_sansio::server::{ServerEvent, ServerTls};

use support::pair::{alice_config, server_config, Pair};

/// Compiles only while the two minidoms are one: the element of our
/// events *is* xmpp-parsers' `minidom::Element`, and the one `send` takes
/// too. With two minidom versions in the tree this file stops compiling.
fn received(ev: &ClientEvent) -> Option<Element> {
    match ev {
        ClientEvent::Stanza(el) => Some(el.clone()),
        _ => None,
    }
}

fn body(m: &Message) -> Option<&str> {
    m.bodies.get(&Lang::default()).map(String::as_str)
}

#[test]
fn messages_convert_both_ways_through_a_session() {
    let c = alice_config("SCRAM-SHA-256", TlsMode::None);
    let s = server_config("example.com", &["SCRAM-SHA-256"], ServerTls::None);
    let mut pair = Pair::with_alice(c, s, None);
    pair.negotiate();
    assert!(pair.client.is_ready() && pair.server.is_ready());
    // One jid crate for both: our FullJid is theirs.
    let alice: Jid = pair.client.jid().unwrap().clone().into();

    // Server to client: built by xmpp-parsers, received by our Client,
    // read back by xmpp-parsers.
    let mut hello =
        Message::chat(alice.clone()).with_body(Lang::default(), "Art thou not Romeo?".into());
    hello.from = Some("juliet@example.com/balcony".parse().unwrap());
    pair.server.send(&Element::from(hello.clone())).unwrap();
    pair.negotiate();
    let el = pair
        .client_events
        .iter()
        .find_map(received)
        .expect("a stanza");
    let got = Message::try_from(el).expect("xmpp-parsers reads what the client received");
    assert_eq!(got.type_, MessageType::Chat);
    assert_eq!(got.from, hello.from);
    assert_eq!(body(&got), Some("Art thou not Romeo?"));

    // Client to server: built by xmpp-parsers, accepted by Client::send,
    // stamped by our Server, read back by xmpp-parsers.
    let reply = Message::chat(Jid::new("juliet@example.com/balcony").unwrap())
        .with_body(Lang::default(), "Neither, fair saint.".into());
    pair.client.send(&reply.clone().into()).unwrap();
    pair.negotiate();
    let el = pair
        .server_events
        .iter()
        .find_map(|e| match e {
            ServerEvent::Stanza(el) => Some(el.clone()),
            _ => None,
        })
        .expect("the server got it");
    let got = Message::try_from(el).unwrap();
    assert_eq!(got.from, Some(alice), "stamped with the session's JID");
    assert_eq!(got.to, reply.to);
    assert_eq!(body(&got), Some("Neither, fair saint."));
}
