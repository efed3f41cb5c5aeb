//! Image preprocessing as the model was trained with, in one of two fits:
//!
//! - [`Fit::ShortestSideCrop`] (CLIP): resize so the shortest side is `size`
//!   with bicubic (Catmull-Rom, a = −0.5, antialiased when shrinking, as
//!   Pillow's `BICUBIC`), then center crop `size × size`;
//! - [`Fit::Squash`] (SigLIP): the whole image resized to `size × size` with
//!   Pillow's `BILINEAR` (antialiased triangle filter), aspect ratio not kept,
//!   nothing cropped;
//!
//! then scale to `[0, 1]`, normalise each channel with the model's mean and
//! std, and lay out as CHW float32.
//!
//! The indexer lets swscale do the resize while decoding and calls
//! [`ClipPreprocess::crop_normalize_into`]; the component decodes query images
//! and calls [`ClipPreprocess::pixel_values`], whose resize reproduces Pillow's
//! fixed-point resampler bit for bit ([`resample`]): general-purpose
//! resizers round differently and drift up to 2 levels (0.03 after
//! normalisation) from the pixels the model was trained on. Checked against
//! fixtures made with Pillow (`core/tests/fixtures/gen_fixtures.py`).

mod horizontal;
use horizontal::Horizontal;

/// How an image of any shape becomes the model's square input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Shortest side to `size` with bicubic, then the center `size × size`
    /// (OpenAI CLIP; the manifest's `shortest-side-bicubic` / `center`).
    ShortestSideCrop,
    /// Whole image to `size × size` with bilinear, aspect ratio not kept
    /// (SigLIP; the manifest's `squash-bilinear` / `none`).
    Squash,
}

impl Fit {
    /// The fit a manifest's `resize` and `crop` rules name, if implemented.
    pub fn from_rules(resize: &str, crop: &str) -> Option<Fit> {
        match (resize, crop) {
            ("shortest-side-bicubic", "center") => Some(Fit::ShortestSideCrop),
            ("squash-bilinear", "none") => Some(Fit::Squash),
            _ => None,
        }
    }

    /// The resampling filter of this fit.
    pub fn filter(self) -> Filter {
        match self {
            Fit::ShortestSideCrop => Filter::Bicubic,
            Fit::Squash => Filter::Bilinear,
        }
    }

    /// Size of a `width × height` image after this fit's resize, before any crop.
    pub fn resized_dims(self, width: u32, height: u32, size: u32) -> (u32, u32) {
        match self {
            Fit::ShortestSideCrop => shortest_side_dims(width, height, size),
            Fit::Squash if width == 0 || height == 0 => (0, 0),
            Fit::Squash => (size, size),
        }
    }
}

/// A resampling filter, as Pillow defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Pillow's `BICUBIC` (a = −0.5, support 2).
    Bicubic,
    /// Pillow's `BILINEAR` (triangle, support 1).
    Bilinear,
}

/// Image preprocessing parameters of a CLIP model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipPreprocess {
    /// Side of the square model input (224 for ViT-L/14).
    pub size: u32,
    /// Per-channel mean.
    pub mean: [f32; 3],
    /// Per-channel standard deviation.
    pub std: [f32; 3],
    /// How the image is brought to `size × size`.
    pub fit: Fit,
}

/// An RGB image that cannot be preprocessed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreprocessError {
    /// The buffer length does not match `width × height × 3`.
    #[error("RGB buffer of {len} bytes does not match {width}x{height}")]
    BufferSize {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Buffer length.
        len: usize,
    },
    /// The image has a zero side.
    #[error("image has zero width or height")]
    Empty,
    /// A pre-resized frame is not the size the fit gives (`size` on its
    /// shortest side, or `size × size` for a squash).
    #[error("frame {width}x{height} is not resized to the model's {size} px input")]
    NotResized {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Expected shortest side.
        size: u32,
    },
}

impl ClipPreprocess {
    /// OpenAI CLIP's normalisation at 224 px.
    pub const OPENAI_224: ClipPreprocess = ClipPreprocess {
        size: 224,
        mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
        std: [0.268_629_54, 0.261_302_58, 0.275_777_1],
        fit: Fit::ShortestSideCrop,
    };

