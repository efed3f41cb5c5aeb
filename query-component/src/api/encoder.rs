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
#[derive(Debug, Clone, PartialEq)]
pub enum EncoderError {
    /// The host has no graph by this name.
    GraphMissing {
        /// The graph name.
        graph: String,
        /// What the host said.
        detail: String,
    },
    /// The graph ran and failed, or gave an unexpected output.
    Failed {
        /// The graph name.
        graph: String,
        /// What went wrong.
        detail: String,
    },
}

/// An encoder's answer checked against the bundle: a graph the host lacks, a
/// failure, or an embedding of another dimension is refused (503) rather
/// than searched with.
pub(super) fn checked_embedding(c: &Collection, graph: &str, answer: Result<Vec<f32>, EncoderError>) -> Result<Vec<f32>, QueryError> {
    let bundle_name = format!("{} {}", c.name(), c.version());
    let embedding = answer.map_err(|e| match e {
        EncoderError::GraphMissing { graph, detail } => QueryError::new(
            503,
            "encoder_unavailable",
            format!("the host has no wasi-nn graph {graph:?}, which bundle {bundle_name} needs ({detail}); preload the bundle's model"),
        ),
        EncoderError::Failed { graph, detail } => QueryError::new(
            503,
            "encoder_failed",
            format!("wasi-nn graph {graph:?} failed for bundle {bundle_name}: {detail}"),
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
