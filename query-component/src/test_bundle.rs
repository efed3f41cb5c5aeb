//! Writes small, complete bundles with the core types, without the indexer:
//! for the native tests and for smoke-running the component
//! (`cargo run --example make_test_bundle`).
//!
//! Shots belong to `classes` semantic classes; each class has a random unit
//! direction and its shots lie close to it, so a query along a class direction
//! must return that class's shots first. The index is written in usearch's
//! format by `busca_core::usearch_file::write`, its level-0 graph linking every
//! shot to its nearest neighbours.

use std::path::Path;

use busca_core::bundle::{self, BundleManifest, Counts, IndexOptions, MapPoint, SegmentationParams, FORMAT_VERSION};
use busca_core::bundle_writer::{VersionWriter, WriteError};
use busca_core::error::IoAt;
use busca_core::model::ModelManifest;
use busca_core::shot::{SceneRecord, ShotRecord, Timeline, TimelineFrame, VideoRecord};
use busca_core::usearch_file::{self, HnswGraph, Metric, ScalarKind, StoredVectors, UsearchFile};
use busca_core::vector;

/// What to write.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Collection name.
    pub collection: String,
    /// Version number.
    pub version: u32,
    /// Videos.
    pub videos: usize,
    /// Shots per video.
    pub shots_per_video: usize,
    /// Semantic classes.
    pub classes: usize,
    /// The model recorded in the manifest (its `embedding_dim` is the vector size).
    pub model: ModelManifest,
    /// Seed of the vectors.
    pub seed: u64,
}

impl Spec {
    /// The native tests' bundle: version 1 of `collection`, 3 videos of 6
    /// shots in 3 classes, `dim`-d, seed 11.
    pub fn small(collection: &str, dim: usize) -> Spec {
        Spec {
            collection: collection.into(),
            version: 1,
            videos: 3,
            shots_per_video: 6,
            classes: 3,
            model: test_model(dim),
            seed: 11,
        }
    }
}

/// A model manifest for tests: CLIP-shaped, `dim`-d, tiny images.
pub fn test_model(dim: usize) -> ModelManifest {
    serde_json::from_value(serde_json::json!({
        "format_version": 1, "model_id": format!("test-{dim}d"), "embedding_dim": dim,
        "image": {"file": "image.onnx", "graph_name": "test-image", "input": "pixel_values", "output": "image_embeds",
            "image_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
            "resize": "shortest-side-bicubic", "crop": "center"},
        "text": {"file": "text.onnx", "graph_name": "test-text", "input": "input_ids", "output": "text_embeds",
            "context_length": 77, "tokenizer": "openai-clip-bpe-49408", "pad_id": 0}
    }))
    .expect("test model manifest")
}

/// The deterministic generator of test vectors (core's, shared with its benches).
pub use busca_core::vector::SplitMix64 as Rng;

/// The direction of class `class` for a spec (what queries aim at).
pub fn class_direction(spec: &Spec, class: usize) -> Vec<f32> {
    let mut rng = Rng(spec.seed ^ (0xC1A5_5000 + class as u64));
    rng.unit(spec.model.embedding_dim)
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    /// The shots.
    pub shots: Vec<ShotRecord>,
    /// Each shot's vector.
    pub vectors: Vec<Vec<f32>>,
}

