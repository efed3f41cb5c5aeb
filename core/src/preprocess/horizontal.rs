//! The resampler's horizontal pass, one source row at a time: each output
//! pixel is the weighted sum of its taps' pixels (a 1280×720 photo has 13
//! taps for each of 224 × 720 output pixels). Before these kernels the
//! resampler took over half of the samples of a `perf record` of the image
//! steps in the wasmtime CLI (`bench_preprocess`), so it has SIMD kernels for
//! the component (`simd128`) and for x86-64 with AVX2, and a portable loop
//! elsewhere.
//!
//! Pillow's weights have 22 fractional bits, too wide for 16-bit lanes, so
//! the kernels split each as `w = 256·hi + lo` (`hi` fits an i16, `lo` is
//! 0..=255) and add two taps at a time with the 16-bit multiply-add
//! (`i32x4.dot_i16x8_s`, `pmaddwd`): `Σ v·w = 256·Σ v·hi + Σ v·lo` exactly,
//! so every kernel gives the bytes of the plain i32 loop, which the tests
//! compare them with.

use super::{clip8, Taps, PRECISION_BITS};

/// Bytes after a row's last pixel that the SIMD kernels read: the last pair
/// of taps loads 8 bytes from its first pixel (two pixels and 2 bytes more),
/// and that pixel may be the row's last. What is read there is weighted 0 or
/// dropped.
pub(super) const SLACK: usize = 5;

/// One output pixel's taps, with their weights also split for the kernels.
struct SplitTaps {
    taps: Taps,
    /// Per pair of taps, `(hi₀, hi₁)` as two i16 in one i32 (the first in
    /// the low half), the odd one out paired with 0; four times over, so
    /// that a kernel loads the multiplier of all four lanes at once.
    hi: Vec<[i32; 4]>,
    /// Per pair of taps, `(lo₀, lo₁)` likewise.
    lo: Vec<[i32; 4]>,
}

/// The horizontal pass of one resize, checked once against the source width
/// so that the kernels need no bounds checks of their own.
pub(super) struct Horizontal {
    width: usize,
    taps: Vec<SplitTaps>,
    /// Whether every weight's `hi` fits an i16, as Pillow's do (normalised
    /// weights stay under 2 × 2^22); the SIMD kernels run only then.
    split: bool,
}

impl Horizontal {
    /// The output pixels' taps; panics if one reads past `width` (the tap
    /// builder clamps them to the image).
    pub(super) fn new(width: usize, taps: impl IntoIterator<Item = Taps>) -> Self {
        let pack = |a: i32, b: i32| (a as u16 as u32 | (b as u16 as u32) << 16) as i32;
        let taps: Vec<SplitTaps> = taps
            .into_iter()
            .map(|taps| {
                let (start, n) = (taps.start, taps.weights.len());
                assert!(start + n <= width, "taps {start}+{n} past a {width}-pixel row");
                let (mut hi, mut lo) = (Vec::new(), Vec::new());
                for pair in taps.weights.chunks(2) {
                    let (a, b) = (pair[0], pair.get(1).copied().unwrap_or(0));
                    hi.push([pack(a >> 8, b >> 8); 4]);
                    lo.push([pack(a & 0xff, b & 0xff); 4]);
                }
                SplitTaps { taps, hi, lo }
            })
            .collect();
        let split = taps.iter().flat_map(|t| &t.taps.weights).all(|w| i16::try_from(w >> 8).is_ok());
        Horizontal { width, taps, split }
    }

    /// Output pixels per row.
    pub(super) fn len(&self) -> usize {
        self.taps.len()
    }

    /// Resamples the source row at the start of `row` into `out` (3 bytes
    /// per output pixel). `row` must hold the row and [`SLACK`] bytes more
    /// (the next row, or padding).
    pub(super) fn row(&self, row: &[u8], out: &mut [u8]) {
        assert!(row.len() >= self.width * 3 + SLACK, "a row of {} pixels without its slack", self.width);
        assert_eq!(out.len(), self.taps.len() * 3, "output row length");
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if self.split {
            return simd128(&self.taps, row, out);
        }
        #[cfg(target_arch = "x86_64")]
        if self.split && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 (and the SSSE3/SSE4.1 it implies) was detected.
            return unsafe { avx2(&self.taps, row, out) };
        }
        #[allow(unreachable_code)]
        portable(&self.taps, row, out)
    }

    /// [`Self::row`] with the plain i32 loop, whatever the machine.
    #[cfg(test)]
    fn row_portable(&self, row: &[u8], out: &mut [u8]) {
        portable(&self.taps, row, out)
    }
}

/// Half of the fixed-point unit, added before the shift to round.
const ROUND: i32 = 1 << (PRECISION_BITS - 1);

