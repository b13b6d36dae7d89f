//! X-OAUTH2: Google's XMPP OAuth 2.0 mechanism, also served by ejabberd
//! (seed 003) and once by Facebook chat. The message is the PLAIN layout
//! with an OAuth access token in the password slot:
//! `[authzid] NUL user NUL token`.
//!
//! Google's variant also marks `<auth/>` with
//! `auth:service='oauth2'` (and, for clients that want the full JID in the
//! bind result, `auth:client-uses-full-bind-result='true'`) in the
//! namespace `http://www.google.com/talk/protocol/auth`. The client side
//! reports those through [`ClientMechanism::auth_attributes`] when built
//! with `XOAuth2Client::with_google_attributes`; the XML layer declares
//! the namespace (as `xmlns:auth=...`) and writes them. ejabberd needs none.
//! Google's attributes need the `google` cargo feature (on by default);
//! X-OAUTH2 itself does not.
//!
//! The token is not SASLprep'd (OAuth tokens are ASCII). The server asks
//! the host with [`CredentialRequest::Token`] (`mechanism: "X-OAUTH2"`);
//! that request has no authzid, so the server refuses an authzid other than
//! the user name itself with `invalid-authzid` before asking.
//!
//! [`CredentialRequest::Token`]: super::CredentialRequest::Token
//! [`ClientMechanism::auth_attributes`]: super::ClientMechanism::auth_attributes

use super::common::{
    self, one_shot_client, one_shot_server, OneShotClient, OneShotMessage, Parsed,
};
use super::{AuthAttribute, SaslError, Secret};

/// The mechanism name.
pub const NAME: &str = "X-OAUTH2";

/// The namespace of Google's `<auth/>` attributes.
#[cfg(feature = "google")]
#[cfg_attr(docsrs, doc(cfg(feature = "google")))]
pub const GOOGLE_AUTH_NS: &str = "http://www.google.com/talk/protocol/auth";

/// `auth:service='oauth2'`.
#[cfg(feature = "google")]
#[cfg_attr(docsrs, doc(cfg(feature = "google")))]
pub const SERVICE_OAUTH2: AuthAttribute = AuthAttribute {
    namespace: GOOGLE_AUTH_NS,
    name: "service",
    value: "oauth2",
};

/// `auth:client-uses-full-bind-result='true'`.
#[cfg(feature = "google")]
#[cfg_attr(docsrs, doc(cfg(feature = "google")))]
pub const CLIENT_USES_FULL_BIND_RESULT: AuthAttribute = AuthAttribute {
    namespace: GOOGLE_AUTH_NS,
    name: "client-uses-full-bind-result",
    value: "true",
};

#[cfg(feature = "google")]
const GOOGLE: &[AuthAttribute] = &[SERVICE_OAUTH2];
#[cfg(feature = "google")]
const GOOGLE_FULL_BIND: &[AuthAttribute] = &[SERVICE_OAUTH2, CLIENT_USES_FULL_BIND_RESULT];

/// What the X-OAUTH2 client sends, and its `<auth/>` attributes.
#[derive(Debug)]
struct Fields {
    authzid: Option<String>,
    username: String,
    token: Secret,
    attributes: &'static [AuthAttribute],
}

impl OneShotMessage for Fields {
    fn build(&self) -> Result<Vec<u8>, SaslError> {
        common::build_plain_layout(self.authzid.as_deref(), &self.username, self.token.expose())
    }

    fn auth_attributes(&self) -> &[AuthAttribute] {
        self.attributes
    }
}

one_shot_client! {
    /// Client side of X-OAUTH2.
    pub struct XOAuth2Client(Fields) = NAME;
}

impl XOAuth2Client {
    /// Logs in as `username` with an OAuth 2.0 access `token`. The user name
    /// is sent as given: ejabberd takes the localpart or the bare JID,
    /// Google the full address (`user@gmail.com`).
    pub fn new(username: impl Into<String>, token: impl Into<Secret>) -> Self {
        Self {
            inner: OneShotClient::new(Fields {
                authzid: None,
                username: username.into(),
                token: token.into(),
                attributes: &[],
            }),
        }
    }

    /// Puts `authzid` in the first field. Servers accept only the user
    /// name itself there (see the module docs); empty means none.
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        self.inner.message_mut().authzid = common::non_empty(authzid);
        self
    }

    /// Reports Google's `<auth/>` attributes: [`SERVICE_OAUTH2`], plus
    /// [`CLIENT_USES_FULL_BIND_RESULT`] when `full_bind_result` is true.
    #[cfg(feature = "google")]
    #[cfg_attr(docsrs, doc(cfg(feature = "google")))]
    pub fn with_google_attributes(mut self, full_bind_result: bool) -> Self {
        self.inner.message_mut().attributes = if full_bind_result {
            GOOGLE_FULL_BIND
        } else {
            GOOGLE
        };
        self
    }
}

one_shot_server! {
    /// Server side of X-OAUTH2. Asks the host with
    /// [`CredentialRequest::Token`](super::CredentialRequest::Token)
    /// (`mechanism: "X-OAUTH2"`); the host answers
    /// [`CredentialAnswer::Verdict`](super::CredentialAnswer::Verdict) with
    /// the account the token belongs to, or the failure condition.
    pub struct XOAuth2Server = NAME, parse;
}

fn parse(message: &[u8]) -> Result<Parsed, SaslError> {
    common::parse_token_layout(message, NAME)
}
