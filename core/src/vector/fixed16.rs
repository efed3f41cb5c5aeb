//! 16-bit fixed-point rows: how the rows of an f16 index are held in memory
//! and scored.
//!
//! A bundle stores f16 rows (usearch's `f16`), but no build scores them as
//! f16 well: WebAssembly has no half-precision converter, so the component
//! spent 24 instructions per 16 halves widening them in integer lanes (22%
//! of a 20k-shot search request's CPU under `wrk`, host README), where it has an
//! integer dot product, `i32x4.dot_i16x8_s`, that multiplies and adds eight
//! pairs of i16 in one instruction (`vpmaddwd` natively). So the rows are
//! rescaled once, at load, to i16 (one scale for the index), and each query
//! to i16 once per search; a score is the exact i32 sum of the products,
//! times one constant. Integer sums do not depend on
//! the order they are added in, so a score is the same bit for bit in the
//! component and natively, whichever kernel ran.
//!
//! Precision and range: no score's integer sum may leave i32, and by
//! Cauchy–Schwarz it is at most the row's norm times the query's, in
//! levels; the scales split those 31 bits evenly (see `Range::scale`), so for
//! unit vectors one step is ~2e-5 on each side, finer than f16's own step
//! at a typical component of ±0.04 (3e-5), and a score is within ~1e-4 of
//! the f32 dot product of the f16 rows (tested below). The kernels add with
//! wrapping, so partial sums may overflow harmlessly when the whole cannot.

use half::slice::HalfBitsSliceExt;
#[cfg(not(target_arch = "wasm32"))]
use half::slice::HalfFloatSliceExt;
use half::f16;

use super::dot_i16;

/// Largest magnitude of a quantized component (symmetric: -32768 is never
/// used, so a product never reaches 2^30 and a pair of them stays in i32).
const MAX_LEVEL: f32 = 32767.0;

/// The bound every integer score stays under, with a margin for rounding.
const SUM_LIMIT: f64 = (i32::MAX - 1) as f64;

/// A row holds a non-finite component (index given), so it cannot be scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("row {row} holds a non-finite component")]
pub struct NotFinite {
    /// The row.
    pub row: usize,
}

/// Rows of `dim` i16 and the scale they were quantized with.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixed16Rows {
    values: Vec<i16>,
    dim: usize,
    /// Levels per unit: a stored value is `round(x × scale)`.
    scale: f32,
    /// The largest Euclidean norm of a quantized row, in levels.
    max_norm: f64,
}

/// A query quantized for one [`Fixed16Rows`] ([`Fixed16Rows::query`]) or
/// for an i8 index's rows ([`quantize_query`]).
#[derive(Debug, Clone)]
pub struct Fixed16Query {
    values: Vec<i16>,
    /// `1 / (row scale × query scale)`: an integer sum times this is the score.
    unit: f32,
}

/// The largest component and row norm seen so far, for the rows' scale.
#[derive(Default)]
struct Range {
    max_abs: f32,
    max_norm2: f64,
}

impl Range {
    /// Takes row `r` in, or names it if a component is not finite (or its
    /// squared norm overflows f32, which no embedding comes near). Both
    /// reductions vectorise: the norm is the f32 kernel's, and the largest
    /// magnitude is an integer maximum of the bits without their sign (for
    /// finite floats the two orders agree).
    fn add(&mut self, r: usize, row: &[f32]) -> Result<(), NotFinite> {
        let norm2 = super::dot(row, row);
        if !norm2.is_finite() {
            return Err(NotFinite { row: r });
        }
        let max_bits = row.iter().fold(0u32, |m, x| m.max(x.to_bits() & 0x7fff_ffff));
        self.max_abs = self.max_abs.max(f32::from_bits(max_bits));
        self.max_norm2 = self.max_norm2.max(f64::from(norm2));
        Ok(())
    }

    /// The rows' scale. A score's integer sum is bounded by the product of
    /// the row's and the query's norms in levels, which must stay within
    /// i32 (2^31), so the two scales share those 31 bits: the rows take half
    /// of them (their largest norm at √2^31 ≈ 46,341 levels), or less where
    /// a component would pass ±32767, and the query what is left
    /// ([`Fixed16Rows::query`]). For unit rows that puts both steps near
    /// 2e-5 (an even split minimises the score's error).
    fn scale(&self) -> f32 {
        if self.max_abs == 0.0 {
            return 1.0;
        }
        (MAX_LEVEL / self.max_abs).min((SUM_LIMIT.sqrt() / self.max_norm2.sqrt()) as f32)
    }
}

