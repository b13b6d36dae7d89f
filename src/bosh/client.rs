//! The client end of a BOSH session (XEP-0124, XEP-0206).
//!
//! The host POSTs what [`BoshClient::poll_request`] gives, each on its own
//! HTTP request (up to `requests` at once), and feeds every response body
//! back with the `rid` it answers ([`BoshClient::handle_response`]). An
//! HTTP request that failed (connection reset, HTTP error, timeout) is
//! reported with [`BoshClient::request_failed`]: the same `rid` with the
//! same bytes comes out of `poll_request` again. Responses are processed
//! in `rid` order, whatever order they arrive in; a second response to one
//! `rid` is ignored.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use minidom::Element;

use super::body::{Body, BodyError, BodyReader, BodyType, Condition, MAX_RID, NS_HTTPBIND};
use super::BoshUsageError;
use crate::core::deadline;
use crate::ns;
use crate::random::RandomSource;
use crate::xml::{Limits, StreamWriter, WriteError};

/// What a [`BoshClient`] asks of its session.
#[derive(Debug, Clone)]
pub struct BoshClientConfig {
    /// The domain (`to`).
    pub to: String,
    /// `xml:lang`, if any.
    pub lang: Option<String>,
    /// `route` (`xmpp:host:port`), for a proxy connection manager.
    pub route: Option<String>,
    /// `from`: the user's JID, if the connection manager may know it.
    pub from: Option<String>,
    /// `wait`: the longest a request may be held, in seconds (60).
    pub wait: u32,
    /// `hold`: requests the connection manager may hold at once (1).
    pub hold: u32,
    /// Limits for reading response bodies.
    pub limits: Limits,
    /// A request still unanswered `wait` plus this margin after it was
    /// handed out is taken as lost and sent again (10 s).
    pub response_margin: Duration,
    /// How many times one `rid` may be sent (lost responses and
    /// recoverable binding errors together) before the session fails (4).
    pub max_attempts: u32,
    /// Payload bytes in one request body at most (64 KiB); one payload
    /// larger than this goes alone.
    pub max_body_bytes: usize,
    /// Payload bytes queued at most (1 MiB): [`BoshClient::send`] refuses
    /// more.
    pub max_queued_bytes: usize,
}

impl BoshClientConfig {
    /// The defaults for a session with `to`.
    pub fn new(to: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            lang: None,
            route: None,
            from: None,
            wait: 60,
            hold: 1,
            limits: Limits::default(),
            response_margin: Duration::from_secs(10),
            max_attempts: 4,
            max_body_bytes: 64 * 1024,
            max_queued_bytes: 1024 * 1024,
        }
    }
}

/// One HTTP request for the host to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoshRequest {
    /// Its `rid`: give it back with the response or the failure.
    pub rid: u64,
    /// The request body.
    pub body: Vec<u8>,
    /// Whether these exact bytes were handed out before (a
    /// retransmission after a lost response or a recoverable error).
    pub retransmission: bool,
}

/// What the connection manager granted in its session creation response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    /// The session id.
    pub sid: String,
    /// `wait`, seconds.
    pub wait: u32,
    /// `requests`: simultaneous requests allowed (`hold` + 1 when absent).
    pub requests: u32,
    /// `hold`.
    pub hold: u32,
    /// `polling`: shortest interval between empty polls, seconds.
    pub polling: Option<u32>,
    /// `inactivity`, seconds.
    pub inactivity: Option<u32>,
    /// `maxpause`, seconds.
    pub maxpause: Option<u32>,
    /// `ver`.
    pub ver: Option<String>,
    /// `from`.
    pub from: Option<String>,
    /// `secure`.
    pub secure: Option<bool>,
    /// `authid` (the XMPP stream id, deprecated).
    pub authid: Option<String>,
    /// `xmpp:version`.
    pub xmpp_version: Option<String>,
}

/// What a [`BoshClient`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum BoshClientEvent {
    /// The session creation response came.
    SessionCreated(SessionParams),
    /// `<stream:features/>` (after creation and after each restart).
    Features(Element),
    /// Any other payload, in order: stanzas, SASL elements, a
    /// `stream:error` outside a termination.
    Payload(Element),
    /// The session is over: `None` after the termination this client
    /// asked for, the reason otherwise.
    Terminated(Option<BoshClientError>),
}

