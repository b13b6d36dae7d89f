//! Stream management (XEP-0198, `urn:xmpp:sm:3`): its elements, built
//! and read the same way by both roles.
//!
//! `h` is a count of handled stanzas modulo 2^32: an unsigned 32-bit
//! decimal without sign or spaces; anything else is refused.

use minidom::Element;

use crate::ns;
use crate::steps::{name, truthy};

/// A stream management element.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmElement {
    /// `<enable/>`: the client turns stream management on.
    Enable {
        /// `resume='true'`: the client asks for resumption.
        resume: bool,
        /// `max`: the longest resumption wait it would like, in seconds.
        max: Option<u32>,
    },
    /// `<enabled/>`: the server turned it on.
    Enabled {
        /// The session's resumption id (only when resumption is granted).
        id: Option<String>,
        /// `resume='true'`: resumption is granted.
        resume: bool,
        /// Where to reconnect to resume (`host`, `host:port`, `[v6]:port`).
        location: Option<String>,
        /// The longest the server keeps the session, in seconds.
        max: Option<u32>,
    },
    /// `<resume previd h/>`: the client asks to resume a session.
    Resume {
        /// The id of the session to resume.
        previd: String,
        /// How many of the server's stanzas the client handled.
        h: u32,
    },
    /// `<resumed previd h/>`: the server resumed the session.
    Resumed {
        /// The id of the session resumed.
        previd: String,
        /// How many of the client's stanzas the server handled.
        h: u32,
    },
    /// `<failed/>`: enabling or resuming failed.
    Failed {
        /// How many stanzas the sender handled, when it says.
        h: Option<u32>,
        /// The stanza error condition's name (`item-not-found`,
        /// `unexpected-request`...), when one is given.
        condition: Option<String>,
    },
    /// `<r/>`: a request for an acknowledgement.
    Request,
    /// `<a h/>`: an acknowledgement.
    Ack {
        /// How many stanzas the sender handled.
        h: u32,
    },
}

/// Why a stream management element cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmParseError {
    /// A required `h` is missing or not an unsigned 32-bit decimal.
    BadH,
    /// A `<resume/>` or `<resumed/>` without `previd`.
    NoPrevId,
    /// Not an element of stream management.
    Unknown,
}

impl SmParseError {
    /// What was wrong, for an error's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::BadH => "a stream management element without a valid h",
            Self::NoPrevId => "a stream management resumption without previd",
            Self::Unknown => "an unknown stream management element",
        }
    }
}

/// `h` (or `max`) as XEP-0198 writes it: decimal digits only.
pub fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl SmElement {
    /// Reads `el`: `None` when it is not in the stream management
    /// namespace.
    pub fn parse(el: &Element) -> Option<Result<Self, SmParseError>> {
        if !el.has_ns(ns::SM) {
            return None;
        }
        let h = || el.attr("h").and_then(parse_u32).ok_or(SmParseError::BadH);
        let previd = || {
            el.attr("previd")
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .ok_or(SmParseError::NoPrevId)
        };
        let max = el.attr("max").and_then(parse_u32);
        Some(match el.name() {
            "enable" => Ok(Self::Enable {
                resume: truthy(el.attr("resume")),
                max,
            }),
            "enabled" => Ok(Self::Enabled {
                id: el.attr("id").filter(|i| !i.is_empty()).map(str::to_owned),
                resume: truthy(el.attr("resume")),
                location: el
                    .attr("location")
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
                max,
            }),
            "resume" => h().and_then(|h| {
                Ok(Self::Resume {
                    previd: previd()?,
                    h,
                })
            }),
            "resumed" => h().and_then(|h| {
                Ok(Self::Resumed {
                    previd: previd()?,
                    h,
                })
            }),
            "failed" => Ok(Self::Failed {
                h: el.attr("h").and_then(parse_u32),
                // XEP-0198's form has the condition as a child; Prosody's
                // (inline in SASL2's `<success/>`) wraps it in a stanza
                // `<error type='cancel'/>`.
                condition: el
                    .children()
                    .find(|c| c.has_ns(ns::STANZAS))
                    .or_else(|| {
                        el.children()
                            .filter(|c| c.name() == "error")
                            .find_map(|e| e.children().find(|c| c.has_ns(ns::STANZAS)))
                    })
                    .map(|c| c.name().to_owned()),
            }),
            "r" => Ok(Self::Request),
            "a" => h().map(|h| Self::Ack { h }),
            _ => Err(SmParseError::Unknown),
        })
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        let b = |n: &str| Element::builder(n, ns::SM);
        match self {
            Self::Enable { resume, max } => {
                let mut e = b("enable");
                if *resume {
                    e = e.attr(name("resume"), "true");
                }
                if let Some(m) = max {
                    e = e.attr(name("max"), m.to_string());
                }
                e.build()
            }
            Self::Enabled {
                id,
                resume,
                location,
                max,
            } => {
                let mut e = b("enabled");
                if let Some(i) = id {
                    e = e.attr(name("id"), i.as_str());
                }
                if *resume {
                    e = e.attr(name("resume"), "true");
                }
                if let Some(l) = location {
                    e = e.attr(name("location"), l.as_str());
                }
                if let Some(m) = max {
                    e = e.attr(name("max"), m.to_string());
                }
                e.build()
            }
            Self::Resume { previd, h } => b("resume")
                .attr(name("previd"), previd.as_str())
                .attr(name("h"), h.to_string())
                .build(),
            Self::Resumed { previd, h } => b("resumed")
                .attr(name("previd"), previd.as_str())
                .attr(name("h"), h.to_string())
                .build(),
            Self::Failed { h, condition } => {
                let mut e = b("failed");
                if let Some(h) = h {
                    e = e.attr(name("h"), h.to_string());
                }
                if let Some(c) = condition {
                    e = e.append(Element::builder(c.as_str(), ns::STANZAS).build());
                }
                e.build()
            }
            Self::Request => b("r").build(),
            Self::Ack { h } => b("a").attr(name("h"), h.to_string()).build(),
        }
    }
}

