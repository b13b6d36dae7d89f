//! The BOSH drivers end to end over loopback HTTP: a `Client` on
//! `bosh::BoshDriver` (blocking) and on `bosh::bosh_connection` (tokio)
//! against a `BoshXmppServer` behind `bosh::serve_blocking` (one thread
//! per HTTP connection, one that owns the connection manager, as the
//! example server has). SCRAM-SHA-256, resource binding, a message each
//! way, the client's terminate; the client keeps a long poll held while
//! it sends, so two HTTP connections are in use.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_sansio::bosh::{
    BoshClientConfig, BoshManagerConfig, BoshXmppClient, BoshXmppServer, BoshXmppServerEvent, Reply,
};
use xmpp_sansio::client::{Client, ClientConfig, ClientEvent, Credentials, TlsMode};
use xmpp_sansio::sasl::scram::derive_server_credentials;
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest};
use xmpp_sansio::server::{BindAnswer, ServerConfig, ServerEvent, ServerTls};
use xmpp_sansio::{ns, Framing, OsRandom};
use xmpp_sansio_hosts::blocking::{BoxTransport, Wake};
use xmpp_sansio_hosts::bosh::{self, bosh_connection, BoshDriver};
use xmpp_sansio_hosts::websocket::WsUrl;

const DOMAIN: &str = "sansio.test";

type Request = (Vec<u8>, Sender<Vec<u8>>);

/// What the server saw: the bodies of the stanzas it got, whether a
/// session ended on the client's terminate, and how many HTTP connections
/// it accepted.
type Seen = Arc<std::sync::Mutex<(Vec<String>, bool, usize)>>;

/// A BOSH server on a loopback port: its URL and what it saw.
fn bosh_server() -> (WsUrl, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (to_cm, requests) = channel::<Request>();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    thread::spawn(move || connection_manager(requests, s));
    let s = seen.clone();
    thread::spawn(move || {
        for sock in listener.incoming() {
            s.lock().unwrap().2 += 1;
            let to_cm = to_cm.clone();
            thread::spawn(move || {
                let mut conn: BoxTransport = Box::new(sock.unwrap());
                let _ = bosh::serve_blocking(&mut conn, Duration::from_secs(30), |body| {
                    let (reply, answer) = channel();
                    to_cm.send((body, reply)).ok()?;
                    answer.recv().ok()
                });
            });
        }
    });
    let url = WsUrl::parse_http(&format!("http://{addr}{}", bosh::PATH)).unwrap();
    (url, seen)
}

fn connection_manager(requests: Receiver<Request>, seen: Seen) {
    let mut config = ServerConfig::builder(DOMAIN);
    config.framing = Framing::Bosh;
    config.tls = ServerTls::None;
    let mut cm = BoshXmppServer::with_os_random(
        Arc::new(config.build().unwrap()),
        BoshManagerConfig::default(),
    )
    .unwrap();
    let mut held = HashMap::new();
    loop {
        let wait = cm.poll_timeout().map_or(Duration::from_secs(3600), |t| {
            t.saturating_duration_since(Instant::now())
        });
        let now = Instant::now();
        match requests.recv_timeout(wait) {
            Ok((body, reply)) => match cm.handle_request(now, &body) {
                Reply::Immediate(b) | Reply::Refused { body: b, .. } => drop(reply.send(b)),
                Reply::Held(h) => drop(held.insert(h, reply)),
            },
            Err(RecvTimeoutError::Timeout) => cm.handle_timeout(now),
            Err(RecvTimeoutError::Disconnected) => return,
        }
        loop {
            let mut moved = false;
            while let Some(ev) = cm.poll_event() {
                moved = true;
                match ev {
                    BoshXmppServerEvent::Session { sid, event } => match event {
                        ServerEvent::Credentials(CredentialRequest::Scram { hash, .. }) => {
                            let c = derive_server_credentials(hash, "s3cret", b"salt", 4096);
                            let a = CredentialAnswer::Scram(Some(c.unwrap()));
                            cm.answer(now, &sid, a).unwrap();
                        }
                        ServerEvent::Bind { resource, .. } => {
                            cm.answer(now, &sid, BindAnswer::Accept(resource)).unwrap()
                        }
                        ServerEvent::Ready { jid } => {
                            let m = message(jid.as_str(), "from the server");
                            cm.send(now, &sid, &m).unwrap();
                        }
                        ServerEvent::Stanza(el) => seen.lock().unwrap().0.push(body(&el)),
                        _ => {}
                    },
                    BoshXmppServerEvent::RequestDropped(h) => drop(held.remove(&h)),
                    BoshXmppServerEvent::Ended { reason, .. } => {
                        seen.lock().unwrap().1 =
                            reason == xmpp_sansio::bosh::TerminateReason::Client;
                    }
                    _ => {}
                }
            }
            while let Some((h, b)) = cm.poll_response() {
                moved = true;
                if let Some(reply) = held.remove(&h) {
                    let _ = reply.send(b);
                }
            }
            if !moved {
                break;
            }
        }
    }
}

