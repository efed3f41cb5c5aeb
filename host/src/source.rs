//! Where the served bundles come from: a local folder, or an S3 bundles root
//! mirrored into a local folder (busca-s3's verified mirror). Either way the
//! component sees a local tree at `/bundles`, and [`BundleSource::refresh`]
//! tells when a collection's `CURRENT` moved so the server can switch to a
//! new snapshot without a restart.

use std::path::{Path, PathBuf};

use busca_core::bundle;
use busca_s3::{BundleBucket, ConnectOptions, Location, Mirror};

use crate::error::HostError;

/// An opened bundle source.
pub enum BundleSource {
    /// Served in place.
    Folder(PathBuf),
    /// Mirrored from S3 into a local folder.
    S3(Mirror),
}

impl BundleSource {
    /// Opens the location; for S3, connects (a missing bucket or refused
    /// credentials fail here) and makes the first mirror.
    pub async fn open(
        location: &Location,
        connect: &ConnectOptions,
        mirror_dir: Option<&Path>,
    ) -> Result<BundleSource, HostError> {
        match location {
            Location::Folder(dir) => {
                if !dir.is_dir() {
                    return Err(HostError::NotADirectory(dir.clone()));
                }
                Ok(BundleSource::Folder(dir.clone()))
            }
            Location::S3(url) => {
                let bucket = BundleBucket::connect(url.clone(), connect).await?;
                let root = mirror_dir
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| url.local_cache_dir("s3-mirror"));
                std::fs::create_dir_all(&root).map_err(HostError::io(&root))?;
                let mirror = Mirror::new(bucket, root);
                mirror.sync().await?;
                Ok(BundleSource::S3(mirror))
            }
        }
    }

    /// The local bundles root the component reads.
    pub fn local_root(&self) -> &Path {
        match self {
            BundleSource::Folder(dir) => dir,
            BundleSource::S3(mirror) => mirror.root(),
        }
    }

    /// Brings new versions in (S3: one conditional GET per collection) and
    /// returns the state key of the local tree: it changes exactly when some
    /// collection's `CURRENT` does.
    pub async fn refresh(&self) -> Result<String, HostError> {
        if let BundleSource::S3(mirror) = self {
            // A failed sync leaves the previous versions in place; the next
            // poll tries again.
            if let Err(e) = mirror.sync().await {
                tracing::warn!("cannot refresh bundles from {}: {e}", mirror.bucket().url());
            }
        }
        state_key(self.local_root())
    }
}

/// `(collection, version CURRENT names)` of every published collection under `root`.
pub fn current_versions(root: &Path) -> Result<Vec<(String, String)>, HostError> {
    let mut out = Vec::new();
    for collection in bundle::list_collections(root)? {
        let dir = root.join(&collection);
        let version = bundle::read_current(&dir)?.unwrap_or_default();
        out.push((collection, version));
    }
    Ok(out)
}

/// `collection=version;...` of every published collection under `root`.
pub fn state_key(root: &Path) -> Result<String, HostError> {
    Ok(current_versions(root)?
        .iter()
        .map(|(collection, version)| format!("{collection}={version};"))
        .collect())
}
