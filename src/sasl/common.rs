//! Parsing and state shared by several mechanisms (crate-internal).
//!
//! - The PLAIN layout `[authzid] NUL authcid NUL secret`, used by PLAIN,
//!   X-OAUTH2 and X-GOOGLE-TOKEN ([`parse_plain_layout`],
//!   [`build_plain_layout`]).
//! - GS2 headers and `=2C`/`=3D` name escaping (RFC 5801 section 4, RFC
//!   5802 section 5.1), the one implementation for SCRAM and OAUTHBEARER:
//!   [`build_gs2_header`], [`gs2_escape`], [`gs2_unescape`], and parsing in
//!   layers ([`split_gs2_header`], [`Gs2CbFlag::parse`],
//!   [`parse_gs2_authzid`]) that SCRAM composes with its own conditions and
//!   [`parse_gs2_header`] composes for OAUTHBEARER.
//! - The one-message exchanges (client sends one message, the host decides):
//!   the state machines [`OneShotClient`] and [`OneShotServer`], and the
//!   macros [`one_shot_client!`] and [`one_shot_server!`] that declare a
//!   mechanism's public structs around them, so that each mechanism's file
//!   holds only its encoding ([`OneShotMessage`]) and its parse function.
//! - How an [`Identity`] is assembled from the host's verdict
//!   ([`identity`], [`verdict`]).

use super::{
    AuthAttribute, CredentialAnswer, CredentialRequest, Identity, SaslCondition, SaslError, Secret,
    ServerStep,
};

/// Largest message accepted or produced by the single-message mechanisms
/// (PLAIN, X-OAUTH2, X-GOOGLE-TOKEN, OAUTHBEARER, EXTERNAL). OAuth tokens
/// (JWTs) can run to a few kilobytes; nothing legitimate comes near this.
pub(crate) const MAX_MESSAGE_LEN: usize = 16 * 1024;

/// `bytes` as UTF-8, or `malformed-request` with `reason`.
pub(crate) fn utf8<'a>(bytes: &'a [u8], reason: &'static str) -> Result<&'a str, SaslError> {
    std::str::from_utf8(bytes).map_err(|_| SaslError::malformed(reason))
}

/// Fails with `malformed-request` when `bytes` is over `max` bytes.
pub(crate) fn check_len(bytes: &[u8], max: usize) -> Result<(), SaslError> {
    if bytes.len() > max {
        Err(SaslError::malformed("message too long"))
    } else {
        Ok(())
    }
}

/// The three fields of the PLAIN layout, validated.
#[derive(Debug)]
pub(crate) struct PlainMessage {
    /// `None` when the authzid field was empty.
    pub authzid: Option<String>,
    /// Non-empty.
    pub authcid: String,
    /// Non-empty.
    pub secret: Secret,
}

/// Parses `[authzid] NUL authcid NUL secret` strictly: at most
/// [`MAX_MESSAGE_LEN`] bytes, exactly two NULs, UTF-8, non-empty authcid
/// and secret. Every failure is `malformed-request`.
pub(crate) fn parse_plain_layout(message: &[u8]) -> Result<PlainMessage, SaslError> {
    check_len(message, MAX_MESSAGE_LEN)?;
    let mut fields = message.split(|b| *b == 0);
    let (Some(authzid), Some(authcid), Some(secret), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SaslError::malformed("expected exactly two NUL separators"));
    };
    let authzid = utf8(authzid, "authzid is not UTF-8")?;
    let authcid = utf8(authcid, "authcid is not UTF-8")?;
    let secret = utf8(secret, "secret is not UTF-8")?;
    if authcid.is_empty() {
        return Err(SaslError::malformed("empty authcid"));
    }
    if secret.is_empty() {
        return Err(SaslError::malformed("empty secret"));
    }
    Ok(PlainMessage {
        authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
        authcid: authcid.to_owned(),
        secret: Secret::new(secret),
    })
}

