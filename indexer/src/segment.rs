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
//!
//! Everything here is deterministic for a given input and seed.

use busca_core::bundle::SegmentationParams;
use busca_core::vector::{dot, normalize, normalized_mean, squared_l2};
use linfa::prelude::*;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::Array2;
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use rayon::prelude::*;

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
                seed: 42,
            },
            max_train_frames: 20_000,
            max_iterations: 30,
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
            let scenes = diarize(video, &labels, &centroids, dim, seg.min_scene_ms);
            let mut frame_class = vec![0u32; labels.len()];
            let mut shots = Vec::new();
            for (scene_index, scene) in scenes.iter().enumerate() {
                frame_class[scene.span.start..scene.span.end].fill(scene.class);
                shots.extend(split_shots(video, scene.span, dim, seg.shot_similarity, seg.min_shot_ms).into_iter().map(
                    |span| {
                        let (embedding, keyframe) = shot_embedding(video.embeddings, span, dim);
                        Shot {
                            span,
                            scene: scene_index,
                            embedding,
                            keyframe,
                        }
                    },
                ));
            }
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

/// Trains k-means on a seeded sample of the collection's frames; returns the
/// `k × dim` centroids, row-major.
pub fn train_classes(videos: &[VideoFrames<'_>], dim: usize, params: &AnalysisParams) -> Result<Vec<f32>, AnalysisError> {
    let total: usize = videos.iter().map(|v| v.t_ms.len()).sum();
    if total == 0 || dim == 0 {
        return Ok(Vec::new());
    }
    let k = params.class_count(total);
    // Systematic sample with a seeded offset: deterministic, spread evenly over
    // every video and every part of each video.
    let take = total.min(params.max_train_frames.max(k));
    let stride = total as f64 / take as f64;
    let offset = (params.segmentation.seed % 1000) as f64 / 1000.0 * stride;
    let mut sample = Vec::with_capacity(take * dim);
    let mut rows = videos.iter().flat_map(|v| v.embeddings.chunks_exact(dim));
    let mut next_row = 0usize;
    for i in 0..take {
        let wanted = ((offset + i as f64 * stride) as usize).min(total - 1);
        let row = rows.nth(wanted - next_row).expect("sample index below the frame count");
        next_row = wanted + 1;
        sample.extend_from_slice(row);
    }
    let records = Array2::from_shape_vec((take, dim), sample).expect("sample is take × dim");
    let dataset = DatasetBase::from(records);
    let rng = Xoshiro256Plus::seed_from_u64(params.segmentation.seed);
    let model = KMeans::params_with(k, rng, SimdL2)
        .init_method(KMeansInit::KMeansPlusPlus)
        .n_runs(1)
        .max_n_iterations(params.max_iterations)
        .tolerance(1e-4)
        .fit(&dataset)
        .map_err(|e| AnalysisError::Clustering {
            frames: take,
            reason: e.to_string(),
        })?;
    Ok(model.centroids().iter().copied().collect())
}

/// Squared L2 distance for linfa's k-means, written so that the compiler
/// vectorises it (linfa's generic `L2Dist` walks ndarray element by element and
/// took 94% of the analysis time in a profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimdL2;

impl linfa_nn::distance::Distance<f32> for SimdL2 {
    #[inline]
    fn distance<D: ndarray::Dimension>(&self, a: ndarray::ArrayView<f32, D>, b: ndarray::ArrayView<f32, D>) -> f32 {
        self.rdistance(a, b).sqrt()
    }

    #[inline]
    fn rdistance<D: ndarray::Dimension>(&self, a: ndarray::ArrayView<f32, D>, b: ndarray::ArrayView<f32, D>) -> f32 {
        match (a.as_slice(), b.as_slice()) {
            (Some(a), Some(b)) => squared_l2(a, b),
            _ => a.iter().zip(b.iter()).map(|(x, y)| (x - y) * (x - y)).sum(),
        }
    }

    #[inline]
    fn rdist_to_dist(&self, rdist: f32) -> f32 {
        rdist.sqrt()
    }

    #[inline]
    fn dist_to_rdist(&self, dist: f32) -> f32 {
        dist * dist
    }
}

/// Nearest centroid (squared L2) of every row. For normalised rows this is
/// `argmin ‖c‖² − 2 x·c`.
pub fn assign(embeddings: &[f32], centroids: &[f32], dim: usize) -> Vec<u32> {
    let norms: Vec<f32> = centroids.chunks_exact(dim).map(|c| dot(c, c)).collect();
    embeddings
        .par_chunks(dim * 256)
        .flat_map_iter(|block| {
            block.chunks_exact(dim).map(|row| {
                let mut best = (f32::INFINITY, 0u32);
                for (j, c) in centroids.chunks_exact(dim).enumerate() {
                    let d = norms[j] - 2.0 * dot(row, c);
                    if d < best.0 {
                        best = (d, j as u32);
                    }
                }
                best.1
            })
        })
        .collect()
}

/// Time covered by frames `span`: from its first frame to the next span's
/// first frame (or the video's end).
fn span_ms(video: &VideoFrames<'_>, span: Span) -> u64 {
    let end = video.t_ms.get(span.end).copied().unwrap_or(video.duration_ms);
    end.saturating_sub(video.t_ms[span.start])
}

/// Merges runs shorter than `min_ms` into a neighbour, shortest first, until
/// none is left (or one run remains). `closer_to_left(left, run, right)`
/// decides where a run with two neighbours goes; the run takes that
/// neighbour's label. The runs that become adjacent are then joined when
/// `mergeable` says so (a blip inside one shot must not leave it split).
fn absorb_short_runs<L: Copy>(
    video: &VideoFrames<'_>,
    runs: &mut Vec<(Span, L)>,
    min_ms: u64,
    mut closer_to_left: impl FnMut(&(Span, L), &(Span, L), &(Span, L)) -> bool,
    mut mergeable: impl FnMut(&(Span, L), &(Span, L)) -> bool,
) {
    loop {
        if runs.len() < 2 {
            return;
        }
        let Some((i, _)) = runs
            .iter()
            .enumerate()
            .map(|(i, r)| (i, span_ms(video, r.0)))
            .filter(|(_, ms)| *ms < min_ms)
            .min_by_key(|(i, ms)| (*ms, *i))
        else {
            return;
        };
        let into_left = if i == 0 {
            false
        } else if i == runs.len() - 1 {
            true
        } else {
            closer_to_left(&runs[i - 1], &runs[i], &runs[i + 1])
        };
        let run = runs.remove(i);
        if into_left {
            runs[i - 1].0.end = run.0.end;
        } else {
            runs[i].0.start = run.0.start;
        }
        // Runs i − 1 and i are now neighbours that the blip used to separate.
        if i >= 1 && i < runs.len() && mergeable(&runs[i - 1], &runs[i]) {
            let right = runs.remove(i);
            runs[i - 1].0.end = right.0.end;
        }
    }
}

fn mean_of(video: &VideoFrames<'_>, span: Span, dim: usize) -> Vec<f32> {
    normalized_mean(
        video.embeddings[span.start * dim..span.end * dim].chunks_exact(dim),
        dim,
    )
    .unwrap_or_else(|| vec![0.0; dim])
}

/// Class diarization: runs of equal labels, short runs absorbed.
pub fn diarize(video: &VideoFrames<'_>, labels: &[u32], centroids: &[f32], dim: usize, min_scene_ms: u64) -> Vec<Scene> {
    let mut runs: Vec<(Span, u32)> = Vec::new();
    for (i, &label) in labels.iter().enumerate() {
        match runs.last_mut() {
            Some((span, l)) if *l == label => span.end = i + 1,
            _ => runs.push((Span { start: i, end: i + 1 }, label)),
        }
    }
    let centroid = |c: u32| &centroids[c as usize * dim..(c as usize + 1) * dim];
    absorb_short_runs(
        video,
        &mut runs,
        min_scene_ms,
        |left, run, right| {
            let m = mean_of(video, run.0, dim);
            dot(&m, centroid(left.1)) >= dot(&m, centroid(right.1))
        },
        |a, b| a.1 == b.1,
    );
    runs.into_iter()
        .map(|(span, class)| Scene { span, class })
        .collect()
}

/// Fine grouping of one scene into shots.
pub fn split_shots(video: &VideoFrames<'_>, scene: Span, dim: usize, similarity: f32, min_shot_ms: u64) -> Vec<Span> {
    let mut shots: Vec<(Span, usize)> = Vec::new();
    let mut sum = vec![0.0f32; dim];
    let mut mean = vec![0.0f32; dim];
    for i in scene.start..scene.end {
        let row = &video.embeddings[i * dim..(i + 1) * dim];
        let starts_new = match shots.last() {
            None => true,
            Some(_) => dot(row, &mean) < similarity,
        };
        if starts_new {
            shots.push((Span { start: i, end: i + 1 }, shots.len()));
            sum.copy_from_slice(row);
        } else {
            shots.last_mut().expect("a shot is open").0.end = i + 1;
            sum.iter_mut().zip(row).for_each(|(s, x)| *s += x);
        }
        mean.copy_from_slice(&sum);
        normalize(&mut mean);
    }
    absorb_short_runs(
        video,
        &mut shots,
        min_shot_ms,
        |left, run, right| {
            let m = mean_of(video, run.0, dim);
            dot(&m, &mean_of(video, left.0, dim)) >= dot(&m, &mean_of(video, right.0, dim))
        },
        |a, b| dot(&mean_of(video, a.0, dim), &mean_of(video, b.0, dim)) >= similarity,
    );
    shots.into_iter().map(|(span, _)| span).collect()
}

/// A shot's normalised mean embedding and the index of the frame nearest it.
pub fn shot_embedding(embeddings: &[f32], span: Span, dim: usize) -> (Vec<f32>, usize) {
    let rows = &embeddings[span.start * dim..span.end * dim];
    let mean = normalized_mean(rows.chunks_exact(dim), dim).unwrap_or_else(|| rows[..dim].to_vec());
    let keyframe = rows
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, row)| (i, dot(row, &mean)))
        .fold((0, f32::NEG_INFINITY), |best, (i, s)| if s > best.1 { (i, s) } else { best })
        .0;
    (mean, span.start + keyframe)
}