/// Writes the bundle under `root/<collection>/versions/vNNNNNN` with core's
/// writer and points `CURRENT` at it.
pub fn write(root: &Path, spec: &Spec) -> Result<Written, WriteError> {
    let dim = spec.model.embedding_dim;
    let mut w = VersionWriter::begin(&root.join(&spec.collection), spec.version)?;
    let directions: Vec<Vec<f32>> = (0..spec.classes).map(|c| class_direction(spec, c)).collect();
    let mut rng = Rng(spec.seed);
    let (mut shots, mut scenes, mut videos, mut vectors, mut map) = (vec![], vec![], vec![], vec![], vec![]);
    const SHOT_MS: u64 = 4000;
    for v in 0..spec.videos {
        let video_id = format!("video-{v:02}");
        let mut frames = Vec::new();
        let mut frame_rows = Vec::new();
        for s in 0..spec.shots_per_video {
            let shot_id = (v * spec.shots_per_video + s) as u64 * 3 + 5; // not row numbers
            let class = (v + s) % spec.classes;
            let scene_id = shot_id; // one scene per shot keeps the tables simple
            let (start_ms, end_ms) = (s as u64 * SHOT_MS, (s as u64 + 1) * SHOT_MS);
            let mut vector: Vec<f32> = directions[class].iter().map(|x| x + 0.15 * rng.next_f32() / (dim as f32).sqrt()).collect();
            vector::normalize(&mut vector);
            let keyframe = format!("{}/{shot_id}.jpg", bundle::KEYFRAMES_DIR);
            let shade = (40 + 50 * class) as u8;
            let img = image::RgbImage::from_pixel(16, 9, image::Rgb([shade, 255 - shade, 128]));
            let mut jpeg = std::io::Cursor::new(Vec::new());
            img.write_to(&mut jpeg, image::ImageFormat::Jpeg)
                .map_err(|e| IoAt::at(&keyframe)(std::io::Error::other(e)))?;
            w.write(&keyframe, jpeg.get_ref())?;
            shots.push(ShotRecord {
                shot_id,
                video_id: video_id.clone(),
                start_ms,
                end_ms,
                scene_id,
                class_id: class as u32,
                keyframe,
                keyframe_ms: start_ms + SHOT_MS / 2,
                frame_count: 4,
                frames: None,
                transition: None,
            });
            scenes.push(SceneRecord { scene_id, video_id: video_id.clone(), start_ms, end_ms, class_id: class as u32 });
            for f in 0..4 {
                frames.push(TimelineFrame { t_ms: start_ms + f * 1000, class_id: class as u32, scene_id, shot_id });
                frame_rows.push(vectors.len());
            }
            map.push(MapPoint { shot_id, x: 0.5 + 0.5 * vector[0], y: 0.5 + 0.5 * vector[1 % dim], class_id: class as u32 });
            vectors.push(vector);
        }
        let duration_ms = spec.shots_per_video as u64 * SHOT_MS;
        let embeddings = format!("{}/{video_id}.f16", bundle::TIMELINES_DIR);
        let frame_vectors: Vec<f32> = frame_rows.iter().flat_map(|&row| vectors[row].clone()).collect();
        w.write(&embeddings, &vector::f32_to_f16_bytes(&frame_vectors))?;
        let timeline = Timeline { video_id: video_id.clone(), frames, embeddings, dim, transitions: None };
        w.write_json(&format!("{}/{video_id}.json", bundle::TIMELINES_DIR), &timeline)?;
        videos.push(VideoRecord {
            video_id: video_id.clone(),
            source_uri: format!("file:///videos/{video_id}.mp4"),
            duration_ms,
            content_sha256: bundle::sha256_hex(video_id.as_bytes()),
            sampled_fps: 1.0,
            frames: (spec.shots_per_video * 4) as u32,
            width: 640,
            height: 360,
            sampling: None,
        });
    }
    w.write_json(bundle::SHOTS_FILE, &shots)?;
    w.write_json(bundle::SCENES_FILE, &scenes)?;
    w.write_json(bundle::VIDEOS_FILE, &videos)?;
    w.write_json(bundle::MAP_FILE, &map)?;

    // Level-0 graph: each shot linked to its nearest neighbours.
    let (connectivity, connectivity_base) = (8, 16);
    // Neighbours are looked for among all shots, or, in bundles too large
    // for that in a debug build (above the exact-scan limit), among the
    // shot's own class: classes are well apart, and the long links below
    // join them.
    let by_class = vectors.len() > 2_000;
    let mut class_rows: Vec<Vec<usize>> = vec![Vec::new(); spec.classes];
    for (row, shot) in shots.iter().enumerate() {
        class_rows[shot.class_id as usize].push(row);
    }
    let lists: Vec<Vec<Vec<u32>>> = (0..vectors.len())
        .map(|i| {
            let candidates: Box<dyn Iterator<Item = usize>> = if by_class {
                Box::new(class_rows[shots[i].class_id as usize].iter().copied())
            } else {
                Box::new(0..vectors.len())
            };
            let mut others: Vec<(f32, u32)> = candidates
                .filter(|j| *j != i)
                .map(|j| (vector::dot(&vectors[i], &vectors[j]), j as u32))
                .collect();
            // The nearest first (a partial sort).
            let nearest = (connectivity_base - 4).min(others.len());
            if nearest < others.len() {
                others.select_nth_unstable_by(nearest, |a, b| b.0.total_cmp(&a.0));
            }
            others[..nearest].sort_by(|a, b| b.0.total_cmp(&a.0));
            // Nearest neighbours plus a few long links, so that the graph stays
            // navigable across classes (as HNSW's upper levels make it).
            let mut list: Vec<u32> = others.iter().take(nearest).map(|(_, j)| *j).collect();
            let n = vectors.len() as u32;
            for step in 1..=4u32 {
                let far = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(step * 7919) % n;
                if far as usize != i && !list.contains(&far) {
                    list.push(far);
                }
            }
            vec![list]
        })
        .collect();
    let file = UsearchFile {
        version: (2, 26, 6),
        metric: Metric::Cos,
        dimensions: dim,
        count_present: shots.len() as u64,
        count_deleted: 0,
        keys: shots.iter().map(|s| s.shot_id).collect(),
        vectors: StoredVectors::F32(vectors.concat()),
        graph: HnswGraph::from_lists(connectivity, connectivity_base, 0, &lists),
    };
    w.write(bundle::INDEX_FILE, &usearch_file::write(&file))?;

    let manifest = BundleManifest {
        format_version: FORMAT_VERSION,
        collection: spec.collection.clone(),
        version: String::new(),
        created_unix_ms: 1_764_000_000_000,
        model: spec.model.clone(),
        index: IndexOptions { connectivity, ..IndexOptions::new(dim, ScalarKind::F32) },
        segmentation: SegmentationParams {
            sample_fps: 1.0,
            class_algorithm: "synthetic".into(),
            classes: spec.classes,
            min_scene_ms: 0,
            shot_similarity: 0.9,
            min_shot_ms: 0,
            cut_similarity: busca_core::bundle::default_cut_similarity(),
            seed: spec.seed,
        },
        counts: Counts {
            videos: videos.len(),
            frames: shots.len() * 4,
            classes: spec.classes,
            scenes: scenes.len(),
            shots: shots.len(),
        },
        max_sample_offset_ms: None,
        files: Default::default(),
    };
    w.seal(manifest)?.publish()?;
    Ok(Written { shots, vectors })
}

