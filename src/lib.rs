//! # xmpp-sansio
//!
//! Every step of an XMPP stream (RFC 6120) as pure state machines, without
//! doing any I/O: the host feeds bytes in and gets events and bytes to send
//! out. Nothing in this crate opens a socket, reads a clock, spawns a task,
//! sleeps, or reads the OS random source on its own (the optional
//! [`OsRandom`] source aside, which the host chooses to pass in).
//!
//! The layers, bottom up:
//!
//! - [`xml`]: the stream codec shared by both roles. [`xml::StreamReader`]
//!   turns bytes into stream events ([`xml::StreamEvent`]) with exact byte
//!   accounting and bounded memory; [`xml::StreamWriter`] serialises headers,
//!   stanzas, stream errors and the closing tag.
//! - [`stream_error`]: RFC 6120 section 4.9 stream error conditions.
//! - [`sasl`]: SASL mechanisms as small step machines, client and server
//!   side, with credentials supplied by the host.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
mod core;
pub mod features;
pub mod ns;
pub mod random;
pub mod sasl;
pub mod server;
pub mod steps;
pub mod stream_error;
pub mod tls;
pub mod xml;

pub use core::UsageError;
#[cfg(feature = "getrandom")]
pub use random::OsRandom;
pub use random::{DeterministicRandom, RandomSource};
pub use tls::TlsInfo;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
