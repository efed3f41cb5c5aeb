//! BuscaEscenas edge query component: a wasi:http component that answers
//! search over the bundles preopened at `/bundles`, encoding text and image
//! queries through wasi:nn graphs the host preloads by name.
//!
//! - [`api`]: routing and handlers, HTTP- and wasi-nn-independent (tested natively).
//! - `wasm` (wasm32 only): the spin-sdk `#[http_component]` entry, the wasi:nn
//!   encoder, and the `wizer-initialize` export that loads every bundle into
//!   memory before the snapshot.
//! - [`test_bundle`] (native only): writes small bundles with core types for
//!   tests and the `make_test_bundle` example.
#![deny(missing_docs)]

pub mod api;
#[cfg(not(target_arch = "wasm32"))]
pub mod test_bundle;
#[cfg(target_arch = "wasm32")]
mod wasm;
