//! Writing a bundle version: the one writer the indexer, the test bundles and
//! the benches share, so that every bundle is laid out, checksummed and
//! published the same way.
//!
//! A [`VersionWriter`] stages files in a hidden scratch directory beside the
//! versions (`<collection>/versions/.tmp-vNNNNNN-<pid>`), fsyncing each.
//! [`VersionWriter::seal`] fills the manifest's version and file list, writes
//! the manifest last, and then loads the staged version with the reader
//! ([`Collection::load`], the checksums of what search reads verified), so that no writer can
//! produce a version the reader refuses. A [`SealedVersion`] is published
//! locally by renaming the directory to its version name and switching
//! `CURRENT` ([`SealedVersion::publish`]), or uploaded from its directory by
//! another store (busca-s3). A crash at any moment leaves the previous
//! version current and whole; the next writer removes the leftovers.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::bundle::{
    self, hash_tree, list_versions, parse_version_name, validate_relative_path, version_dir,
    version_name, BundleError, BundleManifest, Verify, MANIFEST_FILE, VERSIONS_DIR,
};
use crate::error::IoAt;
use crate::search::{Collection, CollectionError};

/// Prefix of scratch directories; they are never read as versions.
const TMP_PREFIX: &str = ".tmp-";

/// Why a version could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file could not be written, a name is invalid, or `CURRENT` could not
    /// be switched (names the path).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The staged version does not load with the reader: it is not published.
    #[error("the version staged in {dir} would not load, so it was not published: {source}")]
    Unloadable {
        /// The scratch directory.
        dir: PathBuf,
        /// What the reader said.
        source: Box<CollectionError>,
    },
    /// A model file copied into the version is not the one its manifest names.
    #[error("{path} has sha256 {found}, but the model manifest says {expected}")]
    ModelFile {
        /// The file in the model directory.
        path: PathBuf,
        /// From the model manifest.
        expected: String,
        /// Of the file.
        found: String,
    },
    /// A text tower's tokenizer in the staged version cannot be built.
    #[error("the version staged in {dir} would not load, so it was not published: {source}")]
    Tokenizer {
        /// The scratch directory.
        dir: PathBuf,
        /// What the tokenizer said.
        source: Box<crate::tokenize::TokenizerError>,
    },
}

impl From<IoAt> for WriteError {
    fn from(e: IoAt) -> Self {
        WriteError::Bundle(BundleError::Io(e))
    }
}

/// A version being written into a scratch directory; files are immutable
/// once written.
#[derive(Debug)]
pub struct VersionWriter {
    collection_dir: PathBuf,
    version: String,
    tmp: PathBuf,
    /// What `CURRENT` named when writing began: publishing is refused if
    /// another publisher moved it meanwhile (`crate::fence`).
    base: Option<String>,
}

impl VersionWriter {
    /// Starts the version after the newest one in `collection_dir` (a local
    /// store's numbering).
    pub fn begin_next(collection_dir: &Path) -> Result<Self, WriteError> {
        let next = list_versions(collection_dir)?
            .last()
            .and_then(|v| parse_version_name(v))
            .unwrap_or(0)
            + 1;
        Self::begin(collection_dir, next)
    }

