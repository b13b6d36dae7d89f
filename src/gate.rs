//! Which top-level elements a role's phase admits, checked at the start
//! tag (name and namespace) before anything of the element's content is
//! read: an element that is not legal now is refused at once instead of
//! being buffered up to the element limit and refused when complete
//! (rustls's `manual/implvulns.rs` on reacting to any message in any
//! state). The full check of the element's content stays with the phase.

use crate::ns;
use crate::stream_error::StreamErrorCondition;
use crate::xml::Refusal;

/// What a phase expects next, by element name and namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Anything (waiting for a header, or closing: what comes is read and
    /// dropped or refused by the phase).
    Any,
    /// `<stream:features/>` (the client after a header).
    Features,
    /// A STARTTLS answer (the client after `<starttls/>`).
    Tls,
    /// A SASL element (an exchange under way).
    Sasl,
    /// A SASL2 element (an XEP-0388 exchange under way).
    Sasl2,
    /// An IQ (bind, session, registration and legacy-auth replies for
    /// the client; a bind request for the server, where other stanzas
    /// are `not-authorized`).
    Iq {
        /// Other stanzas come before the session exists (the server's
        /// side): `not-authorized`, else `unsupported-stanza-type`.
        unauthorized: bool,
    },
    /// The server before authentication: STARTTLS, SASL, or an IQ
    /// (registration, legacy authentication: only with the `legacy`
    /// feature); stanzas are `not-authorized`.
    PreAuth,
    /// A ready session: stanzas, and stream management elements.
    Stanzas,
}

impl Expect {
    /// Whether `name` in `namespace` may start now.
    pub fn check(self, name: &str, namespace: &str) -> Result<(), Refusal> {
        let refuse = |condition, reason| Err(Refusal { condition, reason });
        if namespace == ns::STREAM {
            return match (name, self) {
                ("error", _) | (_, Expect::Any) => Ok(()),
                ("features", Expect::Features) => Ok(()),
                ("stream", _) => refuse(
                    StreamErrorCondition::BadFormat,
                    "a stream header inside the stream",
                ),
                _ => refuse(
                    StreamErrorCondition::UnsupportedStanzaType,
                    "a stream-level element that is not legal in this phase",
                ),
            };
        }
        let stanza =
            namespace == ns::JABBER_CLIENT && matches!(name, "message" | "presence" | "iq");
        // Stream management (XEP-0198) in a session, and `<resume/>` (or
        // an early `<enable/>`) where the server waits for a bind: the
        // phase decides whether it is on.
        let sm = namespace == ns::SM;
        let ok = match self {
            Expect::Any | Expect::Stanzas => stanza || sm || self == Expect::Any,
            Expect::Iq { unauthorized: true } if sm => true,
            Expect::Features => false,
            Expect::Tls => namespace == ns::TLS,
            Expect::Sasl => namespace == ns::SASL,
            Expect::Sasl2 => namespace == ns::SASL2,
            Expect::Iq { .. } => stanza && name == "iq",
            Expect::PreAuth => {
                namespace == ns::TLS
                    || namespace == ns::SASL
                    || namespace == ns::SASL2
                    || (cfg!(feature = "legacy") && stanza && name == "iq")
            }
        };
        if ok {
            return Ok(());
        }
        match self {
            Expect::PreAuth if stanza => refuse(
                StreamErrorCondition::NotAuthorized,
                "a stanza before authentication",
            ),
            Expect::Iq { unauthorized: true } if stanza => refuse(
                StreamErrorCondition::NotAuthorized,
                "a stanza before binding",
            ),
            Expect::Sasl | Expect::Sasl2 => refuse(
                StreamErrorCondition::UnsupportedStanzaType,
                "a non-SASL element during SASL",
            ),
            _ => refuse(
                StreamErrorCondition::UnsupportedStanzaType,
                "an element that is not legal in this phase",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_phase_admits_its_elements_and_refuses_the_rest() {
        let sc = StreamErrorCondition::UnsupportedStanzaType;
        let cond = |e: Expect, n, ns| e.check(n, ns).err().map(|r| r.condition);
        // Always: stream errors; never (but when waiting for a header): a header.
        for e in [
            Expect::Features,
            Expect::Tls,
            Expect::Sasl,
            Expect::Iq { unauthorized: true },
            Expect::PreAuth,
            Expect::Stanzas,
        ] {
            assert_eq!(cond(e, "error", ns::STREAM), None);
            assert_eq!(
                cond(e, "stream", ns::STREAM),
                Some(StreamErrorCondition::BadFormat)
            );
        }
        assert_eq!(cond(Expect::Any, "anything", "urn:x"), None);
        assert_eq!(cond(Expect::Features, "features", ns::STREAM), None);
        assert_eq!(
            cond(Expect::Features, "message", ns::JABBER_CLIENT),
            Some(sc.clone())
        );
        assert_eq!(cond(Expect::Tls, "proceed", ns::TLS), None);
        assert_eq!(cond(Expect::Tls, "success", ns::SASL), Some(sc.clone()));
        assert_eq!(cond(Expect::Sasl, "response", ns::SASL), None);
        assert_eq!(
            cond(Expect::Sasl, "iq", ns::JABBER_CLIENT),
            Some(sc.clone())
        );
        assert_eq!(cond(Expect::PreAuth, "starttls", ns::TLS), None);
        assert_eq!(cond(Expect::PreAuth, "auth", ns::SASL), None);
        assert_eq!(cond(Expect::PreAuth, "authenticate", ns::SASL2), None);
        assert_eq!(cond(Expect::Sasl2, "response", ns::SASL2), None);
        assert_eq!(cond(Expect::Sasl2, "response", ns::SASL), Some(sc.clone()));
        // An IQ before authentication is registration or iq:auth, which
        // only the `legacy` build knows; without it, a stanza like any other.
        assert_eq!(
            cond(Expect::PreAuth, "iq", ns::JABBER_CLIENT),
            (!cfg!(feature = "legacy")).then_some(StreamErrorCondition::NotAuthorized)
        );
        assert_eq!(
            cond(Expect::PreAuth, "message", ns::JABBER_CLIENT),
            Some(StreamErrorCondition::NotAuthorized)
        );
        assert_eq!(
            cond(Expect::PreAuth, "message", "jabber:server"),
            Some(sc.clone())
        );
        assert_eq!(
            cond(
                Expect::Iq { unauthorized: true },
                "presence",
                ns::JABBER_CLIENT
            ),
            Some(StreamErrorCondition::NotAuthorized)
        );
        assert_eq!(
            cond(
                Expect::Iq {
                    unauthorized: false
                },
                "presence",
                ns::JABBER_CLIENT
            ),
            Some(sc.clone())
        );
        assert_eq!(cond(Expect::Stanzas, "presence", ns::JABBER_CLIENT), None);
        assert_eq!(cond(Expect::Stanzas, "auth", ns::SASL), Some(sc));
    }
}
