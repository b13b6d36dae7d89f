//! A real host for the sans-IO [`Client`](xmpp_sansio::client::Client): blocking `std::net` + rustls.
//!
//! It logs in, sends one message to its own full JID, waits for it to come
//! back, closes the stream and prints `OK <bound full jid>` (exit 0), or
//! one line `ERROR <condition or reason>` (exit 1; 2 for bad arguments).
//!
//! ```text
//! cargo run -p xmpp-sansio-hosts --bin client -- --host 127.0.0.1 --port 5222 \
//!     --jid alice@localhost --password secret --ca-file cert.pem --transcript
//! cargo run -p xmpp-sansio-hosts --bin client -- --transport websocket \
//!     --url ws://127.0.0.1:5280/xmpp-websocket --jid alice@localhost --password secret
//! ```
//!
//! Run with `--help` for the options. The drive loop is the blocking
//! driver's ([`xmpp_sansio_hosts::blocking::Driver`]).

use std::process::ExitCode;
use std::time::Instant;

use xmpp_sansio_hosts::blocking::Driver;
use xmpp_sansio_hosts::bosh::BoshDriver;
use xmpp_sansio_hosts::tool::client_args::{error_line, parse_args, Args, TlsArg, TransportArg};
use xmpp_sansio_hosts::tool::host::{self, domain_of, note, noted_starttls, wire_log};
use xmpp_sansio_hosts::tool::self_message::SelfMessage;
use xmpp_sansio_hosts::{
    help_options_head, help_options_middle, help_options_tail, tls, websocket,
};

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
    "    --sm                stream management (XEP-0198) with resumption, over TCP: prints
                        `STANZA <xml>` for each stanza received, then `OK <jid> sm=<id>`
                        or `OK <jid> resumed h=<n>`; waits for its stanzas to be acked,
                        then closes
    --sm-state-file F   keep the session's state in F (after ready, each ack and each
                        stanza); when F exists at start, resume from it
    --message TEXT      with --sm: send TEXT to the client's own full JID once ready
    --hangup            with --sm: drop the TCP connection without closing the stream
                        once the message is sent; without --sm-state-file, reconnect and
                        resume at once in this process
    --linger S          with --sm: once ready, keep the connection S seconds before
                        closing (another process may resume the session meanwhile: the
                        server then ends this stream with conflict)
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
    if args.sm {
        return xmpp_sansio_hosts::tool::sm::run(args);
    }
    let domain = domain_of(&args.jid).to_owned();
    let started = Instant::now();
    let dialer = args.dialer()?;
    let (conn, tls) = dialer.blocking(started + args.timeout, true)?;
    let tls_mode = args.tls_mode(tls);
    let require_ems = args.require_ems();

    let client = args.client(tls_mode.0, tls_mode.1)?;
    let mut message = SelfMessage::new(
        ECHO_ID,
        "xmpp-sansio example client: message to self",
        error_line,
    )
    .with_fast_token_file(args.fast_token_file.clone());
    let driver = match &args.url {
        Some(u) if args.transport == TransportArg::Bosh => {
            note(&format!("BOSH session at {}", u.url));
            let mut driver = BoshDriver::new(args.bosh(client)?, u.clone(), dialer.bosh_blocking())
                .with_connection(conn)
                .with_wire_log(wire_log(args.transcript, |l| println!("{l}")));
            let result = message.run_blocking(&mut driver);
            driver.hang_up();
            return result;
        }
        Some(u) => {
            let ws = websocket::blocking_client(&u.url, conn, Some(started + args.timeout))?;
            note(&format!("WebSocket open: {} (subprotocol xmpp)", u.url));
            Driver::websocket(client, ws)
        }
        None => Driver::new(client, conn),
    };
    let mut driver = driver.with_wire_log(wire_log(args.transcript, |l| println!("{l}")));
    if args.tls == TlsArg::StartTls {
        let upgrade =
            tls::blocking_upgrade(args.tls_config(None)?, &domain, args.binding, require_ems);
        let mut starttls = noted_starttls(upgrade, note);
        driver = driver.with_tls(move |sock, pending, deadline| {
            if !pending.is_empty() {
                note(&format!(
                    "{} bytes after <proceed/> handed to TLS",
                    pending.len()
                ));
            }
            starttls(sock, pending, deadline)
        });
    }
    let result = message.run_blocking(&mut driver);
    // Over (or failed, the machine's stream error and close written):
    // hang up without reading what the server may still send.
    driver.hang_up();
    result
}

const ECHO_ID: &str = "xmpp-sansio-selftest-1";
