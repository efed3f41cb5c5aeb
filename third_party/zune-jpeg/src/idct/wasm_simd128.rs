/*
 * Added by BuscaEscenas to zune-jpeg 0.5.15 (see PATCHES.md at the crate's
 * root); under the crate's licences (MIT, Apache-2.0 or Zlib).
 */

//! IDCT for WebAssembly with the 128-bit SIMD proposal.
//!
//! - [`idct_simd128`]: `scalar::idct_int` on all eight columns at once, each
//!   row of the block in two i32x4 vectors, as `neon.rs` does on aarch64: the
//!   same integer operations (wrapping, as the scalar code's `wa`/`ws`/`wm`),
//!   so the same samples.
//! - [`idct_1x1_simd128`]: a block whose AC coefficients are all zero (most
//!   blocks of a flat or smooth picture): one value for all 64 samples,
//!   stored a row (one 16-byte store) at a time. Cranelift compiles the
//!   scalar version's `fill` to 64 two-byte stores.

#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use core::arch::wasm32::*;

/// Eight i32 lanes: one row (or, after a transpose, one column) of a block.
#[derive(Clone, Copy)]
struct Row(v128, v128);

impl Row {
    fn load(coefficients: &[i32; 64], row: usize) -> Row {
        let lanes = &coefficients[8 * row..8 * row + 8];
        // SAFETY: `lanes` is 8 i32, 32 bytes; v128_load takes unaligned addresses.
        unsafe { Row(v128_load(lanes.as_ptr().cast()), v128_load(lanes.as_ptr().add(4).cast())) }
    }
    fn splat(v: i32) -> Row {
        Row(i32x4_splat(v), i32x4_splat(v))
    }
    fn shl12(self) -> Row {
        Row(i32x4_shl(self.0, 12), i32x4_shl(self.1, 12))
    }
    fn shr(self, bits: u32) -> Row {
        Row(i32x4_shr(self.0, bits), i32x4_shr(self.1, bits))
    }
}

impl core::ops::Add for Row {
    type Output = Row;
    fn add(self, o: Row) -> Row {
        Row(i32x4_add(self.0, o.0), i32x4_add(self.1, o.1))
    }
}

impl core::ops::Sub for Row {
    type Output = Row;
    fn sub(self, o: Row) -> Row {
        Row(i32x4_sub(self.0, o.0), i32x4_sub(self.1, o.1))
    }
}

impl core::ops::Mul<i32> for Row {
    type Output = Row;
    fn mul(self, c: i32) -> Row {
        let c = i32x4_splat(c);
        Row(i32x4_mul(self.0, c), i32x4_mul(self.1, c))
    }
}

/// Transposes four rows of four i32 lanes.
#[inline(always)]
fn transpose4(a: v128, b: v128, c: v128, d: v128) -> [v128; 4] {
    let ab_lo = i32x4_shuffle::<0, 4, 1, 5>(a, b);
    let ab_hi = i32x4_shuffle::<2, 6, 3, 7>(a, b);
    let cd_lo = i32x4_shuffle::<0, 4, 1, 5>(c, d);
    let cd_hi = i32x4_shuffle::<2, 6, 3, 7>(c, d);
    [
        i64x2_shuffle::<0, 2>(ab_lo, cd_lo),
        i64x2_shuffle::<1, 3>(ab_lo, cd_lo),
        i64x2_shuffle::<0, 2>(ab_hi, cd_hi),
        i64x2_shuffle::<1, 3>(ab_hi, cd_hi),
    ]
}

/// Transposes an 8×8 block held as eight [`Row`]s: four 4×4 transposes, the
/// off-diagonal ones swapped.
#[inline(always)]
fn transpose(r: [Row; 8]) -> [Row; 8] {
    let [a0, a1, a2, a3] = transpose4(r[0].0, r[1].0, r[2].0, r[3].0);
    let [b0, b1, b2, b3] = transpose4(r[0].1, r[1].1, r[2].1, r[3].1);
    let [c0, c1, c2, c3] = transpose4(r[4].0, r[5].0, r[6].0, r[7].0);
    let [d0, d1, d2, d3] = transpose4(r[4].1, r[5].1, r[6].1, r[7].1);
    [Row(a0, c0), Row(a1, c1), Row(a2, c2), Row(a3, c3), Row(b0, d0), Row(b1, d1), Row(b2, d2), Row(b3, d3)]
}

/// One 1-D pass of `scalar::idct_int` over eight lanes at once: `bias` is
/// added to the even part, the results are shifted right by `shift`.
#[inline(always)]
fn pass(r: [Row; 8], bias: i32, shift: u32) -> [Row; 8] {
    let [r0, r1, r2, r3, r4, r5, r6, r7] = r;
    // Even part.
    let p1 = (r2 + r6) * 2217;
    let t2 = p1 + r6 * -7567;
    let t3 = p1 + r2 * 3135;
    let t0 = (r0 + r4).shl12();
    let t1 = (r0 - r4).shl12();
    let bias = Row::splat(bias);
    let x0 = t0 + t3 + bias;
    let x3 = t0 - t3 + bias;
    let x1 = t1 + t2 + bias;
    let x2 = t1 - t2 + bias;
    // Odd part.
    let p3 = r7 + r3;
    let p4 = r5 + r1;
    let p1 = r7 + r1;
    let p2 = r5 + r3;
    let p5 = (p3 + p4) * 4816;
    let t0 = r7 * 1223;
    let t1 = r5 * 8410;
    let t2 = r3 * 12586;
    let t3 = r1 * 6149;
    let p1 = p5 + p1 * -3685;
    let p2 = p5 + p2 * -10497;
    let p3 = p3 * -8034;
    let p4 = p4 * -1597;
    let t3 = t3 + (p1 + p4);
    let t2 = t2 + (p2 + p3);
    let t1 = t1 + (p2 + p4);
    let t0 = t0 + (p1 + p3);
    [
        (x0 + t3).shr(shift),
        (x1 + t2).shr(shift),
        (x2 + t1).shr(shift),
        (x3 + t0).shr(shift),
        (x3 - t0).shr(shift),
        (x2 - t1).shr(shift),
        (x1 - t2).shr(shift),
        (x0 - t3).shr(shift),
    ]
}

