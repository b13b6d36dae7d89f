//! Issue 11, finding 10: SCRAM must not tell which users exist. An unknown
//! user gets a server-first message like a known one (a salt derived from
//! the server's secret, stable per user, the configured iteration count, a
//! fresh nonce, XEP-0474 and channel binding as usual) and fails at the
//! proof, with the same `not-authorized` and the same events as a wrong
//! password.

mod support;

use xmpp_sansio::ConfigError;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use support::pair::{client_config, server_config, Pair, TlsSim};
use xmpp_sansio::client::{ClientSettings, Credentials, TlsMode};
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};
use xmpp_sansio::sasl::scram::{
    derive_server_credentials, mechanism_name, unknown_user_salt, ScramClient, ScramServer,
    ServerOffer, ALL_HASHES, UNKNOWN_USER_SALT_LEN,
};
use xmpp_sansio::sasl::{
    ClientMechanism, CredentialAnswer, CredentialRequest, SaslCondition, SaslError, ScramHash,
    SecretBytes, ServerMechanism, ServerStep,
};
use xmpp_sansio::server::{ServerEvent, ServerSettings, ServerTls};
use xmpp_sansio::{DeterministicRandom, TlsInfo};

// ---------------------------------------------------------------------------
// The server role, over the wire.

/// Who logs in: alice is known (password `pencil`), nobody is not.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Alice,
    AliceWrongPassword,
    Nobody,
}

fn client(who: Who, mechanism: &str, tls: TlsMode) -> ClientSettings {
    let (jid, password) = match who {
        Who::Alice => ("alice@example.com", "pencil"),
        Who::AliceWrongPassword => ("alice@example.com", "wrong"),
        Who::Nobody => ("nobody@example.com", "pencil"),
    };
    client_config(jid, Credentials::password(password), mechanism, tls)
}

fn tls_info() -> TlsInfo {
    TlsInfo {
        version: TlsVersion::Tls13,
        channel_bindings: vec![ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            b"exporter".to_vec(),
        )],
    }
}

/// One login with `mechanism` (over STARTTLS with tls-exporter data for
/// `-PLUS`, without TLS otherwise).
fn login(who: Who, mechanism: &str, config: impl FnOnce(&mut ServerSettings), seed: u64) -> Pair {
    let plus = mechanism.ends_with("-PLUS");
    let (ctls, stls) = if plus {
        (TlsMode::StartTlsRequired, ServerTls::StartTlsRequired)
    } else {
        (TlsMode::None, ServerTls::None)
    };
    let mut s = server_config("example.com", &[mechanism], stls);
    config(&mut s);
    let mut pair = Pair::alice_seeded(
        client(who, mechanism, ctls),
        s,
        Some(TlsSim::same(tls_info())),
        (seed, seed + 1),
    );
    pair.negotiate();
    pair
}

/// The SASL elements on one direction of the wire, in order: (name,
/// base64-decoded text).
fn sasl_elements(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut rest = &*text;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if !["auth", "challenge", "response", "success", "failure"].contains(&name.as_str()) {
            continue;
        }
        let Some(open_end) = rest.find('>') else {
            break;
        };
        let body = if rest[..open_end].ends_with('/') {
            String::new()
        } else {
            let close = format!("</{name}>");
            let end = rest.find(&close).expect("a closed SASL element");
            rest[open_end + 1..end].to_owned()
        };
        let payload = if name == "failure" {
            body.into_bytes()
        } else {
            B64.decode(body.trim()).unwrap_or_default()
        };
        out.push((name, payload));
    }
    out
}

/// A server-first message's attributes.
#[derive(Debug, PartialEq)]
struct ServerFirst {
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
    has_h: bool,
}

