//! The sessions of a load run: each one a sans-IO [`Client`] on the tokio
//! driver ([`crate::tokio::connection`]), over TCP with STARTTLS or direct
//! TLS (rustls), all of them on one multi-threaded runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::tokio::net::TcpStream;
use ::tokio::sync::watch;
use ::tokio::task::JoinSet;
use minidom::Element;
use xmpp_sansio::client::{
    Client, ClientConfig, ClientError, ClientEvent, Credentials, PeerRefusal, Registration, TlsMode,
};
use xmpp_sansio::sasl::scram::ScramClientKeys;
use xmpp_sansio::steps::LegacyError;

use super::args::{Args, Scenario, Tls};
use super::stats::Stats;
use crate::tls::{self, BindingChoice, Trust};
use crate::tokio::{connection, Events, Handle};
use crate::tool::client_args::error_line;
use crate::tool::host::message_to;
use crate::DriverError;

/// SCRAM keys cached at most (one per user).
const KEY_CACHE: usize = 1_000_000;
/// How long the sessions have to close once the run is over.
const CLOSE_GRACE: Duration = Duration::from_secs(15);

/// One run: its settings, its counters, its stop signal.
pub struct Run {
    args: Args,
    /// When the run started: every time of [`Stats`] counts from here.
    pub start: Instant,
    stats: Mutex<Stats>,
    stop: watch::Sender<bool>,
    tls: Option<Arc<rustls::ClientConfig>>,
    keys: Mutex<HashMap<u64, ScramClientKeys>>,
    attempts: AtomicU64,
    /// Sessions started, for unique resources.
    serial: AtomicU64,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// Why a login attempt or a session failed: a short condition, the
/// summary's key (`sasl not-authorized`, `connect ConnectionRefused`,
/// `timeout login`...).
pub fn condition_of(e: &ClientError) -> String {
    short(&error_line(e))
}

/// The condition of a driver's error.
pub fn driver_condition(e: &DriverError) -> String {
    match e {
        DriverError::Read(e) => format!("io read {:?}", e.kind()),
        DriverError::Write(e) => format!("io write {:?}", e.kind()),
        DriverError::PeerClosed => "closed-by-peer".into(),
        DriverError::Tls(t) => short(t),
        DriverError::Usage(what, _) => format!("internal {what}"),
        DriverError::Gone => "gone".into(),
    }
}

/// The first words of a reason, before any `(` or `:` detail, at most 60
/// characters.
fn short(line: &str) -> String {
    let cut = line.find([' ', ':']).map_or(line.len(), |first| {
        // Keep the second word ("sasl not-authorized"), drop details.
        line[first..]
            .find(['(', ':'])
            .map_or(line.len(), |d| first + d)
    });
    let s = line[..cut].trim();
    s.chars().take(60).collect()
}

impl Run {
    /// A run of `args` (its TLS configuration loaded now).
    pub fn new(args: Args) -> Result<Arc<Self>, String> {
        let tls = match args.tls {
            Tls::None => None,
            t => {
                let trust = match &args.ca_file {
                    Some(f) => Trust::CaFile(f.clone()),
                    None => Trust::Insecure,
                };
                let alpn: Option<&[u8]> = (t == Tls::Direct).then_some(b"xmpp-client");
                let config = tls::client_config(&trust, alpn, false, None)?;
                // Every login is a full handshake, as a first connection is:
                // no session resumption.
                let mut config = (*config).clone();
                config.resumption = rustls::client::Resumption::disabled();
                Some(Arc::new(config))
            }
        };
        let (stop, _) = watch::channel(false);
        Ok(Arc::new(Self {
            args,
            start: Instant::now(),
            stats: Mutex::new(Stats::default()),
            stop,
            tls,
            keys: Mutex::new(HashMap::new()),
            attempts: AtomicU64::new(0),
            serial: AtomicU64::new(0),
        }))
    }

    /// The arguments.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// The counters (locked: keep it short).
    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Time since the start.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Ends the run: sessions stop starting, held ones close.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Whether the run is over.
    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn jid(&self, index: u64) -> String {
        format!("user{}@{}", index % self.args.users, self.args.domain)
    }

