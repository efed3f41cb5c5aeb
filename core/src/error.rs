//! The one I/O failure with the path it happened on. Every crate's error enum
//! carries it as its `Io` variant instead of declaring path and source again,
//! so every I/O message names its path the same way. A write that finds the
//! disk full also says how many bytes it needed and how many were free.
//! [`chain`] is how every binary and the component put an error and its
//! causes on one line.

use std::path::PathBuf;

/// An I/O error on a named file or directory.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}{}", path.display(), space.as_ref().map(Space::to_string).unwrap_or_default())]
pub struct IoAt {
    /// The file or directory.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
    /// For a write that found its file system full: what it needed.
    pub space: Option<Space>,
}

/// What a write that ran out of space needed, and what its file system had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    /// Bytes the write was putting there.
    pub needed: u64,
    /// Bytes free for this process on the file system, where known.
    pub free: Option<u64>,
}

impl std::fmt::Display for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "; writing {} bytes there", self.needed)?;
        if let Some(free) = self.free {
            write!(f, " with {free} bytes free on its file system")?;
        }
        write!(f, ": free some space (or raise the limit) and run again")
    }
}

impl IoAt {
    /// For `map_err`: `std::fs::read(&p).map_err(IoAt::at(&p))?`.
    pub fn at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> IoAt {
        let path = path.into();
        move |source| IoAt { path, source, space: None }
    }

    /// For a write of `bytes` bytes to `path`: as [`IoAt::at`], and when the
    /// file system is full (or a file-size limit is hit) the error also says
    /// how many bytes were needed and how many were free.
    pub fn writing(path: impl Into<PathBuf>, bytes: u64) -> impl FnOnce(std::io::Error) -> IoAt {
        let path = path.into();
        move |source| {
            // Free space says nothing about a file-size limit (EFBIG).
            let free = || (source.kind() != std::io::ErrorKind::FileTooLarge).then(|| free_bytes(&path)).flatten();
            let space = is_out_of_space(&source).then(|| Space { needed: bytes, free: free() });
            IoAt { path, source, space }
        }
    }
}

/// ENOSPC, EDQUOT or EFBIG: the write cannot fit.
pub fn is_out_of_space(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge)
}

/// Bytes available to this process on the file system holding `path` (or
/// its nearest existing ancestor).
#[cfg(unix)]
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let existing = path.ancestors().find(|p| p.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a buffer statvfs fills on success.
    let stat = unsafe {
        if libc::statvfs(c.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Not known off Unix.
#[cfg(not(unix))]
pub fn free_bytes(_path: &std::path::Path) -> Option<u64> {
    None
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

    #[test]
    fn a_full_disk_says_what_the_write_needed_and_other_errors_do_not() {
        let dir = std::env::temp_dir();
        let full = IoAt::writing(dir.join("shots.json"), 123_456)(std::io::Error::from(std::io::ErrorKind::StorageFull));
        let message = full.to_string();
        assert!(message.contains("shots.json") && message.contains("writing 123456 bytes there"), "{message}");
        #[cfg(unix)]
        assert!(full.space.as_ref().unwrap().free.is_some(), "{message}");
        let denied = IoAt::writing(dir.join("x"), 5)(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(denied.space.is_none() && !denied.to_string().contains("bytes"), "{denied}");
    }
}

/// An error and its causes on one line, `outer: cause: root`, leaving out a
/// cause whose text the line already holds (many errors repeat their source
/// in their own message).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        next = err.source();
    }
    line
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    #[test]
    fn causes_join_once_each() {
        let e = IoAt::at(std::path::Path::new("/x/shots.json"))(std::io::Error::other("disk on fire"));
        // IoAt's message already holds its source: it is not repeated.
        assert_eq!(chain(&e), "/x/shots.json: disk on fire");
        #[derive(Debug, thiserror::Error)]
        #[error("cannot load collection demo")]
        struct Outer(#[source] IoAt);
        assert_eq!(chain(&Outer(e)), "cannot load collection demo: /x/shots.json: disk on fire");
    }
}
