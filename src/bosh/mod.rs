//! BOSH (XEP-0124) and XMPP over BOSH (XEP-0206), both ends, as sans-IO
//! machines: the host owns HTTP and the clock, the machines own the
//! session rules.
//!
//! - [`body`]: the `<body/>` wrapper, parsed within the crate's
//!   [`Limits`](crate::xml::Limits) and written without redundant `xmlns`.
//! - [`client`]: [`BoshClient`], one client session: the request bodies to
//!   POST, the response bodies to feed back, retransmission of lost
//!   requests with the same `rid` and bytes, restarts, termination.
//! - [`manager`]: [`BoshManager`], the connection manager side: many
//!   sessions keyed by an unpredictable `sid`, the `rid` window,
//!   out-of-order requests delivered in order, a response cache for
//!   retransmissions, held requests, inactivity, overactivity, pause.
//!
//! Both give and take XMPP payloads as `minidom::Element`s (stanzas,
//! `stream:features`, SASL elements), so a framing layer can put the role
//! machines (`Client`, `Server`) on top: stream start, restart and
//! termination are events and commands here, never XML stream headers.
//!
//! What a framing maps ([`xmpp`] does: [`BoshXmppClient`] and
//! [`BoshXmppServer`] run the role machines over these):
//!
//! | role machine | client end | connection manager end |
//! |---|---|---|
//! | stream header out | [`BoshClient::new`] (`to`, `xml:lang`, `xmpp:version`) | the creation response (held until the host's first [`BoshManager::send`] or `wait`; at once when `hold` is 0) |
//! | stream header in | [`BoshClientEvent::SessionCreated`] (`authid` is the stream id) | [`ManagerEvent::SessionCreated`] (`to`, `lang`, `version`) |
//! | element out | [`BoshClient::send`] | [`BoshManager::send`] |
//! | element in | [`BoshClientEvent::Features`], [`BoshClientEvent::Payload`] | [`ManagerEvent::Payload`] |
//! | restart after SASL success | [`BoshClient::restart`] (no new header is sent) | [`ManagerEvent::Restart`] (the host resets its stream and sends new features) |
//! | `</stream:stream>` out | [`BoshClient::terminate`] | [`BoshManager::terminate`] (`None`) |
//! | `<stream:error/>` out | (a client sends none over BOSH) | [`BoshManager::terminate`] with `remote-stream-error` and the element |
//! | close or error in | [`BoshClientEvent::Terminated`] | [`ManagerEvent::Terminated`] |
//! | STARTTLS | never: TLS is the HTTP layer's | never |
//!
//! ```
//! use std::time::Instant;
//! use xmpp_sansio::bosh::{BoshClient, BoshClientConfig, BoshClientEvent, BoshManager,
//!     BoshManagerConfig, ManagerEvent, Reply};
//! use xmpp_sansio::DeterministicRandom as Rng; // OsRandom for real sessions
//!
//! let now = Instant::now();
//! let mut client = BoshClient::new(BoshClientConfig::new("example.com"), &mut Rng::new(1), now);
//! let mut cm = BoshManager::new(BoshManagerConfig::default(), Box::new(Rng::new(2)));
//!
//! // The session creation request, answered once the host has features.
//! let req = client.poll_request(now).unwrap();
//! let Reply::Held(handle) = cm.handle_request(now, &req.body) else { panic!() };
//! let Some(ManagerEvent::SessionCreated { sid, .. }) = cm.poll_event() else { panic!() };
//! let features = minidom::Element::bare("features", "http://etherx.jabber.org/streams");
//! cm.send(now, &sid, &features).unwrap();
//! let (answered, response) = cm.poll_response().unwrap();
//! assert_eq!(answered, handle);
//! client.handle_response(now, req.rid, &response).unwrap();
//! assert!(matches!(client.poll_event(), Some(BoshClientEvent::SessionCreated(_))));
//! assert!(matches!(client.poll_event(), Some(BoshClientEvent::Features(_))));
//! ```

pub mod body;
pub mod client;
pub mod manager;
mod sid_map;
mod start_tag;
pub mod xmpp;

use std::fmt;

pub use body::{Body, BodyError, BodyType, Condition, MAX_RID, NS_HTTPBIND, NS_XBOSH};
pub use client::{
    BoshClient, BoshClientConfig, BoshClientError, BoshClientEvent, BoshRequest, SessionParams,
};
pub use manager::{
    BoshManager, BoshManagerConfig, ManagerError, ManagerEvent, Reply, RequestHandle,
    TerminateReason,
};
pub use xmpp::{BoshXmppClient, BoshXmppServer, BoshXmppServerEvent, NotBoshFraming};

use crate::xml::WriteError;

/// A host misused a BOSH machine (not a protocol failure): nothing was
/// done.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BoshUsageError {
    /// The session is over (or, for the manager, unknown).
    Closed,
    /// Queued payloads would exceed the configured limit (`queued`
    /// bytes already, `max` allowed): wait for responses to drain them.
    Congested {
        /// Bytes queued now.
        queued: usize,
        /// The limit.
        max: usize,
    },
    /// The element cannot be serialised.
    Write(WriteError),
    /// A pause the connection manager does not allow: it gave no
    /// `maxpause`, or this one.
    PauseNotAllowed {
        /// Its `maxpause`.
        maxpause: Option<u32>,
    },
}

impl fmt::Display for BoshUsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the BOSH session is closed or unknown"),
            Self::Congested { queued, max } => write!(
                f,
                "{queued} bytes are queued and the limit is {max}: nothing was queued"
            ),
            Self::Write(e) => write!(f, "the element cannot be sent: {e}"),
            Self::PauseNotAllowed { maxpause: Some(m) } => {
                write!(f, "the connection manager allows pauses of {m} s at most")
            }
            Self::PauseNotAllowed { maxpause: None } => {
                f.write_str("the connection manager allows no pause")
            }
        }
    }
}

impl std::error::Error for BoshUsageError {}
