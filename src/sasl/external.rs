//! EXTERNAL (RFC 4422 appendix A): the client was authenticated outside
//! SASL (a TLS client certificate, or a proxy as in seed 002) and sends
//! only the identity it wants to act as: its authzid, or an empty message
//! (`=` on the wire) to act as whoever the external layer says it is.
//!
//! The server asks the host with [`CredentialRequest::External`]: the host
//! knows the external identity and answers [`CredentialAnswer::Verdict`]
//! with the user name it maps to (`Ok`), or `Err(invalid-authzid)` when
//! that identity may not act as the requested one, or
//! `Err(not-authorized)` when there is no usable external identity.
//!
//! The authzid is UTF-8, without NUL, and at most 3071 bytes (the longest
//! JID); anything else is `malformed-request`.
//!
//! [`CredentialRequest::External`]: super::CredentialRequest::External
//! [`CredentialAnswer::Verdict`]: super::CredentialAnswer::Verdict

use super::common::{self, one_shot_client, one_shot_server, OneShotMessage, Parsed};
use super::{CredentialRequest, SaslError};

/// The mechanism name.
pub const NAME: &str = "EXTERNAL";

/// Longest authzid accepted or sent: the longest JID (RFC 7622).
const MAX_AUTHZID_LEN: usize = 3071;

/// What the EXTERNAL client sends.
#[derive(Debug, Default)]
struct Fields {
    authzid: Option<String>,
}

impl OneShotMessage for Fields {
    fn build(&self) -> Result<Vec<u8>, SaslError> {
        let a = self.authzid.as_deref().unwrap_or("");
        if a.contains('\0') {
            return Err(SaslError::malformed("NUL in authzid"));
        }
        common::check_len(a.as_bytes(), MAX_AUTHZID_LEN)?;
        Ok(a.as_bytes().to_vec())
    }
}

one_shot_client! {
    /// Client side of EXTERNAL.
    #[derive(Default)]
    pub struct ExternalClient(Fields) = NAME;
}

impl ExternalClient {
    /// Acts as the identity the external layer established.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks to act as `authzid` instead. Empty means none.
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        self.inner.message_mut().authzid = common::non_empty(authzid);
        self
    }
}

one_shot_server! {
    /// Server side of EXTERNAL (see the module docs for the host's answer).
    pub struct ExternalServer = NAME, parse;
}

fn parse(message: &[u8]) -> Result<Parsed, SaslError> {
    common::check_len(message, MAX_AUTHZID_LEN)?;
    let authzid = common::utf8(message, "authzid is not UTF-8")?;
    if authzid.contains('\0') {
        return Err(SaslError::malformed("NUL in authzid"));
    }
    let authzid = (!authzid.is_empty()).then(|| authzid.to_owned());
    Ok(Parsed {
        request: CredentialRequest::External {
            authzid: authzid.clone(),
        },
        authzid,
    })
}