    /// Number of floats in one preprocessed image (`3 × size × size`).
    pub fn tensor_len(&self) -> usize {
        3 * (self.size as usize) * (self.size as usize)
    }

    /// Size after the fit's resize: for CLIP the shortest side becomes `size`,
    /// keeping the aspect ratio, and the long side is truncated as torchvision
    /// does (`int(size * long / short)`); for a squash, `size × size`.
    pub fn resized_dims(&self, width: u32, height: u32) -> (u32, u32) {
        self.fit.resized_dims(width, height, self.size)
    }

    /// Top-left corner of the center crop of a `width × height` image, as
    /// torchvision computes it: `int(round((h − size) / 2))`, and Python's
    /// `round` rounds halves to even.
    pub fn crop_origin(&self, width: u32, height: u32) -> (u32, u32) {
        let half_even = |excess: u32| -> u32 {
            let (q, r) = (excess / 2, excess % 2);
            // excess/2 = q + r/2: a remainder of 1 is exactly .5 → round to even.
            if r == 1 && q % 2 == 1 {
                q + 1
            } else {
                q
            }
        };
        (
            half_even(width.saturating_sub(self.size)),
            half_even(height.saturating_sub(self.size)),
        )
    }

    /// Full preprocessing of an RGB8 image into a new `3 × size × size` tensor.
    pub fn pixel_values(&self, width: u32, height: u32, rgb: &[u8]) -> Result<Vec<f32>, PreprocessError> {
        let mut out = vec![0.0; self.tensor_len()];
        self.pixel_values_into(width, height, rgb, &mut out)?;
        Ok(out)
    }

    /// Full preprocessing of an RGB8 image into `out` (`3 × size × size`).
    pub fn pixel_values_into(
        &self,
        width: u32,
        height: u32,
        rgb: &[u8],
        out: &mut [f32],
    ) -> Result<(), PreprocessError> {
        check_buffer(width, height, rgb)?;
        let (rw, rh) = self.resized_dims(width, height);
        if (rw, rh) == (width, height) {
            return self.crop_normalize_into(width, height, rgb, out);
        }
        // Only the pixels the crop keeps are resampled: each output pixel
        // depends on its own taps alone, so the window is the same bytes as
        // the same part of a full resize (a 16:9 frame's crop is 56% of it).
        let (left, top) = self.crop_origin(rw, rh);
        let (cw, ch) = (rw.min(self.size), rh.min(self.size));
        let window = Window { x: left, y: top, width: cw, height: ch };
        let cropped = resample_window(width, height, rgb, rw, rh, self.fit.filter(), window);
        self.normalize_into(cw, &cropped, (0, 0), out);
        Ok(())
    }

    /// Center crop and normalisation of a frame already resized by the fit
    /// (the indexer's swscale output): shortest side `size` for CLIP, exactly
    /// `size × size` for a squash.
    pub fn crop_normalize_into(
        &self,
        width: u32,
        height: u32,
        rgb: &[u8],
        out: &mut [f32],
    ) -> Result<(), PreprocessError> {
        check_buffer(width, height, rgb)?;
        let resized = match self.fit {
            Fit::ShortestSideCrop => width.min(height) == self.size,
            Fit::Squash => width == self.size && height == self.size,
        };
        if !resized {
            return Err(PreprocessError::NotResized {
                width,
                height,
                size: self.size,
            });
        }
        self.normalize_into(width, rgb, self.crop_origin(width, height), out);
        Ok(())
    }

