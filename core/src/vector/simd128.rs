//! The distance kernels written with WebAssembly `simd128` intrinsics, for
//! the query component (built with `-C target-feature=+simd128`).
//!
//! Written by hand because the compiler did not make good loops of the
//! portable ones here: an exact i8 scan of the bench index (20k × 768)
//! took 13.3–17.5 ms in the wasmtime CLI with the portable loop, 3.1–4.2 ms
//! with a hand-written f32-query kernel (`bench_search` built for
//! wasm32-wasip2, builds alternated). The rows of an f16 index are held as
//! 16-bit fixed point ([`super::fixed16`]) and i8 rows are scored against
//! the query quantized to i16, so both integer kernels are
//! `i32x4.dot_i16x8_s`, eight i16 products summed in pairs into four i32
//! lanes (`pmaddwd` once compiled); i8 rows are sign-extended to i16 first.
//! That took the i8 scan from 3.0 to 1.2–1.3 ms (three alternated runs:
//! 3.05 / 3.01 / 2.99 → 1.31 / 1.18 / 1.24 ms; f16's, 1.5–1.9 ms, did not
//! change), where the f32-query kernel spent a widening, a conversion, a
//! multiply and an add per element.
//!
//! What keeps the f32 scan short of native is the vector width and the
//! compiler, not memory (the 61 MB of the bench matrix fit this machine's
//! 260 MB L3): in alternated runs of a scratch program (not kept) the same
//! loop took 2.3–2.5 ms natively with AVX2, 2.6–3.9 ms natively in SSE
//! (128-bit, as here) and 3.5–8.5 ms here. Cranelift emits about 28
//! instructions per 64 bytes of row (an address computation for each load)
//! where the native SSE loop has 16; unrolling further only made it keep
//! the loaded values on the stack, and touching rows ahead (WebAssembly has
//! no prefetch) changed nothing. The address computations come from LLVM:
//! it does not fold a load's constant offset into the WebAssembly load's
//! offset field (llvm/llvm-project#187367), so every load after the first
//! of an iteration is `i32.const 16·j; i32.add; v128.load` (`wasm-tools
//! print`), and Cranelift cannot fold that 32-bit, wrapping add into an x86
//! address. The IR already has each offset as `getelementptr inbounds nuw`
//! from the row pointer (`--emit=llvm-ir`, rustc 1.95); splitting the
//! pointer arithmetic (`pa.add(i).add(8 * j)`) or stepping the row pointers
//! themselves left the WebAssembly as it was. Nor are they what limits the
//! scans: with the offsets folded after linking (binaryen 132's `wasm-opt
//! --optimize-added-constants --low-memory-unused` on the core module of
//! `bench_search`, so each load is `v128.load offset=16·j`), the exact and
//! graph searches ran as before, within the run-to-run spread (f16 exact
//! scan 1.69 / 1.82 / 2.08 ms against 1.62 / 1.90 / 1.77 ms for the same
//! module passed through wasm-opt without the pass, alternated; by hand,
//! the core module spliced back into the component by a script not kept).
//! Scoring
//! four rows per pass of the query (a scratch kernel, 20k fixed16 rows,
//! each scan after 10 ms idle) was no faster either: 4.55–4.89 ms against
//! 3.96–4.56 ms row by row.
//!
//! Each loop iteration multiplies eight vectors, sums them as a tree and
//! adds the sum to one accumulator. The hosts run the component with epoch
//! interruption, which checks a counter at every loop head and calls into
//! the host when it has passed; WebAssembly vectors do not survive a call
//! in a register, so Cranelift kept every accumulator live across the
//! check on the stack, storing and reloading it each iteration. With four
//! accumulators of one vector each that cost 20–45% (a scratch program in
//! the wasmtime CLI with `-W timeout`: i16 rows 0.161–0.168 → 0.131–0.135
//! ms for 2,000 × 768, f32 0.170 → 0.124–0.128 ms for 1,000; without epoch
//! checks the two shapes ran alike). In busca-serve, under
//! `busca-host-bench`, builds alternated twice: the graph walk at 20k
//! shots 1.06 / 1.08 → 0.97 / 0.91 ms (f16 index) and 1.93 / 1.69 → 1.61 /
//! 1.55 ms (f32); `bench_search` with `-W timeout`, three runs alternated:
//! f16 exact 1.99 / 2.36 / 2.24 → 1.70 / 1.94 / 1.86 ms.
//!
//! Every function takes slices of equal length (the callers assert it).

use std::arch::wasm32::*;

/// f32 elements per iteration: eight products of four lanes.
const STEP_F32: usize = 32;

/// i16 (or i8) elements per iteration: eight `i32x4.dot_i16x8_s` of eight.
const STEP: usize = 64;

