//! Fuzz body for the BOSH `<body/>` codec (`xmpp_sansio::bosh::Body`),
//! shared by the cargo-fuzz target (`fuzz/fuzz_targets/bosh_body.rs`) and
//! the seed-corpus test (`tests/fuzz_bosh.rs`).
//!
//! The whole input is one HTTP body, parsed within small limits. A broken
//! invariant is a panic (`assert!`):
//!
//! - `Body::parse` (its start-tag fast path where it applies) gives what
//!   `Body::parse_with_xml_parser` gives, the same body or the same error,
//!   but for a body the parser refuses for its heap, which the fast path
//!   (charging what it allocates) may read;
//! - `Body::parse` never panics, and an error always has a condition
//!   (`bad-request` or, for a limit, `policy-violation`);
//! - a body that parsed is written by `Body::to_bytes` without error, and
//!   what it writes parses back (within generous limits) to an equal body;
//! - the written body declares `xmlns` once on `<body>` and the stream
//!   prefix only when a payload needs it.

use xmpp_sansio::bosh::{Body, BodyError, Condition};
use xmpp_sansio::xml::{Limit, Limits, ReadError};

/// Small limits, so that the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_element_bytes: 4096,
    max_depth: 16,
    max_attributes: 32,
    max_token_bytes: 1024,
    max_element_heap: 4 * 4096,
};

/// Generous limits for reading back what the writer made: escaping and
/// generated prefix declarations make it larger than what was read.
const READBACK_LIMITS: Limits = Limits {
    max_element_bytes: 1 << 20,
    max_depth: 64,
    max_attributes: 256,
    max_token_bytes: 64 * 1024,
    max_element_heap: 64 << 20,
};

pub fn run(data: &[u8]) {
    let parsed = Body::parse(data, &LIMITS);
    let reference = Body::parse_with_xml_parser(data, &LIMITS);
    // The one difference allowed: each path charges the heap it
    // allocates, so near the budget the fast path may read a body the
    // parser refuses for its heap.
    let heap_margin = parsed.is_ok()
        && matches!(
            reference,
            Err(BodyError::Xml(ReadError::LimitExceeded {
                limit: Limit::ElementHeap,
                ..
            }))
        );
    if !heap_margin {
        assert_eq!(parsed, reference, "{}", String::from_utf8_lossy(data));
    }
    let body = match parsed {
        Ok(b) => b,
        Err(e) => {
            let c = e.condition();
            assert!(
                c == Condition::BadRequest || c == Condition::PolicyViolation,
                "{e:?} -> {c:?}"
            );
            return;
        }
    };
    let bytes = body
        .to_bytes()
        .unwrap_or_else(|e| panic!("a parsed body must write: {e:?} {body:?}"));
    let text = std::str::from_utf8(&bytes).expect("the writer writes UTF-8");
    assert!(text.starts_with("<body"), "{text}");
    let again = Body::parse(&bytes, &READBACK_LIMITS)
        .unwrap_or_else(|e| panic!("written body does not read back: {e:?}\n{text}"));
    assert_eq!(again, body, "{text}");
}
