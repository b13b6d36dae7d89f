//! Stream errors (RFC 6120 section 4.9): the conditions, and the
//! `<stream:error/>` element in both directions.

use std::fmt;

use minidom::Element;

use crate::ns;

/// The defined stream error conditions of RFC 6120 section 4.9.3.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamErrorCondition {
    /// 4.9.3.1 `bad-format`.
    BadFormat,
    /// 4.9.3.2 `bad-namespace-prefix`.
    BadNamespacePrefix,
    /// 4.9.3.3 `conflict`.
    Conflict,
    /// 4.9.3.4 `connection-timeout`.
    ConnectionTimeout,
    /// 4.9.3.5 `host-gone`.
    HostGone,
    /// 4.9.3.6 `host-unknown`.
    HostUnknown,
    /// 4.9.3.7 `improper-addressing`.
    ImproperAddressing,
    /// 4.9.3.8 `internal-server-error`.
    InternalServerError,
    /// 4.9.3.9 `invalid-from`.
    InvalidFrom,
    /// 4.9.3.10 `invalid-namespace`.
    InvalidNamespace,
    /// 4.9.3.11 `invalid-xml`.
    InvalidXml,
    /// 4.9.3.12 `not-authorized`.
    NotAuthorized,
    /// 4.9.3.13 `not-well-formed`.
    NotWellFormed,
    /// 4.9.3.14 `policy-violation`.
    PolicyViolation,
    /// 4.9.3.15 `remote-connection-failed`.
    RemoteConnectionFailed,
    /// 4.9.3.16 `reset`.
    Reset,
    /// 4.9.3.17 `resource-constraint`.
    ResourceConstraint,
    /// 4.9.3.18 `restricted-xml`.
    RestrictedXml,
    /// 4.9.3.19 `see-other-host`, with the host (and optional port) to use
    /// instead, as the element's text (`host`, `host:port`, `[v6]:port`).
    SeeOtherHost(String),
    /// 4.9.3.20 `system-shutdown`.
    SystemShutdown,
    /// 4.9.3.21 `undefined-condition`.
    UndefinedCondition,
    /// 4.9.3.22 `unsupported-encoding`.
    UnsupportedEncoding,
    /// 4.9.3.23 `unsupported-feature`.
    UnsupportedFeature,
    /// 4.9.3.24 `unsupported-stanza-type`.
    UnsupportedStanzaType,
    /// 4.9.3.25 `unsupported-version`.
    UnsupportedVersion,
}

const SIMPLE: [(&str, StreamErrorCondition); 24] = [
    ("bad-format", StreamErrorCondition::BadFormat),
    (
        "bad-namespace-prefix",
        StreamErrorCondition::BadNamespacePrefix,
    ),
    ("conflict", StreamErrorCondition::Conflict),
    (
        "connection-timeout",
        StreamErrorCondition::ConnectionTimeout,
    ),
    ("host-gone", StreamErrorCondition::HostGone),
    ("host-unknown", StreamErrorCondition::HostUnknown),
    (
        "improper-addressing",
        StreamErrorCondition::ImproperAddressing,
    ),
    (
        "internal-server-error",
        StreamErrorCondition::InternalServerError,
    ),
    ("invalid-from", StreamErrorCondition::InvalidFrom),
    ("invalid-namespace", StreamErrorCondition::InvalidNamespace),
    ("invalid-xml", StreamErrorCondition::InvalidXml),
    ("not-authorized", StreamErrorCondition::NotAuthorized),
    ("not-well-formed", StreamErrorCondition::NotWellFormed),
    ("policy-violation", StreamErrorCondition::PolicyViolation),
    (
        "remote-connection-failed",
        StreamErrorCondition::RemoteConnectionFailed,
    ),
    ("reset", StreamErrorCondition::Reset),
    (
        "resource-constraint",
        StreamErrorCondition::ResourceConstraint,
    ),
    ("restricted-xml", StreamErrorCondition::RestrictedXml),
    ("system-shutdown", StreamErrorCondition::SystemShutdown),
    (
        "undefined-condition",
        StreamErrorCondition::UndefinedCondition,
    ),
    (
        "unsupported-encoding",
        StreamErrorCondition::UnsupportedEncoding,
    ),
    (
        "unsupported-feature",
        StreamErrorCondition::UnsupportedFeature,
    ),
    (
        "unsupported-stanza-type",
        StreamErrorCondition::UnsupportedStanzaType,
    ),
    (
        "unsupported-version",
        StreamErrorCondition::UnsupportedVersion,
    ),
];

