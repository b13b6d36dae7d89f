//! The blocking driver: a [`Client`](xmpp_sansio::client::Client) or a
//! [`Server`](xmpp_sansio::server::Server) over any `Read + Write`.
//!
//! ```no_run
//! use std::net::TcpStream;
//! use std::time::Instant;
//! use xmpp_sansio::client::{Client, ClientConfig, ClientEvent, Credentials, TlsMode};
//! use xmpp_sansio_hosts::blocking::{Driver, Wake};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ClientConfig::builder("juliet@example.com", Credentials::password("secret"));
//! config.tls = TlsMode::None; // or keep STARTTLS and add `with_tls`
//! let client = Client::new(config.build()?, Instant::now());
//! let mut driver = Driver::new(client, TcpStream::connect("127.0.0.1:5222")?);
//! loop {
//!     match driver.next(None)? {
//!         Wake::Event(ClientEvent::Ready { jid }) => {
//!             println!("ready as {jid}");
//!             driver.close();
//!         }
//!         Wake::Event(ClientEvent::Closed) | Wake::Over => break,
//!         Wake::Event(_) | Wake::Deadline | Wake::Interrupted => {}
//!     }
//! }
//! driver.hang_up();
//! # Ok(())
//! # }
//! ```
//!
//! One call of [`Driver::next`] runs the drive loop of the core crate's
//! docs until there is something for the host: it writes what
//! `poll_transmit` has, hands out the next event, and otherwise waits for
//! bytes (fed to the machine) or the machine's deadline (handled), or the
//! host's own deadline. `StartTls` never reaches the host: the driver runs
//! the upgrade callback given to [`Driver::with_tls`] and calls
//! `tls_established` itself.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use minidom::Element;

use tungstenite::{Message, WebSocket};

use crate::{
    earliest, incoming, outgoing, outgoing_messages, Direction, DriverError, Input, Machine,
    Upgraded, WireLog,
};

/// A connection the blocking driver can wait on with a deadline.
///
/// Any `Read + Write` is one through [`NoDeadline`] (reads then block:
/// the machine's timers only run when bytes come). [`TcpStream`] sets its
/// read timeout; rustls streams pass the deadline to the stream under them.
pub trait Transport: Read + Write {
    /// Makes the next reads return (`WouldBlock` or `TimedOut`) at
    /// `deadline` at the latest (none: block).
    fn set_read_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()>;
    /// Ends the connection now, after what was written: nothing more is
    /// read (TLS: `close_notify` first).
    fn hang_up(&mut self);
}

impl Transport for TcpStream {
    fn set_read_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        // A zero timeout is an error for std: wait a millisecond at least.
        self.set_read_timeout(deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        }))
    }

    /// Shuts the write side down (the peer sees the end of the stream);
    /// the socket closes when dropped.
    fn hang_up(&mut self) {
        let _ = self.flush();
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn set_read_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        (**self).set_read_deadline(deadline)
    }
    fn hang_up(&mut self) {
        (**self).hang_up()
    }
}

impl<C, D, T> Transport for rustls::StreamOwned<C, T>
where
    C: std::ops::DerefMut + std::ops::Deref<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
    T: Transport,
{
    fn set_read_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_read_deadline(deadline)
    }

    fn hang_up(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
        self.sock.hang_up();
    }
}

/// Any `Read + Write` as a [`Transport`] without deadlines: reads block
/// until bytes come (for pipes, in-memory streams, or a host that bounds
/// the whole connection itself).
#[derive(Debug)]
pub struct NoDeadline<S>(pub S);

impl<S: Read> Read for NoDeadline<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Write> Write for NoDeadline<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<S: Read + Write> Transport for NoDeadline<S> {
    fn set_read_deadline(&mut self, _deadline: Option<Instant>) -> io::Result<()> {
        Ok(())
    }
    fn hang_up(&mut self) {
        let _ = self.0.flush();
    }
}

/// The marker of [`interrupt()`].
#[derive(Debug)]
struct Interrupt;

impl std::fmt::Display for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted by the host")
    }
}

impl std::error::Error for Interrupt {}

