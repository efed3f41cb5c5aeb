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

use std::io::Write;
use std::path::{Path, PathBuf};

use busca_core::error::IoAt;
use busca_core::bundle::{
    self, hash_tree, list_versions, switch_current, version_dir, version_name, BundleManifest, IndexOptions,
    MANIFEST_FILE, VERSIONS_DIR,
};
use busca_core::shot::VideoRecord;
use busca_core::BundleError;
use busca_s3::{BundleBucket, ConnectOptions, S3Error, S3Url};

use crate::work::RECORD_SUFFIX;

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A bundle operation failed (names its path).
    #[error(transparent)]
    Bundle(#[from] BundleError),
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
    /// `<dir>/.work` (for S3, a local staging copy of the bucket's).
    fn local_collection_dir(&self, collection: &str) -> PathBuf;
    /// Brings the store's work files into `work_dir` (S3: those this machine lacks).
    fn load_work(&self, _collection: &str, _work_dir: &Path) -> Result<(), PublishError> {
        Ok(())
    }
    /// Saves `work_dir`'s new work files to the store (S3: uploads them).
    fn save_work(&self, _collection: &str, _work_dir: &Path) -> Result<(), PublishError> {
        Ok(())
    }
    /// The current version's name, if any.
    fn current(&self, collection: &str) -> Result<Option<String>, PublishError>;
    /// The current version's manifest and video table, checked, if any.
    fn current_tables(&self, collection: &str) -> Result<Option<(BundleManifest, Vec<VideoRecord>)>, PublishError>;
    /// Starts writing the next version of `collection`, in a local scratch directory.
    fn begin(&self, collection: &str) -> Result<StagedVersion, PublishError>;
    /// Fills the manifest's file list, writes it, publishes the version and
    /// makes it current.
    fn commit(
        &self,
        collection: &str,
        staged: StagedVersion,
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

const TMP_PREFIX: &str = ".tmp-";

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

    fn begin(&self, collection: &str) -> Result<StagedVersion, PublishError> {
        bundle::validate_collection_name(collection)?;
        let collection_dir = self.collection_dir(collection);
        let versions = collection_dir.join(VERSIONS_DIR);
        std::fs::create_dir_all(&versions).map_err(io_err(&versions))?;
        let next = list_versions(&collection_dir)?
            .last()
            .and_then(|v| bundle::parse_version_name(v))
            .unwrap_or(0)
            + 1;
        StagedVersion::new(&collection_dir, next)
    }

    fn commit(
        &self,
        collection: &str,
        mut staged: StagedVersion,
        manifest: BundleManifest,
    ) -> Result<BundleManifest, PublishError> {
        let collection_dir = self.collection_dir(collection);
        let manifest = staged.seal(manifest)?;
        let dest = version_dir(&collection_dir, &staged.version);
        std::fs::rename(&staged.tmp, &dest).map_err(io_err(&dest))?;
        if let Ok(d) = std::fs::File::open(collection_dir.join(VERSIONS_DIR)) {
            let _ = d.sync_all();
        }
        switch_current(&collection_dir, &staged.version)?;
        Ok(manifest)
    }
}

/// A version being written into a local scratch directory
/// (`<collection>/versions/.tmp-*`); files are immutable once written.
#[derive(Debug)]
pub struct StagedVersion {
    version: String,
    tmp: PathBuf,
}

impl StagedVersion {
    /// Clears the leftovers of runs that died before their rename and makes
    /// the scratch directory of version number `next`.
    fn new(collection_dir: &Path, next: u32) -> Result<StagedVersion, PublishError> {
        let versions = collection_dir.join(VERSIONS_DIR);
        std::fs::create_dir_all(&versions).map_err(io_err(&versions))?;
        for entry in std::fs::read_dir(&versions).map_err(io_err(&versions))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let version = version_name(next);
        let tmp = versions.join(format!("{TMP_PREFIX}{version}-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        Ok(StagedVersion { version, tmp })
    }

    /// The version's name (`v000004`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Writes one file (`rel` is `/`-separated, checked by core).
    pub fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<(), PublishError> {
        bundle::validate_relative_path(rel)?;
        let path = self.tmp.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut file = std::fs::File::create(&path).map_err(io_err(&path))?;
        file.write_all(bytes).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        Ok(())
    }

    /// A path where a library can save a file that is then added as `rel`
    /// with [`StagedVersion::add_scratch`] (usearch saves to a path).
    pub fn scratch_path(&self, rel: &str) -> PathBuf {
        self.tmp.join(rel)
    }

    /// Adds the file saved at [`StagedVersion::scratch_path`].
    pub fn add_scratch(&mut self, rel: &str) -> Result<(), PublishError> {
        bundle::validate_relative_path(rel)?;
        let path = self.tmp.join(rel);
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&path))
    }

    /// Fills the manifest's version and file list and writes it last.
    fn seal(&mut self, mut manifest: BundleManifest) -> Result<BundleManifest, PublishError> {
        manifest.version = self.version.clone();
        manifest.files = hash_tree(&self.tmp)?;
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
        self.write(MANIFEST_FILE, &json)?;
        sync_dirs(&self.tmp);
        Ok(manifest)
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
            },
        })
    }
}

impl BundleStore for S3Store {
    fn local_collection_dir(&self, collection: &str) -> PathBuf {
        self.shared.destination.staging.join(collection)
    }