    /// Normalises the `size × size` square at `(left, top)` of a `width`-wide
    /// RGB8 image into CHW floats.
    fn normalize_into(&self, width: u32, rgb: &[u8], (left, top): (u32, u32), out: &mut [f32]) {
        assert_eq!(out.len(), self.tensor_len(), "output tensor length");
        let size = self.size as usize;
        let plane = size * size;
        // Per channel: (v/255 − mean)/std = v·scale + offset.
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.std[c]));
        let offset: [f32; 3] = std::array::from_fn(|c| -self.mean[c] / self.std[c]);
        let (out_r, rest) = out.split_at_mut(plane);
        let (out_g, out_b) = rest.split_at_mut(plane);
        for y in 0..size {
            let row_start = ((top as usize + y) * width as usize + left as usize) * 3;
            let row = &rgb[row_start..row_start + size * 3];
            let o = y * size;
            for (x, px) in row.chunks_exact(3).enumerate() {
                out_r[o + x] = f32::from(px[0]) * scale[0] + offset[0];
                out_g[o + x] = f32::from(px[1]) * scale[1] + offset[1];
                out_b[o + x] = f32::from(px[2]) * scale[2] + offset[2];
            }
        }
    }
}

/// Size of a `width × height` image resized so that its shortest side is
/// `short`, keeping the aspect ratio; the long side is truncated as
/// torchvision does (`int(short * long / short_side)`). Zero sides give zero.
pub fn shortest_side_dims(width: u32, height: u32, short: u32) -> (u32, u32) {
    let (w, h, s) = (u64::from(width), u64::from(height), u64::from(short));
    if width == 0 || height == 0 {
        (0, 0)
    } else if w <= h {
        (short, ((s * h) / w) as u32)
    } else {
        (((s * w) / h) as u32, short)
    }
}

/// Pillow's fixed-point precision for 8-bit resampling (`Resample.c`).
const PRECISION_BITS: u32 = 32 - 8 - 2;

impl Filter {
    /// Half-width of the kernel at scale 1.
    fn support(self) -> f64 {
        match self {
            Filter::Bicubic => 2.0,
            Filter::Bilinear => 1.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Filter::Bicubic => bicubic(x),
            Filter::Bilinear => (1.0 - x.abs()).max(0.0),
        }
    }
}

/// Pillow's bicubic kernel (a = −0.5).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// One output sample's source window and fixed-point weights.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for one axis.
fn taps(in_size: u32, out_size: u32, filter: Filter) -> Vec<Taps> {
    let scale = f64::from(in_size) / f64::from(out_size);
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    (0..out_size)
        .map(|xx| {
            let center = (f64::from(xx) + 0.5) * scale;
            // Pillow truncates with a C cast; both ends are clamped to the image.
            let min = ((center - support + 0.5) as i64).max(0) as usize;
            let max = ((center + support + 0.5) as i64).min(i64::from(in_size)) as usize;
            let raw: Vec<f64> = (min..max)
                .map(|x| filter.weight((x as f64 - center + 0.5) / filter_scale))
                .collect();
            let total: f64 = raw.iter().sum();
            let weights = raw
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    let fixed = w * f64::from(1u32 << PRECISION_BITS);
                    (if fixed < 0.0 { fixed - 0.5 } else { fixed + 0.5 }) as i32
                })
                .collect();
            Taps { start: min, weights }
        })
        .collect()
}

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes RGB8 exactly as Pillow's `Image.resize(size, Image.BICUBIC)`.
pub fn resample_bicubic(width: u32, height: u32, rgb: &[u8], out_w: u32, out_h: u32) -> Vec<u8> {
    resample(width, height, rgb, out_w, out_h, Filter::Bicubic)
}

/// A rectangle of a resize's output: columns `x..x + width`, rows
/// `y..y + height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First column.
    pub x: u32,
    /// First row.
    pub y: u32,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
}

/// Resizes RGB8 exactly as Pillow's `Image.resize(size, filter)`: a
/// horizontal pass, rounded to 8 bits, then a vertical pass.
pub fn resample(width: u32, height: u32, rgb: &[u8], out_w: u32, out_h: u32, filter: Filter) -> Vec<u8> {
    let all = Window { x: 0, y: 0, width: out_w, height: out_h };
    resample_window(width, height, rgb, out_w, out_h, filter, all)
}

