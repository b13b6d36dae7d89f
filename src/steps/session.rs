//! RFC 3921 session establishment: `<iq type='set'><session/></iq>`.

use minidom::Element;

use crate::ns;
use crate::steps::{iq, name};

/// The client's session request (seed 000 sends it `to` the domain).
pub fn request(id: &str, to: &str) -> Element {
    iq("set", id)
        .attr(name("to"), to)
        .append(Element::builder("session", ns::SESSION).build())
        .build()
}

/// Whether `el` is a session request; its id if so.
pub fn parse_request(el: &Element) -> Option<&str> {
    (el.is("iq", ns::JABBER_CLIENT)
        && el.attr("type") == Some("set")
        && el.has_child("session", ns::SESSION))
    .then(|| el.attr("id").unwrap_or_default())
}

/// The server's empty result.
pub fn result(id: &str) -> Element {
    iq("result", id).build()
}
