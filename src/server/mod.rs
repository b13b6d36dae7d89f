//! The receiving entity of RFC 6120 for client-to-server streams:
//! [`Server`], the mirror of [`Client`](crate::client::Client), on the
//! same codec, SASL layer and feature table.
//!
//! # Driving a server
//!
//! One `Server` serves one client connection. The host moves bytes and
//! time, and answers requests:
//!
//! - Inputs: [`Server::feed`], [`Server::handle_timeout`], and commands:
//!   [`Server::tls_established`], [`Server::answer`] (to a
//!   [`ServerEvent::Credentials`], [`ServerEvent::Bind`],
//!   [`ServerEvent::Register`] or [`ServerEvent::LegacyAuth`] request;
//!   [`Server::answer_credentials`], [`Server::answer_bind`],
//!   [`Server::answer_register`] and [`Server::answer_legacy_auth`] for
//!   one kind each), [`Server::send`], [`Server::close`]. An answer of
//!   another kind than the pending request takes
//!   ([`Server::pending_request`]) is refused with
//!   [`UsageError::WrongAnswer`] and leaves the request pending.
//! - Outputs: [`Server::poll_transmit`], [`Server::poll_event`],
//!   [`Server::poll_timeout`].
//!
//! **Drain order**: after every input, `poll_transmit` until 0 and write,
//! then `poll_event` until `None`, then `poll_timeout`. A request (credentials,
//! bind) can be answered at once or much later (a database round trip):
//! while one is pending, the server reads nothing further (bytes fed
//! meanwhile are held, within the element size limit, and read after the
//! answer, because what they mean depends on it).
//!
//! Errors are sticky, as for the client: the right `<stream:error/>`,
//! `</stream:stream>`, [`ServerEvent::Error`] once, then
//! [`ServerEvent::Closed`].
//!
//! Registration (XEP-0077), `jabber:iq:auth` (XEP-0078) and pre-1.0
//! clients need the `legacy` cargo feature (on by default). Without it,
//! their configuration fields, events and answers do not exist: no
//! `<register/>` or `<auth/>` feature is offered, an IQ before
//! authentication is a stanza before authentication (`not-authorized`),
//! a registration IQ in a session is a stanza for the host, and a
//! pre-1.0 stream gets `unsupported-version`.

mod config;
mod error;
mod feature_cache;
#[cfg(feature = "legacy")]
mod legacy;
mod mechanism;
mod sasl2;
mod sm;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use jid::{BareJid, DomainPart, FullJid, Jid, ResourcePart};

use minidom::Element;

pub use crate::core::AnswerKind;
pub use crate::error::{Deadline, InternalError, Misbehavior};
pub use config::{ServerConfig, ServerSettings, ServerTls};
pub use error::{PolicyError, ServerError};
#[cfg(feature = "legacy")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
pub use legacy::{LegacyAuthAnswer, LegacyAuthMethods, LegacyAuthRequest, RegistrationRequest};
pub use mechanism::{
    fast_mechanism, BuildServerMechanism, FastLogin, OfferRule, ServerMechanismFactory,
    ServerMechanismInput, ServerMechanisms,
};
pub use sm::{ResumeAnswer, ResumeRequest};

use crate::core::{deadline, Core, Life, Parsed, UsageError};
use crate::features::{Stage, StreamFeatures};
use crate::gate::Expect;
use crate::ns;
use crate::random::{printable_token, RandomSource};
use crate::sasl::scram::ServerOffer;
use crate::sasl::{
    CredentialAnswer, CredentialRequest, ExchangeSecurity, Identity, SaslCondition, SaslError,
    ServerMechanism, ServerStep,
};
use crate::steps::sasl::{SaslElement, SaslPayload};
use crate::steps::starttls::{proceed, TlsElement};
use crate::steps::{bind, session, StanzaError};
use crate::stream_error::{StreamError, StreamErrorCondition};
use crate::tls::TlsInfo;
use crate::xml::{ReadError, StreamEvent, StreamHeader};

/// Something the host must know, do or decide.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// `<proceed/>` was queued: once it is written, start TLS. `pending`
    /// holds bytes received after `<starttls/>`: they belong to TLS and
    /// were not parsed (STARTTLS command injection). Call
    /// [`Server::tls_established`] when done.
    StartTls {
        /// Received bytes that follow `<starttls/>`.
        pending: Vec<u8>,
    },
    /// Look up or decide credentials; answer with
    /// [`Server::answer_credentials`].
    Credentials(CredentialRequest),
    /// A SASL attempt failed (the client may try again, up to the
    /// configured number of attempts).
    AuthenticationFailed {
        /// The mechanism, when the client named a known one.
        mechanism: Option<String>,
        /// The condition sent in `<failure/>`.
        condition: SaslCondition,
    },
    /// SASL succeeded.
    Authenticated {
        /// Who, as the mechanism saw it.
        identity: Identity,
        /// The account: the user name as the local part of the stream's
        /// domain, prepared.
        jid: BareJid,
        /// With which mechanism.
        mechanism: String,
        /// Channel binding and XEP-0474, as the mechanism saw them.
        security: ExchangeSecurity,
    },
    /// The client asks to bind `resource` (`None`: let the server choose).
    /// Answer with [`Server::answer_bind`].
    Bind {
        /// The authenticated account.
        jid: BareJid,
        /// The requested resource, prepared (a request whose resource
        /// fails resourceprep is answered `bad-request` without asking).
        resource: Option<ResourcePart>,
    },
    /// FAST (XEP-0484): the client asked for a token bound to
    /// `mechanism` (`<request-token/>`) on this SASL2 login, or logged in
    /// with a token (`used`: the slot that matched), which the host may
    /// rotate. Answer with [`Server::answer_fast_token`] (or
    /// [`Server::answer`] with [`ServerAnswer::FastToken`]): the new token
    /// (the host stores it in [`TokenSlots::new`](crate::fast::TokenSlots::new),
    /// keeping the current one until the new one is used) or `None`.
    IssueFastToken {
        /// The authenticated account.
        jid: BareJid,
        /// The client's `<user-agent id>`, when given.
        user_agent_id: Option<String>,
        /// The mechanism the token is bound to.
        mechanism: String,
        /// The slot of the token this login used (`None`: not a token
        /// login). The host promotes it and keeps `count`
        /// ([`TokenSlots::record_use`](crate::fast::TokenSlots::record_use)).
        used: Option<crate::fast::TokenSlot>,
        /// The `count` of the token login's `<fast/>` (XEP-0484 section
        /// 3.4), already checked to be above the token's
        /// [`count`](crate::fast::FastToken::count): the host keeps it as
        /// the token's new count, so that the same count is refused next
        /// time. `None`: no count sent (or not a token login).
        count: Option<u32>,
    },
    /// FAST (XEP-0484 section 3.5): the client logged in with the token
    /// of slot `used` and asked for it to be invalidated
    /// (`<fast invalidate='true'/>`, a log-out). The host drops it from
    /// its store at once ([`TokenSlots::invalidate`](crate::fast::TokenSlots::invalidate),
    /// or both slots of this client); no answer is due. No token is
    /// issued on this login unless the client also sent a
    /// `<request-token/>` ([`IssueFastToken`](Self::IssueFastToken)
    /// follows, with `used: None`).
    FastTokenInvalidated {
        /// The authenticated account.
        jid: BareJid,
        /// The client's `<user-agent id>`, when given.
        user_agent_id: Option<String>,
        /// The slot of the token the login used.
        used: crate::fast::TokenSlot,
    },
    /// An in-band registration decision (XEP-0077); answer with
    /// [`Server::answer_register`].
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    Register(RegistrationRequest),
    /// A legacy authentication request (XEP-0078); answer with
    /// [`Server::answer_legacy_auth`].
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    LegacyAuth(LegacyAuthRequest),
    /// The client enabled these features inline in its Bind 2 request
    /// (XEP-0386), among those listed
    /// ([`Sasl2Settings::carbons`](crate::sasl2::Sasl2Settings::carbons),
    /// [`Sasl2Settings::csi`](crate::sasl2::Sasl2Settings::csi)): the host
    /// copies messages to this session (carbons) and starts it in this
    /// CSI state. No answer is needed; [`ServerEvent::Ready`] follows.
    /// Only when the client enabled one.
    Bind2Enabled(crate::steps::bind2::Bind2Features),
    /// The session is ready.
    Ready {
        /// The client's full JID.
        jid: FullJid,
    },
    /// A stanza from the client, its `from` stamped with the full JID.
    Stanza(Element),
    /// Stream management (XEP-0198) is on for this session: the client
    /// sent `<enable/>` and got `<enabled/>`.
    StreamManagementEnabled {
        /// The resumption id, when resumption was granted.
        id: Option<String>,
    },
    /// The client acknowledged these stanzas of the host's, oldest
    /// first, as they were sent
    /// ([`SentStanza::id`](crate::sm::SentStanza::id) names each).
    Acked(Vec<crate::sm::SentStanza>),
    /// These stanzas of the host's were never acknowledged and will not
    /// be sent again: the session ended (a close, or a failure without
    /// resumption). Oldest first; the host routes them elsewhere (offline
    /// storage, an error to the sender).
    Undelivered(Vec<crate::sm::SentStanza>),
    /// The stream ended without a close (a failure, or
    /// [`Server::connection_lost`]) and its session can be resumed: keep
    /// this state for the resumption timeout
    /// ([`SmSettings::max_resume`](crate::sm::SmSettings::max_resume)),
    /// queue what is routed to its JID meanwhile, and give it back in
    /// [`ResumeAnswer::Found`] when a client asks
    /// ([`ServerEvent::Resume`]); once the timeout passes, its
    /// [`unacked`](crate::sm::SmState::unacked) stanzas are undelivered.
    /// Also a state handed to [`Server::answer_resume`] for another
    /// account or id, given back.
    Detached(crate::sm::SmState),
    /// A client asks to resume a detached session (instead of binding):
    /// answer with [`Server::answer_resume`].
    Resume(ResumeRequest),
    /// A detached session was resumed on this stream: stanzas flow
    /// again (no [`ServerEvent::Ready`] comes), the unacknowledged ones
    /// were sent again; the host delivers what it queued for the JID.
    Resumed {
        /// The session's full JID.
        jid: FullJid,
        /// How many of the host's stanzas the client had handled.
        h: u32,
    },
    /// A XEP-0480 SCRAM upgrade: the client computed the keys of `hash`
    /// for a fresh salt during its SASL2 login; the host stores them for
    /// the account (they log in with `SCRAM-<hash>` from now on). No
    /// answer is needed.
    ScramUpgraded {
        /// The account.
        jid: BareJid,
        /// The hash family of the new keys.
        hash: crate::sasl::ScramHash,
        /// Salt, iteration count, StoredKey and ServerKey.
        credentials: crate::sasl::ScramCredentials,
    },
    /// The stream failed; [`ServerEvent::Closed`] follows.
    Error(ServerError),
    /// The stream is closed.
    Closed,
}

