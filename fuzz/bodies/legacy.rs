//! Fuzz body for the legacy layer of both roles: in-band registration
//! (XEP-0077) and non-SASL authentication (XEP-0078) turned on, with the
//! drivers, hosts, checks and heap budget of `server.rs` and `client.rs`.
//! Shared by the cargo-fuzz target (`fuzz/fuzz_targets/legacy.rs`) and
//! the seed-corpus test (`tests/fuzz_roles.rs`), which builds the seeds
//! from legacy sessions of our client against our server and from seed
//! 001 (`tests/fixtures/seeds/seed001_jabber14.txt`).
//!
//! Input layout: byte 0 chooses the role (bit 0: 0 the server, 1 the
//! client; the other bits are ignored), the rest is that role's input
//! (two configuration bytes, then the peer's bytes):
//!
//! - the server (`server.rs`'s layout) also offers registration (a form
//!   asking for an email too) and accepts every jabber:iq:auth method and
//!   pre-1.0 streams; its host knows [`USER`](server_body::USER) (so
//!   registering that name gets 409), checks plaintext, digest and
//!   zero-knowledge credentials (token `3B2DEEC0`, sequence 497, stepped
//!   down at each login), and refuses the resource `taken` with 409;
//! - the client (`client.rs`'s layout) registers first (driving bit 4: an
//!   enquiry for the form only; else a creation of `newbie`, then the
//!   login) and may use jabber:iq:auth, plaintext included, with pre-1.0
//!   servers or when no SASL mechanism fits. Inputs whose zero-knowledge
//!   sequence would make the client hash more than 99,999 times are
//!   skipped (`client_body::huge_sequence`).

#[allow(dead_code, clippy::duplicate_mod)]
#[macro_use]
#[path = "server.rs"]
pub mod server_body;

#[allow(dead_code, clippy::duplicate_mod)]
#[path = "client.rs"]
pub mod client_body;

use server_body::KNOWN_FAULTS;

/// Which role an input drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Our server, fed a client's bytes.
    Server,
    /// Our client, fed a server's bytes.
    Client,
}

/// The role byte of `side`.
pub fn role_byte(side: Side) -> u8 {
    match side {
        Side::Server => 0,
        Side::Client => 1,
    }
}

/// What a run reached, whichever the role.
#[derive(Debug)]
pub struct Reached {
    /// The role driven.
    pub side: Side,
    /// The session got ready.
    pub ready: bool,
    /// The stream failed.
    pub failed: bool,
    /// The role's events, rendered.
    pub events: Vec<String>,
}

/// Runs the input and returns what it reached; `None` for an input too
/// short or skipped.
pub fn run_outcome(data: &[u8]) -> Option<Reached> {
    let (role, rest) = data.split_first()?;
    let (side, o) = if role & 1 == 0 {
        let o = server_body::run_outcome_with(rest, KNOWN_FAULTS, true)?;
        (Side::Server, (o.ready, o.failed, o.events))
    } else {
        let o = client_body::run_outcome_with(rest, true)?;
        (Side::Client, (o.ready, o.failed, o.events))
    };
    let (ready, failed, events) = o;
    Some(Reached {
        side,
        ready,
        failed,
        events,
    })
}

/// The fuzz body.
pub fn run(data: &[u8]) {
    let _ = run_outcome(data);
}
