//! SASL (RFC 4422 as profiled by RFC 6120 section 6): mechanisms as small,
//! pure step machines, shared by the client and the server roles.
//!
//! A client mechanism ([`ClientMechanism`]) produces the initial response,
//! answers challenges and checks the additional data of `<success/>`. A
//! server mechanism ([`ServerMechanism`]) consumes responses and returns a
//! [`ServerStep`]: a challenge to send, a [`CredentialRequest`] that the host
//! answers later with [`ServerMechanism::answer`], or the outcome. Nothing
//! here does I/O, reads a clock or the OS random source: nonces come from a
//! [`RandomSource`](crate::RandomSource) the caller passes in.
//!
//! DIGEST-MD5 needs the `digest-md5` cargo feature, X-GOOGLE-TOKEN the
//! `google` feature (both on by default): without them their modules,
//! [`CredentialRequest`] and [`CredentialAnswer`] variants and policy
//! switches do not exist, neither role offers or picks them.
//!
//! GSSAPI ([`gssapi`], RFC 4752) ships as the SASL layer only: the
//! GSS-API context (Kerberos) is the host's, behind
//! [`gssapi::GssContext`], and the mechanism exists in a configuration only
//! once the host registers its factory of contexts.
//!
//! Hosts can add mechanisms this crate does not ship by implementing the
//! two traits and
//! registering a factory for each side: in
//! [`ClientSettings::mechanisms`](crate::client::ClientSettings::mechanisms)
//! (with the [`policy::MechanismProfile`] the client's policy ranks it
//! by) and in [`ServerSettings::registry`](crate::server::ServerSettings::registry)
//! (named in [`ServerSettings::mechanisms`](crate::server::ServerSettings::mechanisms)
//! to be offered). The crate's own mechanisms go through the same
//! registries.
//!
//! Payloads at this layer are raw bytes: base64 belongs to the XML layer
//! (see [`encode_payload`] and [`decode_payload`]).

pub mod anonymous;
pub mod channel_binding;
pub(crate) mod common;
#[cfg(feature = "digest-md5")]
#[cfg_attr(docsrs, doc(cfg(feature = "digest-md5")))]
pub mod digest_md5;
pub mod external;
pub mod gssapi;
pub mod ht;
pub mod oauthbearer;
pub mod plain;
pub mod policy;
pub mod registry;
pub mod scram;
#[cfg(feature = "google")]
#[cfg_attr(docsrs, doc(cfg(feature = "google")))]
pub mod x_google_token;
pub mod x_oauth2;

use std::fmt;

use base64::Engine as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The SASL failure conditions of RFC 6120 section 6.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SaslCondition {
    /// `<aborted/>`: the initiating entity aborted the exchange.
    Aborted,
    /// `<account-disabled/>`.
    AccountDisabled,
    /// `<credentials-expired/>`.
    CredentialsExpired,
    /// `<encryption-required/>`: the mechanism needs a protected stream.
    EncryptionRequired,
    /// `<incorrect-encoding/>`: bad base64.
    IncorrectEncoding,
    /// `<invalid-authzid/>`.
    InvalidAuthzid,
    /// `<invalid-mechanism/>`: unknown or unoffered mechanism.
    InvalidMechanism,
    /// `<malformed-request/>`.
    MalformedRequest,
    /// `<mechanism-too-weak/>`.
    MechanismTooWeak,
    /// `<not-authorized/>`: bad credentials.
    NotAuthorized,
    /// `<temporary-auth-failure/>`.
    TemporaryAuthFailure,
}

impl SaslCondition {
    /// Every condition, in RFC order.
    pub const ALL: [SaslCondition; 11] = [
        Self::Aborted,
        Self::AccountDisabled,
        Self::CredentialsExpired,
        Self::EncryptionRequired,
        Self::IncorrectEncoding,
        Self::InvalidAuthzid,
        Self::InvalidMechanism,
        Self::MalformedRequest,
        Self::MechanismTooWeak,
        Self::NotAuthorized,
        Self::TemporaryAuthFailure,
    ];