impl StreamErrorCondition {
    /// The element name of the condition.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SeeOtherHost(_) => "see-other-host",
            other => SIMPLE
                .iter()
                .find(|(_, c)| c == other)
                .map(|(n, _)| *n)
                .unwrap_or("undefined-condition"),
        }
    }

    /// The condition named `name`, with `text` as the element's text (used
    /// by `see-other-host` only). `None` for an unknown name.
    pub fn from_name(name: &str, text: &str) -> Option<Self> {
        if name == "see-other-host" {
            return Some(Self::SeeOtherHost(text.trim().to_owned()));
        }
        SIMPLE
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c.clone())
    }

    /// For `see-other-host`: the host and, when given, the port. Handles
    /// `host`, `host:port`, `[v6]` and `[v6]:port`.
    pub fn redirect(&self) -> Option<(String, Option<u16>)> {
        let Self::SeeOtherHost(target) = self else {
            return None;
        };
        if let Some(rest) = target.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return Some((host.to_owned(), port));
        }
        match target.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => Some((host.to_owned(), port.parse().ok())),
            _ => Some((target.clone(), None)),
        }
    }
}

impl fmt::Display for StreamErrorCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SeeOtherHost(h) => write!(f, "see-other-host ({h})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// A `<stream:error/>`: the condition, an optional human-readable text and
/// an optional application-specific condition element.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamError {
    /// The defined condition.
    pub condition: StreamErrorCondition,
    /// The `<text/>` child, if any.
    pub text: Option<String>,
    /// The `xml:lang` of the text, if given.
    pub text_lang: Option<String>,
    /// An application-specific condition element, if any.
    pub application: Option<Element>,
}

impl StreamError {
    /// An error with only a condition.
    pub fn new(condition: StreamErrorCondition) -> Self {
        Self {
            condition,
            text: None,
            text_lang: None,
            application: None,
        }
    }

    /// Adds a `<text/>`.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Parses a `<stream:error/>` element. An element without a known
    /// condition yields `undefined-condition` (RFC 6120 section 4.9.3.21 is
    /// the catch-all); the element must be `error` in the streams namespace.
    pub fn from_element(el: &Element) -> Option<Self> {
        if !el.is("error", ns::STREAM) {
            return None;
        }
        let mut out = StreamError::new(StreamErrorCondition::UndefinedCondition);
        let mut found = false;
        for child in el.children() {
            if child.ns() == ns::STREAM_ERRORS {
                if child.name() == "text" {
                    out.text = Some(child.text());
                    out.text_lang = child.attr_ns(ns::XML, "lang").map(str::to_owned);
                } else if !found {
                    if let Some(c) = StreamErrorCondition::from_name(child.name(), &child.text()) {
                        out.condition = c;
                        found = true;
                    }
                }
            } else if out.application.is_none() {
                out.application = Some(child.clone());
            }
        }
        Some(out)
    }

    /// Builds the `<stream:error/>` element.
    pub fn to_element(&self) -> Element {
        let mut cond = Element::builder(self.condition.as_str(), ns::STREAM_ERRORS);
        if let StreamErrorCondition::SeeOtherHost(host) = &self.condition {
            cond = cond.append(host.as_str());
        }
        let mut b = Element::builder("error", ns::STREAM).append(cond.build());
        if let Some(text) = &self.text {
            let mut t = Element::builder("text", ns::STREAM_ERRORS).append(text.as_str());
            if let Some(lang) = &self.text_lang {
                t = t.attr_ns(
                    rxml::Namespace::xml().clone(),
                    rxml::NcName::try_from("lang").expect("valid name"),
                    lang.as_str(),
                );
            }
            b = b.append(t.build());
        }
        if let Some(app) = &self.application {
            b = b.append(app.clone());
        }
        b.build()
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream error {}", self.condition)?;
        if let Some(t) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StreamError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_round_trips_through_its_name() {
        for (name, cond) in SIMPLE.iter() {
            assert_eq!(cond.as_str(), *name);
            assert_eq!(
                StreamErrorCondition::from_name(name, "").as_ref(),
                Some(cond)
            );
        }
        assert_eq!(
            StreamErrorCondition::from_name("see-other-host", " [2001:db8::1]:5222 "),
            Some(StreamErrorCondition::SeeOtherHost(
                "[2001:db8::1]:5222".into()
            ))
        );
        assert_eq!(StreamErrorCondition::from_name("nope", ""), None);
    }

    #[test]
    fn see_other_host_redirect_forms() {
        let r = |s: &str| StreamErrorCondition::SeeOtherHost(s.into()).redirect();
        assert_eq!(r("example.net"), Some(("example.net".into(), None)));
        assert_eq!(
            r("example.net:5223"),
            Some(("example.net".into(), Some(5223)))
        );
        assert_eq!(r("[2001:db8::1]"), Some(("2001:db8::1".into(), None)));
        assert_eq!(r("[2001:db8::1]:9"), Some(("2001:db8::1".into(), Some(9))));
        assert_eq!(StreamErrorCondition::Conflict.redirect(), None);
    }
}
