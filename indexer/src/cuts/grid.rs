//! A frame reduced to the mean Y, U and V of a 32 × 18 grid of cells, read
//! straight from the decoder's 8-bit planes (a few dozen samples a cell, so a
//! 1080p frame costs about as much as a small one), and the distances the
//! transition detector measures between such grids.

/// Cells across.
pub const GRID_W: usize = 32;
/// Cells down.
pub const GRID_H: usize = 18;
/// Cells in one plane.
pub const GRID_CELLS: usize = GRID_W * GRID_H;
/// Samples at most along each side of a cell, luma and chroma: 16 a cell
/// follow its mean closely enough for the detector's thresholds (the
/// benchmark set scores the same with 64), at an eighth of the reads.
const SAMPLES: usize = 4;

/// Mean Y, then U, then V of each cell, row-major; 0–255.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid(Box<[f32; 3 * GRID_CELLS]>);

impl Default for Grid {
    fn default() -> Self {
        Grid(Box::new([0.0; 3 * GRID_CELLS]))
    }
}

/// One 8-bit plane of a decoded frame.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    /// Bytes, `stride` per row.
    pub data: &'a [u8],
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Width in samples.
    pub width: usize,
    /// Height in rows.
    pub height: usize,
}

impl Grid {
    /// The grid of a frame from its Y plane and, when it has colour, its U
    /// and V planes (any subsampling: each plane is divided into the same
    /// cells). Without chroma, U and V are neutral (128).
    pub fn from_planes(y: Plane<'_>, chroma: Option<(Plane<'_>, Plane<'_>)>) -> Grid {
        let mut grid = Grid::default();
        fill(&mut grid.0[..GRID_CELLS], y, SAMPLES);
        match chroma {
            Some((u, v)) => {
                // The same spacing on the picture as luma: subsampled chroma
                // planes take fewer samples a cell.
                let n = (SAMPLES * u.width.max(1)).div_ceil(y.width.max(1)).clamp(1, SAMPLES);
                fill(&mut grid.0[GRID_CELLS..2 * GRID_CELLS], u, n);
                fill(&mut grid.0[2 * GRID_CELLS..], v, n);
            }
            None => grid.0[GRID_CELLS..].fill(128.0),
        }
        grid
    }

    /// The values, Y then U then V.
    pub fn values(&self) -> &[f32] {
        &self.0[..]
    }

    /// The values, to change.
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.0[..]
    }

    /// Mean luma.
    pub fn luma(&self) -> f32 {
        self.0[..GRID_CELLS].iter().sum::<f32>() / GRID_CELLS as f32
    }

    /// Mean absolute difference over every cell and channel.
    pub fn distance(&self, other: &Grid) -> f32 {
        self.0.iter().zip(other.0.iter()).map(|(a, b)| (a - b).abs()).sum::<f32>() / (3 * GRID_CELLS) as f32
    }

    /// Where this grid lies on the line from `from` to `to`: 0 at `from`, 1
    /// at `to` (the least-squares blend weight).
    pub fn blend_position(&self, from: &Grid, to: &Grid) -> f32 {
        let (mut num, mut den) = (0.0f32, 0.0f32);
        for ((x, a), b) in self.0.iter().zip(from.0.iter()).zip(to.0.iter()) {
            num += (x - a) * (b - a);
            den += (b - a) * (b - a);
        }
        if den > 0.0 {
            num / den
        } else {
            0.0
        }
    }

    /// Mean absolute difference from the blend `(1 − t)·from + t·to`.
    pub fn blend_residual(&self, from: &Grid, to: &Grid, t: f32) -> f32 {
        self.0
            .iter()
            .zip(from.0.iter())
            .zip(to.0.iter())
            .map(|((x, a), b)| (x - (a * (1.0 - t) + b * t)).abs())
            .sum::<f32>()
            / (3 * GRID_CELLS) as f32
    }
}

