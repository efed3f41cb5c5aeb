//! The distance kernel written with WebAssembly `simd128` intrinsics, for
//! the query component (built with `-C target-feature=+simd128`).
//!
//! The portable loops vectorise well for f32 and i8 rows. The rows of an f16
//! index are held as 16-bit fixed point ([`super::fixed16`]), and their dot
//! product is `i32x4.dot_i16x8_s`: eight i16 products summed in pairs into
//! four i32 lanes, one instruction (`pmaddwd` once compiled). Written by hand
//! because the compiler does not form it from the portable loop.

use std::arch::wasm32::*;

/// Elements per iteration: four independent accumulators of eight.
const STEP: usize = 32;

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
