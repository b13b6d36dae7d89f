//! SCRAM (RFC 5802, RFC 7677, `-PLUS`, XEP-0474) and XEP-0440 channel
//! binding: exact vectors, Prosody 13 capture replays on both sides,
//! client/server round trips and tampering (proptest), malformed input.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use minidom::Element;
use proptest::prelude::*;

use xmpp_sansio::sasl::channel_binding::{
    advertisable_types, choose_channel_binding, parse_sasl_channel_binding,
    sasl_channel_binding_element, ChannelBinding, ChannelBindingType, TlsVersion,
};
use xmpp_sansio::sasl::scram::{
    derive_server_credentials, mechanism_name, parse_mechanism_name, ScramClient,
    ScramClientBuilder, ScramClientKeys, ScramClientSecret, ScramServer, ServerOffer, ALL_HASHES,
    MAX_MESSAGE_LEN,
};
use xmpp_sansio::sasl::{
    decode_payload, ClientMechanism, CredentialAnswer, CredentialRequest, Identity, SaslCondition,
    SaslError, ScramCredentials, ScramHash, ServerMechanism, ServerStep,
};
use xmpp_sansio::DeterministicRandom;

fn rng() -> DeterministicRandom {
    DeterministicRandom::new(0x5c4a)
}

fn b64(s: &str) -> Vec<u8> {
    B64.decode(s).expect("test data is valid base64")
}

