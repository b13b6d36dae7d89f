//! TLS for a server, with rustls: the server configuration from a PEM
//! certificate chain and key, the handshakes on the drivers' connections
//! (blocking and tokio), and the channel-binding data the SCRAM `-PLUS`
//! mechanisms need.
//!
//! What this host supplies (RFC 5056 types):
//!
//! - `tls-exporter` (RFC 9266): `export_keying_material` with the label
//!   `EXPORTER-Channel-Binding`, no context, 32 bytes. Sound on TLS 1.3, and
//!   on TLS 1.2 only with the extended master secret (RFC 7627): this server
//!   requires it of TLS 1.2 clients (`require_ems`), so it is always
//!   supplied.
//! - `tls-server-end-point` (RFC 5929 section 4.1): the hash of our own
//!   end-entity certificate, with its signature algorithm's hash (SHA-256
//!   for MD5 and SHA-1); not supplied for EdDSA certificates, which have no
//!   single hash (see `tls::certificate_hash`).
//! - `tls-unique` (RFC 5929 section 3): never; rustls does not expose the
//!   Finished message (and the type is undefined on TLS 1.3).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::ServerConnection;
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};
use xmpp_sansio::TlsInfo;

use crate::blocking::BoxTransport;
use crate::tls::{handshake, tls_server_end_point};
use crate::tokio::BoxStream;
use crate::Upgraded;

/// One mode's configuration twice: taking the client's order of cipher
/// suites, and ours with AES-128-GCM first (see [`TlsSetup::config_for`]).
/// Both share one session cache.
struct Suites {
    client_order: Arc<rustls::ServerConfig>,
    aes128_first: Arc<rustls::ServerConfig>,
}

fn is_chacha(s: rustls::CipherSuite) -> bool {
    matches!(
        s,
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
            | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    )
}

/// The label of RFC 9266.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// The server's TLS material, loaded once and shared by every connection.
pub struct TlsSetup {
    /// For STARTTLS: no ALPN.
    starttls: Suites,
    /// For XEP-0368 direct TLS: ALPN `xmpp-client` (a client that offers no
    /// ALPN is served too).
    direct: Suites,
    /// tls-server-end-point of our certificate, or why there is none.
    end_point: Result<Vec<u8>, &'static str>,
}

