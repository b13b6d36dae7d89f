//! What both roles' state machines share: the codec pair, the outgoing
//! buffer, the event queue, sticky failure and the close handshake, for
//! either [`Framing`]: the roles call the same methods over both, and the
//! framing decides what goes on the wire (bytes, or one message per
//! header, element and close).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use minidom::Element;

use crate::steps::sasl::SaslPayload;
use crate::stream_error::StreamError;
use std::fmt;

use crate::framing::Framing;
use crate::xml::{Limits, StreamHeader, StreamReader, StreamWriter, WriteError};

/// Where a stream's lifecycle is, as far as closing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    Open,
    /// We sent `</stream:stream>` and wait for the peer's.
    Closing,
    Closed,
}

/// A header or an element a BOSH adapter already has parsed, fed to a
/// role machine as its message would be (not written and parsed again).
pub(crate) enum Parsed {
    Header(StreamHeader),
    Element(Element),
}

/// See [`Core::take_first_header`].
#[derive(Debug)]
enum FirstHeader {
    /// Not kept (not BOSH, or taken).
    Unwanted,
    /// To be kept when written.
    Awaited,
    /// (Boxed: a session's core stays small.)
    Written(Box<StreamHeader>),
}

/// The connection core of a [`Client`](crate::client::Client) or a
/// [`Server`](crate::server::Server), generic over the role's event and
/// error types.
pub(crate) struct Core<E, Err> {
    pub reader: StreamReader,
    pub writer: StreamWriter,
    framing: Framing,
    /// Bytes being written (TCP: all queued output).
    out: Vec<u8>,
    /// WebSocket: the messages written and not taken yet, one element each.
    messages: VecDeque<Vec<u8>>,
    /// Their bytes, in all.
    message_bytes: usize,
    events: VecDeque<E>,
    pub error: Option<Box<Err>>,
    pub life: Life,
    pub close_deadline: Option<Instant>,
    /// When bytes were last handed to the host (for keepalives): the time
    /// of the first input after a `poll_transmit` that gave bytes.
    pub last_send: Instant,
    /// `poll_transmit` gave bytes since `last_send` was set.
    transmitted: bool,
    /// When the top-level element being read began (its first
    /// non-whitespace byte), if one is unfinished.
    pub element_started: Option<Instant>,
    /// `<proceed/>` was sent or received and TLS is not up yet: nothing
    /// but the TLS handshake may go on the wire (RFC 6120 5.4.3.3), so a
    /// failure or a close ends the stream without a byte.
    pub awaiting_tls: bool,
    /// Ready: an idle session keeps no buffers it does not need (the
    /// output buffer and event queue are released once drained, the
    /// reader's scratch space between reads).
    pub lean: bool,
    /// BOSH: the first stream header this side writes, kept until the
    /// adapter takes it (the client's `to` and `lang`, the server's `id`)
    /// instead of parsing the `<open/>` it was written as.
    first_header: FirstHeader,
}

impl<E, Err: Clone> Core<E, Err> {
    pub fn new(limits: Limits, content_ns: &str, framing: Framing, now: Instant) -> Self {
        let first_header = match framing {
            Framing::Bosh => FirstHeader::Awaited,
            _ => FirstHeader::Unwanted,
        };
        // BOSH payloads are framed as WebSocket messages in the machine.
        let framing = framing.wire();
        Self {
            reader: match framing {
                Framing::Tcp => StreamReader::new(limits),
                _ => StreamReader::for_messages(limits),
            },
            writer: StreamWriter::with_framing(content_ns, framing),
            framing,
            out: Vec::new(),
            messages: VecDeque::new(),
            message_bytes: 0,
            events: VecDeque::new(),
            error: None,
            life: Life::Open,
            close_deadline: None,
            last_send: now,
            transmitted: false,
            element_started: None,
            awaiting_tls: false,
            lean: false,
            first_header,
        }
    }

    /// BOSH: the first stream header written, once (the BOSH adapters
    /// read it instead of parsing the `<open/>` they are handed).
    pub fn take_first_header(&mut self) -> Option<StreamHeader> {
        match std::mem::replace(&mut self.first_header, FirstHeader::Unwanted) {
            FirstHeader::Written(h) => Some(*h),
            FirstHeader::Awaited => {
                self.first_header = FirstHeader::Awaited;
                None
            }
            FirstHeader::Unwanted => None,
        }
    }

