//! Runs the `misbehaving_host` fuzz body (`fuzz/bodies/misbehaving_host.rs`:
//! a `Server` whose host answers wrongly) over its checked-in seeds, and
//! builds them: the client bytes of the `server` and `legacy` targets'
//! real sessions (`ok-*` seeds), fed in chunks with the honest host's
//! answer and TLS after each, and the same with wrong answers before the
//! honest ones. `REGENERATE_SEEDS=1 cargo test --test fuzz_host`
//! rewrites them (and keeps the fuzzer's `regress-*` finds). Also runs the `host_mechanism` body over its seeds
//! (a GSSAPI-shaped exchange, as `tests/sasl_custom_mechanism.rs` runs
//! one, and each way it can end), pinning how each ends.

#[allow(clippy::duplicate_mod, dead_code)]
#[path = "../fuzz/bodies/misbehaving_host.rs"]
mod host_body;

#[allow(dead_code)]
#[path = "../fuzz/bodies/host_mechanism.rs"]
mod mechanism_body;

// The server body (whose host this reuses) measures heap in its own runs.
#[path = "../fuzz/bodies/heap.rs"]
mod heap;

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

mod support;

use std::fs;

use host_body::{BIND_ACCEPT, BIND_REFUSE, CREDENTIALS, HONEST, LEGACY, REGISTER, SEND, TICK, TLS};
use support::{fuzz_seed_dir, fuzz_seeds};

/// Wrong answers before each honest one: every kind, including invalid
/// bind resources and conditions.
const MISBEHAVIOUR: [(&str, &[u8]); 6] = [
    ("honest", &[]),
    (
        "wrong-credentials",
        &[CREDENTIALS, 0, CREDENTIALS, 3, CREDENTIALS, 5],
    ),
    (
        "bind-control-char",
        &[BIND_ACCEPT, 2, BIND_ACCEPT, 3, BIND_ACCEPT, 7],
    ),
    (
        "bind-huge-empty",
        &[BIND_ACCEPT, 4, BIND_ACCEPT, 1, BIND_ACCEPT, 8],
    ),
    (
        "bind-refuse-bad-name",
        &[BIND_REFUSE, 2, BIND_REFUSE, 3, BIND_REFUSE, 4],
    ),
    (
        "out-of-turn",
        &[REGISTER, 0, LEGACY, 2, LEGACY, 0, SEND, TICK, 1],
    ),
];

/// The seed for a session's client bytes `up`, `wrong` before each
/// honest answer.
fn ops(config: u8, up: &[u8], wrong: &[u8]) -> Vec<u8> {
    let mut out = vec![config];
    for chunk in up.chunks(200) {
        out.extend_from_slice(&[3, chunk.len() as u8]);
        out.extend_from_slice(chunk);
        for _ in 0..3 {
            out.extend_from_slice(wrong);
            out.extend_from_slice(&[HONEST, TLS]);
        }
    }
    out
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let sessions = fuzz_seeds("server")
        .into_iter()
        .filter(|(n, _)| n.starts_with("ok-") && !n.contains("tls1") && !n.contains("tls2"))
        .map(|(n, d)| (n, d[0], d[2..].to_vec()))
        .chain(
            fuzz_seeds("legacy")
                .into_iter()
                .filter(|(n, d)| n.starts_with("ok-") && d[0] & 1 == 0)
                .map(|(n, d)| (format!("legacy-{n}"), d[1], d[3..].to_vec())),
        );
    for (k, (name, config, up)) in sessions.enumerate() {
        let (label, wrong) = MISBEHAVIOUR[k % MISBEHAVIOUR.len()];
        out.push((format!("{name}-{label}"), ops(config, &up, wrong)));
    }
    out
}

#[test]
fn regenerated_seeds_match_the_checked_in_ones() {
    let dir = fuzz_seed_dir("misbehaving_host");
    if std::env::var_os("REGENERATE_SEEDS").is_some() {
        fs::create_dir_all(&dir).unwrap();
        for (name, _) in fuzz_seeds("misbehaving_host") {
            if !name.starts_with("regress-") {
                fs::remove_file(dir.join(name)).unwrap();
            }
        }
        for (name, data) in seeds() {
            fs::write(dir.join(name), data).unwrap();
        }
    }
    // Regression seeds (`regress-*`, found by the fuzzer) are kept as
    // they are.
    let mut on_disk = fuzz_seeds("misbehaving_host");
    on_disk.retain(|(name, _)| !name.starts_with("regress-"));
    let mut made = seeds();
    made.sort();
    assert!(
        on_disk == made,
        "stale: REGENERATE_SEEDS=1 cargo test --test fuzz_host"
    );
}