fn server_first(pair: &Pair) -> ServerFirst {
    let down = sasl_elements(&pair.down_bytes);
    let challenges: Vec<_> = down.iter().filter(|(n, _)| n == "challenge").collect();
    assert_eq!(challenges.len(), 1, "one challenge: {down:?}");
    let text = String::from_utf8(challenges[0].1.clone()).unwrap();
    let attrs: Vec<(&str, &str)> = text
        .split(',')
        .map(|kv| kv.split_once('=').expect("k=v"))
        .collect();
    let keys: Vec<&str> = attrs.iter().map(|(k, _)| *k).collect();
    assert!(
        keys == ["r", "s", "i"] || keys == ["r", "s", "i", "h"],
        "{text}"
    );
    // The combined nonce extends the client's.
    let up = sasl_elements(&pair.up_bytes);
    let client_first = String::from_utf8(up[0].1.clone()).unwrap();
    let client_nonce = client_first.split(",r=").nth(1).unwrap();
    let nonce = attrs[0].1.strip_prefix(client_nonce).expect("nonce prefix");
    assert!(!nonce.is_empty());
    ServerFirst {
        nonce: nonce.to_owned(),
        salt: B64.decode(attrs[1].1).unwrap(),
        iterations: attrs[2].1.parse().unwrap(),
        has_h: keys.len() == 4,
    }
}

/// The element names each way, in order.
fn shape(pair: &Pair) -> (Vec<String>, Vec<String>) {
    let names = |b: &[u8]| sasl_elements(b).into_iter().map(|(n, _)| n).collect();
    (names(&pair.up_bytes), names(&pair.down_bytes))
}

/// The server's events, with the user name the client gave replaced so
/// that two logins compare.
fn server_events(pair: &Pair) -> String {
    format!("{:?}", pair.server_events).replace("nobody", "alice")
}

fn client_events(pair: &Pair) -> String {
    format!("{:?}", pair.client_events)
}

/// The six SCRAM mechanisms, -PLUS last.
fn scram_mechanisms() -> impl Iterator<Item = &'static str> {
    [false, true]
        .into_iter()
        .flat_map(|plus| ALL_HASHES.map(|h| mechanism_name(h, plus)))
}

#[test]
fn an_unknown_user_fails_at_the_proof_like_a_wrong_password() {
    for (i, mechanism) in scram_mechanisms().enumerate() {
        let seed = 10 * i as u64;
        let ok = login(Who::Alice, mechanism, |_| {}, seed);
        let wrong = login(Who::AliceWrongPassword, mechanism, |_| {}, seed);
        let nobody = login(Who::Nobody, mechanism, |_| {}, seed);

        // The known user still logs in.
        assert!(ok.client.is_ready() && ok.server.is_ready(), "{mechanism}");

        // Known and unknown users both get a well-formed server-first
        // message, with the same count and XEP-0474 `h=`.
        let known = server_first(&wrong);
        let unknown = server_first(&nobody);
        assert_eq!(known.iterations, 4096, "{mechanism}");
        assert_eq!(unknown.iterations, known.iterations, "{mechanism}");
        assert!(known.has_h && unknown.has_h, "{mechanism}");
        assert_eq!(unknown.salt.len(), UNKNOWN_USER_SALT_LEN, "{mechanism}");
        assert_eq!(unknown.nonce.len(), known.nonce.len(), "{mechanism}");

        // The failure comes only after the proof: the client sent its
        // final message, the server answered it with not-authorized.
        let expected = (
            vec!["auth".to_owned(), "response".to_owned()],
            vec!["challenge".to_owned(), "failure".to_owned()],
        );
        assert_eq!(shape(&wrong), expected, "{mechanism}");
        assert_eq!(shape(&nobody), expected, "{mechanism}");
        let failure = |p: &Pair| sasl_elements(&p.down_bytes).pop().unwrap().1;
        assert_eq!(failure(&nobody), failure(&wrong), "{mechanism}");
        assert!(
            String::from_utf8(failure(&nobody))
                .unwrap()
                .contains("<not-authorized/>"),
            "{mechanism}"
        );

        // The same events on both sides as for a wrong password.
        assert_eq!(
            nobody.server_auth_failure(),
            Some(SaslCondition::NotAuthorized)
        );
        assert!(nobody.server_events.iter().any(|e| matches!(
            e,
            ServerEvent::AuthenticationFailed { mechanism: Some(m), condition: SaslCondition::NotAuthorized } if m == mechanism
        )));
        assert_eq!(server_events(&nobody), server_events(&wrong), "{mechanism}");
        assert_eq!(client_events(&nobody), client_events(&wrong), "{mechanism}");
        assert!(!nobody.client.is_ready() && !nobody.server.is_ready());
    }
}

