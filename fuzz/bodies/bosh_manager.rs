//! Fuzz body for the BOSH connection manager (`xmpp_sansio::bosh::BoshManager`),
//! shared by the cargo-fuzz target (`fuzz/fuzz_targets/bosh_manager.rs`)
//! and the seed-corpus test (`tests/fuzz_bosh.rs`).
//!
//! The input is a script: each operation is a byte (its low three bits
//! choose it) and its arguments, the bytes after it:
//!
//! - `0 len bytes...`: a raw HTTP body of `len` bytes;
//! - `1 rid hold wait`: a session creation request (rid small, so that
//!   creations collide and are sent again);
//! - `2 session delta flags`: a request of a known session, its rid
//!   `delta` (signed) from the session's highest, with a message, a pause,
//!   a restart or a terminate as `flags` say;
//! - `3 session`: the host sends a message to a session;
//! - `4 seconds`: time passes, deadlines are handled;
//! - `5 session condition`: the host terminates a session;
//! - `6 session`: the same request of a session sent again (its last).
//!
//! A broken invariant is a panic:
//!
//! - nothing panics;
//! - every reply and response is a `<body/>` that parses; a refusal is a
//!   `type='terminate'` with the error's condition;
//! - a held request is answered at most once, and only if it is held (a
//!   dropped one never);
//! - at most `max_sessions` sessions, and queued bytes within the limit;
//! - at the end, with time run far past every deadline, every session is
//!   gone and every held request was answered or dropped.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use xmpp_sansio::bosh::{
    Body, BodyType, BoshManager, BoshManagerConfig, Condition, ManagerError, ManagerEvent, Reply,
    RequestHandle,
};
use xmpp_sansio::xml::Limits;
use xmpp_sansio::DeterministicRandom;

const MAX_SESSIONS: usize = 4;
const MAX_QUEUED: usize = 2048;

fn config() -> BoshManagerConfig {
    BoshManagerConfig {
        max_hold: 2,
        max_sessions: MAX_SESSIONS,
        max_queued_bytes: MAX_QUEUED,
        max_response_bytes: 512,
        limits: Limits {
            max_element_bytes: 4096,
            max_depth: 16,
            max_attributes: 32,
            max_token_bytes: 1024,
            max_element_heap: 4 * 4096,
        },
        ..BoshManagerConfig::default()
    }
}

struct Harness {
    cm: BoshManager,
    now: Instant,
    /// Live sessions: sid, highest rid sent, last request.
    sessions: Vec<(String, u64, Vec<u8>)>,
    held: HashSet<RequestHandle>,
    answered: HashSet<RequestHandle>,
    counter: u64,
}

fn check_body(bytes: &[u8]) -> Body {
    Body::parse(bytes, &Limits::default()).unwrap_or_else(|e| {
        panic!(
            "the manager wrote a bad body: {e:?} {:?}",
            String::from_utf8_lossy(bytes)
        )
    })
}

impl Harness {
    fn reply(&mut self, reply: Reply) {
        match reply {
            Reply::Immediate(bytes) => {
                check_body(&bytes);
            }
            Reply::Held(h) => {
                assert!(!self.answered.contains(&h), "a handle reused");
                assert!(self.held.insert(h), "a handle held twice");
            }
            Reply::Refused { error, body } => {
                let b = check_body(&body);
                assert_eq!(b.kind, Some(BodyType::Terminate));
                // A host's terminate may carry no condition; every
                // refusal of the manager's own does.
                assert!(
                    b.condition.is_some() || error == ManagerError::Terminated,
                    "{error:?}"
                );
            }
        }
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(ev) = self.cm.poll_event() {
            match ev {
                ManagerEvent::SessionCreated { sid, .. } => {
                    if !self.sessions.iter().any(|(s, _, _)| *s == sid) {
                        self.sessions.push((sid, 0, Vec::new()));
                    }
                }
                ManagerEvent::Terminated { sid, .. } => {
                    self.sessions.retain(|(s, _, _)| *s != sid);
                }
                ManagerEvent::RequestDropped { handle } => {
                    assert!(self.held.remove(&handle), "dropped a request not held");
                    self.answered.insert(handle);
                }
                ManagerEvent::Payload { .. } | ManagerEvent::Restart { .. } => {}
            }
        }
        while let Some((h, bytes)) = self.cm.poll_response() {
            assert!(self.held.remove(&h), "answered a request not held: {h:?}");
            assert!(self.answered.insert(h), "answered twice: {h:?}");
            check_body(&bytes);
        }
        assert!(self.cm.session_count() <= MAX_SESSIONS);
        for (sid, _, _) in &self.sessions {
            if let Some(q) = self.cm.queued_bytes(sid) {
                assert!(q <= MAX_QUEUED);
            }
        }
    }

    fn session(&self, b: u8) -> Option<usize> {
        (!self.sessions.is_empty()).then(|| usize::from(b) % self.sessions.len())
    }
}

