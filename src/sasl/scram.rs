//! SCRAM-SHA-1, SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) and
//! their `-PLUS` variants (channel binding), client side ([`ScramClient`])
//! and server side ([`ScramServer`]), with XEP-0474 downgrade protection.
//!
//! # Client
//!
//! ```
//! use xmpp_sansio::sasl::{ClientMechanism, ScramHash};
//! use xmpp_sansio::sasl::scram::{ScramClient, ServerOffer};
//! use xmpp_sansio::DeterministicRandom;
//!
//! let offer = ServerOffer::new(["SCRAM-SHA-1", "PLAIN"]);
//! let mut client = ScramClient::builder(ScramHash::Sha1, "user", &offer)
//!     .password("pencil")
//!     .build(&mut DeterministicRandom::new(1))?;
//! assert_eq!(client.name(), "SCRAM-SHA-1");
//! let first = client.initial_response()?.expect("SCRAM is client-first");
//! assert!(first.starts_with(b"n,,n=user,r="));
//! # Ok::<(), xmpp_sansio::sasl::SaslError>(())
//! ```
//!
//! The client is told what the server offered ([`ServerOffer`]) and what
//! it can bind ([`ScramClientBuilder::channel_binding`]). From those it
//! derives the mechanism and the gs2 header: `p=<type>,,` and the `-PLUS`
//! mechanism when it binds, `y,,` when it could bind but the server offered
//! no `-PLUS` mechanism, `n,,` when it cannot bind.
//!
//! It accepts the server-final message either as the additional data of
//! `<success/>` or as a last `<challenge/>` (then [`ClientMechanism::respond`]
//! returns an empty response and `success(None)` is fine). It refuses an
//! iteration count below [`ScramClientBuilder::min_iterations`] (default
//! 4096) and above [`ScramClientBuilder::max_iterations`] (default
//! 10 000 000, so that a hostile server cannot make it spin for hours), a
//! server nonce that does not extend its own, and a wrong server signature.
//! When the server-first message carries XEP-0474's `h=`, it is checked
//! against the offer.
//!
//! A client can be given cached keys ([`ScramClientKeys`]) to skip PBKDF2;
//! they are used only when the server's salt and iteration count match
//! theirs, otherwise the client falls back to the password if it has one.
//! After a verified exchange, [`ScramClient::keys_for_cache`] hands the
//! derived keys back.
//!
//! # Server
//!
//! [`ScramServer`] parses the client-first message, asks the host for the
//! user's [`ScramCredentials`] with [`CredentialRequest::Scram`], and checks
//! the client's proof in constant time. It never needs the password; hosts
//! that create accounts derive the credentials with
//! [`derive_server_credentials`].
//!
//! # Limits and failure conditions
//!
//! Every SCRAM message is capped at [`MAX_MESSAGE_LEN`] bytes (4 KiB) on
//! both sides. Bad input is a [`SaslError`], never a panic:
//!
//! | problem | condition |
//! |---|---|
//! | oversized, not UTF-8, missing/duplicate/misplaced attribute, bad inner base64, bad gs2 header, bad nonce, unsupported mandatory extension (`m=`) | `malformed-request` |
//! | gs2 flag `y` while the server offered a `-PLUS` mechanism (downgrade), `-PLUS` without binding, binding with a non-PLUS mechanism, unsupported binding type | `malformed-request` (as Prosody) |
//! | bad `a=` encoding | `invalid-authzid` |
//! | unknown user, wrong proof, channel-binding data that differs from the server's | `not-authorized` |
//! | host refusal ([`CredentialAnswer::Verdict`] with an error) | the host's condition |
//! | (client) wrong server signature or XEP-0474 hash mismatch | `not-authorized` |
//! | (client) iteration count below the minimum | `mechanism-too-weak` |
//! | (client) cached keys do not match and no password was given | `credentials-expired` |
//! | (client) server error `e=` | see [`server_error_condition`] |
//!
//! An unknown user fails at the proof, like a wrong password, when the
//! server was built with [`ScramServerBuilder::unknown_users`] (the server
//! role always does that): until then it gets a server-first message whose
//! salt is derived from a server secret ([`unknown_user_salt`]), so that
//! the exchange does not tell which user names exist.
//!
//! After a failure a machine stays failed and returns the same error.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::digest::Digest;
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use zeroize::Zeroizing;

use super::channel_binding::{ChannelBinding, ChannelBindingType};
use super::common::{self, Gs2AuthzidError, Gs2CbFlag, Key};
use super::{
    ChannelBindingUse, ClientMechanism, CredentialAnswer, CredentialRequest, ExchangeSecurity,
    Identity, SaslCondition, SaslError, ScramCredentials, ScramHash, Secret, SecretBytes,
    ServerMechanism, ServerStep,
};
use crate::random::{printable_token, push_printable_token, RandomSource};

/// The largest SCRAM message either side accepts or produces, in bytes
/// (after base64 decoding).
pub const MAX_MESSAGE_LEN: usize = 4096;

/// The default minimum iteration count a client accepts (RFC 5802 section
/// 5.1 and RFC 7677 section 4 recommend at least 4096).
pub const DEFAULT_MIN_ITERATIONS: u32 = 4096;

/// The default maximum iteration count a client accepts.
pub const DEFAULT_MAX_ITERATIONS: u32 = 10_000_000;

/// Length of the nonces this crate generates: 24 characters of 6 random
/// bits each, 144 bits. A nonce must never repeat and never be guessable;
/// 144 bits is beyond both (RFC 5802's own example client nonce has 24
/// characters, GNU SASL draws 18 random bytes, Prosody's server nonce is a
/// 122-bit UUID). Every character is sent about four times per exchange
/// (base64-encoded, in three messages) and hashed twice on each side, so
/// longer nonces cost on every login without adding safety.
const NONCE_LEN: usize = 24;

/// The three hash families, strongest last.
pub const ALL_HASHES: [ScramHash; 3] = [ScramHash::Sha1, ScramHash::Sha256, ScramHash::Sha512];

/// The registered mechanism name: `SCRAM-SHA-256`, `SCRAM-SHA-256-PLUS`...
pub fn mechanism_name(hash: ScramHash, plus: bool) -> &'static str {
    match (hash, plus) {
        (ScramHash::Sha1, false) => "SCRAM-SHA-1",
        (ScramHash::Sha1, true) => "SCRAM-SHA-1-PLUS",
        (ScramHash::Sha256, false) => "SCRAM-SHA-256",
        (ScramHash::Sha256, true) => "SCRAM-SHA-256-PLUS",
        (ScramHash::Sha512, false) => "SCRAM-SHA-512",
        (ScramHash::Sha512, true) => "SCRAM-SHA-512-PLUS",
    }
}

/// Parses a mechanism name into its hash and whether it is `-PLUS`; `None`
/// for anything but the six SCRAM names of this crate.
pub fn parse_mechanism_name(name: &str) -> Option<(ScramHash, bool)> {
    ALL_HASHES
        .into_iter()
        .flat_map(|h| [(h, false), (h, true)])
        .find(|(h, p)| mechanism_name(*h, *p) == name)
}

/// The digest length of `hash` in bytes (20, 32 or 64): the length of every
/// SCRAM key and proof.
pub fn output_len(hash: ScramHash) -> usize {
    match hash {
        ScramHash::Sha1 => 20,
        ScramHash::Sha256 => 32,
        ScramHash::Sha512 => 64,
    }
}

// ---------------------------------------------------------------------------
// Cryptography: one generic implementation, dispatched on the hash family.

macro_rules! with_digest {
    ($hash:expr, $f:ident($($arg:expr),*)) => {
        match $hash {
            ScramHash::Sha1 => $f::<sha1::Sha1>($($arg),*),
            ScramHash::Sha256 => $f::<sha2::Sha256>($($arg),*),
            ScramHash::Sha512 => $f::<sha2::Sha512>($($arg),*),
        }
    };
}

/// HMAC over the concatenation of `parts`, fed one by one (the
/// AuthMessage is hashed from its pieces, never joined into a copy).
fn hmac_generic<D: EagerHash>(key: &[u8], parts: &[&[u8]]) -> Key {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    Key::new(&mac.finalize().into_bytes())
}

fn digest_generic<D: Digest>(data: &[u8]) -> Key {
    Key::new(&D::digest(data))
}

fn pbkdf2_generic<D: EagerHash>(password: &[u8], salt: &[u8], iterations: u32) -> Key {
    let mut out = Key::zeroed(<D as Digest>::output_size());
    pbkdf2::pbkdf2_hmac::<D>(password, salt, iterations, &mut out);
    out
}

fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Key {
    hmac_parts(hash, key, &[data])
}

/// `HMAC(key, parts[0] || parts[1] || ...)`.
fn hmac_parts(hash: ScramHash, key: &[u8], parts: &[&[u8]]) -> Key {
    with_digest!(hash, hmac_generic(key, parts))
}

/// Appends the base64 of `data` to `out`, encoded in place (no
/// intermediate buffer to clear, no copy).
fn push_b64(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    let len = base64::encoded_len(data.len(), true).expect("SCRAM values are short");
    out.resize(start + len, 0);
    // The room is exactly the encoded length: this cannot fail.
    let written = B64
        .encode_slice(data, &mut out[start..])
        .expect("room for the encoding");
    debug_assert_eq!(written, len);
}

