//! The client of `examples/client.rs` on an async host: tokio +
//! tokio-rustls. The state machine is the same [`Client`], untouched: only
//! the host changed. One async loop waits, with `tokio::select!`, for bytes
//! from the socket or for the client's next deadline
//! (`tokio::time::sleep_until(poll_timeout)`), and after every input drains
//! `poll_transmit` and `poll_event`, exactly as the blocking host does.
//!
//! It logs in, sends one message to its own full JID, waits for it to come
//! back, closes the stream and prints `OK <bound full jid>` (exit 0), or
//! one line `ERROR <condition or reason>` (exit 1; 2 for bad arguments).
//!
//! ```text
//! cargo run --example tokio_client -- --host 127.0.0.1 --port 5222 \
//!     --jid alice@localhost --password secret --ca-file cert.pem
//! ```
//!
//! tokio is a dev-dependency of the crate, used by this example only.

// The blocking client's TLS helpers: the rustls configuration and the
// channel-binding extraction (the socket part of the module is unused).
#[allow(dead_code)]
#[path = "common/tls.rs"]
mod tls;

#[macro_use]
#[path = "common/client_args.rs"]
mod client_args;
#[allow(dead_code)]
#[path = "common/client_host.rs"]
mod client_host;
#[allow(dead_code)]
#[path = "common/host.rs"]
mod host;

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use xmpp_sansio::client::{Client, ClientEvent, TlsMode};

use client_args::{error_line, parse_args, Args, TlsArg};
use client_host::{Handled, SelfMessage};
use host::{domain_of, note, show};

const HELP: &str = concat!(
    "\
tokio_client: log in to an XMPP server with the xmpp-sansio Client (tokio + tokio-rustls)

USAGE:
    tokio_client --jid JID [--password W | --token T] [OPTIONS]

",
    help_options_head!(),
    "                        (as examples/client.rs: tls-unique cannot be had from rustls)
    --tls MODE          starttls (default, required) | direct (XEP-0368) | none
    --ca-file F         trust the PEM certificates in F
",
    help_options_middle!(),
    "                        SEND:/RECV: lines
",
    help_options_tail!(),
    "    `-- ...` notes (TLS, mechanism, channel binding), then
    `OK <full jid>` (exit 0) or `ERROR <condition or reason>` (exit 1).
",
);

fn main() -> ExitCode {
    host::login_main(parse_args(std::env::args().skip(1)), HELP, |args| {
        // One thread is plenty for one connection.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        rt.block_on(run(args))
    })
}

/// The connection, plain or through tokio-rustls.
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    /// Reads what is available (decrypted after TLS); `Ok(0)` at the end
    /// (a TLS peer that closes without `close_notify` counts). Cancel-safe,
    /// as `select!` needs.
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf).await,
            Self::Tls(t) => match t.read(buf).await {
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => s.write_all(data).await,
            Self::Tls(t) => {
                t.write_all(data).await?;
                t.flush().await
            }
        }
    }

    /// Ends the connection now: `close_notify` when TLS is up, the write
    /// side shut down (after what was written), and the socket closed.
    /// Nothing more is read: a peer still sending gets a reset.
    async fn hang_up(self) {
        match self {
            Self::Plain(mut s) => {
                let _ = s.shutdown().await;
            }
            // close_notify, then the socket's write side.
            Self::Tls(mut t) => {
                let _ = t.shutdown().await;
            }
        }
    }
}

/// Runs the TLS handshake on `sock` and extracts what the client needs.
async fn start_tls(
    args: &Args,
    domain: &str,
    sock: TcpStream,
    alpn: Option<&[u8]>,
    require_ems: bool,
) -> Result<(Transport, tls::Established), String> {
    let config: Arc<rustls::ClientConfig> = tls::client_config(
        args.trust.as_ref().expect("checked"),
        alpn,
        require_ems,
        args.tls_version,
    )?;
    let name = ServerName::try_from(domain.to_owned())
        .map_err(|e| format!("tls bad server name {domain:?}: {e}"))?;
    let stream = TlsConnector::from(config)
        .connect(name, sock)
        .await
        .map_err(|e| format!("tls handshake: {e}"))?;
    let est = tls::established(stream.get_ref().1, args.binding, require_ems)?;
    Ok((Transport::Tls(Box::new(stream)), est))
}

