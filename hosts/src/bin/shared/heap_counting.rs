//! A counting global allocator for the tools that measure memory
//! (`xmpp-server-async --stats`): the system allocator, with the bytes
//! live counted (two relaxed atomic operations per allocation). RSS also
//! counts the allocator's free lists and fragmentation; the live heap is
//! what the program holds.
//!
//! Included with `#[path]` (the library forbids unsafe code; a
//! `GlobalAlloc` is an unsafe impl) by `xmpp-server-async` and by the test
//! `hosts/tests/idle_memory.rs`, which checks what it counts (a session's
//! heap, given back when the session ends).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

/// The system allocator, counting.
#[derive(Debug)]
pub struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY (of the impl, which only forwards): every method hands its
// arguments to `System` unchanged and returns what it returns; the
// counters do not touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received (the caller's contract).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

/// Bytes allocated and not freed now.
pub fn live() -> u64 {
    LIVE.load(Ordering::Relaxed).max(0) as u64
}
