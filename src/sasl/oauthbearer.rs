//! OAUTHBEARER (RFC 7628): an OAuth 2.0 bearer token (RFC 6750) in a
//! GS2-framed message.
//!
//! ```text
//! client-resp = gs2-header %x01 *(key "=" value %x01) %x01
//!             e.g. "n,a=user@example.com,\x01host=example.com\x01port=5222\x01auth=Bearer vF9dft4qmT\x01\x01"
//! ```
//!
//! On success the server sends `<success/>`. On failure it first sends a
//! JSON error as a challenge (`{"status":"invalid_token"}`), the client
//! answers with a single `%x01`, and the server then sends `<failure/>`.
//!
//! The GS2 header uses the shared escaping of `crate::sasl::common`
//! (`=2C` for `,`, `=3D` for `=`). OAUTHBEARER has no channel binding:
//! the client sends `n`; the server accepts `n` and `y` and refuses
//! `p=...` with `malformed-request`.
//!
//! **User name.** In XMPP the authzid (`a=`) is normally the bare JID of
//! the account. The server passes to the host, in
//! [`CredentialRequest::Token`]'s `username`, the part of the authzid
//! before its first `@` (the localpart), the whole authzid when it has no
//! `@`, or the empty string when the client sent no authzid (the host then
//! derives the user from the token). An authzid with an empty localpart
//! (`@example.com`) is `invalid-authzid`. The [`Identity`]'s `username` is
//! the one the host's verdict names; its `authzid` is the full `a=` value
//! unless that equals the user name, so a caller can check the domain of
//! `alice@example.com` against the stream's domain.
//!
//! Unknown keys are ignored (RFC 7628 section 3.1); `auth` is required,
//! `auth`, `host` and `port` may each appear once. The server exposes the
//! `host` and `port` it received ([`OAuthBearerServer::host`],
//! [`OAuthBearerServer::port`]). Messages over 16 KiB are
//! `malformed-request`.
//!
//! [`Identity`]: super::Identity

use super::common::{self, Gs2CbFlag};
use super::{
    ClientMechanism, CredentialAnswer, CredentialRequest, SaslCondition, SaslError, Secret,
    ServerMechanism, ServerStep,
};

/// The mechanism name.
pub const NAME: &str = "OAUTHBEARER";

const KVSEP: u8 = 0x01;

/// Whether `token` is an RFC 6750 `b64token`:
/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Whether `value` is a valid kvpair value: `*(VCHAR / SP / HTAB / CR / LF)`.
fn is_kv_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
}

/// Client side of OAUTHBEARER.
#[derive(Debug)]
pub struct OAuthBearerClient {
    token: Secret,
    authzid: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    state: ClientState,
    error: Option<ServerError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Ready,
    Sent,
    GotError,
    Done,
}

/// The JSON error a server sent (RFC 7628 section 3.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// `status` (`invalid_token`, `invalid_request`, `insufficient_scope`).
    pub status: String,
    /// `scope`, if given.
    pub scope: Option<String>,
    /// `openid-configuration`, if given: where to discover the
    /// authorization server.
    pub openid_configuration: Option<String>,
}

impl OAuthBearerClient {
    /// Authenticates with the bearer `token` (an RFC 6750 `b64token`:
    /// letters, digits, `-._~+/`, then optional `=` padding). Without an
    /// authzid the server derives the account from the token.
    pub fn new(token: impl Into<Secret>) -> Self {
        Self {
            token: token.into(),
            authzid: None,
            host: None,
            port: None,
            state: ClientState::Ready,
            error: None,
        }
    }

    /// Names the account to log in to; in XMPP its bare JID
    /// (`user@example.com`). Empty means none.
    pub fn with_authzid(mut self, authzid: impl Into<String>) -> Self {
        let a = authzid.into();
        self.authzid = (!a.is_empty()).then_some(a);
        self
    }

    /// Sends `host=` (the server's host name; RFC 7628 says SHOULD).
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Sends `port=`.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The JSON error the server sent before failing, if it did.
    pub fn server_error(&self) -> Option<&ServerError> {
        self.error.as_ref()
    }

