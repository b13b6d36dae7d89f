//! The hashed-token mechanisms `HT-*` that FAST (XEP-0484) logs in with,
//! in the form deployed servers and clients use (Prosody's
//! mod_sasl2_fast, ejabberd, Conversations, xmpp.js, QXmpp;
//! draft-schmaus-kitten-sasl-ht-09):
//!
//! - the client's only message is `authcid NUL HMAC-H(token, "Initiator" || cb-data)`;
//! - the server's `<additional-data/>` in `<success/>` is
//!   `HMAC-H(token, "Responder" || cb-data)`, which the client checks
//!   (a wrong or missing one fails the login);
//! - the token is the HMAC key, as UTF-8, exactly as the server issued it
//!   (`secret-token:fast-...` included).
//!
//! The name says the hash H and the channel binding: `HT-SHA-256-*`,
//! `HT-SHA-512-*`, `HT-SHA3-512-*`, each with `-NONE` (no binding, empty
//! cb-data), `-UNIQ` (`tls-unique`, TLS 1.2 and earlier only), `-ENDP`
//! (`tls-server-end-point`), `-EXPR` (`tls-exporter`). A mechanism with a
//! binding can only be built when the host supplied that very type for the
//! connection (and never `-UNIQ` on TLS 1.3): there is no quiet downgrade
//! to `-NONE`.
//!
//! The server asks its host for the tokens of the user
//! ([`CredentialRequest::FastToken`]) and the host answers with its two
//! slots ([`CredentialAnswer::FastTokens`] with a [`TokenSlots`]): the
//! mechanism computes the expected HMAC for each slot whose token is bound
//! to this mechanism, compares both in constant time (always both: the
//! time does not say which one matched), and on success reports the slot
//! that matched ([`ExchangeSecurity::fast_token`]): when it is
//! [`TokenSlot::New`], the host moves that token to the current slot and
//! drops the old one (XEP-0484 section 6.1). No match is
//! `credentials-expired`, so that the client falls back to another
//! mechanism (XEP-0484 section 5.2).
//!
//! Later IETF drafts (draft-ietf-kitten-sasl-ht-00 and on) change both
//! messages; no deployed XMPP server uses them yet.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac, SimpleHmac};
use zeroize::Zeroizing;

use super::channel_binding::{ChannelBinding, ChannelBindingType};
use super::common::{self, Key, MAX_MESSAGE_LEN};
use super::policy::{CredentialKind, MechanismProfile};
use super::{
    ChannelBindingUse, ClientMechanism, CredentialAnswer, CredentialRequest, ExchangeSecurity,
    SaslCondition, SaslError, Secret, SecretBytes, ServerMechanism, ServerStep,
};
use crate::fast::{FastAuth, TokenSlot, TokenSlots};
use crate::server::OfferRule;
use crate::tls::TlsInfo;

/// The hash of an `HT-*` mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HtHash {
    /// SHA-256 (`HT-SHA-256-*`).
    Sha256,
    /// SHA-512 (`HT-SHA-512-*`).
    Sha512,
    /// SHA3-512 (`HT-SHA3-512-*`).
    Sha3_512,
}

impl HtHash {
    /// Every hash, strongest first.
    pub const ALL: [HtHash; 3] = [Self::Sha512, Self::Sha3_512, Self::Sha256];

    /// The name part (`SHA-256`, `SHA-512`, `SHA3-512`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha512 => "SHA-512",
            Self::Sha3_512 => "SHA3-512",
        }
    }

    /// The length of its HMAC, in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 | Self::Sha3_512 => 64,
        }
    }

    /// HMAC-H keyed with `key`: the key's two padded blocks are hashed
    /// once, and each [`Keyed::mac`] starts from them (the initiator and
    /// responder values share a key).
    fn keyed(self, key: &[u8]) -> Keyed {
        // HMAC accepts keys of any length: these cannot fail.
        const ANY_KEY: &str = "HMAC takes any key length";
        match self {
            Self::Sha256 => Keyed::Sha256(KeyInit::new_from_slice(key).expect(ANY_KEY)),
            Self::Sha512 => Keyed::Sha512(KeyInit::new_from_slice(key).expect(ANY_KEY)),
            // sha3's hashes are no block-level ("eager") cores: the plain
            // HMAC construction over the whole hash.
            Self::Sha3_512 => Keyed::Sha3_512(KeyInit::new_from_slice(key).expect(ANY_KEY)),
        }
    }
}

