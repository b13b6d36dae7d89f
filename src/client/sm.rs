//! The client's step of stream management (XEP-0198): enable after
//! binding, resume after authentication, count, acknowledge, request.

use std::time::Instant;

use jid::FullJid;
use minidom::Element;

use super::{Client, ClientError, ClientEvent, Misbehavior, Phase, StreamErrorCondition};
use crate::core::Life;
use crate::sm::{Session, SmState, TooHigh};
use crate::steps::sm::SmElement;

impl Client {
    /// Resumes the stream management session `state` (from
    /// [`sm_state`](Self::sm_state) of an earlier client, perhaps of
    /// another process: [`SmState::from_bytes`]) instead of binding a new
    /// one: once authenticated, the client sends `<resume/>`. The server
    /// answers either way:
    ///
    /// - `<resumed/>`: [`ClientEvent::Acked`] for the stanzas it had
    ///   handled, the rest sent again, then [`ClientEvent::Resumed`]
    ///   (no [`ClientEvent::Ready`]): the session goes on with its JID and
    ///   inbound count;
    /// - `<failed/>` (or no stream management offered):
    ///   [`ClientEvent::Acked`] for what its `h` acknowledges,
    ///   [`ClientEvent::Undelivered`] for the rest,
    ///   [`ClientEvent::ResumeFailed`], then a new session is bound (and
    ///   stream management enabled again when configured) as usual.
    ///
    /// Connect where the state's [`location`](SmState::location) says, or
    /// to the original host, with the same configuration (its TLS mode,
    /// and the certificate checked against the JID's domain): the client
    /// keeps a location only from a TLS-protected stream (or with
    /// [`ClientSettings::allow_redirect_without_tls`](super::ClientSettings::allow_redirect_without_tls)),
    /// as it does a redirect. Call it right after the constructor.
    pub fn resume_session(mut self, state: SmState) -> Self {
        self.sm = Some(Box::new(Session::restore(state, self.last_input)));
        self.sm_resuming = true;
        self
    }

    /// The stream management session as it stands, to save (after every
    /// [`ClientEvent::Acked`], say) and resume later with
    /// [`resume_session`](Self::resume_session): once the server enabled
    /// resumption, or while a restored one waits to be resumed; still
    /// there after the connection is lost or the stream failed. `None`
    /// without a resumable session (a clean close ends it, handing its
    /// unacknowledged stanzas back in [`ClientEvent::Undelivered`]).
    pub fn sm_state(&self) -> Option<SmState> {
        self.sm.as_ref().filter(|s| s.counting)?.state()
    }

    /// Asks the server to acknowledge what it handled (`<r/>`) now, when
    /// stream management is on and the session ready; its answer comes as
    /// [`ClientEvent::Acked`]. Otherwise nothing.
    pub fn request_ack(&mut self) {
        if self.core.life != Life::Open || !matches!(self.phase, Phase::Ready { .. }) {
            return;
        }
        if let Some(s) = self.sm.as_mut().filter(|s| s.counting) {
            s.requested(self.last_input);
            self.core.write_sm(None);
        }
    }

    /// The host's connection is gone without a close (a reset, a read
    /// error, end of file): the machine ends. A resumable stream
    /// management session stays in [`sm_state`](Self::sm_state) with its
    /// unacknowledged stanzas; otherwise they are handed back in
    /// [`ClientEvent::Undelivered`]. Then [`ClientEvent::Closed`].
    pub fn connection_lost(&mut self, _now: Instant) {
        if self.core.is_closed() {
            return;
        }
        self.negotiation_deadline = None;
        self.sm_end(false);
        self.core.finish(ClientEvent::Closed);
    }

    /// After authentication, with resource binding offered: resume the
    /// restored session, or give it up when the server offers no stream
    /// management. Returns whether `<resume/>` was sent.
    pub(super) fn sm_try_resume(&mut self) -> bool {
        if !self.sm_resuming {
            return false;
        }
        match (&self.sm, self.sm_offered) {
            (Some(s), true) => {
                let el = SmElement::Resume {
                    previd: s.id.clone().unwrap_or_default(),
                    h: s.handled,
                }
                .to_element();
                self.write(&el);
                self.phase = Phase::Resuming;
                true
            }
            _ => {
                self.sm_resume_failed(None, None);
                false
            }
        }
    }

