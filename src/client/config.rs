//! What a [`Client`](super::Client) is told before it starts.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use jid::{BareJid, DomainRef, NodeRef, ResourcePart, ResourceRef};

use crate::framing::Framing;
use crate::sasl::policy::{ClientPolicy, CredentialKind};
use crate::sasl::scram::ScramClientKeys;
use crate::sasl::Secret;
pub use crate::tls::TlsInfo;
use crate::validate::{check_duration, check_jid, check_limits, check_writable, ConfigError};
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
    /// The host wraps every connection in TLS before XMPP starts
    /// (XEP-0368 direct TLS): no STARTTLS. Each connection's TLS facts
    /// (version, channel-binding data) go to its client through
    /// [`Client::direct_tls`](super::Client::direct_tls); without them the
    /// stream counts as unencrypted.
    Direct,
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

/// Everything a [`ClientConfig`] is built from, with its defaults: set
/// the fields, then [`build`](Self::build) checks them all and prepares
/// the JID. `#[non_exhaustive]`: start from [`ClientSettings::new`](crate::client::ClientSettings::new) (or
/// [`ClientConfig::builder`]), so new settings are not breaking changes.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientSettings {
    /// The account: `user@domain`, or just `domain` for ANONYMOUS and
    /// EXTERNAL, as given; [`build`](Self::build) prepares it (RFC 7622:
    /// `Juliet@EXAMPLE.com` is `Juliet@example.com`, whose domain is the
    /// stream's `to`) and refuses one that is not a bare JID.
    pub jid: String,
    /// The credentials.
    pub credentials: Credentials,
    /// The resource to ask for; `None` lets the server choose. Prepared
    /// (resourceprep) by [`build`](Self::build), which refuses one with a
    /// control character.
    pub resource: Option<String>,
    /// How the stream is protected.
    pub tls: TlsMode,
    /// How the stream is carried: [`Framing::Tcp`] (the default) or
    /// [`Framing::WebSocket`] (RFC 7395: the host moves whole messages
    /// with [`Client::feed_message`](super::Client::feed_message) and
    /// [`Client::poll_message`](super::Client::poll_message)). Over
    /// WebSocket there is no STARTTLS: TLS is the WebSocket's (`wss`), told
    /// with [`Client::direct_tls`](super::Client::direct_tls), and
    /// [`TlsMode::StartTlsRequired`] means that no credentials go out
    /// unless it was; no whitespace keepalive is sent.
    pub framing: Framing,
    /// The SASL mechanism policy.
    pub policy: ClientPolicy,
    /// The FAST policy (XEP-0484): ask for a token, fall back to the
    /// password after a failed token login. Default: neither.
    pub fast: crate::fast::FastPolicy,
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
    /// Stream management (XEP-0198): `Some` enables it after binding when
    /// the server offers it (acknowledgements, resumption; see
    /// [`sm`](crate::sm)). Default `None`: off.
    pub stream_management: Option<crate::sm::SmSettings>,
    /// SASL2 (XEP-0388) or RFC 6120 SASL when the server offers both:
    /// [`Sasl2Policy::Auto`](crate::sasl2::Sasl2Policy::Auto) (the
    /// default) takes SASL2, with Bind 2 and stream management inline when
    /// offered (the [`resource`](Self::resource) is Bind 2's `<tag/>`).
    pub sasl2: crate::sasl2::Sasl2Policy,
    /// SASL2's `<user-agent/>`: a stable id (a UUID the host keeps for
    /// this installation) and the software and device names. `None`: none
    /// sent.
    pub user_agent: Option<crate::steps::sasl2::UserAgent>,
    /// Bind 2: enable Message Carbons (XEP-0280) inline, when the server
    /// lists `urn:xmpp:carbons:2` among Bind 2's inline features.
    /// [`ClientEvent::Bind2Enabled`](crate::client::ClientEvent::Bind2Enabled)
    /// says whether it did; when not (not listed, RFC 6120 binding), the
    /// host enables them with XEP-0280's IQ after
    /// [`Ready`](crate::client::ClientEvent::Ready). Default `false`.
    pub carbons: bool,
    /// Bind 2: the Client State Indication (XEP-0352) the session starts
    /// in, sent inline when the server lists `urn:xmpp:csi:0`; reported
    /// like [`carbons`](Self::carbons). Default `None`: none sent.
    pub csi: Option<crate::steps::bind2::CsiState>,
    /// SASL2: ask for the XEP-0480 SCRAM upgrade tasks the server offers
    /// (with a password only: the client computes the new SaltedPassword).
    /// Default `true`.
    pub scram_upgrades: bool,
    /// After sending `</stream:stream>`, wait this long for the server's.
    pub close_grace: Duration,
    /// A fixed SCRAM client nonce / DIGEST-MD5 cnonce. **Only for
    /// transcript replays and tests**: a fixed nonce removes the
    /// mechanism's replay protection.
    pub replay_nonce: Option<String>,
}

