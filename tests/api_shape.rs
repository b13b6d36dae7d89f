//! Issue 12, points 1, 2 and 7: typed and prepared JIDs, configurations
//! built once and shared, the two roles of the same shape.

mod support;

use std::sync::Arc;
use std::time::Instant;

use support::pair::{client_config, server_config, Pair, Store};
use xmpp_sansio::client::{Client, ClientConfig, ClientError, ClientEvent, Credentials, TlsMode};
use xmpp_sansio::jid::{BareJid, FullJid};
use xmpp_sansio::server::{Server, ServerConfig, ServerError, ServerEvent, ServerTls};
use xmpp_sansio::DeterministicRandom;

/// The case: `Juliet@EXAMPLE.com` used to get `host-unknown`
/// from a server for `example.com`. Now both sides prepare: she logs in,
/// and both see one JID.
#[test]
fn a_jid_spelled_in_capitals_logs_in() {
    let c = client_config(
        "Juliet@EXAMPLE.com",
        Credentials::password("r0m30"),
        "SCRAM-SHA-256",
        TlsMode::None,
    );
    let s = server_config("example.com", &["SCRAM-SHA-256"], ServerTls::None);
    let mut pair = Pair::new(c, s, Store::new(&[("juliet", "r0m30")]), None);
    pair.negotiate();
    assert_eq!(pair.client_error(), None);
    let expected: FullJid = "juliet@example.com/pair".parse().unwrap();
    assert_eq!(pair.client.jid(), Some(&expected));
    assert_eq!(pair.server.jid(), Some(&expected));
    let bound_for = pair.server_events.iter().find_map(|e| match e {
        ServerEvent::Bind { jid, .. } => Some(jid.clone()),
        _ => None,
    });
    assert_eq!(bound_for, Some(BareJid::new("juliet@example.com").unwrap()));
}

/// A server prepares the stream's `to` before it compares it, and a
/// stanza's `from` too.
#[test]
fn the_server_compares_prepared_domains_and_senders() {
    let now = Instant::now();
    let config = server_config("example.com", &["PLAIN"], ServerTls::None)
        .build()
        .unwrap();
    let mut server = Server::with_random(config, Box::new(DeterministicRandom::new(1)), now);
    server
        .feed(
            now,
            b"<?xml version='1.0'?><stream:stream to='EXAMPLE.Com' version='1.0' \
              xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        )
        .unwrap();
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("from='example.com'"), "{out}");
    assert!(out.contains("<stream:features>"), "{out}");
    assert!(!out.contains("host-unknown"), "{out}");

    // Ready, a stanza whose `from` is the bare JID in other case is ours.
    let c = client_config(
        "alice@example.com",
        Credentials::password("pencil"),
        "PLAIN",
        TlsMode::None,
    );
    let s = server_config("example.com", &["PLAIN"], ServerTls::None);
    let mut pair = Pair::with_alice(c, s, None);
    pair.negotiate();
    pair.client
        .send(
            &"<message xmlns='jabber:client' from='ALICE@Example.com' to='bob@example.com'/>"
                .parse()
                .unwrap(),
        )
        .unwrap();
    pair.drive();
    assert_eq!(pair.server_error(), None);
    let stamped = pair.server_events.iter().find_map(|e| match e {
        ServerEvent::Stanza(el) => el.attr("from").map(str::to_owned),
        _ => None,
    });
    assert_eq!(stamped.as_deref(), Some("alice@example.com/pair"));
}

/// One configuration behind an `Arc` serves every connection: nothing is
/// rebuilt per connection, and what must be the same for all (the secret
/// unknown users' SCRAM salts derive from) is.
#[test]
fn one_server_configuration_serves_every_connection() {
    let config = Arc::new(
        server_config("example.com", &["SCRAM-SHA-256"], ServerTls::None)
            .build()
            .unwrap(),
    );
    let now = Instant::now();
    let servers: Vec<Server> = (0..100)
        .map(|i| Server::with_random(config.clone(), Box::new(DeterministicRandom::new(i)), now))
        .collect();
    assert_eq!(Arc::strong_count(&config), 101);
    drop(servers);
    assert_eq!(Arc::strong_count(&config), 1);

    // An unknown user gets the same salt on two connections of one
    // configuration (a fresh secret per connection would tell it apart
    // from a known user, whose salt never changes).
    let salt_for_nobody = |config: Arc<ServerConfig>, seed| {
        let c = client_config(
            "nobody@example.com",
            Credentials::password("x"),
            "SCRAM-SHA-256",
            TlsMode::None,
        );
        let mut pair = Pair::seeded(
            c,
            (*config).settings().clone(),
            Store::new(&[]),
            None,
            (seed, seed + 1),
        );
        pair.negotiate();
        let down = String::from_utf8_lossy(&pair.down_bytes).into_owned();
        let challenge = down
            .split("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>")
            .nth(1)
            .and_then(|c| c.split('<').next())
            .expect("a server-first message")
            .to_owned();
        let decoded = String::from_utf8(
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, challenge).unwrap(),
        )
        .unwrap();
        decoded
            .split(',')
            .find_map(|a| a.strip_prefix("s=").map(str::to_owned))
            .unwrap()
    };
    assert_eq!(
        salt_for_nobody(config.clone(), 1),
        salt_for_nobody(config.clone(), 7)
    );
}

/// Configurations are values a host can share across threads.
#[test]
fn configurations_are_shareable_values() {
    fn shareable<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    shareable::<ClientConfig>();
    shareable::<ServerConfig>();
    shareable::<Arc<ClientConfig>>();
}

/// Point 7: the two roles have the same shape: events and errors derive
/// the same traits, and the same host calls exist on both.
#[test]
fn both_roles_have_the_same_shape() {
    fn event<T: Clone + PartialEq + std::fmt::Debug + Send>() {}
    fn error<T: Clone + PartialEq + std::error::Error + Send + Sync>() {}
    event::<ClientEvent>();
    event::<ServerEvent>();
    error::<ClientError>();
    error::<ServerError>();

    let now = Instant::now();
    let tls = xmpp_sansio::TlsInfo::without_binding(
        xmpp_sansio::sasl::channel_binding::TlsVersion::Tls13,
    );
    let mut cc = ClientConfig::builder("juliet@example.com", Credentials::password("x"));
    cc.tls = TlsMode::Direct;
    let client = Client::with_random(
        cc.build().unwrap(),
        Box::new(DeterministicRandom::new(1)),
        now,
    )
    .direct_tls(tls.clone());
    let mut sc = ServerConfig::builder("example.com");
    sc.tls = ServerTls::Direct;
    let server = Server::with_random(
        sc.build().unwrap(),
        Box::new(DeterministicRandom::new(2)),
        now,
    )
    .direct_tls(tls);
    assert!(client.is_encrypted() && server.is_encrypted());
    assert_eq!((client.jid(), server.jid()), (None, None));
    assert_eq!((client.error(), server.error()), (None, None));
    // Events compare, secrets inside them in constant time.
    let asked = |password: &str| {
        ServerEvent::Credentials(xmpp_sansio::sasl::CredentialRequest::Password {
            username: "alice".into(),
            authzid: None,
            password: password.into(),
        })
    };
    assert_eq!(asked("pencil").clone(), asked("pencil"));
    assert_ne!(asked("pencil"), asked("pencil!"));
}
