//! Fuzz body for [`Client`]: arbitrary server bytes, the mirror of
//! `server.rs` (whose account, TLS facts, chunking and framing check it
//! shares). Shared by the cargo-fuzz target (`fuzz/fuzz_targets/client.rs`)
//! and the seed-corpus test (`tests/fuzz_roles.rs`), which builds seeds
//! from our server in memory with [`client_config`] and from the Prosody
//! captures.
//!
//! Input layout: two configuration bytes, then the server's bytes (after
//! `<proceed/>` they stand for the decrypted stream: the simulated TLS
//! hands them back as plaintext).
//!
//! Byte 0, the client:
//! - bits 0-1: 0 no TLS, 1 STARTTLS required, 2 STARTTLS if offered,
//!   3 direct TLS;
//! - bits 2-5: the mechanism and credentials ([`CHOICES`]);
//! - bits 6-7: the TLS facts (`server_body::tls_info`).
//!
//! Byte 1, the driving:
//! - bits 0-2 and 3: chunking and its seed, as for the server;
//! - bit 4: (`legacy` target) the registration is an enquiry for the
//!   form, not a creation followed by a login;
//! - bit 5: SCRAM keys cached for the server body's salt and iteration
//!   count (they skip PBKDF2 when the server's match);
//! - bit 6: the host closes the stream once the input is consumed;
//! - bit 7: the clock advances one second before each chunk.
//!
//! At the end the clock runs to the deadlines left (at most a few: a ready
//! client's keepalives recur).
//!
//! Each input also runs once more with the default limits and no
//! transcript kept, its peak heap within `heap::heap_budget()`.
//!
//! Inputs whose base64 text carries a SCRAM iteration count above
//! [`MAX_FUZZ_ITERATIONS`] are skipped: the client would spend up to
//! 10 million PBKDF2 rounds on them, which is what the server asked for,
//! not a bug, and it stalls the fuzzer.
//!
//! A broken invariant is a panic: the same as for the server (`feed`
//! after `Closed`, one `Error` then `Closed`, nothing after it, bounded
//! output and events, a well-framed output, chunking invariance with a
//! still clock), and `tls_established` is accepted after each `StartTls`.

#[allow(dead_code, clippy::duplicate_mod)]
#[macro_use]
#[path = "server.rs"]
mod server_body;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use server_body::Outcome;
use server_body::{
    assert_chunking_invariant, check_framing, salt, tls_info, Driven, Flavor, Framing, Record,
    Role, DOMAIN, PASSWORD, SCRAM_ITERATIONS, TOKEN, USER,
};
use xmpp_sansio::client::{
    Client, ClientEvent, ClientSettings, Credentials, TlsInfo, TlsMode, UsageError,
};
#[cfg(feature = "legacy")]
use xmpp_sansio::client::{LegacyAuthPolicy, Registration};
use xmpp_sansio::sasl::scram::{ScramClientKeys, ALL_HASHES};
use xmpp_sansio::sasl::{ScramHash, Secret};
use xmpp_sansio::xml::Limits;
use xmpp_sansio::xml::{StreamEvent, StreamReader};
use xmpp_sansio::DeterministicRandom;

/// The seed of the client's randomness (nonces).
pub const RNG_SEED: u64 = 0xc1_1e47;
/// The resource asked for.
pub const RESOURCE: &str = "fuzz";
/// SCRAM iteration counts above this are not fuzzed (see above).
pub const MAX_FUZZ_ITERATIONS: u64 = 65_536;

/// What the client authenticates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creds {
    Password,
    Token,
    Certificate,
    Anonymous,
}

/// Bits 2-5 of byte 0: the only mechanism allowed (`None`: the policy
/// chooses), and the credentials.
pub const CHOICES: [(Option<&str>, Creds); 16] = [
    (None, Creds::Password),
    (Some("PLAIN"), Creds::Password),
    (Some("SCRAM-SHA-1"), Creds::Password),
    (Some("SCRAM-SHA-256"), Creds::Password),
    (Some("SCRAM-SHA-512"), Creds::Password),
    (Some("SCRAM-SHA-1-PLUS"), Creds::Password),
    (Some("SCRAM-SHA-256-PLUS"), Creds::Password),
    (Some("SCRAM-SHA-512-PLUS"), Creds::Password),
    (Some("DIGEST-MD5"), Creds::Password),
    (Some("ANONYMOUS"), Creds::Anonymous),
    (Some("EXTERNAL"), Creds::Certificate),
    (Some("OAUTHBEARER"), Creds::Token),
    (Some("X-OAUTH2"), Creds::Token),
    (Some("X-GOOGLE-TOKEN"), Creds::Token),
    (None, Creds::Token),
    (None, Creds::Anonymous),
];