fn h(hash: ScramHash, data: &[u8]) -> Key {
    with_digest!(hash, digest_generic(data))
}

/// `Hi()` of RFC 5802: PBKDF2 with HMAC as the PRF.
fn hi(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Key {
    with_digest!(hash, pbkdf2_generic(password, salt, iterations))
}

fn xor(a: &[u8], b: &[u8]) -> Key {
    let mut out = Key::new(a);
    for (x, y) in out.iter_mut().zip(b) {
        *x ^= y;
    }
    out
}

/// Decodes a base64 key or hash on the stack: `Err` for bad base64,
/// `Ok(None)` for a value longer than 64 bytes (no key or hash is; such a
/// value is not checked further).
fn decode_key(s: &str) -> Result<Option<Key>, ()> {
    if s.len() > 88 {
        return Ok(None);
    }
    let mut buf = Zeroizing::new([0u8; 66]);
    let n = B64.decode_slice(s, &mut buf[..]).map_err(|_| ())?;
    Ok((n <= 64).then(|| Key::new(&buf[..n])))
}

/// Decodes base64 `s` into `small` when it fits there (salts, gs2 headers
/// with binding data: the usual values are short), else into `large`.
/// `None` for bad base64.
fn decode_b64<'a>(
    s: &str,
    small: &'a mut [u8],
    large: &'a mut Zeroizing<Vec<u8>>,
) -> Option<&'a [u8]> {
    if base64::decoded_len_estimate(s.len()) <= small.len() {
        let n = B64.decode_slice(s, small).ok()?;
        Some(&small[..n])
    } else {
        **large = B64.decode(s).ok()?;
        Some(large.as_slice())
    }
}

/// Appends `n` in decimal (RFC 5802 `posit-number`) to `out`.
fn push_decimal(out: &mut Vec<u8>, n: u32) {
    // Cannot fail: writing to a Vec.
    let _ = std::io::Write::write_fmt(out, format_args!("{n}"));
}

/// SASLprep (RFC 4013) of a password, in a buffer zeroed on drop.
fn prepare_password(password: &str) -> Result<Zeroizing<String>, SaslError> {
    match stringprep::saslprep(password) {
        Ok(p) => Ok(Zeroizing::new(p.into_owned())),
        Err(_) => Err(SaslError::malformed("the password fails SASLprep")),
    }
}

// ---------------------------------------------------------------------------
// Stored and cached credentials.

/// Derives what a server stores for a SCRAM user (salt, iteration count,
/// StoredKey, ServerKey) from a password: for hosts that create accounts or
/// change passwords. The password is SASLprep'd first (RFC 5802 section
/// 2.2). Fails with `malformed-request` when the password fails SASLprep,
/// the salt is empty or `iterations` is 0.
pub fn derive_server_credentials(
    hash: ScramHash,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Result<ScramCredentials, SaslError> {
    let keys = ScramClientKeys::derive(hash, password, salt, iterations)?;
    let (client_key, server_key) = keys
        .client_and_server_keys()
        .ok_or(SaslError::malformed("derived keys have the wrong length"))?;
    Ok(ScramCredentials {
        salt: salt.to_vec(),
        iterations,
        stored_key: SecretBytes::new(h(hash, &client_key).to_vec()),
        server_key: SecretBytes::new(server_key.to_vec()),
    })
}

/// What a server stores for a SCRAM user, from the `SaltedPassword` a
/// client computed for this salt and iteration count (XEP-0480's SCRAM
/// upgrade task): no password crosses the stream. Fails with
/// `malformed-request` when `salted` has the wrong length for `hash`, the
/// salt is empty or `iterations` is 0.
pub fn server_credentials_from_salted_password(
    hash: ScramHash,
    salted: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<ScramCredentials, SaslError> {
    if salt.is_empty() || iterations == 0 {
        return Err(SaslError::malformed("empty salt or iteration count 0"));
    }
    let keys = ScramClientKeys {
        hash,
        salt: salt.to_vec(),
        iterations,
        secret: ScramClientSecret::SaltedPassword(SecretBytes::new(salted.to_vec())),
    };
    let (client_key, server_key) = keys.client_and_server_keys().ok_or(SaslError::malformed(
        "a salted password of the wrong length",
    ))?;
    Ok(ScramCredentials {
        salt: salt.to_vec(),
        iterations,
        stored_key: SecretBytes::new(h(hash, &client_key).to_vec()),
        server_key: SecretBytes::new(server_key.to_vec()),
    })
}

/// Keys a client can cache instead of running PBKDF2 on every login. They
/// are only valid for the salt and iteration count they were derived with.
#[derive(Clone)]
pub struct ScramClientKeys {
    /// The hash family they belong to.
    pub hash: ScramHash,
    /// The server's salt they were derived with.
    pub salt: Vec<u8>,
    /// The server's iteration count they were derived with.
    pub iterations: u32,
    /// The key material.
    pub secret: ScramClientSecret,
}

/// The secret part of [`ScramClientKeys`]. Zeroed on drop, never shown by
/// `Debug`.
#[derive(Debug, Clone)]
pub enum ScramClientSecret {
    /// `SaltedPassword = Hi(Normalize(password), salt, i)`.
    SaltedPassword(SecretBytes),
    /// `ClientKey` and `ServerKey`, enough to log in and to check the
    /// server (but not to derive the SaltedPassword back).
    Keys {
        /// `HMAC(SaltedPassword, "Client Key")`.
        client_key: SecretBytes,
        /// `HMAC(SaltedPassword, "Server Key")`.
        server_key: SecretBytes,
    },
}

impl ScramClientKeys {
    /// Runs PBKDF2 over the SASLprep'd `password`: the
    /// [`ScramClientSecret::SaltedPassword`] form. Fails with
    /// `malformed-request` when the password fails SASLprep, the salt is
    /// empty or `iterations` is 0.
    pub fn derive(
        hash: ScramHash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, SaslError> {
        if salt.is_empty() {
            return Err(SaslError::malformed("empty salt"));
        }
        if iterations == 0 {
            return Err(SaslError::malformed("iteration count 0"));
        }
        let prepared = prepare_password(password)?;
        let salted = hi(hash, prepared.as_bytes(), salt, iterations);
        Ok(Self {
            hash,
            salt: salt.to_vec(),
            iterations,
            secret: ScramClientSecret::SaltedPassword(SecretBytes::new(salted.to_vec())),
        })
    }

    /// `(ClientKey, ServerKey)`, or `None` when the stored material has the
    /// wrong length for the hash.
    fn client_and_server_keys(&self) -> Option<(Key, Key)> {
        let len = output_len(self.hash);
        match &self.secret {
            ScramClientSecret::SaltedPassword(sp) if sp.expose().len() == len => Some((
                hmac(self.hash, sp.expose(), b"Client Key"),
                hmac(self.hash, sp.expose(), b"Server Key"),
            )),
            ScramClientSecret::Keys {
                client_key,
                server_key,
            } if client_key.expose().len() == len && server_key.expose().len() == len => {
                Some((Key::new(client_key.expose()), Key::new(server_key.expose())))
            }
            _ => None,
        }
    }
}

impl fmt::Debug for ScramClientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClientKeys")
            .field("hash", &self.hash)
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// What the server advertised (gs2 flag choice, XEP-0474).

/// What the server advertised in its stream features: the SASL mechanisms
/// and the XEP-0440 channel-binding types. Both sides use it: the client to
/// choose its gs2 flag and to check XEP-0474's `h=`, the server to detect
/// the `y` downgrade and to compute `h=`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerOffer {
    /// The offered mechanism names, in any order.
    pub mechanisms: Vec<String>,
    /// The advertised channel-binding type names (unknown ones included),
    /// or `None` when the server sent no `<sasl-channel-binding/>` feature.
    pub channel_binding_types: Option<Vec<String>>,
}

impl ServerOffer {
    /// An offer of `mechanisms`, without XEP-0440 channel-binding types.
    pub fn new<I, S>(mechanisms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            mechanisms: mechanisms.into_iter().map(Into::into).collect(),
            channel_binding_types: None,
        }
    }

    /// Adds the XEP-0440 channel-binding types.
    pub fn with_channel_binding_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.channel_binding_types = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// Whether `mechanism` is offered.
    pub fn offers(&self, mechanism: &str) -> bool {
        self.mechanisms.iter().any(|m| m == mechanism)
    }

    /// Whether any `SCRAM-*-PLUS` mechanism is offered, i.e. whether the
    /// server supports channel binding (RFC 5802 section 6).
    pub fn offers_scram_plus(&self) -> bool {
        self.mechanisms
            .iter()
            .any(|m| m.starts_with("SCRAM-") && m.ends_with("-PLUS"))
    }

    /// The XEP-0474 value of `h=` (base64), computed with `hash`: the hash
    /// of the sorted, de-duplicated mechanism names joined by 0x1E, then,
    /// when channel-binding types were advertised, 0x1F and the sorted
    /// type names joined by 0x1E. This is what Prosody's `mod_sasl_ssdp`
    /// computes.
    pub fn downgrade_protection_hash(&self, hash: ScramHash) -> String {
        B64.encode(&*self.downgrade_protection_digest(hash))
    }

    /// The digest behind [`Self::downgrade_protection_hash`], fed piece by
    /// piece (no joined copy of the lists; short lists sorted on the
    /// stack).
    fn downgrade_protection_digest(&self, hash: ScramHash) -> Key {
        let types = self.channel_binding_types.as_deref();
        let n = self.mechanisms.len() + types.map_or(0, <[String]>::len);
        let mut small: [&[u8]; 16] = [&[]; 16];
        let mut large = Vec::new();
        let names: &mut [&[u8]] = if n <= small.len() {
            &mut small[..n]
        } else {
            large.resize(n, &[][..]);
            &mut large
        };
        let all = self.mechanisms.iter().chain(types.into_iter().flatten());
        for (slot, name) in names.iter_mut().zip(all) {
            *slot = name.as_bytes();
        }
        let (mechanisms, types_sorted) = names.split_at_mut(self.mechanisms.len());
        mechanisms.sort_unstable();
        types_sorted.sort_unstable();
        let types_sorted = types.map(|_| &*types_sorted);
        with_digest!(hash, digest_lists(mechanisms, types_sorted))
    }
}

/// XEP-0474's hash input, fed to `D`: the sorted `mechanisms` without
/// repeats joined by 0x1E, then, when there are `types`, 0x1F and the
/// sorted types joined the same way.
fn digest_lists<D: Digest>(mechanisms: &[&[u8]], types: Option<&[&[u8]]>) -> Key {
    fn feed<D: Digest>(d: &mut D, sorted: &[&[u8]]) {
        for (i, name) in sorted.iter().enumerate() {
            if i > 0 && sorted[i - 1] == *name {
                continue;
            }
            if i > 0 {
                d.update(b"\x1e");
            }
            d.update(name);
        }
    }
    let mut d = D::new();
    feed(&mut d, mechanisms);
    if let Some(types) = types {
        d.update(b"\x1f");
        feed(&mut d, types);
    }
    Key::new(&d.finalize())
}

// ---------------------------------------------------------------------------
// Message syntax.

fn message_text(msg: &[u8]) -> Result<&str, SaslError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(SaslError::malformed("SCRAM message too long"));
    }
    std::str::from_utf8(msg).map_err(|_| SaslError::malformed("SCRAM message is not UTF-8"))
}

