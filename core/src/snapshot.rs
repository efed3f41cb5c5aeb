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
//! kernel, page faults and TLB shootdowns). Blocks larger than
//! [`ARENA_BLOCK_MAX`] are bump-allocated too, from a second arena taken only
//! when a request first asks for one (an image query's buffers).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Blocks up to this size are bump-allocated from the request arena;
/// larger ones (request bodies, decoded images) from the large-block arena.
pub const ARENA_BLOCK_MAX: usize = 64 << 10;

/// What the large-block arena takes from the inner allocator, once, for the
/// request's first large block (more if that block needs more): enough for
/// an image query's buffers (a 1280×720 photo: about 10 MiB of decoded
/// planes, resampled rows and tensor) in one contiguous range. Blocks past
/// it come from the inner allocator, as they all did before.
pub const LARGE_CHUNK_BYTES: usize = 16 << 20;

/// Every arena block starts on a multiple of this, as the system allocator's
/// do. Packed to their own alignment, an exact scan's quantized query sat 4
/// bytes past a 16-byte boundary and every 16-byte SIMD load of it straddled
/// one: busca-serve, 20k rows, two servers A/B on alternating requests
/// (`bench/ab_serve.py`), exact scan p50 6.44 / 6.12 ms → 5.94 / 5.80 ms, a
/// graph walk 1.38 → 1.24 ms.
const MIN_ALIGN: usize = 16;

/// A bump region `[start, end)` and its first free byte (all 0: none).
struct Bump {
    start: AtomicUsize,
    next: AtomicUsize,
    end: AtomicUsize,
}

impl Bump {
    const fn new() -> Self {
        Bump { start: AtomicUsize::new(0), next: AtomicUsize::new(0), end: AtomicUsize::new(0) }
    }

