//! The component's glue: wasi:http in (spin-sdk), wasi:nn for the encoders,
//! and pre-initialization.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use futures::StreamExt;
use spin_sdk::http::{IncomingRequest, Response};

use busca_core::model::{ImageTower, TextTower};

use crate::api::{Encoder, EncoderError, Failure, HttpRequest, HttpResponse, NnError, Service};

wit_bindgen::generate!({
    path: "../wit",
    world: "buscaescenas:edge/query-guest",
    generate_all,
});

use wasi::nn::graph::{load_by_name, Graph};
use wasi::nn::tensor::{Tensor, TensorType};

/// Where the host preopens the bundles root (read-only).

static SERVICE: OnceLock<Service> = OnceLock::new();

/// Every collection, loaded at pre-initialization, or on the first request
/// when the component was not pre-initialized.
fn service() -> &'static Service {
    SERVICE.get_or_init(|| Service::load(Path::new(busca_core::guest::BUNDLES_ROOT)))
}

extern "C" {
    /// wasi-libc caches the preopened directories' handles on first use; the
    /// handles of the pre-initialization run mean nothing in a later instance,
    /// so the cache is cleared before the snapshot and refilled on next use.
    fn __wasilibc_reset_preopens();
}

/// The world's `wizer-initialize` export, written by hand under its standard
/// (`cm32p2`) core name instead of through wit-bindgen's `export!`, whose
/// legacy core name is exactly `wizer-initialize`: wasmtime-wizer 48 removes a
/// core export with the init func's name when `keep_init_func(false)`, which
/// would leave the component's lift of it dangling and the snapshot invalid.
#[export_name = "cm32p2||wizer-initialize"]
extern "C" fn wizer_initialize() {
    // Freed file buffers are zeroed so that the snapshot holds each bundle once.
    ALLOCATOR.scrubbing(|| service().warm_up());
    unsafe { __wasilibc_reset_preopens() };
    // Each request's small blocks together, so that the host resets few
    // dirty ranges (see `busca_core::snapshot`).
    ALLOCATOR.request_arena(REQUEST_ARENA_BYTES);
}

/// The arena of each request's small blocks (past it they come from the
/// system allocator again); pages a request does not touch cost nothing.
const REQUEST_ARENA_BYTES: usize = 8 << 20;

#[global_allocator]
static ALLOCATOR: busca_core::snapshot::ScrubFreed = busca_core::snapshot::ScrubFreed::system();

/// Encoders through wasi:nn; graphs are loaded once per instance.
#[derive(Default)]
struct NnEncoder {
    graphs: RefCell<HashMap<String, Graph>>,
}

impl Encoder for NnEncoder {
    fn text(&self, tower: &TextTower, ids: &[i64]) -> Result<Vec<f32>, EncoderError> {
        let bytes: Vec<u8> = ids.iter().flat_map(|x| x.to_le_bytes()).collect();
        let dims = [1, ids.len() as u32];
        self.run(&tower.graph_name, &tower.input, &tower.output, &dims, TensorType::I64, &bytes)
    }

    fn image(&self, tower: &ImageTower, pixels: &[f32]) -> Result<Vec<f32>, EncoderError> {
        // wasi:nn wants little-endian bytes, which is how wasm32 holds f32s:
        // the tensor's 602 KB (224 px) go as they are, not copied first.
        let bytes: &[u8] = bytemuck::cast_slice(pixels);
        let dims = [1, 3, tower.image_size, tower.image_size];
        self.run(&tower.graph_name, &tower.input, &tower.output, &dims, TensorType::Fp32, bytes)
    }
}

impl NnEncoder {
    /// One input tensor in, the named `[1, D]` f32 output back.
    fn run(&self, graph: &str, input: &str, output: &str, dims: &[u32], ty: TensorType, bytes: &[u8]) -> Result<Vec<f32>, EncoderError> {
        let failed = |failure: Failure| EncoderError::Failed { graph: graph.to_string(), failure };
        let nn = |e: wasi::nn::errors::Error| NnError { code: format!("{:?}", e.code()), data: e.data() };
        let mut graphs = self.graphs.borrow_mut();
        if !graphs.contains_key(graph) {
            let loaded = load_by_name(graph)
                .map_err(|e| EncoderError::GraphMissing { graph: graph.to_string(), host: nn(e) })?;
            graphs.insert(graph.to_string(), loaded);
        }
        let context = graphs[graph]
            .init_execution_context()
            .map_err(|e| failed(Failure::Call { call: "init-execution-context", error: nn(e) }))?;
        let tensor = Tensor::new(dims, ty, bytes);
        let outputs = context
            .compute(vec![(input.to_string(), tensor)])
            .map_err(|e| failed(Failure::Call { call: "compute", error: nn(e) }))?;
        let count = outputs.len();
        let (_, out) = outputs
            .into_iter()
            .find(|(name, _)| name == output)
            .ok_or_else(|| failed(Failure::MissingOutput { output: output.into(), outputs: count }))?;
        if out.ty() != TensorType::Fp32 {
            return Err(failed(Failure::OutputType { output: output.into(), found: format!("{:?}", out.ty()) }));
        }
        let out_dims = out.dimensions();
        if out_dims.first() != Some(&1) || out_dims.len() != 2 {
            return Err(failed(Failure::OutputShape { output: output.into(), dims: out_dims }));
        }
        let bytes = out.data();
        Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
}

#[spin_sdk::http_component]
async fn handle(req: IncomingRequest) -> Response {
    let service = service();
    let limit = service.limits().max_body_bytes;
    let method = req.method().to_string();
    let path_and_query = req.path_with_query().unwrap_or_else(|| "/".into());
    let headers = req.headers().entries();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let content_type = header("content-type");
    let too_large = || to_spin(HttpResponse::error(&busca_core::query::QueryError::body_too_large(limit)));
    // Refuse a declared oversized body before reading it, and count while
    // streaming in case the declaration lies or is absent.
    if header("content-length").and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let mut body = Vec::new();
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                if body.len() + chunk.len() > limit {
                    return too_large();
                }
                body.extend_from_slice(&chunk);
            }
            Err(e) => {
                let err = busca_core::query::QueryError::invalid(format!("request body could not be read: {e:?}"));
                return to_spin(HttpResponse::error(&err));
            }
        }
    }
    let request = HttpRequest {
        method,
        path_and_query,
        content_type,
        body,
    };
    to_spin(service.handle(&request, &NnEncoder::default()))
}

fn to_spin(response: HttpResponse) -> Response {
    let mut builder = Response::builder();
    builder.status(response.status);
    for (name, value) in response.headers {
        builder.header(name, value);
    }
    builder.body(response.body).build()
}