    /// The element name of the condition (`not-authorized`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aborted => "aborted",
            Self::AccountDisabled => "account-disabled",
            Self::CredentialsExpired => "credentials-expired",
            Self::EncryptionRequired => "encryption-required",
            Self::IncorrectEncoding => "incorrect-encoding",
            Self::InvalidAuthzid => "invalid-authzid",
            Self::InvalidMechanism => "invalid-mechanism",
            Self::MalformedRequest => "malformed-request",
            Self::MechanismTooWeak => "mechanism-too-weak",
            Self::NotAuthorized => "not-authorized",
            Self::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }

    /// Parses an element name; `None` for an unknown condition.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for SaslCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SASL step failed. Carries the condition that goes to the peer (on the
/// server side) or that explains the failure (on the client side), and a
/// static description for logs. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslError {
    /// The RFC 6120 condition.
    pub condition: SaslCondition,
    /// What went wrong, for humans. Never contains secrets.
    pub reason: &'static str,
}

impl SaslError {
    /// A new error.
    pub const fn new(condition: SaslCondition, reason: &'static str) -> Self {
        Self { condition, reason }
    }

    /// `malformed-request` with `reason`.
    pub const fn malformed(reason: &'static str) -> Self {
        Self::new(SaslCondition::MalformedRequest, reason)
    }

    /// `not-authorized` with `reason`.
    pub const fn not_authorized(reason: &'static str) -> Self {
        Self::new(SaslCondition::NotAuthorized, reason)
    }
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SASL {}: {}", self.condition, self.reason)
    }
}

impl std::error::Error for SaslError {}

/// A secret string (password, token): zeroed on drop, never shown by
/// `Debug`. Its `==` is [`ct_eq`](Self::ct_eq): it takes a time that
/// depends only on the lengths, never returning at the first byte that
/// differs.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself. Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret equals `other`, in time that depends only on
    /// the lengths, not on where the bytes differ. (Another secret:
    /// `a.ct_eq(b.expose())`.)
    pub fn ct_eq(&self, other: &str) -> bool {
        common::ct_eq(self.0.as_bytes(), other.as_bytes())
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other.expose())
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Secret bytes (derived keys, binding data that must not leak): zeroed on
/// drop, never shown by `Debug`. Its `==` is [`ct_eq`](Self::ct_eq), in
/// time that depends only on the lengths.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps `b`.
    pub fn new(b: impl Into<Vec<u8>>) -> Self {
        Self(b.into())
    }

    /// The bytes themselves. Handle with care.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether the bytes equal `other`, in time that depends only on the
    /// lengths, not on where the bytes differ. (Other secret bytes:
    /// `a.ct_eq(b.expose())`.)
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        common::ct_eq(&self.0, other)
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other.expose())
    }
}

impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// Who authenticated: the result of a successful server-side exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The authenticated user name (the local part of the account JID, or
    /// the name the host assigned for ANONYMOUS and EXTERNAL).
    pub username: String,
    /// The identity the client asked to act as, if it differs (already
    /// approved by the mechanism or the host).
    pub authzid: Option<String>,
}

/// What a mechanism's client side sends next.
pub trait ClientMechanism: Send {
    /// The registered mechanism name (`SCRAM-SHA-256-PLUS`, ...).
    fn name(&self) -> &str;

    /// The initial response: `Some(bytes)` goes into `<auth/>` (an empty
    /// vector is sent as `=`); `None` sends an empty `<auth/>` and waits for
    /// a challenge.
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError>;

    /// Answers a `<challenge/>` (already base64-decoded).
    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError>;

    /// Checks the additional data of `<success/>` (`None` when it had
    /// none). A mechanism that authenticates the server (SCRAM's server
    /// signature, DIGEST-MD5's `rspauth`) fails here when the server did not
    /// prove itself.
    fn success(&mut self, additional_data: Option<&[u8]>) -> Result<(), SaslError>;

    /// Keys derived during a successful exchange that the host may cache
    /// to skip key derivation next time (SCRAM's keys). `None` for
    /// mechanisms without any. Called once, after a successful
    /// [`success`](Self::success): the mechanism may hand its keys over
    /// rather than copy them.
    fn derived_keys(&mut self) -> Option<scram::ScramClientKeys> {
        None
    }

