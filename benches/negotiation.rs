//! Full stream negotiations in memory, `Client` against `Server`, each
//! figure beside its baseline in the same run.
//!
//! One negotiation: both machines are created (their configurations are
//! built outside the timing), then driven from the client's first header to
//! both sides ready: features, SASL, the restart, features again, resource
//! binding. No TLS (`TlsMode::None`, `ServerTls::None`). The host answers
//! the server's requests at once: credentials from a store computed before
//! timing, binding by accepting the requested resource. Randomness is
//! `DeterministicRandom`, so every iteration exchanges the same bytes.
//!
//! Cases:
//!
//! - `PLAIN`: the host compares the password with its stored copy.
//! - `SCRAM-SHA-1/cached-keys`, `SCRAM-SHA-256/cached-keys`: the client
//!   logs in with the keys an earlier login handed back
//!   (`Client::scram_keys`), the server holds precomputed
//!   StoredKey/ServerKey: no PBKDF2 on either side.
//! - `SCRAM-SHA-256/pbkdf2-4096`: the client has only the password and
//!   runs PBKDF2 (4096 iterations); the server still has StoredKey/ServerKey.
//! - `SASL2+Bind2 PLAIN`, `SASL2+Bind2 SCRAM-SHA-256/cached-keys`: the
//!   same logins over SASL2 (XEP-0388) with Bind 2 (XEP-0386): no restart,
//!   no bind IQ. The summary sets each beside its RFC 6120 login: time,
//!   bytes and the client's round trips (its writes, each answered before
//!   the next).
//!
//! Baseline, for each case: rxml's `RawParser` tokenising exactly the bytes
//! both sides exchanged in that negotiation (recorded once, before timing),
//! one fresh parser per stream as the machines use (the stream restarts
//! after SASL). Goals (issue 7): PLAIN costs at most 2x its baseline and
//! runs at least 20,000 negotiations per second on one core; SCRAM with
//! cached keys reaches at least 80% of PLAIN's rate.
//!
//! Memory (printed before the criterion runs; criterion cannot measure
//! it): `size_of` of `Client` and `Server`, and the heap each holds once
//! ready and idle, counted by a counting global allocator: both machines
//! are created and negotiated with counting on, then each is dropped and the
//! bytes released are what it held. Goal: at most 4 KiB per idle ready
//! session.
//!
//! After the criterion runs, a summary table repeats every figure with its
//! ratio to the baseline and whether each goal is met (its own timing loop:
//! the fastest of several interleaved timed batches).
//!
//! Run: `cargo bench --bench negotiation -- --warm-up-time 1 --measurement-time 5`

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use rxml::{Parse, RawParser};
use xmpp_sansio::client::{
    Client, ClientConfig, ClientEvent, ClientSettings, Credentials, TlsMode,
};
use xmpp_sansio::sasl::scram::{derive_server_credentials, ScramClientKeys};
use xmpp_sansio::sasl::{
    CredentialAnswer, CredentialRequest, SaslCondition, ScramCredentials, ScramHash, Secret,
};
use xmpp_sansio::server::{
    BindAnswer, Server, ServerConfig, ServerEvent, ServerSettings, ServerTls,
};
use xmpp_sansio::xml::{Limits, StreamReader};
use xmpp_sansio::{BufferPolicy, DeterministicRandom};

// ---------------------------------------------------------------------------
// A counting allocator: off (one relaxed load) except while measuring.

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn count_alloc(size: usize) {
    let live = LIVE.fetch_add(size, Relaxed) + size;
    PEAK.fetch_max(live, Relaxed);
    ALLOCATED.fetch_add(size, Relaxed);
    ALLOCATIONS.fetch_add(1, Relaxed);
}

