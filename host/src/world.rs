//! The query component's WIT worlds (`wit/world.wit`), generated with
//! wasmtime's `bindgen!`: the contract checked on the host's side, as the
//! guest generates its side from the same file.
//!
//! - [`QueryPre`]: what busca-serve pre-initializes. A component is linked
//!   and checked against the world `query` (every export, with its type)
//!   before wizer runs its `wizer-initialize`.
//! - [`QueryServedPre`]: the snapshot wizer leaves (the init export
//!   removed), checked against `query-served` before it serves a request.
//!
//! Only the worlds' export checks are used. The imports are linked by
//! wasmtime-wasi, wasmtime-wasi-http and wasmtime-wasi-nn (`runtime::linker`;
//! instantiating against that linker checks them), whose own bindings cannot
//! be named here: wasi-nn's are private, and wasmtime-wasi-http's are generated
//! from a wasi:http text with unstable feature gates that `wit/deps` does not
//! carry. Requests are called through wasmtime-wasi-http's `ProxyPre`, over
//! the same instance-pre.

#[expect(missing_docs, reason = "bindgen-generated code")]
mod query {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "buscaescenas:edge/query",
        exports: { default: async },
    });
}

#[expect(missing_docs, reason = "bindgen-generated code")]
mod query_served {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "buscaescenas:edge/query-served",
        exports: { default: async },
    });
}

pub use query::{Query, QueryPre};
pub use query_served::{QueryServed, QueryServedPre};
