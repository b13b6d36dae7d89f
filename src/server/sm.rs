//! The server's step of stream management (XEP-0198): offer after
//! authentication, enable in a session with an unpredictable id, count,
//! acknowledge, request, detach, and resume through the host.

use std::time::Instant;

use jid::{BareJid, FullJid};
use minidom::Element;

use super::{Misbehavior, Phase, Server, ServerError, ServerEvent, StreamErrorCondition};
use crate::core::{AnswerKind, Life, UsageError};
use crate::random::printable_token;
use crate::sm::{Session, SmState, TooHigh};
use crate::steps::sm::SmElement;

/// A client asks to resume a stream management session
/// ([`ServerEvent::Resume`]); answer with [`Server::answer_resume`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResumeRequest {
    /// The account that authenticated on this stream.
    pub jid: BareJid,
    /// The id of the session to resume.
    pub previd: String,
    /// How many of the server's stanzas the client handled.
    pub h: u32,
}

/// The host's answer to a [`ServerEvent::Resume`].
#[derive(Debug, Clone, PartialEq)]
pub enum ResumeAnswer {
    /// The detached session of that id (from [`ServerEvent::Detached`]).
    /// The server resumes it only when it is the request's `previd` and
    /// belongs to the account that authenticated; otherwise the client
    /// gets `<failed><item-not-found/></failed>` and the state comes back
    /// in [`ServerEvent::Detached`].
    Found(SmState),
    /// No such session (unknown, expired, or already resumed): the client
    /// gets `<failed><item-not-found/></failed>` and may bind a new one.
    NotFound,
}

impl From<ResumeAnswer> for super::ServerAnswer {
    fn from(a: ResumeAnswer) -> Self {
        Self::Resume(a)
    }
}

/// Characters of a resumption id (about 6 bits each).
const ID_LEN: usize = 24;

impl Server {
    /// The host's answer to [`ServerEvent::Resume`] (or
    /// [`UsageError::WrongAnswer`] while another request is pending).
    /// Resumed: `<resumed/>`, [`ServerEvent::Acked`] for what the
    /// client's `h` acknowledges, the rest of the queue sent again, then
    /// [`ServerEvent::Resumed`]; the session goes on with the state's JID
    /// and counters. An `h` above what the session sent ends the stream
    /// (`handled-count-too-high`), and the state comes back in
    /// [`ServerEvent::Detached`].
    pub fn answer_resume(&mut self, now: Instant, answer: ResumeAnswer) -> Result<(), UsageError> {
        self.check_answer(AnswerKind::Resume)?;
        let (Phase::ResumePending { .. }, Some(account)) = (&self.phase, &self.n.account) else {
            return Err(UsageError::NoPendingRequest);
        };
        let account = account.clone();
        let Phase::ResumePending { previd, h, sasl2 } =
            std::mem::replace(&mut self.phase, Phase::AwaitBind)
        else {
            unreachable!("matched above")
        };
        match answer {
            ResumeAnswer::Found(state)
                if state.id() == previd && state.jid().to_bare() == account =>
            {
                self.sm_resume(now, state, previd, h, sasl2)
            }
            other if sasl2.is_some() => {
                if let ResumeAnswer::Found(state) = other {
                    self.core.push_event(ServerEvent::Detached(state));
                }
                if let Some(login) = sasl2 {
                    self.sasl2_resume_failed(now, login);
                }
            }
            other => {
                let failed = SmElement::Failed {
                    h: None,
                    condition: Some("item-not-found".into()),
                };
                self.write(&failed.to_element());
                if let ResumeAnswer::Found(state) = other {
                    // Not this client's: the host keeps it.
                    self.core.push_event(ServerEvent::Detached(state));
                }
            }
        }
        self.resume(now);
        Ok(())
    }