    /// A stream header that came as a whole (a WebSocket `<open/>` read,
    /// or one a BOSH adapter built): every element names its namespace,
    /// the stream's content namespace is the framing's (RFC 7395).
    pub fn message_header(&self, mut h: StreamHeader) -> StreamHeader {
        if self.framing == Framing::WebSocket {
            h.content_ns = Some(self.writer.content_ns().to_owned());
        }
        h
    }

    pub fn push_event(&mut self, e: E) {
        self.events.push_back(e);
    }

    pub fn poll_event(&mut self) -> Option<E> {
        let e = self.events.pop_front();
        if e.is_none() && self.lean && self.events.capacity() > 0 {
            // Drained: an idle session keeps no event queue.
            self.events = VecDeque::new();
        }
        e
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Input of `len` bytes, a whole message (`feed_message`) or not
    /// (`feed`): a message reader is told where it ends; bytes that are
    /// not a message cannot be read by one.
    pub fn input(&mut self, len: usize, message: bool) -> Result<(), UsageError> {
        match (self.framing, message) {
            (Framing::Tcp, _) => Ok(()),
            (_, true) => {
                self.reader.push_message(len);
                Ok(())
            }
            (_, false) => Err(UsageError::MessagesExpected),
        }
    }

    /// WebSocket: what was just written into `out` is one message.
    fn seal(&mut self) {
        if self.framing == Framing::WebSocket && !self.out.is_empty() {
            // One allocation of the message's size; `out` keeps its
            // capacity for the next one (taking it would regrow it from
            // nothing for every message).
            let msg = self.out.clone();
            self.out.clear();
            self.message_bytes += msg.len();
            self.messages.push_back(msg);
        }
    }

    /// The next message: one element (WebSocket), or every byte queued
    /// (TCP, where there are no messages).
    pub fn poll_message(&mut self) -> Option<Vec<u8>> {
        let msg = match self.framing {
            Framing::Tcp => Some(std::mem::take(&mut self.out)).filter(|m| !m.is_empty()),
            _ => {
                let msg = self.messages.pop_front();
                if msg.is_none() && self.lean {
                    // Drained: an idle session keeps no buffers.
                    self.messages = VecDeque::new();
                    self.out = Vec::new();
                }
                msg
            }
        }?;
        self.message_bytes -= msg.len().min(self.message_bytes);
        self.transmitted = true;
        Some(msg)
    }

    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        if self.framing == Framing::WebSocket {
            // The messages end to end: the boundaries are lost.
            let n = self.message_bytes;
            self.transmitted |= n > 0;
            for msg in self.messages.drain(..) {
                buf.extend_from_slice(&msg);
            }
            self.message_bytes = 0;
            if self.lean {
                self.messages = VecDeque::new();
                self.out = Vec::new();
            }
            return n;
        }
        let n = self.out.len();
        self.transmitted |= n > 0;
        if !self.lean {
            buf.append(&mut self.out);
        } else if buf.is_empty() {
            // Hand the buffer over instead of copying and keeping it.
            *buf = std::mem::take(&mut self.out);
        } else {
            buf.append(&mut self.out);
            self.out = Vec::new();
        }
        n
    }

    /// Reads the next stream event, gating top-level elements by what the
    /// phase `expects`.
    pub fn read(
        &mut self,
        input: &mut &[u8],
        expect: crate::gate::Expect,
    ) -> Result<Option<crate::xml::StreamEvent>, crate::xml::ReadError> {
        let mut ev = self
            .reader
            .read_gated(input, &|name, ns| expect.check(name, ns));
        if let Ok(Some(crate::xml::StreamEvent::Header(h))) = &mut ev {
            *h = self.message_header(std::mem::take(h));
        }
        ev
    }

    /// An input at `now`: bytes handed out since the last input count as
    /// sent now.
    pub fn tick(&mut self, now: Instant) {
        if self.transmitted {
            self.transmitted = false;
            self.last_send = self.last_send.max(now);
        }
    }

    /// After reading: start or stop the clock of an unfinished top-level
    /// element.
    pub fn track_element(&mut self, now: Instant) {
        if !self.reader.in_element() {
            self.element_started = None;
        } else if self.element_started.is_none() {
            self.element_started = Some(now);
        }
    }

