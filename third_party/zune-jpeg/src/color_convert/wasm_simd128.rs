/*
 * Added by BuscaEscenas to zune-jpeg 0.5.15 (see PATCHES.md at the crate's
 * root); under the crate's licences (MIT, Apache-2.0 or Zlib).
 */

//! YCbCr → RGB(A) for WebAssembly with the 128-bit SIMD proposal.
//!
//! Bit-exact with `scalar::ycbcr_to_rgb_inner_16_scalar`: the same 14-bit
//! fixed-point arithmetic in i32 lanes, summed in another order (integer
//! addition, so the same value), clamped by two saturating narrows
//! (i32 → i16 → u8) instead of `clamp(0, 255)`. Sixteen pixels a call, as
//! the scalar, AVX2 and NEON versions. Compiled only for
//! `wasm32` with `target_feature = "simd128"`, where it replaces the scalar
//! version, which was a third of a 1280×720 decode in wasmtime.

#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use core::arch::wasm32::*;

use crate::color_convert::scalar::{CB_CF, CR_CF, C_G_CB_COEF_2, C_G_CR_COEF_1, YUV_PREC, YUV_RND, Y_CF};

// `y · Y_CF` is written as a shift below.
const _: () = assert!(Y_CF == 1 << YUV_PREC);

/// Eight pixels' R, G and B as i16 lanes (saturated from i32; the caller's
/// narrow to u8 clamps them to 0..=255); `i` is 0 or 8.
#[inline(always)]
fn rgb8(y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16], i: usize) -> (v128, v128, v128) {
    let bias = i16x8_splat(128);
    // SAFETY: `i` is 0 or 8, so 8 lanes from `i` are inside each array.
    let (y, cb, cr) = unsafe {
        (
            v128_load(y.as_ptr().add(i).cast()),
            i16x8_sub(v128_load(cb.as_ptr().add(i).cast()), bias),
            i16x8_sub(v128_load(cr.as_ptr().add(i).cast()), bias)
        )
    };
    let rnd = i32x4_splat(i32::from(YUV_RND));
    let y_lo = i32x4_add(i32x4_shl(i32x4_extend_low_i16x8(y), YUV_PREC as u32), rnd);
    let y_hi = i32x4_add(i32x4_shl(i32x4_extend_high_i16x8(y), YUV_PREC as u32), rnd);

    // Each channel is one dot product of (cr, cb) pairs with its two
    // coefficients (pmaddwd on x86), R and B with a zero for the other.
    let crcb_lo = i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(cr, cb);
    let crcb_hi = i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(cr, cb);
    let pair = |a: i16, b: i16| i16x8(a, b, a, b, a, b, a, b);
    let (r_cf, g_cf, b_cf) = (pair(CR_CF, 0), pair(C_G_CR_COEF_1, C_G_CB_COEF_2), pair(0, CB_CF));
    let r_lo = i32x4_add(y_lo, i32x4_dot_i16x8(crcb_lo, r_cf));
    let r_hi = i32x4_add(y_hi, i32x4_dot_i16x8(crcb_hi, r_cf));
    let g_lo = i32x4_add(y_lo, i32x4_dot_i16x8(crcb_lo, g_cf));
    let g_hi = i32x4_add(y_hi, i32x4_dot_i16x8(crcb_hi, g_cf));
    let b_lo = i32x4_add(y_lo, i32x4_dot_i16x8(crcb_lo, b_cf));
    let b_hi = i32x4_add(y_hi, i32x4_dot_i16x8(crcb_hi, b_cf));

    let shift = YUV_PREC as u32;
    let narrow = |lo: v128, hi: v128| i16x8_narrow_i32x4(i32x4_shr(lo, shift), i32x4_shr(hi, shift));
    (narrow(r_lo, r_hi), narrow(g_lo, g_hi), narrow(b_lo, b_hi))
}

/// Sixteen pixels' R, G and B, one byte each, clamped to 0..=255.
#[inline(always)]
fn rgb16(y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16]) -> (v128, v128, v128) {
    let (r0, g0, b0) = rgb8(y, cb, cr, 0);
    let (r1, g1, b1) = rgb8(y, cb, cr, 8);
    // An opaque zero between the two saturating narrows: seeing them back to
    // back, LLVM folded both into i32 clamps and byte permutes (`vpermi2b`
    // under Cranelift), about 40 instructions where two packs do.
    let z = core::hint::black_box(i16x8_splat(0));
    let n = |a: v128, b: v128| u8x16_narrow_i16x8(i16x8_add(a, z), i16x8_add(b, z));
    (n(r0, r1), n(g0, g1), n(b0, b1))
}

