//! The drivers end to end: a `Client` on a driver against a `Server` on a
//! driver of the same kind, STARTTLS through real rustls (a certificate
//! made by rcgen at start, trusted by the client), SCRAM-SHA-256-PLUS with
//! the channel binding the upgrade callbacks extracted, resource binding,
//! then a message each way and a close from the client.
//!
//! The blocking drivers talk over a loopback TCP connection (the server in
//! a thread; its message goes out the way the server tool routes one, by
//! interrupting the driver's read through TLS), the tokio drivers over an
//! in-memory `tokio::io::duplex`.
//!
//! The `_over_wss` tests do the same over RFC 7395 WebSocket framing:
//! TLS first (its channel bindings given with `direct_tls`), the WebSocket
//! handshakes of `xmpp_sansio_hosts::websocket` (subprotocol `xmpp`), then
//! one element per message through `Driver::websocket` and
//! `websocket_connection`.

mod common;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use minidom::Element;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use xmpp_sansio::client::{Client, ClientConfig, ClientEvent, Credentials};
use xmpp_sansio::sasl::scram::derive_server_credentials;
use xmpp_sansio::sasl::{ChannelBindingUse, CredentialAnswer, CredentialRequest};
use xmpp_sansio::server::{BindAnswer, Server, ServerConfig, ServerEvent};
use xmpp_sansio::{ns, UsageError};
use xmpp_sansio_hosts::blocking::{self, Wake};
use xmpp_sansio_hosts::server_tls::TlsSetup;
use xmpp_sansio_hosts::tls::{self, BindingChoice, Trust};
use xmpp_sansio_hosts::{tokio as driver, Machine};

const DOMAIN: &str = "sansio.test";
const FULL_JID: &str = "juliet@sansio.test/balcony";

/// A self-signed certificate for `DOMAIN` and its key.
fn pki() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    common::pki(DOMAIN)
}

fn client() -> Client {
    let mut config = ClientConfig::builder("juliet@sansio.test", Credentials::password("s3cret"));
    config.resource = Some("balcony".into());
    Client::new(config.build().expect("valid"), Instant::now())
}

fn server() -> Server {
    Server::new(
        ServerConfig::builder(DOMAIN).build().expect("valid"),
        Instant::now(),
    )
}

fn client_tls(cert: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    tls::client_config(&Trust::Certificates(vec![cert.clone()]), None, false, None)
        .expect("client config")
}

fn message(to: &str, body: &str) -> Element {
    let name = |n: &str| rxml::NcName::try_from(n).expect("name");
    Element::builder("message", ns::JABBER_CLIENT)
        .attr(name("to"), to)
        .attr(name("type"), "chat")
        .append(
            Element::builder("body", ns::JABBER_CLIENT)
                .append(body)
                .build(),
        )
        .build()
}

fn body(el: &Element) -> Option<String> {
    el.get_child("body", ns::JABBER_CLIENT).map(Element::text)
}

/// A call on a machine, as a host answers a request.
type Call<M> = Box<dyn FnOnce(&mut M) -> Result<(), UsageError> + Send>;

/// What the hosts below ask of a driver: the blocking one, or a tokio
/// handle.
trait Peer<M> {
    fn send(&mut self, stanza: Element);
    fn call(&mut self, call: Call<M>);
    fn close(&mut self);
}

/// A blocking driver as the hosts see it. With `routed` (the server), a
/// stanza goes the way the server tool routes one: held, the connection's
/// next read interrupted ([`blocking::interrupt`], through rustls), and
/// sent at `Wake::Interrupted`.
struct Blocking<M: Machine> {
    driver: blocking::Driver<M>,
    routed: Option<(Arc<AtomicBool>, Vec<Element>)>,
}

impl<M: Machine> Peer<M> for Blocking<M> {
    fn send(&mut self, stanza: Element) {
        match &mut self.routed {
            Some((interrupt, held)) => {
                held.push(stanza);
                interrupt.store(true, Ordering::SeqCst);
            }
            None => self.driver.send(&stanza).expect("send"),
        }
    }
    fn call(&mut self, call: Call<M>) {
        call(self.driver.machine_mut()).expect("call");
    }
    fn close(&mut self) {
        self.driver.close();
    }
}

/// The server's connection in the blocking test: a socket whose next read
/// is interrupted when `interrupt` is set (as the server tool's queue is
/// by a routed stanza).
struct Interruptible {
    sock: TcpStream,
    interrupt: Arc<AtomicBool>,
}

impl Read for Interruptible {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.interrupt.swap(false, Ordering::SeqCst) {
            return Err(blocking::interrupt());
        }
        self.sock.read(buf)
    }
}

