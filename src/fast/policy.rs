//! Which FAST mechanism a client asks a token for, whether it can log in
//! with the token it holds, and what it does when that login fails: an
//! explicit policy, with no silent fallback to the password.

use std::fmt;

use super::elements::FastFeature;
use super::token::FastToken;
use crate::client::ClientMechanisms;
use crate::sasl::channel_binding::TlsVersion;
use crate::sasl::ht::HtMechanism;
use crate::sasl::policy::CredentialKind;
use crate::sasl::SaslCondition;
use crate::tls::TlsInfo;

/// The client's FAST policy. `Default`: ask for no token, any FAST
/// mechanism the server offers (ranked, see
/// [`token_mechanism`](Self::token_mechanism)), and after a failed token
/// login stop rather than use the password.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastPolicy {
    /// On a password login, ask for a token when the server offers FAST
    /// (`<request-token/>`).
    pub request_token: bool,
    /// After a token login failed, log in with the password on the next
    /// attempt (XEP-0484 section 4.1 suggests it; it is off unless the
    /// host turns it on, so that a token login never quietly becomes a
    /// password login).
    pub fallback_to_password: bool,
    /// Only these FAST mechanisms (`HT-SHA-256-EXPR`, ...), in order of
    /// preference: a token is asked for the first of them the server
    /// offers and this connection can use, and when none can be, the
    /// login stops with the reason for each
    /// ([`FastRequestRefused`]) instead of asking for another; a token
    /// bound to a mechanism not listed is not used
    /// ([`FastRefusal::NotAllowed`]). `None`: any, ranked. Tokens exist
    /// only in SASL2: a login over RFC 6120 SASL asks for none, so a host
    /// that must have one sets
    /// [`Sasl2Policy::Require`](crate::sasl2::Sasl2Policy::Require).
    pub only: Option<Vec<String>>,
    /// On a token login, send the replay counter (`<fast count/>`,
    /// XEP-0484 section 3.4): the token's
    /// [`count`](FastToken::count) plus one, reported before the login
    /// in [`ClientEvent::FastTokenCounted`](crate::client::ClientEvent::FastTokenCounted)
    /// for the host to store. Off by default (xmpp.js, Conversations and
    /// Prosody send none; a server that keeps counts refuses a count it
    /// has seen, so a host that turns it on must keep the counted token).
    pub send_count: bool,
}

/// Why the client cannot log in with its token on this stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FastRefusal {
    /// The server offers no FAST, or not the token's mechanism (the token
    /// is bound to it).
    NotOffered,
    /// The token's mechanism is not one this client has registered (as a
    /// FAST mechanism).
    Unknown,
    /// The stream is not encrypted: a token is never sent without TLS.
    NeedsTls,
    /// The token's mechanism binds to a channel-binding type the host
    /// cannot supply on this connection, or that is not defined for its
    /// TLS version (a `-UNIQ` token on TLS 1.3).
    NeedsChannelBinding,
    /// The token has expired.
    Expired,
    /// The mechanism is not among [`FastPolicy::only`].
    NotAllowed,
}

impl fmt::Display for FastRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotOffered => "the server does not offer the token's mechanism",
            Self::Unknown => "the token's mechanism is not registered",
            Self::NeedsTls => "a token is only sent over TLS",
            Self::NeedsChannelBinding => {
                "the channel binding of the token's mechanism is unavailable"
            }
            Self::Expired => "the token has expired",
            Self::NotAllowed => "the policy does not allow the token's mechanism",
        })
    }
}

/// What the client does after a token login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AfterFailure {
    /// Forget the token (the server no longer accepts it:
    /// `credentials-expired` or `not-authorized`, XEP-0484 section 4.1).
    pub discard_token: bool,
    /// Log in with the password next ([`FastPolicy::fallback_to_password`]).
    pub use_password: bool,
}

