//! What the login tools (`client`, `tokio_client`, `legacy_login`) do
//! alike with the events: the message to self after `Ready` and its
//! deadline, the events they all treat the same way, the outcome line. The
//! blocking and the tokio driver both carry it out ([`Session`]).

use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_sansio::client::{Client, ClientError, ClientEvent};

use crate::blocking::Wake;
use crate::tool::host::{message_to, note, security_notes};
use crate::{blocking, tokio, DriverError};

/// What the message to self asks of a driver.
pub trait Session {
    /// Queues a stanza.
    fn send(&mut self, stanza: Element) -> Result<(), DriverError>;
    /// Closes the stream.
    fn close(&mut self);
}

impl Session for blocking::Driver<Client> {
    fn send(&mut self, stanza: Element) -> Result<(), DriverError> {
        blocking::Driver::send(self, &stanza)
    }
    fn close(&mut self) {
        blocking::Driver::close(self)
    }
}

impl Session for crate::bosh::BoshDriver {
    fn send(&mut self, stanza: Element) -> Result<(), DriverError> {
        crate::bosh::BoshDriver::send(self, &stanza)
    }
    fn close(&mut self) {
        crate::bosh::BoshDriver::close(self)
    }
}

/// A blocking driver of a client, as the login loop pulls it.
pub trait Pull: Session {
    /// See [`blocking::Driver::next`].
    fn next(&mut self, until: Option<Instant>) -> Result<Wake<ClientEvent>, DriverError>;
}

impl Pull for blocking::Driver<Client> {
    fn next(&mut self, until: Option<Instant>) -> Result<Wake<ClientEvent>, DriverError> {
        blocking::Driver::next(self, until)
    }
}

impl Pull for crate::bosh::BoshDriver {
    fn next(&mut self, until: Option<Instant>) -> Result<Wake<ClientEvent>, DriverError> {
        crate::bosh::BoshDriver::next(self, until)
    }
}

/// The handle of a client's tokio driver (over a stream, a WebSocket or
/// BOSH).
impl<M> Session for tokio::Handle<M> {
    fn send(&mut self, stanza: Element) -> Result<(), DriverError> {
        tokio::Handle::send(self, stanza)
    }
    fn close(&mut self) {
        let _ = tokio::Handle::close(self);
    }
}

/// How long the message to self may take to come back.
const ECHO_TIMEOUT: Duration = Duration::from_secs(10);

/// The message to self: sent at `Ready`, closed on when it comes back (or
/// bounces, or times out). Also keeps the first failure's line.
pub struct SelfMessage {
    id: &'static str,
    body: &'static str,
    error_line: fn(&ClientError) -> String,
    jid: Option<String>,
    deadline: Option<Instant>,
    /// The message came back.
    echoed: bool,
    /// We closed the stream (the message came back, or our timeout).
    closing: bool,
    /// The first reason of failure (a timeout of ours before the close).
    error: Option<String>,
    /// `--fast-token-file`: where an issued FAST token is kept.
    fast_token_file: Option<std::path::PathBuf>,
}

/// What [`SelfMessage::on_event`] did with an event.
pub enum Handled {
    /// Acted on.
    Done,
    /// `Closed`: the stream is over.
    Closed,
    /// Not one of these: the host's to act on.
    Other(ClientEvent),
}

impl SelfMessage {
    /// The message `<message id=ID><body>BODY</body></message>`; failures
    /// of the client are reported with `error_line`.
    pub fn new(
        id: &'static str,
        body: &'static str,
        error_line: fn(&ClientError) -> String,
    ) -> Self {
        SelfMessage {
            id,
            body,
            error_line,
            jid: None,
            deadline: None,
            echoed: false,
            closing: false,
            error: None,
            fast_token_file: None,
        }
    }

    /// Keeps the FAST tokens the server issues (and their counts) in
    /// `path`, and removes the file when the server refuses or
    /// invalidates its token ([`fast_token_file::on_event`](crate::tool::fast_token_file::on_event)).
    pub fn with_fast_token_file(mut self, path: Option<std::path::PathBuf>) -> Self {
        self.fast_token_file = path;
        self
    }

    /// Acts on `Ready` (send the message), on the message coming back
    /// (close), on the first `Error` and on `Closed`; hands every other
    /// event back.
    pub fn on_event(
        &mut self,
        session: &mut dyn Session,
        ev: ClientEvent,
    ) -> Result<Handled, String> {
        match ev {
            ClientEvent::Ready { jid } => {
                note(&format!("ready as {jid}"));
                session
                    .send(message_to(jid.as_str(), self.id, self.body))
                    .map_err(|e| e.to_string())?;
                self.jid = Some(jid.to_string());
                self.deadline = Some(Instant::now() + ECHO_TIMEOUT);
            }
            ClientEvent::Stanza(el) if el.name() == "message" && el.attr("id") == Some(self.id) => {
                self.deadline = None;
                if el.attr("type") == Some("error") {
                    self.error = Some("message to self bounced with an error".into());
                } else {
                    note("message to self received back");
                    self.echoed = true;
                }
                self.closing = true;
                session.close();
            }
            ClientEvent::FastToken(_)
            | ClientEvent::FastTokenCounted(_)
            | ClientEvent::FastTokenDiscarded { .. }
            | ClientEvent::FastTokenInvalidated { .. } => {
                crate::tool::fast_token_file::on_event(self.fast_token_file.as_deref(), &ev)?;
            }
            ClientEvent::Error(e) if self.error.is_none() => {
                self.error = Some((self.error_line)(&e));
            }
            ClientEvent::Closed => {
                note("stream closed");
                return Ok(Handled::Closed);
            }
            other => return Ok(Handled::Other(other)),
        }
        Ok(Handled::Done)
    }

