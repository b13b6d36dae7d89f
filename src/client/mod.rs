//! The initiating entity of RFC 6120: [`Client`], from the first byte to a
//! ready session and beyond.
//!
//! # Driving a client
//!
//! The client never does I/O. The host moves bytes and time:
//!
//! - Inputs: [`Client::feed`] (bytes from the server, decrypted when TLS is
//!   up), [`Client::handle_timeout`] (the clock reached
//!   [`Client::poll_timeout`]), and commands: [`Client::tls_established`],
//!   [`Client::send`], [`Client::close`].
//! - Outputs: [`Client::poll_transmit`] appends bytes to send (to be
//!   encrypted once TLS is up), [`Client::poll_event`] yields
//!   [`ClientEvent`]s, [`Client::poll_timeout`] names the next deadline.
//!
//! **Drain order**: after every input, call `poll_transmit` until it
//! returns 0 and write the bytes, then `poll_event` until `None` and act on
//! each event (on [`ClientEvent::StartTls`], start TLS with the bytes it
//! carries and call `tls_established`, which queues more bytes: drain
//! again), then read `poll_timeout` and wait for bytes or that instant.
//!
//! Errors are sticky: after a fatal error the client queues the right
//! `<stream:error/>` (when the server is at fault) and `</stream:stream>`,
//! reports [`ClientEvent::Error`] once followed by [`ClientEvent::Closed`],
//! and every later input returns the same error.
//!
//! Registration (XEP-0077), `jabber:iq:auth` (XEP-0078) and pre-1.0
//! servers need the `legacy` cargo feature (on by default). Without it,
//! their configuration fields, events and errors do not exist, a server's
//! `<register/>` and `<auth/>` features are ignored, and a pre-1.0 server
//! is refused with [`PolicyError::UnsupportedVersion`].
//!
//! # Stanzas and xmpp-parsers
//!
//! Stanzas are [`minidom::Element`]s, of the `minidom` that
//! [xmpp-parsers](https://docs.rs/xmpp-parsers) uses too: a received
//! [`ClientEvent::Stanza`] converts to its types, and theirs convert into
//! an element [`Client::send`] takes.
//!
//! ```
//! use xmpp_parsers::message::{Lang, Message, MessageType};
//! use xmpp_sansio::client::ClientEvent;
//!
//! # let el = "<message xmlns='jabber:client' from='romeo@example.net/orchard' \
//! #     to='juliet@example.com/balcony' type='chat'><body>Neither, fair saint.</body></message>";
//! # let event = ClientEvent::Stanza(el.parse().unwrap());
//! // An event from `client.poll_event()`:
//! if let ClientEvent::Stanza(el) = event {
//!     let msg = Message::try_from(el).expect("a message");
//!     assert_eq!(msg.type_, MessageType::Chat);
//!     assert_eq!(msg.bodies[&Lang::default()], "Neither, fair saint.");
//!     // The reply, built by xmpp-parsers, for `client.send(&reply)`:
//!     let reply: minidom::Element = Message::chat(msg.from)
//!         .with_body(Lang::default(), "Swear by thy gracious self.".into())
//!         .into();
//!     assert!(reply.is("message", "jabber:client"));
//! }
//! ```

mod config;
mod error;
#[cfg(feature = "legacy")]
mod legacy;
mod mechanism;
mod sasl2;
mod sm;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use jid::FullJid;

use minidom::Element;

pub use crate::error::{Deadline, InternalError, Misbehavior};
pub use crate::tls::TlsInfo;
pub use config::{ClientConfig, ClientSettings, Credentials, TlsMode};
pub use error::{ClientError, PeerRefusal, PolicyError};
#[cfg(feature = "legacy")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
pub use legacy::{LegacyAuthPolicy, Registration};
pub use mechanism::{
    fast_mechanism, BuildClientMechanism, ClientMechanismFactory, ClientMechanismInput,
    ClientMechanisms, FastMechanismError,
};

pub use crate::core::UsageError;
use crate::core::{deadline, Core, Life, Parsed};
use crate::features::{Stage, StreamFeatures};
use crate::gate::Expect;
use crate::ns;
use crate::random::RandomSource;
use crate::sasl::policy::SelectError;
use crate::sasl::scram::ServerOffer;
use crate::sasl::{ClientMechanism, ExchangeSecurity};
use crate::steps::sasl::{SaslElement, SaslPayload};
use crate::steps::starttls::{starttls, TlsElement};
use crate::steps::{bind, session, StanzaError};
use crate::stream_error::{StreamError, StreamErrorCondition};
use crate::xml::{ReadError, StreamEvent, StreamHeader};

