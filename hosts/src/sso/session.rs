//! Step 3: one browser stream and its upstream stream, from the upstream
//! connection to the relay.
//!
//! # Driving a session
//!
//! The host owns both connections. Browser side: the framing adapter
//! ([`super::bosh::SsoBosh`], [`super::websocket::SsoWebSocket`]) gives
//! [`SsoSession::browser`] each element, the restart and the close, and
//! takes [`SsoSession::poll_browser`]'s [`BrowserOut`]s. Upstream side:
//! [`SsoSession::feed_upstream`] takes the bytes read from the server
//! (decrypted once TLS is up), [`SsoSession::poll_upstream`] gives the
//! bytes to write; on [`SsoEvent::StartTls`] the host runs the TLS
//! handshake (the server's certificate verified) and calls
//! [`SsoSession::tls_established`]. After every input: drain
//! `poll_upstream`, `poll_browser`, then `poll_event`, then read
//! `poll_timeout`.
//!
//! # The phases
//!
//! ```text
//! Opening(PreTls) --features with <starttls/>--> StartTlsSent --<proceed/>--> AwaitTls
//!   --tls_established--> Opening(PostTls) --features: rewritten for the browser--> PreAuth
//! PreAuth --EXTERNAL (SSO user)--> [ExternalChallenge] --> Switching --upstream <success/>--> AwaitRestart
//! PreAuth --upstream <success/> (anyone else's SASL, relayed)--> AwaitRestart
//! AwaitRestart --browser restart: new upstream header--> Opening(Restart)
//!   --upstream features (the browser's restart held until now)--> Relay
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use minidom::Element;
use xmpp_sansio::ns;
use xmpp_sansio::sasl::gssapi::GssContext;
use xmpp_sansio::sasl::SaslCondition;
use xmpp_sansio::steps::sasl::SaslElement;
use xmpp_sansio::steps::starttls::{starttls, TlsElement};
use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition};
use xmpp_sansio::xml::{StreamEvent, StreamHeader, StreamReader, StreamWriter};

use super::external::{check_authzid, failure, Switch, SwitchStep};
use super::features::{self, EXTERNAL};
use super::{SsoConfig, SsoUser};

/// What the browser did (the framing adapter's reading of it).
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserIn {
    /// A top-level element (a stanza, a SASL element...).
    Element(Element),
    /// The browser restarted its stream (BOSH `xmpp:restart='true'`, or a
    /// second WebSocket `<open/>`).
    Restart,
    /// The browser ended its stream (or its connection is gone).
    Close,
}

/// What goes to the browser.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserOut {
    /// The stream header's answer (WebSocket `<open/>`; BOSH: the
    /// creation response's `authid`): the upstream stream's id.
    Open {
        /// The upstream's stream id.
        id: Option<String>,
    },
    /// A top-level element.
    Element(Element),
    /// The stream is over: with this stream error, or cleanly.
    Close(Option<StreamError>),
}

/// What the host should know or do.
#[derive(Debug, Clone, PartialEq)]
pub enum SsoEvent {
    /// The server said `<proceed/>`: run the TLS handshake on the upstream
    /// connection now, then call [`SsoSession::tls_established`].
    /// `pending`: bytes received after `<proceed/>` (a TLS server never
    /// speaks first: any is an injection, and the host refuses them).
    StartTls {
        /// Bytes that followed `<proceed/>`.
        pending: Vec<u8>,
    },
    /// An SSO login went through: log
    /// `SSO <principal> as <jid> via GSSAPI`.
    LoggedIn {
        /// `alice@EXAMPLE.TEST`.
        principal: String,
        /// The JID the realm map gives (`None`: the server mapped it).
        jid: Option<String>,
    },
    /// An SSO login was refused (`not-authorized` or `invalid-authzid` to
    /// the browser); the reason, for the log.
    LoginRefused {
        /// The principal.
        principal: String,
        /// Why.
        reason: String,
    },
    /// Both streams are over (the reason, for the log): the host closes
    /// both connections once it has written what is queued.
    Closed {
        /// Why.
        reason: String,
    },
}

