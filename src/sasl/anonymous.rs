//! ANONYMOUS (RFC 4505): one message carrying optional trace information
//! (an email address or an opaque string), at most 255 characters of
//! UTF-8. Prosody's capture shows the usual form: no trace, `=` on the
//! wire.
//!
//! The trace is checked with RFC 4505's "trace" stringprep profile
//! (no mapping, no normalisation; control, private-use, non-character,
//! surrogate, non-plain-text, display-changing and tagging characters
//! prohibited; bidirectional rules of RFC 3454 section 6). The client
//! refuses to send a trace the profile rejects. The server, as section 3
//! requires, treats such a trace as absent; a message that is not UTF-8 or
//! is over 255 characters is `malformed-request`.
//!
//! The server asks the host with [`CredentialRequest::Anonymous`]; the host
//! answers [`CredentialAnswer::Verdict`] with the user name it assigns
//! (a random localpart, for instance) or a refusal.
//!
//! [`CredentialRequest::Anonymous`]: super::CredentialRequest::Anonymous
//! [`CredentialAnswer::Verdict`]: super::CredentialAnswer::Verdict

use stringprep::tables;

use super::common::{self, one_shot_client, one_shot_server, OneShotMessage, Parsed};
use super::{CredentialRequest, SaslError};

/// The mechanism name.
pub const NAME: &str = "ANONYMOUS";

/// Longest trace, in characters.
const MAX_TRACE_CHARS: usize = 255;

/// Whether `trace` passes the "trace" profile of RFC 4505 section 3.
fn trace_profile_ok(trace: &str) -> bool {
    let prohibited = trace.chars().any(|c| {
        tables::ascii_control_character(c)
            || tables::non_ascii_control_character(c)
            || tables::private_use(c)
            || tables::non_character_code_point(c)
            || tables::surrogate_code(c)
            || tables::inappropriate_for_plain_text(c)
            || tables::change_display_properties_or_deprecated(c)
            || tables::tagging_character(c)
    });
    if prohibited {
        return false;
    }
    // RFC 3454 section 6.
    if trace.contains(tables::bidi_r_or_al) {
        let first = trace.chars().next().is_some_and(tables::bidi_r_or_al);
        let last = trace.chars().next_back().is_some_and(tables::bidi_r_or_al);
        if trace.contains(tables::bidi_l) || !first || !last {
            return false;
        }
    }
    true
}

/// What the ANONYMOUS client sends.
#[derive(Debug, Default)]
struct Fields {
    trace: Option<String>,
}

impl OneShotMessage for Fields {
    fn build(&self) -> Result<Vec<u8>, SaslError> {
        let t = self.trace.as_deref().unwrap_or("");
        if t.chars().count() > MAX_TRACE_CHARS {
            return Err(SaslError::malformed("trace longer than 255 characters"));
        }
        if !trace_profile_ok(t) {
            return Err(SaslError::malformed("trace refused by the trace profile"));
        }
        Ok(t.as_bytes().to_vec())
    }
}

one_shot_client! {
    /// Client side of ANONYMOUS.
    #[derive(Default)]
    pub struct AnonymousClient(Fields) = NAME;
}

impl AnonymousClient {
    /// No trace information.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `trace` (an email address or an opaque string without `@`).
    /// Empty means none.
    pub fn with_trace(mut self, trace: impl Into<String>) -> Self {
        self.inner.message_mut().trace = common::non_empty(trace);
        self
    }
}

one_shot_server! {
    /// Server side of ANONYMOUS (see the module docs for the host's answer).
    pub struct AnonymousServer = NAME, parse;
}

fn parse(message: &[u8]) -> Result<Parsed, SaslError> {
    // 255 characters of UTF-8 are at most 1020 bytes.
    common::check_len(message, MAX_TRACE_CHARS * 4)?;
    let trace = common::utf8(message, "trace is not UTF-8")?;
    if trace.chars().count() > MAX_TRACE_CHARS {
        return Err(SaslError::malformed("trace longer than 255 characters"));
    }
    let trace = (!trace.is_empty() && trace_profile_ok(trace)).then(|| trace.to_owned());
    Ok(Parsed {
        request: CredentialRequest::Anonymous { trace },
        authzid: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_profile() {
        assert!(trace_profile_ok("sirhc@example.com"));
        assert!(trace_profile_ok("caf\u{e9} \u{4e2d}"));
        assert!(!trace_profile_ok("a\u{7}b"));
        assert!(!trace_profile_ok("\u{e000}"));
        // RandALCat must start and end the string and exclude LCat.
        assert!(trace_profile_ok("\u{5d0}\u{5d1}"));
        assert!(!trace_profile_ok("\u{5d0}a"));
    }
}
