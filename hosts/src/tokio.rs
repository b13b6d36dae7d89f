//! The tokio driver: a [`Client`](xmpp_sansio::client::Client) or a
//! [`Server`](xmpp_sansio::server::Server) over any
//! `AsyncRead + AsyncWrite + Unpin`.
//!
//! [`connection`] splits one connection in three: the [`Connection`]
//! future that runs it (spawn it, or join it with the host's own loop),
//! the [`Events`] stream of the machine's events, and a cloneable
//! [`Handle`] to send stanzas, answer the machine's requests
//! ([`Handle::call`]), close the stream or hang up.
//!
//! ```no_run
//! use std::time::Instant;
//! use xmpp_sansio::client::{Client, ClientConfig, ClientEvent, Credentials, TlsMode};
//! use xmpp_sansio_hosts::tokio::connection;
//!
//! # async fn login() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ClientConfig::builder("juliet@example.com", Credentials::password("secret"));
//! config.tls = TlsMode::None; // or keep STARTTLS and add `with_tls`
//! let socket = tokio::net::TcpStream::connect("127.0.0.1:5222").await?;
//! let client = Client::new(config.build()?, Instant::now());
//! let (conn, handle, mut events) = connection(client, socket);
//! let host = async move {
//!     while let Some(event) = events.next().await {
//!         match event? {
//!             ClientEvent::Ready { jid } => {
//!                 println!("ready as {jid}");
//!                 handle.close()?;
//!             }
//!             ClientEvent::Closed => break,
//!             _ => {}
//!         }
//!     }
//!     Ok::<_, xmpp_sansio_hosts::DriverError>(())
//! };
//! let (_client, result) = tokio::join!(conn.run(), host);
//! result?;
//! # Ok(())
//! # }
//! ```
//!
//! The loop inside is the drive loop of the core crate's docs: after every
//! input (bytes, a command of a [`Handle`], the machine's deadline), write
//! what `poll_transmit` has and hand out the events; `StartTls` is handled
//! by the upgrade callback of [`Connection::with_tls`].

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use ::tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use minidom::Element;
use xmpp_sansio::UsageError;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::blocking::ws_io;
use crate::{
    incoming, outgoing, outgoing_messages, Direction, DriverError, Input, Machine, Upgraded,
    WireLog,
};

/// A connection the tokio driver can own: any `AsyncRead + AsyncWrite +
/// Unpin + Send`.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// The connection a driver owns: plain, or what a TLS upgrade returned.
pub type BoxStream = Box<dyn AsyncStream>;

/// What a TLS upgrade callback returns.
pub type UpgradeFuture = Pin<Box<dyn Future<Output = Result<Upgraded<BoxStream>, String>> + Send>>;

/// The STARTTLS upgrade: the plain connection and the bytes received after
/// `<proceed/>` (they belong to TLS). The handshake is bounded by the
/// machine's deadline (`tls handshake timed out`).
pub type TlsUpgrade = Box<dyn FnMut(BoxStream, Vec<u8>) -> UpgradeFuture + Send>;

/// How many events may wait in [`Events`] before the driver stops reading.
const EVENTS: usize = 64;

/// A call on the machine, made by the driver.
pub(crate) type Call<M> = Box<dyn FnOnce(&mut M) -> Result<(), UsageError> + Send>;

pub(crate) enum Command<M> {
    /// A stanza, counted among its handle's queued ones until the driver
    /// has taken it (the count drops with the command).
    Send(Element, Queued),
    Close,
    HangUp,
    Call(Call<M>),
}

/// One stanza of a [`Handle`] the driver has not taken yet: counted while
/// it exists.
pub(crate) struct Queued(Arc<AtomicUsize>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why [`Handle::try_send`] gave a stanza back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotQueued {
    /// As many stanzas as allowed are queued and not yet taken by the
    /// driver: the connection is far behind.
    Full,
    /// The driver has returned.
    Gone,
}

/// Sends stanzas, answers the machine's requests, closes; cloneable,
/// usable from any task.
pub struct Handle<M> {
    /// Each command boxed: a queued command is a pointer.
    commands: QueueSender<Box<Command<M>>>,
    /// Stanzas sent through any clone and not yet taken by the driver.
    queued: Arc<AtomicUsize>,
}

impl<M> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle {
            commands: self.commands.clone(),
            queued: self.queued.clone(),
        }
    }
}

