//! TLS for the hosts, with rustls: the client configuration (`--ca-file`
//! or `--insecure`), the handshakes on the drivers' connections (blocking
//! and tokio) with the upgrade callbacks they take, and the
//! channel-binding data the SCRAM `-PLUS` mechanisms need.
//!
//! What a rustls host can supply (RFC 5056 types):
//!
//! - `tls-exporter` (RFC 9266): `export_keying_material` with the label
//!   `EXPORTER-Channel-Binding`, no context, 32 bytes. On TLS 1.3 always; on
//!   TLS 1.2 only when the extended master secret (RFC 7627) was negotiated,
//!   which rustls does not report: this host asks rustls to *require* it
//!   (`require_ems`) when tls-exporter is explicitly requested, and leaves
//!   tls-exporter out on TLS 1.2 otherwise.
//! - `tls-server-end-point` (RFC 5929 section 4.1): a hash of the server's
//!   end-entity certificate, with the certificate's signature hash (SHA-256
//!   when that is MD5 or SHA-1). The signature algorithm is read from the DER
//!   here; certificates whose algorithm has no single hash (Ed25519, Ed448)
//!   or is unknown get no binding.
//! - `tls-unique` (RFC 5929 section 3): the first Finished message of a TLS
//!   1.2 handshake. rustls does not expose it; the blocking client computes
//!   it for a full TLS 1.2 handshake from the recorded handshake and the
//!   master secret (see `tls_unique`). Not on a resumed handshake, not in the
//!   tokio client (undefined on TLS 1.3 anyway).

use std::io;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConnection, ConnectionCommon, DigitallySignedStruct, RootCertStore, SideData,
    SignatureScheme,
};
use sha2::Digest;
use xmpp_sansio::client::TlsInfo;
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};

use crate::blocking::{is_interrupt, BoxTransport, Transport};
use crate::tokio::{BoxStream, UpgradeFuture};
use crate::Upgraded;

/// How the server's certificate is checked.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The PEM certificates of this file are the trust anchors. A
    /// certificate of the file presented as the server's own (a self-signed
    /// test certificate, often marked `CA:TRUE`, which webpki refuses as an
    /// end entity) is trusted as it is, after the name check.
    CaFile(String),
    /// These DER certificates are the trust anchors (the same rules as
    /// [`Trust::CaFile`]): for anchors a host has in memory.
    Certificates(Vec<CertificateDer<'static>>),
    /// Any certificate: no server authentication (tests only).
    Insecure,
}

/// Which channel-binding data to hand to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingChoice {
    /// Every type this host can supply on the connection.
    Auto,
    /// Only this one.
    Only(ChannelBindingType),
    /// None: the client uses a non-PLUS mechanism.
    None,
}

/// The label of RFC 9266.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client configuration. `alpn`: the ALPN protocol to offer
/// (`xmpp-client` for XEP-0368 direct TLS). `require_ems`: refuse TLS 1.2
/// servers without the extended master secret (needed for a sound
/// tls-exporter on TLS 1.2). `only`: allow only this TLS version (1.2 or
/// 1.3); both otherwise.
pub fn client_config(
    trust: &Trust,
    alpn: Option<&[u8]>,
    require_ems: bool,
    only: Option<TlsVersion>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    client_config_with_auth(trust, alpn, require_ems, only, None)
}

/// A TLS client certificate and its key (`--client-cert`, `--client-key`):
/// what the client presents when the server asks (for SASL EXTERNAL).
#[derive(Debug)]
pub struct ClientAuth {
    /// The chain, end entity first.
    pub certs: Vec<CertificateDer<'static>>,
    /// The private key of the end entity.
    pub key: PrivateKeyDer<'static>,
}

impl Clone for ClientAuth {
    fn clone(&self) -> Self {
        Self {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl ClientAuth {
    /// Loads a PEM certificate chain (end entity first) and a PEM key.
    pub fn load(cert: &str, key: &str) -> Result<Self, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(Path::new(cert))
            .map_err(|e| format!("--client-cert {cert}: {e}"))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--client-cert {cert}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("--client-cert {cert}: no certificate in it"));
        }
        let key = PrivateKeyDer::from_pem_file(Path::new(key))
            .map_err(|e| format!("--client-key {key}: {e}"))?;
        Ok(Self { certs, key })
    }
}

