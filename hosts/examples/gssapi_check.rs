//! The Kerberos harness's check of `xmpp_sansio_hosts::gssapi` against a
//! real KDC (interop/kerberos_tests.sh; feature `gssapi`). Each mode prints
//! `OK ...` lines and exits 0, or prints `ERROR <reason>` and exits 1.
//!
//! ```text
//! gssapi_check loopback --keytab F [--service xmpp] [--host H] [--ccache C]
//!     an Initiator (the default ccache, or C) to service@H and an Acceptor
//!     (keytab F) in one process: the context, both peer names, wrap and
//!     unwrap both ways, and the RFC 4752 security-layer exchange
//! gssapi_check negotiate-loopback --keytab F [--service HTTP] [--host H]
//!     [--no-delegation] [--xmpp-keytab K]
//!     an SPNEGO initiator like a browser's, accepted by accept_negotiate:
//!     the principal and the delegated credential (with K: the delegated
//!     credential then authenticates to xmpp@xmpp.example.test)
//! gssapi_check negotiate-server --keytab F [--service HTTP] [--host H]
//!     [--listen ADDR] [--requests N] [--xmpp-keytab K]
//!     [--connect HOST:PORT --ca-file F] [--page]
//!     an HTTP server answering 401 Negotiate, then accepting the token of
//!     `Authorization: Negotiate`; prints LISTENING <addr>, then one
//!     NEGOTIATE line per accepted token; stops after N answered requests.
//!     With --connect, a delegated credential also logs in to that XMPP
//!     server (RFC 4752 over c2s, as xmpp-login). With --page, GET / is an
//!     unauthenticated page whose script POSTs a BOSH <body/> with fetch()
//!     to /http-bind on the same origin and shows the answer in
//!     <pre id="result">: the XHR path of a browser's BOSH client; only
//!     POSTs need Negotiate, other GETs are 404
//! gssapi_check keytab --keytab F [--service S] [--host H]
//!     only loads the acceptor credential (a missing or wrong keytab fails)
//! gssapi_check xmpp-login --connect HOST:PORT --ca-file F [--host DOMAIN]
//!     [--ccache C] [--authzid A]
//!     a raw RFC 4752 login (STARTTLS, SASL GSSAPI with the Initiator,
//!     restart, bind) to a real server: an independent check of the
//!     contexts against Prosody's Cyrus GSSAPI; prints OK <bound JID>
//! ```
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine;
use xmpp_sansio_hosts::gssapi::{
    accept_negotiate, Acceptor, AcceptorCredential, Credential, GssStep, Initiator,
};

