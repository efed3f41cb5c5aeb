//! The encoder boundary: the model's towers as the handlers see them (typed by
//! the tower's manifest entry), and the checks every embedding passes before
//! it is searched with.

use busca_core::model::{ImageTower, TextTower};
use busca_core::query::QueryError;
use busca_core::search::Collection;

/// Runs the model's towers, with shapes and names from the tower's own
/// manifest entry. The wasi:nn glue (`wasm.rs`) is the one place that knows
/// graphs and tensors; tests use a fake.
pub trait Encoder {
    /// The text tower's embedding of one query's token ids.
    fn text(&self, tower: &TextTower, ids: &[i64]) -> Result<Vec<f32>, EncoderError>;
    /// The image tower's embedding of one preprocessed image: channel-major
    /// pixel values, 3 × `tower.image_size` × `tower.image_size`.
    fn image(&self, tower: &ImageTower, pixels: &[f32]) -> Result<Vec<f32>, EncoderError>;
}

/// Why an encoder could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncoderError {
    /// The host has no graph by this name.
    #[error("the host has no wasi-nn graph {graph:?} ({host})")]
    GraphMissing {
        /// The graph name.
        graph: String,
        /// What the host said.
        host: NnError,
    },
    /// The graph ran and failed, or gave an unexpected output.
    #[error("wasi-nn graph {graph:?}: {failure}")]
    Failed {
        /// The graph name.
        graph: String,
        /// What went wrong.
        failure: Failure,
    },
}

/// A wasi:nn error as the host reported it: its code and the host's message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {data}")]
pub struct NnError {
    /// The wasi:nn error code (`not-found`, `runtime-error`, ...).
    pub code: String,
    /// The host's message.
    pub data: String,
}

/// How a graph that exists failed to give an embedding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// A wasi:nn call failed.
    #[error("{call}: {error}")]
    Call {
        /// The call (`init-execution-context`, `compute`).
        call: &'static str,
        /// The host's error.
        error: NnError,
    },
    /// The outputs lack the one the manifest names.
    #[error("no output named {output:?} among {outputs} outputs")]
    MissingOutput {
        /// The manifest's output name.
        output: String,
        /// How many outputs came back.
        outputs: usize,
    },
    /// The output is not f32.
    #[error("output {output:?} is {found}, not FP32")]
    OutputType {
        /// The output.
        output: String,
        /// Its tensor type.
        found: String,
    },
    /// The output is not one row.
    #[error("output {output:?} has shape {dims:?}, expected [1, D]")]
    OutputShape {
        /// The output.
        output: String,
        /// Its dimensions.
        dims: Vec<u32>,
    },
}

/// An encoder's answer checked against the bundle: a graph the host lacks, a
/// failure, or an embedding of another dimension is refused (503) rather
/// than searched with.
pub(super) fn checked_embedding(c: &Collection, graph: &str, answer: Result<Vec<f32>, EncoderError>) -> Result<Vec<f32>, QueryError> {
    let bundle_name = format!("{} {}", c.name(), c.version());
    let embedding = answer.map_err(|e| match e {
        EncoderError::GraphMissing { graph, host } => QueryError::new(
            503,
            "encoder_unavailable",
            format!("the host has no wasi-nn graph {graph:?}, which bundle {bundle_name} needs ({host}); preload the bundle's model"),
        ),
        EncoderError::Failed { graph, failure } => QueryError::new(
            503,
            "encoder_failed",
            format!("wasi-nn graph {graph:?} failed for bundle {bundle_name}: {failure}"),
        ),
    })?;
    if embedding.len() != c.index.dim() {
        return Err(QueryError::new(
            503,
            "encoder_mismatch",
            format!(
                "wasi-nn graph {graph:?} returns {}-d embeddings but bundle {bundle_name} holds {}-d vectors; the host must preload the model the bundle was built with ({})",
                embedding.len(),
                c.index.dim(),
                c.bundle.manifest.model.model_id
            ),
        ));
    }
    if embedding.iter().any(|x| !x.is_finite()) {
        return Err(QueryError::new(503, "encoder_failed", format!("wasi-nn graph {graph:?} returned non-finite values")));
    }
    Ok(embedding)
}