/// [`client_config`] that presents `auth` when the server asks for a
/// client certificate.
pub fn client_config_with_auth(
    trust: &Trust,
    alpn: Option<&[u8]>,
    require_ems: bool,
    only: Option<TlsVersion>,
    auth: Option<&ClientAuth>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = provider();
    let ca_file = match trust {
        Trust::Insecure => None,
        Trust::CaFile(path) => Some(CaFile::load(path, provider.clone())?),
        Trust::Certificates(certs) => Some(CaFile::new(
            certs.clone(),
            provider.clone(),
            "trusted certificates",
        )?),
    };
    let verifier = Arc::new(Verifier {
        ca_file,
        provider: provider.clone(),
    });
    let versions: &[&rustls::SupportedProtocolVersion] = match only {
        None => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        Some(TlsVersion::Tls12) => &[&rustls::version::TLS12],
        Some(v) => return Err(format!("tls: {v:?} is not supported by rustls")),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls config: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match auth {
        Some(a) => builder
            .with_client_auth_cert(a.certs.clone(), a.key.clone_key())
            .map_err(|e| format!("--client-cert/--client-key: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    if let Some(p) = alpn {
        config.alpn_protocols = vec![p.to_vec()];
    }
    config.require_ems = require_ems;
    Ok(Arc::new(config))
}

/// The negotiated TLS version, in the crate's terms.
pub fn tls_version(conn: &ClientConnection) -> Option<TlsVersion> {
    match conn.protocol_version()? {
        rustls::ProtocolVersion::TLSv1_3 => Some(TlsVersion::Tls13),
        rustls::ProtocolVersion::TLSv1_2 => Some(TlsVersion::Tls12),
        rustls::ProtocolVersion::TLSv1_1 => Some(TlsVersion::Tls11),
        rustls::ProtocolVersion::TLSv1_0 => Some(TlsVersion::Tls10),
        _ => None,
    }
}

/// What the handshake gave: the client's `TlsInfo` and a human summary.
pub struct Established {
    /// For `Client::tls_established` / `TlsMode::Direct`.
    pub info: TlsInfo,
    /// `TLSv1.3 TLS13_AES_256_GCM_SHA384 ...`, for the transcript note.
    pub summary: String,
}

/// Extracts the channel-binding data `choice` asks for from a finished
/// handshake. `ems_required`: the configuration required the extended
/// master secret (so tls-exporter is sound on TLS 1.2).
pub fn established(
    conn: &ClientConnection,
    choice: BindingChoice,
    ems_required: bool,
) -> Result<Established, String> {
    established_with(conn, choice, ems_required, None)
}

/// [`established`] with the recording of the handshake (the blocking
/// client), from which tls-unique is computed on TLS 1.2.
fn established_with(
    conn: &ClientConnection,
    choice: BindingChoice,
    ems_required: bool,
    recording: Option<(
        &crate::tls_unique::Recording,
        &crate::tls_unique::MasterSecret,
    )>,
) -> Result<Established, String> {
    let version = tls_version(conn).ok_or("tls: unknown protocol version")?;
    let wanted = |t: ChannelBindingType| match choice {
        BindingChoice::Auto => true,
        BindingChoice::Only(o) => o == t,
        BindingChoice::None => false,
    };
    let mut bindings = Vec::new();
    let mut notes = Vec::new();
    if wanted(ChannelBindingType::TlsExporter) {
        if version == TlsVersion::Tls13 || ems_required {
            let ekm = conn
                .export_keying_material([0u8; 32], EXPORTER_LABEL, None)
                .map_err(|e| format!("tls-exporter: {e}"))?;
            bindings.push(ChannelBinding::new(ChannelBindingType::TlsExporter, ekm));
        } else {
            notes.push("no tls-exporter (TLS 1.2, extended master secret not known)".to_owned());
        }
    }
    if wanted(ChannelBindingType::TlsServerEndPoint) {
        match conn.peer_certificates().and_then(|c| c.first()) {
            Some(cert) => match tls_server_end_point(cert.as_ref()) {
                Ok(data) => bindings.push(ChannelBinding::new(
                    ChannelBindingType::TlsServerEndPoint,
                    data,
                )),
                Err(why) => notes.push(format!("no tls-server-end-point ({why})")),
            },
            None => notes.push("no tls-server-end-point (no server certificate)".to_owned()),
        }
    }
    if wanted(ChannelBindingType::TlsUnique) && version == TlsVersion::Tls12 {
        let sha384 = conn
            .negotiated_cipher_suite()
            .is_some_and(|s| format!("{:?}", s.suite()).ends_with("SHA384"));
        match recording.map(|(r, m)| crate::tls_unique::tls_unique(r, sha384, m)) {
            Some(Ok(data)) => {
                bindings.push(ChannelBinding::new(ChannelBindingType::TlsUnique, data))
            }
            Some(Err(why)) => notes.push(format!("no tls-unique ({why})")),
            None => notes.push("no tls-unique (the handshake was not recorded)".to_owned()),
        }
    } else if choice == BindingChoice::Only(ChannelBindingType::TlsUnique) {
        notes.push("no tls-unique (not TLS 1.2)".to_owned());
    }
    let kinds: Vec<&str> = bindings.iter().map(|b| b.kind.as_str()).collect();
    let mut summary = format!(
        "{} {}",
        match version {
            TlsVersion::Tls13 => "TLSv1.3",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls11 => "TLSv1.1",
            _ => "TLSv1.0",
        },
        conn.negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
    );
    if let Some(p) = conn.alpn_protocol() {
        summary.push_str(&format!(", ALPN {}", String::from_utf8_lossy(p)));
    }
    summary.push_str(&format!(
        ", channel binding supplied: {}",
        if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(" ")
        }
    ));
    for n in notes {
        summary.push_str(&format!("; {n}"));
    }
    Ok(Established {
        info: TlsInfo {
            version,
            channel_bindings: bindings,
        },
        summary,
    })
}

// ---------------------------------------------------------------------------
// tls-server-end-point (RFC 5929 section 4.1)

/// The hash a certificate's signature algorithm uses, as RFC 5929 needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertHash {
    /// SHA-224.
    Sha224,
    /// SHA-256 (also for MD5 and SHA-1 signatures).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// The tls-server-end-point binding of a DER certificate: its hash with the
/// signature algorithm's hash function, SHA-256 when that is MD5 or SHA-1.
pub fn tls_server_end_point(cert: &[u8]) -> Result<Vec<u8>, &'static str> {
    Ok(match certificate_hash(cert)? {
        CertHash::Sha224 => sha2::Sha224::digest(cert).to_vec(),
        CertHash::Sha256 => sha2::Sha256::digest(cert).to_vec(),
        CertHash::Sha384 => sha2::Sha384::digest(cert).to_vec(),
        CertHash::Sha512 => sha2::Sha512::digest(cert).to_vec(),
    })
}

// OIDs, as the DER content bytes of the OBJECT IDENTIFIER.
const PKCS1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01]; // 1.2.840.113549.1.1
const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]; // 1.2.840.10045.4.1
const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03]; // 1.2.840.10045.4.3
const DSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03]; // 1.2.840.10040.4.3
const NIST_HASH: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02]; // 2.16.840.1.101.3.4.2
const NIST_DSA: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03]; // 2.16.840.1.101.3.4.3
const ED25519: &[u8] = &[0x2b, 0x65, 0x70]; // 1.3.101.112
const ED448: &[u8] = &[0x2b, 0x65, 0x71]; // 1.3.101.113

