#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up, the generated artefacts'
# reproducibility, the wasm component build, and every cargo test.
#
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== generated files are reproducible"
python models/gen_tiny.py --check
python core/tests/fixtures/gen_fixtures.py --check

echo "== core builds for wasm32-wasip2"
cargo build -q -p busca-core --target wasm32-wasip2

if [[ -x scripts/build-component.sh ]]; then
    echo "== query component (wasm32-wasip2)"
    BUSCA_COMPONENT="$(scripts/build-component.sh | tail -n1)"
    export BUSCA_COMPONENT
fi

echo "== cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee "$BUSCA_HOME/last-test.log"
