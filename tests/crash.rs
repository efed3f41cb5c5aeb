//! Crash anywhere, lose nothing: `busca-index` is killed with SIGKILL at
//! seeded random moments, in a folder and against the S3 test server, and
//! after every kill the collection must still be whole.
//!
//! A clean calibration run records every crash point it passes
//! (`busca_core::crash`: decode, encode, analysis, each bundle file, the
//! manifest, the rename, the `CURRENT` switch inside its lock, each S3
//! object, the pointer, the prune) and how long it takes. Each trial then
//! re-records one or two of the four input videos with other colours (new
//! content, so they are indexed again and a new version is due) and kills
//! the indexer either at a random pass of a random point (`BUSCA_CRASH_AT`)
//! or after a random delay within the clean run's time. After the kill:
//! - `CURRENT` is absent (nothing published yet) or names a version whose
//!   every file's sha256 matches its manifest and that the search code loads;
//! - every work record is whole: its data files exist at the sizes it names;
//!
//! and the next run finishes, leaves no scratch version or temporary file
//! behind, and publishes a version that passes the same checks and holds
//! exactly the inputs as they are now (file name and content sha256).
//!
//! `BUSCA_CRASH_KILLS` sets the kills per store (CI: a handful; the bench:
//! 50): trials go on until that many landed (a drawn point a run does not
//! reach that often, or a delay past its end, lets it finish: that trial
//! still gets every check), at most four times as many trials.
//! `BUSCA_CRASH_SEED` sets the seed, and `BUSCA_CRASH_REPORT` names a file
//! that receives one JSON line per store with the tally.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use busca_core::bundle::{OpenBundle, Verify, VIDEOS_FILE};
use busca_core::search::Collection;
use busca_core::shot::VideoRecord;
use busca_indexer::work::FinishedVideo;
use busca_s3::{BundleBucket, S3Url};
use busca_tests::*;

const COLLECTION: &str = "crash";
const BUCKET: &str = "busca-crash";
/// Four input videos, each two colours of one second: short, so that many
/// trials fit.
const TAPES: usize = 4;
/// The colours a re-recorded tape is drawn from (the tiny model's).
const COLOURS: &[&str] = &["red", "green", "blue", "yellow", "cyan", "magenta", "orange", "purple", "white", "black"];

/// splitmix64: a seeded generator for the trials (the test crate has no rand).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Where the collection lives.
enum Store {
    Folder(PathBuf),
    S3 { server: S3Server, rt: tokio::runtime::Runtime, staging: PathBuf },
}

impl Store {
    fn name(&self) -> &'static str {
        match self {
            Store::Folder(_) => "folder",
            Store::S3 { .. } => "s3",
        }
    }

    fn url(&self) -> String {
        format!("s3://{BUCKET}/bundles")
    }

    fn indexer(&self, videos: &[PathBuf]) -> Command {
        let mut cmd = indexer_command(COLLECTION);
        match self {
            Store::Folder(root) => {
                cmd.arg("--out").arg(root);
            }
            Store::S3 { server, staging, .. } => {
                cmd.args(["--out", &self.url(), "--endpoint-url", &server.endpoint(), "--path-style"])
                    .args(["--keep-versions", "2"])
                    .arg("--staging")
                    .arg(staging)
                    .envs(server.env());
            }
        }
        cmd.args(videos).env_remove(busca_core::crash::CRASH_AT_ENV).env_remove(busca_core::crash::CRASH_TRACE_ENV);
        cmd
    }

    fn bucket(&self) -> Option<(BundleBucket, &tokio::runtime::Runtime)> {
        let Store::S3 { server, rt, .. } = self else { return None };
        let url: S3Url = self.url().parse().unwrap();
        Some((rt.block_on(BundleBucket::connect(url, &server.connect_options())).unwrap(), rt))
    }

    /// The current version's videos, `None` when nothing is published;
    /// panics with the reason when the current version is not whole.
    fn check_current(&self, scratch: &Path) -> Option<Vec<Input>> {
        let dir = match self {
            Store::Folder(root) => {
                let dir = root.join(COLLECTION);
                busca_core::bundle::read_current(&dir).unwrap()?;
                dir
            }
            Store::S3 { .. } => {
                let (bucket, rt) = self.bucket().unwrap();
                let pointer = rt.block_on(bucket.current(COLLECTION)).unwrap()?;
                let dest = scratch.join(format!("download-{}", pointer.version));
                let _ = std::fs::remove_dir_all(&dest);
                rt.block_on(bucket.download_version(COLLECTION, &pointer.version, &dest))
                    .unwrap_or_else(|e| panic!("CURRENT names {} but it does not download whole: {e}", pointer.version));
                let open = OpenBundle::open_version_dir(&dest, Verify::All)
                    .unwrap_or_else(|e| panic!("{} in the bucket does not verify: {e}", pointer.version));
                return Some(loaded_sources(open));
            }
        };
        let open = OpenBundle::open_current(&dir, Verify::All).unwrap_or_else(|e| panic!("CURRENT does not verify: {e}"));
        Some(loaded_sources(open))
    }

    /// Every work record whole: its data files exist with the sizes it
    /// names.
    fn check_work(&self) {
        let dir = match self {
            Store::Folder(root) => root.join(COLLECTION).join("work"),
            Store::S3 { server, .. } => server.root.join(BUCKET).join("bundles").join(COLLECTION).join("work"),
        };
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let bytes = std::fs::read(entry.path()).unwrap();
            let record: FinishedVideo = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("work record {name} is not whole: {e}"));
            let size = |file: &str| std::fs::metadata(dir.join(file)).map(|m| m.len()).ok();
            let frames = record.t_ms.len() as u64;
            assert_eq!(
                size(&record.embeddings_file),
                Some(frames * record.dim as u64 * 2),
                "{name}: its embeddings are missing or short"
            );
            let thumbs: u64 = record.thumbs.iter().map(|&(_, len)| u64::from(len)).sum();
            assert_eq!(size(&record.thumbs_file), Some(thumbs), "{name}: its thumbnails are missing or short");
        }
    }

    /// After a completed run: no scratch version or temporary file is left.
    fn check_clean(&self) {
        let Store::Folder(root) = self else { return };
        let dir = root.join(COLLECTION);
        for sub in ["versions", "work"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                assert!(!name.starts_with('.'), "{sub}/{name} left behind by a killed run");
            }
        }
        assert!(!dir.join(busca_core::fence::LOCK_FILE).exists(), "a lock left behind");
    }
}

