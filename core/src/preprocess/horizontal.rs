//! The resampler's horizontal pass: each output pixel is the weighted sum of
//! its taps' pixels (a 1280×720 photo has 13 taps for each of 224 × 720
//! output pixels). Before these kernels the resampler took over half of the
//! samples of a `perf record` of the image steps in the wasmtime CLI
//! (`bench_preprocess`), so it has SIMD kernels for the component
//! (`simd128`) and for x86-64 with AVX2, and a portable loop elsewhere.
//!
//! Pillow's weights have 22 fractional bits, too wide for 16-bit lanes, so
//! the AVX2 kernel splits each as `w = 256·hi + lo` (`hi` fits an i16, `lo`
//! is 0..=255) and adds two taps at a time with the 16-bit multiply-add
//! (`pmaddwd`): `Σ v·w = 256·Σ v·hi + Σ v·lo` exactly, one row at a time.
//! The `simd128` kernels multiply whole i32 weights instead (`i32x4.mul`):
//! under Cranelift that took fewer instructions than the split. They take
//! four rows at a time, one in each lane ([`simd128_rows4`]), and a lone
//! row's R, G and B in three lanes ([`simd128`]). Integer sums either way,
//! so every kernel gives the bytes of the plain i32 loop, which the tests
//! compare them with.