/// Builds `[authzid] NUL authcid NUL secret`, refusing what the peer would
/// reject (a NUL inside a field, an empty authcid or secret, an oversized
/// message) with `malformed-request`.
pub(crate) fn build_plain_layout(
    authzid: Option<&str>,
    authcid: &str,
    secret: &str,
) -> Result<Vec<u8>, SaslError> {
    let authzid = authzid.unwrap_or("");
    if authzid.contains('\0') || authcid.contains('\0') || secret.contains('\0') {
        return Err(SaslError::malformed("a field contains NUL"));
    }
    if authcid.is_empty() {
        return Err(SaslError::malformed("empty authcid"));
    }
    if secret.is_empty() {
        return Err(SaslError::malformed("empty secret"));
    }
    let len = authzid.len() + authcid.len() + secret.len() + 2;
    if len > MAX_MESSAGE_LEN {
        return Err(SaslError::malformed("message too long"));
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(authzid.as_bytes());
    out.push(0);
    out.extend_from_slice(authcid.as_bytes());
    out.push(0);
    out.extend_from_slice(secret.as_bytes());
    Ok(out)
}

/// Parses the PLAIN layout carrying a bearer token (X-OAUTH2,
/// X-GOOGLE-TOKEN) into a [`CredentialRequest::Token`]. The request has no
/// room for an authzid, so an authzid other than the authcid itself is
/// refused up front with `invalid-authzid`.
pub(crate) fn parse_token_layout(
    message: &[u8],
    mechanism: &'static str,
) -> Result<Parsed, SaslError> {
    let m = parse_plain_layout(message)?;
    if m.authzid.as_ref().is_some_and(|a| *a != m.authcid) {
        return Err(SaslError::new(
            SaslCondition::InvalidAuthzid,
            "this mechanism cannot act for another identity",
        ));
    }
    Ok(Parsed {
        request: CredentialRequest::Token {
            mechanism,
            username: m.authcid,
            token: m.secret,
        },
        authzid: None,
    })
}

/// Whether `a == b`, in time that depends on the lengths only: the bytes'
/// differences are folded together and looked at once, behind one
/// optimisation barrier (`subtle`'s slice comparison puts a barrier on
/// every byte, which made it the costliest step of checking a proof).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    #[cfg(test)]
    CT_EQ_CALLS.with(|c| c.set(c.get() + 1));
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
thread_local! {
    /// How many times this thread called [`ct_eq`]: the unit tests check
    /// that a comparison of secrets goes through it.
    pub(crate) static CT_EQ_CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A hash output, key or MAC: at most 64 bytes (SHA-512), kept on the
/// stack (one SCRAM exchange computes a dozen of them, an HT exchange
/// keeps one) and zeroed on drop; never shown by `Debug`.
#[derive(Clone)]
pub(crate) struct Key {
    bytes: [u8; 64],
    len: usize,
}

impl Key {
    /// A copy of `src`, which must be at most 64 bytes long (a longer one
    /// panics: callers pass digests or values whose length they checked).
    pub(crate) fn new(src: &[u8]) -> Self {
        let mut k = Self {
            bytes: [0; 64],
            len: src.len(),
        };
        k.bytes[..src.len()].copy_from_slice(src);
        k
    }

    /// `len` zero bytes (at most 64), to be filled through `DerefMut`.
    pub(crate) fn zeroed(len: usize) -> Self {
        assert!(len <= 64, "a Key holds at most 64 bytes");
        Self {
            bytes: [0; 64],
            len,
        }
    }
}

impl std::ops::DerefMut for Key {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(<{} bytes redacted>)", self.len)
    }
}

impl std::ops::Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // Only the first `len` bytes ever hold data: `new` copies `len`
        // bytes into zeros, `DerefMut` reaches no further.
        zeroize::Zeroize::zeroize(&mut self.bytes[..self.len]);
    }
}

