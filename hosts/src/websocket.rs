//! The WebSocket glue (RFC 6455 handshakes with tungstenite, the `xmpp`
//! subprotocol of RFC 7395) for the drivers'
//! [`crate::blocking::Driver::websocket`] and [`crate::tokio::websocket_connection`].
//!
//! TLS (`wss://`) is the caller's: it runs [`crate::tls`] or
//! [`crate::server_tls`] first, hands the TLS stream here, and gives the
//! machine the TLS facts with `direct_tls` (for SCRAM `-PLUS`).

use std::time::Instant;

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http::{HeaderValue, StatusCode};

use crate::blocking::{BoxTransport, BoxWebSocket};
use crate::tokio::BoxStream;

/// The WebSocket subprotocol of XMPP (RFC 7395 section 3.1).
pub const SUBPROTOCOL: &str = "xmpp";

/// The path this crate's servers accept WebSocket connections on (as
/// Prosody does).
pub const PATH: &str = "/xmpp-websocket";

/// A `ws://` or `wss://` URL (or, for BOSH, `http://` or `https://`),
/// taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://` (`https://`): TLS first.
    pub secure: bool,
    /// The host (a name, an IPv4 address, or an IPv6 one without brackets).
    pub host: String,
    /// The port (default 80, or 443 for `wss://` and `https://`).
    pub port: u16,
    /// The whole URL, for the handshake's request.
    pub url: String,
}

impl WsUrl {
    /// Parses `ws://host[:port][/path]` or `wss://...`.
    pub fn parse(url: &str) -> Result<WsUrl, String> {
        Self::parse_schemes(url, "ws://", "wss://")
    }

    /// Parses `http://host[:port][/path]` or `https://...` (BOSH).
    pub fn parse_http(url: &str) -> Result<WsUrl, String> {
        Self::parse_schemes(url, "http://", "https://")
    }

    /// The path and query (`/http-bind`; `/` when the URL has none).
    pub fn target(&self) -> &str {
        let rest = self.url.split_once("://").map_or("", |(_, r)| r);
        match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => rest[i..].split('#').next().unwrap_or("/"),
            _ => "/",
        }
    }

    fn parse_schemes(url: &str, plain: &str, tls: &str) -> Result<WsUrl, String> {
        let (secure, rest) = if let Some(r) = url.strip_prefix(plain) {
            (false, r)
        } else if let Some(r) = url.strip_prefix(tls) {
            (true, r)
        } else {
            return Err(format!("--url {url:?}: {plain} or {tls} expected"));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (host, port) = match authority.strip_prefix('[') {
            // [v6]:port
            Some(v6) => {
                let (h, tail) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("--url {url:?}: bad IPv6 address"))?;
                (h, tail.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(format!("--url {url:?}: no host"));
        }
        let port = match port {
            Some(p) => p
                .parse()
                .map_err(|_| format!("--url {url:?}: bad port {p:?}"))?,
            None if secure => 443,
            None => 80,
        };
        Ok(WsUrl {
            secure,
            host: host.to_owned(),
            port,
            url: url.to_owned(),
        })
    }
}

/// The client's handshake request: `url` with the `xmpp` subprotocol.
fn request(url: &str) -> Result<Request, String> {
    use tungstenite::client::IntoClientRequest;
    let mut req = url
        .into_client_request()
        .map_err(|e| format!("websocket request {url:?}: {e}"))?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(req)
}

/// The server's answer must name the `xmpp` subprotocol.
fn check_subprotocol<B>(resp: &tungstenite::http::Response<B>) -> Result<(), String> {
    match resp.headers().get("Sec-WebSocket-Protocol") {
        Some(v) if v.as_bytes().eq_ignore_ascii_case(SUBPROTOCOL.as_bytes()) => Ok(()),
        other => Err(format!(
            "websocket: the server did not accept the xmpp subprotocol ({other:?})"
        )),
    }
}

/// Whether the handshake request asks for `/xmpp-websocket` with the
/// `xmpp` subprotocol; the response then names it. Any `Origin` is
/// accepted (a page of another origin may connect).
fn accept_request(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let refuse = |status: StatusCode, why: &str| {
        let mut r = ErrorResponse::new(Some(why.to_owned()));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != PATH {
        return Err(refuse(StatusCode::NOT_FOUND, "not found"));
    }
    let offered = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL));
    if !offered {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "the xmpp subprotocol (RFC 7395) is required",
        ));
    }
    resp.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(resp)
}