/// Which upstream stream is being opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// The first, in plain TCP: STARTTLS follows.
    PreTls,
    /// After TLS: its features go to the browser, rewritten.
    PostTls,
    /// After authentication: its features go to the browser as they are.
    Restart,
}

enum Phase {
    /// Waiting for the upstream header (`header`: seen) and features.
    Opening { which: Opening, header: bool },
    /// `<starttls/>` sent.
    StartTlsSent,
    /// `<proceed/>` came: the host runs TLS.
    AwaitTls,
    /// The browser has the features: SASL, by EXTERNAL or relayed.
    /// `swallow_failure`: an `<abort/>` went upstream, whose `<failure/>`
    /// is not the browser's.
    PreAuth { swallow_failure: bool },
    /// An empty `<auth mechanism='EXTERNAL'/>` got an empty challenge: the
    /// authzid comes in the browser's `<response/>`.
    ExternalChallenge,
    /// GSSAPI runs upstream for the browser's EXTERNAL.
    Switching(Switch),
    /// Authenticated: waiting for the browser's restart.
    AwaitRestart,
    /// Every element goes both ways unchanged.
    Relay,
    /// Over.
    Closed,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Opening { .. } => "opening",
            Phase::StartTlsSent => "starttls-sent",
            Phase::AwaitTls => "await-tls",
            Phase::PreAuth { .. } => "pre-auth",
            Phase::ExternalChallenge => "external-challenge",
            Phase::Switching(_) => "switching",
            Phase::AwaitRestart => "await-restart",
            Phase::Relay => "relay",
            Phase::Closed => "closed",
        }
    }
}

/// One browser stream and its upstream stream (see the module docs).
pub struct SsoSession {
    config: Arc<SsoConfig>,
    user: Option<SsoUser>,
    context: Option<Box<dyn GssContext>>,
    phase: Phase,
    reader: StreamReader,
    writer: StreamWriter,
    upstream_out: Vec<u8>,
    browser_out: VecDeque<BrowserOut>,
    events: VecDeque<SsoEvent>,
    deadline: Option<Instant>,
    /// The upstream said SASL `<success/>`: its reader restarts after it.
    reset_pending: bool,
    /// A header went upstream: the stream is open there.
    upstream_open: bool,
}

impl std::fmt::Debug for SsoSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoSession")
            .field("user", &self.user)
            .field("credential", &self.context.is_some())
            .field("phase", &self.phase.name())
            .finish_non_exhaustive()
    }
}

impl SsoSession {
    /// A browser stream to `to` (its header's or session creation's), by
    /// `user` (`None`: not authenticated with Negotiate: no SSO). The
    /// upstream stream header is the first thing
    /// [`poll_upstream`](Self::poll_upstream) gives. A `to` other than the
    /// configured domain ends the stream with `host-unknown`.
    pub fn new(
        config: Arc<SsoConfig>,
        user: Option<SsoUser>,
        to: Option<&str>,
        now: Instant,
    ) -> Self {
        let mut s = SsoSession {
            reader: StreamReader::new(config.limits),
            writer: StreamWriter::new(ns::JABBER_CLIENT),
            deadline: Some(now + config.negotiation_timeout),
            config,
            user,
            context: None,
            phase: Phase::Opening {
                which: Opening::PreTls,
                header: false,
            },
            upstream_out: Vec::new(),
            browser_out: VecDeque::new(),
            events: VecDeque::new(),
            reset_pending: false,
            upstream_open: false,
        };
        let to_ok = to.is_some_and(|t| t.eq_ignore_ascii_case(&s.config.domain));
        if to_ok {
            s.open_upstream();
        } else {
            s.fail(
                StreamErrorCondition::HostUnknown,
                format!("the browser asked for {to:?}"),
            );
        }
        s
    }

