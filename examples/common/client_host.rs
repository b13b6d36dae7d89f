//! What the client example hosts (`client`, `tokio_client`,
//! `legacy_login`) do alike once the bytes are in: the message to self
//! after `Ready` and its deadline, the events they all treat the same way,
//! the outcome line, and the `SEND:`/`RECV:` bookkeeping. The state machine
//! is sans-IO, so the blocking and the tokio host share all of it; only
//! reading, writing and the TLS handshake stay with each host, and the
//! blocking hosts (`reguser` too) share their drive loop, [`drive`].
//!
//! Included with `#[path = "common/client_host.rs"] mod client_host;`, next
//! to `host`; not every example uses every item.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use xmpp_sansio::client::{Client, ClientError, ClientEvent};

use crate::host::{message_to, note, security_notes};
use crate::tls::{self, BindingChoice, ReadOutcome, Transport};

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
    /// The first reason of failure (a timeout of ours before the close).
    error: Option<String>,
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
            error: None,
        }
    }

    /// Acts on `Ready` (send the message), on the message coming back
    /// (close), on the first `Error` and on `Closed`; hands every other
    /// event back.
    pub fn on_event(&mut self, client: &mut Client, ev: ClientEvent) -> Result<Handled, String> {
        match ev {
            ClientEvent::Ready { jid } => {
                note(&format!("ready as {jid}"));
                client
                    .send(&message_to(&jid, self.id, self.body))
                    .map_err(|e| format!("internal send: {e}"))?;
                self.jid = Some(jid);
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
                client.close(Instant::now());
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

    /// When the host must wake up: the client's deadline or ours.
    pub fn deadline(&self, client: &Client) -> Option<Instant> {
        [client.poll_timeout(), self.deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// The wait ended at [`Self::deadline`]: the client's timers, and ours
    /// (the message did not come back in time: close).
    pub fn on_deadline(&mut self, client: &mut Client) {
        let now = Instant::now();
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now);
        }
        if self.deadline.is_some_and(|t| t <= now) {
            self.deadline = None;
            self.error = Some("timeout waiting for the message to self".into());
            client.close(now);
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
    pub fn on_hangup(&mut self, client: &Client) -> Result<String, String> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.echoed && !client.is_ready() {
            // We sent </stream:stream>; the server hung up without its
            // own: done all the same.
            note("the server closed the connection without </stream:stream>");
            return Ok(self.jid());
        }
        Err(match client.error() {
            Some(e) => (self.error_line)(e),
            None => "closed-by-peer (the connection ended)".into(),
        })
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
        } => {
            note(&format!("authenticated with {mechanism}"));
            for line in security_notes(security) {
                note(&line);
            }
        }
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

/// Everything `poll_transmit` has, in one buffer (empty: nothing to send).
pub fn transmit(client: &mut Client) -> Vec<u8> {
    let mut out = Vec::new();
    while client.poll_transmit(&mut out) > 0 {}
    out
}

/// Feeds `data` to the client and queues the events of this input, in
/// order, for the drain. Returns the part of `data` that is XMPP: what
/// follows `<proceed/>` belongs to TLS (the client hands it back with
/// `StartTls`), so only what the client parsed is logged.
pub fn feed<'d>(
    client: &mut Client,
    data: &'d [u8],
    queued: &mut VecDeque<ClientEvent>,
) -> Result<&'d [u8], String> {
    client
        .feed(Instant::now(), data)
        .map_err(|e| format!("internal feed: {e}"))?;
    while let Some(ev) = client.poll_event() {
        queued.push_back(ev);
    }
    let tls_tail = queued
        .iter()
        .find_map(|e| match e {
            ClientEvent::StartTls { pending } => Some(pending.len()),
            _ => None,
        })
        .unwrap_or(0);
    Ok(&data[..data.len() - tls_tail.min(data.len())])
}

/// A blocking host (std::net + rustls) of the drive loop of the
/// `xmpp_sansio::client` docs: [`drive`] runs the loop, the host says what
/// to do at each step.
pub trait BlockingHost {
    /// What a finished run gives.
    type Output;
    /// Why a run failed; the loop's own failures (I/O) are `io ...` lines.
    type Error: From<String>;

    /// The connection (none while a TLS handshake has it).
    fn connection(&mut self) -> &mut Option<Transport>;
    /// `out` is about to be written: log it.
    fn sending(&mut self, out: &[u8]);
    /// The next event to act on.
    fn next_event(&mut self, client: &mut Client) -> Option<ClientEvent> {
        client.poll_event()
    }
    /// Acts on one event; `true` when the stream is over.
    fn on_event(&mut self, client: &mut Client, ev: ClientEvent) -> Result<bool, Self::Error>;
    /// The result once the stream is over (after the last output went out).
    fn finish(&mut self) -> Result<Self::Output, Self::Error>;
    /// When to wake up without bytes.
    fn deadline(&self, client: &Client) -> Option<Instant>;
    /// Bytes came.
    fn on_bytes(&mut self, client: &mut Client, data: &[u8]) -> Result<(), Self::Error>;
    /// The deadline came first.
    fn on_deadline(&mut self, client: &mut Client);
    /// The server hung up.
    fn on_end(&mut self, client: &mut Client) -> Result<Self::Output, Self::Error>;
}

/// The drive loop: after every input, write what `poll_transmit` has and
/// act on the events (each may queue more bytes), then wait for bytes or
/// the host's deadline. Once the stream is over (closed, or failed: the
/// machine's stream error and `</stream:stream>` are written first) or
/// the host fails, the connection is hung up at once
/// ([`Transport::hang_up`]): what the peer still sends is not read.
pub fn drive<H: BlockingHost>(host: &mut H, client: &mut Client) -> Result<H::Output, H::Error> {
    let result = drive_loop(host, client);
    if let Some(t) = host.connection().take() {
        t.hang_up();
    }
    result
}

fn drive_loop<H: BlockingHost>(host: &mut H, client: &mut Client) -> Result<H::Output, H::Error> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        loop {
            flush(host, client)?;
            let Some(ev) = host.next_event(client) else {
                break;
            };
            if host.on_event(client, ev)? {
                flush(host, client)?;
                return host.finish();
            }
        }
        if client.is_closed() {
            // Over, whether or not the host took `Closed` as the end:
            // never read past the machine's close.
            return host.finish();
        }
        let deadline = host.deadline(client);
        match transport(host).read_by(&mut buf, deadline)? {
            ReadOutcome::End => return host.on_end(client),
            ReadOutcome::Data(n) => host.on_bytes(client, &buf[..n])?,
            ReadOutcome::Deadline => host.on_deadline(client),
        }
    }
}

