//! `sso-proxy`: the single-sign-on connection manager (issue 14). Browsers
//! authenticate to it with HTTP Negotiate (Kerberos, SPNEGO) and reach an
//! XMPP server through it over BOSH (`/http-bind`) or WebSocket
//! (`/xmpp-websocket`); a Negotiate-authenticated browser is offered SASL
//! EXTERNAL alone, and its EXTERNAL becomes SASL GSSAPI to the server with
//! the credential the browser delegated. The protocol is the sans-IO
//! machines of `xmpp_sansio_hosts::sso`; this file is their I/O: one tokio
//! task owns every session (the hub), one task per HTTP connection, one
//! per upstream connection. Feature `gssapi`.
//!
//! Environment: `SSO_PROXY_TRANSCRIPT=DIR` writes each session's wire
//! transcript (the browser's bodies or messages, the upstream plaintext)
//! to `DIR/<bosh|ws>-<pid>-<n>.txt`, the format the replay tests read
//! (`hosts/tests/fixtures/sso/README.md`). Delegated tickets travel in
//! the Negotiate tokens, which are never written; the upstream GSSAPI
//! tokens (a service ticket and its authenticator) are: for test realms.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use xmpp_sansio::bosh::{BoshManagerConfig, Reply, RequestHandle};
use xmpp_sansio::sasl::gssapi::GssContext;
use xmpp_sansio::OsRandom;
use xmpp_sansio_hosts::gssapi::{accept_negotiate, AcceptorCredential, Initiator};
use xmpp_sansio_hosts::http::{self, Message, Reader};
use xmpp_sansio_hosts::server_tls::TlsSetup;
use xmpp_sansio_hosts::sso::bosh::{Access, BoshEvent, SsoBosh};
use xmpp_sansio_hosts::sso::web::{self, Caller, Cors};
use xmpp_sansio_hosts::sso::websocket::SsoWebSocket;
use xmpp_sansio_hosts::sso::{parse_realm_map, SsoConfig, SsoEvent};
use xmpp_sansio_hosts::tls::{self, BindingChoice, Trust};
use xmpp_sansio_hosts::tokio::BoxStream;

const USAGE: &str = "\
usage: sso-proxy --listen ADDR --upstream HOST:PORT --domain D --keytab F
                 --service HTTP@proxy.example.test --ca-file F --realm-map REALM=DOMAIN
                 [--static-dir DIR] [--allow-origin ORIGIN]... [--cert F --key F]

A BOSH and WebSocket connection manager that signs browsers in with Kerberos:
HTTP Negotiate to the proxy, SASL EXTERNAL to the browser, SASL GSSAPI to the
XMPP server with the credential the browser delegated. It never sees, asks for
or stores a password.

    --listen ADDR        where browsers connect (http on loopback; https with --cert/--key);
                         BOSH at /http-bind, WebSocket at /xmpp-websocket
    --upstream HOST:PORT the XMPP server's c2s port: TCP, then STARTTLS (required)
    --domain D           the XMPP domain (the streams' 'to'; the name the server's
                         certificate must carry)
    --keytab F           the keytab with the proxy's HTTP service key (checked at start)
    --service S@HOST     that service (HTTP@proxy.example.test: principal HTTP/proxy.example.test)
    --ca-file F          PEM trust anchors for the server's certificate
    --realm-map R=D      principals user@R are the JIDs user@D (repeatable)
    --static-dir DIR     serve the files of DIR (a web client) on the same origin
    --allow-origin O     a page of origin O (scheme://host[:port]) may call the proxy,
                         with credentials (CORS; repeatable); the proxy's own origin always may
    --cert F --key F     PEM certificate chain and key: https and wss
    --help               this text

Every /http-bind POST and every WebSocket upgrade is answered 401 Negotiate until it
carries a Negotiate token; a BOSH session is bound to the principal that created it and
checked on every request. A page for browsers without Kerberos adds ?sso=0: no 401,
the server's own mechanisms, unchanged. At most 256 sessions and 1024 HTTP connections;
60 s to log in.

Prints: LISTENING <addr> http|https, then per login
    SSO <principal> as <jid> via GSSAPI
and REFUSED <principal>: <reason>, END <bosh|ws> <id>: <reason>, ERROR <what>.
Environment: SSO_PROXY_TRANSCRIPT=DIR writes each session's wire transcript there (with the
upstream SASL GSSAPI tokens: for test realms only).";

