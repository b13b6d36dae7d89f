//! What a [`Client`](super::Client) is told before it starts.

use std::fmt;
use std::time::Duration;

use crate::random::RandomSource;
use crate::sasl::policy::{ClientPolicy, CredentialKind};
use crate::sasl::scram::ScramClientKeys;
use crate::sasl::Secret;
pub use crate::tls::TlsInfo;
use crate::validate::{check_duration, check_limits, check_writable, ConfigError};
use crate::xml::Limits;
#[cfg(feature = "legacy")]
use crate::xml::{check_name, check_text};

/// How the stream is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Negotiate STARTTLS; refuse to authenticate when the server does not
    /// offer it (the default).
    StartTlsRequired,
    /// Use STARTTLS when offered, go on in the clear otherwise.
    StartTlsIfOffered,
    /// The host already wrapped the connection in TLS (XEP-0368 direct
    /// TLS): no STARTTLS. The host's TLS facts come with it.
    Direct(TlsInfo),
    /// No TLS at all (tests, loopback, a TLS-terminating proxy in front).
    None,
}

/// What the client authenticates with.
#[derive(Clone)]
pub enum Credentials {
    /// A password, optionally with SCRAM keys cached from an earlier login
    /// (they skip PBKDF2 when the server's salt and iteration count match).
    Password {
        /// The password.
        password: Secret,
        /// Cached SCRAM keys.
        cached: Option<ScramClientKeys>,
    },
    /// A bearer token (OAUTHBEARER, X-OAUTH2, X-GOOGLE-TOKEN).
    Token(Secret),
    /// The TLS client certificate, through SASL EXTERNAL.
    ClientCertificate,
    /// None: SASL ANONYMOUS.
    Anonymous,
    /// Credentials the host keeps itself and only its own registered
    /// mechanisms use (of [`CredentialKind::Host`]): a Kerberos ticket
    /// for a GSSAPI mechanism, say.
    Host,
}

impl Credentials {
    /// A password.
    pub fn password(p: impl Into<Secret>) -> Self {
        Self::Password {
            password: p.into(),
            cached: None,
        }
    }

    /// The kind, for the mechanism policy.
    pub fn kind(&self) -> CredentialKind {
        match self {
            Self::Password { .. } => CredentialKind::Password,
            Self::Token(_) => CredentialKind::Token,
            Self::ClientCertificate => CredentialKind::ClientCertificate,
            Self::Anonymous => CredentialKind::None,
            Self::Host => CredentialKind::Host,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password { cached, .. } => f
                .debug_struct("Password")
                .field("cached_keys", &cached.is_some())
                .finish_non_exhaustive(),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::ClientCertificate => f.write_str("ClientCertificate"),
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Host => f.write_str("Host"),
        }
    }
}

/// A client's configuration.
pub struct ClientConfig {
    /// The account: `user@domain`, or just `domain` for ANONYMOUS and
    /// EXTERNAL. The domain is the stream's `to`.
    pub jid: String,
    /// The credentials.
    pub credentials: Credentials,
    /// The resource to ask for; `None` lets the server choose.
    pub resource: Option<String>,
    /// How the stream is protected.
    pub tls: TlsMode,
    /// The SASL mechanism policy.
    pub policy: ClientPolicy,
    /// The SASL mechanisms the client can use: the crate's by default; a
    /// host registers its own, with the profile the policy ranks it by.
    pub mechanisms: super::ClientMechanisms,
    /// Non-SASL authentication (XEP-0078): when it may be used.
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    pub legacy_auth: super::LegacyAuthPolicy,
    /// An in-band registration (XEP-0077) to do before authenticating.
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    pub register: Option<super::Registration>,
    /// SCRAM: the lowest iteration count accepted from a server.
    pub min_scram_iterations: u32,
    /// SCRAM: the highest iteration count accepted from a server (a
    /// hostile one could otherwise make the client run PBKDF2 for a long
    /// time). Default 100,000.
    pub max_scram_iterations: u32,
    /// Legacy zero-knowledge authentication (XEP-0078, jabberd 1.4
    /// `mod_auth_0k`): the highest `<sequence/>` accepted from a server.
    /// The client hashes the password that many times inside
    /// [`Client::feed`](super::Client::feed), and the server chooses the
    /// count (up to 2^32 - 1: over an hour of SHA-1); above this it fails
    /// with [`PolicyError::ZeroKSequenceTooHigh`](super::PolicyError::ZeroKSequenceTooHigh)
    /// before hashing anything. jabberd 1.4 starts its chains at a few
    /// hundred. Default 10,000.
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    pub max_zero_k_sequence: u32,
    /// Report a `see-other-host` stream error that came over a stream not
    /// protected by TLS as [`ClientEvent::Redirect`](super::ClientEvent::Redirect)
    /// (with `protected: false`). Off by default: anyone on the path can
    /// forge such a redirect, so it is then only reported as the stream
    /// error it is. Whatever the host does with a redirect, RFC 6120
    /// 4.9.3.19 keeps the original domain (the JID's) as the reference
    /// identity: the new host's certificate is checked against that
    /// domain, not against the host named in the redirect.
    pub allow_redirect_without_tls: bool,
    /// `xml:lang` of the stream.
    pub lang: Option<String>,
    /// Reader limits for what the server sends.
    pub limits: Limits,
    /// From start to ready, at most this long.
    pub negotiation_timeout: Duration,
    /// Once ready, send a whitespace keepalive after this long without
    /// sending anything. `None`: never.
    pub keepalive: Option<Duration>,
    /// A top-level element from the server, once begun, must be complete
    /// within this (in every phase, ready included): a server trickling
    /// bytes cannot hold the element's memory for longer. On expiry the
    /// stream ends with `policy-violation`. Default 60 s.
    pub element_timeout: Duration,
    /// Output queued above this many bytes makes
    /// [`Client::output_congested`](super::Client::output_congested)
    /// true: stop sending (and reading) until the queue is written.
    /// Default 256 KiB.
    pub output_high_water: usize,
    /// What the session does with its buffers once ready. Default
    /// [`BufferPolicy::ReleaseWhenIdle`](crate::BufferPolicy::ReleaseWhenIdle).
    pub buffers: crate::BufferPolicy,
    /// After sending `</stream:stream>`, wait this long for the server's.
    pub close_grace: Duration,
    /// Randomness for nonces.
    pub rng: Box<dyn RandomSource>,
    /// A fixed SCRAM client nonce / DIGEST-MD5 cnonce. **Only for
    /// transcript replays and tests**: a fixed nonce removes the
    /// mechanism's replay protection.
    pub replay_nonce: Option<String>,
}

