//! The wasi:nn exports over the backend this build has: [`crate::graphs`]
//! (tract, feature `local`) with its pre-initialization, or
//! [`crate::remote`] (feature `remote`).
//!
//! Every failure is returned as a wasi:nn `error` resource whose `data` says
//! what went wrong and names the graph or input; nothing here traps on input.

use crate::error::{ErrorKind, ProviderError};
use crate::tensor::{ElemType, RawTensor};

#[cfg(feature = "local")]
wit_bindgen::generate!({
    path: "../wit",
    world: "buscaescenas:edge/nn-exports",
    generate_all,
});

#[cfg(feature = "remote")]
wit_bindgen::generate!({
    path: "../wit",
    world: "buscaescenas:edge/nn-remote-provider",
    generate_all,
});

use exports::wasi::nn::errors::{self, ErrorCode};
use exports::wasi::nn::graph::{self, ExecutionTarget, GraphEncoding};
use exports::wasi::nn::inference;
use exports::wasi::nn::tensor::{self, TensorType};

#[cfg(feature = "local")]
mod local {
    use std::path::Path;
    use std::sync::{Arc, OnceLock};

    use crate::error::ProviderError;
    use crate::graphs::{Graph, Registry};
    use crate::tensor::RawTensor;

    // Declares the `wizer-initialize` export in the component's type (the
    // function itself is the hand-written core export below).
    wit_bindgen::generate!({
        path: "../wit",
        world: "buscaescenas:edge/pre-initialized",
    });

    /// The graphs of the model directory at [`crate::GRAPHS_ROOT`], loaded once:
    /// at pre-initialization, or on the first `load-by-name` of an instance that
    /// was not pre-initialized. A failure is kept and reported on every call.
    static REGISTRY: OnceLock<Result<Registry, String>> = OnceLock::new();

    fn registry() -> &'static Result<Registry, String> {
        REGISTRY.get_or_init(|| {
            // tract's matrix kernels register themselves from static
            // constructors (the `inventory` crate), which nothing runs in a
            // component without `_start`: without this call tract finds no
            // kernel ("suitable.len() > 0"). inventory's constructors are
            // idempotent, so a host that already ran them does no harm.
            unsafe { __wasm_call_ctors() };
            Registry::load_model_dir(Path::new(crate::GRAPHS_ROOT))
                .map_err(|e| format!("the graphs under {} could not be loaded: {e}", crate::GRAPHS_ROOT))
        })
    }

    extern "C" {
        /// wasi-libc's cached preopen handles mean nothing in a later instance;
        /// cleared before the snapshot (as in the query component).
        fn __wasilibc_reset_preopens();
        /// The linker's call of every static constructor.
        fn __wasm_call_ctors();
    }

    /// `wizer-initialize` under its standard component-model core name (see
    /// query-component/src/wasm.rs for why not wit-bindgen's legacy name).
    #[export_name = "cm32p2||wizer-initialize"]
    extern "C" fn wizer_initialize() {
        // Freed parse buffers are zeroed so that the snapshot holds only the
        // optimised graphs.
        if let Err(e) = ALLOCATOR.scrubbing(registry) {
            // A snapshot without its graphs must not be built: say why (the
            // build shows stderr) and trap, which fails the pre-initialization.
            eprintln!("nn-provider: {e}");
            std::process::abort();
        }
        unsafe { __wasilibc_reset_preopens() };
    }

    #[global_allocator]
    static ALLOCATOR: busca_core::snapshot::ScrubFreed = busca_core::snapshot::ScrubFreed::system();

    /// A loaded graph.
    pub type Backend = Arc<Graph>;

    pub fn load_by_name(name: &str) -> Result<Backend, ProviderError> {
        match registry() {
            Ok(registry) => registry.get(name),
            Err(why) => Err(ProviderError::NotFound { name: name.to_string(), available: why.clone() }),
        }
    }

    pub fn load_bytes(bytes: &[u8]) -> Result<Backend, ProviderError> {
        Graph::from_onnx("(loaded from bytes)", bytes).map(Arc::new)
    }

    pub fn name(graph: &Backend) -> &str {
        graph.name()
    }

    pub fn compute(graph: &Backend, inputs: Vec<(String, RawTensor)>) -> Result<Vec<(String, RawTensor)>, ProviderError> {
        graph.run(inputs)
    }
}
#[cfg(feature = "local")]
use local as backend;

#[cfg(feature = "remote")]
mod remote_backend {
    use crate::error::ProviderError;
    use crate::remote::RemoteGraph;
    use crate::tensor::RawTensor;

    pub type Backend = RemoteGraph;

