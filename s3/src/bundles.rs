//! The bundle layout in a bucket: the `CURRENT` pointer, immutable version
//! prefixes, uploads that write the manifest after every file and the pointer
//! after the manifest, pruning that never touches what the pointer names, and
//! downloads checked against the manifest's sha256 of every file.

use std::collections::BTreeSet;
use std::path::Path;

use busca_core::bundle::{
    self, parse_version_name, validate_collection_name, validate_relative_path, BundleManifest, CURRENT_FILE,
    MANIFEST_FILE, VERSIONS_DIR,
};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::connect::{ConnectOptions, S3Client};
use crate::objects::{Precondition, Transfer};
use crate::{S3Error, S3Url};

/// The indexer's per-video frame cache lives beside the versions, under the
/// name it has in a folder.
pub use busca_core::bundle::WORK_DIR;

/// What `CURRENT` says, with the object's ETag for cheap polling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    /// The version it names.
    pub version: String,
    /// The object's ETag (changes whenever the pointer is rewritten).
    pub etag: Option<String>,
}

/// A bundles root in a bucket.
#[derive(Debug, Clone)]
pub struct BundleBucket {
    client: S3Client,
    url: S3Url,
    /// Upload tuning.
    pub transfer: Transfer,
}

impl BundleBucket {
    /// Connects and checks that the bucket exists and the credentials may
    /// read it, so that a typo fails at once, not after an hour of indexing.
    pub async fn connect(url: S3Url, options: &ConnectOptions) -> Result<BundleBucket, S3Error> {
        let client = S3Client::new(options).await;
        let head = client.client.head_bucket().bucket(&url.bucket).send().await;
        if let Err(err) = head {
            // HEAD answers have no body, so no error code: the status says it.
            if err.raw_response().is_some_and(|r| r.status().as_u16() == 404) {
                return Err(S3Error::NoSuchBucket {
                    bucket: url.bucket.clone(),
                    endpoint: client.endpoint.clone(),
                });
            }
            return Err(client.error(&url.bucket, format!("HEAD bucket {}", url.bucket), err));
        }
        Ok(BundleBucket {
            client,
            url,
            transfer: Transfer::default(),
        })
    }

