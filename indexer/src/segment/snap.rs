//! Putting the semantic boundaries on the frames: a scene or shot that the
//! embeddings start at sampled frame k begins somewhere after frame k − 1
//! was sampled; when the decoder found a cut, dissolve or fade there, that
//! transition is the boundary. A transition the semantics missed starts a new
//! shot when the sampled frames either side of it differ
//! (`cut_similarity`). Without transitions, boundaries stay on the sampled
//! frames.

use busca_core::shot::Transition;
use busca_core::vector::{dot, normalized_mean};

use super::{Span, VideoFrames};

/// Where a scene or shot begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Boundary {
    /// Presentation time of its first frame, in ms.
    pub t_ms: u64,
    /// Index of that frame among the displayed frames, when known.
    pub frame: Option<u64>,
    /// The transition found on the frames that it is, if any.
    pub transition: Option<Transition>,
}

impl Boundary {
    /// The boundary at sampled frame `k`, as sampling alone places it.
    pub fn at_sample(video: &VideoFrames<'_>, k: usize) -> Boundary {
        Boundary { t_ms: video.t_ms[k], frame: video.sample_frames.get(k).copied(), transition: None }
    }

    fn at(transition: &Transition) -> Boundary {
        Boundary { t_ms: transition.t_ms, frame: Some(transition.frame), transition: Some(*transition) }
    }
}

/// Places the boundaries of one video's scenes and shots (spans of sampled
/// frames; each shot names its scene): snaps each to a transition in its
/// sampling interval, then splits shots at the transitions left over whose
/// two sides differ. Returns the scene starts and the shots with their starts.
pub fn place(
    video: &VideoFrames<'_>,
    dim: usize,
    scenes: &[Span],
    shots: Vec<(Span, usize)>,
    cut_similarity: f32,
) -> (Vec<Boundary>, Vec<(Span, usize, Boundary)>) {
    let transitions = video.transitions.unwrap_or(&[]);
    let mut used = vec![false; transitions.len()];
    let mut starts: std::collections::BTreeMap<usize, Boundary> = std::collections::BTreeMap::new();
    for k in scenes.iter().map(|s| s.start).chain(shots.iter().map(|s| s.0.start)) {
        if !starts.contains_key(&k) {
            let boundary = snap(video, k, transitions, &mut used);
            starts.insert(k, boundary);
        }
    }
    // One boundary per dissolve or fade: a shot that begins inside the span
    // of one that another boundary took (the dark middle of a fade read as a
    // shot of its own) joins the shot before it.
    let taken: Vec<&Transition> = transitions.iter().zip(&used).filter(|(_, &u)| u).map(|(t, _)| t).collect();
    let scene_start = |k: usize| scenes.iter().any(|s| s.start == k);
    let mut shots = shots;
    let mut i = 1;
    while i < shots.len() {
        let k = shots[i].0.start;
        let inside = |t: &&Transition| t.start_ms <= video.t_ms[k] && video.t_ms[k] <= t.end_ms;
        if !scene_start(k) && starts[&k].transition.is_none() && taken.iter().any(inside) {
            shots[i - 1].0.end = shots[i].0.end;
            shots.remove(i);
            starts.remove(&k);
        } else {
            i += 1;
        }
    }
    for (ti, t) in transitions.iter().enumerate() {
        if used[ti] {
            continue;
        }
        let j = video.t_ms.partition_point(|&x| x < t.t_ms);
        if j == video.t_ms.len() {
            continue;
        }
        let Some(si) = shots.iter().position(|(span, _)| span.start < j && j < span.end) else {
            continue;
        };
        let (span, scene) = shots[si];
        // Two sampled frames each side, outside the transition's span.
        let before: Vec<usize> = (span.start..j).rev().filter(|&i| video.t_ms[i] < t.start_ms).take(2).collect();
        let after: Vec<usize> = (j..span.end).filter(|&i| video.t_ms[i] >= t.end_ms).take(2).collect();
        let mean = |rows: &[usize]| normalized_mean(rows.iter().map(|&i| &video.embeddings[i * dim..(i + 1) * dim]), dim);
        let (Some(a), Some(b)) = (mean(&before), mean(&after)) else {
            continue;
        };
        if dot(&a, &b) >= cut_similarity {
            continue;
        }
        used[ti] = true;
        shots[si].0.end = j;
        shots.insert(si + 1, (Span { start: j, end: span.end }, scene));
        starts.insert(j, Boundary::at(t));
    }
    // Boundaries must run forward in time; a snap that would not (a dissolve
    // reaching back past the previous boundary) falls back to the sample.
    let mut last: Option<u64> = None;
    for (&k, boundary) in starts.iter_mut() {
        if last.is_some_and(|l| boundary.t_ms <= l) {
            *boundary = Boundary::at_sample(video, k);
        }
        last = Some(boundary.t_ms);
    }
    let scene_starts = scenes.iter().map(|s| starts[&s.start]).collect();
    let shots = shots.into_iter().map(|(span, scene)| (span, scene, starts[&span.start])).collect();
    (scene_starts, shots)
}