/// An HMAC keyed with a token (see [`HtHash::keyed`]).
#[derive(Clone)]
enum Keyed {
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
    Sha3_512(SimpleHmac<sha3::Sha3_512>),
}

impl Keyed {
    /// Runs `with` on HMAC-H(key, label || cb-data), computed on the
    /// stack and zeroed after.
    fn with_mac<T>(&self, label: &[u8], cb_data: &[u8], with: impl FnOnce(&[u8]) -> T) -> T {
        fn run<M: Mac + Clone, T>(
            keyed: &M,
            label: &[u8],
            cb_data: &[u8],
            with: impl FnOnce(&[u8]) -> T,
        ) -> T {
            let mut mac = keyed.clone();
            mac.update(label);
            mac.update(cb_data);
            let mut out = mac.finalize().into_bytes();
            let result = with(&out);
            zeroize::Zeroize::zeroize(out.as_mut_slice());
            result
        }
        match self {
            Self::Sha256(k) => run(k, label, cb_data, with),
            Self::Sha512(k) => run(k, label, cb_data, with),
            Self::Sha3_512(k) => run(k, label, cb_data, with),
        }
    }

    /// Appends what the client proves, HMAC-H(token, "Initiator" ||
    /// cb-data), to `out` (its message, sent as is).
    fn initiator_into(&self, cb: &[u8], out: &mut Vec<u8>) {
        self.with_mac(b"Initiator", cb, |m| out.extend_from_slice(m))
    }

    /// Whether `proof` is the initiator value, compared in constant time.
    fn initiator_is(&self, cb: &[u8], proof: &[u8]) -> bool {
        self.with_mac(b"Initiator", cb, |m| common::ct_eq(m, proof))
    }

    /// What the server proves, HMAC-H(token, "Responder" || cb-data):
    /// sent in `<additional-data/>`.
    fn responder(&self, cb: &[u8]) -> Vec<u8> {
        self.with_mac(b"Responder", cb, <[u8]>::to_vec)
    }
}

/// The channel binding of an `HT-*` mechanism, the last part of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HtBinding {
    /// `-NONE`: no channel binding.
    None,
    /// `-UNIQ`: `tls-unique` (TLS 1.2 and earlier).
    Uniq,
    /// `-ENDP`: `tls-server-end-point`.
    Endp,
    /// `-EXPR`: `tls-exporter`.
    Expr,
}

impl HtBinding {
    /// Every binding, in the order a client prefers them: `tls-exporter`,
    /// `tls-server-end-point`, `tls-unique` (unusable after a move to TLS
    /// 1.3), none.
    pub const ALL: [HtBinding; 4] = [Self::Expr, Self::Endp, Self::Uniq, Self::None];

    /// The name part (`NONE`, `UNIQ`, `ENDP`, `EXPR`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Uniq => "UNIQ",
            Self::Endp => "ENDP",
            Self::Expr => "EXPR",
        }
    }

    /// The channel-binding type it binds to; `None` for `-NONE`.
    pub fn channel_binding_type(self) -> Option<ChannelBindingType> {
        match self {
            Self::None => None,
            Self::Uniq => Some(ChannelBindingType::TlsUnique),
            Self::Endp => Some(ChannelBindingType::TlsServerEndPoint),
            Self::Expr => Some(ChannelBindingType::TlsExporter),
        }
    }
}

/// One `HT-*` mechanism: a hash and a channel binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HtMechanism {
    /// The hash.
    pub hash: HtHash,
    /// The channel binding.
    pub binding: HtBinding,
}

macro_rules! ht_names {
    ($($hash:ident $h:literal: $($bind:ident $b:literal),*;)*) => {
        impl HtMechanism {
            /// Every mechanism this crate implements, strongest hash
            /// first, each hash's bindings in [`HtBinding::ALL`] order.
            pub const ALL: [HtMechanism; 12] = [$($(HtMechanism {
                hash: HtHash::$hash,
                binding: HtBinding::$bind,
            }),*),*];

            /// The registered name (`HT-SHA-256-NONE`, ...).
            pub fn name(self) -> &'static str {
                match (self.hash, self.binding) {
                    $($((HtHash::$hash, HtBinding::$bind) => concat!("HT-", $h, "-", $b),)*)*
                }
            }
        }
    };
}

