//! A real host for the sans-IO [`Server`]: `std::net` + rustls, one session
//! thread per connection.
//!
//! ```text
//! cargo run -p xmpp-sansio-hosts --bin server -- --listen 127.0.0.1:5222 --domain localhost \
//!     --cert cert.pem --key key.pem --user alice:secret --user bob:secret
//! ```
//!
//! It serves one domain: SASL against an in-memory account store that keeps
//! SCRAM credentials, not passwords; STARTTLS (or XEP-0368 direct TLS) with
//! rustls and the channel-binding data for SCRAM `-PLUS`; resource binding
//! with conflict detection; optionally in-band registration (XEP-0077) and
//! legacy `jabber:iq:auth` (XEP-0078, with plaintext, digest and
//! zero-knowledge); and routing of `<message/>` (and `<iq/>`) stanzas
//! between the connected sessions of its users, over TCP and, with
//! `--websocket ADDR`, over RFC 7395 WebSocket (ws on loopback, or wss),
//! and with `--bosh ADDR` over BOSH (XEP-0206; http on loopback, or
//! https: HTTP connection threads, and one thread that owns the
//! `BoshXmppServer` and runs each session's events through the same
//! handling as a TCP session's). It logs one line per login
//! (`LOGIN alice@localhost/res via SCRAM-SHA-256-PLUS ...`), per
//! registration and per failure (`AUTHFAIL`, `BIND-CONFLICT`, `ERROR`...) on
//! stdout; `--help` lists them.
//!
//! Each connection has a session thread that runs its [`Server`] on the
//! blocking driver ([`xmpp_sansio_hosts::blocking::Driver`]), and a helper
//! thread that only moves the socket's raw bytes into the session's queue
//! (where stanzas routed from other sessions arrive too). The driver reads
//! that queue as its connection (`QueueTransport`): a routed stanza
//! interrupts the read ([`Wake::Interrupted`]) and is sent; STARTTLS and
//! direct TLS are rustls over the same queue
//! ([`TlsSetup::blocking_accept`]).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use minidom::Element;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use xmpp_sansio::bosh::{
    BoshManagerConfig, BoshXmppServer, BoshXmppServerEvent, Reply, RequestHandle,
};
use xmpp_sansio::fast::{Expiry, FastToken, TokenSlot, TokenSlots};
use xmpp_sansio::jid::ResourcePart;
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::sasl::digest_md5::user_realm_password_hash;
use xmpp_sansio::sasl::scram::derive_server_credentials;
use xmpp_sansio::sasl::{
    CredentialAnswer, CredentialRequest, DigestMd5Secret, SaslCondition, ScramCredentials,
    ScramHash, Secret, SecretBytes,
};
use xmpp_sansio::server::{
    BindAnswer, BindRefusal, LegacyAuthAnswer, LegacyAuthMethods, LegacyAuthRequest,
    RegistrationRequest, ResumeAnswer, Server, ServerConfig, ServerError, ServerEvent, ServerTls,
};
use xmpp_sansio::sm::{SmSettings, SmState};
use xmpp_sansio::steps::iq_auth::{LegacyCredential, ZeroKState};
use xmpp_sansio::steps::LegacyError;
use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition};
use xmpp_sansio::Framing;
use xmpp_sansio::TlsInfo;
use xmpp_sansio_hosts::blocking::{interrupt, BoxTransport, Driver, Transport, Wake};
use xmpp_sansio_hosts::client_cert;
use xmpp_sansio_hosts::server_tls::TlsSetup;
use xmpp_sansio_hosts::tool::accounts::{
    password_matches, register_form, salt, token, valid_username,
};
use xmpp_sansio_hosts::tool::fast_token_file::unix_now;
use xmpp_sansio_hosts::tool::host;
use xmpp_sansio_hosts::tool::router::{Mailbox, Refused, Router};
use xmpp_sansio_hosts::DriverError;
use xmpp_sansio_hosts::{bosh, websocket};

const HELP: &str = "\
server: an XMPP server for one domain on the xmpp-sansio Server (std::net + rustls)

USAGE:
    server --domain D --cert F --key F --user NAME:PASSWORD... [OPTIONS]

