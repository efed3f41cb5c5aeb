//! End to end: colour videos made with ffmpeg → `busca-index` with the tiny
//! colour model → `busca-serve` (in-process, real HTTP on 127.0.0.1, random
//! port) with the real query component → search requests.
//!
//! One collection is indexed and one server started for the whole binary (the
//! pre-initialization is the expensive part); tests that need their own
//! server or bundles make them in their own temporary directory.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use busca_core::bundle::{OpenBundle, Verify, VIDEOS_FILE};
use busca_core::query::SearchRequest;
use busca_core::search::Collection;
use busca_core::shot_index::Method;
use busca_core::shot::VideoRecord;
use busca_host::snapshot::SnapshotSource;
use busca_host::{RunningServer, ServeOptions};
use busca_tests::*;
use serde_json::{json, Value};

const COLLECTION: &str = "demo";


struct Fixture {
    _dir: tempfile::TempDir,
    bundles: PathBuf,
    cache: PathBuf,
    videos: Vec<VideoRecord>,
    sample_fps: f32,
    client: Client,
    rt: tokio::runtime::Runtime,
    _server: RunningServer,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let videos = make_test_videos(dir.path());
        let bundles = dir.path().join("bundles");
        index_videos(&bundles, COLLECTION, &videos);
        let open = OpenBundle::open_current(&bundles.join(COLLECTION), Verify::All).unwrap();
        let videos: Vec<VideoRecord> = open.read_json(VIDEOS_FILE).unwrap();
        let sample_fps = open.manifest.segmentation.sample_fps;
        let cache = dir.path().join("snapshot-cache");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(start_server(&bundles, &cache, |_| {}));
        let client = Client::new(server.addr);
        Fixture {
            _dir: dir,
            bundles,
            cache,
            videos,
            sample_fps,
            client,
            rt,
            _server: server,
        }
    })
}

async fn start_server(
    bundles: &Path,
    cache: &Path,
    tweak: impl FnOnce(&mut ServeOptions),
) -> RunningServer {
    let mut opts = ServeOptions::new(
        component_wasm(),
        bundles.to_path_buf(),
        vec![tiny_model_dir()],
    );
    opts.listen = "127.0.0.1:0".parse().unwrap();
    opts.cache_dir = Some(cache.to_path_buf());
    tweak(&mut opts);
    busca_host::start(&opts).await.expect("start busca-serve")
}

impl Fixture {
    fn video_id(&self, file_name: &str) -> &str {
        &self
            .videos
            .iter()
            .find(|v| v.source_uri.ends_with(file_name))
            .unwrap_or_else(|| panic!("no video from {file_name} in {:?}", self.videos))
            .video_id
    }

    /// Half a sampling interval plus a little: how far a shot boundary may sit
    /// from the colour change it marks.
    fn boundary_tolerance_ms(&self) -> u64 {
        (1000.0 / self.sample_fps) as u64 + 50
    }

    /// The expected (video id, start ms, end ms) of the shot of `colour`.
    fn expected_shot(&self, colour: &str) -> (String, u64, u64) {
        for (file, segments) in [("rgb.mp4", RGB_VIDEO), ("warm.mp4", WARM_VIDEO)] {
            let mut start = 0;
            for (name, seconds) in segments {
                let end = start + u64::from(*seconds) * 1000;
                if *name == colour {
                    return (self.video_id(file).to_string(), start, end);
                }
                start = end;
            }
        }
        panic!("{colour} is in no test video")
    }

    fn search_ok(&self, request: Value) -> Value {
        let answer = self.client.search(&request);
        assert_eq!(answer.status, 200, "{request}: {}", answer.body);
        answer.json()
    }
}

fn results(response: &Value) -> &Vec<Value> {
    response["results"].as_array().expect("results array")
}

/// Asserts that `hit` is the shot of `colour` with timecodes at the colour's segment.
fn assert_is_shot_of(f: &Fixture, hit: &Value, colour: &str) {
    let (video_id, start, end) = f.expected_shot(colour);
    let tol = f.boundary_tolerance_ms();
    assert_eq!(hit["video_id"], video_id.as_str(), "{colour}: {hit}");
    let (hit_start, hit_end) = (
        hit["start_ms"].as_u64().unwrap(),
        hit["end_ms"].as_u64().unwrap(),
    );
    assert!(
        hit_start.abs_diff(start) <= tol,
        "{colour} shot starts at {hit_start}, expected {start}±{tol}"
    );
    assert!(
        hit_end.abs_diff(end) <= tol,
        "{colour} shot ends at {hit_end}, expected {end}±{tol}"
    );
    assert_eq!(
        hit["start_tc"],
        busca_core::shot::timecode(hit_start).as_str()
    );
    assert_eq!(hit["end_tc"], busca_core::shot::timecode(hit_end).as_str());
}