/// The host's answer to a [`ServerEvent::Bind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAnswer {
    /// Bind this resource (`None`: the server generates one).
    Accept(Option<ResourcePart>),
    /// Refuse, with this stanza error.
    Refuse(BindRefusal),
}

/// Why a host refuses a resource binding: the stanza errors of RFC 6120
/// sections 7.6.2 and 7.7.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BindRefusal {
    /// `<bad-request/>` (`modify`): the resource is not acceptable
    /// (7.7.2.1).
    BadRequest,
    /// `<conflict/>` (`cancel`): the resource is in use and the host does
    /// not replace the other session (7.7.2.2).
    Conflict,
    /// `<not-allowed/>` (`cancel`): the client may not bind a resource
    /// (7.6.2.2).
    NotAllowed,
    /// `<resource-constraint/>` (`wait`): the account has reached its
    /// number of connected resources (7.6.2.1).
    ResourceConstraint,
}

impl BindRefusal {
    /// The stanza error condition (`conflict`, ...).
    pub fn condition(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Conflict => "conflict",
            Self::NotAllowed => "not-allowed",
            Self::ResourceConstraint => "resource-constraint",
        }
    }

    /// The stanza error type (`cancel`, `modify`, `wait`).
    pub fn error_type(self) -> &'static str {
        match self {
            Self::BadRequest => "modify",
            Self::Conflict | Self::NotAllowed => "cancel",
            Self::ResourceConstraint => "wait",
        }
    }
}

/// The host's answer to a [`ServerEvent::Register`]: done, or the
/// XEP-0077 error to return.
#[cfg(feature = "legacy")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
pub type RegisterAnswer = Result<(), crate::steps::LegacyError>;

/// The host's answer to a [`ServerEvent::IssueFastToken`]: the token to
/// send in `<success/>` (the host keeps it in its
/// [`TokenSlots::new`](crate::fast::TokenSlots::new)), or `None` for no
/// token.
pub type FastTokenAnswer = Option<crate::fast::FastToken>;

/// Any answer of the host to a request, for [`Server::answer`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerAnswer {
    /// To [`ServerEvent::Credentials`].
    Credentials(CredentialAnswer),
    /// To [`ServerEvent::Bind`].
    Bind(BindAnswer),
    /// To [`ServerEvent::Resume`].
    Resume(ResumeAnswer),
    /// To [`ServerEvent::IssueFastToken`] (FAST, XEP-0484): the same as
    /// [`Server::answer_fast_token`].
    FastToken(FastTokenAnswer),
    /// To [`ServerEvent::Register`].
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    Register(RegisterAnswer),
    /// To [`ServerEvent::LegacyAuth`].
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    LegacyAuth(LegacyAuthAnswer),
}

impl ServerAnswer {
    /// Which kind of answer this is.
    pub fn kind(&self) -> AnswerKind {
        match self {
            Self::Credentials(a) => a.kind(),
            Self::Bind(_) => AnswerKind::Bind,
            Self::Resume(_) => AnswerKind::Resume,
            Self::FastToken(_) => AnswerKind::IssueFastToken,
            #[cfg(feature = "legacy")]
            Self::Register(_) => AnswerKind::Registration,
            #[cfg(feature = "legacy")]
            Self::LegacyAuth(a) => a.kind(),
        }
    }
}

/// Each answer type is a [`ServerAnswer`].
macro_rules! server_answer_from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for ServerAnswer {
            fn from(a: $ty) -> Self {
                Self::$variant(a)
            }
        }
    )*};
}

server_answer_from!(
    Credentials(CredentialAnswer),
    Bind(BindAnswer),
    FastToken(FastTokenAnswer)
);
#[cfg(feature = "legacy")]
server_answer_from!(Register(RegisterAnswer), LegacyAuth(LegacyAuthAnswer));

