//! The server's mechanism registry: which mechanisms a server offers in
//! a stage, and building the one the client picked.

use std::sync::Arc;

use crate::fast::{FastAuth, FastFeature};
use crate::random::RandomSource;
use crate::sasl::anonymous::AnonymousServer;
use crate::sasl::channel_binding::advertisable_types;
#[cfg(feature = "digest-md5")]
use crate::sasl::digest_md5::DigestMd5Server;
use crate::sasl::external::ExternalServer;
use crate::sasl::gssapi::{self, GssContext, GssError, GssTarget, GssapiServer};
use crate::sasl::ht::{HtMechanism, HtServer};
use crate::sasl::oauthbearer::OAuthBearerServer;
use crate::sasl::plain::PlainServer;
use crate::sasl::registry::{Factory, MechanismRegistry};
use crate::sasl::scram::{parse_mechanism_name, ScramServer, ServerOffer};
#[cfg(feature = "google")]
use crate::sasl::x_google_token::XGoogleTokenServer;
use crate::sasl::x_oauth2::XOAuth2Server;
use crate::sasl::{SaslCondition, SaslError, ServerMechanism};
use crate::server::config::ServerConfig;
use crate::tls::TlsInfo;

/// What a server mechanism factory is given to build its mechanism.
#[non_exhaustive]
pub struct ServerMechanismInput<'a> {
    /// The mechanism name the client asked for.
    pub name: &'a str,
    /// What this stream offered.
    pub offer: &'a ServerOffer,
    /// The stream's TLS facts (channel-binding data), when encrypted.
    pub tls: Option<&'a TlsInfo>,
    /// The domain the client asked for.
    pub domain: &'a str,
    /// [`ServerSettings::downgrade_protection`](crate::server::ServerSettings::downgrade_protection).
    pub downgrade_protection: bool,
    /// [`ServerSettings::scram_unknown_user_secret`](crate::server::ServerSettings::scram_unknown_user_secret).
    pub unknown_user_secret: &'a [u8],
    /// [`ServerSettings::scram_unknown_user_iterations`](crate::server::ServerSettings::scram_unknown_user_iterations).
    pub unknown_user_iterations: u32,
    /// Randomness for nonces.
    pub rng: &'a mut dyn RandomSource,
    /// FAST (XEP-0484): the client's `<fast/>` of `<authenticate>`
    /// (`None` when it sent none), for the token request to the host.
    pub fast: Option<FastAuth>,
    /// The XEP-0388 `<user-agent id>` of `<authenticate>`, when given
    /// (FAST tokens are kept per client).
    pub user_agent_id: Option<&'a str>,
}

/// Builds a server mechanism from a [`ServerMechanismInput`].
pub type BuildServerMechanism =
    dyn Fn(ServerMechanismInput<'_>) -> Result<Box<dyn ServerMechanism>, SaslError> + Send + Sync;

/// When a server mechanism may be offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OfferRule {
    /// The client sends the secret in the clear: offered only over TLS
    /// unless [`ServerSettings::allow_plain_without_tls`](crate::server::ServerSettings::allow_plain_without_tls) (PLAIN and the
    /// bearer-token mechanisms).
    pub cleartext: bool,
    /// Offered only over TLS, whatever the configuration (EXTERNAL).
    pub tls_only: bool,
    /// Needs channel-binding data: offered only when the stream has a
    /// type to advertise (the `-PLUS` mechanisms).
    pub channel_binding: bool,
    /// Rests on a TLS client certificate: withheld when the host said the
    /// client presented none it verified
    /// ([`Server::client_certificate`](super::Server::client_certificate)`(false)`)
    /// (EXTERNAL).
    pub client_certificate: bool,
}

/// A server mechanism a [`Server`](super::Server) can offer: its name,
/// when it may be offered ([`OfferRule`]), and how to build it.
pub type ServerMechanismFactory = Factory<OfferRule, BuildServerMechanism>;

