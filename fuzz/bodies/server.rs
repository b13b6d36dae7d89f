//! Fuzz body for [`Server`]: arbitrary client bytes against a server whose
//! host answers every request. Shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/server.rs`) and the seed-corpus test
//! (`tests/fuzz_roles.rs`), which also builds the seeds from real sessions
//! with [`server_config`], [`tls_info`] and [`Host`].
//!
//! Input layout: two configuration bytes, then the client's bytes (after
//! `<starttls/>` they stand for the decrypted stream: the simulated TLS
//! hands them back as plaintext).
//!
//! Byte 0, the server:
//! - bits 0-1: 0 no TLS, 1 STARTTLS required, 2 STARTTLS optional,
//!   3 direct TLS;
//! - bits 2-3: the TLS facts ([`tls_info`]): 0 TLS 1.3 with tls-exporter
//!   and tls-server-end-point, 1 TLS 1.2 with tls-unique and
//!   tls-server-end-point, 2 TLS 1.3 without binding data, 3 TLS 1.3 with
//!   tls-server-end-point only;
//! - bit 4: PLAIN and the token mechanisms also without TLS;
//! - bit 5: no RFC 3921 session offered;
//! - bit 6: no XEP-0474 downgrade protection;
//! - bit 7: one failed SASL attempt ends the stream (else three).
//!
//! Byte 1, the driving:
//! - bits 0-2: chunking ([`chunk_sizes`]): 0 one piece, 1 one byte at a
//!   time, 2-7 pseudo-random sizes up to 4, 16, 64, 256, 1024, 4096;
//! - bit 3: seed of those sizes;
//! - bit 4: the host's close (bit 6) is `close_with_error`
//!   (`system-shutdown`), not `close`;
//! - bit 5: slow host: requests are answered only after the next chunk was
//!   fed (or at the end);
//! - bit 6: the host closes the stream once the input is consumed;
//! - bit 7: the clock advances one second before each chunk, firing the
//!   deadlines that come due.
//!
//! At the end the clock runs to every deadline left, so each stream ends
//! closed or waiting for the client.
//!
//! A broken invariant is a panic:
//! - nothing panics;
//! - `feed` returns `Ok` until the host saw `Closed`, then
//!   `Err(UsageError::Closed)`; the host's answers to the requests the
//!   server made are accepted while it is open;
//! - at most one `Error`, followed at once by `Closed`; nothing after
//!   `Closed`, neither events nor bytes;
//! - the output stays within [`OUTPUT_FACTOR`] times the input plus
//!   [`OUTPUT_SLACK`], as do the events in number;
//! - the output is a well-framed stream: UTF-8, each stream header opens a
//!   stream that reads without error, a stream ends with `<proceed/>` or
//!   `<success/>` when the next header restarts it, nothing follows
//!   `</stream:stream>`, and a closed server has sent it;
//! - with a prompt host and a still clock, the server's output and events
//!   do not depend on the chunking (compared with one piece).
//!
//! [`KNOWN_FAULTS`] lists the server's reported faults that the checks
//! tolerate until they are fixed.
//!
//! With [`Flavor::legacy`] (the `legacy` body) the server also offers
//! registration and jabber:iq:auth, and the host answers those requests
//! ([`Host::register`], [`Host::legacy`]). Each input also runs once
//! more with the default limits and no transcript kept, its peak heap
//! within `heap::heap_budget()` (the binary's global allocator must be
//! `heap::Counting`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};
use xmpp_sansio::sasl::scram::derive_server_credentials;
#[cfg(feature = "digest-md5")]
use xmpp_sansio::sasl::DigestMd5Secret;
use xmpp_sansio::sasl::{
    CredentialAnswer, CredentialRequest, SaslCondition, ScramCredentials, ScramHash,
};
use xmpp_sansio::server::{
    BindAnswer, BindRefusal, Server, ServerEvent, ServerSettings, ServerTls,
};
#[cfg(feature = "legacy")]
use xmpp_sansio::server::{
    LegacyAuthAnswer, LegacyAuthMethods, LegacyAuthRequest, RegistrationRequest,
};
#[cfg(feature = "legacy")]
use xmpp_sansio::steps::{iq_auth::ZeroKState, register::RegisterForm, LegacyError};
use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition};
use xmpp_sansio::xml::{Limits, StreamEvent, StreamReader};
use xmpp_sansio::{DeterministicRandom, TlsInfo, UsageError};

/// The one domain served.
pub const DOMAIN: &str = "example.com";
/// The one user, its password and its bearer token.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "pencil";
pub const TOKEN: &str = "token-alice";
/// The stored SCRAM credentials' iteration count (the client's default
/// minimum, so that our own client logs in for the seeds).
pub const SCRAM_ITERATIONS: u32 = 4096;
/// The seed of the server's randomness (stream ids, nonces, resources).
pub const RNG_SEED: u64 = 0x5e12_7e12;
/// A resource the host refuses with `conflict`.
pub const TAKEN_RESOURCE: &str = "taken";

