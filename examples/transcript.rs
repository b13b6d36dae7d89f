//! The whole exchange of a `Client` and a `Server` in one process, over
//! real TLS (rustls) driven in memory: no sockets anywhere.
//!
//! ```text
//! cargo run --example transcript
//! cargo run --example transcript -- --mechanism PLAIN --tls direct
//! cargo run --example transcript -- --register
//! cargo run --example transcript -- --legacy-auth
//! cargo run --example transcript -- --wrong-password
//! ```
//!
//! At start it generates a throw-away certificate authority and the
//! server's certificate (ECDSA P-256, SHA-256; and, for EXTERNAL, client
//! certificates), which the client trusts. Both sides are the crate's state
//! machines; the hosts here move bytes between them: a side's plaintext
//! goes through its rustls connection (`ClientConnection` or
//! `ServerConnection`, itself sans-IO) into an in-memory wire, and out of
//! the peer's. Every plaintext XMPP byte is printed as `C:` (client to
//! server) and `S:` lines, one top-level element a line, before TLS and
//! after it (decrypted); `--` lines are notes of the hosts.
//!
//! The server's host keeps accounts in memory: SCRAM credentials
//! (StoredKey/ServerKey, no password) for SCRAM, and, for this demo only,
//! the password too for PLAIN, DIGEST-MD5 and legacy authentication.
//! Channel binding comes from rustls on both sides: `tls-exporter` (RFC
//! 9266) and `tls-server-end-point` (RFC 5929).
//!
//! Exit status 0 when both sides are ready with the same JID and a message
//! to self went round; 1 with the failure seen by each side otherwise.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use xmpp_sansio::client::PeerRefusal;
use xmpp_sansio::error::Misbehavior;

use minidom::Element;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use sha2::Digest;
use xmpp_sansio::client::{
    Client, ClientConfig, ClientError, ClientEvent, Credentials, LegacyAuthPolicy, Registration,
    TlsMode,
};
use xmpp_sansio::ns;
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};
use xmpp_sansio::sasl::scram::{derive_server_credentials, ALL_HASHES};
use xmpp_sansio::sasl::{
    ChannelBindingUse, CredentialAnswer, CredentialRequest, DigestMd5Secret, SaslCondition,
    ScramCredentials, ScramHash, Secret,
};
use xmpp_sansio::server::{
    BindAnswer, LegacyAuthAnswer, LegacyAuthMethods, LegacyAuthRequest, RegistrationRequest,
    Server, ServerConfig, ServerError, ServerEvent, ServerTls,
};
use xmpp_sansio::steps::register::RegisterForm;
use xmpp_sansio::steps::LegacyError;
use xmpp_sansio::{OsRandom, RandomSource, TlsInfo};

/// A `-- ...` note line.
fn note(s: &str) {
    println!("-- {s}");
}

const HELP: &str = "\
transcript: a Client and a Server of xmpp-sansio against each other in one
process, over real TLS (rustls) driven in memory, printing the exchange

USAGE:
    cargo run --example transcript -- [OPTIONS]

OPTIONS:
    --mechanism M     the SASL mechanism the client must use: SCRAM-SHA-256-PLUS,
                      SCRAM-SHA-256, SCRAM-SHA-1[-PLUS], SCRAM-SHA-512[-PLUS], PLAIN,
                      DIGEST-MD5, EXTERNAL (TLS client certificate), ANONYMOUS,
                      OAUTHBEARER, X-OAUTH2, X-GOOGLE-TOKEN. Default: the client's
                      policy picks the strongest the server offers (SCRAM-SHA-256-PLUS
                      over TLS, SCRAM-SHA-256 without)
    --register        register a new account in-band (XEP-0077), then log in with it
    --legacy-auth     a server with jabber:iq:auth (XEP-0078) and no SASL mechanism
    --wrong-password  log in with a wrong password (token, certificate): both sides
                      report the failure and the exit status is 1
    --tls MODE        starttls (default) | direct (XEP-0368, TLS from the first
                      byte) | none (PLAIN and X-OAUTH2 are then allowed in the clear)
    -h, --help        this text
";

const DOMAIN: &str = "example.org";
/// The account that exists from the start.
const USER: &str = "juliet";
const PASSWORD: &str = "wherefore art thou";
/// The account `--register` creates.
const NEW_USER: &str = "romeo";
const NEW_PASSWORD: &str = "by any other name";
/// The bearer token the host issued to `USER` (OAUTHBEARER, X-OAUTH2...).
const TOKEN: &str = "ya29.juliet-capulet-token";
/// RFC 7677's recommended minimum.
const ITERATIONS: u32 = 4096;
/// The mechanisms the server offers (strongest first); one named with
/// `--mechanism` and missing here is added.
const OFFERED: [&str; 5] = [
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-1",
    "PLAIN",
];
/// RFC 9266.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsArg {
    StartTls,
    Direct,
    None,
}

