//! The connection manager end of BOSH (XEP-0124, XEP-0206): many
//! sessions, each keyed by an unpredictable `sid`.
//!
//! The host gives every HTTP request body to
//! [`BoshManager::handle_request`] and answers the HTTP request with what
//! the [`Reply`] says: at once, or later with the bytes
//! [`BoshManager::poll_response`] gives for its [`RequestHandle`]. Payloads
//! from clients come out as [`ManagerEvent`]s in `rid` order; the host
//! pushes payloads to a session with [`BoshManager::send`].

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::sid_map::SidMap;
use std::fmt;
use std::time::{Duration, Instant};

use minidom::Element;
use sha2::{Digest, Sha256};

use super::body::{terminate_bytes, Body, BodyError, BodyReader, BodyType, Condition, NS_HTTPBIND};
use super::BoshUsageError;
use crate::core::deadline;
use crate::ns;
use crate::random::RandomSource;
use crate::xml::{Limits, StreamWriter};

/// The connection manager's rules and limits.
#[derive(Debug, Clone)]
pub struct BoshManagerConfig {
    /// Longest `wait` granted, seconds (60).
    pub max_wait: u32,
    /// Most requests held per session (1); `requests` is `hold` + 1.
    pub max_hold: u32,
    /// `polling`: shortest interval between empty polls, seconds (5).
    pub polling: u32,
    /// `inactivity`: longest time without a held request, seconds (60).
    pub inactivity: u32,
    /// `maxpause`, seconds (120); `None`: pauses are refused.
    pub maxpause: Option<u32>,
    /// Most sessions at once (10,000); a creation request beyond is
    /// refused with `internal-server-error`.
    pub max_sessions: usize,
    /// Limits for reading a request body (the whole `<body/>`).
    pub limits: Limits,
    /// Payload bytes queued per session at most (1 MiB):
    /// [`BoshManager::send`] refuses more.
    pub max_queued_bytes: usize,
    /// Payload bytes in one response at most (64 KiB); one payload
    /// larger than this goes alone.
    pub max_response_bytes: usize,
    /// Creation requests without `to` are refused
    /// (`improper-addressing`) (true).
    pub require_to: bool,
    /// `secure` in the creation response (true: the manager is part of
    /// the server).
    pub secure: bool,
}

impl Default for BoshManagerConfig {
    fn default() -> Self {
        Self {
            max_wait: 60,
            max_hold: 1,
            polling: 5,
            inactivity: 60,
            maxpause: Some(120),
            max_sessions: 10_000,
            limits: Limits::default(),
            max_queued_bytes: 1024 * 1024,
            max_response_bytes: 64 * 1024,
            require_to: true,
            secure: true,
        }
    }
}

/// One HTTP request the manager answers later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestHandle(pub u64);

/// What the host does with an HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Answer with these bytes now (HTTP 200).
    Immediate(Vec<u8>),
    /// Keep the HTTP request open: its answer comes from
    /// [`BoshManager::poll_response`] (or it is dropped, see
    /// [`ManagerEvent::RequestDropped`]).
    Held(RequestHandle),
    /// Refused: answer with `body` now (a `type='terminate'` body with the
    /// error's condition). When the request belonged to a session, that
    /// session is over.
    Refused {
        /// Why.
        error: ManagerError,
        /// The answer.
        body: Vec<u8>,
    },
}

/// Why a request was refused or a session ended by the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManagerError {
    /// Not a valid `<body/>`.
    BadBody(BodyError),
    /// No `rid`.
    MissingRid,
    /// A `sid` no session has.
    UnknownSid,
    /// A `rid` beyond the window.
    RidOutOfWindow {
        /// The `rid`.
        rid: u64,
    },
    /// A retransmitted `rid` whose response is no longer cached: answered
    /// `item-not-found`, but the session goes on (a late copy of an old
    /// request cannot harm it, and a replay must not end it).
    ResponseGone {
        /// The `rid`.
        rid: u64,
    },
    /// More simultaneous requests than `requests` (XEP-0124 section 11).
    Overactivity,
    /// Empty requests more often than `polling` allows (sections 11, 12).
    PollingTooOften,
    /// A `pause` above `maxpause`, or with pauses off.
    PauseRefused {
        /// The requested pause.
        pause: u32,
    },
    /// The configured session limit is reached.
    TooManySessions,
    /// A creation request without `to`.
    MissingTo,
    /// The host ended the session; this is the terminate it left.
    Terminated,
}

