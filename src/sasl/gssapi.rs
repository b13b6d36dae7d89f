//! GSSAPI (RFC 4752): Kerberos V5 through the GSS-API, for single sign-on.
//!
//! The GSS-API security context is the host's: this crate links no
//! Kerberos library. The host implements [`GssContext`] (with `libgssapi`,
//! for instance) and the mechanisms here carry its tokens and run the
//! SASL security-layer negotiation of RFC 4752 section 3.
//!
//! The client and server mechanisms built on this trait follow.

use std::fmt;

/// One side's GSS-API security context (RFC 2743), owned by the host.
///
/// One context serves one exchange on one connection: the host creates a
/// fresh one per connection (the initiator for service `xmpp` at the
/// server's host name, the acceptor with the server's credentials).
pub trait GssContext: Send {
    /// Runs one step of context establishment (`GSS_Init_sec_context` or
    /// `GSS_Accept_sec_context`).
    ///
    /// Initiator: `None` on the first call, then each token from the
    /// acceptor. Acceptor: each token from the initiator.
    fn step(&mut self, token: Option<&[u8]>) -> Result<GssStep, GssError>;

    /// Integrity-protects `message` (no confidentiality, `conf_req_flag`
    /// false) for the security-layer exchange (`GSS_Wrap`).
    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError>;

    /// Verifies and unwraps a wrapped token from the peer (`GSS_Unwrap`).
    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError>;

    /// Acceptor, once established: the initiator's principal, e.g.
    /// `alice@EXAMPLE.TEST`. `None` before that, and on the initiator.
    fn peer_name(&self) -> Option<String>;
}

/// The outcome of one [`GssContext::step`].
#[derive(Clone, PartialEq, Eq)]
pub enum GssStep {
    /// More tokens are needed; send this one to the peer.
    Continue(Vec<u8>),
    /// The context is established; the last token to send, if any.
    Complete(Option<Vec<u8>>),
}

/// Shows token lengths only: a context token carries a Kerberos ticket.
impl fmt::Debug for GssStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Continue(t) => write!(f, "Continue(<{} bytes>)", t.len()),
            Self::Complete(Some(t)) => write!(f, "Complete(Some(<{} bytes>))", t.len()),
            Self::Complete(None) => f.write_str("Complete(None)"),
        }
    }
}

/// A GSS-API failure, described by the host (major and minor status
/// text, for instance). Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssError {
    message: String,
}

impl GssError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The host's description.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for GssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GSS-API: {}", self.message)
    }
}

impl std::error::Error for GssError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_keeps_the_host_message() {
        let e = GssError::new("No Kerberos credentials available");
        assert_eq!(e.message(), "No Kerberos credentials available");
        assert_eq!(e.to_string(), "GSS-API: No Kerberos credentials available");
    }

    #[test]
    fn step_debug_shows_lengths_only() {
        let s = GssStep::Continue(b"ticket".to_vec());
        assert_eq!(format!("{s:?}"), "Continue(<6 bytes>)");
        assert_eq!(format!("{:?}", GssStep::Complete(None)), "Complete(None)");
    }
}
