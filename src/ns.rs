//! XML namespace names used on XMPP streams.

/// The streams namespace (RFC 6120 section 4.8.1).
pub const STREAM: &str = "http://etherx.jabber.org/streams";
/// Content namespace of client-to-server streams.
pub const JABBER_CLIENT: &str = "jabber:client";
/// Content namespace of server-to-server streams.
pub const JABBER_SERVER: &str = "jabber:server";
/// Stream error conditions (RFC 6120 section 4.9.2).
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// STARTTLS (RFC 6120 section 5).
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL (RFC 6120 section 6).
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding (RFC 6120 section 7).
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Session establishment (RFC 3921 section 3).
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// Stanza error conditions (RFC 6120 section 8.3).
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// The reserved `xml` prefix namespace.
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
/// XEP-0198 stream management, version 3.
pub const SM: &str = "urn:xmpp:sm:3";
/// XEP-0440 SASL channel-binding type capability.
pub const SASL_CB: &str = "urn:xmpp:sasl-cb:0";
/// XEP-0484 Fast Authentication Streamlining Tokens.
pub const FAST: &str = "urn:xmpp:fast:0";
/// XEP-0077 in-band registration, stream feature.
#[cfg(feature = "legacy")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
pub const FEATURE_REGISTER: &str = "http://jabber.org/features/iq-register";
/// XEP-0078 non-SASL authentication, stream feature.
#[cfg(feature = "legacy")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
pub const FEATURE_IQ_AUTH: &str = "http://jabber.org/features/iq-auth";
/// XEP-0077 in-band registration, IQ payload.
#[cfg(feature = "legacy")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
pub const IQ_REGISTER: &str = "jabber:iq:register";
/// XEP-0078 non-SASL authentication, IQ payload.
#[cfg(feature = "legacy")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
pub const IQ_AUTH: &str = "jabber:iq:auth";
/// Google's XMPP auth extensions (X-OAUTH2 attributes on `<auth/>`).
#[cfg(feature = "google")]
#[cfg_attr(docsrs, doc(cfg(feature = "google")))]
pub const GOOGLE_AUTH: &str = "http://www.google.com/talk/protocol/auth";
/// RFC 7395 WebSocket framing: `<open/>` and `<close/>`.
pub const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// XEP-0388 Extensible SASL Profile (SASL2).
pub const SASL2: &str = "urn:xmpp:sasl:2";
/// XEP-0386 Bind 2.
pub const BIND2: &str = "urn:xmpp:bind:0";
/// XEP-0280 Message Carbons (`<enable/>`, inline in Bind 2).
pub const CARBONS: &str = "urn:xmpp:carbons:2";
/// XEP-0352 Client State Indication (`<active/>`, `<inactive/>`).
pub const CSI: &str = "urn:xmpp:csi:0";
/// XEP-0480 SASL upgrade tasks: the `<upgrade/>` offer and request.
pub const SASL_UPGRADE: &str = "urn:xmpp:sasl:upgrade:0";
/// XEP-0480 SCRAM upgrade tasks: `<salt/>` and `<hash/>`.
pub const SCRAM_UPGRADE: &str = "urn:xmpp:scram-upgrade:0";
