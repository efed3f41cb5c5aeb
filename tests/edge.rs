//! The self-contained edge component (the query component with the tract
//! wasi:nn provider plugged in, `scripts/compose-edge.sh`) under a stock
//! `wasmtime serve` that has no wasi:nn at all, as on Spin and Fermyon: the
//! search answers what it should, and what busca-serve answers for the same
//! bundle and queries.
//!
//! The remote-encoder build is checked the same way: composed with the
//! remote provider, under stock `wasmtime serve`, forwarding inference to
//! busca-serve's encoder endpoint; a wrong token and a dead endpoint give a
//! 503 that names the encoder.
//!
//! One bundle, one composed component of each kind and their servers (stock
//! wasmtime and busca-serve in-process) for the whole binary.

use std::path::PathBuf;
use std::sync::OnceLock;

use busca_core::bundle::{OpenBundle, Verify, VIDEOS_FILE};
use busca_core::shot::VideoRecord;
use busca_core::usearch_file::{StoredVectors, UsearchFile};
use busca_host::{RunningServer, ServeOptions};
use busca_tests::*;
use serde_json::{json, Value};

const COLLECTION: &str = "edge";
/// The encoder endpoint's token in these tests.
const TOKEN: &str = "edge-test-token-0123456789";

struct Fixture {
    dir: tempfile::TempDir,
    bundles: PathBuf,
    composed: PathBuf,
    videos: Vec<VideoRecord>,
    sample_fps: f32,
    reference: Client,
    _rt: tokio::runtime::Runtime,
    _server: RunningServer,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        init_logs();
        let dir = tempfile::tempdir().unwrap();
        let videos = make_test_videos(dir.path());
        let bundles = dir.path().join("bundles");
        // i8 vectors, as an edge deployment with 128 MiB per request would use.
        index_videos_with(&bundles, COLLECTION, &videos, &["--quantization", "i8"]);
        let open = OpenBundle::open_current(&bundles.join(COLLECTION), Verify::All).unwrap();
        let videos: Vec<VideoRecord> = open.read_json(VIDEOS_FILE).unwrap();

        let composed = compose_edge(Encoder::Local(&tiny_model_dir()), Some(&bundles), &dir.path().join("edge.wasm"));

        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(async {
            let mut opts = ServeOptions::new(component_wasm(), bundles.clone(), vec![tiny_model_dir()]);
            opts.listen = "127.0.0.1:0".parse().unwrap();
            opts.cache_dir = Some(dir.path().join("snapshot-cache"));
            opts.encoder_token = Some(TOKEN.into());
            busca_host::start(&opts).await.expect("start busca-serve")
        });
        Fixture {
            composed,
            videos,
            sample_fps: open.manifest.segmentation.sample_fps,
            reference: Client::new(server.addr),
            _rt: rt,
            _server: server,
            bundles,
            dir,
        }
    })
}

/// The remote-encoder component under stock wasmtime, forwarding to the
/// fixture's busca-serve with `token`, or to `endpoint` when given.
fn remote_edge(f: &Fixture, name: &str, token: &str, endpoint: Option<String>) -> WasmtimeServe {
    static COMPOSED: OnceLock<PathBuf> = OnceLock::new();
    let composed = COMPOSED.get_or_init(|| {
        compose_edge(Encoder::Remote, Some(&f.bundles), &f.dir.path().join("edge-remote.wasm"))
    });
    let endpoint = endpoint.unwrap_or_else(|| format!("http://{}", f.reference.addr()));
    let url = format!("BUSCA_ENCODER_URL={endpoint}");
    let token = format!("BUSCA_ENCODER_TOKEN={token}");
    WasmtimeServe::start(
        composed,
        &[(&f.bundles, "/bundles")],
        &["--env", &url, "--env", &token],
        &f.dir.path().join(format!("wasmtime-{name}.log")),
    )
}

impl Fixture {
    /// The self-contained component under stock `wasmtime serve`, for one
    /// test: ended (by its id) when the test drops it. A server kept in the
    /// shared fixture would outlive the test binary, whose statics are never
    /// dropped. The bundle stays mounted: keyframes and timelines are read per
    /// request.
    fn edge(&self, name: &str) -> (WasmtimeServe, Client) {
        let log = self.dir.path().join(format!("wasmtime-{name}.log"));
        let server = WasmtimeServe::start(&self.composed, &[(&self.bundles, "/bundles")], &[], &log);
        let client = Client::new(server.addr);
        (server, client)
    }

    fn search(&self, client: &Client, request: &Value) -> Value {
        let answer = client.search(request);
        assert_eq!(answer.status, 200, "{request}: {}", answer.body);
        answer.json()
    }

