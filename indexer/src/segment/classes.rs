//! Semantic classes: k-means over the collection's frame embeddings,
//! trained on a seeded sample, then every frame assigned in one parallel pass.

use busca_core::vector::{dot, squared_l2};
use linfa::prelude::*;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::Array2;
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use rayon::prelude::*;

use super::{AnalysisError, AnalysisParams, VideoFrames};

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