/// `scalar::idct_int` on eight lanes at once: the same samples, the same
/// rows of `out_vector` written (a row that does not fit is dropped, as
/// there), and the same shortcut for a block with no AC coefficient. Unlike
/// the scalar code it leaves `in_vector` as it found it; the decoder clears
/// each block itself before the next one.
pub fn idct_simd128(in_vector: &mut [i32; 64], out_vector: &mut [i16], stride: usize) {
    let rows: [Row; 8] = core::array::from_fn(|k| Row::load(in_vector, k));
    // Every AC coefficient zero: lane 0 of row 0 (the DC) left out.
    let first_ac = i32x4_replace_lane::<0>(rows[0].0, 0);
    let any = rows[1..].iter().fold(v128_or(first_ac, rows[0].1), |acc, r| v128_or(acc, v128_or(r.0, r.1)));
    if !v128_any_true(any) {
        return idct_1x1_simd128(in_vector, out_vector, stride);
    }
    // Columns (the scalar code's vertical pass), then rows.
    let columns = pass(rows, 512, 10);
    let samples = transpose(pass(transpose(columns), 65536 + 512 + (128 << 17), 17));
    let (zero, max) = (i16x8_splat(0), i16x8_splat(255));
    // Saturating i32 → i16, then the clamp to 0..=255 of the scalar code.
    let rows = samples.map(|r| i16x8_min(i16x8_max(i16x8_narrow_i32x4(r.0, r.1), zero), max));
    if out_vector.len() >= 7 * stride + 8 {
        // One check for the eight rows: with one per row LLVM duplicated the
        // whole transform into each branch (six times the code).
        let base = out_vector.as_mut_ptr();
        for (k, v) in rows.into_iter().enumerate() {
            // SAFETY: row k's 8 samples end at 7·stride + 8 ≤ len at most.
            unsafe { v128_store(base.add(k * stride).cast(), v) };
        }
    } else {
        for (k, v) in rows.into_iter().enumerate() {
            if let Some(lanes) = out_vector.get_mut(k * stride..k * stride + 8) {
                // SAFETY: `lanes` is 8 i16, 16 bytes; v128_store takes unaligned addresses.
                unsafe { v128_store(lanes.as_mut_ptr().cast(), v) };
            }
        }
    }
}

/// `scalar::idct_int_1x1` with vector stores: the same value, the same rows.
pub fn idct_1x1_simd128(in_vector: &mut [i32; 64], out_vector: &mut [i16], stride: usize) {
    let coeff = ((in_vector[0].wrapping_add(4).wrapping_add(1024) >> 3).clamp(0, 255)) as i16;
    let value = i16x8_splat(coeff);
    // The last row's 8 samples end at 7·stride + 8: one check for all eight
    // rows (a shorter buffer panics at the first row past it, as the
    // scalar version does).
    if out_vector.len() >= 7 * stride + 8 {
        let base = out_vector.as_mut_ptr();
        for row in 0..8 {
            // SAFETY: row·stride + 8 ≤ 7·stride + 8 ≤ len.
            unsafe { v128_store(base.add(row * stride).cast(), value) };
        }
        return;
    }
    for row in 0..8 {
        let lanes = &mut out_vector[row * stride..row * stride + 8];
        // SAFETY: `lanes` is 8 i16, 16 bytes; v128_store takes unaligned addresses.
        unsafe { v128_store(lanes.as_mut_ptr().cast(), value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idct::scalar::{idct_int, idct_int_1x1};

    /// Blocks of random coefficients (dense, sparse, DC only, huge values
    /// that wrap) against the scalar IDCT, at strides with and without room.
    #[test]
    fn same_samples_as_scalar() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..4000 {
            let mut block = [0i32; 64];
            let (count, range) = match case % 4 {
                0 => (64, 2048),
                1 => (6, 1024),
                2 => (1, 4096),
                _ => (64, i32::MAX as u64),
            };
            for _ in 0..count {
                let at = if count == 1 { 0 } else { (next() % 64) as usize };
                block[at] = ((next() % (2 * range)) as i64 - range as i64) as i32;
            }
            // A buffer too short for the block: the full IDCT drops the rows
            // that do not fit, where the DC-only one panics (both versions).
            let has_ac = block[1..].iter().any(|&c| c != 0);
            for (stride, len) in [(8, 64), (16, 8 * 15 + 8), (8, 40)] {
                if len < 64 && !has_ac {
                    continue;
                }
                let (mut a_in, mut b_in) = (block, block);
                let (mut a, mut b) = (vec![-3i16; len], vec![-3i16; len]);
                idct_simd128(&mut a_in, &mut a, stride);
                idct_int(&mut b_in, &mut b, stride);
                assert_eq!(a, b, "block {block:?}, stride {stride}, {len} samples");
            }
        }
    }

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