/// The RFC 5929 hash of a DER certificate: from its outer
/// `signatureAlgorithm`.
pub fn certificate_hash(cert: &[u8]) -> Result<CertHash, &'static str> {
    const BAD: &str = "certificate is not valid DER";
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let (tag, body, _) = der_next(cert).ok_or(BAD)?;
    if tag != 0x30 {
        return Err(BAD);
    }
    let (tag, _tbs, rest) = der_next(body).ok_or(BAD)?;
    if tag != 0x30 {
        return Err(BAD);
    }
    // AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }
    let (tag, alg, _) = der_next(rest).ok_or(BAD)?;
    if tag != 0x30 {
        return Err(BAD);
    }
    let (tag, oid, params) = der_next(alg).ok_or(BAD)?;
    if tag != 0x06 {
        return Err(BAD);
    }
    let last = |prefix: &[u8]| {
        (oid.len() == prefix.len() + 1 && oid.starts_with(prefix)).then(|| oid[prefix.len()])
    };
    if let Some(n) = last(PKCS1) {
        return match n {
            4 | 5 => Ok(CertHash::Sha256), // md5WithRSA, sha1WithRSA: SHA-256
            11 => Ok(CertHash::Sha256),
            12 => Ok(CertHash::Sha384),
            13 => Ok(CertHash::Sha512),
            14 => Ok(CertHash::Sha224),
            10 => rsa_pss_hash(params),
            _ => Err("unsupported RSA signature algorithm"),
        };
    }
    if oid == ECDSA_SHA1 || oid == DSA_SHA1 {
        return Ok(CertHash::Sha256);
    }
    if let Some(n) = last(ECDSA_SHA2) {
        // ecdsa-with-SHA224 (1) .. ecdsa-with-SHA512 (4)
        return match n {
            1 => Ok(CertHash::Sha224),
            2 => Ok(CertHash::Sha256),
            3 => Ok(CertHash::Sha384),
            4 => Ok(CertHash::Sha512),
            _ => Err("unsupported ECDSA signature algorithm"),
        };
    }
    if let Some(n) = last(NIST_DSA) {
        // dsa-with-sha224 (1), dsa-with-sha256 (2)
        return match n {
            1 => Ok(CertHash::Sha224),
            2 => Ok(CertHash::Sha256),
            _ => Err("unsupported DSA signature algorithm"),
        };
    }
    if oid == ED25519 || oid == ED448 {
        return Err(
            "EdDSA certificates have no single signature hash (RFC 5929 leaves them undefined)",
        );
    }
    Err("unknown certificate signature algorithm")
}

/// RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier
/// DEFAULT sha1, ... }: the named hash, SHA-256 when it is SHA-1 or absent.
fn rsa_pss_hash(params: &[u8]) -> Result<CertHash, &'static str> {
    let Some((0x30, seq, _)) = der_next(params) else {
        return Ok(CertHash::Sha256);
    };
    let Some((0xa0, explicit, _)) = der_next(seq) else {
        return Ok(CertHash::Sha256); // hashAlgorithm absent: sha1 -> SHA-256
    };
    let (tag, alg, _) = der_next(explicit).ok_or("bad RSASSA-PSS parameters")?;
    let (tag2, oid, _) = der_next(alg).ok_or("bad RSASSA-PSS parameters")?;
    if tag != 0x30 || tag2 != 0x06 {
        return Err("bad RSASSA-PSS parameters");
    }
    if oid.len() == NIST_HASH.len() + 1 && oid.starts_with(NIST_HASH) {
        return match oid[NIST_HASH.len()] {
            1 => Ok(CertHash::Sha256),
            2 => Ok(CertHash::Sha384),
            3 => Ok(CertHash::Sha512),
            4 => Ok(CertHash::Sha224),
            _ => Err("unsupported RSASSA-PSS hash"),
        };
    }
    Ok(CertHash::Sha256) // sha1 (1.3.14.3.2.26) or other: SHA-256
}