/// One login: connect, negotiate, message to self, close.
async fn run(args: &Args) -> Result<String, String> {
    let domain = domain_of(&args.jid).to_owned();
    let host = args.host.clone().unwrap_or_else(|| domain.clone());
    let port = args.port();
    let started = Instant::now();
    let sock = tokio::time::timeout(args.timeout, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| format!("connect {host}:{port}: timed out"))?
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let _ = sock.set_nodelay(true);
    note(&format!("connected to {host}:{port}"));

    let require_ems = args.require_ems();
    let (transport, tls_mode) = match args.tls {
        TlsArg::None => (Transport::Plain(sock), TlsMode::None),
        TlsArg::StartTls => (Transport::Plain(sock), TlsMode::StartTlsRequired),
        TlsArg::Direct => {
            let remaining = args.timeout.saturating_sub(started.elapsed());
            let (t, est) = tokio::time::timeout(
                remaining,
                start_tls(args, &domain, sock, Some(b"xmpp-client"), require_ems),
            )
            .await
            .map_err(|_| "tls handshake timed out".to_owned())??;
            note(&format!("TLS established (direct): {}", est.summary));
            (t, TlsMode::Direct(est.info))
        }
    };

    let mut client = args.client(tls_mode);

    let mut host = Host {
        args,
        domain,
        require_ems,
        transport: Some(transport),
        queued: VecDeque::new(),
        message: SelfMessage::new(
            ECHO_ID,
            "xmpp-sansio tokio client: message to self",
            error_line,
        ),
    };
    // Over (or failed, the machine's stream error and close written):
    // hang up without reading what the server may still send.
    let result = host.drive(&mut client).await;
    if let Some(t) = host.transport.take() {
        t.hang_up().await;
    }
    result
}

const ECHO_ID: &str = "xmpp-sansio-selftest-1";

struct Host<'a> {
    args: &'a Args,
    domain: String,
    require_ems: bool,
    transport: Option<Transport>,
    /// Events taken from the client, not yet acted on.
    queued: VecDeque<ClientEvent>,
    message: SelfMessage,
}

impl Host<'_> {
    fn transport(&mut self) -> &mut Transport {
        self.transport.as_mut().expect("connected")
    }

    /// Drain `poll_transmit` and write it.
    async fn flush(&mut self, client: &mut Client) -> Result<(), String> {
        let out = client_host::transmit(client);
        if out.is_empty() {
            return Ok(());
        }
        show(self.args.transcript, "SEND", &out);
        self.transport()
            .write_all(&out)
            .await
            .map_err(|e| format!("io write: {e}"))
    }

    /// The drive loop: drain, then wait for bytes or a deadline.
    async fn drive(&mut self, client: &mut Client) -> Result<String, String> {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // Drain: bytes out, then events (each may queue more bytes).
            loop {
                self.flush(client).await?;
                let Some(ev) = self.queued.pop_front().or_else(|| client.poll_event()) else {
                    break;
                };
                if self.on_event(client, ev).await? {
                    self.flush(client).await?;
                    return self.message.outcome();
                }
            }
            if client.is_closed() {
                // Never read past the machine's close.
                return self.message.outcome();
            }
            // Wait for bytes or the next deadline: the machine's, or ours.
            let deadline = self.message.deadline(client);
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = self.transport.as_mut().expect("connected").read(&mut buf) => match read {
                    Ok(0) => return self.message.on_hangup(client),
                    Ok(n) => {
                        let xmpp = client_host::feed(client, &buf[..n], &mut self.queued)?;
                        show(self.args.transcript, "RECV", xmpp);
                    }
                    Err(e) => return Err(format!("io read: {e}")),
                },
                () = sleep => self.message.on_deadline(client),
            }
        }
    }

    /// Acts on one event; `true` when the stream is over.
    async fn on_event(&mut self, client: &mut Client, ev: ClientEvent) -> Result<bool, String> {
        match self.message.on_event(client, ev)? {
            Handled::Closed => return Ok(true),
            Handled::Other(ClientEvent::StartTls { pending }) => {
                // A TLS server never speaks first: bytes after <proceed/>
                // can only be an injection. (The blocking host hands them
                // to rustls, which refuses them; tokio-rustls takes the
                // bare socket.)
                if !pending.is_empty() {
                    return Err(format!(
                        "tls {} bytes after <proceed/> before the TLS handshake",
                        pending.len()
                    ));
                }
                let Some(Transport::Plain(sock)) = self.transport.take() else {
                    return Err("internal StartTls on a TLS transport".into());
                };
                let remaining = client.poll_timeout().map_or(self.args.timeout, |t| {
                    t.saturating_duration_since(Instant::now())
                });
                let (t, est) = tokio::time::timeout(
                    remaining,
                    start_tls(self.args, &self.domain, sock, None, self.require_ems),
                )
                .await
                .map_err(|_| "tls handshake timed out".to_owned())??;
                note(&format!("TLS established: {}", est.summary));
                self.transport = Some(t);
                client
                    .tls_established(Instant::now(), est.info)
                    .map_err(|e| format!("internal tls_established: {e}"))?;
            }
            Handled::Other(ev) => client_host::note_event(&ev),
            Handled::Done => {}
        }
        Ok(false)
    }
}
