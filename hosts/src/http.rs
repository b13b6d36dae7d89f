//! The little HTTP/1.1 that BOSH (XEP-0124) needs, sans I/O: a POST with
//! its body and the response to it (client), a request and the response
//! with the CORS headers a page of another origin needs (server). Heads
//! are parsed with `httparse`; bodies are delimited by `Content-Length`
//! (BOSH bodies are small and whole: no chunked transfer). The blocking
//! and tokio BOSH drivers ([`crate::bosh`]) and the example server read
//! with [`read_blocking`] and [`read_async`].

use std::io::{self, Read};

use ::tokio::io::{AsyncRead, AsyncReadExt};

use crate::websocket::WsUrl;

/// A head larger than this is refused.
const MAX_HEAD: usize = 16 * 1024;
/// Headers read at most.
const MAX_HEADERS: usize = 48;

/// One HTTP message read whole. `Debug` shows the header names, and the
/// values of all but `Authorization` and `Cookie` (a Negotiate token can
/// carry a delegated Kerberos ticket).
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// A request's method (`POST`, `OPTIONS`...); empty for a response.
    pub method: String,
    /// A request's target (`/http-bind`); empty for a response.
    pub path: String,
    /// A response's status; 0 for a request.
    pub status: u16,
    /// The connection may carry another message (HTTP/1.1 without
    /// `Connection: close`).
    pub keep_alive: bool,
    /// The body.
    pub body: Vec<u8>,
    /// The header fields, in order (values as text; bytes that are not
    /// UTF-8 replaced).
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let secret =
                    n.eq_ignore_ascii_case("authorization") || n.eq_ignore_ascii_case("cookie");
                (n.as_str(), if secret { "<redacted>" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("Message")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("status", &self.status)
            .field("keep_alive", &self.keep_alive)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("headers", &headers)
            .finish()
    }
}

impl Message {
    /// The first value of the header field `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// Collects bytes until a whole message (head and `Content-Length` body)
/// is there.
#[derive(Debug)]
pub struct Reader {
    request: bool,
    max_body: usize,
    buf: Vec<u8>,
}

impl Reader {
    /// A reader of requests (`request`) or responses, with bodies of
    /// `max_body` bytes at most.
    pub fn new(request: bool, max_body: usize) -> Self {
        Reader {
            request,
            max_body,
            buf: Vec::new(),
        }
    }

    /// Bytes received.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether bytes of a message are waiting.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next whole message, `None` while it is incomplete; an error for
    /// a malformed or oversized one (the connection is then to be closed).
    pub fn take(&mut self) -> Result<Option<Message>, String> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let (head_len, mut msg, version, hs) = if self.request {
            let mut r = httparse::Request::new(&mut headers);
            match r.parse(&self.buf).map_err(|e| format!("http: {e}"))? {
                httparse::Status::Partial => return self.partial(),
                httparse::Status::Complete(n) => (
                    n,
                    Message {
                        method: r.method.unwrap_or_default().to_owned(),
                        path: r.path.unwrap_or_default().to_owned(),
                        status: 0,
                        keep_alive: true,
                        body: Vec::new(),
                        headers: Vec::new(),
                    },
                    r.version.unwrap_or(1),
                    r.headers.to_vec(),
                ),
            }
        } else {
            let mut r = httparse::Response::new(&mut headers);
            match r.parse(&self.buf).map_err(|e| format!("http: {e}"))? {
                httparse::Status::Partial => return self.partial(),
                httparse::Status::Complete(n) => (
                    n,
                    Message {
                        method: String::new(),
                        path: String::new(),
                        status: r.code.unwrap_or(0),
                        keep_alive: true,
                        body: Vec::new(),
                        headers: Vec::new(),
                    },
                    r.version.unwrap_or(1),
                    r.headers.to_vec(),
                ),
            }
        };
        let mut length = 0usize;
        msg.keep_alive = version >= 1;
        msg.headers = hs
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        for h in &hs {
            let value = String::from_utf8_lossy(h.value).trim().to_ascii_lowercase();
            if h.name.eq_ignore_ascii_case("content-length") {
                length = value
                    .parse()
                    .map_err(|_| format!("http: bad Content-Length {value:?}"))?;
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") && value != "identity" {
                return Err(format!("http: Transfer-Encoding {value} is not supported"));
            } else if h.name.eq_ignore_ascii_case("connection") {
                msg.keep_alive = match value.as_str() {
                    "close" => false,
                    "keep-alive" => true,
                    _ => msg.keep_alive,
                };
            }
        }
        if length > self.max_body {
            return Err(format!("http: a body of {length} bytes is too large"));
        }
        if self.buf.len() < head_len + length {
            return Ok(None);
        }
        msg.body = self.buf[head_len..head_len + length].to_vec();
        self.buf.drain(..head_len + length);
        Ok(Some(msg))
    }