/// One DER TLV: (tag, contents, the bytes after it). Single-byte tags,
/// definite lengths only (DER).
pub(crate) fn der_next(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

// ---------------------------------------------------------------------------
// Certificate verifiers

/// The server-certificate check of `--ca-file` or `--insecure`; both check
/// the handshake signature the same way.
#[derive(Debug)]
struct Verifier {
    /// `None`: `--insecure`, any certificate (the handshake signature is
    /// still checked, so the binding data is that of the certificate the
    /// server holds the key of).
    ca_file: Option<CaFile>,
    provider: Arc<CryptoProvider>,
}

/// `--ca-file`: webpki against the file's certificates, or the exact
/// certificate when the server presents one of them as its own.
#[derive(Debug)]
struct CaFile {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl CaFile {
    fn load(path: &str, provider: Arc<CryptoProvider>) -> Result<Self, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(Path::new(path))
            .map_err(|e| format!("--ca-file {path}: {e}"))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--ca-file {path}: {e}"))?;
        Self::new(certs, provider, &format!("--ca-file {path}"))
    }

    /// Errors begin with `origin` (`--ca-file F`).
    fn new(
        certs: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
        origin: &str,
    ) -> Result<Self, String> {
        if certs.is_empty() {
            return Err(format!("{origin}: no certificate in it"));
        }
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(certs.iter().cloned());
        if added == 0 {
            return Err(format!("{origin}: no usable certificate in it"));
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("{origin}: {e}"))?;
        Ok(Self {
            webpki,
            pinned: certs,
        })
    }
}

/// The `ServerCertVerifier` methods that check a handshake signature,
/// each with the rustls function of the same name.
macro_rules! handshake_signatures {
    ($($check:ident),*) => {$(
        fn $check(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            $check(message, cert, dss, &self.provider.signature_verification_algorithms)
        }
    )*};
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = &self.ca_file else {
            return Ok(ServerCertVerified::assertion());
        };
        if ca.pinned.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_name(&parsed, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }
        ca.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    // The handshake signature, checked with the provider's algorithms
    // (rustls's `verify_tls12_signature` and `verify_tls13_signature`).
    handshake_signatures!(verify_tls12_signature, verify_tls13_signature);

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

// ---------------------------------------------------------------------------
// Handshakes on the drivers' connections

/// Runs a TLS handshake (client or server side) on a blocking connection,
/// by `deadline`. `pending`: bytes already read from the connection that
/// belong to TLS (after `<proceed/>`); they go into rustls first.
pub fn handshake<C, D, T>(
    conn: C,
    sock: T,
    pending: &[u8],
    deadline: Option<Instant>,
) -> Result<rustls::StreamOwned<C, T>, String>
where
    C: DerefMut + Deref<Target = ConnectionCommon<D>>,
    D: SideData,
    T: Transport,
{
    handshake_recorded(conn, sock, pending, deadline, None)
}

/// [`handshake`] that records the bytes each way in `recording` while
/// handshaking (for tls-unique).
fn handshake_recorded<C, D, T>(
    mut conn: C,
    mut sock: T,
    pending: &[u8],
    deadline: Option<Instant>,
    mut recording: Option<&mut crate::tls_unique::Recording>,
) -> Result<rustls::StreamOwned<C, T>, String>
where
    C: DerefMut + Deref<Target = ConnectionCommon<D>>,
    D: SideData,
    T: Transport,
{
    sock.set_read_deadline(deadline)
        .map_err(|e| format!("io set_read_timeout: {e}"))?;
    if let Some(r) = recording.as_deref_mut() {
        r.add_read(pending);
    }
    let mut rest = pending;
    while !rest.is_empty() {
        conn.read_tls(&mut rest)
            .map_err(|e| format!("tls pending bytes: {e}"))?;
        conn.process_new_packets()
            .map_err(|e| format!("tls handshake: {e}"))?;
    }
    while conn.is_handshaking() {
        let done = match recording.as_deref_mut() {
            Some(rec) => conn.complete_io(&mut crate::tls_unique::Recorder {
                inner: &mut sock,
                rec,
            }),
            None => conn.complete_io(&mut sock),
        };
        match done {
            Ok(_) => {}
            // A host's transport wakes up for other inputs: go on.
            Err(e) if is_interrupt(&e) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err("tls handshake timed out".to_owned())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err("tls handshake: the peer closed the connection".to_owned())
            }
            Err(e) => return Err(format!("tls handshake: {e}")),
        }
    }
    // Send whatever is left (the client Finished on TLS 1.2).
    while conn.wants_write() {
        match recording.as_deref_mut() {
            Some(rec) => conn.write_tls(&mut crate::tls_unique::Recorder {
                inner: &mut sock,
                rec,
            }),
            None => conn.write_tls(&mut sock),
        }
        .map_err(|e| format!("tls handshake: {e}"))?;
    }
    Ok(rustls::StreamOwned::new(conn, sock))
}

/// A client-side STARTTLS upgrade for [`crate::blocking::Driver::with_tls`]:
/// the handshake with `config` for `server_name`, then the channel
/// bindings `binding` asks for (`require_ems` as for [`established`]).
pub fn blocking_upgrade(
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
    binding: BindingChoice,
    require_ems: bool,
) -> impl FnMut(BoxTransport, &[u8], Option<Instant>) -> Result<Upgraded<BoxTransport>, String>
       + Send
       + 'static {
    let server_name = server_name.to_owned();
    move |sock, pending, deadline| {
        blocking_connect(
            config.clone(),
            &server_name,
            sock,
            pending,
            deadline,
            binding,
            require_ems,
        )
    }
}

