//! The per-collection work directory `<out>/<collection>/work/`: every
//! finished video's sampled timestamps, f16 frame embeddings and frame
//! thumbnails, so that re-runs index only new or changed videos and a run
//! killed at any moment resumes from the videos it had finished.
//!
//! A finished video is three files: `<id>-<hash12>.f16` (embeddings),
//! `<id>-<hash12>.jpgs` (concatenated JPEG thumbnails) and `<id>.json`
//! ([`FinishedVideo`]), written in that order, each atomically; the JSON is the
//! commit point, so a half-written video is simply not there. Re-segmenting
//! reads these files and never decodes again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use busca_core::error::IoAt;
use busca_core::bundle::write_file_atomic;
use busca_core::shot::{Transition, VideoRecord};
use serde::{Deserialize, Serialize};

/// Suffix of a finished video's record, the commit point of its other files
/// (so copies, like the S3 store's, move records last).
pub const RECORD_SUFFIX: &str = ".json";

pub use busca_core::bundle::WORK_DIR;

/// Suffixes of a finished video's data files (`<id>-<hash12><suffix>`).
const DATA_SUFFIXES: [&str; 2] = [".f16", ".jpgs"];

/// The video a work file belongs to, from its name alone: `<id>.json`,
/// `<id>-<hash12>.f16` or `<id>-<hash12>.jpgs` (a sharded worker keeps to its
/// own videos' files this way, in a folder and in a bucket alike). `None` for
/// any other name.
pub fn video_of(file_name: &str) -> Option<&str> {
    if let Some(id) = file_name.strip_suffix(RECORD_SUFFIX) {
        return (!id.is_empty() && !id.starts_with('.')).then_some(id);
    }
    let stem = DATA_SUFFIXES.iter().find_map(|suffix| file_name.strip_suffix(suffix))?;
    let (id, hash) = stem.rsplit_once('-')?;
    (!id.is_empty() && !id.starts_with('.') && !hash.is_empty() && hash.len() <= 12).then_some(id)
}

/// Where builds before the name was shared with the S3 store kept the work
/// directory; found there, it is renamed to [`WORK_DIR`].
const LEGACY_WORK_DIR: &str = ".work";

/// A finished video in the work directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedVideo {
    /// The video's record (id, source, duration, content hash, ...).
    pub record: VideoRecord,
    /// Sampled frame timestamps, in ms.
    pub t_ms: Vec<u64>,
    /// Embedding dimension.
    pub dim: usize,
    /// Model id the embeddings were made with.
    pub model_id: String,
    /// The embedding file, relative to the work directory.
    pub embeddings_file: String,
    /// The thumbnail file, relative to the work directory.
    pub thumbs_file: String,
    /// `(offset, length)` of each frame's JPEG in the thumbnail file.
    pub thumbs: Vec<(u64, u32)>,
    /// Index of each sampled frame among the video's displayed frames
    /// (empty in records written before frame-level detection).
    #[serde(default)]
    pub sample_frames: Vec<u64>,
    /// Displayed frames decoded (0 in those records).
    #[serde(default)]
    pub decoded_frames: u64,
    /// Cuts, dissolves and fades found on the frames (`None`: not looked for).
    #[serde(default)]
    pub transitions: Option<Vec<Transition>>,
}

impl FinishedVideo {
    /// The video's files in the work directory, in the order they must be
    /// copied: data files first, the record (the commit point) last.
    pub fn file_names(&self) -> [String; 3] {
        [
            self.embeddings_file.clone(),
            self.thumbs_file.clone(),
            format!("{}{RECORD_SUFFIX}", self.record.video_id),
        ]
    }
}

