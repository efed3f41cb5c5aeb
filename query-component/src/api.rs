//! The HTTP API of the query component, independent of wasi:http and wasi:nn so
//! that it is tested natively: [`Service::handle`] takes a buffered request and
//! an [`Encoder`] and returns the response. The component's glue (`wasm.rs`)
//! feeds it requests from wasi:http and encodes through wasi:nn; tests use a
//! fake encoder.
//!
//! Routes (details and curl examples in README.md):
//! `GET /` (+ `/app.js`, `/app.css`), `POST /api/search`, `GET /api/collections`,
//! `GET /api/videos`, `GET /api/shots/{id}`, `GET /api/videos/{id}/timeline`,
//! `GET /api/map`, `GET /api/keyframes/{collection}/{shot_id}.jpg`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use base64::Engine as _;
use busca_core::bundle::{self, BundleError, Counts};
use busca_core::image_input::{decode_rgb, ImageInputError};
use busca_core::query::{ErrorBody, QueryError, SearchFilter, DEFAULT_IMAGE_WEIGHT, DEFAULT_K};
use busca_core::model::{ImageTower, TextTower};
use busca_core::search::{Collection, QueryParts};
use busca_core::shot_index::Method;
use busca_core::shot::{ShotRecord, Timeline};
use busca_core::{ClipTokenizer, Limits, SearchHit, SearchRequest, SearchResponse};
use serde::Serialize;

/// The search page and its assets, built into the component.
const INDEX_HTML: &str = include_str!("../../ui/index.html");
const APP_JS: &str = include_str!("../../ui/app.js");
const APP_CSS: &str = include_str!("../../ui/app.css");

/// Neighbours listed with a shot.
const SHOT_NEIGHBOURS: usize = 12;
/// Most parts accepted in a multipart body.
const MAX_MULTIPART_FIELDS: usize = 16;

/// A request, body already read (and bounded by the caller).
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, e.g. `/api/map?collection=demo`.
    pub path_and_query: String,
    /// The `content-type` header.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A response to send.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
        }
    }

    fn json(status: u16, value: &impl Serialize) -> Self {
        let body = serde_json::to_vec(value).expect("response types serialise");
        Self::new(status, "application/json", body)
    }

    /// The JSON error response for `err`.
    pub fn error(err: &QueryError) -> Self {
        Self::json(err.status, &err.body())
    }

    /// The header `name` (lowercase), if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Runs the model's towers, with shapes and names from the tower's own
/// manifest entry. The wasi:nn glue (`wasm.rs`) is the one place that knows
/// graphs and tensors; tests use a fake.
pub trait Encoder {
    /// The text tower's embedding of one query's token ids.
    fn text(&self, tower: &TextTower, ids: &[i64]) -> Result<Vec<f32>, EncoderError>;
    /// The image tower's embedding of one preprocessed image: channel-major
    /// pixel values, 3 × `tower.image_size` × `tower.image_size`.
    fn image(&self, tower: &ImageTower, pixels: &[f32]) -> Result<Vec<f32>, EncoderError>;
}

/// Why an encoder could not answer.
#[derive(Debug, Clone, PartialEq)]
pub enum EncoderError {
    /// The host has no graph by this name.
    GraphMissing {
        /// The graph name.
        graph: String,
        /// What the host said.
        detail: String,
    },
    /// The graph ran and failed, or gave an unexpected output.
    Failed {
        /// The graph name.
        graph: String,
        /// What went wrong.
        detail: String,
    },
}

/// A collection ready to answer: the loaded bundle and its tokenizer.
pub struct Served {
    /// The bundle in memory.
    pub collection: Collection,
    /// The tokenizer of the bundle's text tower (building it parses the BPE
    /// vocabulary, so it is built once, at pre-initialization).
    pub tokenizer: ClipTokenizer,
}

/// Every collection found under the bundles root, loaded; what failed to load
/// is kept with its reason and reported instead of served.
pub struct Service {
    collections: BTreeMap<String, Served>,
    failures: BTreeMap<String, String>,
    root_error: Option<String>,
    limits: Limits,
    load_ms: f64,
}