    /// When the unfinished top-level element must be complete.
    pub fn element_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.life == Life::Closed {
            return None;
        }
        self.element_started.map(|t| deadline(t, timeout))
    }

    /// Bytes queued for the peer and not yet taken by `poll_transmit`.
    pub fn queued(&self) -> usize {
        self.out.len() + self.message_bytes
    }

    /// The session is ready: from now on keep only what is needed, when
    /// the policy says so.
    pub fn become_lean(&mut self, policy: BufferPolicy) {
        if policy == BufferPolicy::ReleaseWhenIdle {
            self.lean = true;
            self.after_read();
        }
    }

    /// After a read: an idle ready session gives back the reader's
    /// scratch space (it is taken again on the next read).
    pub fn after_read(&mut self) {
        if self.lean {
            self.reader.release_temporaries();
        }
    }

    /// Writes the stream header; nothing when a value (from the
    /// configuration) cannot be carried.
    #[must_use = "a header that cannot be written must fail the stream"]
    pub fn write_header(&mut self, header: &StreamHeader) -> Result<(), WriteError> {
        let written = self.writer.write_header(out_ready(&mut self.out), header);
        if written.is_ok() && matches!(self.first_header, FirstHeader::Awaited) {
            self.first_header = FirstHeader::Written(Box::new(header.clone()));
        }
        self.seal();
        written
    }

    /// Writes an element; nothing when it cannot be serialised (a value
    /// from the configuration or the host that XML cannot carry).
    #[must_use = "an element that cannot be written must fail the stream or be refused"]
    pub fn write(&mut self, el: &Element) -> Result<(), WriteError> {
        let written = self.writer.write_element(out_ready(&mut self.out), el);
        self.seal();
        written
    }

    /// `el` as [`write`](Self::write) would write it on this stream, in
    /// a buffer of its own (to write again with
    /// [`write_serialized`](Self::write_serialized)).
    pub fn serialize(&self, el: &Element) -> Result<Vec<u8>, WriteError> {
        let mut bytes = Vec::new();
        self.writer.write_element(&mut bytes, el)?;
        Ok(bytes)
    }

    /// Writes what [`serialize`](Self::serialize) made for a stream of
    /// the same framing and content namespace.
    pub fn write_serialized(&mut self, bytes: &[u8]) {
        out_ready(&mut self.out).extend_from_slice(bytes);
        self.seal();
    }

    /// Writes a SASL element that carries no text: a base64 payload or
    /// none (the hot path of every authentication).
    pub fn write_sasl(&mut self, el: SaslPayload<'_>) {
        el.write(out_ready(&mut self.out));
        self.seal();
    }

    /// Writes `<auth/>` without building it (see
    /// [`write_auth`](crate::steps::sasl::write_auth)).
    #[must_use = "an <auth/> that cannot be written must fail the stream"]
    pub fn write_auth(
        &mut self,
        mechanism: &str,
        initial_response: Option<&[u8]>,
        extra: &[crate::sasl::AuthAttribute],
    ) -> Result<(), WriteError> {
        let written = crate::steps::sasl::write_auth(
            &self.writer,
            out_ready(&mut self.out),
            mechanism,
            initial_response,
            extra,
        );
        self.seal();
        written
    }

    /// Sends a stanza, under stream management when `sm` is on (both
    /// roles): refused while the unacknowledged queue is at a bound of
    /// `settings`, else written and its bytes kept until acknowledged,
    /// with `<r/>` after it when one is due by count. `at` is the last
    /// input's time.
    pub fn send_stanza(
        &mut self,
        sm: Option<&mut crate::sm::Session>,
        settings: Option<&crate::sm::SmSettings>,
        el: &Element,
        at: Instant,
    ) -> Result<(), UsageError> {
        let (Some(s), Some(settings)) = (sm, settings) else {
            return self.write(el).map_err(UsageError::Write);
        };
        if s.room(settings).is_err() {
            return Err(UsageError::UnackedQueueFull {
                stanzas: s.unacked_len(),
            });
        }
        let before = self.out.len();
        let written = self.writer.write_element(&mut self.out, el);
        if let Err(e) = written {
            return Err(UsageError::Write(e));
        }
        let kept = crate::sm::SentStanza::from_wire(&self.out[before..], el, &self.writer);
        self.seal();
        if s.push(kept, at, settings) {
            s.requested(at);
            self.write_sm(None);
        }
        Ok(())
    }

    /// Writes `<r/>` (`None`) or `<a h/>` of stream management without
    /// building an element: they go out every few stanzas. The same bytes
    /// in every framing (the element names its namespace).
    pub fn write_sm(&mut self, ack: Option<u32>) {
        crate::steps::sm::write_request_or_ack(&mut self.out, ack);
        self.seal();
    }

    /// Stream management's request deadline (both roles): once `now`
    /// reaches `due`, `<r/>` goes out and the session notes it.
    pub fn sm_request_if_due(
        &mut self,
        sm: Option<&mut crate::sm::Session>,
        due: Option<Instant>,
        now: Instant,
    ) {
        if due.is_some_and(|d| now >= d) {
            if let Some(s) = sm {
                s.requested(now);
            }
            self.write_sm(None);
        }
    }

    /// Stream management after a resume (both roles): the unacknowledged
    /// stanzas of `sm` again, then `<r/>` for them.
    pub fn sm_retransmit(&mut self, sm: &mut crate::sm::Session, now: Instant) {
        // Kept in their standalone form: right for every framing (over
        // TCP the `xmlns` repeats the stream's, which XML allows).
        for stanza in sm.unacked() {
            self.out.extend_from_slice(stanza.as_bytes());
            self.seal();
        }
        sm.resent(now);
        if sm.unacked_len() > 0 {
            sm.requested(now);
            self.write_sm(None);
        }
    }

    /// A whitespace keepalive: TCP only (RFC 7395 has none: nothing is
    /// written over WebSocket).
    pub fn write_keepalive(&mut self) {
        if self.framing == Framing::Tcp {
            self.out.push(b' ');
        }
    }

    /// `</stream:stream>` or `<close/>`.
    fn write_close(&mut self) {
        self.writer.write_close(&mut self.out);
        self.seal();
    }

    pub fn is_closed(&self) -> bool {
        self.life == Life::Closed
    }

    /// Sends `</stream:stream>` and waits for the peer's, at most `grace`.
    pub fn start_close(&mut self, now: Instant, grace: Duration, closed_event: E) {
        if self.life != Life::Open {
            return;
        }
        if self.awaiting_tls {
            // No `</stream:stream>` where TLS must follow: just end.
            return self.finish(closed_event);
        }
        self.write_close();
        self.life = Life::Closing;
        self.close_deadline = Some(deadline(now, grace));
    }

    /// Sends RFC 7395's redirect, `<close see-other-uri='uri'/>`, and
    /// waits for the peer's close, at most `grace`. A `uri` that cannot be
    /// written changes nothing.
    pub fn start_close_see_other_uri(
        &mut self,
        now: Instant,
        grace: Duration,
        uri: &str,
    ) -> Result<(), WriteError> {
        if self.life != Life::Open {
            return Ok(());
        }
        self.writer.write_close_see_other_uri(&mut self.out, uri)?;
        self.seal();
        self.life = Life::Closing;
        self.close_deadline = Some(deadline(now, grace));
        Ok(())
    }

    /// The peer closed: answer when we have not closed yet, and finish.
    pub fn peer_closed(&mut self, closed_event: E) {
        if self.life == Life::Open && !self.awaiting_tls {
            self.write_close();
        }
        self.finish(closed_event);
    }

    /// Nothing more will happen.
    pub fn finish(&mut self, closed_event: E) {
        if self.life == Life::Closed {
            return;
        }
        self.life = Life::Closed;
        self.close_deadline = None;
        self.events.push_back(closed_event);
    }

    /// Fails the stream once: the stream error for the peer when it is at
    /// fault (`condition`), the close, the error event, the closed event.
    /// Later failures are ignored: the first one is what the host sees.
    pub fn fail(
        &mut self,
        err: Err,
        condition: Option<StreamError>,
        error_event: impl FnOnce(Err) -> E,
        closed_event: E,
    ) {
        if self.error.is_some() || self.life == Life::Closed {
            return;
        }
        let speak = self.life == Life::Open && !self.awaiting_tls;
        if let Some(c) = condition.filter(|_| speak) {
            if let Err(e) = self.writer.write_stream_error(&mut self.out, &c) {
                // Cannot happen: the machines' own conditions are bare
                // defined ones and the host's were checked by
                // `close_with_error`. Were it to, the peer still gets the
                // bare condition, whose name is always writable, and the
                // host `err` below.
                self.writer
                    .write_bare_stream_error(&mut self.out, &c.condition, &e);
            }
            self.seal();
        }
        if speak {
            self.write_close();
        }
        self.error = Some(Box::new(err.clone()));
        self.events.push_back(error_event(err));
        self.finish(closed_event);
    }
}

