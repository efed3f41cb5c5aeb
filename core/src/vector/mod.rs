//! Vector arithmetic for embeddings: normalisation, dot products and an exact
//! top-k scan.
//!
//! One kernel per element type (f32 and i8 rows against an f32 query, the
//! 16-bit fixed-point rows an f16 index is held as ([`fixed16`]) against a
//! query quantized alike, and the squared L2 distance of the segmentation),
//! used by the index, the exact scan and the segmentation alike. On x86-64
//! CPUs with AVX2 and FMA (checked once at run time) they are the
//! hand-written [`avx2`] loops; in the component, which is built with
//! `-C target-feature=+simd128`, the hand-written `simd128` loops (the
//! compiler did not make good loops of the portable ones there); elsewhere,
//! portable loops written so that the compiler vectorises them (eight
//! independent accumulators, no bounds checks in the hot loop): SSE2 for the
//! x86-64 baseline.
//! The exact scan is what the component runs for collections small enough
//! that a scan beats walking a graph.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod fixed16;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;

/// Whether the [`avx2`] kernels can run here (cached by std after the first call).
#[inline(always)]
fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The kernel set a search runs with: `avx2`, `simd128` (the component) or
/// `portable`.
pub fn kernels() -> &'static str {
    if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        "simd128"
    } else if avx2_available() {
        "avx2"
    } else {
        "portable"
    }
}

/// The one vectorised reduction every distance here is made of:
/// `Σ term(a[i], b[i])` with eight independent accumulators and no bounds
/// checks in the loop, so that it compiles to packed SSE2 on the x86-64
/// baseline whatever the element types (the `avx2` and `simd128` kernels
/// are written by hand).
#[inline(always)]
fn reduce<A: Copy, B: Copy>(a: &[A], b: &[B], term: impl Fn(A, B) -> f32) -> f32 {
    assert_eq!(a.len(), b.len(), "distance between vectors of different lengths");
    const LANES: usize = 8;
    let mut acc = [0.0f32; LANES];
    let split = a.len() - a.len() % LANES;
    for (x, y) in a[..split].chunks_exact(LANES).zip(b[..split].chunks_exact(LANES)) {
        for i in 0..LANES {
            acc[i] += term(x[i], y[i]);
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in a[split..].iter().zip(&b[split..]) {
        sum += term(*x, *y);
    }
    sum
}

/// The portable loops alone, whatever the CPU: the fallback of every kernel,
/// and what benches compare the [`avx2`] kernels with in the same run.
pub mod portable {
    use super::reduce;

    /// Dot product.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        reduce(a, b, |x, y| x * y)
    }

    /// i16 query · i8 row, summed with wrapping in i32 (the i8 rows of an
    /// index, against a query quantized for them).
    pub fn dot_i8(query: &[i16], row: &[i8]) -> i32 {
        reduce_i32(query, row)
    }

    /// i16 · i16, summed with wrapping in i32.
    pub fn dot_i16(a: &[i16], b: &[i16]) -> i32 {
        reduce_i32(a, b)
    }

    /// `Σ a[i]·b[i]` in i32 with wrapping, in 16 independent lanes, which
    /// SSE2 turns into `pmaddwd`: the integer rows' reduction.
    #[inline(always)]
    fn reduce_i32<A: Copy + Into<i32>, B: Copy + Into<i32>>(a: &[A], b: &[B]) -> i32 {
        assert_eq!(a.len(), b.len(), "distance between vectors of different lengths");
        const LANES: usize = 16;
        let mut acc = [0i32; LANES];
        let split = a.len() - a.len() % LANES;
        for (x, y) in a[..split].chunks_exact(LANES).zip(b[..split].chunks_exact(LANES)) {
            for i in 0..LANES {
                acc[i] = acc[i].wrapping_add(x[i].into() * y[i].into());
            }
        }
        let mut sum = acc.iter().fold(0i32, |s, x| s.wrapping_add(*x));
        for (x, y) in a[split..].iter().zip(&b[split..]) {
            sum = sum.wrapping_add((*x).into() * (*y).into());
        }
        sum
    }
}

/// Dot product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if avx2_available() {
        assert_eq!(a.len(), b.len(), "distance between vectors of different lengths");
        // SAFETY: the CPU has the features (checked), the lengths are equal.
        return unsafe { avx2::dot(a, b) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        assert_eq!(a.len(), b.len(), "distance between vectors of different lengths");
        return simd128::dot(a, b);
    }
    #[allow(unreachable_code)]
    portable::dot(a, b)
}

