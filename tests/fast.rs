//! FAST (XEP-0484): the `HT-*` mechanisms of both roles' registries, the
//! elements, the token slots and the client policy. Vectors: QXmpp's
//! HT-SHA-256-NONE (`fixtures/TEST-VECTORS.md`) and a real Prosody 13
//! login with a token (`fixtures/fast/prosody13_sasl2_fast_ht_sha256_none.txt`);
//! element examples from XEP-0484 0.2.0.

mod support;

use base64::Engine as _;
use xmpp_sansio::client::{
    fast_mechanism, ClientConfig, ClientSettings, Credentials, FastMechanismError,
};
use xmpp_sansio::fast::{
    self, parse_token, token_element, AfterFailure, Expiry, FastAuth, FastFeature, FastParseError,
    FastPolicy, FastRefusal, FastToken, RequestToken, TokenSlot, TokenSlots,
};
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};
use xmpp_sansio::sasl::ht::{HtBinding, HtClient, HtMechanism};
use xmpp_sansio::sasl::{
    ClientMechanism, CredentialAnswer, CredentialRequest, SaslCondition, SaslError, Secret,
    ServerMechanism, ServerStep,
};
use xmpp_sansio::server::{ServerConfig, ServerSettings};
use xmpp_sansio::{DeterministicRandom, TlsInfo};

use support::{elements_of, text_of, Dir, Entry, Transcript};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const PROSODY: &str = "fast/prosody13_sasl2_fast_ht_sha256_none.txt";

fn fixture(name: &str) -> String {
    let path = support::fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    assert!(
        text.starts_with("# source: "),
        "{name} must name its source on line 1"
    );
    text
}

/// The backticked values of QXmpp's vector in TEST-VECTORS.md: authcid,
/// token, initial response, responder value.
fn qxmpp_vector() -> [String; 4] {
    let v = fixture("TEST-VECTORS.md");
    let start = v
        .find("- Vector (QXmpp's test suite")
        .expect("the FAST vector");
    let end = start + v[start..].find("\n- ").expect("the next item");
    let ticks: Vec<String> = v[start..end]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    ticks.try_into().expect("four backticked values")
}

fn tls(version: TlsVersion, bindings: &[(ChannelBindingType, &[u8])]) -> TlsInfo {
    TlsInfo {
        version,
        channel_bindings: bindings
            .iter()
            .map(|(k, d)| ChannelBinding::new(*k, d.to_vec()))
            .collect(),
    }
}

/// TLS 1.2 with all three binding types, TLS 1.3 with the two defined there.
fn tls12_all() -> TlsInfo {
    tls(
        TlsVersion::Tls12,
        &[
            (ChannelBindingType::TlsUnique, b"finished-message"),
            (ChannelBindingType::TlsServerEndPoint, &[7; 32]),
            (ChannelBindingType::TlsExporter, &[9; 32]),
        ],
    )
}

fn tls13_all() -> TlsInfo {
    tls(
        TlsVersion::Tls13,
        &[
            (ChannelBindingType::TlsServerEndPoint, &[7; 32]),
            (ChannelBindingType::TlsExporter, &[9; 32]),
        ],
    )
}

fn client_config(user: &str) -> ClientConfig {
    ClientSettings::new(format!("{user}@localhost"), Credentials::password("unused"))
        .build()
        .unwrap()
}

fn server_config() -> ServerConfig {
    ServerSettings::new("localhost").build().unwrap()
}

fn expiry() -> Expiry {
    Expiry::parse("2026-12-14T06:42:18.991109Z").unwrap()
}