/// The room an empty output buffer is given before a write: a stream
/// header, features or a SASL step fit.
const OUT_START: usize = 512;

/// The output buffer `out`, with room for a negotiation step when it has
/// none: grown from nothing, a header or a features element took six
/// reallocations.
fn out_ready(out: &mut Vec<u8>) -> &mut Vec<u8> {
    if out.capacity() == 0 {
        out.reserve(OUT_START);
    }
    out
}

/// What a ready session does with its buffers between reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BufferPolicy {
    /// Give back the output buffer and the event queue once drained, and
    /// the reader's scratch space (up to `Limits::max_token_bytes`) after
    /// every read: an idle session holds about 2 KiB in all, at the cost
    /// of a few allocations per read. For many mostly idle sessions (the
    /// default).
    #[default]
    ReleaseWhenIdle,
    /// Keep them: no allocation per read for a busy session, about 10 KiB
    /// more per session.
    Keep,
}

/// `now + d`, or the farthest instant representable when that overflows
/// (a configured duration of centuries means "never", not a panic).
pub(crate) fn deadline(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or_else(|| {
        // Halve until it fits: still beyond any run of the program.
        let mut d = d;
        loop {
            d /= 2;
            if let Some(t) = now.checked_add(d) {
                return t;
            }
        }
    })
}

