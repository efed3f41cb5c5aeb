//! One indexing run: find the videos, decode and embed the new or changed
//! ones (decoder threads feed the encoder through a bounded channel), store
//! each finished video in the work directory, analyse the whole collection and
//! publish a new bundle version.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use busca_core::error::IoAt;
use busca_core::bundle::{
    self, BundleManifest, Counts, IndexOptions, MapPoint, FORMAT_VERSION, INDEX_FILE, KEYFRAMES_DIR,
    MAP_FILE, SCENES_FILE, SHOTS_FILE, TIMELINES_DIR, VIDEOS_FILE,
};
use busca_core::model::ModelError;
use busca_core::shot::{SceneRecord, ShotRecord, Timeline, TimelineFrame, VideoRecord};
use busca_core::{ClipPreprocess, ModelManifest};
use busca_s3::{ConnectOptions, Location};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::decode::{decode_sampled, SampleOptions, SampledFrame, VideoInfo};
use busca_onnx::{init_runtime, Device, ImageEncoder, OnnxError, SessionOptions};
use crate::inputs::{self, InputError, InputVideo};
use crate::publish::{
    build_usearch, BundleStore, LocalFolderStore, PublishError, S3Destination, S3Store,
};
use crate::segment::{analyse, project_2d, AnalysisError, AnalysisParams, VideoFrames};
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
            ("wall time", format!("{:.1} s", self.wall_time.as_secs_f64())),
            ("analysis time", format!("{:.2} s", self.analysis_time.as_secs_f64())),
            ("frames/s", format!("{fps:.1}")),
            (
                "version",
                match (&self.version, self.published) {
                    (Some(v), true) => format!("{v} (published)"),
                    (Some(v), false) => format!("{v} (unchanged)"),
                    (None, _) => "none".into(),
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

/// Runs the indexer.
pub fn run(config: &IndexConfig) -> Result<Summary, IndexError> {
    let started = Instant::now();
    bundle::validate_collection_name(&config.collection)?;
    let model = ModelManifest::load(&config.model_dir)?;
    let inputs = inputs::collect(&config.inputs, &config.list_files)?;
    let store: Box<dyn BundleStore> = match &config.out {
        Location::Folder(root) => Box::new(LocalFolderStore::new(root)),
        Location::S3(url) => Box::new(S3Store::connect(S3Destination {
            url: url.clone(),
            connect: config.s3.connect.clone(),
            keep_versions: config.s3.keep_versions,
            staging: config.s3.staging.clone().unwrap_or_else(|| url.local_cache_dir("s3")),
        })?),
    };
    let collection_dir = store.local_collection_dir(&config.collection);
    let work = WorkStore::open(&collection_dir)?;
    store.load_work(&config.collection, work.dir())?;
    let mut finished = work.load_all()?;
    let fps = config.analysis.segmentation.sample_fps;
    // Embeddings made with another model or rate cannot be mixed in.
    finished.retain(|id, record| {
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
    tracing::info!(
        "{} input videos; {} videos already in collection {}",
        inputs.len(),
        finished.len(),
        config.collection
    );

    let mut summary = Summary::default();
    let embed_started = Instant::now();
    let fresh = embed_videos(config, &model, &inputs, &work, &finished, &mut summary)?;
    summary.embed_time = embed_started.elapsed();
    for record in fresh {
        finished.insert(record.record.video_id.clone(), record);
    }
    work.remove_orphans()?;
    store.save_work(&config.collection, work.dir())?;
    for (path, reason) in &summary.failures {
        tracing::debug!("failed: {}: {reason}", path.display());
    }
    if finished.is_empty() {
        return Err(IndexError::Empty {
            failures: summary.failures.len(),
        });
    }

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
        })
        .collect();
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

    summary.videos = videos.len();
    summary.hours = videos.iter().map(|v| v.record.duration_ms as f64).sum::<f64>() / 3_600_000.0;
    summary.frames = videos.iter().map(|v| v.t_ms.len()).sum();
    summary.classes = analysis.classes;
    summary.scenes = analysis.videos.iter().map(|v| v.scenes.len()).sum();
    summary.shots = analysis.videos.iter().map(|v| v.shots.len()).sum();

    let records: Vec<VideoRecord> = videos.iter().map(|v| v.record.clone()).collect();
    let current = store.current(&config.collection)?;
    if let Some(version) = &current {
        if unchanged(store.as_ref(), &config.collection, &records, &model, &segmentation) {
            tracing::info!("nothing changed; {version} stays current");
            summary.version = current;
            summary.wall_time = started.elapsed();
            return Ok(summary);
        }
    }

    let mut writer = store.begin(&config.collection)?;
    let dim = model.embedding_dim;
    let mut shots = Vec::new();
    let mut scenes = Vec::new();
    let mut shot_vectors = Vec::new();
    let (mut next_shot, mut next_scene) = (0u64, 0u64);
    for (video, analysed) in videos.iter().zip(&analysis.videos) {
        let id = &video.record.video_id;
        let end_of = |frame: usize| video.t_ms.get(frame).copied().unwrap_or(video.record.duration_ms);
        let first_scene = next_scene;
        for scene in &analysed.scenes {
            scenes.push(SceneRecord {
                scene_id: next_scene,
                video_id: id.clone(),
                start_ms: video.t_ms[scene.span.start],
                end_ms: end_of(scene.span.end),
                class_id: scene.class,
            });
            next_scene += 1;
        }
        let thumbs = work.thumbs(video)?;
        let mut timeline: Vec<TimelineFrame> = video
            .t_ms
            .iter()
            .zip(&analysed.frame_class)
            .map(|(&t_ms, &class_id)| TimelineFrame {
                t_ms,
                class_id,
                scene_id: 0,
                shot_id: 0,
            })
            .collect();
        for shot in &analysed.shots {
            let shot_id = next_shot;
            next_shot += 1;
            let scene_id = first_scene + shot.scene as u64;
            for frame in &mut timeline[shot.span.start..shot.span.end] {
                frame.scene_id = scene_id;
                frame.shot_id = shot_id;
            }
            let keyframe = format!("{KEYFRAMES_DIR}/{shot_id}.jpg");
            let (offset, len) = video.thumbs[shot.keyframe];
            let jpeg = thumbs
                .get(offset as usize..offset as usize + len as usize)
                .ok_or_else(|| WorkError::Corrupt {
                    path: work.dir().join(&video.thumbs_file),
                    reason: format!("thumbnail {} out of range", shot.keyframe),
                })?;
            writer.write(&keyframe, jpeg)?;
            shots.push(ShotRecord {
                shot_id,
                video_id: id.clone(),
                start_ms: video.t_ms[shot.span.start],
                end_ms: end_of(shot.span.end),
                scene_id,
                class_id: analysed.scenes[shot.scene].class,
                keyframe,
                keyframe_ms: video.t_ms[shot.keyframe],
                frame_count: (shot.span.end - shot.span.start) as u32,
            });
            shot_vectors.extend_from_slice(&shot.embedding);
        }
        let embeddings_rel = format!("{TIMELINES_DIR}/{id}.f16");
        let embeddings_path = work.dir().join(&video.embeddings_file);
        let f16 = std::fs::read(&embeddings_path).map_err(|e| WorkError::Io(IoAt::at(&embeddings_path)(e)))?;
        writer.write(&embeddings_rel, &f16)?;
        let timeline = Timeline {
            video_id: id.clone(),
            frames: timeline,
            embeddings: embeddings_rel,
            dim,
        };
        writer.write(&format!("{TIMELINES_DIR}/{id}.json"), &to_json(&timeline))?;
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

/// Messages from the decoder threads to the encoder.
enum Msg {
    Frame {
        job: usize,
        t_ms: u64,
        pixels: Vec<f32>,
        thumb: Vec<u8>,
    },
    Done {
        job: usize,
        info: VideoInfo,
        sha256: String,
    },
    Failed {
        job: usize,
        reason: String,
    },
}

/// Frames of one video being embedded.
#[derive(Default)]
struct JobState {
    t_ms: Vec<u64>,
    thumbs: Vec<Vec<u8>>,
    embeddings: Vec<f32>,
    received: usize,
    done: Option<(VideoInfo, String)>,
}

/// Thumbnails are half the model's resolution on their shortest side.
fn thumbnail_jpeg(frame: &SampledFrame) -> Vec<u8> {
    let image = image::RgbImage::from_raw(frame.width, frame.height, frame.rgb.clone()).expect("frame buffer size");
    let scale = 2;
    let small = image::imageops::thumbnail(&image, (frame.width / scale).max(1), (frame.height / scale).max(1));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&small)
        .expect("JPEG encoding to memory");
    out
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("static template")
}

/// Decodes and embeds every input whose content is not already in `finished`;
/// stores each finished video; returns them.
fn embed_videos(
    config: &IndexConfig,
    model: &ModelManifest,
    inputs: &[InputVideo],
    work: &WorkStore,
    finished: &BTreeMap<String, FinishedVideo>,
    summary: &mut Summary,
) -> Result<Vec<FinishedVideo>, IndexError> {
    let preprocess = model.preprocess();
    let options = SampleOptions {
        fps: config.analysis.segmentation.sample_fps,
        short_side: preprocess.size,
        decoder_threads: config.decoder_threads,
    };
    let multi = progress();
    if !config.progress {
        multi.set_draw_target(ProgressDrawTarget::hidden());
    }
    let videos_bar = multi.add(ProgressBar::new(inputs.len() as u64));
    videos_bar.set_style(bar_style(
        "{spinner} videos [{bar:30}] {pos}/{len}  {elapsed_precise} ETA {eta}  {wide_msg}",
    ));
    let frames_bar = multi.add(ProgressBar::new_spinner());
    frames_bar.set_style(bar_style("  frames {pos} embedded  {per_sec}"));

    // Hash every input once (in parallel): unchanged content is reused.
    let hashes: Vec<Result<String, String>> = {
        use rayon::prelude::*;
        inputs
            .par_iter()
            .map(|input| bundle::hash_file(&input.path).map(|e| e.sha256).map_err(|e| e.to_string()))
            .collect()
    };
    let mut todo: Vec<(usize, String)> = Vec::new();
    for (job, hash) in hashes.into_iter().enumerate() {
        match hash {
            Err(reason) => {
                tracing::warn!("skipped {reason}");
                summary.failures.push((inputs[job].path.clone(), reason));
                videos_bar.inc(1);
            }
            Ok(sha) if finished.get(&inputs[job].video_id).is_some_and(|f| f.record.content_sha256 == sha) => {
                tracing::debug!("{}: unchanged, reusing its frames", inputs[job].path.display());
                summary.videos_reused += 1;
                videos_bar.inc(1);
            }
            Ok(sha) => todo.push((job, sha)),
        }
    }
    if todo.is_empty() {
        videos_bar.finish_and_clear();
        frames_bar.finish_and_clear();
        return Ok(Vec::new());
    }
    init_runtime(config.ort_lib.as_deref(), "busca-index")?;
    let session = SessionOptions { device: config.device, threads: config.encoder_threads };
    let mut encoder = ImageEncoder::load(&config.model_dir, model, session)?;
    let dim = encoder.dim();
    let batch = config.batch.max(1);
    let (tx, rx) = sync_channel::<Msg>(batch * 2);
    let next_job = AtomicUsize::new(0);
    let mut fresh = Vec::new();
    std::thread::scope(|scope| -> Result<(), IndexError> {
        for _ in 0..config.decoders.max(1) {
            let tx = tx.clone();
            let next_job = &next_job;
            let todo = &todo;
            scope.spawn(move || decoder_thread(inputs, todo, options, preprocess, next_job, tx));
        }
        drop(tx);
        let result = encoder_loop(&rx, &mut encoder, dim, batch, inputs, model, config, work, summary, &videos_bar, &frames_bar, &mut fresh);
        // On error, drain so decoders blocked on a full channel can finish.
        drop(rx);
        result
    })?;
    videos_bar.finish_and_clear();
    frames_bar.finish_and_clear();
    Ok(fresh)
}

fn decoder_thread(
    inputs: &[InputVideo],
    todo: &[(usize, String)],
    options: SampleOptions,
    preprocess: ClipPreprocess,
    next_job: &AtomicUsize,
    tx: SyncSender<Msg>,
) {
    loop {
        let Some((job, sha256)) = todo.get(next_job.fetch_add(1, Ordering::Relaxed)) else {
            return;
        };
        let (job, sha256) = (*job, sha256.clone());
        let input = &inputs[job];
        let result = decode_sampled(&input.path, options, |frame| {
            let mut pixels = vec![0.0f32; preprocess.tensor_len()];
            preprocess
                .crop_normalize_into(frame.width, frame.height, &frame.rgb, &mut pixels)
                .map_err(|e| e.to_string())?;
            let thumb = thumbnail_jpeg(&frame);
            tx.send(Msg::Frame {
                job,
                t_ms: frame.t_ms,
                pixels,
                thumb,
            })
            .map_err(|_| "the encoder stopped".to_string())
        });
        let msg = match result {
            Ok(info) => Msg::Done { job, info, sha256 },
            Err(e) => Msg::Failed {
                job,
                reason: e.to_string(),
            },
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn encoder_loop(
    rx: &Receiver<Msg>,
    encoder: &mut ImageEncoder,
    dim: usize,
    batch: usize,
    inputs: &[InputVideo],
    model: &ModelManifest,
    config: &IndexConfig,
    work: &WorkStore,
    summary: &mut Summary,
    videos_bar: &ProgressBar,
    frames_bar: &ProgressBar,
    fresh: &mut Vec<FinishedVideo>,
) -> Result<(), IndexError> {
    let tensor_len = encoder.tensor_len();
    let mut jobs: BTreeMap<usize, JobState> = BTreeMap::new();
    let mut pending_jobs: Vec<usize> = Vec::with_capacity(batch);
    let mut pending_pixels: Vec<f32> = Vec::with_capacity(batch * tensor_len);
    let fps = config.analysis.segmentation.sample_fps;

    let finish_ready = |jobs: &mut BTreeMap<usize, JobState>,
                            summary: &mut Summary,
                            fresh: &mut Vec<FinishedVideo>|
     -> Result<(), IndexError> {
        let ready: Vec<usize> = jobs
            .iter()
            .filter(|(_, s)| s.done.is_some() && s.embeddings.len() == s.received * dim)
            .map(|(j, _)| *j)
            .collect();
        for job in ready {
            let state = jobs.remove(&job).expect("ready job exists");
            let (info, sha256) = state.done.expect("ready job is done");
            let input = &inputs[job];
            let record = FinishedVideo {
                record: VideoRecord {
                    video_id: input.video_id.clone(),
                    source_uri: std::fs::canonicalize(&input.path)
                        .unwrap_or_else(|_| input.path.clone())
                        .display()
                        .to_string(),
                    duration_ms: info.duration_ms,
                    content_sha256: sha256,
                    sampled_fps: fps,
                    frames: state.t_ms.len() as u32,
                    width: info.width,
                    height: info.height,
                },
                t_ms: state.t_ms,
                dim,
                model_id: model.model_id.clone(),
                embeddings_file: String::new(),
                thumbs_file: String::new(),
                thumbs: Vec::new(),
            };
            let bytes = busca_core::vector::f32_to_f16_bytes(&state.embeddings);
            let saved = work.save(record, &bytes, &state.thumbs)?;
            tracing::info!(
                "{}: {} frames over {:.1} s ({}, {}x{}{})",
                input.path.display(),
                saved.t_ms.len(),
                info.duration_ms as f64 / 1000.0,
                info.codec,
                info.width,
                info.height,
                if info.rotation != 0 { format!(", rotated {}°", info.rotation) } else { String::new() }
            );
            summary.videos_indexed += 1;
            summary.frames_embedded += saved.t_ms.len();
            videos_bar.inc(1);
            fresh.push(saved);
        }
        Ok(())
    };

    let mut run_batch = |jobs: &mut BTreeMap<usize, JobState>,
                         pending_jobs: &mut Vec<usize>,
                         pending_pixels: &mut Vec<f32>|
     -> Result<(), IndexError> {
        if pending_jobs.is_empty() {
            return Ok(());
        }
        let rows = encoder.encode(pending_pixels, pending_jobs.len())?;
        for (job, row) in pending_jobs.iter().zip(rows.chunks_exact(dim)) {
            // Frames of a video that failed meanwhile are dropped.
            if let Some(state) = jobs.get_mut(job) {
                state.embeddings.extend_from_slice(row);
            }
        }
        frames_bar.inc(pending_jobs.len() as u64);
        pending_jobs.clear();
        pending_pixels.clear();
        Ok(())
    };

    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Frame {
                job,
                t_ms,
                pixels,
                thumb,
            } => {
                let state = jobs.entry(job).or_default();
                state.t_ms.push(t_ms);
                state.thumbs.push(thumb);
                state.received += 1;
                pending_jobs.push(job);
                pending_pixels.extend_from_slice(&pixels);
                if pending_jobs.len() == batch {
                    run_batch(&mut jobs, &mut pending_jobs, &mut pending_pixels)?;
                    finish_ready(&mut jobs, summary, fresh)?;
                }
            }
            Msg::Done { job, info, sha256 } => {
                jobs.entry(job).or_default().done = Some((info, sha256));
                // Everything of this video may be in a partial batch: embed it
                // now so that the video is stored without waiting for others.
                if pending_jobs.contains(&job) {
                    run_batch(&mut jobs, &mut pending_jobs, &mut pending_pixels)?;
                }
                finish_ready(&mut jobs, summary, fresh)?;
            }
            Msg::Failed { job, reason } => {
                jobs.remove(&job);
                tracing::warn!("skipped {reason}");
                summary.failures.push((inputs[job].path.clone(), reason));
                videos_bar.inc(1);
            }
        }
        videos_bar.set_message(format!("{} failed", summary.failures.len()));
    }
    run_batch(&mut jobs, &mut pending_jobs, &mut pending_pixels)?;
    finish_ready(&mut jobs, summary, fresh)?;
    Ok(())
}
