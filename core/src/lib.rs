//! The concepts that the BuscaEscenas indexer, the edge query component and the
//! host share, each defined once.
//!
//! - [`error`]: the I/O error with its path that every crate's errors carry.
//! - [`shot`]: the semantic shot record, scenes, videos and per-video timelines.
//! - [`bundle`]: the on-disk index bundle (layout, versioned manifest, checksums,
//!   the atomic `CURRENT` pointer); [`bundle_writer`]: the one way a version
//!   is written, checked by the reader before it is published; [`crash`]:
//!   the named points where fault-injection tests kill the process.
//! - [`model`]: the model manifest that describes a pair of CLIP-shaped ONNX towers.
//! - [`query`]: search request and response JSON, input limits, errors with an
//!   HTTP status; [`fusion`] combines text, image and feedback vectors.
//! - [`preprocess`] and [`tokenize`]: CLIP image preprocessing and text
//!   tokenization. The indexer and the component both call this code so that the
//!   same input always becomes the same tensor.
//! - [`image_input`]: bounded decoding of untrusted query images.
//! - [`vector`]: normalisation, dot products and exact top-k search.
//! - [`remote_nn`]: the remote encoder's wire format (edge provider ↔ busca-serve).
//! - [`usearch_file`]: a pure-Rust reader of usearch index files (vectors and
//!   HNSW graph); [`shot_index`]: those vectors and graph searched (exact scan
//!   or graph walk); [`search`]: a bundle loaded for searching (tables, query
//!   composition, filters).
//! - [`guest`]: the preopened bundles root and the pre-initialization
//!   export's name, shared by the host and the guests.
//! - [`snapshot`]: the allocator that keeps freed memory out of a guest
//!   component's pre-initialized snapshot.
//!
//! Everything here is pure Rust and builds for native targets and for
//! `wasm32-wasip2`. Features (both default): `text` ([`tokenize`] and the
//! bundle writer) and `image` ([`image_input`]); the wasi:nn providers, which
//! only run graphs, build without them. Decoding video, running ONNX models and serving HTTP live in
//! the `indexer`, `host` and `query-component` crates.
//!
//! ```
//! use busca_core::{fusion, vector};
//! let text = [1.0, 0.0, 0.0];
//! let image = [0.0, 1.0, 0.0];
//! let q = fusion::fuse(Some(&text), Some(&image), 0.5).unwrap();
//! assert!((vector::dot(&q, &text) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
//! ```
#![deny(missing_docs)]

pub mod bundle;
// Writing bundles is native work (the component only reads them); sealing a
// version loads its tokenizers.
#[cfg(all(not(target_family = "wasm"), feature = "text"))]
pub mod bundle_writer;
#[cfg(not(target_family = "wasm"))]
pub mod crash;
pub mod error;
#[cfg(not(target_family = "wasm"))]
pub mod fence;
pub mod fusion;
pub mod guest;
#[cfg(feature = "image")]
pub mod image_input;
pub mod model;
pub mod preprocess;
pub mod query;
pub mod remote_nn;
pub mod search;
pub mod shot;
pub mod shot_index;
pub mod snapshot;
#[cfg(feature = "text")]
pub mod tokenize;
pub mod usearch_file;
pub mod vector;

pub use bundle::{BundleError, BundleManifest, FORMAT_VERSION};
pub use model::ModelManifest;
pub use preprocess::ClipPreprocess;
pub use query::{Limits, SearchHit, SearchRequest, SearchResponse};
pub use shot::ShotRecord;
#[cfg(feature = "text")]
pub use tokenize::{ClipTokenizer, TextTokenizer, TextTokenizers};

/// `$XDG_CACHE_HOME/buscaescenas`, else `~/.cache/buscaescenas` (the scripts'
/// `$BUSCA_HOME`): where compiled snapshots, S3 staging and mirrors are kept.
/// `None` when neither variable is set.
pub fn cache_home() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("buscaescenas"))
}