fn all_names() -> Vec<String> {
    HtMechanism::ALL
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// The client side of `token`'s mechanism, built through the client's
/// registry as a SASL2 client would.
fn client_side(
    user: &str,
    token: &FastToken,
    t: &TlsInfo,
) -> Result<Box<dyn ClientMechanism>, FastMechanismError> {
    let feature = FastFeature {
        mechanisms: all_names(),
        tls_0rtt: false,
    };
    let mut rng = DeterministicRandom::new(1);
    fast_mechanism(
        &client_config(user),
        &mut rng,
        Some(&feature),
        token,
        Some(t),
        None,
    )
}

/// The server side of `name`, built through the server's registry with
/// the feature [`fast::offer`] gives for `t`.
fn server_side(
    name: &str,
    t: &TlsInfo,
    login: FastAuth,
) -> Result<Box<dyn ServerMechanism>, SaslError> {
    let config = server_config();
    let feature = fast::offer(&config.registry, &all_names(), Some(t)).expect("something offered");
    let mut rng = DeterministicRandom::new(2);
    xmpp_sansio::server::fast_mechanism(
        &config,
        &mut rng,
        name,
        xmpp_sansio::server::FastLogin {
            feature: &feature,
            fast: login,
            user_agent_id: Some("59966e99-4d6c-433f-bb20-07910e1ddb8a"),
        },
        Some(t),
        "localhost",
    )
}

/// The server's result of an exchange, with the slot it reported.
type ServerOutcome = Result<Option<TokenSlot>, SaslError>;

/// Runs one exchange: the client's message to the server, the host's
/// answer `slots`, the server's outcome back to the client. Returns the
/// server's result (with the slot it reported) and the client's.
fn exchange(
    client: &mut dyn ClientMechanism,
    server: &mut dyn ServerMechanism,
    slots: TokenSlots,
) -> (ServerOutcome, Option<Result<(), SaslError>>) {
    let message = client
        .initial_response()
        .unwrap()
        .expect("HT sends an initial response");
    let request = match server.start(Some(&message)).unwrap() {
        ServerStep::Request(r) => r,
        other => panic!("{other:?}"),
    };
    let CredentialRequest::FastToken {
        mechanism,
        username,
        user_agent_id,
        ..
    } = &request
    else {
        panic!("{request:?}");
    };
    assert_eq!(*mechanism, client.name());
    assert_eq!(
        user_agent_id.as_deref(),
        Some("59966e99-4d6c-433f-bb20-07910e1ddb8a")
    );
    assert!(!username.is_empty());
    match server.answer(CredentialAnswer::FastTokens(slots)) {
        Ok(ServerStep::Success {
            identity,
            additional_data,
        }) => {
            assert_eq!(&identity.username, username);
            let c = client.success(additional_data.as_deref());
            (Ok(server.security().fast_token), Some(c))
        }
        Ok(other) => panic!("{other:?}"),
        Err(e) => (Err(e), None),
    }
}

fn current(token: &FastToken) -> TokenSlots {
    TokenSlots {
        current: Some(token.clone()),
        new: None,
    }
}

// ---------------------------------------------------------------- vectors

#[test]
fn qxmpp_vector_client_and_server() {
    let [user, secret, initial, responder] = qxmpp_vector();
    let m = HtMechanism::from_name("HT-SHA-256-NONE").unwrap();
    let t = tls(TlsVersion::Tls13, &[]);
    let mut c = HtClient::new(m, user.as_str(), Secret::new(secret.as_str()), Some(&t)).unwrap();
    let message = c.initial_response().unwrap().unwrap();
    assert_eq!(B64.encode(&message), initial);
    c.success(Some(&B64.decode(&responder).unwrap())).unwrap();

    let token = FastToken::new("HT-SHA-256-NONE", secret.as_str(), expiry());
    let mut s = server_side("HT-SHA-256-NONE", &t, FastAuth::default()).unwrap();
    assert!(matches!(
        s.start(Some(&message)).unwrap(),
        ServerStep::Request(_)
    ));
    match s
        .answer(CredentialAnswer::FastTokens(current(&token)))
        .unwrap()
    {
        ServerStep::Success {
            identity,
            additional_data,
        } => {
            assert_eq!(identity.username, user);
            assert_eq!(B64.encode(additional_data.unwrap()), responder);
        }
        other => panic!("{other:?}"),
    }
}

/// The token Prosody issued in the first login, the second login's
/// initial response and Prosody's `<additional-data/>`: our client sends
/// the same bytes and accepts Prosody's proof, our server gives the same
/// answer.
#[test]
fn prosody_13_login_with_its_token() {
    let t = Transcript::load(PROSODY);
    let server_side_text = String::from_utf8(t.bytes_of(Dir::S)).unwrap();
    let client_side_text = String::from_utf8(t.bytes_of(Dir::C)).unwrap();
    // The token, from the first <success/>.
    let element = |text: &str, open: &str, close: &str| {
        let at = text.find(open).unwrap();
        elements_of(&text[at..at + text[at..].find(close).unwrap() + close.len()])
    };
    let success = element(&server_side_text, "<success", "</success>");
    let token_el = success[0]
        .get_child("token", xmpp_sansio::ns::FAST)
        .expect("<token/>");
    // Bound to the mechanism the client asked for.
    let asked = element(&client_side_text, "<authenticate", "</authenticate>");
    let request = asked[0]
        .children()
        .find_map(RequestToken::parse)
        .expect("<request-token/>")
        .unwrap();
    assert_eq!(request.mechanism, "HT-SHA-256-NONE");
    let token = parse_token(token_el, &request.mechanism).unwrap().unwrap();
    assert_eq!(token.expiry.as_str(), "2026-12-14T06:42:18.991109Z");

    // The second login.
    let sent: Vec<&str> = client_side_text.matches("<authenticate ").collect();
    assert_eq!(sent.len(), 2);
    let second = &client_side_text[client_side_text.rfind("<authenticate ").unwrap()..];
    assert!(second.contains("mechanism='HT-SHA-256-NONE'"));
    let wire_initial = text_of(
        "initial-response",
        &second.replace("<initial-response>", "<initial-response >"),
    )
    .unwrap()
    .to_owned();
    let last_success = &server_side_text[server_side_text.rfind("<success").unwrap()..];
    let wire_responder = text_of(
        "additional-data",
        &last_success.replace("<additional-data>", "<additional-data >"),
    )
    .unwrap()
    .to_owned();
    // TLS 1.3, no binding (-NONE): the HMACs do not depend on it.
    let t13 = tls13_all();
    let mut c = client_side("alice", &token, &t13).unwrap();
    let ours = c.initial_response().unwrap().unwrap();
    assert_eq!(B64.encode(&ours), wire_initial);
    c.success(Some(&B64.decode(&wire_responder).unwrap()))
        .unwrap();

    let mut s = server_side("HT-SHA-256-NONE", &t13, FastAuth::default()).unwrap();
    s.start(Some(&ours)).unwrap();
    match s
        .answer(CredentialAnswer::FastTokens(current(&token)))
        .unwrap()
    {
        ServerStep::Success {
            additional_data, ..
        } => {
            assert_eq!(B64.encode(additional_data.unwrap()), wire_responder)
        }
        other => panic!("{other:?}"),
    }
    // The annotations agree: Prosody's proof was checked by the capture too.
    assert!(t.entries.iter().any(
        |e| matches!(e, Entry::Note(n) if n.contains("HT-SHA-256-NONE server proof verified"))
    ));
}

// ---------------------------------------------------------------- every variant, both sides

#[test]
fn every_variant_logs_in_on_both_sides_where_its_binding_exists() {
    for (t, label) in [(tls12_all(), "TLS 1.2"), (tls13_all(), "TLS 1.3")] {
        for m in HtMechanism::ALL {
            let token = FastToken::new(m.name(), "secret-token:fast-abc", expiry());
            let client = client_side("alice", &token, &t);
            let server = server_side(m.name(), &t, FastAuth::default());
            if m.binding == HtBinding::Uniq && t.version == TlsVersion::Tls13 {
                // Never -UNIQ on TLS 1.3: not offered, not built on either side.
                assert_eq!(
                    client.err(),
                    Some(FastMechanismError::Refused(
                        FastRefusal::NeedsChannelBinding
                    )),
                    "{m} on {label}"
                );
                assert_eq!(
                    server.err().map(|e| e.condition),
                    Some(SaslCondition::InvalidMechanism)
                );
                continue;
            }
            let (mut c, mut s) = (client.unwrap(), server.unwrap());
            assert_eq!(c.name(), m.name());
            let (server_result, client_result) = exchange(&mut *c, &mut *s, current(&token));
            assert_eq!(
                server_result,
                Ok(Some(TokenSlot::Current)),
                "{m} on {label}"
            );
            assert_eq!(client_result, Some(Ok(())), "{m} on {label}");
            let want = m.binding.channel_binding_type();
            assert_eq!(
                c.security().channel_binding.map(|b| format!("{b:?}")),
                want.map(|k| format!("Bound({k:?})")),
                "{m}"
            );
            assert_eq!(s.security().channel_binding, c.security().channel_binding);
        }
    }
}

#[test]
fn the_hash_and_the_binding_change_the_proof() {
    let t = tls12_all();
    let mut seen = std::collections::HashSet::new();
    for m in HtMechanism::ALL {
        let token = FastToken::new(m.name(), "same-token", expiry());
        let mut c = client_side("alice", &token, &t).unwrap();
        let msg = c.initial_response().unwrap().unwrap();
        let proof_len = msg.len() - "alice\0".len();
        assert_eq!(proof_len, m.hash.output_len(), "{m}");
        assert!(seen.insert(msg), "{m} sends the proof of another mechanism");
    }
}

// ---------------------------------------------------------------- failures

#[test]
fn a_wrong_or_unknown_token_is_credentials_expired() {
    let t = tls13_all();
    let good = FastToken::new("HT-SHA-256-EXPR", "the-token", expiry());
    let wrong = FastToken::new("HT-SHA-256-EXPR", "the-tokeN", expiry());
    for slots in [
        current(&wrong),
        TokenSlots::default(),
        TokenSlots {
            current: None,
            new: Some(wrong.clone()),
        },
    ] {
        let mut c = client_side("alice", &good, &t).unwrap();
        let mut s = server_side("HT-SHA-256-EXPR", &t, FastAuth::default()).unwrap();
        let (r, _) = exchange(&mut *c, &mut *s, slots);
        assert_eq!(r.unwrap_err().condition, SaslCondition::CredentialsExpired);
        assert_eq!(s.security().fast_token, None);
    }
    // The host may also refuse outright (a disabled account).
    let mut c = client_side("alice", &good, &t).unwrap();
    let mut s = server_side("HT-SHA-256-EXPR", &t, FastAuth::default()).unwrap();
    s.start(Some(&c.initial_response().unwrap().unwrap()))
        .unwrap();
    let e = s
        .answer(CredentialAnswer::Verdict(Err(
            SaslCondition::AccountDisabled,
        )))
        .unwrap_err();
    assert_eq!(e.condition, SaslCondition::AccountDisabled);
}

#[test]
fn a_token_bound_to_another_mechanism_is_refused() {
    // XEP-0484: a token issued for a binding mechanism must fail with a
    // mechanism without binding, even with the right secret.
    let t = tls13_all();
    let issued_for = FastToken::new("HT-SHA-256-EXPR", "the-token", expiry());
    let used_with = FastToken::new("HT-SHA-256-NONE", "the-token", expiry());
    let mut c = client_side("alice", &used_with, &t).unwrap();
    let mut s = server_side("HT-SHA-256-NONE", &t, FastAuth::default()).unwrap();
    let (r, _) = exchange(&mut *c, &mut *s, current(&issued_for));
    assert_eq!(r.unwrap_err().condition, SaslCondition::CredentialsExpired);
}

#[test]
fn the_client_refuses_a_wrong_or_missing_responder_value() {
    let t = tls13_all();
    for m in ["HT-SHA-256-NONE", "HT-SHA-512-EXPR", "HT-SHA3-512-ENDP"] {
        let token = FastToken::new(m, "the-token", expiry());
        let mut c = client_side("alice", &token, &t).unwrap();
        c.initial_response().unwrap();
        let e = c.success(Some(b"not the responder value")).unwrap_err();
        assert_eq!(e.condition, SaslCondition::NotAuthorized);
        let mut c = client_side("alice", &token, &t).unwrap();
        c.initial_response().unwrap();
        assert_eq!(
            c.success(None).unwrap_err().condition,
            SaslCondition::NotAuthorized
        );
        // A responder value for another token (a server that does not know
        // ours) is refused too.
        let other = FastToken::new(m, "another-token", expiry());
        let mut s = server_side(m, &t, FastAuth::default()).unwrap();
        let mut c2 = client_side("alice", &other, &t).unwrap();
        s.start(Some(&c2.initial_response().unwrap().unwrap()))
            .unwrap();
        let ServerStep::Success {
            additional_data, ..
        } = s
            .answer(CredentialAnswer::FastTokens(current(&other)))
            .unwrap()
        else {
            panic!()
        };
        let mut c = client_side("alice", &token, &t).unwrap();
        c.initial_response().unwrap();
        assert!(c.success(additional_data.as_deref()).is_err());
    }
}

#[test]
fn a_channel_binding_mismatch_fails_the_login() {
    // A machine in the middle: the client's TLS session is not the
    // server's, so their binding data differ.
    let token = FastToken::new("HT-SHA-256-EXPR", "the-token", expiry());
    let client_tls = tls(
        TlsVersion::Tls13,
        &[(ChannelBindingType::TlsExporter, &[1; 32])],
    );
    let server_tls = tls(
        TlsVersion::Tls13,
        &[(ChannelBindingType::TlsExporter, &[2; 32])],
    );
    let mut c = client_side("alice", &token, &client_tls).unwrap();
    let mut s = server_side("HT-SHA-256-EXPR", &server_tls, FastAuth::default()).unwrap();
    let (r, _) = exchange(&mut *c, &mut *s, current(&token));
    assert_eq!(r.unwrap_err().condition, SaslCondition::CredentialsExpired);
    // ENDP: the client saw another certificate.
    let token = FastToken::new("HT-SHA-512-ENDP", "the-token", expiry());
    let client_tls = tls(
        TlsVersion::Tls12,
        &[(ChannelBindingType::TlsServerEndPoint, &[3; 32])],
    );
    let server_tls = tls(
        TlsVersion::Tls12,
        &[(ChannelBindingType::TlsServerEndPoint, &[4; 32])],
    );
    let mut c = client_side("alice", &token, &client_tls).unwrap();
    let mut s = server_side("HT-SHA-512-ENDP", &server_tls, FastAuth::default()).unwrap();
    let (r, _) = exchange(&mut *c, &mut *s, current(&token));
    assert_eq!(r.unwrap_err().condition, SaslCondition::CredentialsExpired);
}

#[test]
fn no_binding_data_no_binding_mechanism_and_never_uniq_on_tls_13() {
    let m = HtMechanism::from_name("HT-SHA-256-UNIQ").unwrap();
    // tls-unique data handed over on TLS 1.3 (a host bug) is still not used.
    let t = tls(TlsVersion::Tls13, &[(ChannelBindingType::TlsUnique, b"x")]);
    assert!(!m.usable_with(Some(&t)));
    let e = HtClient::new(m, "alice", Secret::new("t"), Some(&t)).unwrap_err();
    assert_eq!(e.condition, SaslCondition::MechanismTooWeak);
    assert!(xmpp_sansio::sasl::ht::HtServer::new(m, Some(&t)).is_err());
    // ENDP without end-point data; anything without TLS.
    let endp = HtMechanism::from_name("HT-SHA-256-ENDP").unwrap();
    let exporter_only = tls(
        TlsVersion::Tls13,
        &[(ChannelBindingType::TlsExporter, &[9; 32])],
    );
    assert!(!endp.usable_with(Some(&exporter_only)));
    assert!(HtClient::new(endp, "alice", Secret::new("t"), Some(&exporter_only)).is_err());
    let none = HtMechanism::from_name("HT-SHA-256-NONE").unwrap();
    assert!(!none.usable_with(None));
    assert_eq!(
        HtClient::new(none, "alice", Secret::new("t"), None)
            .unwrap_err()
            .condition,
        SaslCondition::EncryptionRequired
    );
    // The server's offer follows the same rules.
    let config = server_config();
    let names = all_names();
    let offered = fast::offer(&config.registry, &names, Some(&tls13_all())).unwrap();
    assert!(offered.mechanisms.iter().all(|n| !n.ends_with("-UNIQ")));
    assert_eq!(offered.mechanisms.len(), 9);
    let on12 = fast::offer(&config.registry, &names, Some(&tls12_all())).unwrap();
    assert_eq!(on12.mechanisms, names);
    let bare = fast::offer(
        &config.registry,
        &names,
        Some(&TlsInfo::without_binding(TlsVersion::Tls13)),
    )
    .unwrap();
    assert_eq!(
        bare.mechanisms,
        ["HT-SHA-512-NONE", "HT-SHA3-512-NONE", "HT-SHA-256-NONE"]
    );
    assert_eq!(fast::offer(&config.registry, &names, None), None);
}

// ---------------------------------------------------------------- rotation

#[test]
fn rotation_keeps_the_old_token_until_the_new_one_is_used() {
    let t = tls13_all();
    let m = "HT-SHA-256-EXPR";
    let old = FastToken::new(m, "old-token", expiry());
    let new = FastToken::new(m, "new-token", expiry());
    let mut store = TokenSlots::default();
    store.issue(old.clone());
    store.promote(TokenSlot::New);
    // The server rotates: the new token goes to the new slot. The client
    // missed it (disconnected) and logs in with the old one: accepted.
    store.issue(new.clone());
    let login = |token: &FastToken, store: &TokenSlots| {
        let mut c = client_side("alice", token, &t).unwrap();
        let mut s = server_side(m, &t, FastAuth::default()).unwrap();
        exchange(&mut *c, &mut *s, store.clone())
    };
    assert_eq!(login(&old, &store).0, Ok(Some(TokenSlot::Current)));
    store.promote(TokenSlot::Current);
    assert_eq!(store.current.as_ref(), Some(&old));
    // Then with the new one: the host promotes it, the old one is gone.
    let (r, c) = login(&new, &store);
    assert_eq!((r.clone(), c), (Ok(Some(TokenSlot::New)), Some(Ok(()))));
    store.promote(r.unwrap().unwrap());
    assert_eq!(
        store,
        TokenSlots {
            current: Some(new.clone()),
            new: None
        }
    );
    assert_eq!(
        login(&old, &store).0.unwrap_err().condition,
        SaslCondition::CredentialsExpired
    );
    // Expired tokens leave the store; then the login fails.
    let mut expired = store.clone();
    expired.drop_expired(expiry().unix_seconds());
    assert_eq!(
        login(&new, &expired).0.unwrap_err().condition,
        SaslCondition::CredentialsExpired
    );
}

#[test]
fn count_and_invalidate_reach_the_host() {
    let t = tls13_all();
    let token = FastToken::new("HT-SHA-256-NONE", "the-token", expiry());
    let mut c = client_side("alice", &token, &t).unwrap();
    let mut s = server_side(
        "HT-SHA-256-NONE",
        &t,
        FastAuth {
            count: Some(123),
            invalidate: true,
        },
    )
    .unwrap();
    match s
        .start(Some(&c.initial_response().unwrap().unwrap()))
        .unwrap()
    {
        ServerStep::Request(CredentialRequest::FastToken {
            count,
            invalidate,
            username,
            ..
        }) => {
            assert_eq!(
                (count, invalidate, username.as_str()),
                (Some(123), true, "alice")
            );
        }
        other => panic!("{other:?}"),
    }
    // Without <fast/> (xmpp.js sends no count): none.
    let mut s = server_side("HT-SHA-256-NONE", &t, FastAuth::default()).unwrap();
    let mut c = client_side("alice", &token, &t).unwrap();
    assert!(matches!(
        s.start(Some(&c.initial_response().unwrap().unwrap()))
            .unwrap(),
        ServerStep::Request(CredentialRequest::FastToken {
            count: None,
            invalidate: false,
            ..
        })
    ));
    let mut store = current(&token);
    store.invalidate(TokenSlot::Current);
    assert_eq!(store, TokenSlots::default());
}

// ---------------------------------------------------------------- secrets

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let secret = "secret-token:fast-SuperSecret0123";
    let t = tls13_all();
    let token = FastToken::new("HT-SHA-256-EXPR", secret, expiry());
    let mut c = client_side("alice", &token, &t).unwrap();
    let mut s = server_side("HT-SHA-256-EXPR", &t, FastAuth::default()).unwrap();
    let msg = c.initial_response().unwrap().unwrap();
    let step = s.start(Some(&msg)).unwrap();
    let mut texts = vec![
        format!("{token:?}"),
        format!("{:?}", current(&token)),
        format!("{:?}", CredentialAnswer::FastTokens(current(&token))),
        format!("{step:?}"),
        format!("{t:?}"),
        format!("{:?}", client_config("alice")),
    ];
    let wrong = s
        .answer(CredentialAnswer::FastTokens(TokenSlots::default()))
        .unwrap_err();
    texts.push(format!("{wrong:?} {wrong}"));
    let e = c.success(Some(b"junk")).unwrap_err();
    texts.push(format!("{e:?} {e}"));
    for text in &texts {
        assert!(!text.contains("SuperSecret"), "{text}");
        // Nor the proof (the HMAC), in hex or base64.
        assert!(!text.contains(&B64.encode(&msg[6..])), "{text}");
    }
}

