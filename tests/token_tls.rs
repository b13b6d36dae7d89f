//! Issue 11, finding 5: bearer tokens are passwords. Neither role uses a
//! token mechanism (OAUTHBEARER, X-OAUTH2, X-GOOGLE-TOKEN) on a stream
//! without TLS unless the caller allows cleartext explicitly
//! (`allow_plain_without_tls`, the setting PLAIN already had); over TLS
//! nothing changes.

mod support;

use std::time::Instant;
use xmpp_sansio::client::PolicyError;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use support::pair::{client_config, server_config, Pair, TlsSim};
use xmpp_sansio::client::{ClientError, Credentials, TlsMode};
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::sasl::policy::{
    ClientPolicy, CredentialKind, Refusal, RefusedMechanism, SelectError, SelectionContext,
};
use xmpp_sansio::sasl::{CredentialRequest, SaslCondition, Secret};
use xmpp_sansio::server::{Server, ServerEvent, ServerSettings, ServerTls};
use xmpp_sansio::{DeterministicRandom, TlsInfo};

#[cfg(feature = "google")]
const TOKEN_MECHANISMS: [&str; 3] = ["OAUTHBEARER", "X-OAUTH2", "X-GOOGLE-TOKEN"];
#[cfg(not(feature = "google"))]
const TOKEN_MECHANISMS: [&str; 2] = ["OAUTHBEARER", "X-OAUTH2"];

const TOKEN: &str = "token-alice";

fn tls13() -> TlsInfo {
    TlsInfo {
        version: TlsVersion::Tls13,
        channel_bindings: Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// The client.

fn ctx(offered: &[String], tls: bool) -> SelectionContext<'_> {
    SelectionContext {
        offered,
        tls,
        can_bind: false,
        credentials: CredentialKind::Token,
    }
}

#[test]
fn the_policy_chooses_no_token_mechanism_without_tls_by_default() {
    // X-GOOGLE-TOKEN needs its own opt-in as before; it is on throughout.
    let strict = ClientPolicy {
        #[cfg(feature = "google")]
        enable_x_google_token: true,
        ..ClientPolicy::default()
    };
    let lax = ClientPolicy {
        allow_plain_without_tls: true,
        ..strict.clone()
    };
    for m in TOKEN_MECHANISMS {
        let offered = vec![m.to_owned()];
        assert_eq!(
            strict.select(&ctx(&offered, false)),
            Err(SelectError::NoAcceptableMechanism(offered.clone())),
            "{m}"
        );
        assert!(!strict.allows(m, &ctx(&offered, false)), "{m}");
        assert_eq!(lax.select(&ctx(&offered, false)).as_deref(), Ok(m), "{m}");
        assert_eq!(strict.select(&ctx(&offered, true)).as_deref(), Ok(m), "{m}");
        assert_eq!(lax.select(&ctx(&offered, true)).as_deref(), Ok(m), "{m}");
    }
    // Over TLS the ranking is unchanged; the cleartext allowance does not
    // enable X-GOOGLE-TOKEN by itself.
    let all: Vec<String> = TOKEN_MECHANISMS
        .iter()
        .rev()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        strict.select(&ctx(&all, true)).as_deref(),
        Ok("OAUTHBEARER")
    );
    let google = vec!["X-GOOGLE-TOKEN".to_owned()];
    let lax_default = ClientPolicy {
        allow_plain_without_tls: true,
        ..ClientPolicy::default()
    };
    assert!(lax_default.select(&ctx(&google, false)).is_err());
    assert!(ClientPolicy::default().select(&ctx(&google, true)).is_err());
}

/// Our client with a token against our server offering only `mechanism`.
fn token_login(mechanism: &str, tls: bool, client_allows: bool, _seed: u64) -> Pair {
    let (ctls, stls) = if tls {
        (TlsMode::StartTlsRequired, ServerTls::StartTlsRequired)
    } else {
        (TlsMode::None, ServerTls::None)
    };
    let mut c = client_config(
        "alice@example.com",
        Credentials::Token(Secret::new(TOKEN)),
        mechanism,
        ctls,
    );
    c.policy.allow_plain_without_tls = client_allows;
    // The server allows it, so that the client's choice is what is tested.
    let s = server_config("example.com", &[mechanism], stls);
    let mut pair = Pair::with_alice(c, s, Some(TlsSim::same(tls13())));
    pair.negotiate();
    pair
}

