//! A real host for the sans-IO [`Client`]: blocking `std::net` + rustls.
//!
//! It logs in, sends one message to its own full JID, waits for it to come
//! back, closes the stream and prints `OK <bound full jid>` (exit 0), or
//! one line `ERROR <condition or reason>` (exit 1; 2 for bad arguments).
//!
//! ```text
//! cargo run --example client -- --host 127.0.0.1 --port 5222 \
//!     --jid alice@localhost --password secret --ca-file cert.pem --transcript
//! ```
//!
//! Run with `--help` for the options. The drive loop is the one of the
//! `xmpp_sansio::client` docs: after every input, drain `poll_transmit` and
//! `poll_event`, then wait for bytes or `poll_timeout`.

#[macro_use]
#[path = "common/client_args.rs"]
mod client_args;
#[allow(dead_code)]
#[path = "common/client_host.rs"]
mod client_host;
#[allow(dead_code)]
#[path = "common/host.rs"]
mod host;
#[path = "common/tls.rs"]
mod tls;

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::Instant;

use xmpp_sansio::client::{Client, ClientEvent, TlsMode};

use client_args::{error_line, parse_args, Args, TlsArg};
use client_host::{BlockingHost, Handled, SelfMessage};
use host::{domain_of, note, show};
use tls::Transport;

const HELP: &str = concat!(
    "\
client: log in to an XMPP server with the xmpp-sansio Client (blocking std::net + rustls)

USAGE:
    client --jid JID [--password W | --token T] [OPTIONS]

",
    help_options_head!(),
    "                        auto hands the client every type this host can extract and the
                        client picks one from the server's XEP-0440 list; a named type
                        hands over only that one; none hands over nothing (no -PLUS).
                        tls-unique cannot be supplied: rustls does not expose the TLS
                        Finished message. tls-exporter on TLS 1.2 needs the extended
                        master secret, which this host then requires of the server.
    --tls MODE          starttls (default, required) | direct (XEP-0368) | none
    --ca-file F         trust the PEM certificates in F (a certificate of F that the
                        server presents as its own is trusted as is, after the name check)
",
    help_options_middle!(),
    "                        SEND:/RECV: lines; SASL payloads are shown as sent (PLAIN's is
                        the password in base64)
",
    help_options_tail!(),
    "    `-- ...` notes (TLS, mechanism, channel binding, XEP-0474), then
    `OK <full jid>` (exit 0) or `ERROR <condition or reason>` (exit 1).
",
);

fn main() -> ExitCode {
    host::login_main(parse_args(std::env::args().skip(1)), HELP, run)
}

/// One login: connect, negotiate, message to self, close.
fn run(args: &Args) -> Result<String, String> {
    let domain = domain_of(&args.jid).to_owned();
    let host = args.host.clone().unwrap_or_else(|| domain.clone());
    let port = args.port();
    let sock = host::connect(&host, port, args.timeout).map_err(|e| e.line(&host, port))?;
    note(&format!("connected to {host}:{port}"));
    let started = Instant::now();

    let require_ems = args.require_ems();
    let mut host_state = Host::new(args, domain.clone(), require_ems);

    let (transport, tls_mode) = match args.tls {
        TlsArg::None => (Transport::Plain(sock), TlsMode::None),
        TlsArg::StartTls => (Transport::Plain(sock), TlsMode::StartTlsRequired),
        TlsArg::Direct => {
            let config = tls::client_config(
                args.trust.as_ref().expect("checked"),
                Some(b"xmpp-client"),
                require_ems,
                args.tls_version,
            )?;
            let deadline = Some(started + args.timeout);
            let (transport, est) = tls::start(
                sock,
                config,
                &domain,
                &[],
                deadline,
                args.binding,
                require_ems,
            )?;
            note(&format!("TLS established (direct): {}", est.summary));
            (transport, TlsMode::Direct(est.info))
        }
    };
    host_state.transport = Some(transport);

    let mut client = args.client(tls_mode);
    client_host::drive(&mut host_state, &mut client)
}

const ECHO_ID: &str = "xmpp-sansio-selftest-1";

/// The host side of one connection.
struct Host<'a> {
    args: &'a Args,
    domain: String,
    require_ems: bool,
    transport: Option<Transport>,
    /// Events already taken from the client, not yet acted on.
    queued: VecDeque<ClientEvent>,
    message: SelfMessage,
}

impl<'a> Host<'a> {
    fn new(args: &'a Args, domain: String, require_ems: bool) -> Self {
        Host {
            args,
            domain,
            require_ems,
            transport: None,
            queued: VecDeque::new(),
            message: SelfMessage::new(
                ECHO_ID,
                "xmpp-sansio example client: message to self",
                error_line,
            ),
        }
    }
}

impl BlockingHost for Host<'_> {
    type Output = String;
    type Error = String;

    fn connection(&mut self) -> &mut Option<Transport> {
        &mut self.transport
    }

    fn sending(&mut self, out: &[u8]) {
        show(self.args.transcript, "SEND", out);
    }

    fn next_event(&mut self, client: &mut Client) -> Option<ClientEvent> {
        self.queued.pop_front().or_else(|| client.poll_event())
    }

    /// The bound JID once the message came back and the stream closed.
    fn finish(&mut self) -> Result<String, String> {
        self.message.outcome()
    }

    fn deadline(&self, client: &Client) -> Option<Instant> {
        self.message.deadline(client)
    }

    fn on_bytes(&mut self, client: &mut Client, data: &[u8]) -> Result<(), String> {
        let xmpp = client_host::feed(client, data, &mut self.queued)?;
        show(self.args.transcript, "RECV", xmpp);
        Ok(())
    }

    fn on_deadline(&mut self, client: &mut Client) {
        self.message.on_deadline(client);
    }

    fn on_end(&mut self, client: &mut Client) -> Result<String, String> {
        self.message.on_hangup(client)
    }

    fn on_event(&mut self, client: &mut Client, ev: ClientEvent) -> Result<bool, String> {
        match self.message.on_event(client, ev)? {
            Handled::Closed => return Ok(true),
            Handled::Other(ClientEvent::StartTls { pending }) => {
                if !pending.is_empty() {
                    note(&format!(
                        "{} bytes after <proceed/> handed to TLS",
                        pending.len()
                    ));
                }
                let config = tls::client_config(
                    self.args.trust.as_ref().expect("checked"),
                    None,
                    self.require_ems,
                    self.args.tls_version,
                )?;
                client_host::start_tls(
                    &mut self.transport,
                    client,
                    config,
                    &self.domain,
                    &pending,
                    self.args.binding,
                    self.require_ems,
                )?;
            }
            Handled::Other(ev) => client_host::note_event(&ev),
            Handled::Done => {}
        }
        Ok(false)
    }
}
