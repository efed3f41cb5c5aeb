//! Keyframe thumbnails: every sampled frame, halved on each side and stored
//! as a JPEG in the work directory, so that a shot's keyframe can be chosen
//! after segmentation without decoding the video again.
//!
//! The halving is a 2×2 box mean written here rather than
//! `image::imageops::thumbnail`: for an exact factor of two both compute the
//! same area mean (the test holds them within one level), but the generic
//! one took 3.9% of `busca-index`'s CPU on the tiny model's decode-bound
//! bench (`perf record`, Big Buck Bunny 42 s and bikes.mp4 at 2 fps), time
//! the decoders lost on two cores.

/// JPEG quality of the thumbnails.
const QUALITY: u8 = 80;

/// `rgb` (`width × height` RGB8, row-major) halved and encoded as JPEG.
pub fn thumbnail_jpeg(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let small = halve(width, height, rgb);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY)
        .encode_image(&small)
        .expect("JPEG encoding to memory");
    out
}

/// Each output pixel the rounded mean of a 2×2 block; an odd last row or
/// column is dropped. A frame under two pixels on a side is kept as it is.
fn halve(width: u32, height: u32, rgb: &[u8]) -> image::RgbImage {
    let (w, h) = (width as usize, height as usize);
    assert_eq!(rgb.len(), w * h * 3, "frame buffer size");
    if w < 2 || h < 2 {
        return image::RgbImage::from_raw(width, height, rgb.to_vec()).expect("frame buffer size");
    }
    let (ow, oh) = (w / 2, h / 2);
    let mut out = Vec::with_capacity(ow * oh * 3);
    for y in 0..oh {
        let top = &rgb[2 * y * w * 3..][..ow * 6];
        let bottom = &rgb[(2 * y + 1) * w * 3..][..ow * 6];
        for (a, b) in top.chunks_exact(6).zip(bottom.chunks_exact(6)) {
            for c in 0..3 {
                let sum = u16::from(a[c]) + u16::from(a[c + 3]) + u16::from(b[c]) + u16::from(b[c + 3]);
                out.push(((sum + 2) / 4) as u8);
            }
        }
    }
    image::RgbImage::from_raw(ow as u32, oh as u32, out).expect("halved buffer size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pixel_is_the_rounded_mean_of_its_block() {
        // 4×2: blocks (0,1) and (2,3) of both rows; the odd fifth column of
        // a 5×3 frame and its last row are dropped.
        #[rustfmt::skip]
        let rgb: Vec<u8> = vec![
            0, 10, 255,   2, 10, 255,   100, 0, 1,   101, 0, 0,
            1, 10, 255,   2, 11, 254,   100, 0, 0,   100, 255, 0,
        ];
        let out = halve(4, 2, &rgb);
        assert_eq!(out.dimensions(), (2, 1));
        assert_eq!(out.as_raw(), &[1, 10, 255, 100, 64, 0]);
        let odd = halve(5, 3, &vec![7u8; 5 * 3 * 3]);
        assert_eq!(odd.dimensions(), (2, 1));
        assert!(odd.as_raw().iter().all(|&v| v == 7));
    }

    #[test]
    fn matches_the_image_crates_area_mean_within_one_level() {
        let (w, h) = (398u32, 224u32);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let rgb: Vec<u8> = (0..w * h * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 56) as u8
            })
            .collect();
        let ours = halve(w, h, &rgb);
        let theirs =
            image::imageops::thumbnail(&image::RgbImage::from_raw(w, h, rgb.clone()).unwrap(), w / 2, h / 2);
        assert_eq!(ours.dimensions(), theirs.dimensions());
        let worst = ours.as_raw().iter().zip(theirs.as_raw()).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        assert!(worst <= 1, "largest difference {worst}");
    }

    #[test]
    fn tiny_frames_are_kept_whole_and_encode() {
        let jpeg = thumbnail_jpeg(1, 3, &[9u8; 9]);
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (1, 3));
    }
}
