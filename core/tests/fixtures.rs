//! Checks the core crate against fixtures made by the Python references
//! (`core/tests/fixtures/gen_fixtures.py`): OpenAI CLIP's tokenizer and the
//! Pillow + torchvision image transform CLIP was trained with, and Python
//! `tokenizers` on the tiny multilingual Unigram tokenizer.

use std::path::PathBuf;

use busca_core::preprocess::{resample, Filter, Fit};
use busca_core::{ClipPreprocess, ClipTokenizer};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[derive(serde::Deserialize)]
struct TokenCase {
    text: String,
    ids: Vec<i64>,
}

/// Every case's ids from `tokenize`, the differences listed.
fn assert_same_ids(cases: &[TokenCase], tokenize: impl Fn(&str) -> Vec<i64>) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let ids = tokenize(&case.text);
            (ids != case.ids).then(|| format!("{:?}\n  want {:?}\n  got  {:?}", case.text, case.ids, ids))
        })
        .collect();
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn token_ids_equal_the_reference_tokenizer() {
    let cases: Vec<TokenCase> =
        serde_json::from_slice(&std::fs::read(fixtures().join("tokens.json")).unwrap()).unwrap();
    assert!(cases.len() >= 12);
    let tokenizer = ClipTokenizer::new(77, 0);
    assert_same_ids(&cases, |text| tokenizer.tokenize(text));
    // What warming up builds ahead (the regex's DFA states) changes no id.
    let warmed = busca_core::TextTokenizer::Clip(ClipTokenizer::new(77, 0));
    warmed.warm_up();
    assert_same_ids(&cases, |text| warmed.tokenize(text));
}

#[test]
fn unigram_ids_equal_python_tokenizers() {
    let cases: Vec<TokenCase> =
        serde_json::from_slice(&std::fs::read(fixtures().join("unigram_tokens.json")).unwrap()).unwrap();
    let model_dir = fixtures().join("../../../models/tiny-24");
    let model = busca_core::ModelManifest::load(&model_dir).unwrap();
    let tokenizer = busca_core::TextTokenizer::load(&model_dir, model.default_text()).unwrap();
    assert_eq!(tokenizer.context_length(), 32);
    assert_same_ids(&cases, |text| tokenizer.tokenize(text));
    // The fixture covers what makes Unigram differ from CLIP's BPE: accents,
    // ñ, ¿¡, emoji (unknown here), truncation and the XLM-R pad id.
    let unk = cases.iter().find(|c| c.text.contains('🕺')).unwrap();
    assert!(unk.ids.contains(&3), "emoji are <unk> (3): {:?}", unk.ids);
    assert!(cases.iter().any(|c| c.ids[31] != 1), "a case is truncated");
    tokenizer.warm_up();
    assert_same_ids(&cases, |text| tokenizer.tokenize(text));
}

#[test]
fn a_tokenizer_file_that_is_not_the_manifests_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = fixtures().join("../../../models/tiny-24");
    let model = busca_core::ModelManifest::load(&model_dir).unwrap();
    let tower = model.default_text();
    let file = tower.tokenizer_file.as_deref().unwrap();
    let mut bytes = std::fs::read(model_dir.join(file)).unwrap();
    std::fs::write(dir.path().join(file), &bytes).unwrap();
    assert!(busca_core::TextTokenizer::load(dir.path(), tower).is_ok());
    bytes.truncate(bytes.len() / 2);
    std::fs::write(dir.path().join(file), &bytes).unwrap();
    let err = busca_core::TextTokenizer::load(dir.path(), tower).unwrap_err().to_string();
    assert!(err.contains(file) && err.contains("sha256"), "{err}");
    let mut unchecked = tower.clone();
    unchecked.tokenizer_sha256 = None;
    let err = busca_core::TextTokenizer::load(dir.path(), &unchecked).unwrap_err().to_string();
    assert!(err.contains("not a usable tokenizer.json"), "{err}");
}

#[derive(serde::Deserialize)]
struct PreprocessIndex {
    images: Vec<PreprocessCase>,
}

#[derive(serde::Deserialize)]
struct PreprocessCase {
    name: String,
    png: String,
    f32: String,
    width: u32,
    height: u32,
    resized_width: u32,
    resized_height: u32,
    crop_left: u32,
    crop_top: u32,
    squash_rgb: String,
}

#[test]
fn preprocessing_matches_the_pillow_reference() {
    let dir = fixtures().join("preprocess");
    let index: PreprocessIndex =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let p = ClipPreprocess::OPENAI_224;
    for case in &index.images {
        let img = image::open(dir.join(&case.png)).unwrap().into_rgb8();
        assert_eq!((img.width(), img.height()), (case.width, case.height), "{}", case.name);
        assert_eq!(
            p.resized_dims(case.width, case.height),
            (case.resized_width, case.resized_height),
            "{}: resized size",
            case.name
        );
        assert_eq!(
            p.crop_origin(case.resized_width, case.resized_height),
            (case.crop_left, case.crop_top),
            "{}: crop origin",
            case.name
        );
        let want: Vec<f32> = std::fs::read(dir.join(&case.f32))
            .unwrap()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let got = p.pixel_values(img.width(), img.height(), img.as_raw()).unwrap();
        assert_eq!(got.len(), want.len());
        let max_diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(max_diff <= 1e-5, "{}: max |ours − reference| = {max_diff}", case.name);
    }
}

#[test]
fn the_squash_fit_resamples_as_pillow_bilinear() {
    let dir = fixtures().join("preprocess");
    let index: PreprocessIndex =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let squash = ClipPreprocess { size: 224, mean: [0.5; 3], std: [0.5; 3], fit: Fit::Squash };
    for case in &index.images {
        let img = image::open(dir.join(&case.png)).unwrap().into_rgb8();
        let want = std::fs::read(dir.join(&case.squash_rgb)).unwrap();
        let got = resample(img.width(), img.height(), img.as_raw(), 224, 224, Filter::Bilinear);
        // Pillow's C code runs the horizontal pass first, as we do, and the
        // landscape images match it byte for byte; the Pillow 13 wheel runs
        // the vertical pass first on some taller-than-wide images (found by
        // comparing both orders on random sizes; the rule is not in its
        // sources), and the two orders round differently by one level.
        let off = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        let worst = got.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
        if case.width > case.height {
            assert_eq!(off, 0, "{}: {off} of {} bytes differ from Pillow's BILINEAR", case.name, want.len());
        }
        assert!(worst <= 1 && off * 8 <= want.len(), "{}: {off} bytes differ, by up to {worst}", case.name);
        // The whole path: resize (ours), no crop, (v/255 − 0.5)/0.5 in CHW.
        let t = squash.pixel_values(img.width(), img.height(), img.as_raw()).unwrap();
        let plane = 224 * 224;
        for (i, px) in got.chunks_exact(3).enumerate().step_by(97) {
            for c in 0..3 {
                let expect = (f32::from(px[c]) / 255.0 - 0.5) / 0.5;
                assert!((t[c * plane + i] - expect).abs() < 1e-6, "{}: pixel {i} channel {c}", case.name);
            }
        }
    }
}
