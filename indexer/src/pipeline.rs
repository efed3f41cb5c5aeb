//! The decode → encode pipeline of a run: `--decoders` threads each decode
//! whole videos (sampling, resizing, preprocessing, thumbnails) and send
//! frames through one bounded channel to the encoder, which batches frames of
//! any video, so it never waits on a single decoder; each finished video is
//! stored in the work directory as soon as its last frame is embedded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use busca_core::bundle;
use busca_core::shot::VideoRecord;
use busca_core::{ClipPreprocess, ModelManifest};
use busca_onnx::{init_runtime, ImageEncoder, SessionOptions};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::decode::{decode_sampled, SampleOptions, VideoInfo};
use crate::inputs::InputVideo;
use crate::run::{progress, IndexConfig, IndexError, Summary};
use crate::thumbnail::thumbnail_jpeg;
use crate::work::{FinishedVideo, WorkStore};

/// Messages from the decoder threads to the encoder.
enum Msg {
    Frame {
        job: usize,
        t_ms: u64,
        frame: u64,
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
    frames: Vec<u64>,
    thumbs: Vec<Vec<u8>>,
    embeddings: Vec<f32>,
    received: usize,
    done: Option<(VideoInfo, String)>,
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("static template")
}

/// What to do with each video once it is in the work directory (the S3
/// store uploads it at once).
pub(crate) type OnSaved<'a> = &'a dyn Fn(&FinishedVideo) -> Result<(), IndexError>;

/// Decodes and embeds every input whose content is not already in `finished`;
/// stores each finished video and hands it to `on_saved`; returns them.
pub(crate) fn embed_videos(
    config: &IndexConfig,
    model: &ModelManifest,
    inputs: &[InputVideo],
    work: &WorkStore,
    finished: &BTreeMap<String, FinishedVideo>,
    on_saved: OnSaved<'_>,
    summary: &mut Summary,
) -> Result<Vec<FinishedVideo>, IndexError> {
    let preprocess = model.preprocess();
    let options = SampleOptions {
        fps: config.analysis.segmentation.sample_fps,
        size: preprocess.size,
        fit: preprocess.fit,
        decoder_threads: config.decoder_threads,
        detect_transitions: config.analysis.frame_transitions,
        sample_at_cuts: config.analysis.frame_transitions,
        decode: config.analysis.decode,
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
        let result = encoder_loop(&rx, &mut encoder, dim, batch, inputs, model, config, work, on_saved, summary, &videos_bar, &frames_bar, &mut fresh);
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
            let thumb = thumbnail_jpeg(frame.width, frame.height, &frame.rgb);
            busca_core::crash::point("decode.sample");
            tx.send(Msg::Frame {
                job,
                t_ms: frame.t_ms,
                frame: frame.frame,
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
    on_saved: OnSaved<'_>,
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
                    sampling: Some(info.sampling),
                },
                t_ms: state.t_ms,
                dim,
                model_id: model.model_id.clone(),
                embeddings_file: String::new(),
                thumbs_file: String::new(),
                thumbs: Vec::new(),
                sample_frames: state.frames,
                decoded_frames: info.frames,
                transitions: info.transitions.clone(),
            };
            let bytes = busca_core::vector::f32_to_f16_bytes(&state.embeddings);
            let saved = work.save(record, &bytes, &state.thumbs)?;
            on_saved(&saved)?;
            tracing::info!(
                "{}: {} frames ({} at cuts) over {:.1} s, {} transitions ({}, {}x{}{})",
                input.path.display(),
                saved.t_ms.len(),
                info.sampled_at_cuts,
                info.duration_ms as f64 / 1000.0,
                saved.transitions.as_ref().map_or_else(|| "no".into(), |t| t.len().to_string()),
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
        busca_core::crash::point("encode.batch");
        pending_jobs.clear();
        pending_pixels.clear();
        Ok(())
    };

    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Frame {
                job,
                t_ms,
                frame,
                pixels,
                thumb,
            } => {
                let state = jobs.entry(job).or_default();
                state.t_ms.push(t_ms);
                state.frames.push(frame);
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