    /// Extra attributes the XML layer puts on `<auth/>` for this mechanism
    /// (Google's `auth:service='oauth2'` for X-OAUTH2, for instance). Empty
    /// for almost every mechanism, which is the default.
    fn auth_attributes(&self) -> &[AuthAttribute] {
        &[]
    }

    /// What the exchange proved beyond the identity (channel binding,
    /// XEP-0474), asked once it succeeded. Nothing, by default.
    fn security(&self) -> ExchangeSecurity {
        ExchangeSecurity::default()
    }
}

/// What a finished SASL exchange proved about the connection beyond who
/// authenticated, as the `Authenticated` events of both roles report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ExchangeSecurity {
    /// The gs2 channel-binding choice (SCRAM); `None` for mechanisms
    /// without one.
    pub channel_binding: Option<ChannelBindingUse>,
    /// XEP-0474 downgrade protection. Client: the server sent `h=` and it
    /// matched the mechanisms and channel-binding types the client was
    /// offered. Server: `h=` was sent.
    pub downgrade_protection: bool,
    /// Server, FAST (XEP-0484): which of the client's token slots the
    /// login used. [`TokenSlot::New`](crate::fast::TokenSlot::New): the
    /// host moves that token to the current slot and drops the old one
    /// ([`TokenSlots::promote`](crate::fast::TokenSlots::promote)).
    /// `None` for every other mechanism, and on the client.
    pub fast_token: Option<crate::fast::TokenSlot>,
}

/// The gs2 channel-binding flag of an exchange (RFC 5802 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBindingUse {
    /// `n`: the client cannot bind.
    NotSupported,
    /// `y`: the client could bind but was offered no `-PLUS` mechanism.
    SupportedNotUsed,
    /// `p`: the exchange is bound to the channel with this type.
    Bound(channel_binding::ChannelBindingType),
}

impl ChannelBindingUse {
    /// The gs2 flag letter: `n`, `y` or `p`.
    pub fn flag(self) -> char {
        match self {
            Self::NotSupported => 'n',
            Self::SupportedNotUsed => 'y',
            Self::Bound(_) => 'p',
        }
    }
}

/// A namespaced attribute for the `<auth/>` element, reported by
/// [`ClientMechanism::auth_attributes`]. The XML layer declares
/// `namespace` under a prefix of its choice (Google's examples use `auth`,
/// giving `xmlns:auth='http://www.google.com/talk/protocol/auth'`) and
/// writes `prefix:name='value'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthAttribute {
    /// The attribute's namespace URI.
    pub namespace: &'static str,
    /// The local name.
    pub name: &'static str,
    /// The value (plain text; the XML layer escapes it).
    pub value: &'static str,
}

/// The next thing a server mechanism needs done.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerStep {
    /// Send this `<challenge/>` and wait for the client's response.
    Challenge(Vec<u8>),
    /// Ask the host; answer with [`ServerMechanism::answer`], now or later.
    Request(CredentialRequest),
    /// Authenticated. `additional_data` goes into `<success/>`.
    Success {
        /// Who authenticated.
        identity: Identity,
        /// Data for the `<success/>` element (SCRAM's server-final).
        additional_data: Option<Vec<u8>>,
    },
}

