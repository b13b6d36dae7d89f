//! Randomness supplied by the host.
//!
//! The state machines never read the OS random source themselves: SCRAM
//! nonces, DIGEST-MD5 cnonces and stream ids come from a [`RandomSource`]
//! that the host passes in. [`OsRandom`] (cargo feature `getrandom`, on by
//! default) is the one to use in production; `DeterministicRandom` (cargo
//! feature `test-util`) makes tests, fuzzing and benchmarks reproducible.

/// A source of random bytes.
pub trait RandomSource: Send {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

impl<R: RandomSource + ?Sized> RandomSource for Box<R> {
    fn fill(&mut self, buf: &mut [u8]) {
        (**self).fill(buf)
    }
}

/// The operating system's random source, through the `getrandom` crate.
#[cfg(feature = "getrandom")]
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

#[cfg(feature = "getrandom")]
impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        // The OS random source failing is not something a protocol state
        // machine can recover from; it is an environment invariant.
        getrandom::fill(buf).expect("the OS random source failed");
    }
}

/// A deterministic generator (SplitMix64) for tests, fuzzing and
/// benchmarks. **Not** cryptographically secure: never use it for real
/// sessions. Only with the `test-util` cargo feature.
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
#[derive(Debug, Clone)]
pub struct DeterministicRandom {
    state: u64,
}

#[cfg(any(test, feature = "test-util"))]
impl DeterministicRandom {
    /// A generator whose output is fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(any(test, feature = "test-util"))]
impl RandomSource for DeterministicRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// `len` random characters from a printable alphabet that needs no escaping
/// in XML or in SASL attribute values (no `,`, `=`, quotes).
pub fn printable_token(rng: &mut dyn RandomSource, len: usize) -> String {
    let mut out = String::with_capacity(len);
    push_printable_token(rng, len, &mut out);
    out
}

/// Appends [`printable_token`]`(rng, len)` to `out`: the same characters
/// from the same draws, without a buffer of its own (the random bytes
/// are drawn on the stack, 64 at a time, and zeroed after).
pub(crate) fn push_printable_token(rng: &mut dyn RandomSource, len: usize, out: &mut String) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.reserve(len);
    let mut raw = [0u8; 64];
    let mut left = len;
    while left > 0 {
        let n = left.min(raw.len());
        rng.fill(&mut raw[..n]);
        out.extend(
            raw[..n]
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])),
        );
        left -= n;
    }
    zeroize::Zeroize::zeroize(&mut raw);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_random_repeats_for_a_seed() {
        let mut a = DeterministicRandom::new(7);
        let mut b = DeterministicRandom::new(7);
        let mut c = DeterministicRandom::new(8);
        let (mut x, mut y, mut z) = ([0u8; 13], [0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn pushed_tokens_are_the_same_draws_appended() {
        for len in [0, 1, 24, 63, 64, 65, 130] {
            let expected = printable_token(&mut DeterministicRandom::new(9), len);
            let mut out = String::from("r=");
            push_printable_token(&mut DeterministicRandom::new(9), len, &mut out);
            assert_eq!(out, format!("r={expected}"), "{len}");
            assert_eq!(expected.len(), len);
        }
    }

    #[test]
    fn printable_token_uses_safe_alphabet() {
        let mut r = DeterministicRandom::new(1);
        let t = printable_token(&mut r, 64);
        assert_eq!(t.len(), 64);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'));
    }
}
