//! The XML stream codec shared by the client and the server roles.
//!
//! - [`StreamReader`]: bytes in any chunks to [`StreamEvent`]s, one event
//!   per call, with exact byte accounting (stop after any top-level element
//!   and know what was consumed) and memory bounded by [`Limits`].
//! - [`StreamWriter`]: the header, elements, stream errors and the close.
//!
//! Both are built on `rxml`'s restricted XML parser: no DTDs, no external
//! or custom entities, no processing instructions, no comments, UTF-8
//! only, as RFC 6120 section 11 asks.

mod known;
mod plain;
mod reader;
mod shortcut;
mod writer;

pub(crate) use reader::cost;
pub use reader::{
    Gate, Limit, Limits, MessageFault, ReadError, Refusal, Restricted, StreamEvent, StreamHeader,
    StreamReader,
};
pub(crate) use writer::{check_name, check_text, write_attr};
pub use writer::{StreamWriter, WriteError};
