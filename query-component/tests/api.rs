//! The component's HTTP API, natively: a bundle written with core types, the
//! service loaded from it as the component loads /bundles, and a fake encoder
//! standing in for wasi:nn.

use std::cell::RefCell;
use std::io::Cursor;
use std::path::Path;

use busca_core::query::Limits;
use busca_core::ClipTokenizer;
use busca_core::model::{ImageTower, ScoreKind, TextTower};
use query_component::api::{Encoder, EncoderError, HttpRequest, HttpResponse, NnError, Service};
use query_component::test_bundle::{self, Spec};
use serde_json::Value;

const DIM: usize = 16;

fn spec(collection: &str) -> Spec {
    Spec::small(collection, DIM)
}

/// Maps the text query "class N" to class N's direction and an image to the
/// direction of the class its red channel encodes; records every call.
struct FakeEncoder {
    spec: Spec,
    dim_override: Option<usize>,
    missing: bool,
    calls: RefCell<Vec<(String, Vec<u32>)>>,
}

impl FakeEncoder {
    fn new(spec: Spec) -> Self {
        FakeEncoder { spec, dim_override: None, missing: false, calls: RefCell::new(Vec::new()) }
    }
}

impl FakeEncoder {
    /// Records the call as the wasi:nn glue would shape it; `None` to answer.
    fn record(&self, graph: &str, dims: Vec<u32>) -> Result<(), EncoderError> {
        self.calls.borrow_mut().push((graph.to_string(), dims));
        if self.missing {
            return Err(EncoderError::GraphMissing { graph: graph.into(), host: NnError { code: "not-found".into(), data: "no such graph".into() } });
        }
        Ok(())
    }

    fn embedding(&self, class: usize) -> Vec<f32> {
        let mut v = test_bundle::class_direction(&self.spec, class);
        if let Some(d) = self.dim_override {
            v.resize(d, 0.0);
        }
        v.iter().map(|x| x * 3.0).collect() // not normalised, like CLIP towers
    }
}

impl Encoder for FakeEncoder {
    fn text(&self, tower: &TextTower, ids: &[i64]) -> Result<Vec<f32>, EncoderError> {
        self.record(&tower.graph_name, vec![1, ids.len() as u32])?;
        let tokenizer = ClipTokenizer::new(77, 0);
        let class = (0..self.spec.classes).find(|c| ids == tokenizer.tokenize(&format!("class {c}"))).unwrap_or(0);
        Ok(self.embedding(class))
    }

    fn image(&self, tower: &ImageTower, pixels: &[f32]) -> Result<Vec<f32>, EncoderError> {
        let size = tower.image_size;
        assert_eq!(pixels.len(), (3 * size * size) as usize, "pixels of a {size}-pixel image tower");
        self.record(&tower.graph_name, vec![1, 3, size, size])?;
        // Pixel values are normalised with mean 0.5, std 0.25: red 255 → 2.0.
        Ok(self.embedding(if pixels[0] > 1.0 { 2 } else { 1 }))
    }
}

fn service_with(root: &Path, specs: &[Spec]) -> Service {
    for s in specs {
        test_bundle::write(root, s).unwrap();
    }
    Service::load(root)
}

fn call(service: &Service, enc: &dyn Encoder, method: &str, path: &str, body: &[u8], content_type: Option<&str>) -> (u16, Value, HttpResponse) {
    let req = HttpRequest::new(method, path, content_type, body);
    let response = service.handle(&req, enc);
    let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, json, response)
}

fn search(service: &Service, enc: &dyn Encoder, body: Value) -> (u16, Value) {
    let (status, json, _) = call(service, enc, "POST", "/api/search", body.to_string().as_bytes(), Some("application/json"));
    (status, json)
}