/// The attributes of one SCRAM message, checked by [`parse_attrs`] and
/// read in place (messages have a handful of attributes: walking them is
/// cheaper than copying them out).
#[derive(Debug, Clone, Copy)]
struct Attrs<'a> {
    text: &'a str,
    len: usize,
    /// The first attributes, split once (all of them in the usual
    /// messages).
    head: [(u8, &'a str); ATTRS_INLINE],
}

/// How many attributes [`Attrs`] keeps split: every attribute SCRAM reads
/// by position is among the first four, and the messages this crate and
/// Prosody send have at most five (server-first with `h=`).
const ATTRS_INLINE: usize = 6;

impl<'a> Attrs<'a> {
    /// All attributes, in order: those split by [`parse_attrs`] when they
    /// all fit in `head`, else the text split again.
    fn iter(self) -> impl Iterator<Item = (u8, &'a str)> {
        let (inline, again) = if self.len <= ATTRS_INLINE {
            (self.len, None)
        } else {
            (0, Some(self.text))
        };
        // parse_attrs checked the shape: one ASCII letter, `=`, the value.
        let again = again
            .into_iter()
            .flat_map(split_commas)
            .map(|part| (part.as_bytes()[0], &part[2..]));
        self.head.into_iter().take(inline).chain(again)
    }

    fn get(self, index: usize) -> Option<(u8, &'a str)> {
        match index {
            i if i >= self.len => None,
            i if i < ATTRS_INLINE => Some(self.head[i]),
            i => self.iter().nth(i),
        }
    }

    fn first(self) -> Option<(u8, &'a str)> {
        self.get(0)
    }

    /// The attributes in `from..to`.
    fn range(self, from: usize, to: usize) -> impl Iterator<Item = (u8, &'a str)> {
        self.iter().skip(from).take(to.saturating_sub(from))
    }
}

/// `s` split at commas, as `str::split(',')` but with a plain byte loop:
/// SCRAM attributes are a few dozen bytes, too short for `memchr` to pay.
fn split_commas(s: &str) -> impl Iterator<Item = &str> {
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        match s.as_bytes()[from..].iter().position(|&b| b == b',') {
            Some(i) => {
                start = Some(from + i + 1);
                Some(&s[from..from + i])
            }
            None => {
                start = None;
                Some(&s[from..])
            }
        }
    })
}

/// Checks `k=v,k=v,...`: keys are one ASCII letter; a key may not repeat.
fn parse_attrs(s: &str) -> Result<Attrs<'_>, SaslError> {
    // One bit per key, `A` (0x41) to `z` (0x7A).
    let mut seen = 0u64;
    let mut len = 0;
    let mut head = [(0, ""); ATTRS_INLINE];
    for part in split_commas(s) {
        let b = part.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
            return Err(SaslError::malformed("bad SCRAM attribute"));
        }
        let bit = 1u64 << (b[0] - b'A');
        if seen & bit != 0 {
            return Err(SaslError::malformed("duplicate SCRAM attribute"));
        }
        seen |= bit;
        if let Some(slot) = head.get_mut(len) {
            *slot = (b[0], &part[2..]);
        }
        len += 1;
    }
    Ok(Attrs { text: s, len, head })
}

/// The value of the attribute at `index` if it has key `key`.
fn expect_attr<'a>(
    attrs: Attrs<'a>,
    index: usize,
    key: u8,
    err: &'static str,
) -> Result<&'a str, SaslError> {
    match attrs.get(index) {
        Some((k, v)) if k == key && !v.is_empty() => Ok(v),
        _ => Err(SaslError::malformed(err)),
    }
}

/// RFC 5802 `printable`: %x21-2B / %x2D-7E.
fn is_valid_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// RFC 5802 `posit-number`: no sign, no leading zero, fits in `u32`.
fn parse_iterations(s: &str) -> Option<u32> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The condition a client reports for a server's `e=` value (RFC 5802
/// section 7, `server-error-value`). Values this crate does not know are
/// treated as `other-error`, as RFC 5802 asks.
///
/// | `e=` | condition |
/// |---|---|
/// | `invalid-encoding`, `extensions-not-supported`, `invalid-username-encoding`, `channel-binding-not-supported`, `unsupported-channel-binding-type`, `server-does-support-channel-binding` | `malformed-request` |
/// | `no-resources` | `temporary-auth-failure` |
/// | `invalid-proof`, `channel-bindings-dont-match`, `unknown-user`, `other-error`, anything else | `not-authorized` |
pub fn server_error_condition(value: &str) -> SaslError {
    use SaslCondition as C;
    let (condition, reason) = match value {
        "invalid-encoding" => (C::MalformedRequest, "server error: invalid-encoding"),
        "extensions-not-supported" => (
            C::MalformedRequest,
            "server error: extensions-not-supported",
        ),
        "invalid-username-encoding" => (
            C::MalformedRequest,
            "server error: invalid-username-encoding",
        ),
        "channel-binding-not-supported" => (
            C::MalformedRequest,
            "server error: channel-binding-not-supported",
        ),
        "unsupported-channel-binding-type" => (
            C::MalformedRequest,
            "server error: unsupported-channel-binding-type",
        ),
        "server-does-support-channel-binding" => (
            C::MalformedRequest,
            "server error: server-does-support-channel-binding",
        ),
        "no-resources" => (C::TemporaryAuthFailure, "server error: no-resources"),
        "invalid-proof" => (C::NotAuthorized, "server error: invalid-proof"),
        "channel-bindings-dont-match" => (
            C::NotAuthorized,
            "server error: channel-bindings-dont-match",
        ),
        "unknown-user" => (C::NotAuthorized, "server error: unknown-user"),
        _ => (C::NotAuthorized, "server error: other-error"),
    };
    SaslError::new(condition, reason)
}

// ---------------------------------------------------------------------------
// Client.

/// Builds a [`ScramClient`]. Get one from [`ScramClient::builder`].
#[derive(Debug)]
pub struct ScramClientBuilder {
    hash: ScramHash,
    username: String,
    /// Whether the server offers `-PLUS` with this hash, and with any.
    offers_plus: bool,
    offers_any_plus: bool,
    /// The XEP-0474 digest of the offer.
    ssdp: Key,
    password: Option<Secret>,
    cached: Option<ScramClientKeys>,
    authzid: Option<String>,
    channel_binding: Option<ChannelBinding>,
    min_iterations: u32,
    max_iterations: u32,
    nonce: Option<String>,
}