#[derive(Serialize)]
struct CollectionInfo<'a> {
    name: &'a str,
    bundle_version: &'a str,
    model_id: &'a str,
    embedding_dim: usize,
    created_unix_ms: u64,
    counts: Counts,
    index: IndexInfo<'a>,
}

#[derive(Serialize)]
struct IndexInfo<'a> {
    metric: &'a str,
    quantization: &'a str,
    search: Method,
}

#[derive(Serialize)]
struct Unavailable<'a> {
    name: &'a str,
    error: &'a str,
}

impl Service {
    /// Loads the current version of every collection under `root`
    /// (`root/<collection>/CURRENT`), checking format and checksums.
    pub fn load(root: &Path) -> Self {
        let started = Instant::now();
        let mut service = Service {
            collections: BTreeMap::new(),
            failures: BTreeMap::new(),
            root_error: None,
            limits: Limits::DEFAULT,
            load_ms: 0.0,
        };
        match bundle::list_collections(root) {
            Err(e) => service.root_error = Some(e.to_string()),
            Ok(names) => {
                for name in names {
                    match Collection::load_current(&root.join(&name)) {
                        Ok(collection) => {
                            let tokenizer = ClipTokenizer::for_model(&collection.bundle.manifest.model);
                            service.collections.insert(name, Served { collection, tokenizer });
                        }
                        Err(e) => {
                            service.failures.insert(name, e.to_string());
                        }
                    }
                }
            }
        }
        service.load_ms = started.elapsed().as_secs_f64() * 1e3;
        service
    }

    /// Serves already-loaded collections (tests, tools).
    pub fn from_collections(collections: Vec<Collection>, limits: Limits) -> Self {
        let collections = collections
            .into_iter()
            .map(|collection| {
                let tokenizer = ClipTokenizer::for_model(&collection.bundle.manifest.model);
                (collection.name().to_string(), Served { collection, tokenizer })
            })
            .collect();
        Service {
            collections,
            failures: BTreeMap::new(),
            root_error: None,
            limits,
            load_ms: 0.0,
        }
    }

    /// The input limits enforced.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs each tokenizer once, so that what it builds on first use (the
    /// pre-tokenization regex's lazy DFA and caches) is made at
    /// pre-initialization and lands in the snapshot instead of being
    /// allocated, page by fresh page, in every request's instance.
    pub fn warm_up(&self) {
        for served in self.collections.values() {
            let _ = served.tokenizer.tokenize("Warm-up: obreros cavando zanjas, 2 niños en la playa; it's a dog's life!");
        }
    }

    /// Collections served.
    pub fn collection_names(&self) -> impl Iterator<Item = &str> {
        self.collections.keys().map(String::as_str)
    }

    /// Collections that failed to load, with the reason.
    pub fn failures(&self) -> &BTreeMap<String, String> {
        &self.failures
    }

    /// Answers one request. Never panics on input: every bad input is a 4xx.
    pub fn handle(&self, req: &HttpRequest, encoder: &dyn Encoder) -> HttpResponse {
        let started = Instant::now();
        match self.route(req, encoder, started) {
            Ok(response) => response,
            Err(err) => HttpResponse::error(&err),
        }
    }

