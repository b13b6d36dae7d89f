//! A counting global allocator for the test crates that measure memory
//! (`tests/hostile.rs`, `tests/sm_limits.rs`): each includes this file
//! with `#[path]`, so the allocator is theirs alone. Counts are per
//! thread (the test harness runs each test on its own thread).
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    let _ = CURRENT.try_with(|c| {
        let v = c.get() + n;
        c.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v)
            }
        });
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        add(l.size() as isize);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        add(-(l.size() as isize));
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        add(new as isize - l.size() as isize);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// The heap this thread holds after `f`, above what it held before.
pub fn held_after<T>(f: impl FnOnce() -> T) -> (isize, T) {
    let base = CURRENT.with(Cell::get);
    let out = f();
    (CURRENT.with(Cell::get) - base, out)
}

/// The peak heap growth of this thread while `f` runs.
pub fn peak_during<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let base = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get) - base;
    (peak.max(0) as usize, out)
}

/// Heap `value` holds: what dropping it gives back.
pub fn held_by<T>(value: T) -> isize {
    let before = CURRENT.with(Cell::get);
    drop(value);
    before - CURRENT.with(Cell::get)
}