    fn sm_resume(
        &mut self,
        now: Instant,
        state: SmState,
        previd: String,
        h: u32,
        sasl2: Option<Box<super::sasl2::Sasl2Login>>,
    ) {
        let mut session = Session::restore(state, now);
        session.location = None;
        let acked = session.ack(h);
        let jid = session.jid.clone();
        let handled = session.handled;
        self.sm = Some(Box::new(session));
        let acked = match acked {
            Ok(a) => a,
            Err(e) => return self.too_high(e),
        };
        if !acked.is_empty() {
            self.core.push_event(ServerEvent::Acked(acked));
        }
        let resumed = SmElement::Resumed { previd, h: handled };
        match sasl2 {
            Some(login) => self.sasl2_resumed(login, resumed, &jid),
            None => self.write(&resumed.to_element()),
        }
        if let Some(s) = self.sm.as_deref_mut() {
            self.core.sm_retransmit(s, now);
        }
        self.n.end();
        self.phase = Phase::Ready { jid: jid.clone() };
        self.core.become_lean(self.config.buffers);
        self.core.push_event(ServerEvent::Resumed { jid, h });
    }

    fn too_high(&mut self, e: TooHigh) {
        self.fail(ServerError::PeerMisbehaved(
            Misbehavior::HandledCountTooHigh {
                h: e.h,
                sent: e.sent,
            },
        ))
    }

    /// A stream management element before binding: `<resume/>` goes to
    /// the host; `<enable/>` must wait for a bound resource.
    pub(super) fn on_sm_before_bind(&mut self, el: &Element) {
        let Some(account) = self.n.account.clone() else {
            return self.fail_with(
                StreamErrorCondition::NotAuthorized,
                "stream management before authentication",
            );
        };
        let resumable = self
            .config
            .stream_management
            .as_ref()
            .is_some_and(|s| s.resume);
        match SmElement::parse(el) {
            Some(Ok(SmElement::Resume { previd, h })) if resumable => {
                self.core.push_event(ServerEvent::Resume(ResumeRequest {
                    jid: account,
                    previd: previd.clone(),
                    h,
                }));
                self.phase = Phase::ResumePending {
                    previd,
                    h,
                    sasl2: None,
                };
            }
            Some(Ok(SmElement::Enable { .. })) if self.config.stream_management.is_some() => {
                // Binding comes first.
                self.sm_failed("unexpected-request")
            }
            Some(Ok(SmElement::Resume { .. } | SmElement::Enable { .. })) => {
                self.sm_failed("feature-not-implemented")
            }
            Some(Err(e)) => self.fail_with(StreamErrorCondition::InvalidXml, e.reason()),
            _ => self.fail_with(
                StreamErrorCondition::UnsupportedStanzaType,
                "a stream management element that is not legal before binding",
            ),
        }
    }

    fn sm_failed(&mut self, condition: &str) {
        let failed = SmElement::Failed {
            h: None,
            condition: Some(condition.into()),
        };
        self.write(&failed.to_element());
    }

    /// A stream management element in a session.
    pub(super) fn on_sm_in_session(&mut self, el: &Element) {
        let parsed = match SmElement::parse(el) {
            Some(Ok(p)) => p,
            Some(Err(e)) => return self.fail_with(StreamErrorCondition::InvalidXml, e.reason()),
            None => return,
        };
        if self.config.stream_management.is_none() {
            return match parsed {
                SmElement::Enable { .. } | SmElement::Resume { .. } => {
                    self.sm_failed("feature-not-implemented")
                }
                _ => self.fail_with(
                    StreamErrorCondition::UnsupportedStanzaType,
                    "stream management is not offered",
                ),
            };
        }
        match parsed {
            SmElement::Enable { resume, max } if self.sm.is_none() => {
                let Phase::Ready { jid } = &self.phase else {
                    return;
                };
                let enabled = self.sm_start(&jid.clone(), resume, max);
                self.write(&enabled.to_element());
            }
            SmElement::Enable { .. } | SmElement::Resume { .. } => {
                self.sm_failed("unexpected-request")
            }
            SmElement::Request => {
                if let Some(s) = &self.sm {
                    let h = s.handled;
                    self.core.write_sm(Some(h));
                }
            }
            SmElement::Ack { h } => self.sm_ack(h),
            _ => self.fail_with(
                StreamErrorCondition::UnsupportedStanzaType,
                "a stream management element that is not legal in a session",
            ),
        }
    }

