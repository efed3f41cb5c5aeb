//! S3 end to end, against a real S3-compatible server (s3s-fs) on 127.0.0.1:
//! `busca-index --out s3://...` publishes, `busca-serve` (in-process) mirrors
//! and serves, a new version is picked up without a restart and without a
//! mixed answer, a server killed mid-upload leaves the old version served
//! and a re-run completes, and bad credentials or a missing bucket say so.
//! The binary's other modules: `crash` (SIGKILL at random moments),
//! `disk_full`, `faults` (304s and damaged parts through a proxy) and
//! `shards` (many indexing machines).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use busca_host::{Location, RunningServer};
use busca_s3::{BundleBucket, S3Url};
use busca_tests::*;
use serde_json::json;

const COLLECTION: &str = "archive";
const BUCKET: &str = "busca-test";
const RGB: &[(&str, u32)] = &[("red", 3), ("green", 3), ("blue", 3)];
const WARM: &[(&str, u32)] = &[("yellow", 3), ("magenta", 3)];

struct Setup {
    dir: tempfile::TempDir,
    server: S3Server,
    rt: tokio::runtime::Runtime,
    rgb: PathBuf,
    warm: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let (dir, server, rt) = S3Server::with_bucket(BUCKET);
        let videos = dir.path().join("videos");
        std::fs::create_dir_all(&videos).unwrap();
        let (rgb, warm) = (videos.join("rgb.mp4"), videos.join("warm.mp4"));
        make_colour_video(&rgb, RGB);
        make_colour_video(&warm, WARM);
        Setup {
            dir,
            server,
            rt,
            rgb,
            warm,
        }
    }

    fn url(&self) -> String {
        format!("s3://{BUCKET}/bundles")
    }

    /// A `busca-index` publishing to `url` on the server at `endpoint`
    /// (through the standard credential chain), with its own staging folder.
    fn index_command(
        &self,
        url: &str,
        endpoint: &str,
        staging: &str,
        videos: &[&Path],
    ) -> std::process::Command {
        let mut cmd = indexer_command(COLLECTION);
        cmd.args(["--out", url, "--endpoint-url", endpoint, "--path-style"])
            .arg("--staging")
            .arg(self.dir.path().join(staging))
            .args(videos)
            .envs(self.server.env());
        cmd
    }

    fn index(&self, endpoint: &str, staging: &str, videos: &[&Path]) -> std::process::Output {
        self.index_command(&self.url(), endpoint, staging, videos)
            .output()
            .expect("run busca-index")
    }

    fn index_ok(&self, staging: &str, videos: &[&Path]) -> String {
        let out = self.index(&self.server.endpoint(), staging, videos);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "busca-index failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn bucket(&self) -> BundleBucket {
        let url: S3Url = self.url().parse().unwrap();
        self.rt
            .block_on(BundleBucket::connect(url, &self.server.connect_options()))
            .unwrap()
    }

    fn current(&self) -> Option<String> {
        let bucket = self.bucket();
        self.rt
            .block_on(bucket.current(COLLECTION))
            .unwrap()
            .map(|p| p.version)
    }

    fn start_host(&self) -> RunningServer {
        let mut opts = self.server.serve_options(&self.url(), self.dir.path());
        opts.poll_interval_ms = 100;
        self.rt
            .block_on(busca_host::start(&opts))
            .expect("start busca-serve on S3")
    }
}

/// `(bundle version, video ids of the hits)` of a text search.
fn search(client: &Client, text: &str) -> (String, Vec<String>) {
    let answer = client.search(&json!({"text": text, "k": 10}));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    let videos = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["video_id"].as_str().unwrap().to_string())
        .collect();
    (body["bundle_version"].as_str().unwrap().to_string(), videos)
}

fn video_ids(bundle_root: &Path) -> Vec<(String, String)> {
    let open = busca_core::bundle::OpenBundle::open_current(
        &bundle_root.join(COLLECTION),
        busca_core::bundle::Verify::All,
    )
    .unwrap();
    let videos: Vec<busca_core::shot::VideoRecord> =
        open.read_json(busca_core::bundle::VIDEOS_FILE).unwrap();
    videos
        .into_iter()
        .map(|v| (v.source_uri, v.video_id))
        .collect()
}

