//! Why a server stream failed, sorted by whose fault it is.

use std::fmt;

use crate::error::{Deadline, InternalError, Misbehavior};
use crate::stream_error::{StreamError, StreamErrorCondition};

/// Why a server stream failed. [`condition`](Self::condition) is the
/// stream error the server sent, if any.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerError {
    /// The client broke the protocol.
    PeerMisbehaved(Misbehavior),
    /// The client sent a `<stream:error/>`.
    PeerStreamError(StreamError),
    /// The server's policy (its configuration) ended the stream.
    Policy(PolicyError),
    /// A deadline passed.
    Timeout(Deadline),
    /// The host ended the stream with this error
    /// ([`Server::close_with_error`](super::Server::close_with_error)).
    ClosedByHost(StreamError),
    /// The client closed the stream before the session was ready.
    ClosedByPeer,
    /// A bug in this crate (see [`InternalError`]).
    Internal(InternalError),
}

impl ServerError {
    /// The whole stream error sent (the application condition of
    /// `handled-count-too-high` included), if any.
    pub(crate) fn stream_error(&self) -> Option<StreamError> {
        match self {
            Self::PeerMisbehaved(m) => m.stream_error(),
            _ => self.condition().map(StreamError::new),
        }
    }

    /// The stream error condition sent to the client, if any.
    pub fn condition(&self) -> Option<StreamErrorCondition> {
        match self {
            Self::PeerMisbehaved(m) => m.condition(),
            Self::Policy(p) => Some(p.condition()),
            Self::Timeout(d) => Some(d.server_condition()),
            Self::ClosedByHost(e) => Some(e.condition.clone()),
            Self::PeerStreamError(_) | Self::ClosedByPeer | Self::Internal(_) => None,
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerMisbehaved(m) => write!(f, "the client broke the protocol: {m}"),
            Self::PeerStreamError(e) => write!(f, "the client sent a stream error: {e}"),
            Self::Policy(p) => write!(f, "{p}"),
            Self::Timeout(d) => write!(f, "{d}"),
            Self::ClosedByHost(e) => write!(f, "closed by the host with {}", e.condition),
            Self::ClosedByPeer => f.write_str("the client closed the stream before it was ready"),
            Self::Internal(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// What the server's configuration does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The client reached
    /// [`ServerSettings::max_auth_failures`](crate::server::ServerSettings::max_auth_failures)
    /// failed authentication attempts; `policy-violation` was sent.
    TooManyAuthFailures {
        /// The failures counted.
        failures: u32,
    },
}

impl PolicyError {
    /// The stream error condition sent.
    pub fn condition(&self) -> StreamErrorCondition {
        match self {
            Self::TooManyAuthFailures { .. } => StreamErrorCondition::PolicyViolation,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyAuthFailures { failures } => {
                write!(f, "{failures} failed authentication attempts: the limit")
            }
        }
    }
}