impl Write for Interruptible {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

impl blocking::Transport for Interruptible {
    fn set_read_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        self.sock.set_read_deadline(deadline)
    }
    fn hang_up(&mut self) {
        self.sock.hang_up();
    }
}

impl<M: 'static> Peer<M> for driver::Handle<M> {
    fn send(&mut self, stanza: Element) {
        driver::Handle::send(self, stanza).expect("send");
    }
    fn call(&mut self, call: Call<M>) {
        driver::Handle::call(self, call).expect("call");
    }
    fn close(&mut self) {
        driver::Handle::close(self).expect("close");
    }
}

/// What each host saw.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    /// The client: the mechanism and its channel binding type.
    mechanism: Option<(String, Option<String>)>,
    ready: Option<String>,
    /// The body of the message from the other side.
    got: Option<String>,
}

/// The client's host: a message to the server at `Ready`, a close once
/// the server's message came. `true` when the stream is over.
fn on_client_event(peer: &mut dyn Peer<Client>, seen: &mut Seen, ev: ClientEvent) -> bool {
    match ev {
        ClientEvent::Authenticated {
            mechanism,
            security,
            ..
        } => {
            let cb = match security.channel_binding {
                Some(ChannelBindingUse::Bound(t)) => Some(t.as_str().to_owned()),
                _ => None,
            };
            seen.mechanism = Some((mechanism, cb));
        }
        ClientEvent::Ready { jid } => {
            seen.ready = Some(jid.to_string());
            peer.send(message(DOMAIN, "from the client"));
        }
        ClientEvent::Stanza(el) => {
            seen.got = body(&el);
            peer.close();
        }
        ClientEvent::Closed => return true,
        ClientEvent::Error(e) => panic!("client: {e:?}"),
        _ => {}
    }
    false
}

/// The server's host: SCRAM credentials for juliet, the resource she
/// asks for, a message to her at `Ready`. `true` when the stream is over.
fn on_server_event(peer: &mut dyn Peer<Server>, seen: &mut Seen, ev: ServerEvent) -> bool {
    match ev {
        ServerEvent::Credentials(CredentialRequest::Scram { username, hash, .. }) => {
            assert_eq!(username, "juliet");
            let creds = derive_server_credentials(hash, "s3cret", b"salt of juliet", 4096)
                .expect("credentials");
            peer.call(Box::new(move |s: &mut Server| {
                s.answer_credentials(Instant::now(), CredentialAnswer::Scram(Some(creds)))
            }));
        }
        ServerEvent::Credentials(other) => panic!("server: unexpected request {other:?}"),
        ServerEvent::Bind { resource, .. } => peer.call(Box::new(move |s: &mut Server| {
            s.answer_bind(Instant::now(), BindAnswer::Accept(resource))
        })),
        ServerEvent::Ready { jid } => {
            peer.send(message(jid.as_str(), "from the server"));
            seen.ready = Some(jid.to_string());
        }
        ServerEvent::Stanza(el) => seen.got = body(&el),
        ServerEvent::Closed => return true,
        ServerEvent::Error(e) => panic!("server: {e:?}"),
        _ => {}
    }
    false
}

/// What both hosts must have seen: the session negotiated over TLS with
/// the channel binding of the upgrade, and a message each way.
fn check(client: Seen, server: Seen) {
    assert_eq!(
        client,
        Seen {
            mechanism: Some(("SCRAM-SHA-256-PLUS".into(), Some("tls-exporter".into()))),
            ready: Some(FULL_JID.into()),
            got: Some("from the server".into()),
        }
    );
    assert_eq!(
        server,
        Seen {
            mechanism: None,
            ready: Some(FULL_JID.into()),
            got: Some("from the client".into()),
        }
    );
}

/// Longer than the whole exchange takes (a tenth of a second): a driver
/// that loses a byte or an event fails the test here instead of hanging.
const BOUND: Duration = Duration::from_secs(20);

/// Runs a blocking driver's host until the stream is over.
fn run_blocking<M: Machine>(
    mut peer: Blocking<M>,
    on_event: fn(&mut dyn Peer<M>, &mut Seen, M::Event) -> bool,
) -> (Seen, blocking::Driver<M>) {
    let mut seen = Seen::default();
    let until = Instant::now() + BOUND;
    loop {
        match peer.driver.next(Some(until)).expect("driver") {
            Wake::Event(ev) => {
                if on_event(&mut peer, &mut seen, ev) {
                    break;
                }
            }
            Wake::Over => break,
            Wake::Deadline => panic!("not over in {BOUND:?}: {seen:?}"),
            Wake::Interrupted => {
                let (_, held) = peer.routed.as_mut().expect("an interrupt of the server's");
                for stanza in std::mem::take(held) {
                    peer.driver.send(&stanza).expect("send");
                }
            }
        }
    }
    (seen, peer.driver)
}

