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
//!
//! It also keeps each request's small blocks together: after
//! [`ScrubFreed::request_arena`] (called at the end of the initializer), blocks
//! up to [`ARENA_BLOCK_MAX`] bytes are bump-allocated from one contiguous,
//! still-zero arena, and freeing one returns it only when it is the last.
//! An instance serves one request and is thrown away, so nothing is lost;
//! what is won is locality. A host with a pooling allocator resets the pages
//! a request wrote by finding them with Linux's `PAGEMAP_SCAN`, which reports
//! at most 32 separate dirty ranges (wasmtime 48): the system allocator
//! scattered a search request's blocks over the snapshot's free holes, past
//! that limit, and the host then dropped the whole rest of the memory, the
//! index's pages with it, to fault them in again on the next request (a
//! `perf record` of busca-serve under `wrk`: nearly half the CPU time in the
//! kernel, page faults and TLB shootdowns).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Blocks larger than this always come from the inner allocator (request
/// bodies, decoded images), which frees them for real.
pub const ARENA_BLOCK_MAX: usize = 64 << 10;

/// An allocator (`System` unless said otherwise) that zeroes freed blocks
/// while [`ScrubFreed::scrubbing`] runs, and bump-allocates small blocks from
/// an arena after [`ScrubFreed::request_arena`].
pub struct ScrubFreed<A = System> {
    inner: A,
    on: AtomicBool,
    /// The arena `[start, end)` and its first free byte (all 0: none).
    arena_start: AtomicUsize,
    arena_next: AtomicUsize,
    arena_end: AtomicUsize,
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
        ScrubFreed {
            inner,
            on: AtomicBool::new(false),
            arena_start: AtomicUsize::new(0),
            arena_next: AtomicUsize::new(0),
            arena_end: AtomicUsize::new(0),
        }
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

    fn in_arena(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.arena_start.load(Ordering::Relaxed) && p < self.arena_end.load(Ordering::Relaxed)
    }

    /// A block of `layout` from the arena, or null when it does not fit.
    fn bump(&self, layout: Layout) -> *mut u8 {
        let next = self.arena_next.load(Ordering::Relaxed);
        if next == 0 || layout.size() > ARENA_BLOCK_MAX {
            return std::ptr::null_mut();
        }
        let at = next.next_multiple_of(layout.align());
        match at.checked_add(layout.size()) {
            Some(end) if end <= self.arena_end.load(Ordering::Relaxed) => {
                self.arena_next.store(end, Ordering::Relaxed);
                at as *mut u8
            }
            _ => std::ptr::null_mut(),
        }
    }
}

impl<A: GlobalAlloc> ScrubFreed<A> {
    /// From now on, blocks up to [`ARENA_BLOCK_MAX`] bytes come from an arena
    /// of `bytes` taken from the inner allocator now (still zero, so a
    /// snapshot taken next does not store it); past its end, from the inner
    /// allocator. Call it last in the initializer; calling it again does
    /// nothing.
    ///
    /// For single-threaded guests only: the bump pointer is read and moved
    /// without a compare-and-swap (WebAssembly components without threads,
    /// where the atomics are plain loads and stores).
    pub fn request_arena(&self, bytes: usize) {
        if self.arena_next.load(Ordering::Relaxed) != 0 {
            return;
        }
        let Ok(layout) = Layout::from_size_align(bytes.max(1), 4096) else { return };
        // SAFETY: a non-zero-sized layout; the block is never freed.
        let start = unsafe { self.inner.alloc_zeroed(layout) } as usize;
        if start == 0 {
            return;
        }
        self.arena_start.store(start, Ordering::Relaxed);
        self.arena_end.store(start + layout.size(), Ordering::Relaxed);
        self.arena_next.store(start, Ordering::Relaxed);
    }
}

// SAFETY: every block outside the arena comes from `inner` and goes back to
// it with the layout it was allocated with; arena blocks never overlap (the
// bump pointer only moves back over the last block, when it is freed);
// zeroing writes only within a block still owned.
unsafe impl<A: GlobalAlloc> GlobalAlloc for ScrubFreed<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.bump(layout);
        if !p.is_null() {
            return p;
        }
        unsafe { self.inner.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.bump(layout);
        if !p.is_null() {
            // A block freed last and handed out again keeps its bytes.
            unsafe { p.write_bytes(0, layout.size()) };
            return p;
        }
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.in_arena(ptr) {
            // Only the last block goes back; the rest wait for the instance's end.
            if ptr as usize + layout.size() == self.arena_next.load(Ordering::Relaxed) {
                self.arena_next.store(ptr as usize, Ordering::Relaxed);
            }
            return;
        }
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
        if self.in_arena(ptr) {
            // The last block grows or shrinks in place while it fits.
            let end = ptr as usize + new_size;
            if ptr as usize + layout.size() == self.arena_next.load(Ordering::Relaxed)
                && new_size <= ARENA_BLOCK_MAX
                && end <= self.arena_end.load(Ordering::Relaxed)
            {
                self.arena_next.store(end, Ordering::Relaxed);
                return ptr;
            }
        } else if !self.on() {
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

    #[test]
    fn small_blocks_of_a_request_sit_together_in_the_arena() {
        let a = ScrubFreed::new(Witness::default());
        let small = |n: usize| Layout::from_size_align(n, 8).unwrap();
        unsafe {
            let before = a.alloc(small(100));
            a.request_arena(1 << 20);
            let first = a.alloc(small(100));
            let second = a.alloc(small(24));
            assert_eq!(second as usize, (first as usize + 100).next_multiple_of(8), "bump allocated, in order");
            // Freeing an inner block still reaches the inner allocator.
            a.dealloc(before, small(100));
            assert_eq!(a.inner.dirty.load(Ordering::Relaxed) + a.inner.zeroed.load(Ordering::Relaxed), 1);
            // The last block is given back; an earlier one waits.
            a.dealloc(second, small(24));
            let again = a.alloc_zeroed(small(24));
            assert_eq!(again, second, "the last block's room is reused");
            assert!(std::slice::from_raw_parts(again, 24).iter().all(|&b| b == 0), "and zeroed when asked");
            // The last block grows in place; a moved one keeps its contents.
            again.write_bytes(7, 24);
            let grown = a.realloc(again, small(24), 4000);
            assert_eq!(grown, again);
            let moved = a.realloc(first, small(100), 200);
            assert_ne!(moved, first);
            assert!(std::slice::from_raw_parts(grown, 24).iter().all(|&b| b == 7));
            // Large blocks come from the inner allocator, and go back to it.
            let big = a.alloc(small(ARENA_BLOCK_MAX + 1));
            assert!(!a.in_arena(big));
            a.dealloc(big, small(ARENA_BLOCK_MAX + 1));
            assert_eq!(a.inner.dirty.load(Ordering::Relaxed) + a.inner.zeroed.load(Ordering::Relaxed), 2);
            // Past the arena's end, blocks come from the inner allocator.
            let mut outside = 0;
            for _ in 0..40 {
                if !a.in_arena(a.alloc(small(ARENA_BLOCK_MAX))) {
                    outside += 1;
                }
            }
            assert!(outside >= 40 - 16, "{outside} of 40 blocks of 64 KiB outside a 1 MiB arena");
        }
    }
}