/// Every mechanism of the SASL layer, strongest first.
pub const MECHANISMS: [&str; 13] = [
    "SCRAM-SHA-512-PLUS",
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-512",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "DIGEST-MD5",
    "OAUTHBEARER",
    "PLAIN",
    "X-OAUTH2",
    "X-GOOGLE-TOKEN",
    "EXTERNAL",
    "ANONYMOUS",
];

/// Small limits, so that the fuzzer reaches them.
pub const LIMITS: Limits = Limits {
    max_element_bytes: 2048,
    max_depth: 8,
    max_attributes: 16,
    max_token_bytes: 512,
    // Small elements are mostly markup: 16x their bytes in heap.
    max_element_heap: 16 * 2048,
};

/// Output allowed per input byte...
pub const OUTPUT_FACTOR: usize = 16;
/// ... plus this.
pub const OUTPUT_SLACK: usize = 4096;

/// Generous limits for reading back the server's output.
const READBACK_LIMITS: Limits = Limits {
    max_element_bytes: 1 << 20,
    max_depth: 64,
    max_attributes: 256,
    max_token_bytes: 64 * 1024,
    max_element_heap: 64 << 20,
};

const HEADER_PREFIX: &[u8] = b"<?xml version='1.0'?>";
const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_STREAM: &str = "http://etherx.jabber.org/streams";

/// The TLS facts the simulated TLS hands over (the client's body uses the
/// same ones, so that channel binding verifies).
pub fn tls_info(variant: u8) -> TlsInfo {
    let cb = |kind, byte: u8, len: usize| ChannelBinding::new(kind, vec![byte; len]);
    match variant & 3 {
        0 => TlsInfo {
            version: TlsVersion::Tls13,
            channel_bindings: vec![
                cb(ChannelBindingType::TlsExporter, 0xe1, 32),
                cb(ChannelBindingType::TlsServerEndPoint, 0xe2, 32),
            ],
        },
        1 => TlsInfo {
            version: TlsVersion::Tls12,
            channel_bindings: vec![
                cb(ChannelBindingType::TlsUnique, 0xe3, 12),
                cb(ChannelBindingType::TlsServerEndPoint, 0xe2, 32),
            ],
        },
        2 => TlsInfo::without_binding(TlsVersion::Tls13),
        _ => TlsInfo {
            version: TlsVersion::Tls13,
            channel_bindings: vec![cb(ChannelBindingType::TlsServerEndPoint, 0xe2, 32)],
        },
    }
}

/// The server for configuration byte 0, over direct TLS when it says so.
pub fn new_server(config: u8, flavor: Flavor, now: Instant) -> Server {
    let c = server_config_for(config, flavor).build().unwrap();
    let direct = c.tls == ServerTls::Direct;
    let server = Server::with_random(c, Box::new(DeterministicRandom::new(RNG_SEED)), now);
    if direct {
        server.direct_tls(tls_info(config >> 2))
    } else {
        server
    }
}

/// The server's configuration for configuration byte 0.
pub fn server_config(config: u8) -> ServerSettings {
    let mut c = ServerSettings::new(DOMAIN);
    // Fixed, so runs replay: unknown users' SCRAM salts derive from it.
    c.scram_unknown_user_secret = Some(xmpp_sansio::sasl::SecretBytes::new([7; 32]));
    c.tls = match config & 3 {
        0 => ServerTls::None,
        1 => ServerTls::StartTlsRequired,
        2 => ServerTls::StartTlsOptional,
        _ => ServerTls::Direct,
    };
    c.mechanisms = MECHANISMS.iter().map(|m| m.to_string()).collect();
    c.allow_plain_without_tls = config & 16 != 0;
    c.offer_session = config & 32 == 0;
    c.downgrade_protection = config & 64 == 0;
    c.max_auth_failures = if config & 128 != 0 { 1 } else { 3 };
    c.limits = LIMITS;
    // Held bytes are limited per stream, not per read: a limit below a
    // whole session would make one-piece and chunked feeds differ.
    c.max_held_bytes = 1 << 20;
    c
}

/// What a run drives: the `server` and `client` targets' setup, or the
/// `legacy` target's (in-band registration and jabber:iq:auth on); with
/// the small [`LIMITS`], or the defaults under the heap budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flavor {
    /// Registration and legacy authentication on, in both roles (with
    /// the `legacy` feature; without it, the roles do not know them).
    pub legacy: bool,
    /// The default limits, the driver keeping no transcript, the peak
    /// heap asserted within `heap::heap_budget()`.
    pub heap: bool,
}

/// [`server_config`] for `flavor`: with registration (a form asking
/// for an email too) and every jabber:iq:auth method when legacy (which
/// also admits pre-1.0 streams); the default limits under the heap
/// budget.
pub fn server_config_for(config: u8, flavor: Flavor) -> ServerSettings {
    let mut c = server_config(config);
    #[cfg(feature = "legacy")]
    if flavor.legacy {
        c.register = Some(RegisterForm {
            instructions: Some("Choose a username and password.".into()),
            fields: vec!["email".into()],
            ..RegisterForm::default()
        });
        c.legacy_auth = Some(LegacyAuthMethods::default());
    }
    if flavor.heap {
        c.limits = Limits::default();
    }
    c
}