#[test]
fn an_unknown_users_salt_is_stable_per_secret() {
    let secret = |s: &'static [u8]| {
        move |c: &mut ServerSettings| {
            c.scram_unknown_user_secret = Some(SecretBytes::new(s));
            c.scram_unknown_user_iterations = 5000;
        }
    };
    for (i, mechanism) in scram_mechanisms().enumerate() {
        let seed = 100 + 10 * i as u64;
        // Two connections (other seeds: other nonces), one secret.
        let a = server_first(&login(Who::Nobody, mechanism, secret(b"one"), seed));
        let b = server_first(&login(Who::Nobody, mechanism, secret(b"one"), seed + 3));
        assert_ne!(a.nonce, b.nonce, "{mechanism}: a fresh nonce");
        assert_eq!(a.salt, b.salt, "{mechanism}");
        assert_eq!((a.iterations, b.iterations), (5000, 5000), "{mechanism}");
        // It is the documented derivation.
        let (hash, _) = xmpp_sansio::sasl::scram::parse_mechanism_name(mechanism).unwrap();
        assert_eq!(a.salt, unknown_user_salt(b"one", hash, "nobody"));
        // Another secret, another salt.
        let c = server_first(&login(Who::Nobody, mechanism, secret(b"two"), seed));
        assert_ne!(a.salt, c.salt, "{mechanism}");
        assert_eq!(c.iterations, 5000);
    }
    // Unset, `build` draws a secret of its own for each configuration
    // (shared by every connection that uses it).
    let drawn = || {
        let config = ServerSettings::new("example.com").build().unwrap();
        let secret = config.settings().scram_unknown_user_secret.clone();
        secret.expect("drawn at build").expose().to_vec()
    };
    assert_eq!(drawn().len(), 32);
    assert_ne!(drawn(), drawn());
    assert_eq!(
        ServerSettings::new("example.com").scram_unknown_user_iterations,
        4096
    );
}

#[test]
fn an_unusable_unknown_user_setting_is_refused_when_built() {
    // An empty secret would make every unknown user's salt public; a count
    // of 0 is not a SCRAM count. No server can run with them.
    let mut c = ServerSettings::new("example.com");
    c.scram_unknown_user_secret = Some(SecretBytes::new(Vec::new()));
    assert_eq!(
        c.build().map(|_| ()),
        Err(ConfigError::Limit {
            field: "scram_unknown_user_secret"
        })
    );
    let mut c = ServerSettings::new("example.com");
    c.scram_unknown_user_iterations = 0;
    assert_eq!(
        c.build().map(|_| ()),
        Err(ConfigError::Limit {
            field: "scram_unknown_user_iterations"
        })
    );
}

// ---------------------------------------------------------------------------
// The mechanism alone, for every hash and gs2 flag.

fn offer(hash: ScramHash) -> ServerOffer {
    ServerOffer::new([mechanism_name(hash, false), mechanism_name(hash, true)])
        .with_channel_binding_types(["tls-exporter"])
}

fn scram_client(hash: ScramHash, user: &str, password: &str, plus: bool) -> ScramClient {
    let mut b = ScramClient::builder(hash, user, &offer(hash)).password(password);
    if plus {
        b = b.channel_binding(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            vec![7; 32],
        ));
    }
    b.build(&mut DeterministicRandom::new(1)).unwrap()
}

fn scram_server(hash: ScramHash, plus: bool, unknown: Option<&[u8]>) -> ScramServer {
    let mut b = ScramServer::builder(hash, plus, &offer(hash)).channel_binding(
        ChannelBinding::new(ChannelBindingType::TlsExporter, vec![7; 32]),
    );
    if let Some(secret) = unknown {
        b = b.unknown_users(secret, 4096);
    }
    b.build(&mut DeterministicRandom::new(2)).unwrap()
}