/// The kinds of answer a server's host gives to its requests: each
/// request takes exactly one (see [`Server::answer`](crate::server::Server::answer)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnswerKind {
    /// [`CredentialAnswer::Verdict`](crate::sasl::CredentialAnswer::Verdict):
    /// for a password, token, EXTERNAL or ANONYMOUS request.
    CredentialVerdict,
    /// [`CredentialAnswer::Scram`](crate::sasl::CredentialAnswer::Scram).
    ScramCredentials,
    /// [`CredentialAnswer::FastTokens`](crate::sasl::CredentialAnswer::FastTokens):
    /// for a FAST token request.
    FastTokens,
    /// [`CredentialAnswer::DigestMd5`](crate::sasl::CredentialAnswer::DigestMd5).
    #[cfg(feature = "digest-md5")]
    #[cfg_attr(docsrs, doc(cfg(feature = "digest-md5")))]
    DigestMd5Secret,
    /// A [`BindAnswer`](crate::server::BindAnswer).
    Bind,
    /// A [`ResumeAnswer`](crate::server::ResumeAnswer).
    Resume,
    /// A FAST token to issue ([`Server::answer_fast_token`](crate::server::Server::answer_fast_token)).
    IssueFastToken,
    /// A [`RegisterAnswer`](crate::server::RegisterAnswer).
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    Registration,
    /// [`LegacyAuthAnswer::ZeroK`](crate::server::LegacyAuthAnswer::ZeroK).
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    LegacyZeroK,
    /// [`LegacyAuthAnswer::Verdict`](crate::server::LegacyAuthAnswer::Verdict).
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    LegacyVerdict,
}

