//! The search API's JSON: requests, responses, errors, and the bounds every
//! public input is held to.
//!
//! The component parses requests with these types, the host and tests send
//! them, and the README documents them; nothing else defines them.

use serde::{Deserialize, Serialize};

use crate::shot::{timecode, ShotId, ShotRecord};
use crate::search::QueryParts;
use crate::shot_index::Method;

/// Bounds on every input of the public endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Largest image accepted, in pixels, checked from the header before
    /// decoding (422 beyond): stops decompression bombs.
    pub max_image_pixels: u64,
    /// Longest text query, in characters.
    pub max_query_chars: usize,
    /// Most results per request.
    pub max_k: usize,
    /// Most shot ids in `positive` + `negative`.
    pub max_feedback_ids: usize,
    /// Most video ids in a filter.
    pub max_filter_videos: usize,
}

impl Limits {
    /// The limits the component enforces unless configured otherwise.
    pub const DEFAULT: Limits = Limits {
        max_body_bytes: 12 * 1024 * 1024,
        max_image_pixels: 40_000_000,
        max_query_chars: 1000,
        max_k: 100,
        max_feedback_ids: 64,
        max_filter_videos: 256,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Results per request when `k` is not given.
pub const DEFAULT_K: usize = 20;
/// Weight of the image in a text+image query when not given.
pub const DEFAULT_IMAGE_WEIGHT: f32 = 0.5;

fn default_k() -> usize {
    DEFAULT_K
}
fn default_image_weight() -> f32 {
    DEFAULT_IMAGE_WEIGHT
}

/// `POST /api/search`.
///
/// At least one of `text`, `image`, `like_shot` or `positive` must be given.
/// ```
/// let req: busca_core::SearchRequest =
///     serde_json::from_str(r#"{"text": "workers digging trenches", "k": 5}"#).unwrap();
/// assert_eq!(req.k, 5);
/// assert!(req.validate(&busca_core::Limits::DEFAULT).is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Collection to search; the only one served when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// Text query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The text model (a text tower id of the collection's model manifest,
    /// e.g. `multilingual`) that encodes `text`; see `lang` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_model: Option<String>,
    /// The language of `text` (`es`, `en`, `es-ES`): without `text_model`,
    /// the first text model trained for it encodes the text, else the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Image query: base64 of a JPEG, PNG or WebP file (a `data:` URL prefix is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Weight of the image against the text, in `[0, 1]` (default 0.5).
    #[serde(default = "default_image_weight")]
    pub image_weight: f32,
    /// "More like this": use this shot's embedding as the query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub like_shot: Option<ShotId>,
    /// Relevance feedback: shots marked relevant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positive: Vec<ShotId>,
    /// Relevance feedback: shots marked not relevant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub negative: Vec<ShotId>,
    /// Number of results, 1 to [`Limits::max_k`] (default 20).
    #[serde(default = "default_k")]
    pub k: usize,
    /// Restrictions on the results.
    #[serde(default)]
    pub filter: SearchFilter,
}

/// Restrictions on search results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchFilter {
    /// Only shots of these videos (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub video_ids: Vec<String>,
    /// Only shots that end after this time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<u64>,
    /// Only shots that start before this time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<u64>,
    /// Only results scoring at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f32>,
}

impl SearchFilter {
    /// Whether a shot passes the video and time filters (not the score).
    pub fn admits(&self, shot: &ShotRecord) -> bool {
        (self.video_ids.is_empty() || self.video_ids.iter().any(|v| *v == shot.video_id))
            && self.start_ms.is_none_or(|start| shot.end_ms > start)
            && self.end_ms.is_none_or(|end| shot.start_ms < end)
    }
}

