//! Frame-level transition detection: hard cuts, dissolves and fades found on
//! every decoded frame, not only the sampled ones, so that shot boundaries
//! land on the frame where the picture changes.
//!
//! Each frame is reduced to a [`Grid`]: the mean Y, U and V of 32 × 18
//! cells (see `grid.rs`), the same downscaled-colour signal PySceneDetect's
//! detectors work on. From it:
//!
//! - **Cuts** (as PySceneDetect's `AdaptiveDetector`): the mean absolute
//!   difference between a frame and the previous one must be large
//!   ([`CUT_MIN`]) and several times ([`CUT_RATIO`]) the average of the two
//!   frames either side, so steady fast motion does not fire.
//! - **Flash guard**: a jump whose picture comes back within
//!   [`FLASH_FRAMES`] frames (a photographer's flash, a lightning strike) is
//!   no cut; its frames are replaced by the one before it for everything
//!   below.
//! - **Dissolves and fades**: a transition spread over many frames shows as a
//!   large distance between frames one second before and one second after
//!   ([`GRADUAL_MIN`], [`GRADUAL_RATIO`] times the same distance two seconds
//!   away), measured inside one cut-free stretch. A dip to black in it is a
//!   fade, whose span is the fall and the rise of the luma around the
//!   darkest frame; otherwise the frames must be a blend of the two ends (the
//!   residual of the best linear blend under [`BLEND_FIT_MAX`] of the ends'
//!   distance: camera motion is not a blend), and the span is where the
//!   blend goes from 10 % to 90 %. The boundary is the span's middle.
//!
//! The detector is streaming: it keeps a few seconds of grids and a few
//! bytes per frame, so a three-hour recording costs no more memory than a
//! clip. Everything is deterministic.

use busca_core::shot::{Transition, TransitionKind};

pub use grid::{Grid, Plane, GRID_H, GRID_W};

mod grid;

/// A cut's frame difference must reach this (mean absolute difference of
/// the grid, 0–255 per channel).
pub const CUT_MIN: f32 = 6.0;
/// ... and be this many times the average difference of the two frames on
/// either side (plus one, so still pictures with noise do not fire).
pub const CUT_RATIO: f32 = 3.0;
/// A jump whose picture returns (within 40 % of the jump) inside this many
/// frames is a flash.
pub const FLASH_FRAMES: usize = 4;
/// A gradual transition's distance across it (one second each side) must
/// reach this ...
pub const GRADUAL_MIN: f32 = 8.0;
/// ... and be this many times the same distance two seconds before or after.
pub const GRADUAL_RATIO: f32 = 2.0;
/// A dissolve's frames must be a linear blend of its two ends: the mean
/// residual of the blend, relative to the distance between the ends.
pub const BLEND_FIT_MAX: f32 = 0.25;
/// The darkest frame of a fade is at most this luma (0–255; black is 16 in
/// limited range) ...
pub const FADE_BLACK: f32 = 24.0;
/// ... and at least this far below the frames where the fade starts and ends.
pub const FADE_DEPTH: f32 = 20.0;

/// One decoded frame's numbers, kept for the whole video (16 bytes).
#[derive(Debug, Clone, Copy)]
struct FrameStat {
    t_ms: u64,
    /// Difference to the previous frame.
    diff: f32,
    /// Mean luma.
    luma: f32,
}

/// Finds the transitions of one video from its frames, pushed in order.
#[derive(Debug)]
pub struct TransitionDetector {
    /// Frames per second of video, rounded: the gradual window's half-width.
    window: usize,
    /// Grids of the last `ring_len` frames (flashes replaced), by frame index.
    ring: Vec<Grid>,
    stats: Vec<FrameStat>,
    /// Long-window distance of each frame whose window is complete.
    gradual: Vec<f32>,
    /// Frame indices of the cuts found so far, in order.
    cuts: Vec<usize>,
    /// Frames up to (excluding) this one are inside a flash.
    flash_until: usize,
    /// Last frame of the last dissolve or fade found (one is found once).
    gradual_until: Option<usize>,
    next_cut: usize,
    next_gradual: usize,
    found: Vec<Transition>,
}

impl TransitionDetector {
    /// A detector for a video of about `frame_rate` frames per second (the
    /// stream's average; variable-rate video is fine, only the window sizes
    /// depend on it).
    pub fn new(frame_rate: f64) -> Self {
        let window = if frame_rate.is_finite() { frame_rate.round().clamp(5.0, 120.0) as usize } else { 25 };
        TransitionDetector {
            window,
            ring: vec![Grid::default(); 5 * window + 16],
            stats: Vec::new(),
            gradual: Vec::new(),
            cuts: Vec::new(),
            flash_until: 0,
            gradual_until: None,
            next_cut: 1,
            next_gradual: 0,
            found: Vec::new(),
        }
    }

