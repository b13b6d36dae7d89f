//! The `client` tool on an async host: tokio + tokio-rustls, through the
//! tokio driver ([`xmpp_sansio_hosts::tokio`]). The state machine is the
//! same `Client`, and so are the options, the message to self and the
//! output lines: only the driver changed.
//!
//! It logs in, sends one message to its own full JID, waits for it to come
//! back, closes the stream and prints `OK <bound full jid>` (exit 0), or
//! one line `ERROR <condition or reason>` (exit 1; 2 for bad arguments).
//!
//! ```text
//! cargo run -p xmpp-sansio-hosts --bin tokio_client -- --host 127.0.0.1 --port 5222 \
//!     --jid alice@localhost --password secret --ca-file cert.pem
//! ```

use std::process::ExitCode;
use std::time::Instant;

use xmpp_sansio_hosts::bosh::bosh_connection;
use xmpp_sansio_hosts::tokio::{connection, websocket_connection};
use xmpp_sansio_hosts::tool::client_args::{error_line, parse_args, Args, TlsArg, TransportArg};
use xmpp_sansio_hosts::tool::host::{self, domain_of, note, wire_log};
use xmpp_sansio_hosts::tool::self_message::SelfMessage;
use xmpp_sansio_hosts::{
    help_options_head, help_options_middle, help_options_tail, tls, websocket,
};

const HELP: &str = concat!(
    "\
tokio_client: log in to an XMPP server with the xmpp-sansio Client (tokio + tokio-rustls)

USAGE:
    tokio_client --jid JID [--password W | --token T] [OPTIONS]

",
    help_options_head!(),
    "                        (as the client tool: tls-unique cannot be had from rustls)
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
        if args.sm {
            return Err("--sm is the blocking client tool's (bin client)".into());
        }
        // One thread is plenty for one connection.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        rt.block_on(run(args))
    })
}

/// One login: connect, negotiate, message to self, close.
async fn run(args: &Args) -> Result<String, String> {
    let domain = domain_of(&args.jid).to_owned();
    let started = Instant::now();
    let dialer = args.dialer()?;
    let (io, tls) = dialer.tokio(started + args.timeout, true).await?;
    let tls_mode = args.tls_mode(tls);
    let require_ems = args.require_ems();

    let client = args.client(tls_mode.0, tls_mode.1)?;
    let mut message = SelfMessage::new(
        ECHO_ID,
        "xmpp-sansio tokio client: message to self",
        error_line,
    )
    .with_fast_token_file(args.fast_token_file.clone());
    let (conn, handle, mut events) = match &args.url {
        Some(u) if args.transport == TransportArg::Bosh => {
            note(&format!("BOSH session at {}", u.url));
            let (conn, handle, mut events) =
                bosh_connection(args.bosh(client)?, u.clone(), dialer.bosh_tokio());
            let conn = conn
                .with_connection(io)
                .with_wire_log(wire_log(args.transcript, |l| println!("{l}")));
            let (_client, result) =
                tokio::join!(conn.run(), message.run_tokio(handle, &mut events));
            return result;
        }
        Some(u) => {
            let remaining = args.timeout.saturating_sub(started.elapsed());
            let ws = tokio::time::timeout(remaining, websocket::tokio_client(&u.url, io))
                .await
                .map_err(|_| "websocket handshake: timed out".to_owned())??;
            note(&format!("WebSocket open: {} (subprotocol xmpp)", u.url));
            websocket_connection(client, ws)
        }
        None => connection(client, io),
    };
    let mut conn = conn.with_wire_log(wire_log(args.transcript, |l| println!("{l}")));
    if args.tls == TlsArg::StartTls {
        let mut starttls =
            tls::tokio_upgrade(args.tls_config(None)?, &domain, args.binding, require_ems);
        conn = conn.with_tls(move |io, pending| {
            let handshake = starttls(io, pending);
            Box::pin(async move {
                let up = handshake.await?;
                note(&format!("TLS established: {}", up.summary));
                Ok(up)
            })
        });
    }
    let (_client, result) = tokio::join!(conn.run(), message.run_tokio(handle, &mut events));
    result
}

const ECHO_ID: &str = "xmpp-sansio-selftest-1";