/// The value of attribute `key` in a SCRAM message `k=v,k=v`.
fn attr<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.split(',')
        .find_map(|p| p.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

// ===========================================================================
// RFC 5802 / RFC 7677 vectors (TEST-VECTORS.md).

struct Vector {
    hash: ScramHash,
    client_nonce: &'static str,
    client_first: &'static str,
    server_first: &'static str,
    client_final: &'static str,
    server_final: &'static str,
}

const RFC5802_SHA1: Vector = Vector {
    hash: ScramHash::Sha1,
    client_nonce: "fyko+d2lbbFgONRv9qkxdawL",
    client_first: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    server_first: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    client_final:
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    server_final: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

const RFC7677_SHA256: Vector = Vector {
    hash: ScramHash::Sha256,
    client_nonce: "rOprNGfwEbeRWgbNEkqO",
    client_first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    server_first:
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    client_final: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    server_final: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

const VECTORS: [Vector; 2] = [RFC5802_SHA1, RFC7677_SHA256];

impl Vector {
    fn offer(&self) -> ServerOffer {
        ServerOffer::new([mechanism_name(self.hash, false)])
    }

    /// A client builder for this vector's user, offer and nonce; the
    /// caller adds the secret (password or cached keys) and the options.
    fn builder(&self) -> ScramClientBuilder {
        ScramClient::builder(self.hash, "user", &self.offer()).nonce(self.client_nonce)
    }

    fn client(&self) -> ScramClient {
        self.builder().password("pencil").build(&mut rng()).unwrap()
    }

    /// Builds a client from `builder` and sends its client-first message:
    /// the client then waits for this vector's server-first.
    fn started(&self, builder: ScramClientBuilder) -> ScramClient {
        let mut c = builder.build(&mut rng()).unwrap();
        c.initial_response().unwrap();
        c
    }

    /// What a client built from `builder` answers to this vector's
    /// server-first (the client-final message, or the error).
    fn answer_server_first(&self, builder: ScramClientBuilder) -> Result<Vec<u8>, SaslError> {
        self.started(builder).respond(self.server_first.as_bytes())
    }

    fn salt(&self) -> Vec<u8> {
        b64(attr(self.server_first, "s").unwrap())
    }

    fn server_nonce_suffix(&self) -> &'static str {
        attr(self.server_first, "r")
            .unwrap()
            .strip_prefix(self.client_nonce)
            .unwrap()
    }

    fn credentials(&self) -> ScramCredentials {
        derive_server_credentials(self.hash, "pencil", &self.salt(), 4096).unwrap()
    }

    fn server(&self) -> ScramServer {
        ScramServer::builder(self.hash, false, &self.offer())
            .downgrade_protection(false)
            .nonce(self.server_nonce_suffix())
            .build(&mut rng())
            .unwrap()
    }
}

#[test]
fn rfc_vectors_client_side() {
    for v in VECTORS {
        let mut c = v.client();
        assert_eq!(c.name(), mechanism_name(v.hash, false));
        assert_eq!(c.gs2_header(), "n,,");
        assert_eq!(
            c.initial_response().unwrap().unwrap(),
            v.client_first.as_bytes()
        );
        assert!(c.keys_for_cache().is_none());
        assert_eq!(
            c.respond(v.server_first.as_bytes()).unwrap(),
            v.client_final.as_bytes()
        );
        assert!(
            c.keys_for_cache().is_none(),
            "no keys before the server proved itself"
        );
        c.success(Some(v.server_final.as_bytes())).unwrap();
        let keys = c.keys_for_cache().unwrap();
        assert_eq!(
            (keys.hash, keys.salt.clone(), keys.iterations),
            (v.hash, v.salt(), 4096)
        );
    }
}

#[test]
fn rfc_vectors_client_accepts_server_final_as_challenge() {
    for v in VECTORS {
        let mut c = v.client();
        c.initial_response().unwrap();
        c.respond(v.server_first.as_bytes()).unwrap();
        assert_eq!(c.respond(v.server_final.as_bytes()).unwrap(), b"");
        assert!(c.keys_for_cache().is_some());
        c.success(None).unwrap();
    }
    // The success may repeat the same server-final, but not another one.
    let v = RFC5802_SHA1;
    let mut c = v.client();
    c.initial_response().unwrap();
    c.respond(v.server_first.as_bytes()).unwrap();
    c.respond(v.server_final.as_bytes()).unwrap();
    c.success(Some(v.server_final.as_bytes())).unwrap();
    let mut c = v.client();
    c.initial_response().unwrap();
    c.respond(v.server_first.as_bytes()).unwrap();
    c.respond(v.server_final.as_bytes()).unwrap();
    let err = c
        .success(Some(RFC7677_SHA256.server_final.as_bytes()))
        .unwrap_err();
    assert_eq!(err.condition, SaslCondition::NotAuthorized);
}

#[test]
fn rfc_vectors_server_side() {
    for v in VECTORS {
        let mut s = v.server();
        assert_eq!(s.name(), mechanism_name(v.hash, false));
        match s.start(Some(v.client_first.as_bytes())).unwrap() {
            ServerStep::Request(CredentialRequest::Scram {
                username,
                authzid,
                hash,
            }) => {
                assert_eq!((username.as_str(), authzid, hash), ("user", None, v.hash));
            }
            other => panic!("expected a SCRAM credential request, got {other:?}"),
        }
        match s
            .answer(CredentialAnswer::Scram(Some(v.credentials())))
            .unwrap()
        {
            ServerStep::Challenge(c) => assert_eq!(c, v.server_first.as_bytes()),
            other => panic!("expected the server-first challenge, got {other:?}"),
        }
        match s.respond(v.client_final.as_bytes()).unwrap() {
            ServerStep::Success {
                identity,
                additional_data,
            } => {
                assert_eq!(
                    identity,
                    Identity {
                        username: "user".into(),
                        authzid: None
                    }
                );
                assert_eq!(additional_data.unwrap(), v.server_final.as_bytes());
            }
            other => panic!("expected success, got {other:?}"),
        }
    }
}

#[test]
fn rfc_vectors_server_side_without_initial_response() {
    let v = RFC5802_SHA1;
    let mut s = v.server();
    match s.start(None).unwrap() {
        ServerStep::Challenge(c) => assert!(c.is_empty()),
        other => panic!("expected an empty challenge, got {other:?}"),
    }
    assert!(matches!(
        s.respond(v.client_first.as_bytes()).unwrap(),
        ServerStep::Request(_)
    ));
    // And the client answers an empty first challenge with its first message.
    let mut c = v.client();
    assert_eq!(c.respond(b"").unwrap(), v.client_first.as_bytes());
}

#[test]
fn cached_keys_replace_pbkdf2_only_for_matching_salt_and_iterations() {
    for v in VECTORS {
        let derived = ScramClientKeys::derive(v.hash, "pencil", &v.salt(), 4096).unwrap();
        assert!(matches!(
            derived.secret,
            ScramClientSecret::SaltedPassword(_)
        ));
        // The keys handed back after an exchange, and the derived ones, both
        // produce the vector without a password.
        let mut full = v.client();
        full.initial_response().unwrap();
        full.respond(v.server_first.as_bytes()).unwrap();
        full.success(Some(v.server_final.as_bytes())).unwrap();
        let handed_back = full.keys_for_cache().unwrap();
        assert!(matches!(handed_back.secret, ScramClientSecret::Keys { .. }));
        for keys in [derived.clone(), handed_back] {
            let mut c = v.started(v.builder().cached_keys(keys));
            assert_eq!(
                c.respond(v.server_first.as_bytes()).unwrap(),
                v.client_final.as_bytes()
            );
            c.success(Some(v.server_final.as_bytes())).unwrap();
        }

        // Keys for another salt: unusable; without a password that fails...
        let stale = ScramClientKeys::derive(v.hash, "pencil", b"other salt", 4096).unwrap();
        let err = v
            .answer_server_first(v.builder().cached_keys(stale.clone()))
            .unwrap_err();
        assert_eq!(err.condition, SaslCondition::CredentialsExpired);
        // ... and with one the client falls back to PBKDF2.
        assert_eq!(
            v.answer_server_first(v.builder().cached_keys(stale).password("pencil"))
                .unwrap(),
            v.client_final.as_bytes()
        );

        // Keys for another iteration count are not used either.
        let other_i = ScramClientKeys::derive(v.hash, "pencil", &v.salt(), 4097).unwrap();
        let err = v
            .answer_server_first(v.builder().cached_keys(other_i))
            .unwrap_err();
        assert_eq!(err.condition, SaslCondition::CredentialsExpired);
    }
}

#[test]
fn client_needs_a_password_or_keys_for_its_hash() {
    let v = RFC5802_SHA1;
    let err = ScramClient::builder(v.hash, "user", &v.offer())
        .build(&mut rng())
        .unwrap_err();
    assert_eq!(err.condition, SaslCondition::NotAuthorized);
    let sha256_keys = ScramClientKeys::derive(ScramHash::Sha256, "pencil", b"salt", 1).unwrap();
    let err = ScramClient::builder(v.hash, "user", &v.offer())
        .cached_keys(sha256_keys)
        .build(&mut rng())
        .unwrap_err();
    assert_eq!(err.condition, SaslCondition::NotAuthorized);
}

#[test]
fn minimum_iteration_count_is_enforced_and_configurable() {
    let v = RFC5802_SHA1;
    let weak = v.server_first.replace("i=4096", "i=4095");
    let mut c = v.client();
    c.initial_response().unwrap();
    let err = c.respond(weak.as_bytes()).unwrap_err();
    assert_eq!(err.condition, SaslCondition::MechanismTooWeak);

    let err = v
        .answer_server_first(v.builder().password("pencil").min_iterations(8192))
        .unwrap_err();
    assert_eq!(err.condition, SaslCondition::MechanismTooWeak);

    let err = v
        .answer_server_first(
            v.builder()
                .password("pencil")
                .max_iterations(4000)
                .min_iterations(1),
        )
        .unwrap_err();
    assert_eq!(err.condition, SaslCondition::MalformedRequest);
}

// ===========================================================================
// XEP-0474.

#[test]
fn xep0474_vector() {
    let offer = ServerOffer::new(["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"])
        .with_channel_binding_types(["tls-exporter", "tls-server-end-point"]);
    assert_eq!(
        offer.downgrade_protection_hash(ScramHash::Sha1),
        "G6k/rBLDqgOhRRaCuuatSDFkJ08="
    );
    // Order and duplicates do not matter: both lists are sorted.
    let shuffled = ServerOffer::new(["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "SCRAM-SHA-1"])
        .with_channel_binding_types(["tls-server-end-point", "tls-exporter"]);
    assert_eq!(
        shuffled.downgrade_protection_hash(ScramHash::Sha1),
        "G6k/rBLDqgOhRRaCuuatSDFkJ08="
    );
    // Without XEP-0440 types there is no 0x1F part; an empty list keeps it.
    let no_cb = ServerOffer::new(["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"]);
    let empty_cb = no_cb
        .clone()
        .with_channel_binding_types(Vec::<String>::new());
    assert_ne!(
        no_cb.downgrade_protection_hash(ScramHash::Sha1),
        empty_cb.downgrade_protection_hash(ScramHash::Sha1)
    );
    assert_ne!(
        offer.downgrade_protection_hash(ScramHash::Sha1),
        no_cb.downgrade_protection_hash(ScramHash::Sha1)
    );
}

// ===========================================================================
// Prosody 13 captures.

const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const SASL2: &str = "urn:xmpp:sasl:2";

#[derive(Debug, Clone)]
enum Msg {
    Client(Vec<u8>),
    Challenge(Vec<u8>),
    Success(Option<Vec<u8>>),
    Failure(String),
}

#[derive(Debug)]
struct Capture {
    tls: TlsVersion,
    offer: ServerOffer,
    mechanism: String,
    msgs: Vec<Msg>,
}

/// The top-level elements named `names` found in `line`, in order.
fn elements_in(line: &str, names: &[&str]) -> Vec<Element> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let next = names
            .iter()
            .filter_map(|n| {
                let mut from = pos;
                while let Some(i) = line[from..].find(&format!("<{n}")) {
                    let at = from + i;
                    let after = line.as_bytes().get(at + 1 + n.len());
                    if matches!(after, Some(b' ' | b'>' | b'/')) {
                        return Some((at, *n));
                    }
                    from = at + 1;
                }
                None
            })
            .min();
        let Some((start, name)) = next else { break };
        let tag_end = start + line[start..].find('>').unwrap();
        let end = if line.as_bytes()[tag_end - 1] == b'/' {
            tag_end + 1
        } else {
            let close = format!("</{name}>");
            start + line[start..].find(&close).unwrap() + close.len()
        };
        out.push(line[start..end].parse::<Element>().unwrap());
        pos = end;
    }
    out
}

fn payload(text: &str) -> Option<Vec<u8>> {
    decode_payload(text).unwrap()
}

fn load(name: &str) -> Capture {
    let path = format!(
        "{}/tests/fixtures/prosody/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.starts_with(&format!(
        "# source: shared/interop/transcripts/{name} (raw wire capture against a real Prosody server"
    )));
    let mut tls = None;
    let mut offer = ServerOffer::default();
    let mut mechanism = None;
    let mut msgs = Vec::new();
    let names = [
        "mechanisms",
        "sasl-channel-binding",
        "auth",
        "authenticate",
        "challenge",
        "response",
        "success",
        "failure",
    ];
    for line in text.lines() {
        if line.starts_with("-- TLS handshake done: TLSv1.3") {
            tls = Some(TlsVersion::Tls13);
        } else if line.starts_with("-- TLS handshake done: TLSv1.2") {
            tls = Some(TlsVersion::Tls12);
        }
        let Some(body) = line
            .strip_prefix("C: ")
            .or_else(|| line.strip_prefix("S: "))
        else {
            continue;
        };
        for el in elements_in(body, &names) {
            let ns = el.ns();
            match el.name() {
                "mechanisms" if ns == SASL => {
                    offer.mechanisms = el.children().map(Element::text).collect();
                }
                "sasl-channel-binding" => {
                    offer.channel_binding_types = parse_sasl_channel_binding(&el);
                }
                "auth" if ns == SASL => {
                    mechanism = el.attr("mechanism").map(str::to_owned);
                    msgs.push(Msg::Client(payload(&el.text()).unwrap()));
                }
                "authenticate" if ns == SASL2 => {
                    mechanism = el.attr("mechanism").map(str::to_owned);
                    let ir = el.get_child("initial-response", SASL2).unwrap();
                    msgs.push(Msg::Client(payload(&ir.text()).unwrap()));
                }
                "response" if ns == SASL || ns == SASL2 => {
                    msgs.push(Msg::Client(payload(&el.text()).unwrap_or_default()));
                }
                "challenge" if ns == SASL || ns == SASL2 => {
                    msgs.push(Msg::Challenge(payload(&el.text()).unwrap_or_default()));
                }
                "success" if ns == SASL => msgs.push(Msg::Success(payload(&el.text()))),
                "success" if ns == SASL2 => {
                    let ad = el.get_child("additional-data", SASL2);
                    msgs.push(Msg::Success(ad.and_then(|a| payload(&a.text()))));
                }
                "failure" if ns == SASL || ns == SASL2 => {
                    let cond = el.children().find(|c| c.name() != "text").unwrap();
                    msgs.push(Msg::Failure(cond.name().to_owned()));
                }
                _ => {}
            }
        }
    }
    Capture {
        tls: tls.unwrap(),
        offer,
        mechanism: mechanism.unwrap(),
        msgs,
    }
}