/// Most sessions at once, BOSH and WebSocket together.
const MAX_SESSIONS: usize = 256;
/// Most HTTP connections at once (more are closed at once): a BOSH
/// session has up to two requests out, a WebSocket one connection.
const MAX_CONNECTIONS: usize = 4 * MAX_SESSIONS;
/// An HTTP connection without a request for this long is closed.
const HTTP_IDLE: Duration = Duration::from_secs(120);
/// A held BOSH request not answered by then (the manager answers at
/// `wait`, 60 s at most) is closed.
const BOSH_ANSWER: Duration = Duration::from_secs(75);
/// Connecting upstream, and its TLS handshake, each at most this long.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(10);
/// A static file larger than this is not served.
const MAX_STATIC: u64 = 8 * 1024 * 1024;
/// Writes queued for one upstream connection at most (then the session
/// ends: the server does not read).
const UPSTREAM_QUEUE: usize = 256;
/// Largest WebSocket message from a browser.
const MAX_WS_MESSAGE: usize = 1024 * 1024;

struct Args {
    listen: String,
    upstream: String,
    domain: String,
    keytab: PathBuf,
    service: String,
    ca_file: String,
    realm_map: Vec<(String, String)>,
    static_dir: Option<PathBuf>,
    allow_origin: Vec<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut listen, mut upstream, mut domain, mut keytab, mut service, mut ca) =
        (None, None, None, None, None, None);
    let mut a = Args {
        listen: String::new(),
        upstream: String::new(),
        domain: String::new(),
        keytab: PathBuf::new(),
        service: String::new(),
        ca_file: String::new(),
        realm_map: Vec::new(),
        static_dir: None,
        allow_origin: Vec::new(),
        cert: None,
        key: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--listen" => listen = Some(value()?),
            "--upstream" => upstream = Some(value()?),
            "--domain" => domain = Some(value()?),
            "--keytab" => keytab = Some(value()?),
            "--service" => service = Some(value()?),
            "--ca-file" => ca = Some(value()?),
            "--realm-map" => a
                .realm_map
                .push(parse_realm_map(&value()?).map_err(|e| format!("--realm-map: {e}"))?),
            "--static-dir" => a.static_dir = Some(PathBuf::from(value()?)),
            "--allow-origin" => a
                .allow_origin
                .push(value()?.trim_end_matches('/').to_owned()),
            "--cert" => a.cert = Some(PathBuf::from(value()?)),
            "--key" => a.key = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    let need = |v: Option<_>, f: &str| v.ok_or(format!("{f} is required (see --help)"));
    a.listen = need(listen, "--listen")?;
    a.upstream = need(upstream, "--upstream")?;
    a.domain = need(domain, "--domain")?.to_ascii_lowercase();
    a.keytab = need(keytab, "--keytab")?.into();
    a.service = need(service, "--service")?;
    a.ca_file = need(ca, "--ca-file")?;
    if a.realm_map.is_empty() {
        return Err("--realm-map REALM=DOMAIN is required (see --help)".into());
    }
    if a.cert.is_some() != a.key.is_some() {
        return Err("--cert and --key go together".into());
    }
    Ok(Some(a))
}