impl ScramClientBuilder {
    /// The password (SASLprep'd by the client).
    pub fn password(mut self, password: impl Into<Secret>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Cached keys from an earlier exchange ([`ScramClient::keys_for_cache`]
    /// or [`ScramClientKeys::derive`]). Used only when the server's salt
    /// and iteration count (and the hash) match; otherwise the client
    /// falls back to the password, and fails with `credentials-expired`
    /// without one.
    pub fn cached_keys(mut self, keys: ScramClientKeys) -> Self {
        self.cached = Some(keys);
        self
    }

    /// The authorization identity to act as (sent as `a=` in the gs2
    /// header, `=2C`/`=3D`-escaped). An empty string means none.
    pub fn authzid(mut self, authzid: impl Into<String>) -> Self {
        self.authzid = common::non_empty(authzid);
        self
    }

    /// Channel-binding data the client can supply on this connection (see
    /// [`choose_channel_binding`](super::channel_binding::choose_channel_binding)).
    /// With it, the client uses the `-PLUS` mechanism when the server
    /// offers it, and the gs2 flag `y` when the server offers no `-PLUS`
    /// mechanism at all.
    pub fn channel_binding(mut self, binding: ChannelBinding) -> Self {
        self.channel_binding = Some(binding);
        self
    }

    /// The lowest iteration count accepted (default
    /// [`DEFAULT_MIN_ITERATIONS`]); below it the exchange fails with
    /// `mechanism-too-weak`.
    pub fn min_iterations(mut self, iterations: u32) -> Self {
        self.min_iterations = iterations;
        self
    }

    /// The highest iteration count accepted (default
    /// [`DEFAULT_MAX_ITERATIONS`]); above it the exchange fails with
    /// `malformed-request` instead of running PBKDF2 for a very long time.
    pub fn max_iterations(mut self, iterations: u32) -> Self {
        self.max_iterations = iterations;
        self
    }

    /// Uses `nonce` instead of a random one. **Only for tests and
    /// transcript replays**: a fixed nonce removes SCRAM's replay
    /// protection. It must be RFC 5802 `printable` (no `,`).
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// Builds the client, drawing its nonce from `rng`.
    ///
    /// Fails with `malformed-request` when the user name or password fails
    /// SASLprep, the user name is empty, the fixed nonce is not printable,
    /// or the client-first message would exceed [`MAX_MESSAGE_LEN`];
    /// with `not-authorized` when neither a password nor cached keys were
    /// given; with `invalid-mechanism` when the client can bind and the
    /// server offers a `-PLUS` mechanism, but not for this hash (choose
    /// that one: a `y` flag would be rejected as a downgrade).
    pub fn build(self, rng: &mut dyn RandomSource) -> Result<ScramClient, SaslError> {
        let cached = self.cached.filter(|k| k.hash == self.hash);
        if self.password.is_none() && cached.is_none() {
            return Err(SaslError::not_authorized(
                "neither a password nor cached keys for this hash",
            ));
        }
        // SASLprep'd now (a password that fails it fails here); kept as
        // given when preparation changes nothing, the usual case.
        let password = match self.password {
            Some(p) => {
                let changed = match stringprep::saslprep(p.expose()) {
                    Ok(std::borrow::Cow::Borrowed(_)) => None,
                    Ok(std::borrow::Cow::Owned(prepared)) => Some(Secret::new(prepared)),
                    Err(_) => return Err(SaslError::malformed("the password fails SASLprep")),
                };
                Some(changed.unwrap_or(p))
            }
            None => None,
        };
        let username = stringprep::saslprep(&self.username)
            .map_err(|_| SaslError::malformed("the user name fails SASLprep"))?;
        if username.is_empty() {
            return Err(SaslError::malformed("empty user name"));
        }
        let cb_use = match &self.channel_binding {
            Some(cb) if self.offers_plus => ChannelBindingUse::Bound(cb.kind),
            Some(_) if self.offers_any_plus => {
                return Err(SaslError::new(
                    SaslCondition::InvalidMechanism,
                    "the server offers SCRAM -PLUS with another hash: use that mechanism",
                ))
            }
            Some(_) => ChannelBindingUse::SupportedNotUsed,
            None => ChannelBindingUse::NotSupported,
        };
        let plus = matches!(cb_use, ChannelBindingUse::Bound(_));
        let cb_flag = match cb_use {
            ChannelBindingUse::Bound(kind) => Gs2CbFlag::Binding(kind.as_str().to_owned()),
            ChannelBindingUse::SupportedNotUsed => Gs2CbFlag::SupportedNotUsed,
            ChannelBindingUse::NotSupported => Gs2CbFlag::NotSupported,
        };
        if self.nonce.as_deref().is_some_and(|n| !is_valid_nonce(n)) {
            return Err(SaslError::malformed("the fixed nonce is not printable"));
        }
        // The whole client-first message in one buffer: the gs2 header,
        // then client-first-bare; the user name escaped and the nonce
        // drawn straight into it.
        let mut client_first = common::build_gs2_header(&cb_flag, self.authzid.as_deref());
        let gs2_len = client_first.len();
        client_first.push_str("n=");
        common::push_gs2_escaped(&mut client_first, &username);
        client_first.push_str(",r=");
        let nonce_start = client_first.len();
        match &self.nonce {
            Some(n) => client_first.push_str(n),
            None => push_printable_token(rng, NONCE_LEN, &mut client_first),
        }
        if client_first.len() > MAX_MESSAGE_LEN {
            return Err(SaslError::malformed("client-first message too long"));
        }
        let cb_data = if plus {
            self.channel_binding.map(|cb| cb.data)
        } else {
            None
        };
        Ok(ScramClient {
            hash: self.hash,
            name: mechanism_name(self.hash, plus),
            client_first,
            gs2_len,
            nonce_start,
            password,
            cached,
            cb_data,
            cb_use,
            ssdp: self.ssdp,
            ssdp_checked: false,
            min_iterations: self.min_iterations,
            max_iterations: self.max_iterations,
            state: ClientState::Initial,
        })
    }
}

enum ClientState {
    Initial,
    SentFirst,
    SentFinal {
        server_signature: Key,
        keys: ScramClientKeys,
    },
    /// The server-final message came as a challenge and verified.
    Verified {
        server_signature: Key,
        keys: ScramClientKeys,
    },
    /// Done; the keys until [`ClientMechanism::derived_keys`] takes them.
    Done(Option<ScramClientKeys>),
    Failed(SaslError),
}

impl ClientState {
    fn name(&self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::SentFirst => "sent-client-first",
            Self::SentFinal { .. } => "sent-client-final",
            Self::Verified { .. } => "server-verified",
            Self::Done(_) => "done",
            Self::Failed(_) => "failed",
        }
    }
}

/// The client side of SCRAM-SHA-1/256/512[-PLUS]. Build it with
/// [`ScramClient::builder`]; drive it through [`ClientMechanism`]. One
/// instance serves one exchange (its nonce is drawn at construction).
pub struct ScramClient {
    hash: ScramHash,
    name: &'static str,
    /// The client-first message: the gs2 header (`gs2_len` bytes), then
    /// client-first-bare, which ends with the nonce (from `nonce_start`).
    client_first: String,
    gs2_len: usize,
    nonce_start: usize,
    password: Option<Secret>,
    cached: Option<ScramClientKeys>,
    cb_data: Option<SecretBytes>,
    cb_use: ChannelBindingUse,
    /// The XEP-0474 digest of what the server offered, and whether the
    /// server's `h=` was checked against it.
    ssdp: Key,
    ssdp_checked: bool,
    min_iterations: u32,
    max_iterations: u32,
    state: ClientState,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.name)
            .field("gs2_header", &self.gs2_header())
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Starts building a client for `username` with the `hash` family,
    /// given what the server offered (for the gs2 flag and XEP-0474).
    pub fn builder(
        hash: ScramHash,
        username: impl Into<String>,
        offer: &ServerOffer,
    ) -> ScramClientBuilder {
        ScramClientBuilder {
            hash,
            username: username.into(),
            offers_plus: offer.offers(mechanism_name(hash, true)),
            offers_any_plus: offer.offers_scram_plus(),
            ssdp: offer.downgrade_protection_digest(hash),
            password: None,
            cached: None,
            authzid: None,
            channel_binding: None,
            min_iterations: DEFAULT_MIN_ITERATIONS,
            max_iterations: DEFAULT_MAX_ITERATIONS,
            nonce: None,
        }
    }

    /// The hash family.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }

    /// Whether this client binds to the channel (`-PLUS`).
    pub fn is_plus(&self) -> bool {
        self.cb_data.is_some()
    }

    /// The gs2 header this client sends (`n,,`, `y,,`, `p=tls-exporter,,`,
    /// with `a=...` when an authzid was given).
    pub fn gs2_header(&self) -> &str {
        &self.client_first[..self.gs2_len]
    }

    fn client_first_bare(&self) -> &str {
        &self.client_first[self.gs2_len..]
    }

    fn nonce(&self) -> &str {
        &self.client_first[self.nonce_start..]
    }

    /// The keys to cache for the next login ([`ScramClientSecret::Keys`]
    /// form, with the server's salt and iteration count), available once
    /// the server's signature has been verified; `None` before that.
    /// (After [`ClientMechanism::derived_keys`] has taken them: `None`.)
    pub fn keys_for_cache(&self) -> Option<ScramClientKeys> {
        match &self.state {
            ClientState::Verified { keys, .. } => Some(keys.clone()),
            ClientState::Done(keys) => keys.clone(),
            _ => None,
        }
    }

    fn client_first(&self) -> Vec<u8> {
        self.client_first.as_bytes().to_vec()
    }

