//! Helpers shared by the indexer's integration tests: test videos made with
//! the ffmpeg CLI, the tiny colour models, and an indexer configuration.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use busca_indexer::{AnalysisParams, Device, IndexConfig};

/// The repository's models/tiny directory (or `$BUSCA_TEST_MODEL`).
pub fn tiny_model_dir() -> PathBuf {
    busca_core::model::test_model_dir()
}

/// The ONNX Runtime library, found as `scripts/setup.sh` finds it:
/// `$ORT_DYLIB_PATH`, else the project venv's wheel under `$BUSCA_HOME` (or
/// the cache home): `venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*`.
pub fn ort_lib() -> PathBuf {
    busca_onnx::runtime::locate().unwrap_or_else(|| {
        panic!("no ONNX Runtime: set ORT_DYLIB_PATH to libonnxruntime.so, or run `source scripts/setup.sh`, which installs it")
    })
}

/// Runs the ffmpeg CLI with `args`, panicking with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("the ffmpeg CLI is installed");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `color` lavfi source of an RGB prototype colour.
pub fn colour_src(rgb: [u8; 3], seconds: f32, size: &str, rate: u32) -> String {
    format!(
        "color=c=0x{:02X}{:02X}{:02X}:s={size}:r={rate}:d={seconds}",
        rgb[0], rgb[1], rgb[2]
    )
}

/// A prototype colour of the tiny model, by name.
pub fn prototype(name: &str) -> [u8; 3] {
    let manifest = busca_core::ModelManifest::load(&tiny_model_dir()).expect("models/tiny/manifest.json");
    manifest.colours.expect("tiny manifest has colours")[name]
}

/// Red 3 s, green 3 s (hard cut), blue 3 s, 1 s dissolve, checkerboard 3 s:
/// 13 s at 25 fps, 320x240, H.264.
pub fn make_colour_video(path: &Path) {
    let checker = "nullsrc=s=320x240:r=25:d=4,geq=lum='if(mod(floor(X/40)+floor(Y/40)\\,2)\\,255\\,0)':cb=128:cr=128";
    ffmpeg(&[
        "-f", "lavfi", "-i", &colour_src(prototype("red"), 3.0, "320x240", 25),
        "-f", "lavfi", "-i", &colour_src(prototype("green"), 3.0, "320x240", 25),
        "-f", "lavfi", "-i", &colour_src(prototype("blue"), 4.0, "320x240", 25),
        "-f", "lavfi", "-i", checker,
        "-filter_complex",
        "[0:v][1:v][2:v]concat=n=3:v=1:a=0,format=yuv420p,settb=1/25[abc];\
         [3:v]format=yuv420p,settb=1/25[d];\
         [abc][d]xfade=transition=fade:duration=1:offset=9,format=yuv420p[out]",
        "-map", "[out]", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        path.to_str().unwrap(),
    ]);
}

/// A solid-colour clip of `seconds` seconds.
pub fn make_solid_video(path: &Path, colour: &str, seconds: f32) {
    ffmpeg(&[
        "-f", "lavfi", "-i", &colour_src(prototype(colour), seconds, "160x120", 25),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        path.to_str().unwrap(),
    ]);
}

/// An indexer configuration for the tiny models, writing under `out`.
pub fn config(inputs: Vec<PathBuf>, out: &Path, collection: &str) -> IndexConfig {
    IndexConfig {
        inputs,
        list_files: Vec::new(),
        collection: collection.into(),
        out: out.into(),
        s3: Default::default(),
        model_dir: tiny_model_dir(),
        device: Device::Cpu,
        batch: 8,
        decoders: 2,
        decoder_threads: 1,
        encoder_threads: 1,
        ort_lib: Some(ort_lib()),
        analysis: AnalysisParams::defaults(2.0),
        quantization: busca_core::usearch_file::ScalarKind::F16,
        progress: false,
        shard: None,
    }
}

/// Shot boundaries (start of every shot after the first) of one video, in ms.
pub fn boundaries(shots: &[busca_core::ShotRecord], video_id: &str) -> Vec<u64> {
    let mut starts: Vec<u64> = shots.iter().filter(|s| s.video_id == video_id).map(|s| s.start_ms).collect();
    starts.sort();
    starts.into_iter().skip(1).collect()
}

/// Opens the current bundle version of a collection, checking every file.
pub fn open_bundle(out: &Path, collection: &str) -> busca_core::bundle::OpenBundle {
    busca_core::bundle::OpenBundle::open_current(&out.join(collection), busca_core::bundle::Verify::All)
        .expect("current bundle opens and verifies")
}
