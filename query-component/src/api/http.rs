//! The component's HTTP request and response, independent of wasi:http: what
//! the glue (`wasm.rs`) fills from wasi:http and what the handlers answer.

use busca_core::query::{ErrorBody, QueryError};
use serde::Serialize;

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

impl HttpRequest {
    /// A request with an optional content type and a body.
    pub fn new(method: &str, path_and_query: &str, content_type: Option<&str>, body: &[u8]) -> Self {
        HttpRequest {
            method: method.into(),
            path_and_query: path_and_query.into(),
            content_type: content_type.map(str::to_string),
            body: body.to_vec(),
        }
    }
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
    pub(crate) fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
        }
    }

    pub(crate) fn json(status: u16, value: &impl Serialize) -> Self {
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

/// The error body of a response (for tests and the glue).
pub fn error_of(response: &HttpResponse) -> Option<ErrorBody> {
    serde_json::from_slice(&response.body).ok()
}
