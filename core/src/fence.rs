//! Two publishers on one folder collection: `CURRENT` moves only from the
//! version a publisher started from, and scratch directories are only
//! cleared when their writer is gone.
//!
//! The switch is a compare-and-swap under a lock file created with
//! `O_CREAT | O_EXCL` (`CURRENT.lock`, naming its holder): read `CURRENT`,
//! compare it with the publisher's base, replace it atomically, remove the
//! lock. The critical section is one small file write, so a lock whose holder
//! is gone (its pid no longer runs on this host) or older than [`STALE_LOCK`]
//! (a holder on another host sharing the folder) can only be a publisher
//! that died inside it, and is broken.
//! S3 collections get the same guarantee from conditional writes (busca-s3).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::bundle::{read_current, switch_current, BundleError, CURRENT_FILE};
use crate::error::IoAt;

/// The lock file beside `CURRENT`.
pub const LOCK_FILE: &str = "CURRENT.lock";
/// How long a publisher waits for another one's switch.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);
/// A lock this old was left by a publisher that died while switching.
pub const STALE_LOCK: Duration = Duration::from_secs(60);

/// Points `CURRENT` of `collection_dir` at `version`, provided it still
/// names `base` (`None`: no version yet), which is what the publisher
/// started from. Otherwise another publisher won:
/// [`BundleError::Conflict`] names the version it made current.
pub fn switch_current_from(collection_dir: &Path, version: &str, base: Option<&str>) -> Result<(), BundleError> {
    let _lock = Lock::take(collection_dir, version)?;
    crate::crash::point("current.locked");
    let found = read_current(collection_dir)?;
    if found.as_deref() != base {
        return Err(BundleError::Conflict {
            dir: collection_dir.to_path_buf(),
            version: version.to_string(),
            base: base.unwrap_or("none").to_string(),
            found: found.unwrap_or_else(|| "none".into()),
        });
    }
    switch_current(collection_dir, version)
}

/// Whether the writer process `pid` (on this machine) may still be running.
/// On Linux `/proc` says; elsewhere every writer is presumed alive.
pub fn writer_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// This machine's name as the kernel knows it (empty where unknown).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// Whether a lock's text (`pid N on HOST switching ...`) names a process of
/// this host that no longer runs. A lock from another host, or from a build
/// that did not name its host, is left to [`STALE_LOCK`].
fn holder_gone(holder: &str) -> bool {
    let mut words = holder.split_whitespace();
    let (Some("pid"), Some(pid), Some("on"), Some(host)) = (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    let here = host_name();
    match pid.parse::<u32>() {
        Ok(pid) => !here.is_empty() && host == here && !writer_alive(pid),
        Err(_) => false,
    }
}

/// The lock file, removed on drop.
struct Lock {
    path: PathBuf,
}

impl Lock {
    fn take(collection_dir: &Path, version: &str) -> Result<Lock, BundleError> {
        let path = collection_dir.join(LOCK_FILE);
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let _ = writeln!(
                        file,
                        "pid {} on {} switching {CURRENT_FILE} to {version}",
                        std::process::id(),
                        host_name()
                    );
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok());
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    if age.is_some_and(|a| a > STALE_LOCK) || holder_gone(&holder) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if Instant::now() >= deadline {
                        let holder = std::fs::read_to_string(&path).unwrap_or_default().trim().to_string();
                        return Err(BundleError::Locked { path, holder });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(BundleError::Io(IoAt::at(&path)(e))),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        std::fs::create_dir_all(&dir).unwrap();
        (tmp, dir)
    }

    #[test]
    fn the_second_publisher_from_the_same_base_loses_and_is_told_the_winner() {
        let (_tmp, dir) = collection();
        switch_current_from(&dir, "v000001", None).unwrap();
        // Both started from v000001; the first to switch wins.
        switch_current_from(&dir, "v000002", Some("v000001")).unwrap();
        let err = switch_current_from(&dir, "v000003", Some("v000001")).unwrap_err();
        assert!(matches!(&err, BundleError::Conflict { found, .. } if found == "v000002"), "{err}");
        assert!(err.to_string().contains("v000002") && err.to_string().contains("v000003"), "{err}");
        assert_eq!(read_current(&dir).unwrap().as_deref(), Some("v000002"));
        assert!(!dir.join(LOCK_FILE).exists(), "the lock is gone after a refusal too");
        // A first publish finds someone else's first publish.
        let (_tmp2, other) = collection();
        switch_current_from(&other, "v000001", None).unwrap();
        assert!(matches!(switch_current_from(&other, "v000001", None), Err(BundleError::Conflict { .. })));
    }

    #[test]
    fn a_held_lock_is_waited_for_and_a_stale_one_broken() {
        let (_tmp, dir) = collection();
        let lock = dir.join(LOCK_FILE);
        std::fs::write(&lock, "pid 1 switching CURRENT to v000009\n").unwrap();
        let err = switch_current_from(&dir, "v000001", None).unwrap_err();
        assert!(err.to_string().contains("pid 1 switching CURRENT to v000009"), "{err}");
        assert_eq!(read_current(&dir).unwrap(), None);
        // Two minutes old: its publisher died inside the switch.
        let old = SystemTime::now() - Duration::from_secs(120);
        std::fs::File::options().write(true).open(&lock).unwrap().set_modified(old).unwrap();
        switch_current_from(&dir, "v000001", None).unwrap();
        assert_eq!(read_current(&dir).unwrap().as_deref(), Some("v000001"));
    }

    #[test]
    fn a_lock_left_by_a_dead_process_of_this_host_is_broken_at_once() {
        let (_tmp, dir) = collection();
        let here = host_name();
        if here.is_empty() {
            return; // no /proc: only age breaks locks there
        }
        // A pid that cannot run (above the kernel's pid_max).
        std::fs::write(dir.join(LOCK_FILE), format!("pid 4294967294 on {here} switching CURRENT to v000009\n")).unwrap();
        // A fresh lock: only its dead holder lets this through (else Locked).
        switch_current_from(&dir, "v000001", None).unwrap();
        assert_eq!(read_current(&dir).unwrap().as_deref(), Some("v000001"));
        // The same pid on another host is not ours to judge.
        std::fs::write(dir.join(LOCK_FILE), "pid 4294967294 on elsewhere switching CURRENT to v000009\n").unwrap();
        assert!(matches!(switch_current_from(&dir, "v000002", Some("v000001")), Err(BundleError::Locked { .. })));
    }

    #[test]
    fn this_process_is_alive_and_an_unused_pid_is_not() {
        assert!(writer_alive(std::process::id()));
        assert!(!writer_alive(u32::MAX - 1) || !Path::new("/proc/self").exists());
    }
}
