//! Which FAST mechanism a client asks a token for, whether it can log in
//! with the token it holds, and what it does when that login fails: an
//! explicit policy, with no silent fallback to the password.

use std::fmt;

use super::elements::FastFeature;
use super::token::FastToken;
use crate::client::ClientMechanisms;
use crate::sasl::ht::HtMechanism;
use crate::sasl::policy::CredentialKind;
use crate::sasl::SaslCondition;
use crate::tls::TlsInfo;

/// The client's FAST policy. `Default`: ask for no token, and after a
/// failed token login stop rather than use the password.
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

impl FastPolicy {
    /// The mechanism to ask a token for on a password login: `None` when
    /// [`request_token`](Self::request_token) is off or nothing fits.
    /// Among the mechanisms `feature` offers that are registered in
    /// `mechanisms` as FAST mechanisms ([`CredentialKind::FastToken`]) and
    /// can run on this connection (for an `HT-*` name: its channel
    /// binding available, see [`HtMechanism::usable_with`]), the highest
    /// ranked: channel binding first (`-EXPR`, `-ENDP`, then `-UNIQ`,
    /// which a later TLS 1.3 connection cannot use, then `-NONE`;
    /// XEP-0484 section 7: clients must prefer binding), then the
    /// stronger hash.
    pub fn token_mechanism<'a>(
        &self,
        feature: &'a FastFeature,
        mechanisms: &ClientMechanisms,
        tls: Option<&TlsInfo>,
    ) -> Option<&'a str> {
        if !self.request_token || tls.is_none() {
            return None;
        }
        feature
            .mechanisms
            .iter()
            .filter_map(|name| {
                let profile = fast_profile(mechanisms, name)?;
                let usable = match HtMechanism::from_name(name) {
                    Some(m) => m.usable_with(tls),
                    None => !profile.channel_binding,
                };
                usable.then_some((name.as_str(), profile.rank))
            })
            // The first offered on a tie.
            .fold(None::<(&str, u32)>, |best, (n, r)| match best {
                Some((_, b)) if b >= r => best,
                _ => Some((n, r)),
            })
            .map(|(n, _)| n)
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
        if !feature.is_some_and(|f| f.offers(name)) {
            return Err(FastRefusal::NotOffered);
        }
        let profile = fast_profile(mechanisms, name).ok_or(FastRefusal::Unknown)?;
        if tls.is_none() {
            return Err(FastRefusal::NeedsTls);
        }
        let usable = match HtMechanism::from_name(name) {
            Some(m) => m.usable_with(tls),
            None => !profile.channel_binding,
        };
        if !usable {
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
