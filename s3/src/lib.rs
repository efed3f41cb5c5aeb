//! BuscaEscenas bundles in S3 (or any S3-compatible server).
//!
//! The layout mirrors the local one (`core::bundle`) under a key prefix:
//!
//! ```text
//! s3://bucket/prefix/<collection>/CURRENT                  "v000004\n", written last
//! s3://bucket/prefix/<collection>/versions/v000004/...     immutable once complete
//! s3://bucket/prefix/<collection>/versions/v000004/manifest.json   uploaded after every other file
//! s3://bucket/prefix/<collection>/work/...                 the indexer's per-video frame cache
//! ```
//!
//! A version is complete when its manifest exists, and current when `CURRENT`
//! names it; both are written only after everything they vouch for, so a reader
//! that follows `CURRENT` never sees a half-written version, whatever moment a
//! publisher dies at.
//!
//! - [`connect`]: client configuration (credential chain, endpoint, path
//!   style) and error messages that name the bucket and what went wrong.
//! - [`objects`]: object puts (multipart with sha256 checksums), gets, lists, deletes.
//! - [`bundles`]: the layout above: pointer, versions, upload, prune, verified download.
//! - [`mirror`]: a local, verified copy of the current versions, for the host.
//! - [`location`]: a bundles root as command lines name it (folder or
//!   `s3://`), and the S3 server flags, shared by busca-index and busca-serve.

pub mod bundles;
pub mod connect;
pub mod location;
pub mod mirror;
pub mod objects;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use busca_core::error::IoAt;

pub use bundles::BundleBucket;
pub use connect::ConnectOptions;
pub use location::{Location, S3Flags};
pub use mirror::{Mirror, SyncOutcome};

/// Why an S3 operation failed. Every message names the bucket or key.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// Not an `s3://bucket/prefix` URL.
    #[error("{url:?} is not an S3 location: {reason} (expected s3://bucket/prefix)")]
    Url {
        /// What was given.
        url: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The bucket does not exist on the server.
    #[error("bucket {bucket:?} does not exist at {endpoint}; create it first")]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
        /// The server.
        endpoint: String,
    },
    /// The server refused the credentials or their permissions.
    #[error("access to bucket {bucket:?} at {endpoint} was refused ({detail}); check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the bucket policy")]
    AccessDenied {
        /// The bucket.
        bucket: String,
        /// The server.
        endpoint: String,
        /// The server's code and message.
        detail: String,
    },
    /// No credentials were found by the standard chain.
    #[error("no AWS credentials found for {endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE ({detail})")]
    NoCredentials {
        /// The server.
        endpoint: String,
        /// The chain's message.
        detail: String,
    },
    /// The server could not be reached (connection refused, DNS, timeout).
    #[error("cannot reach the S3 server {endpoint} for {what}: {detail}")]
    Unreachable {
        /// The server.
        endpoint: String,
        /// The operation and key.
        what: String,
        /// The transport's message.
        detail: String,
    },
    /// Any other failed request.
    #[error("S3 {what} failed: {detail}")]
    Request {
        /// The operation and key.
        what: String,
        /// The server's code and message.
        detail: String,
    },
    /// A downloaded or uploaded object does not match what the manifest says.
    #[error("s3://{bucket}/{key} is corrupt: {reason}")]
    Corrupt {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What does not match.
        reason: String,
    },
    /// Another publisher moved `CURRENT` after this one started: the
    /// conditional write was refused.
    #[error(
        "s3://{bucket}/{key}: another publisher made {found} current while {version} was uploaded on top of {base}; \
         {version} stays in the bucket, not current: run the indexer again to publish on top of {found}"
    )]
    Conflict {
        /// The bucket.
        bucket: String,
        /// The pointer's key.
        key: String,
        /// The version this publisher uploaded.
        version: String,
        /// The version it started from.
        base: String,
        /// The version `CURRENT` names now (the winner's).
        found: String,
    },
    /// A local file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoAt),
    /// A bundle rule was broken (bad names, malformed manifest, ...).
    #[error(transparent)]
    Bundle(#[from] busca_core::BundleError),
}

impl S3Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> S3Error {
        let at = IoAt::at(path);
        move |source| S3Error::Io(at(source))
    }
}

/// `s3://bucket/prefix`: where a bundles root lives. The prefix may be empty
/// and never ends with `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Url {
    /// The bucket.
    pub bucket: String,
    /// Key prefix of the bundles root, without leading or trailing `/`.
    pub prefix: String,
}

impl S3Url {
    /// Whether `s` looks like an S3 URL (so callers can tell it from a path).
    pub fn is_s3(s: &str) -> bool {
        s.starts_with("s3://")
    }

    /// The key of `rel` (`demo/CURRENT`) under the prefix.
    pub fn key(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }
}

impl S3Url {
    /// A local folder for this location under the user's cache
    /// (`$XDG_CACHE_HOME/buscaescenas/<kind>/<bucket>/<prefix>`): the
    /// indexer's staging area, the host's mirror.
    pub fn local_cache_dir(&self, kind: &str) -> PathBuf {
        let base = busca_core::cache_home().unwrap_or_else(|| std::env::temp_dir().join("buscaescenas"));
        let mut dir = base.join(kind).join(&self.bucket);
        for part in self.prefix.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
        }
        dir
    }
}

impl FromStr for S3Url {
    type Err = S3Error;

    fn from_str(url: &str) -> Result<Self, S3Error> {
        let bad = |reason| S3Error::Url {
            url: url.to_string(),
            reason,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // Bucket naming rules (lowercase, digits, dots, hyphens; 3 to 63).
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && !bucket.starts_with(['.', '-'])
            && !bucket.ends_with(['.', '-']);
        if !bucket_ok {
            return Err(bad("the bucket name must be 3 to 63 of a-z 0-9 . -"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            return Err(bad("the prefix must not contain '.', '..' or empty segments"));
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_bucket_and_prefix() {
        let url: S3Url = "s3://archive-rtve/bundles/2026/".parse().unwrap();
        assert_eq!(url.bucket, "archive-rtve");
        assert_eq!(url.prefix, "bundles/2026");
        assert_eq!(url.key("demo/CURRENT"), "bundles/2026/demo/CURRENT");
        assert_eq!(url.to_string(), "s3://archive-rtve/bundles/2026");
        let bare: S3Url = "s3://archive".parse().unwrap();
        assert_eq!(bare.key("demo/CURRENT"), "demo/CURRENT");
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, says) in [
            ("/data/bundles", "s3://"),
            ("s3://", "bucket name"),
            ("s3://Big_Bucket/x", "bucket name"),
            ("s3://bucket/a/../b", "prefix"),
            ("s3://bucket/a//b", "prefix"),
        ] {
            let err = url.parse::<S3Url>().unwrap_err().to_string();
            assert!(err.contains(says) && err.contains(url), "{url}: {err}");
        }
    }
}
