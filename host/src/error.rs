//! Why the host could not start or serve.

use std::path::PathBuf;

use busca_core::bundle::BundleError;
use busca_core::error::IoAt;
use busca_core::model::ModelError;
use busca_s3::S3Error;

/// Start-up and serving failures, each naming the input at fault.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A file or directory could not be read or written.
    #[error(transparent)]
    Io(#[from] IoAt),
    /// A model directory's manifest is unusable.
    #[error("model directory {dir}: {source}")]
    Model {
        /// The model directory.
        dir: PathBuf,
        /// What is wrong with its manifest.
        source: ModelError,
    },
    /// ONNX Runtime could not start or load a graph (names the library or file).
    #[error(transparent)]
    Onnx(#[from] busca_onnx::OnnxError),
    /// Two model directories offer a graph under the same name.
    #[error(
        "graph name {name:?} is offered by both {first} and {second}; graph names must be unique"
    )]
    DuplicateGraph {
        /// The graph name.
        name: String,
        /// The first model directory.
        first: PathBuf,
        /// The second model directory.
        second: PathBuf,
    },
    /// A bundle, collection or pointer is unusable (names its path).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The bundles root is not a directory.
    #[error("bundles directory {0}: not a directory")]
    NotADirectory(PathBuf),
    /// The S3 bundles root is unusable (names the bucket and what to fix).
    #[error(transparent)]
    S3(#[from] S3Error),
    /// The component could not be read, checked, pre-initialized, compiled or linked.
    #[error("component {path}: {step}: {cause:#}")]
    Component {
        /// The component file.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// wasmtime's error with its cause chain.
        cause: wasmtime::Error,
    },
    /// wasmtime refused the engine configuration, the imports or the guest's state.
    #[error("wasmtime: {step}: {cause:#}")]
    Engine {
        /// What was being set up.
        step: &'static str,
        /// wasmtime's error with its cause chain.
        cause: wasmtime::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The encoder endpoint's token is too weak.
    #[error("{origin}: the encoder token must be at least {min_chars} printable characters without spaces")]
    WeakToken {
        /// Where the token came from (the option or file).
        origin: String,
        /// The minimum length.
        min_chars: usize,
    },
}

impl HostError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HostError {
        let at = IoAt::at(path);
        move |source| HostError::Io(at(source))
    }

    /// A component failure at `step`, with wasmtime's full cause chain.
    pub fn component(path: impl Into<PathBuf>, step: &'static str) -> impl FnOnce(wasmtime::Error) -> HostError {
        let path = path.into();
        move |cause| HostError::Component { path, step, cause }
    }

    /// An engine or linker failure at `step`.
    pub fn engine(step: &'static str) -> impl FnOnce(wasmtime::Error) -> HostError {
        move |cause| HostError::Engine { step, cause }
    }
}