/// What the captured client-first and client-final messages tell: nonce,
/// gs2 header, and the channel-binding data inside `c=`.
struct ClientSide {
    nonce: String,
    user: String,
    binding: Option<ChannelBinding>,
}

fn client_side(cap: &Capture) -> ClientSide {
    let Msg::Client(first) = &cap.msgs[0] else {
        panic!("capture does not start with the client")
    };
    let first = std::str::from_utf8(first).unwrap();
    let mut parts = first.splitn(3, ',');
    let (flag, authz, bare) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let gs2 = format!("{flag},{authz},");
    let binding = flag.strip_prefix("p=").map(|kind| {
        let Some(Msg::Client(fin)) = cap.msgs.get(2) else {
            // Rejected before the final message: the data does not matter.
            return ChannelBinding::new(ChannelBindingType::from_name(kind).unwrap(), vec![0; 32]);
        };
        let c = b64(attr(std::str::from_utf8(fin).unwrap(), "c").unwrap());
        let data = c.strip_prefix(gs2.as_bytes()).unwrap().to_vec();
        ChannelBinding::new(ChannelBindingType::from_name(kind).unwrap(), data)
    });
    ClientSide {
        nonce: attr(bare, "r").unwrap().to_owned(),
        user: attr(bare, "n").unwrap().to_owned(),
        binding,
    }
}

/// Replays the client side of a successful capture: every message our
/// client sends must be byte-identical to the captured one, and it must
/// accept the captured server-final (so the server signature verifies,
/// which also proves that alice's password is `secret`).
fn replay_client(name: &str) -> ScramClient {
    let cap = load(name);
    let (hash, plus) = parse_mechanism_name(&cap.mechanism).unwrap();
    let side = client_side(&cap);
    let mut b = ScramClient::builder(hash, side.user.as_str(), &cap.offer)
        .password("secret")
        .nonce(side.nonce.as_str());
    if let Some(cb) = side.binding {
        b = b.channel_binding(cb);
    }
    let mut c = b.build(&mut rng()).unwrap();
    assert_eq!(c.name(), cap.mechanism);
    assert_eq!(c.is_plus(), plus);
    let mut msgs = cap.msgs.iter();
    let Some(Msg::Client(first)) = msgs.next() else {
        panic!()
    };
    assert_eq!(&c.initial_response().unwrap().unwrap(), first);
    let Some(Msg::Challenge(server_first)) = msgs.next() else {
        panic!()
    };
    let Some(Msg::Client(client_final)) = msgs.next() else {
        panic!()
    };
    assert_eq!(&c.respond(server_first).unwrap(), client_final, "{name}");
    let Some(Msg::Success(data)) = msgs.next() else {
        panic!()
    };
    assert!(data.is_some());
    c.success(data.as_deref()).unwrap();
    c
}

const SUCCESS_CAPTURES: [&str; 6] = [
    "prosody13_scram_sha1_bind.txt",
    "prosody13_scram_sha1_plus_endp_tls13.txt",
    "prosody13_sha256_scram_sha256.txt",
    "prosody13_sha256_scram_sha256_plus_endp.txt",
    "prosody13_tls12_scram_sha1_plus.txt",
    "prosody13_sasl2_scram_sha1_bind2.txt",
];

#[test]
fn prosody_captures_replay_on_the_client() {
    for name in SUCCESS_CAPTURES {
        let c = replay_client(name);
        assert!(c.keys_for_cache().is_some());
    }
}

#[test]
fn prosody_sends_xep0474_h_and_the_client_checks_it() {
    let cap = load("prosody13_scram_sha1_bind.txt");
    let Msg::Challenge(server_first) = &cap.msgs[1] else {
        panic!()
    };
    let server_first = std::str::from_utf8(server_first).unwrap();
    let h = attr(server_first, "h").unwrap();
    assert_eq!(h, "BykYKb/HHtj4hycdAMiTZQoU5j0=");
    // Prosody hashes every offered mechanism, not only SCRAM ones.
    assert_eq!(cap.offer.downgrade_protection_hash(ScramHash::Sha1), h);
    assert!(cap.offer.offers("PLAIN") && cap.offer.offers("OAUTHBEARER"));

    // A man in the middle strips SCRAM-SHA-1-PLUS from the features: the
    // client sees h= disagree and fails.
    let side = client_side(&cap);
    // The captured client, shown the features as tampered with, answering
    // the captured server-first.
    let answer_with = |offer: ServerOffer| {
        let mut c = ScramClient::builder(ScramHash::Sha1, "alice", &offer)
            .password("secret")
            .nonce(side.nonce.as_str())
            .build(&mut rng())
            .unwrap();
        c.initial_response().unwrap();
        c.respond(server_first.as_bytes())
    };
    let mut stripped = cap.offer.clone();
    stripped.mechanisms.retain(|m| m != "SCRAM-SHA-1-PLUS");
    let err = answer_with(stripped).unwrap_err();
    assert_eq!(err.condition, SaslCondition::NotAuthorized);
    // Stripping a channel-binding type is caught too.
    let mut stripped = cap.offer.clone();
    stripped.channel_binding_types = Some(vec!["tls-server-end-point".into()]);
    assert_eq!(
        answer_with(stripped).unwrap_err().condition,
        SaslCondition::NotAuthorized
    );
}

/// Replays the client messages of a capture against our server, configured
/// like Prosody was (its nonce, alice's stored credentials derived from
/// `secret` and the captured salt and iteration count). Returns the
/// server's result for each step.
fn replay_server(name: &str) -> Vec<Result<ServerStep, SaslError>> {
    let cap = load(name);
    let (hash, plus) = parse_mechanism_name(&cap.mechanism).unwrap();
    let side = client_side(&cap);
    let server_first = cap.msgs.iter().find_map(|m| match m {
        Msg::Challenge(c) => Some(String::from_utf8(c.clone()).unwrap()),
        _ => None,
    });
    let mut b = ScramServer::builder(hash, plus, &cap.offer);
    if let Some(sf) = &server_first {
        let suffix = attr(sf, "r")
            .unwrap()
            .strip_prefix(side.nonce.as_str())
            .unwrap();
        b = b
            .nonce(suffix)
            .downgrade_protection(attr(sf, "h").is_some());
    }
    // The host provides what the server advertised with XEP-0440 on that
    // connection, with the captured value where the client used one.
    for t in cap.offer.channel_binding_types.clone().unwrap_or_default() {
        let kind = ChannelBindingType::from_name(&t).unwrap();
        match &side.binding {
            Some(cb) if cb.kind == kind => b = b.channel_binding(cb.clone()),
            _ => b = b.channel_binding(ChannelBinding::new(kind, vec![0xAA; 32])),
        }
    }
    let mut s = b.build(&mut rng()).unwrap();
    assert_eq!(s.name(), cap.mechanism);

    let client_msgs: Vec<&Vec<u8>> = cap
        .msgs
        .iter()
        .filter_map(|m| match m {
            Msg::Client(c) => Some(c),
            _ => None,
        })
        .collect();
    let mut results = Vec::new();
    let step = s.start(Some(client_msgs[0]));
    let request = matches!(step, Ok(ServerStep::Request(_)));
    results.push(step);
    if !request {
        return results;
    }
    let creds = server_first.as_ref().map(|sf| {
        let salt = b64(attr(sf, "s").unwrap());
        let i = attr(sf, "i").unwrap().parse().unwrap();
        derive_server_credentials(hash, "secret", &salt, i).unwrap()
    });
    let step = s.answer(CredentialAnswer::Scram(creds));
    let challenge = match &step {
        Ok(ServerStep::Challenge(c)) => Some(c.clone()),
        _ => None,
    };
    results.push(step);
    let Some(challenge) = challenge else {
        return results;
    };
    assert_eq!(
        Some(String::from_utf8(challenge).unwrap()),
        server_first,
        "{name}"
    );
    results.push(s.respond(client_msgs[1]));
    results
}

