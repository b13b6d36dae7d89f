//! What a [`Server`](super::Server) is told before it starts.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use jid::{DomainPart, DomainRef};

use crate::framing::Framing;
use crate::sasl::SecretBytes;
#[cfg(feature = "legacy")]
use crate::server::LegacyAuthMethods;
#[cfg(feature = "legacy")]
use crate::steps::register::RegisterForm;
#[cfg(feature = "legacy")]
use crate::validate::check_element;
use crate::validate::{check_domain, check_duration, check_limits, check_writable, ConfigError};
use crate::xml::Limits;

/// How client streams are protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTls {
    /// Offer STARTTLS with `<required/>`: no authentication before it
    /// (the default).
    StartTlsRequired,
    /// Offer STARTTLS without requiring it.
    StartTlsOptional,
    /// The host accepts every connection over TLS before XMPP starts
    /// (XEP-0368 direct TLS): no STARTTLS. Each connection's TLS facts
    /// go to its server through
    /// [`Server::direct_tls`](super::Server::direct_tls); without them the
    /// stream counts as unencrypted.
    Direct,
    /// No TLS (tests, loopback, a TLS-terminating proxy in front).
    None,
}

/// Everything a [`ServerConfig`] is built from, with its defaults: set
/// the fields, then [`build`](Self::build) checks them all and prepares
/// the domains. `#[non_exhaustive]`: start from [`ServerSettings::new`](crate::server::ServerSettings::new)
/// (or [`ServerConfig::builder`]), so new settings are not breaking
/// changes.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerSettings {
    /// The domains this server serves, as given; [`build`](Self::build)
    /// prepares them (nameprep: `EXAMPLE.com` is `example.com`), and a
    /// header `to` is prepared too before it is compared: anything else
    /// gets `host-unknown`.
    pub domains: Vec<String>,
    /// How streams are protected.
    pub tls: ServerTls,
    /// How streams are carried: [`Framing::Tcp`] (the default) or
    /// [`Framing::WebSocket`] (RFC 7395: the host moves whole messages
    /// with [`Server::feed_message`](super::Server::feed_message) and
    /// [`Server::poll_message`](super::Server::poll_message)); a server
    /// with a TCP and a WebSocket listener builds one configuration for
    /// each. Over WebSocket STARTTLS is never offered: TLS is the
    /// WebSocket's (`wss`), told with
    /// [`Server::direct_tls`](super::Server::direct_tls), and
    /// [`ServerTls::StartTlsRequired`] means that authentication is
    /// refused (`encryption-required`) unless it was.
    pub framing: Framing,
    /// The SASL mechanisms to offer, strongest first. `-PLUS` variants are
    /// offered only when the host supplies channel-binding data; PLAIN,
    /// OAUTHBEARER, X-OAUTH2 and X-GOOGLE-TOKEN only over TLS unless
    /// [`allow_plain_without_tls`](Self::allow_plain_without_tls); EXTERNAL
    /// only over TLS (each mechanism's [`OfferRule`](super::OfferRule)).
    /// A name must be in [`registry`](Self::registry) to be offered: an
    /// unknown one, DIGEST-MD5 without the `digest-md5` feature,
    /// X-GOOGLE-TOKEN without `google` are not.
    pub mechanisms: Vec<String>,
    /// The SASL mechanisms the server can build: the crate's by default;
    /// a host registers its own here and names it in
    /// [`mechanisms`](Self::mechanisms) to offer it.
    pub registry: super::ServerMechanisms,
    /// Offer PLAIN and the bearer-token mechanisms (OAUTHBEARER, X-OAUTH2,
    /// X-GOOGLE-TOKEN) on unencrypted streams, where the password or token
    /// crosses the network in the clear. Default off.
    pub allow_plain_without_tls: bool,
    /// Failed authentication attempts allowed on one stream, all kinds
    /// counted together: SASL failures, SASL `<abort/>`s, and
    /// `jabber:iq:auth` failures (a 401 verdict from the host, a method
    /// refused, any credential before a required TLS). The failure that
    /// reaches this count is answered as usual, then the stream ends with
    /// `policy-violation`. Default 3 (0 behaves as 1).
    pub max_auth_failures: u32,
    /// From the stream's start, authentication must be done within this
    /// (jabberd's `authtime`, seed 001). Default 60 s.
    pub auth_timeout: Duration,
    /// From the stream's start, the session must be ready within this.
    /// Default 120 s.
    pub negotiation_timeout: Duration,
    /// After sending `</stream:stream>`, wait this long for the client's.
    pub close_grace: Duration,
    /// A top-level element from the client, once begun, must be complete
    /// within this (in every phase, ready included): a client trickling
    /// bytes cannot hold the element's memory for longer. On expiry the
    /// stream ends with `policy-violation`. Default 60 s.
    pub element_timeout: Duration,
    /// Once ready, a client that sends nothing (not even a whitespace
    /// keepalive) for this long is disconnected with
    /// `connection-timeout`. Default `None`: no idle deadline.
    pub idle_timeout: Option<Duration>,
    /// Output queued above this many bytes makes
    /// [`Server::output_congested`](super::Server::output_congested)
    /// true: stop reading from the client (whose requests make the
    /// output) until the queue is written. Default 256 KiB.
    pub output_high_water: usize,
    /// What the session does with its buffers once ready. Default
    /// [`BufferPolicy::ReleaseWhenIdle`](crate::BufferPolicy::ReleaseWhenIdle).
    pub buffers: crate::BufferPolicy,
    /// Stream management (XEP-0198): `Some` offers `<sm/>` after
    /// authentication and enables it when a bound client asks, with
    /// resumption when [`SmSettings::resume`](crate::sm::SmSettings::resume)
    /// (see [`sm`](crate::sm)). Default `None`: not offered.
    pub stream_management: Option<crate::sm::SmSettings>,
    /// SASL2 (XEP-0388): `Some` offers it next to RFC 6120 SASL, with
    /// Bind 2 and stream management inline (when
    /// [`stream_management`](Self::stream_management) is on) and the
    /// XEP-0480 upgrades it names (see [`sasl2`](crate::sasl2)). Default
    /// `None`: not offered.
    pub sasl2: Option<crate::sasl2::Sasl2Settings>,
    /// Send XEP-0474's SCRAM downgrade protection (`h=`). Default on.
    pub downgrade_protection: bool,
    /// The key from which SCRAM salts for unknown users are derived. When
    /// the host answers a SCRAM credential request with
    /// `CredentialAnswer::Scram(None)`, the server still sends a
    /// server-first message, with the salt
    /// [`unknown_user_salt`](crate::sasl::scram::unknown_user_salt)`(secret,
    /// hash, user)` and
    /// [`scram_unknown_user_iterations`](Self::scram_unknown_user_iterations),
    /// and fails the exchange at the proof with `not-authorized`, as for a
    /// wrong password: the exchange does not tell which users exist.
    ///
    /// `None` (the default): [`build`](Self::build) draws 32 bytes from
    /// the OS random source (the `getrandom` feature; without it, `build`
    /// refuses with [`ConfigError::MissingSecret`]). The configuration is
    /// built once and shared by every connection, so every connection
    /// uses the same secret, as it must: a fresh one per connection would
    /// give an unknown user a new salt on every login while a known
    /// user's stays the same. Set it to keep the salts across restarts.
    /// It must not be empty.
    pub scram_unknown_user_secret: Option<SecretBytes>,
    /// The iteration count announced for unknown users (see
    /// [`scram_unknown_user_secret`](Self::scram_unknown_user_secret)): set
    /// it to the count of the stored credentials. Default 4096; not 0.
    pub scram_unknown_user_iterations: u32,
    /// Offer RFC 3921 session establishment (as `<optional/>`). Default on,
    /// for old clients (seeds 000, 004) that need it.
    pub offer_session: bool,
    /// In-band registration (XEP-0077): the form to offer (`username` and
    /// `password` are always added). `None`: registration is off (501).
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    pub register: Option<RegisterForm>,
    /// Non-SASL authentication (XEP-0078) and its methods; also admits
    /// pre-1.0 streams (seed 001). `None`: off. With
    /// [`ServerTls::StartTlsRequired`], every `jabber:iq:auth` query before
    /// TLS is refused (406) without asking the host; a pre-1.0 stream gets
    /// no features, so no STARTTLS offer: a Jabber 1.4 client cannot log
    /// in then.
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    pub legacy_auth: Option<LegacyAuthMethods>,
    /// Reader limits for what the client sends.
    pub limits: Limits,
    /// Most bytes kept unread while a request is with the host (they are
    /// read after the answer, because what they mean depends on it); more
    /// ends the stream with `policy-violation`. This counts the rest of
    /// the read that brought the request too, so the heap a client can
    /// make the server hold does not depend on the host's read size.
    /// Default 256 KiB (the default element limit).
    pub max_held_bytes: usize,
    /// `xml:lang` of the server's stream.
    pub lang: Option<String>,
}

