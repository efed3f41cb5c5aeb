//! The index bundle: what the indexer publishes and the edge loads.
//!
//! ```text
//! <root>/<collection>/CURRENT                 one line: the current version, e.g. "v000003"
//! <root>/<collection>/versions/v000003/
//!     manifest.json        BundleManifest: format version, model, index options, counts, sha256 of every file
//!     shots.json           [ShotRecord]   (row i is usearch key shot_id)
//!     scenes.json          [SceneRecord]
//!     videos.json          [VideoRecord]
//!     shots.usearch        usearch index of the normalised shot embeddings
//!     map.json             2-D projection of the shot embeddings for the semantic map
//!     timelines/<video>.json + timelines/<video>.f16   per-video frames and their f16 embeddings
//!     keyframes/<shot_id>.jpg
//! ```
//!
//! A version directory is immutable once written. Publishing writes a new
//! version beside the old ones and only then replaces `CURRENT` atomically
//! (temporary file, fsync, rename), so a crash at any moment leaves the previous
//! version current and whole. Readers check the format version and the sha256 of
//! every file listed in the manifest, and say what to do when they do not match.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::IoAt;
use crate::model::ModelManifest;
use crate::usearch_file::{Metric, ScalarKind};

/// Format version written by this build.
pub const FORMAT_VERSION: u32 = 1;
/// Oldest format version this build still reads.
pub const OLDEST_SUPPORTED_FORMAT_VERSION: u32 = 1;

/// Pointer file naming the current version of a collection.
pub const CURRENT_FILE: &str = "CURRENT";
/// Directory of a collection that holds its versions.
pub const VERSIONS_DIR: &str = "versions";
/// The manifest inside a version directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Shot table: a JSON array of [`crate::shot::ShotRecord`].
pub const SHOTS_FILE: &str = "shots.json";
/// Scene table: a JSON array of [`crate::shot::SceneRecord`].
pub const SCENES_FILE: &str = "scenes.json";
/// Video table: a JSON array of [`crate::shot::VideoRecord`].
pub const VIDEOS_FILE: &str = "videos.json";
/// The usearch index of shot embeddings.
pub const INDEX_FILE: &str = "shots.usearch";
/// The 2-D semantic map: a JSON array of [`MapPoint`].
pub const MAP_FILE: &str = "map.json";
/// Directory of per-video timelines and frame embeddings.
pub const TIMELINES_DIR: &str = "timelines";
/// Directory of keyframe thumbnails.
pub const KEYFRAMES_DIR: &str = "keyframes";
/// Directory of the files a model needs at query time beside its graphs
/// (tokenizer files of [`crate::model::HF_TOKENIZER_JSON`] text towers).
pub const MODEL_DIR: &str = "model";

/// Where a text tower's tokenizer file lives inside a version.
pub fn tokenizer_rel(file: &str) -> String {
    format!("{MODEL_DIR}/{file}")
}

/// The indexer's per-video work records (frame timestamps, embeddings,
/// thumbnails), beside `versions/` in a collection's folder and under the
/// same name in a bucket. Never part of a version.
pub const WORK_DIR: &str = "work";

/// The manifest of one bundle version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleManifest {
    /// Bundle format version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// Collection name.
    pub collection: String,
    /// Version name, e.g. `v000003`.
    pub version: String,
    /// When the version was written (Unix ms).
    pub created_unix_ms: u64,
    /// The model the embeddings were made with; queries must use the same.
    pub model: ModelManifest,
    /// How the shot index was built.
    pub index: IndexOptions,
    /// The semantic analysis parameters that produced the shots.
    pub segmentation: SegmentationParams,
    /// Sizes of the tables.
    pub counts: Counts,
    /// The largest distance, in ms, between a point of any video's sampling
    /// grid and the sampled frame nearest to it ([`crate::shot::Sampling`]):
    /// under a frame's duration when every frame is decoded. Absent in
    /// bundles written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sample_offset_ms: Option<u32>,
    /// Every file of the version (relative path → size and sha256).
    pub files: BTreeMap<String, FileEntry>,
}