    /// The resumption failed: acknowledged stanzas count as delivered,
    /// the rest goes back to the host; a new session follows.
    pub(super) fn sm_resume_failed(&mut self, h: Option<u32>, condition: Option<String>) {
        self.sm_resuming = false;
        if let (Some(h), Some(s)) = (h, &mut self.sm) {
            match s.ack(h) {
                Ok(acked) if !acked.is_empty() => self.core.push_event(ClientEvent::Acked(acked)),
                Ok(_) => {}
                Err(e) => return self.too_high(e),
            }
        }
        if let Some(mut s) = self.sm.take() {
            let rest = s.take_all();
            if !rest.is_empty() {
                self.core.push_event(ClientEvent::Undelivered(rest));
            }
        }
        self.core
            .push_event(ClientEvent::ResumeFailed { condition });
    }

    /// Bound (and session established): enable stream management when
    /// configured and offered. Returns whether `<enable/>` was sent (the
    /// session is ready once the server answers).
    pub(super) fn sm_try_enable(&mut self, jid: &FullJid) -> bool {
        let Some(settings) = &self.config.stream_management else {
            return false;
        };
        if !self.sm_offered || self.sm.is_some() {
            return false;
        }
        let el = SmElement::Enable {
            resume: settings.resume,
            max: settings.max_secs(),
        }
        .to_element();
        self.write(&el);
        // Our count starts with `<enable/>`; the server's with `<enabled/>`.
        self.sm = Some(Box::new(Session::new(jid.clone())));
        self.phase = Phase::Enabling { jid: jid.clone() };
        true
    }