fn png(colour: [u8; 3], w: u32, h: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::RgbImage::from_pixel(w, h, image::Rgb(colour)).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn classes_of(json: &Value) -> Vec<u64> {
    json["results"].as_array().unwrap().iter().map(|h| h["class_id"].as_u64().unwrap()).collect()
}

#[test]
fn text_search_returns_the_class_asked_for_with_bundle_version() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("demo");
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let enc = FakeEncoder::new(s);
    for class in 0..3u64 {
        let (status, json) = search(&service, &enc, serde_json::json!({"text": format!("class {class}"), "k": 6}));
        assert_eq!(status, 200, "{json}");
        assert_eq!(classes_of(&json), vec![class; 6], "class {class}: {json}");
        assert_eq!(json["bundle_version"], "v000001");
        let scores: Vec<f64> = json["results"].as_array().unwrap().iter().map(|h| h["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]) && scores[0] > 0.9, "{scores:?}");
    }
    assert_eq!(enc.calls.borrow()[0], ("test-text".to_string(), vec![1, 77]));
}

#[test]
fn a_sigmoid_scored_model_gives_text_only_hits_their_match_probability() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec("siglip");
    // SigLIP's manifest: sigmoid(10 · cos − 5), and the squash fit.
    s.model.score = ScoreKind::Sigmoid { scale: 10.0, bias: -5.0 };
    s.model.image.resize = "squash-bilinear".into();
    s.model.image.crop = "none".into();
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let enc = FakeEncoder::new(s);
    let (status, json) = search(&service, &enc, serde_json::json!({"text": "class 1", "k": 18}));
    assert_eq!(status, 200, "{json}");
    let hits = json["results"].as_array().unwrap();
    for h in hits {
        let (score, p) = (h["score"].as_f64().unwrap(), h["probability"].as_f64().unwrap());
        let want = 1.0 / (1.0 + (-(10.0 * score - 5.0)).exp());
        assert!((p - want).abs() < 1e-5, "probability {p} for cosine {score}, want {want}");
    }
    // The shots of the class asked for are likely matches, the others not.
    assert!(hits[0]["probability"].as_f64().unwrap() > 0.9, "{json}");
    assert!(hits.last().unwrap()["probability"].as_f64().unwrap() < 0.1, "{json}");
    // An image (image-image cosine) or a fused query has no calibrated probability.
    let b64 = base64_of(&png([255, 0, 0], 40, 30));
    for body in [serde_json::json!({"image": b64, "k": 3}), serde_json::json!({"text": "class 1", "image": b64, "k": 3})] {
        let (status, json) = search(&service, &enc, body);
        assert_eq!(status, 200, "{json}");
        assert!(json["results"].as_array().unwrap().iter().all(|h| h.get("probability").is_none()), "{json}");
    }
    // The squash fit gives the image tower the whole 40 × 30 picture at 32 × 32.
    assert_eq!(enc.calls.borrow().last().unwrap(), &("test-image".to_string(), vec![1, 3, 32, 32]));
}

#[test]
fn cosine_models_give_no_probability() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("demo");
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let enc = FakeEncoder::new(s);
    let (_, json) = search(&service, &enc, serde_json::json!({"text": "class 1", "k": 3}));
    assert!(json["results"].as_array().unwrap().iter().all(|h| h.get("probability").is_none()), "{json}");
}

