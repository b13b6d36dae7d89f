//! Maps keyed by session id, with a hash that costs little.
//!
//! Every BOSH request is looked up by its `sid`, several times on its way
//! (the manager, the XMPP adapter); SipHash, std's default, was a visible
//! part of a negotiation's cost. SipHash is there to make collisions
//! unpredictable for keys an attacker chooses, and here nobody but the
//! connection manager chooses keys: a session id is inserted only when the
//! manager creates it, from its random source. A request's `sid` is only
//! ever looked up, and a lookup cannot make the map slow for others. So
//! FNV-1a, whose spread of random keys is as good, does.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a (64-bit), for keys that are random session ids.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SidHasher(u64);

impl Default for SidHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for SidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// A map keyed by session ids the connection manager made.
pub(crate) type SidMap<V> = HashMap<String, V, BuildHasherDefault<SidHasher>>;
/// A set of session ids the connection manager made.
pub(crate) type SidSet = HashSet<String, BuildHasherDefault<SidHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The FNV-1a test vectors (draft-eastlake-fnv), and a spread of
    /// session ids like the manager's over the buckets.
    #[test]
    fn fnv1a_vectors_and_spread() {
        let h = |s: &[u8]| {
            let mut h = SidHasher::default();
            h.write(s);
            h.finish()
        };
        assert_eq!(h(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(h(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(h(b"foobar"), 0x8594_4171_f739_67e8);
        let mut buckets = [0u32; 64];
        for i in 0u64..6400 {
            let sid = format!("{:032x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            buckets[(h(sid.as_bytes()) % 64) as usize] += 1;
        }
        assert!(buckets.iter().all(|n| (50..150).contains(n)), "{buckets:?}");
    }
}