enum Phase {
    /// Waiting for the client's header.
    AwaitHeader,
    /// Pre-authentication features sent.
    Negotiating,
    /// `<proceed/>` queued; waiting for `tls_established`.
    AwaitTls,
    /// SASL under way; `waiting` when a credential request is out, with
    /// the kind of answer it takes.
    Sasl {
        mech: Box<dyn ServerMechanism>,
        name: String,
        waiting: Option<AnswerKind>,
        /// A SASL2 login (XEP-0388): its inline requests.
        sasl2: Option<Box<sasl2::Sasl2Login>>,
    },
    /// SASL2: the mechanism succeeded; an XEP-0480 upgrade task runs.
    Sasl2Task {
        login: Box<sasl2::Sasl2Login>,
        step: sasl2::TaskStep,
    },
    /// Post-authentication features sent; waiting for a bind request.
    AwaitBind,
    /// A bind request is with the host, for the authenticated `username`.
    BindPending { via: BindVia },
    /// Stream management: a `<resume/>` is with the host (inline in a
    /// SASL2 login, or alone).
    ResumePending {
        previd: String,
        h: u32,
        sasl2: Option<Box<sasl2::Sasl2Login>>,
    },
    /// SASL2: a FAST token to issue is with the host.
    FastTokenPending { login: Box<sasl2::Sasl2Login> },
    /// Ready.
    Ready { jid: FullJid },
    /// A registration or legacy-auth request is with the host; `resume`
    /// is the phase to return to.
    #[cfg(feature = "legacy")]
    Host {
        pending: legacy::Pending,
        resume: Box<Phase>,
    },
}

/// How the client asked to bind.
enum BindVia {
    /// An RFC 6120 bind IQ, with its id.
    Iq(String),
    /// Bind 2, inside a SASL2 login.
    Sasl2(Box<sasl2::Sasl2Login>),
}

/// The server state machine for one client connection. See the
/// [module documentation](self).
pub struct Server {
    config: Arc<ServerConfig>,
    rng: Box<dyn RandomSource>,
    /// The authenticated account.
    account: Option<BareJid>,
    core: Core<ServerEvent, ServerError>,
    phase: Phase,
    tls: Option<TlsInfo>,
    identity: Option<Identity>,
    domain: Option<DomainPart>,
    offer: ServerOffer,
    failures: u32,
    auth_deadline: Option<Instant>,
    negotiation_deadline: Option<Instant>,
    /// Bytes received while a request is with the host.
    held: Vec<u8>,
    /// This stream's id (the salt of XEP-0078 digests).
    #[cfg(feature = "legacy")]
    stream_id: String,
    /// Whether our header went out on the current stream.
    header_sent: bool,
    /// When the client last sent bytes (the idle deadline).
    last_recv: Instant,
    /// Whether the TLS layer authenticated the client, as the host said
    /// ([`Server::client_certificate`]); `None`: not said.
    client_certificate: Option<bool>,
    /// Stream management: the session, once enabled or resumed.
    sm: Option<crate::sm::Session>,
    /// The current or last authentication exchange is SASL2's (its
    /// failures are SASL2 elements).
    sasl2_exchange: bool,
    /// The time of the last input (stanzas the host sends between inputs
    /// are stamped with it).
    last_input: Instant,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("tls", &self.tls.is_some())
            .field("identity", &self.identity)
            .field("error", &self.core.error)
            .finish_non_exhaustive()
    }
}

const EXPECTED_CLIENT: &str = "an element that is not legal in this phase";

impl Server {
    /// A server for a newly accepted connection, with stream ids, nonces
    /// and generated resources from the operating system's random source.
    #[cfg(feature = "getrandom")]
    #[cfg_attr(docsrs, doc(cfg(feature = "getrandom")))]
    pub fn new(config: impl Into<Arc<ServerConfig>>, now: Instant) -> Self {
        Self::with_random(config, Box::new(crate::OsRandom), now)
    }

    /// A server for a newly accepted connection, with randomness from
    /// `rng` (the host's own source; a deterministic one only in tests).
    pub fn with_random(
        config: impl Into<Arc<ServerConfig>>,
        rng: Box<dyn RandomSource>,
        now: Instant,
    ) -> Self {
        let config = config.into();
        Server {
            core: Core::new(config.limits, ns::JABBER_CLIENT, config.framing, now),
            auth_deadline: Some(deadline(now, config.auth_timeout)),
            negotiation_deadline: Some(deadline(now, config.negotiation_timeout)),
            last_recv: now,
            config,
            rng,
            account: None,
            phase: Phase::AwaitHeader,
            tls: None,
            identity: None,
            domain: None,
            offer: ServerOffer::default(),
            failures: 0,
            held: Vec::new(),
            #[cfg(feature = "legacy")]
            stream_id: String::new(),
            header_sent: false,
            client_certificate: None,
            sm: None,
            sasl2_exchange: false,
            last_input: now,
        }
    }

    /// The error the stream failed with, if it did.
    pub fn error(&self) -> Option<&ServerError> {
        self.core.error.as_ref()
    }

    /// Who authenticated, once SASL succeeded.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The connection's TLS, accepted by the host before XMPP started
    /// ([`ServerTls::Direct`], XEP-0368): its version and channel-binding
    /// data, for the mechanisms. Call it right after the constructor.
    pub fn direct_tls(mut self, info: TlsInfo) -> Self {
        self.tls = Some(info);
        self
    }

    /// What the host knows of the client's TLS certificate: `true` when
    /// the client presented one the host verified (it answers
    /// [`CredentialRequest::External`]
    /// from it), `false` when it did not, which withholds EXTERNAL from the
    /// mechanisms offered (RFC 6120 section 6.3.4: EXTERNAL is for a client
    /// the TLS layer authenticated). Call it once TLS is up and before the
    /// client restarts the stream: after [`direct_tls`](Self::direct_tls),
    /// or after [`tls_established`](Self::tls_established). A host that
    /// never calls it gets EXTERNAL offered on every TLS stream.
    pub fn client_certificate(&mut self, verified: bool) {
        self.client_certificate = Some(verified);
    }

    /// The client's full JID, once ready.
    pub fn jid(&self) -> Option<&FullJid> {
        match &self.phase {
            Phase::Ready { jid } => Some(jid),
            _ => None,
        }
    }

