//! GSSAPI (RFC 4752): Kerberos V5 through the GSS-API, for single sign-on.
//!
//! The GSS-API security context is the host's: this crate links no
//! Kerberos library. The host implements [`GssContext`] (with `libgssapi`,
//! for instance) and creates one per connection; [`GssapiClient`] and
//! [`GssapiServer`] carry its tokens and run the SASL security-layer
//! negotiation of RFC 4752 section 3.
//!
//! The exchange, as Prosody 13 with Cyrus SASL runs it
//! (`tests/fixtures/prosody13_gssapi_login.txt`):
//!
//! 1. `<auth mechanism='GSSAPI'>`: the initiator's first context token
//!    (the Kerberos AP-REQ for `xmpp@<host>`).
//! 2. `<challenge>`/`<response>` pairs carry further context tokens until
//!    both sides are established; with mutual authentication the server's
//!    last token is the AP-REP, and the client, established, answers it
//!    with an empty `<response/>`.
//! 3. `<challenge>`: the server's security-layer offer, wrapped
//!    (integrity only): four bytes, the layers it supports (bit `0x01`:
//!    no security layer, `0x02` integrity, `0x04` confidentiality) and its
//!    maximum buffer size (three bytes, network order; 0 when it offers no
//!    layer). This crate's server offers `[0x01, 0, 0, 0]`, as Cyrus does.
//! 4. `<response>`: the client's choice, wrapped: `0x01` (no security
//!    layer: XMPP has TLS for that), a maximum buffer size of 0, then the
//!    authorization identity (UTF-8, possibly empty). This crate's client
//!    refuses a server that does not offer "no security layer"
//!    ([`SaslCondition::MechanismTooWeak`]).
//! 5. `<success/>`, with no additional data.
//!
//! The server then asks the host with [`CredentialRequest::Gssapi`]: the
//! principal the context established (`alice@EXAMPLE.TEST`) and the
//! requested authzid. The host maps the principal to a user name and
//! answers [`CredentialAnswer::Verdict`] with it (`Ok`), or
//! `Err(invalid-authzid)` when the principal may not act as the authzid,
//! or `Err(not-authorized)`, as it does for EXTERNAL.
//!
//! Registering it: [`ClientMechanismFactory::gssapi`] (the client's
//! credentials are [`Credentials::Host`]) and
//! [`ServerMechanismFactory::gssapi`] (named in
//! [`ServerSettings::mechanisms`] to be offered), each with the host's
//! factory of contexts, called once per connection with the
//! [`GssTarget`] (`xmpp` at the server's domain).
//!
//! ```
//! use xmpp_sansio::client::{ClientMechanismFactory, ClientSettings, Credentials};
//! use xmpp_sansio::sasl::gssapi::{GssContext, GssError, GssStep, GssTarget};
//! use xmpp_sansio::server::{ServerMechanismFactory, ServerSettings};
//!
//! /// The host's context: `libgssapi`'s `ClientCtx`/`ServerCtx` in real life.
//! struct Kerberos;
//! impl GssContext for Kerberos {
//!     fn step(&mut self, _token: Option<&[u8]>) -> Result<GssStep, GssError> {
//!         Err(GssError::new("no ticket"))
//!     }
//!     fn wrap(&mut self, m: &[u8]) -> Result<Vec<u8>, GssError> { Ok(m.to_vec()) }
//!     fn unwrap(&mut self, t: &[u8]) -> Result<Vec<u8>, GssError> { Ok(t.to_vec()) }
//!     fn peer_name(&self) -> Option<String> { None }
//! }
//!
//! // The client: Kerberos credentials are the host's.
//! let mut client = ClientSettings::new("alice@xmpp.example.test", Credentials::Host);
//! client.mechanisms.register(ClientMechanismFactory::gssapi(|target: GssTarget<'_>| {
//!     assert_eq!(target.hostbased_name(), "xmpp@xmpp.example.test");
//!     Ok(Box::new(Kerberos) as Box<dyn GssContext>)
//! }));
//! let client = client.build().unwrap();
//!
//! // The server: registered, and named to be offered.
//! let mut server = ServerSettings::new("xmpp.example.test");
//! server.registry.register(ServerMechanismFactory::gssapi(|_| Ok(Box::new(Kerberos))));
//! server.mechanisms.push("GSSAPI".into());
//! let server = server.build().unwrap();
//! # let _ = (client, server);
//! ```
//!
//! Failures are [`SaslError`]s with a static reason; the host's own
//! [`GssError`] text (a missing ticket, a clock skew) is not carried
//! through, since the host produced it and can log it where it does.
//!
//! [`ClientMechanismFactory::gssapi`]: crate::client::ClientMechanismFactory::gssapi
//! [`ServerMechanismFactory::gssapi`]: crate::server::ServerMechanismFactory::gssapi
//! [`Credentials::Host`]: crate::client::Credentials::Host
//! [`ServerSettings::mechanisms`]: crate::server::ServerSettings::mechanisms