/// Something the host must know or do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server said `<proceed/>`: start TLS now. `pending` holds the
    /// bytes already received after `<proceed/>`: they belong to TLS and
    /// were not parsed. Call [`Client::tls_established`] when done.
    StartTls {
        /// Received bytes that follow `<proceed/>`.
        pending: Vec<u8>,
    },
    /// SASL succeeded with this mechanism.
    Authenticated {
        /// The mechanism name (`jabber:iq:auth` for legacy
        /// authentication).
        mechanism: String,
        /// Channel binding and XEP-0474, as the mechanism saw them.
        security: ExchangeSecurity,
        /// Over SASL2 (XEP-0388): no stream restart follows.
        sasl2: bool,
    },
    /// The server issued a FAST token (XEP-0484) in a SASL2 `<success/>`:
    /// asked for on a password login, or a rotation on any login. The
    /// host stores it (it replaces the one held) and passes it to
    /// [`Client::use_fast_token`] on a later connection.
    FastToken(crate::fast::FastToken),
    /// The server refused the FAST token this login used
    /// ([`FastPolicy::after_failure`](crate::fast::FastPolicy::after_failure)
    /// says to forget it): the host deletes its copy.
    FastTokenDiscarded {
        /// The mechanism the token was bound to.
        mechanism: String,
    },
    /// Bind 2 bound the session with these features enabled inline
    /// (XEP-0386): those the host asked for in
    /// [`ClientSettings::carbons`](crate::client::ClientSettings::carbons)
    /// and [`ClientSettings::csi`](crate::client::ClientSettings::csi)
    /// that the server listed; what is missing here is not on (the host
    /// may enable it the usual way once ready). Only when the host asked
    /// for one; [`ClientEvent::Ready`] follows.
    Bind2Enabled(crate::steps::bind2::Bind2Features),
    /// A token login is about to send its replay counter
    /// ([`FastPolicy::send_count`](crate::fast::FastPolicy::send_count)):
    /// this is the token held with its [`count`](crate::fast::FastToken::count)
    /// raised to the one sent. The host stores it in place of its copy
    /// (a count sent twice is refused by a server that keeps counts).
    FastTokenCounted(crate::fast::FastToken),
    /// The login with the FAST token succeeded and asked the server to
    /// invalidate the token ([`Client::invalidate_fast_token`], a
    /// log-out): the client holds no token any more, and the host deletes
    /// its copy.
    FastTokenInvalidated {
        /// The mechanism the token was bound to.
        mechanism: String,
    },
    /// The session is ready: stanzas may flow.
    Ready {
        /// The full JID the server bound.
        jid: FullJid,
    },
    /// The server's registration form (after an enquiry).
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    RegistrationForm(crate::steps::register::RegisterForm),
    /// The in-band registration succeeded.
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    Registered,
    /// A stanza from the server.
    Stanza(Element),
    /// The server sent `see-other-host`: reconnect there. Only from a
    /// TLS-protected stream, unless
    /// [`ClientSettings::allow_redirect_without_tls`](crate::client::ClientSettings::allow_redirect_without_tls). RFC 6120 4.9.3.19:
    /// the original domain stays the reference identity, so the new
    /// host's certificate is checked against the JID's domain, not
    /// against `host`.
    Redirect {
        /// The host to connect to.
        host: String,
        /// The port, when given.
        port: Option<u16>,
        /// Whether the stream was protected by TLS when the redirect came
        /// (`false`: anyone on the path could have sent it).
        protected: bool,
    },
    /// The server closed a WebSocket stream with `<close
    /// see-other-uri='...'/>` (RFC 7395 section 3.6.1): reconnect there.
    /// Only from a TLS-protected stream, unless
    /// [`ClientSettings::allow_redirect_without_tls`](crate::client::ClientSettings::allow_redirect_without_tls); the close (or
    /// error, before ready) follows, as for any close by the server.
    SeeOtherUri {
        /// The WebSocket URI to connect to (`wss://...`).
        uri: String,
        /// Whether the stream was protected by TLS when the redirect came.
        protected: bool,
    },
    /// Stream management (XEP-0198) is on: the server answered
    /// `<enable/>` with `<enabled/>`. [`ClientEvent::Ready`] follows.
    StreamManagementEnabled {
        /// The resumption id: `Some` when the server granted resumption
        /// (then [`Client::sm_state`] gives the state to save).
        id: Option<String>,
        /// Where the server prefers the client to reconnect to resume;
        /// only from a TLS-protected stream, unless
        /// [`ClientSettings::allow_redirect_without_tls`](crate::client::ClientSettings::allow_redirect_without_tls).
        location: Option<String>,
        /// How long the server keeps the session for resumption, in
        /// seconds, when it says.
        max: Option<u32>,
    },
    /// The server refused to enable stream management (`<failed/>`): the
    /// session goes on without it. [`ClientEvent::Ready`] follows.
    StreamManagementFailed {
        /// The stanza error condition's name, when given.
        condition: Option<String>,
    },
    /// The server acknowledged these stanzas of the host's, oldest first
    /// (stream management), as they were sent
    /// ([`SentStanza::id`](crate::sm::SentStanza::id) names each).
    Acked(Vec<crate::sm::SentStanza>),
    /// These stanzas of the host's were never acknowledged and will not
    /// be sent again: handed back after a failed resumption, or when the
    /// session ended (a close, or a failure without resumption), oldest
    /// first. The host sends them again in a new session
    /// ([`SentStanza::to_element`](crate::sm::SentStanza::to_element)),
    /// or reports them.
    Undelivered(Vec<crate::sm::SentStanza>),
    /// The session of [`Client::resume_session`] was resumed: stanzas
    /// flow again (no [`ClientEvent::Ready`] comes), and the unacknowledged
    /// ones were sent again.
    Resumed {
        /// The session's full JID.
        jid: FullJid,
        /// How many of our stanzas the server had handled.
        h: u32,
    },
    /// The session of [`Client::resume_session`] could not be resumed
    /// (after [`ClientEvent::Acked`] and [`ClientEvent::Undelivered`] for
    /// its stanzas): a new session is bound, and
    /// [`ClientEvent::Ready`] follows.
    ResumeFailed {
        /// The stanza error condition's name (`item-not-found`...), when
        /// given; `None` also when the server offered no stream management.
        condition: Option<String>,
    },
    /// The stream failed; a [`ClientEvent::Closed`] follows.
    Error(ClientError),
    /// The stream is closed; nothing more will happen.
    Closed,
}