    fn tls_mode(&self) -> TlsMode {
        match self.args.tls {
            Tls::StartTls => TlsMode::StartTlsRequired,
            Tls::Direct => TlsMode::Direct,
            Tls::None => TlsMode::None,
        }
    }

    fn credentials(&self, user: u64) -> Credentials {
        let cached = if self.args.key_cache {
            self.keys
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&user)
                .cloned()
        } else {
            None
        };
        Credentials::Password {
            password: self.args.password.clone(),
            cached,
        }
    }

    fn client(&self, index: u64) -> Result<Client, String> {
        let mut config =
            ClientConfig::builder(self.jid(index), self.credentials(index % self.args.users));
        config.tls = self.tls_mode();
        // A login session's resource is new each time: its previous
        // session with the same worker may still be unbinding on the
        // server (a conflict otherwise). Held and messaging sessions keep
        // `load<index>`, which the messages scenario addresses.
        config.resource = Some(if self.args.scenario == Scenario::Login {
            let serial = self.serial.fetch_add(1, Ordering::Relaxed);
            format!("load{index}-{serial}")
        } else {
            format!("load{index}")
        });
        config.negotiation_timeout = self.args.timeout;
        if let Some(m) = &self.args.mechanism {
            config.policy.only = Some(vec![m.clone()]);
        }
        let config = config.build().map_err(|e| format!("configuration: {e}"))?;
        Ok(Client::new(config, Instant::now()))
    }

    /// Connects, with TLS first for direct TLS: the driver, its handle and
    /// events, or the condition of the failure.
    async fn open(
        &self,
        client: Client,
    ) -> Result<
        (
            crate::tokio::Connection<Client>,
            Handle<Client>,
            Events<ClientEvent>,
        ),
        String,
    > {
        let tcp = TcpStream::connect(&self.args.target)
            .await
            .map_err(|e| format!("connect {:?}", e.kind()))?;
        let _ = tcp.set_nodelay(true);
        let domain = self.args.domain.clone();
        match (&self.tls, self.args.tls) {
            (Some(config), Tls::Direct) => {
                let up = tls::tokio_connect(
                    config.clone(),
                    &domain,
                    Box::new(tcp),
                    &[],
                    BindingChoice::Auto,
                    false,
                )
                .await
                .map_err(|e| short(&e))?;
                Ok(connection(client.direct_tls(up.info), up.stream))
            }
            (Some(config), _) => {
                let (conn, handle, events) = connection(client, tcp);
                let upgrade =
                    tls::tokio_upgrade(config.clone(), &domain, BindingChoice::Auto, false);
                Ok((conn.with_tls(upgrade), handle, events))
            }
            (None, _) => Ok(connection(client, tcp)),
        }
    }

    /// One session: log in, then what the scenario does, then close.
    /// Counts itself in the stats.
    async fn session(self: &Arc<Self>, index: u64) {
        let t0 = Instant::now();
        self.stats().attempt(t0 - self.start);
        let client = match self.client(index) {
            Ok(c) => c,
            Err(e) => return self.stats().failure(self.now(), &short(&e)),
        };
        let deadline = t0 + self.args.timeout;
        let opened = match ::tokio::time::timeout_at(deadline.into(), self.open(client)).await {
            Ok(Ok(o)) => o,
            Ok(Err(c)) => return self.stats().failure(self.now(), &c),
            Err(_) => return self.stats().failure(self.now(), "timeout connect"),
        };
        let (conn, handle, events) = opened;
        let run = self.clone();
        let host = async move { run.host(index, t0, handle, events).await };
        let (client, ()) = ::tokio::join!(conn.run(), host);
        if self.args.key_cache {
            if let Some(keys) = client.scram_keys() {
                let mut cache = self.keys.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() < KEY_CACHE {
                    cache.insert(index % self.args.users, keys);
                }
            }
        }
    }