    fn message(&self) -> Result<Vec<u8>, SaslError> {
        if self.authzid.as_deref().is_some_and(|a| a.contains('\0')) {
            return Err(SaslError::malformed("NUL in authzid"));
        }
        if !is_b64token(self.token.expose()) {
            return Err(SaslError::malformed(
                "the token is not an RFC 6750 b64token",
            ));
        }
        let mut out = common::build_gs2_header(&Gs2CbFlag::NotSupported, self.authzid.as_deref())
            .into_bytes();
        out.push(KVSEP);
        if let Some(host) = &self.host {
            if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(SaslError::malformed("bad host name"));
            }
            out.extend_from_slice(b"host=");
            out.extend_from_slice(host.as_bytes());
            out.push(KVSEP);
        }
        if let Some(port) = self.port {
            out.extend_from_slice(format!("port={port}").as_bytes());
            out.push(KVSEP);
        }
        out.extend_from_slice(b"auth=Bearer ");
        out.extend_from_slice(self.token.expose().as_bytes());
        out.push(KVSEP);
        out.push(KVSEP);
        common::check_len(&out, common::MAX_MESSAGE_LEN)?;
        Ok(out)
    }
}

impl ClientMechanism for OAuthBearerClient {
    fn name(&self) -> &str {
        NAME
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        if self.state != ClientState::Ready {
            self.state = ClientState::Done;
            return Err(common::out_of_order());
        }
        self.state = ClientState::Done;
        let m = self.message()?;
        self.state = ClientState::Sent;
        Ok(Some(m))
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        match std::mem::replace(&mut self.state, ClientState::Done) {
            // The server wants the initial response as a response.
            ClientState::Ready if challenge.is_empty() => {
                let m = self.message()?;
                self.state = ClientState::Sent;
                Ok(m)
            }
            ClientState::Sent => {
                self.error = Some(parse_server_error(challenge)?);
                self.state = ClientState::GotError;
                Ok(vec![KVSEP])
            }
            _ => Err(common::out_of_order()),
        }
    }

    fn success(&mut self, additional_data: Option<&[u8]>) -> Result<(), SaslError> {
        match std::mem::replace(&mut self.state, ClientState::Done) {
            ClientState::Sent => match additional_data {
                None | Some([]) => Ok(()),
                Some(_) => Err(SaslError::malformed(
                    "unexpected additional data in success",
                )),
            },
            ClientState::GotError => Err(SaslError::not_authorized(
                "the server reported an error, then success",
            )),
            _ => Err(common::out_of_order()),
        }
    }
}

fn parse_server_error(challenge: &[u8]) -> Result<ServerError, SaslError> {
    common::check_len(challenge, common::MAX_MESSAGE_LEN)?;
    let text = common::utf8(challenge, "error challenge is not UTF-8")?;
    let members = json::parse_object(text)
        .ok_or(SaslError::malformed("error challenge is not a JSON object"))?;
    let get = |key: &str| {
        members
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.clone())
    };
    let status = get("status").ok_or(SaslError::malformed("error challenge without status"))?;
    Ok(ServerError {
        status,
        scope: get("scope"),
        openid_configuration: get("openid-configuration"),
    })
}

/// Server side of OAUTHBEARER. Asks the host with
/// [`CredentialRequest::Token`] (`mechanism: "OAUTHBEARER"`; `username` as
/// described in the module docs); the host answers
/// [`CredentialAnswer::Verdict`]. On a refusal the server sends the JSON
/// error challenge, waits for the client's `%x01`, then fails with the
/// host's condition.
#[derive(Debug)]
pub struct OAuthBearerServer {
    state: ServerState,
    host: Option<String>,
    port: Option<u16>,
    scope: Option<String>,
    openid_configuration: Option<String>,
}

#[derive(Debug)]
enum ServerState {
    Fresh,
    AwaitingMessage,
    AwaitingAnswer { authzid: Option<String> },
    AwaitingKvsep { condition: SaslCondition },
    Done,
}

