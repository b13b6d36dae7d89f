//! XMPP over BOSH (XEP-0206) under the role machines: the adapters that
//! join a [`Client`](crate::client::Client) with a
//! [`BoshClient`](super::BoshClient) ([`BoshXmppClient`]) and a
//! [`Server`](crate::server::Server) per session with a
//! [`BoshManager`](super::BoshManager) ([`BoshXmppServer`]).
//!
//! ## The design: WebSocket framing inside, BOSH outside
//!
//! A role machine configured with [`Framing::Bosh`]
//! frames its stream exactly as over WebSocket (RFC 7395): one complete
//! element per message, each declaring its own namespaces, `<open/>` for
//! the stream header, `<close/>` for the close, never STARTTLS, no
//! whitespace keepalive. Those are what BOSH needs: a message is a payload
//! a `<body/>` can carry as it is (it depends on no namespace in scope),
//! and `<open/>`/`<close/>` are recognised by their first bytes, which the
//! machine writes itself, without parsing. So the adapters add no framing
//! code to the machines and copy nothing between roles; they only map:
//!
//! | role machine (inside) | client end | connection manager end |
//! |---|---|---|
//! | first `<open/>` out | the session creation (its `to`, `xml:lang`; `xmpp:version='1.0'`) | (the server's answer header: its `id` becomes the creation response's `authid`) |
//! | later `<open/>` out | [`BoshClient::restart`](super::BoshClient::restart) (`xmpp:restart='true'`) | ignored (the restart response carries the new features) |
//! | element out | a payload of the next request, as written | a payload of the next response, as written |
//! | `<stream:error/>` out | a payload of the terminate request | [`BoshManager::terminate`](super::BoshManager::terminate) with `remote-stream-error` and the element |
//! | `<close/>` out | [`BoshClient::terminate`](super::BoshClient::terminate) | `BoshManager::terminate` (no condition); `<close see-other-uri/>` ([`Server::redirect`](crate::server::Server::redirect)): [`BoshManager::redirect`](super::BoshManager::redirect), `condition='see-other-uri'` with the `<uri/>` |
//! | header in | `SessionCreated`: `<open from= id=authid version=xmpp:version/>` | `SessionCreated`, `Restart`: `<open to= xml:lang= version=/>` |
//! | element in | each payload, already parsed by the BOSH machine, handed over as an element (checked against the phase, not written and read again) | the same |
//! | close in | `Terminated(None)`: `<close/>` | `Terminated`: `<close/>`, then the `Server` is dropped |
//! | stream error in | `Terminated` with `remote-stream-error`: its `<stream:error/>`; another terminal condition: the stream error of that name (`host-gone`, `policy-violation`..., `undefined-condition` when RFC 6120 has none); `see-other-uri`: `<close see-other-uri=/>` | a client's `<stream:error/>` payload, fed as a message |
//!
//! The element limits are the BOSH machine's, applied to each whole
//! `<body/>` ([`BoshClientConfig::limits`](super::BoshClientConfig::limits),
//! [`BoshManagerConfig::limits`](super::BoshManagerConfig::limits)); the
//! role machine checks each element's name and namespace against its phase
//! as it would a message's.
//!
//! TLS is HTTP's: give the role machine `direct_tls(info)` for `https`
//! ([`BoshXmppClient::new`] takes the `Client` as built;
//! [`BoshXmppServer`] gives every session's `Server` the
//! [`TlsInfo`](crate::TlsInfo) it was told, without channel binding, as a
//! session outlives any one HTTP connection).

mod client;
mod server;

pub use client::BoshXmppClient;
pub use server::{BoshXmppServer, BoshXmppServerEvent, SessionRandom};

use std::fmt;

use minidom::Element;

use super::Condition;
use crate::framing::Framing;
use crate::ns;
use crate::xml::StreamWriter;

/// The role machine given to an adapter is not configured with
/// [`Framing::Bosh`]: nothing was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotBoshFraming(pub Framing);

impl fmt::Display for NotBoshFraming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the role machine is configured for {:?}, not Framing::Bosh",
            self.0
        )
    }
}

impl std::error::Error for NotBoshFraming {}

/// What a role machine's message is (the machine writes these prefixes
/// itself; a host stanza named `open` is in another namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Open,
    Close,
    StreamError,
    Element,
}

const OPEN: &[u8] = b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'";
const CLOSE: &[u8] = b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'";
const STREAM_ERROR: &[u8] = b"<stream:error";

pub(crate) fn kind(msg: &[u8]) -> Kind {
    if msg.starts_with(OPEN) {
        Kind::Open
    } else if msg.starts_with(CLOSE) {
        Kind::Close
    } else if msg.starts_with(STREAM_ERROR) {
        Kind::StreamError
    } else {
        Kind::Element
    }
}

/// A message of ours as an element (`<open/>`, `<stream:error/>`: rare,
/// and always well-formed as written).
pub(crate) fn parse(msg: &[u8]) -> Option<Element> {
    std::str::from_utf8(msg).ok()?.parse().ok()
}

fn writer() -> StreamWriter {
    StreamWriter::with_framing(ns::JABBER_CLIENT, Framing::WebSocket)
}

/// The `<close/>` message, with its `see-other-uri`.
pub(crate) fn close_message(see_other_uri: Option<&str>) -> Vec<u8> {
    let mut el = Element::builder("close", ns::FRAMING);
    if let Some(uri) = see_other_uri {
        el = el.attr(crate::steps::name("see-other-uri"), uri);
    }
    let mut out = Vec::new();
    if writer().write_element(&mut out, &el.build()).is_err() {
        out.clear();
        writer().write_close(&mut out);
    }
    out
}

/// An element (a `<stream:error/>`) as a message.
pub(crate) fn element_message(el: &Element) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    writer().write_element(&mut out, el).ok()?;
    Some(out)
}

/// The `<stream:error/>` standing for a BOSH terminal condition.
pub(crate) fn stream_error_for(condition: Option<&Condition>) -> Element {
    let name = match condition {
        Some(Condition::BadRequest) => "bad-format",
        Some(Condition::HostGone) => "host-gone",
        Some(Condition::HostUnknown) => "host-unknown",
        Some(Condition::ImproperAddressing) => "improper-addressing",
        Some(Condition::InternalServerError) => "internal-server-error",
        Some(Condition::PolicyViolation) => "policy-violation",
        Some(Condition::RemoteConnectionFailed) => "remote-connection-failed",
        Some(Condition::SystemShutdown) => "system-shutdown",
        _ => "undefined-condition",
    };
    Element::builder("error", ns::STREAM)
        .append(Element::bare(name, ns::STREAM_ERRORS))
        .build()
}
