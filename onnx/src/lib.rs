//! ONNX Runtime for BuscaEscenas, in one place: the indexer, the host and
//! eval all set it up and build sessions here.
//!
//! - [`runtime`]: points `ort` (built with `load-dynamic`) at the ONNX Runtime
//!   shared library once per process.
//! - [`session`]: builds sessions from a file or from memory, on the CPU or on
//!   a CUDA device with fallback to the CPU ([`Device`]).
//! - [`towers`]: the CLIP towers a model manifest describes: the batched
//!   [`ImageEncoder`] (fp16 or fp32 models) and the [`TextEncoder`] (core's
//!   tokenizer), both returning normalised rows.
//!
//! The host's wasi-nn backend (host/src/onnx.rs) is the one caller that feeds
//! tensors of every type by name; it takes its sessions from [`session`].
#![deny(missing_docs)]

pub mod error;
pub mod runtime;
pub mod session;
pub mod towers;

pub use error::{Interface, OnnxError};
pub use runtime::{init_runtime, init_runtime_shared_pool};
pub use session::{Device, Provider, SessionOptions, SessionSource};
pub use towers::{ImageEncoder, TextEncoder};
