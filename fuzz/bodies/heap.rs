//! A counting global allocator: the peak heap one thread holds while a
//! closure runs, so that the role bodies can assert a heap budget per
//! input (memory amplification is then a fuzz finding, not a review
//! finding).
//!
//! Each binary that runs such a body declares it (the fuzz targets' mains,
//! the test files that run the bodies):
//!
//! ```ignore
//! #[global_allocator]
//! static HEAP: heap::Counting = heap::Counting;
//! ```
//!
//! Counts are per thread (the test harness runs tests in parallel), in
//! const-initialised thread-locals without destructors, which never
//! allocate. [`measure`] refuses to run when the allocator is not
//! installed, so that a binary without it cannot pass silently.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use xmpp_sansio::xml::Limits;

/// The system allocator, counting each thread's live bytes and their
/// peak.
pub struct Counting;

thread_local! {
    /// Live bytes allocated minus freed by this thread (it may go below
    /// zero when it frees what another thread allocated).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last [`measure`] started.
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    // `try_with`: nothing to count while the thread's locals are gone.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the counting
// touches only const-initialised thread-locals, which do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f` and returns its result with the most heap this thread held
/// at once while it ran, above what it held before.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    let probe = std::hint::black_box(vec![0u8; 4096]);
    let installed = LIVE.with(Cell::get) - before >= 4096;
    drop(probe);
    assert!(
        installed,
        "heap::Counting is not the global allocator of this binary"
    );
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - start).max(0) as usize)
}

/// The heap one input may make a role hold with the default limits: the
/// reader's per-element heap budget, the bytes of one element held
/// (buffered or held while the host answers), and slack for the machine
/// itself and the driver.
pub fn heap_budget() -> usize {
    let limits = Limits::default();
    limits.max_element_heap + limits.max_element_bytes + 256 * 1024
}

/// Runs `f` (one input through a role) and panics when it held more heap
/// than [`heap_budget`].
pub fn within_budget<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let (out, peak) = measure(f);
    let budget = heap_budget();
    assert!(
        peak <= budget,
        "{what}: peak heap {peak} bytes, over the budget of {budget}"
    );
    out
}