#[test]
fn prosody_captures_replay_on_the_server() {
    for name in SUCCESS_CAPTURES {
        let cap = load(name);
        let Some(Msg::Success(Some(expected))) = cap.msgs.last().cloned() else {
            panic!("{name} does not end with a success")
        };
        let results = replay_server(name);
        match results.last().unwrap() {
            Ok(ServerStep::Success {
                identity,
                additional_data,
            }) => {
                assert_eq!(identity.username, "alice");
                assert_eq!(
                    additional_data.as_deref(),
                    Some(expected.as_slice()),
                    "{name}"
                );
            }
            other => panic!("{name}: expected success, got {other:?}"),
        }
    }
}

fn failed_with(results: &[Result<ServerStep, SaslError>]) -> SaslCondition {
    results.last().unwrap().as_ref().unwrap_err().condition
}

#[test]
fn prosody_failure_captures_fail_alike_on_our_server() {
    for (name, condition) in [
        (
            "prosody13_scram_wrong_password.txt",
            SaslCondition::NotAuthorized,
        ),
        (
            "prosody13_scram_unknown_user.txt",
            SaslCondition::NotAuthorized,
        ),
        (
            "prosody13_scram_sha1_gs2_y_rejected.txt",
            SaslCondition::MalformedRequest,
        ),
        (
            "prosody13_scram_sha1_plus_unique_tls13_rejected.txt",
            SaslCondition::MalformedRequest,
        ),
    ] {
        let cap = load(name);
        let Some(Msg::Failure(prosody)) = cap.msgs.last() else {
            panic!("{name} does not end with a failure")
        };
        assert_eq!(SaslCondition::from_name(prosody), Some(condition), "{name}");
        assert_eq!(failed_with(&replay_server(name)), condition, "{name}");
    }
}

#[test]
fn failed_server_stays_failed() {
    let results = replay_server("prosody13_scram_sha1_gs2_y_rejected.txt");
    assert_eq!(results.len(), 1);
    let v = RFC5802_SHA1;
    let mut s = v.server();
    let err = s.start(Some(b"x,,n=user,r=abc")).unwrap_err();
    assert_eq!(s.respond(v.client_final.as_bytes()).unwrap_err(), err);
    assert_eq!(
        s.answer(CredentialAnswer::Scram(Some(v.credentials())))
            .unwrap_err(),
        err
    );
}

// ===========================================================================
// XEP-0440 with Prosody's real features.

fn captured_cb_types(name: &str) -> Vec<String> {
    load(name).offer.channel_binding_types.unwrap()
}

#[test]
fn xep0440_parse_prosody_features() {
    let tls13 = captured_cb_types("prosody13_scram_sha1_bind.txt");
    assert_eq!(tls13, ["tls-server-end-point", "tls-exporter"]);
    let tls12 = captured_cb_types("prosody13_tls12_scram_sha1_plus.txt");
    assert_eq!(tls12, ["tls-server-end-point", "tls-unique"]);
    assert_eq!(
        load("prosody13_tls12_scram_sha1_plus.txt").tls,
        TlsVersion::Tls12
    );

    // Unknown types are kept (XEP-0474 hashes them), foreign children,
    // missing or duplicate types are skipped.
    let el: Element = "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>\
        <channel-binding type='tls-exporter'/><channel-binding type='x-future'/>\
        <channel-binding/><channel-binding type='tls-exporter'/>\
        <channel-binding xmlns='urn:other' type='tls-unique'/></sasl-channel-binding>"
        .parse()
        .unwrap();
    assert_eq!(
        parse_sasl_channel_binding(&el).unwrap(),
        ["tls-exporter", "x-future"]
    );
    let other: Element = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
        .parse()
        .unwrap();
    assert_eq!(parse_sasl_channel_binding(&other), None);
}

#[test]
fn xep0440_choose_type() {
    use ChannelBindingType::*;
    let tls13 = captured_cb_types("prosody13_scram_sha1_bind.txt");
    let tls12 = captured_cb_types("prosody13_tls12_scram_sha1_plus.txt");
    let all = ChannelBindingType::ALL;
    let v13 = TlsVersion::Tls13;
    let v12 = TlsVersion::Tls12;
    assert_eq!(
        choose_channel_binding(v13, Some(&tls13), &all),
        Some(TlsExporter)
    );
    assert_eq!(
        choose_channel_binding(v13, Some(&tls13), &[TlsUnique, TlsServerEndPoint]),
        Some(TlsServerEndPoint)
    );
    assert_eq!(
        choose_channel_binding(v13, Some(&tls13), &[TlsUnique]),
        None
    );
    assert_eq!(
        choose_channel_binding(v12, Some(&tls12), &all),
        Some(TlsServerEndPoint)
    );
    assert_eq!(
        choose_channel_binding(v12, Some(&tls12), &[TlsUnique]),
        Some(TlsUnique)
    );
    assert_eq!(
        choose_channel_binding(v12, Some(&tls12), &[TlsExporter]),
        None
    );
    // Never tls-unique on TLS 1.3, even when offered.
    let offers_unique = vec!["tls-unique".to_owned()];
    assert_eq!(
        choose_channel_binding(v13, Some(&offers_unique), &all),
        None
    );
    // Without XEP-0440: the protocol defaults.
    assert_eq!(choose_channel_binding(v13, None, &all), Some(TlsExporter));
    assert_eq!(
        choose_channel_binding(v13, None, &[TlsServerEndPoint]),
        None
    );
    assert_eq!(choose_channel_binding(v12, None, &all), Some(TlsUnique));
    assert_eq!(
        choose_channel_binding(TlsVersion::Tls10, None, &[TlsUnique]),
        Some(TlsUnique)
    );
}

#[test]
fn xep0440_server_advertisement() {
    use ChannelBindingType::*;
    let all = [TlsUnique, TlsServerEndPoint, TlsExporter, TlsUnique];
    assert_eq!(
        advertisable_types(TlsVersion::Tls13, &all),
        [TlsExporter, TlsServerEndPoint]
    );
    assert_eq!(
        advertisable_types(TlsVersion::Tls12, &all),
        [TlsExporter, TlsServerEndPoint, TlsUnique]
    );
    assert!(advertisable_types(TlsVersion::Tls13, &[TlsUnique]).is_empty());
    // What we build, a client parses back; Prosody's TLS 1.3 list round
    // trips through our element.
    let types = [TlsServerEndPoint, TlsExporter];
    let el = sasl_channel_binding_element(&types);
    assert!(el.is("sasl-channel-binding", "urn:xmpp:sasl-cb:0"));
    assert_eq!(
        parse_sasl_channel_binding(&el).unwrap(),
        captured_cb_types("prosody13_scram_sha1_bind.txt")
    );
    let reparsed: Element = String::from(&el).parse().unwrap();
    assert_eq!(reparsed, el);
}

// ===========================================================================
// Client and server against each other.

/// How an exchange ended.
#[derive(Debug)]
enum Outcome {
    Success(Identity),
    ClientFailed(SaslError),
    ServerFailed(SaslError),
}

/// Message numbers for [`exchange`]'s tamper hook.
const CLIENT_FIRST: usize = 0;
const SERVER_FIRST: usize = 1;
const CLIENT_FINAL: usize = 2;
const SERVER_FINAL: usize = 3;