/// The error a [`Transport`]'s read returns to make [`Driver::next`]
/// return [`Wake::Interrupted`]: the host has an input of its own (a
/// stanza routed from another session). Unlike a plain
/// `ErrorKind::Interrupted`, which rustls retries, it passes through a TLS
/// stream.
pub fn interrupt() -> io::Error {
    io::Error::other(Interrupt)
}

/// Whether `e` is an [`interrupt()`] or an `ErrorKind::Interrupted`.
pub fn is_interrupt(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted || e.get_ref().is_some_and(|r| r.is::<Interrupt>())
}

/// The connection a driver owns: plain, or what a TLS upgrade returned.
pub type BoxTransport = Box<dyn Transport + Send>;

/// The STARTTLS upgrade: the plain connection, the bytes received after
/// `<proceed/>` (they belong to TLS: give them to the TLS library first)
/// and the machine's deadline (the handshake must end by it). Returns the
/// TLS connection; an error's text ends the driver with
/// [`DriverError::Tls`].
pub type TlsUpgrade = Box<
    dyn FnMut(BoxTransport, &[u8], Option<Instant>) -> Result<Upgraded<BoxTransport>, String>
        + Send,
>;

/// What [`Driver::next`] woke up for.
#[derive(Debug)]
pub enum Wake<E> {
    /// The machine's next event (never `StartTls`: the driver upgrades).
    Event(E),
    /// The host's deadline (the `until` of [`Driver::next`]) passed.
    Deadline,
    /// The connection's read returned [`interrupt()`] (or
    /// `ErrorKind::Interrupted`): a host whose [`Transport`] multiplexes
    /// other inputs (stanzas routed from other sessions) has something to
    /// do.
    Interrupted,
    /// The machine is closed and every event was handed out: nothing more
    /// is read. Call [`Driver::hang_up`].
    Over,
}

/// A WebSocket (RFC 6455, after its handshake: see
/// [`tungstenite::client::client`] and [`tungstenite::accept_hdr`]) over a
/// driver's connection, for [`Driver::websocket`].
pub type BoxWebSocket = WebSocket<BoxTransport>;

/// What the driver moves: bytes over a [`Transport`], or whole messages
/// over a WebSocket.
enum Link {
    Bytes(BoxTransport),
    Messages(Box<BoxWebSocket>),
}

impl Link {
    fn transport(&mut self) -> &mut BoxTransport {
        match self {
            Link::Bytes(t) => t,
            Link::Messages(ws) => ws.get_mut(),
        }
    }
}

/// What one read gave.
enum Read1 {
    /// Bytes into the driver's buffer.
    Bytes(usize),
    /// One text or binary message.
    Message(Vec<u8>),
    /// A control frame (ping, pong): nothing for the machine.
    Nothing,
}

/// The blocking driver of one machine (`M`: a `Client` or a `Server`) on
/// one connection.
pub struct Driver<M: Machine> {
    machine: M,
    conn: Option<Link>,
    upgrade: Option<TlsUpgrade>,
    wire: Option<WireLog>,
    queued: VecDeque<M::Event>,
    tls_summary: Option<String>,
    buf: Vec<u8>,
    /// Called with the machine right after `tls_established`.
    after_tls: Option<AfterTls<M>>,
}

/// What [`Driver::with_after_tls`] calls.
pub type AfterTls<M> = Box<dyn FnMut(&mut M) + Send>;

impl<M: Machine> Driver<M> {
    /// `machine` on `conn` (plain, or already TLS for direct TLS).
    pub fn new(machine: M, conn: impl Transport + Send + 'static) -> Self {
        Self::on(machine, Link::Bytes(Box::new(conn)))
    }

    /// `machine` ([`Framing::WebSocket`](xmpp_sansio::Framing::WebSocket))
    /// on a WebSocket whose handshake is done (`ws://`, or `wss://`: TLS
    /// under it, given to the machine with `direct_tls`): each text (or
    /// binary) message is fed with `feed_message`, each `poll_message` is
    /// sent as one text message. Pings are answered by the WebSocket; a
    /// close frame ends the connection ([`DriverError::PeerClosed`] unless
    /// the stream was over). There is no STARTTLS.
    pub fn websocket(machine: M, ws: BoxWebSocket) -> Self {
        Self::on(machine, Link::Messages(Box::new(ws)))
    }