impl TlsSetup {
    /// Loads the PEM certificate chain (end entity first) and private key.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| format!("--cert {}: {e}", cert.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--cert {}: {e}", cert.display()))?;
        if certs.is_empty() {
            return Err(format!("--cert {}: no certificate in it", cert.display()));
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("--key {}: {e}", key.display()))?;
        Self::new(certs, key)
    }

    /// The setup of a DER certificate chain (end entity first) and its
    /// private key.
    pub fn new(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, String> {
        Self::with_client_verifier(certs, key, None)
    }

    /// [`TlsSetup::new`] that asks clients for a certificate and checks it
    /// with `verifier` (see [`crate::client_cert::optional_verifier`]);
    /// `None`: no client certificates.
    pub fn with_client_verifier(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        verifier: Option<Arc<dyn ClientCertVerifier>>,
    ) -> Result<Self, String> {
        let end_entity = certs.first().ok_or("tls: no certificate")?;
        let end_point = tls_server_end_point(end_entity.as_ref());
        let build = |mut provider: rustls::crypto::CryptoProvider| -> Result<_, String> {
            // The server random and the session tickets from a pool per
            // thread, not a system call each.
            provider.secure_random = &crate::random_pool::Pooled;
            let builder = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| format!("tls config: {e}"))?;
            let builder = match &verifier {
                Some(v) => builder.with_client_cert_verifier(v.clone()),
                None => builder.with_no_client_auth(),
            };
            let mut config = builder
                .with_single_cert(certs.clone(), key.clone_key())
                .map_err(|e| format!("tls certificate/key: {e}"))?;
            // TLS 1.2 clients must use the extended master secret, so that
            // tls-exporter is sound on every connection (RFC 9266 section 3).
            config.require_ems = true;
            // The tokio handshakes hand the record layer to `compact_tls`.
            crate::compact_tls::configure(&mut config);
            Ok(config)
        };
        let client_order = build(rustls::crypto::ring::default_provider())?;
        // The same suites, AES-128-GCM first (a stable sort: otherwise in
        // the provider's order), chosen by us; one session cache for both.
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites.sort_by_key(|s| match s.suite() {
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
            | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
            s if is_chacha(s) => 2,
            _ => 1,
        });
        let mut aes128_first = build(provider)?;
        aes128_first.ignore_client_order = true;
        aes128_first.session_storage = client_order.session_storage.clone();
        aes128_first.ticketer = client_order.ticketer.clone();
        let suites = |mut client_order: rustls::ServerConfig,
                      mut aes128_first: rustls::ServerConfig,
                      alpn: &[u8]| {
            if !alpn.is_empty() {
                client_order.alpn_protocols = vec![alpn.to_vec()];
                aes128_first.alpn_protocols = vec![alpn.to_vec()];
            }
            Suites {
                client_order: Arc::new(client_order),
                aes128_first: Arc::new(aes128_first),
            }
        };
        Ok(Self {
            starttls: suites(client_order.clone(), aes128_first.clone(), b""),
            direct: suites(client_order, aes128_first, b"xmpp-client"),
            end_point,
        })
    }

    /// The configuration for a client whose hello offered `offered` (its
    /// cipher suites, in its order of preference): ours with AES-128-GCM
    /// first, unless the client's first suite we support is
    /// ChaCha20-Poly1305 (a client without AES instructions says so:
    /// then its order). AES-128-GCM is TLS 1.3's mandatory suite (RFC
    /// 8446 section 9.1) and Go's crypto/tls server takes it first in
    /// the same way; here it saves the SHA-384 key schedule, which this
    /// machine's SHA extensions do not speed up, about 6% of a login's
    /// CPU.
    pub fn config_for(
        &self,
        direct: bool,
        offered: &[rustls::CipherSuite],
    ) -> Arc<rustls::ServerConfig> {
        let suites = if direct { &self.direct } else { &self.starttls };
        let ours = &suites.client_order.crypto_provider().cipher_suites;
        let first = offered
            .iter()
            .find(|s| ours.iter().any(|o| o.suite() == **s));
        if first.is_some_and(|s| is_chacha(*s)) {
            suites.client_order.clone()
        } else {
            suites.aes128_first.clone()
        }
    }

    /// The connection of a client whose hello rustls's `Acceptor` has
    /// read, with [`TlsSetup::config_for`] its suites.
    pub fn accept_hello(
        &self,
        direct: bool,
        accepted: rustls::server::Accepted,
    ) -> Result<ServerConnection, (rustls::Error, rustls::server::AcceptedAlert)> {
        let config = self.config_for(direct, accepted.client_hello().cipher_suites());
        accepted.into_connection(config)
    }

    /// Why tls-server-end-point cannot be supplied, if it cannot.
    pub fn end_point_problem(&self) -> Option<&'static str> {
        self.end_point.as_ref().err().copied()
    }

    /// A new server-side rustls connection (`direct`: XEP-0368, with ALPN)
    /// that takes the client's order of cipher suites (the blocking
    /// handshakes; the tokio ones choose with [`TlsSetup::config_for`]).
    pub fn accept(&self, direct: bool) -> Result<ServerConnection, String> {
        let config = if direct { &self.direct } else { &self.starttls };
        ServerConnection::new(config.client_order.clone()).map_err(|e| format!("tls setup: {e}"))
    }

    /// The server side of a TLS handshake on a blocking connection (by
    /// `deadline`; `pending`: bytes received after `<starttls/>`), and what
    /// it gave. Application data that came with the client's last flight
    /// stays in the returned stream.
    pub fn blocking_accept(
        &self,
        direct: bool,
        sock: BoxTransport,
        pending: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Upgraded<BoxTransport>, String> {
        Ok(self
            .blocking_accept_client(direct, sock, pending, deadline)?
            .0)
    }

    /// [`TlsSetup::blocking_accept`], and the client's end-entity
    /// certificate when it presented one (verified: a certificate that does
    /// not verify fails the handshake).
    pub fn blocking_accept_client(
        &self,
        direct: bool,
        sock: BoxTransport,
        pending: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(Upgraded<BoxTransport>, Option<CertificateDer<'static>>), String> {
        let stream = handshake(self.accept(direct)?, sock, pending, deadline)?;
        let (info, summary) = self.info(&stream.conn)?;
        let client = stream
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned());
        let up = Upgraded {
            stream: Box::new(stream) as BoxTransport,
            info,
            summary,
        };
        Ok((up, client))
    }

    /// The server side of a TLS handshake on an async connection: rustls
    /// for the handshake, then [`crate::compact_tls`]'s record layer, which
    /// holds only the traffic secrets while the connection is idle. Bytes
    /// after `<starttls/>` (`pending`) are refused: a client must wait for
    /// `<proceed/>`.
    pub async fn tokio_accept(
        &self,
        direct: bool,
        io: BoxStream,
        pending: &[u8],
    ) -> Result<Upgraded<BoxStream>, String> {
        Ok(self.tokio_accept_client(direct, io, pending).await?.0)
    }

    /// [`TlsSetup::tokio_accept`], and the client's end-entity certificate
    /// when it presented one (verified: a certificate that does not verify
    /// fails the handshake).
    pub async fn tokio_accept_client(
        &self,
        direct: bool,
        io: BoxStream,
        pending: &[u8],
    ) -> Result<(Upgraded<BoxStream>, Option<CertificateDer<'static>>), String> {
        if !pending.is_empty() {
            return Err(format!(
                "tls {} bytes after <starttls/> before the TLS handshake",
                pending.len()
            ));
        }
        let hs =
            crate::compact_tls::handshake_from_hello(io, |hello| self.accept_hello(direct, hello))
                .await?;
        let conn = hs.conn();
        let client = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned());
        let (info, summary) = self.info(conn)?;
        let stream = hs.into_stream()?;
        let up = Upgraded {
            stream: Box::new(stream) as BoxStream,
            info,
            summary,
        };
        Ok((up, client))
    }

    /// What the state machine needs to know about an established
    /// connection, and a one-line summary for the log.
    pub fn info(&self, conn: &ServerConnection) -> Result<(TlsInfo, String), String> {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
            Some(rustls::ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
            other => return Err(format!("tls: unexpected protocol version {other:?}")),
        };
        let mut bindings = Vec::new();
        // TLS 1.3, or TLS 1.2 with the extended master secret (required).
        let ekm = conn
            .export_keying_material([0u8; 32], EXPORTER_LABEL, None)
            .map_err(|e| format!("tls-exporter: {e}"))?;
        bindings.push(ChannelBinding::new(ChannelBindingType::TlsExporter, ekm));
        if let Ok(hash) = &self.end_point {
            bindings.push(ChannelBinding::new(
                ChannelBindingType::TlsServerEndPoint,
                hash.clone(),
            ));
        }
        let summary = format!(
            "{} {}{}, channel binding: {}",
            if version == TlsVersion::Tls13 {
                "TLSv1.3"
            } else {
                "TLSv1.2"
            },
            conn.negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            conn.alpn_protocol()
                .map(|p| format!(", ALPN {}", String::from_utf8_lossy(p)))
                .unwrap_or_default(),
            bindings
                .iter()
                .map(|b| b.kind.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
        Ok((
            TlsInfo {
                version,
                channel_bindings: bindings,
            },
            summary,
        ))
    }
}
