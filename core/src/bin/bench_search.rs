//! Native latency and quality of shot search, to compare with the same search
//! inside the component (its `took_ms`): exact scan over f32 rows and over
//! the 16-bit fixed-point rows an f16 index is held as (rows labelled `f16`),
//! and the HNSW graph walk when the index has a graph.
//!
//! ```text
//! cargo run --release -p busca-core --bin bench_search                      # 20k × 768 random, exact only
//! python core/tests/fixtures/usearch/gen_bench_index.py /tmp/bench-index  # usearch-built graph
//! cargo run --release -p busca-core --bin bench_search -- /tmp/bench-index/f32.usearch
//! # the component's kernels (simd128) in the stock wasmtime CLI:
//! RUSTFLAGS="-C target-feature=+simd128" cargo build --release -p busca-core \
//!     --no-default-features --bin bench_search --target wasm32-wasip2
//! wasmtime run --dir /tmp/bench-index::/d $CARGO_TARGET_DIR/wasm32-wasip2/release/bench_search.wasm /d/f32.usearch
//! ```
//!
//! Prints a table: mean and p95 latency per query, speed ratio against the f32
//! exact scan measured in the same run, and recall@k against that scan. When
//! an `i8.usearch` sits beside the file given (gen_bench_index.py writes one),
//! its exact scan and graph walk are rows too: their recall@10 is the overlap
//! of i8's top 10 with f32's.
//!
//! With `--numpy PYTHON`, the same f32 matrix and queries are handed to numpy
//! (`X @ q`, BLAS) in that interpreter, with its default threads and with
//! one, and its times are rows of the same table: the floor an exact scan
//! is held to, since both read every vector once.

use std::time::Instant;

use busca_core::shot_index::{Method, ShotIndex};
use busca_core::usearch_file::{HnswGraph, Metric, StoredVectors, UsearchFile};
use busca_core::vector::fixed16::Fixed16Rows;
use busca_core::vector::{self, SplitMix64};

const K: usize = 10;
const QUERIES: usize = 200;

fn random_file(n: usize, dim: usize, rng: &mut SplitMix64) -> UsearchFile {
    let mut vectors = Vec::with_capacity(n * dim);
    for _ in 0..n {
        vectors.extend(rng.unit(dim));
    }
    UsearchFile {
        version: (2, 26, 6),
        metric: Metric::Cos,
        dimensions: dim,
        count_present: n as u64,
        count_deleted: 0,
        keys: (0..n as u64).collect(),
        vectors: StoredVectors::F32(vectors),
        graph: HnswGraph::from_lists(16, 32, 0, &vec![vec![vec![]]; n]),
    }
}

