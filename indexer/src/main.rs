//! `busca-index`: indexes videos into a BuscaEscenas bundle.
//!
//! ```text
//! busca-index --collection demo --out bundles --model models/tiny demo/videos
//! busca-index --collection demo --out s3://archive/bundles --model models/tiny demo/videos
//! # on many machines: each worker its part, then one publish
//! busca-index --shard 0/3 --collection demo --out s3://archive/bundles --model models/clip --list all.txt
//! busca-index publish --collection demo --out s3://archive/bundles --model models/clip --list all.txt
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use busca_indexer::{publish_work, run, AnalysisParams, Device, IndexConfig, S3Publish, Shard};
use busca_core::shot::FrameDecode;
use busca_indexer::decode::DecodeChoice;
use busca_s3::{Location, S3Flags};
use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Index videos (the default command); with --shard, only one worker's part.
    Index(IndexArgs),
    /// Publish one version from every finished video in the collection's work
    /// area (every worker's), decoding nothing. Videos given are the expected
    /// list: those not finished yet are named, and the rest is published.
    #[command(alias = "finalize")]
    Publish(PublishArgs),
}

#[derive(Args, Debug)]
struct IndexArgs {
    #[command(flatten)]
    videos: VideoArgs,
    #[command(flatten)]
    collection: CollectionArgs,
    #[command(flatten)]
    encoder: EncoderArgs,
    #[command(flatten)]
    shard: ShardArgs,
}

#[derive(Args, Debug)]
struct PublishArgs {
    #[command(flatten)]
    videos: VideoArgs,
    #[command(flatten)]
    collection: CollectionArgs,
    /// Number of workers that indexed the collection, to name the worker of
    /// each missing video.
    #[arg(long, env = "BUSCA_SHARDS", value_parser = clap::value_parser!(u32).range(1..))]
    shards: Option<u32>,
}

#[derive(Args, Debug)]
struct VideoArgs {
    /// Video files and folders (searched recursively).
    inputs: Vec<PathBuf>,
    /// A file listing videos, one path per line (relative to the list file).
    #[arg(long = "list", value_name = "FILE")]
    list: Vec<PathBuf>,
}

/// This worker's part of the inputs: --shard I/N, or the index a Kubernetes
/// Indexed Job gives each pod and the count its manifest sets.
#[derive(Args, Debug)]
struct ShardArgs {
    /// Index only worker I's part of N (0-based) and publish nothing: run
    /// `busca-index publish` once every worker has finished. Every worker
    /// must be given the same inputs.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Worker index when --shard is not given (a Kubernetes Indexed Job sets
    /// JOB_COMPLETION_INDEX in each pod).
    #[arg(long, env = "JOB_COMPLETION_INDEX", value_name = "I")]
    shard_index: Option<u32>,
    /// Number of workers, with --shard-index.
    #[arg(long, env = "BUSCA_SHARDS", value_name = "N")]
    shards: Option<u32>,
}

impl ShardArgs {
    fn shard(&self) -> anyhow::Result<Option<Shard>> {
        if let Some(shard) = self.shard {
            return Ok(Some(shard));
        }
        match (self.shard_index, self.shards) {
            (None, None) => Ok(None),
            (Some(index), Some(count)) => Ok(Some(Shard::new(index, count)?)),
            (Some(index), None) => anyhow::bail!(
                "worker index {index} (--shard-index or JOB_COMPLETION_INDEX) needs the number of workers: --shards N or BUSCA_SHARDS"
            ),
            (None, Some(count)) => anyhow::bail!(
                "{count} workers (--shards or BUSCA_SHARDS) but no worker index: --shard-index I or JOB_COMPLETION_INDEX"
            ),
        }
    }
}

/// Where the encoder runs and how decoding is spread.
#[derive(Args, Debug)]
struct EncoderArgs {
    /// Where the image encoder runs: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: Device,
    /// Frames per encoder batch.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch: u32,
    /// Videos decoded at the same time.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    decoders: u32,
    /// FFmpeg threads per decoder (0: one for frames up to SD, else one per core).
    #[arg(long, default_value_t = 0)]
    decoder_threads: usize,
    /// ONNX Runtime threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    encoder_threads: usize,
    /// ONNX Runtime shared library (default: $ORT_DYLIB_PATH).
    #[arg(long, env = "ORT_DYLIB_PATH", value_name = "FILE")]
    ort_lib: Option<PathBuf>,
}

/// The collection, where it is published, and what shapes its analysis.
#[derive(Args, Debug)]
struct CollectionArgs {
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
    /// A cut, dissolve or fade found on the frames where the embeddings see
    /// no shot change starts a new shot when the sampled frames either side
    /// are less similar (cosine) than this.
    #[arg(long, default_value_t = busca_core::bundle::default_cut_similarity())]
    cut_similarity: f32,
    /// Do not look for cuts, dissolves and fades on every decoded frame:
    /// shot boundaries stay on the sampled frames (a little faster to decode).
    #[arg(long)]
    no_frame_transitions: bool,
    /// Which frames to decode. `auto`: every frame while transitions are
    /// found on the frames, else only the frames others are predicted from
    /// (about half the decoding; samples are the decoded frames nearest the
    /// grid). `non-reference` and `key` (key frames only: samples as far
    /// apart as the key frames) need --no-frame-transitions.
    #[arg(long, value_enum, default_value_t = DecodeArg::Auto)]
    decode: DecodeArg,
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

/// `--decode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DecodeArg {
    Auto,
    All,
    NonReference,
    Key,
}

