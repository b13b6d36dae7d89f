//! `xmpp-server-async`: an example server that scales, on the sans-IO
//! [`Server`]: one tokio task per connection on a multi-threaded runtime
//! (one worker per core), each running the machine on the tokio driver
//! ([`crate::tokio::connection`]) with STARTTLS or direct TLS by rustls;
//! accounts in SQLite ([`store`]: SCRAM salt, iterations, StoredKey and
//! ServerKey); in-band registration (XEP-0077) writing there; stanzas
//! routed between the bound sessions ([`crate::tool::router`], the same
//! routing as the threaded `server`).
//!
//! Unlike `server` (two threads per connection), an idle session here is
//! a parked task: its socket, its TLS state, its `Server` and the
//! driver's buffers. No per-login log line unless `--verbose`.

pub mod cluster;
pub mod store;
pub mod tls_floor;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::tokio::net::{TcpListener, TcpSocket, TcpStream};
use futures_util::FutureExt;
use minidom::Element;
use xmpp_sansio::jid::ResourcePart;
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest, SaslCondition, Secret};
use xmpp_sansio::server::{
    BindAnswer, BindRefusal, RegistrationRequest, Server, ServerConfig, ServerEvent, ServerTls,
};
use xmpp_sansio::steps::LegacyError;

use crate::server_tls::TlsSetup;
use crate::tokio::{connection, Connection, Events, Handle, NotQueued};
use crate::tool::accounts::{register_form, token};
use crate::tool::router::{Mailbox, Refused, Router};
use store::Store;

/// `--help`.
pub const HELP: &str = "\
xmpp-server-async: an XMPP server for one domain on the xmpp-sansio Server, one tokio
task per connection (one worker thread per core), accounts in SQLite

USAGE:
    xmpp-server-async --domain D --db FILE [--cert F --key F] [OPTIONS]

OPTIONS:
    --listen ADDR        address to listen on (default 127.0.0.1:5222; port 0 picks a
                         free port, printed on the LISTENING line)
    --domain D           the domain served (a stream to any other gets host-unknown)
    --db FILE            the SQLite database of the accounts, created when missing: per
                         account and hash (SCRAM-SHA-1, SCRAM-SHA-256) the salt, the
                         iteration count, StoredKey and ServerKey; never a password
    --cert F             PEM certificate chain, end entity first (not with --tls none)
    --key F              PEM private key (RSA, ECDSA or Ed25519)
    --tls MODE           starttls (default, required before SASL) | direct (XEP-0368:
                         TLS from the first byte, ALPN xmpp-client) | none
    --allow-register     offer XEP-0077 in-band registration (after TLS, unless --tls
                         none); new accounts are written to --db
    --user NAME:PASSWORD create this account in --db at start unless it exists
                         (repeatable)
    --iterations N       PBKDF2 iterations of new credentials (default 4096)
    --verbose            one line per login and per failure on stdout
    --tls-floor N        do not serve: N TLS handshakes in memory with this certificate's
                         STARTTLS configuration and a rustls client trusting --cert, no
                         XMPP; print the server side's CPU per handshake (the floor
                         under a login's) and exit
    --workers N          N processes (one per core), each listening on the same port
                         with SO_REUSEPORT, sharing --db (WAL) and routing stanzas to
                         each other's sessions over Unix sockets; the LISTENING line
                         then ends with `workers N pids P1,P2,...` (default 1: this
                         process serves). Beyond one process's open-file limit.
    --stats SECS         every SECS seconds a STATS line on stdout: connections open,
                         logins so far, live heap bytes (the binary counts its
                         allocations), RSS
    -h, --help           this text

Mechanisms: SCRAM-SHA-256-PLUS, SCRAM-SHA-256, SCRAM-SHA-1-PLUS, SCRAM-SHA-1, and
PLAIN over TLS (checked against the SCRAM-SHA-256 credentials).

OUTPUT (stdout):
    LISTENING <addr> domain <D> tls <mode> accounts <n> fd-limit <n>   once listening
    with --tls-floor: TLS-FLOOR handshakes=<n> server-cpu-per-handshake=<ms> ...
    with --stats: STATS connections <n> logins <n> heap <bytes> rss <KiB>
    with --verbose: LOGIN <full jid> (<peer>), REGISTER <user> (<peer>),
    REGISTER-FAIL <user>: <code> (<peer>), ERROR <peer>: <why>
