//! EXTERNAL (RFC 4422 appendix A): the client was authenticated outside
//! SASL (a TLS client certificate, or a proxy as in seed 002) and sends
//! only the identity it wants to act as: its authzid, or an empty message
//! (`=` on the wire) to act as whoever the external layer says it is.
//!
//! The server asks the host with [`CredentialRequest::External`]: the host
//! knows the external identity and answers [`CredentialAnswer::Verdict`]
//! with the user name it maps to (`Ok`), or `Err(invalid-authzid)` when
//! that identity may not act as the requested one, or
//! `Err(not-authorized)` when there is no usable external identity.
//!
//! The authzid is UTF-8, without NUL, and at most 3071 bytes (the longest
//! JID); anything else is `malformed-request`.
//!
//! [`CredentialRequest::External`]: super::CredentialRequest::External

use super::common::{self, OneShotClient, OneShotServer, Parsed};
use super::{
    ClientMechanism, CredentialAnswer, CredentialRequest, SaslError, ServerMechanism, ServerStep,
};

/// The mechanism name.
pub const NAME: &str = "EXTERNAL";

/// Longest authzid accepted or sent: the longest JID (RFC 7622).
const MAX_AUTHZID_LEN: usize = 3071;

/// Client side of EXTERNAL.
#[derive(Debug, Default)]
pub struct ExternalClient {
    authzid: Option<String>,
    state: OneShotClient,
}

impl ExternalClient {
    /// Acts as the identity the external layer established.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks to act as `authzid` instead. Empty means none.
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        let a = authzid.into();
        self.authzid = (!a.is_empty()).then_some(a);
        self
    }
}

fn build(authzid: Option<&str>) -> Result<Vec<u8>, SaslError> {
    let a = authzid.unwrap_or("");
    if a.contains('\0') {
        return Err(SaslError::malformed("NUL in authzid"));
    }
    common::check_len(a.as_bytes(), MAX_AUTHZID_LEN)?;
    Ok(a.as_bytes().to_vec())
}

impl ClientMechanism for ExternalClient {
    fn name(&self) -> &str {
        NAME
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        let Self { authzid, state } = self;
        state.initial_response(|| build(authzid.as_deref()))
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let Self { authzid, state } = self;
        state.respond(challenge, || build(authzid.as_deref()))
    }

    fn success(&mut self, additional_data: Option<&[u8]>) -> Result<(), SaslError> {
        self.state.success(additional_data)
    }
}

/// Server side of EXTERNAL (see the module docs for the host's answer).
#[derive(Debug)]
pub struct ExternalServer {
    inner: OneShotServer,
}

impl ExternalServer {
    /// A fresh exchange.
    pub fn new() -> Self {
        Self {
            inner: OneShotServer::new(parse),
        }
    }
}

impl Default for ExternalServer {
    fn default() -> Self {
        Self::new()
    }
}

fn parse(message: &[u8]) -> Result<Parsed, SaslError> {
    common::check_len(message, MAX_AUTHZID_LEN)?;
    let authzid = common::utf8(message, "authzid is not UTF-8")?;
    if authzid.contains('\0') {
        return Err(SaslError::malformed("NUL in authzid"));
    }
    let authzid = (!authzid.is_empty()).then(|| authzid.to_owned());
    Ok(Parsed {
        request: CredentialRequest::External {
            authzid: authzid.clone(),
        },
        authzid,
    })
}

impl ServerMechanism for ExternalServer {
    fn name(&self) -> &str {
        NAME
    }

    fn start(&mut self, initial_response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        self.inner.start(initial_response)
    }

    fn respond(&mut self, response: &[u8]) -> Result<ServerStep, SaslError> {
        self.inner.respond(response)
    }

    fn answer(&mut self, answer: CredentialAnswer) -> Result<ServerStep, SaslError> {
        self.inner.answer(answer)
    }
}
