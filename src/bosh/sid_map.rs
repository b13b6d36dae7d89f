//! Maps keyed by session id, with a hash that costs little.
//!
//! Every BOSH request is looked up by its `sid`, several times on its way
//! (the manager, the XMPP adapter); SipHash, std's default, was a visible
//! part of a negotiation's cost. SipHash is there to make collisions
//! unpredictable for keys an attacker chooses, and here nobody but the
//! connection manager chooses keys: a session id is inserted only when the
//! manager creates it, from its random source. A request's `sid` is only
//! ever looked up, and a lookup cannot make the map slow for others. So a
//! multiply-rotate hash over whole words (FxHash's), whose spread of
//! random keys is as good, does.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hash over eight bytes at a time (FxHash's step), for
/// keys that are random session ids.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SidHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl SidHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for SidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }
}

/// A map keyed by session ids the connection manager made.
pub(crate) type SidMap<V> = HashMap<String, V, BuildHasherDefault<SidHasher>>;
/// A set of session ids the connection manager made.
pub(crate) type SidSet = HashSet<String, BuildHasherDefault<SidHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Session ids like the manager's spread evenly over the buckets, and
    /// ids differing in one character hash apart.
    #[test]
    fn spreads_session_ids() {
        let h = |s: &[u8]| {
            let mut h = SidHasher::default();
            h.write(s);
            h.finish()
        };
        assert_ne!(h(b"ab"), h(b"ba"));
        assert_ne!(h(b"0123456789abcdef0"), h(b"0123456789abcdef1"));
        let mut buckets = [0u32; 64];
        for i in 0u64..6400 {
            let sid = format!("{:032x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            // hashbrown takes the top bits for its control bytes and the
            // low ones for the bucket.
            buckets[(h(sid.as_bytes()) % 64) as usize] += 1;
        }
        assert!(buckets.iter().all(|n| (50..150).contains(n)), "{buckets:?}");
    }
}
