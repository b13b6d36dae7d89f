//! The command line of `xmpp-load`.

use std::fmt;
use std::time::Duration;

use xmpp_sansio::sasl::Secret;

/// `--help`.
pub const HELP: &str = "\
xmpp-load: thousands of concurrent XMPP client sessions from one process, on the
xmpp-sansio Client (tokio, one worker thread per core, rustls)

USAGE:
    xmpp-load --target HOST:PORT --domain D --users N --password P --concurrency C
              --duration S [--tls starttls|direct] [--ca-file F]
              [--scenario login|login-hold|messages] [--json FILE] [--plot FILE.svg]

OPTIONS:
    --target HOST:PORT   the server to load (loopback or a test host you run)
    --domain D           the XMPP domain (stream 'to', TLS server name)
    --users N            accounts user0@D .. user<N-1>@D (default 1); session i logs
                         in as user<i mod N> with resource load<i> (login:
                         load<i>-<serial>, new at each login)
    --password P         the password of every account
    --concurrency C      sessions at once (default 10)
    --duration S         seconds the run lasts (default 10; fractions allowed)
    --scenario NAME      login (default): each of C sessions connects, negotiates,
                           binds, closes, and starts over until the duration is up;
                         login-hold: C sessions log in and are held idle until the
                           duration is up (the server's memory per session);
                         messages: C sessions log in, and each sends --message-rate
                           messages a second to the next session (latency measured)
    --tls MODE           starttls (default, required) | direct (XEP-0368, ALPN
                         xmpp-client) | none (no TLS; PLAIN is then refused, SCRAM only)
    --ca-file F          trust the PEM certificates of F (for a self-signed server)
    --insecure           accept any server certificate (tests only)
    --register           register the accounts in-band first (XEP-0077; 409 = already
                         there), then run the scenario
    --ramp R             start at most R new sessions a second (default 0: no limit)
    --max-logins N       start no more than N login attempts (default: no limit)
    --message-rate M     messages a second per session, scenario messages (default 1)
    --mechanism M        offer only SASL mechanism M (SCRAM-SHA-256, PLAIN...)
    --timeout S          seconds allowed for one login (default 30): later is a failure
    --no-key-cache       derive the SCRAM keys (PBKDF2) at every login; by default a
                         user's keys are cached after its first login, as real clients do
    --processes N        spread the sessions over N processes of this tool (beyond one
                         process's open-file limit): each gets its share of
                         --concurrency, --ramp and --max-logins and its own session
                         numbers; the summary adds their counts and rates and takes
                         the worst process's percentiles (not with --register, --json,
                         --plot)
    --first-session K    number this process's sessions from K (set by --processes)
    --json FILE          write the JSON report to FILE
    --plot FILE.svg      write an SVG plot of logins/s, ready sessions and latency
    -h, --help           this text

OUTPUT:
    a progress bar on stderr when it is a terminal; the summary table on stdout
    (logins/s, p50/p90/p99/max login latency, failures by condition); last line:
    RESULT logins=<n> failures=<n> rate=<x>/s p50=<ms> p99=<ms>
    (rate: logins over the time from the first attempt to the last login; latency:
    from the start of the TCP connect to the bound resource). Exit status 0 when
    every login attempt succeeded, 1 when one failed, 2 for bad arguments.
";

/// What the sessions do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Connect, negotiate, bind, close; again until the end.
    Login,
    /// Log in and hold the session until the end.
    LoginHold,
    /// Log in, then send messages to the next session at a rate.
    Messages,
}

impl Scenario {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::LoginHold => "login-hold",
            Self::Messages => "messages",
        }
    }
}

/// How TLS is had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// STARTTLS, required.
    StartTls,
    /// XEP-0368: TLS from the first byte.
    Direct,
    /// No TLS.
    None,
}

impl Tls {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Direct => "direct",
            Self::None => "none",
        }
    }
}

