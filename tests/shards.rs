//! Indexing on many machines, against a real S3-compatible server (s3s-fs) on
//! 127.0.0.1: three workers run as separate processes with the variables a
//! Kubernetes Indexed Job sets (`JOB_COMPLETION_INDEX`, and `BUSCA_SHARDS`
//! from the manifest), each with its own staging folder as separate pods
//! would have, then `busca-index publish` publishes once. The result must
//! equal one process indexing the same videos; a worker killed with SIGKILL
//! loses nothing it had finished; a publish while workers are missing
//! publishes what is there and names the rest.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use busca_core::bundle::{OpenBundle, Verify, SHOTS_FILE, VIDEOS_FILE};
use busca_core::shot::{ShotRecord, VideoRecord};
use busca_indexer::Shard;
use busca_s3::{BundleBucket, S3Url};
use busca_tests::*;
use serde_json::json;

const BUCKET: &str = "busca-shards";
const WORKERS: u32 = 3;

/// Eight two-colour videos, 3 s per colour; `tape_N` ids put 1, 4 and 3 of
/// them on workers 0, 1 and 2 (checked below, since the partition is the
/// indexer's). Worker 1 indexes tape_0, 1, 4 and 7 in that order; tape_7's
/// long second colour keeps it busy well after its first video is saved,
/// so the kill below lands before its last one.
const TAPES: &[(&str, &str, u32)] = &[
    ("red", "green", 3),
    ("blue", "yellow", 3),
    ("cyan", "magenta", 3),
    ("orange", "purple", 3),
    ("pink", "brown", 3),
    ("white", "black", 3),
    ("gray", "red", 3),
    ("green", "blue", 60),
];

struct Setup {
    dir: tempfile::TempDir,
    server: S3Server,
    rt: tokio::runtime::Runtime,
    videos: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let (dir, server, rt) = S3Server::with_bucket(BUCKET);
        let videos = dir.path().join("videos");
        std::fs::create_dir_all(&videos).unwrap();
        for (i, (a, b, seconds)) in TAPES.iter().enumerate() {
            make_colour_video(&videos.join(format!("tape_{i}.mp4")), &[(a, 3), (b, *seconds)]);
        }
        Setup { dir, server, rt, videos }
    }

    fn url(&self) -> String {
        format!("s3://{BUCKET}/bundles")
    }

    /// `busca-index [args] --out s3://... <videos>` with its own staging
    /// folder (a pod's local disk).
    fn indexer(&self, collection: &str, staging: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(indexer_bin());
        cmd.args(args)
            .args(["--collection", collection, "--no-progress", "--model"])
            .arg(tiny_model_dir())
            .args(["--out", &self.url(), "--endpoint-url", &self.server.endpoint(), "--path-style"])
            .arg("--staging")
            .arg(self.dir.path().join(staging))
            .arg(&self.videos)
            .env_remove("JOB_COMPLETION_INDEX")
            .env_remove("BUSCA_SHARDS")
            .envs(self.server.env());
        cmd
    }

    fn worker(&self, collection: &str, index: u32, staging: &str) -> Command {
        let mut cmd = self.indexer(collection, staging, &[]);
        cmd.env("JOB_COMPLETION_INDEX", index.to_string()).env("BUSCA_SHARDS", WORKERS.to_string());
        cmd
    }

    fn bucket(&self) -> BundleBucket {
        let url: S3Url = self.url().parse().unwrap();
        self.rt.block_on(BundleBucket::connect(url, &self.server.connect_options())).unwrap()
    }

    fn current(&self, collection: &str) -> Option<String> {
        self.rt.block_on(self.bucket().current(collection)).unwrap().map(|p| p.version)
    }

    /// Finished videos in the collection's work area, by the record objects.
    fn finished_in_bucket(&self, collection: &str) -> Vec<String> {
        let bucket = self.bucket();
        let prefix = bucket.key(collection, "work/");
        let mut ids: Vec<String> = self
            .rt
            .block_on(bucket.client().list(BUCKET, &prefix))
            .unwrap()
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(&prefix)?.strip_suffix(".json").map(str::to_string))
            .collect();
        ids.sort();
        ids
    }

    /// The work folder of a collection inside the server's storage.
    fn work_objects_dir(&self, collection: &str) -> PathBuf {
        self.server.root.join(BUCKET).join("bundles").join(collection).join("work")
    }
}