#[derive(Debug)]
struct Args {
    mechanism: Option<String>,
    register: bool,
    legacy_auth: bool,
    wrong_password: bool,
    tls: TlsArg,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args {
        mechanism: None,
        register: false,
        legacy_auth: false,
        wrong_password: false,
        tls: TlsArg::StartTls,
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--mechanism" => {
                let m = it.next().ok_or("--mechanism needs a value")?;
                a.mechanism = Some(m.to_ascii_uppercase());
            }
            "--register" => a.register = true,
            "--legacy-auth" => a.legacy_auth = true,
            "--wrong-password" => a.wrong_password = true,
            "--tls" => {
                let v = it.next().ok_or("--tls needs a value")?;
                a.tls = match v.as_str() {
                    "starttls" => TlsArg::StartTls,
                    "direct" => TlsArg::Direct,
                    "none" => TlsArg::None,
                    _ => return Err(format!("unknown --tls {v:?} (starttls, direct, none)")),
                };
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if a.legacy_auth && a.mechanism.is_some() {
        return Err("--legacy-auth uses jabber:iq:auth, not a SASL --mechanism".into());
    }
    if a.wrong_password && a.mechanism.as_deref() == Some("ANONYMOUS") {
        return Err("ANONYMOUS has no password to get wrong".into());
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    let parsed = parse_args(std::env::args().skip(1));
    let Ok(Some(args)) = parsed else {
        // `--help` (exit 0), or a usage error (exit 2).
        return match parsed {
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
            _ => {
                print!("{HELP}");
                ExitCode::SUCCESS
            }
        };
    };
    // `OK <full jid>` (exit 0) or `ERROR <the failures>` (exit 1).
    let outcome = run(&args);
    match &outcome {
        Ok(jid) => println!("OK {jid}"),
        Err(e) => println!("ERROR {e}"),
    }
    ExitCode::from(u8::from(outcome.is_err()))
}

// ---------------------------------------------------------------------------
// Certificates

/// What `rcgen` made at start.
struct Pki {
    /// The CA, the client's only trust anchor (and the server's, for client
    /// certificates).
    ca: CertificateDer<'static>,
    /// The server's certificate (for `DOMAIN`) and key.
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
    /// A client certificate for `USER`, one for nobody the host knows.
    juliet: (CertificateDer<'static>, PrivateKeyDer<'static>),
    stranger: (CertificateDer<'static>, PrivateKeyDer<'static>),
}

fn make_pki() -> Result<Pki, rcgen::Error> {
    // KeyPair::generate: ECDSA P-256 with SHA-256 signatures.
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "xmpp-sansio transcript CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key)?;

    let leaf = |names: Vec<String>,
                cn: &str,
                usage: ExtendedKeyUsagePurpose|
     -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(names)?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![usage];
        let cert = p.signed_by(&key, &ca, &ca_key)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((cert.der().clone(), key))
    };
    Ok(Pki {
        ca: ca.der().clone(),
        server: leaf(
            vec![DOMAIN.to_owned()],
            DOMAIN,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?,
        juliet: leaf(
            vec![],
            &format!("{USER}@{DOMAIN}"),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?,
        stranger: leaf(
            vec![],
            "mallory@example.net",
            ExtendedKeyUsagePurpose::ClientAuth,
        )?,
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &CertificateDer<'static>) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).map_err(|e| format!("tls: {e}"))?;
    Ok(Arc::new(roots))
}

fn client_tls_config(
    pki: &Pki,
    client_cert: Option<&(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    direct: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots(&pki.ca)?);
    let mut config = match client_cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(vec![cert.clone()], key.clone_key())
            .map_err(|e| format!("tls: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    // tls-exporter is sound on TLS 1.2 only with the extended master
    // secret (RFC 9266 section 3); TLS 1.3 is what both sides pick here.
    config.require_ems = true;
    if direct {
        config.alpn_protocols = vec![b"xmpp-client".to_vec()];
    }
    Ok(Arc::new(config))
}

fn server_tls_config(pki: &Pki, direct: bool) -> Result<Arc<rustls::ServerConfig>, String> {
    // Client certificates are asked for and checked against the CA, but
    // not required: only EXTERNAL needs one.
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(&pki.ca)?, provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("tls: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("tls: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key())
        .map_err(|e| format!("tls: {e}"))?;
    config.require_ems = true;
    if direct {
        config.alpn_protocols = vec![b"xmpp-client".to_vec()];
    }
    Ok(Arc::new(config))
}

/// Runs a TLS handshake between two rustls connections in memory. The
/// `pending` bytes (received after `<proceed/>`/`<starttls/>`, handed
/// back by the state machines) go to their connection first. Returns the
/// bytes of TLS records sent each way.
fn handshake(
    client: &mut rustls::Connection,
    server: &mut rustls::Connection,
) -> Result<(usize, usize), String> {
    let (mut up, mut down) = (0, 0);
    for _ in 0..100 {
        if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
            return Ok((up, down));
        }
        let mut wire = Vec::new();
        while client.wants_write() {
            client
                .write_tls(&mut wire)
                .map_err(|e| format!("tls: {e}"))?;
        }
        up += wire.len();
        receive(server, &wire).map_err(|e| format!("server {e}"))?;
        let mut wire = Vec::new();
        while server.wants_write() {
            server
                .write_tls(&mut wire)
                .map_err(|e| format!("tls: {e}"))?;
        }
        down += wire.len();
        receive(client, &wire).map_err(|e| format!("client {e}"))?;
    }
    Err("tls: the handshake did not finish".into())
}

/// Drains a machine's `poll_transmit` (`poll`) into `queue`.
fn take_output(queue: &mut Vec<u8>, mut poll: impl FnMut(&mut Vec<u8>) -> usize) {
    while poll(queue) > 0 {}
}

/// TLS records in, plaintext out.
fn receive(conn: &mut rustls::Connection, mut wire: &[u8]) -> Result<Vec<u8>, String> {
    let mut plain = Vec::new();
    let mut buf = [0u8; 4096];
    while !wire.is_empty() {
        conn.read_tls(&mut wire)
            .map_err(|e| format!("tls read: {e}"))?;
        conn.process_new_packets()
            .map_err(|e| format!("tls: {e}"))?;
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => break, // close_notify
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("tls read: {e}")),
            }
        }
    }
    Ok(plain)
}

/// Plaintext in, TLS records out.
fn seal(conn: &mut rustls::Connection, plain: &[u8]) -> Result<Vec<u8>, String> {
    conn.writer()
        .write_all(plain)
        .map_err(|e| format!("tls write: {e}"))?;
    let mut wire = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut wire)
            .map_err(|e| format!("tls write: {e}"))?;
    }
    Ok(wire)
}

/// What each side's host hands its state machine once TLS is up.
fn tls_info(conn: &rustls::Connection, own_cert: Option<&[u8]>) -> Result<TlsInfo, String> {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
        Some(rustls::ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
        v => return Err(format!("tls: unexpected version {v:?}")),
    };
    // Sound on TLS 1.3, and on TLS 1.2 with the extended master secret,
    // which both configurations require.
    let ekm = conn
        .export_keying_material([0u8; 32], EXPORTER_LABEL, None)
        .map_err(|e| format!("tls-exporter: {e}"))?;
    let mut bindings = vec![ChannelBinding::new(ChannelBindingType::TlsExporter, ekm)];
    // The server's certificate: the server's own, the client's peer's.
    let cert = match own_cert {
        Some(c) => Some(c.to_vec()),
        None => conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec()),
    };
    // tls-server-end-point (RFC 5929): the certificate's hash with its
    // signature's hash function, SHA-256 for the ECDSA P-256 SHA-256
    // certificates rcgen makes here (the hosts crate reads it from any
    // certificate: xmpp_sansio_hosts::tls::tls_server_end_point).
    if let Some(c) = cert {
        bindings.push(ChannelBinding::new(
            ChannelBindingType::TlsServerEndPoint,
            sha2::Sha256::digest(&c).to_vec(),
        ));
    }
    Ok(TlsInfo {
        version,
        channel_bindings: bindings,
    })
}

