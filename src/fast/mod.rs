//! FAST (XEP-0484, `urn:xmpp:fast:0`): logging in with a token the server
//! issued on an earlier login, in one round trip, inside SASL2
//! (XEP-0388). The session-layer pieces shared by both roles:
//!
//! - the elements ([`FastFeature`], [`RequestToken`], [`FastAuth`],
//!   [`parse_token`] and [`token_element`]);
//! - the token ([`FastToken`], with its [`Expiry`]) and what a server
//!   keeps per client ([`TokenSlots`]: the current token and the new one);
//! - the client's choices ([`FastPolicy`]): which mechanism to ask a
//!   token for, whether the token it holds can be used on this stream,
//!   what to do after a failed token login (no fallback to the password
//!   unless the policy says so);
//! - the server's offer ([`offer`]).
//!
//! The mechanisms themselves are the `HT-*` family in
//! [`sasl::ht`](crate::sasl::ht), entries of both roles' mechanism
//! registries under the credential kind
//! [`CredentialKind::FastToken`](crate::sasl::policy::CredentialKind::FastToken).
//! A server asks its host for a client's tokens with
//! [`CredentialRequest::FastToken`](crate::sasl::CredentialRequest::FastToken)
//! and reports the slot that matched in
//! [`ExchangeSecurity::fast_token`](crate::sasl::ExchangeSecurity::fast_token).
//!
//! The replay counter (`<fast count/>`, XEP-0484 section 3.4) is
//! [`FastToken::count`] on both sides: the client sends one more than it
//! holds when [`FastPolicy::send_count`] is on (and reports the counted
//! token for its host to store); the server's mechanism refuses a count
//! not above the matching token's, and its host keeps the new one
//! ([`TokenSlots::record_use`]). A log-out (`invalidate`) is
//! [`Client::invalidate_fast_token`](crate::client::Client::invalidate_fast_token)
//! on the client and
//! [`ServerEvent::FastTokenInvalidated`](crate::server::ServerEvent::FastTokenInvalidated)
//! on the server. TLS 0-RTT is not implemented (no early data in either
//! role), so no server requires a count.
//!
//! Time: the core reads no clock. Expiries are Unix seconds the host
//! compares with its own clock ([`FastToken::is_expired_at`],
//! [`TokenSlots::drop_expired`], [`Expiry::from_unix`]).

mod elements;
mod policy;
mod token;

pub use elements::{
    parse_token, token_element, FastAuth, FastFeature, FastParseError, RequestToken,
};
pub use policy::{AfterFailure, FastPolicy, FastRefusal, FastRequestRefused};
pub use token::{BadExpiry, Expiry, FastToken, TokenSlot, TokenSlots};

use crate::sasl::ht::HtMechanism;
use crate::server::ServerMechanisms;
use crate::tls::TlsInfo;

/// The FAST feature a server offers on a stream with this TLS state:
/// those of `names` (strongest first, as the host configured them) that
/// are registered in `mechanisms` and can run here (an `HT-*` mechanism
/// needs TLS and, when it binds, data of its channel-binding type defined
/// for the TLS version: no `-UNIQ` on TLS 1.3; a host's own mechanism
/// follows its [`OfferRule`](crate::server::OfferRule)). `None` without
/// TLS (a token is never accepted in the clear) or when nothing is left.
pub fn offer(
    mechanisms: &ServerMechanisms,
    names: &[String],
    tls: Option<&TlsInfo>,
) -> Option<FastFeature> {
    let tls_info = tls?;
    let offered: Vec<String> = names
        .iter()
        .filter(|n| {
            mechanisms
                .get(n)
                .is_some_and(|f| match HtMechanism::from_name(n) {
                    Some(m) => m.usable_with(tls),
                    None => !f.traits().channel_binding || !tls_info.channel_bindings.is_empty(),
                })
        })
        .fold(Vec::new(), |mut v, n| {
            if !v.contains(n) {
                v.push(n.clone());
            }
            v
        });
    (!offered.is_empty()).then_some(FastFeature {
        mechanisms: offered,
        tls_0rtt: false,
    })
}
