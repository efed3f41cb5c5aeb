//! The remote encoder's wire format, defined once for both sides: the edge
//! component's remote wasi:nn provider (`nn-provider`, feature `remote`), which
//! forwards inference for towers too large to ship, and `busca-serve`'s
//! encoder endpoint, which runs them with ONNX Runtime (on a GPU machine if
//! there is one).
//!
//! ```text
//! POST <base>/nn/v1/graphs/<graph>/compute
//! authorization: Bearer <token>
//! content-type: application/json
//! {"inputs": [{"name": "input_ids", "dims": [1, 77], "type": "i64", "data": "<base64, little-endian>"}]}
//! → 200 {"outputs": [{"name": "text_embeds", "dims": [1, 768], "type": "f32", "data": "..."}]}
//! → 4xx/5xx {"error": {"status", "code", "message"}}   (crate::query::ErrorBody)
//! ```
//!
//! Every size is bounded on both sides ([`MAX_REQUEST_BYTES`],
//! [`MAX_RESPONSE_BYTES`], [`MAX_TENSORS`]), and a tensor whose data does
//! not match its dimensions and type is refused before anything runs.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Environment variable that gives the remote provider the endpoint's base
/// URL (`http://host:port` or `https://host/prefix`).
pub const ENV_URL: &str = "BUSCA_ENCODER_URL";
/// Environment variable that gives the remote provider its bearer token.
pub const ENV_TOKEN: &str = "BUSCA_ENCODER_TOKEN";

/// Path before the graph name.
pub const COMPUTE_PATH_PREFIX: &str = "/nn/v1/graphs/";
/// Path after the graph name.
pub const COMPUTE_PATH_SUFFIX: &str = "/compute";
/// Largest request body (a batch of four 336-px images in f32 and base64).
pub const MAX_REQUEST_BYTES: usize = 12 << 20;
/// Largest response body (embeddings are small: 64 × 1024 f32 is 340 KiB in base64).
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;
/// Most tensors in a request or response.
pub const MAX_TENSORS: usize = 8;
/// Longest graph name.
pub const MAX_GRAPH_NAME: usize = 128;

/// The path of the compute call for `graph` (checked with [`check_graph_name`]).
pub fn compute_path(graph: &str) -> String {
    format!("{COMPUTE_PATH_PREFIX}{graph}{COMPUTE_PATH_SUFFIX}")
}

/// The graph named by a compute path, if `path` is one.
pub fn graph_of_path(path: &str) -> Option<&str> {
    path.strip_prefix(COMPUTE_PATH_PREFIX)?.strip_suffix(COMPUTE_PATH_SUFFIX)
}

/// Graph names travel in a URL path: letters, digits, `-`, `_`, `.`, at most
/// [`MAX_GRAPH_NAME`] long (every manifest's graph names are).
pub fn check_graph_name(name: &str) -> Result<(), WireError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_GRAPH_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(WireError::GraphName(name.chars().take(MAX_GRAPH_NAME).collect()))
    }
}

/// Element types of the tensors that travel (wasi:nn's, less bf16, which no
/// tower here uses): the wire's and the wasi:nn provider's one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    /// IEEE half.
    F16,
    /// IEEE single.
    F32,
    /// IEEE double.
    F64,
    /// Unsigned byte.
    U8,
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
}

impl ElementType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElementType::U8 => 1,
            ElementType::F16 => 2,
            ElementType::F32 | ElementType::I32 => 4,
            ElementType::F64 | ElementType::I64 => 8,
        }
    }
}

/// One named tensor, its data little-endian and base64-encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireTensor {
    /// Input or output name in the graph.
    pub name: String,
    /// Dimensions.
    pub dims: Vec<u32>,
    /// Element type.
    #[serde(rename = "type")]
    pub ty: ElementType,
    /// Base64 (standard alphabet) of the little-endian elements.
    pub data: String,
}

impl WireTensor {
    /// Encodes a tensor.
    pub fn new(name: impl Into<String>, dims: Vec<u32>, ty: ElementType, bytes: &[u8]) -> Self {
        WireTensor {
            name: name.into(),
            dims,
            ty,
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// The element bytes, checked against dimensions and type.
    pub fn bytes(&self) -> Result<Vec<u8>, WireError> {
        let elements = self
            .dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d as usize))
            .ok_or_else(|| WireError::Shape { name: self.name.clone(), detail: format!("dimensions {:?} overflow", self.dims) })?;
        let want = elements.checked_mul(self.ty.size()).filter(|&b| b <= MAX_REQUEST_BYTES).ok_or_else(|| WireError::Shape {
            name: self.name.clone(),
            detail: format!("dimensions {:?} of {:?} exceed {MAX_REQUEST_BYTES} bytes", self.dims, self.ty),
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.data.as_bytes())
            .map_err(|e| WireError::Shape { name: self.name.clone(), detail: format!("data is not base64: {e}") })?;
        if bytes.len() != want {
            return Err(WireError::Shape {
                name: self.name.clone(),
                detail: format!("dimensions {:?} of {:?} need {want} bytes, the data has {}", self.dims, self.ty, bytes.len()),
            });
        }
        Ok(bytes)
    }
}

/// The body of a compute call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeRequest {
    /// The graph's inputs, by name.
    pub inputs: Vec<WireTensor>,
}

