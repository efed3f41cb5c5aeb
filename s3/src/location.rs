//! Where bundles live, as the command lines name it: a local folder or an S3
//! bucket and prefix, and the flags that reach an S3-compatible server. One
//! definition for `busca-index --out` (where it publishes) and
//! `busca-serve --bundles` (what it serves).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{ConnectOptions, S3Url};

/// A bundles root: `<root>/<collection>/CURRENT`, `.../versions/vNNNNNN/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local folder.
    Folder(PathBuf),
    /// `s3://bucket/prefix`.
    S3(S3Url),
}

impl FromStr for Location {
    type Err = String;

    /// `s3://bucket/prefix` is S3; anything else is a folder.
    fn from_str(s: &str) -> Result<Self, String> {
        if S3Url::is_s3(s) {
            s.parse().map(Location::S3).map_err(|e: crate::S3Error| e.to_string())
        } else {
            Ok(Location::Folder(PathBuf::from(s)))
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Folder(p) => write!(f, "{}", p.display()),
            Location::S3(url) => write!(f, "{url}"),
        }
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Self {
        Location::Folder(path)
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Self {
        Location::Folder(path.to_path_buf())
    }
}

/// The S3 server flags of every command that reads or writes an S3 location.
/// Credentials always come from the standard AWS chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct S3Flags {
    /// S3-compatible server (default: AWS, or $AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// S3 region (default: the AWS configuration's, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Path-style S3 addressing (http://host/bucket/key), which most
    /// self-hosted servers need.
    #[arg(long)]
    pub path_style: bool,
}

impl S3Flags {
    /// Whether any flag was given (they mean nothing for a folder).
    pub fn any(&self) -> bool {
        self.endpoint_url.is_some() || self.region.is_some() || self.path_style
    }

    /// Connection options from the flags, with fixed credentials when given
    /// (tests and embedding programs; the command lines never set them).
    pub fn connect_options(&self, static_credentials: Option<(String, String)>) -> ConnectOptions {
        ConnectOptions {
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
            path_style: self.path_style,
            static_credentials,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_are_s3_and_everything_else_a_folder() {
        let s3: Location = "s3://archivo/bundles".parse().unwrap();
        assert!(matches!(&s3, Location::S3(url) if url.to_string() == "s3://archivo/bundles"), "{s3:?}");
        assert_eq!(s3.to_string(), "s3://archivo/bundles");
        let folder: Location = "demo/bundles".parse().unwrap();
        assert_eq!(folder, Location::Folder(PathBuf::from("demo/bundles")));
        let bad = "s3://".parse::<Location>().unwrap_err();
        assert!(bad.contains("s3://"), "the error names the input: {bad}");
    }

    #[test]
    fn flags_parse_and_become_connect_options() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            s3: S3Flags,
        }
        use clap::Parser;
        let cli = Cli::try_parse_from(["x", "--endpoint-url", "http://127.0.0.1:9000", "--path-style"]).unwrap();
        assert!(cli.s3.any());
        let options = cli.s3.connect_options(None);
        assert_eq!(options.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(options.path_style && options.region.is_none());
        assert!(!Cli::try_parse_from(["x"]).unwrap().s3.any());
    }
}