impl ManagerError {
    /// The terminal binding condition the client gets.
    pub fn condition(&self) -> Condition {
        match self {
            Self::BadBody(e) => e.condition(),
            Self::MissingRid => Condition::BadRequest,
            Self::UnknownSid | Self::RidOutOfWindow { .. } | Self::ResponseGone { .. } => {
                Condition::ItemNotFound
            }
            Self::Overactivity | Self::PollingTooOften | Self::PauseRefused { .. } => {
                Condition::PolicyViolation
            }
            Self::TooManySessions => Condition::InternalServerError,
            Self::MissingTo => Condition::ImproperAddressing,
            Self::Terminated => Condition::UndefinedCondition,
        }
    }
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadBody(e) => write!(f, "{e}"),
            Self::MissingRid => f.write_str("request without rid"),
            Self::UnknownSid => f.write_str("unknown sid"),
            Self::RidOutOfWindow { rid } => write!(f, "rid {rid} is outside the window"),
            Self::ResponseGone { rid } => write!(f, "the response to rid {rid} is gone"),
            Self::Overactivity => f.write_str("too many simultaneous requests"),
            Self::PollingTooOften => f.write_str("polling too often"),
            Self::PauseRefused { pause } => write!(f, "pause of {pause} s refused"),
            Self::TooManySessions => f.write_str("too many sessions"),
            Self::MissingTo => f.write_str("session creation request without 'to'"),
            Self::Terminated => f.write_str("the session was terminated"),
        }
    }
}

impl std::error::Error for ManagerError {}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TerminateReason {
    /// The client sent `type='terminate'` (its payloads came before).
    Client,
    /// No request for longer than `inactivity` (or the pause).
    Inactivity,
    /// The client broke a rule; it got the error's condition.
    Error(ManagerError),
}

/// What the manager reports to its host.
#[derive(Debug, Clone, PartialEq)]
pub enum ManagerEvent {
    /// A new session: the host starts its XMPP stream for it and sends
    /// its `stream:features` with [`BoshManager::send`].
    SessionCreated {
        /// The session id.
        sid: String,
        /// `to`.
        to: Option<String>,
        /// `xml:lang`.
        lang: Option<String>,
        /// `xmpp:version` (XEP-0206); `None` for a plain BOSH client.
        version: Option<String>,
        /// `route`.
        route: Option<String>,
        /// `from`.
        from: Option<String>,
        /// `content`: the HTTP Content-Type every response of the
        /// session must carry (`text/xml; charset=utf-8` when `None`).
        content: Option<String>,
    },
    /// A payload from the client, in `rid` order.
    Payload {
        /// The session.
        sid: String,
        /// The element (in `jabber:client` when the client gave no
        /// namespace).
        element: Element,
    },
    /// `xmpp:restart='true'`: the client restarts its stream (after SASL
    /// success); the host sends the new features.
    Restart {
        /// The session.
        sid: String,
    },
    /// The session is over; its state is gone.
    Terminated {
        /// The session.
        sid: String,
        /// Why.
        reason: TerminateReason,
    },
    /// A held request whose `rid` came again (the client gave up on its
    /// HTTP request): the host closes it without an answer; the answer goes
    /// to the new one.
    RequestDropped {
        /// The dropped request.
        handle: RequestHandle,
    },
}

#[derive(Debug)]
struct Held {
    rid: u64,
    handle: RequestHandle,
    since: Instant,
    creation: bool,
}

#[derive(Debug)]
struct Pending {
    handle: RequestHandle,
    body: Body,
}