fn log(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sso-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sso-proxy: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(start(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sso-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What every task shares.
struct Shared {
    config: Arc<SsoConfig>,
    acceptor: AcceptorCredential,
    cors: Cors,
    static_dir: Option<PathBuf>,
    https: Option<TlsSetup>,
    upstream: String,
    upstream_tls: Arc<rustls::ClientConfig>,
    hub: mpsc::Sender<HubMsg>,
}

async fn start(args: Args) -> Result<(), String> {
    // Everything that can be wrong with the configuration fails here.
    let (service, host) = args
        .service
        .split_once('@')
        .ok_or(format!("--service {:?} is not SERVICE@HOST", args.service))?;
    let acceptor = AcceptorCredential::from_keytab(&args.keytab, service, host)
        .map_err(|e| format!("--keytab: {}", e.message()))?;
    let upstream_tls = tls::client_config(&Trust::CaFile(args.ca_file.clone()), None, false, None)
        .map_err(|e| format!("--ca-file: {e}"))?;
    if let Some(d) = &args.static_dir {
        if !d.is_dir() {
            return Err(format!("--static-dir {}: not a directory", d.display()));
        }
    }
    let https = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some(TlsSetup::load(c, k)?),
        _ => None,
    };
    let mut config = SsoConfig::new(args.domain.clone());
    config.realm_map = args.realm_map.clone();
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (hub_tx, hub_rx) = mpsc::channel(1024);
    let shared = Arc::new(Shared {
        config: Arc::new(config),
        acceptor,
        cors: Cors {
            allowed: args.allow_origin.clone(),
        },
        static_dir: args.static_dir.clone(),
        https,
        upstream: args.upstream.clone(),
        upstream_tls,
        hub: hub_tx,
    });
    let transcripts = std::env::var_os("SSO_PROXY_TRANSCRIPT").map(PathBuf::from);
    tokio::spawn(Hub::new(shared.clone(), transcripts).run(hub_rx));
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    log(format_args!(
        "LISTENING {addr} {}",
        if shared.https.is_some() {
            "https"
        } else {
            "http"
        }
    ));
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                log(format_args!("ERROR accept: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            // Closed unanswered: the proxy is full.
            drop(sock);
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_http(shared, sock, peer).await {
                log(format_args!("ERROR {peer}: {e}"));
            }
            drop(permit);
        });
    }
}

// ---------------------------------------------------------------------------
// HTTP connections

/// Who a request is, after its Negotiate token (if any).
struct Authenticated {
    principal: String,
    credential: Option<Box<dyn GssContext>>,
    reply: Option<Vec<u8>>,
}

/// The Negotiate token of `req`, accepted: `Ok(None)` without one.
fn authenticate(shared: &Shared, req: &Message) -> Result<Option<Authenticated>, String> {
    let Some(token) = web::negotiate_token(req) else {
        return Ok(None);
    };
    let token = token?;
    let n = accept_negotiate(&shared.acceptor, &token).map_err(|e| e.to_string())?;
    // The delegated credential becomes an initiator to the XMPP service
    // at once: no other credential is ever used for this user.
    let credential = match &n.delegated {
        Some(d) => Some(Box::new(
            Initiator::new("xmpp", &shared.config.domain, Some(d)).map_err(|e| e.to_string())?,
        ) as Box<dyn GssContext>),
        None => None,
    };
    Ok(Some(Authenticated {
        principal: n.principal,
        credential,
        reply: n.reply,
    }))
}

async fn serve_http(shared: Arc<Shared>, sock: TcpStream, peer: SocketAddr) -> Result<(), String> {
    let _ = sock.set_nodelay(true);
    let conn: BoxStream = match &shared.https {
        Some(setup) => {
            tokio::time::timeout(
                UPSTREAM_CONNECT,
                setup.tokio_accept(false, Box::new(sock), &[]),
            )
            .await
            .map_err(|_| "tls handshake timed out".to_string())??
            .stream
        }
        None => Box::new(sock),
    };
    let reader = Reader::new(true, xmpp_sansio_hosts::bosh::MAX_BODY);
    serve_connection(shared, conn, reader, peer).await
}

async fn write(conn: &mut BoxStream, out: &[u8]) -> Result<(), String> {
    conn.write_all(out)
        .await
        .and(conn.flush().await)
        .map_err(|e| format!("http write: {e}"))
}

fn is_upgrade(req: &Message) -> bool {
    req.header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

fn static_file(shared: &Shared, caller: &Caller, path: &str, keep: bool) -> Vec<u8> {
    let not_found = || web::refuse(caller, "404 Not Found", "not found");
    let Some(file) = shared
        .static_dir
        .as_deref()
        .and_then(|d| web::static_file(d, path))
    else {
        return not_found();
    };
    // Small files on a local disk: read at once.
    match std::fs::metadata(&file) {
        Ok(m) if m.is_file() && m.len() <= MAX_STATIC => {}
        _ => return not_found(),
    }
    match std::fs::read(&file) {
        Ok(body) => http::response_with(
            "200 OK",
            &web::cors_headers(caller),
            web::content_type(&file),
            &body,
            keep,
        ),
        Err(_) => not_found(),
    }
}

/// A BOSH POST: the Negotiate gate, then the hub. `None`: the request was
/// dropped (close the connection unanswered).
async fn bosh_request(
    shared: &Shared,
    req: &Message,
    caller: &Caller,
    without_sso: bool,
) -> Option<Vec<u8>> {
    let keep = req.keep_alive;
    let auth = match authenticate(shared, req) {
        Ok(a) => a,
        Err(e) => {
            log(format_args!("ERROR negotiate: {e}"));
            return Some(web::refuse(caller, "403 Forbidden", "Negotiate failed"));
        }
    };
    let (principal, credential, reply) = match auth {
        Some(a) => (Some(a.principal), a.credential, a.reply),
        None => (None, None, None),
    };
    let (tx, rx) = oneshot::channel();
    let msg = HubMsg::Bosh {
        body: req.body.clone(),
        principal,
        credential,
        without_sso,
        reply: tx,
    };
    shared.hub.send(msg).await.ok()?;
    let answer = tokio::time::timeout(BOSH_ANSWER, rx).await.ok()?.ok()?;
    let mut headers = web::cors_headers(caller);
    if let Some(r) = reply {
        headers.push_str(&web::negotiate_reply(&r));
    }
    Some(match answer {
        BoshAnswer::Body(b) => {
            http::response_with("200 OK", &headers, "text/xml; charset=utf-8", &b, keep)
        }
        BoshAnswer::Challenge => web::challenge(caller, keep),
        BoshAnswer::Forbidden => {
            web::refuse(caller, "403 Forbidden", "this session is another user's")
        }
    })
}

/// A WebSocket upgrade: the Negotiate gate, the handshake, then the
/// messages both ways through the hub.
async fn websocket(
    shared: Arc<Shared>,
    mut conn: BoxStream,
    reader: Reader,
    req: Message,
    caller: Caller,
    without_sso: bool,
    peer: SocketAddr,
) -> Result<(), String> {
    let auth = match authenticate(&shared, &req) {
        Ok(Some(a)) => Some(a),
        Ok(None) if without_sso => None,
        Ok(None) => {
            write(&mut conn, &web::challenge(&caller, req.keep_alive)).await?;
            // The browser retries on this connection: serve it again.
            return Box::pin(serve_connection(shared, conn, reader, peer)).await;
        }
        Err(e) => {
            log(format_args!("ERROR negotiate: {e}"));
            return write(
                &mut conn,
                &web::refuse(&caller, "403 Forbidden", "Negotiate failed"),
            )
            .await;
        }
    };
    let offered = req
        .header("sec-websocket-protocol")
        .is_some_and(|p| p.split(',').any(|p| p.trim().eq_ignore_ascii_case("xmpp")));
    let key = req.header("sec-websocket-key").map(str::to_owned);
    let (Some(key), true, true) = (key, offered, reader.is_empty()) else {
        return write(
            &mut conn,
            &web::refuse(
                &caller,
                "400 Bad Request",
                "an xmpp WebSocket upgrade (RFC 7395) is expected",
            ),
        )
        .await;
    };
    let (principal, credential, reply) = match auth {
        Some(a) => (Some(a.principal), a.credential, a.reply),
        None => (None, None, None),
    };
    let (out_tx, mut out_rx) = mpsc::channel(256);
    let (ok_tx, ok_rx) = oneshot::channel();
    let open = HubMsg::WsOpen {
        principal,
        credential,
        out: out_tx,
        reply: ok_tx,
    };
    shared.hub.send(open).await.map_err(|_| "hub gone")?;
    let Ok(Some(id)) = ok_rx.await else {
        return write(
            &mut conn,
            &web::refuse(&caller, "503 Service Unavailable", "too many sessions"),
        )
        .await;
    };
    let mut head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: xmpp\r\n{}",
        tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
        web::cors_headers(&caller)
    );
    if let Some(r) = reply {
        head.push_str(&web::negotiate_reply(&r));
    }
    head.push_str("\r\n");
    if let Err(e) = write(&mut conn, head.as_bytes()).await {
        let _ = shared.hub.send(HubMsg::WsGone { id }).await;
        return Err(e);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE))
        .max_frame_size(Some(MAX_WS_MESSAGE));
    let mut ws = WebSocketStream::from_raw_socket(conn, Role::Server, Some(config)).await;
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(WsMessage::Text(t))) => {
                    let data = t.as_bytes().to_vec();
                    if shared.hub.send(HubMsg::WsMessage { id, data }).await.is_err() { break; }
                }
                Some(Ok(WsMessage::Binary(b))) => {
                    if shared.hub.send(HubMsg::WsMessage { id, data: b.to_vec() }).await.is_err() { break; }
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
            },
            out = out_rx.recv() => match out {
                Some(WsOut::Message(m)) => {
                    let text = String::from_utf8_lossy(&m).into_owned();
                    if ws.send(WsMessage::text(text)).await.is_err() { break; }
                }
                Some(WsOut::Close) | None => {
                    let _ = ws.close(None).await;
                    return Ok(());
                }
            },
        }
    }
    let _ = shared.hub.send(HubMsg::WsGone { id }).await;
    Ok(())
}