/// Escapes a name for a GS2 header or a SCRAM attribute: `=` becomes
/// `=3D` and `,` becomes `=2C` (RFC 5801 section 4, RFC 5802 section 5.1).
#[cfg(test)]
pub(crate) fn gs2_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    push_gs2_escaped(&mut out, name);
    out
}

/// Appends `name` to `out`, escaped as [`gs2_escape`] does (no copy of its
/// own: SCRAM writes the user name straight into its message).
pub(crate) fn push_gs2_escaped(out: &mut String, name: &str) {
    let mut rest = name;
    while let Some(i) = rest.find(['=', ',']) {
        out.push_str(&rest[..i]);
        out.push_str(if rest.as_bytes()[i] == b'=' {
            "=3D"
        } else {
            "=2C"
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Reverses [`gs2_escape`]. Any other use of `=` and any raw `,` is
/// `malformed-request`.
pub(crate) fn gs2_unescape(escaped: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(i) = rest.find(['=', ',']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("=2C") {
            out.push(',');
        } else if tail.starts_with("=3D") {
            out.push('=');
        } else {
            return Err(SaslError::malformed("bad escape in a GS2 name"));
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The channel-binding flag of a GS2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gs2CbFlag {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports it but thinks the server does not.
    SupportedNotUsed,
    /// `p=<type>`: the client binds with this type.
    Binding(String),
}

/// A parsed GS2 header (without the optional non-standard `F,` prefix,
/// which no mechanism here uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gs2Header {
    pub cb_flag: Gs2CbFlag,
    /// The unescaped `a=` value; `None` when absent.
    pub authzid: Option<String>,
}

/// Builds `cb-flag "," ["a=" escaped-authzid] ","`.
pub(crate) fn build_gs2_header(cb_flag: &Gs2CbFlag, authzid: Option<&str>) -> String {
    // Room for the header and the client-first-bare message that
    // usually follows it in the same buffer.
    let mut out = String::with_capacity(96 + authzid.map_or(0, |a| 2 * a.len()));
    match cb_flag {
        Gs2CbFlag::NotSupported => out.push('n'),
        Gs2CbFlag::SupportedNotUsed => out.push('y'),
        Gs2CbFlag::Binding(t) => {
            out.push_str("p=");
            out.push_str(t);
        }
    }
    out.push(',');
    if let Some(a) = authzid {
        out.push_str("a=");
        push_gs2_escaped(&mut out, a);
    }
    out.push(',');
    out
}

/// A GS2 header cut at its two commas, its fields not yet interpreted.
/// SCRAM and OAUTHBEARER read the fields with [`Gs2CbFlag::parse`] and
/// [`parse_gs2_authzid`] and apply their own conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gs2Fields<'a> {
    /// The channel-binding flag field (`n`, `y`, `p=<cb-name>`, or junk).
    pub cb_flag: &'a [u8],
    /// The authzid field (empty, `a=<escaped name>`, or junk).
    pub authzid: &'a [u8],
    /// The length of the whole header, both commas included: the message
    /// goes on at this offset (and SCRAM repeats the header in `c=`).
    pub len: usize,
}

/// Cuts the GS2 header off the start of `message`. Fails with
/// `malformed-request` when either comma is missing.
pub(crate) fn split_gs2_header(message: &[u8]) -> Result<Gs2Fields<'_>, SaslError> {
    let first = message
        .iter()
        .position(|b| *b == b',')
        .ok_or(SaslError::malformed("GS2 header: missing comma"))?;
    let second = message[first + 1..]
        .iter()
        .position(|b| *b == b',')
        .ok_or(SaslError::malformed("GS2 header: missing second comma"))?;
    let end = first + 1 + second;
    Ok(Gs2Fields {
        cb_flag: &message[..first],
        authzid: &message[first + 1..end],
        len: end + 1,
    })
}

impl Gs2CbFlag {
    /// Parses a flag field: `n`, `y` or `p=<cb-name>` with cb-name
    /// `1*(ALPHA / DIGIT / "." / "-")`. `None` for anything else.
    pub(crate) fn parse(field: &[u8]) -> Option<Self> {
        match field {
            b"n" => Some(Self::NotSupported),
            b"y" => Some(Self::SupportedNotUsed),
            [b'p', b'=', name @ ..]
                if !name.is_empty()
                    && name
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-') =>
            {
                // ASCII by the check above.
                Some(Self::Binding(String::from_utf8_lossy(name).into_owned()))
            }
            _ => None,
        }
    }
}

/// Why [`parse_gs2_authzid`] refused an authzid field. The mechanisms map
/// the two cases to different conditions (SCRAM: `malformed-request` and
/// `invalid-authzid`; OAUTHBEARER: `malformed-request` for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gs2AuthzidError {
    /// The field is neither empty nor `a=...`.
    Syntax,
    /// `a=` followed by nothing, by bytes that are not UTF-8, or by a bad
    /// escape; with a description.
    Name(&'static str),
}

/// Parses the authzid field of a GS2 header: `None` when it is empty, the
/// unescaped name after `a=` otherwise (non-empty, UTF-8, properly
/// escaped).
pub(crate) fn parse_gs2_authzid(field: &[u8]) -> Result<Option<String>, Gs2AuthzidError> {
    match field {
        b"" => Ok(None),
        [b'a', b'=', name @ ..] => {
            if name.is_empty() {
                return Err(Gs2AuthzidError::Name("GS2 header: bad authzid"));
            }
            let name = std::str::from_utf8(name)
                .map_err(|_| Gs2AuthzidError::Name("GS2 header: authzid is not UTF-8"))?;
            gs2_unescape(name)
                .map(Some)
                .map_err(|e| Gs2AuthzidError::Name(e.reason))
        }
        _ => Err(Gs2AuthzidError::Syntax),
    }
}

/// Parses the GS2 header at the start of `message`; returns it and the
/// bytes after its second comma. Strict: the flag is `n`, `y` or
/// `p=<cb-name>` ([`Gs2CbFlag::parse`]), the authzid part is empty or `a=`
/// with a non-empty, UTF-8, properly escaped name without NUL
/// ([`parse_gs2_authzid`]). Every failure is `malformed-request`.
pub(crate) fn parse_gs2_header(message: &[u8]) -> Result<(Gs2Header, &[u8]), SaslError> {
    let fields = split_gs2_header(message)?;
    let cb_flag = Gs2CbFlag::parse(fields.cb_flag)
        .ok_or(SaslError::malformed("GS2 header: bad channel-binding flag"))?;
    let authzid = parse_gs2_authzid(fields.authzid).map_err(|e| match e {
        Gs2AuthzidError::Syntax => SaslError::malformed("GS2 header: bad authzid"),
        Gs2AuthzidError::Name(reason) => SaslError::malformed(reason),
    })?;
    if authzid.as_ref().is_some_and(|a| a.contains('\0')) {
        return Err(SaslError::malformed("GS2 header: NUL in authzid"));
    }
    Ok((Gs2Header { cb_flag, authzid }, &message[fields.len..]))
}

/// The host's verdict, or the error to report. A wrong kind of answer or
/// an empty user name is the host's bug: `temporary-auth-failure`.
pub(crate) fn verdict(answer: CredentialAnswer) -> Result<String, SaslError> {
    match answer {
        CredentialAnswer::Verdict(Ok(name)) if !name.is_empty() => Ok(name),
        CredentialAnswer::Verdict(Ok(_)) => Err(SaslError::new(
            SaslCondition::TemporaryAuthFailure,
            "the host approved an empty user name",
        )),
        CredentialAnswer::Verdict(Err(condition)) => {
            Err(SaslError::new(condition, "rejected by the host"))
        }
        _ => Err(wrong_answer()),
    }
}

/// The host answered with the wrong kind of [`CredentialAnswer`].
pub(crate) const fn wrong_answer() -> SaslError {
    SaslError::new(
        SaslCondition::TemporaryAuthFailure,
        "the host gave the wrong kind of answer",
    )
}

/// `answer` was called while no request was pending.
pub(crate) const fn no_request_pending() -> SaslError {
    SaslError::new(
        SaslCondition::TemporaryAuthFailure,
        "no credential request is pending",
    )
}

/// A message arrived in a state that expects none.
pub(crate) const fn out_of_order() -> SaslError {
    SaslError::malformed("unexpected message at this step")
}

/// The identity of a successful exchange: `authzid` is kept only when it
/// is present, non-empty and not the user name itself.
pub(crate) fn identity(username: String, authzid: Option<String>) -> Identity {
    let authzid = authzid.filter(|a| !a.is_empty() && *a != username);
    Identity { username, authzid }
}

/// `s`, or `None` when it is empty: how the builders of the one-message
/// mechanisms take an optional authzid or trace.
pub(crate) fn non_empty(s: impl Into<String>) -> Option<String> {
    let s = s.into();
    (!s.is_empty()).then_some(s)
}

/// What a one-message client mechanism knows and how it encodes it: the
/// only part of PLAIN, X-OAUTH2, X-GOOGLE-TOKEN, EXTERNAL and ANONYMOUS
/// clients that differs. [`OneShotClient`] runs the exchange around it.
pub(crate) trait OneShotMessage: std::fmt::Debug + Send {
    /// Builds the message, refusing (with the condition the peer would
    /// report) what the peer would reject.
    fn build(&self) -> Result<Vec<u8>, SaslError>;

    /// Extra attributes for `<auth/>` (see
    /// [`ClientMechanism::auth_attributes`](super::ClientMechanism::auth_attributes)).
    fn auth_attributes(&self) -> &[AuthAttribute] {
        &[]
    }
}

/// Client side of a mechanism that sends one message and expects nothing
/// back but `<success/>`. Sends the message as the initial response; if
/// the server sends an empty challenge first (no initial response was
/// transmitted), sends it as the response instead. Any call out of that
/// order fails, and so does every call after it.
#[derive(Debug, Default)]
pub(crate) struct OneShotClient<M> {
    message: M,
    state: OneShotClientState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum OneShotClientState {
    #[default]
    Ready,
    Sent,
    Done,
}

impl<M: OneShotMessage> OneShotClient<M> {
    pub(crate) fn new(message: M) -> Self {
        Self {
            message,
            state: OneShotClientState::Ready,
        }
    }

    /// The mechanism's own fields, for its builder methods.
    pub(crate) fn message_mut(&mut self) -> &mut M {
        &mut self.message
    }

    pub(crate) fn auth_attributes(&self) -> &[AuthAttribute] {
        self.message.auth_attributes()
    }

    pub(crate) fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        if self.state != OneShotClientState::Ready {
            self.state = OneShotClientState::Done;
            return Err(out_of_order());
        }
        self.state = OneShotClientState::Done;
        let message = self.message.build()?;
        self.state = OneShotClientState::Sent;
        Ok(Some(message))
    }

    pub(crate) fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let state = std::mem::replace(&mut self.state, OneShotClientState::Done);
        if state != OneShotClientState::Ready || !challenge.is_empty() {
            return Err(SaslError::malformed("this mechanism expects no challenge"));
        }
        let message = self.message.build()?;
        self.state = OneShotClientState::Sent;
        Ok(message)
    }

    pub(crate) fn success(&mut self, additional_data: Option<&[u8]>) -> Result<(), SaslError> {
        let state = std::mem::replace(&mut self.state, OneShotClientState::Done);
        if state != OneShotClientState::Sent {
            return Err(out_of_order());
        }
        match additional_data {
            None | Some([]) => Ok(()),
            Some(_) => Err(SaslError::malformed(
                "unexpected additional data in success",
            )),
        }
    }
}

/// Declares the public client struct of a one-message mechanism: a
/// wrapper around [`OneShotClient`] over the mechanism's
/// [`OneShotMessage`] type, implementing
/// [`ClientMechanism`](super::ClientMechanism) under the given name. The
/// mechanism's file writes the constructors and builder methods.
///
/// ```text
/// one_shot_client! {
///     /// Client side of PLAIN.
///     pub struct PlainClient(Fields) = NAME;
/// }
/// ```
macro_rules! one_shot_client {
    ($(#[$meta:meta])* pub struct $ty:ident($message:ty) = $name:expr;) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $ty {
            inner: $crate::sasl::common::OneShotClient<$message>,
        }

        impl $crate::sasl::ClientMechanism for $ty {
            fn name(&self) -> &str {
                $name
            }

            fn initial_response(
                &mut self,
            ) -> Result<Option<Vec<u8>>, $crate::sasl::SaslError> {
                self.inner.initial_response()
            }

            fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, $crate::sasl::SaslError> {
                self.inner.respond(challenge)
            }

            fn success(
                &mut self,
                additional_data: Option<&[u8]>,
            ) -> Result<(), $crate::sasl::SaslError> {
                self.inner.success(additional_data)
            }

            fn auth_attributes(&self) -> &[$crate::sasl::AuthAttribute] {
                self.inner.auth_attributes()
            }
        }
    };
}
pub(crate) use one_shot_client;

/// What a one-message mechanism's parser extracts: the request for the
/// host and the authzid to report in the [`Identity`] once approved.
pub(crate) struct Parsed {
    pub request: CredentialRequest,
    pub authzid: Option<String>,
}

/// Server side of a mechanism whose client sends one message that the host
/// then decides on with [`CredentialAnswer::Verdict`]. Without an initial
/// response it sends an empty challenge and takes the message as the
/// response (RFC 4422 section 5, RFC 6120 section 6.4.2). The mechanism
/// supplies only the parse function; this machine owns the order of calls
/// (a failed or finished exchange stays over), the answer (a wrong kind or
/// an answer with nothing pending is `temporary-auth-failure`) and the
/// [`Identity`].
pub(crate) struct OneShotServer {
    state: OneShotServerState,
    parse: fn(&[u8]) -> Result<Parsed, SaslError>,
}

enum OneShotServerState {
    Fresh,
    AwaitingMessage,
    AwaitingAnswer { authzid: Option<String> },
    Done,
}

impl OneShotServer {
    pub(crate) fn new(parse: fn(&[u8]) -> Result<Parsed, SaslError>) -> Self {
        Self {
            state: OneShotServerState::Fresh,
            parse,
        }
    }

    pub(crate) fn start(&mut self, initial: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, OneShotServerState::Done) {
            OneShotServerState::Fresh => match initial {
                None => {
                    self.state = OneShotServerState::AwaitingMessage;
                    Ok(ServerStep::Challenge(Vec::new()))
                }
                Some(message) => self.consume(message),
            },
            _ => Err(out_of_order()),
        }
    }

    pub(crate) fn respond(&mut self, message: &[u8]) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, OneShotServerState::Done) {
            OneShotServerState::AwaitingMessage => self.consume(message),
            _ => Err(out_of_order()),
        }
    }

    pub(crate) fn answer(&mut self, answer: CredentialAnswer) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, OneShotServerState::Done) {
            OneShotServerState::AwaitingAnswer { authzid } => {
                let username = verdict(answer)?;
                Ok(ServerStep::Success {
                    identity: identity(username, authzid),
                    additional_data: None,
                })
            }
            _ => Err(no_request_pending()),
        }
    }

    fn consume(&mut self, message: &[u8]) -> Result<ServerStep, SaslError> {
        let Parsed { request, authzid } = (self.parse)(message)?;
        self.state = OneShotServerState::AwaitingAnswer { authzid };
        Ok(ServerStep::Request(request))
    }
}