    /// A stream management element from the server.
    pub(super) fn on_sm(&mut self, now: Instant, el: &Element) {
        let parsed = match SmElement::parse(el) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                return self.fail(ClientError::PeerMisbehaved(Misbehavior::protocol(
                    StreamErrorCondition::InvalidXml,
                    e.reason(),
                )))
            }
            None => return self.protocol_error("an element that is not legal in this phase"),
        };
        let phase = std::mem::replace(&mut self.phase, Phase::AwaitHeader);
        match (phase, parsed) {
            (
                Phase::Enabling { jid },
                SmElement::Enabled {
                    id,
                    resume,
                    location,
                    max,
                },
            ) => {
                self.sm_enabled(id, resume, location, max);
                self.ready(jid);
            }
            (Phase::Enabling { jid }, SmElement::Failed { condition, .. }) => {
                self.sm = None;
                self.core
                    .push_event(ClientEvent::StreamManagementFailed { condition });
                self.ready(jid);
            }
            (Phase::Resuming, SmElement::Resumed { previd, h }) => {
                self.phase = Phase::Resuming;
                self.sm_resumed(now, &previd, h);
            }
            (Phase::Resuming, SmElement::Failed { h, condition }) => {
                self.phase = Phase::Resuming;
                self.sm_resume_failed(h, condition);
                if self.core.is_closed() {
                    return;
                }
                self.bind();
            }
            (phase @ (Phase::Ready { .. } | Phase::Enabling { .. }), el) => {
                self.phase = phase;
                self.on_sm_in_session(el);
            }
            (phase, _) => {
                self.phase = phase;
                self.protocol_error("a stream management element that is not legal in this phase");
            }
        }
    }

    /// The server enabled stream management (`<enabled/>`, after a bind
    /// request or inside Bind 2's `<bound/>`): counting starts.
    pub(super) fn sm_enabled(
        &mut self,
        id: Option<String>,
        resume: bool,
        location: Option<String>,
        max: Option<u32>,
    ) {
        // A location is a redirect: only from a protected stream.
        let location =
            location.filter(|_| self.tls.is_some() || self.config.allow_redirect_without_tls);
        let id = id.filter(|_| resume);
        if let Some(s) = &mut self.sm {
            s.counting = true;
            s.id = id.clone();
            s.location = location.clone();
            s.max = max;
        }
        self.core
            .push_event(ClientEvent::StreamManagementEnabled { id, location, max });
    }

    /// The server resumed the session (`<resumed/>`, alone or inside
    /// SASL2's `<success/>`): acknowledged stanzas, the rest again, ready.
    pub(super) fn sm_resumed(&mut self, now: Instant, previd: &str, h: u32) {
        let Some(s) = &mut self.sm else {
            return self.protocol_error("resumed without a session");
        };
        if s.id.as_deref() != Some(previd) {
            return self.fail(ClientError::PeerMisbehaved(Misbehavior::protocol(
                StreamErrorCondition::UndefinedCondition,
                "the server resumed another session",
            )));
        }
        let acked = match s.ack(h) {
            Ok(a) => a,
            Err(e) => return self.too_high(e),
        };
        let jid = s.jid.clone();
        if !acked.is_empty() {
            self.core.push_event(ClientEvent::Acked(acked));
        }
        self.sm_resuming = false;
        if let Some(s) = self.sm.as_mut() {
            self.core.sm_retransmit(s, now);
        }
        self.phase = Phase::Ready { jid: jid.clone() };
        self.negotiation_deadline = None;
        self.core.become_lean(self.config.buffers);
        self.core.push_event(ClientEvent::Resumed { jid, h });
    }

    /// `<r/>` and `<a/>` in a session.
    fn on_sm_in_session(&mut self, el: SmElement) {
        let Some(s) = self.sm.as_mut().filter(|s| s.counting) else {
            return self.protocol_error("stream management is not enabled");
        };
        match el {
            SmElement::Request => {
                let h = s.handled;
                self.core.write_sm(Some(h));
            }
            SmElement::Ack { h } => self.sm_ack(h),
            _ => self.protocol_error("a stream management element that is not legal in a session"),
        }
    }

    /// The server acknowledged up to `h`.
    pub(super) fn sm_ack(&mut self, h: u32) {
        let Some(s) = self.sm.as_mut() else {
            return;
        };
        match s.ack(h) {
            Ok(acked) if acked.is_empty() => {}
            Ok(acked) => self.core.push_event(ClientEvent::Acked(acked)),
            Err(e) => self.too_high(e),
        }
    }

    fn too_high(&mut self, e: TooHigh) {
        self.fail(ClientError::PeerMisbehaved(
            Misbehavior::HandledCountTooHigh {
                h: e.h,
                sent: e.sent,
            },
        ))
    }

    /// A stanza from the server was handled.
    pub(super) fn sm_inbound(&mut self) {
        if let Some(s) = &mut self.sm {
            s.handled_one();
        }
    }

    /// When an `<r/>` is due by time.
    pub(super) fn sm_deadline(&self) -> Option<Instant> {
        if self.core.life != Life::Open || !matches!(self.phase, Phase::Ready { .. }) {
            return None;
        }
        let s = self.sm.as_ref()?;
        s.request_deadline(self.config.stream_management.as_ref()?)
    }

    /// The clock reached `sm_deadline`: ask.
    pub(super) fn sm_timeout(&mut self, now: Instant) {
        let due = self.sm_deadline();
        self.core
            .sm_request_if_due(self.sm.as_deref_mut(), due, now);
    }

    /// Closing: say what we handled, and ask for a last acknowledgement.
    pub(super) fn sm_closing(&mut self) {
        let Some(s) = self.sm.as_ref().filter(|s| s.counting) else {
            return;
        };
        let ask = s.unacked_len() > 0;
        self.core.write_sm(Some(s.handled));
        if ask {
            self.core.write_sm(None);
        }
    }

    /// The stream ends; `clean`: by a close, which ends the session too.
    /// A resumable session outlives an unclean end (for
    /// [`sm_state`](Self::sm_state)); otherwise its unacknowledged
    /// stanzas go back to the host.
    pub(super) fn sm_end(&mut self, clean: bool) {
        let resumable = self
            .sm
            .as_ref()
            .is_some_and(|s| s.id.is_some() && s.counting);
        if resumable && !clean {
            return;
        }
        if let Some(mut s) = self.sm.take() {
            self.sm_resuming = false;
            let rest = s.take_all();
            if !rest.is_empty() {
                self.core.push_event(ClientEvent::Undelivered(rest));
            }
        }
    }
}
