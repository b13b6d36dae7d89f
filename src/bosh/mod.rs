//! BOSH (XEP-0124) and XMPP over BOSH (XEP-0206), both ends, as sans-IO
//! machines: the host owns HTTP and the clock, the machines own the
//! session rules.
//!
//! - [`body`]: the `<body/>` wrapper, parsed within the crate's
//!   [`Limits`](crate::xml::Limits) and written without redundant `xmlns`.
//!
//! Both ends' session machines come next (issue 13).

pub mod body;

pub use body::{Body, BodyError, BodyType, Condition, MAX_RID, NS_HTTPBIND, NS_XBOSH};