use std::borrow::Cow;
use std::ops::Range;

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

    /// Resamples source rows `rows` of `rgb` (`width` pixels each, as
    /// [`Horizontal::new`] was given) into `out`, one output row after the
    /// other. In the component, four rows at a time ([`simd128_rows4`]).
    pub(super) fn rows(&self, rgb: &[u8], rows: Range<usize>, out: &mut [u8]) {
        let (w, stride) = (self.width, self.taps.len() * 3);
        assert!(rgb.len() >= rows.end * w * 3, "rows {rows:?} of a {w}-pixel image of {} bytes", rgb.len());
        assert_eq!(out.len(), rows.len() * stride, "output rows");
        #[allow(unused_mut)]
        let mut done = 0;
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if stride > 0 {
            // The bytes any tap reads: from the first tap's start to the end
            // of the furthest, the part of each row the kernel transposes.
            let first = self.taps.iter().map(|t| t.taps.start).min().unwrap_or(0);
            let end = self.taps.iter().map(|t| t.taps.start + t.taps.weights.len()).max().unwrap_or(0);
            let bytes = first * 3..end * 3;
            let mut scratch = vec![0u16; 4 * bytes.len()];
            for (group, outs) in out.chunks_exact_mut(4 * stride).enumerate() {
                let y = rows.start + 4 * group;
                let row = |r: usize| &rgb[(y + r) * w * 3..][bytes.clone()];
                let mut outs = outs.chunks_exact_mut(stride);
                let mut next = || outs.next().expect("four output rows");
                simd128_rows4(&self.taps, bytes.start, [row(0), row(1), row(2), row(3)], &mut scratch, [next(), next(), next(), next()]);
                done += 4;
            }
        }
        // One row at a time: the kernels read a few bytes past each row, the
        // next row's, or zeros after the image's last row.
        for (y, out) in rows.clone().skip(done).zip(out[done * stride..].chunks_exact_mut(stride)) {
            let rest = &rgb[y * w * 3..];
            let row: Cow<[u8]> = if rest.len() < w * 3 + SLACK {
                Cow::Owned([rest, &[0; SLACK]].concat())
            } else {
                Cow::Borrowed(rest)
            };
            self.row(&row, out);
        }
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

/// The `simd128` kernel for four source rows at once, one row in each
/// lane: the rows' bytes that any tap reads are first transposed into
/// `scratch` (for each byte of the row, its four rows' values as u16, 8
/// bytes), so that a tap of one channel is then a single widening load
/// (`i32x4.load16x4_u`), a multiply by the tap's weight (the same for the
/// four rows) and an add, all four lanes useful: ten instructions a tap
/// for R, G and B of four rows, where [`simd128`] takes about seventeen
/// (one row, a lane of four unused). `bytes_start` is the first
/// transposed byte's offset in a row; `rows` hold the transposed bytes.
/// `bench_preprocess` in the wasmtime CLI with epoch checks (1280×720
/// JPEG, builds alternated twice, best of 300): the horizontal pass 2.62 /
/// 2.76 ms row by row, 1.56 / 1.56 ms four rows at a time; the whole resize
/// and crop 3.17 / 3.48 → 2.08 / 2.10 ms (natively, AVX2: 2.11 ms).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(never)]
fn simd128_rows4(taps: &[KernelTaps], bytes_start: usize, rows: [&[u8]; 4], scratch: &mut [u16], outs: [&mut [u8]; 4]) {
    use std::arch::wasm32::*;
    let n = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == n) && scratch.len() == 4 * n, "four rows of {n} bytes");
    for out in &outs {
        assert_eq!(out.len(), taps.len() * 3, "output row length");
    }
    // Transpose, sixteen bytes of each row a step: interleave rows 0/1 and
    // 2/3 byte by byte, then the pairs, then widen to u16.
    let mut p = 0;
    while p + 16 <= n {
        // SAFETY: p + 16 ≤ n, the length of each row; 4·(p + 16) ≤ scratch.len().
        unsafe {
            let [a, b, c, d] = rows.map(|r| v128_load(r.as_ptr().add(p).cast()));
            let ab_lo = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(a, b);
            let ab_hi = i8x16_shuffle::<8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31>(a, b);
            let cd_lo = i8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(c, d);
            let cd_hi = i8x16_shuffle::<8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31>(c, d);
            let quads = [
                i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(ab_lo, cd_lo),
                i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(ab_lo, cd_lo),
                i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(ab_hi, cd_hi),
                i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(ab_hi, cd_hi),
            ];
            let to = scratch.as_mut_ptr().add(4 * p);
            for (q, v) in quads.into_iter().enumerate() {
                v128_store(to.add(16 * q).cast(), u16x8_extend_low_u8x16(v));
                v128_store(to.add(16 * q + 8).cast(), u16x8_extend_high_u8x16(v));
            }
        }
        p += 16;
    }
    for p in p..n {
        for (r, row) in rows.iter().enumerate() {
            scratch[4 * p + r] = u16::from(row[p]);
        }
    }
    let last = taps.len().saturating_sub(1);
    let [o0, o1, o2, o3] = outs.map(|o| o.as_mut_ptr());
    for (i, tap) in taps.iter().enumerate() {
        let k = tap.taps.weights.len();
        let first = tap.taps.start * 3 - bytes_start;
        assert!(first + 3 * k <= n, "taps inside the transposed bytes");
        let (mut r, mut g, mut b) = (i32x4_splat(ROUND), i32x4_splat(ROUND), i32x4_splat(ROUND));
        // SAFETY: tap j of channel c reads scratch[4·(first + 3j + c)..][..4],
        // inside as first + 3k ≤ n (asserted); `wide` holds at least k weights.
        unsafe {
            let mut src = scratch.as_ptr().add(4 * first);
            let mut w = tap.wide.as_ptr();
            for _ in 0..k {
                let weight = v128_load(w.cast());
                r = i32x4_add(r, i32x4_mul(u32x4_load_extend_u16x4(src), weight));
                g = i32x4_add(g, i32x4_mul(u32x4_load_extend_u16x4(src.add(4)), weight));
                b = i32x4_add(b, i32x4_mul(u32x4_load_extend_u16x4(src.add(8)), weight));
                src = src.add(12);
                w = w.add(1);
            }
        }
        let [r, g, b] = [r, g, b].map(|v| i32x4_shr(v, PRECISION_BITS));
        // Saturating narrows (the clamp of `clip8`): R₀..R₃ G₀..G₃ B₀..B₃,
        // then each row's R G B together, a fourth byte after it.
        let bytes = u8x16_narrow_i16x8(i16x8_narrow_i32x4(r, g), i16x8_narrow_i32x4(b, b));
        let pixels = i8x16_shuffle::<0, 4, 8, 0, 1, 5, 9, 0, 2, 6, 10, 0, 3, 7, 11, 0>(bytes, bytes);
        // SAFETY: each output row holds 3 bytes per tap (asserted above).
        unsafe {
            if i < last {
                // Four bytes each, the fourth overwritten by the next pixel's R.
                v128_store32_lane::<0>(pixels, o0.add(3 * i).cast());
                v128_store32_lane::<1>(pixels, o1.add(3 * i).cast());
                v128_store32_lane::<2>(pixels, o2.add(3 * i).cast());
                v128_store32_lane::<3>(pixels, o3.add(3 * i).cast());
            } else {
                let mut four = [0u8; 16];
                v128_store(four.as_mut_ptr().cast(), pixels);
                for (r, o) in [o0, o1, o2, o3].into_iter().enumerate() {
                    std::ptr::copy_nonoverlapping(four.as_ptr().add(4 * r), o.add(3 * i), 3);
                }
            }
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
    fn whole_images_give_the_bytes_of_the_plain_loop() {
        // `rows` takes four rows at a time in the component, the rest one by
        // one: heights around multiples of four, windows that start and end
        // inside the row and ones that take all of it, an enlargement.
        for (w, ow, skip, take) in [(1280u32, 398u32, 87, 224), (97, 40, 0, 40), (23, 61, 5, 50), (64, 17, 16, 1)] {
            let pass = Horizontal::new(w as usize, taps(w, ow, Filter::Bicubic).into_iter().skip(skip).take(take));
            for h in [1usize, 3, 4, 5, 8, 9] {
                let mut rgb = noise(w as usize * 3 * h, w + ow + h as u32);
                rgb[..6].copy_from_slice(&[0, 255, 0, 255, 0, 255]);
                let stride = pass.len() * 3;
                let mut got = vec![0; stride * (h - 1)];
                pass.rows(&rgb, 1..h, &mut got);
                let mut want = vec![0; stride * (h - 1)];
                for (y, out) in (1..h).zip(want.chunks_exact_mut(stride)) {
                    let mut row = rgb[y * w as usize * 3..(y + 1) * w as usize * 3].to_vec();
                    row.extend_from_slice(&[0; SLACK]);
                    pass.row_portable(&row, out);
                }
                assert_eq!(got, want, "{w} -> {ow}, columns {skip}..{}, rows 1..{h}", skip + take);
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
