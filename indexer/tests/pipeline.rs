//! End-to-end tests of the indexer on generated videos with known content and
//! the tiny colour models: shot boundaries, retrieval, timestamps, rotation,
//! bad inputs and incremental runs.

mod common;

use std::path::Path;

use busca_core::bundle::{OpenBundle, SHOTS_FILE, VIDEOS_FILE, INDEX_FILE};
use busca_core::shot::{FrameDecode, ShotRecord, Timeline, VideoRecord};
use busca_core::ModelManifest;
use busca_core::usearch_file::{Metric, ScalarKind};
use common::*;

/// The tiny text tower's embedding of `text`, through the indexer's text encoder.
fn text_embedding(text: &str) -> Vec<f32> {
    let dir = tiny_model_dir();
    let manifest = ModelManifest::load(&dir).unwrap();
    busca_onnx::init_runtime(Some(&ort_lib()), "test").unwrap();
    busca_onnx::TextEncoder::load(&dir, &manifest).unwrap().encode(text).unwrap()
}

/// Searches the bundle's usearch file the way a reader of the manifest would.
fn search(bundle: &OpenBundle, query: &[f32], k: usize) -> Vec<(u64, f32)> {
    let o = &bundle.manifest.index;
    assert_eq!((o.metric, o.quantization), (Metric::Cos, ScalarKind::F16));
    let options = usearch::IndexOptions {
        dimensions: o.dimensions,
        metric: usearch::MetricKind::Cos,
        quantization: usearch::ScalarKind::F16,
        connectivity: o.connectivity,
        expansion_add: o.expansion_add,
        expansion_search: o.expansion_search,
        multi: false,
    };
    let index = usearch::Index::new(&options).unwrap();
    index.load(bundle.dir.join(INDEX_FILE).to_str().unwrap()).unwrap();
    let found = index.search(query, k).unwrap();
    found.keys.iter().zip(&found.distances).map(|(k, d)| (*k, 1.0 - d)).collect()
}

fn assert_near(found: u64, expected: u64, tolerance: u64, what: &str) {
    assert!(
        found.abs_diff(expected) <= tolerance,
        "{what}: {found} ms, expected {expected} ± {tolerance} ms"
    );
}