/// Why a client session ended without asking to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BoshClientError {
    /// The connection manager terminated the session.
    Terminal {
        /// Its condition (`None`: a bare `type='terminate'`).
        condition: Option<Condition>,
        /// With `remote-stream-error`: the XMPP stream error, as a
        /// `stream:error` element (XEP-0124 section 17.2 wraps it, XEP-0206
        /// section 6 sends its children bare: both give one element).
        stream_error: Option<Element>,
    },
    /// `see-other-uri`: POST to this URI instead.
    SeeOtherUri(String),
    /// A response body that is not a valid `<body/>`.
    BadResponse(BodyError),
    /// The session creation response has no `sid`.
    MissingSid,
    /// One request was sent `max_attempts` times without an answer.
    RequestLost {
        /// Its `rid`.
        rid: u64,
    },
    /// A configured value (`to`, `lang`, `route`, `from`) that XML
    /// cannot carry: nothing was sent.
    Config(WriteError),
}

impl fmt::Display for BoshClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Terminal {
                condition: Some(c), ..
            } => write!(f, "the connection manager terminated the session: {c}"),
            Self::Terminal { .. } => f.write_str("the connection manager terminated the session"),
            Self::SeeOtherUri(uri) => write!(f, "the connection manager redirects to {uri}"),
            Self::BadResponse(e) => write!(f, "bad response: {e}"),
            Self::MissingSid => f.write_str("the session creation response has no sid"),
            Self::RequestLost { rid } => write!(f, "request {rid} got no answer"),
            Self::Config(e) => write!(f, "a configured value cannot be sent: {e}"),
        }
    }
}

impl std::error::Error for BoshClientError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Creating,
    Open,
    /// The terminate request is out.
    Terminating,
    Closed,
}

/// A request handed out and not yet answered (or answered out of order).
#[derive(Debug)]
struct Outstanding {
    rid: u64,
    bytes: Vec<u8>,
    /// When it was last handed out; `None`: to be handed out (again).
    sent: Option<Instant>,
    /// How many times it was handed out.
    attempts: u32,
    /// Its response, kept until the earlier ones came.
    response: Option<Body>,
}

#[derive(Debug)]
enum Item {
    /// A serialised payload; whether it uses the `stream:` prefix.
    Payload(Vec<u8>, bool),
    Restart,
    /// `pause` seconds (XEP-0124 section 10).
    Pause(u32),
}

/// A BOSH client session (see the [module docs](self)).
pub struct BoshClient {
    config: BoshClientConfig,
    state: State,
    next_rid: u64,
    params: Option<SessionParams>,
    outstanding: VecDeque<Outstanding>,
    queue: VecDeque<Item>,
    queued_bytes: usize,
    terminate_requested: bool,
    events: VecDeque<BoshClientEvent>,
    last_empty_sent: Option<Instant>,
    /// A pause went out: no empty polls until [`BoshClient::resume`] or
    /// a payload.
    paused: bool,
    error: Option<BoshClientError>,
    writer: StreamWriter,
    /// Reads the response bodies.
    body_reader: BodyReader,
}

impl fmt::Debug for BoshClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoshClient")
            .field("state", &self.state)
            .field("next_rid", &self.next_rid)
            .field("outstanding", &self.outstanding.len())
            .field("queued_bytes", &self.queued_bytes)
            .finish_non_exhaustive()
    }
}

/// The first `rid` is drawn from `[2^32, 2^52)`: unpredictable, and at
/// least 2^52 requests below [`MAX_RID`].
fn initial_rid(rng: &mut dyn RandomSource) -> u64 {
    let mut b = [0u8; 8];
    rng.fill(&mut b);
    let span = (1u64 << 52) - (1u64 << 32);
    (1u64 << 32) + u64::from_le_bytes(b) % span
}

