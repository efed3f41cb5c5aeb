//! The handlers behind the routes: collections, search, a shot and its
//! neighbours, timelines and keyframes.

use std::time::Instant;

use busca_core::bundle::{self, BundleError, Counts};
use busca_core::usearch_file::{Metric, ScalarKind};
use busca_core::image_input::{decode_rgb, ImageInputError};
use busca_core::query::{QueryError, SearchFilter, DEFAULT_IMAGE_WEIGHT};
use busca_core::search::QueryParts;
use busca_core::shot_index::Method;
use busca_core::shot::{ShotRecord, Timeline};
use busca_core::{SearchHit, SearchResponse};
use serde::Serialize;

use super::body::{parse_search_body, parse_shot_id};
use super::encoder::{checked_embedding, Encoder};
use super::http::{HttpRequest, HttpResponse};
use super::{Served, Service};

/// Neighbours listed with a shot.
const SHOT_NEIGHBOURS: usize = 12;

#[derive(Serialize)]
struct CollectionInfo<'a> {
    name: &'a str,
    bundle_version: &'a str,
    model_id: &'a str,
    /// What the model is and cannot do, per language code.
    model_about: &'a std::collections::BTreeMap<String, String>,
    /// The text models a search may name, the default first.
    text_models: Vec<TextModelInfo<'a>>,
    embedding_dim: usize,
    created_unix_ms: u64,
    counts: Counts,
    index: IndexInfo,
}

#[derive(Serialize)]
struct TextModelInfo<'a> {
    id: &'a str,
    languages: &'a [String],
}

#[derive(Serialize)]
struct IndexInfo {
    metric: Metric,
    quantization: ScalarKind,
    search: Method,
}

#[derive(Serialize)]
struct Unavailable<'a> {
    name: &'a str,
    error: &'a str,
}

impl Service {
    pub(super) fn collections_info(&self) -> HttpResponse {
        let collections: Vec<CollectionInfo<'_>> = self
            .collections
            .values()
            .map(|s| {
                let m = &s.collection.bundle.manifest;
                CollectionInfo {
                    name: &m.collection,
                    bundle_version: &m.version,
                    model_id: &m.model.model_id,
                    model_about: &m.model.about,
                    text_models: m
                        .model
                        .text
                        .iter()
                        .map(|t| TextModelInfo { id: &t.id, languages: &t.languages })
                        .collect(),
                    embedding_dim: m.model.embedding_dim,
                    created_unix_ms: m.created_unix_ms,
                    counts: m.counts,
                    index: IndexInfo {
                        metric: m.index.metric,
                        quantization: m.index.quantization,
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

    pub(super) fn search(&self, req: &HttpRequest, encoder: &dyn Encoder, started: Instant) -> Result<HttpResponse, QueryError> {
        let (search, image_bytes) = parse_search_body(req.content_type.as_deref(), &req.body, &self.limits)?;
        search.validate(&self.limits)?;
        let served = self.pick(search.collection.as_deref())?;
        let c = &served.collection;
        let model = &c.bundle.manifest.model;
        let tower = match search.text_query() {
            Some(_) => Some(
                model
                    .text_tower(search.text_model.as_deref(), search.lang.as_deref())
                    .map_err(|e| QueryError::invalid(e.to_string()))?,
            ),
            None => None,
        };
        let text_vector = match (search.text_query(), tower) {
            (Some(text), Some(tower)) => {
                let tokenizer = served.tokenizers.get(&tower.id).expect("a tokenizer per tower, built at load");
                let ids = tokenizer.tokenize(text);
                Some(checked_embedding(c, &tower.graph_name, encoder.text(tower, &ids))?)
            }
            _ => None,
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
        let parts = search.parts(text_vector.as_deref(), image_vector.as_deref());
        let query = c.compose(&parts)?;
        let mut found = c.search(&query, search.k, &search.filter, Method::Auto, &[]);
        if parts.text_only() {
            for hit in &mut found.hits {
                hit.probability = model.score.probability(hit.score);
            }
        }
        Ok(HttpResponse::json(200, &SearchResponse {
            collection: c.name().to_string(),
            bundle_version: c.version().to_string(),
            model_id: model.model_id.clone(),
            text_model: tower.map(|t| t.id.clone()),
            text_languages: tower.map(|t| t.languages.clone()).unwrap_or_default(),
            took_ms: started.elapsed().as_secs_f64() * 1e3,
            method: found.method,
            results: found.hits,
        }))
    }

    pub(super) fn shot(&self, served: &Served, id: &str) -> Result<HttpResponse, QueryError> {
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

    pub(super) fn timeline(&self, served: &Served, video_id: &str) -> Result<HttpResponse, QueryError> {
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

    pub(super) fn keyframe(&self, collection: &str, file: &str) -> Result<HttpResponse, QueryError> {
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


/// A format the component does not decode is a 415 naming those it does
/// (the page redraws any other picture the browser can show as PNG); a
/// broken or oversized image of a known format is a 422.
fn image_error(e: ImageInputError) -> QueryError {
    match e {
        ImageInputError::UnsupportedFormat(_) => QueryError::new(
            415,
            "unsupported_media_type",
            format!("query image refused: {e}; convert it to one of those (the search page does so for AVIF and any other picture the browser can show)"),
        ),
        e => QueryError::bad_image(format!("query image refused: {e}")),
    }
}

fn bundle_error(e: BundleError) -> QueryError {
    QueryError::new(500, "bundle_unreadable", e.to_string())
}