#[test]
fn colour_video_gives_its_shots_and_blue_finds_the_blue_shot() {
    let tmp = tempfile::tempdir().unwrap();
    let videos = tmp.path().join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    make_colour_video(&videos.join("Colores Año 1.mp4"));
    let out = tmp.path().join("bundles");
    let summary = busca_indexer::run(&config(vec![videos], &out, "demo")).unwrap();
    assert_eq!(summary.failures.len(), 0, "{:?}", summary.failures);
    assert_eq!(summary.videos_indexed, 1);

    let bundle = open_bundle(&out, "demo");
    let shots: Vec<ShotRecord> = bundle.read_json(SHOTS_FILE).unwrap();
    let videos: Vec<VideoRecord> = bundle.read_json(VIDEOS_FILE).unwrap();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].video_id, "colores_ano_1");
    assert_near(videos[0].duration_ms, 13_000, 50, "duration");
    // Every frame decoded (transitions are found on them): at 25 fps the
    // 2 fps grid points fall between frames 40 ms apart, 20 ms from the
    // nearest; the manifest holds the largest over the videos.
    let sampling = videos[0].sampling.expect("sampling recorded");
    assert_eq!(sampling.decode, FrameDecode::All);
    assert_eq!(sampling.max_offset_ms, 20);
    assert_eq!(bundle.manifest.max_sample_offset_ms, Some(20));
    // red | green (cut 3 s) | blue (cut 6 s) | dissolve 9–10 s | checkerboard.
    let cuts = boundaries(&shots, "colores_ano_1");
    assert_eq!(cuts.len(), 3, "shots: {shots:#?}");
    // On the frames: the cuts exactly, the dissolve (frames 225–250) at the
    // first frame past its middle.
    assert_eq!(cuts, [3000, 6000, 9520], "shots: {shots:#?}");
    let period = 500; // one sampled frame at 2 fps
    // Shot ids are unique and every shot has its keyframe inside it.
    let mut ids: Vec<u64> = shots.iter().map(|s| s.shot_id).collect();
    ids.dedup();
    assert_eq!(ids.len(), shots.len());
    for shot in &shots {
        assert!((shot.start_ms..shot.end_ms).contains(&shot.keyframe_ms), "{shot:?}");
        let jpeg = bundle.read_checked(&shot.keyframe).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "keyframe is a JPEG");
    }
    // The timeline has every sampled frame with its shot, and f16 embeddings.
    let timeline: Timeline = bundle.read_json("timelines/colores_ano_1.json").unwrap();
    assert_eq!(timeline.frames.len(), videos[0].frames as usize);
    let f16 = bundle.read_checked(&timeline.embeddings).unwrap();
    assert_eq!(f16.len(), timeline.frames.len() * timeline.dim * 2);
    let map: Vec<busca_core::bundle::MapPoint> = bundle.read_json("map.json").unwrap();
    assert_eq!(map.len(), shots.len());
    assert!(map.iter().all(|p| (0.0..=1.0).contains(&p.x) && (0.0..=1.0).contains(&p.y)));

    // "blue" ranks the blue shot first, with its timecodes.
    let hits = search(&bundle, &text_embedding("a blue scene"), 3);
    let best = shots.iter().find(|s| s.shot_id == hits[0].0).unwrap();
    assert_near(best.start_ms, 6000, period, "blue shot start");
    assert_near(best.end_ms, 9500, period, "blue shot end");
    assert!(hits[0].1 > hits[1].1, "blue is strictly first: {hits:?}");
    // The component's pure-Rust reader (busca-core) loads the same bundle and
    // its HNSW walk over our usearch file finds the same blue shot.
    let blue = text_embedding("a blue scene");
    let collection = busca_core::search::Collection::load_current(&out.join("demo")).unwrap();
    assert_eq!(collection.shots.len(), shots.len());
    let walked = collection
        .index
        .search(&blue, 1, None, busca_core::shot_index::Method::Hnsw, None);
    assert_eq!(collection.index.key(walked[0].row), hits[0].0);
    let red = search(&bundle, &text_embedding("red"), 1);
    let red_shot = shots.iter().find(|s| s.shot_id == red[0].0).unwrap();
    assert_eq!(red_shot.start_ms, 0);
}

