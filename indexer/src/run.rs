//! One indexing run: find the videos, decode and embed the new or changed
//! ones (`pipeline`), store each finished video in the work directory,
//! analyse the whole collection (`segment`), assemble its tables
//! (`assemble`) and publish a new bundle version.
//!
//! On many machines the run splits in two: [`run`] with a [`Shard`] decodes
//! and embeds only that worker's videos and stops at the work records, and
//! [`publish_work`] (`busca-index publish`) reads every worker's records,
//! decoding nothing, and does the rest once.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use busca_core::error::IoAt;
use busca_core::bundle::{
    self, BundleManifest, Counts, IndexOptions, MapPoint, FORMAT_VERSION, INDEX_FILE, MAP_FILE,
    SCENES_FILE, SHOTS_FILE, VIDEOS_FILE,
};
use busca_core::model::ModelError;
use busca_core::shot::{Timeline, VideoRecord};
use busca_core::ModelManifest;
use busca_s3::{ConnectOptions, Location};
use indicatif::MultiProgress;

use busca_onnx::{Device, OnnxError};
use crate::inputs::{self, InputError};
use crate::publish::{
    build_usearch, BundleStore, LocalFolderStore, PublishError, S3Destination, S3Store,
};
use crate::assemble::{assemble, Tables, VideoInput};
use crate::pipeline::embed_videos;
use crate::segment::{analyse, project_2d, AnalysisError, AnalysisParams, VideoFrames};
use crate::shard::Shard;
use crate::work::{FinishedVideo, WorkError, WorkStore};

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// Files and folders to index.
    pub inputs: Vec<PathBuf>,
    /// List files (one path per line).
    pub list_files: Vec<PathBuf>,
    /// Collection name.
    pub collection: String,
    /// Where bundles are published: a folder or `s3://bucket/prefix`.
    pub out: Location,
    /// How to publish when `out` is in S3 (unused for a folder).
    pub s3: S3Publish,
    /// Model directory (with `manifest.json`).
    pub model_dir: PathBuf,
    /// Where the image encoder runs.
    pub device: Device,
    /// Frames per encoder batch.
    pub batch: usize,
    /// Videos decoded at once.
    pub decoders: usize,
    /// FFmpeg threads per decoder (0 = FFmpeg's choice).
    pub decoder_threads: usize,
    /// ONNX Runtime intra-op threads (0 = all cores).
    pub encoder_threads: usize,
    /// ONNX Runtime library (else `ORT_DYLIB_PATH`).
    pub ort_lib: Option<PathBuf>,
    /// Semantic analysis parameters, sampling rate included.
    pub analysis: AnalysisParams,
    /// Scalar kind of the published index.
    pub quantization: busca_core::usearch_file::ScalarKind,
    /// Draw progress bars (they are hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Index only this worker's part of the inputs and stop at the work
    /// records (`None`: the whole run).
    pub shard: Option<Shard>,
}

/// How to publish to an S3 location.
#[derive(Debug, Clone)]
pub struct S3Publish {
    /// Endpoint, region, addressing, credentials.
    pub connect: ConnectOptions,
    /// Complete versions kept in the bucket (the current one always is).
    pub keep_versions: usize,
    /// Local folder where versions are staged and work files cached
    /// (default: `~/.cache/buscaescenas/s3/<bucket>/<prefix>`).
    pub staging: Option<PathBuf>,
}

impl Default for S3Publish {
    fn default() -> Self {
        S3Publish { connect: ConnectOptions::default(), keep_versions: 5, staging: None }
    }
}

