//! The semantic shot record and its neighbours: scenes, videos, timelines.
//!
//! A *semantic shot* is a run of consecutive sampled frames that stay close to
//! their running mean; a *semantic scene* is a run of frames of one semantic
//! class; a *semantic class* is a cluster of frame embeddings across the whole
//! collection regardless of time. Times are integer milliseconds from the start
//! of the video as its presentation timestamps give them.

use serde::{Deserialize, Serialize};

/// Identifies a shot within one bundle version. Also the usearch key.
pub type ShotId = u64;

/// One semantic shot: what a search returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShotRecord {
    /// Unique within the bundle; the key of the shot's vector in the index.
    pub shot_id: ShotId,
    /// The video this shot belongs to (see [`VideoRecord::video_id`]).
    pub video_id: String,
    /// Timestamp of the shot's first sampled frame, in ms.
    pub start_ms: u64,
    /// End of the shot (exclusive): the next shot's first frame, or the video's end.
    pub end_ms: u64,
    /// The semantic scene that contains the shot.
    pub scene_id: u64,
    /// The semantic class of that scene.
    pub class_id: u32,
    /// Bundle-relative path of the keyframe thumbnail.
    pub keyframe: String,
    /// Timestamp of the keyframe (the frame nearest the shot mean), in ms.
    pub keyframe_ms: u64,
    /// Number of sampled frames averaged into the shot embedding.
    pub frame_count: u32,
    /// The shot's decoded frames `[start, end)`, counted from the video's
    /// first displayed frame; absent in bundles indexed without frame-level
    /// transition detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<FrameSpan>,
    /// The transition the shot begins with, when one was detected on the
    /// frames (a dissolve's or fade's whole span is in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
}

/// A run of decoded frames `[start, end)` of one video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameSpan {
    /// First frame.
    pub start: u64,
    /// One past the last frame.
    pub end: u64,
}

/// How one shot gives way to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    /// From one frame to the next.
    Cut,
    /// The two shots blend over several frames.
    Dissolve,
    /// Through black: the first shot fades out, the next fades in.
    Fade,
}

/// A transition between shots found on the decoded frames.
///
/// Its boundary is the first frame of the new shot: for a cut, the first
/// frame that shows it; for a dissolve or a fade, the first frame at or after
/// the middle of its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// What kind.
    pub kind: TransitionKind,
    /// The boundary frame.
    pub frame: u64,
    /// Its presentation timestamp, in ms.
    pub t_ms: u64,
    /// First frame of the span (the boundary frame for a cut), in ms.
    pub start_ms: u64,
    /// Last frame of the span (the boundary frame for a cut), in ms.
    pub end_ms: u64,
}

/// A semantic scene: consecutive frames of one semantic class, after smoothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneRecord {
    /// Unique within the bundle.
    pub scene_id: u64,
    /// The video this scene belongs to.
    pub video_id: String,
    /// Start of the scene, in ms.
    pub start_ms: u64,
    /// End of the scene (exclusive), in ms.
    pub end_ms: u64,
    /// The semantic class laid on this stretch of timeline.
    pub class_id: u32,
}

/// One indexed video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoRecord {
    /// Stable id derived from the path relative to the indexed folder.
    pub video_id: String,
    /// Where the video was read from (path or URI).
    pub source_uri: String,
    /// Duration in ms.
    pub duration_ms: u64,
    /// sha256 of the file's bytes: a re-run skips videos whose hash is unchanged.
    pub content_sha256: String,
    /// Frames sampled per second.
    pub sampled_fps: f32,
    /// Number of sampled frames.
    pub frames: u32,
    /// Display width after rotation, in pixels.
    pub width: u32,
    /// Display height after rotation, in pixels.
    pub height: u32,
    /// Which frames were decoded and how far the samples sit from the
    /// sampling grid; absent in bundles written before frames were skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
}