#[test]
fn image_and_fused_queries_go_through_the_image_tower() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("demo");
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let enc = FakeEncoder::new(s);
    let b64 = base64_of(&png([255, 0, 0], 40, 30));
    let (status, json) = search(&service, &enc, serde_json::json!({"image": format!("data:image/png;base64,{b64}"), "k": 3}));
    assert_eq!(status, 200, "{json}");
    assert_eq!(classes_of(&json), vec![2, 2, 2]);
    assert_eq!(enc.calls.borrow().last().unwrap(), &("test-image".to_string(), vec![1, 3, 32, 32]));
    // Text says class 0, image says class 2: the weight decides.
    for (weight, expected) in [(0.1, 0), (0.9, 2)] {
        let (_, json) = search(&service, &enc, serde_json::json!({"text": "class 0", "image": b64, "image_weight": weight, "k": 1}));
        assert_eq!(classes_of(&json), vec![expected], "weight {weight}");
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn multipart_form_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("demo");
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let enc = FakeEncoder::new(s);
    let image = png([255, 0, 0], 8, 8);
    let mut body = Vec::new();
    for (name, value) in [("text", "class 0"), ("k", "2"), ("image_weight", "1")] {
        body.extend_from_slice(format!("--XyZ\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    body.extend_from_slice(b"--XyZ\r\ncontent-disposition: form-data; name=\"image\"; filename=\"q.png\"\r\ncontent-type: image/png\r\n\r\n");
    body.extend_from_slice(&image);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let (status, json, _) = call(&service, &enc, "POST", "/api/search", &body, Some("multipart/form-data; boundary=XyZ"));
    assert_eq!(status, 200, "{json}");
    assert_eq!(classes_of(&json), vec![2, 2], "image weight 1 means the image decides");
    let bad = b"--XyZ\r\ncontent-disposition: form-data; name=\"nope\"\r\n\r\nx\r\n--XyZ--\r\n";
    let (status, json, _) = call(&service, &enc, "POST", "/api/search", bad, Some("multipart/form-data; boundary=XyZ"));
    assert_eq!(status, 400, "{json}");
    assert!(json["error"]["message"].as_str().unwrap().contains("nope"), "{json}");
}

#[test]
fn more_like_this_and_feedback_need_no_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("demo");
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let mut enc = FakeEncoder::new(s);
    enc.missing = true; // any encoder call would fail the request
    let (_, shots, _) = call(&service, &enc, "GET", "/api/shots/5", b"", None);
    let class = shots["shot"]["class_id"].as_u64().unwrap();
    let (status, json) = search(&service, &enc, serde_json::json!({"like_shot": 5, "k": 5}));
    assert_eq!(status, 200, "{json}");
    let ids: Vec<u64> = json["results"].as_array().unwrap().iter().map(|h| h["shot_id"].as_u64().unwrap()).collect();
    assert_eq!(ids[0], 5, "a shot is most like itself: {ids:?}");
    assert!(json["results"][0]["score"].as_f64().unwrap() > 0.999);
    assert_eq!(classes_of(&json), vec![class; 5]);
    // Feedback: positives of another class pull the query there.
    let other: Vec<u64> = service_shots(&service, &enc).into_iter().filter(|(_, c)| *c != class).map(|(id, _)| id).take(3).collect();
    let (status, json) = search(&service, &enc, serde_json::json!({"like_shot": 5, "positive": other, "negative": [5], "k": 1}));
    assert_eq!(status, 200, "{json}");
    assert_ne!(classes_of(&json)[0], class);
    let (status, json) = search(&service, &enc, serde_json::json!({"like_shot": 999_999}));
    assert_eq!(status, 404, "{json}");
    assert!(json["error"]["message"].as_str().unwrap().contains("999999"));
    assert!(enc.calls.borrow().is_empty());
}

fn service_shots(service: &Service, enc: &dyn Encoder) -> Vec<(u64, u64)> {
    let (_, videos, _) = call(service, enc, "GET", "/api/videos", b"", None);
    let mut out = Vec::new();
    for v in videos["videos"].as_array().unwrap() {
        let id = v["video_id"].as_str().unwrap();
        let (_, tl, _) = call(service, enc, "GET", &format!("/api/videos/{id}/timeline"), b"", None);
        for s in tl["shots"].as_array().unwrap() {
            out.push((s["shot_id"].as_u64().unwrap(), s["class_id"].as_u64().unwrap()));
        }
    }
    out
}

#[test]
fn filters_restrict_results() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("demo");
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let enc = FakeEncoder::new(s);
    let (status, json) = search(&service, &enc, serde_json::json!({
        "text": "class 1", "k": 20, "filter": {"video_ids": ["video-01"], "start_ms": 4000, "end_ms": 16000}}));
    assert_eq!(status, 200, "{json}");
    let hits = json["results"].as_array().unwrap();
    assert!(!hits.is_empty());
    for h in hits {
        assert_eq!(h["video_id"], "video-01");
        assert!(h["end_ms"].as_u64().unwrap() > 4000 && h["start_ms"].as_u64().unwrap() < 16000, "{h}");
    }
    let (_, json) = search(&service, &enc, serde_json::json!({"text": "class 1", "k": 20, "filter": {"min_score": 0.9}}));
    assert_eq!(classes_of(&json), vec![1; 6], "only class 1 scores above 0.9");
}

