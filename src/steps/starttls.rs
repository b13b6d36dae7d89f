//! STARTTLS (RFC 6120 section 5): `<starttls/>`, `<proceed/>`,
//! `<failure/>`.

use minidom::Element;

use crate::ns;

/// The client's `<starttls/>`.
pub fn starttls() -> Element {
    Element::builder("starttls", ns::TLS).build()
}

/// The server's `<proceed/>`.
pub fn proceed() -> Element {
    Element::builder("proceed", ns::TLS).build()
}

/// The server's `<failure/>`.
pub fn failure() -> Element {
    Element::builder("failure", ns::TLS).build()
}

/// A STARTTLS element, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsElement {
    /// `<starttls/>`.
    StartTls,
    /// `<proceed/>`.
    Proceed,
    /// `<failure/>`.
    Failure,
}

impl TlsElement {
    /// Recognises a STARTTLS element; `None` for anything else.
    pub fn parse(el: &Element) -> Option<Self> {
        if !el.has_ns(ns::TLS) {
            return None;
        }
        match el.name() {
            "starttls" => Some(Self::StartTls),
            "proceed" => Some(Self::Proceed),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }
}
