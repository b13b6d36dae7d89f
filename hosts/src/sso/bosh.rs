//! The browser side over BOSH (XEP-0124, XEP-0206): the core's
//! [`BoshManager`] with one [`SsoSession`] per BOSH session, each bound
//! to the principal whose request created it.
//!
//! The host reads every HTTP request whole (its body included) and asks
//! [`SsoBosh::access`] first: a request for an SSO session must carry a
//! Negotiate token of the same principal (none: `401`, so the browser
//! retries with one; another principal: `403`), and a new session needs
//! one unless the page asked for none. A challenged request never reaches
//! the manager, so its `rid` is not consumed: the browser's retry with the
//! token is the same request. Then [`SsoBosh::handle_request`] with the
//! principal and, when the token delegated a credential, an initiator
//! context made from it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use xmpp_sansio::bosh::{
    Body, BoshManager, BoshManagerConfig, Condition, ManagerEvent, Reply, RequestHandle,
};
use xmpp_sansio::sasl::gssapi::GssContext;
use xmpp_sansio::RandomSource;

use super::session::{BrowserIn, BrowserOut, SsoEvent, SsoSession};
use super::SsoConfig;

/// What to do with an HTTP request before the manager sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Handle it ([`SsoBosh::handle_request`]).
    Pass,
    /// `401` with `WWW-Authenticate: Negotiate`: no token, and one is
    /// needed.
    Challenge,
    /// `403`: the session belongs to another principal.
    Forbidden,
}

/// What the host hears of the BOSH sessions.
#[derive(Debug, Clone, PartialEq)]
pub enum BoshEvent {
    /// A new session: the host connects to the upstream server for it
    /// (its first bytes are in [`SsoBosh::poll_upstream`]).
    Created {
        /// The session id.
        sid: String,
    },
    /// A session's event ([`SsoEvent::Closed`]: the host writes what
    /// [`SsoBosh::poll_upstream`] still has, closes the upstream
    /// connection and calls [`SsoBosh::forget`]).
    Session {
        /// The session id.
        sid: String,
        /// The event.
        event: SsoEvent,
    },
    /// A held request was replaced by a retransmission: close it
    /// unanswered.
    RequestDropped(RequestHandle),
}

struct Entry {
    session: SsoSession,
    /// The principal the session is bound to (`None`: no SSO).
    principal: Option<String>,
}

/// Who made a request: the principal of its Negotiate token, and the
/// context made from the credential it delegated.
type Caller = (Option<String>, Option<Box<dyn GssContext>>);

/// The BOSH connection manager of the proxy (see the module docs).
pub struct SsoBosh {
    cm: BoshManager,
    config: Arc<SsoConfig>,
    sessions: HashMap<String, Entry>,
    events: VecDeque<BoshEvent>,
    /// The caller of the request being handled, for a session it creates.
    creating: Option<Caller>,
    /// The session the last request created.
    created_last: Option<String>,
}

impl std::fmt::Debug for SsoBosh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoBosh")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// The `sid` of a request body, if it has one and parses.
fn sid_of(body: &[u8], config: &SsoConfig) -> Option<String> {
    Body::parse(body, &config.limits).ok().and_then(|b| b.sid)
}

impl SsoBosh {
    /// A manager with `rules` (its `max_sessions` is the session cap),
    /// session ids from `rng`.
    pub fn new(
        config: Arc<SsoConfig>,
        rules: BoshManagerConfig,
        rng: Box<dyn RandomSource>,
    ) -> Self {
        SsoBosh {
            cm: BoshManager::new(rules, rng),
            config,
            sessions: HashMap::new(),
            events: VecDeque::new(),
            creating: None,
            created_last: None,
        }
    }

    /// Sessions alive (closed ones the host has not forgotten included).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The ids of the sessions alive.
    pub fn session_ids(&self) -> Vec<String> {
        self.sessions.keys().cloned().collect()
    }

    /// The session the last [`handle_request`](Self::handle_request)
    /// created, if it created one.
    pub fn created_last(&self) -> Option<&str> {
        self.created_last.as_deref()
    }

    /// The session `sid`, if any.
    pub fn session(&self, sid: &str) -> Option<&SsoSession> {
        self.sessions.get(sid).map(|e| &e.session)
    }

    /// Whether a request with `body`, authenticated as `principal` (or
    /// not), may be handled. `without_sso`: the page asked for a session
    /// without single sign-on (for a browser that cannot do Negotiate).
    pub fn access(&self, body: &[u8], principal: Option<&str>, without_sso: bool) -> Access {
        match sid_of(body, &self.config) {
            Some(sid) => match self.sessions.get(&sid).map(|e| e.principal.as_deref()) {
                // Unknown: the manager answers it (item-not-found).
                None | Some(None) => Access::Pass,
                Some(Some(owner)) => match principal {
                    Some(p) if p == owner => Access::Pass,
                    Some(_) => Access::Forbidden,
                    None => Access::Challenge,
                },
            },
            None if principal.is_some() || without_sso => Access::Pass,
            None => Access::Challenge,
        }
    }

    /// One HTTP request body that [`access`](Self::access) let through,
    /// at `now`, from `principal` with the context made from the
    /// credential its token delegated, if any. Answer as the [`Reply`]
    /// says; held answers come from
    /// [`poll_response`](Self::poll_response).
    pub fn handle_request(
        &mut self,
        now: Instant,
        body: &[u8],
        principal: Option<&str>,
        credential: Option<Box<dyn GssContext>>,
    ) -> Reply {
        match sid_of(body, &self.config) {
            Some(sid) => {
                if let (Some(e), Some(c)) = (self.sessions.get_mut(&sid), credential) {
                    e.session.set_credential(c);
                }
            }
            None => self.creating = Some((principal.map(str::to_owned), credential)),
        }
        self.created_last = None;
        let reply = self.cm.handle_request(now, body);
        self.pump(now, None);
        self.creating = None;
        reply
    }