/// The host's store: one user, with SCRAM credentials for each hash,
/// derived once per process, and a zero-knowledge state (XEP-0078) that
/// steps down with each login.
pub struct Host {
    #[cfg(feature = "legacy")]
    zero_k: ZeroKState,
}

/// The zero-knowledge token of [`USER`] (seed 001's), and the sequence
/// its state starts at.
pub const ZERO_K_TOKEN: &str = "3B2DEEC0";
pub const ZERO_K_SEQUENCE: u32 = 497;

/// The salt stored for [`USER`]'s SCRAM credentials of `hash`.
pub fn salt(hash: ScramHash) -> Vec<u8> {
    format!("salt-{USER}-{hash:?}").into_bytes()
}

fn scram_credentials(hash: ScramHash) -> ScramCredentials {
    static CREDS: OnceLock<[ScramCredentials; 3]> = OnceLock::new();
    let all = CREDS.get_or_init(|| {
        [ScramHash::Sha1, ScramHash::Sha256, ScramHash::Sha512].map(|h| {
            derive_server_credentials(h, PASSWORD, &salt(h), SCRAM_ITERATIONS)
                .expect("SCRAM credentials")
        })
    });
    match hash {
        ScramHash::Sha1 => all[0].clone(),
        ScramHash::Sha256 => all[1].clone(),
        ScramHash::Sha512 => all[2].clone(),
    }
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

impl Host {
    /// A fresh store.
    pub fn new() -> Self {
        Self {
            #[cfg(feature = "legacy")]
            zero_k: ZeroKState::new(PASSWORD, ZERO_K_TOKEN, ZERO_K_SEQUENCE),
        }
    }

    /// The answer to a registration request: [`USER`] exists (409), any
    /// other name is created; changes in a session are accepted.
    #[cfg(feature = "legacy")]
    pub fn register(&self, req: &RegistrationRequest) -> Result<(), LegacyError> {
        match req {
            RegistrationRequest::Create { username, .. } if username == USER => {
                Err(LegacyError::CONFLICT)
            }
            _ => Ok(()),
        }
    }

    /// The answer to a legacy authentication request, as seed 001's
    /// server checks each method; a zero-knowledge login steps the state
    /// down.
    #[cfg(feature = "legacy")]
    pub fn legacy(&mut self, req: &LegacyAuthRequest) -> LegacyAuthAnswer {
        match req {
            LegacyAuthRequest::ZeroKState { username } => {
                LegacyAuthAnswer::ZeroK((username == USER).then(|| self.zero_k.clone()))
            }
            LegacyAuthRequest::Verify {
                username,
                resource,
                credential,
                stream_id,
            } => {
                let ok = username == USER
                    && credential.verify(stream_id, Some(PASSWORD), Some(&mut self.zero_k));
                LegacyAuthAnswer::Verdict(match (ok, resource.as_str()) {
                    (false, _) => Err(LegacyError::NOT_AUTHORIZED),
                    (true, TAKEN_RESOURCE) => Err(LegacyError::CONFLICT),
                    (true, _) => Ok(()),
                })
            }
            _ => LegacyAuthAnswer::Verdict(Err(LegacyError::NOT_AUTHORIZED)),
        }
    }

    /// The answer to a credential request.
    pub fn answer(&self, req: &CredentialRequest) -> CredentialAnswer {
        let verdict = |ok: bool, user: &str| {
            CredentialAnswer::Verdict(if ok {
                Ok(user.to_owned())
            } else {
                Err(SaslCondition::NotAuthorized)
            })
        };
        match req {
            CredentialRequest::Password {
                username, password, ..
            } => verdict(username == USER && password.ct_eq(PASSWORD), USER),
            CredentialRequest::Scram { username, hash, .. } => {
                CredentialAnswer::Scram((username == USER).then(|| scram_credentials(*hash)))
            }
            #[cfg(feature = "digest-md5")]
            CredentialRequest::DigestMd5 { username, .. } => CredentialAnswer::DigestMd5(
                (username == USER).then(|| DigestMd5Secret::Password(PASSWORD.into())),
            ),
            CredentialRequest::Token {
                username, token, ..
            } => {
                let claimed = username.split('@').next().unwrap_or_default();
                let ok = token.ct_eq(TOKEN) && (claimed.is_empty() || claimed == USER);
                verdict(ok, USER)
            }
            CredentialRequest::External { authzid } => {
                let ok = authzid.as_deref().is_none_or(|a| a == USER);
                verdict(ok, USER)
            }
            CredentialRequest::Anonymous { .. } => verdict(true, "anon-1"),
            _ => CredentialAnswer::Verdict(Err(SaslCondition::TemporaryAuthFailure)),
        }
    }

    /// The answer to a bind request.
    pub fn bind(&self, resource: Option<&str>) -> BindAnswer {
        match resource {
            Some(TAKEN_RESOURCE) => BindAnswer::Refuse(BindRefusal::Conflict),
            r => BindAnswer::Accept(
                r.and_then(|r| xmpp_sansio::jid::ResourcePart::new(r).ok())
                    .map(|r| r.into_owned()),
            ),
        }
    }
}

/// Chunk sizes for driving byte `drive` over `len` bytes: they add up to
/// `len`.
pub fn chunk_sizes(drive: u8, len: usize) -> Vec<usize> {
    let max = match drive & 7 {
        0 => return if len == 0 { vec![] } else { vec![len] },
        1 => return vec![1; len],
        k => 1usize << (2 * (k as u32 - 1)),
    };
    let mut state = u64::from((drive >> 3) & 1) + 0x9e37;
    let mut sizes = Vec::new();
    let mut left = len;
    while left > 0 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let n = 1 + (state >> 33) as usize % max;
        let n = n.min(left);
        sizes.push(n);
        left -= n;
    }
    sizes
}

