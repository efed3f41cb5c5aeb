//! The HTTP API of the query component, independent of wasi:http and wasi:nn so
//! that it is tested natively: [`Service::handle`] takes a buffered request and
//! an [`Encoder`] and returns the response. The component's glue (`wasm.rs`)
//! feeds it requests from wasi:http and encodes through wasi:nn; tests use a
//! fake encoder.
//!
//! Routes (details and curl examples in README.md):
//! `GET /` (+ `/app.js`, `/app.css`), `POST /api/search`, `GET /api/collections`,
//! `GET /api/videos`, `GET /api/shots/{id}`, `GET /api/videos/{id}/timeline`,
//! `GET /api/map`, `GET /api/keyframes/{collection}/{shot_id}.jpg`, and
//! `GET /api/openapi.json`: the OpenAPI 3.1 document of all of them
//! (`openapi.json`, which `tests/openapi.rs` checks real responses against).
//!
//! - [`http`]: the request and response types; [`encoder`]: the towers as
//!   the handlers see them; `body`: search bodies (JSON, multipart);
//!   `handlers`: what each route answers. Routing and the loaded service are
//!   here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use busca_core::bundle;
use busca_core::query::QueryError;
use busca_core::search::Collection;
use busca_core::{Limits, TextTokenizers};

mod body;
pub mod encoder;
mod handlers;
pub mod http;

pub use body::parse_search_body;
pub use encoder::{Encoder, EncoderError, Failure, NnError};
pub use http::{error_of, HttpRequest, HttpResponse};

/// The search page and its assets, built into the component.
const INDEX_HTML: &str = include_str!("../../../ui/index.html");
const APP_JS: &str = include_str!("../../../ui/app.js");
const APP_CSS: &str = include_str!("../../../ui/app.css");
/// The API's OpenAPI 3.1 document (`query-component/openapi.json`), built in.
const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// A collection ready to answer: the loaded bundle and its tokenizers.
pub struct Served {
    /// The bundle in memory.
    pub collection: Collection,
    /// The tokenizer of each of the model's text towers (building one parses
    /// a vocabulary, so they are built once, at pre-initialization).
    pub tokenizers: TextTokenizers,
}

impl Served {
    /// A loaded collection with its model's tokenizers (from the bundle).
    pub fn new(collection: Collection) -> Result<Self, busca_core::tokenize::TokenizerError> {
        let tokenizers = TextTokenizers::from_bundle(&collection.bundle)?;
        Ok(Served { collection, tokenizers })
    }
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
                    let served = Collection::load_current(&root.join(&name))
                        .map_err(|e| e.to_string())
                        .and_then(|c| Served::new(c).map_err(|e| busca_core::error::chain(&e)));
                    match served {
                        Ok(served) => {
                            service.collections.insert(name, served);
                        }
                        Err(e) => {
                            service.failures.insert(name, e);
                        }
                    }
                }
            }
        }
        service.load_ms = started.elapsed().as_secs_f64() * 1e3;
        service
    }

    /// Serves already-loaded collections (tests, tools); one whose
    /// tokenizers cannot be built is reported as unavailable.
    pub fn from_collections(collections: Vec<Collection>, limits: Limits) -> Self {
        let mut served = BTreeMap::new();
        let mut failures = BTreeMap::new();
        for collection in collections {
            let name = collection.name().to_string();
            match Served::new(collection) {
                Ok(s) => {
                    served.insert(name, s);
                }
                Err(e) => {
                    failures.insert(name, busca_core::error::chain(&e));
                }
            }
        }
        Service {
            collections: served,
            failures,
            root_error: None,
            limits,
            load_ms: 0.0,
        }
    }

    /// The input limits enforced.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Warms each tokenizer ([`busca_core::tokenize::TextTokenizer::warm_up`]),
    /// so that what it builds on first use is made at pre-initialization and
    /// lands in the snapshot instead of being rebuilt, page by fresh page, in
    /// every request's instance.
    pub fn warm_up(&self) {
        for served in self.collections.values() {
            for (_, tokenizer) in served.tokenizers.iter() {
                tokenizer.warm_up();
            }
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
            ["api", "openapi.json"] => {
                only("GET")?;
                HttpResponse::new(200, "application/json", OPENAPI_JSON.as_bytes().to_vec())
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
}