#[test]
fn seed_corpus() {
    let all = fuzz_seeds("misbehaving_host");
    assert!(all.len() >= 20, "only {} seeds", all.len());
    for (name, data) in &all {
        eprintln!("misbehaving_host seed {name}");
        host_body::run(data);
    }
}

/// The `host_mechanism` seeds and how each ends: (name, messages).
fn mechanism_seeds() -> Vec<(&'static str, Vec<Vec<u8>>, mechanism_body::End)> {
    use mechanism_body::End;
    use xmpp_sansio::sasl::SaslCondition::{MalformedRequest, NotAuthorized};
    let m = |k: u8, p: &[u8]| [&[k][..], p].concat();
    vec![
        // GSSAPI-shaped (RFC 4752): a context token, the service's reply,
        // an empty token, a wrapped layer offer and choice, the host's
        // decision on the authzid, success.
        (
            "gssapi-shaped",
            vec![
                m(0, b"alice@EXAMPLE.COM\0tag"),
                m(0, &[0x6e, 0x81, 0x00, 0xa0]),
                m(0, b""),
                m(0, &[1, 0, 0, 0, 0xee, 0xee]),
                m(0, &[1, 0, 0, 0, b'a', 0xee]),
                m(1, b"alice@example.com"),
                m(2, b""),
                m(0, b""),
            ],
            End::Success,
        ),
        (
            "success-with-data",
            vec![m(0, b""), m(2, b"v=rspauth\n<&>"), m(0, b"")],
            End::Success,
        ),
        (
            "no-initial-response",
            vec![
                m(0, b""),
                m(0, &[0, 0xff >> 1]),
                m(0, b"x"),
                m(2, b""),
                m(0, b""),
            ],
            End::Success,
        ),
        (
            "client-fails-first",
            vec![m(1, b"")],
            End::ClientFailed(MalformedRequest),
        ),
        (
            "client-refuses-challenge",
            vec![m(0, b"ir"), m(0, b"\x01\x02"), m(1, b"")],
            End::ClientFailed(NotAuthorized),
        ),
        (
            "server-fails",
            vec![m(0, b"ir"), m(3, b"")],
            End::ServerFailed(NotAuthorized),
        ),
        (
            "client-refuses-success",
            vec![m(0, b"ir"), m(2, b"proof"), m(1, b"")],
            End::ClientFailed(NotAuthorized),
        ),
    ]
}

#[test]
fn host_mechanism_seed_corpus() {
    let dir = fuzz_seed_dir("host_mechanism");
    let seeds = mechanism_seeds();
    for (name, messages, end) in &seeds {
        let data = messages.join(&[mechanism_body::SEPARATOR][..]);
        if std::env::var_os("REGENERATE_SEEDS").is_some() {
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(name), &data).unwrap();
        }
        let on_disk = fs::read(dir.join(name)).expect("seed");
        assert_eq!(on_disk, data, "{name} is stale: REGENERATE_SEEDS=1");
        assert_eq!(&mechanism_body::run_outcome(&data), end, "{name}");
    }
    assert_eq!(fuzz_seeds("host_mechanism").len(), seeds.len());
}

/// Every seed passes with nothing tolerated, the regression seeds
/// included: `regress-close-after-proceed` is a host that closes (and a
/// deadline that fires) between `<proceed/>` and `tls_established`, where
/// the server once wrote `<stream:error/>` and `</stream:stream>` in the
/// clear. It fails again if that comes back.
#[test]
fn every_host_seed_passes_strictly() {
    let strict = host_body::server_body::KNOWN_FAULTS;
    let seeds = fuzz_seeds("misbehaving_host");
    assert!(seeds
        .iter()
        .any(|(n, _)| n == "regress-close-after-proceed"));
    for (name, data) in seeds {
        let result = std::panic::catch_unwind(|| host_body::run_with(&data, strict));
        assert!(result.is_ok(), "{name} fails strictly");
    }
}