/// The requests of one HTTP connection (TLS, if any, already up), until
/// it closes, idles out, or becomes a WebSocket.
async fn serve_connection(
    shared: Arc<Shared>,
    mut conn: BoxStream,
    mut reader: Reader,
    peer: SocketAddr,
) -> Result<(), String> {
    let scheme = if shared.https.is_some() {
        "https"
    } else {
        "http"
    };
    loop {
        let req =
            match tokio::time::timeout(HTTP_IDLE, http::read_async(&mut conn, &mut reader)).await {
                Ok(Ok(Some(m))) => m,
                Ok(Ok(None)) | Err(_) => return Ok(()),
                Ok(Err(_)) if reader.is_empty() => return Ok(()),
                Ok(Err(e)) => return Err(format!("http read: {e}")),
            };
        let caller = shared.cors.caller(&req, scheme);
        let (path, without_sso) = web::split_target(&req.path);
        let keep = req.keep_alive;
        if caller == Caller::Refused {
            return write(
                &mut conn,
                &web::refuse(&caller, "403 Forbidden", "origin not allowed"),
            )
            .await;
        }
        let out = match (req.method.as_str(), path) {
            ("OPTIONS", _) => web::preflight(&caller, keep),
            ("POST", web::BOSH_PATH) => {
                match bosh_request(&shared, &req, &caller, without_sso).await {
                    Some(out) => out,
                    None => return Ok(()),
                }
            }
            ("GET", web::WEBSOCKET_PATH) if is_upgrade(&req) => {
                return websocket(shared, conn, reader, req, caller, without_sso, peer).await;
            }
            ("GET", web::BOSH_PATH) => http::response_with(
                "200 OK",
                &web::cors_headers(&caller),
                "text/plain",
                b"XMPP over BOSH (XEP-0206) with single sign-on: POST <body/> here\n",
                keep,
            ),
            ("GET", p) => static_file(&shared, &caller, p, keep),
            _ => web::refuse(&caller, "404 Not Found", "not found"),
        };
        write(&mut conn, &out).await?;
        if !keep || !(out.starts_with(b"HTTP/1.1 2") || out.starts_with(b"HTTP/1.1 401")) {
            return Ok(());
        }
    }
}

