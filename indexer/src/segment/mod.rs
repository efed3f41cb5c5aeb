//! Semantic analysis: frame embeddings → semantic classes, scenes and shots,
//! and the 2-D semantic map.
//!
//! 1. **Classes** are k-means clusters of the frame embeddings of the whole
//!    collection, ignoring time (see `indexer/README.md` for why k-means, why
//!    per collection, and the measurements). k-means is trained with
//!    `linfa-clustering` (k-means++ init, seeded) on a seeded sample of at most
//!    [`AnalysisParams::max_train_frames`] frames, then every frame is
//!    assigned to its nearest centroid in one parallel pass: the cost is linear
//!    in the archive size.
//! 2. **Diarization** lays the class labels on each video's timeline; runs
//!    shorter than `min_scene_ms` are absorbed by the neighbour whose class
//!    centroid is closer to the run's mean, shortest first: the remaining runs
//!    are the semantic scenes.
//! 3. **Shots**: inside a scene, a frame whose cosine similarity to the running
//!    mean of the current shot falls below `shot_similarity` starts a new shot;
//!    shots shorter than `min_shot_ms` are merged into the more similar
//!    neighbour in the same scene. A shot's embedding is the normalised mean of
//!    its frames, its keyframe the frame nearest that mean.
//! 4. **On the frames**: each scene and shot boundary snaps to the cut,
//!    dissolve or fade the decoder found in its sampling interval, and a
//!    transition the embeddings missed starts a new shot when the sampled
//!    frames either side of it differ (`snap.rs`).
//!
//! Everything here is deterministic for a given input and seed.

//!
//! Files: this one holds the parameters, the result types and [`analyse`];
//! `classes.rs` the k-means classes, `timeline.rs` diarization and shot
//! splitting on each timeline, `snap.rs` the boundaries on the frames,
//! `map.rs` the 2-D map.

mod classes;
mod map;
mod snap;
mod timeline;

use busca_core::bundle::SegmentationParams;
use busca_core::shot::Transition;
use rayon::prelude::*;

pub use classes::{assign, train_classes, SimdL2};
pub use map::project_2d;
pub use snap::Boundary;
pub use timeline::{diarize, shot_embedding, split_shots};

/// Name of the class algorithm recorded in the manifest.
pub const CLASS_ALGORITHM: &str = "kmeans/linfa-clustering";

/// The analysis parameters: what the manifest records plus the sampling cap.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisParams {
    /// Recorded in the manifest.
    pub segmentation: SegmentationParams,
    /// k-means is trained on at most this many frames (seeded sample).
    pub max_train_frames: usize,
    /// Lloyd iterations at most.
    pub max_iterations: u64,
    /// Look for cuts, dissolves and fades on every decoded frame (while
    /// decoding) and put shot boundaries on them.
    pub frame_transitions: bool,
    /// Which frames to decode (frames are skipped only without
    /// `frame_transitions`).
    pub decode: crate::decode::DecodeChoice,
}

impl AnalysisParams {
    /// Default thresholds for CLIP ViT-L/14 frame embeddings at `sample_fps`.
    pub fn defaults(sample_fps: f32) -> Self {
        AnalysisParams {
            segmentation: SegmentationParams {
                sample_fps,
                class_algorithm: CLASS_ALGORITHM.into(),
                classes: 0,
                min_scene_ms: 2000,
                shot_similarity: 0.85,
                min_shot_ms: 1000,
                cut_similarity: busca_core::bundle::default_cut_similarity(),
                seed: 42,
            },
            max_train_frames: 20_000,
            max_iterations: 30,
            frame_transitions: true,
            decode: crate::decode::DecodeChoice::Auto,
        }
    }

    /// The number of classes for `frames` frames: the requested count, or
    /// `sqrt(frames / 2)` clamped to 2..=64 when `classes` is 0 (auto), never
    /// more than the frames.
    pub fn class_count(&self, frames: usize) -> usize {
        let k = match self.segmentation.classes {
            0 => ((frames as f64 / 2.0).sqrt().round() as usize).clamp(2, 64),
            k => k,
        };
        k.min(frames).max(1)
    }
}

