//! `busca-bench`: the indexer's speed targets, each measured against its
//! reference in the same run, printed as a table with ratios.
//!
//! ```text
//! cargo run --release -p busca-indexer --bin busca-bench -- decode --clip /tmp/demo/bigbuckbunny.mp4
//! cargo run --release -p busca-indexer --bin busca-bench -- encode --model DIR
//! cargo run --release -p busca-indexer --bin busca-bench -- segment --frames 100000
//! cargo run --release -p busca-indexer --bin busca-bench -- publish --frames 1000000 --dir /tmp/publish-bench
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use busca_core::ModelManifest;
use busca_core::shot::{FrameDecode, Sampling};
use busca_indexer::decode::{decode_sampled, DecodeChoice, SampleOptions};
use busca_onnx::{init_runtime, ImageEncoder, SessionOptions};
use busca_indexer::segment::{analyse, AnalysisParams, VideoFrames};
use clap::{Parser, Subcommand};
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

/// Speed benchmarks of the indexer (ratios measured in one run).
#[derive(Parser, Debug)]
#[command(name = "busca-bench")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Decode + sample + resize of a clip vs `ffmpeg -vf fps=N,scale=...` (goal ≤ 1.2×).
    Decode {
        /// The clip.
        #[arg(long)]
        clip: PathBuf,
        /// Frames sampled per second.
        #[arg(long, default_value_t = 2.0)]
        fps: f32,
        /// Shortest side after resizing.
        #[arg(long, default_value_t = 224)]
        size: u32,
        /// Timed repetitions of each (the best is kept).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// FFmpeg decoder threads for both (0: each its default, FFmpeg's for the CLI, busca-indexer's for it).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Image encoder images/s vs onnxruntime from Python on the same model (goal ≥ 1.0×).
    Encode {
        /// Model directory with manifest.json.
        #[arg(long)]
        model: PathBuf,
        /// Images per batch.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Images timed (after one warm-up batch).
        #[arg(long, default_value_t = 32)]
        images: usize,
        /// Python with onnxruntime and numpy.
        #[arg(long, default_value = "/root/.cache/buscaescenas/venv/bin/python")]
        python: PathBuf,
        /// ONNX Runtime library (default: $ORT_DYLIB_PATH).
        #[arg(long, env = "ORT_DYLIB_PATH")]
        ort_lib: Option<PathBuf>,
        /// Alternating rounds of each (the best is kept).
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
    /// Semantic analysis of synthetic 768-d frames (goal ≤ 30 s for 100k on 2 cores).
    Segment {
        /// Number of frames.
        #[arg(long, default_value_t = 100_000)]
        frames: usize,
        /// Embedding dimension.
        #[arg(long, default_value_t = 768)]
        dim: usize,
        /// Frames per synthetic video.
        #[arg(long, default_value_t = 3600)]
        frames_per_video: usize,
        /// Frames k-means trains on.
        #[arg(long, default_value_t = 20_000)]
        max_train_frames: usize,
    },
    /// `busca-index publish` over synthetic work records of many workers:
    /// wall time and peak memory of the one step that sees every frame.
    Publish {
        /// Number of frames (768-d, the tiny model's; 1 per second of video).
        #[arg(long, default_value_t = 100_000)]
        frames: usize,
        /// Frames per synthetic video.
        #[arg(long, default_value_t = 3600)]
        frames_per_video: usize,
        /// Scratch folder (its `bundles/` is replaced).
        #[arg(long)]
        dir: PathBuf,
        /// The model whose id and dimension the records carry.
        #[arg(long, default_value = "models/tiny")]
        model: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.bench {
        Bench::Decode {
            clip,
            fps,
            size,
            runs,
            threads,
        } => bench_decode(&clip, fps, size, runs.max(1), threads),
        Bench::Encode {
            model,
            batch,
            images,
            python,
            ort_lib,
            rounds,
        } => bench_encode(&model, batch.max(1), images.max(1), &python, ort_lib.as_deref(), rounds.max(1)),
        Bench::Segment {
            frames,
            dim,
            frames_per_video,
            max_train_frames,
        } => bench_segment(frames, dim, frames_per_video.max(1), max_train_frames),
        Bench::Publish {
            frames,
            frames_per_video,
            dir,
            model,
        } => bench_publish(frames, frames_per_video.max(1), &dir, &model),
    }
}

fn table(title: &str, header: [&str; 4], rows: &[[String; 4]]) {
    println!("{title}");
    println!("| {:<44} | {:>8} | {:>10} | {:>18} |", header[0], header[1], header[2], header[3]);
    println!("|{:-<46}|{:->10}|{:->12}|{:->20}|", "", "", "", "");
    for r in rows {
        println!("| {:<44} | {:>8} | {:>10} | {:>18} |", r[0], r[1], r[2], r[3]);
    }
}

fn bench_decode(clip: &Path, fps: f32, size: u32, runs: usize, threads: usize) -> anyhow::Result<()> {
    let options = SampleOptions {
        fps,
        size,
        fit: busca_core::preprocess::Fit::ShortestSideCrop,
        decoder_threads: threads,
        detect_transitions: true,
        sample_at_cuts: true,
        decode: DecodeChoice::Only(FrameDecode::All),
    };
    /// One run of ours: seconds, frames, output size, how it sampled.
    struct Run {
        seconds: f64,
        frames: usize,
        dims: (u32, u32),
        sampling: Sampling,
        decoded: u64,
        duration_ms: u64,
    }
    // Transition detection on or off, with it the extra samples at cuts or
    // not, and which frames are decoded.
    let decode_ours = |detect: bool, at_cuts: bool, mode: FrameDecode| -> anyhow::Result<Run> {
        let start = Instant::now();
        let (mut n, mut dims) = (0, (0, 0));
        let options =
            SampleOptions { detect_transitions: detect, sample_at_cuts: at_cuts, decode: DecodeChoice::Only(mode), ..options };
        let info = decode_sampled(clip, options, |f| {
            n += 1;
            dims = (f.width, f.height);
            std::hint::black_box(&f.rgb);
            Ok(())
        })
        .with_context(|| format!("decoding {}", clip.display()))?;
        Ok(Run { seconds: start.elapsed().as_secs_f64(), frames: n, dims, sampling: info.sampling, decoded: info.frames, duration_ms: info.duration_ms })
    };
    let variants: [(&str, bool, bool, FrameDecode); 5] = [
        ("busca-indexer decode", true, true, FrameDecode::All),
        ("busca-indexer decode, no samples at cuts", true, false, FrameDecode::All),
        ("busca-indexer decode, no frame transitions", false, false, FrameDecode::All),
        ("busca-indexer, non-reference frames skipped", false, false, FrameDecode::NonReference),
        ("busca-indexer, key frames only", false, false, FrameDecode::Key),
    ];
    let mut best: Vec<Run> =
        variants.iter().map(|&(_, detect, cuts, mode)| decode_ours(detect, cuts, mode)).collect::<anyhow::Result<_>>()?;
    let dims = best[0].dims;
    // The same work with the ffmpeg CLI: same rate, same output size, same
    // bicubic scaler, raw RGB thrown away; every frame decoded (the CLI's
    // default, the reference) and, as a peer, with non-reference frames
    // skipped the way we skip them.
    let filter = format!("fps={fps},scale={}:{}:flags=bicubic", dims.0, dims.1);
    let run_cli = |skip_nonref: bool| -> anyhow::Result<f64> {
        let start = Instant::now();
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error"]);
        if threads > 0 {
            cmd.args(["-threads", &threads.to_string()]);
        }
        if skip_nonref {
            cmd.args(["-skip_frame", "noref"]);
        }
        let status = cmd
            .arg("-i")
            .arg(clip)
            .args(["-vf", &filter, "-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
            .stdout(Stdio::null())
            .status()
            .context("running the ffmpeg CLI")?;
        if !status.success() {
            bail!("ffmpeg failed on {}", clip.display());
        }
        Ok(start.elapsed().as_secs_f64())
    };
    // Alternate them all so that load from other processes hits all alike.
    let mut reference = run_cli(false)?;
    let mut cli_skip = run_cli(true)?;
    for _ in 1..runs {
        for (b, &(_, detect, cuts, mode)) in best.iter_mut().zip(&variants) {
            b.seconds = b.seconds.min(decode_ours(detect, cuts, mode)?.seconds);
        }
        reference = reference.min(run_cli(false)?);
        cli_skip = cli_skip.min(run_cli(true)?);
    }
    let frames = best[0].frames;
    let mut rows = vec![
        ["ffmpeg CLI (fps,scale filters)".to_string(), format!("{reference:.3}"), format!("{:.1}", frames as f64 / reference), "1.00".into()],
        ["ffmpeg CLI, -skip_frame noref".into(), format!("{cli_skip:.3}"), format!("{:.1}", frames as f64 / cli_skip), format!("{:.2}", cli_skip / reference)],
    ];
    for (b, &(label, ..)) in best.iter().zip(&variants) {
        let goal = match (label, b.sampling.decode) {
            (_, FrameDecode::NonReference) => " (goal ≤ 0.5)",
            ("busca-indexer decode", _) => " (goal ≤ 1.2)",
            _ => "",
        };
        rows.push([label.into(), format!("{:.3}", b.seconds), format!("{:.1}", b.frames as f64 / b.seconds), format!("{:.2}{goal}", b.seconds / reference)]);
    }
    table(
        &format!("decode + sample {fps} fps + resize to {}x{}: {} ({frames} frames, best of {runs})", dims.0, dims.1, clip.display()),
        ["", "seconds", "frames/s", "ratio vs ffmpeg"],
        &rows,
    );
    let [ours, detect_only, plain, nonref, key] = &best[..] else { unreachable!("five variants") };
    println!(
        "frame transition detection: {:.3} s with ÷ {:.3} s without = {:.3} (goal ≤ 1.1)",
        detect_only.seconds,
        plain.seconds,
        detect_only.seconds / plain.seconds
    );
    println!(
        "samples at cuts: {} frames instead of {}; {:.3} s with them ÷ {:.3} s without transitions = {:.3}",
        ours.frames,
        plain.frames,
        ours.seconds,
        plain.seconds,
        ours.seconds / plain.seconds
    );
    // One frame's duration, from the run that decoded them all.
    let frame_ms = plain.duration_ms as f64 / plain.decoded.max(1) as f64;
    for run in [plain, nonref, key] {
        println!(
            "decode {}: {} of {} frames decoded, {} samples, every grid point within {} ms of a sample ({:.1} frames of {frame_ms:.1} ms); {:.3} s ÷ ffmpeg CLI {:.3} s = {:.3}",
            run.sampling.decode.name(),
            run.decoded,
            plain.decoded,
            run.frames,
            run.sampling.max_offset_ms,
            f64::from(run.sampling.max_offset_ms) / frame_ms,
            run.seconds,
            reference,
            run.seconds / reference
        );
    }
    Ok(())
}

const PYTHON_BENCH: &str = r#"
import sys, time
import numpy as np
import onnxruntime as ort
path, inp, size, batch, images, pixels = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
opts = ort.SessionOptions()
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
x = np.fromfile(pixels, dtype="<f4").reshape(batch, 3, size, size)
s.run(None, {inp: x})
done, start = 0, time.perf_counter()
while done < images:
    s.run(None, {inp: x})
    done += batch
print(done / (time.perf_counter() - start))
"#;

fn bench_encode(
    model_dir: &Path,
    batch: usize,
    images: usize,
    python: &Path,
    ort_lib: Option<&Path>,
    rounds: usize,
) -> anyhow::Result<()> {
    let manifest = ModelManifest::load(model_dir)?;
    init_runtime(ort_lib, "busca-bench")?;
    let mut encoder = ImageEncoder::load(model_dir, &manifest, SessionOptions::cpu(0))?;
    let len = encoder.tensor_len();
    let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(0);
    let pixels: Vec<f32> = (0..batch * len)
        .map(|_| (rng.next_u32() as f32 / u32::MAX as f32) * 4.0 - 2.0)
        .collect();
    encoder.encode(&pixels, batch)?;
    let script = std::env::temp_dir().join(format!("busca-bench-encode-{}.py", std::process::id()));
    std::fs::write(&script, PYTHON_BENCH)?;
    // Both sides run the very same batch (values change the speed of random-
    // weight models through denormals).
    let pixels_file = script.with_extension("f32");
    std::fs::write(&pixels_file, pixels.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
    // Alternate the two so that load from other processes hits both alike;
    // keep each side's best round.
    let (mut ours, mut python_rate) = (0.0f64, 0.0f64);
    for _ in 0..rounds {
        let start = Instant::now();
        let mut done = 0;
        while done < images {
            std::hint::black_box(encoder.encode(&pixels, batch)?);
            done += batch;
        }
        ours = ours.max(done as f64 / start.elapsed().as_secs_f64());
        let output = Command::new(python)
            .arg(&script)
            .arg(model_dir.join(&manifest.image.file))
            .args([
                manifest.image.input.clone(),
                manifest.image.image_size.to_string(),
                batch.to_string(),
                images.to_string(),
            ])
            .arg(&pixels_file)
            .output()
            .with_context(|| format!("running {}", python.display()))?;
        if !output.status.success() {
            let _ = std::fs::remove_file(&script);
            let _ = std::fs::remove_file(&pixels_file);
            bail!("python onnxruntime bench failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let rate: f64 = String::from_utf8_lossy(&output.stdout).trim().parse().context("python's images/s")?;
        python_rate = python_rate.max(rate);
    }
    let _ = std::fs::remove_file(&script);
    let _ = std::fs::remove_file(&pixels_file);
    table(
        &format!("image encoder, CPU, {} (batch {batch}, {images} images, best of {rounds} alternating rounds)", manifest.model_id),
        ["", "images/s", "batch", "ratio vs python"],
        &[
            ["onnxruntime (Python)".into(), format!("{python_rate:.2}"), batch.to_string(), "1.00".into()],
            [format!("busca-indexer ({})", encoder.provider()), format!("{ours:.2}"), batch.to_string(), format!("{:.2} (goal ≥ 1.0)", ours / python_rate)],
        ],
    );
    Ok(())
}

/// Synthetic frames: 48 topic centres (fewer than the 64 classes, so a good
/// clustering reaches the noise floor); each video is a sequence of segments
/// (2 to 60 s at 1 fps) around a centre with per-frame noise; normalised.
fn synthetic_frames(frames: usize, dim: usize, per_video: usize) -> Vec<(Vec<u64>, Vec<f32>)> {
    let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(7);
    let mut uniform = move || (rng.next_u32() as f32 / u32::MAX as f32) * 2.0 - 1.0;
    let centres: Vec<Vec<f32>> = (0..48)
        .map(|_| {
            let mut c: Vec<f32> = (0..dim).map(|_| uniform()).collect();
            busca_core::vector::normalize(&mut c);
            c
        })
        .collect();
    let mut videos = Vec::new();
    let mut left = frames;
    while left > 0 {
        let n = per_video.min(left);
        left -= n;
        let mut t = Vec::with_capacity(n);
        let mut e = Vec::with_capacity(n * dim);
        let mut i = 0;
        while i < n {
            let centre = &centres[((uniform() + 1.0) * 23.99) as usize];
            let len = (2 + ((uniform() + 1.0) * 29.0) as usize).min(n - i);
            for _ in 0..len {
                let mut row: Vec<f32> = centre.iter().map(|c| c + 0.02 * uniform()).collect();
                busca_core::vector::normalize(&mut row);
                e.extend(row);
                t.push(i as u64 * 1000);
                i += 1;
            }
        }
        videos.push((t, e));
    }
    videos
}

fn bench_segment(frames: usize, dim: usize, per_video: usize, max_train_frames: usize) -> anyhow::Result<()> {
    let data = synthetic_frames(frames, dim, per_video);
    let views: Vec<VideoFrames<'_>> = data
        .iter()
        .map(|(t, e)| VideoFrames {
            t_ms: t,
            embeddings: e,
            duration_ms: t.last().map_or(0, |l| l + 1000),
            sample_frames: &[],
            transitions: None,
        })
        .collect();
    let mut params = AnalysisParams::defaults(1.0);
    params.max_train_frames = max_train_frames;
    let start = Instant::now();
    let analysis = analyse(&views, dim, &params)?;
    let seconds = start.elapsed().as_secs_f64();
    let scenes: usize = analysis.videos.iter().map(|v| v.scenes.len()).sum();
    // Quality of the classes: mean cosine of a frame to its class centroid
    // (same seed, so the same centroids as the timed run).
    let centroids = busca_indexer::segment::train_classes(&views, dim, &params)?;
    let mut cosine_sum = 0.0f64;
    for view in &views {
        let labels = busca_indexer::segment::assign(view.embeddings, &centroids, dim);
        for (row, label) in view.embeddings.chunks_exact(dim).zip(labels) {
            let c = &centroids[label as usize * dim..(label as usize + 1) * dim];
            let norm = busca_core::vector::dot(c, c).sqrt().max(1e-12);
            cosine_sum += f64::from(busca_core::vector::dot(row, c) / norm);
        }
    }
    let mean_cosine = cosine_sum / frames as f64;
    let shots: usize = analysis.videos.iter().map(|v| v.shots.len()).sum();
    table(
        &format!(
            "semantic analysis: {frames} frames × {dim} ({:.1} h at 1 fps), {} videos, {} threads, k-means trained on {} frames; mean frame-to-centroid cosine {mean_cosine:.4}",
            frames as f64 / 3600.0,
            views.len(),
            rayon::current_num_threads(),
            max_train_frames.min(frames),
        ),
        ["", "seconds", "frames/s", "ratio vs goal"],
        &[
            ["goal".into(), "30.000".into(), format!("{:.0}", frames as f64 / 30.0), "1.00".into()],
            [
                format!("classes {} / scenes {scenes} / shots {shots}", analysis.classes),
                format!("{seconds:.3}"),
                format!("{:.0}", frames as f64 / seconds),
                format!("{:.2} (goal ≤ 1.0)", seconds / 30.0),
            ],
        ],
    );
    Ok(())
}

/// Writes `frames` synthetic frames as finished videos in the work area of
/// collection `synth` under `dir/bundles` (as workers would leave them), then
/// times `busca-index publish` on it under `/usr/bin/time`.
fn bench_publish(frames: usize, per_video: usize, dir: &Path, model_dir: &Path) -> anyhow::Result<()> {
    use busca_core::shot::VideoRecord;
    use busca_indexer::work::{FinishedVideo, WorkStore};
    let model = ModelManifest::load(model_dir)?;
    let dim = model.embedding_dim;
    let bundles = dir.join("bundles");
    let _ = std::fs::remove_dir_all(&bundles);
    let work = WorkStore::open(&bundles.join("synth"))?;
    // One small JPEG stands for every thumbnail: publish copies keyframes,
    // it never decodes them.
    let mut thumb = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumb, 80)
        .encode_image(&image::RgbImage::from_pixel(112, 63, image::Rgb([90, 120, 150])))?;
    let started = Instant::now();
    let videos = synthetic_frames(frames, dim, per_video);
    for (i, (t_ms, embeddings)) in videos.iter().enumerate() {
        let n = t_ms.len();
        let record = FinishedVideo {
            record: VideoRecord {
                video_id: format!("tape_{i:06}"),
                source_uri: format!("/archive/tape_{i:06}.mxf"),
                duration_ms: n as u64 * 1000,
                content_sha256: format!("{i:064x}"),
                sampled_fps: 1.0,
                frames: n as u32,
                width: 1920,
                height: 1080,
                sampling: None,
            },
            t_ms: t_ms.clone(),
            dim,
            model_id: model.model_id.clone(),
            embeddings_file: String::new(),
            thumbs_file: String::new(),
            thumbs: Vec::new(),
            sample_frames: Vec::new(),
            decoded_frames: 0,
            transitions: None,
        };
        let thumbs = vec![thumb.clone(); n];
        work.save(record, &busca_core::vector::f32_to_f16_bytes(embeddings), &thumbs)?;
    }
    drop(videos);
    let written = started.elapsed().as_secs_f64();
    let work_bytes: u64 = std::fs::read_dir(work.dir())?.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
    let index = std::env::current_exe()?.with_file_name("busca-index");
    let out = Command::new("/usr/bin/time")
        .args(["-f", "busca-bench-time %e %M"])
        .arg(&index)
        .args(["publish", "--collection", "synth", "--fps", "1", "--no-progress", "--out"])
        .arg(&bundles)
        .arg("--model")
        .arg(model_dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} under /usr/bin/time", index.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("busca-index publish failed:\n{stdout}\n{stderr}");
    }
    let time_line = stderr.lines().rev().find_map(|l| l.strip_prefix("busca-bench-time ")).context("no /usr/bin/time line")?;
    let mut fields = time_line.split_whitespace();
    let wall: f64 = fields.next().context("wall time")?.parse()?;
    let max_rss_kib: f64 = fields.next().context("max RSS")?.parse()?;
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {name} ")))
            .and_then(|l| l.split('|').nth(2))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let embeddings_gib = (frames * dim * 4) as f64 / f64::from(1u32 << 30);
    table(
        &format!(
            "publish (busca-index publish) of {frames} frames × {dim} from {} videos' work records ({:.1} h at 1 fps; work area {:.2} GiB, written in {written:.1} s), {} cores",
            frames.div_ceil(per_video),
            frames as f64 / 3600.0,
            work_bytes as f64 / f64::from(1u32 << 30),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        ),
        ["", "seconds", "peak MiB", "MiB per 1k frames"],
        &[[
            format!("analysis {} of the wall; {}", row("analysis time"), row("shots")),
            format!("{wall:.1}"),
            format!("{:.0}", max_rss_kib / 1024.0),
            format!("{:.2} (f32 frames alone: {:.2})", max_rss_kib / 1024.0 / (frames as f64 / 1000.0), embeddings_gib * 1024.0 / (frames as f64 / 1000.0)),
        ]],
    );
    Ok(())
}

#[cfg(test)]
mod cli_tests {
    use clap::CommandFactory;

    /// clap's own consistency checks on every argument and subcommand
    /// (duplicate flags, bad defaults, conflicting names) fail here, not at
    /// a user's first run.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
