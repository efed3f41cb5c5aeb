//! BuscaEscenas' wasi:nn provider in pure WebAssembly. Hosts without wasi:nn
//! (Spin, Fermyon Wasm Functions, stock wasmtime) run the query component with
//! this component plugged into its wasi:nn imports (`wasm-tools compose`, done by
//! `scripts/build-component.sh`), so text and image queries are encoded inside
//! the same sandbox by tract instead of by the host's ONNX Runtime.
//!
//! One crate, two builds (features): `local` (default) runs the towers with
//! tract inside the component; `remote` forwards each inference to an encoder
//! endpoint (`busca-serve --encoder-token-file`) for towers too large to ship.
//!
//! - [`tensor`], [`error`]: tensors and failures as wasi:nn carries them.
//! - [`graphs`] (`local`): ONNX graphs with tract: loading from a model
//!   directory (its `manifest.json`, read through `busca-core`), input
//!   checks, running.
//! - [`remote`] (`remote`): the compute call over HTTP, in the wire format of
//!   `busca_core::remote_nn`.
//! - `wasm` (wasm32 only): the four exported wasi:nn interfaces over the
//!   backend; with `local`, `wizer-initialize`, which loads and optimises the
//!   graphs under `/nn-graphs` so that the pre-initialized snapshot holds
//!   them ready; with `remote`, the transport over wasi:http.
#![deny(missing_docs)]

#[cfg(all(feature = "local", feature = "remote"))]
compile_error!("build nn-provider with one backend: --features remote --no-default-features, or the default (local)");

pub mod error;
#[cfg(feature = "local")]
pub mod graphs;
#[cfg(feature = "remote")]
pub mod remote;
pub mod tensor;
#[cfg(target_arch = "wasm32")]
mod wasm;

/// Where the model directory is preopened (read-only) when the provider is
/// pre-initialized, or at run time when it was not.
pub const GRAPHS_ROOT: &str = "/nn-graphs";