    /// When the message to self times out, once it is sent.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The wait ended at [`Self::deadline`]: the message did not come back
    /// in time: close.
    pub fn on_deadline(&mut self, session: &mut dyn Session) {
        if self.deadline.is_some_and(|t| t <= Instant::now()) {
            self.deadline = None;
            self.error = Some("timeout waiting for the message to self".into());
            self.closing = true;
            session.close();
        }
    }

    /// The result once the stream is over: the bound JID when the message
    /// came back.
    pub fn outcome(&mut self) -> Result<String, String> {
        match self.error.take() {
            Some(e) => Err(e),
            None if self.echoed => Ok(self.jid()),
            None => Err("closed before the message to self came back".into()),
        }
    }

    /// The server hung up: our own failure first (a timeout), then done
    /// when the message came back and we already sent
    /// `</stream:stream>`, else why the connection ended too early.
    pub fn on_hangup(&mut self) -> Result<String, String> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.echoed && self.closing {
            // We sent </stream:stream>; the server hung up without its
            // own: done all the same.
            note("the server closed the connection without </stream:stream>");
            return Ok(self.jid());
        }
        Err(DriverError::PeerClosed.to_string())
    }

    /// The blocking drive loop of a login: the bound JID once the message
    /// came back and the stream closed. Events the message does not act
    /// on are noted ([`note_event`]).
    pub fn run_blocking(&mut self, driver: &mut impl Pull) -> Result<String, String> {
        loop {
            let wake = match driver.next(self.deadline()) {
                Ok(w) => w,
                Err(DriverError::PeerClosed) => return self.on_hangup(),
                Err(e) => return Err(e.to_string()),
            };
            match wake {
                Wake::Event(ev) => match self.on_event(driver, ev)? {
                    Handled::Closed => return self.outcome(),
                    Handled::Other(ev) => note_event(&ev),
                    Handled::Done => {}
                },
                Wake::Deadline => self.on_deadline(driver),
                Wake::Interrupted => {}
                Wake::Over => return self.outcome(),
            }
        }
    }

    /// The same on the tokio driver: the host's side of a
    /// [`tokio::connection`], joined with its [`tokio::Connection::run`].
    pub async fn run_tokio<M>(
        &mut self,
        mut handle: tokio::Handle<M>,
        events: &mut tokio::Events<ClientEvent>,
    ) -> Result<String, String> {
        let result = loop {
            let next = match self.deadline() {
                Some(d) => match ::tokio::time::timeout_at(d.into(), events.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        self.on_deadline(&mut handle);
                        continue;
                    }
                },
                None => events.next().await,
            };
            match next {
                Some(Ok(ev)) => match self.on_event(&mut handle, ev) {
                    Ok(Handled::Closed) => break self.outcome(),
                    Ok(Handled::Other(ev)) => note_event(&ev),
                    Ok(Handled::Done) => {}
                    Err(e) => break Err(e),
                },
                Some(Err(DriverError::PeerClosed)) => break self.on_hangup(),
                Some(Err(e)) => break Err(e.to_string()),
                None => break self.outcome(),
            }
        };
        // Over (or failed): hang up without reading what the server may
        // still send.
        let _ = handle.hang_up();
        result
    }

    fn jid(&self) -> String {
        self.jid.clone().unwrap_or_default()
    }
}

/// The `-- ` notes of the events a host only reports: `Authenticated`
/// (the mechanism and what SASL proved beyond the identity) and `Redirect`.
pub fn note_event(ev: &ClientEvent) {
    match ev {
        ClientEvent::Authenticated {
            mechanism,
            security,
            sasl2,
        } => {
            if *sasl2 {
                note("SASL2");
            }
            if mechanism.starts_with("HT-") {
                note(&format!("FAST {mechanism}"));
            }
            note(&format!("authenticated with {mechanism}"));
            for line in security_notes(security) {
                note(&line);
            }
        }
        ClientEvent::Bind2Enabled(f) => note(&format!(
            "Bind 2: carbons {}, CSI {}",
            if f.carbons { "on" } else { "off" },
            f.csi.map_or("none", |s| s.as_str())
        )),
        ClientEvent::Redirect {
            host,
            port,
            protected,
        } => note(&format!(
            "redirect (see-other-host) to {host}{}{}",
            port.map(|p| format!(":{p}")).unwrap_or_default(),
            if *protected {
                ""
            } else {
                " (over an unprotected stream)"
            }
        )),
        _ => {}
    }
}