impl ServerSettings {
    /// The defaults for `domain`: STARTTLS required, SCRAM-SHA-256-PLUS,
    /// SCRAM-SHA-256, SCRAM-SHA-1-PLUS, SCRAM-SHA-1 and PLAIN (over TLS),
    /// three attempts, XEP-0474 on.
    pub fn new(domain: impl Into<String>) -> Self {
        Self {
            domains: vec![domain.into()],
            tls: ServerTls::StartTlsRequired,
            framing: Framing::Tcp,
            mechanisms: [
                "SCRAM-SHA-256-PLUS",
                "SCRAM-SHA-256",
                "SCRAM-SHA-1-PLUS",
                "SCRAM-SHA-1",
                "PLAIN",
            ]
            .map(String::from)
            .to_vec(),
            registry: super::ServerMechanisms::builtin(),
            allow_plain_without_tls: false,
            max_auth_failures: 3,
            auth_timeout: Duration::from_secs(60),
            negotiation_timeout: Duration::from_secs(120),
            close_grace: Duration::from_secs(5),
            element_timeout: Duration::from_secs(60),
            idle_timeout: None,
            output_high_water: 256 * 1024,
            buffers: crate::BufferPolicy::ReleaseWhenIdle,
            stream_management: None,
            sasl2: None,
            downgrade_protection: true,
            scram_unknown_user_secret: None,
            scram_unknown_user_iterations: 4096,
            offer_session: true,
            #[cfg(feature = "legacy")]
            register: None,
            #[cfg(feature = "legacy")]
            legacy_auth: None,
            limits: Limits::default(),
            max_held_bytes: 256 * 1024,
            lang: Some("en".into()),
        }
    }

