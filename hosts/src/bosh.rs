//! XMPP over BOSH (XEP-0124, XEP-0206) under both drivers: a
//! [`BoshXmppClient`] whose request bodies are POSTed over HTTP/1.1
//! ([`crate::http`]), each on a connection of its own, so that a request
//! held by the connection manager (the long poll) and one carrying data
//! are out at once, as BOSH's `requests` allows; connections are kept
//! alive and reused.
//!
//! - [`BoshDriver`]: the blocking driver (one thread per HTTP exchange,
//!   the host's thread runs the machine), pulled with
//!   [`BoshDriver::next`] like [`crate::blocking::Driver::next`];
//! - [`bosh_connection`]: the tokio driver (one task per exchange), with
//!   the same [`Handle`] and [`Events`] as [`crate::tokio::connection`].
//!
//! TLS (`https://`) is the connector's: it returns each new connection,
//! TLS already up; the machine is given `direct_tls` without channel
//! binding (a BOSH session spans HTTP connections). Also here: the
//! server side's HTTP connection loop, [`serve_blocking`].

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ::tokio::io::AsyncWriteExt;
use ::tokio::sync::mpsc as tokio_mpsc;
use minidom::Element;
use xmpp_sansio::bosh::{BoshClientError, BoshXmppClient};
use xmpp_sansio::client::ClientEvent;

use crate::blocking::{BoxTransport, Wake};
use crate::http::{self, Message, Reader};
use crate::tokio::{channels, obey, BoxStream, Command, Events, Flow, Handle, Ops};
use crate::websocket::WsUrl;
use crate::{earliest, Direction, DriverError, WireLog};

/// The path this crate's servers accept BOSH requests on (as Prosody
/// does).
pub const PATH: &str = "/http-bind";

/// Bodies read at most (a response, or a request at the server).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// How long one HTTP exchange may take beyond the session's `wait`.
const MARGIN: Duration = Duration::from_secs(15);

/// How long a driver that is done waits for the exchanges still out (the
/// terminate request, and the poll it releases) before it lets them go.
const LINGER: Duration = Duration::from_secs(2);

/// Makes a new blocking connection to the connection manager (TCP, then
/// TLS for `https://`) by the deadline.
pub type Connect = Arc<dyn Fn(Option<Instant>) -> Result<BoxTransport, String> + Send + Sync>;

/// What an async connector returns.
pub type ConnectFuture = Pin<Box<dyn Future<Output = Result<BoxStream, String>> + Send>>;

/// Makes a new async connection to the connection manager.
pub type AsyncConnect = Arc<dyn Fn() -> ConnectFuture + Send + Sync>;

/// One exchange's outcome: the `rid` and the response body, or why the
/// HTTP request failed.
type Outcome = (u64, Result<Vec<u8>, String>);

/// Idle kept-alive connections.
type Pool<C> = Arc<Mutex<Vec<C>>>;

/// What both drivers do alike around the machine: the requests to POST
/// (as HTTP bytes), the outcomes fed back, the wire log.
struct Core {
    machine: BoshXmppClient,
    url: WsUrl,
    wire: Option<WireLog>,
    /// The last failed HTTP exchange, for the error when the session dies
    /// of it.
    last_failure: Option<String>,
    /// Exchanges out.
    in_flight: usize,
}

impl Core {
    fn new(machine: BoshXmppClient, url: WsUrl) -> Self {
        Core {
            machine,
            url,
            wire: None,
            last_failure: None,
            in_flight: 0,
        }
    }

    /// The requests that may go now: `rid`, HTTP bytes, the deadline of
    /// the exchange.
    fn requests(&mut self) -> Vec<(u64, Vec<u8>, Instant)> {
        let now = Instant::now();
        let wait = self.machine.bosh().params().map_or(60, |p| p.wait);
        let deadline = now + Duration::from_secs(wait.into()) + MARGIN;
        let mut out = Vec::new();
        while let Some(req) = self.machine.poll_request(now) {
            if let Some(log) = &mut self.wire {
                log(Direction::Sent, &req.body);
            }
            out.push((req.rid, http::post(&self.url, &req.body), deadline));
        }
        self.in_flight += out.len();
        out
    }

    fn outcome(&mut self, (rid, result): Outcome) {
        let now = Instant::now();
        self.in_flight = self.in_flight.saturating_sub(1);
        match result {
            Ok(body) => {
                if let Some(log) = &mut self.wire {
                    log(Direction::Received, &body);
                }
                // An error ends the session; the client hears of it.
                let _ = self.machine.handle_response(now, rid, &body);
            }
            Err(e) => {
                self.last_failure = Some(e);
                self.machine.request_failed(now, rid);
            }
        }
    }

