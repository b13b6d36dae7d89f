//! The parts of [`ClientError`](crate::client::ClientError) and
//! [`ServerError`](crate::server::ServerError) that both roles share.
//!
//! Both roles sort a failed stream by whose fault it is, as rustls does:
//! the peer broke the protocol ([`Misbehavior`]), the peer sent a stream
//! error, a deadline passed ([`Deadline`]), the host ended the stream, the
//! peer closed it early; the client adds the peer's refusals and its own
//! policy. Each role's error says which stream error condition, if any,
//! went to the peer (`condition()`): the machine sends exactly that.

use std::fmt;

use crate::sasl::SaslError;
use crate::stream_error::{StreamError, StreamErrorCondition};
use crate::xml::{ReadError, WriteError};

/// How the peer broke the protocol.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Misbehavior {
    /// Bytes the codec refused: malformed XML, or a limit exceeded (size,
    /// depth, heap). The matching stream error was sent.
    Read(ReadError),
    /// An element, header or value that is not legal at this point of the
    /// stream; `condition` was sent.
    Protocol {
        /// The stream error condition sent.
        condition: StreamErrorCondition,
        /// What was wrong.
        reason: &'static str,
    },
    /// SASL data that our side of the mechanism refused: a challenge it
    /// cannot parse, a server signature that does not verify, a downgrade
    /// detected (XEP-0474). The client sent `<abort/>` where it could; no
    /// stream error.
    Sasl(SaslError),
    /// Stream management (XEP-0198): the peer's `h` acknowledges more
    /// stanzas than were sent; `undefined-condition` was sent with
    /// `<handled-count-too-high h send/>`.
    HandledCountTooHigh {
        /// The peer's `h`.
        h: u32,
        /// How many stanzas were sent, modulo 2^32.
        sent: u32,
    },
}

impl Misbehavior {
    /// The stream error condition sent to the peer, if any.
    pub fn condition(&self) -> Option<StreamErrorCondition> {
        match self {
            Self::Read(e) => Some(e.condition()),
            Self::Protocol { condition, .. } => Some(condition.clone()),
            Self::Sasl(_) => None,
            Self::HandledCountTooHigh { .. } => Some(StreamErrorCondition::UndefinedCondition),
        }
    }

    /// The whole stream error sent, application condition included.
    pub(crate) fn stream_error(&self) -> Option<StreamError> {
        let mut e = StreamError::new(self.condition()?);
        if let Self::HandledCountTooHigh { h, sent } = self {
            e.application = Some(crate::steps::sm::handled_count_too_high(*h, *sent));
        }
        Some(e)
    }

    /// A protocol violation, `condition` sent.
    pub(crate) fn protocol(condition: StreamErrorCondition, reason: &'static str) -> Self {
        Self::Protocol { condition, reason }
    }
}

impl fmt::Display for Misbehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "bad input: {e}"),
            Self::Protocol { condition, reason } => write!(f, "{reason} (sent {condition})"),
            Self::Sasl(e) => write!(f, "{e}"),
            Self::HandledCountTooHigh { h, sent } => write!(
                f,
                "the peer acknowledged {h} stanzas but {sent} were sent (sent undefined-condition, handled-count-too-high)"
            ),
        }
    }
}

/// A deadline of the configuration that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Deadline {
    /// The session was not ready within the negotiation timeout. The
    /// client sends no stream error; the server sends `policy-violation`.
    Negotiation,
    /// Server: the client did not authenticate within the authentication
    /// timeout (`policy-violation`).
    Authentication,
    /// A top-level element, once begun, did not complete within the
    /// element timeout (`policy-violation`).
    Element,
    /// Server: a ready client sent nothing for the idle timeout
    /// (`connection-timeout`).
    Idle,
}

impl Deadline {
    /// The condition sent when this deadline passes on the server (the
    /// client sends one only for [`Deadline::Element`]).
    pub(crate) fn server_condition(self) -> StreamErrorCondition {
        match self {
            Self::Idle => StreamErrorCondition::ConnectionTimeout,
            _ => StreamErrorCondition::PolicyViolation,
        }
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Negotiation => "negotiation took too long",
            Self::Authentication => "authentication took too long",
            Self::Element => "an element took too long to arrive",
            Self::Idle => "the peer sent nothing for too long",
        })
    }
}

/// The machine built something it could not use (an element it cannot
/// serialise, a JID that does not prepare). The configuration is checked
/// when it is built and the peer's input as it is read, so this is a bug
/// in this crate: please report it. The stream ends without a stream
/// error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalError(String);

impl InternalError {
    pub(crate) fn write(e: WriteError) -> Self {
        Self(format!("cannot serialise: {e}"))
    }

    pub(crate) fn jid(e: jid::Error) -> Self {
        Self(format!("not a JID: {e}"))
    }
}

impl fmt::Display for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "internal error (a bug in xmpp-sansio): {}", self.0)
    }
}

impl std::error::Error for InternalError {}
