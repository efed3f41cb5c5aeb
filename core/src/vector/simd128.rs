//! The distance kernels written with WebAssembly `simd128` intrinsics, for
//! the query component (built with `-C target-feature=+simd128`).
//!
//! The portable loops vectorise well for f32 and i8 rows, but not for f16:
//! WebAssembly has no half-precision converter, and the compiler kept the
//! portable bit-trick conversion one lane at a time, so the HNSW walk over
//! an f16 index spent a third of a search request's CPU time there (a
//! `perf record` of busca-serve under `wrk` at 20,000 shots). Here the bits
//! of eight halves are moved into f32 position with four 32-bit lane
//! operations, and the exponent's rebias (× 2^112, as [`super::f16_to_f32`]
//! does) is folded into the query once per search ([`super::F16Query`]),
//! which also takes the halves' even/odd lane order: per eight halves, five
//! integer operations and no shuffle or rebias multiply.

use std::arch::wasm32::*;

/// Blocks of this many elements are laid out for the kernel in an [`F16Query`]
/// (two of [`load_f16x8`]'s eight).
pub const BLOCK: usize = 16;

/// The scale an [`F16Query`] carries: 2^112, the difference of the f32 and
/// f16 exponent biases (127 − 15).
const REBIAS: f32 = f32::from_bits(0x7780_0000);

/// Eight f16 of `row` at `p`, as f32 scaled by 2^-112: the even-indexed four,
/// then the odd-indexed four. Each 32-bit lane holds an odd half in its high
/// 16 bits and an even one in its low 16; an arithmetic shift right by 3
/// moves a half's exponent and mantissa into f32 position under its sign
/// (copying the sign into bits 30–28, which the mask clears), and the even
/// halves are first shifted up into the high bits. The f32 exponent is then
/// the half's unbiased by 112 too few, exactly for normal and subnormal
/// halves, which the query's scale makes up for (see [`F16Query`]).
#[inline(always)]
unsafe fn load_f16x8(p: *const half::f16) -> (v128, v128) {
    // SAFETY: the caller guarantees 8 readable halves at `p`; wasm loads
    // need no alignment.
    let v = unsafe { v128_load(p.cast::<v128>()) };
    let mask = u32x4_splat(0x8fff_e000);
    let odd = v128_and(i32x4_shr(v, 3), mask);
    let even = v128_and(i32x4_shr(i32x4_shl(v, 16), 3), mask);
    (even, odd)
}

#[inline(always)]
fn hsum(v: v128) -> f32 {
    f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v)
}

/// `query` laid out as [`dot_f16`] reads it: each whole block of
/// [`BLOCK`] elements as its two eights' even elements then odd ones,
/// multiplied by 2^112, the tail as given.
pub fn prepare_f16_query(query: &[f32]) -> Vec<f32> {
    let whole = query.len() - query.len() % BLOCK;
    let mut out = Vec::with_capacity(query.len());
    for eight in query[..whole].chunks_exact(8) {
        out.extend(eight.iter().step_by(2).map(|x| x * REBIAS));
        out.extend(eight.iter().skip(1).step_by(2).map(|x| x * REBIAS));
    }
    out.extend_from_slice(&query[whole..]);
    out
}

/// f32 query (made by [`prepare_f16_query`]) · f16 row; equal lengths (the
/// caller asserts it). Each product is the exact one (the query's 2^112
/// times the half's 2^-112, powers of two), rounded once, as with a
/// converted half; only the order of the sums differs.
pub fn dot_f16(prepared: &[f32], row: &[half::f16]) -> f32 {
    let n = prepared.len().min(row.len());
    let (pq, pr) = (prepared.as_ptr(), row.as_ptr());
    let mut acc = [f32x4_splat(0.0); 4];
    let mut i = 0;
    while i + BLOCK <= n {
        // SAFETY: i + 16 ≤ n for both slices.
        unsafe {
            let (a, b) = load_f16x8(pr.add(i));
            let (c, d) = load_f16x8(pr.add(i + 8));
            acc[0] = f32x4_add(acc[0], f32x4_mul(v128_load(pq.add(i).cast()), a));
            acc[1] = f32x4_add(acc[1], f32x4_mul(v128_load(pq.add(i + 4).cast()), b));
            acc[2] = f32x4_add(acc[2], f32x4_mul(v128_load(pq.add(i + 8).cast()), c));
            acc[3] = f32x4_add(acc[3], f32x4_mul(v128_load(pq.add(i + 12).cast()), d));
        }
        i += BLOCK;
    }
    let mut sum = hsum(f32x4_add(f32x4_add(acc[0], acc[1]), f32x4_add(acc[2], acc[3])));
    for k in i..n {
        sum += prepared[k] * super::f16_to_f32(row[k].to_bits());
    }
    sum
}