/// The index in [`CHOICES`] of a mechanism, for building byte 0.
pub fn choice_of(mechanism: &str) -> u8 {
    CHOICES
        .iter()
        .position(|(m, _)| *m == Some(mechanism))
        .unwrap_or_else(|| panic!("no choice for {mechanism}")) as u8
}

fn cached_keys(hash: ScramHash) -> ScramClientKeys {
    static KEYS: OnceLock<Vec<ScramClientKeys>> = OnceLock::new();
    let all = KEYS.get_or_init(|| {
        ALL_HASHES
            .iter()
            .map(|&h| {
                ScramClientKeys::derive(h, PASSWORD, &salt(h), SCRAM_ITERATIONS)
                    .expect("SCRAM keys")
            })
            .collect()
    });
    let index = ALL_HASHES.iter().position(|&h| h == hash).expect("a hash");
    all[index].clone()
}

/// The client's configuration for byte 0; `cached`: SCRAM keys cached for
/// the hash of the chosen mechanism (SHA-512 when the policy chooses).
pub fn client_config(config: u8, cached: bool) -> ClientSettings {
    let (only, creds) = CHOICES[usize::from((config >> 2) & 15)];
    let (jid, credentials) = match creds {
        Creds::Password => {
            let hash = match only {
                Some(m) if m.starts_with("SCRAM-SHA-1") => ScramHash::Sha1,
                Some(m) if m.starts_with("SCRAM-SHA-256") => ScramHash::Sha256,
                _ => ScramHash::Sha512,
            };
            let cached = cached.then(|| cached_keys(hash));
            (
                format!("{USER}@{DOMAIN}"),
                Credentials::Password {
                    password: Secret::new(PASSWORD),
                    cached,
                },
            )
        }
        Creds::Token => (
            format!("{USER}@{DOMAIN}"),
            Credentials::Token(Secret::new(TOKEN)),
        ),
        Creds::Certificate => (DOMAIN.to_owned(), Credentials::ClientCertificate),
        Creds::Anonymous => (DOMAIN.to_owned(), Credentials::Anonymous),
    };
    let mut c = ClientSettings::new(jid, credentials);
    c.tls = match config & 3 {
        0 => TlsMode::None,
        1 => TlsMode::StartTlsRequired,
        2 => TlsMode::StartTlsIfOffered,
        _ => TlsMode::Direct,
    };
    c.policy.only = only.map(|m| vec![m.to_owned()]);
    // Bit 6: SASL2 when offered (the seeds of RFC 6120 captures have it
    // clear).
    c.sasl2 = if config & 0x40 != 0 {
        xmpp_sansio::sasl2::Sasl2Policy::Auto
    } else {
        xmpp_sansio::sasl2::Sasl2Policy::Never
    };
    c.policy.allow_plain_without_tls = true;
    #[cfg(feature = "digest-md5")]
    {
        c.policy.enable_digest_md5 = true;
    }
    #[cfg(feature = "google")]
    {
        c.policy.enable_x_google_token = true;
    }
    c.policy.enable_anonymous = true;
    c.resource = Some(RESOURCE.into());
    c.limits = server_body::LIMITS;
    c.keepalive = Some(Duration::from_secs(20));
    c
}

/// The name the `legacy` client registers (another than [`USER`], so
/// that our server's host creates it).
pub const NEW_USER: &str = "newbie";
/// Zero-knowledge sequences above this are not fuzzed (see
/// [`huge_sequence`]).
pub const MAX_FUZZ_SEQUENCE: u64 = 99_999;

/// [`client_config`] for the `legacy` target when `legacy`: jabber:iq:auth
/// allowed, plaintext too, and a registration first: with `enquiry`, by
/// asking for the form only, else registering [`NEW_USER`] and logging
/// in afterwards. Without the `legacy` feature, `legacy` and `enquiry`
/// change nothing: the client does not know those protocols.
#[cfg_attr(not(feature = "legacy"), allow(unused_variables))]
pub fn client_config_for(config: u8, cached: bool, legacy: bool, enquiry: bool) -> ClientSettings {
    #[cfg_attr(not(feature = "legacy"), allow(unused_mut))]
    let mut c = client_config(config, cached);
    #[cfg(feature = "legacy")]
    if legacy {
        c.legacy_auth = LegacyAuthPolicy {
            enabled: true,
            allow_plaintext_without_tls: true,
        };
        c.register = Some(if enquiry {
            Registration {
                fields: vec![],
                then_login: false,
            }
        } else {
            Registration {
                fields: [
                    ("username", NEW_USER),
                    ("password", "spinach"),
                    ("email", "newbie@example.org"),
                ]
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .to_vec(),
                then_login: true,
            }
        });
    }
    c
}

