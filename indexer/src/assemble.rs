//! The bundle's tables from the analysis, as a pure function: shot and scene
//! records with collection-wide ids, each video's timeline labelled with its
//! frames' class, scene and shot, the shot vectors in shot order, and which
//! stored thumbnail becomes each shot's keyframe. No I/O: `run` writes what
//! this returns.

use busca_core::bundle::{KEYFRAMES_DIR, TIMELINES_DIR};
use busca_core::shot::{FrameSpan, SceneRecord, ShotRecord, TimelineFrame};

use crate::segment::VideoAnalysis;

/// One analysed video, as assembly needs it.
#[derive(Debug, Clone, Copy)]
pub struct VideoInput<'a> {
    /// The video's id.
    pub video_id: &'a str,
    /// Sampled frame timestamps, in ms.
    pub t_ms: &'a [u64],
    /// The video's duration (ends its last scene and shot).
    pub duration_ms: u64,
    /// Displayed frames (ends its last shot's frame span; 0: not known).
    pub decoded_frames: u64,
    /// Its analysis.
    pub analysis: &'a VideoAnalysis,
}

/// A shot's keyframe: the thumbnail of one sampled frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyframe {
    /// Path in the bundle (`keyframes/<shot_id>.jpg`).
    pub rel: String,
    /// Index of the video in the input.
    pub video: usize,
    /// Index of the frame in that video.
    pub frame: usize,
}

/// One video's timeline, before its embedding file is named.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoTimeline {
    /// Every sampled frame with its class, scene and shot.
    pub frames: Vec<TimelineFrame>,
    /// Where its frame embeddings go in the bundle (`timelines/<id>.f16`).
    pub embeddings_rel: String,
    /// Where the timeline goes (`timelines/<id>.json`).
    pub rel: String,
}

/// The tables of one bundle version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tables {
    /// Shots, ids `0..n` in video then time order.
    pub shots: Vec<ShotRecord>,
    /// Scenes, ids `0..m` in the same order.
    pub scenes: Vec<SceneRecord>,
    /// `shots.len() × dim` shot embeddings, row `i` for `shots[i]`.
    pub shot_vectors: Vec<f32>,
    /// One per shot, in shot order.
    pub keyframes: Vec<Keyframe>,
    /// One per video, in input order.
    pub timelines: Vec<VideoTimeline>,
}

