//! SASL EXTERNAL with a TLS client certificate, end to end in-process: a
//! `Client` on the blocking driver presents a certificate (rcgen, signed by
//! a throw-away CA) during STARTTLS over loopback TCP; the `Server` on the
//! blocking driver asks for one with `client_cert::optional_verifier` and
//! answers the EXTERNAL request from its identity
//! (`client_cert::user_for`), as the example server does with
//! `--client-ca`, and offers EXTERNAL only when the client presented a
//! verified certificate (`Server::client_certificate`, from
//! `Driver::with_after_tls`); the same with the server on the tokio driver.

use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    OtherNameValue, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use xmpp_sansio::client::{Client, ClientConfig, ClientEvent, Credentials};
use xmpp_sansio::sasl::scram::derive_server_credentials;
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest};
use xmpp_sansio::server::{BindAnswer, Server, ServerConfig, ServerEvent};
use xmpp_sansio::UsageError;
use xmpp_sansio_hosts::blocking::{Driver, Wake};
use xmpp_sansio_hosts::server_tls::TlsSetup;
use xmpp_sansio_hosts::tls::{self, BindingChoice, ClientAuth, Trust};
use xmpp_sansio_hosts::tokio as driver;
use xmpp_sansio_hosts::{client_cert, DriverError};

const DOMAIN: &str = "sansio.test";
const BOUND: Duration = Duration::from_secs(20);

fn pkcs8(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivatePkcs8KeyDer::from(key.serialize_der()).into()
}

/// A throw-away CA.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = p.self_signed(&key).expect("CA");
        Self { cert, key }
    }

    /// A client certificate naming `xmpp_addr`.
    fn client(&self, xmpp_addr: &str) -> ClientAuth {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "a client");
        p.subject_alt_names = vec![SanType::OtherName((
            vec![1, 3, 6, 1, 5, 5, 7, 8, 5],
            OtherNameValue::Utf8String(xmpp_addr.into()),
        ))];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("signed");
        ClientAuth {
            certs: vec![cert.der().clone()],
            key: pkcs8(&key),
        }
    }
}

/// What the server host saw.
#[derive(Debug, Default)]
struct Saw {
    certificate: bool,
    mechanism: Option<String>,
    ready: Option<String>,
}

/// One connection: the server (EXTERNAL offered, client certificates
/// checked against `ca`) in a thread, the client with `credentials` and
/// `auth`. The client's bound JID or error, and what the server saw.
fn login(
    ca: &Ca,
    credentials: Credentials,
    auth: Option<&ClientAuth>,
) -> (Result<String, String>, Saw) {
    login_to(serve, ca, credentials, auth)
}

