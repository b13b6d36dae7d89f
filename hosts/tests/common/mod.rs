//! The fixture of the tests that run `xmpp-server-async` in process: a
//! server on its own runtime, over loopback TCP, STARTTLS with a
//! certificate made by rcgen (or no TLS), accounts in a fresh SQLite file.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use xmpp_sansio_hosts::async_server::{self, Shared};

pub const DOMAIN: &str = "load.test";

pub struct Fixture {
    pub dir: PathBuf,
    pub addr: std::net::SocketAddr,
    pub shared: Arc<Shared>,
    pub _runtime: tokio::runtime::Runtime,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// DER as PEM.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A self-signed certificate for `domain` (ECDSA P-256, by rcgen) and its
/// key.
pub fn pki(
    domain: &str,
) -> (
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![domain.to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into();
    (cert.der().clone(), key)
}

/// A server with TLS (`tls`) or without, registration open.
pub fn server(name: &str, tls: bool) -> Fixture {
    let dir = std::env::temp_dir().join(format!("xmpp-load-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = pki(DOMAIN);
    std::fs::write(dir.join("cert.pem"), pem("CERTIFICATE", &cert)).unwrap();
    std::fs::write(dir.join("key.pem"), pem("PRIVATE KEY", key.secret_der())).unwrap();
    let mut argv = vec![
        "--listen".to_string(),
        "127.0.0.1:0".into(),
        "--domain".into(),
        DOMAIN.into(),
        "--db".into(),
        dir.join("accounts.db").display().to_string(),
        "--allow-register".into(),
    ];
    if tls {
        argv.extend([
            "--cert".into(),
            dir.join("cert.pem").display().to_string(),
            "--key".into(),
            dir.join("key.pem").display().to_string(),
        ]);
    } else {
        argv.extend(["--tls".into(), "none".into()]);
    }
    let a = async_server::parse_args(argv).unwrap().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (addr, shared) = runtime.block_on(async_server::start(&a)).unwrap();
    Fixture {
        dir,
        addr,
        shared,
        _runtime: runtime,
    }
}
