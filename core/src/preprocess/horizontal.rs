//! The resampler's horizontal pass, one source row at a time: each output
//! pixel is the weighted sum of its taps' pixels (a 1280×720 photo has 13
//! taps for each of 224 × 720 output pixels). Before these kernels the
//! resampler took over half of the samples of a `perf record` of the image
//! steps in the wasmtime CLI (`bench_preprocess`), so it has SIMD kernels for
//! the component (`simd128`) and for x86-64 with AVX2, and a portable loop
//! elsewhere.
//!
//! Pillow's weights have 22 fractional bits, too wide for 16-bit lanes, so
//! the AVX2 kernel splits each as `w = 256·hi + lo` (`hi` fits an i16, `lo`
//! is 0..=255) and adds two taps at a time with the 16-bit multiply-add
//! (`pmaddwd`): `Σ v·w = 256·Σ v·hi + Σ v·lo` exactly. The `simd128` kernel
//! multiplies whole i32 weights instead (`i32x4.mul`), one tap per vector,
//! its R, G and B widened from one load that serves four taps: under
//! Cranelift that took fewer instructions than the split. Integer sums
//! either way, so every kernel gives the bytes of the plain i32 loop, which
//! the tests compare them with.

use super::{clip8, Taps, PRECISION_BITS};

/// Bytes after a row's last pixel that the SIMD kernels read, weighted 0
/// or dropped: `simd128` loads 16 bytes from the first pixel of each four
/// taps, the last four padded with zero weights, so from the row's last
/// pixel up to 13 bytes past the row (AVX2's pairs of taps read 5).
pub(super) const SLACK: usize = 13;

/// One i32 in each of a vector's four lanes, aligned as a vector: a weight
/// load never straddles two cache lines (with the allocator's 8-byte
/// alignment in wasm, a quarter of them did, and the kernel's time varied
/// by half with where its weights landed).
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Lanes([i32; 4]);

/// One output pixel's taps, with their weights also laid out for the kernel.
struct KernelTaps {
    taps: Taps,
    /// Per pair of taps, `(hi₀, hi₁)` as two i16 in one i32 (the first in
    /// the low half), the odd one out paired with 0; four times over, so
    /// that the kernel loads the multiplier of all four lanes at once.
    #[cfg(target_arch = "x86_64")]
    hi: Vec<Lanes>,
    /// Per pair of taps, `(lo₀, lo₁)` likewise.
    #[cfg(target_arch = "x86_64")]
    lo: Vec<Lanes>,
    /// Each tap's weight four times over, padded with zero weights to a
    /// multiple of four taps.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    wide: Vec<Lanes>,
}

/// The horizontal pass of one resize, checked once against the source width
/// so that the kernels need no bounds checks of their own.
pub(super) struct Horizontal {
    width: usize,
    taps: Vec<KernelTaps>,
    /// Whether every weight's `hi` fits an i16, as Pillow's do (normalised
    /// weights stay under 2 × 2^22); the AVX2 kernel runs only then.
    #[cfg(target_arch = "x86_64")]
    split: bool,
}

