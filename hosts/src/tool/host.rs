//! What every tool does the same way: the `main` frame (arguments,
//! `--help`, the exit codes), the `-- ...` notes, the `SEND:`/`RECV:` wire
//! log, the TCP connection, the message to self.

use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_sansio::ns;
use xmpp_sansio::xml::{StreamEvent, StreamReader};

use crate::blocking::BoxTransport;
use crate::tls::Trust;
use crate::{Direction, Upgraded};

/// The arguments of a `parse_args` result, or the exit code to return at
/// once: `--help` (`Ok(None)`) prints `help` and exits 0; a usage error is
/// handed to `usage_error` (each tool prints it its own way) and exits 2.
pub fn args_or_exit<A>(
    parsed: Result<Option<A>, String>,
    help: &str,
    usage_error: impl FnOnce(&str),
) -> Result<A, ExitCode> {
    match parsed {
        Ok(Some(a)) => Ok(a),
        Ok(None) => {
            print!("{help}");
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            usage_error(&e);
            Err(ExitCode::from(2))
        }
    }
}

/// The `main` of a login tool: the arguments (`--help`: the help,
/// exit 0; a usage error: `ERROR usage: ...`, exit 2), then `run` and its
/// [`login_outcome`].
pub fn login_main<A>(
    parsed: Result<Option<A>, String>,
    help: &str,
    run: impl FnOnce(&A) -> Result<String, String>,
) -> ExitCode {
    match args_or_exit(parsed, help, |e| println!("ERROR usage: {e}")) {
        Ok(args) => login_outcome(run(&args)),
        Err(code) => code,
    }
}

/// The last line of a login: `OK <jid>` (exit 0) or `ERROR <reason>` (exit 1).
pub fn login_outcome(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(jid) => {
            println!("OK {jid}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("ERROR {e}");
            ExitCode::FAILURE
        }
    }
}

/// A `-- ...` note line.
pub fn note(s: &str) {
    println!("-- {s}");
}

/// The wire-log line `DIR: text` of `data` (CR and LF escaped), or nothing
/// for no data.
pub fn wire_line(dir: &str, data: &[u8]) -> Option<String> {
    if data.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(data)
        .replace('\r', "\\r")
        .replace('\n', "\\n");
    Some(format!("{dir}: {text}"))
}

/// Prints the wire-log line of `data` (see [`wire_line`]) when
/// `transcript` is on.
pub fn show(transcript: bool, dir: &str, data: &[u8]) {
    if let Some(line) = wire_line(dir, data).filter(|_| transcript) {
        println!("{line}");
    }
}

/// The wire log of a tool: `SEND:`/`RECV:` lines (see [`wire_line`]),
/// given to `print`, when `transcript` is on.
pub fn wire_log(transcript: bool, print: fn(&str)) -> impl FnMut(Direction, &[u8]) + Send {
    move |dir, data| {
        let dir = match dir {
            Direction::Sent => "SEND",
            Direction::Received => "RECV",
        };
        if let Some(line) = wire_line(dir, data).filter(|_| transcript) {
            print(&line);
        }
    }
}

/// A blocking STARTTLS upgrade that tells `note` `TLS established: ...`.
pub fn noted_starttls(
    mut upgrade: impl FnMut(BoxTransport, &[u8], Option<Instant>) -> Result<Upgraded<BoxTransport>, String>
        + Send,
    note: impl Fn(&str) + Send,
) -> impl FnMut(BoxTransport, &[u8], Option<Instant>) -> Result<Upgraded<BoxTransport>, String> + Send
{
    move |sock, pending, deadline| {
        let up = upgrade(sock, pending, deadline)?;
        note(&format!("TLS established: {}", up.summary));
        Ok(up)
    }
}

/// `--tls starttls` (`true`) or `--tls none` (`false`), for the tools
/// that know no other.
pub fn starttls_or_none(v: &str) -> Result<bool, String> {
    match v {
        "starttls" => Ok(true),
        "none" => Ok(false),
        _ => Err(format!("unknown --tls {v:?} (starttls or none)")),
    }
}

/// The JID's domain (the stream's `to` and the TLS server name).
pub fn domain_of(jid: &str) -> &str {
    let bare = jid.split('/').next().unwrap_or_default();
    bare.rsplit_once('@').map_or(bare, |(_, d)| d)
}

/// `--timeout S`: whole seconds, at least one.
pub fn parse_timeout(v: &str) -> Result<Duration, String> {
    let s: u64 = v.parse().map_err(|_| format!("bad --timeout {v:?}"))?;
    Ok(Duration::from_secs(s.max(1)))
}

/// The options the login tools take alike. What is not given stays
/// `None` (or empty, or off): each tool has its own defaults.
#[derive(Default)]
pub struct CommonFlags {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub jid: String,
    pub ca_file: Option<String>,
    pub insecure: bool,
    pub resource: Option<String>,
    pub transcript: bool,
    pub timeout: Option<Duration>,
}

