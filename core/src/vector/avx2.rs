//! The distance kernels with AVX2 and FMA, chosen at run time on x86-64
//! CPUs that have them (`super::avx2_available`): the portable loops compile
//! to SSE2 for the x86-64 baseline, a quarter of what these CPUs can do.
//!
//! Each kernel reads its row once with four independent accumulators (32
//! f32 or 64 integer elements per iteration, enough to keep the loads in
//! flight), so an exact scan runs at the speed memory delivers the rows.
//! The integer rows are multiplied and added in pairs with an i16 query by
//! `vpmaddwd`: the 16-bit fixed-point rows of an f16 index
//! ([`super::fixed16`]) as they are, i8 rows after a sign extension to
//! i16, so they cost half and a quarter of f32's bytes.
//!
//! Safety: every function here must only be called after
//! `super::avx2_available()` returned true, and with slices of equal length
//! (the callers assert it).

use std::arch::x86_64::*;

/// Lanes per accumulator, accumulators per iteration.
const W: usize = 8;
const STEP: usize = 4 * W;

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
}

/// f32 · f32.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot(q: &[f32], row: &[f32]) -> f32 {
    let n = q.len();
    let (pq, pr) = (q.as_ptr(), row.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + STEP <= n {
        for (j, a) in acc.iter_mut().enumerate() {
            let o = i + j * W;
            *a = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(o)), _mm256_loadu_ps(pr.add(o)), *a);
        }
        i += STEP;
    }
    while i + W <= n {
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i)), _mm256_loadu_ps(pr.add(i)), acc[0]);
        i += W;
    }
    let mut sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for k in i..n {
        sum += q[k] * row[k];
    }
    sum
}

/// i16 query · i8 row, summed with wrapping in i32: sixteen bytes of the
/// row sign-extended to i16 (`vpmovsxbw`), then multiplied and added in
/// pairs with the query (`vpmaddwd`), as the fixed-point rows are.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_i8(q: &[i16], row: &[i8]) -> i32 {
    madd(q, row, |p| _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast())))
}

/// `‖a − b‖²`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + STEP <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i + j * W)), _mm256_loadu_ps(pb.add(i + j * W)));
            *s = _mm256_fmadd_ps(d, d, *s);
        }
        i += STEP;
    }
    let mut sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for k in i..n {
        sum += (a[k] - b[k]) * (a[k] - b[k]);
    }
    sum
}

/// i16 · i16, summed with wrapping in i32 (the 16-bit fixed-point rows).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_i16(a: &[i16], b: &[i16]) -> i32 {
    madd(a, b, |p| _mm256_loadu_si256(p.cast()))
}

/// `Σ q[i] · row[i]` in i32 with wrapping, where `load` gives sixteen
/// elements of the row as i16: the one loop of the integer kernels.
#[inline(always)]
unsafe fn madd<T: Copy + Into<i32>>(q: &[i16], row: &[T], load: impl Fn(*const T) -> __m256i) -> i32 {
    const LANES: usize = 16;
    let n = q.len();
    let (pq, pr) = (q.as_ptr(), row.as_ptr());
    let mut acc = [_mm256_setzero_si256(); 4];
    let mut i = 0;
    while i + 4 * LANES <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let o = i + j * LANES;
            *s = _mm256_add_epi32(*s, _mm256_madd_epi16(_mm256_loadu_si256(pq.add(o).cast()), load(pr.add(o))));
        }
        i += 4 * LANES;
    }
    while i + LANES <= n {
        acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(_mm256_loadu_si256(pq.add(i).cast()), load(pr.add(i))));
        i += LANES;
    }
    let s = _mm256_add_epi32(_mm256_add_epi32(acc[0], acc[1]), _mm256_add_epi32(acc[2], acc[3]));
    let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    let mut sum = _mm_cvtsi128_si32(s);
    for k in i..n {
        sum = sum.wrapping_add(i32::from(q[k]) * row[k].into());
    }
    sum
}