/// A BCP 47-shaped language tag as pages send it: 2 or 3 letters, then
/// optional `-` or `_` subtags of 1 to 8 letters or digits, at most 35 bytes.
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split(['-', '_']);
    let primary = parts.next().unwrap_or("");
    tag.len() <= 35
        && (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The first 40 characters of a user's value, for an error message.
fn truncate_for_message(value: &str) -> String {
    value.chars().take(40).collect()
}

impl SearchRequest {
    /// Checks the request against `limits`; the error says which field is wrong.
    pub fn validate(&self, limits: &Limits) -> Result<(), QueryError> {
        let text = self.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
        if text.is_none()
            && self.image.is_none()
            && self.like_shot.is_none()
            && self.positive.is_empty()
        {
            return Err(QueryError::invalid(
                "give at least one of text, image, like_shot or positive",
            ));
        }
        if let Some(text) = text {
            let chars = text.chars().count();
            if chars > limits.max_query_chars {
                return Err(QueryError::invalid(format!(
                    "text has {chars} characters; the limit is {}",
                    limits.max_query_chars
                )));
            }
        }
        if let Some(id) = &self.text_model {
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(QueryError::invalid(format!(
                    "text_model must be 1 to 64 letters, digits, '-' or '_', got {:?}",
                    truncate_for_message(id)
                )));
            }
        }
        if let Some(lang) = &self.lang {
            if !is_language_tag(lang) {
                return Err(QueryError::invalid(format!(
                    "lang must be a language code such as es, en or es-ES, got {:?}",
                    truncate_for_message(lang)
                )));
            }
        }
        if self.k == 0 || self.k > limits.max_k {
            return Err(QueryError::invalid(format!(
                "k must be between 1 and {}, got {}",
                limits.max_k, self.k
            )));
        }
        if !(0.0..=1.0).contains(&self.image_weight) {
            return Err(QueryError::invalid(format!(
                "image_weight must be between 0 and 1, got {}",
                self.image_weight
            )));
        }
        let feedback = self.positive.len() + self.negative.len();
        if feedback > limits.max_feedback_ids {
            return Err(QueryError::invalid(format!(
                "{feedback} feedback shot ids; the limit is {}",
                limits.max_feedback_ids
            )));
        }
        if self.filter.video_ids.len() > limits.max_filter_videos {
            return Err(QueryError::invalid(format!(
                "{} video ids in the filter; the limit is {}",
                self.filter.video_ids.len(),
                limits.max_filter_videos
            )));
        }
        if let (Some(start), Some(end)) = (self.filter.start_ms, self.filter.end_ms) {
            if start > end {
                return Err(QueryError::invalid("filter.start_ms is after filter.end_ms"));
            }
        }
        if let Some(min) = self.filter.min_score {
            if !min.is_finite() {
                return Err(QueryError::invalid("filter.min_score must be a number"));
            }
        }
        Ok(())
    }

    /// The trimmed text query, if any.
    pub fn text_query(&self) -> Option<&str> {
        self.text.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }

    /// The request's query parts, with the towers' embeddings of its text and
    /// image (when it has them), for [`crate::search::Collection::compose`].
    pub fn parts<'a>(&'a self, text: Option<&'a [f32]>, image: Option<&'a [f32]>) -> QueryParts<'a> {
        QueryParts {
            text,
            image,
            image_weight: self.image_weight,
            like_shot: self.like_shot,
            positive: &self.positive,
            negative: &self.negative,
        }
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// Cosine similarity between the query and the shot embedding.
    pub score: f32,
    /// For a text-only query on a model with a sigmoid score (SigLIP), the
    /// probability that the shot matches the text (`sigmoid(scale · score +
    /// bias)`): comparable across queries, unlike the cosine. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f32>,
    /// The shot.
    #[serde(flatten)]
    pub shot: ShotRecord,
    /// `start_ms` as `HH:MM:SS.mmm`.
    pub start_tc: String,
    /// `end_ms` as `HH:MM:SS.mmm`.
    pub end_tc: String,
}

impl SearchHit {
    /// A hit for `shot` with `score`, timecodes filled in.
    pub fn new(shot: ShotRecord, score: f32) -> Self {
        SearchHit {
            score,
            probability: None,
            start_tc: timecode(shot.start_ms),
            end_tc: timecode(shot.end_ms),
            shot,
        }
    }
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The collection searched.
    pub collection: String,
    /// The bundle version that answered: every response names it.
    pub bundle_version: String,
    /// The model the query was encoded with.
    pub model_id: String,
    /// The text model (tower id) that encoded the text, when there was text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_model: Option<String>,
    /// The languages that text model was trained for (`*`: many), so that a
    /// page can say when the query's language is not one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text_languages: Vec<String>,
    /// Time spent in the component, in ms.
    pub took_ms: f64,
    /// How core searched: `exact` (a scan: small collections, and every
    /// filtered search) or `hnsw` (the graph walk).
    pub method: Method,
    /// Results, best first.
    pub results: Vec<SearchHit>,
}

