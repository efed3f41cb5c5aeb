//! Source videos for playback: `GET /media/{collection}/{video_id}` serves the
//! file a bundle's `videos.json` names, with HTTP Range requests (seeking in a
//! `<video>` element) answered by tower-http's `ServeFile`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use busca_core::bundle::{self, OpenBundle, Verify, VIDEOS_FILE};
use busca_core::shot::VideoRecord;

use crate::error::HostError;

/// Route prefix of the media endpoint.
pub const MEDIA_PREFIX: &str = "/media/";

/// (collection, video id) → source file, from each collection's current bundle.
#[derive(Debug, Clone, Default)]
pub struct MediaIndex {
    files: HashMap<(String, String), PathBuf>,
}

impl MediaIndex {
    /// Reads `videos.json` of every published collection under `bundles`.
    /// Only local files are served; other URIs are skipped.
    pub fn load(bundles: &Path) -> Result<Self, HostError> {
        let mut files = HashMap::new();
        for collection in bundle::list_collections(bundles)? {
            let dir = bundles.join(&collection);
            let open = OpenBundle::open_current(&dir, Verify::SearchFiles)?;
            let videos: Vec<VideoRecord> = open
                .read_json(VIDEOS_FILE)?;
            for video in videos {
                let source = video
                    .source_uri
                    .strip_prefix("file://")
                    .unwrap_or(&video.source_uri);
                if source.contains("://") {
                    continue;
                }
                files.insert((collection.clone(), video.video_id), PathBuf::from(source));
            }
        }
        Ok(MediaIndex { files })
    }

    /// The file of a video, if the path is `/media/{collection}/{video_id}` of a known one.
    pub fn lookup(&self, path: &str) -> Option<&Path> {
        let rest = path.strip_prefix(MEDIA_PREFIX)?;
        let (collection, video_id) = rest.split_once('/')?;
        let video_id = percent_decode(video_id)?;
        self.files
            .get(&(collection.to_string(), video_id))
            .map(PathBuf::as_path)
    }

    /// Number of playable videos.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no video is playable.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Decodes `%XX` escapes (video ids come from file paths and may hold spaces).
fn percent_decode(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_decodes_ids_and_rejects_unknown_paths() {
        let mut index = MediaIndex::default();
        index.files.insert(
            ("demo".into(), "a b.mp4".into()),
            PathBuf::from("/videos/a b.mp4"),
        );
        assert_eq!(
            index.lookup("/media/demo/a%20b.mp4"),
            Some(Path::new("/videos/a b.mp4"))
        );
        assert_eq!(index.lookup("/media/demo/other.mp4"), None);
        assert_eq!(index.lookup("/media/news/a%20b.mp4"), None);
        assert_eq!(index.lookup("/media/demo/%FF"), None);
        assert_eq!(index.lookup("/api/search"), None);
    }
}