impl BoshClient {
    /// A session for `config`, its first `rid` from `rng`; the creation
    /// request is the first [`poll_request`](Self::poll_request).
    pub fn new(config: BoshClientConfig, rng: &mut dyn RandomSource, _now: Instant) -> Self {
        let rid = initial_rid(rng);
        let mut client = Self {
            state: State::Creating,
            next_rid: rid + 1,
            params: None,
            outstanding: VecDeque::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            terminate_requested: false,
            events: VecDeque::new(),
            last_empty_sent: None,
            paused: false,
            error: None,
            writer: StreamWriter::new(NS_HTTPBIND),
            body_reader: BodyReader::releasing(),
            config,
        };
        let body = Body {
            rid: Some(rid),
            to: Some(client.config.to.clone()),
            lang: client.config.lang.clone(),
            route: client.config.route.clone(),
            from: client.config.from.clone(),
            ver: Some("1.6".into()),
            wait: Some(client.config.wait),
            hold: Some(client.config.hold),
            xmpp_version: Some("1.0".into()),
            ..Body::default()
        };
        match body.to_bytes() {
            Ok(bytes) => client.outstanding.push_back(Outstanding {
                rid,
                bytes,
                sent: None,
                attempts: 0,
                response: None,
            }),
            Err(e) => client.fail(BoshClientError::Config(e)),
        }
        client
    }

    /// The session's parameters, once created.
    pub fn params(&self) -> Option<&SessionParams> {
        self.params.as_ref()
    }

    /// The session id, once created.
    pub fn sid(&self) -> Option<&str> {
        self.params.as_ref().map(|p| p.sid.as_str())
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Why the session failed, if it did.
    pub fn error(&self) -> Option<&BoshClientError> {
        self.error.as_ref()
    }

    /// Requests handed out (or to be handed out again) and not answered.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Payload bytes queued and not yet in a request.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<BoshClientEvent> {
        self.events.pop_front()
    }

    /// Queues a payload (a stanza, a SASL element...) for the next
    /// request.
    pub fn send(&mut self, el: &Element) -> Result<(), BoshUsageError> {
        if self.state == State::Closed || self.terminate_requested {
            return Err(BoshUsageError::Closed);
        }
        let mut bytes = Vec::new();
        self.writer
            .write_element(&mut bytes, el)
            .map_err(BoshUsageError::Write)?;
        self.send_serialized(bytes, el.has_ns(ns::STREAM))
    }

    /// Whether `len` more payload bytes fit in the queue.
    pub(crate) fn has_room(&self, len: usize) -> bool {
        self.queued_bytes + len <= self.config.max_queued_bytes
    }

    /// Queues a payload already serialised as one complete element that
    /// declares its own namespaces (a role machine's message); `stream`:
    /// it uses the `stream:` prefix without declaring it.
    pub(crate) fn send_serialized(
        &mut self,
        bytes: Vec<u8>,
        stream: bool,
    ) -> Result<(), BoshUsageError> {
        if self.state == State::Closed || self.terminate_requested {
            return Err(BoshUsageError::Closed);
        }
        if self.queued_bytes + bytes.len() > self.config.max_queued_bytes {
            return Err(BoshUsageError::Congested {
                queued: self.queued_bytes,
                max: self.config.max_queued_bytes,
            });
        }
        self.queued_bytes += bytes.len();
        self.paused = false;
        self.queue.push_back(Item::Payload(bytes, stream));
        Ok(())
    }

    /// Asks for a stream restart (XEP-0206 section 5, after SASL
    /// success): a request of its own with `xmpp:restart='true'`, after
    /// the payloads queued before.
    pub fn restart(&mut self) -> Result<(), BoshUsageError> {
        if self.state == State::Closed || self.terminate_requested {
            return Err(BoshUsageError::Closed);
        }
        self.queue.push_back(Item::Restart);
        Ok(())
    }