    /// The Negotiate-authenticated user, if any.
    pub fn user(&self) -> Option<&SsoUser> {
        self.user.as_ref()
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the session waits for the browser's restart (after
    /// `<success/>`).
    pub fn awaits_restart(&self) -> bool {
        matches!(self.phase, Phase::AwaitRestart)
    }

    /// Whether the session relays (logged in and restarted).
    pub fn is_relaying(&self) -> bool {
        matches!(self.phase, Phase::Relay)
    }

    /// The phase's name, for logs and tests.
    pub fn phase(&self) -> &'static str {
        self.phase.name()
    }

    /// A GSS-API initiator context to `xmpp@<domain>` made from the
    /// credential the browser delegated with its latest Negotiate token;
    /// it replaces an earlier one. Taken before the browser's `<auth/>`;
    /// ignored for a session without an SSO user and once authentication
    /// began.
    pub fn set_credential(&mut self, context: Box<dyn GssContext>) {
        if self.user.is_some()
            && matches!(
                self.phase,
                Phase::Opening { .. }
                    | Phase::StartTlsSent
                    | Phase::AwaitTls
                    | Phase::PreAuth { .. }
                    | Phase::ExternalChallenge
            )
        {
            self.context = Some(context);
        }
    }

    /// Whether a delegated credential is waiting for the browser's
    /// `<auth/>`.
    pub fn has_credential(&self) -> bool {
        self.context.is_some()
    }

    /// Appends the bytes to write upstream; how many.
    pub fn poll_upstream(&mut self, buf: &mut Vec<u8>) -> usize {
        let n = self.upstream_out.len();
        buf.append(&mut self.upstream_out);
        n
    }