fn exchange(
    client: &mut ScramClient,
    server: &mut ScramServer,
    creds: &ScramCredentials,
    mut tamper: impl FnMut(usize, &mut Vec<u8>),
) -> Outcome {
    use Outcome::*;
    let mut m = match client.initial_response() {
        Ok(m) => m.unwrap(),
        Err(e) => return ClientFailed(e),
    };
    tamper(CLIENT_FIRST, &mut m);
    match server.start(Some(&m)) {
        Ok(ServerStep::Request(CredentialRequest::Scram { hash, .. })) => {
            assert_eq!(hash, client.hash())
        }
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => return ServerFailed(e),
    }
    let mut m = match server.answer(CredentialAnswer::Scram(Some(creds.clone()))) {
        Ok(ServerStep::Challenge(c)) => c,
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => return ServerFailed(e),
    };
    tamper(SERVER_FIRST, &mut m);
    let mut m = match client.respond(&m) {
        Ok(m) => m,
        Err(e) => return ClientFailed(e),
    };
    tamper(CLIENT_FINAL, &mut m);
    let (identity, mut m) = match server.respond(&m) {
        Ok(ServerStep::Success {
            identity,
            additional_data,
        }) => (identity, additional_data.unwrap()),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(e) => return ServerFailed(e),
    };
    tamper(SERVER_FINAL, &mut m);
    match client.success(Some(&m)) {
        Ok(()) => Success(identity),
        Err(e) => ClientFailed(e),
    }
}

/// One configuration of a client/server pair.
#[derive(Debug, Clone)]
struct Setup {
    hash: ScramHash,
    username: String,
    password: String,
    authzid: Option<String>,
    /// Binding data the client can supply, and the server's data for the
    /// same type.
    binding: Option<(ChannelBindingType, Vec<u8>)>,
    server_offers_plus: bool,
    iterations: u32,
}

impl Setup {
    fn simple(hash: ScramHash, binding: Option<ChannelBindingType>) -> Self {
        Setup {
            hash,
            username: "juliet".into(),
            password: "r0m30, my r0m30".into(),
            authzid: None,
            binding: binding.map(|t| (t, vec![7; 32])),
            server_offers_plus: true,
            iterations: 16,
        }
    }

    fn offer(&self) -> ServerOffer {
        let mut mechs = vec![mechanism_name(self.hash, false), "PLAIN"];
        if self.server_offers_plus {
            mechs.push(mechanism_name(self.hash, true));
        }
        let offer = ServerOffer::new(mechs);
        if self.server_offers_plus {
            offer.with_channel_binding_types(ChannelBindingType::ALL.map(|t| t.as_str()))
        } else {
            offer
        }
    }

    fn plus(&self) -> bool {
        self.binding.is_some() && self.server_offers_plus
    }

    fn client_with(&self, offer: ServerOffer, cb_data: Option<Vec<u8>>) -> ScramClient {
        let mut b = ScramClient::builder(self.hash, self.username.as_str(), &offer)
            .password(self.password.as_str())
            .min_iterations(1);
        if let Some(a) = &self.authzid {
            b = b.authzid(a.as_str());
        }
        if let Some((t, d)) = &self.binding {
            b = b.channel_binding(ChannelBinding::new(*t, cb_data.unwrap_or(d.clone())));
        }
        b.build(&mut DeterministicRandom::new(1)).unwrap()
    }

    fn client(&self) -> ScramClient {
        self.client_with(self.offer(), None)
    }

    fn server(&self) -> ScramServer {
        let mut b = ScramServer::builder(self.hash, self.plus(), &self.offer());
        if let Some((t, d)) = &self.binding {
            b = b.channel_binding(ChannelBinding::new(*t, d.clone()));
        }
        b.build(&mut DeterministicRandom::new(2)).unwrap()
    }

    fn creds(&self) -> ScramCredentials {
        derive_server_credentials(self.hash, &self.password, b"NaCl", self.iterations).unwrap()
    }

    fn run(&self, tamper: impl FnMut(usize, &mut Vec<u8>)) -> Outcome {
        exchange(
            &mut self.client(),
            &mut self.server(),
            &self.creds(),
            tamper,
        )
    }
}

fn every_setup() -> Vec<Setup> {
    let mut v = Vec::new();
    for hash in ALL_HASHES {
        v.push(Setup::simple(hash, None));
        for t in ChannelBindingType::ALL {
            v.push(Setup::simple(hash, Some(t)));
            v.push(Setup {
                server_offers_plus: false,
                ..Setup::simple(hash, Some(t))
            });
        }
    }
    v
}

#[test]
fn every_hash_and_binding_completes() {
    for setup in every_setup() {
        let mut client = setup.client();
        let expected_flag = match (&setup.binding, setup.server_offers_plus) {
            (None, _) => "n,,".to_owned(),
            (Some(_), false) => "y,,".to_owned(),
            (Some((t, _)), true) => format!("p={t},,"),
        };
        assert_eq!(client.gs2_header(), expected_flag);
        assert_eq!(client.name(), mechanism_name(setup.hash, setup.plus()));
        match exchange(&mut client, &mut setup.server(), &setup.creds(), |_, _| {}) {
            Outcome::Success(id) => assert_eq!(id.username, "juliet"),
            other => panic!("{setup:?}: {other:?}"),
        }
        // The keys handed back log in again without a password or PBKDF2.
        let keys = client.keys_for_cache().unwrap();
        let mut b = ScramClient::builder(setup.hash, "juliet", &setup.offer())
            .cached_keys(keys)
            .min_iterations(1);
        if let Some((t, d)) = &setup.binding {
            b = b.channel_binding(ChannelBinding::new(*t, d.clone()));
        }
        let mut again = b.build(&mut DeterministicRandom::new(3)).unwrap();
        assert!(matches!(
            exchange(&mut again, &mut setup.server(), &setup.creds(), |_, _| {}),
            Outcome::Success(_)
        ));
    }
}

#[test]
fn full_strength_exchange_for_each_hash() {
    // The default minimum (4096) with credentials derived at 4096.
    for hash in ALL_HASHES {
        let setup = Setup {
            iterations: 4096,
            ..Setup::simple(hash, Some(ChannelBindingType::TlsExporter))
        };
        let mut client = ScramClient::builder(hash, "juliet", &setup.offer())
            .password(setup.password.as_str())
            .channel_binding(ChannelBinding::new(
                ChannelBindingType::TlsExporter,
                vec![7; 32],
            ))
            .build(&mut rng())
            .unwrap();
        assert!(matches!(
            exchange(&mut client, &mut setup.server(), &setup.creds(), |_, _| {}),
            Outcome::Success(_)
        ));
    }
}

/// Replaces the value of attribute `key` in a SCRAM message.
fn set_attr(msg: &mut Vec<u8>, key: &str, f: impl FnOnce(&str) -> String) {
    let text = String::from_utf8(msg.clone()).unwrap();
    let mut f = Some(f);
    let parts: Vec<String> = text
        .split(',')
        .map(
            |p| match p.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
                Some(v) if f.is_some() => format!("{key}={}", (f.take().unwrap())(v)),
                _ => p.to_owned(),
            },
        )
        .collect();
    *msg = parts.join(",").into_bytes();
}

/// Flips one bit of a base64-encoded value.
fn flip_b64(v: &str) -> String {
    let mut raw = b64(v);
    raw[0] ^= 0x01;
    B64.encode(raw)
}

fn expect_client_failure(outcome: Outcome, condition: SaslCondition, what: &str) {
    match outcome {
        Outcome::ClientFailed(e) => assert_eq!(e.condition, condition, "{what}: {e}"),
        other => panic!("{what}: expected the client to fail, got {other:?}"),
    }
}

fn expect_server_failure(outcome: Outcome, condition: SaslCondition, what: &str) {
    match outcome {
        Outcome::ServerFailed(e) => assert_eq!(e.condition, condition, "{what}: {e}"),
        other => panic!("{what}: expected the server to fail, got {other:?}"),
    }
}

