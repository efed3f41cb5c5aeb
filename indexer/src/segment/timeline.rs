//! Each video's timeline: class runs become scenes (diarization), scenes split
//! into shots, and a shot's embedding and keyframe.

use busca_core::vector::{dot, normalize, normalized_mean};

use super::{Boundary, Scene, Span, VideoFrames};

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
        .map(|(span, class)| Scene { span, class, start: Boundary::at_sample(video, span.start) })
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