/// [`login`] against the server host `host` (`serve`, `serve_tokio`).
fn login_to(
    host: fn(TcpListener, Arc<TlsSetup>) -> Saw,
    ca: &Ca,
    credentials: Credentials,
    auth: Option<&ClientAuth>,
) -> (Result<String, String>, Saw) {
    let server_key = KeyPair::generate().expect("key");
    let server_cert = CertificateParams::new(vec![DOMAIN.to_owned()])
        .expect("params")
        .self_signed(&server_key)
        .expect("certificate");
    let server_der = server_cert.der().clone();
    let verifier = client_cert::verifier_of(vec![ca.cert.der().clone()], "test CA").expect("ca");
    let setup = Arc::new(
        TlsSetup::with_client_verifier(
            vec![server_der.clone()],
            pkcs8(&server_key),
            Some(verifier),
        )
        .expect("tls setup"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let addr = listener.local_addr().expect("address");
    let server_side = thread::spawn(move || host(listener, setup));

    let sock = TcpStream::connect(addr).expect("connect");
    let config = tls::client_config_with_auth(
        &Trust::Certificates(vec![server_der]),
        None,
        false,
        None,
        auth,
    )
    .expect("client tls");
    let upgrade = tls::blocking_upgrade(config, DOMAIN, BindingChoice::Auto, false);
    let mut settings = ClientConfig::builder("juliet@sansio.test", credentials);
    settings.resource = Some("balcony".into());
    let client = Client::new(settings.build().expect("valid"), Instant::now());
    let mut driver = Driver::new(client, sock).with_tls(upgrade);
    let until = Instant::now() + BOUND;
    let result = loop {
        match driver.next(Some(until)) {
            Ok(Wake::Event(ClientEvent::Ready { jid })) => break Ok(jid.to_string()),
            Ok(Wake::Event(ClientEvent::Error(e))) => break Err(format!("{e}")),
            Ok(Wake::Event(_)) | Ok(Wake::Interrupted) => {}
            Ok(Wake::Over) => break Err("over".into()),
            Ok(Wake::Deadline) => panic!("no login in {BOUND:?}"),
            Err(DriverError::Tls(e)) => break Err(e),
            Err(e) => break Err(e.to_string()),
        }
    };
    driver.close();
    let _ = driver.next(Some(Instant::now() + Duration::from_secs(2)));
    driver.hang_up();
    (result, server_side.join().expect("server thread"))
}

/// The server: EXTERNAL offered first (to a client with a verified
/// certificate: the host says so after TLS), SCRAM too.
fn external_server() -> Server {
    let mut settings = ServerConfig::builder(DOMAIN);
    settings.mechanisms.insert(0, "EXTERNAL".into());
    Server::new(settings.build().expect("valid"), Instant::now())
}

/// What the host does with the server's machine after an event.
type Answer = Box<dyn FnOnce(&mut Server) -> Result<(), UsageError> + Send>;

/// The server host's reaction to `ev`, either driver: juliet's SCRAM
/// credentials, EXTERNAL answered from the client certificate of the
/// handshake (`cert`), binds accepted. `Err(())`: the stream is over.
fn react(
    cert: &Mutex<Option<CertificateDer<'static>>>,
    saw: &mut Saw,
    ev: ServerEvent,
) -> Result<Option<Answer>, ()> {
    Ok(Some(match ev {
        ServerEvent::Credentials(CredentialRequest::External { authzid }) => {
            let der = cert.lock().unwrap().clone();
            saw.certificate = der.is_some();
            let verdict = client_cert::user_for(der.as_deref(), DOMAIN, authzid.as_deref());
            Box::new(move |s: &mut Server| {
                s.answer_credentials(Instant::now(), CredentialAnswer::Verdict(verdict))
            })
        }
        ServerEvent::Credentials(CredentialRequest::Scram { hash, .. }) => {
            let creds = derive_server_credentials(hash, "s3cret", b"salt", 4096).expect("kdf");
            Box::new(move |s: &mut Server| {
                s.answer_credentials(Instant::now(), CredentialAnswer::Scram(Some(creds)))
            })
        }
        ServerEvent::Credentials(other) => panic!("unexpected {other:?}"),
        ServerEvent::Bind { resource, .. } => Box::new(move |s: &mut Server| {
            s.answer_bind(Instant::now(), BindAnswer::Accept(resource))
        }),
        ServerEvent::Authenticated { mechanism, .. } => {
            saw.mechanism = Some(mechanism);
            return Ok(None);
        }
        ServerEvent::Ready { jid } => {
            saw.ready = Some(jid.to_string());
            return Ok(None);
        }
        ServerEvent::Closed | ServerEvent::Error(_) => return Err(()),
        _ => return Ok(None),
    }))
}

/// The server host on the blocking driver.
fn serve(listener: TcpListener, setup: Arc<TlsSetup>) -> Saw {
    let (sock, _) = listener.accept().expect("accept");
    let cert: Arc<Mutex<Option<CertificateDer<'static>>>> = Arc::default();
    let (slot, seen) = (cert.clone(), cert.clone());
    let mut driver = Driver::new(external_server(), sock)
        .with_tls(move |sock, pending, deadline| {
            let (up, client) = setup.blocking_accept_client(false, sock, pending, deadline)?;
            *slot.lock().unwrap() = client;
            Ok(up)
        })
        // EXTERNAL offered only with a verified certificate.
        .with_after_tls(move |server| server.client_certificate(seen.lock().unwrap().is_some()));
    let mut saw = Saw::default();
    let until = Instant::now() + BOUND;
    loop {
        let ev = match driver.next(Some(until)) {
            Ok(Wake::Event(ev)) => ev,
            Ok(Wake::Interrupted) => continue,
            Ok(Wake::Over) | Ok(Wake::Deadline) | Err(_) => break,
        };
        match react(&cert, &mut saw, ev) {
            Ok(Some(answer)) => answer(driver.machine_mut()).expect("answer"),
            Ok(None) => {}
            Err(()) => break,
        }
    }
    driver.hang_up();
    saw
}

/// The same server host on the tokio driver (`tokio_accept_client`,
/// `Connection::with_after_tls`).
fn serve_tokio(listener: TcpListener, setup: Arc<TlsSetup>) -> Saw {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let (sock, _) = listener.accept().await.expect("accept");
        let cert: Arc<Mutex<Option<CertificateDer<'static>>>> = Arc::default();
        let (slot, seen) = (cert.clone(), cert.clone());
        let (conn, handle, mut events) = driver::connection(external_server(), sock);
        let conn = conn
            .with_tls(move |io, pending| {
                let (setup, slot) = (setup.clone(), slot.clone());
                Box::pin(async move {
                    let (up, client) = setup.tokio_accept_client(false, io, &pending).await?;
                    *slot.lock().unwrap() = client;
                    Ok(up)
                })
            })
            .with_after_tls(move |server| {
                server.client_certificate(seen.lock().unwrap().is_some())
            });
        let host = async {
            let mut saw = Saw::default();
            while let Some(Ok(ev)) = events.next().await {
                match react(&cert, &mut saw, ev) {
                    Ok(Some(answer)) => handle.call(answer).expect("answer"),
                    Ok(None) => {}
                    Err(()) => break,
                }
            }
            let _ = handle.hang_up();
            saw
        };
        let (_, saw) = tokio::time::timeout(BOUND, async { tokio::join!(conn.run(), host) })
            .await
            .expect("over in time");
        saw
    })
}

