//! Checks of configuration values shared by both roles.

use std::fmt;
use std::time::Duration;

#[cfg(feature = "legacy")]
use minidom::Element;

#[cfg(feature = "legacy")]
use crate::xml::StreamWriter;
use crate::xml::{check_text, Limits, WriteError};

/// The longest duration a configuration accepts (a day): deadlines are
/// for a stream's steps, not for its lifetime.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration of zero, or above [`MAX_DURATION`].
    Duration {
        /// The field.
        field: &'static str,
        /// Its value.
        value: Duration,
    },
    /// A limit of zero.
    Limit {
        /// The field.
        field: &'static str,
    },
    /// A value that goes on the wire and that XML cannot carry (a control
    /// character such as U+0007, a name that is not an XML name): the
    /// machine would have nothing to send, so it sends nothing and fails
    /// at once.
    Unwritable {
        /// The field.
        field: &'static str,
        /// Why it cannot be written.
        error: WriteError,
    },
    /// A JID, domain or resource that is not one (RFC 7622: it fails
    /// preparation, is empty or too long, or has a resource where a bare
    /// JID is wanted).
    Jid {
        /// The field.
        field: &'static str,
        /// Why, from the `jid` crate.
        reason: String,
    },
    /// No secret to derive unknown users' SCRAM salts from, and no OS
    /// random source (the `getrandom` feature) to draw one.
    MissingSecret {
        /// The field.
        field: &'static str,
    },
    /// The password has a character XML cannot carry, and the
    /// configuration may send it as text (legacy `jabber:iq:auth`
    /// plaintext). Which character is not said: it is part of a secret.
    UnwritablePassword,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duration { field, value } => write!(
                f,
                "{field} is {value:?}: it must be above zero and at most {MAX_DURATION:?}"
            ),
            Self::Limit { field } => write!(f, "{field} must be above zero"),
            Self::Unwritable { field, error } => write!(f, "{field} cannot be sent: {error}"),
            Self::Jid { field, reason } => write!(f, "{field} is not a valid JID: {reason}"),
            Self::MissingSecret { field } => write!(f, "{field} must be set"),
            Self::UnwritablePassword => {
                f.write_str("the password has a character that XML cannot carry")
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unwritable { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl ConfigError {
    pub(crate) fn jid(field: &'static str, e: jid::Error) -> Self {
        Self::Jid {
            field,
            reason: e.to_string(),
        }
    }
}

/// `value`, a bare JID, prepared.
pub(crate) fn check_jid(field: &'static str, value: &str) -> Result<jid::BareJid, ConfigError> {
    jid::BareJid::new(value).map_err(|e| ConfigError::jid(field, e))
}

/// `value`, a domain, prepared.
pub(crate) fn check_domain(
    field: &'static str,
    value: &str,
) -> Result<jid::DomainPart, ConfigError> {
    jid::DomainPart::new(value)
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| ConfigError::jid(field, e))
}

/// `value` is usable as `field`'s duration.
pub(crate) fn check_duration(field: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() || value > MAX_DURATION {
        return Err(ConfigError::Duration { field, value });
    }
    Ok(())
}

/// No reader limit is zero.
pub(crate) fn check_limits(l: &Limits) -> Result<(), ConfigError> {
    for (field, v) in [
        ("limits.max_element_bytes", l.max_element_bytes),
        ("limits.max_depth", l.max_depth),
        ("limits.max_attributes", l.max_attributes),
        ("limits.max_token_bytes", l.max_token_bytes),
        ("limits.max_element_heap", l.max_element_heap),
    ] {
        if v == 0 {
            return Err(ConfigError::Limit { field });
        }
    }
    Ok(())
}

/// `value` can go on the wire as `field` (text or an attribute value).
pub(crate) fn check_writable(field: &'static str, value: &str) -> Result<(), ConfigError> {
    check_text(value).map_err(|error| ConfigError::Unwritable { field, error })
}

/// `el`, built from `field`, serialises.
#[cfg(feature = "legacy")]
pub(crate) fn check_element(field: &'static str, el: &Element) -> Result<(), ConfigError> {
    StreamWriter::new(crate::ns::JABBER_CLIENT)
        .write_element(&mut Vec::new(), el)
        .map_err(|error| ConfigError::Unwritable { field, error })
}
