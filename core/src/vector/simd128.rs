//! The distance kernels written with WebAssembly `simd128` intrinsics, for
//! the query component (built with `-C target-feature=+simd128`).
//!
//! Written by hand because the compiler did not make good loops of the
//! portable ones here. The i8 one most of all: an exact i8 scan of the bench
//! index (20k × 768) took 13.3–17.5 ms in the wasmtime CLI with the portable
//! loop and takes 3.1–4.2 ms with this one (`bench_search` built for
//! wasm32-wasip2, old and new builds alternated, four runs each). The f32
//! one changed nothing measurable there (8–9.5 ms either way: that scan
//! reads 61 MB, more than this machine's share of cache, so memory bounds
//! it); it is here so that every element type has the same kind of kernel.
//! The rows of an f16 index are held as 16-bit fixed point
//! ([`super::fixed16`]); their dot product is `i32x4.dot_i16x8_s`, eight
//! i16 products summed in pairs into four i32 lanes (`pmaddwd` once
//! compiled).
//!
//! Every function takes slices of equal length (the callers assert it).

use std::arch::wasm32::*;

/// i16 elements per iteration: four independent accumulators of eight.
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

/// f32 query · i8 row (not rescaled): sixteen bytes of the row per step,
/// widened to four f32x4 (sign extension to i16, to i32, then converted).
pub fn dot_i8(q: &[f32], row: &[i8]) -> f32 {
    let n = q.len().min(row.len());
    let (pq, pr) = (q.as_ptr(), row.as_ptr());
    let mut acc = [f32x4_splat(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 ≤ n for both slices.
        let bytes = unsafe { v128_load(pr.add(i).cast()) };
        let (lo, hi) = (i16x8_extend_low_i8x16(bytes), i16x8_extend_high_i8x16(bytes));
        let rows = [
            i32x4_extend_low_i16x8(lo),
            i32x4_extend_high_i16x8(lo),
            i32x4_extend_low_i16x8(hi),
            i32x4_extend_high_i16x8(hi),
        ];
        for (j, (s, r)) in acc.iter_mut().zip(rows).enumerate() {
            // SAFETY: as above.
            let x = unsafe { v128_load(pq.add(i + 4 * j).cast()) };
            *s = f32x4_add(*s, f32x4_mul(x, f32x4_convert_i32x4(r)));
        }
        i += 16;
    }
    let mut sum = hsum(sum4(acc));
    for k in i..n {
        sum += q[k] * f32::from(row[k]);
    }
    sum
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
    let s = i32x4_add(i32x4_add(acc[0], acc[1]), i32x4_add(acc[2], acc[3]));
    let mut sum = i32x4_extract_lane::<0>(s)
        .wrapping_add(i32x4_extract_lane::<1>(s))
        .wrapping_add(i32x4_extract_lane::<2>(s))
        .wrapping_add(i32x4_extract_lane::<3>(s));
    for k in i..n {
        sum = sum.wrapping_add(i32::from(a[k]) * i32::from(b[k]));
    }
    sum
}