/// A request held by a slow host.
enum Pending {
    Credentials(CredentialRequest),
    Bind(Option<xmpp_sansio::jid::ResourcePart>),
    #[cfg(feature = "legacy")]
    Register(RegistrationRequest),
    #[cfg(feature = "legacy")]
    Legacy(LegacyAuthRequest),
}

/// What one run produced, in a comparable form (for either role).
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Everything the role sent.
    pub output: Vec<u8>,
    /// Its events, rendered (`StartTls` without its bytes, which depend on
    /// the chunking).
    pub events: Vec<String>,
    /// Whether the session got ready.
    pub ready: bool,
    /// Whether the stream failed.
    pub failed: bool,
    /// Whether it is closed.
    pub closed: bool,
}

/// What a driver saw of its role (this server, or the client of
/// `client.rs`), and the invariants both roles keep: `feed` accepted until
/// `Closed` and refused after; at most one `Error`, followed at once by
/// `Closed`; nothing after `Closed`, neither events nor bytes; output and
/// events bounded by the input.
#[derive(Default)]
pub struct Record {
    pub output: Vec<u8>,
    pub events: Vec<String>,
    pub ready: bool,
    pub error_seen: bool,
    pub closed_seen: bool,
    /// Output was drained after `Closed`: nothing more may come.
    closed_drained: bool,
    pub input_len: usize,
    /// Keep no transcript (`output` and `events` stay empty: only
    /// counted), so that the heap measured is the role's.
    pub lean: bool,
    output_len: usize,
    event_count: usize,
}

impl Record {
    /// A record; `lean`: keep no transcript.
    pub fn new(lean: bool) -> Record {
        Record {
            lean,
            ..Record::default()
        }
    }

    /// A chunk of `len` bytes was fed, and `feed` returned `res`.
    pub fn fed(&mut self, len: usize, res: Result<(), UsageError>) {
        self.input_len += len;
        if self.closed_seen {
            assert_eq!(res, Err(UsageError::Closed), "feed after Closed");
        } else {
            assert_eq!(res, Ok(()), "feed refused before Closed");
        }
    }

    /// One `poll_transmit` returned `n` and wrote `out`.
    pub fn transmitted(&mut self, n: usize, out: &[u8]) {
        assert_eq!(n, out.len());
        assert!(
            !(self.closed_drained && n > 0),
            "{n} bytes after Closed: {:?}",
            String::from_utf8_lossy(out)
        );
        self.closed_drained = self.closed_seen;
        self.output_len += n;
        if !self.lean {
            self.output.extend_from_slice(out);
        }
    }

    /// An event came: `closed` when it is `Closed`, `start_tls` when it is
    /// `StartTls` (rendered without its bytes).
    pub fn event(&mut self, ev: &impl std::fmt::Debug, closed: bool, start_tls: bool) {
        assert!(!self.closed_seen, "an event after Closed: {ev:?}");
        if self.error_seen {
            assert!(closed, "Error not followed by Closed: {ev:?}");
        }
        self.event_count += 1;
        if self.lean {
            return;
        }
        self.events.push(if start_tls {
            "StartTls".to_owned()
        } else {
            format!("{ev:?}")
        });
    }

    /// The event was `Error`.
    pub fn error(&mut self) {
        assert!(!self.error_seen, "a second Error");
        self.error_seen = true;
    }

    /// The event was `Closed`; `is_closed`: what the role says.
    pub fn closed(&mut self, is_closed: bool) {
        self.closed_seen = true;
        assert!(is_closed, "Closed but not is_closed()");
    }

    /// The event was `Ready`.
    pub fn ready(&mut self) {
        assert!(!self.ready, "Ready twice");
        self.ready = true;
    }

    /// After a round of output and events: both bounded, and the role
    /// closed (`is_closed`) exactly when it said `Closed`.
    pub fn check_round(&self, is_closed: bool) {
        assert!(
            self.event_count <= self.input_len + 64,
            "{} events from {} bytes",
            self.event_count,
            self.input_len
        );
        assert!(
            self.output_len <= OUTPUT_FACTOR * self.input_len + OUTPUT_SLACK,
            "{} output bytes from {} input bytes",
            self.output_len,
            self.input_len
        );
        assert_eq!(is_closed, self.closed_seen);
    }