ht_names! {
    Sha512 "SHA-512": Expr "EXPR", Endp "ENDP", Uniq "UNIQ", None "NONE";
    Sha3_512 "SHA3-512": Expr "EXPR", Endp "ENDP", Uniq "UNIQ", None "NONE";
    Sha256 "SHA-256": Expr "EXPR", Endp "ENDP", Uniq "UNIQ", None "NONE";
}

impl HtMechanism {
    /// The mechanism `name` names (case-sensitive, as SASL names are);
    /// `None` for any other name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether this mechanism can run on a connection with `tls`: never
    /// without TLS (a replayable token), `-NONE` on any TLS, a binding
    /// only when the host supplied data of its type and the type is defined
    /// for the TLS version (no `-UNIQ` on TLS 1.3).
    pub fn usable_with(self, tls: Option<&TlsInfo>) -> bool {
        tls.is_some_and(|t| self.binding_data(t).is_ok())
    }

    /// The binding data this mechanism needs from `tls` (`None` for
    /// `-NONE`), or why it cannot have it.
    fn binding_data(self, tls: &TlsInfo) -> Result<Option<&ChannelBinding>, SaslError> {
        let Some(kind) = self.binding.channel_binding_type() else {
            return Ok(None);
        };
        if !kind.is_defined_for(tls.version) {
            return Err(SaslError::new(
                SaslCondition::MechanismTooWeak,
                "tls-unique is not defined for TLS 1.3",
            ));
        }
        tls.channel_bindings
            .iter()
            .find(|b| b.kind == kind)
            .map(Some)
            .ok_or(SaslError::new(
                SaslCondition::EncryptionRequired,
                "no channel-binding data of the type this mechanism needs",
            ))
    }

    /// What the client's selection policy knows about it: a FAST
    /// mechanism ([`CredentialKind::FastToken`]) ranked binding first
    /// (`-EXPR` 400, `-ENDP` 300, `-UNIQ` 200, `-NONE` 100), then by hash
    /// (SHA-512 +30, SHA3-512 +20, SHA-256 +10).
    pub fn client_profile(self) -> MechanismProfile {
        let binding = match self.binding {
            HtBinding::Expr => 400,
            HtBinding::Endp => 300,
            HtBinding::Uniq => 200,
            HtBinding::None => 100,
        };
        let hash = match self.hash {
            HtHash::Sha512 => 30,
            HtHash::Sha3_512 => 20,
            HtHash::Sha256 => 10,
        };
        MechanismProfile {
            channel_binding: self.binding != HtBinding::None,
            ..MechanismProfile::new(binding + hash, CredentialKind::FastToken)
        }
    }

    /// When a server may offer it: over TLS only, and with a binding only
    /// when the stream has channel-binding data ([`crate::fast::offer`]
    /// checks the very type).
    pub fn offer_rule(self) -> OfferRule {
        OfferRule {
            tls_only: true,
            channel_binding: self.binding != HtBinding::None,
            ..OfferRule::default()
        }
    }

    /// What [`ExchangeSecurity::channel_binding`] reports.
    fn binding_use(self) -> Option<ChannelBindingUse> {
        self.binding
            .channel_binding_type()
            .map(ChannelBindingUse::Bound)
    }
}

impl fmt::Display for HtMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a name is no `HT-*` mechanism this crate implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownHtMechanism;

impl fmt::Display for UnknownHtMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an HT-* mechanism this crate implements")
    }
}

impl std::error::Error for UnknownHtMechanism {}

impl std::str::FromStr for HtMechanism {
    type Err = UnknownHtMechanism;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(UnknownHtMechanism)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Ready,
    Sent,
    Done,
}