    fn on(machine: M, conn: Link) -> Self {
        Driver {
            machine,
            conn: Some(conn),
            upgrade: None,
            wire: None,
            queued: VecDeque::new(),
            tls_summary: None,
            buf: vec![0u8; 16 * 1024],
            after_tls: None,
        }
    }

    /// A log of the plaintext each way (see [`Direction`]).
    pub fn with_wire_log(mut self, log: impl FnMut(Direction, &[u8]) + Send + 'static) -> Self {
        self.wire = Some(Box::new(log));
        self
    }

    /// The STARTTLS upgrade (see [`TlsUpgrade`]; [`crate::tls`] has
    /// rustls ones). Without it, `StartTls` ends the driver.
    pub fn with_tls(
        mut self,
        upgrade: impl FnMut(BoxTransport, &[u8], Option<Instant>) -> Result<Upgraded<BoxTransport>, String>
            + Send
            + 'static,
    ) -> Self {
        self.upgrade = Some(Box::new(upgrade));
        self
    }

    /// Calls `f` with the machine once a STARTTLS upgrade is done (after
    /// `tls_established`, before anything more is read): for what the
    /// host learnt in the handshake, such as the server's
    /// `Server::client_certificate`.
    pub fn with_after_tls(mut self, f: impl FnMut(&mut M) + Send + 'static) -> Self {
        self.after_tls = Some(Box::new(f));
        self
    }

    /// The machine (its state: `is_ready`, `jid`...).
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The machine, to answer its requests (`answer_credentials`...).
    /// What it queues is written by the next [`Driver::next`].
    pub fn machine_mut(&mut self) -> &mut M {
        &mut self.machine
    }

    /// The summary of the TLS upgrade, once there was one.
    pub fn tls_summary(&self) -> Option<&str> {
        self.tls_summary.as_deref()
    }

    /// Queues a stanza (written by the next [`Driver::next`]).
    pub fn send(&mut self, stanza: &Element) -> Result<(), DriverError> {
        self.machine
            .send(stanza)
            .map_err(|e| DriverError::Usage("send", e))
    }

    /// Closes the stream (`</stream:stream>` is written by the next
    /// [`Driver::next`]; the machine then waits for the peer's).
    pub fn close(&mut self) {
        self.machine.close(Instant::now());
    }

