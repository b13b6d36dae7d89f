//! X-GOOGLE-TOKEN: Google Talk's single sign-on mechanism (seed 000). The
//! client fetched a token from Google's ClientLogin service over HTTPS and
//! sends `NUL user NUL token` as the initial response. The user is the full
//! address (`user@gmail.com`).
//!
//! The message has the PLAIN layout with an empty authzid field. The server
//! asks the host with [`CredentialRequest::Token`]
//! (`mechanism: "X-GOOGLE-TOKEN"`) and accepts an authzid field only when
//! it is empty or the user name itself (`invalid-authzid` otherwise).
//!
//! [`CredentialRequest::Token`]: super::CredentialRequest::Token

use super::common::{self, OneShotClient, OneShotServer, Parsed};
use super::{ClientMechanism, CredentialAnswer, SaslError, Secret, ServerMechanism, ServerStep};

/// The mechanism name.
pub const NAME: &str = "X-GOOGLE-TOKEN";

/// Client side of X-GOOGLE-TOKEN.
#[derive(Debug)]
pub struct XGoogleTokenClient {
    username: String,
    token: Secret,
    state: OneShotClient,
}

impl XGoogleTokenClient {
    /// Logs in as `username` (the full address) with a ClientLogin `token`.
    pub fn new(username: impl Into<String>, token: impl Into<Secret>) -> Self {
        Self {
            username: username.into(),
            token: token.into(),
            state: OneShotClient::default(),
        }
    }
}

impl ClientMechanism for XGoogleTokenClient {
    fn name(&self) -> &str {
        NAME
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        let Self {
            username,
            token,
            state,
        } = self;
        state.initial_response(|| common::build_plain_layout(None, username, token.expose()))
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let Self {
            username,
            token,
            state,
        } = self;
        state.respond(challenge, || {
            common::build_plain_layout(None, username, token.expose())
        })
    }

    fn success(&mut self, additional_data: Option<&[u8]>) -> Result<(), SaslError> {
        self.state.success(additional_data)
    }
}

/// Server side of X-GOOGLE-TOKEN. The host answers the
/// [`CredentialRequest::Token`](super::CredentialRequest::Token) with
/// [`CredentialAnswer::Verdict`].
#[derive(Debug)]
pub struct XGoogleTokenServer {
    inner: OneShotServer,
}

impl XGoogleTokenServer {
    /// A fresh exchange.
    pub fn new() -> Self {
        Self {
            inner: OneShotServer::new(parse),
        }
    }
}

impl Default for XGoogleTokenServer {
    fn default() -> Self {
        Self::new()
    }
}

fn parse(message: &[u8]) -> Result<Parsed, SaslError> {
    common::parse_token_layout(message, NAME)
}

impl ServerMechanism for XGoogleTokenServer {
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
