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

use std::process::ExitCode;
use std::time::{Duration, Instant};
use xmpp_sansio::client::PeerRefusal;

use xmpp_sansio::client::{
    Client, ClientConfig, ClientError, ClientEvent, Credentials, Registration, TlsMode,
};
use xmpp_sansio::steps::register::RegisterForm;
use xmpp_sansio_hosts::blocking::{Driver, Wake};
use xmpp_sansio_hosts::tls::{self, BindingChoice, Trust};
use xmpp_sansio_hosts::tool::host::{
    self, noted_starttls, parse_timeout, starttls_or_none, wire_log,
};
use xmpp_sansio_hosts::DriverError;

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
            "--tls" => tls = starttls_or_none(&value()?)?,
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
                ClientError::Refused(PeerRefusal::Registration(l)) => {
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

    let mut config = ClientConfig::builder(args.domain.clone(), Credentials::Anonymous);
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
    let config = config
        .build()
        .map_err(|e| Failure::Host(format!("configuration: {e}")))?;
    let client = Client::new(config, Instant::now());
    let transcript = args.transcript;
    let mut driver =
        Driver::new(client, sock).with_wire_log(wire_log(transcript, |l| eprintln!("{l}")));
    if let Some(trust) = &args.trust {
        let config = tls::client_config(trust, None, false, None).map_err(Failure::Host)?;
        let upgrade = tls::blocking_upgrade(config, &args.domain, BindingChoice::None, false);
        driver = driver.with_tls(noted_starttls(upgrade, move |line| {
            if transcript {
                eprintln!("-- {line}");
            }
        }));
    }
    let result = Exchange::default().run(&mut driver);
    driver.hang_up();
    result
}

/// What came of the exchange so far.
#[derive(Default)]
struct Exchange {
    outcome: Option<Outcome>,
    error: Option<ClientError>,
    /// The server answered the registration IQ: from now on the client may
    /// only close the stream.
    answered: bool,
}

/// This host's own failures.
impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Host(e)
    }
}

impl Exchange {
    /// The drive loop, until the stream is over.
    fn run(mut self, driver: &mut Driver<Client>) -> Result<Outcome, Failure> {
        loop {
            match driver.next(None) {
                Ok(Wake::Event(ev)) => {
                    if self.on_event(ev) {
                        return self.finish();
                    }
                }
                Ok(Wake::Deadline | Wake::Interrupted) => {}
                Ok(Wake::Over) => return self.finish(),
                // The server hung up. After its answer that ends the
                // exchange as well as a `</stream:stream>` would.
                Err(DriverError::PeerClosed) if self.answered || self.error.is_some() => {
                    return self.finish()
                }
                Err(DriverError::PeerClosed) => {
                    return Err(match driver.machine().error() {
                        Some(e) => Failure::Client(Box::new(e.clone())),
                        None => Failure::Host("the server closed the connection".into()),
                    })
                }
                Err(e) => return Err(Failure::Host(e.to_string())),
            }
        }
    }

    fn finish(&mut self) -> Result<Outcome, Failure> {
        if let Some(e) = self.error.take() {
            return Err(Failure::Client(Box::new(e)));
        }
        self.outcome
            .take()
            .ok_or_else(|| Failure::Host("the stream closed before the server answered".into()))
    }

    /// Acts on one event; `true` when the stream is over.
    fn on_event(&mut self, ev: ClientEvent) -> bool {
        match ev {
            ClientEvent::RegistrationForm(form) => {
                self.answered = true;
                self.outcome = Some(Outcome::Form(form));
            }
            ClientEvent::Registered => {
                self.answered = true;
                self.outcome = Some(Outcome::Registered);
            }
            ClientEvent::Error(e) if self.error.is_none() => self.error = Some(e),
            ClientEvent::Closed => return true,
            // Nothing else is expected: no authentication follows.
            _ => {}
        }
        false
    }
}