#[derive(Debug)]
struct Session {
    sid: String,
    wait: u32,
    hold: u32,
    requests: u32,
    /// The attributes of the creation response.
    creation: Body,
    /// The next `rid` to process (all below are processed).
    next_rid: u64,
    /// Requests above `next_rid`, waiting for the gap to fill.
    pending: BTreeMap<u64, Pending>,
    /// Processed requests waiting for their answer, in `rid` order.
    held: VecDeque<Held>,
    /// The last responses by `rid`, for retransmissions.
    cache: VecDeque<(u64, Vec<u8>)>,
    /// Serialised payloads for the client; whether each uses `stream:`.
    outbound: VecDeque<(Vec<u8>, bool)>,
    queued_bytes: usize,
    /// When the last response went (inactivity runs from it while no
    /// request is held).
    last_response: Instant,
    /// The inactivity period now (a pause changes it until the next
    /// request).
    inactivity: u32,
    /// When the last new request came, and whether it was empty.
    last_arrival: Option<(Instant, bool)>,
    /// The host ended the session: the answer for the next request.
    closing: Option<Vec<u8>>,
    /// The creation request's rid (its entry in `creations`).
    creation_rid: Option<u64>,
}

/// A BOSH connection manager (see the [module docs](self)).
pub struct BoshManager {
    config: BoshManagerConfig,
    rng: Box<dyn RandomSource>,
    sessions: SidMap<Session>,
    events: VecDeque<ManagerEvent>,
    ready: VecDeque<(RequestHandle, Vec<u8>)>,
    next_handle: u64,
    writer: StreamWriter,
    /// Each session's creation request: by its rid, the sid and a
    /// digest of its bytes. A creation request sent again (its answer
    /// lost, or a late copy) has no sid: this finds its session.
    creations: HashMap<u64, (String, [u8; 32])>,
    /// Reads the request bodies (one reader kept for all sessions).
    body_reader: BodyReader,
}