    /// The next thing for the browser.
    pub fn poll_browser(&mut self) -> Option<BrowserOut> {
        self.browser_out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SsoEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): the
    /// negotiation deadline, until the relay.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The clock reached [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) && !self.is_closed() {
            self.fail(
                StreamErrorCondition::ConnectionTimeout,
                format!("not logged in in time (phase {})", self.phase.name()),
            );
        }
    }

    /// The upstream TLS handshake is done (after [`SsoEvent::StartTls`]):
    /// the stream restarts over TLS.
    pub fn tls_established(&mut self) {
        if !matches!(self.phase, Phase::AwaitTls) {
            return;
        }
        self.reader.reset();
        self.phase = Phase::Opening {
            which: Opening::PostTls,
            header: false,
        };
        self.open_upstream();
    }

    /// The upstream connection ended (or failed) under the stream.
    pub fn upstream_gone(&mut self, why: &str) {
        if !self.is_closed() {
            self.fail(
                StreamErrorCondition::RemoteConnectionFailed,
                format!("upstream: {why}"),
            );
        }
    }

    /// Bytes from the upstream server (decrypted once TLS is up). After
    /// `<proceed/>` the rest belongs to TLS and comes back in
    /// [`SsoEvent::StartTls`].
    pub fn feed_upstream(&mut self, data: &[u8]) {
        let mut input = data;
        while !input.is_empty() {
            match self.phase {
                Phase::Closed => return,
                Phase::AwaitTls => {
                    // Bytes after <proceed/> on the plain connection:
                    // only the host's TLS may read them.
                    return self.fail(
                        StreamErrorCondition::PolicyViolation,
                        "upstream bytes after <proceed/>".into(),
                    );
                }
                _ => {}
            }
            match self.reader.read(&mut input) {
                Ok(Some(ev)) => {
                    self.upstream_event(ev);
                    if matches!(self.phase, Phase::AwaitTls) {
                        self.events.push_back(SsoEvent::StartTls {
                            pending: input.to_vec(),
                        });
                        return;
                    }
                    if std::mem::take(&mut self.reset_pending) {
                        // After <success/>: what follows is the new stream's.
                        self.reader.reset();
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    return self.fail(
                        StreamErrorCondition::RemoteConnectionFailed,
                        format!("upstream sent what cannot be read: {e}"),
                    )
                }
            }
        }
    }

    /// Something from the browser (see [`BrowserIn`]).
    pub fn browser(&mut self, input: BrowserIn) {
        match input {
            BrowserIn::Close => {
                if !self.is_closed() {
                    self.close_upstream();
                    self.finish("the browser closed its stream".into());
                }
            }
            BrowserIn::Restart => match self.phase {
                Phase::AwaitRestart => {
                    // The browser's restart is answered by the upstream's
                    // new header and features, when they come: held.
                    self.phase = Phase::Opening {
                        which: Opening::Restart,
                        header: false,
                    };
                    self.open_upstream();
                }
                Phase::Closed => {}
                _ => self.fail(
                    StreamErrorCondition::PolicyViolation,
                    format!("a browser restart in phase {}", self.phase.name()),
                ),
            },
            BrowserIn::Element(el) => self.browser_element(el),
        }
    }

    fn browser_element(&mut self, el: Element) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::PreAuth { swallow_failure } if self.user.is_some() => {
                self.phase = Phase::PreAuth { swallow_failure };
                match SaslElement::parse(&el) {
                    None => self.send_upstream(&el),
                    Some(Ok(SaslElement::Auth {
                        mechanism,
                        initial_response,
                    })) if mechanism == EXTERNAL => match initial_response {
                        None => {
                            // No initial response: ask for it with an
                            // empty challenge (RFC 6120 6.4.2; no `=`,
                            // which is for a zero-length response only
                            // and which Strophe.js cannot decode).
                            self.browser_out.push_back(BrowserOut::Element(
                                Element::builder("challenge", ns::SASL).build(),
                            ));
                            self.phase = Phase::ExternalChallenge;
                        }
                        Some(authzid) => self.external(&authzid),
                    },
                    Some(Ok(SaslElement::Auth { .. })) => {
                        self.send_browser_sasl(failure(SaslCondition::InvalidMechanism))
                    }
                    Some(Ok(SaslElement::Abort)) => {
                        self.send_browser_sasl(failure(SaslCondition::Aborted))
                    }
                    Some(Ok(_)) => self.send_browser_sasl(failure(SaslCondition::MalformedRequest)),
                    Some(Err(e)) => self.send_browser_sasl(failure(e.condition)),
                }
            }
            Phase::ExternalChallenge => {
                self.phase = Phase::PreAuth {
                    swallow_failure: false,
                };
                match SaslElement::parse(&el) {
                    Some(Ok(SaslElement::Response(authzid))) => self.external(&authzid),
                    Some(Ok(SaslElement::Abort)) => {
                        self.send_browser_sasl(failure(SaslCondition::Aborted))
                    }
                    _ => self.send_browser_sasl(failure(SaslCondition::MalformedRequest)),
                }
            }
            // Anyone else's SASL (and whatever else comes before
            // authentication) is the server's business; after the
            // restart, everything is.
            phase @ (Phase::PreAuth { .. }
            | Phase::Relay
            | Phase::Opening {
                which: Opening::Restart,
                ..
            }) => {
                self.phase = phase;
                self.send_upstream(&el);
            }
            Phase::Closed => {}
            phase => {
                self.phase = phase;
                self.fail(
                    StreamErrorCondition::PolicyViolation,
                    format!("a browser <{}/> in phase {}", el.name(), self.phase.name()),
                );
            }
        }
    }

    /// The browser's EXTERNAL with `authzid`: refused, or GSSAPI upstream.
    fn external(&mut self, authzid: &[u8]) {
        let Some(user) = self.user.clone() else {
            return;
        };
        let authzid = match check_authzid(&user, authzid) {
            Ok(a) => a,
            Err(condition) => {
                self.refused(
                    &user,
                    condition,
                    "the browser asked for another authorization identity",
                );
                return;
            }
        };
        let Some(context) = self.context.take() else {
            self.refused(&user, SaslCondition::NotAuthorized, "no delegated credential (a ticket that is not forwardable, or delegation not allowed)");
            return;
        };
        match Switch::start(context, &authzid) {
            Ok((switch, auth)) => {
                self.send_upstream_sasl(&auth);
                self.phase = Phase::Switching(switch);
            }
            Err(e) => self.refused(&user, SaslCondition::NotAuthorized, &format!("GSSAPI: {e}")),
        }
    }

    fn refused(&mut self, user: &SsoUser, condition: SaslCondition, why: &str) {
        self.send_browser_sasl(failure(condition));
        self.events.push_back(SsoEvent::LoginRefused {
            principal: user.principal.clone(),
            reason: format!("{}: {why}", condition.as_str()),
        });
    }

    fn upstream_event(&mut self, ev: StreamEvent) {
        match ev {
            StreamEvent::Header(h) => self.upstream_header(h),
            StreamEvent::Element(el) => self.upstream_element(el),
            StreamEvent::StreamError(e) => {
                let reason = format!("upstream stream error {}", e.condition.as_str());
                self.browser_out.push_back(BrowserOut::Close(Some(e)));
                self.close_upstream();
                self.finish(reason);
            }
            StreamEvent::Closed => {
                self.browser_out.push_back(BrowserOut::Close(None));
                self.close_upstream();
                self.finish("upstream closed its stream".into());
            }
        }
    }

    fn upstream_header(&mut self, h: StreamHeader) {
        match &mut self.phase {
            Phase::Opening { which, header } if !*header => {
                *header = true;
                if h.is_pre_1_0() {
                    return self.fail(
                        StreamErrorCondition::RemoteConnectionFailed,
                        "the upstream stream is not XMPP 1.0".into(),
                    );
                }
                if *which != Opening::PreTls {
                    self.browser_out.push_back(BrowserOut::Open { id: h.id });
                }
            }
            _ => self.fail(
                StreamErrorCondition::RemoteConnectionFailed,
                "an upstream header out of turn".into(),
            ),
        }
    }

    fn upstream_element(&mut self, el: Element) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Opening {
                which,
                header: true,
            } if el.is("features", ns::STREAM) => match which {
                Opening::PreTls if features::offers_starttls(&el) => {
                    self.send_upstream(&starttls());
                    self.phase = Phase::StartTlsSent;
                }
                Opening::PreTls => self.fail(
                    StreamErrorCondition::RemoteConnectionFailed,
                    "the upstream server offers no STARTTLS".into(),
                ),
                Opening::PostTls => {
                    let sso = self.user.is_some();
                    self.browser_out
                        .push_back(BrowserOut::Element(features::for_browser(&el, sso)));
                    self.phase = Phase::PreAuth {
                        swallow_failure: false,
                    };
                }
                Opening::Restart => {
                    // The held restart gets its features now.
                    self.browser_out.push_back(BrowserOut::Element(el));
                    self.phase = Phase::Relay;
                    self.deadline = None;
                }
            },
            Phase::StartTlsSent => match TlsElement::parse(&el) {
                Some(TlsElement::Proceed) => self.phase = Phase::AwaitTls,
                _ => self.fail(
                    StreamErrorCondition::RemoteConnectionFailed,
                    "the upstream server refused STARTTLS".into(),
                ),
            },
            Phase::Switching(mut switch) => {
                let user = self.user.clone();
                let step = match SaslElement::parse(&el) {
                    Some(Ok(sasl)) => switch.upstream(sasl),
                    _ => SwitchStep::Failed(format!("unexpected <{}/> from the server", el.name())),
                };
                match step {
                    SwitchStep::Send(reply) => {
                        self.send_upstream_sasl(&reply);
                        self.phase = Phase::Switching(switch);
                    }
                    SwitchStep::Success => {
                        self.send_browser_sasl(SaslElement::Success(None));
                        if let Some(u) = user {
                            self.events.push_back(SsoEvent::LoggedIn {
                                principal: u.principal,
                                jid: u.jid.map(|j| j.to_string()),
                            });
                        }
                        self.authenticated();
                    }
                    SwitchStep::Failed(why) => {
                        // An exchange the server has not ended yet is
                        // aborted; its failure is then not the browser's.
                        let ended = SaslElement::parse(&el)
                            .is_some_and(|r| matches!(r, Ok(SaslElement::Failure { .. })));
                        if !ended {
                            self.send_upstream_sasl(&SaslElement::Abort);
                        }
                        self.phase = Phase::PreAuth {
                            swallow_failure: !ended,
                        };
                        if let Some(u) = user {
                            self.refused(&u, SaslCondition::NotAuthorized, &why);
                        }
                    }
                }
            }
            Phase::PreAuth { swallow_failure } => {
                let sasl = SaslElement::parse(&el);
                match sasl {
                    Some(Ok(SaslElement::Failure { .. })) if swallow_failure => {
                        self.phase = Phase::PreAuth {
                            swallow_failure: false,
                        };
                    }
                    Some(Ok(SaslElement::Success(_))) => {
                        self.browser_out.push_back(BrowserOut::Element(el));
                        self.authenticated();
                    }
                    _ => {
                        self.phase = Phase::PreAuth { swallow_failure };
                        self.browser_out.push_back(BrowserOut::Element(el));
                    }
                }
            }
            Phase::Relay => {
                self.phase = Phase::Relay;
                self.browser_out.push_back(BrowserOut::Element(el));
            }
            Phase::ExternalChallenge => {
                self.phase = Phase::ExternalChallenge;
                self.browser_out.push_back(BrowserOut::Element(el));
            }
            Phase::Closed => {}
            phase => {
                let name = phase.name();
                self.phase = phase;
                self.fail(
                    StreamErrorCondition::RemoteConnectionFailed,
                    format!("an upstream <{}/> in phase {name}", el.name()),
                );
            }
        }
    }

    /// SASL succeeded upstream: the upstream stream restarts after this
    /// element, when the browser restarts.
    fn authenticated(&mut self) {
        self.reset_pending = true;
        self.phase = Phase::AwaitRestart;
    }

    fn open_upstream(&mut self) {
        let header = StreamHeader {
            to: Some(self.config.domain.clone()),
            version: Some("1.0".into()),
            lang: Some("en".into()),
            ..StreamHeader::default()
        };
        if self
            .writer
            .write_header(&mut self.upstream_out, &header)
            .is_ok()
        {
            self.upstream_open = true;
        } else {
            self.fail(
                StreamErrorCondition::InternalServerError,
                "the domain cannot be written in a header".into(),
            );
        }
    }

    fn send_upstream(&mut self, el: &Element) {
        if self
            .writer
            .write_element(&mut self.upstream_out, el)
            .is_err()
        {
            self.fail(
                StreamErrorCondition::BadFormat,
                format!("a browser <{}/> that cannot be written", el.name()),
            );
        }
    }

    fn send_upstream_sasl(&mut self, el: &SaslElement) {
        if el.write_to(&self.writer, &mut self.upstream_out).is_err() {
            self.fail(
                StreamErrorCondition::InternalServerError,
                "a SASL element that cannot be written".into(),
            );
        }
    }

    fn send_browser_sasl(&mut self, el: SaslElement) {
        self.browser_out
            .push_back(BrowserOut::Element(el.to_element()));
    }

    fn close_upstream(&mut self) {
        if std::mem::take(&mut self.upstream_open) {
            self.writer.write_close(&mut self.upstream_out);
        }
    }

    /// Ends both streams: the browser gets `condition`, the upstream its
    /// close.
    fn fail(&mut self, condition: StreamErrorCondition, reason: String) {
        if self.is_closed() {
            return;
        }
        let name = condition.as_str();
        self.browser_out
            .push_back(BrowserOut::Close(Some(StreamError::new(condition))));
        self.close_upstream();
        self.finish(format!("{name}: {reason}"));
    }

    fn finish(&mut self, reason: String) {
        self.phase = Phase::Closed;
        self.deadline = None;
        self.context = None;
        self.events.push_back(SsoEvent::Closed { reason });
    }
}