    /// The host side of one session: counts the login, holds or sends as
    /// the scenario says, closes.
    async fn host(
        &self,
        index: u64,
        t0: Instant,
        handle: Handle<Client>,
        mut events: Events<ClientEvent>,
    ) {
        let deadline = t0 + self.args.timeout;
        // 1. Up to Ready (or the first failure).
        let mut failure: Option<String> = None;
        loop {
            let ev = match ::tokio::time::timeout_at(deadline.into(), events.next()).await {
                Err(_) => {
                    failure.get_or_insert_with(|| "timeout login".into());
                    let _ = handle.hang_up();
                    break;
                }
                Ok(None) => break,
                Ok(Some(ev)) => ev,
            };
            match ev {
                Ok(ClientEvent::Ready { .. }) => {
                    self.stats().login(self.now(), t0.elapsed());
                    return self.ready(index, handle, events).await;
                }
                Ok(ClientEvent::Error(e)) => {
                    failure.get_or_insert_with(|| condition_of(&e));
                }
                Ok(ClientEvent::Closed) => {}
                Ok(_) => {}
                Err(e) => {
                    failure.get_or_insert_with(|| driver_condition(&e));
                }
            }
        }
        // Drain what is left so that the driver can end.
        while events.next().await.is_some() {}
        let c = failure.unwrap_or_else(|| "closed before ready".into());
        self.stats().failure(self.now(), &c);
    }

    /// A ready session: close at once (login), at the end (login-hold),
    /// or send messages until the end (messages).
    async fn ready(&self, index: u64, handle: Handle<Client>, mut events: Events<ClientEvent>) {
        let mut stop = self.stop.subscribe();
        let mut closing = false;
        if self.args.scenario == Scenario::Login {
            let _ = handle.close();
            closing = true;
        }
        let sending = self.args.scenario == Scenario::Messages;
        let period = Duration::from_secs_f64(1.0 / self.args.message_rate.max(1e-6));
        let mut ticker = ::tokio::time::interval(period);
        ticker.set_missed_tick_behavior(::tokio::time::MissedTickBehavior::Delay);
        // The next session of this process (`--processes`: each process's
        // sessions message each other).
        let first = self.args.first_session;
        let peer = first + (index - first + 1) % self.args.concurrency;
        let to = format!("{}/load{peer}", self.jid(peer));
        let mut dropped: Option<String> = None;
        let mut sent = 0u64;
        loop {
            ::tokio::select! {
                ev = events.next() => match ev {
                    None => break,
                    Some(Ok(ClientEvent::Stanza(el))) => self.on_stanza(&el),
                    Some(Ok(ClientEvent::Error(e))) => {
                        dropped.get_or_insert_with(|| condition_of(&e));
                    }
                    Some(Err(e)) if !closing => {
                        dropped.get_or_insert_with(|| driver_condition(&e));
                    }
                    Some(_) => {}
                },
                _ = stop.wait_for(|s| *s), if !closing => {
                    let _ = handle.close();
                    closing = true;
                }
                _ = ticker.tick(), if sending && !closing => {
                    sent += 1;
                    let body = (self.now().as_nanos() as u64).to_string();
                    let id = format!("m{index}-{sent}");
                    if handle.send(message_to(&to, &id, &body)).is_ok() {
                        self.stats().messages_sent += 1;
                    }
                }
            }
        }
        // A session that failed after login is a drop, not a login failure.
        self.stats().session_end(self.now(), dropped.as_deref());
    }

    /// A stanza a ready session received: a message of the run (its
    /// latency), or an error bounce.
    fn on_stanza(&self, el: &Element) {
        if el.name() != "message" {
            return;
        }
        if el.attr("type") == Some("error") {
            self.stats().message_errors += 1;
            return;
        }
        let sent = el
            .get_child("body", xmpp_sansio::ns::JABBER_CLIENT)
            .and_then(|b| b.text().parse::<u64>().ok());
        if let Some(ns) = sent {
            let now = self.now();
            let latency = now.saturating_sub(Duration::from_nanos(ns));
            self.stats().message_latency.record(latency);
        }
    }

    /// Registers account `user` in-band (409: it existed).
    async fn register(&self, user: u64) {
        let outcome = self.register1(user).await;
        let mut stats = self.stats();
        match outcome {
            Ok(true) => stats.registered += 1,
            Ok(false) => stats.existed += 1,
            Err(c) => stats.register_failures.add(&c),
        }
    }