/// Runs an exchange; returns the server-first message and the server's
/// result for the client-final message (or the error where it stopped).
fn run(
    client: &mut ScramClient,
    server: &mut ScramServer,
    answer: CredentialAnswer,
) -> Result<(String, Result<ServerStep, SaslError>), SaslError> {
    let first = client.initial_response()?.unwrap();
    let Ok(ServerStep::Request(CredentialRequest::Scram { .. })) = server.start(Some(&first))
    else {
        panic!("no credential request")
    };
    let challenge = match server.answer(answer)? {
        ServerStep::Challenge(c) => c,
        other => panic!("{other:?}"),
    };
    let fin = client.respond(&challenge)?;
    Ok((String::from_utf8(challenge).unwrap(), server.respond(&fin)))
}

#[test]
fn every_hash_and_flag_answers_an_unknown_user_until_the_proof() {
    for hash in ALL_HASHES {
        let creds = derive_server_credentials(hash, "pencil", b"NaCl-NaCl-NaCl-!", 4096).unwrap();
        for plus in [false, true] {
            let label = mechanism_name(hash, plus);
            let wrong = run(
                &mut scram_client(hash, "alice", "wrong", plus),
                &mut scram_server(hash, plus, Some(b"secret")),
                CredentialAnswer::Scram(Some(creds.clone())),
            )
            .unwrap();
            let unknown = run(
                &mut scram_client(hash, "nobody", "pencil", plus),
                &mut scram_server(hash, plus, Some(b"secret")),
                CredentialAnswer::Scram(None),
            )
            .unwrap();
            // The client accepted the server-first message; the server
            // refused the proof, exactly as for a wrong password.
            let salt = B64.encode(unknown_user_salt(b"secret", hash, "nobody"));
            assert!(
                unknown.0.contains(&format!(",s={salt},i=4096,h=")),
                "{label}"
            );
            let err = unknown.1.unwrap_err();
            assert_eq!(err, wrong.1.unwrap_err(), "{label}");
            assert_eq!(err.condition, SaslCondition::NotAuthorized);
            // The unknown user's salt differs per family, as the stored
            // salts of a host that draws one per family do.
            for other in ALL_HASHES.into_iter().filter(|h| *h != hash) {
                assert_ne!(
                    unknown_user_salt(b"secret", hash, "nobody"),
                    unknown_user_salt(b"secret", other, "nobody")
                );
            }
            // Without the setting, the old behaviour: refused at once.
            let err = run(
                &mut scram_client(hash, "nobody", "pencil", plus),
                &mut scram_server(hash, plus, None),
                CredentialAnswer::Scram(None),
            )
            .unwrap_err();
            assert_eq!(err.condition, SaslCondition::NotAuthorized, "{label}");
        }
    }
}

#[test]
fn the_salt_follows_the_saslprepped_name() {
    // U+00AD SOFT HYPHEN is mapped to nothing by SASLprep: "no\u{ad}body"
    // is "nobody", and gets nobody's salt.
    let hash = ScramHash::Sha256;
    let salt_for = |name: &str| {
        let (server_first, _) = run(
            &mut scram_client(hash, name, "pencil", false),
            &mut scram_server(hash, false, Some(b"secret")),
            CredentialAnswer::Scram(None),
        )
        .unwrap();
        server_first
            .split(",s=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(salt_for("no\u{ad}body"), salt_for("nobody"));
    assert_ne!(salt_for("somebody"), salt_for("nobody"));
}

#[test]
fn an_unusable_setting_is_refused_when_building() {
    let hash = ScramHash::Sha1;
    for (secret, iterations) in [(&b""[..], 4096), (&b"secret"[..], 0)] {
        let err = ScramServer::builder(hash, false, &offer(hash))
            .unknown_users(secret, iterations)
            .build(&mut DeterministicRandom::new(1))
            .unwrap_err();
        assert_eq!(err.condition, SaslCondition::TemporaryAuthFailure);
    }
    // Debug shows the secret neither as text nor as bytes.
    let b = ScramServer::builder(hash, false, &offer(hash)).unknown_users(b"hunter2", 4096);
    let s = scram_server(hash, false, Some(b"hunter2"));
    for shown in [format!("{b:?}"), format!("{s:?}")] {
        assert!(
            !shown.contains("hunter2") && !shown.contains("104, 117"),
            "{shown}"
        );
    }
}