    /// The run's outcome.
    pub fn outcome(self) -> Outcome {
        Outcome {
            output: self.output,
            events: self.events,
            ready: self.ready,
            failed: self.error_seen,
            closed: self.closed_seen,
        }
    }
}

/// What the drivers use of a role's state machine (this server, or the
/// client of `client.rs`): the calls both have alike.
pub trait Role {
    type Event: std::fmt::Debug;
    fn feed(&mut self, now: Instant, data: &[u8]) -> Result<(), UsageError>;
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize;
    fn poll_event(&mut self) -> Option<Self::Event>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    /// Whether `ev` is `Closed`, and whether it is `StartTls`.
    fn kind(ev: &Self::Event) -> (bool, bool);
}

/// `impl Role` for a role type (its inherent methods have the trait's
/// names) and its event type; `client.rs` uses it for `Client`.
macro_rules! impl_role {
    ($role:ident, $event:ident) => {
        impl Role for $role {
            type Event = $event;
            fn feed(&mut self, now: Instant, data: &[u8]) -> Result<(), UsageError> {
                $role::feed(self, now, data)
            }
            fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
                $role::poll_transmit(self, out)
            }
            fn poll_event(&mut self) -> Option<$event> {
                $role::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                $role::poll_timeout(self)
            }
            fn handle_timeout(&mut self, now: Instant) {
                $role::handle_timeout(self, now)
            }
            fn kind(ev: &$event) -> (bool, bool) {
                (
                    matches!(ev, $event::Closed),
                    matches!(ev, $event::StartTls { .. }),
                )
            }
        }
    };
}

impl_role!(Server, ServerEvent);

impl Record {
    /// One `poll_transmit` of `role`, checked and recorded; whether it gave
    /// bytes.
    pub fn transmit<R: Role>(&mut self, role: &mut R) -> bool {
        let mut out = Vec::new();
        let n = role.poll_transmit(&mut out);
        self.transmitted(n, &out);
        n > 0
    }

    /// The next event of `role`, checked and recorded.
    pub fn next_event<R: Role>(&mut self, role: &mut R) -> Option<R::Event> {
        let ev = role.poll_event()?;
        let (closed, start_tls) = R::kind(&ev);
        self.event(&ev, closed, start_tls);
        Some(ev)
    }
}

/// What the drivers of both roles do alike with the input and the clock;
/// each implements the role's own steps.
pub trait Driven {
    type Role: Role;
    /// The role, the simulated clock, and the record.
    fn parts(&mut self) -> (&mut Self::Role, &mut Instant, &mut Record);
    /// After each chunk: drain output and events (and act as the host).
    fn after_chunk(&mut self);
    /// Drains output and events.
    fn drain(&mut self);

    /// Feeds one chunk.
    fn feed(&mut self, chunk: &[u8]) {
        let (role, now, record) = self.parts();
        let res = role.feed(*now, chunk);
        record.fed(chunk.len(), res);
    }

    /// Advances the clock by `by`, handling the deadlines that come due.
    fn tick(&mut self, by: Duration) {
        let (role, now, _) = self.parts();
        *now += by;
        if role.poll_timeout().is_some_and(|t| t <= *now) {
            role.handle_timeout(*now);
            self.drain();
        }
    }

    /// Feeds `input` in the chunks of `drive` ([`chunk_sizes`]), with the
    /// clock advancing one second before each when `drive` bit 7 is set.
    fn feed_chunks(&mut self, drive: u8, input: &[u8]) {
        let clock = drive & 128 != 0;
        let mut offset = 0;
        for n in chunk_sizes(drive, input.len()) {
            if clock {
                self.tick(Duration::from_secs(1));
            }
            self.feed(&input[offset..offset + n]);
            offset += n;
            self.after_chunk();
        }
    }

    /// Runs up to `rounds` deadlines; `true` when none is left.
    fn run_out_the_clock(&mut self, rounds: usize) -> bool {
        for _ in 0..rounds {
            let (role, now, record) = self.parts();
            let Some(t) = role.poll_timeout() else {
                return true;
            };
            assert!(!record.closed_seen, "a deadline after Closed");
            *now = (*now).max(t);
            role.handle_timeout(*now);
            self.drain();
        }
        false
    }
}

/// Checks that a chunked run gave what the run in one piece gave.
pub fn assert_chunking_invariant(chunked: &Outcome, whole: &Outcome) {
    assert_eq!(chunked.output, whole.output, "chunked vs one piece: output");
    assert_eq!(chunked.events, whole.events, "chunked vs one piece: events");
}

struct Driver {
    server: Server,
    host: Host,
    now: Instant,
    tls: TlsInfo,
    slow: bool,
    tolerate: Tolerate,
    pending: Vec<Pending>,
    record: Record,
}