    /// Stream management starts for `jid` (the client sent `<enable/>`,
    /// alone or in Bind 2): the `<enabled/>` to send, or `<failed/>` when
    /// it is not offered.
    pub(super) fn sm_start(&mut self, jid: &FullJid, resume: bool, max: Option<u32>) -> SmElement {
        let Some(settings) = self.config.stream_management.clone() else {
            return SmElement::Failed {
                h: None,
                condition: Some("feature-not-implemented".into()),
            };
        };
        let mut session = Session::new(jid.clone());
        // Our count of theirs starts now; theirs of ours with
        // `<enabled/>`, before which we sent nothing counted.
        session.counting = true;
        let grant = resume && settings.resume;
        if grant {
            let id = printable_token(self.rng.as_mut(), ID_LEN).replace(['+', '/'], "x");
            session.id = Some(id);
            session.max = match (settings.max_secs(), max) {
                (Some(ours), Some(theirs)) => Some(ours.min(theirs.max(1))),
                (ours, _) => ours,
            };
        }
        let enabled = SmElement::Enabled {
            id: session.id.clone(),
            resume: grant,
            location: None,
            max: session.max,
        };
        let id = session.id.clone();
        self.sm = Some(Box::new(session));
        self.core
            .push_event(ServerEvent::StreamManagementEnabled { id });
        enabled
    }

    /// The client acknowledged up to `h`.
    pub(super) fn sm_ack(&mut self, h: u32) {
        let Some(s) = self.sm.as_deref_mut() else {
            return;
        };
        match s.ack(h) {
            Ok(acked) if acked.is_empty() => {}
            Ok(acked) => self.core.push_event(ServerEvent::Acked(acked)),
            Err(e) => self.too_high(e),
        }
    }

    /// A stanza from the client was handled.
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
        self.sm
            .as_ref()?
            .request_deadline(self.config.stream_management.as_ref()?)
    }

    /// The clock reached `sm_deadline`: ask.
    pub(super) fn sm_timeout(&mut self, now: Instant) {
        let due = self.sm_deadline();
        self.core
            .sm_request_if_due(self.sm.as_deref_mut(), due, now);
    }

    /// Closing: say what we handled.
    pub(super) fn sm_closing(&mut self) {
        if let Some(s) = &self.sm {
            let h = s.handled;
            self.core.write_sm(Some(h));
        }
    }

    /// The host's connection is gone without a close (a reset, a read
    /// error, end of file): the machine ends. A resumable stream
    /// management session is handed over in [`ServerEvent::Detached`];
    /// otherwise the stanzas the client never acknowledged come back in
    /// [`ServerEvent::Undelivered`]. Then [`ServerEvent::Closed`].
    pub fn connection_lost(&mut self, _now: Instant) {
        if self.core.is_closed() {
            return;
        }
        self.n.stop_clocks();
        self.held.clear();
        self.sm_end(false);
        self.core.finish(ServerEvent::Closed);
    }

    /// The stream ends; `clean`: by a close, which ends the session too.
    /// A resumable session detaches from an unclean end; otherwise its
    /// unacknowledged stanzas go back to the host.
    pub(super) fn sm_end(&mut self, clean: bool) {
        let Some(s) = self.sm.take() else {
            return;
        };
        if clean {
            let mut s = s;
            let rest = s.take_all();
            if !rest.is_empty() {
                self.core.push_event(ServerEvent::Undelivered(rest));
            }
            return;
        }
        match s.into_state() {
            Ok(state) => self.core.push_event(ServerEvent::Detached(state)),
            Err(rest) if rest.is_empty() => {}
            Err(rest) => self.core.push_event(ServerEvent::Undelivered(rest)),
        }
    }
}
