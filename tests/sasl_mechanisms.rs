//! The shipped SASL mechanisms (everything but SCRAM): exact vectors from
//! `fixtures/TEST-VECTORS.md`, seed 004 and real Prosody captures; client
//! against server for arbitrary credentials; tampering in flight; malformed
//! input.

mod sasl_driver;

use proptest::prelude::*;
use sasl_driver::{run, Outcome, Tamper};
use xmpp_sansio::sasl::anonymous::{AnonymousClient, AnonymousServer};
#[cfg(feature = "digest-md5")]
use xmpp_sansio::sasl::digest_md5::{self, DigestMd5Client, DigestMd5Server};
use xmpp_sansio::sasl::external::{ExternalClient, ExternalServer};
use xmpp_sansio::sasl::oauthbearer::{OAuthBearerClient, OAuthBearerServer};
use xmpp_sansio::sasl::plain::{PlainClient, PlainServer};
#[cfg(feature = "google")]
use xmpp_sansio::sasl::x_google_token::{XGoogleTokenClient, XGoogleTokenServer};
#[cfg(feature = "google")]
use xmpp_sansio::sasl::x_oauth2;
use xmpp_sansio::sasl::x_oauth2::{XOAuth2Client, XOAuth2Server};
#[cfg(feature = "digest-md5")]
use xmpp_sansio::sasl::DigestMd5Secret;
use xmpp_sansio::sasl::{
    decode_payload, ClientMechanism, CredentialAnswer, CredentialRequest, SaslCondition, SaslError,
    Secret, ServerMechanism, ServerStep,
};
#[cfg(feature = "digest-md5")]
use xmpp_sansio::DeterministicRandom;

// ---------------------------------------------------------------------------
// Fixtures.

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        text.starts_with("# source: "),
        "{name} must name its source on line 1"
    );
    text
}

/// The fields of a [`CredentialRequest::Token`] step.
fn token_request(step: ServerStep) -> (&'static str, String, Secret) {
    let ServerStep::Request(CredentialRequest::Token {
        mechanism,
        username,
        token,
    }) = step
    else {
        panic!("expected a token request, got {step:?}")
    };
    (mechanism, username, token)
}

/// What a fresh client sends first: the initial response (every
/// mechanism driven this way sends one), or the error that refused it.
fn first_message(mut client: impl ClientMechanism) -> Result<Vec<u8>, SaslError> {
    client
        .initial_response()
        .map(|m| m.expect("an initial response"))
}

/// The strings between backticks on the line of `vectors` starting with
/// `prefix`.
fn backticked<'a>(vectors: &'a str, prefix: &str) -> Vec<&'a str> {
    let line = vectors
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}"));
    line.split('`').skip(1).step_by(2).collect()
}

/// The base64 text of every `<tag ...>text</tag>` in `text`, in order.
fn element_payloads(text: &str, tag: &str) -> Vec<Vec<u8>> {
    let open = format!("<{tag} ");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i..];
        let gt = after.find('>').unwrap();
        if after[..gt].ends_with('/') {
            rest = &after[gt..];
            continue;
        }
        let end = after.find(&close).unwrap();
        let body = &after[gt + 1..end];
        out.push(decode_payload(body).unwrap().unwrap_or_default());
        rest = &after[end..];
    }
    out
}

#[cfg(feature = "digest-md5")]
/// The RFC 2831 set of TEST-VECTORS.md.
struct Rfc2831 {
    username: String,
    realm: String,
    password: String,
    nonce: String,
    cnonce: String,
    digest_uri: String,
    response: String,
    rspauth: String,
}

#[cfg(feature = "digest-md5")]
fn rfc2831() -> Rfc2831 {
    let v = fixture("TEST-VECTORS.md");
    let creds = backticked(&v, "- username `chris`");
    let nonces = backticked(&v, "- nonce ");
    let uri = backticked(&v, "- digest-uri ");
    Rfc2831 {
        username: creds[0].into(),
        realm: creds[1].into(),
        password: creds[2].into(),
        nonce: nonces[0].into(),
        cnonce: nonces[1].into(),
        digest_uri: uri[0].into(),
        response: backticked(&v, "- response ")[0].into(),
        rspauth: backticked(&v, "- rspauth ")[0].into(),
    }
}

#[cfg(feature = "digest-md5")]
impl Rfc2831 {
    /// The client of the vector: its user, password, service, host and
    /// cnonce.
    fn client(&self) -> DigestMd5Client {
        let (service, domain) = self.digest_uri.split_once('/').unwrap();
        DigestMd5Client::new(
            &self.username,
            Secret::new(self.password.as_str()),
            domain,
            &mut DeterministicRandom::new(1),
        )
        .with_service(service)
        .with_cnonce(&self.cnonce)
    }

    /// RFC 2831's own challenge, built from the vector's values.
    fn challenge(&self) -> String {
        format!(
            "realm=\"{}\",nonce=\"{}\",qop=\"auth\",algorithm=md5-sess,charset=utf-8",
            self.realm, self.nonce
        )
    }
}

// ---------------------------------------------------------------------------
// Exact vectors and captures.

#[test]
fn prosody_plain_capture_matches_our_client_and_server() {
    let capture = fixture("prosody/prosody13_plain.txt");
    let auth = element_payloads(&capture, "auth");
    assert_eq!(auth.len(), 1);
    // The capture's command line names the user; its password is `secret`
    // (redacted in the capture; shared/interop/prosody/README.md creates
    // alice with password `secret`, and the SCRAM replays confirm it).
    assert!(capture.contains("--jid alice@localhost"));
    let mut client = PlainClient::new("alice", "secret");
    assert_eq!(client.initial_response().unwrap().unwrap(), auth[0]);

    let mut server = PlainServer::new();
    let step = server.start(Some(&auth[0])).unwrap();
    let ServerStep::Request(CredentialRequest::Password {
        username,
        authzid,
        password,
    }) = step
    else {
        panic!("{step:?}")
    };
    assert_eq!((username.as_str(), authzid), ("alice", None));
    assert_eq!(password.expose(), "secret");
    // Prosody answered <success/>, and so do we with the right password.
    assert!(capture.contains("S: <success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"));
    let step = server
        .answer(CredentialAnswer::Verdict(Ok(username)))
        .unwrap();
    assert!(
        matches!(step, ServerStep::Success { identity, additional_data: None }
        if identity.username == "alice" && identity.authzid.is_none())
    );
    client.success(None).unwrap();
}

#[test]
fn prosody_plain_wrong_password_capture_fails_alike() {
    let capture = fixture("prosody/prosody13_plain_wrong_password.txt");
    let auth = element_payloads(&capture, "auth");
    // Prosody's failure condition.
    let failure = capture
        .split("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><")
        .nth(1)
        .unwrap();
    let prosody = SaslCondition::from_name(&failure[..failure.find("/>").unwrap()]).unwrap();

    let mut server = PlainServer::new();
    let host = |r: CredentialRequest| match r {
        CredentialRequest::Password {
            username, password, ..
        } if username == "alice" && password.ct_eq("secret") => {
            CredentialAnswer::Verdict(Ok(username))
        }
        _ => CredentialAnswer::Verdict(Err(SaslCondition::NotAuthorized)),
    };
    let step = server.start(Some(&auth[0])).unwrap();
    let ServerStep::Request(r) = step else {
        panic!()
    };
    let err = server.answer(host(r)).unwrap_err();
    assert_eq!(err.condition, prosody);
}

#[test]
fn prosody_anonymous_capture_matches() {
    let capture = fixture("prosody/prosody13_anonymous.txt");
    assert!(capture.contains("mechanism='ANONYMOUS'>=</auth>"));
    let auth = element_payloads(&capture, "auth");
    let mut client = AnonymousClient::new();
    assert_eq!(client.initial_response().unwrap().unwrap(), auth[0]);
    let mut server = AnonymousServer::new();
    let step = server.start(Some(&auth[0])).unwrap();
    assert!(matches!(
        step,
        ServerStep::Request(CredentialRequest::Anonymous { trace: None })
    ));
    // Prosody assigned a random localpart; so does our host.
    let step = server
        .answer(CredentialAnswer::Verdict(Ok(
            "q3wyumiocsxfgsv_3i5mmgbe".into()
        )))
        .unwrap();
    assert!(matches!(step, ServerStep::Success { identity, .. }
        if identity.username == "q3wyumiocsxfgsv_3i5mmgbe"));
}