    /// Starts version number `number` of the collection in `collection_dir`
    /// (whose last component is the collection's name, checked), clearing
    /// the scratch directories of writers that died before publishing.
    pub fn begin(collection_dir: &Path, number: u32) -> Result<Self, WriteError> {
        let name = collection_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        bundle::validate_collection_name(&name)?;
        let versions = collection_dir.join(VERSIONS_DIR);
        std::fs::create_dir_all(&versions).map_err(IoAt::at(&versions))?;
        // Scratch directories are `.tmp-<version>-<pid>`: those of writers
        // still running (another publisher) are theirs.
        for entry in std::fs::read_dir(&versions).map_err(IoAt::at(&versions))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(TMP_PREFIX) else { continue };
            let pid = rest.rsplit_once('-').and_then(|(_, pid)| pid.parse::<u32>().ok());
            if pid.is_none_or(|pid| pid != std::process::id() && !crate::fence::writer_alive(pid)) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let base = bundle::read_current(collection_dir)?;
        let version = version_name(number);
        let tmp = versions.join(format!("{TMP_PREFIX}{version}-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(IoAt::at(&tmp))?;
        Ok(VersionWriter { collection_dir: collection_dir.to_path_buf(), version, tmp, base })
    }

    /// The version's name (`v000004`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Writes one file (`rel` is `/`-separated, checked) and fsyncs it.
    pub fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<(), WriteError> {
        validate_relative_path(rel)?;
        let path = self.tmp.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(IoAt::at(parent))?;
        }
        let needed = bytes.len() as u64;
        let mut file = std::fs::File::create(&path).map_err(IoAt::writing(&path, needed))?;
        file.write_all(bytes).map_err(IoAt::writing(&path, needed))?;
        file.sync_all().map_err(IoAt::writing(&path, needed))?;
        crate::crash::point("bundle.file");
        Ok(())
    }

    /// Copies the files the model's text towers need at query time (their
    /// tokenizer files) from `model_dir` into the version's `model/`,
    /// checked against the model manifest's sha256.
    pub fn write_model_files(&mut self, model_dir: &Path, model: &crate::ModelManifest) -> Result<(), WriteError> {
        for tower in &model.text {
            let Some(file) = &tower.tokenizer_file else { continue };
            let path = model_dir.join(file);
            let bytes = std::fs::read(&path).map_err(IoAt::at(&path))?;
            let found = bundle::sha256_hex(&bytes);
            if let Some(expected) = tower.tokenizer_sha256.as_ref().filter(|e| **e != found) {
                return Err(WriteError::ModelFile { path, expected: expected.clone(), found });
            }
            self.write(&bundle::tokenizer_rel(file), &bytes)?;
        }
        Ok(())
    }

    /// Writes one table as JSON.
    pub fn write_json(&mut self, rel: &str, value: &impl serde::Serialize) -> Result<(), WriteError> {
        let bytes = serde_json::to_vec(value).expect("bundle tables serialise");
        self.write(rel, &bytes)
    }

    /// A path where a library can save a file (usearch saves to a path) that
    /// is then added as `rel` with [`VersionWriter::add_scratch`]. Parent
    /// directories are made.
    pub fn scratch_path(&self, rel: &str) -> Result<PathBuf, WriteError> {
        validate_relative_path(rel)?;
        let path = self.tmp.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(IoAt::at(parent))?;
        }
        Ok(path)
    }

    /// Adds (fsyncs) the file saved at [`VersionWriter::scratch_path`].
    pub fn add_scratch(&mut self, rel: &str) -> Result<(), WriteError> {
        validate_relative_path(rel)?;
        let path = self.tmp.join(rel);
        std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(IoAt::at(&path))?;
        Ok(())
    }

    /// Fills the manifest's version and file list, writes it last, and loads
    /// the staged version with the reader.
    pub fn seal(mut self, mut manifest: BundleManifest) -> Result<SealedVersion, WriteError> {
        let this = &mut self;
        let result = (|| {
            manifest.version = this.version.clone();
            manifest.files = hash_tree(&this.tmp)?;
            let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
            this.write(MANIFEST_FILE, &json)?;
            sync_dirs(&this.tmp);
            crate::crash::point("bundle.manifest");
            // Every file was hashed just above; the reader re-checks the ones
            // search reads.
            let opened = bundle::OpenBundle::open_version_dir(&this.tmp, Verify::SearchFiles)?;
            let collection = Collection::load(opened)
                .map_err(|source| WriteError::Unloadable { dir: this.tmp.clone(), source: Box::new(source) })?;
            crate::tokenize::TextTokenizers::from_bundle(&collection.bundle)
                .map_err(|source| WriteError::Tokenizer { dir: this.tmp.clone(), source: Box::new(source) })?;
            Ok(())
        })();
        match result {
            Ok(()) => Ok(SealedVersion { writer: self, manifest }),
            Err(e) => {
                self.discard();
                Err(e)
            }
        }
    }