    /// (video id, start ms) of the segment of `colour` in the test videos.
    fn segment(&self, colour: &str) -> (String, u64) {
        for (file, segments) in [("rgb.mp4", RGB_VIDEO), ("warm.mp4", WARM_VIDEO)] {
            let video = self.videos.iter().find(|v| v.source_uri.ends_with(file)).expect("video indexed");
            let mut start = 0;
            for (name, seconds) in segments {
                if *name == colour {
                    return (video.video_id.clone(), start);
                }
                start += u64::from(*seconds) * 1000;
            }
        }
        panic!("{colour} is in no test video")
    }

    fn assert_is(&self, hit: &Value, colour: &str) {
        let (video, start) = self.segment(colour);
        let tol = (1000.0 / self.sample_fps) as u64 + 50;
        assert_eq!(hit["video_id"], video.as_str(), "{colour}: {hit}");
        let got = hit["start_ms"].as_u64().unwrap();
        assert!(got.abs_diff(start) <= tol, "{colour} shot starts at {got}, expected {start}±{tol}: {hit}");
    }
}

fn results(response: &Value) -> &Vec<Value> {
    response["results"].as_array().expect("results array")
}

#[test]
fn the_self_contained_component_imports_no_wasi_nn() {
    let f = fixture();
    let composed = component_imports(&f.composed);
    let plain = component_imports(&component_wasm());
    // The check can fail: the plain component does import wasi:nn.
    assert!(plain.iter().any(|i| i.starts_with("wasi:nn/")), "plain component imports {plain:?}");
    let left: Vec<&String> = composed.iter().filter(|i| i.starts_with("wasi:nn/")).collect();
    assert!(left.is_empty(), "the composed component still imports {left:?}");
    // What it does import is what a stock wasi:http host offers.
    assert!(composed.iter().all(|i| i.starts_with("wasi:")), "{composed:?}");
}

/// The snapshot keeps the index once: the file buffer the bundle was read
/// into is freed and zeroed before the snapshot (busca_core::snapshot), so no
/// vector row appears in the component's memory more often than in the index.
/// This fixture's bundle is small enough that later allocations mostly reuse
/// a freed buffer, so the size itself is shown by `bench/edge.py` on an
/// 18,400-shot bundle, not here.
#[test]
fn the_snapshot_holds_each_vector_row_once() {
    let f = fixture();
    let open = OpenBundle::open_current(&f.bundles.join(COLLECTION), Verify::All).unwrap();
    let index = UsearchFile::read(&open.dir.join(&open.manifest.index.file)).unwrap();
    let StoredVectors::I8(stored) = &index.vectors else {
        panic!("the fixture indexes i8 rows, not {}", index.vectors.kind_name());
    };
    let (dim, rows) = (index.dimensions, index.len());
    let bytes: Vec<u8> = stored.iter().map(|&x| x as u8).collect();
    let matrix = &bytes[..];
    let images = memory_images(&f.composed);
    let count = |haystack: &[u8], row: &[u8]| memchr::memmem::find_iter(haystack, row).count();
    let mut found = 0;
    for row in matrix.chunks_exact(dim) {
        let in_index = count(matrix, row);
        let in_memory: usize = images.iter().map(|image| count(image, row)).sum();
        assert!(in_memory >= 1, "a vector row is missing from the snapshot");
        assert!(in_memory <= in_index, "a vector row is {in_memory} times in the snapshot, {in_index} in the index");
        found += 1;
    }
    assert_eq!(found, rows);
}

#[test]
fn text_queries_rank_their_colour_first_without_host_wasi_nn() {
    let f = fixture();
    let (_server, edge) = f.edge("text_queries_rank_their_colour_first_without_host_wasi_nn");
    let collections = edge.get("/api/collections", &[]).json();
    assert_eq!(collections["collections"][0]["index"]["quantization"], "i8", "{collections}");
    for colour in ["red", "green", "blue"] {
        let response = f.search(&edge, &json!({"text": format!("a {colour} scene"), "k": 3}));
        let hits = results(&response);
        f.assert_is(&hits[0], colour);
        assert!(hits[0]["score"].as_f64().unwrap() > 0.9, "{colour}: {response}");
        assert!(hits[0]["score"].as_f64().unwrap() > hits[1]["score"].as_f64().unwrap() + 0.1);
    }
}

#[test]
fn image_query_finds_the_blue_shot_without_host_wasi_nn() {
    let f = fixture();
    let (_server, edge) = f.edge("image_query_finds_the_blue_shot_without_host_wasi_nn");
    let png = solid_png(colour("blue"), 64, 48);
    let response = f.search(&edge, &json!({"image": base64(&png), "k": 3}));
    f.assert_is(&results(&response)[0], "blue");
    assert!(results(&response)[0]["score"].as_f64().unwrap() > 0.99, "{response}");
}