impl ServerMechanismFactory {
    /// The mechanism `name`, offered under `rule`, built by `build`.
    pub fn new(
        name: impl Into<String>,
        rule: OfferRule,
        build: impl Fn(ServerMechanismInput<'_>) -> Result<Box<dyn ServerMechanism>, SaslError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self::from_parts(name.into(), rule, Arc::new(build))
    }
}

impl ServerMechanismFactory {
    /// GSSAPI (RFC 4752) over the host's acceptor contexts: `new_context`
    /// is called once per exchange with [`GssTarget::xmpp`] at the domain
    /// the client asked for and returns a fresh acceptor context (with
    /// the keytab of `xmpp/<host>`, say). Offered with or without TLS (no
    /// secret crosses the stream). Register it in
    /// [`ServerSettings::registry`](crate::server::ServerSettings::registry)
    /// and name `GSSAPI` in
    /// [`ServerSettings::mechanisms`](crate::server::ServerSettings::mechanisms);
    /// the host then answers [`CredentialRequest::Gssapi`](crate::sasl::CredentialRequest::Gssapi).
    ///
    /// A failing `new_context` fails the exchange with
    /// `temporary-auth-failure`; the host has its [`GssError`] to log.
    pub fn gssapi(
        new_context: impl Fn(GssTarget<'_>) -> Result<Box<dyn GssContext>, GssError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self::new(gssapi::NAME, OfferRule::default(), move |i| {
            let context = new_context(GssTarget::xmpp(i.domain)).map_err(|_| {
                SaslError::new(
                    SaslCondition::TemporaryAuthFailure,
                    "the host could not create a GSS-API acceptor context",
                )
            })?;
            Ok(Box::new(GssapiServer::new(context)))
        })
    }
}

/// The mechanisms a server can build, by name. `Default` (and
/// [`builtin`](MechanismRegistry::builtin)) holds the crate's; a host
/// [`register`](MechanismRegistry::register)s its own and names it in
/// [`ServerSettings::mechanisms`](crate::server::ServerSettings::mechanisms) to offer it.
pub type ServerMechanisms = MechanismRegistry<OfferRule, BuildServerMechanism>;

impl Default for ServerMechanisms {
    fn default() -> Self {
        Self::builtin()
    }
}

/// The crate's server mechanisms and when each may be offered.
const BUILTIN: &[(&str, OfferRule)] = {
    const fn rule(cleartext: bool, tls_only: bool, channel_binding: bool) -> OfferRule {
        OfferRule {
            cleartext,
            tls_only,
            channel_binding,
            client_certificate: false,
        }
    }
    const CERTIFICATE: OfferRule = OfferRule {
        client_certificate: true,
        ..rule(false, true, false)
    };
    const CLEAR: OfferRule = rule(true, false, false);
    const PLUS: OfferRule = rule(false, false, true);
    const ANY: OfferRule = rule(false, false, false);
    &[
        ("SCRAM-SHA-512-PLUS", PLUS),
        ("SCRAM-SHA-256-PLUS", PLUS),
        ("SCRAM-SHA-1-PLUS", PLUS),
        ("SCRAM-SHA-512", ANY),
        ("SCRAM-SHA-256", ANY),
        ("SCRAM-SHA-1", ANY),
        #[cfg(feature = "digest-md5")]
        ("DIGEST-MD5", ANY),
        ("PLAIN", CLEAR),
        ("OAUTHBEARER", CLEAR),
        ("X-OAUTH2", CLEAR),
        #[cfg(feature = "google")]
        ("X-GOOGLE-TOKEN", CLEAR),
        ("EXTERNAL", CERTIFICATE),
        ("ANONYMOUS", ANY),
    ]
};

impl ServerMechanisms {
    /// The crate's server mechanisms.
    pub fn builtin() -> Self {
        BUILTIN
            .iter()
            .map(|&(name, rule)| ServerMechanismFactory::new(name, rule, build_builtin))
            .chain(
                HtMechanism::ALL
                    .into_iter()
                    .map(|m| ServerMechanismFactory::new(m.name(), m.offer_rule(), build_builtin)),
            )
            .collect()
    }
}

