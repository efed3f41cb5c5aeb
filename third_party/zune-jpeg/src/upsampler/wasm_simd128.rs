/*
 * Added by BuscaEscenas to zune-jpeg 0.5.15 (see PATCHES.md at the crate's
 * root); under the crate's licences (MIT, Apache-2.0 or Zlib).
 */

//! Chroma upsampling for WebAssembly with the 128-bit SIMD proposal.
//!
//! The same triangle filter as `scalar.rs`, `(3·near + far + 2) >> 2` in
//! i16 lanes (wrapping, as the scalar code in release builds), eight
//! samples a step; the scalar functions finish each row's tail. Bit-exact
//! with `scalar.rs` (tests below, run under wasmtime).

#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use core::arch::wasm32::*;

use super::scalar;

/// `(3·near + far + 2) >> 2` on eight lanes.
#[inline(always)]
fn triangle(near: v128, far: v128) -> v128 {
    let three_near = i16x8_add(i16x8_add(near, near), near);
    i16x8_shr(i16x8_add(i16x8_add(three_near, i16x8_splat(2)), far), 2)
}

/// Eight i16 from `s[at..at + 8]`.
#[inline(always)]
fn load8(s: &[i16], at: usize) -> v128 {
    let lanes = &s[at..at + 8];
    // SAFETY: `lanes` is 8 i16, 16 bytes; v128_load takes unaligned addresses.
    unsafe { v128_load(lanes.as_ptr().cast()) }
}

/// Eight i16 to `s[at..at + 8]`.
#[inline(always)]
fn store8(s: &mut [i16], at: usize, v: v128) {
    let lanes = &mut s[at..at + 8];
    // SAFETY: as in `load8`.
    unsafe { v128_store(lanes.as_mut_ptr().cast(), v) }
}

/// Vertical 2× (4:4:0): each row's samples against the row above (top half
/// of `output`) and the row below (bottom half).
pub fn upsample_vertical_simd128(
    input: &[i16], in_near: &[i16], in_far: &[i16], scratch: &mut [i16], output: &mut [i16]
) {
    assert_eq!(input.len() * 2, output.len());
    assert_eq!(in_near.len(), input.len());
    assert_eq!(in_far.len(), input.len());
    let n = input.len();
    let body = n - n % 8;
    let (top, bottom) = output.split_at_mut(n);
    for i in (0..body).step_by(8) {
        let current = load8(input, i);
        store8(top, i, triangle(current, load8(in_near, i)));
        store8(bottom, i, triangle(current, load8(in_far, i)));
    }
    if body < n {
        // The tail through the scalar code: it writes its output's two
        // halves from its inputs' lengths, so give it just the tail.
        let mut tail = [0i16; 16];
        let t = n - body;
        scalar::upsample_vertical(&input[body..], &in_near[body..], &in_far[body..], scratch, &mut tail[..2 * t]);
        top[body..].copy_from_slice(&tail[..t]);
        bottom[body..].copy_from_slice(&tail[t..2 * t]);
    }
}

