//! Checks of configuration values shared by both roles.

use std::fmt;
use std::time::Duration;

use crate::xml::Limits;

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
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Duration { field, value } => write!(
                f,
                "{field} is {value:?}: it must be above zero and at most {MAX_DURATION:?}"
            ),
            Self::Limit { field } => write!(f, "{field} must be above zero"),
        }
    }
}

impl std::error::Error for ConfigError {}

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