// ---------------------------------------------------------------------------
// The hub: every session's machine, in one task

/// A BOSH request's answer from the hub.
enum BoshAnswer {
    Body(Vec<u8>),
    Challenge,
    Forbidden,
}

/// What goes to a WebSocket connection's task.
enum WsOut {
    Message(Vec<u8>),
    Close,
}

/// What reaches the hub.
enum HubMsg {
    Bosh {
        body: Vec<u8>,
        principal: Option<String>,
        credential: Option<Box<dyn GssContext>>,
        without_sso: bool,
        reply: oneshot::Sender<BoshAnswer>,
    },
    WsOpen {
        principal: Option<String>,
        credential: Option<Box<dyn GssContext>>,
        out: mpsc::Sender<WsOut>,
        /// The connection's id, or `None`: too many sessions.
        reply: oneshot::Sender<Option<u64>>,
    },
    WsMessage {
        id: u64,
        data: Vec<u8>,
    },
    WsGone {
        id: u64,
    },
    Upstream {
        key: Key,
        event: UpEvent,
    },
}

/// A session: a BOSH session id or a WebSocket connection id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Bosh(String),
    Ws(u64),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Bosh(sid) => write!(f, "bosh {sid}"),
            Key::Ws(id) => write!(f, "ws {id}"),
        }
    }
}

/// From an upstream connection's task.
enum UpEvent {
    Data(Vec<u8>),
    TlsDone,
    Gone(String),
}

/// To an upstream connection's task.
enum UpCmd {
    Write(Vec<u8>),
    StartTls(Vec<u8>),
    Close,
}

struct WsEntry {
    machine: SsoWebSocket,
    out: mpsc::Sender<WsOut>,
}

/// A session's wire transcript (`SSO_PROXY_TRANSCRIPT`).
struct Transcript(std::fs::File);

impl Transcript {
    fn line(&mut self, dir: &str, data: &[u8]) {
        let mut text = String::with_capacity(data.len() + 4);
        for c in String::from_utf8_lossy(data).chars() {
            match c {
                '\\' => text.push_str("\\\\"),
                '\n' => text.push_str("\\n"),
                '\r' => text.push_str("\\r"),
                c => text.push(c),
            }
        }
        let _ = writeln!(self.0, "{dir} {text}");
    }
}