/// The `window` of [`resample`]'s `out_w × out_h` output, byte for byte,
/// computing only the output pixels inside it and reading only the source
/// rows they need. Panics if the window is not inside the output.
pub fn resample_window(
    width: u32,
    height: u32,
    rgb: &[u8],
    out_w: u32,
    out_h: u32,
    filter: Filter,
    window: Window,
) -> Vec<u8> {
    assert!(
        window.x + window.width <= out_w && window.y + window.height <= out_h,
        "window {window:?} outside a {out_w}x{out_h} resize"
    );
    let w = width as usize;
    let (x0, cw) = (window.x as usize, window.width as usize);
    let (y0, ch) = (window.y as usize, window.height as usize);
    let vertical: Option<Vec<Taps>> =
        (out_h != height).then(|| taps(height, out_h, filter).into_iter().skip(y0).take(ch).collect());
    // The source rows the window's rows read: their taps' span, or the
    // window's own rows when there is no vertical pass.
    let rows = match &vertical {
        Some(taps) if !taps.is_empty() => {
            taps[0].start..taps.iter().map(|t| t.start + t.weights.len()).max().unwrap_or(0)
        }
        _ => y0..y0 + ch,
    };
    let horizontal = if out_w != width {
        let columns = taps(width, out_w, filter).into_iter().skip(x0).take(cw);
        let pass = Horizontal::new(w, columns);
        let mut tmp = vec![0u8; pass.len() * rows.len() * 3];
        pass.rows(rgb, rows.clone(), &mut tmp);
        tmp
    } else {
        rgb[rows.start * w * 3..rows.end * w * 3]
            .chunks_exact(w * 3)
            .flat_map(|row| &row[x0 * 3..(x0 + cw) * 3])
            .copied()
            .collect()
    };
    let Some(taps) = vertical else { return horizontal };
    // i32 sums, as Pillow's 8-bit resampler: |weights| sum to under 1.3 ×
    // 2^22, so 255 × that stays far from 2^31, and i32 lanes vectorise
    // twice as wide as i64 (simd128 has no 64-bit multiply-add).
    let round = 1i32 << (PRECISION_BITS - 1);
    let mut out = vec![0u8; cw * ch * 3];
    // Row by row: each source row the output row's taps cover is added,
    // weighted, to a whole row of sums. Contiguous, so it vectorises, and
    // integer sums do not depend on their order: the same bytes as Pillow's
    // column-by-column loop.
    let stride = cw * 3;
    let mut acc = vec![0i32; stride];
    for (tap, out) in taps.iter().zip(out.chunks_exact_mut(stride)) {
        // A kernel takes the row's leading values where there is one; the
        // loop below does the rest.
        let first = (tap.start - rows.start) * stride;
        let done = vertical_kernel(&horizontal[first..first + tap.weights.len() * stride], stride, &tap.weights, out);
        let (out, acc) = (&mut out[done..], &mut acc[done..]);
        acc.fill(round);
        for (i, weight) in tap.weights.iter().enumerate() {
            let r = tap.start + i - rows.start;
            for (a, v) in acc.iter_mut().zip(&horizontal[r * stride + done..(r + 1) * stride]) {
                *a += i32::from(*v) * *weight;
            }
        }
        for (o, a) in out.iter_mut().zip(acc.iter()) {
            *o = clip8(*a);
        }
    }
    out
}

/// How many leading values of one output row of the vertical pass a SIMD
/// kernel wrote: [`vertical_simd128`]'s in the component, none elsewhere
/// (there the portable loop vectorises well enough).
#[inline]
fn vertical_kernel(src: &[u8], stride: usize, weights: &[i32], out: &mut [u8]) -> usize {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return vertical_simd128(src, stride, weights, out);
    #[allow(unreachable_code)]
    {
        let _ = (src, stride, weights, out);
        0
    }
}

