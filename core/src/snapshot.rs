//! An allocator for pre-initialized (wizer) components: memory freed while the
//! initializer runs is zeroed, so that the snapshot does not carry it.
//!
//! A snapshot stores every non-zero byte of linear memory. Loading a bundle
//! reads whole files (the usearch index, the JSON tables) into buffers that are
//! parsed and then freed; a freed block keeps its bytes, so without this the
//! snapshot held the 18,400-shot bundle about twice over (the parsed tables
//! and the freed file buffers). Both guest components (the query component and
//! the nn provider) declare it as their global allocator and wrap their
//! initializer in [`ScrubFreed::scrubbing`]; outside it, it is the system
//! allocator with one relaxed load per free.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// An allocator (`System` unless said otherwise) that zeroes freed blocks
/// while [`ScrubFreed::scrubbing`] runs.
pub struct ScrubFreed<A = System> {
    inner: A,
    on: AtomicBool,
}

impl ScrubFreed<System> {
    /// The system allocator, off until [`ScrubFreed::scrubbing`].
    pub const fn system() -> Self {
        ScrubFreed::new(System)
    }
}

impl<A> ScrubFreed<A> {
    /// Wraps `inner`, off until [`ScrubFreed::scrubbing`].
    pub const fn new(inner: A) -> Self {
        ScrubFreed { inner, on: AtomicBool::new(false) }
    }

    /// Runs `f` with freed memory zeroed.
    pub fn scrubbing<R>(&self, f: impl FnOnce() -> R) -> R {
        self.on.store(true, Ordering::Relaxed);
        let out = f();
        self.on.store(false, Ordering::Relaxed);
        out
    }

    fn on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }
}

// SAFETY: every block comes from `inner` and goes back to it with the layout
// it was allocated with; zeroing writes only within a block still owned.
unsafe impl<A: GlobalAlloc> GlobalAlloc for ScrubFreed<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { self.inner.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.on() {
            unsafe { ptr.write_bytes(0, layout.size()) };
            // The zeroes are stored to memory about to be freed, which the
            // optimiser treats as dead stores and removes; an opaque use of
            // the block keeps them.
            std::hint::black_box(ptr);
        }
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.on() {
            return unsafe { self.inner.realloc(ptr, layout, new_size) };
        }
        // A moving realloc frees the old block behind our back: do it by hand.
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        let new = unsafe { self.inner.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// The system allocator, counting the blocks that came back zeroed and
    /// those that did not.
    #[derive(Default)]
    struct Witness {
        zeroed: AtomicUsize,
        dirty: AtomicUsize,
    }

    unsafe impl GlobalAlloc for Witness {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            let bytes = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            let counter = if bytes.iter().all(|&b| b == 0) { &self.zeroed } else { &self.dirty };
            counter.fetch_add(1, Ordering::Relaxed);
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[test]
    fn freed_blocks_are_zeroed_only_while_scrubbing() {
        let a = ScrubFreed::new(Witness::default());
        let layout = Layout::from_size_align(4096, 8).unwrap();
        let filled = || unsafe {
            let p = a.alloc(layout);
            p.write_bytes(0xAB, layout.size());
            p
        };
        unsafe {
            a.dealloc(filled(), layout);
            assert_eq!(a.inner.dirty.load(Ordering::Relaxed), 1, "off: freed as it is");
            a.scrubbing(|| a.dealloc(filled(), layout));
            assert_eq!(a.inner.zeroed.load(Ordering::Relaxed), 1, "on: freed zeroed");
            // A growing realloc moves the contents and frees the old block zeroed.
            let moved = a.scrubbing(|| a.realloc(filled(), layout, 3 * 4096));
            assert_eq!(a.inner.zeroed.load(Ordering::Relaxed), 2, "realloc's old block zeroed");
            let kept = std::slice::from_raw_parts(moved, 4096);
            assert!(kept.iter().all(|&b| b == 0xAB), "realloc keeps the contents");
            a.dealloc(moved, Layout::from_size_align(3 * 4096, 8).unwrap());
        }
        assert_eq!(a.inner.dirty.load(Ordering::Relaxed), 2, "after scrubbing, off again");
    }
}
