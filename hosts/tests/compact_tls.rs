//! The server's record layer after a rustls handshake (`compact_tls`),
//! against tokio-rustls clients over an in-memory pipe: every cipher suite
//! of both versions both ways, records longer than one, `close_notify` both
//! ways, key updates asked by the client (ours answered, both directions'
//! next keys derived right), the bytes that came with the client's
//! `Finished`, the tls-exporter binding equal on both sides, a forged or
//! oversized record refused with an alert, a peer that vanishes, and an
//! idle stream holding no buffer.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_rustls::client::TlsStream;
use xmpp_sansio::sasl::channel_binding::ChannelBindingType;
use xmpp_sansio_hosts::compact_tls::{self, CompactTls};
use xmpp_sansio_hosts::server_tls::TlsSetup;

mod common;

const DOMAIN: &str = "sansio.test";

fn pki() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    common::pki(DOMAIN)
}

/// A client trusting `cert`, with only `suite` and its version.
fn client_config(
    cert: &CertificateDer<'static>,
    suite: rustls::SupportedCipherSuite,
) -> Arc<rustls::ClientConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![suite];
    let version = match suite {
        rustls::SupportedCipherSuite::Tls13(_) => &rustls::version::TLS13,
        _ => &rustls::version::TLS12,
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("root");
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[version])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A handshake: the client's stream, the server's, and the server's
/// tls-exporter binding; `early`: what the client writes right after its
/// handshake (before the server has read its `Finished`).
async fn pair(
    suite: rustls::SupportedCipherSuite,
    early: &[u8],
) -> (TlsStream<DuplexStream>, CompactTls, Vec<u8>, usize) {
    let (cert, key) = pki();
    let setup = TlsSetup::new(vec![cert.clone()], key).expect("setup");
    let (c, s) = tokio::io::duplex(256 * 1024);
    let connector = tokio_rustls::TlsConnector::from(client_config(&cert, suite));
    let client = async move {
        let mut tls = connector
            .connect(ServerName::try_from(DOMAIN).expect("name"), c)
            .await
            .expect("client handshake");
        tls.write_all(early).await.expect("early write");
        tls.flush().await.expect("flush");
        tls
    };
    let server = async {
        let hs = compact_tls::handshake(setup.accept(false).expect("conn"), Box::new(s))
            .await
            .expect("server handshake");
        let (info, _) = setup.info(hs.conn()).expect("info");
        let exporter = info
            .channel_bindings
            .iter()
            .find(|b| b.kind == ChannelBindingType::TlsExporter)
            .expect("tls-exporter")
            .data
            .expose()
            .to_vec();
        let after = hs.received_after();
        (hs.into_stream().expect("stream"), exporter, after)
    };
    let (client, (server, exporter, after)) = tokio::join!(client, server);
    (client, server, exporter, after)
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn read_exact_n(r: &mut (impl AsyncReadExt + Unpin), n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    r.read_exact(&mut v).await.expect("read");
    v
}

fn suites() -> Vec<rustls::SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite::*;
    vec![
        TLS13_AES_128_GCM_SHA256,
        TLS13_AES_256_GCM_SHA384,
        TLS13_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ]
}