#[test]
fn shots_begin_on_the_frame_of_the_cut_even_between_samples() {
    // 25 fps: red 1.24 s | green 0.36 s (shorter than the sampling
    // interval) | blue 2.4 s with a two-frame white flash at 2.40 s | yellow
    // 2 s, fading through black (1 s, 5.0–6.0 s) into cyan 2 s.
    let tmp = tempfile::tempdir().unwrap();
    let videos = tmp.path().join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    let size = "160x120";
    let src = |colour: &str, seconds: f32| colour_src(prototype(colour), seconds, size, 25);
    ffmpeg(&[
        "-f", "lavfi", "-i", &src("red", 1.24),
        "-f", "lavfi", "-i", &src("green", 0.36),
        "-f", "lavfi", "-i", &src("blue", 0.8),
        "-f", "lavfi", "-i", &src("white", 0.08),
        "-f", "lavfi", "-i", &src("blue", 1.52),
        "-f", "lavfi", "-i", &src("yellow", 2.0),
        "-f", "lavfi", "-i", &src("cyan", 2.0),
        "-filter_complex",
        "[0:v][1:v][2:v][3:v][4:v][5:v]concat=n=6:v=1:a=0,format=yuv420p,settb=1/25[a];\
         [6:v]format=yuv420p,settb=1/25[b];\
         [a][b]xfade=transition=fadeblack:duration=1:offset=5,format=yuv420p[out]",
        "-map", "[out]", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        videos.join("cuts.mp4").to_str().unwrap(),
    ]);
    let out = tmp.path().join("bundles");
    let summary = busca_indexer::run(&config(vec![videos], &out, "cuts")).unwrap();
    assert_eq!(summary.failures.len(), 0, "{:?}", summary.failures);
    let bundle = open_bundle(&out, "cuts");
    let mut shots: Vec<ShotRecord> = bundle.read_json(SHOTS_FILE).unwrap();
    shots.sort_by_key(|s| s.start_ms);
    // Every boundary on its frame (40 ms each), the flash none; the fade's
    // at the first frame past its middle (5.5 s).
    let starts: Vec<(u64, Option<u64>)> = shots.iter().map(|s| (s.start_ms, s.frames.map(|f| f.start))).collect();
    assert_eq!(
        starts,
        [(0, Some(0)), (1240, Some(31)), (1600, Some(40)), (4000, Some(100)), (5520, Some(138))],
        "shots: {shots:#?}"
    );
    // Frame spans tile the video; the last ends at its last frame.
    for pair in shots.windows(2) {
        assert_eq!(pair[0].frames.unwrap().end, pair[1].frames.unwrap().start);
        assert_eq!(pair[0].end_ms, pair[1].start_ms);
    }
    assert_eq!(shots.last().unwrap().frames.unwrap().end, 175);
    use busca_core::shot::TransitionKind;
    let kinds: Vec<Option<TransitionKind>> = shots.iter().map(|s| s.transition.map(|t| t.kind)).collect();
    assert_eq!(kinds, [None, Some(TransitionKind::Cut), Some(TransitionKind::Cut), Some(TransitionKind::Cut), Some(TransitionKind::Fade)]);
    let fade = shots[4].transition.unwrap();
    assert_near(fade.start_ms, 5000, 80, "the fade's span starts");
    assert_near(fade.end_ms, 6000, 80, "the fade's span ends");
    // The green shot, shorter than the sampling interval, has a frame of its
    // own: the one sampled on its cut.
    let timeline: Timeline = bundle.read_json("timelines/cuts.json").unwrap();
    let sampled: Vec<u64> = timeline.frames.iter().map(|f| f.t_ms).collect();
    assert!(sampled.contains(&1240) && sampled.contains(&1600), "{sampled:?}");
    let green = timeline.frames.iter().find(|f| f.t_ms == 1240).unwrap();
    assert_eq!(green.shot_id, shots[1].shot_id);
    // The timeline keeps every transition found: the three cuts and the fade.
    let found: Vec<u64> = timeline.transitions.unwrap().iter().map(|t| t.t_ms).collect();
    assert_eq!(found, [1240, 1600, 4000, 5520]);
}

#[test]
fn variable_frame_rate_and_start_offset_are_sampled_by_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vfr.ts");
    // 2 s of red at 5 fps then 2 s of green at 30 fps, shifted to start at
    // 10 s: frame counts would put the cut at 0.6 s, timestamps at 2 s.
    ffmpeg(&[
        "-f", "lavfi", "-i", &colour_src(prototype("red"), 2.0, "160x120", 5),
        "-f", "lavfi", "-i", &colour_src(prototype("green"), 2.0, "160x120", 30),
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[out]",
        "-map", "[out]", "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", "-output_ts_offset", "10", path.to_str().unwrap(),
    ]);
    let out = tmp.path().join("bundles");
    let summary = busca_indexer::run(&config(vec![path], &out, "vfr")).unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    let bundle = open_bundle(&out, "vfr");
    let timeline: Timeline = bundle.read_json("timelines/vfr.json").unwrap();
    let times: Vec<u64> = timeline.frames.iter().map(|f| f.t_ms).collect();
    assert_eq!(times[0], 0, "start offset removed: {times:?}");
    // One frame per 500 ms grid point, each within one source frame (200 ms
    // in the 5 fps part) after its grid point.
    assert!((7..=9).contains(&times.len()), "{times:?}");
    for (k, t) in times.iter().enumerate() {
        let grid = k as u64 * 500;
        assert!(*t >= grid && *t < grid + 200, "frame {k} at {t} ms: {times:?}");
    }
    let shots: Vec<ShotRecord> = bundle.read_json(SHOTS_FILE).unwrap();
    assert_eq!(boundaries(&shots, "vfr").len(), 1, "{shots:?}");
    assert_near(boundaries(&shots, "vfr")[0], 2000, 500, "red→green");
}

