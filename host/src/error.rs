//! Why the host could not start or serve.

use std::path::PathBuf;

use busca_core::error::IoAt;

/// Start-up and serving failures, each naming the input at fault.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A file or directory could not be read or written.
    #[error(transparent)]
    Io(#[from] IoAt),
    /// A model directory is unusable (manifest or ONNX file).
    #[error("model directory {dir}: {message}")]
    Model {
        /// The model directory.
        dir: PathBuf,
        /// What is wrong.
        message: String,
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
    /// The bundles root or one of its collections is unusable.
    #[error("bundles directory {dir}: {message}")]
    Bundles {
        /// The bundles root or collection directory.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The S3 bundles root is unusable (names the bucket and what to fix).
    #[error("{0}")]
    S3(String),
    /// The component could not be pre-initialized, compiled or linked.
    #[error("component {path}: {message}")]
    Component {
        /// The component file.
        path: PathBuf,
        /// What failed, with wasmtime's cause chain.
        message: String,
    },
    /// wasmtime refused the engine configuration.
    #[error("wasmtime engine configuration: {0}")]
    Engine(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An option's value cannot be used (the message names the option).
    #[error("{0}")]
    Config(String),
}

impl HostError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HostError {
        let at = IoAt::at(path);
        move |source| HostError::Io(at(source))
    }

    /// A component failure with wasmtime's full cause chain.
    pub fn component(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> HostError {
        HostError::Component {
            path: path.into(),
            message: format!("{err:#}"),
        }
    }
}