fn ok(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// `(videos, indexed, reused)` from the summary's `videos` row.
fn videos_row(stdout: &str) -> (usize, usize, usize) {
    let row = stdout.lines().find(|l| l.starts_with("| videos ")).unwrap_or_else(|| panic!("{stdout}"));
    let numbers: Vec<usize> = row
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 3, "{row}");
    (numbers[0], numbers[1], numbers[2])
}

fn tape_ids() -> Vec<String> {
    (0..TAPES.len()).map(|i| format!("tape_{i}")).collect()
}

fn owned_by(worker: u32) -> Vec<String> {
    tape_ids().into_iter().filter(|id| Shard::of(id, WORKERS) == worker).collect()
}

/// Videos and shots of a collection's current version in the host's mirror,
/// by video and time (shot ids may differ between runs).
fn tables(root: &Path, collection: &str) -> (Vec<(String, u64, u32)>, Vec<(String, u64, u64)>) {
    let open = OpenBundle::open_current(&root.join(collection), Verify::All).unwrap();
    let videos: Vec<VideoRecord> = open.read_json(VIDEOS_FILE).unwrap();
    let shots: Vec<ShotRecord> = open.read_json(SHOTS_FILE).unwrap();
    let mut videos: Vec<_> = videos.into_iter().map(|v| (v.video_id, v.duration_ms, v.frames)).collect();
    let mut shots: Vec<_> = shots.into_iter().map(|s| (s.video_id, s.start_ms, s.end_ms)).collect();
    videos.sort();
    shots.sort();
    (videos, shots)
}

#[test]
fn three_workers_and_one_publish_equal_one_process() {
    let s = Setup::new();
    assert_eq!(
        (0..WORKERS).map(|w| owned_by(w).len()).collect::<Vec<_>>(),
        [1, 4, 3],
        "the fixture's ids spread over the workers as documented"
    );
    ok(s.indexer("single", "staging-single", &[]).output().unwrap(), "the single run");

    // The workers at once, each on its own staging folder.
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| s.worker("sharded", w, &format!("staging-worker-{w}")).output_piped())
        .collect();
    for (w, child) in workers.into_iter().enumerate() {
        let stdout = ok(child.wait_with_output().unwrap(), &format!("worker {w}"));
        let own = owned_by(w as u32).len();
        assert_eq!(videos_row(&stdout), (own, own, 0), "worker {w} indexes only its videos:\n{stdout}");
        assert!(stdout.contains(&format!("none: worker {w}/{WORKERS}")), "{stdout}");
    }
    assert_eq!(s.current("sharded"), None, "workers never write CURRENT");
    assert_eq!(s.finished_in_bucket("sharded"), {
        let mut ids = tape_ids();
        ids.sort();
        ids
    });

    let stdout = ok(
        s.indexer("sharded", "staging-publish", &["publish"]).output().unwrap(),
        "publish",
    );
    assert_eq!(videos_row(&stdout), (8, 0, 8), "publish decodes nothing:\n{stdout}");
    assert!(stdout.contains("| missing        | 0 "), "{stdout}");
    assert_eq!(s.current("sharded").as_deref(), Some("v000001"));

    // Served side by side: the same videos, shots and answers.
    let opts = s.server.serve_options(&s.url(), s.dir.path());
    let host = s.rt.block_on(busca_host::start(&opts)).expect("start busca-serve on S3");
    let (single, sharded) = (tables(&host.bundles_root, "single"), tables(&host.bundles_root, "sharded"));
    assert_eq!(single.0.len(), 8);
    assert!(single.1.len() >= 16, "two colours per video: {:?}", single.1);
    assert_eq!(sharded, single, "same videos and shots");
    let client = Client::new(host.addr);
    for text in ["red", "a blue car", "purple", "black and white", "yellow"] {
        let top = |collection: &str| -> Vec<(String, u64, u64, f64)> {
            let answer = client.search(&json!({"text": text, "k": 10, "collection": collection}));
            assert_eq!(answer.status, 200, "{}", answer.body);
            answer.json()["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let n = |k: &str| r[k].as_u64().unwrap();
                    (r["video_id"].as_str().unwrap().to_string(), n("start_ms"), n("end_ms"), r["score"].as_f64().unwrap())
                })
                .collect()
        };
        let (a, b) = (top("single"), top("sharded"));
        assert_eq!(a.len(), 10, "{text}");
        let key = |v: &[(String, u64, u64, f64)]| v.iter().map(|h| (h.0.clone(), h.1, h.2)).collect::<Vec<_>>();
        assert_eq!(key(&a), key(&b), "top 10 for {text:?}");
        for (x, y) in a.iter().zip(&b) {
            assert!((x.3 - y.3).abs() < 1e-4, "{text:?}: scores {} vs {}", x.3, y.3);
        }
    }
    s.rt.block_on(host.shutdown());
}

