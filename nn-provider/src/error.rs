//! What can go wrong in the provider, and which wasi:nn error code each maps
//! to. Shared by the local (tract) and the remote backend.

use std::path::PathBuf;

use busca_core::error::IoAt;
use busca_core::model::ModelError;

/// Why a graph could not be loaded or run. [`ProviderError::kind`] maps each
/// onto a wasi:nn error code.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No graph of that name was loaded.
    #[error("no graph named {name:?}; this provider has {available}")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The names it has, or why it has none.
        available: String,
    },
    /// The model directory or its manifest could not be used.
    #[error(transparent)]
    Manifest(#[from] ModelError),
    /// A model file could not be read.
    #[error("cannot read {0}")]
    Read(#[source] IoAt),
    /// A model file's checksum differs from the manifest's.
    #[error("{path} has sha256 {actual}, but the model manifest says {expected}")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// From the manifest.
        expected: String,
        /// Of the file.
        actual: String,
    },
    /// The bytes are not an ONNX graph tract can load and optimise.
    #[error("graph {name:?} is not a usable ONNX model: {detail}")]
    Encoding {
        /// The graph.
        name: String,
        /// tract's account.
        detail: String,
    },
    /// An input does not fit the graph.
    #[error("graph {graph:?}: {detail}")]
    InvalidInput {
        /// The graph.
        graph: String,
        /// What does not fit.
        detail: String,
    },
    /// Too large to accept.
    #[error("{what} is {bytes} bytes, more than the {limit} bytes accepted")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The caller asked for something this provider does not do.
    #[error("{0}")]
    Unsupported(String),
    /// tract failed while running the graph.
    #[error("graph {graph:?} failed: {detail}")]
    Run {
        /// The graph.
        graph: String,
        /// tract's account.
        detail: String,
    },
    /// The remote encoder is not configured (its URL or token is missing or malformed).
    #[error("remote encoder not configured: {0}")]
    Config(String),
    /// The remote encoder refused the token.
    #[error("remote encoder {endpoint} refused the token ({status}): {detail}")]
    Denied {
        /// The endpoint.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// Its message.
        detail: String,
    },
    /// The remote encoder could not be reached, or answered something unusable.
    #[error("remote encoder {endpoint}: {detail}")]
    Remote {
        /// The endpoint.
        endpoint: String,
        /// What happened.
        detail: String,
    },
}

/// The wasi:nn error code family of a [`ProviderError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `not-found`.
    NotFound,
    /// `invalid-argument`.
    InvalidArgument,
    /// `invalid-encoding`.
    InvalidEncoding,
    /// `too-large`.
    TooLarge,
    /// `unsupported-operation`.
    Unsupported,
    /// `runtime-error`.
    Runtime,
    /// `security`.
    Security,
}

impl ProviderError {
    /// The wasi:nn error code family.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProviderError::NotFound { .. } | ProviderError::Manifest(_) | ProviderError::Read(_) => ErrorKind::NotFound,
            ProviderError::Checksum { .. } | ProviderError::Encoding { .. } => ErrorKind::InvalidEncoding,
            ProviderError::InvalidInput { .. } => ErrorKind::InvalidArgument,
            ProviderError::TooLarge { .. } => ErrorKind::TooLarge,
            ProviderError::Unsupported(_) => ErrorKind::Unsupported,
            ProviderError::Run { .. } | ProviderError::Remote { .. } => ErrorKind::Runtime,
            ProviderError::Config(_) => ErrorKind::NotFound,
            ProviderError::Denied { .. } => ErrorKind::Security,
        }
    }
}