    /// Asks the connection manager to pause the session for `seconds`
    /// (XEP-0124 section 10: a page about to unload): a request of its own
    /// with `pause`, after which this client sends no empty polls until
    /// [`resume`](Self::resume) or the next payload. Refused (nothing
    /// queued) when the manager gave no `maxpause` or a smaller one.
    pub fn pause(&mut self, seconds: u32) -> Result<(), BoshUsageError> {
        if self.state != State::Open || self.terminate_requested {
            return Err(BoshUsageError::Closed);
        }
        let max = self.params.as_ref().and_then(|p| p.maxpause);
        if max.is_none_or(|m| seconds > m) {
            return Err(BoshUsageError::PauseNotAllowed { maxpause: max });
        }
        self.queue.push_back(Item::Pause(seconds));
        Ok(())
    }

    /// Ends a pause: empty polls resume.
    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Ends the session: a `type='terminate'` request carrying what is
    /// queued and `last` (an unavailable presence, say).
    pub fn terminate(&mut self, last: &[Element]) -> Result<(), BoshUsageError> {
        for el in last {
            self.send(el)?;
        }
        if self.state == State::Closed || self.terminate_requested {
            return Err(BoshUsageError::Closed);
        }
        self.terminate_requested = true;
        Ok(())
    }

    /// The next request to POST, if one may go now: a retransmission
    /// first, then queued payloads, a restart or the termination, then an
    /// empty poll when fewer than `hold` requests are out.
    pub fn poll_request(&mut self, now: Instant) -> Option<BoshRequest> {
        if self.state == State::Closed {
            return None;
        }
        if let Some(o) = self.outstanding.iter_mut().find(|o| o.sent.is_none()) {
            o.sent = Some(now);
            o.attempts += 1;
            return Some(BoshRequest {
                rid: o.rid,
                body: o.bytes.clone(),
                retransmission: o.attempts > 1,
            });
        }
        if self.state != State::Open {
            return None;
        }
        let (requests, hold) = {
            let p = self.params.as_ref()?;
            (p.requests.max(1) as usize, p.hold as usize)
        };
        let out = self.outstanding.len();
        let restart_next = matches!(self.queue.front(), Some(Item::Restart));
        let pause_next = match self.queue.front() {
            Some(Item::Pause(p)) => Some(*p),
            _ => None,
        };
        let mut body = Body::default();
        let mut payloads = Vec::new();
        let mut stream_prefix = false;
        if let Some(pause) = pause_next {
            // One request more than `requests` is allowed to pause
            // (XEP-0124 section 11); it carries no payload.
            if out > requests {
                return None;
            }
            self.queue.pop_front();
            body.pause = Some(pause);
            self.paused = true;
        } else if restart_next {
            if out >= requests {
                return None;
            }
            self.queue.pop_front();
            body.restart = true;
            body.to = Some(self.config.to.clone());
            body.lang = self.config.lang.clone();
        } else if self.terminate_requested
            && !self
                .queue
                .iter()
                .any(|i| matches!(i, Item::Restart | Item::Pause(_)))
        {
            // One request more than `requests` is allowed to terminate
            // (XEP-0124 section 11).
            if out > requests {
                return None;
            }
            while let Some(Item::Payload(bytes, stream)) = self.queue.pop_front() {
                self.queued_bytes -= bytes.len();
                payloads.extend_from_slice(&bytes);
                stream_prefix |= stream;
            }
            body.kind = Some(BodyType::Terminate);
            self.state = State::Terminating;
        } else if !self.queue.is_empty() {
            if out >= requests {
                return None;
            }
            // The first payload is the buffer the others join (one, the
            // usual case, is not copied).
            if let Some(Item::Payload(..)) = self.queue.front() {
                if let Some(Item::Payload(bytes, stream)) = self.queue.pop_front() {
                    self.queued_bytes -= bytes.len();
                    payloads = bytes;
                    stream_prefix = stream;
                }
            }
            while let Some(Item::Payload(bytes, _)) = self.queue.front() {
                if !payloads.is_empty() && payloads.len() + bytes.len() > self.config.max_body_bytes
                {
                    break;
                }
                let Some(Item::Payload(bytes, stream)) = self.queue.pop_front() else {
                    break;
                };
                self.queued_bytes -= bytes.len();
                payloads.extend_from_slice(&bytes);
                stream_prefix |= stream;
            }
        } else {
            // An empty poll keeps `hold` requests at the connection
            // manager; a polling session (hold 0) polls every `polling`
            // seconds instead.
            let due = if self.paused {
                false
            } else if hold == 0 {
                out == 0 && self.polling_due().is_none_or(|t| now >= t)
            } else {
                out < hold.min(requests)
            };
            if !due {
                return None;
            }
            self.last_empty_sent = Some(now);
        }
        let rid = self.next_rid;
        if rid > MAX_RID {
            self.fail(BoshClientError::RequestLost { rid });
            return None;
        }
        body.rid = Some(rid);
        // The session's sid, lent to the body while it is written (not
        // copied for every request).
        let params = self.params.as_mut()?;
        body.sid = Some(std::mem::take(&mut params.sid));
        // Room for the start tag (`rid`, `sid`, a restart's `to`...).
        let mut bytes = Vec::with_capacity(payloads.len() + 192);
        let written = body.write_framed(&mut bytes, &payloads, stream_prefix);
        params.sid = body.sid.take().unwrap_or_default();
        if let Err(e) = written {
            // Only the configured `to`/`lang` can fail here.
            self.fail(BoshClientError::Config(e));
            return None;
        }
        self.next_rid += 1;
        self.outstanding.push_back(Outstanding {
            rid,
            bytes: bytes.clone(),
            sent: Some(now),
            attempts: 1,
            response: None,
        });
        Some(BoshRequest {
            rid,
            body: bytes,
            retransmission: false,
        })
    }