/// Writes sixteen RGB pixels (48 bytes) at `output[*pos..]` and advances `pos`.
pub fn ycbcr_to_rgb_simd128(
    y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16], output: &mut [u8], pos: &mut usize
) {
    let out: &mut [u8; 48] = output
        .get_mut(*pos..*pos + 48)
        .expect("Slice to small cannot write")
        .try_into()
        .unwrap();
    let (r, g, b) = rgb16(y, cb, cr);
    // Interleave: each output vector is R and G placed by one shuffle, then B
    // filled into the lanes left by a second (lane 0 of `rg` stands for "any").
    let rg0 = u8x16_shuffle::<0, 16, 0, 1, 17, 0, 2, 18, 0, 3, 19, 0, 4, 20, 0, 5>(r, g);
    let o0 = u8x16_shuffle::<0, 1, 16, 3, 4, 17, 6, 7, 18, 9, 10, 19, 12, 13, 20, 15>(rg0, b);
    let rg1 = u8x16_shuffle::<21, 0, 6, 22, 0, 7, 23, 0, 8, 24, 0, 9, 25, 0, 10, 26>(r, g);
    let o1 = u8x16_shuffle::<0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11, 12, 25, 14, 15>(rg1, b);
    let rg2 = u8x16_shuffle::<0, 11, 27, 0, 12, 28, 0, 13, 29, 0, 14, 30, 0, 15, 31, 0>(r, g);
    let o2 = u8x16_shuffle::<26, 1, 2, 27, 4, 5, 28, 7, 8, 29, 10, 11, 30, 13, 14, 31>(rg2, b);
    // SAFETY: `out` is 48 bytes; the stores are unaligned ones.
    unsafe {
        v128_store(out.as_mut_ptr().cast(), o0);
        v128_store(out.as_mut_ptr().add(16).cast(), o1);
        v128_store(out.as_mut_ptr().add(32).cast(), o2);
    }
    *pos += 48;
}

/// Writes sixteen RGBA pixels (64 bytes, alpha 255) at `output[*pos..]` and
/// advances `pos`.
pub fn ycbcr_to_rgba_simd128(
    y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16], output: &mut [u8], pos: &mut usize
) {
    let out: &mut [u8; 64] = output
        .get_mut(*pos..*pos + 64)
        .expect("Slice to small cannot write")
        .try_into()
        .unwrap();
    let (r, g, b) = rgb16(y, cb, cr);
    let a = u8x16_splat(255);
    let rg_lo = u8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(r, g);
    let rg_hi = u8x16_shuffle::<8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31>(r, g);
    let ba_lo = u8x16_shuffle::<0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23>(b, a);
    let ba_hi = u8x16_shuffle::<8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31>(b, a);
    let pixels = [
        u16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(rg_lo, ba_lo),
        u16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(rg_lo, ba_lo),
        u16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(rg_hi, ba_hi),
        u16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(rg_hi, ba_hi)
    ];
    for (k, v) in pixels.into_iter().enumerate() {
        // SAFETY: `out` is 64 bytes, four 16-byte unaligned stores.
        unsafe { v128_store(out.as_mut_ptr().add(16 * k).cast(), v) };
    }
    *pos += 64;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color_convert::scalar::{ycbcr_to_rgb_inner_16_scalar, ycbcr_to_rgba_inner_16_scalar};

    /// Every (Y, Cb, Cr) byte triple, sixteen at a time, against the scalar
    /// functions; then values outside 0..=255 (an IDCT's output is not
    /// clamped before conversion in every path).
    #[test]
    fn same_bytes_as_scalar() {
        let check = |y: &[i16; 16], cb: &[i16; 16], cr: &[i16; 16]| {
            let (mut a, mut b) = ([0u8; 50], [0u8; 50]);
            let (mut pa, mut pb) = (1, 1);
            ycbcr_to_rgb_simd128(y, cb, cr, &mut a, &mut pa);
            ycbcr_to_rgb_inner_16_scalar::<false>(y, cb, cr, &mut b, &mut pb);
            assert_eq!((a, pa), (b, pb), "RGB of y {y:?} cb {cb:?} cr {cr:?}");
            let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
            let (mut pa, mut pb) = (0, 0);
            ycbcr_to_rgba_simd128(y, cb, cr, &mut a, &mut pa);
            ycbcr_to_rgba_inner_16_scalar::<false>(y, cb, cr, &mut b, &mut pb);
            assert_eq!((a, pa), (b, pb), "RGBA of y {y:?} cb {cb:?} cr {cr:?}");
        };
        for cb in 0..256 {
            for cr in 0..256 {
                for y0 in (0..256).step_by(16) {
                    let y: [i16; 16] = core::array::from_fn(|k| (y0 + k) as i16);
                    let cbs: [i16; 16] = core::array::from_fn(|k| ((cb + 7 * k) % 256) as i16);
                    let crs = [cr as i16; 16];
                    check(&y, &cbs, &crs);
                }
            }
        }
        let odd = [-32000, -300, -1, 256, 300, 1000, 32767, 0, 255, -129, 383, 12, 128, 127, 129, -5000];
        let rot = |k: usize| -> [i16; 16] { core::array::from_fn(|i| odd[(i + k) % 16]) };
        for k in 0..16 {
            check(&rot(k), &rot(k + 3), &rot(k + 7));
        }
    }
}