impl Driver {
    fn new(config: u8, slow: bool, tolerate: Tolerate, flavor: Flavor) -> Driver {
        let now = Instant::now();
        Driver {
            server: new_server(config, flavor, now),
            host: Host::new(),
            now,
            tls: tls_info(config >> 2),
            slow,
            tolerate,
            pending: Vec::new(),
            record: Record::new(flavor.heap),
        }
    }

    /// The host answers a request at once; `Err` when the server refused
    /// the answer.
    fn answer_now(&mut self, p: Pending) -> Result<(), UsageError> {
        let now = self.now;
        match p {
            Pending::Credentials(req) => {
                let a = self.host.answer(&req);
                self.server.answer_credentials(now, a)
            }
            Pending::Bind(resource) => {
                let a = self.host.bind(resource.as_ref().map(|r| r.as_str()));
                self.server.answer_bind(now, a)
            }
            #[cfg(feature = "legacy")]
            Pending::Register(req) => {
                let a = self.host.register(&req);
                self.server.answer_register(now, a)
            }
            #[cfg(feature = "legacy")]
            Pending::Legacy(req) => {
                let a = self.host.legacy(&req);
                self.server.answer_legacy_auth(now, a)
            }
        }
    }

    /// A request came: answered at once, or held by a slow host.
    fn request(&mut self, p: Pending) {
        if self.slow {
            return self.pending.push(p);
        }
        let open = !self.server.is_closed();
        let res = self.answer_now(p);
        // Answers are taken while the stream is open, refused after.
        assert_eq!(res.is_ok(), open, "answer to a request refused: {res:?}");
    }

    /// The slow host's answers to what it was asked before.
    fn answer_pending(&mut self) {
        if self.tolerate.late_answers && self.server.is_closed() {
            self.pending.clear();
            return;
        }
        for p in std::mem::take(&mut self.pending) {
            let res = self.answer_now(p);
            // Late, the stream may have failed meanwhile (a deadline, too
            // much held input): the answer may then be refused, never
            // acted on (checked by the event and output invariants).
            if !self.server.is_closed() && !self.record.closed_seen {
                assert_eq!(res, Ok(()), "a late answer to a pending request refused");
            }
        }
    }

    /// Once the input is consumed, a ready server sends the client a
    /// stanza (then, not at `Ready`, so that what it does never depends
    /// on the chunking).
    fn send_when_ready(&mut self) {
        if let Some(jid) = self.server.jid().cloned() {
            let msg = format!(
                "<message xmlns='jabber:client' to='{jid}' from='{DOMAIN}'><body>hi</body></message>"
            );
            send_parsed(&mut self.server, &msg);
            self.drain();
        }
    }
}

impl Driven for Driver {
    type Role = Server;

    fn parts(&mut self) -> (&mut Server, &mut Instant, &mut Record) {
        (&mut self.server, &mut self.now, &mut self.record)
    }

    /// Drains output and events, acting on the events as the host.
    fn drain(&mut self) {
        loop {
            let mut busy = self.record.transmit(&mut self.server);
            let mut restart = None;
            while let Some(ev) = self.record.next_event(&mut self.server) {
                busy = true;
                match ev {
                    ServerEvent::Error(_) => self.record.error(),
                    ServerEvent::Closed => self.record.closed(self.server.is_closed()),
                    ServerEvent::StartTls { pending } => {
                        assert!(restart.is_none(), "a second StartTls at once");
                        restart = Some(pending);
                    }
                    ServerEvent::Credentials(req) => self.request(Pending::Credentials(req)),
                    ServerEvent::Bind { resource, .. } => self.request(Pending::Bind(resource)),
                    #[cfg(feature = "legacy")]
                    ServerEvent::Register(req) => self.request(Pending::Register(req)),
                    #[cfg(feature = "legacy")]
                    ServerEvent::LegacyAuth(req) => self.request(Pending::Legacy(req)),
                    ServerEvent::Ready { jid } => {
                        self.record.ready();
                        // Unless an in-session registration request that
                        // followed is with the host: `jid()` and
                        // `is_ready()` say nothing meanwhile.
                        if let Some(now_jid) = self.server.jid() {
                            assert_eq!(*now_jid, jid);
                        }
                    }
                    ServerEvent::Stanza(el) => {
                        assert!(self.record.ready, "a stanza before Ready");
                        assert!(el.attr("from").is_some(), "an unstamped stanza");
                    }
                    _ => {}
                }
            }
            self.record.check_round(self.server.is_closed());
            let Some(pending) = restart else {
                if busy {
                    continue;
                }
                return;
            };
            // The simulated TLS: up at once; the bytes that followed
            // `<starttls/>` are its plaintext.
            if self.record.closed_seen {
                continue;
            }
            let res = self.server.tls_established(self.now, self.tls.clone());
            assert_eq!(res, Ok(()), "tls_established refused after StartTls");
            if !pending.is_empty() {
                self.record.input_len -= pending.len();
                self.feed(&pending);
            }
        }
    }

    fn after_chunk(&mut self) {
        self.answer_pending();
        self.drain();
    }
}

