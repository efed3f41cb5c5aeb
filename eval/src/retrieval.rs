//! Retrieval metrics on time-coded logs: recall at K and mean reciprocal rank,
//! at video level (a hit anywhere in the right video) and at shot level (a hit
//! overlapping the logged span).

use std::collections::BTreeMap;

use busca_core::shot::{ShotRecord, VideoRecord};
use serde::Serialize;

/// The cut-offs the seed reported (22%, 31%, 45%, 61%, 73%, 85% for broad descriptions).
pub const RECALL_AT: [usize; 6] = [1, 2, 5, 10, 20, 50];

/// Resolves logged video names (ids, file names, paths) to bundle video ids.
pub struct VideoMatcher {
    by_name: BTreeMap<String, String>,
}

impl VideoMatcher {
    /// Indexes each video by its id, its source file name and that name's stem.
    pub fn new(videos: &[VideoRecord]) -> Self {
        let mut by_name = BTreeMap::new();
        for v in videos {
            by_name.insert(v.video_id.to_lowercase(), v.video_id.clone());
            let file = v.source_uri.rsplit(['/', '\\']).next().unwrap_or(&v.source_uri);
            by_name.entry(file.to_lowercase()).or_insert_with(|| v.video_id.clone());
            if let Some((stem, _)) = file.rsplit_once('.') {
                by_name.entry(stem.to_lowercase()).or_insert_with(|| v.video_id.clone());
            }
        }
        VideoMatcher { by_name }
    }

    /// The bundle video id a logged name refers to.
    pub fn resolve(&self, logged: &str) -> Option<&str> {
        let logged = logged.trim().to_lowercase();
        let file = logged.rsplit(['/', '\\']).next().unwrap_or(&logged);
        self.by_name
            .get(file)
            .or_else(|| file.rsplit_once('.').and_then(|(stem, _)| self.by_name.get(stem)))
            .map(String::as_str)
    }
}

/// Where one logged query's target showed up (1-based ranks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ranks {
    /// Rank of the first result from the right video.
    pub video: Option<usize>,
    /// Rank of the first result overlapping the logged span.
    pub shot: Option<usize>,
}

/// Ranks of the target in `results` (best first).
pub fn ranks(results: &[ShotRecord], video_id: &str, start_ms: u64, end_ms: u64) -> Ranks {
    let overlaps = |s: &ShotRecord| {
        if start_ms == end_ms {
            s.start_ms <= start_ms && start_ms < s.end_ms
        } else {
            s.start_ms < end_ms && s.end_ms > start_ms
        }
    };
    let mut out = Ranks { video: None, shot: None };
    for (i, shot) in results.iter().enumerate() {
        if shot.video_id != video_id {
            continue;
        }
        out.video.get_or_insert(i + 1);
        if overlaps(shot) {
            out.shot = Some(i + 1);
            break;
        }
    }
    out
}

/// Recall at each K and MRR over a set of queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// K → fraction of queries whose target ranked within K.
    pub recall_at: BTreeMap<usize, f64>,
    /// Mean of 1/rank (0 when not found).
    pub mrr: f64,
}

/// Metrics of a list of ranks.
pub fn metrics(ranks: &[Option<usize>]) -> Metrics {
    let n = ranks.len().max(1) as f64;
    let recall_at = RECALL_AT
        .iter()
        .map(|&k| (k, ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n))
        .collect();
    let mrr = ranks.iter().map(|r| r.map_or(0.0, |r| 1.0 / r as f64)).sum::<f64>() / n;
    Metrics { recall_at, mrr }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shot(video: &str, start: u64, end: u64) -> ShotRecord {
        ShotRecord {
            shot_id: start,
            video_id: video.into(),
            start_ms: start,
            end_ms: end,
            scene_id: 0,
            class_id: 0,
            keyframe: String::new(),
            keyframe_ms: start,
            frame_count: 1,
            frames: None,
            transition: None,
        }
    }

    #[test]
    fn video_and_shot_ranks() {
        let results = [shot("a", 0, 10), shot("b", 0, 5), shot("b", 20, 30), shot("b", 5, 20)];
        assert_eq!(ranks(&results, "b", 12, 18), Ranks { video: Some(2), shot: Some(4) });
        assert_eq!(ranks(&results, "b", 25, 25), Ranks { video: Some(2), shot: Some(3) });
        assert_eq!(ranks(&results, "c", 0, 1), Ranks { video: None, shot: None });
        // A span touching a shot's end does not overlap it.
        assert_eq!(ranks(&results, "a", 10, 12).shot, None);
    }

    #[test]
    fn recall_and_mrr() {
        let m = metrics(&[Some(1), Some(3), None, Some(50)]);
        assert_eq!(m.recall_at[&1], 0.25);
        assert_eq!(m.recall_at[&5], 0.5);
        assert_eq!(m.recall_at[&50], 0.75);
        assert!((m.mrr - (1.0 + 1.0 / 3.0 + 0.02) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn matcher_accepts_ids_file_names_and_paths() {
        let video = VideoRecord {
            video_id: "archivo-dg90602601".into(),
            source_uri: "/data/archivo/DG90602601.mp4".into(),
            duration_ms: 1,
            content_sha256: String::new(),
            sampled_fps: 1.0,
            frames: 1,
            width: 1,
            height: 1,
            sampling: None,
        };
        let m = VideoMatcher::new(&[video]);
        for name in ["archivo-dg90602601", "DG90602601.mp4", "dg90602601", "x/y/DG90602601.mp4"] {
            assert_eq!(m.resolve(name), Some("archivo-dg90602601"), "{name}");
        }
        assert_eq!(m.resolve("other.mp4"), None);
    }
}
