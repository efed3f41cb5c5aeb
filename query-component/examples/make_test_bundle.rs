//! Writes a small synthetic bundle (see `query_component::test_bundle`) for
//! smoke-running the component without the indexer:
//!
//! ```text
//! cargo run --example make_test_bundle -- /tmp/bundles demo 768
//! wasmtime serve -Scli -Snn --dir /tmp/bundles::/bundles query_component.wasm
//! ```

use std::path::PathBuf;

use query_component::test_bundle::{self, Spec};

fn main() {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(args.next().unwrap_or_else(|| "bundles".into()));
    let collection = args.next().unwrap_or_else(|| "demo".into());
    let dim: usize = args.next().map(|d| d.parse().expect("dimension is a number")).unwrap_or(768);
    let mut model = test_bundle::test_model(dim);
    // With 768-d vectors, record the tiny colour model so a host that preloads
    // it can encode queries for this bundle.
    if dim == 768 {
        if let Ok(tiny) = busca_core::ModelManifest::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tiny")) {
            model = tiny;
        }
    }
    let spec = Spec { collection, version: 1, videos: 4, shots_per_video: 10, classes: 5, model, seed: 7 };
    match test_bundle::write(&root, &spec) {
        Ok(written) => println!("wrote {} shots to {}", written.shots.len(), root.join(&spec.collection).display()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