    fn partial(&self) -> Result<Option<Message>, String> {
        if self.buf.len() > MAX_HEAD {
            return Err("http: the head is too large".into());
        }
        Ok(None)
    }
}

/// Reads the next message from `r`; `Ok(None)` when the connection ended
/// cleanly before one began.
pub fn read_blocking<R: Read + ?Sized>(
    r: &mut R,
    reader: &mut Reader,
) -> io::Result<Option<Message>> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(m) = reader.take().map_err(io::Error::other)? {
            return Ok(Some(m));
        }
        let n = r.read(&mut chunk)?;
        if received(reader, &chunk[..n])? {
            return Ok(None);
        }
    }
}

/// The same over an async connection.
pub async fn read_async<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    reader: &mut Reader,
) -> io::Result<Option<Message>> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(m) = reader.take().map_err(io::Error::other)? {
            return Ok(Some(m));
        }
        let n = r.read(&mut chunk).await?;
        if received(reader, &chunk[..n])? {
            return Ok(None);
        }
    }
}

/// What a read gave, to `reader`: whether the connection ended (nothing
/// read; an error when it ended inside a message).
fn received(reader: &mut Reader, data: &[u8]) -> io::Result<bool> {
    if data.is_empty() && !reader.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    reader.push(data);
    Ok(data.is_empty())
}

/// A POST of `body` (`text/xml`) to `url`'s path, keeping the connection
/// open.
pub fn post(url: &WsUrl, body: &[u8]) -> Vec<u8> {
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let mut out = format!(
        "POST {} HTTP/1.1\r\nHost: {host}:{}\r\nContent-Type: text/xml; charset=utf-8\r\n\
         Content-Length: {}\r\n\r\n",
        url.target(),
        url.port,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The CORS headers that let a page of any origin POST XML here.
pub const CORS: &str = "Access-Control-Allow-Origin: *\r\n\
     Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n\
     Access-Control-Allow-Headers: Content-Type\r\n\
     Access-Control-Max-Age: 86400\r\n";

/// A response: `status` (`200 OK`), the CORS headers, `content_type` and
/// `body`.
pub fn response(status: &str, content_type: &str, body: &[u8], keep_alive: bool) -> Vec<u8> {
    response_with(status, CORS, content_type, body, keep_alive)
}

/// A response with the header lines `extra` (each ending in `\r\n`: the
/// CORS headers of the caller's policy, `WWW-Authenticate`...) in place of
/// [`CORS`].
pub fn response_with(
    status: &str,
    extra: &str,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: {}\r\n\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_in_pieces_then_the_next() {
        let mut r = Reader::new(true, 1024);
        let req = b"POST /http-bind HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n<body/>";
        r.push(&req[..20]);
        assert_eq!(r.take().unwrap(), None);
        r.push(&req[20..]);
        r.push(b"OPTIONS /http-bind HTTP/1.1\r\nConnection: close\r\n\r\n");
        let m = r.take().unwrap().unwrap();
        assert_eq!((m.method.as_str(), m.path.as_str()), ("POST", "/http-bind"));
        assert_eq!((m.body.as_slice(), m.keep_alive), (&b"<body/>"[..], true));
        let m = r.take().unwrap().unwrap();
        assert_eq!((m.method.as_str(), m.keep_alive), ("OPTIONS", false));
        assert!(r.is_empty());
    }

    #[test]
    fn a_response_and_the_refusals() {
        let mut r = Reader::new(false, 4);
        r.push(&response("200 OK", "text/xml", b"<b/>", true));
        let m = r.take().unwrap().unwrap();
        assert_eq!((m.status, m.body.as_slice()), (200, &b"<b/>"[..]));
        r.push(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        assert!(r.take().is_err(), "too large");
        let mut r = Reader::new(false, 4);
        r.push(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(r.take().is_err());
    }

    #[test]
    fn debug_hides_credentials() {
        let mut r = Reader::new(true, 64);
        r.push(b"GET / HTTP/1.1\r\nAuthorization: Negotiate c2VjcmV0\r\nHost: h\r\n\r\n");
        let m = r.take().unwrap().unwrap();
        assert_eq!(m.header("AUTHORIZATION"), Some("Negotiate c2VjcmV0"));
        let d = format!("{m:?}");
        assert!(
            !d.contains("c2VjcmV0") && d.contains("<redacted>") && d.contains("\"h\""),
            "{d}"
        );
    }

    #[test]
    fn a_post() {
        let u = WsUrl::parse_http("http://[::1]:5280/http-bind?x=1").unwrap();
        let p = String::from_utf8(post(&u, b"<body/>")).unwrap();
        assert!(p.starts_with("POST /http-bind?x=1 HTTP/1.1\r\nHost: [::1]:5280\r\n"));
        assert!(p.ends_with("Content-Length: 7\r\n\r\n<body/>"));
    }
}
