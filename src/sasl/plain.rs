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

use super::common::{self, OneShotClient, OneShotServer, Parsed};
use super::{
    ClientMechanism, CredentialAnswer, CredentialRequest, SaslError, Secret, ServerMechanism,
    ServerStep,
};

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

/// Client side of PLAIN.
#[derive(Debug)]
pub struct PlainClient {
    authzid: Option<String>,
    username: String,
    password: Secret,
    state: OneShotClient,
}

impl PlainClient {
    /// Logs in as `username` (the authcid: in XMPP the localpart of the
    /// account JID) with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self {
            authzid: None,
            username: username.into(),
            password: password.into(),
            state: OneShotClient::default(),
        }
    }

    /// Asks to act as `authzid` (a bare JID in XMPP). An empty authzid is
    /// the same as none.
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        let a = authzid.into();
        self.authzid = (!a.is_empty()).then_some(a);
        self
    }
}

fn build(authzid: Option<&str>, username: &str, password: &Secret) -> Result<Vec<u8>, SaslError> {
    let password = Zeroizing::new(prepare(password.expose()).into_owned());
    common::build_plain_layout(authzid, &prepare(username), &password)
}

impl ClientMechanism for PlainClient {
    fn name(&self) -> &str {
        NAME
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        let Self {
            authzid,
            username,
            password,
            state,
        } = self;
        state.initial_response(|| build(authzid.as_deref(), username, password))
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let Self {
            authzid,
            username,
            password,
            state,
        } = self;
        state.respond(challenge, || build(authzid.as_deref(), username, password))
    }

    fn success(&mut self, additional_data: Option<&[u8]>) -> Result<(), SaslError> {
        self.state.success(additional_data)
    }
}

/// Server side of PLAIN. Asks the host with
/// [`CredentialRequest::Password`]; the host answers
/// [`CredentialAnswer::Verdict`]: `Ok(username)` (the account that
/// authenticated; the host has also approved the authzid, if any) or
/// `Err(condition)` (`not-authorized`, `invalid-authzid`,
/// `account-disabled`, ...).
#[derive(Debug)]
pub struct PlainServer {
    inner: OneShotServer,
}

impl PlainServer {
    /// A fresh exchange.
    pub fn new() -> Self {
        Self {
            inner: OneShotServer::new(parse),
        }
    }
}

impl Default for PlainServer {
    fn default() -> Self {
        Self::new()
    }
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

impl ServerMechanism for PlainServer {
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