    /// Removes the scratch directory (what a failed or abandoned write leaves).
    pub fn discard(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// A writer that fails (a full disk, an unloadable version) or is dropped
/// unpublished leaves nothing: its scratch directory goes with it. (A killed
/// writer's directory is cleared by the next writer, see `begin`.) After
/// `publish` the directory has been renamed, so there is nothing to remove.
impl Drop for VersionWriter {
    fn drop(&mut self) {
        self.discard();
    }
}

/// A complete version in its scratch directory, checked by the reader.
#[derive(Debug)]
pub struct SealedVersion {
    writer: VersionWriter,
    manifest: BundleManifest,
}

impl SealedVersion {
    /// The manifest as written.
    pub fn manifest(&self) -> &BundleManifest {
        &self.manifest
    }

    /// The scratch directory holding the version (what an uploader reads).
    pub fn dir(&self) -> &Path {
        &self.writer.tmp
    }

    /// Publishes in the local folder: renames the directory to its version
    /// name, then switches `CURRENT` to it, provided no other publisher
    /// moved `CURRENT` since this version was begun ([`BundleError::Conflict`]
    /// names the winner; the version stays beside it, complete, not current).
    pub fn publish(self) -> Result<BundleManifest, WriteError> {
        let w = &self.writer;
        let dest = version_dir(&w.collection_dir, &w.version);
        if dest.exists() {
            // Another publisher took this number first.
            let found = bundle::read_current(&w.collection_dir)?.unwrap_or_else(|| "none".into());
            return Err(BundleError::Conflict {
                dir: w.collection_dir.clone(),
                version: w.version.clone(),
                base: w.base.clone().unwrap_or_else(|| "none".into()),
                found,
            }
            .into());
        }
        std::fs::rename(&w.tmp, &dest).map_err(IoAt::at(&dest))?;
        if let Ok(d) = std::fs::File::open(w.collection_dir.join(VERSIONS_DIR)) {
            let _ = d.sync_all();
        }
        crate::crash::point("bundle.renamed");
        crate::fence::switch_current_from(&w.collection_dir, &w.version, w.base.as_deref())?;
        crate::crash::point("current.switched");
        Ok(self.manifest)
    }

    /// Removes the scratch directory once another store holds the version.
    pub fn discard(mut self) -> BundleManifest {
        self.writer.discard();
        self.manifest
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{Counts, IndexOptions, OpenBundle, SegmentationParams, INDEX_FILE, SCENES_FILE, SHOTS_FILE, VIDEOS_FILE};
    use crate::shot::{SceneRecord, ShotRecord, VideoRecord};
    use crate::usearch_file::{self, HnswGraph, Metric, ScalarKind, StoredVectors, UsearchFile};

    fn manifest(metric: Metric) -> BundleManifest {
        BundleManifest {
            format_version: crate::FORMAT_VERSION,
            collection: "c".into(),
            version: String::new(),
            created_unix_ms: 0,
            model: serde_json::from_value(serde_json::json!({
                "format_version": 1, "model_id": "m", "embedding_dim": 2,
                "image": {"file": "i.onnx", "graph_name": "m-image", "input": "pixel_values", "output": "image_embeds",
                    "image_size": 8, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                    "resize": "shortest-side-bicubic", "crop": "center"},
                "text": {"file": "t.onnx", "graph_name": "m-text", "input": "input_ids", "output": "text_embeds",
                    "context_length": 77, "tokenizer": "openai-clip-bpe-49408", "pad_id": 0}
            }))
            .unwrap(),
            index: IndexOptions { metric, ..IndexOptions::new(2, ScalarKind::F32) },
            segmentation: SegmentationParams {
                sample_fps: 1.0,
                class_algorithm: "test".into(),
                classes: 1,
                min_scene_ms: 0,
                shot_similarity: 0.5,
                min_shot_ms: 0,
                cut_similarity: crate::bundle::default_cut_similarity(),
                seed: 1,
            },
            counts: Counts::default(),
            max_sample_offset_ms: None,
            files: Default::default(),
        }
    }

    /// A one-shot version: tables and a core-written usearch file.
    fn stage(collection_dir: &Path, metric: Metric) -> VersionWriter {
        fill(VersionWriter::begin_next(collection_dir).unwrap(), metric)
    }

    fn fill(mut w: VersionWriter, metric: Metric) -> VersionWriter {
        let shot = ShotRecord {
            shot_id: 7,
            video_id: "v".into(),
            start_ms: 0,
            end_ms: 1000,
            scene_id: 1,
            class_id: 0,
            keyframe: "keyframes/7.jpg".into(),
            keyframe_ms: 500,
            frame_count: 2,
            frames: None,
            transition: None,
        };
        w.write_json(SHOTS_FILE, &[shot]).unwrap();
        w.write_json(SCENES_FILE, &[SceneRecord { scene_id: 1, video_id: "v".into(), start_ms: 0, end_ms: 1000, class_id: 0 }])
            .unwrap();
        w.write_json(VIDEOS_FILE, &Vec::<VideoRecord>::new()).unwrap();
        let file = UsearchFile {
            version: (2, 26, 6),
            metric,
            dimensions: 2,
            count_present: 1,
            count_deleted: 0,
            keys: vec![7],
            vectors: StoredVectors::F32(vec![0.6, 0.8]),
            graph: HnswGraph::from_lists(8, 16, 0, &[vec![vec![]]]),
        };
        w.write(INDEX_FILE, &usearch_file::write(&file)).unwrap();
        w
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn of_two_publishers_begun_on_one_version_the_second_is_refused_and_told_the_winner() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c");
        stage(&dir, Metric::Cos).seal(manifest(Metric::Cos)).unwrap().publish().unwrap();
        // Both begin on v000001, as two indexers started together would.
        let first = stage(&dir, Metric::Cos);
        let second = fill(VersionWriter::begin(&dir, 3).unwrap(), Metric::Cos);
        assert_eq!(first.seal(manifest(Metric::Cos)).unwrap().publish().unwrap().version, "v000002");
        let err = second.seal(manifest(Metric::Cos)).unwrap().publish().unwrap_err();
        assert!(
            matches!(&err, WriteError::Bundle(BundleError::Conflict { found, version, .. }) if found == "v000002" && version == "v000003"),
            "{err}"
        );
        assert_eq!(bundle::read_current(&dir).unwrap().as_deref(), Some("v000002"), "the winner stays current");
        // The loser's version is whole beside it, and the next run builds on the winner.
        assert!(version_dir(&dir, "v000003").join(MANIFEST_FILE).is_file());
        let next = stage(&dir, Metric::Cos).seal(manifest(Metric::Cos)).unwrap().publish().unwrap();
        assert_eq!(next.version, "v000004");
    }

    #[test]
    fn a_running_writers_scratch_directory_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c");
        let versions = dir.join(VERSIONS_DIR);
        // pid 1 is always running; u32::MAX − 1 never is.
        let alive = versions.join(format!("{TMP_PREFIX}v000005-1"));
        let dead = versions.join(format!("{TMP_PREFIX}v000005-{}", u32::MAX - 1));
        for d in [&alive, &dead] {
            std::fs::create_dir_all(d).unwrap();
        }
        let _w = VersionWriter::begin_next(&dir).unwrap();
        assert!(alive.is_dir(), "another writer's scratch is kept");
        assert!(!dead.exists() || !Path::new("/proc/self").exists(), "a dead writer's scratch is cleared");
    }

    #[test]
    fn an_unfinished_version_never_replaces_the_current_one() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c");
        let published = stage(&dir, Metric::Cos).seal(manifest(Metric::Cos)).unwrap().publish().unwrap();
        assert_eq!(published.version, "v000001");
        assert!(published.files.contains_key(INDEX_FILE) && !published.files.contains_key(MANIFEST_FILE));

        // A second version dies half-written (never sealed): v000001 stays
        // current and verifies.
        let mut second = VersionWriter::begin_next(&dir).unwrap();
        second.write(SHOTS_FILE, b"[{\"half\":").unwrap();
        std::mem::forget(second);
        let current = OpenBundle::open_current(&dir, Verify::All).unwrap();
        assert_eq!(current.manifest, published);

        // The next writer clears the leftovers and takes the next number.
        let third = VersionWriter::begin_next(&dir).unwrap();
        assert_eq!(third.version(), "v000002");
        let versions = entries(&dir.join(VERSIONS_DIR));
        assert_eq!(versions.len(), 2, "{versions:?}");
        assert_eq!(versions[1], "v000001");
        assert!(versions[0].starts_with(".tmp-v000002-"), "only the new writer's scratch directory: {versions:?}");
    }

    #[test]
    fn no_writer_publishes_what_the_reader_cannot_load() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c");
        stage(&dir, Metric::Cos).seal(manifest(Metric::Cos)).unwrap().publish().unwrap();
        // The reader searches cos and ip indexes only.
        let err = stage(&dir, Metric::L2Squared).seal(manifest(Metric::L2Squared)).unwrap_err();
        assert!(matches!(err, WriteError::Unloadable { .. }), "{err}");
        assert!(err.to_string().contains("l2sq"), "{err}");
        // The manifest disagreeing with the index is refused too.
        let err = stage(&dir, Metric::InnerProduct).seal(manifest(Metric::Cos)).unwrap_err();
        assert!(err.to_string().contains("manifest says"), "{err}");
        assert_eq!(entries(&dir.join(VERSIONS_DIR)), ["v000001"], "refused versions leave nothing behind");
        assert_eq!(bundle::read_current(&dir).unwrap().as_deref(), Some("v000001"));
    }

    #[test]
    fn a_collection_directory_with_a_bad_name_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let err = VersionWriter::begin_next(&root.path().join("Bad Name")).unwrap_err();
        assert!(err.to_string().contains("Bad Name"), "{err}");
    }
}