// ---------------------------------------------------------------- elements

#[test]
fn xep_0484_feature_example_and_prosody_offer() {
    let xep = elements_of(
        "<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism>\
         <mechanism>SCRAM-SHA-1-PLUS</mechanism><inline><fast xmlns='urn:xmpp:fast:0' tls-0rtt='true'>\
         <mechanism>HT-SHA-256-ENDP</mechanism><mechanism>HT-SHA-256-EXPR</mechanism>\
         <mechanism>HT-SHA-256-NONE</mechanism></fast></inline></authentication></stream:features>",
    );
    let fast_el = xep[0]
        .children()
        .next()
        .unwrap()
        .get_child("inline", "urn:xmpp:sasl:2")
        .unwrap()
        .children()
        .next()
        .unwrap();
    let f = FastFeature::parse(fast_el).unwrap();
    assert_eq!(
        f.mechanisms,
        ["HT-SHA-256-ENDP", "HT-SHA-256-EXPR", "HT-SHA-256-NONE"]
    );
    assert!(f.tls_0rtt);
    assert_eq!(FastFeature::parse(&f.to_element()), Some(f.clone()));
    // Prosody 13's, without tls-0rtt.
    let text = fixture(PROSODY);
    let at = text.find("<fast xmlns='urn:xmpp:fast:0'>").unwrap();
    let el = &elements_of(&text[at..text[at..].find("</fast>").unwrap() + at + 7])[0];
    let p = FastFeature::parse(el).unwrap();
    assert_eq!(
        p,
        FastFeature {
            mechanisms: vec!["HT-SHA-256-EXPR".into(), "HT-SHA-256-NONE".into()],
            tls_0rtt: false
        }
    );
    // Not the feature.
    assert_eq!(
        FastFeature::parse(
            &RequestToken {
                mechanism: "x".into()
            }
            .to_element()
        ),
        None
    );
}

