//! Why a client stream failed, sorted by whose fault it is.

use std::fmt;

use crate::error::{Deadline, InternalError, Misbehavior};
use crate::sasl::policy::{RefusedMechanism, SelectError};
use crate::sasl::{SaslCondition, SaslError};
use crate::steps::StanzaError;
use crate::stream_error::{StreamError, StreamErrorCondition};

/// Why a client stream failed. [`condition`](Self::condition) is the
/// stream error the client sent, if any.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientError {
    /// The server broke the protocol.
    PeerMisbehaved(Misbehavior),
    /// The server sent a `<stream:error/>` (a `see-other-host` one also
    /// gives [`ClientEvent::Redirect`](super::ClientEvent::Redirect) when
    /// allowed).
    PeerStreamError(StreamError),
    /// The server refused a request: STARTTLS, authentication, binding,
    /// session, registration, legacy authentication.
    Refused(PeerRefusal),
    /// The client's own policy (its configuration) does not allow going on
    /// with what the server offers. Nothing secret was sent.
    Policy(PolicyError),
    /// A deadline passed.
    Timeout(Deadline),
    /// The host ended the stream with this error
    /// ([`Client::close_with_error`](super::Client::close_with_error)).
    ClosedByHost(StreamError),
    /// The server closed the stream before the session was ready.
    ClosedByPeer,
    /// A bug in this crate (see [`InternalError`]).
    Internal(InternalError),
}

impl ClientError {
    /// The whole stream error sent (the application condition of
    /// `handled-count-too-high` included), if any.
    pub(crate) fn stream_error(&self) -> Option<StreamError> {
        match self {
            Self::PeerMisbehaved(m) => m.stream_error(),
            _ => self.condition().map(StreamError::new),
        }
    }

    /// The stream error condition sent to the server, if any.
    pub fn condition(&self) -> Option<StreamErrorCondition> {
        match self {
            Self::PeerMisbehaved(m) => m.condition(),
            Self::Policy(p) => p.condition(),
            Self::Timeout(Deadline::Element) => Some(StreamErrorCondition::PolicyViolation),
            Self::ClosedByHost(e) => Some(e.condition.clone()),
            Self::PeerStreamError(_)
            | Self::Refused(_)
            | Self::Timeout(_)
            | Self::ClosedByPeer
            | Self::Internal(_) => None,
        }
    }

