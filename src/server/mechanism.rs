//! Which mechanisms a server offers in a stage, and building the one the
//! client picked.

use crate::random::RandomSource;
use crate::sasl::anonymous::AnonymousServer;
use crate::sasl::channel_binding::advertisable_types;
#[cfg(feature = "digest-md5")]
use crate::sasl::digest_md5::DigestMd5Server;
use crate::sasl::external::ExternalServer;
use crate::sasl::oauthbearer::OAuthBearerServer;
use crate::sasl::plain::PlainServer;
use crate::sasl::scram::{parse_mechanism_name, ScramServer, ServerOffer};
#[cfg(feature = "google")]
use crate::sasl::x_google_token::XGoogleTokenServer;
use crate::sasl::x_oauth2::XOAuth2Server;
use crate::sasl::{SaslCondition, SaslError, ServerMechanism};
use crate::server::config::ServerConfig;
use crate::tls::TlsInfo;

/// What the server offers on a stream with this TLS state: the
/// mechanisms and the XEP-0440 channel-binding types.
pub(crate) fn offer(config: &ServerConfig, tls: Option<&TlsInfo>) -> ServerOffer {
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
        .filter(|m| has_server_side(m))
        .filter(|m| match m.as_str() {
            // The password and the bearer tokens travel in the clear.
            "PLAIN" | "OAUTHBEARER" | "X-OAUTH2" | "X-GOOGLE-TOKEN" => cleartext_ok,
            "EXTERNAL" => tls.is_some(),
            m if m.ends_with("-PLUS") => !cb_types.is_empty(),
            _ => true,
        })
        .cloned()
        .collect();
    let mut offer = ServerOffer::new::<Vec<String>, String>(mechanisms);
    if !cb_types.is_empty() {
        offer = offer.with_channel_binding_types(cb_types);
    }
    offer
}

/// Whether [`build`] knows `name`: a name it does not know is never
/// offered. DIGEST-MD5 without the `digest-md5` feature and X-GOOGLE-TOKEN
/// without `google` are such names.
fn has_server_side(name: &str) -> bool {
    matches!(
        name,
        "PLAIN" | "EXTERNAL" | "ANONYMOUS" | "X-OAUTH2" | "OAUTHBEARER"
    ) || (cfg!(feature = "digest-md5") && name == "DIGEST-MD5")
        || (cfg!(feature = "google") && name == "X-GOOGLE-TOKEN")
        || parse_mechanism_name(name).is_some()
}

/// Builds the server side of `name`, which must be in `offer`.
/// `unknown_users` is the SCRAM unknown-user secret and iteration count
/// (see [`ServerConfig::scram_unknown_user_secret`]); `domain` is
/// DIGEST-MD5's realm.
#[cfg_attr(not(feature = "digest-md5"), allow(unused_variables))]
pub(crate) fn build(
    name: &str,
    offer: &ServerOffer,
    tls: Option<&TlsInfo>,
    domain: &str,
    downgrade_protection: bool,
    unknown_users: (&[u8], u32),
    rng: &mut dyn RandomSource,
) -> Result<Box<dyn ServerMechanism>, SaslError> {
    if !offer.offers(name) {
        return Err(SaslError::new(
            SaslCondition::InvalidMechanism,
            "mechanism not offered",
        ));
    }
    Ok(match name {
        "PLAIN" => Box::new(PlainServer::new()),
        #[cfg(feature = "digest-md5")]
        "DIGEST-MD5" => Box::new(DigestMd5Server::new(domain, rng)),
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
            let (secret, iterations) = unknown_users;
            let mut b = ScramServer::builder(hash, plus, offer)
                .downgrade_protection(downgrade_protection)
                .unknown_users(secret, iterations);
            if let Some(t) = tls {
                for cb in t
                    .channel_bindings
                    .iter()
                    .filter(|c| c.kind.is_defined_for(t.version))
                {
                    b = b.channel_binding(cb.clone());
                }
            }
            Box::new(b.build(rng)?)
        }
    })
}