    pub fn load_by_name(name: &str) -> Result<Backend, ProviderError> {
        RemoteGraph::new(name)
    }

    pub fn load_bytes(_bytes: &[u8]) -> Result<Backend, ProviderError> {
        Err(ProviderError::Unsupported(
            "the remote provider runs the endpoint's graphs by name; load-by-name instead".into(),
        ))
    }

    pub fn name(graph: &Backend) -> &str {
        graph.name()
    }

    pub fn compute(graph: &Backend, inputs: Vec<(String, RawTensor)>) -> Result<Vec<(String, RawTensor)>, ProviderError> {
        graph.compute(inputs, &super::http::Transport)
    }
}
#[cfg(feature = "remote")]
use remote_backend as backend;

struct Provider;

export!(Provider);

fn error(code: ErrorCode, data: String) -> errors::Error {
    errors::Error::new(NnError { code, data })
}

fn from_provider(e: ProviderError) -> errors::Error {
    let code = match e.kind() {
        ErrorKind::NotFound => ErrorCode::NotFound,
        ErrorKind::InvalidArgument => ErrorCode::InvalidArgument,
        ErrorKind::InvalidEncoding => ErrorCode::InvalidEncoding,
        ErrorKind::TooLarge => ErrorCode::TooLarge,
        ErrorKind::Unsupported => ErrorCode::UnsupportedOperation,
        ErrorKind::Runtime => ErrorCode::RuntimeError,
        ErrorKind::Security => ErrorCode::Security,
    };
    error(code, e.to_string())
}

/// The `error` resource.
pub struct NnError {
    code: ErrorCode,
    data: String,
}

impl errors::Guest for Provider {
    type Error = NnError;
}

impl errors::GuestError for NnError {
    fn code(&self) -> ErrorCode {
        self.code
    }

    fn data(&self) -> String {
        self.data.clone()
    }
}

/// The `tensor` resource: kept as given; checked against the graph when computed.
pub struct NnTensor {
    dims: Vec<u32>,
    ty: TensorType,
    data: Vec<u8>,
}

impl tensor::Guest for Provider {
    type Tensor = NnTensor;
}

impl tensor::GuestTensor for NnTensor {
    fn new(dimensions: Vec<u32>, ty: TensorType, data: Vec<u8>) -> Self {
        NnTensor { dims: dimensions, ty, data }
    }

    fn dimensions(&self) -> Vec<u32> {
        self.dims.clone()
    }

    fn ty(&self) -> TensorType {
        self.ty
    }

    fn data(&self) -> Vec<u8> {
        self.data.clone()
    }
}

fn elem_type(ty: TensorType) -> Option<ElemType> {
    Some(match ty {
        TensorType::Fp16 => ElemType::F16,
        TensorType::Fp32 => ElemType::F32,
        TensorType::Fp64 => ElemType::F64,
        TensorType::U8 => ElemType::U8,
        TensorType::I32 => ElemType::I32,
        TensorType::I64 => ElemType::I64,
        TensorType::Bf16 => return None,
    })
}

fn tensor_type(ty: ElemType) -> TensorType {
    match ty {
        ElemType::F16 => TensorType::Fp16,
        ElemType::F32 => TensorType::Fp32,
        ElemType::F64 => TensorType::Fp64,
        ElemType::U8 => TensorType::U8,
        ElemType::I32 => TensorType::I32,
        ElemType::I64 => TensorType::I64,
    }
}

/// The `graph` resource.
pub struct NnGraph(backend::Backend);

impl graph::Guest for Provider {
    type Graph = NnGraph;

    fn load(
        builder: Vec<graph::GraphBuilder>,
        encoding: GraphEncoding,
        _target: ExecutionTarget,
    ) -> Result<graph::Graph, errors::Error> {
        if !matches!(encoding, GraphEncoding::Onnx | GraphEncoding::Autodetect) {
            return Err(error(
                ErrorCode::InvalidEncoding,
                format!("this provider runs ONNX graphs only, not {encoding:?}"),
            ));
        }
        let [bytes] = builder.as_slice() else {
            return Err(error(
                ErrorCode::InvalidArgument,
                format!("an ONNX graph is one builder, got {}", builder.len()),
            ));
        };
        let graph = backend::load_bytes(bytes).map_err(from_provider)?;
        Ok(graph::Graph::new(NnGraph(graph)))
    }

    fn load_by_name(name: String) -> Result<graph::Graph, errors::Error> {
        Ok(graph::Graph::new(NnGraph(backend::load_by_name(&name).map_err(from_provider)?)))
    }
}

impl graph::GuestGraph for NnGraph {
    fn init_execution_context(&self) -> Result<inference::GraphExecutionContext, errors::Error> {
        Ok(inference::GraphExecutionContext::new(NnContext(self.0.clone())))
    }
}

