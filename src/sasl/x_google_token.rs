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

use super::common::{
    self, one_shot_client, one_shot_server, OneShotClient, OneShotMessage, Parsed,
};
use super::{SaslError, Secret};

/// The mechanism name.
pub const NAME: &str = "X-GOOGLE-TOKEN";

/// What the X-GOOGLE-TOKEN client sends.
#[derive(Debug)]
struct Fields {
    username: String,
    token: Secret,
}

impl OneShotMessage for Fields {
    fn build(&self) -> Result<Vec<u8>, SaslError> {
        common::build_plain_layout(None, &self.username, self.token.expose())
    }
}

one_shot_client! {
    /// Client side of X-GOOGLE-TOKEN.
    pub struct XGoogleTokenClient(Fields) = NAME;
}

impl XGoogleTokenClient {
    /// Logs in as `username` (the full address) with a ClientLogin `token`.
    pub fn new(username: impl Into<String>, token: impl Into<Secret>) -> Self {
        Self {
            inner: OneShotClient::new(Fields {
                username: username.into(),
                token: token.into(),
            }),
        }
    }
}

one_shot_server! {
    /// Server side of X-GOOGLE-TOKEN. The host answers the
    /// [`CredentialRequest::Token`](super::CredentialRequest::Token) with
    /// [`CredentialAnswer::Verdict`](super::CredentialAnswer::Verdict).
    pub struct XGoogleTokenServer = NAME, parse;
}

fn parse(message: &[u8]) -> Result<Parsed, SaslError> {
    common::parse_token_layout(message, NAME)
}