/// Every usearch option that changes the file, recorded rather than defaulted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexOptions {
    /// Index file, relative to the version directory.
    pub file: String,
    /// Vector dimension.
    pub dimensions: usize,
    /// Distance metric (`cos`: vectors are normalised, score = 1 − distance).
    pub metric: Metric,
    /// Scalar kind of the stored vectors (`f32`, `f16`, `i8`).
    pub quantization: ScalarKind,
    /// HNSW connectivity (M).
    pub connectivity: usize,
    /// HNSW expansion at construction.
    pub expansion_add: usize,
    /// HNSW expansion at search.
    pub expansion_search: usize,
}

impl IndexOptions {
    /// The options every published bundle uses unless told otherwise: cosine
    /// on normalised vectors, HNSW M = 16, expansion 128 at construction and
    /// 64 at search. f16 storage is the indexer's default (half the size of
    /// f32, recall unchanged at 768-d, see indexer/README.md).
    pub fn new(dimensions: usize, quantization: ScalarKind) -> Self {
        IndexOptions {
            file: INDEX_FILE.into(),
            dimensions,
            metric: Metric::Cos,
            quantization,
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 64,
        }
    }
}

/// Parameters of the semantic analysis, written into every manifest so that a
/// bundle says how its shots were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentationParams {
    /// Frames sampled per second of video.
    pub sample_fps: f32,
    /// Clustering algorithm for semantic classes.
    pub class_algorithm: String,
    /// Number of semantic classes asked for (or the maximum).
    pub classes: usize,
    /// Shorter class runs are merged into their neighbours.
    pub min_scene_ms: u64,
    /// A frame whose cosine similarity to the running shot mean falls below
    /// this starts a new shot.
    pub shot_similarity: f32,
    /// Shots shorter than this are merged into a neighbour.
    pub min_shot_ms: u64,
    /// A transition found on the decoded frames where the semantic shots have
    /// no boundary starts a new shot when the sampled frames either side of
    /// it are less similar than this (cosine). Manifests written before
    /// frame-level detection have no such field.
    #[serde(default = "default_cut_similarity")]
    pub cut_similarity: f32,
    /// Seed of every random choice, so results are reproducible.
    pub seed: u64,
}

/// The default of [`SegmentationParams::cut_similarity`].
pub fn default_cut_similarity() -> f32 {
    0.95
}

/// Table sizes of a bundle version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Videos indexed.
    pub videos: usize,
    /// Frames sampled and embedded.
    pub frames: usize,
    /// Semantic classes.
    pub classes: usize,
    /// Semantic scenes.
    pub scenes: usize,
    /// Semantic shots (= vectors in the index).
    pub shots: usize,
}

/// One file of a bundle version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex sha256.
    pub sha256: String,
}

/// A point of the semantic map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapPoint {
    /// The shot.
    pub shot_id: u64,
    /// Horizontal coordinate, in `[0, 1]`.
    pub x: f32,
    /// Vertical coordinate, in `[0, 1]`.
    pub y: f32,
    /// The shot's semantic class (colours the point).
    pub class_id: u32,
}

/// Why a bundle could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// An I/O error on a named path.
    #[error(transparent)]
    Io(#[from] IoAt),
    /// The collection has no `CURRENT` pointer: nothing was published yet.
    #[error("{dir} has no published version (no {CURRENT_FILE} file); run the indexer first")]
    NoCurrentVersion {
        /// The collection directory.
        dir: PathBuf,
    },
    /// A JSON file is malformed.
    #[error("{path} is malformed: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The bundle was written by an incompatible build.
    #[error(
        "{path} has bundle format {found}, this build reads {OLDEST_SUPPORTED_FORMAT_VERSION} to {FORMAT_VERSION}; re-index the collection with this build"
    )]
    IncompatibleFormat {
        /// The manifest.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// A file's content does not match the manifest.
    #[error("{path} is corrupt: sha256 {found} but the manifest says {expected}; re-publish the bundle")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// sha256 in the manifest.
        expected: String,
        /// sha256 of the file.
        found: String,
    },
    /// Another publisher made its version current after this one started.
    #[error(
        "{dir}: another publisher made {found} current while {version} was written on top of {base}; \
         {version} stays beside it, not current: run the indexer again to publish on top of {found}"
    )]
    Conflict {
        /// The collection directory.
        dir: PathBuf,
        /// The version this publisher wrote.
        version: String,
        /// The version it started from.
        base: String,
        /// The version `CURRENT` names now (the winner's).
        found: String,
    },
    /// Another publisher is switching `CURRENT` and did not finish in time.
    #[error("{path} is held ({holder}); another publisher is switching the collection's version")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// A name is not acceptable (collections, versions, relative paths).
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// What kind of name.
        what: &'static str,
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |e| BundleError::Io(IoAt::at(path)(e))
}