#[test]
fn tampering_fails_on_the_right_side() {
    use SaslCondition::*;
    for s in every_setup() {
        let on = |n: usize, f: fn(&mut Vec<u8>)| {
            move |i: usize, m: &mut Vec<u8>| {
                if i == n {
                    f(m)
                }
            }
        };
        expect_server_failure(
            s.run(on(CLIENT_FINAL, |m| set_attr(m, "p", flip_b64))),
            NotAuthorized,
            "client proof flipped",
        );
        expect_client_failure(
            s.run(on(SERVER_FINAL, |m| set_attr(m, "v", flip_b64))),
            NotAuthorized,
            "server signature flipped",
        );
        expect_server_failure(
            s.run(on(CLIENT_FIRST, |m| set_attr(m, "n", |_| "romeo".into()))),
            NotAuthorized,
            "user name changed",
        );
        expect_client_failure(
            s.run(on(CLIENT_FIRST, |m| set_attr(m, "r", |v| format!("X{v}")))),
            MalformedRequest,
            "client nonce changed",
        );
        expect_client_failure(
            s.run(on(SERVER_FIRST, |m| {
                set_attr(m, "r", |v| v[1..].to_owned())
            })),
            MalformedRequest,
            "server nonce no longer extends the client's",
        );
        expect_server_failure(
            s.run(on(SERVER_FIRST, |m| set_attr(m, "s", flip_b64))),
            NotAuthorized,
            "salt changed",
        );
        expect_server_failure(
            s.run(on(SERVER_FIRST, |m| set_attr(m, "i", |_| "17".into()))),
            NotAuthorized,
            "iteration count changed",
        );
        expect_client_failure(
            s.run(on(SERVER_FIRST, |m| set_attr(m, "h", flip_b64))),
            NotAuthorized,
            "XEP-0474 hash changed",
        );
        expect_server_failure(
            s.run(on(CLIENT_FINAL, |m| set_attr(m, "r", |v| format!("{v}X")))),
            MalformedRequest,
            "final nonce changed",
        );
        expect_server_failure(
            s.run(on(CLIENT_FINAL, |m| {
                set_attr(m, "c", |v| {
                    let mut raw = b64(v);
                    raw[0] = if raw[0] == b'n' { b'y' } else { b'n' };
                    B64.encode(raw)
                })
            })),
            MalformedRequest,
            "gs2 header in c= changed",
        );
        if let Some((t, _)) = s.binding {
            if s.plus() {
                // The client is bound to another channel than the server.
                let mut client = s.client_with(s.offer(), Some(vec![8; 32]));
                expect_server_failure(
                    exchange(&mut client, &mut s.server(), &s.creds(), |_, _| {}),
                    NotAuthorized,
                    "channel-binding data differs",
                );
                expect_server_failure(
                    s.run(on(CLIENT_FINAL, |m| set_attr(m, "c", flip_b64_last))),
                    NotAuthorized,
                    "channel-binding data changed in flight",
                );
                // A man in the middle strips -PLUS from the features: the
                // client sends `y`, the server that offered -PLUS refuses.
                let mut stripped = s.offer();
                stripped.mechanisms.retain(|m| !m.ends_with("-PLUS"));
                let mut client = s.client_with(stripped, None);
                assert_eq!(client.gs2_header(), "y,,");
                let mut server = ScramServer::builder(s.hash, false, &s.offer())
                    .channel_binding(ChannelBinding::new(t, vec![7; 32]))
                    .build(&mut rng())
                    .unwrap();
                expect_server_failure(
                    exchange(&mut client, &mut server, &s.creds(), |_, _| {}),
                    MalformedRequest,
                    "gs2 y while the server offered -PLUS",
                );
            }
        }
    }
}

fn flip_b64_last(v: &str) -> String {
    let mut raw = b64(v);
    let last = raw.len() - 1;
    raw[last] ^= 0x80;
    B64.encode(raw)
}

#[test]
fn wrong_password_fails_on_the_server() {
    for hash in ALL_HASHES {
        let s = Setup::simple(hash, None);
        let wrong = Setup {
            password: "juliet's password".into(),
            ..s.clone()
        };
        expect_server_failure(
            exchange(&mut wrong.client(), &mut s.server(), &s.creds(), |_, _| {}),
            SaslCondition::NotAuthorized,
            "wrong password",
        );
    }
}

fn name_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::char::range('a', 'z'),
        1 => prop::char::range('A', 'Z'),
        1 => prop::char::range('0', '9'),
        2 => prop::sample::select(vec![',', '=', ' ', '@', '.', '-', '_', '!', '~', '\'']),
        2 => prop::sample::select(vec!['é', 'ß', 'Ж', 'ø', 'ñ', '北', '京', 'ア', 'Ω', 'ǅ']),
    ]
}

fn name_strategy(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(name_char(), 1..max).prop_map(|v| v.into_iter().collect())
}

