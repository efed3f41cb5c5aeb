//! A local, verified copy of every collection's current version, for servers
//! that read bundles from disk (the host preopens it for the component).
//!
//! [`Mirror::sync`] costs one LIST and one conditional GET of each `CURRENT`
//! per call (a 304 without body when nothing changed), so it can run every few
//! seconds. A new version is downloaded whole and checked against its manifest
//! into its own directory before the local `CURRENT` is switched: the local
//! tree has the same guarantees as the bucket. Older local versions are kept
//! for requests still in flight, then pruned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use busca_core::bundle::{self, list_versions, parse_version_name, switch_current, version_dir};

use crate::bundles::BundleBucket;
use crate::S3Error;

/// Local versions kept per collection (the current one and those before it),
/// so that requests still running on an older snapshot find their files.
pub const LOCAL_VERSIONS_KEPT: usize = 3;

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncOutcome {
    /// `(collection, version)` made current locally by this sync.
    pub switched: Vec<(String, String)>,
}

/// The mirror of one bundles root.
#[derive(Debug)]
pub struct Mirror {
    bucket: BundleBucket,
    root: PathBuf,
    etags: Mutex<HashMap<String, String>>,
}

impl Mirror {
    /// A mirror of `bucket` in local `root` (created on first sync).
    pub fn new(bucket: BundleBucket, root: impl Into<PathBuf>) -> Mirror {
        Mirror {
            bucket,
            root: root.into(),
            etags: Mutex::new(HashMap::new()),
        }
    }

    /// The local bundles root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The bucket mirrored.
    pub fn bucket(&self) -> &BundleBucket {
        &self.bucket
    }

    /// Brings every collection's current version here. A collection that
    /// fails (a version pruned mid-download, a corrupt file) keeps its
    /// previous local version and the error is returned after the others
    /// are synced.
    pub async fn sync(&self) -> Result<SyncOutcome, S3Error> {
        let mut outcome = SyncOutcome::default();
        let mut first_error = None;
        for collection in self.bucket.list_collections().await? {
            match self.sync_collection(&collection).await {
                Ok(Some(version)) => outcome.switched.push((collection, version)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("cannot mirror {collection} from {}: {e}", self.bucket.url());
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if outcome.switched.is_empty() => Err(e),
            _ => Ok(outcome),
        }
    }

    async fn sync_collection(&self, collection: &str) -> Result<Option<String>, S3Error> {
        let known = self.etags.lock().expect("etag map").get(collection).cloned();
        let Some(Some(pointer)) = self.bucket.current_if_changed(collection, known.as_deref()).await? else {
            return Ok(None);
        };
        let dir = self.root.join(collection);
        let local_current = bundle::read_current(&dir).ok().flatten();
        let switched = if local_current.as_deref() == Some(pointer.version.as_str()) {
            None
        } else {
            let dest = version_dir(&dir, &pointer.version);
            if !dest.join(bundle::MANIFEST_FILE).is_file() {
                let started = std::time::Instant::now();
                let manifest = self
                    .bucket
                    .download_version(collection, &pointer.version, &dest)
                    .await?;
                tracing::info!(
                    "mirrored {collection} {} ({} files) in {} ms",
                    pointer.version,
                    manifest.files.len(),
                    started.elapsed().as_millis()
                );
            }
            switch_current(&dir, &pointer.version)?;
            self.prune_local(&dir, &pointer.version);
            Some(pointer.version.clone())
        };
        if let Some(etag) = pointer.etag {
            self.etags
                .lock()
                .expect("etag map")
                .insert(collection.to_string(), etag);
        }
        Ok(switched)
    }

    fn prune_local(&self, dir: &Path, current: &str) {
        let Ok(versions) = list_versions(dir) else { return };
        let current_n = parse_version_name(current).unwrap_or(0);
        let mut older: Vec<&String> = versions
            .iter()
            .filter(|v| parse_version_name(v).unwrap_or(0) < current_n)
            .collect();
        older.sort_by_key(|v| std::cmp::Reverse(parse_version_name(v)));
        for version in older.into_iter().skip(LOCAL_VERSIONS_KEPT - 1) {
            let path = version_dir(dir, version);
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }
}
