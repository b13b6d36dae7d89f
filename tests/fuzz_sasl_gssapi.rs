//! Runs the `sasl_gssapi` fuzz body of `fuzz/bodies/` over its checked-in
//! seeds (pinning how each ends; `REGENERATE_SEEDS=1` rewrites them) and
//! over random and mutated inputs.

#[path = "../fuzz/bodies/sasl_gssapi.rs"]
mod body;
mod support;

use std::fs;

use body::{End, AP_REP, AP_REQ, SEPARATOR, WRAP};
use proptest::prelude::*;
use support::{fuzz_seed_dir, fuzz_seeds};
use xmpp_sansio::sasl::SaslCondition::{MalformedRequest, MechanismTooWeak, NotAuthorized};

/// A wrap token of `m`.
fn w(m: &[u8]) -> Vec<u8> {
    [WRAP, m].concat()
}

/// The seeds: (name, flags, messages, how it ends).
fn seeds() -> Vec<(&'static str, u8, Vec<Vec<u8>>, End)> {
    let ok = End::Success("alice".into());
    let no_layer = w(&[1, 0, 0, 0]);
    vec![
        (
            "server-login",
            0x00,
            vec![AP_REQ.to_vec(), vec![], no_layer.clone()],
            ok.clone(),
        ),
        (
            "server-login-authzid-no-ir",
            0x02,
            vec![AP_REQ.to_vec(), vec![], w(b"\x01\0\0\0alice@example.test")],
            ok.clone(),
        ),
        (
            "server-login-no-mutual",
            0x08,
            vec![AP_REQ.to_vec(), no_layer.clone()],
            ok,
        ),
        (
            "server-host-refuses",
            0x04,
            vec![AP_REQ.to_vec(), vec![], no_layer.clone()],
            End::Failed(NotAuthorized),
        ),
        (
            "server-bad-layer",
            0x00,
            vec![AP_REQ.to_vec(), vec![], w(&[2, 0, 0x10, 0])],
            End::Failed(MalformedRequest),
        ),
        (
            "client-login",
            0x01,
            vec![AP_REP.to_vec(), no_layer],
            End::Success(String::new()),
        ),
        (
            "client-no-layer-not-offered",
            0x01,
            vec![AP_REP.to_vec(), w(&[6, 0, 0x10, 0])],
            End::Failed(MechanismTooWeak),
        ),
    ]
}

#[test]
fn sasl_gssapi_seed_corpus() {
    let dir = fuzz_seed_dir("sasl_gssapi");
    let seeds = seeds();
    for (name, flags, messages, end) in &seeds {
        let data = [vec![*flags], messages.join(&[SEPARATOR][..])].concat();
        if std::env::var_os("REGENERATE_SEEDS").is_some() {
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(name), &data).unwrap();
        }
        let on_disk = fs::read(dir.join(name)).expect("seed");
        assert_eq!(on_disk, data, "{name} is stale: REGENERATE_SEEDS=1");
        assert_eq!(&body::run(&data), end, "{name}");
    }
    assert_eq!(fuzz_seeds("sasl_gssapi").len(), seeds.len());
}

proptest! {
    #[test]
    fn random_inputs_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        body::run(&data);
    }

    /// Each seed with one byte changed or cut short.
    #[test]
    fn mutated_seeds_never_panic(k in 0usize..7, at in any::<usize>(), xor in 1u8.., cut in any::<bool>()) {
        let (_, flags, messages, _) = &seeds()[k];
        let mut data = [vec![*flags], messages.join(&[SEPARATOR][..])].concat();
        let at = at % data.len();
        if cut {
            data.truncate(at);
        } else {
            data[at] ^= xor;
        }
        body::run(&data);
    }
}