enum Phase {
    /// Waiting for the server's header.
    AwaitHeader,
    /// Waiting for `<stream:features/>`.
    AwaitFeatures,
    /// `<starttls/>` sent.
    StartTlsSent,
    /// `StartTls` emitted; waiting for `tls_established`.
    AwaitTls,
    /// SASL under way.
    Sasl(Box<dyn ClientMechanism>),
    /// SASL2 (XEP-0388) under way.
    Sasl2(Box<sasl2::Sasl2Exchange>),
    /// Bind request sent.
    Binding,
    /// Session request sent.
    Session { jid: FullJid },
    /// Stream management: `<enable/>` sent after binding.
    Enabling { jid: FullJid },
    /// Stream management: `<resume/>` sent instead of binding.
    Resuming,
    /// Ready.
    Ready { jid: FullJid },
    /// Registration or `jabber:iq:auth`: an IQ sent.
    #[cfg(feature = "legacy")]
    Legacy(legacy::Step),
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Self::AwaitHeader => "await-header",
            Self::AwaitFeatures => "await-features",
            Self::StartTlsSent => "starttls-sent",
            Self::AwaitTls => "await-tls",
            Self::Sasl(_) => "sasl",
            Self::Sasl2(_) => "sasl2",
            Self::Binding => "binding",
            Self::Session { .. } => "session",
            Self::Enabling { .. } => "sm-enabling",
            Self::Resuming => "sm-resuming",
            Self::Ready { .. } => "ready",
            #[cfg(feature = "legacy")]
            Self::Legacy(step) => step.name(),
        }
    }
}

const BIND_ID: &str = "bind_1";
const SESSION_ID: &str = "sess_1";

/// The client state machine. See the [module documentation](self) for the
/// drive loop.
pub struct Client {
    config: Arc<ClientConfig>,
    rng: Box<dyn RandomSource>,
    phase: Phase,
    core: Core<ClientEvent, ClientError>,
    tls: Option<TlsInfo>,
    authenticated: bool,
    negotiation_deadline: Option<Instant>,
    session_required: bool,
    /// (Boxed: kept only after a SCRAM login.)
    scram_keys: Option<Box<crate::sasl::scram::ScramClientKeys>>,
    #[cfg(feature = "legacy")]
    legacy: legacy::State,
    /// Stream management: the session (once `<enable/>` went out, or
    /// restored to resume).
    /// (Boxed: most sessions have none.)
    sm: Option<Box<crate::sm::Session>>,
    /// A restored session waits to be resumed.
    sm_resuming: bool,
    /// The server offered stream management after authentication.
    sm_offered: bool,
    /// The login used SASL2.
    sasl2_used: bool,
    /// The FAST token to log in with, and the host's clock then.
    fast_token: Option<Box<(crate::fast::FastToken, i64)>>,
    /// [`Client::invalidate_fast_token`]: the next token login asks for
    /// the token to be invalidated.
    fast_invalidate: bool,
    /// What SASL2's success bound or resumed, acted on once the features
    /// that follow it arrive.
    sasl2_after: Option<sasl2::AfterSasl2>,
    /// Resumed inline by SASL2: the features that follow the success may
    /// come after the first stanzas (Prosody's order); taken once, ready.
    sasl2_features_late: bool,
    /// The time of the last input (stanzas the host sends between inputs
    /// are stamped with it).
    last_input: Instant,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("phase", &self.phase.name())
            .field("tls", &self.tls.is_some())
            .field("authenticated", &self.authenticated)
            .field("error", &self.core.error)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client that opens its stream at once (the header is the first
    /// thing [`poll_transmit`](Self::poll_transmit) gives), with nonces
    /// from the operating system's random source.
    #[cfg(feature = "getrandom")]
    #[cfg_attr(docsrs, doc(cfg(feature = "getrandom")))]
    pub fn new(config: impl Into<Arc<ClientConfig>>, now: Instant) -> Self {
        Self::with_random(config, Box::new(crate::OsRandom), now)
    }

    /// A client that opens its stream at once, with nonces from `rng`
    /// (the host's own source; a deterministic one only in tests).
    pub fn with_random(
        config: impl Into<Arc<ClientConfig>>,
        rng: Box<dyn RandomSource>,
        now: Instant,
    ) -> Self {
        let config = config.into();
        let mut c = Client {
            core: Core::new(config.limits, ns::JABBER_CLIENT, config.framing, now),
            negotiation_deadline: Some(deadline(now, config.negotiation_timeout)),
            config,
            rng,
            phase: Phase::AwaitHeader,
            tls: None,
            authenticated: false,
            session_required: false,
            scram_keys: None,
            #[cfg(feature = "legacy")]
            legacy: legacy::State::default(),
            sm: None,
            sm_resuming: false,
            sm_offered: false,
            sasl2_used: false,
            fast_token: None,
            fast_invalidate: false,
            sasl2_after: None,
            sasl2_features_late: false,
            last_input: now,
        };
        c.open_stream();
        c
    }

    /// The connection's TLS, set up by the host before XMPP started
    /// ([`TlsMode::Direct`], XEP-0368): its version and channel-binding
    /// data, for the mechanisms. Call it right after the constructor.
    pub fn direct_tls(mut self, info: TlsInfo) -> Self {
        self.tls = Some(info);
        self
    }

    /// The framing the configuration names.
    pub(crate) fn framing(&self) -> crate::Framing {
        self.config.framing
    }

    /// The error the stream failed with, if it did.
    pub fn error(&self) -> Option<&ClientError> {
        self.core.error.as_deref()
    }

    /// The bound full JID, once ready.
    pub fn jid(&self) -> Option<&FullJid> {
        match &self.phase {
            Phase::Ready { jid } => Some(jid),
            _ => None,
        }
    }

    /// Whether the session is ready for stanzas.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready { .. })
    }

