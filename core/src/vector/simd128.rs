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
//! no prefetch) changed nothing.
//!
//! Every function takes slices of equal length (the callers assert it).

use std::arch::wasm32::*;

/// i16 (or i8) elements per iteration: four independent accumulators of eight.
const STEP: usize = 32;

/// f32 elements per iteration: four independent accumulators of four. More
/// do not fit Cranelift's sixteen xmm registers beside the loaded values:
/// with eight it kept them on the stack, storing and reloading each one every
/// iteration (`wasmtime objdump`).
const STEP_F32: usize = 16;

#[inline(always)]
fn hsum(v: v128) -> f32 {
    f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v)
}

#[inline(always)]
fn sum4(acc: [v128; 4]) -> v128 {
    f32x4_add(f32x4_add(acc[0], acc[1]), f32x4_add(acc[2], acc[3]))
}

/// f32 · f32.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [f32x4_splat(0.0); 4];
    let mut i = 0;
    while i + STEP_F32 <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            // SAFETY: i + 16 ≤ n for both slices; wasm loads need no alignment.
            let (x, y) = unsafe { (v128_load(pa.add(i + 4 * j).cast()), v128_load(pb.add(i + 4 * j).cast())) };
            *s = f32x4_add(*s, f32x4_mul(x, y));
        }
        i += STEP_F32;
    }
    while i + 4 <= n {
        // SAFETY: i + 4 ≤ n.
        let (x, y) = unsafe { (v128_load(pa.add(i).cast()), v128_load(pb.add(i).cast())) };
        acc[0] = f32x4_add(acc[0], f32x4_mul(x, y));
        i += 4;
    }
    let mut sum = hsum(sum4(acc));
    for k in i..n {
        sum += a[k] * b[k];
    }
    sum
}

/// i16 query · i8 row, summed with wrapping in i32: sixteen bytes of the
/// row per step, sign-extended to two i16x8 and multiplied and added in
/// pairs with the query by `i32x4.dot_i16x8_s`, as the fixed-point rows are.
pub fn dot_i8(q: &[i16], row: &[i8]) -> i32 {
    let n = q.len().min(row.len());
    let (pq, pr) = (q.as_ptr(), row.as_ptr());
    let mut acc = [i32x4_splat(0); 4];
    let mut i = 0;
    while i + STEP <= n {
        for half in 0..2 {
            let o = i + 16 * half;
            // SAFETY: o + 16 ≤ n for both slices.
            let (bytes, q0, q1) = unsafe {
                (v128_load(pr.add(o).cast()), v128_load(pq.add(o).cast()), v128_load(pq.add(o + 8).cast()))
            };
            let (lo, hi) = (i16x8_extend_low_i8x16(bytes), i16x8_extend_high_i8x16(bytes));
            acc[2 * half] = i32x4_add(acc[2 * half], i32x4_dot_i16x8(q0, lo));
            acc[2 * half + 1] = i32x4_add(acc[2 * half + 1], i32x4_dot_i16x8(q1, hi));
        }
        i += STEP;
    }
    let mut sum = hsum_i32(acc);
    for k in i..n {
        sum = sum.wrapping_add(i32::from(q[k]) * i32::from(row[k]));
    }
    sum
}

/// The wrapping sum of four accumulators' lanes.
#[inline(always)]
fn hsum_i32(acc: [v128; 4]) -> i32 {
    let s = i32x4_add(i32x4_add(acc[0], acc[1]), i32x4_add(acc[2], acc[3]));
    i32x4_extract_lane::<0>(s)
        .wrapping_add(i32x4_extract_lane::<1>(s))
        .wrapping_add(i32x4_extract_lane::<2>(s))
        .wrapping_add(i32x4_extract_lane::<3>(s))
}

/// i16 · i16, summed with wrapping in i32; equal lengths (the caller asserts it).
pub fn dot_i16(a: &[i16], b: &[i16]) -> i32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [i32x4_splat(0); 4];
    let mut i = 0;
    while i + STEP <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            // SAFETY: i + 32 ≤ n for both slices; wasm loads need no alignment.
            let (x, y) = unsafe { (v128_load(pa.add(i + 8 * j).cast()), v128_load(pb.add(i + 8 * j).cast())) };
            *s = i32x4_add(*s, i32x4_dot_i16x8(x, y));
        }
        i += STEP;
    }
    let mut sum = hsum_i32(acc);
    for k in i..n {
        sum = sum.wrapping_add(i32::from(a[k]) * i32::from(b[k]));
    }
    sum
}
