//! EXTERNAL is offered only to a client the TLS layer authenticated once
//! the host says what it knows of the client certificate
//! (`Server::client_certificate`); a host that says nothing gets it
//! offered on every TLS stream, as before.

use std::time::Instant;

use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::server::{Server, ServerConfig, ServerTls};
use xmpp_sansio::TlsInfo;

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream to='example.com' version='1.0' \
    xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/// The features a direct-TLS server sends, after `said` (if any).
fn features(said: Option<bool>) -> String {
    let mut settings = ServerConfig::builder("example.com");
    settings.tls = ServerTls::Direct;
    settings.mechanisms = vec!["EXTERNAL".into(), "SCRAM-SHA-256".into()];
    let now = Instant::now();
    let mut server = Server::new(settings.build().expect("valid"), now)
        .direct_tls(TlsInfo::without_binding(TlsVersion::Tls13));
    if let Some(v) = said {
        server.client_certificate(v);
    }
    server.feed(now, HEADER).expect("feed");
    let mut out = Vec::new();
    while server.poll_transmit(&mut out) > 0 {}
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn external_only_with_a_verified_client_certificate() {
    let with = features(Some(true));
    assert!(with.contains("<mechanism>EXTERNAL</mechanism>"), "{with}");
    let without = features(Some(false));
    assert!(!without.contains("EXTERNAL"), "{without}");
    assert!(
        without.contains("<mechanism>SCRAM-SHA-256</mechanism>"),
        "{without}"
    );
    let unsaid = features(None);
    assert!(
        unsaid.contains("<mechanism>EXTERNAL</mechanism>"),
        "{unsaid}"
    );
}
