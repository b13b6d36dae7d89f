//! Issue 12, point 8: the default cargo features `legacy`, `digest-md5`
//! and `google` each gate their protocols. Built with a feature, a peer
//! that uses it is served; built without, the peer is treated as by a
//! crate that never heard of it: a server does not offer it, a client does
//! not pick it, a pre-1.0 peer is refused. Every test here runs in every
//! build (`cargo test --no-default-features [--features F]`) and checks
//! the side of the gate it is built on, from the seeds' and Prosody's
//! exchanges.

mod support;

use std::time::Instant;
use xmpp_sansio::client::PolicyError;

use support::pair::{alice_config, server_config, Pair};
use support::{Dir, Transcript};
use xmpp_sansio::client::{Client, ClientError, ClientEvent, ClientSettings, Credentials, TlsMode};
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::sasl::policy::{Refusal, RefusedMechanism};
use xmpp_sansio::sasl::SaslCondition;
use xmpp_sansio::server::{Server, ServerError, ServerEvent, ServerSettings, ServerTls};
use xmpp_sansio::stream_error::StreamErrorCondition;
use xmpp_sansio::{DeterministicRandom, TlsInfo};

/// A client for `jid` over `tls`, configured by `tweak`.
fn client(
    jid: &str,
    credentials: Credentials,
    tls: TlsMode,
    tweak: impl FnOnce(&mut ClientSettings),
) -> Client {
    let direct = tls == TlsMode::Direct;
    let mut c = ClientSettings::new(jid, credentials);
    c.tls = tls;
    tweak(&mut c);
    let mut client = Client::with_random(
        c.build().unwrap(),
        Box::new(DeterministicRandom::new(2)),
        Instant::now(),
    );
    if direct {
        client = client.direct_tls(TlsInfo::without_binding(TlsVersion::Tls13));
    }
    let mut header = Vec::new();
    client.poll_transmit(&mut header);
    client
}

/// Feeds the server's `bytes` to `client`: what it sent back, and the
/// error it failed with.
fn feed_client(client: &mut Client, bytes: &[u8]) -> (String, Option<ClientError>) {
    client.feed(Instant::now(), bytes).unwrap();
    let mut out = Vec::new();
    client.poll_transmit(&mut out);
    let error = std::iter::from_fn(|| client.poll_event()).find_map(|e| match e {
        ClientEvent::Error(e) => Some(e),
        _ => None,
    });
    (String::from_utf8(out).unwrap(), error)
}

/// A server for `domain` without TLS, PLAIN and the tokens allowed in the
/// clear, offering `mechanisms`, configured by `tweak`.
fn server(domain: &str, mechanisms: &[&str], tweak: impl FnOnce(&mut ServerSettings)) -> Server {
    let mut c = ServerSettings::new(domain);
    c.tls = ServerTls::None;
    c.allow_plain_without_tls = true;
    c.mechanisms = mechanisms.iter().map(|m| m.to_string()).collect();
    tweak(&mut c);
    Server::with_random(
        c.build().unwrap(),
        Box::new(DeterministicRandom::new(2)),
        Instant::now(),
    )
}

/// Feeds the client's `bytes` to `server`: what it sent back, and its
/// events.
fn feed_server(server: &mut Server, bytes: &[u8]) -> (String, Vec<ServerEvent>) {
    server.feed(Instant::now(), bytes).unwrap();
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    let events = std::iter::from_fn(|| server.poll_event()).collect();
    (String::from_utf8(out).unwrap(), events)
}

fn server_error(events: &[ServerEvent]) -> Option<&ServerError> {
    events.iter().find_map(|e| match e {
        ServerEvent::Error(e) => Some(e),
        _ => None,
    })
}

// ---------------------------------------------------------------------------
// digest-md5