    /// When the next empty poll of a polling session may go.
    fn polling_due(&self) -> Option<Instant> {
        let polling = self.params.as_ref()?.polling?;
        self.last_empty_sent
            .map(|t| deadline(t, Duration::from_secs(u64::from(polling))))
    }

    fn wait(&self) -> Duration {
        let wait = self.params.as_ref().map_or(self.config.wait, |p| p.wait);
        Duration::from_secs(u64::from(wait)).saturating_add(self.config.response_margin)
    }

    /// The earliest deadline: a held request given up for lost, or the
    /// next poll of a polling session.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let wait = self.wait();
        let lost = self
            .outstanding
            .iter()
            .filter(|o| o.response.is_none())
            .filter_map(|o| o.sent.map(|t| deadline(t, wait)))
            .min();
        let poll = match &self.params {
            Some(p) if p.hold == 0 && self.state == State::Open && self.outstanding.is_empty() => {
                self.polling_due()
            }
            _ => None,
        };
        [lost, poll].into_iter().flatten().min()
    }

    /// Acts on the deadlines passed by `now`: a request held past `wait`
    /// plus the margin is sent again (the host abandons the old HTTP
    /// request; a late answer to it is still taken).
    pub fn handle_timeout(&mut self, now: Instant) {
        let wait = self.wait();
        let late: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|o| o.response.is_none())
            .filter(|o| o.sent.is_some_and(|t| now >= deadline(t, wait)))
            .map(|o| o.rid)
            .collect();
        for rid in late {
            self.lost(rid);
        }
    }

    /// The HTTP request for `rid` failed without a response: it will be
    /// handed out again, the same bytes with the same `rid`.
    pub fn request_failed(&mut self, _now: Instant, rid: u64) {
        self.lost(rid);
    }

    fn lost(&mut self, rid: u64) {
        if self.state == State::Closed {
            return;
        }
        let max = self.config.max_attempts.max(1);
        let Some(o) = self
            .outstanding
            .iter_mut()
            .find(|o| o.rid == rid && o.response.is_none() && o.sent.is_some())
        else {
            return;
        };
        if o.attempts >= max {
            return self.fail(BoshClientError::RequestLost { rid });
        }
        o.sent = None;
    }

    /// The response body to the request `rid`. A response to a `rid`
    /// already answered (or never sent) is ignored. An error ends the
    /// session (a `Terminated` event follows too).
    pub fn handle_response(
        &mut self,
        _now: Instant,
        rid: u64,
        bytes: &[u8],
    ) -> Result<(), BoshClientError> {
        if self.state == State::Closed {
            return Ok(());
        }
        let Some(idx) = self
            .outstanding
            .iter()
            .position(|o| o.rid == rid && o.response.is_none())
        else {
            return Ok(());
        };
        let body = match self.body_reader.parse(bytes, &self.config.limits) {
            Ok(b) => b,
            Err(e) => {
                let e = BoshClientError::BadResponse(e);
                self.fail(e.clone());
                return Err(e);
            }
        };
        if body.kind == Some(BodyType::Error) {
            // Recoverable (XEP-0124 section 17.3): this request and every
            // earlier unanswered one go again, unchanged.
            let earlier: Vec<u64> = self
                .outstanding
                .iter()
                .take(idx + 1)
                .filter(|o| o.response.is_none() && o.sent.is_some())
                .map(|o| o.rid)
                .collect();
            for r in earlier {
                self.lost(r);
            }
            return match &self.error {
                Some(e) => Err(e.clone()),
                None => Ok(()),
            };
        }
        self.outstanding[idx].response = Some(body);
        while self
            .outstanding
            .front()
            .is_some_and(|o| o.response.is_some())
        {
            let Some(body) = self.outstanding.pop_front().and_then(|o| o.response) else {
                break;
            };
            self.process(body);
            if self.state == State::Closed {
                break;
            }
        }
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn process(&mut self, body: Body) {
        if self.state == State::Creating && !body.is_terminate() {
            let Some(sid) = body.sid.clone() else {
                return self.fail(BoshClientError::MissingSid);
            };
            let hold = body.hold.unwrap_or(self.config.hold).min(self.config.hold);
            let params = SessionParams {
                sid,
                wait: body.wait.unwrap_or(self.config.wait).min(self.config.wait),
                requests: body.requests.unwrap_or(hold + 1).max(1),
                hold,
                polling: body.polling,
                inactivity: body.inactivity,
                maxpause: body.maxpause,
                ver: body.ver.clone(),
                from: body.from.clone(),
                secure: body.secure,
                authid: body.authid.clone(),
                xmpp_version: body.xmpp_version.clone(),
            };
            self.params = Some(params.clone());
            self.state = State::Open;
            self.events
                .push_back(BoshClientEvent::SessionCreated(params));
        }
        let terminate = body.is_terminate();
        let mut stream_error = None;
        let mut error_children = Vec::new();
        for p in body.payloads {
            if p.is("features", ns::STREAM) {
                self.events.push_back(BoshClientEvent::Features(p));
            } else if terminate && p.is("error", ns::STREAM) {
                stream_error = Some(p);
            } else if terminate && p.has_ns(ns::STREAM_ERRORS) {
                error_children.push(p);
            } else if terminate
                && body.condition == Some(Condition::RemoteStreamError)
                && !error_children.is_empty()
            {
                // An application condition after the bare stream error
                // children (XEP-0206 section 6).
                error_children.push(p);
            } else {
                self.events.push_back(BoshClientEvent::Payload(p));
            }
        }
        if !terminate {
            return;
        }
        if stream_error.is_none() && !error_children.is_empty() {
            let mut el = Element::bare("error", ns::STREAM);
            for c in error_children {
                el.append_child(c);
            }
            stream_error = Some(el);
        }
        let err = match (self.state, body.condition) {
            (State::Terminating, None) => None,
            (_, Some(Condition::SeeOtherUri)) => Some(match body.uri {
                Some(uri) => BoshClientError::SeeOtherUri(uri),
                None => BoshClientError::Terminal {
                    condition: Some(Condition::SeeOtherUri),
                    stream_error: None,
                },
            }),
            (_, condition) => Some(BoshClientError::Terminal {
                condition,
                stream_error,
            }),
        };
        match err {
            None => self.close(None),
            Some(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: BoshClientError) {
        if self.state == State::Closed {
            return;
        }
        self.error = Some(e.clone());
        self.close(Some(e));
    }

    fn close(&mut self, e: Option<BoshClientError>) {
        self.state = State::Closed;
        self.outstanding.clear();
        self.queue.clear();
        self.queued_bytes = 0;
        self.events.push_back(BoshClientEvent::Terminated(e));
    }
}