fn tls_summary(conn: &rustls::Connection, info: &TlsInfo) -> String {
    let version = match info.version {
        TlsVersion::Tls13 => "TLSv1.3",
        _ => "TLSv1.2",
    };
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    let alpn = conn
        .alpn_protocol()
        .map(|p| format!(", ALPN {}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let kinds: Vec<&str> = info.binding_types().iter().map(|k| k.as_str()).collect();
    format!(
        "{version} {suite}{alpn}, channel binding data: {}",
        kinds.join(" ")
    )
}

// ---------------------------------------------------------------------------
// The server's host: accounts and answers

struct Accounts {
    rng: OsRandom,
    /// Demo only: PLAIN, DIGEST-MD5 and jabber:iq:auth need the password
    /// (or a digest of it); SCRAM never does.
    passwords: HashMap<String, String>,
    scram: HashMap<(String, ScramHash), ScramCredentials>,
    tokens: HashMap<String, String>,
    /// Client certificates (DER) the host issued, and their accounts.
    certificates: HashMap<Vec<u8>, String>,
}

impl Accounts {
    fn new(pki: &Pki) -> Result<Self, String> {
        let mut a = Accounts {
            rng: OsRandom,
            passwords: HashMap::new(),
            scram: HashMap::new(),
            tokens: HashMap::from([(TOKEN.to_owned(), USER.to_owned())]),
            certificates: HashMap::from([(pki.juliet.0.to_vec(), USER.to_owned())]),
        };
        a.create(USER, PASSWORD)?;
        Ok(a)
    }

    /// A new account: SCRAM credentials for every hash, with a fresh salt.
    fn create(&mut self, user: &str, password: &str) -> Result<(), String> {
        for hash in ALL_HASHES {
            let mut salt = [0u8; 16];
            self.rng.fill(&mut salt);
            let c = derive_server_credentials(hash, password, &salt, ITERATIONS)
                .map_err(|e| format!("account {user}: {e}"))?;
            self.scram.insert((user.to_owned(), hash), c);
        }
        self.passwords.insert(user.to_owned(), password.to_owned());
        Ok(())
    }

    /// The answer to a SASL credential request. `client_cert`: the
    /// certificate the TLS client presented, if any.
    fn answer(&mut self, req: &CredentialRequest, client_cert: Option<&[u8]>) -> CredentialAnswer {
        use CredentialAnswer::Verdict;
        let refuse = Err(SaslCondition::NotAuthorized);
        match req {
            CredentialRequest::Password {
                username, password, ..
            } => Verdict(match self.passwords.get(username) {
                Some(p) if password.ct_eq(p) => Ok(username.clone()),
                _ => refuse,
            }),
            CredentialRequest::Scram { username, hash, .. } => {
                CredentialAnswer::Scram(self.scram.get(&(username.clone(), *hash)).cloned())
            }
            CredentialRequest::DigestMd5 { username, .. } => CredentialAnswer::DigestMd5(
                self.passwords
                    .get(username)
                    .map(|p| DigestMd5Secret::Password(Secret::new(p.as_str()))),
            ),
            CredentialRequest::Token {
                username, token, ..
            } => {
                // The claim may be a local part, a bare JID, or empty.
                let claimed = username.split('@').next().unwrap_or_default();
                Verdict(match self.tokens.get(token.expose()) {
                    Some(u) if claimed.is_empty() || claimed == u => Ok(u.clone()),
                    _ => refuse,
                })
            }
            CredentialRequest::External { authzid } => {
                let user = client_cert.and_then(|c| self.certificates.get(c));
                Verdict(match (user, authzid) {
                    (None, _) => refuse,
                    (Some(u), Some(a)) if a.split('@').next() != Some(u.as_str()) => {
                        Err(SaslCondition::InvalidAuthzid)
                    }
                    (Some(u), _) => Ok(u.clone()),
                })
            }
            CredentialRequest::Anonymous { .. } => {
                let mut b = [0u8; 4];
                self.rng.fill(&mut b);
                Verdict(Ok(format!("anon-{:08x}", u32::from_be_bytes(b))))
            }
            _ => Verdict(Err(SaslCondition::TemporaryAuthFailure)),
        }
    }

    fn legacy(&self, req: &LegacyAuthRequest) -> LegacyAuthAnswer {
        match req {
            // No zero-knowledge state kept: digest or password.
            LegacyAuthRequest::ZeroKState { .. } => LegacyAuthAnswer::ZeroK(None),
            LegacyAuthRequest::Verify {
                username,
                credential,
                stream_id,
                ..
            } => {
                let ok = self
                    .passwords
                    .get(username)
                    .is_some_and(|p| credential.verify(stream_id, Some(p), None));
                LegacyAuthAnswer::Verdict(if ok {
                    Ok(())
                } else {
                    Err(LegacyError::NOT_AUTHORIZED)
                })
            }
            _ => LegacyAuthAnswer::Verdict(Err(LegacyError::NOT_ACCEPTABLE)),
        }
    }
}

// ---------------------------------------------------------------------------
// Printing

/// Splits one side's plaintext into top-level units (the XML declaration,
/// the stream header, each top-level element, the closing tag), one line
/// each, as the seed transcripts show them.
fn lines_of(data: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    let text = |a: usize, b: usize| String::from_utf8_lossy(&data[a..b]).into_owned();
    while i < data.len() {
        if data[i] != b'<' {
            i += 1;
            continue;
        }
        // The end of the tag, outside quoted attribute values.
        let mut j = i + 1;
        let mut quote = None;
        while j < data.len() {
            match (quote, data[j]) {
                (Some(q), c) if c == q => quote = None,
                (None, b'"' | b'\'') => quote = Some(data[j]),
                (None, b'>') => break,
                _ => {}
            }
            j += 1;
        }
        let end = (j + 1).min(data.len());
        let tag = &data[i..end];
        let stream_tag = tag.starts_with(b"<stream:stream") || tag.starts_with(b"</stream:stream");
        if depth == 0 && (tag.starts_with(b"<?") || stream_tag) {
            lines.push(text(i, end));
            start = end;
        } else if tag.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                lines.push(text(start, end));
                start = end;
            }
        } else if tag.ends_with(b"/>") {
            if depth == 0 {
                lines.push(text(i, end));
                start = end;
            }
        } else {
            if depth == 0 {
                start = i;
            }
            depth += 1;
        }
        i = end;
    }
    if depth > 0 {
        lines.push(text(start, data.len()));
    }
    lines
}