impl fmt::Debug for BoshManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoshManager")
            .field("sessions", &self.sessions.len())
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl BoshManager {
    /// A manager with `config`, its session ids from `rng`.
    pub fn new(config: BoshManagerConfig, rng: Box<dyn RandomSource>) -> Self {
        Self {
            config,
            rng,
            sessions: SidMap::default(),
            events: VecDeque::new(),
            ready: VecDeque::new(),
            next_handle: 0,
            writer: StreamWriter::new(NS_HTTPBIND),
            creations: HashMap::new(),
            body_reader: BodyReader::default(),
        }
    }

    /// Sessions alive.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Whether `sid` is a live session.
    pub fn has_session(&self, sid: &str) -> bool {
        self.sessions.contains_key(sid)
    }

    /// Payload bytes queued for `sid` and not yet in a response.
    pub fn queued_bytes(&self, sid: &str) -> Option<usize> {
        self.sessions.get(sid).map(|s| s.queued_bytes)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ManagerEvent> {
        self.events.pop_front()
    }

    /// The next answer to a held request.
    pub fn poll_response(&mut self) -> Option<(RequestHandle, Vec<u8>)> {
        self.ready.pop_front()
    }

    fn handle(&mut self) -> RequestHandle {
        self.next_handle += 1;
        RequestHandle(self.next_handle)
    }

    /// One HTTP request body, received at `now`.
    pub fn handle_request(&mut self, now: Instant, bytes: &[u8]) -> Reply {
        let mut body = match self.body_reader.parse(bytes, &self.config.limits) {
            Ok(b) => b,
            Err(e) => return refuse(ManagerError::BadBody(e)),
        };
        let Some(rid) = body.rid else {
            return refuse(ManagerError::MissingRid);
        };
        let sid = match body.sid.take() {
            Some(sid) => sid,
            None => {
                let digest: [u8; 32] = Sha256::digest(bytes).into();
                match self.creations.get(&rid) {
                    // The same creation request again: a retransmission.
                    Some((sid, d)) if *d == digest => sid.clone(),
                    _ => return self.create(now, rid, body, digest),
                }
            }
        };
        if !self.sessions.contains_key(&sid) {
            return refuse(ManagerError::UnknownSid);
        }
        let handle = self.handle();
        match self.on_request(now, &sid, rid, handle, body) {
            Ok(()) => self.reply_for(handle),
            Err(e @ ManagerError::ResponseGone { .. }) => {
                self.ready.retain(|(h, _)| *h != handle);
                refuse(e)
            }
            Err(e) => {
                let body = self
                    .sessions
                    .get(&sid)
                    .and_then(|s| s.closing.clone())
                    .unwrap_or_else(|| terminate_bytes(Some(e.condition())));
                self.end(&sid, Some(e.clone()), TerminateReason::Error(e.clone()));
                // The request itself gets the terminate now (it may have
                // been answered by `end` too: take that one back).
                self.ready.retain(|(h, _)| *h != handle);
                Reply::Refused { error: e, body }
            }
        }
    }

    /// The reply for a request just handled: its answer when it is
    /// ready already.
    fn reply_for(&mut self, handle: RequestHandle) -> Reply {
        match self.ready.iter().rposition(|(h, _)| *h == handle) {
            Some(i) => match self.ready.remove(i) {
                Some((_, bytes)) => Reply::Immediate(bytes),
                None => Reply::Held(handle),
            },
            None => Reply::Held(handle),
        }
    }

    fn create(&mut self, now: Instant, rid: u64, body: Body, digest: [u8; 32]) -> Reply {
        if self.sessions.len() >= self.config.max_sessions {
            return refuse(ManagerError::TooManySessions);
        }
        if self.config.require_to && body.to.as_deref().is_none_or(str::is_empty) {
            return refuse(ManagerError::MissingTo);
        }
        let c = &self.config;
        let wait = body.wait.unwrap_or(c.max_wait).min(c.max_wait);
        let hold = body.hold.unwrap_or(1).min(c.max_hold);
        let requests = hold + 1;
        let sid = loop {
            let mut raw = [0u8; 16];
            self.rng.fill(&mut raw);
            let sid: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            if !self.sessions.contains_key(&sid) {
                break sid;
            }
        };
        let ver = match body.ver.as_deref() {
            Some(v) if version_below(v, (1, 6)) => Some(v.to_owned()),
            _ => Some("1.6".to_owned()),
        };
        let creation = Body {
            sid: Some(sid.clone()),
            wait: Some(wait),
            hold: Some(hold),
            requests: Some(requests),
            polling: Some(c.polling),
            inactivity: Some(c.inactivity),
            maxpause: c.maxpause,
            ver,
            from: body.to.clone(),
            secure: Some(c.secure),
            xmpp_version: body.xmpp_version.as_ref().map(|_| "1.0".to_owned()),
            ..Body::default()
        };
        let handle = self.handle();
        let session = Session {
            sid: sid.clone(),
            wait,
            hold,
            requests,
            creation,
            next_rid: rid + 1,
            pending: BTreeMap::new(),
            held: VecDeque::from([Held {
                rid,
                handle,
                since: now,
                creation: true,
            }]),
            cache: VecDeque::new(),
            outbound: VecDeque::new(),
            queued_bytes: 0,
            last_response: now,
            inactivity: self.config.inactivity,
            last_arrival: Some((now, true)),
            closing: None,
            creation_rid: Some(rid),
        };
        self.creations.insert(rid, (sid.clone(), digest));
        self.events.push_back(ManagerEvent::SessionCreated {
            sid: sid.clone(),
            to: body.to,
            lang: body.lang,
            version: body.xmpp_version,
            route: body.route,
            from: body.from,
            content: body.content,
        });
        for element in body.payloads {
            self.events.push_back(ManagerEvent::Payload {
                sid: sid.clone(),
                element,
            });
        }
        self.sessions.insert(sid.clone(), session);
        self.flush(now, &sid);
        self.reply_for(handle)
    }

    fn on_request(
        &mut self,
        now: Instant,
        sid: &str,
        rid: u64,
        handle: RequestHandle,
        body: Body,
    ) -> Result<(), ManagerError> {
        let Some(s) = self.sessions.get_mut(sid) else {
            return Err(ManagerError::UnknownSid);
        };
        if s.closing.is_some() {
            return Err(ManagerError::Terminated);
        }
        if rid < s.next_rid {
            // A retransmission: the cached answer, or the held request
            // takes the new HTTP request.
            if let Some((_, bytes)) = s.cache.iter().find(|(r, _)| *r == rid) {
                self.ready.push_back((handle, bytes.clone()));
                return Ok(());
            }
            if let Some(h) = s.held.iter_mut().find(|h| h.rid == rid) {
                let old = std::mem::replace(&mut h.handle, handle);
                self.events
                    .push_back(ManagerEvent::RequestDropped { handle: old });
                return Ok(());
            }
            // Not terminal for the session (XEP-0124 section 14.3 says
            // terminate): an old copy of a request cannot harm it, the
            // client ignores an answer to a rid it has processed, and a
            // replay must not end a session.
            self.ready
                .push_back((handle, terminate_bytes(Some(Condition::ItemNotFound))));
            return Err(ManagerError::ResponseGone { rid });
        }
        let window = u64::from(s.requests) + 1;
        if rid - s.next_rid >= window {
            return Err(ManagerError::RidOutOfWindow { rid });
        }
        if let Some(p) = s.pending.get_mut(&rid) {
            let old = std::mem::replace(&mut p.handle, handle);
            self.events
                .push_back(ManagerEvent::RequestDropped { handle: old });
            return Ok(());
        }
        // A new request: overactivity and polling (XEP-0124 section 11).
        let special = body.pause.is_some() || body.is_terminate();
        let empty = body.payloads.is_empty() && !body.restart && !special;
        let unanswered = s.held.len() + s.pending.len() + 1;
        let requests = s.requests as usize;
        // The one extra request is the pause's or the terminate's, whether
        // it came first or overtook this one on another connection.
        let special_pending = s
            .pending
            .values()
            .any(|p| p.body.pause.is_some() || p.body.is_terminate());
        if unanswered > requests + 1 || (unanswered > requests && !special && !special_pending) {
            return Err(ManagerError::Overactivity);
        }
        let polling = Duration::from_secs(u64::from(self.config.polling));
        // "The last request" of the sequence is the newest rid, not the
        // last to arrive: an empty poll overtaken by a later request
        // is not the end of a polling sequence.
        let newest = s.pending.keys().next_back().is_none_or(|k| rid > *k);
        if let Some((last, last_empty)) = s.last_arrival.filter(|_| newest && empty) {
            let quick = now.saturating_duration_since(last) < polling;
            if quick && unanswered == requests && s.hold > 0 {
                return Err(ManagerError::PollingTooOften);
            }
            let in_order = rid == s.next_rid && s.pending.is_empty();
            if quick && last_empty && in_order && s.hold == 0 && s.held.is_empty() {
                return Err(ManagerError::PollingTooOften);
            }
        }
        s.last_arrival = Some((now, empty));
        if rid > s.next_rid {
            s.pending.insert(rid, Pending { handle, body });
            return Ok(());
        }
        self.process(now, sid, rid, handle, body)?;
        loop {
            let Some(s) = self.sessions.get_mut(sid) else {
                return Ok(());
            };
            let next = s.next_rid;
            let Some(p) = s.pending.remove(&next) else {
                return Ok(());
            };
            if let Err(e) = self.process(now, sid, next, p.handle, p.body) {
                // A buffered request that breaks a rule (a pause too
                // long) gets the terminate on its own HTTP request.
                let bytes = terminate_bytes(Some(e.condition()));
                self.ready.push_back((p.handle, bytes));
                return Err(e);
            }
        }
    }

    /// A request in `rid` order.
    fn process(
        &mut self,
        now: Instant,
        sid: &str,
        rid: u64,
        handle: RequestHandle,
        body: Body,
    ) -> Result<(), ManagerError> {
        let maxpause = self.config.maxpause;
        let inactivity = self.config.inactivity;
        let Some(s) = self.sessions.get_mut(sid) else {
            return Ok(());
        };
        s.next_rid = rid + 1;
        s.inactivity = inactivity;
        if let Some(pause) = body.pause {
            if maxpause.is_none_or(|m| pause > m) {
                return Err(ManagerError::PauseRefused { pause });
            }
            // Answer everything held, then the pause itself, empty.
            while !s.held.is_empty() {
                respond_oldest(s, now, &mut self.ready, self.config.max_response_bytes);
            }
            respond(
                s,
                now,
                &mut self.ready,
                rid,
                handle,
                false,
                Vec::new(),
                false,
                None,
            );
            s.inactivity = pause;
            return Ok(());
        }
        if body.restart {
            self.events.push_back(ManagerEvent::Restart {
                sid: sid.to_owned(),
            });
        }
        let terminate = body.is_terminate();
        for element in body.payloads {
            self.events.push_back(ManagerEvent::Payload {
                sid: sid.to_owned(),
                element,
            });
        }
        if terminate {
            while !s.held.is_empty() {
                respond_oldest(s, now, &mut self.ready, self.config.max_response_bytes);
            }
            let bytes = terminate_bytes(None);
            self.ready.push_back((handle, bytes));
            self.remove(sid, TerminateReason::Client);
            return Ok(());
        }
        s.held.push_back(Held {
            rid,
            handle,
            since: now,
            creation: false,
        });
        self.flush(now, sid);
        Ok(())
    }

    /// Answers held requests while there is data, and beyond `hold`.
    fn flush(&mut self, now: Instant, sid: &str) {
        let max = self.config.max_response_bytes;
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        while !s.held.is_empty() && (!s.outbound.is_empty() || s.held.len() > s.hold as usize) {
            respond_oldest(s, now, &mut self.ready, max);
        }
    }

    /// The XMPP stream id the creation response of `sid` gives as
    /// `authid` (XEP-0206), if that response has not gone yet: a host that
    /// answers with another machine's stream (a proxy relaying an
    /// upstream server's, say) sets it before its first
    /// [`send`](Self::send).
    pub fn set_authid(&mut self, sid: &str, authid: String) {
        if let Some(s) = self.sessions.get_mut(sid) {
            s.creation.authid = Some(authid);
        }
    }

    /// Queues a payload for the client of `sid` (stanzas,
    /// `stream:features`, SASL elements); it goes in the next response.
    pub fn send(&mut self, now: Instant, sid: &str, el: &Element) -> Result<(), BoshUsageError> {
        let Some(s) = self.sessions.get(sid) else {
            return Err(BoshUsageError::Closed);
        };
        if s.closing.is_some() {
            return Err(BoshUsageError::Closed);
        }
        let mut bytes = Vec::new();
        self.writer
            .write_element(&mut bytes, el)
            .map_err(BoshUsageError::Write)?;
        self.send_serialized(now, sid, bytes, el.has_ns(ns::STREAM))
            .map_err(|(e, _)| e)
    }

    /// Queues a payload already serialised as one complete element that
    /// declares its own namespaces (a role machine's message); `stream`:
    /// it uses the `stream:` prefix without declaring it. Refused, the
    /// bytes come back (a full queue: the caller keeps them for later).
    pub(crate) fn send_serialized(
        &mut self,
        now: Instant,
        sid: &str,
        bytes: Vec<u8>,
        stream: bool,
    ) -> Result<(), (BoshUsageError, Vec<u8>)> {
        let max = self.config.max_queued_bytes;
        let Some(s) = self.sessions.get_mut(sid) else {
            return Err((BoshUsageError::Closed, bytes));
        };
        if s.closing.is_some() {
            return Err((BoshUsageError::Closed, bytes));
        }
        if s.queued_bytes + bytes.len() > max {
            let queued = s.queued_bytes;
            return Err((BoshUsageError::Congested { queued, max }, bytes));
        }
        s.queued_bytes += bytes.len();
        s.outbound.push_back((bytes, stream));
        // `flush`, on the session already found.
        let max = self.config.max_response_bytes;
        while !s.held.is_empty() && (!s.outbound.is_empty() || s.held.len() > s.hold as usize) {
            respond_oldest(s, now, &mut self.ready, max);
        }
        Ok(())
    }

    /// Ends the session `sid` from the server's side: what is queued
    /// goes first, then `type='terminate'` with `condition`
    /// (`remote-stream-error` with the XMPP `stream_error`, for one). With
    /// no request held, the next request gets it.
    pub fn terminate(
        &mut self,
        now: Instant,
        sid: &str,
        condition: Option<Condition>,
        stream_error: Option<&Element>,
    ) -> Result<(), BoshUsageError> {
        let last = Body {
            kind: Some(BodyType::Terminate),
            condition,
            ..Body::default()
        };
        self.terminate_with(now, sid, last, stream_error)
    }

    /// Ends the session `sid` by sending the client elsewhere (XEP-0124
    /// section 17.3): what is queued goes first, then `type='terminate'`
    /// with `condition='see-other-uri'` and `<uri>uri</uri>`. A `uri`
    /// XML cannot carry is [`BoshUsageError::Write`], and the session
    /// goes on untouched.
    pub fn redirect(&mut self, now: Instant, sid: &str, uri: &str) -> Result<(), BoshUsageError> {
        let last = Body {
            kind: Some(BodyType::Terminate),
            condition: Some(Condition::SeeOtherUri),
            uri: Some(uri.to_owned()),
            ..Body::default()
        };
        self.terminate_with(now, sid, last, None)
    }

    /// The terminate `last`, after what is queued and `stream_error`.
    fn terminate_with(
        &mut self,
        now: Instant,
        sid: &str,
        last: Body,
        stream_error: Option<&Element>,
    ) -> Result<(), BoshUsageError> {
        let max = self.config.max_response_bytes;
        let Some(s) = self.sessions.get_mut(sid) else {
            return Err(BoshUsageError::Closed);
        };
        if s.closing.is_some() {
            return Err(BoshUsageError::Closed);
        }
        let mut tail = Vec::new();
        if let Some(e) = stream_error {
            self.writer
                .write_element(&mut tail, e)
                .map_err(BoshUsageError::Write)?;
        }
        // Every held request but the last takes queued data; the last
        // (or the next request) takes the rest and the terminate.
        while s.held.len() > 1 {
            respond_oldest(s, now, &mut self.ready, max);
        }
        let mut payloads = Vec::new();
        let mut stream_prefix = stream_error.is_some();
        for (bytes, stream) in s.outbound.drain(..) {
            payloads.extend_from_slice(&bytes);
            stream_prefix |= stream;
        }
        s.queued_bytes = 0;
        payloads.extend_from_slice(&tail);
        let mut bytes = Vec::new();
        last.write_framed(&mut bytes, &payloads, stream_prefix)
            .map_err(BoshUsageError::Write)?;
        if let Some(h) = s.held.pop_front() {
            // Requests buffered beyond a gap get the terminate too.
            for (_, p) in std::mem::take(&mut s.pending) {
                self.ready.push_back((p.handle, bytes.clone()));
            }
            self.ready.push_back((h.handle, bytes));
            self.remove(sid, TerminateReason::Error(ManagerError::Terminated));
        } else {
            s.closing = Some(bytes);
        }
        Ok(())
    }

    /// Ends `sid` because of `err`: every request it holds or buffers gets
    /// the terminate body.
    fn end(&mut self, sid: &str, err: Option<ManagerError>, reason: TerminateReason) {
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        let bytes = match &s.closing {
            Some(b) => b.clone(),
            None => terminate_bytes(err.as_ref().map(ManagerError::condition)),
        };
        for h in s.held.drain(..) {
            self.ready.push_back((h.handle, bytes.clone()));
        }
        for (_, p) in std::mem::take(&mut s.pending) {
            self.ready.push_back((p.handle, bytes.clone()));
        }
        self.remove(sid, reason);
    }

    fn remove(&mut self, sid: &str, reason: TerminateReason) {
        if let Some(s) = self.sessions.remove(sid) {
            if let Some(cr) = s.creation_rid {
                self.creations.remove(&cr);
            }
            // No request is left without an answer: whatever is still
            // held or buffered (requests past a client's terminate) gets
            // a bare terminate.
            let left = s.held.into_iter().map(|h| h.handle);
            let left = left.chain(s.pending.into_values().map(|p| p.handle));
            for handle in left {
                self.ready.push_back((handle, terminate_bytes(None)));
            }
            self.events.push_back(ManagerEvent::Terminated {
                sid: sid.to_owned(),
                reason,
            });
        }
    }

    /// The earliest deadline of any session: a held request due at
    /// `wait`, or inactivity.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions.values().filter_map(session_deadline).min()
    }

    /// Acts on the deadlines passed by `now`: held requests answered
    /// (empty) at `wait`, inactive sessions ended.
    pub fn handle_timeout(&mut self, now: Instant) {
        let max = self.config.max_response_bytes;
        let mut inactive = Vec::new();
        for s in self.sessions.values_mut() {
            let wait = Duration::from_secs(u64::from(s.wait));
            if let Some(last) = s.held.iter().rposition(|h| now >= deadline(h.since, wait)) {
                for _ in 0..=last {
                    respond_oldest(s, now, &mut self.ready, max);
                }
            }
            if s.held.is_empty() {
                let limit = Duration::from_secs(u64::from(s.inactivity));
                if now >= deadline(s.last_response, limit) {
                    inactive.push(s.sid.clone());
                }
            }
        }
        for sid in inactive {
            // Silently (XEP-0124 section 10): buffered requests are
            // answered with the terminate all the same.
            self.end(&sid, None, TerminateReason::Inactivity);
        }
    }
}

