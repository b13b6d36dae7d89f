//! DIGEST-MD5 (RFC 2831, as profiled by RFC 3920 and shown in seed 004).
//! Obsolete (RFC 6331) but still met on old servers; the selection policy
//! uses it only when the caller enables it.
//!
//! Supported: authentication only (`qop=auth`), `algorithm=md5-sess`,
//! `charset=utf-8`, `nc=00000001` (no subsequent authentication), the
//! server's proof `rspauth` (sent as a second challenge, which the client
//! answers with an empty response; a client also accepts it as the
//! additional data of `<success/>`).
//!
//! The exchange:
//!
//! ```text
//! S: realm="example.com",nonce="...",qop="auth",charset=utf-8,algorithm=md5-sess
//! C: username="alice",realm="example.com",nonce="...",cnonce="...",nc=00000001,
//!    qop=auth,digest-uri="xmpp/example.com",response=<32 hex>,charset=utf-8
//! S: rspauth=<32 hex>
//! C: (empty)
//! S: <success/>
//! ```
//!
//! **Parsing.** Directives are `name=value` or `name="quoted"` (backslash
//! escapes), separated by commas with optional linear white space around
//! them (so seed 004's `", qop"` and its trailing newline are fine); empty
//! list elements are skipped, directive names are case-insensitive, unknown
//! directives are ignored. A known directive given twice is
//! `malformed-request`, except `realm` in a challenge (RFC 2831 allows
//! several). Challenges are limited to 2048 bytes and responses to 4096
//! (RFC 2831 sections 2.1.1 and 2.1.2).
//!
//! **Realm.** The client uses the realm the server offers (the one equal
//! to the domain if it offers several and one matches, else the first);
//! when the server offers none, it uses the domain. The server offers its
//! domain as the realm unless configured otherwise
//! ([`DigestMd5Server::with_realms`]) and accepts only an offered realm
//! (or, when it offered none, no realm or the domain).
//!
//! **Hashing.** As RFC 2831 section 2.1.2.1 requires with `charset=utf-8`,
//! each of user name, realm and password is hashed in ISO 8859-1 when all
//! its characters fit, in UTF-8 otherwise ([`user_realm_password_hash`]
//! does exactly this, for hosts that store H(user:realm:password)). The
//! authzid is hashed in UTF-8. Nothing is SASLprep'd.
//!
//! **Host interaction (server).** After parsing the response the server
//! asks [`CredentialRequest::DigestMd5`] with the user name, the realm and
//! the authzid. The host answers [`CredentialAnswer::DigestMd5`] with the
//! stored password or H(user:realm:password); answering with a secret
//! approves the authzid, if any. `DigestMd5(None)` (unknown user) fails with
//! `not-authorized`; `Verdict(Err(condition))` refuses with that condition
//! (`invalid-authzid`, `account-disabled`, ...). The response is compared
//! in constant time.
//!
//! **Digest-URI.** `xmpp/<domain>` by default. The service part can be
//! changed ([`DigestMd5Client::with_service`],
//! [`DigestMd5Server::with_service`]) to reproduce RFC 2831's IMAP example.
//! The server also accepts the three-part form `xmpp/<host>/<domain>`.

use std::borrow::Cow;

use md5::{Digest, Md5};
use zeroize::Zeroizing;

use super::common;
use super::{
    ClientMechanism, CredentialAnswer, CredentialRequest, DigestMd5Secret, Identity, SaslError,
    Secret, SecretBytes, ServerMechanism, ServerStep,
};
use crate::random::{printable_token, RandomSource};

/// The mechanism name.
pub const NAME: &str = "DIGEST-MD5";

/// RFC 2831 section 2.1.1: a digest-challenge is under 2048 bytes.
const MAX_CHALLENGE_LEN: usize = 2047;
/// RFC 2831 section 2.1.2: a digest-response is under 4096 bytes.
const MAX_RESPONSE_LEN: usize = 4095;
/// The XMPP service name for the digest-uri (RFC 3920 section 6.1).
const DEFAULT_SERVICE: &str = "xmpp";
/// Length of generated nonces and cnonces (6 bits each).
const NONCE_LEN: usize = 24;
/// The only nonce count used: no subsequent authentication.
const NC: &str = "00000001";