#[test]
fn blocking_client_and_server_over_starttls() {
    let (cert, key) = pki();
    let setup = Arc::new(TlsSetup::new(vec![cert.clone()], key).expect("tls setup"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("address");
    let server_side = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        let interrupt = Arc::new(AtomicBool::new(false));
        let conn = Interruptible {
            sock,
            interrupt: interrupt.clone(),
        };
        let driver =
            blocking::Driver::new(server(), conn).with_tls(move |sock, pending, deadline| {
                setup.blocking_accept(false, sock, pending, deadline)
            });
        let peer = Blocking {
            driver,
            routed: Some((interrupt, Vec::new())),
        };
        let (seen, driver) = run_blocking(peer, on_server_event);
        assert!(driver
            .tls_summary()
            .is_some_and(|s| s.contains("tls-exporter")));
        driver.hang_up();
        seen
    });

    let sock = TcpStream::connect(addr).expect("connect");
    let upgrade = tls::blocking_upgrade(client_tls(&cert), DOMAIN, BindingChoice::Auto, false);
    let driver = blocking::Driver::new(client(), sock).with_tls(upgrade);
    let peer = Blocking {
        driver,
        routed: None,
    };
    let (client_seen, driver) = run_blocking(peer, on_client_event);
    assert!(driver.machine().is_encrypted());
    assert!(driver.machine().is_closed());
    driver.hang_up();
    check(client_seen, server_side.join().expect("server thread"));
}

/// Runs a tokio driver's host until the stream is over.
async fn run_tokio<M: Machine + 'static>(
    mut handle: driver::Handle<M>,
    mut events: driver::Events<M::Event>,
    on_event: fn(&mut dyn Peer<M>, &mut Seen, M::Event) -> bool,
) -> Seen {
    let mut seen = Seen::default();
    while let Some(ev) = events.next().await {
        if on_event(&mut handle, &mut seen, ev.expect("event")) {
            break;
        }
    }
    seen
}

#[tokio::test]
async fn tokio_client_and_server_over_starttls() {
    let (cert, key) = pki();
    let setup = Arc::new(TlsSetup::new(vec![cert.clone()], key).expect("tls setup"));
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);

    let (server_conn, server_handle, server_events) = driver::connection(server(), server_io);
    let server_conn = server_conn.with_tls(move |io, pending| {
        let setup = setup.clone();
        Box::pin(async move { setup.tokio_accept(false, io, &pending).await })
    });
    let server_host = run_tokio(server_handle, server_events, on_server_event);

    let (client_conn, client_handle, client_events) = driver::connection(client(), client_io);
    let client_conn = client_conn.with_tls(tls::tokio_upgrade(
        client_tls(&cert),
        DOMAIN,
        BindingChoice::Auto,
        false,
    ));
    let client_host = run_tokio(client_handle, client_events, on_client_event);

    let all = async {
        tokio::join!(
            client_conn.run(),
            server_conn.run(),
            client_host,
            server_host
        )
    };
    let (client, server, client_seen, server_seen) = tokio::time::timeout(BOUND, all)
        .await
        .expect("not over in time");
    assert!(client.is_encrypted() && client.is_closed());
    assert!(server.is_closed());
    check(client_seen, server_seen);
}

/// The client and the server of WebSocket framing (RFC 7395), for
/// `wss://` (TLS first: direct, with its channel bindings).
fn ws_machines(
    client_tls: xmpp_sansio::TlsInfo,
    server_tls: xmpp_sansio::TlsInfo,
) -> (Client, Server) {
    let mut config = ClientConfig::builder("juliet@sansio.test", Credentials::password("s3cret"));
    config.resource = Some("balcony".into());
    config.framing = xmpp_sansio::Framing::WebSocket;
    config.tls = xmpp_sansio::client::TlsMode::Direct;
    let client = Client::new(config.build().expect("valid"), Instant::now()).direct_tls(client_tls);
    let mut config = ServerConfig::builder(DOMAIN);
    config.framing = xmpp_sansio::Framing::WebSocket;
    config.tls = xmpp_sansio::server::ServerTls::Direct;
    let server = Server::new(config.build().expect("valid"), Instant::now()).direct_tls(server_tls);
    (client, server)
}

const WSS_URL: &str = "wss://sansio.test/xmpp-websocket";