";

/// The mechanisms offered, strongest first.
const MECHANISMS: [&str; 5] = [
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-1",
    "PLAIN",
];
/// Bound on a direct TLS handshake (STARTTLS is bounded by the machine).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// The listen backlog: bursts of thousands of connections.
const BACKLOG: u32 = 4096;

/// How TLS is had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsArg {
    /// STARTTLS, required before SASL.
    StartTls,
    /// XEP-0368.
    Direct,
    /// None.
    None,
}

/// The command line.
pub struct Args {
    /// `--listen`.
    pub listen: String,
    /// `--domain`.
    pub domain: String,
    /// `--db`.
    pub db: PathBuf,
    /// `--cert`.
    pub cert: Option<PathBuf>,
    /// `--key`.
    pub key: Option<PathBuf>,
    /// `--tls`.
    pub tls: TlsArg,
    /// `--allow-register`.
    pub allow_register: bool,
    /// `--user` (the passwords never shown by `Debug`).
    pub users: Vec<(String, Secret)>,
    /// `--iterations`.
    pub iterations: u32,
    /// `--verbose`.
    pub verbose: bool,
    /// `--stats`: seconds between two STATS lines.
    pub stats: Option<u64>,
    /// `--tls-floor`: handshakes to measure instead of serving.
    pub tls_floor: Option<u64>,
    /// `--workers`: processes (1: this one serves).
    pub workers: usize,
    /// `--worker I/N` (set by the parent of `--workers`).
    pub worker: Option<(usize, usize)>,
    /// `--peers DIR`: the workers' sockets (set by the parent).
    pub peers: Option<PathBuf>,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("listen", &self.listen)
            .field("domain", &self.domain)
            .field("db", &self.db)
            .field("tls", &self.tls)
            .field("allow_register", &self.allow_register)
            .field(
                "users",
                &self.users.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Parses the arguments (without the program name); `Ok(None)` for
/// `--help`.
pub fn parse_args(it: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut it = it.into_iter();
    let mut a = Args {
        listen: "127.0.0.1:5222".into(),
        domain: String::new(),
        db: PathBuf::new(),
        cert: None,
        key: None,
        tls: TlsArg::StartTls,
        allow_register: false,
        users: Vec::new(),
        iterations: 4096,
        verbose: false,
        stats: None,
        tls_floor: None,
        workers: 1,
        worker: None,
        peers: None,
    };
    let (mut domain, mut db) = (None, None);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => a.listen = value()?,
            "--domain" => domain = Some(value()?),
            "--db" => db = Some(PathBuf::from(value()?)),
            "--cert" => a.cert = Some(PathBuf::from(value()?)),
            "--key" => a.key = Some(PathBuf::from(value()?)),
            "--tls" => {
                a.tls = match value()?.as_str() {
                    "starttls" => TlsArg::StartTls,
                    "direct" => TlsArg::Direct,
                    "none" => TlsArg::None,
                    other => return Err(format!("--tls: starttls, direct or none, not {other:?}")),
                }
            }
            "--allow-register" => a.allow_register = true,
            "--user" => {
                let v = value()?;
                let (n, p) = v
                    .split_once(':')
                    .ok_or("--user: NAME:PASSWORD (the password is not shown)")?;
                a.users.push((n.to_owned(), Secret::new(p)));
            }
            "--iterations" => {
                a.iterations = value()?
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000_000).contains(n))
                    .ok_or("--iterations: a number from 1 to 10,000,000")?;
            }
            "--verbose" => a.verbose = true,
            "--tls-floor" => {
                a.tls_floor = Some(
                    value()?
                        .parse()
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .ok_or("--tls-floor: a number of handshakes from 1 to 1,000,000")?,
                );
            }
            "--workers" => {
                a.workers = value()?
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or("--workers: a number from 1 to 64")?;
            }
            "--worker" => a.worker = Some(cluster::parse_worker(&value()?)?),
            "--peers" => a.peers = Some(PathBuf::from(value()?)),
            "--stats" => {
                a.stats = Some(
                    value()?
                        .parse()
                        .ok()
                        .filter(|n| (1..=3600).contains(n))
                        .ok_or("--stats: seconds from 1 to 3600")?,
                );
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    a.domain = domain.ok_or("--domain D is required")?;
    a.db = db.ok_or("--db FILE is required")?;
    if a.worker.is_some() != a.peers.is_some() {
        return Err("--worker I/N and --peers DIR go together (set by --workers)".into());
    }
    if a.tls != TlsArg::None && (a.cert.is_none() || a.key.is_none()) {
        return Err("TLS needs --cert F and --key F (or --tls none)".into());
    }
    Ok(Some(a))
}

/// Most stanzas routed to one session and not yet taken by its driver (as
/// the threaded `server` tool's queue).
const QUEUE: usize = 64;

/// How another session reaches a bound one: its driver's handle, or
/// (`--workers`) the link to the worker that holds it.
#[derive(Clone)]
enum Route {
    /// A session of this process.
    Local {
        session: u64,
        handle: Handle<Server>,
    },
    /// A session of worker `worker`, bound to `full`.
    Remote {
        session: u64,
        worker: usize,
        full: Arc<str>,
        cluster: Arc<cluster::Cluster>,
    },
}

impl Mailbox for Route {
    fn session(&self) -> u64 {
        match self {
            Route::Local { session, .. } | Route::Remote { session, .. } => *session,
        }
    }