impl<M> std::fmt::Debug for Handle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl<M> Handle<M> {
    /// Runs `call` on the machine, in order with the other commands: how a
    /// host answers a request (`answer_credentials`, `answer_bind`...), at
    /// once or after a database round trip. An error comes back as a
    /// [`DriverError::Usage`] item of the [`Events`] stream.
    pub fn call(
        &self,
        call: impl FnOnce(&mut M) -> Result<(), UsageError> + Send + 'static,
    ) -> Result<(), DriverError> {
        self.command(Command::Call(Box::new(call)))
    }

    /// Queues a stanza. A stanza the machine refuses (not ready yet) comes
    /// back as a [`DriverError::Usage`] item of the [`Events`] stream.
    pub fn send(&self, stanza: Element) -> Result<(), DriverError> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.command(Command::Send(stanza, Queued(self.queued.clone())))
    }

    /// [`send`](Self::send), unless `max` stanzas (or about that many, with
    /// several senders at once) are queued and not yet taken by the
    /// driver: then the stanza comes back, and the caller bounces or drops
    /// it. What one session routes to another goes this way, so a peer
    /// that stops reading holds a bounded queue.
    pub fn try_send(&self, stanza: Element, max: usize) -> Result<(), (NotQueued, Element)> {
        if self.queued.load(Ordering::Relaxed) >= max {
            return Err((NotQueued::Full, stanza));
        }
        if self.commands.is_closed() {
            return Err((NotQueued::Gone, stanza));
        }
        // A driver returning right now drops the stanza with the other
        // commands it had not taken, as it would a moment later.
        let _ = self.send(stanza);
        Ok(())
    }

    /// Stanzas queued through this handle (or a clone) and not yet taken
    /// by the driver.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Closes the stream (`</stream:stream>`; the driver returns once the
    /// peer closed its side or the machine's close timeout passed).
    pub fn close(&self) -> Result<(), DriverError> {
        self.command(Command::Close)
    }

    /// Ends the connection now: what is queued is written, then the
    /// connection is shut down without reading more.
    pub fn hang_up(&self) -> Result<(), DriverError> {
        self.command(Command::HangUp)
    }

    fn command(&self, c: Command<M>) -> Result<(), DriverError> {
        self.commands
            .send_now(Box::new(c))
            .map_err(|_| DriverError::Gone)
    }
}

/// The machine's events, in order, as a stream (also [`Events::next`]).
/// `Err` items: a stanza the machine refused (the stream goes on), or why
/// the driver stopped (the last item). The stream ends when the driver
/// returns.
#[derive(Debug)]
pub struct Events<E> {
    events: Queue<Box<Result<E, DriverError>>>,
}

impl<E> Events<E> {
    /// The next event; `None` once the driver returned.
    pub async fn next(&mut self) -> Option<Result<E, DriverError>> {
        self.events.recv().await.map(|b| *b)
    }
}

impl<E> futures_core::Stream for Events<E> {
    type Item = Result<E, DriverError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().events.poll_recv(cx).map(|o| o.map(|b| *b))
    }
}

/// A queue between tasks, for the commands of the [`Handle`]s and the
/// events of the driver: one small allocation (a mutex, a deque that
/// holds no room while empty, a waker each side), where a tokio `mpsc`
/// channel allocated about 780 bytes at creation (its cache-padded
/// channel state and a first block of 32 slots): an idle session has two.
/// Senders never wait unless the queue is bounded and full; the one
/// receiver waits for an item, or learns that every sender is gone.
pub(crate) struct Queue<T> {
    shared: Arc<std::sync::Mutex<QueueState<T>>>,
}

struct QueueState<T> {
    items: VecDeque<T>,
    /// The receiver's task, waiting for an item.
    receiver: Option<Waker>,
    /// A sender's task, waiting for room (bounded queues: one sender).
    sender: Option<Waker>,
    senders: usize,
    receiver_open: bool,
    /// At most this many items (`usize::MAX`: no bound).
    bound: usize,
}