fn id_of(ids: &[(String, String)], file: &str) -> String {
    ids.iter()
        .find(|(uri, _)| uri.ends_with(file))
        .unwrap_or_else(|| panic!("no {file} in {ids:?}"))
        .1
        .clone()
}

#[test]
fn publish_serve_and_switch_versions_without_a_mixed_answer() {
    let s = Setup::new();
    s.index_ok("staging-a", &[&s.rgb]);
    assert_eq!(s.current().as_deref(), Some("v000001"));

    let host = s.start_host();
    let client = Client::new(host.addr);
    let (version, hits) = search(&client, "red");
    assert_eq!(version, "v000001");
    let v1_ids = video_ids(&host.bundles_root);
    let rgb_id = id_of(&v1_ids, "rgb.mp4");
    assert_eq!(hits.first(), Some(&rgb_id), "red finds the rgb video");
    // Keyframes come from the mirror, checked against the manifest.
    let shot =
        client.search(&json!({"text": "red", "k": 1})).json()["results"][0]["shot_id"].clone();
    let keyframe = client.get(&format!("/api/keyframes/{COLLECTION}/{shot}.jpg"), &[]);
    assert_eq!(keyframe.status, 200);
    assert_eq!(keyframe.header("x-bundle-version"), Some("v000001"));

    // Searches run without pause while v2 (with the warm video) is published.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (client, stop) = (client.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                seen.push(search(&client, "yellow"));
            }
            seen
        })
    };
    let stdout = s.index_ok("staging-a", &[&s.rgb, &s.warm]);
    assert!(stdout.contains("v000002"), "{stdout}");
    assert_eq!(s.current().as_deref(), Some("v000002"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while search(&client, "yellow").0 != "v000002" {
        assert!(
            Instant::now() < deadline,
            "the host did not switch to v000002"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();

    let v2_ids = video_ids(&host.bundles_root);
    let warm_id = id_of(&v2_ids, "warm.mp4");
    assert_eq!(
        id_of(&v2_ids, "rgb.mp4"),
        rgb_id,
        "video ids are stable across versions"
    );
    assert!(seen.iter().any(|(v, _)| v == "v000001") && seen.iter().any(|(v, _)| v == "v000002"));
    let mut switched = false;
    for (version, hits) in &seen {
        match version.as_str() {
            // v1 has no warm video: one warm hit would be a mixed answer.
            "v000001" => {
                assert!(!switched, "answered from v000001 after v000002: {seen:?}");
                assert!(
                    !hits.contains(&warm_id),
                    "v000001 answer with a v000002 shot: {hits:?}"
                );
            }
            "v000002" => {
                switched = true;
                assert_eq!(
                    hits.first(),
                    Some(&warm_id),
                    "yellow finds the warm video in v000002"
                );
            }
            other => panic!("unexpected version {other}"),
        }
    }

    // Incremental against S3 from a machine with nothing local: the current
    // tables and frame cache are read from the bucket, nothing is re-decoded.
    let stdout = s.index_ok("staging-b", &[&s.rgb, &s.warm]);
    assert!(stdout.contains("v000002"), "{stdout}");
    assert_eq!(
        s.current().as_deref(),
        Some("v000002"),
        "nothing changed: no new version"
    );
    assert!(stdout.contains("0 indexed, 2 reused"), "{stdout}");
    s.rt.block_on(host.shutdown());
}

/// Forwards TCP to `upstream`, slowly (so an upload takes seconds), until
/// dropped.
fn slow_proxy(rt: &tokio::runtime::Runtime, upstream: u16) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut outbound) =
                    tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut ri, mut wi) = inbound.split();
                let (mut ro, mut wo) = outbound.split();
                let up = async {
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = ri.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(15)).await;
                        wo.write_all(&buf[..n]).await?;
                    }
                    wo.shutdown().await
                };
                let down = tokio::io::copy(&mut ro, &mut wi);
                // Either side closing (the server killed) closes both, as a
                // real network path would.
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
            });
        }
    });
    port
}