fn file_name(uri: &str) -> String {
    Path::new(uri).file_name().unwrap().to_string_lossy().into_owned()
}

/// An input video as a version holds it: file name and content sha256.
type Input = (String, String);

fn loaded_sources(open: OpenBundle) -> Vec<Input> {
    let videos: Vec<VideoRecord> = open.read_json(VIDEOS_FILE).unwrap();
    let version = open.manifest.version.clone();
    Collection::load(open).unwrap_or_else(|e| panic!("{version} verifies but does not load: {e}"));
    let mut sources: Vec<Input> = videos.iter().map(|v| (file_name(&v.source_uri), v.content_sha256.clone())).collect();
    sources.sort();
    sources
}

/// The inputs as they are on disk now.
fn inputs_now(videos: &[PathBuf]) -> Vec<Input> {
    let mut now: Vec<Input> = videos
        .iter()
        .map(|v| (file_name(&v.to_string_lossy()), busca_core::bundle::hash_file(v).unwrap().sha256))
        .collect();
    now.sort();
    now
}

/// Records `path` anew with two colours drawn from `rng`.
fn record_tape(path: &Path, rng: &mut Rng) {
    let a = COLOURS[rng.below(COLOURS.len() as u64) as usize];
    let b = COLOURS[rng.below(COLOURS.len() as u64) as usize];
    make_colour_video(path, &[(a, 1), (b, 1)]);
}

/// How a trial's run ended.
#[derive(Debug, PartialEq)]
enum Ending {
    Killed,
    Finished,
}