/// The frames of one video, in timestamp order.
#[derive(Debug, Clone, Copy)]
pub struct VideoFrames<'a> {
    /// Timestamps in ms.
    pub t_ms: &'a [u64],
    /// Row-major `frames × dim` normalised embeddings.
    pub embeddings: &'a [f32],
    /// End of the video in ms (ends the last scene and shot).
    pub duration_ms: u64,
    /// Index of each sampled frame among the displayed frames (empty: not
    /// known, as in work records from before frame-level detection).
    pub sample_frames: &'a [u64],
    /// Cuts, dissolves and fades found on the frames (`None`: not looked for).
    pub transitions: Option<&'a [Transition]>,
}

/// A contiguous run of frames `[start, end)` of one video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First frame.
    pub start: usize,
    /// One past the last frame.
    pub end: usize,
}

/// A semantic scene of a video.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Its frames.
    pub span: Span,
    /// Its class.
    pub class: u32,
    /// Where it begins.
    pub start: Boundary,
}

/// A semantic shot of a video.
#[derive(Debug, Clone, PartialEq)]
pub struct Shot {
    /// Its frames.
    pub span: Span,
    /// Index of its scene in the video's scene list.
    pub scene: usize,
    /// The normalised mean of its frames.
    pub embedding: Vec<f32>,
    /// The frame nearest the mean.
    pub keyframe: usize,
    /// Where it begins.
    pub start: Boundary,
}

/// The analysis of one video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoAnalysis {
    /// Class of each frame after smoothing (the scene's class).
    pub frame_class: Vec<u32>,
    /// Scenes in order.
    pub scenes: Vec<Scene>,
    /// Shots in order.
    pub shots: Vec<Shot>,
}

/// The analysis of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Number of classes.
    pub classes: usize,
    /// One per input video, in input order.
    pub videos: Vec<VideoAnalysis>,
}

/// Why the analysis failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// k-means failed.
    #[error("k-means over {frames} frames failed: {reason}")]
    Clustering {
        /// Frames clustered.
        frames: usize,
        /// linfa's reason.
        reason: String,
    },
}

