//! How close the indexer's frames come to the query path's tensor for the
//! same picture. The indexer scales each sampled frame with swscale (bicubic,
//! straight from YUV to the model's size); the component decodes a query
//! image and resizes it with core's Pillow-exact resampler. This test embeds
//! no model: it measures the two 224-pixel crops of the same frames of a
//! textured video against each other, in 8-bit levels, and bounds the
//! difference the README states.

mod common;

use std::path::Path;

use busca_core::preprocess::{ClipPreprocess, Fit};
use busca_indexer::decode::{decode_sampled, SampleOptions};
use common::ffmpeg;

/// CLIP's crop with identity normalisation: the tensor holds 8-bit levels.
const LEVELS: ClipPreprocess = ClipPreprocess { size: 224, mean: [0.0; 3], std: [1.0 / 255.0; 3], fit: Fit::ShortestSideCrop };

/// The frame at `t_ms` as the ffmpeg CLI writes it to PNG (full size, RGB).
fn frame_png(video: &Path, t_ms: u64, out: &Path) -> image::RgbImage {
    let t = format!("{:.3}", t_ms as f64 / 1000.0);
    ffmpeg(&["-i", video.to_str().unwrap(), "-ss", &t, "-frames:v", "1", out.to_str().unwrap()]);
    image::open(out).unwrap().to_rgb8()
}

#[test]
fn indexer_frames_and_query_images_differ_by_three_levels_on_average() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("texture.mp4");
    // Fine detail, colour bars, gradients and motion at 1280x720, tagged BT.601
    // as the other test videos are.
    ffmpeg(&[
        "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=4",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "12", "-pix_fmt", "yuv420p",
        "-colorspace", "smpte170m", "-color_primaries", "smpte170m", "-color_trc", "smpte170m",
        "-color_range", "tv", video.to_str().unwrap(),
    ]);
    let mut frames = Vec::new();
    decode_sampled(&video, SampleOptions { fps: 2.0, size: 224, fit: Fit::ShortestSideCrop, decoder_threads: 1, detect_transitions: false, sample_at_cuts: false, decode: busca_indexer::decode::DecodeChoice::Only(busca_core::shot::FrameDecode::All) }, |f| {
        frames.push(f);
        Ok(())
    })
    .unwrap();
    assert_eq!(frames.len(), 8, "2 fps over 4 s");
    let n = LEVELS.tensor_len();
    let (mut sum, mut count, mut max) = (0f64, 0usize, 0f32);
    let mut channel = [0f64; 3];
    let mut all = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let mut indexed = vec![0f32; n];
        LEVELS.crop_normalize_into(frame.width, frame.height, &frame.rgb, &mut indexed).unwrap();
        let png = frame_png(&video, frame.t_ms, &dir.path().join(format!("{i}.png")));
        let query = LEVELS.pixel_values(png.width(), png.height(), png.as_raw()).unwrap();
        for (k, (a, b)) in indexed.iter().zip(&query).enumerate() {
            let d = (a - b).abs();
            channel[k / (n / 3)] += f64::from(d);
            sum += f64::from(d);
            count += 1;
            max = max.max(d);
            all.push(d);
        }
    }
    all.sort_by(f32::total_cmp);
    let mean = sum / count as f64;
    let p99 = all[all.len() * 99 / 100];
    let per_channel = channel.map(|c| c / (count / 3) as f64);
    eprintln!(
        "indexer vs query path, 8 frames of 1280x720 testsrc2: mean |Δ| {mean:.2} levels (R {:.1}, G {:.1}, B {:.1}), p99 {p99:.1}, max {max:.1}",
        per_channel[0], per_channel[1], per_channel[2]
    );
    // Measured here: mean 2.8 levels (R 2.8, G 1.7, B 3.8), p99 47, max 209,
    // the large ones at the pattern's sharp coloured edges, where swscale's
    // chroma upsampling and scaling in one pass and the CLI's full-size RGB
    // followed by Pillow's resample part most. README "Exactness of the
    // query path" states it. The bounds sit just above these figures, so
    // that a change on either side that widens the gap fails here.
    assert!(mean < 3.5, "mean |Δ| {mean:.2} levels");
    assert!(per_channel.iter().all(|&c| c < 5.0), "per channel {per_channel:?}");
    assert!(p99 < 60.0, "p99 |Δ| {p99:.1} levels");
}