fn session_deadline(s: &Session) -> Option<Instant> {
    let wait = Duration::from_secs(u64::from(s.wait));
    match s.held.iter().map(|h| deadline(h.since, wait)).min() {
        Some(t) => Some(t),
        None => Some(deadline(
            s.last_response,
            Duration::from_secs(u64::from(s.inactivity)),
        )),
    }
}

fn refuse(error: ManagerError) -> Reply {
    let body = terminate_bytes(Some(error.condition()));
    Reply::Refused { error, body }
}

/// Answers the oldest held request with as much queued data as fits.
fn respond_oldest(
    s: &mut Session,
    now: Instant,
    ready: &mut VecDeque<(RequestHandle, Vec<u8>)>,
    max: usize,
) {
    let Some(h) = s.held.pop_front() else {
        return;
    };
    // The first message is the buffer the others join (one message, the
    // usual case, is not copied).
    let (mut payloads, mut stream_prefix) = match s.outbound.pop_front() {
        Some((bytes, stream)) => {
            s.queued_bytes -= bytes.len();
            (bytes, stream)
        }
        None => (Vec::new(), false),
    };
    while let Some((bytes, _)) = s.outbound.front() {
        if payloads.len() + bytes.len() > max {
            break;
        }
        let Some((bytes, stream)) = s.outbound.pop_front() else {
            break;
        };
        s.queued_bytes -= bytes.len();
        payloads.extend_from_slice(&bytes);
        stream_prefix |= stream;
    }
    respond(
        s,
        now,
        ready,
        h.rid,
        h.handle,
        h.creation,
        payloads,
        stream_prefix,
        None,
    );
}

