//! Non-SASL authentication, `jabber:iq:auth` (XEP-0078; seed 001, Jabber
//! 1.4): the plaintext, digest and zero-knowledge (jabberd 1.4
//! `mod_auth_0k`) methods, their elements and their hashes.

use minidom::Element;
use sha1::{Digest, Sha1};
use zeroize::Zeroizing;

use crate::ns;
use crate::sasl::Secret;
use crate::steps::{iq, LegacyError};

/// Lowercase hex SHA-1.
fn sha1_hex(data: &[u8]) -> String {
    let d = Sha1::digest(data);
    let mut s = String::with_capacity(40);
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The digest method's value: hex SHA-1 of the stream id followed by the
/// password (XEP-0078 section 3.2).
pub fn digest(stream_id: &str, password: &str) -> String {
    sha1_hex(format!("{stream_id}{password}").as_bytes())
}

/// The zero-knowledge value a client sends for `sequence` (seed 001's Perl
/// script): hex SHA-1 of the password, then hex SHA-1 of that followed by
/// the token, then hex SHA-1 applied `sequence` more times to the hex
/// string.
pub fn zero_k_hash(password: &str, token: &str, sequence: u32) -> String {
    let mut h = sha1_hex(password.as_bytes());
    h = sha1_hex(format!("{h}{token}").as_bytes());
    for _ in 0..sequence {
        h = sha1_hex(h.as_bytes());
    }
    h
}

/// What a server stores for zero-knowledge authentication instead of the
/// password: the token, the sequence number `n` and `zero_k_hash(pw,
/// token, n)`. It advertises `n - 1`; the client answers with the hash for
/// `n - 1`, which hashes once more to the stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroKState {
    /// The token.
    pub token: String,
    /// `n`.
    pub sequence: u32,
    /// `zero_k_hash(password, token, n)`.
    pub hash: String,
}

impl ZeroKState {
    /// The state for a new password (registration, password change or
    /// reset), usable `sequence` times.
    pub fn new(password: &str, token: impl Into<String>, sequence: u32) -> Self {
        let token = token.into();
        let hash = zero_k_hash(password, &token, sequence);
        Self {
            token,
            sequence,
            hash,
        }
    }

    /// The sequence number to advertise, `None` when used up (a reset is
    /// required).
    pub fn advertised(&self) -> Option<u32> {
        self.sequence.checked_sub(1)
    }

    /// Checks the client's value; on success the state steps down to it.
    pub fn verify(&mut self, client_hash: &str) -> bool {
        if self.advertised().is_none() {
            return false;
        }
        let ok = crate::sasl::common::ct_eq(
            sha1_hex(client_hash.to_ascii_lowercase().as_bytes()).as_bytes(),
            self.hash.as_bytes(),
        );
        if ok {
            self.hash = client_hash.to_ascii_lowercase();
            self.sequence -= 1;
        }
        ok
    }
}

/// The methods a server announces for a user (the result of the IQ-get).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthFields {
    /// The user name asked about.
    pub username: String,
    /// `<password/>`: plaintext accepted.
    pub password: bool,
    /// `<digest/>`: digest accepted.
    pub digest: bool,
    /// `<sequence/>` and `<token/>`: zero-knowledge accepted with these.
    pub zero_k: Option<(u32, String)>,
    /// `<resource/>`: a resource is required (always, in practice).
    pub resource: bool,
}

/// How a client proves who it is. Each value is a password equivalent (the
/// digest for this stream, the zero-knowledge hash for the next step of
/// the chain), so each is a [`Secret`]: zeroed on drop, redacted by
/// `Debug`, compared in constant time (`==` is [`Secret::ct_eq`]).
#[derive(Clone, PartialEq, Eq)]
pub enum LegacyCredential {
    /// `<password/>`: the plaintext password.
    Password(Secret),
    /// `<digest/>`: [`digest`]`(stream_id, password)`.
    Digest(Secret),
    /// `<hash/>` (zero-knowledge): [`zero_k_hash`].
    ZeroK(Secret),
}

