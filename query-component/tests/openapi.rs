//! The HTTP API as a contract: `openapi.json` describes every route, request
//! and response (errors included), and these tests hold the component to it.
//!
//! Real requests go through the [`Service`] as in `tests/api.rs` (a bundle
//! written with core types, a fake encoder standing in for wasi:nn). Each
//! response's status must be declared for its path and method, its
//! content type listed for that status, the headers the document requires
//! present, and a JSON body valid against the declared schema (JSON Schema
//! 2020-12; `#/components/...` refs resolve inside the document, nothing is
//! fetched). A path the document does not list must answer its `NotFound`
//! response, a method it does not list for a path its `MethodNotAllowed`.
//! Every response the document declares must be produced at least once.
//!
//! The document is also checked against what serves it (`GET
//! /api/openapi.json`), the router (every path it lists is routed), itself
//! (every `$ref` resolves, every component is used) and the API table of
//! README.md, which must list exactly its routes.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::Path;

use busca_core::model::{ImageTower, TextTower};
use busca_core::query::Limits;
use busca_core::search::Collection;
use query_component::api::{Encoder, EncoderError, Failure, HttpRequest, HttpResponse, NnError, Service};
use query_component::test_bundle::{self, Spec};
use serde_json::{json, Value};

/// The document, the same file the component builds in.
const OPENAPI: &str = include_str!("../openapi.json");
/// The README whose "HTTP API" table lists the routes.
const README: &str = include_str!("../README.md");

/// The keys of an OpenAPI path item that are operations.
const OPERATION_KEYS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
/// Methods tried on every path for the 405 contract.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

const DIM: usize = 16;

fn spec(collection: &str) -> Spec {
    Spec::small(collection, DIM)
}

/// What the fake towers do.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Towers {
    /// Answer class 1's direction.
    Working,
    /// The host has no such graph.
    Missing,
    /// The graph runs and fails.
    Failing,
    /// Embeddings of twice the bundle's dimension.
    WrongDim,
}

struct FakeEncoder {
    spec: Spec,
    towers: Towers,
}

impl FakeEncoder {
    fn new(spec: &Spec, towers: Towers) -> Self {
        FakeEncoder { spec: spec.clone(), towers }
    }

    fn answer(&self, graph: &str) -> Result<Vec<f32>, EncoderError> {
        let direction: Vec<f32> = test_bundle::class_direction(&self.spec, 1).iter().map(|x| x * 3.0).collect();
        match self.towers {
            Towers::Working => Ok(direction),
            Towers::WrongDim => Ok(direction.repeat(2)),
            Towers::Missing => Err(EncoderError::GraphMissing { graph: graph.into(), host: NnError { code: "not-found".into(), data: "not loaded".into() } }),
            Towers::Failing => Err(EncoderError::Failed { graph: graph.into(), failure: Failure::Call { call: "compute", error: NnError { code: "runtime-error".into(), data: "out of memory".into() } } }),
        }
    }
}

impl Encoder for FakeEncoder {
    fn text(&self, tower: &TextTower, _ids: &[i64]) -> Result<Vec<f32>, EncoderError> {
        self.answer(&tower.graph_name)
    }

    fn image(&self, tower: &ImageTower, _pixels: &[f32]) -> Result<Vec<f32>, EncoderError> {
        self.answer(&tower.graph_name)
    }
}

/// The document, and the responses checked against it so far.
struct Contract {
    doc: Value,
    /// (METHOD, path template, status) of every exchange checked against an operation.
    seen: RefCell<BTreeSet<(String, String, u16)>>,
}

impl Contract {
    fn load() -> Self {
        Contract {
            doc: serde_json::from_str(OPENAPI).expect("openapi.json is JSON"),
            seen: RefCell::new(BTreeSet::new()),
        }
    }

    fn paths(&self) -> &serde_json::Map<String, Value> {
        self.doc["paths"].as_object().expect("the document has paths")
    }

