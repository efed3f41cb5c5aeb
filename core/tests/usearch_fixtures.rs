//! Checks the pure-Rust usearch reader and the search over it against files
//! and answers made by the real usearch library
//! (`core/tests/fixtures/usearch/gen_usearch_fixtures.py`).

use std::path::PathBuf;

use busca_core::shot_index::{Method, ScanOrder, ShotIndex};
use busca_core::usearch_file::{Metric, StoredVectors, UsearchFile};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/usearch")
}

#[derive(serde::Deserialize)]
struct Expected {
    dimensions: usize,
    count: usize,
    k: usize,
    connectivity: usize,
    keys: Vec<u64>,
    first_vectors: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
    indexes: std::collections::BTreeMap<String, ExpectedIndex>,
}

#[derive(serde::Deserialize)]
struct ExpectedIndex {
    file: String,
    hnsw_keys: Vec<Vec<u64>>,
    exact_keys: Vec<Vec<u64>>,
    exact_distances: Vec<Vec<f32>>,
}

fn expected() -> Expected {
    serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap()
}

#[test]
fn reads_what_usearch_wrote() {
    let e = expected();
    for (dtype, x) in &e.indexes {
        let file = UsearchFile::read(&dir().join(&x.file)).unwrap();
        assert_eq!(file.metric, Metric::Cos);
        assert_eq!((file.dimensions, file.len()), (e.dimensions, e.count), "{dtype}");
        assert_eq!(file.keys, e.keys, "{dtype}: slot order is insertion order");
        assert_eq!(file.graph.connectivity, e.connectivity);
        assert!(file.graph.max_level >= 1, "{dtype}: a 150-node graph with M=4 has upper levels");
        let stored: Vec<f32> = match &file.vectors {
            StoredVectors::F32(v) => v[..e.dimensions].to_vec(),
            StoredVectors::F16(v) => v[..e.dimensions].iter().map(|h| h.to_f32()).collect(),
            // i8 keeps the direction only (quantize_i8): compare unit rows.
            StoredVectors::I8(v) => {
                let row: Vec<f32> = v[..e.dimensions].iter().map(|&q| f32::from(q)).collect();
                busca_core::vector::normalized(&row).expect("a non-zero row")
            }
        };
        assert_eq!(file.vectors.kind_name(), dtype.as_str());
        let tolerance = if dtype == "i8" { 1.0 / 127.0 + 1e-6 } else { 1e-3 };
        for (a, b) in stored.iter().zip(&e.first_vectors[0]) {
            assert!((a - b).abs() < tolerance, "{dtype}: first vector {a} vs {b}");
        }
        // Every neighbour list is within the graph and never lists the node itself.
        for slot in 0..file.len() as u32 {
            for level in 0..=file.graph.level(slot) {
                assert!(!file.graph.neighbours(slot, level).contains(&slot));
            }
            assert!(!file.graph.neighbours(slot, 0).is_empty(), "{dtype}: node {slot} is isolated");
        }
    }
}

#[test]
fn search_returns_usearchs_top_k() {
    let e = expected();
    for (dtype, x) in &e.indexes {
        if dtype == "i8" {
            continue; // scored differently from usearch on purpose: see i8_search_keeps_the_f32_answer
        }
        let index = ShotIndex::from_usearch(UsearchFile::read(&dir().join(&x.file)).unwrap(), 32).unwrap();
        // f16 rows are scored as 16-bit fixed point (vector::fixed16), and
        // must still give usearch's own f16 answer.
        assert_eq!(index.storage_name(), if dtype == "f16" { "fixed16" } else { "f32" });
        for (qi, query) in e.queries.iter().enumerate() {
            let keys = |method| -> Vec<u64> {
                index.search(query, e.k, None, method, None).iter().map(|s| index.key(s.row)).collect()
            };
            assert_eq!(keys(Method::Exact), x.exact_keys[qi], "{dtype} query {qi}: exact");
            assert_eq!(keys(Method::Hnsw), x.hnsw_keys[qi], "{dtype} query {qi}: graph walk");
            let scores = index.search(query, e.k, None, Method::Exact, None);
            for (s, d) in scores.iter().zip(&x.exact_distances[qi]) {
                assert!((1.0 - s.score - d).abs() < 2e-3, "{dtype}: score {} vs distance {d}", s.score);
            }
        }
    }
}

/// The i8 fixture was written by the Python mirror of core's quantizer
/// (`fixtures/usearch/quantize.py`) and usearch stored the rows as given: each
/// equals `vector::quantize_i8` of the f32 row with the same key, bit for bit.
#[test]
fn i8_rows_are_cores_quantization_of_the_f32_rows() {
    let e = expected();
    let f32_file = UsearchFile::read(&dir().join(&e.indexes["f32"].file)).unwrap();
    let i8_file = UsearchFile::read(&dir().join(&e.indexes["i8"].file)).unwrap();
    let (StoredVectors::F32(rows), StoredVectors::I8(quantized)) = (&f32_file.vectors, &i8_file.vectors) else {
        panic!("fixture kinds: {} and {}", f32_file.vectors.kind_name(), i8_file.vectors.kind_name());
    };
    let dim = e.dimensions;
    let mut want = vec![0i8; dim];
    for (slot, key) in f32_file.keys.iter().enumerate() {
        let i8_slot = i8_file.keys.iter().position(|k| k == key).expect("same keys");
        busca_core::vector::quantize_i8(&rows[slot * dim..(slot + 1) * dim], &mut want);
        assert_eq!(&quantized[i8_slot * dim..(i8_slot + 1) * dim], &want[..], "key {key}");
    }
}