#[tokio::test]
async fn every_suite_of_both_versions_carries_data_both_ways_and_closes() {
    for suite in suites() {
        let name = format!("{:?}", suite.suite());
        let early = b"<stream:stream to='sansio.test'>";
        let (mut client, mut server, exporter, _) = pair(suite, early).await;
        // The binding the SCRAM -PLUS mechanisms use: the same on both sides.
        let mine = client
            .get_ref()
            .1
            .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
            .expect("export");
        assert_eq!(exporter, mine.to_vec(), "{name}");
        assert!(
            name.contains(&server.cipher().replace("_POLY1305", "")),
            "{name} {}",
            server.cipher()
        );
        assert_eq!(
            read_exact_n(&mut server, early.len()).await,
            early,
            "{name}"
        );
        // More than one record each way (16 KiB plaintext per record).
        let up = pattern(40_000, 1);
        let down = pattern(50_000, 2);
        let (_, got) = tokio::join!(
            async { client.write_all(&up).await.expect("up") },
            read_exact_n(&mut server, up.len())
        );
        assert_eq!(got, up, "{name}");
        let (_, got) = tokio::join!(
            async {
                server.write_all(&down).await.expect("down");
                server.flush().await.expect("flush");
            },
            read_exact_n(&mut client, down.len())
        );
        assert_eq!(got, down, "{name}");
        assert_eq!(
            server.buffered(),
            0,
            "{name}: an idle stream holds no buffer"
        );
        // Our close_notify: the client sees a clean end (not an EOF error).
        server.shutdown().await.expect("shutdown");
        let mut rest = Vec::new();
        assert_eq!(
            client.read_to_end(&mut rest).await.expect("clean end"),
            0,
            "{name}"
        );
        // Theirs: a clean end here too.
        client.shutdown().await.expect("client shutdown");
        let mut buf = [0u8; 16];
        assert_eq!(server.read(&mut buf).await.expect("clean end"), 0, "{name}");
    }
}

#[tokio::test]
async fn key_updates_asked_by_the_client_renew_both_directions() {
    use rustls::crypto::ring::cipher_suite::*;
    for suite in [
        TLS13_AES_128_GCM_SHA256,
        TLS13_AES_256_GCM_SHA384,
        TLS13_CHACHA20_POLY1305_SHA256,
    ] {
        let (mut client, mut server, _, _) = pair(suite, b"x").await;
        assert_eq!(read_exact_n(&mut server, 1).await, b"x");
        for round in 0..3u8 {
            // The client's KeyUpdate (update_requested) goes before its data:
            // its data is sealed under its next key, ours under our next.
            client.get_mut().1.refresh_traffic_keys().expect("refresh");
            let up = pattern(1000, round);
            client.write_all(&up).await.expect("up");
            client.flush().await.expect("flush");
            assert_eq!(
                read_exact_n(&mut server, up.len()).await,
                up,
                "round {round}"
            );
            let down = pattern(20_000, round + 100);
            let (_, got) = tokio::join!(
                async {
                    server.write_all(&down).await.expect("down");
                    server.flush().await.expect("flush");
                },
                read_exact_n(&mut client, down.len())
            );
            assert_eq!(got, down, "round {round}");
        }
    }
}

#[tokio::test]
async fn bytes_that_came_with_the_finished_message_are_kept() {
    // The client writes at once after its Finished; on this single-threaded
    // runtime the server reads both in one read: they must not be lost
    // when rustls's secrets are taken.
    let mut seen = false;
    for _ in 0..3 {
        let early = pattern(3000, 7);
        let (_client, mut server, _, after) = pair(suites()[0], &early).await;
        seen |= after > 0;
        assert_eq!(read_exact_n(&mut server, early.len()).await, early);
    }
    assert!(seen, "the case was never exercised");
}

#[tokio::test]
async fn a_forged_or_oversized_record_is_refused_with_an_alert() {
    for (what, record) in [
        ("forged", {
            let mut r = vec![23, 3, 3, 0, 40];
            r.extend(pattern(40, 3));
            r
        }),
        ("oversized", vec![23, 3, 3, 0xff, 0xff, 0, 0, 0]),
    ] {
        let (client, mut server, _, _) = pair(suites()[0], b"").await;
        let (mut raw, mut conn) = client.into_inner();
        raw.write_all(&record).await.expect("write");
        let mut buf = [0u8; 64];
        let err = server.read(&mut buf).await.expect_err(what);
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{what}: {err}");
        // A fatal alert came back, sealed under our key.
        let mut back = vec![0u8; 256];
        let n = raw.read(&mut back).await.expect("alert");
        assert!(n > 0, "{what}: no alert");
        conn.read_tls(&mut &back[..n]).expect("read_tls");
        let got = conn.process_new_packets().expect_err("an alert");
        let want = if what == "forged" {
            rustls::AlertDescription::BadRecordMac
        } else {
            rustls::AlertDescription::RecordOverflow
        };
        assert_eq!(got, rustls::Error::AlertReceived(want), "{what}");
    }
}

