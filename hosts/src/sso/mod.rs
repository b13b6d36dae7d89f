//! The single-sign-on connection manager behind the `sso-proxy` tool, as
//! sans-IO machines: no socket, no clock (time is an argument), no
//! Kerberos library (the GSS-API context comes in through the core's
//! [`GssContext`](xmpp_sansio::sasl::gssapi::GssContext) trait).
//!
//! A browser reaches the proxy over BOSH or WebSocket, authenticated (or
//! not) with HTTP Negotiate by the host. For each browser stream the proxy
//! opens an XMPP stream to the upstream server over TCP with STARTTLS, and:
//!
//! 1. [`features`]: shows the browser the upstream's features, with SASL
//!    EXTERNAL alone in place of the login methods for a Negotiate-
//!    authenticated user, unchanged for anyone else;
//! 2. [`external`]: turns the browser's `<auth mechanism='EXTERNAL'/>`
//!    into SASL GSSAPI upstream with the user's delegated credential, and
//!    answers `<success/>` or `<failure/>`;
//! 3. [`session`]: after success holds the browser's restart until the
//!    upstream's new features came, then relays every element both ways
//!    unchanged (bind, stanzas, stream management); for a user without
//!    SSO it relays everything from the start.
//!
//! [`session::SsoSession`] is one browser stream and its upstream stream;
//! [`bosh::SsoBosh`] runs many of them behind the core's
//! [`BoshManager`](xmpp_sansio::bosh::BoshManager) and binds each BOSH
//! session to the principal that created it; [`websocket::SsoWebSocket`]
//! runs one over RFC 7395 messages; [`web`] holds the HTTP rules (CORS
//! with credentials, the Negotiate challenge, static files).
//!
//! The proxy never sees, asks for or stores a password.

pub mod bosh;
pub mod external;
pub mod features;
pub mod session;
pub mod web;
pub mod websocket;

use std::time::Duration;

use xmpp_sansio::jid::BareJid;
use xmpp_sansio::xml::Limits;

pub use session::{BrowserIn, BrowserOut, SsoEvent, SsoSession};

/// A user the host authenticated with HTTP Negotiate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoUser {
    /// The Kerberos principal: `alice@EXAMPLE.TEST`.
    pub principal: String,
    /// The JID the realm map gives it (`alice@xmpp.example.test`); `None`
    /// for a principal of a realm the map does not name, or whose name is
    /// no JID local part (`carol/admin`): such a user may only log in
    /// without an authorization identity, and the server decides.
    pub jid: Option<BareJid>,
}

/// The proxy's configuration, shared by every session.
#[derive(Debug, Clone)]
pub struct SsoConfig {
    /// The XMPP domain of the upstream server (the streams' `to`).
    pub domain: String,
    /// Kerberos realm to XMPP domain: `EXAMPLE.TEST` to
    /// `xmpp.example.test`.
    pub realm_map: Vec<(String, String)>,
    /// Reader limits for what the upstream server sends.
    pub limits: Limits,
    /// From a browser stream's start to its relay phase (logged in and
    /// restarted), at most this long (60 s).
    pub negotiation_timeout: Duration,
}

impl SsoConfig {
    /// `domain`, with no realm mapped yet and the default limits.
    pub fn new(domain: impl Into<String>) -> Self {
        SsoConfig {
            domain: domain.into(),
            realm_map: Vec::new(),
            limits: Limits::default(),
            negotiation_timeout: Duration::from_secs(60),
        }
    }

    /// The user `principal` (`name@REALM`) is: `name@<domain of REALM>`
    /// when the realm is mapped and `name` is a JID local part.
    pub fn user(&self, principal: &str) -> SsoUser {
        let jid = principal.rsplit_once('@').and_then(|(name, realm)| {
            let (_, domain) = self.realm_map.iter().find(|(r, _)| r == realm)?;
            if name.is_empty() || name.contains('/') {
                return None;
            }
            BareJid::new(&format!("{name}@{domain}")).ok()
        });
        SsoUser {
            principal: principal.to_owned(),
            jid,
        }
    }
}

/// Parses `REALM=DOMAIN` (`--realm-map`).
pub fn parse_realm_map(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((realm, domain)) if !realm.is_empty() && !domain.is_empty() => {
            xmpp_sansio::jid::BareJid::new(domain)
                .map_err(|e| format!("{domain:?} is no XMPP domain: {e}"))?;
            Ok((realm.to_owned(), domain.to_ascii_lowercase()))
        }
        _ => Err(format!("{s:?} is not REALM=DOMAIN")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_map_through_the_realm_map() {
        let mut c = SsoConfig::new("xmpp.example.test");
        c.realm_map
            .push(parse_realm_map("EXAMPLE.TEST=xmpp.example.test").unwrap());
        let jid = |p: &str| c.user(p).jid.map(|j| j.to_string());
        assert_eq!(
            jid("alice@EXAMPLE.TEST").as_deref(),
            Some("alice@xmpp.example.test")
        );
        assert_eq!(jid("alice@OTHER.TEST"), None);
        assert_eq!(jid("carol/admin@EXAMPLE.TEST"), None);
        assert_eq!(jid("EXAMPLE.TEST"), None);
        assert!(parse_realm_map("EXAMPLE.TEST").is_err());
        assert!(parse_realm_map("=x").is_err());
    }
}