/// What a server mechanism needs the host to look up or decide.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CredentialRequest {
    /// Check a plaintext password (PLAIN). Answer with
    /// [`CredentialAnswer::Verdict`].
    Password {
        /// The authentication identity (user name).
        username: String,
        /// The requested authorization identity, if any.
        authzid: Option<String>,
        /// The password the client sent.
        password: Secret,
    },
    /// Give the SCRAM credentials stored for `username`. Answer with
    /// [`CredentialAnswer::Scram`].
    Scram {
        /// The (SASLprep'd, unescaped) user name.
        username: String,
        /// The requested authorization identity, if any.
        authzid: Option<String>,
        /// Which hash family the credentials must be for.
        hash: ScramHash,
    },
    /// Give the DIGEST-MD5 secret for `username` in `realm`. Answer with
    /// [`CredentialAnswer::DigestMd5`].
    #[cfg(feature = "digest-md5")]
    #[cfg_attr(docsrs, doc(cfg(feature = "digest-md5")))]
    DigestMd5 {
        /// The user name.
        username: String,
        /// The realm the client chose.
        realm: String,
        /// The requested authorization identity, if any.
        authzid: Option<String>,
    },
    /// Check a bearer token (X-OAUTH2, X-GOOGLE-TOKEN, OAUTHBEARER). Answer
    /// with [`CredentialAnswer::Verdict`].
    Token {
        /// The mechanism that carried the token.
        mechanism: &'static str,
        /// The user the client claims to be (may be empty for OAUTHBEARER
        /// without an authzid: the host derives it from the token).
        username: String,
        /// The token.
        token: Secret,
    },
    /// May the TLS-level identity act as `authzid` (EXTERNAL)? The host
    /// knows the client certificate. Answer with
    /// [`CredentialAnswer::Verdict`].
    External {
        /// The requested authorization identity, if any.
        authzid: Option<String>,
    },
    /// May the Kerberos principal that the GSS-API context established act
    /// as `authzid` (GSSAPI, RFC 4752)? The host maps the principal
    /// (`alice@EXAMPLE.TEST`) to a user name. Answer with
    /// [`CredentialAnswer::Verdict`]: the user name, or
    /// `Err(invalid-authzid)`, or `Err(not-authorized)`.
    Gssapi {
        /// The initiator's principal, as the host's context named it.
        principal: String,
        /// The requested authorization identity, if any.
        authzid: Option<String>,
    },
    /// Give the FAST tokens (XEP-0484) the host keeps for `username`'s
    /// client `user_agent_id`: answer with [`CredentialAnswer::FastTokens`]
    /// (its two slots, without the tokens that expired or that it no
    /// longer trusts; empty slots for an unknown user or client), or
    /// `Verdict(Err(condition))` to refuse outright. The mechanism
    /// compares in constant time and reports the slot that matched in
    /// [`ExchangeSecurity::fast_token`]; no match is
    /// `credentials-expired`.
    FastToken {
        /// The `HT-*` mechanism: a token bound to another one does not
        /// match.
        mechanism: &'static str,
        /// The user name the client sent.
        username: String,
        /// The XEP-0388 `<user-agent id>` of the `<authenticate>`: tokens
        /// are kept per client. `None` when there was none.
        user_agent_id: Option<String>,
        /// The `count` of the client's `<fast/>` (XEP-0484 replay counter,
        /// required only in TLS 0-RTT data): a host that keeps the last
        /// count per token refuses one not above it.
        count: Option<u32>,
        /// The client's `<fast invalidate='true'/>`: once the login
        /// succeeded, the host drops the token it used
        /// ([`TokenSlots::invalidate`](crate::fast::TokenSlots::invalidate)).
        invalidate: bool,
    },
    /// Admit an anonymous user (ANONYMOUS)? Answer with
    /// [`CredentialAnswer::Verdict`], naming the user name the host assigns.
    Anonymous {
        /// The optional trace information the client sent.
        trace: Option<String>,
    },
}

impl CredentialRequest {
    /// Prepares the user name of a password, SCRAM or DIGEST-MD5 request
    /// as the local part of a JID (nodeprep, as Prosody does): the host
    /// looks `Juliet` up as `juliet`. `Err` when the name is no local part
    /// (it names no account).
    pub(crate) fn prepare_username(&mut self) -> Result<(), jid::Error> {
        let name = match self {
            Self::Password { username, .. }
            | Self::Scram { username, .. }
            | Self::FastToken { username, .. } => username,
            #[cfg(feature = "digest-md5")]
            Self::DigestMd5 { username, .. } => username,
            _ => return Ok(()),
        };
        let prepared = jid::NodePart::new(name)?;
        if prepared.as_str() != name.as_str() {
            *name = prepared.as_str().to_owned();
        }
        Ok(())
    }