    fn guard<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, SaslError>,
    ) -> Result<T, SaslError> {
        if let ClientState::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let r = f(self);
        if let Err(e) = &r {
            self.state = ClientState::Failed(e.clone());
        }
        r
    }

    /// `(ClientKey, ServerKey)` for the server's salt and iteration count,
    /// and the keys to hand back for the cache: the cached keys themselves
    /// when they were usable in that form (taken, not copied).
    fn keys_for(
        &mut self,
        salt: &[u8],
        iterations: u32,
    ) -> Result<(Key, Key, ScramClientKeys), SaslError> {
        let hash = self.hash;
        let fresh = |client_key: &Key, server_key: &Key| ScramClientKeys {
            hash,
            salt: salt.to_vec(),
            iterations,
            secret: ScramClientSecret::Keys {
                client_key: SecretBytes::new(client_key.to_vec()),
                server_key: SecretBytes::new(server_key.to_vec()),
            },
        };
        let usable = |k: &mut ScramClientKeys| k.salt == salt && k.iterations == iterations;
        if let Some(k) = self.cached.take_if(usable) {
            if let Some((ck, sk)) = k.client_and_server_keys() {
                let keys = match k.secret {
                    ScramClientSecret::Keys { .. } => k,
                    ScramClientSecret::SaltedPassword(_) => fresh(&ck, &sk),
                };
                return Ok((ck, sk, keys));
            }
            self.cached = Some(k);
        }
        match &self.password {
            Some(p) => {
                let salted = hi(self.hash, p.expose().as_bytes(), salt, iterations);
                let ck = hmac(self.hash, &salted, b"Client Key");
                let sk = hmac(self.hash, &salted, b"Server Key");
                let keys = fresh(&ck, &sk);
                Ok((ck, sk, keys))
            }
            None => Err(SaslError::new(
                SaslCondition::CredentialsExpired,
                "cached keys do not match the server's salt or iteration count",
            )),
        }
    }

    fn handle_server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, SaslError> {
        let text = message_text(msg)?;
        let attrs = parse_attrs(text)?;
        match attrs.first() {
            Some((b'e', v)) => return Err(server_error_condition(v)),
            Some((b'm', _)) => {
                return Err(SaslError::malformed(
                    "server-first: unsupported mandatory extension",
                ))
            }
            _ => {}
        }
        let nonce = expect_attr(attrs, 0, b'r', "server-first: r= expected first")?;
        let salt = expect_attr(attrs, 1, b's', "server-first: s= expected second")?;
        let iterations = expect_attr(attrs, 2, b'i', "server-first: i= expected third")?;
        let mut ssdp = None;
        for (k, v) in attrs.iter().skip(3) {
            match k {
                b'm' => return Err(SaslError::malformed("server-first: misplaced m=")),
                b'h' => ssdp = Some(v),
                _ => {}
            }
        }
        let own_nonce = self.nonce();
        if !is_valid_nonce(nonce) || nonce.len() <= own_nonce.len() || !nonce.starts_with(own_nonce)
        {
            return Err(SaslError::malformed(
                "server-first: the server nonce does not extend the client nonce",
            ));
        }
        let (mut small, mut large) = ([0u8; 96], Zeroizing::new(Vec::new()));
        let salt = match decode_b64(salt, &mut small, &mut large) {
            Some(salt) if !salt.is_empty() => salt,
            _ => return Err(SaslError::malformed("server-first: bad salt")),
        };
        let iterations = parse_iterations(iterations)
            .ok_or(SaslError::malformed("server-first: bad iteration count"))?;
        if iterations < self.min_iterations {
            return Err(SaslError::new(
                SaslCondition::MechanismTooWeak,
                "server-first: iteration count below the minimum",
            ));
        }
        if iterations > self.max_iterations {
            return Err(SaslError::malformed(
                "server-first: iteration count above the maximum",
            ));
        }
        if let Some(received) = ssdp {
            let matches =
                matches!(decode_key(received), Ok(Some(r)) if common::ct_eq(&r, &self.ssdp));
            if !matches {
                return Err(SaslError::not_authorized(
                    "XEP-0474: the offered mechanisms were tampered with (h= mismatch)",
                ));
            }
            self.ssdp_checked = true;
        }
        let (client_key, server_key, keys) = self.keys_for(salt, iterations)?;

        // client-final-message-without-proof, then the proof appended.
        let cb_len = self.cb_data.as_ref().map_or(0, |cb| cb.expose().len());
        let proof_len = base64::encoded_len(output_len(self.hash), true).unwrap_or(88);
        let mut client_final = Vec::with_capacity(
            2 + 4 * (self.gs2_len + cb_len).div_ceil(3) + 3 + nonce.len() + 3 + proof_len,
        );
        client_final.extend_from_slice(b"c=");
        match &self.cb_data {
            None => push_b64(&mut client_final, self.gs2_header().as_bytes()),
            Some(cb) => {
                let mut input = Zeroizing::new(Vec::with_capacity(self.gs2_len + cb_len));
                input.extend_from_slice(self.gs2_header().as_bytes());
                input.extend_from_slice(cb.expose());
                push_b64(&mut client_final, &input);
            }
        }
        client_final.extend_from_slice(b",r=");
        client_final.extend_from_slice(nonce.as_bytes());
        // AuthMessage = client-first-bare "," server-first ","
        // client-final-without-proof, hashed from its pieces.
        let auth_message: [&[u8]; 5] = [
            self.client_first_bare().as_bytes(),
            b",",
            msg,
            b",",
            &client_final,
        ];
        let stored_key = h(self.hash, &client_key);
        let client_signature = hmac_parts(self.hash, &stored_key, &auth_message);
        let server_signature = hmac_parts(self.hash, &server_key, &auth_message);
        let proof = xor(&client_key, &client_signature);
        client_final.extend_from_slice(b",p=");
        push_b64(&mut client_final, &proof);
        if client_final.len() > MAX_MESSAGE_LEN {
            return Err(SaslError::malformed("client-final message too long"));
        }
        self.state = ClientState::SentFinal {
            server_signature,
            keys,
        };
        Ok(client_final)
    }

    /// Checks a server-final message against the expected signature.
    fn check_server_final(expected: &[u8], msg: &[u8]) -> Result<(), SaslError> {
        let text = message_text(msg)?;
        let attrs = parse_attrs(text)?;
        match attrs.first() {
            Some((b'e', v)) => Err(server_error_condition(v)),
            Some((b'v', v)) => match decode_key(v) {
                Err(()) => Err(SaslError::malformed("server-final: bad base64 in v=")),
                Ok(Some(got)) if common::ct_eq(&got, expected) => Ok(()),
                Ok(_) => Err(SaslError::not_authorized(
                    "server-final: wrong server signature",
                )),
            },
            _ => Err(SaslError::malformed("server-final: v= or e= expected")),
        }
    }
}

impl ClientMechanism for ScramClient {
    fn security(&self) -> ExchangeSecurity {
        ExchangeSecurity {
            channel_binding: Some(self.cb_use),
            downgrade_protection: self.ssdp_checked,
            ..ExchangeSecurity::default()
        }
    }

    fn name(&self) -> &str {
        self.name
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        self.guard(|c| match c.state {
            ClientState::Initial => {
                c.state = ClientState::SentFirst;
                Ok(Some(c.client_first()))
            }
            _ => Err(SaslError::malformed("initial response already sent")),
        })
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        self.guard(|c| {
            match std::mem::replace(&mut c.state, ClientState::Failed(SaslError::malformed(""))) {
                // The server asked for the initial response with an empty
                // challenge (we sent an empty <auth/>).
                ClientState::Initial if challenge.is_empty() => {
                    c.state = ClientState::SentFirst;
                    Ok(c.client_first())
                }
                ClientState::SentFirst => c.handle_server_first(challenge),
                ClientState::SentFinal {
                    server_signature,
                    keys,
                } => {
                    Self::check_server_final(&server_signature, challenge)?;
                    c.state = ClientState::Verified {
                        server_signature,
                        keys,
                    };
                    Ok(Vec::new())
                }
                _ => Err(SaslError::malformed("unexpected challenge")),
            }
        })
    }

    fn success(&mut self, additional_data: Option<&[u8]>) -> Result<(), SaslError> {
        self.guard(|c| {
            let data = additional_data.filter(|d| !d.is_empty());
            match std::mem::replace(&mut c.state, ClientState::Failed(SaslError::malformed(""))) {
                ClientState::SentFinal {
                    server_signature,
                    keys,
                } => match data {
                    Some(d) => {
                        Self::check_server_final(&server_signature, d)?;
                        c.state = ClientState::Done(Some(keys));
                        Ok(())
                    }
                    None => Err(SaslError::not_authorized(
                        "success without the server signature",
                    )),
                },
                ClientState::Verified {
                    server_signature,
                    keys,
                } => {
                    // The signature came as a challenge; the success may
                    // repeat it, but nothing else.
                    if let Some(d) = data {
                        Self::check_server_final(&server_signature, d)?;
                    }
                    c.state = ClientState::Done(Some(keys));
                    Ok(())
                }
                ClientState::Initial | ClientState::SentFirst => Err(SaslError::not_authorized(
                    "success before the server proved itself",
                )),
                _ => Err(SaslError::malformed("unexpected success")),
            }
        })
    }

