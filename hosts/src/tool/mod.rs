//! What the tools (`src/bin/*.rs`) share: their command lines, notes and
//! outcome lines, and the message to self of the login tools. Not a stable
//! API: the tools' behaviour and output lines are (the interop scripts
//! parse them).
#![allow(missing_docs)]

#[macro_use]
pub mod client_args;
pub mod accounts;
pub mod fast_token_file;
pub mod host;
pub mod im;
pub mod router;
pub mod self_message;
pub mod sm;