/// Appends `<r xmlns='urn:xmpp:sm:3'/>` (`None`) or
/// `<a xmlns='urn:xmpp:sm:3' h='N'/>` to `out`, as `to_element` and the
/// writer would, without building the element.
pub(crate) fn write_request_or_ack(out: &mut Vec<u8>, ack: Option<u32>) {
    match ack {
        None => out.extend_from_slice(b"<r xmlns='urn:xmpp:sm:3'/>"),
        Some(h) => {
            use std::io::Write as _;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "<a xmlns='urn:xmpp:sm:3' h='{h}'/>");
        }
    }
}

/// The application condition of the `handled-count-too-high` stream
/// error: the peer acknowledged `h` stanzas, but only `send` were sent.
pub fn handled_count_too_high(h: u32, send: u32) -> Element {
    Element::builder("handled-count-too-high", ns::SM)
        .attr(name("h"), h.to_string())
        .attr(name("send"), send.to_string())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_condition_in_an_error_wrapper_as_prosody_sends_it_in_sasl2() {
        // Prosody 13's <success/> after an inline resume of an unknown id.
        let el: Element = "<failed xmlns='urn:xmpp:sm:3'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Unknown session</text></error></failed>"
            .parse()
            .unwrap();
        assert_eq!(
            SmElement::parse(&el),
            Some(Ok(SmElement::Failed {
                h: None,
                condition: Some("item-not-found".into())
            }))
        );
    }

    #[test]
    fn elements_round_trip() {
        for e in [
            SmElement::Enable {
                resume: true,
                max: Some(300),
            },
            SmElement::Enabled {
                id: Some("abc".into()),
                resume: true,
                location: Some("[::1]:5222".into()),
                max: Some(600),
            },
            SmElement::Resume {
                previd: "abc".into(),
                h: u32::MAX,
            },
            SmElement::Resumed {
                previd: "abc".into(),
                h: 0,
            },
            SmElement::Failed {
                h: Some(7),
                condition: Some("item-not-found".into()),
            },
            SmElement::Request,
            SmElement::Ack { h: 4_294_967_295 },
        ] {
            assert_eq!(SmElement::parse(&e.to_element()), Some(Ok(e)));
        }
    }

    #[test]
    fn raw_r_and_a_are_what_the_writer_writes() {
        use crate::framing::Framing;
        use crate::xml::StreamWriter;
        for framing in [Framing::Tcp, Framing::WebSocket] {
            let w = StreamWriter::with_framing(ns::JABBER_CLIENT, framing);
            for (el, ack) in [
                (SmElement::Request, None),
                (SmElement::Ack { h: 0 }, Some(0)),
                (SmElement::Ack { h: u32::MAX }, Some(u32::MAX)),
            ] {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                w.write_element(&mut a, &el.to_element()).unwrap();
                write_request_or_ack(&mut b, ack);
                assert_eq!(String::from_utf8(a), String::from_utf8(b));
            }
        }
    }

    #[test]
    fn h_is_an_unsigned_32_bit_decimal() {
        assert_eq!(parse_u32("4294967295"), Some(u32::MAX));
        for bad in ["4294967296", "-1", "+1", " 1", "", "0x10", "1e3"] {
            assert_eq!(parse_u32(bad), None, "{bad:?}");
        }
        let a: Element = "<a xmlns='urn:xmpp:sm:3' h='-1'/>".parse().unwrap();
        assert_eq!(SmElement::parse(&a), Some(Err(SmParseError::BadH)));
        let r: Element = "<resume xmlns='urn:xmpp:sm:3' h='1'/>".parse().unwrap();
        assert_eq!(SmElement::parse(&r), Some(Err(SmParseError::NoPrevId)));
        let m: Element = "<message xmlns='jabber:client'/>".parse().unwrap();
        assert_eq!(SmElement::parse(&m), None);
    }
}
