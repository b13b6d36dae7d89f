//! Hosts for [`xmpp_sansio`]: the I/O around its sans-IO state machines.
//!
//! The core crate never touches a socket: a [`Client`] or a [`Server`]
//! takes bytes, gives bytes and events, and says when it wants to be woken
//! up. This crate is the layer a host would otherwise write around it:
//!
//! - [`blocking`]: a driver over any `Read + Write` (a `TcpStream`, a pipe,
//!   a rustls stream...), pulled one event at a time with
//!   [`blocking::Driver::next`];
//! - [`tokio`]: a driver over any `AsyncRead + AsyncWrite + Unpin`, run as
//!   one future, with the events as a stream and a cloneable
//!   [`tokio::Handle`] to send stanzas, answer requests and close;
//! - both drivers move bytes over a stream, or whole messages over a
//!   WebSocket for a machine in WebSocket framing (RFC 7395:
//!   [`blocking::Driver::websocket`], [`tokio::websocket_connection`],
//!   with the handshakes of [`websocket`], tungstenite);
//! - [`bosh`]: a BOSH client (XEP-0206) for both drivers, each request body
//!   POSTed over HTTP/1.1 ([`http`], httparse), and the HTTP connection
//!   loop of a BOSH listener;
//! - [`tls`] and [`server_tls`]: the rustls glue (client and server
//!   configurations, the handshake, the channel-binding data the SCRAM
//!   `-PLUS` mechanisms need);
//! - [`sso`]: the single-sign-on connection manager's protocol as sans-IO
//!   machines (HTTP Negotiate users offered SASL EXTERNAL, which becomes
//!   SASL GSSAPI upstream with their delegated credential);
//! - the tools `client`, `tokio_client`, `server`, `reguser`,
//!   `legacy_login` and, with feature `gssapi`, `sso-proxy`
//!   (`cargo install --path hosts`), built on the drivers.
//!
//! Both drivers take the STARTTLS upgrade from a host callback: the machine
//! says `StartTls`, the driver hands the plain stream (and the bytes that
//! followed `<proceed/>`) to the callback, and goes on over the stream the
//! callback returns, telling the machine what TLS gave
//! ([`Upgraded::info`]).

// Unsafe code is forbidden, except for the one GSS-API call `libgssapi`
// does not wrap (feature `gssapi`, in `gssapi::ffi`, where it is allowed).
#![cfg_attr(not(feature = "gssapi"), forbid(unsafe_code))]
#![cfg_attr(feature = "gssapi", deny(unsafe_code))]
#![deny(missing_docs)]

use std::fmt;
use std::time::Instant;

use minidom::Element;
use xmpp_sansio::client::{Client, ClientEvent};
use xmpp_sansio::server::{Server, ServerEvent};
use xmpp_sansio::{TlsInfo, UsageError};

#[doc(hidden)]
pub mod async_server;
pub mod blocking;
pub mod bosh;
pub mod client_cert;
pub mod compact_tls;
#[cfg(feature = "gssapi")]
pub mod gssapi;
pub mod http;
#[doc(hidden)]
pub mod load;
pub mod random_pool;
pub mod server_tls;
pub mod sso;
pub mod tls;
mod tls_unique;
pub mod tokio;
#[doc(hidden)]
pub mod tool;
pub mod websocket;

/// What a driver needs of a state machine: [`Client`] and [`Server`] alike.
pub trait Machine {
    /// The machine's event type.
    type Event;
    /// Appends queued output to `buf`; the number of bytes appended.
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize;
    /// The next event.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// When to call [`Machine::handle_timeout`].
    fn poll_timeout(&self) -> Option<Instant>;
    /// Received bytes.
    fn feed(&mut self, now: Instant, data: &[u8]) -> Result<(), UsageError>;
    /// One received WebSocket message (a machine in
    /// [`Framing::WebSocket`](xmpp_sansio::Framing::WebSocket)).
    fn feed_message(&mut self, now: Instant, message: &[u8]) -> Result<(), UsageError>;
    /// The next WebSocket message to send (one element each).
    fn poll_message(&mut self) -> Option<Vec<u8>>;
    /// A deadline passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The TLS handshake after `StartTls` is done.
    fn tls_established(&mut self, now: Instant, info: TlsInfo) -> Result<(), UsageError>;
    /// Queues a stanza.
    fn send(&mut self, stanza: &Element) -> Result<(), UsageError>;
    /// Closes the stream.
    fn close(&mut self, now: Instant);
    /// The stream is over: nothing more is to be read.
    fn is_closed(&self) -> bool;
    /// The bytes after `<proceed/>` when `event` is `StartTls`, else the
    /// event back.
    fn take_start_tls(event: Self::Event) -> Result<Vec<u8>, Self::Event>;
    /// How many bytes at the end of the last input were left to TLS: the
    /// `pending` of a `StartTls` among `events` (0 without).
    fn tls_tail(events: &[Self::Event]) -> usize;
}