// ---------------------------------------------------------------------------
// The run

fn run(args: &Args) -> Result<String, String> {
    let pki = make_pki().map_err(|e| format!("certificates: {e}"))?;
    let accounts = Accounts::new(&pki)?;
    let mechanism = args.mechanism.clone();
    let mech = mechanism.as_deref().unwrap_or("");
    let direct = args.tls == TlsArg::Direct;

    // Who logs in, with what.
    let (user, password) = if args.register {
        (NEW_USER, NEW_PASSWORD)
    } else {
        (USER, PASSWORD)
    };
    let wrong = args.wrong_password;
    let (jid, credentials) = match mech {
        "ANONYMOUS" => (DOMAIN.to_owned(), Credentials::Anonymous),
        "EXTERNAL" => (format!("{user}@{DOMAIN}"), Credentials::ClientCertificate),
        "OAUTHBEARER" | "X-OAUTH2" | "X-GOOGLE-TOKEN" => (
            format!("{user}@{DOMAIN}"),
            Credentials::Token(if wrong { "ya29.expired" } else { TOKEN }.into()),
        ),
        _ => (
            format!("{user}@{DOMAIN}"),
            Credentials::password(if wrong {
                "wherefore ART thou"
            } else {
                password
            }),
        ),
    };
    let client_cert = match (mech, wrong) {
        ("EXTERNAL", false) => Some(&pki.juliet),
        ("EXTERNAL", true) => Some(&pki.stranger),
        _ => None,
    };

    // The client's configuration.
    let mut cc = ClientConfig::builder(jid.clone(), credentials);
    cc.tls = match args.tls {
        TlsArg::StartTls => TlsMode::StartTlsRequired,
        TlsArg::None => TlsMode::None,
        TlsArg::Direct => TlsMode::None, // set below, once the handshake is done
    };
    if let Some(m) = &mechanism {
        cc.policy.only = Some(vec![m.clone()]);
        cc.policy.enable_digest_md5 = m == "DIGEST-MD5";
        cc.policy.enable_x_google_token = m == "X-GOOGLE-TOKEN";
        cc.policy.enable_anonymous = m == "ANONYMOUS";
    }
    cc.policy.allow_plain_without_tls = args.tls == TlsArg::None;
    if args.legacy_auth {
        cc.legacy_auth = LegacyAuthPolicy {
            enabled: true,
            allow_plaintext_without_tls: false,
        };
    }
    if args.register {
        cc.register = Some(Registration {
            fields: vec![
                ("username".into(), NEW_USER.into()),
                ("password".into(), NEW_PASSWORD.into()),
            ],
            then_login: true,
        });
    }

    // The server's configuration.
    let mut sc = ServerConfig::builder(DOMAIN);
    sc.tls = match args.tls {
        TlsArg::StartTls => ServerTls::StartTlsRequired,
        _ => ServerTls::None,
    };
    sc.mechanisms = OFFERED.map(String::from).to_vec();
    if !mech.is_empty() && !sc.mechanisms.iter().any(|m| m == mech) {
        sc.mechanisms.push(mech.to_owned());
    }
    sc.allow_plain_without_tls = args.tls == TlsArg::None;
    if args.legacy_auth {
        sc.mechanisms.clear();
        sc.legacy_auth = Some(LegacyAuthMethods::default());
    }
    if args.register {
        sc.register = Some(RegisterForm {
            instructions: Some("Choose a username and password.".into()),
            ..RegisterForm::default()
        });
    }

    let client_tls = client_tls_config(&pki, client_cert, direct)?;
    let server_tls = server_tls_config(&pki, direct)?;
    let mut host = Hosts {
        accounts,
        pki_server_cert: pki.server.0.to_vec(),
        client_tls,
        server_tls,
        c_tls: None,
        s_tls: None,
        client_wants_tls: None,
        server_wants_tls: None,
        client_error: None,
        server_error: None,
        server_auth_failure: None,
        client_jid: None,
        server_jid: None,
        echoed: false,
    };

    // Direct TLS (XEP-0368): the handshake comes before any XMPP byte, and
    // both machines start knowing it.
    let direct_tls = if direct {
        cc.tls = TlsMode::Direct;
        sc.tls = ServerTls::Direct;
        Some(host.start_tls("direct TLS")?)
    } else {
        None
    };
    // Configurations are built once (a real server shares its one by
    // every connection) and checked then.
    let client_config = cc
        .build()
        .map_err(|e| format!("client configuration: {e}"))?;
    let server_config = sc
        .build()
        .map_err(|e| format!("server configuration: {e}"))?;
    let now = Instant::now();
    let mut client = Client::new(client_config, now);
    let mut server = Server::new(server_config, now);
    if let Some((c_info, s_info)) = direct_tls {
        client = client.direct_tls(c_info);
        server = server.direct_tls(s_info);
    }
    host.drive(&mut client, &mut server, now)?;
    host.verdict()
}