    fn route(&self, req: &HttpRequest, encoder: &dyn Encoder, started: Instant) -> Result<HttpResponse, QueryError> {
        if req.body.len() > self.limits.max_body_bytes {
            return Err(QueryError::body_too_large(self.limits.max_body_bytes));
        }
        let (path, query) = req.path_and_query.split_once('?').unwrap_or((&req.path_and_query, ""));
        let params: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let raw: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let segments = raw
            .iter()
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| QueryError::invalid(format!("path segment {s:?} is not UTF-8")))
            })
            .collect::<Result<Vec<String>, _>>()?;
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let collection_param = params.get("collection").map(String::as_str);
        let method = req.method.as_str();
        let only = |allowed: &'static str| -> Result<(), QueryError> {
            if method == allowed {
                Ok(())
            } else {
                Err(QueryError::new(405, "method_not_allowed", format!("{method} is not allowed on {path}; use {allowed}")))
            }
        };
        let response = match seg.as_slice() {
            [""] | ["index.html"] => {
                only("GET")?;
                HttpResponse::new(200, "text/html; charset=utf-8", INDEX_HTML.as_bytes().to_vec())
            }
            ["app.js"] => {
                only("GET")?;
                HttpResponse::new(200, "text/javascript; charset=utf-8", APP_JS.as_bytes().to_vec())
            }
            ["app.css"] => {
                only("GET")?;
                HttpResponse::new(200, "text/css; charset=utf-8", APP_CSS.as_bytes().to_vec())
            }
            ["api", "search"] => {
                only("POST")?;
                self.search(req, encoder, started)?
            }
            ["api", "collections"] => {
                only("GET")?;
                self.collections_info()
            }
            ["api", "videos"] => {
                only("GET")?;
                let served = self.pick(collection_param)?;
                let c = &served.collection;
                HttpResponse::json(200, &serde_json::json!({
                    "collection": c.name(), "bundle_version": c.version(), "videos": c.videos,
                }))
            }
            ["api", "shots", id] => {
                only("GET")?;
                self.shot(self.pick(collection_param)?, id)?
            }
            ["api", "videos", id, "timeline"] => {
                only("GET")?;
                self.timeline(self.pick(collection_param)?, id)?
            }
            ["api", "map"] => {
                only("GET")?;
                let c = &self.pick(collection_param)?.collection;
                HttpResponse::json(200, &serde_json::json!({
                    "collection": c.name(), "bundle_version": c.version(), "points": c.map,
                }))
            }
            ["api", "keyframes", collection, file] => {
                only("GET")?;
                self.keyframe(collection, file)?
            }
            _ => return Err(QueryError::not_found(format!("no route for {path}"))),
        };
        Ok(response)
    }

    /// The collection named, or the only one when none is named.
    fn pick(&self, name: Option<&str>) -> Result<&Served, QueryError> {
        let unavailable = |name: &str, why: &str| {
            QueryError::new(503, "collection_unavailable", format!("collection {name} could not be loaded: {why}"))
        };
        match name {
            Some(name) => {
                if let Some(served) = self.collections.get(name) {
                    return Ok(served);
                }
                if let Some(why) = self.failures.get(name) {
                    return Err(unavailable(name, why));
                }
                Err(QueryError::not_found(format!(
                    "no collection {name:?}; served: {}",
                    self.collections.keys().cloned().collect::<Vec<_>>().join(", ")
                )))
            }
            None => {
                if self.collections.len() == 1 {
                    return Ok(self.collections.values().next().expect("one collection"));
                }
                if self.collections.is_empty() {
                    let why = match (&self.root_error, self.failures.iter().next()) {
                        (Some(e), _) => e.clone(),
                        (None, Some((name, e))) => format!("{name}: {e}"),
                        (None, None) => "no collection has a published bundle under the bundles root".into(),
                    };
                    return Err(QueryError::new(503, "no_collections", why));
                }
                Err(QueryError::invalid(format!(
                    "several collections are served; give collection (one of {})",
                    self.collections.keys().cloned().collect::<Vec<_>>().join(", ")
                )))
            }
        }
    }

    fn collections_info(&self) -> HttpResponse {
        let collections: Vec<CollectionInfo<'_>> = self
            .collections
            .values()
            .map(|s| {
                let m = &s.collection.bundle.manifest;
                CollectionInfo {
                    name: &m.collection,
                    bundle_version: &m.version,
                    model_id: &m.model.model_id,
                    embedding_dim: m.model.embedding_dim,
                    created_unix_ms: m.created_unix_ms,
                    counts: m.counts,
                    index: IndexInfo {
                        metric: &m.index.metric,
                        quantization: &m.index.quantization,
                        // What an unfiltered query uses; filtered ones always scan.
                        search: s.collection.index.method_for(Method::Auto, false),
                    },
                }
            })
            .collect();
        let unavailable: Vec<Unavailable<'_>> = self
            .failures
            .iter()
            .map(|(name, error)| Unavailable { name, error })
            .chain(self.root_error.iter().map(|error| Unavailable { name: "/bundles", error }))
            .collect();
        HttpResponse::json(200, &serde_json::json!({
            "collections": collections, "unavailable": unavailable, "load_ms": self.load_ms,
        }))
    }

    fn search(&self, req: &HttpRequest, encoder: &dyn Encoder, started: Instant) -> Result<HttpResponse, QueryError> {
        let (search, image_bytes) = parse_search_body(req.content_type.as_deref(), &req.body, &self.limits)?;
        search.validate(&self.limits)?;
        let served = self.pick(search.collection.as_deref())?;
        let c = &served.collection;
        let model = &c.bundle.manifest.model;
        let text_vector = match search.text_query() {
            Some(text) => {
                let ids = served.tokenizer.tokenize(text);
                Some(checked_embedding(c, &model.text.graph_name, encoder.text(&model.text, &ids))?)
            }
            None => None,
        };
        let image_vector = match image_bytes {
            Some(bytes) => {
                let image = decode_rgb(&bytes, self.limits.max_image_pixels).map_err(image_error)?;
                let pixels = model
                    .preprocess()
                    .pixel_values(image.width, image.height, &image.rgb)
                    .map_err(|e| QueryError::bad_image(format!("image cannot be preprocessed: {e}")))?;
                Some(checked_embedding(c, &model.image.graph_name, encoder.image(&model.image, &pixels))?)
            }
            None => None,
        };
        let query = c.compose(&search.parts(text_vector.as_deref(), image_vector.as_deref()))?;
        let found = c.search(&query, search.k, &search.filter, Method::Auto, &[]);
        Ok(HttpResponse::json(200, &SearchResponse {
            collection: c.name().to_string(),
            bundle_version: c.version().to_string(),
            model_id: model.model_id.clone(),
            took_ms: started.elapsed().as_secs_f64() * 1e3,
            method: found.method,
            results: found.hits,
        }))
    }

    fn shot(&self, served: &Served, id: &str) -> Result<HttpResponse, QueryError> {
        let c = &served.collection;
        let shot_id = parse_shot_id(id)?;
        let shot = c
            .shot(shot_id)
            .ok_or_else(|| QueryError::not_found(format!("no shot {shot_id} in collection {}", c.name())))?;
        let query = c.compose(&QueryParts {
            text: None,
            image: None,
            image_weight: DEFAULT_IMAGE_WEIGHT,
            like_shot: Some(shot_id),
            positive: &[],
            negative: &[],
        })?;
        let neighbours = c.search(&query, SHOT_NEIGHBOURS, &SearchFilter::default(), Method::Auto, &[shot_id]).hits;
        Ok(HttpResponse::json(200, &serde_json::json!({
            "collection": c.name(),
            "bundle_version": c.version(),
            "shot": SearchHit::new(shot.clone(), 1.0),
            "scene": c.scene(shot.scene_id),
            "class_id": shot.class_id,
            "video": c.video(&shot.video_id),
            "neighbours": neighbours,
        })))
    }

    fn timeline(&self, served: &Served, video_id: &str) -> Result<HttpResponse, QueryError> {
        let c = &served.collection;
        let video = c
            .video(video_id)
            .ok_or_else(|| QueryError::not_found(format!("no video {video_id:?} in collection {}", c.name())))?;
        let rel = format!("{}/{}.json", bundle::TIMELINES_DIR, video.video_id);
        let frames = if c.bundle.manifest.files.contains_key(&rel) {
            let timeline: Timeline = c.bundle.read_json(&rel).map_err(bundle_error)?;
            timeline.frames
        } else {
            Vec::new()
        };
        let mut shots: Vec<SearchHit> = c
            .shots
            .iter()
            .filter(|s| s.video_id == video.video_id)
            .map(|s: &ShotRecord| SearchHit::new(s.clone(), 1.0))
            .collect();
        shots.sort_by_key(|h| h.shot.start_ms);
        let mut scenes: Vec<_> = c.scenes.iter().filter(|s| s.video_id == video.video_id).collect();
        scenes.sort_by_key(|s| s.start_ms);
        Ok(HttpResponse::json(200, &serde_json::json!({
            "collection": c.name(),
            "bundle_version": c.version(),
            "video": video,
            "frames": frames,
            "scenes": scenes,
            "shots": shots,
        })))
    }

    fn keyframe(&self, collection: &str, file: &str) -> Result<HttpResponse, QueryError> {
        let served = self.pick(Some(collection))?;
        let c = &served.collection;
        let id = file
            .strip_suffix(".jpg")
            .ok_or_else(|| QueryError::not_found(format!("keyframes are /api/keyframes/{collection}/<shot_id>.jpg, not {file:?}")))?;
        let shot_id = parse_shot_id(id)?;
        let shot = c
            .shot(shot_id)
            .ok_or_else(|| QueryError::not_found(format!("no shot {shot_id} in collection {}", c.name())))?;
        if !c.bundle.manifest.files.contains_key(&shot.keyframe) {
            return Err(QueryError::not_found(format!(
                "shot {shot_id} of {} {} has no keyframe in the bundle",
                c.name(),
                c.version()
            )));
        }
        let bytes = c.bundle.read_checked(&shot.keyframe).map_err(bundle_error)?;
        let mut response = HttpResponse::new(200, "image/jpeg", bytes);
        response.headers.push(("x-bundle-version".into(), c.version().to_string()));
        response.headers.push(("cache-control".into(), "public, max-age=300".into()));
        Ok(response)
    }
}