/// The body of every error response: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong, for people and programs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code, e.g. `malformed_json`.
    pub code: String,
    /// Plain-words explanation naming the offending input.
    pub message: String,
}

/// A request that cannot be answered, with the HTTP status it maps to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Explanation.
    pub message: String,
}

impl QueryError {
    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }
    /// 400 `malformed_json`.
    pub fn malformed_json(err: &serde_json::Error) -> Self {
        Self::new(400, "malformed_json", format!("request body is not valid search JSON: {err}"))
    }
    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }
    /// 413 `body_too_large`.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(413, "body_too_large", format!("request body exceeds {limit} bytes"))
    }
    /// 422 `bad_image`.
    pub fn bad_image(message: impl Into<String>) -> Self {
        Self::new(422, "bad_image", message)
    }
    /// Any status and code.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        QueryError {
            status,
            code,
            message: message.into(),
        }
    }
    /// The JSON body for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                status: self.status,
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<SearchRequest, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults_apply() {
        let r = parse(r#"{"text":"red"}"#).unwrap();
        assert_eq!((r.k, r.image_weight), (DEFAULT_K, DEFAULT_IMAGE_WEIGHT));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let err = parse(r#"{"txt":"red"}"#).unwrap_err();
        assert!(QueryError::malformed_json(&err).message.contains("txt"));
    }

    #[test]
    fn bounds_are_enforced() {
        let limits = Limits::DEFAULT;
        let cases = [
            (r#"{}"#, "at least one"),
            (r#"{"text":"   "}"#, "at least one"),
            (r#"{"text":"red","k":0}"#, "k must be"),
            (r#"{"text":"red","k":101}"#, "k must be"),
            (r#"{"text":"red","image_weight":1.5}"#, "image_weight"),
            (r#"{"text":"red","filter":{"start_ms":5,"end_ms":1}}"#, "start_ms"),
        ];
        for (json, needle) in cases {
            let err = parse(json).unwrap().validate(&limits).unwrap_err();
            assert_eq!(err.status, 400);
            assert!(err.message.contains(needle), "{json}: {}", err.message);
        }
        let long = format!(r#"{{"text":"{}"}}"#, "a".repeat(1001));
        assert!(parse(&long).unwrap().validate(&limits).is_err());
    }

    #[test]
    fn filter_admits_overlapping_shots() {
        let shot = ShotRecord {
            shot_id: 1,
            video_id: "v".into(),
            start_ms: 1000,
            end_ms: 2000,
            scene_id: 0,
            class_id: 0,
            keyframe: String::new(),
            keyframe_ms: 1000,
            frame_count: 2,
            frames: None,
            transition: None,
        };
        let f = |json: &str| serde_json::from_str::<SearchFilter>(json).unwrap().admits(&shot);
        assert!(f(r#"{}"#));
        assert!(f(r#"{"start_ms":1500}"#));
        assert!(!f(r#"{"start_ms":2000}"#));
        assert!(!f(r#"{"end_ms":1000}"#));
        assert!(!f(r#"{"video_ids":["w"]}"#));
    }

    #[test]
    fn hit_serialises_flat_with_timecodes() {
        let shot = ShotRecord {
            shot_id: 7,
            video_id: "DG90602601".into(),
            start_ms: 142_205,
            end_ms: 161_861,
            scene_id: 3,
            class_id: 2,
            keyframe: "keyframes/7.jpg".into(),
            keyframe_ms: 150_000,
            frame_count: 40,
            frames: None,
            transition: None,
        };
        let v = serde_json::to_value(SearchHit::new(shot, 0.5)).unwrap();
        assert_eq!(v["shot_id"], 7);
        assert_eq!(v["start_tc"], "00:02:22.205");
        assert_eq!(v["end_tc"], "00:02:41.861");
    }
}