/// The vertical pass of one output row in `simd128`, sixteen values at a
/// time with their four i32 sums in registers across every tap (the
/// portable loop keeps a whole row of sums in memory, read and written
/// once per tap): `src` holds the tap rows, `stride` bytes each. Returns how
/// many values it wrote (a multiple of 16); the caller does the rest.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn vertical_simd128(src: &[u8], stride: usize, weights: &[i32], out: &mut [u8]) -> usize {
    use std::arch::wasm32::*;
    assert_eq!(src.len(), weights.len() * stride, "tap rows");
    let blocks = out.len() / 16;
    let round = i32x4_splat(1 << (PRECISION_BITS - 1));
    for b in 0..blocks {
        let mut acc = [round; 4];
        for (t, &w) in weights.iter().enumerate() {
            let o = t * stride + 16 * b;
            // SAFETY: o + 16 ≤ (t + 1) · stride ≤ src.len(), as 16·(b + 1) ≤ out.len() = stride.
            let v = unsafe { v128_load(src.as_ptr().add(o).cast()) };
            let (lo, hi) = (u16x8_extend_low_u8x16(v), u16x8_extend_high_u8x16(v));
            let w = i32x4_splat(w);
            let parts = [u32x4_extend_low_u16x8(lo), u32x4_extend_high_u16x8(lo), u32x4_extend_low_u16x8(hi), u32x4_extend_high_u16x8(hi)];
            for (a, p) in acc.iter_mut().zip(parts) {
                *a = i32x4_add(*a, i32x4_mul(p, w));
            }
        }
        let [a, b2, c, d] = acc.map(|a| i32x4_shr(a, PRECISION_BITS));
        // Saturating narrows: the clamp to 0..=255 of `clip8`.
        let bytes = u8x16_narrow_i16x8(i16x8_narrow_i32x4(a, b2), i16x8_narrow_i32x4(c, d));
        // SAFETY: 16·(b + 1) ≤ out.len().
        unsafe { v128_store(out.as_mut_ptr().add(16 * b).cast(), bytes) };
    }
    blocks * 16
}