#[test]
fn a_killed_worker_loses_nothing_and_publish_names_what_is_missing() {
    let s = Setup::new();
    let collection = "killed";
    let victim = 1;
    let own = owned_by(victim);
    assert_eq!(own.len(), 4);

    // Kill worker 1 (one decoder, so its videos finish one after another)
    // as soon as its first finished video is in the bucket.
    let mut child = s
        .worker(collection, victim, "staging-first-pod")
        .args(["--decoders", "1"])
        .output_piped();
    let records = s.work_objects_dir(collection);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let any_record = std::fs::read_dir(&records)
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".json")))
            .unwrap_or(false);
        if any_record {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "worker {victim} ended before its first video was saved");
        assert!(Instant::now() < deadline, "worker {victim} saved nothing in 120 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let saved = s.finished_in_bucket(collection);
    assert!(!saved.is_empty() && saved.iter().all(|id| own.contains(id)), "{saved:?} of {own:?}");
    assert!(saved.len() < own.len(), "the kill came after the worker's last video: {saved:?}");

    // Publish now: what is there goes out, the rest is named, each with
    // its worker.
    let stdout = ok(
        s.indexer(collection, "staging-publish", &["publish", "--shards", "3"]).output().unwrap(),
        "publish while workers are missing",
    );
    assert_eq!(videos_row(&stdout).0, saved.len(), "{stdout}");
    let missing: Vec<&str> = stdout.lines().filter(|l| l.starts_with("missing: ")).collect();
    assert_eq!(missing.len(), TAPES.len() - saved.len(), "{stdout}");
    for id in tape_ids().iter().filter(|id| !saved.contains(id)) {
        let line = format!("(video {id}, worker {}/3)", Shard::of(id, WORKERS));
        assert!(missing.iter().any(|l| l.contains(&format!("{id}.mp4")) && l.ends_with(&line)), "{id}: {missing:?}");
    }
    assert_eq!(s.current(collection).as_deref(), Some("v000001"));

    // The worker again, on a fresh pod (nothing local): it redoes only
    // what it had not finished.
    let stdout = ok(s.worker(collection, victim, "staging-second-pod").output().unwrap(), "the re-run worker");
    assert_eq!(videos_row(&stdout), (own.len(), own.len() - saved.len(), saved.len()), "{stdout}");
    let stdout = ok(s.indexer(collection, "staging-publish", &["publish"]).output().unwrap(), "publish again");
    assert_eq!(videos_row(&stdout).0, own.len(), "{stdout}");
    assert_eq!(s.current(collection).as_deref(), Some("v000002"));
}

/// Spawning with stdout and stderr captured.
trait Piped {
    fn output_piped(&mut self) -> std::process::Child;
}

impl Piped for Command {
    fn output_piped(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    }
}