OPTIONS:
    --listen ADDR        address to listen on (default 127.0.0.1:5222; port 0 picks a
                         free port, printed on the LISTENING line)
    --websocket ADDR     also accept XMPP over WebSocket (RFC 7395, subprotocol xmpp) on
                         ADDR, path /xmpp-websocket, from pages of any origin: wss:// with
                         the --cert/--key of TLS, else plain ws:// (loopback addresses
                         only), then treated as secure (as Prosody's
                         consider_websocket_secure): SASL, PLAIN included, without TLS
    --bosh ADDR          also accept XMPP over BOSH (XEP-0124/0206) on ADDR, path /http-bind,
                         from pages of any origin (CORS): https:// with the --cert/--key of
                         TLS, else plain http:// (loopback only), treated as secure as
                         Prosody's consider_bosh_secure; at most 256 sessions
    --domain D           the domain served (a stream to any other gets host-unknown)
    --cert F             PEM certificate chain, end entity first (not with --tls none)
    --key F              PEM private key
    --user NAME:PASSWORD an account (repeatable); only SCRAM credentials are kept
                         (plus H(user:realm:password) when DIGEST-MD5 is enabled)
    --mechanisms LIST    comma-separated SASL mechanisms, strongest first (default:
                         SCRAM-SHA-256-PLUS,SCRAM-SHA-256,SCRAM-SHA-1-PLUS,SCRAM-SHA-1,PLAIN);
                         this host answers SCRAM-SHA-1/256/512[-PLUS], PLAIN (checked
                         against the SCRAM-SHA-256 credentials), DIGEST-MD5 and ANONYMOUS.
                         -PLUS is offered over TLS with tls-exporter and
                         tls-server-end-point (rustls does not expose tls-unique);
                         PLAIN only over TLS.
    --tls MODE           starttls (default, required before SASL) | direct (XEP-0368:
                         TLS from the first byte, ALPN xmpp-client) | none
    --allow-register     offer XEP-0077 in-band registration (after TLS, unless --tls none);
                         new accounts are kept like --user ones, in memory
    --legacy-auth        offer XEP-0078 jabber:iq:auth: plaintext (checked against the SCRAM
                         credentials), zero-knowledge (a hash chain is kept) and digest,
                         which needs the password itself: with this flag, passwords are
                         kept in memory
    --gssapi-keytab F    also offer SASL GSSAPI (RFC 4752, Kerberos; first), accepting with the
                         key of xmpp/<domain> in keytab F (checked at start); a principal
                         user@REALM of the key's realm logs in as user@<domain>; others
                         (another realm, user/instance) are refused. Needs a hosts crate
                         built with --features gssapi
    --element-timeout S  a top-level element, once begun, must be complete within S
                         seconds (default 60): a trickling client is cut off
    --idle-timeout S     disconnect a ready client that sends nothing for S seconds
                         (default: never)
    --sm                 offer stream management (XEP-0198) with resumption: a session
                         whose connection ends without a close is kept (DETACHED), the
                         stanzas routed to it are held, and a client that resumes it gets
                         them (RESUMED); a new login with the same full JID replaces it
    --sasl2              offer SASL2 (XEP-0388) beside RFC 6120 SASL, with Bind 2
                         (XEP-0386: the resource is the client's tag and a suffix),
                         FAST (XEP-0484: the HT-* mechanisms the TLS channel allows;
                         tokens kept in memory per user and user agent, two slots,
                         valid --fast-ttl, FAST-TOKEN logged when issued; a token
                         login past half the token's lifetime gets a new token
                         (FAST-ROTATE), the old one kept until the new one is used;
                         a count not above the token's last is refused; invalidate
                         drops the client's tokens, FAST-INVALIDATE), Message Carbons
                         and CSI inline in Bind 2 (XEP-0280, XEP-0352: BIND2-INLINE
                         logged; carbons-enabled sessions get copies of their user's
                         other resources' chat messages) and, with --sm, stream
                         management enabled and resumed inline
    --fast-ttl S         how long a FAST token is valid (default 604800: a week)
    --sm-resume-timeout S  how long a detached session is kept (default 300), advertised
                         as max; then what it held is undelivered (EXPIRED)
    --client-ca F        ask TLS clients for a certificate (optional) that must chain to
                         the PEM CA certificates of F, and offer SASL EXTERNAL after TLS:
                         it logs in the account the verified certificate names (its
                         XmppAddr, else e-mail, else commonName: user@D or user);
                         EXTERNAL is offered only to a client that presented one
    -h, --help           this text

OUTPUT (stdout, one line each):
    LISTENING <addr> ...    once listening
    LISTENING-WS <addr> ws|wss   once the --websocket listener is listening
    LISTENING-BOSH <addr> http|https   once the --bosh listener is listening
    LOGIN <full jid> via <mechanism> (<tls>, <peer>[ websocket| bosh])
    AUTHFAIL <user> via <mechanism>: <condition> (<peer>)
    BIND-CONFLICT <full jid> (<peer>)
    FAST-TOKEN <jid> <mechanism> (<peer>) a token issued on a password login, FAST-ROTATE
                            on a token login; FAST-INVALIDATE <jid> (<peer>): dropped
    REGISTER <user> (<peer>), PASSWORD / UPDATE / REMOVE <user> (<peer>), and
    REGISTER-FAIL <user>: <code> <condition> (<peer>) (and PASSWORD-FAIL...)
    ERROR <peer>: <why the stream or connection failed>
    CLOSED <peer>: the client closed the stream before binding
    END <peer>: <n> bytes read   once the connection is closed (a stream that failed
                            is closed at once: what the client still sends is not read);
                            END <peer>: bosh session over (<why>) for a BOSH session
";

/// PBKDF2 iterations of the stored SCRAM credentials.
const ITERATIONS: u32 = 4096;
/// Inputs queued for one session (raw socket reads, routed stanzas).
const QUEUE: usize = 64;
/// Socket reads (of up to `READ_CHUNK` bytes) the reader thread may make
/// ahead of the session: what a peer sends is read only as fast as the
/// session takes it, and once the session is over nothing more is read.
const READ_AHEAD: usize = 2;
const READ_CHUNK: usize = 16 * 1024;
/// Bound on a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on one socket write (a client that does not read).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Mechanisms this host can answer.
const ANSWERABLE: &[&str] = &[
    "SCRAM-SHA-512-PLUS",
    "SCRAM-SHA-512",
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-1",
    "PLAIN",
    "GSSAPI",
    "DIGEST-MD5",
    "ANONYMOUS",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsArg {
    StartTls,
    Direct,
    None,
}

impl TlsArg {
    fn as_str(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Direct => "direct",
            Self::None => "none",
        }
    }
}

struct Args {
    listen: String,
    domain: String,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    users: Vec<(String, String)>,
    mechanisms: Option<Vec<String>>,
    allow_register: bool,
    legacy_auth: bool,
    tls: TlsArg,
    element_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    /// `--websocket ADDR`.
    websocket: Option<String>,
    /// `--gssapi-keytab F`.
    gssapi_keytab: Option<PathBuf>,
    /// `--client-ca F`: client certificates and SASL EXTERNAL.
    client_ca: Option<PathBuf>,
    /// `--bosh ADDR`.
    bosh: Option<String>,
    /// `--sm`: stream management (XEP-0198) with resumption.
    sm: bool,
    sasl2: bool,
    /// `--fast-ttl S`: a FAST token's lifetime.
    fast_ttl: Duration,
    /// `--sm-resume-timeout S`: how long a detached session is kept.
    sm_resume_timeout: Duration,
}

/// A whole number of seconds, at least one.
fn seconds(flag: &str, v: &str) -> Result<Duration, String> {
    match v.parse::<u64>() {
        Ok(s) if s > 0 => Ok(Duration::from_secs(s)),
        _ => Err(format!("{flag} {v:?}: expected whole seconds, at least 1")),
    }
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args {
        listen: "127.0.0.1:5222".into(),
        domain: String::new(),
        cert: None,
        key: None,
        users: Vec::new(),
        mechanisms: None,
        allow_register: false,
        legacy_auth: false,
        tls: TlsArg::StartTls,
        element_timeout: None,
        idle_timeout: None,
        gssapi_keytab: None,
        websocket: None,
        client_ca: None,
        bosh: None,
        sm: false,
        sasl2: false,
        fast_ttl: Duration::from_secs(7 * 86_400),
        sm_resume_timeout: Duration::from_secs(300),
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => a.listen = value()?,
            "--websocket" => a.websocket = Some(value()?),
            "--bosh" => a.bosh = Some(value()?),
            "--domain" => a.domain = value()?.to_ascii_lowercase(),
            "--cert" => a.cert = Some(value()?.into()),
            "--key" => a.key = Some(value()?.into()),
            "--user" => {
                let v = value()?;
                let (name, password) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--user {v:?}: expected NAME:PASSWORD"))?;
                if !valid_username(name) {
                    return Err(format!("--user: {name:?} is not a valid user name"));
                }
                if password.is_empty() {
                    return Err(format!("--user {name}: empty password"));
                }
                a.users.push((name.to_owned(), password.to_owned()));
            }
            "--mechanisms" => {
                let list: Vec<String> = value()?
                    .split(',')
                    .map(|m| m.trim().to_ascii_uppercase())
                    .filter(|m| !m.is_empty())
                    .collect();
                if let Some(m) = list.iter().find(|m| !ANSWERABLE.contains(&m.as_str())) {
                    return Err(format!(
                        "--mechanisms: this host cannot answer {m} (it has no token or \
                         client-certificate store); it answers {}",
                        ANSWERABLE.join(", ")
                    ));
                }
                if list.is_empty() {
                    return Err("--mechanisms: empty list".into());
                }
                a.mechanisms = Some(list);
            }
            "--gssapi-keytab" => a.gssapi_keytab = Some(value()?.into()),
            "--allow-register" => a.allow_register = true,
            "--legacy-auth" => a.legacy_auth = true,
            "--element-timeout" => a.element_timeout = Some(seconds(&flag, &value()?)?),
            "--idle-timeout" => a.idle_timeout = Some(seconds(&flag, &value()?)?),
            "--client-ca" => a.client_ca = Some(value()?.into()),
            "--sm" => a.sm = true,
            "--sasl2" => a.sasl2 = true,
            "--fast-ttl" => a.fast_ttl = seconds(&flag, &value()?)?,
            "--sm-resume-timeout" => a.sm_resume_timeout = seconds(&flag, &value()?)?,
            "--tls" => {
                a.tls = match value()?.as_str() {
                    "starttls" => TlsArg::StartTls,
                    "direct" => TlsArg::Direct,
                    "none" => TlsArg::None,
                    other => return Err(format!("--tls {other}: expected starttls|direct|none")),
                }
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if a.domain.is_empty() {
        return Err("--domain is required".into());
    }
    if a.tls != TlsArg::None && (a.cert.is_none() || a.key.is_none()) {
        return Err(format!("--tls {} needs --cert and --key", a.tls.as_str()));
    }
    if a.client_ca.is_some() && a.tls == TlsArg::None {
        return Err("--client-ca needs TLS".into());
    }
    Ok(Some(a))
}

// ---------------------------------------------------------------------------
// The account store

/// Whether a token of lifetime `ttl` seconds expiring at `expiry` is due
/// for rotation at `now` (all Unix seconds): past half its lifetime.
fn rotation_due(expiry: i64, ttl: i64, now: i64) -> bool {
    expiry.saturating_sub(now).saturating_mul(2) < ttl
}

/// What is kept for an account: SCRAM credentials, not the password
/// (except for legacy `<digest/>`, which cannot do without it).
struct Account {
    scram_sha1: ScramCredentials,
    /// Also checks PLAIN and legacy `<password/>` (derived again with the
    /// stored salt).
    scram_sha256: ScramCredentials,
    /// Only when a SCRAM-SHA-512 mechanism is enabled.
    scram_sha512: Option<ScramCredentials>,
    /// H(user:domain:password), only when DIGEST-MD5 is enabled.
    digest_md5: Option<SecretBytes>,
    /// Only with `--legacy-auth`: the zero-knowledge hash chain...
    zero_k: Option<ZeroKState>,
    /// ... and the password itself, for `<digest/>` (SHA-1 of the stream
    /// id and the password).
    plaintext: Option<Secret>,
}

/// What the store derives for each account.
struct Keep {
    sha512: bool,
    digest_md5: bool,
    legacy: bool,
}

struct Store {
    domain: String,
    /// With `--gssapi-keytab`: the Kerberos realm whose users log in here.
    gssapi_realm: Option<String>,
    keep: Keep,
    accounts: Mutex<HashMap<String, Account>>,
    /// FAST tokens (XEP-0484, with --sasl2), in memory: the two slots per
    /// (user, user-agent id).
    fast: Mutex<HashMap<(String, Option<String>), TokenSlots>>,
    /// `--fast-ttl`, in seconds.
    fast_ttl: i64,
    /// PLAIN for an unknown user costs the same PBKDF2 as for a known one.
    dummy: ScramCredentials,
}

/// Uses of a zero-knowledge hash chain before a reset is needed.
const ZERO_K_SEQUENCE: u32 = 100;

impl Store {
    fn new(
        domain: &str,
        users: &[(String, String)],
        mechanisms: &[String],
        legacy: bool,
    ) -> Result<Self, String> {
        let enabled = |prefix: &str| mechanisms.iter().any(|m| m.starts_with(prefix));
        let store = Self {
            domain: domain.to_owned(),
            gssapi_realm: None,
            keep: Keep {
                sha512: enabled("SCRAM-SHA-512"),
                digest_md5: enabled("DIGEST-MD5"),
                legacy,
            },
            accounts: Mutex::new(HashMap::new()),
            fast: Mutex::new(HashMap::new()),
            fast_ttl: 7 * 86_400,
            dummy: derive_server_credentials(
                ScramHash::Sha256,
                "no such user",
                &salt(),
                ITERATIONS,
            )
            .map_err(|e| format!("deriving SCRAM credentials: {e}"))?,
        };
        for (name, password) in users {
            let account = store.account(name, password)?;
            let mut accounts = store.accounts();
            if accounts.insert(name.clone(), account).is_some() {
                return Err(format!("--user {name} given twice"));
            }
        }
        Ok(store)
    }

    fn accounts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        self.accounts.lock().expect("accounts lock")
    }

    /// What is kept for `name` with `password`.
    fn account(&self, name: &str, password: &str) -> Result<Account, String> {
        let derive = |hash| {
            derive_server_credentials(hash, password, &salt(), ITERATIONS)
                .map_err(|e| format!("deriving SCRAM credentials: {e}"))
        };
        Ok(Account {
            scram_sha1: derive(ScramHash::Sha1)?,
            scram_sha256: derive(ScramHash::Sha256)?,
            scram_sha512: if self.keep.sha512 {
                Some(derive(ScramHash::Sha512)?)
            } else {
                None
            },
            digest_md5: self
                .keep
                .digest_md5
                .then(|| user_realm_password_hash(name, &self.domain, password)),
            zero_k: self
                .keep
                .legacy
                .then(|| ZeroKState::new(password, token(10), ZERO_K_SEQUENCE)),
            plaintext: self.keep.legacy.then(|| Secret::new(password)),
        })
    }

    /// An authorization identity the user may act as: none, itself, or its
    /// bare JID.
    /// The user a Kerberos principal logs in as: `alice@REALM` (the
    /// keytab's realm) is `alice`; another realm, an instance
    /// (`carol/admin`) or a name that is no local part is refused.
    fn gssapi_user(&self, principal: &str, authzid: Option<&str>) -> Result<String, SaslCondition> {
        let realm = self
            .gssapi_realm
            .as_deref()
            .ok_or(SaslCondition::NotAuthorized)?;
        let user = match principal.rsplit_once('@') {
            Some((user, r)) if r == realm && valid_username(user) => user.to_ascii_lowercase(),
            _ => return Err(SaslCondition::NotAuthorized),
        };
        if self.authzid_ok(&user, authzid) {
            Ok(user)
        } else {
            Err(SaslCondition::InvalidAuthzid)
        }
    }

    fn authzid_ok(&self, username: &str, authzid: Option<&str>) -> bool {
        match authzid {
            None | Some("") => true,
            Some(a) => a == username || a == format!("{username}@{}", self.domain),
        }
    }

    /// A plaintext password against the SCRAM-SHA-256 credentials.
    fn check_password(&self, username: &str, password: &str) -> bool {
        let stored = self
            .accounts()
            .get(username)
            .map(|a| a.scram_sha256.clone());
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy.clone());
        password_matches(ScramHash::Sha256, &stored, password, known)
    }

    /// The host's answer to a credential request.
    fn answer(&self, req: &CredentialRequest) -> CredentialAnswer {
        match req {
            CredentialRequest::Password {
                username,
                authzid,
                password,
            } => CredentialAnswer::Verdict(if !self.authzid_ok(username, authzid.as_deref()) {
                Err(SaslCondition::InvalidAuthzid)
            } else if self.check_password(username, password.expose()) {
                Ok(username.clone())
            } else {
                Err(SaslCondition::NotAuthorized)
            }),
            CredentialRequest::Scram {
                username,
                authzid,
                hash,
            } => CredentialAnswer::Scram(
                self.accounts()
                    .get(username)
                    .filter(|_| self.authzid_ok(username, authzid.as_deref()))
                    .and_then(|a| match hash {
                        ScramHash::Sha1 => Some(a.scram_sha1.clone()),
                        ScramHash::Sha256 => Some(a.scram_sha256.clone()),
                        ScramHash::Sha512 => a.scram_sha512.clone(),
                    }),
            ),
            CredentialRequest::DigestMd5 {
                username,
                realm,
                authzid,
            } => CredentialAnswer::DigestMd5(
                self.accounts()
                    .get(username)
                    .filter(|_| *realm == self.domain)
                    .filter(|_| self.authzid_ok(username, authzid.as_deref()))
                    .and_then(|a| a.digest_md5.clone())
                    .map(DigestMd5Secret::UserRealmPasswordHash),
            ),
            CredentialRequest::Gssapi { principal, authzid } => {
                CredentialAnswer::Verdict(self.gssapi_user(principal, authzid.as_deref()))
            }
            CredentialRequest::Anonymous { .. } => {
                CredentialAnswer::Verdict(Ok(format!("anon-{}", token(10).to_ascii_lowercase())))
            }
            CredentialRequest::FastToken {
                username,
                user_agent_id,
                ..
            } => {
                let mut fast = self.fast.lock().unwrap_or_else(|e| e.into_inner());
                let key = (username.clone(), user_agent_id.clone());
                let slots = fast.entry(key).or_default();
                slots.drop_expired(unix_now());
                CredentialAnswer::FastTokens(slots.clone())
            }
            // OAuth tokens, client certificates: this host has no store for them
            // (refused at start-up, so not offered).
            _ => CredentialAnswer::Verdict(Err(SaslCondition::TemporaryAuthFailure)),
        }
    }

    /// A FAST token for `user`'s client. After a token login the slot it
    /// used is promoted and keeps the login's count; a new token is issued
    /// only when the one used is past half its lifetime (a rotation, into
    /// the new slot: the one used stays current until the new one logs
    /// in). After a password login a new token, valid `--fast-ttl`, goes
    /// to the new slot.
    fn issue_fast_token(
        &self,
        user: String,
        user_agent_id: Option<String>,
        mechanism: &str,
        used: Option<(TokenSlot, Option<u32>)>,
    ) -> Option<FastToken> {
        let mut fast = self.fast.lock().unwrap_or_else(|e| e.into_inner());
        let slots = fast.entry((user, user_agent_id)).or_default();
        let now = unix_now();
        if let Some((slot, count)) = used {
            slots.record_use(slot, count);
            let fresh = slots
                .current
                .as_ref()
                .is_some_and(|t| !rotation_due(t.expiry.unix_seconds(), self.fast_ttl, now));
            if fresh {
                return None;
            }
        }
        let expiry = Expiry::from_unix(now + self.fast_ttl)?;
        let t = FastToken::new(mechanism, format!("fast-{}", token(32)), expiry);
        slots.issue(t.clone());
        Some(t)
    }

    /// The client logged in with its token asking for it to be
    /// invalidated (a log-out): both of its slots are emptied.
    fn invalidate_fast_tokens(&self, user: String, user_agent_id: Option<String>) {
        let mut fast = self.fast.lock().unwrap_or_else(|e| e.into_inner());
        fast.remove(&(user, user_agent_id));
    }

    /// The host's decision on an in-band registration request.
    fn register(&self, req: &RegistrationRequest) -> Result<(), LegacyError> {
        match req {
            RegistrationRequest::Create {
                username, password, ..
            } => {
                if !valid_username(username) || password.expose().is_empty() {
                    return Err(LegacyError::NOT_ACCEPTABLE);
                }
                if self.accounts().contains_key(username) {
                    return Err(LegacyError::CONFLICT);
                }
                // PBKDF2 outside the lock; the name is checked again.
                let account = self
                    .account(username, password.expose())
                    .map_err(|_| LegacyError::NOT_ACCEPTABLE)?;
                match self.accounts().entry(username.clone()) {
                    std::collections::hash_map::Entry::Occupied(_) => Err(LegacyError::CONFLICT),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(account);
                        Ok(())
                    }
                }
            }
            RegistrationRequest::ChangePassword { username, password } => {
                if password.expose().is_empty() {
                    return Err(LegacyError::NOT_ACCEPTABLE);
                }
                let account = self
                    .account(username, password.expose())
                    .map_err(|_| LegacyError::NOT_ACCEPTABLE)?;
                match self.accounts().get_mut(username) {
                    Some(a) => {
                        *a = account;
                        Ok(())
                    }
                    None => Err(LegacyError::NOT_AUTHORIZED),
                }
            }
            // Other fields (name, email...) are accepted and not kept.
            RegistrationRequest::Update { username, .. } => {
                if self.accounts().contains_key(username) {
                    Ok(())
                } else {
                    Err(LegacyError::NOT_AUTHORIZED)
                }
            }
            RegistrationRequest::Remove { username } => {
                self.accounts().remove(username);
                Ok(())
            }
            _ => Err(LegacyError::NOT_IMPLEMENTED),
        }
    }

    /// Checks legacy (XEP-0078) credentials; a zero-knowledge success
    /// steps the stored chain down.
    fn check_legacy(&self, username: &str, credential: &LegacyCredential, stream_id: &str) -> bool {
        match credential {
            LegacyCredential::Password(p) => self.check_password(username, p.expose()),
            other => self.accounts().get_mut(username).is_some_and(|a| {
                let password = a.plaintext.as_ref().map(|p| p.expose());
                other.verify(stream_id, password, a.zero_k.as_mut())
            }),
        }
    }

    fn zero_k_state(&self, username: &str) -> Option<ZeroKState> {
        self.accounts().get(username).and_then(|a| a.zero_k.clone())
    }
}

/// The user name a request is about, for the log.
fn request_user(req: &CredentialRequest) -> Option<String> {
    match req {
        CredentialRequest::Password { username, .. }
        | CredentialRequest::Scram { username, .. }
        | CredentialRequest::DigestMd5 { username, .. }
        | CredentialRequest::Token { username, .. } => Some(username.clone()),
        CredentialRequest::Gssapi { principal, .. } => Some(principal.clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Routing

/// What reaches a session thread.
enum Input {
    /// Raw bytes from the socket (TLS records once TLS is up).
    Net(Vec<u8>),
    /// The client closed the connection.
    Eof,
    /// Reading the socket failed.
    NetError(String),
    /// A stanza routed from another session (or this one) to this client.
    Route(Element),
    /// Another connection resumes this session's stream management
    /// session while this one is still up: end this stream (`conflict`),
    /// detaching the session for the other to take.
    Replace,
}

/// A bound session, as other sessions reach it.
#[derive(Clone)]
struct Route {
    session: u64,
    queue: SyncSender<Input>,
}

struct Shared {
    domain: String,
    tls_arg: TlsArg,
    tls: Option<Arc<TlsSetup>>,
    /// Built once: every connection's `Server` shares it.
    config: Arc<ServerConfig>,
    /// The same for the WebSocket listener's connections (WebSocket
    /// framing), built once too.
    ws_config: Option<Arc<ServerConfig>>,
    /// And for the BOSH listener's sessions (BOSH framing).
    bosh_config: Option<Arc<ServerConfig>>,
    store: Store,
    /// `--client-ca`: EXTERNAL offered only with a verified certificate.
    client_ca: bool,
    /// Full JID -> the session bound to it (or the holder of a detached
    /// one: its route's `session` is [`DETACHED`]), and the routing between
    /// them.
    router: Router<Route>,
    /// Stream management: detached sessions by id, until resumed or
    /// expired.
    detached: Mutex<HashMap<String, Detached>>,
    /// Stream management: sessions still attached to a connection, by id
    /// (their bare JID and their queue), for a resumption that comes
    /// before their connection's end was seen.
    attached: Mutex<HashMap<String, Attached>>,
    /// `--sm-resume-timeout`.
    sm_resume_timeout: Duration,
}

/// A stream management session still attached to its connection.
struct Attached {
    /// Its bare JID: only that account may take it over.
    bare: String,
    /// The connection's session number and queue.
    session: u64,
    queue: SyncSender<Input>,
}

/// How long a resumption waits for the connection that still holds the
/// session to let it go.
const TAKEOVER_WAIT: Duration = Duration::from_secs(2);

/// The route `session` of a detached session's holder.
const DETACHED: u64 = u64::MAX;

/// A session whose connection ended without a close (`--sm`): its state,
/// and the stanzas routed to its JID meanwhile (the receiving end of its
/// route), until a client resumes it or the timeout passes.
struct Detached {
    state: SmState,
    held: Receiver<Input>,
    expires: Instant,
}

impl Shared {
    /// A session detached: its JID's route now holds what is routed to it.
    fn detach(&self, state: SmState, left: Vec<Element>) -> SyncSender<Input> {
        let (tx, held) = sync_channel(QUEUE);
        for el in left {
            let _ = tx.try_send(Input::Route(el));
        }
        let jid = state.jid().to_string();
        self.router.rebind(
            &jid,
            Route {
                session: DETACHED,
                queue: tx.clone(),
            },
        );
        log(format_args!(
            "DETACHED {jid}: {} unacknowledged, kept {}s",
            state.unacked().len(),
            self.sm_resume_timeout.as_secs()
        ));
        let expires = Instant::now() + self.sm_resume_timeout;
        self.detached.lock().expect("detached lock").insert(
            state.id().to_owned(),
            Detached {
                state,
                held,
                expires,
            },
        );
        tx
    }

    /// Drops the detached sessions whose timeout passed (`all`: every one
    /// of `jid`, which a new session binds): what they held is undelivered.
    fn expire(&self, jid: Option<&str>) {
        let now = Instant::now();
        let gone: Vec<Detached> = {
            let mut detached = self.detached.lock().expect("detached lock");
            let ids: Vec<String> = detached
                .iter()
                .filter(|(_, d)| match jid {
                    Some(j) => d.state.jid().as_str() == j,
                    None => d.expires <= now,
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| detached.remove(id)).collect()
        };
        for d in gone {
            let jid = d.state.jid().to_string();
            self.router.unbind(&jid, DETACHED);
            let held = std::iter::from_fn(|| d.held.try_recv().ok()).count();
            log(format_args!(
                "EXPIRED {jid}: {} undelivered",
                d.state.unacked().len() + held
            ));
        }
    }
}

impl Mailbox for Route {
    fn session(&self) -> u64 {
        self.session
    }

    fn offer(&self, el: Element) -> Result<(), (Refused, Element)> {
        match self.queue.try_send(Input::Route(el)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Input::Route(el))) => Err((Refused::Full, el)),
            Err(TrySendError::Disconnected(Input::Route(el))) => Err((Refused::Gone, el)),
            // Only routes are offered: nothing else to bounce.
            Err(_) => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// One connection

fn log(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

struct Session {
    shared: Arc<Shared>,
    id: u64,
    peer: SocketAddr,
    /// This session's queue, as routes to it hold it.
    queue: SyncSender<Input>,
    /// The summary of the TLS session, once there is one.
    tls_summary: Option<String>,
    /// The full JID reserved in `shared.router` (from the bind answer).
    bound: Option<String>,
    /// The mechanism that authenticated.
    mechanism: Option<String>,
    /// The user name of the last credential request (for the log).
    user: Option<String>,
    /// How the client came, for the LOGIN line: `""` (TCP),
    /// [`WEBSOCKET`] or [`BOSH`].
    transport: &'static str,
    /// The client's verified TLS certificate (`--client-ca`), for EXTERNAL.
    client_cert: Arc<Mutex<Option<CertificateDer<'static>>>>,
    /// A detached session handed to the machine to resume: what was
    /// routed to it meanwhile, and when it expires.
    resuming: Option<(Receiver<Input>, Instant)>,
    /// Stanzas routed to this session and not sent yet.
    routed: Arc<Mutex<Vec<Element>>>,
    /// This session's queue (TCP and WebSocket), where stanzas routed to
    /// it wait.
    inputs: Option<Arc<Mutex<Receiver<Input>>>>,
    /// Set when another connection resumes this session (TCP and
    /// WebSocket): the stream ends with `conflict`.
    replace: Arc<AtomicBool>,
    /// The stream management id this connection holds, while attached.
    sm_id: Option<String>,
}

/// The LOGIN line's mark of a `--websocket` connection.
const WEBSOCKET: &str = " websocket";
/// The LOGIN line's mark of a `--bosh` session.
const BOSH: &str = " bosh";

fn serve(shared: Arc<Shared>, id: u64, sock: TcpStream, peer: SocketAddr, transport: &'static str) {
    let (queue, inputs) = sync_channel(QUEUE);
    let inputs = Arc::new(Mutex::new(inputs));
    let (credits, credit) = sync_channel(READ_AHEAD);
    for _ in 0..READ_AHEAD {
        let _ = credits.try_send(());
    }
    let read_total = Arc::new(AtomicU64::new(0));
    let _ = sock.set_nodelay(true);
    let _ = sock.set_write_timeout(Some(WRITE_TIMEOUT));
    let (reader, control) = match (sock.try_clone(), sock.try_clone()) {
        (Ok(mut r), Ok(control)) => {
            let q = queue.clone();
            let total = read_total.clone();
            let reader = thread::spawn(move || {
                let mut buf = vec![0u8; READ_CHUNK];
                loop {
                    // A read only when the session took an earlier one;
                    // none once the session is over (its sender dropped).
                    if credit.recv().is_err() {
                        return;
                    }
                    let input = loop {
                        break match r.read(&mut buf) {
                            Ok(0) => Input::Eof,
                            Ok(n) => {
                                total.fetch_add(n as u64, Ordering::Relaxed);
                                Input::Net(buf[..n].to_vec())
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => Input::NetError(format!("read: {e}")),
                        };
                    };
                    let last = !matches!(input, Input::Net(_));
                    if q.send(input).is_err() || last {
                        return;
                    }
                }
            });
            (reader, control)
        }
        (Err(e), _) | (_, Err(e)) => {
            log(format_args!("ERROR {peer}: socket: {e}"));
            return;
        }
    };
    let conn = QueueTransport {
        sock,
        inputs,
        credits,
        deadline: None,
        chunk: Vec::new(),
        at: 0,
        routed: Arc::new(Mutex::new(Vec::new())),
        replace: Arc::new(AtomicBool::new(false)),
    };
    let mut s = Session {
        shared,
        id,
        peer,
        queue,
        tls_summary: None,
        bound: None,
        mechanism: None,
        user: None,
        transport,
        client_cert: Arc::new(Mutex::new(None)),
        resuming: None,
        routed: conn.routed.clone(),
        inputs: Some(conn.inputs.clone()),
        replace: conn.replace.clone(),
        sm_id: None,
    };
    if let Err(e) = s.run(conn) {
        log(format_args!("ERROR {peer}: {e}"));
    }
    // Closed now (the driver hung up; this also ends a handshake that
    // failed before there was a driver): the reader thread gets no more
    // credit, so the socket is not read again.
    s.unregister();
    let _ = control.shutdown(Shutdown::Both);
    drop(s);
    let _ = reader.join();
    log(format_args!(
        "END {peer}: {} bytes read",
        read_total.load(Ordering::Relaxed)
    ));
}

/// A session's connection as the blocking driver sees it: reads take the
/// reader thread's chunks from the session's queue (taking one lets the
/// reader make the next socket read; a stanza routed from another session
/// interrupts the read, through TLS too: [`interrupt()`]), writes go to
/// the socket.
struct QueueTransport {
    sock: TcpStream,
    /// Shared with the session, which takes the stanzas routed here
    /// after the end of the connection when it detaches.
    inputs: Arc<Mutex<Receiver<Input>>>,
    /// Lets the reader thread make one more socket read.
    credits: SyncSender<()>,
    deadline: Option<Instant>,
    /// The input being read, from `at`.
    chunk: Vec<u8>,
    at: usize,
    /// Stanzas routed to this session, for the session to send.
    routed: Arc<Mutex<Vec<Element>>>,
    /// Set by [`Input::Replace`], for the session to end its stream.
    replace: Arc<AtomicBool>,
}

impl Read for QueueTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.chunk.len() {
            let input = match self.deadline {
                Some(d) => {
                    let wait = d.saturating_duration_since(Instant::now());
                    match self.inputs.lock().expect("inputs lock").recv_timeout(wait) {
                        Ok(i) => i,
                        Err(RecvTimeoutError::Timeout) => {
                            return Err(io::ErrorKind::TimedOut.into())
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            return Err(io::Error::other("queue closed"))
                        }
                    }
                }
                None => self
                    .inputs
                    .lock()
                    .expect("inputs lock")
                    .recv()
                    .map_err(|_| io::Error::other("queue closed"))?,
            };
            match input {
                Input::Net(bytes) => {
                    let _ = self.credits.try_send(());
                    (self.chunk, self.at) = (bytes, 0);
                }
                Input::Eof => return Ok(0),
                Input::NetError(e) => return Err(io::Error::other(e)),
                Input::Route(el) => {
                    self.routed.lock().expect("routed lock").push(el);
                    return Err(interrupt());
                }
                Input::Replace => {
                    self.replace.store(true, Ordering::SeqCst);
                    return Err(interrupt());
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for QueueTransport {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.sock.write(data)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

impl Transport for QueueTransport {
    fn set_read_deadline(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        self.deadline = deadline;
        Ok(())
    }

    /// Closes the socket both ways: what the client still sends is not
    /// read (the reader thread's next read fails).
    fn hang_up(&mut self) {
        let _ = self.sock.flush();
        let _ = self.sock.shutdown(Shutdown::Both);
    }
}

impl Session {
    fn run(&mut self, conn: QueueTransport) -> Result<(), String> {
        if self.transport == WEBSOCKET {
            return self.run_websocket(conn);
        }
        let routed = conn.routed.clone();
        let (conn, tls): (BoxTransport, _) = match self.shared.tls_arg {
            TlsArg::Direct => {
                let setup = self.shared.tls.as_ref().ok_or("TLS is not configured")?;
                let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
                let (mut up, cert) =
                    setup.blocking_accept_client(true, Box::new(conn), &[], Some(deadline))?;
                up.summary.push_str(&client_cert_note(cert.as_ref()));
                *self.client_cert.lock().expect("client cert lock") = cert;
                self.tls_summary = Some(up.summary);
                (up.stream, Some(up.info))
            }
            TlsArg::StartTls | TlsArg::None => (Box::new(conn), None),
        };
        // One configuration, built at start, shared by every connection;
        // this connection's TLS facts when it came over direct TLS.
        let server = Server::new(self.shared.config.clone(), Instant::now());
        let mut server = match tls {
            Some(info) => server.direct_tls(info),
            None => server,
        };
        let client_ca = self.shared.client_ca;
        if client_ca && self.shared.tls_arg == TlsArg::Direct {
            // EXTERNAL only with a verified client certificate.
            server.client_certificate(self.client_cert.lock().expect("client cert lock").is_some());
        }
        let mut driver = Driver::new(server, conn);
        if let Some(setup) = self.shared.tls.clone() {
            let client_cert = self.client_cert.clone();
            driver = driver.with_tls(move |sock, pending, deadline| {
                // `<proceed/>` is written (the driver writes before events).
                let now = Instant::now();
                let limit = now + HANDSHAKE_TIMEOUT;
                let deadline = deadline.map_or(limit, |t| t.min(limit));
                let (mut up, cert) =
                    setup.blocking_accept_client(false, sock, pending, Some(deadline))?;
                up.summary.push_str(&client_cert_note(cert.as_ref()));
                *client_cert.lock().expect("client cert lock") = cert;
                Ok(up)
            });
            if client_ca {
                let client_cert = self.client_cert.clone();
                driver = driver.with_after_tls(move |server| {
                    server
                        .client_certificate(client_cert.lock().expect("client cert lock").is_some())
                });
            }
        }
        let result = self.drive(&mut driver, &routed);
        driver.hang_up();
        result
    }

    /// A connection of the `--websocket` listener: TLS when the server has
    /// a certificate (wss), the WebSocket handshake, then the session in
    /// WebSocket framing on the shared WebSocket configuration. Routed
    /// stanzas interrupt the WebSocket's reads as they do a TCP stream's.
    fn run_websocket(&mut self, conn: QueueTransport) -> Result<(), String> {
        let routed = conn.routed.clone();
        let config = self
            .shared
            .ws_config
            .clone()
            .ok_or("no WebSocket configuration")?;
        let deadline = Some(Instant::now() + HANDSHAKE_TIMEOUT);
        let (conn, tls): (BoxTransport, _) = match &self.shared.tls {
            Some(setup) => {
                let (mut up, cert) =
                    setup.blocking_accept_client(false, Box::new(conn), &[], deadline)?;
                up.summary.push_str(&client_cert_note(cert.as_ref()));
                *self.client_cert.lock().expect("client cert lock") = cert;
                self.tls_summary = Some(up.summary);
                (up.stream, Some(up.info))
            }
            None => (Box::new(conn), None),
        };
        let ws = websocket::blocking_accept(conn, deadline)?;
        let server = Server::new(config, Instant::now());
        let mut server = match tls {
            Some(info) => server.direct_tls(info),
            None => server,
        };
        if self.shared.client_ca {
            server.client_certificate(self.client_cert.lock().expect("client cert lock").is_some());
        }
        let mut driver = Driver::websocket(server, ws);
        let result = self.drive(&mut driver, &routed);
        driver.hang_up();
        result
    }

    /// Acts on the server's events and on routed stanzas until the stream
    /// is over (a stream that failed is closed at once: what the client
    /// still sends is not read).
    fn drive(
        &mut self,
        driver: &mut Driver<Server>,
        routed: &Mutex<Vec<Element>>,
    ) -> Result<(), String> {
        let result = self.drive_until_over(driver, routed);
        // A connection that ended without a close: a resumable session
        // detaches (stream management), else its unacknowledged stanzas
        // are undelivered.
        let server = driver.machine_mut();
        server.connection_lost(Instant::now());
        while let Some(event) = server.poll_event() {
            self.on_event(server, event)?;
        }
        self.detach_id();
        result
    }

    /// This connection holds stream management session `sm_id`: another
    /// connection of the same account may take it over.
    fn attach(&self) {
        let (Some(id), Some(bound)) = (&self.sm_id, &self.bound) else {
            return;
        };
        let bare = bound.split('/').next().unwrap_or_default().to_owned();
        self.shared.attached.lock().expect("attached lock").insert(
            id.clone(),
            Attached {
                bare,
                session: self.id,
                queue: self.queue.clone(),
            },
        );
    }

    /// This connection no longer holds its stream management session.
    fn detach_id(&self) {
        let Some(id) = &self.sm_id else {
            return;
        };
        let mut attached = self.shared.attached.lock().expect("attached lock");
        if attached.get(id).is_some_and(|a| a.session == self.id) {
            attached.remove(id);
        }
    }

    /// A resumption of session `previd` by `bare` while another
    /// connection still holds it (its end not seen yet, as after a
    /// client's network change): that connection's stream ends with
    /// `conflict`, and its session detaches for this one to resume
    /// (XEP-0198 section 5). Waits a moment for it; another account's
    /// resumption leaves it alone (the machine then answers
    /// `item-not-found`).
    fn take_over(&self, previd: &str, bare: &str) {
        let holder = {
            let attached = self.shared.attached.lock().expect("attached lock");
            match attached.get(previd) {
                Some(a) if a.bare == bare && a.session != self.id => a.queue.clone(),
                _ => return,
            }
        };
        if holder.try_send(Input::Replace).is_err() {
            return;
        }
        let deadline = Instant::now() + TAKEOVER_WAIT;
        while Instant::now() < deadline {
            if self
                .shared
                .detached
                .lock()
                .expect("detached lock")
                .contains_key(previd)
            {
                log(format_args!("TAKEOVER {bare} {previd} ({})", self.peer));
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn drive_until_over(
        &mut self,
        driver: &mut Driver<Server>,
        routed: &Mutex<Vec<Element>>,
    ) -> Result<(), String> {
        loop {
            match driver.next(None) {
                Ok(Wake::Event(event)) => {
                    if self.tls_summary.is_none() {
                        self.tls_summary = driver.tls_summary().map(str::to_owned);
                    }
                    self.on_event(driver.machine_mut(), event)?;
                }
                Ok(Wake::Interrupted) if self.replace.swap(false, Ordering::SeqCst) => {
                    // Another connection resumes this session: this one
                    // ends; its session detaches (`Detached`) for it.
                    let replaced = StreamError::new(StreamErrorCondition::Conflict)
                        .with_text("Replaced by new connection");
                    driver
                        .machine_mut()
                        .close_with_error(replaced)
                        .map_err(|e| format!("close_with_error: {e}"))?;
                }
                Ok(Wake::Interrupted) => {
                    let stanzas = std::mem::take(&mut *routed.lock().expect("routed lock"));
                    for el in stanzas {
                        // Not ready (cannot happen: routes exist once
                        // bound) or closing: the stanza is dropped.
                        let _ = driver.send(&el);
                    }
                }
                Ok(Wake::Deadline) => {}
                Ok(Wake::Over) => return Ok(()),
                Err(DriverError::PeerClosed) if driver.machine().is_ready() => return Ok(()),
                Err(DriverError::PeerClosed) => {
                    return Err("the client closed the connection".into())
                }
                Err(DriverError::Read(e)) => return Err(e.to_string()),
                Err(DriverError::Write(e)) => return Err(format!("write: {e}")),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn on_event(&mut self, server: &mut Server, event: ServerEvent) -> Result<(), String> {
        match event {
            ServerEvent::Credentials(req) => {
                self.user = request_user(&req);
                let answer = match &req {
                    CredentialRequest::External { authzid } => self.external(authzid.as_deref()),
                    _ => self.shared.store.answer(&req),
                };
                server
                    .answer_credentials(Instant::now(), answer)
                    .map_err(|e| format!("answer_credentials: {e}"))?;
            }
            ServerEvent::IssueFastToken {
                jid,
                user_agent_id,
                mechanism,
                used,
                count,
            } => {
                let user = jid.node().map(|n| n.to_string()).unwrap_or_default();
                let used = used.map(|slot| (slot, count));
                let token =
                    self.shared
                        .store
                        .issue_fast_token(user, user_agent_id, &mechanism, used);
                if token.is_some() {
                    let what = if used.is_some() {
                        "FAST-ROTATE"
                    } else {
                        "FAST-TOKEN"
                    };
                    log(format_args!("{what} {jid} {mechanism} ({})", self.peer));
                }
                server
                    .answer(Instant::now(), token)
                    .map_err(|e| format!("answer (FAST token): {e}"))?;
            }
            ServerEvent::FastTokenInvalidated {
                jid, user_agent_id, ..
            } => {
                let user = jid.node().map(|n| n.to_string()).unwrap_or_default();
                self.shared
                    .store
                    .invalidate_fast_tokens(user, user_agent_id);
                log(format_args!("FAST-INVALIDATE {jid} ({})", self.peer));
            }
            ServerEvent::AuthenticationFailed {
                mechanism,
                condition,
            } => log(format_args!(
                "AUTHFAIL {} via {}: {condition} ({})",
                self.user.as_deref().unwrap_or("-"),
                mechanism.as_deref().unwrap_or("-"),
                self.peer
            )),
            ServerEvent::Authenticated {
                identity,
                mechanism,
                security,
                ..
            } => {
                self.user = Some(identity.username);
                // `SCRAM-SHA-256 [cb tls-exporter, h= sent]` in the LOGIN line.
                let mut detail = Vec::new();
                if let Some(cb) = security.channel_binding {
                    detail.push(format!("cb {}", host::binding_text(cb)));
                }
                if security.downgrade_protection {
                    detail.push("h= sent".into());
                }
                self.mechanism = Some(if detail.is_empty() {
                    mechanism
                } else {
                    format!("{mechanism} [{}]", detail.join(", "))
                });
            }
            ServerEvent::Bind { jid, resource } => {
                let resource = match resource {
                    Some(r) => r,
                    None => ResourcePart::new(&format!("sansio-{}", token(10)))
                        .map_err(|e| format!("generated resource: {e}"))?
                        .into_owned(),
                };
                let full = jid.with_resource(&resource).to_string();
                // A detached session of this JID gives way (its stanzas
                // are undelivered), as a conflicting login replaces it.
                self.shared.expire(Some(&full));
                let route = Route {
                    session: self.id,
                    queue: self.queue.clone(),
                };
                let answer = if self.shared.router.bind(&full, route) {
                    self.bound = Some(full.clone());
                    BindAnswer::Accept(Some(resource))
                } else {
                    BindAnswer::Refuse(BindRefusal::Conflict)
                };
                if matches!(answer, BindAnswer::Refuse(_)) {
                    log(format_args!("BIND-CONFLICT {full} ({})", self.peer));
                }
                server
                    .answer_bind(Instant::now(), answer)
                    .map_err(|e| format!("answer_bind: {e}"))?;
            }
            ServerEvent::Register(req) => {
                let answer = self.shared.store.register(&req);
                let (what, user) = match &req {
                    RegistrationRequest::Create { username, .. } => ("REGISTER", username.as_str()),
                    RegistrationRequest::ChangePassword { username, .. } => {
                        ("PASSWORD", username.as_str())
                    }
                    RegistrationRequest::Update { username, .. } => ("UPDATE", username.as_str()),
                    RegistrationRequest::Remove { username } => ("REMOVE", username.as_str()),
                    _ => ("REGISTRATION", "-"),
                };
                match answer {
                    Ok(()) => log(format_args!("{what} {user} ({})", self.peer)),
                    Err(e) => log(format_args!(
                        "{what}-FAIL {user}: {} {} ({})",
                        e.code,
                        e.condition(),
                        self.peer
                    )),
                }
                server
                    .answer_register(Instant::now(), answer)
                    .map_err(|e| format!("answer_register: {e}"))?;
            }
            ServerEvent::LegacyAuth(LegacyAuthRequest::ZeroKState { username }) => {
                let state = self.shared.store.zero_k_state(&username);
                server
                    .answer_legacy_auth(Instant::now(), LegacyAuthAnswer::ZeroK(state))
                    .map_err(|e| format!("answer_legacy_auth: {e}"))?;
            }
            ServerEvent::LegacyAuth(LegacyAuthRequest::Verify {
                username,
                resource,
                credential,
                stream_id,
            }) => {
                let verdict = self.legacy_verdict(&username, &resource, &credential, &stream_id);
                match verdict {
                    Err(LegacyError::CONFLICT) => log(format_args!(
                        "BIND-CONFLICT {username}@{}/{resource} ({})",
                        self.shared.domain, self.peer
                    )),
                    Err(e) => log(format_args!(
                        "AUTHFAIL {username} via jabber:iq:auth: {} {} ({})",
                        e.code,
                        e.condition(),
                        self.peer
                    )),
                    Ok(()) => {}
                }
                server
                    .answer_legacy_auth(Instant::now(), LegacyAuthAnswer::Verdict(verdict))
                    .map_err(|e| format!("answer_legacy_auth: {e}"))?;
            }
            ServerEvent::Ready { jid } => {
                if self.bound.as_deref() != Some(jid.as_str()) {
                    // The server bound another JID than the one reserved
                    // (it should not): route by what it says.
                    self.unregister();
                    self.shared.router.rebind(
                        &jid.to_string(),
                        Route {
                            session: self.id,
                            queue: self.queue.clone(),
                        },
                    );
                    self.bound = Some(jid.to_string());
                }
                log(format_args!(
                    "LOGIN {jid} via {} ({}, {}{})",
                    self.mechanism.as_deref().unwrap_or("-"),
                    self.tls_summary.as_deref().unwrap_or("no TLS"),
                    self.peer,
                    self.transport
                ));
            }
            ServerEvent::Stanza(el) => {
                let sender = server.jid().map(|j| j.to_string()).unwrap_or_default();
                if let Some(reply) = self.shared.router.route(&sender, el) {
                    let _ = server.send(&reply);
                }
            }
            ServerEvent::Error(e) => log(format_args!(
                "{} {}{}: {e}",
                if e == ServerError::ClosedByPeer {
                    "CLOSED"
                } else {
                    "ERROR"
                },
                self.peer,
                self.bound
                    .as_deref()
                    .or(self.user.as_deref())
                    .map(|u| format!(" ({u})"))
                    .unwrap_or_default()
            )),
            ServerEvent::Closed => {}
            ServerEvent::Bind2Enabled(f) => {
                let full = self.bound.clone().unwrap_or_default();
                log(format_args!(
                    "BIND2-INLINE {full} carbons {} csi {}",
                    if f.carbons { "on" } else { "off" },
                    f.csi.map_or("none", |s| s.as_str())
                ));
                if f.carbons {
                    self.shared.router.enable_carbons(&full);
                }
            }
            ServerEvent::StreamManagementEnabled { id } => {
                log(format_args!(
                    "SM {} resume {}",
                    self.bound.as_deref().unwrap_or("-"),
                    if id.is_some() { "yes" } else { "no" }
                ));
                if let Some(id) = id {
                    self.sm_id = Some(id);
                    self.attach();
                }
            }
            ServerEvent::Detached(state) => {
                if self.resuming.is_none() {
                    self.detach_id();
                }
                self.sm_id = None;
                // Routed stanzas not sent yet stay with the session.
                let left = std::mem::take(&mut *self.routed.lock().expect("routed lock"));
                if let Some((held, _)) = self.resuming.take() {
                    // A session the machine did not resume (another
                    // user's): back to the host as it was.
                    let left = left
                        .into_iter()
                        .chain(std::iter::from_fn(|| match held.try_recv() {
                            Ok(Input::Route(el)) => Some(el),
                            _ => None,
                        }))
                        .collect();
                    let _ = self.shared.detach(state, left);
                } else {
                    // This session: its route becomes the holder's; then
                    // what was routed here before that (behind the end of
                    // the connection in the queue) goes there too.
                    self.bound = None;
                    let holder = self.shared.detach(state, left);
                    if let Some(inputs) = &self.inputs {
                        let inputs = inputs.lock().expect("inputs lock");
                        while let Ok(input) = inputs.try_recv() {
                            if let Input::Route(el) = input {
                                let _ = holder.try_send(Input::Route(el));
                            }
                        }
                    }
                }
            }
            ServerEvent::Resume(req) => {
                self.shared.expire(None);
                self.take_over(&req.previd, req.jid.as_str());
                self.sm_id = Some(req.previd.clone());
                let found = self
                    .shared
                    .detached
                    .lock()
                    .expect("detached lock")
                    .remove(&req.previd);
                let answer = match found {
                    Some(d) => {
                        self.resuming = Some((d.held, d.expires));
                        ResumeAnswer::Found(d.state)
                    }
                    None => {
                        log(format_args!(
                            "RESUME-FAIL {} {}: unknown or expired ({})",
                            req.jid, req.previd, self.peer
                        ));
                        ResumeAnswer::NotFound
                    }
                };
                server
                    .answer_resume(Instant::now(), answer)
                    .map_err(|e| format!("answer_resume: {e}"))?;
            }
            ServerEvent::Resumed { jid, h } => {
                // The JID routes here again; then what was held for it.
                let full = jid.to_string();
                self.shared.router.rebind(
                    &full,
                    Route {
                        session: self.id,
                        queue: self.queue.clone(),
                    },
                );
                self.bound = Some(full);
                self.attach();
                let mut held = 0;
                if let Some((queue, _)) = self.resuming.take() {
                    while let Ok(input) = queue.try_recv() {
                        if let Input::Route(el) = input {
                            held += 1;
                            let _ = server.send(&el);
                        }
                    }
                }
                log(format_args!(
                    "RESUMED {jid} h={h}: {held} held stanzas delivered ({})",
                    self.peer
                ));
            }
            ServerEvent::Undelivered(stanzas) => log(format_args!(
                "UNDELIVERED {}: {} stanzas",
                self.bound.as_deref().unwrap_or("-"),
                stanzas.len()
            )),
            ServerEvent::Acked(_) => {}
            // Requests of later versions of the crate: this host does not
            // know them (a request left unanswered would stall the stream).
            _ => {}
        }
        Ok(())
    }

    /// The verdict on legacy credentials: 401 for bad ones, 406 for an
    /// empty resource, 409 when the full JID is bound already (else it is
    /// reserved for this session, as a bind would).
    fn legacy_verdict(
        &mut self,
        username: &str,
        resource: &str,
        credential: &LegacyCredential,
        stream_id: &str,
    ) -> Result<(), LegacyError> {
        self.user = Some(username.to_owned());
        if !self
            .shared
            .store
            .check_legacy(username, credential, stream_id)
        {
            return Err(LegacyError::NOT_AUTHORIZED);
        }
        if resource.is_empty() {
            return Err(LegacyError::NOT_ACCEPTABLE);
        }
        let full = format!("{username}@{}/{resource}", self.shared.domain);
        let route = Route {
            session: self.id,
            queue: self.queue.clone(),
        };
        if !self.shared.router.bind(&full, route) {
            return Err(LegacyError::CONFLICT);
        }
        self.bound = Some(full);
        Ok(())
    }

    /// EXTERNAL: the account the verified client certificate names (see
    /// `client_cert::user_for`), if there is such an account.
    fn external(&mut self, authzid: Option<&str>) -> CredentialAnswer {
        let cert = self.client_cert.lock().expect("client cert lock").clone();
        let verdict = client_cert::user_for(
            cert.as_ref().map(|c| c.as_ref()),
            &self.shared.domain,
            authzid,
        );
        if let Ok(user) = &verdict {
            self.user = Some(user.clone());
        }
        CredentialAnswer::Verdict(verdict.and_then(|user| {
            if self.shared.store.accounts().contains_key(&user) {
                Ok(user)
            } else {
                Err(SaslCondition::NotAuthorized)
            }
        }))
    }

    fn unregister(&mut self) {
        if let Some(jid) = self.bound.take() {
            self.shared.router.unbind(&jid, self.id);
        }
    }
}

fn main() -> ExitCode {
    let args = match host::args_or_exit(parse_args(std::env::args().skip(1)), HELP, |e| {
        eprintln!("server: {e}")
    }) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match start(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e}");
            ExitCode::from(2)
        }
    }
}

/// The one configuration every connection shares, checked at start. The
/// SCRAM secret for unknown users is drawn once, here, by `build`.
///
/// `web`: the configuration of the `--websocket` or `--bosh` listener
/// (its framing, and whether TLS comes first: wss, https); plain ws and
/// http (loopback) are treated as secure, PLAIN included, as Prosody's
/// `consider_websocket_secure` and `consider_bosh_secure`.
fn server_config(
    args: &Args,
    mechanisms: &[String],
    web: Option<(Framing, bool)>,
    gssapi: Option<&GssapiKey>,
) -> Result<ServerConfig, String> {
    let mut config = ServerConfig::builder(args.domain.clone());
    if let Some(key) = gssapi {
        config.registry.register(key.factory());
    }
    config.tls = match (web, args.tls) {
        (Some((_, true)), _) | (None, TlsArg::Direct) => ServerTls::Direct,
        (Some((_, false)), _) | (None, TlsArg::None) => ServerTls::None,
        (None, TlsArg::StartTls) => ServerTls::StartTlsRequired,
    };
    if let Some((framing, secure)) = web {
        config.framing = framing;
        config.allow_plain_without_tls = !secure;
    }
    config.mechanisms = mechanisms.to_vec();
    config.scram_unknown_user_iterations = ITERATIONS;
    if args.allow_register {
        config.register = Some(register_form());
    }
    if args.legacy_auth {
        config.legacy_auth = Some(LegacyAuthMethods::default());
    }
    if let Some(d) = args.element_timeout {
        config.element_timeout = d;
    }
    config.idle_timeout = args.idle_timeout;
    if args.sm {
        let mut sm = SmSettings::server();
        sm.max_resume = Some(args.sm_resume_timeout);
        config.stream_management = Some(sm);
    }
    if args.sasl2 {
        let mut sasl2 = xmpp_sansio::sasl2::Sasl2Settings::new();
        // FAST: every HT mechanism, channel binding first (those the
        // stream's TLS allows are offered).
        sasl2.fast = xmpp_sansio::sasl::ht::HtMechanism::ALL
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        sasl2.carbons = true;
        sasl2.csi = true;
        config.sasl2 = Some(sasl2);
    }
    config.build().map_err(|e| format!("configuration: {e}"))
}

/// `--gssapi-keytab`: the acceptor credential of `xmpp/<domain>` and its
/// realm, loaded once at start (a missing or wrong keytab stops the server
/// with the library's reason).
#[cfg(feature = "gssapi")]
struct GssapiKey {
    credential: xmpp_sansio_hosts::gssapi::AcceptorCredential,
    realm: String,
}

#[cfg(feature = "gssapi")]
impl GssapiKey {
    fn load(keytab: &std::path::Path, domain: &str) -> Result<Self, String> {
        use xmpp_sansio_hosts::gssapi::AcceptorCredential;
        let credential = AcceptorCredential::from_keytab(keytab, "xmpp", domain)
            .map_err(|e| format!("--gssapi-keytab: {e}"))?;
        let realm = credential
            .realm()
            .map_err(|e| format!("--gssapi-keytab: {e}"))?;
        Ok(Self { credential, realm })
    }

    fn realm(&self) -> String {
        self.realm.clone()
    }

    fn factory(&self) -> xmpp_sansio::server::ServerMechanismFactory {
        use xmpp_sansio_hosts::gssapi::GssContext;
        let credential = self.credential.clone();
        xmpp_sansio::server::ServerMechanismFactory::gssapi(move |_target| {
            Ok(Box::new(credential.acceptor()) as Box<dyn GssContext>)
        })
    }
}

/// Without the feature: no Kerberos library, so no GSSAPI (`load` fails).
#[cfg(not(feature = "gssapi"))]
enum GssapiKey {}

#[cfg(not(feature = "gssapi"))]
impl GssapiKey {
    fn load(_: &std::path::Path, _: &str) -> Result<Self, String> {
        Err("--gssapi-keytab needs the hosts crate built with --features gssapi".into())
    }

    fn realm(&self) -> String {
        match *self {}
    }

    fn factory(&self) -> xmpp_sansio::server::ServerMechanismFactory {
        match *self {}
    }
}

fn start(args: Args) -> Result<(), String> {
    let mut mechanisms = args
        .mechanisms
        .clone()
        .unwrap_or_else(|| ServerConfig::builder(args.domain.clone()).mechanisms);
    let gssapi = match &args.gssapi_keytab {
        Some(f) => Some(GssapiKey::load(f, &args.domain)?),
        None => None,
    };
    let gssapi_name = xmpp_sansio::sasl::gssapi::NAME;
    match (&gssapi, mechanisms.iter().any(|m| m == gssapi_name)) {
        (None, true) => return Err("--mechanisms GSSAPI needs --gssapi-keytab F".into()),
        (Some(_), false) => mechanisms.insert(0, gssapi_name.to_owned()),
        _ => {}
    }
    if args.client_ca.is_some() {
        // Offered after TLS, to clients with a verified certificate.
        mechanisms.insert(0, "EXTERNAL".into());
    }
    let tls = match (&args.cert, &args.key) {
        (Some(c), Some(k)) if args.tls != TlsArg::None => Some(Arc::new(tls_setup(&args, c, k)?)),
        _ => None,
    };
    if let Some(why) = tls.as_ref().and_then(|t| t.end_point_problem()) {
        eprintln!("server: no tls-server-end-point for this certificate: {why}");
    }
    let mut store = Store::new(&args.domain, &args.users, &mechanisms, args.legacy_auth)?;
    store.gssapi_realm = gssapi.as_ref().map(GssapiKey::realm);
    store.fast_ttl = i64::try_from(args.fast_ttl.as_secs()).unwrap_or(i64::MAX);
    let config = Arc::new(server_config(&args, &mechanisms, None, gssapi.as_ref())?);
    let listener =
        TcpListener::bind(&args.listen).map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let wss = tls.is_some();
    // The configuration of a web listener, when there is one.
    let web_config = |on: bool, framing| -> Result<_, String> {
        if !on {
            return Ok(None);
        }
        // Client certificates are TCP's (`--client-ca`): no EXTERNAL on
        // the web listeners.
        let web_mechanisms: Vec<String> = mechanisms
            .iter()
            .filter(|m| *m != "EXTERNAL")
            .cloned()
            .collect();
        let config = server_config(
            &args,
            &web_mechanisms,
            Some((framing, wss)),
            gssapi.as_ref(),
        )?;
        Ok(Some(Arc::new(config)))
    };
    let ws_listener = web_listener("--websocket", args.websocket.as_deref(), wss)?;
    let ws_config = web_config(ws_listener.is_some(), Framing::WebSocket)?;
    let bosh_listener = web_listener("--bosh", args.bosh.as_deref(), wss)?;
    let bosh_config = web_config(bosh_listener.is_some(), Framing::Bosh)?;
    let shared = Arc::new(Shared {
        domain: args.domain.clone(),
        tls_arg: args.tls,
        tls,
        config,
        ws_config,
        bosh_config,
        store,
        client_ca: args.client_ca.is_some(),
        router: Router::new(&args.domain),
        detached: Mutex::new(HashMap::new()),
        attached: Mutex::new(HashMap::new()),
        sm_resume_timeout: args.sm_resume_timeout,
    });
    if args.sm {
        // Detached sessions expire on time, even with nobody connecting.
        let shared = shared.clone();
        thread::spawn(move || loop {
            thread::sleep(Duration::from_millis(500));
            shared.expire(None);
        });
    }
    log(format_args!(
        "LISTENING {addr} domain {} tls {} mechanisms {} users {}",
        args.domain,
        args.tls.as_str(),
        mechanisms.join(","),
        args.users.len()
    ));
    // Session ids from both listeners.
    let next_id = Arc::new(AtomicU64::new(0));
    if let Some((ws_listener, ws_addr)) = ws_listener {
        log(format_args!(
            "LISTENING-WS {ws_addr} {}",
            if wss { "wss" } else { "ws" }
        ));
        let on = sessions(shared.clone(), next_id.clone(), WEBSOCKET);
        thread::spawn(move || accept_loop(ws_listener, on));
    }
    if let Some((bosh_listener, bosh_addr)) = bosh_listener {
        let on = bosh_listener_start(shared.clone(), next_id.clone());
        log(format_args!(
            "LISTENING-BOSH {bosh_addr} {}",
            if wss { "https" } else { "http" }
        ));
        thread::spawn(move || accept_loop(bosh_listener, on));
    }
    accept_loop(listener, sessions(shared, next_id, ""));
    Ok(())
}

/// The TLS setup of `--cert`/`--key`, asking for client certificates with
/// `--client-ca`.
fn tls_setup(
    args: &Args,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<TlsSetup, String> {
    let Some(ca) = &args.client_ca else {
        return TlsSetup::load(cert, key);
    };
    let verifier = client_cert::optional_verifier(ca)?;
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--cert {}: {e}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--key {}: {e}", key.display()))?;
    TlsSetup::with_client_verifier(certs, key, Some(verifier))
}

/// `, client certificate XmppAddr(...)` for the TLS summary of the log.
fn client_cert_note(cert: Option<&CertificateDer<'_>>) -> String {
    match cert.map(|c| client_cert::identity(c.as_ref())) {
        None => String::new(),
        Some(Ok(id)) => format!(", client certificate {id:?}"),
        Some(Err(e)) => format!(", client certificate without identity ({e})"),
    }
}

/// The `--websocket` or `--bosh` listener, bound: plain (ws, http) only on
/// loopback.
fn web_listener(
    flag: &str,
    addr: Option<&str>,
    tls: bool,
) -> Result<Option<(TcpListener, SocketAddr)>, String> {
    let Some(a) = addr else {
        return Ok(None);
    };
    let l = TcpListener::bind(a).map_err(|e| format!("{flag} {a}: {e}"))?;
    let bound = l.local_addr().map_err(|e| e.to_string())?;
    if !tls && !bound.ip().is_loopback() {
        return Err(format!(
            "{flag} {a}: plain HTTP only on a loopback address (TLS needs --cert/--key)"
        ));
    }
    Ok(Some((l, bound)))
}

/// What a listener does with each connection.
type OnConnection = Box<dyn FnMut(TcpStream, SocketAddr) + Send>;

/// A session thread for each connection (`transport`: its LOGIN mark).
fn sessions(shared: Arc<Shared>, next_id: Arc<AtomicU64>, transport: &'static str) -> OnConnection {
    Box::new(move |sock, peer| {
        let id = next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let shared = shared.clone();
        thread::spawn(move || serve(shared, id, sock, peer, transport));
    })
}

/// Accepts connections for ever, each handed to `on`.
fn accept_loop(listener: TcpListener, mut on: OnConnection) {
    for conn in listener.incoming() {
        let sock = match conn {
            Ok(s) => s,
            Err(e) => {
                log(format_args!("ERROR accept: {e}"));
                continue;
            }
        };
        let peer = match sock.peer_addr() {
            Ok(p) => p,
            Err(_) => continue,
        };
        on(sock, peer);
    }
}

// ---------------------------------------------------------------------------
// The BOSH listener: HTTP connection threads, and one thread that owns the
// connection manager (a `BoshXmppServer`: a `Server` per session)

/// Most BOSH sessions at once (the connection manager refuses more).
const BOSH_SESSIONS: usize = 256;
/// Most HTTP connections of the BOSH listener at once (more are closed).
const BOSH_CONNECTIONS: usize = 512;
/// An HTTP connection without a request for this long is closed.
const HTTP_IDLE: Duration = Duration::from_secs(120);
/// A request the connection manager has not answered by then (it answers
/// held ones at `wait`, 60 s at most) is closed unanswered.
const BOSH_ANSWER: Duration = Duration::from_secs(90);

/// What reaches the BOSH thread.
enum BoshInput {
    /// A request body from an HTTP connection of `peer` (over TLS: its
    /// summary); the answer goes to `reply` (dropped: closed unanswered).
    Request {
        body: Vec<u8>,
        peer: SocketAddr,
        tls: Option<String>,
        reply: std::sync::mpsc::Sender<Vec<u8>>,
    },
    /// A stanza routed to the session `sid`.
    Route { sid: String, el: Element },
}

/// Starts the BOSH thread; what the listener does with each connection.
fn bosh_listener_start(shared: Arc<Shared>, next_id: Arc<AtomicU64>) -> OnConnection {
    let (to_bosh, inputs) = std::sync::mpsc::channel();
    {
        let (shared, me) = (shared.clone(), to_bosh.clone());
        thread::spawn(move || bosh_thread(shared, next_id, inputs, me));
    }
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Box::new(move |sock, peer| {
        if open.fetch_add(1, Ordering::Relaxed) >= BOSH_CONNECTIONS {
            open.fetch_sub(1, Ordering::Relaxed);
            return; // dropped: closed
        }
        let (shared, to_bosh, open) = (shared.clone(), to_bosh.clone(), open.clone());
        thread::spawn(move || {
            serve_http(&shared, sock, peer, &to_bosh);
            open.fetch_sub(1, Ordering::Relaxed);
        });
    })
}

/// One HTTP connection: TLS first when the server has a certificate
/// (https), then requests until the client closes; each BOSH body goes to
/// the BOSH thread and its answer back.
fn serve_http(
    shared: &Shared,
    sock: TcpStream,
    peer: SocketAddr,
    to_bosh: &std::sync::mpsc::Sender<BoshInput>,
) {
    let _ = sock.set_nodelay(true);
    let _ = sock.set_write_timeout(Some(WRITE_TIMEOUT));
    let (mut conn, tls): (BoxTransport, _) = match &shared.tls {
        Some(setup) => {
            let deadline = Some(Instant::now() + HANDSHAKE_TIMEOUT);
            match setup.blocking_accept(false, Box::new(sock), &[], deadline) {
                // The session gets no channel binding: it spans connections.
                Ok(up) => {
                    let tls = up.summary.split(", channel binding").next().unwrap_or("");
                    (up.stream, Some(format!("{tls}, no channel binding (BOSH)")))
                }
                Err(e) => return log(format_args!("ERROR {peer}: {e}")),
            }
        }
        None => (Box::new(sock), None),
    };
    let served = bosh::serve_blocking(&mut conn, HTTP_IDLE, |body| {
        let (reply, answer) = std::sync::mpsc::channel();
        let tls = tls.clone();
        to_bosh
            .send(BoshInput::Request {
                body,
                peer,
                tls,
                reply,
            })
            .ok()?;
        answer.recv_timeout(BOSH_ANSWER).ok()
    });
    if let Err(e) = served {
        log(format_args!("ERROR {peer}: {e}"));
    }
    conn.hang_up();
}

/// The owner of the connection manager: takes request bodies and routed
/// stanzas, answers held requests, runs the deadlines, and acts on every
/// session's `Server` events as a TCP session does ([`Session::on_event`]).
fn bosh_thread(
    shared: Arc<Shared>,
    next_id: Arc<AtomicU64>,
    inputs: Receiver<BoshInput>,
    me: std::sync::mpsc::Sender<BoshInput>,
) {
    let Some(config) = shared.bosh_config.clone() else {
        return;
    };
    let rules = BoshManagerConfig {
        max_sessions: BOSH_SESSIONS,
        ..BoshManagerConfig::default()
    };
    let mut cm = match BoshXmppServer::with_os_random(config, rules) {
        Ok(cm) => cm,
        Err(e) => return log(format_args!("ERROR bosh: {e}")),
    };
    // https: TLS, without channel binding (a session spans connections);
    // the version is not known per session.
    cm.set_tls(
        shared
            .tls
            .is_some()
            .then(|| TlsInfo::without_binding(TlsVersion::Tls13)),
    );
    let mut held: HashMap<RequestHandle, std::sync::mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut sessions: HashMap<String, Session> = HashMap::new();
    // The peer of the latest request: a session created by it is theirs.
    let mut latest: Option<(SocketAddr, Option<String>)> = None;
    loop {
        let input = match cm.poll_timeout() {
            Some(t) => match inputs.recv_timeout(t.saturating_duration_since(Instant::now())) {
                Ok(i) => Some(i),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match inputs.recv() {
                Ok(i) => Some(i),
                Err(_) => return,
            },
        };
        let now = Instant::now();
        match input {
            Some(BoshInput::Request {
                body,
                peer,
                tls,
                reply,
            }) => {
                latest = Some((peer, tls));
                match cm.handle_request(now, &body) {
                    Reply::Immediate(b) | Reply::Refused { body: b, .. } => {
                        let _ = reply.send(b);
                    }
                    Reply::Held(h) => {
                        held.insert(h, reply);
                    }
                }
            }
            // A session that ended meanwhile: dropped.
            Some(BoshInput::Route { sid, el }) => drop(cm.send(now, &sid, &el)),
            None => {}
        }
        if cm.poll_timeout().is_some_and(|t| t <= now) {
            cm.handle_timeout(now);
        }
        loop {
            let mut moved = false;
            while let Some(ev) = cm.poll_event() {
                moved = true;
                match ev {
                    BoshXmppServerEvent::Created { sid } => {
                        let Some((peer, tls)) = latest.clone() else {
                            continue;
                        };
                        let s = bosh_session(&shared, &next_id, &me, &sid, peer, tls);
                        sessions.insert(sid, s);
                    }
                    BoshXmppServerEvent::Session { sid, event } => {
                        let Some(s) = sessions.get_mut(&sid) else {
                            continue;
                        };
                        let peer = s.peer;
                        if let Some(Err(e)) =
                            cm.with_server(now, &sid, |server| s.on_event(server, event))
                        {
                            log(format_args!("ERROR {peer}: {e}"));
                            cm.close(now, &sid);
                        }
                    }
                    BoshXmppServerEvent::RequestDropped(h) => drop(held.remove(&h)),
                    BoshXmppServerEvent::Ended { sid, reason } => {
                        if let Some(mut s) = sessions.remove(&sid) {
                            s.unregister();
                            log(format_args!(
                                "END {}: bosh session over ({reason:?})",
                                s.peer
                            ));
                        }
                    }
                    _ => {}
                }
            }
            while let Some((h, body)) = cm.poll_response() {
                moved = true;
                if let Some(reply) = held.remove(&h) {
                    let _ = reply.send(body);
                }
            }
            if !moved {
                break;
            }
        }
    }
}

/// The routing end of a new BOSH session `sid`: stanzas routed to it
/// reach the BOSH thread through a thread of its own (which ends with the
/// session's routes).
fn bosh_session(
    shared: &Arc<Shared>,
    next_id: &AtomicU64,
    me: &std::sync::mpsc::Sender<BoshInput>,
    sid: &str,
    peer: SocketAddr,
    tls_summary: Option<String>,
) -> Session {
    let (queue, routed) = sync_channel(QUEUE);
    let (me, sid) = (me.clone(), sid.to_owned());
    thread::spawn(move || {
        for input in routed {
            if let Input::Route(el) = input {
                let sid = sid.clone();
                if me.send(BoshInput::Route { sid, el }).is_err() {
                    return;
                }
            }
        }
    });
    Session {
        shared: shared.clone(),
        id: next_id.fetch_add(1, Ordering::Relaxed) + 1,
        peer,
        queue,
        tls_summary,
        bound: None,
        mechanism: None,
        user: None,
        transport: BOSH,
        // HTTP carries no client certificate to the session.
        client_cert: Arc::new(Mutex::new(None)),
        resuming: None,
        routed: Arc::new(Mutex::new(Vec::new())),
        inputs: None,
        replace: Arc::new(AtomicBool::new(false)),
        sm_id: None,
    }
}

#[cfg(test)]
mod rotation_tests {
    /// A week's token rotates once less than half a week is left.
    #[test]
    fn rotation_is_due_past_half_the_lifetime() {
        let week = 7 * 86_400;
        let issued = 1_000_000;
        let expiry = issued + week;
        assert!(!super::rotation_due(expiry, week, issued));
        assert!(!super::rotation_due(expiry, week, issued + week / 2));
        assert!(super::rotation_due(expiry, week, issued + week / 2 + 1));
        assert!(super::rotation_due(expiry, week, expiry + 5));
    }
}