/// Both hosts: the client's and the server's, and the wire between them.
struct Hosts {
    accounts: Accounts,
    pki_server_cert: Vec<u8>,
    client_tls: Arc<rustls::ClientConfig>,
    server_tls: Arc<rustls::ServerConfig>,
    c_tls: Option<rustls::Connection>,
    s_tls: Option<rustls::Connection>,
    /// `StartTls` seen, with the bytes handed back.
    client_wants_tls: Option<Vec<u8>>,
    server_wants_tls: Option<Vec<u8>>,
    client_error: Option<String>,
    server_error: Option<String>,
    server_auth_failure: Option<String>,
    client_jid: Option<String>,
    server_jid: Option<String>,
    echoed: bool,
}

impl Hosts {
    /// Creates both rustls connections, feeds them what the machines
    /// handed back, runs the handshake. Returns each side's `TlsInfo`.
    fn start_tls(&mut self, how: &str) -> Result<(TlsInfo, TlsInfo), String> {
        let name = ServerName::try_from(DOMAIN).map_err(|e| format!("tls: {e}"))?;
        let mut c: rustls::Connection =
            rustls::ClientConnection::new(self.client_tls.clone(), name.to_owned())
                .map_err(|e| format!("tls: {e}"))?
                .into();
        let mut s: rustls::Connection = rustls::ServerConnection::new(self.server_tls.clone())
            .map_err(|e| format!("tls: {e}"))?
            .into();
        // Bytes after <proceed/> / <starttls/> belong to TLS (none here:
        // neither side sends before the other answered).
        if let Some(p) = self.client_wants_tls.take().filter(|p| !p.is_empty()) {
            receive(&mut c, &p)?;
        }
        if let Some(p) = self.server_wants_tls.take().filter(|p| !p.is_empty()) {
            receive(&mut s, &p)?;
        }
        let (up, down) = handshake(&mut c, &mut s)?;
        let c_info = tls_info(&c, None)?;
        let s_info = tls_info(&s, Some(&self.pki_server_cert))?;
        if c_info.channel_bindings != s_info.channel_bindings {
            return Err("tls: the two sides derived different channel-binding data".into());
        }
        let client_cert = if s.peer_certificates().is_some() {
            ", client certificate presented"
        } else {
            ""
        };
        note(&format!(
            "TLS handshake done ({how}): {}{client_cert} ({up} bytes up, {down} bytes down)",
            tls_summary(&c, &c_info)
        ));
        self.c_tls = Some(c);
        self.s_tls = Some(s);
        Ok((c_info, s_info))
    }

