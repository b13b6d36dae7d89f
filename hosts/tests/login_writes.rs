//! What a login costs the tokio server in writes (each one a system call
//! on a socket): one per step of the exchange. A `Client` on the tokio
//! driver logs in to a `Server` on the tokio driver (STARTTLS through
//! `TlsSetup::tokio_accept`, TLS 1.3, SCRAM-SHA-256-PLUS, bind) over an
//! in-memory pipe whose server end counts its writes, then closes.
//!
//! Nine, one per answer to the client: the stream header and features,
//! `<proceed/>`, the TLS server flight, the session tickets with the
//! header and features after TLS (the tickets wait for that write), the
//! SCRAM challenge, `<success/>`, the header and features after SASL, the
//! bind result, and `</stream:stream>` with the `close_notify` after it
//! (the driver does not flush a closed machine's last bytes apart from
//! its shutdown). Eleven before the two were merged.

mod common;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use xmpp_sansio::client::{Client, ClientConfig, ClientEvent, Credentials};
use xmpp_sansio::sasl::scram::derive_server_credentials;
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest};
use xmpp_sansio::server::{BindAnswer, Server, ServerConfig, ServerEvent};
use xmpp_sansio_hosts::server_tls::TlsSetup;
use xmpp_sansio_hosts::tls::{self, BindingChoice, Trust};
use xmpp_sansio_hosts::tokio as driver;

const DOMAIN: &str = "sansio.test";

/// A stream that counts the writes that took bytes.
struct Counting<T> {
    inner: T,
    writes: Arc<AtomicUsize>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counting<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counting<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_login_is_one_server_write_per_step() {
    let (cert, key) = common::pki(DOMAIN);
    let setup = Arc::new(TlsSetup::new(vec![cert.clone()], key).expect("tls setup"));
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let writes = Arc::new(AtomicUsize::new(0));
    let server_io = Counting {
        inner: server_io,
        writes: writes.clone(),
    };

    let server = Server::new(
        ServerConfig::builder(DOMAIN).build().expect("valid"),
        Instant::now(),
    );
    let summary = Arc::new(Mutex::new(String::new()));
    let (server_conn, server_handle, mut server_events) = driver::connection(server, server_io);
    let seen = summary.clone();
    let server_conn = server_conn.with_tls(move |io, pending| {
        let (setup, seen) = (setup.clone(), seen.clone());
        Box::pin(async move {
            let up = setup.tokio_accept(false, io, &pending).await?;
            *seen.lock().unwrap() = up.summary.clone();
            Ok(up)
        })
    });
    let server_host = async move {
        while let Some(ev) = server_events.next().await {
            match ev.expect("server event") {
                ServerEvent::Credentials(CredentialRequest::Scram { hash, .. }) => {
                    let creds = derive_server_credentials(hash, "s3cret", b"salt", 4096)
                        .expect("credentials");
                    server_handle
                        .call(move |s: &mut Server| {
                            s.answer_credentials(
                                Instant::now(),
                                CredentialAnswer::Scram(Some(creds)),
                            )
                        })
                        .expect("call");
                }
                ServerEvent::Bind { resource, .. } => server_handle
                    .call(move |s: &mut Server| {
                        s.answer_bind(Instant::now(), BindAnswer::Accept(resource))
                    })
                    .expect("call"),
                ServerEvent::Closed => break,
                ServerEvent::Error(e) => panic!("server: {e:?}"),
                _ => {}
            }
        }
    };

    let mut config = ClientConfig::builder("juliet@sansio.test", Credentials::password("s3cret"));
    config.resource = Some("balcony".into());
    let client = Client::new(config.build().expect("valid"), Instant::now());
    let (client_conn, client_handle, mut client_events) = driver::connection(client, client_io);
    let client_conn = client_conn.with_tls(tls::tokio_upgrade(
        tls::client_config(&Trust::Certificates(vec![cert]), None, false, None)
            .expect("client config"),
        DOMAIN,
        BindingChoice::Auto,
        false,
    ));
    let client_host = async move {
        let mut ready = false;
        while let Some(ev) = client_events.next().await {
            match ev.expect("client event: a clean close, with close_notify") {
                ClientEvent::Ready { .. } => {
                    ready = true;
                    client_handle.close().expect("close");
                }
                ClientEvent::Closed => break,
                ClientEvent::Error(e) => panic!("client: {e:?}"),
                _ => {}
            }
        }
        ready
    };

    let all = async {
        tokio::join!(
            client_conn.run(),
            server_conn.run(),
            client_host,
            server_host
        )
    };
    let (client, server, ready, ()) = tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .expect("not over in time");
    assert!(ready && client.is_closed() && server.is_closed());
    let summary = summary.lock().unwrap().clone();
    // A rustls client prefers AES-256-GCM: the server takes AES-128-GCM.
    assert!(
        summary.starts_with("TLSv1.3 TLS13_AES_128_GCM_SHA256"),
        "{summary}"
    );
    assert_eq!(writes.load(Ordering::Relaxed), 9);
}
