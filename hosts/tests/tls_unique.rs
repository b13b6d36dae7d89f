//! tls-unique (RFC 5929 section 3) computed by the blocking client on a
//! real TLS 1.2 handshake, checked against an independent implementation:
//! a Python `ssl` (OpenSSL) TLS 1.2 server's
//! `get_channel_binding("tls-unique")`, which reads the Finished message
//! from OpenSSL. Skipped when python3 is not available.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xmpp_sansio::sasl::channel_binding::{ChannelBindingType, TlsVersion};
use xmpp_sansio_hosts::tls::{self, BindingChoice, Trust};

const DOMAIN: &str = "sansio.test";

const SERVER: &str = r#"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers(sys.argv[3])
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
tls = ctx.wrap_socket(conn, server_side=True)
print(tls.cipher()[0], tls.get_channel_binding("tls-unique").hex(), flush=True)
tls.recv(1)
"#;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One handshake with a Python server offering only `cipher` (OpenSSL
/// name): the client's tls-unique and the server's.
fn run(cipher: &str) -> Option<(String, String, String)> {
    let python = Command::new("python3").arg("-c").arg("import ssl").status();
    if !matches!(python, Ok(s) if s.success()) {
        eprintln!("python3 with ssl not available: skipped");
        return None;
    }
    let (cert, key) = common::pki(DOMAIN);
    let dir = std::env::temp_dir().join(format!("tls-unique-{}-{cipher}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), common::pem("CERTIFICATE", &cert)).unwrap();
    std::fs::write(
        dir.join("key.pem"),
        common::pem("PRIVATE KEY", key.secret_der()),
    )
    .unwrap();
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(SERVER)
        .arg(dir.join("cert.pem"))
        .arg(dir.join("key.pem"))
        .arg(cipher)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut port = String::new();
    out.read_line(&mut port).unwrap();
    let port: u16 = port.trim().parse().expect("port");
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let config = tls::client_config(
        &Trust::Certificates(vec![cert]),
        None,
        false,
        Some(TlsVersion::Tls12),
    )
    .unwrap();
    let up = tls::blocking_connect(
        config,
        DOMAIN,
        Box::new(sock),
        &[],
        Some(Instant::now() + Duration::from_secs(20)),
        BindingChoice::Auto,
        false,
    )
    .expect("handshake");
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    drop(up.stream);
    let mut rest = Vec::new();
    let _ = out.read_to_end(&mut rest);
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let mut words = line.split_whitespace();
    let suite = words.next().expect("suite").to_owned();
    let server = words.next().expect("tls-unique").to_owned();
    let client = up
        .info
        .channel_bindings
        .iter()
        .find(|b| b.kind == ChannelBindingType::TlsUnique)
        .map(|b| hex(b.data.expose()))
        .unwrap_or_else(|| panic!("no tls-unique: {}", up.summary));
    Some((suite, client, server))
}

/// The client's tls-unique is OpenSSL's, 12 bytes, on the suite asked for.
fn check(cipher: &str) {
    if let Some((suite, client, server)) = run(cipher) {
        assert_eq!(suite, cipher);
        assert_eq!(client.len(), 24);
        assert_eq!(client, server);
    }
}

#[test]
fn tls_unique_matches_openssl_with_a_sha256_suite() {
    check("ECDHE-ECDSA-AES128-GCM-SHA256");
}

#[test]
fn tls_unique_matches_openssl_with_a_sha384_suite() {
    check("ECDHE-ECDSA-AES256-GCM-SHA384");
}