    fn derived_keys(&mut self) -> Option<ScramClientKeys> {
        match &mut self.state {
            // Handed over: once done, the exchange has no further use for
            // them (keys_for_cache then says None).
            ClientState::Done(keys) => keys.take(),
            _ => self.keys_for_cache(),
        }
    }
}

// ---------------------------------------------------------------------------
// Server.

/// Builds a [`ScramServer`]. Get one from [`ScramServer::builder`].
#[derive(Debug)]
pub struct ScramServerBuilder {
    hash: ScramHash,
    plus: bool,
    /// Whether the server offered any `-PLUS` mechanism.
    offers_any_plus: bool,
    /// The XEP-0474 digest of the offer.
    ssdp: Key,
    bindings: Vec<ChannelBinding>,
    downgrade_protection: bool,
    nonce: Option<String>,
    unknown_users: Option<UnknownUsers>,
}

impl ScramServerBuilder {
    /// Channel-binding data the host can provide on this connection; call
    /// once per type. A `-PLUS` server accepts exactly these types.
    pub fn channel_binding(mut self, binding: ChannelBinding) -> Self {
        self.bindings.retain(|b| b.kind != binding.kind);
        self.bindings.push(binding);
        self
    }

    /// Whether to send XEP-0474's `h=` in the server-first message
    /// (default: yes).
    pub fn downgrade_protection(mut self, enabled: bool) -> Self {
        self.downgrade_protection = enabled;
        self
    }

    /// Answers unknown users like known ones until the proof: when the
    /// host answers [`CredentialAnswer::Scram`]`(None)`, the server sends
    /// a server-first message with a salt derived from `secret` and the
    /// user name (see [`unknown_user_salt`]) and `iterations`, then fails
    /// the client-final message with `not-authorized`, as for a wrong
    /// password. Without this, an unknown user fails right after the
    /// client-first message, which tells a client which user names exist.
    ///
    /// `secret` must stay the same across connections (one per server,
    /// not per connection), or the salt of an unknown user changes from
    /// one login to the next while a known user's does not. `iterations`
    /// should be the count the host's stored credentials use.
    pub fn unknown_users(mut self, secret: &[u8], iterations: u32) -> Self {
        self.unknown_users = Some(UnknownUsers {
            secret: SecretBytes::new(secret),
            iterations,
        });
        self
    }

    /// Uses `suffix` as the server's part of the nonce instead of a random
    /// one. **Only for tests and transcript replays.** It must be RFC 5802
    /// `printable` (no `,`).
    pub fn nonce(mut self, suffix: impl Into<String>) -> Self {
        self.nonce = Some(suffix.into());
        self
    }

    /// Builds the server, drawing its nonce from `rng`. Fails when a
    /// `-PLUS` server has no channel-binding data or the
    /// [`unknown_users`](Self::unknown_users) secret is empty or their
    /// iteration count 0 (`temporary-auth-failure`), or the fixed nonce is
    /// not printable (`malformed-request`).
    pub fn build(self, rng: &mut dyn RandomSource) -> Result<ScramServer, SaslError> {
        if self.plus && self.bindings.is_empty() {
            return Err(SaslError::new(
                SaslCondition::TemporaryAuthFailure,
                "a -PLUS mechanism needs channel-binding data",
            ));
        }
        if let Some(u) = &self.unknown_users {
            if u.secret.expose().is_empty() || u.iterations == 0 {
                return Err(SaslError::new(
                    SaslCondition::TemporaryAuthFailure,
                    "the unknown-user secret is empty or its iteration count 0",
                ));
            }
        }
        let nonce = match self.nonce {
            Some(n) if is_valid_nonce(&n) => n,
            Some(_) => return Err(SaslError::malformed("the fixed nonce is not printable")),
            None => printable_token(rng, NONCE_LEN),
        };
        let ssdp = self.downgrade_protection.then_some(self.ssdp);
        Ok(ScramServer {
            hash: self.hash,
            plus: self.plus,
            server_supports_binding: self.offers_any_plus,
            bindings: self.bindings,
            ssdp,
            nonce,
            state: ServerState::Initial,
            cb_use: None,
            unknown_users: self.unknown_users,
        })
    }
}

/// The length of the salt of an unknown user, in bytes: 128 bits, the
/// length `examples/server.rs` draws for its users (a host whose salts
/// have another length shows its unknown users by the length).
pub const UNKNOWN_USER_SALT_LEN: usize = 16;

/// The salt a [`ScramServer`] built with
/// [`ScramServerBuilder::unknown_users`] sends for an unknown user:
/// HMAC-SHA-256 keyed with `secret` over the mechanism family's name
/// (`SCRAM-SHA-1`, `SCRAM-SHA-256`, `SCRAM-SHA-512`), a zero byte and the
/// SASLprep'd user name, truncated to [`UNKNOWN_USER_SALT_LEN`] bytes.
/// Stable per user and family for one secret; hosts that draw a salt per
/// user and family (as `examples/server.rs` does) show different salts
/// for each family too.
pub fn unknown_user_salt(
    secret: &[u8],
    hash: ScramHash,
    username: &str,
) -> [u8; UNKNOWN_USER_SALT_LEN] {
    let mut mac =
        <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(mechanism_name(hash, false).as_bytes());
    mac.update(&[0]);
    mac.update(username.as_bytes());
    let mut salt = [0; UNKNOWN_USER_SALT_LEN];
    salt.copy_from_slice(&mac.finalize().into_bytes()[..UNKNOWN_USER_SALT_LEN]);
    salt
}

/// How a server answers unknown users (see
/// [`ScramServerBuilder::unknown_users`]).
#[derive(Debug)]
struct UnknownUsers {
    secret: SecretBytes,
    iterations: u32,
}

impl UnknownUsers {
    /// Credentials of the right shape that no proof matches (the exchange
    /// is failed at the proof regardless): the derived salt, the
    /// configured count, all-zero keys (`StoredKey` would need a
    /// `ClientKey` that hashes to zero).
    fn credentials(&self, hash: ScramHash, username: &str) -> ScramCredentials {
        let len = output_len(hash);
        ScramCredentials {
            salt: unknown_user_salt(self.secret.expose(), hash, username).to_vec(),
            iterations: self.iterations,
            stored_key: SecretBytes::new(vec![0; len]),
            server_key: SecretBytes::new(vec![0; len]),
        }
    }
}

/// What the server learnt from the client-first message.
struct ClientFirst {
    /// The message: the gs2 header (`gs2_len` bytes), then
    /// client-first-bare.
    message: String,
    gs2_len: usize,
    /// Where the client nonce is in `message`.
    nonce: std::ops::Range<usize>,
    cb_use: ChannelBindingUse,
    cb_data: Option<SecretBytes>,
    username: String,
    authzid: Option<String>,
}

impl ClientFirst {
    fn gs2_header(&self) -> &str {
        &self.message[..self.gs2_len]
    }

    fn bare(&self) -> &str {
        &self.message[self.gs2_len..]
    }
}

/// What the server needs to check the client-final message.
struct PendingFinal {
    first: ClientFirst,
    /// `client-first-bare,server-first-message,`: the AuthMessage up to
    /// the client's final message (hashed after it, not appended).
    auth_message: Vec<u8>,
    /// Where the combined nonce is in `auth_message`.
    nonce: std::ops::Range<usize>,
    stored_key: SecretBytes,
    server_key: SecretBytes,
    /// Whether the host knew the user; an unknown user's proof is checked
    /// like any other and then refused.
    known: bool,
}

enum ServerState {
    Initial,
    AwaitingClientFirst,
    AwaitingCredentials(ClientFirst),
    AwaitingClientFinal(PendingFinal),
    Done,
    Failed(SaslError),
}

impl ServerState {
    fn name(&self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::AwaitingClientFirst => "awaiting-client-first",
            Self::AwaitingCredentials(_) => "awaiting-credentials",
            Self::AwaitingClientFinal(_) => "awaiting-client-final",
            Self::Done => "done",
            Self::Failed(_) => "failed",
        }
    }
}

