//! The fuzz targets' bodies: each feeds arbitrary bytes to code that meets
//! untrusted or damaged input (request bodies and query images from the
//! public edge, index files and manifests from a bucket, timecodes from
//! logs and URLs) and checks what must hold whatever the input, beyond not
//! panicking. The same functions run under libFuzzer (`fuzz_targets/`,
//! nightly, `cargo fuzz`, in `scripts/bench-report.sh`) and over the
//! committed seed corpora and every crash ever found on stable
//! (`query-component/tests/fuzz_replay.rs`, in `scripts/test.sh`).

use busca_core::bundle::BundleManifest;
use busca_core::model::ModelManifest;
use busca_core::query::Limits;
use busca_core::shot::{parse_timecode, timecode};
use busca_core::usearch_file::{self, UsearchFile};

/// Every target: (name, body). Names are the `fuzz_targets/` file stems and
/// the `corpus/` and `regressions/` folder names.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("search_body", search_body),
    ("query_image", query_image),
    ("usearch_file", usearch),
    ("bundle_manifest", bundle_manifest),
    ("model_manifest", model_manifest),
    ("timecode", timecode_text),
];

/// Limits as the edge sets them, with smaller images so that a fuzzer's
/// memory limit catches an allocation the pixel check should have stopped.
const LIMITS: Limits = Limits { max_image_pixels: 4_000_000, ..Limits::DEFAULT };

/// The multipart boundary of the multipart content types below.
pub const BOUNDARY: &str = "busca-fuzz-boundary";

/// A search request body. The first byte picks the content type (JSON,
/// multipart/form-data, a form, none); the rest is the body. A parsed
/// request either validates or is refused with a 4xx naming the problem; a
/// refusal is always a 4xx.
pub fn search_body(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else { return };
    match query_component::api::parse_search_body(search_content_type(kind).as_deref(), body, &LIMITS) {
        Ok((request, image)) => {
            if let Err(e) = request.validate(&LIMITS) {
                assert!((400..500).contains(&e.status), "a parsed request refused with {}", e.status);
            }
            if let Some(image) = image {
                assert!(image.len() <= body.len(), "an image larger than its body");
            }
        }
        Err(e) => assert!((400..500).contains(&e.status), "a body refused with {}: {}", e.status, e.message),
    }
}

/// The content type a `search_body` input's first byte picks.
pub fn search_content_type(kind: u8) -> Option<String> {
    match kind % 4 {
        0 => Some("application/json".into()),
        1 => Some(format!("multipart/form-data; boundary={BOUNDARY}")),
        2 => Some("application/x-www-form-urlencoded".into()),
        _ => None,
    }
}

/// A query image. A decoded image is within the pixel limit and its buffer
/// is exactly width × height × 3.
pub fn query_image(data: &[u8]) {
    if let Ok(img) = busca_core::image_input::decode_rgb(data, LIMITS.max_image_pixels) {
        let pixels = img.width as u64 * img.height as u64;
        assert!(pixels > 0 && pixels <= LIMITS.max_image_pixels, "{}x{} passed the limit", img.width, img.height);
        assert_eq!(img.rgb.len() as u64, pixels * 3);
    }
}

/// A usearch index file. A file that parses writes back to bytes that
/// parse and write to the same bytes (bytes, not values: a damaged file
/// may hold NaN vectors), and can be searched, NaN or not.
pub fn usearch(data: &[u8]) {
    let Ok(file) = UsearchFile::parse_bytes(data) else { return };
    let written = usearch_file::write(&file);
    let again = UsearchFile::parse_bytes(&written).expect("a written index parses");
    assert!(usearch_file::write(&again) == written, "an index changed through write and parse");
    let dim = file.dimensions;
    if let Ok(index) = busca_core::shot_index::ShotIndex::from_usearch(file, 16) {
        if dim > 0 && dim <= 4096 {
            let mut query = vec![0.0f32; dim];
            query[0] = 1.0;
            for method in [busca_core::shot_index::Method::Exact, busca_core::shot_index::Method::Hnsw] {
                let hits = index.search(&query, 5, None, method, None);
                assert!(hits.len() <= 5.min(index.len()), "more hits than asked or stored");
            }
        }
    }
}

/// A bundle's manifest.json. One that parses, whose model validates and
/// whose numbers are finite survives a round trip. (A number too large for
/// its type parses as infinity, which JSON cannot write back: the model's
/// are refused by its validation, found by this target; the segmentation's
/// are only recorded.)
pub fn bundle_manifest(data: &[u8]) {
    let Ok(manifest) = serde_json::from_slice::<BundleManifest>(data) else { return };
    let s = &manifest.segmentation;
    if manifest.model.validate().is_err() || ![s.sample_fps, s.shot_similarity, s.cut_similarity].iter().all(|x| x.is_finite()) {
        return;
    }
    let again: BundleManifest = serde_json::from_slice(&serde_json::to_vec(&manifest).unwrap()).unwrap();
    assert_eq!(again, manifest);
}

/// A model's manifest.json. One that validates (what loading requires)
/// survives a round trip and gives a preprocessing with finite numbers.
pub fn model_manifest(data: &[u8]) {
    let Ok(manifest) = serde_json::from_slice::<ModelManifest>(data) else { return };
    if manifest.validate().is_err() {
        return;
    }
    let again: ModelManifest = serde_json::from_slice(&serde_json::to_vec(&manifest).unwrap()).unwrap();
    assert_eq!(again, manifest);
    let p = manifest.preprocess();
    assert!(p.mean.iter().chain(&p.std).all(|x| x.is_finite()) && p.std.iter().all(|s| *s > 0.0));
}

/// A timecode. One that parses formats back to the same milliseconds.
pub fn timecode_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(ms) = parse_timecode(text) {
        assert_eq!(parse_timecode(&timecode(ms)), Some(ms), "{text:?} → {ms} ms → {}", timecode(ms));
    }
}
