//! The distance kernels written with WebAssembly `simd128` intrinsics, for
//! the query component (built with `-C target-feature=+simd128`).
//!
//! The portable loops vectorise well for f32 and i8 rows, but not for f16:
//! WebAssembly has no half-precision converter, and the compiler kept the
//! portable bit-trick conversion one lane at a time, so the HNSW walk over
//! an f16 index spent a third of a search request's CPU time there (a
//! `perf record` of busca-serve under `wrk` at 20,000 shots). Here the bits
//! are moved eight lanes at a time and the exponent rebiased four at a time,
//! the same exact conversion as [`super::f16_to_f32`].

use std::arch::wasm32::*;

/// Eight f16 of `row` at `p` widened to two f32x4 vectors: each half's
/// sign, exponent and mantissa moved into f32 position with 16-bit lane
/// operations on all eight at once (`(h & 0x7fff) << 13` and the sign at bit
/// 31, split into its high and low 16 bits), the halves interleaved into
/// 32-bit lanes, and the exponent rebiased by one multiply by 2^112.
#[inline(always)]
unsafe fn load_f16x8(p: *const half::f16) -> (v128, v128) {
    // SAFETY: the caller guarantees 8 readable halves at `p`; wasm loads
    // need no alignment.
    let h = unsafe { v128_load(p.cast::<v128>()) };
    // An arithmetic shift keeps the sign at bit 15 and copies it into bits
    // 14–12, which the mask clears: `sign 000 exponent mantissa[9..3]`.
    let high = v128_and(i16x8_shr(h, 3), u16x8_splat(0x8fff));
    let low = i16x8_shl(h, 13);
    let rebias = f32x4_splat(f32::from_bits(0x7780_0000));
    (
        f32x4_mul(i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(low, high), rebias),
        f32x4_mul(i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(low, high), rebias),
    )
}

#[inline(always)]
fn hsum(v: v128) -> f32 {
    f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v)
}

/// f32 query · f16 row; `query` and `row` have equal lengths (the caller asserts it).
pub fn dot_f16(query: &[f32], row: &[half::f16]) -> f32 {
    const STEP: usize = 16;
    let n = query.len().min(row.len());
    let (pq, pr) = (query.as_ptr(), row.as_ptr());
    let mut acc = [f32x4_splat(0.0); 4];
    let mut i = 0;
    while i + STEP <= n {
        // SAFETY: i + 16 ≤ n for both slices.
        unsafe {
            let (a, b) = load_f16x8(pr.add(i));
            let (c, d) = load_f16x8(pr.add(i + 8));
            acc[0] = f32x4_add(acc[0], f32x4_mul(v128_load(pq.add(i).cast()), a));
            acc[1] = f32x4_add(acc[1], f32x4_mul(v128_load(pq.add(i + 4).cast()), b));
            acc[2] = f32x4_add(acc[2], f32x4_mul(v128_load(pq.add(i + 8).cast()), c));
            acc[3] = f32x4_add(acc[3], f32x4_mul(v128_load(pq.add(i + 12).cast()), d));
        }
        i += STEP;
    }
    let mut sum = hsum(f32x4_add(f32x4_add(acc[0], acc[1]), f32x4_add(acc[2], acc[3])));
    for k in i..n {
        sum += query[k] * super::f16_to_f32(row[k].to_bits());
    }
    sum
}
