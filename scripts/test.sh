#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up, the generated artefacts'
# reproducibility, the wasm component build, and every cargo test.
#
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh --tests

echo "== generated files are reproducible"
python models/gen_tiny.py --check
python core/tests/fixtures/gen_fixtures.py --check

# Core for wasm32-wasip2 is built by the components below: with its default
# features by the query component, without them by the wasi:nn providers (a
# separate debug build of it here cost 6 minutes of a cold run).
echo "== edge components (wasm32-wasip2): query component, wasi:nn provider, self-contained"
BUSCA_COMPONENT="$(scripts/build-component.sh --edge | tail -n1)"
export BUSCA_COMPONENT BUSCA_NN_PROVIDER="$PWD/query-component/dist/nn_provider.wasm"

echo "== core's SIMD kernels and guest allocator under wasm32-wasip2 with simd128, in the stock wasmtime CLI"
# The component's kernels (core/src/vector/simd128.rs, the resampler's
# horizontal pass in core/src/preprocess/horizontal.rs) against the portable
# loops (natively these tests take the AVX2 path instead), the guest's
# allocator (core/src/snapshot.rs) over the dlmalloc it wraps there, and
# query-image JPEGs decoded through our zune-jpeg kernels against its scalar
# code (core/src/image_input.rs). Core alone with its image feature: a
# minute cold, in a target dir of its own.
WASM_TEST=(env CARGO_TARGET_DIR="$BUSCA_HOME/target-core-wasm-test" RUSTFLAGS="-C target-feature=+simd128"
    CARGO_TARGET_WASM32_WASIP2_RUNNER="wasmtime run" cargo test --target wasm32-wasip2)
"${WASM_TEST[@]}" --manifest-path core/Cargo.toml --no-default-features --features image --lib -- vector preprocess snapshot image_input

echo "== zune-jpeg's simd128 kernels (third_party/zune-jpeg, PATCHES.md) against its scalar code, in the wasmtime CLI"
"${WASM_TEST[@]}" --manifest-path third_party/zune-jpeg/Cargo.toml --lib

echo "== Spin manifests against Spin's manifest schema"
python scripts/check_spin_manifest.py spin.toml spin-remote.toml

echo "== cargo test"
# One cargo invocation for everything: a different package set would unify
# features differently and rebuild wasmtime. Integration tests build the bins.
# The end-to-end tests run the indexer binary this same build makes; the S3
# tests start and stop their own s3s-fs ($BUSCA_S3_SERVER, from setup.sh).
export BUSCA_INDEX_BIN="$CARGO_TARGET_DIR/debug/busca-index"
cargo test --workspace --no-fail-fast 2>&1 | tee "$BUSCA_HOME/last-test.log"

echo "== cargo test again on the second tiny model family (models/tiny-24: 24-d, SentencePiece Unigram tokenizer only)"
# Nothing is rebuilt: the tests read their model directory from BUSCA_TEST_MODEL.
BUSCA_TEST_MODEL=models/tiny-24 cargo test --workspace --no-fail-fast 2>&1 | tee -a "$BUSCA_HOME/last-test.log"

echo "== Kubernetes manifests and Dockerfiles (deploy/) against the API schemas and our binaries' flags"
python scripts/check_k8s.py "$CARGO_TARGET_DIR/debug"

echo "== ONNX Runtime crate with the CUDA provider (no GPU here: it must fall back to the CPU and say why)"
# Only busca-onnx holds CUDA code (the indexer's `cuda` feature forwards to
# it), so this compiles every CUDA path; ort is the only crate rebuilt.
cargo test -p busca-onnx --features cuda 2>&1 | tee -a "$BUSCA_HOME/last-test.log"

echo "== query component's own tests (native; its own workspace and lock file)"
# A target dir of its own: two lock files in one target dir can mix crate builds.
(cd query-component && CARGO_TARGET_DIR="$BUSCA_HOME/target-component-native" cargo test --no-fail-fast)

echo "== search page in headless Chromium"
export BUSCA_ARTIFACTS="$BUSCA_HOME/artifacts"
(cd ui && npm ci --no-audit --no-fund --silent && npm test)
echo "== search page in headless Chromium on the second tiny model family"
(cd ui && BUSCA_TEST_MODEL=models/tiny-24 npm test)