fn wait_killed(mut child: std::process::Child, after: Option<Duration>, what: &str) -> Ending {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            if status.signal() == Some(9) {
                return Ending::Killed;
            }
            assert!(
                status.success(),
                "{what}: busca-index failed ({status}):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return Ending::Finished;
        }
        if after.is_some_and(|a| started.elapsed() >= a) {
            child.kill().unwrap(); // SIGKILL, our own child
            child.wait().unwrap();
            return Ending::Killed;
        }
        assert!(Instant::now() < deadline, "{what}: busca-index ran for 5 minutes");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn spawn(mut cmd: Command) -> std::process::Child {
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("start busca-index")
}

/// The tally of one store's campaign.
#[derive(Debug, Default, serde::Serialize)]
struct Tally {
    store: &'static str,
    seed: u64,
    trials: usize,
    kills: usize,
    at_points: BTreeMap<String, usize>,
    timed_kills: usize,
    finished_before_the_kill: usize,
    survived: usize,
    lost: usize,
}

fn campaign(store: Store, scratch: &Path, videos: &[PathBuf], kills: usize, seed: u64) -> Tally {
    let mut rng = Rng(seed);
    // Calibration: a clean run of every video (in a folder of its own; in
    // the bucket itself, which then starts the campaign with a version).
    let trace = scratch.join(format!("trace-{}", store.name()));
    let own_folder = Store::Folder(scratch.join("calibration"));
    let probe = match &store {
        Store::Folder(_) => &own_folder,
        Store::S3 { .. } => &store,
    };
    let (points, clean_time) = {
        let mut cmd = probe.indexer(videos);
        cmd.env(busca_core::crash::CRASH_TRACE_ENV, &trace);
        let started = Instant::now();
        assert_eq!(wait_killed(spawn(cmd), None, "calibration"), Ending::Finished);
        let elapsed = started.elapsed();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for line in std::fs::read_to_string(&trace).unwrap().lines() {
            *counts.entry(line.to_string()).or_default() += 1;
        }
        (counts, elapsed)
    };
    for expected in ["decode.sample", "encode.batch", "work.record", "analysis", "bundle.file", "bundle.manifest"] {
        assert!(points.contains_key(expected), "the calibration run never passed {expected}: {points:?}");
    }
    if matches!(store, Store::S3 { .. }) {
        for expected in ["s3.object", "s3.manifest", "s3.pointer", "s3.work"] {
            assert!(points.contains_key(expected), "the calibration run never passed {expected}: {points:?}");
        }
        store.check_current(scratch).expect("the calibration run published");
    }
    let names: Vec<&String> = points.keys().collect();
    let mut tally = Tally { store: store.name(), seed, ..Tally::default() };
    let mut trial = 0;
    while tally.kills < kills && trial < 4 * kills {
        // New content for one or two tapes (the first trial on a folder
        // publishes the collection's first version instead).
        if trial > 0 || matches!(store, Store::S3 { .. }) {
            let before = inputs_now(videos);
            while inputs_now(videos) == before {
                for _ in 0..1 + rng.below(2) {
                    record_tape(&videos[rng.below(videos.len() as u64) as usize], &mut rng);
                }
            }
        }
        let expected = inputs_now(videos);
        let what = format!("{} trial {trial}", store.name());

        let mut cmd = store.indexer(videos);
        let timed = rng.below(3) == 0;
        let (ending, label) = if timed {
            let delay = Duration::from_micros(rng.below(clean_time.as_micros() as u64));
            (wait_killed(spawn(cmd), Some(delay), &what), format!("after {delay:?}"))
        } else {
            let point = names[rng.below(names.len() as u64) as usize];
            let n = 1 + rng.below(points[point]);
            cmd.env(busca_core::crash::CRASH_AT_ENV, format!("{point}:{n}"));
            (wait_killed(spawn(cmd), None, &what), format!("{point}:{n}"))
        };
        match (&ending, timed) {
            (Ending::Finished, _) => tally.finished_before_the_kill += 1,
            (Ending::Killed, true) => {
                tally.kills += 1;
                tally.timed_kills += 1;
            }
            (Ending::Killed, false) => {
                tally.kills += 1;
                *tally.at_points.entry(label.split(':').next().unwrap().to_string()).or_default() += 1;
            }
        }
        // Whatever moment it died at, what is there is whole.
        store.check_work();
        let before = store.check_current(scratch);
        if ending == Ending::Finished {
            assert_eq!(before.as_ref(), Some(&expected), "{what}: a finished run published something else");
        }
        // The next run finishes with exactly this subset.
        assert_eq!(wait_killed(spawn(store.indexer(videos)), None, &what), Ending::Finished, "{what}");
        let after = store.check_current(scratch);
        assert_eq!(after.as_ref(), Some(&expected), "{what}, killed {label}: the re-run published other videos");
        store.check_work();
        store.check_clean();
        tally.survived += 1;
        let fate = match ending {
            Ending::Killed => format!("killed at {label}"),
            Ending::Finished => format!("finished before {label}"),
        };
        eprintln!("{what}: {fate}; the re-run published the {} inputs as they are", expected.len());
        trial += 1;
    }
    tally.trials = trial;
    tally.lost = tally.trials - tally.survived;
    tally
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn report(tally: &Tally) {
    eprintln!("crash campaign: {}", serde_json::to_string(tally).unwrap());
    if let Some(path) = std::env::var_os("BUSCA_CRASH_REPORT") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
        writeln!(file, "{}", serde_json::to_string(tally).unwrap()).unwrap();
    }
}

fn make_tapes(dir: &Path, seed: u64) -> Vec<PathBuf> {
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    let mut rng = Rng(seed ^ 0x7a9e);
    (0..TAPES)
        .map(|i| {
            let path = videos.join(format!("tape_{i}.mp4"));
            record_tape(&path, &mut rng);
            path
        })
        .collect()
}

#[test]
fn a_folder_collection_survives_kills_at_random_moments() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let kills = setting("BUSCA_CRASH_KILLS", 6) as usize;
    let seed = setting("BUSCA_CRASH_SEED", 18);
    let videos = make_tapes(dir.path(), seed);
    let tally = campaign(Store::Folder(dir.path().join("bundles")), dir.path(), &videos, kills, seed);
    report(&tally);
    assert_eq!(tally.lost, 0);
    assert!(tally.kills >= kills, "fewer kills landed than asked: {tally:?}");
}

#[test]
fn an_s3_collection_survives_kills_at_random_moments() {
    let (dir, server, rt) = S3Server::with_bucket(BUCKET);
    let kills = setting("BUSCA_CRASH_KILLS", 6) as usize;
    let seed = setting("BUSCA_CRASH_SEED", 18) + 1;
    let videos = make_tapes(dir.path(), seed);
    let store = Store::S3 { server, rt, staging: dir.path().join("staging") };
    let tally = campaign(store, dir.path(), &videos, kills, seed);
    report(&tally);
    assert_eq!(tally.lost, 0);
    assert!(tally.kills >= kills, "fewer kills landed than asked: {tally:?}");
}