/// Feeds the first chunk of the server side of `t` (a header and
/// features) to `client`: when `built`, it starts `mechanism`; otherwise it
/// finds no acceptable mechanism among `offered` and sends nothing.
fn picks_only_when_built(
    built: bool,
    mut client: Client,
    named: bool,
    t: &Transcript,
    mechanism: &str,
    offered: &[&str],
) {
    let (sent, error) = feed_client(&mut client, &t.chunks_of(Dir::S)[0]);
    if built {
        assert_eq!(error, None);
        assert!(
            sent.starts_with("<auth") && sent.contains(mechanism),
            "{sent}"
        );
    } else {
        // Named in `policy.only`, the mechanism this build does not know
        // is refused by name; otherwise nothing offered is acceptable.
        let expected = if named {
            ClientError::Policy(PolicyError::MechanismRefused(vec![RefusedMechanism {
                mechanism: mechanism.into(),
                refusal: Refusal::Unknown,
            }]))
        } else {
            ClientError::Policy(PolicyError::NoMechanism(
                offered.iter().map(|m| m.to_string()).collect(),
            ))
        };
        assert_eq!(error, Some(expected));
        assert!(!sent.contains("<auth"), "{sent}");
    }
}

/// Seed 004's server offers DIGEST-MD5 and PLAIN; a client allowed only
/// DIGEST-MD5 (PLAIN is refused in the clear anyway) takes it when built
/// with it, and otherwise finds no acceptable mechanism, sending nothing.
#[test]
fn a_client_picks_digest_md5_from_seed_004_only_when_built_with_it() {
    let c = client(
        "somenode@example.com",
        Credentials::password("secret"),
        TlsMode::None,
        |c| {
            c.policy.only = Some(vec!["DIGEST-MD5".into()]);
            #[cfg(feature = "digest-md5")]
            {
                c.policy.enable_digest_md5 = true;
            }
        },
    );
    let t = Transcript::load("seeds/seed004_digest_md5.txt");
    let built = cfg!(feature = "digest-md5");
    picks_only_when_built(built, c, true, &t, "DIGEST-MD5", &["DIGEST-MD5", "PLAIN"]);
}

/// A server configured with DIGEST-MD5 offers it only when built with
/// it; seed 004's `<auth mechanism='DIGEST-MD5'/>` then gets the first
/// challenge, or `invalid-mechanism`.
#[test]
fn a_server_offers_digest_md5_only_when_built_with_it() {
    let t = Transcript::load("seeds/seed004_digest_md5.txt");
    let up = t.chunks_of(Dir::C);
    let mut s = server("example.com", &["DIGEST-MD5", "PLAIN"], |_| {});
    let (features, _) = feed_server(&mut s, &up[0]);
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
    assert_eq!(
        features.contains("<mechanism>DIGEST-MD5</mechanism>"),
        cfg!(feature = "digest-md5"),
        "{features}"
    );
    let (answer, events) = feed_server(&mut s, &up[1]);
    if cfg!(feature = "digest-md5") {
        assert!(answer.starts_with("<challenge"), "{answer}");
    } else {
        assert!(answer.contains("<invalid-mechanism"), "{answer}");
        assert!(events.iter().any(|e| matches!(
            e,
            ServerEvent::AuthenticationFailed {
                condition: SaslCondition::InvalidMechanism,
                ..
            }
        )));
    }
}

// ---------------------------------------------------------------------------
// google

/// Seed 000's first features (talk.google.com): STARTTLS and
/// X-GOOGLE-TOKEN. A token client that may use X-GOOGLE-TOKEN in the
/// clear takes it only when built with `google`.
#[test]
fn a_client_picks_x_google_token_from_seed_000_only_when_built_with_it() {
    let c = client(
        "someone@gmail.com",
        Credentials::Token("DQAAAG...token".into()),
        TlsMode::None,
        |c| {
            c.policy.allow_plain_without_tls = true;
            #[cfg(feature = "google")]
            {
                c.policy.enable_x_google_token = true;
            }
        },
    );
    let t = Transcript::load("seeds/seed000_gtalk.txt");
    let built = cfg!(feature = "google");
    picks_only_when_built(built, c, false, &t, "X-GOOGLE-TOKEN", &["X-GOOGLE-TOKEN"]);
}

