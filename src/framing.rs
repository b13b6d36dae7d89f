//! How a stream is carried: the framing under both role machines.
//!
//! The [`Client`](crate::client::Client) and the
//! [`Server`](crate::server::Server) work on stream-level events (header,
//! element, stream error, close) and do not change per transport; their
//! core turns those into bytes or messages, and back, for the framing the
//! configuration names ([`ClientSettings::framing`](crate::client::ClientSettings::framing),
//! [`ServerSettings::framing`](crate::server::ServerSettings::framing)):
//!
//! | role machine | [`Framing::Tcp`] (RFC 6120) | [`Framing::WebSocket`] (RFC 7395) |
//! |---|---|---|
//! | stream header out | `<?xml version='1.0'?><stream:stream ...>` | one message `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to= from= id= version= xml:lang=/>` |
//! | element out | in the stream, without redundant `xmlns` | one message each, namespaced on its own (`xmlns='jabber:client'`, `<stream:features xmlns:stream=...>`) |
//! | `</stream:stream>` out | `</stream:stream>` | one message `<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>` |
//! | input | `feed`: bytes in any chunks | `feed_message`: whole messages, each exactly one element (else `not-well-formed`) |
//! | output | `poll_transmit`: bytes | `poll_message`: one element per message (`poll_transmit` gives them concatenated) |
//! | restart (after STARTTLS, SASL) | a new header | a new `<open/>` (after SASL only) |
//! | STARTTLS | as configured | never: TLS is the WebSocket's (`wss`), reported with `direct_tls`; `StartTlsRequired` then means "no authentication unless the host said TLS" |
//! | whitespace keepalive | the client's `keepalive` | none (pings are the host's, or XEP-0199) |
//! | redirect | `<see-other-host/>` stream error ([`Server::close_with_error`](crate::server::Server::close_with_error)) | `<close see-other-uri='...'/>`: [`Server::redirect`](crate::server::Server::redirect) sends it, the client reports [`ClientEvent::SeeOtherUri`](crate::client::ClientEvent::SeeOtherUri) |
//! | element limits | per top-level element | per message (the same: one element each) |
//!
//! Over WebSocket the reader also takes Prosody 13's `<stream:error>`
//! that does not declare `xmlns:stream`: on the top-level element of a
//! message (only there), an undeclared `stream:` prefix is the streams
//! namespace.
//!
//! [`Framing::Bosh`] (XEP-0206) is [`Framing::WebSocket`] inside the
//! machine, carried by the adapters of [`crate::bosh`] (see
//! [`crate::bosh::xmpp`] for the mapping).

use minidom::Element;

use crate::ns;
use crate::xml::StreamHeader;

/// How the role machines' streams are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Framing {
    /// The XML stream of RFC 6120 over a byte stream (TCP, TLS): the
    /// default.
    #[default]
    Tcp,
    /// RFC 7395: one complete element per WebSocket text message, `<open/>`
    /// and `<close/>` for the stream's start and end. The host owns the
    /// WebSocket and moves whole messages:
    /// `feed_message` in, `poll_message` out.
    WebSocket,
    /// XEP-0206, XMPP over BOSH: the role machine runs under an adapter of
    /// [`crate::bosh`] ([`BoshXmppClient`](crate::bosh::BoshXmppClient),
    /// [`BoshXmppServer`](crate::bosh::BoshXmppServer)) that carries its
    /// elements in `<body/>` wrappers. Inside, the machine frames its
    /// stream as over WebSocket (one element per message, each namespaced
    /// on its own, `<open/>` and `<close/>` for the header and the close):
    /// the adapter turns those into BOSH session creation, restart and
    /// termination.
    Bosh,
}

impl Framing {
    /// The framing the role machine's codec writes and reads: BOSH payloads
    /// are framed as WebSocket messages inside the machine.
    pub(crate) fn wire(self) -> Framing {
        match self {
            Framing::Bosh => Framing::WebSocket,
            f => f,
        }
    }
}

/// The stream header an `<open/>` carries (`content_ns` is left to the
/// role: over WebSocket every element names its own namespace).
pub(crate) fn header_of_open(el: &Element) -> StreamHeader {
    let attr = |n: &str| el.attr(n).map(str::to_owned);
    StreamHeader {
        from: attr("from"),
        to: attr("to"),
        id: attr("id"),
        version: attr("version"),
        lang: el.attr_ns(ns::XML, "lang").map(str::to_owned),
        content_ns: None,
        stream_prefix: None,
    }
}

/// The `see-other-uri` of a `<close/>` (RFC 7395 section 3.6.1).
pub(crate) fn see_other_uri(el: &Element) -> Option<String> {
    el.attr("see-other-uri").map(str::to_owned)
}