/// The server side of SCRAM-SHA-1/256/512[-PLUS]. Build it with
/// [`ScramServer::builder`]; drive it through [`ServerMechanism`]. One
/// instance serves one exchange (its nonce is drawn at construction).
///
/// The exchange: [`start`](ServerMechanism::start) with the client-first
/// message returns [`ServerStep::Request`] with
/// [`CredentialRequest::Scram`]; [`answer`](ServerMechanism::answer) with
/// [`CredentialAnswer::Scram`] returns the server-first challenge;
/// [`respond`](ServerMechanism::respond) with the client-final message
/// returns [`ServerStep::Success`] whose additional data is the
/// server-final message (`v=...`). Answering `Scram(None)` (unknown user)
/// fails with `not-authorized`: at the proof, like a wrong password, when
/// the server was built with [`ScramServerBuilder::unknown_users`], else
/// at once; a [`CredentialAnswer::Verdict`] with an
/// error fails with that condition (`account-disabled`,
/// `invalid-authzid`, ...). By answering with credentials, the host accepts
/// the requested authzid.
pub struct ScramServer {
    hash: ScramHash,
    plus: bool,
    server_supports_binding: bool,
    bindings: Vec<ChannelBinding>,
    ssdp: Option<Key>,
    nonce: String,
    state: ServerState,
    /// The client's gs2 flag, once its first message was accepted.
    cb_use: Option<ChannelBindingUse>,
    unknown_users: Option<UnknownUsers>,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer")
            .field("mechanism", &mechanism_name(self.hash, self.plus))
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl ScramServer {
    /// Starts building the server side of `mechanism_name(hash, plus)`,
    /// given everything the server advertised: a server that offered a
    /// `-PLUS` mechanism rejects the gs2 flag `y`, and the offer is what
    /// XEP-0474's `h=` covers.
    pub fn builder(hash: ScramHash, plus: bool, offer: &ServerOffer) -> ScramServerBuilder {
        ScramServerBuilder {
            hash,
            plus,
            offers_any_plus: offer.offers_scram_plus(),
            ssdp: offer.downgrade_protection_digest(hash),
            bindings: Vec::new(),
            downgrade_protection: true,
            nonce: None,
            unknown_users: None,
        }
    }

    fn guard(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<ServerStep, SaslError>,
    ) -> Result<ServerStep, SaslError> {
        if let ServerState::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let r = f(self);
        if let Err(e) = &r {
            self.state = ServerState::Failed(e.clone());
        }
        r
    }

    fn parse_client_first(&self, msg: &[u8]) -> Result<ClientFirst, SaslError> {
        let text = message_text(msg)?;
        let gs2 = common::split_gs2_header(msg)
            .map_err(|_| SaslError::malformed("client-first: no gs2 header"))?;
        // The commas are ASCII: both halves are still UTF-8.
        let bare = &text[gs2.len..];

        let (cb_use, cb_data) = match Gs2CbFlag::parse(gs2.cb_flag) {
            Some(Gs2CbFlag::NotSupported | Gs2CbFlag::SupportedNotUsed) if self.plus => {
                return Err(SaslError::malformed(
                    "client-first: -PLUS mechanism without channel binding",
                ))
            }
            Some(Gs2CbFlag::NotSupported) => (ChannelBindingUse::NotSupported, None),
            Some(Gs2CbFlag::SupportedNotUsed) if self.server_supports_binding => {
                return Err(SaslError::malformed(
                    "client-first: gs2 flag y but the server offered -PLUS (downgrade)",
                ))
            }
            Some(Gs2CbFlag::SupportedNotUsed) => (ChannelBindingUse::SupportedNotUsed, None),
            Some(Gs2CbFlag::Binding(name)) => {
                if !self.plus {
                    return Err(SaslError::malformed(
                        "client-first: channel binding with a non-PLUS mechanism",
                    ));
                }
                let kind = ChannelBindingType::from_name(&name);
                let binding = self.bindings.iter().find(|b| Some(b.kind) == kind).ok_or(
                    SaslError::malformed("client-first: unsupported channel-binding type"),
                )?;
                (
                    ChannelBindingUse::Bound(binding.kind),
                    Some(binding.data.clone()),
                )
            }
            None => return Err(SaslError::malformed("client-first: bad gs2 flag")),
        };

        // Stricter than OAUTHBEARER: a bad name is `invalid-authzid`.
        let authzid = common::parse_gs2_authzid(gs2.authzid).map_err(|e| match e {
            Gs2AuthzidError::Syntax => SaslError::malformed("client-first: bad gs2 authzid"),
            Gs2AuthzidError::Name(_) => SaslError::new(
                SaslCondition::InvalidAuthzid,
                "client-first: bad authzid encoding",
            ),
        })?;

        let attrs = parse_attrs(bare)?;
        if let Some((b'm', _)) = attrs.first() {
            return Err(SaslError::malformed(
                "client-first: unsupported mandatory extension",
            ));
        }
        let username = expect_attr(attrs, 0, b'n', "client-first: n= expected first")?;
        let escaped_name_len = username.len();
        let client_nonce = expect_attr(attrs, 1, b'r', "client-first: r= expected second")?;
        if attrs.iter().skip(2).any(|(k, _)| k == b'm') {
            return Err(SaslError::malformed("client-first: misplaced m="));
        }
        let unescaped = common::gs2_unescape(username)
            .map_err(|_| SaslError::malformed("client-first: bad user name encoding"))?;
        // Kept as is when SASLprep changes nothing (no second copy).
        let prepared = match stringprep::saslprep(&unescaped) {
            Ok(std::borrow::Cow::Borrowed(_)) => None,
            Ok(std::borrow::Cow::Owned(p)) => Some(p),
            Err(_) => {
                return Err(SaslError::malformed(
                    "client-first: the user name fails SASLprep",
                ))
            }
        };
        let username = prepared.unwrap_or(unescaped);
        if username.is_empty() {
            return Err(SaslError::malformed("client-first: empty user name"));
        }
        if !is_valid_nonce(client_nonce) {
            return Err(SaslError::malformed("client-first: bad nonce"));
        }
        // bare is `n=<name>,r=<nonce>...`.
        let nonce_start = gs2.len + 2 + escaped_name_len + 3;
        Ok(ClientFirst {
            message: text.to_owned(),
            gs2_len: gs2.len,
            nonce: nonce_start..nonce_start + client_nonce.len(),
            cb_use,
            cb_data,
            username,
            authzid,
        })
    }

    fn handle_client_first(&mut self, msg: &[u8]) -> Result<ServerStep, SaslError> {
        let first = self.parse_client_first(msg)?;
        self.cb_use = Some(first.cb_use);
        let request = CredentialRequest::Scram {
            username: first.username.clone(),
            authzid: first.authzid.clone(),
            hash: self.hash,
        };
        self.state = ServerState::AwaitingCredentials(first);
        Ok(ServerStep::Request(request))
    }

    fn handle_answer(
        &mut self,
        first: ClientFirst,
        answer: CredentialAnswer,
    ) -> Result<ServerStep, SaslError> {
        let (creds, known) = match answer {
            CredentialAnswer::Scram(Some(c)) => (c, true),
            CredentialAnswer::Scram(None) => match &self.unknown_users {
                Some(u) => (u.credentials(self.hash, &first.username), false),
                None => return Err(SaslError::not_authorized("unknown user")),
            },
            CredentialAnswer::Verdict(Err(condition)) => {
                return Err(SaslError::new(condition, "refused by the host"))
            }
            _ => {
                return Err(SaslError::new(
                    SaslCondition::TemporaryAuthFailure,
                    "the host answered a SCRAM request with another kind of answer",
                ))
            }
        };
        let len = output_len(self.hash);
        if creds.salt.is_empty()
            || creds.iterations == 0
            || creds.stored_key.expose().len() != len
            || creds.server_key.expose().len() != len
        {
            return Err(SaslError::new(
                SaslCondition::TemporaryAuthFailure,
                "the stored SCRAM credentials are unusable for this hash",
            ));
        }
        // The AuthMessage, as far as the server knows it: bare,
        // server-first and a comma (the client's final message is hashed
        // after it).
        let bare = first.bare();
        let client_nonce = &first.message[first.nonce.clone()];
        let mut auth_message = Vec::with_capacity(
            bare.len()
                + 3
                + client_nonce.len()
                + self.nonce.len()
                + 3
                + 4 * creds.salt.len().div_ceil(3)
                + 3
                + 10
                + self
                    .ssdp
                    .as_ref()
                    .map_or(0, |h| 3 + 4 * h.len().div_ceil(3))
                + 1,
        );
        auth_message.extend_from_slice(bare.as_bytes());
        auth_message.push(b',');
        let server_first_start = auth_message.len();
        auth_message.extend_from_slice(b"r=");
        let nonce_start = auth_message.len();
        auth_message.extend_from_slice(client_nonce.as_bytes());
        auth_message.extend_from_slice(self.nonce.as_bytes());
        let nonce = nonce_start..auth_message.len();
        auth_message.extend_from_slice(b",s=");
        push_b64(&mut auth_message, &creds.salt);
        auth_message.extend_from_slice(b",i=");
        push_decimal(&mut auth_message, creds.iterations);
        if let Some(h) = &self.ssdp {
            auth_message.extend_from_slice(b",h=");
            push_b64(&mut auth_message, h);
        }
        let server_first = &auth_message[server_first_start..];
        if server_first.len() > MAX_MESSAGE_LEN {
            return Err(SaslError::new(
                SaslCondition::TemporaryAuthFailure,
                "the stored salt makes the server-first message too long",
            ));
        }
        let challenge = server_first.to_vec();
        auth_message.push(b',');
        self.state = ServerState::AwaitingClientFinal(PendingFinal {
            first,
            auth_message,
            nonce,
            stored_key: creds.stored_key,
            server_key: creds.server_key,
            known,
        });
        Ok(ServerStep::Challenge(challenge))
    }

    fn handle_client_final(
        &self,
        pending: PendingFinal,
        msg: &[u8],
    ) -> Result<ServerStep, SaslError> {
        let PendingFinal {
            first,
            auth_message,
            nonce,
            stored_key,
            server_key,
            known,
        } = pending;
        let text = message_text(msg)?;
        let attrs = parse_attrs(text)?;
        let channel_binding = expect_attr(attrs, 0, b'c', "client-final: c= expected first")?;
        let final_nonce = expect_attr(attrs, 1, b'r', "client-final: r= expected second")?;
        let last = attrs.len - 1;
        if last < 2 {
            return Err(SaslError::malformed("client-final: p= missing"));
        }
        let proof = expect_attr(attrs, last, b'p', "client-final: p= expected last")?;
        if attrs.range(2, last).any(|(k, _)| k == b'm') {
            return Err(SaslError::malformed(
                "client-final: unsupported mandatory extension",
            ));
        }
        let without_proof = &text[..text.len() - proof.len() - 3];

        // The gs2 header and the binding data.
        let (mut small, mut large) = (Zeroizing::new([0u8; 128]), Zeroizing::new(Vec::new()));
        let cbind = decode_b64(channel_binding, &mut small[..], &mut large)
            .ok_or(SaslError::malformed("client-final: bad base64 in c="))?;
        let cb_rest =
            cbind
                .strip_prefix(first.gs2_header().as_bytes())
                .ok_or(SaslError::malformed(
                    "client-final: c= does not repeat the gs2 header",
                ))?;
        let expected_cb = first.cb_data.as_ref().map(|d| d.expose()).unwrap_or(&[]);
        if !common::ct_eq(cb_rest, expected_cb) {
            return Err(SaslError::not_authorized(
                "client-final: channel-binding data does not match",
            ));
        }
        if final_nonce.as_bytes() != &auth_message[nonce] {
            return Err(SaslError::malformed("client-final: wrong nonce"));
        }
        let proof = match decode_key(proof) {
            Err(()) => return Err(SaslError::malformed("client-final: bad base64 in p=")),
            Ok(Some(p)) if p.len() == output_len(self.hash) => p,
            Ok(_) => return Err(SaslError::not_authorized("client-final: wrong proof")),
        };
        let auth_message: [&[u8]; 2] = [&auth_message, without_proof.as_bytes()];
        let client_signature = hmac_parts(self.hash, stored_key.expose(), &auth_message);
        let client_key = xor(&proof, &client_signature);
        // An unknown user gets here like a known one, and the same error.
        if !common::ct_eq(&h(self.hash, &client_key), stored_key.expose()) || !known {
            return Err(SaslError::not_authorized("client-final: wrong proof"));
        }
        let server_signature = hmac_parts(self.hash, server_key.expose(), &auth_message);
        let mut server_final = Vec::with_capacity(2 + 88);
        server_final.extend_from_slice(b"v=");
        push_b64(&mut server_final, &server_signature);
        Ok(ServerStep::Success {
            identity: Identity {
                username: first.username,
                authzid: first.authzid,
            },
            additional_data: Some(server_final),
        })
    }
}

impl ServerMechanism for ScramServer {
    fn security(&self) -> ExchangeSecurity {
        ExchangeSecurity {
            channel_binding: self.cb_use,
            downgrade_protection: self.ssdp.is_some(),
            ..ExchangeSecurity::default()
        }
    }

