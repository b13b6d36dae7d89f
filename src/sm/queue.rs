//! The counters and the queue of unacknowledged stanzas of one stream
//! management session, the same for both roles.

use std::collections::VecDeque;
use std::time::Instant;

use jid::FullJid;

use super::{SentStanza, SmSettings, SmState};
use crate::core::deadline;

/// A stanza sent and not acknowledged yet.
struct Queued {
    stanza: SentStanza,
    /// The last input before it was sent.
    at: Instant,
}

/// The queue is at one of its bounds: the stanza was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// An `h` that acknowledges more stanzas than were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooHigh {
    /// The peer's `h`.
    pub h: u32,
    /// How many were sent (modulo 2^32).
    pub sent: u32,
}

/// One session's stream management: what was handled from the peer, what
/// the peer acknowledged, and what it has not yet.
pub(crate) struct Session {
    /// The bound JID.
    pub jid: FullJid,
    /// The resumption id; `None` when the session cannot be resumed.
    pub id: Option<String>,
    /// The server's preferred reconnection address (client side).
    pub location: Option<String>,
    /// The resumption timeout, in seconds.
    pub max: Option<u32>,
    /// Stanzas handled from the peer, modulo 2^32.
    pub handled: u32,
    /// Whether inbound stanzas count yet (the client counts from
    /// `<enabled/>`, the server from `<enable/>`).
    pub counting: bool,
    /// The peer's last `h`: our stanzas it acknowledged, modulo 2^32.
    pub acked: u32,
    queue: VecDeque<Queued>,
    bytes: usize,
    since_request: u32,
    last_request: Option<Instant>,
}

impl Session {
    pub fn new(jid: FullJid) -> Self {
        Self {
            jid,
            id: None,
            location: None,
            max: None,
            handled: 0,
            counting: false,
            acked: 0,
            queue: VecDeque::new(),
            bytes: 0,
            since_request: 0,
            last_request: None,
        }
    }

    /// A session restored from `state`.
    pub fn restore(state: SmState, now: Instant) -> Self {
        let parts = state.into_parts();
        let mut s = Self::new(parts.jid);
        s.id = Some(parts.id);
        s.location = parts.location;
        s.max = parts.max;
        s.handled = parts.handled;
        s.counting = true;
        s.acked = parts.acked;
        for stanza in parts.unacked {
            s.bytes += stanza.len();
            s.queue.push_back(Queued { stanza, at: now });
        }
        s
    }

    /// Everything needed to resume, the queue included (cloned).
    pub fn state(&self) -> Option<SmState> {
        Some(SmState::from_parts(super::state::Parts {
            id: self.id.clone()?,
            jid: self.jid.clone(),
            handled: self.handled,
            acked: self.acked,
            unacked: self.queue.iter().map(|q| q.stanza.clone()).collect(),
            location: self.location.clone(),
            max: self.max,
        }))
    }

    /// The state, the queue moved into it.
    pub fn into_state(self) -> Result<SmState, Vec<SentStanza>> {
        // The queue moves as it is: `acked` stays where the peer left it.
        let unacked: Vec<SentStanza> = self.queue.into_iter().map(|q| q.stanza).collect();
        match self.id {
            Some(id) => Ok(SmState::from_parts(super::state::Parts {
                id,
                jid: self.jid,
                handled: self.handled,
                acked: self.acked,
                unacked,
                location: self.location,
                max: self.max,
            })),
            None => Err(unacked),
        }
    }

    /// How many of our stanzas were sent, modulo 2^32.
    pub fn sent(&self) -> u32 {
        self.acked.wrapping_add(self.queue.len() as u32)
    }

    /// How many stanzas wait for an acknowledgement.
    pub fn unacked_len(&self) -> usize {
        self.queue.len()
    }

    /// The unacknowledged stanzas, oldest first.
    pub fn unacked(&self) -> impl Iterator<Item = &SentStanza> {
        self.queue.iter().map(|q| &q.stanza)
    }

    /// Whether one more stanza may be sent: fewer than `max_unacked`
    /// kept, and fewer bytes than `max_unacked_bytes` (the last stanza
    /// may cross that bound by its own size, which is known only once
    /// written).
    pub fn room(&self, settings: &SmSettings) -> Result<(), Full> {
        if self.queue.len() >= settings.max_unacked || self.bytes >= settings.max_unacked_bytes {
            return Err(Full);
        }
        Ok(())
    }

    /// A stanza was sent: keep it until acknowledged. Returns whether an
    /// `<r/>` is due by count.
    pub fn push(&mut self, stanza: SentStanza, at: Instant, settings: &SmSettings) -> bool {
        self.bytes += stanza.len();
        self.queue.push_back(Queued { stanza, at });
        self.since_request = self.since_request.saturating_add(1);
        settings
            .request_every
            .is_some_and(|n| self.since_request >= n)
    }

    /// An `<r/>` went out at `now`.
    pub fn requested(&mut self, now: Instant) {
        self.since_request = 0;
        self.last_request = Some(now);
    }

    /// When an `<r/>` is due by time.
    pub fn request_deadline(&self, settings: &SmSettings) -> Option<Instant> {
        let t = settings.request_after?;
        let oldest = self.queue.front()?.at;
        Some(deadline(
            self.last_request.map_or(oldest, |r| r.max(oldest)),
            t,
        ))
    }

    /// The peer handled `h` of our stanzas: the newly acknowledged ones,
    /// oldest first.
    pub fn ack(&mut self, h: u32) -> Result<Vec<SentStanza>, TooHigh> {
        let n = h.wrapping_sub(self.acked) as usize;
        if n > self.queue.len() {
            return Err(TooHigh {
                h,
                sent: self.sent(),
            });
        }
        self.acked = h;
        Ok(self
            .queue
            .drain(..n)
            .map(|q| {
                self.bytes -= q.stanza.len();
                q.stanza
            })
            .collect())
    }

    /// A stanza from the peer was handled.
    pub fn handled_one(&mut self) {
        if self.counting {
            self.handled = self.handled.wrapping_add(1);
        }
    }

    /// Every unacknowledged stanza, taken out (they count as sent:
    /// `acked` moves past them).
    pub fn take_all(&mut self) -> Vec<SentStanza> {
        self.acked = self.sent();
        self.bytes = 0;
        self.queue.drain(..).map(|q| q.stanza).collect()
    }

    /// The stanzas were sent again on a resumed stream at `now`.
    pub fn resent(&mut self, now: Instant) {
        for q in &mut self.queue {
            q.at = now;
        }
        self.since_request = 0;
        self.last_request = None;
    }
}