// ---------------------------------------------------------------------------
// Directive lists.

/// One `name=value` pair, the value unquoted and unescaped.
struct Directive<'a> {
    name: &'a str,
    value: Cow<'a, str>,
}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Parses a comma-separated directive list (see the module docs).
fn parse_directives(text: &str) -> Result<Vec<Directive<'_>>, SaslError> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < b.len() && is_lws(b[i]) {
            i += 1;
        }
        if i == b.len() {
            return Ok(out);
        }
        if b[i] == b',' {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_name_byte(b[i]) {
            i += 1;
        }
        if start == i {
            return Err(SaslError::malformed("expected a directive name"));
        }
        let name = &text[start..i];
        while i < b.len() && is_lws(b[i]) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return Err(SaslError::malformed("expected '=' after a directive name"));
        }
        i += 1;
        while i < b.len() && is_lws(b[i]) {
            i += 1;
        }
        let value = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut value = String::new();
            loop {
                let Some(c) = text[i..].chars().next() else {
                    return Err(SaslError::malformed("unterminated quoted string"));
                };
                i += c.len_utf8();
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(e) = text[i..].chars().next() else {
                            return Err(SaslError::malformed("unterminated quoted string"));
                        };
                        i += e.len_utf8();
                        value.push(e);
                    }
                    '\t' => value.push(c),
                    c if c.is_ascii_control() => {
                        return Err(SaslError::malformed("control character in a quoted string"))
                    }
                    c => value.push(c),
                }
            }
            Cow::Owned(value)
        } else {
            let start = i;
            while i < b.len() && b[i] > b' ' && !matches!(b[i], b',' | b'"' | 0x7f) {
                i += 1;
            }
            if start == i {
                return Err(SaslError::malformed("empty directive value"));
            }
            Cow::Borrowed(&text[start..i])
        };
        out.push(Directive { name, value });
        while i < b.len() && is_lws(b[i]) {
            i += 1;
        }
        match b.get(i) {
            None => return Ok(out),
            Some(b',') => i += 1,
            Some(_) => return Err(SaslError::malformed("expected ',' between directives")),
        }
    }
}

/// Stores `value` in `slot`, refusing a second one.
fn once<'a>(slot: &mut Option<Cow<'a, str>>, value: Cow<'a, str>) -> Result<(), SaslError> {
    if slot.replace(value).is_some() {
        Err(SaslError::malformed("duplicate directive"))
    } else {
        Ok(())
    }
}

/// Appends `"value"`, escaping `"`, `\` and ASCII control characters.
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' || c.is_ascii_control() {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// `32LHEX`: 32 lowercase hexadecimal digits.
fn is_lhex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

// ---------------------------------------------------------------------------
// Hashing.

/// `s` in ISO 8859-1 when every character fits, else in UTF-8 (RFC 2831
/// section 2.1.2.1).
fn hash_form(s: &str) -> Cow<'_, [u8]> {
    if s.is_ascii() || s.chars().any(|c| c as u32 > 0xff) {
        Cow::Borrowed(s.as_bytes())
    } else {
        Cow::Owned(s.chars().map(|c| c as u8).collect())
    }
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// H(username ":" realm ":" password), the 16 bytes a server may store
/// instead of the password ([`DigestMd5Secret::UserRealmPasswordHash`]).
/// Each string is hashed in ISO 8859-1 when all its characters fit, in
/// UTF-8 otherwise, as the mechanism does.
pub fn user_realm_password_hash(username: &str, realm: &str, password: &str) -> SecretBytes {
    let password = Zeroizing::new(hash_form(password).into_owned());
    let urp = Zeroizing::new(md5(&[
        &hash_form(username),
        b":",
        &hash_form(realm),
        b":",
        &password,
    ]));
    SecretBytes::new(urp.to_vec())
}

/// What goes into the response-value computation besides H(user:realm:pw).
struct Inputs<'a> {
    nonce: &'a str,
    cnonce: &'a str,
    authzid: Option<&'a str>,
    digest_uri: &'a str,
}