use std::fmt;

use super::common::{self, identity, no_request_pending, out_of_order, verdict};
use super::policy::{CredentialKind, MechanismProfile};
use super::{
    ClientMechanism, CredentialAnswer, CredentialRequest, SaslCondition, SaslError,
    ServerMechanism, ServerStep,
};

/// The mechanism name.
pub const NAME: &str = "GSSAPI";

/// The GSS-API service name of XMPP (the `xmpp/host` Kerberos principal).
pub const SERVICE: &str = "xmpp";

/// How the client's policy ranks GSSAPI: credentials the host keeps
/// ([`CredentialKind::Host`], a Kerberos ticket), rank 150: above PLAIN
/// and EXTERNAL (100), among the mechanisms that send no password.
pub const CLIENT_PROFILE: MechanismProfile = MechanismProfile::new(150, CredentialKind::Host);

/// The security-layer bit for "no security layer" (RFC 4752 section 3.3).
pub const NO_SECURITY_LAYER: u8 = 0x01;

/// Longest authzid accepted or sent: the longest JID (RFC 7622).
const MAX_AUTHZID_LEN: usize = 3071;

/// Context tokens accepted from the peer before giving up: Kerberos needs
/// one or two; a peer that never completes is cut off.
const MAX_CONTEXT_TOKENS: usize = 8;

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

/// Whom a context is created for: the GSS-API host-based service name
/// `service@host` (RFC 2743 section 4.1), given to the host's factory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GssTarget<'a> {
    /// The service: [`SERVICE`] (`xmpp`).
    pub service: &'a str,
    /// The server's host name: the stream's domain. A client that
    /// connects to another host name (an SRV target) and whose server
    /// has that principal may use it instead.
    pub host: &'a str,
}

impl<'a> GssTarget<'a> {
    /// `xmpp` at `host`.
    pub fn xmpp(host: &'a str) -> Self {
        Self {
            service: SERVICE,
            host,
        }
    }

    /// The host-based service name: `xmpp@xmpp.example.test`.
    pub fn hostbased_name(&self) -> String {
        format!("{}@{}", self.service, self.host)
    }
}

/// The host's factory of contexts: called once per connection, for the
/// initiator (client) or the acceptor (server).
pub type NewGssContext =
    dyn Fn(GssTarget<'_>) -> Result<Box<dyn GssContext>, GssError> + Send + Sync;

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

/// Checks an authzid for the security-layer message.
fn check_authzid(authzid: &str) -> Result<(), SaslError> {
    if authzid.contains('\0') {
        return Err(SaslError::malformed("NUL in authzid"));
    }
    common::check_len(authzid.as_bytes(), MAX_AUTHZID_LEN)
}

/// Where the client is in the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Fresh,
    /// Context tokens are being exchanged; so many received.
    Context(usize),
    /// Established: the next challenge is the wrapped layer offer.
    Established,
    /// The layer answer went out: only `<success/>` may follow.
    Answered,
    Done,
}

/// Client side of GSSAPI over the host's initiator context (see the
/// module docs). Sends no authzid unless
/// [`with_authzid`](Self::with_authzid): the server maps the principal.
pub struct GssapiClient {
    context: Box<dyn GssContext>,
    authzid: String,
    state: ClientState,
}