/// Finite halves widened to f32: natively by `half`'s slice converter
/// (F16C where the CPU has it). WebAssembly has no converter and `half`
/// falls back to one branchy conversion per value there (3 s of the 27 a
/// 200k-shot index's snapshot took to build); the branch-free exponent
/// rebias below (exponent and mantissa shifted into
/// f32 position, times 2^112, exact for normal and subnormal halves)
/// vectorises instead. Infinities and NaNs are refused before this.
#[inline]
fn widen(row: &[f16], out: &mut [f32]) {
    #[cfg(target_arch = "wasm32")]
    for (w, h) in out.iter_mut().zip(row) {
        let h = u32::from(h.to_bits());
        let magnitude = f32::from_bits((h & 0x7fff) << 13) * f32::from_bits(0x7780_0000);
        *w = f32::from_bits(magnitude.to_bits() | ((h & 0x8000) << 16));
    }
    #[cfg(not(target_arch = "wasm32"))]
    row.convert_to_f32_slice(out);
}

/// `x` in levels of `scale`, rounded half away from zero. Written as a
/// truncation of `x·scale ± ½` rather than with `f32::round`, which is a
/// library call on x86-64's baseline and in WebAssembly, so that the loop
/// vectorises.
#[inline]
fn level(x: f32, scale: f32) -> i16 {
    let scaled = x * scale;
    (scaled + 0.5f32.copysign(scaled)).clamp(-MAX_LEVEL, MAX_LEVEL) as i32 as i16
}

/// `query` (finite) quantized to i16 for integer rows whose largest
/// Euclidean norm is `row_max_norm` levels, a level being `1 / row_scale`:
/// the 16-bit fixed-point rows here, and an i8 index's rows (each scaled on
/// its own, so their level is 1 and the score is rescaled per row). The
/// query's scale is the finest that keeps every component within ±32767 and
/// every score's integer sum within i32 (‖row‖ ≤ `row_max_norm`, by
/// Cauchy–Schwarz), so the kernels' wrapping sums are exact.
pub fn quantize_query(query: &[f32], row_max_norm: f64, row_scale: f32) -> Fixed16Query {
    let max_abs = query.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let norm = query.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    if !(max_abs > 0.0 && max_abs.is_finite()) {
        return Fixed16Query { values: vec![0; query.len()], unit: 0.0 };
    }
    // ‖q̂‖ ≤ s·‖q‖ + ½√dim (rounding), and |Σ r̂ q̂| ≤ row_max_norm · ‖q̂‖.
    let rounding = 0.5 * (query.len() as f64).sqrt();
    let mut s = f64::from(MAX_LEVEL / max_abs);
    if row_max_norm > 0.0 {
        s = s.min((SUM_LIMIT / row_max_norm - rounding) / norm);
    }
    let s = s as f32;
    let values = query.iter().map(|&x| level(x, s)).collect();
    Fixed16Query { values, unit: (1.0 / (f64::from(row_scale) * f64::from(s))) as f32 }
}

impl Fixed16Query {
    /// The quantized values.
    pub fn values(&self) -> &[i16] {
        &self.values
    }

    /// What an integer sum is multiplied by to give the score.
    pub fn unit(&self) -> f32 {
        self.unit
    }
}

impl Fixed16Rows {
    /// Quantizes row-major f16 rows; `values.len()` must be a multiple of
    /// `dim`. The rows are converted in place (an i16 is the size of an f16),
    /// so loading an index never holds both: in the component, whose memory
    /// never shrinks, a second copy would stay in its memory image.
    pub fn from_f16(values: Vec<f16>, dim: usize) -> Result<Self, NotFinite> {
        assert!(dim > 0 && values.len() % dim == 0, "rows of {dim} in {} values", values.len());
        let mut wide = vec![0.0f32; dim];
        let mut range = Range::default();
        for (r, row) in values.chunks_exact(dim).enumerate() {
            // Exponent all ones: an infinity or a NaN. Checked on the bits
            // because the component's `widen` would make them finite.
            if row.iter().fold(false, |bad, h| bad | (h.to_bits() & 0x7c00 == 0x7c00)) {
                return Err(NotFinite { row: r });
            }
            widen(row, &mut wide);
            range.add(r, &wide)?;
        }
        let scale = range.scale();
        let mut bits: Vec<u16> = values.into_iter().map(f16::to_bits).collect();
        for row in bits.chunks_exact_mut(dim) {
            widen(row.reinterpret_cast::<f16>(), &mut wide);
            for (b, &x) in row.iter_mut().zip(&wide) {
                *b = level(x, scale) as u16;
            }
        }
        Ok(Self::new(bits.into_iter().map(|b| b as i16).collect(), dim, scale))
    }

