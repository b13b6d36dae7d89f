//! The elements of FAST (XEP-0484, `urn:xmpp:fast:0`), read and written
//! the same way by both roles:
//!
//! - [`FastFeature`]: `<fast>` inside SASL2's `<inline>`, the `HT-*`
//!   mechanisms and `tls-0rtt`;
//! - [`RequestToken`]: `<request-token mechanism/>` in `<authenticate>`;
//! - [`FastAuth`]: `<fast count invalidate/>` in `<authenticate>`: "this
//!   login uses a token";
//! - the `<token token expiry/>` of `<success>`: [`parse_token`] and
//!   [`token_element`].

use std::fmt;

use minidom::Element;

use super::token::{Expiry, FastToken};
use crate::ns;
use crate::steps::sm::parse_u32;
use crate::steps::{name, truthy};

/// Why a FAST element cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FastParseError {
    /// Not that element of `urn:xmpp:fast:0`.
    NotThisElement,
    /// `<request-token/>` without a `mechanism`.
    NoMechanism,
    /// `count` is not an unsigned 32-bit decimal.
    BadCount,
    /// `<token/>` without a non-empty `token`.
    NoToken,
    /// `<token/>` whose `expiry` is missing or no XEP-0082 DateTime.
    BadExpiry,
}

impl FastParseError {
    /// What was wrong, for an error's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotThisElement => "not the expected FAST element",
            Self::NoMechanism => "a FAST <request-token/> without a mechanism",
            Self::BadCount => "a FAST count that is no unsigned 32-bit decimal",
            Self::NoToken => "a FAST <token/> without a token",
            Self::BadExpiry => "a FAST <token/> without a valid expiry",
        }
    }
}

impl fmt::Display for FastParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for FastParseError {}

fn mechanism_list(mechanisms: &[String]) -> impl Iterator<Item = Element> + '_ {
    mechanisms.iter().map(|m| {
        Element::builder("mechanism", ns::FAST)
            .append(m.as_str())
            .build()
    })
}

/// The server's FAST feature, `<fast xmlns='urn:xmpp:fast:0'>` inside
/// SASL2's `<inline>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastFeature {
    /// The token mechanisms offered, in the server's order, without
    /// duplicates or empty names.
    pub mechanisms: Vec<String>,
    /// `tls-0rtt='true'` (or `'1'`): the server accepts the
    /// authentication in TLS 0-RTT data (the client must then send a
    /// `count`).
    pub tls_0rtt: bool,
}

impl FastFeature {
    /// Reads the feature: `None` when `el` is not `<fast/>` of
    /// `urn:xmpp:fast:0`. Children other than `<mechanism/>` are ignored.
    pub fn parse(el: &Element) -> Option<Self> {
        if !el.is("fast", ns::FAST) {
            return None;
        }
        let mut mechanisms: Vec<String> = Vec::new();
        for m in el.children().filter(|c| c.is("mechanism", ns::FAST)) {
            let text = m.text();
            let text = text.trim();
            if !text.is_empty() && !mechanisms.iter().any(|x| x == text) {
                mechanisms.push(text.to_owned());
            }
        }
        Some(Self {
            mechanisms,
            tls_0rtt: truthy(el.attr("tls-0rtt")),
        })
    }

    /// Writes the feature.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("fast", ns::FAST);
        if self.tls_0rtt {
            b = b.attr(name("tls-0rtt"), "true");
        }
        b.append_all(mechanism_list(&self.mechanisms)).build()
    }

    /// Whether it offers `mechanism`.
    pub fn offers(&self, mechanism: &str) -> bool {
        self.mechanisms.iter().any(|m| m == mechanism)
    }
}

/// `<request-token xmlns='urn:xmpp:fast:0' mechanism='...'/>`: the client
/// asks for a token bound to `mechanism` on this (password) login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestToken {
    /// The mechanism the token will be bound to.
    pub mechanism: String,
}

impl RequestToken {
    /// Reads it: `None` when `el` is not `<request-token/>` of
    /// `urn:xmpp:fast:0`.
    pub fn parse(el: &Element) -> Option<Result<Self, FastParseError>> {
        if !el.is("request-token", ns::FAST) {
            return None;
        }
        Some(match el.attr("mechanism") {
            Some(m) if !m.is_empty() => Ok(Self {
                mechanism: m.to_owned(),
            }),
            _ => Err(FastParseError::NoMechanism),
        })
    }

    /// Writes it.
    pub fn to_element(&self) -> Element {
        Element::builder("request-token", ns::FAST)
            .attr(name("mechanism"), self.mechanism.as_str())
            .build()
    }
}

/// `<fast xmlns='urn:xmpp:fast:0' count invalidate/>` in
/// `<authenticate>`: this login uses a FAST token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FastAuth {
    /// The attempt counter (XEP-0484 section 3.4): required only in TLS
    /// 0-RTT data; xmpp.js, Conversations and Prosody's tests send none.
    pub count: Option<u32>,
    /// `invalidate='true'`: the server drops the token once the login
    /// succeeded (a log-out).
    pub invalidate: bool,
}

impl FastAuth {
    /// Reads it: `None` when `el` is not `<fast/>` of `urn:xmpp:fast:0`.
    pub fn parse(el: &Element) -> Option<Result<Self, FastParseError>> {
        if !el.is("fast", ns::FAST) {
            return None;
        }
        let count = match el.attr("count") {
            None => None,
            Some(c) => match parse_u32(c) {
                Some(c) => Some(c),
                None => return Some(Err(FastParseError::BadCount)),
            },
        };
        Some(Ok(Self {
            count,
            invalidate: truthy(el.attr("invalidate")),
        }))
    }

    /// Writes it.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("fast", ns::FAST);
        if let Some(c) = self.count {
            b = b.attr(name("count"), c.to_string());
        }
        if self.invalidate {
            b = b.attr(name("invalidate"), "true");
        }
        b.build()
    }
}

/// Reads `<token xmlns='urn:xmpp:fast:0' token expiry/>` from a
/// `<success>`: `None` when `el` is not that element. The token is bound
/// to `mechanism`: the one the client asked for in `<request-token/>`, or
/// the one it just logged in with when the server rotates the token.
pub fn parse_token(el: &Element, mechanism: &str) -> Option<Result<FastToken, FastParseError>> {
    if !el.is("token", ns::FAST) {
        return None;
    }
    let token = match el.attr("token") {
        Some(t) if !t.is_empty() => t,
        _ => return Some(Err(FastParseError::NoToken)),
    };
    let Some(expiry) = el.attr("expiry").and_then(|e| Expiry::parse(e).ok()) else {
        return Some(Err(FastParseError::BadExpiry));
    };
    Some(Ok(FastToken::new(mechanism, token, expiry)))
}

/// Writes `<token xmlns='urn:xmpp:fast:0' token expiry/>` for a
/// `<success>`. The element carries the secret: it goes to the client and
/// nowhere else (no log).
pub fn token_element(token: &FastToken) -> Element {
    Element::builder("token", ns::FAST)
        .attr(name("token"), token.token.expose())
        .attr(name("expiry"), token.expiry.as_str())
        .build()
}