    fn load_work(&self, collection: &str, work_dir: &Path) -> Result<(), PublishError> {
        let s = &self.shared;
        let n = s.runtime.block_on(s.bucket.pull_work(collection, work_dir, RECORD_SUFFIX))?;
        if n > 0 {
            tracing::info!("fetched {n} work files of {collection} from {}", s.bucket.url());
        }
        Ok(())
    }

    fn save_work(&self, collection: &str, work_dir: &Path) -> Result<(), PublishError> {
        let s = &self.shared;
        let n = s.runtime.block_on(s.bucket.push_work(collection, work_dir, RECORD_SUFFIX))?;
        if n > 0 {
            tracing::info!("saved {n} work files of {collection} to {}", s.bucket.url());
        }
        Ok(())
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

    fn begin(&self, collection: &str) -> Result<StagedVersion, PublishError> {
        bundle::validate_collection_name(collection)?;
        let s = &self.shared;
        let next = s.runtime.block_on(s.bucket.next_version(collection))?;
        let number = bundle::parse_version_name(&next).expect("next_version names a version");
        StagedVersion::new(&self.local_collection_dir(collection), number)
    }

    fn commit(
        &self,
        collection: &str,
        mut staged: StagedVersion,
        manifest: BundleManifest,
    ) -> Result<BundleManifest, PublishError> {
        let manifest = staged.seal(manifest)?;
        let s = &self.shared;
        s.runtime.block_on(async {
            s.bucket.upload_version(collection, &staged.tmp, &manifest).await?;
            s.bucket.set_current(collection, &manifest.version).await?;
            // The version is published; a failed clean-up only leaves old
            // versions behind for the next run to delete.
            match s.bucket.prune(collection, s.destination.keep_versions).await {
                Ok(deleted) if !deleted.is_empty() => tracing::info!("pruned {collection} versions {deleted:?}"),
                Ok(_) => {}
                Err(e) => tracing::warn!("{collection} {} is published, but pruning old versions failed: {e}", manifest.version),
            }
            Ok::<_, S3Error>(())
        })?;
        let _ = std::fs::remove_dir_all(&staged.tmp);
        Ok(manifest)
    }
}

/// fsync every directory under `dir` so the entries survive a crash.
fn sync_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                sync_dirs(&entry.path());
            }
        }
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The usearch options every bundle uses: cosine on normalised vectors,
/// f16 storage (half the size of f32; recall unchanged at 768-d, see
/// indexer/README.md), HNSW M = 16.
pub fn default_index_options(dimensions: usize) -> IndexOptions {
    IndexOptions {
        file: bundle::INDEX_FILE.into(),
        dimensions,
        metric: "cos".into(),
        quantization: "f16".into(),
        connectivity: 16,
        expansion_add: 128,
        expansion_search: 64,
    }
}

/// Builds the usearch index of `vectors` (`keys.len() × dimensions`) with
/// `options` and saves it to `path`.
pub fn build_usearch(path: &Path, options: &IndexOptions, keys: &[u64], vectors: &[f32]) -> Result<(), PublishError> {
    let fail = |reason: String| PublishError::Index {
        path: path.to_path_buf(),
        reason,
    };
    let metric = match options.metric.as_str() {
        "cos" => usearch::MetricKind::Cos,
        "ip" => usearch::MetricKind::IP,
        "l2sq" => usearch::MetricKind::L2sq,
        other => return Err(fail(format!("unsupported metric {other}"))),
    };
    let quantization = match options.quantization.as_str() {
        "f32" => usearch::ScalarKind::F32,
        "f16" => usearch::ScalarKind::F16,
        "i8" => usearch::ScalarKind::I8,
        other => return Err(fail(format!("unsupported quantization {other}"))),
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
            index: default_index_options(2),
            segmentation: SegmentationParams {
                sample_fps: 2.0,
                class_algorithm: "test".into(),
                classes: 1,
                min_scene_ms: 0,
                shot_similarity: 0.5,
                min_shot_ms: 0,
                seed: 1,
            },
            counts: Counts::default(),
            files: Default::default(),
        }
    }

    #[test]
    fn an_unfinished_version_never_replaces_the_current_one() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalFolderStore::new(root.path());
        let mut first = store.begin("c").unwrap();
        first.write("shots.json", b"[]").unwrap();
        build_usearch(&first.scratch_path(bundle::INDEX_FILE), &default_index_options(2), &[7], &[0.6, 0.8]).unwrap();
        first.add_scratch(bundle::INDEX_FILE).unwrap();
        let published = store.commit("c", first, manifest()).unwrap();
        assert_eq!(published.version, "v000001");
        assert!(published.files.contains_key(bundle::INDEX_FILE));

        // A second version dies half-written (no commit): v000001 stays
        // current and verifies.
        let mut second = store.begin("c").unwrap();
        second.write("shots.json", b"[{\"half\":").unwrap();
        drop(second);
        let dir = store.collection_dir("c");
        let current = OpenBundle::open_current(&dir, Verify::All).unwrap();
        assert_eq!(current.manifest.version, "v000001");
        assert_eq!(current.read_checked("shots.json").unwrap(), b"[]");

        // The next run clears the leftovers and takes the next number.
        let third = store.begin("c").unwrap();
        assert_eq!(third.version(), "v000002");
        let leftovers = std::fs::read_dir(dir.join(VERSIONS_DIR))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(TMP_PREFIX))
            .count();
        assert_eq!(leftovers, 1, "only the new version's own scratch directory");
    }

    #[test]
    fn bad_collection_names_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let err = LocalFolderStore::new(root.path()).begin("../etc").err().unwrap();
        assert!(err.to_string().contains("../etc"));
    }
}