/// The hex response-value (`a2_prefix = "AUTHENTICATE"`) or rspauth
/// (`a2_prefix = ""`) of RFC 2831 section 2.1.2.1, for qop=auth.
fn response_value(urp: &[u8], inputs: &Inputs<'_>, a2_prefix: &str) -> String {
    let mut a1 = Zeroizing::new(Vec::with_capacity(64));
    a1.extend_from_slice(urp);
    a1.extend_from_slice(b":");
    a1.extend_from_slice(inputs.nonce.as_bytes());
    a1.extend_from_slice(b":");
    a1.extend_from_slice(inputs.cnonce.as_bytes());
    if let Some(a) = inputs.authzid {
        a1.extend_from_slice(b":");
        a1.extend_from_slice(a.as_bytes());
    }
    let ha1_raw = Zeroizing::new(md5(&[&a1]));
    let ha1 = Zeroizing::new(hex(ha1_raw.as_slice()));
    let ha2 = hex(&md5(&[
        a2_prefix.as_bytes(),
        b":",
        inputs.digest_uri.as_bytes(),
    ]));
    hex(&md5(&[
        ha1.as_bytes(),
        b":",
        inputs.nonce.as_bytes(),
        b":",
        NC.as_bytes(),
        b":",
        inputs.cnonce.as_bytes(),
        b":auth:",
        ha2.as_bytes(),
    ]))
}

/// Constant-time comparison of two hex strings.
fn hex_eq(expected: &str, received: &str) -> bool {
    super::common::ct_eq(expected.as_bytes(), received.as_bytes())
}

// ---------------------------------------------------------------------------
// Client.

/// Client side of DIGEST-MD5.
#[derive(Debug)]
pub struct DigestMd5Client {
    username: String,
    password: Secret,
    domain: String,
    service: String,
    authzid: Option<String>,
    cnonce: String,
    state: ClientState,
}

#[derive(Debug)]
enum ClientState {
    Ready,
    AwaitingChallenge,
    AwaitingRspauth { expected: String },
    Verified { expected: String },
    Done,
}

/// The parts of a digest-challenge the client uses.
struct Challenge {
    realms: Vec<String>,
    nonce: String,
}

fn parse_challenge(challenge: &[u8]) -> Result<Challenge, SaslError> {
    if challenge.len() > MAX_CHALLENGE_LEN {
        return Err(SaslError::malformed("challenge too long"));
    }
    let text = common::utf8(challenge, "challenge is not UTF-8")?;
    let mut realms = Vec::new();
    let (mut nonce, mut qop, mut charset, mut algorithm) = (None, None, None, None);
    let (mut maxbuf, mut stale, mut cipher) = (None, None, None);
    for d in parse_directives(text)? {
        let slot = match d.name.to_ascii_lowercase().as_str() {
            "realm" => {
                realms.push(d.value.into_owned());
                continue;
            }
            "nonce" => &mut nonce,
            "qop" => &mut qop,
            "charset" => &mut charset,
            "algorithm" => &mut algorithm,
            "maxbuf" => &mut maxbuf,
            "stale" => &mut stale,
            "cipher" => &mut cipher,
            _ => continue,
        };
        once(slot, d.value)?;
    }
    let nonce = nonce
        .filter(|n| !n.is_empty())
        .ok_or(SaslError::malformed("challenge without nonce"))?;
    if !algorithm.is_some_and(|a| a.eq_ignore_ascii_case("md5-sess")) {
        return Err(SaslError::malformed("challenge without algorithm=md5-sess"));
    }
    if charset.is_some_and(|c| !c.eq_ignore_ascii_case("utf-8")) {
        return Err(SaslError::malformed("unknown charset"));
    }
    if let Some(qop) = qop {
        if !qop
            .split(',')
            .any(|o| o.trim_matches(|c: char| c.is_ascii_whitespace()) == "auth")
        {
            return Err(SaslError::malformed("the server does not offer qop=auth"));
        }
    }
    Ok(Challenge {
        realms,
        nonce: nonce.into_owned(),
    })
}