impl OAuthBearerServer {
    /// A fresh exchange.
    pub fn new() -> Self {
        Self {
            state: ServerState::Fresh,
            host: None,
            port: None,
            scope: None,
            openid_configuration: None,
        }
    }

    /// Adds `"scope"` to the JSON error challenge.
    pub fn with_error_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Adds `"openid-configuration"` (a discovery URL) to the JSON error
    /// challenge.
    pub fn with_openid_configuration(mut self, url: impl Into<String>) -> Self {
        self.openid_configuration = Some(url.into());
        self
    }

    /// The `host` value the client sent, once its message is parsed.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The `port` value the client sent, once its message is parsed.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    fn error_challenge(&self, condition: SaslCondition) -> Vec<u8> {
        let status = match condition {
            SaslCondition::MalformedRequest => "invalid_request",
            _ => "invalid_token",
        };
        let mut out = format!("{{\"status\":\"{status}\"");
        if let Some(scope) = &self.scope {
            out.push_str(",\"scope\":");
            json::push_string(&mut out, scope);
        }
        if let Some(url) = &self.openid_configuration {
            out.push_str(",\"openid-configuration\":");
            json::push_string(&mut out, url);
        }
        out.push('}');
        out.into_bytes()
    }

    fn consume(&mut self, message: &[u8]) -> Result<ServerStep, SaslError> {
        let parsed = parse_client_response(message)?;
        self.host = parsed.host;
        self.port = parsed.port;
        match parsed.token {
            Some(token) => {
                self.state = ServerState::AwaitingAnswer {
                    authzid: parsed.authzid,
                };
                Ok(ServerStep::Request(CredentialRequest::Token {
                    mechanism: NAME,
                    username: parsed.username,
                    token,
                }))
            }
            // An empty auth value asks for the discovery information: it
            // fails like a rejected token.
            None => {
                let condition = SaslCondition::NotAuthorized;
                self.state = ServerState::AwaitingKvsep { condition };
                Ok(ServerStep::Challenge(self.error_challenge(condition)))
            }
        }
    }
}

impl Default for OAuthBearerServer {
    fn default() -> Self {
        Self::new()
    }
}

struct ClientResponse {
    authzid: Option<String>,
    username: String,
    /// `None` for an empty `auth` value (a discovery request).
    token: Option<Secret>,
    host: Option<String>,
    port: Option<u16>,
}