/// The parsed command line.
#[derive(Clone)]
pub struct Args {
    /// `HOST:PORT`.
    pub target: String,
    /// The XMPP domain.
    pub domain: String,
    /// How many accounts.
    pub users: u64,
    /// Their password (never shown by `Debug`).
    pub password: Secret,
    /// Sessions at once.
    pub concurrency: u64,
    /// How long the run lasts.
    pub duration: Duration,
    /// The scenario.
    pub scenario: Scenario,
    /// TLS.
    pub tls: Tls,
    /// `--ca-file`.
    pub ca_file: Option<String>,
    /// `--insecure`.
    pub insecure: bool,
    /// `--register`.
    pub register: bool,
    /// New sessions a second at most (0: no limit).
    pub ramp: f64,
    /// Login attempts at most.
    pub max_logins: Option<u64>,
    /// Messages a second per session.
    pub message_rate: f64,
    /// `--mechanism`.
    pub mechanism: Option<String>,
    /// One login's time limit.
    pub timeout: Duration,
    /// Cache each user's SCRAM keys after its first login.
    pub key_cache: bool,
    /// `--json`.
    pub json: Option<String>,
    /// `--plot`.
    pub plot: Option<String>,
    /// `--processes`: processes to spread the sessions over (1: this one).
    pub processes: u64,
    /// `--first-session` (set by the parent of `--processes`): the index
    /// of this process's first session.
    pub first_session: u64,
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Args")
            .field("target", &self.target)
            .field("domain", &self.domain)
            .field("users", &self.users)
            .field("password", &"<redacted>")
            .field("concurrency", &self.concurrency)
            .field("duration", &self.duration)
            .field("scenario", &self.scenario)
            .field("tls", &self.tls)
            .field("register", &self.register)
            .field("ramp", &self.ramp)
            .field("max_logins", &self.max_logins)
            .finish_non_exhaustive()
    }
}

/// Sessions at most (each holds a socket and its TLS state).
pub const MAX_CONCURRENCY: u64 = 1_000_000;
/// Accounts at most.
pub const MAX_USERS: u64 = 100_000_000;

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag}: not a number: {v:?}"))
}