/// Why the work directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// An I/O error on a named path.
    #[error(transparent)]
    Io(#[from] IoAt),
    /// Writing failed (atomic write).
    #[error(transparent)]
    Bundle(#[from] busca_core::BundleError),
    /// A stored file does not match its record.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The work directory of one collection.
#[derive(Debug, Clone)]
pub struct WorkStore {
    dir: PathBuf,
}

impl WorkStore {
    /// Opens (creating) `<collection_dir>/work`, moving a legacy `.work`
    /// there first so that its videos are not decoded again.
    pub fn open(collection_dir: &Path) -> Result<Self, WorkError> {
        let dir = collection_dir.join(WORK_DIR);
        let legacy = collection_dir.join(LEGACY_WORK_DIR);
        if legacy.is_dir() && !dir.exists() {
            std::fs::rename(&legacy, &dir).map_err(IoAt::at(&legacy))?;
            tracing::info!("moved the work directory {} to {}", legacy.display(), dir.display());
        }
        std::fs::create_dir_all(&dir).map_err(IoAt::at(&dir))?;
        Ok(WorkStore { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every finished video, by video id. Records that cannot be read are
    /// reported and left out (their videos will be indexed again).
    pub fn load_all(&self) -> Result<BTreeMap<String, FinishedVideo>, WorkError> {
        let mut out = BTreeMap::new();
        let entries = std::fs::read_dir(&self.dir).map_err(IoAt::at(&self.dir))?;
        for entry in entries {
            let entry = entry.map_err(IoAt::at(&self.dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(RECORD_SUFFIX) || name.starts_with('.') {
                continue;
            }
            match self.read_record(&path) {
                Ok(record) => {
                    out.insert(record.record.video_id.clone(), record);
                }
                Err(e) => tracing::warn!("ignoring unreadable work record: {e}"),
            }
        }
        Ok(out)
    }

    fn read_record(&self, path: &Path) -> Result<FinishedVideo, WorkError> {
        let bytes = std::fs::read(path).map_err(IoAt::at(path))?;
        let record: FinishedVideo = serde_json::from_slice(&bytes).map_err(|e| WorkError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let emb = self.dir.join(&record.embeddings_file);
        let expected = (record.t_ms.len() * record.dim * 2) as u64;
        let found = std::fs::metadata(&emb).map(|m| m.len()).unwrap_or(u64::MAX);
        if found != expected || record.thumbs.len() != record.t_ms.len() {
            return Err(WorkError::Corrupt {
                path: emb,
                reason: format!("expected {expected} bytes for {} frames", record.t_ms.len()),
            });
        }
        Ok(record)
    }

    /// Stores a finished video: data files first, the record last.
    pub fn save(
        &self,
        mut record: FinishedVideo,
        embeddings_f16: &[u8],
        thumbs: &[Vec<u8>],
    ) -> Result<FinishedVideo, WorkError> {
        let id = &record.record.video_id;
        let stem = format!("{id}-{}", &record.record.content_sha256[..12.min(record.record.content_sha256.len())]);
        record.embeddings_file = format!("{stem}.f16");
        record.thumbs_file = format!("{stem}.jpgs");
        let mut blob = Vec::with_capacity(thumbs.iter().map(Vec::len).sum());
        record.thumbs = thumbs
            .iter()
            .map(|t| {
                let entry = (blob.len() as u64, t.len() as u32);
                blob.extend_from_slice(t);
                entry
            })
            .collect();
        write_file_atomic(&self.dir.join(&record.embeddings_file), embeddings_f16)?;
        busca_core::crash::point("work.embeddings");
        write_file_atomic(&self.dir.join(&record.thumbs_file), &blob)?;
        busca_core::crash::point("work.thumbs");
        let json = serde_json::to_vec(&record).expect("work record serialises");
        write_file_atomic(&self.dir.join(format!("{id}{RECORD_SUFFIX}")), &json)?;
        busca_core::crash::point("work.record");
        Ok(record)
    }

    /// The f16 embeddings of a finished video, as f32.
    pub fn embeddings(&self, record: &FinishedVideo) -> Result<Vec<f32>, WorkError> {
        let path = self.dir.join(&record.embeddings_file);
        let bytes = std::fs::read(&path).map_err(IoAt::at(&path))?;
        let values = busca_core::vector::f16_bytes_to_f32(&bytes).ok_or_else(|| WorkError::Corrupt {
            path: path.clone(),
            reason: "odd length".into(),
        })?;
        if values.len() != record.t_ms.len() * record.dim {
            return Err(WorkError::Corrupt {
                path,
                reason: format!("{} values for {} frames × {}", values.len(), record.t_ms.len(), record.dim),
            });
        }
        Ok(values)
    }

    /// The thumbnail file of a finished video, whole.
    pub fn thumbs(&self, record: &FinishedVideo) -> Result<Vec<u8>, WorkError> {
        let path = self.dir.join(&record.thumbs_file);
        Ok(std::fs::read(&path).map_err(IoAt::at(&path))?)
    }

    /// Removes data files no record on disk refers to (left by replaced videos
    /// or by a run killed between the data files and the record), among the
    /// videos `owned` accepts: workers sharing a work directory each clean
    /// only their own videos, never a file another worker is about to commit.
    /// Records made with another model keep their files.
    pub fn remove_orphans(&self, owned: &dyn Fn(&str) -> bool) -> Result<(), WorkError> {
        let records = self.load_all()?;
        let live: std::collections::BTreeSet<&str> = records
            .values()
            .flat_map(|r| [r.embeddings_file.as_str(), r.thumbs_file.as_str()])
            .collect();
        for entry in std::fs::read_dir(&self.dir).map_err(IoAt::at(&self.dir))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            let video = if name.starts_with('.') && name.contains(".tmp-") {
                // `.<file>.tmp-<pid>`, left by a killed write.
                name[1..].split(".tmp-").next().and_then(video_of)
            } else {
                video_of(&name).filter(|_| !name.ends_with(RECORD_SUFFIX))
            };
            let Some(video) = video else { continue };
            if owned(video) && !live.contains(name.as_str()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, sha: &str, frames: usize) -> FinishedVideo {
        FinishedVideo {
            record: VideoRecord {
                video_id: id.into(),
                source_uri: format!("/videos/{id}.mp4"),
                duration_ms: 1000,
                content_sha256: sha.into(),
                sampled_fps: 2.0,
                frames: frames as u32,
                width: 320,
                height: 240,
                sampling: None,
            },
            t_ms: (0..frames as u64).map(|i| i * 500).collect(),
            dim: 2,
            model_id: "m".into(),
            embeddings_file: String::new(),
            thumbs_file: String::new(),
            thumbs: Vec::new(),
            sample_frames: Vec::new(),
            decoded_frames: 0,
            transitions: None,
        }
    }

    #[test]
    fn saved_videos_load_back_and_replacements_leave_no_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let store = WorkStore::open(dir.path()).unwrap();
        let values = [0.5f32, 0.75, 1.0, 0.0]; // exact in f16
        let bytes = busca_core::vector::f32_to_f16_bytes(&values);
        let thumbs = vec![b"jpeg-1".to_vec(), b"jpeg-22".to_vec()];
        store.save(record("a", "aaaaaaaaaaaaaaaa", 2), &bytes, &thumbs).unwrap();
        let loaded = store.load_all().unwrap();
        let a = &loaded["a"];
        assert_eq!(store.embeddings(a).unwrap(), values);
        let blob = store.thumbs(a).unwrap();
        let (offset, len) = a.thumbs[1];
        assert_eq!(&blob[offset as usize..(offset + len as u64) as usize], b"jpeg-22");

        // New content for the same video: the old files become orphans.
        store.save(record("a", "bbbbbbbbbbbbbbbb", 2), &bytes, &thumbs).unwrap();
        store.remove_orphans(&|_| true).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(store.dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["a-bbbbbbbbbbbb.f16", "a-bbbbbbbbbbbb.jpgs", "a.json"]);
    }

    #[test]
    fn work_files_name_their_video() {
        assert_eq!(video_of("news_1987-a.json"), Some("news_1987-a"));
        assert_eq!(video_of("news_1987-a-0123456789ab.f16"), Some("news_1987-a"));
        assert_eq!(video_of("clip-0123456789ab.jpgs"), Some("clip"));
        assert_eq!(video_of(".clip.json.tmp-12"), None);
        assert_eq!(video_of("clip.f16"), None, "a data file carries its content hash");
        assert_eq!(video_of("notes.txt"), None);
        let record = record("a-b", "0123456789abcdef", 1);
        let dir = tempfile::tempdir().unwrap();
        let saved = WorkStore::open(dir.path()).unwrap().save(record, &[0; 4], &[vec![1]]).unwrap();
        for name in saved.file_names() {
            assert_eq!(video_of(&name), Some("a-b"), "{name}");
        }
    }

    #[test]
    fn orphans_of_other_workers_videos_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = WorkStore::open(dir.path()).unwrap();
        // Data files whose records are not written yet: one of ours, one of
        // another worker's, and a killed write of ours.
        for name in ["mine-aaaaaaaaaaaa.f16", "theirs-bbbbbbbbbbbb.f16", ".mine-aaaaaaaaaaaa.jpgs.tmp-7"] {
            std::fs::write(store.dir().join(name), b"x").unwrap();
        }
        store.remove_orphans(&|video| video == "mine").unwrap();
        let names: Vec<String> =
            std::fs::read_dir(store.dir()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, vec!["theirs-bbbbbbbbbbbb.f16"]);
    }

    #[test]
    fn a_legacy_work_directory_is_moved_and_its_videos_reused() {
        let dir = tempfile::tempdir().unwrap();
        let old = WorkStore { dir: dir.path().join(LEGACY_WORK_DIR) };
        std::fs::create_dir_all(old.dir()).unwrap();
        let bytes = busca_core::vector::f32_to_f16_bytes(&[0.6, 0.8, 1.0, 0.0]);
        old.save(record("a", "aaaaaaaaaaaaaaaa", 2), &bytes, &[vec![1], vec![2]]).unwrap();
        let store = WorkStore::open(dir.path()).unwrap();
        assert_eq!(store.dir(), dir.path().join("work"));
        assert!(!dir.path().join(LEGACY_WORK_DIR).exists());
        assert_eq!(store.load_all().unwrap().keys().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn a_record_whose_data_is_short_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = WorkStore::open(dir.path()).unwrap();
        let bytes = busca_core::vector::f32_to_f16_bytes(&[0.6, 0.8, 1.0, 0.0]);
        let saved = store.save(record("a", "aaaaaaaaaaaaaaaa", 2), &bytes, &[vec![1], vec![2]]).unwrap();
        std::fs::write(store.dir().join(&saved.embeddings_file), &bytes[..4]).unwrap();
        assert!(store.load_all().unwrap().is_empty(), "the video will be indexed again");
    }
}