    fn name(&self) -> &str {
        mechanism_name(self.hash, self.plus)
    }

    fn start(&mut self, initial_response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        self.guard(|s| match (&s.state, initial_response) {
            (ServerState::Initial, Some(msg)) => s.handle_client_first(msg),
            (ServerState::Initial, None) => {
                s.state = ServerState::AwaitingClientFirst;
                Ok(ServerStep::Challenge(Vec::new()))
            }
            _ => Err(SaslError::malformed("exchange already started")),
        })
    }

    fn respond(&mut self, response: &[u8]) -> Result<ServerStep, SaslError> {
        self.guard(
            |s| match std::mem::replace(&mut s.state, ServerState::Done) {
                ServerState::AwaitingClientFirst => s.handle_client_first(response),
                ServerState::AwaitingClientFinal(pending) => {
                    s.handle_client_final(pending, response)
                }
                other => {
                    s.state = other;
                    Err(SaslError::malformed("unexpected response"))
                }
            },
        )
    }

    fn answer(&mut self, answer: CredentialAnswer) -> Result<ServerStep, SaslError> {
        self.guard(|s| {
            match std::mem::replace(&mut s.state, ServerState::Failed(SaslError::malformed(""))) {
                ServerState::AwaitingCredentials(first) => s.handle_answer(first, answer),
                other => {
                    s.state = other;
                    Err(SaslError::new(
                        SaslCondition::TemporaryAuthFailure,
                        "no credential request is pending",
                    ))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decoding_on_the_stack_or_the_heap() {
        for len in [0usize, 1, 2, 3, 8, 9, 10, 11, 12, 13, 200] {
            let data: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            let text = B64.encode(&data);
            let (mut small, mut large) = ([0u8; 9], Zeroizing::new(Vec::new()));
            assert_eq!(
                decode_b64(&text, &mut small, &mut large),
                Some(&data[..]),
                "{len}"
            );
            // Where it went: the stack buffer when the estimate fits.
            assert_eq!(large.is_empty(), text.len() <= 12, "{len}");
        }
        let (mut small, mut large) = ([0u8; 9], Zeroizing::new(Vec::new()));
        for bad in ["!!!!", "YQ", "YQ==YQ==", &"!".repeat(40)] {
            assert_eq!(decode_b64(bad, &mut small, &mut large), None, "{bad}");
        }
    }

    #[test]
    fn attribute_parsing_rejects_bad_shapes() {
        assert!(parse_attrs("r=x,s=y").is_ok());
        for s in ["", "a", ",", "a,", ",a", "a,,b", "ab,cd,ef"] {
            assert_eq!(
                split_commas(s).collect::<Vec<_>>(),
                s.split(',').collect::<Vec<_>>()
            );
        }
        for bad in ["", "r", "r=x,", ",r=x", "rr=x", "1=x", "r=x,r=y", "é=x"] {
            assert_eq!(
                parse_attrs(bad).unwrap_err().condition,
                SaslCondition::MalformedRequest,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn attributes_read_alike_split_once_or_again() {
        for n in 1..=9usize {
            let text: Vec<String> = (0..n)
                .map(|i| format!("{}=v{i}", char::from(b'a' + i as u8)))
                .collect();
            let text = text.join(",");
            let attrs = parse_attrs(&text).expect("distinct keys");
            let expected: Vec<(u8, String)> =
                (0..n).map(|i| (b'a' + i as u8, format!("v{i}"))).collect();
            let got: Vec<(u8, String)> = attrs.iter().map(|(k, v)| (k, v.to_owned())).collect();
            assert_eq!(got, expected, "{n}");
            for (i, (k, v)) in expected.iter().enumerate() {
                assert_eq!(attrs.get(i), Some((*k, v.as_str())), "{n} {i}");
            }
            assert_eq!(attrs.get(n), None);
            let mid: Vec<u8> = attrs
                .range(1, n.saturating_sub(1))
                .map(|(k, _)| k)
                .collect();
            assert_eq!(mid.len(), n.saturating_sub(2), "{n}");
        }
    }

    #[test]
    fn duplicate_keys_are_caught_over_the_whole_alphabet() {
        // Every key from `A` to `z` has its own bit: each repeats into an
        // error, and upper and lower case are different keys.
        for key in (b'A'..=b'Z').chain(b'a'..=b'z') {
            let k = char::from(key);
            assert!(parse_attrs(&format!("{k}=1")).is_ok(), "{k}");
            assert_eq!(
                parse_attrs(&format!("{k}=1,x=2,{k}=3"))
                    .unwrap_err()
                    .condition,
                SaslCondition::MalformedRequest,
                "{k}"
            );
        }
        let all: Vec<String> = (b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .map(|k| format!("{}=v", char::from(k)))
            .collect();
        let all = all.join(",");
        let attrs = parse_attrs(&all).expect("52 distinct keys");
        assert_eq!(attrs.len, 52);
        assert_eq!(attrs.get(51), Some((b'z', "v")));
        for bad in ["[=x", "`=x", "@=x", "{=x"] {
            assert!(parse_attrs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base64_and_decimals_are_written_in_place() {
        for len in 0..70usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 59 + 3) as u8).collect();
            let mut out = b"x=".to_vec();
            push_b64(&mut out, &data);
            assert_eq!(
                out,
                format!("x={}", B64.encode(&data)).into_bytes(),
                "{len}"
            );
        }
        for n in [0, 1, 9, 10, 99, 4096, 10_000_000, u32::MAX] {
            let mut out = b"i=".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("i={n}").into_bytes());
        }
    }

    #[test]
    fn hmac_over_parts_is_hmac_over_their_concatenation() {
        let parts: [&[u8]; 5] = [
            b"n=user,r=abc",
            b",",
            b"r=abcdef,s=c2FsdA==,i=4096",
            b",",
            b"",
        ];
        let joined = parts.concat();
        for hash in ALL_HASHES {
            assert_eq!(
                *hmac_parts(hash, b"key", &parts),
                *hmac(hash, b"key", &joined),
                "{hash:?}"
            );
        }
    }

    #[test]
    fn iteration_counts_follow_posit_number() {
        assert_eq!(parse_iterations("4096"), Some(4096));
        for bad in ["", "0", "0123", "+1", "-1", "1a", "4294967296"] {
            assert_eq!(parse_iterations(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mechanism_names_round_trip() {
        for hash in ALL_HASHES {
            for plus in [false, true] {
                assert_eq!(
                    parse_mechanism_name(mechanism_name(hash, plus)),
                    Some((hash, plus))
                );
            }
        }
        assert_eq!(parse_mechanism_name("SCRAM-SHA3-512"), None);
    }
}