    /// Whether the last frame pushed jumps from the ones before it as a cut
    /// does (the backward half of the cut test, known at once): the decoder
    /// samples such a frame even between its regular samples, so that a
    /// shot shorter than the sampling interval still has a frame of its own.
    /// A flash passes this test too; the full test later rejects it.
    pub fn likely_cut(&self) -> bool {
        let n = self.stats.len();
        if n < 2 {
            return false;
        }
        let diff = self.stats[n - 1].diff;
        let before: Vec<f32> = (n.saturating_sub(3).max(1)..n - 1).map(|j| self.stats[j].diff).collect();
        let base = if before.is_empty() { 0.0 } else { before.iter().sum::<f32>() / before.len() as f32 };
        diff >= CUT_MIN && diff >= CUT_RATIO * base + 1.0
    }

    /// Adds the next frame (presentation time `t_ms`).
    pub fn push(&mut self, t_ms: u64, grid: &Grid) {
        let i = self.stats.len();
        let diff = if i == 0 { 0.0 } else { grid.distance(self.grid(i - 1)) };
        self.stats.push(FrameStat { t_ms, diff, luma: grid.luma() });
        let slot = i % self.ring.len();
        self.ring[slot].clone_from(grid);
        self.advance(false);
    }

    /// Ends the video: decides the last frames and returns every transition,
    /// in frame order.
    pub fn finish(mut self) -> Vec<Transition> {
        self.advance(true);
        self.found.sort_by_key(|t| t.frame);
        self.found
    }

    fn grid(&self, i: usize) -> &Grid {
        debug_assert!(i < self.stats.len() && i + self.ring.len() >= self.stats.len(), "frame {i} left the ring");
        &self.ring[i % self.ring.len()]
    }

    /// Runs every decision whose frames have arrived (all of them at the end).
    fn advance(&mut self, end: bool) {
        let n = self.stats.len();
        let w = self.window;
        while self.next_cut < n && (end || self.next_cut + FLASH_FRAMES < n) {
            self.decide_cut(self.next_cut);
            self.next_cut += 1;
        }
        // The long distance of frame i needs the cuts up to i + w.
        while self.gradual.len() < n && (end || self.gradual.len() + w < self.next_cut) {
            let i = self.gradual.len();
            let (a, b) = self.stretch(i);
            let d = self.grid(a).distance(self.grid(b));
            self.gradual.push(d);
        }
        // A gradual decision at i compares with the distances up to i + 3w.
        while self.next_gradual < n && (end || self.next_gradual + 3 * w < self.gradual.len()) {
            let i = self.next_gradual;
            self.next_gradual += match self.decide_gradual(i) {
                Some((t, end)) => {
                    self.found.push(t);
                    self.gradual_until = Some(end);
                    w + 1
                }
                None => 1,
            };
        }
    }

    fn decide_cut(&mut self, i: usize) {
        if i < self.flash_until {
            return;
        }
        let n = self.stats.len();
        let diff = self.stats[i].diff;
        let around: Vec<f32> =
            [i.wrapping_sub(2), i - 1, i + 1, i + 2].into_iter().filter(|&j| j >= 1 && j < n).map(|j| self.stats[j].diff).collect();
        let base = if around.is_empty() { 0.0 } else { around.iter().sum::<f32>() / around.len() as f32 };
        if diff < CUT_MIN || diff < CUT_RATIO * base + 1.0 {
            return;
        }
        // A flash: the picture before the jump comes back.
        let ahead = (i + 1)..(i + 1 + FLASH_FRAMES).min(n);
        if let Some((back, dist)) =
            ahead.map(|j| (j, self.grid(i - 1).distance(self.grid(j)))).min_by(|a, b| a.1.total_cmp(&b.1))
        {
            if dist < 0.4 * diff {
                let before = self.grid(i - 1).clone();
                for j in i..back {
                    let slot = j % self.ring.len();
                    self.ring[slot].clone_from(&before);
                }
                // The jump back is no cut either.
                self.flash_until = back + 1;
                return;
            }
        }
        // The end of a flash whose start was missed: the new picture was
        // already there a few frames earlier.
        let behind = i.saturating_sub(2 + FLASH_FRAMES)..i - 1;
        if behind.clone().any(|j| self.grid(i).distance(self.grid(j)) < 0.4 * diff) {
            return;
        }
        self.cuts.push(i);
        let t_ms = self.stats[i].t_ms;
        self.found.push(Transition { kind: TransitionKind::Cut, frame: i as u64, t_ms, start_ms: t_ms, end_ms: t_ms });
    }