/// Sends a stanza parsed from `xml` (the fuzz crate has no minidom of its
/// own): accepted while ready and open.
fn send_parsed(server: &mut Server, xml: &str) {
    let mut reader = StreamReader::default();
    let doc = format!("<stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAM}'>{xml}");
    let mut input = doc.as_bytes();
    let _header = reader.read(&mut input);
    if let Ok(Some(StreamEvent::Element(el))) = reader.read(&mut input) {
        let res = server.send(&el);
        if server.error().is_none() && !server.is_closed() {
            assert_eq!(res, Ok(()), "send refused once ready");
        }
    }
}

/// Known faults of the server that the checks tolerate, so that the
/// fuzzer gets past them; each was reported, and is turned off once fixed
/// (`tests/fuzz_roles.rs` `fixed_faults_are_still_caught` checks that
/// the strict checks still catch the ones fixed).
#[derive(Debug, Clone, Copy)]
pub struct Tolerate {
    /// The host's `close` or `close_with_error` before the client's
    /// header was read (the first one, or the one after a restart) sends
    /// `</stream:stream>` (after the stream error) with no stream header
    /// of the server's own: RFC 6120 4.9.1.1 wants the header first (as
    /// the server now does for the errors it finds itself).
    pub headerless_close: bool,
    /// `answer_credentials` and `answer_bind` act on a late answer after
    /// the stream failed meanwhile (a deadline, too much held input):
    /// `<success/>` after `</stream:stream>`, `Authenticated` or `Ready`
    /// after `Closed`. Tolerated by a host that does not answer once
    /// `is_closed()`.
    pub late_answers: bool,
    /// A stream that fails (a deadline) or that the host closes while TLS
    /// is pending, after `<proceed/>` went out and before
    /// `tls_established`, sends its `<stream:error/>` and
    /// `</stream:stream>` in the clear where the client expects the TLS
    /// handshake (RFC 6120 5.4.3.3: nothing but TLS follows `<proceed/>`).
    /// Only a host that waits for TLS while the clock runs shows it (the
    /// `misbehaving_host` body).
    pub close_after_proceed: bool,
}

/// What the fuzz target tolerates.
pub const KNOWN_FAULTS: Tolerate = Tolerate {
    headerless_close: false,
    late_answers: false,
    close_after_proceed: false,
};

/// How the output of a role is framed.
pub struct Framing<'a> {
    /// The elements after which the next stream header restarts the
    /// stream: (name, namespace).
    pub restart_after: &'a [(&'a str, &'a str)],
    /// Whether nothing may follow a restart element on its stream (the
    /// server: it waits for the client's new header).
    pub quiet_after_restart: bool,
    /// See [`Tolerate::headerless_close`].
    pub tolerate_headerless_close: bool,
    /// See [`Tolerate::close_after_proceed`].
    pub tolerate_close_after_proceed: bool,
}

/// The server's framing.
pub fn server_framing(tolerate: Tolerate) -> Framing<'static> {
    Framing {
        restart_after: &[("proceed", NS_TLS), ("success", NS_SASL)],
        quiet_after_restart: true,
        tolerate_headerless_close: tolerate.headerless_close,
        tolerate_close_after_proceed: tolerate.close_after_proceed,
    }
}

/// Checks that `output` is a well-framed sequence of streams: UTF-8;
/// split at each stream header (the writer starts each with an XML
/// declaration, which cannot occur escaped inside content), each stream
/// reads without error and ends at an element boundary; one that is
/// followed by another ends with a restart element; nothing follows
/// `</stream:stream>`; `closed` means `</stream:stream>` was sent.
pub fn check_framing(output: &[u8], closed: bool, framing: &Framing) {
    if output.is_empty() {
        return;
    }
    let text = std::str::from_utf8(output).unwrap_or_else(|e| panic!("output not UTF-8: {e}"));
    let prefix = std::str::from_utf8(HEADER_PREFIX).expect("ASCII");
    let mut bounds: Vec<usize> = text.match_indices(prefix).map(|(at, _)| at).collect();
    let headerless = bounds.first() != Some(&0);
    if headerless {
        assert!(
            framing.tolerate_headerless_close,
            "output before the first stream header: {text:?}"
        );
        bounds.insert(0, 0);
    }
    bounds.push(text.len());
    let streams = bounds.len() - 1;
    for (k, w) in bounds.windows(2).enumerate() {
        let segment = &text[w[0]..w[1]];
        let doc = if k == 0 && headerless {
            // Read the headerless bytes inside a synthetic header.
            format!("<stream:stream xmlns='jabber:client' xmlns:stream='{NS_STREAM}'>{segment}")
        } else {
            segment.to_owned()
        };
        let end = check_stream(&doc, framing, k == 0 && headerless).unwrap_or_else(|e| {
            panic!(
                "output stream {k}: {e}
{text:?}"
            )
        });
        if k + 1 < streams {
            assert!(
                end == StreamEnd::Restart,
                "output stream {k} followed by a header, ended {end:?}:\n{text:?}"
            );
        } else if closed {
            // After `<proceed/>` (the client: `<starttls/>` answered so)
            // only TLS may follow: a stream that ends there says nothing.
            let tls_next = end == StreamEnd::Restart && text.trim_end().ends_with("xmpp-tls'/>");
            assert!(
                end == StreamEnd::Closed || tls_next,
                "closed, but the output ended {end:?}: {text:?}"
            );
        }
    }
}