    /// Checks every setting and prepares the domains: the configuration a
    /// [`Server`](super::Server) runs with, to share behind an `Arc`
    /// between every connection.
    ///
    /// Refused, each with its [`ConfigError`]: no domain, a domain that
    /// fails preparation, a zero or absurdly long duration (over
    /// [`MAX_DURATION`](crate::MAX_DURATION)), a zero limit, an empty
    /// unknown-user secret or iteration count, and a value that goes on
    /// the wire but that XML cannot carry (a mechanism name or
    /// registration form with a control character, a form field that is
    /// not an XML name).
    pub fn build(mut self) -> Result<ServerConfig, ConfigError> {
        if self.domains.is_empty() {
            return Err(ConfigError::Limit { field: "domains" });
        }
        let domains = self
            .domains
            .iter()
            .map(|d| check_domain("domains", d))
            .collect::<Result<Vec<_>, _>>()?;
        self.validate()?;
        let secret = match self.scram_unknown_user_secret.take() {
            Some(s) if !s.expose().is_empty() => s,
            Some(_) => {
                return Err(ConfigError::Limit {
                    field: "scram_unknown_user_secret",
                })
            }
            None => os_secret()?,
        };
        self.scram_unknown_user_secret = Some(secret.clone());
        Ok(ServerConfig {
            settings: self,
            domains,
            secret,
            features: Default::default(),
        })
    }

