//! Synthetic bundles for the host benches: seeded random normalised vectors
//! in core's table types, the usearch file built by
//! `host/bench/build_usearch.py`, written through core's version writer, so
//! that the component loads them like the indexer's.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Result};
use busca_core::bundle::{
    self, BundleManifest, Counts, IndexOptions, SegmentationParams, FORMAT_VERSION, INDEX_FILE,
    SCENES_FILE, SHOTS_FILE, VIDEOS_FILE,
};
use busca_core::bundle_writer::VersionWriter;
use busca_core::model::ModelManifest;
use busca_core::shot::{SceneRecord, ShotRecord, VideoRecord};
use busca_core::usearch_file::ScalarKind;
use rand::{Rng, SeedableRng};

/// The synthetic bundles' collection.
pub const COLLECTION: &str = "synthetic";
const SHOTS_PER_VIDEO: usize = 100;
const SHOTS_PER_SCENE: usize = 10;

/// What a synthetic version holds.
pub struct Synthetic<'a> {
    /// Shots.
    pub shots: usize,
    /// Model the manifest names.
    pub model: &'a ModelManifest,
    /// Its directory (tokenizer files are copied into the bundle).
    pub model_dir: &'a Path,
    /// Scalar kind of the vectors.
    pub quantization: ScalarKind,
    /// Python with numpy and usearch.
    pub python: &'a Path,
    /// Video ids are `<prefix>-NNNNN` (the soak tells versions apart by it).
    pub video_prefix: String,
    /// Seed of the vectors.
    pub seed: u64,
    /// The index file of an earlier version with the same vectors (shots
    /// and seed), copied instead of built again: a version that only
    /// renames videos is written in about a second.
    pub index_from: Option<&'a Path>,
}

/// Writes (once) a bundle of `shots` random shots in `root/synthetic`.
pub fn write_synthetic_bundle(root: &Path, s: &Synthetic<'_>) -> Result<()> {
    let dir = root.join(COLLECTION);
    if let Ok(open) = bundle::OpenBundle::open_current(&dir, bundle::Verify::SearchFiles) {
        if open.manifest.counts.shots == s.shots
            && open.manifest.model == *s.model
            && open.manifest.index.quantization == s.quantization
        {
            return Ok(());
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| anyhow::anyhow!("removing stale {}: {e}", dir.display()))?;
    }
    publish_synthetic_version(root, s)
}

/// Writes the next version of `root/synthetic` and makes it current.
pub fn publish_synthetic_version(root: &Path, s: &Synthetic<'_>) -> Result<()> {
    let started = Instant::now();
    let dir = root.join(COLLECTION);
    let shots = s.shots;
    let mut w = VersionWriter::begin_next(&dir)?;
    let dim = s.model.embedding_dim;
    let mut rng = rand::rngs::StdRng::seed_from_u64(s.seed);
    let index = IndexOptions::new(dim, s.quantization);
    if let Some(from) = s.index_from {
        // Same vectors as an earlier version: its index file, copied.
        std::fs::copy(from, w.scratch_path(INDEX_FILE)?)?;
        w.add_scratch(INDEX_FILE)?;
    } else {
        let mut vectors = vec![0f32; shots * dim];
        for row in vectors.chunks_exact_mut(dim) {
            row.iter_mut().for_each(|x| *x = rng.gen_range(-1.0..1.0));
            busca_core::vector::normalize(row);
        }
        // i8 rows are quantized here, by core, exactly as busca-index does; the
        // script stores them as given.
        let raw = if s.quantization == ScalarKind::I8 {
            let mut rows = vec![0i8; vectors.len()];
            for (q, row) in rows.chunks_exact_mut(dim).zip(vectors.chunks_exact(dim)) {
                busca_core::vector::quantize_i8(row, q);
            }
            let raw = root.join("vectors.i8");
            std::fs::write(&raw, rows.iter().map(|&x| x as u8).collect::<Vec<u8>>())?;
            raw
        } else {
            let raw = root.join("vectors.f32");
            std::fs::write(&raw, bytemuck_cast(&vectors))?;
            raw
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("bench")
            .join("build_usearch.py");
        let status = Command::new(s.python)
            .arg(&script)
            .arg(&raw)
            .arg(dim.to_string())
            .arg(w.scratch_path(INDEX_FILE)?)
            .args(
                [
                    index.connectivity,
                    index.expansion_add,
                    index.expansion_search,
                ]
                .map(|v| v.to_string()),
            )
            .arg(index.quantization.name())
            .status()
            .map_err(|e| anyhow::anyhow!("running {} {}: {e}", s.python.display(), script.display()))?;
        if !status.success() {
            bail!("{} failed: {status}", script.display());
        }
        std::fs::remove_file(&raw)?;
        w.add_scratch(INDEX_FILE)?;
    }

    let shot_records: Vec<ShotRecord> = (0..shots)
        .map(|i| {
            let start_ms = (i % SHOTS_PER_VIDEO) as u64 * 5_000;
            ShotRecord {
                shot_id: i as u64,
                video_id: format!("{}-{:05}", s.video_prefix, i / SHOTS_PER_VIDEO),
                start_ms,
                end_ms: start_ms + 5_000,
                scene_id: (i / SHOTS_PER_SCENE) as u64,
                class_id: ((i / SHOTS_PER_SCENE) % 50) as u32,
                keyframe: format!("{}/{i}.jpg", bundle::KEYFRAMES_DIR),
                keyframe_ms: start_ms + 2_500,
                frame_count: 10,
                frames: None,
                transition: None,
            }
        })
        .collect();
    let scenes: Vec<SceneRecord> = shot_records
        .chunks(SHOTS_PER_SCENE)
        .map(|c| SceneRecord {
            scene_id: c[0].scene_id,
            video_id: c[0].video_id.clone(),
            start_ms: c[0].start_ms,
            end_ms: c[c.len() - 1].end_ms,
            class_id: c[0].class_id,
        })
        .collect();
    let videos: Vec<VideoRecord> = shot_records
        .chunks(SHOTS_PER_VIDEO)
        .map(|c| VideoRecord {
            video_id: c[0].video_id.clone(),
            source_uri: format!("synthetic://{}", c[0].video_id),
            duration_ms: c[c.len() - 1].end_ms,
            content_sha256: bundle::sha256_hex(c[0].video_id.as_bytes()),
            sampled_fps: 2.0,
            frames: c.len() as u32 * 10,
            width: 320,
            height: 240,
            sampling: None,
        })
        .collect();
    w.write_model_files(s.model_dir, s.model)?;
    w.write_json(SHOTS_FILE, &shot_records)?;
    w.write_json(SCENES_FILE, &scenes)?;
    w.write_json(VIDEOS_FILE, &videos)?;
    let manifest = BundleManifest {
        format_version: FORMAT_VERSION,
        collection: COLLECTION.into(),
        version: String::new(),
        created_unix_ms: 0,
        model: s.model.clone(),
        index,
        segmentation: SegmentationParams {
            sample_fps: 2.0,
            class_algorithm: "synthetic".into(),
            classes: 50,
            min_scene_ms: 0,
            shot_similarity: 0.0,
            min_shot_ms: 0,
            cut_similarity: busca_core::bundle::default_cut_similarity(),
            seed: s.seed,
        },
        counts: Counts {
            videos: videos.len(),
            frames: shots * 10,
            classes: 50,
            scenes: scenes.len(),
            shots,
        },
        max_sample_offset_ms: None,
        files: Default::default(),
    };
    w.seal(manifest)?.publish()?;
    eprintln!(
        "wrote a {shots}-shot synthetic bundle in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn bytemuck_cast(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