/// Client side of an `HT-*` mechanism: sends the user name and the
/// initiator HMAC, then checks the server's responder HMAC.
///
/// Both values are computed when it is built, with one keyed HMAC: it
/// keeps neither the token nor the binding data, only its message (zeroed
/// on drop until it is sent) and the responder value it expects (on the
/// stack, zeroed on drop).
pub struct HtClient {
    mechanism: HtMechanism,
    /// The one message: the user name, NUL, HMAC-H(token, "Initiator" ||
    /// cb-data). Handed out (and emptied) when sent.
    message: Zeroizing<Vec<u8>>,
    /// The responder value the server must send.
    expected: Key,
    state: ClientState,
}

impl fmt::Debug for HtClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HtClient")
            .field("mechanism", &self.mechanism)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl HtClient {
    /// Logs in as `username` (the local part of the account JID) with
    /// `token` over `tls`. Fails when the mechanism cannot run there:
    /// `encryption-required` without TLS or without the binding data its
    /// name needs, `mechanism-too-weak` for `-UNIQ` on TLS 1.3; and with
    /// `malformed-request` for an empty user name, one holding NUL, or
    /// one that makes the message longer than 4 KiB.
    pub fn new(
        mechanism: HtMechanism,
        username: impl Into<String>,
        token: Secret,
        tls: Option<&TlsInfo>,
    ) -> Result<Self, SaslError> {
        let tls = tls.ok_or(SaslError::new(
            SaslCondition::EncryptionRequired,
            "a FAST token is only sent over TLS",
        ))?;
        let cb = mechanism.binding_data(tls)?;
        Self::with_binding(mechanism, username, token, cb)
    }

    /// As [`new`](Self::new), with the binding data given directly:
    /// `None` for `-NONE`, data of the mechanism's type otherwise (what a
    /// registry factory gets in its input).
    pub fn with_binding(
        mechanism: HtMechanism,
        username: impl Into<String>,
        token: Secret,
        cb: Option<&ChannelBinding>,
    ) -> Result<Self, SaslError> {
        Self::with_token(mechanism, &username.into(), &token, cb)
    }

    /// As [`with_binding`](Self::with_binding), with the token borrowed
    /// (the crate's factory logs in with the token the client holds, and
    /// copies neither it nor the user name).
    pub(crate) fn with_token(
        mechanism: HtMechanism,
        username: &str,
        token: &Secret,
        cb: Option<&ChannelBinding>,
    ) -> Result<Self, SaslError> {
        let cb_data: &[u8] = match (mechanism.binding.channel_binding_type(), cb) {
            (None, _) => &[],
            (Some(kind), Some(cb)) if cb.kind == kind => cb.data.expose(),
            (Some(_), _) => {
                return Err(SaslError::new(
                    SaslCondition::EncryptionRequired,
                    "no channel-binding data of the type this mechanism needs",
                ))
            }
        };
        if username.is_empty() || username.contains('\0') {
            return Err(SaslError::malformed("the user name is empty or holds NUL"));
        }
        let len = username.len() + 1 + mechanism.hash.output_len();
        if len > MAX_MESSAGE_LEN {
            return Err(SaslError::malformed("message too long"));
        }
        let keyed = mechanism.hash.keyed(token.expose().as_bytes());
        let mut message = Zeroizing::new(Vec::with_capacity(len));
        message.extend_from_slice(username.as_bytes());
        message.push(0);
        keyed.initiator_into(cb_data, &mut message);
        Ok(Self {
            mechanism,
            message,
            expected: keyed.with_mac(b"Responder", cb_data, Key::new),
            state: ClientState::Ready,
        })
    }

    /// The message, handed out once.
    fn message(&mut self) -> Vec<u8> {
        std::mem::take(&mut *self.message)
    }
}

impl ClientMechanism for HtClient {
    fn name(&self) -> &str {
        self.mechanism.name()
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        if self.state != ClientState::Ready {
            self.state = ClientState::Done;
            return Err(common::out_of_order());
        }
        self.state = ClientState::Sent;
        Ok(Some(self.message()))
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        // An empty challenge: the initial response did not go out (a
        // framing without one); anything else is not HT.
        if self.state == ClientState::Ready && challenge.is_empty() {
            self.state = ClientState::Sent;
            return Ok(self.message());
        }
        self.state = ClientState::Done;
        Err(common::out_of_order())
    }

