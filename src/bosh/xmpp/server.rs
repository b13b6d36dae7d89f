//! The connection manager end: a [`Server`] per session of a
//! [`BoshManager`].

use std::collections::VecDeque;

use crate::bosh::sid_map::{SidMap, SidSet};
use crate::bosh::BoshUsageError;
use std::sync::Arc;
use std::time::Instant;

use minidom::Element;

use super::{close_message, element_message, kind, parse, Kind, NotBoshFraming};
use crate::bosh::{
    BoshManager, BoshManagerConfig, Condition, ManagerEvent, Reply, RequestHandle, TerminateReason,
};
use crate::core::UsageError;
use crate::framing::Framing;
use crate::ns;
use crate::random::RandomSource;
use crate::server::{Server, ServerAnswer, ServerConfig, ServerEvent};
use crate::stream_error::StreamError;
use crate::tls::TlsInfo;
use crate::xml::StreamHeader;

/// What a [`BoshXmppServer`] reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BoshXmppServerEvent {
    /// A BOSH session was created and its `Server` started.
    Created {
        /// The session id.
        sid: String,
    },
    /// An event of the session's `Server` (requests to answer with
    /// [`BoshXmppServer::answer`], `Authenticated`, `Ready`, stanzas,
    /// `Error`, `Closed`...).
    Session {
        /// The session id.
        sid: String,
        /// The event.
        event: ServerEvent,
    },
    /// A held HTTP request to close without an answer (see
    /// [`ManagerEvent::RequestDropped`]).
    RequestDropped(RequestHandle),
    /// The BOSH session is over and its `Server` is gone.
    Ended {
        /// The session id.
        sid: String,
        /// Why.
        reason: TerminateReason,
    },
}

/// A session's `Server`, and what the adapter keeps for it.
struct Slot {
    server: Server,
    /// The creation's header (a restart repeats it).
    header: StreamHeader,
    /// The server's first header gave the `authid`.
    authid: bool,
    /// Messages the manager had no room for, oldest first.
    stalled: VecDeque<Vec<u8>>,
    /// `BoshManager::terminate` was called.
    terminated: bool,
}

/// Where each session's `Server` gets its randomness.
pub type SessionRandom = Box<dyn FnMut() -> Box<dyn RandomSource> + Send>;

/// A BOSH connection manager with an XMPP [`Server`] per session: one
/// object for the host's HTTP listener (see the [module docs](super)).
///
/// The host gives every HTTP request body to
/// [`handle_request`](Self::handle_request) and answers as the
/// [`Reply`] says (held requests with [`poll_response`](Self::poll_response)),
/// answers the servers' requests (credentials, bind...) by `sid` with
/// [`answer`](Self::answer), and waits for
/// [`poll_timeout`](Self::poll_timeout). The configuration is built once
/// (with [`Framing::Bosh`]) and shared by every session's `Server`.
pub struct BoshXmppServer {
    manager: BoshManager,
    config: Arc<ServerConfig>,
    session_random: SessionRandom,
    tls: Option<TlsInfo>,
    sessions: SidMap<Slot>,
    /// Sessions with output the manager had no room for.
    stalled: SidSet,
    events: VecDeque<BoshXmppServerEvent>,
}

