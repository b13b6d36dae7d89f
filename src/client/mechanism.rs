//! The client's mechanism registry, and from the policy's choice to a
//! ready client mechanism.

use std::sync::Arc;

use crate::client::config::{ClientConfig, Credentials, TlsInfo};
use crate::fast::{FastFeature, FastRefusal, FastToken};
use crate::random::RandomSource;
use crate::sasl::anonymous::AnonymousClient;
use crate::sasl::channel_binding::{choose_channel_binding, ChannelBinding};
#[cfg(feature = "digest-md5")]
use crate::sasl::digest_md5::DigestMd5Client;
use crate::sasl::external::ExternalClient;
use crate::sasl::gssapi::{self, GssContext, GssError, GssTarget, GssapiClient};
use crate::sasl::ht::{HtClient, HtMechanism};
use crate::sasl::oauthbearer::OAuthBearerClient;
use crate::sasl::plain::PlainClient;
use crate::sasl::policy::{MechanismProfile, SelectError, SelectionContext, BUILTIN};
use crate::sasl::registry::{Factory, MechanismRegistry};
use crate::sasl::scram::{parse_mechanism_name, ScramClient, ServerOffer};
#[cfg(feature = "google")]
use crate::sasl::x_google_token::XGoogleTokenClient;
use crate::sasl::x_oauth2::XOAuth2Client;
use crate::sasl::{ClientMechanism, SaslCondition, SaslError};

/// What a client mechanism factory is given to build its mechanism.
#[non_exhaustive]
pub struct ClientMechanismInput<'a> {
    /// The mechanism name being built.
    pub name: &'a str,
    /// The client's credentials.
    pub credentials: &'a Credentials,
    /// The JID's local part (empty when it has none).
    pub username: &'a str,
    /// The JID's domain.
    pub domain: &'a str,
    /// The bare JID.
    pub bare_jid: &'a str,
    /// What the server offered.
    pub offer: &'a ServerOffer,
    /// Channel-binding data of a type the server accepts, when the host
    /// supplied some.
    pub channel_binding: Option<&'a ChannelBinding>,
    /// [`ClientSettings::min_scram_iterations`](crate::client::ClientSettings::min_scram_iterations).
    pub min_scram_iterations: u32,
    /// [`ClientSettings::max_scram_iterations`](crate::client::ClientSettings::max_scram_iterations).
    pub max_scram_iterations: u32,
    /// [`ClientSettings::replay_nonce`](crate::client::ClientSettings::replay_nonce) (tests and replays only).
    pub replay_nonce: Option<&'a str>,
    /// Randomness for nonces.
    pub rng: &'a mut dyn RandomSource,
    /// The FAST token to log in with, when building a FAST mechanism
    /// (with [`channel_binding`](Self::channel_binding) of the type the
    /// mechanism's name says, if any).
    pub fast_token: Option<&'a FastToken>,
}