    /// The kind of [`CredentialAnswer`] this request takes.
    pub fn expected_answer(&self) -> crate::AnswerKind {
        use crate::AnswerKind as K;
        match self {
            Self::Scram { .. } => K::ScramCredentials,
            Self::FastToken { .. } => K::FastTokens,
            #[cfg(feature = "digest-md5")]
            Self::DigestMd5 { .. } => K::DigestMd5Secret,
            Self::Password { .. }
            | Self::Token { .. }
            | Self::External { .. }
            | Self::Gssapi { .. }
            | Self::Anonymous { .. } => K::CredentialVerdict,
        }
    }
}

/// The host's answer to a [`CredentialRequest`].
#[derive(Debug)]
#[non_exhaustive]
pub enum CredentialAnswer {
    /// A decision: the user name that authenticated, or the failure
    /// condition (`not-authorized`, `account-disabled`, ...).
    Verdict(Result<String, SaslCondition>),
    /// SCRAM credentials, or `None` when the user is unknown.
    Scram(Option<ScramCredentials>),
    /// The FAST token slots of the user's client (empty when the host
    /// knows none).
    FastTokens(crate::fast::TokenSlots),
    /// The DIGEST-MD5 secret, or `None` when the user is unknown.
    #[cfg(feature = "digest-md5")]
    #[cfg_attr(docsrs, doc(cfg(feature = "digest-md5")))]
    DigestMd5(Option<DigestMd5Secret>),
}

impl CredentialAnswer {
    /// Which kind of answer this is.
    pub fn kind(&self) -> crate::AnswerKind {
        match self {
            Self::Verdict(_) => crate::AnswerKind::CredentialVerdict,
            Self::Scram(_) => crate::AnswerKind::ScramCredentials,
            Self::FastTokens(_) => crate::AnswerKind::FastTokens,
            #[cfg(feature = "digest-md5")]
            Self::DigestMd5(_) => crate::AnswerKind::DigestMd5Secret,
        }
    }
}

/// The SCRAM hash families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScramHash {
    /// SHA-1 (RFC 5802).
    Sha1,
    /// SHA-256 (RFC 7677).
    Sha256,
    /// SHA-512.
    Sha512,
}

/// What a server stores for a SCRAM user instead of the password.
#[derive(Clone)]
pub struct ScramCredentials {
    /// The salt.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// H(ClientKey).
    pub stored_key: SecretBytes,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: SecretBytes,
}

impl PartialEq for ScramCredentials {
    /// The keys compare in constant time.
    fn eq(&self, other: &Self) -> bool {
        self.salt == other.salt
            && self.iterations == other.iterations
            && self.stored_key == other.stored_key
            && self.server_key == other.server_key
    }
}

impl Eq for ScramCredentials {}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// What a server stores for DIGEST-MD5.
#[cfg(feature = "digest-md5")]
#[cfg_attr(docsrs, doc(cfg(feature = "digest-md5")))]
#[derive(Debug, Clone)]
pub enum DigestMd5Secret {
    /// The plaintext password.
    Password(Secret),
    /// H(username ":" realm ":" password), the 16-byte MD5 digest.
    UserRealmPasswordHash(SecretBytes),
}

/// A server-side mechanism step machine.
pub trait ServerMechanism: Send {
    /// The registered mechanism name.
    fn name(&self) -> &str;

    /// Starts the exchange with the initial response of `<auth/>` (`None`
    /// when `<auth/>` was empty; `Some(&[])` when it was `=`).
    fn start(&mut self, initial_response: Option<&[u8]>) -> Result<ServerStep, SaslError>;

    /// Consumes a `<response/>` (already base64-decoded).
    fn respond(&mut self, response: &[u8]) -> Result<ServerStep, SaslError>;

    /// Takes the host's answer to the last [`ServerStep::Request`].
    fn answer(&mut self, answer: CredentialAnswer) -> Result<ServerStep, SaslError>;

    /// What the exchange proved beyond the identity, asked once it
    /// succeeded. Nothing, by default.
    fn security(&self) -> ExchangeSecurity {
        ExchangeSecurity::default()
    }
}

