/*
 * Added by BuscaEscenas to zune-jpeg 0.5.15 (see PATCHES.md at the crate's
 * root); under the crate's licences (MIT, Apache-2.0 or Zlib).
 */

//! IDCT of a block whose AC coefficients are all zero (most blocks of a
//! flat or smooth picture), for WebAssembly with the 128-bit SIMD proposal:
//! one value for all 64 samples, stored a row (one 16-byte store) at a time.
//! Cranelift compiles the scalar version's `fill` to 64 two-byte stores.

#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use core::arch::wasm32::*;

/// `scalar::idct_int_1x1` with vector stores: the same value, the same rows.
pub fn idct_1x1_simd128(in_vector: &mut [i32; 64], out_vector: &mut [i16], stride: usize) {
    let coeff = ((in_vector[0].wrapping_add(4).wrapping_add(1024) >> 3).clamp(0, 255)) as i16;
    let value = i16x8_splat(coeff);
    for row in 0..8 {
        let lanes = &mut out_vector[row * stride..row * stride + 8];
        // SAFETY: `lanes` is 8 i16, 16 bytes; v128_store takes unaligned addresses.
        unsafe { v128_store(lanes.as_mut_ptr().cast(), value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idct::scalar::idct_int_1x1;

    #[test]
    fn same_block_as_scalar() {
        for dc in [-5000, -1029, -1028, -1, 0, 7, 100, 1000, 1019, 1020, 4000, i32::MAX - 2000] {
            for stride in [8, 9, 16, 40] {
                let mut coeff = [0i32; 64];
                coeff[0] = dc;
                let mut coeff2 = coeff;
                let (mut a, mut b) = (vec![-7i16; 7 * stride + 8], vec![-7i16; 7 * stride + 8]);
                idct_1x1_simd128(&mut coeff, &mut a, stride);
                idct_int_1x1(&mut coeff2, &mut b, stride);
                assert_eq!(a, b, "dc {dc}, stride {stride}");
            }
        }
    }
}