/// The sum of eight vectors as a balanced tree (`add`: the lane type's).
#[inline(always)]
fn tree(v: [v128; 8], add: impl Fn(v128, v128) -> v128) -> v128 {
    add(add(add(v[0], v[1]), add(v[2], v[3])), add(add(v[4], v[5]), add(v[6], v[7])))
}

/// The wrapping sum of an accumulator's four i32 lanes.
#[inline(always)]
fn hsum_i32(s: v128) -> i32 {
    i32x4_extract_lane::<0>(s)
        .wrapping_add(i32x4_extract_lane::<1>(s))
        .wrapping_add(i32x4_extract_lane::<2>(s))
        .wrapping_add(i32x4_extract_lane::<3>(s))
}

/// f32 · f32.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = f32x4_splat(0.0);
    let mut i = 0;
    while i + STEP_F32 <= n {
        // SAFETY: i + 32 ≤ n for both slices; wasm loads need no alignment.
        let products = std::array::from_fn(|j| unsafe {
            f32x4_mul(v128_load(pa.add(i + 4 * j).cast()), v128_load(pb.add(i + 4 * j).cast()))
        });
        acc = f32x4_add(acc, tree(products, |x, y| f32x4_add(x, y)));
        i += STEP_F32;
    }
    while i + 4 <= n {
        // SAFETY: i + 4 ≤ n.
        let (x, y) = unsafe { (v128_load(pa.add(i).cast()), v128_load(pb.add(i).cast())) };
        acc = f32x4_add(acc, f32x4_mul(x, y));
        i += 4;
    }
    let mut sum = f32x4_extract_lane::<0>(acc) + f32x4_extract_lane::<1>(acc) + f32x4_extract_lane::<2>(acc)
        + f32x4_extract_lane::<3>(acc);
    for k in i..n {
        sum += a[k] * b[k];
    }
    sum
}

/// i16 query · i8 row, summed with wrapping in i32: sixteen bytes of the
/// row at a time, sign-extended to two i16x8 and multiplied and added in
/// pairs with the query by `i32x4.dot_i16x8_s`, as the fixed-point rows are.
pub fn dot_i8(q: &[i16], row: &[i8]) -> i32 {
    let n = q.len().min(row.len());
    let (pq, pr) = (q.as_ptr(), row.as_ptr());
    // SAFETY (both closures): callers pass o + 16 ≤ n.
    let wide = |o: usize| {
        let bytes = unsafe { v128_load(pr.add(o).cast()) };
        (i16x8_extend_low_i8x16(bytes), i16x8_extend_high_i8x16(bytes))
    };
    let query = |o: usize| unsafe { (v128_load(pq.add(o).cast()), v128_load(pq.add(o + 8).cast())) };
    let mut acc = i32x4_splat(0);
    let mut i = 0;
    while i + STEP <= n {
        let mut sums = [i32x4_splat(0); 8];
        for k in 0..4 {
            let ((lo, hi), (q0, q1)) = (wide(i + 16 * k), query(i + 16 * k));
            (sums[2 * k], sums[2 * k + 1]) = (i32x4_dot_i16x8(q0, lo), i32x4_dot_i16x8(q1, hi));
        }
        acc = i32x4_add(acc, tree(sums, |x, y| i32x4_add(x, y)));
        i += STEP;
    }
    while i + 16 <= n {
        let ((lo, hi), (q0, q1)) = (wide(i), query(i));
        acc = i32x4_add(acc, i32x4_add(i32x4_dot_i16x8(q0, lo), i32x4_dot_i16x8(q1, hi)));
        i += 16;
    }
    let mut sum = hsum_i32(acc);
    for k in i..n {
        sum = sum.wrapping_add(i32::from(q[k]) * i32::from(row[k]));
    }
    sum
}

/// i16 · i16, summed with wrapping in i32; equal lengths (the caller asserts it).
pub fn dot_i16(a: &[i16], b: &[i16]) -> i32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    // SAFETY: callers pass o + 8 ≤ n for both slices.
    let dot8 = |o: usize| unsafe { i32x4_dot_i16x8(v128_load(pa.add(o).cast()), v128_load(pb.add(o).cast())) };
    let mut acc = i32x4_splat(0);
    let mut i = 0;
    while i + STEP <= n {
        acc = i32x4_add(acc, tree(std::array::from_fn(|j| dot8(i + 8 * j)), |x, y| i32x4_add(x, y)));
        i += STEP;
    }
    while i + 8 <= n {
        acc = i32x4_add(acc, dot8(i));
        i += 8;
    }
    let mut sum = hsum_i32(acc);
    for k in i..n {
        sum = sum.wrapping_add(i32::from(a[k]) * i32::from(b[k]));
    }
    sum
}
