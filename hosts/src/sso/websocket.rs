//! The browser side over WebSocket (RFC 7395): one [`SsoSession`] per
//! connection, its messages read by the core's message reader and written
//! by its writer in WebSocket framing. The Negotiate check is the HTTP
//! upgrade's (the host's): a connection is one principal's for its life.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use xmpp_sansio::framing::Framing;
use xmpp_sansio::ns;
use xmpp_sansio::sasl::gssapi::GssContext;
use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition};
use xmpp_sansio::xml::{StreamEvent, StreamHeader, StreamReader, StreamWriter};

use super::session::{BrowserIn, BrowserOut, SsoEvent, SsoSession};
use super::{SsoConfig, SsoUser};

/// Who opened a connection: the Negotiate user, and the context made from
/// the credential it delegated.
type Caller = (Option<SsoUser>, Option<Box<dyn GssContext>>);

/// One browser WebSocket connection of the proxy.
pub struct SsoWebSocket {
    config: Arc<SsoConfig>,
    /// Until the browser's `<open/>`: who it is, and its credential.
    caller: Option<Caller>,
    session: Option<SsoSession>,
    reader: StreamReader,
    writer: StreamWriter,
    out: VecDeque<Vec<u8>>,
    /// The reader was reset for the browser's restart.
    restarted: bool,
    closed: bool,
    events: VecDeque<SsoEvent>,
}

impl std::fmt::Debug for SsoWebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoWebSocket")
            .field("session", &self.session)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl SsoWebSocket {
    /// A connection of `user` (`None`: no SSO), with the context made from
    /// the credential its upgrade's Negotiate token delegated.
    pub fn new(
        config: Arc<SsoConfig>,
        user: Option<SsoUser>,
        credential: Option<Box<dyn GssContext>>,
    ) -> Self {
        SsoWebSocket {
            reader: StreamReader::for_messages(config.limits),
            writer: StreamWriter::with_framing(ns::JABBER_CLIENT, Framing::WebSocket),
            config,
            caller: Some((user, credential)),
            session: None,
            out: VecDeque::new(),
            restarted: false,
            closed: false,
            events: VecDeque::new(),
        }
    }

    /// The session, once the browser opened its stream.
    pub fn session(&self) -> Option<&SsoSession> {
        self.session.as_ref()
    }

    /// Whether everything is over (the last messages may still be in
    /// [`poll_message`](Self::poll_message)).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// One message from the browser.
    pub fn feed_message(&mut self, now: Instant, message: &[u8]) {
        if self.closed {
            return;
        }
        if !self.restarted
            && self
                .session
                .as_ref()
                .is_some_and(SsoSession::awaits_restart)
        {
            // The browser's next <open/> starts a new stream.
            self.reader.reset();
            self.restarted = true;
        }
        self.reader.push_message(message.len());
        let mut input = message;
        loop {
            match self.reader.read(&mut input) {
                Ok(Some(StreamEvent::Header(h))) => match self.session.as_mut() {
                    Some(s) => s.browser(BrowserIn::Restart),
                    None => {
                        let (user, credential) = self.caller.take().unwrap_or_default();
                        let mut s =
                            SsoSession::new(self.config.clone(), user, h.to.as_deref(), now);
                        if let Some(c) = credential {
                            s.set_credential(c);
                        }
                        self.session = Some(s);
                    }
                },
                Ok(Some(StreamEvent::Element(el))) => match self.session.as_mut() {
                    Some(s) => s.browser(BrowserIn::Element(el)),
                    None => return self.refuse(StreamErrorCondition::NotAuthorized),
                },
                Ok(Some(StreamEvent::Closed | StreamEvent::StreamError(_))) => {
                    match self.session.as_mut() {
                        Some(s) => s.browser(BrowserIn::Close),
                        None => self.closed = true,
                    }
                }
                Ok(None) => break,
                Err(e) => return self.refuse(e.condition()),
            }
            if input.is_empty() {
                break;
            }
        }
        self.pump();
    }

    /// The browser's connection is gone.
    pub fn browser_gone(&mut self) {
        match self.session.as_mut() {
            Some(s) => s.browser(BrowserIn::Close),
            None => self.closed = true,
        }
        self.pump();
    }

    /// The next message for the browser.
    pub fn poll_message(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SsoEvent> {
        self.events.pop_front()
    }

    /// Appends the bytes to write upstream.
    pub fn poll_upstream(&mut self, buf: &mut Vec<u8>) -> usize {
        self.session.as_mut().map_or(0, |s| s.poll_upstream(buf))
    }

    /// Bytes from the upstream connection.
    pub fn feed_upstream(&mut self, data: &[u8]) {
        if let Some(s) = self.session.as_mut() {
            s.feed_upstream(data);
        }
        self.pump();
    }

    /// The upstream TLS handshake is done.
    pub fn tls_established(&mut self) {
        if let Some(s) = self.session.as_mut() {
            s.tls_established();
        }
        self.pump();
    }

    /// The upstream connection ended or failed.
    pub fn upstream_gone(&mut self, why: &str) {
        if let Some(s) = self.session.as_mut() {
            s.upstream_gone(why);
        }
        self.pump();
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session.as_ref().and_then(SsoSession::poll_timeout)
    }

    /// The clock reached [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(s) = self.session.as_mut() {
            s.handle_timeout(now);
        }
        self.pump();
    }

    fn refuse(&mut self, condition: StreamErrorCondition) {
        match self.session.as_mut() {
            Some(s) => {
                s.upstream_gone("the browser broke the framing");
                self.pump();
            }
            None => {
                self.write_close(Some(StreamError::new(condition)));
                self.closed = true;
            }
        }
    }

    fn write_close(&mut self, error: Option<StreamError>) {
        if let Some(e) = error {
            let mut m = Vec::new();
            if self.writer.write_stream_error(&mut m, &e).is_ok() {
                self.out.push_back(m);
            }
        }
        let mut m = Vec::new();
        self.writer.write_close(&mut m);
        self.out.push_back(m);
    }

    fn pump(&mut self) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let mut closing = None;
        while let Some(out) = s.poll_browser() {
            match out {
                BrowserOut::Open { id } => {
                    let header = StreamHeader {
                        from: Some(self.config.domain.clone()),
                        id,
                        version: Some("1.0".into()),
                        lang: Some("en".into()),
                        ..StreamHeader::default()
                    };
                    let mut m = Vec::new();
                    if self.writer.write_header(&mut m, &header).is_ok() {
                        self.out.push_back(m);
                    }
                }
                BrowserOut::Element(el) => {
                    let mut m = Vec::new();
                    if self.writer.write_element(&mut m, &el).is_ok() {
                        self.out.push_back(m);
                    }
                }
                BrowserOut::Close(e) => closing = Some(e),
            }
        }
        while let Some(ev) = s.poll_event() {
            if matches!(ev, SsoEvent::Closed { .. }) {
                self.closed = true;
            }
            self.events.push_back(ev);
        }
        if let Some(e) = closing {
            self.write_close(e);
        }
    }
}
