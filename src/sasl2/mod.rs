//! The modern login, shared by both roles: SASL2 (XEP-0388) with Bind 2
//! (XEP-0386), stream management (XEP-0198) inline, and XEP-0480's SCRAM
//! upgrade tasks.
//!
//! One `<authenticate/>` carries the mechanism's initial response, the
//! client's `<user-agent/>`, a Bind 2 request (with stream management's
//! `<enable/>`, carbons and CSI inside) and, for a reconnecting client, stream
//! management's `<resume/>`; one `<success/>` carries the mechanism's
//! additional data, the bound full JID and what was enabled or resumed,
//! and the stream goes on without a restart: a SCRAM login, bound with
//! stream management on, in two round trips after TLS instead of the
//! five of RFC 6120 (`tests/sasl2_pair.rs` counts them).
//!
//! The elements are in [`steps::sasl2`](crate::steps::sasl2) and
//! [`steps::bind2`](crate::steps::bind2); the flow is one step file per
//! role (`client/sasl2.rs`, `server/sasl2.rs`), over the same mechanism
//! registries as RFC 6120 SASL: every mechanism works in both, channel
//! binding and XEP-0474 included.
//!
//! # Turning it on
//!
//! - Client: [`ClientSettings::sasl2`](crate::client::ClientSettings::sasl2)
//!   ([`Sasl2Policy::Auto`], the default, takes SASL2 when offered),
//!   [`ClientSettings::user_agent`](crate::client::ClientSettings::user_agent),
//!   the resource as Bind 2's tag, and Message Carbons and the CSI state
//!   to enable inline when the server lists them
//!   ([`ClientSettings::carbons`](crate::client::ClientSettings::carbons),
//!   [`ClientSettings::csi`](crate::client::ClientSettings::csi); what went
//!   on: [`ClientEvent::Bind2Enabled`](crate::client::ClientEvent::Bind2Enabled)).
//! - Server: [`ServerSettings::sasl2`](crate::server::ServerSettings::sasl2)
//!   ([`Sasl2Settings`]): SASL2 with Bind 2, inline stream management when
//!   [`ServerSettings::stream_management`](crate::server::ServerSettings::stream_management)
//!   is on, carbons and CSI when [`Sasl2Settings::carbons`] and
//!   [`Sasl2Settings::csi`] are, and the SCRAM upgrades to offer. The host
//!   answers the same requests as for RFC 6120 (credentials, `Bind` with
//!   the resource made of the tag, `Resume`) and hears of carbons and CSI
//!   in [`ServerEvent::Bind2Enabled`](crate::server::ServerEvent::Bind2Enabled).
//!
//! # Inline extensions (FAST, ...)
//!
//! What the core does not know stays in the `extra` fields of the
//! elements: [`Sasl2Feature::extra_inline`](crate::steps::sasl2::Sasl2Feature::extra_inline)
//! (the server's `<inline/>`: FAST's `<fast/>`),
//! [`Authenticate::extra`](crate::steps::sasl2::Authenticate::extra)
//! (FAST's `<request-token/>` and `<fast/>`) and
//! [`Success::extra`](crate::steps::sasl2::Success::extra) (FAST's
//! `<token/>`). Each role has one hook per direction where an inline
//! extension reads and writes them (`Client::sasl2_inline_requests` and
//! `Client::sasl2_inline_results`, `Server::sasl2_inline_offer`,
//! `Server::sasl2_inline_requests` and `Server::sasl2_inline_results`).

pub mod upgrade;

use crate::sasl::ScramHash;
pub use crate::steps::bind2::{Bind2Features, CsiState};
pub use crate::steps::sasl2::UserAgent;

/// Which login the client uses when the server offers SASL2 (XEP-0388)
/// and RFC 6120 SASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Sasl2Policy {
    /// SASL2 when offered, else RFC 6120 SASL (the default).
    #[default]
    Auto,
    /// SASL2 only: a server that does not offer it fails with
    /// [`PolicyError::Sasl2NotOffered`](crate::client::PolicyError::Sasl2NotOffered).
    Require,
    /// RFC 6120 SASL only.
    Never,
}

/// The server's SASL2 settings
/// ([`ServerSettings::sasl2`](crate::server::ServerSettings::sasl2)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sasl2Settings {
    /// Offer Bind 2 inline (default `true`): the resource is the
    /// client's `<tag/>` and a part of the server's (`tag~suffix`, the
    /// suffix derived from the user agent's id when it sent one, so that
    /// the same client gets the same resource, else random), and the host
    /// answers [`ServerEvent::Bind`](crate::server::ServerEvent::Bind) as
    /// for RFC 6120.
    pub bind2: bool,
    /// List Message Carbons (`urn:xmpp:carbons:2`, XEP-0280) among Bind
    /// 2's inline features: a client's `<enable/>` in `<bind/>` is
    /// reported in [`ServerEvent::Bind2Enabled`](crate::server::ServerEvent::Bind2Enabled),
    /// and the host copies messages to the session from then on (the
    /// core routes nothing). Default `false`.
    pub carbons: bool,
    /// List Client State Indication (`urn:xmpp:csi:0`, XEP-0352): a
    /// client's `<active/>`/`<inactive/>` in `<bind/>` is reported the
    /// same way. Default `false`.
    pub csi: bool,
    /// The XEP-0480 SCRAM upgrades to offer (`UPGR-SCRAM-SHA-256`...):
    /// a client that asks computes the SaltedPassword for a fresh salt,
    /// and the host stores the keys of
    /// [`ServerEvent::ScramUpgraded`](crate::server::ServerEvent::ScramUpgraded).
    /// Default: none.
    pub upgrades: Vec<ScramHash>,
    /// The iteration count of an upgrade's new keys. Default 10,000.
    pub upgrade_iterations: u32,
    /// The FAST (XEP-0484) mechanisms to offer inline (`HT-SHA-256-NONE`
    /// ...), strongest first; those registered and usable on the stream's
    /// TLS are offered ([`fast::offer`](crate::fast::offer)). The host
    /// answers the token requests
    /// ([`CredentialRequest::FastToken`](crate::sasl::CredentialRequest::FastToken))
    /// and issues tokens
    /// ([`ServerEvent::IssueFastToken`](crate::server::ServerEvent::IssueFastToken)).
    /// Default: none.
    pub fast: Vec<String>,
}

impl Sasl2Settings {
    /// Bind 2 on (without carbons or CSI), no upgrades.
    pub fn new() -> Self {
        Self {
            bind2: true,
            carbons: false,
            csi: false,
            upgrades: Vec::new(),
            upgrade_iterations: 10_000,
            fast: Vec::new(),
        }
    }
}

impl Default for Sasl2Settings {
    fn default() -> Self {
        Self::new()
    }
}