    fn timeout(&mut self) {
        let now = Instant::now();
        if self.machine.poll_timeout().is_some_and(|t| t <= now) {
            self.machine.handle_timeout(now);
        }
    }

    /// The next event; the HTTP failure instead when the BOSH session died
    /// of lost requests or bad responses (the client only sees its stream
    /// end).
    fn event(&mut self) -> Option<Result<ClientEvent, DriverError>> {
        let ev = self.machine.poll_event()?;
        let transport = matches!(
            self.machine.bosh_error(),
            Some(
                BoshClientError::RequestLost { .. }
                    | BoshClientError::BadResponse(_)
                    | BoshClientError::MissingSid
            )
        );
        if transport && matches!(ev, ClientEvent::Error(_)) {
            let why = self.machine.bosh_error().map(|e| e.to_string());
            let last = self.last_failure.take().map(|l| format!(" ({l})"));
            return Some(Err(DriverError::Read(std::io::Error::other(format!(
                "bosh {}{}",
                why.unwrap_or_default(),
                last.unwrap_or_default()
            )))));
        }
        Some(Ok(ev))
    }
}

/// A 200 response's body and whether the connection stays open.
fn answer(m: Option<Message>) -> Result<(Vec<u8>, bool), String> {
    match m {
        None => Err("http: the connection closed".into()),
        Some(m) if m.status == 200 => Ok((m.body, m.keep_alive)),
        Some(m) => Err(format!("http status {}", m.status)),
    }
}

/// One POST on a blocking connection.
fn exchange_blocking(
    conn: &mut BoxTransport,
    request: &[u8],
    deadline: Instant,
) -> Result<(Vec<u8>, bool), String> {
    conn.set_read_deadline(Some(deadline))
        .and_then(|()| conn.write_all(request))
        .and_then(|()| conn.flush())
        .map_err(|e| format!("http write: {e}"))?;
    let mut reader = Reader::new(false, MAX_BODY);
    answer(http::read_blocking(conn, &mut reader).map_err(|e| format!("http read: {e}"))?)
}

/// One POST on an async connection.
async fn exchange_async(io: &mut BoxStream, request: &[u8]) -> Result<(Vec<u8>, bool), String> {
    io.write_all(request)
        .await
        .map_err(|e| format!("http write: {e}"))?;
    io.flush().await.map_err(|e| format!("http write: {e}"))?;
    let mut reader = Reader::new(false, MAX_BODY);
    answer(
        http::read_async(io, &mut reader)
            .await
            .map_err(|e| format!("http read: {e}"))?,
    )
}

/// A kept-alive connection, if one is idle.
fn pooled<C>(pool: &Pool<C>) -> Option<C> {
    pool.lock().ok()?.pop()
}

/// Keeps `conn` for the next exchange.
fn keep<C>(pool: &Pool<C>, conn: C) {
    if let Ok(mut p) = pool.lock() {
        p.push(conn);
    }
}

/// The blocking BOSH driver of a [`BoshXmppClient`].
pub struct BoshDriver {
    core: Core,
    connect: Connect,
    pool: Pool<BoxTransport>,
    tx: mpsc::Sender<Outcome>,
    rx: mpsc::Receiver<Outcome>,
}

impl BoshDriver {
    /// `machine`, POSTing to `url` over connections from `connect`.
    pub fn new(machine: BoshXmppClient, url: WsUrl, connect: Connect) -> Self {
        let (tx, rx) = mpsc::channel();
        BoshDriver {
            core: Core::new(machine, url),
            connect,
            pool: Arc::default(),
            tx,
            rx,
        }
    }

    /// A connection made already (the first, whose TLS the host looked
    /// at), for the first request.
    pub fn with_connection(self, conn: BoxTransport) -> Self {
        keep(&self.pool, conn);
        self
    }

    /// A log of the request and response bodies (see [`Direction`]).
    pub fn with_wire_log(mut self, log: impl FnMut(Direction, &[u8]) + Send + 'static) -> Self {
        self.core.wire = Some(Box::new(log));
        self
    }

    /// The machine.
    pub fn machine(&self) -> &BoshXmppClient {
        &self.core.machine
    }

    /// The machine, to answer its requests.
    pub fn machine_mut(&mut self) -> &mut BoshXmppClient {
        &mut self.core.machine
    }