macro_rules! machine {
    ($machine:ty, $event:ident) => {
        impl Machine for $machine {
            type Event = $event;
            fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
                <$machine>::poll_transmit(self, buf)
            }
            fn poll_event(&mut self) -> Option<$event> {
                <$machine>::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$machine>::poll_timeout(self)
            }
            fn feed(&mut self, now: Instant, data: &[u8]) -> Result<(), UsageError> {
                <$machine>::feed(self, now, data)
            }
            fn feed_message(&mut self, now: Instant, message: &[u8]) -> Result<(), UsageError> {
                <$machine>::feed_message(self, now, message)
            }
            fn poll_message(&mut self) -> Option<Vec<u8>> {
                <$machine>::poll_message(self)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$machine>::handle_timeout(self, now)
            }
            fn tls_established(&mut self, now: Instant, info: TlsInfo) -> Result<(), UsageError> {
                <$machine>::tls_established(self, now, info)
            }
            fn send(&mut self, stanza: &Element) -> Result<(), UsageError> {
                <$machine>::send(self, stanza)
            }
            fn close(&mut self, now: Instant) {
                <$machine>::close(self, now)
            }
            fn is_closed(&self) -> bool {
                <$machine>::is_closed(self)
            }
            fn take_start_tls(event: $event) -> Result<Vec<u8>, $event> {
                match event {
                    $event::StartTls { pending } => Ok(pending),
                    other => Err(other),
                }
            }
            fn tls_tail(events: &[$event]) -> usize {
                events
                    .iter()
                    .find_map(|e| match e {
                        $event::StartTls { pending } => Some(pending.len()),
                        _ => None,
                    })
                    .unwrap_or(0)
            }
        }
    };
}

machine!(Client, ClientEvent);
machine!(Server, ServerEvent);

/// What a TLS upgrade callback returns: the stream to go on with (TLS now),
/// what the machine needs to know of it, and a one-line summary for logs
/// (`TLSv1.3 TLS13_AES_256_GCM_SHA384, ...`).
pub struct Upgraded<S> {
    /// The encrypted stream.
    pub stream: S,
    /// For `tls_established` (the version and the channel bindings).
    pub info: TlsInfo,
    /// A human summary of the session.
    pub summary: String,
}

/// Which way bytes went, for a wire log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Written to the peer (plaintext: before encryption).
    Sent,
    /// Received from the peer and parsed by the machine (after decryption;
    /// bytes after `<proceed/>`, which belong to TLS, are left out).
    Received,
}

/// A wire log: called with every plaintext chunk written or parsed.
pub type WireLog = Box<dyn FnMut(Direction, &[u8]) + Send>;

/// Why a driver stopped.
#[derive(Debug)]
pub enum DriverError {
    /// Reading the connection failed.
    Read(std::io::Error),
    /// Writing to the connection failed.
    Write(std::io::Error),
    /// The peer closed the connection (end of file, or TLS ended without
    /// `close_notify`) before the stream was over.
    PeerClosed,
    /// The TLS upgrade callback failed (its reason), or the machine asked
    /// for TLS and the driver has no callback.
    Tls(String),
    /// The machine refused a call of the driver (`feed`, `tls_established`,
    /// `send`): a bug of the driver or of the host's use of it.
    Usage(&'static str, UsageError),
    /// The connection is over (a [`tokio::Handle`] whose driver returned).
    Gone,
}

impl fmt::Display for DriverError {
    /// `io read: ...`, `io write: ...`, `closed-by-peer (the connection
    /// ended)`, the TLS callback's reason, `internal feed: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Read(e) => write!(f, "io read: {e}"),
            DriverError::Write(e) => write!(f, "io write: {e}"),
            DriverError::PeerClosed => f.write_str("closed-by-peer (the connection ended)"),
            DriverError::Tls(e) => f.write_str(e),
            DriverError::Usage(what, e) => write!(f, "internal {what}: {e}"),
            DriverError::Gone => f.write_str("the connection is over"),
        }
    }
}

impl std::error::Error for DriverError {}

/// What a driver read: bytes of a byte stream, or one whole WebSocket
/// message.
#[derive(Clone, Copy)]
enum Input<'a> {
    Bytes(&'a [u8]),
    Message(&'a [u8]),
}

/// Feeds `input` to `machine` (`feed` or `feed_message`) and appends the
/// events of this input to `queued`, in order, then logs the part the
/// machine parsed: what follows `<proceed/>` belongs to TLS (the machine
/// hands it back with `StartTls`).
fn incoming<M: Machine>(
    machine: &mut M,
    input: Input<'_>,
    queued: &mut std::collections::VecDeque<M::Event>,
    wire: &mut Option<WireLog>,
) -> Result<(), DriverError> {
    let now = Instant::now();
    let (data, fed) = match input {
        Input::Bytes(d) => (d, machine.feed(now, d)),
        Input::Message(m) => (m, machine.feed_message(now, m)),
    };
    fed.map_err(|e| DriverError::Usage("feed", e))?;
    let first = queued.len();
    while let Some(ev) = machine.poll_event() {
        queued.push_back(ev);
    }
    let tail = M::tls_tail(&queued.make_contiguous()[first..]);
    let xmpp = &data[..data.len() - tail.min(data.len())];
    if let (Some(log), false) = (wire, xmpp.is_empty()) {
        log(Direction::Received, xmpp);
    }
    Ok(())
}

/// Everything `poll_transmit` has, in one buffer, logged; `None`: nothing
/// to send.
fn outgoing<M: Machine>(machine: &mut M, wire: &mut Option<WireLog>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while machine.poll_transmit(&mut out) > 0 {}
    if out.is_empty() {
        return None;
    }
    if let Some(log) = wire {
        log(Direction::Sent, &out);
    }
    Some(out)
}

/// Every WebSocket message `poll_message` has, in order, each logged, as
/// text messages (the same type for tungstenite and tokio-tungstenite).
fn outgoing_messages<M: Machine>(
    machine: &mut M,
    wire: &mut Option<WireLog>,
) -> Vec<tungstenite::Message> {
    let mut out = Vec::new();
    while let Some(m) = machine.poll_message() {
        if let Some(log) = wire {
            log(Direction::Sent, &m);
        }
        out.push(tungstenite::Message::text(message_text(m)));
    }
    out
}

/// The text of an outgoing WebSocket message (the machines write UTF-8;
/// anything else is replaced, never a panic).
fn message_text(m: Vec<u8>) -> String {
    String::from_utf8(m).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    [a, b].into_iter().flatten().min()
}