/// The answer of a compute call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeResponse {
    /// Every output of the graph, by name.
    pub outputs: Vec<WireTensor>,
}

/// Parses a bounded JSON body with at most [`MAX_TENSORS`] tensors.
pub fn parse<T: serde::de::DeserializeOwned + Tensors>(body: &[u8], limit: usize) -> Result<T, WireError> {
    if body.len() > limit {
        return Err(WireError::TooLarge { bytes: body.len(), limit });
    }
    let value: T = serde_json::from_slice(body).map_err(|e| WireError::Json(e.to_string()))?;
    if value.count() > MAX_TENSORS {
        return Err(WireError::TooManyTensors(value.count()));
    }
    Ok(value)
}

/// Bodies that carry tensors.
pub trait Tensors {
    /// How many.
    fn count(&self) -> usize;
}

impl Tensors for ComputeRequest {
    fn count(&self) -> usize {
        self.inputs.len()
    }
}

impl Tensors for ComputeResponse {
    fn count(&self) -> usize {
        self.outputs.len()
    }
}

/// Why a wire message was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    /// The graph name cannot travel in a path.
    #[error("graph name {0:?} is not letters, digits, '-', '_' and '.' (at most {MAX_GRAPH_NAME})")]
    GraphName(String),
    /// A body over its limit.
    #[error("body of {bytes} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Not the JSON expected.
    #[error("body is not a compute message: {0}")]
    Json(String),
    /// More tensors than allowed.
    #[error("{0} tensors, more than the {MAX_TENSORS} allowed")]
    TooManyTensors(usize),
    /// A tensor whose data does not fit its declaration.
    #[error("tensor {name:?}: {detail}")]
    Shape {
        /// Tensor name.
        name: String,
        /// What does not fit.
        detail: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tensor_round_trips_and_bad_data_is_refused() {
        let bytes: Vec<u8> = [1i64, -2].iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = WireTensor::new("input_ids", vec![1, 2], ElementType::I64, &bytes);
        let json = serde_json::to_vec(&ComputeRequest { inputs: vec![t.clone()] }).unwrap();
        let back: ComputeRequest = parse(&json, MAX_REQUEST_BYTES).unwrap();
        assert_eq!(back.inputs[0].bytes().unwrap(), bytes);
        assert!(String::from_utf8(json).unwrap().contains("\"type\":\"i64\""));

        let short = WireTensor { dims: vec![1, 3], ..t.clone() };
        assert!(matches!(short.bytes(), Err(WireError::Shape { .. })), "3 ids need 24 bytes");
        let huge = WireTensor { dims: vec![1 << 16, 1 << 16, 4], ..t.clone() };
        assert!(huge.bytes().unwrap_err().to_string().contains("exceed"));
        let overflow = WireTensor { dims: vec![u32::MAX, u32::MAX, 16], ..t.clone() };
        assert!(overflow.bytes().unwrap_err().to_string().contains("overflow"));
        let not_b64 = WireTensor { data: "***".into(), ..t };
        assert!(not_b64.bytes().unwrap_err().to_string().contains("base64"));
    }

    #[test]
    fn bodies_are_bounded_and_strict() {
        assert!(matches!(parse::<ComputeRequest>(&[b' '; 100], 10), Err(WireError::TooLarge { .. })));
        assert!(matches!(parse::<ComputeRequest>(br#"{"inputs": [], "extra": 1}"#, 100), Err(WireError::Json(_))));
        let many = serde_json::to_vec(&ComputeRequest {
            inputs: vec![WireTensor::new("x", vec![1], ElementType::U8, &[0]); MAX_TENSORS + 1],
        })
        .unwrap();
        assert_eq!(parse::<ComputeRequest>(&many, MAX_REQUEST_BYTES), Err(WireError::TooManyTensors(MAX_TENSORS + 1)));
    }

    #[test]
    fn graph_names_and_paths() {
        assert_eq!(compute_path("tiny-colour-v1-text"), "/nn/v1/graphs/tiny-colour-v1-text/compute");
        assert_eq!(graph_of_path("/nn/v1/graphs/a.b_c-1/compute"), Some("a.b_c-1"));
        assert_eq!(graph_of_path("/nn/v1/graphs/a/other"), None);
        assert!(check_graph_name("clip-vit-l14-text").is_ok());
        for bad in ["", "..", "a/b", "a b", "é", &"x".repeat(MAX_GRAPH_NAME + 1)] {
            assert!(check_graph_name(bad).is_err(), "{bad:?}");
        }
    }
}