/// Assembles the tables of `videos`, numbering scenes and shots across the
/// collection.
pub fn assemble(videos: &[VideoInput<'_>]) -> Tables {
    let mut t = Tables::default();
    let (mut next_shot, mut next_scene) = (0u64, 0u64);
    for (v, video) in videos.iter().enumerate() {
        let id = video.video_id;
        let analysis = video.analysis;
        let first_scene = next_scene;
        for (s, scene) in analysis.scenes.iter().enumerate() {
            t.scenes.push(SceneRecord {
                scene_id: next_scene,
                video_id: id.to_string(),
                start_ms: scene.start.t_ms,
                end_ms: analysis.scenes.get(s + 1).map_or(video.duration_ms, |next| next.start.t_ms),
                class_id: scene.class,
            });
            next_scene += 1;
        }
        let mut frames: Vec<TimelineFrame> = video
            .t_ms
            .iter()
            .zip(&video.analysis.frame_class)
            .map(|(&t_ms, &class_id)| TimelineFrame { t_ms, class_id, scene_id: 0, shot_id: 0 })
            .collect();
        for (s, shot) in analysis.shots.iter().enumerate() {
            let next = analysis.shots.get(s + 1).map(|next| next.start);
            // Frame spans only where both ends are known frames.
            let end_frame = match next {
                Some(next) => next.frame,
                None => (video.decoded_frames > 0).then_some(video.decoded_frames),
            };
            let frame_span = shot.start.frame.zip(end_frame).map(|(start, end)| FrameSpan { start, end });
            let shot_id = next_shot;
            next_shot += 1;
            let scene_id = first_scene + shot.scene as u64;
            for frame in &mut frames[shot.span.start..shot.span.end] {
                frame.scene_id = scene_id;
                frame.shot_id = shot_id;
            }
            let keyframe = format!("{KEYFRAMES_DIR}/{shot_id}.jpg");
            t.keyframes.push(Keyframe { rel: keyframe.clone(), video: v, frame: shot.keyframe });
            t.shots.push(ShotRecord {
                shot_id,
                video_id: id.to_string(),
                start_ms: shot.start.t_ms,
                end_ms: next.map_or(video.duration_ms, |next| next.t_ms),
                scene_id,
                class_id: video.analysis.scenes[shot.scene].class,
                keyframe,
                keyframe_ms: video.t_ms[shot.keyframe],
                frame_count: (shot.span.end - shot.span.start) as u32,
                frames: frame_span,
                transition: shot.start.transition,
            });
            t.shot_vectors.extend_from_slice(&shot.embedding);
        }
        t.timelines.push(VideoTimeline {
            frames,
            embeddings_rel: format!("{TIMELINES_DIR}/{id}.f16"),
            rel: format!("{TIMELINES_DIR}/{id}.json"),
        });
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{Boundary, Scene, Shot, Span};
    use busca_core::shot::{Transition, TransitionKind};

    /// Scenes and shots given as spans of the sampled frames at `t`; each
    /// begins on its first sample.
    fn analysis(t: &[u64], scenes: &[(usize, usize, u32)], shots: &[(usize, usize, usize, usize)]) -> VideoAnalysis {
        let frames = t.len();
        let at = |k: usize| Boundary { t_ms: t[k], frame: None, transition: None };
        let mut frame_class = vec![0; frames];
        for &(s, e, class) in scenes {
            frame_class[s..e].fill(class);
        }
        VideoAnalysis {
            frame_class,
            scenes: scenes.iter().map(|&(start, end, class)| Scene { span: Span { start, end }, class, start: at(start) }).collect(),
            shots: shots
                .iter()
                .map(|&(start, end, scene, keyframe)| Shot {
                    span: Span { start, end },
                    scene,
                    embedding: vec![start as f32, end as f32],
                    keyframe,
                    start: at(start),
                })
                .collect(),
        }
    }

    #[test]
    fn ids_run_across_videos_and_times_come_from_the_frames() {
        let t_a: Vec<u64> = (0..6).map(|i| i * 500).collect();
        let t_b: Vec<u64> = (0..4).map(|i| 1000 + i * 500).collect();
        // Video a: scenes [0,4) class 3 and [4,6) class 1; shots [0,2) [2,4) [4,6).
        let a = analysis(&t_a, &[(0, 4, 3), (4, 6, 1)], &[(0, 2, 0, 1), (2, 4, 0, 2), (4, 6, 1, 5)]);
        // Video b: one scene, one shot.
        let b = analysis(&t_b, &[(0, 4, 7)], &[(0, 4, 0, 3)]);
        let videos = [
            VideoInput { video_id: "a", t_ms: &t_a, duration_ms: 3200, decoded_frames: 0, analysis: &a },
            VideoInput { video_id: "b", t_ms: &t_b, duration_ms: 3300, decoded_frames: 0, analysis: &b },
        ];
        let t = assemble(&videos);

        let ids: Vec<(u64, &str, u64, u64, u64, u32)> =
            t.shots.iter().map(|s| (s.shot_id, s.video_id.as_str(), s.start_ms, s.end_ms, s.scene_id, s.class_id)).collect();
        assert_eq!(
            ids,
            [(0, "a", 0, 1000, 0, 3), (1, "a", 1000, 2000, 0, 3), (2, "a", 2000, 3200, 1, 1), (3, "b", 1000, 3300, 2, 7)],
            "the last shot of a video ends at the video's end"
        );
        let scenes: Vec<(u64, &str, u64, u64)> =
            t.scenes.iter().map(|s| (s.scene_id, s.video_id.as_str(), s.start_ms, s.end_ms)).collect();
        assert_eq!(scenes, [(0, "a", 0, 2000), (1, "a", 2000, 3200), (2, "b", 1000, 3300)]);
        assert_eq!(t.shots[2].keyframe, "keyframes/2.jpg");
        assert_eq!((t.shots[2].keyframe_ms, t.shots[2].frame_count), (2500, 2));
        assert_eq!(t.keyframes[3], Keyframe { rel: "keyframes/3.jpg".into(), video: 1, frame: 3 });
        assert_eq!(t.shot_vectors, [0.0, 2.0, 2.0, 4.0, 4.0, 6.0, 0.0, 4.0], "rows in shot order");
    }

    #[test]
    fn every_frame_of_a_timeline_names_its_class_scene_and_shot() {
        let t_a: Vec<u64> = (0..6).map(|i| i * 500).collect();
        let a = analysis(&t_a, &[(0, 4, 3), (4, 6, 1)], &[(0, 2, 0, 1), (2, 4, 0, 2), (4, 6, 1, 5)]);
        let t = assemble(&[VideoInput { video_id: "a", t_ms: &t_a, duration_ms: 3000, decoded_frames: 0, analysis: &a }]);
        let timeline = &t.timelines[0];
        assert_eq!((timeline.rel.as_str(), timeline.embeddings_rel.as_str()), ("timelines/a.json", "timelines/a.f16"));
        let labels: Vec<(u64, u32, u64, u64)> =
            timeline.frames.iter().map(|f| (f.t_ms, f.class_id, f.scene_id, f.shot_id)).collect();
        assert_eq!(
            labels,
            [(0, 3, 0, 0), (500, 3, 0, 0), (1000, 3, 0, 1), (1500, 3, 0, 1), (2000, 1, 1, 2), (2500, 1, 1, 2)]
        );
    }

    #[test]
    fn boundaries_on_the_frames_give_times_frame_spans_and_transitions() {
        let t_a: Vec<u64> = (0..6).map(|i| i * 500).collect();
        let mut a = analysis(&t_a, &[(0, 6, 3)], &[(0, 2, 0, 1), (2, 4, 0, 2), (4, 6, 0, 5)]);
        let fade = Transition { kind: TransitionKind::Fade, frame: 22, t_ms: 880, start_ms: 600, end_ms: 1160 };
        a.shots[0].start.frame = Some(0);
        a.shots[1].start = Boundary { t_ms: 880, frame: Some(22), transition: Some(fade) };
        // The last shot starts on its sample, its frame known.
        a.shots[2].start.frame = Some(50);
        let t = assemble(&[VideoInput { video_id: "a", t_ms: &t_a, duration_ms: 3000, decoded_frames: 75, analysis: &a }]);
        let got: Vec<(u64, u64, Option<FrameSpan>, Option<TransitionKind>)> =
            t.shots.iter().map(|s| (s.start_ms, s.end_ms, s.frames, s.transition.map(|t| t.kind))).collect();
        assert_eq!(
            got,
            [
                (0, 880, Some(FrameSpan { start: 0, end: 22 }), None),
                (880, 2000, Some(FrameSpan { start: 22, end: 50 }), Some(TransitionKind::Fade)),
                (2000, 3000, Some(FrameSpan { start: 50, end: 75 }), None),
            ]
        );
        assert_eq!(t.shots[1].transition, Some(fade), "the fade's span is kept");
    }

    #[test]
    fn no_videos_make_empty_tables() {
        assert_eq!(assemble(&[]), Tables::default());
    }
}
