//! Resource binding (RFC 6120 section 7).

use minidom::Element;

use crate::ns;
use crate::steps::{iq, StanzaError};

/// The client's bind request, with the resource it wants, or none to let
/// the server choose.
pub fn request(id: &str, resource: Option<&str>) -> Element {
    let mut bind = Element::builder("bind", ns::BIND).build();
    if let Some(r) = resource {
        bind.append_child(Element::builder("resource", ns::BIND).append(r).build());
    }
    iq("set", id).append(bind).build()
}

/// A bind request as the server reads it: the IQ id and the requested
/// resource (`None` for an empty bind). `None` when `el` is not one.
pub fn parse_request(el: &Element) -> Option<(String, Option<String>)> {
    if !el.is("iq", ns::JABBER_CLIENT) || el.attr("type") != Some("set") {
        return None;
    }
    let bind = el.get_child("bind", ns::BIND)?;
    let resource = bind
        .get_child("resource", ns::BIND)
        .map(|r| r.text().trim().to_owned())
        .filter(|r| !r.is_empty());
    Some((el.attr("id").unwrap_or_default().to_owned(), resource))
}

/// The server's result carrying the full JID.
pub fn result(id: &str, jid: &str) -> Element {
    iq("result", id)
        .append(
            Element::builder("bind", ns::BIND)
                .append(Element::builder("jid", ns::BIND).append(jid).build())
                .build(),
        )
        .build()
}

/// What the client learns from the reply to its bind request.
pub fn parse_reply(el: &Element) -> Result<String, StanzaError> {
    match el.attr("type") {
        Some("result") => el
            .get_child("bind", ns::BIND)
            .and_then(|b| b.get_child("jid", ns::BIND))
            .map(|j| j.text().trim().to_owned())
            .filter(|j| !j.is_empty())
            .ok_or(StanzaError {
                error_type: "cancel".into(),
                condition: "bad-request".into(),
                text: Some("bind result without a JID".into()),
            }),
        _ => Err(StanzaError::from_iq(el)),
    }
}