impl Horizontal {
    /// The output pixels' taps; panics if one reads past `width` (the tap
    /// builder clamps them to the image).
    pub(super) fn new(width: usize, taps: impl IntoIterator<Item = Taps>) -> Self {
        let taps: Vec<KernelTaps> = taps
            .into_iter()
            .map(|taps| {
                let (start, n) = (taps.start, taps.weights.len());
                assert!(start + n <= width, "taps {start}+{n} past a {width}-pixel row");
                KernelTaps {
                    #[cfg(target_arch = "x86_64")]
                    hi: taps.weights.chunks(2).map(|p| Lanes([pack(p[0] >> 8, p.get(1).map_or(0, |b| b >> 8)); 4])).collect(),
                    #[cfg(target_arch = "x86_64")]
                    lo: taps.weights.chunks(2).map(|p| Lanes([pack(p[0] & 0xff, p.get(1).map_or(0, |b| b & 0xff)); 4])).collect(),
                    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
                    wide: (0..n.next_multiple_of(4)).map(|i| Lanes([taps.weights.get(i).copied().unwrap_or(0); 4])).collect(),
                    taps,
                }
            })
            .collect();
        Horizontal {
            width,
            #[cfg(target_arch = "x86_64")]
            split: taps.iter().flat_map(|t| &t.taps.weights).all(|w| i16::try_from(w >> 8).is_ok()),
            taps,
        }
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
        return simd128(&self.taps, row, out);
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

/// Two i16 in one i32, the first in the low half.
#[cfg(target_arch = "x86_64")]
fn pack(a: i32, b: i32) -> i32 {
    (a as u16 as u32 | (b as u16 as u32) << 16) as i32
}

/// Half of the fixed-point unit, added before the shift to round.
const ROUND: i32 = 1 << (PRECISION_BITS - 1);

/// i32 sums of u8 × weight, as Pillow's 8-bit resampler.
fn portable(taps: &[KernelTaps], row: &[u8], out: &mut [u8]) {
    for (KernelTaps { taps: tap, .. }, o) in taps.iter().zip(out.chunks_exact_mut(3)) {
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

/// The `simd128` kernel: per output pixel, four taps per loop iteration
/// from one 16-byte load (their four pixels and a byte more), each tap's R,
/// G and B widened to i32 lanes by one byte shuffle and multiplied by its
/// whole weight (`i32x4.mul`), so Pillow's 22-bit weights need no split and
/// a tap costs about four instructions where the 16-bit multiply-add's
/// split cost nine or ten. A function of its own, never inlined: inlined
/// into `resample_window`, Cranelift kept its pointers and the accumulator
/// on the stack and reloaded them for every step (`wasmtime objdump`). Its
/// loads are unchecked, against the bounds [`Horizontal::new`] and
/// [`Horizontal::row`] assert, and the epoch check at the loop head (with
/// the accumulator's store and reload around it) comes once per four taps.
/// `bench_preprocess` in the wasmtime CLI with epoch checks, the horizontal
/// pass of a 1280×720 JPEG's crop (13 taps, padded to 16): 3.69–3.73 ms
/// p50 with the split inlined, 2.86–3.13 ms split in a function of its
/// own, 2.70–2.78 ms with whole weights ([`Lanes`]-aligned; 2.6 ms at best
/// either way, 4.1–4.3 ms p50 unaligned). Natively, AVX2: 1.59–1.61 ms.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(never)]
fn simd128(taps: &[KernelTaps], row: &[u8], out: &mut [u8]) {
    use std::arch::wasm32::*;
    let zero = i32x4_splat(0);
    let last = taps.len().saturating_sub(1);
    for (i, tap) in taps.iter().enumerate() {
        // SAFETY (every load below): `Horizontal::new` checked start + n ≤
        // width for the n taps, and `row` holds width pixels and SLACK bytes
        // more (asserted by `row`); four taps from tap j read 16 bytes from
        // pixel start + j, j ≤ n − 1, so at most 13 bytes past the row.
        let p = unsafe { row.as_ptr().add(tap.taps.start * 3) };
        let w = tap.wide.as_ptr();
        let mut acc = i32x4_splat(ROUND);
        let mut j = 0;
        while j < tap.wide.len() {
            unsafe {
                let v = v128_load(p.add(3 * j).cast());
                // R, G, B (and the next pixel's R, never read) of tap j + t in
                // i32 lanes; indices of 16 and up pick the zero vector's bytes.
                let t0 = i8x16_shuffle::<0, 16, 16, 16, 1, 16, 16, 16, 2, 16, 16, 16, 3, 16, 16, 16>(v, zero);
                let t1 = i8x16_shuffle::<3, 16, 16, 16, 4, 16, 16, 16, 5, 16, 16, 16, 6, 16, 16, 16>(v, zero);
                let t2 = i8x16_shuffle::<6, 16, 16, 16, 7, 16, 16, 16, 8, 16, 16, 16, 9, 16, 16, 16>(v, zero);
                let t3 = i8x16_shuffle::<9, 16, 16, 16, 10, 16, 16, 16, 11, 16, 16, 16, 12, 16, 16, 16>(v, zero);
                let weight = |t: usize| v128_load(w.add(j + t).cast());
                let s01 = i32x4_add(i32x4_mul(t0, weight(0)), i32x4_mul(t1, weight(1)));
                let s23 = i32x4_add(i32x4_mul(t2, weight(2)), i32x4_mul(t3, weight(3)));
                acc = i32x4_add(acc, i32x4_add(s01, s23));
            }
            j += 4;
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
fn avx2(taps: &[KernelTaps], row: &[u8], out: &mut [u8]) {
    use std::arch::x86_64::*;
    // R₀ R₁ G₀ G₁ B₀ B₁ from R₀ G₀ B₀ R₁ G₁ B₁; indices with the top bit set give 0.
    let interleave = _mm_setr_epi8(0, 3, 1, 4, 2, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    for (tap, o) in taps.iter().zip(out.chunks_exact_mut(3)) {
        let (mut hi, mut lo) = (_mm_setzero_si128(), _mm_setzero_si128());
        for (j, (h, l)) in tap.hi.iter().zip(&tap.lo).enumerate() {
            let px = _mm_cvtsi64_si128(two_pixels(row, (tap.taps.start + 2 * j) * 3) as i64);
            let px = _mm_cvtepu8_epi16(_mm_shuffle_epi8(px, interleave));
            // SAFETY: 16 bytes each, aligned to 16.
            let (h, l) = unsafe { (_mm_load_si128((h as *const Lanes).cast()), _mm_load_si128((l as *const Lanes).cast())) };
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
    fn weights_too_wide_to_split_give_the_bytes_of_the_plain_loop() {
        // 2^23 + 3 has a `hi` of 32768, one past i16: AVX2's split would be
        // wrong, so it takes the plain loop; simd128's whole i32 weights hold it.
        let pass = Horizontal::new(3, [Taps { start: 0, weights: vec![(1 << 23) + 3, -(1 << 22)] }, Taps { start: 1, weights: vec![5, 1 << 22] }]);
        #[cfg(target_arch = "x86_64")]
        assert!(!pass.split);
        let mut row = vec![7, 200, 31, 90, 0, 255, 1, 2, 3];
        row.extend_from_slice(&[0; SLACK]);
        let (mut got, mut want) = ([0; 6], [0; 6]);
        pass.row(&row, &mut got);
        pass.row_portable(&row, &mut want);
        assert_eq!(got, want);
        // Pillow's own weights always split.
        #[cfg(target_arch = "x86_64")]
        assert!(Horizontal::new(1280, taps(1280, 9, Filter::Bicubic)).split);
    }

    #[test]
    #[should_panic(expected = "without its slack")]
    #[cfg_attr(target_family = "wasm", ignore = "a panic aborts the test run under wasm32-wasip2")]
    fn a_row_without_its_slack_is_refused() {
        let pass = Horizontal::new(4, [Taps { start: 0, weights: vec![1 << PRECISION_BITS] }]);
        pass.row(&[0; 12], &mut [0; 3]);
    }
}
