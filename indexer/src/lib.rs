//! The BuscaEscenas indexer: videos → CLIP frame embeddings → semantic
//! classes, scenes and shots → a versioned index bundle.
//!
//! - [`inputs`]: files, folders and list files to videos with stable ids.
//! - [`decode`]: FFmpeg decoding, sampling by presentation timestamp, swscale
//!   straight to the model's resolution, rotation.
//! - [`cuts`]: cuts, dissolves and fades found on every decoded frame.
//! - [`work`]: the per-collection work directory that makes runs incremental
//!   and resumable.
//! - [`segment`]: the semantic analysis (classes, diarization, shots, 2-D map).
//! - [`assemble`]: the bundle's tables from the analysis (a pure function).
//! - [`publish`]: bundle stores and the usearch index writer.
//! - `pipeline`: the decode → encode threads of a run.
//! - `thumbnail`: the halved JPEG of each sampled frame, keyframe material.
//! - [`shard`]: which videos one of many workers indexes.
//! - [`run`]: one indexing run tying these together, whole or one worker's
//!   part, and the publish of every worker's videos.
//!
//! The bundle layout, every shared record and the bundle writer are defined
//! in `busca-core`; the image encoder (CPU, or CUDA with the `cuda` feature)
//! is `busca-onnx`'s.
#![deny(missing_docs)]

pub mod assemble;
pub mod cuts;
pub mod decode;
pub mod inputs;
mod pipeline;
pub mod publish;
pub mod run;
pub mod segment;
pub mod shard;
mod thumbnail;
pub mod work;

pub use busca_onnx::Device;
pub use publish::S3Destination;
pub use run::{publish_work, run, IndexConfig, IndexError, S3Publish, Summary};
pub use shard::Shard;
pub use segment::AnalysisParams;