impl CommonFlags {
    /// Takes `flag` when it is `--host`, `--port`, `--jid`, `--ca-file`,
    /// `--insecure`, `--resource`, `--transcript` or `--timeout` (`value`
    /// gives its value); `Ok(false)` for any other.
    pub fn take(
        &mut self,
        flag: &str,
        value: impl FnOnce() -> Result<String, String>,
    ) -> Result<bool, String> {
        match flag {
            "--host" => self.host = Some(value()?),
            "--port" => {
                let v = value()?;
                self.port = Some(v.parse().map_err(|_| format!("bad --port {v:?}"))?);
            }
            "--jid" => self.jid = value()?,
            "--ca-file" => self.ca_file = Some(value()?),
            "--insecure" => self.insecure = true,
            "--resource" => self.resource = Some(value()?),
            "--transcript" => self.transcript = true,
            "--timeout" => self.timeout = Some(parse_timeout(&value()?)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Goes through the arguments: takes the common flags, hands every
    /// other to `own` with a getter of its value (`own` says `Ok(false)`
    /// for one it does not know: a usage error). `Ok(None)` for `--help`.
    pub fn parse(
        mut it: impl Iterator<Item = String>,
        mut own: impl FnMut(&str, &mut dyn FnMut() -> Result<String, String>) -> Result<bool, String>,
    ) -> Result<Option<CommonFlags>, String> {
        let mut common = CommonFlags::default();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            if flag == "-h" || flag == "--help" {
                return Ok(None);
            }
            if !common.take(&flag, &mut value)? && !own(&flag, &mut value)? {
                return Err(format!("unknown argument {flag:?} (see --help)"));
            }
        }
        Ok(Some(common))
    }

    /// `--timeout`, or 20 seconds.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(20))
    }
}

/// `--ca-file F` and `--insecure`, at most one of them.
pub fn trust_of(ca_file: Option<String>, insecure: bool) -> Result<Option<Trust>, String> {
    Ok(match (ca_file, insecure) {
        (Some(_), true) => return Err("give --ca-file or --insecure, not both".into()),
        (Some(f), false) => Some(Trust::CaFile(f)),
        (None, true) => Some(Trust::Insecure),
        (None, false) => None,
    })
}

/// A TCP connection to the first address of `host:port` that answers
/// within `timeout`, with Nagle off. The error is the last address's, as
/// `ADDR: reason` (or `no address`).
pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| ConnectError::Resolve(e.to_string()))?
        .collect();
    let mut last = "no address".to_owned();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(ConnectError::Connect(last))
}

/// Why [`connect`] failed.
pub enum ConnectError {
    /// The name did not resolve (the resolver's reason).
    Resolve(String),
    /// No address answered (`ADDR: reason` of the last, or `no address`).
    Connect(String),
}

impl ConnectError {
    /// `connect host:port: reason` for resolving, `connect ADDR: reason`
    /// when no address answered, `connect host:port: no address` for none.
    pub fn line(&self, host: &str, port: u16) -> String {
        match self {
            ConnectError::Resolve(e) => format!("connect {host}:{port}: {e}"),
            ConnectError::Connect(e) if e == "no address" => {
                format!("connect {host}:{port}: no address")
            }
            ConnectError::Connect(e) => format!("connect {e}"),
        }
    }

    /// The bare reason (`ADDR: reason`, `no address`, or the resolver's).
    pub fn reason(self) -> String {
        match self {
            ConnectError::Resolve(e) | ConnectError::Connect(e) => e,
        }
    }
}

/// `<message to=jid type='chat' id=ID><body>BODY</body></message>`.
pub fn message_to(jid: &str, id: &str, body: &str) -> Element {
    let name = |n: &str| rxml::NcName::try_from(n).expect("valid name");
    Element::builder("message", ns::JABBER_CLIENT)
        .attr(name("to"), jid)
        .attr(name("type"), "chat")
        .attr(name("id"), id)
        .append(
            Element::builder("body", ns::JABBER_CLIENT)
                .append(body)
                .build(),
        )
        .build()
}

/// The elements of one side's plaintext since a stream start (header first).
pub fn elements(bytes: &[u8]) -> Vec<Element> {
    let mut reader = StreamReader::default();
    let mut rest = bytes;
    let mut out = Vec::new();
    while let Ok(Some(ev)) = reader.read(&mut rest) {
        if let StreamEvent::Element(e) = ev {
            out.push(e);
        }
    }
    out
}

/// The `-- ` note lines for what SASL proved beyond the identity, as the
/// `Authenticated` event reports it: the channel binding (or the gs2 flag
/// when there was none) and XEP-0474. Nothing for mechanisms without a gs2
/// header.
pub fn security_notes(security: &xmpp_sansio::sasl::ExchangeSecurity) -> Vec<String> {
    let Some(cb) = security.channel_binding else {
        return Vec::new();
    };
    vec![
        format!("channel binding: {}", binding_text(cb)),
        if security.downgrade_protection {
            "XEP-0474: h= matches the offered mechanisms and binding types".into()
        } else {
            "XEP-0474: the server sent no h=".into()
        },
    ]
}

/// The channel binding of an exchange as the tools print it: the
/// type, or `none (gs2 flag n)` / `none (gs2 flag y)`.
pub fn binding_text(cb: xmpp_sansio::sasl::ChannelBindingUse) -> String {
    match cb {
        xmpp_sansio::sasl::ChannelBindingUse::Bound(t) => t.as_str().to_owned(),
        other => format!("none (gs2 flag {})", other.flag()),
    }
}

/// Raises the open-file limit for thousands of sockets: soft and hard to
/// the kernel's `nr_open` where the process may (root), else the soft
/// limit to the hard one; the limit in force after (0 if unknown).
pub fn raise_fd_limit() -> u64 {
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, nr_open, nr_open);
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

/// The multi-threaded tokio runtime of the tools that scale: one worker
/// thread per core.
pub fn runtime() -> Result<::tokio::runtime::Runtime, String> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    ::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}