#[test]
fn plain_layout_vector() {
    let v = fixture("TEST-VECTORS.md");
    let layout = backticked(&v, "- PLAIN message:")[0];
    assert_eq!(layout, "[authzid] NUL authcid NUL passwd");
    let with = first_message(PlainClient::new("authcid", "passwd").with_authzid("authzid"));
    assert_eq!(with.unwrap(), b"authzid\0authcid\0passwd");
    let without = first_message(PlainClient::new("authcid", "passwd"));
    assert_eq!(without.unwrap(), b"\0authcid\0passwd");
}

#[test]
fn x_oauth2_layout_and_google_attributes_vector() {
    let v = fixture("TEST-VECTORS.md");
    // Every backticked string of the file; the attributes span two lines.
    let quoted: Vec<&str> = v.split('`').skip(1).step_by(2).collect();
    assert!(quoted.contains(&"auth:service='oauth2'"));
    let ns = quoted
        .iter()
        .find_map(|q| q.strip_prefix("xmlns:auth='"))
        .and_then(|s| s.strip_suffix('\''))
        .unwrap();

    let mut plain_style = XOAuth2Client::new("test@localhost", "DGV4JFzW15iZFmsnvzT7IymupTAYvo6U");
    assert!(plain_style.auth_attributes().is_empty());
    assert_eq!(
        plain_style.initial_response().unwrap().unwrap(),
        b"\0test@localhost\0DGV4JFzW15iZFmsnvzT7IymupTAYvo6U"
    );

    // Google's attributes: only with the `google` feature.
    #[cfg(feature = "google")]
    google_attributes(ns);
    #[cfg(not(feature = "google"))]
    let _ = ns;
}

#[cfg(feature = "google")]
fn google_attributes(ns: &str) {
    let google = XOAuth2Client::new("user@gmail.com", "tok").with_google_attributes(false);
    let a = google.auth_attributes();
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].namespace, a[0].name, a[0].value),
        (ns, "service", "oauth2")
    );
    let full = XOAuth2Client::new("user@gmail.com", "tok").with_google_attributes(true);
    assert_eq!(full.auth_attributes()[0], a[0]);
    assert_eq!(
        full.auth_attributes()[1],
        x_oauth2::CLIENT_USES_FULL_BIND_RESULT
    );
    assert_eq!(full.auth_attributes()[1].namespace, ns);
}

#[cfg(feature = "google")]
#[test]
fn x_google_token_vector() {
    let mut c = XGoogleTokenClient::new("XXXXXXXX@gmail.com", "DQAAAG...token");
    assert_eq!(
        c.initial_response().unwrap().unwrap(),
        b"\0XXXXXXXX@gmail.com\0DQAAAG...token"
    );
    let mut s = XGoogleTokenServer::new();
    let step = s
        .start(Some(b"\0XXXXXXXX@gmail.com\0DQAAAG...token"))
        .unwrap();
    let (mechanism, username, token) = token_request(step);
    assert_eq!(mechanism, "X-GOOGLE-TOKEN");
    assert_eq!(username, "XXXXXXXX@gmail.com");
    assert_eq!(token.expose(), "DQAAAG...token");
}

#[cfg(feature = "digest-md5")]
#[test]
fn digest_md5_rfc2831_client_vector() {
    let v = rfc2831();
    let mut client = v.client();
    assert_eq!(client.initial_response().unwrap(), None);
    let response = String::from_utf8(client.respond(v.challenge().as_bytes()).unwrap()).unwrap();
    assert!(
        response.contains(&format!(",response={},", v.response)),
        "{response}"
    );
    assert!(response.contains(&format!("digest-uri=\"{}\"", v.digest_uri)));
    assert!(response.contains(&format!("cnonce=\"{}\"", v.cnonce)));
    assert!(response.contains("nc=00000001,qop=auth"));
    let rsp = client
        .respond(format!("rspauth={}", v.rspauth).as_bytes())
        .unwrap();
    assert!(rsp.is_empty());
    client.success(None).unwrap();
}

#[cfg(feature = "digest-md5")]
#[test]
fn digest_md5_rfc2831_rspauth_in_success_data_is_accepted() {
    let v = rfc2831();
    let mut client = v.client();
    client.respond(v.challenge().as_bytes()).unwrap();
    client
        .success(Some(format!("rspauth={}", v.rspauth).as_bytes()))
        .unwrap();
}

#[cfg(feature = "digest-md5")]
#[test]
fn digest_md5_rfc2831_server_vector_succeeds() {
    let v = rfc2831();
    let (service, domain) = v.digest_uri.split_once('/').unwrap();
    let mut server = DigestMd5Server::new(domain, &mut DeterministicRandom::new(2))
        .with_realms([v.realm.as_str()])
        .with_service(service)
        .with_nonce(&v.nonce);
    let ServerStep::Challenge(ch) = server.start(None).unwrap() else {
        panic!()
    };
    let ch = String::from_utf8(ch).unwrap();
    assert!(ch.contains(&format!("nonce=\"{}\"", v.nonce)), "{ch}");
    // RFC 2831's response, in RFC 2831's directive order.
    let response = format!(
        "charset=utf-8,username=\"{}\",realm=\"{}\",nonce=\"{}\",nc=00000001,cnonce=\"{}\",digest-uri=\"{}\",response={},qop=auth",
        v.username, v.realm, v.nonce, v.cnonce, v.digest_uri, v.response
    );
    let step = server.respond(response.as_bytes()).unwrap();
    let ServerStep::Request(CredentialRequest::DigestMd5 {
        username,
        realm,
        authzid,
    }) = step
    else {
        panic!("{step:?}")
    };
    assert_eq!(
        (username.as_str(), realm.as_str(), authzid),
        ("chris", v.realm.as_str(), None)
    );
    let step = server
        .answer(CredentialAnswer::DigestMd5(Some(
            DigestMd5Secret::Password(Secret::new(v.password.as_str())),
        )))
        .unwrap();
    let ServerStep::Challenge(rspauth) = step else {
        panic!("{step:?}")
    };
    assert_eq!(rspauth, format!("rspauth={}", v.rspauth).into_bytes());
    let step = server.respond(b"").unwrap();
    assert!(
        matches!(step, ServerStep::Success { identity, additional_data: None }
        if identity.username == "chris")
    );
}

#[cfg(feature = "digest-md5")]
#[test]
fn digest_md5_rfc2831_server_accepts_stored_hash() {
    let v = rfc2831();
    let (service, domain) = v.digest_uri.split_once('/').unwrap();
    let mut server = DigestMd5Server::new(domain, &mut DeterministicRandom::new(2))
        .with_service(service)
        .with_nonce(&v.nonce);
    server.start(None).unwrap();
    let response = format!(
        "username=\"{}\",realm=\"{}\",nonce=\"{}\",cnonce=\"{}\",nc=00000001,qop=auth,digest-uri=\"{}\",response={},charset=utf-8",
        v.username, v.realm, v.nonce, v.cnonce, v.digest_uri, v.response
    );
    server.respond(response.as_bytes()).unwrap();
    let hash = digest_md5::user_realm_password_hash(&v.username, &v.realm, &v.password);
    let step = server
        .answer(CredentialAnswer::DigestMd5(Some(
            DigestMd5Secret::UserRealmPasswordHash(hash),
        )))
        .unwrap();
    assert!(
        matches!(step, ServerStep::Challenge(c) if c == format!("rspauth={}", v.rspauth).into_bytes())
    );
}

#[cfg(feature = "digest-md5")]
/// Seed 004's four SASL payloads: challenge, response, rspauth challenge,
/// empty response.
fn seed004() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let seed = fixture("seed_004_digest_md5.txt");
    let challenges = element_payloads(&seed, "challenge");
    let responses = element_payloads(&seed, "response");
    assert_eq!(challenges.len(), 2);
    assert_eq!(responses.len(), 1);
    (
        challenges[0].clone(),
        responses[0].clone(),
        challenges[1].clone(),
    )
}