/// What the server offers on a stream with this TLS state: the
/// mechanisms (those of [`ServerSettings::mechanisms`](crate::server::ServerSettings::mechanisms) that are registered
/// and whose [`OfferRule`] allows it) and the XEP-0440 channel-binding
/// types. `client_certificate`: what the host said of the TLS client
/// certificate ([`Server::client_certificate`](super::Server::client_certificate));
/// `Some(false)` withholds EXTERNAL.
pub(crate) fn offer(
    config: &ServerConfig,
    tls: Option<&TlsInfo>,
    client_certificate: Option<bool>,
) -> ServerOffer {
    let cb_types: Vec<String> = tls
        .map(|t| {
            advertisable_types(t.version, &t.binding_types())
                .into_iter()
                .map(|k| k.as_str().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let cleartext_ok = tls.is_some() || config.allow_plain_without_tls;
    let mechanisms = config
        .mechanisms
        .iter()
        .filter(|m| {
            config.registry.get(m).is_some_and(|f| {
                let rule = f.traits();
                (!rule.cleartext || cleartext_ok)
                    && (!rule.tls_only || tls.is_some())
                    && (!rule.channel_binding || !cb_types.is_empty())
                    && (!rule.client_certificate || client_certificate != Some(false))
            })
        })
        .cloned()
        .collect();
    let mut offer = ServerOffer::new::<Vec<String>, String>(mechanisms);
    if !cb_types.is_empty() {
        offer = offer.with_channel_binding_types(cb_types);
    }
    offer
}

/// Builds the server side of `name`, which must be in `offer`.
pub(crate) fn build(
    config: &ServerConfig,
    rng: &mut dyn crate::RandomSource,
    name: &str,
    offer: &ServerOffer,
    tls: Option<&TlsInfo>,
    domain: &str,
) -> Result<Box<dyn ServerMechanism>, SaslError> {
    build_with(config, rng, name, offer, tls, domain, None)
}

/// What a client's SASL2 `<authenticate>` that logs in with a FAST token
/// said, for [`fast_mechanism`].
#[derive(Debug, Clone, Copy)]
pub struct FastLogin<'a> {
    /// The FAST feature this stream offered ([`fast::offer`](crate::fast::offer)).
    pub feature: &'a FastFeature,
    /// The client's `<fast/>` element.
    pub fast: FastAuth,
    /// The `<user-agent id>`, when given.
    pub user_agent_id: Option<&'a str>,
}

/// Builds the server side of the FAST mechanism `name` the client named
/// in `<authenticate>`: it must be registered and in `login.feature`
/// (`invalid-mechanism` otherwise). The token request it makes carries
/// the client's `<fast/>` and user-agent id.
pub fn fast_mechanism(
    config: &ServerConfig,
    rng: &mut dyn crate::RandomSource,
    name: &str,
    login: FastLogin<'_>,
    tls: Option<&TlsInfo>,
    domain: &str,
) -> Result<Box<dyn ServerMechanism>, SaslError> {
    let offer = ServerOffer::new(login.feature.mechanisms.clone());
    build_with(config, rng, name, &offer, tls, domain, Some(login))
}

fn build_with(
    config: &ServerConfig,
    rng: &mut dyn crate::RandomSource,
    name: &str,
    offer: &ServerOffer,
    tls: Option<&TlsInfo>,
    domain: &str,
    fast: Option<FastLogin<'_>>,
) -> Result<Box<dyn ServerMechanism>, SaslError> {
    let factory = config
        .registry
        .get(name)
        .filter(|_| offer.offers(name))
        .ok_or(SaslError::new(
            SaslCondition::InvalidMechanism,
            "mechanism not offered",
        ))?;
    (factory.build)(ServerMechanismInput {
        name,
        offer,
        tls,
        domain,
        downgrade_protection: config.downgrade_protection && fast.is_none(),
        unknown_user_secret: config.unknown_user_secret(),
        unknown_user_iterations: config.scram_unknown_user_iterations,
        rng,
        fast: fast.map(|f| f.fast),
        user_agent_id: fast.and_then(|f| f.user_agent_id),
    })
}

/// The crate's mechanisms, by name.
fn build_builtin(i: ServerMechanismInput<'_>) -> Result<Box<dyn ServerMechanism>, SaslError> {
    if let Some(m) = HtMechanism::from_name(i.name) {
        return Ok(Box::new(HtServer::new(m, i.tls)?.with_context(
            i.fast.unwrap_or_default(),
            i.user_agent_id.map(str::to_owned),
        )));
    }
    Ok(match i.name {
        "PLAIN" => Box::new(PlainServer::new()),
        #[cfg(feature = "digest-md5")]
        "DIGEST-MD5" => Box::new(DigestMd5Server::new(i.domain, i.rng)),
        "EXTERNAL" => Box::new(ExternalServer::new()),
        "ANONYMOUS" => Box::new(AnonymousServer::new()),
        "X-OAUTH2" => Box::new(XOAuth2Server::new()),
        #[cfg(feature = "google")]
        "X-GOOGLE-TOKEN" => Box::new(XGoogleTokenServer::new()),
        "OAUTHBEARER" => Box::new(OAuthBearerServer::new()),
        n => {
            let Some((hash, plus)) = parse_mechanism_name(n) else {
                return Err(SaslError::new(
                    SaslCondition::InvalidMechanism,
                    "unknown mechanism",
                ));
            };
            let mut b = ScramServer::builder(hash, plus, i.offer)
                .downgrade_protection(i.downgrade_protection)
                .unknown_users(i.unknown_user_secret, i.unknown_user_iterations);
            if let Some(t) = i.tls {
                for cb in t
                    .channel_bindings
                    .iter()
                    .filter(|c| c.kind.is_defined_for(t.version))
                {
                    b = b.channel_binding(cb.clone());
                }
            }
            Box::new(b.build(i.rng)?)
        }
    })
}