/// Why no FAST token can be asked for under [`FastPolicy::only`]: each
/// mechanism of the list with the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastRequestRefused {
    /// The FAST mechanisms the server offers (empty: no FAST).
    pub offered: Vec<String>,
    /// Each mechanism of [`FastPolicy::only`] and why it cannot be used:
    /// [`FastRefusal::Unknown`], [`FastRefusal::NeedsTls`],
    /// [`FastRefusal::NeedsChannelBinding`] (checked before the offer,
    /// so that a `-UNIQ` on TLS 1.3 is refused by the client whatever
    /// the server offers) or [`FastRefusal::NotOffered`].
    pub refused: Vec<(String, FastRefusal)>,
    /// The connection's TLS version (`None`: no TLS).
    pub tls: Option<TlsVersion>,
}

impl fmt::Display for FastRequestRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, why)) in self.refused.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{name}: ")?;
            let cb = HtMechanism::from_name(name).and_then(|m| m.binding.channel_binding_type());
            match (why, cb) {
                (FastRefusal::NeedsChannelBinding, Some(cb))
                    if self.tls.is_some_and(|v| !cb.is_defined_for(v)) =>
                {
                    write!(f, "{} is not defined on TLS 1.3", cb.as_str())?
                }
                (FastRefusal::NeedsChannelBinding, Some(cb)) => write!(
                    f,
                    "no {} data on this connection (the host does not supply it)",
                    cb.as_str()
                )?,
                (FastRefusal::NotOffered, _) => f.write_str("not offered by the server")?,
                (FastRefusal::Unknown, _) => f.write_str("not a registered FAST mechanism")?,
                (why, _) => write!(f, "{why}")?,
            }
        }
        write!(
            f,
            " (the server offers: {})",
            if self.offered.is_empty() {
                "no FAST".to_owned()
            } else {
                self.offered.join(" ")
            }
        )
    }
}

impl std::error::Error for FastRequestRefused {}