#[test]
fn text_and_image_fuse_and_filters_apply() {
    let f = fixture();
    let (_server, edge) = f.edge("text_and_image_fuse_and_filters_apply");
    let png = solid_png(colour("blue"), 32, 32);
    let response = f.search(&edge, &json!({"text": "red", "image": base64(&png), "image_weight": 0.5}));
    let hits = results(&response);
    let mut top = vec![hits[0].clone(), hits[1].clone()];
    top.sort_by_key(|h| h["start_ms"].as_u64());
    f.assert_is(&top[0], "red");
    f.assert_is(&top[1], "blue");

    // A video filter leaves only that video's shots.
    let (warm, _) = f.segment("yellow");
    let filtered = f.search(&edge, &json!({"text": "red", "filter": {"video_ids": [warm]}}));
    assert!(!results(&filtered).is_empty());
    assert!(results(&filtered).iter().all(|h| h["video_id"] == warm.as_str()), "{filtered}");
}

#[test]
fn relevance_feedback_moves_the_ranking() {
    let f = fixture();
    let (_server, edge) = f.edge("relevance_feedback_moves_the_ranking");
    let id_of = |colour: &str| {
        let r = f.search(&edge, &json!({"text": colour, "k": 1}));
        results(&r)[0]["shot_id"].as_u64().unwrap()
    };
    let (green, yellow) = (id_of("green"), id_of("yellow"));
    let response = f.search(&edge, &json!({"text": "red", "positive": [green], "negative": [yellow], "k": 5}));
    let ids: Vec<u64> = results(&response).iter().map(|h| h["shot_id"].as_u64().unwrap()).collect();
    let green_rank = ids.iter().position(|&id| id == green);
    assert!(green_rank.is_some_and(|r| r <= 1), "a positive shot moves to the top two: {ids:?}");
    assert!(ids.last() == Some(&yellow) || !ids.contains(&yellow), "a negative shot sinks: {ids:?}");
}

#[test]
fn answers_equal_busca_serve_for_the_same_queries() {
    let f = fixture();
    let (_server, edge) = f.edge("answers_equal_busca_serve_for_the_same_queries");
    let blue = results(&f.search(&f.reference, &json!({"text": "blue", "k": 1})))[0]["shot_id"].clone();
    let png = base64(&solid_png(colour("magenta"), 40, 30));
    let queries = [
        json!({"text": "a red scene", "k": 10}),
        json!({"text": "verde", "k": 10}),
        json!({"text": "amarillo and something else entirely", "k": 10}),
        json!({"image": png, "k": 10}),
        json!({"text": "blue", "image": png, "image_weight": 0.3, "k": 10}),
        json!({"like_shot": blue, "k": 10}),
        json!({"text": "red", "positive": [blue], "k": 10}),
    ];
    for query in &queries {
        let (edge, reference) = (f.search(&edge, query), f.search(&f.reference, query));
        let ids = |r: &Value| results(r).iter().map(|h| h["shot_id"].as_u64().unwrap()).collect::<Vec<_>>();
        assert_eq!(ids(&edge), ids(&reference), "{query}: tract in the component vs ONNX Runtime in busca-serve");
        for (a, b) in results(&edge).iter().zip(results(&reference)) {
            let (a, b) = (a["score"].as_f64().unwrap(), b["score"].as_f64().unwrap());
            assert!((a - b).abs() < 1e-3, "{query}: score {a} vs {b}");
        }
        assert_eq!(edge["bundle_version"], reference["bundle_version"]);
    }
}