struct Args {
    mode: String,
    keytab: Option<PathBuf>,
    xmpp_keytab: Option<PathBuf>,
    service: Option<String>,
    host: Option<String>,
    ccache: Option<String>,
    listen: String,
    requests: usize,
    delegate: bool,
    connect: Option<String>,
    ca_file: Option<String>,
    authzid: String,
    page: bool,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .ok_or("usage: gssapi_check MODE [options] (see the source)")?;
    let mut a = Args {
        mode,
        keytab: None,
        xmpp_keytab: None,
        service: None,
        host: None,
        ccache: None,
        listen: "127.0.0.1:0".into(),
        requests: 1,
        delegate: true,
        connect: None,
        ca_file: None,
        authzid: String::new(),
        page: false,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--keytab" => a.keytab = Some(value()?.into()),
            "--xmpp-keytab" => a.xmpp_keytab = Some(value()?.into()),
            "--service" => a.service = Some(value()?),
            "--host" => a.host = Some(value()?),
            "--ccache" => a.ccache = Some(value()?),
            "--listen" => a.listen = value()?,
            "--requests" => a.requests = value()?.parse().map_err(|_| "bad --requests")?,
            "--no-delegation" => a.delegate = false,
            "--connect" => a.connect = Some(value()?),
            "--ca-file" => a.ca_file = Some(value()?),
            "--authzid" => a.authzid = value()?,
            "--page" => a.page = true,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

type R<T> = Result<T, String>;

fn main() -> ExitCode {
    let result = parse().and_then(|a| match a.mode.as_str() {
        "loopback" => loopback(&a),
        "negotiate-loopback" => negotiate_loopback(&a),
        "negotiate-server" => negotiate_server(&a),
        "keytab" => keytab_only(&a),
        "xmpp-login" => xmpp_login(&a),
        m => Err(format!("unknown mode {m}")),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("ERROR {e}");
            ExitCode::FAILURE
        }
    }
}

fn keytab(a: &Args, service: &str, host: &str) -> R<AcceptorCredential> {
    let path = a.keytab.as_ref().ok_or("--keytab F is required")?;
    AcceptorCredential::from_keytab(path, service, host).map_err(|e| e.to_string())
}

fn keytab_only(a: &Args) -> R<()> {
    let service = a.service.as_deref().unwrap_or("xmpp");
    let host = a.host.as_deref().unwrap_or("xmpp.example.test");
    let cred = keytab(a, service, host)?;
    println!("OK keytab {}", cred.service());
    Ok(())
}

/// Runs an initiator and an acceptor against each other until both are
/// established; the number of tokens exchanged.
fn establish(init: &mut Initiator, acc: &mut Acceptor) -> R<usize> {
    let mut tokens = 0;
    let mut to_acceptor = match init.step(None).map_err(|e| e.to_string())? {
        GssStep::Continue(t) => Some(t),
        GssStep::Complete(t) => t,
    };
    for _ in 0..8 {
        let Some(t) = to_acceptor.take() else { break };
        tokens += 1;
        let to_initiator = match acc.step(Some(&t)).map_err(|e| e.to_string())? {
            GssStep::Continue(t) => Some(t),
            GssStep::Complete(t) => t,
        };
        let Some(t) = to_initiator else { break };
        tokens += 1;
        if init.is_complete() {
            return Err("the initiator is complete but the acceptor sent a token".into());
        }
        to_acceptor = match init.step(Some(&t)).map_err(|e| e.to_string())? {
            GssStep::Continue(t) => Some(t),
            GssStep::Complete(t) => t,
        };
    }
    if !init.is_complete() || !acc.is_complete() {
        return Err("the context was not established in 8 legs".into());
    }
    Ok(tokens)
}

fn loopback(a: &Args) -> R<()> {
    let service = a.service.as_deref().unwrap_or("xmpp");
    let host = a.host.as_deref().unwrap_or("xmpp.example.test");
    let acceptor_cred = keytab(a, service, host)?;
    let cred = match &a.ccache {
        Some(c) => Some(Credential::from_ccache(c).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut init = Initiator::new(service, host, cred.as_ref()).map_err(|e| e.to_string())?;
    let mut acc = acceptor_cred.acceptor();
    let tokens = establish(&mut init, &mut acc)?;
    let user = acc.peer_name().ok_or("the acceptor has no peer name")?;
    let server = init
        .target_name()
        .ok_or("the initiator has no target name")?;
    println!("OK context {service}@{host}: {tokens} tokens, initiator {user}, acceptor {server}");

    // RFC 4752 3.1: the server offers "no security layer", maxbuf 0; the
    // client answers "no layer" and an empty authorization identity
    let offer = acc.wrap(&[0x01, 0, 0, 0]).map_err(|e| e.to_string())?;
    let got = init.unwrap(&offer).map_err(|e| e.to_string())?;
    if got != [0x01, 0, 0, 0] {
        return Err(format!("the layer offer unwrapped to {got:?}"));
    }
    let mut answer = vec![0x01, 0, 0, 0];
    answer.extend_from_slice(b"alice@xmpp.example.test");
    let wrapped = init.wrap(&answer).map_err(|e| e.to_string())?;
    let got = acc.unwrap(&wrapped).map_err(|e| e.to_string())?;
    if got != answer {
        return Err("the layer answer did not unwrap to what was wrapped".into());
    }
    // a tampered token is refused
    let mut bad = wrapped.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    if acc.unwrap(&bad).is_ok() {
        return Err("a tampered wrap token was accepted".into());
    }
    println!(
        "OK wrap/unwrap both ways ({} and {} byte tokens), a tampered token refused",
        offer.len(),
        wrapped.len()
    );
    Ok(())
}

/// Uses a delegated credential as the proxy would: a context to the XMPP
/// service, accepted with its keytab; the principal the XMPP side saw.
fn use_delegated(deleg: &Credential, xmpp_keytab: &Path) -> R<String> {
    let xmpp = AcceptorCredential::from_keytab(xmpp_keytab, "xmpp", "xmpp.example.test")
        .map_err(|e| e.to_string())?;
    let mut init =
        Initiator::new("xmpp", "xmpp.example.test", Some(deleg)).map_err(|e| e.to_string())?;
    let mut acc = xmpp.acceptor();
    establish(&mut init, &mut acc)?;
    acc.peer_name().ok_or("no peer name".into())
}

fn describe(principal: &str, delegated: Option<&Credential>, a: &Args) -> R<String> {
    let mut line = format!("principal={principal}");
    match delegated {
        None => line.push_str(" delegated=no"),
        Some(d) => {
            let name = d.principal().map_err(|e| e.to_string())?;
            let life = d.lifetime().map(|l| l.as_secs()).unwrap_or(0);
            line.push_str(&format!(" delegated={name} lifetime={life}s"));
            if let Some(k) = &a.xmpp_keytab {
                let seen = use_delegated(d, k)?;
                line.push_str(&format!(" xmpp_as={seen}"));
            }
            if let (Some(addr), Some(ca)) = (&a.connect, &a.ca_file) {
                // the XMPP domain, not --host (the HTTP service's host)
                let jid = login_gssapi(
                    addr,
                    ca.clone(),
                    "xmpp.example.test",
                    Some(d),
                    "",
                    "via-proxy",
                )
                .unwrap_or_else(|e| format!("ERROR({e})"));
                line.push_str(&format!(" xmpp_login={jid}"));
            }
        }
    }
    Ok(line)
}

fn negotiate_loopback(a: &Args) -> R<()> {
    let service = a.service.as_deref().unwrap_or("HTTP");
    let host = a.host.as_deref().unwrap_or("proxy.example.test");
    let cred = keytab(a, service, host)?;
    let mut browser =
        Initiator::negotiate(service, host, None, a.delegate).map_err(|e| e.to_string())?;
    let token = match browser.step(None).map_err(|e| e.to_string())? {
        GssStep::Continue(t) => t,
        GssStep::Complete(t) => t.ok_or("no initial SPNEGO token")?,
    };
    let n = accept_negotiate(&cred, &token).map_err(|e| e.to_string())?;
    println!(
        "OK NEGOTIATE {} token={}B",
        describe(&n.principal, n.delegated.as_ref(), a)?,
        token.len()
    );
    Ok(())
}

fn negotiate_server(a: &Args) -> R<()> {
    let service = a.service.as_deref().unwrap_or("HTTP");
    let host = a.host.as_deref().unwrap_or("proxy.example.test");
    let cred = keytab(a, service, host)?;
    let listener = TcpListener::bind(&a.listen).map_err(|e| format!("listen {}: {e}", a.listen))?;
    println!(
        "LISTENING {}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    std::io::stdout().flush().ok();
    let mut answered = 0;
    let mut accepted = 0;
    while answered < a.requests {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        match serve(stream, &cred, a) {
            Ok(line) => {
                if line.starts_with("NEGOTIATE ") {
                    accepted += 1;
                }
                println!("{line}");
            }
            Err(e) => println!("REFUSED {e}"),
        }
        std::io::stdout().flush().ok();
        answered += 1;
    }
    println!("OK {answered} requests, {accepted} Negotiate tokens accepted");
    Ok(())
}

/// The --page page: same origin, so no third-party-cookie rule stands
/// between the script's fetch() and the browser's Negotiate handling.
const PAGE: &str = r#"<!doctype html><html><head><title>negotiate</title></head><body>
<pre id="result">pending</pre>
<script>
fetch('/http-bind', {method: 'POST', headers: {'Content-Type': 'text/xml; charset=utf-8'},
  body: "<body rid='1' to='xmpp.example.test' wait='60' hold='1' ver='1.6' xmlns='http://jabber.org/protocol/httpbind'/>"})
  .then(r => r.text().then(t => { document.getElementById('result').textContent = 'status=' + r.status + ' ' + t; }))
  .catch(e => { document.getElementById('result').textContent = 'error ' + e; });
</script></body></html>"#;

/// One HTTP/1.1 exchange per connection: 401 without a token, 200 with a
/// JSON report after an accepted one, 403 on a bad one (and with --page:
/// the page for GET /, 404 for other GETs); the line to log.
fn serve(mut stream: TcpStream, cred: &AcceptorCredential, a: &Args) -> R<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut auth = None;
    let mut length = 0usize;
    let mut request_line = String::new();
    reader
        .read_line(&mut request_line)
        .map_err(|e| e.to_string())?;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).map_err(|e| e.to_string())? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("authorization") {
                auth = Some(v.trim().to_string());
            } else if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().map_err(|_| "bad Content-Length")?;
            }
        }
    }
    // the whole request body is read, so closing does not reset the
    // connection under an unread POST
    let mut body = vec![0u8; length.min(65536)];
    std::io::Read::read_exact(&mut reader, &mut body).map_err(|e| e.to_string())?;
    let respond_as = |stream: &mut TcpStream, status: &str, extra: &str, ty: &str, body: &str| {
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\n{extra}Content-Type: {ty}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    let respond = |stream: &mut TcpStream, status: &str, extra: &str, body: &str| {
        respond_as(stream, status, extra, "application/json", body)
    };
    let path = request_line.split(' ').nth(1).unwrap_or("");
    if a.page && request_line.starts_with("GET ") {
        if path == "/" {
            respond_as(&mut stream, "200 OK", "", "text/html; charset=utf-8", PAGE);
            return Ok("PAGE /".into());
        }
        respond(&mut stream, "404 Not Found", "", "{}");
        return Ok(format!("NOTFOUND {path}"));
    }
    let what = if request_line.starts_with("POST ") {
        let bosh = String::from_utf8_lossy(&body).contains("http://jabber.org/protocol/httpbind");
        format!(" post={path} body={}B bosh={bosh}", body.len())
    } else {
        String::new()
    };
    let Some(token) = auth.as_deref().and_then(|v| {
        v.strip_prefix("Negotiate ")
            .or_else(|| v.strip_prefix("negotiate "))
    }) else {
        respond(
            &mut stream,
            "401 Unauthorized",
            "WWW-Authenticate: Negotiate\r\n",
            "{\"error\":\"negotiate\"}",
        );
        return Ok(format!("CHALLENGED (401 Negotiate){what}"));
    };
    let token = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|e| format!("bad base64: {e}"))?;
    match accept_negotiate(cred, &token) {
        Ok(n) => {
            let line = describe(&n.principal, n.delegated.as_ref(), a)?;
            let reply = n
                .reply
                .map(|r| {
                    format!(
                        "WWW-Authenticate: Negotiate {}\r\n",
                        base64::engine::general_purpose::STANDARD.encode(r)
                    )
                })
                .unwrap_or_default();
            let body = format!(
                "{{\"principal\":\"{}\",\"delegated\":{}}}",
                n.principal,
                n.delegated.is_some()
            );
            respond(&mut stream, "200 OK", &reply, &body);
            Ok(format!("NEGOTIATE {line}{what}"))
        }
        Err(e) => {
            respond(&mut stream, "403 Forbidden", "", "{\"error\":\"refused\"}");
            Err(e.to_string())
        }
    }
}