    /// Runs until there is something for the host: an event, the host's
    /// deadline `until`, an interrupted read, or the end of the stream.
    /// [`DriverError::PeerClosed`] when the peer hangs up first.
    pub fn next(&mut self, until: Option<Instant>) -> Result<Wake<M::Event>, DriverError> {
        loop {
            self.flush()?;
            if let Some(ev) = self
                .queued
                .pop_front()
                .or_else(|| self.machine.poll_event())
            {
                match M::take_start_tls(ev) {
                    Ok(pending) => self.start_tls(&pending)?,
                    Err(ev) => return Ok(Wake::Event(ev)),
                }
                continue;
            }
            if self.machine.is_closed() {
                // Never read past the machine's close.
                return Ok(Wake::Over);
            }
            let deadline = earliest(self.machine.poll_timeout(), until);
            let conn = self.conn.as_mut().expect("connected");
            conn.transport()
                .set_read_deadline(deadline)
                .map_err(DriverError::Read)?;
            match read1(conn, &mut self.buf) {
                // A TLS peer that closes without close_notify ends it too.
                Ok(Read1::Bytes(0)) => return Err(DriverError::PeerClosed),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(DriverError::PeerClosed)
                }
                Ok(Read1::Bytes(n)) => incoming(
                    &mut self.machine,
                    Input::Bytes(&self.buf[..n]),
                    &mut self.queued,
                    &mut self.wire,
                )?,
                Ok(Read1::Message(m)) => incoming(
                    &mut self.machine,
                    Input::Message(&m),
                    &mut self.queued,
                    &mut self.wire,
                )?,
                Ok(Read1::Nothing) => {}
                Err(e) if is_interrupt(&e) => return Ok(Wake::Interrupted),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let now = Instant::now();
                    if self.machine.poll_timeout().is_some_and(|t| t <= now) {
                        self.machine.handle_timeout(now);
                    }
                    if until.is_some_and(|t| t <= now) {
                        return Ok(Wake::Deadline);
                    }
                }
                Err(e) => return Err(DriverError::Read(e)),
            }
        }
    }

    /// Writes what is left to write, then ends the connection at once
    /// ([`Transport::hang_up`]): what the peer still sends is not read.
    pub fn hang_up(mut self) {
        let _ = self.flush();
        match self.conn.take() {
            Some(Link::Bytes(mut conn)) => conn.hang_up(),
            Some(Link::Messages(mut ws)) => {
                // A close frame, without waiting for the peer's.
                let _ = ws.close(None);
                let _ = ws.flush();
                ws.get_mut().hang_up();
            }
            None => {}
        }
    }

    /// Drains `poll_transmit` (`poll_message` over a WebSocket) and writes
    /// it.
    fn flush(&mut self) -> Result<(), DriverError> {
        // No connection: a TLS upgrade failed and took it.
        let Some(conn) = self.conn.as_mut() else {
            return Err(DriverError::Gone);
        };
        match conn {
            Link::Bytes(conn) => {
                let Some(out) = outgoing(&mut self.machine, &mut self.wire) else {
                    return Ok(());
                };
                conn.write_all(&out)
                    .and_then(|()| conn.flush())
                    .map_err(DriverError::Write)
            }
            Link::Messages(ws) => {
                let out = outgoing_messages(&mut self.machine, &mut self.wire);
                if out.is_empty() {
                    return Ok(());
                }
                for m in out {
                    ws.write(m).map_err(|e| DriverError::Write(ws_io(e)))?;
                }
                ws.flush().map_err(|e| DriverError::Write(ws_io(e)))
            }
        }
    }

    /// `StartTls`: the callback's handshake, then `tls_established`.
    fn start_tls(&mut self, pending: &[u8]) -> Result<(), DriverError> {
        let upgrade = self
            .upgrade
            .as_mut()
            .ok_or_else(|| DriverError::Tls("tls: no TLS upgrade in this driver".into()))?;
        let plain = match self.conn.take().expect("connected") {
            Link::Bytes(plain) => plain,
            Link::Messages(ws) => {
                // Cannot happen: a WebSocket machine never asks for STARTTLS.
                self.conn = Some(Link::Messages(ws));
                return Err(DriverError::Tls("tls: no STARTTLS over a WebSocket".into()));
            }
        };
        let up = upgrade(plain, pending, self.machine.poll_timeout()).map_err(DriverError::Tls)?;
        self.conn = Some(Link::Bytes(up.stream));
        self.tls_summary = Some(up.summary);
        self.machine
            .tls_established(Instant::now(), up.info)
            .map_err(|e| DriverError::Usage("tls_established", e))?;
        if let Some(f) = &mut self.after_tls {
            f(&mut self.machine);
        }
        Ok(())
    }
}

/// One read of `link`: bytes into `buf`, or one WebSocket message (an
/// interrupted or timed-out read leaves a partial frame with the
/// WebSocket, for the next read).
fn read1(link: &mut Link, buf: &mut [u8]) -> io::Result<Read1> {
    match link {
        Link::Bytes(conn) => conn.read(buf).map(Read1::Bytes),
        Link::Messages(ws) => match ws.read() {
            Ok(Message::Text(t)) => Ok(Read1::Message(t.as_bytes().to_vec())),
            Ok(Message::Binary(b)) => Ok(Read1::Message(b.to_vec())),
            // The peer's close frame (answered by the WebSocket): the end.
            Ok(Message::Close(_)) => Ok(Read1::Bytes(0)),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Ok(Read1::Nothing),
            Err(e) => Err(ws_io(e)),
        },
    }
}

/// A WebSocket error as an I/O error: the I/O error itself (so timeouts
/// and interrupts are told apart), `UnexpectedEof` for a closed
/// connection, else `InvalidData` with the reason.
pub(crate) fn ws_io(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::ErrorKind::UnexpectedEof.into()
        }
        other => io::Error::new(io::ErrorKind::InvalidData, format!("websocket: {other}")),
    }
}