/// Which frames the decoder decoded to sample a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameDecode {
    /// Every frame: samples within one frame of the grid, and the frames
    /// that shot boundaries land on.
    All,
    /// Frames other frames are predicted from (FFmpeg's `skip_frame` at
    /// `AVDISCARD_NONREF`), and the frame nearest each point of the sampling
    /// grid: other non-reference frames are never decoded, and a sample is
    /// within half a frame of its grid time.
    NonReference,
    /// Key frames only (`AVDISCARD_NONKEY`): a sample is as far from its
    /// grid time as the key frames are apart.
    Key,
}

impl FrameDecode {
    /// The name as `videos.json` spells it, for error messages and bench
    /// output (the indexer's `--decode` spells it with a hyphen).
    pub fn name(self) -> &'static str {
        match self {
            FrameDecode::All => "all",
            FrameDecode::NonReference => "non_reference",
            FrameDecode::Key => "key",
        }
    }
}

/// How one video was sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sampling {
    /// The frames decoded.
    pub decode: FrameDecode,
    /// The largest distance, in ms, between a point of the sampling grid
    /// (`k / fps` from the start) and the sampled frame nearest to it.
    pub max_offset_ms: u32,
}

/// One sampled frame on a video's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimelineFrame {
    /// Presentation timestamp in ms.
    pub t_ms: u64,
    /// Semantic class of the frame (after diarization smoothing).
    pub class_id: u32,
    /// Semantic scene containing the frame.
    pub scene_id: u64,
    /// Semantic shot containing the frame.
    pub shot_id: ShotId,
}

/// A video's sampled frames with their labels. The frame embeddings sit beside
/// it as a raw little-endian f16 matrix (`frames × dim`) so that re-segmenting
/// needs no re-decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The video.
    pub video_id: String,
    /// Frames in timestamp order.
    pub frames: Vec<TimelineFrame>,
    /// Bundle-relative path of the f16 embedding matrix.
    pub embeddings: String,
    /// Embedding dimension.
    pub dim: usize,
    /// Every cut, dissolve and fade found on the decoded frames (absent when
    /// the video was indexed without frame-level detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transitions: Option<Vec<Transition>>,
}

/// Formats milliseconds as a broadcast-style timecode `HH:MM:SS.mmm`.
///
/// ```
/// assert_eq!(busca_core::shot::timecode(142_205), "00:02:22.205");
/// ```
pub fn timecode(ms: u64) -> String {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    format!("{h:02}:{m:02}:{s:02}.{milli:03}")
}

/// Parses `HH:MM:SS.mmm`, `MM:SS(.mmm)` or plain seconds into milliseconds.
///
/// ```
/// use busca_core::shot::parse_timecode;
/// assert_eq!(parse_timecode("00:02:22.205"), Some(142_205));
/// assert_eq!(parse_timecode("2:41.861"), Some(161_861));
/// assert_eq!(parse_timecode("12.5"), Some(12_500));
/// assert_eq!(parse_timecode("1:99"), None);
/// ```
pub fn parse_timecode(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let seconds: f64 = parts.last()?.parse().ok()?;
    if !(0.0..=f64::from(u32::MAX)).contains(&seconds) || (parts.len() > 1 && seconds >= 60.0) {
        return None;
    }
    let mut total_ms = (seconds * 1000.0).round() as u64;
    let mut unit = 60_000;
    for part in parts.iter().rev().skip(1) {
        let value: u64 = part.parse().ok()?;
        if unit == 60_000 && parts.len() == 3 && value >= 60 {
            return None;
        }
        // Hours too many for u64 milliseconds are no timecode (not an overflow).
        total_ms = value.checked_mul(unit).and_then(|ms| total_ms.checked_add(ms))?;
        unit *= 60;
    }
    Some(total_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timecode_round_trips() {
        for ms in [0, 999, 1000, 59_999, 3_600_000, 86_399_999] {
            assert_eq!(parse_timecode(&timecode(ms)), Some(ms), "{ms}");
        }
    }

    #[test]
    fn rejects_bad_timecodes() {
        for bad in ["", "a:b", "1:2:3:4", "00:61:00", "-1", "00:00:60", "99999999999999999:00:00"] {
            assert_eq!(parse_timecode(bad), None, "{bad}");
        }
    }
}
