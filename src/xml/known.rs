//! Elements every negotiation reads, built once per process.
//!
//! A minidom `Element` built from a name and a namespace costs three
//! heap blocks (the name, the namespace name, the `Arc` rxml keeps it
//! in); a clone costs one (the name), the namespace being shared. The
//! reader clones the element of a known name and namespace from this
//! table instead of building it: about a fifth of the allocations of a
//! negotiation.

use std::sync::LazyLock;

use minidom::Element;

use crate::ns;

/// The names this table knows, by namespace; the namespaces most
/// elements of a negotiation are in first.
const KNOWN: &[(&str, &[&str])] = &[
    (
        ns::SASL,
        &[
            "mechanisms",
            "mechanism",
            "auth",
            "challenge",
            "response",
            "success",
            "failure",
            "abort",
            "text",
            "not-authorized",
        ],
    ),
    (ns::JABBER_CLIENT, &["iq", "message", "presence", "body"]),
    (ns::STREAM, &["features", "error"]),
    (ns::BIND, &["bind", "resource", "jid", "required"]),
    (ns::TLS, &["starttls", "proceed", "failure", "required"]),
    (ns::SESSION, &["session", "optional"]),
    (
        ns::SASL2,
        &[
            "authentication",
            "mechanism",
            "inline",
            "authenticate",
            "initial-response",
            "user-agent",
            "software",
            "device",
            "challenge",
            "response",
            "success",
            "failure",
            "continue",
            "additional-data",
            "authorization-identifier",
            "abort",
            "text",
        ],
    ),
    (ns::BIND2, &["bind", "inline", "feature", "tag", "bound"]),
    (
        ns::SM,
        &[
            "sm", "enable", "enabled", "resume", "resumed", "failed", "r", "a",
        ],
    ),
    (ns::FAST, &["fast", "mechanism", "request-token", "token"]),
    (ns::SASL_CB, &["sasl-channel-binding", "channel-binding"]),
    (ns::FRAMING, &["open", "close"]),
];

/// The elements of [`KNOWN`], in its order.
static TABLE: LazyLock<Vec<(&'static str, Vec<Element>)>> = LazyLock::new(|| {
    KNOWN
        .iter()
        .map(|&(ns, names)| (ns, names.iter().map(|&n| Element::bare(n, ns)).collect()))
        .collect()
});

/// An empty element `name` in `ns`, cloned from the table; `None` for a
/// name or namespace it does not know.
pub(crate) fn element(name: &str, ns: &str) -> Option<Element> {
    TABLE
        .iter()
        .find(|(n, _)| *n == ns)?
        .1
        .iter()
        .find(|e| e.name() == name)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_element_is_the_one_built_from_its_name() {
        for &(ns, names) in KNOWN {
            for &name in names {
                assert_eq!(element(name, ns), Some(Element::bare(name, ns)));
            }
        }
        assert_eq!(element("bind", ns::SASL), None);
        assert_eq!(element("auth", "urn:example"), None);
    }
}