struct Hub {
    shared: Arc<Shared>,
    bosh: SsoBosh,
    ws: HashMap<u64, WsEntry>,
    next_ws: u64,
    upstreams: HashMap<Key, mpsc::Sender<UpCmd>>,
    held: HashMap<RequestHandle, (Key, oneshot::Sender<BoshAnswer>)>,
    transcripts_dir: Option<PathBuf>,
    transcripts: HashMap<Key, Transcript>,
    next_transcript: u64,
    /// A flush changed a machine (an upstream found congested): flush
    /// again.
    dirty: bool,
}

impl Hub {
    fn new(shared: Arc<Shared>, transcripts_dir: Option<PathBuf>) -> Self {
        let rules = BoshManagerConfig {
            max_sessions: MAX_SESSIONS,
            ..BoshManagerConfig::default()
        };
        Hub {
            bosh: SsoBosh::new(shared.config.clone(), rules, Box::new(OsRandom)),
            shared,
            ws: HashMap::new(),
            next_ws: 0,
            upstreams: HashMap::new(),
            held: HashMap::new(),
            transcripts_dir,
            transcripts: HashMap::new(),
            next_transcript: 0,
            dirty: false,
        }
    }

    fn record(&mut self, key: &Key, dir: &str, data: &[u8]) {
        let Some(root) = &self.transcripts_dir else {
            return;
        };
        if !self.transcripts.contains_key(key) {
            self.next_transcript += 1;
            let kind = match key {
                Key::Bosh(_) => "bosh",
                Key::Ws(_) => "ws",
            };
            let path = root.join(format!(
                "{kind}-{}-{}.txt",
                std::process::id(),
                self.next_transcript
            ));
            match std::fs::File::create(&path) {
                Ok(f) => {
                    self.transcripts.insert(key.clone(), Transcript(f));
                }
                Err(e) => return log(format_args!("ERROR transcript {}: {e}", path.display())),
            }
        }
        if let Some(t) = self.transcripts.get_mut(key) {
            t.line(dir, data);
        }
    }

    async fn run(mut self, mut inbox: mpsc::Receiver<HubMsg>) {
        loop {
            let deadline = self
                .ws
                .values()
                .filter_map(|w| w.machine.poll_timeout())
                .chain(self.bosh.poll_timeout())
                .min();
            let msg = match deadline {
                Some(d) => {
                    tokio::select! {
                        m = inbox.recv() => match m { Some(m) => Some(m), None => return },
                        _ = tokio::time::sleep_until(d.into()) => None,
                    }
                }
                None => match inbox.recv().await {
                    Some(m) => Some(m),
                    None => return,
                },
            };
            let now = Instant::now();
            match msg {
                Some(m) => self.handle(now, m),
                None => {
                    self.bosh.handle_timeout(now);
                    for w in self.ws.values_mut() {
                        if w.machine.poll_timeout().is_some_and(|t| t <= now) {
                            w.machine.handle_timeout(now);
                        }
                    }
                }
            }
            self.flush();
            while std::mem::take(&mut self.dirty) {
                self.flush();
            }
        }
    }