    /// Queues a stanza (POSTed by the next [`BoshDriver::next`]).
    pub fn send(&mut self, stanza: &Element) -> Result<(), DriverError> {
        self.core
            .machine
            .send(Instant::now(), stanza)
            .map_err(|e| DriverError::Usage("send", e))
    }

    /// Closes the stream: the BOSH session is terminated.
    pub fn close(&mut self) {
        self.core.machine.close(Instant::now());
    }

    /// Runs until there is something for the host (see
    /// [`crate::blocking::Driver::next`]; never [`Wake::Interrupted`]).
    pub fn next(&mut self, until: Option<Instant>) -> Result<Wake<ClientEvent>, DriverError> {
        loop {
            for (rid, request, deadline) in self.core.requests() {
                let (connect, pool, tx) =
                    (self.connect.clone(), self.pool.clone(), self.tx.clone());
                thread::spawn(move || {
                    let fresh = || -> Result<(BoxTransport, (Vec<u8>, bool)), String> {
                        let mut conn = connect(Some(deadline))?;
                        let r = exchange_blocking(&mut conn, &request, deadline)?;
                        Ok((conn, r))
                    };
                    // A kept-alive connection the server closed meanwhile:
                    // a new one (the same rid twice is BOSH's to handle).
                    let result = match pooled(&pool) {
                        Some(mut conn) => exchange_blocking(&mut conn, &request, deadline)
                            .map(|r| (conn, r))
                            .or_else(|_| fresh()),
                        None => fresh(),
                    };
                    let _ = tx.send((
                        rid,
                        result.map(|(conn, (body, alive))| {
                            if alive {
                                keep(&pool, conn);
                            }
                            body
                        }),
                    ));
                });
            }
            if let Some(ev) = self.core.event() {
                return ev.map(Wake::Event);
            }
            if self.core.machine.is_closed() {
                return Ok(Wake::Over);
            }
            let deadline = earliest(self.core.machine.poll_timeout(), until);
            let got = match deadline {
                Some(d) => self
                    .rx
                    .recv_timeout(d.saturating_duration_since(Instant::now())),
                None => self
                    .rx
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(outcome) => self.core.outcome(outcome),
                Err(_) => {
                    self.core.timeout();
                    if until.is_some_and(|t| t <= Instant::now()) {
                        return Ok(Wake::Deadline);
                    }
                }
            }
        }
    }

    /// Stops, once the exchanges still out are answered (the terminate
    /// request reaches the connection manager) or after a moment.
    pub fn hang_up(mut self) {
        let until = Instant::now() + LINGER;
        while self.core.in_flight > 0 {
            match self
                .rx
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(outcome) => self.core.outcome(outcome),
                Err(_) => return,
            }
        }
    }
}

/// The tokio BOSH driver of a [`BoshXmppClient`]: [`BoshConnection::run`]
/// it.
pub struct BoshConnection {
    core: Core,
    connect: AsyncConnect,
    pool: Pool<BoxStream>,
    commands: crate::tokio::Queue<Box<Command<BoshXmppClient>>>,
    events: crate::tokio::EventSender<ClientEvent>,
    tx: tokio_mpsc::UnboundedSender<Outcome>,
    rx: tokio_mpsc::UnboundedReceiver<Outcome>,
}

/// `machine`, POSTing to `url` over connections from `connect`: the
/// driver, a handle and the events (see [`crate::tokio::connection`]).
pub fn bosh_connection(
    machine: BoshXmppClient,
    url: WsUrl,
    connect: AsyncConnect,
) -> (BoshConnection, Handle<BoshXmppClient>, Events<ClientEvent>) {
    let (handle, commands, events_tx, events) = channels();
    let (tx, rx) = tokio_mpsc::unbounded_channel();
    let conn = BoshConnection {
        core: Core::new(machine, url),
        connect,
        pool: Arc::default(),
        commands,
        events: events_tx,
        tx,
        rx,
    };
    (conn, handle, events)
}

impl BoshConnection {
    /// A connection made already, for the first request.
    pub fn with_connection(self, io: BoxStream) -> Self {
        keep(&self.pool, io);
        self
    }

    /// A log of the request and response bodies.
    pub fn with_wire_log(mut self, log: impl FnMut(Direction, &[u8]) + Send + 'static) -> Self {
        self.core.wire = Some(Box::new(log));
        self
    }

