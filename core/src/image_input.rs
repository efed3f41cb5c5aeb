//! Decoding untrusted query images with bounds: the format is sniffed from the
//! bytes, the pixel count is read from the header and checked before any pixel
//! is decoded (decompression bombs), and the decoder's allocations are capped.

use std::io::Cursor;

use image::{ImageFormat, ImageReader};

/// A decoded RGB8 image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major RGB bytes.
    pub rgb: Vec<u8>,
}

/// Why an image was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageInputError {
    /// Not a format we accept (JPEG, PNG, WebP, GIF, BMP).
    #[error("not a supported image (JPEG, PNG, WebP, GIF or BMP){0}")]
    UnsupportedFormat(String),
    /// The header promises more pixels than the limit.
    #[error("image is {width}x{height} = {pixels} pixels; the limit is {limit}")]
    TooLarge {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// width × height.
        pixels: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes are not a valid image of the sniffed format.
    #[error("image could not be decoded: {0}")]
    Corrupt(String),
}

/// Decodes `bytes` into RGB8, refusing images over `max_pixels`.
pub fn decode_rgb(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, ImageInputError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageInputError::Corrupt(e.to_string()))?;
    match reader.format() {
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif | ImageFormat::Bmp) => {}
        Some(other) => return Err(ImageInputError::UnsupportedFormat(format!(": {other:?}"))),
        None => return Err(ImageInputError::UnsupportedFormat(String::new())),
    }
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| ImageInputError::Corrupt(e.to_string()))?;
    let pixels = width as u64 * height as u64;
    if pixels > max_pixels || width == 0 || height == 0 {
        return Err(ImageInputError::TooLarge {
            width,
            height,
            pixels,
            limit: max_pixels,
        });
    }
    // The header was honest so far; cap the decoder too (RGBA at most 4 bytes a
    // pixel plus slack), in case a later frame or chunk lies.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(pixels.saturating_mul(8).max(1 << 20));
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageInputError::Corrupt(e.to_string()))?;
    reader.limits(limits);
    let image = reader.decode().map_err(|e| ImageInputError::Corrupt(e.to_string()))?;
    let rgb = image.into_rgb8();
    Ok(RgbImage {
        width: rgb.width(),
        height: rgb.height(),
        rgb: rgb.into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, colour: [u8; 3]) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(width, height, image::Rgb(colour));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_png() {
        let img = decode_rgb(&png(4, 3, [0, 0, 255]), 100).unwrap();
        assert_eq!((img.width, img.height), (4, 3));
        assert_eq!(&img.rgb[..3], &[0, 0, 255]);
    }

    #[test]
    fn refuses_by_header_before_decoding() {
        let err = decode_rgb(&png(100, 100, [1, 2, 3]), 9_999).unwrap_err();
        assert!(matches!(err, ImageInputError::TooLarge { pixels: 10_000, .. }));
    }

    #[test]
    fn refuses_non_images_and_truncation() {
        assert!(matches!(
            decode_rgb(b"GIF? no, plain text", 100),
            Err(ImageInputError::UnsupportedFormat(_))
        ));
        let mut bytes = png(64, 64, [9, 9, 9]);
        bytes.truncate(bytes.len() / 2);
        assert!(matches!(decode_rgb(&bytes, 1 << 20), Err(ImageInputError::Corrupt(_))));
    }

    /// JPEGs in every subsampling Pillow writes (fixtures made by
    /// `core/tests/fixtures/gen_fixtures.py`) decode to the same bytes as
    /// zune-jpeg's scalar code. It is there for the wasm32 run with simd128
    /// (scripts/test.sh): our kernels in third_party/zune-jpeg, reached as the
    /// component reaches them (through `image`), against the scalar paths
    /// `set_use_unsafe(false)` selects. Natively both sides take zune's AVX2
    /// paths (zune-core has no switch for those alone), so it only checks
    /// that the fixtures decode.
    #[test]
    fn jpegs_decode_as_the_scalar_decoder_does() {
        use zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};
        macro_rules! fixture {
            ($name:literal) => {
                ($name, &include_bytes!(concat!("../tests/fixtures/jpeg/", $name, ".jpg"))[..])
            };
        }
        let fixtures = [
            fixture!("s444_61x37"),
            fixture!("s422_93x50"),
            fixture!("s420_203x120"),
            fixture!("s420_q40_130x75"),
            fixture!("s420_progressive_99x66"),
        ];
        for (name, bytes) in fixtures {
            let ours = decode_rgb(bytes, 1 << 20).unwrap_or_else(|e| panic!("{name}: {e}"));
            let options = DecoderOptions::new_safe().set_use_unsafe(false).jpeg_set_out_colorspace(ColorSpace::RGB);
            let mut scalar = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
            let expected = scalar.decode().unwrap_or_else(|e| panic!("{name}, scalar: {e:?}"));
            let (w, h) = scalar.dimensions().expect("decoded");
            assert_eq!((ours.width, ours.height), (w as u32, h as u32), "{name}");
            let differing = ours.rgb.iter().zip(&expected).filter(|(a, b)| a != b).count();
            assert!(ours.rgb == expected, "{name}: {differing} of {} bytes differ from the scalar decode", expected.len());
        }
    }
}