    fn success(&mut self, additional_data: Option<&[u8]>) -> Result<(), SaslError> {
        if std::mem::replace(&mut self.state, ClientState::Done) != ClientState::Sent {
            return Err(common::out_of_order());
        }
        match additional_data {
            Some(got) if common::ct_eq(&self.expected, got) => Ok(()),
            Some(_) => Err(SaslError::not_authorized(
                "the server's responder value is wrong: it does not know the token",
            )),
            None => Err(SaslError::not_authorized(
                "the server sent no responder value",
            )),
        }
    }

    fn security(&self) -> ExchangeSecurity {
        ExchangeSecurity {
            channel_binding: self.mechanism.binding_use(),
            ..ExchangeSecurity::default()
        }
    }
}

enum ServerState {
    Fresh,
    AwaitingMessage,
    AwaitingTokens {
        username: String,
        /// The client's HMAC (its length checked: at most 64 bytes).
        proof: Key,
    },
    Done {
        slot: Option<TokenSlot>,
    },
}

/// Server side of an `HT-*` mechanism. Asks the host for the user's
/// tokens with [`CredentialRequest::FastToken`], compares the client's
/// HMAC with each slot's in constant time and, on success, sends the
/// responder HMAC as `<additional-data/>` and reports the slot
/// ([`ExchangeSecurity::fast_token`]).
pub struct HtServer {
    mechanism: HtMechanism,
    cb_data: SecretBytes,
    fast: FastAuth,
    user_agent_id: Option<String>,
    state: ServerState,
}

impl fmt::Debug for HtServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            ServerState::Fresh => "fresh",
            ServerState::AwaitingMessage => "awaiting the message",
            ServerState::AwaitingTokens { .. } => "awaiting the tokens",
            ServerState::Done { .. } => "done",
        };
        f.debug_struct("HtServer")
            .field("mechanism", &self.mechanism)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl HtServer {
    /// The server side of `mechanism` on a connection with `tls`. Fails
    /// like [`HtClient::new`] when the mechanism cannot run there.
    pub fn new(mechanism: HtMechanism, tls: Option<&TlsInfo>) -> Result<Self, SaslError> {
        let tls = tls.ok_or(SaslError::new(
            SaslCondition::EncryptionRequired,
            "FAST tokens are only accepted over TLS",
        ))?;
        let cb_data = match mechanism.binding_data(tls)? {
            Some(cb) => cb.data.clone(),
            None => SecretBytes::new(Vec::new()),
        };
        Ok(Self {
            mechanism,
            cb_data,
            fast: FastAuth::default(),
            user_agent_id: None,
            state: ServerState::Fresh,
        })
    }

    /// What the client's `<fast/>` element in `<authenticate/>` said
    /// (`count`, `invalidate`) and its XEP-0388 user-agent id: passed on
    /// to the host in the [`CredentialRequest::FastToken`].
    pub fn with_context(mut self, fast: FastAuth, user_agent_id: Option<String>) -> Self {
        self.fast = fast;
        self.user_agent_id = user_agent_id;
        self
    }

    fn consume(&mut self, message: &[u8]) -> Result<ServerStep, SaslError> {
        common::check_len(message, MAX_MESSAGE_LEN)?;
        let Some(nul) = message.iter().position(|&b| b == 0) else {
            return Err(SaslError::malformed(
                "no NUL between the user name and the HMAC",
            ));
        };
        let username = common::utf8(&message[..nul], "the user name is not UTF-8")?;
        let proof = &message[nul + 1..];
        if username.is_empty() {
            return Err(SaslError::malformed("empty user name"));
        }
        if proof.len() != self.mechanism.hash.output_len() {
            return Err(SaslError::malformed("the HMAC has the wrong length"));
        }
        let username = username.to_owned();
        let request = CredentialRequest::FastToken {
            mechanism: self.mechanism.name(),
            username: username.clone(),
            // Only the host needs it.
            user_agent_id: self.user_agent_id.take(),
            count: self.fast.count,
            invalidate: self.fast.invalidate,
        };
        self.state = ServerState::AwaitingTokens {
            username,
            proof: Key::new(proof),
        };
        Ok(ServerStep::Request(request))
    }

    /// Which slot's token produced `proof`. Both slots are always
    /// computed and compared, in constant time, so the time taken says
    /// neither whether nor where a token matched.
    /// Returns the slot and its keyed HMAC (for the responder value).
    fn matching_slot(&self, slots: &TokenSlots, proof: &[u8]) -> Option<(TokenSlot, Keyed)> {
        let mut found = None;
        for (slot, token) in [
            (TokenSlot::Current, slots.current.as_ref()),
            (TokenSlot::New, slots.new.as_ref()),
        ] {
            let (key, bound_here) = match token {
                Some(t) => (t.token.expose(), t.mechanism == self.mechanism.name()),
                None => ("", false),
            };
            let keyed = self.mechanism.hash.keyed(key.as_bytes());
            // `&` rather than `&&`: always compare.
            if keyed.initiator_is(self.cb_data.expose(), proof) & bound_here {
                // The new slot wins a tie (XEP-0484 section 6.1 checks it first).
                found = Some((slot, keyed));
            }
        }
        found
    }
}

