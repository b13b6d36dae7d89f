//! The elements of each negotiation step, built and parsed the same way
//! for both roles: one file per step.

pub mod bind;
pub mod sasl;
pub mod session;
pub mod starttls;

use minidom::Element;

use crate::ns;

/// A stanza error (RFC 6120 section 8.3) as received in an IQ error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    /// The error type (`cancel`, `modify`, `auth`, `wait`, `continue`).
    pub error_type: String,
    /// The defined condition's element name (`conflict`, `not-allowed`,
    /// ...); `undefined-condition` when none was given.
    pub condition: String,
    /// The `<text/>`, if any.
    pub text: Option<String>,
}

impl StanzaError {
    /// Reads the `<error/>` child of an IQ of type `error`.
    pub fn from_iq(iq: &Element) -> Self {
        let mut out = StanzaError {
            error_type: String::new(),
            condition: "undefined-condition".into(),
            text: None,
        };
        let Some(err) = iq.children().find(|c| c.name() == "error") else {
            return out;
        };
        out.error_type = err.attr("type").unwrap_or_default().to_owned();
        for c in err.children().filter(|c| c.has_ns(ns::STANZAS)) {
            if c.name() == "text" {
                out.text = Some(c.text());
            } else {
                out.condition = c.name().to_owned();
            }
        }
        out
    }

    /// Builds an IQ error reply to `id` with this error.
    pub fn to_iq(&self, id: &str) -> Element {
        let mut err = Element::builder("error", ns::JABBER_CLIENT)
            .attr(name("type"), self.error_type.as_str())
            .append(Element::builder(self.condition.as_str(), ns::STANZAS).build())
            .build();
        if let Some(t) = &self.text {
            err.append_child(
                Element::builder("text", ns::STANZAS)
                    .append(t.as_str())
                    .build(),
            );
        }
        iq("error", id).append(err).build()
    }
}

impl std::fmt::Display for StanzaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.condition)?;
        if let Some(t) = &self.text {
            write!(f, " ({t})")?;
        }
        Ok(())
    }
}

pub(crate) fn name(s: &str) -> rxml::NcName {
    rxml::NcName::try_from(s).expect("static attribute names are valid")
}

/// An `<iq/>` builder with `type` and `id`.
pub(crate) fn iq(iq_type: &str, id: &str) -> minidom::ElementBuilder {
    Element::builder("iq", ns::JABBER_CLIENT)
        .attr(name("type"), iq_type)
        .attr(name("id"), id)
}