/// A server configured with X-GOOGLE-TOKEN and X-OAUTH2 offers the first
/// only when built with `google` (X-OAUTH2 is not Google's alone), and
/// answers an X-GOOGLE-TOKEN `<auth/>` with a token request or
/// `invalid-mechanism`.
#[test]
fn a_server_offers_x_google_token_only_when_built_with_it() {
    let t = Transcript::load("seeds/seed000_gtalk.txt");
    let mut s = server("gmail.com", &["X-GOOGLE-TOKEN", "X-OAUTH2"], |_| {});
    let (features, _) = feed_server(&mut s, &t.chunks_of(Dir::C)[0]);
    assert!(
        features.contains("<mechanism>X-OAUTH2</mechanism>"),
        "{features}"
    );
    assert_eq!(
        features.contains("<mechanism>X-GOOGLE-TOKEN</mechanism>"),
        cfg!(feature = "google"),
        "{features}"
    );
    // `\0someone@gmail.com\0DQAAAG...token`, the blog's layout.
    let auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-GOOGLE-TOKEN'>\
                AHNvbWVvbmVAZ21haWwuY29tAERRQUFBRy4uLnRva2Vu</auth>";
    let (answer, events) = feed_server(&mut s, auth.as_bytes());
    let asked = events
        .iter()
        .any(|e| matches!(e, ServerEvent::Credentials(_)));
    assert_eq!(asked, cfg!(feature = "google"), "{events:?}");
    assert_eq!(
        answer.contains("<invalid-mechanism"),
        !cfg!(feature = "google"),
        "{answer}"
    );
}

// ---------------------------------------------------------------------------
// legacy

/// Seed 001's server (Jabber 1.4) sends a header without `version`: with
/// `legacy` (and iq:auth enabled) the client asks for the iq:auth
/// fields; without it, the server is refused with `UnsupportedVersion`
/// and `unsupported-version`.
#[test]
fn a_pre_1_0_server_is_refused_without_legacy() {
    let t = Transcript::load("seeds/seed001_jabber14.txt");
    let mut c = client(
        "dj@yak",
        Credentials::password("secret"),
        TlsMode::None,
        |_c| {
            #[cfg(feature = "legacy")]
            {
                _c.legacy_auth.enabled = true;
            }
        },
    );
    let (sent, error) = feed_client(&mut c, &t.chunks_of(Dir::S)[0]);
    if cfg!(feature = "legacy") {
        assert_eq!(error, None);
        assert!(sent.contains("jabber:iq:auth"), "{sent}");
    } else {
        assert_eq!(
            error,
            Some(ClientError::Policy(PolicyError::UnsupportedVersion))
        );
        assert!(sent.contains("<unsupported-version"), "{sent}");
        assert!(!sent.contains("<iq"), "{sent}");
    }
}

/// Seed 001's client: a pre-1.0 header. A server built with `legacy`
/// and iq:auth on admits it; one built without ends the stream with
/// `unsupported-version`.
#[test]
fn a_pre_1_0_client_is_refused_without_legacy() {
    let t = Transcript::load("seeds/seed001_jabber14.txt");
    let mut s = server("yak", &["PLAIN"], |_c| {
        #[cfg(feature = "legacy")]
        {
            _c.legacy_auth = Some(Default::default());
        }
    });
    let (sent, events) = feed_server(&mut s, &t.chunks_of(Dir::C)[0]);
    if cfg!(feature = "legacy") {
        assert_eq!(server_error(&events), None);
        let header = &sent[sent.find("<stream:stream").unwrap()..];
        assert!(!header.contains("version="), "a pre-1.0 answer: {sent}");
    } else {
        assert_eq!(
            server_error(&events).and_then(ServerError::condition),
            Some(StreamErrorCondition::UnsupportedVersion)
        );
        assert!(sent.contains("<unsupported-version"), "{sent}");
    }
}