    fn handle(&mut self, now: Instant, msg: HubMsg) {
        match msg {
            HubMsg::Bosh {
                body,
                principal,
                credential,
                without_sso,
                reply,
            } => match self.bosh.access(&body, principal.as_deref(), without_sso) {
                Access::Challenge => drop(reply.send(BoshAnswer::Challenge)),
                Access::Forbidden => drop(reply.send(BoshAnswer::Forbidden)),
                Access::Pass => {
                    let sid = xmpp_sansio::bosh::Body::parse(&body, &self.shared.config.limits)
                        .ok()
                        .and_then(|b| b.sid);
                    let answer =
                        self.bosh
                            .handle_request(now, &body, principal.as_deref(), credential);
                    // A creation request's session is the one it created.
                    let key = sid
                        .map(Key::Bosh)
                        .or_else(|| self.bosh.created_last().map(|s| Key::Bosh(s.to_owned())));
                    if let Some(k) = &key {
                        self.record(k, "B>", &body);
                    }
                    match answer {
                        Reply::Immediate(b) | Reply::Refused { body: b, .. } => {
                            if let Some(k) = &key {
                                self.record(k, "B<", &b);
                            }
                            let _ = reply.send(BoshAnswer::Body(b));
                        }
                        Reply::Held(h) => {
                            if let Some(k) = key {
                                self.held.insert(h, (k, reply));
                            }
                        }
                    }
                }
            },
            HubMsg::WsOpen {
                principal,
                credential,
                out,
                reply,
            } => {
                if self.ws.len() + self.bosh.session_count() >= MAX_SESSIONS {
                    let _ = reply.send(None);
                    return;
                }
                self.next_ws += 1;
                let id = self.next_ws;
                let user = principal.as_deref().map(|p| self.shared.config.user(p));
                let machine = SsoWebSocket::new(self.shared.config.clone(), user, credential);
                self.ws.insert(id, WsEntry { machine, out });
                let _ = reply.send(Some(id));
            }
            HubMsg::WsMessage { id, data } => {
                self.record(&Key::Ws(id), "B>", &data);
                if let Some(w) = self.ws.get_mut(&id) {
                    w.machine.feed_message(now, &data);
                }
            }
            HubMsg::WsGone { id } => {
                if let Some(w) = self.ws.get_mut(&id) {
                    w.machine.browser_gone();
                }
            }
            HubMsg::Upstream { key, event } => {
                match &event {
                    UpEvent::Data(d) => self.record(&key, "U<", d),
                    UpEvent::TlsDone => self.record(&key, "TLS", b""),
                    UpEvent::Gone(_) => {}
                }
                match (&key, event) {
                    (Key::Bosh(sid), UpEvent::Data(d)) => self.bosh.feed_upstream(now, sid, &d),
                    (Key::Bosh(sid), UpEvent::TlsDone) => self.bosh.tls_established(now, sid),
                    (Key::Bosh(sid), UpEvent::Gone(why)) => self.bosh.upstream_gone(now, sid, &why),
                    (Key::Ws(id), event) => {
                        if let Some(w) = self.ws.get_mut(id) {
                            match event {
                                UpEvent::Data(d) => w.machine.feed_upstream(&d),
                                UpEvent::TlsDone => w.machine.tls_established(),
                                UpEvent::Gone(why) => w.machine.upstream_gone(&why),
                            }
                        }
                    }
                }
            }
        }
    }

    /// Moves every machine's output to its connections.
    fn flush(&mut self) {
        // BOSH: held answers, events, upstream bytes.
        while let Some((h, body)) = self.bosh.poll_response() {
            if let Some((key, reply)) = self.held.remove(&h) {
                self.record(&key, "B<", &body);
                let _ = reply.send(BoshAnswer::Body(body));
            }
        }
        let sids: Vec<String> = self.bosh.session_ids();
        for sid in sids {
            let key = Key::Bosh(sid.clone());
            let mut bytes = Vec::new();
            self.bosh.poll_upstream(&sid, &mut bytes);
            self.upstream_write(&key, bytes);
        }
        while let Some(ev) = self.bosh.poll_event() {
            match ev {
                BoshEvent::Created { .. } => {}
                BoshEvent::RequestDropped(h) => drop(self.held.remove(&h)),
                BoshEvent::Session { sid, event } => {
                    let key = Key::Bosh(sid.clone());
                    let closed = matches!(event, SsoEvent::Closed { .. });
                    self.session_event(&key, event);
                    if closed {
                        let mut bytes = Vec::new();
                        self.bosh.poll_upstream(&sid, &mut bytes);
                        self.upstream_write(&key, bytes);
                        self.upstream_close(&key);
                        self.bosh.forget(&sid);
                    }
                }
            }
        }
        // WebSocket: messages, events, upstream bytes.
        let ids: Vec<u64> = self.ws.keys().copied().collect();
        for id in ids {
            let key = Key::Ws(id);
            let mut messages = Vec::new();
            let mut events = Vec::new();
            let mut bytes = Vec::new();
            let (closed, out) = {
                let Some(w) = self.ws.get_mut(&id) else {
                    continue;
                };
                while let Some(m) = w.machine.poll_message() {
                    messages.push(m);
                }
                while let Some(e) = w.machine.poll_event() {
                    events.push(e);
                }
                w.machine.poll_upstream(&mut bytes);
                (w.machine.is_closed(), w.out.clone())
            };
            for m in messages {
                self.record(&key, "B<", &m);
                if out.try_send(WsOut::Message(m)).is_err() {
                    // The browser does not read: it is gone.
                    if let Some(w) = self.ws.get_mut(&id) {
                        w.machine.browser_gone();
                    }
                }
            }
            self.upstream_write(&key, bytes);
            for e in events {
                self.session_event(&key, e);
            }
            if closed {
                let _ = out.try_send(WsOut::Close);
                self.upstream_close(&key);
                self.ws.remove(&id);
            }
        }
    }