    async fn register1(&self, user: u64) -> Result<bool, String> {
        let mut config = ClientConfig::builder(self.args.domain.clone(), Credentials::Anonymous);
        config.tls = self.tls_mode();
        config.negotiation_timeout = self.args.timeout;
        config.register = Some(Registration {
            fields: vec![
                ("username".into(), format!("user{user}")),
                ("password".into(), self.args.password.expose().to_owned()),
            ],
            then_login: false,
        });
        let config = config.build().map_err(|e| format!("configuration: {e}"))?;
        let client = Client::new(config, Instant::now());
        let deadline = Instant::now() + self.args.timeout;
        let (conn, _handle, mut events) =
            ::tokio::time::timeout_at(deadline.into(), self.open(client))
                .await
                .map_err(|_| "timeout connect".to_string())??;
        let host =
            async move {
                let mut outcome = Err("closed before an answer".to_string());
                while let Some(ev) = events.next().await {
                    match ev {
                        Ok(ClientEvent::Registered) => outcome = Ok(true),
                        Ok(ClientEvent::Error(ClientError::Refused(
                            PeerRefusal::Registration(e),
                        ))) if e == LegacyError::CONFLICT => outcome = Ok(false),
                        Ok(ClientEvent::Error(e)) if outcome.is_err() => {
                            outcome = Err(condition_of(&e))
                        }
                        Err(e) if outcome.is_err() => outcome = Err(driver_condition(&e)),
                        _ => {}
                    }
                }
                outcome
            };
        match ::tokio::time::timeout_at(deadline.into(), async {
            ::tokio::join!(conn.run(), host).1
        })
        .await
        {
            Ok(o) => o,
            Err(_) => Err("timeout register".into()),
        }
    }
}

/// Registers `user0`..`user<N-1>` in-band, `concurrency` at a time.
pub async fn register_all(run: &Arc<Run>) {
    let next = Arc::new(AtomicU64::new(0));
    let workers = run.args.concurrency.min(run.args.users).min(256);
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let (run, next) = (run.clone(), next.clone());
        set.spawn(async move {
            loop {
                let user = next.fetch_add(1, Ordering::Relaxed);
                if user >= run.args.users {
                    break;
                }
                run.register(user).await;
            }
        });
    }
    while set.join_next().await.is_some() {}
}

/// Runs the scenario: `concurrency` workers, started at the ramp's rate,
/// until the duration is over (or `--max-logins` attempts were made);
/// returns once every session has closed (or the grace after the end
/// passed: the rest are dropped).
pub async fn run_scenario(run: &Arc<Run>) {
    let args = &run.args;
    let mut set = JoinSet::new();
    {
        let run = run.clone();
        let duration = args.duration;
        ::tokio::spawn(async move {
            ::tokio::time::sleep(duration).await;
            run.stop();
        });
    }
    let begin = Instant::now();
    for k in 0..args.concurrency {
        if args.ramp > 0.0 {
            let at = begin + Duration::from_secs_f64(k as f64 / args.ramp);
            ::tokio::time::sleep_until(at.into()).await;
        }
        if run.stopped() {
            break;
        }
        let run = run.clone();
        set.spawn(async move {
            loop {
                if run.stopped() {
                    break;
                }
                if let Some(max) = run.args.max_logins {
                    if run.attempts.fetch_add(1, Ordering::Relaxed) >= max {
                        break;
                    }
                }
                run.session(run.args.first_session + k).await;
                if run.args.scenario != Scenario::Login {
                    break;
                }
            }
        });
    }
    let all_done = async { while set.join_next().await.is_some() {} };
    let mut stop = run.stop.subscribe();
    // Login workers end by themselves (duration or budget); held sessions
    // close once stopped, within the grace.
    ::tokio::select! {
        () = all_done => {}
        _ = async {
            let _ = stop.wait_for(|s| *s).await;
            ::tokio::time::sleep(args.timeout.min(CLOSE_GRACE) + CLOSE_GRACE).await;
        } => {}
    }
    run.stop();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_short() {
        assert_eq!(
            short("sasl not-authorized (bad password)"),
            "sasl not-authorized"
        );
        assert_eq!(short("timeout (negotiation)"), "timeout");
        assert_eq!(
            short("tls handshake: invalid peer certificate"),
            "tls handshake"
        );
        assert_eq!(short("stream host-unknown"), "stream host-unknown");
        assert_eq!(short("closed-by-peer"), "closed-by-peer");
        assert_eq!(short(&"x".repeat(500)).len(), 60);
        assert_eq!(driver_condition(&DriverError::PeerClosed), "closed-by-peer");
    }
}
