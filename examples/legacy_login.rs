//! `legacy_login`: log in with non-SASL authentication (`jabber:iq:auth`,
//! XEP-0078; seed 001) on the sans-IO [`Client`] over blocking `std::net` +
//! rustls.
//!
//! The client is told that no SASL mechanism is acceptable
//! (`policy.only = Some(vec![])`) and that legacy authentication is enabled,
//! so against a server that offers `<auth xmlns='http://jabber.org/features/iq-auth'/>`
//! it falls back to `jabber:iq:auth` and picks the strongest method the
//! server allows (zero-knowledge > digest > plaintext). Once ready it sends
//! a message to its own full JID and waits for it to come back (so the
//! session is real), then closes.
//!
//! ```text
//! cargo run --example legacy_login -- --host 127.0.0.1 --port 5222 \
//!     --jid alice@localhost --password secret --ca-file cert.pem
//! -- offered: username password resource
//! -- legacy method: plaintext
//! OK alice@localhost/xmpp-sansio
//! ```
//!
//! The `-- offered:` and `-- legacy method:` notes are read back from the
//! bytes this host received and sent (the answer to the IQ-get, and the
//! IQ-set), not from the client's state. Output ends with `OK <full jid>`
//! (exit 0) or `ERROR <reason>` (exit 1; 2 for bad arguments).

#[allow(dead_code)]
#[path = "common/client_host.rs"]
mod client_host;
#[allow(dead_code)]
#[path = "common/host.rs"]
mod host;
#[allow(dead_code)]
#[path = "common/tls.rs"]
mod tls;

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use xmpp_sansio::client::{Client, ClientConfig, ClientError, ClientEvent, Credentials, TlsMode};
use xmpp_sansio::ns;
use xmpp_sansio::OsRandom;

use client_host::{BlockingHost, Handled, SelfMessage};
use host::{domain_of, elements, note, show, trust_of, CommonFlags};
use tls::{BindingChoice, Transport, Trust};

const HELP: &str = "\
legacy_login: log in with jabber:iq:auth (XEP-0078) using the xmpp-sansio Client

USAGE:
    legacy_login --jid user@domain --password W [OPTIONS]

