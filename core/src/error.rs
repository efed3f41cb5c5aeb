//! The one I/O failure with the path it happened on. Every crate's error enum
//! carries it as its `Io` variant instead of declaring path and source again,
//! so every I/O message names its path the same way.

use std::path::PathBuf;

/// An I/O error on a named file or directory.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct IoAt {
    /// The file or directory.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

impl IoAt {
    /// For `map_err`: `std::fs::read(&p).map_err(IoAt::at(&p))?`.
    pub fn at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> IoAt {
        let path = path.into();
        move |source| IoAt { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_path_and_keeps_the_source() {
        let err = IoAt::at("/bundles/demo/CURRENT")(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(err.to_string().starts_with("/bundles/demo/CURRENT: "), "{err}");
        let source = std::error::Error::source(&err).expect("the io::Error is the source");
        assert_eq!(source.downcast_ref::<std::io::Error>().map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
    }
}