/// Why a run failed as a whole (single videos fail alone, see [`Summary::failures`]).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The model directory is unusable.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An input path is unusable.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The work directory is unusable.
    #[error("work directory: {0}")]
    Work(#[from] WorkError),
    /// The image encoder could not be loaded or failed.
    #[error(transparent)]
    Encode(#[from] OnnxError),
    /// The semantic analysis failed.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// The bundle could not be written.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The collection name is invalid.
    #[error(transparent)]
    Bundle(#[from] busca_core::BundleError),
    /// Nothing could be indexed and nothing was indexed before.
    #[error("no video could be indexed ({failures} failed) and the collection has none yet")]
    Empty {
        /// Failed inputs.
        failures: usize,
    },
    /// `publish` found no finished video to publish.
    #[error("the work area of {collection} holds no finished video made with {model_id} at {fps} fps: run the workers (busca-index --shard I/N) first")]
    NoWork {
        /// The collection.
        collection: String,
        /// The model asked for.
        model_id: String,
        /// The sampling rate asked for.
        fps: f32,
    },
}

impl From<busca_core::bundle_writer::WriteError> for IndexError {
    fn from(e: busca_core::bundle_writer::WriteError) -> Self {
        IndexError::Publish(PublishError::Write(e))
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Videos in the published collection.
    pub videos: usize,
    /// Videos decoded and embedded in this run.
    pub videos_indexed: usize,
    /// Videos whose stored embeddings were reused (unchanged content).
    pub videos_reused: usize,
    /// Hours of video in the collection.
    pub hours: f64,
    /// Frames in the collection.
    pub frames: usize,
    /// Frames decoded and embedded in this run.
    pub frames_embedded: usize,
    /// Semantic classes.
    pub classes: usize,
    /// Semantic scenes.
    pub scenes: usize,
    /// Semantic shots.
    pub shots: usize,
    /// Inputs that could not be indexed: the file and the reason.
    pub failures: Vec<(PathBuf, String)>,
    /// `publish` only: inputs named by the caller that have no finished work
    /// record (their worker has not finished, or failed): file and video id.
    pub missing: Vec<(PathBuf, String)>,
    /// The worker this run was (`None`: a whole run or a publish).
    pub shard: Option<Shard>,
    /// Time spent decoding and embedding.
    pub embed_time: Duration,
    /// Time spent on the semantic analysis.
    pub analysis_time: Duration,
    /// Whole run.
    pub wall_time: Duration,
    /// The version now current.
    pub version: Option<String>,
    /// Whether a new version was published (false: nothing changed).
    pub published: bool,
}

impl Summary {
    /// Videos, hours and frames of the collection (or of a worker's part).
    fn count(&mut self, videos: &[&FinishedVideo]) {
        self.videos = videos.len();
        self.hours = videos.iter().map(|v| v.record.duration_ms as f64).sum::<f64>() / 3_600_000.0;
        self.frames = videos.iter().map(|v| v.t_ms.len()).sum();
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fps = if self.embed_time.as_secs_f64() > 0.0 {
            self.frames_embedded as f64 / self.embed_time.as_secs_f64()
        } else {
            0.0
        };
        let rows: Vec<(&str, String)> = vec![
            (
                "videos",
                format!(
                    "{} ({} indexed, {} reused)",
                    self.videos, self.videos_indexed, self.videos_reused
                ),
            ),
            ("hours of video", format!("{:.3}", self.hours)),
            ("frames", format!("{} ({} embedded now)", self.frames, self.frames_embedded)),
            ("classes", self.classes.to_string()),
            ("scenes", self.scenes.to_string()),
            ("shots", self.shots.to_string()),
            ("failures", self.failures.len().to_string()),
            ("missing", self.missing.len().to_string()),
            ("wall time", format!("{:.1} s", self.wall_time.as_secs_f64())),
            ("analysis time", format!("{:.2} s", self.analysis_time.as_secs_f64())),
            ("frames/s", format!("{fps:.1}")),
            (
                "version",
                match (&self.version, self.published, self.shard) {
                    (_, _, Some(shard)) => format!("none: worker {shard}"),
                    (Some(v), true, _) => format!("{v} (published)"),
                    (Some(v), false, _) => format!("{v} (unchanged)"),
                    (None, _, _) => "none".into(),
                },
            ),
        ];
        writeln!(f, "+----------------+----------------------------------+")?;
        for (k, v) in rows {
            writeln!(f, "| {k:<14} | {v:<32} |")?;
        }
        write!(f, "+----------------+----------------------------------+")
    }
}

/// The progress bars of the process; tracing output is printed through it so
/// that log lines do not tear the bars.
pub fn progress() -> &'static MultiProgress {
    static PROGRESS: OnceLock<MultiProgress> = OnceLock::new();
    PROGRESS.get_or_init(MultiProgress::new)
}

/// What every kind of run opens first.
struct Opened {
    model: ModelManifest,
    store: Box<dyn BundleStore>,
    work: WorkStore,
}

fn open(config: &IndexConfig) -> Result<Opened, IndexError> {
    bundle::validate_collection_name(&config.collection)?;
    let model = ModelManifest::load(&config.model_dir)?;
    let store: Box<dyn BundleStore> = match &config.out {
        Location::Folder(root) => Box::new(LocalFolderStore::new(root)),
        Location::S3(url) => Box::new(S3Store::connect(S3Destination {
            url: url.clone(),
            connect: config.s3.connect.clone(),
            keep_versions: config.s3.keep_versions,
            staging: config.s3.staging.clone().unwrap_or_else(|| url.local_cache_dir("s3")),
        })?),
    };
    let work = WorkStore::open(&store.local_collection_dir(&config.collection))?;
    Ok(Opened { model, store, work })
}

/// The finished videos of the work directory that `owned` accepts and that
/// were made with this model at this rate (others cannot be mixed in).
fn usable_records(
    work: &WorkStore,
    model: &ModelManifest,
    fps: f32,
    owned: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<String, FinishedVideo>, IndexError> {
    let mut finished = work.load_all()?;
    finished.retain(|id, record| {
        if !owned(id) {
            return false;
        }
        let usable = record.model_id == model.model_id && record.record.sampled_fps == fps;
        if !usable {
            tracing::warn!(
                "{id}: stored frames were made with {} at {} fps; they are not reused",
                record.model_id,
                record.record.sampled_fps
            );
        }
        usable
    });
    Ok(finished)
}

/// Runs the indexer: the whole run, or one worker's part of it when
/// `config.shard` is set (then nothing is published: see [`publish_work`]).
pub fn run(config: &IndexConfig) -> Result<Summary, IndexError> {
    let started = Instant::now();
    let Opened { model, store, work } = open(config)?;
    let mut inputs = inputs::collect(&config.inputs, &config.list_files)?;
    let shard = config.shard;
    let owned = move |id: &str| shard.is_none_or(|s| s.owns(id));
    if let Some(shard) = shard {
        // Ids come from the whole list, so every worker names videos alike.
        let all = inputs.len();
        inputs.retain(|video| owned(&video.video_id));
        tracing::info!("worker {shard}: {} of {all} input videos are this worker's", inputs.len());
    }
    store.load_work(&config.collection, work.dir(), &owned)?;
    let mut finished = usable_records(&work, &model, config.analysis.segmentation.sample_fps, &owned)?;
    tracing::info!(
        "{} input videos; {} videos already in collection {}",
        inputs.len(),
        finished.len(),
        config.collection
    );

    let mut summary = Summary { shard, ..Summary::default() };
    let embed_started = Instant::now();
    let on_saved = |video: &FinishedVideo| -> Result<(), IndexError> {
        Ok(store.save_video(&config.collection, work.dir(), video)?)
    };
    let fresh = embed_videos(config, &model, &inputs, &work, &finished, &on_saved, &mut summary)?;
    summary.embed_time = embed_started.elapsed();
    for record in fresh {
        finished.insert(record.record.video_id.clone(), record);
    }
    work.remove_orphans(&owned)?;
    store.save_work(&config.collection, work.dir(), &owned)?;
    for (path, reason) in &summary.failures {
        tracing::debug!("failed: {}: {reason}", path.display());
    }
    if shard.is_some() {
        // A worker never writes CURRENT: its videos are in the work area.
        let videos: Vec<&FinishedVideo> = finished.values().collect();
        summary.count(&videos);
        summary.wall_time = started.elapsed();
        return Ok(summary);
    }
    if finished.is_empty() {
        return Err(IndexError::Empty {
            failures: summary.failures.len(),
        });
    }
    publish_finished(config, &model, store.as_ref(), &work, &finished, summary, started)
}

/// `busca-index publish`: publishes one version from every finished video in
/// the collection's work area (all workers'), decoding nothing. Inputs given
/// in `config` are the expected list: those without a finished record are
/// reported in [`Summary::missing`] and the rest is published.
pub fn publish_work(config: &IndexConfig) -> Result<Summary, IndexError> {
    let started = Instant::now();
    let Opened { model, store, work } = open(config)?;
    let every = |_: &str| true;
    store.load_work(&config.collection, work.dir(), &every)?;
    let fps = config.analysis.segmentation.sample_fps;
    let finished = usable_records(&work, &model, fps, &every)?;
    let mut summary = Summary { videos_reused: finished.len(), ..Summary::default() };
    if !config.inputs.is_empty() || !config.list_files.is_empty() {
        let expected = inputs::collect(&config.inputs, &config.list_files)?;
        summary.missing = expected
            .into_iter()
            .filter(|video| !finished.contains_key(&video.video_id))
            .map(|video| (video.path, video.video_id))
            .collect();
        for (path, id) in &summary.missing {
            tracing::warn!("not in the work area yet: {} (video {id})", path.display());
        }
    }
    if finished.is_empty() {
        return Err(IndexError::NoWork {
            collection: config.collection.clone(),
            model_id: model.model_id.clone(),
            fps,
        });
    }
    publish_finished(config, &model, store.as_ref(), &work, &finished, summary, started)
}

/// Analyses the finished videos, assembles the tables and publishes them as
/// the collection's next version (unless the current one already holds them).
fn publish_finished(
    config: &IndexConfig,
    model: &ModelManifest,
    store: &dyn BundleStore,
    work: &WorkStore,
    finished: &BTreeMap<String, FinishedVideo>,
    mut summary: Summary,
    started: Instant,
) -> Result<Summary, IndexError> {
    let analysis_started = Instant::now();
    let videos: Vec<&FinishedVideo> = finished.values().collect();
    let embeddings: Vec<Vec<f32>> = videos
        .iter()
        .map(|v| work.embeddings(v))
        .collect::<Result<_, _>>()?;
    let frames: Vec<VideoFrames<'_>> = videos
        .iter()
        .zip(&embeddings)
        .map(|(v, e)| VideoFrames {
            t_ms: &v.t_ms,
            embeddings: e,
            duration_ms: v.record.duration_ms,
            sample_frames: &v.sample_frames,
            transitions: v.transitions.as_deref(),
        })
        .collect();
    busca_core::crash::point("analysis");
    let analysis = analyse(&frames, model.embedding_dim, &config.analysis)?;
    summary.analysis_time = analysis_started.elapsed();
    let mut segmentation = config.analysis.segmentation.clone();
    segmentation.classes = analysis.classes;
    // SegmentationParams has no field for the training sample; the algorithm
    // name records it so that the manifest says everything that shaped the classes.
    segmentation.class_algorithm = format!(
        "{}: k-means++ init, trained on a seeded sample of at most {} frames, at most {} iterations",
        config.analysis.segmentation.class_algorithm, config.analysis.max_train_frames, config.analysis.max_iterations
    );

    summary.count(&videos);
    summary.classes = analysis.classes;
    summary.scenes = analysis.videos.iter().map(|v| v.scenes.len()).sum();
    summary.shots = analysis.videos.iter().map(|v| v.shots.len()).sum();

    let records: Vec<VideoRecord> = videos.iter().map(|v| v.record.clone()).collect();
    let current = store.current(&config.collection)?;
    if let Some(version) = &current {
        if unchanged(store, &config.collection, &records, model, &segmentation) {
            tracing::info!("nothing changed; {version} stays current");
            summary.version = current;
            summary.wall_time = started.elapsed();
            return Ok(summary);
        }
    }

    let inputs: Vec<VideoInput<'_>> = videos
        .iter()
        .zip(&analysis.videos)
        .map(|(video, analysis)| VideoInput {
            video_id: &video.record.video_id,
            t_ms: &video.t_ms,
            duration_ms: video.record.duration_ms,
            decoded_frames: video.decoded_frames,
            analysis,
        })
        .collect();
    let Tables { shots, scenes, shot_vectors, keyframes, timelines } = assemble(&inputs);

    let mut writer = store.begin(&config.collection)?;
    // Tokenizer files: the component encodes queries from the bundle alone.
    writer.write_model_files(&config.model_dir, model)?;
    let dim = model.embedding_dim;
    let mut keyframes = keyframes.iter().peekable();
    for (v, (video, timeline)) in videos.iter().zip(timelines).enumerate() {
        let thumbs = work.thumbs(video)?;
        while let Some(keyframe) = keyframes.next_if(|k| k.video == v) {
            let (offset, len) = video.thumbs[keyframe.frame];
            let jpeg = thumbs.get(offset as usize..offset as usize + len as usize).ok_or_else(|| WorkError::Corrupt {
                path: work.dir().join(&video.thumbs_file),
                reason: format!("thumbnail {} out of range", keyframe.frame),
            })?;
            writer.write(&keyframe.rel, jpeg)?;
        }
        let embeddings_path = work.dir().join(&video.embeddings_file);
        let f16 = std::fs::read(&embeddings_path).map_err(|e| WorkError::Io(IoAt::at(&embeddings_path)(e)))?;
        writer.write(&timeline.embeddings_rel, &f16)?;
        let record = Timeline {
            video_id: video.record.video_id.clone(),
            frames: timeline.frames,
            embeddings: timeline.embeddings_rel,
            dim,
            transitions: video.transitions.clone(),
        };
        writer.write(&timeline.rel, &to_json(&record))?;
    }
    let index_options = IndexOptions::new(dim, config.quantization);
    let keys: Vec<u64> = shots.iter().map(|s| s.shot_id).collect();
    build_usearch(&writer.scratch_path(INDEX_FILE)?, &index_options, &keys, &shot_vectors)?;
    writer.add_scratch(INDEX_FILE)?;
    let map: Vec<MapPoint> = project_2d(&shot_vectors, dim)
        .into_iter()
        .zip(&shots)
        .map(|([x, y], shot)| MapPoint {
            shot_id: shot.shot_id,
            x,
            y,
            class_id: shot.class_id,
        })
        .collect();
    writer.write(MAP_FILE, &to_json(&map))?;
    writer.write(SHOTS_FILE, &to_json(&shots))?;
    writer.write(SCENES_FILE, &to_json(&scenes))?;
    writer.write(VIDEOS_FILE, &to_json(&records))?;
    let manifest = BundleManifest {
        format_version: FORMAT_VERSION,
        collection: config.collection.clone(),
        version: writer.version().to_string(),
        created_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        model: model.clone(),
        index: index_options,
        segmentation,
        counts: Counts {
            videos: records.len(),
            frames: summary.frames,
            classes: analysis.classes,
            scenes: scenes.len(),
            shots: shots.len(),
        },
        max_sample_offset_ms: records.iter().filter_map(|r| r.sampling).map(|s| s.max_offset_ms).max(),
        files: BTreeMap::new(),
    };
    let manifest = store.commit(&config.collection, writer, manifest)?;
    tracing::info!("published {} of {}", manifest.version, config.collection);
    summary.version = Some(manifest.version);
    summary.published = true;
    summary.wall_time = started.elapsed();
    Ok(summary)
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("bundle tables serialise")
}

/// Whether the current version already holds exactly these videos, made with
/// this model and these parameters.
fn unchanged(
    store: &dyn BundleStore,
    collection: &str,
    records: &[VideoRecord],
    model: &ModelManifest,
    segmentation: &busca_core::bundle::SegmentationParams,
) -> bool {
    match store.current_tables(collection) {
        Ok(Some((manifest, videos))) => {
            videos == records && manifest.model == *model && manifest.segmentation == *segmentation
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!("cannot read the current version of {collection} ({e}); publishing a new one");
            false
        }
    }
}