OPTIONS:
    --host H            server address (default: the JID's domain)
    --port P            port (default 5222)
    --tls MODE          starttls (default, required) | none
    --ca-file F         trust the PEM certificates in F
    --insecure          accept any server certificate (tests only)
    --allow-plaintext   allow the plaintext method on a stream without TLS
    --resource R        the resource (default: xmpp-sansio)
    --transcript        print every byte sent and received (decrypted after TLS)
    --timeout S         seconds allowed for the whole login (default 20)
    -h, --help          this text

OUTPUT:
    `-- ...` notes (offered fields, the method used), then
    `OK <full jid>` (exit 0) or `ERROR <reason>` (exit 1).
";

/// The namespace of non-SASL authentication.
const IQ_AUTH: &str = "jabber:iq:auth";
const ECHO_ID: &str = "xmpp-sansio-legacy-1";

#[derive(Debug)]
struct Args {
    host: Option<String>,
    port: u16,
    jid: String,
    password: String,
    tls: bool,
    trust: Option<Trust>,
    allow_plaintext: bool,
    resource: Option<String>,
    transcript: bool,
    timeout: Duration,
}

fn parse_args(it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut tls = true;
    let mut allow_plaintext = false;
    let mut password = None;
    let parsed = CommonFlags::parse(it, |flag, value| {
        match flag {
            "--password" => password = Some(value()?),
            "--tls" => {
                let v = value()?;
                tls = match v.as_str() {
                    "starttls" => true,
                    "none" => false,
                    _ => return Err(format!("unknown --tls {v:?} (starttls or none)")),
                };
            }
            "--allow-plaintext" => allow_plaintext = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let Some(mut common) = parsed else {
        return Ok(None);
    };
    let mut a = Args {
        host: common.host.take(),
        port: common.port.unwrap_or(5222),
        jid: std::mem::take(&mut common.jid),
        password: String::new(),
        tls,
        trust: None,
        allow_plaintext,
        resource: common.resource.take(),
        transcript: common.transcript,
        timeout: common.timeout(),
    };
    if !a.jid.contains('@') {
        return Err("--jid user@domain is required (see --help)".into());
    }
    a.password = password.ok_or("--password is required (see --help)")?;
    a.trust = trust_of(common.ca_file, common.insecure)?;
    if a.tls && a.trust.is_none() {
        return Err("TLS needs --ca-file F or --insecure".into());
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    host::login_main(parse_args(std::env::args().skip(1)), HELP, run)
}

fn run(args: &Args) -> Result<String, String> {
    let domain = domain_of(&args.jid).to_owned();
    let host = args.host.clone().unwrap_or_else(|| domain.clone());
    let sock =
        host::connect(&host, args.port, args.timeout).map_err(|e| e.line(&host, args.port))?;

    let mut config = ClientConfig::new(
        args.jid.clone(),
        Credentials::password(args.password.as_str()),
        Box::new(OsRandom),
    );
    config.tls = if args.tls {
        TlsMode::StartTlsRequired
    } else {
        TlsMode::None
    };
    config.resource = args.resource.clone();
    config.negotiation_timeout = args.timeout;
    // No SASL mechanism is acceptable: the client falls back to jabber:iq:auth.
    config.policy.only = Some(vec![]);
    config.legacy_auth.enabled = true;
    config.legacy_auth.allow_plaintext_without_tls = args.allow_plaintext;
    let mut client = Client::new(config, Instant::now());
    let mut h = Host {
        args,
        domain,
        transport: Some(Transport::Plain(sock)),
        sent: Vec::new(),
        recv: Vec::new(),
        queued: VecDeque::new(),
        message: SelfMessage::new(
            ECHO_ID,
            "xmpp-sansio legacy_login: message to self",
            error_line,
        ),
    };
    client_host::drive(&mut h, &mut client)
}

struct Host<'a> {
    args: &'a Args,
    domain: String,
    transport: Option<Transport>,
    /// The plaintext of the current stream (since the last TLS start), each
    /// way: the legacy exchange is read back from it.
    sent: Vec<u8>,
    recv: Vec<u8>,
    /// The events of the last input, in order (see `client_host::feed`).
    queued: VecDeque<ClientEvent>,
    message: SelfMessage,
}

impl BlockingHost for Host<'_> {
    type Output = String;
    type Error = String;

    fn connection(&mut self) -> &mut Option<Transport> {
        &mut self.transport
    }

    fn sending(&mut self, out: &[u8]) {
        show(self.args.transcript, "SEND", out);
        self.sent.extend_from_slice(out);
    }

    fn finish(&mut self) -> Result<String, String> {
        // Whatever happened, tell what the wire shows of the legacy exchange.
        self.report_legacy();
        self.message.outcome()
    }

    fn deadline(&self, client: &Client) -> Option<Instant> {
        self.message.deadline(client)
    }

    fn next_event(&mut self, client: &mut Client) -> Option<ClientEvent> {
        self.queued.pop_front().or_else(|| client.poll_event())
    }

    fn on_bytes(&mut self, client: &mut Client, data: &[u8]) -> Result<(), String> {
        let xmpp = client_host::feed(client, data, &mut self.queued)?;
        show(self.args.transcript, "RECV", xmpp);
        self.recv.extend_from_slice(xmpp);
        Ok(())
    }

    fn on_deadline(&mut self, client: &mut Client) {
        self.message.on_deadline(client);
    }

    fn on_end(&mut self, client: &mut Client) -> Result<String, String> {
        self.report_legacy();
        self.message.on_hangup(client)
    }

    fn on_event(&mut self, client: &mut Client, ev: ClientEvent) -> Result<bool, String> {
        match self.message.on_event(client, ev)? {
            Handled::Closed => return Ok(true),
            Handled::Other(ClientEvent::StartTls { pending }) => {
                let trust = self.args.trust.as_ref().expect("checked");
                let config = tls::client_config(trust, None, false, None)?;
                client_host::start_tls(
                    &mut self.transport,
                    client,
                    config,
                    &self.domain,
                    &pending,
                    BindingChoice::None,
                    false,
                )?;
                self.sent.clear();
                self.recv.clear();
            }
            Handled::Other(ev) => client_host::note_event(&ev),
            Handled::Done => {}
        }
        Ok(false)
    }
}

impl Host<'_> {
    /// `-- offered: ...` from the answer to the IQ-get, `-- legacy method:
    /// ...` from the IQ-set the client sent.
    fn report_legacy(&self) {
        let recv = elements(&self.recv);
        let sent = elements(&self.sent);
        let offered = recv.iter().find_map(|e| {
            (e.is("iq", ns::JABBER_CLIENT) && e.attr("type") == Some("result"))
                .then(|| e.get_child("query", IQ_AUTH))
                .flatten()
        });
        if let Some(q) = offered {
            let names: Vec<&str> = q.children().map(|c| c.name()).collect();
            note(&format!("offered: {}", names.join(" ")));
        }
        let set = sent.iter().find_map(|e| {
            (e.is("iq", ns::JABBER_CLIENT) && e.attr("type") == Some("set"))
                .then(|| e.get_child("query", IQ_AUTH))
                .flatten()
        });
        if let Some(q) = set {
            let method = if q.has_child("hash", IQ_AUTH) {
                "zero-knowledge"
            } else if q.has_child("digest", IQ_AUTH) {
                "digest"
            } else if q.has_child("password", IQ_AUTH) {
                "plaintext"
            } else {
                "none"
            };
            note(&format!("legacy method: {method}"));
        }
    }
}

/// The one-line reason of a failure.
fn error_line(e: &ClientError) -> String {
    match e {
        ClientError::LegacyAuth(l) => format!("legacy-auth {} ({})", l.code, l.legacy_text()),
        ClientError::NoMechanism(o) => format!("no-acceptable-method (offered: {})", o.join(" ")),
        ClientError::StreamError(e) => format!("stream {e}"),
        other => other.to_string(),
    }
}