impl DigestMd5Client {
    /// Logs in as `username` (the localpart) with `password` to the server
    /// of `domain`. The cnonce comes from `rng`.
    pub fn new(
        username: impl Into<String>,
        password: impl Into<Secret>,
        domain: impl Into<String>,
        rng: &mut dyn RandomSource,
    ) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            domain: domain.into(),
            service: DEFAULT_SERVICE.to_owned(),
            authzid: None,
            cnonce: printable_token(rng, NONCE_LEN),
            state: ClientState::Ready,
        }
    }

    /// Asks to act as `authzid` (a bare JID). Empty means none.
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        let a = authzid.into();
        self.authzid = (!a.is_empty()).then_some(a);
        self
    }

    /// The service part of the digest-uri: `xmpp` unless changed. Another
    /// value is only useful to reproduce RFC 2831's IMAP example.
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// Replaces the random cnonce: only to reproduce published test
    /// vectors. A fixed cnonce in real use weakens the mechanism further.
    pub fn with_cnonce(mut self, cnonce: impl Into<String>) -> Self {
        self.cnonce = cnonce.into();
        self
    }

    fn answer_challenge(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let ch = parse_challenge(challenge)?;
        let realm = ch
            .realms
            .iter()
            .find(|r| r.eq_ignore_ascii_case(&self.domain))
            .or(ch.realms.first())
            .cloned()
            .unwrap_or_else(|| self.domain.clone());
        let digest_uri = format!("{}/{}", self.service, self.domain);
        let urp = user_realm_password_hash(&self.username, &realm, self.password.expose());
        let inputs = Inputs {
            nonce: &ch.nonce,
            cnonce: &self.cnonce,
            authzid: self.authzid.as_deref(),
            digest_uri: &digest_uri,
        };
        let response = response_value(urp.expose(), &inputs, "AUTHENTICATE");
        let expected = response_value(urp.expose(), &inputs, "");

        let mut out = String::from("username=");
        push_quoted(&mut out, &self.username);
        out.push_str(",realm=");
        push_quoted(&mut out, &realm);
        out.push_str(",nonce=");
        push_quoted(&mut out, &ch.nonce);
        out.push_str(",cnonce=");
        push_quoted(&mut out, &self.cnonce);
        out.push_str(",nc=");
        out.push_str(NC);
        out.push_str(",qop=auth,digest-uri=");
        push_quoted(&mut out, &digest_uri);
        out.push_str(",response=");
        out.push_str(&response);
        out.push_str(",charset=utf-8");
        if let Some(a) = &self.authzid {
            out.push_str(",authzid=");
            push_quoted(&mut out, a);
        }
        if out.len() > MAX_RESPONSE_LEN {
            return Err(SaslError::malformed("response too long"));
        }
        self.state = ClientState::AwaitingRspauth { expected };
        Ok(out.into_bytes())
    }
}

/// Checks `rspauth=<hex>` against `expected`.
fn check_rspauth(data: &[u8], expected: &str) -> Result<(), SaslError> {
    if data.len() > MAX_CHALLENGE_LEN {
        return Err(SaslError::malformed("rspauth challenge too long"));
    }
    let text = common::utf8(data, "rspauth challenge is not UTF-8")?;
    let mut rspauth = None;
    for d in parse_directives(text)? {
        if d.name.eq_ignore_ascii_case("rspauth") {
            once(&mut rspauth, d.value)?;
        }
    }
    let rspauth = rspauth.ok_or(SaslError::malformed("no rspauth"))?;
    if !is_lhex32(&rspauth) {
        return Err(SaslError::malformed(
            "rspauth is not 32 lowercase hex digits",
        ));
    }
    if hex_eq(expected, &rspauth) {
        Ok(())
    } else {
        Err(SaslError::not_authorized("the server's rspauth is wrong"))
    }
}

impl ClientMechanism for DigestMd5Client {
    fn name(&self) -> &str {
        NAME
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        match std::mem::replace(&mut self.state, ClientState::Done) {
            ClientState::Ready => {
                self.state = ClientState::AwaitingChallenge;
                Ok(None)
            }
            _ => Err(common::out_of_order()),
        }
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        match std::mem::replace(&mut self.state, ClientState::Done) {
            ClientState::Ready | ClientState::AwaitingChallenge => self.answer_challenge(challenge),
            ClientState::AwaitingRspauth { expected } => {
                check_rspauth(challenge, &expected)?;
                self.state = ClientState::Verified { expected };
                Ok(Vec::new())
            }
            _ => Err(common::out_of_order()),
        }
    }

