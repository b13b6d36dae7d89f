//! `reguser`: the user registration script of seed 001 (Programming Jabber,
//! chapter 7), on the sans-IO [`Client`] over blocking `std::net` + rustls.
//!
//! With only a host it makes a registration enquiry (the `jabber:iq:register`
//! IQ-get) and prints the fields the server asks for; with `field=value`
//! pairs it makes a registration attempt (the IQ-set):
//!
//! ```text
//! $ reguser --ca-file cert.pem yak:5222
//! [Enquiry] Fields: username, password, email, name
//! $ reguser --ca-file cert.pem yak username=joseph password=spinach 'name=Joseph Adams' email=joseph@yak
//! [Attempt] (joseph) Successful registration
//! $ reguser --ca-file cert.pem yak username=dj password=secret 'name=DJ Adams' email=dj@yak
//! [Attempt] (dj) Error: 409 (Username Not Available)
//! ```
//!
//! Exit status: 0 on success, 1 on an error, 2 for bad arguments. The
//! stream is STARTTLS-protected (unlike the seed's 2001 script, which sent
//! the password in the clear) unless `--tls none`. No authentication
//! follows: the client closes the stream once the server has answered.

#[allow(dead_code)]
#[path = "common/client_host.rs"]
mod client_host;
#[allow(dead_code)]
#[path = "common/host.rs"]
mod host;
#[allow(dead_code)]
#[path = "common/tls.rs"]
mod tls;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use xmpp_sansio::client::{
    Client, ClientConfig, ClientError, ClientEvent, Credentials, Registration, TlsMode,
};
use xmpp_sansio::steps::register::RegisterForm;
use xmpp_sansio::OsRandom;

use client_host::BlockingHost;
use host::{parse_timeout, wire_line};
use tls::{BindingChoice, Transport, Trust};

const USAGE: &str = "\
Usage:
    Enquiry: reguser [OPTIONS] host[:port]
    Attempt: reguser [OPTIONS] host[:port] field1=value1 [fieldN=valueN] ...

OPTIONS (before the host):
    --ca-file F       trust the PEM certificates in F
    --insecure        accept any server certificate (tests only)
    --domain D        the XMPP domain (stream 'to' and TLS name) when it is not the host
    --tls MODE        starttls (default, required) | none (no TLS: the password goes in the clear)
    --timeout S       seconds allowed for the whole exchange (default 20)
    --transcript      print every byte sent and received (decrypted after TLS) to stderr
    -h, --help        this text
";

/// The seed's text for a 409 in answer to a registration.
const USERNAME_NOT_AVAILABLE: &str = "Username Not Available";

#[derive(Debug)]
struct Args {
    host: String,
    port: u16,
    domain: String,
    fields: Vec<(String, String)>,
    trust: Option<Trust>,
    tls: bool,
    timeout: Duration,
    transcript: bool,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut trust = None;
    let mut domain = None;
    let mut tls = true;
    let mut timeout = Duration::from_secs(20);
    let mut transcript = false;
    let target = loop {
        let Some(arg) = it.next() else {
            return Err("no host given".into());
        };
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--ca-file" => {
                if trust.is_some() {
                    return Err("give --ca-file or --insecure, once".into());
                }
                trust = Some(Trust::CaFile(value()?));
            }
            "--insecure" => {
                if trust.is_some() {
                    return Err("give --ca-file or --insecure, once".into());
                }
                trust = Some(Trust::Insecure);
            }
            "--domain" => domain = Some(value()?),
            "--tls" => {
                let v = value()?;
                tls = match v.as_str() {
                    "starttls" => true,
                    "none" => false,
                    _ => return Err(format!("unknown --tls {v:?} (starttls or none)")),
                };
            }
            "--timeout" => timeout = parse_timeout(&value()?)?,
            "--transcript" => transcript = true,
            a if a.starts_with('-') => return Err(format!("unknown option {a:?}")),
            _ => break arg,
        }
    };
    let (host, port) = split_host_port(&target)?;
    let mut fields = Vec::new();
    for arg in it {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("{arg:?} is not field=value"))?;
        if name.is_empty() {
            return Err(format!("{arg:?} has no field name"));
        }
        fields.push((name.to_owned(), value.to_owned()));
    }
    if tls && trust.is_none() {
        return Err("TLS needs --ca-file F or --insecure (or --tls none)".into());
    }
    Ok(Some(Args {
        domain: domain.unwrap_or_else(|| host.clone()),
        host,
        port,
        fields,
        trust,
        tls,
        timeout,
        transcript,
    }))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; the port defaults to 5222.
fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let bad = || format!("bad host[:port] {s:?}");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 5222,
    };
    Ok((host.to_owned(), port))
}