/// The i8 index is scored asymmetrically (f32 query against each dequantized,
/// renormalised row), so its answer is checked against the exact f32 answer,
/// which is what a user wants, rather than against usearch's i8·i8 scores.
#[test]
fn i8_search_keeps_the_f32_answer() {
    let e = expected();
    let exact = &e.indexes["f32"];
    let index = ShotIndex::from_usearch(UsearchFile::read(&dir().join(&e.indexes["i8"].file)).unwrap(), 32).unwrap();
    assert_eq!(index.storage_name(), "i8");
    let (mut shared, mut total) = (0, 0);
    for (qi, query) in e.queries.iter().enumerate() {
        let hits = index.search(query, e.k, None, Method::Exact, None);
        let keys: Vec<u64> = hits.iter().map(|s| index.key(s.row)).collect();
        shared += keys.iter().filter(|k| exact.exact_keys[qi].contains(k)).count();
        total += e.k;
        // The best hit is the f32 best, and every score is the true cosine
        // within the quantization error (about 1/254 of the largest component).
        assert_eq!(keys[0], exact.exact_keys[qi][0], "query {qi}");
        for hit in &hits {
            let slot = exact.exact_keys[qi].iter().position(|k| *k == index.key(hit.row));
            if let Some(slot) = slot {
                let truth = 1.0 - exact.exact_distances[qi][slot];
                assert!((hit.score - truth).abs() < 0.02, "query {qi}: i8 score {} vs f32 {truth}", hit.score);
            }
        }
        let walked = index.search(query, e.k, None, Method::Hnsw, None);
        assert_eq!(walked.len(), e.k, "query {qi}: the walk finds k rows");
    }
    assert!(shared as f64 / total as f64 >= 0.9, "i8 top-{} overlaps f32's by {shared}/{total}", e.k);
}

#[test]
fn filters_and_min_score_apply_to_both_methods() {
    let e = expected();
    let x = &e.indexes["f32"];
    let index = ShotIndex::from_usearch(UsearchFile::read(&dir().join(&x.file)).unwrap(), 32).unwrap();
    let query = &e.queries[0];
    let even = |row: usize| index.key(row) % 2 == 0;
    let hits = index.search(query, 10, None, Method::Exact, Some(&even));
    assert_eq!(hits.len(), 10);
    assert!(hits.iter().all(|s| index.key(s.row) % 2 == 0));
    let best = hits[0].score;
    for method in [Method::Exact, Method::Hnsw] {
        let above = index.search(query, 10, Some(best - 1e-6), method, None);
        assert!(!above.is_empty() && above.iter().all(|s| s.score >= best - 1e-6), "{method:?}");
    }
}

#[test]
fn a_filter_is_asked_first_or_last_by_how_much_it_admits_and_answers_alike() {
    let e = expected();
    for (name, x) in &e.indexes {
        let index = ShotIndex::from_usearch(UsearchFile::read(&dir().join(&x.file)).unwrap(), 32).unwrap();
        for query in &e.queries {
            let all = index.search(query, index.len(), None, Method::Exact, None);
            // Refuses the query's two best rows and nothing else (scored
            // first, asked last), or those and every other row (asked
            // first): both must give what a filter of the whole ranking gives.
            let (best, second) = (all[0].row, all[1].row);
            let nearly_all = |row: usize| row != best && row != second;
            let half = |row: usize| nearly_all(row) && index.key(row) % 2 == 0;
            assert_eq!(index.scan_order(&nearly_all), ScanOrder::ScoreFirst, "{name}");
            assert_eq!(index.scan_order(&half), ScanOrder::FilterFirst, "{name}");
            for filter in [&nearly_all as &dyn Fn(usize) -> bool, &half] {
                let want: Vec<_> = all.iter().filter(|s| filter(s.row)).take(e.k).copied().collect();
                let got = index.search(query, e.k, None, Method::Exact, Some(filter));
                assert_eq!(got, want, "{name}");
                let floor = want[e.k / 2].score;
                let above = index.search(query, e.k, Some(floor), Method::Exact, Some(filter));
                let want_above: Vec<_> = want.iter().filter(|s| s.score >= floor).copied().collect();
                assert_eq!(above, want_above, "{name}: min_score");
            }
        }
    }
}

#[test]
fn truncated_fixture_is_an_error_naming_the_file() {
    let bytes = std::fs::read(dir().join("cos_f16.usearch")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("cut.usearch");
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = UsearchFile::read(&path).unwrap_err().to_string();
    assert!(err.contains("cut.usearch") && err.contains("truncated"), "{err}");
}