    fn success(&mut self, additional_data: Option<&[u8]>) -> Result<(), SaslError> {
        match (
            std::mem::replace(&mut self.state, ClientState::Done),
            additional_data,
        ) {
            (ClientState::Verified { .. }, None | Some([])) => Ok(()),
            (ClientState::AwaitingRspauth { .. }, None | Some([])) => Err(
                SaslError::not_authorized("success without the server's rspauth"),
            ),
            (
                ClientState::Verified { expected } | ClientState::AwaitingRspauth { expected },
                Some(data),
            ) => check_rspauth(data, &expected),
            _ => Err(common::out_of_order()),
        }
    }
}

// ---------------------------------------------------------------------------
// Server.

/// Server side of DIGEST-MD5 (see the module docs for the host's answer).
#[derive(Debug)]
pub struct DigestMd5Server {
    domain: String,
    service: String,
    realms: Vec<String>,
    nonce: String,
    state: ServerState,
}

#[derive(Debug)]
enum ServerState {
    Fresh,
    AwaitingResponse,
    AwaitingAnswer(Box<Pending>),
    AwaitingEmpty(Identity),
    Done,
}

/// A parsed, checked response waiting for the host's secret.
#[derive(Debug)]
struct Pending {
    username: String,
    realm: String,
    authzid: Option<String>,
    cnonce: String,
    digest_uri: String,
    response: String,
}

impl DigestMd5Server {
    /// Serves `domain`, offering it as the realm. The nonce comes from
    /// `rng`.
    pub fn new(domain: impl Into<String>, rng: &mut dyn RandomSource) -> Self {
        let domain = domain.into();
        Self {
            realms: vec![domain.clone()],
            domain,
            service: DEFAULT_SERVICE.to_owned(),
            nonce: printable_token(rng, NONCE_LEN),
            state: ServerState::Fresh,
        }
    }

    /// Offers these realms instead of the domain (none at all when empty:
    /// the client then sends no realm or the domain).
    pub fn with_realms<I, S>(mut self, realms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.realms = realms.into_iter().map(Into::into).collect();
        self
    }