impl fmt::Debug for GssapiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GssapiClient")
            .field("authzid", &self.authzid)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl GssapiClient {
    /// Runs the exchange over `context`, a fresh initiator context for
    /// `xmpp@<server host>`.
    pub fn new(context: Box<dyn GssContext>) -> Self {
        Self {
            context,
            authzid: String::new(),
            state: ClientState::Fresh,
        }
    }

    /// Asks to act as `authzid` (a bare JID, say). Empty means none. One
    /// with a NUL or over 3071 bytes fails the exchange
    /// (`malformed-request`) before anything wrapped is sent.
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        self.authzid = authzid.into();
        self
    }

    /// One context step: the token to send, and the new state.
    fn context_step(
        &mut self,
        token: Option<&[u8]>,
        received: usize,
    ) -> Result<Vec<u8>, SaslError> {
        let step = self
            .context
            .step(token)
            .map_err(|_| SaslError::not_authorized("GSS-API context establishment failed"))?;
        Ok(match step {
            GssStep::Continue(t) => {
                self.state = ClientState::Context(received);
                t
            }
            GssStep::Complete(t) => {
                self.state = ClientState::Established;
                t.unwrap_or_default()
            }
        })
    }

    /// Unwraps the server's offer and wraps the answer.
    fn answer_offer(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let offer = self
            .context
            .unwrap(challenge)
            .map_err(|_| SaslError::not_authorized("the security-layer offer failed GSS_Unwrap"))?;
        let [layers, _, _, _] = offer[..] else {
            return Err(SaslError::malformed(
                "the security-layer offer is not 4 bytes",
            ));
        };
        if layers & NO_SECURITY_LAYER == 0 {
            return Err(SaslError::new(
                SaslCondition::MechanismTooWeak,
                "the server does not offer \"no security layer\"",
            ));
        }
        check_authzid(&self.authzid)?;
        let mut answer = vec![NO_SECURITY_LAYER, 0, 0, 0];
        answer.extend_from_slice(self.authzid.as_bytes());
        let wrapped = self.context.wrap(&answer).map_err(|_| {
            SaslError::new(
                SaslCondition::TemporaryAuthFailure,
                "GSS_Wrap of the security-layer answer failed",
            )
        })?;
        self.state = ClientState::Answered;
        Ok(wrapped)
    }
}

impl ClientMechanism for GssapiClient {
    fn name(&self) -> &str {
        NAME
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        if self.state != ClientState::Fresh {
            return Err(out_of_order());
        }
        self.state = ClientState::Done;
        self.context_step(None, 0).map(Some)
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        match std::mem::replace(&mut self.state, ClientState::Done) {
            ClientState::Context(n) if n < MAX_CONTEXT_TOKENS => {
                self.context_step(Some(challenge), n + 1)
            }
            ClientState::Context(_) => Err(SaslError::malformed(
                "the GSS-API context did not complete in time",
            )),
            ClientState::Established => self.answer_offer(challenge),
            _ => Err(out_of_order()),
        }
    }

    fn success(&mut self, additional_data: Option<&[u8]>) -> Result<(), SaslError> {
        match std::mem::replace(&mut self.state, ClientState::Done) {
            ClientState::Answered => match additional_data {
                None | Some([]) => Ok(()),
                Some(_) => Err(SaslError::malformed("GSSAPI success carries no data")),
            },
            _ => Err(SaslError::not_authorized(
                "success before the security-layer exchange",
            )),
        }
    }
}

/// Where the server is in the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerState {
    Fresh,
    /// Waiting for a context token; so many received.
    Context(usize),
    /// Established with a last token sent: the client answers it empty.
    AwaitingEmpty,
    /// The wrapped offer went out: the wrapped answer comes next.
    AwaitingLayer,
    /// Waiting for the host's verdict.
    AwaitingAnswer {
        authzid: Option<String>,
    },
    Done,
}

/// Server side of GSSAPI over the host's acceptor context (see the
/// module docs for the host's answer).
pub struct GssapiServer {
    context: Box<dyn GssContext>,
    state: ServerState,
}

impl fmt::Debug for GssapiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GssapiServer")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The offer: no security layer, maximum buffer 0 (RFC 4752 section 3.3:
/// 0 when no layer is supported).
const OFFER: [u8; 4] = [NO_SECURITY_LAYER, 0, 0, 0];