    /// Every (METHOD, path template) the document lists.
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (template, item) in self.paths() {
            for key in item.as_object().expect("a path item is an object").keys() {
                if OPERATION_KEYS.contains(&key.as_str()) {
                    out.insert((key.to_ascii_uppercase(), template.clone()));
                }
            }
        }
        out
    }

    /// The operation object of `method` on `template`.
    fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        self.paths().get(template)?.get(method.to_ascii_lowercase().as_str())
    }

    /// Every response the document declares, as (METHOD, path template, status).
    fn declared(&self) -> BTreeSet<(String, String, u16)> {
        let mut out = BTreeSet::new();
        for (method, template) in self.operations() {
            let op = self.operation(&method, &template).expect("listed operation");
            for status in op["responses"].as_object().expect("an operation has responses").keys() {
                let code: u16 = status
                    .parse()
                    .unwrap_or_else(|_| panic!("{method} {template}: response {status:?} is not a status code (no ranges, no default)"));
                out.insert((method.clone(), template.clone(), code));
            }
        }
        out
    }

    /// Follows `$ref`s (response and parameter objects) within the document.
    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("only local $refs are used: {reference}"));
            value = self.doc.pointer(pointer).unwrap_or_else(|| panic!("$ref {reference} resolves to nothing"));
        }
        value
    }

    /// The path template a request path falls under, if any.
    fn template_of(&self, path: &str) -> Option<String> {
        self.paths().keys().find(|template| matches_template(template, path)).cloned()
    }

    /// A request path for `method` on `template`, its path parameters filled
    /// with their examples.
    fn example_path(&self, method: &str, template: &str) -> String {
        let op = self.operation(method, template).expect("listed operation");
        let mut path = template.to_string();
        for param in op["parameters"].as_array().into_iter().flatten() {
            let param = self.resolve(param);
            if param["in"].as_str() != Some("path") {
                continue;
            }
            let name = param["name"].as_str().expect("a parameter has a name");
            let example = match &param["example"] {
                Value::String(s) => s.clone(),
                Value::Null => panic!("{method} {template}: path parameter {name} has no example"),
                other => other.to_string(),
            };
            path = path.replace(&format!("{{{name}}}"), &example);
        }
        assert!(!path.contains('{'), "{method} {template}: a templated segment is not a declared parameter: {path}");
        path
    }

    /// The JSON examples of the operation's request body (empty when it has none).
    fn body_examples(&self, method: &str, template: &str) -> Vec<Value> {
        let op = self.operation(method, template).expect("listed operation");
        let Some(body) = op.get("requestBody") else {
            return Vec::new();
        };
        let media = &self.resolve(body)["content"]["application/json"];
        let examples: Vec<Value> = media["examples"]
            .as_object()
            .into_iter()
            .flat_map(|examples| examples.values())
            .map(|example| self.resolve(example)["value"].clone())
            .collect();
        assert!(!examples.is_empty(), "{method} {template}: the JSON request body has no examples");
        examples
    }

    /// Sends one request, checks its status and holds the exchange to the
    /// document; returns the JSON body (null when it is not JSON).
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        service: &Service,
        enc: &dyn Encoder,
        method: &str,
        path: &str,
        body: &[u8],
        content_type: Option<&str>,
        expected: u16,
    ) -> Value {
        let req = HttpRequest::new(method, path, content_type, body);
        let response = service.handle(&req, enc);
        let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        assert_eq!(response.status, expected, "{method} {path}: {json}");
        self.check(&req, &response);
        json
    }

    fn get(&self, service: &Service, enc: &dyn Encoder, path: &str, expected: u16) -> Value {
        self.send(service, enc, "GET", path, b"", None, expected)
    }

    fn search(&self, service: &Service, enc: &dyn Encoder, body: &Value, expected: u16) -> Value {
        self.send(service, enc, "POST", "/api/search", body.to_string().as_bytes(), Some("application/json"), expected)
    }

    /// Holds one exchange to the document; panics naming what differs.
    fn check(&self, req: &HttpRequest, response: &HttpResponse) {
        let what = format!("{} {} → {}", req.method, req.path_and_query, response.status);
        let path = req.path_and_query.split('?').next().unwrap_or("");
        let declared = match self.template_of(path) {
            None => {
                assert_eq!(response.status, 404, "{what}: a path the document does not list must answer 404");
                self.resolve(&self.doc["components"]["responses"]["NotFound"])
            }
            Some(template) => match self.operation(&req.method, &template) {
                None => {
                    assert_eq!(response.status, 405, "{what}: a method the document does not list for {template} must answer 405");
                    self.resolve(&self.doc["components"]["responses"]["MethodNotAllowed"])
                }
                Some(op) => {
                    let status = response.status.to_string();
                    let declared = op["responses"].get(status.as_str()).unwrap_or_else(|| {
                        panic!(
                            "{what}: status {status} is not declared for {} {template} (declared: {:?}); body: {}",
                            req.method,
                            keys(&op["responses"]),
                            String::from_utf8_lossy(&response.body)
                        )
                    });
                    self.seen.borrow_mut().insert((req.method.clone(), template.clone(), response.status));
                    if (200..300).contains(&response.status) {
                        self.check_request(&what, op, req);
                    }
                    self.resolve(declared)
                }
            },
        };
        self.check_response(&what, declared, response);
    }

    /// A JSON request that succeeded must be one the document describes.
    fn check_request(&self, what: &str, op: &Value, req: &HttpRequest) {
        let Some(body) = op.get("requestBody") else {
            return;
        };
        let is_json = req
            .content_type
            .as_deref()
            .is_none_or(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return;
        }
        let media = self.resolve(body)["content"]
            .get("application/json")
            .unwrap_or_else(|| panic!("{what}: a JSON body was accepted but the document declares none"));
        let request: Value = serde_json::from_slice(&req.body).unwrap_or_else(|e| panic!("{what}: accepted request is not JSON: {e}"));
        self.validate(&format!("{what} (request body)"), &media["schema"], &request);
    }

    fn check_response(&self, what: &str, declared: &Value, response: &HttpResponse) {
        let content_type = response.header("content-type").unwrap_or_else(|| panic!("{what}: no content-type"));
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let media = declared["content"].get(essence.as_str()).unwrap_or_else(|| {
            panic!("{what}: content-type {content_type:?} is not declared (declared: {:?})", keys(&declared["content"]))
        });
        if let Some(headers) = declared.get("headers").and_then(Value::as_object) {
            for (name, header) in headers {
                let header = self.resolve(header);
                if header["required"].as_bool() == Some(true) {
                    assert!(
                        response.header(&name.to_ascii_lowercase()).is_some(),
                        "{what}: header {name} is declared required but missing ({:?})",
                        response.headers
                    );
                }
            }
        }
        if essence == "application/json" {
            let body: Value = serde_json::from_slice(&response.body)
                .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e}): {}", String::from_utf8_lossy(&response.body)));
            self.validate(what, &media["schema"], &body);
        } else {
            assert!(!response.body.is_empty(), "{what}: empty {essence} body");
            if essence.starts_with("text/") {
                assert!(std::str::from_utf8(&response.body).is_ok(), "{what}: {essence} body is not UTF-8");
            }
        }
    }

    /// The errors of `instance` against `schema`, a schema of this document:
    /// compiled beside the document's components so that its
    /// `#/components/...` refs resolve locally.
    fn errors(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let wrapper = json!({"components": self.doc["components"], "allOf": [schema]});
        let validator = jsonschema::draft202012::new(&wrapper).unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema}"));
        let errors: Vec<String> = validator.iter_errors(instance).map(|e| format!("at {:?}: {e}", e.instance_path().to_string())).collect();
        errors
    }

    fn validate(&self, what: &str, schema: &Value, instance: &Value) {
        let errors = self.errors(schema, instance);
        assert!(errors.is_empty(), "{what}: does not match the document:\n  {}\nbody: {instance}", errors.join("\n  "));
    }

    /// Fails naming every declared response no exchange produced.
    fn assert_all_declared_seen(&self) {
        let seen = self.seen.borrow();
        let missing: Vec<String> = self
            .declared()
            .difference(&seen)
            .map(|(method, template, status)| format!("{method} {template} {status}"))
            .collect();
        assert!(missing.is_empty(), "declared but never produced:\n  {}", missing.join("\n  "));
    }
}