/// Samples of `video` at `fps` decoding `mode`'s frames, and what the decoder said.
fn sample(video: &Path, fps: f32, mode: FrameDecode) -> (Vec<busca_indexer::decode::SampledFrame>, busca_indexer::decode::VideoInfo) {
    let options = busca_indexer::decode::SampleOptions {
        fps,
        size: 64,
        fit: busca_core::preprocess::Fit::ShortestSideCrop,
        decoder_threads: 1,
        detect_transitions: false,
        sample_at_cuts: false,
        decode: busca_indexer::decode::DecodeChoice::Only(mode),
    };
    let mut frames = Vec::new();
    let info = busca_indexer::decode::decode_sampled(video, options, |f| {
        frames.push(f);
        Ok(())
    })
    .unwrap();
    (frames, info)
}

/// The largest distance from a point of the `period_ms` grid (up to `end_ms`)
/// to the nearest of `samples`.
fn grid_distance(samples: &[u64], period_ms: u64, end_ms: u64) -> u64 {
    (0..=end_ms / period_ms)
        .map(|k| samples.iter().map(|&t| t.abs_diff(k * period_ms)).min().unwrap())
        .max()
        .unwrap()
}

#[test]
fn skipped_frames_give_the_decoded_frame_nearest_the_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let video = tmp.path().join("moving.mp4");
    // Moving content (every frame differs), 25 fps, two B-frames between
    // references (none of them referenced), a key frame every 2 s.
    ffmpeg(&[
        "-f", "lavfi", "-i", "testsrc2=duration=10:size=160x120:rate=25",
        "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "50",
        "-x264-params", "b-pyramid=none:scenecut=0:b-adapt=0", "-pix_fmt", "yuv420p", video.to_str().unwrap(),
    ]);
    // Every frame, as the reference pictures.
    let (every, all_info) = sample(&video, 25.0, FrameDecode::All);
    assert_eq!(all_info.frames, 250);
    let picture_at = |t_ms: u64| &every.iter().find(|f| f.t_ms == t_ms).expect("a frame at that time").rgb;

    let (samples, info) = sample(&video, 2.0, FrameDecode::NonReference);
    assert_eq!(info.sampling.decode, FrameDecode::NonReference);
    // P B B P B B …: a third of the frames (and the key frames) decoded,
    // and the B-frames nearest the grid.
    assert!(info.frames <= 90 + 20, "{} of 250 frames decoded", info.frames);
    let times: Vec<u64> = samples.iter().map(|f| f.t_ms).collect();
    assert_eq!(samples.len(), 20, "{times:?}");
    for f in &samples {
        // The frame a sample says it is, with that frame's picture.
        assert_eq!(f.frame, f.t_ms / 40, "{times:?}");
        assert!(f.rgb == *picture_at(f.t_ms), "the sample at {} ms shows another frame", f.t_ms);
    }
    // Within half a frame of every grid point (grid points between two
    // references sit up to 1.5 frames from both), and the record says how far.
    let worst = grid_distance(&times, 500, 9500);
    assert!(worst <= 20, "{times:?}");
    assert_eq!(u64::from(info.sampling.max_offset_ms), worst);

    // Key frames only: 5 decoded, samples as far as half a GOP from the grid.
    let (keys, key_info) = sample(&video, 2.0, FrameDecode::Key);
    let key_times: Vec<u64> = keys.iter().map(|f| f.t_ms).collect();
    assert_eq!(key_info.frames, 5);
    assert_eq!(key_times, [0, 2000, 4000, 6000, 8000]);
    assert_eq!(u64::from(key_info.sampling.max_offset_ms), grid_distance(&key_times, 500, 9500));
    assert_eq!(key_info.sampling.max_offset_ms, 1500, "9.5 s is 1.5 s from the last key frame");
}