/// What the server answered.
enum Outcome {
    Form(RegisterForm),
    Registered,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("reguser: {e}");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // The seed prints the label first, then `(username) ` when one is given.
    let label = if args.fields.is_empty() {
        "[Enquiry] ".to_owned()
    } else {
        let user = args
            .fields
            .iter()
            .find(|(n, _)| n == "username")
            .map(|(_, v)| format!("({v}) "))
            .unwrap_or_default();
        format!("[Attempt] {user}")
    };
    match run(&args) {
        Ok(Outcome::Form(form)) => {
            println!("{label}Fields: {}", form.fields.join(", "));
            ExitCode::SUCCESS
        }
        Ok(Outcome::Registered) => {
            println!("{label}Successful registration");
            ExitCode::SUCCESS
        }
        Err(Failure::Connect(e)) => {
            println!(
                "{label}Error: Cannot reach Jabber server at {}:{} ({e})",
                args.host, args.port
            );
            ExitCode::FAILURE
        }
        Err(Failure::Client(e)) => {
            match *e {
                // The legacy code and text, as the seed's script prints them.
                ClientError::Registration(l) => {
                    let text = if l.code == 409 && !args.fields.is_empty() {
                        USERNAME_NOT_AVAILABLE
                    } else {
                        l.legacy_text()
                    };
                    println!("{label}Error: {} ({text})", l.code);
                }
                other => println!("{label}Error: {other}"),
            }
            ExitCode::FAILURE
        }
        Err(Failure::Host(e)) => {
            println!("{label}Error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why there is no answer to print.
enum Failure {
    /// No TCP connection.
    Connect(String),
    /// The client failed (the server refused, a protocol error...).
    Client(Box<ClientError>),
    /// This host failed (TLS, I/O, or the server hung up).
    Host(String),
}

fn run(args: &Args) -> Result<Outcome, Failure> {
    let sock = host::connect(&args.host, args.port, args.timeout)
        .map_err(|e| Failure::Connect(e.reason()))?;

    let mut config = ClientConfig::new(
        args.domain.clone(),
        Credentials::Anonymous,
        Box::new(OsRandom),
    );
    config.tls = if args.tls {
        TlsMode::StartTlsRequired
    } else {
        TlsMode::None
    };
    config.negotiation_timeout = args.timeout;
    config.register = Some(Registration {
        fields: args.fields.clone(),
        then_login: false,
    });
    let mut client = Client::new(config, Instant::now());
    let mut host = Host {
        args,
        transport: Some(Transport::Plain(sock)),
        outcome: None,
        error: None,
        answered: false,
    };
    client_host::drive(&mut host, &mut client)
}

struct Host<'a> {
    args: &'a Args,
    transport: Option<Transport>,
    outcome: Option<Outcome>,
    error: Option<ClientError>,
    /// The server answered the registration IQ: from now on the client may
    /// only close the stream.
    answered: bool,
}

impl Host<'_> {
    fn show(&self, dir: &str, data: &[u8]) {
        if let Some(line) = wire_line(dir, data).filter(|_| self.args.transcript) {
            eprintln!("{line}");
        }
    }
}

/// This host's own failures.
impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Host(e)
    }
}

/// The drive loop of the `xmpp_sansio::client` docs.
impl BlockingHost for Host<'_> {
    type Output = Outcome;
    type Error = Failure;

    fn connection(&mut self) -> &mut Option<Transport> {
        &mut self.transport
    }

    fn sending(&mut self, out: &[u8]) {
        self.show("SEND", out);
    }

    fn finish(&mut self) -> Result<Outcome, Failure> {
        if let Some(e) = self.error.take() {
            return Err(Failure::Client(Box::new(e)));
        }
        self.outcome
            .take()
            .ok_or_else(|| Failure::Host("the stream closed before the server answered".into()))
    }

    fn deadline(&self, client: &Client) -> Option<Instant> {
        client.poll_timeout()
    }

    fn on_bytes(&mut self, client: &mut Client, data: &[u8]) -> Result<(), Failure> {
        client
            .feed(Instant::now(), data)
            .map_err(|e| Failure::Host(format!("internal feed: {e}")))?;
        self.show("RECV", data);
        Ok(())
    }

    fn on_deadline(&mut self, client: &mut Client) {
        let now = Instant::now();
        if client.poll_timeout().is_some_and(|t| t <= now) {
            client.handle_timeout(now);
        }
    }

    fn on_end(&mut self, client: &mut Client) -> Result<Outcome, Failure> {
        // The server hung up. After its answer that ends the exchange as
        // well as a `</stream:stream>` would.
        if self.answered || self.error.is_some() {
            return self.finish();
        }
        Err(match client.error() {
            Some(e) => Failure::Client(Box::new(e.clone())),
            None => Failure::Host("the server closed the connection".into()),
        })
    }

    /// Acts on one event; `true` when the stream is over.
    fn on_event(&mut self, client: &mut Client, ev: ClientEvent) -> Result<bool, Failure> {
        match ev {
            ClientEvent::StartTls { pending } => {
                let Some(Transport::Plain(sock)) = self.transport.take() else {
                    return Err(Failure::Host(
                        "internal: StartTls on a TLS transport".into(),
                    ));
                };
                let trust = self
                    .args
                    .trust
                    .as_ref()
                    .expect("checked with --tls starttls");
                let config = tls::client_config(trust, None, false, None).map_err(Failure::Host)?;
                let (transport, est) = tls::start(
                    sock,
                    config,
                    &self.args.domain,
                    &pending,
                    client.poll_timeout(),
                    BindingChoice::None,
                    false,
                )
                .map_err(Failure::Host)?;
                if self.args.transcript {
                    eprintln!("-- TLS established: {}", est.summary);
                }
                self.transport = Some(transport);
                client
                    .tls_established(Instant::now(), est.info)
                    .map_err(|e| Failure::Host(format!("internal tls_established: {e}")))?;
            }
            ClientEvent::RegistrationForm(form) => {
                self.answered = true;
                self.outcome = Some(Outcome::Form(form));
            }
            ClientEvent::Registered => {
                self.answered = true;
                self.outcome = Some(Outcome::Registered);
            }
            ClientEvent::Error(e) if self.error.is_none() => self.error = Some(e),
            ClientEvent::Closed => return Ok(true),
            // Nothing else is expected: no authentication follows.
            _ => {}
        }
        Ok(false)
    }
}