/// Dot product of an i16 query with an i8 row, summed in i32 with wrapping:
/// the kernel of an i8 index's rows, scored against the query quantized
/// for them ([`fixed16::quantize_query`], whose scale keeps the whole sum in
/// range). Integer arithmetic, so the same bit for bit in every kernel set;
/// with an f32 query each element cost the component a widening, a
/// conversion and a multiply (the `simd128` module says what this saved).
#[inline]
pub fn dot_i8(query: &[i16], row: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if avx2_available() {
        assert_eq!(query.len(), row.len(), "distance between vectors of different lengths");
        // SAFETY: as in `dot`.
        return unsafe { avx2::dot_i8(query, row) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        assert_eq!(query.len(), row.len(), "distance between vectors of different lengths");
        return simd128::dot_i8(query, row);
    }
    #[allow(unreachable_code)]
    portable::dot_i8(query, row)
}

/// i16 · i16 summed in i32 with wrapping: the kernel of the 16-bit
/// fixed-point rows ([`fixed16`]), whose scales keep the whole sum in range.
#[inline]
pub fn dot_i16(a: &[i16], b: &[i16]) -> i32 {
    assert_eq!(a.len(), b.len(), "distance between vectors of different lengths");
    #[cfg(target_arch = "x86_64")]
    if avx2_available() {
        // SAFETY: as in `dot`.
        return unsafe { avx2::dot_i16(a, b) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd128::dot_i16(a, b);
    #[allow(unreachable_code)]
    portable::dot_i16(a, b)
}

/// `‖a − b‖²`.
#[inline]
pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if avx2_available() {
        assert_eq!(a.len(), b.len(), "distance between vectors of different lengths");
        // SAFETY: as in `dot`.
        return unsafe { avx2::squared_l2(a, b) };
    }
    reduce(a, b, |x, y| (x - y) * (x - y))
}

/// Scales `v` to unit length in place; returns the original norm. A zero (or
/// non-finite) vector is left unchanged and 0 is returned.
pub fn normalize(v: &mut [f32]) -> f32 {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|x| *x /= norm);
        norm
    } else {
        0.0
    }
}

/// A normalised copy of `v`, or `None` for a zero or non-finite vector.
pub fn normalized(v: &[f32]) -> Option<Vec<f32>> {
    let mut out = v.to_vec();
    (normalize(&mut out) > 0.0).then_some(out)
}

/// Mean of rows, normalised: a shot's embedding from its frames'.
pub fn normalized_mean<'a>(rows: impl IntoIterator<Item = &'a [f32]>, dim: usize) -> Option<Vec<f32>> {
    let mut sum = vec![0.0f32; dim];
    for row in rows {
        for (s, x) in sum.iter_mut().zip(row) {
            *s += x;
        }
    }
    (normalize(&mut sum) > 0.0).then_some(sum)
}

/// Quantizes one row to i8 for a cos-metric index: the row is scaled so that
/// its largest component is ±127, then each component is rounded (half away
/// from zero). Cosine ignores a row's scale, so the row keeps its direction at
/// the finest resolution i8 allows, and usearch's own i8·i8 cosine and the
/// reader's f32-query scoring ([`crate::shot_index`]) both stay correct.
///
/// This is what `busca-index --quantization i8` stores, in place of usearch's
/// own f32→i8 cast (row normalised, times 127, truncated): at 768 dimensions
/// a normalised row's components are about ±0.04, so that cast keeps only
/// four or five levels of each, and top-10 results drift (0.904 overlap with
/// f32 on the bench index, against 0.95 wanted). A zero or non-finite row
/// becomes zeros. `out` must be as long as `row`.
pub fn quantize_i8(row: &[f32], out: &mut [i8]) {
    assert_eq!(row.len(), out.len(), "quantize_i8 into a row of another length");
    let max_abs = row
        .iter()
        .fold(0.0f32, |m, x| if x.is_finite() { m.max(x.abs()) } else { f32::INFINITY });
    if !(max_abs > 0.0 && max_abs.is_finite()) {
        out.fill(0);
        return;
    }
    let scale = 127.0 / max_abs;
    for (q, x) in out.iter_mut().zip(row) {
        *q = (x * scale).round().clamp(-127.0, 127.0) as i8;
    }
}