    fn set(&self, start: usize, len: usize) {
        self.start.store(start, Ordering::Relaxed);
        self.end.store(start + len, Ordering::Relaxed);
        self.next.store(start, Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.next.load(Ordering::Relaxed) != 0
    }

    fn contains(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.start.load(Ordering::Relaxed) && p < self.end.load(Ordering::Relaxed)
    }

    /// A block of `layout` from the region, or null when it does not fit.
    fn take(&self, layout: Layout) -> *mut u8 {
        let next = self.next.load(Ordering::Relaxed);
        if next == 0 {
            return std::ptr::null_mut();
        }
        let at = next.next_multiple_of(layout.align().max(MIN_ALIGN));
        match at.checked_add(layout.size()) {
            Some(end) if end <= self.end.load(Ordering::Relaxed) => {
                self.next.store(end, Ordering::Relaxed);
                at as *mut u8
            }
            _ => std::ptr::null_mut(),
        }
    }

    /// Gives a block back: only the last one returns to the free space.
    fn give_back(&self, ptr: *mut u8, size: usize) {
        if ptr as usize + size == self.next.load(Ordering::Relaxed) {
            self.next.store(ptr as usize, Ordering::Relaxed);
        }
    }

    /// Resizes the last block in place; false for any other block, or when
    /// the new size does not fit.
    fn resize_last(&self, ptr: *mut u8, old: usize, new: usize) -> bool {
        let end = ptr as usize + new;
        if ptr as usize + old == self.next.load(Ordering::Relaxed) && end <= self.end.load(Ordering::Relaxed) {
            self.next.store(end, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// An allocator (`System` unless said otherwise) that zeroes freed blocks
/// while [`ScrubFreed::scrubbing`] runs, and bump-allocates a request's
/// blocks after [`ScrubFreed::request_arena`].
pub struct ScrubFreed<A = System> {
    inner: A,
    on: AtomicBool,
    /// Blocks up to [`ARENA_BLOCK_MAX`]: taken at the end of the initializer.
    small: Bump,
    /// Larger blocks: [`LARGE_CHUNK_BYTES`] taken from the inner allocator
    /// when the first one is asked for.
    large: Bump,
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
        ScrubFreed { inner, on: AtomicBool::new(false), small: Bump::new(), large: Bump::new() }
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

    #[cfg(test)]
    fn in_arena(&self, ptr: *mut u8) -> bool {
        self.small.contains(ptr) || self.large.contains(ptr)
    }
}

impl<A: GlobalAlloc> ScrubFreed<A> {
    /// From now on, blocks up to [`ARENA_BLOCK_MAX`] bytes come from an arena
    /// of `bytes` taken from the inner allocator now (still zero, so a
    /// snapshot taken next does not store it); past its end, from the inner
    /// allocator. Larger blocks come from the large-block arena, taken when
    /// a request first needs it. Call it last in the initializer; calling it
    /// again does nothing.
    ///
    /// For single-threaded guests only: the bump pointers are read and moved
    /// without a compare-and-swap (WebAssembly components without threads,
    /// where the atomics are plain loads and stores).
    pub fn request_arena(&self, bytes: usize) {
        if self.small.is_set() {
            return;
        }
        let Ok(layout) = Layout::from_size_align(bytes.max(1), 4096) else { return };
        // SAFETY: a non-zero-sized layout; the block is never freed.
        let start = unsafe { self.inner.alloc_zeroed(layout) } as usize;
        if start != 0 {
            self.small.set(start, layout.size());
        }
    }

    /// A block of `layout` from the arenas, or null (then the inner
    /// allocator serves it).
    ///
    /// Large blocks are why there are two: the inner allocator put them in
    /// the snapshot's free holes, splitting a hole and writing the headers
    /// of what was left, several separate dirty ranges per block; an image
    /// query wrote more than 32 ranges, and the host then dropped the rest of
    /// the memory (a 66 MB `madvise` after every image request, `strace`)
    /// and the next requests faulted it in again. From one contiguous chunk
    /// they are one range. The chunk is taken lazily rather than reserved in
    /// the initializer, so a request that needs none pays nothing and the
    /// instance's initial memory stays as small as the bundle allows.
    fn arena_alloc(&self, layout: Layout) -> *mut u8 {
        if !self.small.is_set() {
            return std::ptr::null_mut();
        }
        if layout.size() <= ARENA_BLOCK_MAX {
            return self.small.take(layout);
        }
        if self.large.is_set() {
            // One chunk per instance: a block that does not fit goes to the
            // inner allocator. Taking a second chunk would forget the
            // first's range, and a block freed from it would then be handed
            // to the inner allocator, which never allocated it.
            return self.large.take(layout);
        }
        let bytes = LARGE_CHUNK_BYTES.max(layout.size().next_multiple_of(4096) + layout.align());
        let Ok(chunk) = Layout::from_size_align(bytes, 4096) else { return std::ptr::null_mut() };
        // SAFETY: a non-zero-sized layout; the chunk is never freed (the
        // instance ends with the request).
        let start = unsafe { self.inner.alloc(chunk) } as usize;
        if start == 0 {
            return std::ptr::null_mut();
        }
        self.large.set(start, bytes);
        self.large.take(layout)
    }
}

// SAFETY: every block outside the arenas comes from `inner` and goes back to
// it with the layout it was allocated with; arena blocks never overlap (a
// bump pointer only moves back over the last block, when it is freed);
// zeroing writes only within a block still owned.
unsafe impl<A: GlobalAlloc> GlobalAlloc for ScrubFreed<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.arena_alloc(layout);
        if !p.is_null() {
            return p;
        }
        unsafe { self.inner.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.arena_alloc(layout);
        if !p.is_null() {
            // A block freed last and handed out again keeps its bytes, and a
            // large chunk comes from the inner allocator as it is.
            unsafe { p.write_bytes(0, layout.size()) };
            return p;
        }
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.small.contains(ptr) {
            // Only the last block goes back; the rest wait for the instance's end.
            return self.small.give_back(ptr, layout.size());
        }
        if self.large.contains(ptr) {
            return self.large.give_back(ptr, layout.size());
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
        if self.small.contains(ptr) {
            // The last block grows or shrinks in place while it fits.
            if new_size <= ARENA_BLOCK_MAX && self.small.resize_last(ptr, layout.size(), new_size) {
                return ptr;
            }
        } else if self.large.contains(ptr) {
            if self.large.resize_last(ptr, layout.size(), new_size) {
                return ptr;
            }
        } else if !self.on() {
            return unsafe { self.inner.realloc(ptr, layout, new_size) };
        }
        // A moving realloc frees the old block behind our back: do it by hand.
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        let new = unsafe { self.alloc(new_layout) };
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
            assert_eq!(second as usize, (first as usize + 100).next_multiple_of(MIN_ALIGN), "bump allocated, in order");
            assert_eq!(first as usize % MIN_ALIGN, 0, "on 16-byte boundaries, as malloc's");
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
            // A block grown past the small blocks' limit moves to the large arena.
            let promoted = a.realloc(grown, small(4000), ARENA_BLOCK_MAX + 1);
            assert!(a.large.contains(promoted) && !a.small.contains(promoted));
            assert!(std::slice::from_raw_parts(promoted, 24).iter().all(|&b| b == 7), "moved with its contents");
            a.dealloc(promoted, small(ARENA_BLOCK_MAX + 1));
            assert_eq!(a.inner.dirty.load(Ordering::Relaxed) + a.inner.zeroed.load(Ordering::Relaxed), 1, "never freed to the inner allocator");
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

    #[test]
    fn large_blocks_of_a_request_sit_together_in_a_chunk_taken_when_needed() {
        let a = ScrubFreed::new(Witness::default());
        let layout = |n: usize| Layout::from_size_align(n, 8).unwrap();
        let big = layout(3 << 20);
        unsafe {
            // Before the initializer's end, large blocks are the inner allocator's.
            let early = a.alloc(big);
            assert!(!a.in_arena(early));
            a.dealloc(early, big);
            assert_eq!(a.inner.dirty.load(Ordering::Relaxed) + a.inner.zeroed.load(Ordering::Relaxed), 1);
            a.request_arena(1 << 20);
            assert!(!a.large.is_set(), "no chunk until a request asks for a large block");
            let first = a.alloc(big);
            let second = a.alloc_zeroed(big);
            assert!(a.large.contains(first) && a.large.contains(second));
            assert_eq!(second as usize, first as usize + big.size(), "one contiguous range");
            assert!(std::slice::from_raw_parts(second, big.size()).iter().all(|&b| b == 0));
            // The last block grows in place, and its room is reused once freed.
            let grown = a.realloc(second, big, 4 << 20);
            assert_eq!(grown, second);
            a.dealloc(grown, layout(4 << 20));
            assert_eq!(a.alloc(big), second, "the last block's room is reused");
            // Nothing went back to the inner allocator.
            assert_eq!(a.inner.dirty.load(Ordering::Relaxed) + a.inner.zeroed.load(Ordering::Relaxed), 1);
            // Past the chunk, blocks are the inner allocator's, and go back to it.
            let huge = layout(LARGE_CHUNK_BYTES);
            let h = a.alloc(huge);
            assert!(!a.in_arena(h), "no second chunk");
            a.dealloc(h, huge);
            assert_eq!(a.inner.dirty.load(Ordering::Relaxed) + a.inner.zeroed.load(Ordering::Relaxed), 2);
            // A block freed from the chunk after that still stays out of it.
            a.dealloc(first, big);
            assert_eq!(a.inner.dirty.load(Ordering::Relaxed) + a.inner.zeroed.load(Ordering::Relaxed), 2);
        }
        // A first large block bigger than a chunk gets a chunk of its size.
        let b = ScrubFreed::new(Witness::default());
        unsafe {
            b.request_arena(1 << 20);
            let huge = layout(LARGE_CHUNK_BYTES + 1);
            let h = b.alloc(huge);
            assert!(b.large.contains(h) && b.large.contains(h.add(huge.size() - 1)));
            h.write_bytes(1, huge.size());
        }
    }
}