#[test]
fn xep_0484_authenticate_children() {
    let els = elements_of(
        "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-ENDP'/>\
         <fast xmlns='urn:xmpp:fast:0' count='123'/>\
         <fast xmlns='urn:xmpp:fast:0' count='123' invalidate='true'/>\
         <fast xmlns='urn:xmpp:fast:0'/>\
         <fast xmlns='urn:xmpp:fast:0' count='-1'/>\
         <request-token xmlns='urn:xmpp:fast:0'/>",
    );
    assert_eq!(
        RequestToken::parse(&els[0]),
        Some(Ok(RequestToken {
            mechanism: "HT-SHA-256-ENDP".into()
        }))
    );
    assert_eq!(
        FastAuth::parse(&els[1]),
        Some(Ok(FastAuth {
            count: Some(123),
            invalidate: false
        }))
    );
    assert_eq!(
        FastAuth::parse(&els[2]),
        Some(Ok(FastAuth {
            count: Some(123),
            invalidate: true
        }))
    );
    assert_eq!(FastAuth::parse(&els[3]), Some(Ok(FastAuth::default())));
    assert_eq!(
        FastAuth::parse(&els[4]),
        Some(Err(FastParseError::BadCount))
    );
    assert_eq!(
        RequestToken::parse(&els[5]),
        Some(Err(FastParseError::NoMechanism))
    );
    for a in [
        FastAuth {
            count: Some(7),
            invalidate: true,
        },
        FastAuth::default(),
    ] {
        assert_eq!(FastAuth::parse(&a.to_element()), Some(Ok(a)));
    }
    let r = RequestToken {
        mechanism: "HT-SHA-512-EXPR".into(),
    };
    assert_eq!(RequestToken::parse(&r.to_element()), Some(Ok(r)));
    assert_eq!(FastAuth::parse(&els[0]), None);
}