/// Projects rows onto their first two principal components (power iteration
/// with deflation, deterministic start) and scales each axis to `[0, 1]`.
pub fn project_2d(rows: &[f32], dim: usize) -> Vec<[f32; 2]> {
    let n = if dim == 0 { 0 } else { rows.len() / dim };
    if n == 0 {
        return Vec::new();
    }
    let mut mean = vec![0.0f64; dim];
    for row in rows.chunks_exact(dim) {
        mean.iter_mut().zip(row).for_each(|(m, x)| *m += f64::from(*x));
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred: Vec<f32> = rows
        .chunks_exact(dim)
        .flat_map(|row| row.iter().zip(&mean).map(|(x, m)| (f64::from(*x) - m) as f32))
        .collect();
    let mut components: Vec<Vec<f32>> = Vec::new();
    for c in 0..2 {
        // Deterministic, not axis-aligned start vector.
        let mut v: Vec<f32> = (0..dim).map(|i| ((i * 7 + c * 13 + 1) % 17) as f32 - 8.0).collect();
        normalize(&mut v);
        for _ in 0..100 {
            // w = Xᵀ (X v), minus the found components.
            let xv: Vec<f32> = centred.par_chunks(dim).map(|row| dot(row, &v)).collect();
            let mut w = vec![0.0f32; dim];
            for (row, s) in centred.chunks_exact(dim).zip(&xv) {
                w.iter_mut().zip(row).for_each(|(w, x)| *w += s * x);
            }
            for prev in &components {
                let p = dot(&w, prev);
                w.iter_mut().zip(prev).for_each(|(w, x)| *w -= p * x);
            }
            if normalize(&mut w) == 0.0 {
                break;
            }
            let change = 1.0 - dot(&w, &v).abs();
            v = w;
            if change < 1e-7 {
                break;
            }
        }
        // Fix the sign so the map does not flip between runs.
        if v.iter().sum::<f32>() < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        components.push(v);
    }
    let coords: Vec<[f32; 2]> = centred
        .chunks_exact(dim)
        .map(|row| [dot(row, &components[0]), dot(row, &components[1])])
        .collect();
    let mut out = coords.clone();
    for axis in 0..2 {
        let (lo, hi) = coords
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), p| (lo.min(p[axis]), hi.max(p[axis])));
        for (o, p) in out.iter_mut().zip(&coords) {
            o[axis] = if hi - lo > 1e-12 { (p[axis] - lo) / (hi - lo) } else { 0.5 };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
            },
            VideoFrames {
                t_ms: &t2,
                embeddings: &e2,
                duration_ms: d2,
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