    /// A SASL error of our side of the mechanism, by fault: a weak
    /// iteration count or cached keys that do not fit are the client's
    /// policy; anything else is data the server should not have sent.
    pub(crate) fn sasl(e: SaslError) -> Self {
        match e.condition {
            SaslCondition::MechanismTooWeak | SaslCondition::CredentialsExpired => {
                Self::Policy(PolicyError::Sasl(e))
            }
            _ => Self::PeerMisbehaved(Misbehavior::Sasl(e)),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerMisbehaved(m) => write!(f, "the server broke the protocol: {m}"),
            Self::PeerStreamError(e) => write!(f, "the server sent a stream error: {e}"),
            Self::Refused(r) => write!(f, "{r}"),
            Self::Policy(p) => write!(f, "{p}"),
            Self::Timeout(d) => write!(f, "{d}"),
            Self::ClosedByHost(e) => write!(f, "closed by the host with {}", e.condition),
            Self::ClosedByPeer => f.write_str("the server closed the stream before it was ready"),
            Self::Internal(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A request the server refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PeerRefusal {
    /// `<starttls/>` was answered with `<failure/>`.
    StartTls,
    /// SASL `<failure/>`.
    Authentication {
        /// The condition, when the server sent a known one.
        condition: Option<SaslCondition>,
        /// The server's `<text/>`.
        text: Option<String>,
    },
    /// Resource binding.
    Bind(StanzaError),
    /// RFC 3921 session establishment.
    Session(StanzaError),
    /// In-band registration (406, 409, 501...).
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    Registration(crate::steps::LegacyError),
    /// Legacy authentication (401, 406, 409...).
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    LegacyAuth(crate::steps::LegacyError),
}

impl fmt::Display for PeerRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StartTls => f.write_str("the server refused STARTTLS"),
            Self::Authentication { condition, text } => {
                f.write_str("authentication failed: ")?;
                match condition {
                    Some(c) => write!(f, "{c}")?,
                    None => f.write_str("unknown condition")?,
                }
                if let Some(t) = text {
                    write!(f, " ({t})")?;
                }
                Ok(())
            }
            Self::Bind(e) => write!(f, "resource binding failed: {e}"),
            Self::Session(e) => write!(f, "session establishment failed: {e}"),
            #[cfg(feature = "legacy")]
            Self::Registration(e) => write!(f, "registration failed: {e}"),
            #[cfg(feature = "legacy")]
            Self::LegacyAuth(e) => write!(f, "legacy authentication failed: {e}"),
        }
    }
}

/// What the client's configuration does not allow.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PolicyError {
    /// TLS is required but the server does not offer STARTTLS (or speaks
    /// pre-1.0 XMPP, which has no STARTTLS); `policy-violation` was sent
    /// and no credentials.
    TlsRequired,
    /// No offered mechanism is acceptable to the policy (the offered ones
    /// are listed).
    NoMechanism(Vec<String>),
    /// None of the mechanisms named in
    /// [`ClientPolicy::only`](crate::sasl::policy::ClientPolicy::only) can
    /// be used: each with the policy rule that refused it (not offered,
    /// no TLS for a cleartext mechanism, no channel-binding data, other
    /// credentials). Nothing was sent.
    MechanismRefused(Vec<RefusedMechanism>),
    /// What the server's mechanism asks for is below the policy: an
    /// iteration count under the minimum, cached keys that do not fit and
    /// no password to derive new ones.
    Sasl(SaslError),
    /// The server speaks pre-1.0 XMPP (no `version`) and legacy
    /// authentication is not enabled, or the crate was built without the
    /// `legacy` feature; `unsupported-version` was sent.
    UnsupportedVersion,
    /// [`Sasl2Policy::Require`](crate::sasl2::Sasl2Policy::Require): the
    /// server offers no SASL2 (XEP-0388); nothing was sent.
    Sasl2NotOffered,
    /// The client holds a FAST token ([`Client::use_fast_token`](crate::client::Client::use_fast_token))
    /// it cannot log in with on this stream, and
    /// [`FastPolicy::fallback_to_password`](crate::fast::FastPolicy::fallback_to_password)
    /// is off: nothing was sent.
    FastToken(crate::fast::FastRefusal),
    /// [`FastPolicy::only`](crate::fast::FastPolicy::only) names FAST
    /// mechanisms to ask a token for and none can be had on this stream
    /// (not offered, or its channel binding unavailable): nothing was
    /// sent, no other mechanism was asked for.
    FastRequest(crate::fast::FastRequestRefused),
    /// The server's zero-knowledge `<sequence/>` is above
    /// [`ClientSettings::max_zero_k_sequence`](crate::client::ClientSettings::max_zero_k_sequence):
    /// nothing was hashed or sent.
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    ZeroKSequenceTooHigh {
        /// The sequence the server advertised.
        sequence: u32,
        /// The configured maximum.
        max: u32,
    },
}

impl PolicyError {
    /// The stream error condition sent, if any.
    pub fn condition(&self) -> Option<StreamErrorCondition> {
        match self {
            Self::TlsRequired => Some(StreamErrorCondition::PolicyViolation),
            Self::UnsupportedVersion => Some(StreamErrorCondition::UnsupportedVersion),
            _ => None,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TlsRequired => f.write_str("TLS is required but the server does not offer it"),
            Self::NoMechanism(o) => write!(f, "no acceptable SASL mechanism among {o:?}"),
            Self::MechanismRefused(r) => write!(f, "{}", SelectError::Refused(r.clone())),
            Self::Sasl(e) => write!(f, "{e}"),
            Self::UnsupportedVersion => f.write_str("the server speaks pre-1.0 XMPP"),
            Self::Sasl2NotOffered => {
                f.write_str("SASL2 is required but the server does not offer it")
            }
            Self::FastToken(r) => write!(f, "cannot log in with the FAST token: {r}"),
            Self::FastRequest(r) => write!(f, "cannot ask for a FAST token: {r}"),
            #[cfg(feature = "legacy")]
            Self::ZeroKSequenceTooHigh { sequence, max } => write!(
                f,
                "the server's zero-knowledge sequence {sequence} is above the maximum {max}"
            ),
        }
    }
}