/// Builds a client mechanism from a [`ClientMechanismInput`].
pub type BuildClientMechanism =
    dyn Fn(ClientMechanismInput<'_>) -> Result<Box<dyn ClientMechanism>, SaslError> + Send + Sync;

/// A client mechanism the [`Client`](super::Client) can select: its name,
/// what the selection policy needs to know ([`MechanismProfile`]), and
/// how to build it.
pub type ClientMechanismFactory = Factory<MechanismProfile, BuildClientMechanism>;

impl ClientMechanismFactory {
    /// The mechanism `name`, with `profile`, built by `build`.
    pub fn new(
        name: impl Into<String>,
        profile: MechanismProfile,
        build: impl Fn(ClientMechanismInput<'_>) -> Result<Box<dyn ClientMechanism>, SaslError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self::from_parts(name.into(), profile, Arc::new(build))
    }
}

impl ClientMechanismFactory {
    /// GSSAPI (RFC 4752) over the host's initiator contexts:
    /// `new_context` is called once per connection with
    /// [`GssTarget::xmpp`] at the JID's domain and returns a fresh
    /// context (a `libgssapi` client context for `xmpp@domain`, say).
    /// Ranked by [`gssapi::CLIENT_PROFILE`]: the client picks it when its
    /// [`Credentials`] are [`Credentials::Host`] and the server offers it.
    /// It sends no authzid; a host that wants one registers its own
    /// factory around [`GssapiClient::with_authzid`].
    ///
    /// A failing `new_context` fails the exchange before `<auth/>`
    /// (`not-authorized`); the host has its [`GssError`] to log.
    pub fn gssapi(
        new_context: impl Fn(GssTarget<'_>) -> Result<Box<dyn GssContext>, GssError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self::new(gssapi::NAME, gssapi::CLIENT_PROFILE, move |i| {
            let context = new_context(GssTarget::xmpp(i.domain)).map_err(|_| {
                SaslError::not_authorized("the host could not create a GSS-API context")
            })?;
            Ok(Box::new(GssapiClient::new(context)))
        })
    }
}

/// The mechanisms a client can select, by name. `Default` (and
/// [`builtin`](MechanismRegistry::builtin)) holds the crate's (see
/// [`policy::BUILTIN`](crate::sasl::policy::BUILTIN)); a host
/// [`register`](MechanismRegistry::register)s its own.
pub type ClientMechanisms = MechanismRegistry<MechanismProfile, BuildClientMechanism>;

impl Default for ClientMechanisms {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ClientMechanisms {
    /// The crate's client mechanisms.
    pub fn builtin() -> Self {
        BUILTIN
            .iter()
            .map(|&(name, profile)| ClientMechanismFactory::new(name, profile, build_builtin))
            .chain(
                HtMechanism::ALL.into_iter().map(|m| {
                    ClientMechanismFactory::new(m.name(), m.client_profile(), build_builtin)
                }),
            )
            .collect()
    }
}

/// The crate's mechanisms, by name.
fn build_builtin(i: ClientMechanismInput<'_>) -> Result<Box<dyn ClientMechanism>, SaslError> {
    if let Some(m) = HtMechanism::from_name(i.name) {
        let token = i
            .fast_token
            .filter(|t| t.mechanism == i.name)
            .ok_or(SaslError::new(
                SaslCondition::InvalidMechanism,
                "no FAST token bound to this mechanism",
            ))?;
        return Ok(Box::new(HtClient::with_token(
            m,
            i.username,
            &token.token,
            i.channel_binding,
        )?));
    }
    let mech: Box<dyn ClientMechanism> = match (i.credentials, i.name) {
        (Credentials::Password { password, cached }, n) if parse_mechanism_name(n).is_some() => {
            let (hash, plus) = parse_mechanism_name(n).expect("checked");
            let mut b = ScramClient::builder(hash, i.username, i.offer)
                .password(password.clone())
                .min_iterations(i.min_scram_iterations)
                .max_iterations(i.max_scram_iterations);
            if let Some(k) = cached {
                b = b.cached_keys(k.clone());
            }
            if let Some(n) = i.replay_nonce {
                b = b.nonce(n);
            }
            // Bind when using -PLUS; with a non-PLUS choice, say `y` only
            // when the server offers no -PLUS at all (otherwise the choice
            // was narrowed by the policy and `n` is the honest flag).
            if let Some(cb) = i
                .channel_binding
                .filter(|_| plus || !i.offer.offers_scram_plus())
            {
                b = b.channel_binding(cb.clone());
            }
            Box::new(b.build(i.rng)?)
        }
        #[cfg(feature = "digest-md5")]
        (Credentials::Password { password, .. }, "DIGEST-MD5") => {
            let mut m = DigestMd5Client::new(i.username, password.clone(), i.domain, i.rng);
            if let Some(n) = i.replay_nonce {
                m = m.with_cnonce(n);
            }
            Box::new(m)
        }
        (Credentials::Password { password, .. }, "PLAIN") => {
            Box::new(PlainClient::new(i.username, password.clone()))
        }
        (Credentials::Token(token), "OAUTHBEARER") => Box::new(
            OAuthBearerClient::new(token.clone())
                .with_authzid(i.bare_jid)
                .with_host(i.domain),
        ),
        (Credentials::Token(token), "X-OAUTH2") => {
            Box::new(XOAuth2Client::new(i.username, token.clone()))
        }
        #[cfg(feature = "google")]
        (Credentials::Token(token), "X-GOOGLE-TOKEN") => {
            Box::new(XGoogleTokenClient::new(i.bare_jid, token.clone()))
        }
        (Credentials::ClientCertificate, "EXTERNAL") => Box::new(ExternalClient::new()),
        (Credentials::Anonymous, "ANONYMOUS") => Box::new(AnonymousClient::new()),
        _ => {
            return Err(SaslError::new(
                SaslCondition::InvalidMechanism,
                "the policy chose a mechanism the credentials cannot drive",
            ))
        }
    };
    Ok(mech)
}

/// Chooses and builds the mechanism for what the server offered.
pub(crate) fn choose(
    config: &ClientConfig,
    rng: &mut dyn crate::RandomSource,
    offer: &ServerOffer,
    tls: Option<&TlsInfo>,
) -> Result<Box<dyn ClientMechanism>, ChooseError> {
    let binding = tls.and_then(|t| {
        let kind = choose_channel_binding(
            t.version,
            offer.channel_binding_types.as_deref(),
            &t.binding_types(),
        )?;
        t.channel_bindings.iter().find(|b| b.kind == kind).cloned()
    });
    let ctx = SelectionContext {
        offered: &offer.mechanisms,
        tls: tls.is_some(),
        can_bind: binding.is_some() && offer.offers_scram_plus(),
        credentials: config.credentials.kind(),
    };
    let known = config.mechanisms.iter().map(|f| (f.name(), f.traits()));
    let name = config
        .policy
        .select_among(known, &ctx)
        .map_err(ChooseError::Policy)?;
    build(config, rng, name, offer, binding.as_ref(), None).map_err(ChooseError::Sasl)
}

/// Builds the registered mechanism `name` with what the configuration
/// says, the server's offer and the binding data it uses.
fn build(
    config: &ClientConfig,
    rng: &mut dyn crate::RandomSource,
    name: &str,
    offer: &ServerOffer,
    channel_binding: Option<&ChannelBinding>,
    fast_token: Option<&FastToken>,
) -> Result<Box<dyn ClientMechanism>, SaslError> {
    let factory = config.mechanisms.get(name).ok_or(SaslError::new(
        SaslCondition::InvalidMechanism,
        "no such mechanism registered",
    ))?;
    (factory.build)(ClientMechanismInput {
        name,
        credentials: &config.credentials,
        username: config.username(),
        domain: config.domain().as_str(),
        bare_jid: config.jid().as_str(),
        offer,
        channel_binding,
        min_scram_iterations: config.min_scram_iterations,
        max_scram_iterations: config.max_scram_iterations,
        replay_nonce: config.replay_nonce.as_deref(),
        rng,
        fast_token,
    })
}

/// Builds the FAST mechanism that logs in with `token` (the one it is
/// bound to) on a stream whose SASL2 features offered `feature`, once
/// [`ClientSettings::fast`](crate::client::ClientSettings::fast)'s
/// [`check_login`](crate::fast::FastPolicy::check_login) allows it: the
/// factory gets the token and the channel-binding data of the type the
/// mechanism's name says (for an `HT-*` name; a host's own FAST mechanism
/// gets the data [`choose_channel_binding`] picks). `now_unix`: the
/// host's clock, to refuse an expired token before sending it.
pub fn fast_mechanism(
    config: &ClientConfig,
    rng: &mut dyn crate::RandomSource,
    feature: Option<&FastFeature>,
    token: &FastToken,
    tls: Option<&TlsInfo>,
    now_unix: Option<i64>,
) -> Result<Box<dyn ClientMechanism>, FastMechanismError> {
    fast_mechanism_from(config, rng, feature.cloned(), token, tls, now_unix)
}

/// [`fast_mechanism`] with the feature given away: its list of
/// mechanisms becomes the factory's offer without a copy (the client
/// parses the feature for this login only).
pub(crate) fn fast_mechanism_from(
    config: &ClientConfig,
    rng: &mut dyn crate::RandomSource,
    feature: Option<FastFeature>,
    token: &FastToken,
    tls: Option<&TlsInfo>,
    now_unix: Option<i64>,
) -> Result<Box<dyn ClientMechanism>, FastMechanismError> {
    config
        .fast
        .check_login(feature.as_ref(), &config.mechanisms, token, tls, now_unix)
        .map_err(FastMechanismError::Refused)?;
    let name = token.mechanism.as_str();
    let binding = tls.and_then(|t| {
        let kind = match HtMechanism::from_name(name) {
            Some(m) => m.binding.channel_binding_type()?,
            None => choose_channel_binding(t.version, None, &t.binding_types())?,
        };
        t.channel_bindings.iter().find(|b| b.kind == kind)
    });
    let offer = ServerOffer {
        mechanisms: feature.map(|f| f.mechanisms).unwrap_or_default(),
        channel_binding_types: None,
    };
    build(config, rng, name, &offer, binding, Some(token)).map_err(FastMechanismError::Sasl)
}

/// Why [`fast_mechanism`] built nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FastMechanismError {
    /// The policy refused the token on this stream.
    Refused(FastRefusal),
    /// The factory failed.
    Sasl(SaslError),
}

impl std::fmt::Display for FastMechanismError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(r) => write!(f, "FAST refused: {r}"),
            Self::Sasl(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FastMechanismError {}

/// Why no mechanism could be started.
#[derive(Debug)]
pub(crate) enum ChooseError {
    Policy(SelectError),
    Sasl(SaslError),
}
