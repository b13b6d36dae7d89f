//! Step 2: the browser's SASL EXTERNAL becomes SASL GSSAPI upstream.
//!
//! The browser says `<auth mechanism='EXTERNAL'>` with an authorization
//! identity: none (`=`, or an empty `<auth/>` answered by an empty
//! challenge), or the user's bare JID (what Strophe.js and Converse.js
//! send). Any other identity is `invalid-authzid`: the Negotiate-
//! authenticated user may act as itself only. Then, without a delegated
//! credential (a ticket that was not forwardable, a browser not allowed to
//! delegate) the answer is `not-authorized`, never a login with some other
//! credential. With one, the proxy runs RFC 4752 upstream itself with the
//! core's [`GssapiClient`] over the host's [`GssContext`] (made from the
//! delegated credential), asking for the same authorization identity, and
//! answers the browser `<success/>` when the server says `<success/>`,
//! `<failure><not-authorized/></failure>` otherwise. Nothing of the
//! browser's `<auth/>` goes upstream.

use std::fmt;

use xmpp_sansio::jid::BareJid;
use xmpp_sansio::sasl::gssapi::{GssContext, GssapiClient};
use xmpp_sansio::sasl::{ClientMechanism, SaslCondition};
use xmpp_sansio::steps::sasl::{SaslElement, Zeroizing};

use super::SsoUser;

/// The longest authorization identity read (the longest JID, RFC 7622).
const MAX_AUTHZID: usize = 3071;

/// The authorization identity to ask the server for, if the browser's
/// `authzid` (the EXTERNAL message) is one `user` may use: empty, or the
/// user's bare JID (compared after preparation). Otherwise
/// `invalid-authzid`.
pub fn check_authzid(user: &SsoUser, authzid: &[u8]) -> Result<String, SaslCondition> {
    if authzid.is_empty() {
        return Ok(String::new());
    }
    if authzid.len() > MAX_AUTHZID {
        return Err(SaslCondition::InvalidAuthzid);
    }
    let text = std::str::from_utf8(authzid).map_err(|_| SaslCondition::InvalidAuthzid)?;
    let asked = BareJid::new(text).map_err(|_| SaslCondition::InvalidAuthzid)?;
    match &user.jid {
        Some(jid) if *jid == asked => Ok(jid.to_string()),
        _ => Err(SaslCondition::InvalidAuthzid),
    }
}

/// What the upstream exchange wants next.
#[derive(Debug)]
pub enum SwitchStep {
    /// Send this upstream.
    Send(SaslElement),
    /// The server said `<success/>` after the whole RFC 4752 exchange.
    Success,
    /// The exchange failed: the server's condition (or the local reason),
    /// for the log; the browser gets `not-authorized`.
    Failed(String),
}

/// One GSSAPI exchange upstream, on behalf of the browser.
pub struct Switch {
    mechanism: GssapiClient,
}

impl fmt::Debug for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Switch")
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

impl Switch {
    /// Starts the exchange over `context` (an initiator to
    /// `xmpp@<domain>` with the delegated credential), asking for
    /// `authzid`: the `<auth mechanism='GSSAPI'>` to send, or why it cannot
    /// start (no ticket for the service, say).
    pub fn start(
        context: Box<dyn GssContext>,
        authzid: &str,
    ) -> Result<(Self, SaslElement), String> {
        let mut mechanism = GssapiClient::new(context).with_authzid(authzid);
        let first = mechanism.initial_response().map_err(|e| e.to_string())?;
        let auth = SaslElement::Auth {
            mechanism: mechanism.name().to_owned(),
            initial_response: first.map(Zeroizing::new),
        };
        Ok((Switch { mechanism }, auth))
    }

    /// A SASL element from the server.
    pub fn upstream(&mut self, el: SaslElement) -> SwitchStep {
        match el {
            SaslElement::Challenge(data) => match self.mechanism.respond(&data) {
                Ok(r) => SwitchStep::Send(SaslElement::Response(Zeroizing::new(r))),
                Err(e) => SwitchStep::Failed(e.to_string()),
            },
            SaslElement::Success(data) => {
                match self.mechanism.success(data.as_deref().map(Vec::as_slice)) {
                    Ok(()) => SwitchStep::Success,
                    Err(e) => SwitchStep::Failed(e.to_string()),
                }
            }
            SaslElement::Failure { condition, text } => SwitchStep::Failed(format!(
                "the server said {}{}",
                condition.map_or("failure", |c| c.as_str()),
                text.map(|t| format!(" ({t})")).unwrap_or_default()
            )),
            other => SwitchStep::Failed(format!("unexpected {other:?} from the server")),
        }
    }
}

/// The browser's answer to a failed or refused EXTERNAL.
pub fn failure(condition: SaslCondition) -> SaslElement {
    SaslElement::Failure {
        condition: Some(condition),
        text: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> SsoUser {
        SsoUser {
            principal: "alice@EXAMPLE.TEST".into(),
            jid: Some(BareJid::new("alice@xmpp.example.test").unwrap()),
        }
    }

    #[test]
    fn none_or_the_own_bare_jid() {
        assert_eq!(check_authzid(&alice(), b"").unwrap(), "");
        assert_eq!(
            check_authzid(&alice(), b"alice@xmpp.example.test").unwrap(),
            "alice@xmpp.example.test"
        );
        assert_eq!(
            check_authzid(&alice(), b"alice@XMPP.example.test").unwrap(),
            "alice@xmpp.example.test"
        );
    }

    #[test]
    fn anyone_else_is_invalid_authzid() {
        for other in [
            &b"bob@xmpp.example.test"[..],
            b"alice@xmpp.example.test/res",
            b"alice",
            b"\xff",
            b"xmpp.example.test",
        ] {
            assert_eq!(
                check_authzid(&alice(), other),
                Err(SaslCondition::InvalidAuthzid),
                "{other:?}"
            );
        }
        let no_jid = SsoUser {
            principal: "carol/admin@EXAMPLE.TEST".into(),
            jid: None,
        };
        assert_eq!(check_authzid(&no_jid, b"").unwrap(), "");
        assert!(check_authzid(&no_jid, b"carol@xmpp.example.test").is_err());
    }
}