fn parse_shot_id(text: &str) -> Result<u64, QueryError> {
    text.parse()
        .map_err(|_| QueryError::invalid(format!("shot id {text:?} is not a number")))
}

/// An encoder's answer checked against the bundle: a graph the host lacks, a
/// failure, or an embedding of another dimension is refused (503) rather
/// than searched with.
fn checked_embedding(c: &Collection, graph: &str, answer: Result<Vec<f32>, EncoderError>) -> Result<Vec<f32>, QueryError> {
    let bundle_name = format!("{} {}", c.name(), c.version());
    let embedding = answer.map_err(|e| match e {
        EncoderError::GraphMissing { graph, detail } => QueryError::new(
            503,
            "encoder_unavailable",
            format!("the host has no wasi-nn graph {graph:?}, which bundle {bundle_name} needs ({detail}); preload the bundle's model"),
        ),
        EncoderError::Failed { graph, detail } => QueryError::new(
            503,
            "encoder_failed",
            format!("wasi-nn graph {graph:?} failed for bundle {bundle_name}: {detail}"),
        ),
    })?;
    if embedding.len() != c.index.dim() {
        return Err(QueryError::new(
            503,
            "encoder_mismatch",
            format!(
                "wasi-nn graph {graph:?} returns {}-d embeddings but bundle {bundle_name} holds {}-d vectors; the host must preload the model the bundle was built with ({})",
                embedding.len(),
                c.index.dim(),
                c.bundle.manifest.model.model_id
            ),
        ));
    }
    if embedding.iter().any(|x| !x.is_finite()) {
        return Err(QueryError::new(503, "encoder_failed", format!("wasi-nn graph {graph:?} returned non-finite values")));
    }
    Ok(embedding)
}

