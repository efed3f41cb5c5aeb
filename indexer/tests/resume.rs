//! Kill -9 in the middle of a run, then run again: the finished videos are
//! not decoded again and the collection ends up complete.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use busca_core::bundle::VIDEOS_FILE;
use busca_core::shot::VideoRecord;
use common::*;

fn finished_records(work: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(work)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default()
}

fn index_command(videos: &std::path::Path, out: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_busca-index"));
    cmd.args(["--collection", "resume", "--model"])
        .arg(tiny_model_dir())
        .arg("--out")
        .arg(out)
        .args(["--decoders", "1", "--batch", "1", "--encoder-threads", "1", "--decoder-threads", "1", "--no-progress"])
        .arg(videos)
        .env("ORT_DYLIB_PATH", ort_lib());
    cmd
}

#[test]
fn killed_run_resumes_from_finished_videos() {
    let tmp = tempfile::tempdir().unwrap();
    let videos = tmp.path().join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    let colours = ["red", "green", "blue", "yellow", "cyan", "magenta"];
    for (i, colour) in colours.iter().enumerate() {
        make_solid_video(&videos.join(format!("v{i}.mp4")), colour, 12.0);
    }
    let out = tmp.path().join("bundles");
    let work = out.join("resume/work");

    let mut child = index_command(&videos, &out).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while finished_records(&work).is_empty() {
        assert!(Instant::now() < deadline, "no video finished in 120 s");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = finished_records(&work);
    assert!(
        done.len() < colours.len(),
        "killed after {} of {} videos: too late to test resuming",
        done.len(),
        colours.len()
    );
    // Nothing was published by the killed run.
    assert!(busca_core::bundle::read_current(&out.join("resume")).unwrap().is_none());
    let stamps: Vec<_> = done.iter().map(|p| std::fs::metadata(p).unwrap().modified().unwrap()).collect();

    let output = index_command(&videos, &out).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let expected = format!(
        "{} ({} indexed, {} reused)",
        colours.len(),
        colours.len() - done.len(),
        done.len()
    );
    assert!(stdout.contains(&expected), "summary says {expected}:\n{stdout}");
    // The finished videos' records were not rewritten.
    for (path, stamp) in done.iter().zip(&stamps) {
        assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), *stamp, "{}", path.display());
    }
    let bundle = open_bundle(&out, "resume");
    let records: Vec<VideoRecord> = bundle.read_json(VIDEOS_FILE).unwrap();
    assert_eq!(records.len(), colours.len());
}