    /// The checks of [`build`](Self::build) other than the domains'.
    fn validate(&self) -> Result<(), ConfigError> {
        self.check_wire()?;
        check_duration("auth_timeout", self.auth_timeout)?;
        check_duration("negotiation_timeout", self.negotiation_timeout)?;
        check_duration("element_timeout", self.element_timeout)?;
        check_duration("close_grace", self.close_grace)?;
        if let Some(d) = self.idle_timeout {
            check_duration("idle_timeout", d)?;
        }
        if let Some(sm) = &self.stream_management {
            sm.check()?;
        }
        if self
            .sasl2
            .as_ref()
            .is_some_and(|s| s.upgrade_iterations == 0)
        {
            return Err(ConfigError::Limit {
                field: "sasl2.upgrade_iterations",
            });
        }
        if self.scram_unknown_user_iterations == 0 {
            return Err(ConfigError::Limit {
                field: "scram_unknown_user_iterations",
            });
        }
        if self.max_held_bytes == 0 {
            return Err(ConfigError::Limit {
                field: "max_held_bytes",
            });
        }
        check_limits(&self.limits)
    }
}

/// 32 bytes from the OS random source.
#[cfg(feature = "getrandom")]
fn os_secret() -> Result<SecretBytes, ConfigError> {
    let mut secret = vec![0; 32];
    crate::random::RandomSource::fill(&mut crate::OsRandom, &mut secret);
    Ok(SecretBytes::new(secret))
}

#[cfg(not(feature = "getrandom"))]
fn os_secret() -> Result<SecretBytes, ConfigError> {
    Err(ConfigError::MissingSecret {
        field: "scram_unknown_user_secret",
    })
}

impl ServerSettings {
    /// The values the server puts on the wire (its header, features and
    /// registration form) can be written.
    fn check_wire(&self) -> Result<(), ConfigError> {
        for d in &self.domains {
            check_writable("domains", d)?;
        }
        for m in &self.mechanisms {
            check_writable("mechanisms", m)?;
        }
        if let Some(l) = &self.lang {
            check_writable("lang", l)?;
        }
        #[cfg(feature = "legacy")]
        if let Some(form) = &self.register {
            check_element("register", &crate::steps::register::form_result("id", form))?;
        }
        Ok(())
    }
}

/// A server configuration, checked and prepared by
/// [`ServerSettings::build`](crate::server::ServerSettings::build): built once, shared behind an `Arc` by every
/// connection's [`Server`](super::Server) (its domains, mechanism registry
/// and forms are not rebuilt per connection). Its settings read through
/// `Deref`; to change one, clone the [`settings`](Self::settings) and
/// build again.
#[derive(Clone)]
pub struct ServerConfig {
    settings: ServerSettings,
    domains: Vec<DomainPart>,
    secret: SecretBytes,
    features: super::feature_cache::FeatureCache,
}

impl ServerConfig {
    /// [`ServerSettings::new`](crate::server::ServerSettings::new): the settings with their defaults, to set
    /// and [`build`](ServerSettings::build).
    pub fn builder(domain: impl Into<String>) -> ServerSettings {
        ServerSettings::new(domain)
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    /// The domains served, prepared.
    pub fn domains(&self) -> &[DomainPart] {
        &self.domains
    }

    /// The served domain that `to` names once prepared, if any.
    pub(crate) fn served(&self, to: &str) -> Option<&DomainRef> {
        let to = DomainPart::new(to).ok()?;
        self.domains.iter().map(|d| &**d).find(|d| **d == *to)
    }

    /// The feature sets its connections have written, serialised.
    pub(crate) fn feature_cache(&self) -> &super::feature_cache::FeatureCache {
        &self.features
    }

    /// The secret unknown users' SCRAM salts are derived from.
    pub(crate) fn unknown_user_secret(&self) -> &[u8] {
        self.secret.expose()
    }
}

impl Deref for ServerConfig {
    type Target = ServerSettings;

    fn deref(&self) -> &ServerSettings {
        &self.settings
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("domains", &self.domains)
            .field("settings", &self.settings)
            .finish()
    }
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSettings")
            .field("domains", &self.domains)
            .field("tls", &self.tls)
            .field("mechanisms", &self.mechanisms)
            .finish_non_exhaustive()
    }
}
