//! Boundary evaluation: precision, recall and F1 of predicted shot or scene
//! boundaries against ground-truth cut lists, matching each true boundary to
//! at most one predicted boundary within a tolerance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use busca_core::shot::parse_timecode;
use serde::Serialize;

/// Counts and scores of one comparison.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BoundaryScore {
    /// Predicted boundaries matched to a true one.
    pub true_positives: usize,
    /// Predicted boundaries matched to none.
    pub false_positives: usize,
    /// True boundaries no prediction matched.
    pub false_negatives: usize,
}

impl BoundaryScore {
    /// TP / (TP + FP); 1 when nothing was predicted and nothing was true.
    pub fn precision(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_positives)
    }
    /// TP / (TP + FN).
    pub fn recall(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_negatives)
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    /// Sum of two scores (micro-averaging over videos).
    pub fn add(self, other: BoundaryScore) -> BoundaryScore {
        BoundaryScore {
            true_positives: self.true_positives + other.true_positives,
            false_positives: self.false_positives + other.false_positives,
            false_negatives: self.false_negatives + other.false_negatives,
        }
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        1.0
    } else {
        num as f64 / den as f64
    }
}

/// Matches sorted boundaries greedily in time order: each true boundary takes
/// the nearest unmatched prediction within `tolerance_ms`.
pub fn score_boundaries(truth: &[u64], predicted: &[u64], tolerance_ms: u64) -> BoundaryScore {
    let mut truth = truth.to_vec();
    let mut predicted = predicted.to_vec();
    truth.sort_unstable();
    predicted.sort_unstable();
    let mut used = vec![false; predicted.len()];
    let mut tp = 0;
    for &t in &truth {
        let best = predicted
            .iter()
            .enumerate()
            .filter(|(i, &p)| !used[*i] && p.abs_diff(t) <= tolerance_ms)
            .min_by_key(|(_, &p)| p.abs_diff(t))
            .map(|(i, _)| i);
        if let Some(i) = best {
            used[i] = true;
            tp += 1;
        }
    }
    BoundaryScore {
        true_positives: tp,
        false_positives: predicted.len() - tp,
        false_negatives: truth.len() - tp,
    }
}

/// Boundaries between consecutive segments (their starts, except the first).
pub fn boundaries_of(mut segments: Vec<(u64, u64)>) -> Vec<u64> {
    segments.sort_unstable();
    segments.iter().skip(1).map(|(start, _)| *start).collect()
}

/// A cut list that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {reason}")]
pub struct CutListError {
    /// The CSV.
    pub path: PathBuf,
    /// 1-based line (0: the file itself).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Reads a cut list CSV `video,time` (one boundary a row; timecode or
/// seconds) into video → sorted boundaries in ms. A video listed with an empty
/// time has no cuts but is still evaluated.
pub fn read_cut_list(path: &Path) -> Result<BTreeMap<String, Vec<u64>>, CutListError> {
    let err = |line, reason: String| CutListError { path: path.into(), line, reason };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| err(0, e.to_string()))?;
    let mut cuts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| err(line, e.to_string()))?;
        let video = record.get(0).unwrap_or("").to_string();
        if video.is_empty() {
            return Err(err(line, "empty video".into()));
        }
        let entry = cuts.entry(video).or_default();
        let time = record.get(1).unwrap_or("");
        if !time.is_empty() {
            entry.push(parse_timecode(time).ok_or_else(|| err(line, format!("{time:?} is not a timecode")))?);
        }
    }
    for v in cuts.values_mut() {
        v.sort_unstable();
    }
    Ok(cuts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_within_tolerance_one_to_one() {
        let s = score_boundaries(&[3000, 6000, 13000], &[3100, 3200, 6600, 13000], 500);
        assert_eq!(s, BoundaryScore { true_positives: 2, false_positives: 2, false_negatives: 1 });
        assert!((s.precision() - 0.5).abs() < 1e-12);
        assert!((s.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.f1() - 4.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn empty_cases() {
        let s = score_boundaries(&[], &[], 100);
        assert_eq!((s.precision(), s.recall()), (1.0, 1.0));
        assert_eq!(score_boundaries(&[5], &[], 100).f1(), 0.0);
    }

    #[test]
    fn boundaries_are_segment_starts_after_the_first() {
        assert_eq!(boundaries_of(vec![(3000, 6000), (0, 3000), (6000, 9000)]), vec![3000, 6000]);
    }

    #[test]
    fn cut_list_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cuts.csv");
        std::fs::write(&path, "video,time\ncolours,3.0\ncolours,00:00:06.000\nstill,\nbad,x\n").unwrap();
        let err = read_cut_list(&path).unwrap_err().to_string();
        assert!(err.ends_with(":5: \"x\" is not a timecode"), "{err}");
        std::fs::write(&path, "video,time\ncolours,6\ncolours,3\nstill,\n").unwrap();
        let cuts = read_cut_list(&path).unwrap();
        assert_eq!(cuts["colours"], vec![3000, 6000]);
        assert!(cuts["still"].is_empty());
    }
}