/// The sending end of a [`Queue`].
pub(crate) struct QueueSender<T> {
    shared: Arc<std::sync::Mutex<QueueState<T>>>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding it; a poisoned lock's state is whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn wake(w: Option<Waker>) {
    if let Some(w) = w {
        w.wake();
    }
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}

/// A queue of at most `bound` items: its sender and its receiver.
pub(crate) fn queue<T>(bound: usize) -> (QueueSender<T>, Queue<T>) {
    let shared = Arc::new(std::sync::Mutex::new(QueueState {
        items: VecDeque::new(),
        receiver: None,
        sender: None,
        senders: 1,
        receiver_open: true,
        bound,
    }));
    (
        QueueSender {
            shared: shared.clone(),
        },
        Queue { shared },
    )
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        lock(&self.shared).senders += 1;
        QueueSender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for QueueSender<T> {
    fn drop(&mut self) {
        let mut s = lock(&self.shared);
        s.senders -= 1;
        let w = if s.senders == 0 {
            s.receiver.take()
        } else {
            None
        };
        drop(s);
        wake(w);
    }
}

impl<T> QueueSender<T> {
    /// Queues `item` unless the receiver is gone (then it comes back) or
    /// the queue is full (then `Pending`, the item kept in `slot`).
    pub(crate) fn poll_send(&self, cx: &Context<'_>, slot: &mut Option<T>) -> Poll<Result<(), T>> {
        let Some(item) = slot.take() else {
            return Poll::Ready(Ok(()));
        };
        let mut s = lock(&self.shared);
        if !s.receiver_open {
            return Poll::Ready(Err(item));
        }
        if s.items.len() >= s.bound {
            register(&mut s.sender, cx);
            *slot = Some(item);
            return Poll::Pending;
        }
        s.items.push_back(item);
        let w = s.receiver.take();
        drop(s);
        wake(w);
        Poll::Ready(Ok(()))
    }

    /// Queues `item` now (an unbounded queue), unless the receiver is gone.
    pub(crate) fn send_now(&self, item: T) -> Result<(), T> {
        let mut s = lock(&self.shared);
        if !s.receiver_open {
            return Err(item);
        }
        s.items.push_back(item);
        let w = s.receiver.take();
        drop(s);
        wake(w);
        Ok(())
    }

    /// Whether the receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        !lock(&self.shared).receiver_open
    }
}

impl<T> Queue<T> {
    /// The next item; `None` once it is empty and every sender is gone.
    pub(crate) fn poll_recv(&mut self, cx: &Context<'_>) -> Poll<Option<T>> {
        let mut s = lock(&self.shared);
        match s.items.pop_front() {
            Some(item) => {
                if s.items.is_empty() {
                    // No room kept while idle.
                    s.items = VecDeque::new();
                }
                let w = s.sender.take();
                drop(s);
                wake(w);
                Poll::Ready(Some(item))
            }
            None if s.senders == 0 => Poll::Ready(None),
            None => {
                register(&mut s.receiver, cx);
                Poll::Pending
            }
        }
    }

    /// [`Queue::poll_recv`] as a future.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        let mut s = lock(&self.shared);
        s.receiver_open = false;
        let items = std::mem::take(&mut s.items);
        let w = s.sender.take();
        drop(s);
        drop(items);
        wake(w);
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for QueueSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueSender").finish_non_exhaustive()
    }
}

/// The driver's end of the [`Events`]: each event boxed (a queued event is
/// a pointer, not the largest event inline).
#[derive(Debug)]
pub(crate) struct EventSender<E>(QueueSender<Box<Result<E, DriverError>>>);

impl<E> EventSender<E> {
    /// Waits for room and sends; `Err` once the [`Events`] are dropped.
    /// The item is boxed before the wait, so the future holds a pointer,
    /// not an event (the future is part of its driver's state).
    pub(crate) fn send(
        &self,
        item: Result<E, DriverError>,
    ) -> impl Future<Output = Result<(), ()>> + '_ {
        let mut item = Some(Box::new(item));
        std::future::poll_fn(move |cx| self.0.poll_send(cx, &mut item).map(|r| r.map_err(drop)))
    }
}