/// The boundary at sampled frame k: the last transition whose boundary frame
/// falls after frame k − 1 and no later than frame k, else a dissolve or
/// fade whose span overlaps that interval, else the sample itself.
fn snap(video: &VideoFrames<'_>, k: usize, transitions: &[Transition], used: &mut [bool]) -> Boundary {
    if k == 0 {
        return Boundary::at_sample(video, k);
    }
    let (lo, hi) = (video.t_ms[k - 1], video.t_ms[k]);
    let inside = |t: &Transition| lo < t.t_ms && t.t_ms <= hi;
    let overlaps = |t: &Transition| t.start_ms <= hi && t.end_ms > lo;
    let free = |i: &usize| !used[*i];
    let found = (0..transitions.len())
        .filter(free)
        .filter(|&i| inside(&transitions[i]))
        .last()
        .or_else(|| (0..transitions.len()).filter(free).find(|&i| overlaps(&transitions[i])));
    match found {
        Some(i) => {
            used[i] = true;
            Boundary::at(&transitions[i])
        }
        None => Boundary::at_sample(video, k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use busca_core::shot::TransitionKind;

    const DIM: usize = 2;

    fn cut(frame: u64, t_ms: u64) -> Transition {
        Transition { kind: TransitionKind::Cut, frame, t_ms, start_ms: t_ms, end_ms: t_ms }
    }

    /// Frames every 500 ms (frame index t / 40); embeddings `rows`.
    fn video<'a>(t: &'a [u64], frames: &'a [u64], rows: &'a [f32], transitions: &'a [Transition]) -> VideoFrames<'a> {
        VideoFrames {
            t_ms: t,
            embeddings: rows,
            duration_ms: t.last().unwrap() + 500,
            sample_frames: frames,
            transitions: Some(transitions),
        }
    }

    #[test]
    fn semantic_boundaries_snap_to_the_cut_in_their_interval() {
        let t: Vec<u64> = (0..8).map(|i| i * 500).collect();
        let frames: Vec<u64> = t.iter().map(|t| t / 40).collect();
        let rows = [[1.0, 0.0]; 4].iter().chain([[0.0, 1.0]; 4].iter()).flatten().copied().collect::<Vec<f32>>();
        // The picture changes at 1,880 ms (frame 47), between samples 3 and 4.
        let found = [cut(47, 1880)];
        let v = video(&t, &frames, &rows, &found);
        let shots = vec![(Span { start: 0, end: 4 }, 0), (Span { start: 4, end: 8 }, 0)];
        let (scenes, shots) = place(&v, DIM, &[Span { start: 0, end: 8 }], shots, 0.95);
        assert_eq!(scenes[0], Boundary { t_ms: 0, frame: Some(0), transition: None });
        assert_eq!(shots[1].2, Boundary { t_ms: 1880, frame: Some(47), transition: Some(found[0]) });
    }

    #[test]
    fn a_missed_cut_splits_a_shot_only_where_the_pictures_differ() {
        let t: Vec<u64> = (0..8).map(|i| i * 500).collect();
        let frames: Vec<u64> = t.iter().map(|t| t / 40).collect();
        // Samples 0..4 one picture, 4..8 another (cosine 0.6); a second
        // cut inside the first half changes nothing the embeddings see.
        let rows = [[1.0, 0.0]; 4].iter().chain([[0.6, 0.8]; 4].iter()).flatten().copied().collect::<Vec<f32>>();
        let found = [cut(20, 800), cut(47, 1880)];
        let v = video(&t, &frames, &rows, &found);
        let (_, shots) = place(&v, DIM, &[Span { start: 0, end: 8 }], vec![(Span { start: 0, end: 8 }, 0)], 0.95);
        let spans: Vec<(usize, usize, u64)> = shots.iter().map(|(s, _, b)| (s.start, s.end, b.t_ms)).collect();
        assert_eq!(spans, [(0, 4, 0), (4, 8, 1880)]);
        // A laxer threshold keeps the shot whole.
        let (_, shots) = place(&v, DIM, &[Span { start: 0, end: 8 }], vec![(Span { start: 0, end: 8 }, 0)], 0.5);
        assert_eq!(shots.len(), 1);
    }

    #[test]
    fn a_shot_inside_a_fade_another_boundary_took_joins_the_one_before() {
        let t: Vec<u64> = (0..10).map(|i| i * 500).collect();
        let frames: Vec<u64> = t.iter().map(|t| t / 40).collect();
        let rows = [1.0f32, 0.0].repeat(10);
        // A fade over 1,000..3,000 ms, its middle at 2,000; the embeddings
        // split at 1,500 (going dark) and again at 2,500 (coming back).
        let fade = Transition { kind: TransitionKind::Fade, frame: 50, t_ms: 2000, start_ms: 1000, end_ms: 3000 };
        let v = video(&t, &frames, &rows, std::slice::from_ref(&fade));
        let shots = vec![(Span { start: 0, end: 3 }, 0), (Span { start: 3, end: 5 }, 0), (Span { start: 5, end: 10 }, 0)];
        let (_, shots) = place(&v, DIM, &[Span { start: 0, end: 10 }], shots, 0.95);
        let got: Vec<(usize, usize, u64)> = shots.iter().map(|(s, _, b)| (s.start, s.end, b.t_ms)).collect();
        // The first split snapped to the fade; the second one is gone.
        assert_eq!(got, [(0, 3, 0), (3, 10, 2000)]);
    }

    #[test]
    fn without_transitions_boundaries_stay_on_the_samples() {
        let t: Vec<u64> = (0..4).map(|i| 100 + i * 500).collect();
        let rows = [1.0f32, 0.0].repeat(4);
        let v = VideoFrames { t_ms: &t, embeddings: &rows, duration_ms: 2100, sample_frames: &[], transitions: None };
        let shots = vec![(Span { start: 0, end: 2 }, 0), (Span { start: 2, end: 4 }, 0)];
        let (_, shots) = place(&v, DIM, &[Span { start: 0, end: 4 }], shots, 0.95);
        assert_eq!(shots[1].2, Boundary { t_ms: 1100, frame: None, transition: None });
    }
}