/// numpy's `X @ q` on `matrix` for each query (`bench/numpy_scan.py`): the
/// times of each run, the default thread count first, then
/// `OPENBLAS_NUM_THREADS=1` & co.
fn numpy_rows(python: &str, matrix: &[f32], dim: usize, queries: &[Vec<f32>]) -> anyhow_free::Result<Vec<(String, Vec<f64>)>> {
    let dir = std::env::temp_dir().join(format!("bench_search-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(dir.join("x.f32"), bytes(matrix))?;
    std::fs::write(dir.join("q.f32"), bytes(&queries.concat()))?;
    // The same script busca-host-bench runs against the component's scan.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/numpy_scan.py");
    let mut out = Vec::new();
    for (label, single) in [("numpy X @ q", false), ("numpy 1 thread", true)] {
        let mut cmd = std::process::Command::new(python);
        cmd.arg(script).arg(&dir).arg(dim.to_string()).arg(K.to_string());
        if single {
            for var in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
                cmd.env(var, "1");
            }
        }
        let run = cmd.output()?;
        if !run.status.success() {
            return Err(format!("{python}: {}", String::from_utf8_lossy(&run.stderr)).into());
        }
        let times: Vec<f64> = String::from_utf8_lossy(&run.stdout).split_whitespace().filter_map(|t| t.parse().ok()).collect();
        out.push((label.to_string(), times));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// A boxed error is all this bench binary needs (core has no anyhow).
mod anyhow_free {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let numpy = args.iter().position(|a| a == "--numpy").and_then(|i| args.get(i + 1).cloned());
    let path = args.iter().enumerate().find(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--numpy")).map(|(_, a)| a.clone());
    let mut rng = SplitMix64(42);
    let (file, has_graph, source) = match &path {
        Some(p) => match UsearchFile::read(std::path::Path::new(p)) {
            Ok(f) => (f, true, p.clone()),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        },
        None => (random_file(20_000, 768, &mut rng), false, "random 20000 x 768".into()),
    };
    let dim = file.dimensions;
    let index = ShotIndex::from_usearch(file, 64).and_then(|i| i.with_fixed16(false)).expect("cos index");
    let n = index.len();
    // Queries near stored vectors (as a "more like this" or a good text query is).
    let queries: Vec<Vec<f32>> = (0..QUERIES)
        .map(|i| {
            let base = index.vector((i * 7919) % n);
            let mut q: Vec<f32> = base.iter().map(|x| x + 0.6 * rng.next_f32() / (dim as f32).sqrt()).collect();
            vector::normalize(&mut q);
            q
        })
        .collect();
    // The 16-bit fixed-point rows loading an f16 bundle makes
    // (ShotIndex::from_usearch), quantized here from the f32 rows.
    let f16_index = index.clone().with_fixed16(true).expect("finite rows");

    // Results as keys, not rows: a file built by usearch with parallel adds
    // (i8.usearch) puts the same key in another slot than the f32 file.
    let run = |idx: &ShotIndex, method: Method| -> (Vec<Vec<u64>>, Vec<f64>) {
        let mut keys = Vec::new();
        let mut times = Vec::new();
        for q in &queries {
            let t = Instant::now();
            let hits = idx.search(q, K, None, method, None);
            times.push(t.elapsed().as_secs_f64() * 1e3);
            keys.push(hits.iter().map(|h| idx.key(h.row)).collect());
        }
        (keys, times)
    };
    // Warm up caches once, then measure.
    let _ = run(&index, Method::Exact);
    let (truth, base_times) = run(&index, Method::Exact);
    let mean = |t: &[f64]| t.iter().sum::<f64>() / t.len() as f64;
    let p95 = |t: &[f64]| {
        let mut s = t.to_vec();
        s.sort_by(f64::total_cmp);
        s[(s.len() * 95 / 100).min(s.len() - 1)]
    };
    let recall = |rows: &[Vec<u64>]| {
        let hit: usize = rows.iter().zip(&truth).map(|(r, t)| r.iter().filter(|x| t.contains(x)).count()).sum();
        hit as f64 / (truth.len() * K) as f64
    };
    let base_mean = mean(&base_times);
    println!("bench_search: {source}: {n} shots x {dim} dims, {QUERIES} queries, k = {K}, kernels {}", vector::kernels());
    println!("{:<14} {:>8} {:>10} {:>10} {:>14} {:>10}", "method", "storage", "mean ms", "p95 ms", "speed vs f32", "recall@10");
    let row = |name: &str, storage: &str, times: &[f64], rows: &[Vec<u64>]| {
        println!(
            "{:<14} {:>8} {:>10.3} {:>10.3} {:>13.2}x {:>10.4}",
            name,
            storage,
            mean(times),
            p95(times),
            base_mean / mean(times),
            recall(rows)
        );
    };
    row("exact scan", "f32", &base_times, &truth);
    let (rows, times) = run(&f16_index, Method::Exact);
    row("exact scan", "f16", &times, &rows);
    if vector::kernels() != "portable" {
        // The same scans with the portable loops (what the x86-64 baseline
        // compiles to), to show what the run-time kernels buy.
        let matrix: Vec<f32> = (0..n).flat_map(|r| index.vector(r)).collect();
        let fixed = Fixed16Rows::from_f32(&matrix, dim).expect("finite rows");
        let fixed_queries: Vec<_> = queries.iter().map(|q| fixed.query(q)).collect();
        // `score(query number, row)`.
        let scan = |score: &dyn Fn(usize, usize) -> f32| -> (Vec<Vec<u64>>, Vec<f64>) {
            let (mut keys, mut times) = (Vec::new(), Vec::new());
            for qi in 0..queries.len() {
                let t = Instant::now();
                let mut best = vector::TopK::new(K, None);
                for r in 0..n {
                    best.push(vector::Scored { row: r, score: score(qi, r) });
                }
                let hits = best.into_sorted_vec();
                times.push(t.elapsed().as_secs_f64() * 1e3);
                keys.push(hits.iter().map(|h| index.key(h.row)).collect());
            }
            (keys, times)
        };
        let (rows, times) = scan(&|qi, r| vector::portable::dot(&queries[qi], &matrix[r * dim..(r + 1) * dim]));
        row("portable scan", "f32", &times, &rows);
        let (rows, times) = scan(&|qi, r| {
            let q = &fixed_queries[qi];
            vector::portable::dot_i16(q.values(), fixed.row(r)) as f32 * q.unit()
        });
        row("portable scan", "f16", &times, &rows);
    }
    if let Some(python) = &numpy {
        let matrix: Vec<f32> = (0..n).flat_map(|r| index.vector(r)).collect();
        match numpy_rows(python, &matrix, dim, &queries) {
            Ok(runs) => {
                for (label, times) in runs {
                    row(&label, "f32", &times, &truth);
                }
            }
            Err(e) => eprintln!("numpy rows not measured: {e}"),
        }
    }
    if has_graph {
        let (rows, times) = run(&index, Method::Hnsw);
        row("hnsw (ef=64)", "f32", &times, &rows);
        let (rows, times) = run(&f16_index, Method::Hnsw);
        row("hnsw (ef=64)", "f16", &times, &rows);
    }
    let i8_path = path.as_ref().map(|p| std::path::Path::new(p).with_file_name("i8.usearch"));
    if let Some(i8_path) = i8_path.filter(|p| p.is_file()) {
        let i8_index = match UsearchFile::read(&i8_path).map(|f| ShotIndex::from_usearch(f, 64)) {
            Ok(Ok(index)) if index.len() == n => index,
            Ok(Ok(index)) => {
                eprintln!("error: {} holds {} rows, the f32 index {n}", i8_path.display(), index.len());
                std::process::exit(1);
            }
            Ok(Err(e)) => {
                eprintln!("error: {}: {e}", i8_path.display());
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
        let (rows, times) = run(&i8_index, Method::Exact);
        row("exact scan", "i8", &times, &rows);
        let (rows, times) = run(&i8_index, Method::Hnsw);
        row("hnsw (ef=64)", "i8", &times, &rows);
    }
}
