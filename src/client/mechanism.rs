//! From the policy's choice to a ready client mechanism.

use crate::client::config::{ClientConfig, Credentials, TlsInfo};
use crate::sasl::anonymous::AnonymousClient;
use crate::sasl::channel_binding::choose_channel_binding;
#[cfg(feature = "digest-md5")]
use crate::sasl::digest_md5::DigestMd5Client;
use crate::sasl::external::ExternalClient;
use crate::sasl::oauthbearer::OAuthBearerClient;
use crate::sasl::plain::PlainClient;
use crate::sasl::policy::SelectionContext;
use crate::sasl::scram::{parse_mechanism_name, ScramClient, ServerOffer};
#[cfg(feature = "google")]
use crate::sasl::x_google_token::XGoogleTokenClient;
use crate::sasl::x_oauth2::XOAuth2Client;
use crate::sasl::{ClientMechanism, SaslCondition, SaslError};

/// Chooses and builds the mechanism for what the server offered.
pub(crate) fn choose(
    config: &mut ClientConfig,
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
    let name = config.policy.select(&ctx).map_err(ChooseError::Policy)?;
    let username = config.localpart().unwrap_or_default().to_owned();
    let domain = config.domain().to_owned();
    let mech: Box<dyn ClientMechanism> = match (&config.credentials, name.as_str()) {
        (Credentials::Password { password, cached }, n) if parse_mechanism_name(n).is_some() => {
            let (hash, plus) = parse_mechanism_name(n).expect("checked");
            let mut b = ScramClient::builder(hash, username, offer)
                .password(password.clone())
                .min_iterations(config.min_scram_iterations)
                .max_iterations(config.max_scram_iterations);
            if let Some(k) = cached {
                b = b.cached_keys(k.clone());
            }
            if let Some(n) = &config.replay_nonce {
                b = b.nonce(n.clone());
            }
            // Bind when using -PLUS; with a non-PLUS choice, say `y` only
            // when the server offers no -PLUS at all (otherwise the choice
            // was narrowed by the policy and `n` is the honest flag).
            if let Some(cb) = binding.filter(|_| plus || !offer.offers_scram_plus()) {
                b = b.channel_binding(cb);
            }
            Box::new(b.build(config.rng.as_mut()).map_err(ChooseError::Sasl)?)
        }
        #[cfg(feature = "digest-md5")]
        (Credentials::Password { password, .. }, "DIGEST-MD5") => {
            let mut m =
                DigestMd5Client::new(username, password.clone(), domain, config.rng.as_mut());
            if let Some(n) = &config.replay_nonce {
                m = m.with_cnonce(n.clone());
            }
            Box::new(m)
        }
        (Credentials::Password { password, .. }, "PLAIN") => {
            Box::new(PlainClient::new(username, password.clone()))
        }
        (Credentials::Token(token), "OAUTHBEARER") => {
            let bare = config.jid.split('/').next().unwrap_or_default().to_owned();
            Box::new(
                OAuthBearerClient::new(token.clone())
                    .with_authzid(bare)
                    .with_host(domain),
            )
        }
        (Credentials::Token(token), "X-OAUTH2") => {
            Box::new(XOAuth2Client::new(username, token.clone()))
        }
        #[cfg(feature = "google")]
        (Credentials::Token(token), "X-GOOGLE-TOKEN") => {
            let bare = config.jid.split('/').next().unwrap_or_default().to_owned();
            Box::new(XGoogleTokenClient::new(bare, token.clone()))
        }
        (Credentials::ClientCertificate, "EXTERNAL") => Box::new(ExternalClient::new()),
        (Credentials::Anonymous, "ANONYMOUS") => Box::new(AnonymousClient::new()),
        _ => {
            return Err(ChooseError::Sasl(SaslError::new(
                SaslCondition::InvalidMechanism,
                "the policy chose a mechanism the credentials cannot drive",
            )))
        }
    };
    Ok(mech)
}

/// Why no mechanism could be started.
#[derive(Debug)]
pub(crate) enum ChooseError {
    Policy(crate::sasl::policy::SelectError),
    Sasl(SaslError),
}