#[test]
fn the_page_keyframes_and_timelines_are_served_too() {
    let f = fixture();
    let (_server, edge) = f.edge("the_page_keyframes_and_timelines_are_served_too");
    let page = edge.get("/", &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<html"), "{}", page.body);
    let hit = results(&f.search(&edge, &json!({"text": "red", "k": 1})))[0].clone();
    let keyframe = edge.get(&format!("/api/keyframes/{COLLECTION}/{}.jpg", hit["shot_id"]), &[]);
    assert_eq!(keyframe.status, 200);
    assert_eq!(keyframe.header("content-type"), Some("image/jpeg"));
    let timeline = edge.get(&format!("/api/videos/{}/timeline", hit["video_id"].as_str().unwrap()), &[]);
    assert_eq!(timeline.status, 200, "{}", timeline.body);
    assert!(!timeline.json()["frames"].as_array().unwrap().is_empty());
}

#[test]
fn the_remote_encoder_build_answers_like_busca_serve() {
    let f = fixture();
    let remote = remote_edge(f, "remote", TOKEN, None);
    let client = Client::new(remote.addr);
    assert!(component_imports(&f.dir.path().join("edge-remote.wasm")).iter().all(|i| !i.starts_with("wasi:nn/")));
    let png = base64(&solid_png(colour("blue"), 40, 30));
    for query in [json!({"text": "a red scene", "k": 10}), json!({"image": png, "k": 10}), json!({"text": "green", "image": png, "k": 10})] {
        let (edge, reference) = (f.search(&client, &query), f.search(&f.reference, &query));
        let ids = |r: &Value| results(r).iter().map(|h| h["shot_id"].as_u64().unwrap()).collect::<Vec<_>>();
        assert_eq!(ids(&edge), ids(&reference), "{query}");
        for (a, b) in results(&edge).iter().zip(results(&reference)) {
            assert!((a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-5, "{query}");
        }
    }
    f.assert_is(&results(&f.search(&client, &json!({"text": "a red scene"})))[0], "red");
}

#[test]
fn a_wrong_token_or_a_dead_endpoint_is_a_503_naming_the_encoder() {
    let f = fixture();
    // A port nothing listens on: bound, then released.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dead_url = format!("http://{dead}");
    for (name, token, endpoint, says) in [
        ("wrong-token", "not-the-token-0123456789", None, "refused the token"),
        ("dead", TOKEN, Some(dead_url.clone()), "unreachable"),
    ] {
        let server = remote_edge(f, name, token, endpoint.clone());
        let client = Client::new(server.addr);
        let answer = client.search(&json!({"text": "red"}));
        assert_eq!(answer.status, 503, "{name}: {}", answer.body);
        let message = answer.json()["error"]["message"].as_str().unwrap().to_string();
        let encoder = endpoint.unwrap_or_else(|| format!("http://{}", f.reference.addr()));
        assert!(message.contains(&encoder) && message.contains(says), "{name}: {message}");
        assert!(!message.contains(token), "{name}: the token leaks: {message}");
        // Routes that need no encoder still answer.
        assert_eq!(client.get("/api/collections", &[]).status, 200);
        let blue = results(&f.search(&f.reference, &json!({"text": "blue", "k": 1})))[0]["shot_id"].clone();
        assert_eq!(client.search(&json!({"like_shot": blue})).status, 200, "{name}");
    }
}

#[test]
fn the_encoder_endpoint_refuses_bad_calls_by_name() {
    let f = fixture();
    let tower = tiny_manifest().default_text();
    let path = busca_core::remote_nn::compute_path(&tower.graph_name);
    let length = tower.context_length as u32;
    let ids: Vec<u8> = vec![0u8; tower.context_length * 8];
    let body = serde_json::to_vec(&busca_core::remote_nn::ComputeRequest {
        inputs: vec![busca_core::remote_nn::WireTensor::new(&tower.input, vec![1, length], busca_core::remote_nn::ElementType::I64, &ids)],
    })
    .unwrap();
    let post = |path: &str, auth: Option<&str>, body: &[u8]| {
        let mut req = ureq::post(&format!("http://{}{path}", f.reference.addr())).set("content-type", "application/json");
        if let Some(auth) = auth {
            req = req.set("authorization", auth);
        }
        match req.send_bytes(body) {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    let bearer = format!("Bearer {TOKEN}");
    let (status, ok) = post(&path, Some(&bearer), &body);
    assert_eq!(status, 200, "{ok}");
    let answer: busca_core::remote_nn::ComputeResponse = serde_json::from_str(&ok).unwrap();
    assert_eq!(answer.outputs[0].name, tiny_manifest().default_text().output);
    assert_eq!(answer.outputs[0].dims, vec![1, tiny_manifest().embedding_dim as u32]);

    assert_eq!(post(&path, None, &body).0, 401);
    assert_eq!(post(&path, Some("Bearer wrong-wrong-wrong-wrong"), &body).0, 401);
    // Refused on its headers, a call still has its body read (up to the
    // limit): a client sending a large one gets the 401, not a closed
    // connection halfway through.
    let large = vec![b' '; busca_core::remote_nn::MAX_REQUEST_BYTES];
    assert_eq!(post(&path, Some("Bearer wrong-wrong-wrong-wrong"), &large).0, 401);
    let (status, missing) = post(&busca_core::remote_nn::compute_path("no-such-graph"), Some(&bearer), &body);
    assert!(status == 404 && missing.contains("no-such-graph"), "{status} {missing}");
    let short = body.clone();
    let short = String::from_utf8(short).unwrap().replace(&format!("[1,{length}]"), &format!("[1,{}]", length + 1));
    let (status, bad) = post(&path, Some(&bearer), short.as_bytes());
    assert!(status == 400 && bad.contains("input_ids"), "{status} {bad}");
    let (status, _) = post(&path, Some(&bearer), &vec![b' '; busca_core::remote_nn::MAX_REQUEST_BYTES + 1]);
    assert_eq!(status, 413);
}