fn image_error(e: ImageInputError) -> QueryError {
    QueryError::bad_image(format!("query image refused: {e}"))
}

fn bundle_error(e: BundleError) -> QueryError {
    QueryError::new(500, "bundle_unreadable", e.to_string())
}

/// Parses a search body, JSON or multipart/form-data, into the request and
/// the image bytes (decoded from base64 for JSON).
pub fn parse_search_body(
    content_type: Option<&str>,
    body: &[u8],
    limits: &Limits,
) -> Result<(SearchRequest, Option<Vec<u8>>), QueryError> {
    let mime = content_type.unwrap_or("application/json");
    let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "text/plain" | "" => {
            let req: SearchRequest = serde_json::from_slice(body).map_err(|e| QueryError::malformed_json(&e))?;
            let image = match &req.image {
                Some(b64) => Some(decode_base64_image(b64)?),
                None => None,
            };
            Ok((req, image))
        }
        // `curl -d '{...}'` labels JSON as a form; accept it when it is JSON.
        "application/x-www-form-urlencoded" if body.trim_ascii_start().starts_with(b"{") => {
            parse_search_body(Some("application/json"), body, limits)
        }
        "multipart/form-data" => parse_multipart(mime, body, limits),
        other => Err(QueryError::new(
            415,
            "unsupported_media_type",
            format!("content-type {other:?} is not accepted; send application/json or multipart/form-data"),
        )),
    }
}