impl std::fmt::Debug for BoshXmppServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoshXmppServer")
            .field("manager", &self.manager)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl BoshXmppServer {
    /// A manager with `bosh`'s rules (its `sid`s from `rng`) whose sessions
    /// each run a `Server` of `config` with randomness from
    /// `session_random`.
    pub fn new(
        config: Arc<ServerConfig>,
        bosh: BoshManagerConfig,
        rng: Box<dyn RandomSource>,
        session_random: SessionRandom,
    ) -> Result<Self, NotBoshFraming> {
        let framing = config.settings().framing;
        if framing != Framing::Bosh {
            return Err(NotBoshFraming(framing));
        }
        Ok(Self {
            manager: BoshManager::new(bosh, rng),
            config,
            session_random,
            tls: None,
            sessions: SidMap::default(),
            stalled: SidSet::default(),
            events: VecDeque::new(),
        })
    }

    /// The same, with the operating system's randomness everywhere.
    #[cfg(feature = "getrandom")]
    #[cfg_attr(docsrs, doc(cfg(feature = "getrandom")))]
    pub fn with_os_random(
        config: Arc<ServerConfig>,
        bosh: BoshManagerConfig,
    ) -> Result<Self, NotBoshFraming> {
        Self::new(
            config,
            bosh,
            Box::new(crate::OsRandom),
            Box::new(|| Box::new(crate::OsRandom)),
        )
    }

    /// The listener's TLS (`https`), given to every later session's
    /// `Server` with `direct_tls` (bring no channel-binding data: a BOSH
    /// session spans HTTP connections). `None`: plain HTTP.
    pub fn set_tls(&mut self, tls: Option<TlsInfo>) {
        self.tls = tls;
    }

    /// The BOSH manager (read it; commands go through this adapter).
    pub fn manager(&self) -> &BoshManager {
        &self.manager
    }

    /// The `Server` of `sid`, if the session is alive.
    pub fn server(&self, sid: &str) -> Option<&Server> {
        self.sessions.get(sid).map(|s| &s.server)
    }

    /// Sessions alive.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// One HTTP request body, received at `now` (see
    /// [`BoshManager::handle_request`]).
    pub fn handle_request(&mut self, now: Instant, body: &[u8]) -> Reply {
        let reply = self.manager.handle_request(now, body);
        self.pump(now);
        reply
    }

    /// The next answer to a held request.
    pub fn poll_response(&mut self) -> Option<(RequestHandle, Vec<u8>)> {
        self.manager.poll_response()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<BoshXmppServerEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline of the manager and of every session's
    /// `Server`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let servers = self
            .sessions
            .values()
            .filter_map(|s| s.server.poll_timeout());
        servers.chain(self.manager.poll_timeout()).min()
    }

    /// Acts on the deadlines passed by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.manager.handle_timeout(now);
        let due: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.server.poll_timeout().is_some_and(|t| now >= t))
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in due {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.server.handle_timeout(now);
            }
            self.pump_session(now, &sid);
        }
        self.pump(now);
    }

    /// Runs `f` on the `Server` of `sid` (any command: `answer_bind`,
    /// `send`, `close`...), then carries out what it queued. `None` when
    /// the session is gone.
    pub fn with_server<R>(
        &mut self,
        now: Instant,
        sid: &str,
        f: impl FnOnce(&mut Server) -> R,
    ) -> Option<R> {
        let r = f(&mut self.sessions.get_mut(sid)?.server);
        self.pump_session(now, sid);
        self.pump(now);
        Some(r)
    }

    /// Answers the pending request of `sid`'s `Server` (see
    /// [`Server::answer`]); [`UsageError::Closed`] when the session is
    /// gone.
    pub fn answer(
        &mut self,
        now: Instant,
        sid: &str,
        answer: impl Into<ServerAnswer>,
    ) -> Result<(), UsageError> {
        let answer = answer.into();
        self.with_server(now, sid, |s| s.answer(now, answer))
            .unwrap_or(Err(UsageError::Closed))
    }

    /// Sends a stanza to the client of `sid` (see [`Server::send`]).
    pub fn send(&mut self, now: Instant, sid: &str, stanza: &Element) -> Result<(), UsageError> {
        self.with_server(now, sid, |s| s.send(stanza))
            .unwrap_or(Err(UsageError::Closed))
    }

    /// Closes the stream of `sid`: the BOSH session is terminated.
    pub fn close(&mut self, now: Instant, sid: &str) {
        self.with_server(now, sid, |s| s.close(now));
    }

    /// Sends the client of `sid` to another connection manager (see
    /// [`Server::redirect`]): the BOSH session is terminated with
    /// `see-other-uri` and `uri`.
    pub fn redirect(&mut self, now: Instant, sid: &str, uri: &str) -> Result<(), UsageError> {
        self.with_server(now, sid, |s| s.redirect(now, uri))
            .unwrap_or(Err(UsageError::Closed))
    }

    /// Ends the stream of `sid` with a stream error: the BOSH session is
    /// terminated with `remote-stream-error` and the error.
    pub fn close_with_error(
        &mut self,
        now: Instant,
        sid: &str,
        error: StreamError,
    ) -> Result<(), UsageError> {
        self.with_server(now, sid, |s| s.close_with_error(error))
            .unwrap_or(Err(UsageError::Closed))
    }

    /// Carries out the manager's events until there are none, and moves
    /// stalled output where responses made room.
    fn pump(&mut self, now: Instant) {
        if !self.stalled.is_empty() {
            for sid in std::mem::take(&mut self.stalled) {
                self.pump_session(now, &sid);
            }
        }
        while let Some(ev) = self.manager.poll_event() {
            match ev {
                ManagerEvent::SessionCreated {
                    sid,
                    to,
                    lang,
                    version,
                    ..
                } => {
                    let mut server =
                        Server::with_random(self.config.clone(), (self.session_random)(), now);
                    if let Some(tls) = &self.tls {
                        server = server.direct_tls(tls.clone());
                    }
                    let header = StreamHeader {
                        to,
                        lang,
                        version,
                        ..StreamHeader::default()
                    };
                    self.sessions.insert(
                        sid.clone(),
                        Slot {
                            server,
                            header,
                            authid: false,
                            stalled: VecDeque::new(),
                            terminated: false,
                        },
                    );
                    self.events
                        .push_back(BoshXmppServerEvent::Created { sid: sid.clone() });
                    self.feed_header(now, &sid);
                }
                ManagerEvent::Restart { sid } => self.feed_header(now, &sid),
                ManagerEvent::Payload { sid, element } => {
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        // A closed server refuses input: nothing to do.
                        let _ = if element.is("error", ns::STREAM) {
                            match element_message(&element) {
                                Some(m) => s.server.feed_message(now, &m),
                                None => Ok(()),
                            }
                        } else {
                            s.server.feed_element(now, element)
                        };
                        self.pump_session(now, &sid);
                    }
                }
                ManagerEvent::Terminated { sid, reason } => {
                    if let Some(mut s) = self.sessions.remove(&sid) {
                        if !s.server.is_closed() {
                            let _ = s.server.feed_message(now, &close_message(None));
                        }
                        while let Some(event) = s.server.poll_event() {
                            self.events.push_back(BoshXmppServerEvent::Session {
                                sid: sid.clone(),
                                event,
                            });
                        }
                    }
                    self.events
                        .push_back(BoshXmppServerEvent::Ended { sid, reason });
                }
                ManagerEvent::RequestDropped { handle } => self
                    .events
                    .push_back(BoshXmppServerEvent::RequestDropped(handle)),
            }
        }
    }

    /// The creation's (or a restart's) header, fed to `sid`'s `Server`.
    fn feed_header(&mut self, now: Instant, sid: &str) {
        if let Some(s) = self.sessions.get_mut(sid) {
            let _ = s.server.feed_header(now, s.header.clone());
            self.pump_session(now, sid);
        }
    }

    /// Moves `sid`'s `Server` output to the manager and its events to the
    /// host.
    fn pump_session(&mut self, now: Instant, sid: &str) {
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        while let Some(event) = s.server.poll_event() {
            self.events.push_back(BoshXmppServerEvent::Session {
                sid: sid.to_owned(),
                event,
            });
        }
        loop {
            let Some(msg) = s.stalled.pop_front().or_else(|| s.server.poll_message()) else {
                return;
            };
            if s.terminated {
                continue; // nothing goes after the terminate
            }
            match kind(&msg) {
                Kind::Open => {
                    if !s.authid {
                        s.authid = true;
                        // The header it wrote, rather than the `<open/>`
                        // parsed.
                        if let Some(id) = s.server.take_first_header().and_then(|h| h.id) {
                            self.manager.set_authid(sid, id);
                        }
                    }
                }
                Kind::Element => {
                    match self.manager.send_serialized(now, sid, msg, false) {
                        Ok(()) => {}
                        Err((BoshUsageError::Congested { .. }, msg)) => {
                            // The client has to collect responses first:
                            // this and what follows wait in the server.
                            s.stalled.push_front(msg);
                            self.stalled.insert(sid.to_owned());
                            return;
                        }
                        // The session is over: dropped.
                        Err(_) => {}
                    }
                }
                Kind::StreamError => {
                    s.terminated = true;
                    let el = parse(&msg);
                    let _ = self.manager.terminate(
                        now,
                        sid,
                        Some(Condition::RemoteStreamError),
                        el.as_ref(),
                    );
                }
                Kind::Close => {
                    s.terminated = true;
                    // The machine's redirect (`Server::redirect`) is
                    // BOSH's `see-other-uri` terminate.
                    let uri = parse(&msg).and_then(|c| crate::framing::see_other_uri(&c));
                    let _ = match uri {
                        Some(uri) => self.manager.redirect(now, sid, &uri),
                        None => self.manager.terminate(now, sid, None, None),
                    };
                }
            }
        }
    }
}