/// The `graph-execution-context` resource: stateless, each compute stands alone.
pub struct NnContext(backend::Backend);

impl inference::Guest for Provider {
    type GraphExecutionContext = NnContext;
}

impl inference::GuestGraphExecutionContext for NnContext {
    fn compute(&self, inputs: Vec<inference::NamedTensor>) -> Result<Vec<inference::NamedTensor>, errors::Error> {
        let mut named = Vec::with_capacity(inputs.len());
        for (name, handle) in inputs {
            let t: &NnTensor = handle.get();
            let ty = elem_type(t.ty).ok_or_else(|| {
                error(
                    ErrorCode::UnsupportedOperation,
                    format!("graph {:?}: input {name:?} is {:?}, which this provider does not run", backend::name(&self.0), t.ty),
                )
            })?;
            named.push((name, RawTensor { dims: t.dims.clone(), ty, data: t.data.clone() }));
        }
        let outputs = backend::compute(&self.0, named).map_err(from_provider)?;
        Ok(outputs
            .into_iter()
            .map(|(name, raw)| {
                let t = NnTensor { dims: raw.dims, ty: tensor_type(raw.ty), data: raw.data };
                (name, tensor::Tensor::new(t))
            })
            .collect())
    }
}

/// The remote backend's transport over wasi:http's outgoing handler.
#[cfg(feature = "remote")]
pub(crate) mod http {
    use super::wasi::http::outgoing_handler;
    use super::wasi::http::types::{Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};
    use super::wasi::io::streams::StreamError;
    use crate::remote::Endpoint;

    /// Connect and first-byte timeouts, in nanoseconds.
    const CONNECT_TIMEOUT_NS: u64 = 5_000_000_000;
    const FIRST_BYTE_TIMEOUT_NS: u64 = 20_000_000_000;

    pub struct Transport;

    impl crate::remote::Transport for Transport {
        fn post(&self, endpoint: &Endpoint, path: &str, body: &[u8], max_response: usize) -> Result<(u16, Vec<u8>), String> {
            let fields = Fields::from_list(&[
                ("content-type".to_string(), b"application/json".to_vec()),
                ("authorization".to_string(), format!("Bearer {}", endpoint.token).into_bytes()),
            ])
            .map_err(|e| format!("request headers refused: {e:?}"))?;
            let request = OutgoingRequest::new(fields);
            let scheme = if endpoint.scheme == "https" { Scheme::Https } else { Scheme::Http };
            request.set_method(&Method::Post).map_err(|_| "method refused")?;
            request.set_scheme(Some(&scheme)).map_err(|_| "scheme refused")?;
            request.set_authority(Some(&endpoint.authority)).map_err(|_| "host refused")?;
            request.set_path_with_query(Some(path)).map_err(|_| "path refused")?;
            let outgoing = request.body().map_err(|_| "request body unavailable")?;
            let options = RequestOptions::new();
            let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT_NS));
            let _ = options.set_first_byte_timeout(Some(FIRST_BYTE_TIMEOUT_NS));
            let future = outgoing_handler::handle(request, Some(options)).map_err(|e| format!("{e:?}"))?;
            {
                let stream = outgoing.write().map_err(|_| "request body stream unavailable")?;
                // blocking-write-and-flush takes at most 4096 bytes a call.
                for chunk in body.chunks(4096) {
                    stream.blocking_write_and_flush(chunk).map_err(|e| format!("sending the request: {e:?}"))?;
                }
            }
            OutgoingBody::finish(outgoing, None).map_err(|e| format!("finishing the request: {e:?}"))?;
            future.subscribe().block();
            let response = match future.get() {
                Some(Ok(Ok(response))) => response,
                Some(Ok(Err(code))) => return Err(format!("{code:?}")),
                Some(Err(())) | None => return Err("no response".into()),
            };
            let status = response.status();
            let incoming = response.consume().map_err(|_| "response body unavailable")?;
            let mut answer = Vec::new();
            {
                let stream = incoming.stream().map_err(|_| "response body stream unavailable")?;
                loop {
                    match stream.blocking_read(64 * 1024) {
                        Ok(chunk) => {
                            if answer.len() + chunk.len() > max_response {
                                return Err(format!("answer longer than {max_response} bytes"));
                            }
                            answer.extend_from_slice(&chunk);
                        }
                        Err(StreamError::Closed) => break,
                        Err(StreamError::LastOperationFailed(e)) => return Err(format!("reading the answer: {}", e.to_debug_string())),
                    }
                }
            }
            let _ = IncomingBody::finish(incoming);
            Ok((status, answer))
        }
    }
}