    /// Moves bytes both ways and answers events until nothing happens.
    /// Each host follows the drain order of the crate's docs: after every
    /// input, `poll_transmit` first (printed and queued for the wire), then
    /// `poll_event`.
    fn drive(
        &mut self,
        client: &mut Client,
        server: &mut Server,
        now: Instant,
    ) -> Result<(), String> {
        let mut up = Vec::new();
        let mut down = Vec::new();
        for _ in 0..10_000 {
            let mut busy = false;

            // Client -> server (what the client queued after its last
            // events, or since: the header after TLS), then the server's
            // output and events. A side's notes print before the bytes it
            // queued with them.
            let shown = up.len();
            take_output(&mut up, |b| client.poll_transmit(b));
            self.show("C", &up[shown..]);
            if !up.is_empty() {
                busy = true;
                let plain = self.carry(true, &std::mem::take(&mut up))?;
                if !server.is_closed() {
                    server
                        .feed(now, &plain)
                        .map_err(|e| format!("server feed: {e}"))?;
                }
            }
            take_output(&mut down, |b| server.poll_transmit(b));
            while let Some(ev) = server.poll_event() {
                busy = true;
                self.on_server_event(server, now, ev)?;
            }
            take_output(&mut down, |b| server.poll_transmit(b));
            self.show("S", &down);

            // Server -> client, then the client's output and events.
            if !down.is_empty() {
                busy = true;
                let plain = self.carry(false, &std::mem::take(&mut down))?;
                if !client.is_closed() {
                    client
                        .feed(now, &plain)
                        .map_err(|e| format!("client feed: {e}"))?;
                }
            }
            take_output(&mut up, |b| client.poll_transmit(b));
            while let Some(ev) = client.poll_event() {
                busy = true;
                self.on_client_event(client, now, ev)?;
            }
            take_output(&mut up, |b| client.poll_transmit(b));
            self.show("C", &up);

            // STARTTLS: once both sides asked for it (the server after
            // queueing <proceed/>, the client after reading it).
            if self.client_wants_tls.is_some() && self.server_wants_tls.is_some() {
                busy = true;
                let (c_info, s_info) = self.start_tls("STARTTLS")?;
                server
                    .tls_established(now, s_info)
                    .map_err(|e| format!("server: {e}"))?;
                client
                    .tls_established(now, c_info)
                    .map_err(|e| format!("client: {e}"))?;
            }
            if !busy && up.is_empty() {
                return Ok(());
            }
        }
        Err("the exchange did not settle".into())
    }