impl ClientSettings {
    /// The defaults: STARTTLS required, the default policy, a 30 s
    /// negotiation deadline, no keepalive, a 5 s close grace,
    /// `xml:lang='en'`.
    pub fn new(jid: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            jid: jid.into(),
            credentials,
            resource: None,
            tls: TlsMode::StartTlsRequired,
            framing: Framing::Tcp,
            policy: ClientPolicy::default(),
            fast: crate::fast::FastPolicy::default(),
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
            stream_management: None,
            sasl2: crate::sasl2::Sasl2Policy::Auto,
            user_agent: None,
            carbons: false,
            csi: None,
            scram_upgrades: true,
            close_grace: Duration::from_secs(5),
            replay_nonce: None,
        }
    }

    /// Checks every setting and prepares the JID and resource: the
    /// configuration a [`Client`](super::Client) runs with, to share
    /// behind an `Arc` between any number of clients.
    ///
    /// Refused, each with its [`ConfigError`]: a JID that is not a bare
    /// JID or fails preparation, a resource that fails resourceprep (a
    /// control character...), a zero or absurdly long duration (over
    /// [`MAX_DURATION`](crate::MAX_DURATION)), a zero limit, a value that
    /// goes on the wire but that XML cannot carry.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        let jid = check_jid("jid", &self.jid)?;
        let resource = self
            .resource
            .as_deref()
            .map(|r| {
                ResourcePart::new(r)
                    .map(std::borrow::Cow::into_owned)
                    .map_err(|e| ConfigError::jid("resource", e))
            })
            .transpose()?;
        self.validate()?;
        Ok(ClientConfig {
            settings: self,
            jid,
            resource,
        })
    }

    /// The checks of [`build`](Self::build) other than the JID's.
    fn validate(&self) -> Result<(), ConfigError> {
        self.check_wire()?;
        check_duration("negotiation_timeout", self.negotiation_timeout)?;
        check_duration("element_timeout", self.element_timeout)?;
        check_duration("close_grace", self.close_grace)?;
        if let Some(k) = self.keepalive {
            check_duration("keepalive", k)?;
        }
        if let Some(sm) = &self.stream_management {
            sm.check()?;
        }
        check_limits(&self.limits)
    }

    /// The values the client puts on the wire (in its header, bind,
    /// session, registration and `jabber:iq:auth` requests) can be written.
    fn check_wire(&self) -> Result<(), ConfigError> {
        check_writable("jid", &self.jid)?;
        if let Some(r) = &self.resource {
            check_writable("resource", r)?;
        }
        if let Some(l) = &self.lang {
            check_writable("lang", l)?;
        }
        if let Some(ua) = &self.user_agent {
            for v in [Some(&ua.id), ua.software.as_ref(), ua.device.as_ref()]
                .into_iter()
                .flatten()
            {
                check_writable("user_agent", v)?;
            }
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
}

/// A client configuration, checked and prepared by
/// [`ClientSettings::build`](crate::client::ClientSettings::build): built once, shared behind an `Arc` by every
/// [`Client`](super::Client) that uses it (a load tool's thousands of
/// sessions, a reconnecting client). Its settings read through `Deref`;
/// to change one, clone the [`settings`](Self::settings) and build again.
#[derive(Clone)]
pub struct ClientConfig {
    settings: ClientSettings,
    jid: BareJid,
    resource: Option<ResourcePart>,
}

impl ClientConfig {
    /// [`ClientSettings::new`](crate::client::ClientSettings::new): the settings with their defaults, to set
    /// and [`build`](ClientSettings::build).
    pub fn builder(jid: impl Into<String>, credentials: Credentials) -> ClientSettings {
        ClientSettings::new(jid, credentials)
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The account's bare JID, prepared.
    pub fn jid(&self) -> &BareJid {
        &self.jid
    }

    /// The domain part of the JID: the stream's `to`.
    pub fn domain(&self) -> &DomainRef {
        self.jid.domain()
    }

    /// The local part of the JID, if any.
    pub fn localpart(&self) -> Option<&NodeRef> {
        self.jid.node()
    }

    /// The user name that authenticates: the local part as the host
    /// spelled it (the server prepares it; SASL mechanisms apply SASLprep
    /// themselves), empty when the JID has none.
    pub fn username(&self) -> &str {
        self.settings
            .jid
            .rsplit_once('@')
            .map_or("", |(local, _)| local)
    }

    /// The resource to ask for, prepared.
    pub fn resource(&self) -> Option<&ResourceRef> {
        self.resource.as_deref()
    }
}

impl Deref for ClientConfig {
    type Target = ClientSettings;

    fn deref(&self) -> &ClientSettings {
        &self.settings
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("jid", &self.jid)
            .field("resource", &self.resource)
            .field("settings", &self.settings)
            .finish()
    }
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("jid", &self.jid)
            .field("credentials", &self.credentials)
            .field("resource", &self.resource)
            .field("tls", &self.tls)
            .field("framing", &self.framing)
            .field("policy", &self.policy)
            .field("fast", &self.fast)
            .field("mechanisms", &self.mechanisms)
            .finish_non_exhaustive()
    }
}