fn decode_base64_image(text: &str) -> Result<Vec<u8>, QueryError> {
    // Accept a data: URL as browsers produce it.
    let data = match text.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map(|(_, d)| d).unwrap_or(""),
        None => text,
    };
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(compact.as_bytes()))
        .map_err(|e| QueryError::bad_image(format!("image is not valid base64: {e}")))
}

fn parse_multipart(mime: &str, body: &[u8], limits: &Limits) -> Result<(SearchRequest, Option<Vec<u8>>), QueryError> {
    let boundary = multer::parse_boundary(mime)
        .map_err(|e| QueryError::invalid(format!("multipart content-type has no usable boundary: {e}")))?;
    let stream = futures::stream::once(futures::future::ready(Ok::<_, std::convert::Infallible>(
        bytes::Bytes::copy_from_slice(body),
    )));
    let constraints = multer::Constraints::new()
        .allowed_fields(vec!["text", "image", "k", "image_weight", "collection", "like_shot"])
        .size_limit(multer::SizeLimit::new().whole_stream(limits.max_body_bytes as u64));
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut image: Option<Vec<u8>> = None;
    let bad = |e: multer::Error| QueryError::invalid(format!("multipart body is malformed: {e}"));
    futures::executor::block_on(async {
        let mut count = 0;
        while let Some(field) = multipart.next_field().await.map_err(bad)? {
            count += 1;
            if count > MAX_MULTIPART_FIELDS {
                return Err(QueryError::invalid(format!("more than {MAX_MULTIPART_FIELDS} multipart fields")));
            }
            let name = field.name().unwrap_or("").to_string();
            let data = field.bytes().await.map_err(bad)?;
            if name == "image" {
                if !data.is_empty() {
                    image = Some(data.to_vec());
                }
            } else {
                let text = String::from_utf8(data.to_vec())
                    .map_err(|_| QueryError::invalid(format!("multipart field {name} is not UTF-8 text")))?;
                fields.insert(name, text);
            }
        }
        Ok(())
    })?;
    let number = |name: &str| -> Result<Option<f64>, QueryError> {
        match fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .map(Some)
                .map_err(|_| QueryError::invalid(format!("field {name} must be a number, got {v:?}"))),
        }
    };
    let k = number("k")?;
    if k.is_some_and(|k| k.fract() != 0.0 || k < 0.0) {
        return Err(QueryError::invalid("field k must be a whole number"));
    }
    let like_shot = match fields.get("like_shot").map(|v| v.trim()).filter(|v| !v.is_empty()) {
        Some(v) => Some(parse_shot_id(v)?),
        None => None,
    };
    let req = SearchRequest {
        collection: fields.get("collection").cloned().filter(|c| !c.is_empty()),
        text: fields.get("text").cloned(),
        // A marker that an image was given; its bytes travel beside the request.
        image: image.as_ref().map(|_| String::new()),
        image_weight: number("image_weight")?.map_or(DEFAULT_IMAGE_WEIGHT, |w| w as f32),
        like_shot,
        positive: Vec::new(),
        negative: Vec::new(),
        k: k.map_or(DEFAULT_K, |k| k.min(usize::MAX as f64) as usize),
        filter: SearchFilter::default(),
    };
    Ok((req, image))
}

/// The error body of a response (for tests and the glue).
pub fn error_of(response: &HttpResponse) -> Option<ErrorBody> {
    serde_json::from_slice(&response.body).ok()
}
