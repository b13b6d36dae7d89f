//! The HTTP rules of the proxy, sans I/O: which origin may call it (CORS
//! with credentials), the Negotiate challenge and token, the static files.
//!
//! CORS with credentials (the browser sends its Negotiate token to
//! another origin only so): the answer names the calling origin itself
//! (never `*`), says `Access-Control-Allow-Credentials: true` and
//! `Vary: Origin`; the preflight `OPTIONS` is answered without
//! authentication; the `401` carries the same headers, or the page could
//! not even see that it was challenged. A request whose `Origin` is
//! neither the proxy's own nor an allowed one is refused (`403`): ambient
//! Kerberos credentials must not be usable from any page.

use std::path::{Component, Path, PathBuf};

use base64::Engine;

use crate::http::{self, Message};

/// The BOSH path (as Prosody's).
pub const BOSH_PATH: &str = "/http-bind";
/// The WebSocket path (as Prosody's).
pub const WEBSOCKET_PATH: &str = "/xmpp-websocket";
/// The query parameter by which a page asks for a session without single
/// sign-on (`/http-bind?sso=0`), for a browser that cannot do Negotiate.
pub const WITHOUT_SSO: &str = "sso=0";

/// Which origins may call the proxy.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    /// The allowed origins (`--allow-origin`), as `scheme://host[:port]`.
    pub allowed: Vec<String>,
}

/// What a request's `Origin` is to the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No `Origin` (not a browser's script), or the proxy's own origin.
    SameOrigin,
    /// An allowed origin: the answer names it.
    Allowed(String),
    /// Another origin: refused.
    Refused,
}

impl Cors {
    /// The caller of `req`, reached as `scheme` (`http`, `https`).
    pub fn caller(&self, req: &Message, scheme: &str) -> Caller {
        let Some(origin) = req.header("origin") else {
            return Caller::SameOrigin;
        };
        if self.allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            return Caller::Allowed(origin.to_owned());
        }
        match req.header("host") {
            Some(host) if origin.eq_ignore_ascii_case(&format!("{scheme}://{host}")) => {
                Caller::SameOrigin
            }
            _ => Caller::Refused,
        }
    }
}

/// The CORS header lines for an answer to `caller` (`Vary: Origin`
/// always: the answer depends on it).
pub fn cors_headers(caller: &Caller) -> String {
    match caller {
        Caller::Allowed(origin) => format!(
            "Access-Control-Allow-Origin: {origin}\r\nAccess-Control-Allow-Credentials: true\r\n\
             Vary: Origin\r\n"
        ),
        _ => "Vary: Origin\r\n".to_owned(),
    }
}

/// The answer to a preflight `OPTIONS` (no authentication).
pub fn preflight(caller: &Caller, keep_alive: bool) -> Vec<u8> {
    let mut headers = cors_headers(caller);
    if matches!(caller, Caller::Allowed(_)) {
        headers.push_str(
            "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n\
             Access-Control-Allow-Headers: Content-Type\r\nAccess-Control-Max-Age: 600\r\n",
        );
    }
    http::response_with("204 No Content", &headers, "text/plain", b"", keep_alive)
}

/// `401 Unauthorized` with `WWW-Authenticate: Negotiate` and the CORS
/// headers: the browser answers it with a token (the request is read
/// whole first, so the connection stays usable for that retry).
pub fn challenge(caller: &Caller, keep_alive: bool) -> Vec<u8> {
    let headers = format!("{}WWW-Authenticate: Negotiate\r\n", cors_headers(caller));
    http::response_with(
        "401 Unauthorized",
        &headers,
        "text/plain",
        b"HTTP Negotiate (Kerberos) required; add ?sso=0 for a session without single sign-on\n",
        keep_alive,
    )
}

/// A refusal (`403`, `404`...) with the CORS headers; the connection is
/// closed after it.
pub fn refuse(caller: &Caller, status: &str, why: &str) -> Vec<u8> {
    http::response_with(
        status,
        &cors_headers(caller),
        "text/plain",
        format!("{why}\n").as_bytes(),
        false,
    )
}

/// The token of `Authorization: Negotiate <base64>`: `None` without one,
/// an error for one that is not base64.
pub fn negotiate_token(req: &Message) -> Option<Result<Vec<u8>, String>> {
    let value = req.header("authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("negotiate") {
        return None;
    }
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .map_err(|e| format!("Negotiate token: {e}")),
    )
}

/// `WWW-Authenticate: Negotiate <base64>` for a mutual-authentication
/// reply token.
pub fn negotiate_reply(token: &[u8]) -> String {
    format!(
        "WWW-Authenticate: Negotiate {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(token)
    )
}