    /// Prints one side's plaintext, one top-level unit a line.
    fn show(&mut self, who: &str, bytes: &[u8]) {
        for l in lines_of(bytes) {
            println!("{who}: {l}");
        }
    }

    /// Plaintext of one side to plaintext of the other: through both
    /// rustls connections (seal, wire, open) once TLS is up.
    fn carry(&mut self, upwards: bool, plain: &[u8]) -> Result<Vec<u8>, String> {
        let (Some(c), Some(s)) = (self.c_tls.as_mut(), self.s_tls.as_mut()) else {
            return Ok(plain.to_vec());
        };
        if upwards {
            receive(s, &seal(c, plain)?).map_err(|e| format!("server {e}"))
        } else {
            receive(c, &seal(s, plain)?).map_err(|e| format!("client {e}"))
        }
    }

    fn on_client_event(
        &mut self,
        client: &mut Client,
        now: Instant,
        ev: ClientEvent,
    ) -> Result<(), String> {
        match ev {
            ClientEvent::StartTls { pending } => self.client_wants_tls = Some(pending),
            ClientEvent::Authenticated {
                mechanism,
                security,
                ..
            } => {
                let detail = security
                    .channel_binding
                    .map(|cb| match cb {
                        ChannelBindingUse::Bound(t) => {
                            format!(" (channel binding: {})", t.as_str())
                        }
                        other => format!(" (channel binding: none (gs2 flag {}))", other.flag()),
                    })
                    .unwrap_or_default();
                let ssdp = if security.downgrade_protection {
                    ", XEP-0474 h= checked"
                } else {
                    ""
                };
                note(&format!("authenticated with {mechanism}{detail}{ssdp}"));
            }
            ClientEvent::Registered => note("registered (XEP-0077)"),
            ClientEvent::Ready { jid } => {
                note(&format!("bound {jid}"));
                client
                    .send(&message_to(jid.as_str()))
                    .map_err(|e| format!("client send: {e}"))?;
                self.client_jid = Some(jid.to_string());
            }
            ClientEvent::Stanza(el) if el.name() == "message" => {
                note("the message to self came back; closing");
                self.echoed = true;
                client.close(now);
            }
            ClientEvent::Error(e) => {
                let line = client_error_line(&e);
                note(&format!("client failed: {line}"));
                self.client_error.get_or_insert(line);
            }
            ClientEvent::Closed => note("client: stream closed"),
            _ => {}
        }
        Ok(())
    }