fn seconds(flag: &str, v: &str, max: f64) -> Result<Duration, String> {
    let s: f64 = number(flag, v)?;
    if !(s > 0.0 && s <= max) {
        return Err(format!(
            "{flag}: {v} is not within 0 (excluded) and {max} seconds"
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

fn rate(flag: &str, v: &str) -> Result<f64, String> {
    let r: f64 = number(flag, v)?;
    if !(r.is_finite() && (0.0..=1e7).contains(&r)) {
        return Err(format!("{flag}: {v} is not within 0 and 10,000,000"));
    }
    Ok(r)
}

/// Parses the arguments (without the program name); `Ok(None)` for
/// `--help`.
pub fn parse(it: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut it = it.into_iter();
    let (mut target, mut domain, mut password) = (None, None, None);
    let mut a = Args {
        target: String::new(),
        domain: String::new(),
        users: 1,
        password: Secret::new(""),
        concurrency: 10,
        duration: Duration::from_secs(10),
        scenario: Scenario::Login,
        tls: Tls::StartTls,
        ca_file: None,
        insecure: false,
        register: false,
        ramp: 0.0,
        max_logins: None,
        message_rate: 1.0,
        mechanism: None,
        timeout: Duration::from_secs(30),
        key_cache: true,
        processes: 1,
        first_session: 0,
        json: None,
        plot: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--target" => target = Some(value()?),
            "--domain" => domain = Some(value()?),
            "--users" => {
                a.users = number(&flag, &value()?)?;
                if !(1..=MAX_USERS).contains(&a.users) {
                    return Err(format!("--users: from 1 to {MAX_USERS}"));
                }
            }
            "--password" => password = Some(Secret::new(value()?)),
            "--concurrency" => {
                a.concurrency = number(&flag, &value()?)?;
                if !(1..=MAX_CONCURRENCY).contains(&a.concurrency) {
                    return Err(format!("--concurrency: from 1 to {MAX_CONCURRENCY}"));
                }
            }
            "--duration" => a.duration = seconds(&flag, &value()?, 86_400.0)?,
            "--timeout" => a.timeout = seconds(&flag, &value()?, 3_600.0)?,
            "--scenario" => {
                a.scenario = match value()?.as_str() {
                    "login" => Scenario::Login,
                    "login-hold" => Scenario::LoginHold,
                    "messages" => Scenario::Messages,
                    other => {
                        return Err(format!(
                            "--scenario: login, login-hold or messages, not {other:?}"
                        ))
                    }
                }
            }
            "--tls" => {
                a.tls = match value()?.as_str() {
                    "starttls" => Tls::StartTls,
                    "direct" => Tls::Direct,
                    "none" => Tls::None,
                    other => return Err(format!("--tls: starttls, direct or none, not {other:?}")),
                }
            }
            "--ca-file" => a.ca_file = Some(value()?),
            "--insecure" => a.insecure = true,
            "--register" => a.register = true,
            "--ramp" => a.ramp = rate(&flag, &value()?)?,
            "--max-logins" => a.max_logins = Some(number(&flag, &value()?)?),
            "--message-rate" => {
                a.message_rate = rate(&flag, &value()?)?;
                if a.message_rate == 0.0 {
                    return Err("--message-rate: more than 0".into());
                }
            }
            "--mechanism" => a.mechanism = Some(value()?),
            "--no-key-cache" => a.key_cache = false,
            "--json" => a.json = Some(value()?),
            "--plot" => a.plot = Some(value()?),
            "--processes" => {
                a.processes = number(&flag, &value()?)?;
                if !(1..=64).contains(&a.processes) {
                    return Err("--processes: from 1 to 64".into());
                }
            }
            "--first-session" => a.first_session = number(&flag, &value()?)?,
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    a.target = target.ok_or("--target HOST:PORT is required")?;
    match a.target.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0) => {}
        _ => return Err(format!("--target: HOST:PORT, not {:?}", a.target)),
    }
    a.domain = domain.ok_or("--domain D is required")?;
    a.password = password.ok_or("--password P is required")?;
    if a.password.expose().is_empty() {
        return Err("--password: empty".into());
    }
    if a.processes > 1 && (a.register || a.json.is_some() || a.plot.is_some()) {
        return Err(
            "--processes: without --register (register in a run of its own first), --json, --plot"
                .into(),
        );
    }
    if a.processes > a.concurrency {
        return Err("--processes: at most --concurrency".into());
    }
    if a.tls != Tls::None && a.ca_file.is_none() && !a.insecure {
        return Err("TLS needs --ca-file F (or --insecure)".into());
    }
    Ok(Some(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Option<Args>, String> {
        parse(s.split_whitespace().map(String::from))
    }

    const BASE: &str = "--target 127.0.0.1:5222 --domain localhost --password s3cr3t-marker";

    #[test]
    fn the_issue_command_line() {
        let a = args(
            "--target 127.0.0.1:5222 --domain localhost --users 100 --password p \
             --concurrency 50 --duration 2.5 --tls direct --ca-file c.pem \
             --scenario login-hold --json r.json --plot r.svg",
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.users, 100);
        assert_eq!(a.concurrency, 50);
        assert_eq!(a.duration, Duration::from_millis(2500));
        assert_eq!(a.tls, Tls::Direct);
        assert_eq!(a.scenario, Scenario::LoginHold);
        assert_eq!(a.json.as_deref(), Some("r.json"));
        assert_eq!(a.plot.as_deref(), Some("r.svg"));
        assert_eq!(a.ca_file.as_deref(), Some("c.pem"));
    }

    #[test]
    fn defaults_and_help() {
        let a = args(&format!("{BASE} --tls none")).unwrap().unwrap();
        assert_eq!((a.users, a.concurrency), (1, 10));
        assert_eq!(a.scenario, Scenario::Login);
        assert!(a.key_cache && !a.register);
        assert!(args("--help").unwrap().is_none());
    }

    #[test]
    fn help_lists_every_flag() {
        let src = include_str!("args.rs");
        let parser = &src[src.find("match flag.as_str()").unwrap()..];
        // The match arms' patterns: `"--flag" =>` and `"-h" | "--help" =>`.
        let flags = parser
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split_once('"'))
            .filter(|(f, rest)| f.starts_with('-') && rest.trim_start().starts_with("=>"))
            .map(|(f, _)| f)
            .collect::<Vec<_>>();
        assert!(flags.len() >= 19, "{flags:?}");
        for flag in flags {
            assert!(HELP.contains(flag), "{flag} is not in --help");
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            "",
            "--target x --domain d --password p --tls none",
            "--target h:0 --domain d --password p --tls none",
            &format!("{BASE} --tls none --users 0"),
            &format!("{BASE} --tls none --concurrency 0"),
            &format!("{BASE} --tls none --duration -1"),
            &format!("{BASE} --tls none --duration NaN"),
            &format!("{BASE} --tls none --ramp inf"),
            &format!("{BASE} --tls none --message-rate 0"),
            &format!("{BASE} --tls none --scenario soak"),
            &format!("{BASE} --tls bogus"),
            BASE, // TLS without trust
            &format!("{BASE} --tls none --users"),
            &format!("{BASE} --tls none --what"),
        ] {
            assert!(args(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_password_is_not_in_debug() {
        let a = args(&format!("{BASE} --tls none")).unwrap().unwrap();
        let d = format!("{a:?}");
        assert!(!d.contains("s3cr3t-marker"), "{d}");
        assert!(d.contains("<redacted>"));
    }
}