/// Declares the public server struct of a one-message mechanism: a
/// wrapper around [`OneShotServer`] with `new`, `Default` and
/// [`ServerMechanism`](super::ServerMechanism) under the given name, given
/// the mechanism's parse function (message to [`Parsed`]).
///
/// ```text
/// one_shot_server! {
///     /// Server side of PLAIN.
///     pub struct PlainServer = NAME, parse;
/// }
/// ```
macro_rules! one_shot_server {
    ($(#[$meta:meta])* pub struct $ty:ident = $name:expr, $parse:expr;) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $ty {
            inner: $crate::sasl::common::OneShotServer,
        }

        impl $ty {
            /// A fresh exchange.
            pub fn new() -> Self {
                Self {
                    inner: $crate::sasl::common::OneShotServer::new($parse),
                }
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $crate::sasl::ServerMechanism for $ty {
            fn name(&self) -> &str {
                $name
            }

            fn start(
                &mut self,
                initial_response: Option<&[u8]>,
            ) -> Result<$crate::sasl::ServerStep, $crate::sasl::SaslError> {
                self.inner.start(initial_response)
            }

            fn respond(
                &mut self,
                response: &[u8],
            ) -> Result<$crate::sasl::ServerStep, $crate::sasl::SaslError> {
                self.inner.respond(response)
            }

            fn answer(
                &mut self,
                answer: $crate::sasl::CredentialAnswer,
            ) -> Result<$crate::sasl::ServerStep, $crate::sasl::SaslError> {
                self.inner.answer(answer)
            }
        }
    };
}
pub(crate) use one_shot_server;

impl std::fmt::Debug for OneShotServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            OneShotServerState::Fresh => "fresh",
            OneShotServerState::AwaitingMessage => "awaiting-message",
            OneShotServerState::AwaitingAnswer { .. } => "awaiting-answer",
            OneShotServerState::Done => "done",
        };
        f.debug_struct("OneShotServer")
            .field("state", &state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_place() {
        for (name, escaped) in [
            ("", ""),
            ("user", "user"),
            ("a,b=c", "a=2Cb=3Dc"),
            ("==,,", "=3D=3D=2C=2C"),
            ("=", "=3D"),
            ("réne,é=", "réne=2Cé=3D"),
        ] {
            let mut out = String::from("n=");
            push_gs2_escaped(&mut out, name);
            assert_eq!(out, format!("n={escaped}"), "{name:?}");
            assert_eq!(gs2_unescape(escaped).ok().as_deref(), Some(name));
        }
    }

    #[test]
    fn keys_live_on_the_stack_and_hide_in_debug() {
        let mut k = Key::zeroed(3);
        k.copy_from_slice(b"abc");
        assert_eq!(&*k, b"abc");
        assert_eq!(&*Key::new(&[7; 64]), &[7; 64][..]);
        assert_eq!(format!("{k:?}"), "Key(<3 bytes redacted>)");
    }

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"Abc"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"", b"a"));
        // Every single-bit difference in every position.
        let a = [0x5au8; 33];
        for i in 0..a.len() {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!ct_eq(&a, &b));
            }
        }
    }

    #[test]
    fn gs2_escaping_round_trips() {
        assert_eq!(gs2_escape("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(gs2_unescape("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert_eq!(gs2_unescape("=3D=2C").unwrap(), "=,");
        for bad in ["=", "=2", "=2c", "=41", "a,b", "x=3"] {
            assert_eq!(
                gs2_unescape(bad).unwrap_err().condition,
                SaslCondition::MalformedRequest,
                "{bad}"
            );
        }
    }

    /// Moved from scram.rs with the SCRAM-only escaping functions it
    /// tested: the same assertions, on the one shared implementation.
    #[test]
    fn saslname_escaping_round_trips() {
        for s in ["user", "a,b", "a=b", "=2C", ",=,=", "", "é,="] {
            assert_eq!(gs2_unescape(&gs2_escape(s)).ok().as_deref(), Some(s));
        }
        assert_eq!(gs2_escape("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(gs2_unescape("a=2C").ok(), Some("a,".to_owned()));
        assert_eq!(gs2_unescape("a=2").ok(), None);
        assert_eq!(gs2_unescape("a=41").ok(), None);
    }

    #[test]
    fn gs2_header_parses_strictly() {
        let (h, rest) = parse_gs2_header(b"n,a=us=2Cer,\x01rest").unwrap();
        assert_eq!(h.cb_flag, Gs2CbFlag::NotSupported);
        assert_eq!(h.authzid.as_deref(), Some("us,er"));
        assert_eq!(rest, b"\x01rest");
        let (h, rest) = parse_gs2_header(b"p=tls-exporter,,").unwrap();
        assert_eq!(h.cb_flag, Gs2CbFlag::Binding("tls-exporter".into()));
        assert_eq!(h.authzid, None);
        assert_eq!(rest, b"");
        for bad in [
            &b"n"[..],
            b"n,",
            b"x,,",
            b"p=,,",
            b"p=a b,,",
            b"n,a=,",
            b"n,b=x,",
            b"n,a=\xff,",
            b"n,a=x=,",
        ] {
            assert!(parse_gs2_header(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            build_gs2_header(&Gs2CbFlag::NotSupported, Some("a,=b")),
            "n,a=a=2C=3Db,"
        );
    }

    #[test]
    fn gs2_header_layers() {
        let f = split_gs2_header(b"p=tls-exporter,a=x,n=u").unwrap();
        assert_eq!(f.cb_flag, b"p=tls-exporter");
        assert_eq!(f.authzid, b"a=x");
        assert_eq!(f.len, 19);
        assert!(split_gs2_header(b"n").is_err());
        assert!(split_gs2_header(b"n,a=x").is_err());
        assert_eq!(Gs2CbFlag::parse(b"y"), Some(Gs2CbFlag::SupportedNotUsed));
        assert_eq!(Gs2CbFlag::parse(b"p=a_b"), None);
        assert_eq!(parse_gs2_authzid(b""), Ok(None));
        assert_eq!(parse_gs2_authzid(b"a=a=3Db"), Ok(Some("a=b".into())));
        assert_eq!(parse_gs2_authzid(b"b=x"), Err(Gs2AuthzidError::Syntax));
        for bad in [&b"a="[..], b"a=\xff", b"a=x=41"] {
            assert!(
                matches!(parse_gs2_authzid(bad), Err(Gs2AuthzidError::Name(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn plain_layout_round_trips_and_rejects() {
        let m = build_plain_layout(Some("admin"), "alice", "pw").unwrap();
        assert_eq!(m, b"admin\0alice\0pw");
        let p = parse_plain_layout(&m).unwrap();
        assert_eq!(p.authzid.as_deref(), Some("admin"));
        assert_eq!(p.authcid, "alice");
        assert_eq!(p.secret.expose(), "pw");
        let p = parse_plain_layout(b"\0alice\0pw").unwrap();
        assert_eq!(p.authzid, None);
        for bad in [
            &b"alice\0pw"[..],
            b"\0\0pw",
            b"\0alice\0",
            b"\0a\0b\0c",
            b"\0a\xff\0pw",
            b"",
        ] {
            assert_eq!(
                parse_plain_layout(bad).unwrap_err().condition,
                SaslCondition::MalformedRequest
            );
        }
        assert!(build_plain_layout(None, "a\0b", "pw").is_err());
        assert!(build_plain_layout(None, "", "pw").is_err());
        assert!(build_plain_layout(None, "a", "").is_err());
    }
}