impl ServerMechanism for HtServer {
    fn name(&self) -> &str {
        self.mechanism.name()
    }

    fn start(&mut self, initial_response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, ServerState::Done { slot: None }) {
            ServerState::Fresh => match initial_response {
                None => {
                    self.state = ServerState::AwaitingMessage;
                    Ok(ServerStep::Challenge(Vec::new()))
                }
                Some(m) => self.consume(m),
            },
            _ => Err(common::out_of_order()),
        }
    }

    fn respond(&mut self, response: &[u8]) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, ServerState::Done { slot: None }) {
            ServerState::AwaitingMessage => self.consume(response),
            _ => Err(common::out_of_order()),
        }
    }

    fn answer(&mut self, answer: CredentialAnswer) -> Result<ServerStep, SaslError> {
        let ServerState::AwaitingTokens { username, proof } =
            std::mem::replace(&mut self.state, ServerState::Done { slot: None })
        else {
            return Err(common::no_request_pending());
        };
        let slots = match answer {
            CredentialAnswer::FastTokens(slots) => slots,
            CredentialAnswer::Verdict(Err(condition)) => {
                return Err(SaslError::new(condition, "rejected by the host"))
            }
            _ => return Err(common::wrong_answer()),
        };
        let Some((slot, keyed)) = self.matching_slot(&slots, &proof) else {
            return Err(SaslError::new(
                SaslCondition::CredentialsExpired,
                "no valid token of this client matches",
            ));
        };
        let seen = match slot {
            TokenSlot::Current => slots.current.as_ref(),
            TokenSlot::New => slots.new.as_ref(),
        }
        .map_or(0, |t| t.count);
        // The replay counter (XEP-0484 section 3.4): a count must be
        // above every count already processed for this token. XEP-0484
        // names no condition for it: `not-authorized`, the generic
        // refusal (the client then discards the token).
        if self.fast.count.is_some_and(|c| c <= seen) {
            return Err(SaslError::new(
                SaslCondition::NotAuthorized,
                "a FAST count not above the last one of this token (a replay)",
            ));
        }
        let responder = keyed.responder(self.cb_data.expose());
        self.state = ServerState::Done { slot: Some(slot) };
        Ok(ServerStep::Success {
            identity: common::identity(username, None),
            additional_data: Some(responder),
        })
    }

    fn security(&self) -> ExchangeSecurity {
        let slot = match self.state {
            ServerState::Done { slot } => slot,
            _ => None,
        };
        ExchangeSecurity {
            channel_binding: self.mechanism.binding_use(),
            fast_token: slot,
            ..ExchangeSecurity::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fast::{Expiry, FastToken};
    use crate::sasl::channel_binding::TlsVersion;
    use crate::sasl::common::CT_EQ_CALLS;

    fn tls13_none() -> TlsInfo {
        TlsInfo::without_binding(TlsVersion::Tls13)
    }

    fn token(mechanism: &str, secret: &str) -> FastToken {
        FastToken::new(mechanism, secret, Expiry::from_unix(2_000_000_000).unwrap())
    }

    fn proof_of(secret: &str) -> Vec<u8> {
        let m = HtMechanism::from_name("HT-SHA-256-NONE").unwrap();
        let mut c = HtClient::new(m, "lnj", Secret::new(secret), Some(&tls13_none())).unwrap();
        c.initial_response().unwrap().unwrap()
    }

    fn server_answer(
        message: &[u8],
        slots: TokenSlots,
    ) -> (HtServer, Result<ServerStep, SaslError>) {
        let m = HtMechanism::from_name("HT-SHA-256-NONE").unwrap();
        let mut s = HtServer::new(m, Some(&tls13_none())).unwrap();
        assert!(matches!(s.start(Some(message)), Ok(ServerStep::Request(_))));
        let r = s.answer(CredentialAnswer::FastTokens(slots));
        (s, r)
    }

    #[test]
    fn names_round_trip() {
        for m in HtMechanism::ALL {
            assert_eq!(HtMechanism::from_name(m.name()), Some(m));
            assert_eq!(m.name().parse::<HtMechanism>(), Ok(m));
        }
        assert_eq!(HtMechanism::ALL[0].name(), "HT-SHA-512-EXPR");
        assert_eq!(HtMechanism::ALL[11].name(), "HT-SHA-256-NONE");
        assert!(HtMechanism::from_name("HT-SHA-256-PLUS").is_none());
        assert!(HtMechanism::from_name("ht-sha-256-none").is_none());
    }

    #[test]
    fn both_slots_are_compared_in_constant_time_whichever_matches() {
        let message = proof_of("the-new-one");
        for (slots, want) in [
            (
                TokenSlots {
                    current: Some(token("HT-SHA-256-NONE", "the-old-one")),
                    new: Some(token("HT-SHA-256-NONE", "the-new-one")),
                },
                Some(TokenSlot::New),
            ),
            (
                TokenSlots {
                    current: Some(token("HT-SHA-256-NONE", "the-new-one")),
                    new: Some(token("HT-SHA-256-NONE", "another")),
                },
                Some(TokenSlot::Current),
            ),
            (
                TokenSlots {
                    current: None,
                    new: Some(token("HT-SHA-256-NONE", "wrong")),
                },
                None,
            ),
        ] {
            let before = CT_EQ_CALLS.with(|c| c.get());
            let (s, r) = server_answer(&message, slots);
            let after = CT_EQ_CALLS.with(|c| c.get());
            // One constant-time comparison per slot, empty slots included:
            // no early exit once a slot matched.
            assert_eq!(after - before, 2);
            match want {
                Some(slot) => {
                    assert!(matches!(r, Ok(ServerStep::Success { .. })), "{r:?}");
                    assert_eq!(s.security().fast_token, Some(slot));
                }
                None => {
                    assert_eq!(r.unwrap_err().condition, SaslCondition::CredentialsExpired);
                    assert_eq!(s.security().fast_token, None);
                }
            }
        }
    }

    /// XEP-0484 section 3.4: a count not above the last one of the
    /// matching token is a replay (`not-authorized`); a higher one, or
    /// none, logs in.
    #[test]
    fn a_count_not_above_the_tokens_last_is_refused() {
        let message = proof_of("secret");
        let mut t = token("HT-SHA-256-NONE", "secret");
        t.count = 5;
        for (count, ok) in [
            (None, true),
            (Some(6), true),
            (Some(5), false),
            (Some(0), false),
        ] {
            let m = HtMechanism::from_name("HT-SHA-256-NONE").unwrap();
            let fast = FastAuth {
                count,
                invalidate: false,
            };
            let mut s = HtServer::new(m, Some(&tls13_none()))
                .unwrap()
                .with_context(fast, None);
            let Ok(ServerStep::Request(CredentialRequest::FastToken { count: asked, .. })) =
                s.start(Some(&message))
            else {
                panic!("no token request");
            };
            assert_eq!(asked, count);
            let slots = TokenSlots {
                current: Some(t.clone()),
                new: None,
            };
            let r = s.answer(CredentialAnswer::FastTokens(slots));
            if ok {
                assert!(
                    matches!(r, Ok(ServerStep::Success { .. })),
                    "{count:?}: {r:?}"
                );
            } else {
                assert_eq!(
                    r.unwrap_err().condition,
                    SaslCondition::NotAuthorized,
                    "{count:?}"
                );
                assert_eq!(s.security().fast_token, None);
            }
        }
    }

    #[test]
    fn the_client_checks_the_responder_in_constant_time() {
        let m = HtMechanism::from_name("HT-SHA-256-NONE").unwrap();
        let mut c = HtClient::new(m, "lnj", Secret::new("t"), Some(&tls13_none())).unwrap();
        c.initial_response().unwrap();
        let before = CT_EQ_CALLS.with(|c| c.get());
        assert!(c.success(Some(&[0; 32])).is_err());
        assert_eq!(CT_EQ_CALLS.with(|c| c.get()) - before, 1);
    }

    #[test]
    fn the_client_computes_both_values_when_built_and_keeps_no_token() {
        let m = HtMechanism::from_name("HT-SHA-256-NONE").unwrap();
        let secret = Secret::new("s3cr3t-token");
        let mut c = HtClient::with_token(m, "lnj", &secret, None).unwrap();
        // The borrowed-token constructor and the public one agree.
        let mut d = HtClient::with_binding(m, "lnj", secret.clone(), None).unwrap();
        let message = c.initial_response().unwrap().unwrap();
        assert_eq!(Some(message.clone()), d.initial_response().unwrap());
        // user name, NUL, HMAC-SHA-256(token, "Initiator")
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"s3cr3t-token").unwrap();
        mac.update(b"Initiator");
        assert_eq!(message[..4], *b"lnj\0");
        assert_eq!(message[4..], mac.finalize().into_bytes()[..]);
        // Handed out once: a second initial response is refused.
        assert!(c.initial_response().is_err());
        let debug = format!("{d:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("lnj"),
            "{debug}"
        );
        // The responder value it expects.
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"s3cr3t-token").unwrap();
        mac.update(b"Responder");
        assert!(d.success(Some(&mac.finalize().into_bytes())).is_ok());
    }

    #[test]
    fn a_user_name_too_long_for_a_message_fails_when_built() {
        let m = HtMechanism::from_name("HT-SHA-256-NONE").unwrap();
        let long = "u".repeat(MAX_MESSAGE_LEN);
        let e = HtClient::with_binding(m, long, Secret::new("t"), None).unwrap_err();
        assert_eq!(e.condition, SaslCondition::MalformedRequest);
        let fits = "u".repeat(MAX_MESSAGE_LEN - 33);
        assert!(HtClient::with_binding(m, fits, Secret::new("t"), None).is_ok());
    }

    #[test]
    fn a_token_bound_to_another_mechanism_does_not_match() {
        let message = proof_of("secret");
        let slots = TokenSlots {
            current: Some(token("HT-SHA-256-ENDP", "secret")),
            new: None,
        };
        let (_, r) = server_answer(&message, slots);
        assert_eq!(r.unwrap_err().condition, SaslCondition::CredentialsExpired);
    }

    #[test]
    fn malformed_messages_are_refused_before_asking_the_host() {
        let m = HtMechanism::from_name("HT-SHA-256-NONE").unwrap();
        for bad in [
            &b"no-nul"[..],
            b"\0\x01\x02",
            b"lnj\0short",
            b"\xff\xfe\0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            let mut s = HtServer::new(m, Some(&tls13_none())).unwrap();
            let e = s.start(Some(bad)).unwrap_err();
            assert_eq!(e.condition, SaslCondition::MalformedRequest, "{bad:?}");
        }
        // The wrong kind of answer is the host's bug.
        let mut s = HtServer::new(m, Some(&tls13_none())).unwrap();
        s.start(Some(&proof_of("x"))).unwrap();
        let e = s
            .answer(CredentialAnswer::Verdict(Ok("lnj".into())))
            .unwrap_err();
        assert_eq!(e.condition, SaslCondition::TemporaryAuthFailure);
        // Without an initial response: an empty challenge, then the message.
        let mut s = HtServer::new(m, Some(&tls13_none())).unwrap();
        assert!(matches!(s.start(None), Ok(ServerStep::Challenge(c)) if c.is_empty()));
        assert!(matches!(
            s.respond(&proof_of("x")),
            Ok(ServerStep::Request(CredentialRequest::FastToken { .. }))
        ));
    }
}