/// The path of `target` without its query, and whether the query asks
/// for no SSO.
pub fn split_target(target: &str) -> (&str, bool) {
    match target.split_once('?') {
        Some((path, query)) => (path, query.split('&').any(|p| p == WITHOUT_SSO)),
        None => (target, false),
    }
}

/// The file under `dir` that `path` names (`/` is `index.html`), if it is
/// a plain relative path: no `..`, no hidden names, no backslashes or
/// percent escapes (none are needed by a web client's files).
pub fn static_file(dir: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.strip_prefix('/')?;
    let rel = if rel.is_empty() || rel.ends_with('/') {
        format!("{rel}index.html")
    } else {
        rel.to_owned()
    };
    if rel.contains(['\\', '%', '\0']) {
        return None;
    }
    let rel = Path::new(&rel);
    let plain = rel.components().all(|c| match c {
        Component::Normal(n) => !n.to_string_lossy().starts_with('.'),
        _ => false,
    });
    plain.then(|| dir.join(rel))
}

/// The `Content-Type` of a static file, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "cjs" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(head: &str) -> Message {
        let mut r = http::Reader::new(true, 1024);
        r.push(head.as_bytes());
        r.take().unwrap().unwrap()
    }

    #[test]
    fn cors_names_the_allowed_origin_with_credentials() {
        let cors = Cors {
            allowed: vec!["http://app.example.test".into()],
        };
        let req = request(
            "POST /http-bind HTTP/1.1\r\nHost: proxy.example.test:5280\r\nOrigin: http://app.example.test\r\n\r\n",
        );
        let caller = cors.caller(&req, "http");
        assert_eq!(caller, Caller::Allowed("http://app.example.test".into()));
        let h = cors_headers(&caller);
        assert!(h.contains("Access-Control-Allow-Origin: http://app.example.test\r\n"));
        assert!(h.contains("Access-Control-Allow-Credentials: true\r\n"));
        assert!(h.contains("Vary: Origin\r\n"));
        assert!(!h.contains('*'));
        let c = String::from_utf8(challenge(&caller, true)).unwrap();
        assert!(c.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
        assert!(c.contains("WWW-Authenticate: Negotiate\r\n"));
        assert!(c.contains("Access-Control-Allow-Credentials: true\r\n"));
        let p = String::from_utf8(preflight(&caller, true)).unwrap();
        assert!(p.starts_with("HTTP/1.1 204"));
        assert!(p.contains("Access-Control-Allow-Methods: GET, POST, OPTIONS"));
        assert!(!p.contains("WWW-Authenticate"));
    }

    #[test]
    fn own_origin_passes_and_others_are_refused() {
        let cors = Cors::default();
        let own = request(
            "POST / HTTP/1.1\r\nHost: proxy.example.test:5280\r\nOrigin: http://proxy.example.test:5280\r\n\r\n",
        );
        assert_eq!(cors.caller(&own, "http"), Caller::SameOrigin);
        assert_eq!(cors.caller(&own, "https"), Caller::Refused);
        let evil = request(
            "POST / HTTP/1.1\r\nHost: proxy.example.test:5280\r\nOrigin: http://evil.test\r\n\r\n",
        );
        assert_eq!(cors.caller(&evil, "http"), Caller::Refused);
        let none = request("POST / HTTP/1.1\r\nHost: proxy.example.test\r\n\r\n");
        assert_eq!(cors.caller(&none, "http"), Caller::SameOrigin);
    }

    #[test]
    fn negotiate_tokens() {
        let r = request("GET / HTTP/1.1\r\nAuthorization: Negotiate YWJj\r\n\r\n");
        assert_eq!(negotiate_token(&r), Some(Ok(b"abc".to_vec())));
        let r = request("GET / HTTP/1.1\r\nAuthorization: Basic YWJj\r\n\r\n");
        assert_eq!(negotiate_token(&r), None);
        let r = request("GET / HTTP/1.1\r\nAuthorization: Negotiate !!\r\n\r\n");
        assert!(matches!(negotiate_token(&r), Some(Err(_))));
        assert_eq!(split_target("/http-bind?sso=0"), ("/http-bind", true));
        assert_eq!(split_target("/http-bind?x=1"), ("/http-bind", false));
    }

    #[test]
    fn static_paths_stay_in_the_directory() {
        let d = Path::new("/srv/web");
        assert_eq!(static_file(d, "/"), Some(d.join("index.html")));
        assert_eq!(static_file(d, "/a/b.js"), Some(d.join("a/b.js")));
        for bad in [
            "/../etc/passwd",
            "/a/../../x",
            "/.git/config",
            "/a%2e%2e/x",
            "x",
            "//etc/passwd",
        ] {
            assert_eq!(static_file(d, bad), None, "{bad}");
        }
        assert_eq!(
            content_type(Path::new("x.cjs")),
            "text/javascript; charset=utf-8"
        );
    }
}