#[test]
fn a_consumer_that_stops_gets_no_frame_after_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let video = tmp.path().join("moving.mp4");
    ffmpeg(&[
        "-f", "lavfi", "-i", "testsrc2=duration=10:size=160x120:rate=25",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", video.to_str().unwrap(),
    ]);
    // Frames are converted on another thread, several in flight: the
    // consumer still sees them in order, and nothing after it said stop.
    let options = busca_indexer::decode::SampleOptions {
        fps: 5.0,
        size: 64,
        fit: busca_core::preprocess::Fit::ShortestSideCrop,
        decoder_threads: 0,
        detect_transitions: false,
        sample_at_cuts: false,
        decode: busca_indexer::decode::DecodeChoice::Only(FrameDecode::All),
    };
    let mut seen = Vec::new();
    let err = busca_indexer::decode::decode_sampled(&video, options, |f| {
        seen.push(f.t_ms);
        if seen.len() == 7 { Err("enough".into()) } else { Ok(()) }
    })
    .unwrap_err();
    assert_eq!(seen, [0, 200, 400, 600, 800, 1000, 1200]);
    assert!(matches!(&err, busca_indexer::decode::DecodeError::Stopped { reason, .. } if reason == "enough"), "{err}");
    assert!(err.to_string().contains("moving.mp4"), "{err}");
}

#[test]
fn rotated_video_is_turned_for_display() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain.mp4");
    let rotated = tmp.path().join("rotated.mp4");
    // Left half red, right half blue, stored landscape with rotation metadata.
    ffmpeg(&[
        "-f", "lavfi", "-i", &colour_src(prototype("red"), 2.0, "160x240", 25),
        "-f", "lavfi", "-i", &colour_src(prototype("blue"), 2.0, "160x240", 25),
        "-filter_complex", "[0:v][1:v]hstack[out]", "-map", "[out]",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", plain.to_str().unwrap(),
    ]);
    ffmpeg(&["-i", plain.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated.to_str().unwrap()]);
    let options = busca_indexer::decode::SampleOptions {
        fps: 2.0,
        size: 224,
        fit: busca_core::preprocess::Fit::ShortestSideCrop,
        decoder_threads: 1,
        detect_transitions: true,
        sample_at_cuts: true,
        decode: busca_indexer::decode::DecodeChoice::Auto,
    };
    let mut frames = Vec::new();
    let info = busca_indexer::decode::decode_sampled(&rotated, options, |f| {
        frames.push(f);
        Ok(())
    })
    .unwrap();
    // FFmpeg 5.1 stores `rotate=90` as a display matrix that ffprobe reports
    // as "rotation=90" (counter-clockwise) and that the ffmpeg CLI turns 90°
    // counter-clockwise: we must show what the CLI shows.
    assert_eq!(info.rotation, 270);
    assert_eq!((info.width, info.height), (240, 320));
    let f = &frames[0];
    assert_eq!((f.width, f.height), (224, 298));
    let pixel = |rgb: &[u8], width: u32, x: u32, y: u32| {
        let i = ((y * width + x) * 3) as usize;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    };
    let is_red = |p: [u8; 3]| p[0] > 200 && p[2] < 60;
    let is_blue = |p: [u8; 3]| p[2] > 200 && p[0] < 60;
    let (top, bottom) = (pixel(&f.rgb, f.width, 112, 10), pixel(&f.rgb, f.width, 112, 288));
    assert!(is_blue(top) && is_red(bottom), "ours: top {top:?}, bottom {bottom:?}");
    // The ffmpeg CLI (autorotate) agrees.
    let cli = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i", rotated.to_str().unwrap(), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(cli.len(), 240 * 320 * 3, "the CLI also shows 240x320");
    assert!(is_blue(pixel(&cli, 240, 120, 5)) && is_red(pixel(&cli, 240, 120, 315)));
}