fn setup_strategy() -> impl Strategy<Value = Setup> {
    (
        prop::sample::select(ALL_HASHES.to_vec()),
        prop_oneof![name_strategy(24), name_strategy(400)],
        prop_oneof![name_strategy(24), name_strategy(1000)],
        prop::option::of(name_strategy(24)),
        prop::option::of((
            prop::sample::select(ChannelBindingType::ALL.to_vec()),
            prop::collection::vec(any::<u8>(), 1..64),
        )),
        any::<bool>(),
        1u32..32,
    )
        .prop_map(
            |(hash, username, password, authzid, binding, server_offers_plus, iterations)| Setup {
                hash,
                username,
                password,
                authzid,
                binding,
                server_offers_plus,
                iterations,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn client_and_server_agree(setup in setup_strategy()) {
        prop_assume!(stringprep::saslprep(&setup.username).is_ok());
        prop_assume!(stringprep::saslprep(&setup.password).is_ok());
        match setup.run(|_, _| {}) {
            Outcome::Success(identity) => {
                let prepped = stringprep::saslprep(&setup.username).unwrap();
                prop_assert_eq!(identity.username, prepped.as_ref());
                prop_assert_eq!(identity.authzid, setup.authzid.clone());
            }
            other => prop_assert!(false, "{:?}: {:?}", setup, other),
        }
    }

    #[test]
    fn any_bit_flip_in_flight_fails(
        setup in setup_strategy(),
        which in 0usize..4,
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        prop_assume!(stringprep::saslprep(&setup.username).is_ok());
        prop_assume!(stringprep::saslprep(&setup.password).is_ok());
        let outcome = setup.run(|i, m| {
            if i == which {
                let at = at.index(m.len());
                m[at] ^= mask;
            }
        });
        prop_assert!(!matches!(outcome, Outcome::Success(_)), "{:?}", outcome);
    }
}

// ===========================================================================
// Malformed input.

fn server_at_final() -> (ScramServer, Vector) {
    let v = RFC5802_SHA1;
    let mut s = v.server();
    s.start(Some(v.client_first.as_bytes())).unwrap();
    s.answer(CredentialAnswer::Scram(Some(v.credentials())))
        .unwrap();
    (s, v)
}

#[test]
fn malformed_client_first_messages() {
    use SaslCondition::*;
    let long = format!("n,,n=user,r={}", "a".repeat(MAX_MESSAGE_LEN));
    let cases: Vec<(&[u8], SaslCondition)> = vec![
        (b"", MalformedRequest),
        (b"n,,n=user,r=\xff", MalformedRequest),
        (long.as_bytes(), MalformedRequest),
        (b"n,,", MalformedRequest),
        (b"n,n=user,r=abc", MalformedRequest),
        (b"x,,n=user,r=abc", MalformedRequest),
        (b"p=,,n=user,r=abc", MalformedRequest),
        (b"p=tls-unique,,n=user,r=abc", MalformedRequest),
        (b"F,n,,n=user,r=abc", MalformedRequest),
        (b"n,b=x,n=user,r=abc", MalformedRequest),
        (b"n,a=,n=user,r=abc", InvalidAuthzid),
        (b"n,a=x=41,n=user,r=abc", InvalidAuthzid),
        (b"n,,r=abc,n=user", MalformedRequest),
        (b"n,,n=user", MalformedRequest),
        (b"n,,n=user,r=abc,r=def", MalformedRequest),
        (b"n,,n=user,n=user,r=abc", MalformedRequest),
        (b"n,,m=ext,n=user,r=abc", MalformedRequest),
        (b"n,,n=user,r=abc,m=ext", MalformedRequest),
        (b"n,,n=,r=abc", MalformedRequest),
        (b"n,,n=us=er,r=abc", MalformedRequest),
        (b"n,,n=user\x07,r=abc", MalformedRequest),
        (b"n,,n=user,r=", MalformedRequest),
        (b"n,,n=user,r=a b", MalformedRequest),
        (b"n,,n=user,r=abc,", MalformedRequest),
    ];
    for (msg, condition) in cases {
        let mut s = RFC5802_SHA1.server();
        let err = s.start(Some(msg)).unwrap_err();
        assert_eq!(
            err.condition,
            condition,
            "{:?}",
            String::from_utf8_lossy(msg)
        );
    }
    // Unknown optional extensions are ignored; the authzid is decoded.
    let mut s = RFC5802_SHA1.server();
    match s
        .start(Some(b"n,a=juliet=2Cadmin=3D1,n=us=2Cer,r=abc,x=ext"))
        .unwrap()
    {
        ServerStep::Request(CredentialRequest::Scram {
            username, authzid, ..
        }) => {
            assert_eq!(username, "us,er");
            assert_eq!(authzid.as_deref(), Some("juliet,admin=1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn plus_and_flag_mismatches() {
    use ChannelBindingType::*;
    let offer = ServerOffer::new(["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"]);
    let plus = || {
        ScramServer::builder(ScramHash::Sha1, true, &offer)
            .channel_binding(ChannelBinding::new(TlsExporter, vec![1; 32]))
            .build(&mut rng())
            .unwrap()
    };
    for msg in [&b"n,,n=u,r=a"[..], b"y,,n=u,r=a", b"p=tls-unique,,n=u,r=a"] {
        let err = plus().start(Some(msg)).unwrap_err();
        assert_eq!(err.condition, SaslCondition::MalformedRequest);
    }
    assert!(plus().start(Some(b"p=tls-exporter,,n=u,r=a")).is_ok());
    let plain = || {
        ScramServer::builder(ScramHash::Sha1, false, &offer)
            .build(&mut rng())
            .unwrap()
    };
    let err = plain().start(Some(b"p=tls-exporter,,n=u,r=a")).unwrap_err();
    assert_eq!(err.condition, SaslCondition::MalformedRequest);
    assert!(plain().start(Some(b"n,,n=u,r=a")).is_ok());
    // `y` is fine when the server offered no -PLUS mechanism.
    let mut no_plus =
        ScramServer::builder(ScramHash::Sha1, false, &ServerOffer::new(["SCRAM-SHA-1"]))
            .build(&mut rng())
            .unwrap();
    assert!(no_plus.start(Some(b"y,,n=u,r=a")).is_ok());
    // A -PLUS server needs binding data.
    let err = ScramServer::builder(ScramHash::Sha1, true, &offer)
        .build(&mut rng())
        .unwrap_err();
    assert_eq!(err.condition, SaslCondition::TemporaryAuthFailure);
}

#[test]
fn malformed_client_final_messages() {
    use SaslCondition::*;
    let v = RFC5802_SHA1;
    let r = attr(v.server_first, "r").unwrap();
    let p = attr(v.client_final, "p").unwrap();
    let cases: Vec<(String, SaslCondition)> = vec![
        (format!("r={r},c=biws,p={p}"), MalformedRequest),
        (format!("c=biws,p={p}"), MalformedRequest),
        (format!("c=biws,r={r}"), MalformedRequest),
        (format!("c=biws,r={r},p={p},x=1"), MalformedRequest),
        (format!("c=biws,r={r},m=1,p={p}"), MalformedRequest),
        (format!("c=biws,r={r},p={p},p={p}"), MalformedRequest),
        (format!("c=bi!s,r={r},p={p}"), MalformedRequest),
        (format!("c=eSws,r={r},p={p}"), MalformedRequest),
        (format!("c=biwsAAAA,r={r},p={p}"), NotAuthorized),
        (format!("c=biws,r={r}x,p={p}"), MalformedRequest),
        (format!("c=biws,r={r},p=!!"), MalformedRequest),
        (format!("c=biws,r={r},p=AAAA"), NotAuthorized),
        (format!("c=biws,r={r},p="), MalformedRequest),
    ];
    for (msg, condition) in cases {
        let (mut s, _) = server_at_final();
        let err = s.respond(msg.as_bytes()).unwrap_err();
        assert_eq!(err.condition, condition, "{msg}");
    }
    let (mut s, _) = server_at_final();
    assert_eq!(
        s.respond(b"c=biws,\xff").unwrap_err().condition,
        MalformedRequest
    );
    // An unknown optional extension before the proof is fine.
    let (mut s, v) = server_at_final();
    let with_ext = v.client_final.replace(",p=", ",x=ext,p=");
    // The extension is part of the signed message, so the proof no longer
    // matches: the point is that it parses and is checked.
    assert_eq!(
        s.respond(with_ext.as_bytes()).unwrap_err().condition,
        NotAuthorized
    );
}

#[test]
fn host_answers() {
    use SaslCondition::*;
    let v = RFC5802_SHA1;
    let start = || {
        let mut s = v.server();
        s.start(Some(v.client_first.as_bytes())).unwrap();
        s
    };
    let cases = [
        (CredentialAnswer::Scram(None), NotAuthorized),
        (
            CredentialAnswer::Verdict(Err(AccountDisabled)),
            AccountDisabled,
        ),
        (
            CredentialAnswer::Verdict(Err(InvalidAuthzid)),
            InvalidAuthzid,
        ),
        (
            CredentialAnswer::Verdict(Ok("user".into())),
            TemporaryAuthFailure,
        ),
    ];
    for (answer, condition) in cases {
        assert_eq!(start().answer(answer).unwrap_err().condition, condition);
    }
    // Credentials for another hash (wrong key length) are unusable.
    let sha256 = RFC7677_SHA256.credentials();
    let err = start()
        .answer(CredentialAnswer::Scram(Some(sha256)))
        .unwrap_err();
    assert_eq!(err.condition, TemporaryAuthFailure);
    // A salt so long that the server-first message would exceed the cap.
    let mut huge = v.credentials();
    huge.salt = vec![1; MAX_MESSAGE_LEN];
    let err = start()
        .answer(CredentialAnswer::Scram(Some(huge)))
        .unwrap_err();
    assert_eq!(err.condition, TemporaryAuthFailure);
    // No request pending.
    let mut s = v.server();
    let err = s
        .answer(CredentialAnswer::Scram(Some(v.credentials())))
        .unwrap_err();
    assert_eq!(err.condition, TemporaryAuthFailure);
    // Out of order: a response while waiting for the host.
    let err = start().respond(v.client_final.as_bytes()).unwrap_err();
    assert_eq!(err.condition, MalformedRequest);
}

fn client_after_first() -> ScramClient {
    let mut c = RFC5802_SHA1.client();
    c.initial_response().unwrap();
    c
}

#[test]
fn malformed_server_first_messages() {
    use SaslCondition::*;
    let v = RFC5802_SHA1;
    let r = attr(v.server_first, "r").unwrap();
    let n = v.client_nonce;
    let long = format!(
        "r={r}{},s=QSXCR+Q6sek8bf92,i=4096",
        "a".repeat(MAX_MESSAGE_LEN)
    );
    let cases: Vec<(String, SaslCondition)> = vec![
        (long, MalformedRequest),
        (format!("s=QSXCR+Q6sek8bf92,r={r},i=4096"), MalformedRequest),
        (format!("r={r},i=4096"), MalformedRequest),
        (format!("r={r},s=QSXCR+Q6sek8bf92"), MalformedRequest),
        (
            format!("r={r},s=QSXCR+Q6sek8bf92,i=4096,s=AAAA"),
            MalformedRequest,
        ),
        (
            format!("m=x,r={r},s=QSXCR+Q6sek8bf92,i=4096"),
            MalformedRequest,
        ),
        (
            format!("r={r},s=QSXCR+Q6sek8bf92,i=4096,m=x"),
            MalformedRequest,
        ),
        (format!("r={n},s=QSXCR+Q6sek8bf92,i=4096"), MalformedRequest),
        (
            format!("r=X{r},s=QSXCR+Q6sek8bf92,i=4096"),
            MalformedRequest,
        ),
        (
            format!("r={r} x,s=QSXCR+Q6sek8bf92,i=4096"),
            MalformedRequest,
        ),
        (format!("r={r},s=!!!!,i=4096"), MalformedRequest),
        (format!("r={r},s=,i=4096"), MalformedRequest),
        (format!("r={r},s=QSXCR+Q6sek8bf92,i=0"), MalformedRequest),
        (
            format!("r={r},s=QSXCR+Q6sek8bf92,i=04096"),
            MalformedRequest,
        ),
        (format!("r={r},s=QSXCR+Q6sek8bf92,i=-1"), MalformedRequest),
        (
            format!("r={r},s=QSXCR+Q6sek8bf92,i=99999999999"),
            MalformedRequest,
        ),
        (
            format!("r={r},s=QSXCR+Q6sek8bf92,i=100000000"),
            MalformedRequest,
        ),
        (format!("r={r},s=QSXCR+Q6sek8bf92,i=1"), MechanismTooWeak),
        (
            format!("r={r},s=QSXCR+Q6sek8bf92,i=4096,h=AAAA"),
            NotAuthorized,
        ),
        (
            format!("r={r},s=QSXCR+Q6sek8bf92,i=4096,h=!!"),
            NotAuthorized,
        ),
        ("e=unknown-user".into(), NotAuthorized),
        ("e=no-resources".into(), TemporaryAuthFailure),
        ("e=invalid-encoding".into(), MalformedRequest),
        ("e=something-new".into(), NotAuthorized),
        (String::new(), MalformedRequest),
    ];
    for (msg, condition) in cases {
        let err = client_after_first().respond(msg.as_bytes()).unwrap_err();
        assert_eq!(err.condition, condition, "{msg}");
    }
    assert_eq!(
        client_after_first()
            .respond(b"r=\xff")
            .unwrap_err()
            .condition,
        MalformedRequest
    );
    // An unknown extension after i= is ignored.
    let mut c = client_after_first();
    let with_ext = format!("{},x=ext", v.server_first);
    assert!(c.respond(with_ext.as_bytes()).is_ok());
}

#[test]
fn malformed_server_final_and_success() {
    use SaslCondition::*;
    let v = RFC5802_SHA1;
    let at_final = || {
        let mut c = client_after_first();
        c.respond(v.server_first.as_bytes()).unwrap();
        c
    };
    let cases: Vec<(&[u8], SaslCondition)> = vec![
        (b"v=!!", MalformedRequest),
        (b"x=1", MalformedRequest),
        (b"v=AAAA", NotAuthorized),
        (b"e=invalid-proof", NotAuthorized),
        (b"e=channel-bindings-dont-match", NotAuthorized),
        (b"e=server-does-support-channel-binding", MalformedRequest),
        (b"\xff", MalformedRequest),
    ];
    for (msg, condition) in &cases {
        assert_eq!(
            at_final().success(Some(msg)).unwrap_err().condition,
            *condition
        );
        assert_eq!(at_final().respond(msg).unwrap_err().condition, *condition);
    }
    // A success that does not carry the signature proves nothing.
    assert_eq!(
        at_final().success(None).unwrap_err().condition,
        NotAuthorized
    );
    assert_eq!(
        at_final().success(Some(b"")).unwrap_err().condition,
        NotAuthorized
    );
    // Success before the exchange got that far.
    assert_eq!(
        client_after_first().success(None).unwrap_err().condition,
        NotAuthorized
    );
    // A failed client stays failed.
    let mut c = at_final();
    let err = c.success(Some(b"v=AAAA")).unwrap_err();
    assert_eq!(c.success(Some(v.server_final.as_bytes())).unwrap_err(), err);
    assert!(c.keys_for_cache().is_none());
    // Calling out of order.
    let mut c = client_after_first();
    assert_eq!(
        c.initial_response().unwrap_err().condition,
        MalformedRequest
    );
}

#[test]
fn client_construction_checks() {
    use SaslCondition::*;
    let offer = ServerOffer::new(["SCRAM-SHA-1", "SCRAM-SHA-256-PLUS"]);
    let b = || ScramClient::builder(ScramHash::Sha1, "user", &offer).password("pencil");
    assert_eq!(
        b().nonce("a,b").build(&mut rng()).unwrap_err().condition,
        MalformedRequest
    );
    assert_eq!(
        b().nonce("").build(&mut rng()).unwrap_err().condition,
        MalformedRequest
    );
    let err = ScramClient::builder(ScramHash::Sha1, "us\u{7}er", &offer)
        .password("pencil")
        .build(&mut rng())
        .unwrap_err();
    assert_eq!(err.condition, MalformedRequest);
    let err = ScramClient::builder(ScramHash::Sha1, "user", &offer)
        .password("pen\u{7}cil")
        .build(&mut rng())
        .unwrap_err();
    assert_eq!(err.condition, MalformedRequest);
    let err = ScramClient::builder(ScramHash::Sha1, "u".repeat(MAX_MESSAGE_LEN), &offer)
        .password("pencil")
        .build(&mut rng())
        .unwrap_err();
    assert_eq!(err.condition, MalformedRequest);
    // Could bind, and the server offers -PLUS, but for SHA-256 only: a `y`
    // would be refused as a downgrade, so the client refuses to start.
    let cb = ChannelBinding::new(ChannelBindingType::TlsExporter, vec![1; 32]);
    let err = b()
        .channel_binding(cb.clone())
        .build(&mut rng())
        .unwrap_err();
    assert_eq!(err.condition, InvalidMechanism);
    // With an authzid, escaped.
    let mut c = ScramClient::builder(ScramHash::Sha256, "user", &offer)
        .password("pencil")
        .authzid("juliet@example.com,x=y")
        .channel_binding(cb)
        .build(&mut rng())
        .unwrap();
    assert_eq!(c.name(), "SCRAM-SHA-256-PLUS");
    assert_eq!(
        c.gs2_header(),
        "p=tls-exporter,a=juliet@example.com=2Cx=3Dy,"
    );
    let first = c.initial_response().unwrap().unwrap();
    assert!(first.starts_with(b"p=tls-exporter,a=juliet@example.com=2Cx=3Dy,n=user,r="));
    // Random nonces differ between seeds and are printable.
    let mut a = b().build(&mut DeterministicRandom::new(1)).unwrap();
    let mut z = b().build(&mut DeterministicRandom::new(2)).unwrap();
    let (a, z) = (
        a.initial_response().unwrap().unwrap(),
        z.initial_response().unwrap().unwrap(),
    );
    assert_ne!(a, z);
    let nonce = attr(std::str::from_utf8(&a).unwrap(), "r").unwrap();
    assert!(nonce.len() >= 24 && nonce.bytes().all(|b| b.is_ascii_graphic() && b != b','));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let v = RFC5802_SHA1;
    let mut c = v.client();
    c.initial_response().unwrap();
    c.respond(v.server_first.as_bytes()).unwrap();
    c.success(Some(v.server_final.as_bytes())).unwrap();
    let keys = c.keys_for_cache().unwrap();
    let ScramClientSecret::Keys {
        client_key,
        server_key,
    } = &keys.secret
    else {
        panic!()
    };
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let creds = v.credentials();
    let builder = ScramClient::builder(v.hash, "user", &v.offer())
        .password("pencil")
        .channel_binding(ChannelBinding::new(
            ChannelBindingType::TlsExporter,
            b"EKM-bytes".to_vec(),
        ));
    let outputs = [
        format!("{c:?}"),
        format!("{keys:?}"),
        format!("{builder:?}"),
        format!("{creds:?}"),
        format!("{:?}", v.server()),
    ];
    for out in outputs {
        for secret in [
            "pencil".to_owned(),
            "EKM".to_owned(),
            hex(client_key.expose()),
            hex(server_key.expose()),
            format!("{:?}", client_key.expose()),
            format!("{:?}", &creds.stored_key.expose()[..4]),
        ] {
            assert!(!out.contains(&secret), "{out} leaks {secret}");
        }
    }
}

#[test]
fn mechanisms_are_send() {
    fn send<T: Send>() {}
    send::<ScramClient>();
    send::<ScramServer>();
    let boxed: Vec<Box<dyn ClientMechanism>> = vec![Box::new(RFC5802_SHA1.client())];
    assert_eq!(boxed[0].name(), "SCRAM-SHA-1");
    let boxed: Vec<Box<dyn ServerMechanism>> = vec![Box::new(RFC5802_SHA1.server())];
    assert_eq!(boxed[0].name(), "SCRAM-SHA-1");
}