    fn offer(&self, el: Element) -> Result<(), (Refused, Element)> {
        match self {
            // A session far behind (a peer that stopped reading) holds at
            // most QUEUE stanzas routed to it; more are bounced.
            Route::Local { handle, .. } => {
                handle.try_send(el, QUEUE).map_err(|(why, el)| match why {
                    NotQueued::Full => (Refused::Full, el),
                    NotQueued::Gone => (Refused::Gone, el),
                })
            }
            // The core stamped `from`: the worker there bounces to it.
            Route::Remote {
                worker,
                full,
                cluster,
                ..
            } => {
                let sender = el.attr("from").unwrap_or_default().to_owned();
                cluster.deliver(*worker, full, &sender, el)
            }
        }
    }
}

/// What every connection shares.
pub struct Shared {
    domain: String,
    config: Arc<ServerConfig>,
    tls: Option<Arc<TlsSetup>>,
    direct: bool,
    store: Arc<Store>,
    router: Router<Route>,
    next_id: AtomicU64,
    /// `--worker`: this worker and its links to the others.
    cluster: Option<Arc<cluster::Cluster>>,
    /// Logins so far.
    pub logins: AtomicU64,
    /// Connections open now.
    pub connections: AtomicU64,
    verbose: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The shared state of a server for `domain` (`tls`: the certificate,
    /// `None` for no TLS; `direct`: XEP-0368) over `store`.
    pub fn new(
        domain: &str,
        tls: Option<TlsSetup>,
        direct: bool,
        store: Store,
        allow_register: bool,
        iterations: u32,
        verbose: bool,
    ) -> Result<Self, String> {
        let mut config = ServerConfig::builder(domain.to_owned());
        config.tls = match (&tls, direct) {
            (None, _) => ServerTls::None,
            (Some(_), true) => ServerTls::Direct,
            (Some(_), false) => ServerTls::StartTlsRequired,
        };
        config.mechanisms = MECHANISMS.iter().map(|m| m.to_string()).collect();
        config.scram_unknown_user_iterations = iterations;
        if allow_register {
            config.register = Some(register_form());
        }
        let config = config.build().map_err(|e| format!("configuration: {e}"))?;
        Ok(Self {
            domain: domain.to_owned(),
            config: Arc::new(config),
            tls: tls.map(Arc::new),
            direct,
            store: Arc::new(store),
            router: Router::new(domain),
            next_id: AtomicU64::new(0),
            cluster: None,
            logins: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            verbose,
        })
    }

    /// Binds `full` to a local session unless it is taken (here or, as
    /// far as this worker has heard, in another worker).
    fn bind(&self, full: &str, session: u64, handle: &Handle<Server>) -> bool {
        let route = Route::Local {
            session,
            handle: handle.clone(),
        };
        let bound = self.router.bind(full, route);
        if let (true, Some(c)) = (bound, &self.cluster) {
            c.bound(session, full);
        }
        bound
    }

    /// Binds `full` to a local session, replacing any other.
    fn rebind(&self, full: &str, session: u64, handle: &Handle<Server>) {
        let route = Route::Local {
            session,
            handle: handle.clone(),
        };
        self.router.rebind(full, route);
        if let Some(c) = &self.cluster {
            c.bound(session, full);
        }
    }

    /// Unbinds `full` if `session` holds it.
    fn unbind(&self, full: &str, session: u64) {
        self.router.unbind(full, session);
        if let Some(c) = &self.cluster {
            c.unbound(session, full);
        }
    }

    fn log(&self, line: std::fmt::Arguments<'_>) {
        if self.verbose {
            println!("{line}");
        }
    }
}

/// A listener on `addr` with a deep backlog.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// A socket bound to `addr` with `SO_REUSEPORT` (`--workers`: each worker
/// listens on one such; the kernel spreads the connections).
pub fn reuseport_socket(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// Accepts connections for ever, one task each.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                let _ = sock.set_nodelay(true);
                accepted(&shared, sock, peer);
            }
            // Out of file descriptors, say: wait a little, go on.
            Err(_) => ::tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// A new connection: its session's task, after the TLS handshake for
/// direct TLS. What an idle session holds is that task, so it holds only
/// the driver and the host loop: a direct TLS handshake runs on a task of
/// its own first (its state, about 1.4 KiB, would otherwise be part of the
/// session's task for its whole life), and the task's future is the join
/// of the two, not an `async` block around them (which would keep a moved
/// copy of each).
fn accepted(shared: &Arc<Shared>, sock: TcpStream, peer: SocketAddr) {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let id = shared.cluster.as_ref().map_or(id, |c| c.session_id(id));
    shared.connections.fetch_add(1, Ordering::Relaxed);
    // Stream ids and SCRAM nonces from the thread's pool, as TLS's.
    let server = Server::with_random(
        shared.config.clone(),
        Box::new(crate::random_pool::Pooled),
        Instant::now(),
    );
    match (&shared.tls, shared.direct) {
        (Some(tls), true) => {
            let (shared, tls) = (shared.clone(), tls.clone());
            ::tokio::spawn(async move {
                let accepted = ::tokio::time::timeout(
                    HANDSHAKE_TIMEOUT,
                    tls.tokio_accept(true, Box::new(sock), &[]),
                )
                .await;
                match accepted {
                    Ok(Ok(up)) => {
                        let parts = connection(server.direct_tls(up.info), up.stream);
                        spawn_session(shared, id, peer, parts);
                    }
                    Ok(Err(e)) => {
                        shared.log(format_args!("ERROR {peer}: {e}"));
                        shared.connections.fetch_sub(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        shared.log(format_args!("ERROR {peer}: tls handshake timed out"));
                        shared.connections.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            });
        }
        (Some(tls), false) => {
            let (conn, handle, events) = connection(server, sock);
            let tls = tls.clone();
            let conn = conn.with_tls(move |io, pending| {
                let tls = tls.clone();
                Box::pin(async move { tls.tokio_accept(false, io, &pending).await })
            });
            spawn_session(shared.clone(), id, peer, (conn, handle, events));
        }
        (None, _) => spawn_session(shared.clone(), id, peer, connection(server, sock)),
    }
}

/// The task of one session: its driver and its host loop, joined.
fn spawn_session(
    shared: Arc<Shared>,
    id: u64,
    peer: SocketAddr,
    parts: (Connection<Server>, Handle<Server>, Events<ServerEvent>),
) {
    ::tokio::spawn(session(shared, id, peer, parts));
}

/// The future of a session's task: the join of its driver and its host
/// loop. The driver's output (the machine, returned by `run`) is dropped
/// by a `map`, not kept: `join` holds room for each output beside its
/// future (`MaybeDone`), which for the machine was 1.8 KiB per idle
/// session, never used until the session ended.
fn session(
    shared: Arc<Shared>,
    id: u64,
    peer: SocketAddr,
    (conn, handle, events): (Connection<Server>, Handle<Server>, Events<ServerEvent>),
) -> impl std::future::Future<Output = ((), ())> + Send {
    futures_util::future::join(conn.run().map(drop), host(shared, id, peer, handle, events))
}

/// The host side of one connection: answers the machine's requests,
/// routes its stanzas; the connection is counted until it ends.
async fn host(
    shared: Arc<Shared>,
    id: u64,
    peer: SocketAddr,
    handle: Handle<Server>,
    mut events: Events<ServerEvent>,
) {
    let mut bound: Option<String> = None;
    while let Some(ev) = events.next().await {
        match ev {
            Ok(ServerEvent::Credentials(req)) => credentials(&shared, &handle, req),
            Ok(ServerEvent::Bind { jid, resource }) => {
                let resource = match resource {
                    Some(r) => Some(r),
                    None => ResourcePart::new(&format!("sansio-{}", token(10)))
                        .ok()
                        .map(|r| r.into_owned()),
                };
                let answer = match resource {
                    Some(r) => {
                        let full = jid.with_resource(&r).to_string();
                        if shared.bind(&full, id, &handle) {
                            bound = Some(full);
                            BindAnswer::Accept(Some(r))
                        } else {
                            BindAnswer::Refuse(BindRefusal::Conflict)
                        }
                    }
                    None => BindAnswer::Refuse(BindRefusal::Conflict),
                };
                let _ = handle.call(move |s| s.answer_bind(Instant::now(), answer));
            }
            Ok(ServerEvent::Ready { jid }) => {
                shared.logins.fetch_add(1, Ordering::Relaxed);
                shared.log(format_args!("LOGIN {jid} ({peer})"));
                let full = jid.to_string();
                if bound.as_deref() != Some(full.as_str()) {
                    if let Some(old) = bound.take() {
                        shared.unbind(&old, id);
                    }
                    shared.rebind(&full, id, &handle);
                    bound = Some(full);
                }
            }
            Ok(ServerEvent::Register(req)) => register(&shared, &handle, peer, req),
            Ok(ServerEvent::Stanza(el)) => {
                let sender = bound.clone().unwrap_or_default();
                if let Some(reply) = shared.router.route(&sender, el) {
                    let _ = handle.send(reply);
                }
            }
            Ok(ServerEvent::Error(e)) => shared.log(format_args!("ERROR {peer}: {e}")),
            Ok(_) => {}
            Err(e) => shared.log(format_args!("ERROR {peer}: {e}")),
        }
    }
    if let Some(full) = bound {
        shared.unbind(&full, id);
    }
    shared.connections.fetch_sub(1, Ordering::Relaxed);
}

/// An authorization identity the user may act as: none, itself, or its
/// bare JID.
fn authzid_ok(domain: &str, username: &str, authzid: Option<&str>) -> bool {
    match authzid {
        None | Some("") => true,
        Some(a) => a == username || a == format!("{username}@{domain}"),
    }
}

/// Answers a credential request: SCRAM from the database at once, PLAIN
/// after PBKDF2 on a blocking thread.
fn credentials(shared: &Arc<Shared>, handle: &Handle<Server>, req: CredentialRequest) {
    let answer = match req {
        CredentialRequest::Scram {
            username,
            authzid,
            hash,
        } => {
            let creds = if authzid_ok(&shared.domain, &username, authzid.as_deref()) {
                shared.store.scram(&username, hash).unwrap_or_else(|e| {
                    shared.log(format_args!("ERROR store: {e}"));
                    None
                })
            } else {
                None
            };
            CredentialAnswer::Scram(creds)
        }
        CredentialRequest::Password {
            username,
            authzid,
            password,
        } => {
            if !authzid_ok(&shared.domain, &username, authzid.as_deref()) {
                CredentialAnswer::Verdict(Err(SaslCondition::InvalidAuthzid))
            } else {
                let (store, handle) = (shared.store.clone(), handle.clone());
                ::tokio::task::spawn_blocking(move || {
                    let verdict = if store.check_password(&username, password.expose()) {
                        Ok(username)
                    } else {
                        Err(SaslCondition::NotAuthorized)
                    };
                    let answer = CredentialAnswer::Verdict(verdict);
                    let _ = handle.call(move |s| s.answer_credentials(Instant::now(), answer));
                });
                return;
            }
        }
        // No store here for tokens, certificates, Kerberos: not offered.
        _ => CredentialAnswer::Verdict(Err(SaslCondition::TemporaryAuthFailure)),
    };
    let _ = handle.call(move |s| s.answer_credentials(Instant::now(), answer));
}

/// Answers a registration: a new account is derived (PBKDF2) and written
/// on a blocking thread; nothing else is offered.
fn register(
    shared: &Arc<Shared>,
    handle: &Handle<Server>,
    peer: SocketAddr,
    req: RegistrationRequest,
) {
    let RegistrationRequest::Create {
        username, password, ..
    } = req
    else {
        let _ = handle.call(|s| s.answer_register(Instant::now(), Err(LegacyError::NOT_ALLOWED)));
        return;
    };
    let (shared, handle) = (shared.clone(), handle.clone());
    ::tokio::task::spawn_blocking(move || {
        let answer = shared.store.create(&username, password.expose());
        match answer {
            Ok(()) => shared.log(format_args!("REGISTER {username} ({peer})")),
            Err(e) => shared.log(format_args!(
                "REGISTER-FAIL {username}: {} ({peer})",
                e.code
            )),
        }
        let _ = handle.call(move |s| s.answer_register(Instant::now(), answer));
    });
}

/// Starts a server of `args` on the current runtime: the listener's
/// address and the shared state (the accept loop is spawned).
pub async fn start(args: &Args) -> Result<(SocketAddr, Arc<Shared>), String> {
    let store = Store::open(&args.db, args.iterations)?;
    for (name, password) in &args.users {
        match store.create(name, password.expose()) {
            Ok(()) | Err(LegacyError::CONFLICT) => {}
            Err(e) => return Err(format!("--user {name}: refused ({})", e.code)),
        }
    }
    let tls = match (&args.cert, &args.key, args.tls) {
        (_, _, TlsArg::None) => None,
        (Some(c), Some(k), _) => Some(TlsSetup::load(c, k)?),
        _ => return Err("TLS needs --cert and --key".into()),
    };
    let mut shared = Shared::new(
        &args.domain,
        tls,
        args.tls == TlsArg::Direct,
        store,
        args.allow_register,
        args.iterations,
        args.verbose,
    )?;
    let addr: SocketAddr = args
        .listen
        .parse()
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let (shared, listener) = match (args.worker, &args.peers) {
        (Some((i, n)), Some(dir)) => {
            let later = Arc::new(std::sync::OnceLock::new());
            shared.cluster = Some(Arc::new(cluster::Cluster::start(i, n, dir, later.clone())?));
            let shared = Arc::new(shared);
            let _ = later.set(shared.clone());
            let listener = reuseport_socket(addr)
                .and_then(|s| s.listen(BACKLOG))
                .map_err(|e| format!("--listen {addr}: {e}"))?;
            (shared, listener)
        }
        _ => (
            Arc::new(shared),
            listen(addr).map_err(|e| format!("--listen {addr}: {e}"))?,
        ),
    };
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    ::tokio::spawn(serve(listener, shared.clone()));
    Ok((local, shared))
}

/// The whole tool: arguments, runtime, serve until killed.
pub fn main() -> ExitCode {
    main_with_heap(|| 0)
}

/// The process's resident set (`VmRSS`), KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// `--tls-floor N`: the handshakes, the `TLS-FLOOR` line.
fn tls_floor_main(args: &Args, n: u64) -> ExitCode {
    let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
        eprintln!("xmpp-server-async: --tls-floor needs --cert F and --key F");
        return ExitCode::from(2);
    };
    let trust = crate::tls::Trust::CaFile(cert.display().to_string());
    match TlsSetup::load(cert, key)
        .and_then(|setup| tls_floor::run(Arc::new(setup), &trust, &args.domain, n))
    {
        Ok(floor) => {
            println!("{}", floor.line());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xmpp-server-async: --tls-floor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// [`main`] of a binary whose allocator counts: `heap` gives the bytes
/// live, for `--stats`.
pub fn main_with_heap(heap: fn() -> u64) -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("xmpp-server-async: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(n) = args.tls_floor {
        return tls_floor_main(&args, n);
    }
    if args.workers > 1 {
        let Ok(listen) = args.listen.parse::<SocketAddr>() else {
            eprintln!(
                "xmpp-server-async: --listen {}: not an address",
                args.listen
            );
            return ExitCode::from(2);
        };
        // The workers get the same arguments but these two.
        let mut rest = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            if a == "--workers" || a == "--listen" {
                it.next();
            } else {
                rest.push(a);
            }
        }
        return cluster::supervise(args.workers, listen, &rest);
    }
    if args.worker.is_some() {
        // A worker ends with its parent (its standard input closes).
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
    let fd_limit = crate::tool::host::raise_fd_limit();
    let runtime = match crate::tool::host::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xmpp-server-async: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let (addr, shared) = match start(&args).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("xmpp-server-async: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "LISTENING {addr} domain {} tls {} accounts {} fd-limit {fd_limit}",
            args.domain,
            match args.tls {
                TlsArg::StartTls => "starttls",
                TlsArg::Direct => "direct",
                TlsArg::None => "none",
            },
            shared.store.accounts().unwrap_or(0)
        );
        if let Some(secs) = args.stats {
            let mut every = ::tokio::time::interval(Duration::from_secs(secs));
            loop {
                every.tick().await;
                println!(
                    "STATS connections {} logins {} heap {} rss {}{}",
                    shared.connections.load(Ordering::Relaxed),
                    shared.logins.load(Ordering::Relaxed),
                    heap(),
                    rss_kib(),
                    shared
                        .cluster
                        .as_ref()
                        .map(|c| format!(" worker {}", c.index))
                        .unwrap_or_default()
                );
            }
        }
        std::future::pending::<()>().await;
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Option<Args>, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn command_line() {
        let a = args("--domain d --db x.db --tls none --user alice:pw-marker --allow-register")
            .unwrap()
            .unwrap();
        assert_eq!(a.users.len(), 1);
        assert!(a.allow_register);
        assert!(!format!("{a:?}").contains("pw-marker"));
        assert!(args("--help").unwrap().is_none());
        for bad in [
            "--db x --tls none",
            "--domain d --tls none",
            "--domain d --db x",
            "--domain d --db x --tls none --user alice",
            "--domain d --db x --tls none --iterations 0",
            "--domain d --db x --tls bogus",
            "--domain d --db x --tls none --what",
        ] {
            assert!(args(bad).is_err(), "{bad}");
        }
        for flag in [
            "--listen",
            "--domain",
            "--db",
            "--cert",
            "--key",
            "--tls",
            "--allow-register",
            "--user",
            "--iterations",
            "--verbose",
            "--stats",
            "--tls-floor",
            "--workers",
        ] {
            assert!(HELP.contains(flag), "{flag}");
        }
        assert!(authzid_ok("d", "u", None));
        assert!(authzid_ok("d", "u", Some("u@d")));
        assert!(!authzid_ok("d", "u", Some("v@d")));
    }

    /// What an idle session's task holds inline, measured (printed with
    /// `--nocapture`), and bounded so that a large state held across an
    /// `.await` shows: the future of the driver, of the host loop, their
    /// join (the task's future), the machine boxed in the driver, and the
    /// TLS stream after the handshake.
    #[test]
    fn an_idle_session_task_is_small() {
        let shared = Arc::new(
            Shared::new(
                "d",
                None,
                false,
                Store::in_memory(4096).unwrap(),
                false,
                4096,
                false,
            )
            .unwrap(),
        );
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let parts = || {
            let server = Server::new(shared.config.clone(), Instant::now());
            connection(server, ::tokio::io::duplex(64).0)
        };
        let run_size = std::mem::size_of_val(&parts().0.run());
        let (_, handle, events) = parts();
        let host_size = std::mem::size_of_val(&host(shared.clone(), 1, peer, handle, events));
        let task = session(shared.clone(), 1, peer, parts());
        let sizes = [
            ("driver future", run_size),
            ("host future", host_size),
            (
                "the task's future (their join)",
                std::mem::size_of_val(&task),
            ),
            (
                "Server (boxed in the driver)",
                std::mem::size_of::<Server>(),
            ),
            ("TLS stream (boxed)", crate::compact_tls::size()),
        ];
        for (what, n) in sizes {
            eprintln!("{what}: {n} bytes");
        }
        // The join: the two futures side by side, no room for the machine.
        assert!(
            std::mem::size_of_val(&task) <= run_size + host_size + 64,
            "{sizes:?}"
        );
    }
}
