#![no_main]

// The server body it reuses measures heap in its own runs.
#[allow(dead_code)]
#[path = "../bodies/heap.rs"]
mod heap;

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

#[allow(dead_code)]
#[path = "../bodies/misbehaving_host.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::run(data));