/// Whether a request path falls under an OpenAPI path template (one
/// `{parameter}` at most per segment, with an optional literal prefix and
/// suffix, as in `{shot_id}.jpg`).
fn matches_template(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| match t.split_once('{') {
            None => t == p,
            Some((prefix, rest)) => {
                let suffix = rest.split_once('}').map_or("", |(_, s)| s);
                p.len() > prefix.len() + suffix.len() && p.starts_with(prefix) && p.ends_with(suffix)
            }
        })
}

fn keys(value: &Value) -> Vec<String> {
    value.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn png(colour: [u8; 3], w: u32, h: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::RgbImage::from_pixel(w, h, image::Rgb(colour)).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A multipart/form-data body with boundary `XyZ`: text fields, then an image part if given.
fn multipart(fields: &[(&str, &str)], image: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--XyZ\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    if let Some(image) = image {
        body.extend_from_slice(b"--XyZ\r\ncontent-disposition: form-data; name=\"image\"; filename=\"q.png\"\r\ncontent-type: image/png\r\n\r\n");
        body.extend_from_slice(image);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    body
}

fn service_with(root: &Path, specs: &[Spec]) -> Service {
    for s in specs {
        test_bundle::write(root, s).unwrap();
    }
    Service::load(root)
}

/// Every route, with its successes and every error it declares, answers as
/// the document says; and every declared response is produced.
#[test]
fn every_response_matches_the_document_and_every_declared_one_is_produced() {
    let contract = Contract::load();
    let c = &contract;
    let s = spec("demo");
    let enc = FakeEncoder::new(&s, Towers::Working);
    let enc = &enc as &dyn Encoder;

    // One collection served.
    let tmp = tempfile::tempdir().unwrap();
    let one = service_with(tmp.path(), std::slice::from_ref(&s));
    for page in ["/", "/index.html", "/app.js", "/app.css"] {
        c.get(&one, enc, page, 200);
    }
    c.get(&one, enc, "/api/openapi.json", 200);
    let collections = c.get(&one, enc, "/api/collections", 200);
    assert_eq!(collections["collections"][0]["name"], "demo");
    c.get(&one, enc, "/api/videos", 200);
    c.get(&one, enc, "/api/videos?collection=demo", 200);
    c.get(&one, enc, "/api/videos?collection=nope", 404);
    let shot = c.get(&one, enc, "/api/shots/8", 200);
    assert_eq!(shot["neighbours"].as_array().map(Vec::len), Some(12), "{shot}");
    c.get(&one, enc, "/api/shots/8?collection=demo", 200);
    c.get(&one, enc, "/api/shots/abc", 400);
    c.get(&one, enc, "/api/shots/424242", 404);
    c.get(&one, enc, "/api/shots/8?collection=nope", 404);
    let timeline = c.get(&one, enc, "/api/videos/video-01/timeline", 200);
    assert_eq!(timeline["frames"].as_array().map(Vec::len), Some(24), "{timeline}");
    c.get(&one, enc, "/api/videos/video%2D01/timeline?collection=demo", 200);
    c.get(&one, enc, "/api/videos/nope/timeline", 404);
    c.get(&one, enc, "/api/map", 200);
    c.get(&one, enc, "/api/map?collection=nope", 404);
    c.get(&one, enc, "/api/keyframes/demo/8.jpg", 200);
    c.get(&one, enc, "/api/keyframes/demo/abc.jpg", 400);
    c.get(&one, enc, "/api/keyframes/demo/424242.jpg", 404);
    c.get(&one, enc, "/api/keyframes/nope/8.jpg", 404);
    c.get(&one, enc, "/api/keyframes/demo/8.png", 404); // not a keyframe path: the document's NotFound
    c.get(&one, enc, "/api/nothing", 404);
    c.get(&one, enc, "/api", 404);
    c.send(&one, enc, "DELETE", "/api/collections", b"", None, 405);
    c.get(&one, enc, "/api/search", 405);

    // Searches: the document's own examples, text + image, multipart, and every refusal.
    for example in c.body_examples("POST", "/api/search") {
        let found = c.search(&one, enc, &example, 200);
        assert!(!found["results"].as_array().expect("results").is_empty() || example.get("filter").is_some(), "{example}: {found}");
    }
    let red = png([255, 0, 0], 40, 30);
    c.search(&one, enc, &json!({"text": "class 1", "image": base64_of(&red), "image_weight": 0.3, "k": 3}), 200);
    c.search(&one, enc, &json!({"image": format!("data:image/png;base64,{}", base64_of(&red)), "k": 3}), 200);
    c.search(&one, enc, &json!({"collection": null, "text": "class 1", "like_shot": null}), 200);
    let form = multipart(&[("text", "class 1"), ("k", "2"), ("image_weight", "0.5")], Some(&red));
    c.send(&one, enc, "POST", "/api/search", &form, Some("multipart/form-data; boundary=XyZ"), 200);
    c.send(&one, enc, "POST", "/api/search", br#"{"text": "class 1"}"#, None, 200);
    c.send(&one, enc, "POST", "/api/search", br#"{"text": "class 1"}"#, Some("application/x-www-form-urlencoded"), 200);
    c.send(&one, enc, "POST", "/api/search", b"{\"text\": ", None, 400);
    let unknown_field = json!({"txt": "red"});
    c.search(&one, enc, &unknown_field, 400);
    let request_schema = &c.doc["paths"]["/api/search"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert!(!c.errors(request_schema, &unknown_field).is_empty(), "the request schema must refuse unknown fields too");
    c.search(&one, enc, &json!({"text": "class 1", "k": 0}), 400);
    c.search(&one, enc, &json!({"text": "class 1", "k": 101}), 400);
    c.search(&one, enc, &json!({}), 400);
    let bad_form = multipart(&[("nope", "x")], None);
    c.send(&one, enc, "POST", "/api/search", &bad_form, Some("multipart/form-data; boundary=XyZ"), 400);
    c.search(&one, enc, &json!({"collection": "nope", "text": "class 1"}), 404);
    c.search(&one, enc, &json!({"like_shot": 999_999}), 404);
    c.send(&one, enc, "POST", "/api/search", b"<q>red</q>", Some("application/xml"), 415);
    c.send(&one, enc, "POST", "/api/search", b"text=red", Some("application/x-www-form-urlencoded"), 415);
    c.search(&one, enc, &json!({"image": "!!!not base64"}), 422);
    c.search(&one, enc, &json!({"image": base64_of(b"plain text, not an image")}), 415);
    for (towers, code) in [(Towers::Missing, "encoder_unavailable"), (Towers::Failing, "encoder_failed"), (Towers::WrongDim, "encoder_mismatch")] {
        let broken = FakeEncoder::new(&s, towers);
        let json = c.search(&one, &broken, &json!({"text": "class 1"}), 503);
        assert_eq!(json["error"]["code"], code, "{towers:?}: {json}");
    }

    // Two collections: the collection must be named.
    let tmp_two = tempfile::tempdir().unwrap();
    let two = service_with(tmp_two.path(), &[s.clone(), spec("otra")]);
    c.get(&two, enc, "/api/collections", 200);
    c.get(&two, enc, "/api/videos", 400);
    c.get(&two, enc, "/api/map", 400);
    c.get(&two, enc, "/api/shots/8", 400);
    c.get(&two, enc, "/api/videos/video-01/timeline", 400);
    c.search(&two, enc, &json!({"text": "class 1"}), 400);
    c.search(&two, enc, &json!({"collection": "otra", "text": "class 1"}), 200);

    // A collection that failed to load, and files corrupted after loading.
    let tmp_broken = tempfile::tempdir().unwrap();
    test_bundle::write(tmp_broken.path(), &s).unwrap();
    test_bundle::write(tmp_broken.path(), &spec("rota")).unwrap();
    let rota = tmp_broken.path().join("rota/versions/v000001/shots.usearch");
    let mut index = std::fs::read(&rota).unwrap();
    index[100] ^= 0xff;
    std::fs::write(&rota, index).unwrap();
    let demo = tmp_broken.path().join("demo/versions/v000001");
    std::fs::write(demo.join("keyframes/8.jpg"), b"tampered").unwrap();
    std::fs::write(demo.join("timelines/video-01.json"), b"tampered").unwrap();
    let broken = Service::load(tmp_broken.path());
    let listed = c.get(&broken, enc, "/api/collections", 200);
    assert_eq!(listed["unavailable"][0]["name"], "rota", "{listed}");
    c.get(&broken, enc, "/api/videos?collection=rota", 503);
    c.get(&broken, enc, "/api/map?collection=rota", 503);
    c.get(&broken, enc, "/api/shots/8?collection=rota", 503);
    c.get(&broken, enc, "/api/videos/video-01/timeline?collection=rota", 503);
    c.get(&broken, enc, "/api/keyframes/rota/8.jpg", 503);
    c.search(&broken, enc, &json!({"collection": "rota", "text": "class 1"}), 503);
    c.get(&broken, enc, "/api/keyframes/demo/8.jpg", 500);
    c.get(&broken, enc, "/api/videos/video-01/timeline", 500);
    c.get(&broken, enc, "/api/videos/video-00/timeline", 200);

    // No bundles at all.
    let tmp_none = tempfile::tempdir().unwrap();
    let none = Service::load(&tmp_none.path().join("missing"));
    let listed = c.get(&none, enc, "/api/collections", 200);
    assert_eq!(listed["unavailable"][0]["name"], "/bundles", "{listed}");
    c.get(&none, enc, "/api/videos", 503);
    c.get(&none, enc, "/api/map", 503);
    c.get(&none, enc, "/api/shots/8", 503);
    c.get(&none, enc, "/api/videos/video-01/timeline", 503);
    c.get(&none, enc, "/api/keyframes/demo/8.jpg", 404);
    c.search(&none, enc, &json!({"text": "class 1"}), 503);

    // Bodies over the limit, on every operation (the limit is checked first).
    let small = Limits { max_body_bytes: 64, ..Limits::DEFAULT };
    let limited = Service::from_collections(vec![Collection::load_current(&tmp.path().join("demo")).unwrap()], small);
    for (method, template) in c.operations() {
        let path = c.example_path(&method, &template);
        c.send(&limited, enc, &method, &path, &[b' '; 65], Some("application/json"), 413);
    }

    contract.assert_all_declared_seen();
}

/// Every path of the document is routed, with its example parameters and
/// bodies; every method it does not list answers 405.
#[test]
fn every_documented_path_is_routed_and_other_methods_are_refused() {
    let contract = Contract::load();
    let c = &contract;
    let s = spec("demo");
    let tmp = tempfile::tempdir().unwrap();
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let enc = FakeEncoder::new(&s, Towers::Working);
    let operations = c.operations();
    for (method, template) in &operations {
        let path = c.example_path(method, template);
        let bodies = c.body_examples(method, template);
        let bodies: Vec<Vec<u8>> = if bodies.is_empty() { vec![Vec::new()] } else { bodies.iter().map(|b| b.to_string().into_bytes()).collect() };
        for body in bodies {
            let content_type = if body.is_empty() { None } else { Some("application/json") };
            let json = c.send(&service, &enc, method, &path, &body, content_type, 200);
            assert!(!json.to_string().contains("no route"), "{method} {path}: {json}");
        }
    }
    for template in c.paths().keys() {
        let listed: Vec<&str> = operations.iter().filter(|(_, t)| t == template).map(|(m, _)| m.as_str()).collect();
        let path = c.example_path(listed[0], template);
        for method in METHODS.iter().filter(|m| !listed.contains(m)) {
            c.send(&service, &enc, method, &path, b"", None, 405);
        }
    }
}

/// `GET /api/openapi.json` serves this very file, and it is OpenAPI 3.1.
#[test]
fn the_component_serves_the_document() {
    let s = spec("demo");
    let tmp = tempfile::tempdir().unwrap();
    let service = service_with(tmp.path(), std::slice::from_ref(&s));
    let enc = FakeEncoder::new(&s, Towers::Working);
    let req = HttpRequest { method: "GET".into(), path_and_query: "/api/openapi.json".into(), ..HttpRequest::default() };
    let response = service.handle(&req, &enc);
    assert_eq!((response.status, response.header("content-type")), (200, Some("application/json")));
    assert!(response.body == OPENAPI.as_bytes(), "the served document differs from query-component/openapi.json");
    let doc: Value = serde_json::from_slice(&response.body).unwrap();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);
}

/// Every `$ref` resolves, every operation has a unique operationId, every
/// JSON schema compiles, and every component is used (referenced, or named
/// in `info.description`, as the 405 answer is).
#[test]
fn the_document_is_self_consistent() {
    let contract = Contract::load();
    let doc = &contract.doc;
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for reference in &refs {
        let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("only local $refs: {reference}"));
        assert!(doc.pointer(pointer).is_some(), "$ref {reference} resolves to nothing");
    }
    let description = doc["info"]["description"].as_str().unwrap_or("");
    for kind in ["schemas", "responses", "parameters"] {
        for name in doc["components"][kind].as_object().into_iter().flat_map(|m| m.keys()) {
            let reference = format!("#/components/{kind}/{name}");
            assert!(refs.contains(&reference) || description.contains(&reference), "{reference} is never used");
        }
    }
    let mut ids = BTreeSet::new();
    for (method, template) in contract.operations() {
        let op = contract.operation(&method, &template).unwrap();
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {template} has no operationId"));
        assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {template} has no summary");
        for response in op["responses"].as_object().unwrap().values() {
            let response = contract.resolve(response);
            for media in response["content"].as_object().into_iter().flat_map(|m| m.values()) {
                let _ = contract.errors(&media["schema"], &Value::Null); // compiles, or panics naming it
            }
        }
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                out.push(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The route table of README.md's "HTTP API" section lists exactly the
/// document's operations, so neither can drift from the other.
#[test]
fn the_readme_api_table_lists_exactly_the_documented_routes() {
    let section = README.split("\n## HTTP API").nth(1).expect("README.md has an \"HTTP API\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut rows = BTreeSet::new();
    for line in section.lines().filter(|line| line.starts_with("| `")) {
        let cell = line.split('|').nth(1).unwrap_or("");
        let mut method: Option<String> = None;
        // The odd pieces are inside backticks: `METHOD /path`, then `/path` for more of the same method.
        for route in cell.split('`').skip(1).step_by(2) {
            let (m, path) = match route.split_once(' ') {
                Some((m, path)) if !m.is_empty() && m.chars().all(|ch| ch.is_ascii_uppercase()) => (m.to_string(), path),
                _ => (method.clone().unwrap_or_else(|| panic!("README route {route:?} has no method")), route),
            };
            method = Some(m.clone());
            rows.insert((m, path.split('?').next().unwrap_or(path).to_string()));
        }
    }
    let documented = Contract::load().operations();
    let only_readme: Vec<_> = rows.difference(&documented).collect();
    let only_document: Vec<_> = documented.difference(&rows).collect();
    assert!(
        only_readme.is_empty() && only_document.is_empty(),
        "README.md's API table and openapi.json differ:\n  only in the README: {only_readme:?}\n  only in openapi.json: {only_document:?}"
    );
}