/// The driver of one machine on one connection: [`Connection::run`] it.
pub struct Connection<M: Machine> {
    /// Boxed: `run` moves the connection into its future, and an `async
    /// fn` keeps its argument and the moved copy side by side (a second
    /// machine per idle session, about 1.8 KiB for a server's, otherwise).
    machine: Box<M>,
    io: Option<Link>,
    upgrade: Option<TlsUpgrade>,
    wire: Option<WireLog>,
    queued: VecDeque<M::Event>,
    commands: Queue<Box<Command<M>>>,
    events: EventSender<M::Event>,
    /// Called with the machine right after `tls_established`.
    after_tls: Option<crate::blocking::AfterTls<M>>,
}

/// `machine` on `io` (plain, or already TLS for direct TLS): the driver,
/// a handle and the events.
pub fn connection<M: Machine>(
    machine: M,
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
) -> (Connection<M>, Handle<M>, Events<M::Event>) {
    connect(machine, Link::Bytes(Box::new(io)))
}

/// A WebSocket (RFC 6455, after its handshake: see
/// [`tokio_tungstenite::client_async`] and
/// [`tokio_tungstenite::accept_hdr_async`]) over a driver's stream, for
/// [`websocket_connection`].
pub type BoxWebSocket = WebSocketStream<BoxStream>;

/// [`connection`] for a machine in
/// [`Framing::WebSocket`](xmpp_sansio::Framing::WebSocket) on a WebSocket
/// whose handshake is done (`ws://`, or `wss://` with the TLS given to the
/// machine with `direct_tls`): each text (or binary) message is fed with
/// `feed_message`, each `poll_message` is sent as one text message; pings
/// are answered by the WebSocket; a close frame ends the connection. There
/// is no STARTTLS.
pub fn websocket_connection<M: Machine>(
    machine: M,
    ws: BoxWebSocket,
) -> (Connection<M>, Handle<M>, Events<M::Event>) {
    connect(machine, Link::Messages(Box::new(ws)))
}

/// What the driver moves: bytes over a stream, or whole messages over a
/// WebSocket.
enum Link {
    Bytes(BoxStream),
    Messages(Box<BoxWebSocket>),
}

/// What one read gave.
enum Read1 {
    /// Bytes into the driver's buffer (0: the end).
    Bytes(usize),
    /// One text or binary message.
    Message(Vec<u8>),
    /// A control frame: nothing for the machine.
    Nothing,
}

/// Bytes read at most at once: the size of each runtime thread's read
/// buffer.
const READ_BUFFER: usize = 16 * 1024;

thread_local! {
    /// The read buffer of the drivers on this thread: a read borrows it
    /// only inside one `poll_read`, so an idle connection holds no read
    /// buffer of its own (16 KiB each before: most of an idle session's
    /// memory).
    static READ_BUF: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; READ_BUFFER].into_boxed_slice());
}