    /// The ends of frame i's long window, kept inside the cut-free stretch
    /// that holds i.
    fn stretch(&self, i: usize) -> (usize, usize) {
        let n = self.stats.len();
        let w = self.window;
        let (mut a, mut b) = (i.saturating_sub(w), (i + w).min(n - 1));
        for &c in &self.cuts {
            if a < c && c <= i {
                a = c;
            }
            if i < c && c <= b {
                b = c - 1;
                break;
            }
        }
        (a, b)
    }

    fn is_cut(&self, i: usize) -> bool {
        self.cuts.binary_search(&i).is_ok()
    }

    /// A dissolve or fade whose distance peaks at frame i, and its last frame.
    fn decide_gradual(&self, i: usize) -> Option<(Transition, usize)> {
        let n = self.gradual.len();
        let w = self.window;
        let g = self.gradual[i];
        if g < GRADUAL_MIN {
            return None;
        }
        let near = &self.gradual[i.saturating_sub(w)..(i + w + 1).min(n)];
        if near.iter().any(|&x| x > g) {
            return None;
        }
        let median = |xs: &[f32]| {
            let mut v = xs.to_vec();
            v.sort_by(f32::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let before = median(&self.gradual[i.saturating_sub(3 * w)..i.saturating_sub(2 * w)]);
        let after = median(&self.gradual[(i + 2 * w).min(n)..(i + 3 * w).min(n)]);
        let base = match (before, after) {
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => 0.0,
        };
        if g <= GRADUAL_RATIO * base {
            return None;
        }
        let (a, b) = self.stretch(i);
        let (start, end, kind) = self.fade_span(a, b).or_else(|| self.dissolve_span(a, b))?;
        if self.gradual_until.is_some_and(|last| start <= last) {
            return None;
        }
        // The boundary: the first frame at or after the middle of the span.
        let frame = (start + end).div_ceil(2);
        let transition = Transition {
            kind,
            frame: frame as u64,
            t_ms: self.stats[frame].t_ms,
            start_ms: self.stats[start].t_ms,
            end_ms: self.stats[end].t_ms,
        };
        Some((transition, end))
    }

    /// A dip to black between frames a and b: the fall and rise of the luma
    /// around the darkest frame, up to two windows each way and never across
    /// a cut.
    fn fade_span(&self, a: usize, b: usize) -> Option<(usize, usize, TransitionKind)> {
        let luma = |j: usize| self.stats[j].luma;
        let dark = (a..=b).min_by(|&x, &y| luma(x).total_cmp(&luma(y)))?;
        let reach = 2 * self.window;
        let last = self.stats.len() - 1;
        let mut start = dark;
        while start > dark.saturating_sub(reach) && start > 0 && !self.is_cut(start) && luma(start - 1) > luma(start) + 0.3 {
            start -= 1;
        }
        let mut end = dark;
        while end < (dark + reach).min(last) && !self.is_cut(end + 1) && luma(end + 1) > luma(end) + 0.3 {
            end += 1;
        }
        (luma(dark) < FADE_BLACK && luma(dark) + FADE_DEPTH < luma(start).min(luma(end)))
            .then_some((start, end, TransitionKind::Fade))
    }

    /// A dissolve between frames a and b: each frame's place on the line
    /// from a's picture to b's, which must explain the frames.
    fn dissolve_span(&self, a: usize, b: usize) -> Option<(usize, usize, TransitionKind)> {
        let (from, to) = (self.grid(a), self.grid(b));
        let span = from.distance(to);
        let progress: Vec<f32> = (a..=b).map(|j| self.grid(j).blend_position(from, to)).collect();
        let middle = progress.iter().position(|&p| p >= 0.5)?;
        let start = progress[..=middle].iter().rposition(|&p| p <= 0.1).unwrap_or(0);
        let end = middle + progress[middle..].iter().position(|&p| p >= 0.9).unwrap_or(progress.len() - 1 - middle);
        let residual: f32 = (start..=end)
            .map(|k| self.grid(a + k).blend_residual(from, to, progress[k].clamp(0.0, 1.0)))
            .sum::<f32>()
            / (end - start + 1) as f32;
        (span > 0.0 && residual < BLEND_FIT_MAX * span).then_some((a + start, a + end, TransitionKind::Dissolve))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grid whose cells follow a pattern `seed` (distinct seeds: distinct
    /// pictures), scaled by `light` (0 = black).
    fn picture(seed: u32, light: f32) -> Grid {
        let mut g = Grid::default();
        for (k, v) in g.values_mut().iter_mut().enumerate() {
            let x = ((k as u32) ^ seed.wrapping_mul(0x9E37_79B9)).wrapping_mul(2_654_435_761) >> 24;
            *v = (40.0 + x as f32 * 0.7) * light;
        }
        g
    }

    fn blend(a: &Grid, b: &Grid, t: f32) -> Grid {
        let mut g = a.clone();
        for (v, w) in g.values_mut().iter_mut().zip(b.values()) {
            *v = *v * (1.0 - t) + w * t;
        }
        g
    }

    /// Moves a picture a little each frame, as a camera would.
    fn jitter(g: &Grid, k: usize) -> Grid {
        let mut out = g.clone();
        for (i, v) in out.values_mut().iter_mut().enumerate() {
            *v += ((i + k) % 7) as f32 * 0.3;
        }
        out
    }

    fn run(frames: &[Grid]) -> Vec<Transition> {
        let mut d = TransitionDetector::new(25.0);
        for (i, g) in frames.iter().enumerate() {
            d.push(i as u64 * 40, g);
        }
        d.finish()
    }

    #[test]
    fn finds_a_cut_on_its_frame_and_ignores_motion() {
        let (a, b) = (picture(1, 1.0), picture(2, 1.0));
        let frames: Vec<Grid> = (0..200).map(|k| jitter(if k < 73 { &a } else { &b }, k)).collect();
        let found = run(&frames);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].kind, found[0].frame, found[0].t_ms), (TransitionKind::Cut, 73, 2920));
    }

    #[test]
    fn a_flash_is_not_a_cut() {
        let a = picture(1, 1.0);
        let mut frames: Vec<Grid> = (0..150).map(|k| jitter(&a, k)).collect();
        frames[60] = picture(1, 3.0);
        frames[61] = picture(1, 2.5);
        assert_eq!(run(&frames), vec![]);
    }

    #[test]
    fn a_dissolve_is_found_at_its_middle_with_its_span() {
        let (a, b) = (picture(3, 1.0), picture(4, 1.0));
        // Pure a until 100, a blend over frames 100..=125, pure b after.
        let frames: Vec<Grid> = (0..250)
            .map(|k| {
                let t = ((k as f32 - 100.0) / 25.0).clamp(0.0, 1.0);
                jitter(&blend(&a, &b, t), k)
            })
            .collect();
        let found = run(&frames);
        assert_eq!(found.len(), 1, "{found:?}");
        let t = found[0];
        assert_eq!(t.kind, TransitionKind::Dissolve);
        assert!((112..=113).contains(&t.frame), "{t:?}");
        assert!(t.start_ms <= 103 * 40 && t.end_ms >= 122 * 40, "{t:?}");
    }

    #[test]
    fn a_fade_through_black_is_a_fade_at_the_middle_of_its_span() {
        // One picture fades out over 120..130 (fast), black, the next fades
        // in over 130..170, as FFmpeg's fadeblack does.
        let frames: Vec<Grid> = (0..300)
            .map(|k| {
                if k < 130 {
                    picture(5, (1.0 - (k as f32 - 120.0) / 10.0).clamp(0.0, 1.0))
                } else {
                    picture(6, ((k as f32 - 130.0) / 40.0).clamp(0.0, 1.0))
                }
            })
            .collect();
        let found = run(&frames);
        assert_eq!(found.len(), 1, "{found:?}");
        let t = found[0];
        assert_eq!(t.kind, TransitionKind::Fade);
        assert!((144..=146).contains(&t.frame), "middle of 120..170: {t:?}");
    }

    #[test]
    fn motion_across_a_second_is_no_dissolve() {
        // A picture that drifts steadily (a pan): far from where it started
        // after a second, but never a blend of its ends.
        let frames: Vec<Grid> = (0..250)
            .map(|k| {
                let mut g = Grid::default();
                for (i, v) in g.values_mut().iter_mut().enumerate() {
                    let x = (i % GRID_W) as f32 + k as f32 * 0.4;
                    *v = 128.0 + 100.0 * (x * 0.7).sin();
                }
                g
            })
            .collect();
        assert_eq!(run(&frames), vec![]);
    }

    #[test]
    fn long_videos_keep_a_fixed_ring_of_grids() {
        let (a, b) = (picture(7, 1.0), picture(8, 1.0));
        let mut d = TransitionDetector::new(25.0);
        for k in 0..20_000usize {
            d.push(k as u64 * 40, &jitter(if (k / 500) % 2 == 0 { &a } else { &b }, k));
        }
        assert_eq!(d.ring.len(), 5 * 25 + 16);
        let found = d.finish();
        let frames: Vec<u64> = found.iter().map(|t| t.frame).collect();
        assert_eq!(frames, (1..40).map(|k| k * 500).collect::<Vec<u64>>());
    }
}
