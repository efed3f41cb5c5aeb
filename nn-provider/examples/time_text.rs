//! Times the text tower of a model directory with tract, as the provider runs
//! it, for `bench/edge.py`: tract's own speed on a tower too large to
//! pre-initialize into the provider (the ViT-L/14-shaped text tower; the
//! stock `wasmtime wizer` refuses to snapshot a memory that large).
//!
//! ```text
//! cargo build --release --example time_text --target wasm32-wasip2
//! wasmtime run -Scli --dir MODEL_DIR::/nn-graphs time_text.wasm 5
//! ```
//!
//! The input is the tower's full context of pad ids: every query reaches a
//! tower padded to its context length, so the tower's time does not depend
//! on the text (and the example needs no tokenizer, which the provider is
//! built without). Prints one JSON line: load (parse + optimise + one
//! warm-up run) and each run's milliseconds.

use std::path::Path;
use std::time::Instant;

use busca_core::model::ModelManifest;
use nn_provider::graphs::Graph;
use nn_provider::tensor::{ElemType, RawTensor};

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let dir = Path::new(nn_provider::GRAPHS_ROOT);
    let manifest = ModelManifest::load(dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    let tower = manifest.default_text();
    // The text tower alone: the directory's image tower may be past what
    // the provider's registry loads (ViT-L/14's is 1.2 GB).
    let started = Instant::now();
    let path = dir.join(&tower.file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    let graph = Graph::from_onnx(&tower.graph_name, &bytes).unwrap_or_else(|e| fail(&e.to_string()));
    graph.warm_up().unwrap_or_else(|e| fail(&e.to_string()));
    drop(bytes);
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let ids = vec![tower.pad_id; tower.context_length];
    let input = RawTensor {
        dims: vec![1, ids.len() as u32],
        ty: ElemType::I64,
        data: ids.iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let out = graph
            .run(vec![(tower.input.clone(), input.clone())])
            .unwrap_or_else(|e| fail(&e.to_string()));
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(!out.is_empty(), "the text tower gave no output");
    }
    let list = times.iter().map(|t| format!("{t:.3}")).collect::<Vec<_>>().join(",");
    println!("{{\"load_ms\":{load_ms:.1},\"runs_ms\":[{list}]}}");
}

fn fail(why: &str) -> ! {
    eprintln!("time_text: {why}");
    std::process::exit(1)
}