#[allow(clippy::too_many_arguments)]
fn respond(
    s: &mut Session,
    now: Instant,
    ready: &mut VecDeque<(RequestHandle, Vec<u8>)>,
    rid: u64,
    handle: RequestHandle,
    creation: bool,
    payloads: Vec<u8>,
    stream_prefix: bool,
    kind: Option<BodyType>,
) {
    let mut body = if creation {
        s.creation.clone()
    } else {
        Body::default()
    };
    body.kind = kind;
    // Room for the start tag (with `xmlns:stream`) and the end tag.
    let mut bytes = Vec::with_capacity(payloads.len() + 160);
    if body
        .write_framed(&mut bytes, &payloads, stream_prefix)
        .is_err()
    {
        // The attributes are ours and the payloads were checked when
        // queued: cannot happen; the client still gets an answer.
        bytes = terminate_bytes(Some(Condition::InternalServerError));
    }
    s.cache.push_back((rid, bytes.clone()));
    // `requests` + 2: a client may have one request more than
    // `requests` out (a terminate), each possibly answered and lost.
    while s.cache.len() > s.requests as usize + 2 {
        s.cache.pop_front();
    }
    s.last_response = now;
    ready.push_back((handle, bytes));
}

/// Whether `v` (`major.minor`) is below `than`.
fn version_below(v: &str, than: (u32, u32)) -> bool {
    let Some((major, minor)) = v.split_once('.') else {
        return false;
    };
    match (major.parse::<u32>(), minor.parse::<u32>()) {
        (Ok(a), Ok(b)) => (a, b) < than,
        _ => false,
    }
}