impl DecodeArg {
    fn choice(self) -> DecodeChoice {
        match self {
            DecodeArg::Auto => DecodeChoice::Auto,
            DecodeArg::All => DecodeChoice::Only(FrameDecode::All),
            DecodeArg::NonReference => DecodeChoice::Only(FrameDecode::NonReference),
            DecodeArg::Key => DecodeChoice::Only(FrameDecode::Key),
        }
    }
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
    // Past a file-size limit the kernel's default is to kill the process
    // (SIGXFSZ); ignored, the write fails with EFBIG and the error names the
    // file and the bytes it needed, like a full disk.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
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
            eprintln!("error: {}", busca_core::error::chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run_cli() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Index(args)) => index(args),
        None => index(cli.index),
        Some(Command::Publish(args)) => publish(args),
    }
}

fn index(args: IndexArgs) -> anyhow::Result<ExitCode> {
    if args.videos.inputs.is_empty() && args.videos.list.is_empty() {
        anyhow::bail!("nothing to index: give video files, folders or --list FILE");
    }
    let shard = args.shard.shard()?;
    let config = config(args.videos, args.collection, args.encoder, shard)?;
    let summary = run(&config).with_context(|| format!("indexing collection {}", config.collection))?;
    println!("{summary}");
    for (_, reason) in &summary.failures {
        println!("failed: {reason}");
    }
    Ok(ExitCode::SUCCESS)
}

fn publish(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let encoder = EncoderArgs::parse_defaults();
    let config = config(args.videos, args.collection, encoder, None)?;
    let summary =
        publish_work(&config).with_context(|| format!("publishing collection {}", config.collection))?;
    println!("{summary}");
    for (path, id) in &summary.missing {
        let worker = args.shards.map(|n| format!(", worker {}/{n}", Shard::of(id, n))).unwrap_or_default();
        println!("missing: {} (video {id}{worker})", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

impl EncoderArgs {
    /// The defaults: `publish` encodes nothing.
    fn parse_defaults() -> EncoderArgs {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            encoder: EncoderArgs,
        }
        Only::parse_from(["busca-index"]).encoder
    }
}

fn config(
    videos: VideoArgs,
    args: CollectionArgs,
    encoder: EncoderArgs,
    shard: Option<Shard>,
) -> anyhow::Result<IndexConfig> {
    let collection = args.collection.context("--collection NAME is required")?;
    let model_dir = args.model.context("--model DIR is required (e.g. models/tiny)")?;
    let mut analysis = AnalysisParams::defaults(args.fps);
    analysis.segmentation.classes = args.classes;
    analysis.segmentation.min_scene_ms = args.min_scene_ms;
    analysis.segmentation.shot_similarity = args.shot_similarity;
    analysis.segmentation.min_shot_ms = args.min_shot_ms;
    analysis.segmentation.cut_similarity = args.cut_similarity;
    analysis.frame_transitions = !args.no_frame_transitions;
    analysis.decode = args.decode.choice();
    if analysis.frame_transitions && !matches!(args.decode, DecodeArg::Auto | DecodeArg::All) {
        anyhow::bail!(
            "--decode {} skips frames, but shot boundaries on the frame need every frame: add --no-frame-transitions or use --decode all",
            args.decode.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
        );
    }
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
    Ok(IndexConfig {
        inputs: videos.inputs,
        list_files: videos.list,
        collection,
        out: args.out,
        s3,
        model_dir,
        device: encoder.device,
        batch: encoder.batch as usize,
        decoders: encoder.decoders as usize,
        decoder_threads: encoder.decoder_threads,
        encoder_threads: encoder.encoder_threads,
        ort_lib: encoder.ort_lib,
        analysis,
        quantization: args.quantization,
        progress: !args.no_progress,
        shard,
    })
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

    /// Frames are skipped only when no shot boundary needs every frame.
    #[test]
    fn skipping_frames_needs_no_frame_transitions() {
        use clap::Parser;
        let config = |extra: &[&str]| {
            let mut argv = vec!["busca-index", "--collection", "c", "--model", "m"];
            argv.extend_from_slice(extra);
            argv.push("videos");
            let cli = super::Cli::try_parse_from(argv).expect("arguments parse");
            let a = cli.index;
            super::config(a.videos, a.collection, a.encoder, None)
        };
        let err = config(&["--decode", "key"]).unwrap_err().to_string();
        assert!(err.contains("--decode key") && err.contains("--no-frame-transitions"), "{err}");
        assert!(config(&["--decode", "non-reference"]).is_err());
        let ok = config(&["--decode", "non-reference", "--no-frame-transitions"]).unwrap();
        assert_eq!(ok.analysis.decode, super::DecodeChoice::Only(super::FrameDecode::NonReference));
        assert_eq!(config(&[]).unwrap().analysis.decode, super::DecodeChoice::Auto);
    }
}