/// Checks a collection name: 1 to 64 of `a-z 0-9 _ -`, not starting with `-`.
/// Collection names become directory names and URL segments, so nothing else.
pub fn validate_collection_name(name: &str) -> Result<(), BundleError> {
    let bad = |reason| BundleError::InvalidName {
        what: "collection name",
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.len() > 64 {
        return Err(bad("must be 1 to 64 characters"));
    }
    if name.starts_with('-') {
        return Err(bad("must not start with '-'"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(bad("only lowercase letters, digits, '_' and '-'"));
    }
    Ok(())
}

/// The name of version number `n`: `v000001`. Names sort like numbers.
pub fn version_name(n: u32) -> String {
    format!("v{n:06}")
}

/// The number of a version name, if it is one.
pub fn parse_version_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix('v')?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Directory of version `version` of the collection at `collection_dir`.
pub fn version_dir(collection_dir: &Path, version: &str) -> PathBuf {
    collection_dir.join(VERSIONS_DIR).join(version)
}

/// The version `CURRENT` names, or `None` if nothing was published.
pub fn read_current(collection_dir: &Path) -> Result<Option<String>, BundleError> {
    let path = collection_dir.join(CURRENT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let version = text.trim();
    if parse_version_name(version).is_none() {
        return Err(BundleError::InvalidName {
            what: "version in CURRENT",
            name: version.to_string(),
            reason: "expected v followed by at least six digits",
        });
    }
    Ok(Some(version.to_string()))
}

/// Every version directory of a collection, oldest first.
pub fn list_versions(collection_dir: &Path) -> Result<Vec<String>, BundleError> {
    let dir = collection_dir.join(VERSIONS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let mut versions: Vec<(u32, String)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&dir))?;
        if let Some(name) = entry.file_name().to_str() {
            if let Some(n) = parse_version_name(name) {
                versions.push((n, name.to_string()));
            }
        }
    }
    versions.sort();
    Ok(versions.into_iter().map(|(_, name)| name).collect())
}

/// The collections under `root` that have a published version, sorted.
pub fn list_collections(root: &Path) -> Result<Vec<String>, BundleError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io_err(root))? {
        let entry = entry.map_err(io_err(root))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if validate_collection_name(&name).is_ok() && entry.path().join(CURRENT_FILE).is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Writes `bytes` to `path` so that readers see the old content or the new,
/// never a mix: a temporary file in the same directory, fsync, rename, fsync of
/// the directory.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        // A full disk must not keep the partial file taking space.
        let _ = std::fs::remove_file(&tmp);
        return Err(BundleError::Io(IoAt::writing(&tmp, bytes.len() as u64)(e)));
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir);
    Ok(())
}

/// Makes `version` the current version of the collection, atomically.
pub fn switch_current(collection_dir: &Path, version: &str) -> Result<(), BundleError> {
    if parse_version_name(version).is_none() {
        return Err(BundleError::InvalidName {
            what: "version",
            name: version.to_string(),
            reason: "expected v followed by at least six digits",
        });
    }
    write_file_atomic(&collection_dir.join(CURRENT_FILE), format!("{version}\n").as_bytes())
}

/// Best-effort fsync of a directory so that a rename inside it is durable.
/// Not every platform can open a directory (wasm hosts, Windows): then skip.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Size and sha256 of a file, streaming.
pub fn hash_file(path: &Path) -> Result<FileEntry, BundleError> {
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileEntry {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// sha256 of bytes in memory, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks a manifest-relative path: no absolute paths, no `..`, no backslashes.
pub fn validate_relative_path(rel: &str) -> Result<(), BundleError> {
    let bad = |reason| BundleError::InvalidName {
        what: "bundle file path",
        name: rel.to_string(),
        reason,
    };
    if rel.is_empty() || rel.starts_with('/') || rel.contains('\\') {
        return Err(bad("must be a relative path with '/' separators"));
    }
    if rel.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return Err(bad("must not contain empty, '.' or '..' segments"));
    }
    Ok(())
}

/// How much of a bundle to check when opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Every file listed in the manifest.
    All,
    /// The files search needs (tables, index, map); keyframes and timelines are
    /// checked when read.
    SearchFiles,
}

