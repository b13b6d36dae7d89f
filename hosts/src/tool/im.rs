//! What common clients ask a server right after login, before they call
//! themselves online (Converse.js, Strophe.js and xmpp.js applications,
//! Conversations): their roster, what the server is and supports, a ping.
//! The example server answers these itself; everything else addressed to
//! the server or to the user's own bare JID gets `service-unavailable`.

use minidom::Element;
use xmpp_sansio::ns;

/// `jabber:iq:roster` (RFC 6121).
pub const ROSTER: &str = "jabber:iq:roster";
/// XEP-0030 service discovery, information.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0030 service discovery, items.
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// XEP-0199 ping.
pub const PING: &str = "urn:xmpp:ping";

/// Who an IQ to the server side is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressee {
    /// The server itself (`to` the domain, or no `to` for a roster or
    /// ping).
    Server,
    /// The sender's own account (`to` its bare JID).
    Account,
}

/// The answer to an IQ `get` or `set` from `sender` (its full JID)
/// addressed to `addressee`: a result for a roster request, a ping, or a
/// disco#info/items query; `None` for anything else (the caller answers
/// `service-unavailable`).
pub fn answer(el: &Element, sender: &str, addressee: Addressee) -> Option<Element> {
    let kind = el.attr("type")?;
    let query = el.children().next();
    let asks = |name: &str, namespace: &str| query.is_some_and(|q| q.is(name, namespace));
    let payload = match kind {
        // The roster: this server keeps none (no subscriptions), so it is
        // empty; a roster set is accepted and forgotten.
        "get" if asks("query", ROSTER) => Some(Element::builder("query", ROSTER).build()),
        "set" if asks("query", ROSTER) => None,
        "get" if asks("ping", PING) => None,
        "get" if asks("query", DISCO_INFO) => Some(disco_info(addressee)),
        "get" if asks("query", DISCO_ITEMS) => Some(Element::builder("query", DISCO_ITEMS).build()),
        _ => return None,
    };
    let mut b = Element::builder("iq", ns::JABBER_CLIENT)
        .attr(name("type"), "result")
        .attr(name("to"), sender);
    if let Some(id) = el.attr("id") {
        b = b.attr(name("id"), id);
    }
    if let Some(to) = el.attr("to") {
        b = b.attr(name("from"), to);
    }
    if let Some(p) = payload {
        b = b.append(p);
    }
    Some(b.build())
}

/// What the server or an account is (XEP-0030 identities and features).
fn disco_info(addressee: Addressee) -> Element {
    let (category, kind, features): (_, _, &[&str]) = match addressee {
        Addressee::Server => ("server", "im", &[DISCO_INFO, DISCO_ITEMS, PING, ROSTER]),
        Addressee::Account => ("account", "registered", &[DISCO_INFO, DISCO_ITEMS]),
    };
    let mut q = Element::builder("query", DISCO_INFO).append(
        Element::builder("identity", DISCO_INFO)
            .attr(name("category"), category)
            .attr(name("type"), kind)
            .attr(name("name"), "xmpp-sansio example server")
            .build(),
    );
    for f in features {
        q = q.append(
            Element::builder("feature", DISCO_INFO)
                .attr(name("var"), *f)
                .build(),
        );
    }
    q.build()
}

fn name(n: &str) -> rxml::NcName {
    rxml::NcName::try_from(n).expect("a valid attribute name")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iq(xml: &str) -> Element {
        xml.parse().expect("an element")
    }

    #[test]
    fn the_roster_is_empty_and_addressed_back() {
        let get = iq(
            "<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
        );
        let roster = answer(&get, "juliet@example.com/balcony", Addressee::Server).unwrap();
        assert_eq!(roster.attr("type"), Some("result"));
        assert_eq!(roster.attr("id"), Some("r1"));
        assert_eq!(roster.attr("to"), Some("juliet@example.com/balcony"));
        let q = roster.get_child("query", ROSTER).expect("a roster query");
        assert_eq!(q.children().count(), 0);
        // A roster set: an empty result.
        let set = iq("<iq xmlns='jabber:client' type='set' id='r2'><query xmlns='jabber:iq:roster'><item jid='romeo@example.net'/></query></iq>");
        let done = answer(&set, "juliet@example.com/balcony", Addressee::Server).unwrap();
        assert_eq!(done.attr("type"), Some("result"));
        assert_eq!(done.children().count(), 0);
    }

    #[test]
    fn disco_says_what_the_server_and_the_account_are() {
        let get = iq("<iq xmlns='jabber:client' type='get' id='d1' to='example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        let server = answer(&get, "juliet@example.com/b", Addressee::Server).unwrap();
        assert_eq!(server.attr("from"), Some("example.com"));
        let q = server.get_child("query", DISCO_INFO).unwrap();
        let identity = q.get_child("identity", DISCO_INFO).unwrap();
        assert_eq!(
            (identity.attr("category"), identity.attr("type")),
            (Some("server"), Some("im"))
        );
        let features: Vec<_> = q.children().filter_map(|f| f.attr("var")).collect();
        assert!(features.contains(&DISCO_INFO) && features.contains(&ROSTER));
        let account = answer(&get, "juliet@example.com/b", Addressee::Account).unwrap();
        let identity = account
            .get_child("query", DISCO_INFO)
            .and_then(|q| q.get_child("identity", DISCO_INFO))
            .unwrap();
        assert_eq!(identity.attr("category"), Some("account"));
        let items = iq("<iq xmlns='jabber:client' type='get' id='d2'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        let items = answer(&items, "juliet@example.com/b", Addressee::Server).unwrap();
        assert!(items.get_child("query", DISCO_ITEMS).is_some());
    }

    #[test]
    fn a_ping_is_answered_and_the_rest_is_not() {
        let ping =
            iq("<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
        let pong = answer(&ping, "juliet@example.com/b", Addressee::Server).unwrap();
        assert_eq!(pong.attr("type"), Some("result"));
        let vcard =
            iq("<iq xmlns='jabber:client' type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>");
        assert!(answer(&vcard, "juliet@example.com/b", Addressee::Account).is_none());
        let result = iq("<iq xmlns='jabber:client' type='result' id='x'/>");
        assert!(answer(&result, "juliet@example.com/b", Addressee::Server).is_none());
    }
}
