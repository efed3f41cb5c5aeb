//! The 2-D semantic map: shot embeddings projected on their first two
//! principal components.

use busca_core::vector::{dot, normalize};
use rayon::prelude::*;

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
