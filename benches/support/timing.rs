//! Timing shared by the benches that set a figure beside its baseline
//! in one run (`#[path]`-included: benches are separate crates).

use std::time::{Duration, Instant};

/// Fastest of `batches` interleaved batches of `iters` runs of each of
/// `fs`, per run: on a shared, noisy machine the fastest batch is the
/// one least disturbed, and interleaving exposes every case to the same
/// disturbances.
pub fn fastest(batches: usize, iters: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<Duration> {
    let mut best = vec![Duration::MAX; fs.len()];
    for _ in 0..batches {
        for (i, f) in fs.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            best[i] = best[i].min(t.elapsed() / iters as u32);
        }
    }
    best
}