    /// The service part of the expected digest-uri: `xmpp` unless changed.
    /// Another value is only useful to reproduce RFC 2831's IMAP example.
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// Replaces the random nonce: only to reproduce published test vectors
    /// and transcripts. Never in real use.
    pub fn with_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = nonce.into();
        self
    }

    fn challenge(&self) -> Vec<u8> {
        let mut out = String::new();
        for realm in &self.realms {
            out.push_str("realm=");
            push_quoted(&mut out, realm);
            out.push(',');
        }
        out.push_str("nonce=");
        push_quoted(&mut out, &self.nonce);
        out.push_str(",qop=\"auth\",charset=utf-8,algorithm=md5-sess");
        out.into_bytes()
    }

    /// Whether `uri` is `service/domain` or `service/host/domain`.
    fn digest_uri_ok(&self, uri: &str) -> bool {
        let mut parts = uri.split('/');
        let (Some(service), Some(second), third, None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let serv_name = third.unwrap_or(second);
        service.eq_ignore_ascii_case(&self.service)
            && !second.is_empty()
            && serv_name.eq_ignore_ascii_case(&self.domain)
    }

    fn parse_response(&self, response: &[u8]) -> Result<Pending, SaslError> {
        if response.len() > MAX_RESPONSE_LEN {
            return Err(SaslError::malformed("response too long"));
        }
        let text = common::utf8(response, "response is not UTF-8")?;
        let (mut username, mut realm, mut nonce, mut cnonce) = (None, None, None, None);
        let (mut nc, mut qop, mut digest_uri, mut resp) = (None, None, None, None);
        let (mut maxbuf, mut charset, mut cipher, mut authzid) = (None, None, None, None);
        for d in parse_directives(text)? {
            let slot = match d.name.to_ascii_lowercase().as_str() {
                "username" => &mut username,
                "realm" => &mut realm,
                "nonce" => &mut nonce,
                "cnonce" => &mut cnonce,
                "nc" => &mut nc,
                "qop" => &mut qop,
                "digest-uri" => &mut digest_uri,
                "response" => &mut resp,
                "maxbuf" => &mut maxbuf,
                "charset" => &mut charset,
                "cipher" => &mut cipher,
                "authzid" => &mut authzid,
                _ => continue,
            };
            once(slot, d.value)?;
        }
        let missing = |what| SaslError::malformed(what);
        let username = username
            .filter(|u| !u.is_empty())
            .ok_or(missing("no username"))?;
        let nonce = nonce.ok_or(missing("no nonce"))?;
        let cnonce = cnonce
            .filter(|c| !c.is_empty())
            .ok_or(missing("no cnonce"))?;
        let nc = nc.ok_or(missing("no nc"))?;
        let digest_uri = digest_uri.ok_or(missing("no digest-uri"))?;
        let resp = resp.ok_or(missing("no response"))?;
        if !(nc.len() == 8 && nc.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(SaslError::malformed("nc is not 8 hex digits"));
        }
        if nc != NC {
            return Err(SaslError::malformed("nc must be 00000001"));
        }
        if qop.is_some_and(|q| !q.eq_ignore_ascii_case("auth")) {
            return Err(SaslError::malformed("only qop=auth is supported"));
        }
        if cipher.is_some() {
            return Err(SaslError::malformed("cipher without qop=auth-conf"));
        }
        if maxbuf.is_some_and(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_digit())) {
            return Err(SaslError::malformed("bad maxbuf"));
        }
        match &charset {
            Some(c) if !c.eq_ignore_ascii_case("utf-8") => {
                return Err(SaslError::malformed("unknown charset"))
            }
            // Without charset=utf-8 the strings would be ISO 8859-1, which
            // a UTF-8 text cannot tell apart: accept ASCII only.
            None if !(username.is_ascii()
                && realm.as_deref().is_none_or(str::is_ascii)
                && authzid.as_deref().is_none_or(str::is_ascii)) =>
            {
                return Err(SaslError::malformed("non-ASCII without charset=utf-8"))
            }
            _ => {}
        }
        if !is_lhex32(&resp) {
            return Err(SaslError::malformed(
                "response is not 32 lowercase hex digits",
            ));
        }
        if nonce != self.nonce.as_str() {
            return Err(SaslError::not_authorized("nonce mismatch"));
        }
        if !self.digest_uri_ok(&digest_uri) {
            return Err(SaslError::not_authorized(
                "digest-uri names another service",
            ));
        }
        let realm = match realm {
            Some(r) if self.realms.iter().any(|o| *o == r) => r.into_owned(),
            Some(r) if self.realms.is_empty() && r.eq_ignore_ascii_case(&self.domain) => {
                r.into_owned()
            }
            Some(_) => return Err(SaslError::not_authorized("realm not offered")),
            None if self.realms.is_empty() => String::new(),
            None => return Err(SaslError::malformed("no realm")),
        };
        Ok(Pending {
            username: username.into_owned(),
            realm,
            authzid: authzid.filter(|a| !a.is_empty()).map(Cow::into_owned),
            cnonce: cnonce.into_owned(),
            digest_uri: digest_uri.into_owned(),
            response: resp.into_owned(),
        })
    }

    fn verify(
        &mut self,
        pending: Pending,
        answer: CredentialAnswer,
    ) -> Result<ServerStep, SaslError> {
        let urp = match answer {
            CredentialAnswer::DigestMd5(Some(DigestMd5Secret::Password(password))) => {
                user_realm_password_hash(&pending.username, &pending.realm, password.expose())
            }
            CredentialAnswer::DigestMd5(Some(DigestMd5Secret::UserRealmPasswordHash(h)))
                if h.expose().len() == 16 =>
            {
                h
            }
            CredentialAnswer::DigestMd5(Some(DigestMd5Secret::UserRealmPasswordHash(_))) => {
                return Err(SaslError::new(
                    super::SaslCondition::TemporaryAuthFailure,
                    "stored H(user:realm:password) is not 16 bytes",
                ))
            }
            CredentialAnswer::DigestMd5(None) => {
                return Err(SaslError::not_authorized("unknown user"))
            }
            CredentialAnswer::Verdict(Err(condition)) => {
                return Err(SaslError::new(condition, "rejected by the host"))
            }
            _ => return Err(common::wrong_answer()),
        };
        let inputs = Inputs {
            nonce: &self.nonce,
            cnonce: &pending.cnonce,
            authzid: pending.authzid.as_deref(),
            digest_uri: &pending.digest_uri,
        };
        let expected = response_value(urp.expose(), &inputs, "AUTHENTICATE");
        if !hex_eq(&expected, &pending.response) {
            return Err(SaslError::not_authorized("wrong response"));
        }
        let rspauth = response_value(urp.expose(), &inputs, "");
        self.state =
            ServerState::AwaitingEmpty(common::identity(pending.username, pending.authzid));
        Ok(ServerStep::Challenge(
            format!("rspauth={rspauth}").into_bytes(),
        ))
    }
}