#[test]
fn xep_0484_token_examples() {
    let els = elements_of(
        "<token xmlns='urn:xmpp:fast:0' expiry='2020-03-12T14:36:15Z' token='WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm' />\
         <token xmlns='urn:xmpp:fast:0' expiry='2020-03-31T14:36:15Z' token='R3VyIHpiZmcgbnl2aXIgdmYgZ3VyIGp2eXFyZmcu' />\
         <token xmlns='urn:xmpp:fast:0' expiry='soon' token='x'/>\
         <token xmlns='urn:xmpp:fast:0' expiry='2020-03-31T14:36:15Z'/>",
    );
    let t = parse_token(&els[0], "HT-SHA-256-ENDP").unwrap().unwrap();
    assert_eq!(t.mechanism, "HT-SHA-256-ENDP");
    assert!(t.token.ct_eq("WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm"));
    assert_eq!(t.expiry.unix_seconds(), 1_584_023_775);
    assert!(t.is_expired_at(1_584_023_775) && !t.is_expired_at(1_584_023_774));
    let rotated = parse_token(&els[1], "HT-SHA-256-ENDP").unwrap().unwrap();
    assert!(rotated.expiry.unix_seconds() > t.expiry.unix_seconds());
    assert_eq!(
        parse_token(&els[2], "m").unwrap(),
        Err(FastParseError::BadExpiry)
    );
    assert_eq!(
        parse_token(&els[3], "m").unwrap(),
        Err(FastParseError::NoToken)
    );
    assert_eq!(
        parse_token(&token_element(&t), "HT-SHA-256-ENDP")
            .unwrap()
            .unwrap(),
        t
    );
    // What the server writes for a token it issues now + 21 days.
    let issued = FastToken::new(
        "HT-SHA-256-NONE",
        "fresh",
        Expiry::from_unix(1_797_230_538).unwrap(),
    );
    let el = token_element(&issued);
    assert_eq!(el.attr("expiry"), Some("2026-12-14T06:42:18Z"));
}