/// How one stream of output ended.
#[derive(Debug, PartialEq, Eq)]
enum StreamEnd {
    /// Open.
    Open,
    /// With a restart element, nothing after.
    Restart,
    /// With `</stream:stream>`.
    Closed,
}

fn check_stream(doc: &str, framing: &Framing, headerless: bool) -> Result<StreamEnd, String> {
    let mut reader = StreamReader::new(READBACK_LIMITS);
    let mut rest = doc.as_bytes();
    // After a restart element (or in headerless bytes) the server has no
    // stream open: at most a tolerated error and close may come.
    let mut after_restart = headerless;
    let mut after_proceed = false;
    let mut end = StreamEnd::Open;
    loop {
        let ev = match reader.read(&mut rest) {
            Ok(Some(ev)) => ev,
            Ok(None) => break,
            Err(e) => return Err(format!("does not read: {e:?}")),
        };
        if end == StreamEnd::Closed {
            return Err(format!("{ev:?} after </stream:stream>"));
        }
        let restart = match &ev {
            // Only ever first: the output was split at the headers.
            StreamEvent::Header(_) => continue,
            StreamEvent::Element(el) => {
                let (name, ns) = (el.name(), el.ns());
                framing
                    .restart_after
                    .iter()
                    .any(|(n, s)| *n == name && *s == ns)
            }
            StreamEvent::StreamError(_) | StreamEvent::Closed => false,
        };
        if after_restart && framing.quiet_after_restart {
            let tolerated = (framing.tolerate_headerless_close
                || (after_proceed && framing.tolerate_close_after_proceed))
                && matches!(ev, StreamEvent::StreamError(_) | StreamEvent::Closed);
            if !tolerated {
                return Err(format!("{ev:?} on a stream the server has not opened"));
            }
        }
        match ev {
            StreamEvent::Closed => end = StreamEnd::Closed,
            StreamEvent::Element(el) if restart => {
                end = StreamEnd::Restart;
                after_restart = true;
                after_proceed = el.name() == "proceed";
            }
            _ => end = StreamEnd::Open,
        }
    }
    if end != StreamEnd::Closed && !reader.at_boundary() {
        return Err("ends inside an element".into());
    }
    Ok(end)
}

/// Runs the input under its configuration bytes and returns the outcome
/// (the `server` target: registration and legacy authentication off).
pub fn run_outcome(data: &[u8]) -> Option<Outcome> {
    run_outcome_with(data, KNOWN_FAULTS, false)
}

/// [`run_outcome`], tolerating only `tolerate`, `legacy` or not: the run
/// with the small limits and its checks, the run in one piece when the
/// chunking must not matter, and the run with the default limits within
/// the heap budget.
pub fn run_outcome_with(data: &[u8], tolerate: Tolerate, legacy: bool) -> Option<Outcome> {
    let [config, drive, input @ ..] = data else {
        return None;
    };
    let checked = Flavor {
        legacy,
        heap: false,
    };
    let outcome = drive_server(*config, *drive, input, tolerate, checked);
    let prompt = *drive & (32 | 128) == 0;
    if prompt && *drive & 7 != 0 {
        let whole = drive_server(*config, *drive & !7, input, tolerate, checked);
        assert_chunking_invariant(&outcome, &whole);
    }
    let heap = Flavor { legacy, heap: true };
    crate::heap::within_budget("server", || {
        drive_server(*config, *drive, input, tolerate, heap)
    });
    Some(outcome)
}

fn drive_server(
    config: u8,
    drive: u8,
    input: &[u8],
    tolerate: Tolerate,
    flavor: Flavor,
) -> Outcome {
    let slow = drive & 32 != 0;
    let close = drive & 64 != 0;
    let mut d = Driver::new(config, slow, tolerate, flavor);
    d.drain();
    d.feed_chunks(drive, input);
    // A late answer can let the server read held bytes, which may ask
    // again (at most once per held element).
    while !d.pending.is_empty() {
        d.answer_pending();
        d.drain();
    }
    d.send_when_ready();
    if close {
        if drive & 16 != 0 {
            let error = StreamError::new(StreamErrorCondition::SystemShutdown);
            assert_eq!(d.server.close_with_error(error), Ok(()), "a bare condition");
        } else {
            d.server.close(d.now);
        }
        d.drain();
    }
    // Bounded: each deadline ends something.
    assert!(d.run_out_the_clock(8), "deadlines keep coming");
    assert!(d.pending.is_empty());
    if !flavor.heap {
        check_framing(
            &d.record.output,
            d.record.closed_seen,
            &server_framing(tolerate),
        );
    }
    d.record.outcome()
}

/// The fuzz body.
pub fn run(data: &[u8]) {
    let _ = run_outcome(data);
}
