//! Turning what a person gave (text, image, shots marked relevant or not) into
//! one query vector.

use crate::vector::{normalize, normalized};

/// Rocchio weights: the query, the relevant shots' mean, the irrelevant shots' mean.
pub const ROCCHIO_ALPHA: f32 = 1.0;
/// See [`ROCCHIO_ALPHA`].
pub const ROCCHIO_BETA: f32 = 0.75;
/// See [`ROCCHIO_ALPHA`].
pub const ROCCHIO_GAMMA: f32 = 0.25;

/// Weighted fusion of normalised text and image embeddings:
/// `normalize((1 − w)·t̂ + w·î)`. With only one of them, that one, normalised.
/// `None` when neither is given or the result is the zero vector.
pub fn fuse(text: Option<&[f32]>, image: Option<&[f32]>, image_weight: f32) -> Option<Vec<f32>> {
    match (text, image) {
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => normalized(one),
        (Some(t), Some(i)) => {
            assert_eq!(t.len(), i.len(), "text and image embeddings differ in dimension");
            let (t, i) = (normalized(t)?, normalized(i)?);
            let w = image_weight.clamp(0.0, 1.0);
            let mut q: Vec<f32> = t.iter().zip(&i).map(|(a, b)| (1.0 - w) * a + w * b).collect();
            (normalize(&mut q) > 0.0).then_some(q)
        }
    }
}

/// Rocchio relevance feedback: `normalize(α·q + β·mean(pos) − γ·mean(neg))`.
/// `query` may be absent (feedback alone). Inputs are normalised first.
pub fn rocchio(query: Option<&[f32]>, positive: &[&[f32]], negative: &[&[f32]]) -> Option<Vec<f32>> {
    let dim = query
        .map(<[f32]>::len)
        .or_else(|| positive.first().map(|p| p.len()))?;
    let mut out = vec![0.0f32; dim];
    let mut add = |v: &[f32], weight: f32| {
        if let Some(v) = normalized(v) {
            for (o, x) in out.iter_mut().zip(&v) {
                *o += weight * x;
            }
        }
    };
    if let Some(q) = query {
        add(q, ROCCHIO_ALPHA);
    }
    for p in positive {
        add(p, ROCCHIO_BETA / positive.len() as f32);
    }
    for n in negative {
        add(n, -ROCCHIO_GAMMA / negative.len() as f32);
    }
    (normalize(&mut out) > 0.0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::dot;

    #[test]
    fn weight_moves_the_query_between_text_and_image() {
        let t = [2.0, 0.0];
        let i = [0.0, 3.0];
        let text_only = fuse(Some(&t), Some(&i), 0.0).unwrap();
        assert!((dot(&text_only, &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        let image_heavy = fuse(Some(&t), Some(&i), 0.8).unwrap();
        assert!(image_heavy[1] > image_heavy[0]);
        assert!(fuse(None, None, 0.5).is_none());
        assert!(fuse(Some(&[1.0, 0.0]), Some(&[-1.0, 0.0]), 0.5).is_none());
    }

    #[test]
    fn feedback_pulls_towards_positives_and_away_from_negatives() {
        let q = [1.0, 0.0, 0.0];
        let pos = [0.0, 1.0, 0.0];
        let neg = [0.0, 0.0, 1.0];
        let r = rocchio(Some(&q), &[&pos], &[&neg]).unwrap();
        assert!(r[1] > 0.0 && r[2] < 0.0 && r[0] > r[1]);
        assert!((dot(&r, &r) - 1.0).abs() < 1e-5);
        assert!(rocchio(None, &[], &[&neg]).is_none());
    }
}