#[test]
fn external_with_a_certificate_of_the_ca() {
    let ca = Ca::new("test CA");
    let auth = ca.client("juliet@sansio.test");
    let (result, saw) = login(&ca, Credentials::ClientCertificate, Some(&auth));
    assert_eq!(result.as_deref(), Ok("juliet@sansio.test/balcony"));
    assert!(saw.certificate);
    assert_eq!(saw.mechanism.as_deref(), Some("EXTERNAL"));
    assert_eq!(saw.ready.as_deref(), Some("juliet@sansio.test/balcony"));
}

#[test]
fn a_certificate_of_another_domain_is_not_authorized() {
    let ca = Ca::new("test CA");
    let auth = ca.client("juliet@elsewhere.test");
    let (result, saw) = login(&ca, Credentials::ClientCertificate, Some(&auth));
    let e = result.expect_err("refused");
    assert!(e.contains("not-authorized"), "{e}");
    assert!(saw.certificate);
    assert_eq!(saw.ready, None);
}

#[test]
fn a_certificate_of_another_ca_fails_the_handshake() {
    let ca = Ca::new("test CA");
    let auth = Ca::new("another CA").client("juliet@sansio.test");
    let (result, saw) = login(&ca, Credentials::ClientCertificate, Some(&auth));
    // TLS 1.3: the client's handshake is over before the server checks
    // its certificate: the server's alert comes with the first read.
    let e = result.expect_err("refused");
    assert!(e.contains("UnknownCA"), "{e}");
    assert_eq!(saw.mechanism, None);
}

#[test]
fn without_a_certificate_scram_still_logs_in() {
    let ca = Ca::new("test CA");
    let (result, saw) = login(&ca, Credentials::password("s3cret"), None);
    assert_eq!(result.as_deref(), Ok("juliet@sansio.test/balcony"));
    assert!(!saw.certificate);
    assert_eq!(saw.mechanism.as_deref(), Some("SCRAM-SHA-256-PLUS"));
}

#[test]
fn without_a_certificate_external_is_not_offered() {
    let ca = Ca::new("test CA");
    let (result, saw) = login(&ca, Credentials::ClientCertificate, None);
    let e = result.expect_err("refused");
    assert!(
        e.contains("SCRAM-SHA-256") && !e.contains("EXTERNAL"),
        "{e}"
    );
    assert!(!saw.certificate);
    assert_eq!(saw.ready, None);
}

/// The tokio driver does the same: `tokio_accept_client` gives the host
/// the certificate, `Connection::with_after_tls` tells the server before
/// the features go out.
#[test]
fn external_with_the_tokio_server_driver() {
    let ca = Ca::new("test CA");
    let auth = ca.client("juliet@sansio.test");
    let (result, saw) = login_to(
        serve_tokio,
        &ca,
        Credentials::ClientCertificate,
        Some(&auth),
    );
    assert_eq!(result.as_deref(), Ok("juliet@sansio.test/balcony"));
    assert!(saw.certificate);
    assert_eq!(saw.mechanism.as_deref(), Some("EXTERNAL"));
    // Without a certificate the tokio host hides EXTERNAL too.
    let (result, saw) = login_to(serve_tokio, &ca, Credentials::ClientCertificate, None);
    let e = result.expect_err("refused");
    assert!(
        e.contains("SCRAM-SHA-256") && !e.contains("EXTERNAL"),
        "{e}"
    );
    assert!(!saw.certificate);
}