/// The client handshake on a blocking connection (plain for `ws://`, TLS
/// for `wss://`), finished by `deadline`.
pub fn blocking_client(
    url: &str,
    mut sock: BoxTransport,
    deadline: Option<Instant>,
) -> Result<BoxWebSocket, String> {
    sock.set_read_deadline(deadline)
        .map_err(|e| format!("websocket: {e}"))?;
    let (ws, resp) = tungstenite::client::client(request(url)?, sock)
        .map_err(|e| format!("websocket handshake: {}", handshake_error(e)))?;
    check_subprotocol(&resp)?;
    Ok(ws)
}

/// The server handshake on a blocking connection (see the path and
/// subprotocol rules above), finished by `deadline`.
pub fn blocking_accept(
    mut sock: BoxTransport,
    deadline: Option<Instant>,
) -> Result<BoxWebSocket, String> {
    sock.set_read_deadline(deadline)
        .map_err(|e| format!("websocket: {e}"))?;
    tungstenite::accept_hdr(sock, accept_request)
        .map_err(|e| format!("websocket handshake: {}", handshake_error(e)))
}

/// A blocking handshake's error: a read that timed out leaves the
/// handshake "interrupted".
fn handshake_error<R: tungstenite::handshake::HandshakeRole>(
    e: tungstenite::HandshakeError<R>,
) -> String {
    match e {
        tungstenite::HandshakeError::Interrupted(_) => "timed out".into(),
        tungstenite::HandshakeError::Failure(e) => e.to_string(),
    }
}

/// The client handshake on an async connection.
pub async fn tokio_client(url: &str, io: BoxStream) -> Result<crate::tokio::BoxWebSocket, String> {
    let (ws, resp) = tokio_tungstenite::client_async(request(url)?, io)
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    check_subprotocol(&resp)?;
    Ok(ws)
}

/// The server handshake on an async connection.
pub async fn tokio_accept(io: BoxStream) -> Result<crate::tokio::BoxWebSocket, String> {
    tokio_tungstenite::accept_hdr_async(io, accept_request)
        .await
        .map_err(|e| format!("websocket handshake: {e}"))
}

#[cfg(test)]
mod tests {
    use super::WsUrl;

    #[test]
    fn urls() {
        let u = WsUrl::parse("ws://127.0.0.1:5280/xmpp-websocket").unwrap();
        assert_eq!(
            (u.secure, u.host.as_str(), u.port),
            (false, "127.0.0.1", 5280)
        );
        let u = WsUrl::parse("wss://example.com/xmpp-websocket").unwrap();
        assert_eq!(
            (u.secure, u.host.as_str(), u.port),
            (true, "example.com", 443)
        );
        let u = WsUrl::parse("ws://[::1]:80/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        assert!(WsUrl::parse("http://example.com/").is_err());
        let u = WsUrl::parse_http("https://example.com/http-bind").unwrap();
        assert_eq!((u.secure, u.port, u.target()), (true, 443, "/http-bind"));
        assert_eq!(WsUrl::parse_http("http://h:1").unwrap().target(), "/");
        assert!(WsUrl::parse_http("ws://h/").is_err());
        assert!(WsUrl::parse("ws://:5/").is_err());
        assert!(WsUrl::parse("ws://h:x/").is_err());
    }
}