#[tokio::test]
async fn a_peer_that_vanishes_without_close_notify_is_an_eof_error() {
    let (client, mut server, _, _) = pair(suites()[0], b"").await;
    drop(client);
    let mut buf = [0u8; 16];
    let err = server.read(&mut buf).await.expect_err("no close_notify");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn an_idle_stream_is_small() {
    // Its socket's box, two directions' keys, IVs, secrets and sequence
    // numbers, three empty vectors: rustls's buffered connection was
    // 1,138 bytes inline plus a 4 KiB buffer and about 2 KiB of keys.
    let size = std::mem::size_of::<CompactTls>();
    assert!(size <= 320, "{size} bytes");
}

/// A client offering `suites` in this order (TLS 1.3 and 1.2).
fn ordered_client(
    cert: &CertificateDer<'static>,
    suites: Vec<rustls::SupportedCipherSuite>,
) -> Arc<rustls::ClientConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = suites;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("root");
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[tokio::test]
async fn the_server_takes_aes_128_gcm_unless_the_client_prefers_chacha20() {
    use rustls::crypto::ring::cipher_suite::*;
    let (cert, key) = pki();
    let setup = TlsSetup::new(vec![cert.clone()], key).expect("setup");
    for (offered, want, tickets) in [
        // rustls's own order (AES-256-GCM first): ours.
        (
            rustls::crypto::ring::default_provider().cipher_suites,
            "AES_128_GCM",
            true,
        ),
        (
            vec![TLS13_AES_256_GCM_SHA384, TLS13_AES_128_GCM_SHA256],
            "AES_128_GCM",
            true,
        ),
        // A client without AES instructions puts ChaCha20 first: its order.
        (
            vec![
                TLS13_CHACHA20_POLY1305_SHA256,
                TLS13_AES_256_GCM_SHA384,
                TLS13_AES_128_GCM_SHA256,
            ],
            "CHACHA20_POLY1305",
            true,
        ),
        // What the client offers only.
        (vec![TLS13_AES_256_GCM_SHA384], "AES_256_GCM", true),
        (
            vec![
                TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ],
            "AES_128_GCM",
            false,
        ),
    ] {
        let what = format!(
            "{:?}",
            offered.iter().map(|s| s.suite()).collect::<Vec<_>>()
        );
        let (c, s) = tokio::io::duplex(256 * 1024);
        let connector = tokio_rustls::TlsConnector::from(ordered_client(&cert, offered));
        let client = async move {
            connector
                .connect(ServerName::try_from(DOMAIN).expect("name"), c)
                .await
                .expect("client handshake")
        };
        let server = async {
            compact_tls::handshake_from_hello(Box::new(s), |hello| setup.accept_hello(false, hello))
                .await
                .expect("server handshake")
        };
        let (mut client, hs) = tokio::join!(client, server);
        // TLS 1.3's session tickets wait for the first write; TLS 1.2's
        // last flight was sent (the client waited for it).
        assert_eq!(hs.unsent() > 0, tickets, "{what}");
        let mut server = hs.into_stream().expect("stream");
        assert_eq!(server.cipher(), want, "{what}");
        // Unflushed, nothing goes out; flushed, the client reads the data
        // (after the tickets, when there are some).
        server.write_all(b"<features/>").await.expect("write");
        assert!(server.buffered() > 0, "{what}");
        server.flush().await.expect("flush");
        assert_eq!(server.buffered(), 0, "{what}");
        assert_eq!(
            read_exact_n(&mut client, 11).await,
            b"<features/>",
            "{what}"
        );
        // The last bytes and the close_notify, written by the shutdown.
        server.write_all(b"</stream:stream>").await.expect("write");
        server.shutdown().await.expect("shutdown");
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.expect("clean end");
        assert_eq!(rest, b"</stream:stream>", "{what}");
    }
}