/// Horizontal 2× (4:2:2): sample `k` becomes `(3·in[k] + in[k−1] + 2) >> 2`
/// and `(3·in[k] + in[k+1] + 2) >> 2`, the row's ends copied or weighted as
/// in `scalar::upsample_horizontal`.
pub fn upsample_horizontal_simd128(
    input: &[i16], in_ref: &[i16], in_near: &[i16], scratch: &mut [i16], output: &mut [i16]
) {
    assert_eq!(input.len() * 2, output.len(), "Input length is not half the size of the output length");
    assert!(output.len() > 4 && input.len() > 2, "Too Short of a vector, cannot upsample");
    let n = input.len();
    // Windows k = 0..n−2 around input[k + 1] write output[2k + 2], output[2k + 3];
    // eight windows read input[k..k + 10] and write output[2k + 2..2k + 18].
    let mut k = 0;
    let (src, dst) = (input.as_ptr(), output.as_mut_ptr());
    while k + 10 <= n {
        // SAFETY: k + 10 ≤ n = input.len(), and 2k + 18 ≤ 2n − 2 < output.len()
        // (asserted 2n above); unchecked, as Cranelift kept every slice
        // check of the checked version, with its operands on the stack.
        unsafe {
            let left = v128_load(src.add(k).cast());
            let mid = v128_load(src.add(k + 1).cast());
            let right = v128_load(src.add(k + 2).cast());
            let even = triangle(mid, left);
            let odd = triangle(mid, right);
            v128_store(dst.add(2 * k + 2).cast(), i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(even, odd));
            v128_store(dst.add(2 * k + 10).cast(), i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(even, odd));
        }
        k += 8;
    }
    // The ends and the remaining windows: the scalar code on the same row
    // rewrites what the vector loop wrote with the same values, so run it
    // only from the first window not done, with the row's first samples.
    if k == 0 {
        return scalar::upsample_horizontal(input, in_ref, in_near, scratch, output);
    }
    output[0] = input[0];
    output[1] = (input[0] * 3 + input[1] + 2) >> 2;
    for j in k..n - 2 {
        let sample = 3 * input[j + 1] + 2;
        output[2 * j + 2] = (sample + input[j]) >> 2;
        output[2 * j + 3] = (sample + input[j + 2]) >> 2;
    }
    output[2 * n - 2] = (3 * input[n - 1] + input[n - 2] + 2) >> 2;
    output[2 * n - 1] = input[n - 1];
}

/// Both directions (4:2:0): vertical into `scratch`, then each half horizontally.
pub fn upsample_hv_simd128(
    input: &[i16], in_near: &[i16], in_far: &[i16], scratch: &mut [i16], output: &mut [i16]
) {
    assert_eq!(input.len() * 4, output.len());
    assert!(input.len() * 2 <= scratch.len());
    let scratch = &mut scratch[..input.len() * 2];
    let mut none = [0i16; 1];
    upsample_vertical_simd128(input, in_near, in_far, &mut none, scratch);
    let (top, bottom) = scratch.split_at(input.len());
    let (out_top, out_bottom) = output.split_at_mut(output.len() / 2);
    upsample_horizontal_simd128(top, &[], &[], &mut none, out_top);
    upsample_horizontal_simd128(bottom, &[], &[], &mut none, out_bottom);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of every length from 3 to 70 samples, with values across and
    /// beyond 0..=255, against the scalar functions.
    #[test]
    fn same_samples_as_scalar() {
        let value = |i: usize, salt: usize| (((i * 73 + salt * 151) % 600) as i16) - 150;
        for n in 3..=70 {
            let input: Vec<i16> = (0..n).map(|i| value(i, 1)).collect();
            let near: Vec<i16> = (0..n).map(|i| value(i, 2)).collect();
            let far: Vec<i16> = (0..n).map(|i| value(i, 3)).collect();
            let mut scratch = vec![0i16; 4 * n];

            let (mut a, mut b) = (vec![0i16; 2 * n], vec![0i16; 2 * n]);
            upsample_vertical_simd128(&input, &near, &far, &mut scratch, &mut a);
            scalar::upsample_vertical(&input, &near, &far, &mut scratch, &mut b);
            assert_eq!(a, b, "vertical, {n} samples");

            let (mut a, mut b) = (vec![0i16; 2 * n], vec![0i16; 2 * n]);
            upsample_horizontal_simd128(&input, &[], &[], &mut scratch, &mut a);
            scalar::upsample_horizontal(&input, &[], &[], &mut scratch, &mut b);
            assert_eq!(a, b, "horizontal, {n} samples");

            let (mut a, mut b) = (vec![0i16; 4 * n], vec![0i16; 4 * n]);
            upsample_hv_simd128(&input, &near, &far, &mut scratch, &mut a);
            let mut scratch2 = vec![0i16; 4 * n];
            scalar::upsample_hv(&input, &near, &far, &mut scratch2, &mut b);
            assert_eq!(a, b, "both, {n} samples");
        }
    }
}