/// Base64-encodes a payload for `<auth/>`, `<challenge/>`, `<response/>` or
/// `<success/>`: an empty payload is `=` (RFC 6120 section 6.4.2).
pub fn encode_payload(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(data)
    }
}

/// Decodes the text of a SASL element: empty text is no payload (`None`),
/// `=` is an empty payload, whitespace (line breaks in seed 004's
/// transcript) is ignored. Bad base64 is `incorrect-encoding`.
pub fn decode_payload(text: &str) -> Result<Option<Vec<u8>>, SaslError> {
    decode_secret_payload(text).map(|p| p.map(|mut p| std::mem::take(&mut *p)))
}

/// [`decode_payload`] into a buffer zeroed on drop (a payload may carry a
/// password: PLAIN's, a token); the whitespace-free copy of the text and a
/// buffer that failed to decode are zeroed too.
pub(crate) fn decode_secret_payload(text: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SaslError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Zeroizing::new(Vec::new());
    match text {
        "" => return Ok(None),
        "=" => return Ok(Some(out)),
        // Whitespace is rare: decode first, look for it only on failure.
        t => {
            if b64.decode_vec(t, &mut out).is_ok() {
                return Ok(Some(out));
            }
        }
    }
    let mut compact = Zeroizing::new(String::with_capacity(text.len()));
    compact.extend(text.chars().filter(|c| !c.is_ascii_whitespace()));
    out.clear();
    match compact.as_str() {
        _ if compact.len() == text.len() => Err(bad_base64()),
        "" => Ok(None),
        "=" => Ok(Some(out)),
        s => match b64.decode_vec(s, &mut out) {
            Ok(()) => Ok(Some(out)),
            Err(_) => Err(bad_base64()),
        },
    }
}

fn bad_base64() -> SaslError {
    SaslError::new(SaslCondition::IncorrectEncoding, "bad base64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_round_trip_by_name() {
        for c in SaslCondition::ALL {
            assert_eq!(SaslCondition::from_name(c.as_str()), Some(c));
        }
        assert_eq!(SaslCondition::from_name("bogus"), None);
    }

    #[test]
    fn payload_encoding_follows_rfc6120() {
        assert_eq!(encode_payload(b""), "=");
        assert_eq!(decode_payload("=").unwrap(), Some(vec![]));
        assert_eq!(decode_payload("").unwrap(), None);
        assert_eq!(decode_payload(" \n").unwrap(), None);
        assert_eq!(
            decode_payload(" cnNw\nYXV0aA== ").unwrap(),
            Some(b"rspauth".to_vec())
        );
        assert_eq!(
            decode_payload("!!").unwrap_err().condition,
            SaslCondition::IncorrectEncoding
        );
    }

    #[test]
    fn secrets_compare_with_ct_eq() {
        let s = Secret::new("hunter2");
        assert!(s.ct_eq("hunter2"));
        assert!(!s.ct_eq("hunter3"));
        assert!(!s.ct_eq("hunter22"));
        assert!(!s.ct_eq(""));
        assert!(s.ct_eq(s.clone().expose()));
        let b = SecretBytes::new(vec![1, 2, 3]);
        assert!(b.ct_eq(&[1, 2, 3]));
        assert!(!b.ct_eq(&[1, 2, 4]));
        assert!(!b.ct_eq(&[1, 2]));
    }

    #[test]
    fn channel_bindings_compare_kind_and_data() {
        use channel_binding::{ChannelBinding, ChannelBindingType};
        let a = ChannelBinding::new(ChannelBindingType::TlsExporter, vec![7; 32]);
        assert_eq!(a, a.clone());
        assert_ne!(
            a,
            ChannelBinding::new(ChannelBindingType::TlsExporter, vec![8; 32])
        );
        assert_ne!(
            a,
            ChannelBinding::new(ChannelBindingType::TlsUnique, vec![7; 32])
        );
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        let b = SecretBytes::new(b"key-material".to_vec());
        assert!(!format!("{b:?}").contains("key"));
    }
}