pub fn run(data: &[u8]) {
    let mut h = Harness {
        cm: BoshManager::new(config(), Box::new(DeterministicRandom::new(1))),
        now: Instant::now(),
        sessions: Vec::new(),
        held: HashSet::new(),
        answered: HashSet::new(),
        counter: 0,
    };
    let mut rids: HashMap<String, u64> = HashMap::new();
    let mut it = data.iter().copied();
    let mut next = move || it.next();
    while let Some(op) = next() {
        match op & 7 {
            0 => {
                let len = usize::from(next().unwrap_or(0)) * 4;
                let mut raw = Vec::with_capacity(len);
                for _ in 0..len {
                    match next() {
                        Some(b) => raw.push(b),
                        None => break,
                    }
                }
                let r = h.cm.handle_request(h.now, &raw);
                h.reply(r);
            }
            1 => {
                let rid = u64::from(next().unwrap_or(1)) + 1;
                let hold = next().unwrap_or(1) % 3;
                let wait = next().unwrap_or(60) % 90;
                let body = format!(
                    "<body rid='{rid}' to='example.com' hold='{hold}' wait='{wait}' ver='1.6' \
                     xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh' \
                     xmlns='http://jabber.org/protocol/httpbind'/>"
                );
                let r = h.cm.handle_request(h.now, body.as_bytes());
                let created = matches!(r, Reply::Held(_) | Reply::Immediate(_));
                h.reply(r);
                if created {
                    if let Some(last) = h.sessions.last() {
                        rids.entry(last.0.clone()).or_insert(rid);
                    }
                }
            }
            2 => {
                let (Some(i), delta, flags) = (
                    h.session(next().unwrap_or(0)),
                    next().unwrap_or(1) as i8,
                    next().unwrap_or(0),
                ) else {
                    continue;
                };
                let sid = h.sessions[i].0.clone();
                let base = *rids.get(&sid).unwrap_or(&1);
                let rid = base.saturating_add_signed(i64::from(delta)).max(1);
                if rid > base {
                    rids.insert(sid.clone(), rid);
                }
                h.counter += 1;
                let mut attrs = String::new();
                let mut payload = String::new();
                if flags & 1 != 0 {
                    payload = format!(
                        "<message xmlns='jabber:client'><body>m{}</body></message>",
                        h.counter
                    );
                }
                if flags & 2 != 0 {
                    attrs.push_str(&format!(" pause='{}'", flags / 2));
                }
                if flags & 4 != 0 {
                    attrs.push_str(" xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh'");
                }
                if flags & 8 != 0 {
                    attrs.push_str(" type='terminate'");
                }
                let body = format!(
                    "<body rid='{rid}' sid='{sid}'{attrs} \
                     xmlns='http://jabber.org/protocol/httpbind'>{payload}</body>"
                )
                .into_bytes();
                h.sessions[i].2 = body.clone();
                let r = h.cm.handle_request(h.now, &body);
                h.reply(r);
            }
            3 => {
                let Some(i) = h.session(next().unwrap_or(0)) else {
                    continue;
                };
                let sid = h.sessions[i].0.clone();
                h.counter += 1;
                // (The fuzz crate has no minidom of its own: the element
                // comes from a body.)
                let wrapped = format!(
                    "<body xmlns='http://jabber.org/protocol/httpbind'>\
                     <message xmlns='jabber:client'><body>down{}</body></message></body>",
                    h.counter
                );
                let el = Body::parse(wrapped.as_bytes(), &Limits::default())
                    .expect("a valid body")
                    .payloads
                    .remove(0);
                let _ = h.cm.send(h.now, &sid, &el);
                h.drain();
            }
            4 => {
                let secs = u64::from(next().unwrap_or(1));
                h.now += Duration::from_secs(secs);
                if let Some(t) = h.cm.poll_timeout() {
                    if t <= h.now {
                        h.cm.handle_timeout(h.now);
                    }
                }
                h.drain();
            }
            5 => {
                let (Some(i), c) = (h.session(next().unwrap_or(0)), next().unwrap_or(0)) else {
                    continue;
                };
                let sid = h.sessions[i].0.clone();
                let condition = (c % 2 == 1).then_some(Condition::SystemShutdown);
                let _ = h.cm.terminate(h.now, &sid, condition, None);
                h.drain();
            }
            _ => {
                let Some(i) = h.session(next().unwrap_or(0)) else {
                    continue;
                };
                let last = h.sessions[i].2.clone();
                if !last.is_empty() {
                    let r = h.cm.handle_request(h.now, &last);
                    h.reply(r);
                }
            }
        }
    }
    // Far past every deadline: every session ends, every held request is
    // answered or dropped.
    for _ in 0..4 {
        h.now += Duration::from_secs(1_000_000);
        h.cm.handle_timeout(h.now);
        h.drain();
    }
    assert_eq!(h.cm.session_count(), 0, "sessions outlived every deadline");
    assert!(h.held.is_empty(), "requests never answered: {:?}", h.held);
    assert_eq!(h.cm.poll_timeout(), None);
}
