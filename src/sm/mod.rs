//! Stream management (XEP-0198, `urn:xmpp:sm:3`) for both roles:
//! acknowledgements, and resumption across connections and across
//! process restarts.
//!
//! Turn it on with [`SmSettings`] in
//! [`ClientSettings::stream_management`](crate::client::ClientSettings::stream_management)
//! or [`ServerSettings::stream_management`](crate::server::ServerSettings::stream_management).
//! The machines then do the protocol; the host sees:
//!
//! - which of its stanzas the peer acknowledged
//!   ([`ClientEvent::Acked`](crate::client::ClientEvent::Acked),
//!   [`ServerEvent::Acked`](crate::server::ServerEvent::Acked)), and the
//!   ones handed back undelivered (`Undelivered`): after a failed
//!   resumption, or when a session ends for good with stanzas the peer
//!   never acknowledged. Nothing is dropped silently: a stanza is
//!   acknowledged, retransmitted on a resumed stream, or handed back;
//! - a bounded queue: a stanza beyond
//!   [`SmSettings::max_unacked`] or [`SmSettings::max_unacked_bytes`] is
//!   refused by `send` with
//!   [`UsageError::UnackedQueueFull`](crate::UsageError::UnackedQueueFull);
//! - an [`SmState`]: everything needed to resume (the id, the bound JID,
//!   both counters, the unacknowledged stanzas), which the client hands
//!   to a new [`Client`](crate::client::Client) with
//!   [`Client::resume_session`](crate::client::Client::resume_session),
//!   possibly in another process ([`SmState::to_bytes`],
//!   [`SmState::from_bytes`]: libstrophe's `xmpp_conn_restore_sm_state`),
//!   and which the server hands to its host when a stream ends without a
//!   close ([`ServerEvent::Detached`](crate::server::ServerEvent::Detached)),
//!   to give back when a client resumes
//!   ([`ServerEvent::Resume`](crate::server::ServerEvent::Resume)).
//!
//! Counters are modulo 2^32 (XEP-0198 section 4): `h` wraps from
//! 4294967295 to 0. An `h` that acknowledges more stanzas than were sent
//! ends the stream with `undefined-condition` and
//! `<handled-count-too-high/>` (both roles).

mod queue;
mod stanza;
mod state;

pub(crate) use queue::{Session, TooHigh};
pub use stanza::SentStanza;
pub use state::{SmParts, SmState, SmStateError};

use std::time::Duration;

use crate::validate::{check_duration, ConfigError};

/// Stream management settings, for either role.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmSettings {
    /// Client: ask for resumption (`<enable resume='true'/>`). Server:
    /// grant it when asked. Default `true`.
    pub resume: bool,
    /// Client: the longest resumption wait to ask for (`max` on
    /// `<enable/>`, `None`: let the server choose). Server: its
    /// resumption timeout, advertised as `max` on `<enabled/>` (the host
    /// keeps a detached session this long; `None`: no `max`). Whole
    /// seconds. Default: `None` (client), 300 s (server).
    pub max_resume: Option<Duration>,
    /// Ask for an acknowledgement (`<r/>`) once this many stanzas were
    /// sent since the last request. `None`: never by count. Default 5.
    pub request_every: Option<u32>,
    /// Ask for an acknowledgement when the oldest unacknowledged stanza
    /// is this old, and again each time this passes without one (the
    /// deadline is in `poll_timeout`; a stanza's age counts from the last
    /// input before it was sent). `None`: never by time. Default 30 s.
    pub request_after: Option<Duration>,
    /// The most unacknowledged stanzas kept. A stanza beyond it is
    /// refused by `send` with
    /// [`UsageError::UnackedQueueFull`](crate::UsageError::UnackedQueueFull),
    /// never dropped. Default 1000.
    pub max_unacked: usize,
    /// The most bytes of unacknowledged stanzas kept (as serialised), with
    /// the same refusal. Default 4 MiB.
    pub max_unacked_bytes: usize,
}

impl SmSettings {
    /// The defaults of a client: resumption asked for, no `max`, `<r/>`
    /// every 5 stanzas or after 30 s, 1000 stanzas or 4 MiB kept.
    pub fn new() -> Self {
        Self {
            resume: true,
            max_resume: None,
            request_every: Some(5),
            request_after: Some(Duration::from_secs(30)),
            max_unacked: 1000,
            max_unacked_bytes: 4 * 1024 * 1024,
        }
    }

    /// The defaults of a server: as [`new`](Self::new), with a 300 s
    /// resumption timeout.
    pub fn server() -> Self {
        Self {
            max_resume: Some(Duration::from_secs(300)),
            ..Self::new()
        }
    }

    /// `max_resume` in whole seconds, as `max` carries it.
    pub(crate) fn max_secs(&self) -> Option<u32> {
        self.max_resume
            .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1))
    }

    /// No zero limit, no zero or day-long duration.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if let Some(d) = self.max_resume {
            check_duration("stream_management.max_resume", d)?;
        }
        if let Some(d) = self.request_after {
            check_duration("stream_management.request_after", d)?;
        }
        for (field, v) in [
            ("stream_management.max_unacked", self.max_unacked),
            (
                "stream_management.max_unacked_bytes",
                self.max_unacked_bytes,
            ),
            (
                "stream_management.request_every",
                self.request_every.map_or(1, |n| n as usize),
            ),
        ] {
            if v == 0 {
                return Err(ConfigError::Limit { field });
            }
        }
        Ok(())
    }
}

impl Default for SmSettings {
    fn default() -> Self {
        Self::new()
    }
}