    fn on_server_event(
        &mut self,
        server: &mut Server,
        now: Instant,
        ev: ServerEvent,
    ) -> Result<(), String> {
        let usage = |e: xmpp_sansio::UsageError| format!("server host: {e}");
        match ev {
            ServerEvent::StartTls { pending } => self.server_wants_tls = Some(pending),
            ServerEvent::Credentials(req) => {
                let cert = self
                    .s_tls
                    .as_ref()
                    .and_then(|s| s.peer_certificates())
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec());
                let answer = self.accounts.answer(&req, cert.as_deref());
                server.answer_credentials(now, answer).map_err(usage)?;
            }
            ServerEvent::AuthenticationFailed {
                mechanism,
                condition,
            } => {
                let line = format!(
                    "{condition}{}",
                    mechanism.map(|m| format!(" ({m})")).unwrap_or_default()
                );
                note(&format!("server: authentication failed: {line}"));
                self.server_auth_failure.get_or_insert(line);
            }
            ServerEvent::Bind { resource, .. } => {
                server
                    .answer_bind(now, BindAnswer::Accept(resource))
                    .map_err(usage)?;
            }
            ServerEvent::Register(RegistrationRequest::Create {
                username, password, ..
            }) => {
                let answer = if self.accounts.passwords.contains_key(&username) {
                    Err(LegacyError::CONFLICT)
                } else {
                    self.accounts.create(&username, password.expose())?;
                    note(&format!("server host: account {username}@{DOMAIN} created"));
                    Ok(())
                };
                server.answer_register(now, answer).map_err(usage)?;
            }
            ServerEvent::Register(_) => server
                .answer_register(now, Err(LegacyError::NOT_ALLOWED))
                .map_err(usage)?,
            ServerEvent::LegacyAuth(req) => {
                let answer = self.accounts.legacy(&req);
                if let LegacyAuthAnswer::Verdict(Err(e)) = &answer {
                    let line = format!("jabber:iq:auth refused: {e}");
                    note(&format!("server: {line}"));
                    self.server_auth_failure.get_or_insert(line);
                }
                server.answer_legacy_auth(now, answer).map_err(usage)?;
            }
            ServerEvent::Ready { jid } => self.server_jid = Some(jid.to_string()),
            // One session: what it sends to itself comes back.
            ServerEvent::Stanza(el) if el.attr("to") == self.server_jid.as_deref() => {
                server.send(&el).map_err(usage)?;
            }
            ServerEvent::Error(e) => {
                let line = server_error_line(&e);
                note(&format!("server: stream ended: {line}"));
                self.server_error.get_or_insert(line);
            }
            ServerEvent::Closed => note("server: stream closed"),
            _ => {}
        }
        Ok(())
    }

    fn verdict(&self) -> Result<String, String> {
        let mut problems = Vec::new();
        if let Some(e) = &self.client_error {
            problems.push(format!("client: {e}"));
        }
        if let Some(e) = &self.server_auth_failure {
            problems.push(format!("server: authentication failed: {e}"));
        }
        if let Some(e) = &self.server_error {
            problems.push(format!("server: {e}"));
        }
        match (&self.client_jid, &self.server_jid) {
            (Some(c), Some(s)) if c == s && self.echoed && problems.is_empty() => Ok(c.clone()),
            (Some(c), Some(s)) if c != s => {
                problems.push(format!("the client bound {c}, the server {s}"));
                Err(problems.join("; "))
            }
            _ if problems.is_empty() => Err("the session never became ready".into()),
            _ => Err(problems.join("; ")),
        }
    }
}

fn client_error_line(e: &ClientError) -> String {
    match e {
        ClientError::Refused(PeerRefusal::Authentication { condition, text }) => format!(
            "sasl failure {}{}",
            condition.map_or("(unknown condition)", |c| c.as_str()),
            text.as_ref().map(|t| format!(" ({t})")).unwrap_or_default()
        ),
        ClientError::PeerMisbehaved(Misbehavior::Sasl(e)) => {
            format!("sasl {} (client side: {})", e.condition, e.reason)
        }
        other => other.to_string(),
    }
}

fn server_error_line(e: &ServerError) -> String {
    match e.condition() {
        Some(c) => format!("{c} ({e})"),
        None => e.to_string(),
    }
}

/// `<message to=jid type='chat'><body>...</body></message>`.
fn message_to(jid: &str) -> Element {
    let name = |n: &str| rxml::NcName::try_from(n).expect("valid name");
    Element::builder("message", ns::JABBER_CLIENT)
        .attr(name("to"), jid)
        .attr(name("type"), "chat")
        .attr(name("id"), "m1")
        .append(
            Element::builder("body", ns::JABBER_CLIENT)
                .append("Parting is such sweet sorrow.")
                .build(),
        )
        .build()
}