    /// The next answer to a held request.
    pub fn poll_response(&mut self) -> Option<(RequestHandle, Vec<u8>)> {
        self.cm.poll_response()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<BoshEvent> {
        self.events.pop_front()
    }

    /// Appends the bytes to write to `sid`'s upstream connection.
    pub fn poll_upstream(&mut self, sid: &str, buf: &mut Vec<u8>) -> usize {
        self.sessions
            .get_mut(sid)
            .map_or(0, |e| e.session.poll_upstream(buf))
    }

    /// Bytes from `sid`'s upstream connection.
    pub fn feed_upstream(&mut self, now: Instant, sid: &str, data: &[u8]) {
        self.with(now, sid, |s| s.feed_upstream(data));
    }

    /// `sid`'s upstream TLS handshake is done.
    pub fn tls_established(&mut self, now: Instant, sid: &str) {
        self.with(now, sid, SsoSession::tls_established);
    }

    /// `sid`'s upstream connection ended or failed.
    pub fn upstream_gone(&mut self, now: Instant, sid: &str, why: &str) {
        self.with(now, sid, |s| s.upstream_gone(why));
    }

    /// Drops a closed session's state (after [`SsoEvent::Closed`]).
    pub fn forget(&mut self, sid: &str) {
        self.sessions.remove(sid);
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|e| e.session.poll_timeout())
            .chain(self.cm.poll_timeout())
            .min()
    }

    /// The clock reached [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.cm.poll_timeout().is_some_and(|t| t <= now) {
            self.cm.handle_timeout(now);
        }
        let due: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.session.poll_timeout().is_some_and(|t| t <= now))
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in &due {
            if let Some(e) = self.sessions.get_mut(sid) {
                e.session.handle_timeout(now);
            }
        }
        self.pump(now, None);
        for sid in due {
            self.pump(now, Some(sid));
        }
    }

    fn with(&mut self, now: Instant, sid: &str, f: impl FnOnce(&mut SsoSession)) {
        if let Some(e) = self.sessions.get_mut(sid) {
            f(&mut e.session);
            self.pump(now, Some(sid.to_owned()));
        }
    }

    /// Moves everything between the manager and the sessions until
    /// nothing moves: the manager's events into the sessions, the
    /// sessions' browser output into the manager.
    fn pump(&mut self, now: Instant, touched: Option<String>) {
        let mut touched: BTreeSet<String> = touched.into_iter().collect();
        loop {
            while let Some(ev) = self.cm.poll_event() {
                match ev {
                    ManagerEvent::SessionCreated { sid, to, .. } => {
                        let (principal, credential) = self.creating.take().unwrap_or_default();
                        let user = principal.as_deref().map(|p| self.config.user(p));
                        let mut session =
                            SsoSession::new(self.config.clone(), user, to.as_deref(), now);
                        if let Some(c) = credential {
                            session.set_credential(c);
                        }
                        self.sessions
                            .insert(sid.clone(), Entry { session, principal });
                        self.events
                            .push_back(BoshEvent::Created { sid: sid.clone() });
                        self.created_last = Some(sid.clone());
                        touched.insert(sid);
                    }
                    ManagerEvent::Payload { sid, element } => {
                        self.browser(&sid, BrowserIn::Element(element));
                        touched.insert(sid);
                    }
                    ManagerEvent::Restart { sid } => {
                        self.browser(&sid, BrowserIn::Restart);
                        touched.insert(sid);
                    }
                    ManagerEvent::Terminated { sid, .. } => {
                        self.browser(&sid, BrowserIn::Close);
                        touched.insert(sid);
                    }
                    ManagerEvent::RequestDropped { handle } => {
                        self.events.push_back(BoshEvent::RequestDropped(handle));
                    }
                }
            }
            if touched.is_empty() {
                return;
            }
            for sid in std::mem::take(&mut touched) {
                self.drain(now, &sid);
            }
        }
    }

    fn browser(&mut self, sid: &str, input: BrowserIn) {
        if let Some(e) = self.sessions.get_mut(sid) {
            e.session.browser(input);
        }
    }

    /// `sid`'s output to the manager, its events to the host.
    fn drain(&mut self, now: Instant, sid: &str) {
        let Some(e) = self.sessions.get_mut(sid) else {
            return;
        };
        while let Some(out) = e.session.poll_browser() {
            match out {
                BrowserOut::Open { id } => {
                    if let Some(id) = id {
                        self.cm.set_authid(sid, id);
                    }
                }
                BrowserOut::Element(el) => {
                    if let Err(err) = self.cm.send(now, sid, &el) {
                        // Congested or gone: the browser is not reading.
                        e.session.upstream_gone(&format!("browser side: {err}"));
                    }
                }
                BrowserOut::Close(error) => {
                    let el = error.as_ref().map(|e| e.to_element());
                    let condition = el.as_ref().map(|_| Condition::RemoteStreamError);
                    let _ = self.cm.terminate(now, sid, condition, el.as_ref());
                }
            }
        }
        while let Some(event) = e.session.poll_event() {
            self.events.push_back(BoshEvent::Session {
                sid: sid.to_owned(),
                event,
            });
        }
    }
}
