//! Random bytes for a server's handshakes from a pool per thread, filled
//! from the OS 512 bytes at a time: a login takes about 250 bytes in a
//! dozen small draws (the TLS server random and session tickets, stream
//! ids, the SCRAM nonce), a `getrandom` system call each before. As a TLS
//! library's generator in user space (OpenSSL's DRBG, BoringSSL's), the
//! bytes live in the process until drawn; each is handed out once and
//! wiped from the pool as it is. (ring's own draws, the ECDHE key and the
//! ECDSA nonce, still go to the OS.)

use std::cell::{Cell, RefCell};

use ring::rand::SecureRandom as _;
use zeroize::Zeroize;

/// The pool's size.
const POOL: usize = 512;

struct Pool {
    bytes: [u8; POOL],
    /// Bytes at the start already handed out (and wiped).
    used: usize,
}

thread_local! {
    static THREAD_POOL: RefCell<Pool> = const { RefCell::new(Pool { bytes: [0; POOL], used: POOL }) };
    /// This thread's refills from the OS so far.
    static REFILLS: Cell<u64> = const { Cell::new(0) };
}

/// Fills `out` from this thread's pool (larger draws straight from the OS).
fn fill(out: &mut [u8]) -> Result<(), ring::error::Unspecified> {
    let os = ring::rand::SystemRandom::new();
    if out.len() > POOL / 4 {
        return os.fill(out);
    }
    THREAD_POOL.with_borrow_mut(|p| {
        if POOL - p.used < out.len() {
            os.fill(&mut p.bytes)?;
            p.used = 0;
            REFILLS.set(REFILLS.get() + 1);
        }
        let drawn = &mut p.bytes[p.used..p.used + out.len()];
        out.copy_from_slice(drawn);
        drawn.zeroize();
        p.used += out.len();
        Ok(())
    })
}

/// How many times this thread's pool was filled from the OS so far.
pub fn refills() -> u64 {
    REFILLS.get()
}

/// The pool as rustls's and the core's random source.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pooled;

impl rustls::crypto::SecureRandom for Pooled {
    fn fill(&self, buf: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
        fill(buf).map_err(|_| rustls::crypto::GetRandomFailed)
    }
}

impl xmpp_sansio::RandomSource for Pooled {
    fn fill(&mut self, buf: &mut [u8]) {
        // As the core's `OsRandom`: no protocol state recovers from the OS
        // random source failing.
        fill(buf).expect("the OS random source failed");
    }
}

/// This thread's pool: what is left to draw (tests).
#[cfg(test)]
fn left() -> Vec<u8> {
    THREAD_POOL.with_borrow(|p| p.bytes[p.used..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_come_from_a_pool_filled_now_and_then_and_are_wiped() {
        let mut seen = std::collections::HashSet::new();
        let before = refills();
        // 200 draws of 32 bytes: 6,400 bytes, 13 fills of 512 at most (a
        // system call each draw would be 200).
        for _ in 0..200 {
            let mut b = [0u8; 32];
            rustls::crypto::SecureRandom::fill(&Pooled, &mut b).unwrap();
            assert!(seen.insert(b), "a draw repeated");
            // What was handed out is no longer in the pool.
            THREAD_POOL.with_borrow(|p| {
                assert!(p.bytes[..p.used].iter().all(|&x| x == 0));
            });
        }
        assert_eq!(refills() - before, 13);
        // The core's draws too; a large one straight from the OS.
        let mut nonce = [0u8; 24];
        xmpp_sansio::RandomSource::fill(&mut Pooled, &mut nonce);
        assert_ne!(nonce, [0u8; 24]);
        let rest = left();
        let mut big = vec![0u8; 1000];
        xmpp_sansio::RandomSource::fill(&mut Pooled, &mut big);
        assert_eq!(left(), rest, "the pool untouched by a large draw");
        assert!(big.iter().any(|&x| x != 0));
    }
}
