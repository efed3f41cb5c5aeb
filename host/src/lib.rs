//! The BuscaEscenas host: a wasmtime server for the query component.
//!
//! At start-up it preloads every model directory's CLIP graphs for wasi-nn
//! (`load-by-name`, ONNX Runtime backend), runs the component's
//! `wizer-initialize` with the bundles preopened so the index lands in the
//! snapshot's memory, compiles (or loads from the on-disk cache) that
//! snapshot, and serves HTTP: every request gets a fresh instance from the
//! pooling allocator, whose memory is the snapshot mapped copy-on-write.
//!
//! - [`options`]: `busca-serve`'s options; [`server`]: listening, routing,
//!   limits, graceful shutdown; `reload`: what requests are served with, and
//!   the switch to new bundle versions.
//! - [`runtime`]: engine configuration, store state, imports, one request.
//! - [`world`]: the component's WIT worlds, generated from `wit/world.wit`.
//! - [`snapshot`]: pre-initialization and the compiled-snapshot cache;
//!   [`image_align`]: its memory image moved onto 2 MiB pages;
//!   [`compile_cache`]: the code compiled once for all of them.
//! - [`models`]: the preloaded graphs; [`onnx`]: wasi-nn graphs over ONNX Runtime.
//! - [`media`]: source videos with Range support.
//! - [`source`]: the bundles, from a folder or mirrored from S3, polled for new versions.
#![deny(missing_docs)]

pub mod compile_cache;
pub mod encoder;
pub mod error;
pub mod image_align;
pub mod media;
pub mod models;
pub mod onnx;
pub mod options;
mod reload;
pub mod runtime;
pub mod server;
pub mod snapshot;
pub mod source;
pub mod world;

pub use error::HostError;
pub use busca_s3::{Location, S3Flags};
pub use options::ServeOptions;
pub use server::{start, RunningServer};