    /// Runs the session until the machine is closed, a handle hangs up,
    /// or the session fails (the last item of the [`Events`]). Returns
    /// the machine.
    pub async fn run(mut self) -> BoshXmppClient {
        if let Err(e) = self.drive().await {
            let _ = self.events.send(Err(e)).await;
        }
        // The exchanges still out (the terminate request), for a moment.
        let until = ::tokio::time::Instant::now() + LINGER;
        while self.core.in_flight > 0 {
            match ::tokio::time::timeout_at(until, self.rx.recv()).await {
                Ok(Some(outcome)) => self.core.outcome(outcome),
                _ => break,
            }
        }
        self.core.machine
    }

    fn spawn(&self, rid: u64, request: Vec<u8>, deadline: Instant) {
        let (connect, pool, tx) = (self.connect.clone(), self.pool.clone(), self.tx.clone());
        ::tokio::spawn(async move {
            let work = async {
                if let Some(mut io) = pooled(&pool) {
                    if let Ok((body, alive)) = exchange_async(&mut io, &request).await {
                        return Ok((io, body, alive));
                    }
                }
                let mut io = connect().await?;
                let (body, alive) = exchange_async(&mut io, &request).await?;
                Ok::<_, String>((io, body, alive))
            };
            let result = match ::tokio::time::timeout_at(deadline.into(), work).await {
                Ok(Ok((io, body, alive))) => {
                    if alive {
                        keep(&pool, io);
                    }
                    Ok(body)
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err("http: timed out".into()),
            };
            let _ = tx.send((rid, result));
        });
    }

    async fn drive(&mut self) -> Result<(), DriverError> {
        let mut commands_open = true;
        loop {
            loop {
                for (rid, request, deadline) in self.core.requests() {
                    self.spawn(rid, request, deadline);
                }
                match self.core.event() {
                    Some(Ok(ev)) => drop(self.events.send(Ok(ev)).await),
                    Some(Err(e)) => return Err(e),
                    None => break,
                }
            }
            if self.core.machine.is_closed() {
                return Ok(());
            }
            let deadline = self.core.machine.poll_timeout();
            let sleep = async move {
                match deadline {
                    Some(d) => ::tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            ::tokio::select! {
                Some(outcome) = self.rx.recv() => self.core.outcome(outcome),
                command = self.commands.recv(), if commands_open => {
                    let ops = Ops { send: |m: &mut BoshXmppClient, s| m.send(Instant::now(), s), close: BoshXmppClient::close };
                    match obey(&mut self.core.machine, ops, command, &self.events).await {
                        Flow::Go => {}
                        Flow::HangUp => return Ok(()),
                        Flow::NoCommands => commands_open = false,
                    }
                }
                () = sleep => self.core.timeout(),
            }
        }
    }
}

/// The server side of one HTTP connection of a BOSH listener: reads
/// requests until the client closes (or `idle` passes without one);
/// answers `OPTIONS` (CORS preflight) at once, gives each POST to
/// [`PATH`] to `post` (which blocks until the connection manager answers
/// it; `None`: the request was dropped, the connection is closed), and
/// answers anything else `404` (`GET` to [`PATH`]: a line of text).
pub fn serve_blocking(
    conn: &mut BoxTransport,
    idle: Duration,
    mut post: impl FnMut(Vec<u8>) -> Option<Vec<u8>>,
) -> Result<(), String> {
    let mut reader = Reader::new(true, MAX_BODY);
    loop {
        conn.set_read_deadline(Some(Instant::now() + idle))
            .map_err(|e| e.to_string())?;
        let m = match http::read_blocking(conn, &mut reader) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(()),
            // Between requests: the client closed, or was idle too long.
            Err(_) if reader.is_empty() => return Ok(()),
            Err(e) => return Err(format!("http read: {e}")),
        };
        let at = m.path.split('?').next() == Some(PATH);
        let out = match m.method.as_str() {
            "OPTIONS" => http::response("200 OK", "text/plain", b"", m.keep_alive),
            "POST" if at => match post(m.body) {
                Some(body) => {
                    http::response("200 OK", "text/xml; charset=utf-8", &body, m.keep_alive)
                }
                None => return Ok(()),
            },
            "GET" if at => http::response(
                "200 OK",
                "text/plain",
                b"XMPP over BOSH (XEP-0206): POST <body/> here\n",
                m.keep_alive,
            ),
            _ => http::response("404 Not Found", "text/plain", b"not found\n", false),
        };
        conn.write_all(&out)
            .and_then(|()| conn.flush())
            .map_err(|e| format!("http write: {e}"))?;
        if !m.keep_alive || out.starts_with(b"HTTP/1.1 404") {
            return Ok(());
        }
    }
}