impl FastPolicy {
    /// The mechanism to ask a token for on a password login: `None` when
    /// [`request_token`](Self::request_token) is off or nothing fits.
    /// The same choice as [`token_request`](Self::token_request), with a
    /// refusal under [`only`](Self::only) as `None`.
    pub fn token_mechanism<'a>(
        &self,
        feature: &'a FastFeature,
        mechanisms: &ClientMechanisms,
        tls: Option<&TlsInfo>,
    ) -> Option<&'a str> {
        self.token_request(Some(feature), mechanisms, tls)
            .ok()
            .flatten()
    }

    /// The mechanism to ask a token for on a password login, `feature`
    /// being the server's FAST offer (`None`: none). `Ok(None)` when
    /// [`request_token`](Self::request_token) is off.
    ///
    /// Without [`only`](Self::only): among the mechanisms offered that are
    /// registered in `mechanisms` as FAST mechanisms
    /// ([`CredentialKind::FastToken`]) and can run on this connection (for
    /// an `HT-*` name: its channel binding available, see
    /// [`HtMechanism::usable_with`]), the highest ranked: channel binding
    /// first (`-EXPR`, `-ENDP`, then `-UNIQ`, which a later TLS 1.3
    /// connection cannot use, then `-NONE`; XEP-0484 section 7: clients
    /// must prefer binding), then the stronger hash; `Ok(None)` when
    /// nothing fits (or there is no TLS).
    ///
    /// With `only`: the first of its mechanisms that is registered, can
    /// run here and is offered; when none is, the error names why for
    /// each, and no other mechanism is chosen.
    pub fn token_request<'a>(
        &self,
        feature: Option<&'a FastFeature>,
        mechanisms: &ClientMechanisms,
        tls: Option<&TlsInfo>,
    ) -> Result<Option<&'a str>, FastRequestRefused> {
        if !self.request_token {
            return Ok(None);
        }
        let offered: &'a [String] = feature.map_or(&[], |f| &f.mechanisms);
        let Some(only) = &self.only else {
            if tls.is_none() {
                return Ok(None);
            }
            return Ok(offered
                .iter()
                .filter_map(|name| {
                    let profile = fast_profile(mechanisms, name)?;
                    usable(profile, name, tls).then_some((name.as_str(), profile.rank))
                })
                // The first offered on a tie.
                .fold(None::<(&str, u32)>, |best, (n, r)| match best {
                    Some((_, b)) if b >= r => best,
                    _ => Some((n, r)),
                })
                .map(|(n, _)| n));
        };
        let mut refused = Vec::new();
        for name in only {
            let why = match fast_profile(mechanisms, name) {
                None => FastRefusal::Unknown,
                Some(_) if tls.is_none() => FastRefusal::NeedsTls,
                Some(p) if !usable(p, name, tls) => FastRefusal::NeedsChannelBinding,
                Some(_) => match offered.iter().find(|o| *o == name) {
                    Some(o) => return Ok(Some(o.as_str())),
                    None => FastRefusal::NotOffered,
                },
            };
            refused.push((name.clone(), why));
        }
        Err(FastRequestRefused {
            offered: offered.to_vec(),
            refused,
            tls: tls.map(|t| t.version),
        })
    }

    /// Whether the client can log in with `token` on this stream: the
    /// mechanism it is bound to must be offered, registered, usable on
    /// this connection, and the token must not have expired at
    /// `now_unix` (Unix seconds from the host's clock; `None`: do not
    /// check). There is no other choice to make: the server refuses a
    /// token with any mechanism but its own.
    pub fn check_login(
        &self,
        feature: Option<&FastFeature>,
        mechanisms: &ClientMechanisms,
        token: &FastToken,
        tls: Option<&TlsInfo>,
        now_unix: Option<i64>,
    ) -> Result<(), FastRefusal> {
        let name = token.mechanism.as_str();
        if self
            .only
            .as_ref()
            .is_some_and(|only| !only.iter().any(|n| n == name))
        {
            return Err(FastRefusal::NotAllowed);
        }
        if !feature.is_some_and(|f| f.offers(name)) {
            return Err(FastRefusal::NotOffered);
        }
        let profile = fast_profile(mechanisms, name).ok_or(FastRefusal::Unknown)?;
        if tls.is_none() {
            return Err(FastRefusal::NeedsTls);
        }
        if !usable(profile, name, tls) {
            return Err(FastRefusal::NeedsChannelBinding);
        }
        if now_unix.is_some_and(|now| token.is_expired_at(now)) {
            return Err(FastRefusal::Expired);
        }
        Ok(())
    }

    /// What to do after the server answered a token login with
    /// `<failure/>` of `condition`.
    pub fn after_failure(&self, condition: SaslCondition) -> AfterFailure {
        let rejected = matches!(
            condition,
            SaslCondition::CredentialsExpired
                | SaslCondition::NotAuthorized
                | SaslCondition::InvalidMechanism
                | SaslCondition::MechanismTooWeak
        );
        AfterFailure {
            discard_token: rejected,
            use_password: self.fallback_to_password,
        }
    }
}

/// Whether FAST mechanism `name` can run on this connection: an `HT-*`
/// one when its channel binding is available
/// ([`HtMechanism::usable_with`]), a host's own when it does not bind.
fn usable(
    profile: &crate::sasl::policy::MechanismProfile,
    name: &str,
    tls: Option<&TlsInfo>,
) -> bool {
    match HtMechanism::from_name(name) {
        Some(m) => m.usable_with(tls),
        None => !profile.channel_binding,
    }
}

/// The profile of `name` when it is registered as a FAST mechanism.
fn fast_profile<'a>(
    mechanisms: &'a ClientMechanisms,
    name: &str,
) -> Option<&'a crate::sasl::policy::MechanismProfile> {
    mechanisms
        .get(name)
        .map(|f| f.traits())
        .filter(|p| p.credentials == CredentialKind::FastToken)
}