/// The client side of a TLS handshake on a blocking connection (direct
/// TLS, or STARTTLS with `pending`), and what it gave.
pub fn blocking_connect(
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
    sock: BoxTransport,
    pending: &[u8],
    deadline: Option<Instant>,
    binding: BindingChoice,
    require_ems: bool,
) -> Result<Upgraded<BoxTransport>, String> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| format!("tls bad server name {server_name:?}: {e}"))?;
    // Record the handshake for tls-unique only when it is wanted, with a
    // key log of this connection's own for the TLS 1.2 master secret.
    let unique = matches!(
        binding,
        BindingChoice::Auto | BindingChoice::Only(ChannelBindingType::TlsUnique)
    );
    let master = Arc::new(crate::tls_unique::MasterSecret::default());
    let config = if unique {
        let mut own = (*config).clone();
        own.key_log = master.clone();
        Arc::new(own)
    } else {
        config
    };
    let conn = ClientConnection::new(config, name).map_err(|e| format!("tls client setup: {e}"))?;
    let mut recording = crate::tls_unique::Recording::default();
    let stream = handshake_recorded(
        conn,
        sock,
        pending,
        deadline,
        unique.then_some(&mut recording),
    )?;
    let est = established_with(
        &stream.conn,
        binding,
        require_ems,
        unique.then_some((&recording, &*master)),
    )?;
    Ok(Upgraded {
        stream: Box::new(stream),
        info: est.info,
        summary: est.summary,
    })
}