    /// Whether the stream is closed (after an error or a close).
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Whether the stream is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.tls.is_some()
    }

    /// The SCRAM keys derived during this login, for the host to cache
    /// (pass them back in [`Credentials::Password`] next time). `None` when
    /// SCRAM was not used or did not verify the server.
    pub fn scram_keys(&self) -> Option<crate::sasl::scram::ScramClientKeys> {
        self.scram_keys.as_deref().cloned()
    }

    // ------------------------------------------------------------------
    // Inputs

    /// Bytes from the server ([`Framing::Tcp`](crate::Framing::Tcp); a
    /// WebSocket client refuses them with [`UsageError::MessagesExpected`]).
    pub fn feed(&mut self, now: Instant, data: &[u8]) -> Result<(), UsageError> {
        self.input(now, data, false)
    }

    /// One whole WebSocket message from the server
    /// ([`Framing::WebSocket`](crate::Framing::WebSocket)): exactly one
    /// complete element, else the stream fails with `not-well-formed`
    /// ([`ReadError::Message`]). Over TCP
    /// it is [`feed`](Self::feed): bytes are bytes.
    pub fn feed_message(&mut self, now: Instant, message: &[u8]) -> Result<(), UsageError> {
        self.input(now, message, true)
    }

    /// One element already read by a BOSH machine (within its limits):
    /// checked against the phase like a message's, then handled as one,
    /// without being written and read again. Only for elements a message
    /// reader gives as elements (not `stream:error`: the BOSH adapter
    /// feeds that as a message).
    pub(crate) fn feed_element(&mut self, now: Instant, el: Element) -> Result<(), UsageError> {
        self.feed_parsed(now, Parsed::Element(el))
    }

    /// BOSH: the server's stream header, as the adapter built it from the
    /// session creation response, read as an `<open/>` message would be
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
        if matches!(self.phase, Phase::AwaitTls) {
            return Err(UsageError::AwaitingTls);
        }
        self.core.tick(now);
        self.last_input = self.last_input.max(now);
        let ev = match parsed {
            Parsed::Header(h) => StreamEvent::Header(self.core.message_header(h)),
            Parsed::Element(el) => {
                if let Err(r) = self.expect().check(el.name(), &el.ns()) {
                    let condition = r.condition;
                    self.fail(ClientError::PeerMisbehaved(Misbehavior::protocol(
                        condition, r.reason,
                    )));
                    return Ok(());
                }
                StreamEvent::Element(el)
            }
        };
        self.on_stream_event(now, ev);
        self.core.after_read();
        Ok(())
    }

    /// BOSH: the first stream header this client wrote (its `to` and
    /// `xml:lang` make the session creation), once.
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
        let result = self.read(now, data);
        self.core.track_element(now);
        result
    }

    fn read(&mut self, now: Instant, data: &[u8]) -> Result<(), UsageError> {
        let mut rest = data;
        loop {
            let expect = self.expect();
            match self.core.read(&mut rest, expect) {
                Ok(Some(ev)) => {
                    self.on_stream_event(now, ev);
                    if matches!(self.phase, Phase::AwaitTls) {
                        self.core.push_event(ClientEvent::StartTls {
                            pending: rest.to_vec(),
                        });
                        return Ok(());
                    }
                    if self.core.is_closed() {
                        return Ok(());
                    }
                }
                Ok(None) => {
                    self.core.after_read();
                    return Ok(());
                }
                Err(ReadError::Refused(r)) => {
                    let condition = r.condition;
                    self.fail(ClientError::PeerMisbehaved(Misbehavior::protocol(
                        condition, r.reason,
                    )));
                    return Ok(());
                }
                Err(e) => {
                    self.fail(ClientError::PeerMisbehaved(Misbehavior::Read(e)));
                    return Ok(());
                }
            }
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
                self.core.finish(ClientEvent::Closed);
                return;
            }
        }
        if self
            .core
            .element_deadline(self.config.element_timeout)
            .is_some_and(|d| now >= d)
        {
            return self.fail(ClientError::Timeout(Deadline::Element));
        }
        if let Some(d) = self.negotiation_deadline {
            if now >= d {
                self.negotiation_deadline = None;
                self.fail(ClientError::Timeout(Deadline::Negotiation));
                return;
            }
        }
        self.sm_timeout(now);
        if let (Phase::Ready { .. }, Some(k)) = (&self.phase, self.keepalive()) {
            if now >= deadline(self.core.last_send, k) {
                self.core.write_keepalive();
                self.core.last_send = now;
            }
        }
    }

    /// TLS is up (after [`ClientEvent::StartTls`]). The stream restarts.
    pub fn tls_established(&mut self, _now: Instant, info: TlsInfo) -> Result<(), UsageError> {
        if !matches!(self.phase, Phase::AwaitTls) {
            return Err(UsageError::NotAwaitingTls);
        }
        self.tls = Some(info);
        self.core.awaiting_tls = false;
        self.core.reader.reset();
        self.phase = Phase::AwaitHeader;
        self.open_stream();
        Ok(())
    }

    /// Sends a stanza. Only once ready: before, it is refused (never
    /// queued silently). With stream management on, its bytes are kept
    /// until the server acknowledges it (and come back in
    /// [`ClientEvent::Acked`], or [`ClientEvent::Undelivered`]), and it
    /// is refused with [`UsageError::UnackedQueueFull`] when the queue is
    /// at its bound.
    pub fn send(&mut self, stanza: &Element) -> Result<(), UsageError> {
        if self.core.life != Life::Open {
            return Err(UsageError::Closed);
        }
        if !matches!(self.phase, Phase::Ready { .. }) {
            return Err(UsageError::NotReady);
        }
        // A session resumed without settings of its own runs on the
        // defaults.
        let default;
        let settings = match (&self.sm, &self.config.stream_management) {
            (None, _) => None,
            (Some(_), Some(s)) => Some(s),
            (Some(_), None) => {
                default = crate::sm::SmSettings::default();
                Some(&default)
            }
        };
        self.core
            .send_stanza(self.sm.as_deref_mut(), settings, stanza, self.last_input)
    }

    /// Ends the stream with a stream error of the host's choosing
    /// (`policy-violation`, `system-shutdown`...), as
    /// [`Server::close_with_error`](crate::server::Server::close_with_error)
    /// does: the error, `</stream:stream>`, then [`ClientEvent::Error`]
    /// and [`ClientEvent::Closed`]. An error that cannot be written (its
    /// text) is refused with [`UsageError::Write`] and nothing changes.
    pub fn close_with_error(&mut self, error: StreamError) -> Result<(), UsageError> {
        self.core
            .writer
            .write_stream_error(&mut Vec::new(), &error)
            .map_err(UsageError::Write)?;
        self.negotiation_deadline = None;
        if !self.core.is_closed() {
            // A resumable session stays in `sm_state`; otherwise its
            // unacknowledged stanzas are handed back.
            self.sm_end(false);
        }
        self.core.fail(
            ClientError::ClosedByHost(error.clone()),
            Some(error),
            ClientEvent::Error,
            ClientEvent::Closed,
        );
        Ok(())
    }

    /// Closes the stream: `</stream:stream>` (after `<abort/>` when SASL
    /// is under way), then waits for the server's close at most the
    /// configured grace.
    pub fn close(&mut self, now: Instant) {
        if self.core.life != Life::Open {
            return;
        }
        if matches!(self.phase, Phase::Sasl(_)) {
            self.core.write_sasl(SaslPayload::Abort);
        }
        if matches!(self.phase, Phase::Sasl2(_)) {
            let abort = crate::steps::sasl2::Sasl2Element::Abort(None).to_element();
            self.write(&abort);
        }
        if matches!(self.phase, Phase::Ready { .. }) {
            self.sm_closing();
        }
        self.negotiation_deadline = None;
        self.core
            .start_close(now, self.config.close_grace, ClientEvent::Closed);
    }

    // ------------------------------------------------------------------
    // Outputs

    /// Appends the bytes to send to `buf`; returns how many. Over
    /// WebSocket, the messages end to end: use
    /// [`poll_message`](Self::poll_message) there.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        self.core.poll_transmit(buf)
    }

    /// The next WebSocket message to send: one element (`<open/>`, a
    /// stanza, `<close/>`...), until `None`. Over TCP, every byte queued
    /// at once (as [`poll_transmit`](Self::poll_transmit)).
    pub fn poll_message(&mut self) -> Option<Vec<u8>> {
        self.core.poll_message()
    }

    /// The keepalive interval: none over WebSocket (RFC 7395 has no
    /// whitespace keepalive).
    fn keepalive(&self) -> Option<std::time::Duration> {
        self.config
            .keepalive
            .filter(|_| self.core.framing() == crate::Framing::Tcp)
    }

    /// Bytes queued for the server that
    /// [`poll_transmit`](Self::poll_transmit) has not taken yet.
    pub fn queued_output(&self) -> usize {
        self.core.queued()
    }

    /// Whether the queued output is above
    /// [`ClientSettings::output_high_water`](crate::client::ClientSettings::output_high_water): a host whose writes lag
    /// stops sending stanzas (and reading) until it has written the queue.
    pub fn output_congested(&self) -> bool {
        self.core.queued() > self.config.output_high_water
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.core.poll_event()
    }

    /// The next deadline: call [`handle_timeout`](Self::handle_timeout)
    /// then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let keepalive = match (&self.phase, self.keepalive()) {
            (Phase::Ready { .. }, Some(k)) if self.core.life == Life::Open => {
                Some(deadline(self.core.last_send, k))
            }
            _ => None,
        };
        [
            self.core.close_deadline,
            self.negotiation_deadline,
            self.core.element_deadline(self.config.element_timeout),
            keepalive,
            self.sm_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Client {
    /// What the phase admits at the next top-level start tag.
    fn expect(&self) -> Expect {
        if self.core.life != Life::Open {
            return Expect::Any;
        }
        match self.phase {
            Phase::AwaitFeatures => Expect::Features,
            Phase::StartTlsSent => Expect::Tls,
            Phase::Sasl(_) => Expect::Sasl,
            Phase::Sasl2(_) => Expect::Sasl2,
            Phase::Binding | Phase::Session { .. } => Expect::Iq {
                unauthorized: false,
            },
            #[cfg(feature = "legacy")]
            Phase::Legacy(_) => Expect::Iq {
                unauthorized: false,
            },
            Phase::Ready { .. } if self.sasl2_features_late => Expect::Any,
            Phase::Ready { .. } | Phase::Enabling { .. } | Phase::Resuming => Expect::Stanzas,
            Phase::AwaitHeader | Phase::AwaitTls => Expect::Any,
        }
    }

    fn stage(&self) -> Stage {
        if self.authenticated {
            Stage::Authenticated
        } else if self.tls.is_some() {
            Stage::Encrypted
        } else {
            Stage::Plain
        }
    }

    fn open_stream(&mut self) {
        let jid = self.config.jid();
        let header = StreamHeader {
            to: Some(self.config.domain().to_string()),
            // RFC 6120 4.7.1: `from` only once the stream is protected.
            from: (self.tls.is_some() || self.config.tls == TlsMode::Direct)
                .then_some(jid)
                .filter(|j| j.node().is_some())
                .map(|j| j.to_string()),
            version: Some("1.0".into()),
            lang: self.config.lang.clone(),
            ..StreamHeader::default()
        };
        let written = self.core.write_header(&header);
        self.written(written);
    }

    fn write(&mut self, el: &Element) {
        let written = self.core.write(el);
        self.written(written);
    }

    /// Fails the stream when something built from the configuration could
    /// not be written (`build` checked it all, so this does not happen).
    fn written(&mut self, written: Result<(), crate::xml::WriteError>) {
        if let Err(e) = written {
            self.fail(ClientError::Internal(InternalError::write(e)));
        }
    }

    /// Fails the stream: the stream error (when the server is at fault),
    /// the close, the error event, the closed event. Sticky.
    fn fail(&mut self, err: ClientError) {
        self.negotiation_deadline = None;
        let error = err.stream_error();
        self.sm_end(false);
        self.core
            .fail(err, error, ClientEvent::Error, ClientEvent::Closed);
    }

    fn protocol_error(&mut self, reason: &'static str) {
        self.fail(ClientError::PeerMisbehaved(Misbehavior::protocol(
            StreamErrorCondition::UnsupportedStanzaType,
            reason,
        )));
    }

    fn on_stream_event(&mut self, now: Instant, ev: StreamEvent) {
        match ev {
            StreamEvent::Header(h) => self.on_header(h),
            StreamEvent::Element(el) => self.on_element(now, el),
            StreamEvent::StreamError(e) => {
                if let Some((host, port)) = e.condition.redirect() {
                    // Unprotected, anyone on the path can send one: it is
                    // then only the stream error below, unless allowed.
                    let protected = self.tls.is_some();
                    if protected || self.config.allow_redirect_without_tls {
                        self.core.push_event(ClientEvent::Redirect {
                            host,
                            port,
                            protected,
                        });
                    }
                }
                self.fail(ClientError::PeerStreamError(e));
            }
            StreamEvent::Closed => {
                if let Some(uri) = self.core.reader.see_other_uri() {
                    // RFC 7395 3.6.1: the WebSocket redirect, reported as
                    // `see-other-host` is.
                    let protected = self.tls.is_some();
                    if protected || self.config.allow_redirect_without_tls {
                        self.core.push_event(ClientEvent::SeeOtherUri {
                            uri: uri.to_owned(),
                            protected,
                        });
                    }
                }
                if self.core.life == Life::Closing || matches!(self.phase, Phase::Ready { .. }) {
                    // A close ends the stream management session too.
                    self.sm_end(true);
                    self.core.peer_closed(ClientEvent::Closed);
                } else {
                    self.fail(ClientError::ClosedByPeer);
                }
            }
        }
    }

    fn on_header(&mut self, h: StreamHeader) {
        if !matches!(self.phase, Phase::AwaitHeader) {
            return self.protocol_error("a second stream header");
        }
        if h.content_ns.as_deref() != Some(ns::JABBER_CLIENT) {
            return self.fail(ClientError::PeerMisbehaved(Misbehavior::protocol(
                StreamErrorCondition::InvalidNamespace,
                "the server's content namespace is not jabber:client",
            )));
        }
        #[cfg(feature = "legacy")]
        {
            self.legacy.stream_id = h.id.clone();
        }
        if h.is_pre_1_0() {
            // Jabber 1.4 (seed 001): no features follow; registration and
            // jabber:iq:auth, when allowed, on this very stream.
            if self.tls.is_none() && matches!(self.config.tls, TlsMode::StartTlsRequired) {
                return self.fail(ClientError::Policy(PolicyError::TlsRequired));
            }
            return self.preauth(None);
        }
        self.phase = Phase::AwaitFeatures;
    }

    #[cfg_attr(not(feature = "legacy"), allow(unused_variables))]
    fn on_element(&mut self, now: Instant, el: Element) {
        // The element's name and namespace are checked against the phase
        // before anything of its content is read.
        if self.core.life == Life::Closing {
            // Stanzas in flight while closing are still delivered, if the
            // session was ready: not on a stream closed before (after a
            // registration, or by the host), where nobody authenticated.
            if is_stanza(&el) && self.is_ready() {
                self.sm_inbound();
                self.core.push_event(ClientEvent::Stanza(el));
            } else if let Some(Ok(crate::steps::sm::SmElement::Ack { h })) =
                crate::steps::sm::SmElement::parse(&el)
            {
                // The last acknowledgement, asked for by `close`.
                self.sm_ack(h);
            }
            return;
        }
        if el.has_ns(ns::SM) {
            return self.on_sm(now, &el);
        }
        let phase = std::mem::replace(&mut self.phase, Phase::AwaitHeader);
        match phase {
            Phase::AwaitFeatures if el.is("features", ns::STREAM) => {
                self.phase = Phase::AwaitFeatures;
                self.on_features(&el);
            }
            Phase::StartTlsSent => {
                self.phase = Phase::StartTlsSent;
                match TlsElement::parse(&el) {
                    Some(TlsElement::Proceed) => {
                        self.phase = Phase::AwaitTls;
                        self.core.awaiting_tls = true;
                    }
                    Some(TlsElement::Failure) => {
                        self.fail(ClientError::Refused(PeerRefusal::StartTls))
                    }
                    _ => self.protocol_error("expected <proceed/> or <failure/>"),
                }
            }
            Phase::Sasl(mech) => self.on_sasl(mech, &el),
            Phase::Sasl2(x) => self.on_sasl2(x, &el),
            Phase::Binding if is_reply(&el, BIND_ID) => {
                self.phase = Phase::Binding;
                match bind::parse_reply(&el).map(|j| FullJid::new(&j)) {
                    Ok(Ok(jid)) => self.after_bind(jid),
                    Ok(Err(_)) => self.fail(ClientError::PeerMisbehaved(Misbehavior::protocol(
                        StreamErrorCondition::UndefinedCondition,
                        "the bound JID is not a full JID",
                    ))),
                    Err(e) => self.fail(ClientError::Refused(PeerRefusal::Bind(e))),
                }
            }
            Phase::Session { jid } if is_reply(&el, SESSION_ID) => {
                self.phase = Phase::Session { jid: jid.clone() };
                if el.attr("type") == Some("result") {
                    self.ready(jid);
                } else {
                    self.fail(ClientError::Refused(PeerRefusal::Session(
                        StanzaError::from_iq(&el),
                    )));
                }
            }
            #[cfg(feature = "legacy")]
            Phase::Legacy(step) if is_reply(&el, step.reply_id()) => {
                self.on_legacy_reply(now, step, &el);
            }
            Phase::Ready { jid } if self.sasl2_features_late && el.is("features", ns::STREAM) => {
                self.sasl2_features_late = false;
                self.sm_offered =
                    StreamFeatures::parse(&el, Stage::Authenticated).stream_management;
                self.phase = Phase::Ready { jid };
            }
            Phase::Ready { jid } if is_stanza(&el) => {
                self.phase = Phase::Ready { jid };
                self.sm_inbound();
                self.core.push_event(ClientEvent::Stanza(el));
            }
            Phase::Enabling { jid } if is_stanza(&el) => {
                // Before `<enabled/>`: delivered, not counted (the
                // server counts from `<enabled/>`).
                self.phase = Phase::Enabling { jid };
                self.core.push_event(ClientEvent::Stanza(el));
            }
            other => {
                self.phase = other;
                self.protocol_error("an element that is not legal in this phase");
            }
        }
    }

    fn on_features(&mut self, el: &Element) {
        let stage = self.stage();
        let features = StreamFeatures::parse(el, stage);
        match stage {
            Stage::Plain => {
                // Never over WebSocket: its TLS is the host's (`wss`).
                let wants_tls = !matches!(self.config.tls, TlsMode::None)
                    && self.core.framing() == crate::Framing::Tcp;
                if features.starttls.is_some() && wants_tls {
                    self.write(&starttls());
                    self.phase = Phase::StartTlsSent;
                    return;
                }
                if matches!(self.config.tls, TlsMode::StartTlsRequired) {
                    // No credentials go over an unprotected stream.
                    return self.fail(ClientError::Policy(PolicyError::TlsRequired));
                }
                self.preauth(Some(features));
            }
            Stage::Encrypted => self.preauth(Some(features)),
            Stage::Authenticated => {
                if self.sasl2_features(&features) {
                    return;
                }
                if features.bind {
                    self.session_required = features.session == Some(false);
                    self.sm_offered = features.stream_management;
                    if self.sm_try_resume() || self.core.is_closed() {
                        return;
                    }
                    self.bind();
                } else {
                    self.fail(ClientError::PeerMisbehaved(Misbehavior::protocol(
                        StreamErrorCondition::UnsupportedFeature,
                        "no resource binding offered after authentication",
                    )));
                }
            }
        }
    }

    /// Before authentication, once the server's header (pre-1.0: `None`)
    /// or features are known. Without the `legacy` feature there is only
    /// SASL (the `legacy` build's is in `legacy.rs`).
    #[cfg(not(feature = "legacy"))]
    fn preauth(&mut self, features: Option<StreamFeatures>) {
        match features {
            Some(f) => self.start_sasl(f),
            None => self.fail(ClientError::Policy(PolicyError::UnsupportedVersion)),
        }
    }

    fn start_sasl(&mut self, mut features: StreamFeatures) {
        // SASL2 or RFC 6120 SASL (the policy's choice); the same registry
        // and policy choose the mechanism for either.
        let sasl2 = match self.sasl2_choice(&mut features) {
            Ok(s) => s,
            Err(e) => return self.fail(ClientError::Policy(e)),
        };
        // No acceptable mechanism: `jabber:iq:auth` instead, when offered
        // and allowed.
        #[cfg(feature = "legacy")]
        let legacy_fallback = features.iq_auth && self.config.legacy_auth.enabled;
        let offer = ServerOffer {
            mechanisms: match &sasl2 {
                Some(f) => f.mechanisms.clone(),
                None => features.mechanisms.unwrap_or_default(),
            },
            channel_binding_types: features.channel_binding_types,
        };
        // A FAST token held: log in with it, or (refused here) with the
        // password only when the policy says so.
        if self.fast_token.is_some() {
            match self.fast_login(sasl2.as_ref()) {
                Ok(mech) => {
                    let feature = sasl2.expect("a token login is SASL2's");
                    let fallback = sasl2::PasswordFallback {
                        cb_types: offer.channel_binding_types.clone(),
                    };
                    return self.start_sasl2(mech, feature, Some(fallback));
                }
                Err(_) if self.config.fast.fallback_to_password => {}
                Err(e) => return self.fail(*e),
            }
        }
        match mechanism::choose(&self.config, self.rng.as_mut(), &offer, self.tls.as_ref()) {
            Ok(mech) if sasl2.is_some() => {
                self.start_sasl2(mech, sasl2.expect("checked"), None);
            }
            Ok(mut mech) => match mech.initial_response() {
                Ok(initial) => {
                    // PLAIN's carries the password: zeroed once written.
                    let initial = initial.map(zeroize::Zeroizing::new);
                    let initial = initial.as_deref().map(Vec::as_slice);
                    let written =
                        self.core
                            .write_auth(mech.name(), initial, mech.auth_attributes());
                    self.phase = Phase::Sasl(mech);
                    self.written(written);
                }
                Err(e) => self.fail(ClientError::sasl(e)),
            },
            #[cfg(feature = "legacy")]
            Err(mechanism::ChooseError::Policy(_)) if legacy_fallback => self.start_legacy(),
            Err(e) => self.choose_failed(e),
        }
    }

    /// No mechanism could be chosen or built: the stream fails.
    fn choose_failed(&mut self, e: mechanism::ChooseError) {
        match e {
            mechanism::ChooseError::Policy(SelectError::NoAcceptableMechanism(o)) => {
                self.fail(ClientError::Policy(PolicyError::NoMechanism(o)))
            }
            mechanism::ChooseError::Policy(SelectError::Refused(r)) => {
                self.fail(ClientError::Policy(PolicyError::MechanismRefused(r)))
            }
            mechanism::ChooseError::Sasl(e) => self.fail(ClientError::sasl(e)),
        }
    }

    fn on_sasl(&mut self, mut mech: Box<dyn ClientMechanism>, el: &Element) {
        let parsed = match SaslElement::parse(el) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                // A challenge we cannot decode: tell the server we stop.
                self.core.write_sasl(SaslPayload::Abort);
                self.phase = Phase::Sasl(mech);
                return self.fail(ClientError::sasl(e));
            }
            None => {
                self.phase = Phase::Sasl(mech);
                return self.protocol_error("a non-SASL element during SASL");
            }
        };
        match parsed {
            SaslElement::Challenge(data) => match mech.respond(&data) {
                Ok(resp) => {
                    self.core.write_sasl(SaslPayload::Response(&resp));
                    self.phase = Phase::Sasl(mech);
                }
                Err(e) => {
                    self.core.write_sasl(SaslPayload::Abort);
                    self.phase = Phase::Sasl(mech);
                    self.fail(ClientError::sasl(e));
                }
            },
            SaslElement::Success(data) => match mech.success(data.as_deref().map(Vec::as_slice)) {
                Ok(()) => {
                    self.scram_keys = mech.derived_keys().map(Box::new);
                    self.authenticated = true;
                    self.core.push_event(ClientEvent::Authenticated {
                        mechanism: mech.name().to_owned(),
                        security: mech.security(),
                        sasl2: false,
                    });
                    // Restart: a fresh parser on exactly the next bytes.
                    self.core.reader.reset();
                    self.phase = Phase::AwaitHeader;
                    self.open_stream();
                }
                Err(e) => {
                    // The server did not prove itself: never go on.
                    self.phase = Phase::Sasl(mech);
                    self.fail(ClientError::sasl(e));
                }
            },
            SaslElement::Failure { condition, text } => {
                self.phase = Phase::Sasl(mech);
                self.fail(ClientError::Refused(PeerRefusal::Authentication {
                    condition,
                    text,
                }));
            }
            SaslElement::Auth { .. } | SaslElement::Response(_) | SaslElement::Abort => {
                self.phase = Phase::Sasl(mech);
                self.protocol_error("a client-side SASL element from the server");
            }
        }
    }

    /// RFC 6120 resource binding: the request for the configured
    /// resource.
    fn bind(&mut self) {
        let resource = self.config.resource().map(|r| r.as_str().to_owned());
        self.write(&bind::request(BIND_ID, resource.as_deref()));
        self.phase = Phase::Binding;
    }

    fn after_bind(&mut self, jid: FullJid) {
        // RFC 3921 session: only when offered without <optional/>. The
        // features of this stream were read in on_features; remember the
        // decision there.
        if self.session_required {
            let domain = self.config.domain().to_string();
            self.write(&session::request(SESSION_ID, &domain));
            self.phase = Phase::Session { jid };
        } else {
            self.ready(jid);
        }
    }

    fn ready(&mut self, jid: FullJid) {
        if self.sm_try_enable(&jid) {
            return;
        }
        self.negotiation_deadline = None;
        self.core.become_lean(self.config.buffers);
        self.core
            .push_event(ClientEvent::Ready { jid: jid.clone() });
        self.phase = Phase::Ready { jid };
    }
}

fn is_reply(el: &Element, id: &str) -> bool {
    el.is("iq", ns::JABBER_CLIENT)
        && el.attr("id") == Some(id)
        && matches!(el.attr("type"), Some("result") | Some("error"))
}

fn is_stanza(el: &Element) -> bool {
    el.has_ns(ns::JABBER_CLIENT) && matches!(el.name(), "message" | "presence" | "iq")
}