// ---------------------------------------------------------------- client policy

#[test]
fn the_client_asks_for_the_strongest_token_mechanism_it_can_use_later() {
    let mechs = xmpp_sansio::client::ClientMechanisms::builtin();
    let prosody = FastFeature {
        mechanisms: vec!["HT-SHA-256-EXPR".into(), "HT-SHA-256-NONE".into()],
        tls_0rtt: false,
    };
    let on = FastPolicy {
        request_token: true,
        ..FastPolicy::default()
    };
    // Binding preferred (XEP-0484 section 7) when the exporter is there.
    assert_eq!(
        on.token_mechanism(&prosody, &mechs, Some(&tls13_all())),
        Some("HT-SHA-256-EXPR")
    );
    // Without exporter data: -NONE.
    let endp_only = tls(
        TlsVersion::Tls13,
        &[(ChannelBindingType::TlsServerEndPoint, &[7; 32])],
    );
    assert_eq!(
        on.token_mechanism(&prosody, &mechs, Some(&endp_only)),
        Some("HT-SHA-256-NONE")
    );
    // Off by default; never without TLS.
    assert_eq!(
        FastPolicy::default().token_mechanism(&prosody, &mechs, Some(&tls13_all())),
        None
    );
    assert_eq!(on.token_mechanism(&prosody, &mechs, None), None);
    // Everything offered on TLS 1.2: exporter first, the strongest hash,
    // tls-unique below end-point (a TLS 1.3 reconnect could not use it).
    let everything = FastFeature {
        mechanisms: all_names().into_iter().rev().collect(),
        tls_0rtt: false,
    };
    assert_eq!(
        on.token_mechanism(&everything, &mechs, Some(&tls12_all())),
        Some("HT-SHA-512-EXPR")
    );
    let uniq_or_endp = FastFeature {
        mechanisms: vec!["HT-SHA-512-UNIQ".into(), "HT-SHA-256-ENDP".into()],
        tls_0rtt: false,
    };
    assert_eq!(
        on.token_mechanism(&uniq_or_endp, &mechs, Some(&tls12_all())),
        Some("HT-SHA-256-ENDP")
    );
    // Unknown names are skipped; a host that removes a mechanism never asks for it.
    let mut fewer = mechs.clone();
    fewer.remove("HT-SHA-256-EXPR");
    let odd = FastFeature {
        mechanisms: vec!["HT-MD5-NONE".into(), "HT-SHA-256-EXPR".into()],
        tls_0rtt: false,
    };
    assert_eq!(on.token_mechanism(&odd, &fewer, Some(&tls13_all())), None);
    // The password selection never picks an HT mechanism.
    let pw = xmpp_sansio::sasl::policy::SelectionContext {
        offered: &everything.mechanisms,
        tls: true,
        can_bind: true,
        credentials: xmpp_sansio::sasl::policy::CredentialKind::Password,
    };
    assert!(xmpp_sansio::sasl::policy::ClientPolicy::default()
        .select_among(mechs.iter().map(|f| (f.name(), f.traits())), &pw)
        .is_err());
}