#[test]
fn blocking_client_and_server_over_wss() {
    let (cert, key) = pki();
    let setup = Arc::new(TlsSetup::new(vec![cert.clone()], key).expect("tls setup"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("address");
    let deadline = Some(Instant::now() + BOUND);
    let (infos, info) = std::sync::mpsc::channel();
    let server_side = thread::spawn(move || {
        let (sock, _) = listener.accept().expect("accept");
        let up = setup
            .blocking_accept(false, Box::new(sock), &[], deadline)
            .expect("tls accept");
        let ws = xmpp_sansio_hosts::websocket::blocking_accept(up.stream, deadline)
            .expect("websocket accept");
        infos.send(up.info).expect("info");
        ws
    });
    let sock = TcpStream::connect(addr).expect("connect");
    let up = tls::blocking_connect(
        client_tls(&cert),
        DOMAIN,
        Box::new(sock),
        &[],
        deadline,
        BindingChoice::Auto,
        false,
    )
    .expect("tls connect");
    let ws = xmpp_sansio_hosts::websocket::blocking_client(WSS_URL, up.stream, deadline)
        .expect("websocket connect");
    let server_ws = server_side.join().expect("server handshake");
    let (client, server) = ws_machines(up.info, info.recv().expect("server tls"));

    let server_side = thread::spawn(move || {
        let peer = Blocking {
            driver: blocking::Driver::websocket(server, server_ws),
            routed: None,
        };
        let (seen, driver) = run_blocking(peer, on_server_event);
        driver.hang_up();
        seen
    });
    let peer = Blocking {
        driver: blocking::Driver::websocket(client, ws),
        routed: None,
    };
    let (client_seen, driver) = run_blocking(peer, on_client_event);
    assert!(driver.machine().is_closed());
    driver.hang_up();
    check(client_seen, server_side.join().expect("server thread"));
}

#[tokio::test]
async fn tokio_client_and_server_over_wss() {
    let (cert, key) = pki();
    let setup = TlsSetup::new(vec![cert.clone()], key).expect("tls setup");
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server_side = async {
        let up = setup
            .tokio_accept(false, Box::new(server_io), &[])
            .await
            .expect("tls accept");
        let ws = xmpp_sansio_hosts::websocket::tokio_accept(up.stream)
            .await
            .expect("websocket accept");
        (ws, up.info)
    };
    let client_side = async {
        let up = tls::tokio_connect(
            client_tls(&cert),
            DOMAIN,
            Box::new(client_io),
            &[],
            BindingChoice::Auto,
            false,
        )
        .await
        .expect("tls connect");
        let ws = xmpp_sansio_hosts::websocket::tokio_client(WSS_URL, up.stream)
            .await
            .expect("websocket connect");
        (ws, up.info)
    };
    let ((server_ws, server_info), (client_ws, client_info)) =
        tokio::time::timeout(BOUND, async { tokio::join!(server_side, client_side) })
            .await
            .expect("handshakes in time");
    let (client, server) = ws_machines(client_info, server_info);
    let (server_conn, server_handle, server_events) =
        driver::websocket_connection(server, server_ws);
    let (client_conn, client_handle, client_events) =
        driver::websocket_connection(client, client_ws);
    let all = async {
        tokio::join!(
            client_conn.run(),
            server_conn.run(),
            run_tokio(client_handle, client_events, on_client_event),
            run_tokio(server_handle, server_events, on_server_event)
        )
    };
    let (client, server, client_seen, server_seen) = tokio::time::timeout(BOUND, all)
        .await
        .expect("not over in time");
    assert!(client.is_closed() && server.is_closed());
    check(client_seen, server_seen);
}

/// `Handle::try_send` bounds what waits for a driver: with the driver not
/// running (a session far behind), the third stanza of a bound of two
/// comes back `Full`, untouched; once the driver is gone, `Gone`.
#[tokio::test]
async fn try_send_bounds_the_stanzas_a_driver_has_not_taken() {
    let (io, _peer) = ::tokio::io::duplex(64);
    let (conn, handle, _events) = driver::connection(server(), io);
    let stanza = |n: u32| {
        Element::builder("message", ns::JABBER_CLIENT)
            .attr(rxml::NcName::try_from("id").unwrap(), n.to_string())
            .build()
    };
    assert!(handle.try_send(stanza(1), 2).is_ok());
    assert!(handle.clone().try_send(stanza(2), 2).is_ok());
    assert_eq!(handle.queued(), 2);
    let (why, back) = handle.try_send(stanza(3), 2).unwrap_err();
    assert_eq!(why, driver::NotQueued::Full);
    assert_eq!(back.attr("id"), Some("3"));
    // `send` is not bounded (a host's own stanzas, in order).
    assert!(handle.send(stanza(4)).is_ok());
    assert_eq!(handle.queued(), 3);
    drop(conn);
    // The driver is gone: its queued stanzas with it.
    assert_eq!(handle.queued(), 0);
    let (why, back) = handle.try_send(stanza(5), 2).unwrap_err();
    assert_eq!(why, driver::NotQueued::Gone);
    assert_eq!(back.attr("id"), Some("5"));
}