/// A bundle version opened for reading: its directory and checked manifest.
#[derive(Debug, Clone)]
pub struct OpenBundle {
    /// The version directory.
    pub dir: PathBuf,
    /// The manifest, format and checksums checked.
    pub manifest: BundleManifest,
}

impl OpenBundle {
    /// Opens the version `CURRENT` names.
    pub fn open_current(collection_dir: &Path, verify: Verify) -> Result<Self, BundleError> {
        let version = read_current(collection_dir)?.ok_or_else(|| BundleError::NoCurrentVersion {
            dir: collection_dir.to_path_buf(),
        })?;
        Self::open_version_dir(&version_dir(collection_dir, &version), verify)
    }

    /// Opens one version directory.
    pub fn open_version_dir(dir: &Path, verify: Verify) -> Result<Self, BundleError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        // Read the format version first so that a future format with other
        // fields gets "incompatible format", not a confusing parse error.
        #[derive(Deserialize)]
        struct FormatOnly {
            format_version: u32,
        }
        let format: FormatOnly = serde_json::from_slice(&bytes).map_err(|source| BundleError::Parse {
            path: path.clone(),
            source,
        })?;
        if !(OLDEST_SUPPORTED_FORMAT_VERSION..=FORMAT_VERSION).contains(&format.format_version) {
            return Err(BundleError::IncompatibleFormat {
                path,
                found: format.format_version,
            });
        }
        let manifest: BundleManifest =
            serde_json::from_slice(&bytes).map_err(|source| BundleError::Parse {
                path: path.clone(),
                source,
            })?;
        let bundle = OpenBundle {
            dir: dir.to_path_buf(),
            manifest,
        };
        bundle.verify(verify)?;
        Ok(bundle)
    }

    /// Checks the listed files' sha256 against the manifest.
    pub fn verify(&self, verify: Verify) -> Result<(), BundleError> {
        for (rel, expected) in &self.manifest.files {
            validate_relative_path(rel)?;
            let is_lazy = rel.starts_with(KEYFRAMES_DIR) || rel.starts_with(TIMELINES_DIR);
            if verify == Verify::SearchFiles && is_lazy {
                continue;
            }
            self.verify_file(rel, expected)?;
        }
        Ok(())
    }

    fn verify_file(&self, rel: &str, expected: &FileEntry) -> Result<(), BundleError> {
        let path = self.dir.join(rel);
        let found = hash_file(&path)?;
        if found.sha256 != expected.sha256 {
            return Err(BundleError::Checksum {
                path,
                expected: expected.sha256.clone(),
                found: found.sha256,
            });
        }
        Ok(())
    }

    /// Reads a file of the bundle, checking its sha256 against the manifest.
    pub fn read_checked(&self, rel: &str) -> Result<Vec<u8>, BundleError> {
        validate_relative_path(rel)?;
        let path = self.dir.join(rel);
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        let Some(expected) = self.manifest.files.get(rel) else {
            return Err(BundleError::InvalidName {
                what: "bundle file",
                name: rel.to_string(),
                reason: "not listed in the manifest",
            });
        };
        let found = sha256_hex(&bytes);
        if found != expected.sha256 {
            return Err(BundleError::Checksum {
                path,
                expected: expected.sha256.clone(),
                found,
            });
        }
        Ok(bytes)
    }

    /// Reads and parses a JSON table of the bundle.
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, rel: &str) -> Result<T, BundleError> {
        let bytes = self.read_checked(rel)?;
        serde_json::from_slice(&bytes).map_err(|source| BundleError::Parse {
            path: self.dir.join(rel),
            source,
        })
    }
}

/// Lists every file under `dir` (relative, `/`-separated) with size and sha256,
/// except the manifest itself: the `files` map of a manifest being written.
pub fn hash_tree(dir: &Path) -> Result<BTreeMap<String, FileEntry>, BundleError> {
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut BTreeMap<String, FileEntry>,
    ) -> Result<(), BundleError> {
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(io_err(&path))?;
            if file_type.is_dir() {
                walk(root, &path, out)?;
            } else if file_type.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .expect("walked path is under its root")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                if rel != MANIFEST_FILE {
                    out.insert(rel, hash_file(&path)?);
                }
            }
        }
        Ok(())
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files)?;
    Ok(files)
}