/// Converts f32 values to little-endian f16 bytes (compact frame embeddings).
pub fn f32_to_f16_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
        .collect()
}

/// Reads little-endian f16 bytes back into f32 values. `None` if the length is odd.
pub fn f16_bytes_to_f32(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.len() % 2 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
    )
}

/// SplitMix64: a tiny, seeded, platform-independent generator for synthetic
/// test and benchmark vectors (core takes no `rand` dependency; nothing here
/// needs unpredictability).
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next value, uniform in `[-1, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    /// A random unit vector of `dim` dimensions.
    pub fn unit(&mut self, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| self.next_f32()).collect();
        normalize(&mut v);
        v
    }
}

/// A scored row of a matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Row index.
    pub row: usize,
    /// Dot product with the query.
    pub score: f32,
}

// Min-heap order on score (ties: larger row first out) so that the heap keeps
// the k best, and results are deterministic.
impl Eq for Scored {}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.row.cmp(&other.row))
    }
}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Exact top-k by dot product over a row-major `n × dim` matrix, best first
/// (ties by row). `admit(row)` filters rows before scoring; rows scoring below
/// `min_score` are dropped.
pub fn top_k(
    query: &[f32],
    matrix: &[f32],
    dim: usize,
    k: usize,
    min_score: Option<f32>,
    mut admit: impl FnMut(usize) -> bool,
) -> Vec<Scored> {
    assert_eq!(query.len(), dim, "query dimension");
    assert_eq!(matrix.len() % dim.max(1), 0, "matrix is not n × dim");
    if k == 0 || dim == 0 {
        return Vec::new();
    }
    let mut best = TopK::new(k, min_score);
    for (row, vector) in matrix.chunks_exact(dim).enumerate() {
        if admit(row) {
            best.push(Scored { row, score: dot(query, vector) });
        }
    }
    best.into_sorted_vec()
}

/// The best `k` scored rows seen so far (a min-heap of `k`), dropping
/// scores below `min_score`.
#[derive(Debug)]
pub struct TopK {
    heap: BinaryHeap<Scored>,
    k: usize,
    min_score: Option<f32>,
}

impl TopK {
    /// Keeps the best `k`.
    pub fn new(k: usize, min_score: Option<f32>) -> Self {
        TopK { heap: BinaryHeap::with_capacity(k + 1), k, min_score }
    }

    /// Whether a row of this score would be kept if it were offered now
    /// (offering it otherwise changes nothing).
    #[inline]
    pub fn takes(&self, score: f32) -> bool {
        self.k > 0
            && !self.min_score.is_some_and(|m| score < m)
            && (self.heap.len() < self.k || self.heap.peek().is_some_and(|worst| score > worst.score))
    }

    /// Offers one scored row.
    #[inline]
    pub fn push(&mut self, item: Scored) {
        if !self.takes(item.score) {
            return;
        }
        if self.heap.len() == self.k {
            self.heap.pop();
        }
        self.heap.push(item);
    }

    /// The kept rows, best first (ties by row).
    pub fn into_sorted_vec(self) -> Vec<Scored> {
        // into_sorted_vec sorts ascending by Ord, and Ord is reversed: best first.
        self.heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_i8_uses_the_whole_range_and_keeps_the_direction() {
        let mut rng = SplitMix64(7);
        let row = rng.unit(768);
        let mut q = vec![0i8; 768];
        quantize_i8(&row, &mut q);
        assert_eq!(q.iter().map(|x| x.unsigned_abs()).max(), Some(127), "the largest component maps to ±127");
        let back: Vec<f32> = q.iter().map(|&x| f32::from(x)).collect();
        let cos = dot(&row, &back) / dot(&back, &back).sqrt();
        assert!(cos > 0.9995, "cosine of a row with its quantization: {cos}");
        // usearch's cast (normalised × 127, truncated) loses far more.
        let cast: Vec<f32> = row.iter().map(|x| (x * 127.0).trunc()).collect();
        let cast_cos = dot(&row, &cast) / dot(&cast, &cast).sqrt();
        assert!(1.0 - cos < (1.0 - cast_cos) / 10.0, "ours {cos} vs usearch's cast {cast_cos}");
    }

    #[test]
    fn quantize_i8_ignores_scale_rounds_half_away_and_zeroes_bad_rows() {
        let mut a = [0i8; 4];
        let mut b = [0i8; 4];
        quantize_i8(&[0.5, -0.25, 0.125, -0.5], &mut a);
        quantize_i8(&[5.0, -2.5, 1.25, -5.0], &mut b);
        assert_eq!(a, b);
        // -0.25 × 254 = -63.5 → -64 (half away from zero); 0.125 × 254 = 31.75 → 32.
        assert_eq!(a, [127, -64, 32, -127]);
        quantize_i8(&[0.0; 4], &mut a);
        assert_eq!(a, [0; 4]);
        quantize_i8(&[1.0, f32::NAN, 0.0, 0.0], &mut a);
        assert_eq!(a, [0; 4], "a NaN row is zeros, not garbage");
    }

    #[test]
    fn every_kernel_agrees_with_the_portable_loop_for_every_tail_length() {
        // On this machine the dispatching functions may take the AVX2 path;
        // `reduce` is the portable one. Both must give the same sums.
        let mut rng = SplitMix64(7);
        for n in 0..100 {
            let a: Vec<f32> = (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
            let (ai, bi): (Vec<i16>, Vec<i16>) = a.iter().zip(&b).map(|(x, y)| ((x * 32767.0) as i16, (y * 32767.0) as i16)).unzip();
            let q: Vec<i8> = b.iter().map(|x| (x * 127.0).round() as i8).collect();
            let close = |x: f32, y: f32, what: &str| assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what} n={n}: {x} vs {y}");
            close(dot(&a, &b), reduce(&a, &b, |x, y| x * y), "f32");
            let naive = ai.iter().zip(&bi).fold(0i32, |s, (x, y)| s.wrapping_add(i32::from(*x) * i32::from(*y)));
            assert_eq!(dot_i16(&ai, &bi), naive, "i16 n={n}");
            assert_eq!(portable::dot_i16(&ai, &bi), naive, "portable i16 n={n}");
            let naive_i8 = ai.iter().zip(&q).fold(0i32, |s, (x, y)| s.wrapping_add(i32::from(*x) * i32::from(*y)));
            assert_eq!(dot_i8(&ai, &q), naive_i8, "i8 n={n}");
            assert_eq!(portable::dot_i8(&ai, &q), naive_i8, "portable i8 n={n}");
            close(squared_l2(&a, &b), reduce(&a, &b, |x, y| (x - y) * (x - y)), "l2");
        }
        let expected = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
            "simd128"
        } else if avx2_available() {
            "avx2"
        } else {
            "portable"
        };
        assert_eq!(kernels(), expected);
    }

    #[test]
    fn dot_matches_naive_for_all_tail_lengths() {
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32).sin()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-3, "n={n}");
        }
    }

    #[test]
    fn top_k_is_exact_sorted_and_filtered() {
        let dim = 3;
        let rows = [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]];
        let matrix: Vec<f32> = rows.iter().flatten().copied().collect();
        let q = [1.0, 0.0, 0.0];
        let top = top_k(&q, &matrix, dim, 2, None, |_| true);
        assert_eq!(top.iter().map(|s| s.row).collect::<Vec<_>>(), vec![0, 1]);
        let top = top_k(&q, &matrix, dim, 10, Some(0.4), |row| row != 0);
        assert_eq!(top.iter().map(|s| s.row).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn f16_round_trip_is_close() {
        let v = [0.1f32, -0.25, 0.999, 0.0];
        let back = f16_bytes_to_f32(&f32_to_f16_bytes(&v)).unwrap();
        for (a, b) in v.iter().zip(&back) {
            assert!((a - b).abs() < 1e-3);
        }
        assert!(f16_bytes_to_f32(&[0u8; 3]).is_none());
    }

    #[test]
    fn normalize_leaves_zero_vectors() {
        let mut z = [0.0f32; 4];
        assert_eq!(normalize(&mut z), 0.0);
        assert!(normalized(&[f32::NAN, 1.0]).is_none());
        let m = normalized_mean([&[1.0f32, 0.0][..], &[0.0, 1.0][..]], 2).unwrap();
        assert!((m[0] - m[1]).abs() < 1e-7 && (dot(&m, &m) - 1.0).abs() < 1e-6);
    }
}