impl GssapiServer {
    /// Runs the exchange over `context`, a fresh acceptor context.
    pub fn new(context: Box<dyn GssContext>) -> Self {
        Self {
            context,
            state: ServerState::Fresh,
        }
    }

    fn accept(&mut self, token: &[u8], received: usize) -> Result<ServerStep, SaslError> {
        if token.is_empty() {
            return Err(SaslError::malformed("empty GSS-API context token"));
        }
        let step = self
            .context
            .step(Some(token))
            .map_err(|_| SaslError::not_authorized("GSS-API context establishment failed"))?;
        match step {
            GssStep::Continue(t) => {
                self.state = ServerState::Context(received);
                Ok(ServerStep::Challenge(t))
            }
            GssStep::Complete(Some(t)) if !t.is_empty() => {
                self.state = ServerState::AwaitingEmpty;
                Ok(ServerStep::Challenge(t))
            }
            GssStep::Complete(_) => self.offer(),
        }
    }

    fn offer(&mut self) -> Result<ServerStep, SaslError> {
        let wrapped = self.context.wrap(&OFFER).map_err(|_| {
            SaslError::new(
                SaslCondition::TemporaryAuthFailure,
                "GSS_Wrap of the security-layer offer failed",
            )
        })?;
        self.state = ServerState::AwaitingLayer;
        Ok(ServerStep::Challenge(wrapped))
    }

    fn choose(&mut self, response: &[u8]) -> Result<ServerStep, SaslError> {
        let answer = zeroize::Zeroizing::new(self.context.unwrap(response).map_err(|_| {
            SaslError::not_authorized("the security-layer answer failed GSS_Unwrap")
        })?);
        let Some((&layer, rest)) = answer.split_first() else {
            return Err(SaslError::malformed(
                "the security-layer answer is too short",
            ));
        };
        let Some(authzid) = rest.get(3..) else {
            return Err(SaslError::malformed(
                "the security-layer answer is too short",
            ));
        };
        // Only "no layer" was offered; its maximum buffer size is ignored
        // (RFC 4752 wants 0, and it is meaningless without a layer).
        if layer != NO_SECURITY_LAYER {
            return Err(SaslError::malformed(
                "the client chose a security layer that was not offered",
            ));
        }
        common::check_len(authzid, MAX_AUTHZID_LEN)?;
        let authzid = common::utf8(authzid, "authzid is not UTF-8")?;
        check_authzid(authzid)?;
        let principal = self.context.peer_name().ok_or(SaslError::new(
            SaslCondition::TemporaryAuthFailure,
            "the established GSS-API context names no initiator",
        ))?;
        let authzid = common::non_empty(authzid);
        self.state = ServerState::AwaitingAnswer {
            authzid: authzid.clone(),
        };
        Ok(ServerStep::Request(CredentialRequest::Gssapi {
            principal,
            authzid,
        }))
    }
}

impl ServerMechanism for GssapiServer {
    fn name(&self) -> &str {
        NAME
    }

    fn start(&mut self, initial_response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, ServerState::Done) {
            ServerState::Fresh => match initial_response {
                // RFC 4422 section 5: ask for the initial token.
                None => {
                    self.state = ServerState::Context(0);
                    Ok(ServerStep::Challenge(Vec::new()))
                }
                Some(token) => self.accept(token, 1),
            },
            _ => Err(out_of_order()),
        }
    }

    fn respond(&mut self, response: &[u8]) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, ServerState::Done) {
            ServerState::Context(n) if n < MAX_CONTEXT_TOKENS => self.accept(response, n + 1),
            ServerState::Context(_) => Err(SaslError::malformed(
                "the GSS-API context did not complete in time",
            )),
            ServerState::AwaitingEmpty if response.is_empty() => self.offer(),
            ServerState::AwaitingEmpty => Err(SaslError::malformed(
                "expected an empty response after the last context token",
            )),
            ServerState::AwaitingLayer => self.choose(response),
            _ => Err(out_of_order()),
        }
    }

    fn answer(&mut self, answer: CredentialAnswer) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, ServerState::Done) {
            ServerState::AwaitingAnswer { authzid } => Ok(ServerStep::Success {
                identity: identity(verdict(answer)?, authzid),
                additional_data: None,
            }),
            _ => Err(no_request_pending()),
        }
    }
}

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
