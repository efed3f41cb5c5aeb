//! A disk that fills up: `busca-index` publishes onto a size-limited tmpfs
//! that this test mounts in a mount namespace of its own (`unshare --user
//! --map-root-user --mount`, so no privilege is needed where unprivileged
//! user namespaces are allowed). The disk fills twice: while videos are
//! being indexed (work files) and while a version is being written. Each
//! time the run fails with an error naming the path and the bytes it
//! needed, `CURRENT` still names the previous version, which verifies and
//! loads, no scratch version or temporary file is left, and once space
//! returns the same command publishes.
//!
//! Where the namespace cannot be made, the closest honest stand-in runs
//! instead and says so: a file-size limit (`prlimit --fsize`), which fails
//! the first file larger than the limit with EFBIG.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use busca_core::bundle::{read_current, OpenBundle, Verify};
use busca_core::search::Collection;
use busca_tests::*;

const COLLECTION: &str = "full";
/// Set in the re-executed test inside the namespace.
const INSIDE: &str = "BUSCA_TEST_IN_MOUNT_NAMESPACE";
const TEST: &str = "disk_full::a_full_disk_names_the_path_and_the_bytes_and_loses_nothing";

fn sh(cmd: &str) {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
}

/// How the disk is limited.
enum Limit {
    /// A tmpfs at this mount point, resized with `mount -o remount`.
    Tmpfs(PathBuf),
    /// RLIMIT_FSIZE on the indexer (bytes; `None`: no limit).
    FileSize(Option<u64>),
}

impl Limit {
    /// Leaves `room` bytes free on the disk (tmpfs), or limits files to `room` bytes.
    fn set(&mut self, room: u64) {
        match self {
            Limit::Tmpfs(mount) => {
                let used = du(mount);
                // tmpfs sizes are whole pages.
                let size = (used + room).div_ceil(4096) * 4096;
                sh(&format!("mount -o remount,size={size} tmpfs {}", mount.display()));
            }
            Limit::FileSize(limit) => *limit = Some(room),
        }
    }

    fn lift(&mut self) {
        match self {
            Limit::Tmpfs(mount) => sh(&format!("mount -o remount,size=256m tmpfs {}", mount.display())),
            Limit::FileSize(limit) => *limit = None,
        }
    }

    fn index(&self, out: &Path, videos: &[PathBuf], extra: &[&str]) -> Output {
        let mut cmd = match self {
            Limit::FileSize(Some(bytes)) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--fsize={bytes}")).arg(indexer_bin());
                c
            }
            _ => Command::new(indexer_bin()),
        };
        cmd.args(["--collection", COLLECTION, "--no-progress", "--model"])
            .arg(tiny_model_dir())
            .arg("--out")
            .arg(out)
            .args(extra)
            .args(videos)
            .output()
            .unwrap()
    }
}

/// Bytes in files under `dir`.
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let meta = entry.metadata().unwrap();
            total += if meta.is_dir() { du(&entry.path()) } else { meta.len().div_ceil(4096) * 4096 };
        }
    }
    total
}

fn ok(out: Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The failed run's error, checked: it names a path under `out` and the
/// bytes it needed.
fn refused(out: Output, root: &Path, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{what}: the run did not fail:\n{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{what}: no error line:\n{stderr}"));
    assert!(line.contains(&root.display().to_string()), "{what}: the error names no path under {}: {line}", root.display());
    assert!(line.contains("bytes there"), "{what}: the error does not say the bytes needed: {line}");
    line.to_string()
}

/// `CURRENT` names `version`, which verifies and loads, and nothing
/// half-written is left in the collection.
fn intact(root: &Path, version: &str, what: &str) {
    let dir = root.join(COLLECTION);
    assert_eq!(read_current(&dir).unwrap().as_deref(), Some(version), "{what}");
    let open = OpenBundle::open_current(&dir, Verify::All).unwrap_or_else(|e| panic!("{what}: {e}"));
    Collection::load(open).unwrap_or_else(|e| panic!("{what}: {e}"));
    for sub in ["versions", "work"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "{what}: {sub}/{name} was left behind");
        }
    }
}

fn scenario(mut limit: Limit, root: &Path, videos: &[PathBuf]) {
    let out = root.join("bundles");
    // v1: one video, with room.
    ok(limit.index(&out, &videos[..1], &[]), "the first version");
    intact(&out, "v000001", "v1");

    // The disk fills while new videos are indexed.
    limit.set(16 << 10);
    let line = refused(limit.index(&out, videos, &[]), &out, "indexing onto a full disk");
    eprintln!("full while indexing: {line}");
    intact(&out, "v000001", "after the disk filled while indexing");

    // Space returns: the same command publishes.
    limit.lift();
    ok(limit.index(&out, videos, &[]), "the re-run once space returned");
    intact(&out, "v000002", "v2");

    // The disk fills while a version is written (nothing to decode: only
    // the segmentation changes, so the version is all that is written).
    let v2 = out.join(COLLECTION).join("versions").join("v000002");
    let largest = busca_core::bundle::hash_tree(&v2).unwrap().values().map(|f| f.bytes).max().unwrap();
    limit.set((du(&v2) / 3).min(largest / 2));
    let line = refused(limit.index(&out, videos, &["--cut-similarity", "0.9"]), &out, "publishing onto a full disk");
    assert!(line.contains("versions/.tmp-v000003"), "the failure was not in the version being written: {line}");
    eprintln!("full while publishing: {line}");
    intact(&out, "v000002", "after the disk filled while publishing");

    limit.lift();
    ok(limit.index(&out, videos, &["--cut-similarity", "0.9"]), "the re-publish once space returned");
    intact(&out, "v000003", "v3");
}

fn videos(dir: &Path) -> Vec<PathBuf> {
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    [("red", "green"), ("blue", "yellow"), ("cyan", "magenta"), ("orange", "purple")]
        .iter()
        .enumerate()
        .map(|(i, (a, b))| {
            let path = videos.join(format!("tape_{i}.mp4"));
            make_colour_video(&path, &[(a, 4), (b, 4)]);
            path
        })
        .collect()
}

#[test]
fn a_full_disk_names_the_path_and_the_bytes_and_loses_nothing() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os(INSIDE).is_some() {
        // Inside the namespace: mount the small disk and run the scenario.
        let mount = dir.path().join("disk");
        std::fs::create_dir_all(&mount).unwrap();
        sh(&format!("mount -t tmpfs -o size=256m tmpfs {}", mount.display()));
        let videos = videos(dir.path());
        scenario(Limit::Tmpfs(mount.clone()), &mount, &videos);
        return;
    }
    let indexer = indexer_bin(); // built outside the namespace
    // BUSCA_TEST_DISK_STAND_IN=1 runs the stand-in even where a namespace can be made.
    let namespace = std::env::var_os("BUSCA_TEST_DISK_STAND_IN").is_none()
        && Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if namespace {
        let out = Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount"])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(INSIDE, "1")
            .env("BUSCA_INDEX_BIN", &indexer)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{stderr}");
        assert!(out.status.success(), "the scenario on a small tmpfs failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "the scenario did not run inside the namespace:\n{stdout}");
    } else {
        eprintln!(
            "disk_full: this machine does not allow a mount namespace (unshare --user --mount), \
             so the stand-in runs: a file-size limit (prlimit --fsize) instead of a full tmpfs"
        );
        let videos = videos(dir.path());
        scenario(Limit::FileSize(None), dir.path(), &videos);
    }
}
