//! PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd` in one message.
//!
//! PLAIN sends the password itself: use it only over TLS (the selection
//! policy enforces that).
//!
//! **SASLprep.** The client prepares the authcid and the password with
//! SASLprep (RFC 4013) before sending them, as RFC 4616 section 2 asks and
//! as servers such as Prosody expect. When SASLprep refuses a string
//! (prohibited or unassigned code points) or maps it to nothing, the client
//! sends the string unchanged: the server then decides. The authzid (a JID
//! in XMPP) is sent as given.
//!
//! The server side does not transform anything: the host receives the
//! authcid and password exactly as the client sent them (validated as
//! UTF-8, non-empty, without NUL) and compares them against its own
//! prepared values.
//!
//! Messages over 16 KiB are `malformed-request`.

use std::borrow::Cow;

use zeroize::Zeroizing;

use super::common::{
    self, one_shot_client, one_shot_server, OneShotClient, OneShotMessage, Parsed,
};
use super::{CredentialRequest, SaslError, Secret};

/// The mechanism name.
pub const NAME: &str = "PLAIN";

/// SASLprep, or the string unchanged when SASLprep refuses it or maps it
/// to the empty string (see the module docs).
fn prepare(s: &str) -> Cow<'_, str> {
    match stringprep::saslprep(s) {
        Ok(p) if !p.is_empty() => p,
        _ => Cow::Borrowed(s),
    }
}

/// What the PLAIN client sends.
#[derive(Debug)]
struct Fields {
    authzid: Option<String>,
    username: String,
    password: Secret,
}

impl OneShotMessage for Fields {
    fn build(&self) -> Result<Vec<u8>, SaslError> {
        let password = Zeroizing::new(prepare(self.password.expose()).into_owned());
        common::build_plain_layout(self.authzid.as_deref(), &prepare(&self.username), &password)
    }
}

one_shot_client! {
    /// Client side of PLAIN.
    pub struct PlainClient(Fields) = NAME;
}

impl PlainClient {
    /// Logs in as `username` (the authcid: in XMPP the localpart of the
    /// account JID) with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self {
            inner: OneShotClient::new(Fields {
                authzid: None,
                username: username.into(),
                password: password.into(),
            }),
        }
    }

    /// Asks to act as `authzid` (a bare JID in XMPP). An empty authzid is
    /// the same as none.
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        self.inner.message_mut().authzid = common::non_empty(authzid);
        self
    }
}

one_shot_server! {
    /// Server side of PLAIN. Asks the host with
    /// [`CredentialRequest::Password`]; the host answers
    /// [`CredentialAnswer::Verdict`]: `Ok(username)` (the account that
    /// authenticated; the host has also approved the authzid, if any) or
    /// `Err(condition)` (`not-authorized`, `invalid-authzid`,
    /// `account-disabled`, ...).
    ///
    /// [`CredentialAnswer::Verdict`]: super::CredentialAnswer::Verdict
    pub struct PlainServer = NAME, parse;
}

fn parse(message: &[u8]) -> Result<Parsed, SaslError> {
    let m = common::parse_plain_layout(message)?;
    Ok(Parsed {
        request: CredentialRequest::Password {
            username: m.authcid,
            authzid: m.authzid.clone(),
            password: m.secret,
        },
        authzid: m.authzid,
    })
}