/// Whether any file exists under `dir` (the server stores objects as files).
fn has_file(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let path = e.path();
            path.is_file() || has_file(&path)
        })
    })
}

/// The child's output, or a panic (after killing it) when it runs too long.
fn wait_at_most(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("busca-index still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_server_killed_mid_upload_leaves_the_old_version_served_and_a_rerun_completes() {
    let mut s = Setup::new();
    s.index_ok("staging", &[&s.rgb]);
    let host = s.start_host();
    let client = Client::new(host.addr);
    assert_eq!(search(&client, "red").0, "v000001");

    // Publish v2 through a slow proxy and kill the server as soon as the
    // first object of v2 lands in its data folder.
    let proxy = slow_proxy(&s.rt, s.server.port);
    let v2_dir = s
        .server
        .root
        .join(BUCKET)
        .join("bundles")
        .join(COLLECTION)
        .join("versions")
        .join("v000002");
    let indexer = s
        .index_command(
            &s.url(),
            &format!("http://127.0.0.1:{proxy}"),
            "staging",
            &[&s.rgb, &s.warm],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !has_file(&v2_dir) {
        assert!(
            Instant::now() < deadline,
            "the upload of v000002 never started"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    s.server.kill();
    let out = wait_at_most(indexer, Duration::from_secs(180));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the publish cannot succeed with the server dead"
    );
    assert!(
        stderr.contains("127.0.0.1"),
        "the error names the server: {stderr}"
    );
    assert!(
        !v2_dir.join("manifest.json").exists(),
        "the manifest goes last, so v000002 is incomplete"
    );

    // While the server is down the host keeps serving what it has.
    assert_eq!(search(&client, "red").0, "v000001");
    s.server.restart();
    assert_eq!(
        s.current().as_deref(),
        Some("v000001"),
        "CURRENT never named the half version"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(search(&client, "yellow").0, "v000001");

    // The re-run never writes into a version that has objects: when the
    // kill left some of v000002 behind, it publishes v000003 and deletes
    // them; when none had completed, v000002 is still free.
    let bucket = s.bucket();
    let half_prefix = bucket.key(COLLECTION, "versions/v000002/");
    let half_objects =
        s.rt.block_on(bucket.client().list(BUCKET, &half_prefix))
            .unwrap()
            .len();
    let expected = if half_objects > 0 {
        "v000003"
    } else {
        "v000002"
    };
    let stdout = s.index_ok("staging", &[&s.rgb, &s.warm]);
    assert!(
        stdout.contains(expected),
        "{half_objects} objects left in v000002: {stdout}"
    );
    assert_eq!(s.current().as_deref(), Some(expected));
    let versions = s.rt.block_on(bucket.list_versions(COLLECTION)).unwrap();
    assert_eq!(
        versions,
        ["v000001", expected],
        "no half-written version is left"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (version, hits) = search(&client, "yellow");
        if version == expected {
            let warm_id = id_of(&video_ids(&host.bundles_root), "warm.mp4");
            assert_eq!(hits.first(), Some(&warm_id));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the host did not switch to {expected}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s.rt.block_on(host.shutdown());
}

#[test]
fn bad_credentials_and_a_missing_bucket_are_named() {
    let s = Setup::new();
    // Missing bucket: the indexer stops before decoding anything.
    let out = s
        .index_command(
            "s3://no-such-bucket/x",
            &s.server.endpoint(),
            "staging",
            &[&s.rgb],
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bucket \"no-such-bucket\" does not exist"),
        "{stderr}"
    );

    // Wrong secret.
    let out = s
        .index_command(&s.url(), &s.server.endpoint(), "staging", &[&s.rgb])
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("access to bucket \"busca-test\"") && stderr.contains("refused"),
        "{stderr}"
    );
    assert_eq!(s.current(), None, "nothing was published");

    // The host says the same at start-up.
    let mut opts = s.server.serve_options(&s.url(), s.dir.path());
    opts.s3_credentials = Some((S3_ACCESS_KEY.into(), "wrong-secret".into()));
    let err =
        s.rt.block_on(busca_host::start(&opts))
            .err()
            .unwrap()
            .to_string();
    assert!(err.contains("access to bucket \"busca-test\""), "{err}");
    opts.bundles = Location::S3("s3://no-such-bucket/x".parse().unwrap());
    opts.s3_credentials = Some((S3_ACCESS_KEY.into(), S3_SECRET_KEY.into()));
    let err =
        s.rt.block_on(busca_host::start(&opts))
            .err()
            .unwrap()
            .to_string();
    assert!(
        err.contains("bucket \"no-such-bucket\" does not exist"),
        "{err}"
    );
}

/// Copies complete version `from` of the bucket to version `to` (same
/// files, a manifest naming `to`): versions to prune or to break, without
/// indexing again. Returns the local copy of `to`.
fn copy_version(s: &Setup, bucket: &BundleBucket, from: &str, to: &str) -> PathBuf {
    let dir = s.dir.path().join(format!("copies/{to}"));
    s.rt.block_on(bucket.download_version(COLLECTION, from, &dir)).unwrap();
    let manifest_path = dir.join(busca_core::bundle::MANIFEST_FILE);
    let mut manifest: busca_core::bundle::BundleManifest =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest.version = to.to_string();
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    s.rt.block_on(bucket.upload_version(COLLECTION, &dir, &manifest)).unwrap();
    dir
}

fn versions(s: &Setup, bucket: &BundleBucket) -> Vec<String> {
    s.rt.block_on(bucket.list_versions(COLLECTION)).unwrap()
}

#[test]
fn pruning_keeps_the_newest_versions_and_whatever_current_names_even_after_a_rollback() {
    let s = Setup::new();
    s.index_ok("staging", &[&s.rgb]);
    let bucket = s.bucket();
    for n in 2..=7 {
        let v = format!("v{n:06}");
        copy_version(&s, &bucket, "v000001", &v);
        s.rt.block_on(bucket.set_current(COLLECTION, &v)).unwrap();
    }
    assert_eq!(versions(&s, &bucket).len(), 7);
    let deleted = s.rt.block_on(bucket.prune(COLLECTION, 2)).unwrap();
    assert_eq!(deleted, ["v000001", "v000002", "v000003", "v000004", "v000005"]);
    assert_eq!(versions(&s, &bucket), ["v000006", "v000007"]);

    // Three more, then a rollback to the oldest of them: CURRENT is older
    // than the two newest and must survive their pruning. A version whose
    // upload is under way (files, no manifest yet) is newer than every
    // complete one and is left alone.
    for n in 8..=10 {
        copy_version(&s, &bucket, "v000007", &format!("v{n:06}"));
    }
    s.rt.block_on(bucket.set_current(COLLECTION, "v000008")).unwrap();
    let uploading = s.rt.block_on(bucket.client().list(BUCKET, &bucket.key(COLLECTION, "versions/v000010/"))).unwrap();
    let file = uploading.iter().find(|o| !o.key.ends_with("manifest.json")).unwrap();
    let bytes = s.rt.block_on(bucket.client().get_bytes(BUCKET, &file.key)).unwrap().unwrap();
    let in_progress = file.key.replace("v000010", "v000011");
    s.rt.block_on(bucket.client().put_bytes(BUCKET, &in_progress, bytes)).unwrap();
    let deleted = s.rt.block_on(bucket.prune(COLLECTION, 2)).unwrap();
    assert_eq!(deleted, ["v000006", "v000007"]);
    assert_eq!(versions(&s, &bucket), ["v000008", "v000009", "v000010", "v000011"]);
    assert_eq!(s.current().as_deref(), Some("v000008"));
    let check = s.dir.path().join("check-v8");
    s.rt.block_on(bucket.download_version(COLLECTION, "v000008", &check)).expect("CURRENT is whole");

    // The indexer's own --keep-versions on its next publish: the new version
    // and the newest before it stay; the half-uploaded v000011 (older than
    // the newest complete version now) goes.
    let mut cmd = s.index_command(&s.url(), &s.server.endpoint(), "staging", &[&s.rgb, &s.warm]);
    let out = cmd.args(["--keep-versions", "2"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.current().as_deref(), Some("v000012"));
    assert_eq!(versions(&s, &bucket), ["v000010", "v000012"]);
}

#[test]
fn a_corrupted_object_keeps_the_old_version_served_and_says_which_object() {
    let s = Setup::new();
    s.index_ok("staging", &[&s.rgb]);
    let host = s.start_host();
    let client = Client::new(host.addr);
    assert_eq!(search(&client, "red").0, "v000001");

    // v000002 is v000001's files with one byte of shots.json flipped in the
    // server's own storage, as a disk or a faulty copy would leave it.
    let bucket = s.bucket();
    copy_version(&s, &bucket, "v000001", "v000002");
    let key = bucket.key(COLLECTION, "versions/v000002/shots.json");
    let stored = s.server.root.join(BUCKET).join(&key);
    let good = std::fs::read(&stored).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x20;
    std::fs::write(&stored, &bad).unwrap();
    s.rt.block_on(bucket.set_current(COLLECTION, "v000002")).unwrap();

    // What a mirror says, the host's included: the object, and why.
    let mirror = busca_s3::Mirror::new(s.bucket(), s.dir.path().join("probe-mirror"));
    let err = s.rt.block_on(mirror.sync()).unwrap_err().to_string();
    assert!(err.contains("v000002/shots.json") && err.contains("sha256"), "{err}");
    // The host keeps answering from v000001 over twenty of its polls.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert_eq!(search(&client, "red").0, "v000001");
    }
    // Repaired, it is taken up.
    std::fs::write(&stored, &good).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while search(&client, "red").0 != "v000002" {
        assert!(Instant::now() < deadline, "the repaired v000002 was not taken up");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.rt.block_on(host.shutdown());
}

#[test]
fn of_two_publishers_from_one_version_the_second_is_refused_and_told_the_winner() {
    let s = Setup::new();
    s.index_ok("staging", &[&s.rgb]);
    let bucket = s.bucket();
    // Both read v000001 (with its ETag) when they began.
    let base = s.rt.block_on(bucket.current(COLLECTION)).unwrap().expect("v000001 is current");
    copy_version(&s, &bucket, "v000001", "v000002");
    copy_version(&s, &bucket, "v000001", "v000003");
    s.rt.block_on(bucket.set_current_from(COLLECTION, "v000002", Some(&base))).unwrap();
    let err = s.rt.block_on(bucket.set_current_from(COLLECTION, "v000003", Some(&base))).unwrap_err();
    assert!(
        matches!(&err, busca_s3::S3Error::Conflict { found, version, .. } if found == "v000002" && version == "v000003"),
        "{err}"
    );
    assert!(err.to_string().contains("run the indexer again"), "{err}");
    assert_eq!(s.current().as_deref(), Some("v000002"), "the winner stays current");
    // A first publish is fenced too: If-None-Match: * on a pointer that exists.
    let err = s.rt.block_on(bucket.set_current_from(COLLECTION, "v000003", None)).unwrap_err();
    assert!(matches!(err, busca_s3::S3Error::Conflict { .. }), "{err}");
    // The indexer publishes on top of the winner.
    let stdout = s.index_ok("staging", &[&s.rgb, &s.warm]);
    assert!(stdout.contains("v000004"), "{stdout}");
}

/// Indexing on many machines, against the same S3 test server. A module of
/// this test binary rather than a binary of its own: each one links the
/// whole host, which costs CI a minute and a gigabyte.
mod crash;
mod disk_full;
mod faults;
mod shards;