/// Runs the whole analysis over a collection.
pub fn analyse(videos: &[VideoFrames<'_>], dim: usize, params: &AnalysisParams) -> Result<Analysis, AnalysisError> {
    let total: usize = videos.iter().map(|v| v.t_ms.len()).sum();
    let centroids = train_classes(videos, dim, params)?;
    let k = centroids.len() / dim.max(1);
    let seg = &params.segmentation;
    let analysed = videos
        .par_iter()
        .map(|video| {
            let labels = assign(video.embeddings, &centroids, dim);
            let mut scenes = diarize(video, &labels, &centroids, dim, seg.min_scene_ms);
            let mut frame_class = vec![0u32; labels.len()];
            let mut spans = Vec::new();
            for (scene_index, scene) in scenes.iter().enumerate() {
                frame_class[scene.span.start..scene.span.end].fill(scene.class);
                spans.extend(
                    split_shots(video, scene.span, dim, seg.shot_similarity, seg.min_shot_ms)
                        .into_iter()
                        .map(|span| (span, scene_index)),
                );
            }
            let scene_spans: Vec<Span> = scenes.iter().map(|s| s.span).collect();
            let (scene_starts, placed) = snap::place(video, dim, &scene_spans, spans, seg.cut_similarity);
            for (scene, start) in scenes.iter_mut().zip(scene_starts) {
                scene.start = start;
            }
            let shots = placed
                .into_iter()
                .map(|(span, scene, start)| {
                    let (embedding, keyframe) = shot_embedding(video.embeddings, span, dim);
                    Shot { span, scene, embedding, keyframe, start }
                })
                .collect();
            VideoAnalysis {
                frame_class,
                scenes,
                shots,
            }
        })
        .collect();
    tracing::debug!("analysed {total} frames into {k} classes");
    Ok(Analysis {
        classes: k,
        videos: analysed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use busca_core::vector::{dot, squared_l2};

    const DIM: usize = 8;

    fn unit(i: usize) -> Vec<f32> {
        let mut v = vec![0.0; DIM];
        v[i] = 1.0;
        v
    }

    /// Frames at 2 fps following `(axis, seconds)` segments.
    fn timeline(segments: &[(usize, u64)]) -> (Vec<u64>, Vec<f32>, u64) {
        let (mut t, mut e, mut now) = (Vec::new(), Vec::new(), 0u64);
        for &(axis, secs) in segments {
            for _ in 0..secs * 2 {
                t.push(now);
                e.extend(unit(axis));
                now += 500;
            }
        }
        (t, e, now)
    }

    fn params() -> AnalysisParams {
        AnalysisParams::defaults(2.0)
    }

    #[test]
    fn splits_shots_at_changes_and_absorbs_blips() {
        // 3 s of A, one 0.5 s blip of B, 3 s more of A, 4 s of C.
        let (t, e, end) = timeline(&[(0, 3), (1, 0), (2, 4)]);
        let mut e = e;
        // Turn frame 3 into a blip of axis 1.
        e[3 * DIM..4 * DIM].copy_from_slice(&unit(1));
        let video = VideoFrames {
            t_ms: &t,
            embeddings: &e,
            duration_ms: end,
            sample_frames: &[],
            transitions: None,
        };
        let analysis = analyse(&[video], DIM, &params()).unwrap();
        let shots: Vec<Span> = analysis.videos[0].shots.iter().map(|s| s.span).collect();
        assert_eq!(shots, vec![Span { start: 0, end: 6 }, Span { start: 6, end: 14 }]);
        assert_eq!(analysis.videos[0].frame_class.len(), 14);
    }

    #[test]
    fn classes_are_shared_across_videos_and_deterministic() {
        let (t1, e1, d1) = timeline(&[(0, 4), (1, 4)]);
        let (t2, e2, d2) = timeline(&[(1, 4), (0, 4)]);
        let videos = [
            VideoFrames {
                t_ms: &t1,
                embeddings: &e1,
                duration_ms: d1,
                sample_frames: &[],
                transitions: None,
            },
            VideoFrames {
                t_ms: &t2,
                embeddings: &e2,
                duration_ms: d2,
                sample_frames: &[],
                transitions: None,
            },
        ];
        let mut p = params();
        p.segmentation.classes = 2;
        let a = analyse(&videos, DIM, &p).unwrap();
        let b = analyse(&videos, DIM, &p).unwrap();
        assert_eq!(a, b);
        let first = &a.videos[0].scenes;
        let second = &a.videos[1].scenes;
        assert_eq!(first.len(), 2);
        assert_eq!(second.len(), 2);
        // Same content, same class, in either video.
        assert_eq!(first[0].class, second[1].class);
        assert_eq!(first[1].class, second[0].class);
        assert_ne!(first[0].class, first[1].class);
    }

    #[test]
    fn keyframe_is_nearest_the_mean() {
        let mut e = Vec::new();
        e.extend(unit(0));
        let mut mid = vec![0.0; DIM];
        mid[0] = 0.8;
        mid[1] = 0.6;
        e.extend(&mid);
        e.extend(unit(1));
        let (mean, key) = shot_embedding(&e, Span { start: 0, end: 3 }, DIM);
        assert_eq!(key, 1);
        assert!((dot(&mean, &mean) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn projection_spreads_to_the_unit_square() {
        let rows: Vec<f32> = [unit(0), unit(1), unit(2), unit(0)].concat();
        let p = project_2d(&rows, DIM);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], p[3]);
        for axis in 0..2 {
            let lo = p.iter().map(|q| q[axis]).fold(f32::INFINITY, f32::min);
            let hi = p.iter().map(|q| q[axis]).fold(f32::NEG_INFINITY, f32::max);
            assert!(lo.abs() < 1e-6 && (hi - 1.0).abs() < 1e-6, "axis {axis}: {lo}..{hi}");
        }
    }

    #[test]
    fn squared_l2_matches_naive_for_all_tail_lengths() {
        use linfa_nn::distance::Distance;
        for n in 0..20 {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.3).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32).cos()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
            assert!((squared_l2(&a, &b) - naive).abs() < 1e-3, "n={n}");
            let view = |v: &Vec<f32>| ndarray::ArrayView1::from(v.as_slice()).to_owned();
            let (va, vb) = (view(&a), view(&b));
            assert!((SimdL2.rdistance(va.view(), vb.view()) - naive).abs() < 1e-3);
        }
    }

    #[test]
    fn auto_class_count_scales_with_frames() {
        let p = params();
        assert_eq!(p.class_count(1), 1);
        assert_eq!(p.class_count(32), 4);
        assert_eq!(p.class_count(100_000), 64);
    }
}