/// Wraps an existing usearch index (e.g. from
/// `core/tests/fixtures/usearch/gen_bench_index.py`) into a bundle: one shot
/// per key, spread over 20 videos, no keyframes or timelines. For measuring
/// search inside the component at realistic sizes. Returns the shot count.
pub fn write_from_index(root: &Path, collection: &str, index_path: &Path) -> Result<usize, WriteError> {
    let file = UsearchFile::read(index_path).map_err(|e| IoAt::at(index_path)(std::io::Error::other(e.to_string())))?;
    let mut w = VersionWriter::begin(&root.join(collection), 1)?;
    const VIDEOS: u64 = 20;
    let shots: Vec<ShotRecord> = file
        .keys
        .iter()
        .map(|&key| ShotRecord {
            shot_id: key,
            video_id: format!("video-{:02}", key % VIDEOS),
            start_ms: (key / VIDEOS) * 3000,
            end_ms: (key / VIDEOS + 1) * 3000,
            scene_id: key,
            class_id: (key % 7) as u32,
            keyframe: format!("{}/{key}.jpg", bundle::KEYFRAMES_DIR),
            keyframe_ms: (key / VIDEOS) * 3000 + 1500,
            frame_count: 3,
            frames: None,
            transition: None,
        })
        .collect();
    let scenes: Vec<SceneRecord> = shots
        .iter()
        .map(|s| SceneRecord { scene_id: s.scene_id, video_id: s.video_id.clone(), start_ms: s.start_ms, end_ms: s.end_ms, class_id: s.class_id })
        .collect();
    let videos: Vec<VideoRecord> = (0..VIDEOS)
        .map(|v| VideoRecord {
            video_id: format!("video-{v:02}"),
            source_uri: format!("file:///videos/{v}.mp4"),
            duration_ms: (file.keys.len() as u64 / VIDEOS + 1) * 3000,
            content_sha256: bundle::sha256_hex(&v.to_le_bytes()),
            sampled_fps: 1.0,
            frames: 0,
            width: 640,
            height: 360,
            sampling: None,
        })
        .collect();
    w.write_json(bundle::SHOTS_FILE, &shots)?;
    w.write_json(bundle::SCENES_FILE, &scenes)?;
    w.write_json(bundle::VIDEOS_FILE, &videos)?;
    std::fs::copy(index_path, w.scratch_path(bundle::INDEX_FILE)?).map_err(IoAt::at(index_path))?;
    w.add_scratch(bundle::INDEX_FILE)?;
    let manifest = BundleManifest {
        format_version: FORMAT_VERSION,
        collection: collection.into(),
        version: String::new(),
        created_unix_ms: 1_764_000_000_000,
        model: test_model(file.dimensions),
        index: IndexOptions {
            metric: file.metric,
            connectivity: file.graph.connectivity,
            ..IndexOptions::new(file.dimensions, file.vectors.kind())
        },
        segmentation: SegmentationParams {
            sample_fps: 1.0,
            class_algorithm: "synthetic".into(),
            classes: 7,
            min_scene_ms: 0,
            shot_similarity: 0.9,
            min_shot_ms: 0,
            cut_similarity: busca_core::bundle::default_cut_similarity(),
            seed: 0,
        },
        counts: Counts { videos: videos.len(), frames: 0, classes: 7, scenes: scenes.len(), shots: shots.len() },
        max_sample_offset_ms: None,
        files: Default::default(),
    };
    w.seal(manifest)?.publish()?;
    Ok(shots.len())
}
