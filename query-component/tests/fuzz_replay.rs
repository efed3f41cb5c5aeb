//! Every fuzz target's body (`fuzz/src/lib.rs`) over its committed seed
//! corpus (`fuzz/corpus/<target>/`) and every crash the fuzzers ever found
//! (`fuzz/regressions/<target>/`), on stable, so CI keeps each fixed crash
//! fixed without nightly or libFuzzer. The seeds must also reach past each
//! parser's first refusal, or they would not seed anything.

#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_seed_and_every_regression_passes_its_target() {
    let mut ran = 0;
    for (name, body) in harness::TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seed (python fuzz/make_seeds.py)");
        for path in seeds.iter().chain(&files(&fuzz_dir().join("regressions").join(name))) {
            let data = std::fs::read(path).unwrap();
            if let Err(panic) = std::panic::catch_unwind(|| body(&data)) {
                let message = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                panic!("{name} failed on {}: {}", path.display(), message.unwrap_or_default());
            }
            ran += 1;
        }
    }
    assert!(ran >= harness::TARGETS.len());
}

#[test]
fn the_seeds_are_inputs_the_parsers_accept() {
    let seeds = |name: &str| files(&fuzz_dir().join("corpus").join(name)).into_iter().map(|p| std::fs::read(p).unwrap());
    for data in seeds("usearch_file") {
        busca_core::usearch_file::UsearchFile::parse_bytes(&data).expect("a usearch seed parses");
    }
    for data in seeds("query_image") {
        busca_core::image_input::decode_rgb(&data, 1 << 20).expect("an image seed decodes");
    }
    for data in seeds("bundle_manifest") {
        serde_json::from_slice::<busca_core::bundle::BundleManifest>(&data).expect("a bundle manifest seed parses");
    }
    for data in seeds("model_manifest") {
        serde_json::from_slice::<busca_core::model::ModelManifest>(&data).expect("a model manifest seed parses");
    }
    for data in seeds("search_body") {
        let (&kind, body) = data.split_first().unwrap();
        let content_type = harness::search_content_type(kind);
        let limits = busca_core::Limits::DEFAULT;
        let (request, _) = query_component::api::parse_search_body(content_type.as_deref(), body, &limits)
            .unwrap_or_else(|e| panic!("a search body seed is refused: {}", e.message));
        request.validate(&limits).unwrap_or_else(|e| panic!("a search body seed does not validate: {}", e.message));
    }
    let timecodes = seeds("timecode").filter(|t| busca_core::shot::parse_timecode(std::str::from_utf8(t).unwrap()).is_some());
    assert!(timecodes.count() >= 5);
}