/// Mean of each cell of `plane`, from at most `samples` × `samples` samples
/// spread evenly over the cell. The sample columns and rows are worked out
/// once per plane, then each sampled row is read once, left to right.
fn fill(out: &mut [f32], plane: Plane<'_>, samples: usize) {
    let (w, h) = (plane.width.max(1), plane.height.max(1));
    // Sample positions along one axis: `n` per cell, in the middle of equal parts.
    let positions = |size: usize, cells: usize| -> (usize, Vec<usize>) {
        let n = (size / cells).clamp(1, samples);
        let mut at = Vec::with_capacity(cells * n);
        for c in 0..cells {
            let (lo, hi) = (c * size / cells, ((c + 1) * size / cells).max(c * size / cells + 1).min(size));
            at.extend((0..n).map(|k| (lo + (2 * k + 1) * (hi - lo) / (2 * n)).min(size - 1)));
        }
        (n, at)
    };
    let (nx, xs) = positions(w, GRID_W);
    let (ny, ys) = positions(h, GRID_H);
    let mut sums = [0u32; GRID_CELLS];
    for (r, &y) in ys.iter().enumerate() {
        let row = &plane.data[y * plane.stride..y * plane.stride + w];
        let cells = &mut sums[(r / ny) * GRID_W..(r / ny + 1) * GRID_W];
        for (cell, columns) in cells.iter_mut().zip(xs.chunks_exact(nx)) {
            *cell += columns.iter().map(|&x| u32::from(row[x])).sum::<u32>();
        }
    }
    let count = (nx * ny) as f32;
    for (o, s) in out.iter_mut().zip(sums) {
        *o = s as f32 / count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_average_their_own_pixels_at_any_size() {
        // Left half 0, right half 200, in a 1920×1080 luma plane with
        // padding; 4:2:0 chroma all 90 and 160.
        let (w, h, stride) = (1920, 1080, 1984);
        let mut y = vec![0u8; stride * h];
        for row in y.chunks_mut(stride) {
            row[w / 2..w].fill(200);
        }
        let (u, v) = (vec![90u8; 960 * 540], vec![160u8; 960 * 540]);
        fn plane(data: &[u8], stride: usize, width: usize, height: usize) -> Plane<'_> {
            Plane { data, stride, width, height }
        }
        let g = Grid::from_planes(plane(&y, stride, w, h), Some((plane(&u, 960, 960, 540), plane(&v, 960, 960, 540))));
        assert_eq!(g.values()[0], 0.0);
        assert_eq!(g.values()[GRID_W - 1], 200.0);
        assert_eq!(g.values()[GRID_CELLS + 7], 90.0);
        assert_eq!(g.values()[2 * GRID_CELLS + 7], 160.0);
        assert!((g.luma() - 100.0).abs() < 1e-3);
        // A frame smaller than the grid still fills every cell.
        let tiny = [10u8, 250, 10, 250];
        let g = Grid::from_planes(plane(&tiny, 2, 2, 2), None);
        assert_eq!((g.values()[0], g.values()[GRID_W - 1], g.values()[GRID_CELLS]), (10.0, 250.0, 128.0));
    }

    #[test]
    fn blend_position_and_residual_recover_a_blend() {
        let mut a = Grid::default();
        let mut b = Grid::default();
        for (i, (x, y)) in a.values_mut().iter_mut().zip(b.values_mut().iter_mut()).enumerate() {
            *x = (i % 97) as f32;
            *y = 255.0 - (i % 89) as f32;
        }
        let mut mix = a.clone();
        for (m, y) in mix.values_mut().iter_mut().zip(b.values()) {
            *m = *m * 0.7 + y * 0.3;
        }
        assert!((mix.blend_position(&a, &b) - 0.3).abs() < 1e-4);
        assert!(mix.blend_residual(&a, &b, 0.3) < 1e-3);
        assert!(mix.blend_residual(&a, &b, 0.0) > 10.0);
        assert_eq!(a.distance(&a), 0.0);
    }
}
