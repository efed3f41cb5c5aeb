//! The encoder endpoint: `POST /nn/v1/graphs/<graph>/compute` runs one of the
//! preloaded graphs with ONNX Runtime for an edge component that forwards its
//! inference here (nn-provider built with `remote`), for towers too large to
//! ship in the component. Off unless a token is configured
//! (`--encoder-token-file`); every call must carry it as a bearer token.
//! The wire format is `busca_core::remote_nn`; every size is bounded and every
//! failure is a JSON error naming what was wrong.

use std::sync::Arc;

use busca_core::query::QueryError;
use busca_core::remote_nn::{self, ComputeRequest, ComputeResponse, ElementType, WireTensor};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_nn::backend::NamedTensor;
use wasmtime_wasi_nn::wit::TensorType;
use wasmtime_wasi_nn::Tensor;

use crate::error::HostError;
use crate::models::PreloadedGraphs;
use crate::onnx::OrtGraph;
use crate::server::{drain_some, error_response};

/// Shortest token accepted: a guessable token on a public endpoint is no lock.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The endpoint: the token and the graphs it runs.
pub struct EncoderEndpoint {
    token: String,
    graphs: Arc<PreloadedGraphs>,
}

impl EncoderEndpoint {
    /// An endpoint that accepts `token` (surrounding whitespace trimmed, as a
    /// token file ends with a newline); `origin` names where it came from.
    pub fn new(token: &str, origin: &str, graphs: Arc<PreloadedGraphs>) -> Result<Self, HostError> {
        let token = token.trim();
        if token.chars().count() < MIN_TOKEN_CHARS || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HostError::WeakToken { origin: origin.to_string(), min_chars: MIN_TOKEN_CHARS });
        }
        Ok(EncoderEndpoint {
            token: token.to_string(),
            graphs,
        })
    }

    /// Whether the request carries the token (compared in constant time).
    fn authorised(&self, req: &Request<Incoming>) -> bool {
        let Some(given) = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let (a, b) = (given.as_bytes(), self.token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Answers one compute call for `graph`.
    pub async fn handle(&self, graph: &str, req: Request<Incoming>) -> Response<HyperOutgoingBody> {
        let result = match self.admit(graph, &req) {
            Ok(ort) => self.compute(graph, ort, req.into_body()).await,
            Err(err) => {
                // Refused before its body was read: read it anyway (bounded),
                // or a client still sending it sees the connection closed
                // instead of this answer (the wrong-token test did, under load).
                drain_some(req.into_body(), remote_nn::MAX_REQUEST_BYTES).await;
                Err(err)
            }
        };
        match result {
            Ok(response) => json(StatusCode::OK, &response),
            Err(err) => error_response(&err),
        }
    }

    /// The graph a call may run, from its method, token and path alone.
    fn admit(&self, graph: &str, req: &Request<Incoming>) -> Result<OrtGraph, QueryError> {
        if req.method() != Method::POST {
            return Err(QueryError::new(405, "method_not_allowed", "the encoder endpoint takes POST"));
        }
        if !self.authorised(&req) {
            return Err(QueryError::new(
                401,
                "unauthorized",
                "the encoder endpoint needs `authorization: Bearer <token>` with the token busca-serve was started with",
            ));
        }
        remote_nn::check_graph_name(graph).map_err(|e| QueryError::invalid(e.to_string()))?;
        self.graphs
            .get(graph)
            .cloned()
            .ok_or_else(|| QueryError::not_found(format!("no graph {graph:?} here; preloaded: {}", self.graphs.names().join(", "))))
    }

    async fn compute(&self, graph: &str, ort: OrtGraph, body: Incoming) -> Result<ComputeResponse, QueryError> {
        let body = Limited::new(body, remote_nn::MAX_REQUEST_BYTES)
            .collect()
            .await
            .map_err(|_| QueryError::body_too_large(remote_nn::MAX_REQUEST_BYTES))?
            .to_bytes();
        let request: ComputeRequest =
            remote_nn::parse(&body, remote_nn::MAX_REQUEST_BYTES).map_err(|e| QueryError::invalid(e.to_string()))?;
        let mut named = Vec::with_capacity(request.inputs.len());
        for input in &request.inputs {
            let data = input.bytes().map_err(|e| QueryError::invalid(e.to_string()))?;
            named.push(NamedTensor {
                name: input.name.clone(),
                tensor: Tensor::new(input.dims.clone(), tensor_type(input.ty), data),
            });
        }
        let graph_name = graph.to_string();
        let outputs = tokio::task::spawn_blocking(move || ort.compute(named))
            .await
            .map_err(|e| QueryError::new(500, "encoder_failed", format!("graph {graph_name:?}: {e}")))?
            .map_err(|e| QueryError::new(422, "encoder_refused", format!("graph {graph:?}: {e}")))?;
        outputs
            .into_iter()
            .map(|o| {
                let ty = element_type(o.tensor.ty).ok_or_else(|| {
                    QueryError::new(500, "encoder_failed", format!("output {:?} is {:?}, which the wire does not carry", o.name, o.tensor.ty))
                })?;
                Ok(WireTensor::new(o.name, o.tensor.dimensions, ty, &o.tensor.data))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|outputs| ComputeResponse { outputs })
    }
}

fn tensor_type(ty: ElementType) -> TensorType {
    match ty {
        ElementType::F16 => TensorType::Fp16,
        ElementType::F32 => TensorType::Fp32,
        ElementType::F64 => TensorType::Fp64,
        ElementType::U8 => TensorType::U8,
        ElementType::I32 => TensorType::I32,
        ElementType::I64 => TensorType::I64,
    }
}

fn element_type(ty: TensorType) -> Option<ElementType> {
    Some(match ty {
        TensorType::Fp16 => ElementType::F16,
        TensorType::Fp32 => ElementType::F32,
        TensorType::Fp64 => ElementType::F64,
        TensorType::U8 => ElementType::U8,
        TensorType::I32 => ElementType::I32,
        TensorType::I64 => ElementType::I64,
        TensorType::Bf16 => return None,
    })
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<HyperOutgoingBody> {
    let body = serde_json::to_vec(value).expect("wire types serialise");
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never: std::convert::Infallible| match never {})
                .boxed_unsync(),
        )
        .expect("valid response")
}
