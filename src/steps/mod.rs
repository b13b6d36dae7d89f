//! The elements of each negotiation step, built and parsed the same way
//! for both roles: one file per step. `iq_auth`, `register` and
//! `LegacyError` need the `legacy` cargo feature (on by default).

pub mod bind;
pub mod bind2;
#[cfg(feature = "legacy")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
pub mod iq_auth;
#[cfg(feature = "legacy")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
pub mod register;
pub mod sasl;
pub mod sasl2;
pub mod session;
pub mod sm;
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

/// An xs:boolean attribute that is true (`true` or `1`); absent or
/// anything else is false.
pub(crate) fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("true") | Some("1"))
}

/// An `<iq/>` builder with `type` and `id`.
pub(crate) fn iq(iq_type: &str, id: &str) -> minidom::ElementBuilder {
    Element::builder("iq", ns::JABBER_CLIENT)
        .attr(name("type"), iq_type)
        .attr(name("id"), id)
}

/// An error of the legacy protocols (`jabber:iq:auth`,
/// `jabber:iq:register`): the Jabber 1.4 code of seed 001, with the
/// RFC 6120 stanza error condition that goes with it (XEP-0086).
#[cfg(feature = "legacy")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegacyError {
    /// The legacy code: 401, 405, 406, 409, 501...
    pub code: u16,
}

#[cfg(feature = "legacy")]
const CODES: [(u16, &str, &str); 12] = [
    (400, "bad-request", "Bad Request"),
    (401, "not-authorized", "Not Authorized"),
    (403, "forbidden", "Forbidden"),
    // Not in XEP-0086 (newer than Jabber 1.4): Prosody's "encryption is
    // required" answer to registration before TLS.
    (403, "policy-violation", "Policy Violation"),
    (404, "item-not-found", "Not Found"),
    (405, "not-allowed", "Not Allowed"),
    (406, "not-acceptable", "Not Acceptable"),
    (409, "conflict", "Conflict"),
    (500, "internal-server-error", "Internal Server Error"),
    (501, "service-unavailable", "Not Implemented"),
    (501, "feature-not-implemented", "Not Implemented"),
    (503, "service-unavailable", "Service Unavailable"),
];

#[cfg(feature = "legacy")]
impl LegacyError {
    /// 401 Not Authorized: bad credentials.
    pub const NOT_AUTHORIZED: LegacyError = LegacyError { code: 401 };
    /// 405 Not Allowed (registering a new account inside a session).
    pub const NOT_ALLOWED: LegacyError = LegacyError { code: 405 };
    /// 406 Not Acceptable: a required field is missing.
    pub const NOT_ACCEPTABLE: LegacyError = LegacyError { code: 406 };
    /// 409 Conflict: username not available, resource in use.
    pub const CONFLICT: LegacyError = LegacyError { code: 409 };
    /// 501 Not Implemented: registration disabled (XEP-0077:
    /// `service-unavailable`).
    pub const NOT_IMPLEMENTED: LegacyError = LegacyError { code: 501 };

    /// The stanza error condition.
    pub fn condition(&self) -> &'static str {
        CODES
            .iter()
            .find(|(c, _, _)| *c == self.code)
            .map_or("undefined-condition", |(_, n, _)| n)
    }

    /// The human text of the legacy code, as jabberd 1.4 wrote it.
    pub fn legacy_text(&self) -> &'static str {
        CODES
            .iter()
            .find(|(c, _, _)| *c == self.code)
            .map_or("Error", |(_, _, t)| t)
    }

    fn error_type(&self) -> &'static str {
        match self.code {
            401 => "auth",
            406 => "modify",
            _ => "cancel",
        }
    }

    /// Reads the `<error/>` of an IQ error: its `code`, or the code of its
    /// condition when a modern server sent none.
    pub fn from_iq(iq: &Element) -> Self {
        let err = iq.children().find(|c| c.name() == "error");
        if let Some(code) = err
            .and_then(|e| e.attr("code"))
            .and_then(|c| c.parse().ok())
        {
            return LegacyError { code };
        }
        let condition = StanzaError::from_iq(iq).condition;
        let code = CODES
            .iter()
            .find(|(_, n, _)| *n == condition)
            .map_or(500, |(c, _, _)| *c);
        LegacyError { code }
    }

    /// An IQ error reply to `id`, echoing `query` as jabberd did, with both
    /// the legacy code and the condition.
    pub fn to_iq(&self, id: &str, query: Option<Element>) -> Element {
        let mut err = Element::builder("error", ns::JABBER_CLIENT)
            .attr(name("code"), self.code.to_string())
            .attr(name("type"), self.error_type())
            .append(Element::builder(self.condition(), ns::STANZAS).build())
            .build();
        err.append_child(
            Element::builder("text", ns::STANZAS)
                .append(self.legacy_text())
                .build(),
        );
        let mut b = iq("error", id);
        if let Some(q) = query {
            b = b.append(q);
        }
        b.append(err).build()
    }
}

#[cfg(feature = "legacy")]
impl std::fmt::Display for LegacyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code, self.legacy_text())
    }
}