const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// Reads until `done` says the received text is complete (or the peer
/// closes); returns what arrived since the last call.
fn read_until(io: &mut impl std::io::Read, done: impl Fn(&str) -> bool) -> R<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = io.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "connection closed after {:?}",
                String::from_utf8_lossy(&got)
            ));
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if done(&text) {
            return Ok(text.into_owned());
        }
    }
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let i = s.find(a)? + a.len();
    let j = s[i..].find(b)? + i;
    Some(&s[i..j])
}

/// The payload of a `<challenge/>`, or the `<success/>`/`<failure/>` text.
enum Sasl {
    Challenge(Vec<u8>),
    Success,
    Failure(String),
}

fn sasl_answer(text: &str) -> R<Sasl> {
    if let Some(i) = text.find("<failure") {
        return Ok(Sasl::Failure(text[i..].to_string()));
    }
    if text.contains("<success") {
        return Ok(Sasl::Success);
    }
    let start = text
        .find("<challenge")
        .ok_or(format!("unexpected {text:?}"))?;
    let rest = &text[start..];
    let head = &rest[..rest.find('>').unwrap_or(0) + 1];
    if head.ends_with("/>") {
        return Ok(Sasl::Challenge(Vec::new()));
    }
    let b64 = between(rest, ">", "</challenge>").unwrap_or("").trim();
    let data = if b64 == "=" {
        Vec::new()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("challenge base64: {e}"))?
    };
    Ok(Sasl::Challenge(data))
}

