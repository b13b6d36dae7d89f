#![no_main]

// The peak heap of each input is measured (`heap::within_budget`).
#[path = "../bodies/heap.rs"]
mod heap;

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

// `tests/fuzz_roles.rs` uses a few items the target does not.
#[allow(dead_code)]
#[path = "../bodies/legacy.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
