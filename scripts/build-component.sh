#!/usr/bin/env bash
# Builds the edge query component (query-component/) for wasm32-wasip2, release
# profile (opt-level 3, LTO, simd128), copies it to query-component/dist/ (where
# spin.toml looks) and prints its path as the last line of output.
#
#   CARGO_TARGET_DIR=... scripts/build-component.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/buscaescenas/target}"
rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2 >&2
(cd query-component && cargo build --release --lib --target wasm32-wasip2 >&2)
built="$CARGO_TARGET_DIR/wasm32-wasip2/release/query_component.wasm"
mkdir -p query-component/dist
cp "$built" query-component/dist/query_component.wasm
echo "component: $(du -h "$built" | cut -f1) ($(stat -c %s "$built") bytes)" >&2
echo "$built"
