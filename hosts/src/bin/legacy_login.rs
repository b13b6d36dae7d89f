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

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xmpp_sansio::client::{PeerRefusal, PolicyError};

use xmpp_sansio::client::{Client, ClientConfig, ClientError, Credentials, TlsMode};
use xmpp_sansio::ns;
use xmpp_sansio_hosts::blocking::Driver;
use xmpp_sansio_hosts::tls::{self, BindingChoice, Trust};
use xmpp_sansio_hosts::tool::host::{
    self, domain_of, elements, note, noted_starttls, starttls_or_none, trust_of, wire_log,
    CommonFlags,
};
use xmpp_sansio_hosts::tool::self_message::SelfMessage;
use xmpp_sansio_hosts::Direction;

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
            "--tls" => tls = starttls_or_none(&value()?)?,
            "--allow-plaintext" => allow_plaintext = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let Some(common) = parsed else {
        return Ok(None);
    };
    if !common.jid.contains('@') {
        return Err("--jid user@domain is required (see --help)".into());
    }
    let password = password.ok_or("--password is required (see --help)")?;
    let timeout = common.timeout();
    let trust = trust_of(common.ca_file, common.insecure)?;
    if tls && trust.is_none() {
        return Err("TLS needs --ca-file F or --insecure".into());
    }
    Ok(Some(Args {
        host: common.host,
        port: common.port.unwrap_or(5222),
        jid: common.jid,
        password,
        tls,
        trust,
        allow_plaintext,
        resource: common.resource,
        transcript: common.transcript,
        timeout,
    }))
}

fn main() -> ExitCode {
    host::login_main(parse_args(std::env::args().skip(1)), HELP, run)
}

fn run(args: &Args) -> Result<String, String> {
    let domain = domain_of(&args.jid).to_owned();
    let host = args.host.clone().unwrap_or_else(|| domain.clone());
    let sock =
        host::connect(&host, args.port, args.timeout).map_err(|e| e.line(&host, args.port))?;

    let mut config = ClientConfig::builder(
        args.jid.clone(),
        Credentials::password(args.password.as_str()),
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
    let config = config.build().map_err(|e| format!("configuration: {e}"))?;
    let client = Client::new(config, Instant::now());

    // The plaintext of the current stream (since the last TLS start), each
    // way: the legacy exchange is read back from it.
    let wire = Arc::new(Mutex::new(Wire::default()));
    let (mut show, log) = (wire_log(args.transcript, |l| println!("{l}")), wire.clone());
    let mut driver = Driver::new(client, sock).with_wire_log(move |dir, data| {
        show(dir, data);
        let mut w = log.lock().expect("wire lock");
        match dir {
            Direction::Sent => w.sent.extend_from_slice(data),
            Direction::Received => w.recv.extend_from_slice(data),
        }
    });
    if let Some(trust) = &args.trust {
        let config = tls::client_config(trust, None, false, None)?;
        let upgrade = tls::blocking_upgrade(config, &domain, BindingChoice::None, false);
        let log = wire.clone();
        driver = driver.with_tls(noted_starttls(upgrade, move |line| {
            note(line);
            // A new stream: the legacy exchange is read from it alone.
            *log.lock().expect("wire lock") = Wire::default();
        }));
    }
    let mut message = SelfMessage::new(
        ECHO_ID,
        "xmpp-sansio legacy_login: message to self",
        error_line,
    );
    let result = message.run_blocking(&mut driver);
    // Whatever happened, tell what the wire shows of the legacy exchange.
    wire.lock().expect("wire lock").report();
    driver.hang_up();
    result
}

/// The plaintext of the current stream, each way.
#[derive(Default)]
struct Wire {
    sent: Vec<u8>,
    recv: Vec<u8>,
}

impl Wire {
    /// `-- offered: ...` from the answer to the IQ-get, `-- legacy method:
    /// ...` from the IQ-set the client sent.
    fn report(&self) {
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
        ClientError::Refused(PeerRefusal::LegacyAuth(l)) => {
            format!("legacy-auth {} ({})", l.code, l.legacy_text())
        }
        ClientError::Policy(PolicyError::NoMechanism(o)) => {
            format!("no-acceptable-method (offered: {})", o.join(" "))
        }
        ClientError::PeerStreamError(e) => format!("stream {e}"),
        other => other.to_string(),
    }
}