fn check_buffer(width: u32, height: u32, rgb: &[u8]) -> Result<(), PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty);
    }
    if rgb.len() as u64 != width as u64 * height as u64 * 3 {
        return Err(PreprocessError::BufferSize {
            width,
            height,
            len: rgb.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ClipPreprocess = ClipPreprocess::OPENAI_224;

    /// Deterministic noise, so that every tap's weight shows in the bytes.
    pub(super) fn noise(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn resized_dims_follow_torchvision() {
        assert_eq!(P.resized_dims(320, 240), (298, 224));
        assert_eq!(P.resized_dims(240, 320), (224, 298));
        assert_eq!(P.resized_dims(37, 500), (224, 3027));
        assert_eq!(P.resized_dims(224, 224), (224, 224));
    }

    #[test]
    fn crop_rounds_half_to_even() {
        // (3027 − 224)/2 = 1401.5 → 1402; (227 − 224)/2 = 1.5 → 2; (229−224)/2 = 2.5 → 2.
        assert_eq!(P.crop_origin(224, 3027), (0, 1402));
        assert_eq!(P.crop_origin(227, 224), (2, 0));
        assert_eq!(P.crop_origin(229, 224), (2, 0));
    }

    #[test]
    fn uniform_colour_normalises_exactly() {
        let rgb = [255u8, 0, 128].repeat(300 * 250);
        let t = P.pixel_values(300, 250, &rgb).unwrap();
        let plane = 224 * 224;
        for (c, v) in [255.0f32, 0.0, 128.0].iter().enumerate() {
            let want = (v / 255.0 - P.mean[c]) / P.std[c];
            assert!(t[c * plane..(c + 1) * plane].iter().all(|x| (x - want).abs() < 1e-5));
        }
    }

    #[test]
    fn a_squash_keeps_the_whole_image_and_no_aspect_ratio() {
        let squash = ClipPreprocess { size: 224, mean: [0.5; 3], std: [0.5; 3], fit: Fit::Squash };
        assert_eq!(squash.resized_dims(1280, 720), (224, 224));
        assert_eq!(squash.crop_origin(224, 224), (0, 0));
        // Left half black, right half white: a crop of the center would lose
        // neither, but the squash must keep both halves at the same share.
        let (w, h) = (640u32, 360u32);
        let rgb: Vec<u8> = (0..w * h).flat_map(|i| if i % w < w / 2 { [0u8; 3] } else { [255u8; 3] }).collect();
        let t = squash.pixel_values(w, h, &rgb).unwrap();
        let row = &t[100 * 224..101 * 224];
        assert!(row[..111].iter().all(|v| (*v + 1.0).abs() < 1e-6), "left half black: {:?}", &row[..4]);
        assert!(row[113..].iter().all(|v| (*v - 1.0).abs() < 1e-6), "right half white");
        // A frame not already 224 × 224 is refused by the indexer's path.
        let mut out = vec![0.0; squash.tensor_len()];
        assert!(matches!(
            squash.crop_normalize_into(398, 224, &vec![0; 398 * 224 * 3], &mut out),
            Err(PreprocessError::NotResized { .. })
        ));
    }

    #[test]
    fn fits_are_named_by_the_manifest_rules() {
        assert_eq!(Fit::from_rules("shortest-side-bicubic", "center"), Some(Fit::ShortestSideCrop));
        assert_eq!(Fit::from_rules("squash-bilinear", "none"), Some(Fit::Squash));
        assert_eq!(Fit::from_rules("squash-bilinear", "center"), None);
    }

    #[test]
    fn a_window_is_the_same_part_of_the_full_resize() {
        // Shrinks, an enlargement, sizes with one pass only, and a 1-pixel-wide
        // image (every row shorter than the kernels' slack).
        for (w, h, ow, oh) in [(97, 61, 40, 23), (61, 97, 23, 40), (20, 15, 33, 29), (50, 40, 50, 17), (50, 40, 19, 40), (1, 9, 8, 9)] {
            let rgb = noise((w * h * 3) as usize, w * h);
            for filter in [Filter::Bicubic, Filter::Bilinear] {
                let full = resample(w, h, &rgb, ow, oh, filter);
                for window in [
                    Window { x: 0, y: 0, width: ow, height: oh },
                    Window { x: 3, y: 2, width: ow - 7, height: oh - 5 },
                    Window { x: ow - 1, y: oh - 1, width: 1, height: 1 },
                ] {
                    let got = resample_window(w, h, &rgb, ow, oh, filter, window);
                    let want: Vec<u8> = (window.y..window.y + window.height)
                        .flat_map(|y| {
                            let start = ((y * ow + window.x) * 3) as usize;
                            full[start..start + window.width as usize * 3].to_vec()
                        })
                        .collect();
                    assert_eq!(got, want, "{w}x{h} -> {ow}x{oh} {filter:?} {window:?}");
                }
            }
        }
    }

    #[test]
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn the_vertical_kernel_gives_the_bytes_of_the_plain_loop() {
        // Shrinks (long taps) and an enlargement (negative weights that
        // overshoot 0..=255), rows of 16 values and a remainder.
        for (h, oh, stride) in [(720u32, 224u32, 672usize), (97, 40, 35), (23, 61, 48), (9, 2, 16)] {
            for filter in [Filter::Bicubic, Filter::Bilinear] {
                let mut src = noise(h as usize * stride, h * 31 + oh);
                src[..6].copy_from_slice(&[0, 255, 0, 255, 0, 255]);
                for tap in taps(h, oh, filter) {
                    let rows = &src[tap.start * stride..(tap.start + tap.weights.len()) * stride];
                    let mut got = vec![0u8; stride];
                    let done = vertical_simd128(rows, stride, &tap.weights, &mut got);
                    assert_eq!(done, stride / 16 * 16);
                    for x in 0..done {
                        let sum = tap.weights.iter().enumerate().fold(1i32 << (PRECISION_BITS - 1), |acc, (i, w)| {
                            acc + i32::from(rows[i * stride + x]) * w
                        });
                        assert_eq!(got[x], clip8(sum), "{h} -> {oh} {filter:?} tap at {} column {x}", tap.start);
                    }
                }
            }
        }
    }

    #[test]
    fn bad_buffers_are_errors() {
        assert_eq!(P.pixel_values(0, 10, &[]), Err(PreprocessError::Empty));
        assert!(matches!(P.pixel_values(10, 10, &[0; 5]), Err(PreprocessError::BufferSize { .. })));
        let mut out = vec![0.0; P.tensor_len()];
        assert!(matches!(
            P.crop_normalize_into(300, 250, &vec![0; 300 * 250 * 3], &mut out),
            Err(PreprocessError::NotResized { .. })
        ));
    }
}