/// The client side of a TLS handshake on an async connection (direct TLS,
/// or STARTTLS), with tokio-rustls, and what it gave. A TLS server never
/// speaks first: bytes after `<proceed/>` (`pending`) can only be an
/// injection, and are refused.
pub async fn tokio_connect(
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
    io: BoxStream,
    pending: &[u8],
    binding: BindingChoice,
    require_ems: bool,
) -> Result<Upgraded<BoxStream>, String> {
    if !pending.is_empty() {
        return Err(format!(
            "tls {} bytes after <proceed/> before the TLS handshake",
            pending.len()
        ));
    }
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| format!("tls bad server name {server_name:?}: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, io)
        .await
        .map_err(|e| format!("tls handshake: {e}"))?;
    let est = established(stream.get_ref().1, binding, require_ems)?;
    Ok(Upgraded {
        stream: Box::new(stream),
        info: est.info,
        summary: est.summary,
    })
}

/// A client-side STARTTLS upgrade for [`crate::tokio::Connection::with_tls`]
/// ([`tokio_connect`] with these settings).
pub fn tokio_upgrade(
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
    binding: BindingChoice,
    require_ems: bool,
) -> impl FnMut(BoxStream, Vec<u8>) -> UpgradeFuture + Send + 'static {
    let server_name = server_name.to_owned();
    move |io, pending| {
        let (config, name) = (config.clone(), server_name.clone());
        Box::pin(
            async move { tokio_connect(config, &name, io, &pending, binding, require_ems).await },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_walk_reads_lengths() {
        assert_eq!(der_next(&[0x30, 0x00]), Some((0x30, &[][..], &[][..])));
        assert_eq!(
            der_next(&[0x04, 0x81, 0x01, 0xaa, 0xbb]),
            Some((0x04, &[0xaa][..], &[0xbb][..]))
        );
        assert_eq!(der_next(&[0x04, 0x02, 0xaa]), None);
    }

    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag, body.len() as u8];
        v.extend_from_slice(body);
        v
    }

    /// A certificate skeleton: empty tbsCertificate, the given
    /// signatureAlgorithm (OID + parameters), an empty signature.
    fn cert(oid: &[u8], params: &[u8]) -> Vec<u8> {
        let mut alg = tlv(0x06, oid);
        alg.extend_from_slice(params);
        let mut body = tlv(0x30, &[]);
        body.extend(tlv(0x30, &alg));
        body.extend(tlv(0x03, &[0]));
        tlv(0x30, &body)
    }

    #[test]
    fn signature_hash_of_certificates() {
        let null = [0x05, 0x00];
        let rsa = |n: u8| [PKCS1, &[n]].concat();
        assert_eq!(
            certificate_hash(&cert(&rsa(4), &null)),
            Ok(CertHash::Sha256)
        ); // md5
        assert_eq!(
            certificate_hash(&cert(&rsa(5), &null)),
            Ok(CertHash::Sha256)
        ); // sha1
        assert_eq!(
            certificate_hash(&cert(&rsa(11), &null)),
            Ok(CertHash::Sha256)
        );
        assert_eq!(
            certificate_hash(&cert(&rsa(12), &null)),
            Ok(CertHash::Sha384)
        );
        assert_eq!(
            certificate_hash(&cert(&rsa(13), &null)),
            Ok(CertHash::Sha512)
        );
        assert_eq!(
            certificate_hash(&cert(ECDSA_SHA1, &[])),
            Ok(CertHash::Sha256)
        );
        let ecdsa = |n: u8| [ECDSA_SHA2, &[n]].concat();
        assert_eq!(
            certificate_hash(&cert(&ecdsa(2), &[])),
            Ok(CertHash::Sha256)
        );
        assert_eq!(
            certificate_hash(&cert(&ecdsa(3), &[])),
            Ok(CertHash::Sha384)
        );
        assert_eq!(
            certificate_hash(&cert(&ecdsa(4), &[])),
            Ok(CertHash::Sha512)
        );
        // RSASSA-PSS: no parameters / no hashAlgorithm -> SHA-1 default -> SHA-256;
        // hashAlgorithm sha384 -> SHA-384.
        assert_eq!(certificate_hash(&cert(&rsa(10), &[])), Ok(CertHash::Sha256));
        assert_eq!(
            certificate_hash(&cert(&rsa(10), &tlv(0x30, &[]))),
            Ok(CertHash::Sha256)
        );
        let sha384 = tlv(0x30, &tlv(0x06, &[NIST_HASH, &[2]].concat()));
        let pss = tlv(0x30, &tlv(0xa0, &sha384));
        assert_eq!(
            certificate_hash(&cert(&rsa(10), &pss)),
            Ok(CertHash::Sha384)
        );
        assert!(certificate_hash(&cert(ED25519, &[])).is_err());
        assert!(certificate_hash(&[0x30, 0x05, 0x00]).is_err());
        // The binding is the hash of the whole DER.
        let c = cert(&rsa(12), &null);
        assert_eq!(
            tls_server_end_point(&c).unwrap(),
            sha2::Sha384::digest(&c).to_vec()
        );
    }
}