    fn session_event(&mut self, key: &Key, event: SsoEvent) {
        match event {
            SsoEvent::StartTls { pending } => {
                if let Some(up) = self.upstreams.get(key) {
                    let _ = up.try_send(UpCmd::StartTls(pending));
                }
            }
            SsoEvent::LoggedIn { principal, jid } => log(format_args!(
                "SSO {principal} as {} via GSSAPI",
                jid.as_deref().unwrap_or("(the server's mapping)")
            )),
            SsoEvent::LoginRefused { principal, reason } => {
                log(format_args!("REFUSED {principal}: {reason}"))
            }
            SsoEvent::Closed { reason } => {
                self.transcripts.remove(key);
                log(format_args!("END {key}: {reason}"));
            }
        }
    }

    /// Writes `bytes` upstream, connecting first when the session has no
    /// connection yet.
    fn upstream_write(&mut self, key: &Key, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        self.record(key, "U>", &bytes);
        if !self.upstreams.contains_key(key) {
            let (tx, rx) = mpsc::channel(UPSTREAM_QUEUE);
            self.upstreams.insert(key.clone(), tx);
            tokio::spawn(upstream(self.shared.clone(), key.clone(), rx));
        }
        let congested = self
            .upstreams
            .get(key)
            .is_some_and(|up| up.try_send(UpCmd::Write(bytes)).is_err());
        if congested {
            // The server does not read what the browser sends: the
            // session ends rather than queue without bound.
            self.upstream_gone(key, "the upstream connection does not keep up");
        }
    }

    /// Tells `key`'s machine that its upstream connection is unusable.
    fn upstream_gone(&mut self, key: &Key, why: &str) {
        self.dirty = true;
        let now = Instant::now();
        match key {
            Key::Bosh(sid) => self.bosh.upstream_gone(now, sid, why),
            Key::Ws(id) => {
                if let Some(w) = self.ws.get_mut(id) {
                    w.machine.upstream_gone(why);
                }
            }
        }
    }

    fn upstream_close(&mut self, key: &Key) {
        if let Some(up) = self.upstreams.remove(key) {
            // Dropping the sender ends the task after what is queued;
            // Close says so at once when there is room.
            let _ = up.try_send(UpCmd::Close);
        }
        self.transcripts.remove(key);
    }
}

// ---------------------------------------------------------------------------
// Upstream connections

/// One session's connection to the XMPP server: TCP, then TLS when the
/// session says (STARTTLS), the certificate checked against --ca-file for
/// the domain.
async fn upstream(shared: Arc<Shared>, key: Key, mut cmds: mpsc::Receiver<UpCmd>) {
    let report = |event| {
        let hub = shared.hub.clone();
        let key = key.clone();
        async move {
            let _ = hub.send(HubMsg::Upstream { key, event }).await;
        }
    };
    let mut io: BoxStream =
        match tokio::time::timeout(UPSTREAM_CONNECT, TcpStream::connect(&shared.upstream)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Box::new(s)
            }
            Ok(Err(e)) => {
                return report(UpEvent::Gone(format!("connect {}: {e}", shared.upstream))).await
            }
            Err(_) => {
                return report(UpEvent::Gone(format!(
                    "connect {}: timed out",
                    shared.upstream
                )))
                .await
            }
        };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(UpCmd::Write(b)) => {
                    if let Err(e) = io.write_all(&b).await.and(io.flush().await) {
                        return report(UpEvent::Gone(format!("write: {e}"))).await;
                    }
                }
                Some(UpCmd::StartTls(pending)) => {
                    let config = shared.upstream_tls.clone();
                    let handshake = tls::tokio_connect(config, &shared.config.domain, io, &pending, BindingChoice::None, false);
                    match tokio::time::timeout(UPSTREAM_CONNECT, handshake).await {
                        Ok(Ok(up)) => {
                            io = up.stream;
                            report(UpEvent::TlsDone).await;
                        }
                        Ok(Err(e)) => return report(UpEvent::Gone(e)).await,
                        Err(_) => return report(UpEvent::Gone("tls handshake timed out".into())).await,
                    }
                }
                Some(UpCmd::Close) | None => {
                    let _ = io.shutdown().await;
                    return;
                }
            },
            n = io.read(&mut buf) => match n {
                Ok(0) => return report(UpEvent::Gone("the server closed the connection".into())).await,
                Ok(n) => report(UpEvent::Data(buf[..n].to_vec())).await,
                Err(e) => return report(UpEvent::Gone(format!("read: {e}"))).await,
            },
        }
    }
}