/// i32 sums of u8 × weight, as Pillow's 8-bit resampler.
fn portable(taps: &[SplitTaps], row: &[u8], out: &mut [u8]) {
    for (SplitTaps { taps: tap, .. }, o) in taps.iter().zip(out.chunks_exact_mut(3)) {
        let mut acc = [ROUND; 3];
        for (px, &weight) in row[tap.start * 3..].chunks_exact(3).zip(&tap.weights) {
            for c in 0..3 {
                acc[c] += i32::from(px[c]) * weight;
            }
        }
        for c in 0..3 {
            o[c] = clip8(acc[c]);
        }
    }
}

/// The 8 bytes from `offset`: two RGB pixels and 2 bytes more.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn two_pixels(row: &[u8], offset: usize) -> u64 {
    let bytes: [u8; 8] = row[offset..offset + 8].try_into().expect("8 bytes");
    u64::from_le_bytes(bytes)
}

/// The `simd128` kernel. A function of its own, never inlined: inlined
/// into `resample_window`, Cranelift kept its pointers, lengths and the
/// accumulator on the stack and reloaded them for every pair of taps (about
/// 40 instructions a pair, `wasmtime objdump`). Its loads are unchecked,
/// against the bounds [`Horizontal::new`] and [`Horizontal::row`] assert;
/// the weights are loaded whole (four lanes stored), not splatted; and it
/// takes two pairs of taps per loop iteration, so that the epoch check at
/// the loop head (and the accumulator's store and reload around it) comes
/// once per four taps. `bench_preprocess` in the wasmtime CLI with epoch
/// checks, the horizontal pass of a 1280×720 JPEG's crop: 3.69–3.73 →
/// 2.86–3.13 ms p50 (natively, AVX2: 1.53–1.60 ms, unchanged).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(never)]
fn simd128(taps: &[SplitTaps], row: &[u8], out: &mut [u8]) {
    use std::arch::wasm32::*;
    /// The pair of taps from `p` (two RGB pixels, 8 bytes read) as
    /// `R₀ R₁ G₀ G₁ B₀ B₁ · ·` in u16 lanes, by `w = (hi, lo)`:
    /// `256·Σ v·hi + Σ v·lo` in i32 lanes 0..3 (lane 3 is whatever the 2
    /// extra bytes make it, and is never read).
    ///
    /// SAFETY: `p` has 8 readable bytes.
    #[inline(always)]
    unsafe fn pair(p: *const u8, hi: &[i32; 4], lo: &[i32; 4]) -> v128 {
        let px = unsafe { v128_load64_zero(p.cast()) };
        let px = u16x8_extend_low_u8x16(i8x16_shuffle::<0, 3, 1, 4, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15>(px, px));
        // SAFETY: 16 bytes each.
        let hi = i32x4_dot_i16x8(px, unsafe { v128_load(hi.as_ptr().cast()) });
        let lo = i32x4_dot_i16x8(px, unsafe { v128_load(lo.as_ptr().cast()) });
        i32x4_add(i32x4_shl(hi, 8), lo)
    }
    let last = taps.len().saturating_sub(1);
    for (i, tap) in taps.iter().enumerate() {
        let pairs = tap.hi.len();
        // SAFETY: `Horizontal::new` checked start + taps ≤ width, and `row`
        // holds width pixels and SLACK bytes more (asserted by `row`): the
        // last pair's 8 bytes start at most 2 pixels before the row's end.
        let p = unsafe { row.as_ptr().add(tap.taps.start * 3) };
        let (hi, lo) = (&tap.hi, &tap.lo);
        let mut acc = i32x4_splat(ROUND);
        let mut j = 0;
        while j + 2 <= pairs {
            // SAFETY: pairs j and j + 1 exist; see above for the pixels.
            unsafe {
                let two = i32x4_add(
                    pair(p.add(6 * j), hi.get_unchecked(j), lo.get_unchecked(j)),
                    pair(p.add(6 * j + 6), hi.get_unchecked(j + 1), lo.get_unchecked(j + 1)),
                );
                acc = i32x4_add(acc, two);
            }
            j += 2;
        }
        if j < pairs {
            // SAFETY: as above, for the odd pair out.
            acc = i32x4_add(acc, unsafe { pair(p.add(6 * j), hi.get_unchecked(j), lo.get_unchecked(j)) });
        }
        let v = i32x4_shr(acc, PRECISION_BITS);
        // Saturating narrows: the clamp to 0..=255 of `clip8`.
        let bytes = u8x16_narrow_i16x8(i16x8_narrow_i32x4(v, v), v);
        if i < last {
            // Four bytes, the fourth overwritten by the next pixel's red.
            // SAFETY: out holds 3 bytes per tap and this is not the last.
            unsafe { v128_store32_lane::<0>(bytes, out.as_mut_ptr().add(3 * i).cast()) };
        } else {
            out[3 * i] = u8x16_extract_lane::<0>(bytes);
            out[3 * i + 1] = u8x16_extract_lane::<1>(bytes);
            out[3 * i + 2] = u8x16_extract_lane::<2>(bytes);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2(taps: &[SplitTaps], row: &[u8], out: &mut [u8]) {
    use std::arch::x86_64::*;
    // R₀ R₁ G₀ G₁ B₀ B₁ from R₀ G₀ B₀ R₁ G₁ B₁; indices with the top bit set give 0.
    let interleave = _mm_setr_epi8(0, 3, 1, 4, 2, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    for (tap, o) in taps.iter().zip(out.chunks_exact_mut(3)) {
        let (mut hi, mut lo) = (_mm_setzero_si128(), _mm_setzero_si128());
        for (j, (&h, &l)) in tap.hi.iter().zip(&tap.lo).enumerate() {
            let px = _mm_cvtsi64_si128(two_pixels(row, (tap.taps.start + 2 * j) * 3) as i64);
            let px = _mm_cvtepu8_epi16(_mm_shuffle_epi8(px, interleave));
            // SAFETY: 16 bytes each.
            let (h, l) = unsafe { (_mm_loadu_si128(h.as_ptr().cast()), _mm_loadu_si128(l.as_ptr().cast())) };
            hi = _mm_add_epi32(hi, _mm_madd_epi16(px, h));
            lo = _mm_add_epi32(lo, _mm_madd_epi16(px, l));
        }
        let sum = _mm_add_epi32(_mm_add_epi32(_mm_slli_epi32::<8>(hi), lo), _mm_set1_epi32(ROUND));
        let v = _mm_srai_epi32::<{ PRECISION_BITS as i32 }>(sum);
        // Saturating packs: the clamp to 0..=255 of `clip8`.
        let bytes = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(v, v), _mm_setzero_si128())) as u32;
        o.copy_from_slice(&bytes.to_le_bytes()[..3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::tests::noise;
    use crate::preprocess::{taps, Filter, Taps};

    #[test]
    fn the_kernel_here_gives_the_bytes_of_the_plain_loop() {
        // Shrinks with even and odd tap counts, a strong shrink (long taps),
        // an enlargement (negative weights that overshoot 0..=255), and a
        // tap window that ends on the row's last pixel.
        for (w, ow) in [(1280u32, 398u32), (97, 40), (1000, 13), (23, 61), (5, 4), (2, 1)] {
            for filter in [Filter::Bicubic, Filter::Bilinear] {
                let pass = Horizontal::new(w as usize, taps(w, ow, filter));
                let mut row = noise(w as usize * 3, w * 7 + ow);
                // Extremes, where rounding and saturation show.
                row[..6].copy_from_slice(&[0, 255, 0, 255, 0, 255]);
                row.extend_from_slice(&[0xAB; SLACK]);
                let (mut got, mut want) = (vec![0; ow as usize * 3], vec![0; ow as usize * 3]);
                pass.row(&row, &mut got);
                pass.row_portable(&row, &mut want);
                assert_eq!(got, want, "{w} -> {ow} {filter:?}");
            }
        }
    }

    #[test]
    fn weights_too_wide_to_split_take_the_plain_loop() {
        // 2^23 + 3 has a `hi` of 32768, one past i16: the kernels would be wrong.
        let pass = Horizontal::new(3, [Taps { start: 0, weights: vec![(1 << 23) + 3, -(1 << 22)] }, Taps { start: 1, weights: vec![5, 1 << 22] }]);
        assert!(!pass.split);
        let mut row = vec![7, 200, 31, 90, 0, 255, 1, 2, 3];
        row.extend_from_slice(&[0; SLACK]);
        let (mut got, mut want) = ([0; 6], [0; 6]);
        pass.row(&row, &mut got);
        pass.row_portable(&row, &mut want);
        assert_eq!(got, want);
        // Pillow's own weights always split.
        let pillow = Horizontal::new(1280, taps(1280, 9, Filter::Bicubic));
        assert!(pillow.split);
    }

    #[test]
    #[should_panic(expected = "without its slack")]
    #[cfg_attr(target_family = "wasm", ignore = "a panic aborts the test run under wasm32-wasip2")]
    fn a_row_without_its_slack_is_refused() {
        let pass = Horizontal::new(4, [Taps { start: 0, weights: vec![1 << PRECISION_BITS] }]);
        pass.row(&[0; 12], &mut [0; 3]);
    }
}