impl ClientConfig {
    /// A configuration with the defaults: STARTTLS required, the default
    /// policy, a 30 s negotiation deadline, no keepalive, a 5 s close
    /// grace, `xml:lang='en'`.
    pub fn new(
        jid: impl Into<String>,
        credentials: Credentials,
        rng: Box<dyn RandomSource>,
    ) -> Self {
        Self {
            jid: jid.into(),
            credentials,
            resource: None,
            tls: TlsMode::StartTlsRequired,
            policy: ClientPolicy::default(),
            mechanisms: super::ClientMechanisms::builtin(),
            #[cfg(feature = "legacy")]
            legacy_auth: super::LegacyAuthPolicy::default(),
            #[cfg(feature = "legacy")]
            register: None,
            min_scram_iterations: crate::sasl::scram::DEFAULT_MIN_ITERATIONS,
            max_scram_iterations: 100_000,
            #[cfg(feature = "legacy")]
            max_zero_k_sequence: 10_000,
            allow_redirect_without_tls: false,
            lang: Some("en".into()),
            limits: Limits::default(),
            negotiation_timeout: Duration::from_secs(30),
            keepalive: None,
            element_timeout: Duration::from_secs(60),
            output_high_water: 256 * 1024,
            buffers: crate::BufferPolicy::ReleaseWhenIdle,
            close_grace: Duration::from_secs(5),
            rng,
            replay_nonce: None,
        }
    }

    /// Checks the values that would make the client misbehave: a zero or
    /// absurdly long duration (over [`MAX_DURATION`](crate::MAX_DURATION)),
    /// a zero limit, and a value that goes on the wire but that XML cannot
    /// carry ([`ConfigError::Unwritable`]: a resource with U+0007...).
    /// [`Client::new`](super::Client::new) never panics on them (deadlines
    /// saturate); it checks the values that go on the wire itself, and a
    /// client whose values cannot be written sends nothing and fails at
    /// once with [`ClientError::Config`](super::ClientError::Config). A host
    /// should call this when it builds a configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_wire()?;
        check_duration("negotiation_timeout", self.negotiation_timeout)?;
        check_duration("element_timeout", self.element_timeout)?;
        check_duration("close_grace", self.close_grace)?;
        if let Some(k) = self.keepalive {
            check_duration("keepalive", k)?;
        }
        check_limits(&self.limits)
    }

    /// The values the client puts on the wire (in its header, bind,
    /// session, registration and `jabber:iq:auth` requests) can be written.
    pub(crate) fn check_wire(&self) -> Result<(), ConfigError> {
        check_writable("jid", &self.jid)?;
        if let Some(r) = &self.resource {
            check_writable("resource", r)?;
        }
        if let Some(l) = &self.lang {
            check_writable("lang", l)?;
        }
        #[cfg(feature = "legacy")]
        for (name, value) in self.register.iter().flat_map(|r| &r.fields) {
            check_name(name).map_err(|error| ConfigError::Unwritable {
                field: "register.fields",
                error,
            })?;
            if name == "password" {
                check_text(value).map_err(|_| ConfigError::UnwritablePassword)?;
            } else {
                check_writable("register.fields", value)?;
            }
        }
        // Sent as text only by legacy plaintext authentication.
        #[cfg(feature = "legacy")]
        if let (true, Credentials::Password { password, .. }) =
            (self.legacy_auth.enabled, &self.credentials)
        {
            check_text(password.expose()).map_err(|_| ConfigError::UnwritablePassword)?;
        }
        Ok(())
    }

    /// The domain part of the JID.
    pub fn domain(&self) -> &str {
        let bare = self.jid.split('/').next().unwrap_or_default();
        bare.rsplit_once('@').map_or(bare, |(_, d)| d)
    }

    /// The local part of the JID, if any.
    pub fn localpart(&self) -> Option<&str> {
        let bare = self.jid.split('/').next().unwrap_or_default();
        bare.rsplit_once('@').map(|(l, _)| l)
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("jid", &self.jid)
            .field("credentials", &self.credentials)
            .field("resource", &self.resource)
            .field("tls", &self.tls)
            .field("policy", &self.policy)
            .field("mechanisms", &self.mechanisms)
            .finish_non_exhaustive()
    }
}