#[cfg(feature = "digest-md5")]
#[test]
fn seed004_challenge_with_trailing_newline_is_parsed() {
    let (challenge, _, rspauth) = seed004();
    let v = fixture("TEST-VECTORS.md");
    let decoded = backticked(&v, "`realm=\"somerealm\"")[0];
    let mut expected = decoded.as_bytes().to_vec();
    expected.push(b'\n');
    assert_eq!(challenge, expected);

    let mut client = DigestMd5Client::new(
        "somenode",
        "any password",
        "example.com",
        &mut DeterministicRandom::new(3),
    );
    assert_eq!(client.initial_response().unwrap(), None);
    let response = String::from_utf8(client.respond(&challenge).unwrap()).unwrap();
    assert!(
        response.starts_with("username=\"somenode\",realm=\"somerealm\",nonce=\"OA6MG9tEQGm2hh\",")
    );
    assert!(response.contains("digest-uri=\"xmpp/example.com\""));
    // The seed's rspauth was computed for RFC 2831's parameters, not ours:
    // the client must refuse it (it ends with a newline, too).
    assert_eq!(rspauth.last(), Some(&b'\n'));
    let err = client.respond(&rspauth).unwrap_err();
    assert_eq!(err.condition, SaslCondition::NotAuthorized);
}

#[cfg(feature = "digest-md5")]
#[test]
fn seed004_replayed_against_the_server_fails_not_authorized() {
    let (challenge, response, _) = seed004();
    let text = String::from_utf8(challenge).unwrap();
    let nonce = text
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    for password in ["secret", "somepassword", ""] {
        let mut server = DigestMd5Server::new("example.com", &mut DeterministicRandom::new(4))
            .with_realms(["somerealm"])
            .with_nonce(nonce);
        server.start(None).unwrap();
        let step = server.respond(&response).unwrap();
        let ServerStep::Request(CredentialRequest::DigestMd5 {
            username, realm, ..
        }) = step
        else {
            panic!("{step:?}")
        };
        assert_eq!(
            (username.as_str(), realm.as_str()),
            ("somenode", "somerealm")
        );
        let err = server
            .answer(CredentialAnswer::DigestMd5(Some(
                DigestMd5Secret::Password(Secret::new(password)),
            )))
            .unwrap_err();
        assert_eq!(err.condition, SaslCondition::NotAuthorized);
    }
}

#[cfg(feature = "digest-md5")]
#[test]
fn digest_md5_hashes_latin1_when_it_fits() {
    use md5::{Digest, Md5};
    // "café" fits ISO 8859-1: hashed as 63 61 66 e9.
    let h = digest_md5::user_realm_password_hash("caf\u{e9}", "r", "p\u{e9}");
    let expected: [u8; 16] = Md5::digest(b"caf\xe9:r:p\xe9").into();
    assert_eq!(h.expose(), expected);
    // "中" does not: UTF-8.
    let h = digest_md5::user_realm_password_hash("\u{4e2d}", "r", "p");
    let expected: [u8; 16] = Md5::digest("\u{4e2d}:r:p".as_bytes()).into();
    assert_eq!(h.expose(), expected);
}

// ---------------------------------------------------------------------------
// Client against server, for arbitrary credentials; tampering in flight.

/// PLAIN's client-side preparation, as documented in `sasl::plain`:
/// SASLprep, or the string itself when SASLprep refuses it or empties it.
fn prep(s: &str) -> String {
    match stringprep::saslprep(s) {
        Ok(p) if !p.is_empty() => p.into_owned(),
        _ => s.to_owned(),
    }
}

/// User names, passwords, tokens: ASCII, SASL-special characters, unicode,
/// long values. Never empty, never NUL (the PLAIN layout cannot carry it).
fn credential() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,12}",
        "[a-zA-Z0-9,=\"'\\\\ @./+é中😀\u{00a0}\u{fb01}]{1,40}",
        "\\PC{1,300}",
        any::<String>(),
    ]
    .prop_filter("non-empty without NUL", |s| {
        !s.is_empty() && !s.contains('\0')
    })
}

/// RFC 6750 b64token.
fn b64token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~+/-]{1,200}={0,2}"
}

fn tampering() -> impl Strategy<Value = Tamper> {
    (0usize..8, any::<usize>(), 1u8..=255).prop_map(|(message, pos, xor)| Tamper {
        message,
        pos,
        xor,
    })
}

/// The three fields of an RFC 4616 message, if it is one: exactly two
/// NULs, UTF-8, non-empty authcid and password. The authzid is `None` when
/// empty.
fn plain_fields(m: &[u8]) -> Option<(Option<String>, String, String)> {
    let parts: Vec<&[u8]> = m.split(|b| *b == 0).collect();
    let [z, c, p] = parts[..] else { return None };
    let z = String::from_utf8(z.to_vec()).ok()?;
    let c = String::from_utf8(c.to_vec()).ok()?;
    let p = String::from_utf8(p.to_vec()).ok()?;
    (!c.is_empty() && !p.is_empty()).then(|| ((!z.is_empty()).then_some(z), c, p))
}

/// The PLAIN host of the property tests: knows one account, allows one
/// authzid (or none).
struct PlainHost {
    user: String,
    password: String,
    authzid: Option<String>,
}

impl PlainHost {
    fn decide(
        &self,
        authzid: &Option<String>,
        user: &str,
        password: &str,
    ) -> Result<String, SaslCondition> {
        if user != self.user || password != self.password {
            Err(SaslCondition::NotAuthorized)
        } else if *authzid != self.authzid {
            Err(SaslCondition::InvalidAuthzid)
        } else {
            Ok(user.to_owned())
        }
    }