#[test]
fn the_client_sends_no_token_in_the_clear_by_default() {
    for (i, m) in TOKEN_MECHANISMS.into_iter().enumerate() {
        let seed = 10 * i as u64;
        // Offered in the clear: the client refuses, and nothing of the
        // token leaves it.
        let pair = token_login(m, false, false, seed);
        assert!(
            matches!(pair.client_error(), Some(ClientError::Policy(PolicyError::MechanismRefused(r)))
                if r == &[RefusedMechanism { mechanism: m.to_owned(), refusal: Refusal::NeedsTls }]),
            "{m}: {:?}",
            pair.client_error()
        );
        let up = String::from_utf8_lossy(&pair.up_bytes);
        assert!(!up.contains("<auth"), "{m}: {up}");
        assert!(!pair
            .server_events
            .iter()
            .any(|e| matches!(e, ServerEvent::Credentials(_))));
        assert!(!pair.client.is_ready());

        // Allowed explicitly: it logs in without TLS.
        let pair = token_login(m, false, true, seed);
        assert!(pair.client.is_ready() && pair.server.is_ready(), "{m}");
        assert!(!pair.client.is_encrypted());

        // Over TLS, by default: unchanged.
        let pair = token_login(m, true, false, seed);
        assert!(pair.client.is_ready() && pair.server.is_ready(), "{m}");
        assert!(pair.client.is_encrypted());
    }
}

// ---------------------------------------------------------------------------
// The server.

const HEADER: &str = "<?xml version='1.0'?><stream:stream to='example.com' version='1.0' \
    xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/// The initial response of `mechanism` with alice's token.
fn initial_response(mechanism: &str) -> Vec<u8> {
    match mechanism {
        "OAUTHBEARER" => format!("n,a=alice@example.com,\x01auth=Bearer {TOKEN}\x01\x01"),
        _ => format!("\0alice@example.com\0{TOKEN}"),
    }
    .into_bytes()
}

/// A mechanism tried, and whether the host was asked about the token
/// (`Ok`) or the exchange failed (the condition).
type Attempt = (String, Result<(), SaslCondition>);

/// What a server does with `config`: the mechanisms it advertises after
/// the stream header, and, for an `<auth/>` with each token mechanism
/// (offered or not, each on a fresh stream), whether the host was asked
/// about the token or else the condition of the failure.
fn offered_and_attempts(config: impl Fn() -> ServerSettings) -> (Vec<String>, Vec<Attempt>) {
    let now = Instant::now();
    let start = || {
        let config = config().build().unwrap();
        let direct = config.tls == ServerTls::Direct;
        let mut server = Server::with_random(config, Box::new(DeterministicRandom::new(0)), now);
        if direct {
            server = server.direct_tls(tls13());
        }
        server.feed(now, HEADER.as_bytes()).unwrap();
        let mut out = Vec::new();
        server.poll_transmit(&mut out);
        (server, String::from_utf8(out).unwrap())
    };
    let offered = start()
        .1
        .split("<mechanism>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
        .collect();
    let mut attempts = Vec::new();
    for m in TOKEN_MECHANISMS {
        let (mut server, _) = start();
        let auth = format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{m}'>{}</auth>",
            B64.encode(initial_response(m))
        );
        server.feed(now, auth.as_bytes()).unwrap();
        let mut outcome = None;
        while let Some(ev) = server.poll_event() {
            match ev {
                ServerEvent::Credentials(CredentialRequest::Token { token, .. }) => {
                    assert_eq!(token.expose(), TOKEN);
                    outcome = Some(Ok(()));
                }
                ServerEvent::AuthenticationFailed { condition, .. } => {
                    outcome = Some(Err(condition))
                }
                _ => {}
            }
        }
        attempts.push((m.to_owned(), outcome.expect("an outcome")));
    }
    (offered, attempts)
}

fn config(tls: ServerTls, allow: bool) -> ServerSettings {
    let mut c = ServerSettings::new("example.com");
    c.tls = tls;
    c.mechanisms = ["SCRAM-SHA-256"]
        .into_iter()
        .chain(TOKEN_MECHANISMS)
        .map(String::from)
        .collect();
    c.allow_plain_without_tls = allow;
    c
}

#[test]
fn the_server_offers_no_token_mechanism_without_tls_by_default() {
    let all: Vec<String> = ["SCRAM-SHA-256"]
        .into_iter()
        .chain(TOKEN_MECHANISMS)
        .map(String::from)
        .collect();
    let every = |r: Result<(), SaslCondition>| {
        TOKEN_MECHANISMS
            .iter()
            .map(|m| (m.to_string(), r))
            .collect::<Vec<_>>()
    };

    // By default, without TLS: not offered, and an <auth/> that names one
    // anyway is refused before the token reaches the host.
    assert!(!ServerSettings::new("example.com").allow_plain_without_tls);
    let (offered, attempts) = offered_and_attempts(|| config(ServerTls::None, false));
    assert_eq!(offered, ["SCRAM-SHA-256"]);
    assert_eq!(attempts, every(Err(SaslCondition::InvalidMechanism)));

    // Allowed explicitly.
    let (offered, attempts) = offered_and_attempts(|| config(ServerTls::None, true));
    assert_eq!(offered, all);
    assert_eq!(attempts, every(Ok(())));

    // Over TLS, by default: unchanged.
    let (offered, attempts) = offered_and_attempts(|| config(ServerTls::Direct, false));
    assert_eq!(offered, all);
    assert_eq!(attempts, every(Ok(())));
}
