//! The towers on the repository's tiny colour model, through the ONNX Runtime
//! wheel the setup script installs. Built with `--features cuda` on a machine
//! without a GPU (scripts/test.sh does), the image encoder must fall back to
//! the CPU and say why.

use std::path::PathBuf;

use busca_core::ModelManifest;
use busca_onnx::{Device, ImageEncoder, Interface, OnnxError, Provider, SessionOptions, TextEncoder};

fn tiny() -> PathBuf {
    busca_core::model::test_model_dir()
}

fn init() -> ModelManifest {
    busca_onnx::init_runtime(None, "busca-onnx-test")
        .expect("ONNX Runtime: set ORT_DYLIB_PATH or run `source scripts/setup.sh`");
    ModelManifest::load(&tiny()).unwrap()
}

/// A solid image of `rgb`, preprocessed as core does for the model.
fn solid(manifest: &ModelManifest, rgb: [u8; 3]) -> Vec<f32> {
    let s = manifest.image.image_size as usize;
    let pixels: Vec<u8> = (0..s * s).flat_map(|_| rgb).collect();
    manifest.preprocess().pixel_values(s as u32, s as u32, &pixels).unwrap()
}

#[test]
fn colour_words_and_colour_images_meet_in_one_space() {
    let manifest = init();
    let colours = manifest.colours.clone().expect("the tiny model names its colours");
    let mut image = ImageEncoder::load(&tiny(), &manifest, SessionOptions::cpu(1)).unwrap();
    let mut text = TextEncoder::load(&tiny(), &manifest).unwrap();
    assert_eq!(image.provider(), Provider::Cpu);
    let names = ["red", "green", "blue"];
    let batch: Vec<f32> = names.iter().flat_map(|n| solid(&manifest, colours[*n])).collect();
    let rows = image.encode(&batch, names.len()).unwrap();
    assert_eq!(rows.len(), names.len() * manifest.embedding_dim);
    for (i, name) in names.iter().enumerate() {
        let q = text.encode(&format!("a {name} car")).unwrap();
        assert!((busca_core::vector::dot(&q, &q) - 1.0).abs() < 1e-5, "text rows are normalised");
        let scores: Vec<f32> = rows.chunks_exact(manifest.embedding_dim).map(|r| busca_core::vector::dot(&q, r)).collect();
        let best = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(best, i, "{name}: scores {scores:?}");
    }
}

#[test]
fn a_manifest_naming_another_input_is_refused_by_name() {
    let mut manifest = init();
    manifest.image.input = "pixels_please".into();
    let err = ImageEncoder::load(&tiny(), &manifest, SessionOptions::cpu(1)).unwrap_err();
    assert!(matches!(&err, OnnxError::Interface { what: Interface::MissingInput(n), .. } if n == "pixels_please"), "{err}");
    assert!(err.to_string().contains("image.onnx"), "{err}");
}

#[test]
fn a_gpu_asked_for_where_there_is_none_runs_on_the_cpu_and_says_why() {
    let manifest = init();
    let image = ImageEncoder::load(&tiny(), &manifest, SessionOptions { device: Device::Cuda(0), threads: 1 }).unwrap();
    assert_eq!(image.provider(), Provider::Cpu, "no GPU or CUDA provider on the test machines");
    let why = image.fallback().expect("the fallback is reported");
    if cfg!(feature = "cuda") {
        assert!(why.contains("CUDA device 0 unavailable"), "{why}");
    } else {
        assert!(why.contains("no `cuda` feature"), "{why}");
    }
    // Auto without the feature is the CPU, with nothing to report.
    let auto = ImageEncoder::load(&tiny(), &manifest, SessionOptions { device: Device::Auto, threads: 1 }).unwrap();
    assert_eq!(auto.fallback().is_some(), cfg!(feature = "cuda"));
}