/// `only`: the mechanisms the host names, in its order, and no other. The
/// offers are Prosody 13's (mod_sasl2_fast with mod_sasl2: `-EXPR` and
/// `-NONE` on TLS 1.3, `-UNIQ` and `-NONE` on TLS 1.2; never `-ENDP`,
/// mod_sasl2 adds no tls-server-end-point to its handler).
#[test]
fn a_named_token_mechanism_is_that_one_or_an_error() {
    let mechs = xmpp_sansio::client::ClientMechanisms::builtin();
    let offer = |names: &[&str]| FastFeature {
        mechanisms: names.iter().map(|n| n.to_string()).collect(),
        tls_0rtt: false,
    };
    let prosody13 = offer(&["HT-SHA-256-EXPR", "HT-SHA-256-NONE"]);
    let prosody12 = offer(&["HT-SHA-256-UNIQ", "HT-SHA-256-NONE"]);
    let only = |names: &[&str]| FastPolicy {
        request_token: true,
        only: Some(names.iter().map(|n| n.to_string()).collect()),
        ..FastPolicy::default()
    };
    let t13 = tls13_all();
    // The named one though a binding one is offered (the ranked choice
    // would be -EXPR); the list's order, not the rank.
    assert_eq!(
        only(&["HT-SHA-256-NONE"]).token_request(Some(&prosody13), &mechs, Some(&t13)),
        Ok(Some("HT-SHA-256-NONE"))
    );
    assert_eq!(
        only(&["HT-SHA-512-EXPR", "HT-SHA-256-NONE", "HT-SHA-256-EXPR"]).token_request(
            Some(&prosody13),
            &mechs,
            Some(&t13)
        ),
        Ok(Some("HT-SHA-256-NONE"))
    );
    // Not offered: an error naming it and the offer, not another one.
    let endp = only(&["HT-SHA-256-ENDP"])
        .token_request(Some(&prosody13), &mechs, Some(&t13))
        .unwrap_err();
    assert_eq!(
        endp.refused,
        [("HT-SHA-256-ENDP".to_owned(), FastRefusal::NotOffered)]
    );
    assert_eq!(endp.offered, prosody13.mechanisms);
    assert_eq!(
        endp.to_string(),
        "HT-SHA-256-ENDP: not offered by the server \
         (the server offers: HT-SHA-256-EXPR HT-SHA-256-NONE)"
    );
    assert_eq!(
        only(&["HT-SHA-256-ENDP"]).token_mechanism(&prosody13, &mechs, Some(&t13)),
        None
    );
    // -UNIQ on TLS 1.3: refused by the client even when a server offers
    // it (XEP-0484: tls-unique is not defined there).
    let offers_uniq = offer(&["HT-SHA-256-UNIQ"]);
    let uniq13 = only(&["HT-SHA-256-UNIQ"])
        .token_request(Some(&offers_uniq), &mechs, Some(&t13))
        .unwrap_err();
    assert_eq!(
        uniq13.refused,
        [(
            "HT-SHA-256-UNIQ".to_owned(),
            FastRefusal::NeedsChannelBinding
        )]
    );
    assert!(
        uniq13
            .to_string()
            .starts_with("HT-SHA-256-UNIQ: tls-unique is not defined on TLS 1.3"),
        "{uniq13}"
    );
    // -UNIQ on TLS 1.2: with the Finished message, taken; from a host that
    // cannot supply it (rustls), an error saying so.
    assert_eq!(
        only(&["HT-SHA-256-UNIQ"]).token_request(Some(&prosody12), &mechs, Some(&tls12_all())),
        Ok(Some("HT-SHA-256-UNIQ"))
    );
    let no_unique = tls(
        TlsVersion::Tls12,
        &[(ChannelBindingType::TlsServerEndPoint, &[7; 32])],
    );
    let e = only(&["HT-SHA-256-UNIQ"])
        .token_request(Some(&prosody12), &mechs, Some(&no_unique))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("HT-SHA-256-UNIQ: no tls-unique data on this connection"),
        "{e}"
    );
    // Each named one with its reason; no FAST at all; no TLS; unknown.
    let e = only(&["HT-SHA-256-EXPR", "HT-SHA-512-NONE"])
        .token_request(Some(&prosody12), &mechs, Some(&no_unique))
        .unwrap_err();
    assert_eq!(
        e.refused,
        [
            (
                "HT-SHA-256-EXPR".to_owned(),
                FastRefusal::NeedsChannelBinding
            ),
            ("HT-SHA-512-NONE".to_owned(), FastRefusal::NotOffered)
        ]
    );
    let e = only(&["HT-SHA-256-NONE"])
        .token_request(None, &mechs, Some(&t13))
        .unwrap_err();
    assert!(e.offered.is_empty());
    assert!(
        e.to_string().ends_with("(the server offers: no FAST)"),
        "{e}"
    );
    assert_eq!(
        only(&["HT-SHA-256-NONE"])
            .token_request(Some(&prosody13), &mechs, None)
            .unwrap_err()
            .refused,
        [("HT-SHA-256-NONE".to_owned(), FastRefusal::NeedsTls)]
    );
    let mut fewer = mechs.clone();
    fewer.remove("HT-SHA-256-NONE");
    assert_eq!(
        only(&["HT-SHA-256-NONE"])
            .token_request(Some(&prosody13), &fewer, Some(&t13))
            .unwrap_err()
            .refused,
        [("HT-SHA-256-NONE".to_owned(), FastRefusal::Unknown)]
    );
    // Without request_token nothing is asked for, named or not.
    let off = FastPolicy {
        only: Some(vec!["HT-SHA-256-ENDP".into()]),
        ..FastPolicy::default()
    };
    assert_eq!(
        off.token_request(Some(&prosody13), &mechs, Some(&t13)),
        Ok(None)
    );
    // A token of a mechanism not named is not used.
    let now = expiry().unix_seconds() - 1;
    let none = FastToken::new("HT-SHA-256-NONE", "t", expiry());
    assert_eq!(
        only(&["HT-SHA-256-EXPR"]).check_login(
            Some(&prosody13),
            &mechs,
            &none,
            Some(&t13),
            Some(now)
        ),
        Err(FastRefusal::NotAllowed)
    );
    assert_eq!(
        only(&["HT-SHA-256-EXPR", "HT-SHA-256-NONE"]).check_login(
            Some(&prosody13),
            &mechs,
            &none,
            Some(&t13),
            Some(now)
        ),
        Ok(())
    );
}