/// Prosody 13 offers `<auth xmlns='http://jabber.org/features/iq-auth'/>`
/// after TLS: a client that accepts no SASL mechanism falls back to
/// iq:auth with `legacy` (as `examples/legacy_login.rs` does), and
/// without it knows no such feature: no acceptable mechanism.
#[test]
fn prosodys_iq_auth_feature_is_unknown_without_legacy() {
    let t = Transcript::load("prosody/prosody13_legacy_auth_plain.txt");
    let after_tls = t.chunks_of(Dir::S)[2].clone();
    assert!(String::from_utf8_lossy(&after_tls).contains("features/iq-auth"));
    let tls = TlsMode::Direct;
    let mut c = client("alice@localhost", Credentials::password("x"), tls, |c| {
        c.policy.only = Some(vec![]);
        #[cfg(feature = "legacy")]
        {
            c.legacy_auth.enabled = true;
        }
    });
    let (sent, error) = feed_client(&mut c, &after_tls);
    if cfg!(feature = "legacy") {
        assert_eq!(error, None);
        assert!(sent.contains("jabber:iq:auth"), "{sent}");
    } else {
        // Nothing named, nothing refused: no mechanism, no legacy.
        assert_eq!(
            error,
            Some(ClientError::Policy(PolicyError::MechanismRefused(vec![])))
        );
        assert!(!sent.contains("<iq"), "{sent}");
    }
}

/// Before authentication, an iq:auth query (Prosody's capture) on a 1.0
/// stream: with `legacy`, a server with iq:auth off answers 501 and goes
/// on; without it, an IQ before authentication is a stanza like any
/// other, refused at its start tag with `not-authorized`.
#[test]
fn an_iq_auth_query_before_authentication_is_a_stanza_without_legacy() {
    let t = Transcript::load("prosody/prosody13_legacy_auth_plain.txt");
    let query = t.chunks_of(Dir::C)[3].clone();
    assert!(String::from_utf8_lossy(&query).contains("jabber:iq:auth"));
    let mut s = server("localhost", &["PLAIN"], |_| {});
    feed_server(&mut s, &t.chunks_of(Dir::C)[0]);
    // Only the start tag: the refusal cannot wait for the rest.
    let start = &query[..query.iter().position(|b| *b == b'>').unwrap() + 1];
    let (sent, events) = feed_server(&mut s, start);
    if cfg!(feature = "legacy") {
        assert_eq!(server_error(&events), None);
        let (sent, events) = feed_server(&mut s, &query[start.len()..]);
        assert_eq!(server_error(&events), None);
        assert!(sent.contains("code='501'"), "{sent}");
    } else {
        assert_eq!(
            server_error(&events).and_then(ServerError::condition),
            Some(StreamErrorCondition::NotAuthorized)
        );
        assert!(sent.contains("<not-authorized"), "{sent}");
    }
}

/// Inside a session, seed 001's registration enquiry: with `legacy` the
/// server answers the form itself; without it, it is a stanza for the
/// host, as any IQ the crate does not know.
#[test]
fn a_registration_iq_in_a_session_is_a_stanza_for_the_host_without_legacy() {
    let client = alice_config("PLAIN", TlsMode::None);
    let server = server_config("example.com", &["PLAIN"], ServerTls::None);
    let mut p = Pair::with_alice(client, server, None);
    p.negotiate();
    assert!(p.client.is_ready() && p.server.is_ready());
    // Seed 001's `<iq type='get'> <query xmlns='jabber:iq:register'/> </iq>`, with an id.
    let enquiry = b"<iq type='get' id='reg1'> <query xmlns='jabber:iq:register'/> </iq>";
    let (sent, events) = feed_server(&mut p.server, enquiry);
    let delivered = events.iter().any(|e| matches!(e, ServerEvent::Stanza(_)));
    assert_eq!(delivered, !cfg!(feature = "legacy"), "{events:?}");
    assert_eq!(server_error(&events), None);
    assert_eq!(
        sent.contains("<registered"),
        cfg!(feature = "legacy"),
        "{sent}"
    );
}