fn parse_client_response(message: &[u8]) -> Result<ClientResponse, SaslError> {
    common::check_len(message, common::MAX_MESSAGE_LEN)?;
    let (gs2, rest) = common::parse_gs2_header(message)?;
    if let Gs2CbFlag::Binding(_) = gs2.cb_flag {
        return Err(SaslError::malformed("OAUTHBEARER has no channel binding"));
    }
    let Some(mut rest) = rest.strip_prefix(&[KVSEP]) else {
        return Err(SaslError::malformed(
            "missing separator after the GS2 header",
        ));
    };
    let mut auth: Option<&[u8]> = None;
    let mut host: Option<&[u8]> = None;
    let mut port: Option<&[u8]> = None;
    loop {
        let end = rest
            .iter()
            .position(|b| *b == KVSEP)
            .ok_or(SaslError::malformed("unterminated key/value pair"))?;
        let pair = &rest[..end];
        rest = &rest[end + 1..];
        if pair.is_empty() {
            break;
        }
        let eq = pair
            .iter()
            .position(|b| *b == b'=')
            .ok_or(SaslError::malformed("key without value"))?;
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        if key.is_empty() || !key.iter().all(u8::is_ascii_alphabetic) {
            return Err(SaslError::malformed("bad key"));
        }
        if !is_kv_value(value) {
            return Err(SaslError::malformed("bad value"));
        }
        let slot = match key {
            b"auth" => &mut auth,
            b"host" => &mut host,
            b"port" => &mut port,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(SaslError::malformed("duplicate key"));
        }
    }
    if !rest.is_empty() {
        return Err(SaslError::malformed("data after the final separator"));
    }
    let auth = auth.ok_or(SaslError::malformed("no auth value"))?;
    let token = if auth.is_empty() {
        None
    } else {
        // Checked above: ASCII.
        let auth = common::utf8(auth, "auth value is not ASCII")?;
        let (scheme, token) = auth
            .split_once(' ')
            .ok_or(SaslError::malformed("auth value without a scheme"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(SaslError::malformed("auth scheme is not Bearer"));
        }
        let token = token.trim_start_matches(' ');
        if !is_b64token(token) {
            return Err(SaslError::malformed("the token is not a b64token"));
        }
        Some(Secret::new(token))
    };
    let host = match host {
        Some(h) if h.is_empty() || !h.iter().all(u8::is_ascii_graphic) => {
            return Err(SaslError::malformed("bad host"))
        }
        Some(h) => Some(String::from_utf8_lossy(h).into_owned()),
        None => None,
    };
    let port = match port {
        Some(p) if !p.is_empty() && p.len() <= 5 && p.iter().all(u8::is_ascii_digit) => Some(
            String::from_utf8_lossy(p)
                .parse::<u16>()
                .map_err(|_| SaslError::malformed("bad port"))?,
        ),
        Some(_) => return Err(SaslError::malformed("bad port")),
        None => None,
    };
    let username = match &gs2.authzid {
        None => String::new(),
        Some(a) => match a.split_once('@') {
            Some(("", _)) => {
                return Err(SaslError::new(
                    SaslCondition::InvalidAuthzid,
                    "authzid with an empty localpart",
                ))
            }
            Some((local, _)) => local.to_owned(),
            None => a.clone(),
        },
    };
    Ok(ClientResponse {
        authzid: gs2.authzid,
        username,
        token,
        host,
        port,
    })
}

impl ServerMechanism for OAuthBearerServer {
    fn name(&self) -> &str {
        NAME
    }

    fn start(&mut self, initial_response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, ServerState::Done) {
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
        match std::mem::replace(&mut self.state, ServerState::Done) {
            ServerState::AwaitingMessage => self.consume(response),
            ServerState::AwaitingKvsep { condition } => {
                if response == [KVSEP] {
                    Err(SaslError::new(condition, "the token was refused"))
                } else {
                    Err(SaslError::malformed("expected %x01 after the error"))
                }
            }
            _ => Err(common::out_of_order()),
        }
    }

    fn answer(&mut self, answer: CredentialAnswer) -> Result<ServerStep, SaslError> {
        match std::mem::replace(&mut self.state, ServerState::Done) {
            ServerState::AwaitingAnswer { authzid } => match answer {
                // A refusal goes through the JSON error and the client's
                // %x01 first.
                CredentialAnswer::Verdict(Err(condition)) => {
                    self.state = ServerState::AwaitingKvsep { condition };
                    Ok(ServerStep::Challenge(self.error_challenge(condition)))
                }
                answer => Ok(ServerStep::Success {
                    identity: common::identity(common::verdict(answer)?, authzid),
                    additional_data: None,
                }),
            },
            _ => Err(common::no_request_pending()),
        }
    }
}

/// Just enough JSON for RFC 7628's error object.
mod json {
    /// Appends `s` as a JSON string literal.
    pub(super) fn push_string(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }

    const MAX_DEPTH: usize = 16;

    /// Parses a JSON object; returns its members with string values as
    /// `Some` (others as `None`). `None` on any syntax error.
    pub(super) fn parse_object(text: &str) -> Option<Vec<(String, Option<String>)>> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        p.ws();
        let members = p.object_members(0)?;
        p.ws();
        (p.i == p.s.len()).then_some(members)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<u8> {
            self.s.get(self.i).copied()
        }

        fn eat(&mut self, b: u8) -> Option<()> {
            (self.peek()? == b).then(|| self.i += 1)
        }

        fn ws(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
                self.i += 1;
            }
        }

        fn object_members(&mut self, depth: usize) -> Option<Vec<(String, Option<String>)>> {
            if depth > MAX_DEPTH {
                return None;
            }
            self.eat(b'{')?;
            let mut members = Vec::new();
            self.ws();
            if self.eat(b'}').is_some() {
                return Some(members);
            }
            loop {
                self.ws();
                let key = self.string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
                let value = if self.peek()? == b'"' {
                    Some(self.string()?)
                } else {
                    self.skip_value(depth + 1)?;
                    None
                };
                members.push((key, value));
                self.ws();
                if self.eat(b',').is_none() {
                    self.eat(b'}')?;
                    return Some(members);
                }
            }
        }

        fn skip_value(&mut self, depth: usize) -> Option<()> {
            if depth > MAX_DEPTH {
                return None;
            }
            match self.peek()? {
                b'"' => self.string().map(drop),
                b'{' => self.object_members(depth).map(drop),
                b'[' => {
                    self.i += 1;
                    self.ws();
                    if self.eat(b']').is_some() {
                        return Some(());
                    }
                    loop {
                        self.ws();
                        self.skip_value(depth + 1)?;
                        self.ws();
                        if self.eat(b',').is_none() {
                            return self.eat(b']');
                        }
                    }
                }
                b't' => self.literal(b"true"),
                b'f' => self.literal(b"false"),
                b'n' => self.literal(b"null"),
                _ => self.number(),
            }
        }

        fn literal(&mut self, word: &[u8]) -> Option<()> {
            self.s.get(self.i..)?.starts_with(word).then(|| {
                self.i += word.len();
            })
        }

        fn number(&mut self) -> Option<()> {
            let start = self.i;
            while matches!(
                self.peek(),
                Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            ) {
                self.i += 1;
            }
            let n = std::str::from_utf8(&self.s[start..self.i]).ok()?;
            n.parse::<f64>().ok().map(drop)
        }

        fn string(&mut self) -> Option<String> {
            self.eat(b'"')?;
            let mut out = Vec::new();
            loop {
                let b = self.peek()?;
                self.i += 1;
                match b {
                    b'"' => return String::from_utf8(out).ok(),
                    b'\\' => {
                        let e = self.peek()?;
                        self.i += 1;
                        let c = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hex = self.s.get(self.i..self.i + 4)?;
                                if !hex.iter().all(u8::is_ascii_hexdigit) {
                                    return None;
                                }
                                let hex = std::str::from_utf8(hex).ok()?;
                                self.i += 4;
                                // Surrogates (pairs or not) become U+FFFD:
                                // nothing here needs them.
                                char::from_u32(u32::from_str_radix(hex, 16).ok()?)
                                    .unwrap_or('\u{fffd}')
                            }
                            _ => return None,
                        };
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    0x00..=0x1f => return None,
                    b => out.push(b),
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_rfc7628_error() {
            let m = parse_object(
                r#"{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}"#,
            )
            .unwrap();
            assert_eq!(m[0], ("status".into(), Some("invalid_token".into())));
            assert_eq!(m[1].1.as_deref(), Some("example_scope"));
            let m = parse_object(" { \"a\" : [1, {\"b\": null}, true], \"s\": \"x\\u0041\\n\" } ")
                .unwrap();
            assert_eq!(
                m,
                vec![("a".into(), None), ("s".into(), Some("xA\n".into()))]
            );
            for bad in [
                "",
                "{",
                "{\"a\"}",
                "{\"a\":}",
                "[]",
                "{} x",
                "{\"a\":tru}",
                "{\"a\":\"\\u+123\"}",
            ] {
                assert_eq!(parse_object(bad), None, "{bad}");
            }
            let deep = "{\"a\":".repeat(40) + "1" + &"}".repeat(40);
            assert_eq!(parse_object(&deep), None);
        }

        #[test]
        fn escapes_strings() {
            let mut s = String::new();
            push_string(&mut s, "a\"b\\c\u{1}");
            assert_eq!(s, "\"a\\\"b\\\\c\\u0001\"");
        }
    }
}