#[test]
fn the_client_uses_its_token_only_where_it_can() {
    let mechs = xmpp_sansio::client::ClientMechanisms::builtin();
    let p = FastPolicy::default();
    let feature = FastFeature {
        mechanisms: vec!["HT-SHA-256-UNIQ".into(), "HT-SHA-256-NONE".into()],
        tls_0rtt: false,
    };
    let uniq = FastToken::new("HT-SHA-256-UNIQ", "t", expiry());
    let none = FastToken::new("HT-SHA-256-NONE", "t", expiry());
    let expr = FastToken::new("HT-SHA-256-EXPR", "t", expiry());
    let now = expiry().unix_seconds() - 1;
    assert_eq!(
        p.check_login(Some(&feature), &mechs, &uniq, Some(&tls12_all()), Some(now)),
        Ok(())
    );
    assert_eq!(
        p.check_login(Some(&feature), &mechs, &uniq, Some(&tls13_all()), Some(now)),
        Err(FastRefusal::NeedsChannelBinding)
    );
    assert_eq!(
        p.check_login(Some(&feature), &mechs, &expr, Some(&tls13_all()), Some(now)),
        Err(FastRefusal::NotOffered)
    );
    assert_eq!(
        p.check_login(None, &mechs, &none, Some(&tls13_all()), Some(now)),
        Err(FastRefusal::NotOffered)
    );
    assert_eq!(
        p.check_login(Some(&feature), &mechs, &none, None, Some(now)),
        Err(FastRefusal::NeedsTls)
    );
    assert_eq!(
        p.check_login(
            Some(&feature),
            &mechs,
            &none,
            Some(&tls13_all()),
            Some(now + 1)
        ),
        Err(FastRefusal::Expired)
    );
    let mut fewer = mechs.clone();
    fewer.remove("HT-SHA-256-NONE");
    assert_eq!(
        p.check_login(Some(&feature), &fewer, &none, Some(&tls13_all()), None),
        Err(FastRefusal::Unknown)
    );
}

#[test]
fn falling_back_to_the_password_is_explicit() {
    let strict = FastPolicy::default();
    assert_eq!(
        strict.after_failure(SaslCondition::CredentialsExpired),
        AfterFailure {
            discard_token: true,
            use_password: false
        }
    );
    let lenient = FastPolicy {
        fallback_to_password: true,
        ..FastPolicy::default()
    };
    assert_eq!(
        lenient.after_failure(SaslCondition::NotAuthorized),
        AfterFailure {
            discard_token: true,
            use_password: true
        }
    );
    // A passing trouble keeps the token.
    assert!(
        !strict
            .after_failure(SaslCondition::TemporaryAuthFailure)
            .discard_token
    );
}

// ---------------------------------------------------------------- hostile input

proptest::proptest! {
    /// Any message, any mechanism, any host answer: the server side never
    /// panics, and only an exact proof of a token it was given succeeds.
    #[test]
    fn the_server_side_takes_any_message(
        message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..160),
        which in 0usize..12,
        give_token in proptest::prelude::any::<bool>(),
    ) {
        let t = tls12_all();
        let m = HtMechanism::ALL[which];
        let mut s = server_side(m.name(), &t, FastAuth::default()).unwrap();
        if let Ok(ServerStep::Request(_)) = s.start(Some(&message)) {
            let slots = if give_token {
                current(&FastToken::new(m.name(), "the-token", expiry()))
            } else {
                TokenSlots::default()
            };
            let r = s.answer(CredentialAnswer::FastTokens(slots));
            proptest::prop_assert!(r.is_err(), "a random message logged in");
        }
    }

    /// Any `<success/>` data: the client side never panics and accepts
    /// only the responder value.
    #[test]
    fn the_client_side_takes_any_success_data(
        data in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)),
        which in 0usize..12,
    ) {
        let t = tls12_all();
        let m = HtMechanism::ALL[which];
        let mut c = client_side("alice", &FastToken::new(m.name(), "the-token", expiry()), &t).unwrap();
        c.initial_response().unwrap();
        proptest::prop_assert!(c.success(data.as_deref()).is_err());
    }
}