fn sasl_done(t: &str) -> bool {
    t.contains("</challenge>")
        || t.contains("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        || t.contains("<success")
        || t.contains("</failure>")
}

fn xmpp_login(a: &Args) -> R<()> {
    let addr = a
        .connect
        .as_deref()
        .ok_or("--connect HOST:PORT is required")?;
    let ca = a.ca_file.clone().ok_or("--ca-file F is required")?;
    let domain = a.host.as_deref().unwrap_or("xmpp.example.test");
    let cred = match &a.ccache {
        Some(c) => Some(Credential::from_ccache(c).map_err(|e| e.to_string())?),
        None => None,
    };
    let jid = login_gssapi(addr, ca, domain, cred.as_ref(), &a.authzid, "gssapi-check")?;
    println!("OK {jid}");
    Ok(())
}

/// The raw RFC 4752 login over c2s (STARTTLS, GSSAPI, restart, bind) with
/// `cred` (None: the default ccache); the bound JID.
fn login_gssapi(
    addr: &str,
    ca: String,
    domain: &str,
    cred: Option<&Credential>,
    authzid: &str,
    resource: &str,
) -> R<String> {
    let mut tcp = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let open = format!(
        "<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    );
    tcp.write_all(open.as_bytes()).map_err(|e| e.to_string())?;
    let f = read_until(&mut tcp, |t| t.contains("</stream:features>"))?;
    if !f.contains("<starttls") {
        return Err(format!("no STARTTLS offered: {f}"));
    }
    tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .map_err(|e| e.to_string())?;
    read_until(&mut tcp, |t| t.contains("<proceed"))?;
    let config = xmpp_sansio_hosts::tls::client_config(
        &xmpp_sansio_hosts::tls::Trust::CaFile(ca),
        None,
        false,
        None,
    )?;
    let name = rustls::pki_types::ServerName::try_from(domain.to_owned())
        .map_err(|e| format!("server name: {e}"))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(open.as_bytes()).map_err(|e| e.to_string())?;
    let f = read_until(&mut tls, |t| t.contains("</stream:features>"))?;
    if !f.contains("<mechanism>GSSAPI</mechanism>") {
        return Err(format!("no GSSAPI offered: {f}"));
    }
    let mut init = Initiator::new("xmpp", domain, cred).map_err(|e| e.to_string())?;
    let first = match init.step(None).map_err(|e| e.to_string())? {
        GssStep::Continue(t) => t,
        GssStep::Complete(t) => t.unwrap_or_default(),
    };
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let auth = format!(
        "<auth xmlns='{NS_SASL}' mechanism='GSSAPI'>{}</auth>",
        b64(&first)
    );
    tls.write_all(auth.as_bytes()).map_err(|e| e.to_string())?;
    let mut layer_done = false;
    loop {
        let answer = read_until(&mut tls, sasl_done)?;
        match sasl_answer(&answer)? {
            Sasl::Failure(f) => return Err(format!("SASL failure: {f}")),
            Sasl::Success => {
                if !layer_done {
                    return Err("success before the security-layer exchange".into());
                }
                break;
            }
            Sasl::Challenge(data) if !init.is_complete() => {
                let out = match init.step(Some(&data)).map_err(|e| e.to_string())? {
                    GssStep::Continue(t) => t,
                    GssStep::Complete(t) => t.unwrap_or_default(),
                };
                let r = format!("<response xmlns='{NS_SASL}'>{}</response>", b64(&out));
                tls.write_all(r.as_bytes()).map_err(|e| e.to_string())?;
            }
            Sasl::Challenge(data) => {
                let offer = init.unwrap(&data).map_err(|e| e.to_string())?;
                if offer.len() != 4 || offer[0] & 1 == 0 {
                    return Err(format!("security-layer offer {offer:?} without 'no layer'"));
                }
                let mut reply = vec![0x01, 0, 0, 0];
                reply.extend_from_slice(authzid.as_bytes());
                let w = init.wrap(&reply).map_err(|e| e.to_string())?;
                let r = format!("<response xmlns='{NS_SASL}'>{}</response>", b64(&w));
                tls.write_all(r.as_bytes()).map_err(|e| e.to_string())?;
                layer_done = true;
            }
        }
    }
    tls.write_all(open.as_bytes()).map_err(|e| e.to_string())?;
    let f = read_until(&mut tls, |t| t.contains("</stream:features>"))?;
    if !f.contains("urn:ietf:params:xml:ns:xmpp-bind") {
        return Err(format!("no bind after the restart: {f}"));
    }
    let bind = format!("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
    tls.write_all(bind.as_bytes()).map_err(|e| e.to_string())?;
    let r = read_until(&mut tls, |t| t.contains("</iq>"))?;
    let jid = between(&r, "<jid>", "</jid>").ok_or(format!("no bound JID: {r}"))?;
    let _ = tls.write_all(b"</stream:stream>");
    Ok(jid.to_string())
}