#[test]
fn bad_input_gets_the_right_status_and_names_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("demo");
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let enc = FakeEncoder::new(s);
    let post = |body: &[u8], ct: Option<&str>| call(&service, &enc, "POST", "/api/search", body, ct);
    let cases: Vec<(u16, &str, (u16, Value, HttpResponse))> = vec![
        (400, "malformed_json", post(b"{\"text\": ", None)),
        (400, "malformed_json", post(br#"{"txt": "red"}"#, None)),
        (400, "invalid_request", post(br#"{"text": "red", "k": 101}"#, None)),
        (400, "invalid_request", post(br#"{"text": "red", "k": 0}"#, None)),
        (400, "invalid_request", post(format!(r#"{{"text": "{}"}}"#, "a".repeat(1001)).as_bytes(), None)),
        (422, "bad_image", post(br#"{"image": "!!!not base64"}"#, None)),
        (415, "unsupported_media_type", post(format!(r#"{{"image": "{}"}}"#, base64_of(b"plain text, not an image")).as_bytes(), None)),
        (415, "unsupported_media_type", post(b"text=red", Some("application/x-www-form-urlencoded"))),
        (415, "unsupported_media_type", post(b"<q>red</q>", Some("application/xml"))),
        (413, "body_too_large", post(&vec![b' '; Limits::DEFAULT.max_body_bytes + 1], None)),
        (404, "not_found", call(&service, &enc, "GET", "/api/nothing", b"", None)),
        (404, "not_found", call(&service, &enc, "GET", "/api/shots/424242", b"", None)),
        (400, "invalid_request", call(&service, &enc, "GET", "/api/shots/abc", b"", None)),
        (404, "not_found", call(&service, &enc, "GET", "/api/videos/nope/timeline", b"", None)),
        (404, "not_found", call(&service, &enc, "GET", "/api/map?collection=other", b"", None)),
        (405, "method_not_allowed", call(&service, &enc, "GET", "/api/search", b"", None)),
        (405, "method_not_allowed", call(&service, &enc, "DELETE", "/api/collections", b"", None)),
    ];
    for (i, (status, code, (got, json, _))) in cases.into_iter().enumerate() {
        assert_eq!((got, json["error"]["code"].as_str()), (status, Some(code)), "case {i}: {json}");
        assert!(!json["error"]["message"].as_str().unwrap().is_empty());
    }
    // A decompression bomb is refused from its header.
    let big = png([1, 2, 3], 8000, 6000);
    let (status, json, _) = post(format!(r#"{{"image": "{}"}}"#, base64_of(&big)).as_bytes(), None);
    assert_eq!(status, 422);
    assert!(json["error"]["message"].as_str().unwrap().contains("48000000 pixels"), "{json}");
}

#[test]
fn encoder_problems_are_503_naming_graph_and_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("demo");
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let mut enc = FakeEncoder::new(s.clone());
    enc.missing = true;
    let (status, json) = search(&service, &enc, serde_json::json!({"text": "class 1"}));
    assert_eq!(status, 503);
    let msg = json["error"]["message"].as_str().unwrap();
    assert!(msg.contains("test-text") && msg.contains("demo v000001"), "{msg}");
    let mut enc = FakeEncoder::new(s);
    enc.dim_override = Some(DIM * 2);
    let (status, json) = search(&service, &enc, serde_json::json!({"text": "class 1"}));
    assert_eq!((status, json["error"]["code"].as_str()), (503, Some("encoder_mismatch")), "{json}");
    assert!(json["error"]["message"].as_str().unwrap().contains("32-d"), "{json}");
}

#[test]
fn browse_endpoints_describe_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("demo");
    let service = service_with(tmp.path(), &[s.clone(), spec("otra")]);
    let enc = FakeEncoder::new(s);
    let (status, json, _) = call(&service, &enc, "GET", "/api/collections", b"", None);
    assert_eq!(status, 200);
    let names: Vec<&str> = json["collections"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["demo", "otra"]);
    assert_eq!(json["collections"][0]["counts"]["shots"], 18);
    assert_eq!(json["collections"][0]["bundle_version"], "v000001");
    // Two collections: the collection must be named.
    let (status, _, _) = call(&service, &enc, "GET", "/api/map", b"", None);
    assert_eq!(status, 400);
    let (status, map, _) = call(&service, &enc, "GET", "/api/map?collection=demo", b"", None);
    assert_eq!((status, map["points"].as_array().unwrap().len()), (200, 18));
    let (status, shot, _) = call(&service, &enc, "GET", "/api/shots/8?collection=demo", b"", None);
    assert_eq!(status, 200, "{shot}");
    assert_eq!(shot["shot"]["start_tc"], "00:00:04.000");
    assert_eq!(shot["scene"]["scene_id"], 8);
    assert_eq!(shot["video"]["video_id"], "video-00");
    // 6 shots per class: the 5 others of shot 8's class come first, never shot 8 itself.
    let neighbours = shot["neighbours"].as_array().unwrap();
    assert_eq!(neighbours.len(), 12);
    assert!(neighbours[..5].iter().all(|n| n["class_id"] == shot["class_id"]), "{shot}");
    assert!(neighbours.iter().all(|n| n["shot_id"] != 8));
    let (status, tl, _) = call(&service, &enc, "GET", "/api/videos/video%2D01/timeline?collection=demo", b"", None);
    assert_eq!(status, 200, "{tl}");
    assert_eq!((tl["frames"].as_array().unwrap().len(), tl["shots"].as_array().unwrap().len()), (24, 6));
    let (status, _, jpeg) = call(&service, &enc, "GET", "/api/keyframes/demo/8.jpg", b"", None);
    assert_eq!((status, jpeg.header("content-type")), (200, Some("image/jpeg")));
    assert_eq!(&jpeg.body[..2], &[0xFF, 0xD8]);
    let (status, _, page) = call(&service, &enc, "GET", "/", b"", None);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("/app.js"));
}

#[test]
fn corrupt_files_are_reported_not_served() {
    let tmp = tempfile::tempdir().unwrap();
    let s = spec("demo");
    test_bundle::write(tmp.path(), &s).unwrap();
    test_bundle::write(tmp.path(), &spec("rota")).unwrap();
    let version = tmp.path().join("rota/versions/v000001");
    let mut index = std::fs::read(version.join("shots.usearch")).unwrap();
    index[100] ^= 0xff;
    std::fs::write(version.join("shots.usearch"), index).unwrap();
    // A keyframe corrupted after loading is refused at request time.
    std::fs::write(tmp.path().join("demo/versions/v000001/keyframes/8.jpg"), b"tampered").unwrap();
    let service = Service::load(tmp.path());
    let enc = FakeEncoder::new(s);
    assert_eq!(service.collection_names().collect::<Vec<_>>(), ["demo"]);
    assert!(service.failures()["rota"].contains("shots.usearch"), "{:?}", service.failures());
    let (status, json, _) = call(&service, &enc, "GET", "/api/map?collection=rota", b"", None);
    assert_eq!(status, 503);
    assert!(json["error"]["message"].as_str().unwrap().contains("sha256"), "{json}");
    let (status, json, _) = call(&service, &enc, "GET", "/api/keyframes/demo/8.jpg", b"", None);
    assert_eq!(status, 500);
    assert!(json["error"]["message"].as_str().unwrap().contains("8.jpg"), "{json}");
    let (status, json) = search(&service, &enc, serde_json::json!({"collection": "demo", "text": "class 2", "k": 2}));
    assert_eq!((status, classes_of(&json)), (200, vec![2, 2]));
}

#[test]
fn no_bundles_is_a_clear_503() {
    let tmp = tempfile::tempdir().unwrap();
    let service = Service::load(&tmp.path().join("missing"));
    let enc = FakeEncoder::new(spec("demo"));
    let (status, json) = search(&service, &enc, serde_json::json!({"text": "red"}));
    assert_eq!(status, 503);
    assert!(json["error"]["message"].as_str().unwrap().contains("missing"), "{json}");
}

#[test]
fn graph_walk_finds_what_the_exact_scan_finds() {
    use busca_core::search::Collection;
    use busca_core::shot_index::Method;
    let tmp = tempfile::tempdir().unwrap();
    let s = Spec { videos: 12, shots_per_video: 50, classes: 40, ..spec("grande") };
    test_bundle::write(tmp.path(), &s).unwrap();
    let c = Collection::load_current(&tmp.path().join("grande")).unwrap();
    let mut rng = test_bundle::Rng(99);
    let (mut found, mut total) = (0, 0);
    for _ in 0..60 {
        let q = rng.unit(DIM);
        let exact = c.index.search(&q, 10, None, Method::Exact, None);
        let graph = c.index.search(&q, 10, None, Method::Hnsw, None);
        assert_eq!(graph.len(), 10);
        assert!(graph.windows(2).all(|w| w[0].score >= w[1].score));
        found += graph.iter().filter(|g| exact.iter().any(|e| e.row == g.row)).count();
        total += 10;
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.95, "recall@10 of the graph walk: {recall}");
}

/// Above the exact-scan limit the component walks the HNSW graph and says
/// so; its answers are checked against core's exact scan of the same bundle,
/// and a filtered query, which always scans, reports the scan.
#[test]
fn above_the_exact_scan_limit_the_component_walks_the_graph() {
    use busca_core::query::SearchFilter;
    use busca_core::search::Collection;
    use busca_core::shot_index::{Method, EXACT_SCAN_MAX_ROWS};
    let tmp = tempfile::tempdir().unwrap();
    let s = Spec { videos: 84, shots_per_video: 121, classes: 40, ..spec("archivo") };
    assert!(s.videos * s.shots_per_video > EXACT_SCAN_MAX_ROWS);
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let enc = FakeEncoder::new(s.clone());
    let (_, collections, _) = call(&service, &enc, "GET", "/api/collections", b"", None);
    assert_eq!(collections["collections"][0]["index"]["search"], "hnsw", "{collections}");
    let exact = Collection::load_current(&tmp.path().join("archivo")).unwrap();
    let (mut found, mut total) = (0, 0);
    for class in [0usize, 7, 19, 33] {
        let (status, json) = search(&service, &enc, serde_json::json!({"text": format!("class {class}"), "k": 10}));
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["method"], "hnsw", "{}", json["method"]);
        let walked: Vec<u64> = json["results"].as_array().unwrap().iter().map(|h| h["shot_id"].as_u64().unwrap()).collect();
        assert_eq!(walked.len(), 10);
        let query = enc.text(s.model.default_text(), &ClipTokenizer::new(77, 0).tokenize(&format!("class {class}"))).unwrap();
        let scanned = exact.search(&query, 10, &SearchFilter::default(), Method::Exact, &[]);
        assert_eq!(scanned.method, Method::Exact);
        let truth: Vec<u64> = scanned.hits.iter().map(|h| h.shot.shot_id).collect();
        found += walked.iter().filter(|id| truth.contains(id)).count();
        total += 10;
    }
    let recall = found as f64 / total as f64;
    assert!(recall >= 0.95, "the graph walk's top 10 against the exact scan's: recall {recall}");
    let (status, json) = search(&service, &enc, serde_json::json!({
        "text": "class 7", "k": 10, "filter": {"video_ids": ["video-03"]}}));
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["method"], "exact", "a filtered query scans: {}", json["method"]);
    assert!(json["results"].as_array().unwrap().iter().all(|h| h["video_id"] == "video-03"));
}