    fn answer(&self, r: CredentialRequest) -> CredentialAnswer {
        match r {
            CredentialRequest::Password {
                username,
                authzid,
                password,
            } => CredentialAnswer::Verdict(self.decide(&authzid, &username, password.expose())),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The token host: one user, one token.
struct TokenHost {
    mechanism: &'static str,
    user: String,
    token: String,
}

impl TokenHost {
    fn decide(&self, user: &str, token: &str) -> Result<String, SaslCondition> {
        if user == self.user && token == self.token {
            Ok(user.to_owned())
        } else {
            Err(SaslCondition::NotAuthorized)
        }
    }

    /// The condition a token server must fail with on `message`, a
    /// tampered PLAIN-layout message that the host would not accept.
    fn tampered(&self, message: &[u8]) -> SaslCondition {
        match plain_fields(message) {
            None => SaslCondition::MalformedRequest,
            Some((Some(z), c, _)) if z != c => SaslCondition::InvalidAuthzid,
            Some((_, c, p)) => self.decide(&c, &p).expect_err("tampered message accepted"),
        }
    }

    fn answer(&self, r: CredentialRequest) -> CredentialAnswer {
        match r {
            CredentialRequest::Token {
                mechanism,
                username,
                token,
            } => {
                assert_eq!(mechanism, self.mechanism);
                CredentialAnswer::Verdict(self.decide(&username, token.expose()))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn plain_completes(user in credential(), password in credential(),
                       authzid in proptest::option::of(credential())) {
        let host = PlainHost { user: prep(&user), password: prep(&password), authzid: authzid.clone() };
        let mut client = PlainClient::new(user.clone(), password.as_str());
        if let Some(a) = &authzid {
            client = client.with_authzid(a.clone());
        }
        let r = run(&mut client, &mut PlainServer::new(), &mut |q| host.answer(q), None);
        let Outcome::Success(id) = r.outcome else { panic!("{:?}", r.outcome) };
        prop_assert_eq!(&id.username, &prep(&user));
        prop_assert_eq!(id.authzid, authzid.filter(|a| *a != prep(&user)));
    }

    #[test]
    fn plain_tampering_fails_on_the_server(user in credential(), password in credential(),
                                           authzid in proptest::option::of(credential()),
                                           t in tampering()) {
        let host = PlainHost { user: prep(&user), password: prep(&password), authzid: authzid.clone() };
        let mut client = PlainClient::new(user, password.as_str());
        if let Some(a) = &authzid {
            client = client.with_authzid(a.clone());
        }
        let t = Tamper { message: 0, ..t };
        let r = run(&mut client, &mut PlainServer::new(), &mut |q| host.answer(q), Some(t));
        let expected = match plain_fields(&r.messages[0]) {
            None => SaslCondition::MalformedRequest,
            Some((z, c, p)) => host.decide(&z, &c, &p).expect_err("tampered message accepted"),
        };
        prop_assert_eq!(r.outcome.server_condition(), Some(expected));
    }

    #[test]
    fn x_oauth2_completes_and_tampering_fails(user in credential(), token in credential(),
                                              same_authzid in any::<bool>(), t in tampering(),
                                              google in any::<bool>()) {
        let host = TokenHost { mechanism: "X-OAUTH2", user: user.clone(), token: token.clone() };
        let make = || {
            let c = XOAuth2Client::new(user.clone(), token.as_str());
            #[cfg(feature = "google")]
            let c = c.with_google_attributes(google);
            #[cfg(not(feature = "google"))]
            let _ = google;
            if same_authzid { c.with_authzid(user.clone()) } else { c }
        };
        let r = run(&mut make(), &mut XOAuth2Server::new(), &mut |q| host.answer(q), None);
        let Outcome::Success(id) = r.outcome else { panic!("{:?}", r.outcome) };
        prop_assert_eq!(&id.username, &user);
        prop_assert_eq!(id.authzid, None);

        let t = Tamper { message: 0, ..t };
        let r = run(&mut make(), &mut XOAuth2Server::new(), &mut |q| host.answer(q), Some(t));
        prop_assert_eq!(r.outcome.server_condition(), Some(host.tampered(&r.messages[0])));
    }

    #[cfg(feature = "google")]
    #[test]
    fn x_google_token_completes_and_tampering_fails(user in credential(), token in credential(),
                                                    t in tampering()) {
        let host = TokenHost { mechanism: "X-GOOGLE-TOKEN", user: user.clone(), token: token.clone() };
        let r = run(&mut XGoogleTokenClient::new(user.clone(), token.as_str()),
                    &mut XGoogleTokenServer::new(), &mut |q| host.answer(q), None);
        let Outcome::Success(id) = r.outcome else { panic!("{:?}", r.outcome) };
        prop_assert_eq!(&id.username, &user);

        let t = Tamper { message: 0, ..t };
        let r = run(&mut XGoogleTokenClient::new(user.clone(), token.as_str()),
                    &mut XGoogleTokenServer::new(), &mut |q| host.answer(q), Some(t));
        prop_assert_eq!(r.outcome.server_condition(), Some(host.tampered(&r.messages[0])));
    }

    #[test]
    fn external_completes_and_tampering_fails(authzid in proptest::option::of(credential()),
                                              t in tampering()) {
        let allowed = authzid.clone();
        let mut host = |q: CredentialRequest| match q {
            CredentialRequest::External { authzid } if authzid == allowed => {
                CredentialAnswer::Verdict(Ok("certuser".into()))
            }
            CredentialRequest::External { .. } => {
                CredentialAnswer::Verdict(Err(SaslCondition::InvalidAuthzid))
            }
            other => panic!("unexpected {other:?}"),
        };
        let make = || match &authzid {
            Some(a) => ExternalClient::new().with_authzid(a.clone()),
            None => ExternalClient::new(),
        };
        let r = run(&mut make(), &mut ExternalServer::new(), &mut host, None);
        let Outcome::Success(id) = r.outcome else { panic!("{:?}", r.outcome) };
        prop_assert_eq!(id.username, "certuser");
        prop_assert_eq!(id.authzid, authzid.clone());

        let t = Tamper { message: 0, ..t };
        let r = run(&mut make(), &mut ExternalServer::new(), &mut host, Some(t));
        let expected = match std::str::from_utf8(&r.messages[0]) {
            Ok(s) if !s.contains('\0') => SaslCondition::InvalidAuthzid,
            _ => SaslCondition::MalformedRequest,
        };
        prop_assert_eq!(r.outcome.server_condition(), Some(expected));
    }

    #[test]
    fn anonymous_completes_and_tampering_is_reported(trace in proptest::option::of("[a-zA-Z0-9@.é中 _-]{1,255}"),
                                                     t in tampering()) {
        let seen = std::cell::RefCell::new(None);
        let mut host = |q: CredentialRequest| match q {
            CredentialRequest::Anonymous { trace } => {
                *seen.borrow_mut() = Some(trace);
                CredentialAnswer::Verdict(Ok("anon-4711".into()))
            }
            other => panic!("unexpected {other:?}"),
        };
        let make = || match &trace {
            Some(tr) => AnonymousClient::new().with_trace(tr.clone()),
            None => AnonymousClient::new(),
        };
        let r = run(&mut make(), &mut AnonymousServer::new(), &mut host, None);
        let Outcome::Success(id) = r.outcome else { panic!("{:?}", r.outcome) };
        prop_assert_eq!(id.username, "anon-4711");
        prop_assert_eq!(seen.borrow_mut().take(), Some(trace.clone()));

        // The trace is not protected (nothing is): a tampered trace is
        // reported as received, or refused when it is not UTF-8.
        let t = Tamper { message: 0, ..t };
        let r = run(&mut make(), &mut AnonymousServer::new(), &mut host, Some(t));
        match std::str::from_utf8(&r.messages[0]) {
            Ok(s) if s.chars().count() <= 255 => {
                prop_assert!(matches!(r.outcome, Outcome::Success(_)));
                let got = seen.borrow_mut().take().unwrap();
                prop_assert!(got.is_none() || got.as_deref() == Some(s));
            }
            _ => prop_assert_eq!(r.outcome.server_condition(), Some(SaslCondition::MalformedRequest)),
        }
    }

    #[test]
    fn oauthbearer_completes(local in credential().prop_filter("no @", |s| !s.contains('@')),
                             token in b64token(),
                             host_port in proptest::option::of(("[a-z.]{1,20}", any::<u16>()))) {
        let authzid = format!("{local}@example.com");
        let th = TokenHost { mechanism: "OAUTHBEARER", user: local.clone(), token: token.clone() };
        let mut client = OAuthBearerClient::new(token.as_str()).with_authzid(authzid.clone());
        if let Some((h, p)) = &host_port {
            client = client.with_host(h.clone()).with_port(*p);
        }
        let mut server = OAuthBearerServer::new();
        let r = run(&mut client, &mut server, &mut |q| th.answer(q), None);
        let Outcome::Success(id) = r.outcome else { panic!("{:?}", r.outcome) };
        prop_assert_eq!(&id.username, &local);
        prop_assert_eq!(id.authzid, Some(authzid));
        prop_assert_eq!(server.host(), host_port.as_ref().map(|(h, _)| h.as_str()));
        prop_assert_eq!(server.port(), host_port.map(|(_, p)| p));
    }

    #[test]
    fn oauthbearer_rejection_goes_through_the_json_error(local in "[a-z]{1,10}", token in b64token(),
                                                         t in proptest::option::of(tampering())) {
        let th = TokenHost { mechanism: "OAUTHBEARER", user: local.clone(), token: format!("{token}x") };
        let mut client = OAuthBearerClient::new(token.as_str()).with_authzid(format!("{local}@example.com"));
        let r = run(&mut client, &mut OAuthBearerServer::new(), &mut |q| th.answer(q), t);
        match t.map(|t| t.message % 3) {
            None => {
                prop_assert_eq!(r.outcome.server_condition(), Some(SaslCondition::NotAuthorized));
                prop_assert_eq!(r.messages.len(), 3);
                prop_assert_eq!(&r.messages[2], &vec![1u8]);
                prop_assert_eq!(client.server_error().unwrap().status.as_str(), "invalid_token");
            }
            // Never a success; failures on the side that got the tampered
            // message (the JSON: the client, or the server after %x01).
            Some(_) => prop_assert!(match &r.outcome {
                Outcome::Success(_) => false,
                Outcome::ClientFailed(e) => e.condition == SaslCondition::MalformedRequest,
                Outcome::ServerFailed(e) => matches!(e.condition,
                    SaslCondition::MalformedRequest | SaslCondition::NotAuthorized | SaslCondition::InvalidAuthzid),
            }, "{:?}", r.outcome),
        }
    }

    #[test]
    fn oauthbearer_tampering(local in "[a-z]{1,10}", token in b64token(), pos in any::<usize>(), xor in 1u8..=255) {
        let th = TokenHost { mechanism: "OAUTHBEARER", user: local.clone(), token: token.clone() };
        let make = || OAuthBearerClient::new(token.as_str())
            .with_authzid(format!("{local}@example.com"))
            .with_host("example.com")
            .with_port(5222);
        let original = make().initial_response().unwrap().unwrap();
        let p = pos % original.len();
        let r = run(&mut make(), &mut OAuthBearerServer::new(), &mut |q| th.answer(q),
                    Some(Tamper { message: 0, pos, xor }));
        // The localpart and the token are protected; the GS2 flag may turn
        // into `y` (also valid for a mechanism without binding), and the
        // informational host/port pair and the auth scheme's case are not
        // protected.
        let text = String::from_utf8_lossy(&original);
        let local_span = 4..4 + local.len();
        let token_start = text.find("Bearer ").unwrap() + 7;
        let token_span = token_start..token_start + token.len();
        match &r.outcome {
            Outcome::Success(id) => {
                prop_assert_eq!(&id.username, &local);
                prop_assert!(!local_span.contains(&p) && !token_span.contains(&p), "{p}");
            }
            Outcome::ClientFailed(e) => prop_assert!(false, "client failed: {e:?}"),
            Outcome::ServerFailed(e) => prop_assert!(matches!(e.condition,
                SaslCondition::MalformedRequest | SaslCondition::NotAuthorized | SaslCondition::InvalidAuthzid)),
        }
        if token_span.contains(&p) || local_span.contains(&p) {
            prop_assert!(!matches!(r.outcome, Outcome::Success(_)));
        }
    }

    #[cfg(feature = "digest-md5")]
    #[test]
    fn digest_md5_completes(user in any::<String>().prop_filter("non-empty", |s| !s.is_empty() && s.chars().count() <= 100),
                            password in any::<String>().prop_filter("short", |s| s.chars().count() <= 300),
                            authzid in proptest::option::of("[a-z]{1,8}@example\\.com"),
                            seed in any::<u64>(), stored_hash in any::<bool>()) {
        let mut rng = DeterministicRandom::new(seed);
        let mut client = DigestMd5Client::new(user.clone(), password.as_str(), "example.com", &mut rng);
        if let Some(a) = &authzid {
            client = client.with_authzid(a.clone());
        }
        let mut server = DigestMd5Server::new("example.com", &mut rng);
        let mut host = |q: CredentialRequest| match q {
            CredentialRequest::DigestMd5 { username, realm, authzid: az } => {
                assert_eq!(realm, "example.com");
                assert_eq!(az, authzid);
                if username != user {
                    return CredentialAnswer::DigestMd5(None);
                }
                CredentialAnswer::DigestMd5(Some(if stored_hash {
                    DigestMd5Secret::UserRealmPasswordHash(
                        digest_md5::user_realm_password_hash(&username, &realm, &password))
                } else {
                    DigestMd5Secret::Password(Secret::new(password.as_str()))
                }))
            }
            other => panic!("unexpected {other:?}"),
        };
        let r = run(&mut client, &mut server, &mut host, None);
        let Outcome::Success(id) = r.outcome else { panic!("{:?}", r.outcome) };
        prop_assert_eq!(&id.username, &user);
        prop_assert_eq!(id.authzid, authzid);
        prop_assert_eq!(r.messages.len(), 4);
    }

    #[cfg(feature = "digest-md5")]
    #[test]
    fn digest_md5_wrong_password_fails(password in "\\PC{1,30}", other in "\\PC{1,30}") {
        prop_assume!(password != other);
        let mut rng = DeterministicRandom::new(9);
        let mut client = DigestMd5Client::new("alice", password.as_str(), "example.com", &mut rng);
        let mut server = DigestMd5Server::new("example.com", &mut rng);
        let r = run(&mut client, &mut server, &mut |_| {
            CredentialAnswer::DigestMd5(Some(DigestMd5Secret::Password(Secret::new(other.as_str()))))
        }, None);
        prop_assert_eq!(r.outcome.server_condition(), Some(SaslCondition::NotAuthorized));
    }

    #[cfg(feature = "digest-md5")]
    #[test]
    fn digest_md5_tampering(user in "[a-zA-Z0-9,=\"\\\\ é]{1,20}", t in tampering()) {
        let mut rng = DeterministicRandom::new(11);
        let mut client = DigestMd5Client::new(user.clone(), "pencil", "example.com", &mut rng);
        let mut server = DigestMd5Server::new("example.com", &mut rng);
        let mut host = |q: CredentialRequest| match q {
            CredentialRequest::DigestMd5 { username, .. } if username == user => {
                CredentialAnswer::DigestMd5(Some(DigestMd5Secret::Password(Secret::new("pencil"))))
            }
            _ => CredentialAnswer::DigestMd5(None),
        };
        let t = Tamper { message: t.message % 4, ..t };
        let r = run(&mut client, &mut server, &mut host, Some(t));
        use SaslCondition::{MalformedRequest as M, NotAuthorized as N};
        // Who may fail, with what, by tampered message; a success (a
        // change to something the mechanism ignores: an unknown directive
        // name, the case of a name) must still be the same user.
        let ok = match (&r.outcome, t.message) {
            (Outcome::Success(id), _) => id.username == user && t.message != 3,
            (Outcome::ClientFailed(e), 0) => e.condition == M,
            (Outcome::ServerFailed(e), 0 | 1) => e.condition == M || e.condition == N,
            (Outcome::ClientFailed(e), 2) => e.condition == M || e.condition == N,
            (Outcome::ServerFailed(e), 3) => e.condition == M,
            _ => false,
        };
        prop_assert!(ok, "{:?} after tampering message {}", r.outcome, t.message);
    }

    #[cfg(feature = "digest-md5")]
    /// The protected values: tampering with any byte of them fails.
    #[test]
    fn digest_md5_tampering_protected_values(which in 0usize..8, pos in any::<usize>(), xor in 1u8..=255) {
        let mut rng = DeterministicRandom::new(12);
        let mut client = DigestMd5Client::new("alice", "pencil", "example.com", &mut rng);
        let mut server = DigestMd5Server::new("example.com", &mut rng);
        let mut host = |q: CredentialRequest| match q {
            CredentialRequest::DigestMd5 { username, .. } if username == "alice" => {
                CredentialAnswer::DigestMd5(Some(DigestMd5Secret::Password(Secret::new("pencil"))))
            }
            _ => CredentialAnswer::DigestMd5(None),
        };
        // (message, directive) pairs; positions land inside the value.
        let (message, name) = [(0, "nonce"), (0, "realm"), (1, "username"), (1, "nonce"), (1, "cnonce"),
                               (1, "digest-uri"), (1, "response"), (2, "rspauth")][which];
        // Find the value's span in the same exchange, untampered.
        let mut probe_rng = DeterministicRandom::new(12);
        let mut probe_client = DigestMd5Client::new("alice", "pencil", "example.com", &mut probe_rng);
        let mut probe_server = DigestMd5Server::new("example.com", &mut probe_rng);
        let probe = run(&mut probe_client, &mut probe_server, &mut host, None);
        prop_assert!(matches!(probe.outcome, Outcome::Success(_)));
        let msg = String::from_utf8(probe.messages[message].clone()).unwrap();
        let start = msg.find(&format!("{name}=")).unwrap() + name.len() + 1;
        let quoted = msg[start..].starts_with('"');
        let vstart = start + usize::from(quoted);
        let vend = msg[vstart..].find(['"', ',']).map_or(msg.len(), |e| vstart + e);
        let p = vstart + pos % (vend - vstart);
        let r = run(&mut client, &mut server, &mut host, Some(Tamper { message, pos: p, xor }));
        prop_assert!(!matches!(r.outcome, Outcome::Success(_)), "{name}: {:?}", r.outcome);
    }

    #[cfg(feature = "digest-md5")]
    #[test]
    fn seed004_response_is_refused_for_any_stored_password(password in any::<String>(), hashed in any::<bool>()) {
        let (_, response, _) = seed004();
        let mut server = DigestMd5Server::new("example.com", &mut DeterministicRandom::new(5))
            .with_realms(["somerealm"])
            .with_nonce("OA6MG9tEQGm2hh");
        server.start(None).unwrap();
        prop_assert!(matches!(server.respond(&response).unwrap(), ServerStep::Request(_)));
        let secret = if hashed {
            DigestMd5Secret::UserRealmPasswordHash(digest_md5::user_realm_password_hash("somenode", "somerealm", &password))
        } else {
            DigestMd5Secret::Password(Secret::new(password))
        };
        let err = server.answer(CredentialAnswer::DigestMd5(Some(secret))).unwrap_err();
        prop_assert_eq!(err.condition, SaslCondition::NotAuthorized);
    }
}

// ---------------------------------------------------------------------------
// Malformed input: a typed error with the condition for the peer.

fn server_start_error(server: &mut dyn ServerMechanism, message: &[u8]) -> SaslCondition {
    match server.start(Some(message)) {
        Err(e) => e.condition,
        Ok(step) => panic!("{message:?} accepted: {step:?}"),
    }
}

#[test]
fn plain_style_servers_reject_malformed_messages() {
    let oversized = [b"\0u\0".as_slice(), &vec![b'p'; 16 * 1024]].concat();
    let cases: &[&[u8]] = &[
        b"",
        b"alice",
        b"alice\0secret",
        b"\0alice\0secret\0",
        b"\0\0secret",
        b"\0alice\0",
        b"\0al\xffice\0secret",
        b"\0alice\0sec\xc3",
        b"z\xff\0alice\0secret",
        &oversized,
    ];
    for m in cases {
        for server in [
            &mut PlainServer::new() as &mut dyn ServerMechanism,
            &mut XOAuth2Server::new(),
            #[cfg(feature = "google")]
            #[cfg(feature = "google")]
            &mut XGoogleTokenServer::new(),
        ] {
            assert_eq!(
                server_start_error(server, m),
                SaslCondition::MalformedRequest,
                "{} {m:?}",
                server.name()
            );
        }
    }
    // Token mechanisms cannot act for someone else.
    let mut token_servers: Vec<Box<dyn ServerMechanism>> = vec![Box::new(XOAuth2Server::new())];
    #[cfg(feature = "google")]
    token_servers.push(Box::new(XGoogleTokenServer::new()));
    for server in &mut token_servers {
        assert_eq!(
            server_start_error(server.as_mut(), b"admin\0alice\0token"),
            SaslCondition::InvalidAuthzid
        );
    }
    // The authcid itself as authzid is fine.
    assert!(XOAuth2Server::new()
        .start(Some(b"alice\0alice\0token"))
        .is_ok());
}

#[test]
fn plain_style_clients_refuse_what_the_layout_cannot_carry() {
    assert!(first_message(PlainClient::new("al\0ice", "pw")).is_err());
    assert!(first_message(PlainClient::new("alice", "")).is_err());
    assert!(first_message(PlainClient::new("", "pw")).is_err());
    assert!(first_message(XOAuth2Client::new("alice", "to\0ken")).is_err());
    #[cfg(feature = "google")]
    assert!(first_message(XGoogleTokenClient::new("alice", "x".repeat(16 * 1024))).is_err());
}

#[test]
fn plain_client_saslpreps_authcid_and_password() {
    // RFC 4013 section 3: U+00AD maps to nothing, U+00AA to "a", U+2168 to "IX".
    let m = first_message(PlainClient::new("I\u{00ad}X", "\u{2168}\u{00aa}"));
    assert_eq!(m.unwrap(), b"\0IX\0IXa");
    // SASLprep refuses a control character: sent unchanged.
    let m = first_message(PlainClient::new("alice", "pa\u{7}ss"));
    assert_eq!(m.unwrap(), b"\0alice\0pa\x07ss");
}

#[test]
fn one_message_servers_send_an_empty_challenge_without_initial_response() {
    for server in [
        &mut PlainServer::new() as &mut dyn ServerMechanism,
        &mut XOAuth2Server::new(),
        #[cfg(feature = "google")]
        &mut XGoogleTokenServer::new(),
        &mut ExternalServer::new(),
        &mut AnonymousServer::new(),
        &mut OAuthBearerServer::new(),
    ] {
        let step = server.start(None).unwrap();
        assert!(
            matches!(step, ServerStep::Challenge(ref c) if c.is_empty()),
            "{step:?}"
        );
    }
    // And the client answers it with its message.
    let mut client = PlainClient::new("alice", "secret");
    let mut server = PlainServer::new();
    server.start(None).unwrap();
    let m = client.respond(b"").unwrap();
    assert!(matches!(
        server.respond(&m).unwrap(),
        ServerStep::Request(_)
    ));
    // A second challenge is refused.
    assert_eq!(
        client.respond(b"").unwrap_err().condition,
        SaslCondition::MalformedRequest
    );
}

#[test]
fn external_and_anonymous_reject_malformed_messages() {
    for m in [&b"\xff"[..], b"a\0b", &vec![b'a'; 3072]] {
        assert_eq!(
            server_start_error(&mut ExternalServer::new(), m),
            SaslCondition::MalformedRequest
        );
    }
    for m in [&b"\xc3"[..], "é".repeat(256).as_bytes(), &[b'a'; 1021]] {
        assert_eq!(
            server_start_error(&mut AnonymousServer::new(), m),
            SaslCondition::MalformedRequest
        );
    }
    // 255 characters are fine; a trace the profile refuses is absent
    // (RFC 4505 section 3).
    let step = AnonymousServer::new()
        .start(Some("é".repeat(255).as_bytes()))
        .unwrap();
    assert!(
        matches!(step, ServerStep::Request(CredentialRequest::Anonymous { trace: Some(t) }) if t.chars().count() == 255)
    );
    let step = AnonymousServer::new().start(Some(b"bell\x07")).unwrap();
    assert!(matches!(
        step,
        ServerStep::Request(CredentialRequest::Anonymous { trace: None })
    ));
    assert!(first_message(AnonymousClient::new().with_trace("x".repeat(256))).is_err());
    assert!(first_message(AnonymousClient::new().with_trace("bell\u{7}")).is_err());
}

#[test]
fn oauthbearer_server_rejects_malformed_messages() {
    use SaslCondition::{InvalidAuthzid as I, MalformedRequest as M};
    let long = format!("n,,\x01auth=Bearer {}\x01\x01", "a".repeat(16 * 1024));
    let cases: &[(&[u8], SaslCondition)] = &[
        (b"", M),
        (b"\x01", M),
        (b"n,,", M),
        (b"n,,auth=Bearer abc\x01\x01", M),
        (b"p=tls-exporter,,\x01auth=Bearer abc\x01\x01", M),
        (b"x,,\x01auth=Bearer abc\x01\x01", M),
        (b"n,a=,\x01auth=Bearer abc\x01\x01", M),
        (b"n,a=us=2Xer,\x01auth=Bearer abc\x01\x01", M),
        (b"n,a=us\xffer,\x01auth=Bearer abc\x01\x01", M),
        (b"n,,\x01\x01", M),
        (b"n,,\x01auth=Bearer abc\x01", M),
        (b"n,,\x01auth=Bearer abc", M),
        (b"n,,\x01auth=Bearer abc\x01\x01junk", M),
        (b"n,,\x01auth=Bearer abc\x01auth=Bearer abc\x01\x01", M),
        (b"n,,\x01host=a\x01host=b\x01auth=Bearer abc\x01\x01", M),
        (b"n,,\x01port=99999\x01auth=Bearer abc\x01\x01", M),
        (b"n,,\x01port=x\x01auth=Bearer abc\x01\x01", M),
        (b"n,,\x01au th=Bearer abc\x01\x01", M),
        (b"n,,\x01=Bearer abc\x01\x01", M),
        (b"n,,\x01auth\x01\x01", M),
        (b"n,,\x01auth=Basic abc\x01\x01", M),
        (b"n,,\x01auth=Bearer a,b\x01\x01", M),
        (b"n,,\x01auth=Bearer\x01\x01", M),
        (b"n,,\x01auth=Bearer abc\x00\x01\x01", M),
        // Wrong order: key/value pairs before the GS2 header.
        (b"\x01auth=Bearer abc\x01\x01n,,", M),
        (long.as_bytes(), M),
        (b"n,a=@example.com,\x01auth=Bearer abc\x01\x01", I),
    ];
    for (m, want) in cases {
        assert_eq!(
            server_start_error(&mut OAuthBearerServer::new(), m),
            *want,
            "{:?}",
            String::from_utf8_lossy(m)
        );
    }
    // Unknown keys are ignored, `y` is accepted, the scheme is
    // case-insensitive.
    let step = OAuthBearerServer::new()
        .start(Some(
            b"y,a=u=2Cx@h,\x01foo=bar\x01auth=bearer abc==\x01\x01",
        ))
        .unwrap();
    let (mechanism, username, token) = token_request(step);
    assert_eq!(
        (mechanism, username.as_str(), token.expose()),
        ("OAUTHBEARER", "u,x", "abc==")
    );
    // No authzid: the host derives the user from the token.
    let step = OAuthBearerServer::new()
        .start(Some(b"n,,\x01auth=Bearer abc\x01\x01"))
        .unwrap();
    assert!(
        matches!(step, ServerStep::Request(CredentialRequest::Token { username, .. }) if username.is_empty())
    );
}

#[test]
fn oauthbearer_failure_needs_the_kvsep_and_keeps_the_host_condition() {
    let mut server = OAuthBearerServer::new()
        .with_error_scope("xmpp")
        .with_openid_configuration("https://auth.example.com/.well-known/openid-configuration");
    server
        .start(Some(b"n,a=alice@example.com,\x01auth=Bearer abc\x01\x01"))
        .unwrap();
    let ServerStep::Challenge(json) = server
        .answer(CredentialAnswer::Verdict(Err(
            SaslCondition::CredentialsExpired,
        )))
        .unwrap()
    else {
        panic!()
    };
    let mut client = OAuthBearerClient::new("abc").with_authzid("alice@example.com");
    client.initial_response().unwrap();
    assert_eq!(client.respond(&json).unwrap(), b"\x01");
    let e = client.server_error().unwrap();
    assert_eq!(e.status, "invalid_token");
    assert_eq!(e.scope.as_deref(), Some("xmpp"));
    assert_eq!(
        e.openid_configuration.as_deref(),
        Some("https://auth.example.com/.well-known/openid-configuration")
    );
    assert_eq!(
        server.respond(b"\x01").unwrap_err().condition,
        SaslCondition::CredentialsExpired
    );
    // Anything but %x01 after the error is malformed.
    let mut server = OAuthBearerServer::new();
    server
        .start(Some(b"n,,\x01auth=Bearer abc\x01\x01"))
        .unwrap();
    server
        .answer(CredentialAnswer::Verdict(Err(SaslCondition::NotAuthorized)))
        .unwrap();
    assert_eq!(
        server.respond(b"\x01\x01").unwrap_err().condition,
        SaslCondition::MalformedRequest
    );
    // An empty auth value (discovery) fails the same way.
    let mut server = OAuthBearerServer::new();
    let step = server.start(Some(b"n,,\x01auth=\x01\x01")).unwrap();
    assert!(matches!(step, ServerStep::Challenge(_)));
    assert_eq!(
        server.respond(b"\x01").unwrap_err().condition,
        SaslCondition::NotAuthorized
    );
}

#[test]
fn oauthbearer_client_checks_its_input_and_the_server_error() {
    assert_eq!(
        first_message(OAuthBearerClient::new("not a token"))
            .unwrap_err()
            .condition,
        SaslCondition::MalformedRequest
    );
    let m = first_message(
        OAuthBearerClient::new("vF9dft4qmT")
            .with_authzid("us,er=@example.com")
            .with_host("server.example.com")
            .with_port(5222),
    );
    assert_eq!(
        m.unwrap(),
        b"n,a=us=2Cer=3D@example.com,\x01host=server.example.com\x01port=5222\x01auth=Bearer vF9dft4qmT\x01\x01"
    );
    for bad in [
        &b"not json"[..],
        b"{}",
        b"{\"status\":1}",
        b"\xff",
        b"[\"status\"]",
    ] {
        let mut c = OAuthBearerClient::new("abc");
        c.initial_response().unwrap();
        assert_eq!(
            c.respond(bad).unwrap_err().condition,
            SaslCondition::MalformedRequest,
            "{bad:?}"
        );
    }
    // Success after an error is not believed.
    let mut c = OAuthBearerClient::new("abc");
    c.initial_response().unwrap();
    c.respond(br#"{"status":"invalid_token"}"#).unwrap();
    assert!(c.success(None).is_err());
}

#[cfg(feature = "digest-md5")]
fn digest_server() -> DigestMd5Server {
    let mut s =
        DigestMd5Server::new("example.com", &mut DeterministicRandom::new(0)).with_nonce("N0nce");
    s.start(None).unwrap();
    s
}

#[cfg(feature = "digest-md5")]
const GOOD_RESPONSE: &str = "username=\"alice\",realm=\"example.com\",nonce=\"N0nce\",cnonce=\"c\",nc=00000001,qop=auth,digest-uri=\"xmpp/example.com\",response=0123456789abcdef0123456789abcdef,charset=utf-8";

#[cfg(feature = "digest-md5")]
#[test]
fn digest_md5_server_rejects_malformed_responses() {
    use SaslCondition::{MalformedRequest as M, NotAuthorized as N};
    // The template itself reaches the host.
    assert!(matches!(
        digest_server().respond(GOOD_RESPONSE.as_bytes()).unwrap(),
        ServerStep::Request(_)
    ));
    let replace = |from: &str, to: &str| GOOD_RESPONSE.replacen(from, to, 1);
    let mut cases: Vec<(String, SaslCondition)> = vec![
        (replace("username=\"alice\",", ""), M),
        (replace("nonce=\"N0nce\",", ""), M),
        (replace("cnonce=\"c\",", ""), M),
        (replace("nc=00000001,", ""), M),
        (replace("digest-uri=\"xmpp/example.com\",", ""), M),
        (replace(",response=0123456789abcdef0123456789abcdef", ""), M),
        (replace("realm=\"example.com\",", ""), M),
        (replace("username=\"alice\"", "username=\"\""), M),
        (replace("cnonce=\"c\"", "cnonce=\"\""), M),
        (replace("nc=00000001", "nc=00000002"), M),
        (replace("nc=00000001", "nc=1"), M),
        (replace("qop=auth", "qop=auth-int"), M),
        (replace("qop=auth", "qop=auth,cipher=rc4"), M),
        (replace("charset=utf-8", "charset=iso-8859-1"), M),
        (replace("charset=utf-8", "maxbuf=x"), M),
        (
            replace(
                "0123456789abcdef0123456789abcdef",
                "0123456789ABCDEF0123456789ABCDEF",
            ),
            M,
        ),
        (replace("0123456789abcdef0123456789abcdef", "0123"), M),
        (replace("nonce=\"N0nce\"", "nonce=\"other\""), N),
        (replace("xmpp/example.com", "imap/example.com"), N),
        (replace("xmpp/example.com", "xmpp/example.org"), N),
        (replace("xmpp/example.com", "xmpp"), N),
        (replace("realm=\"example.com\"", "realm=\"elsewhere\""), N),
        (replace("username=\"alice\"", "username=\"alice\" x"), M),
        (replace("username=\"alice\"", "username=\"alice"), M),
        (replace("username=\"alice\"", "username"), M),
        (replace("username=\"alice\"", "username=\"al\u{1}ice\""), M),
        (
            GOOD_RESPONSE
                .replace("charset=utf-8", "")
                .replace("alice", "alicé"),
            M,
        ),
        (format!("{GOOD_RESPONSE},x=\"{}\"", "y".repeat(4096)), M),
    ];
    // Every directive given twice.
    for d in GOOD_RESPONSE.split(',') {
        cases.push((format!("{GOOD_RESPONSE},{d}"), M));
    }
    cases.push((format!("{GOOD_RESPONSE},authzid=\"a\",authzid=\"a\""), M));
    for (response, want) in cases {
        let got = match digest_server().respond(response.as_bytes()) {
            Err(e) => e.condition,
            Ok(step) => panic!("{response} accepted: {step:?}"),
        };
        assert_eq!(got, want, "{response}");
    }
    assert_eq!(
        digest_server()
            .respond(b"username=\"\xff\"")
            .unwrap_err()
            .condition,
        M
    );
    // An initial response is refused; an empty one is tolerated.
    let mut s = DigestMd5Server::new("example.com", &mut DeterministicRandom::new(0));
    assert_eq!(s.start(Some(b"x")).unwrap_err().condition, M);
    let mut s = DigestMd5Server::new("example.com", &mut DeterministicRandom::new(0));
    assert!(s.start(Some(b"")).is_ok());
}

#[cfg(feature = "digest-md5")]
#[test]
fn digest_md5_server_host_answers() {
    let answer = |a: CredentialAnswer| {
        let mut s = digest_server();
        s.respond(GOOD_RESPONSE.as_bytes()).unwrap();
        s.answer(a).map(|_| ()).unwrap_err().condition
    };
    assert_eq!(
        answer(CredentialAnswer::DigestMd5(None)),
        SaslCondition::NotAuthorized
    );
    assert_eq!(
        answer(CredentialAnswer::Verdict(Err(
            SaslCondition::AccountDisabled
        ))),
        SaslCondition::AccountDisabled
    );
    assert_eq!(
        answer(CredentialAnswer::Verdict(Ok("alice".into()))),
        SaslCondition::TemporaryAuthFailure
    );
    assert_eq!(
        answer(CredentialAnswer::DigestMd5(Some(
            DigestMd5Secret::UserRealmPasswordHash(xmpp_sansio::sasl::SecretBytes::new(vec![
                0;
                15
            ]))
        ))),
        SaslCondition::TemporaryAuthFailure
    );
    // The (made-up) response does not match the password.
    assert_eq!(
        answer(CredentialAnswer::DigestMd5(Some(
            DigestMd5Secret::Password(Secret::new("pw"))
        ))),
        SaslCondition::NotAuthorized
    );
    // An answer nobody asked for.
    assert_eq!(
        digest_server()
            .answer(CredentialAnswer::DigestMd5(None))
            .unwrap_err()
            .condition,
        SaslCondition::TemporaryAuthFailure
    );
}

#[cfg(feature = "digest-md5")]
#[test]
fn digest_md5_client_rejects_malformed_challenges() {
    let good = "realm=\"r\",nonce=\"n\",qop=\"auth\",charset=utf-8,algorithm=md5-sess";
    let client = || {
        let mut c = DigestMd5Client::new("u", "p", "example.com", &mut DeterministicRandom::new(0));
        c.initial_response().unwrap();
        c
    };
    assert!(client().respond(good.as_bytes()).is_ok());
    let replace = |from: &str, to: &str| good.replacen(from, to, 1);
    let mut cases = vec![
        replace("nonce=\"n\",", ""),
        replace("nonce=\"n\"", "nonce=\"\""),
        replace(",algorithm=md5-sess", ""),
        replace("md5-sess", "md5"),
        replace("qop=\"auth\"", "qop=\"auth-int,auth-conf\""),
        replace("charset=utf-8", "charset=latin1"),
        replace("realm=\"r\"", "realm=\"r"),
        replace("realm=\"r\",", "realm \"r\","),
        format!("{good},x=\"{}\"", "y".repeat(2048)),
    ];
    for d in [
        "nonce=\"n\"",
        "qop=\"auth\"",
        "charset=utf-8",
        "algorithm=md5-sess",
    ] {
        cases.push(format!("{good},{d}"));
    }
    for c in &cases {
        assert_eq!(
            client().respond(c.as_bytes()).unwrap_err().condition,
            SaslCondition::MalformedRequest,
            "{c}"
        );
    }
    assert!(client().respond(b"nonce=\"\xff\"").is_err());
    // Several realms are allowed; the one matching the domain is chosen,
    // whitespace and empty elements are tolerated.
    let r = client()
        .respond(b" realm=\"a\" ,, realm = \"example.com\",\r\n nonce=\"n\",algorithm=MD5-SESS ,\n")
        .unwrap();
    assert!(String::from_utf8(r)
        .unwrap()
        .contains("realm=\"example.com\""));
    // No realm: the domain.
    let r = client().respond(b"nonce=\"n\",algorithm=md5-sess").unwrap();
    assert!(String::from_utf8(r)
        .unwrap()
        .contains("realm=\"example.com\""));
}

#[cfg(feature = "digest-md5")]
#[test]
fn digest_md5_client_checks_rspauth() {
    let answered = || {
        let mut c = DigestMd5Client::new("u", "p", "example.com", &mut DeterministicRandom::new(0));
        c.initial_response().unwrap();
        c.respond(b"nonce=\"n\",algorithm=md5-sess").unwrap();
        c
    };
    use SaslCondition::{MalformedRequest as M, NotAuthorized as N};
    for (rsp, want) in [
        (&b""[..], M),
        (b"rspauth=", M),
        (b"rspauth=0123456789abcdef0123456789abcdef", N),
        (b"rspauth=0123", M),
        (
            b"rspauth=0123456789abcdef0123456789abcdef,rspauth=0123456789abcdef0123456789abcdef",
            M,
        ),
        (b"\xff", M),
    ] {
        assert_eq!(
            answered().respond(rsp).unwrap_err().condition,
            want,
            "{rsp:?}"
        );
        assert_eq!(
            answered()
                .success(Some(rsp).filter(|r| !r.is_empty()))
                .unwrap_err()
                .condition,
            if rsp.is_empty() { N } else { want }
        );
    }
    // <success/> before any challenge is out of order.
    let mut c = DigestMd5Client::new("u", "p", "example.com", &mut DeterministicRandom::new(0));
    c.initial_response().unwrap();
    assert!(c.success(None).is_err());
}

#[test]
fn host_misuse_is_a_temporary_failure() {
    let mut s = PlainServer::new();
    assert_eq!(
        s.answer(CredentialAnswer::Verdict(Ok("x".into())))
            .unwrap_err()
            .condition,
        SaslCondition::TemporaryAuthFailure
    );
    // The condition of a PLAIN server's answer once it asked the host.
    let answered = |answer| {
        let mut s = PlainServer::new();
        s.start(Some(b"\0alice\0pw")).unwrap();
        s.answer(answer).unwrap_err().condition
    };
    assert_eq!(
        answered(CredentialAnswer::Scram(None)),
        SaslCondition::TemporaryAuthFailure
    );
    #[cfg(feature = "digest-md5")]
    assert_eq!(
        answered(CredentialAnswer::DigestMd5(None)),
        SaslCondition::TemporaryAuthFailure
    );
    assert_eq!(
        answered(CredentialAnswer::Verdict(Ok(String::new()))),
        SaslCondition::TemporaryAuthFailure
    );
    // Every condition the host picks reaches the peer.
    for c in SaslCondition::ALL {
        let mut s = ExternalServer::new();
        s.start(Some(b"")).unwrap();
        assert_eq!(
            s.answer(CredentialAnswer::Verdict(Err(c)))
                .unwrap_err()
                .condition,
            c
        );
    }
    // Messages after the end are refused.
    let mut s = ExternalServer::new();
    s.start(Some(b"")).unwrap();
    s.answer(CredentialAnswer::Verdict(Ok("u".into()))).unwrap();
    assert!(s.respond(b"").is_err());
    assert!(s.start(None).is_err());
}

#[test]
fn secrets_do_not_show_in_debug_or_errors() {
    const PW: &str = "hunter2-very-secret";
    let mut plain = PlainClient::new("alice", PW);
    let mut xo = XOAuth2Client::new("alice", PW);
    let mut ob = OAuthBearerClient::new(PW);
    let mut texts = vec![format!("{plain:?}"), format!("{xo:?}"), format!("{ob:?}")];
    plain.initial_response().unwrap();
    xo.initial_response().unwrap();
    ob.initial_response().unwrap();
    texts.push(format!("{plain:?}{xo:?}{ob:?}"));
    #[cfg(feature = "google")]
    {
        let mut gt = XGoogleTokenClient::new("alice", PW);
        texts.push(format!("{gt:?}"));
        gt.initial_response().unwrap();
        texts.push(format!("{gt:?}"));
    }
    #[cfg(feature = "digest-md5")]
    {
        let mut dm =
            DigestMd5Client::new("alice", PW, "example.com", &mut DeterministicRandom::new(0));
        texts.push(format!("{dm:?}"));
        dm.initial_response().unwrap();
        texts.push(format!(
            "{:?}",
            dm.respond(b"nonce=\"n\",algorithm=md5-sess")
        ));
        texts.push(format!("{dm:?}"));
        texts.push(format!(
            "{:?}",
            DigestMd5Secret::UserRealmPasswordHash(digest_md5::user_realm_password_hash(
                "a", "b", PW
            ))
        ));
    }
    let mut s = PlainServer::new();
    texts.push(format!(
        "{:?}",
        s.start(Some(format!("\0alice\0{PW}").as_bytes()))
    ));
    texts.push(format!("{s:?}"));
    let err = s
        .answer(CredentialAnswer::Verdict(Err(SaslCondition::NotAuthorized)))
        .unwrap_err();
    texts.push(format!("{err:?} {err}"));
    let mut s = OAuthBearerServer::new();
    texts.push(format!(
        "{:?}",
        s.start(Some(format!("n,,\x01auth=Bearer {PW}\x01\x01").as_bytes()))
    ));
    texts.push(format!("{s:?}"));
    for t in texts {
        assert!(!t.contains(PW) && !t.contains("hunter2"), "{t}");
    }
}