    /// Whether the stream is encrypted (STARTTLS done, or direct TLS).
    pub fn is_encrypted(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether the session is ready.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready { .. })
    }

    /// Whether the stream is closed.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    // ------------------------------------------------------------------
    // Inputs

    /// Bytes from the client ([`Framing::Tcp`](crate::Framing::Tcp); a
    /// WebSocket server refuses them with [`UsageError::MessagesExpected`]).
    pub fn feed(&mut self, now: Instant, data: &[u8]) -> Result<(), UsageError> {
        self.input(now, data, false)
    }

    /// One whole WebSocket message from the client
    /// ([`Framing::WebSocket`](crate::Framing::WebSocket)): exactly one
    /// complete element, else the stream fails with `not-well-formed`
    /// ([`ReadError::Message`]). Messages
    /// fed while a request is with the host are held, boundaries
    /// included. Over TCP it is [`feed`](Self::feed): bytes are bytes.
    pub fn feed_message(&mut self, now: Instant, message: &[u8]) -> Result<(), UsageError> {
        self.input(now, message, true)
    }

    /// One element already read by a BOSH machine (within its limits):
    /// checked against the phase like a message's, then handled as one,
    /// without being written and read again. While a request is with the
    /// host it is written back and held as a message would be. Not for
    /// `stream:error` (the BOSH adapter feeds that as a message).
    pub(crate) fn feed_element(&mut self, now: Instant, el: Element) -> Result<(), UsageError> {
        self.feed_parsed(now, Parsed::Element(el))
    }

    /// BOSH: the client's stream header, as the adapter built it from a
    /// session creation or restart, read as an `<open/>` message would be
    /// (without writing and parsing one).
    pub(crate) fn feed_header(
        &mut self,
        now: Instant,
        header: StreamHeader,
    ) -> Result<(), UsageError> {
        self.feed_parsed(now, Parsed::Header(header))
    }

    fn feed_parsed(&mut self, now: Instant, parsed: Parsed) -> Result<(), UsageError> {
        if self.core.is_closed() {
            return Err(UsageError::Closed);
        }
        if self.waiting() || !self.held.is_empty() || self.core.framing() == crate::Framing::Tcp {
            // Behind what is held, in order (or over TCP): as the message.
            let mut bytes = Vec::new();
            let written = match &parsed {
                Parsed::Header(h) => self.core.writer.write_header(&mut bytes, h),
                Parsed::Element(el) => self.core.writer.write_element(&mut bytes, el),
            };
            written.map_err(UsageError::Write)?;
            return self.input(now, &bytes, true);
        }
        if matches!(self.phase, Phase::AwaitTls) {
            return Err(UsageError::AwaitingTls);
        }
        self.core.tick(now);
        self.last_recv = now;
        self.last_input = self.last_input.max(now);
        let ev = match parsed {
            Parsed::Header(h) => StreamEvent::Header(self.core.message_header(h)),
            Parsed::Element(el) => {
                if let Err(r) = self.expect().check(el.name(), &el.ns()) {
                    self.fail_with(r.condition, r.reason);
                    return Ok(());
                }
                StreamEvent::Element(el)
            }
        };
        self.on_stream_event(now, ev);
        self.core.after_read();
        Ok(())
    }

    /// BOSH: the first stream header this server wrote (its `id` is the
    /// session's `authid`), once.
    pub(crate) fn take_first_header(&mut self) -> Option<StreamHeader> {
        self.core.take_first_header()
    }

    fn input(&mut self, now: Instant, data: &[u8], message: bool) -> Result<(), UsageError> {
        if self.core.is_closed() {
            return Err(UsageError::Closed);
        }
        if matches!(self.phase, Phase::AwaitTls) {
            return Err(UsageError::AwaitingTls);
        }
        self.core.input(data.len(), message)?;
        self.core.tick(now);
        self.last_input = self.last_input.max(now);
        if !data.is_empty() {
            self.last_recv = now;
        }
        if self.waiting() {
            self.hold_bytes(data);
            return Ok(());
        }
        self.process(now, data);
        self.core.track_element(now);
        Ok(())
    }

    /// When a ready session that hears nothing is disconnected.
    fn idle_deadline(&self) -> Option<Instant> {
        match (&self.phase, self.config.idle_timeout) {
            (Phase::Ready { .. }, Some(d)) if self.core.life == Life::Open => {
                Some(deadline(self.last_recv, d))
            }
            _ => None,
        }
    }

    /// The clock reached a deadline from [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.tick(now);
        self.last_input = self.last_input.max(now);
        if let Some(d) = self.core.close_deadline {
            if now >= d {
                // Our close was not answered: the session ended anyway.
                self.sm_end(true);
                self.core.finish(ServerEvent::Closed);
                return;
            }
        }
        self.sm_timeout(now);
        if self
            .core
            .element_deadline(self.config.element_timeout)
            .is_some_and(|d| now >= d)
        {
            return self.fail(ServerError::Timeout(Deadline::Element));
        }
        if self.idle_deadline().is_some_and(|d| now >= d) {
            return self.fail(ServerError::Timeout(Deadline::Idle));
        }
        for (deadline, which) in [
            (self.auth_deadline, Deadline::Authentication),
            (self.negotiation_deadline, Deadline::Negotiation),
        ] {
            if deadline.is_some_and(|d| now >= d) {
                return self.fail(ServerError::Timeout(which));
            }
        }
    }

    /// TLS is up (after [`ServerEvent::StartTls`]); the client restarts
    /// the stream next.
    pub fn tls_established(&mut self, _now: Instant, info: TlsInfo) -> Result<(), UsageError> {
        if !matches!(self.phase, Phase::AwaitTls) {
            return Err(UsageError::NotAwaitingTls);
        }
        self.tls = Some(info);
        self.core.awaiting_tls = false;
        self.core.reader.reset();
        self.header_sent = false;
        self.phase = Phase::AwaitHeader;
        Ok(())
    }

    /// The host's answer to the pending request, whatever its kind: an
    /// answer of another kind than the request takes (see
    /// [`pending_request`](Self::pending_request)) is refused with
    /// [`UsageError::WrongAnswer`] and changes nothing, the request still
    /// pending. [`answer_credentials`](Self::answer_credentials),
    /// [`answer_bind`](Self::answer_bind),
    /// [`answer_resume`](Self::answer_resume),
    /// [`answer_fast_token`](Self::answer_fast_token),
    /// [`answer_register`](Self::answer_register) and
    /// [`answer_legacy_auth`](Self::answer_legacy_auth) are the same for
    /// one kind each.
    pub fn answer(
        &mut self,
        now: Instant,
        answer: impl Into<ServerAnswer>,
    ) -> Result<(), UsageError> {
        match answer.into() {
            ServerAnswer::Credentials(a) => self.answer_credentials(now, a),
            ServerAnswer::Bind(a) => self.answer_bind(now, a),
            ServerAnswer::Resume(a) => self.answer_resume(now, a),
            ServerAnswer::FastToken(a) => self.answer_fast_token(now, a),
            #[cfg(feature = "legacy")]
            ServerAnswer::Register(a) => self.answer_register(now, a),
            #[cfg(feature = "legacy")]
            ServerAnswer::LegacyAuth(a) => self.answer_legacy_auth(now, a),
        }
    }

    /// The kind of answer the pending request takes; `None` when no
    /// request is pending.
    pub fn pending_request(&self) -> Option<AnswerKind> {
        match &self.phase {
            Phase::Sasl { waiting, .. } => *waiting,
            Phase::BindPending { .. } => Some(AnswerKind::Bind),
            Phase::ResumePending { .. } => Some(AnswerKind::Resume),
            Phase::FastTokenPending { .. } => Some(AnswerKind::IssueFastToken),
            #[cfg(feature = "legacy")]
            Phase::Host { pending, .. } => Some(pending.answer_kind()),
            _ => None,
        }
    }

    /// Refuses an answer of kind `given` unless the stream is open and a
    /// request that takes it is pending.
    fn check_answer(&self, given: AnswerKind) -> Result<(), UsageError> {
        if self.core.life != Life::Open {
            return Err(UsageError::Closed);
        }
        match self.pending_request() {
            None => Err(UsageError::NoPendingRequest),
            Some(expected) if expected != given => Err(UsageError::WrongAnswer { expected, given }),
            Some(_) => Ok(()),
        }
    }

    /// The host's answer to [`ServerEvent::Credentials`]: of the kind the
    /// request takes ([`CredentialRequest::expected_answer`]), or
    /// [`UsageError::WrongAnswer`].
    pub fn answer_credentials(
        &mut self,
        now: Instant,
        answer: CredentialAnswer,
    ) -> Result<(), UsageError> {
        self.check_answer(answer.kind())?;
        let Phase::Sasl {
            mech,
            name,
            waiting,
            ..
        } = &mut self.phase
        else {
            return Err(UsageError::NoPendingRequest);
        };
        *waiting = None;
        let step = mech.answer(answer);
        let name = name.clone();
        self.on_step(now, name, step);
        self.resume(now);
        Ok(())
    }

    /// The host's answer to [`ServerEvent::Bind`]. An answer that cannot
    /// be sent to the client (a resource with characters XML cannot
    /// carry) is refused with [`UsageError::Write`], and an answer while
    /// another request is pending with [`UsageError::WrongAnswer`]; the
    /// request stays pending.
    pub fn answer_bind(&mut self, now: Instant, answer: BindAnswer) -> Result<(), UsageError> {
        self.check_answer(AnswerKind::Bind)?;
        let (Phase::BindPending { via }, Some(account)) = (&self.phase, &self.account) else {
            return Err(UsageError::NoPendingRequest);
        };
        let account = account.clone();
        let id = match via {
            BindVia::Iq(id) => id.clone(),
            BindVia::Sasl2(_) => {
                let Phase::BindPending {
                    via: BindVia::Sasl2(login),
                } = std::mem::replace(&mut self.phase, Phase::AwaitBind)
                else {
                    unreachable!("matched above")
                };
                let bound = match answer {
                    BindAnswer::Accept(r) => Ok(self.bound_jid(&account, r)),
                    BindAnswer::Refuse(refusal) => Err(StanzaError {
                        error_type: refusal.error_type().into(),
                        condition: refusal.condition().into(),
                        text: None,
                    }),
                };
                match bound {
                    Ok(Ok(jid)) => self.sasl2_bound(now, login, Ok(jid)),
                    Ok(Err(e)) => self.fail(ServerError::Internal(InternalError::jid(e))),
                    Err(e) => self.sasl2_bound(now, login, Err(e)),
                }
                self.resume(now);
                return Ok(());
            }
        };
        // The answer goes to the client as the host gave it: one that
        // cannot be written (a resource with control characters) is
        // refused, the request
        // still pending, rather than acted on with nothing sent.
        match answer {
            BindAnswer::Accept(resource) => {
                let jid = match self.bound_jid(&account, resource) {
                    Ok(jid) => jid,
                    Err(e) => {
                        self.fail(ServerError::Internal(InternalError::jid(e)));
                        return Ok(());
                    }
                };
                self.core
                    .write(&bind::result(&id, jid.as_str()))
                    .map_err(UsageError::Write)?;
                self.ready(jid);
            }
            BindAnswer::Refuse(refusal) => {
                let err = StanzaError {
                    error_type: refusal.error_type().into(),
                    condition: refusal.condition().into(),
                    text: None,
                };
                self.core
                    .write(&err.to_iq(&id))
                    .map_err(UsageError::Write)?;
                self.phase = Phase::AwaitBind;
            }
        }
        self.resume(now);
        Ok(())
    }

    /// The full JID of `account` with `resource`, or one the server
    /// generates.
    fn bound_jid(
        &mut self,
        account: &BareJid,
        resource: Option<ResourcePart>,
    ) -> Result<FullJid, jid::Error> {
        match resource {
            Some(r) => Ok(account.with_resource(&r)),
            None => {
                let token = printable_token(self.rng.as_mut(), 12).replace(['+', '/'], "x");
                account.with_resource_str(&token)
            }
        }
    }

    /// Bound: the session is ready.
    fn ready(&mut self, jid: FullJid) {
        self.negotiation_deadline = None;
        self.core
            .push_event(ServerEvent::Ready { jid: jid.clone() });
        self.core.become_lean(self.config.buffers);
        self.phase = Phase::Ready { jid };
    }

    /// Sends a stanza to the client. Only once ready. With stream
    /// management on, its bytes are kept until the client acknowledges
    /// it ([`ServerEvent::Acked`]), and it is refused with
    /// [`UsageError::UnackedQueueFull`] when the queue is at its bound.
    pub fn send(&mut self, stanza: &Element) -> Result<(), UsageError> {
        if self.core.life != Life::Open {
            return Err(UsageError::Closed);
        }
        if !matches!(self.phase, Phase::Ready { .. }) {
            return Err(UsageError::NotReady);
        }
        self.core.send_stanza(
            self.sm.as_mut(),
            self.config.stream_management.as_ref(),
            stanza,
            self.last_input,
        )
    }

    /// Closes the stream (`</stream:stream>`, then waits for the client's
    /// at most the configured grace).
    pub fn close(&mut self, now: Instant) {
        self.auth_deadline = None;
        self.negotiation_deadline = None;
        if self.core.life == Life::Open {
            self.ensure_header();
            if self.is_ready() {
                self.sm_closing();
            }
        }
        self.core
            .start_close(now, self.config.close_grace, ServerEvent::Closed);
    }

    /// Sends the client to another endpoint, RFC 7395 section 3.6.1's way:
    /// `<close see-other-uri='uri'/>` (over BOSH, the session's terminate
    /// with `condition='see-other-uri'` and the URI), then waits for the
    /// client's close at most the configured grace, as
    /// [`close`](Self::close) does. Over [`Framing::Tcp`] that redirect
    /// does not exist: [`UsageError::RedirectNeedsWebFraming`] (send the
    /// `see-other-host` stream error with
    /// [`close_with_error`](Self::close_with_error)); a `uri` XML cannot
    /// carry is [`UsageError::Write`]. Either way nothing was sent.
    /// Nothing happens on a stream already closing.
    ///
    /// [`Framing::Tcp`]: crate::Framing::Tcp
    pub fn redirect(&mut self, now: Instant, uri: &str) -> Result<(), UsageError> {
        if self.core.framing() == crate::Framing::Tcp {
            return Err(UsageError::RedirectNeedsWebFraming);
        }
        self.core
            .writer
            .write_close_see_other_uri(&mut Vec::new(), uri)
            .map_err(UsageError::Write)?;
        self.auth_deadline = None;
        self.negotiation_deadline = None;
        if self.core.life == Life::Open {
            self.ensure_header();
        }
        self.core
            .start_close_see_other_uri(now, self.config.close_grace, uri)
            .map_err(UsageError::Write)
    }

    /// Ends the stream with a stream error of the host's choosing
    /// (`system-shutdown`, `conflict` when another session replaces this
    /// one, `see-other-host`...). One that cannot be written (a text, an
    /// application element or a `see-other-host` address with a character
    /// XML cannot carry) is refused with [`UsageError::Write`], and the
    /// stream goes on untouched. Nothing happens on a closed stream.
    pub fn close_with_error(&mut self, error: StreamError) -> Result<(), UsageError> {
        self.core
            .writer
            .write_stream_error(&mut Vec::new(), &error)
            .map_err(UsageError::Write)?;
        self.end_with(error);
        Ok(())
    }

    /// Ends the stream with `error`, which can be written.
    fn end_with(&mut self, error: StreamError) {
        self.auth_deadline = None;
        self.negotiation_deadline = None;
        if self.core.life == Life::Open {
            self.ensure_header();
        }
        // The host ended it: a resumable session is handed over
        // (`Detached`), else its unacknowledged stanzas (`Undelivered`).
        if !self.core.is_closed() {
            self.sm_end(false);
        }
        self.core.fail(
            ServerError::ClosedByHost(error.clone()),
            Some(error),
            ServerEvent::Error,
            ServerEvent::Closed,
        );
    }

    // ------------------------------------------------------------------
    // Outputs

    /// Appends the bytes to send to `buf`; returns how many.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        self.core.poll_transmit(buf)
    }

    /// The next WebSocket message to send: one element (`<open/>`,
    /// `<stream:features/>`, a stanza, `<close/>`...), until `None`. Over
    /// TCP, every byte queued at once (as
    /// [`poll_transmit`](Self::poll_transmit)).
    pub fn poll_message(&mut self) -> Option<Vec<u8>> {
        self.core.poll_message()
    }

    /// Bytes queued for the client that
    /// [`poll_transmit`](Self::poll_transmit) has not taken yet.
    pub fn queued_output(&self) -> usize {
        self.core.queued()
    }

    /// Whether the queued output is above
    /// [`ServerSettings::output_high_water`](crate::server::ServerSettings::output_high_water): a host whose writes lag stops
    /// reading from the client (whose requests make the output) until it
    /// has written the queue.
    pub fn output_congested(&self) -> bool {
        self.core.queued() > self.config.output_high_water
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.core.poll_event()
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.core.close_deadline,
            self.auth_deadline,
            self.negotiation_deadline,
            self.core.element_deadline(self.config.element_timeout),
            self.idle_deadline(),
            self.sm_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Server {
    fn waiting(&self) -> bool {
        match self.phase {
            Phase::Sasl { waiting, .. } => waiting.is_some(),
            Phase::BindPending { .. }
            | Phase::ResumePending { .. }
            | Phase::FastTokenPending { .. } => true,
            #[cfg(feature = "legacy")]
            Phase::Host { .. } => true,
            _ => false,
        }
    }

    fn stage(&self) -> Stage {
        if self.identity.is_some() {
            Stage::Authenticated
        } else if self.tls.is_some() {
            Stage::Encrypted
        } else {
            Stage::Plain
        }
    }

    fn fail(&mut self, err: ServerError) {
        // Whatever ends the stream (a stream error, or only our close
        // when the client closed first) goes inside our header: a
        // WebSocket client's `<close/>` before its `<open/>` is answered
        // `<open/>` then `<close/>`, as the framing wants.
        if self.core.life == Life::Open && !self.core.awaiting_tls {
            self.ensure_header();
        }
        self.auth_deadline = None;
        self.negotiation_deadline = None;
        self.held.clear();
        let error = err.stream_error();
        self.sm_end(false);
        self.core
            .fail(err, error, ServerEvent::Error, ServerEvent::Closed);
    }

    fn fail_with(&mut self, condition: StreamErrorCondition, reason: &'static str) {
        self.fail(ServerError::PeerMisbehaved(Misbehavior::protocol(
            condition, reason,
        )));
    }

    /// Keeps bytes that arrive while a request is with the host (in the
    /// same read as the request or later), within
    /// [`ServerConfig::max_held_bytes`].
    fn hold_bytes(&mut self, data: &[u8]) {
        if self.held.len() + data.len() > self.config.max_held_bytes {
            self.fail_with(
                StreamErrorCondition::PolicyViolation,
                "too much data while a request is pending",
            );
        } else {
            self.held.extend_from_slice(data);
        }
    }

    /// Reads the held bytes once no request is pending.
    fn resume(&mut self, now: Instant) {
        if !self.waiting() && !self.held.is_empty() && !self.core.is_closed() {
            let held = std::mem::take(&mut self.held);
            self.process(now, &held);
            self.core.track_element(now);
        }
    }

    /// What the phase admits at the next top-level start tag.
    fn expect(&self) -> Expect {
        if self.core.life != Life::Open {
            return Expect::Any;
        }
        match self.phase {
            Phase::Negotiating => Expect::PreAuth,
            Phase::Sasl { sasl2: None, .. } => Expect::Sasl,
            Phase::Sasl { sasl2: Some(_), .. } | Phase::Sasl2Task { .. } => Expect::Sasl2,
            Phase::AwaitBind => Expect::Iq { unauthorized: true },
            Phase::Ready { .. } => Expect::Stanzas,
            Phase::AwaitHeader
            | Phase::AwaitTls
            | Phase::BindPending { .. }
            | Phase::ResumePending { .. }
            | Phase::FastTokenPending { .. } => Expect::Any,
            #[cfg(feature = "legacy")]
            Phase::Host { .. } => Expect::Any,
        }
    }

    fn process(&mut self, now: Instant, data: &[u8]) {
        let mut rest = data;
        loop {
            let expect = self.expect();
            match self.core.read(&mut rest, expect) {
                Ok(Some(ev)) => {
                    self.on_stream_event(now, ev);
                    if self.core.is_closed() {
                        return;
                    }
                    if matches!(self.phase, Phase::AwaitTls) {
                        self.core.push_event(ServerEvent::StartTls {
                            pending: rest.to_vec(),
                        });
                        return;
                    }
                    if self.waiting() {
                        // The rest of this read waits for the answer,
                        // within the same limit as later reads.
                        return self.hold_bytes(rest);
                    }
                }
                Ok(None) => return self.core.after_read(),
                Err(ReadError::Refused(r)) => return self.fail_with(r.condition, r.reason),
                Err(e) => return self.fail(ServerError::PeerMisbehaved(Misbehavior::Read(e))),
            }
        }
    }

    fn on_stream_event(&mut self, now: Instant, ev: StreamEvent) {
        match ev {
            StreamEvent::Header(h) => self.on_header(h),
            StreamEvent::Element(el) => self.on_element(now, el),
            StreamEvent::StreamError(e) => self.fail(ServerError::PeerStreamError(e)),
            StreamEvent::Closed => {
                if self.core.life == Life::Closing || self.is_ready() {
                    // A close ends the stream management session too.
                    if self.core.life == Life::Open && self.is_ready() {
                        self.sm_closing();
                    }
                    self.sm_end(true);
                    self.core.peer_closed(ServerEvent::Closed);
                } else {
                    self.fail(ServerError::ClosedByPeer);
                }
            }
        }
    }

    /// RFC 6120 4.9.1.1: whatever we send to end a stream goes inside a
    /// stream, ours, even before the client's header (or after a restart,
    /// before its new one).
    fn ensure_header(&mut self) {
        if !self.header_sent {
            let header = self.reply_header(None, None, true);
            self.header_sent = true;
            let written = self.core.write_header(&header);
            self.written(written);
        }
    }

    /// Our header: `from` the domain asked for when served, else our
    /// first; a fresh stream id.
    fn reply_header(&mut self, to: Option<&str>, client: Option<String>, v1: bool) -> StreamHeader {
        let id = printable_token(self.rng.as_mut(), 16).replace(['+', '/'], "x");
        #[cfg(feature = "legacy")]
        {
            self.stream_id = id.clone();
        }
        let from = to
            .and_then(|d| self.config.served(d))
            .or_else(|| self.config.domains().first().map(|d| &**d))
            .map(|d| d.to_string());
        StreamHeader {
            from,
            to: client,
            id: Some(id),
            version: v1.then(|| "1.0".into()),
            lang: self.config.lang.clone(),
            ..StreamHeader::default()
        }
    }

    fn on_header(&mut self, h: StreamHeader) {
        if !matches!(self.phase, Phase::AwaitHeader) {
            return self.fail_with(StreamErrorCondition::BadFormat, "a second stream header");
        }
        let domain = h.to.clone().unwrap_or_default();
        let known = self.config.served(&domain).map(DomainPart::from);
        // Answer with a header first, so that a stream error has a stream
        // to go into (RFC 6120 4.9.1.1). A pre-1.0 client (seed 001) gets
        // a pre-1.0 answer.
        let reply = self.reply_header(Some(&domain), h.from.clone(), !h.is_pre_1_0());
        self.header_sent = true;
        let written = self.core.write_header(&reply);
        self.written(written);
        if self.core.is_closed() {
            return;
        }
        if h.content_ns.as_deref() != Some(ns::JABBER_CLIENT) {
            return self.fail_with(
                StreamErrorCondition::InvalidNamespace,
                "the content namespace is not jabber:client",
            );
        }
        let Some(domain) = known.filter(|k| self.domain.as_ref().is_none_or(|d| d == k)) else {
            return self.fail_with(
                StreamErrorCondition::HostUnknown,
                "not a domain served here",
            );
        };
        self.domain = Some(domain);
        if h.is_pre_1_0() {
            // Jabber 1.4 (seed 001): no features; registration and
            // iq:auth only, when enabled (and built: the `legacy` feature).
            #[cfg(feature = "legacy")]
            let admitted = self.config.legacy_auth.is_some() && self.identity.is_none();
            #[cfg(not(feature = "legacy"))]
            let admitted = false;
            if !admitted {
                return self.fail_with(
                    StreamErrorCondition::UnsupportedVersion,
                    "pre-1.0 streams need legacy authentication, which is off",
                );
            }
            self.phase = Phase::Negotiating;
            return;
        }
        self.send_features();
    }

    fn send_features(&mut self) {
        let mut f = StreamFeatures::default();
        match self.stage() {
            Stage::Plain => {
                // Never over WebSocket: its TLS is the host's (`wss`).
                let required = match self.config.tls {
                    _ if self.core.framing() != crate::Framing::Tcp => None,
                    ServerTls::StartTlsRequired => Some(true),
                    ServerTls::StartTlsOptional => Some(false),
                    _ => None,
                };
                f.starttls = required;
                if required != Some(true) {
                    self.offer = mechanism::offer(&self.config, None, self.client_certificate);
                    f.mechanisms = Some(self.offer.mechanisms.clone());
                    f.sasl2 = self.sasl2_feature();
                    #[cfg(feature = "legacy")]
                    self.offer_legacy(&mut f);
                }
                self.phase = Phase::Negotiating;
            }
            Stage::Encrypted => {
                self.offer =
                    mechanism::offer(&self.config, self.tls.as_ref(), self.client_certificate);
                f.mechanisms =
                    (!self.offer.mechanisms.is_empty()).then(|| self.offer.mechanisms.clone());
                f.channel_binding_types = self.offer.channel_binding_types.clone();
                f.sasl2 = self.sasl2_feature();
                #[cfg(feature = "legacy")]
                self.offer_legacy(&mut f);
                self.phase = Phase::Negotiating;
            }
            Stage::Authenticated => {
                f = self.post_auth_features(false);
                self.phase = Phase::AwaitBind;
            }
        }
        // Every connection of a configuration offers the same few sets:
        // each is built and serialised once.
        let core = &self.core;
        let bytes = self
            .config
            .feature_cache()
            .get_or_write(&core.writer, &f, || core.serialize(&f.to_element()));
        match bytes {
            Ok(bytes) => self.core.write_serialized(&bytes),
            Err(e) => self.written(Err(e)),
        }
    }

    /// Writes an element built by the machine from the client's input and
    /// the configuration.
    fn write(&mut self, el: &Element) {
        let written = self.core.write(el);
        self.written(written);
    }

    /// Fails the stream when something built from the configuration could
    /// not be written (`new` checked it all, so this does not happen).
    fn written(&mut self, written: Result<(), crate::xml::WriteError>) {
        if let Err(e) = written {
            self.fail(ServerError::Internal(InternalError::write(e)));
        }
    }

    fn on_element(&mut self, now: Instant, el: Element) {
        if self.core.life == Life::Closing {
            if let Some(Ok(crate::steps::sm::SmElement::Ack { h })) =
                crate::steps::sm::SmElement::parse(&el)
            {
                // The client's last acknowledgement, as it closes.
                self.sm_ack(h);
            }
            return;
        }
        // Name and namespace against the phase first; content after.
        let phase = std::mem::replace(&mut self.phase, Phase::AwaitHeader);
        match phase {
            Phase::Negotiating => {
                self.phase = Phase::Negotiating;
                if let Some(t) = TlsElement::parse(&el) {
                    return self.on_starttls(t);
                }
                #[cfg(feature = "legacy")]
                if self.on_legacy_preauth(&el) {
                    return;
                }
                if el.has_ns(ns::SASL2) {
                    return match crate::steps::sasl2::Sasl2Element::parse(&el) {
                        Some(Ok(crate::steps::sasl2::Sasl2Element::Authenticate(a))) => {
                            self.on_authenticate(now, a)
                        }
                        Some(Ok(crate::steps::sasl2::Sasl2Element::Abort(_))) => {
                            self.sasl2_exchange = true;
                            self.sasl_failure(SaslError::new(SaslCondition::Aborted, "aborted"))
                        }
                        Some(Err(e)) if self.config.sasl2.is_some() => {
                            self.sasl2_exchange = true;
                            self.sasl_failure(e)
                        }
                        _ => self.fail_with(
                            StreamErrorCondition::UnsupportedStanzaType,
                            "a SASL2 element out of an exchange",
                        ),
                    };
                }
                match SaslElement::parse(&el) {
                    Some(Ok(SaslElement::Auth {
                        mechanism,
                        initial_response,
                    })) => self.on_auth(now, mechanism, initial_response, None),
                    Some(Ok(SaslElement::Abort)) => {
                        self.sasl2_exchange = false;
                        self.sasl_failure(SaslError::new(SaslCondition::Aborted, "aborted"))
                    }
                    Some(Err(e)) => {
                        self.sasl2_exchange = false;
                        self.sasl_failure(e)
                    }
                    Some(Ok(_)) => self.fail_with(
                        StreamErrorCondition::UnsupportedStanzaType,
                        "a SASL element out of an exchange",
                    ),
                    None if is_stanza(&el) => self.fail_with(
                        StreamErrorCondition::NotAuthorized,
                        "a stanza before authentication",
                    ),
                    None => {
                        self.fail_with(StreamErrorCondition::UnsupportedStanzaType, EXPECTED_CLIENT)
                    }
                }
            }
            Phase::Sasl {
                mut mech,
                name,
                waiting,
                sasl2,
            } => {
                // A response for the mechanism, or why there is none.
                let response: Option<Result<Vec<u8>, SaslError>> = match &sasl2 {
                    Some(_) => Self::sasl2_response(&el).map(|r| r.map(|p| p.to_vec())),
                    None => match SaslElement::parse(&el) {
                        Some(Ok(SaslElement::Response(data))) => Some(Ok(data.to_vec())),
                        Some(Ok(SaslElement::Abort)) => {
                            Some(Err(SaslError::new(SaslCondition::Aborted, "aborted")))
                        }
                        Some(Err(e)) => Some(Err(e)),
                        _ => None,
                    },
                };
                let step = match &response {
                    Some(Ok(data)) => Some(mech.respond(data)),
                    _ => None,
                };
                self.phase = Phase::Sasl {
                    mech,
                    name: name.clone(),
                    waiting,
                    sasl2,
                };
                match (step, response) {
                    (Some(step), _) => self.on_step(now, name, step),
                    (None, Some(Err(e))) => self.sasl_failure(e),
                    (None, _) => self.fail_with(
                        StreamErrorCondition::UnsupportedStanzaType,
                        "expected <response/> or <abort/>",
                    ),
                }
            }
            Phase::Sasl2Task { login, step } => self.on_sasl2_task(now, login, step, &el),
            Phase::AwaitBind => {
                self.phase = Phase::AwaitBind;
                if el.has_ns(ns::SM) {
                    return self.on_sm_before_bind(&el);
                }
                if let Some((id, requested)) = bind::parse_request(&el) {
                    let resource = match requested.as_deref().map(ResourcePart::new).transpose() {
                        Ok(r) => r.map(std::borrow::Cow::into_owned),
                        Err(_) => {
                            // RFC 6120 7.7.2.1: not a valid resource.
                            let err = StanzaError {
                                error_type: "modify".into(),
                                condition: "bad-request".into(),
                                text: None,
                            };
                            return self.write(&err.to_iq(&id));
                        }
                    };
                    let Some(jid) = self.account.clone() else {
                        return self
                            .fail_with(StreamErrorCondition::NotAuthorized, EXPECTED_CLIENT);
                    };
                    self.core.push_event(ServerEvent::Bind { jid, resource });
                    self.phase = Phase::BindPending {
                        via: BindVia::Iq(id),
                    };
                } else if is_stanza(&el) {
                    self.fail_with(
                        StreamErrorCondition::NotAuthorized,
                        "a stanza before binding",
                    );
                } else {
                    self.fail_with(StreamErrorCondition::UnsupportedStanzaType, EXPECTED_CLIENT);
                }
            }
            Phase::Ready { jid } => {
                self.phase = Phase::Ready { jid: jid.clone() };
                if el.has_ns(ns::SM) {
                    return self.on_sm_in_session(&el);
                }
                if is_stanza(&el) {
                    self.sm_inbound();
                }
                if let Some(id) = session::parse_request(&el) {
                    // RFC 3921 session: nothing to do but say yes.
                    return self.write(&session::result(id));
                }
                #[cfg(feature = "legacy")]
                if self.on_register_in_session(&el, &jid) {
                    return;
                }
                if !is_stanza(&el) {
                    return self
                        .fail_with(StreamErrorCondition::UnsupportedStanzaType, EXPECTED_CLIENT);
                }
                self.on_stanza(el, &jid);
            }
            other => {
                self.phase = other;
                self.fail_with(StreamErrorCondition::UnsupportedStanzaType, EXPECTED_CLIENT);
            }
        }
    }

    fn on_starttls(&mut self, t: TlsElement) {
        // A pre-1.0 stream got no features, so no STARTTLS offer.
        let pre_1_0 = self.core.reader.header_is_pre_1_0().unwrap_or(true);
        let offered = matches!(
            self.config.tls,
            ServerTls::StartTlsRequired | ServerTls::StartTlsOptional
        ) && self.tls.is_none()
            && !pre_1_0
            && self.core.framing() == crate::Framing::Tcp;
        if t == TlsElement::StartTls && offered {
            self.write(&proceed());
            self.phase = Phase::AwaitTls;
            self.core.awaiting_tls = true;
        } else {
            self.fail_with(
                StreamErrorCondition::UnsupportedStanzaType,
                "STARTTLS not offered",
            );
        }
    }

    /// `<auth/>`, or SASL2's `<authenticate/>` (`sasl2`): the mechanism
    /// starts.
    fn on_auth(
        &mut self,
        now: Instant,
        name: String,
        initial: Option<zeroize::Zeroizing<Vec<u8>>>,
        sasl2: Option<Box<sasl2::Sasl2Login>>,
    ) {
        self.sasl2_exchange = sasl2.is_some();
        if self.tls.is_none() && self.config.tls == ServerTls::StartTlsRequired {
            // As Prosody does: no authentication before TLS.
            return self.sasl_failure_of(
                Some(&name),
                SaslError::new(SaslCondition::EncryptionRequired, "TLS is required first"),
            );
        }
        let domain = self
            .domain
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_default();
        let fast = sasl2
            .as_ref()
            .and_then(|l| Some((l.fast.as_ref()?, l.fast_auth?, l)));
        let built = match fast {
            // A FAST token login (XEP-0484): its mechanism is in the
            // inline offer, not in the SASL one.
            Some((feature, fast, login)) => mechanism::fast_mechanism(
                &self.config,
                self.rng.as_mut(),
                &name,
                mechanism::FastLogin {
                    feature,
                    fast,
                    user_agent_id: login.user_agent.as_ref().map(|u| u.id.as_str()),
                },
                self.tls.as_ref(),
                &domain,
            ),
            None => mechanism::build(
                &self.config,
                self.rng.as_mut(),
                &name,
                &self.offer,
                self.tls.as_ref(),
                &domain,
            ),
        };
        match built {
            Ok(mut mech) => {
                let step = mech.start(initial.as_deref().map(Vec::as_slice));
                self.phase = Phase::Sasl {
                    mech,
                    name: name.clone(),
                    waiting: None,
                    sasl2,
                };
                self.on_step(now, name, step);
            }
            Err(e) => self.sasl_failure_of(Some(&name), e),
        }
    }

    fn on_step(&mut self, now: Instant, name: String, step: Result<ServerStep, SaslError>) {
        match step {
            Ok(ServerStep::Challenge(data)) if self.sasl2_exchange => {
                let data = crate::steps::sasl2::Payload(zeroize::Zeroizing::new(data));
                self.write_sasl2(crate::steps::sasl2::Sasl2Element::Challenge(data));
            }
            Ok(ServerStep::Challenge(data)) => {
                self.core.write_sasl(SaslPayload::Challenge(&data));
            }
            Ok(ServerStep::Request(mut req)) => {
                if req.prepare_username().is_err() {
                    return self.sasl_failure(SaslError::not_authorized(
                        "the user name is not a valid JID local part",
                    ));
                }
                if let Phase::Sasl { waiting, .. } = &mut self.phase {
                    *waiting = Some(req.expected_answer());
                }
                self.core.push_event(ServerEvent::Credentials(req));
            }
            Ok(ServerStep::Success {
                identity,
                additional_data,
            }) => {
                // The account is the user name under the stream's domain:
                // a name that is no JID local part does not log in.
                let Some(jid) = self.account_of(&identity.username) else {
                    return self.sasl_failure(SaslError::not_authorized(
                        "the user name is not a valid JID local part",
                    ));
                };
                self.account = Some(jid.clone());
                self.auth_deadline = None;
                self.identity = Some(identity.clone());
                let (security, login) = match &mut self.phase {
                    Phase::Sasl { mech, sasl2, .. } => (mech.security(), sasl2.take()),
                    _ => (ExchangeSecurity::default(), None),
                };
                self.core.push_event(ServerEvent::Authenticated {
                    identity,
                    jid,
                    mechanism: name,
                    security,
                });
                if let Some(mut login) = login {
                    // SASL2: no restart; a FAST token, tasks, resumption,
                    // binding next.
                    login.fast_used = security.fast_token;
                    return self.sasl2_authenticated(now, login, additional_data);
                }
                self.core
                    .write_sasl(SaslPayload::Success(additional_data.as_deref()));
                // Restart: the client's next header may already be in the
                // bytes that follow; a fresh parser reads exactly them.
                self.core.reader.reset();
                self.header_sent = false;
                self.phase = Phase::AwaitHeader;
            }
            Err(e) => self.sasl_failure(e),
        }
    }

    /// A failed SASL attempt: `<failure/>`, and the stream ends once the
    /// attempts are used up.
    fn sasl_failure(&mut self, e: SaslError) {
        self.sasl_failure_of(None, e)
    }

    fn sasl_failure_of(&mut self, named: Option<&str>, e: SaslError) {
        let mechanism = match &self.phase {
            Phase::Sasl { name, .. } => Some(name.clone()),
            _ => named.map(str::to_owned),
        };
        self.core.push_event(ServerEvent::AuthenticationFailed {
            mechanism,
            condition: e.condition,
        });
        if self.sasl2_exchange {
            self.write_sasl2_failure(e.condition);
        } else {
            self.core
                .write_sasl(SaslPayload::Failure(Some(e.condition)));
        }
        self.phase = Phase::Negotiating;
        // An <abort/> counts too: each one may have cost a credential
        // lookup.
        self.count_auth_failure();
    }

    /// One failed authentication attempt, whatever its kind: a SASL
    /// `<failure/>` (an `<abort/>` included) or a failed `jabber:iq:auth`
    /// (a 401 verdict, a refused method). They share one count: at
    /// [`ServerSettings::max_auth_failures`](crate::server::ServerSettings::max_auth_failures) the stream ends with
    /// `policy-violation`.
    fn count_auth_failure(&mut self) {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.config.max_auth_failures {
            self.fail(ServerError::Policy(PolicyError::TooManyAuthFailures {
                failures: self.failures,
            }));
        }
    }

    /// `username` as the local part of the stream's domain, prepared.
    fn account_of(&self, username: &str) -> Option<BareJid> {
        let domain = self.domain.as_ref()?;
        domain.with_node_str(username).ok()
    }

    fn on_stanza(&mut self, mut el: Element, jid: &FullJid) {
        // RFC 6120 8.1.2.1: the server stamps `from`; a client-supplied
        // one must be the full JID or its bare JID (once prepared).
        if let Some(from) = el.attr("from") {
            let ok = Jid::new(from).is_ok_and(|f| f == *jid || f == jid.to_bare());
            if !ok {
                return self.fail_with(
                    StreamErrorCondition::InvalidFrom,
                    "a `from` not of this session",
                );
            }
        }
        el.attrs_mut().insert(
            rxml::Namespace::NONE,
            crate::steps::name("from"),
            jid.to_string(),
        );
        self.core.push_event(ServerEvent::Stanza(el));
    }
}

fn is_stanza(el: &Element) -> bool {
    el.has_ns(ns::JABBER_CLIENT) && matches!(el.name(), "message" | "presence" | "iq")
}