fn message(to: &str, text: &str) -> Element {
    format!("<message xmlns='jabber:client' to='{to}'><body>{text}</body></message>")
        .parse()
        .expect("a message")
}

fn body(el: &Element) -> String {
    el.get_child("body", ns::JABBER_CLIENT)
        .map(|b| b.text())
        .unwrap_or_default()
}

fn machine() -> BoshXmppClient {
    let mut config = ClientConfig::builder("juliet@sansio.test", Credentials::password("s3cret"));
    config.framing = Framing::Bosh;
    config.tls = TlsMode::None;
    config.resource = Some("balcony".into());
    let client = Client::new(config.build().unwrap(), Instant::now());
    let mut bosh = BoshClientConfig::new(DOMAIN);
    bosh.wait = 5;
    BoshXmppClient::new(client, bosh, &mut OsRandom, Instant::now()).unwrap()
}

/// What the client does with its events: the message to it comes back
/// with one to the server, then it closes.
fn on_event(ev: ClientEvent, got: &mut Vec<String>) -> Option<Element> {
    match ev {
        ClientEvent::Stanza(el) => {
            got.push(body(&el));
            Some(message(DOMAIN, "from the client"))
        }
        ClientEvent::Error(e) => panic!("client: {e:?}"),
        _ => None,
    }
}

fn check(got: Vec<String>, seen: &Seen) {
    assert_eq!(got, ["from the server"]);
    // The terminate's answer came before the driver let go.
    let (stanzas, terminated, connections) = seen.lock().unwrap().clone();
    assert_eq!(stanzas, ["from the client"]);
    assert!(terminated, "the session ended on the client's terminate");
    // A held poll and a request with data at once: two connections, kept
    // alive (not one per request).
    assert!((2..=4).contains(&connections), "{connections} connections");
}

#[test]
fn blocking_bosh_driver_logs_in_and_terminates() {
    let (url, seen) = bosh_server();
    let host = url.clone();
    let connect: bosh::Connect = Arc::new(move |_| {
        TcpStream::connect((host.host.as_str(), host.port))
            .map(|s| Box::new(s) as BoxTransport)
            .map_err(|e| e.to_string())
    });
    let mut driver = BoshDriver::new(machine(), url, connect);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    loop {
        match driver.next(Some(deadline)).unwrap() {
            Wake::Event(ClientEvent::Closed) | Wake::Over => break,
            Wake::Event(ev) => {
                if let Some(reply) = on_event(ev, &mut got) {
                    driver.send(&reply).unwrap();
                    driver.close();
                }
            }
            Wake::Deadline => panic!("timed out"),
            Wake::Interrupted => {}
        }
    }
    assert!(driver.machine().bosh().is_closed());
    driver.hang_up();
    check(got, &seen);
}

#[tokio::test]
async fn tokio_bosh_connection_logs_in_and_terminates() {
    let (url, seen) = bosh_server();
    let host = url.clone();
    let connect: bosh::AsyncConnect = Arc::new(move || {
        let host = host.clone();
        Box::pin(async move {
            tokio::net::TcpStream::connect((host.host.as_str(), host.port))
                .await
                .map(|s| Box::new(s) as xmpp_sansio_hosts::tokio::BoxStream)
                .map_err(|e| e.to_string())
        })
    });
    let (conn, handle, mut events) = bosh_connection(machine(), url, connect);
    let host = async move {
        let mut got = Vec::new();
        while let Some(ev) = events.next().await {
            if let Some(reply) = on_event(ev.unwrap(), &mut got) {
                handle.send(reply).unwrap();
                handle.close().unwrap();
            }
        }
        got
    };
    let run = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(conn.run(), host)
    });
    let (machine, got) = run.await.expect("timed out");
    assert!(machine.is_closed());
    check(got, &seen);
}