impl LegacyCredential {
    /// The element name that carries it: `password`, `digest` or `hash`.
    pub fn element_name(&self) -> &'static str {
        match self {
            Self::Password(_) => "password",
            Self::Digest(_) => "digest",
            Self::ZeroK(_) => "hash",
        }
    }

    /// Checks the credential against what the host keeps for the account,
    /// as [`LegacyAuthRequest::Verify`](crate::server::LegacyAuthRequest::Verify)
    /// asks: the plaintext `password` for `<password/>`, and for
    /// `<digest/>` salted with this stream's id (hex compared without
    /// regard to case); the `zero_k` state for `<hash/>`, stepped down on
    /// success. All in constant time. A method the host has nothing for
    /// fails.
    pub fn verify(
        &self,
        stream_id: &str,
        password: Option<&str>,
        zero_k: Option<&mut ZeroKState>,
    ) -> bool {
        match (self, password, zero_k) {
            (Self::Password(sent), Some(p), _) => sent.ct_eq(p),
            (Self::Digest(sent), Some(p), _) => {
                let sent = zeroize::Zeroizing::new(sent.expose().to_ascii_lowercase());
                crate::sasl::common::ct_eq(sent.as_bytes(), digest(stream_id, p).as_bytes())
            }
            (Self::ZeroK(sent), _, Some(state)) => state.verify(sent.expose()),
            _ => false,
        }
    }

    /// The value sent. Handle with care.
    pub fn expose(&self) -> &str {
        match self {
            Self::Password(s) | Self::Digest(s) | Self::ZeroK(s) => s.expose(),
        }
    }
}

impl std::fmt::Debug for LegacyCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::Digest(_) => f.write_str("Digest(<redacted>)"),
            Self::ZeroK(_) => f.write_str("ZeroK(<redacted>)"),
        }
    }
}

/// A `jabber:iq:auth` query, as the server reads it.
#[derive(Debug, Clone)]
pub enum AuthQuery {
    /// The IQ-get: which methods for this user?
    Get {
        /// The IQ id.
        id: String,
        /// The user name, if given.
        username: Option<String>,
    },
    /// The IQ-set: authenticate.
    Set {
        /// The IQ id.
        id: String,
        /// `<username/>`.
        username: Option<String>,
        /// `<resource/>`.
        resource: Option<String>,
        /// The credential, if any was given.
        credential: Option<LegacyCredential>,
    },
}