/// A host misused the API (not a protocol failure).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum UsageError {
    /// Stanzas may only be sent once the session is ready; nothing was
    /// queued.
    NotReady,
    /// `tls_established` without a pending `StartTls`.
    NotAwaitingTls,
    /// An answer to a request that is not pending.
    NoPendingRequest,
    /// An answer of another kind than the pending request takes (a SASL
    /// verdict to a SCRAM credential request, a bind answer while
    /// credentials are asked for...). Nothing was done: the request is
    /// still pending and takes the right answer later.
    WrongAnswer {
        /// What the pending request takes.
        expected: AnswerKind,
        /// What was given.
        given: AnswerKind,
    },
    /// Bytes fed while TLS is being set up: they belong to TLS.
    AwaitingTls,
    /// Bytes given to `feed` on a machine configured for
    /// [`Framing::WebSocket`]: it reads whole messages, given to
    /// `feed_message`. Nothing was read.
    MessagesExpected,
    /// The stanza cannot be serialised.
    Write(WriteError),
    /// The stream failed or was closed before (`error()` says
    /// why, if it failed).
    Closed,
    /// A `see-other-uri` redirect on a machine framed for TCP: RFC 7395's
    /// `<close see-other-uri/>` exists over WebSocket and BOSH only; over
    /// TCP the redirect is the `see-other-host` stream error
    /// (`close_with_error`). Nothing was sent.
    RedirectNeedsWebFraming,
    /// Stream management: the queue of stanzas the peer has not
    /// acknowledged is at its bound
    /// ([`SmSettings::max_unacked`](crate::sm::SmSettings::max_unacked) or
    /// [`max_unacked_bytes`](crate::sm::SmSettings::max_unacked_bytes)).
    /// The stanza was not sent; send it again once acknowledgements
    /// arrive ([`Acked`](crate::client::ClientEvent::Acked) events).
    UnackedQueueFull {
        /// Stanzas waiting for an acknowledgement.
        stanzas: usize,
    },
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotReady => f.write_str(
                "stanzas can be sent only once the session is ready; nothing was queued",
            ),
            Self::NotAwaitingTls => {
                f.write_str("tls_established was called but no StartTls is pending")
            }
            Self::NoPendingRequest => {
                f.write_str("this answer matches no request that is waiting for one")
            }
            Self::WrongAnswer { expected, given } => write!(
                f,
                "the pending request takes an answer of kind {expected:?}, not {given:?}; it is still pending"
            ),
            Self::AwaitingTls => f.write_str(
                "bytes were fed while TLS is being set up: they belong to the TLS handshake",
            ),
            Self::Write(e) => write!(f, "the element cannot be sent: {e}"),
            Self::MessagesExpected => f.write_str(
                "this machine reads WebSocket messages: give them to feed_message, not feed",
            ),
            Self::Closed => f.write_str("the stream is closed (error() says why, if it failed)"),
            Self::RedirectNeedsWebFraming => f.write_str(
                "a see-other-uri redirect exists over WebSocket and BOSH only; over TCP send the see-other-host stream error",
            ),
            Self::UnackedQueueFull { stanzas } => write!(
                f,
                "{stanzas} stanzas wait for an acknowledgement, the most allowed: the stanza was not sent"
            ),
        }
    }
}

impl std::error::Error for UsageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Write(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each variant says what went wrong in a sentence (it used to print
    /// its `Debug`: `NotReady`, `Write(InvalidChar(7))`).
    #[test]
    fn usage_errors_display_a_sentence() {
        let cases = [
            (
                UsageError::NotReady,
                "stanzas can be sent only once the session is ready; nothing was queued",
            ),
            (
                UsageError::NotAwaitingTls,
                "tls_established was called but no StartTls is pending",
            ),
            (
                UsageError::NoPendingRequest,
                "this answer matches no request that is waiting for one",
            ),
            (
                UsageError::WrongAnswer {
                    expected: AnswerKind::ScramCredentials,
                    given: AnswerKind::CredentialVerdict,
                },
                "the pending request takes an answer of kind ScramCredentials, not CredentialVerdict; it is still pending",
            ),
            (
                UsageError::AwaitingTls,
                "bytes were fed while TLS is being set up: they belong to the TLS handshake",
            ),
            (
                UsageError::Write(WriteError::InvalidChar(7)),
                "the element cannot be sent: character U+0007 cannot be sent in XML",
            ),
            (
                UsageError::Closed,
                "the stream is closed (error() says why, if it failed)",
            ),
            (
                UsageError::RedirectNeedsWebFraming,
                "a see-other-uri redirect exists over WebSocket and BOSH only; over TCP send the see-other-host stream error",
            ),
        ];
        for (e, shown) in cases {
            assert_eq!(e.to_string(), shown);
            assert_ne!(e.to_string(), format!("{e:?}"));
        }
        let e = UsageError::Write(WriteError::InvalidChar(7));
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("character U+0007 cannot be sent in XML")
        );
    }
}