impl ServerMechanism for DigestMd5Server {
    fn name(&self) -> &str {
        NAME
    }

    /// DIGEST-MD5 starts with the server's challenge: an initial response
    /// is `malformed-request` (an empty one, `=`, is tolerated).
    fn start(&mut self, initial_response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, ServerState::Done) {
            ServerState::Fresh => match initial_response {
                None | Some([]) => {
                    self.state = ServerState::AwaitingResponse;
                    Ok(ServerStep::Challenge(self.challenge()))
                }
                Some(_) => Err(SaslError::malformed("DIGEST-MD5 has no initial response")),
            },
            _ => Err(common::out_of_order()),
        }
    }

    fn respond(&mut self, response: &[u8]) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, ServerState::Done) {
            ServerState::AwaitingResponse => {
                let p = self.parse_response(response)?;
                let request = CredentialRequest::DigestMd5 {
                    username: p.username.clone(),
                    realm: p.realm.clone(),
                    authzid: p.authzid.clone(),
                };
                self.state = ServerState::AwaitingAnswer(Box::new(p));
                Ok(ServerStep::Request(request))
            }
            ServerState::AwaitingEmpty(identity) if response.is_empty() => {
                Ok(ServerStep::Success {
                    identity,
                    additional_data: None,
                })
            }
            ServerState::AwaitingEmpty(_) => Err(SaslError::malformed(
                "expected an empty response after rspauth",
            )),
            _ => Err(common::out_of_order()),
        }
    }

    fn answer(&mut self, answer: CredentialAnswer) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, ServerState::Done) {
            ServerState::AwaitingAnswer(pending) => self.verify(*pending, answer),
            _ => Err(common::no_request_pending()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_lists() {
        let d = parse_directives(" a=1 ,, b = \"x\\\"y\\\\z\" ,\tc=\"\"\n").unwrap();
        let got: Vec<_> = d.iter().map(|d| (d.name, d.value.as_ref())).collect();
        assert_eq!(got, [("a", "1"), ("b", "x\"y\\z"), ("c", "")]);
        for bad in [
            "a",
            "a=",
            "=1",
            "a=\"x",
            "a=\"x\\",
            "a=1 b=2",
            "a=\"\u{1}\"",
            "a=1\"x\"",
        ] {
            assert!(parse_directives(bad).is_err(), "{bad:?}");
        }
        assert!(parse_directives("").unwrap().is_empty());
    }

    #[test]
    fn quoting_round_trips() {
        let mut s = String::from("v=");
        push_quoted(&mut s, "a\"b\\c\nd,e");
        let d = parse_directives(&s).unwrap();
        assert_eq!(d[0].value, "a\"b\\c\nd,e");
    }

    #[test]
    fn latin1_hash_form() {
        assert_eq!(hash_form("abc").as_ref(), b"abc");
        assert_eq!(hash_form("caf\u{e9}").as_ref(), b"caf\xe9");
        assert_eq!(
            hash_form("\u{e9}\u{4e2d}").as_ref(),
            "\u{e9}\u{4e2d}".as_bytes()
        );
    }
}