#[test]
fn text_query_finds_the_blue_shot_with_its_timecodes() {
    let f = fixture();
    let response = f.search_ok(json!({"text": "a blue scene"}));
    assert_eq!(response["collection"], COLLECTION);
    assert_eq!(response["model_id"], tiny_manifest().model_id.as_str());
    let hits = results(&response);
    assert!(
        hits.len() >= 5,
        "every shot is returned with k=20: {response}"
    );
    assert_is_shot_of(f, &hits[0], "blue");
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "scores not sorted: {scores:?}"
    );
    assert!(
        scores[0] > scores[1] + 0.1,
        "blue should stand out: {scores:?}"
    );
}

#[test]
fn spanish_colour_words_work_too() {
    let f = fixture();
    // "verde" is one CLIP BPE token, so the tiny model knows it (models/README.md).
    let response = f.search_ok(json!({"text": "verde", "k": 1}));
    assert_eq!(results(&response).len(), 1);
    assert_is_shot_of(f, &results(&response)[0], "green");
}

/// The multilingual text tower (SentencePiece Unigram tokenizer from the
/// bundle, its own graph) maps Spanish into the index the image tower made:
/// "un coche rojo" with lang=es ranks like "a red car" with CLIP's BPE.
#[test]
fn spanish_queries_go_to_the_multilingual_text_model_and_rank_like_english() {
    let f = fixture();
    let model = tiny_manifest();
    // tiny-colour-v1: "clip" speaks English, "multilingual" Spanish; the 24-d
    // family has only "multilingual", which speaks both.
    let (en_tower, es_tower) = (model.text_tower(None, Some("en")).unwrap(), model.text_tower(None, Some("es")).unwrap());
    assert_eq!(es_tower.id, "multilingual");
    let english = f.search_ok(json!({"text": "a red car", "k": 5}));
    assert_eq!(english["text_model"], model.default_text().id.as_str());
    assert_eq!(english["text_languages"], json!(model.default_text().languages));
    let spanish = f.search_ok(json!({"text": "un coche rojo", "lang": "es-ES", "k": 5}));
    assert_eq!(spanish["text_model"], "multilingual");
    assert_is_shot_of(f, &results(&spanish)[0], "red");
    let ids = |r: &Value| results(r).iter().map(|h| h["shot_id"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&spanish), ids(&english), "same ranking in both languages");
    for (es, en) in results(&spanish).iter().zip(results(&english)) {
        let (a, b) = (es["score"].as_f64().unwrap(), en["score"].as_f64().unwrap());
        assert!((a - b).abs() < 1e-3, "scores {a} vs {b}");
    }
    // Named explicitly, whatever the language.
    let named = f.search_ok(json!({"text": "rojo", "text_model": "multilingual", "k": 1}));
    assert_eq!(named["text_model"], "multilingual");
    assert_is_shot_of(f, &results(&named)[0], "red");
    if en_tower.id != es_tower.id {
        // CLIP's BPE splits "rojo" in two: the English tower does not know it.
        let english_tower = f.search_ok(json!({"text": "rojo", "lang": "en", "k": 1}));
        assert_eq!(english_tower["text_model"], en_tower.id.as_str());
        let (en, es) = (results(&english_tower)[0]["score"].as_f64().unwrap(), results(&named)[0]["score"].as_f64().unwrap());
        assert!(en < es - 0.3, "{en} vs {es}");
    }
    // An unknown text model is a 400 naming the ones there are.
    let answer = f.client.search(&json!({"text": "rojo", "text_model": "siglip"}));
    assert_eq!(answer.status, 400, "{}", answer.body);
    let message = answer.json()["error"]["message"].as_str().unwrap().to_string();
    let available = model.text.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(", ");
    assert!(message.contains("siglip") && message.contains(&available), "{message}");
    let answer = f.client.search(&json!({"text": "rojo", "lang": "<script>"}));
    assert_eq!(answer.status, 400, "{}", answer.body);
}