/// The client's framing: it restarts after `<starttls/>`, and after the
/// SASL element that ended the exchange.
pub const CLIENT_FRAMING: Framing<'static> = Framing {
    restart_after: &[
        ("starttls", "urn:ietf:params:xml:ns:xmpp-tls"),
        ("auth", "urn:ietf:params:xml:ns:xmpp-sasl"),
        ("response", "urn:ietf:params:xml:ns:xmpp-sasl"),
    ],
    quiet_after_restart: false,
    tolerate_headerless_close: false,
    tolerate_close_after_proceed: false,
};

struct Driver {
    client: Client,
    now: Instant,
    tls: TlsInfo,
    authenticated: bool,
    record: Record,
}

impl Driver {
    fn new(config: u8, drive: u8, flavor: Flavor) -> Driver {
        let now = Instant::now();
        let (cached, enquiry) = (drive & 32 != 0, drive & 16 != 0);
        let mut c = client_config_for(config, cached, flavor.legacy, enquiry);
        if flavor.heap {
            c.limits = Limits::default();
        }
        let direct = c.tls == TlsMode::Direct;
        let mut client = Client::with_random(
            c.build().unwrap(),
            Box::new(DeterministicRandom::new(RNG_SEED)),
            now,
        );
        if direct {
            client = client.direct_tls(tls_info(config >> 6));
        }
        Driver {
            client,
            now,
            tls: tls_info(config >> 6),
            authenticated: false,
            record: Record::new(flavor.heap),
        }
    }

    /// Once the input is consumed, a ready client sends a stanza (then,
    /// not at `Ready`, so that what it does never depends on the
    /// chunking).
    fn send_when_ready(&mut self) {
        if let Some(jid) = self.client.jid().map(|j| j.to_string()) {
            send_parsed(&mut self.client, &jid);
            self.drain();
        }
    }
}

impl Driven for Driver {
    type Role = Client;

    fn parts(&mut self) -> (&mut Client, &mut Instant, &mut Record) {
        (&mut self.client, &mut self.now, &mut self.record)
    }

    fn drain(&mut self) {
        loop {
            let mut busy = self.record.transmit(&mut self.client);
            let mut restart = None;
            while let Some(ev) = self.record.next_event(&mut self.client) {
                busy = true;
                match ev {
                    ClientEvent::Error(e) => {
                        self.record.error();
                        assert_eq!(self.client.error(), Some(&e));
                    }
                    ClientEvent::Closed => self.record.closed(self.client.is_closed()),
                    ClientEvent::StartTls { pending } => {
                        assert!(restart.is_none(), "a second StartTls at once");
                        restart = Some(pending);
                    }
                    ClientEvent::Authenticated { .. } => {
                        assert!(!self.authenticated, "Authenticated twice");
                        self.authenticated = true;
                    }
                    ClientEvent::Ready { jid } => {
                        self.record.ready();
                        assert!(self.authenticated, "Ready before Authenticated");
                        assert_eq!(self.client.jid(), Some(&jid));
                    }
                    ClientEvent::Stanza(_) => assert!(self.record.ready, "a stanza before Ready"),
                    _ => {}
                }
            }
            self.record.check_round(self.client.is_closed());
            let Some(pending) = restart else {
                if busy {
                    continue;
                }
                return;
            };
            if self.record.closed_seen {
                continue;
            }
            let res = self.client.tls_established(self.now, self.tls.clone());
            assert_eq!(res, Ok(()), "tls_established refused after StartTls");
            assert!(self.client.is_encrypted());
            if !pending.is_empty() {
                self.record.input_len -= pending.len();
                self.feed(&pending);
            }
        }
    }

    fn after_chunk(&mut self) {
        self.drain();
    }
}

impl_role!(Client, ClientEvent);