fn child_text(q: &Element, n: &str) -> Option<String> {
    q.get_child(n, ns::IQ_AUTH)
        .map(|c| c.text().trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// [`child_text`] for a credential: the untrimmed copy is zeroed too.
fn child_secret(q: &Element, n: &str) -> Option<Secret> {
    let text = Zeroizing::new(q.get_child(n, ns::IQ_AUTH)?.text());
    Some(text.trim()).filter(|t| !t.is_empty()).map(Secret::new)
}

impl AuthQuery {
    /// Reads an IQ carrying a `jabber:iq:auth` query; `None` otherwise.
    pub fn parse(el: &Element) -> Option<Self> {
        if !el.is("iq", ns::JABBER_CLIENT) {
            return None;
        }
        let q = el.get_child("query", ns::IQ_AUTH)?;
        let id = el.attr("id").unwrap_or_default().to_owned();
        match el.attr("type") {
            Some("get") => Some(Self::Get {
                id,
                username: child_text(q, "username"),
            }),
            Some("set") => {
                let credential = if let Some(h) = child_secret(q, "hash") {
                    Some(LegacyCredential::ZeroK(h))
                } else if let Some(d) = child_secret(q, "digest") {
                    Some(LegacyCredential::Digest(d))
                } else {
                    child_secret(q, "password").map(LegacyCredential::Password)
                };
                Some(Self::Set {
                    id,
                    username: child_text(q, "username"),
                    resource: child_text(q, "resource"),
                    credential,
                })
            }
            _ => None,
        }
    }
}

fn query() -> Element {
    Element::builder("query", ns::IQ_AUTH).build()
}

fn text_child(n: &str, t: &str) -> Element {
    Element::builder(n, ns::IQ_AUTH).append(t).build()
}

/// The client's IQ-get for `username`.
pub fn get(id: &str, username: &str) -> Element {
    let mut q = query();
    q.append_child(text_child("username", username));
    iq("get", id).append(q).build()
}

/// The client's IQ-set.
pub fn set(id: &str, username: &str, resource: &str, credential: &LegacyCredential) -> Element {
    let mut q = query();
    q.append_child(text_child("username", username));
    q.append_child(text_child(credential.element_name(), credential.expose()));
    q.append_child(text_child("resource", resource));
    iq("set", id).append(q).build()
}

/// The server's answer to the IQ-get.
pub fn fields_result(id: &str, f: &AuthFields) -> Element {
    let mut q = query();
    q.append_child(text_child("username", &f.username));
    if f.password {
        q.append_child(Element::builder("password", ns::IQ_AUTH).build());
    }
    if f.digest {
        q.append_child(Element::builder("digest", ns::IQ_AUTH).build());
    }
    if let Some((seq, token)) = &f.zero_k {
        q.append_child(text_child("sequence", &seq.to_string()));
        q.append_child(text_child("token", token));
    }
    if f.resource {
        q.append_child(Element::builder("resource", ns::IQ_AUTH).build());
    }
    iq("result", id).append(q).build()
}

/// The client reads the server's answer to its IQ-get.
pub fn parse_fields(el: &Element) -> Result<AuthFields, LegacyError> {
    if el.attr("type") != Some("result") {
        return Err(LegacyError::from_iq(el));
    }
    let Some(q) = el.get_child("query", ns::IQ_AUTH) else {
        return Err(LegacyError::NOT_ACCEPTABLE);
    };
    let has = |n: &str| q.has_child(n, ns::IQ_AUTH);
    let zero_k = match (child_text(q, "sequence"), child_text(q, "token")) {
        (Some(s), Some(t)) => s.parse().ok().map(|s| (s, t)),
        _ => None,
    };
    Ok(AuthFields {
        username: child_text(q, "username").unwrap_or_default(),
        password: has("password"),
        digest: has("digest"),
        zero_k,
        resource: has("resource"),
    })
}

/// The server's empty result: authenticated, session established.
pub fn result(id: &str) -> Element {
    iq("result", id).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xep0078_digest_vector() {
        assert_eq!(
            digest("3EE948B0", "Calli0pe"),
            "48fc78be9ec8f86d8ce1c39c320c97c21d62334d"
        );
    }

    #[test]
    fn credentials_verify_against_what_the_host_keeps() {
        use crate::sasl::Secret;
        let sid = "3EE948B0";
        let right = digest(sid, "Calli0pe");
        let digest_of = |d: &str| LegacyCredential::Digest(Secret::new(d));
        assert!(digest_of(&right).verify(sid, Some("Calli0pe"), None));
        // Hex without regard to case (XEP-0078 clients differ).
        assert!(digest_of(&right.to_uppercase()).verify(sid, Some("Calli0pe"), None));
        assert!(!digest_of(&right).verify("other-id", Some("Calli0pe"), None));
        assert!(!digest_of(&right).verify(sid, Some("wrong"), None));
        assert!(!digest_of(&right).verify(sid, None, None));
        let plain = LegacyCredential::Password(Secret::new("Calli0pe"));
        assert!(plain.verify(sid, Some("Calli0pe"), None));
        assert!(!plain.verify(sid, Some("calli0pe"), None));
        // Zero-knowledge: the state steps down, so the same hash fails next.
        let mut state = ZeroKState::new("secret", "ABCDE", 401);
        let hash = LegacyCredential::ZeroK(Secret::new(zero_k_hash("secret", "ABCDE", 400)));
        assert!(!hash.verify(sid, Some("secret"), None));
        assert!(hash.verify(sid, None, Some(&mut state)));
        assert!(!hash.verify(sid, None, Some(&mut state)));
    }

    #[test]
    fn seed001_zero_k_vector() {
        assert_eq!(
            zero_k_hash("secret", "ABCDE", 400),
            "01945b9b2c3207c4cce5dc99e50605779f570077"
        );
    }

    #[test]
    fn zero_k_state_steps_down_and_needs_a_reset_at_zero() {
        let mut s = ZeroKState::new("secret", "ABCDE", 3);
        for n in (0..3).rev() {
            assert_eq!(s.advertised(), Some(n));
            assert!(!s.verify(&zero_k_hash("wrong", "ABCDE", n)));
            assert!(s.verify(&zero_k_hash("secret", "ABCDE", n)));
            // A replay of the same value fails.
            assert!(!s.verify(&zero_k_hash("secret", "ABCDE", n)));
        }
        assert_eq!(s.advertised(), None);
        assert!(!s.verify(&zero_k_hash("secret", "ABCDE", 0)));
    }
}