/// One read of `io` into the thread's buffer; what came is copied into
/// `into` (cleared first), which keeps no capacity from one read to the
/// next (cancel safe: nothing is taken from `io` unless the read is
/// ready).
async fn read_shared(io: &mut BoxStream, into: &mut Vec<u8>) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        READ_BUF.with_borrow_mut(|buf| {
            let mut rb = ::tokio::io::ReadBuf::new(buf);
            match Pin::new(&mut *io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    *into = rb.filled().to_vec();
                    Poll::Ready(Ok(into.len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    })
    .await
}

/// One read of `link` (cancel safe: a partial WebSocket frame stays with
/// the WebSocket).
async fn read1(link: &mut Link, buf: &mut Vec<u8>) -> std::io::Result<Read1> {
    match link {
        Link::Bytes(io) => read_shared(io, buf).await.map(Read1::Bytes),
        Link::Messages(ws) => match ws.next().await {
            None => Ok(Read1::Bytes(0)),
            Some(Ok(Message::Text(t))) => Ok(Read1::Message(t.as_bytes().to_vec())),
            Some(Ok(Message::Binary(b))) => Ok(Read1::Message(b.to_vec())),
            Some(Ok(Message::Close(_))) => Ok(Read1::Bytes(0)),
            Some(Ok(_)) => Ok(Read1::Nothing),
            Some(Err(e)) => Err(ws_io(e)),
        },
    }
}

/// The channels between a driver and its host: the handle and the
/// driver's end of its commands, the driver's end of the events and the
/// host's.
pub(crate) type Channels<M, E> = (Handle<M>, Queue<Box<Command<M>>>, EventSender<E>, Events<E>);

/// What a command left the drive loop to do.
pub(crate) enum Flow {
    /// Go on.
    Go,
    /// Write what is queued and return.
    HangUp,
    /// Every handle is gone: stop waiting for commands.
    NoCommands,
}

/// How a driver sends a stanza and closes its machine.
pub(crate) struct Ops<M> {
    pub(crate) send: fn(&mut M, &Element) -> Result<(), UsageError>,
    pub(crate) close: fn(&mut M, Instant),
}

/// Carries out one command of a [`Handle`] on `machine`; a refusal goes
/// to the events as a [`DriverError::Usage`] item.
pub(crate) async fn obey<M, E>(
    machine: &mut M,
    ops: Ops<M>,
    command: Option<Box<Command<M>>>,
    events: &EventSender<E>,
) -> Flow {
    let refused = match command.map(|c| *c) {
        Some(Command::Send(stanza, _queued)) => {
            (ops.send)(machine, &stanza).err().map(|e| ("send", e))
        }
        Some(Command::Close) => {
            (ops.close)(machine, Instant::now());
            None
        }
        Some(Command::Call(call)) => call(machine).err().map(|e| ("call", e)),
        Some(Command::HangUp) => return Flow::HangUp,
        None => return Flow::NoCommands,
    };
    if let Some((what, e)) = refused {
        let _ = events.send(Err(DriverError::Usage(what, e))).await;
    }
    Flow::Go
}

/// A new set of [`Channels`].
pub(crate) fn channels<M, E>() -> Channels<M, E> {
    let (commands_tx, commands) = queue(usize::MAX);
    let (events_tx, events) = queue(EVENTS);
    (
        Handle {
            commands: commands_tx,
            queued: Arc::new(AtomicUsize::new(0)),
        },
        commands,
        EventSender(events_tx),
        Events { events },
    )
}

fn connect<M: Machine>(machine: M, io: Link) -> (Connection<M>, Handle<M>, Events<M::Event>) {
    let (handle, commands, events_tx, events) = channels();
    (
        Connection {
            machine: Box::new(machine),
            io: Some(io),
            upgrade: None,
            wire: None,
            queued: VecDeque::new(),
            commands,
            events: events_tx,
            after_tls: None,
        },
        handle,
        events,
    )
}

impl<M: Machine> Connection<M> {
    /// The STARTTLS upgrade (see [`TlsUpgrade`]; [`crate::tls`] and
    /// [`crate::server_tls`] have rustls ones). Without it, `StartTls` ends
    /// the driver.
    pub fn with_tls(
        mut self,
        upgrade: impl FnMut(BoxStream, Vec<u8>) -> UpgradeFuture + Send + 'static,
    ) -> Self {
        self.upgrade = Some(Box::new(upgrade));
        self
    }

    /// A log of the plaintext each way (see [`Direction`]).
    pub fn with_wire_log(mut self, log: impl FnMut(Direction, &[u8]) + Send + 'static) -> Self {
        self.wire = Some(Box::new(log));
        self
    }

    /// Calls `f` with the machine once a STARTTLS upgrade is done (after
    /// `tls_established`, before anything more is read): for what the
    /// host learnt in the handshake, such as the server's
    /// `Server::client_certificate` (as
    /// [`blocking::Driver::with_after_tls`](crate::blocking::Driver::with_after_tls)).
    pub fn with_after_tls(mut self, f: impl FnMut(&mut M) + Send + 'static) -> Self {
        self.after_tls = Some(Box::new(f));
        self
    }

    /// Runs the connection until the machine is closed, a handle hangs
    /// up, or the connection fails (the reason is the last item of the
    /// [`Events`]); then shuts the connection down (TLS: `close_notify`)
    /// without reading what the peer may still send. Returns the machine.
    pub async fn run(mut self) -> M {
        let result = self.drive().await;
        if let Err(e) = result {
            let _ = self.events.send(Err(e)).await;
        }
        match self.io.take() {
            Some(Link::Bytes(mut io)) => {
                let _ = io.shutdown().await;
            }
            Some(Link::Messages(mut ws)) => {
                let _ = ws.close(None).await;
            }
            None => {}
        }
        *self.machine
    }

    async fn drive(&mut self) -> Result<(), DriverError> {
        // What the last read gave (its bytes copied out of the thread's
        // buffer; nothing kept while idle).
        let mut buf = Vec::new();
        let mut commands_open = true;
        loop {
            // Bytes out, then events (the host's answers queue more bytes).
            loop {
                self.flush().await?;
                let Some(ev) = self
                    .queued
                    .pop_front()
                    .or_else(|| self.machine.poll_event())
                else {
                    // Drained: give its room back (it holds events of the
                    // largest kind; an idle session keeps none).
                    if self.queued.capacity() > 0 {
                        self.queued = VecDeque::new();
                    }
                    break;
                };
                match M::take_start_tls(ev) {
                    // Boxed: the handshake's state is not kept in the
                    // driver's for the connection's life.
                    Ok(pending) => Box::pin(self.start_tls(pending)).await?,
                    // Nobody listens any more: the machine goes on alone.
                    Err(ev) => drop(self.events.send(Ok(ev)).await),
                }
            }
            if self.machine.is_closed() {
                return Ok(());
            }
            let deadline = self.machine.poll_timeout();
            let sleep = async move {
                match deadline {
                    Some(d) => ::tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let io = self.io.as_mut().expect("connected");
            ::tokio::select! {
                read = read1(io, &mut buf) => match read {
                    Ok(Read1::Bytes(0)) => return Err(DriverError::PeerClosed),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        return Err(DriverError::PeerClosed)
                    }
                    Ok(Read1::Bytes(n)) => {
                        let input = std::mem::take(&mut buf);
                        incoming(&mut *self.machine, Input::Bytes(&input[..n]), &mut self.queued, &mut self.wire)?
                    }
                    Ok(Read1::Message(m)) => incoming(&mut *self.machine, Input::Message(&m), &mut self.queued, &mut self.wire)?,
                    Ok(Read1::Nothing) => {}
                    Err(e) => return Err(DriverError::Read(e)),
                },
                command = self.commands.recv(), if commands_open => {
                    let ops = Ops { send: <M as Machine>::send, close: <M as Machine>::close };
                    match obey(&mut *self.machine, ops, command, &self.events).await {
                        Flow::Go => {}
                        Flow::HangUp => {
                            self.flush().await?;
                            return Ok(());
                        }
                        Flow::NoCommands => commands_open = false,
                    }
                }
                () = sleep => self.machine.handle_timeout(Instant::now()),
            }
        }
    }

    /// Drains `poll_transmit` and writes it.
    async fn flush(&mut self) -> Result<(), DriverError> {
        match self.io.as_mut().expect("connected") {
            Link::Bytes(io) => {
                let Some(out) = outgoing(&mut *self.machine, &mut self.wire) else {
                    return Ok(());
                };
                io.write_all(&out).await.map_err(DriverError::Write)?;
                if self.machine.is_closed() {
                    // Its last bytes: `run`'s shutdown flushes them, a
                    // TLS stream's close_notify in the same write.
                    return Ok(());
                }
                io.flush().await.map_err(DriverError::Write)
            }
            Link::Messages(ws) => {
                let out = outgoing_messages(&mut *self.machine, &mut self.wire);
                if out.is_empty() {
                    return Ok(());
                }
                for m in out {
                    ws.feed(m).await.map_err(|e| DriverError::Write(ws_io(e)))?;
                }
                ws.flush().await.map_err(|e| DriverError::Write(ws_io(e)))
            }
        }
    }

    /// `StartTls`: the callback's handshake (by the machine's deadline),
    /// then `tls_established`.
    async fn start_tls(&mut self, pending: Vec<u8>) -> Result<(), DriverError> {
        let upgrade = self
            .upgrade
            .as_mut()
            .ok_or_else(|| DriverError::Tls("tls: no TLS upgrade in this driver".into()))?;
        let plain = match self.io.take().expect("connected") {
            Link::Bytes(plain) => plain,
            Link::Messages(ws) => {
                // Cannot happen: a WebSocket machine never asks for STARTTLS.
                self.io = Some(Link::Messages(ws));
                return Err(DriverError::Tls("tls: no STARTTLS over a WebSocket".into()));
            }
        };
        let handshake = upgrade(plain, pending);
        let up = match self.machine.poll_timeout() {
            Some(d) => ::tokio::time::timeout_at(d.into(), handshake)
                .await
                .map_err(|_| DriverError::Tls("tls handshake timed out".into()))?,
            None => handshake.await,
        }
        .map_err(DriverError::Tls)?;
        self.io = Some(Link::Bytes(up.stream));
        self.machine
            .tls_established(Instant::now(), up.info)
            .map_err(|e| DriverError::Usage("tls_established", e))?;
        if let Some(f) = &mut self.after_tls {
            f(&mut *self.machine);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waker that counts its wakes.
    struct Count(AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn a_bounded_queue_makes_its_sender_wait_and_wakes_it() {
        let (tx, mut rx) = queue::<u32>(2);
        let (sender_wakes, sw) = waker();
        let (receiver_wakes, rw) = waker();
        let (scx, rcx) = (Context::from_waker(&sw), Context::from_waker(&rw));
        // The receiver waits; the first item wakes it.
        assert_eq!(rx.poll_recv(&rcx), Poll::Pending);
        for i in 0..2 {
            assert_eq!(tx.poll_send(&scx, &mut Some(i)), Poll::Ready(Ok(())));
        }
        assert_eq!(receiver_wakes.0.load(Ordering::Relaxed), 1);
        // Full: the item stays with the sender, which is woken by a receive.
        let mut slot = Some(2);
        assert_eq!(tx.poll_send(&scx, &mut slot), Poll::Pending);
        assert_eq!(slot, Some(2));
        assert_eq!(rx.poll_recv(&rcx), Poll::Ready(Some(0)));
        assert_eq!(sender_wakes.0.load(Ordering::Relaxed), 1);
        assert_eq!(tx.poll_send(&scx, &mut slot), Poll::Ready(Ok(())));
        assert_eq!(rx.poll_recv(&rcx), Poll::Ready(Some(1)));
        assert_eq!(rx.poll_recv(&rcx), Poll::Ready(Some(2)));
        // Drained: no room kept.
        assert_eq!(lock(&rx.shared).items.capacity(), 0);
        // Every sender gone: the end, after the items.
        let tx2 = tx.clone();
        drop(tx);
        assert_eq!(tx2.send_now(3), Ok(()));
        drop(tx2);
        assert_eq!(rx.poll_recv(&rcx), Poll::Ready(Some(3)));
        assert_eq!(rx.poll_recv(&rcx), Poll::Ready(None));
    }

    #[test]
    fn a_queue_whose_receiver_is_gone_gives_items_back_and_wakes_a_waiting_sender() {
        let (tx, rx) = queue::<u32>(1);
        let (sender_wakes, sw) = waker();
        let scx = Context::from_waker(&sw);
        assert_eq!(tx.poll_send(&scx, &mut Some(1)), Poll::Ready(Ok(())));
        assert_eq!(tx.poll_send(&scx, &mut Some(2)), Poll::Pending);
        assert!(!tx.is_closed());
        drop(rx);
        assert_eq!(sender_wakes.0.load(Ordering::Relaxed), 1);
        assert!(tx.is_closed());
        assert_eq!(tx.poll_send(&scx, &mut Some(2)), Poll::Ready(Err(2)));
        assert_eq!(tx.send_now(4), Err(4));
    }

    #[test]
    fn a_driver_channel_is_one_small_allocation_per_direction() {
        // What an idle session's handle, command queue and events hold:
        // tokio's mpsc channels were about 780 bytes each.
        let (handle, commands, events_tx, events) =
            channels::<xmpp_sansio::server::Server, xmpp_sansio::server::ServerEvent>();
        let each = std::mem::size_of::<std::sync::Mutex<QueueState<Box<u8>>>>();
        assert!(each <= 128, "{each} bytes");
        drop((handle, commands, events_tx, events));
    }
}