/// Spanish text and an image fuse as English text and the image do.
#[test]
fn spanish_text_and_an_image_fuse_like_english() {
    let f = fixture();
    let png = solid_png(colour("blue"), 32, 32);
    let fused = |text: &str, lang: &str| {
        let r = f.search_ok(json!({"text": text, "lang": lang, "image": base64(&png), "image_weight": 0.5, "k": 4}));
        results(&r).iter().map(|h| (h["shot_id"].as_u64().unwrap(), h["score"].as_f64().unwrap())).collect::<Vec<_>>()
    };
    let (es, en) = (fused("rojo", "es"), fused("red", "en"));
    assert_eq!(es.iter().map(|h| h.0).collect::<Vec<_>>(), en.iter().map(|h| h.0).collect::<Vec<_>>());
    let (red, blue) = (f.expected_shot("red"), f.expected_shot("blue"));
    let tol = f.boundary_tolerance_ms();
    let response = f.search_ok(json!({"text": "rojo", "lang": "es", "image": base64(&png), "image_weight": 0.5, "k": 2}));
    let top: Vec<(String, u64)> = results(&response)
        .iter()
        .map(|h| (h["video_id"].as_str().unwrap().to_string(), h["start_ms"].as_u64().unwrap()))
        .collect();
    for (video, start, _) in [red, blue] {
        assert!(top.iter().any(|(v, s)| *v == video && s.abs_diff(start) <= tol), "{top:?}");
    }
}

#[test]
fn image_query_finds_the_blue_shot() {
    let f = fixture();
    let png = solid_png(colour("blue"), 64, 48);
    let response = f.search_ok(json!({"image": base64(&png), "k": 3}));
    let hits = results(&response);
    assert_eq!(hits.len(), 3);
    assert_is_shot_of(f, &hits[0], "blue");
}

/// The frames the indexer embedded, taken from the source videos at each
/// shot's keyframe time by the ffmpeg CLI and sent back as image queries: each
/// finds its own shot first, with score >= 0.99, although the indexer scales
/// frames with swscale and the component with core's resampler (README,
/// "Exactness of the query path").
#[test]
fn each_shots_own_frame_finds_that_shot_first() {
    let f = fixture();
    let open = OpenBundle::open_current(&f.bundles.join(COLLECTION), Verify::SearchFiles).unwrap();
    let shots: Vec<busca_core::ShotRecord> = open.read_json(busca_core::bundle::SHOTS_FILE).unwrap();
    assert_eq!(shots.len(), RGB_VIDEO.len() + WARM_VIDEO.len(), "one shot per colour segment");
    let dir = tempfile::tempdir().unwrap();
    for shot in &shots {
        let video = f.videos.iter().find(|v| v.video_id == shot.video_id).unwrap();
        let source = video.source_uri.strip_prefix("file://").unwrap_or(&video.source_uri);
        let png = dir.path().join(format!("{}.png", shot.shot_id));
        let t = format!("{:.3}", shot.keyframe_ms as f64 / 1000.0);
        let status = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-i", source, "-ss", &t, "-frames:v", "1"])
            .arg(&png)
            .status()
            .unwrap();
        assert!(status.success(), "ffmpeg extracting {t} s of {source}");
        let response = f.search_ok(json!({"image": base64(&std::fs::read(&png).unwrap()), "k": 3}));
        let top = &results(&response)[0];
        assert_eq!(top["shot_id"].as_u64(), Some(shot.shot_id), "frame at {t} s of {}: {response}", shot.video_id);
        let score = top["score"].as_f64().unwrap();
        assert!(score >= 0.99, "shot {} scores {score} against its own frame", shot.shot_id);
    }
}