/// Sends a message to `jid` (parsed: the fuzz crate has no minidom of its
/// own): accepted while ready and open.
fn send_parsed(client: &mut Client, jid: &str) {
    let doc = format!(
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>\
         <message to='{jid}' type='chat'><body>hi</body></message>"
    );
    let mut reader = StreamReader::default();
    let mut input = doc.as_bytes();
    let _header = reader.read(&mut input);
    if let Ok(Some(StreamEvent::Element(el))) = reader.read(&mut input) {
        let res = client.send(&el);
        if client.error().is_none() && !client.is_closed() {
            assert_eq!(res, Ok(()), "send refused once ready");
        }
    }
}

/// Whether some base64 text of `input` decodes to a SCRAM message with an
/// iteration count above [`MAX_FUZZ_ITERATIONS`].
pub fn huge_iterations(input: &[u8]) -> bool {
    input
        .split(|&b| b == b'<' || b == b'>')
        .filter(|t| t.len() >= 8)
        .filter_map(decode_base64)
        .any(|msg| {
            msg.split(|&b| b == b',').any(|kv| {
                kv.strip_prefix(b"i=").is_some_and(|digits| {
                    let digits: Vec<u8> = digits
                        .iter()
                        .copied()
                        .take_while(u8::is_ascii_digit)
                        .collect();
                    digits.len() > 6
                        || std::str::from_utf8(&digits)
                            .ok()
                            .and_then(|d| d.parse::<u64>().ok())
                            .is_some_and(|n| n > MAX_FUZZ_ITERATIONS)
                })
            })
        })
}

/// Lenient base64 (whitespace skipped, padding optional); `None` on any
/// other byte.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in text {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Whether the text of some element named `sequence` (the server's
/// zero-knowledge sequence, XEP-0078) has more digits than
/// [`MAX_FUZZ_SEQUENCE`] or a character reference: the client hashes
/// that many times (issue 11, finding 7: uncapped), which stalls the
/// fuzzer without telling anything new. Conservative: the text up to the
/// next `</` counts, CDATA markup included.
pub fn huge_sequence(input: &[u8]) -> bool {
    let max_digits = MAX_FUZZ_SEQUENCE.to_string().len();
    input
        .windows(8)
        .enumerate()
        .filter(|(_, w)| *w == b"sequence")
        .any(|(at, _)| {
            let text = &input[at + 8..];
            let end = text
                .windows(2)
                .position(|w| w == b"</")
                .unwrap_or(text.len());
            let text = &text[..end];
            text.contains(&b'&') || text.iter().filter(|b| b.is_ascii_digit()).count() > max_digits
        })
}

/// Runs the input under its configuration bytes and returns the outcome
/// (the `client` target: registration and legacy authentication off);
/// `None` for an input too short or skipped.
pub fn run_outcome(data: &[u8]) -> Option<Outcome> {
    run_outcome_with(data, false)
}

/// [`run_outcome`], `legacy` or not: the run with the small limits and
/// its checks, the run in one piece when the chunking must not matter,
/// and the run with the default limits within the heap budget.
pub fn run_outcome_with(data: &[u8], legacy: bool) -> Option<Outcome> {
    let [config, drive, input @ ..] = data else {
        return None;
    };
    if huge_iterations(input) || (legacy && huge_sequence(input)) {
        return None;
    }
    let checked = Flavor {
        legacy,
        heap: false,
    };
    let outcome = drive_client(*config, *drive, input, checked);
    if *drive & 128 == 0 && *drive & 7 != 0 {
        let whole = drive_client(*config, *drive & !7, input, checked);
        assert_chunking_invariant(&outcome, &whole);
    }
    let heap = Flavor { legacy, heap: true };
    crate::heap::within_budget("client", || drive_client(*config, *drive, input, heap));
    Some(outcome)
}

fn drive_client(config: u8, drive: u8, input: &[u8], flavor: Flavor) -> Outcome {
    let close = drive & 64 != 0;
    let mut d = Driver::new(config, drive, flavor);
    d.drain();
    d.feed_chunks(drive, input);
    d.send_when_ready();
    if close {
        d.client.close(d.now);
        d.drain();
    }
    if !d.run_out_the_clock(4) {
        // Only keepalives recur.
        assert!(
            d.client.is_ready() && !d.client.is_closed(),
            "deadlines keep coming"
        );
    }
    if !flavor.heap {
        check_framing(&d.record.output, d.record.closed_seen, &CLIENT_FRAMING);
    }
    d.record.outcome()
}

/// The fuzz body.
pub fn run(data: &[u8]) {
    let _ = run_outcome(data);
}