fn count_free(size: usize) {
    LIVE.fetch_sub(size, Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && COUNTING.load(Relaxed) {
            count_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && COUNTING.load(Relaxed) {
            count_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        if COUNTING.load(Relaxed) {
            count_free(layout.size());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && COUNTING.load(Relaxed) {
            count_free(layout.size());
            count_alloc(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Starts counting from zero.
fn counting_start() {
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    ALLOCATED.store(0, Relaxed);
    ALLOCATIONS.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
}

fn live() -> isize {
    LIVE.load(Relaxed) as isize
}

// ---------------------------------------------------------------------------
// The cases

const DOMAIN: &str = "example.org";
const USER: &str = "juliet";
const PASSWORD: &str = "r0m30, my r0m30";
const SALT: &[u8] = b"NaCl-of-the-capulets";
const ITERATIONS: u32 = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    Plain,
    Scram1Cached,
    Scram256Cached,
    Scram256Pbkdf2,
    Sasl2Plain,
    Sasl2Scram256Cached,
    /// SASL2 PLAIN over (simulated) direct TLS: FAST's baseline.
    TlsSasl2Plain,
    /// SASL2 PLAIN over the same TLS to a server that offers FAST, from a
    /// client with a user agent (what FAST needs) that asks for no token:
    /// FAST's baseline, the same login with the password instead.
    TlsFastPlain,
    /// SASL2 with a FAST token (HT-SHA-256-NONE) over the same TLS.
    TlsFast,
}

const CASES: [Case; 9] = [
    Case::Plain,
    Case::Scram1Cached,
    Case::Scram256Cached,
    Case::Scram256Pbkdf2,
    Case::Sasl2Plain,
    Case::Sasl2Scram256Cached,
    Case::TlsSasl2Plain,
    Case::TlsFastPlain,
    Case::TlsFast,
];

/// The FAST mechanism of `Case::TlsFast`, and its token.
const FAST_MECHANISM: &str = "HT-SHA-256-NONE";
const FAST_SECRET: &str = "s3cr3t-fast-token-of-juliet";
/// The wall clock the client is given with its token (Unix seconds).
const FAST_NOW: i64 = 1_800_000_000;
const USER_AGENT: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";

fn fast_token() -> xmpp_sansio::fast::FastToken {
    xmpp_sansio::fast::FastToken::new(
        FAST_MECHANISM,
        FAST_SECRET,
        xmpp_sansio::fast::Expiry::from_unix(FAST_NOW + 86_400).expect("an expiry"),
    )
}

impl Case {
    fn mechanism(self) -> &'static str {
        match self {
            Case::Plain | Case::Sasl2Plain | Case::TlsSasl2Plain | Case::TlsFastPlain => "PLAIN",
            // The password mechanism configured beside the token.
            Case::TlsFast => "PLAIN",
            Case::Scram1Cached => "SCRAM-SHA-1",
            Case::Scram256Cached | Case::Scram256Pbkdf2 | Case::Sasl2Scram256Cached => {
                "SCRAM-SHA-256"
            }
        }
    }

    /// Over SASL2 with Bind 2.
    fn sasl2(self) -> bool {
        matches!(
            self,
            Case::Sasl2Plain
                | Case::Sasl2Scram256Cached
                | Case::TlsSasl2Plain
                | Case::TlsFastPlain
                | Case::TlsFast
        )
    }

    /// The server offers FAST and the client sends a user agent.
    fn fast_offered(self) -> bool {
        matches!(self, Case::TlsFastPlain | Case::TlsFast)
    }

    /// Over simulated direct TLS (no channel binding data: FAST's -NONE).
    fn tls(self) -> bool {
        matches!(
            self,
            Case::TlsSasl2Plain | Case::TlsFastPlain | Case::TlsFast
        )
    }

    /// The login a FAST case is set beside (goal: at least 95% of its
    /// rate): PLAIN with the same client and server.
    fn fast_beside(self) -> Option<Case> {
        (self == Case::TlsFast).then_some(Case::TlsFastPlain)
    }

    /// The RFC 6120 login a SASL2 case is set beside.
    fn rfc6120(self) -> Option<Case> {
        match self {
            Case::Sasl2Plain => Some(Case::Plain),
            Case::Sasl2Scram256Cached => Some(Case::Scram256Cached),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Case::Plain => "PLAIN",
            Case::Scram1Cached => "SCRAM-SHA-1/cached-keys",
            Case::Scram256Cached => "SCRAM-SHA-256/cached-keys",
            Case::Scram256Pbkdf2 => "SCRAM-SHA-256/pbkdf2-4096",
            Case::Sasl2Plain => "SASL2+Bind2 PLAIN",
            Case::Sasl2Scram256Cached => "SASL2+Bind2 SCRAM-SHA-256/cached",
            Case::TlsSasl2Plain => "TLS SASL2+Bind2 PLAIN",
            Case::TlsFastPlain => "TLS SASL2+Bind2 PLAIN/FAST offered",
            Case::TlsFast => "TLS SASL2+Bind2 FAST HT-SHA-256",
        }
    }

    fn hash(self) -> Option<ScramHash> {
        match self {
            Case::Plain
            | Case::Sasl2Plain
            | Case::TlsSasl2Plain
            | Case::TlsFastPlain
            | Case::TlsFast => None,
            Case::Scram1Cached => Some(ScramHash::Sha1),
            Case::Scram256Cached | Case::Scram256Pbkdf2 | Case::Sasl2Scram256Cached => {
                Some(ScramHash::Sha256)
            }
        }
    }
}

/// The server host's store, computed before timing.
struct Store {
    passwords: HashMap<String, String>,
    scram: HashMap<(String, ScramHash), ScramCredentials>,
    /// The user's FAST token, as a host keeps it (parsed once).
    fast: xmpp_sansio::fast::FastToken,
}

impl Store {
    fn new() -> Self {
        let scram = [ScramHash::Sha1, ScramHash::Sha256]
            .into_iter()
            .map(|h| {
                let c = derive_server_credentials(h, PASSWORD, SALT, ITERATIONS).expect("valid");
                ((USER.to_owned(), h), c)
            })
            .collect();
        Store {
            passwords: HashMap::from([(USER.to_owned(), PASSWORD.to_owned())]),
            scram,
            fast: fast_token(),
        }
    }

    fn answer(&self, req: CredentialRequest) -> CredentialAnswer {
        match req {
            CredentialRequest::Password {
                username, password, ..
            } => CredentialAnswer::Verdict(match self.passwords.get(&username) {
                Some(p) if password.ct_eq(p) => Ok(username),
                _ => Err(SaslCondition::NotAuthorized),
            }),
            CredentialRequest::Scram { username, hash, .. } => {
                CredentialAnswer::Scram(self.scram.get(&(username, hash)).cloned())
            }
            CredentialRequest::FastToken { username, .. } => {
                let mut slots = xmpp_sansio::fast::TokenSlots::default();
                if username == USER {
                    slots.current = Some(self.fast.clone());
                }
                CredentialAnswer::FastTokens(slots)
            }
            other => panic!("unexpected request {other:?}"),
        }
    }
}

/// Everything one case needs, prepared before timing.
struct Setup {
    case: Case,
    store: Store,
    /// The client's cached keys (from an earlier login), for `*Cached`.
    keys: Option<ScramClientKeys>,
}

impl Setup {
    fn new(case: Case) -> Self {
        let mut s = Setup {
            case,
            store: Store::new(),
            keys: None,
        };
        if matches!(
            case,
            Case::Scram1Cached | Case::Scram256Cached | Case::Sasl2Scram256Cached
        ) {
            // An earlier login with the password hands back the keys.
            let (cc, sc) = s.configs();
            let (client, _server) = s.negotiate(cc, sc, None);
            let keys = client.scram_keys().expect("SCRAM hands back keys");
            assert_eq!(Some(keys.hash), case.hash());
            s.keys = Some(keys);
        }
        s
    }

    /// The configurations, built (what a host shares between sessions).
    fn configs(&self) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
        self.configs_with(Limits::default())
    }

    fn configs_with(&self, limits: Limits) -> (Arc<ClientConfig>, Arc<ServerConfig>) {
        let (c, s) = self.settings_with(limits);
        (Arc::new(c.build().unwrap()), Arc::new(s.build().unwrap()))
    }

    /// The settings, both sides with these reader limits.
    fn settings_with(&self, limits: Limits) -> (ClientSettings, ServerSettings) {
        let credentials = Credentials::Password {
            password: Secret::new(PASSWORD),
            cached: self.keys.clone(),
        };
        let mut c = ClientSettings::new(format!("{USER}@{DOMAIN}"), credentials);
        c.tls = if self.case.tls() {
            TlsMode::Direct
        } else {
            TlsMode::None
        };
        c.policy.only = Some(vec![self.case.mechanism().to_owned()]);
        c.policy.allow_plain_without_tls = true;
        c.resource = Some("balcony".into());
        c.limits = limits;
        let mut s = ServerSettings::new(DOMAIN);
        s.limits = limits;
        s.tls = if self.case.tls() {
            ServerTls::Direct
        } else {
            ServerTls::None
        };
        s.mechanisms = vec![self.case.mechanism().to_owned()];
        s.allow_plain_without_tls = true;
        if self.case.sasl2() {
            let mut sasl2 = xmpp_sansio::sasl2::Sasl2Settings::new();
            if self.case.fast_offered() {
                sasl2.fast = vec![FAST_MECHANISM.to_owned()];
                c.user_agent = Some(xmpp_sansio::sasl2::UserAgent::new(USER_AGENT));
                // A login with the password asks for no token: a token
                // login asks for none either (it has one).
                c.fast.request_token = false;
            }
            s.sasl2 = Some(sasl2);
            c.sasl2 = xmpp_sansio::sasl2::Sasl2Policy::Require;
        } else {
            c.sasl2 = xmpp_sansio::sasl2::Sasl2Policy::Never;
        }
        (c, s)
    }

    /// One negotiation, from the first header to both sides ready.
    /// `record`: the bytes each way, one entry per stream (a new entry at
    /// each restart).
    fn negotiate(
        &self,
        cc: Arc<ClientConfig>,
        sc: Arc<ServerConfig>,
        mut record: Option<&mut Recording>,
    ) -> (Client, Server) {
        let now = Instant::now();
        let mut client = Client::with_random(cc, Box::new(DeterministicRandom::new(0)), now);
        let mut server = Server::with_random(sc, Box::new(DeterministicRandom::new(1)), now);
        if self.case.tls() {
            // The TLS handshake is the host's and is not timed: both
            // machines start on an established channel.
            let info = || xmpp_sansio::TlsInfo {
                version: xmpp_sansio::sasl::channel_binding::TlsVersion::Tls13,
                channel_bindings: Vec::new(),
            };
            client = client.direct_tls(info());
            server = server.direct_tls(info());
        }
        if self.case == Case::TlsFast {
            // The client host's stored token, read back for this login.
            client.use_fast_token(self.store.fast.clone(), FAST_NOW);
        }
        let mut buf = Vec::with_capacity(1024);
        loop {
            let mut busy = false;
            buf.clear();
            client.poll_transmit(&mut buf);
            if !buf.is_empty() {
                busy = true;
                if let Some(r) = record.as_deref_mut() {
                    Recording::add(&mut r.up, &buf);
                    r.client_writes += 1;
                }
                server.feed(now, &buf).expect("server feed");
            }
            while let Some(ev) = server.poll_event() {
                busy = true;
                match ev {
                    ServerEvent::Credentials(req) => server
                        .answer_credentials(now, self.store.answer(req))
                        .expect("answer"),
                    ServerEvent::Bind { resource, .. } => server
                        .answer_bind(now, BindAnswer::Accept(resource))
                        .expect("bind"),
                    // A token login: the host rotates nothing here.
                    ServerEvent::IssueFastToken { .. } => {
                        server.answer_fast_token(now, None).expect("fast token")
                    }
                    ServerEvent::Error(e) => panic!("server: {e}"),
                    _ => {}
                }
            }
            buf.clear();
            server.poll_transmit(&mut buf);
            if !buf.is_empty() {
                busy = true;
                if let Some(r) = record.as_deref_mut() {
                    Recording::add(&mut r.down, &buf);
                }
                client.feed(now, &buf).expect("client feed");
            }
            while let Some(ev) = client.poll_event() {
                busy = true;
                match ev {
                    ClientEvent::Error(e) => panic!("client: {e}"),
                    // The FAST case logs in with its token, not the password.
                    ClientEvent::Authenticated { mechanism, .. } if self.case == Case::TlsFast => {
                        assert_eq!(mechanism, FAST_MECHANISM)
                    }
                    _ => {}
                }
            }
            if !busy {
                assert!(
                    client.is_ready() && server.is_ready(),
                    "{}: the negotiation stalled",
                    self.case.label()
                );
                return (client, server);
            }
        }
    }
}

/// The bytes of one negotiation, each way, split into streams.
#[derive(Default)]
struct Recording {
    up: Vec<Vec<u8>>,
    down: Vec<Vec<u8>>,
    /// The client's writes: each waits for the server's answer, so each is
    /// a round trip.
    client_writes: usize,
}

impl Recording {
    /// A chunk that opens a stream (XML declaration or header) starts a
    /// new stream: the machines write the header as the first bytes of
    /// their output after a restart.
    fn add(streams: &mut Vec<Vec<u8>>, chunk: &[u8]) {
        if streams.is_empty() || chunk.starts_with(b"<?xml") || chunk.starts_with(b"<stream:") {
            streams.push(Vec::new());
        }
        streams.last_mut().expect("pushed").extend_from_slice(chunk);
    }

    fn bytes(&self) -> (usize, usize) {
        let n = |s: &Vec<Vec<u8>>| s.iter().map(Vec::len).sum();
        (n(&self.up), n(&self.down))
    }

    /// The baseline: tokenise every stream with a fresh `RawParser`.
    /// Returns the number of tokens.
    fn tokenise(&self) -> usize {
        let mut tokens = 0;
        for stream in self.up.iter().chain(&self.down) {
            let mut p = RawParser::new();
            let mut input: &[u8] = stream;
            loop {
                match p.parse(&mut input, false) {
                    Ok(Some(ev)) => {
                        black_box(ev);
                        tokens += 1;
                    }
                    Ok(None) => break,
                    Err(rxml::error::EndOrError::NeedMoreData) => break,
                    Err(e) => panic!("baseline: {e:?}"),
                }
            }
        }
        tokens
    }
}

// ---------------------------------------------------------------------------
// Memory

struct Memory {
    client_heap: isize,
    server_heap: isize,
    /// Allocations during one negotiation (both machines and the host).
    allocations: usize,
    allocated: usize,
    peak: usize,
}

fn memory(setup: &Setup, limits: Limits) -> Memory {
    // The configurations are built before counting and kept alive after
    // the sessions: hosts share one between all their sessions, so a
    // session's heap does not include it.
    let (cc, sc) = setup.configs_with(limits);
    let shared = (cc.clone(), sc.clone());
    // A host's first connection fills what a configuration caches for
    // all (its serialised features): counted is any later one.
    setup.negotiate(cc.clone(), sc.clone(), None);
    counting_start();
    let (client, server) = setup.negotiate(cc, sc, None);
    let allocations = ALLOCATIONS.load(Relaxed);
    let allocated = ALLOCATED.load(Relaxed);
    let peak = PEAK.load(Relaxed);
    let with_both = live();
    drop(client);
    let with_server = live();
    drop(server);
    let after = live();
    COUNTING.store(false, Relaxed);
    drop(shared);
    Memory {
        client_heap: with_both - with_server,
        server_heap: with_server - after,
        allocations,
        allocated,
        peak,
    }
}

/// Heap (bytes) that `make` leaves allocated until the value is dropped.
fn heap_of<T>(make: impl FnOnce() -> T) -> (T, isize) {
    counting_start();
    let v = make();
    let held = live();
    COUNTING.store(false, Relaxed);
    (v, held)
}

/// Where an idle session's heap goes, through the public API (PLAIN).
fn breakdown(setup: &Setup, rec: &Recording) {
    println!("-- where the idle heap goes (PLAIN):");
    let ((cc, sc), _) = heap_of(|| setup.configs());
    let (_, client_cfg) = heap_of(|| drop(cc));
    let (_, server_cfg) = heap_of(|| drop(sc));
    println!(
        "   configurations alone (built once, shared by every session): ClientConfig {} B, ServerConfig {} B",
        -client_cfg, -server_cfg
    );
    // A reader after the last stream of each side (as the machines' own
    // readers are once ready).
    let read_all = |stream: &[u8]| {
        let mut r = StreamReader::default();
        let mut input = stream;
        while let Ok(Some(ev)) = r.read(&mut input) {
            drop(ev);
        }
        r
    };
    let (r1, server_reader) = heap_of(|| read_all(rec.up.last().expect("streams")));
    let (r2, client_reader) = heap_of(|| read_all(rec.down.last().expect("streams")));
    drop((r1, r2));
    let (p, parser) = heap_of(|| {
        let mut p = RawParser::new();
        let _ = p.parse(&mut &b"<a b='c'/>"[..], false);
        p
    });
    drop(p);
    println!(
        "   a StreamReader after the last stream: client's {client_reader} B, server's {server_reader} B \
         (rxml RawParser alone after one token: {parser} B: its lexer reserves max_token_length)"
    );
    let small = Limits {
        max_token_bytes: 512,
        ..Limits::default()
    };
    let m = memory(setup, small);
    println!(
        "   the same negotiation with Limits.max_token_bytes = 512 (default 8192): client heap {} B, server heap {} B",
        m.client_heap, m.server_heap
    );
    println!(
        "   size_of: ClientEvent {} B, ServerEvent {} B, StreamReader {} B",
        std::mem::size_of::<ClientEvent>(),
        std::mem::size_of::<ServerEvent>(),
        std::mem::size_of::<StreamReader>()
    );
}

// ---------------------------------------------------------------------------
// Timing for the summary (criterion's figures are printed by criterion)

/// Nanoseconds per call of each function: the fastest of `rounds` timed
/// batches of about `batch` each, the functions' batches interleaved so
/// that each faces the same conditions. The minimum is the figure least
/// disturbed by other work on a shared machine.
fn min_ns(fs: &mut [&mut dyn FnMut()], rounds: usize, batch: Duration) -> Vec<f64> {
    // Calibrate: how many calls fill a batch.
    let calls: Vec<u64> = fs
        .iter_mut()
        .map(|f| {
            let t = Instant::now();
            let mut n = 0u64;
            while t.elapsed() < batch / 2 {
                f();
                n += 1;
            }
            let per = t.elapsed().as_secs_f64() / n as f64;
            ((batch.as_secs_f64() / per) as u64).max(1)
        })
        .collect();
    let mut best = vec![f64::INFINITY; fs.len()];
    for _ in 0..rounds {
        for (i, f) in fs.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..calls[i] {
                f();
            }
            let ns = t.elapsed().as_secs_f64() * 1e9 / calls[i] as f64;
            best[i] = best[i].min(ns);
        }
    }
    best
}

/// The case a label names, or a panic listing the labels.
fn case_named(label: Option<&str>) -> Case {
    CASES
        .into_iter()
        .find(|c| label == Some(c.label()))
        .unwrap_or_else(|| {
            let labels: Vec<&str> = CASES.iter().map(|c| c.label()).collect();
            panic!("give one of {labels:?}")
        })
}

/// `--dump CASE`: the bytes one negotiation of CASE exchanges, stream by
/// stream, each way (to see where a case's bytes go).
fn dump(rest: &[String]) {
    let setup = Setup::new(case_named(rest.first().map(String::as_str)));
    let mut r = Recording::default();
    let (cc, sc) = setup.configs();
    setup.negotiate(cc, sc, Some(&mut r));
    for (i, (up, down)) in r.up.iter().zip(&r.down).enumerate() {
        println!("== stream {i}, client to server ({} bytes)", up.len());
        println!("{}", String::from_utf8_lossy(up));
        println!("== stream {i}, server to client ({} bytes)", down.len());
        println!("{}", String::from_utf8_lossy(down));
    }
}

/// `--profile CASE [baseline] N` (CASE: a case label, e.g. `PLAIN` or
/// `SCRAM-SHA-256/cached-keys`). Instruction counts per negotiation are
/// the difference of two runs (N and 0) divided by N:
///
/// ```text
/// valgrind --tool=callgrind --callgrind-out-file=cg.%p BENCH --profile PLAIN 1000
/// ```
fn profile(rest: &[String]) {
    let case = case_named(rest.first().map(String::as_str));
    let baseline = rest.get(1).map(String::as_str) == Some("baseline");
    let n: usize = rest
        .last()
        .and_then(|v| v.parse().ok())
        .expect("--profile CASE [baseline] N");
    let setup = Setup::new(case);
    let mut r = Recording::default();
    let (cc, sc) = setup.configs();
    setup.negotiate(cc, sc, Some(&mut r));
    // The configurations are built once, as in the timed runs.
    let (cc, sc) = setup.configs();
    for _ in 0..n {
        if baseline {
            black_box(r.tokenise());
        } else {
            black_box(setup.negotiate(cc.clone(), sc.clone(), None));
        }
    }
}

/// A ready PLAIN pair whose sessions keep or release their buffers.
/// The configurations come back too: the host keeps them, so dropping a
/// session frees only the session.
fn ready_with(setup: &Setup, policy: BufferPolicy) -> (Client, Server, Shared) {
    let (mut cc, mut sc) = setup.settings_with(Limits::default());
    cc.buffers = policy;
    sc.buffers = policy;
    let (cc, sc) = (Arc::new(cc.build().unwrap()), Arc::new(sc.build().unwrap()));
    let (client, server) = setup.negotiate(cc.clone(), sc.clone(), None);
    (client, server, (cc, sc))
}

/// Configurations a host keeps while its sessions come and go.
type Shared = (Arc<ClientConfig>, Arc<ServerConfig>);

/// One stanza each way between ready sessions: sent, written, read,
/// delivered.
fn round_trip(client: &mut Client, server: &mut Server, msg: &minidom::Element, buf: &mut Vec<u8>) {
    let now = Instant::now();
    client.send(msg).expect("send");
    buf.clear();
    client.poll_transmit(buf);
    server.feed(now, buf).expect("server feed");
    while let Some(ev) = server.poll_event() {
        black_box(ev);
    }
    server.send(msg).expect("send");
    buf.clear();
    server.poll_transmit(buf);
    client.feed(now, buf).expect("client feed");
    while let Some(ev) = client.poll_event() {
        black_box(ev);
    }
}

/// The ready-traffic comparison of the two buffer policies: idle heap,
/// allocations and time per round trip.
fn buffer_policies(setup: &Setup) {
    let msg: minidom::Element = format!(
        "<message xmlns='jabber:client' to='{USER}@{DOMAIN}/balcony' type='chat'><body>{}</body></message>",
        "wherefore art thou ".repeat(4)
    )
    .parse()
    .expect("stanza");
    println!("== buffer policies (PLAIN, ready sessions; one message each way per round)");
    let mut pairs = Vec::new();
    for policy in [BufferPolicy::ReleaseWhenIdle, BufferPolicy::Keep] {
        let (mut client, mut server, _shared) = ready_with(setup, policy);
        let mut buf = Vec::with_capacity(4096);
        round_trip(&mut client, &mut server, &msg, &mut buf);
        counting_start();
        round_trip(&mut client, &mut server, &msg, &mut buf);
        let allocations = ALLOCATIONS.load(Relaxed);
        COUNTING.store(false, Relaxed);
        counting_start();
        let before = live();
        drop(client);
        let client_heap = before - live();
        let before = live();
        drop(server);
        let server_heap = before - live();
        COUNTING.store(false, Relaxed);
        println!(
            "{policy:?}: idle heap client {client_heap} B, server {server_heap} B; {allocations} allocations per round"
        );
        pairs.push(ready_with(setup, policy));
    }
    let mut bufs = [Vec::with_capacity(4096), Vec::with_capacity(4096)];
    let [(c0, s0, _), (c1, s1, _)] = &mut pairs[..] else {
        unreachable!("two policies")
    };
    let [b0, b1] = &mut bufs;
    let times = min_ns(
        &mut [&mut || round_trip(c0, s0, &msg, b0), &mut || {
            round_trip(c1, s1, &msg, b1)
        }],
        20,
        Duration::from_millis(50),
    );
    println!(
        "round trip: ReleaseWhenIdle {:.0} ns, Keep {:.0} ns (Keep at {:.1}% of the time)",
        times[0],
        times[1],
        100.0 * times[1] / times[0]
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --benches` / `--test`: run each case once, no timing.
    let test_mode = args.iter().any(|a| a == "--test");
    let list_mode = args.iter().any(|a| a == "--list");

    // `--profile CASE [baseline] N`: only N iterations of one case (or of
    // its baseline), no criterion: for `valgrind --tool=callgrind`.
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        return profile(&args[i + 1..]);
    }
    // `--dump CASE`: print the bytes of one negotiation, each stream.
    if let Some(i) = args.iter().position(|a| a == "--dump") {
        return dump(&args[i + 1..]);
    }

    let setups: Vec<Setup> = CASES.into_iter().map(Setup::new).collect();
    let recordings: Vec<Recording> = setups
        .iter()
        .map(|s| {
            let mut r = Recording::default();
            let (cc, sc) = s.configs();
            s.negotiate(cc, sc, Some(&mut r));
            r
        })
        .collect();

    if !list_mode {
        println!("== memory (counting global allocator)");
        println!(
            "size_of::<Client>() = {} bytes, size_of::<Server>() = {} bytes",
            std::mem::size_of::<Client>(),
            std::mem::size_of::<Server>()
        );
        println!(
            "{:<28} {:>12} {:>12} {:>12} {:>12} {:>12} {:>10}",
            "case",
            "client heap",
            "server heap",
            "client tot",
            "server tot",
            "allocs/neg",
            "peak heap"
        );
        for s in &setups {
            let m = memory(s, Limits::default());
            let ct = m.client_heap + std::mem::size_of::<Client>() as isize;
            let st = m.server_heap + std::mem::size_of::<Server>() as isize;
            println!(
                "{:<28} {:>10} B {:>10} B {:>10} B {:>10} B {:>12} {:>8} B   {} B allocated; goal <= 4096 B per idle session: client {}, server {}",
                s.case.label(),
                m.client_heap,
                m.server_heap,
                ct,
                st,
                m.allocations,
                m.peak,
                m.allocated,
                if ct <= 4096 { "met" } else { "MISSED" },
                if st <= 4096 { "met" } else { "MISSED" },
            );
        }
        for (s, r) in setups.iter().zip(&recordings) {
            let (up, down) = r.bytes();
            println!(
                "{:<28} bytes exchanged: {up} up, {down} down, {} streams, {} round trips, {} rxml tokens",
                s.case.label(),
                r.up.len() + r.down.len(),
                r.client_writes,
                r.tokenise()
            );
        }
    }

    if !list_mode {
        breakdown(&setups[0], &recordings[0]);
        buffer_policies(&setups[0]);
    }

    if test_mode {
        for s in &setups {
            let (cc, sc) = s.configs();
            s.negotiate(cc, sc, None);
        }
        println!("negotiation bench: every case negotiates");
        return;
    }

    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group("negotiation");
        g.throughput(Throughput::Elements(1));
        for (s, r) in setups.iter().zip(&recordings) {
            g.bench_function(format!("{}/baseline-rxml-tokenise", s.case.label()), |b| {
                b.iter(|| black_box(r.tokenise()))
            });
            g.bench_function(s.case.label(), |b| {
                let (cc, sc) = s.configs();
                b.iter(|| black_box(s.negotiate(cc.clone(), sc.clone(), None)))
            });
        }
        g.finish();
    }
    c.final_summary();
    if list_mode {
        return;
    }

    println!();
    println!(
        "== summary (own timing: fastest of 20 interleaved batches of 50 ms each; one thread)"
    );
    println!(
        "{:<28} {:>14} {:>14} {:>14} {:>9}",
        "case", "ns/negotiation", "negotiations/s", "baseline ns", "ratio"
    );
    let mut rates = Vec::new();
    for (s, r) in setups.iter().zip(&recordings) {
        // The configurations are built once, as a host does, and shared
        // (an `Arc` clone per session, timed alone and subtracted).
        let (cc, sc) = s.configs();
        let times = min_ns(
            &mut [
                &mut || {
                    black_box(r.tokenise());
                },
                &mut || {
                    black_box(s.negotiate(cc.clone(), sc.clone(), None));
                },
                &mut || {
                    black_box((cc.clone(), sc.clone()));
                },
            ],
            20,
            Duration::from_millis(50),
        );
        let (base, full, cfg) = (times[0], times[1], times[2]);
        let neg = full - cfg;
        rates.push(1e9 / neg);
        println!(
            "{:<28} {:>14.0} {:>14.0} {:>14.0} {:>8.2}x",
            s.case.label(),
            neg,
            1e9 / neg,
            base,
            neg / base
        );
        if s.case == Case::Plain {
            println!(
                "  goal PLAIN <= 1.5x baseline: {} ({:.2}x); goal >= 30,000/s: {} ({:.0}/s)",
                if neg <= 1.5 * base { "met" } else { "MISSED" },
                neg / base,
                if 1e9 / neg >= 30_000.0 {
                    "met"
                } else {
                    "MISSED"
                },
                1e9 / neg
            );
        }
    }
    let plain = rates[0];
    for (s, rate) in setups.iter().zip(&rates).skip(1) {
        if let Some(base) = s.case.rfc6120() {
            let i = CASES.iter().position(|c| *c == base).expect("a case");
            let r = &recordings[CASES.iter().position(|c| *c == s.case).expect("a case")];
            let b = &recordings[i];
            let ((u, d), (bu, bd)) = (r.bytes(), b.bytes());
            println!(
                "  {} beside {}: {:.1}% of its time per login ({:.0} against {:.0} ns), \
                 {} bytes against {} ({:.1}%), {} round trips against {}",
                s.case.label(),
                base.label(),
                100.0 * rates[i] / rate,
                1e9 / rate,
                1e9 / rates[i],
                u + d,
                bu + bd,
                100.0 * (u + d) as f64 / (bu + bd) as f64,
                r.client_writes,
                b.client_writes
            );
        } else if let Some(base) = s.case.fast_beside() {
            let i = CASES.iter().position(|c| *c == base).expect("a case");
            println!(
                "  goal {} >= 95% of {}: {} ({:.1}%)",
                s.case.label(),
                base.label(),
                if *rate >= 0.95 * rates[i] {
                    "met"
                } else {
                    "MISSED"
                },
                100.0 * rate / rates[i]
            );
            let j = CASES
                .iter()
                .position(|c| *c == Case::TlsSasl2Plain)
                .expect("a case");
            println!(
                "  {} beside {} (a server without FAST, a client without a user agent): {:.1}%",
                s.case.label(),
                CASES[j].label(),
                100.0 * rate / rates[j]
            );
        } else if s.case == Case::TlsSasl2Plain || s.case == Case::TlsFastPlain {
            println!(
                "  {}: {:.1}% of PLAIN without TLS",
                s.case.label(),
                100.0 * rate / plain
            );
        } else if s.case == Case::Scram256Pbkdf2 {
            println!(
                "  {}: {:.1}% of PLAIN (no goal: PBKDF2 is the point)",
                s.case.label(),
                100.0 * rate / plain
            );
        } else {
            println!(
                "  goal {} >= 85% of PLAIN: {} ({:.1}%)",
                s.case.label(),
                if *rate >= 0.85 * plain {
                    "met"
                } else {
                    "MISSED"
                },
                100.0 * rate / plain
            );
        }
    }
}