#[test]
fn text_and_image_together_rank_both_colours_first() {
    let f = fixture();
    let png = solid_png(colour("blue"), 32, 32);
    let response = f.search_ok(json!({"text": "red", "image": base64(&png), "image_weight": 0.5}));
    let hits = results(&response);
    let mut top: Vec<(String, u64)> = hits[..2]
        .iter()
        .map(|h| {
            (
                h["video_id"].as_str().unwrap().to_string(),
                h["start_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    top.sort();
    let tol = f.boundary_tolerance_ms();
    let (red_video, red_start, _) = f.expected_shot("red");
    let (blue_video, blue_start, _) = f.expected_shot("blue");
    assert!(
        top.iter()
            .any(|(v, s)| *v == red_video && s.abs_diff(red_start) <= tol)
            && top
                .iter()
                .any(|(v, s)| *v == blue_video && s.abs_diff(blue_start) <= tol),
        "red and blue must be the first two: {hits:?}"
    );
    let third = hits[2]["score"].as_f64().unwrap();
    assert!(
        hits[1]["score"].as_f64().unwrap() > third,
        "the other colours score lower"
    );
}

#[test]
fn more_like_this_puts_the_shot_first_and_matches_core_search_run_natively() {
    let f = fixture();
    let blue = f.search_ok(json!({"text": "blue", "k": 1}));
    let blue_id = results(&blue)[0]["shot_id"].as_u64().unwrap();
    let request = json!({"like_shot": blue_id, "k": 4});
    let hits = results(&f.search_ok(request.clone())).clone();
    // The same query through core's search on the bundle, natively: the
    // snapshot inside the component must answer exactly the same.
    let collection = Collection::load_current(&f.bundles.join(COLLECTION)).unwrap();
    let req: SearchRequest = serde_json::from_value(request).unwrap();
    let query = collection.compose(&req.parts(None, None)).unwrap();
    let native = collection.search(&query, req.k, &req.filter, Method::Auto, &[]);
    assert_eq!(native.method, Method::Exact, "a small collection is scanned");
    let ids = |hits: &[Value]| {
        hits.iter()
            .map(|h| h["shot_id"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&hits),
        native.hits.iter().map(|h| h.shot.shot_id).collect::<Vec<_>>()
    );
    assert_eq!(ids(&hits)[0], blue_id, "a shot is most like itself");
    assert!(hits[0]["score"].as_f64().unwrap() > 0.99, "{}", hits[0]);
    for (hit, want) in hits.iter().zip(&native.hits) {
        assert!((hit["score"].as_f64().unwrap() - f64::from(want.score)).abs() < 1e-4);
    }
}

#[test]
fn bad_inputs_get_their_status_and_the_server_lives_on() {
    let f = fixture();
    let oversized = vec![b' '; busca_core::Limits::DEFAULT.max_body_bytes + 1];
    let bomb = json!({"image": base64(&png_claiming(100_000, 100_000))}).to_string();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed JSON", b"{\"text\": \"blue\"".to_vec(), 400),
        ("unknown field", br#"{"txt": "blue"}"#.to_vec(), 400),
        ("oversized body", oversized, 413),
        ("image bomb", bomb.into_bytes(), 422),
        (
            "not an image",
            json!({"image": base64(b"GIF89a nonsense")})
                .to_string()
                .into_bytes(),
            422,
        ),
        ("k=1000", br#"{"text": "blue", "k": 1000}"#.to_vec(), 400),
        (
            "unknown collection",
            br#"{"text": "blue", "collection": "nope"}"#.to_vec(),
            404,
        ),
    ];
    for (what, body, status) in cases {
        let answer = f.client.post("/api/search", "application/json", &body);
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        let error = &answer.json()["error"];
        assert_eq!(
            error["status"].as_u64(),
            Some(u64::from(status)),
            "{what}: {}",
            answer.body
        );
        assert!(
            !error["message"].as_str().unwrap_or("").is_empty(),
            "{what}: empty message"
        );
        // Still serving, with the same index.
        let after = f.search_ok(json!({"text": "blue", "k": 1}));
        assert_is_shot_of(f, &results(&after)[0], "blue");
    }
}

#[test]
fn source_videos_are_served_with_ranges() {
    let f = fixture();
    let video = f
        .videos
        .iter()
        .find(|v| v.source_uri.ends_with("rgb.mp4"))
        .unwrap();
    let bytes = std::fs::read(
        video
            .source_uri
            .strip_prefix("file://")
            .unwrap_or(&video.source_uri),
    )
    .unwrap();
    let path = format!("/media/{COLLECTION}/{}", video.video_id);
    let part = f.client.get(&path, &[("range", "bytes=100-199")]);
    assert_eq!(part.status, 206, "{}", part.body);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-199/{}", bytes.len()).as_str())
    );
    let whole = f.client.get(&path, &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(
        whole.header("content-length"),
        Some(bytes.len().to_string().as_str())
    );
    let past_end = f
        .client
        .get(&path, &[("range", &format!("bytes={}-", bytes.len() + 10))]);
    assert_eq!(past_end.status, 416);
    assert_eq!(
        f.client
            .get(&format!("/media/{COLLECTION}/no-such-video"), &[])
            .status,
        404
    );
}

#[test]
fn a_restart_loads_the_compiled_snapshot_from_the_cache() {
    let f = fixture();
    // The fixture's server filled the cache; a second one must hit it.
    let second = f.rt.block_on(start_server(&f.bundles, &f.cache, |_| {}));
    assert_eq!(second.snapshot, SnapshotSource::Cache);
    let client = Client::new(second.addr);
    let answer = client.search(&json!({"text": "blue", "k": 1}));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_is_shot_of(f, &results(&answer.json())[0], "blue");
    f.rt.block_on(second.shutdown());
    // The cache file is named by the key (component, wasmtime, current manifests).
    let key =
        busca_host::snapshot::cache_key(&std::fs::read(component_wasm()).unwrap(), &f.bundles)
            .unwrap();
    assert!(
        f.cache.join(format!("{key}.cwasm")).is_file(),
        "cache file named by its key"
    );
}

#[test]
fn the_snapshot_memory_image_is_mapped_on_2_mib_pages() {
    let f = fixture();
    // A request maps the image into a pool slot (and it stays mapped there).
    f.search_ok(json!({"text": "blue", "k": 1}));
    let path = busca_host::snapshot::cache_path(
        &f.cache,
        &std::fs::read(component_wasm()).unwrap(),
        &f.bundles,
    )
    .unwrap();
    // Virtual address and file offset agree modulo 2 MiB, so the kernel can
    // map the page cache's 2 MiB folios whole (host/src/image_align.rs).
    assert_eq!(
        busca_host::image_align::misalignment(&path),
        Some(0),
        "{} mapped off 2 MiB alignment",
        path.display()
    );
    assert!(!path.with_extension("probe").exists(), "the probe compile is removed");
}

#[test]
fn a_runaway_request_gets_503_and_the_server_lives_on() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    // 100 ms is tens of times a text query with the tiny model (a few ms),
    // even on a loaded machine, and too little to inflate and resample a
    // 36-megapixel image (the largest a request may send) inside the guest:
    // that took 364 ms in a loaded test run on 12-01, after the resampler
    // was made faster, so the 500 ms this test had let it finish.
    let server =
        f.rt.block_on(start_server(&f.bundles, &dir.path().join("cache"), |o| {
            o.request_timeout_ms = 100;
        }));
    let client = Client::new(server.addr);
    let big = solid_png(colour("blue"), 6000, 6000);
    let answer = client.search(&json!({"image": base64(&big)}));
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], "timeout");
    for i in 0..5 {
        let after = client.search(&json!({"text": "blue", "k": 1}));
        assert_eq!(after.status, 200, "quick request {i} after the timeout: {}", after.body);
    }
    f.rt.block_on(server.shutdown());
    // After shutdown nothing listens any more.
    std::thread::sleep(Duration::from_millis(50));
    assert!(std::net::TcpStream::connect(client.addr()).is_err());
}

#[test]
fn a_new_local_version_is_served_without_a_restart() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let (rgb, warm) = (dir.path().join("rgb.mp4"), dir.path().join("warm.mp4"));
    make_colour_video(&rgb, RGB_VIDEO);
    make_colour_video(&warm, WARM_VIDEO);
    let bundles = dir.path().join("bundles");
    index_videos(&bundles, COLLECTION, std::slice::from_ref(&rgb));
    let server =
        f.rt.block_on(start_server(&bundles, &dir.path().join("cache"), |o| {
            o.poll_interval_ms = 100;
        }));
    let client = Client::new(server.addr);
    let first = client.search(&json!({"text": "yellow", "k": 3})).json();
    assert_eq!(first["bundle_version"], "v000001");

    index_videos(&bundles, COLLECTION, &[rgb, warm]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let answer = client.search(&json!({"text": "yellow", "k": 3})).json();
        if answer["bundle_version"] == "v000002" {
            break answer;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still serving {answer}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let videos: Vec<VideoRecord> = OpenBundle::open_current(&bundles.join(COLLECTION), Verify::All)
        .unwrap()
        .read_json(VIDEOS_FILE)
        .unwrap();
    let warm_id = &videos
        .iter()
        .find(|v| v.source_uri.ends_with("warm.mp4"))
        .unwrap()
        .video_id;
    assert_eq!(
        &results(&answer)[0]["video_id"],
        warm_id,
        "yellow finds the new video"
    );
    // Its keyframes and source video are served from the new version too.
    let shot = &results(&answer)[0]["shot_id"];
    let keyframe = client.get(&format!("/api/keyframes/{COLLECTION}/{shot}.jpg"), &[]);
    assert_eq!(keyframe.header("x-bundle-version"), Some("v000002"));
    assert_eq!(
        client
            .get(&format!("/media/{COLLECTION}/{warm_id}"), &[])
            .status,
        200
    );
    f.rt.block_on(server.shutdown());
}
