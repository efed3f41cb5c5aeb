//! The remote backend: each `compute` is one `POST` of the inputs to the
//! encoder endpoint (`busca-serve --encoder-token-file`), in the wire format
//! of `busca_core::remote_nn`, with the bearer token, and bounded answers.
//! The endpoint and token come from the instance's environment
//! (`BUSCA_ENCODER_URL`, `BUSCA_ENCODER_TOKEN`), read per call, never baked
//! into the component. The HTTP transport is a trait so that this logic is
//! tested natively; `wasm.rs` implements it over wasi:http.

use busca_core::query::ErrorBody;
use busca_core::remote_nn::{self, ComputeRequest, ComputeResponse, WireTensor};

use crate::error::ProviderError;
use crate::tensor::RawTensor;

/// Where the encoder is and how to prove we may use it.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
    /// Path prefix before `/nn/v1/...` (empty or starting with `/`).
    pub base_path: String,
    /// The bearer token.
    pub token: String,
}

impl Endpoint {
    /// Parses the base URL and takes the token; the error says what is wrong.
    pub fn new(url: &str, token: &str) -> Result<Endpoint, ProviderError> {
        let config = |detail: String| ProviderError::Config(detail);
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(s, _)| matches!(*s, "http" | "https"))
            .ok_or_else(|| config(format!("{} {url:?} is not an http:// or https:// URL", remote_nn::ENV_URL)))?;
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if authority.is_empty() || authority.contains(['@', ' ', '?', '#']) {
            return Err(config(format!("{} {url:?} has no usable host", remote_nn::ENV_URL)));
        }
        if token.trim().is_empty() || token.len() > 4096 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(config(format!("{} is empty or not a printable token", remote_nn::ENV_TOKEN)));
        }
        let path = path.trim_end_matches('/');
        Ok(Endpoint {
            scheme: scheme.to_string(),
            authority: authority.to_string(),
            base_path: if path.is_empty() { String::new() } else { format!("/{path}") },
            token: token.to_string(),
        })
    }

    /// From the environment variables.
    pub fn from_env() -> Result<Endpoint, ProviderError> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| ProviderError::Config(format!("{name} is not set in the component's environment")))
        };
        Endpoint::new(&var(remote_nn::ENV_URL)?, &var(remote_nn::ENV_TOKEN)?)
    }

    /// `scheme://authority/base` (no token), as errors name it.
    pub fn display(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

/// One HTTP exchange: `POST path` with a JSON body and a bearer token.
pub trait Transport {
    /// Status and body (at most `max_response` bytes: more is an error), or
    /// why there was no answer.
    fn post(&self, endpoint: &Endpoint, path: &str, body: &[u8], max_response: usize) -> Result<(u16, Vec<u8>), String>;
}

/// A graph the endpoint runs, known by name.
#[derive(Debug, Clone)]
pub struct RemoteGraph {
    name: String,
}

impl RemoteGraph {
    /// A handle for `name` (nothing is sent until `compute`).
    pub fn new(name: &str) -> Result<RemoteGraph, ProviderError> {
        remote_nn::check_graph_name(name).map_err(|e| ProviderError::NotFound { name: name.to_string(), available: e.to_string() })?;
        Ok(RemoteGraph { name: name.to_string() })
    }

    /// The graph name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends the inputs to the endpoint of the environment and returns its outputs.
    pub fn compute(&self, inputs: Vec<(String, RawTensor)>, transport: &dyn Transport) -> Result<Vec<(String, RawTensor)>, ProviderError> {
        self.compute_at(&Endpoint::from_env()?, inputs, transport)
    }

    /// Sends the inputs to `endpoint` and returns its outputs.
    pub fn compute_at(
        &self,
        endpoint: &Endpoint,
        inputs: Vec<(String, RawTensor)>,
        transport: &dyn Transport,
    ) -> Result<Vec<(String, RawTensor)>, ProviderError> {
        let remote = |detail: String| ProviderError::Remote { endpoint: endpoint.display(), detail };
        let request = ComputeRequest {
            inputs: inputs.iter().map(|(name, t)| WireTensor::new(name.clone(), t.dims.clone(), t.ty, &t.data)).collect(),
        };
        let body = serde_json::to_vec(&request).expect("wire types serialise");
        if body.len() > remote_nn::MAX_REQUEST_BYTES {
            return Err(ProviderError::TooLarge {
                what: format!("the request to the remote encoder for graph {:?}", self.name),
                bytes: body.len(),
                limit: remote_nn::MAX_REQUEST_BYTES,
            });
        }
        let path = format!("{}{}", endpoint.base_path, remote_nn::compute_path(&self.name));
        let (status, answer) = transport
            .post(endpoint, &path, &body, remote_nn::MAX_RESPONSE_BYTES)
            .map_err(|e| remote(format!("unreachable: {e}")))?;
        if status != 200 {
            let detail = serde_json::from_slice::<ErrorBody>(&answer)
                .map(|b| b.error.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned());
            return Err(match status {
                401 | 403 => ProviderError::Denied { endpoint: endpoint.display(), status, detail },
                _ => remote(format!("answered {status} for graph {:?}: {detail}", self.name)),
            });
        }
        let response: ComputeResponse = remote_nn::parse(&answer, remote_nn::MAX_RESPONSE_BYTES)
            .map_err(|e| remote(format!("unusable answer: {e}")))?;
        response
            .outputs
            .into_iter()
            .map(|t| {
                let data = t.bytes().map_err(|e| remote(format!("unusable answer: {e}")))?;
                Ok((t.name, RawTensor { dims: t.dims, ty: t.ty, data }))
            })
            .collect()
    }
}
