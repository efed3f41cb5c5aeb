//! `busca-index`: indexes videos into a BuscaEscenas bundle.
//!
//! ```text
//! busca-index --collection demo --out bundles --model models/tiny demo/videos
//! busca-index --collection demo --out s3://archive/bundles --model models/tiny demo/videos
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use busca_indexer::{run, AnalysisParams, Device, IndexConfig, S3Publish};
use busca_s3::{Location, S3Flags};
use clap::{Args, Parser, Subcommand};

/// Index videos (files, folders, list files) into a versioned search bundle.
#[derive(Parser, Debug)]
#[command(name = "busca-index", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    index: IndexArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Index videos (the default command).
    Index(IndexArgs),
}

#[derive(Args, Debug)]
struct IndexArgs {
    /// Video files and folders (searched recursively).
    inputs: Vec<PathBuf>,
    /// A file listing videos, one path per line (relative to the list file).
    #[arg(long = "list", value_name = "FILE")]
    list: Vec<PathBuf>,
    /// Collection name: 1 to 64 of a-z 0-9 _ -.
    #[arg(long)]
    collection: Option<String>,
    /// Where bundles are published: a folder (<out>/<collection>/...) or
    /// s3://bucket/prefix (credentials from the standard AWS chain).
    #[arg(long, default_value = "bundles")]
    out: Location,
    /// The S3 server of an s3:// --out.
    #[command(flatten)]
    s3: S3Flags,
    /// Complete versions kept in S3 after publishing (the current one always is).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    keep_versions: u32,
    /// Local folder for S3 staging and the frame cache
    /// (default: ~/.cache/buscaescenas/s3/<bucket>/<prefix>).
    #[arg(long, value_name = "DIR")]
    staging: Option<PathBuf>,
    /// Model directory holding manifest.json (e.g. models/tiny).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Frames sampled per second of video, 1 to 3.
    #[arg(long, default_value_t = 2.0, value_parser = parse_fps)]
    fps: f32,
    /// Where the image encoder runs: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: Device,
    /// Frames per encoder batch.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch: u32,
    /// Videos decoded at the same time.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    decoders: u32,
    /// FFmpeg threads per decoder (0: FFmpeg chooses).
    #[arg(long, default_value_t = 0)]
    decoder_threads: usize,
    /// ONNX Runtime threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    encoder_threads: usize,
    /// ONNX Runtime shared library (default: $ORT_DYLIB_PATH).
    #[arg(long, env = "ORT_DYLIB_PATH", value_name = "FILE")]
    ort_lib: Option<PathBuf>,
    /// Number of semantic classes (0: sqrt(frames/2), between 2 and 64).
    #[arg(long, default_value_t = 0)]
    classes: usize,
    /// Class runs shorter than this (ms) are merged into a neighbour.
    #[arg(long, default_value_t = 2000)]
    min_scene_ms: u64,
    /// A frame less similar (cosine) than this to the running shot mean starts a new shot.
    #[arg(long, default_value_t = 0.85)]
    shot_similarity: f32,
    /// Shots shorter than this (ms) are merged into a neighbour.
    #[arg(long, default_value_t = 1000)]
    min_shot_ms: u64,
    /// Seed of every random choice (k-means), for reproducible results.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// At most this many frames train k-means (the rest are only assigned).
    #[arg(long, default_value_t = 20_000)]
    max_train_frames: usize,
    /// Scalar kind of the index's vectors: f16 (default; half of f32, same
    /// recall at 768-d), f32, or i8 (a quarter of f32, for edge hosts with
    /// 128 MiB per request; the component scores i8 rows against the f32
    /// query, see query-component/README.md).
    #[arg(long, default_value = "f16")]
    quantization: busca_core::usearch_file::ScalarKind,
    /// No progress bars.
    #[arg(long)]
    no_progress: bool,
}

fn parse_fps(s: &str) -> Result<f32, String> {
    let fps: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (1.0..=3.0).contains(&fps) {
        Ok(fps)
    } else {
        Err(format!("{fps} is outside 1 to 3"))
    }
}

/// Log lines go through the progress bars so they do not tear them.
#[derive(Clone, Copy)]
struct ProgressWriter;

impl Write for ProgressWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        busca_indexer::run::progress().suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(|| ProgressWriter)
        .with_target(false)
        .init();
    match run_cli() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_cli() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Index(args)) => args,
        None => cli.index,
    };
    let collection = args.collection.context("--collection NAME is required")?;
    let model_dir = args.model.context("--model DIR is required (e.g. models/tiny)")?;
    if args.inputs.is_empty() && args.list.is_empty() {
        anyhow::bail!("nothing to index: give video files, folders or --list FILE");
    }
    let mut analysis = AnalysisParams::defaults(args.fps);
    analysis.segmentation.classes = args.classes;
    analysis.segmentation.min_scene_ms = args.min_scene_ms;
    analysis.segmentation.shot_similarity = args.shot_similarity;
    analysis.segmentation.min_shot_ms = args.min_shot_ms;
    analysis.segmentation.seed = args.seed;
    analysis.max_train_frames = args.max_train_frames.max(1);
    if matches!(args.out, Location::Folder(_)) && args.s3.any() {
        anyhow::bail!("--endpoint-url, --region and --path-style apply to --out s3://bucket/prefix only");
    }
    let s3 = S3Publish {
        connect: args.s3.connect_options(None),
        keep_versions: args.keep_versions as usize,
        staging: args.staging,
    };
    let config = IndexConfig {
        inputs: args.inputs,
        list_files: args.list,
        collection: collection.clone(),
        out: args.out,
        s3,
        model_dir,
        device: args.device,
        batch: args.batch as usize,
        decoders: args.decoders as usize,
        decoder_threads: args.decoder_threads,
        encoder_threads: args.encoder_threads,
        ort_lib: args.ort_lib,
        analysis,
        quantization: args.quantization,
        progress: !args.no_progress,
    };
    let summary = run(&config).with_context(|| format!("indexing collection {collection}"))?;
    println!("{summary}");
    for (_, reason) in &summary.failures {
        println!("failed: {reason}");
    }
    Ok(ExitCode::SUCCESS)
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
