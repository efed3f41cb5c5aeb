//! Search request bodies: JSON (the image as base64) or multipart/form-data
//! (the image as a file part), both bounded by the limits.

use std::collections::BTreeMap;

use base64::Engine as _;
use busca_core::query::{QueryError, SearchFilter, DEFAULT_IMAGE_WEIGHT, DEFAULT_K};
use busca_core::{Limits, SearchRequest};

/// Most parts accepted in a multipart body.
const MAX_MULTIPART_FIELDS: usize = 16;

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
        .allowed_fields(vec!["text", "text_model", "lang", "image", "k", "image_weight", "collection", "like_shot"])
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
        text_model: fields.get("text_model").cloned().filter(|v| !v.is_empty()),
        lang: fields.get("lang").cloned().filter(|v| !v.is_empty()),
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

pub(super) fn parse_shot_id(text: &str) -> Result<u64, QueryError> {
    text.parse()
        .map_err(|_| QueryError::invalid(format!("shot id {text:?} is not a number")))
}
