//! Runs the SASL fuzz bodies of `fuzz/bodies/` over their checked-in seed
//! corpora (pinning what each seed reaches), and over random and mutated
//! inputs.

#[path = "../fuzz/bodies/sasl_server_mechanisms.rs"]
mod sasl_server_mechanisms;

#[path = "../fuzz/bodies/sasl_digest_md5_client.rs"]
mod sasl_digest_md5_client;

use std::collections::BTreeMap;

use proptest::prelude::*;
use xmpp_sansio::sasl::SaslCondition;

/// Every file of `fuzz/seeds/<name>/`, by file name.
fn corpus(name: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = format!("{}/fuzz/seeds/{name}", env!("CARGO_MANIFEST_DIR"));
    let files: BTreeMap<_, _> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    assert!(!files.is_empty(), "{dir} is empty");
    files
}

#[test]
fn server_mechanisms_corpus() {
    use SaslCondition::NotAuthorized;
    let expected: BTreeMap<&str, (&str, Result<&str, SaslCondition>)> = [
        ("plain", ("PLAIN", Ok("alice"))),
        ("plain_authzid_no_ir", ("PLAIN", Ok("alice"))),
        ("plain_wrong_password", ("PLAIN", Err(NotAuthorized))),
        ("x_oauth2", ("X-OAUTH2", Ok("user-alice@example.com"))),
        (
            "x_google_token",
            ("X-GOOGLE-TOKEN", Ok("user-alice@gmail.com")),
        ),
        ("oauthbearer", ("OAUTHBEARER", Ok("user-alice"))),
        ("oauthbearer_refused", ("OAUTHBEARER", Err(NotAuthorized))),
        ("digest_md5_rfc2831", ("DIGEST-MD5", Ok("chris"))),
        (
            "digest_md5_seed004_replay",
            ("DIGEST-MD5", Err(NotAuthorized)),
        ),
        ("external", ("EXTERNAL", Ok("external"))),
        ("external_empty", ("EXTERNAL", Ok("external"))),
        ("anonymous", ("ANONYMOUS", Ok("anonymous"))),
    ]
    .into_iter()
    .collect();
    let seeds = corpus("sasl_server_mechanisms");
    assert_eq!(
        seeds.keys().map(String::as_str).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>(),
        "every seed has an expected outcome"
    );
    for (name, data) in &seeds {
        sasl_server_mechanisms::run(data);
        let (mechanism, outcome) = sasl_server_mechanisms::drive(data).expect(name);
        let (want_mechanism, want) = expected[name.as_str()];
        assert_eq!(mechanism, want_mechanism, "{name}");
        assert_eq!(outcome.as_deref().map_err(|c| *c), want, "{name}");
    }
    // Every mechanism of the body has a seed that reaches success.
    for m in sasl_server_mechanisms::MECHANISMS {
        assert!(
            expected.values().any(|(mech, r)| *mech == m && r.is_ok()),
            "{m}"
        );
    }
}

#[test]
fn digest_md5_client_corpus() {
    let seeds = corpus("sasl_digest_md5_client");
    let conditions = |name: &str| -> Vec<Option<SaslCondition>> {
        sasl_digest_md5_client::run(&seeds[name]);
        sasl_digest_md5_client::drive(&seeds[name])
            .into_iter()
            .map(|r| r.err().map(|e| e.condition))
            .collect()
    };
    assert_eq!(conditions("rfc2831"), [None, None, None, None]);
    assert_eq!(conditions("rfc2831_rspauth_in_success"), [None, None, None]);
    // Seed 004's rspauth belongs to RFC 2831's parameters: refused; the
    // <success/> after it finds the exchange over.
    let c = conditions("seed004");
    assert_eq!(c[..3], [None, None, Some(SaslCondition::NotAuthorized)]);
    assert!(c[3].is_some());
    assert_eq!(conditions("several_realms_lws"), [None, None]);
    assert_eq!(seeds.len(), 4, "a new seed needs its expectation here");
}

/// A seed with a few bytes flipped.
fn mutated(name: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = corpus(name).into_values().collect();
    (
        proptest::sample::select(seeds),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    )
        .prop_map(|(mut seed, flips)| {
            for (pos, byte) in flips {
                if !seed.is_empty() {
                    let p = pos % seed.len();
                    seed[p] = byte;
                }
            }
            seed
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn server_mechanisms_never_panic(data in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        mutated("sasl_server_mechanisms"),
    ]) {
        sasl_server_mechanisms::run(&data);
    }

    #[test]
    fn digest_md5_client_never_panics(data in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        mutated("sasl_digest_md5_client"),
    ]) {
        sasl_digest_md5_client::run(&data);
    }
}