#[test]
fn bad_files_are_skipped_with_reasons_and_nothing_indexed_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let videos = tmp.path().join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    make_solid_video(&videos.join("good.mp4"), "red", 3.0);
    let out = tmp.path().join("bundles");
    let first = busca_indexer::run(&config(vec![videos.clone()], &out, "bad")).unwrap();
    assert_eq!(first.videos, 1);

    // Now: the good file is overwritten with garbage, and bad files appear.
    // moov first (faststart) so that the cut file opens and its tail is missing.
    let long = tmp.path().join("long.mp4");
    ffmpeg(&[
        "-f", "lavfi", "-i", &colour_src(prototype("green"), 20.0, "160x120", 25),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
        long.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&long).unwrap();
    std::fs::write(videos.join("truncated.mp4"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(videos.join("zero.mp4"), b"").unwrap();
    std::fs::write(videos.join("notes.mp4"), "these are not video frames\n".repeat(100)).unwrap();
    ffmpeg(&[
        "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac",
        videos.join("audio_only.m4a").to_str().unwrap(),
    ]);
    std::fs::write(videos.join("good.mp4"), vec![0x47u8; 5000]).unwrap();

    let summary = busca_indexer::run(&config(vec![videos.clone()], &out, "bad")).unwrap();
    let reasons: Vec<String> = summary.failures.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(summary.failures.len(), 5, "{reasons:#?}");
    for (path, reason) in &summary.failures {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(reason.contains(name), "reason names the file: {reason}");
    }
    let reason_of = |name: &str| reasons.iter().find(|r| r.contains(name)).unwrap().clone();
    assert!(reason_of("zero.mp4").contains("empty file"));
    assert!(reason_of("audio_only.m4a").contains("no video stream"));
    assert!(reason_of("notes.mp4").contains("not a readable media file"));
    assert!(reason_of("truncated.mp4").contains("truncated"), "{}", reason_of("truncated.mp4"));
    // The previously indexed good video is still in the collection.
    let bundle = open_bundle(&out, "bad");
    let videos: Vec<VideoRecord> = bundle.read_json(VIDEOS_FILE).unwrap();
    assert_eq!(videos.iter().map(|v| v.video_id.as_str()).collect::<Vec<_>>(), vec!["good"]);
}

fn version_of(out: &Path, collection: &str) -> String {
    busca_core::bundle::read_current(&out.join(collection)).unwrap().unwrap()
}

#[test]
fn rerun_indexes_only_new_or_changed_videos() {
    let tmp = tempfile::tempdir().unwrap();
    let videos = tmp.path().join("videos");
    std::fs::create_dir_all(videos.join("sub")).unwrap();
    make_solid_video(&videos.join("a.mp4"), "red", 3.0);
    make_solid_video(&videos.join("sub/b.mp4"), "green", 3.0);
    let out = tmp.path().join("bundles");
    let cfg = config(vec![videos.clone()], &out, "inc");
    let first = busca_indexer::run(&cfg).unwrap();
    assert_eq!((first.videos_indexed, first.videos_reused), (2, 0));
    let v1 = version_of(&out, "inc");
    let v1_manifest = open_bundle(&out, "inc").manifest;

    let again = busca_indexer::run(&cfg).unwrap();
    assert_eq!((again.videos_indexed, again.videos_reused, again.published), (0, 2, false));
    assert_eq!(version_of(&out, "inc"), v1);

    make_solid_video(&videos.join("c.mp4"), "blue", 3.0);
    make_solid_video(&videos.join("sub/b.mp4"), "yellow", 4.0);
    let third = busca_indexer::run(&cfg).unwrap();
    assert_eq!((third.videos_indexed, third.videos_reused), (2, 1));
    let bundle = open_bundle(&out, "inc");
    assert_ne!(bundle.manifest.version, v1);
    let records: Vec<VideoRecord> = bundle.read_json(VIDEOS_FILE).unwrap();
    let ids: Vec<&str> = records.iter().map(|v| v.video_id.as_str()).collect();
    assert_eq!(ids, vec!["a", "c", "sub_b"]);
    assert_near(records[2].duration_ms, 4000, 50, "changed video re-indexed");
    // The old version is still on disk, whole, and readable.
    let old = OpenBundle::open_version_dir(&bundle.dir.with_file_name(&v1), busca_core::bundle::Verify::All).unwrap();
    assert_eq!(old.manifest, v1_manifest);
}
