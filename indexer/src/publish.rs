//! Publishing bundle versions. The indexer writes through [`BundleStore`]:
//! [`LocalFolderStore`] (the default) or [`S3Store`].
//!
//! The local store writes a new version into a hidden temporary directory
//! beside the others, fsyncs every file, writes the manifest with every file's
//! sha256, renames the directory to its version name and only then switches
//! `CURRENT` (core's atomic pointer). A crash at any moment leaves the previous
//! version current and whole; the next run removes the leftovers.
//!
//! The S3 store stages the version in a local folder the same way, then
//! uploads every file, then the manifest, then the `CURRENT` pointer (see
//! busca-s3), and keeps the per-video work files in the bucket too, so a run
//! on another machine is incremental as well.

use std::path::{Path, PathBuf};

use busca_core::bundle::{self, BundleManifest, IndexOptions};
use busca_core::bundle_writer::{VersionWriter, WriteError};
use busca_core::error::IoAt;
use busca_core::usearch_file::{Metric, ScalarKind};
use busca_core::shot::VideoRecord;
use busca_core::BundleError;
use busca_s3::{BundleBucket, ConnectOptions, S3Error, S3Url};

use crate::work::{video_of, FinishedVideo, RECORD_SUFFIX};

/// Which videos' work files an operation touches, by video id: a sharded
/// worker its own, a full run or a publish every one.
pub type Owned<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// The work files (by name) of the videos `owned` accepts.
fn files_of(owned: Owned<'_>) -> impl Fn(&str) -> bool + Sync + '_ {
    move |name| video_of(name).is_some_and(owned)
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A bundle operation failed (names its path).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// Writing the version failed, or it would not load (names the path).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// An I/O error on a named path.
    #[error(transparent)]
    Io(#[from] IoAt),
    /// An S3 operation failed (names the bucket or key).
    #[error(transparent)]
    S3(#[from] S3Error),
    /// usearch refused to build or save the index.
    #[error("shot index {path}: {reason}")]
    Index {
        /// The index file.
        path: PathBuf,
        /// usearch's message.
        reason: String,
    },
}

/// Where bundle versions of a collection are published.
pub trait BundleStore {
    /// The local directory of a collection: its work files live in
    /// `<dir>/work` (for S3, a local staging copy of the bucket's `work/`).
    fn local_collection_dir(&self, collection: &str) -> PathBuf;
    /// Brings the store's work files of the videos `owned` accepts into
    /// `work_dir` (S3: those this machine lacks; a folder store works in place).
    fn load_work(&self, _collection: &str, _work_dir: &Path, _owned: Owned<'_>) -> Result<(), PublishError> {
        Ok(())
    }
    /// Saves `work_dir`'s new work files of the videos `owned` accepts to
    /// the store (S3: uploads them).
    fn save_work(&self, _collection: &str, _work_dir: &Path, _owned: Owned<'_>) -> Result<(), PublishError> {
        Ok(())
    }
    /// Saves one finished video's work files as soon as it is finished, so
    /// that a worker killed later loses nothing it had finished (S3: uploads
    /// them, record last).
    fn save_video(&self, _collection: &str, _work_dir: &Path, _video: &FinishedVideo) -> Result<(), PublishError> {
        Ok(())
    }
    /// The current version's name, if any.
    fn current(&self, collection: &str) -> Result<Option<String>, PublishError>;
    /// The current version's manifest and video table, checked, if any.
    fn current_tables(&self, collection: &str) -> Result<Option<(BundleManifest, Vec<VideoRecord>)>, PublishError>;
    /// Starts writing the next version of `collection`, in a local scratch
    /// directory (core's writer).
    fn begin(&self, collection: &str) -> Result<VersionWriter, PublishError>;
    /// Seals the version (manifest written, checked by the reader), publishes
    /// it and makes it current.
    fn commit(
        &self,
        collection: &str,
        staged: VersionWriter,
        manifest: BundleManifest,
    ) -> Result<BundleManifest, PublishError>;
}

/// Bundles in a local folder: `<root>/<collection>/versions/vNNNNNN/`.
#[derive(Debug, Clone)]
pub struct LocalFolderStore {
    root: PathBuf,
}

impl LocalFolderStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalFolderStore { root: root.into() }
    }

    /// The directory of a collection.
    pub fn collection_dir(&self, collection: &str) -> PathBuf {
        self.root.join(collection)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |e| PublishError::Io(IoAt::at(path)(e))
}

impl BundleStore for LocalFolderStore {
    fn local_collection_dir(&self, collection: &str) -> PathBuf {
        self.collection_dir(collection)
    }

    fn current(&self, collection: &str) -> Result<Option<String>, PublishError> {
        Ok(bundle::read_current(&self.collection_dir(collection))?)
    }

    fn current_tables(&self, collection: &str) -> Result<Option<(BundleManifest, Vec<VideoRecord>)>, PublishError> {
        let dir = self.collection_dir(collection);
        if bundle::read_current(&dir)?.is_none() {
            return Ok(None);
        }
        let current = bundle::OpenBundle::open_current(&dir, bundle::Verify::SearchFiles)?;
        let videos = current.read_json::<Vec<VideoRecord>>(bundle::VIDEOS_FILE)?;
        Ok(Some((current.manifest, videos)))
    }

    fn begin(&self, collection: &str) -> Result<VersionWriter, PublishError> {
        bundle::validate_collection_name(collection)?;
        Ok(VersionWriter::begin_next(&self.collection_dir(collection))?)
    }

    fn commit(
        &self,
        _collection: &str,
        staged: VersionWriter,
        manifest: BundleManifest,
    ) -> Result<BundleManifest, PublishError> {
        Ok(staged.seal(manifest)?.publish()?)
    }
}

/// Where and how to publish to S3.
#[derive(Debug, Clone)]
pub struct S3Destination {
    /// `s3://bucket/prefix`.
    pub url: S3Url,
    /// Endpoint, region, addressing, credentials.
    pub connect: ConnectOptions,
    /// Complete versions kept in the bucket (the current one always is).
    pub keep_versions: usize,
    /// Local folder where versions are staged and work files cached.
    pub staging: PathBuf,
}

/// Bundles in an S3 bucket (see busca-s3 for the layout and its guarantees).
pub struct S3Store {
    shared: S3Shared,
}

struct S3Shared {
    runtime: tokio::runtime::Runtime,
    bucket: BundleBucket,
    destination: S3Destination,
    /// Per collection, the pointer read when its version was begun: the
    /// commit moves `CURRENT` only from it.
    bases: std::sync::Mutex<std::collections::HashMap<String, Option<busca_s3::bundles::Pointer>>>,
}

impl S3Store {
    /// Connects and checks the bucket (a missing bucket or refused
    /// credentials fail here, before any video is decoded).
    pub fn connect(destination: S3Destination) -> Result<S3Store, PublishError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(io_err(Path::new("tokio runtime")))?;
        let bucket = runtime.block_on(BundleBucket::connect(destination.url.clone(), &destination.connect))?;
        Ok(S3Store {
            shared: S3Shared {
                runtime,
                bucket,
                destination,
                bases: Default::default(),
            },
        })
    }
}

impl BundleStore for S3Store {
    fn local_collection_dir(&self, collection: &str) -> PathBuf {
        self.shared.destination.staging.join(collection)
    }

    fn load_work(&self, collection: &str, work_dir: &Path, owned: Owned<'_>) -> Result<(), PublishError> {
        let s = &self.shared;
        let n = s.runtime.block_on(s.bucket.pull_work(collection, work_dir, RECORD_SUFFIX, &files_of(owned)))?;
        if n > 0 {
            tracing::info!("fetched {n} work files of {collection} from {}", s.bucket.url());
        }
        Ok(())
    }

    fn save_work(&self, collection: &str, work_dir: &Path, owned: Owned<'_>) -> Result<(), PublishError> {
        let s = &self.shared;
        let n = s.runtime.block_on(s.bucket.push_work(collection, work_dir, RECORD_SUFFIX, &files_of(owned)))?;
        if n > 0 {
            tracing::info!("saved {n} work files of {collection} to {}", s.bucket.url());
        }
        Ok(())
    }

    fn save_video(&self, collection: &str, work_dir: &Path, video: &FinishedVideo) -> Result<(), PublishError> {
        let s = &self.shared;
        let names = video.file_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        Ok(s.runtime.block_on(s.bucket.put_work_files(collection, work_dir, &names))?)
    }

    fn current(&self, collection: &str) -> Result<Option<String>, PublishError> {
        let s = &self.shared;
        Ok(s.runtime.block_on(s.bucket.current(collection))?.map(|p| p.version))
    }

    fn current_tables(&self, collection: &str) -> Result<Option<(BundleManifest, Vec<VideoRecord>)>, PublishError> {
        let s = &self.shared;
        s.runtime.block_on(async {
            let Some(pointer) = s.bucket.current(collection).await? else {
                return Ok(None);
            };
            let Some(manifest) = s.bucket.manifest(collection, &pointer.version).await? else {
                return Ok(None);
            };
            let bytes = s.bucket.read_checked(collection, &manifest, bundle::VIDEOS_FILE).await?;
            let videos: Vec<VideoRecord> = serde_json::from_slice(&bytes).map_err(|e| S3Error::Corrupt {
                bucket: s.bucket.bucket().to_string(),
                key: s.bucket.key(collection, bundle::VIDEOS_FILE),
                reason: e.to_string(),
            })?;
            Ok(Some((manifest, videos)))
        })
    }

    fn begin(&self, collection: &str) -> Result<VersionWriter, PublishError> {
        bundle::validate_collection_name(collection)?;
        let s = &self.shared;
        let base = s.runtime.block_on(s.bucket.current(collection))?;
        s.bases.lock().expect("bases lock").insert(collection.to_string(), base);
        let next = s.runtime.block_on(s.bucket.next_version(collection))?;
        let number = bundle::parse_version_name(&next).expect("next_version names a version");
        Ok(VersionWriter::begin(&self.local_collection_dir(collection), number)?)
    }

    fn commit(
        &self,
        collection: &str,
        staged: VersionWriter,
        manifest: BundleManifest,
    ) -> Result<BundleManifest, PublishError> {
        let sealed = staged.seal(manifest)?;
        let manifest = sealed.manifest().clone();
        let s = &self.shared;
        let base = s.bases.lock().expect("bases lock").remove(collection).flatten();
        s.runtime.block_on(async {
            s.bucket.upload_version(collection, sealed.dir(), &manifest).await?;
            s.bucket.set_current_from(collection, &manifest.version, base.as_ref()).await?;
            // The version is published; a failed clean-up only leaves old
            // versions behind for the next run to delete.
            match s.bucket.prune(collection, s.destination.keep_versions).await {
                Ok(deleted) if !deleted.is_empty() => tracing::info!("pruned {collection} versions {deleted:?}"),
                Ok(_) => {}
                Err(e) => tracing::warn!("{collection} {} is published, but pruning old versions failed: {e}", manifest.version),
            }
            Ok::<_, S3Error>(())
        })?;
        Ok(sealed.discard())
    }
}

/// Builds the usearch index of `vectors` (`keys.len() × dimensions`) with
/// `options` and saves it to `path`.
pub fn build_usearch(path: &Path, options: &IndexOptions, keys: &[u64], vectors: &[f32]) -> Result<(), PublishError> {
    let fail = |reason: String| PublishError::Index {
        path: path.to_path_buf(),
        reason,
    };
    let metric = match options.metric {
        Metric::Cos => usearch::MetricKind::Cos,
        Metric::InnerProduct => usearch::MetricKind::IP,
        Metric::L2Squared => usearch::MetricKind::L2sq,
    };
    let quantization = match options.quantization {
        ScalarKind::F32 => usearch::ScalarKind::F32,
        ScalarKind::F16 => usearch::ScalarKind::F16,
        ScalarKind::I8 => usearch::ScalarKind::I8,
    };
    let usearch_options = usearch::IndexOptions {
        dimensions: options.dimensions,
        metric,
        quantization,
        connectivity: options.connectivity,
        expansion_add: options.expansion_add,
        expansion_search: options.expansion_search,
        multi: false,
    };
    let index = usearch::Index::new(&usearch_options).map_err(|e| fail(e.to_string()))?;
    index.reserve(keys.len().max(1)).map_err(|e| fail(e.to_string()))?;
    if quantization == usearch::ScalarKind::I8 {
        // Quantized by core, not by usearch's cast, which keeps only a few
        // levels per component at 768 dimensions (see quantize_i8).
        let mut row = vec![0i8; options.dimensions];
        for (key, vector) in keys.iter().zip(vectors.chunks_exact(options.dimensions)) {
            busca_core::vector::quantize_i8(vector, &mut row);
            index.add(*key, &row).map_err(|e| fail(format!("key {key}: {e}")))?;
        }
    } else {
        for (key, vector) in keys.iter().zip(vectors.chunks_exact(options.dimensions)) {
            index.add(*key, vector).map_err(|e| fail(format!("key {key}: {e}")))?;
        }
    }
    let path_str = path.to_str().ok_or_else(|| fail("path is not UTF-8".into()))?;
    index.save(path_str).map_err(|e| fail(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use busca_core::bundle::{Counts, OpenBundle, SegmentationParams, Verify};
    use busca_core::shot::{SceneRecord, ShotRecord};

    fn manifest() -> BundleManifest {
        let model: busca_core::ModelManifest = serde_json::from_str(
            r#"{"format_version":1,"model_id":"m","embedding_dim":2,
            "image":{"file":"i.onnx","graph_name":"m-image","input":"pixel_values","output":"image_embeds",
              "image_size":224,"mean":[0.5,0.5,0.5],"std":[0.25,0.25,0.25],"resize":"shortest-side-bicubic","crop":"center"},
            "text":{"file":"t.onnx","graph_name":"m-text","input":"input_ids","output":"text_embeds",
              "context_length":77,"tokenizer":"openai-clip-bpe-49408","pad_id":0}}"#,
        )
        .unwrap();
        BundleManifest {
            format_version: busca_core::FORMAT_VERSION,
            collection: "c".into(),
            version: String::new(),
            created_unix_ms: 0,
            model,
            index: IndexOptions::new(2, ScalarKind::F16),
            segmentation: SegmentationParams {
                sample_fps: 2.0,
                class_algorithm: "test".into(),
                classes: 1,
                min_scene_ms: 0,
                shot_similarity: 0.5,
                min_shot_ms: 0,
                cut_similarity: busca_core::bundle::default_cut_similarity(),
                seed: 1,
            },
            counts: Counts::default(),
            max_sample_offset_ms: None,
            files: Default::default(),
        }
    }

    fn shot(shot_id: u64) -> ShotRecord {
        ShotRecord {
            shot_id,
            video_id: "v".into(),
            start_ms: 0,
            end_ms: 1000,
            scene_id: 1,
            class_id: 0,
            keyframe: format!("keyframes/{shot_id}.jpg"),
            keyframe_ms: 500,
            frame_count: 2,
            frames: None,
            transition: None,
        }
    }

    /// Tables and a usearch index (built by usearch itself) for `shots`.
    fn stage(store: &LocalFolderStore, shots: &[ShotRecord], keys: &[u64]) -> VersionWriter {
        let mut staged = store.begin("c").unwrap();
        staged.write_json(bundle::SHOTS_FILE, &shots).unwrap();
        let scene = SceneRecord { scene_id: 1, video_id: "v".into(), start_ms: 0, end_ms: 1000, class_id: 0 };
        staged.write_json(bundle::SCENES_FILE, &[scene]).unwrap();
        staged.write_json(bundle::VIDEOS_FILE, &Vec::<busca_core::shot::VideoRecord>::new()).unwrap();
        let vectors: Vec<f32> = keys.iter().flat_map(|_| [0.6, 0.8]).collect();
        let path = staged.scratch_path(bundle::INDEX_FILE).unwrap();
        build_usearch(&path, &IndexOptions::new(2, ScalarKind::F16), keys, &vectors).unwrap();
        staged.add_scratch(bundle::INDEX_FILE).unwrap();
        staged
    }

    #[test]
    fn a_usearch_index_publishes_through_cores_writer_and_reloads() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalFolderStore::new(root.path());
        let published = store.commit("c", stage(&store, &[shot(7)], &[7]), manifest()).unwrap();
        assert_eq!(published.version, "v000001");
        assert!(published.files.contains_key(bundle::INDEX_FILE));
        let current = OpenBundle::open_current(&store.collection_dir("c"), Verify::All).unwrap();
        assert_eq!(current.manifest, published);
        let (m, _) = store.current_tables("c").unwrap().unwrap();
        assert_eq!(m.index.quantization, ScalarKind::F16);
    }

    #[test]
    fn a_version_the_reader_would_refuse_is_not_published() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalFolderStore::new(root.path());
        store.commit("c", stage(&store, &[shot(7)], &[7]), manifest()).unwrap();
        // Shot 8 has no vector in the index.
        let err = store.commit("c", stage(&store, &[shot(7), shot(8)], &[7]), manifest()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("would not load") && text.contains("shot 8"), "{text}");
        assert_eq!(store.current("c").unwrap().as_deref(), Some("v000001"));
        let versions = std::fs::read_dir(store.collection_dir("c").join(bundle::VERSIONS_DIR)).unwrap().count();
        assert_eq!(versions, 1, "neither the refused version nor its scratch directory is left");
    }

    #[test]
    fn bad_collection_names_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let err = LocalFolderStore::new(root.path()).begin("../etc").err().unwrap();
        assert!(err.to_string().contains("../etc"));
    }
}