    /// Quantizes row-major f32 rows; `values.len()` must be a multiple of `dim`.
    pub fn from_f32(values: &[f32], dim: usize) -> Result<Self, NotFinite> {
        assert!(dim > 0 && values.len() % dim == 0, "rows of {dim} in {} values", values.len());
        let mut range = Range::default();
        for (r, row) in values.chunks_exact(dim).enumerate() {
            range.add(r, row)?;
        }
        let scale = range.scale();
        Ok(Self::new(values.iter().map(|&x| level(x, scale)).collect(), dim, scale))
    }

    fn new(values: Vec<i16>, dim: usize, scale: f32) -> Self {
        let max_norm = values
            .chunks_exact(dim)
            .map(|row| row.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
            .fold(0.0f64, f64::max)
            .sqrt();
        Fixed16Rows { values, dim, scale, max_norm }
    }

    /// Row `row`'s quantized values.
    #[inline]
    pub fn row(&self, row: usize) -> &[i16] {
        &self.values[row * self.dim..(row + 1) * self.dim]
    }

    /// Row `row` as f32 (its quantized values over the scale).
    pub fn to_f32(&self, row: usize) -> Vec<f32> {
        self.row(row).iter().map(|&v| f32::from(v) / self.scale).collect()
    }

    /// Every row as row-major f32.
    pub fn into_f32(self) -> Vec<f32> {
        self.values.iter().map(|&v| f32::from(v) / self.scale).collect()
    }

    /// `query` (`dim` long, finite) quantized for these rows, once per search.
    pub fn query(&self, query: &[f32]) -> Fixed16Query {
        assert_eq!(query.len(), self.dim, "query dimension");
        quantize_query(query, self.max_norm, self.scale)
    }

    /// The score of `row` for `query`: its dot product with the row, as f32.
    #[inline]
    pub fn score(&self, query: &Fixed16Query, row: usize) -> f32 {
        dot_i16(&query.values, self.row(row)) as f32 * query.unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::{dot, SplitMix64};

    #[test]
    fn scores_are_within_1e4_of_the_f16_rows_f32_dot_products() {
        let mut rng = SplitMix64(11);
        let dim = 768;
        let rows: Vec<f16> = (0..200).flat_map(|_| rng.unit(dim)).map(f16::from_f32).collect();
        let fixed = Fixed16Rows::from_f16(rows.clone(), dim).unwrap();
        let wide: Vec<f32> = rows.iter().map(|h| h.to_f32()).collect();
        assert_eq!(fixed, Fixed16Rows::from_f32(&wide, dim).unwrap(), "the in-place f16 path quantizes as the f32 one");
        let mut worst = 0.0f32;
        for _ in 0..20 {
            let q = rng.unit(dim);
            let prepared = fixed.query(&q);
            for r in 0..200 {
                let exact: Vec<f32> = rows[r * dim..(r + 1) * dim].iter().map(|h| h.to_f32()).collect();
                worst = worst.max((fixed.score(&prepared, r) - dot(&q, &exact)).abs());
            }
        }
        assert!(worst < 1e-4, "largest score error {worst}");
        assert!(worst > 0.0, "a quantization that loses nothing is not being tested");
    }

    #[test]
    fn i8_rows_score_within_1e4_of_the_f32_query_and_never_overflow() {
        use crate::vector::{dot_i8, quantize_i8};
        let mut rng = SplitMix64(12);
        let dim = 768;
        let mut rows = vec![0i8; 200 * dim];
        for row in rows.chunks_exact_mut(dim) {
            quantize_i8(&rng.unit(dim), row);
        }
        let norm = |r: &[i8]| r.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
        let max_norm = rows.chunks_exact(dim).map(norm).fold(0.0, f64::max);
        let mut worst = 0.0f32;
        for _ in 0..20 {
            let q = rng.unit(dim);
            let prepared = quantize_query(&q, max_norm, 1.0);
            for row in rows.chunks_exact(dim) {
                let wide: Vec<f32> = row.iter().map(|&x| f32::from(x)).collect();
                let inv = (1.0 / norm(row)) as f32;
                let score = dot_i8(prepared.values(), row) as f32 * prepared.unit() * inv;
                worst = worst.max((score - dot(&q, &wide) * inv).abs());
            }
        }
        assert!(worst < 1e-4, "largest score error {worst}");
        assert!(worst > 0.0, "a quantization that loses nothing is not being tested");
        // The largest row an i8 index can hold, and a query along it.
        let full = vec![127i8; 1024];
        let q = vec![1.0 / 32.0f32; 1024];
        let prepared = quantize_query(&q, norm(&full), 1.0);
        let score = dot_i8(prepared.values(), &full) as f32 * prepared.unit() * (1.0 / norm(&full)) as f32;
        assert!((score - 1.0).abs() < 1e-4, "{score}");
        let negative: Vec<f32> = q.iter().map(|x| -x).collect();
        let prepared = quantize_query(&negative, norm(&full), 1.0);
        let score = dot_i8(prepared.values(), &full) as f32 * prepared.unit() * (1.0 / norm(&full)) as f32;
        assert!((score + 1.0).abs() < 1e-4, "{score}");
    }

    #[test]
    fn halves_are_widened_exactly() {
        // In the component this is the bit-level rebias; natively, half's.
        let finite: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).filter(|h| h.is_finite()).collect();
        let mut wide = vec![0.0f32; finite.len()];
        widen(&finite, &mut wide);
        for (h, w) in finite.iter().zip(&wide) {
            assert_eq!(w.to_bits(), h.to_f32().to_bits(), "{:#06x}", h.to_bits());
        }
        let infinite = vec![f16::from_f32(0.5), f16::INFINITY];
        assert_eq!(Fixed16Rows::from_f16(infinite, 1), Err(NotFinite { row: 1 }));
    }

    #[test]
    fn the_worst_case_row_does_not_overflow() {
        // Every component at the index's maximum: the largest norm a row of
        // these can have, with a query pointing the same way.
        let dim = 1024;
        let rows = vec![0.5f32; dim];
        let fixed = Fixed16Rows::from_f32(&rows, dim).unwrap();
        let q = vec![1.0 / (dim as f32).sqrt(); dim];
        let score = fixed.score(&fixed.query(&q), 0);
        let exact = dot(&q, &rows);
        assert!((score - exact).abs() < 1e-3 * exact, "{score} vs {exact}");
        let negative: Vec<f32> = q.iter().map(|x| -x).collect();
        assert!((fixed.score(&fixed.query(&negative), 0) + exact).abs() < 1e-3 * exact);
    }

    #[test]
    fn bad_rows_are_named_and_zero_queries_score_zero() {
        let rows = [0.1f32, 0.2, f32::NAN, 0.3];
        assert_eq!(Fixed16Rows::from_f32(&rows, 2), Err(NotFinite { row: 1 }));
        let halves: Vec<f16> = rows.iter().map(|&x| f16::from_f32(x)).collect();
        assert_eq!(Fixed16Rows::from_f16(halves, 2), Err(NotFinite { row: 1 }));
        let fixed = Fixed16Rows::from_f32(&[0.6, 0.8, 0.0, 1.0], 2).unwrap();
        assert_eq!(fixed.score(&fixed.query(&[0.0, 0.0]), 0), 0.0);
        assert!((fixed.score(&fixed.query(&[0.0, 1.0]), 1) - 1.0).abs() < 1e-4);
        assert_eq!(fixed.to_f32(0).len(), 2);
        assert!((fixed.to_f32(0)[1] - 0.8).abs() < 1e-4);
        // The largest component takes ±32767 (the norm bound is looser here);
        // -0.25 × 32767 = -8191.75 rounds to -8192, 0.5 × 32767 = 16383.5
        // half away from zero to 16384.
        let fixed = Fixed16Rows::from_f32(&[1.0, -0.25, -1.0, 0.5], 2).unwrap();
        assert_eq!((fixed.row(0), fixed.row(1)), (&[32767, -8192][..], &[-32767, 16384][..]));
    }
}
