//! Why ONNX Runtime could not be set up, load a model or run it; each error
//! names the library or model file.

use std::path::PathBuf;

/// Why ONNX Runtime could not be set up, load a model or run it.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// A text tower's tokenizer could not be built.
    #[error(transparent)]
    Tokenizer(#[from] busca_core::tokenize::TokenizerError),
    /// No ONNX Runtime library was named, or the named one does not exist.
    #[error("ONNX Runtime library {0}: not found; set ORT_DYLIB_PATH (or --ort-lib / --ort-dylib) to libonnxruntime.so")]
    RuntimeMissing(String),
    /// The library exists but ONNX Runtime could not start from it.
    #[error("cannot initialise ONNX Runtime from {path}: {source}")]
    RuntimeInit {
        /// The library (empty: the default search).
        path: PathBuf,
        /// ort's error.
        source: ort::Error,
    },
    /// ONNX Runtime refused the model.
    #[error("{path}: cannot load the model: {source}")]
    Load {
        /// The ONNX file (or `<memory>`).
        path: PathBuf,
        /// ort's error.
        source: ort::Error,
    },
    /// The model's inputs or outputs are not what the manifest says.
    #[error("{path}: {what}")]
    Interface {
        /// The ONNX file.
        path: PathBuf,
        /// What does not match.
        what: Interface,
    },
    /// Inference failed.
    #[error("{path}: inference failed on a batch of {batch}: {source}")]
    Run {
        /// The ONNX file.
        path: PathBuf,
        /// Batch size.
        batch: usize,
        /// ort's error.
        source: ort::Error,
    },
}

/// How a model differs from what its manifest says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Interface {
    /// No input of that name.
    #[error("no input named {0:?}")]
    MissingInput(String),
    /// No output of that name.
    #[error("no output named {0:?}")]
    MissingOutput(String),
    /// An input or output is not a tensor, or of a type not supported.
    #[error("{name} is not a supported tensor ({found})")]
    UnsupportedValue {
        /// Input or output name.
        name: String,
        /// What it is.
        found: String,
    },
    /// The output's size disagrees with the manifest's embedding dimension.
    #[error("output has {values} values for a batch of {batch}; the manifest says {dim} dimensions")]
    OutputSize {
        /// Values returned.
        values: usize,
        /// Batch size.
        batch: usize,
        /// The manifest's embedding dimension.
        dim: usize,
    },
}