    /// Where this bundles root is.
    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// The S3 client (for callers that need plain object operations).
    pub fn client(&self) -> &S3Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.url.bucket
    }

    /// The key of a collection-relative path.
    pub fn key(&self, collection: &str, rel: &str) -> String {
        self.url.key(&format!("{collection}/{rel}"))
    }

    fn version_key(&self, collection: &str, version: &str, rel: &str) -> String {
        self.key(collection, &format!("{VERSIONS_DIR}/{version}/{rel}"))
    }

    /// The collection prefixes under the root (published or not: read
    /// [`BundleBucket::current`] to tell).
    pub async fn list_collections(&self) -> Result<Vec<String>, S3Error> {
        let root = self.url.key("");
        let names = self.client.list_dirs(self.bucket(), &root).await?;
        Ok(names
            .into_iter()
            .filter(|n| validate_collection_name(n).is_ok())
            .collect())
    }

    /// The pointer, or `None` before the first publish.
    pub async fn current(&self, collection: &str) -> Result<Option<Pointer>, S3Error> {
        self.current_if_changed(collection, None).await.map(|c| c.flatten())
    }

    /// The pointer if its ETag differs from `known_etag`; `Ok(None)` when
    /// unchanged (one conditional GET: a 304 with no body). `Ok(Some(None))`:
    /// no pointer at all.
    pub async fn current_if_changed(
        &self,
        collection: &str,
        known_etag: Option<&str>,
    ) -> Result<Option<Option<Pointer>>, S3Error> {
        let key = self.key(collection, CURRENT_FILE);
        let mut request = self.client.client.get_object().bucket(self.bucket()).key(&key);
        if let Some(etag) = known_etag {
            request = request.if_none_match(etag);
        }
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => return Ok(None),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(Some(None)),
            Err(e) => {
                return Err(self
                    .client
                    .error(self.bucket(), format!("GET s3://{}/{key}", self.bucket()), e))
            }
        };
        let etag = out.e_tag().map(str::to_string);
        let body = out.body.collect().await.map_err(|e| S3Error::Request {
            what: format!("GET s3://{}/{key}", self.bucket()),
            detail: e.to_string(),
        })?;
        let text = String::from_utf8_lossy(&body.into_bytes()).trim().to_string();
        if parse_version_name(&text).is_none() {
            return Err(S3Error::Corrupt {
                bucket: self.bucket().to_string(),
                key,
                reason: format!("{text:?} is not a version name"),
            });
        }
        Ok(Some(Some(Pointer { version: text, etag })))
    }

    /// Every version prefix of a collection, complete or not, oldest first.
    pub async fn list_versions(&self, collection: &str) -> Result<Vec<String>, S3Error> {
        let prefix = self.key(collection, &format!("{VERSIONS_DIR}/"));
        let mut versions: Vec<String> = self
            .client
            .list_dirs(self.bucket(), &prefix)
            .await?
            .into_iter()
            .filter(|v| parse_version_name(v).is_some())
            .collect();
        versions.sort_by_key(|v| parse_version_name(v));
        Ok(versions)
    }

    /// The manifest of a version, or `None` when the version is incomplete.
    pub async fn manifest(&self, collection: &str, version: &str) -> Result<Option<BundleManifest>, S3Error> {
        let key = self.version_key(collection, version, MANIFEST_FILE);
        let Some(bytes) = self.client.get_bytes(self.bucket(), &key).await? else {
            return Ok(None);
        };
        let manifest: BundleManifest = serde_json::from_slice(&bytes).map_err(|e| S3Error::Corrupt {
            bucket: self.bucket().to_string(),
            key: key.clone(),
            reason: format!("malformed manifest: {e}"),
        })?;
        Ok(Some(manifest))
    }

    /// One file of a version, checked against the manifest.
    pub async fn read_checked(
        &self,
        collection: &str,
        manifest: &BundleManifest,
        rel: &str,
    ) -> Result<Vec<u8>, S3Error> {
        let key = self.version_key(collection, &manifest.version, rel);
        let corrupt = |reason: String| S3Error::Corrupt {
            bucket: self.bucket().to_string(),
            key: key.clone(),
            reason,
        };
        let entry = manifest
            .files
            .get(rel)
            .ok_or_else(|| corrupt("not listed in the manifest".into()))?;
        let bytes = self
            .client
            .get_bytes(self.bucket(), &key)
            .await?
            .ok_or_else(|| corrupt("missing".into()))?;
        let found = bundle::sha256_hex(&bytes);
        if found != entry.sha256 {
            return Err(corrupt(format!("sha256 {found}, the manifest says {}", entry.sha256)));
        }
        Ok(bytes)
    }

    /// The number the next version gets: one past every prefix seen,
    /// complete or not, so a half-uploaded version is never written into again.
    pub async fn next_version(&self, collection: &str) -> Result<String, S3Error> {
        let last = self
            .list_versions(collection)
            .await?
            .last()
            .and_then(|v| parse_version_name(v))
            .unwrap_or(0);
        Ok(bundle::version_name(last + 1))
    }

    /// Uploads the version in `dir` (its `manifest.json` lists every file):
    /// every file, then the manifest. Does not move the pointer.
    pub async fn upload_version(&self, collection: &str, dir: &Path, manifest: &BundleManifest) -> Result<(), S3Error> {
        validate_collection_name(collection)?;
        let version = &manifest.version;
        let files: Vec<(String, u64)> = manifest.files.iter().map(|(rel, e)| (rel.clone(), e.bytes)).collect();
        for (rel, _) in &files {
            validate_relative_path(rel)?;
        }
        let total: u64 = files.iter().map(|(_, b)| b).sum();
        tracing::info!(
            "uploading {collection} {version}: {} files, {:.1} MiB to {}",
            files.len(),
            total as f64 / (1 << 20) as f64,
            self.url
        );
        stream::iter(files)
            .map(|(rel, _)| async move {
                let key = self.version_key(collection, version, &rel);
                self.client
                    .put_file(self.bucket(), &key, &dir.join(&rel), &self.transfer)
                    .await?;
                busca_core::crash::point("s3.object");
                Ok::<(), S3Error>(())
            })
            .buffer_unordered(self.transfer.concurrency.max(1))
            .try_collect::<()>()
            .await?;
        let manifest_path = dir.join(MANIFEST_FILE);
        let key = self.version_key(collection, version, MANIFEST_FILE);
        self.client
            .put_file(self.bucket(), &key, &manifest_path, &self.transfer)
            .await?;
        busca_core::crash::point("s3.manifest");
        Ok(())
    }

    /// Points `CURRENT` at `version` (complete) provided it still is `base`,
    /// what the publisher read when it started (`None`: no pointer yet): a
    /// conditional write, `If-Match` on base's ETag or `If-None-Match: *`,
    /// so of two publishers from one base only the first wins; the other gets
    /// [`S3Error::Conflict`] naming the winner's version. A server that
    /// ignores conditional writes (some S3-compatible ones do) gives no fence.
    pub async fn set_current_from(&self, collection: &str, version: &str, base: Option<&Pointer>) -> Result<(), S3Error> {
        self.require_complete(collection, version).await?;
        let key = self.key(collection, CURRENT_FILE);
        let conflict = |found: Option<Pointer>| S3Error::Conflict {
            bucket: self.bucket().to_string(),
            key: key.clone(),
            version: version.to_string(),
            base: base.map_or_else(|| "none".into(), |b| b.version.clone()),
            found: found.map_or_else(|| "none".into(), |p| p.version),
        };
        let precondition = match base {
            None => Precondition::IfAbsent,
            Some(Pointer { etag: Some(etag), .. }) => Precondition::IfMatch(etag),
            // A base read without an ETag cannot be fenced by the server:
            // compare by reading (a narrower window, not none).
            Some(b) => {
                let found = self.current(collection).await?;
                if found.as_ref().map(|p| &p.version) != Some(&b.version) {
                    return Err(conflict(found));
                }
                Precondition::None
            }
        };
        let body = format!("{version}\n").into_bytes();
        if self.client.put_bytes_if(self.bucket(), &key, body, precondition).await? {
            busca_core::crash::point("s3.pointer");
            Ok(())
        } else {
            Err(conflict(self.current(collection).await?))
        }
    }

    async fn require_complete(&self, collection: &str, version: &str) -> Result<(), S3Error> {
        if self.manifest(collection, version).await?.is_none() {
            return Err(S3Error::Corrupt {
                bucket: self.bucket().to_string(),
                key: self.version_key(collection, version, MANIFEST_FILE),
                reason: "missing: the version is incomplete and cannot be made current".into(),
            });
        }
        Ok(())
    }

    /// Points `CURRENT` at `version`, which must be complete, whatever it
    /// named before (an operator's rollback; publishers use
    /// [`BundleBucket::set_current_from`]).
    pub async fn set_current(&self, collection: &str, version: &str) -> Result<(), S3Error> {
        self.require_complete(collection, version).await?;
        let key = self.key(collection, CURRENT_FILE);
        self.client
            .put_bytes(self.bucket(), &key, format!("{version}\n").into_bytes())
            .await
    }

    /// Deletes all but the newest `keep` complete versions, and every
    /// incomplete one older than the newest complete version (what a killed
    /// upload left). The version `CURRENT` names is always kept. Returns the
    /// versions deleted.
    pub async fn prune(&self, collection: &str, keep: usize) -> Result<Vec<String>, S3Error> {
        let current = self.current(collection).await?.map(|p| p.version);
        let versions = self.list_versions(collection).await?;
        let mut complete = Vec::new();
        for version in &versions {
            if self.manifest(collection, version).await?.is_some() {
                complete.push(version.clone());
            }
        }
        let newest_complete = complete.last().and_then(|v| parse_version_name(v)).unwrap_or(0);
        let kept: BTreeSet<&String> = complete
            .iter()
            .rev()
            .take(keep.max(1))
            .chain(current.as_ref())
            .collect();
        let doomed: Vec<String> = versions
            .iter()
            .filter(|v| !kept.contains(v))
            .filter(|v| complete.contains(v) || parse_version_name(v).unwrap_or(0) < newest_complete)
            .cloned()
            .collect();
        for version in &doomed {
            busca_core::crash::point("s3.prune");
            let prefix = self.version_key(collection, version, "");
            let keys: Vec<String> = self
                .client
                .list(self.bucket(), &prefix)
                .await?
                .into_iter()
                .map(|o| o.key)
                .collect();
            self.client.delete_keys(self.bucket(), &keys).await?;
            tracing::info!(
                "deleted {collection} {version} from {} ({} objects)",
                self.url,
                keys.len()
            );
        }
        Ok(doomed)
    }

    /// Downloads a complete version into `dest` (which must not exist):
    /// into a temporary sibling first, every file checked against the
    /// manifest, then renamed, so `dest` is whole or absent.
    pub async fn download_version(
        &self,
        collection: &str,
        version: &str,
        dest: &Path,
    ) -> Result<BundleManifest, S3Error> {
        let manifest = self
            .manifest(collection, version)
            .await?
            .ok_or_else(|| S3Error::Corrupt {
                bucket: self.bucket().to_string(),
                key: self.version_key(collection, version, MANIFEST_FILE),
                reason: "missing: the version is incomplete".into(),
            })?;
        if manifest.version != version || manifest.collection != collection {
            return Err(S3Error::Corrupt {
                bucket: self.bucket().to_string(),
                key: self.version_key(collection, version, MANIFEST_FILE),
                reason: format!("it describes {} {}", manifest.collection, manifest.version),
            });
        }
        let parent = dest.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(parent).await.map_err(S3Error::io(parent))?;
        let tmp = parent.join(format!(".download-{version}-{}", std::process::id()));
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        let result = async {
            // Owned items: borrowed ones make the future not Send for the
            // host's background task (rust-lang/rust#102211).
            let files: Vec<(String, bundle::FileEntry)> = manifest.files.clone().into_iter().collect();
            stream::iter(files)
                .map(|(rel, entry)| {
                    let tmp = &tmp;
                    async move {
                        validate_relative_path(&rel)?;
                        let key = self.version_key(collection, version, &rel);
                        let (size, sha256) = self.client.get_to_file(self.bucket(), &key, &tmp.join(&rel)).await?;
                        if size != entry.bytes || sha256 != entry.sha256 {
                            return Err(S3Error::Corrupt {
                                bucket: self.bucket().to_string(),
                                key,
                                reason: format!(
                                    "{size} bytes with sha256 {sha256}, the manifest says {} bytes with {}",
                                    entry.bytes, entry.sha256
                                ),
                            });
                        }
                        Ok(())
                    }
                })
                .buffer_unordered(self.transfer.concurrency.max(1))
                .try_collect::<()>()
                .await?;
            let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
            tokio::fs::write(tmp.join(MANIFEST_FILE), json)
                .await
                .map_err(S3Error::io(tmp.join(MANIFEST_FILE)))?;
            tokio::fs::rename(&tmp, dest).await.map_err(S3Error::io(dest))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
        }
        result.map(|()| manifest)
    }

    /// Uploads the files of local `dir` that the collection's work prefix
    /// lacks, among those `keep` accepts (by file name: a sharded worker
    /// pushes only its own videos); files whose name ends in `commit_suffix`
    /// go last (they are the commit points of the others) and are re-uploaded
    /// when they differ.
    pub async fn push_work(
        &self,
        collection: &str,
        dir: &Path,
        commit_suffix: &str,
        keep: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<usize, S3Error> {
        let prefix = self.key(collection, &format!("{WORK_DIR}/"));
        let remote: std::collections::HashMap<String, u64> = self
            .client
            .list(self.bucket(), &prefix)
            .await?
            .into_iter()
            .filter_map(|o| Some((o.key.strip_prefix(&prefix)?.to_string(), o.size)))
            .collect();
        let mut data = Vec::new();
        let mut commits = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(S3Error::io(dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !keep(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let path = entry.path();
            if name.ends_with(commit_suffix) {
                let local = std::fs::read(&path).map_err(S3Error::io(&path))?;
                let same = match remote.get(&name) {
                    Some(&size) if size == local.len() as u64 => {
                        self.client
                            .get_bytes(self.bucket(), &format!("{prefix}{name}"))
                            .await?
                            .as_deref()
                            == Some(&local[..])
                    }
                    _ => false,
                };
                if !same {
                    commits.push(name);
                }
            } else if !remote.contains_key(&name) {
                data.push(name);
            }
        }
        let count = data.len() + commits.len();
        for batch in [data, commits] {
            stream::iter(batch)
                .map(|name| {
                    let key = format!("{prefix}{name}");
                    let path = dir.join(&name);
                    async move { self.client.put_file(self.bucket(), &key, &path, &self.transfer).await }
                })
                .buffer_unordered(self.transfer.concurrency.max(1))
                .try_collect::<()>()
                .await?;
        }
        Ok(count)
    }

    /// Uploads the named files of local `dir` to the work prefix, in the
    /// order given (data files first, their commit point last): how a worker
    /// saves each video as soon as it is finished, so that a worker killed
    /// later loses nothing it had finished.
    pub async fn put_work_files(&self, collection: &str, dir: &Path, names: &[&str]) -> Result<(), S3Error> {
        for name in names {
            let key = self.key(collection, &format!("{WORK_DIR}/{name}"));
            self.client.put_file(self.bucket(), &key, &dir.join(name), &self.transfer).await?;
            busca_core::crash::point("s3.work");
        }
        Ok(())
    }

    /// Downloads the work files that local `dir` lacks, among those `keep`
    /// accepts (by file name); commit files last.
    pub async fn pull_work(
        &self,
        collection: &str,
        dir: &Path,
        commit_suffix: &str,
        keep: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<usize, S3Error> {
        let prefix = self.key(collection, &format!("{WORK_DIR}/"));
        tokio::fs::create_dir_all(dir).await.map_err(S3Error::io(dir))?;
        let (commits, data): (Vec<String>, Vec<String>) = self
            .client
            .list(self.bucket(), &prefix)
            .await?
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(&prefix).map(str::to_string))
            .filter(|name| !name.contains('/') && !name.starts_with('.') && keep(name) && !dir.join(name).exists())
            .partition(|name| name.ends_with(commit_suffix));
        let count = data.len() + commits.len();
        for batch in [data, commits] {
            stream::iter(batch)
                .map(|name| {
                    let key = format!("{prefix}{name}");
                    let tmp = dir.join(format!(".{name}.download"));
                    let path = dir.join(&name);
                    async move {
                        self.client.get_to_file(self.bucket(), &key, &tmp).await?;
                        tokio::fs::rename(&tmp, &path).await.map_err(S3Error::io(&path))
                    }
                })
                .buffer_unordered(self.transfer.concurrency.max(1))
                .try_collect::<()>()
                .await?;
        }
        Ok(count)
    }
}