/// `ClientEvent::StartTls` on a blocking host: the TLS handshake on the
/// plain socket of `connection` (by the client's deadline; `pending` first),
/// the `-- TLS established` note, the connection now TLS, and the client
/// told. `binding` and `require_ems` as for [`tls::established`].
pub fn start_tls(
    connection: &mut Option<Transport>,
    client: &mut Client,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
    pending: &[u8],
    binding: BindingChoice,
    require_ems: bool,
) -> Result<(), String> {
    let Some(Transport::Plain(sock)) = connection.take() else {
        return Err("internal StartTls on a TLS transport".into());
    };
    let deadline = client.poll_timeout();
    let (transport, est) = tls::start(
        sock,
        config,
        server_name,
        pending,
        deadline,
        binding,
        require_ems,
    )?;
    note(&format!("TLS established: {}", est.summary));
    *connection = Some(transport);
    client
        .tls_established(Instant::now(), est.info)
        .map_err(|e| format!("internal tls_established: {e}"))
}

/// Drains `poll_transmit` and writes it.
fn flush<H: BlockingHost>(host: &mut H, client: &mut Client) -> Result<(), H::Error> {
    let out = transmit(client);
    if out.is_empty() {
        return Ok(());
    }
    host.sending(&out);
    transport(host)
        .write_all(&out)
        .map_err(|e| H::Error::from(format!("io write: {e}")))
}

fn transport<H: BlockingHost>(host: &mut H) -> &mut Transport {
    host.connection().as_mut().expect("connected")
}
