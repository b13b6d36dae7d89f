//! # xmpp-sansio
//!
//! Every step of an XMPP stream (RFC 6120) as pure state machines, without
//! doing any I/O: the host feeds bytes in and gets events and bytes to send
//! out. Nothing in this crate opens a socket, reads a clock, spawns a task,
//! sleeps, or reads the OS random source on its own (the optional
//! [`OsRandom`] source aside, which the host chooses to pass in).
//!
//! ## The drive loop
//!
//! A [`client::Client`] and a [`server::Server`] talking to each other in
//! memory; a real host moves the same bytes over a socket. After every
//! input: drain `poll_transmit`, then `poll_event`, then read
//! `poll_timeout`. The server asks its host for credentials and bind
//! decisions; here the host answers at once.
//!
//! ```
//! # #[cfg(feature = "getrandom")] fn main() {
//! use std::time::Instant;
//! use xmpp_sansio::client::{Client, ClientConfig, ClientEvent, Credentials, TlsMode};
//! use xmpp_sansio::sasl::{scram, CredentialAnswer, CredentialRequest, ScramHash};
//! use xmpp_sansio::server::{BindAnswer, Server, ServerConfig, ServerEvent, ServerTls};
//!
//! let now = Instant::now();
//! // Configurations are built once, checked, and shared by every session.
//! let mut cc = ClientConfig::builder("juliet@example.com", Credentials::password("r0m30"));
//! cc.tls = TlsMode::None; // loopback test: no TLS
//! let client_config = std::sync::Arc::new(cc.build().expect("a valid configuration"));
//! let mut sc = ServerConfig::builder("example.com");
//! sc.tls = ServerTls::None;
//! let server_config = std::sync::Arc::new(sc.build().expect("a valid configuration"));
//! let stored = scram::derive_server_credentials(ScramHash::Sha256, "r0m30", b"salt", 4096).unwrap();
//! // Randomness from the OS (`with_random` takes the host's own source).
//! let (mut client, mut server) = (Client::new(client_config, now), Server::new(server_config, now));
//! let mut wire = Vec::new();
//! while !(client.is_ready() && server.is_ready()) {
//!     client.poll_transmit(&mut wire);
//!     server.feed(now, &wire).unwrap();
//!     wire.clear();
//!     while let Some(ev) = server.poll_event() {
//!         match ev {
//!             ServerEvent::Credentials(CredentialRequest::Scram { .. }) => server
//!                 .answer_credentials(now, CredentialAnswer::Scram(Some(stored.clone())))
//!                 .unwrap(),
//!             ServerEvent::Bind { .. } => server.answer_bind(now, BindAnswer::Accept(None)).unwrap(),
//!             _ => {}
//!         }
//!     }
//!     server.poll_transmit(&mut wire);
//!     client.feed(now, &wire).unwrap();
//!     wire.clear();
//!     while let Some(ev) = client.poll_event() {
//!         if let ClientEvent::Ready { jid } = ev {
//!             assert_eq!(jid.to_bare().as_str(), "juliet@example.com");
//!         }
//!     }
//! }
//! # }
//! # #[cfg(not(feature = "getrandom"))] fn main() {}
//! ```
//!
//! ## The layers, bottom up
//!
//! - [`xml`]: the stream codec shared by both roles. [`xml::StreamReader`]
//!   turns bytes into stream events ([`xml::StreamEvent`]) with exact byte
//!   accounting and bounded memory; [`xml::StreamWriter`] serialises headers,
//!   stanzas, stream errors and the closing tag.
//! - [`framing`]: how the stream is carried: [`Framing::Tcp`] (bytes) or
//!   [`Framing::WebSocket`] (RFC 7395, one element per message), chosen
//!   per configuration; the role machines are the same over both.
//! - [`stream_error`]: RFC 6120 section 4.9 stream error conditions.
//! - [`sasl`]: SASL mechanisms as small step machines, client and server
//!   side, with credentials supplied by the host; the client's mechanism
//!   policy; channel binding.
//! - [`features`]: the stream feature table; [`steps`]: each negotiation
//!   step's elements, for both roles.
//! - [`client`] and [`server`]: the two negotiation state machines.
//!
//! ## Cargo features
//!
//! All on by default; without one, its code is not compiled, its
//! configuration fields, enum variants and modules do not exist, and a peer
//! that offers it is treated as by a crate that never heard of it.
//!
//! - `getrandom`: `OsRandom`, a random source backed by the OS.
//! - `legacy`: non-SASL authentication (XEP-0078, `jabber:iq:auth`),
//!   in-band registration (XEP-0077) and pre-1.0 streams (Jabber 1.4) on
//!   both roles. Without it, a pre-1.0 server is refused with
//!   [`client::PolicyError::UnsupportedVersion`] and a pre-1.0 client gets
//!   `unsupported-version`.
//! - `digest-md5`: the DIGEST-MD5 mechanism (historic, RFC 6331), and the
//!   `md-5` dependency. Without it, a server never offers it and a client
//!   never picks it.
//! - `google`: X-GOOGLE-TOKEN and Google's X-OAUTH2 `<auth/>` attributes
//!   (`http://www.google.com/talk/protocol/auth`); X-OAUTH2 itself stays.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bosh;
pub mod client;
mod core;
pub mod error;
pub mod fast;
pub mod features;
pub mod framing;
mod gate;
pub mod ns;
pub mod random;
pub mod sasl;
pub mod sasl2;
pub mod server;
pub mod sm;
pub mod steps;
pub mod stream_error;
pub mod tls;
mod validate;
pub mod xml;

pub use core::{AnswerKind, BufferPolicy, UsageError};
pub use framing::Framing;
/// The `jid` crate this crate's JIDs come from (the one xmpp-parsers uses).
pub use jid;
#[cfg(any(test, feature = "test-util"))]
pub use random::DeterministicRandom;
#[cfg(feature = "getrandom")]
pub use random::OsRandom;
pub use random::RandomSource;
pub use tls::TlsInfo;
pub use validate::{ConfigError, MAX_DURATION};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
